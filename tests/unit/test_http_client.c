/* Unit tests for http_client.c: capturing a response header; the multi
 * interface's kept-alive connections and a SnapStart restore. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <poll.h>
#include <string.h>

#include "fail_alloc.h"
#include "fake_server.h"
#include "http_client.h"
#include "ids.h"

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

#define OK_REPLY "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

/* One GET through m to the fake server, driven to its end. */
static void one_get(struct http_multi *m, uint16_t port)
{
    char url[64];
    struct http_client_request req = {.method = "GET", .url = url, .connect_timeout_ms = 2000,
                                      .timeout_ms = 5000, .max_response_bytes = 1024};
    struct http_client_response resp;
    char detail[128];
    void *tag = NULL;
    int r = -1;

    snprintf(url, sizeof(url), "http://127.0.0.1:%u/", port);
    assert_int_equal(http_multi_add(m, &req, &tag), 0);
    while (!http_multi_next_done(m, &tag, &r, &resp, detail, sizeof(detail))) {
        struct pollfd fds[8];
        size_t n = http_multi_fds(m, fds, 8);
        int timeout = http_multi_timeout_ms(m);

        (void)poll(fds, n, timeout < 0 || timeout > 100 ? 100 : timeout);
        http_multi_perform(m, fds, n);
    }
    assert_int_equal(r, 0);
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.body, "ok");
    http_client_response_clean_up(&resp);
}

/* Transfers reuse a kept-alive connection until a restore is marked; the
 * first transfer after it connects afresh (every restored copy would
 * otherwise carry the same TLS connection, random generator included). */
static void test_a_restore_drops_kept_alive_connections(void **state)
{
    static const struct step steps[] = {{OK_REPLY, 0, KEEP}, {OK_REPLY, 0, KEEP}, {OK_REPLY, 0, KEEP},
                                        {OK_REPLY, 0, KEEP}};
    struct fake f;
    struct http_multi *m;

    (void)state;
    fake_start(&f, steps, 4);
    m = http_multi_new(2);
    assert_non_null(m);
    one_get(m, f.port);
    one_get(m, f.port);
    ids_restore_epoch_bump();
    one_get(m, f.port);
    one_get(m, f.port);
    http_multi_destroy(m);
    fake_join(&f);
    assert_int_equal(f.requests, 4);
    assert_int_equal(f.send_failures, 0);
    /* one connection for the first two, a new one for the two after */
    assert_int_equal(f.accepts, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_value_is_captured),
        cmocka_unit_test(test_other_or_unusable_headers_are_not),
        cmocka_unit_test(test_a_restore_drops_kept_alive_connections),
    };
    return cmocka_run_group_tests_name("http_client", tests, NULL, NULL);
}
