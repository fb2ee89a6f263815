/* Unit tests for config.c: defaults, every setting, every fallback. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "fail_alloc.h"

struct fake_env {
    const char *pairs[16][2];
    int warnings;
    char last_warned[64];
    char last_fallback[64];
    char problems[512];  /* every problem, one per line */
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
    size_t used = strlen(env->problems);
    snprintf(env->problems + used, sizeof(env->problems) - used, "%s\n", problem);
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
    check_invalid("LAMBDA_TRACER_OTLP_HEADERS", "x api key=1", "no headers");
    check_invalid("LAMBDA_TRACER_OTLP_HEADERS", long_value, "no headers");
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


/* Percent-decoding of header values (the specification's format): a
 * decoded CR/LF is refused like a literal one; '+' stays '+'. */
static void test_otlp_headers_percent_decoded(void **state)
{
    char lines[CONFIG_OTLP_MAX_HEADERS][CONFIG_OTLP_HEADER_LINE_BYTES];
    size_t n = 99;
    (void)state;
    assert_int_equal(config_parse_otlp_headers("Authorization=Basic%20dXNlcjpwYXNz,x-k=a%2Cb%3Dc+d",
                                               lines, CONFIG_OTLP_MAX_HEADERS, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(lines[0], "Authorization: Basic dXNlcjpwYXNz");
    assert_string_equal(lines[1], "x-k: a,b=c+d");
    assert_int_equal(config_parse_otlp_headers("a=%e2%82%ac", lines, CONFIG_OTLP_MAX_HEADERS, &n), 0);
    assert_string_equal(lines[0], "a: \xe2\x82\xac");
    static const char *const bad[] = {"a=1%0D%0AX-Evil:%201", "a=%0a", "a=%00", "a=%7F", "a=%", "a=%2",
                                      "a=%zz", "a=%2g", "a=100%", "a=%%41"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(config_parse_otlp_headers(bad[i], lines, CONFIG_OTLP_MAX_HEADERS, &n), -EINVAL);
}

/* A refused header list names its first bad entry (from 1) and what is
 * wrong with it; a name only when it is a valid header name, a value
 * never (the secret is in the value). */
static void test_otlp_headers_problem_names_the_entry(void **state)
{
    static const struct {
        const char *text;
        const char *why;
    } cases[] = {
        {"a=1,,b=2", "entry 2: empty (two commas in a row, or a leading comma)"},
        {",a=1", "entry 1: empty (two commas in a row, or a leading comma)"},
        {"sk-SECRET-KEY", "entry 1: no '=' (not name=value)"},
        {"a=1, =SECRET", "entry 2: an empty name"},
        {"Authorization: Bearer SECRET=x", "entry 1: its name holds a byte a header name cannot (a blank, ':', "
                                           "'\"', a control byte...) at byte 14"},
        {"api-key=SECRET%0D%0AX-Evil:1", "entry 1 (api-key): its value holds a control byte"},
        {"ok=1,api-key=SECRET%zz", "entry 2 (api-key): its value has a '%' not followed by two hex digits, or is "
                                   "over 255 bytes with its name"},
    };
    char why[200];
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(why, 'Z', sizeof(why));
        assert_int_equal(config_otlp_headers_problem(cases[i].text, why, sizeof(why)), -EINVAL);
        assert_string_equal(why, cases[i].why);
        assert_null(strstr(why, "SECRET"));
    }
    char many[CONFIG_OTLP_MAX_HEADERS * 4 + 8] = "";
    for (int i = 0; i <= CONFIG_OTLP_MAX_HEADERS; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "%sh=%d", i ? "," : "", i % 10);
    assert_int_equal(config_otlp_headers_problem(many, why, sizeof(why)), -EINVAL);
    assert_string_equal(why, "entry 17: more than 16 headers");
    /* accepted: 0 and "" */
    assert_int_equal(config_otlp_headers_problem("a=1,b=%20x", why, sizeof(why)), 0);
    assert_string_equal(why, "");
    /* a small buffer: cut, still terminated */
    char small[8];
    assert_int_equal(config_otlp_headers_problem("a=%zz", small, sizeof(small)), -EINVAL);
    assert_int_equal(strlen(small), 7);
    /* config_load's warning carries it, and not the value */
    struct fake_env env = {.pairs = {{"OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=SECRET%0A"}}};
    struct config cfg;
    load(&env, &cfg);
    assert_int_equal(env.warnings, 1);
    assert_string_equal(env.last_warned, "OTEL_EXPORTER_OTLP_HEADERS");
    assert_string_equal(env.problems, "entry 1 (x-api-key): its value holds a control byte\n");
    assert_string_equal(cfg.otlp_headers, "");
}

static void test_parse_resource_attributes(void **state)
{
    char out[CONFIG_MAX_VALUE_BYTES];
    size_t len = 99;
    char many[RESOURCE_ATTRS_MAX * 8 + 8] = "";
    (void)state;
    assert_int_equal(config_parse_resource_attributes("", out, sizeof(out), &len), 0);
    assert_int_equal(len, 0);
    assert_int_equal(config_parse_resource_attributes(" team = a%20b ,deployment.environment=prod%2Ceu,k%3D1=v,",
                                                      out, sizeof(out), &len), 0);
    assert_int_equal(len, sizeof("team\0a b\0deployment.environment\0prod,eu\0k=1\0v") );
    assert_memory_equal(out, "team\0a b\0deployment.environment\0prod,eu\0k=1\0v", len);
    /* a key given twice keeps its last value, in its new place */
    assert_int_equal(config_parse_resource_attributes("a=1,b=2,a=3", out, sizeof(out), &len), 0);
    assert_int_equal(len, 8);
    assert_memory_equal(out, "b\0" "2\0a\0" "3\0", 8);
    /* empty values are values */
    assert_int_equal(config_parse_resource_attributes("a=", out, sizeof(out), &len), 0);
    assert_int_equal(len, 3);
    static const char *const bad[] = {"a", "=1", " =1", "%20=1", "a=1,,b=2", "a=%", "a=%4", "a=%G0",
                                      "a=%0A", "a=\x01", "a=%C3", "a=%C3%28", "a=%ED%A0%80", "a=\xff",
                                      "a=%F4%90%80%80", "%00=1", "a=\x7f"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(config_parse_resource_attributes(bad[i], out, sizeof(out), &len), -EINVAL);
    for (int i = 0; i <= RESOURCE_ATTRS_MAX; i++) /* one too many */
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "%sk%d=v", i ? "," : "", i);
    assert_int_equal(config_parse_resource_attributes(many, out, sizeof(out), &len), -EINVAL);
    *strrchr(many, ',') = '\0';
    assert_int_equal(config_parse_resource_attributes(many, out, sizeof(out), &len), 0);
    assert_int_equal(config_parse_resource_attributes("abc=def", out, 8, &len), 0); /* exactly fits */
    assert_int_equal(config_parse_resource_attributes("abc=defg", out, 8, &len), -EINVAL);
}

static void check_url(const char *in, enum config_url_kind kind, const char *want)
{
    char out[256];
    int r = config_check_url(in, kind, out, sizeof(out));
    if (want == NULL) {
        if (r == 0)
            fail_msg("accepted %s as %s", in, out);
        return;
    }
    assert_int_equal(r, 0);
    assert_string_equal(out, want);
}

static void test_check_url(void **state)
{
    (void)state;
    /* OTEL_EXPORTER_OTLP_ENDPOINT: always a base */
    check_url("http://host:4318", CONFIG_URL_BASE, "http://host:4318/v1/traces");
    check_url("http://host:4318/", CONFIG_URL_BASE, "http://host:4318/v1/traces");
    check_url("https://otlp.eu01.nr-data.net/otlp", CONFIG_URL_BASE, "https://otlp.eu01.nr-data.net/otlp/v1/traces");
    check_url("http://host/v1/traces", CONFIG_URL_BASE, "http://host/v1/traces/v1/traces");
    check_url("HTTPS://Host:443", CONFIG_URL_BASE, "https://Host:443/v1/traces");
    /* LAMBDA_TRACER_OTLP_ENDPOINT: a base, or a full URL ending in /v1/traces */
    check_url("http://host:4318", CONFIG_URL_BASE_OR_FULL, "http://host:4318/v1/traces");
    check_url("http://host:4318/v1/traces", CONFIG_URL_BASE_OR_FULL, "http://host:4318/v1/traces");
    check_url("http://h/otlp/", CONFIG_URL_BASE_OR_FULL, "http://h/otlp/v1/traces");
    check_url("http://h/v1/tracesx", CONFIG_URL_BASE_OR_FULL, "http://h/v1/tracesx/v1/traces");
    /* TRACES_ENDPOINT: as is, query allowed */
    check_url("http://h:1/custom/path?x=1", CONFIG_URL_AS_IS, "http://h:1/custom/path?x=1");
    check_url("http://[::1]:4318", CONFIG_URL_AS_IS, "http://[::1]:4318");
    check_url("http://[fd00::1]/p", CONFIG_URL_BASE, "http://[fd00::1]/p/v1/traces");
    check_url("http://127.0.0.1", CONFIG_URL_AS_IS, "http://127.0.0.1");
    static const char *const bad[] = {
        "", "host:4318", "//host:4318", "ftp://host", "file:///etc/passwd", "http://", "http:///path",
        "http://user@host", "http://user:pw@host:4318", "http://evil.com@127.0.0.1", "http://h:4318@e.com/",
        "http://h :4318", " http://h", "http://h/a b", "http://h\r\nX: 1", "http://h/\t", "http://h/\x7f",
        "http://h\xc3\xa9/", "http://h\\@e.com", "http://h#frag", "http://h/p#f", "http://h:0",
        "http://h:65536", "http://h:", "http://h:80x", "http://h:123456", "http://[::1", "http://[]:80",
        "http://[::1]x", "http://[::g]", "http://h%41", "http://:80", "http://h!/"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        check_url(bad[i], CONFIG_URL_AS_IS, NULL);
        check_url(bad[i], CONFIG_URL_BASE, NULL);
        check_url(bad[i], CONFIG_URL_BASE_OR_FULL, NULL);
    }
    /* a query cannot be a base: /v1/traces would land in it */
    check_url("http://h/?a=1", CONFIG_URL_BASE, NULL);
    check_url("http://h?a=1", CONFIG_URL_BASE_OR_FULL, NULL);
    /* too long once /v1/traces is appended */
    char out[32];
    assert_int_equal(config_check_url("http://abcdefghijklmnopq", CONFIG_URL_BASE, out, sizeof(out)),
                     -ENAMETOOLONG);
    assert_int_equal(config_check_url("http://abcdefghijklmnopq", CONFIG_URL_AS_IS, out, sizeof(out)), 0);
}

static void test_parse_daemon_env(void **state)
{
    char out[128];
    (void)state;
    assert_int_equal(config_parse_daemon_env("169.254.79.129:2000", out, sizeof(out)), 0);
    assert_string_equal(out, "169.254.79.129:2000");
    assert_int_equal(config_parse_daemon_env("tcp:10.0.0.1:2000 udp:10.0.0.2:2001", out, sizeof(out)), 0);
    assert_string_equal(out, "10.0.0.2:2001");
    assert_int_equal(config_parse_daemon_env("udp:10.0.0.2:2001 tcp:10.0.0.1:2000", out, sizeof(out)), 0);
    assert_string_equal(out, "10.0.0.2:2001");
    static const char *const bad[] = {"", "host", "udp:1.2.3.4:2000", "tcp:1.2.3.4:2000",
                                      "udp:1.2.3.4:2000 udp:1.2.3.4:2001", "tcp:a:1 tcp:b:2",
                                      "udp:a:1  tcp:b:2", "udp:a:1 tcp:b:2 x", "udp:a:0 tcp:b:2",
                                      "udp:a:1 tcp:b", "1.2.3.4:70000", " 1.2.3.4:2000", "udp: tcp:"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(config_parse_daemon_env(bad[i], out, sizeof(out)), -EINVAL);
}

/* Each OTEL_* variable alone, and against its LAMBDA_TRACER_* counterpart
 * and its TRACES_ variant. */
static void test_otel_endpoint_precedence(void **state)
{
    struct config cfg;
    (void)state;
    {
        struct fake_env env = {0};
        load(&env, &cfg);
        assert_string_equal(cfg.exporters, "xray");
        assert_string_equal(cfg.otlp_endpoint, "http://localhost:4318/v1/traces");
        assert_true(cfg.otlp_gzip);
    }
    {   /* alone: a base URL, and it turns the OTLP sink on in place of the default */
        struct fake_env env = {.pairs = {{"OTEL_EXPORTER_OTLP_ENDPOINT", "https://api.honeycomb.io"}}};
        load(&env, &cfg);
        assert_int_equal(env.warnings, 0);
        assert_string_equal(cfg.otlp_endpoint, "https://api.honeycomb.io/v1/traces");
        assert_string_equal(cfg.exporters, "otlp");
    }
    {   /* TRACES_ENDPOINT: as is, and it wins over the generic one */
        struct fake_env env = {.pairs = {{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"},
                                         {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://b:4318/custom"}}};
        load(&env, &cfg);
        assert_string_equal(cfg.otlp_endpoint, "http://b:4318/custom");
        assert_string_equal(cfg.exporters, "otlp");
    }
    {   /* LAMBDA_TRACER_OTLP_ENDPOINT wins the address; the OTEL one still turns the sink on */
        struct fake_env env = {.pairs = {{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://b:4318/custom"},
                                         {"LAMBDA_TRACER_OTLP_ENDPOINT", "http://c:4318"}}};
        load(&env, &cfg);
        assert_string_equal(cfg.otlp_endpoint, "http://c:4318/v1/traces");
        assert_string_equal(cfg.exporters, "otlp");
    }
    {   /* LAMBDA_TRACER_OTLP_ENDPOINT alone: base, sinks unchanged */
        struct fake_env env = {.pairs = {{"LAMBDA_TRACER_OTLP_ENDPOINT", "http://c:4318/"}}};
        load(&env, &cfg);
        assert_string_equal(cfg.otlp_endpoint, "http://c:4318/v1/traces");
        assert_string_equal(cfg.exporters, "xray");
    }
    {   /* an explicit LAMBDA_TRACER_EXPORTERS wins over the turning on */
        struct fake_env env = {.pairs = {{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"},
                                         {"LAMBDA_TRACER_EXPORTERS", "xray,stdout"}}};
        load(&env, &cfg);
        assert_string_equal(cfg.exporters, "xray,stdout");
        assert_string_equal(cfg.otlp_endpoint, "http://a:4318/v1/traces");
    }
    {   /* OTEL_SDK_DISABLED=true: the OTEL endpoint turns nothing on */
        struct fake_env env = {.pairs = {{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"},
                                         {"OTEL_SDK_DISABLED", "TRUE"}}};
        load(&env, &cfg);
        assert_int_equal(env.warnings, 0);
        assert_true(cfg.otel_sdk_disabled);
        assert_string_equal(cfg.exporters, "xray");
    }
    {
        struct fake_env env = {.pairs = {{"OTEL_SDK_DISABLED", "false"}}};
        load(&env, &cfg);
        assert_int_equal(env.warnings, 0);
        assert_false(cfg.otel_sdk_disabled);
    }
    {   /* the specification: only "true" is true; others warn */
        struct fake_env env = {.pairs = {{"OTEL_SDK_DISABLED", "1"}}};
        load(&env, &cfg);
        assert_int_equal(env.warnings, 1);
        assert_false(cfg.otel_sdk_disabled);
    }
}

/* A malformed endpoint is refused with one warning, the OTLP endpoint left
 * empty (the sink is then left out): no fallback to another URL. */
static void test_malformed_endpoints_are_refused(void **state)
{
    static const char *const names[] = {"LAMBDA_TRACER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                                        "OTEL_EXPORTER_OTLP_ENDPOINT"};
    static const char *const values[] = {"collector:4318", "http://user:pw@evil.example/", "http://h /x",
                                         "grpc://h:4317", "http://h\r\nX: 1", "ftp://collector/v1/traces"};
    struct config cfg;
    (void)state;
    for (size_t i = 0; i < 3; i++) {
        for (size_t k = 0; k < sizeof(values) / sizeof(values[0]); k++) {
            struct fake_env env = {.pairs = {{names[i], values[k]}}};
            load(&env, &cfg);
            assert_int_equal(env.warnings, 1);
            assert_string_equal(env.last_warned, names[i]);
            assert_string_equal(cfg.otlp_endpoint, "");
            assert_string_equal(cfg.exporters, i == 0 ? "xray" : "otlp");
        }
    }
    {   /* the higher one refused: the lower one is not used instead */
        struct fake_env env = {.pairs = {{"LAMBDA_TRACER_OTLP_ENDPOINT", "http://a@b"},
                                         {"OTEL_EXPORTER_OTLP_ENDPOINT", "http://ok:4318"}}};
        load(&env, &cfg);
        assert_int_equal(env.warnings, 1);
        assert_string_equal(cfg.otlp_endpoint, "");
    }
    /* LAMBDA_TRACER_XRAY_ENDPOINT is held to the same rules */
    check_invalid("LAMBDA_TRACER_XRAY_ENDPOINT", "https://x@xray.us-east-1.amazonaws.com", "the default");
}

static void test_otel_headers_protocol_compression_timeout(void **state)
{
    struct config cfg;
    (void)state;
    {
        struct fake_env env = {.pairs = {{"OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Basic%20abc"}}};
        load(&env, &cfg);
        assert_int_equal(env.warnings, 0);
        assert_string_equal(cfg.otlp_headers, "Authorization=Basic%20abc");
    }
    {
        struct fake_env env = {.pairs = {{"OTEL_EXPORTER_OTLP_HEADERS", "a=1"},
                                         {"OTEL_EXPORTER_OTLP_TRACES_HEADERS", "b=2"}}};
        load(&env, &cfg);
        assert_string_equal(cfg.otlp_headers, "b=2");
    }
    {
        struct fake_env env = {.pairs = {{"OTEL_EXPORTER_OTLP_TRACES_HEADERS", "b=2"},
                                         {"LAMBDA_TRACER_OTLP_HEADERS", "c=3"}}};
        load(&env, &cfg);
        assert_string_equal(cfg.otlp_headers, "c=3");
    }
    {   /* malformed: one warning naming it, no headers (not the lower one's) */
        struct fake_env env = {.pairs = {{"OTEL_EXPORTER_OTLP_TRACES_HEADERS", "k=%0d%0aX-Evil: 1"},
                                         {"OTEL_EXPORTER_OTLP_HEADERS", "a=1"}}};
        load(&env, &cfg);
        assert_int_equal(env.warnings, 1);
        assert_string_equal(env.last_warned, "OTEL_EXPORTER_OTLP_TRACES_HEADERS");
        assert_string_equal(cfg.otlp_headers, "");
    }
    {
        struct fake_env env = {.pairs = {{"OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"}}};
        load(&env, &cfg);
        assert_int_equal(env.warnings, 0);
        assert_true(cfg.otlp_json);
    }
    {
        struct fake_env env = {.pairs = {{"OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"},
                                         {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"}}};
        load(&env, &cfg);
        assert_false(cfg.otlp_json);
    }
    {
        struct fake_env env = {.pairs = {{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json"},
                                         {"LAMBDA_TRACER_OTLP_PROTOCOL", "http/protobuf"}}};
        load(&env, &cfg);
        assert_false(cfg.otlp_json);
    }
    {   /* grpc: one line, the HTTP default */
        struct fake_env env = {.pairs = {{"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"}}};
        load(&env, &cfg);
        assert_int_equal(env.warnings, 1);
        assert_string_equal(env.last_fallback, "http/protobuf");
        assert_false(cfg.otlp_json);
    }
    {
        struct fake_env env = {.pairs = {{"OTEL_EXPORTER_OTLP_COMPRESSION", "none"}}};
        load(&env, &cfg);
        assert_int_equal(env.warnings, 0);
        assert_false(cfg.otlp_gzip);
    }
    {
        struct fake_env env = {.pairs = {{"OTEL_EXPORTER_OTLP_COMPRESSION", "none"},
                                         {"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "gzip"}}};
        load(&env, &cfg);
        assert_true(cfg.otlp_gzip);
    }
    {
        struct fake_env env = {.pairs = {{"OTEL_EXPORTER_OTLP_COMPRESSION", "zstd"}}};
        load(&env, &cfg);
        assert_int_equal(env.warnings, 1);
        assert_true(cfg.otlp_gzip);
    }
    {
        struct fake_env env = {.pairs = {{"OTEL_EXPORTER_OTLP_TIMEOUT", "10000"}}};
        load(&env, &cfg);
        assert_int_equal(cfg.otlp_timeout_ms, 10000);
        assert_int_equal(cfg.export_timeout_ms, 2000);
    }
    {
        struct fake_env env = {.pairs = {{"OTEL_EXPORTER_OTLP_TIMEOUT", "10000"},
                                         {"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "700"}}};
        load(&env, &cfg);
        assert_int_equal(cfg.otlp_timeout_ms, 700);
    }
    {
        struct fake_env env = {.pairs = {{"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "700"},
                                         {"LAMBDA_TRACER_EXPORT_TIMEOUT_MS", "900"}}};
        load(&env, &cfg);
        assert_int_equal(cfg.otlp_timeout_ms, 900);
        assert_int_equal(env.warnings, 0);
    }
    {
        struct fake_env env = {.pairs = {{"OTEL_EXPORTER_OTLP_TIMEOUT", "0"}}};
        load(&env, &cfg);
        assert_int_equal(env.warnings, 1);
        assert_int_equal(cfg.otlp_timeout_ms, 2000);
    }
}

static void test_service_name_resource_and_daemon_address(void **state)
{
    struct config cfg;
    char huge[300];
    (void)state;
    {
        struct fake_env env = {.pairs = {{"OTEL_SERVICE_NAME", "checkout \xc3\xa9"},
                                         {"OTEL_RESOURCE_ATTRIBUTES", "service.name=x,team=pay%20ments"}}};
        load(&env, &cfg);
        assert_int_equal(env.warnings, 0);
        assert_string_equal(cfg.service_name, "checkout \xc3\xa9");
        assert_int_equal(cfg.resource_attrs_len, sizeof("service.name\0x\0team\0pay ments"));
        assert_memory_equal(cfg.resource_attrs, "service.name\0x\0team\0pay ments", cfg.resource_attrs_len);
    }
    memset(huge, 's', sizeof(huge) - 1);
    huge[sizeof(huge) - 1] = '\0';
    const char *const bad_names[] = {"a\nb", "\xff", huge};
    for (size_t i = 0; i < 3; i++) {
        struct fake_env env = {.pairs = {{"OTEL_SERVICE_NAME", bad_names[i]}}};
        load(&env, &cfg);
        assert_int_equal(env.warnings, 1);
        assert_string_equal(cfg.service_name, "");
    }
    {
        struct fake_env env = {.pairs = {{"OTEL_RESOURCE_ATTRIBUTES", "a=1,b"}}};
        load(&env, &cfg);
        assert_int_equal(env.warnings, 1);
        assert_string_equal(env.last_warned, "OTEL_RESOURCE_ATTRIBUTES");
        assert_int_equal(cfg.resource_attrs_len, 0);
    }
    {
        struct fake_env env = {.pairs = {{"AWS_XRAY_DAEMON_ADDRESS", "tcp:10.0.0.1:2000 udp:10.0.0.2:2001"}}};
        load(&env, &cfg);
        assert_string_equal(cfg.daemon_address, "10.0.0.2:2001");
    }
    {   /* LAMBDA_TRACER_DAEMON_ADDRESS wins */
        struct fake_env env = {.pairs = {{"AWS_XRAY_DAEMON_ADDRESS", "10.0.0.1:2000"},
                                         {"LAMBDA_TRACER_DAEMON_ADDRESS", "127.0.0.1:2000"}}};
        load(&env, &cfg);
        assert_string_equal(cfg.daemon_address, "127.0.0.1:2000");
    }
    {
        struct fake_env env = {.pairs = {{"AWS_XRAY_DAEMON_ADDRESS", "udp:10.0.0.1:2000"}}};
        load(&env, &cfg);
        assert_int_equal(env.warnings, 1);
        assert_string_equal(cfg.daemon_address, "");
    }
}


/* The names export.c knows (test_config does not link it). */
static int fake_sinks(const char *text, unsigned *ret_mask)
{
    static const char *const names[] = {"xray", "daemon", "otlp", "stdout"};
    unsigned mask = 0;
    char copy[256];
    char *save = NULL;

    if (strcasecmp(text, "none") == 0) {
        *ret_mask = 0;
        return 0;
    }
    snprintf(copy, sizeof(copy), "%s", text);
    for (char *w = strtok_r(copy, ",", &save); w != NULL; w = strtok_r(NULL, ",", &save)) {
        bool found = false;
        for (size_t i = 0; i < 4; i++)
            if (strcasecmp(w, names[i]) == 0) {
                mask |= 1u << i;
                found = true;
            }
        if (!found)
            return -EINVAL;
    }
    *ret_mask = mask;
    return 0;
}

static void load_exporters(const char *value, struct fake_env *env, struct config *cfg)
{
    memset(env, 0, sizeof(*env));
    env->pairs[0][0] = "LAMBDA_TRACER_EXPORTERS";
    env->pairs[0][1] = value;
    config_sinks_parser = fake_sinks;
    load(env, cfg);
    config_sinks_parser = NULL;
}

/* One bad name keeps the valid ones (otel,stdout used to become xray). */
static void test_exporters_keep_valid_names(void **state)
{
    struct fake_env env;
    struct config cfg;
    (void)state;

    load_exporters("otel,stdout", &env, &cfg);
    assert_string_equal(cfg.exporters, "stdout");
    assert_int_equal(env.warnings, 1);
    assert_string_equal(env.last_warned, "LAMBDA_TRACER_EXPORTERS");
    assert_non_null(strstr(env.problems, "'otel'"));
    assert_non_null(strstr(env.problems, "did you mean 'otlp'"));
    assert_string_equal(env.last_fallback, "stdout");

    /* order kept, blanks dropped, two bad names two warnings */
    load_exporters(" xray , bogus,STDOUT, x-ray ", &env, &cfg);
    assert_string_equal(cfg.exporters, "xray,STDOUT");
    assert_int_equal(env.warnings, 2);
    assert_non_null(strstr(env.problems, "'bogus' is not one of"));
    assert_null(strstr(env.problems, "'bogus' is not one of xray, xray-otlp, daemon, otlp, stdout (or none alone); did"));
    assert_non_null(strstr(env.problems, "'x-ray' is not one of xray, xray-otlp, daemon, otlp, stdout (or none alone); "
                                         "did you mean 'xray'?"));

    /* nothing valid: the default stays */
    load_exporters("otel", &env, &cfg);
    assert_string_equal(cfg.exporters, "xray");
    assert_int_equal(env.warnings, 1);
    assert_string_equal(env.last_fallback, "xray");

    /* an empty item is warned about, the rest kept */
    load_exporters("otlp,,stdout,", &env, &cfg);
    assert_string_equal(cfg.exporters, "otlp,stdout");
    assert_int_equal(env.warnings, 2);

    /* none alone is valid; none among names is not (and does not silence them) */
    load_exporters("NONE", &env, &cfg);
    assert_string_equal(cfg.exporters, "none");
    assert_int_equal(env.warnings, 0);
    load_exporters("none,stdout", &env, &cfg);
    assert_string_equal(cfg.exporters, "stdout");
    assert_int_equal(env.warnings, 1);

    /* a long bad name is cut in the warning; a blank inside a name is bad */
    load_exporters("stdout,aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", &env, &cfg);
    assert_string_equal(cfg.exporters, "stdout");
    assert_non_null(strstr(env.problems, "'aaaaaaaaaaaaaaaaaaaaaaaa...'"));
    load_exporters("std out,otlp", &env, &cfg);
    assert_string_equal(cfg.exporters, "otlp");
    assert_int_equal(env.warnings, 1);
    assert_null(strstr(env.problems, "std out"));

    /* all valid: no warning */
    load_exporters("xray,daemon,otlp,stdout", &env, &cfg);
    assert_string_equal(cfg.exporters, "xray,daemon,otlp,stdout");
    assert_int_equal(env.warnings, 0);
}

static void test_telemetry_types_keep_valid_names(void **state)
{
    struct fake_env env = {.pairs = {{"LAMBDA_TRACER_TELEMETRY_TYPES", "function,logs,extension"}}};
    struct config cfg;
    (void)state;

    load(&env, &cfg);
    assert_int_equal(cfg.telemetry_types,
                     TELEMETRY_TYPE_PLATFORM | TELEMETRY_TYPE_FUNCTION | TELEMETRY_TYPE_EXTENSION);
    assert_int_equal(env.warnings, 1);
    assert_non_null(strstr(env.problems, "'logs'"));
    assert_non_null(strstr(env.problems, "did you mean 'function'"));

    struct fake_env env2 = {.pairs = {{"LAMBDA_TRACER_TELEMETRY_TYPES", "platform,,function"}}};
    load(&env2, &cfg);
    assert_int_equal(cfg.telemetry_types, TELEMETRY_TYPE_PLATFORM | TELEMETRY_TYPE_FUNCTION);
    assert_int_equal(env2.warnings, 1);
    assert_string_equal(env2.last_fallback, "platform,function");
}


static void test_describe_states_settings_without_secrets(void **state)
{
    struct fake_env env = {.pairs = {{"LAMBDA_TRACER_SAMPLING", "all"},
                                     {"LAMBDA_TRACER_SLOW_MS", "250"},
                                     {"LAMBDA_TRACER_FLUSH", "background"},
                                     {"LAMBDA_TRACER_METRICS", "on"},
                                     {"LAMBDA_TRACER_TELEMETRY_TYPES", "function"},
                                     {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://api.example.com/v1/traces?key=SECRETQ"},
                                     {"LAMBDA_TRACER_OTLP_HEADERS", "x-api-key=SECRETH,authorization=Basic%20SECRETB"},
                                     {"LAMBDA_TRACER_DAEMON_ADDRESS", "127.0.0.1:2000"}}};
    struct config cfg;
    char line[2048];
    (void)state;

    load(&env, &cfg);
    assert_int_equal(env.warnings, 0);
    config_describe(&cfg, "xray,daemon,otlp", "https://xray.eu-west-1.amazonaws.com", true, true, line, sizeof(line));
    assert_non_null(strstr(line, "exporters=xray,daemon,otlp "));
    assert_non_null(strstr(line, "sampling=all slow_ms=250 flush=background telemetry=platform,function metrics=on"));
    assert_non_null(strstr(line, "xray_endpoint=https://xray.eu-west-1.amazonaws.com"));
    assert_non_null(strstr(line, "daemon_address=127.0.0.1:2000"));
    assert_non_null(strstr(line, "otlp_url=https://api.example.com/v1/traces?(query not shown)"));
    assert_non_null(strstr(line, "otlp_headers=x-api-key,authorization(values not shown)"));
    assert_null(strstr(line, "SECRET"));

    /* defaults; endpoints of unused exporters are left out */
    struct fake_env none = {0};
    load(&none, &cfg);
    config_describe(&cfg, "", NULL, false, false, line, sizeof(line));
    assert_non_null(strstr(line, "exporters=none sampling=smart slow_ms=auto flush=auto(eager for the first"));
    assert_non_null(strstr(line, "metrics=off"));
    assert_null(strstr(line, "otlp_url"));
    assert_null(strstr(line, "daemon_address"));
    /* a small buffer stays terminated */
    config_describe(&cfg, "xray", "https://x", false, false, line, 16);
    assert_int_equal(strlen(line), 15);
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
        cmocka_unit_test(test_otlp_headers_percent_decoded),
        cmocka_unit_test(test_otlp_headers_problem_names_the_entry),
        cmocka_unit_test(test_parse_resource_attributes),
        cmocka_unit_test(test_check_url),
        cmocka_unit_test(test_parse_daemon_env),
        cmocka_unit_test(test_otel_endpoint_precedence),
        cmocka_unit_test(test_malformed_endpoints_are_refused),
        cmocka_unit_test(test_otel_headers_protocol_compression_timeout),
        cmocka_unit_test(test_service_name_resource_and_daemon_address),
        cmocka_unit_test(test_exporters_keep_valid_names),
        cmocka_unit_test(test_telemetry_types_keep_valid_names),
        cmocka_unit_test(test_describe_states_settings_without_secrets),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
