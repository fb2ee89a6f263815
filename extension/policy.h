/*
 * policy.h - the flush policy and the SHUTDOWN budget, as pure functions.
 *
 * Every decision about time that the lifecycle and the pipeline used to cut
 * on their own lives here, with its inputs passed in (no clock reads, no
 * state but the struct the caller owns), so that each can be unit-tested:
 *   - eager or background export for an INVOKE (flush=eager|background|auto:
 *     the first invocations of an environment, and any after a long quiet
 *     spell), and the window during which eager export stays off after a
 *     miss (telemetry late or lost, a flush over its bound);
 *   - how long an eager invocation may be held, and what is left of that
 *     bound for the flush once the runtime is done;
 *   - the one SHUTDOWN budget: everything ends SHUTDOWN_EXIT_MARGIN_MS
 *     before the event's deadline, and the wait for the last telemetry
 *     ends SHUTDOWN_SAFETY_MARGIN_MS before it, leaving the difference to
 *     the exporters.
 * Which thread: whoever owns the struct policy_flush (the lifecycle thread,
 * through pipeline_post_event); the other functions are pure.
 */
#ifndef LAMBDA_TRACER_POLICY_H
#define LAMBDA_TRACER_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

/* Export before /next costs the invocation the telemetry delivery delay
 * (timeoutMs) plus one export round trip; these bound it. */
#define POLICY_EAGER_EXPORT_MAX_MS 250

struct policy_flush {
    enum config_flush mode;
    uint32_t eager_first;     /* auto: the first N invocations are eager */
    int64_t eager_idle_ms;    /* auto: and any after this long without one */
    uint64_t decisions;       /* INVOKEs decided so far */
    int64_t last_invoke_ms;   /* monotonic; 0 before the first */
    int64_t off_until_ms;     /* eager export off until then (monotonic) */
};

/* From the settings.  Pure. */
void policy_flush_init(struct policy_flush *p, const struct config *cfg);

/* Decides one INVOKE at now_ms (monotonic, > 0): true for eager.  can_export:
 * some exporter is configured (eager without one holds for nothing).
 * Records the decision (the auto mode counts INVOKEs and their spacing,
 * whatever the answer).  Pure but for *p. */
bool policy_flush_decide(struct policy_flush *p, int64_t now_ms, bool can_export);

/* A miss at now_ms: eager export off for EXPORT_EAGER_OFF_MS.  Pure but
 * for *p. */
void policy_flush_off(struct policy_flush *p, int64_t now_ms);

/* Bounds of an eager hold, CLOCK_MONOTONIC ns (see pipeline_wait). */
struct policy_hold {
    int64_t bound_ms;          /* telemetry delay + POLICY_EAGER_EXPORT_MAX_MS */
    int64_t start_deadline_ns; /* platform.start handled by then, or telemetry is not flowing */
    int64_t done_deadline_ns;  /* the hold ends then whatever happens */
};

/* For an INVOKE with deadline_ms (epoch ms, 0: none), at now (epoch µs and
 * monotonic ns): platform.start is due within the bound; the runtime may
 * run until its deadline minus the timeout margin (without a deadline,
 * export_timeout_ms).  Pure. */
void policy_hold_bounds(const struct config *cfg, int64_t deadline_ms, int64_t now_epoch_us,
                        int64_t now_ns, struct policy_hold *ret);

/* What is left of the hold's bound for the flush once the runtime was done
 * at done_us (epoch µs, 0: unknown): at most POLICY_EAGER_EXPORT_MAX_MS,
 * less whatever of the bound has passed since then; <= 0: nothing left.
 * Pure. */
int64_t policy_flush_left_ms(int64_t bound_ms, int64_t done_us, int64_t now_epoch_us);

/* The SHUTDOWN budget, CLOCK_MONOTONIC ns. */
struct policy_shutdown {
    int64_t end_ns;           /* everything ends: deadline - SHUTDOWN_EXIT_MARGIN_MS */
    int64_t telemetry_end_ns; /* the wait for the last records ends: at most
                               * telemetry_wait_ms after the event, and at the
                               * latest deadline - SHUTDOWN_SAFETY_MARGIN_MS */
};

/* For a SHUTDOWN with deadline_ms (epoch ms, 0: none, then
 * SHUTDOWN_DEFAULT_BUDGET_MS from its arrival) received at received_us
 * (epoch), computed at now (epoch µs and monotonic ns): the same answer
 * whoever asks, whenever.  Pure. */
void policy_shutdown_budget(int64_t deadline_ms, int64_t received_us, uint32_t telemetry_wait_ms,
                            int64_t now_epoch_us, int64_t now_ns, struct policy_shutdown *ret);

#endif
