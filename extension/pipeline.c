/*
 * pipeline.c - see pipeline.h.
 *
 * Only this thread touches the state below `stats`; the lifecycle thread
 * reads nothing of it until pipeline_stop has joined the thread.  The
 * `drained` flag is the one thing both sides see while running; it lives
 * under its own mutex and condition variable.
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
#include "limits.h"
#include "log.h"
#include "tracer.h"

/* Invocations whose platform.report has not arrived yet.  Under normal
 * operation this holds one or two ids (report N arrives during N+1). */
#define OUTSTANDING_MAX 64

struct pipeline {
    struct config cfg;
    struct queue *q;
    pthread_t thread;
    struct tracer *tracer;
    struct forensics *forensics; /* NULL: none (out of memory at start) */
    struct exporter *exporter;
    struct journal *journal;
    bool journal_failed_logged;
    bool drop_logged; /* the first invocation left out by sampling was logged */

    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool drained; /* under lock */
    char done_request_id[EVENT_REQUEST_ID_MAX]; /* under lock: last runtimeDone handled */
    char started_request_id[EVENT_REQUEST_ID_MAX]; /* under lock: last platform.start handled */
    int64_t done_time_us;   /* under lock: the last runtimeDone's record time */
    int64_t lost_at_ns;     /* under lock: when a telemetry batch was last lost (0: never) */

    /* pipeline thread only */
    uint64_t queue_dropped_seen; /* queue drops already reported to the tracer */
    bool shutting_down;
    struct pipeline_event shutdown;
    int64_t drain_deadline_ns;
    size_t outstanding_count;
    char outstanding[OUTSTANDING_MAX][EVENT_REQUEST_ID_MAX];
    struct pipeline_stats stats;
    struct emf *metrics;      /* NULL: metrics off */
    char fn_name[256];
    char fn_version[64];
    int64_t metrics_flushed_ms; /* epoch ms of the last document (0: none yet) */
};

void pipeline_free_item(int kind, void *data)
{
    (void)kind;
    free(data);
}

static bool outstanding_has(const struct pipeline *p, const char *request_id)
{
    for (size_t i = 0; i < p->outstanding_count; i++) {
        if (strcmp(p->outstanding[i], request_id) == 0)
            return true;
    }
    return false;
}

/* An invocation whose platform.report SHUTDOWN waits for: known from its
 * INVOKE event or, with no INVOKE (Managed Instances), from platform.start. */
static void outstanding_add(struct pipeline *p, const char *request_id)
{
    if (outstanding_has(p, request_id))
        return;
    if (p->outstanding_count == OUTSTANDING_MAX) {
        /* Forget the oldest: its report is long overdue. */
        memmove(p->outstanding[0], p->outstanding[1],
                (OUTSTANDING_MAX - 1) * sizeof(p->outstanding[0]));
        p->outstanding_count--;
        p->stats.unreported++;
    }
    snprintf(p->outstanding[p->outstanding_count++], EVENT_REQUEST_ID_MAX, "%s", request_id);
}

static void outstanding_remove(struct pipeline *p, const char *request_id)
{
    for (size_t i = 0; i < p->outstanding_count; i++) {
        if (strcmp(p->outstanding[i], request_id) == 0) {
            memmove(p->outstanding[i], p->outstanding[i + 1],
                    (p->outstanding_count - i - 1) * sizeof(p->outstanding[0]));
            p->outstanding_count--;
            return;
        }
    }
}

static void journal_failed(struct pipeline *p)
{
    if (p->journal_failed_logged)
        return;
    p->journal_failed_logged = true;
    log_warn("the invocation journal could not be written; continuing without it "
             "(invocations of a killed process will not be recovered)");
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

static void handle_telemetry(struct pipeline *p, const char *body, size_t len)
{
    struct tel_batch *batch = NULL;
    struct queue_stats qs;
    int r;

    /* Batches the listener could not queue are reported on the next segment. */
    queue_get_stats(p->q, &qs);
    if (qs.dropped > p->queue_dropped_seen) {
        tracer_add_lost(p->tracer, qs.dropped - p->queue_dropped_seen);
        if (p->metrics != NULL)
            emf_add_dropped(p->metrics, qs.dropped - p->queue_dropped_seen);
        p->queue_dropped_seen = qs.dropped;
    }
    r = tel_batch_parse(body, len, &batch);

    if (r < 0) {
        p->stats.bad_batches++;
        tracer_add_lost(p->tracer, 1);
        pipeline_telemetry_lost(p);
        if (p->metrics != NULL)
            emf_add_dropped(p->metrics, 1);
        log_warn("dropping a telemetry batch of %zu bytes: %s", len,
                 r == -ENOMEM ? "out of memory" : "not a JSON array");
        return;
    }
    p->stats.batches++;
    p->stats.invalid_records += batch->invalid;
    if (batch->invalid > 0)
        log_debug("skipped %zu telemetry records without time, type and record", batch->invalid);
    if (p->exporter != NULL)
        export_hold(p->exporter); /* one exporter wake-up per batch */
    for (size_t i = 0; i < batch->count; i++) {
        const struct tel_event *ev = &batch->events[i];

        p->stats.records++;
        p->stats.by_type[ev->type]++;
        if (ev->type == TEL_START && ev->request_id != NULL)
            outstanding_add(p, ev->request_id);
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
        if (ev->type == TEL_RUNTIME_DONE && ev->request_id != NULL &&
            journal_done(p->journal, ev->request_id, ev->time_us, (int)ev->status, ev->error_type) == -EIO)
            journal_failed(p);
        if ((ev->type == TEL_RUNTIME_DONE || ev->type == TEL_START) && ev->request_id != NULL) {
            pthread_mutex_lock(&p->lock);
            if (ev->type == TEL_RUNTIME_DONE) {
                snprintf(p->done_request_id, sizeof(p->done_request_id), "%s", ev->request_id);
                p->done_time_us = ev->time_us > 0 ? ev->time_us : 0;
            } else
                snprintf(p->started_request_id, sizeof(p->started_request_id), "%s", ev->request_id);
            pthread_cond_broadcast(&p->cond);
            pthread_mutex_unlock(&p->lock);
        }
    }
    if (p->exporter != NULL)
        export_release(p->exporter);
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

    if (!journal_ok(p->journal) || strlen(request_id) >= sizeof(e.request_id) ||
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
    if (r == -ENOSPC)
        p->stats.journal_full++;
    else if (r < 0)
        journal_failed(p);
}

static void handle_event(struct pipeline *p, const struct pipeline_event *pe)
{
    const struct ext_event *ev = &pe->event;

    if (ev->type == EXT_EVENT_INVOKE) {
        p->stats.invokes++;
        /* A predecessor's invocations whose records did not come by now
         * will not: export them as ended by the reset. */
        tracer_close_recovered(p->tracer);
        outstanding_add(p, ev->request_id);
        log_debug("event INVOKE request_id=%s deadline_ms=%lld traced=%s", ev->request_id,
                  (long long)ev->deadline_ms, ev->trace_header[0] ? "yes" : "no");
        forensics_on_invoke(p->forensics, ev->request_id, pe->received_us, ev->deadline_ms);
        tracer_on_invoke(p->tracer, ev, pe->received_us, pe->eager);
        journal_invoke(p, ev->request_id);
        note_first_drop(p); /* a predecessor's invocation closed above */
        return;
    }
    /* SHUTDOWN: wait for the final records, but leave the safety margin of
     * the event's deadline for exporting and exiting. */
    int64_t wait_ms = p->cfg.shutdown_telemetry_wait_ms;
    if (ev->deadline_ms > 0) {
        int64_t left_ms = ev->deadline_ms - pe->received_us / 1000 - SHUTDOWN_SAFETY_MARGIN_MS;
        if (left_ms < wait_ms)
            wait_ms = left_ms > 0 ? left_ms : 0;
    }
    p->shutting_down = true;
    p->shutdown = *pe;
    p->drain_deadline_ns = clock_mono_ns() + wait_ms * 1000000;
    log_debug("event SHUTDOWN reason=%s waiting up to %lld ms for %zu invocation reports%s",
              ext_shutdown_reason_name(ev->shutdown_reason), (long long)wait_ms,
              p->outstanding_count, tracer_init_pending(p->tracer) ? " and the Init's outcome" : "");
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
    if (p->exporter != NULL) {
        struct trace_resource res;
        tracer_get_resource(p->tracer, &res);
        if (export_submit(p->exporter, seg, &res, final, slot) < 0) {
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
    pthread_cond_broadcast(&p->cond);
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

static void *pipeline_main(void *arg)
{
    struct pipeline *p = arg;
    bool drained = false;

    for (;;) {
        int kind;
        void *data;
        size_t bytes;
        int64_t deadline = p->shutting_down && !drained ? p->drain_deadline_ns : -1;
        /* In-progress segments for invocations about to time out: the next
         * such moment bounds the wait (it never fires while frozen, which
         * is fine: a frozen sandbox runs no invocation). */
        int64_t now_us = clock_epoch_us();
        /* Snapshots first: the in-progress version made now carries one. */
        int64_t snap_us = forensics_tick(p->forensics, now_us);
        int64_t tick_us = tracer_tick(p->tracer, now_us);
        if (snap_us >= 0 && (tick_us < 0 || snap_us < tick_us))
            tick_us = snap_us;
        if (tick_us >= 0) {
            int64_t tick_ns = clock_mono_ns() + (tick_us - clock_epoch_us()) * 1000;
            if (deadline < 0 || tick_ns < deadline)
                deadline = tick_ns;
        }
        int r = queue_pop(p->q, deadline, &kind, &data, &bytes);

        if (r == -EPIPE)
            break;
        if (r == 0) {
            if (kind == PIPELINE_ITEM_TELEMETRY)
                handle_telemetry(p, data, bytes);
            else if (kind == PIPELINE_ITEM_EVENT)
                handle_event(p, data);
            else if (kind == PIPELINE_ITEM_RELEASED) {
                const struct pipeline_released *rel = data;
                tracer_on_released(p->tracer, rel->request_id, rel->next_us, rel->cpu_us);
            } else if (kind == PIPELINE_ITEM_READY) {
                const struct pipeline_ready *ready = data;
                tracer_set_own_init(p->tracer, ready->registered_us, ready->first_next_us);
            }
            pipeline_free_item(kind, data);
        }
        if (p->shutting_down && !drained &&
            ((p->outstanding_count == 0 && !tracer_init_pending(p->tracer)) ||
             clock_mono_ns() >= p->drain_deadline_ns)) {
            drained = true;
            finish_shutdown(p);
            set_drained(p);
        }
    }
    p->stats.unreported += p->outstanding_count;
    if (!drained) {
        if (p->shutting_down)
            finish_shutdown(p);
        set_drained(p);
    }
    log_forensics(p);
    return NULL;
}

int pipeline_start(const struct config *cfg, const struct pipeline_function *fn, struct queue *q,
                   struct pipeline **ret)
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
        .emit = on_segment,
        .observe = on_observe,
    };
    pthread_condattr_t attr;
    int r;

    if (p == NULL)
        return -ENOMEM;
    p->cfg = *cfg;
    p->q = q;
    snprintf(p->fn_name, sizeof(p->fn_name), "%s", fn->name != NULL ? fn->name : "");
    snprintf(p->fn_version, sizeof(p->fn_version), "%s", fn->version != NULL ? fn->version : "");
    cost_price_default(cost_arch_built(), &topts.price);
    if (cfg->price_gb_s_usd >= 0)
        topts.price.gb_s_usd = cfg->price_gb_s_usd;
    if (cfg->price_request_usd >= 0)
        topts.price.request_usd = cfg->price_request_usd;
    if (cfg->metrics) {
        const struct emf_options o = {cfg->metrics_namespace, p->fn_name, p->fn_version};
        if (emf_new(&o, &p->metrics) < 0) {
            free(p);
            return -ENOMEM;
        }
    }
    p->exporter = fn->exporter;
    p->journal = fn->journal;
    topts.ctx = p;
    p->tracer = tracer_new(&topts);
    if (p->tracer == NULL) {
        emf_destroy(p->metrics);
        free(p);
        return -ENOMEM;
    }
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
    if (pthread_mutex_init(&p->lock, NULL) != 0) {
        forensics_destroy(p->forensics);
        tracer_destroy(p->tracer);
        emf_destroy(p->metrics);
        free(p);
        return -ENOMEM;
    }
    if (pthread_condattr_init(&attr) != 0 || pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&p->cond, &attr) != 0) {
        pthread_mutex_destroy(&p->lock);
        forensics_destroy(p->forensics);
        tracer_destroy(p->tracer);
        emf_destroy(p->metrics);
        free(p);
        return -ENOMEM;
    }
    pthread_condattr_destroy(&attr);
    r = pthread_create(&p->thread, NULL, pipeline_main, p);
    if (r != 0) {
        pthread_cond_destroy(&p->cond);
        pthread_mutex_destroy(&p->lock);
        forensics_destroy(p->forensics);
        tracer_destroy(p->tracer);
        emf_destroy(p->metrics);
        free(p);
        return -r;
    }
    *ret = p;
    return 0;
}

bool pipeline_wait_drained(struct pipeline *p, int64_t deadline_ns)
{
    struct timespec ts = {
        .tv_sec = (time_t)(deadline_ns / 1000000000),
        .tv_nsec = (long)(deadline_ns % 1000000000),
    };
    bool drained;

    pthread_mutex_lock(&p->lock);
    while (!p->drained) {
        if (pthread_cond_timedwait(&p->cond, &p->lock, &ts) == ETIMEDOUT)
            break;
    }
    drained = p->drained;
    pthread_mutex_unlock(&p->lock);
    return drained;
}

static struct timespec mono_timespec(int64_t ns)
{
    return (struct timespec){.tv_sec = (time_t)(ns / 1000000000), .tv_nsec = (long)(ns % 1000000000)};
}

void pipeline_telemetry_lost(struct pipeline *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    p->lost_at_ns = clock_mono_ns();
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

int pipeline_wait_runtime_done(struct pipeline *p, const char *request_id, const struct pipeline_wait *w,
                               int64_t *ret_done_us)
{
    struct timespec start_ts = mono_timespec(w->start_deadline_ns < w->done_deadline_ns ? w->start_deadline_ns
                                                                                        : w->done_deadline_ns);
    struct timespec done_ts = mono_timespec(w->done_deadline_ns);
    int r;

    pthread_mutex_lock(&p->lock);
#define DONE() (strcmp(p->done_request_id, request_id) == 0)
#define STARTED() (strcmp(p->started_request_id, request_id) == 0)
#define LOST() (p->lost_at_ns > 0 && p->lost_at_ns >= w->since_ns)
    /* Lambda emits platform.start before INVOKE: it arrives within the
     * buffering timeout, or telemetry is not reaching us at all. */
    while (!STARTED() && !DONE() && !LOST() && !p->drained) {
        if (pthread_cond_timedwait(&p->cond, &p->lock, &start_ts) == ETIMEDOUT)
            break;
    }
    /* Started, not done yet: wait for runtimeDone, as long as the handler
     * may run, unless a batch (maybe the one with the runtimeDone) is
     * lost on the way. */
    while (STARTED() && !DONE() && !LOST() && !p->drained) {
        if (pthread_cond_timedwait(&p->cond, &p->lock, &done_ts) == ETIMEDOUT)
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
    if (r == 0 && ret_done_us != NULL)
        *ret_done_us = p->done_time_us;
#undef DONE
#undef STARTED
#undef LOST
    pthread_mutex_unlock(&p->lock);
    return r;
}

void pipeline_stop(struct pipeline *p, struct pipeline_stats *ret_stats)
{
    if (p == NULL)
        return;
    pthread_join(p->thread, NULL);
    if (ret_stats != NULL)
        *ret_stats = p->stats;
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    forensics_destroy(p->forensics);
    tracer_destroy(p->tracer);
    emf_destroy(p->metrics);
    free(p);
}

