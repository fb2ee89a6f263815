/* Unit tests for ids.c's random pool across a SnapStart restore: the
 * snapshot copies each thread's pool, unused bytes included, into every
 * restored environment; a restore must discard them. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ids.h"
#include "fail_alloc.h"

static void hex8(const uint8_t *b, char out[XRAY_SPAN_ID_LEN + 1])
{
    for (int i = 0; i < 8; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* The pool hands out exactly what peek shows: the model the other tests
 * rely on (a snapshot of the pool predicts the clone's next ids). */
static void test_peek_predicts_next_draw(void **state)
{
    char id[XRAY_SPAN_ID_LEN + 1], want[XRAY_SPAN_ID_LEN + 1];
    uint8_t next[8];
    (void)state;
    assert_int_equal(ids_new_span_id(id), 0); /* fills the pool */
    assert_int_equal(ids_pool_peek(next, sizeof(next)), sizeof(next));
    hex8(next, want);
    assert_int_equal(ids_new_span_id(id), 0);
    if (memcmp(next, "\0\0\0\0\0\0\0\0", 8) != 0) /* an all-zero draw is skipped */
        assert_string_equal(id, want);
}

/* After a bump, the next draws are not the bytes left in the pool: the
 * pool is wiped and refilled from the kernel. */
static void test_bump_discards_the_pool(void **state)
{
    char id[XRAY_SPAN_ID_LEN + 1], stale[4][XRAY_SPAN_ID_LEN + 1];
    char trace[XRAY_TRACE_ID_LEN + 1];
    uint8_t left[32];
    unsigned long refills;
    (void)state;
    assert_int_equal(ids_new_span_id(id), 0);
    assert_int_equal(ids_pool_peek(left, sizeof(left)), sizeof(left));
    for (int i = 0; i < 4; i++)
        hex8(left + 8 * i, stale[i]);
    refills = ids_refills();
    ids_restore_epoch_bump();
    assert_int_equal(ids_new_span_id(id), 0);
    assert_int_equal(ids_refills(), refills + 1);
    for (int i = 0; i < 4; i++)
        assert_string_not_equal(id, stale[i]);
    /* the next draws come from the new pool, no further refill */
    assert_int_equal(ids_new_trace_id(0x5759e988, trace), 0);
    assert_int_equal(ids_refills(), refills + 1);
    /* and without a bump the pool is kept */
    assert_int_equal(ids_new_span_id(id), 0);
    assert_int_equal(ids_refills(), refills + 1);
}

struct worker {
    pthread_barrier_t filled, bumped;
    char stale[XRAY_SPAN_ID_LEN + 1];
    char after[XRAY_SPAN_ID_LEN + 1];
    unsigned long refills_before, refills_after;
};

static void *worker_run(void *arg)
{
    struct worker *w = arg;
    char id[XRAY_SPAN_ID_LEN + 1];
    uint8_t next[8] = {0};

    if (ids_new_span_id(id) < 0 || ids_pool_peek(next, sizeof(next)) != sizeof(next))
        id[0] = '\0';
    hex8(next, w->stale);
    pthread_barrier_wait(&w->filled);
    pthread_barrier_wait(&w->bumped); /* the main thread bumped meanwhile */
    w->refills_before = ids_refills();
    if (ids_new_span_id(w->after) < 0)
        w->after[0] = '\0';
    w->refills_after = ids_refills();
    return NULL;
}

/* A bump made by one thread discards the pool another thread filled
 * before it. */
static void test_bump_reaches_other_threads(void **state)
{
    pthread_t t;
    struct worker w;
    (void)state;
    memset(&w, 0, sizeof(w));
    assert_int_equal(pthread_barrier_init(&w.filled, NULL, 2), 0);
    assert_int_equal(pthread_barrier_init(&w.bumped, NULL, 2), 0);
    assert_int_equal(pthread_create(&t, NULL, worker_run, &w), 0);
    pthread_barrier_wait(&w.filled);
    ids_restore_epoch_bump();
    pthread_barrier_wait(&w.bumped);
    assert_int_equal(pthread_join(t, NULL), 0);
    pthread_barrier_destroy(&w.filled);
    pthread_barrier_destroy(&w.bumped);
    assert_int_equal(strlen(w.after), XRAY_SPAN_ID_LEN);
    assert_string_not_equal(w.after, w.stale);
    assert_int_equal(w.refills_after, w.refills_before + 1);
}

/* The real thing: fork copies the pool as a snapshot does.  Both copies
 * detect the restore and bump; their next ids differ.  (Without the bump
 * they are identical: checked too, so the test proves the clone shares
 * the pool.) */
static void clone_and_draw(int bump, char parent[XRAY_SPAN_ID_LEN + 1],
                           char child[XRAY_SPAN_ID_LEN + 1])
{
    int fds[2];
    pid_t pid;
    int status;
    char id[XRAY_SPAN_ID_LEN + 1];

    assert_int_equal(ids_new_span_id(id), 0); /* a pool with bytes left */
    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (bump)
            ids_restore_epoch_bump();
        if (ids_new_span_id(id) < 0)
            _exit(1);
        _exit(write(fds[1], id, XRAY_SPAN_ID_LEN) == XRAY_SPAN_ID_LEN ? 0 : 1);
    }
    close(fds[1]);
    if (bump)
        ids_restore_epoch_bump();
    assert_int_equal(ids_new_span_id(parent), 0);
    assert_int_equal(read(fds[0], child, XRAY_SPAN_ID_LEN), XRAY_SPAN_ID_LEN);
    child[XRAY_SPAN_ID_LEN] = '\0';
    close(fds[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_cloned_environments_draw_different_ids(void **state)
{
    char parent[XRAY_SPAN_ID_LEN + 1], child[XRAY_SPAN_ID_LEN + 1];
    (void)state;
    clone_and_draw(0, parent, child);
    assert_string_equal(parent, child); /* the hazard */
    clone_and_draw(1, parent, child);
    assert_string_not_equal(parent, child);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_peek_predicts_next_draw),
        cmocka_unit_test(test_bump_discards_the_pool),
        cmocka_unit_test(test_bump_reaches_other_threads),
        cmocka_unit_test(test_cloned_environments_draw_different_ids),
    };
    return cmocka_run_group_tests_name("ids", tests, NULL, NULL);
}
