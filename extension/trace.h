/*
 * trace.h - the internal trace model: one segment (an invocation, or a
 * failed Init) with its tree of spans.  The tracer fills it; the encoders
 * (X-Ray segment documents, OTLP spans) only read it, so both backends show
 * the same tree.  Plain value structs, fixed-size, no pointers into other
 * memory: a segment can be copied, queued and encoded on any thread.
 *
 * Times are integer epoch microseconds; encoders format them (X-Ray: float
 * seconds, OTLP: nanoseconds as decimal strings).  An end of TRACE_NO_END
 * means "in progress".
 */
#ifndef LAMBDA_TRACER_TRACE_H
#define LAMBDA_TRACER_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xray_header.h"

#define TRACE_NO_END INT64_MIN
#define TRACE_MAX_SPANS 12
#define TRACE_MAX_ATTRS 48
#define TRACE_NAME_MAX 201           /* X-Ray segment names: at most 200 characters */
#define TRACE_SPAN_NAME_MAX 64
#define TRACE_STRING_MAX 256         /* attribute values (X-Ray caps most strings at 250) */
#define TRACE_CAUSE_TYPE_MAX 128
#define TRACE_CAUSE_MESSAGE_MAX 8192 /* message plus the optional log tail */
#define TRACE_SNAPSHOT_MAX 16384     /* a snapshot's JSON text, NUL included (fits a 64 KB document) */

enum trace_value_kind {
    TRACE_VALUE_STRING = 0,
    TRACE_VALUE_INT,
    TRACE_VALUE_DOUBLE,
    TRACE_VALUE_BOOL,
};

/* Where an attribute goes.  X-Ray annotations are indexed and limited to
 * string/number/bool with keys [A-Za-z0-9_]; metadata is free-form. */
enum trace_attr_target {
    TRACE_ATTR_ANNOTATION = 0, /* X-Ray annotation + OTLP span attribute */
    TRACE_ATTR_METADATA,       /* X-Ray metadata (namespace "lambda_tracer") + OTLP span attribute */
};

struct trace_attr {
    const char *xray_key;      /* static string; NULL: not sent to X-Ray */
    const char *otel_key;      /* static string; NULL: not sent to OTLP */
    int on_span;               /* whose: 0 the segment (so a zeroed attribute is the
                                * segment's), i + 1 segment.spans[i] (X-Ray: that
                                * subsegment's annotations/metadata; OTLP: that span's
                                * attributes) */
    enum trace_attr_target target;
    enum trace_value_kind kind;
    char str[TRACE_STRING_MAX];
    int64_t i;
    double d;
    bool b;
};

struct trace_span {
    char id[XRAY_SPAN_ID_LEN + 1];
    int parent;                    /* index into segment.spans, or -1: child of the segment */
    char name[TRACE_SPAN_NAME_MAX];
    int64_t start_us;
    int64_t end_us;                /* TRACE_NO_END while in progress */
    bool error;                    /* X-Ray `error` (client-side failure) */
    bool fault;                    /* X-Ray `fault` (server-side failure) */
};

enum trace_segment_kind {
    TRACE_SEGMENT_INVOCATION = 0,
    TRACE_SEGMENT_INIT,            /* an Init that failed (no invocation to hang it on) */
};

struct trace_segment {
    enum trace_segment_kind kind;
    char trace_id[XRAY_TRACE_ID_LEN + 1];
    char id[XRAY_SPAN_ID_LEN + 1];
    char parent_id[XRAY_SPAN_ID_LEN + 1]; /* upstream Parent, "" when none */
    /* The Parent the runtime's header carries when Lambda rewrote it
     * (Active: platform.start's tracing.spanId, 16 lower-case hex), ""
     * when none: OTLP's invocation span id (export.c) */
    char runtime_parent_id[XRAY_SPAN_ID_LEN + 1];
    bool sampled;
    char name[TRACE_NAME_MAX];            /* function name, or the configured override */
    char origin[32];                      /* "AWS::Lambda::Function" */
    /* the `aws` block */
    char request_id[128];
    char function_arn[512];
    char function_version[64];
    char account_id[32];
    int64_t start_us;
    int64_t end_us;                       /* TRACE_NO_END: in progress */
    bool error;
    bool fault;
    bool throttle;
    /* cause: present when cause_type[0] != '\0' */
    char cause_id[XRAY_SPAN_ID_LEN + 1];  /* the exception's id */
    char cause_type[TRACE_CAUSE_TYPE_MAX];
    char cause_message[TRACE_CAUSE_MESSAGE_MAX];
    size_t attr_count;
    size_t attrs_dropped;                 /* attributes left out: attrs[] was full */
    struct trace_attr attrs[TRACE_MAX_ATTRS];
    size_t span_count;
    struct trace_span spans[TRACE_MAX_SPANS];
    /* Forensics (forensics.c): the runtime's processes as one JSON object,
     * "" when none; X-Ray metadata lambda_tracer.snapshot, an OTLP span
     * event "lambda_tracer.snapshot" at snapshot_us. */
    int64_t snapshot_us;
    char snapshot_json[TRACE_SNAPSHOT_MAX];
};

/* Describes the execution environment: OTLP resource attributes. */
struct trace_resource {
    char service_name[TRACE_NAME_MAX];    /* service.name: the function name */
    char function_name[TRACE_NAME_MAX];   /* faas.name */
    char function_version[64];            /* faas.version */
    char region[32];                      /* cloud.region */
    char account_id[32];                  /* cloud.account.id, "" when unknown */
    char instance[TRACE_STRING_MAX];      /* faas.instance: the log stream name, "" when unknown */
    int64_t max_memory_bytes;             /* faas.max_memory, 0 when unknown */
    char extension_version[32];           /* scope version */
    /* From the settings (OTLP only): OTEL_SERVICE_NAME ("" unset) wins over
     * a service.name in the extra attributes, which wins over service_name;
     * the extra attributes (OTEL_RESOURCE_ATTRIBUTES, "key\0value\0" pairs
     * of extra_attrs_len bytes, unique keys, not owned) replace the detected
     * attribute of the same key. */
    char otel_service_name[256];
    const char *extra_attrs;
    size_t extra_attrs_len;
};

/* Copies src (NULL: "") into dst, cut to size - 1 bytes, always terminated. */
void trace_copy_str(char *dst, size_t size, const char *src);

/* Empties seg for reuse: every scalar zeroed, every string "", no
 * attributes, spans or snapshot.  Only the bytes that say so are written
 * (a segment is about 40 KB, most of it text buffers nobody reads past
 * their terminator): clearing all of it for every segment was a quarter
 * of the ingest path's instructions. */
void trace_segment_clear(struct trace_segment *seg);

/* Makes seg's tree consistent: no span starts before or ends after its
 * parent (the segment for top-level spans).  A child outside is clamped to
 * its parent; one left with nothing inside it is a point at the nearer
 * edge.  Telemetry `time` values are whole milliseconds while durations are
 * microseconds, so a child computed as time + duration can stick out by up
 * to a millisecond or two; the tracer widens a parent first where the
 * child's time is real (the caller waited for an Init: tracer.c).  Spans
 * must come after their parent in seg->spans (the tracer adds them so); a
 * span whose parent index is not earlier is made a top-level span.  An end
 * of TRACE_NO_END (in progress) is left so, and bounds nothing. */
void trace_segment_contain(struct trace_segment *seg);

/* Add one attribute to seg (xray_key / otel_key: static strings, either
 * may be NULL where that output has no such key).  A segment already
 * holding TRACE_MAX_ATTRS keeps what it has and the new one is left out,
 * counted in seg->attrs_dropped. */
void trace_attr_str(struct trace_segment *seg, const char *xray_key, const char *otel_key,
                    enum trace_attr_target target, const char *value);
void trace_attr_int(struct trace_segment *seg, const char *xray_key, const char *otel_key,
                    enum trace_attr_target target, int64_t value);
void trace_attr_double(struct trace_segment *seg, const char *xray_key, const char *otel_key,
                       enum trace_attr_target target, double value);
void trace_attr_bool(struct trace_segment *seg, const char *xray_key, const char *otel_key,
                     enum trace_attr_target target, bool value);

/* The same, on span `span` of seg (an index into seg->spans) rather than
 * on the segment; a negative span puts it on the segment. */
void trace_span_attr_str(struct trace_segment *seg, int span, const char *xray_key, const char *otel_key,
                         enum trace_attr_target target, const char *value);
void trace_span_attr_int(struct trace_segment *seg, int span, const char *xray_key, const char *otel_key,
                         enum trace_attr_target target, int64_t value);
void trace_span_attr_bool(struct trace_segment *seg, int span, const char *xray_key, const char *otel_key,
                          enum trace_attr_target target, bool value);

#endif
