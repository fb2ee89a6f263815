/*
 * sampling.h - which invocations are exported, decided once the outcome is
 * known, and why.
 *
 * The extension sees each whole invocation before it exports it, so it can
 * sample on the outcome, which no in-process tracer can.  Under the default
 * policy every failed, cold, slow or header-sampled (Sampled=1) invocation
 * is kept; of the rest a steady sample like X-Ray's default rule: the first
 * invocation each second of this environment (the reservoir), then a fixed
 * 5 % (the ratio).
 *
 * The ratio's draw is a function of the trace id (its last 32 bits), not
 * of a random generator: two functions that see the same Sampled=0 trace
 * decide alike, and a test can predict every decision exactly.
 *
 * Pure: no clock, no randomness, no I/O.  A struct sampling_reservoir
 * belongs to the one thread that decides (the pipeline's).
 */
#ifndef LAMBDA_TRACER_SAMPLING_H
#define LAMBDA_TRACER_SAMPLING_H

#include <stdbool.h>
#include <stdint.h>

#include "xray_header.h"

/* X-Ray's default sampling rule: 1 per second, then 5 %. */
#define SAMPLING_RESERVOIR_PER_SECOND 1U
#define SAMPLING_RATIO_PPM 50000U
/* LAMBDA_TRACER_SLOW_MS=0 and no deadline known (Managed Instances). */
#define SAMPLING_SLOW_DEFAULT_US 1000000

enum sampling_policy {
    SAMPLING_POLICY_SMART = 0, /* outcome, cold start, slow, Sampled=1, reservoir, ratio */
    SAMPLING_POLICY_HEADER,    /* the header only: Sampled=0 is dropped, anything else kept */
    SAMPLING_POLICY_ALL,       /* everything */
};

enum sampling_outcome {
    SAMPLING_OUTCOME_SUCCESS = 0,
    SAMPLING_OUTCOME_IN_PROGRESS, /* not over and not known to be failing */
    SAMPLING_OUTCOME_TIMEOUT,     /* timed out, or about to (in-progress near the deadline) */
    SAMPLING_OUTCOME_CRASH,       /* the runtime exited */
    SAMPLING_OUTCOME_OUT_OF_MEMORY,
    SAMPLING_OUTCOME_FUNCTION_ERROR,   /* the function reported an error */
    SAMPLING_OUTCOME_PLATFORM_FAILURE, /* sandbox or extension failure, a reset, an unknown end */
    SAMPLING_OUTCOME_INIT_FAILED,
};

/* Why a segment was kept; SAMPLING_DROP: it was not. */
enum sampling_reason {
    SAMPLING_DROP = 0,
    SAMPLING_BY_OUTCOME,
    SAMPLING_BY_COLD_START,
    SAMPLING_BY_SLOW,
    SAMPLING_BY_HEADER,
    SAMPLING_BY_RESERVOIR,
    SAMPLING_BY_RATIO,
    SAMPLING_BY_ALL, /* LAMBDA_TRACER_SAMPLING=all and no other reason */
    SAMPLING_DRAW,   /* sampling_reason only: the reservoir and the ratio decide */
};
#define SAMPLING_REASON_COUNT 8 /* SAMPLING_DROP .. SAMPLING_BY_ALL */

struct sampling_input {
    enum sampling_outcome outcome;
    bool cold_start;
    int64_t duration_us;       /* so far, or in all; negative: unknown */
    int64_t slow_threshold_us; /* sampling_slow_threshold_us */
    enum xray_sampled header;  /* XRAY_SAMPLED_UNKNOWN also when there is no header */
};

/* One environment's reservoir: the second it was last taken in. */
struct sampling_reservoir {
    int64_t second; /* epoch second; INT64_MIN: never */
    uint32_t taken; /* in that second */
};

/* "outcome", "cold_start", "slow", "header", "reservoir", "ratio", "all";
 * "dropped" for SAMPLING_DROP, "draw" for SAMPLING_DRAW.  Static strings. */
const char *sampling_reason_name(enum sampling_reason reason);

/* The slow threshold of one invocation, µs: slow_ms when set (> 0); else
 * half its time budget (deadline minus start), or SAMPLING_SLOW_DEFAULT_US
 * when no deadline is known (deadline_ms <= 0, e.g. Managed Instances) or
 * it is not after the start. */
int64_t sampling_slow_threshold_us(uint32_t slow_ms, int64_t start_us, int64_t deadline_ms);

/* The part of the decision that needs no draw: the first that applies of
 * outcome (any failure), cold_start, slow (duration strictly over the
 * threshold), header (Sampled=1; under POLICY_HEADER also absent), else
 * SAMPLING_DROP (POLICY_HEADER with Sampled=0), SAMPLING_BY_ALL
 * (POLICY_ALL) or SAMPLING_DRAW (POLICY_SMART).  POLICY_HEADER drops a
 * Sampled=0 invocation whatever its outcome (today's behaviour). */
enum sampling_reason sampling_reason(enum sampling_policy policy, const struct sampling_input *in);

/* The draw for an invocation left to chance, made once per invocation:
 * SAMPLING_BY_RESERVOIR when it is the first of its start second
 * (start_us, epoch µs) to ask, else SAMPLING_BY_RATIO when draw * 10^6 <
 * ratio_ppm * 2^32, else SAMPLING_DROP.  An invocation whose second is
 * older than the reservoir's current one (reports out of order) never
 * takes the reservoir. */
enum sampling_reason sampling_draw(struct sampling_reservoir *r, int64_t start_us, uint32_t draw,
                                   uint32_t ratio_ppm);

void sampling_reservoir_init(struct sampling_reservoir *r);

/* The draw of a trace id "1-xxxxxxxx-<24 hex>": its last 8 hex digits as
 * a number.  UINT32_MAX (never kept by the ratio) when it is malformed. */
uint32_t sampling_trace_id_draw(const char *trace_id);

#endif
