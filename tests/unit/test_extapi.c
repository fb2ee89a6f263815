/* Unit tests for extapi.c's pure parts: the subscription body and argument
 * checks.  The HTTP exchanges are covered by the integration tests against
 * the emulator. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "extapi.h"
#include "fail_alloc.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_subscription_body_has_every_field),
        cmocka_unit_test(test_subscription_body_platform_only_and_small_buffer),
        cmocka_unit_test(test_new_validates_arguments),
        cmocka_unit_test(test_new_out_of_memory),
        cmocka_unit_test(test_register_transport_error),
    };
    return cmocka_run_group_tests_name("extapi", tests, NULL, NULL);
}
