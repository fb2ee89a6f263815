/*
 * ingest_micro.c - the pipeline thread's share of figure 4 without threads
 * or sockets, for profilers (callgrind gives repeatable instruction
 * counts): builds the load generator's batches (telemetry_body.h: 1,000
 * records, per invocation platform.start, LINES function lines of 1 KB,
 * runtimeDone, report), then parses each, feeds every event to the tracer
 * and encodes every segment as export_submit does: X-Ray documents (the
 * stdout, daemon and API sinks), OTLP (protobuf or JSON), or both.  The
 * tracer has the binary's default price, so segments carry its cost
 * attributes as they do in the benchmark.
 *
 *   ingest_micro [BATCHES [LINES [xray|otlp|otlp-json|both]]]
 *
 * prints records, segments, CPU seconds and records per CPU second of the
 * parse-trace-encode loop (the bodies are built before the clock starts).
 * Instructions per record, load-independent:
 *
 *   valgrind --tool=callgrind --toggle-collect='ingest_batch*' ingest_micro 20 7
 *
 * (the collected total divided by the records).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "cost.h"
#include "otlp_encode.h"
#include "telemetry.h"
#include "telemetry_body.h"
#include "tracer.h"
#include "xray_encode.h"

struct sink {
    struct xray_docs docs;
    struct buf otlp;
    bool xray, otlp_pb, otlp_json;
    struct tracer *t;
    unsigned long segments;
    unsigned long bytes;
};

static void emit(const struct trace_segment *seg, bool final, void *ctx)
{
    struct sink *s = ctx;

    (void)final;
    if (s->xray && xray_encode_split(seg, XRAY_DOC_MAX_BYTES, &s->docs, NULL) == 0)
        s->bytes += buf_len(&s->docs.text);
    if (s->otlp_pb || s->otlp_json) {
        struct trace_resource res;
        int r;
        tracer_get_resource(s->t, &res);
        buf_reset(&s->otlp);
        r = s->otlp_json ? otlp_encode_json(&s->otlp, &res, seg, 1, TRACE_NO_END, NULL)
                         : otlp_encode_protobuf(&s->otlp, &res, seg, 1, TRACE_NO_END, NULL);
        if (r == 0)
            s->bytes += buf_len(&s->otlp);
    }
    s->segments++;
}

/* One batch as the pipeline handles it: parsed in place in the received
 * body, every event to the tracer (which encodes each segment it
 * finishes), freed.  The records, or -1.  Out of line: what a profiler
 * counts (valgrind --tool=callgrind --toggle-collect='ingest_batch*'). */
__attribute__((noinline)) static long ingest_batch(struct tracer *t, struct text *body)
{
    struct tel_batch *batch = NULL;
    long records;

    if (tel_batch_parse_inplace(body->p, body->len, &batch, NULL) < 0)
        return -1;
    for (size_t i = 0; i < batch->count; i++)
        tracer_on_telemetry(t, &batch->events[i]);
    records = (long)batch->count;
    tel_batch_free(batch);
    return records;
}

static void die(const char *what)
{
    fprintf(stderr, "ingest_micro: %s\n", what);
    exit(2);
}

int main(int argc, char **argv)
{
    unsigned long batches = argc > 1 ? strtoul(argv[1], NULL, 10) : 20;
    unsigned long lines = argc > 2 ? strtoul(argv[2], NULL, 10) : 7;
    const char *enc = argc > 3 ? argv[3] : "xray";
    struct sink sink = {.segments = 0};
    struct tracer_options opts = {
        .function_name = "bench-fn", .function_version = "$LATEST", .account_id = "",
        .region = "us-east-1", .memory_size_mb = 128, .timeout_margin_us = 0,
        .log_tail_lines = 20, .log_tail_max_bytes = 4096, .emit = emit, .ctx = &sink};
    struct tracer *t;
    unsigned long records = 0;
    struct timespec a, b;

    sink.xray = strcmp(enc, "xray") == 0 || strcmp(enc, "both") == 0;
    sink.otlp_pb = strcmp(enc, "otlp") == 0 || strcmp(enc, "both") == 0;
    sink.otlp_json = strcmp(enc, "otlp-json") == 0;
    if (!sink.xray && !sink.otlp_pb && !sink.otlp_json)
        die("the encoding is xray, otlp, otlp-json or both");
    cost_price_default(cost_arch_built(), &opts.price);
    xray_docs_init(&sink.docs);
    buf_init(&sink.otlp, 4UL * 1024 * 1024);
    t = tracer_new(&opts);
    sink.t = t;
    if (t == NULL)
        return 1;
    struct text *bodies = calloc(batches, sizeof(*bodies));
    if (bodies == NULL)
        return 1;
    for (unsigned long n = 0; n < batches; n++)
        build_body(&bodies[n], n, 1000, lines, 1024);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
    for (unsigned long n = 0; n < batches; n++) {
        long r = ingest_batch(t, &bodies[n]);

        if (r < 0)
            return 1;
        records += (unsigned long)r;
    }
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
    for (unsigned long n = 0; n < batches; n++)
        free(bodies[n].p);
    free(bodies);
    double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    printf("records %lu segments %lu bytes %lu cpu_s %.4f records_per_s %.0f\n",
           records, sink.segments, sink.bytes, s, (double)records / s);
    tracer_destroy(t);
    xray_docs_free(&sink.docs);
    buf_free(&sink.otlp);
    return 0;
}
