/*
 * summary.c - see summary.h.
 *
 * One table per stats struct.  For the structs made only of uint64_t
 * counters, the build checks that the table has one row per counter; a
 * counter added to such a struct then fails the build here until it has a
 * row (its name in the line).
 */
#include "summary.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "sampling.h"
#include "telemetry.h"

struct row {
    const char *name;
    size_t offset; /* of a uint64_t in its struct */
};

#define ROW(type, field) {#field, offsetof(struct type, field)}
#define NAMED(name, type, field) {name, offsetof(struct type, field)}
#define KEPT(name, r) {"sampled_by_" name, offsetof(struct pipeline_stats, kept) + (size_t)(r) * sizeof(uint64_t)}
#define REC(name, t) {"rec_" name, offsetof(struct pipeline_stats, by_type) + (size_t)(t) * sizeof(uint64_t)}

static const struct row pipeline_rows[] = {
    ROW(pipeline_stats, segments),
    ROW(pipeline_stats, in_progress),
    ROW(pipeline_stats, dropped),
    KEPT("unknown", SAMPLING_DROP),
    KEPT("outcome", SAMPLING_BY_OUTCOME),
    KEPT("cold_start", SAMPLING_BY_COLD_START),
    KEPT("slow", SAMPLING_BY_SLOW),
    KEPT("header", SAMPLING_BY_HEADER),
    KEPT("reservoir", SAMPLING_BY_RESERVOIR),
    KEPT("ratio", SAMPLING_BY_RATIO),
    KEPT("all", SAMPLING_BY_ALL),
    ROW(pipeline_stats, closed_by_shutdown),
    NAMED("telemetry_batches", pipeline_stats, batches),
    ROW(pipeline_stats, records),
    ROW(pipeline_stats, bad_batches),
    ROW(pipeline_stats, invalid_records),
    ROW(pipeline_stats, platform_dropped_records),
    ROW(pipeline_stats, unreported),
    NAMED("pipeline_invokes", pipeline_stats, invokes),
    ROW(pipeline_stats, recovered),
    ROW(pipeline_stats, evicted_invocations),
    ROW(pipeline_stats, evicted_announced),
    ROW(pipeline_stats, late_records),
    ROW(pipeline_stats, attrs_dropped),
    ROW(pipeline_stats, journal_full),
    ROW(pipeline_stats, metric_documents),
    ROW(pipeline_stats, metric_documents_failed),
    REC("unknown", TEL_UNKNOWN),
    REC("init_start", TEL_INIT_START),
    REC("init_runtime_done", TEL_INIT_RUNTIME_DONE),
    REC("init_report", TEL_INIT_REPORT),
    REC("restore_start", TEL_RESTORE_START),
    REC("restore_runtime_done", TEL_RESTORE_RUNTIME_DONE),
    REC("restore_report", TEL_RESTORE_REPORT),
    REC("start", TEL_START),
    REC("runtime_done", TEL_RUNTIME_DONE),
    REC("report", TEL_REPORT),
    REC("extension_state", TEL_EXTENSION_STATE),
    REC("subscription", TEL_SUBSCRIPTION),
    REC("logs_dropped", TEL_LOGS_DROPPED),
    REC("function_log", TEL_FUNCTION_LOG),
    REC("extension_log", TEL_EXTENSION_LOG),
};
_Static_assert(sizeof(struct pipeline_stats) ==
                   sizeof(pipeline_rows) / sizeof(pipeline_rows[0]) * sizeof(uint64_t),
               "pipeline_stats changed: give each counter a row in the summary table");
_Static_assert(SAMPLING_REASON_COUNT == 8, "a sampling reason was added: give it a sampled_by_ row");
_Static_assert(TEL_TYPE_COUNT == 15, "a telemetry type was added: give it a rec_ row");

static const struct row queue_rows[] = {
    NAMED("queue_pushed", queue_stats, pushed),
    NAMED("queue_dropped", queue_stats, dropped),
    NAMED("queue_dropped_bytes", queue_stats, dropped_bytes),
};
/* Its other fields are gauges (what waits now), not counters. */
_Static_assert(offsetof(struct queue_stats, items) == 3 * sizeof(uint64_t),
               "queue_stats changed: give each counter a row in the summary table");

static const struct row listener_rows[] = {
    NAMED("listener_connections", listener_stats, connections),
    NAMED("listener_requests", listener_stats, requests),
    NAMED("listener_bodies", listener_stats, bodies),
    NAMED("listener_body_bytes", listener_stats, body_bytes),
    NAMED("listener_rejected", listener_stats, rejected),
    NAMED("listener_refused", listener_stats, refused),
    NAMED("listener_evicted", listener_stats, evicted),
    NAMED("listener_evicted_kept_alive", listener_stats, evicted_kept_alive),
    NAMED("listener_timed_out", listener_stats, timed_out),
    NAMED("listener_accept_failed", listener_stats, accept_failed),
};
_Static_assert(sizeof(struct listener_stats) ==
                   sizeof(listener_rows) / sizeof(listener_rows[0]) * sizeof(uint64_t),
               "listener_stats changed: give each counter a row in the summary table");

static const struct row export_rows[] = {
    NAMED("export_submitted", export_stats, submitted),
    NAMED("export_dropped_full", export_stats, dropped_full),
    NAMED("export_dropped_encode", export_stats, dropped_encode),
    NAMED("export_unprocessed", export_stats, unprocessed),
    NAMED("export_rejected_spans", export_stats, rejected_spans),
    NAMED("export_unsent_at_stop", export_stats, unsent_at_stop),
    NAMED("export_abandoned", export_stats, abandoned),
};
_Static_assert(offsetof(struct export_stats, sink) ==
                   sizeof(export_rows) / sizeof(export_rows[0]) * sizeof(uint64_t),
               "export_stats changed: give each counter a row in the summary table");

/* Per sink: "<sink>_<name>". */
static const struct row sink_rows[] = {
    ROW(export_sink_stats, sent),     ROW(export_sink_stats, failed),
    ROW(export_sink_stats, skipped),  ROW(export_sink_stats, requests),
    ROW(export_sink_stats, retries),
};
_Static_assert(sizeof(struct export_sink_stats) ==
                   sizeof(sink_rows) / sizeof(sink_rows[0]) * sizeof(uint64_t),
               "export_sink_stats changed: give each counter a row in the summary table");

static const char *const sink_names[EXPORT_SINK_COUNT] = {"xray", "daemon", "otlp", "stdout", "xray_otlp"};

#define N_ROWS(t) (sizeof(t) / sizeof((t)[0]))
#define N_SINK_NAMES (EXPORT_SINK_COUNT * N_ROWS(sink_rows))

/* Everything in line order: invokes, the tables, the sinks', shutdown_ms.
 * Counter i's name (with the sink's prefix in *ret_prefix, "" for none),
 * and its value from `in` when in is not NULL.  false past the end. */
static bool counter(const struct summary_input *in, size_t i, const char **ret_prefix,
                    const char **ret_name, uint64_t *ret_value)
{
    static const struct {
        const struct row *rows;
        size_t n;
    } tables[] = {
        {pipeline_rows, N_ROWS(pipeline_rows)},
        {queue_rows, N_ROWS(queue_rows)},
        {listener_rows, N_ROWS(listener_rows)},
        {export_rows, N_ROWS(export_rows)},
    };
    const void *bases[] = {
        in != NULL ? (const void *)in->pipeline : NULL,
        in != NULL ? (const void *)in->queue : NULL,
        in != NULL ? (const void *)in->listener : NULL,
        in != NULL ? (const void *)in->exporter : NULL,
    };
    uint64_t v = 0;

    *ret_prefix = "";
    if (i == 0) {
        *ret_name = "invokes";
        *ret_value = in != NULL ? in->invokes : 0;
        return true;
    }
    i--;
    for (size_t t = 0; t < N_ROWS(tables); t++) {
        if (i < tables[t].n) {
            if (bases[t] != NULL)
                memcpy(&v, (const char *)bases[t] + tables[t].rows[i].offset, sizeof(v));
            *ret_name = tables[t].rows[i].name;
            *ret_value = v;
            return true;
        }
        i -= tables[t].n;
    }
    if (i < N_SINK_NAMES) {
        size_t s = i / N_ROWS(sink_rows);
        const struct row *r = &sink_rows[i % N_ROWS(sink_rows)];
        if (in != NULL && in->exporter != NULL)
            memcpy(&v, (const char *)&in->exporter->sink[s] + r->offset, sizeof(v));
        *ret_prefix = sink_names[s];
        *ret_name = r->name;
        *ret_value = v;
        return true;
    }
    if (i == N_SINK_NAMES) {
        *ret_name = "shutdown_ms";
        *ret_value = in != NULL && in->shutdown_ms > 0 ? (uint64_t)in->shutdown_ms : 0;
        return true;
    }
    return false;
}

int summary_format(const struct summary_input *in, char *buf, size_t size)
{
    const char *prefix;
    const char *name;
    uint64_t v;
    size_t len = 0;

    if (size == 0)
        return -ENOBUFS;
    buf[0] = '\0';
    for (size_t i = 0; counter(in, i, &prefix, &name, &v); i++) {
        int n = snprintf(buf + len, size - len, "%s%s%s%s=%llu", i > 0 ? " " : "", prefix,
                         prefix[0] != '\0' ? "_" : "", name, (unsigned long long)v);
        if (n < 0 || (size_t)n >= size - len) {
            buf[len] = '\0';
            return -ENOBUFS;
        }
        len += (size_t)n;
    }
    return (int)len;
}

bool summary_counter_name(size_t i, char *buf, size_t size)
{
    const char *prefix;
    const char *name;
    uint64_t v;

    if (!counter(NULL, i, &prefix, &name, &v))
        return false;
    snprintf(buf, size, "%s%s%s", prefix, prefix[0] != '\0' ? "_" : "", name);
    return true;
}
