/* Unit tests for sampling.c: the keep/drop decision and its reason. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "sampling.h"
#include "fail_alloc.h"

#define S 1000000LL /* µs per second */

static struct sampling_input plain(void)
{
    struct sampling_input in = {
        .outcome = SAMPLING_OUTCOME_SUCCESS,
        .cold_start = false,
        .duration_us = 10000,
        .slow_threshold_us = 1000000,
        .header = XRAY_SAMPLED_NO,
    };
    return in;
}

static void test_every_failure_is_kept_by_outcome(void **state)
{
    static const enum sampling_outcome failures[] = {
        SAMPLING_OUTCOME_TIMEOUT,        SAMPLING_OUTCOME_CRASH,
        SAMPLING_OUTCOME_OUT_OF_MEMORY,  SAMPLING_OUTCOME_FUNCTION_ERROR,
        SAMPLING_OUTCOME_PLATFORM_FAILURE, SAMPLING_OUTCOME_INIT_FAILED,
    };
    (void)state;
    for (size_t i = 0; i < sizeof(failures) / sizeof(failures[0]); i++) {
        struct sampling_input in = plain();
        in.outcome = failures[i];
        assert_int_equal(sampling_reason(SAMPLING_POLICY_SMART, &in), SAMPLING_BY_OUTCOME);
        assert_int_equal(sampling_reason(SAMPLING_POLICY_ALL, &in), SAMPLING_BY_OUTCOME);
        /* the outcome wins over every other reason */
        in.cold_start = true;
        in.duration_us = 5 * S;
        in.header = XRAY_SAMPLED_YES;
        assert_int_equal(sampling_reason(SAMPLING_POLICY_SMART, &in), SAMPLING_BY_OUTCOME);
        assert_int_equal(sampling_reason(SAMPLING_POLICY_HEADER, &in), SAMPLING_BY_OUTCOME);
        /* header-only policy: Sampled=0 is dropped whatever happened */
        in.header = XRAY_SAMPLED_NO;
        assert_int_equal(sampling_reason(SAMPLING_POLICY_HEADER, &in), SAMPLING_DROP);
    }
    /* neither success nor in-progress is an outcome worth keeping */
    struct sampling_input in = plain();
    assert_int_equal(sampling_reason(SAMPLING_POLICY_SMART, &in), SAMPLING_DRAW);
    in.outcome = SAMPLING_OUTCOME_IN_PROGRESS;
    assert_int_equal(sampling_reason(SAMPLING_POLICY_SMART, &in), SAMPLING_DRAW);
}

static void test_cold_slow_header_in_that_order(void **state)
{
    struct sampling_input in = plain();
    (void)state;
    in.cold_start = true;
    in.duration_us = 2 * S;
    in.header = XRAY_SAMPLED_YES;
    assert_int_equal(sampling_reason(SAMPLING_POLICY_SMART, &in), SAMPLING_BY_COLD_START);
    in.cold_start = false;
    assert_int_equal(sampling_reason(SAMPLING_POLICY_SMART, &in), SAMPLING_BY_SLOW);
    in.duration_us = 1000;
    assert_int_equal(sampling_reason(SAMPLING_POLICY_SMART, &in), SAMPLING_BY_HEADER);
    in.header = XRAY_SAMPLED_UNKNOWN; /* no decision in the header: ours to make */
    assert_int_equal(sampling_reason(SAMPLING_POLICY_SMART, &in), SAMPLING_DRAW);
    in.header = XRAY_SAMPLED_NO;
    assert_int_equal(sampling_reason(SAMPLING_POLICY_SMART, &in), SAMPLING_DRAW);
}

static void test_slow_is_strictly_over_the_threshold(void **state)
{
    struct sampling_input in = plain();
    (void)state;
    in.slow_threshold_us = 500000;
    in.duration_us = 500000;
    assert_int_equal(sampling_reason(SAMPLING_POLICY_SMART, &in), SAMPLING_DRAW);
    in.duration_us = 500001;
    assert_int_equal(sampling_reason(SAMPLING_POLICY_SMART, &in), SAMPLING_BY_SLOW);
    in.duration_us = -1; /* unknown: never slow */
    in.slow_threshold_us = -5;
    assert_int_equal(sampling_reason(SAMPLING_POLICY_SMART, &in), SAMPLING_DRAW);
}

static void test_header_policy_is_todays_behaviour(void **state)
{
    struct sampling_input in = plain();
    (void)state;
    in.header = XRAY_SAMPLED_NO;
    in.cold_start = true;
    in.duration_us = 9 * S;
    assert_int_equal(sampling_reason(SAMPLING_POLICY_HEADER, &in), SAMPLING_DROP);
    in = plain();
    in.header = XRAY_SAMPLED_UNKNOWN; /* absent: kept, as before */
    assert_int_equal(sampling_reason(SAMPLING_POLICY_HEADER, &in), SAMPLING_BY_HEADER);
    in.header = XRAY_SAMPLED_YES;
    assert_int_equal(sampling_reason(SAMPLING_POLICY_HEADER, &in), SAMPLING_BY_HEADER);
    in.cold_start = true;
    assert_int_equal(sampling_reason(SAMPLING_POLICY_HEADER, &in), SAMPLING_BY_COLD_START);
}

static void test_all_policy_keeps_everything_naming_the_best_reason(void **state)
{
    struct sampling_input in = plain();
    (void)state;
    assert_int_equal(sampling_reason(SAMPLING_POLICY_ALL, &in), SAMPLING_BY_ALL);
    in.header = XRAY_SAMPLED_YES;
    assert_int_equal(sampling_reason(SAMPLING_POLICY_ALL, &in), SAMPLING_BY_HEADER);
    in.duration_us = 2 * S;
    assert_int_equal(sampling_reason(SAMPLING_POLICY_ALL, &in), SAMPLING_BY_SLOW);
}

static void test_reservoir_is_one_per_second(void **state)
{
    struct sampling_reservoir r;
    (void)state;
    sampling_reservoir_init(&r);
    /* draw UINT32_MAX: never in the ratio, so only the reservoir keeps */
    assert_int_equal(sampling_draw(&r, 100 * S + 999999, UINT32_MAX, SAMPLING_RATIO_PPM), SAMPLING_BY_RESERVOIR);
    assert_int_equal(sampling_draw(&r, 100 * S + 999999, UINT32_MAX, SAMPLING_RATIO_PPM), SAMPLING_DROP);
    assert_int_equal(sampling_draw(&r, 100 * S, UINT32_MAX, SAMPLING_RATIO_PPM), SAMPLING_DROP);
    /* the next second opens a new one */
    assert_int_equal(sampling_draw(&r, 101 * S, UINT32_MAX, SAMPLING_RATIO_PPM), SAMPLING_BY_RESERVOIR);
    assert_int_equal(sampling_draw(&r, 101 * S + 1, UINT32_MAX, SAMPLING_RATIO_PPM), SAMPLING_DROP);
    /* an older second, reported late, never takes it back */
    assert_int_equal(sampling_draw(&r, 100 * S + 5, UINT32_MAX, SAMPLING_RATIO_PPM), SAMPLING_DROP);
    /* a gap of seconds: the first after it takes the reservoir */
    assert_int_equal(sampling_draw(&r, 250 * S, UINT32_MAX, SAMPLING_RATIO_PPM), SAMPLING_BY_RESERVOIR);
    /* the very first call, whatever its second (0 and negative included) */
    sampling_reservoir_init(&r);
    assert_int_equal(sampling_draw(&r, 0, UINT32_MAX, SAMPLING_RATIO_PPM), SAMPLING_BY_RESERVOIR);
    sampling_reservoir_init(&r);
    assert_int_equal(sampling_draw(&r, -1, UINT32_MAX, SAMPLING_RATIO_PPM), SAMPLING_BY_RESERVOIR);
    assert_int_equal(sampling_draw(&r, 0, UINT32_MAX, SAMPLING_RATIO_PPM), SAMPLING_BY_RESERVOIR);
    assert_int_equal(sampling_draw(&r, -1, UINT32_MAX, SAMPLING_RATIO_PPM), SAMPLING_DROP);
}

static void test_ratio_boundary_is_exact(void **state)
{
    struct sampling_reservoir r;
    /* 5 % of 2^32 = 214748364.8: 214748364 is in, 214748365 is out */
    (void)state;
    sampling_reservoir_init(&r);
    assert_int_equal(sampling_draw(&r, 7 * S, 0, SAMPLING_RATIO_PPM), SAMPLING_BY_RESERVOIR);
    assert_int_equal(sampling_draw(&r, 7 * S, 0, SAMPLING_RATIO_PPM), SAMPLING_BY_RATIO);
    assert_int_equal(sampling_draw(&r, 7 * S, 214748364U, SAMPLING_RATIO_PPM), SAMPLING_BY_RATIO);
    assert_int_equal(sampling_draw(&r, 7 * S, 214748365U, SAMPLING_RATIO_PPM), SAMPLING_DROP);
    assert_int_equal(sampling_draw(&r, 7 * S, UINT32_MAX, SAMPLING_RATIO_PPM), SAMPLING_DROP);
    /* ratio 0 keeps nothing, 100 % keeps everything */
    assert_int_equal(sampling_draw(&r, 7 * S, 0, 0), SAMPLING_DROP);
    assert_int_equal(sampling_draw(&r, 7 * S, UINT32_MAX, 1000000), SAMPLING_BY_RATIO);
}

static void test_ratio_share_over_many_draws(void **state)
{
    struct sampling_reservoir r;
    unsigned kept = 0;
    /* evenly spread draws: exactly the share asked for, +-1 */
    (void)state;
    sampling_reservoir_init(&r);
    r.second = INT64_MAX; /* reservoir out of the way */
    for (uint32_t i = 0; i < 100000; i++) {
        uint32_t draw = (uint32_t)(((uint64_t)i << 32) / 100000);
        kept += sampling_draw(&r, 1 * S, draw, SAMPLING_RATIO_PPM) == SAMPLING_BY_RATIO;
    }
    assert_in_range(kept, 4999, 5001);
}

static void test_trace_id_draw(void **state)
{
    (void)state;
    assert_int_equal(sampling_trace_id_draw("1-5759e988-bd862e3fe1be46a9942727ff"), 0x942727ffU);
    assert_int_equal(sampling_trace_id_draw("1-5759e988-bd862e3fe1be46a900000000"), 0);
    assert_int_equal(sampling_trace_id_draw("1-5759e988-BD862E3FE1BE46A9ABCDEF01"), 0xabcdef01U);
    /* malformed: never kept by the ratio */
    assert_int_equal(sampling_trace_id_draw(NULL), UINT32_MAX);
    assert_int_equal(sampling_trace_id_draw(""), UINT32_MAX);
    assert_int_equal(sampling_trace_id_draw("1-5759e988-bd862e3fe1be46a99427270"), UINT32_MAX);
    assert_int_equal(sampling_trace_id_draw("1-5759e988-bd862e3fe1be46a9942727000"), UINT32_MAX);
    assert_int_equal(sampling_trace_id_draw("1-5759e988-bd862e3fe1be46a99427270g"), UINT32_MAX);
    assert_int_equal(sampling_trace_id_draw("2-5759e988-bd862e3fe1be46a900000000"), UINT32_MAX);
}

static void test_slow_threshold(void **state)
{
    (void)state;
    /* set: used as is, whatever the deadline */
    assert_int_equal(sampling_slow_threshold_us(250, 10 * S, 13000), 250000);
    assert_int_equal(sampling_slow_threshold_us(900000, 10 * S, 0), 900000LL * 1000);
    /* auto: half the budget (deadline 13.000 s, start 10.000 s) */
    assert_int_equal(sampling_slow_threshold_us(0, 10 * S, 13000), 1500000);
    assert_int_equal(sampling_slow_threshold_us(0, 10 * S + 1, 13000), 1499999);
    /* no deadline (Managed Instances), or one not after the start: 1 s */
    assert_int_equal(sampling_slow_threshold_us(0, 10 * S, 0), SAMPLING_SLOW_DEFAULT_US);
    assert_int_equal(sampling_slow_threshold_us(0, 10 * S, -5), SAMPLING_SLOW_DEFAULT_US);
    assert_int_equal(sampling_slow_threshold_us(0, 10 * S, 10000), SAMPLING_SLOW_DEFAULT_US);
    assert_int_equal(sampling_slow_threshold_us(0, 10 * S, 9000), SAMPLING_SLOW_DEFAULT_US);
    /* a hostile deadline cannot overflow */
    assert_int_equal(sampling_slow_threshold_us(0, 10 * S, INT64_MAX), SAMPLING_SLOW_DEFAULT_US);
    assert_true(sampling_slow_threshold_us(0, 0, INT64_MAX / 1000 - 1) > 0);
}

static void test_reason_names(void **state)
{
    (void)state;
    assert_string_equal(sampling_reason_name(SAMPLING_BY_OUTCOME), "outcome");
    assert_string_equal(sampling_reason_name(SAMPLING_BY_COLD_START), "cold_start");
    assert_string_equal(sampling_reason_name(SAMPLING_BY_SLOW), "slow");
    assert_string_equal(sampling_reason_name(SAMPLING_BY_HEADER), "header");
    assert_string_equal(sampling_reason_name(SAMPLING_BY_RESERVOIR), "reservoir");
    assert_string_equal(sampling_reason_name(SAMPLING_BY_RATIO), "ratio");
    assert_string_equal(sampling_reason_name(SAMPLING_BY_ALL), "all");
    assert_string_equal(sampling_reason_name(SAMPLING_DROP), "dropped");
    assert_string_equal(sampling_reason_name((enum sampling_reason)99), "dropped");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_failure_is_kept_by_outcome),
        cmocka_unit_test(test_cold_slow_header_in_that_order),
        cmocka_unit_test(test_slow_is_strictly_over_the_threshold),
        cmocka_unit_test(test_header_policy_is_todays_behaviour),
        cmocka_unit_test(test_all_policy_keeps_everything_naming_the_best_reason),
        cmocka_unit_test(test_reservoir_is_one_per_second),
        cmocka_unit_test(test_ratio_boundary_is_exact),
        cmocka_unit_test(test_ratio_share_over_many_draws),
        cmocka_unit_test(test_trace_id_draw),
        cmocka_unit_test(test_slow_threshold),
        cmocka_unit_test(test_reason_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
