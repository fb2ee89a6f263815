/* Unit tests for config.c: defaults, every setting, every fallback. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "fail_alloc.h"

struct fake_env {
    const char *pairs[16][2];
    int warnings;
    char last_warned[64];
    char last_fallback[64];
};

static const char *fake_getenv(const char *name, void *ctx)
{
    struct fake_env *env = ctx;
    for (int i = 0; i < 16 && env->pairs[i][0] != NULL; i++)
        if (strcmp(env->pairs[i][0], name) == 0)
            return env->pairs[i][1];
    return NULL;
}

static void fake_warn(const char *name, const char *problem, const char *fallback, void *ctx)
{
    struct fake_env *env = ctx;
    assert_non_null(problem);
    env->warnings++;
    snprintf(env->last_warned, sizeof(env->last_warned), "%s", name);
    snprintf(env->last_fallback, sizeof(env->last_fallback), "%s", fallback);
}

static void load(struct fake_env *env, struct config *cfg)
{
    config_load(cfg, fake_getenv, env, fake_warn, env);
}

static void test_defaults_when_unset(void **state)
{
    struct fake_env env = {0};
    struct config cfg;
    (void)state;
    load(&env, &cfg);
    assert_int_equal(env.warnings, 0);
    assert_int_equal(cfg.log_level, LOG_LEVEL_INFO);
    assert_false(cfg.disabled);
    assert_int_equal(cfg.telemetry_types, TELEMETRY_TYPE_PLATFORM);
    assert_string_equal(cfg.schema_version, "2025-01-29");
    assert_int_equal(cfg.buffer_max_items, 1000);
    assert_int_equal(cfg.buffer_max_bytes, 262144);
    assert_int_equal(cfg.buffer_timeout_ms, 25);
    assert_int_equal(cfg.listener_port, 0);
    assert_int_equal(cfg.shutdown_telemetry_wait_ms, 1000);
}

static void test_valid_values_are_taken(void **state)
{
    struct fake_env env = {.pairs = {
                               {"LAMBDA_TRACER_LOG_LEVEL", "DEBUG"},
                               {"LAMBDA_TRACER_DISABLE", "yes"},
                               {"LAMBDA_TRACER_TELEMETRY_TYPES", " function ,extension"},
                               {"LAMBDA_TRACER_SCHEMA_VERSION", "2022-12-13"},
                               {"LAMBDA_TRACER_BUFFER_MAX_ITEMS", "10000"},
                               {"LAMBDA_TRACER_BUFFER_MAX_BYTES", "1048576"},
                               {"LAMBDA_TRACER_BUFFER_TIMEOUT_MS", "30000"},
                               {"LAMBDA_TRACER_LISTENER_PORT", "4243"},
                               {"LAMBDA_TRACER_QUEUE_MAX_BYTES", "1048576"},
                               {"LAMBDA_TRACER_SHUTDOWN_TELEMETRY_WAIT_MS", "0"},
                           }};
    struct config cfg;
    (void)state;
    load(&env, &cfg);
    assert_int_equal(env.warnings, 0);
    assert_int_equal(cfg.log_level, LOG_LEVEL_DEBUG);
    assert_true(cfg.disabled);
    /* platform is always added: traces are built from it */
    assert_int_equal(cfg.telemetry_types,
                     TELEMETRY_TYPE_PLATFORM | TELEMETRY_TYPE_FUNCTION | TELEMETRY_TYPE_EXTENSION);
    assert_string_equal(cfg.schema_version, "2022-12-13");
    assert_int_equal(cfg.buffer_max_items, 10000);
    assert_int_equal(cfg.buffer_max_bytes, 1048576);
    assert_int_equal(cfg.buffer_timeout_ms, 30000);
    assert_int_equal(cfg.listener_port, 4243);
    assert_int_equal(cfg.queue_max_bytes, 1048576);
    assert_int_equal(cfg.shutdown_telemetry_wait_ms, 0);
}

/* Each invalid value: exactly one warning naming the setting, default kept. */
static void check_invalid(const char *name, const char *value, const char *fallback)
{
    struct fake_env env = {.pairs = {{name, value}}};
    struct config cfg, def;
    load(&env, &cfg);
    config_defaults(&def);
    assert_int_equal(env.warnings, 1);
    assert_string_equal(env.last_warned, name);
    assert_string_equal(env.last_fallback, fallback);
    assert_memory_equal(&cfg, &def, sizeof(cfg));
}

static void test_invalid_values_fall_back(void **state)
{
    char huge[1100];
    (void)state;
    memset(huge, '1', sizeof(huge) - 1);
    huge[sizeof(huge) - 1] = '\0';
    check_invalid("LAMBDA_TRACER_LOG_LEVEL", "loud", "info");
    check_invalid("LAMBDA_TRACER_DISABLE", "maybe", "false");
    check_invalid("LAMBDA_TRACER_TELEMETRY_TYPES", "platform,,function", "platform");
    check_invalid("LAMBDA_TRACER_TELEMETRY_TYPES", "logs", "platform");
    check_invalid("LAMBDA_TRACER_SCHEMA_VERSION", "2020-08-15", "2025-01-29");
    check_invalid("LAMBDA_TRACER_BUFFER_MAX_ITEMS", "999", "1000");
    check_invalid("LAMBDA_TRACER_BUFFER_MAX_ITEMS", "10001", "1000");
    check_invalid("LAMBDA_TRACER_BUFFER_MAX_ITEMS", " 1000", "1000");
    check_invalid("LAMBDA_TRACER_BUFFER_MAX_ITEMS", "1e3", "1000");
    check_invalid("LAMBDA_TRACER_BUFFER_MAX_BYTES", "-262144", "262144");
    check_invalid("LAMBDA_TRACER_BUFFER_TIMEOUT_MS", "24", "25");
    check_invalid("LAMBDA_TRACER_BUFFER_TIMEOUT_MS", "99999999999999999999999", "25");
    check_invalid("LAMBDA_TRACER_BUFFER_TIMEOUT_MS", huge, "25");
    check_invalid("LAMBDA_TRACER_LISTENER_PORT", "9001", "0 (any free port)");
    check_invalid("LAMBDA_TRACER_LISTENER_PORT", "65536", "0");
    check_invalid("LAMBDA_TRACER_SHUTDOWN_TELEMETRY_WAIT_MS", "2001", "1000");
    check_invalid("LAMBDA_TRACER_SAMPLING", "always", "smart");
    check_invalid("LAMBDA_TRACER_SAMPLING", "all ", "smart");
    check_invalid("LAMBDA_TRACER_SAMPLING", huge, "smart");
    check_invalid("LAMBDA_TRACER_SLOW_MS", "900001", "0");
    check_invalid("LAMBDA_TRACER_SLOW_MS", "-1", "0");
    check_invalid("LAMBDA_TRACER_SLOW_MS", "1.5", "0");
    check_invalid("LAMBDA_TRACER_TRACE_UNSAMPLED", "sometimes", "false");
}

static void test_sampling_settings(void **state)
{
    static const struct {
        const char *sampling, *unsampled;
        enum sampling_policy want;
        bool deprecated;
    } cases[] = {
        {NULL, NULL, SAMPLING_POLICY_SMART, false},
        {"smart", NULL, SAMPLING_POLICY_SMART, false},
        {"HEADER", NULL, SAMPLING_POLICY_HEADER, false},
        {"all", NULL, SAMPLING_POLICY_ALL, false},
        /* the deprecated alias: true is "all", false changes nothing */
        {NULL, "true", SAMPLING_POLICY_ALL, true},
        {NULL, "false", SAMPLING_POLICY_SMART, true},
        /* an explicit LAMBDA_TRACER_SAMPLING wins over it */
        {"header", "true", SAMPLING_POLICY_HEADER, true},
        {"smart", "1", SAMPLING_POLICY_SMART, true},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fake_env env = {0};
        struct config cfg;
        int n = 0;
        if (cases[i].sampling != NULL) {
            env.pairs[n][0] = "LAMBDA_TRACER_SAMPLING";
            env.pairs[n++][1] = cases[i].sampling;
        }
        if (cases[i].unsampled != NULL) {
            env.pairs[n][0] = "LAMBDA_TRACER_TRACE_UNSAMPLED";
            env.pairs[n][1] = cases[i].unsampled;
        }
        load(&env, &cfg);
        assert_int_equal(env.warnings, 0);
        assert_int_equal(cfg.sampling, cases[i].want);
        assert_int_equal(cfg.trace_unsampled_deprecated, cases[i].deprecated);
    }
}

/* Cost and metrics settings: defaults, valid values, and each bad value
 * falling back with one warning naming the setting. */
static void test_cost_and_metrics_settings(void **state)
{
    struct fake_env env = {0};
    struct config cfg;
    (void)state;
    load(&env, &cfg);
    assert_int_equal(env.warnings, 0);
    assert_true(cfg.price_gb_s_usd < 0 && cfg.price_request_usd < 0);
    assert_false(cfg.metrics);
    assert_string_equal(cfg.metrics_namespace, "LambdaTracer");
    assert_int_equal(cfg.metrics_interval_s, 60);

    struct fake_env ok = {.pairs = {{"LAMBDA_TRACER_PRICE_GB_S", "0.0000212"},
                                    {"LAMBDA_TRACER_PRICE_REQUEST", "0"},
                                    {"LAMBDA_TRACER_METRICS", "true"},
                                    {"LAMBDA_TRACER_METRICS_NAMESPACE", "Team/My App:1"},
                                    {"LAMBDA_TRACER_METRICS_INTERVAL_S", "5"}}};
    load(&ok, &cfg);
    assert_int_equal(ok.warnings, 0);
    assert_true(cfg.price_gb_s_usd == 0.0000212);
    assert_true(cfg.price_request_usd == 0);
    assert_true(cfg.metrics);
    assert_string_equal(cfg.metrics_namespace, "Team/My App:1");
    assert_int_equal(cfg.metrics_interval_s, 5);

    static const char *const bad[][2] = {
        {"LAMBDA_TRACER_PRICE_GB_S", "-1"},        {"LAMBDA_TRACER_PRICE_GB_S", "nan"},
        {"LAMBDA_TRACER_PRICE_GB_S", "1"},         {"LAMBDA_TRACER_PRICE_REQUEST", "0.2/1e6"},
        {"LAMBDA_TRACER_METRICS", "maybe"},        {"LAMBDA_TRACER_METRICS_NAMESPACE", "AWS/Lambda"},
        {"LAMBDA_TRACER_METRICS_NAMESPACE", "a\"b"}, {"LAMBDA_TRACER_METRICS_INTERVAL_S", "0"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct fake_env b = {.pairs = {{bad[i][0], bad[i][1]}}};
        load(&b, &cfg);
        assert_int_equal(b.warnings, 1);
        assert_string_equal(b.last_warned, bad[i][0]);
        assert_true(cfg.price_gb_s_usd < 0 && cfg.price_request_usd < 0);
        assert_false(cfg.metrics);
        assert_string_equal(cfg.metrics_namespace, "LambdaTracer");
        assert_int_equal(cfg.metrics_interval_s, 60);
    }
}

static void test_slow_ms(void **state)
{
    static const char *const values[] = {"0", "1", "250", "900000"};
    static const uint32_t want[] = {0, 1, 250, 900000};
    struct fake_env env = {0};
    struct config cfg;
    (void)state;
    load(&env, &cfg);
    assert_int_equal(cfg.slow_ms, 0); /* auto */
    for (size_t i = 0; i < 4; i++) {
        struct fake_env e = {.pairs = {{"LAMBDA_TRACER_SLOW_MS", values[i]}}};
        load(&e, &cfg);
        assert_int_equal(e.warnings, 0);
        assert_int_equal(cfg.slow_ms, want[i]);
    }
}

static void test_empty_value_is_unset(void **state)
{
    struct fake_env env = {.pairs = {{"LAMBDA_TRACER_BUFFER_MAX_ITEMS", ""}}};
    struct config cfg;
    (void)state;
    load(&env, &cfg);
    assert_int_equal(env.warnings, 0);
    assert_int_equal(cfg.buffer_max_items, 1000);
}

static void test_parse_u64(void **state)
{
    uint64_t v = 7;
    (void)state;
    assert_int_equal(config_parse_u64("0", 0, 10, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(config_parse_u64("18446744073709551615", 0, UINT64_MAX, &v), 0);
    assert_true(v == UINT64_MAX);
    assert_int_equal(config_parse_u64("18446744073709551616", 0, UINT64_MAX, &v), -ERANGE);
    assert_int_equal(config_parse_u64("11", 0, 10, &v), -ERANGE);
    assert_int_equal(config_parse_u64("", 0, 10, &v), -EINVAL);
    assert_int_equal(config_parse_u64("+1", 0, 10, &v), -EINVAL);
    assert_int_equal(config_parse_u64("1 ", 0, 10, &v), -EINVAL);
    assert_int_equal(config_parse_u64(NULL, 0, 10, &v), -EINVAL);
}

static void test_parse_types_and_bool(void **state)
{
    unsigned mask = 0;
    bool b = false;
    (void)state;
    assert_int_equal(config_parse_types("PLATFORM", &mask), 0);
    assert_int_equal(mask, TELEMETRY_TYPE_PLATFORM);
    assert_int_equal(config_parse_types("function,function", &mask), 0);
    assert_int_equal(mask, TELEMETRY_TYPE_FUNCTION);
    assert_int_equal(config_parse_types("function,", &mask), -EINVAL);
    assert_int_equal(config_parse_types("platformx", &mask), -EINVAL);
    assert_int_equal(config_parse_bool("On", &b), 0);
    assert_true(b);
    assert_int_equal(config_parse_bool("0", &b), 0);
    assert_false(b);
    assert_int_equal(config_parse_bool("2", &b), -EINVAL);
}

static void test_parse_host_port(void **state)
{
    char host[CONFIG_HOST_MAX];
    uint16_t port = 0;
    (void)state;
    assert_int_equal(config_parse_host_port("127.0.0.1:2000", host, sizeof(host), &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 2000);
    assert_int_equal(config_parse_host_port("[::1]:65535", host, sizeof(host), &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 65535);
    /* Unbracketed IPv6: the last colon separates the port, as before. */
    assert_int_equal(config_parse_host_port("fe80::1:2000", host, sizeof(host), &port), 0);
    assert_string_equal(host, "fe80::1");
    assert_int_equal(port, 2000);
    /* config_load used to accept these, which the UDP sender then refused. */
    assert_int_equal(config_parse_host_port("[::1:2000", host, sizeof(host), &port), -EINVAL);
    assert_int_equal(config_parse_host_port("[]:2000", host, sizeof(host), &port), -EINVAL);
    assert_int_equal(config_parse_host_port("host:0", host, sizeof(host), &port), -EINVAL);
    assert_int_equal(config_parse_host_port("host:65536", host, sizeof(host), &port), -EINVAL);
    assert_int_equal(config_parse_host_port("host:99999999999999999999", host, sizeof(host), &port), -EINVAL);
    assert_int_equal(config_parse_host_port(":2000", host, sizeof(host), &port), -EINVAL);
    assert_int_equal(config_parse_host_port("a b:2000", host, sizeof(host), &port), -EINVAL);
    assert_int_equal(config_parse_host_port("host:", host, sizeof(host), &port), -EINVAL);
    assert_int_equal(config_parse_host_port("host", host, sizeof(host), &port), -EINVAL);
    assert_int_equal(config_parse_host_port("abcd:1", host, 4, &port), -EINVAL); /* does not fit */
    assert_int_equal(config_parse_host_port("abc:1", host, 4, &port), 0);
}

static void test_parse_otlp_headers(void **state)
{
    char lines[CONFIG_OTLP_MAX_HEADERS][CONFIG_OTLP_HEADER_LINE_BYTES];
    char many[CONFIG_OTLP_MAX_HEADERS * 4 + 8] = "";
    size_t n = 99;
    (void)state;
    assert_int_equal(config_parse_otlp_headers("", lines, CONFIG_OTLP_MAX_HEADERS, &n), 0);
    assert_int_equal(n, 0);
    /* Blanks around names and values go: " b" would be a folded line. */
    assert_int_equal(config_parse_otlp_headers("a=1, b = x=y ,", lines, CONFIG_OTLP_MAX_HEADERS, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(lines[0], "a: 1");
    assert_string_equal(lines[1], "b: x=y");
    assert_int_equal(config_parse_otlp_headers("a=1,,b=2", lines, CONFIG_OTLP_MAX_HEADERS, &n), -EINVAL);
    assert_int_equal(config_parse_otlp_headers("=1", lines, CONFIG_OTLP_MAX_HEADERS, &n), -EINVAL);
    assert_int_equal(config_parse_otlp_headers(" =1", lines, CONFIG_OTLP_MAX_HEADERS, &n), -EINVAL);
    assert_int_equal(config_parse_otlp_headers("a b=1", lines, CONFIG_OTLP_MAX_HEADERS, &n), -EINVAL);
    assert_int_equal(config_parse_otlp_headers("a:b=1", lines, CONFIG_OTLP_MAX_HEADERS, &n), -EINVAL);
    assert_int_equal(config_parse_otlp_headers("a=1\r\nX-Evil: 1", lines, CONFIG_OTLP_MAX_HEADERS, &n),
                     -EINVAL);
    assert_int_equal(config_parse_otlp_headers("novalue", lines, CONFIG_OTLP_MAX_HEADERS, &n), -EINVAL);
    for (int i = 0; i <= CONFIG_OTLP_MAX_HEADERS; i++) /* one too many */
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "%sh=%d", i ? "," : "", i % 10);
    assert_int_equal(config_parse_otlp_headers(many, lines, CONFIG_OTLP_MAX_HEADERS, &n), -EINVAL);
    *strrchr(many, ',') = '\0';
    assert_int_equal(config_parse_otlp_headers(many, lines, CONFIG_OTLP_MAX_HEADERS, &n), 0);
    assert_int_equal(n, CONFIG_OTLP_MAX_HEADERS);
}

/* A daemon address or OTLP header list the exporter cannot use is refused
 * where it is read, with one warning naming it, not later. */
static void test_unusable_endpoint_settings_fall_back(void **state)
{
    char long_value[CONFIG_OTLP_HEADER_LINE_BYTES + 8];
    (void)state;
    memset(long_value, 'v', sizeof(long_value) - 1);
    long_value[0] = 'a';
    long_value[1] = '=';
    long_value[sizeof(long_value) - 1] = '\0';
    check_invalid("LAMBDA_TRACER_DAEMON_ADDRESS", "[::1:2000", "the default");
    check_invalid("LAMBDA_TRACER_DAEMON_ADDRESS", "127.0.0.1:0", "the default");
    check_invalid("LAMBDA_TRACER_OTLP_HEADERS", "x api key=1", "the default");
    check_invalid("LAMBDA_TRACER_OTLP_HEADERS", long_value, "the default");
}

/* AWS_REGION goes into a host name and the SigV4 scope: only Lambda's shape
 * passes, anything that could move the host or the scope is refused. */
static void test_region_valid(void **state)
{
    static const char *const good[] = {"us-east-1", "eu-west-3", "ap-southeast-2", "us-gov-west-1",
                                       "cn-north-1", "us-isob-east-1", "a", "a1",
                                       "abcdefghijklmnopqrstuvwxyz01234" /* 31 */};
    static const char *const bad[] = {"", "x@127.0.0.1:9/", "us-east-1@h", "us-east-1/", "us-east-1:1",
                                      "us-east-1#", "us-east-1?", "US-EAST-1", "us-East-1", "us east 1",
                                      "us-east-1\n", "us-east-1\r", "us-\xc3\xa9" "ast-1", "us_east_1",
                                      "us.east.1", "-us-east-1", "us-east-1-", "1us-east",
                                      "abcdefghijklmnopqrstuvwxyz012345" /* 32 */, "us-east-1\x7f"};
    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(config_region_valid(good[i]));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(config_region_valid(bad[i]));
    assert_false(config_region_valid(NULL));
}

/* AWS_LAMBDA_RUNTIME_API is the authority of every Extensions API URL. */
static void test_runtime_api_valid(void **state)
{
    static const char *const good[] = {"127.0.0.1:9001", "localhost:9001", "sandbox.localdomain:9001",
                                       "[::1]:9001", "[fd00:ec2::254]:80", "[::ffff:127.0.0.1]:1",
                                       "169.254.100.1:65535", "a:1", "h-1.x:00080"};
    static const char *const bad[] = {"", "127.0.0.1", "127.0.0.1:", ":9001", "127.0.0.1:0",
                                      "127.0.0.1:65536", "127.0.0.1:000080", "127.0.0.1:+80",
                                      "127.0.0.1:-1", "127.0.0.1:80 ", " 127.0.0.1:80", "127.0.0.1:8 0",
                                      "x@127.0.0.1:80", "u:p@127.0.0.1:80", "127.0.0.1:1@127.0.0.1:80",
                                      "127.0.0.1:80/", "127.0.0.1:80/x", "127.0.0.1:80?x", "127.0.0.1:80#x",
                                      "127.0.0.1/x:80", "127.0.0.1?:80", "127.0.0.1#:80", "h\r\nX: 1:80",
                                      "127.0.0.1:80\r\n", "h\t:80", "-h:80", ".h:80", "h_1:80", "h%41:80",
                                      "[::1:80", "[::1]80", "[::1]:", "[]:80", "[127.0.0.1]:80",
                                      "[::1%eth0]:80", "[::1]:80]", "h\xc3\xa9" ":80", "a:b:80", "h:80\x7f"};
    char long_host[CONFIG_RUNTIME_API_MAX + 8];
    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(config_runtime_api_valid(good[i]));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(config_runtime_api_valid(bad[i]));
    assert_false(config_runtime_api_valid(NULL));
    memset(long_host, 'h', sizeof(long_host));
    snprintf(long_host + CONFIG_RUNTIME_API_MAX - 5, 8, ":9001");
    assert_false(config_runtime_api_valid(long_host)); /* 200 bytes + NUL: too long */
    snprintf(long_host + CONFIG_RUNTIME_API_MAX - 6, 8, ":9001");
    assert_true(config_runtime_api_valid(long_host)); /* 199 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_when_unset),
        cmocka_unit_test(test_valid_values_are_taken),
        cmocka_unit_test(test_invalid_values_fall_back),
        cmocka_unit_test(test_empty_value_is_unset),
        cmocka_unit_test(test_parse_u64),
        cmocka_unit_test(test_parse_types_and_bool),
        cmocka_unit_test(test_parse_host_port),
        cmocka_unit_test(test_sampling_settings),
        cmocka_unit_test(test_slow_ms),
        cmocka_unit_test(test_cost_and_metrics_settings),
        cmocka_unit_test(test_parse_otlp_headers),
        cmocka_unit_test(test_unusable_endpoint_settings_fall_back),
        cmocka_unit_test(test_region_valid),
        cmocka_unit_test(test_runtime_api_valid),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
