/* Unit tests for ext_event.c: INVOKE / SHUTDOWN as Lambda sends them. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "ext_event.h"
#include "fail_alloc.h"

static int parse(const char *s, struct ext_event *ev)
{
    return ext_event_parse(s, strlen(s), ev);
}

static void test_invoke_real_payload(void **state)
{
    struct ext_event ev;
    (void)state;
    /* June 2022 capture shape (reference 1.5) */
    assert_int_equal(parse("{\"eventType\":\"INVOKE\",\"deadlineMs\":1654468766618,"
                           "\"requestId\":\"dbdb0d38-24e5-45eb-ad4f-3234faaa30d5\","
                           "\"invokedFunctionArn\":\"arn:aws:lambda:us-east-1:123456789012:function:ExtensionTest\","
                           "\"tracing\":{\"type\":\"X-Amzn-Trace-Id\",\"value\":"
                           "\"Root=1-629d3097-1edcadf06b4c097a50faa7a1;Parent=2a68d66d2a726db8;Sampled=0\"}}",
                           &ev),
                     0);
    assert_int_equal(ev.type, EXT_EVENT_INVOKE);
    assert_true(ev.deadline_ms == 1654468766618LL);
    assert_string_equal(ev.request_id, "dbdb0d38-24e5-45eb-ad4f-3234faaa30d5");
    assert_string_equal(ev.invoked_function_arn,
                        "arn:aws:lambda:us-east-1:123456789012:function:ExtensionTest");
    assert_string_equal(ev.trace_header,
                        "Root=1-629d3097-1edcadf06b4c097a50faa7a1;Parent=2a68d66d2a726db8;Sampled=0");
}

static void test_invoke_without_tracing(void **state)
{
    struct ext_event ev;
    (void)state;
    assert_int_equal(parse("{\"eventType\":\"INVOKE\",\"deadlineMs\":1,\"requestId\":\"r\"}", &ev), 0);
    assert_string_equal(ev.trace_header, "");
    assert_string_equal(ev.invoked_function_arn, "");
}

static void test_shutdown_reasons_any_case(void **state)
{
    struct ext_event ev;
    (void)state;
    assert_int_equal(parse("{\"eventType\":\"SHUTDOWN\",\"deadlineMs\":1654469121614,"
                           "\"shutdownReason\":\"spindown\"}", &ev), 0);
    assert_int_equal(ev.type, EXT_EVENT_SHUTDOWN);
    assert_int_equal(ev.shutdown_reason, EXT_SHUTDOWN_SPINDOWN);
    assert_true(ev.deadline_ms == 1654469121614LL);
    /* the docs' upper-case form and string deadline */
    assert_int_equal(parse("{\"eventType\":\"SHUTDOWN\",\"deadlineMs\":\"1654469121614\","
                           "\"shutdownReason\":\"TIMEOUT\"}", &ev), 0);
    assert_int_equal(ev.shutdown_reason, EXT_SHUTDOWN_TIMEOUT);
    assert_true(ev.deadline_ms == 1654469121614LL);
    assert_int_equal(parse("{\"eventType\":\"SHUTDOWN\",\"shutdownReason\":\"Failure\"}", &ev), 0);
    assert_int_equal(ev.shutdown_reason, EXT_SHUTDOWN_FAILURE);
    assert_int_equal(ev.deadline_ms, 0);
    assert_int_equal(parse("{\"eventType\":\"SHUTDOWN\",\"shutdownReason\":\"meteor\"}", &ev), 0);
    assert_int_equal(ev.shutdown_reason, EXT_SHUTDOWN_UNKNOWN);
    assert_string_equal(ext_shutdown_reason_name(EXT_SHUTDOWN_TIMEOUT), "timeout");
}

/* AWS's RIE sends SandboxTerminated when it gets SIGTERM; any case is
 * accepted as for the other reasons, near misses are not. */
static void test_shutdown_reason_sandbox_terminated(void **state)
{
    static const char *const same[] = {"SandboxTerminated", "sandboxterminated", "SANDBOXTERMINATED"};
    static const char *const near[] = {"SandboxTerminate", "SandboxTerminated ", " SandboxTerminated",
                                       "Sandbox Terminated", "SandboxTerminatedX", "Sandbox.Terminated", ""};
    char body[160];
    struct ext_event ev;
    (void)state;
    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
        snprintf(body, sizeof(body),
                 "{\"eventType\":\"SHUTDOWN\",\"deadlineMs\":1796220256460,\"shutdownReason\":\"%s\"}", same[i]);
        assert_int_equal(parse(body, &ev), 0);
        assert_int_equal(ev.shutdown_reason, EXT_SHUTDOWN_SANDBOX_TERMINATED);
        assert_true(ev.deadline_ms == 1796220256460LL);
    }
    for (size_t i = 0; i < sizeof(near) / sizeof(near[0]); i++) {
        snprintf(body, sizeof(body), "{\"eventType\":\"SHUTDOWN\",\"shutdownReason\":\"%s\"}", near[i]);
        assert_int_equal(parse(body, &ev), 0);
        assert_int_equal(ev.shutdown_reason, EXT_SHUTDOWN_UNKNOWN);
    }
    /* not a string: unknown, the event itself still accepted */
    assert_int_equal(parse("{\"eventType\":\"SHUTDOWN\",\"shutdownReason\":[\"SandboxTerminated\"]}", &ev), 0);
    assert_int_equal(ev.shutdown_reason, EXT_SHUTDOWN_UNKNOWN);
    /* an INVOKE never carries a shutdown reason */
    assert_int_equal(parse("{\"eventType\":\"INVOKE\",\"requestId\":\"r\",\"shutdownReason\":\"SandboxTerminated\"}",
                           &ev), 0);
    assert_int_equal(ev.shutdown_reason, EXT_SHUTDOWN_UNKNOWN);
}

/* Every reason's name is the wire spelling and parses back to it; the
 * names are distinct, and only UNKNOWN is "unknown". */
static void test_shutdown_reason_names_round_trip(void **state)
{
    static const enum ext_shutdown_reason all[] = {EXT_SHUTDOWN_SPINDOWN, EXT_SHUTDOWN_TIMEOUT,
                                                   EXT_SHUTDOWN_FAILURE, EXT_SHUTDOWN_SANDBOX_TERMINATED};
    static const char *const wire[] = {"spindown", "timeout", "failure", "SandboxTerminated"};
    char body[128];
    struct ext_event ev;
    (void)state;
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        const char *name = ext_shutdown_reason_name(all[i]);
        assert_string_equal(name, wire[i]);
        snprintf(body, sizeof(body), "{\"eventType\":\"SHUTDOWN\",\"shutdownReason\":\"%s\"}", name);
        assert_int_equal(parse(body, &ev), 0);
        assert_int_equal(ev.shutdown_reason, all[i]);
        for (size_t k = 0; k < i; k++)
            assert_string_not_equal(name, ext_shutdown_reason_name(all[k]));
    }
    assert_string_equal(ext_shutdown_reason_name(EXT_SHUTDOWN_UNKNOWN), "unknown");
    assert_string_equal(ext_shutdown_reason_name((enum ext_shutdown_reason)99), "unknown");
}

static void test_rejects_bad_events(void **state)
{
    struct ext_event ev;
    char big[EVENT_REQUEST_ID_MAX + 80];
    (void)state;
    assert_int_equal(parse("", &ev), -EPROTO);
    assert_int_equal(parse("[]", &ev), -EPROTO);
    assert_int_equal(parse("{\"eventType\":\"RESTORE\"}", &ev), -EPROTO);
    assert_int_equal(parse("{\"eventType\":5}", &ev), -EPROTO);
    assert_int_equal(parse("{\"eventType\":\"INVOKE\"}", &ev), -EPROTO);
    assert_int_equal(parse("{\"eventType\":\"INVOKE\",\"requestId\":\"\"}", &ev), -EPROTO);
    assert_int_equal(parse("{\"eventType\":\"INVOKE\",\"requestId\":\"x\"", &ev), -EPROTO);
    /* a request id that does not fit is an error, not a truncated id */
    snprintf(big, sizeof(big), "{\"eventType\":\"INVOKE\",\"requestId\":\"%0*d\"}",
             EVENT_REQUEST_ID_MAX, 0);
    assert_int_equal(parse(big, &ev), -EPROTO);
    assert_int_equal(ext_event_parse(NULL, 0, &ev), -EPROTO);
}

static void test_oversized_trace_header_is_dropped(void **state)
{
    struct ext_event ev;
    char body[EVENT_TRACE_HEADER_MAX + 200];
    char header[EVENT_TRACE_HEADER_MAX + 10];
    (void)state;
    memset(header, 'a', sizeof(header) - 1);
    header[sizeof(header) - 1] = '\0';
    snprintf(body, sizeof(body),
             "{\"eventType\":\"INVOKE\",\"requestId\":\"r\",\"tracing\":{\"value\":\"%s\"}}", header);
    assert_int_equal(parse(body, &ev), 0);
    assert_string_equal(ev.trace_header, "");
}

static void test_bad_deadlines_are_ignored(void **state)
{
    struct ext_event ev;
    (void)state;
    assert_int_equal(parse("{\"eventType\":\"SHUTDOWN\",\"deadlineMs\":-5}", &ev), 0);
    assert_int_equal(ev.deadline_ms, 0);
    assert_int_equal(parse("{\"eventType\":\"SHUTDOWN\",\"deadlineMs\":1e300}", &ev), 0);
    assert_int_equal(ev.deadline_ms, 0);
    assert_int_equal(parse("{\"eventType\":\"SHUTDOWN\",\"deadlineMs\":\"12x\"}", &ev), 0);
    assert_int_equal(ev.deadline_ms, 0);
}

/* Found by fuzz_ext_event: strtoll saturated an overflowing string to
 * LLONG_MAX, which was kept as the deadline, while the same value as a
 * number was refused. */
static void test_string_deadline_has_the_number_bounds(void **state)
{
    struct ext_event ev;
    (void)state;
    assert_int_equal(parse("{\"eventType\":\"SHUTDOWN\",\"deadlineMs\":\"99999999999999999999\"}", &ev), 0);
    assert_int_equal(ev.deadline_ms, 0);
    assert_int_equal(parse("{\"eventType\":\"SHUTDOWN\",\"deadlineMs\":\"9000000000000001\"}", &ev), 0);
    assert_int_equal(ev.deadline_ms, 0);
    assert_int_equal(parse("{\"eventType\":\"SHUTDOWN\",\"deadlineMs\":9000000000000001}", &ev), 0);
    assert_int_equal(ev.deadline_ms, 0);
    assert_int_equal(parse("{\"eventType\":\"SHUTDOWN\",\"deadlineMs\":\"8999999999999999\"}", &ev), 0);
    assert_true(ev.deadline_ms == 8999999999999999LL);
}

static void test_out_of_memory_fails_cleanly(void **state)
{
    const char *s = "{\"eventType\":\"INVOKE\",\"deadlineMs\":1,\"requestId\":\"r\","
                    "\"tracing\":{\"value\":\"Root=1\"}}";
    struct ext_event ev;
    (void)state;
    fail_alloc_hook_cjson();
    for (unsigned long n = 1;; n++) {
        fail_alloc_reset();
        fail_alloc_fail_at(n);
        int r = parse(s, &ev);
        assert_int_equal(fail_alloc_live(), 0);
        if (r == 0)
            break;
        assert_int_equal(r, -EPROTO); /* cJSON reports OOM as a parse failure */
        assert_true(n < 100);
    }
    fail_alloc_reset();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_invoke_real_payload),
        cmocka_unit_test(test_invoke_without_tracing),
        cmocka_unit_test(test_shutdown_reasons_any_case),
        cmocka_unit_test(test_shutdown_reason_sandbox_terminated),
        cmocka_unit_test(test_shutdown_reason_names_round_trip),
        cmocka_unit_test(test_rejects_bad_events),
        cmocka_unit_test(test_oversized_trace_header_is_dropped),
        cmocka_unit_test(test_bad_deadlines_are_ignored),
        cmocka_unit_test(test_string_deadline_has_the_number_bounds),
        cmocka_unit_test(test_out_of_memory_fails_cleanly),
    };
    return cmocka_run_group_tests_name("ext_event", tests, NULL, NULL);
}
