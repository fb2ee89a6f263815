/*
 * xray_encode.h - X-Ray segment documents from the trace model (trace.h),
 * the size-limit splitter, and the two transports' framing (daemon UDP
 * datagram, PutTraceSegments body).
 *
 * Reference: lambda-protocol.md 4.2 (fields), 4.3 (schema), 4.4 (limits),
 * 4.5 (daemon), 4.6 (PutTraceSegments); traps 23-26, 31.
 *
 * What a segment document holds: name, id, trace_id, parent_id (when set),
 * start_time and end_time (epoch seconds printed from integer microseconds,
 * "1480615200.010000": no float rounding) or "in_progress": true, origin,
 * the `aws` block (request_id, function_arn, function_version, account_id;
 * only the non-empty ones), error / fault / throttle only when true, cause
 * as {"exceptions":[{"id","type","message"}]} when cause_type is set,
 * annotations (ANNOTATION attrs with an xray_key), metadata under the
 * "lambda_tracer" namespace (METADATA attrs with an xray_key; the key
 * "snapshot" is reserved for the segment's snapshot_json, copied as is when
 * it has the shape of a JSON object, else left out and counted as a
 * metadata skip) and the spans
 * as subsegments nested by their parent index.
 *
 * What is left out and counted rather than sent as an invalid document:
 * annotation keys outside [A-Za-z0-9_]{1,500}, annotation or metadata
 * values that are NaN or infinite, a second attribute with the same key.
 * Names (segment and subsegment) have ASCII characters outside X-Ray's
 * allowed set (letters, digits, space and _.:/%&#=+-@) replaced with '_';
 * non-ASCII UTF-8 is kept as is (it is not checked against the Unicode
 * letter/digit classes X-Ray accepts).
 *
 * Inputs the tracer must get right (-EINVAL otherwise, nothing written):
 * valid trace and segment ids, a valid parent_id when non-empty, valid span
 * ids, span parents that are -1 or an index of an earlier-or-later span
 * with no cycle, non-empty names, start times set, a 16-hex cause_id when
 * cause_type is set, counts within TRACE_MAX_*.
 *
 * Every function appends to the caller's buffer and, on failure, leaves it
 * as it was.  No allocation except in the buffers; no logging; any thread
 * (one segment, one set of buffers per call).
 */
#ifndef LAMBDA_TRACER_XRAY_ENCODE_H
#define LAMBDA_TRACER_XRAY_ENCODE_H

#include <stddef.h>

#include "buf.h"
#include "trace.h"

/* X-Ray segment document size limit, PutTraceSegments and daemon alike:
 * "64 KB (not adjustable)" (X-Ray quotas; reference 4.4). */
#define XRAY_DOC_MAX_BYTES (64UL * 1024)

/* The daemon's header line (reference 4.5).  The daemon splits at the first
 * newline and accepts format "json", version 1. */
#define XRAY_DAEMON_HEADER "{\"format\": \"json\", \"version\": 1}\n"
#define XRAY_DAEMON_HEADER_LEN (sizeof(XRAY_DAEMON_HEADER) - 1)
/* One UDP datagram: the daemon reads 64 KiB per packet, and UDP over IPv4
 * carries at most 65,535 - 8 - 20 = 65,507 payload bytes. */
#define XRAY_DATAGRAM_MAX_BYTES 65507UL
/* The largest document that fits a datagram after the header. */
#define XRAY_DAEMON_DOC_MAX_BYTES (XRAY_DATAGRAM_MAX_BYTES - XRAY_DAEMON_HEADER_LEN)

/* The daemon never sends more than 50 documents per PutTraceSegments call
 * (reference 4.5); a sensible batch size for ours too. */
#define XRAY_PUT_MAX_DOCS 50

/* Metadata values must sit inside a namespace object (trap 24). */
#define XRAY_METADATA_NAMESPACE "lambda_tracer"

/* Appended to a cause message cut to make its document fit. */
#define XRAY_TRUNCATED_SUFFIX " [truncated]"

/* A segment splits into at most itself plus one document per span. */
#define XRAY_MAX_DOCS (1 + TRACE_MAX_SPANS)

/* What the encoder left out or changed; callers add these to their
 * counters.  Each call adds to the struct (it is not zeroed). */
struct xray_encode_stats {
    unsigned long annotations_skipped; /* bad key, non-finite value, duplicate key */
    unsigned long metadata_skipped;    /* non-finite value, duplicate key */
    unsigned long causes_truncated;    /* cause messages cut to fit a document */
    unsigned long segments_split;      /* segments sent as several documents */
};

/*
 * Appends the full segment document (with nested subsegments) to out.
 * 0, -EINVAL (see above), -ENOBUFS (over out's cap) or -ENOMEM; on failure
 * out is unchanged.  stats may be NULL.
 */
int xray_encode_segment(struct buf *out, const struct trace_segment *seg,
                        struct xray_encode_stats *stats) __attribute__((warn_unused_result));

/* One document in a list: (pointer, length), not NUL-terminated. */
struct xray_doc {
    const char *data;
    size_t len;
};

/* The documents of one segment after splitting.  Owned by the caller: init
 * before use, free after; may be reused (xray_encode_split empties it).
 * Reusing it for every segment also reuses its working buffer, so encoding
 * allocates nothing once the first segments have been through. */
struct xray_docs {
    struct buf text; /* the documents, each followed by '\n' (JSON lines) */
    struct buf scratch; /* one document at a time; at most XRAY_SCRATCH_KEEP_BYTES kept */
    size_t count;
    size_t off[XRAY_MAX_DOCS];
    size_t len[XRAY_MAX_DOCS];
};

/* The working buffer keeps this much between segments (a typical
 * invocation's document is 1-4 KiB); a larger one is freed after use. */
#define XRAY_SCRATCH_KEEP_BYTES (16UL * 1024)

void xray_docs_init(struct xray_docs *docs);
void xray_docs_free(struct xray_docs *docs);
/* The i-th document (i < docs->count). */
struct xray_doc xray_docs_get(const struct xray_docs *docs, size_t i);

/*
 * Encodes seg as documents of at most max_doc_bytes each (use
 * XRAY_DOC_MAX_BYTES for PutTraceSegments, XRAY_DAEMON_DOC_MAX_BYTES for
 * the daemon):
 *   - the full document when it fits (count 1);
 *   - otherwise the segment without subsegments, then each top-level span
 *     as an independent subsegment document ("type": "subsegment",
 *     trace_id, parent_id = the segment id) with its children nested when
 *     that fits, else alone and its children as independent documents
 *     (parent_id = the span's id), recursively; parents come before their
 *     children, so a receiver always knows the parent first;
 *   - if the segment document alone is still too big, its cause message is
 *     cut (at a character boundary, XRAY_TRUNCATED_SUFFIX appended) so it
 *     fits, rather than the segment being lost.
 * 0 with ret filled; -EMSGSIZE when some document cannot fit even so (the
 * caller drops the segment and counts it); -EINVAL, -ENOMEM.  On failure
 * ret is empty (count 0).  stats may be NULL.
 */
int xray_encode_split(const struct trace_segment *seg, size_t max_doc_bytes,
                      struct xray_docs *ret, struct xray_encode_stats *stats)
    __attribute__((warn_unused_result));

/*
 * Appends a daemon datagram: XRAY_DAEMON_HEADER followed by one document
 * (trap 31: exactly one document per datagram).  Give out a cap of
 * XRAY_DATAGRAM_MAX_BYTES.  0, -EINVAL (empty document), -ENOBUFS, -ENOMEM.
 */
int xray_daemon_datagram(struct buf *out, const char *doc, size_t len)
    __attribute__((warn_unused_result));

/*
 * Appends a PutTraceSegments request body,
 * {"TraceSegmentDocuments":["<document as a JSON string>",...]} (trap 25:
 * each element is a string containing a document), with as many of the n
 * documents, in order, as fit out's cap.  *ret_used is how many went in
 * (at least one on success); call again with the rest in a fresh body.
 * 0; -ENOBUFS when not even the first fits (drop and count it); -EINVAL
 * when n is 0 or a document is empty; -ENOMEM.  On failure out is
 * unchanged and *ret_used is 0.
 */
int xray_put_body(struct buf *out, const struct xray_doc *docs, size_t n, size_t *ret_used)
    __attribute__((warn_unused_result));

#endif
