/*
 * otlp_encode.h - OTLP ExportTraceServiceRequest bodies from the trace model
 * (trace.h), in OTLP/JSON and in binary protobuf, for POST /v1/traces.
 *
 * Reference: lambda-protocol.md 5.1 (semantic conventions), 5.2 (OTLP/HTTP
 * and its JSON rules).  Field numbers: opentelemetry-proto,
 * opentelemetry/proto/trace/v1/trace.proto @ 05e412fbc8a6d4a5af55ddc1b56c7d09f0ffcba9,
 * common/v1 value.proto + scope.proto @ ed8a535b7ca644f90366862ceeca4716b41dec7c,
 * resource/v1/resource.proto @ 1562fa6f892be02f92b10d7dc2d3765417addd0f,
 * collector/trace/v1/trace_service.proto @ 06e6c1e177293f25c9e4de6efdd1873cec525a8c
 * (copies under tests/tools/proto/, used by the independent decoder).
 *
 * One request holds N segments that share one resource: one resourceSpans
 * with the resource attributes (cloud.provider "aws", cloud.platform
 * "aws_lambda", cloud.region, cloud.account.id, faas.name, faas.version,
 * faas.instance, faas.max_memory in bytes, service.name; empty or unknown
 * ones left out) and one scopeSpans (scope "lambda-tracer" + version).
 * Each segment becomes a SERVER span (its parentSpanId: the upstream
 * parent_id when set) and each of its spans an INTERNAL span (parent: the
 * parent span, or the segment).  traceId is the X-Ray Root's 8 + 24 hex
 * digits; ids are hex strings in JSON (lower case) and raw bytes (16, 8) in
 * protobuf.  Times are integer nanoseconds (decimal strings in JSON).  The
 * segment's attrs with an otel_key become its attributes (a repeated key is
 * dropped and counted); status is ERROR (2) when error or fault, with the
 * cause type as message, else OK (1); a cause adds an "exception" event
 * (exception.type, exception.message) at the segment's end, and a
 * snapshot (snapshot_json) an OTLP_SNAPSHOT_EVENT event at snapshot_us
 * with the JSON text as its string attribute OTLP_SNAPSHOT_EVENT.  Spans carry
 * flags = 1 (W3C "sampled") when the segment is sampled.
 *
 * In-progress spans (end TRACE_NO_END) have no end time, which OTLP needs.
 * now_us decides:
 *   - now_us == TRACE_NO_END: they are SKIPPED, together with their
 *     descendants (which would otherwise point at a missing parent); a
 *     segment in progress is skipped whole.  For periodic flushes.
 *   - otherwise they are ENDED AT now_us (never before their start), with
 *     status left unset (the outcome is unknown) and the boolean attribute
 *     "lambda_tracer.in_progress" = true.  For the last flush at SHUTDOWN
 *     (timeouts, crashes) so nothing is lost.
 *
 * A segment that fails the model's rules (bad ids, bad parent indexes,
 * negative times, counts over TRACE_MAX_*) is left out and counted; the
 * rest of the batch is still encoded.
 *
 * Both functions append to out and leave it unchanged on failure: 0,
 * -ENOBUFS (over out's cap: send fewer segments), -ENOMEM, -EINVAL (n == 0
 * or NULL arguments).  No allocation except in out; no logging; any thread.
 */
#ifndef LAMBDA_TRACER_OTLP_ENCODE_H
#define LAMBDA_TRACER_OTLP_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "trace.h"

#define OTLP_JSON_CONTENT_TYPE "application/json"
#define OTLP_PROTOBUF_CONTENT_TYPE "application/x-protobuf"
#define OTLP_SCOPE_NAME "lambda-tracer"
#define OTLP_IN_PROGRESS_ATTR "lambda_tracer.in_progress"
#define OTLP_SNAPSHOT_EVENT "lambda_tracer.snapshot"

/* What the encoder did; each call adds to the struct (it is not zeroed). */
struct otlp_encode_stats {
    unsigned long spans_encoded;
    unsigned long spans_skipped_in_progress; /* now_us == TRACE_NO_END */
    unsigned long spans_ended_at_now;        /* now_us given */
    unsigned long attributes_skipped;        /* repeated otel_key, unknown value kind */
    unsigned long segments_invalid;          /* left out: broken model */
};

/* The request as OTLP/JSON (Content-Type: application/json). */
int otlp_encode_json(struct buf *out, const struct trace_resource *res,
                     const struct trace_segment *segs, size_t n, int64_t now_us,
                     struct otlp_encode_stats *stats) __attribute__((warn_unused_result));

/* The request as binary protobuf (Content-Type: application/x-protobuf). */
int otlp_encode_protobuf(struct buf *out, const struct trace_resource *res,
                         const struct trace_segment *segs, size_t n, int64_t now_us,
                         struct otlp_encode_stats *stats) __attribute__((warn_unused_result));

#endif
