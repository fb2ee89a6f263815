/* Unit tests for http_client.c's pure part: capturing a response header. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "fail_alloc.h"
#include "http_client.h"

static bool capture(const char *line, char *dst, size_t size)
{
    return http_client_header_value(line, strlen(line), "Lambda-Extension-Identifier", dst, size);
}

static void test_header_value_is_captured(void **state)
{
    char v[64];
    (void)state;
    assert_true(capture("Lambda-Extension-Identifier: 8476a536-e9f4-11e8-9739-2dfe598c3fcd\r\n", v, sizeof(v)));
    assert_string_equal(v, "8476a536-e9f4-11e8-9739-2dfe598c3fcd");
    assert_true(capture("lambda-extension-identifier:\t abc \t\r\n", v, sizeof(v)));
    assert_string_equal(v, "abc");
    assert_true(capture("Lambda-Extension-Identifier:\r\n", v, sizeof(v)));
    assert_string_equal(v, "");
}

static void test_other_or_unusable_headers_are_not(void **state)
{
    char v[8] = "before";
    (void)state;
    assert_false(capture("Lambda-Extension-Event-Identifier: x\r\n", v, sizeof(v)));
    assert_false(capture("Lambda-Extension-Identifier x\r\n", v, sizeof(v)));
    assert_false(capture("Lambda-Extension-Identifier", v, sizeof(v)));
    assert_false(capture("HTTP/1.1 200 OK\r\n", v, sizeof(v)));
    assert_false(capture("Lambda-Extension-Identifier: 12345678\r\n", v, sizeof(v))); /* does not fit */
    /* A bare CR inside the value would split the header we send it back in. */
    assert_false(capture("Lambda-Extension-Identifier: a\rX: 1\r\n", v, sizeof(v)));
    assert_false(http_client_header_value("Lambda-Extension-Identifier: a\0b\r\n", 34,
                                          "Lambda-Extension-Identifier", v, sizeof(v)));
    assert_string_equal(v, "before");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_value_is_captured),
        cmocka_unit_test(test_other_or_unusable_headers_are_not),
    };
    return cmocka_run_group_tests_name("http_client", tests, NULL, NULL);
}
