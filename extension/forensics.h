/*
 * forensics.h - when to look at the runtime from outside, and what the
 * segment then says: the policy around procsnap.
 *
 * Owned by the pipeline thread; every function runs there.  The pipeline
 * feeds it the invocations' milestones (INVOKE, platform.start,
 * runtimeDone, platform.report), asks it when it next wants to run (the
 * queue wait's deadline, like tracer_tick: no thread and no timer of its
 * own) and passes every segment through forensics_decorate on its way to
 * the exporters.
 *
 * Policy:
 *   - A fast invocation costs nothing: no /proc read, no wake-up.  Nothing
 *     is read at an invocation's start (CPU figures are then since the
 *     runtime process started, and the sentence says so).
 *   - Slow: once an invocation has run for the slow threshold (slow_ms, or
 *     half its time budget, or FORENSICS_SLOW_DEFAULT_MS without a
 *     deadline) a snapshot every FORENSICS_SLOW_INTERVAL_MS, at most
 *     FORENSICS_SLOW_MAX_SNAPSHOTS, while it runs; consecutive snapshots
 *     make the "where the time went" summary.  One snapshot serves every
 *     invocation due at the same moment (it is process-wide).
 *   - Timeout: one snapshot at the deadline minus the margin (when the
 *     in-progress version is made), and, without a deadline (Managed
 *     Instances), when a timeout's report arrives (the handler is not
 *     stopped there).
 *   - Out of memory, crash: the last snapshot if one was taken, and the
 *     memory used per invocation over the last FORENSICS_MEMORY_HISTORY
 *     invocations (platform.report maxMemoryUsedMB).
 * What it adds to a segment: the snapshot (trace_segment.snapshot_json),
 * metadata "diagnosis" (one sentence), "where_the_time_went",
 * "snapshot_scope", "memory_trend"; and the sentence in the cause message
 * of a timeout (after the platform's own text) or of an out-of-memory or
 * crash.
 */
#ifndef LAMBDA_TRACER_FORENSICS_H
#define LAMBDA_TRACER_FORENSICS_H

#include <stdbool.h>
#include <stdint.h>

#include "procsnap.h"
#include "telemetry.h"
#include "trace.h"

#define FORENSICS_SLOW_DEFAULT_MS 1000 /* no deadline known (Managed Instances) */
#define FORENSICS_SLOW_INTERVAL_MS 100
#define FORENSICS_SLOW_MAX_SNAPSHOTS 8
#define FORENSICS_MAX_OPEN 32          /* invocations followed at once */
#define FORENSICS_MEMORY_HISTORY 8
/* A snapshot is taken within this much wall time (procsnap_opts.budget_us);
 * past it the snapshot is partial.  Wall, not CPU: on a loaded machine our
 * thread waits for a core (measured on a 2-core box at load 10: 35-70 ms
 * wall for a snapshot whose sock_diag dump walked 3,800 sockets).  It must
 * leave the in-progress export its share of the timeout margin. */
#define FORENSICS_SNAPSHOT_BUDGET_US 150000
/* A wake-up this late means the sandbox was frozen (or the machine
 * starved us): what was due belongs to an invocation long over. */
#define FORENSICS_STALE_US 1000000

struct forensics;

/* Takes a snapshot of the runtime (procsnap_take with found roots by
 * default; tests give their own).  0 or a negative errno; *ret written on
 * success. */
typedef int (*forensics_snap_fn)(void *ctx, struct procsnap *ret);

struct forensics_options {
    uint32_t slow_ms;          /* LAMBDA_TRACER_SLOW_MS; 0: auto */
    int64_t timeout_margin_us; /* the snapshot before a deadline */
    const char *proc_root;     /* NULL: /proc */
    /* AWS_LAMBDA_RUNTIME_API ("127.0.0.1:9001", "[::1]:9001"), NULL or "":
     * unknown.  The runtime's own connections to it, and the threads
     * blocked on them (a worker waiting for its next event), are not the
     * function's: they are left out of every snapshot, and a snapshot in
     * which every thread waits there shows a runtime between invocations
     * (outside Managed Instances: the invocation is over). */
    const char *runtime_api;
    forensics_snap_fn snap;    /* NULL: procsnap on the runtime found from /proc */
    void *snap_ctx;
};

struct forensics_stats {
    uint64_t snapshots;         /* taken (each /proc pass counts once) */
    uint64_t snapshot_failures; /* runtime not found or unreadable */
    uint64_t snapshot_cpu_us;   /* our CPU time spent taking them */
    uint64_t slow;              /* invocations that passed the slow threshold */
    uint64_t diagnosed;         /* segments given a diagnosis */
    uint64_t runtime_finds;     /* procsnap_find_runtime calls */
    uint64_t json_too_big;      /* snapshots left off a segment: over TRACE_SNAPSHOT_MAX */
    uint64_t idle;              /* snapshots of a runtime between invocations (not used) */
};

/* NULL on ENOMEM.  Every function below accepts a NULL f (and does
 * nothing, decorate returns seg): the pipeline runs on without forensics. */
struct forensics *forensics_new(const struct forensics_options *opts);
void forensics_destroy(struct forensics *f); /* NULL-safe */

/* INVOKE (received_us: epoch µs; deadline_ms: epoch ms, 0 when unknown).
 * Lambda runs one invocation at a time per process outside Managed
 * Instances, and only those send INVOKE: any other invocation seen is over. */
void forensics_on_invoke(struct forensics *f, const char *request_id, int64_t received_us,
                         int64_t deadline_ms);

/* A platform record (start, runtimeDone, report; others are ignored).
 * Call before the tracer sees it. */
void forensics_on_telemetry(struct forensics *f, const struct tel_event *ev);

/* Takes the snapshots due at now_us (epoch µs).  Returns the next time it
 * wants to run, or -1.  Call before tracer_tick. */
int64_t forensics_tick(struct forensics *f, int64_t now_us);

/* The segment to export: seg itself, or a copy (owned by f, valid until
 * the next call) with what forensics knows about its invocation. */
const struct trace_segment *forensics_decorate(struct forensics *f, const struct trace_segment *seg,
                                               bool final);

void forensics_get_stats(const struct forensics *f, struct forensics_stats *ret);

/* The memory trend sentence for the history (oldest first, n values in MB),
 * e.g. "max memory used by the last 5 invocations: 40, 52, 64, 77, 89 MB
 * (growing steadily: a leak?)".  "" when n < 2.  Pure; exposed for tests. */
void forensics_memory_trend(const int64_t *mb, unsigned n, char *out, size_t size);

#endif
