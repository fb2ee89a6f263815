/* Unit tests for otlp_response.c: partial_success out of an OTLP/HTTP
 * answer, protobuf and JSON, good and malformed. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "fail_alloc.h"
#include "otlp_response.h"

static int pb(const void *body, size_t len, struct otlp_partial *ret)
{
    return otlp_response_parse(body, len, false, ret);
}

static int js(const char *body, struct otlp_partial *ret)
{
    return otlp_response_parse(body, strlen(body), true, ret);
}

static void test_protobuf_answers(void **state)
{
    struct otlp_partial p;
    /* partial_success { rejected_spans: 300, error_message: "too old" } */
    static const unsigned char full[] = {0x0a, 0x0c, 0x08, 0xac, 0x02, 0x12, 0x07, 't', 'o', 'o', ' ', 'o', 'l', 'd'};
    /* an unknown field of each wire type before it, and one inside */
    static const unsigned char unknown[] = {0x10, 0x01, 0x19, 1, 2, 3, 4, 5, 6, 7, 8, 0x25, 1, 2, 3, 4,
                                            0x2a, 0x01, 'x', 0x0a, 0x04, 0x18, 0x05, 0x08, 0x02};
    /* two partial_success fields merge: the later count, the earlier message */
    static const unsigned char twice[] = {0x0a, 0x05, 0x08, 0x01, 0x12, 0x01, 'a', 0x0a, 0x02, 0x08, 0x09};
    /* rejected_spans: -1 (int64, ten bytes): none */
    static const unsigned char negative[] = {0x0a, 0x0b, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff,
                                             0xff, 0xff, 0xff, 0xff, 0x01};

    (void)state;
    assert_int_equal(pb(NULL, 0, &p), 0);
    assert_false(p.present);
    assert_int_equal(pb(full, sizeof(full), &p), 0);
    assert_true(p.present);
    assert_int_equal(p.rejected, 300);
    assert_string_equal(p.message, "too old");
    assert_int_equal(pb(unknown, sizeof(unknown), &p), 0);
    assert_true(p.present);
    assert_int_equal(p.rejected, 2);
    assert_int_equal(pb(twice, sizeof(twice), &p), 0);
    assert_int_equal(p.rejected, 9);
    assert_string_equal(p.message, "a");
    assert_int_equal(pb(negative, sizeof(negative), &p), 0);
    assert_true(p.present);
    assert_int_equal(p.rejected, 0);
}

static void test_protobuf_malformed_rejects_nothing(void **state)
{
    static const struct {
        unsigned char b[16];
        size_t len;
    } bad[] = {
        {{0x0a, 0x05, 0x08}, 3},                   /* length past the end */
        {{0x0a, 0x01, 0x08}, 3},                   /* varint cut inside */
        {{0x08, 0x05}, 2},                         /* partial_success as a varint */
        {{0x0a, 0x02, 0x0a, 0x00}, 4},             /* rejected_spans as bytes */
        {{0x0b, 0x0c}, 2},                         /* a group */
        {{0x00, 0x01}, 2},                         /* field 0 */
        {{0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 12}, /* 11-byte varint */
        {{0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}, 11},       /* over 64 bits */
        {{0x19, 1, 2}, 3},                         /* fixed64 cut */
    };
    struct otlp_partial p;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&p, 0x55, sizeof(p));
        assert_int_equal(pb(bad[i].b, bad[i].len, &p), -EINVAL);
        assert_false(p.present);
        assert_int_equal(p.rejected, 0);
        assert_string_equal(p.message, "");
    }
}

static void test_json_answers(void **state)
{
    struct otlp_partial p;
    char longmsg[600];

    (void)state;
    assert_int_equal(js("{}", &p), 0);
    assert_false(p.present);
    assert_int_equal(js("{\"partialSuccess\":null}", &p), 0);
    assert_false(p.present);
    assert_int_equal(js("{\"partialSuccess\":{}}", &p), 0);
    assert_true(p.present);
    assert_int_equal(p.rejected, 0);
    assert_int_equal(js("{\"partialSuccess\":{\"rejectedSpans\":\"9223372036854775807\"}}", &p), 0);
    assert_int_equal(p.rejected, INT64_MAX);
    assert_int_equal(js("{\"partialSuccess\":{\"rejectedSpans\":-1}}", &p), 0);
    assert_int_equal(p.rejected, 0);
    assert_int_equal(js("{\"partialSuccess\":{\"rejectedSpans\":12,\"errorMessage\":\"bad span\"}}", &p), 0);
    assert_int_equal(p.rejected, 12);
    assert_string_equal(p.message, "bad span");
    assert_int_equal(js("{\"partialSuccess\":{\"rejectedSpans\":\"-3\"}}", &p), 0);
    assert_int_equal(p.rejected, 0);
    /* a JSON answer to a protobuf request is read as JSON */
    assert_int_equal(otlp_response_parse("{\"partialSuccess\":{\"rejectedSpans\":\"4\"}}", 41, false, &p), 0);
    assert_int_equal(p.rejected, 4);
    /* a long message is cut to fit */
    memset(longmsg, 'm', sizeof(longmsg));
    memcpy(longmsg, "{\"partialSuccess\":{\"errorMessage\":\"", 35);
    memcpy(longmsg + sizeof(longmsg) - 5, "\"}}", 4);
    assert_int_equal(js(longmsg, &p), 0);
    assert_int_equal(strlen(p.message), OTLP_RESPONSE_MESSAGE_BYTES - 1);
}

static void test_json_malformed_rejects_nothing(void **state)
{
    static const char *const bad[] = {
        "{", "[]", "\"x\"", "{\"partialSuccess\":5}",
        "{\"partialSuccess\":{\"rejectedSpans\":\"12x\"}}",
        "{\"partialSuccess\":{\"rejectedSpans\":\"\"}}",
        "{\"partialSuccess\":{\"rejectedSpans\":\"99999999999999999999\"}}",
        "{\"partialSuccess\":{\"rejectedSpans\":1.5}}",
        "{\"partialSuccess\":{\"rejectedSpans\":\"9223372036854775808\"}}",
        "{\"partialSuccess\":{\"rejectedSpans\":\" 3\"}}",
        "{\"partialSuccess\":{\"rejectedSpans\":true}}",
        "{\"partialSuccess\":{\"rejectedSpans\":\"3\",\"errorMessage\":7}}",
    };
    struct otlp_partial p;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(js(bad[i], &p), -EINVAL);
        assert_false(p.present);
        assert_int_equal(p.rejected, 0);
    }
}

static void test_json_out_of_memory(void **state)
{
    static const char body[] = "{\"partialSuccess\":{\"rejectedSpans\":\"3\",\"errorMessage\":\"m\"}}";
    struct otlp_partial p;
    unsigned long n;

    (void)state;
    fail_alloc_hook_cjson();
    fail_alloc_reset();
    assert_int_equal(js(body, &p), 0);
    n = fail_alloc_count();
    assert_true(n > 0);
    assert_int_equal(fail_alloc_live(), 0);
    /* each allocation failing in turn: nothing rejected, nothing leaked */
    for (unsigned long k = 1; k <= n; k++) {
        fail_alloc_reset();
        fail_alloc_fail_at(k);
        assert_int_equal(js(body, &p), -EINVAL);
        assert_int_equal(p.rejected, 0);
        assert_false(p.present);
        fail_alloc_fail_at(0);
        assert_int_equal(fail_alloc_live(), 0);
    }
    fail_alloc_reset();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_protobuf_answers),
        cmocka_unit_test(test_protobuf_malformed_rejects_nothing),
        cmocka_unit_test(test_json_answers),
        cmocka_unit_test(test_json_malformed_rejects_nothing),
        cmocka_unit_test(test_json_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
