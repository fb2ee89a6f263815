/*
 * telemetry.c - see telemetry.h.
 *
 * The body is parsed with cJSON (length-bounded, no global error pointer),
 * every string we keep is copied into the batch's arena, and the tree is
 * deleted before returning.  cJSON's own nesting limit bounds recursion.
 */
#include "telemetry.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Arena: a chain of blocks that never move, so event pointers stay valid. */
#define ARENA_BLOCK_BYTES 16384

struct tel_arena_block {
    struct tel_arena_block *next;
    size_t used;
    size_t size;
    char data[];
};

static const char *const type_names[TEL_TYPE_COUNT] = {
    [TEL_UNKNOWN] = "unknown",
    [TEL_INIT_START] = "platform.initStart",
    [TEL_INIT_RUNTIME_DONE] = "platform.initRuntimeDone",
    [TEL_INIT_REPORT] = "platform.initReport",
    [TEL_RESTORE_START] = "platform.restoreStart",
    [TEL_RESTORE_RUNTIME_DONE] = "platform.restoreRuntimeDone",
    [TEL_RESTORE_REPORT] = "platform.restoreReport",
    [TEL_START] = "platform.start",
    [TEL_RUNTIME_DONE] = "platform.runtimeDone",
    [TEL_REPORT] = "platform.report",
    [TEL_EXTENSION_STATE] = "platform.extension",
    [TEL_SUBSCRIPTION] = "platform.telemetrySubscription",
    [TEL_LOGS_DROPPED] = "platform.logsDropped",
    [TEL_FUNCTION_LOG] = "function",
    [TEL_EXTENSION_LOG] = "extension",
};

const char *tel_type_name(enum tel_type type)
{
    if ((unsigned)type >= TEL_TYPE_COUNT)
        return type_names[TEL_UNKNOWN];
    return type_names[type];
}

const char *tel_status_name(enum tel_status status)
{
    static const char *const names[] = {"none", "success", "error", "failure", "timeout", "other"};

    if ((unsigned)status >= sizeof(names) / sizeof(names[0]))
        return "other";
    return names[status];
}

static enum tel_type type_from_name(const char *name)
{
    for (unsigned i = 1; i < TEL_TYPE_COUNT; i++) {
        if (strcmp(name, type_names[i]) == 0)
            return (enum tel_type)i;
    }
    return TEL_UNKNOWN;
}

static void arena_free(struct tel_arena_block *block)
{
    while (block != NULL) {
        struct tel_arena_block *next = block->next;
        free(block);
        block = next;
    }
}

/* Copies s into the arena; NULL on ENOMEM (the caller fails the batch). */
static const char *arena_strdup(struct tel_arena_block **arena, const char *s)
{
    size_t len = strlen(s) + 1;
    struct tel_arena_block *block = *arena;
    char *p;

    if (block == NULL || block->size - block->used < len) {
        size_t size = len > ARENA_BLOCK_BYTES ? len : ARENA_BLOCK_BYTES;
        struct tel_arena_block *fresh = malloc(sizeof(*fresh) + size);
        if (fresh == NULL)
            return NULL;
        fresh->next = block;
        fresh->used = 0;
        fresh->size = size;
        *arena = fresh;
        block = fresh;
    }
    p = block->data + block->used;
    memcpy(p, s, len);
    block->used += len;
    return p;
}

/* Days since 1970-01-01 of a proleptic Gregorian civil date. */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Reads exactly n digits at *p; advances *p.  -1 when not n digits. */
static int64_t read_digits(const char **p, int n)
{
    int64_t value = 0;

    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return -1;
        value = value * 10 + (c - '0');
    }
    *p += n;
    return value;
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int tel_parse_time(const char *text, int64_t *ret_us)
{
    static const int month_days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const char *p = text;
    int64_t year, month, day, hour, minute, second, frac_us = 0, offset_s = 0;

    if (text == NULL)
        return -EINVAL;
    year = read_digits(&p, 4);
    if (year < 0 || *p++ != '-')
        return -EINVAL;
    month = read_digits(&p, 2);
    if (month < 1 || month > 12 || *p++ != '-')
        return -EINVAL;
    day = read_digits(&p, 2);
    if (day < 1 || day > month_days[month - 1] + (month == 2 && is_leap(year)))
        return -EINVAL;
    if (*p != 'T' && *p != 't' && *p != ' ')
        return -EINVAL;
    p++;
    hour = read_digits(&p, 2);
    if (hour < 0 || hour > 23 || *p++ != ':')
        return -EINVAL;
    minute = read_digits(&p, 2);
    if (minute < 0 || minute > 59 || *p++ != ':')
        return -EINVAL;
    second = read_digits(&p, 2);
    if (second < 0 || second > 60) /* 60: leap second, folded into the next */
        return -EINVAL;
    /* '.' is the standard separator; ':' appears in AWS doc examples (trap 19). */
    if (*p == '.' || *p == ',' || *p == ':') {
        int digits = 0;
        p++;
        if (*p < '0' || *p > '9')
            return -EINVAL;
        while (*p >= '0' && *p <= '9') {
            if (digits < 6)
                frac_us = frac_us * 10 + (*p - '0');
            digits++;
            if (digits > 9)
                return -EINVAL;
            p++;
        }
        for (int i = digits; i < 6; i++)
            frac_us *= 10;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        int64_t oh, om;
        p++;
        oh = read_digits(&p, 2);
        if (oh < 0 || oh > 23)
            return -EINVAL;
        if (*p == ':')
            p++;
        om = read_digits(&p, 2);
        if (om < 0 || om > 59)
            return -EINVAL;
        offset_s = sign * (oh * 3600 + om * 60);
    } else {
        return -EINVAL;
    }
    if (*p != '\0')
        return -EINVAL;

    int64_t secs = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second -
                   offset_s;
    *ret_us = secs * 1000000 + frac_us;
    return 0;
}

/* --- field extraction ---------------------------------------------------- */

struct ctx {
    struct tel_arena_block **arena;
    bool oom;
};

static const char *get_string(struct ctx *c, const cJSON *obj, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    const char *copy;

    if (!cJSON_IsString(item) || item->valuestring == NULL)
        return NULL;
    copy = arena_strdup(c->arena, item->valuestring);
    if (copy == NULL)
        c->oom = true;
    return copy;
}

/* Milliseconds (double) to integer microseconds; TEL_ABSENT when absent or
 * not a sane number. */
static int64_t get_ms_as_us(const cJSON *obj, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    double v;

    if (!cJSON_IsNumber(item))
        return TEL_ABSENT;
    v = item->valuedouble;
    if (!isfinite(v) || v < 0 || v > 1e12)
        return TEL_ABSENT;
    return (int64_t)llround(v * 1000.0);
}

static int64_t get_int(const cJSON *obj, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    double v;

    if (!cJSON_IsNumber(item))
        return TEL_ABSENT;
    v = item->valuedouble;
    if (!isfinite(v) || v < 0 || v > 9e15)
        return TEL_ABSENT;
    return (int64_t)llround(v);
}

static enum tel_status status_from(const char *s)
{
    if (s == NULL)
        return TEL_STATUS_NONE;
    if (strcmp(s, "success") == 0)
        return TEL_STATUS_SUCCESS;
    if (strcmp(s, "error") == 0)
        return TEL_STATUS_ERROR;
    if (strcmp(s, "failure") == 0)
        return TEL_STATUS_FAILURE;
    if (strcmp(s, "timeout") == 0)
        return TEL_STATUS_TIMEOUT;
    return TEL_STATUS_OTHER;
}

static enum tel_init_type init_type_from(const char *s)
{
    if (s == NULL)
        return TEL_INIT_TYPE_NONE;
    if (strcmp(s, "on-demand") == 0)
        return TEL_INIT_TYPE_ON_DEMAND;
    if (strcmp(s, "provisioned-concurrency") == 0)
        return TEL_INIT_TYPE_PROVISIONED;
    if (strcmp(s, "snap-start") == 0)
        return TEL_INIT_TYPE_SNAP_START;
    if (strcmp(s, "lambda-managed-instances") == 0)
        return TEL_INIT_TYPE_MANAGED;
    return TEL_INIT_TYPE_OTHER;
}

static enum tel_phase phase_from(const char *s)
{
    if (s == NULL)
        return TEL_PHASE_NONE;
    if (strcmp(s, "init") == 0)
        return TEL_PHASE_INIT;
    if (strcmp(s, "invoke") == 0)
        return TEL_PHASE_INVOKE;
    return TEL_PHASE_OTHER;
}

static void read_spans(struct ctx *c, const cJSON *record, struct tel_event *ev)
{
    const cJSON *spans = cJSON_GetObjectItemCaseSensitive(record, "spans");
    const cJSON *span;

    if (!cJSON_IsArray(spans))
        return;
    cJSON_ArrayForEach(span, spans)
    {
        struct tel_span *out;
        const cJSON *start;

        if (ev->span_count >= TELEMETRY_MAX_SPANS)
            break;
        if (!cJSON_IsObject(span))
            continue;
        out = &ev->spans[ev->span_count];
        out->name = get_string(c, span, "name");
        if (out->name == NULL)
            continue;
        out->start_us = TEL_ABSENT;
        start = cJSON_GetObjectItemCaseSensitive(span, "start");
        if (cJSON_IsString(start) && tel_parse_time(start->valuestring, &out->start_us) < 0)
            out->start_us = TEL_ABSENT;
        out->duration_us = get_ms_as_us(span, "durationMs");
        ev->span_count++;
    }
}

static void read_record(struct ctx *c, const cJSON *record, struct tel_event *ev)
{
    const cJSON *tracing;
    const cJSON *metrics;

    if (cJSON_IsString(record)) {
        ev->text = arena_strdup(c->arena, record->valuestring);
        if (ev->text == NULL)
            c->oom = true;
        return;
    }
    if (!cJSON_IsObject(record))
        return;

    ev->request_id = get_string(c, record, "requestId");
    ev->status = status_from(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(record, "status")));
    ev->error_type = get_string(c, record, "errorType");
    ev->init_type = init_type_from(
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(record, "initializationType")));
    ev->phase = phase_from(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(record, "phase")));
    ev->version = get_string(c, record, "version");
    if (ev->version == NULL)
        ev->version = get_string(c, record, "functionVersion");
    ev->function_name = get_string(c, record, "functionName");
    ev->instance_id = get_string(c, record, "instanceId");
    ev->runtime_version = get_string(c, record, "runtimeVersion");
    ev->name = get_string(c, record, "name");
    ev->state = get_string(c, record, "state");
    ev->instance_max_memory = get_int(record, "instanceMaxMemory");
    ev->dropped_records = get_int(record, "droppedRecords");
    ev->dropped_bytes = get_int(record, "droppedBytes");
    if (ev->type == TEL_LOGS_DROPPED)
        ev->text = get_string(c, record, "reason");
    else if (ev->type == TEL_FUNCTION_LOG || ev->type == TEL_EXTENSION_LOG)
        ev->text = get_string(c, record, "message"); /* JSON log format */

    tracing = cJSON_GetObjectItemCaseSensitive(record, "tracing");
    if (cJSON_IsObject(tracing)) {
        ev->trace_value = get_string(c, tracing, "value");
        ev->trace_span_id = get_string(c, tracing, "spanId");
    }

    metrics = cJSON_GetObjectItemCaseSensitive(record, "metrics");
    if (cJSON_IsObject(metrics)) {
        ev->duration_us = get_ms_as_us(metrics, "durationMs");
        ev->init_duration_us = get_ms_as_us(metrics, "initDurationMs");
        ev->restore_duration_us = get_ms_as_us(metrics, "restoreDurationMs");
        ev->billed_duration_ms = get_int(metrics, "billedDurationMs");
        ev->memory_size_mb = get_int(metrics, "memorySizeMB");
        ev->max_memory_used_mb = get_int(metrics, "maxMemoryUsedMB");
        ev->produced_bytes = get_int(metrics, "producedBytes");
    }
    read_spans(c, record, ev);
}

static void event_init(struct tel_event *ev)
{
    memset(ev, 0, sizeof(*ev));
    ev->instance_max_memory = TEL_ABSENT;
    ev->duration_us = TEL_ABSENT;
    ev->init_duration_us = TEL_ABSENT;
    ev->restore_duration_us = TEL_ABSENT;
    ev->billed_duration_ms = TEL_ABSENT;
    ev->memory_size_mb = TEL_ABSENT;
    ev->max_memory_used_mb = TEL_ABSENT;
    ev->produced_bytes = TEL_ABSENT;
    ev->dropped_records = TEL_ABSENT;
    ev->dropped_bytes = TEL_ABSENT;
}

int tel_batch_parse(const char *body, size_t len, struct tel_batch **ret_batch)
{
    cJSON *root = NULL;
    const cJSON *element;
    struct tel_batch *batch = NULL;
    struct ctx c;
    int n;
    int r = 0;

    if (body == NULL)
        return -EPROTO;
    root = cJSON_ParseWithLengthOpts(body, len, NULL, false);
    if (!cJSON_IsArray(root)) {
        r = -EPROTO;
        goto out;
    }
    batch = calloc(1, sizeof(*batch));
    if (batch == NULL) {
        r = -ENOMEM;
        goto out;
    }
    n = cJSON_GetArraySize(root);
    if (n > 0) {
        batch->events = calloc((size_t)n, sizeof(*batch->events));
        if (batch->events == NULL) {
            r = -ENOMEM;
            goto out;
        }
    }
    c.arena = &batch->arena;
    c.oom = false;

    cJSON_ArrayForEach(element, root)
    {
        const cJSON *time_item = cJSON_GetObjectItemCaseSensitive(element, "time");
        const cJSON *type_item = cJSON_GetObjectItemCaseSensitive(element, "type");
        const cJSON *record = cJSON_GetObjectItemCaseSensitive(element, "record");
        struct tel_event *ev;

        if (batch->events == NULL)
            break; /* not reached: an empty array has no elements */
        ev = &batch->events[batch->count];
        if (!cJSON_IsObject(element) || !cJSON_IsString(time_item) || !cJSON_IsString(type_item) ||
            record == NULL) {
            batch->invalid++;
            continue;
        }
        event_init(ev);
        if (tel_parse_time(time_item->valuestring, &ev->time_us) < 0) {
            batch->invalid++;
            continue;
        }
        ev->type = type_from_name(type_item->valuestring);
        ev->type_name = ev->type != TEL_UNKNOWN ? type_names[ev->type]
                                                : arena_strdup(c.arena, type_item->valuestring);
        if (ev->type_name == NULL)
            c.oom = true;
        read_record(&c, record, ev);
        if (c.oom) {
            r = -ENOMEM;
            goto out;
        }
        batch->count++;
    }

out:
    cJSON_Delete(root);
    if (r < 0) {
        tel_batch_free(batch);
        return r;
    }
    *ret_batch = batch;
    return 0;
}

void tel_batch_free(struct tel_batch *batch)
{
    if (batch == NULL)
        return;
    arena_free(batch->arena);
    free(batch->events);
    free(batch);
}
