/* Unit tests for loop.c: the timer list (order, re-arm, disarm inside a
 * run, a callback re-arming itself for now), and the loop (a source's fd,
 * its deadline, a wake-up from another thread folding into one, quit, and
 * an idle loop that does not go round). */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "loop.h"

static int order[16];
static size_t norder;

static void note(struct loop_timer *t, int64_t now_ns, void *ctx)
{
    (void)t;
    (void)now_ns;
    order[norder++] = (int)(intptr_t)ctx;
}

static void test_timers_order(void **state)
{
    struct loop_timers ts = {0};
    struct loop_timer a, b, c, d;
    (void)state;

    norder = 0;
    loop_timer_init(&a, note, (void *)1);
    loop_timer_init(&b, note, (void *)2);
    loop_timer_init(&c, note, (void *)3);
    loop_timer_init(&d, note, (void *)4);
    assert_int_equal(loop_timers_next(&ts), -1);
    loop_timers_arm(&ts, &a, 300);
    loop_timers_arm(&ts, &b, 100);
    loop_timers_arm(&ts, &c, 200);
    loop_timers_arm(&ts, &d, 100); /* same moment as b: after it */
    assert_int_equal(loop_timers_next(&ts), 100);
    assert_int_equal(loop_timers_run(&ts, 99), 0);
    assert_int_equal(loop_timers_run(&ts, 200), 3);
    assert_int_equal(norder, 3);
    assert_int_equal(order[0], 2);
    assert_int_equal(order[1], 4);
    assert_int_equal(order[2], 3);
    assert_false(b.armed);
    assert_true(a.armed);
    /* re-arming moves, never duplicates */
    loop_timers_arm(&ts, &a, 50);
    loop_timers_arm(&ts, &a, 60);
    assert_int_equal(loop_timers_next(&ts), 60);
    assert_int_equal(loop_timers_run(&ts, 1000), 1);
    assert_int_equal(loop_timers_next(&ts), -1);
    /* disarming one not armed, twice: nothing */
    loop_timers_disarm(&ts, &a);
    loop_timers_disarm(&ts, &a);
    assert_int_equal(loop_timers_run(&ts, 5000), 0);
}

static struct loop_timers *shared_ts;
static struct loop_timer *victim;
static int self_rearms;

static void disarm_other(struct loop_timer *t, int64_t now_ns, void *ctx)
{
    (void)t;
    (void)now_ns;
    (void)ctx;
    loop_timers_disarm(shared_ts, victim);
}

static void rearm_self(struct loop_timer *t, int64_t now_ns, void *ctx)
{
    (void)ctx;
    self_rearms++;
    loop_timers_arm(shared_ts, t, now_ns); /* due again at once: next run */
}

static void test_timers_callbacks(void **state)
{
    struct loop_timers ts = {0};
    struct loop_timer a, b, c;
    (void)state;

    shared_ts = &ts;
    norder = 0;
    loop_timer_init(&a, disarm_other, NULL);
    loop_timer_init(&b, note, (void *)7);
    victim = &b;
    loop_timers_arm(&ts, &a, 10);
    loop_timers_arm(&ts, &b, 20);
    /* both due; a's callback disarms b: b does not run */
    assert_int_equal(loop_timers_run(&ts, 30), 1);
    assert_int_equal(norder, 0);
    assert_false(b.armed);
    loop_timer_init(&c, rearm_self, NULL);
    self_rearms = 0;
    loop_timers_arm(&ts, &c, 5);
    assert_int_equal(loop_timers_run(&ts, 30), 1);
    assert_int_equal(self_rearms, 1);
    assert_true(c.armed);
    assert_int_equal(loop_timers_run(&ts, 30), 1);
    assert_int_equal(self_rearms, 2);
    loop_timers_disarm(&ts, &c);
}

/* A source: one pipe's read end; quits after `want` bytes; a deadline. */
struct pipe_src {
    struct loop *loop;
    int fd;
    size_t got;
    size_t want;
    int64_t deadline_ns;
    unsigned deadline_hits;
    unsigned prepares;
};

static size_t pipe_prepare(void *ctx, struct pollfd *fds, size_t max, int64_t now_ns, int64_t *deadline_ns)
{
    struct pipe_src *s = ctx;

    s->prepares++;
    if (s->deadline_ns >= 0) {
        if (now_ns >= s->deadline_ns) {
            s->deadline_hits++;
            s->deadline_ns = -1;
        } else if (*deadline_ns < 0 || s->deadline_ns < *deadline_ns) {
            *deadline_ns = s->deadline_ns;
        }
    }
    if (s->got >= s->want && s->deadline_ns < 0) {
        loop_quit(s->loop);
        return 0;
    }
    assert_true(max >= 1);
    fds[0] = (struct pollfd){.fd = s->fd, .events = POLLIN};
    return 1;
}

static void pipe_dispatch(void *ctx, struct pollfd *fds, size_t n, int64_t now_ns)
{
    struct pipe_src *s = ctx;
    char b[64];
    ssize_t r;

    (void)now_ns;
    if (n == 1 && (fds[0].revents & POLLIN) && (r = read(s->fd, b, sizeof(b))) > 0)
        s->got += (size_t)r;
}

static const struct loop_source_ops pipe_ops = {pipe_prepare, pipe_dispatch};

static unsigned wakes;

static void on_wake(void *ctx)
{
    (void)ctx;
    wakes++;
}

static void test_loop_fd_and_deadline(void **state)
{
    struct loop *l;
    int p[2];
    struct pipe_src s = {0};
    (void)state;

    assert_int_equal(pipe(p), 0);
    assert_int_equal(loop_new(on_wake, NULL, &l), 0);
    s.loop = l;
    s.fd = p[0];
    s.want = 3;
    s.deadline_ns = clock_mono_ns() + 2000000; /* 2 ms */
    assert_int_equal(loop_add_source(l, &pipe_ops, &s), 0);
    assert_int_equal(write(p[1], "abc", 3), 3);
    loop_run(l);
    assert_int_equal(s.got, 3);
    assert_int_equal(s.deadline_hits, 1); /* the deadline ran the loop round */
    /* data, the deadline's round, the quit check: no round without a cause */
    assert_true(loop_rounds(l) <= 3);
    assert_int_equal(wakes, 0);
    loop_destroy(l);
    close(p[0]);
    close(p[1]);
}

struct waker {
    struct loop *loop;
    int fd;
};

static void *wake_many(void *arg)
{
    struct waker *w = arg;

    for (int i = 0; i < 100; i++)
        loop_wake(w->loop);
    assert_int_equal(write(w->fd, "z", 1), 1);
    return NULL;
}

static void test_loop_wake_from_thread(void **state)
{
    struct loop *l;
    int p[2];
    struct pipe_src s = {0};
    struct waker w;
    pthread_t th;
    (void)state;

    wakes = 0;
    assert_int_equal(pipe(p), 0);
    assert_int_equal(loop_new(on_wake, NULL, &l), 0);
    s.loop = l;
    s.fd = p[0];
    s.want = 1;
    s.deadline_ns = -1;
    assert_int_equal(loop_add_source(l, &pipe_ops, &s), 0);
    w.loop = l;
    w.fd = p[1];
    /* while the loop runs: each wake-up is seen (how many fold depends on timing) */
    assert_int_equal(pthread_create(&th, NULL, wake_many, &w), 0);
    loop_run(l); /* no timeout anywhere: only the thread can end this */
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_true(wakes >= 1);
    assert_true(wakes <= 100);
    /* before it runs: 100 wake-ups from another thread fold into one */
    wakes = 0;
    s.want = 2;
    assert_int_equal(pthread_create(&th, NULL, wake_many, &w), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    uint64_t rounds = loop_rounds(l);
    loop_run(l);
    assert_int_equal(wakes, 1);
    assert_int_equal(loop_rounds(l) - rounds, 1); /* the wake-up and the byte, one round */
    loop_destroy(l);
    close(p[0]);
    close(p[1]);
}

static unsigned dispatch_saw_wakes;

static void order_dispatch(void *ctx, struct pollfd *fds, size_t n, int64_t now_ns)
{
    dispatch_saw_wakes = wakes;
    pipe_dispatch(ctx, fds, n, now_ns);
}

/* loop_note: the hand-over does not cut the loop's sleep short (the round
 * ends at the source's deadline, not at once as after loop_wake), and
 * on_wake runs in the next round anyway, before the source's dispatch. */
static void test_loop_note_waits_for_another_cause(void **state)
{
    static const struct loop_source_ops ops = {pipe_prepare, order_dispatch};
    struct loop *l;
    int p[2];
    struct pipe_src s = {0};
    int64_t deadline_ns;
    (void)state;

    wakes = 0;
    dispatch_saw_wakes = 0;
    assert_int_equal(pipe(p), 0);
    assert_int_equal(loop_new(on_wake, NULL, &l), 0);
    s.loop = l;
    s.fd = p[0];
    s.want = 0;
    deadline_ns = clock_mono_ns() + 20000000; /* 20 ms */
    s.deadline_ns = deadline_ns;
    assert_int_equal(loop_add_source(l, &ops, &s), 0);
    loop_note(l);
    loop_run(l);
    /* one round: the deadline's (a wake-up would have added one before it) */
    assert_int_equal(loop_rounds(l), 1);
    assert_true(clock_mono_ns() >= deadline_ns);
    assert_int_equal(s.deadline_hits, 1);
    assert_int_equal(wakes, 1);
    assert_int_equal(dispatch_saw_wakes, 1); /* on_wake came first */
    /* then a byte: noted, the same round takes both */
    loop_note(l);
    s.want = 1;
    assert_int_equal(write(p[1], "a", 1), 1);
    dispatch_saw_wakes = 0;
    loop_run(l);
    assert_int_equal(wakes, 2);
    assert_int_equal(dispatch_saw_wakes, 2);
    /* nothing noted: a round for the byte alone does not call on_wake */
    s.want = 2;
    assert_int_equal(write(p[1], "b", 1), 1);
    loop_run(l);
    assert_int_equal(wakes, 2);
    loop_destroy(l);
    close(p[0]);
    close(p[1]);
}

static size_t full_prepare(void *ctx, struct pollfd *fds, size_t max, int64_t now_ns, int64_t *deadline_ns)
{
    (void)ctx;
    (void)fds;
    (void)now_ns;
    (void)deadline_ns;
    assert_true(max <= LOOP_FDS_MAX - 1);
    return 0;
}

static void test_loop_sources_bound(void **state)
{
    struct loop *l;
    static const struct loop_source_ops ops = {full_prepare, pipe_dispatch};
    (void)state;

    assert_int_equal(loop_new(NULL, NULL, &l), 0);
    for (int i = 0; i < LOOP_SOURCES_MAX; i++)
        assert_int_equal(loop_add_source(l, &ops, NULL), 0);
    assert_int_equal(loop_add_source(l, &ops, NULL), -ENOSPC);
    loop_destroy(l);
    loop_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timers_order),         cmocka_unit_test(test_timers_callbacks),
        cmocka_unit_test(test_loop_fd_and_deadline), cmocka_unit_test(test_loop_wake_from_thread),
        cmocka_unit_test(test_loop_sources_bound),
        cmocka_unit_test(test_loop_note_waits_for_another_cause),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
