/* Unit tests for cost.c: the price table, the price setting, the split of
 * a report into phases, recomputed exactly. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "cost.h"

static void test_table(void **state)
{
    struct cost_price p;
    (void)state;
    cost_price_default(COST_ARCH_X86_64, &p);
    assert_true(p.gb_s_usd == 0.0000166667);
    assert_true(p.request_usd == 0.0000002); /* $0.20 per million */
    cost_price_default(COST_ARCH_ARM64, &p);
    assert_true(p.gb_s_usd == 0.0000133334);
    assert_string_equal(cost_arch_name(COST_ARCH_ARM64), "arm64");
    assert_string_equal(cost_arch_name(COST_ARCH_X86_64), "x86_64");
#if defined(__aarch64__)
    assert_int_equal(cost_arch_built(), COST_ARCH_ARM64);
#else
    assert_int_equal(cost_arch_built(), COST_ARCH_X86_64);
#endif
}

static void test_parse_price(void **state)
{
    double v = -1;
    (void)state;
    assert_int_equal(cost_parse_price("0.0000166667", &v), 0);
    assert_true(v == 0.0000166667);
    assert_int_equal(cost_parse_price("1.5e-5", &v), 0);
    assert_true(v == 1.5e-5);
    assert_int_equal(cost_parse_price("0", &v), 0);
    assert_true(v == 0);
    v = 42;
    static const char *const bad[] = {"", "-0.1", "1", "2.5", "nan", "inf", "0x1p-4", " 0.1",
                                      "0.1 ", "1e400", "abc", "0.1$", "+0.1", ".", "e5", "0.1e"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(cost_parse_price(bad[i], &v), -EINVAL);
        assert_true(v == 42); /* nothing written */
    }
    assert_int_equal(cost_parse_price(NULL, &v), -EINVAL);
}

static void test_gb_s(void **state)
{
    (void)state;
    assert_true(cost_gb_s(1000, 1024) == 1.0);
    assert_true(cost_gb_s(330, 1792) == 330.0 / 1000.0 * (1792.0 / 1024.0));
    assert_true(cost_gb_s(0, 128) == 0);
    assert_true(cost_gb_s(10, 0) == 0);
    assert_true(cost_gb_s(-5, 128) == 0);
}

/* A cold start billed with its Init (a custom runtime's report, as every
 * runtime's since 2025-08-01): duration 1049.63, Init 1293.83, billed 2344
 * = ceil(1049.63) + ceil(1293.83). */
static void test_split_cold(void **state)
{
    struct cost_price p;
    struct cost_split s;
    const struct cost_input in = {.billed_ms = 2344, .memory_mb = 128, .duration_ms = 1049.63,
                                  .init_duration_ms = 1293.83, .after_response_ms = 40.2,
                                  .own_after_response_ms = 12.5};
    (void)state;
    cost_price_default(COST_ARCH_X86_64, &p);
    assert_true(cost_split_report(&p, &in, &s));
    assert_int_equal(s.billed_ms, 2344);
    assert_int_equal(s.init_billed_ms, 1294);
    assert_int_equal(s.invoke_billed_ms, 1050);
    assert_int_equal(s.after_billed_ms, 41);
    assert_int_equal(s.own_billed_ms, 13);
    assert_true(s.gb_s == 2344.0 / 1000.0 * (128.0 / 1024.0));
    assert_true(s.usd == 0.0000166667 * (2344.0 / 1000.0 * (128.0 / 1024.0)) + 0.0000002);
    assert_true(s.init_usd == 0.0000166667 * (1294.0 / 1000.0 * (128.0 / 1024.0)));
    assert_true(s.invoke_usd == 0.0000166667 * (1050.0 / 1000.0 * (128.0 / 1024.0)) + 0.0000002);
    assert_true(s.after_usd == 0.0000166667 * (41.0 / 1000.0 * (128.0 / 1024.0)));
    assert_true(s.own_usd == 0.0000166667 * (13.0 / 1000.0 * (128.0 / 1024.0)));
}

/* Init not billed (an old report: billed = the invocation alone), warm
 * starts, and shares that cannot exceed their whole. */
static void test_split_bounds(void **state)
{
    struct cost_price p = {.gb_s_usd = 0.00001, .request_usd = 0};
    struct cost_split s;
    struct cost_input in = {.billed_ms = 330, .memory_mb = 1792, .duration_ms = 329.177,
                            .init_duration_ms = 503.083, .after_response_ms = -1,
                            .own_after_response_ms = -1};
    (void)state;
    assert_true(cost_split_report(&p, &in, &s));
    assert_int_equal(s.init_billed_ms, 0);
    assert_int_equal(s.invoke_billed_ms, 330);
    assert_int_equal(s.after_billed_ms, 0);
    assert_true(s.init_usd == 0);
    assert_true(s.usd == 0.00001 * (330.0 / 1000.0 * (1792.0 / 1024.0)));
    /* more than the Init in billed: the Init's share stops at its own */
    in.billed_ms = 5000;
    assert_true(cost_split_report(&p, &in, &s));
    assert_int_equal(s.init_billed_ms, 504);
    assert_int_equal(s.invoke_billed_ms, 5000 - 504);
    /* warm: no Init; after and own capped by their whole */
    in.init_duration_ms = -1;
    in.billed_ms = 100;
    in.duration_ms = 99.2;
    in.after_response_ms = 500;
    in.own_after_response_ms = 900;
    assert_true(cost_split_report(&p, &in, &s));
    assert_int_equal(s.init_billed_ms, 0);
    assert_int_equal(s.after_billed_ms, 100);
    assert_int_equal(s.own_billed_ms, 100);
    in.after_response_ms = 3;
    assert_true(cost_split_report(&p, &in, &s));
    assert_int_equal(s.own_billed_ms, 3);
    /* absent billed or memory: nothing */
    memset(&s, 0x5a, sizeof(s));
    in.billed_ms = -1;
    assert_false(cost_split_report(&p, &in, &s));
    in.billed_ms = 100;
    in.memory_mb = 0;
    assert_false(cost_split_report(&p, &in, &s));
    assert_int_equal(s.billed_ms, 0x5a5a5a5a5a5a5a5a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_parse_price),
        cmocka_unit_test(test_gb_s),
        cmocka_unit_test(test_split_cold),
        cmocka_unit_test(test_split_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
