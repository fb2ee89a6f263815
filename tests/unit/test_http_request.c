/*
 * Unit tests for http_request: the strict incremental HTTP/1.1 parser.
 *
 * Every accepted and every rejected request in the tables below is parsed
 * whole and again split into pieces of 1, 2, 3 and 7 bytes; the outcome must
 * not depend on how recv() happened to cut the stream.  Every test also
 * checks that the parser returned every block it allocated.
 */
#include "http_request.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fail_alloc.h"

#define HEAD_CAP 1024
#define BODY_CAP 4096

/* --- allocation seam ------------------------------------------------------ */

/* The module is compiled with tests/unit/fail_alloc.h force-included, so its
 * malloc/realloc/free go through counters that can fail the Nth allocation
 * and report how many blocks are live. */
static int reset_alloc_state(void **state)
{
    (void)state;
    fail_alloc_reset();
    return 0;
}

/* Called at the end of every test (not from a teardown, so a failed
 * assertion that skips a destroy is reported as itself, not as a leak). */
static void assert_no_leak(void)
{
    assert_int_equal(fail_alloc_live(), 0);
}

/* --- helpers -------------------------------------------------------------- */

static const size_t split_steps[] = {0, 1, 2, 3, 7};
#define N_STEPS (sizeof(split_steps) / sizeof(split_steps[0]))

/* Feed data in pieces of step bytes (0: all at once) until the parser stops
 * asking for more.  Writes the total consumed. */
static int feed_in_steps(struct http_request *req, const char *data, size_t len, size_t step,
                         size_t *ret_consumed)
{
    size_t off = 0;
    int rc = HTTP_REQUEST_INCOMPLETE;

    while (off < len) {
        size_t n = (step == 0 || step > len - off) ? len - off : step;
        size_t used = SIZE_MAX;

        rc = http_request_feed(req, data + off, n, &used);
        assert_true(used <= n);
        off += used;
        if (rc != HTTP_REQUEST_INCOMPLETE)
            break;
        /* INCOMPLETE means every byte was taken. */
        assert_int_equal(used, n);
    }
    *ret_consumed = off;
    return rc;
}

static void assert_body(const struct http_request *req, const char *want, size_t want_len)
{
    size_t len = SIZE_MAX;
    const char *body = http_request_body(req, &len);

    assert_non_null(body);
    assert_int_equal(len, want_len);
    assert_memory_equal(body, want, want_len);
    assert_int_equal(body[len], '\0');
}

/* Parse input (one request, exactly) at every split and check the result. */
static void check_valid(const char *input, size_t len, size_t head_cap, size_t body_cap,
                        const char *method, const char *target, const char *body, size_t body_len,
                        bool keep_alive)
{
    for (size_t s = 0; s < N_STEPS; s++) {
        struct http_request *req = http_request_new(head_cap, body_cap);
        size_t consumed = 0;
        int rc;

        assert_non_null(req);
        rc = feed_in_steps(req, input, len, split_steps[s], &consumed);
        if (rc != HTTP_REQUEST_COMPLETE)
            print_error("step %zu: rc %d after %zu of %zu bytes\n", split_steps[s], rc, consumed,
                        len);
        assert_int_equal(rc, HTTP_REQUEST_COMPLETE);
        assert_int_equal(consumed, len);
        assert_true(http_request_headers_done(req));
        assert_false(http_request_in_progress(req));
        assert_string_equal(http_request_method(req), method);
        assert_string_equal(http_request_target(req), target);
        assert_body(req, body, body_len);
        assert_int_equal(http_request_keep_alive(req), keep_alive);
        assert_false(http_request_expects_continue(req));
        http_request_destroy(req);
        assert_no_leak();
    }
}

/* Parse input at every split and expect error err, sticky afterwards. */
static void check_error(const char *input, size_t len, size_t head_cap, size_t body_cap, int err)
{
    for (size_t s = 0; s < N_STEPS; s++) {
        struct http_request *req = http_request_new(head_cap, body_cap);
        size_t consumed = 0, used = SIZE_MAX;
        int rc;

        assert_non_null(req);
        rc = feed_in_steps(req, input, len, split_steps[s], &consumed);
        if (rc != err)
            print_error("step %zu: rc %d after %zu of %zu bytes, want %d\n", split_steps[s], rc,
                        consumed, len, err);
        assert_int_equal(rc, err);
        /* Sticky: the same error, nothing consumed. */
        assert_int_equal(http_request_feed(req, "GET / HTTP/1.1\r\n\r\n", 18, &used), err);
        assert_int_equal(used, 0);
        assert_false(http_request_headers_done(req));
        assert_false(http_request_keep_alive(req));
        assert_false(http_request_in_progress(req));
        assert_false(http_request_expects_continue(req));
        http_request_destroy(req);
        assert_no_leak();
    }
}

/* --- table of accepted requests ------------------------------------------- */

struct valid_case {
    const char *name;
    const char *input;
    size_t input_len;
    const char *method;
    const char *target;
    const char *body;
    size_t body_len;
    bool keep_alive;
};

#define VALID(name, input, method, target, body, keep_alive)                                       \
    {                                                                                              \
        name, input, sizeof(input) - 1, method, target, body, sizeof(body) - 1, keep_alive         \
    }

static struct valid_case valid_cases[] = {
    VALID("get_minimal", "GET / HTTP/1.1\r\n\r\n", "GET", "/", "", true),
    VALID("post_content_length",
          "POST /telemetry HTTP/1.1\r\nHost: sandbox.localdomain:4243\r\n"
          "Content-Length: 12\r\nContent-Type: application/json\r\n\r\n"
          "[{\"a\":true}]",
          "POST", "/telemetry", "[{\"a\":true}]", true),
    VALID("post_chunked",
          "POST /telemetry HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
          "5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n",
          "POST", "/telemetry", "hello, world", true),
    VALID("chunked_extensions_and_trailers",
          "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
          "4;a=b\r\nWiki\r\n5;c=\"d;e\";flag\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n"
          "0;last\r\nX-Checksum: abc\r\nX-Empty:\r\n\r\n",
          "POST", "/", "Wikipedia in\r\n\r\nchunks.", true),
    VALID("chunked_uppercase_hex_leading_zeros",
          "POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n"
          "0000A\r\n0123456789\r\n00\r\n\r\n",
          "POST", "/", "0123456789", true),
    VALID("chunked_empty", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "POST",
          "/", "", true),
    VALID("chunked_sixteen_digit_size",
          "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
          "0000000000000003\r\nabc\r\n0\r\n\r\n",
          "POST", "/", "abc", true),
    VALID("leading_empty_lines_skipped", "\r\n\r\nGET /x HTTP/1.1\r\n\r\n", "GET", "/x", "", true),
    VALID("http10_closes_by_default", "GET / HTTP/1.0\r\n\r\n", "GET", "/", "", false),
    VALID("http10_keep_alive",
          "POST /a HTTP/1.0\r\nConnection: Keep-Alive\r\nContent-Length: 3\r\n\r\nabc", "POST",
          "/a", "abc", true),
    VALID("http10_keep_alive_in_list", "GET / HTTP/1.0\r\nConnection: foo ,keep-alive\r\n\r\n",
          "GET", "/", "", true),
    VALID("http10_keep_alive_and_close",
          "GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", "GET", "/", "",
          false),
    VALID("http11_connection_close", "GET / HTTP/1.1\r\nConnection: close\r\n\r\n", "GET", "/", "",
          false),
    VALID("http11_close_in_list", "GET / HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n", "GET",
          "/", "", false),
    VALID("http11_closed_is_not_close", "GET / HTTP/1.1\r\nConnection: closed\r\n\r\n", "GET", "/",
          "", true),
    VALID("duplicate_agreeing_content_length",
          "PUT / HTTP/1.1\r\nContent-Length: 3\r\ncontent-length: 003\r\n\r\nabc", "PUT", "/",
          "abc", true),
    VALID("content_length_zero", "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "POST", "/", "",
          true),
    VALID("absolute_form_target",
          "POST http://sandbox.localdomain:4243/telemetry?x=1 HTTP/1.1\r\nContent-Length: 2\r\n\r\n"
          "[]",
          "POST", "http://sandbox.localdomain:4243/telemetry?x=1", "[]", true),
    VALID("ows_and_tabs_around_values",
          "POST / HTTP/1.1\r\nContent-Length:\t 3 \t\r\nX-A:   \r\n\r\nabc", "POST", "/", "abc",
          true),
    VALID("obs_text_in_value", "GET / HTTP/1.1\r\nX-Name: caf\xc3\xa9\r\n\r\n", "GET", "/", "",
          true),
    VALID("body_containing_crlf", "POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\n\r\n\r\n", "POST",
          "/", "\r\n\r\n", true),
    VALID("body_containing_nul", "POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\na\0b", "POST", "/",
          "a\0b", true),
    VALID("expect_100_continue_with_body_in_same_read",
          "POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}", "POST", "/",
          "{}", true),
    VALID("unknown_method_token", "M-SEARCH * HTTP/1.1\r\n\r\n", "M-SEARCH", "*", "", true),
};

static void test_valid_case(void **state)
{
    const struct valid_case *c = *state;

    check_valid(c->input, c->input_len, HEAD_CAP, BODY_CAP, c->method, c->target, c->body,
                c->body_len, c->keep_alive);
    assert_no_leak();
}

/* --- table of rejected requests ------------------------------------------- */

struct error_case {
    const char *name;
    const char *input;
    size_t input_len;
    int err;
};

#define ERROR_CASE(name, input, err)                                                               \
    {                                                                                              \
        name, input, sizeof(input) - 1, err                                                        \
    }
#define CHUNKED_HEAD "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"

static struct error_case error_cases[] = {
    /* line endings */
    ERROR_CASE("bare_lf_request_line", "GET / HTTP/1.1\n\r\n", -EPROTO),
    ERROR_CASE("bare_lf_header", "GET / HTTP/1.1\r\nHost: x\n\r\n", -EPROTO),
    ERROR_CASE("bare_lf_end_of_headers", "GET / HTTP/1.1\r\nHost: x\r\n\n", -EPROTO),
    ERROR_CASE("bare_lf_leading_line", "\nGET / HTTP/1.1\r\n\r\n", -EPROTO),
    ERROR_CASE("bare_cr_in_value", "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", -EPROTO),
    ERROR_CASE("bare_cr_in_target", "GET /a\rb HTTP/1.1\r\n\r\n", -EPROTO),
    ERROR_CASE("cr_cr_lf", "GET / HTTP/1.1\r\r\n\r\n", -EPROTO),
    /* request line */
    ERROR_CASE("lowercase_version", "GET / http/1.1\r\n\r\n", -EPROTO),
    ERROR_CASE("version_trailing_space", "GET / HTTP/1.1 \r\n\r\n", -EPROTO),
    ERROR_CASE("version_without_minor", "GET / HTTP/1\r\n\r\n", -EPROTO),
    ERROR_CASE("version_two_digit_major", "GET / HTTP/11.1\r\n\r\n", -EPROTO),
    ERROR_CASE("http09_request", "GET /\r\n\r\n", -EPROTO),
    ERROR_CASE("http2_version", "GET / HTTP/2.0\r\n\r\n", -EPROTONOSUPPORT),
    ERROR_CASE("http12_version", "GET / HTTP/1.2\r\n\r\n", -EPROTONOSUPPORT),
    ERROR_CASE("http09_version", "GET / HTTP/0.9\r\n\r\n", -EPROTONOSUPPORT),
    ERROR_CASE("double_space", "GET  / HTTP/1.1\r\n\r\n", -EPROTO),
    ERROR_CASE("leading_space", " GET / HTTP/1.1\r\n\r\n", -EPROTO),
    ERROR_CASE("tab_separator", "GET\t/ HTTP/1.1\r\n\r\n", -EPROTO),
    ERROR_CASE("method_bad_char", "G(T / HTTP/1.1\r\n\r\n", -EPROTO),
    ERROR_CASE("missing_target", "GET HTTP/1.1\r\n\r\n", -EPROTO),
    ERROR_CASE("space_in_target", "GET /a b HTTP/1.1\r\n\r\n", -EPROTO),
    ERROR_CASE("control_in_target", "GET /a\x01 HTTP/1.1\r\n\r\n", -EPROTO),
    ERROR_CASE("obs_text_in_target", "GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n", -EPROTO),
    ERROR_CASE("nul_in_method", "G\0T / HTTP/1.1\r\n\r\n", -EPROTO),
    /* header fields */
    ERROR_CASE("space_before_colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", -EPROTO),
    ERROR_CASE("no_colon", "GET / HTTP/1.1\r\nHost x\r\n\r\n", -EPROTO),
    ERROR_CASE("empty_name", "GET / HTTP/1.1\r\n: x\r\n\r\n", -EPROTO),
    ERROR_CASE("obs_fold", "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", -EPROTO),
    ERROR_CASE("obs_fold_tab", "GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n", -EPROTO),
    ERROR_CASE("whitespace_before_first_field", "GET / HTTP/1.1\r\n Host: x\r\n\r\n", -EPROTO),
    ERROR_CASE("nul_in_value", "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n", -EPROTO),
    ERROR_CASE("control_in_value", "GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n", -EPROTO),
    ERROR_CASE("del_in_value", "GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n", -EPROTO),
    ERROR_CASE("non_token_name", "GET / HTTP/1.1\r\nX(y): a\r\n\r\n", -EPROTO),
    /* Content-Length */
    ERROR_CASE("cl_trailing_letter", "POST / HTTP/1.1\r\nContent-Length: 3a\r\n\r\nabc", -EPROTO),
    ERROR_CASE("cl_negative", "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", -EPROTO),
    ERROR_CASE("cl_plus_sign", "POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\nabc", -EPROTO),
    ERROR_CASE("cl_empty", "POST / HTTP/1.1\r\nContent-Length: \r\n\r\n", -EPROTO),
    ERROR_CASE("cl_list", "POST / HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\nabc", -EPROTO),
    ERROR_CASE("cl_inner_space", "POST / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n", -EPROTO),
    ERROR_CASE("cl_hex", "POST / HTTP/1.1\r\nContent-Length: 0x3\r\n\r\nabc", -EPROTO),
    ERROR_CASE("cl_overflow", "POST / HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\n",
               -EPROTO),
    ERROR_CASE("cl_huge_overflow",
               "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999999\r\n\r\n", -EPROTO),
    ERROR_CASE("cl_max_u64_over_cap",
               "POST / HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\n", -EMSGSIZE),
    ERROR_CASE("cl_conflicting",
               "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", -EPROTO),
    /* Transfer-Encoding */
    ERROR_CASE("cl_then_te",
               "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
               "0\r\n\r\n",
               -EPROTO),
    ERROR_CASE("te_then_cl",
               "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
               "0\r\n\r\n",
               -EPROTO),
    ERROR_CASE("cl_zero_with_te",
               "POST / HTTP/1.1\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n",
               -EPROTO),
    ERROR_CASE("te_gzip", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", -ENOTSUP),
    ERROR_CASE("te_gzip_chunked", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
               -ENOTSUP),
    ERROR_CASE("te_chunked_gzip", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
               -ENOTSUP),
    ERROR_CASE("te_identity", "POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n", -ENOTSUP),
    ERROR_CASE("te_empty", "POST / HTTP/1.1\r\nTransfer-Encoding: \r\n\r\n", -ENOTSUP),
    ERROR_CASE(
        "te_chunked_twice",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        -EPROTO),
    ERROR_CASE("te_in_http10", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
               -EPROTO),
    /* chunked framing */
    ERROR_CASE("chunk_size_not_hex", CHUNKED_HEAD "zz\r\n", -EPROTO),
    ERROR_CASE("chunk_size_missing", CHUNKED_HEAD "\r\nhello\r\n", -EPROTO),
    ERROR_CASE("chunk_size_trailing_space", CHUNKED_HEAD "5 \r\nhello\r\n0\r\n\r\n", -EPROTO),
    ERROR_CASE("chunk_size_leading_space", CHUNKED_HEAD " 5\r\nhello\r\n0\r\n\r\n", -EPROTO),
    ERROR_CASE("chunk_size_negative", CHUNKED_HEAD "-5\r\nhello\r\n0\r\n\r\n", -EPROTO),
    ERROR_CASE("chunk_size_hex_prefix", CHUNKED_HEAD "0x5\r\nhello\r\n0\r\n\r\n", -EPROTO),
    ERROR_CASE("chunk_size_17_digits", CHUNKED_HEAD "00000000000000005\r\nhello\r\n0\r\n\r\n",
               -EPROTO),
    ERROR_CASE("chunk_size_over_u64", CHUNKED_HEAD "FFFFFFFFFFFFFFFFF\r\n", -EMSGSIZE),
    ERROR_CASE("chunk_size_bare_lf", CHUNKED_HEAD "5\nhello\r\n0\r\n\r\n", -EPROTO),
    ERROR_CASE("chunk_size_cr_without_lf", CHUNKED_HEAD "5\rxhello\r\n0\r\n\r\n", -EPROTO),
    ERROR_CASE("chunk_data_too_long", CHUNKED_HEAD "5\r\nhelloX\r\n0\r\n\r\n", -EPROTO),
    ERROR_CASE("chunk_data_cr_only", CHUNKED_HEAD "5\r\nhello\rX0\r\n\r\n", -EPROTO),
    ERROR_CASE("chunk_data_wrong_byte_then_lf", CHUNKED_HEAD "5\r\nhelloX\n0\r\n\r\n", -EPROTO),
    ERROR_CASE("chunk_data_bare_lf", CHUNKED_HEAD "5\r\nhello\n0\r\n\r\n", -EPROTO),
    ERROR_CASE("chunk_ext_control", CHUNKED_HEAD "5;a\x01\r\nhello\r\n0\r\n\r\n", -EPROTO),
    ERROR_CASE("chunk_ext_bare_lf", CHUNKED_HEAD "5;a\nhello\r\n0\r\n\r\n", -EPROTO),
    ERROR_CASE("trailer_obs_fold", CHUNKED_HEAD "0\r\nX: a\r\n b\r\n\r\n", -EPROTO),
    ERROR_CASE("trailer_no_colon", CHUNKED_HEAD "0\r\nbogus\r\n\r\n", -EPROTO),
    ERROR_CASE("trailer_bare_lf", CHUNKED_HEAD "0\r\nX: a\n\r\n", -EPROTO),
    ERROR_CASE("last_chunk_bare_lf_end", CHUNKED_HEAD "0\r\n\n", -EPROTO),
};

static void test_error_case(void **state)
{
    const struct error_case *c = *state;

    check_error(c->input, c->input_len, HEAD_CAP, BODY_CAP, c->err);
    assert_no_leak();
}

/* --- dedicated tests ------------------------------------------------------ */

static void test_new_rejects_bad_caps(void **state)
{
    (void)state;
    assert_null(http_request_new(0, BODY_CAP));
    assert_null(http_request_new(HTTP_REQUEST_MAX_HEADER_CAP + 1, BODY_CAP));
    assert_null(http_request_new(HEAD_CAP, SIZE_MAX));
    assert_int_equal(fail_alloc_live(), 0);
    http_request_destroy(NULL);
    assert_no_leak();
}

static void test_fresh_parser_state(void **state)
{
    struct http_request *req = http_request_new(HEAD_CAP, BODY_CAP);
    size_t len = 1, used = 1;

    (void)state;
    assert_non_null(req);
    assert_false(http_request_headers_done(req));
    assert_false(http_request_in_progress(req));
    assert_false(http_request_keep_alive(req));
    assert_false(http_request_expects_continue(req));
    assert_null(http_request_method(req));
    assert_null(http_request_target(req));
    assert_null(http_request_header(req, "Host"));
    assert_string_equal(http_request_body(req, &len), "");
    assert_int_equal(len, 0);
    assert_int_equal(http_request_feed(req, NULL, 0, &used), HTTP_REQUEST_INCOMPLETE);
    assert_int_equal(used, 0);
    assert_false(http_request_in_progress(req));
    http_request_destroy(req);
    assert_no_leak();
}

/* A real Telemetry API delivery, shaped like the Go client's. */
static void test_realistic_telemetry_post(void **state)
{
    static const char body[] =
        "[{\"time\":\"2022-10-12T00:03:50.000Z\",\"type\":\"platform.start\","
        "\"record\":{\"requestId\":\"6d68ca91-49c9-448d-89b8-7ca3e6dc66aa\",\"version\":\"$"
        "LATEST\"}},"
        "{\"time\":\"2022-10-12T00:03:50.010Z\",\"type\":\"function\",\"record\":\"hello\\n\"}]";
    char input[1024];
    int n;

    (void)state;
    n = snprintf(input, sizeof(input),
                 "POST / HTTP/1.1\r\nHost: sandbox.localdomain:4243\r\n"
                 "User-Agent: Go-http-client/1.1\r\nContent-Length: %zu\r\n"
                 "Content-Type: application/json\r\nAccept-Encoding: gzip\r\n\r\n%s",
                 sizeof(body) - 1, body);
    assert_true(n > 0 && (size_t)n < sizeof(input));
    check_valid(input, (size_t)n, HEAD_CAP, BODY_CAP, "POST", "/", body, sizeof(body) - 1, true);
    assert_no_leak();
}

static void test_header_lookup(void **state)
{
    static const char input[] = "GET /q HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Pad: \t v w \t\r\n"
                                "x-dup: first\r\nX-Dup: second\r\n\r\n";
    struct http_request *req = http_request_new(HEAD_CAP, BODY_CAP);
    size_t used;

    (void)state;
    assert_non_null(req);
    assert_int_equal(http_request_feed(req, input, sizeof(input) - 1, &used),
                     HTTP_REQUEST_COMPLETE);
    assert_string_equal(http_request_header(req, "host"), "a");
    assert_string_equal(http_request_header(req, "HOST"), "a");
    assert_string_equal(http_request_header(req, "X-Empty"), "");
    assert_string_equal(http_request_header(req, "x-pad"), "v w");
    assert_string_equal(http_request_header(req, "X-Dup"), "first");
    assert_null(http_request_header(req, "X-Missing"));
    assert_null(http_request_header(req, "Hos"));
    assert_null(http_request_header(req, NULL));
    http_request_destroy(req);
    assert_no_leak();
}

static void test_trailers_not_visible_as_headers(void **state)
{
    static const char input[] = CHUNKED_HEAD "0\r\nX-Trailer: t\r\n\r\n";
    struct http_request *req = http_request_new(HEAD_CAP, BODY_CAP);
    size_t used;

    (void)state;
    assert_non_null(req);
    assert_int_equal(http_request_feed(req, input, sizeof(input) - 1, &used),
                     HTTP_REQUEST_COMPLETE);
    assert_null(http_request_header(req, "X-Trailer"));
    assert_string_equal(http_request_header(req, "Transfer-Encoding"), "chunked");
    http_request_destroy(req);
    assert_no_leak();
}

/* Three pipelined requests in one read: each COMPLETE consumes exactly its
 * own bytes; reset, then feed the rest. */
static void test_pipelined_requests(void **state)
{
    static const char r1[] = "POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
    static const char r2[] = "POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "2\r\nde\r\n0\r\nT: 1\r\n\r\n";
    static const char r3[] = "GET /c HTTP/1.1\r\nConnection: close\r\n\r\n";
    char all[sizeof(r1) + sizeof(r2) + sizeof(r3)];
    size_t len1 = sizeof(r1) - 1, len2 = sizeof(r2) - 1, len3 = sizeof(r3) - 1;
    size_t total = len1 + len2 + len3, used = 0;
    struct http_request *req = http_request_new(HEAD_CAP, BODY_CAP);

    (void)state;
    assert_non_null(req);
    memcpy(all, r1, len1);
    memcpy(all + len1, r2, len2);
    memcpy(all + len1 + len2, r3, len3);

    assert_int_equal(http_request_feed(req, all, total, &used), HTTP_REQUEST_COMPLETE);
    assert_int_equal(used, len1);
    assert_string_equal(http_request_target(req), "/a");
    assert_body(req, "abc", 3);
    assert_true(http_request_keep_alive(req));
    /* Complete and not reset: nothing more is taken. */
    assert_int_equal(http_request_feed(req, all + len1, total - len1, &used),
                     HTTP_REQUEST_COMPLETE);
    assert_int_equal(used, 0);

    http_request_reset(req);
    assert_false(http_request_headers_done(req));
    assert_null(http_request_target(req));
    assert_int_equal(http_request_feed(req, all + len1, total - len1, &used),
                     HTTP_REQUEST_COMPLETE);
    assert_int_equal(used, len2);
    assert_string_equal(http_request_target(req), "/b");
    assert_body(req, "de", 2);

    http_request_reset(req);
    assert_int_equal(http_request_feed(req, all + len1 + len2, len3, &used), HTTP_REQUEST_COMPLETE);
    assert_int_equal(used, len3);
    assert_string_equal(http_request_target(req), "/c");
    assert_body(req, "", 0);
    assert_false(http_request_keep_alive(req));
    http_request_destroy(req);
    assert_no_leak();
}

/* The same pipeline fed one byte at a time, resetting at each COMPLETE. */
static void test_pipelined_byte_at_a_time(void **state)
{
    static const char all[] = "POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
                              "POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "2\r\nde\r\n0\r\n\r\n"
                              "\r\nGET /c HTTP/1.1\r\n\r\n";
    static const char *const targets[] = {"/a", "/b", "/c"};
    static const char *const bodies[] = {"abc", "de", ""};
    struct http_request *req = http_request_new(HEAD_CAP, BODY_CAP);
    size_t done = 0;

    (void)state;
    assert_non_null(req);
    for (size_t i = 0; i < sizeof(all) - 1; i++) {
        size_t used;
        int rc = http_request_feed(req, all + i, 1, &used);

        assert_int_equal(used, 1);
        assert_true(rc == HTTP_REQUEST_INCOMPLETE || rc == HTTP_REQUEST_COMPLETE);
        assert_true(http_request_in_progress(req) == (rc == HTTP_REQUEST_INCOMPLETE));
        if (rc == HTTP_REQUEST_COMPLETE) {
            assert_true(done < 3);
            assert_string_equal(http_request_target(req), targets[done]);
            assert_body(req, bodies[done], strlen(bodies[done]));
            done++;
            http_request_reset(req);
        }
    }
    assert_int_equal(done, 3);
    http_request_destroy(req);
    assert_no_leak();
}

static void test_expect_continue_content_length(void **state)
{
    static const char head[] =
        "POST / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\n";
    struct http_request *req = http_request_new(HEAD_CAP, BODY_CAP);
    size_t used;

    (void)state;
    assert_non_null(req);
    /* Not before the header section is done. */
    assert_int_equal(http_request_feed(req, head, sizeof(head) - 2, &used),
                     HTTP_REQUEST_INCOMPLETE);
    assert_false(http_request_expects_continue(req));
    assert_int_equal(http_request_feed(req, head + sizeof(head) - 2, 1, &used),
                     HTTP_REQUEST_INCOMPLETE);
    assert_true(http_request_headers_done(req));
    assert_true(http_request_expects_continue(req));
    assert_string_equal(http_request_method(req), "POST");
    /* Once body bytes flow the client is not waiting any more. */
    assert_int_equal(http_request_feed(req, "{", 1, &used), HTTP_REQUEST_INCOMPLETE);
    assert_false(http_request_expects_continue(req));
    assert_int_equal(http_request_feed(req, "}", 1, &used), HTTP_REQUEST_COMPLETE);
    assert_false(http_request_expects_continue(req));
    assert_body(req, "{}", 2);
    http_request_destroy(req);
    assert_no_leak();
}

static void test_expect_continue_chunked(void **state)
{
    static const char head[] = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
                               "Expect: 100-continue\r\n\r\n";
    struct http_request *req = http_request_new(HEAD_CAP, BODY_CAP);
    size_t used;

    (void)state;
    assert_non_null(req);
    assert_int_equal(http_request_feed(req, head, sizeof(head) - 1, &used),
                     HTTP_REQUEST_INCOMPLETE);
    assert_true(http_request_expects_continue(req));
    assert_int_equal(http_request_feed(req, "0", 1, &used), HTTP_REQUEST_INCOMPLETE);
    assert_false(http_request_expects_continue(req));
    http_request_destroy(req);
    assert_no_leak();
}

/* No 100 Continue when there is no body to wait for, for HTTP/1.0, or for an
 * expectation we do not know. */
static void test_expect_continue_not_needed(void **state)
{
    static const char *const heads[] = {
        "POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n",
        "POST / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
        "POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
        "POST / HTTP/1.1\r\nExpect: 200-ok\r\nContent-Length: 2\r\n\r\n",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
        struct http_request *req = http_request_new(HEAD_CAP, BODY_CAP);
        size_t used;
        int rc;

        assert_non_null(req);
        rc = http_request_feed(req, heads[i], strlen(heads[i]), &used);
        assert_true(rc == HTTP_REQUEST_INCOMPLETE || rc == HTTP_REQUEST_COMPLETE);
        assert_true(http_request_headers_done(req));
        assert_false(http_request_expects_continue(req));
        http_request_destroy(req);
    }
    assert_no_leak();
}

static void test_in_progress(void **state)
{
    struct http_request *req = http_request_new(HEAD_CAP, BODY_CAP);
    size_t used;

    (void)state;
    assert_non_null(req);
    /* An empty line before the request line already starts a request. */
    assert_int_equal(http_request_feed(req, "\r\n", 2, &used), HTTP_REQUEST_INCOMPLETE);
    assert_true(http_request_in_progress(req));
    assert_int_equal(http_request_feed(req, "GET / HTTP/1.1\r\n\r", 17, &used),
                     HTTP_REQUEST_INCOMPLETE);
    assert_true(http_request_in_progress(req));
    assert_int_equal(http_request_feed(req, "\n", 1, &used), HTTP_REQUEST_COMPLETE);
    assert_false(http_request_in_progress(req));
    http_request_reset(req);
    assert_false(http_request_in_progress(req));
    assert_int_equal(http_request_feed(req, "G", 1, &used), HTTP_REQUEST_INCOMPLETE);
    assert_true(http_request_in_progress(req));
    http_request_destroy(req);
    assert_no_leak();
}

/* A refused request still tells what it was, for the caller's log line. */
static void test_error_keeps_request_line(void **state)
{
    static const char input[] = "POST /t HTTP/1.1\r\nContent-Length: 99999\r\n\r\n";
    struct http_request *req = http_request_new(HEAD_CAP, BODY_CAP);
    size_t used;

    (void)state;
    assert_non_null(req);
    assert_int_equal(http_request_feed(req, input, sizeof(input) - 1, &used), -EMSGSIZE);
    assert_string_equal(http_request_method(req), "POST");
    assert_string_equal(http_request_target(req), "/t");
    assert_false(http_request_keep_alive(req));
    /* Reset makes the parser usable again. */
    http_request_reset(req);
    assert_int_equal(http_request_feed(req, "GET / HTTP/1.1\r\n\r\n", 18, &used),
                     HTTP_REQUEST_COMPLETE);
    http_request_destroy(req);
    assert_no_leak();
}

/* Build "GET / HTTP/1.1\r\nX: aaa...\r\n\r\n" of exactly total bytes. */
static size_t build_padded_request(char *buf, size_t cap, size_t total)
{
    static const char start[] = "GET / HTTP/1.1\r\nX: ";
    size_t fixed = sizeof(start) - 1 + 4;

    assert_true(total >= fixed && total <= cap);
    memcpy(buf, start, sizeof(start) - 1);
    memset(buf + sizeof(start) - 1, 'a', total - fixed);
    memcpy(buf + total - 4, "\r\n\r\n", 4);
    return total;
}

static void test_header_cap_exact_and_over(void **state)
{
    char buf[128];
    size_t len;

    (void)state;
    len = build_padded_request(buf, sizeof(buf), 64);
    check_valid(buf, len, 64, BODY_CAP, "GET", "/", "", 0, true);
    len = build_padded_request(buf, sizeof(buf), 65);
    check_error(buf, len, 64, BODY_CAP, -E2BIG);
    assert_no_leak();
}

/* A line that never ends fails as soon as it passes the cap. */
static void test_header_cap_without_newline(void **state)
{
    char buf[65];
    struct http_request *req = http_request_new(64, BODY_CAP);
    size_t used;

    (void)state;
    assert_non_null(req);
    memset(buf, 'A', sizeof(buf));
    for (size_t i = 0; i < 64; i++)
        assert_int_equal(http_request_feed(req, buf + i, 1, &used), HTTP_REQUEST_INCOMPLETE);
    assert_int_equal(http_request_feed(req, buf + 64, 1, &used), -E2BIG);
    http_request_destroy(req);
    assert_no_leak();
}

static void test_header_cap_counts_leading_empty_lines(void **state)
{
    char buf[200];
    size_t n = 0;

    (void)state;
    for (int i = 0; i < 40; i++) {
        buf[n++] = '\r';
        buf[n++] = '\n';
    }
    memcpy(buf + n, "GET / HTTP/1.1\r\n\r\n", 18);
    n += 18;
    check_error(buf, n, 64, BODY_CAP, -E2BIG);
    check_valid(buf, n, 98, BODY_CAP, "GET", "/", "", 0, true);
    assert_no_leak();
}

static void test_header_cap_counts_trailers(void **state)
{
    static const char input[] = CHUNKED_HEAD "0\r\nX-Trailer: 0123456789\r\n\r\n";
    size_t head = sizeof(CHUNKED_HEAD) - 1;

    (void)state;
    /* Head plus trailer section (23 + 2 bytes) fits exactly, one less fails. */
    check_valid(input, sizeof(input) - 1, head + 25, BODY_CAP, "POST", "/", "", 0, true);
    check_error(input, sizeof(input) - 1, head + 24, BODY_CAP, -E2BIG);
    assert_no_leak();
}

static void test_too_many_fields(void **state)
{
    char buf[2048];
    size_t n;

    (void)state;
    for (size_t fields = HTTP_REQUEST_MAX_FIELDS; fields <= HTTP_REQUEST_MAX_FIELDS + 1; fields++) {
        memcpy(buf, "GET / HTTP/1.1\r\n", 16);
        n = 16;
        for (size_t i = 0; i < fields; i++) {
            memcpy(buf + n, "X: 1\r\n", 6);
            n += 6;
        }
        memcpy(buf + n, "\r\n", 2);
        n += 2;
        if (fields == HTTP_REQUEST_MAX_FIELDS)
            check_valid(buf, n, sizeof(buf), BODY_CAP, "GET", "/", "", 0, true);
        else
            check_error(buf, n, sizeof(buf), BODY_CAP, -E2BIG);
    }
    assert_no_leak();
}

static void test_body_cap_content_length(void **state)
{
    static const char at_cap[] = "POST / HTTP/1.1\r\nContent-Length: 16\r\n\r\n0123456789abcdef";
    static const char over_head[] = "POST / HTTP/1.1\r\nContent-Length: 17\r\n\r\n";
    struct http_request *req;
    size_t used;

    (void)state;
    check_valid(at_cap, sizeof(at_cap) - 1, HEAD_CAP, 16, "POST", "/", "0123456789abcdef", 16,
                true);
    /* Over the cap: refused on the header section alone, before any body
     * byte arrives. */
    check_error(over_head, sizeof(over_head) - 1, HEAD_CAP, 16, -EMSGSIZE);
    req = http_request_new(HEAD_CAP, 16);
    assert_non_null(req);
    assert_int_equal(http_request_feed(req, over_head, sizeof(over_head) - 1, &used), -EMSGSIZE);
    assert_int_equal(used, sizeof(over_head) - 1);
    http_request_destroy(req);
    assert_no_leak();
}

static void test_body_cap_chunked(void **state)
{
    static const char at_cap[] = CHUNKED_HEAD "10\r\n0123456789abcdef\r\n0\r\n\r\n";
    /* The size line alone takes the body over the cap: refused at its second
     * digit, before the data. */
    static const char first_chunk_over[] = CHUNKED_HEAD "11";
    /* The second chunk's size takes the running total over. */
    static const char running_total_over[] = CHUNKED_HEAD "8\r\n01234567\r\n9";
    static const char many_small_over[] = CHUNKED_HEAD "8\r\n01234567\r\n8\r\n01234567\r\n1";

    (void)state;
    check_valid(at_cap, sizeof(at_cap) - 1, HEAD_CAP, 16, "POST", "/", "0123456789abcdef", 16,
                true);
    check_error(first_chunk_over, sizeof(first_chunk_over) - 1, HEAD_CAP, 16, -EMSGSIZE);
    check_error(running_total_over, sizeof(running_total_over) - 1, HEAD_CAP, 16, -EMSGSIZE);
    check_error(many_small_over, sizeof(many_small_over) - 1, HEAD_CAP, 16, -EMSGSIZE);
    assert_no_leak();
}

static void test_zero_body_cap(void **state)
{
    static const char cl0[] = "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
    static const char chunked0[] = CHUNKED_HEAD "0\r\n\r\n";
    static const char cl1[] = "POST / HTTP/1.1\r\nContent-Length: 1\r\n\r\n";
    static const char chunked1[] = CHUNKED_HEAD "1";

    (void)state;
    check_valid(cl0, sizeof(cl0) - 1, HEAD_CAP, 0, "POST", "/", "", 0, true);
    check_valid(chunked0, sizeof(chunked0) - 1, HEAD_CAP, 0, "POST", "/", "", 0, true);
    check_error(cl1, sizeof(cl1) - 1, HEAD_CAP, 0, -EMSGSIZE);
    check_error(chunked1, sizeof(chunked1) - 1, HEAD_CAP, 0, -EMSGSIZE);
    assert_no_leak();
}

static void test_chunk_extension_cap(void **state)
{
    char buf[HTTP_REQUEST_MAX_CHUNK_EXT_BYTES + 128];
    size_t head = sizeof(CHUNKED_HEAD) - 1, n;

    (void)state;
    for (size_t ext = HTTP_REQUEST_MAX_CHUNK_EXT_BYTES; ext <= HTTP_REQUEST_MAX_CHUNK_EXT_BYTES + 1;
         ext++) {
        memcpy(buf, CHUNKED_HEAD, head);
        n = head;
        buf[n++] = '0';
        buf[n++] = ';';
        /* The ';' itself counts as extension text too. */
        memset(buf + n, 'e', ext - 1);
        n += ext - 1;
        memcpy(buf + n, "\r\n\r\n", 4);
        n += 4;
        if (ext == HTTP_REQUEST_MAX_CHUNK_EXT_BYTES)
            check_valid(buf, n, HEAD_CAP, BODY_CAP, "POST", "/", "", 0, true);
        else
            check_error(buf, n, HEAD_CAP, BODY_CAP, -EPROTO);
    }
    assert_no_leak();
}

/* A body that needs several buffer growths, both framings. */
static void test_large_bodies(void **state)
{
    enum { BODY_BYTES = 100000 };
    static char input[BODY_BYTES + 1024];
    static char body[BODY_BYTES];
    size_t n;
    int len;

    (void)state;
    for (size_t i = 0; i < BODY_BYTES; i++)
        body[i] = (char)('a' + i % 26);

    len =
        snprintf(input, sizeof(input), "POST / HTTP/1.1\r\nContent-Length: %d\r\n\r\n", BODY_BYTES);
    assert_true(len > 0);
    n = (size_t)len;
    memcpy(input + n, body, BODY_BYTES);
    n += BODY_BYTES;
    check_valid(input, n, HEAD_CAP, BODY_BYTES, "POST", "/", body, BODY_BYTES, true);

    /* Chunked, in chunks of 1000 (0x3e8) bytes. */
    n = sizeof(CHUNKED_HEAD) - 1;
    memcpy(input, CHUNKED_HEAD, n);
    for (size_t off = 0; off < BODY_BYTES; off += 1000) {
        memcpy(input + n, "3e8\r\n", 5);
        n += 5;
        memcpy(input + n, body + off, 1000);
        n += 1000;
        memcpy(input + n, "\r\n", 2);
        n += 2;
    }
    memcpy(input + n, "0\r\n\r\n", 5);
    n += 5;
    check_valid(input, n, HEAD_CAP, BODY_BYTES, "POST", "/", body, BODY_BYTES, true);
    check_error(input, n, HEAD_CAP, BODY_BYTES - 1, -EMSGSIZE);
    assert_no_leak();
}

/* Small buffers are kept across reset (no allocation for the next small
 * request); a big body buffer is released. */
static void test_reset_retains_small_releases_large(void **state)
{
    static const char small[] = "POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789";
    static char big[40000 + 64];
    struct http_request *req = http_request_new(HEAD_CAP, 100000);
    unsigned long allocs_before;
    size_t used;
    int n;

    (void)state;
    assert_non_null(req);
    assert_int_equal(fail_alloc_live(), 1);
    assert_int_equal(http_request_feed(req, small, sizeof(small) - 1, &used),
                     HTTP_REQUEST_COMPLETE);
    assert_int_equal(fail_alloc_live(), 3);
    http_request_reset(req);
    assert_int_equal(fail_alloc_live(), 3);
    assert_body(req, "", 0);

    allocs_before = fail_alloc_count();
    assert_int_equal(http_request_feed(req, small, sizeof(small) - 1, &used),
                     HTTP_REQUEST_COMPLETE);
    assert_int_equal(fail_alloc_count(), allocs_before);
    http_request_reset(req);

    n = snprintf(big, sizeof(big), "POST / HTTP/1.1\r\nContent-Length: 40000\r\n\r\n");
    assert_true(n > 0);
    memset(big + n, 'x', 40000);
    assert_int_equal(http_request_feed(req, big, (size_t)n + 40000, &used), HTTP_REQUEST_COMPLETE);
    assert_int_equal(fail_alloc_live(), 3);
    http_request_reset(req);
    assert_int_equal(fail_alloc_live(), 2);
    assert_body(req, "", 0);
    http_request_destroy(req);
    assert_int_equal(fail_alloc_live(), 0);
    assert_no_leak();
}

/* A big header section is released on reset too. */
static void test_reset_releases_large_head(void **state)
{
    static char input[8192];
    struct http_request *req = http_request_new(sizeof(input), BODY_CAP);
    size_t len = build_padded_request(input, sizeof(input), sizeof(input)), used;

    (void)state;
    assert_non_null(req);
    assert_int_equal(http_request_feed(req, input, len, &used), HTTP_REQUEST_COMPLETE);
    assert_int_equal(fail_alloc_live(), 2);
    http_request_reset(req);
    assert_int_equal(fail_alloc_live(), 1);
    assert_int_equal(http_request_feed(req, "GET / HTTP/1.1\r\n\r\n", 18, &used),
                     HTTP_REQUEST_COMPLETE);
    http_request_destroy(req);
    assert_no_leak();
}

static void test_take_body(void **state)
{
    static const char input[] = "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
    static const char empty[] = "GET / HTTP/1.1\r\n\r\n";
    struct http_request *req = http_request_new(HEAD_CAP, BODY_CAP);
    char *body = NULL;
    size_t len = 99, used;

    (void)state;
    assert_non_null(req);
    assert_int_equal(http_request_feed(req, input, 10, &used), HTTP_REQUEST_INCOMPLETE);
    assert_int_equal(http_request_take_body(req, &body, &len), -EINVAL);
    assert_null(body);
    assert_int_equal(len, 99);
    assert_int_equal(http_request_feed(req, input + 10, sizeof(input) - 11, &used),
                     HTTP_REQUEST_COMPLETE);
    assert_int_equal(http_request_take_body(req, &body, &len), 0);
    assert_int_equal(len, 5);
    assert_string_equal(body, "hello");
    assert_body(req, "", 0);
    fail_alloc_free(body);
    http_request_reset(req);

    /* An empty body still comes as its own buffer. */
    assert_int_equal(http_request_feed(req, empty, sizeof(empty) - 1, &used),
                     HTTP_REQUEST_COMPLETE);
    body = NULL;
    assert_int_equal(http_request_take_body(req, &body, &len), 0);
    assert_non_null(body);
    assert_int_equal(len, 0);
    assert_string_equal(body, "");
    fail_alloc_free(body);

    /* ... and when that allocation fails nothing is written. */
    body = NULL;
    len = 99;
    fail_alloc_fail_at(1);
    assert_int_equal(http_request_take_body(req, &body, &len), -ENOMEM);
    fail_alloc_fail_at(0);
    assert_null(body);
    assert_int_equal(len, 99);
    http_request_destroy(req);
    assert_no_leak();
}

/* Fail every allocation in turn, whole and byte by byte: the parser reports
 * -ENOMEM, stays failed, and leaks nothing (cmocka checks each block). */
static void test_allocation_failures(void **state)
{
    enum { BODY_BYTES = 20000 };
    static char input[BODY_BYTES + 256];
    size_t n = sizeof(CHUNKED_HEAD) - 1;

    (void)state;
    memcpy(input, CHUNKED_HEAD, n);
    memcpy(input + n, "4e20\r\n", 6);
    n += 6;
    memset(input + n, 'z', BODY_BYTES);
    n += BODY_BYTES;
    memcpy(input + n, "\r\n0\r\n\r\n", 7);
    n += 7;

    for (size_t step = 0; step <= 1; step++) {
        long failures = 0;

        for (unsigned long nth = 1;; nth++) {
            struct http_request *req;
            size_t consumed;
            bool reached;
            int rc;

            fail_alloc_reset();
            fail_alloc_fail_at(nth);
            req = http_request_new(HEAD_CAP, BODY_BYTES);
            if (!req) {
                assert_int_equal(nth, 1);
                assert_int_equal(fail_alloc_live(), 0);
                failures++;
                continue;
            }
            rc = feed_in_steps(req, input, n, step, &consumed);
            reached = fail_alloc_count() >= nth;
            fail_alloc_fail_at(0);
            if (rc == -ENOMEM) {
                size_t used;

                failures++;
                assert_true(reached);
                assert_int_equal(http_request_feed(req, input, n, &used), -ENOMEM);
                assert_int_equal(used, 0);
                assert_false(http_request_keep_alive(req));
            } else {
                /* Only a run in which the armed allocation never came may
                 * succeed: then every allocation has been failed once. */
                assert_int_equal(rc, HTTP_REQUEST_COMPLETE);
                assert_false(reached);
                assert_body(req, input + sizeof(CHUNKED_HEAD) - 1 + 6, BODY_BYTES);
            }
            http_request_destroy(req);
            assert_int_equal(fail_alloc_live(), 0);
            if (rc == HTTP_REQUEST_COMPLETE)
                break;
        }
        /* Whole: struct, head, one body allocation.  Byte by byte: the body
         * also grows 4 KiB, 8 KiB, 16 KiB, 20 KiB. */
        assert_true(failures >= (step == 0 ? 3 : 6));
    }
    assert_no_leak();
}

static void test_error_status_and_reason(void **state)
{
    (void)state;
    assert_int_equal(http_request_error_status(-EPROTO), 400);
    assert_int_equal(http_request_error_status(-E2BIG), 431);
    assert_int_equal(http_request_error_status(-EMSGSIZE), 413);
    assert_int_equal(http_request_error_status(-ENOTSUP), 501);
    assert_int_equal(http_request_error_status(-EPROTONOSUPPORT), 505);
    assert_int_equal(http_request_error_status(-ENOMEM), 500);
    assert_int_equal(http_request_error_status(-EINVAL), 500);
    assert_string_equal(http_request_error_reason(-EPROTO), "Bad Request");
    assert_string_equal(http_request_error_reason(-E2BIG), "Request Header Fields Too Large");
    assert_string_equal(http_request_error_reason(-EMSGSIZE), "Content Too Large");
    assert_string_equal(http_request_error_reason(-ENOTSUP), "Not Implemented");
    assert_string_equal(http_request_error_reason(-EPROTONOSUPPORT), "HTTP Version Not Supported");
    assert_string_equal(http_request_error_reason(-ENOMEM), "Internal Server Error");
    assert_no_leak();
}

/* --- runner --------------------------------------------------------------- */

#define N_VALID (sizeof(valid_cases) / sizeof(valid_cases[0]))
#define N_ERROR (sizeof(error_cases) / sizeof(error_cases[0]))

/* A buffer handed to the parser receives the next body in place (no new
 * allocation when Content-Length fits); one that cannot help is refused;
 * a larger Content-Length gets one allocation of exactly its size. */
static void test_given_body_buffer(void **state)
{
    struct http_request *req = http_request_new(1024, 100000);
    static const char one[] = "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
    char *buf = malloc(64);
    char *body = NULL;
    size_t len = 0, used = 0;
    unsigned long allocs;
    (void)state;

    assert_non_null(req);
    assert_false(http_request_give_body_buffer(req, buf, 0));
    assert_true(http_request_give_body_buffer(req, buf, 64));
    allocs = fail_alloc_count();
    assert_int_equal(http_request_feed(req, one, sizeof(one) - 1, &used), HTTP_REQUEST_COMPLETE);
    assert_int_equal(http_request_take_body(req, &body, &len), 0);
    assert_ptr_equal(body, buf);
    assert_int_equal(len, 5);
    assert_memory_equal(body, "hello", 5);
    http_request_reset(req);
    /* mid-body: refused, the caller keeps its buffer */
    static const char part[] = "POST / HTTP/1.1\r\nContent-Length: 20000\r\n\r\nab";
    assert_true(http_request_feed(req, part, sizeof(part) - 1, &used) >= 0);
    assert_false(http_request_give_body_buffer(req, body, 64));
    free(body);
    http_request_reset(req);
    /* 20,000 bytes arriving in pieces: one allocation, not a doubling series */
    static const char head[] = "POST / HTTP/1.1\r\nContent-Length: 20000\r\n\r\n";
    char piece[1000];
    memset(piece, 'x', sizeof(piece));
    assert_int_equal(http_request_feed(req, head, sizeof(head) - 1, &used), HTTP_REQUEST_INCOMPLETE);
    allocs = fail_alloc_count();
    for (int i = 0; i < 20; i++)
        assert_true(http_request_feed(req, piece, sizeof(piece), &used) >= 0);
    assert_int_equal(fail_alloc_count() - allocs, 1);
    assert_int_equal(http_request_take_body(req, &body, &len), 0);
    assert_int_equal(len, 20000);
    free(body);
    http_request_destroy(req);
}

static const struct CMUnitTest fixed_tests[] = {
    cmocka_unit_test_setup(test_new_rejects_bad_caps, reset_alloc_state),
    cmocka_unit_test_setup(test_fresh_parser_state, reset_alloc_state),
    cmocka_unit_test_setup(test_realistic_telemetry_post, reset_alloc_state),
    cmocka_unit_test_setup(test_header_lookup, reset_alloc_state),
    cmocka_unit_test_setup(test_trailers_not_visible_as_headers, reset_alloc_state),
    cmocka_unit_test_setup(test_pipelined_requests, reset_alloc_state),
    cmocka_unit_test_setup(test_pipelined_byte_at_a_time, reset_alloc_state),
    cmocka_unit_test_setup(test_expect_continue_content_length, reset_alloc_state),
    cmocka_unit_test_setup(test_expect_continue_chunked, reset_alloc_state),
    cmocka_unit_test_setup(test_expect_continue_not_needed, reset_alloc_state),
    cmocka_unit_test_setup(test_in_progress, reset_alloc_state),
    cmocka_unit_test_setup(test_error_keeps_request_line, reset_alloc_state),
    cmocka_unit_test_setup(test_header_cap_exact_and_over, reset_alloc_state),
    cmocka_unit_test_setup(test_header_cap_without_newline, reset_alloc_state),
    cmocka_unit_test_setup(test_header_cap_counts_leading_empty_lines, reset_alloc_state),
    cmocka_unit_test_setup(test_header_cap_counts_trailers, reset_alloc_state),
    cmocka_unit_test_setup(test_too_many_fields, reset_alloc_state),
    cmocka_unit_test_setup(test_body_cap_content_length, reset_alloc_state),
    cmocka_unit_test_setup(test_body_cap_chunked, reset_alloc_state),
    cmocka_unit_test_setup(test_zero_body_cap, reset_alloc_state),
    cmocka_unit_test_setup(test_chunk_extension_cap, reset_alloc_state),
    cmocka_unit_test_setup(test_large_bodies, reset_alloc_state),
    cmocka_unit_test_setup(test_reset_retains_small_releases_large, reset_alloc_state),
    cmocka_unit_test_setup(test_reset_releases_large_head, reset_alloc_state),
    cmocka_unit_test_setup(test_take_body, reset_alloc_state),
    cmocka_unit_test_setup(test_given_body_buffer, reset_alloc_state),
    cmocka_unit_test_setup(test_allocation_failures, reset_alloc_state),
    cmocka_unit_test_setup(test_error_status_and_reason, reset_alloc_state),
};
#define N_FIXED (sizeof(fixed_tests) / sizeof(fixed_tests[0]))

/* Each table row runs as its own named test, so a failure names its case. */
static char test_names[N_VALID + N_ERROR][96];
static struct CMUnitTest all_tests[N_FIXED + N_VALID + N_ERROR];

int main(void)
{
    size_t n = 0;

    for (size_t i = 0; i < N_FIXED; i++)
        all_tests[n++] = fixed_tests[i];
    for (size_t i = 0; i < N_VALID; i++, n++) {
        int w = snprintf(test_names[n - N_FIXED], sizeof(test_names[0]), "valid/%s",
                         valid_cases[i].name);
        if (w < 0 || (size_t)w >= sizeof(test_names[0]))
            return 1;
        all_tests[n] = (struct CMUnitTest){test_names[n - N_FIXED], test_valid_case,
                                           reset_alloc_state, NULL, &valid_cases[i]};
    }
    for (size_t i = 0; i < N_ERROR; i++, n++) {
        int w = snprintf(test_names[n - N_FIXED], sizeof(test_names[0]), "error/%s",
                         error_cases[i].name);
        if (w < 0 || (size_t)w >= sizeof(test_names[0]))
            return 1;
        all_tests[n] = (struct CMUnitTest){test_names[n - N_FIXED], test_error_case,
                                           reset_alloc_state, NULL, &error_cases[i]};
    }
    return _cmocka_run_group_tests("http_request", all_tests, n, NULL, NULL);
}
