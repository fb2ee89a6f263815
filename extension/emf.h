/*
 * emf.h - CloudWatch embedded metric format (EMF) documents: metrics
 * without a metrics agent.
 *
 * Lambda ships an extension's stdout to the function's log group, where
 * CloudWatch turns each EMF line into metrics.  Log ingestion is billed,
 * so invocations are aggregated per environment: one document carries
 * counts (summed) and distributions (arrays of up to EMF_MAX_VALUES
 * values, one per invocation), and the pipeline writes one when its
 * interval has passed, when an array is full, and at SHUTDOWN.
 *
 * Dimensions stay low-cardinality: FunctionName and Version for every
 * metric; the cold-start count also under FunctionName and TenantId when
 * the environment serves a tenant (an environment serves one tenant;
 * tenant ids are capped in length, and in number per process).
 *
 * Owned by one thread (the pipeline's); not thread-safe.  Does not log.
 */
#ifndef LAMBDA_TRACER_EMF_H
#define LAMBDA_TRACER_EMF_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"

#define EMF_MAX_VALUES 100      /* EMF: at most 100 values in a metric's array */
#define EMF_TENANT_MAX_BYTES 64 /* longer tenant ids get no dimension (counted) */
#define EMF_MAX_TENANTS 8       /* distinct tenants per process with a dimension */
#define EMF_DOC_MAX_BYTES ((size_t)64 * 1024)

enum emf_outcome {
    EMF_OUTCOME_SUCCESS = 0,
    EMF_OUTCOME_ERROR, /* the function returned an error */
    EMF_OUTCOME_TIMEOUT,
    EMF_OUTCOME_OOM,     /* out of memory */
    EMF_OUTCOME_CRASH,   /* the runtime exited (Runtime.ExitError) */
    EMF_OUTCOME_FAILURE, /* the platform or an extension failed */
};

/* One invocation, as its report tells it.  Negative values are absent. */
struct emf_sample {
    int64_t time_ms; /* epoch ms (the report's time) */
    bool cold;
    enum emf_outcome outcome;
    double init_ms;         /* the whole Init (cold starts) */
    double init_runtime_ms; /* its "Runtime init" part */
    double init_tracer_ms;  /* our own part (registration to first /next) */
    double duration_ms;
    int64_t billed_ms;
    int64_t memory_used_mb;
    int64_t memory_size_mb;
    double cost_usd;        /* estimated, request included */
    double tracer_held_ms;  /* we held the invocation open after the response */
    double tracer_cpu_ms;   /* CPU this process used for it */
    double tracer_cost_usd; /* the price of tracer_held_ms */
    const char *tenant_id;  /* NULL or "": none */
    /* The Init this sample reports failed (platform.initReport status
     * error, failure or timeout): InitFailures 1 and init_ms as
     * FailedInitDuration.  init_only: an Init with no invocation (it
     * failed before one came): only those two metrics, no Invocations. */
    bool init_failed;
    bool init_only;
};

struct emf_options {
    const char *namespace_name;
    const char *function_name;
    const char *function_version;
};

struct emf;

/* 0 and a new aggregator (caller frees with emf_destroy), or -ENOMEM.
 * The options' strings are copied. */
int emf_new(const struct emf_options *opts, struct emf **ret) __attribute__((warn_unused_result));
void emf_destroy(struct emf *m); /* NULL-safe */

/* Adds one invocation.  0, or -EAGAIN when it does not belong in the
 * pending document (an array is full, or another tenant's): render first,
 * then add again. */
int emf_add(struct emf *m, const struct emf_sample *s) __attribute__((warn_unused_result));

/* Telemetry lost before it was read (records, batches): counted in the
 * next document. */
void emf_add_dropped(struct emf *m, uint64_t n);

/* Something waits to be written; the epoch ms of its oldest sample (0
 * when only drop counts wait). */
bool emf_pending(const struct emf *m);
int64_t emf_oldest_ms(const struct emf *m);

/* Appends the pending document as one line ('\n' included) to out and
 * empties the aggregator.  now_ms: the Timestamp when no sample gives
 * one (the oldest sample's time otherwise).  0, -ENODATA (nothing
 * pending; out unchanged), -ENOBUFS/-ENOMEM (out rolled back, the data
 * kept). */
int emf_render(struct emf *m, int64_t now_ms, struct buf *out) __attribute__((warn_unused_result));

/* Tenant ids that got no dimension (too long, control bytes, or past
 * EMF_MAX_TENANTS). */
uint64_t emf_tenants_refused(const struct emf *m);

#endif
