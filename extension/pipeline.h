/*
 * pipeline.h - the pipeline thread: the single consumer of the queue.
 *
 * It owns all per-environment and per-invocation state.  Producers hand it
 * raw telemetry bodies (listener thread) and Extensions API events
 * (lifecycle thread) through the queue; it parses, assembles and, with the
 * traces issue, exports.  On SHUTDOWN it keeps consuming until every
 * invocation it saw has its final platform.report, or until the wait
 * budget runs out, then reports itself drained.
 */
#ifndef LAMBDA_TRACER_PIPELINE_H
#define LAMBDA_TRACER_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "export.h"
#include "ext_event.h"
#include "journal.h"
#include "queue.h"
#include "telemetry.h"

/* Queue item kinds. */
enum pipeline_item_kind {
    PIPELINE_ITEM_TELEMETRY = 1, /* data: char * body (NUL-terminated), bytes: its length */
    PIPELINE_ITEM_EVENT = 2,     /* data: struct pipeline_event * */
    PIPELINE_ITEM_READY = 3,     /* data: struct pipeline_ready *: our own Init milestones */
    PIPELINE_ITEM_RELEASED = 4,  /* data: struct pipeline_released *: we are done with an invocation */
};

/* We are about to call /event/next after request_id's INVOKE (epoch µs),
 * having used cpu_us of process CPU time since our previous /next. */
struct pipeline_released {
    char request_id[EVENT_REQUEST_ID_MAX];
    int64_t next_us;
    int64_t cpu_us;
};

/* Our registration finished and our first /event/next began (epoch µs). */
struct pipeline_ready {
    int64_t registered_us;
    int64_t first_next_us;
};

/* What the pipeline needs to know about the function. */
struct pipeline_function {
    const char *name;
    const char *version;
    const char *account_id;
    const char *region;
    int64_t memory_size_mb;
    struct exporter *exporter; /* not owned; may be NULL (segments are only counted) */
    /* not owned; may be NULL.  Started invocations are recorded in it and
     * released once exported (the exporter's on_handled must call
     * journal_release with the ticket). */
    struct journal *journal;
    struct initwatch *initwatch; /* not owned; may be NULL (Init anatomy) */
    /* Invocations a killed predecessor left in the journal (copied), and a
     * time no later than the reset that killed it (this process's start). */
    const struct journal_entry *recovered;
    size_t recovered_count;
    int64_t reset_us;
};

/* An Extensions API event with the moment we received it. */
struct pipeline_event {
    struct ext_event event;
    int64_t received_us; /* epoch microseconds */
    bool eager;          /* INVOKE: export before the next /event/next */
};

struct pipeline_stats {
    uint64_t batches;          /* telemetry bodies parsed */
    uint64_t bad_batches;      /* bodies that were not a JSON array */
    uint64_t records;          /* records parsed */
    uint64_t invalid_records;  /* elements without time/type/record */
    uint64_t by_type[TEL_TYPE_COUNT];
    uint64_t invokes;
    uint64_t platform_dropped_records; /* sum of platform.logsDropped droppedRecords */
    uint64_t unreported;       /* invocations still without platform.report at the end */
    uint64_t segments;         /* final segments produced */
    uint64_t in_progress;      /* in-progress versions produced */
    uint64_t dropped;          /* invocations the sampling policy left out */
    uint64_t kept[SAMPLING_REASON_COUNT]; /* exported invocations per sampled_by */
    uint64_t closed_by_shutdown;
    uint64_t recovered;        /* invocations of a killed predecessor, from the journal */
    uint64_t evicted_invocations; /* forgotten or not tracked: the tracer's table was full */
    uint64_t evicted_announced;   /* of those, announced by INVOKE */
    uint64_t attrs_dropped;       /* segment attributes left out: past TRACE_MAX_ATTRS */
    uint64_t journal_full;     /* invocations not journaled: every slot held */
    uint64_t metric_documents; /* EMF documents written to stdout */
    uint64_t metric_documents_failed; /* not written (stdout failed or out of memory) */
};

struct pipeline;

/* Creates the pipeline and starts its thread, consuming q (not owned).  The
 * function's strings are copied.  Main thread only.  0, -ENOMEM or -EAGAIN. */
int pipeline_start(const struct config *cfg, const struct pipeline_function *fn, struct queue *q,
                   struct pipeline **ret)
    __attribute__((warn_unused_result));

/* Frees a queue item's data (matches queue_free_fn). */
void pipeline_free_item(int kind, void *data);

/* Waits until the pipeline has handled a SHUTDOWN item and drained, or
 * until deadline_ns (CLOCK_MONOTONIC).  true when drained.  Main thread. */
bool pipeline_wait_drained(struct pipeline *p, int64_t deadline_ns);

/* Bounds of the eager wait for one invocation's platform.runtimeDone. */
struct pipeline_wait {
    int64_t start_deadline_ns; /* its platform.start (or runtimeDone) handled by then, or
                                * telemetry is not flowing: the wait ends */
    int64_t done_deadline_ns;  /* the wait ends then at the latest (the invocation's deadline) */
    int64_t since_ns;          /* a telemetry batch lost (unparsable, or dropped by a full
                                * queue) at or after this time ends the wait at once: it may
                                * have carried the runtimeDone */
};

/* Waits until the pipeline has handled platform.runtimeDone for
 * request_id (and handed an eager invocation's segment to the exporters),
 * within the bounds of *w (CLOCK_MONOTONIC).  0 when runtimeDone was
 * handled (*ret_done_us, may be NULL: its record's time, epoch µs, 0 when
 * unknown); -ENODATA when platform.start did not come in time; -EPIPE when
 * a batch was lost during the wait; -ETIMEDOUT at done_deadline_ns (or when
 * the pipeline drained).  Main thread. */
int pipeline_wait_runtime_done(struct pipeline *p, const char *request_id, const struct pipeline_wait *w,
                               int64_t *ret_done_us) __attribute__((warn_unused_result));

/* A telemetry batch was lost before the pipeline could read it (the queue
 * was full): wakes an eager wait (see pipeline_wait.since_ns).  Any thread;
 * NULL-safe. */
void pipeline_telemetry_lost(struct pipeline *p);

/* Joins the thread once the queue is closed (it consumes what is left
 * first) and frees the pipeline.  Main thread; NULL-safe. */
void pipeline_stop(struct pipeline *p, struct pipeline_stats *ret_stats);

#endif
