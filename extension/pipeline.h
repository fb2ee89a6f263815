/*
 * pipeline.h - the event-loop thread: the listener, parsing, the tracer,
 * forensics' sampler, the Init watcher's samples, and handing segments to
 * the exporters, in one poll loop (loop.h) that sleeps while nothing
 * happens.
 *
 * The lifecycle thread meets it at one small hand-off: events in
 * (pipeline_post_*: INVOKE, SHUTDOWN, our Init milestones, "released"),
 * and three answers out, each with its own condition: "runtimeDone of the
 * held invocation handled" (pipeline_hold), "drained" (pipeline_wait_drained)
 * and "finished" (pipeline_stop).  The pipeline owns its flush policy
 * (policy.h) and its exporter, which it starts at the first segment (Init
 * runs with two threads).  On SHUTDOWN it keeps going until every
 * invocation it saw has its final platform.report, or until the telemetry
 * part of the SHUTDOWN budget runs out, then reports itself drained.
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
#include "listener.h"
#include "queue.h"
#include "telemetry.h"

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
    /* The exporters (copied; its on_handled is the pipeline's); NULL: none,
     * segments are only counted.  Started at the first segment. */
    const struct export_config *export_cfg;
    /* not owned; may be NULL.  Started invocations are recorded in it and
     * released once exported. */
    struct journal *journal;
    /* not owned; may be NULL (Init anatomy): sampled by a loop timer every
     * interval until the tracer stops it.  Outlives the pipeline. */
    struct initwatch *initwatch;
    /* Opened (listener_open), not running; the pipeline's from a successful
     * pipeline_start (its loop runs it, pipeline_stop closes it).  NULL:
     * no telemetry. */
    struct listener *listener;
    /* Invocations a killed predecessor left in the journal (copied), and a
     * time no later than the reset that killed it (this process's start). */
    const struct journal_entry *recovered;
    size_t recovered_count;
    int64_t reset_us;
    /* AWS_LAMBDA_INITIALIZATION_TYPE is snap-start: Init ends in a snapshot
     * and the watcher goes on to the restore. */
    bool snap_start;
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
    uint64_t late_records;        /* records of invocations already exported, ignored */
    uint64_t attrs_dropped;       /* segment attributes left out: past TRACE_MAX_ATTRS */
    uint64_t journal_full;     /* invocations not journaled: every slot held */
    uint64_t metric_documents; /* EMF documents written to stdout */
    uint64_t metric_documents_failed; /* not written (stdout failed or out of memory) */
};

struct pipeline;

/* Creates the pipeline and starts its loop thread.  The function's strings
 * are copied.  Main thread only.  0, -ENOMEM or a negative errno (the
 * listener then stays the caller's). */
int pipeline_start(const struct config *cfg, const struct pipeline_function *fn, struct pipeline **ret)
    __attribute__((warn_unused_result));

/* Hands an Extensions API event received at received_us (epoch) to the
 * loop.  For an INVOKE, decides the flush (policy.h): true when the caller
 * must call pipeline_hold before its next /event/next.  An event the
 * hand-off has no room for is dropped and counted (queue_dropped).  Main
 * thread; p may be NULL (false). */
bool pipeline_post_event(struct pipeline *p, const struct ext_event *ev, int64_t received_us);

/* Our registration finished and our first /event/next begins (epoch µs). */
void pipeline_post_ready(struct pipeline *p, int64_t registered_us, int64_t first_next_us);

/* We are about to call /event/next after request_id's INVOKE (epoch µs),
 * having used cpu_us of process CPU time since our previous /next. */
void pipeline_post_released(struct pipeline *p, const char *request_id, int64_t next_us, int64_t cpu_us);

/* Eager export of an INVOKE pipeline_post_event said to hold (invoke_ns:
 * when it came, CLOCK_MONOTONIC): waits for the runtime to finish (its
 * runtimeDone handled by the loop) and flushes the exporters, holding the
 * invocation at most the Telemetry API's delivery delay (timeoutMs) plus
 * POLICY_EAGER_EXPORT_MAX_MS after the runtime finished:
 * - no platform.start within that: telemetry is not flowing, go on;
 * - a batch lost after INVOKE (unparsable, over the intake bound): it may
 *   have carried the runtimeDone, which will then never come: go on;
 * - runtimeDone came: the flush gets what is left of the bound, counted
 *   from the runtimeDone record's time; nothing left: go on.
 * Until one of these, the handler may still be running, and the wait lasts
 * up to the invocation's deadline minus the timeout margin.  Each miss
 * turns eager export off for a while (logged).  Main thread. */
void pipeline_hold(struct pipeline *p, const struct ext_event *ev, int64_t invoke_ns);

/* Times the loop woke a hold (tests, bench).  Main thread. */
uint64_t pipeline_hold_signals(struct pipeline *p);

/* Waits until the loop has handled a SHUTDOWN and drained, or until
 * deadline_ns (CLOCK_MONOTONIC).  true when drained.  Main thread. */
bool pipeline_wait_drained(struct pipeline *p, int64_t deadline_ns);

/* What the pipeline counted, for the summary. */
struct pipeline_result {
    struct pipeline_stats stats;
    struct queue_stats intake;     /* bodies and events taken, dropped */
    struct listener_stats listener;
    bool has_listener;
    struct export_stats exporter;
    bool has_exporter;
    bool left_running;             /* a thread did not end by end_ns */
};

/* Stops: the listener stops accepting and gives requests in progress up to
 * drain_ms, the loop ends (waited for until end_ns, CLOCK_MONOTONIC), then
 * the exporters send what is queued until end_ns.  true when everything
 * ended and was freed; false when a thread did not end in time: the caller
 * must not tear down libcurl or the journal, and should exit.  *ret gets
 * the counts either way (zeros for what did not end).  Main thread;
 * NULL-safe (true). */
bool pipeline_stop(struct pipeline *p, int64_t end_ns, int drain_ms, struct pipeline_result *ret);

#endif
