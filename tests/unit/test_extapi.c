/* Unit tests for extapi.c: the subscription body, argument checks, and the
 * exchanges against a scripted loopback server (what is sent, how answers
 * map to results).  The integration tests run them against the emulator. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "extapi.h"
#include "fail_alloc.h"
#include "fake_server.h"

static void test_subscription_body_has_every_field(void **state)
{
    struct config cfg;
    char body[512];
    cJSON *root;
    (void)state;
    config_defaults(&cfg);
    cfg.telemetry_types = TELEMETRY_TYPE_PLATFORM | TELEMETRY_TYPE_FUNCTION;
    cfg.buffer_max_items = 2000;
    cfg.buffer_max_bytes = 300000;
    cfg.buffer_timeout_ms = 50;
    assert_int_equal(extapi_subscription_body(&cfg, "2025-01-29", 4243, body, sizeof(body)), 0);
    root = cJSON_Parse(body);
    assert_non_null(root);
    assert_string_equal(cJSON_GetObjectItem(root, "schemaVersion")->valuestring, "2025-01-29");
    cJSON *types = cJSON_GetObjectItem(root, "types");
    assert_int_equal(cJSON_GetArraySize(types), 2);
    assert_string_equal(cJSON_GetArrayItem(types, 0)->valuestring, "platform");
    assert_string_equal(cJSON_GetArrayItem(types, 1)->valuestring, "function");
    cJSON *buf = cJSON_GetObjectItem(root, "buffering");
    assert_int_equal(cJSON_GetObjectItem(buf, "maxItems")->valueint, 2000);
    assert_int_equal(cJSON_GetObjectItem(buf, "maxBytes")->valueint, 300000);
    assert_int_equal(cJSON_GetObjectItem(buf, "timeoutMs")->valueint, 50);
    cJSON *dest = cJSON_GetObjectItem(root, "destination");
    assert_string_equal(cJSON_GetObjectItem(dest, "protocol")->valuestring, "HTTP");
    assert_string_equal(cJSON_GetObjectItem(dest, "URI")->valuestring,
                        "http://sandbox.localdomain:4243/telemetry");
    cJSON_Delete(root);
}

static void test_subscription_body_platform_only_and_small_buffer(void **state)
{
    struct config cfg;
    char body[512];
    char tiny[64];
    (void)state;
    config_defaults(&cfg);
    assert_int_equal(extapi_subscription_body(&cfg, "2022-12-13", 1, body, sizeof(body)), 0);
    assert_non_null(strstr(body, "\"types\":[\"platform\"]"));
    assert_non_null(strstr(body, "\"schemaVersion\":\"2022-12-13\""));
    assert_int_equal(extapi_subscription_body(&cfg, "2022-12-13", 1, tiny, sizeof(tiny)), -ENOBUFS);
}

static void test_new_validates_arguments(void **state)
{
    struct extapi *api = NULL;
    (void)state;
    assert_int_equal(extapi_new(NULL, "x", &api), -EINVAL);
    assert_int_equal(extapi_new("", "x", &api), -EINVAL);
    assert_int_equal(extapi_new("127.0.0.1:9001", "", &api), -EINVAL);
    assert_int_equal(extapi_new("127.0.0.1:9001/evil", "x", &api), -EINVAL);
    assert_int_equal(extapi_new("127.0.0.1:9001", "bad\r\nname", &api), -EINVAL);
    assert_int_equal(extapi_new("127.0.0.1:9001", "bad\x01name", &api), -EINVAL);
    assert_int_equal(extapi_new("127.0.0.1:9001", "bad\x7fname", &api), -EINVAL);
    /* the whole conversation would go to the host after '@' */
    assert_int_equal(extapi_new("127.0.0.1:9001@10.0.0.1:80", "x", &api), -EINVAL);
    assert_int_equal(extapi_new("u:p@127.0.0.1:9001", "x", &api), -EINVAL);
    assert_int_equal(extapi_new("127.0.0.1:9001?x", "x", &api), -EINVAL);
    assert_int_equal(extapi_new("127.0.0.1:9001#x", "x", &api), -EINVAL);
    assert_int_equal(extapi_new("169.254.100.1:9001", "lambda-tracer", &api), 0);
    assert_string_equal(extapi_identifier(api), "");
    extapi_destroy(api);
    extapi_destroy(NULL);
}

static void test_new_out_of_memory(void **state)
{
    struct extapi *api = NULL;
    (void)state;
    fail_alloc_reset();
    fail_alloc_fail_at(1);
    assert_int_equal(extapi_new("127.0.0.1:9001", "x", &api), -ENOMEM);
    fail_alloc_reset();
    assert_int_equal(fail_alloc_live(), 0);
}

/* Nothing listens on port 1: a transport error comes back, not a crash. */
static void test_register_transport_error(void **state)
{
    struct extapi *api = NULL;
    struct extapi_registration reg;
    struct extapi_error err;
    (void)state;
    assert_int_equal(extapi_new("127.0.0.1:1", "x", &api), 0);
    int r = extapi_register(api, true, true, &reg, &err);
    assert_int_equal(r, -ECONNREFUSED);
    assert_int_equal(err.status, 0);
    assert_string_equal(err.error_type, "transport");
    extapi_destroy(api);
}

static void test_parse_registration(void **state)
{
    struct extapi_registration reg;
    char big[600];
    (void)state;
    /* The reference's example answer. */
    const char *example = "{\"functionName\": \"helloWorld\", \"functionVersion\": \"$LATEST\",\n"
                          " \"handler\": \"lambda_function.lambda_handler\", \"accountId\": \"123456789012\"}";
    extapi_parse_registration(example, strlen(example), &reg);
    assert_string_equal(reg.function_name, "helloWorld");
    assert_string_equal(reg.function_version, "$LATEST");
    assert_string_equal(reg.handler, "lambda_function.lambda_handler");
    assert_string_equal(reg.account_id, "123456789012");
    /* Wrong types, garbage and NULL leave every field empty. */
    extapi_parse_registration("{\"functionName\":7,\"handler\":null}", 33, &reg);
    assert_string_equal(reg.function_name, "");
    assert_string_equal(reg.handler, "");
    extapi_parse_registration("<html>", 6, &reg);
    assert_string_equal(reg.account_id, "");
    extapi_parse_registration(NULL, 0, &reg);
    assert_string_equal(reg.function_version, "");
    /* Over-long values are cut to fit, NUL-terminated. */
    snprintf(big, sizeof(big), "{\"handler\":\"%0500d\"}", 0);
    extapi_parse_registration(big, strlen(big), &reg);
    assert_int_equal(strlen(reg.handler), sizeof(reg.handler) - 1);
}

static void test_parse_error_keeps_what_is_absent(void **state)
{
    struct extapi_error err = {.status = 403, .error_type = "transport", .message = "kept"};
    (void)state;
    extapi_parse_error("{\"errorType\":\"Extension.RegistrationClosed\"}", 44, &err);
    assert_string_equal(err.error_type, "Extension.RegistrationClosed");
    assert_string_equal(err.message, "kept");
    assert_int_equal(err.status, 403);
    extapi_parse_error("[1,2]", 5, &err);
    assert_string_equal(err.error_type, "Extension.RegistrationClosed");
    extapi_parse_error(NULL, 0, &err);
    assert_string_equal(err.message, "kept");
}

static struct extapi *api_for(const struct fake *f)
{
    char hp[32];
    struct extapi *api = NULL;

    snprintf(hp, sizeof(hp), "127.0.0.1:%u", (unsigned)f->port);
    assert_int_equal(extapi_new(hp, "lambda-tracer", &api), 0);
    return api;
}

/* Init's conversation on one kept-alive connection: what each call sends
 * and how each answer maps to its result. */
static void test_init_conversation(void **state)
{
    static const struct step steps[] = {
        {"HTTP/1.1 200 OK\r\nLambda-Extension-Identifier: 3f1e0c52-1111-4222-8333-944455556666\r\n"
         "Content-Type: application/json\r\nContent-Length: 79\r\n\r\n"
         "{\"functionName\":\"fn\",\"functionVersion\":\"$LATEST\",\"handler\":\"h\",\"accountId\":\"1\"}",
         0, KEEP},
        {"HTTP/1.1 400 Bad Request\r\nContent-Length: 55\r\n\r\n"
         "{\"errorType\":\"ValidationError\",\"errorMessage\":\"schema\"}",
         0, KEEP},
        {"HTTP/1.1 202 Accepted\r\nContent-Length: 86\r\n\r\n"
         "{\"errorMessage\":\"Telemetry API is not supported\",\"errorType\":\"Telemetry.NotSupported\"}",
         0, KEEP},
        /* an event in chunks, as Go's net/http sends larger answers */
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
         "14\r\n{\"eventType\":\"SHUTDO\r\n"
         "34\r\nWN\",\"shutdownReason\":\"spindown\",\"deadlineMs\":1700000\r\n"
         "4\r\n0000\r\n1\r\n}\r\n0\r\n\r\n",
         0, KEEP},
        {"HTTP/1.1 202 Accepted\r\nContent-Length: 15\r\n\r\n{\"status\":\"OK\"}", 0, KEEP},
    };
    struct fake f;
    struct extapi *api;
    struct extapi_registration reg;
    struct extapi_error err;
    struct ext_event ev;
    (void)state;
    fake_start(&f, steps, 5);
    api = api_for(&f);
    assert_int_equal(extapi_register(api, true, true, &reg, &err), 0);
    assert_string_equal(extapi_identifier(api), "3f1e0c52-1111-4222-8333-944455556666");
    assert_string_equal(reg.function_name, "fn");
    assert_string_equal(reg.account_id, "1");
    assert_int_equal(extapi_subscribe(api, "{}", &err), -EINVAL);
    assert_int_equal(err.status, 400);
    assert_string_equal(err.error_type, "ValidationError");
    assert_int_equal(extapi_subscribe(api, "{}", &err), 1);
    assert_string_equal(err.error_type, "Telemetry.NotSupported");
    assert_int_equal(extapi_next(api, &ev, &err), 0);
    assert_int_equal(ev.type, EXT_EVENT_SHUTDOWN);
    assert_int_equal(extapi_report_error(api, false, "Extension.Test", "it broke", &err), 0);
    extapi_destroy(api);
    fake_join(&f);
    assert_int_equal(f.send_failures, 0);
    assert_int_equal(f.accepts, 1);
    assert_int_equal(f.requests, 5);
    assert_non_null(strstr(f.req[0], "POST /2020-01-01/extension/register HTTP/1.1\r\n"));
    assert_non_null(strstr(f.req[0], "\r\nLambda-Extension-Name: lambda-tracer\r\n"));
    assert_non_null(strstr(f.req[0], "\r\nLambda-Extension-Accept-Feature: accountId\r\n"));
    assert_non_null(strstr(f.req[0], "\r\n\r\n{\"events\":[\"INVOKE\",\"SHUTDOWN\"]}"));
    assert_non_null(strstr(f.req[1], "PUT /2022-07-01/telemetry HTTP/1.1\r\n"));
    assert_non_null(strstr(f.req[1], "\r\nLambda-Extension-Identifier: 3f1e0c52-1111-4222-8333-944455556666\r\n"));
    assert_non_null(strstr(f.req[1], "\r\nContent-Type: application/json\r\n"));
    assert_non_null(strstr(f.req[3], "GET /2020-01-01/extension/event/next HTTP/1.1\r\n"));
    assert_non_null(strstr(f.req[3], "\r\nLambda-Extension-Identifier: 3f1e0c52-1111-4222-8333-944455556666\r\n"));
    assert_null(strstr(f.req[3], "Content-Length"));
    assert_non_null(strstr(f.req[4], "POST /2020-01-01/extension/exit/error HTTP/1.1\r\n"));
    assert_non_null(strstr(f.req[4], "\r\nLambda-Extension-Function-Error-Type: Extension.Test\r\n"));
    assert_non_null(strstr(f.req[4], "\"errorMessage\":\"it broke\""));
}

static void count_sent(void *ctx)
{
    (*(int *)ctx)++;
}

/* A register answer without an identifier is a protocol error; an event
 * cut off mid-body is asked for again (on a new connection) and arrives,
 * the sent hook called once for both requests. */
static void test_missing_identifier_and_cut_event(void **state)
{
    static const struct step steps[] = {
        {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", 0, KEEP},
        {"HTTP/1.1 200 OK\r\nLambda-Extension-Identifier: id\r\nContent-Length: 2\r\n\r\n{}", 0, KEEP},
        {"HTTP/1.1 200 OK\r\nContent-Length: 70\r\n\r\n{\"eventType\":\"SHUT", 0, CLOSE},
        {"HTTP/1.1 200 OK\r\nContent-Length: 68\r\n\r\n"
         "{\"eventType\":\"SHUTDOWN\",\"shutdownReason\":\"spindown\",\"deadlineMs\":17}",
         0, KEEP},
        {"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\n{}", 0, KEEP},
    };
    struct fake f;
    struct extapi *api;
    struct extapi_registration reg;
    struct extapi_error err;
    struct ext_event ev;
    (void)state;
    fake_start(&f, steps, 5);
    api = api_for(&f);
    assert_int_equal(extapi_register(api, true, true, &reg, &err), -EPROTO);
    assert_int_equal(extapi_register(api, true, true, &reg, &err), 0);
    int sent = 0;
    assert_int_equal(extapi_next_then(api, &ev, &err, count_sent, &sent), 0);
    assert_int_equal(ev.type, EXT_EVENT_SHUTDOWN);
    assert_int_equal(sent, 1);
    assert_int_equal(extapi_next(api, &ev, &err), -EACCES);
    assert_int_equal(err.status, 403);
    extapi_destroy(api);
    fake_join(&f);
    assert_int_equal(f.send_failures, 0);
    assert_int_equal(f.accepts, 2);
    assert_int_equal(f.requests, 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_subscription_body_has_every_field),
        cmocka_unit_test(test_subscription_body_platform_only_and_small_buffer),
        cmocka_unit_test(test_new_validates_arguments),
        cmocka_unit_test(test_new_out_of_memory),
        cmocka_unit_test(test_register_transport_error),
        cmocka_unit_test(test_parse_registration),
        cmocka_unit_test(test_parse_error_keeps_what_is_absent),
        cmocka_unit_test(test_init_conversation),
        cmocka_unit_test(test_missing_identifier_and_cut_event),
    };
    return cmocka_run_group_tests_name("extapi", tests, NULL, NULL);
}
