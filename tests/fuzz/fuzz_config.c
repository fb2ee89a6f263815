/*
 * fuzz_config.c - configuration loading from arbitrary environments.
 *
 * The input is read as NAME=VALUE lines; config_load must never fail, and
 * whatever it produces must lie inside the documented ranges.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

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
    config_load(&cfg, lookup, &env, warn, NULL);
    free(env.text);
    if (!(cfg.telemetry_types & TELEMETRY_TYPE_PLATFORM) || cfg.buffer_max_items < 1000 ||
        cfg.buffer_max_items > 10000 || cfg.buffer_max_bytes < 262144 ||
        cfg.buffer_max_bytes > 1048576 || cfg.buffer_timeout_ms < 25 ||
        cfg.buffer_timeout_ms > 30000 || cfg.listener_port == 9001)
        abort();
    return 0;
}
