/* Unit tests for refusal.c: what an endpoint's refusal says, quoted safely. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "refusal.h"

static void describe(long status, const char *hdr, const char *body, const char *perm, char *out, size_t size)
{
    refusal_describe(status, hdr, body, body != NULL ? strlen(body) : 0, perm, out, size);
}

static void test_xray_access_denied_names_type_message_and_permission(void **state)
{
    char out[512];
    (void)state;
    describe(403, "AccessDeniedException:http://internal.amazon.com/coral/com.amazon.coral.service/",
             "{\"__type\":\"com.amazon.coral.service#AccessDeniedException\",\"message\":\"User: "
             "arn:aws:sts::123:assumed-role/r/f is not authorized to perform: xray:PutTraceSegments\"}",
             "xray:PutTraceSegments", out, sizeof(out));
    assert_string_equal(out, "HTTP 403 AccessDeniedException: User: arn:aws:sts::123:assumed-role/r/f is not "
                             "authorized to perform: xray:PutTraceSegments; the function's role needs "
                             "xray:PutTraceSegments");
}

static void test_type_from_header_when_body_has_none(void **state)
{
    char out[256];
    (void)state;
    describe(403, "AccessDeniedException:http://x", "", "xray:PutTraceSegments", out, sizeof(out));
    assert_string_equal(out, "HTTP 403 AccessDeniedException; the function's role needs xray:PutTraceSegments");
    /* no body, no header: the status, and the permission on a 403 */
    describe(403, "", NULL, "xray:PutTraceSegments", out, sizeof(out));
    assert_string_equal(out, "HTTP 403; the function's role needs xray:PutTraceSegments");
    /* another 4xx names no permission */
    describe(400, NULL, "{\"__type\": \"InvalidRequestException\" , \"Message\" : \"bad\"}",
             "xray:PutTraceSegments", out, sizeof(out));
    assert_string_equal(out, "HTTP 400 InvalidRequestException: bad");
    /* no permission known (OTLP): none named */
    describe(403, NULL, "{\"code\":7,\"message\":\"forbidden\"}", NULL, out, sizeof(out));
    assert_string_equal(out, "HTTP 403: forbidden");
}

static void test_otlp_protobuf_and_text_bodies(void **state)
{
    char out[256];
    /* google.rpc.Status{code: 3, message: "bad span"} */
    static const char proto[] = "\x08\x03\x12\x08" "bad span";
    (void)state;
    refusal_describe(400, NULL, proto, sizeof(proto) - 1, NULL, out, sizeof(out));
    assert_string_equal(out, "HTTP 400: bad span");
    describe(401, NULL, "Unauthorized", NULL, out, sizeof(out));
    assert_string_equal(out, "HTTP 401: Unauthorized");
    /* binary that is no Status: not quoted */
    static const char junk[] = "\x12\x7f\x01";
    refusal_describe(400, NULL, junk, sizeof(junk) - 1, NULL, out, sizeof(out));
    assert_string_equal(out, "HTTP 400");
}

static void test_hostile_bodies_stay_one_capped_line(void **state)
{
    char out[1024];
    char big[4096];
    (void)state;
    /* a forged log line inside the message is escaped */
    describe(403, "Evil\nType:x", "{\"message\":\"no\\nway\nERROR fake\r\"}", NULL, out, sizeof(out));
    assert_null(strchr(out, '\n'));
    assert_null(strchr(out, '\r'));
    assert_non_null(strstr(out, "no way ERROR fake "));
    assert_non_null(strstr(out, "Evil Type"));
    /* a long message is cut at REFUSAL_MESSAGE_MAX and marked */
    memset(big, 'm', sizeof(big));
    memcpy(big, "{\"message\":\"", 12);
    big[sizeof(big) - 3] = '"';
    big[sizeof(big) - 2] = '}';
    big[sizeof(big) - 1] = '\0';
    describe(400, NULL, big, NULL, out, sizeof(out));
    assert_true(strlen(out) <= strlen("HTTP 400: ") + REFUSAL_MESSAGE_MAX + 3);
    assert_string_equal(out + strlen(out) - 3, "...");
    /* an unterminated string is not quoted; a tiny buffer stays terminated */
    describe(400, NULL, "{\"message\":\"abc", NULL, out, sizeof(out));
    assert_string_equal(out, "HTTP 400");
    describe(403, "AccessDenied", "{\"message\":\"x\"}", "xray:PutTraceSegments", out, 8);
    assert_int_equal(strlen(out), 7);
    refusal_describe(403, NULL, NULL, 99, NULL, out, sizeof(out)); /* NULL body with a length */
    assert_string_equal(out, "HTTP 403");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xray_access_denied_names_type_message_and_permission),
        cmocka_unit_test(test_type_from_header_when_body_has_none),
        cmocka_unit_test(test_otlp_protobuf_and_text_bodies),
        cmocka_unit_test(test_hostile_bodies_stay_one_capped_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
