/*
 * fuzz_otlp_headers.c - LAMBDA_TRACER_OTLP_HEADERS and
 * OTEL_EXPORTER_OTLP_[TRACES_]HEADERS ("name=value,...", percent-encoded
 * values) on arbitrary bytes.
 *
 * Every line accepted is "token: value" with a non-empty RFC 9110 token and
 * a decoded value without control bytes (no CR/LF however it was written),
 * within the line and count caps.  Round trip: the accepted lines written
 * back as "name=value,..." with every value byte percent-encoded parse to
 * the same lines.  A violation aborts.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define MAX_LINES 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
    if (!ok)
        abort();
}

static bool tchar(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char lines[MAX_LINES][CONFIG_OTLP_HEADER_LINE_BYTES];
    static char again[MAX_LINES][CONFIG_OTLP_HEADER_LINE_BYTES];
    char *text = malloc(size + 1);
    static char joined[MAX_LINES * CONFIG_OTLP_HEADER_LINE_BYTES * 3 + 64];
    size_t count = SIZE_MAX, count2 = SIZE_MAX, off = 0;

    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0'; /* the setting is a C string: it ends at the first NUL */
    if (config_parse_otlp_headers(text, lines, MAX_LINES, &count) < 0) {
        /* the warning's reason: refused alike, one short printable line
         * naming the entry (test_config checks that values stay out) */
        char why[200];
        check(config_otlp_headers_problem(text, why, sizeof(why)) == -EINVAL);
        check(strncmp(why, "entry ", 6) == 0 && strlen(why) < sizeof(why));
        for (const char *c = why; *c != '\0'; c++)
            check(*c >= ' ' && *c < 0x7f);
        free(text);
        return 0;
    }
    {
        char why[200] = "x";
        check(config_otlp_headers_problem(text, why, sizeof(why)) == 0 && why[0] == '\0');
    }
    free(text);
    check(count <= MAX_LINES);
    for (size_t i = 0; i < count; i++) {
        const char *line = lines[i];
        const char *colon = strchr(line, ':');
        size_t len = strnlen(line, CONFIG_OTLP_HEADER_LINE_BYTES);

        check(len < CONFIG_OTLP_HEADER_LINE_BYTES);
        check(colon != NULL && colon != line && colon[1] == ' ');
        for (const char *p = line; p < colon; p++)
            check(tchar(*p));
        for (const char *p = colon + 1; *p; p++)
            check((unsigned char)*p >= 0x20 && *p != 0x7f);
        int n = snprintf(joined + off, sizeof(joined) - off, "%s%.*s=", i ? "," : "", (int)(colon - line),
                         line);
        check(n > 0 && (size_t)n < sizeof(joined) - off);
        off += (size_t)n;
        for (const char *p = colon + 2; *p; p++) {
            n = snprintf(joined + off, sizeof(joined) - off, "%%%02X", (unsigned)(unsigned char)*p);
            check(n == 3);
            off += 3;
        }
    }
    joined[off] = '\0';
    if (count == 0)
        return 0;
    check(config_parse_otlp_headers(joined, again, MAX_LINES, &count2) == 0);
    check(count2 == count);
    for (size_t i = 0; i < count; i++)
        check(strcmp(lines[i], again[i]) == 0);
    return 0;
}
