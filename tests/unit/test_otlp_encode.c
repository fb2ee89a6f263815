/*
 * Unit tests for otlp_encode.c: exact OTLP/JSON, protobuf bytes derived by
 * hand from trace.proto, value encodings, in-progress handling, invalid
 * segments, caps and every allocation failure.
 *
 * With LAMBDA_TRACER_ENCODER_DUMP_DIR set, each scenario's two bodies are
 * written there as otlp_NAME.json and otlp_NAME.pb; tests/tools/
 * check_encoders.sh decodes the protobuf with an independent decoder and
 * checks it says the same as the JSON.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <cjson/cJSON.h>

#include "buf.h"
#include "limits.h"
#include "otlp_encode.h"
#include "trace.h"
#include "fail_alloc.h"
#include "trace_fixture.h"

#define TRACE_ID "1-5759e988-bd862e3fe1be46a994272793"
#define OTEL_TRACE_ID "5759e988bd862e3fe1be46a994272793"
#define SEG_ID "53995c3f42cd8ad8"
#define BODY_MAX (1UL << 20)

static struct trace_segment segs[3];
static struct trace_segment *seg = &segs[0];
static struct trace_resource res;

/* --- fixtures ------------------------------------------------------------ */

static void minimal_segment(struct trace_segment *s)
{
    memset(s, 0, sizeof(*s));
    SET(s->trace_id, TRACE_ID);
    SET(s->id, SEG_ID);
    SET(s->name, "f");
    s->start_us = 1;
    s->end_us = 2;
}

static void full_resource(void)
{
    memset(&res, 0, sizeof(res));
    SET(res.service_name, "my-function");
    SET(res.function_name, "my-function");
    SET(res.function_version, "$LATEST");
    SET(res.region, "us-east-1");
    SET(res.account_id, "123456789012");
    SET(res.instance, "2021/06/28/[$LATEST]2f399eb14537447da05ab2a2e39309de");
    res.max_memory_bytes = 134217728;
    SET(res.extension_version, "0.1.0");
}

/* The same cold-start, failed invocation as test_xray_encode.c. */
static void full_segment(struct trace_segment *s)
{
    minimal_segment(s);
    SET(s->parent_id, "4C17ECC1B6CD296A"); /* upper case from a header: sent lower case */
    SET(s->name, "my-function");
    SET(s->origin, "AWS::Lambda::Function");
    SET(s->request_id, "8476a536-e9f4-11e8-9739-2dfe598c3fcd");
    s->sampled = true;
    s->start_us = 1480615200010000;
    s->end_us = 1480615201250000;
    s->fault = true;
    SET(s->cause_id, "0a1b2c3d4e5f6789");
    SET(s->cause_type, "Runtime.ExitError");
    SET(s->cause_message, "exit status 1");
    add_attr(s, "cold_start", "faas.coldstart", TRACE_ATTR_ANNOTATION, TRACE_VALUE_BOOL)->b = true;
    add_attr(s, "init_ms", NULL, TRACE_ATTR_ANNOTATION, TRACE_VALUE_DOUBLE)->d = 120.5;
    SET(add_attr(s, "request_id", "faas.invocation_id", TRACE_ATTR_METADATA, TRACE_VALUE_STRING)
            ->str,
        "8476a536-e9f4-11e8-9739-2dfe598c3fcd");
    add_attr(s, "max_memory_used_mb", "lambda_tracer.max_memory_used_mb", TRACE_ATTR_METADATA,
             TRACE_VALUE_INT)
        ->i = 87;
    add_span(s, "1111111111111111", -1, "Init", 1480615199500000, 1480615200000000);
    add_span(s, "2222222222222222", -1, "Invocation", 1480615200010000, 1480615201200000)->fault =
        true;
    add_span(s, "3333333333333333", -1, "Overhead", 1480615201200000, 1480615201250000);
    add_span(s, "4444444444444444", 1, "Handler", 1480615200020000, 1480615201100000)->error = true;
}

/* --- helpers ------------------------------------------------------------- */

static void dump(const char *name, const char *ext, const struct buf *b)
{
    const char *dir = getenv("LAMBDA_TRACER_ENCODER_DUMP_DIR");
    char path[4096];
    FILE *f;
    int n;

    if (dir == NULL || dir[0] == '\0')
        return;
    n = snprintf(path, sizeof(path), "%s/otlp_%s.%s", dir, name, ext);
    assert_true(n > 0 && (size_t)n < sizeof(path));
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf_data(b), 1, buf_len(b), f), buf_len(b));
    assert_int_equal(fclose(f), 0);
}

/* Encodes n segments both ways; checks the JSON parses; dumps both. */
static void encode_both(const char *name, size_t n, int64_t now_us, struct buf *json,
                        struct buf *pb, struct otlp_encode_stats *st)
{
    struct otlp_encode_stats st_pb = {0};
    cJSON *j;

    buf_init(json, BODY_MAX);
    buf_init(pb, BODY_MAX);
    assert_int_equal(otlp_encode_json(json, &res, segs, n, now_us, st), 0);
    assert_int_equal(otlp_encode_protobuf(pb, &res, segs, n, now_us, &st_pb), 0);
    /* both encoders made the same decisions */
    assert_int_equal(st->spans_encoded, st_pb.spans_encoded);
    assert_int_equal(st->attributes_skipped, st_pb.attributes_skipped);
    j = cJSON_ParseWithLengthOpts(buf_data(json), buf_len(json) + 1, NULL, true);
    assert_non_null(j);
    cJSON_Delete(j);
    dump(name, "json", json);
    dump(name, "pb", pb);
}

static int setup(void **state)
{
    (void)state;
    fail_alloc_reset();
    memset(&res, 0, sizeof(res));
    for (size_t i = 0; i < 3; i++)
        minimal_segment(&segs[i]);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(fail_alloc_live(), 0);
    fail_alloc_reset();
    return 0;
}

static void assert_contains(const struct buf *b, const char *needle)
{
    if (strstr(buf_data(b), needle) == NULL)
        fail_msg("missing %s in %s", needle, buf_data(b));
}

static void assert_bytes_contain(const struct buf *b, const void *needle, size_t n)
{
    if (memmem(buf_data(b), buf_len(b), needle, n) == NULL)
        fail_msg("byte pattern of %zu bytes not found", n);
}

/* --- tests --------------------------------------------------------------- */

/* The smallest request: resource with the two constant attributes, no
 * scope version, one ended SERVER span.  Bytes derived by hand from the
 * field numbers of trace.proto / common.proto / resource.proto /
 * trace_service.proto; lengths counted below. */
static const uint8_t TINY_PB[] = {
    0x0a, 0x87, 0x01, /* ExportTraceServiceRequest.resource_spans (1), 135 bytes */
    0x0a, 0x39,       /*  ResourceSpans.resource (1), 57 bytes */
    0x0a, 0x17,       /*   Resource.attributes (1), KeyValue of 23 bytes */
    0x0a, 0x0e, 'c', 'l', 'o', 'u', 'd', '.', 'p', 'r', 'o', 'v', 'i', 'd', 'e', 'r',
    0x12, 0x05, /*    KeyValue.value (2): AnyValue of 5 bytes */
    0x0a, 0x03, 'a', 'w', 's', /* AnyValue.string_value (1) */
    0x0a, 0x1e,                /*   Resource.attributes, 30 bytes */
    0x0a, 0x0e, 'c', 'l', 'o', 'u', 'd', '.', 'p', 'l', 'a', 't', 'f', 'o', 'r', 'm',
    0x12, 0x0c, 0x0a, 0x0a, 'a', 'w', 's', '_', 'l', 'a', 'm', 'b', 'd', 'a',
    0x12, 0x4a, /*  ResourceSpans.scope_spans (2), 74 bytes */
    0x0a, 0x0f, /*   ScopeSpans.scope (1), 15 bytes */
    0x0a, 0x0d, 'l', 'a', 'm', 'b', 'd', 'a', '-', 't', 'r', 'a', 'c', 'e', 'r', /* name (1) */
    0x12, 0x37, /*   ScopeSpans.spans (2), 55 bytes */
    0x0a, 0x10, /*    Span.trace_id (1): 16 raw bytes */
    0x57, 0x59, 0xe9, 0x88, 0xbd, 0x86, 0x2e, 0x3f, 0xe1, 0xbe, 0x46, 0xa9, 0x94, 0x27, 0x27, 0x93,
    0x12, 0x08, /*    Span.span_id (2): 8 raw bytes */
    0x53, 0x99, 0x5c, 0x3f, 0x42, 0xcd, 0x8a, 0xd8,
    0x2a, 0x01, 'f', /* Span.name (5) */
    0x30, 0x02,      /* Span.kind (6) = SPAN_KIND_SERVER */
    0x39, 0xe8, 0x03, 0, 0, 0, 0, 0, 0, /* Span.start_time_unix_nano (7), fixed64 1000 */
    0x41, 0xd0, 0x07, 0, 0, 0, 0, 0, 0, /* Span.end_time_unix_nano (8), fixed64 2000 */
    0x7a, 0x02, 0x18, 0x01,             /* Span.status (15): Status.code (3) = OK */
};

static const char TINY_JSON[] =
    "{\"resourceSpans\":[{\"resource\":{\"attributes\":["
    "{\"key\":\"cloud.provider\",\"value\":{\"stringValue\":\"aws\"}},"
    "{\"key\":\"cloud.platform\",\"value\":{\"stringValue\":\"aws_lambda\"}}]},"
    "\"scopeSpans\":[{\"scope\":{\"name\":\"lambda-tracer\"},\"spans\":["
    "{\"traceId\":\"" OTEL_TRACE_ID "\",\"spanId\":\"" SEG_ID "\",\"name\":\"f\",\"kind\":2,"
    "\"startTimeUnixNano\":\"1000\",\"endTimeUnixNano\":\"2000\",\"status\":{\"code\":1}}]}]}]}";

static void test_tiny_request_exact(void **state)
{
    struct otlp_encode_stats st = {0};
    struct buf json;
    struct buf pb;
    (void)state;
    encode_both("tiny", 1, TRACE_NO_END, &json, &pb, &st);
    assert_string_equal(buf_data(&json), TINY_JSON);
    assert_int_equal(buf_len(&pb), sizeof(TINY_PB));
    assert_memory_equal(buf_data(&pb), TINY_PB, sizeof(TINY_PB));
    assert_int_equal(st.spans_encoded, 1);
    buf_free(&json);
    buf_free(&pb);
}

static const char FULL_JSON[] =
    "{\"resourceSpans\":[{\"resource\":{\"attributes\":["
    "{\"key\":\"service.name\",\"value\":{\"stringValue\":\"my-function\"}},"
    "{\"key\":\"cloud.provider\",\"value\":{\"stringValue\":\"aws\"}},"
    "{\"key\":\"cloud.platform\",\"value\":{\"stringValue\":\"aws_lambda\"}},"
    "{\"key\":\"cloud.region\",\"value\":{\"stringValue\":\"us-east-1\"}},"
    "{\"key\":\"cloud.account.id\",\"value\":{\"stringValue\":\"123456789012\"}},"
    "{\"key\":\"faas.name\",\"value\":{\"stringValue\":\"my-function\"}},"
    "{\"key\":\"faas.version\",\"value\":{\"stringValue\":\"$LATEST\"}},"
    "{\"key\":\"faas.instance\",\"value\":{\"stringValue\":"
    "\"2021/06/28/[$LATEST]2f399eb14537447da05ab2a2e39309de\"}},"
    "{\"key\":\"faas.max_memory\",\"value\":{\"intValue\":\"134217728\"}}]},"
    "\"scopeSpans\":[{\"scope\":{\"name\":\"lambda-tracer\",\"version\":\"0.1.0\"},\"spans\":["
    /* the segment */
    "{\"traceId\":\"" OTEL_TRACE_ID "\",\"spanId\":\"" SEG_ID "\","
    "\"parentSpanId\":\"4c17ecc1b6cd296a\",\"flags\":1,\"name\":\"my-function\",\"kind\":2,"
    "\"startTimeUnixNano\":\"1480615200010000000\",\"endTimeUnixNano\":\"1480615201250000000\","
    "\"attributes\":[{\"key\":\"faas.coldstart\",\"value\":{\"boolValue\":true}},"
    "{\"key\":\"faas.invocation_id\",\"value\":{\"stringValue\":"
    "\"8476a536-e9f4-11e8-9739-2dfe598c3fcd\"}},"
    "{\"key\":\"lambda_tracer.max_memory_used_mb\",\"value\":{\"intValue\":\"87\"}}],"
    "\"events\":[{\"timeUnixNano\":\"1480615201250000000\",\"name\":\"exception\","
    "\"attributes\":[{\"key\":\"exception.type\",\"value\":{\"stringValue\":\"Runtime.ExitError\"}},"
    "{\"key\":\"exception.message\",\"value\":{\"stringValue\":\"exit status 1\"}}]}],"
    "\"status\":{\"code\":2,\"message\":\"Runtime.ExitError\"}},"
    /* its spans, in array order */
    "{\"traceId\":\"" OTEL_TRACE_ID "\",\"spanId\":\"1111111111111111\","
    "\"parentSpanId\":\"" SEG_ID "\",\"flags\":1,\"name\":\"Init\",\"kind\":1,"
    "\"startTimeUnixNano\":\"1480615199500000000\",\"endTimeUnixNano\":\"1480615200000000000\","
    "\"status\":{\"code\":1}},"
    "{\"traceId\":\"" OTEL_TRACE_ID "\",\"spanId\":\"2222222222222222\","
    "\"parentSpanId\":\"" SEG_ID "\",\"flags\":1,\"name\":\"Invocation\",\"kind\":1,"
    "\"startTimeUnixNano\":\"1480615200010000000\",\"endTimeUnixNano\":\"1480615201200000000\","
    "\"status\":{\"code\":2}},"
    "{\"traceId\":\"" OTEL_TRACE_ID "\",\"spanId\":\"3333333333333333\","
    "\"parentSpanId\":\"" SEG_ID "\",\"flags\":1,\"name\":\"Overhead\",\"kind\":1,"
    "\"startTimeUnixNano\":\"1480615201200000000\",\"endTimeUnixNano\":\"1480615201250000000\","
    "\"status\":{\"code\":1}},"
    "{\"traceId\":\"" OTEL_TRACE_ID "\",\"spanId\":\"4444444444444444\","
    "\"parentSpanId\":\"2222222222222222\",\"flags\":1,\"name\":\"Handler\",\"kind\":1,"
    "\"startTimeUnixNano\":\"1480615200020000000\",\"endTimeUnixNano\":\"1480615201100000000\","
    "\"status\":{\"code\":2}}"
    "]}]}]}";

static void test_full_request_json_exact(void **state)
{
    struct otlp_encode_stats st = {0};
    struct buf json;
    struct buf pb;
    (void)state;
    full_resource();
    full_segment(seg);
    encode_both("full", 1, TRACE_NO_END, &json, &pb, &st);
    assert_string_equal(buf_data(&json), FULL_JSON);
    assert_int_equal(st.spans_encoded, 5);
    assert_int_equal(st.attributes_skipped, 0);
    /* protobuf spot checks: lower-case ids become the same raw bytes */
    assert_bytes_contain(&pb, "\x22\x08\x4c\x17\xec\xc1\xb6\xcd\x29\x6a", 10); /* parent_span_id */
    /* flags (16, fixed32) = 1: tag 0x85 0x01 */
    assert_bytes_contain(&pb, "\x85\x01\x01\x00\x00\x00", 6);
    /* status ERROR with the cause type as message */
    assert_bytes_contain(&pb, "\x7a\x15\x12\x11Runtime.ExitError\x18\x02", 23);
    /* scope version */
    assert_bytes_contain(&pb, "\x12\x05" "0.1.0", 7);
    buf_free(&json);
    buf_free(&pb);
}

/* A snapshot becomes a span event with the JSON text as a string
 * attribute, after the exception event, at the time it was taken (kept
 * within the span). */
static void test_snapshot_event(void **state)
{
    struct otlp_encode_stats st = {0};
    struct buf json;
    struct buf pb;
    (void)state;
    full_segment(seg);
    SET(seg->snapshot_json, "{\"procs\":[{\"comm\":\"a\\\"b\"}]}");
    seg->snapshot_us = 1480615201000000;
    encode_both("snapshot", 1, TRACE_NO_END, &json, &pb, &st);
    assert_contains(&json, "\"events\":[{\"timeUnixNano\":\"1480615201250000000\",\"name\":\"exception\"");
    assert_contains(&json, "\"exit status 1\"}}]},{\"timeUnixNano\":\"1480615201000000000\",\"name\":\"lambda_tracer.snapshot\","
                           "\"attributes\":[{\"key\":\"lambda_tracer.snapshot\",\"value\":{\"stringValue\":"
                           "\"{\\\"procs\\\":[{\\\"comm\\\":\\\"a\\\\\\\"b\\\"}]}\"}}]}]");
    /* Event{time_unix_nano (1) fixed64, name (2) "lambda_tracer.snapshot"} */
    assert_bytes_contain(&pb, "\x12\x16lambda_tracer.snapshot\x1a", 25);
    buf_free(&json);
    buf_free(&pb);
    /* without a cause: the snapshot event alone; a time outside the span is clamped */
    minimal_segment(seg);
    SET(seg->snapshot_json, "{}");
    seg->snapshot_us = 0;
    memset(&st, 0, sizeof(st));
    encode_both("snapshot_only", 1, TRACE_NO_END, &json, &pb, &st);
    assert_contains(&json, "\"events\":[{\"timeUnixNano\":\"1000\",\"name\":\"lambda_tracer.snapshot\","
                           "\"attributes\":[{\"key\":\"lambda_tracer.snapshot\",\"value\":{\"stringValue\":\"{}\"}}]}]");
    buf_free(&json);
    buf_free(&pb);
}

/* Attributes of a span (trace_attr.on_span = index + 1) are that span's
 * attributes in both encoders; the segment keeps its own; an owner that is
 * no span is sent nowhere. */
static void test_span_attributes(void **state)
{
    struct otlp_encode_stats st = {0};
    struct buf json;
    struct buf pb;
    (void)state;
    minimal_segment(seg);
    seg->end_us = 100;
    add_span(seg, "1111111111111111", -1, "Initialization", 10, 50);
    add_span(seg, "2222222222222222", 0, "Runtime init", 20, 50);
    add_attr(seg, NULL, "seg.k", TRACE_ATTR_ANNOTATION, TRACE_VALUE_INT)->i = 1;
    struct trace_attr *a = add_attr(seg, NULL, "rt.cpu_ms", TRACE_ATTR_METADATA, TRACE_VALUE_INT);
    a->i = 42;
    a->on_span = 2;
    a = add_attr(seg, NULL, "lost", TRACE_ATTR_METADATA, TRACE_VALUE_INT);
    a->on_span = 9;
    encode_both("span_attrs", 1, TRACE_NO_END, &json, &pb, &st);
    assert_int_equal(st.spans_encoded, 3);
    assert_contains(&json, "\"name\":\"f\",\"kind\":2,\"startTimeUnixNano\":\"1000\",\"endTimeUnixNano\":\"100000\","
                           "\"attributes\":[{\"key\":\"seg.k\",\"value\":{\"intValue\":\"1\"}}]");
    assert_contains(&json, "\"name\":\"Runtime init\",\"kind\":1,\"startTimeUnixNano\":\"20000\","
                           "\"endTimeUnixNano\":\"50000\",\"attributes\":[{\"key\":\"rt.cpu_ms\","
                           "\"value\":{\"intValue\":\"42\"}}]");
    assert_contains(&json, "\"name\":\"Initialization\",\"kind\":1,\"startTimeUnixNano\":\"10000\","
                           "\"endTimeUnixNano\":\"50000\",\"status\"");
    assert_null(strstr(buf_data(&json), "lost"));
    /* KeyValue{key "rt.cpu_ms", value AnyValue{int_value 42}} */
    assert_bytes_contain(&pb, "\x4a\x0f\x0a\x09rt.cpu_ms\x12\x02\x18\x2a", 17);
    buf_free(&json);
    buf_free(&pb);
}

static void test_value_encodings(void **state)
{
    struct otlp_encode_stats st = {0};
    struct buf json;
    struct buf pb;
    (void)state;
    add_attr(seg, NULL, "i", TRACE_ATTR_ANNOTATION, TRACE_VALUE_INT)->i = -1;
    add_attr(seg, NULL, "z", TRACE_ATTR_ANNOTATION, TRACE_VALUE_INT)->i = 0;
    add_attr(seg, NULL, "b", TRACE_ATTR_ANNOTATION, TRACE_VALUE_BOOL)->b = false;
    add_attr(seg, NULL, "d", TRACE_ATTR_METADATA, TRACE_VALUE_DOUBLE)->d = 1.5;
    add_attr(seg, NULL, "e", TRACE_ATTR_METADATA, TRACE_VALUE_STRING); /* "" */
    add_attr(seg, NULL, "nan", TRACE_ATTR_METADATA, TRACE_VALUE_DOUBLE)->d = NAN;
    add_attr(seg, NULL, "inf", TRACE_ATTR_METADATA, TRACE_VALUE_DOUBLE)->d = INFINITY;
    add_attr(seg, NULL, "-inf", TRACE_ATTR_METADATA, TRACE_VALUE_DOUBLE)->d = -INFINITY;
    SET(add_attr(seg, NULL, "s", TRACE_ATTR_METADATA, TRACE_VALUE_STRING)->str,
        "q\"\n\xC3\xA9\xFF");
    add_attr(seg, NULL, "i", TRACE_ATTR_METADATA, TRACE_VALUE_INT)->i = 5;     /* repeat */
    add_attr(seg, NULL, "k", TRACE_ATTR_METADATA, (enum trace_value_kind)9);   /* unknown */
    add_attr(seg, "xray_only", NULL, TRACE_ATTR_METADATA, TRACE_VALUE_INT);    /* not OTLP */
    encode_both("values", 1, TRACE_NO_END, &json, &pb, &st);
    assert_contains(&json, "\"attributes\":["
                           "{\"key\":\"i\",\"value\":{\"intValue\":\"-1\"}},"
                           "{\"key\":\"z\",\"value\":{\"intValue\":\"0\"}},"
                           "{\"key\":\"b\",\"value\":{\"boolValue\":false}},"
                           "{\"key\":\"d\",\"value\":{\"doubleValue\":1.5}},"
                           "{\"key\":\"e\",\"value\":{\"stringValue\":\"\"}},"
                           "{\"key\":\"nan\",\"value\":{\"doubleValue\":\"NaN\"}},"
                           "{\"key\":\"inf\",\"value\":{\"doubleValue\":\"Infinity\"}},"
                           "{\"key\":\"-inf\",\"value\":{\"doubleValue\":\"-Infinity\"}},"
                           "{\"key\":\"s\",\"value\":{\"stringValue\":\"q\\\"\\n\xC3\xA9\xEF\xBF\xBD\"}}]");
    assert_int_equal(st.attributes_skipped, 2);
    /* KeyValue{key "i", value AnyValue{int_value -1}}: ten-byte varint */
    assert_bytes_contain(&pb, "\x4a\x10\x0a\x01i\x12\x0b\x18\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
                         18);
    /* defaults inside a oneof are still written: int 0, bool false, "" */
    assert_bytes_contain(&pb, "\x4a\x07\x0a\x01z\x12\x02\x18\x00", 9);
    assert_bytes_contain(&pb, "\x4a\x07\x0a\x01" "b\x12\x02\x10\x00", 9);
    assert_bytes_contain(&pb, "\x4a\x07\x0a\x01" "e\x12\x02\x0a\x00", 9);
    /* double 1.5 = 0x3ff8000000000000, little-endian fixed64 */
    assert_bytes_contain(&pb, "\x4a\x0e\x0a\x01" "d\x12\x09\x21\x00\x00\x00\x00\x00\x00\xf8\x3f", 16);
    /* proto3 strings must be UTF-8: the invalid byte is replaced as in JSON */
    assert_bytes_contain(&pb, "\x0a\x01s\x12\x0a\x0a\x08q\"\n\xC3\xA9\xEF\xBF\xBD", 15);
    buf_free(&json);
    buf_free(&pb);
}

static void test_in_progress_skipped(void **state)
{
    struct otlp_encode_stats st = {0};
    struct buf json;
    struct buf pb;
    (void)state;
    add_span(seg, "1111111111111111", -1, "Init", 1, 2);
    add_span(seg, "2222222222222222", -1, "Invocation", 1, TRACE_NO_END);
    add_span(seg, "3333333333333333", 1, "Handler", 1, 2); /* under an in-progress span */
    add_span(seg, "4444444444444444", 2, "Deeper", 1, 2);
    /* a second segment, itself in progress: skipped whole */
    segs[1].end_us = TRACE_NO_END;
    SET(segs[1].id, "aaaaaaaaaaaaaaaa");
    add_span(&segs[1], "5555555555555555", -1, "Init", 1, 2);
    encode_both("skip", 2, TRACE_NO_END, &json, &pb, &st);
    assert_int_equal(st.spans_encoded, 2);
    assert_int_equal(st.spans_skipped_in_progress, 3 + 2);
    assert_contains(&json, "\"spanId\":\"1111111111111111\"");
    assert_null(strstr(buf_data(&json), "2222222222222222\",\"parent"));
    assert_null(strstr(buf_data(&json), "\"Handler\""));
    assert_null(strstr(buf_data(&json), "\"Deeper\""));
    assert_null(strstr(buf_data(&json), "aaaaaaaaaaaaaaaa"));
    buf_free(&json);
    buf_free(&pb);
}

static void test_in_progress_ended_at_now(void **state)
{
    struct otlp_encode_stats st = {0};
    struct buf json;
    struct buf pb;
    (void)state;
    seg->start_us = 1000;
    seg->end_us = TRACE_NO_END;
    seg->fault = true; /* known failure: status stays ERROR */
    add_span(seg, "1111111111111111", -1, "Invocation", 1000, TRACE_NO_END);
    add_span(seg, "2222222222222222", -1, "Later", 9000, TRACE_NO_END); /* starts after now */
    encode_both("now", 1, 5000, &json, &pb, &st);
    assert_int_equal(st.spans_encoded, 3);
    assert_int_equal(st.spans_ended_at_now, 3);
    assert_contains(&json, "\"name\":\"f\",\"kind\":2,\"startTimeUnixNano\":\"1000000\","
                           "\"endTimeUnixNano\":\"5000000\",\"attributes\":[{\"key\":"
                           "\"lambda_tracer.in_progress\",\"value\":{\"boolValue\":true}}],"
                           "\"status\":{\"code\":2}}");
    /* outcome unknown: no status */
    assert_contains(&json, "\"name\":\"Invocation\",\"kind\":1,\"startTimeUnixNano\":\"1000000\","
                           "\"endTimeUnixNano\":\"5000000\",\"attributes\":[{\"key\":"
                           "\"lambda_tracer.in_progress\",\"value\":{\"boolValue\":true}}]}");
    /* never ends before it starts */
    assert_contains(&json, "\"name\":\"Later\",\"kind\":1,\"startTimeUnixNano\":\"9000000\","
                           "\"endTimeUnixNano\":\"9000000\"");
    buf_free(&json);
    buf_free(&pb);
}


/* The resource's attributes in JSON order, as "key=value;" text. */
static void resource_text(const struct buf *json, char *ret, size_t size)
{
    cJSON *j = cJSON_ParseWithLengthOpts(buf_data(json), buf_len(json) + 1, NULL, true);
    const cJSON *attrs, *a;
    size_t off = 0;

    assert_non_null(j);
    attrs = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "resourceSpans"), 0),
                                         "resource"),
        "attributes");
    assert_non_null(attrs);
    ret[0] = '\0';
    cJSON_ArrayForEach(a, attrs) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(a, "value");
        const cJSON *sv = cJSON_GetObjectItemCaseSensitive(v, "stringValue");
        const cJSON *iv = cJSON_GetObjectItemCaseSensitive(v, "intValue");
        int w = snprintf(ret + off, size - off, "%s=%s;", cJSON_GetObjectItemCaseSensitive(a, "key")->valuestring,
                         sv != NULL ? sv->valuestring : iv != NULL ? iv->valuestring : "?");
        assert_true(w > 0 && (size_t)w < size - off);
        off += (size_t)w;
    }
    cJSON_Delete(j);
}

/* OTEL_SERVICE_NAME over OTEL_RESOURCE_ATTRIBUTES' service.name over the
 * function name; every other pair added, replacing the detected one of the
 * same key (each key once: otlp_decode.js also checks that). */
static void test_resource_from_settings(void **state)
{
    static const char extra[] = "service.name\0from-attrs\0team\0pay ments\0cloud.region\0eu-west-1\0"
                                "faas.max_memory\0" "1\0deployment.environment\0\xc3\xa9t\xc3\xa9";
    struct otlp_encode_stats st = {0};
    struct buf json, pb;
    char text[2048];
    (void)state;

    full_resource();
    full_segment(seg);
    res.extra_attrs = extra;
    res.extra_attrs_len = sizeof(extra);
    SET(res.otel_service_name, "checkout");
    encode_both("resource_settings", 1, TRACE_NO_END, &json, &pb, &st);
    resource_text(&json, text, sizeof(text));
    assert_string_equal(text, "service.name=checkout;cloud.provider=aws;cloud.platform=aws_lambda;"
                              "cloud.account.id=123456789012;faas.name=my-function;faas.version=$LATEST;"
                              "faas.instance=2021/06/28/[$LATEST]2f399eb14537447da05ab2a2e39309de;"
                              "team=pay ments;cloud.region=eu-west-1;faas.max_memory=1;"
                              "deployment.environment=\xc3\xa9t\xc3\xa9;");
    assert_bytes_contain(&pb, "\x0a\x04team\x12\x0b\x0a\x09pay ments", 19);
    buf_free(&json);
    buf_free(&pb);

    /* no OTEL_SERVICE_NAME: the attribute's service.name */
    memset(&st, 0, sizeof(st));
    res.otel_service_name[0] = '\0';
    encode_both("resource_attrs_service", 1, TRACE_NO_END, &json, &pb, &st);
    resource_text(&json, text, sizeof(text));
    assert_non_null(strstr(text, "service.name=from-attrs;"));
    assert_null(strstr(text, "my-function;cloud"));
    buf_free(&json);
    buf_free(&pb);

    /* neither: the function name, faas.max_memory in bytes */
    memset(&st, 0, sizeof(st));
    res.extra_attrs = NULL;
    res.extra_attrs_len = 0;
    encode_both("resource_default", 1, TRACE_NO_END, &json, &pb, &st);
    resource_text(&json, text, sizeof(text));
    assert_string_equal(text, "service.name=my-function;cloud.provider=aws;cloud.platform=aws_lambda;"
                              "cloud.region=us-east-1;cloud.account.id=123456789012;faas.name=my-function;"
                              "faas.version=$LATEST;"
                              "faas.instance=2021/06/28/[$LATEST]2f399eb14537447da05ab2a2e39309de;"
                              "faas.max_memory=134217728;");
    buf_free(&json);
    buf_free(&pb);
}

/* As many pairs as config_parse_resource_attributes lets through all fit. */
static void test_resource_most_attributes(void **state)
{
    static char extra[RESOURCE_ATTRS_MAX * 16];
    struct otlp_encode_stats st = {0};
    struct buf json, pb;
    size_t off = 0;
    char text[4096];
    (void)state;

    full_resource();
    for (int i = 0; i < RESOURCE_ATTRS_MAX; i++) {
        int w = snprintf(extra + off, sizeof(extra) - off, "k%02d", i);
        off += (size_t)w + 1;
        w = snprintf(extra + off, sizeof(extra) - off, "v%d", i);
        off += (size_t)w + 1;
    }
    res.extra_attrs = extra;
    res.extra_attrs_len = off;
    encode_both("resource_most", 1, TRACE_NO_END, &json, &pb, &st);
    resource_text(&json, text, sizeof(text));
    assert_non_null(strstr(text, "faas.max_memory=134217728;k00=v0;"));
    assert_non_null(strstr(text, ";k31=v31;"));
    buf_free(&json);
    buf_free(&pb);
}

static void test_several_segments_share_one_resource(void **state)
{
    struct otlp_encode_stats st = {0};
    struct buf json;
    struct buf pb;
    (void)state;
    full_resource();
    full_segment(&segs[0]);
    SET(segs[1].trace_id, "1-66bfd54d-6b379b8727b6273f7675338c");
    SET(segs[1].id, "e6a9e00f59b508c8");
    segs[1].error = true; /* error without a cause: no message, no event */
    SET(segs[2].trace_id, "1-5759e988-bd862e3fe1be46a99427279x"); /* invalid: left out */
    encode_both("multi", 3, TRACE_NO_END, &json, &pb, &st);
    assert_int_equal(st.spans_encoded, 6);
    assert_int_equal(st.segments_invalid, 1);
    assert_contains(&json, "{\"traceId\":\"66bfd54d6b379b8727b6273f7675338c\","
                           "\"spanId\":\"e6a9e00f59b508c8\",\"name\":\"f\",\"kind\":2,"
                           "\"startTimeUnixNano\":\"1000\",\"endTimeUnixNano\":\"2000\","
                           "\"status\":{\"code\":2}}]}]}]}");
    /* one resourceSpans, one scopeSpans */
    assert_int_equal(strstr(strstr(buf_data(&json), "resourceSpans") + 1, "resourceSpans"), NULL);
    assert_int_equal(strstr(strstr(buf_data(&json), "scopeSpans") + 1, "scopeSpans"), NULL);
    buf_free(&json);
    buf_free(&pb);
}

static void test_broken_segments_are_counted(void **state)
{
    struct otlp_encode_stats st = {0};
    struct buf b;
    (void)state;
    segs[0].start_us = -5;                       /* negative time */
    add_span(&segs[1], "1111111111111111", 3, "x", 1, 2); /* bad parent */
    segs[2].spans[0].parent = 0;                 /* cycle */
    segs[2].span_count = 1;
    SET(segs[2].spans[0].id, "2222222222222222");
    buf_init(&b, BODY_MAX);
    assert_int_equal(otlp_encode_json(&b, &res, segs, 3, TRACE_NO_END, &st), 0);
    assert_int_equal(st.segments_invalid, 3);
    assert_int_equal(st.spans_encoded, 0);
    assert_contains(&b, "\"spans\":[]");
    buf_free(&b);
}

static void test_bad_arguments_and_caps(void **state)
{
    struct buf b;
    (void)state;
    buf_init(&b, BODY_MAX);
    assert_int_equal(otlp_encode_json(&b, &res, segs, 0, TRACE_NO_END, NULL), -EINVAL);
    assert_int_equal(otlp_encode_protobuf(&b, &res, segs, 0, TRACE_NO_END, NULL), -EINVAL);
    assert_int_equal(otlp_encode_json(&b, &res, segs, 1, -1, NULL), -EINVAL);
    assert_int_equal(otlp_encode_protobuf(&b, NULL, segs, 1, TRACE_NO_END, NULL), -EINVAL);
    buf_free(&b);
    /* one byte short: -ENOBUFS and nothing written */
    buf_init(&b, sizeof(TINY_JSON) - 2);
    assert_int_equal(buf_append_str(&b, ""), 0);
    assert_int_equal(otlp_encode_json(&b, &res, segs, 1, TRACE_NO_END, NULL), -ENOBUFS);
    assert_int_equal(buf_len(&b), 0);
    buf_free(&b);
    buf_init(&b, sizeof(TINY_PB) - 1);
    assert_int_equal(otlp_encode_protobuf(&b, &res, segs, 1, TRACE_NO_END, NULL), -ENOBUFS);
    assert_int_equal(buf_len(&b), 0);
    buf_free(&b);
    /* exactly enough */
    buf_init(&b, sizeof(TINY_PB));
    assert_int_equal(otlp_encode_protobuf(&b, &res, segs, 1, TRACE_NO_END, NULL), 0);
    buf_free(&b);
}

/* A body appended after earlier content keeps that content. */
static void test_appends_to_existing_content(void **state)
{
    struct buf b;
    (void)state;
    buf_init(&b, BODY_MAX);
    assert_int_equal(buf_append_str(&b, "prefix"), 0);
    assert_int_equal(otlp_encode_protobuf(&b, &res, segs, 1, TRACE_NO_END, NULL), 0);
    assert_int_equal(buf_len(&b), 6 + sizeof(TINY_PB));
    assert_memory_equal(buf_data(&b) + 6, TINY_PB, sizeof(TINY_PB));
    buf_free(&b);
}

static int (*encoder)(struct buf *, const struct trace_resource *, const struct trace_segment *,
                      size_t, int64_t, struct otlp_encode_stats *);

static int op_encode(void)
{
    struct buf b;
    int r;

    buf_init(&b, BODY_MAX);
    r = encoder(&b, &res, segs, 2, 1480615202000000, NULL);
    if (r < 0)
        assert_int_equal(buf_len(&b), 0);
    buf_free(&b);
    return r;
}

static void every_allocation_fails(void)
{
    unsigned long total;

    fail_alloc_reset();
    assert_int_equal(op_encode(), 0);
    total = fail_alloc_count();
    assert_true(total > 0);
    for (unsigned long nth = 1; nth <= total; nth++) {
        fail_alloc_reset();
        fail_alloc_fail_at(nth);
        assert_int_equal(op_encode(), -ENOMEM);
        assert_int_equal(fail_alloc_live(), 0);
    }
    fail_alloc_reset();
}

static void test_out_of_memory(void **state)
{
    (void)state;
    full_resource();
    full_segment(&segs[0]);
    full_segment(&segs[1]);
    segs[1].end_us = TRACE_NO_END;
    memset(segs[1].cause_message, 'm', sizeof(segs[1].cause_message) - 1);
    encoder = otlp_encode_json;
    every_allocation_fails();
    encoder = otlp_encode_protobuf;
    every_allocation_fails();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tiny_request_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_request_json_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_event, setup, teardown),
        cmocka_unit_test_setup_teardown(test_span_attributes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_value_encodings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_in_progress_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_in_progress_ended_at_now, setup, teardown),
        cmocka_unit_test_setup_teardown(test_several_segments_share_one_resource, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resource_from_settings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resource_most_attributes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broken_segments_are_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments_and_caps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_appends_to_existing_content, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_memory, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
