/*
 * otlp_encode.c - OTLP/JSON and OTLP/protobuf trace requests; see
 * otlp_encode.h.
 *
 * Both encoders walk the same "views" of the segments (which spans go out,
 * with which ids, parents and end times) and the same attribute lists, so
 * the two wire forms cannot disagree about content.  The protobuf writer
 * never measures ahead: it writes a nested message's content, then inserts
 * the length prefix in front of it (one memmove per nesting level; requests
 * are small and shallow).  Leaf module: never logs.
 */
#include "otlp_encode.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "ids.h"
#include "limits.h"
#include "xray_header.h"

#define FIELD_LEN(field) strnlen((field), sizeof(field))

/* trace.proto enums: Span.SpanKind, Status.StatusCode. */
#define SPAN_KIND_INTERNAL 1
#define SPAN_KIND_SERVER 2
#define STATUS_CODE_OK 1
#define STATUS_CODE_ERROR 2
/* Span.flags: the low 8 bits are the W3C trace flags; 0x01 is "sampled". */
#define SPAN_FLAGS_SAMPLED 0x01U

/* Largest microsecond time whose nanoseconds fit the fixed64 fields. */
#define MAX_TIME_US ((int64_t)(UINT64_MAX / 1000U))

/*
 * Protobuf field numbers (see the header for the source commit).  Several
 * messages reuse the same numbers; one name per (message, field).
 */
enum {
    /* ExportTraceServiceRequest */
    PB_REQUEST_RESOURCE_SPANS = 1,
    /* ResourceSpans */
    PB_RESOURCE_SPANS_RESOURCE = 1,
    PB_RESOURCE_SPANS_SCOPE_SPANS = 2,
    /* Resource */
    PB_RESOURCE_ATTRIBUTES = 1,
    /* ScopeSpans */
    PB_SCOPE_SPANS_SCOPE = 1,
    PB_SCOPE_SPANS_SPANS = 2,
    /* InstrumentationScope */
    PB_SCOPE_NAME = 1,
    PB_SCOPE_VERSION = 2,
    /* Span */
    PB_SPAN_TRACE_ID = 1,
    PB_SPAN_SPAN_ID = 2,
    PB_SPAN_PARENT_SPAN_ID = 4,
    PB_SPAN_NAME = 5,
    PB_SPAN_KIND = 6,
    PB_SPAN_START_TIME = 7,
    PB_SPAN_END_TIME = 8,
    PB_SPAN_ATTRIBUTES = 9,
    PB_SPAN_EVENTS = 11,
    PB_SPAN_STATUS = 15,
    PB_SPAN_FLAGS = 16,
    /* Span.Event */
    PB_EVENT_TIME = 1,
    PB_EVENT_NAME = 2,
    PB_EVENT_ATTRIBUTES = 3,
    /* Status */
    PB_STATUS_MESSAGE = 2,
    PB_STATUS_CODE = 3,
    /* KeyValue */
    PB_KV_KEY = 1,
    PB_KV_VALUE = 2,
    /* AnyValue (oneof value) */
    PB_ANY_STRING = 1,
    PB_ANY_BOOL = 2,
    PB_ANY_INT = 3,
    PB_ANY_DOUBLE = 4,
};

/* Protobuf wire types. */
enum { WIRE_VARINT = 0, WIRE_I64 = 1, WIRE_LEN = 2, WIRE_I32 = 5 };

/* --- what goes out ------------------------------------------------------- */

/* One attribute, whatever its source. */
struct kv {
    const char *key;
    enum trace_value_kind kind;
    const char *s;
    size_t len;
    int64_t i;
    double d;
    bool b;
};

/* The detected attributes, plus OTEL_RESOURCE_ATTRIBUTES. */
#define RESOURCE_KV_MAX (9 + RESOURCE_ATTRS_MAX)
/* The segment's attributes, plus the in-progress marker. */
#define SPAN_KV_MAX (TRACE_MAX_ATTRS + 1)

/* One span to emit. */
struct view {
    const struct trace_segment *seg;
    bool is_segment;
    int owner;              /* whose attributes (trace_attr.on_span): 0 the segment, i + 1 span i */
    char trace_id[33];      /* 32 lower-case hex */
    const char *span_id;    /* 16 hex */
    const char *parent_id;  /* 16 hex, or NULL for none */
    const char *name;
    size_t name_len;
    int64_t start_us;
    int64_t end_us;
    bool forced;            /* was in progress, ended at now */
    bool failed;            /* error or fault */
};

/* Which of a segment's spans go out (slot 0: the segment, i + 1: span i). */
struct plan {
    bool emit[1 + TRACE_MAX_SPANS];
    int64_t end_us[1 + TRACE_MAX_SPANS];
    bool forced[1 + TRACE_MAX_SPANS];
};

static bool time_ok(int64_t us)
{
    return us >= 0 && us <= MAX_TIME_US;
}

static bool end_ok(int64_t us)
{
    return us == TRACE_NO_END || time_ok(us);
}

static bool span_id_ok(const char *id, size_t size)
{
    return xray_span_id_valid(id, strnlen(id, size));
}

/* The model's rules this encoder relies on (see the header). */
static bool segment_valid(const struct trace_segment *seg)
{
    if (seg->span_count > TRACE_MAX_SPANS || seg->attr_count > TRACE_MAX_ATTRS)
        return false;
    if (!xray_trace_id_valid(seg->trace_id, FIELD_LEN(seg->trace_id)) ||
        !span_id_ok(seg->id, sizeof(seg->id)) ||
        (seg->parent_id[0] != '\0' && !span_id_ok(seg->parent_id, sizeof(seg->parent_id))))
        return false;
    if (!time_ok(seg->start_us) || !end_ok(seg->end_us))
        return false;
    for (size_t i = 0; i < seg->span_count; i++) {
        const struct trace_span *s = &seg->spans[i];
        int p = s->parent;
        size_t steps = 0;

        if (!span_id_ok(s->id, sizeof(s->id)) || !time_ok(s->start_us) || !end_ok(s->end_us))
            return false;
        /* The chain of parents must reach the segment: no bad index, no
         * cycle. */
        while (p != -1) {
            if (p < 0 || (size_t)p >= seg->span_count || ++steps > seg->span_count)
                return false;
            p = seg->spans[p].parent;
        }
    }
    return true;
}

/* True when span i (-1: the segment) and every span above it have ended. */
static bool chain_ended(const struct trace_segment *seg, int i)
{
    if (seg->end_us == TRACE_NO_END)
        return false;
    for (int j = i; j != -1; j = seg->spans[j].parent) {
        if (seg->spans[j].end_us == TRACE_NO_END)
            return false;
    }
    return true;
}

/* Decides for each span whether it goes out and when it ends. */
static void make_plan(const struct trace_segment *seg, int64_t now_us, struct plan *p,
                      struct otlp_encode_stats *st)
{
    for (size_t k = 0; k <= seg->span_count; k++) {
        int64_t start = k == 0 ? seg->start_us : seg->spans[k - 1].start_us;
        int64_t end = k == 0 ? seg->end_us : seg->spans[k - 1].end_us;

        p->emit[k] = true;
        p->forced[k] = false;
        p->end_us[k] = end;
        if (now_us == TRACE_NO_END) {
            /* Skip in-progress spans and everything under them. */
            p->emit[k] = chain_ended(seg, (int)k - 1);
            if (!p->emit[k])
                st->spans_skipped_in_progress++;
        } else if (end == TRACE_NO_END) {
            p->forced[k] = true;
            p->end_us[k] = now_us > start ? now_us : start;
            st->spans_ended_at_now++;
        }
    }
}

static void lower_hex(char *dst, const char *src, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = src[i];

        dst[i] = (char)(c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
    }
    dst[n] = '\0';
}

/* The view of slot k of a planned segment. */
static void make_view(const struct trace_segment *seg, const struct plan *p, size_t k,
                      struct view *v)
{
    char otel[33];

    memset(v, 0, sizeof(*v));
    v->seg = seg;
    v->owner = (int)k;
    ids_xray_to_otel_trace_id(seg->trace_id, otel);
    lower_hex(v->trace_id, otel, 32);
    v->end_us = p->end_us[k];
    v->forced = p->forced[k];
    if (k == 0) {
        v->is_segment = true;
        v->span_id = seg->id;
        v->parent_id = seg->parent_id[0] != '\0' ? seg->parent_id : NULL;
        v->name = seg->name;
        v->name_len = FIELD_LEN(seg->name);
        v->start_us = seg->start_us;
        v->failed = seg->error || seg->fault;
    } else {
        const struct trace_span *s = &seg->spans[k - 1];

        v->span_id = s->id;
        v->parent_id = s->parent < 0 ? seg->id : seg->spans[s->parent].id;
        v->name = s->name;
        v->name_len = FIELD_LEN(s->name);
        v->start_us = s->start_us;
        v->failed = s->error || s->fault;
    }
}

static void kv_string(struct kv *kv, const char *key, const char *s, size_t len)
{
    memset(kv, 0, sizeof(*kv));
    kv->key = key;
    kv->kind = TRACE_VALUE_STRING;
    kv->s = s;
    kv->len = len;
}

/* The value of key in res's extra attributes ("key\0value\0" pairs), or
 * NULL; *ret_len is its length. */
static const char *extra_attr(const struct trace_resource *res, const char *key, size_t *ret_len)
{
    size_t off = 0;

    while (res->extra_attrs != NULL && off < res->extra_attrs_len) {
        const char *k = res->extra_attrs + off;
        const char *v = k + strlen(k) + 1;
        size_t vlen = strlen(v);

        if (strcmp(k, key) == 0) {
            *ret_len = vlen;
            return v;
        }
        off = (size_t)(v - res->extra_attrs) + vlen + 1;
    }
    return NULL;
}

/* The resource on current semantic conventions (faas.max_memory in bytes,
 * reference 5.1).  service.name: OTEL_SERVICE_NAME, else a service.name in
 * OTEL_RESOURCE_ATTRIBUTES (the specification's order), else the segment
 * name (the function name unless LAMBDA_TRACER_SEGMENT_NAME).  Every other
 * OTEL_RESOURCE_ATTRIBUTES pair is added, replacing a detected attribute of
 * the same key (what the user wrote is what they meant). */
static size_t resource_kvs(const struct trace_resource *res, struct kv kvs[RESOURCE_KV_MAX])
{
    const char *service = res->service_name[0] != '\0' ? res->service_name : res->function_name;
    size_t service_len = strnlen(service, TRACE_NAME_MAX), len;
    const char *v = extra_attr(res, "service.name", &len);
    if (v != NULL) {
        service = v;
        service_len = len;
    }
    if (res->otel_service_name[0] != '\0') {
        service = res->otel_service_name;
        service_len = strnlen(res->otel_service_name, sizeof(res->otel_service_name));
    }
    const struct {
        const char *key;
        const char *val;
        size_t len;
    } f[] = {
        {"service.name", service, service_len},
        {"cloud.provider", "aws", 3},
        {"cloud.platform", "aws_lambda", 10},
        {"cloud.region", res->region, FIELD_LEN(res->region)},
        {"cloud.account.id", res->account_id, FIELD_LEN(res->account_id)},
        {"faas.name", res->function_name, FIELD_LEN(res->function_name)},
        {"faas.version", res->function_version, FIELD_LEN(res->function_version)},
        {"faas.instance", res->instance, FIELD_LEN(res->instance)},
    };
    size_t n = 0, off = 0;

    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        if (f[i].len > 0 && (i == 0 || extra_attr(res, f[i].key, &len) == NULL))
            kv_string(&kvs[n++], f[i].key, f[i].val, f[i].len);
    }
    if (res->max_memory_bytes > 0 && extra_attr(res, "faas.max_memory", &len) == NULL) {
        memset(&kvs[n], 0, sizeof(kvs[n]));
        kvs[n].key = "faas.max_memory";
        kvs[n].kind = TRACE_VALUE_INT;
        kvs[n].i = res->max_memory_bytes;
        n++;
    }
    while (res->extra_attrs != NULL && off < res->extra_attrs_len && n < RESOURCE_KV_MAX) {
        const char *k = res->extra_attrs + off;
        const char *val = k + strlen(k) + 1;
        size_t vlen = strlen(val);

        if (strcmp(k, "service.name") != 0)
            kv_string(&kvs[n++], k, val, vlen);
        off = (size_t)(val - res->extra_attrs) + vlen + 1;
    }
    return n;
}

static bool kind_known(enum trace_value_kind kind)
{
    return kind == TRACE_VALUE_STRING || kind == TRACE_VALUE_INT || kind == TRACE_VALUE_DOUBLE ||
           kind == TRACE_VALUE_BOOL;
}

/* The span's attributes: the segment's attrs with an otel_key that belong
 * to this span (trace_attr.on_span: 0 the segment itself, i + 1 span i;
 * attribute keys must be unique, so a repeat is dropped and
 * counted); for any span ended at now, the in-progress marker. */
static size_t span_kvs(const struct view *v, struct kv kvs[SPAN_KV_MAX], unsigned long *skipped)
{
    const struct trace_segment *seg = v->seg;
    size_t n = 0;

    for (size_t i = 0; i < seg->attr_count; i++) {
        const struct trace_attr *a = &seg->attrs[i];
        bool dup = false;

        if (a->otel_key == NULL || a->on_span != v->owner)
            continue;
        for (size_t j = 0; j < n && !dup; j++)
            dup = strcmp(kvs[j].key, a->otel_key) == 0;
        if (dup || !kind_known(a->kind)) {
            (*skipped)++;
            continue;
        }
        kv_string(&kvs[n], a->otel_key, a->str, FIELD_LEN(a->str));
        kvs[n].kind = a->kind;
        kvs[n].i = a->i;
        kvs[n].d = a->d;
        kvs[n].b = a->b;
        n++;
    }
    if (v->forced) {
        memset(&kvs[n], 0, sizeof(kvs[n]));
        kvs[n].key = OTLP_IN_PROGRESS_ATTR;
        kvs[n].kind = TRACE_VALUE_BOOL;
        kvs[n].b = true;
        n++;
    }
    return n;
}

/* The exception event's attributes (OTel exception semantic conventions). */
static size_t exception_kvs(const struct trace_segment *seg, struct kv kvs[2])
{
    size_t n = 0;

    kv_string(&kvs[n++], "exception.type", seg->cause_type, FIELD_LEN(seg->cause_type));
    if (seg->cause_message[0] != '\0')
        kv_string(&kvs[n++], "exception.message", seg->cause_message,
                  FIELD_LEN(seg->cause_message));
    return n;
}

static bool has_exception(const struct view *v)
{
    return v->is_segment && v->seg->cause_type[0] != '\0';
}

static bool has_snapshot(const struct view *v)
{
    return v->is_segment && v->seg->snapshot_json[0] != '\0';
}

/* The snapshot event's time: when it was taken, within the span. */
static int64_t snapshot_time_us(const struct view *v)
{
    int64_t t = v->seg->snapshot_us;

    if (t < v->start_us)
        t = v->start_us;
    if (t > v->end_us)
        t = v->end_us;
    return t;
}

/* Status: ERROR on error or fault, OK when ended normally, none (unset)
 * while the outcome is unknown.  Returns the code, 0 for none. */
static int status_code(const struct view *v)
{
    if (v->failed)
        return STATUS_CODE_ERROR;
    return v->forced ? 0 : STATUS_CODE_OK;
}

static uint64_t ns(int64_t us)
{
    return (uint64_t)us * 1000U;
}

/* Runs fn over every span to emit.  Invalid segments are counted and left
 * out. */
typedef int span_fn(struct buf *b, const struct view *v, struct otlp_encode_stats *st);

static int for_each_span(struct buf *b, const struct trace_segment *segs, size_t n,
                         int64_t now_us, struct otlp_encode_stats *st, span_fn *fn)
{
    for (size_t s = 0; s < n; s++) {
        struct plan p;

        if (!segment_valid(&segs[s])) {
            st->segments_invalid++;
            continue;
        }
        /* the count the plan was made for (the analyzer cannot tell fn
         * leaves the segment alone) */
        size_t count = segs[s].span_count;

        make_plan(&segs[s], now_us, &p, st);
        for (size_t k = 0; k <= count; k++) {
            struct view v;
            int r;

            if (!p.emit[k])
                continue;
            make_view(&segs[s], &p, k, &v);
            r = fn(b, &v, st);
            if (r < 0)
                return r;
            st->spans_encoded++;
        }
    }
    return 0;
}

static void stats_add(struct otlp_encode_stats *to, const struct otlp_encode_stats *from)
{
    if (to == NULL)
        return;
    to->spans_encoded += from->spans_encoded;
    to->spans_skipped_in_progress += from->spans_skipped_in_progress;
    to->spans_ended_at_now += from->spans_ended_at_now;
    to->attributes_skipped += from->attributes_skipped;
    to->segments_invalid += from->segments_invalid;
}

static bool args_ok(const struct buf *out, const struct trace_resource *res,
                    const struct trace_segment *segs, size_t n, int64_t now_us)
{
    return out != NULL && res != NULL && segs != NULL && n > 0 &&
           (now_us == TRACE_NO_END || time_ok(now_us));
}

/* --- OTLP/JSON ----------------------------------------------------------- */

static int json_kv(struct buf *b, const struct kv *kv)
{
    int r = 0;

    TRY(buf_append_str(b, "{\"key\":"));
    TRY(buf_append_json_string(b, kv->key, strlen(kv->key)));
    TRY(buf_append_str(b, ",\"value\":{"));
    switch (kv->kind) {
    case TRACE_VALUE_STRING:
        TRY(buf_append_str(b, "\"stringValue\":"));
        TRY(buf_append_json_string(b, kv->s, kv->len));
        break;
    case TRACE_VALUE_INT:
        /* 64-bit integers are decimal strings in OTLP/JSON. */
        TRY(buf_printf(b, "\"intValue\":\"%" PRId64 "\"", kv->i));
        break;
    case TRACE_VALUE_DOUBLE:
        TRY(buf_append_str(b, "\"doubleValue\":"));
        /* proto3 JSON spells the non-finite doubles as strings. */
        if (isnan(kv->d))
            TRY(buf_append_str(b, "\"NaN\""));
        else if (isinf(kv->d))
            TRY(buf_append_str(b, kv->d > 0 ? "\"Infinity\"" : "\"-Infinity\""));
        else
            TRY(buf_append_json_double(b, kv->d));
        break;
    case TRACE_VALUE_BOOL:
        TRY(buf_append_str(b, kv->b ? "\"boolValue\":true" : "\"boolValue\":false"));
        break;
    default:
        r = -EINVAL;
        goto out;
    }
    TRY(buf_append_str(b, "}}"));
out:
    return r;
}

/* ,"attributes":[...] (lead names the member), nothing when n is 0. */
static int json_kvs(struct buf *b, const char *lead, const struct kv *kvs, size_t n)
{
    int r = 0;

    if (n == 0)
        return 0;
    TRY(buf_append_str(b, lead));
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            TRY(buf_append_str(b, ","));
        TRY(json_kv(b, &kvs[i]));
    }
    TRY(buf_append_str(b, "]"));
out:
    return r;
}

static int json_id(struct buf *b, const char *key, const char *hex, size_t n)
{
    char lower[33];

    lower_hex(lower, hex, n);
    return buf_printf(b, ",\"%s\":\"%s\"", key, lower);
}

static int json_span(struct buf *b, const struct view *v, struct otlp_encode_stats *st)
{
    struct kv kvs[SPAN_KV_MAX];
    size_t nkv = span_kvs(v, kvs, &st->attributes_skipped);
    int code = status_code(v);
    int r = 0;

    TRY(buf_printf(b, "{\"traceId\":\"%s\"", v->trace_id));
    TRY(json_id(b, "spanId", v->span_id, XRAY_SPAN_ID_LEN));
    if (v->parent_id != NULL)
        TRY(json_id(b, "parentSpanId", v->parent_id, XRAY_SPAN_ID_LEN));
    if (v->seg->sampled)
        TRY(buf_printf(b, ",\"flags\":%u", SPAN_FLAGS_SAMPLED));
    TRY(buf_append_str(b, ",\"name\":"));
    TRY(buf_append_json_string(b, v->name, v->name_len));
    TRY(buf_printf(b, ",\"kind\":%d", v->is_segment ? SPAN_KIND_SERVER : SPAN_KIND_INTERNAL));
    TRY(buf_printf(b, ",\"startTimeUnixNano\":\"%" PRIu64 "\",\"endTimeUnixNano\":\"%" PRIu64 "\"",
                   ns(v->start_us), ns(v->end_us)));
    TRY(json_kvs(b, ",\"attributes\":[", kvs, nkv));
    if (has_exception(v) || has_snapshot(v))
        TRY(buf_append_str(b, ",\"events\":["));
    if (has_exception(v)) {
        struct kv ex[2];
        size_t nex = exception_kvs(v->seg, ex);

        TRY(buf_printf(b, "{\"timeUnixNano\":\"%" PRIu64 "\",\"name\":\"exception\"",
                       ns(v->end_us)));
        TRY(json_kvs(b, ",\"attributes\":[", ex, nex));
        TRY(buf_append_str(b, "}"));
    }
    if (has_snapshot(v)) {
        struct kv snap;

        kv_string(&snap, OTLP_SNAPSHOT_EVENT, v->seg->snapshot_json, FIELD_LEN(v->seg->snapshot_json));
        TRY(buf_printf(b, "%s{\"timeUnixNano\":\"%" PRIu64 "\",\"name\":\"" OTLP_SNAPSHOT_EVENT "\"",
                       has_exception(v) ? "," : "", ns(snapshot_time_us(v))));
        TRY(json_kvs(b, ",\"attributes\":[", &snap, 1));
        TRY(buf_append_str(b, "}"));
    }
    if (has_exception(v) || has_snapshot(v))
        TRY(buf_append_str(b, "]"));
    if (code != 0) {
        TRY(buf_printf(b, ",\"status\":{\"code\":%d", code));
        if (code == STATUS_CODE_ERROR && has_exception(v)) {
            TRY(buf_append_str(b, ",\"message\":"));
            TRY(buf_append_json_string(b, v->seg->cause_type, FIELD_LEN(v->seg->cause_type)));
        }
        TRY(buf_append_str(b, "}"));
    }
    TRY(buf_append_str(b, "}"));
out:
    return r;
}

/* Comma between spans: the first span of the request has none. */
static int json_span_sep(struct buf *b, const struct view *v, struct otlp_encode_stats *st)
{
    int r = 0;

    if (st->spans_encoded > 0)
        r = buf_append_str(b, ",");
    return r < 0 ? r : json_span(b, v, st);
}

int otlp_encode_json(struct buf *out, const struct trace_resource *res,
                     const struct trace_segment *segs, size_t n, int64_t now_us,
                     struct otlp_encode_stats *stats)
{
    struct otlp_encode_stats st = {0};
    struct kv kvs[RESOURCE_KV_MAX];
    size_t nkv;
    size_t start;
    int r = 0;

    if (!args_ok(out, res, segs, n, now_us))
        return -EINVAL;
    start = buf_len(out);
    nkv = resource_kvs(res, kvs);
    TRY(buf_append_str(out, "{\"resourceSpans\":[{\"resource\":{"));
    /* json_kvs writes a leading comma-free member here. */
    TRY(json_kvs(out, "\"attributes\":[", kvs, nkv));
    TRY(buf_append_str(out, "},\"scopeSpans\":[{\"scope\":{\"name\":\"" OTLP_SCOPE_NAME "\""));
    if (res->extension_version[0] != '\0') {
        TRY(buf_append_str(out, ",\"version\":"));
        TRY(buf_append_json_string(out, res->extension_version, FIELD_LEN(res->extension_version)));
    }
    TRY(buf_append_str(out, "},\"spans\":["));
    TRY(for_each_span(out, segs, n, now_us, &st, json_span_sep));
    TRY(buf_append_str(out, "]}]}]}"));
out:
    if (r < 0) {
        buf_truncate(out, start);
        return r;
    }
    stats_add(stats, &st);
    return 0;
}

/* --- OTLP/protobuf ------------------------------------------------------- */

static size_t varint(uint8_t dst[10], uint64_t v)
{
    size_t n = 0;

    while (v >= 0x80) {
        dst[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    dst[n++] = (uint8_t)v;
    return n;
}

static int pb_varint(struct buf *b, uint64_t v)
{
    uint8_t tmp[10];

    return buf_append(b, tmp, varint(tmp, v));
}

static int pb_tag(struct buf *b, unsigned field, unsigned wire)
{
    return pb_varint(b, ((uint64_t)field << 3) | wire);
}

static int pb_varint_field(struct buf *b, unsigned field, uint64_t v)
{
    int r = pb_tag(b, field, WIRE_VARINT);

    return r < 0 ? r : pb_varint(b, v);
}

/* Little-endian, whatever the host. */
static int pb_fixed(struct buf *b, unsigned field, unsigned wire, uint64_t v, size_t bytes)
{
    uint8_t tmp[8];
    int r = pb_tag(b, field, wire);

    if (r < 0)
        return r;
    for (size_t i = 0; i < bytes; i++)
        tmp[i] = (uint8_t)(v >> (8 * i));
    return buf_append(b, tmp, bytes);
}

static int pb_bytes(struct buf *b, unsigned field, const void *p, size_t n)
{
    int r = pb_tag(b, field, WIRE_LEN);

    if (r == 0)
        r = pb_varint(b, n);
    return r < 0 ? r : buf_append(b, p, n);
}

/* Starts a nested message: writes its tag, returns where its content
 * starts (the length goes there once known). */
static int pb_open(struct buf *b, unsigned field, size_t *ret_mark)
{
    int r = pb_tag(b, field, WIRE_LEN);

    *ret_mark = buf_len(b);
    return r;
}

static int pb_close(struct buf *b, size_t mark)
{
    uint8_t tmp[10];

    return buf_insert(b, mark, tmp, varint(tmp, buf_len(b) - mark));
}

/* A `string` field: proto3 requires valid UTF-8 and receivers (the Go
 * collector among them) reject a request that has none, so ill-formed
 * bytes are replaced exactly as the JSON encoder replaces them. */
static int pb_string(struct buf *b, unsigned field, const char *s, size_t n)
{
    size_t mark;
    int r = pb_open(b, field, &mark);

    if (r == 0)
        r = buf_append_utf8(b, s, n);
    return r < 0 ? r : pb_close(b, mark);
}

/* Hex id (already validated) as raw bytes. */
static int pb_id(struct buf *b, unsigned field, const char *hex, size_t bytes)
{
    uint8_t raw[16];

    /* ids are validated before encoding: a non-digit cannot occur (0 keeps
     * the arithmetic defined regardless) */
    for (size_t i = 0; i < bytes; i++) {
        int hi = ids_hex_value(hex[2 * i]), lo = ids_hex_value(hex[2 * i + 1]);
        raw[i] = (uint8_t)((hi < 0 ? 0 : hi) << 4 | (lo < 0 ? 0 : lo));
    }
    return pb_bytes(b, field, raw, bytes);
}

static int pb_kv(struct buf *b, unsigned field, const struct kv *kv)
{
    size_t kv_mark;
    size_t any_mark;
    uint64_t bits;
    int r = 0;

    TRY(pb_open(b, field, &kv_mark));
    TRY(pb_string(b, PB_KV_KEY, kv->key, strlen(kv->key)));
    TRY(pb_open(b, PB_KV_VALUE, &any_mark));
    /* A oneof member is written even when it holds its type's default
     * (false, 0, ""), or the value would read back as empty. */
    switch (kv->kind) {
    case TRACE_VALUE_STRING:
        TRY(pb_string(b, PB_ANY_STRING, kv->s, kv->len));
        break;
    case TRACE_VALUE_INT:
        TRY(pb_varint_field(b, PB_ANY_INT, (uint64_t)kv->i));
        break;
    case TRACE_VALUE_DOUBLE:
        memcpy(&bits, &kv->d, sizeof(bits));
        TRY(pb_fixed(b, PB_ANY_DOUBLE, WIRE_I64, bits, 8));
        break;
    case TRACE_VALUE_BOOL:
        TRY(pb_varint_field(b, PB_ANY_BOOL, kv->b ? 1 : 0));
        break;
    default:
        r = -EINVAL;
        goto out;
    }
    TRY(pb_close(b, any_mark));
    TRY(pb_close(b, kv_mark));
out:
    return r;
}

static int pb_span(struct buf *b, const struct view *v, struct otlp_encode_stats *st)
{
    struct kv kvs[SPAN_KV_MAX];
    size_t nkv = span_kvs(v, kvs, &st->attributes_skipped);
    int code = status_code(v);
    size_t span_mark;
    size_t mark;
    int r = 0;

    TRY(pb_open(b, PB_SCOPE_SPANS_SPANS, &span_mark));
    TRY(pb_id(b, PB_SPAN_TRACE_ID, v->trace_id, 16));
    TRY(pb_id(b, PB_SPAN_SPAN_ID, v->span_id, 8));
    if (v->parent_id != NULL)
        TRY(pb_id(b, PB_SPAN_PARENT_SPAN_ID, v->parent_id, 8));
    TRY(pb_string(b, PB_SPAN_NAME, v->name, v->name_len));
    TRY(pb_varint_field(b, PB_SPAN_KIND, v->is_segment ? SPAN_KIND_SERVER : SPAN_KIND_INTERNAL));
    TRY(pb_fixed(b, PB_SPAN_START_TIME, WIRE_I64, ns(v->start_us), 8));
    TRY(pb_fixed(b, PB_SPAN_END_TIME, WIRE_I64, ns(v->end_us), 8));
    for (size_t i = 0; i < nkv; i++)
        TRY(pb_kv(b, PB_SPAN_ATTRIBUTES, &kvs[i]));
    if (has_exception(v)) {
        struct kv ex[2];
        size_t nex = exception_kvs(v->seg, ex);

        TRY(pb_open(b, PB_SPAN_EVENTS, &mark));
        TRY(pb_fixed(b, PB_EVENT_TIME, WIRE_I64, ns(v->end_us), 8));
        TRY(pb_string(b, PB_EVENT_NAME, "exception", 9));
        for (size_t i = 0; i < nex; i++)
            TRY(pb_kv(b, PB_EVENT_ATTRIBUTES, &ex[i]));
        TRY(pb_close(b, mark));
    }
    if (has_snapshot(v)) {
        struct kv snap;

        kv_string(&snap, OTLP_SNAPSHOT_EVENT, v->seg->snapshot_json, FIELD_LEN(v->seg->snapshot_json));
        TRY(pb_open(b, PB_SPAN_EVENTS, &mark));
        TRY(pb_fixed(b, PB_EVENT_TIME, WIRE_I64, ns(snapshot_time_us(v)), 8));
        TRY(pb_string(b, PB_EVENT_NAME, OTLP_SNAPSHOT_EVENT, sizeof(OTLP_SNAPSHOT_EVENT) - 1));
        TRY(pb_kv(b, PB_EVENT_ATTRIBUTES, &snap));
        TRY(pb_close(b, mark));
    }
    if (code != 0) {
        TRY(pb_open(b, PB_SPAN_STATUS, &mark));
        if (code == STATUS_CODE_ERROR && has_exception(v))
            TRY(pb_string(b, PB_STATUS_MESSAGE, v->seg->cause_type,
                              FIELD_LEN(v->seg->cause_type)));
        TRY(pb_varint_field(b, PB_STATUS_CODE, (uint64_t)code));
        TRY(pb_close(b, mark));
    }
    if (v->seg->sampled)
        TRY(pb_fixed(b, PB_SPAN_FLAGS, WIRE_I32, SPAN_FLAGS_SAMPLED, 4));
    TRY(pb_close(b, span_mark));
out:
    return r;
}

int otlp_encode_protobuf(struct buf *out, const struct trace_resource *res,
                         const struct trace_segment *segs, size_t n, int64_t now_us,
                         struct otlp_encode_stats *stats)
{
    struct otlp_encode_stats st = {0};
    struct kv kvs[RESOURCE_KV_MAX];
    size_t nkv;
    size_t start;
    size_t rs_mark;
    size_t mark;
    size_t ss_mark;
    int r = 0;

    if (!args_ok(out, res, segs, n, now_us))
        return -EINVAL;
    start = buf_len(out);
    nkv = resource_kvs(res, kvs);
    TRY(pb_open(out, PB_REQUEST_RESOURCE_SPANS, &rs_mark));
    TRY(pb_open(out, PB_RESOURCE_SPANS_RESOURCE, &mark));
    for (size_t i = 0; i < nkv; i++)
        TRY(pb_kv(out, PB_RESOURCE_ATTRIBUTES, &kvs[i]));
    TRY(pb_close(out, mark));
    TRY(pb_open(out, PB_RESOURCE_SPANS_SCOPE_SPANS, &ss_mark));
    TRY(pb_open(out, PB_SCOPE_SPANS_SCOPE, &mark));
    TRY(pb_string(out, PB_SCOPE_NAME, OTLP_SCOPE_NAME, sizeof(OTLP_SCOPE_NAME) - 1));
    if (res->extension_version[0] != '\0')
        TRY(pb_string(out, PB_SCOPE_VERSION, res->extension_version,
                      FIELD_LEN(res->extension_version)));
    TRY(pb_close(out, mark));
    TRY(for_each_span(out, segs, n, now_us, &st, pb_span));
    TRY(pb_close(out, ss_mark));
    TRY(pb_close(out, rs_mark));
out:
    if (r < 0) {
        buf_truncate(out, start);
        return r;
    }
    stats_add(stats, &st);
    return 0;
}
