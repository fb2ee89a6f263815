/*
 * telemetry_body.h - the benchmark's Telemetry API batch, shared by the
 * load generator (loadgen.c, which posts it) and ingest_micro.c (which
 * parses it in-process), so both measure the same bytes.  Header-only:
 * each program includes it once and defines die().
 *
 * Each simulated invocation is platform.start, LINES function log lines of
 * LINE_BYTES bytes of text (the text log format: a string record),
 * platform.runtimeDone with its spans and platform.report with its
 * metrics; a batch holds RECORDS records (whole invocations).
 */
#ifndef LAMBDA_TRACER_BENCH_TELEMETRY_BODY_H
#define LAMBDA_TRACER_BENCH_TELEMETRY_BODY_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reports the failure and exits (the including program's). */
static void die(const char *what);

struct text {
    char *p;
    size_t len;
    size_t cap;
};

static void text_add(struct text *t, const char *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 4096;
        while (t->len + n + 1 > cap)
            cap *= 2;
        char *p = realloc(t->p, cap);
        if (p == NULL)
            die("out of memory");
        t->p = p;
        t->cap = cap;
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = '\0';
}

static void text_printf(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_printf(struct text *t, const char *fmt, ...)
{
    char tmp[2048];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp))
        die("record too long");
    text_add(t, tmp, (size_t)n);
}

/* A request id unique to (batch, invocation), in the UUID layout. */
static void request_id(char out[37], unsigned long batch, unsigned long inv)
{
    snprintf(out, 37, "%08lx-bbbb-4ccc-8ddd-%012lx", batch & 0xffffffffUL, inv & 0xffffffffffffUL);
}

static void build_body(struct text *body, unsigned long b, unsigned long records, unsigned long lines,
                       unsigned long line_bytes)
{
    static const char t0[] = "2026-11-23T10:00:00.000Z";
    char *msg = malloc(line_bytes + 1);
    unsigned long per_inv = lines + 3;
    unsigned long invs = records / per_inv;

    if (msg == NULL)
        die("out of memory");
    for (unsigned long i = 0; i < line_bytes; i++)
        msg[i] = (char)('a' + (i % 26));
    msg[line_bytes] = '\0';
    text_add(body, "[", 1);
    for (unsigned long i = 0; i < invs; i++) {
        char rid[37];
        request_id(rid, b, i);
        text_printf(body,
                    "%s{\"time\":\"%s\",\"type\":\"platform.start\",\"record\":{\"requestId\":\"%s\","
                    "\"version\":\"$LATEST\",\"tracing\":{\"spanId\":\"%016lx\",\"type\":\"X-Amzn-Trace-Id\","
                    "\"value\":\"Root=1-6b04c983-%012lx%012lx;Parent=%016lx;Sampled=1\"}}}",
                    i ? "," : "", t0, rid, i, b, i, i);
        for (unsigned long l = 0; l < lines; l++) {
            /* text format: "<time>\t<request id>\tINFO\t<message>\n" as a string record */
            text_printf(body, ",{\"time\":\"%s\",\"type\":\"function\",\"record\":\"%s\\t%s\\tINFO\\t", t0, t0,
                        rid);
            text_add(body, msg, line_bytes);
            text_add(body, "\\n\"}", 4);
        }
        text_printf(body,
                    ",{\"time\":\"%s\",\"type\":\"platform.runtimeDone\",\"record\":{\"requestId\":\"%s\","
                    "\"status\":\"success\",\"metrics\":{\"durationMs\":12.5,\"producedBytes\":42},"
                    "\"spans\":[{\"name\":\"responseLatency\",\"start\":\"%s\",\"durationMs\":11.0},"
                    "{\"name\":\"responseDuration\",\"start\":\"%s\",\"durationMs\":0.1},"
                    "{\"name\":\"runtimeOverhead\",\"start\":\"%s\",\"durationMs\":0.3}]}}",
                    t0, rid, t0, t0, t0);
        text_printf(body,
                    ",{\"time\":\"%s\",\"type\":\"platform.report\",\"record\":{\"requestId\":\"%s\","
                    "\"status\":\"success\",\"metrics\":{\"durationMs\":13.1,\"billedDurationMs\":14,"
                    "\"memorySizeMB\":128,\"maxMemoryUsedMB\":31},\"spans\":[{\"name\":\"extensionOverhead\","
                    "\"start\":\"%s\",\"durationMs\":0.2}]}}",
                    t0, rid, t0);
    }
    text_add(body, "]", 1);
    free(msg);
}

#endif
