/*
 * tracer.h - turns Extensions API events and Telemetry API records into
 * trace segments (trace.h).
 *
 * Owned by the pipeline thread; every function runs there.  The tracer
 * keeps the state of the execution environment (its Init, SnapStart
 * restore) and of every open invocation, correlated by request id.  A
 * segment is emitted, through the emit callback, when its invocation is
 * complete (platform.report), or earlier as an in-progress segment when the
 * invocation is about to time out, and at shutdown with whatever is known.
 * How every bound is derived is documented in tracer.c and the README.
 */
#ifndef LAMBDA_TRACER_TRACER_H
#define LAMBDA_TRACER_TRACER_H

#include <stdbool.h>
#include <stdint.h>

#include "cost.h"
#include "emf.h"
#include "ext_event.h"
#include "journal.h"
#include "sampling.h"
#include "telemetry.h"
#include "trace.h"
#include "xray_header.h"

struct tracer;

/* Called for each segment to export.  `final` is false for an in-progress
 * version (an invocation about to time out, or one exported eagerly when
 * its runtime is done); the final version follows under the same ids.  The segment is only valid during the call (copy what
 * you keep).  Whether an invocation is exported at all is decided by the
 * sampling policy when the version is made, with what is known of its
 * outcome by then; once a version went out, its final version always
 * follows.  Each segment carries its reason (annotation sampled_by). */
typedef void (*tracer_emit_fn)(const struct trace_segment *seg, bool final, void *ctx);

/* Called once for every invocation when it is complete (exported or not:
 * metrics count them all), with what its report said (emf.h).  The
 * sample's strings are only valid during the call. */
typedef void (*tracer_observe_fn)(const struct emf_sample *sample, void *ctx);

/* Called when an invocation leaves the tracer with no final segment: the
 * sampling policy left it out, or it was evicted from a full table.  No
 * segment of request_id follows (what keeps it for a successor, the
 * journal, can let it go). */
typedef void (*tracer_forget_fn)(const char *request_id, void *ctx);

struct tracer_options {
    const char *segment_name;  /* NULL or "": the function name */
    const char *function_name; /* from registration / AWS_LAMBDA_FUNCTION_NAME */
    const char *function_version;
    const char *account_id;    /* "" when unknown */
    const char *region;        /* AWS_REGION */
    int64_t memory_size_mb;    /* AWS_LAMBDA_FUNCTION_MEMORY_SIZE, 0 when unknown */
    enum sampling_policy sampling; /* which invocations are exported (sampling.h) */
    uint32_t slow_ms;          /* slow threshold; 0: auto (sampling_slow_threshold_us) */
    int64_t timeout_margin_us; /* export an in-progress segment this long before a deadline */
    unsigned log_tail_lines;   /* 0: off; else attach the last N function log lines to failures */
    size_t log_tail_max_bytes; /* cap of the attached text */
    struct cost_price price;   /* for cost_usd; all 0: no cost figures */
    struct initwatch *initwatch; /* not owned; may be NULL: the Init anatomy's sampler */
    bool snap_start;           /* AWS_LAMBDA_INITIALIZATION_TYPE=snap-start: a SnapStart
                                * restore's anatomy (and fresh ids after it) */
    tracer_emit_fn emit;
    tracer_observe_fn observe; /* may be NULL; called with ctx */
    tracer_forget_fn forget;   /* may be NULL; called with ctx */
    void *ctx;
};

struct tracer_stats {
    uint64_t segments;           /* final segments emitted */
    uint64_t in_progress;        /* in-progress versions emitted */
    uint64_t dropped;            /* invocations not exported by the sampling policy */
    uint64_t kept[SAMPLING_REASON_COUNT]; /* final segments (and failed Inits) per sampled_by */
    char first_dropped[EVENT_REQUEST_ID_MAX]; /* request id of the first dropped, "" before */
    uint64_t evicted;            /* open invocations forgotten, or new ones not tracked, because
                                  * the table was full */
    uint64_t evicted_announced;  /* of those, invocations INVOKE had announced (their context lost) */
    uint64_t closed_by_shutdown; /* invocations finished by SHUTDOWN without a platform.report */
    uint64_t recovered;          /* invocations of a killed process, from the journal */
    uint64_t telemetry_dropped_records; /* platform.logsDropped droppedRecords */
    uint64_t late_records;       /* INVOKE, start/runtimeDone/report of an invocation already exported
                                  * (a batch Lambda delivered again), ignored */
};

/* NULL on ENOMEM.  The options' strings are copied. */
struct tracer *tracer_new(const struct tracer_options *opts);
void tracer_destroy(struct tracer *t); /* NULL-safe */

/* Our own milestones in Init, on our clock (epoch µs): the end of our
 * registration and our first /event/next call. */
void tracer_set_own_init(struct tracer *t, int64_t registered_us, int64_t first_next_us);

/* We called /event/next after request_id's INVOKE at next_us (epoch µs),
 * having used cpu_us of CPU time (all our threads) since our previous
 * /event/next: what this layer cost the invocation. */
void tracer_on_released(struct tracer *t, const char *request_id, int64_t next_us, int64_t cpu_us);

/* eager: export an in-progress version as soon as the runtime is done
 * (the flush policy decided this invocation must leave before /next). */
/* false: the invocation was exported already (its INVOKE was handed over
 * after its records finished it): ignored, counted in late_records. */
bool tracer_on_invoke(struct tracer *t, const struct ext_event *ev, int64_t received_us, bool eager);
void tracer_on_telemetry(struct tracer *t, const struct tel_event *ev);
/* Counts telemetry lost before reaching the tracer (queue drops, bad batches);
 * reported on the next segment as metadata. */
void tracer_add_lost(struct tracer *t, uint64_t batches);

/* The identity an invocation's segments will carry, fixed now (for the
 * journal): false when request_id is unknown. */
struct tracer_identity {
    char trace_id[XRAY_TRACE_ID_LEN + 1];
    char segment_id[XRAY_SPAN_ID_LEN + 1];
    char parent_id[XRAY_SPAN_ID_LEN + 1];
    bool sampled;
    int64_t start_us;
    int64_t deadline_ms;
};
bool tracer_identity(struct tracer *t, const char *request_id, struct tracer_identity *ret);

/* An invocation a previous process of this environment started and did not
 * export (from the journal), with the ids it had.  It is completed by its
 * own records if they still come, else closed as ended by the reset (or, if
 * its runtime was done, by that).  Its records, still undelivered at the
 * reset, come before those of the Init that followed it (one stream, in
 * time order): a later platform.initStart or platform.start closes it.
 * reset_us: no later than this process's start, which followed the reset. */
void tracer_recover(struct tracer *t, const struct journal_entry *e, int64_t reset_us);

/* Up to how long after this process's first INVOKE a recovered invocation
 * waits for a record that proves its own will not come (telemetry that
 * never arrives; tracer_tick closes it then). */
#define TRACER_RECOVERED_WAIT_US INT64_C(5000000)

/* This process's first INVOKE came at now_us: starts that wait. */
void tracer_recovered_invoke(struct tracer *t, int64_t now_us);

/* Emits every recovered invocation still open, now (SHUTDOWN). */
void tracer_close_recovered(struct tracer *t);

/* SHUTDOWN: every invocation still open is closed with what is known, its
 * outcome taken from the reason when no record says otherwise. */
void tracer_on_shutdown(struct tracer *t, const struct ext_event *ev, int64_t received_us);

/* Emits in-progress versions for invocations within the margin of their
 * deadline.  Returns the next time (epoch µs) this should run, or -1. */
int64_t tracer_tick(struct tracer *t, int64_t now_us);

/* An Init has started and its platform.initReport has not arrived: at
 * SHUTDOWN (a failed Init resets the sandbox) its outcome is worth waiting
 * for, within the shutdown budget. */
bool tracer_init_pending(const struct tracer *t);

/* Invocations started and not yet emitted as final. */
unsigned tracer_open_count(const struct tracer *t);

void tracer_get_stats(const struct tracer *t, struct tracer_stats *ret);

/* The environment as an OTLP resource (function, region, instance...). */
void tracer_get_resource(const struct tracer *t, struct trace_resource *ret);

#endif
