/*
 * log.c - see log.h.
 *
 * Each line is formatted into a stack buffer and written with a single
 * write(2), so lines from different threads never interleave mid-line.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096 /* the shutdown summary holds every counter */
#define LOG_PREFIX_MAX 64

enum log_level log_current_level = LOG_LEVEL_INFO;
static char log_prefix[LOG_PREFIX_MAX] = "lambda-tracer";

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

void log_set_prefix(const char *prefix)
{
    if (prefix == NULL || prefix[0] == '\0')
        return;
    snprintf(log_prefix, sizeof(log_prefix), "%s", prefix);
}

int log_level_parse(const char *text, enum log_level *ret_level)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};

    if (text == NULL)
        return -EINVAL;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcasecmp(text, names[i]) == 0) {
            *ret_level = (enum log_level)i;
            return 0;
        }
    }
    if (strcasecmp(text, "warning") == 0) {
        *ret_level = LOG_LEVEL_WARN;
        return 0;
    }
    return -EINVAL;
}

const char *log_level_name(enum log_level level)
{
    if ((unsigned)level >= sizeof(level_names) / sizeof(level_names[0]))
        return "?";
    return level_names[level];
}

void log_write(enum log_level level, const char *fmt, ...)
{
    char line[LOG_LINE_MAX];
    va_list ap;
    int n;
    int m;
    size_t len;

    va_start(ap, fmt);
    n = snprintf(line, sizeof(line), "[%s] %s ", log_prefix, log_level_name(level));
    len = n > 0 ? (size_t)n : 0;
    /* va_start is above; the analyzer misreads it. */
    m = vsnprintf(line + len, sizeof(line) - len, fmt, ap); /* NOLINT(clang-analyzer-valist.Uninitialized) */
    va_end(ap);
    if (n < 0 || m < 0)
        return;
    len += (size_t)m;
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2; /* truncated: still end the line */
    line[len++] = '\n';

    /* Best effort: a failing stderr must never affect the extension. */
    const char *p = line;
    while (len > 0) {
        ssize_t w = write(STDERR_FILENO, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        len -= (size_t)w;
    }
}
