/*
 * cost.h - what an invocation cost, from its platform.report: billed
 * GB-seconds and an estimated price per phase (Init, the invocation, the
 * time extensions held it open after the response, ours among them).
 *
 * Pure arithmetic, no state, no logging; any thread.  Prices are the
 * built-in table (us-east-1, first tier; see the README "What it costs")
 * unless a setting overrides them.
 */
#ifndef LAMBDA_TRACER_COST_H
#define LAMBDA_TRACER_COST_H

#include <stdbool.h>
#include <stdint.h>

enum cost_arch {
    COST_ARCH_X86_64 = 0,
    COST_ARCH_ARM64,
};

struct cost_price {
    double gb_s_usd;    /* per GB-second of billed duration */
    double request_usd; /* per request */
};

/* Published Lambda prices, us-east-1, first tier (checked 2026-12-02):
 * x86_64 $0.0000166667 and arm64 $0.0000133334 per GB-second, $0.20 per
 * million requests. */
#define COST_X86_64_GB_S_USD 0.0000166667
#define COST_ARM64_GB_S_USD 0.0000133334
#define COST_REQUEST_USD 0.0000002

/* The architecture this binary was built for (the layer ships one per
 * architecture, and runs on the function's). */
enum cost_arch cost_arch_built(void);
const char *cost_arch_name(enum cost_arch arch); /* "x86_64" / "arm64" */

/* The built-in price for arch. */
void cost_price_default(enum cost_arch arch, struct cost_price *ret);

/* A price setting: a plain decimal number ("0.0000166667", "1.5e-5"),
 * finite, >= 0 and < 1 (a dollar per GB-second or per request is a typo).
 * 0 and *ret_usd, or -EINVAL (nothing written). */
int cost_parse_price(const char *text, double *ret_usd) __attribute__((warn_unused_result));

/* GB-seconds of billed_ms at memory_mb: billed_ms / 1000 * (memory_mb /
 * 1024), in that order (tests recompute it the same way).  0 when either
 * is not positive. */
double cost_gb_s(int64_t billed_ms, int64_t memory_mb);

/* price->gb_s_usd * cost_gb_s(billed_ms, memory_mb). */
double cost_duration_usd(const struct cost_price *price, int64_t billed_ms, int64_t memory_mb);

/* One invocation's report split into phases.  All inputs in ms as the
 * report gives them; a negative value means absent. */
struct cost_input {
    int64_t billed_ms;            /* billedDurationMs */
    int64_t memory_mb;            /* memorySizeMB */
    double duration_ms;           /* durationMs (invoke to the last extension's next) */
    double init_duration_ms;      /* initDurationMs: present on a cold start */
    double after_response_ms;     /* runtime's next to the last extension's next */
    double own_after_response_ms; /* of that, the time we held it (our next minus the runtime's) */
};

struct cost_split {
    int64_t billed_ms;        /* the report's, Init included when billed */
    int64_t init_billed_ms;   /* the Init's share of billed_ms */
    int64_t invoke_billed_ms; /* billed_ms - init_billed_ms */
    int64_t after_billed_ms;  /* extensions after the response (within invoke_billed_ms) */
    int64_t own_billed_ms;    /* ours (within after_billed_ms) */
    double gb_s;              /* billed GB-seconds: billed_ms at memory_mb */
    double usd;               /* billed_ms plus the request */
    double init_usd;
    double invoke_usd; /* invoke_billed_ms plus the request */
    double after_usd;
    double own_usd;
};

/* Splits a report.  Since 2025-08-01 Init is billed for every runtime and
 * the report's billedDurationMs then covers it: the Init's share is what
 * billed_ms holds beyond the invocation's own rounded-up duration, at most
 * the Init's rounded-up duration (0 where Init was not billed).  false
 * (ret untouched) when billed_ms or memory_mb is absent. */
bool cost_split_report(const struct cost_price *price, const struct cost_input *in,
                       struct cost_split *ret);

#endif
