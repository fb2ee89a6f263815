/*
 * fuzz_sampling.c - the sampling decision (sampling.c) on arbitrary input.
 *
 * The first 12 bytes choose the policy, the outcome, the cold flag, the
 * header's Sampled value, a duration, a slow setting and a deadline; the
 * rest is read as a trace id (sampling_trace_id_draw parses it).  Checked:
 * a draw other than UINT32_MAX only for a valid trace id, and equal to its
 * last 8 hex digits; every failure kept by its outcome unless the header
 * policy drops a Sampled=0 one; SAMPLING_DRAW only under the default
 * policy; a positive slow threshold; the reservoir gives at most one per
 * second.  A violation aborts.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sampling.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
    if (!ok)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char id[64];
    size_t id_len;
    struct sampling_input in;
    struct sampling_reservoir r;
    enum sampling_policy policy;
    enum sampling_reason reason;
    uint32_t draw;
    int64_t start_us, deadline_ms, slow_us;
    uint32_t slow_ms;

    if (size < 12)
        return 0;
    policy = (enum sampling_policy)(data[0] % 3);
    in.outcome = (enum sampling_outcome)(data[1] % 8);
    in.cold_start = data[2] & 1;
    in.header = (enum xray_sampled)((int)(data[3] % 3) - 1);
    in.duration_us = ((int64_t)(int8_t)data[4]) * 100000;
    slow_ms = (uint32_t)data[5] * 4000;
    start_us = (int64_t)data[6] * 1000000 + (int64_t)data[7] * 1000;
    deadline_ms = data[8] == 0xff ? INT64_MAX : (int64_t)(int8_t)data[8] * 1000 + start_us / 1000;
    id_len = size - 12 < sizeof(id) - 1 ? size - 12 : sizeof(id) - 1;
    memcpy(id, data + 12, id_len);
    id[id_len] = '\0';

    slow_us = sampling_slow_threshold_us(slow_ms, start_us, deadline_ms);
    check(slow_us > 0);
    if (slow_ms > 0)
        check(slow_us == (int64_t)slow_ms * 1000);
    in.slow_threshold_us = slow_us;

    draw = sampling_trace_id_draw(id);
    if (!xray_trace_id_valid(id, strlen(id)))
        check(draw == UINT32_MAX);
    else
        check(draw == (uint32_t)strtoul(id + XRAY_TRACE_ID_LEN - 8, NULL, 16));

    reason = sampling_reason(policy, &in);
    check(reason != SAMPLING_DRAW || policy == SAMPLING_POLICY_SMART);
    check(reason != SAMPLING_DROP || (policy == SAMPLING_POLICY_HEADER && in.header == XRAY_SAMPLED_NO));
    if (in.outcome != SAMPLING_OUTCOME_SUCCESS && in.outcome != SAMPLING_OUTCOME_IN_PROGRESS &&
        reason != SAMPLING_DROP)
        check(reason == SAMPLING_BY_OUTCOME);
    check(strcmp(sampling_reason_name(reason), "") != 0);

    /* the reservoir: one per second, whatever order the starts come in */
    sampling_reservoir_init(&r);
    unsigned taken = 0;
    for (size_t i = 9; i < 12; i++) {
        int64_t t = start_us + (int64_t)(data[i] % 4) * 400000;
        enum sampling_reason d = sampling_draw(&r, t, draw, SAMPLING_RATIO_PPM);
        check(d == SAMPLING_BY_RESERVOIR || d == SAMPLING_BY_RATIO || d == SAMPLING_DROP);
        taken += d == SAMPLING_BY_RESERVOIR;
        check((d == SAMPLING_BY_RATIO) == ((uint64_t)draw * 1000000U < ((uint64_t)SAMPLING_RATIO_PPM << 32)) ||
              d == SAMPLING_BY_RESERVOIR);
    }
    check(taken >= 1 && taken <= 3);
    return 0;
}
