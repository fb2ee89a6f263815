/*
 * test_initwatch.c - the Init anatomy's rules (figures in, hint out), the
 * anatomy line, and the watcher on a real process (a child standing in for
 * the runtime, found as our sibling through a fake parent).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "initwatch.h"
#include "procsnap.h"

static struct initwatch_figures figs(int64_t wall_ms, int64_t cpu_ms, int64_t rchar, int64_t storage,
                                     int64_t majflt)
{
    struct initwatch_figures f;

    memset(&f, 0, sizeof(f));
    f.wall_us = wall_ms * 1000;
    f.cpu_us = cpu_ms * 1000;
    f.rchar = rchar;
    f.read_bytes = storage;
    f.majflt = majflt;
    return f;
}

static enum initwatch_rule hint(struct initwatch_figures f, char *out, size_t size)
{
    enum initwatch_rule r = initwatch_hint(&f, out, size);
    printf("  hint %d: %s\n", (int)r, out);
    return r;
}

static void test_rules(void **state)
{
    char out[256];
    (void)state;

    /* The two examples, word for word. */
    assert_int_equal(hint(figs(1800, 1600, 184000000, 0, 0), out, sizeof(out)), INITWATCH_LOADING);
    assert_string_equal(out, "Runtime init read 184 MB and spent 1.6 s of its 1.8 s on CPU: loading code");
    assert_int_equal(hint(figs(1200, 50, 20000, 0, 0), out, sizeof(out)), INITWATCH_WAITING);
    assert_string_equal(out, "Runtime init used 0.05 s of CPU in 1.2 s: waiting (network or a slow dependency)");
    /* Busy, few bytes: computing. */
    assert_int_equal(hint(figs(1000, 950, 2000000, 0, 0), out, sizeof(out)), INITWATCH_COMPUTING);
    assert_non_null(strstr(out, "computing"));
    /* Idle with much from storage: disk, by read_bytes or by major faults. */
    assert_int_equal(hint(figs(2000, 100, 90000000, 80000000, 0), out, sizeof(out)), INITWATCH_DISK);
    assert_non_null(strstr(out, "80 MB from storage"));
    assert_int_equal(hint(figs(2000, 100, -1, -1, 5000), out, sizeof(out)), INITWATCH_DISK);
    assert_non_null(strstr(out, "5000 major page faults"));
    /* io unreadable: busy still said, the reads never guessed. */
    assert_int_equal(hint(figs(1000, 900, -1, -1, 0), out, sizeof(out)), INITWATCH_CPU);
    assert_non_null(strstr(out, "unknown"));
    assert_null(strstr(out, "loading"));
    /* io unreadable and idle: waiting (the network rule needs no io). */
    assert_int_equal(hint(figs(1000, 10, -1, -1, 0), out, sizeof(out)), INITWATCH_WAITING);
}

static void test_thresholds(void **state)
{
    char out[256];
    (void)state;

    /* Wall under 300 ms: nothing, whatever the figures. */
    assert_int_equal(hint(figs(299, 299, 500000000, 0, 0), out, sizeof(out)), INITWATCH_NONE);
    assert_string_equal(out, "");
    assert_int_equal(hint(figs(300, 150, 0, 0, 0), out, sizeof(out)), INITWATCH_COMPUTING);
    /* The busy and idle edges; between them: mixed, no hint. */
    assert_int_equal(hint(figs(1000, 500, 0, 0, 0), out, sizeof(out)), INITWATCH_COMPUTING);
    assert_int_equal(hint(figs(1000, 499, 0, 0, 0), out, sizeof(out)), INITWATCH_NONE);
    assert_int_equal(hint(figs(1000, 250, 0, 0, 0), out, sizeof(out)), INITWATCH_NONE);
    assert_int_equal(hint(figs(1000, 249, 0, 0, 0), out, sizeof(out)), INITWATCH_WAITING);
    /* The bytes edge. */
    assert_int_equal(hint(figs(1000, 900, INITWATCH_READ_MANY_BYTES - 1, 0, 0), out, sizeof(out)),
                     INITWATCH_COMPUTING);
    assert_int_equal(hint(figs(1000, 900, INITWATCH_READ_MANY_BYTES, 0, 0), out, sizeof(out)),
                     INITWATCH_LOADING);
    assert_int_equal(hint(figs(1000, 100, 0, 0, INITWATCH_MAJFLT_MANY - 1), out, sizeof(out)),
                     INITWATCH_WAITING);
    /* CPU above wall (clock ticks round up, children): capped in the text. */
    assert_int_equal(hint(figs(1000, 1300, 0, 0, 0), out, sizeof(out)), INITWATCH_COMPUTING);
    assert_non_null(strstr(out, "1.0 s of its 1.0 s"));
}

static void test_unknown_and_bad(void **state)
{
    char out[256], tiny[8];
    struct initwatch_figures f = figs(2000, 0, 0, 0, 0);
    (void)state;

    f.cpu_us = -1; /* stat unreadable: never a hint */
    assert_int_equal(initwatch_hint(&f, out, sizeof(out)), INITWATCH_NONE);
    assert_string_equal(out, "");
    assert_int_equal(initwatch_hint(NULL, out, sizeof(out)), INITWATCH_NONE);
    assert_int_equal(initwatch_hint(&f, NULL, 10), INITWATCH_NONE);
    /* Truncated, still terminated. */
    assert_int_equal(hint(figs(1800, 1600, 184000000, 0, 0), tiny, sizeof(tiny)), INITWATCH_LOADING);
    assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
    f = figs(0, 0, 0, 0, 0);
    assert_int_equal(initwatch_hint(&f, out, sizeof(out)), INITWATCH_NONE);
}

static void test_describe(void **state)
{
    char out[512];
    struct initwatch_figures f = figs(1800, 1620, 184000000, 2100000, 3);
    (void)state;

    f.minflt = 12034;
    f.threads = 4;
    f.max_threads = 6;
    f.rss_bytes = 96300000;
    f.processes = 2;
    f.children_seen = 1;
    initwatch_describe(&f, out, sizeof(out));
    printf("  %s\n", out);
    assert_string_equal(out, "1.80 s wall, 1.62 s CPU, 12034 minor / 3 major faults, read 184.0 MB "
                             "(2.1 MB from storage), 4 threads (at most 6), RSS 96.3 MB, 2 processes, "
                             "1 child processes seen");
    f.rchar = f.read_bytes = -1;
    f.unreadable = 1u << PROCSNAP_SRC_IO;
    initwatch_describe(&f, out, sizeof(out));
    assert_null(strstr(out, "read "));
    assert_non_null(strstr(out, "; unreadable: io"));
    initwatch_describe(&f, out, 10);
    assert_true(strlen(out) < 10);
    initwatch_describe(NULL, out, sizeof(out));
    assert_string_equal(out, "");
}

/* The watcher with nothing to find (our parent's other children are not a
 * runtime... a fake proc root that does not exist): no figures, clean stop. */
static void test_watcher_nothing(void **state)
{
    struct initwatch_opts o = {.proc_root = "/nonexistent-proc", .self = 1, .interval_ms = 1,
                               .max_samples = 5};
    struct initwatch_figures f;
    struct initwatch *w;
    (void)state;

    w = initwatch_start(&o);
    assert_non_null(w);
    assert_false(initwatch_figures_at(w, INT64_MAX, &f));
    initwatch_free(w);
    initwatch_free(NULL);
    initwatch_stop(NULL);
    assert_false(initwatch_figures_at(NULL, 0, &f));
    o.interval_ms = 0;
    assert_null(initwatch_start(&o));
    assert_null(initwatch_start(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_thresholds),
        cmocka_unit_test(test_unknown_and_bad),
        cmocka_unit_test(test_describe),
        cmocka_unit_test(test_watcher_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
