/*
 * Unit tests for xray_encode.c: exact documents, time formatting,
 * annotation and metadata rules, nesting, in-progress, cause, the size
 * splitter, the daemon datagram and the PutTraceSegments body, and every
 * allocation failure.
 *
 * With LAMBDA_TRACER_ENCODER_DUMP_DIR set, every valid document the tests
 * produce is also written there (xray_documents.jsonl, one per line;
 * xray_datagram_N.bin; xray_put_body_N.json) for the schema validator:
 * tests/tools/check_encoders.sh.
 */
#include <cjson/cJSON.h>
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

#include "buf.h"
#include "trace.h"
#include "xray_encode.h"
#include "fail_alloc.h"
#include "trace_fixture.h"

#define TRACE_ID "1-5759e988-bd862e3fe1be46a994272793"
#define SEG_ID "53995c3f42cd8ad8"

static struct trace_segment seg;

/* --- fixtures ------------------------------------------------------------ */

static void minimal_segment(void)
{
    memset(&seg, 0, sizeof(seg));
    SET(seg.trace_id, TRACE_ID);
    SET(seg.id, SEG_ID);
    SET(seg.name, "f");
    seg.start_us = 1480615200010000;
    seg.end_us = 1480615200110000;
}

/* A cold-start invocation that failed: every field in use. */
static void full_segment(void)
{
    minimal_segment();
    SET(seg.parent_id, "4c17ecc1b6cd296a");
    SET(seg.name, "my-function");
    SET(seg.origin, "AWS::Lambda::Function");
    SET(seg.request_id, "8476a536-e9f4-11e8-9739-2dfe598c3fcd");
    SET(seg.function_arn, "arn:aws:lambda:us-east-1:123456789012:function:my-function");
    SET(seg.function_version, "$LATEST");
    SET(seg.account_id, "123456789012");
    seg.sampled = true;
    seg.end_us = 1480615201250000;
    seg.fault = true;
    SET(seg.cause_id, "0a1b2c3d4e5f6789");
    SET(seg.cause_type, "Runtime.ExitError");
    SET(seg.cause_message, "exit status 1");
    add_attr(&seg, "cold_start", "faas.coldstart", TRACE_ATTR_ANNOTATION, TRACE_VALUE_BOOL)->b =
        true;
    add_attr(&seg, "init_ms", NULL, TRACE_ATTR_ANNOTATION, TRACE_VALUE_DOUBLE)->d = 120.5;
    SET(add_attr(&seg, "runtime_version", "lambda_tracer.runtime_version", TRACE_ATTR_METADATA,
                 TRACE_VALUE_STRING)
            ->str,
        "nodejs:20.v1");
    add_attr(&seg, "max_memory_used_mb", NULL, TRACE_ATTR_METADATA, TRACE_VALUE_INT)->i = 87;
    add_span(&seg, "1111111111111111", -1, "Init", 1480615199500000, 1480615200000000);
    add_span(&seg, "2222222222222222", -1, "Invocation", 1480615200010000, 1480615201200000)
        ->fault = true;
    add_span(&seg, "3333333333333333", -1, "Overhead", 1480615201200000, 1480615201250000);
    add_span(&seg, "4444444444444444", 1, "Handler", 1480615200020000, 1480615201100000)->error =
        true;
}

#define FULL_SEGMENT_HEAD                                                                          \
    "{\"name\":\"my-function\",\"id\":\"53995c3f42cd8ad8\","                                       \
    "\"trace_id\":\"1-5759e988-bd862e3fe1be46a994272793\",\"parent_id\":\"4c17ecc1b6cd296a\","     \
    "\"start_time\":1480615200.010000,\"end_time\":1480615201.250000,"                             \
    "\"origin\":\"AWS::Lambda::Function\","                                                        \
    "\"aws\":{\"request_id\":\"8476a536-e9f4-11e8-9739-2dfe598c3fcd\","                            \
    "\"function_arn\":\"arn:aws:lambda:us-east-1:123456789012:function:my-function\","             \
    "\"function_version\":\"$LATEST\",\"account_id\":\"123456789012\"},"                           \
    "\"fault\":true,"                                                                              \
    "\"cause\":{\"exceptions\":[{\"id\":\"0a1b2c3d4e5f6789\",\"type\":\"Runtime.ExitError\","      \
    "\"message\":\"exit status 1\"}]},"                                                            \
    "\"annotations\":{\"cold_start\":true,\"init_ms\":120.5},"                                     \
    "\"metadata\":{\"lambda_tracer\":{\"runtime_version\":\"nodejs:20.v1\","                       \
    "\"max_memory_used_mb\":87}}"

#define HANDLER_NESTED                                                                             \
    "{\"name\":\"Handler\",\"id\":\"4444444444444444\",\"start_time\":1480615200.020000,"          \
    "\"end_time\":1480615201.100000,\"error\":true}"

static const char FULL_SEGMENT_DOC[] =
    FULL_SEGMENT_HEAD ",\"subsegments\":["
    "{\"name\":\"Init\",\"id\":\"1111111111111111\",\"start_time\":1480615199.500000,"
    "\"end_time\":1480615200.000000},"
    "{\"name\":\"Invocation\",\"id\":\"2222222222222222\",\"start_time\":1480615200.010000,"
    "\"end_time\":1480615201.200000,\"fault\":true,\"subsegments\":[" HANDLER_NESTED "]},"
    "{\"name\":\"Overhead\",\"id\":\"3333333333333333\",\"start_time\":1480615201.200000,"
    "\"end_time\":1480615201.250000}]}";

/* --- checks -------------------------------------------------------------- */

static FILE *dump_open(const char *name, const char *mode)
{
    const char *dir = getenv("LAMBDA_TRACER_ENCODER_DUMP_DIR");
    char path[4096];
    FILE *f;
    int n;

    if (dir == NULL || dir[0] == '\0')
        return NULL;
    n = snprintf(path, sizeof(path), "%s/%s", dir, name);
    assert_true(n > 0 && (size_t)n < sizeof(path));
    f = fopen(path, mode);
    assert_non_null(f);
    return f;
}

static void dump_bytes(const char *name, const char *mode, const char *data, size_t len,
                       const char *end)
{
    FILE *f = dump_open(name, mode);

    if (f == NULL)
        return;
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_true(fputs(end, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

/* The document is one valid JSON object (cJSON as a quick first check; the
 * schema check is tests/tools/validate_xray.js) and goes to the dump. */
static void check_doc(const char *doc, size_t len)
{
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(doc, len, &end, false);

    assert_non_null(j);
    /* nothing after the object */
    assert_ptr_equal(end, doc + len);
    assert_true(cJSON_IsObject(j));
    cJSON_Delete(j);
    assert_null(memchr(doc, '\n', len));
    dump_bytes("xray_documents.jsonl", "a", doc, len, "\n");
}

static void encode(struct buf *b, size_t cap)
{
    buf_init(b, cap);
    assert_int_equal(xray_encode_segment(b, &seg, NULL), 0);
    check_doc(buf_data(b), buf_len(b));
}

static void assert_encodes_to(const char *want)
{
    struct buf b;

    encode(&b, XRAY_DOC_MAX_BYTES);
    assert_string_equal(buf_data(&b), want);
    buf_free(&b);
}

static int setup(void **state)
{
    (void)state;
    fail_alloc_reset();
    minimal_segment();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(fail_alloc_live(), 0);
    fail_alloc_reset();
    return 0;
}

/* --- documents ----------------------------------------------------------- */

static void test_minimal_segment(void **state)
{
    (void)state;
    assert_encodes_to("{\"name\":\"f\",\"id\":\"53995c3f42cd8ad8\","
                      "\"trace_id\":\"1-5759e988-bd862e3fe1be46a994272793\","
                      "\"start_time\":1480615200.010000,\"end_time\":1480615200.110000}");
}

static void test_full_segment(void **state)
{
    struct xray_encode_stats st = {0};
    struct buf b;
    (void)state;
    full_segment();
    assert_encodes_to(FULL_SEGMENT_DOC);
    buf_init(&b, XRAY_DOC_MAX_BYTES);
    assert_int_equal(xray_encode_segment(&b, &seg, &st), 0);
    assert_int_equal(st.annotations_skipped + st.metadata_skipped + st.causes_truncated, 0);
    buf_free(&b);
}

static void test_time_has_microseconds_without_float_error(void **state)
{
    static const struct {
        int64_t us;
        const char *text;
    } cases[] = {
        {1480615200000001, "\"start_time\":1480615200.000001"},
        {1480615200010000, "\"start_time\":1480615200.010000"},
        {1480615200999999, "\"start_time\":1480615200.999999"},
        {1723848013136204, "\"start_time\":1723848013.136204"},
        {0, "\"start_time\":0.000000"},
        {999999, "\"start_time\":0.999999"},
        {-1, "\"start_time\":-0.000001"},
        {253402300799999999, "\"start_time\":253402300799.999999"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct buf b;

        seg.start_us = cases[i].us;
        seg.end_us = cases[i].us; /* a document that is valid otherwise too */
        encode(&b, XRAY_DOC_MAX_BYTES);
        if (strstr(buf_data(&b), cases[i].text) == NULL)
            fail_msg("%s not in %s", cases[i].text, buf_data(&b));
        buf_free(&b);
    }
}

static void test_in_progress(void **state)
{
    (void)state;
    seg.end_us = TRACE_NO_END;
    add_span(&seg, "1111111111111111", -1, "Invocation", 1480615200020000, TRACE_NO_END);
    assert_encodes_to("{\"name\":\"f\",\"id\":\"53995c3f42cd8ad8\","
                      "\"trace_id\":\"1-5759e988-bd862e3fe1be46a994272793\","
                      "\"start_time\":1480615200.010000,\"in_progress\":true,"
                      "\"subsegments\":[{\"name\":\"Invocation\",\"id\":\"1111111111111111\","
                      "\"start_time\":1480615200.020000,\"in_progress\":true}]}");
}

static void test_flags_only_when_true(void **state)
{
    (void)state;
    seg.error = true;
    seg.throttle = true;
    assert_encodes_to("{\"name\":\"f\",\"id\":\"53995c3f42cd8ad8\","
                      "\"trace_id\":\"1-5759e988-bd862e3fe1be46a994272793\","
                      "\"start_time\":1480615200.010000,\"end_time\":1480615200.110000,"
                      "\"error\":true,\"throttle\":true}");
}

static void test_aws_block_only_non_empty_fields(void **state)
{
    (void)state;
    SET(seg.function_arn, "arn:aws:lambda:eu-west-1:123456789012:function:f");
    SET(seg.account_id, "123456789012");
    assert_encodes_to(
        "{\"name\":\"f\",\"id\":\"53995c3f42cd8ad8\","
        "\"trace_id\":\"1-5759e988-bd862e3fe1be46a994272793\","
        "\"start_time\":1480615200.010000,\"end_time\":1480615200.110000,"
        "\"aws\":{\"function_arn\":\"arn:aws:lambda:eu-west-1:123456789012:function:f\","
        "\"account_id\":\"123456789012\"}}");
}

static void test_cause_without_message_and_with_escapes(void **state)
{
    struct buf b;
    (void)state;
    SET(seg.cause_id, "0a1b2c3d4e5f6789");
    SET(seg.cause_type, "Runtime.Unknown");
    assert_encodes_to("{\"name\":\"f\",\"id\":\"53995c3f42cd8ad8\","
                      "\"trace_id\":\"1-5759e988-bd862e3fe1be46a994272793\","
                      "\"start_time\":1480615200.010000,\"end_time\":1480615200.110000,"
                      "\"cause\":{\"exceptions\":[{\"id\":\"0a1b2c3d4e5f6789\","
                      "\"type\":\"Runtime.Unknown\"}]}}");
    /* log tails carry quotes, newlines, tabs, control bytes and whatever
     * bytes the function printed */
    SET(seg.cause_message, "Error: \"boom\"\n\tat handler (index.js:3)\x1b[0m \xC3\xA9\xFF");
    encode(&b, XRAY_DOC_MAX_BYTES);
    assert_non_null(strstr(buf_data(&b), "\"message\":\"Error: \\\"boom\\\"\\n\\tat handler "
                                         "(index.js:3)\\u001b[0m \xC3\xA9\xEF\xBF\xBD\"}]}"));
    buf_free(&b);
}

/* Attributes of a span (trace_attr.on_span = index + 1) go on that
 * subsegment, nowhere else; the same key on the segment and on a span is
 * not a duplicate; an owner that is no span is sent nowhere. */
static void test_span_attributes_on_their_subsegment(void **state)
{
    (void)state;
    add_span(&seg, "1111111111111111", -1, "Initialization", 1480615200010000, 1480615200050000);
    add_span(&seg, "2222222222222222", 0, "Runtime init", 1480615200020000, 1480615200050000);
    add_attr(&seg, "cpu_ms", NULL, TRACE_ATTR_METADATA, TRACE_VALUE_INT)->i = 1;
    struct trace_attr *a = add_attr(&seg, "cpu_ms", NULL, TRACE_ATTR_METADATA, TRACE_VALUE_INT);
    a->i = 42;
    a->on_span = 2;
    a = add_attr(&seg, "hot", NULL, TRACE_ATTR_ANNOTATION, TRACE_VALUE_BOOL);
    a->b = true;
    a->on_span = 2;
    a = add_attr(&seg, "lost", NULL, TRACE_ATTR_METADATA, TRACE_VALUE_INT);
    a->on_span = 9;
    assert_encodes_to("{\"name\":\"f\",\"id\":\"53995c3f42cd8ad8\","
                      "\"trace_id\":\"1-5759e988-bd862e3fe1be46a994272793\","
                      "\"start_time\":1480615200.010000,\"end_time\":1480615200.110000,"
                      "\"metadata\":{\"lambda_tracer\":{\"cpu_ms\":1}},"
                      "\"subsegments\":[{\"name\":\"Initialization\",\"id\":\"1111111111111111\","
                      "\"start_time\":1480615200.010000,\"end_time\":1480615200.050000,"
                      "\"subsegments\":[{\"name\":\"Runtime init\",\"id\":\"2222222222222222\","
                      "\"start_time\":1480615200.020000,\"end_time\":1480615200.050000,"
                      "\"annotations\":{\"hot\":true},\"metadata\":{\"lambda_tracer\":{\"cpu_ms\":42}}}]}]}");
}

static void test_annotation_keys_are_filtered_and_counted(void **state)
{
    static char long_key[502];
    struct xray_encode_stats st = {0};
    struct buf b;
    (void)state;
    memset(long_key, 'k', 501);
    long_key[501] = '\0';
    add_attr(&seg, "ok_Key_1", NULL, TRACE_ATTR_ANNOTATION, TRACE_VALUE_INT)->i = -42;
    add_attr(&seg, "bad-key", NULL, TRACE_ATTR_ANNOTATION, TRACE_VALUE_INT)->i = 1;
    add_attr(&seg, "aws:responseLatency", NULL, TRACE_ATTR_ANNOTATION, TRACE_VALUE_DOUBLE)->d = 1.5;
    add_attr(&seg, "", NULL, TRACE_ATTR_ANNOTATION, TRACE_VALUE_BOOL)->b = true;
    add_attr(&seg, long_key, NULL, TRACE_ATTR_ANNOTATION, TRACE_VALUE_BOOL)->b = true;
    add_attr(&seg, long_key + 1, NULL, TRACE_ATTR_ANNOTATION, TRACE_VALUE_BOOL)->b =
        false;                                                                       /* 500: ok */
    add_attr(&seg, "ok_Key_1", NULL, TRACE_ATTR_ANNOTATION, TRACE_VALUE_INT)->i = 2; /* repeat */
    add_attr(&seg, "nan", NULL, TRACE_ATTR_ANNOTATION, TRACE_VALUE_DOUBLE)->d = NAN;
    add_attr(&seg, "inf", NULL, TRACE_ATTR_ANNOTATION, TRACE_VALUE_DOUBLE)->d = INFINITY;
    add_attr(&seg, "otel_only", "x.y", TRACE_ATTR_ANNOTATION, TRACE_VALUE_INT); /* xray_key set */
    add_attr(&seg, NULL, "otel.only", TRACE_ATTR_ANNOTATION, TRACE_VALUE_INT);  /* not for X-Ray */
    SET(add_attr(&seg, "s", NULL, TRACE_ATTR_ANNOTATION, TRACE_VALUE_STRING)->str, "v\"1");
    add_attr(&seg, "weird_kind", NULL, TRACE_ATTR_ANNOTATION, TRACE_VALUE_STRING)->kind =
        (enum trace_value_kind)42;
    buf_init(&b, XRAY_DOC_MAX_BYTES);
    assert_int_equal(xray_encode_segment(&b, &seg, &st), 0);
    check_doc(buf_data(&b), buf_len(&b));
    assert_non_null(strstr(buf_data(&b), "\"annotations\":{\"ok_Key_1\":-42,\""));
    assert_non_null(strstr(buf_data(&b), "\":false,\"otel_only\":0,\"s\":\"v\\\"1\"}}"));
    assert_null(strstr(buf_data(&b), "bad-key"));
    assert_null(strstr(buf_data(&b), "aws:"));
    assert_null(strstr(buf_data(&b), "nan"));
    assert_null(strstr(buf_data(&b), long_key));
    /* bad-key, aws:..., "", 501 chars, repeat, NaN, inf, unknown kind */
    assert_int_equal(st.annotations_skipped, 8);
    assert_int_equal(st.metadata_skipped, 0);
    buf_free(&b);
}

static void test_metadata_is_namespaced(void **state)
{
    struct xray_encode_stats st = {0};
    struct buf b;
    (void)state;
    /* metadata keys may hold any character; values any JSON scalar */
    add_attr(&seg, "aws.lambda.arn-ish key", NULL, TRACE_ATTR_METADATA, TRACE_VALUE_INT)->i = 1;
    add_attr(&seg, "d", NULL, TRACE_ATTR_METADATA, TRACE_VALUE_DOUBLE)->d = 0.1;
    add_attr(&seg, "d", NULL, TRACE_ATTR_METADATA, TRACE_VALUE_DOUBLE)->d = 0.2; /* repeat */
    add_attr(&seg, "n", NULL, TRACE_ATTR_METADATA, TRACE_VALUE_DOUBLE)->d = NAN;
    add_attr(&seg, "b", NULL, TRACE_ATTR_METADATA, TRACE_VALUE_BOOL)->b = false;
    /* an annotation and a metadata entry may share a key */
    add_attr(&seg, "b", NULL, TRACE_ATTR_ANNOTATION, TRACE_VALUE_BOOL)->b = true;
    buf_init(&b, XRAY_DOC_MAX_BYTES);
    assert_int_equal(xray_encode_segment(&b, &seg, &st), 0);
    check_doc(buf_data(&b), buf_len(&b));
    assert_non_null(strstr(buf_data(&b), ",\"annotations\":{\"b\":true},\"metadata\":{"
                                         "\"lambda_tracer\":{\"aws.lambda.arn-ish key\":1,"
                                         "\"d\":0.1,\"b\":false}}}"));
    assert_int_equal(st.metadata_skipped, 2);
    assert_int_equal(st.annotations_skipped, 0);
    buf_free(&b);
}

/* The snapshot is an object copied into the metadata namespace as is; one
 * that is not the shape of an object is left out and counted, the
 * document stays valid. */
static void test_snapshot_goes_to_metadata(void **state)
{
    static const char snap[] = "{\"procs\":[{\"pid\":7,\"comm\":\"a\\\"}]b\",\"threads\":[]}],\"x\":\"{\"}";
    static const char *bad[] = {
        "{\"a\":1",          /* cut */
        "{\"a\":1}}",        /* extra bracket */
        "{\"a\":1}x",        /* trailing bytes */
        "[1]",                /* not an object */
        "{\"a\":\"\n\"}",     /* raw control byte */
        "{\"a\":\"}",         /* unterminated string */
        "{",
    };
    struct xray_encode_stats st = {0};
    struct buf b;
    (void)state;
    SET(seg.snapshot_json, snap);
    assert_encodes_to("{\"name\":\"f\",\"id\":\"53995c3f42cd8ad8\","
                      "\"trace_id\":\"1-5759e988-bd862e3fe1be46a994272793\","
                      "\"start_time\":1480615200.010000,\"end_time\":1480615200.110000,"
                      "\"metadata\":{\"lambda_tracer\":{\"snapshot\":{\"procs\":[{\"pid\":7,"
                      "\"comm\":\"a\\\"}]b\",\"threads\":[]}],\"x\":\"{\"}}}}");
    /* after the other metadata, inside the same namespace */
    SET(add_attr(&seg, "diagnosis", NULL, TRACE_ATTR_METADATA, TRACE_VALUE_STRING)->str, "busy");
    buf_init(&b, XRAY_DOC_MAX_BYTES);
    assert_int_equal(xray_encode_segment(&b, &seg, &st), 0);
    check_doc(buf_data(&b), buf_len(&b));
    assert_non_null(strstr(buf_data(&b), ",\"metadata\":{\"lambda_tracer\":{\"diagnosis\":\"busy\","
                                         "\"snapshot\":{\"procs\""));
    assert_int_equal(st.metadata_skipped, 0);
    buf_free(&b);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct xray_encode_stats st2 = {0};
        SET(seg.snapshot_json, bad[i]);
        buf_init(&b, XRAY_DOC_MAX_BYTES);
        assert_int_equal(xray_encode_segment(&b, &seg, &st2), 0);
        check_doc(buf_data(&b), buf_len(&b));
        assert_null(strstr(buf_data(&b), "snapshot"));
        assert_int_equal(st2.metadata_skipped, 1);
        buf_free(&b);
    }
}

/* A snapshot as large as the model allows still fits one document with a
 * full cause message and every span (split or not, nothing is lost). */
static void test_largest_snapshot_fits(void **state)
{
    struct xray_docs docs;
    size_t n = sizeof(seg.snapshot_json) - 1;
    (void)state;
    memset(seg.snapshot_json, ' ', n);
    seg.snapshot_json[0] = '{';
    memcpy(seg.snapshot_json + 1, "\"a\":\"", 5);
    seg.snapshot_json[n - 2] = '"';
    seg.snapshot_json[n - 1] = '}';
    seg.snapshot_json[n] = '\0';
    SET(seg.cause_id, "0a1b2c3d4e5f6789");
    SET(seg.cause_type, "Sandbox.Timedout");
    memset(seg.cause_message, '\x01', sizeof(seg.cause_message) - 1); /* 6 bytes each escaped */
    xray_docs_init(&docs);
    assert_int_equal(xray_encode_split(&seg, XRAY_DAEMON_DOC_MAX_BYTES, &docs, NULL), 0);
    assert_int_equal(docs.count, 1);
    check_doc(xray_docs_get(&docs, 0).data, xray_docs_get(&docs, 0).len);
    assert_non_null(memmem(xray_docs_get(&docs, 0).data, xray_docs_get(&docs, 0).len, "\"snapshot\":{", 12));
    xray_docs_free(&docs);
}

/* One xray_docs reused for segment after segment (as the exporter does):
 * once the first has been through, encoding allocates nothing (its working
 * buffer is kept; under musl each allocation freed here was a mapping made
 * and unmapped per invocation).  A segment that needs more than the kept
 * size leaves nothing larger behind. */
static void test_reused_docs_allocate_nothing(void **state)
{
    struct xray_docs docs;
    unsigned long after_first;
    (void)state;
    add_span(&seg, "1111111111111111", -1, "Invocation", 1480615200010000, 1480615200030000);
    xray_docs_init(&docs);
    assert_int_equal(xray_encode_split(&seg, XRAY_DOC_MAX_BYTES, &docs, NULL), 0);
    after_first = fail_alloc_count();
    for (int i = 0; i < 10; i++) {
        assert_int_equal(xray_encode_split(&seg, XRAY_DOC_MAX_BYTES, &docs, NULL), 0);
        assert_int_equal(docs.count, 1);
        check_doc(xray_docs_get(&docs, 0).data, xray_docs_get(&docs, 0).len);
    }
    assert_int_equal(fail_alloc_count(), after_first);
    /* a large document: its working buffer is not kept past the call */
    memset(seg.cause_message, 'x', sizeof(seg.cause_message) - 1);
    seg.cause_message[sizeof(seg.cause_message) - 1] = '\0';
    SET(seg.cause_id, "0a1b2c3d4e5f6789");
    SET(seg.cause_type, "Sandbox.Timedout");
    size_t n = sizeof(seg.snapshot_json) - 1;
    memset(seg.snapshot_json, ' ', n);
    memcpy(seg.snapshot_json, "{\"a\":\"", 6);
    seg.snapshot_json[n - 2] = '"';
    seg.snapshot_json[n - 1] = '}';
    seg.snapshot_json[n] = '\0';
    assert_int_equal(xray_encode_split(&seg, XRAY_DOC_MAX_BYTES, &docs, NULL), 0);
    assert_true(xray_docs_get(&docs, 0).len > XRAY_SCRATCH_KEEP_BYTES);
    assert_true(docs.scratch.alloc <= XRAY_SCRATCH_KEEP_BYTES);
    xray_docs_free(&docs);
}

static void test_names_are_sanitised(void **state)
{
    struct buf b;
    (void)state;
    SET(seg.name, "my fn(1)!$\t\xC3\xA9:/%&#=+-@_.");
    add_span(&seg, "1111111111111111", -1, "Ext\"ension", 1480615200020000, 1480615200030000);
    encode(&b, XRAY_DOC_MAX_BYTES);
    assert_non_null(strstr(buf_data(&b), "{\"name\":\"my fn_1____\xC3\xA9:/%&#=+-@_.\","));
    assert_non_null(strstr(buf_data(&b), "{\"name\":\"Ext_ension\","));
    buf_free(&b);
}

static void test_nesting_follows_parent_indexes(void **state)
{
    (void)state;
    /* children listed before their parent in the array still nest */
    add_span(&seg, "3333333333333333", 2, "c", 1480615200040000, 1480615200050000);
    add_span(&seg, "2222222222222222", -1, "b", 1480615200030000, 1480615200060000);
    add_span(&seg, "1111111111111111", 1, "a", 1480615200035000, 1480615200055000);
    assert_encodes_to("{\"name\":\"f\",\"id\":\"53995c3f42cd8ad8\","
                      "\"trace_id\":\"1-5759e988-bd862e3fe1be46a994272793\","
                      "\"start_time\":1480615200.010000,\"end_time\":1480615200.110000,"
                      "\"subsegments\":[{\"name\":\"b\",\"id\":\"2222222222222222\","
                      "\"start_time\":1480615200.030000,\"end_time\":1480615200.060000,"
                      "\"subsegments\":[{\"name\":\"a\",\"id\":\"1111111111111111\","
                      "\"start_time\":1480615200.035000,\"end_time\":1480615200.055000,"
                      "\"subsegments\":[{\"name\":\"c\",\"id\":\"3333333333333333\","
                      "\"start_time\":1480615200.040000,\"end_time\":1480615200.050000}]}]}]}");
}

static void assert_rejected(void)
{
    struct xray_docs docs;
    struct buf b;

    buf_init(&b, XRAY_DOC_MAX_BYTES);
    assert_int_equal(buf_append_str(&b, "keep"), 0);
    assert_int_equal(xray_encode_segment(&b, &seg, NULL), -EINVAL);
    assert_string_equal(buf_data(&b), "keep");
    buf_free(&b);
    xray_docs_init(&docs);
    assert_int_equal(xray_encode_split(&seg, XRAY_DOC_MAX_BYTES, &docs, NULL), -EINVAL);
    assert_int_equal(docs.count, 0);
    xray_docs_free(&docs);
}

static void test_broken_model_is_rejected(void **state)
{
    (void)state;
    SET(seg.trace_id, "1-5759e988-bd862e3fe1be46a99427279");
    assert_rejected();
    minimal_segment();
    SET(seg.id, "53995c3f42cd8ad");
    assert_rejected();
    minimal_segment();
    SET(seg.parent_id, "zz995c3f42cd8ad8");
    assert_rejected();
    minimal_segment();
    seg.name[0] = '\0';
    assert_rejected();
    minimal_segment();
    seg.start_us = TRACE_NO_END;
    assert_rejected();
    minimal_segment();
    SET(seg.cause_type, "Runtime.ExitError"); /* no cause_id */
    assert_rejected();
    minimal_segment();
    add_span(&seg, "1111111111111111", 5, "a", 1, 2); /* parent out of range */
    assert_rejected();
    minimal_segment();
    add_span(&seg, "1111111111111111", -2, "a", 1, 2);
    assert_rejected();
    minimal_segment();
    add_span(&seg, "1111111111111111", 1, "a", 1, 2); /* a cycle */
    add_span(&seg, "2222222222222222", 0, "b", 1, 2);
    assert_rejected();
    minimal_segment();
    add_span(&seg, "1111111111111111", 0, "a", 1, 2); /* its own parent */
    assert_rejected();
    minimal_segment();
    add_span(&seg, "111111111111111", -1, "a", 1, 2);
    assert_rejected();
    minimal_segment();
    add_span(&seg, "1111111111111111", -1, "", 1, 2);
    assert_rejected();
    minimal_segment();
    seg.span_count = TRACE_MAX_SPANS + 1;
    assert_rejected();
    minimal_segment();
    seg.attr_count = TRACE_MAX_ATTRS + 1;
    assert_rejected();
}

static void test_full_document_over_cap(void **state)
{
    struct buf b;
    (void)state;
    full_segment();
    buf_init(&b, sizeof(FULL_SEGMENT_DOC) - 2);
    assert_int_equal(xray_encode_segment(&b, &seg, NULL), -ENOBUFS);
    assert_int_equal(buf_len(&b), 0);
    buf_free(&b);
    buf_init(&b, sizeof(FULL_SEGMENT_DOC) - 1);
    assert_int_equal(xray_encode_segment(&b, &seg, NULL), 0);
    buf_free(&b);
}

/* --- splitter ------------------------------------------------------------ */

static void assert_docs(const struct xray_docs *docs, const char *const *want, size_t n)
{
    assert_int_equal(docs->count, n);
    for (size_t i = 0; i < n; i++) {
        struct xray_doc d = xray_docs_get(docs, i);

        check_doc(d.data, d.len);
        assert_int_equal(d.len, strlen(want[i]));
        assert_memory_equal(d.data, want[i], d.len);
    }
}

static void test_split_not_needed(void **state)
{
    struct xray_encode_stats st = {0};
    struct xray_docs docs;
    const char *want[] = {FULL_SEGMENT_DOC};
    (void)state;
    full_segment();
    xray_docs_init(&docs);
    assert_int_equal(xray_encode_split(&seg, XRAY_DOC_MAX_BYTES, &docs, &st), 0);
    assert_docs(&docs, want, 1);
    assert_int_equal(st.segments_split, 0);
    /* the list text is JSON lines */
    assert_int_equal(buf_len(&docs.text), sizeof(FULL_SEGMENT_DOC));
    assert_int_equal(buf_data(&docs.text)[buf_len(&docs.text) - 1], '\n');
    /* a cap above X-Ray's limit is lowered to it; reuse empties the list */
    assert_int_equal(xray_encode_split(&seg, 10 * XRAY_DOC_MAX_BYTES, &docs, &st), 0);
    assert_docs(&docs, want, 1);
    xray_docs_free(&docs);
}

#define INDEPENDENT(name, id, parent)                                                              \
    "{\"name\":\"" name "\",\"id\":\"" id "\",\"trace_id\":\"" TRACE_ID                            \
    "\",\"parent_id\":\"" parent "\",\"type\":\"subsegment\""

static void test_split_into_independent_subsegments(void **state)
{
    struct xray_encode_stats st = {0};
    struct xray_docs docs;
    const char *want[] = {
        FULL_SEGMENT_HEAD "}",
        INDEPENDENT("Init", "1111111111111111", SEG_ID)
        ",\"start_time\":1480615199.500000,\"end_time\":1480615200.000000}",
        INDEPENDENT("Invocation", "2222222222222222", SEG_ID)
        ",\"start_time\":1480615200.010000,\"end_time\":1480615201.200000,\"fault\":true,"
        "\"subsegments\":[" HANDLER_NESTED "]}",
        INDEPENDENT("Overhead", "3333333333333333", SEG_ID)
        ",\"start_time\":1480615201.200000,\"end_time\":1480615201.250000}",
    };
    (void)state;
    full_segment();
    xray_docs_init(&docs);
    /* one byte short of the full document */
    assert_int_equal(xray_encode_split(&seg, sizeof(FULL_SEGMENT_DOC) - 2, &docs, &st), 0);
    assert_docs(&docs, want, 4);
    assert_int_equal(st.segments_split, 1);
    assert_int_equal(st.causes_truncated, 0);
    xray_docs_free(&docs);
}

static void test_split_recurses_when_a_subtree_is_too_big(void **state)
{
    struct xray_docs docs;
    const char *want[] = {
        "{\"name\":\"f\",\"id\":\"53995c3f42cd8ad8\",\"trace_id\":\"" TRACE_ID "\","
        "\"start_time\":1480615200.010000,\"end_time\":1480615200.110000}",
        INDEPENDENT("Invocation", "2222222222222222", SEG_ID)
        ",\"start_time\":1480615200.010000,\"end_time\":1480615200.100000}",
        INDEPENDENT("Handler", "4444444444444444", "2222222222222222")
        ",\"start_time\":1480615200.020000,\"end_time\":1480615200.090000,\"error\":true}",
        INDEPENDENT("Deeper", "5555555555555555", "4444444444444444")
        ",\"start_time\":1480615200.030000,\"end_time\":1480615200.040000}",
        INDEPENDENT("Overhead", "3333333333333333", SEG_ID)
        ",\"start_time\":1480615200.100000,\"end_time\":1480615200.110000}",
    };
    size_t cap = 0;
    (void)state;
    add_span(&seg, "2222222222222222", -1, "Invocation", 1480615200010000, 1480615200100000);
    add_span(&seg, "3333333333333333", -1, "Overhead", 1480615200100000, 1480615200110000);
    add_span(&seg, "4444444444444444", 0, "Handler", 1480615200020000, 1480615200090000)->error =
        true;
    add_span(&seg, "5555555555555555", 2, "Deeper", 1480615200030000, 1480615200040000);
    for (size_t i = 0; i < 5; i++)
        cap = strlen(want[i]) > cap ? strlen(want[i]) : cap;
    xray_docs_init(&docs);
    assert_int_equal(xray_encode_split(&seg, cap, &docs, NULL), 0);
    assert_docs(&docs, want, 5);
    xray_docs_free(&docs);
}

static void test_split_truncates_the_cause_to_fit(void **state)
{
    struct xray_encode_stats st = {0};
    struct xray_docs docs;
    struct xray_doc d;
    const size_t cap = 1024;
    (void)state;
    full_segment();
    memset(seg.cause_message, 'x', sizeof(seg.cause_message) - 1);
    xray_docs_init(&docs);
    assert_int_equal(xray_encode_split(&seg, cap, &docs, &st), 0);
    assert_int_equal(docs.count, 4);
    d = xray_docs_get(&docs, 0);
    check_doc(d.data, d.len);
    /* one-byte characters: the message fills the document exactly */
    assert_int_equal(d.len, cap);
    assert_non_null(strstr(d.data, "xxx" XRAY_TRUNCATED_SUFFIX "\"}]},\"annotations\""));
    assert_int_equal(st.causes_truncated, 1);
    assert_int_equal(st.segments_split, 1);
    for (size_t i = 1; i < docs.count; i++) {
        d = xray_docs_get(&docs, i);
        check_doc(d.data, d.len);
        assert_true(d.len <= cap);
    }

    /* two-byte characters and escapes are never cut in half */
    for (size_t i = 0; i + 2 < sizeof(seg.cause_message); i += 2)
        memcpy(seg.cause_message + i, i % 10 == 0 ? "\n\t" : "\xC3\xA9", 2);
    for (size_t extra = 0; extra < 3; extra++) {
        assert_int_equal(xray_encode_split(&seg, cap + extra, &docs, NULL), 0);
        d = xray_docs_get(&docs, 0);
        check_doc(d.data, d.len);
        assert_true(d.len <= cap + extra && d.len + 2 >= cap + extra);
    }
    xray_docs_free(&docs);
}

static void test_split_fails_when_nothing_can_fit(void **state)
{
    struct xray_docs docs;
    (void)state;
    full_segment();
    xray_docs_init(&docs);
    /* smaller than the segment with its cause cut to the suffix */
    assert_int_equal(xray_encode_split(&seg, 200, &docs, NULL), -EMSGSIZE);
    assert_int_equal(docs.count, 0);
    assert_int_equal(buf_len(&docs.text), 0);
    /* no cause to cut */
    minimal_segment();
    {
        static const char *const keys[] = {"k0", "k1", "k2", "k3", "k4"};

        for (size_t i = 0; i < 5; i++)
            SET(add_attr(&seg, keys[i], NULL, TRACE_ATTR_ANNOTATION, TRACE_VALUE_STRING)->str,
                "a long enough value to make the document big");
    }
    assert_int_equal(xray_encode_split(&seg, 120, &docs, NULL), -EMSGSIZE);
    assert_int_equal(docs.count, 0);
    /* the segment fits alone but a subsegment never does */
    minimal_segment();
    add_span(&seg, "2222222222222222", -1, "a-rather-long-subsegment-name", 1480615200010000,
             1480615200100000);
    assert_int_equal(xray_encode_split(&seg, 160, &docs, NULL), -EMSGSIZE);
    assert_int_equal(docs.count, 0);
    xray_docs_free(&docs);
}

/* --- transports ---------------------------------------------------------- */

static void test_daemon_datagram(void **state)
{
    static const char doc[] = "{\"name\":\"f\"}";
    struct buf b;
    (void)state;
    buf_init(&b, XRAY_DATAGRAM_MAX_BYTES);
    assert_int_equal(xray_daemon_datagram(&b, doc, sizeof(doc) - 1), 0);
    assert_string_equal(buf_data(&b), "{\"format\": \"json\", \"version\": 1}\n{\"name\":\"f\"}");
    assert_int_equal(xray_daemon_datagram(&b, doc, 0), -EINVAL);
    buf_free(&b);

    /* a real document, as the daemon would get it */
    full_segment();
    encode(&b, XRAY_DAEMON_DOC_MAX_BYTES);
    {
        struct buf dg;

        buf_init(&dg, XRAY_DATAGRAM_MAX_BYTES);
        assert_int_equal(xray_daemon_datagram(&dg, buf_data(&b), buf_len(&b)), 0);
        assert_int_equal(buf_len(&dg), XRAY_DAEMON_HEADER_LEN + buf_len(&b));
        dump_bytes("xray_datagram_1.bin", "w", buf_data(&dg), buf_len(&dg), "");
        buf_free(&dg);
    }
    buf_free(&b);

    /* over the cap: unchanged */
    buf_init(&b, XRAY_DAEMON_HEADER_LEN + sizeof(doc) - 2);
    assert_int_equal(buf_append_str(&b, ""), 0);
    assert_int_equal(xray_daemon_datagram(&b, doc, sizeof(doc) - 1), -ENOBUFS);
    assert_int_equal(buf_len(&b), 0);
    buf_free(&b);
    assert_int_equal(XRAY_DAEMON_HEADER_LEN, 33);
    assert_int_equal(XRAY_DAEMON_DOC_MAX_BYTES, 65507 - 33);
}

static void test_put_body(void **state)
{
    static const char one_only[] = "{\"TraceSegmentDocuments\":[\"{\\\"a\\\":1}\"]}";
    const struct xray_doc docs[] = {
        {"{\"a\":1}", 7},
        {"{\"b\":\"x\\ny\"}", 12},
        {"{\"c\":3}", 7},
    };
    struct buf b;
    size_t used = 99;
    (void)state;
    buf_init(&b, 1024);
    assert_int_equal(xray_put_body(&b, docs, 2, &used), 0);
    assert_int_equal(used, 2);
    assert_string_equal(buf_data(&b), "{\"TraceSegmentDocuments\":[\"{\\\"a\\\":1}\","
                                      "\"{\\\"b\\\":\\\"x\\\\ny\\\"}\"]}");
    buf_free(&b);

    /* a cap that fits one document: the first goes, the caller sends the rest later */
    buf_init(&b, sizeof(one_only) - 1);
    assert_int_equal(xray_put_body(&b, docs, 3, &used), 0);
    assert_int_equal(used, 1);
    assert_string_equal(buf_data(&b), one_only);
    buf_free(&b);

    /* not even one fits */
    buf_init(&b, sizeof(one_only) - 2);
    assert_int_equal(xray_put_body(&b, docs, 3, &used), -ENOBUFS);
    assert_int_equal(used, 0);
    assert_int_equal(buf_len(&b), 0);
    buf_free(&b);

    buf_init(&b, 1024);
    assert_int_equal(xray_put_body(&b, docs, 0, &used), -EINVAL);
    {
        const struct xray_doc empty[] = {{"{}", 2}, {"", 0}};

        assert_int_equal(xray_put_body(&b, empty, 2, &used), -EINVAL);
        assert_int_equal(buf_len(&b), 0);
    }
    buf_free(&b);
}

/* A split segment in one PutTraceSegments body: every element is a string
 * that parses to the document it came from. */
static void test_put_body_round_trip(void **state)
{
    struct xray_docs docs;
    struct xray_doc list[XRAY_MAX_DOCS];
    struct buf b;
    size_t used = 0;
    cJSON *root;
    cJSON *arr;
    (void)state;
    full_segment();
    SET(seg.cause_message, "multi\nline \"quoted\" \xC3\xA9 message");
    xray_docs_init(&docs);
    assert_int_equal(xray_encode_split(&seg, 700, &docs, NULL), 0);
    assert_true(docs.count > 1);
    for (size_t i = 0; i < docs.count; i++)
        list[i] = xray_docs_get(&docs, i);
    buf_init(&b, 1 << 20);
    assert_int_equal(xray_put_body(&b, list, docs.count, &used), 0);
    assert_int_equal(used, docs.count);
    dump_bytes("xray_put_body_1.json", "w", buf_data(&b), buf_len(&b), "");
    root = cJSON_ParseWithLengthOpts(buf_data(&b), buf_len(&b) + 1, NULL, true);
    assert_non_null(root);
    arr = cJSON_GetObjectItemCaseSensitive(root, "TraceSegmentDocuments");
    assert_true(cJSON_IsArray(arr));
    assert_int_equal(cJSON_GetArraySize(arr), (int)docs.count);
    for (size_t i = 0; i < docs.count; i++) {
        cJSON *s = cJSON_GetArrayItem(arr, (int)i);

        assert_true(cJSON_IsString(s));
        assert_int_equal(strlen(s->valuestring), list[i].len);
        assert_memory_equal(s->valuestring, list[i].data, list[i].len);
    }
    cJSON_Delete(root);
    buf_free(&b);
    xray_docs_free(&docs);
}

/* --- out of memory ------------------------------------------------------- */

/* Fails each allocation of op in turn: -ENOMEM (or success once the count
 * is past what op needs), never a leak. */
static void every_allocation_fails(int (*op)(void))
{
    unsigned long total;

    fail_alloc_reset();
    assert_int_equal(op(), 0);
    total = fail_alloc_count();
    assert_true(total > 0);
    assert_int_equal(fail_alloc_live(), 0);
    for (unsigned long nth = 1; nth <= total; nth++) {
        fail_alloc_reset();
        fail_alloc_fail_at(nth);
        assert_int_equal(op(), -ENOMEM);
        assert_int_equal(fail_alloc_live(), 0);
    }
    fail_alloc_reset();
}

static int op_segment(void)
{
    struct buf b;
    int r;

    buf_init(&b, XRAY_DOC_MAX_BYTES);
    r = xray_encode_segment(&b, &seg, NULL);
    if (r == -ENOMEM)
        assert_int_equal(buf_len(&b), 0);
    buf_free(&b);
    return r;
}

static int op_split(void)
{
    struct xray_docs docs;
    int r;

    xray_docs_init(&docs);
    r = xray_encode_split(&seg, 1024, &docs, NULL);
    if (r < 0)
        assert_int_equal(docs.count, 0);
    xray_docs_free(&docs);
    return r;
}

static int op_transports(void)
{
    const struct xray_doc docs[] = {{"{\"a\":1}", 7}, {"{\"b\":2}", 7}};
    struct buf b;
    size_t used;
    int r;

    buf_init(&b, XRAY_DATAGRAM_MAX_BYTES);
    r = xray_daemon_datagram(&b, "{}", 2);
    if (r == 0) {
        buf_free(&b);
        r = xray_put_body(&b, docs, 2, &used);
    }
    if (r < 0)
        assert_int_equal(buf_len(&b), 0);
    buf_free(&b);
    return r;
}

static void test_out_of_memory(void **state)
{
    (void)state;
    full_segment();
    every_allocation_fails(op_segment);
    /* with a cause that must be cut */
    memset(seg.cause_message, 'x', sizeof(seg.cause_message) - 1);
    every_allocation_fails(op_split);
    every_allocation_fails(op_transports);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_minimal_segment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_segment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_time_has_microseconds_without_float_error, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_in_progress, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flags_only_when_true, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aws_block_only_non_empty_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cause_without_message_and_with_escapes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_span_attributes_on_their_subsegment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_annotation_keys_are_filtered_and_counted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_metadata_is_namespaced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_goes_to_metadata, setup, teardown),
        cmocka_unit_test_setup_teardown(test_largest_snapshot_fits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_names_are_sanitised, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nesting_follows_parent_indexes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broken_model_is_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_document_over_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_not_needed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_into_independent_subsegments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_recurses_when_a_subtree_is_too_big, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_split_truncates_the_cause_to_fit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_fails_when_nothing_can_fit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_daemon_datagram, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_body_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reused_docs_allocate_nothing, setup, teardown),
    };
    const char *dir = getenv("LAMBDA_TRACER_ENCODER_DUMP_DIR");

    /* A fresh dump per run. */
    if (dir != NULL && dir[0] != '\0') {
        FILE *f = dump_open("xray_documents.jsonl", "w");

        if (f == NULL || fclose(f) != 0)
            return 1;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
