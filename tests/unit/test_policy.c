/* Unit tests for policy.c: the flush decision per mode, the eager-off
 * window, the hold's bounds and the one SHUTDOWN budget, against numbers
 * worked out by hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "limits.h"
#include "policy.h"

static struct config cfg_with(enum config_flush mode, uint32_t first, uint32_t idle_s)
{
    struct config c;

    memset(&c, 0, sizeof(c));
    c.flush = mode;
    c.eager_first_invocations = first;
    c.eager_idle_s = idle_s;
    c.buffer_timeout_ms = 25;
    c.timeout_margin_ms = 500;
    c.export_timeout_ms = 1500;
    return c;
}

static void test_eager_and_background(void **state)
{
    struct config c = cfg_with(CONFIG_FLUSH_EAGER, 0, 60);
    struct policy_flush p;
    (void)state;

    policy_flush_init(&p, &c);
    for (int i = 1; i <= 5; i++)
        assert_true(policy_flush_decide(&p, i * 10, true));
    /* no exporter: never eager, whatever the mode */
    assert_false(policy_flush_decide(&p, 100, false));
    c = cfg_with(CONFIG_FLUSH_BACKGROUND, 10, 1);
    policy_flush_init(&p, &c);
    assert_false(policy_flush_decide(&p, 1, true));
    assert_false(policy_flush_decide(&p, 100000, true)); /* long idle: still background */
}

static void test_auto_first_and_idle(void **state)
{
    struct config c = cfg_with(CONFIG_FLUSH_AUTO, 2, 60);
    struct policy_flush p;
    (void)state;

    policy_flush_init(&p, &c);
    assert_true(policy_flush_decide(&p, 1000, true));   /* first */
    assert_true(policy_flush_decide(&p, 1100, true));   /* second */
    assert_false(policy_flush_decide(&p, 1200, true));  /* third, soon after */
    assert_false(policy_flush_decide(&p, 61199, true)); /* 59.999 s later */
    assert_true(policy_flush_decide(&p, 121199, true)); /* exactly 60 s later */
    assert_false(policy_flush_decide(&p, 121200, true));
    /* a refused decision (no exporter) still counts as an invocation */
    c = cfg_with(CONFIG_FLUSH_AUTO, 1, 60);
    policy_flush_init(&p, &c);
    assert_false(policy_flush_decide(&p, 5, false));
    assert_false(policy_flush_decide(&p, 6, true));
    /* auto with no first invocations: the very first is not eager (no gap yet) */
    c = cfg_with(CONFIG_FLUSH_AUTO, 0, 60);
    policy_flush_init(&p, &c);
    assert_false(policy_flush_decide(&p, 5, true));
}

static void test_off_window(void **state)
{
    struct config c = cfg_with(CONFIG_FLUSH_EAGER, 0, 60);
    struct policy_flush p;
    (void)state;

    policy_flush_init(&p, &c);
    policy_flush_off(&p, 1000);
    assert_false(policy_flush_decide(&p, 1000, true));
    assert_false(policy_flush_decide(&p, 1000 + EXPORT_EAGER_OFF_MS - 1, true));
    assert_true(policy_flush_decide(&p, 1000 + EXPORT_EAGER_OFF_MS, true));
    /* auto: the window wins over "first invocations", and they are used up meanwhile */
    c = cfg_with(CONFIG_FLUSH_AUTO, 2, 600);
    policy_flush_init(&p, &c);
    policy_flush_off(&p, 10);
    assert_false(policy_flush_decide(&p, 20, true));
    assert_false(policy_flush_decide(&p, 30, true));
    assert_false(policy_flush_decide(&p, 10 + EXPORT_EAGER_OFF_MS, true));
}

static void test_hold_bounds(void **state)
{
    struct config c = cfg_with(CONFIG_FLUSH_EAGER, 0, 60);
    struct policy_hold h;
    (void)state;

    /* deadline 3 s away: the runtime may run 2.5 s (margin 500) */
    policy_hold_bounds(&c, 10000, 7000 * 1000, 1000000000, &h);
    assert_int_equal(h.bound_ms, 25 + POLICY_EAGER_EXPORT_MAX_MS);
    assert_int_equal(h.start_deadline_ns, 1000000000 + (int64_t)h.bound_ms * 1000000);
    assert_int_equal(h.done_deadline_ns, 1000000000 + INT64_C(2500) * 1000000);
    /* deadline inside the margin: nothing to wait for, start bound no later */
    policy_hold_bounds(&c, 10000, 9800 * 1000, 5, &h);
    assert_int_equal(h.done_deadline_ns, 5);
    assert_int_equal(h.start_deadline_ns, 5);
    /* no deadline: the export timeout */
    policy_hold_bounds(&c, 0, 9800 * 1000, 0, &h);
    assert_int_equal(h.done_deadline_ns, INT64_C(1500) * 1000000);
}

static void test_flush_left(void **state)
{
    (void)state;
    assert_int_equal(policy_flush_left_ms(275, 0, 123456789), POLICY_EAGER_EXPORT_MAX_MS);
    /* done 10 ms ago: the whole export share is left */
    assert_int_equal(policy_flush_left_ms(275, 1000000, 1010000), POLICY_EAGER_EXPORT_MAX_MS);
    /* done 100 ms ago: 175 left */
    assert_int_equal(policy_flush_left_ms(275, 1000000, 1100000), 175);
    /* done 300 ms ago: spent */
    assert_true(policy_flush_left_ms(275, 1000000, 1300000) <= 0);
    /* a done time in the future (clock skew): capped at the export share */
    assert_int_equal(policy_flush_left_ms(275, 2000000, 1000000), POLICY_EAGER_EXPORT_MAX_MS);
}

static void test_shutdown_budget(void **state)
{
    struct policy_shutdown b;
    const int64_t now_ns = INT64_C(50) * 1000000000;
    (void)state;

    /* 2 s deadline, received now, wait 1 s: telemetry until +1 s, all until +1.9 s */
    policy_shutdown_budget(12000, 10000 * 1000, 1000, 10000 * 1000, now_ns, &b);
    assert_int_equal(b.telemetry_end_ns, now_ns + INT64_C(1000) * 1000000);
    assert_int_equal(b.end_ns, now_ns + INT64_C(1900) * 1000000);
    /* a long wait is cut at deadline - safety margin */
    policy_shutdown_budget(12000, 10000 * 1000, 5000, 10000 * 1000, now_ns, &b);
    assert_int_equal(b.telemetry_end_ns, now_ns + (int64_t)(2000 - SHUTDOWN_SAFETY_MARGIN_MS) * 1000000);
    /* asked 400 ms after the event: the same moments, 400 ms nearer */
    policy_shutdown_budget(12000, 10000 * 1000, 1000, 10400 * 1000, now_ns, &b);
    assert_int_equal(b.telemetry_end_ns, now_ns + INT64_C(600) * 1000000);
    assert_int_equal(b.end_ns, now_ns + INT64_C(1500) * 1000000);
    /* past the deadline: no wait for records, the late grace for what is ready */
    policy_shutdown_budget(12000, 10000 * 1000, 1000, 13000 * 1000, now_ns, &b);
    assert_int_equal(b.telemetry_end_ns, now_ns);
    assert_int_equal(b.end_ns, now_ns + (int64_t)SHUTDOWN_LATE_GRACE_MS * 1000000);
    /* the deadline 50 ms ahead (inside the exit margin): half of it, still
     * before the deadline */
    policy_shutdown_budget(12000, 10000 * 1000, 1000, 11950 * 1000, now_ns, &b);
    assert_int_equal(b.end_ns, now_ns + INT64_C(25) * 1000000);
    /* no deadline: the default budget from the event */
    policy_shutdown_budget(0, 10000 * 1000, 5000, 10000 * 1000, now_ns, &b);
    assert_int_equal(b.end_ns, now_ns + (int64_t)(SHUTDOWN_DEFAULT_BUDGET_MS - SHUTDOWN_EXIT_MARGIN_MS) * 1000000);
    assert_int_equal(b.telemetry_end_ns, b.end_ns);
    /* a tiny deadline: the telemetry wait never outlasts the whole */
    policy_shutdown_budget(10050, 10000 * 1000, 1000, 10000 * 1000, now_ns, &b);
    assert_true(b.telemetry_end_ns <= b.end_ns);
    assert_int_equal(b.telemetry_end_ns, now_ns); /* nothing waited for */
    assert_int_equal(b.end_ns, now_ns + INT64_C(25) * 1000000); /* half of the 50 ms left */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eager_and_background), cmocka_unit_test(test_auto_first_and_idle),
        cmocka_unit_test(test_off_window),           cmocka_unit_test(test_hold_bounds),
        cmocka_unit_test(test_flush_left),           cmocka_unit_test(test_shutdown_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
