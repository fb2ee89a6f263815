/*
 * pipeline.c - see pipeline.h.
 *
 * The loop thread owns everything below `stats`; the lifecycle thread
 * reads nothing of it until the loop thread has finished.  What both sides
 * see while running lives under `lock`: the hand-off ring (events in), the
 * hold's facts (platform.start / runtimeDone of the invocation the
 * lifecycle thread waits for, a lost batch), `drained` and `finished`, each
 * wait with its own condition variable, signalled only when its waiter's
 * answer may have changed.
 */
#include "pipeline.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "emf.h"
#include "forensics.h"
#include "initwatch.h"
#include "listener.h"
#include "loop.h"
#include "policy.h"
#include "ring.h"
#include "limits.h"
#include "log.h"
#include "tracer.h"

/* Invocations whose platform.report has not arrived yet.  Under normal
 * operation this holds one or two ids (report N arrives during N+1). */
#define OUTSTANDING_MAX 64
/* Events from the lifecycle thread not yet taken by the loop: it takes all
 * at each wake-up, and the lifecycle thread posts two per invocation.  A
 * loop busy with a large batch (or starved of CPU) while short invocations
 * follow each other can fall behind by more than the inline ring holds:
 * it then grows, up to HANDOFF_MAX (an item is about 1.2 KB), and goes
 * back to the inline one once the loop has caught up.  Past the bound,
 * items are dropped and counted. */
#define HANDOFF_INLINE 32
#define HANDOFF_MAX 1024

enum handoff_kind { HANDOFF_EVENT = 1, HANDOFF_READY, HANDOFF_RELEASED };

struct handoff_item {
    enum handoff_kind kind;
    union {
        struct pipeline_event event;
        struct pipeline_ready ready;
        struct pipeline_released released;
    } u;
};

struct outstanding {
    char request_id[EVENT_REQUEST_ID_MAX];
    bool announced; /* by INVOKE: never the one forgotten for a newcomer */
};

struct pipeline {
    struct config cfg;
    pthread_t thread;
    struct loop *loop;
    struct tracer *tracer;
    struct forensics *forensics; /* NULL: none (out of memory at start) */
    struct listener *listener;   /* owned; NULL: none */
    struct initwatch *initwatch; /* not owned; NULL: none */
    struct loop_timer initwatch_timer;
    bool export_wanted;          /* an exporter is configured */
    struct export_config export_cfg;
    struct journal *journal;
    bool journal_failed_logged;
    bool drop_logged; /* the first invocation left out by sampling was logged */
    struct policy_flush flush;   /* the lifecycle thread's */

    pthread_mutex_t lock;
    pthread_cond_t hold_cond;    /* the hold's facts changed */
    pthread_cond_t drained_cond; /* drained or finished */
    /* under lock */
    struct exporter *exporter;   /* started at the first segment; NULL before */
    bool export_start_failed;
    struct ring handoff;
    struct handoff_item handoff_inline[HANDOFF_INLINE];
    uint64_t handoff_dropped;
    bool stop_requested;
    int stop_drain_ms;
    bool drained;
    bool finished;
    char hold_request_id[EVENT_REQUEST_ID_MAX]; /* the eager invocation ("": none) */
    char started_request_id[EVENT_REQUEST_ID_MAX]; /* last platform.start handled */
    char done_request_id[EVENT_REQUEST_ID_MAX];    /* last runtimeDone handled */
    int64_t done_time_us;   /* the last runtimeDone's record time */
    /* The held invocation's own records, once seen: a record for another
     * id handled right after (a redelivery, a duplicate) cannot hide them,
     * as it overwrites the slots above. */
    bool hold_started, hold_done;
    int64_t hold_done_us;
    int64_t lost_at_ns;     /* when a telemetry batch was last lost (0: never) */
    uint64_t hold_signals;  /* hold_cond signals (tests, bench) */
    /* The loop's counters as of its last body or event (publish()): what
     * the summary says should the stop give up on the loop's thread. */
    struct pipeline_stats shown_stats;
    struct queue_stats shown_intake;
    struct listener_stats shown_listener;
    bool shown_has_listener;

    /* loop thread only */
    struct queue_stats intake; /* bodies and events taken or dropped */
    bool shutting_down;
    bool drain_done;
    struct pipeline_event shutdown;
    int64_t drain_deadline_ns;
    size_t outstanding_count;
    struct outstanding outstanding[OUTSTANDING_MAX];
    struct pipeline_stats stats;
    struct emf *metrics;      /* NULL: metrics off */
    char fn_name[256];
    char fn_version[64];
    int64_t metrics_flushed_ms; /* epoch ms of the last document (0: none yet) */
};

static void outstanding_drop_at(struct pipeline *p, size_t i)
{
    memmove(&p->outstanding[i], &p->outstanding[i + 1], (p->outstanding_count - i - 1) * sizeof(p->outstanding[0]));
    p->outstanding_count--;
}

/* An invocation whose platform.report SHUTDOWN waits for: known from its
 * INVOKE event or, with no INVOKE (Managed Instances), from platform.start.
 * Full: the oldest not announced by INVOKE is forgotten (its report is
 * long overdue, or it is one of a flood of ids the platform never invoked
 * us for); only when every one was announced, the oldest.  Counted. */
static void outstanding_add(struct pipeline *p, const char *request_id, bool announced)
{
    for (size_t i = 0; i < p->outstanding_count; i++) {
        if (strcmp(p->outstanding[i].request_id, request_id) == 0) {
            p->outstanding[i].announced = p->outstanding[i].announced || announced;
            return;
        }
    }
    if (p->outstanding_count == OUTSTANDING_MAX) {
        size_t victim = 0;
        for (size_t i = 0; i < p->outstanding_count; i++) {
            if (!p->outstanding[i].announced) {
                victim = i;
                break;
            }
        }
        outstanding_drop_at(p, victim);
        p->stats.unreported++;
    }
    struct outstanding *o = &p->outstanding[p->outstanding_count++];
    snprintf(o->request_id, sizeof(o->request_id), "%s", request_id);
    o->announced = announced;
}

static void outstanding_remove(struct pipeline *p, const char *request_id)
{
    for (size_t i = 0; i < p->outstanding_count; i++) {
        if (strcmp(p->outstanding[i].request_id, request_id) == 0) {
            outstanding_drop_at(p, i);
            return;
        }
    }
}

/* error: the failed write's negative errno. */
static void journal_failed(struct pipeline *p, int error)
{
    if (p->journal_failed_logged)
        return;
    p->journal_failed_logged = true;
    log_warn("the invocation journal could not be written (%s); continuing without it "
             "(invocations of a killed process will not be recovered)",
             strerror(error < 0 ? -error : EIO));
}

/* Never silent: the first invocation the sampling policy leaves out is
 * logged, with the setting that changes it; later ones are counted
 * (shutdown summary). */
static void note_first_drop(struct pipeline *p)
{
    struct tracer_stats ts;

    if (p->drop_logged)
        return;
    tracer_get_stats(p->tracer, &ts);
    if (ts.dropped == 0)
        return;
    p->drop_logged = true;
    if (p->cfg.sampling == SAMPLING_POLICY_HEADER)
        log_info("invocation %s not exported: its trace header says Sampled=0 and "
                 "LAMBDA_TRACER_SAMPLING=header honours it; LAMBDA_TRACER_SAMPLING=smart (the default) "
                 "or all exports it; further ones are only counted (dropped= at shutdown)",
                 ts.first_dropped);
    else
        log_info("invocation %s not exported: it succeeded, was neither a cold start nor slow, its "
                 "trace header did not say Sampled=1, and it fell outside the sample of the rest "
                 "(the first each second, then 5 %%); LAMBDA_TRACER_SAMPLING=all exports every "
                 "invocation; further ones are only counted (dropped= at shutdown)",
                 ts.first_dropped);
}

/* A metrics document waits at most this long for stdout (a stalled
 * reader): it is then counted as not written. */
#define METRICS_WRITE_MAX_MS 200

/* Writes the pending metrics as one EMF document on stdout (Lambda sends
 * an extension's stdout to the function's log group, where CloudWatch
 * turns it into metrics).  Failing open: a document that cannot be
 * written is counted and dropped. */
static void metrics_flush(struct pipeline *p, int64_t deadline_ns)
{
    struct buf b;
    int64_t now_ms = clock_epoch_us() / 1000;
    int r;

    if (p->metrics == NULL || !emf_pending(p->metrics))
        return;
    buf_init(&b, EMF_DOC_MAX_BYTES);
    r = emf_render(p->metrics, now_ms, &b);
    if (r == 0)
        r = log_write_stdout(buf_data(&b), buf_len(&b), deadline_ns);
    if (r == 0) {
        p->stats.metric_documents++;
    } else {
        if (p->stats.metric_documents_failed++ == 0)
            log_warn("could not write a metrics document (%s); dropping it, counting further ones",
                     strerror(-r));
        if (r == -ENOBUFS || r == -ENOMEM) {
            /* Not renderable: start a new window rather than retry forever. */
            emf_destroy(p->metrics);
            const struct emf_options o = {p->cfg.metrics_namespace, p->fn_name, p->fn_version};
            if (emf_new(&o, &p->metrics) < 0)
                p->metrics = NULL;
        }
    }
    p->metrics_flushed_ms = now_ms;
    buf_free(&b);
}

/* With the segments: after a telemetry batch, at most once per interval
 * (the first complete invocation goes out at once). */
static void metrics_maybe_flush(struct pipeline *p)
{
    if (p->metrics == NULL || !emf_pending(p->metrics))
        return;
    if (p->metrics_flushed_ms == 0 ||
        clock_epoch_us() / 1000 - p->metrics_flushed_ms >= (int64_t)p->cfg.metrics_interval_s * 1000)
        metrics_flush(p, clock_mono_ns() + METRICS_WRITE_MAX_MS * 1000000LL);
}

static void on_observe(const struct emf_sample *sample, void *ctx)
{
    struct pipeline *p = ctx;

    if (p->metrics == NULL)
        return;
    if (emf_add(p->metrics, sample) == -EAGAIN) {
        metrics_flush(p, clock_mono_ns() + METRICS_WRITE_MAX_MS * 1000000LL);
        if (p->metrics == NULL || emf_add(p->metrics, sample) < 0)
            p->stats.metric_documents_failed++;
    }
}

/* No segment of request_id will be made (sampling left it out, or the
 * table evicted it): its journal slot is free, or the journal would fill
 * with invocations that need nothing, stop taking new ones, and hand
 * them to a successor as unfinished. */
static void on_forget(const char *request_id, void *ctx)
{
    struct pipeline *p = ctx;

    journal_release(p->journal, journal_find(p->journal, request_id));
}

/* A telemetry batch was lost (unparsable, over the intake bound): an
 * eager hold stops waiting for it.  Loop thread. */
static void telemetry_lost(struct pipeline *p)
{
    pthread_mutex_lock(&p->lock);
    p->lost_at_ns = clock_mono_ns();
    if (p->hold_request_id[0] != '\0') {
        p->hold_signals++;
        pthread_cond_signal(&p->hold_cond);
    }
    pthread_mutex_unlock(&p->lock);
}

/* platform.start or runtimeDone: noted for the hold, which is woken only
 * when it is for the invocation held (set when its INVOKE was posted). */
static void hold_note(struct pipeline *p, const struct tel_event *ev)
{
    pthread_mutex_lock(&p->lock);
    if (ev->type == TEL_RUNTIME_DONE) {
        snprintf(p->done_request_id, sizeof(p->done_request_id), "%s", ev->request_id);
        p->done_time_us = ev->time_us > 0 ? ev->time_us : 0;
    } else {
        snprintf(p->started_request_id, sizeof(p->started_request_id), "%s", ev->request_id);
    }
    if (p->hold_request_id[0] != '\0' && strcmp(p->hold_request_id, ev->request_id) == 0) {
        if (ev->type == TEL_RUNTIME_DONE) {
            p->hold_done = true;
            p->hold_done_us = p->done_time_us;
        } else {
            p->hold_started = true;
        }
        p->hold_signals++;
        pthread_cond_signal(&p->hold_cond);
    }
    pthread_mutex_unlock(&p->lock);
}

static void count_lost_batch(struct pipeline *p)
{
    tracer_add_lost(p->tracer, 1);
    if (p->metrics != NULL)
        emf_add_dropped(p->metrics, 1);
    telemetry_lost(p);
}

/* A SnapStart restore resumed the Init watcher (tracer.c): sample again,
 * from now (the timer's old deadline is on a clock that may have jumped). */
static void initwatch_rearm(struct pipeline *p)
{
    if (initwatch_take_resumed(p->initwatch))
        loop_timers_arm(loop_timers(p->loop), &p->initwatch_timer, clock_mono_ns());
}

/* body is the listener's buffer: the batch's strings are decoded in place
 * in it, and it is handed back only after the batch is freed. */
static void handle_telemetry(struct pipeline *p, char *body, size_t len)
{
    struct tel_batch *batch = NULL;
    struct exporter *held = p->exporter;
    int r;

    /* The intake's bound (LAMBDA_TRACER_QUEUE_MAX_BYTES): a body over it is
     * dropped and counted, as the queue between threads did. */
    if (len > p->cfg.queue_max_bytes) {
        p->intake.dropped++;
        p->intake.dropped_bytes += len;
        count_lost_batch(p);
        return;
    }
    p->intake.pushed++;
    struct tel_parse_error why = {0};
    r = tel_batch_parse_inplace(body, len, &batch, &why);
    if (r < 0) {
        p->stats.bad_batches++;
        count_lost_batch(p);
        if (r == -ENOMEM)
            log_warn("dropping a telemetry batch of %zu bytes: out of memory", len);
        else
            log_warn("dropping a telemetry batch of %zu bytes: not valid JSON (%s at byte %zu)", len, why.what,
                     why.offset);
        return;
    }
    p->stats.batches++;
    p->stats.invalid_records += batch->invalid;
    if (batch->invalid > 0) {
        log_debug("skipped %zu telemetry records without time, type and record", batch->invalid);
        telemetry_lost(p); /* one of them may have been the held invocation's runtimeDone */
    }
    if (held != NULL)
        export_hold(held); /* one exporter wake-up per batch */
    for (size_t i = 0; i < batch->count; i++) {
        const struct tel_event *ev = &batch->events[i];

        p->stats.records++;
        p->stats.by_type[ev->type]++;
        if (ev->type == TEL_START && ev->request_id != NULL)
            outstanding_add(p, ev->request_id, false);
        if (ev->type == TEL_REPORT && ev->request_id != NULL)
            outstanding_remove(p, ev->request_id);
        if (ev->type == TEL_LOGS_DROPPED && ev->dropped_records != TEL_ABSENT) {
            p->stats.platform_dropped_records += (uint64_t)ev->dropped_records;
            if (p->metrics != NULL)
                emf_add_dropped(p->metrics, (uint64_t)ev->dropped_records);
        }
        log_debug("telemetry type=%s request_id=%s status=%s error_type=%s", ev->type_name,
                  ev->request_id ? ev->request_id : "-", tel_status_name(ev->status),
                  ev->error_type ? ev->error_type : "-");
        forensics_on_telemetry(p->forensics, ev);
        tracer_on_telemetry(p->tracer, ev);
        initwatch_rearm(p);
        if (ev->type == TEL_RUNTIME_DONE && ev->request_id != NULL) {
            int jr = journal_done(p->journal, ev->request_id, ev->time_us, (int)ev->status, ev->error_type);
            if (jr < 0 && jr != -ENOENT && jr != -ENODEV)
                journal_failed(p, jr);
        }
        if ((ev->type == TEL_RUNTIME_DONE || ev->type == TEL_START) && ev->request_id != NULL)
            hold_note(p, ev);
    }
    if (held != NULL)
        export_release(held);
    tel_batch_free(batch);
    note_first_drop(p);
    metrics_maybe_flush(p);
}

/* Records the invocation's identity, so that a process started after this
 * one is killed can still export it. */
static void journal_invoke(struct pipeline *p, const char *request_id)
{
    struct tracer_identity id;
    struct journal_entry e = {0};
    int r;

    if (p->journal != NULL && !journal_ok(p->journal)) {
        journal_failed(p, journal_error(p->journal)); /* e.g. a release's write, on the exporter's thread */
        return;
    }
    if (p->journal == NULL || strlen(request_id) >= sizeof(e.request_id) ||
        !tracer_identity(p->tracer, request_id, &id) ||
        (!id.sampled && p->cfg.sampling == SAMPLING_POLICY_HEADER) ||
        id.trace_id[0] == '\0' || id.segment_id[0] == '\0')
        return;
    snprintf(e.request_id, sizeof(e.request_id), "%s", request_id);
    memcpy(e.trace_id, id.trace_id, sizeof(e.trace_id));
    memcpy(e.segment_id, id.segment_id, sizeof(e.segment_id));
    memcpy(e.parent_id, id.parent_id, sizeof(e.parent_id));
    e.sampled = id.sampled;
    e.start_us = id.start_us;
    e.deadline_ms = id.deadline_ms;
    r = journal_begin(p->journal, &e);
    if (r == -EBUSY)
        p->stats.journal_full++;
    else if (r < 0)
        journal_failed(p, r);
}

static void handle_event(struct pipeline *p, const struct pipeline_event *pe)
{
    const struct ext_event *ev = &pe->event;

    if (ev->type == EXT_EVENT_INVOKE) {
        p->stats.invokes++;
        /* A predecessor's invocations whose records have not come wait a
         * bounded time more (their records may be in a batch still on
         * its way); a record after them closes them sooner. */
        tracer_recovered_invoke(p->tracer, pe->received_us);
        log_debug("event INVOKE request_id=%s deadline_ms=%lld traced=%s", ev->request_id,
                  (long long)ev->deadline_ms, ev->trace_header[0] ? "yes" : "no");
        if (!tracer_on_invoke(p->tracer, ev, pe->received_us, pe->eager))
            return; /* exported already: nothing to wait for, journal or watch */
        outstanding_add(p, ev->request_id, true);
        forensics_on_invoke(p->forensics, ev->request_id, pe->received_us, ev->deadline_ms);
        initwatch_rearm(p);
        journal_invoke(p, ev->request_id);
        note_first_drop(p);
        return;
    }
    /* SHUTDOWN: wait for the final records, within the one budget. */
    struct policy_shutdown b;
    policy_shutdown_budget(ev->deadline_ms, pe->received_us, p->cfg.shutdown_telemetry_wait_ms,
                           clock_epoch_us(), clock_mono_ns(), &b);
    p->shutting_down = true;
    p->shutdown = *pe;
    p->drain_deadline_ns = b.telemetry_end_ns;
    log_debug("event SHUTDOWN reason=%s waiting up to %lld ms for %zu invocation reports%s",
              ext_shutdown_reason_name(ev->shutdown_reason),
              (long long)((b.telemetry_end_ns - clock_mono_ns()) / 1000000), p->outstanding_count,
              tracer_init_pending(p->tracer) ? " and the Init's outcome" : "");
}

/* On the exporter thread: journaled segments were exported (or counted as
 * lost): their slots are free. */
static void on_export_handled(const int *tickets, size_t n, void *ctx)
{
    struct pipeline *p = ctx;

    journal_release_many(p->journal, tickets, n);
}

/* The exporter, started at the first segment: Init (and an environment
 * that never exports) runs without its thread.  NULL when none is
 * configured or it could not start (logged once; segments are counted). */
static struct exporter *exporter_get(struct pipeline *p)
{
    struct exporter *e = NULL;
    int r;

    if (p->exporter != NULL || !p->export_wanted || p->export_start_failed)
        return p->exporter;
    r = export_start(&p->export_cfg, &e);
    if (r < 0) {
        pthread_mutex_lock(&p->lock);
        p->export_start_failed = true;
        pthread_mutex_unlock(&p->lock);
        log_error("exporters could not start: %s; segments will only be counted", strerror(-r));
        return NULL;
    }
    pthread_mutex_lock(&p->lock);
    p->exporter = e;
    pthread_mutex_unlock(&p->lock);
    return e;
}

/* A segment is ready: hand it to the exporters (which encode it at once
 * and send it from their own thread). */
static void on_segment(const struct trace_segment *tracer_seg, bool final, void *ctx)
{
    struct pipeline *p = ctx;
    const struct trace_segment *seg = forensics_decorate(p->forensics, tracer_seg, final);

    /* The journal's slot is released once the final version is handled. */
    int slot = final && seg->kind == TRACE_SEGMENT_INVOCATION ? journal_find(p->journal, seg->request_id) : -1;

    if (final)
        p->stats.segments++;
    else
        p->stats.in_progress++;
    p->stats.attrs_dropped += seg->attrs_dropped;
    struct exporter *e = exporter_get(p);
    if (e != NULL) {
        struct trace_resource res;
        tracer_get_resource(p->tracer, &res);
        memcpy(res.otel_service_name, p->cfg.service_name, sizeof(res.otel_service_name));
        res.extra_attrs = p->cfg.resource_attrs;
        res.extra_attrs_len = p->cfg.resource_attrs_len;
        if (export_submit(e, seg, &res, final, slot) < 0) {
            log_debug("segment for %s not queued for export (counted)", seg->request_id);
            journal_release(p->journal, slot);
        }
    } else {
        journal_release(p->journal, slot);
    }
    if (!log_enabled(LOG_LEVEL_DEBUG))
        return;
    log_debug("segment %s request_id=%s trace_id=%s id=%s parent=%s start_us=%lld end_us=%lld "
              "spans=%zu error=%d fault=%d cause=%s",
              final ? "final" : "in_progress", seg->request_id, seg->trace_id, seg->id,
              seg->parent_id[0] ? seg->parent_id : "-", (long long)seg->start_us,
              (long long)seg->end_us, seg->span_count, seg->error, seg->fault,
              seg->cause_type[0] ? seg->cause_type : "-");
    for (size_t i = 0; i < seg->span_count; i++)
        log_debug("  span %s name=\"%s\" parent=%d start_us=%lld end_us=%lld", seg->spans[i].id,
                  seg->spans[i].name, seg->spans[i].parent, (long long)seg->spans[i].start_us,
                  (long long)seg->spans[i].end_us);
}

/* SHUTDOWN drained (or out of time): close what is still open. */
static void finish_shutdown(struct pipeline *p)
{
    struct tracer_stats ts;

    tracer_on_shutdown(p->tracer, &p->shutdown.event, p->shutdown.received_us);
    tracer_get_stats(p->tracer, &ts);
    p->stats.recovered = ts.recovered;
    p->stats.dropped = ts.dropped;
    memcpy(p->stats.kept, ts.kept, sizeof(p->stats.kept));
    p->stats.closed_by_shutdown = ts.closed_by_shutdown;
    p->stats.evicted_invocations = ts.evicted;
    p->stats.evicted_announced = ts.evicted_announced;
    p->stats.late_records = ts.late_records;
    note_first_drop(p);
    /* The last metrics, before the lifecycle thread (waiting for us within
     * the shutdown budget) lets the process exit. */
    {
        /* Within what is left of the shutdown wait, and never longer than
         * an ordinary flush. */
        int64_t deadline = clock_mono_ns() + METRICS_WRITE_MAX_MS * 1000000LL;
        if (p->drain_deadline_ns > clock_mono_ns() && p->drain_deadline_ns < deadline)
            deadline = p->drain_deadline_ns;
        metrics_flush(p, deadline);
    }
}

static void set_drained(struct pipeline *p)
{
    pthread_mutex_lock(&p->lock);
    p->drained = true;
    pthread_cond_broadcast(&p->drained_cond);
    if (p->hold_request_id[0] != '\0') {
        p->hold_signals++;
        pthread_cond_signal(&p->hold_cond);
    }
    pthread_mutex_unlock(&p->lock);
}

static void log_forensics(const struct pipeline *p)
{
    struct forensics_stats fs;

    forensics_get_stats(p->forensics, &fs);
    log_info("forensics snapshots=%llu failures=%llu slow=%llu diagnosed=%llu runtime_finds=%llu "
             "json_too_big=%llu idle=%llu cpu_us=%llu", (unsigned long long)fs.snapshots,
             (unsigned long long)fs.snapshot_failures, (unsigned long long)fs.slow,
             (unsigned long long)fs.diagnosed, (unsigned long long)fs.runtime_finds,
             (unsigned long long)fs.json_too_big, (unsigned long long)fs.idle,
             (unsigned long long)fs.snapshot_cpu_us);
}

static void on_initwatch_timer(struct loop_timer *t, int64_t now_ns, void *ctx)
{
    struct pipeline *p = ctx;

    if (initwatch_sample(p->initwatch))
        loop_timers_arm(loop_timers(p->loop), t, now_ns + (int64_t)initwatch_interval_ms(p->initwatch) * 1000000);
}

static void handle_item(struct pipeline *p, const struct handoff_item *it)
{
    switch (it->kind) {
    case HANDOFF_EVENT:
        handle_event(p, &it->u.event);
        break;
    case HANDOFF_RELEASED:
        tracer_on_released(p->tracer, it->u.released.request_id, it->u.released.next_us,
                           it->u.released.cpu_us);
        break;
    case HANDOFF_READY:
        tracer_set_own_init(p->tracer, it->u.ready.registered_us, it->u.ready.first_next_us);
        break;
    }
}

/* Copies the loop's counters where pipeline_stop can read them when the
 * loop does not end in time.  Loop thread, once a round (before its poll):
 * a copy per body or event cost the loop too much under TSan. */
static void publish(struct pipeline *p)
{
    pthread_mutex_lock(&p->lock);
    p->shown_stats = p->stats;
    p->shown_intake = p->intake;
    p->shown_intake.dropped += p->handoff_dropped;
    if (p->listener != NULL)
        listener_get_stats(p->listener, &p->shown_listener);
    p->shown_has_listener = p->listener != NULL;
    pthread_mutex_unlock(&p->lock);
}

/* Every event handed over so far, in order. */
static void take_handoff(struct pipeline *p)
{
    struct handoff_item it;

    for (;;) {
        pthread_mutex_lock(&p->lock);
        bool got = ring_pop(&p->handoff, &it);
        pthread_mutex_unlock(&p->lock);
        if (!got)
            break;
        p->intake.pushed++;
        handle_item(p, &it);
    }
}

/* The loop's wake-up: take every event handed over, and a stop request. */
static void on_wake(void *ctx)
{
    struct pipeline *p = ctx;
    bool stop;
    int drain_ms;

    take_handoff(p);
    pthread_mutex_lock(&p->lock);
    stop = p->stop_requested;
    drain_ms = p->stop_drain_ms;
    pthread_mutex_unlock(&p->lock);
    if (!stop)
        return;
    if (p->listener != NULL && !listener_finished(p->listener))
        listener_begin_stop(p->listener, drain_ms);
    else
        loop_quit(p->loop);
}

static void on_listener_finished(void *ctx)
{
    struct pipeline *p = ctx;

    loop_quit(p->loop);
}

/* Every round, before the poll: the drain check and the pipeline's own
 * moments (in-progress segments for invocations about to time out,
 * forensics' snapshots, the end of the SHUTDOWN wait).  None of them
 * exists while nothing is in flight: an idle loop sleeps without a
 * timeout.  (A tick never fires while frozen, which is fine: a frozen
 * sandbox runs no invocation.) */
static size_t own_prepare(void *ctx, struct pollfd *fds, size_t max, int64_t now_ns, int64_t *deadline_ns)
{
    struct pipeline *p = ctx;
    int64_t now_us = clock_epoch_us();
    /* Snapshots first: the in-progress version made now carries one. */
    int64_t snap_us = forensics_tick(p->forensics, now_us);
    int64_t tick_us = tracer_tick(p->tracer, now_us);
    int64_t at = -1;

    (void)fds;
    (void)max;
    publish(p);
    if (p->shutting_down && !p->drain_done &&
        ((p->outstanding_count == 0 && !tracer_init_pending(p->tracer)) || now_ns >= p->drain_deadline_ns)) {
        p->drain_done = true;
        finish_shutdown(p);
        set_drained(p);
    }
    if (snap_us >= 0 && (tick_us < 0 || snap_us < tick_us))
        tick_us = snap_us;
    if (tick_us >= 0)
        at = now_ns + (tick_us - now_us) * 1000;
    if (p->shutting_down && !p->drain_done && (at < 0 || p->drain_deadline_ns < at))
        at = p->drain_deadline_ns;
    if (at >= 0 && (*deadline_ns < 0 || at < *deadline_ns))
        *deadline_ns = at;
    return 0;
}

static void own_dispatch(void *ctx, struct pollfd *fds, size_t n, int64_t now_ns)
{
    (void)ctx;
    (void)fds;
    (void)n;
    (void)now_ns;
}

static const struct loop_source_ops own_ops = {own_prepare, own_dispatch};

/* Listener callback, on the loop thread: parse at once, then hand the
 * buffer back for the next body. */
static void on_telemetry_body(char *body, size_t len, void *ctx)
{
    struct pipeline *p = ctx;

    /* The events handed over before this body came first: an INVOKE
     * always precedes its invocation's platform.report (the platform waits
     * for our next /event/next, made after handing the INVOKE over), so
     * the invocation is exported with the trace context INVOKE carries,
     * however far the loop has fallen behind. */
    take_handoff(p);
    handle_telemetry(p, body, len);
    listener_recycle(p->listener, body);
}

static void *pipeline_main(void *arg)
{
    struct pipeline *p = arg;

    if (p->initwatch != NULL)
        loop_timers_arm(loop_timers(p->loop), &p->initwatch_timer, clock_mono_ns());
    loop_run(p->loop);
    loop_timers_disarm(loop_timers(p->loop), &p->initwatch_timer);
    p->stats.unreported += p->outstanding_count;
    if (!p->drain_done) {
        if (p->shutting_down)
            finish_shutdown(p);
        set_drained(p);
    }
    log_forensics(p);
    pthread_mutex_lock(&p->lock);
    p->finished = true;
    pthread_cond_broadcast(&p->drained_cond);
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

static void pipeline_free(struct pipeline *p)
{
    pthread_cond_destroy(&p->hold_cond);
    pthread_cond_destroy(&p->drained_cond);
    pthread_mutex_destroy(&p->lock);
    loop_destroy(p->loop);
    forensics_destroy(p->forensics);
    tracer_destroy(p->tracer);
    emf_destroy(p->metrics);
    ring_release(&p->handoff);
    free(p);
}

int pipeline_start(const struct config *cfg, const struct pipeline_function *fn, struct pipeline **ret)
{
    struct pipeline *p = calloc(1, sizeof(*p));
    struct tracer_options topts = {
        .function_name = fn->name,
        .function_version = fn->version,
        .account_id = fn->account_id,
        .region = fn->region,
        .memory_size_mb = fn->memory_size_mb,
        .segment_name = cfg->segment_name,
        .sampling = cfg->sampling,
        .slow_ms = cfg->slow_ms,
        .timeout_margin_us = (int64_t)cfg->timeout_margin_ms * 1000,
        .log_tail_lines = cfg->log_tail_lines,
        .log_tail_max_bytes = cfg->log_tail_max_bytes,
        .initwatch = fn->initwatch,
        .snap_start = fn->snap_start,
        .emit = on_segment,
        .observe = on_observe,
        .forget = on_forget,
    };
    pthread_condattr_t attr;
    int r = -ENOMEM;

    if (p == NULL)
        return -ENOMEM;
    p->cfg = *cfg;
    ring_init(&p->handoff, p->handoff_inline, HANDOFF_INLINE, sizeof(struct handoff_item), HANDOFF_MAX);
    policy_flush_init(&p->flush, cfg);
    snprintf(p->fn_name, sizeof(p->fn_name), "%s", fn->name != NULL ? fn->name : "");
    snprintf(p->fn_version, sizeof(p->fn_version), "%s", fn->version != NULL ? fn->version : "");
    cost_price_default(cost_arch_built(), &topts.price);
    if (cfg->price_gb_s_usd >= 0)
        topts.price.gb_s_usd = cfg->price_gb_s_usd;
    if (cfg->price_request_usd >= 0)
        topts.price.request_usd = cfg->price_request_usd;
    pthread_mutex_init(&p->lock, NULL);
    if (pthread_condattr_init(&attr) != 0 || pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&p->hold_cond, &attr) != 0 || pthread_cond_init(&p->drained_cond, &attr) != 0) {
        free(p);
        return -ENOMEM;
    }
    pthread_condattr_destroy(&attr);
    if (cfg->metrics) {
        const struct emf_options o = {cfg->metrics_namespace, p->fn_name, p->fn_version};
        if (emf_new(&o, &p->metrics) < 0)
            goto fail;
    }
    if (fn->export_cfg != NULL) {
        p->export_cfg = *fn->export_cfg;
        p->export_cfg.on_handled = on_export_handled;
        p->export_cfg.on_handled_ctx = p;
        p->export_wanted = true;
    }
    p->journal = fn->journal;
    p->initwatch = fn->initwatch;
    loop_timer_init(&p->initwatch_timer, on_initwatch_timer, p);
    topts.ctx = p;
    p->tracer = tracer_new(&topts);
    if (p->tracer == NULL)
        goto fail;
    for (size_t i = 0; i < fn->recovered_count; i++)
        tracer_recover(p->tracer, &fn->recovered[i], fn->reset_us);
    struct forensics_options fopts = {
        .slow_ms = cfg->slow_ms,
        .timeout_margin_us = (int64_t)cfg->timeout_margin_ms * 1000,
        .runtime_api = getenv("AWS_LAMBDA_RUNTIME_API"),
    };
    p->forensics = forensics_new(&fopts);
    if (p->forensics == NULL)
        log_warn("out of memory for timeout forensics; tracing without them");
    r = loop_new(on_wake, p, &p->loop);
    if (r < 0)
        goto fail;
    if ((r = loop_add_source(p->loop, &own_ops, p)) < 0)
        goto fail;
    if (fn->listener != NULL) {
        if ((r = loop_add_source(p->loop, &listener_source_ops, fn->listener)) < 0)
            goto fail;
        listener_set_body_fn(fn->listener, on_telemetry_body, p);
        listener_on_finished(fn->listener, on_listener_finished, p);
    }
    p->listener = fn->listener; /* owned once the thread runs */
    r = -pthread_create(&p->thread, NULL, pipeline_main, p);
    if (r < 0)
        goto fail;
    *ret = p;
    return 0;

fail:
    pipeline_free(p);
    return r;
}

/* Hands an item to the loop.  false when the ring is full at its bound
 * (counted).
 * wake: the loop is woken for it; else it is taken at the loop's next
 * wake-up for another reason (loop_note). */
static bool post(struct pipeline *p, const struct handoff_item *it, bool wake)
{
    bool ok;

    pthread_mutex_lock(&p->lock);
    ok = !p->finished && ring_push(&p->handoff, it);
    if (!ok)
        p->handoff_dropped++;
    pthread_mutex_unlock(&p->lock);
    if (ok && wake)
        loop_wake(p->loop);
    else if (ok)
        loop_note(p->loop);
    return ok;
}

bool pipeline_post_event(struct pipeline *p, const struct ext_event *ev, int64_t received_us)
{
    struct handoff_item it = {.kind = HANDOFF_EVENT};
    bool eager = false;

    if (p == NULL)
        return false;
    if (ev->type == EXT_EVENT_INVOKE) {
        bool can_export;
        pthread_mutex_lock(&p->lock);
        /* export.c turns eager off too when a flush lost what it sent. */
        can_export = p->export_wanted && !p->export_start_failed &&
                     (p->exporter == NULL || export_eager_ok(p->exporter));
        pthread_mutex_unlock(&p->lock);
        eager = policy_flush_decide(&p->flush, clock_mono_ms(), can_export);
        if (eager) {
            pthread_mutex_lock(&p->lock);
            snprintf(p->hold_request_id, sizeof(p->hold_request_id), "%s", ev->request_id);
            /* Its records may have been handled already (Lambda emits
             * platform.start before INVOKE). */
            p->hold_started = strcmp(p->started_request_id, ev->request_id) == 0;
            p->hold_done = strcmp(p->done_request_id, ev->request_id) == 0;
            p->hold_done_us = p->done_time_us;
            pthread_mutex_unlock(&p->lock);
        }
    }
    it.u.event.event = *ev;
    it.u.event.received_us = received_us;
    it.u.event.eager = eager;
    if (!post(p, &it, true) && eager) {
        pthread_mutex_lock(&p->lock);
        p->hold_request_id[0] = '\0';
        pthread_mutex_unlock(&p->lock);
        return false;
    }
    return eager;
}

void pipeline_post_ready(struct pipeline *p, int64_t registered_us, int64_t first_next_us)
{
    struct handoff_item it = {.kind = HANDOFF_READY};

    if (p == NULL)
        return;
    it.u.ready.registered_us = registered_us;
    it.u.ready.first_next_us = first_next_us;
    (void)post(p, &it, true);
}

void pipeline_post_released(struct pipeline *p, const char *request_id, int64_t next_us, int64_t cpu_us)
{
    struct handoff_item it = {.kind = HANDOFF_RELEASED};

    if (p == NULL || request_id[0] == '\0')
        return;
    snprintf(it.u.released.request_id, sizeof(it.u.released.request_id), "%s", request_id);
    it.u.released.next_us = next_us;
    it.u.released.cpu_us = cpu_us;
    /* Only read when the invocation's report is handled (which wakes the
     * loop, and whatever wakes it takes this first): no wake-up of its
     * own, as the extension is about to be frozen in /next. */
    (void)post(p, &it, false);
}

static struct timespec mono_timespec(int64_t ns)
{
    return (struct timespec){.tv_sec = (time_t)(ns / 1000000000), .tv_nsec = (long)(ns % 1000000000)};
}

bool pipeline_wait_drained(struct pipeline *p, int64_t deadline_ns)
{
    struct timespec ts = mono_timespec(deadline_ns);
    bool drained;

    pthread_mutex_lock(&p->lock);
    while (!p->drained) {
        if (pthread_cond_timedwait(&p->drained_cond, &p->lock, &ts) == ETIMEDOUT)
            break;
    }
    drained = p->drained;
    pthread_mutex_unlock(&p->lock);
    return drained;
}

/* Waits until the loop handled platform.runtimeDone for request_id (and
 * handed an eager invocation's segment to the exporters), within the
 * hold's bounds (CLOCK_MONOTONIC).  0 when runtimeDone was handled
 * (*ret_done_us: its record's time, epoch µs, 0 when unknown); -ENODATA
 * when platform.start did not come in time; -EPIPE when a batch was lost
 * since since_ns; -ETIMEDOUT at the done deadline (or once drained). */
static int wait_runtime_done(struct pipeline *p, const char *request_id, const struct policy_hold *h,
                             int64_t since_ns, int64_t *ret_done_us, struct exporter **ret_exporter)
{
    struct timespec start_ts = mono_timespec(h->start_deadline_ns);
    struct timespec done_ts = mono_timespec(h->done_deadline_ns);
    int r;

    pthread_mutex_lock(&p->lock);
#define HELD() (strcmp(p->hold_request_id, request_id) == 0)
#define STARTED() (HELD() && p->hold_started)
#define DONE() (HELD() && p->hold_done)
#define LOST() (p->lost_at_ns > 0 && p->lost_at_ns >= since_ns)
    /* Lambda emits platform.start before INVOKE: it arrives within the
     * buffering timeout, or telemetry is not reaching us at all. */
    while (!STARTED() && !DONE() && !LOST() && !p->drained) {
        if (pthread_cond_timedwait(&p->hold_cond, &p->lock, &start_ts) == ETIMEDOUT)
            break;
    }
    /* Started, not done yet: wait for runtimeDone, as long as the handler
     * may run, unless a batch (maybe the one with the runtimeDone) is lost
     * on the way. */
    while (STARTED() && !DONE() && !LOST() && !p->drained) {
        if (pthread_cond_timedwait(&p->hold_cond, &p->lock, &done_ts) == ETIMEDOUT)
            break;
    }
    if (DONE())
        r = 0;
    else if (LOST())
        r = -EPIPE;
    else if (!STARTED() && !p->drained)
        r = -ENODATA;
    else
        r = -ETIMEDOUT;
#undef LOST
#undef STARTED
#undef DONE
#undef HELD
    if (r == 0)
        *ret_done_us = p->hold_done_us;
    *ret_exporter = p->exporter;
    pthread_mutex_unlock(&p->lock);
    return r;
}

void pipeline_hold(struct pipeline *p, const struct ext_event *ev, int64_t invoke_ns)
{
    struct policy_hold h;
    struct exporter *e = NULL;
    int64_t done_us = 0;
    const char *why;
    int r;

    if (p == NULL)
        return;
    policy_hold_bounds(&p->cfg, ev->deadline_ms, clock_epoch_us(), clock_mono_ns(), &h);
    r = wait_runtime_done(p, ev->request_id, &h, invoke_ns, &done_us, &e);
    if (r == 0) {
        int64_t left_ms = policy_flush_left_ms(h.bound_ms, done_us, clock_epoch_us());
        if (left_ms > 0) {
            int64_t flush_ns = clock_mono_ns() + left_ms * 1000000;
            if (e == NULL || export_flush(e, flush_ns < h.done_deadline_ns ? flush_ns : h.done_deadline_ns, false))
                goto out;
            /* The flush missed its bound (export.c logged why). */
            policy_flush_off(&p->flush, clock_mono_ms());
            goto out;
        }
        why = "arrived after the eager bound";
    } else if (r == -EPIPE) {
        why = "may have been in a telemetry batch that was lost";
    } else {
        why = "did not arrive in time";
    }
    policy_flush_off(&p->flush, clock_mono_ms());
    log_warn("telemetry for this invocation %s; exporting in the background for the next %d s", why,
             EXPORT_EAGER_OFF_MS / 1000);
out:
    pthread_mutex_lock(&p->lock);
    p->hold_request_id[0] = '\0';
    pthread_mutex_unlock(&p->lock);
}

uint64_t pipeline_hold_signals(struct pipeline *p)
{
    uint64_t n;

    pthread_mutex_lock(&p->lock);
    n = p->hold_signals;
    pthread_mutex_unlock(&p->lock);
    return n;
}

bool pipeline_stop(struct pipeline *p, int64_t end_ns, int drain_ms, struct pipeline_result *ret)
{
    struct timespec ts = mono_timespec(end_ns);
    bool finished;

    memset(ret, 0, sizeof(*ret));
    if (p == NULL)
        return true;
    pthread_mutex_lock(&p->lock);
    p->stop_requested = true;
    p->stop_drain_ms = drain_ms;
    pthread_mutex_unlock(&p->lock);
    loop_wake(p->loop);
    /* Bounded by the SHUTDOWN budget: a loop stuck past it (it should not:
     * every wait in it is bounded) is left to the exit. */
    pthread_mutex_lock(&p->lock);
    while (!p->finished) {
        if (pthread_cond_timedwait(&p->drained_cond, &p->lock, &ts) == ETIMEDOUT)
            break;
    }
    finished = p->finished;
    if (!finished) {
        pthread_detach(p->thread); /* nobody joins it: the process exits now */
        /* The counters as of the loop's last body or event, not zeros. */
        ret->stats = p->shown_stats;
        ret->intake = p->shown_intake;
        ret->listener = p->shown_listener;
        ret->has_listener = p->shown_has_listener;
    }
    struct exporter *e = p->exporter;
    pthread_mutex_unlock(&p->lock);
    if (!finished) {
        if (e != NULL) {
            export_stats_now(e, &ret->exporter);
            ret->has_exporter = true;
        }
        ret->left_running = true;
        return false;
    }
    pthread_join(p->thread, NULL);
    ret->stats = p->stats;
    ret->intake = p->intake;
    ret->intake.dropped += p->handoff_dropped;
    if (p->listener != NULL) {
        listener_close(p->listener, &ret->listener);
        ret->has_listener = true;
        p->listener = NULL;
    }
    if (p->exporter != NULL) {
        /* Everything the loop produced is queued now: send it within the
         * budget; a request still running then is cut and counted. */
        ret->left_running = !export_stop(p->exporter, end_ns, &ret->exporter);
        ret->has_exporter = true;
        if (ret->left_running)
            return false; /* its thread may still call on_export_handled(p) */
        p->exporter = NULL;
    }
    pipeline_free(p);
    return !ret->left_running;
}
