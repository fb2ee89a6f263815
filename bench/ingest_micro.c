/*
 * ingest_micro.c - the pipeline thread's share of figure 4 without threads
 * or sockets, for profilers (callgrind gives repeatable instruction
 * counts): builds the load generator's batch (1,000 records: per
 * invocation platform.start, LINES function lines of 1 KB, runtimeDone,
 * report), then BATCHES times parses it, feeds every event to the tracer
 * and encodes every segment as X-Ray documents, as export_submit does.
 *
 *   ingest_micro [BATCHES [LINES]]
 *
 * prints records, segments, CPU seconds and records per CPU second of the
 * parse-trace-encode loop (the bodies are built before the clock starts).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "telemetry.h"
#include "tracer.h"
#include "xray_encode.h"

struct sink {
    struct xray_docs docs;
    unsigned long segments;
    unsigned long bytes;
};

static void emit(const struct trace_segment *seg, bool final, void *ctx)
{
    struct sink *s = ctx;

    (void)final;
    if (xray_encode_split(seg, XRAY_DOC_MAX_BYTES, &s->docs, NULL) == 0) {
        s->segments++;
        s->bytes += buf_len(&s->docs.text);
    }
}

static void add(struct buf *b, const char *text)
{
    if (buf_append_str(b, text) < 0) {
        fputs("ingest_micro: out of memory\n", stderr);
        exit(1);
    }
}

static void build(struct buf *body, unsigned long batch, unsigned lines)
{
    static const char t0[] = "2026-11-23T10:00:00.000Z";
    char line[1025];
    char rec[2048];
    unsigned invs = 1000 / (lines + 3);

    for (int i = 0; i < 1024; i++)
        line[i] = (char)('a' + i % 26);
    line[1024] = '\0';
    add(body, "[");
    for (unsigned i = 0; i < invs; i++) {
        char rid[64];
        snprintf(rid, sizeof(rid), "%08lx-bbbb-4ccc-8ddd-%012x", batch, i);
        snprintf(rec, sizeof(rec),
                 "%s{\"time\":\"%s\",\"type\":\"platform.start\",\"record\":{\"requestId\":\"%s\","
                 "\"version\":\"$LATEST\",\"tracing\":{\"spanId\":\"%016x\",\"type\":\"X-Amzn-Trace-Id\","
                 "\"value\":\"Root=1-6b04c983-%012lx%012x;Parent=%016x;Sampled=1\"}}}",
                 i ? "," : "", t0, rid, i, batch, i, i);
        add(body, rec);
        for (unsigned l = 0; l < lines; l++) {
            snprintf(rec, sizeof(rec),
                     ",{\"time\":\"%s\",\"type\":\"function\",\"record\":\"%s\\t%s\\tINFO\\t%s\\n\"}",
                     t0, t0, rid, line);
            add(body, rec);
        }
        snprintf(rec, sizeof(rec),
                 ",{\"time\":\"%s\",\"type\":\"platform.runtimeDone\",\"record\":{\"requestId\":\"%s\","
                 "\"status\":\"success\",\"metrics\":{\"durationMs\":12.5,\"producedBytes\":42},"
                 "\"spans\":[{\"name\":\"responseLatency\",\"start\":\"%s\",\"durationMs\":11.0},"
                 "{\"name\":\"responseDuration\",\"start\":\"%s\",\"durationMs\":0.1},"
                 "{\"name\":\"runtimeOverhead\",\"start\":\"%s\",\"durationMs\":0.3}]}}",
                 t0, rid, t0, t0, t0);
        add(body, rec);
        snprintf(rec, sizeof(rec),
                 ",{\"time\":\"%s\",\"type\":\"platform.report\",\"record\":{\"requestId\":\"%s\","
                 "\"status\":\"success\",\"metrics\":{\"durationMs\":13.1,\"billedDurationMs\":14,"
                 "\"memorySizeMB\":128,\"maxMemoryUsedMB\":31},\"spans\":[{\"name\":\"extensionOverhead\","
                 "\"start\":\"%s\",\"durationMs\":0.2}]}}",
                 t0, rid, t0);
        add(body, rec);
    }
    add(body, "]");
}

int main(int argc, char **argv)
{
    unsigned long batches = argc > 1 ? strtoul(argv[1], NULL, 10) : 20;
    unsigned lines = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 7;
    struct sink sink = {.segments = 0};
    struct tracer_options opts = {
        .function_name = "bench-fn", .function_version = "$LATEST", .account_id = "",
        .region = "us-east-1", .memory_size_mb = 128, .timeout_margin_us = 0,
        .log_tail_lines = 20, .log_tail_max_bytes = 4096, .emit = emit, .ctx = &sink};
    struct tracer *t;
    unsigned long records = 0;
    struct timespec a, b;

    xray_docs_init(&sink.docs);
    t = tracer_new(&opts);
    if (t == NULL)
        return 1;
    struct buf *bodies = calloc(batches, sizeof(*bodies));
    if (bodies == NULL)
        return 1;
    for (unsigned long n = 0; n < batches; n++) {
        buf_init(&bodies[n], 4u << 20);
        build(&bodies[n], n, lines);
    }
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
    for (unsigned long n = 0; n < batches; n++) {
        struct tel_batch *batch = NULL;

        if (tel_batch_parse(buf_data(&bodies[n]), buf_len(&bodies[n]), &batch) < 0)
            return 1;
        for (size_t i = 0; i < batch->count; i++)
            tracer_on_telemetry(t, &batch->events[i]);
        records += batch->count;
        tel_batch_free(batch);
    }
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
    for (unsigned long n = 0; n < batches; n++)
        buf_free(&bodies[n]);
    free(bodies);
    double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    printf("records %lu segments %lu bytes %lu cpu_s %.4f records_per_s %.0f\n",
           records, sink.segments, sink.bytes, s, (double)records / s);
    tracer_destroy(t);
    xray_docs_free(&sink.docs);
    return 0;
}
