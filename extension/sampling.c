/*
 * sampling.c - see sampling.h.
 */
#include "sampling.h"

#include <string.h>

#include "ids.h"

const char *sampling_reason_name(enum sampling_reason reason)
{
    switch (reason) {
    case SAMPLING_BY_OUTCOME:
        return "outcome";
    case SAMPLING_BY_COLD_START:
        return "cold_start";
    case SAMPLING_BY_SLOW:
        return "slow";
    case SAMPLING_BY_HEADER:
        return "header";
    case SAMPLING_BY_RESERVOIR:
        return "reservoir";
    case SAMPLING_BY_RATIO:
        return "ratio";
    case SAMPLING_BY_ALL:
        return "all";
    case SAMPLING_DRAW:
        return "draw";
    case SAMPLING_DROP:
    default:
        return "dropped";
    }
}

int64_t sampling_slow_threshold_us(uint32_t slow_ms, int64_t start_us, int64_t deadline_ms)
{
    if (slow_ms > 0)
        return (int64_t)slow_ms * 1000;
    /* deadline_ms is an epoch; bound it before scaling so a hostile value
     * cannot overflow (year 2286 in ms is ~1e13, far below this). */
    if (deadline_ms > 0 && deadline_ms < INT64_MAX / 1000 && deadline_ms * 1000 > start_us)
        return (deadline_ms * 1000 - start_us) / 2;
    return SAMPLING_SLOW_DEFAULT_US;
}

enum sampling_reason sampling_reason(enum sampling_policy policy, const struct sampling_input *in)
{
    if (policy == SAMPLING_POLICY_HEADER && in->header == XRAY_SAMPLED_NO)
        return SAMPLING_DROP;
    if (in->outcome != SAMPLING_OUTCOME_SUCCESS && in->outcome != SAMPLING_OUTCOME_IN_PROGRESS)
        return SAMPLING_BY_OUTCOME;
    if (in->cold_start)
        return SAMPLING_BY_COLD_START;
    if (in->duration_us >= 0 && in->duration_us > in->slow_threshold_us)
        return SAMPLING_BY_SLOW;
    if (in->header == XRAY_SAMPLED_YES || policy == SAMPLING_POLICY_HEADER)
        return SAMPLING_BY_HEADER;
    return policy == SAMPLING_POLICY_ALL ? SAMPLING_BY_ALL : SAMPLING_DRAW;
}

void sampling_reservoir_init(struct sampling_reservoir *r)
{
    r->second = INT64_MIN;
    r->taken = 0;
}

enum sampling_reason sampling_draw(struct sampling_reservoir *r, int64_t start_us, uint32_t draw,
                                   uint32_t ratio_ppm)
{
    /* floor division: a start before 1970 is nonsense, but stays ordered */
    int64_t second = start_us >= 0 ? start_us / 1000000 : (start_us + 1) / 1000000 - 1;

    if (second > r->second) {
        r->second = second;
        r->taken = 0;
    }
    if (second == r->second && r->taken < SAMPLING_RESERVOIR_PER_SECOND) {
        r->taken++;
        return SAMPLING_BY_RESERVOIR;
    }
    if ((uint64_t)draw * 1000000U < ((uint64_t)ratio_ppm << 32))
        return SAMPLING_BY_RATIO;
    return SAMPLING_DROP;
}

uint32_t sampling_trace_id_draw(const char *trace_id)
{
    uint32_t v = 0;

    if (trace_id == NULL ||
        !xray_trace_id_valid(trace_id, strnlen(trace_id, XRAY_TRACE_ID_LEN + 1)))
        return UINT32_MAX;
    for (size_t i = XRAY_TRACE_ID_LEN - 8; i < XRAY_TRACE_ID_LEN; i++)
        v = (v << 4) | (uint32_t)ids_hex_value(trace_id[i]);
    return v;
}
