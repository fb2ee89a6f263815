/*
 * fuzz_config.c - configuration loading from arbitrary environments.
 *
 * The input is read as NAME=VALUE lines; config_load must never fail, and
 * whatever it produces must lie inside the documented ranges.  Every value
 * it keeps must also be usable by the module that consumes it (the sink
 * list by the exporter, the daemon address by the UDP sender, the OTLP
 * headers by the exporter, the endpoints by the strict URL check), so a bad setting is refused, with its one
 * warning, where it is read and never later.  A violation aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "export.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input with every newline replaced by NUL: a run of C strings. */
struct env {
    char *text;
    size_t size;
};

static const char *lookup(const char *name, void *ctx)
{
    const struct env *env = ctx;
    size_t name_len = strlen(name);
    size_t off = 0;

    while (off < env->size) {
        const char *line = env->text + off;
        size_t len = strlen(line);
        if (len > name_len && strncmp(line, name, name_len) == 0 && line[name_len] == '=')
            return line + name_len + 1;
        off += len + 1;
    }
    return NULL;
}

static void warn(const char *name, const char *problem, const char *fallback, void *ctx)
{
    (void)ctx;
    if (name == NULL || problem == NULL || fallback == NULL)
        abort();
}

static void check_consumers(const struct config *cfg)
{
    static char lines[CONFIG_OTLP_MAX_HEADERS][CONFIG_OTLP_HEADER_LINE_BYTES];
    char host[CONFIG_HOST_MAX];
    uint16_t port;
    unsigned mask;
    size_t count;

    if (export_parse_sinks(cfg->exporters, &mask) < 0)
        abort();
    if (cfg->daemon_address[0] != '\0' &&
        config_parse_host_port(cfg->daemon_address, host, sizeof(host), &port) < 0)
        abort();
    if (config_parse_otlp_headers(cfg->otlp_headers, lines, CONFIG_OTLP_MAX_HEADERS, &count) < 0)
        abort();
    /* endpoints: "" (an OTLP endpoint refused: the sink is left out) or a
     * URL the strict check takes as it is */
    {
        char url[1100];
        if ((cfg->otlp_endpoint[0] != '\0' &&
             (config_check_url(cfg->otlp_endpoint, CONFIG_URL_AS_IS, url, sizeof(url)) < 0 ||
              strcmp(url, cfg->otlp_endpoint) != 0)) ||
            (cfg->xray_endpoint[0] != '\0' &&
             config_check_url(cfg->xray_endpoint, CONFIG_URL_AS_IS, url, sizeof(url)) < 0))
            abort();
    }
    if (cfg->otlp_timeout_ms < 50 || cfg->otlp_timeout_ms > 30000 ||
        cfg->resource_attrs_len > sizeof(cfg->resource_attrs) ||
        (cfg->resource_attrs_len > 0 && cfg->resource_attrs[cfg->resource_attrs_len - 1] != '\0') ||
        strnlen(cfg->service_name, sizeof(cfg->service_name)) == sizeof(cfg->service_name))
        abort();
    /* cost and metrics: a price is the table's (< 0) or a checked one;
     * the namespace is one CloudWatch takes; the interval is bounded */
    if (!(cfg->price_gb_s_usd < 0 || (cfg->price_gb_s_usd >= 0 && cfg->price_gb_s_usd < 1)) ||
        !(cfg->price_request_usd < 0 || (cfg->price_request_usd >= 0 && cfg->price_request_usd < 1)))
        abort();
    if (cfg->metrics_namespace[0] == '\0' || strncmp(cfg->metrics_namespace, "AWS/", 4) == 0 ||
        cfg->metrics_interval_s < 1 || cfg->metrics_interval_s > 3600)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct env env;
    struct config cfg;

    env.text = malloc(size + 1);
    if (env.text == NULL)
        return 0;
    memcpy(env.text, data, size);
    env.text[size] = '\0';
    env.size = size;
    for (size_t i = 0; i < size; i++)
        if (env.text[i] == '\n')
            env.text[i] = '\0';
    config_sinks_parser = export_parse_sinks;
    config_load(&cfg, lookup, &env, warn, NULL);
    free(env.text);
    if (!(cfg.telemetry_types & TELEMETRY_TYPE_PLATFORM) || cfg.buffer_max_items < 1000 ||
        cfg.buffer_max_items > 10000 || cfg.buffer_max_bytes < 262144 ||
        cfg.buffer_max_bytes > 1048576 || cfg.buffer_timeout_ms < 25 ||
        cfg.buffer_timeout_ms > 30000 || cfg.listener_port == 9001 || cfg.slow_ms > 900000 ||
        (cfg.sampling != SAMPLING_POLICY_SMART && cfg.sampling != SAMPLING_POLICY_HEADER &&
         cfg.sampling != SAMPLING_POLICY_ALL))
        abort();
    check_consumers(&cfg);
    {   /* a list with bad names keeps only names the exporter takes */
        unsigned sinks;
        if (export_parse_sinks(cfg.exporters, &sinks) < 0)
            abort();
    }
    return 0;
}
