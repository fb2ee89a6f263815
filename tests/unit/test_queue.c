/* Unit tests for queue.c: order, bounds, drops, close, timeouts, threads. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <stdio.h>
#include <unistd.h>
#include <cmocka.h>

#include "clock.h"
#include "queue.h"
#include "fail_alloc.h"

static int freed;
static void count_free(int kind, void *data)
{
    (void)kind;
    freed++;
    free(data);
}

static void *item(int v)
{
    int *p = malloc(sizeof(*p));
    assert_non_null(p);
    *p = v;
    return p;
}

static void test_fifo_order_and_ownership(void **state)
{
    struct queue *q = queue_new(1024);
    int kind;
    void *data;
    size_t bytes;
    (void)state;
    assert_non_null(q);
    for (int i = 0; i < 5; i++)
        assert_int_equal(queue_push(q, i % 2, item(i), 10, true), 0);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(queue_pop(q, clock_mono_ns(), &kind, &data, &bytes), 0);
        assert_int_equal(*(int *)data, i);
        assert_int_equal(kind, i % 2);
        assert_int_equal(bytes, 10);
        free(data);
    }
    queue_destroy(q, NULL);
}

static void test_droppable_items_are_bounded_and_counted(void **state)
{
    struct queue *q = queue_new(100);
    struct queue_stats st;
    void *big = item(1);
    void *ctl = item(2);
    (void)state;
    assert_int_equal(queue_push(q, 1, item(0), 60, true), 0);
    /* 60 + 50 > 100: refused, caller keeps ownership */
    assert_int_equal(queue_push(q, 1, big, 50, true), -ENOBUFS);
    free(big);
    /* control items are never refused for size */
    assert_int_equal(queue_push(q, 2, ctl, 1000, false), 0);
    /* an item bigger than the whole bound is refused even when empty-ish */
    void *huge = item(3);
    assert_int_equal(queue_push(q, 1, huge, 101, true), -ENOBUFS);
    free(huge);
    queue_get_stats(q, &st);
    assert_int_equal(st.pushed, 2);
    assert_int_equal(st.dropped, 2);
    assert_int_equal(st.dropped_bytes, 151);
    assert_int_equal(st.items, 2);
    assert_int_equal(st.bytes, 60); /* control bytes do not count */
    assert_int_equal(st.peak_bytes, 60);
    freed = 0;
    queue_destroy(q, count_free);
    assert_int_equal(freed, 2);
}

static void test_pop_times_out(void **state)
{
    struct queue *q = queue_new(100);
    int kind;
    void *data;
    int64_t start = clock_mono_ns();
    (void)state;
    assert_int_equal(queue_pop(q, start + 20 * 1000000, &kind, &data, NULL), -ETIMEDOUT);
    assert_true(clock_mono_ns() - start >= 20 * 1000000);
    queue_destroy(q, NULL);
}

static void test_close_drains_then_reports_epipe(void **state)
{
    struct queue *q = queue_new(100);
    int kind;
    void *data;
    void *late = item(9);
    (void)state;
    assert_int_equal(queue_push(q, 1, item(1), 1, true), 0);
    queue_close(q);
    queue_close(q); /* idempotent */
    assert_int_equal(queue_push(q, 1, late, 1, false), -EPIPE);
    free(late);
    assert_int_equal(queue_pop(q, -1, &kind, &data, NULL), 0);
    free(data);
    assert_int_equal(queue_pop(q, -1, &kind, &data, NULL), -EPIPE);
    queue_destroy(q, NULL);
}

static void test_push_out_of_memory_is_counted(void **state)
{
    struct queue *q = queue_new(100);
    struct queue_stats st;
    int x = 0;
    (void)state;
    fail_alloc_fail_at(1);
    assert_int_equal(queue_push(q, 1, &x, 5, true), -ENOMEM);
    fail_alloc_fail_at(0);
    queue_get_stats(q, &st);
    assert_int_equal(st.dropped, 1);
    assert_int_equal(st.items, 0);
    queue_destroy(q, NULL);
}

static void test_new_out_of_memory(void **state)
{
    (void)state;
    fail_alloc_fail_at(1);
    assert_null(queue_new(100));
    fail_alloc_fail_at(0);
}

/* Two producers, one consumer: every accepted item arrives exactly once. */
#define PER_PRODUCER 20000
struct producer_arg {
    struct queue *q;
    int base;
    int accepted;
};

static void *producer(void *arg)
{
    struct producer_arg *pa = arg;
    for (int i = 0; i < PER_PRODUCER; i++) {
        int *p = malloc(sizeof(*p));
        *p = pa->base + i;
        if (queue_push(pa->q, 1, p, sizeof(*p), true) == 0)
            pa->accepted++;
        else
            free(p);
    }
    return NULL;
}

static void test_threads_lose_nothing_accepted(void **state)
{
    struct queue *q = queue_new(4096);
    struct producer_arg a = {q, 0, 0}, b = {q, 1000000, 0};
    pthread_t ta, tb;
    int kind, received = 0, last_a = -1, last_b = -1;
    void *data;
    struct queue_stats st;
    (void)state;
    pthread_create(&ta, NULL, producer, &a);
    pthread_create(&tb, NULL, producer, &b);
    for (;;) {
        int r = queue_pop(q, clock_mono_ns() + 200 * 1000000LL, &kind, &data, NULL);
        if (r == -ETIMEDOUT)
            break;
        assert_int_equal(r, 0);
        int v = *(int *)data;
        /* per-producer order is kept */
        if (v >= 1000000) {
            assert_true(v > last_b);
            last_b = v;
        } else {
            assert_true(v > last_a);
            last_a = v;
        }
        free(data);
        received++;
    }
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    while (queue_pop(q, clock_mono_ns(), &kind, &data, NULL) == 0) {
        free(data);
        received++;
    }
    queue_get_stats(q, &st);
    assert_int_equal(received, a.accepted + b.accepted);
    assert_int_equal(st.dropped + st.pushed, 2 * PER_PRODUCER);
    queue_destroy(q, NULL);
}

struct held_pop {
    struct queue *q;
    int64_t deadline_ns;
    int64_t got_ns;
    int r;
};

static void *pop_thread(void *arg)
{
    struct held_pop *h = arg;
    int kind;
    void *data = NULL;

    h->r = queue_pop(h->q, h->deadline_ns, &kind, &data, NULL);
    h->got_ns = clock_mono_ns();
    free(data);
    return NULL;
}

/* Starts the popper and returns once it waits in queue_pop, so a push
 * cannot reach it before it waits, however slowly the thread starts
 * (valgrind). */
static void start_popper(pthread_t *t, struct held_pop *h)
{
    struct queue_stats qs;

    assert_int_equal(pthread_create(t, NULL, pop_thread, h), 0);
    do {
        usleep(1000);
        queue_get_stats(h->q, &qs);
    } while (qs.waiting == 0);
}

/* A push under a hold does not wake a waiting popper (it finds the item
 * only when its own wait ends); releasing the hold wakes it. */
static void test_hold_defers_the_wake_up(void **state)
{
    struct held_pop h = {.q = queue_new(100)};
    pthread_t t;
    int64_t pushed;
    (void)state;

    /* held: the popper sleeps to its deadline although an item is there */
    h.deadline_ns = clock_mono_ns() + 300 * 1000000LL;
    start_popper(&t, &h);
    queue_hold(h.q);
    assert_int_equal(queue_push(h.q, 1, item(1), 1, true), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(h.r, 0);
    assert_true(h.got_ns >= h.deadline_ns);

    /* released: a popper waiting without a deadline is woken */
    h.deadline_ns = -1;
    start_popper(&t, &h);
    assert_int_equal(queue_push(h.q, 1, item(2), 1, true), 0);
    pushed = clock_mono_ns();
    assert_true(queue_release(h.q)); /* it says it woke the popper */
    assert_int_equal(pthread_join(t, NULL), 0); /* would hang if never woken */
    assert_int_equal(h.r, 0);
    assert_true(h.got_ns >= pushed);

    /* queue_wake wakes a popper even while held */
    h.deadline_ns = -1;
    start_popper(&t, &h);
    queue_hold(h.q);
    assert_int_equal(queue_push(h.q, 1, item(3), 1, true), 0);
    queue_wake(h.q);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(h.r, 0);
    assert_false(queue_release(h.q)); /* nothing queued, nobody waiting */

    /* an item queued before the hold: a popper arriving during the hold
     * waits for the release (the burst is taken whole), and the release
     * wakes it although nothing was pushed while held */
    assert_int_equal(queue_push(h.q, 1, item(4), 1, true), 0);
    queue_hold(h.q);
    h.deadline_ns = -1;
    h.got_ns = 0;
    start_popper(&t, &h);
    int64_t released = clock_mono_ns();
    assert_true(queue_release(h.q));
    assert_int_equal(pthread_join(t, NULL), 0); /* would hang if the release did not wake it */
    assert_int_equal(h.r, 0);
    assert_true(h.got_ns >= released);

    /* a burst released with no popper waiting (the exporter busy with its
     * requests, polling): false, the caller must wake it another way */
    queue_hold(h.q);
    assert_int_equal(queue_push(h.q, 1, item(5), 1, true), 0);
    assert_false(queue_release(h.q));
    queue_destroy(h.q, count_free);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_order_and_ownership),
        cmocka_unit_test(test_droppable_items_are_bounded_and_counted),
        cmocka_unit_test(test_pop_times_out),
        cmocka_unit_test(test_hold_defers_the_wake_up),
        cmocka_unit_test(test_close_drains_then_reports_epipe),
        cmocka_unit_test(test_push_out_of_memory_is_counted),
        cmocka_unit_test(test_new_out_of_memory),
        cmocka_unit_test(test_threads_lose_nothing_accepted),
    };
    return cmocka_run_group_tests_name("queue", tests, NULL, NULL);
}
