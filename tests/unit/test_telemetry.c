/* Unit tests for telemetry.c: real records, lenient fields, bad input. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "telemetry.h"
#include "fail_alloc.h"
#include "../fuzz/tel_reference.h"

static struct tel_batch *parse_ok(const char *s)
{
    struct tel_batch *b = NULL;
    assert_int_equal(tel_batch_parse(s, strlen(s), &b), 0);
    assert_non_null(b);
    return b;
}

static void test_parse_time(void **state)
{
    int64_t us = 0;
    (void)state;
    assert_int_equal(tel_parse_time("1970-01-01T00:00:00Z", &us), 0);
    assert_true(us == 0);
    assert_int_equal(tel_parse_time("2022-10-12T00:00:15.064Z", &us), 0);
    assert_true(us == 1665532815064000LL);
    assert_int_equal(tel_parse_time("2024-02-29T23:59:59.123456789Z", &us), 0);
    assert_true(us == 1709251199123456LL);
    assert_int_equal(tel_parse_time("2022-10-12T02:00:15.5+02:00", &us), 0);
    assert_true(us == 1665532815500000LL);
    /* the colon-before-milliseconds form from AWS doc examples (trap 19) */
    assert_int_equal(tel_parse_time("2022-08-02T12:01:23:521Z", &us), 0);
    assert_true(us == 1659441683521000LL);
    assert_int_equal(tel_parse_time("2023-02-29T00:00:00Z", &us), -EINVAL);
    assert_int_equal(tel_parse_time("2022-13-01T00:00:00Z", &us), -EINVAL);
    assert_int_equal(tel_parse_time("2022-10-12T00:00:15.064", &us), -EINVAL);
    assert_int_equal(tel_parse_time("2022-10-12T00:00:15.Z", &us), -EINVAL);
    assert_int_equal(tel_parse_time("2022-10-12T00:00:15.0123456789Z", &us), -EINVAL);
    assert_int_equal(tel_parse_time("2022-10-12T24:00:00Z", &us), -EINVAL);
    assert_int_equal(tel_parse_time("2022-10-12T00:00:00Zjunk", &us), -EINVAL);
    assert_int_equal(tel_parse_time("", &us), -EINVAL);
    assert_int_equal(tel_parse_time(NULL, &us), -EINVAL);
}

static void test_real_cold_start_records(void **state)
{
    struct tel_batch *b;
    (void)state;
    b = parse_ok(
        "[{\"time\":\"2025-01-07T19:49:07.089Z\",\"type\":\"platform.initStart\",\"record\":{"
        "\"initializationType\":\"on-demand\",\"phase\":\"init\",\"runtimeVersion\":\"java:21.v27\","
        "\"functionName\":\"worker10\",\"functionVersion\":\"$LATEST\","
        "\"instanceId\":\"2025/01/07/worker10[$LATEST]002cf7829acf404ea7f6995e1910b96b\","
        "\"instanceMaxMemory\":1879048192}},"
        "{\"time\":\"2024-05-20T16:29:45.019Z\",\"type\":\"platform.runtimeDone\",\"record\":{"
        "\"requestId\":\"4b142fc3\",\"status\":\"success\",\"spans\":["
        "{\"name\":\"responseLatency\",\"start\":\"2024-05-20T16:29:45.008Z\",\"durationMs\":2.215},"
        "{\"name\":\"responseDuration\",\"start\":\"2024-05-20T16:29:45.010Z\",\"durationMs\":0.056},"
        "{\"name\":\"runtimeOverhead\",\"start\":\"2024-05-20T16:29:45.010Z\",\"durationMs\":8.686}],"
        "\"metrics\":{\"durationMs\":11.185,\"producedBytes\":40}}},"
        "{\"time\":\"2025-01-07T19:49:07.924Z\",\"type\":\"platform.report\",\"record\":{"
        "\"requestId\":\"06e8554f\",\"metrics\":{\"durationMs\":329.177,\"billedDurationMs\":330,"
        "\"memorySizeMB\":1792,\"maxMemoryUsedMB\":125,\"initDurationMs\":503.083},"
        "\"status\":\"success\"}}]");
    assert_int_equal(b->count, 3);
    assert_int_equal(b->invalid, 0);

    const struct tel_event *init = &b->events[0];
    assert_int_equal(init->type, TEL_INIT_START);
    assert_string_equal(init->type_name, "platform.initStart");
    assert_int_equal(init->init_type, TEL_INIT_TYPE_ON_DEMAND);
    assert_int_equal(init->phase, TEL_PHASE_INIT);
    assert_string_equal(init->function_name, "worker10");
    assert_string_equal(init->version, "$LATEST");
    assert_string_equal(init->instance_id, "2025/01/07/worker10[$LATEST]002cf7829acf404ea7f6995e1910b96b");
    assert_true(init->instance_max_memory == 1879048192LL);
    assert_null(init->request_id);

    const struct tel_event *done = &b->events[1];
    assert_int_equal(done->type, TEL_RUNTIME_DONE);
    assert_int_equal(done->status, TEL_STATUS_SUCCESS);
    assert_true(done->duration_us == 11185);
    assert_true(done->produced_bytes == 40);
    assert_int_equal(done->span_count, 3);
    assert_string_equal(done->spans[0].name, "responseLatency");
    assert_true(done->spans[0].duration_us == 2215);
    assert_true(done->spans[1].duration_us == 56);
    assert_true(done->spans[2].start_us == 1716222585010000LL);
    assert_null(done->error_type);

    const struct tel_event *rep = &b->events[2];
    assert_int_equal(rep->type, TEL_REPORT);
    assert_true(rep->billed_duration_ms == 330);
    assert_true(rep->memory_size_mb == 1792);
    assert_true(rep->max_memory_used_mb == 125);
    assert_true(rep->init_duration_us == 503083);
    assert_true(rep->restore_duration_us == TEL_ABSENT);
    tel_batch_free(b);
}

static void test_failures_and_other_types(void **state)
{
    struct tel_batch *b;
    (void)state;
    b = parse_ok(
        "[{\"time\":\"2026-07-01T10:00:05.001Z\",\"type\":\"platform.runtimeDone\",\"record\":{"
        "\"requestId\":\"a\",\"status\":\"timeout\",\"metrics\":{\"durationMs\":5001.182,\"producedBytes\":0}}},"
        "{\"time\":\"2026-07-01T10:00:07.000Z\",\"type\":\"platform.report\",\"record\":{\"requestId\":\"b\","
        "\"status\":\"error\",\"errorType\":\"Runtime.OutOfMemory\",\"metrics\":{\"durationMs\":800.1}}},"
        "{\"time\":\"2022-10-12T00:02:35.000Z\",\"type\":\"platform.logsDropped\",\"record\":{"
        "\"droppedBytes\":12345,\"droppedRecords\":123,\"reason\":\"slow\"}},"
        "{\"time\":\"2022-10-12T00:03:50.000Z\",\"type\":\"function\",\"record\":\"hello\\n\"},"
        "{\"time\":\"2022-10-12T00:03:50.000Z\",\"type\":\"extension\",\"record\":{\"message\":\"m\",\"level\":\"INFO\"}},"
        "{\"time\":\"2022-10-12T00:03:50.000Z\",\"type\":\"platform.futureThing\",\"record\":{}},"
        "{\"time\":\"2022-10-12T00:00:15.064Z\",\"type\":\"platform.restoreReport\",\"record\":{"
        "\"status\":\"failure\",\"errorType\":\"Runtime.Unknown\",\"metrics\":{\"durationMs\":15.19}}},"
        "{\"time\":\"2022-10-12T00:00:15.064Z\",\"type\":\"platform.initStart\",\"record\":{"
        "\"initializationType\":\"snap-start\",\"phase\":\"weird\"}}]");
    assert_int_equal(b->count, 8);
    assert_int_equal(b->events[0].status, TEL_STATUS_TIMEOUT);
    assert_true(b->events[0].produced_bytes == 0);
    assert_int_equal(b->events[1].status, TEL_STATUS_ERROR);
    assert_string_equal(b->events[1].error_type, "Runtime.OutOfMemory");
    assert_true(b->events[1].billed_duration_ms == TEL_ABSENT);
    assert_int_equal(b->events[2].type, TEL_LOGS_DROPPED);
    assert_true(b->events[2].dropped_records == 123);
    assert_true(b->events[2].dropped_bytes == 12345);
    assert_string_equal(b->events[2].text, "slow");
    assert_int_equal(b->events[3].type, TEL_FUNCTION_LOG);
    assert_string_equal(b->events[3].text, "hello\n");
    assert_int_equal(b->events[4].type, TEL_EXTENSION_LOG);
    assert_string_equal(b->events[4].text, "m");
    assert_int_equal(b->events[5].type, TEL_UNKNOWN);
    assert_string_equal(b->events[5].type_name, "platform.futureThing");
    assert_int_equal(b->events[6].type, TEL_RESTORE_REPORT);
    assert_int_equal(b->events[6].status, TEL_STATUS_FAILURE);
    assert_int_equal(b->events[7].init_type, TEL_INIT_TYPE_SNAP_START);
    assert_int_equal(b->events[7].phase, TEL_PHASE_OTHER);
    tel_batch_free(b);
}

/* Tenant isolation: tenantId on start, runtimeDone and report (not on the
 * Init records); a tenantId that is not a string is absent, like any
 * string field of the wrong type. */
static void test_tenant_id(void **state)
{
    struct tel_batch *b;
    (void)state;
    b = parse_ok(
        "[{\"time\":\"2025-10-13T19:48:00.000Z\",\"type\":\"platform.start\",\"record\":{"
        "\"requestId\":\"r1\",\"version\":\"$LATEST\",\"tenantId\":\"BlueTenant\"}},"
        "{\"time\":\"2025-10-13T19:48:01.000Z\",\"type\":\"platform.runtimeDone\",\"record\":{"
        "\"requestId\":\"r1\",\"status\":\"success\",\"tenantId\":\"Blue\\u00e9\"}},"
        "{\"time\":\"2025-10-13T19:48:02.000Z\",\"type\":\"platform.report\",\"record\":{"
        "\"tenantId\":7,\"requestId\":\"r1\",\"status\":\"success\"}},"
        "{\"time\":\"2025-10-13T19:48:03.000Z\",\"type\":\"platform.report\",\"record\":{"
        "\"requestId\":\"r2\",\"status\":\"success\"}},"
        "{\"time\":\"2025-10-13T19:47:00.000Z\",\"type\":\"platform.initStart\",\"record\":{"
        "\"runtimeVersion\":\"python:3.13.DurableFunction.v2\",\"tenantId\":\"\"}}]");
    assert_int_equal(b->count, 5);
    assert_string_equal(b->events[0].tenant_id, "BlueTenant");
    assert_string_equal(b->events[1].tenant_id, "Blue\xc3\xa9");
    assert_null(b->events[2].tenant_id);
    assert_string_equal(b->events[2].request_id, "r1");
    assert_null(b->events[3].tenant_id);
    assert_string_equal(b->events[4].tenant_id, "");
    assert_string_equal(b->events[4].runtime_version, "python:3.13.DurableFunction.v2");
    tel_batch_free(b);
}

static bool same_as_reference(const char *s, size_t len);

/* platform.extension's `events`: the Extensions API events each extension
 * registered for (the Init shares tell an extension woken by the first
 * invocation from one that held Init).  Only strings count; anything else
 * in or instead of the array is tolerated; the first `events` key wins. */
static void test_extension_events(void **state)
{
    static const char *const body =
        "[{\"time\":\"2025-10-13T19:48:00.000Z\",\"type\":\"platform.extension\",\"record\":{"
        "\"name\":\"a\",\"state\":\"Ready\",\"events\":[\"INVOKE\",\"SHUTDOWN\"]}},"
        "{\"time\":\"2025-10-13T19:48:00.000Z\",\"type\":\"platform.extension\",\"record\":{"
        "\"events\":[\"SHUTDOWN\"],\"name\":\"b\"}},"
        "{\"time\":\"2025-10-13T19:48:00.000Z\",\"type\":\"platform.extension\",\"record\":{"
        "\"name\":\"c\",\"events\":[]}},"
        "{\"time\":\"2025-10-13T19:48:00.000Z\",\"type\":\"platform.extension\",\"record\":{"
        "\"name\":\"d\",\"events\":[1,null,{\"INVOKE\":1},[\"INVOKE\"],\"invoke\",\"INV\\u004fKE\",\"X\"]}},"
        "{\"time\":\"2025-10-13T19:48:00.000Z\",\"type\":\"platform.extension\",\"record\":{"
        "\"name\":\"e\",\"events\":\"INVOKE\"}},"
        "{\"time\":\"2025-10-13T19:48:00.000Z\",\"type\":\"platform.extension\",\"record\":{"
        "\"name\":\"f\",\"events\":[\"SHUTDOWN\"],\"events\":[\"INVOKE\"]}},"
        "{\"time\":\"2025-10-13T19:48:00.000Z\",\"type\":\"platform.extension\",\"record\":{"
        "\"name\":\"g\"}}]";
    static const unsigned want[] = {TEL_EXT_INVOKE | TEL_EXT_SHUTDOWN, TEL_EXT_SHUTDOWN, 0, TEL_EXT_INVOKE, 0,
                                    TEL_EXT_SHUTDOWN, 0};
    struct tel_batch *b;
    (void)state;
    b = parse_ok(body);
    assert_int_equal(b->count, 7);
    for (size_t i = 0; i < b->count; i++) {
        assert_int_equal(b->events[i].type, TEL_EXTENSION_STATE);
        assert_int_equal(b->events[i].ext_events, want[i]);
    }
    assert_string_equal(b->events[0].state, "Ready");
    tel_batch_free(b);
    assert_true(same_as_reference(body, strlen(body)));
}

static void test_wrong_types_are_tolerated(void **state)
{
    struct tel_batch *b;
    (void)state;
    /* every field with the wrong JSON type: ignored, never a crash */
    b = parse_ok("[{\"time\":\"2022-10-12T00:00:00Z\",\"type\":\"platform.report\",\"record\":{"
                 "\"requestId\":5,\"status\":[],\"errorType\":{},\"metrics\":{\"durationMs\":\"1\","
                 "\"billedDurationMs\":-3,\"memorySizeMB\":1e300},\"spans\":{},"
                 "\"tracing\":\"x\"}},"
                 "{\"time\":\"2022-10-12T00:00:00Z\",\"type\":\"platform.runtimeDone\",\"record\":{"
                 "\"spans\":[1,{\"name\":2},{\"name\":\"ok\",\"start\":5,\"durationMs\":null},"
                 "{\"name\":\"a\"},{\"name\":\"a\"},{\"name\":\"a\"},{\"name\":\"a\"},{\"name\":\"a\"},"
                 "{\"name\":\"a\"},{\"name\":\"a\"},{\"name\":\"overflow\"}]}}]");
    assert_int_equal(b->count, 2);
    assert_null(b->events[0].request_id);
    assert_int_equal(b->events[0].status, TEL_STATUS_NONE);
    assert_null(b->events[0].error_type);
    assert_true(b->events[0].duration_us == TEL_ABSENT);
    assert_true(b->events[0].billed_duration_ms == TEL_ABSENT);
    assert_true(b->events[0].memory_size_mb == TEL_ABSENT);
    assert_int_equal(b->events[0].span_count, 0);
    assert_null(b->events[0].trace_value);
    assert_int_equal(b->events[1].span_count, TELEMETRY_MAX_SPANS);
    assert_string_equal(b->events[1].spans[0].name, "ok");
    assert_true(b->events[1].spans[0].start_us == TEL_ABSENT);
    assert_true(b->events[1].spans[0].duration_us == TEL_ABSENT);
    tel_batch_free(b);
}

static void test_invalid_elements_are_counted(void **state)
{
    struct tel_batch *b;
    (void)state;
    b = parse_ok("[1, null, \"x\", [], {}, {\"time\":\"2022-10-12T00:00:00Z\",\"type\":\"function\"},"
                 "{\"time\":\"bad\",\"type\":\"function\",\"record\":\"x\"},"
                 "{\"time\":5,\"type\":\"function\",\"record\":\"x\"},"
                 "{\"time\":\"2022-10-12T00:00:00Z\",\"type\":\"function\",\"record\":\"kept\"}]");
    assert_int_equal(b->count, 1);
    assert_int_equal(b->invalid, 8);
    assert_string_equal(b->events[0].text, "kept");
    tel_batch_free(b);

    b = parse_ok("[]");
    assert_int_equal(b->count, 0);
    tel_batch_free(b);
}

static void test_not_an_array_is_rejected(void **state)
{
    struct tel_batch *b = NULL;
    const char *bad[] = {"", "{}", "\"x\"", "[", "[{]", "null", "[1]]"};
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int r = tel_batch_parse(bad[i], strlen(bad[i]), &b);
        /* "[1]]": cJSON stops after the array without requiring the end; it parses */
        if (strcmp(bad[i], "[1]]") == 0) {
            assert_int_equal(r, 0);
            tel_batch_free(b);
            continue;
        }
        assert_int_equal(r, -EPROTO);
    }
    assert_int_equal(tel_batch_parse(NULL, 0, &b), -EPROTO);
    /* length is honoured: the same bytes cut short are not an array */
    assert_int_equal(tel_batch_parse("[]", 1, &b), -EPROTO);
}

/* A refused body says what was wrong and where reading stopped: each
 * syntax error its own words, the offset the byte where it is, and never
 * more of the body than one byte, shown printable. */
static void test_refusal_says_what_and_where(void **state)
{
    static const struct {
        const char *body;
        size_t offset;
        const char *what;
    } cases[] = {
        {"", 0, "an empty body"},
        {"   ", 3, "only blanks, not a JSON array"},
        {"  {\"a\":1}", 2, "not a JSON array: it starts with '{'"},
        {"\x7f[]", 0, "not a JSON array: it starts with 0x7F"},
        {"[", 1, "the body ends inside the array"},
        {"[1 2]", 3, "expected ',' or ']', found '2'"},
        {"[{\"time\":1 \"type\":2}]", 11, "expected ',' or '}', found '\"'"},
        {"[{\"time\" 1}]", 9, "expected ':', found '1'"},
        {"[{1:2}]", 2, "expected a \"key\", found '1'"},
        {"[\"abc]", 1, "the body ends inside a string"},
        {"[\"abc\\\"]", 1, "the body ends inside a string"},
        {"[\"a\\qb\"]", 1, "a bad string (a bad escape or \\u sequence)"},
        {"[\"a\\ud800\"]", 1, "a bad string (a bad escape or \\u sequence)"},
        {"[-]", 1, "a bad number"},
        {"[nul]", 1, "unexpected 'n'"},
        {"[1,]", 3, "unexpected ']'"},
        {"[1,\n\xff]", 4, "unexpected 0xFF"},
        {"[{\"time\":\"t\",\"type\":\"x\",\"record\":{\"a\":[1,}]}]", 41, "unexpected '}'"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tel_batch *b = NULL;
        struct tel_parse_error why;
        memset(&why, 0x5a, sizeof(why));
        int r = tel_batch_parse_why(cases[i].body, strlen(cases[i].body), &b, &why);
        if (r != -EPROTO || why.offset != cases[i].offset || strcmp(why.what, cases[i].what) != 0)
            fail_msg("case %zu (%s): %d, \"%.64s\" at %zu; want \"%s\" at %zu", i, cases[i].body, r, why.what,
                     why.offset, cases[i].what, cases[i].offset);
        assert_null(b);
    }
    /* past the nesting limit */
    char deep[1200];
    memset(deep, '[', sizeof(deep) - 1);
    deep[sizeof(deep) - 1] = '\0';
    struct tel_batch *b = NULL;
    struct tel_parse_error why;
    assert_int_equal(tel_batch_parse_why(deep, strlen(deep), &b, &why), -EPROTO);
    assert_string_equal(why.what, "nested deeper than 1000");
    assert_int_equal(why.offset, 1000);
    /* NULL: no reason wanted, same result */
    assert_int_equal(tel_batch_parse_why("[1 2]", 5, &b, NULL), -EPROTO);
    /* accepted: the reason is left alone */
    memset(&why, 0, sizeof(why));
    assert_int_equal(tel_batch_parse_why("[]", 2, &b, &why), 0);
    assert_int_equal(why.offset, 0);
    assert_string_equal(why.what, "");
    tel_batch_free(b);
}

static void test_large_strings_use_own_blocks(void **state)
{
    static char body[200000];
    static char line[100000];
    struct tel_batch *b;
    (void)state;
    memset(line, 'x', sizeof(line) - 1);
    line[sizeof(line) - 1] = '\0';
    snprintf(body, sizeof(body),
             "[{\"time\":\"2022-10-12T00:00:00Z\",\"type\":\"function\",\"record\":\"%s\"},"
             "{\"time\":\"2022-10-12T00:00:00Z\",\"type\":\"function\",\"record\":\"short\"}]",
             line);
    b = parse_ok(body);
    assert_int_equal(b->count, 2);
    assert_int_equal(strlen(b->events[0].text), sizeof(line) - 1);
    assert_string_equal(b->events[1].text, "short");
    tel_batch_free(b);
}

/* Every allocation, in turn, fails: -ENOMEM or -EPROTO, never a leak. */
static void test_out_of_memory_everywhere(void **state)
{
    const char *s = "[{\"time\":\"2024-05-20T16:29:45.019Z\",\"type\":\"platform.runtimeDone\",\"record\":{"
                    "\"requestId\":\"4b142fc3\",\"status\":\"success\",\"spans\":["
                    "{\"name\":\"responseLatency\",\"start\":\"2024-05-20T16:29:45.008Z\",\"durationMs\":2.2}],"
                    "\"tracing\":{\"value\":\"Root=1\",\"spanId\":\"ab\"}}},"
                    "{\"time\":\"2022-10-12T00:03:50.000Z\",\"type\":\"platform.x\",\"record\":\"hi\"}]";
    struct tel_batch *b = NULL;
    unsigned long n;
    (void)state;
    fail_alloc_hook_cjson();
    for (n = 1; n < 500; n++) {
        tel_spares_release(); /* every allocation made afresh */
        fail_alloc_reset();
        fail_alloc_fail_at(n);
        int r = tel_batch_parse(s, strlen(s), &b);
        if (r == 0) {
            assert_int_equal(b->count, 2);
            tel_batch_free(b);
            tel_spares_release();
            assert_int_equal(fail_alloc_live(), 0);
            break;
        }
        assert_true(r == -ENOMEM || r == -EPROTO);
        tel_spares_release();
        assert_int_equal(fail_alloc_live(), 0);
    }
    assert_true(n > 3 && n < 500);
    fail_alloc_reset();
}

/* Memory kept from one batch serves the next: reused, not leaked, and the
 * next batch reads correctly from it. */
static void test_spares_are_reused_and_released(void **state)
{
    static char body[400000];
    size_t n = 0;
    struct tel_batch *b;
    (void)state;
    tel_spares_release();
    fail_alloc_reset();
    n += (size_t)snprintf(body + n, sizeof(body) - n, "[");
    for (int i = 0; i < 300; i++)
        n += (size_t)snprintf(body + n, sizeof(body) - n,
                              "%s{\"time\":\"2022-10-12T00:00:%02dZ\",\"type\":\"function\","
                              "\"record\":\"line %d %0600d\"}", i ? "," : "", i % 60, i, i);
    n += (size_t)snprintf(body + n, sizeof(body) - n, "]");
    b = parse_ok(body);
    assert_int_equal(b->count, 300);
    tel_batch_free(b);
    unsigned long first = fail_alloc_count();
    long kept = fail_alloc_live();
    assert_true(kept > 0); /* the event array and arena blocks were kept */
    b = parse_ok(body);
    /* the second parse took the kept memory instead of allocating it again */
    assert_true(fail_alloc_count() - first < first / 2);
    assert_int_equal(b->count, 300);
    for (int i = 0; i < 300; i++) {
        char want[32];
        snprintf(want, sizeof(want), "line %d ", i);
        assert_memory_equal(b->events[i].text, want, strlen(want));
        assert_int_equal(strlen(b->events[i].text), strlen(want) + 600);
    }
    tel_batch_free(b);
    tel_spares_release();
    assert_int_equal(fail_alloc_live(), 0);
}

/* Both readers on the same bytes: the scanner accepts exactly what the
 * cJSON-based reader accepted and reads the same events.  Returns whether
 * the input was accepted. */
/* Whether a string of an event lies inside [body, body + len). */
static bool inside(const char *p, const char *body, size_t len)
{
    return p == NULL || (p >= body && p < body + len);
}

/* The same verdict and events from the scanner (copying into its arena,
 * and decoding in place in a copy of the body) as from the reference. */
static bool same_as_reference(const char *s, size_t len)
{
    struct tel_batch *b = NULL;
    struct tel_batch *ip = NULL;
    struct tel_reference ref;
    char *copy = malloc(len + 1);
    int r = tel_batch_parse(s, len, &b);
    int rr = tel_reference_parse(s, len, &ref);
    int ri;

    assert_non_null(copy);
    memcpy(copy, s, len);
    ri = tel_batch_parse_inplace(copy, len, &ip, NULL);
    if ((r == 0) != (rr == 0))
        fail_msg("scanner %d, reference %d on: %.*s", r, rr, (int)len, s);
    if (ri != r)
        fail_msg("in place %d, copying %d on: %.*s", ri, r, (int)len, s);
    if (r < 0) {
        assert_int_equal(r, -EPROTO);
        free(copy);
        return false;
    }
    assert_int_equal(b->count, ref.count);
    assert_int_equal(b->invalid, ref.invalid);
    assert_int_equal(ip->count, ref.count);
    assert_int_equal(ip->invalid, ref.invalid);
    for (size_t i = 0; i < b->count; i++) {
        const struct tel_event *e = &ip->events[i];
        if (!tel_reference_same_event(&b->events[i], &ref.events[i]))
            fail_msg("event %zu differs on: %.*s", i, (int)len, s);
        if (!tel_reference_same_event(e, &ref.events[i]))
            fail_msg("event %zu differs in place on: %.*s", i, (int)len, s);
        if (!inside(e->request_id, copy, len) || !inside(e->text, copy, len) ||
            !inside(e->trace_value, copy, len) || (e->type == TEL_UNKNOWN && !inside(e->type_name, copy, len)))
            fail_msg("event %zu: a string not in the body on: %.*s", i, (int)len, s);
    }
    tel_batch_free(b);
    tel_batch_free(ip);
    tel_reference_free(&ref);
    free(copy);
    return true;
}

#define T "\"time\":\"2022-10-12T00:00:00.5Z\""

/* The quirks the scanner keeps from cJSON, each against the reference and
 * with the outcome spelled out. */
static void test_quirks_match_the_reference(void **state)
{
    static const struct {
        const char *in;
        bool accepted;
        size_t count;
    } cases[] = {
        {"\xEF\xBB\xBF[{" T ",\"type\":\"function\",\"record\":\"a\"}]", true, 1},
        {"\xEF\xBB\xBF[]", true, 0},
        {"\x01\x1f [] trailing {", true, 0},
        {"[" "{" T ",\"type\":\"function\",\"record\":1e}]", false, 0},
        {"[{" T ",\"type\":\"function\",\"record\":1.5e3}]", true, 1},
        {"[{" T ",\"type\":\"function\",\"record\":-}]", false, 0},
        {"[{" T ",\"type\":\"function\",\"record\":+1}]", false, 0},
        {"[{" T ",\"type\":\"function\",\"record\":01}]", true, 1},
        {"[{" T ",\"type\":\"function\",\"record\":1-2}]", false, 0},
        {"[{" T ",\"type\":\"function\",\"record\":tru}]", false, 0},
        {"[{" T ",\"type\":\"function\",\"record\":\"\\uZZZZx\"}]", true, 1},
        {"[{" T ",\"type\":\"function\",\"record\":\"\\ud83d\\ude00\"}]", true, 1},
        {"[{" T ",\"type\":\"function\",\"record\":\"\\ud83d\"}]", false, 0},
        {"[{" T ",\"type\":\"function\",\"record\":\"\\ude00\"}]", false, 0},
        {"[{" T ",\"type\":\"function\",\"record\":\"\\ud83dx\\ude00\"}]", false, 0},
        {"[{" T ",\"type\":\"function\",\"record\":\"\\x\"}]", false, 0},
        {"[{" T ",\"type\":\"function\",\"record\":\"\\u12\"}]", false, 0},
        {"[{" T ",\"type\":\"function\",\"record\":\"\\u12\\\"ab\"}]", true, 1},
        {"[{" T ",\"type\":\"function\",\"record\":\"tab\there\x01\"}]", true, 1},
        {"[{\"ti\\u006de\":\"2022-10-12T00:00:00Z\",\"type\":\"function\",\"record\":\"k\"}]", true, 1},
        {"[{\"time\\u0000x\":\"2022-10-12T00:00:00Z\",\"type\":\"function\",\"record\":\"k\"}]", true, 1},
        {"[{\"time\":\"2022-10-12T00:00:00Z\\u0000junk\",\"type\":\"function\",\"record\":\"k\"}]", true, 1},
        {"[{\"time\":5,\"time\":\"2022-10-12T00:00:00Z\",\"type\":\"function\",\"record\":\"k\"}]", true, 0},
        {"[{" T ",\"type\":\"platform.report\",\"record\":{\"requestId\":\"a\",\"requestId\":\"b\","
         "\"tracing\":1,\"tracing\":{\"value\":\"v\"},\"metrics\":{\"durationMs\":1.25,"
         "\"durationMs\":2}}}]", true, 1},
        {"[{" T ",\"type\":\"platform.report\",\"record\":{\"status\":\"succ\\u0065ss\","
         "\"phase\":\"init\\u0000\",\"initializationType\":\"on-demand-and-a-very-long-tail-past-"
         "sixty-four-bytes-of-text\"}}]", true, 1},
        {"[{" T ",\"type\":\"platform.\\u0073tart\",\"record\":{}}]", true, 1},
        {"[{" T ",\"type\":\"a-type-name-longer-than-sixty-four-bytes-is-kept-whole-as-unknown-"
         "xxxxxxxxxx\",\"record\":null}]", true, 1},
        {"[{" T ",\"type\":\"function\",\"record\":\"a\",\"record\":}]", false, 0},
        {"[{" T ",\"type\":\"function\",\"record\":\"a\",}]", false, 0},
        {"[{" T ",\"type\":\"function\",\"record\":\"a\"},]", false, 0},
        {"[{" T " \"type\":\"function\",\"record\":\"a\"}]", false, 0},
        {"[{" T ",\"type\":\"function\",\"record\":[[{\"a\":[]}],{}]}]", true, 1},
        {"[{" T ",\"type\":\"function\",\"record\":{\"message\":\"m\"}}]", true, 1},
        {"[{" T ",\"type\":\"platform.runtimeDone\",\"record\":{\"spans\":[{\"name\":1},"
         "{\"start\":\"2022-10-12T00:00:00Z\",\"name\":\"s\",\"durationMs\":0.5},[],"
         "{\"name\":\"t\",\"start\":\"bad\"}]}}]", true, 1},
        {"[\"a\\", false, 0},
        {"[{\"a\"", false, 0},
        {"[{\"a\":", false, 0},
        {"[1,", false, 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tel_batch *b = NULL;
        size_t len = strlen(cases[i].in);
        bool accepted = same_as_reference(cases[i].in, len);

        if (accepted != cases[i].accepted)
            fail_msg("case %zu: accepted=%d, expected %d", i, accepted, cases[i].accepted);
        if (accepted) {
            assert_int_equal(tel_batch_parse(cases[i].in, len, &b), 0);
            assert_int_equal(b->count, cases[i].count);
            tel_batch_free(b);
        }
    }
}

/* A function line of n bytes with the escape esc (its decoded form dec)
 * at every offset: the string ends are found 32 and 16 bytes at a time,
 * so escapes and quotes land on every side of a chunk's edge.  Decoded in
 * place, the text is in the body, equal to the expected bytes, and equal
 * to the copying parser's. */
static void check_escape_everywhere(const char *esc, const char *dec, size_t n)
{
    bool cut = strcmp(esc, "\\u0000") == 0; /* the text ends at the NUL */
    static const char head[] = "[{\"time\":\"2022-10-12T00:00:00Z\",\"type\":\"function\",\"record\":\"";
    static const char tail[] = "\"}]";
    char body[512];
    char want[512];
    size_t esc_len = strlen(esc);
    size_t dec_len = strlen(dec);

    for (size_t at = 0; at <= n; at++) {
        size_t len = 0;
        size_t w = 0;
        struct tel_batch *b = NULL;
        struct tel_batch *c = NULL;

        memcpy(body, head, sizeof(head) - 1);
        len = sizeof(head) - 1;
        for (size_t i = 0; i < n; i++) {
            if (i == at) {
                memcpy(body + len, esc, esc_len);
                len += esc_len;
                memcpy(want + w, dec, dec_len);
                w += dec_len;
                if (cut)
                    want[w] = '\0';
            }
            body[len++] = (char)('a' + i % 26);
            if (!cut || i < at)
                want[w++] = (char)('a' + i % 26);
        }
        if (at == n) {
            memcpy(body + len, esc, esc_len);
            len += esc_len;
            memcpy(want + w, dec, dec_len);
            w += dec_len;
        }
        memcpy(body + len, tail, sizeof(tail) - 1);
        len += sizeof(tail) - 1;
        if (!cut || at == n)
            want[w] = '\0';
        assert_int_equal(tel_batch_parse(body, len, &c), 0);
        assert_int_equal(tel_batch_parse_inplace(body, len, &b, NULL), 0);
        assert_int_equal(b->count, 1);
        assert_true(inside(b->events[0].text, body, len));
        if (strcmp(b->events[0].text, want) != 0 || strcmp(c->events[0].text, want) != 0)
            fail_msg("escape %s at %zu of %zu: got \"%s\" / \"%s\"", esc, at, n, b->events[0].text,
                     c->events[0].text);
        tel_batch_free(b);
        tel_batch_free(c);
    }
}

static void test_in_place_decoding(void **state)
{
    (void)state;
    for (size_t n = 0; n <= 70; n += 7) {
        check_escape_everywhere("\\t", "\t", n);
        check_escape_everywhere("\\\"", "\"", n);
        check_escape_everywhere("\\\\", "\\", n);
        check_escape_everywhere("\\u00e9", "\xc3\xa9", n);
        check_escape_everywhere("\\u20ac", "\xe2\x82\xac", n);
        check_escape_everywhere("\\ud83d\\ude00", "\xf0\x9f\x98\x80", n);  /* a surrogate pair */
        check_escape_everywhere("\\u0000", "", n);                            /* cut at the NUL */
        check_escape_everywhere("\\n\\r\\t\\b\\f\\/", "\n\r\t\b\f/", n);
        check_escape_everywhere("\x01\x7f", "\x01\x7f", n);                     /* raw control bytes kept */
        check_escape_everywhere("\xff\xc3", "\xff\xc3", n);                     /* invalid UTF-8 kept as is */
    }
    /* a long clean run: no copy, the text starts where the string did */
    {
        static const char head[] = "[{\"time\":\"2022-10-12T00:00:00Z\",\"type\":\"function\",\"record\":\"";
        size_t n = 5000;
        char *body = malloc(sizeof(head) + n + 8);
        struct tel_batch *b = NULL;
        size_t len;

        assert_non_null(body);
        memcpy(body, head, sizeof(head) - 1);
        memset(body + sizeof(head) - 1, 'x', n);
        memcpy(body + sizeof(head) - 1 + n, "\"}]", 3);
        len = sizeof(head) - 1 + n + 3;
        assert_int_equal(tel_batch_parse_inplace(body, len, &b, NULL), 0);
        assert_ptr_equal(b->events[0].text, body + sizeof(head) - 1);
        assert_int_equal(strlen(b->events[0].text), n);
        tel_batch_free(b);
        free(body);
    }
}

/* The times of a batch share a date and hour read once: a change of any
 * of them, or a bad one after a good one, is still read right. */
static void test_times_in_a_batch(void **state)
{
    static const char body[] =
        "[{\"time\":\"2022-10-12T00:59:59.999Z\",\"type\":\"x\",\"record\":1},"
        "{\"time\":\"2022-10-12T01:00:00Z\",\"type\":\"x\",\"record\":1},"
        "{\"time\":\"2022-10-12T01:00:01+01:00\",\"type\":\"x\",\"record\":1},"
        "{\"time\":\"2022-10-13T01:00:00Z\",\"type\":\"x\",\"record\":1},"
        "{\"time\":\"2022-10-13T01\",\"type\":\"x\",\"record\":1},"
        "{\"time\":\"2022-10-13T01:00:0\",\"type\":\"x\",\"record\":1},"
        "{\"time\":\"2022-02-29T01:00:00Z\",\"type\":\"x\",\"record\":1},"
        "{\"time\":\"2024-02-29T01:00:00Z\",\"type\":\"x\",\"record\":1},"
        "{\"time\":\"2022-10-1\",\"type\":\"x\",\"record\":1},"
        "{\"time\":\"2024-02-29T01:00:00.5Z\",\"type\":\"x\",\"record\":1}]";
    static const int64_t want[] = {1665536399999000, 1665536400000000, 1665532801000000,
                                   1665622800000000, 1709168400000000, 1709168400500000};
    struct tel_batch *b = parse_ok(body);
    (void)state;

    assert_int_equal(b->count, 6);
    assert_int_equal(b->invalid, 4);
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(b->events[i].time_us, want[i]);
    tel_batch_free(b);
}

/* Nesting: 1,000 containers parse, 1,001 do not (cJSON's limit, kept). */
static void test_nesting_limit(void **state)
{
    static char body[4200];
    (void)state;
    for (int depth = 999; depth <= 1001; depth++) {
        size_t n = 0;
        for (int i = 0; i < depth; i++)
            body[n++] = '[';
        for (int i = 0; i < depth; i++)
            body[n++] = ']';
        body[n] = '\0';
        assert_int_equal(same_as_reference(body, n), depth <= 1000);
    }
}

/* Numbers: the scanner's own reading of plain decimals agrees with
 * strtod's (through the reference) on random values of every length. */
static void test_numbers_match_the_reference(void **state)
{
    char body[512];
    unsigned long x = 987654321;
    (void)state;
    for (int i = 0; i < 20000; i++) {
        char num[40];
        int intlen, fraclen, n = 0;
        x = x * 6364136223846793005UL + 1442695040888963407UL;
        intlen = 1 + (int)((x >> 40) % 12);
        fraclen = (int)((x >> 50) % 10);
        if ((x >> 20) % 4 == 0)
            num[n++] = '-';
        for (int k = 0; k < intlen; k++) {
            x = x * 6364136223846793005UL + 1442695040888963407UL;
            num[n++] = (char)('0' + (x >> 33) % 10);
        }
        if (fraclen > 0) {
            num[n++] = '.';
            for (int k = 0; k < fraclen; k++) {
                x = x * 6364136223846793005UL + 1442695040888963407UL;
                num[n++] = (char)('0' + (x >> 33) % 10);
            }
        }
        num[n] = '\0';
        snprintf(body, sizeof(body),
                 "[{\"time\":\"2022-10-12T00:00:00Z\",\"type\":\"platform.report\",\"record\":{"
                 "\"instanceMaxMemory\":%s,\"metrics\":{\"durationMs\":%s,\"producedBytes\":%s}}}]",
                 num, num, num);
        assert_true(same_as_reference(body, strlen(body)));
    }
}

/* Random edits of real batches, always against the reference. */
static void test_mutations_match_the_reference(void **state)
{
    static const char *const seeds[] = {
        "[{\"time\":\"2024-05-20T16:29:45.019Z\",\"type\":\"platform.runtimeDone\",\"record\":{"
        "\"requestId\":\"4b142fc3\",\"status\":\"success\",\"spans\":[{\"name\":\"responseLatency\","
        "\"start\":\"2024-05-20T16:29:45.008Z\",\"durationMs\":2.2}],\"tracing\":{\"value\":"
        "\"Root=1-5\",\"spanId\":\"ab\"},\"metrics\":{\"durationMs\":12.5,\"producedBytes\":7}}},"
        "{\"time\":\"2024-05-20T16:29:45.020Z\",\"type\":\"function\",\"record\":"
        "\"2024\\tid\\tINFO\\t\\u00e9t\\u00e9 \\ud83d\\ude00\\n\"}]",
        "[{\"time\":\"2022-10-12T00:00:15.064Z\",\"type\":\"platform.initStart\",\"record\":{"
        "\"initializationType\":\"on-demand\",\"phase\":\"init\",\"runtimeVersion\":\"python:3.12\","
        "\"functionName\":\"f\",\"functionVersion\":\"$LATEST\",\"instanceId\":\"i\","
        "\"instanceMaxMemory\":134217728}},{\"time\":\"2022-10-12T00:00:16Z\",\"type\":"
        "\"platform.logsDropped\",\"record\":{\"reason\":\"r\",\"droppedRecords\":3,"
        "\"droppedBytes\":1e3}},{\"time\":\"2022-10-12T00:00:17+01:00\",\"type\":\"platform.report\","
        "\"record\":{\"requestId\":\"x\",\"status\":\"timeout\",\"errorType\":\"Sandbox.Timedout\","
        "\"metrics\":{\"durationMs\":3000.0,\"billedDurationMs\":3000,\"memorySizeMB\":128,"
        "\"maxMemoryUsedMB\":60,\"initDurationMs\":200.5}}}]",
    };
    static const char alphabet[] = "\"\\{}[],:u0123456789abcdefABCDEF-+.eE tnrbf/\x01\x7f\xd8\xdc";
    char buf[2048];
    char tmp[2048];
    unsigned long x = 12345;
    size_t accepted = 0;
    (void)state;
    for (int iter = 0; iter < 40000; iter++) {
        const char *seed = seeds[iter % 2];
        size_t len = strlen(seed);
        int edits = 1 + (int)((x >> 33) % 4);

        memcpy(buf, seed, len);
        for (int e = 0; e < edits; e++) {
            size_t pos;
            char c;
            x = x * 6364136223846793005UL + 1442695040888963407UL;
            pos = (size_t)(x >> 33) % len;
            c = alphabet[(x >> 20) % (sizeof(alphabet) - 1)];
            switch ((x >> 12) % 3) {
            case 0: /* replace */
                buf[pos] = c;
                break;
            /* through a second buffer, not memmove: valgrind takes the
             * fortified memmove for an overlapping memcpy */
            case 1: /* insert */
                if (len + 1 < sizeof(buf)) {
                    memcpy(tmp, buf, pos);
                    tmp[pos] = c;
                    memcpy(tmp + pos + 1, buf + pos, len - pos);
                    len++;
                    memcpy(buf, tmp, len);
                }
                break;
            default: /* delete */
                memcpy(tmp, buf, pos);
                memcpy(tmp + pos, buf + pos + 1, len - pos - 1);
                len--;
                memcpy(buf, tmp, len);
                break;
            }
        }
        accepted += same_as_reference(buf, len);
    }
    /* Both kinds of outcome were exercised, not just refusals. */
    assert_true(accepted > 1000 && accepted < 39000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_time),
        cmocka_unit_test(test_real_cold_start_records),
        cmocka_unit_test(test_failures_and_other_types),
        cmocka_unit_test(test_tenant_id),
        cmocka_unit_test(test_extension_events),
        cmocka_unit_test(test_wrong_types_are_tolerated),
        cmocka_unit_test(test_invalid_elements_are_counted),
        cmocka_unit_test(test_not_an_array_is_rejected),
        cmocka_unit_test(test_large_strings_use_own_blocks),
        cmocka_unit_test(test_out_of_memory_everywhere),
        cmocka_unit_test(test_spares_are_reused_and_released),
        cmocka_unit_test(test_quirks_match_the_reference),
        cmocka_unit_test(test_nesting_limit),
        cmocka_unit_test(test_refusal_says_what_and_where),
        cmocka_unit_test(test_numbers_match_the_reference),
        cmocka_unit_test(test_mutations_match_the_reference),
        cmocka_unit_test(test_in_place_decoding),
        cmocka_unit_test(test_times_in_a_batch),
    };
    return cmocka_run_group_tests_name("telemetry", tests, NULL, NULL);
}
