/*
 * tel_reference.h - the Telemetry batch reader as it was built on cJSON,
 * kept for the tests only: a differential oracle for telemetry.c's own
 * scanner.  For every input, tel_reference_parse accepts exactly when
 * tel_batch_parse does, and the events it reads are equal field by field
 * (tel_reference_compare).  Header-only (static functions) so the fuzz
 * target and the unit test can include it without build changes.
 *
 * Strings point into the cJSON tree, which the reference keeps until
 * tel_reference_free.
 */
#ifndef LAMBDA_TRACER_TEL_REFERENCE_H
#define LAMBDA_TRACER_TEL_REFERENCE_H

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "telemetry.h"

struct tel_reference {
    cJSON *root;
    size_t count;
    size_t invalid;
    struct tel_event *events;
};

static const char *ref_string(const cJSON *obj, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

static int64_t ref_number(const cJSON *obj, const char *key, double max, double scale)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    double v;

    if (!cJSON_IsNumber(item))
        return TEL_ABSENT;
    v = item->valuedouble;
    if (!isfinite(v) || v < 0 || v > max)
        return TEL_ABSENT;
    return (int64_t)llround(v * scale);
}

static int ref_pick(const char *s, const char *const *names, int n, int none, int other)
{
    if (s == NULL)
        return none;
    for (int i = 0; i < n; i++) {
        if (strcmp(s, names[i]) == 0)
            return i + 1;
    }
    return other;
}

static void ref_record(const cJSON *record, struct tel_event *ev)
{
    static const char *const statuses[] = {"success", "error", "failure", "timeout"};
    static const char *const inits[] = {"on-demand", "provisioned-concurrency", "snap-start",
                                        "lambda-managed-instances"};
    static const char *const phases[] = {"init", "invoke"};
    const cJSON *tracing, *metrics, *spans, *span, *events, *name;

    if (cJSON_IsString(record)) {
        ev->text = record->valuestring;
        return;
    }
    if (!cJSON_IsObject(record))
        return;
    ev->request_id = ref_string(record, "requestId");
    ev->status = (enum tel_status)ref_pick(ref_string(record, "status"), statuses, 4,
                                           TEL_STATUS_NONE, TEL_STATUS_OTHER);
    ev->error_type = ref_string(record, "errorType");
    ev->init_type = (enum tel_init_type)ref_pick(ref_string(record, "initializationType"), inits, 4,
                                                 TEL_INIT_TYPE_NONE, TEL_INIT_TYPE_OTHER);
    ev->phase = (enum tel_phase)ref_pick(ref_string(record, "phase"), phases, 2, TEL_PHASE_NONE,
                                         TEL_PHASE_OTHER);
    ev->version = ref_string(record, "version");
    if (ev->version == NULL)
        ev->version = ref_string(record, "functionVersion");
    ev->function_name = ref_string(record, "functionName");
    ev->instance_id = ref_string(record, "instanceId");
    ev->runtime_version = ref_string(record, "runtimeVersion");
    ev->tenant_id = ref_string(record, "tenantId");
    ev->name = ref_string(record, "name");
    ev->state = ref_string(record, "state");
    ev->instance_max_memory = ref_number(record, "instanceMaxMemory", 9e15, 1);
    ev->dropped_records = ref_number(record, "droppedRecords", 9e15, 1);
    ev->dropped_bytes = ref_number(record, "droppedBytes", 9e15, 1);
    if (ev->type == TEL_LOGS_DROPPED)
        ev->text = ref_string(record, "reason");
    else if (ev->type == TEL_FUNCTION_LOG || ev->type == TEL_EXTENSION_LOG)
        ev->text = ref_string(record, "message");
    tracing = cJSON_GetObjectItemCaseSensitive(record, "tracing");
    if (cJSON_IsObject(tracing)) {
        ev->trace_value = ref_string(tracing, "value");
        ev->trace_span_id = ref_string(tracing, "spanId");
    }
    metrics = cJSON_GetObjectItemCaseSensitive(record, "metrics");
    if (cJSON_IsObject(metrics)) {
        ev->duration_us = ref_number(metrics, "durationMs", 1e12, 1000.0);
        ev->init_duration_us = ref_number(metrics, "initDurationMs", 1e12, 1000.0);
        ev->restore_duration_us = ref_number(metrics, "restoreDurationMs", 1e12, 1000.0);
        ev->billed_duration_ms = ref_number(metrics, "billedDurationMs", 9e15, 1);
        ev->memory_size_mb = ref_number(metrics, "memorySizeMB", 9e15, 1);
        ev->max_memory_used_mb = ref_number(metrics, "maxMemoryUsedMB", 9e15, 1);
        ev->produced_bytes = ref_number(metrics, "producedBytes", 9e15, 1);
    }
    events = cJSON_GetObjectItemCaseSensitive(record, "events");
    if (cJSON_IsArray(events)) {
        cJSON_ArrayForEach(name, events)
        {
            if (cJSON_IsString(name) && strcmp(name->valuestring, "INVOKE") == 0)
                ev->ext_events |= TEL_EXT_INVOKE;
            else if (cJSON_IsString(name) && strcmp(name->valuestring, "SHUTDOWN") == 0)
                ev->ext_events |= TEL_EXT_SHUTDOWN;
        }
    }
    spans = cJSON_GetObjectItemCaseSensitive(record, "spans");
    if (!cJSON_IsArray(spans))
        return;
    cJSON_ArrayForEach(span, spans)
    {
        struct tel_span *out;
        const char *start;

        if (ev->span_count >= TELEMETRY_MAX_SPANS)
            break;
        if (!cJSON_IsObject(span))
            continue;
        out = &ev->spans[ev->span_count];
        out->name = ref_string(span, "name");
        if (out->name == NULL)
            continue;
        out->start_us = TEL_ABSENT;
        start = ref_string(span, "start");
        if (start != NULL && tel_parse_time(start, &out->start_us) < 0)
            out->start_us = TEL_ABSENT;
        out->duration_us = ref_number(span, "durationMs", 1e12, 1000.0);
        ev->span_count++;
    }
}

static void tel_reference_free(struct tel_reference *ref)
{
    cJSON_Delete(ref->root);
    free(ref->events);
    memset(ref, 0, sizeof(*ref));
}

/* 0, -EPROTO (not a JSON array) or -ENOMEM; on success free with
 * tel_reference_free. */
static int tel_reference_parse(const char *body, size_t len, struct tel_reference *ref)
{
    static const char *const types[TEL_TYPE_COUNT - 1] = {
        "platform.initStart", "platform.initRuntimeDone", "platform.initReport",
        "platform.restoreStart", "platform.restoreRuntimeDone", "platform.restoreReport",
        "platform.start", "platform.runtimeDone", "platform.report", "platform.extension",
        "platform.telemetrySubscription", "platform.logsDropped", "function", "extension"};
    const cJSON *element;
    int n;

    memset(ref, 0, sizeof(*ref));
    if (body == NULL)
        return -EPROTO;
    ref->root = cJSON_ParseWithLengthOpts(body, len, NULL, false);
    if (!cJSON_IsArray(ref->root)) {
        tel_reference_free(ref);
        return -EPROTO;
    }
    n = cJSON_GetArraySize(ref->root);
    ref->events = calloc((size_t)n + 1, sizeof(*ref->events));
    if (ref->events == NULL) {
        tel_reference_free(ref);
        return -ENOMEM;
    }
    cJSON_ArrayForEach(element, ref->root)
    {
        const char *time = ref_string(element, "time");
        const char *type = ref_string(element, "type");
        const cJSON *record = cJSON_GetObjectItemCaseSensitive(element, "record");
        struct tel_event *ev = &ref->events[ref->count];

        memset(ev, 0, sizeof(*ev));
        ev->instance_max_memory = ev->duration_us = ev->init_duration_us = TEL_ABSENT;
        ev->restore_duration_us = ev->billed_duration_ms = ev->memory_size_mb = TEL_ABSENT;
        ev->max_memory_used_mb = ev->produced_bytes = TEL_ABSENT;
        ev->dropped_records = ev->dropped_bytes = TEL_ABSENT;
        if (!cJSON_IsObject(element) || time == NULL || type == NULL || record == NULL ||
            tel_parse_time(time, &ev->time_us) < 0) {
            ref->invalid++;
            continue;
        }
        ev->type = (enum tel_type)ref_pick(type, types, TEL_TYPE_COUNT - 1, TEL_UNKNOWN, TEL_UNKNOWN);
        ev->type_name = type;
        ref_record(record, ev);
        ref->count++;
    }
    return 0;
}

static bool ref_same_string(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* true when the events are equal field by field. */
static bool tel_reference_same_event(const struct tel_event *a, const struct tel_event *b)
{
    if (a->type != b->type || !ref_same_string(a->type_name, b->type_name) ||
        a->time_us != b->time_us || a->status != b->status || a->init_type != b->init_type ||
        a->phase != b->phase || a->span_count != b->span_count || a->ext_events != b->ext_events)
        return false;
    if (!ref_same_string(a->request_id, b->request_id) ||
        !ref_same_string(a->error_type, b->error_type) ||
        !ref_same_string(a->trace_value, b->trace_value) ||
        !ref_same_string(a->trace_span_id, b->trace_span_id) ||
        !ref_same_string(a->version, b->version) ||
        !ref_same_string(a->function_name, b->function_name) ||
        !ref_same_string(a->instance_id, b->instance_id) ||
        !ref_same_string(a->runtime_version, b->runtime_version) ||
        !ref_same_string(a->tenant_id, b->tenant_id) ||
        !ref_same_string(a->name, b->name) || !ref_same_string(a->state, b->state) ||
        !ref_same_string(a->text, b->text))
        return false;
    if (a->instance_max_memory != b->instance_max_memory || a->duration_us != b->duration_us ||
        a->init_duration_us != b->init_duration_us ||
        a->restore_duration_us != b->restore_duration_us ||
        a->billed_duration_ms != b->billed_duration_ms ||
        a->memory_size_mb != b->memory_size_mb || a->max_memory_used_mb != b->max_memory_used_mb ||
        a->produced_bytes != b->produced_bytes || a->dropped_records != b->dropped_records ||
        a->dropped_bytes != b->dropped_bytes)
        return false;
    for (unsigned i = 0; i < a->span_count; i++) {
        if (!ref_same_string(a->spans[i].name, b->spans[i].name) ||
            a->spans[i].start_us != b->spans[i].start_us ||
            a->spans[i].duration_us != b->spans[i].duration_us)
            return false;
    }
    return true;
}

#endif
