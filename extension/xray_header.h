/*
 * xray_header.h - the X-Ray tracing header (X-Amzn-Trace-Id).
 *
 * "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1;Lineage=..."
 * Pairs are `;`-separated `key=value` in any order (reference 4.1); keys are
 * matched case-insensitively, surrounding blanks ignored.  Root and Parent
 * are validated (a malformed one is treated as absent, never guessed at);
 * Lineage is kept verbatim and never interpreted or generated.  Value
 * struct; no allocation; any thread.
 */
#ifndef LAMBDA_TRACER_XRAY_HEADER_H
#define LAMBDA_TRACER_XRAY_HEADER_H

#include <stdbool.h>
#include <stddef.h>

#define XRAY_TRACE_ID_LEN 35 /* 1-XXXXXXXX-YYYYYYYYYYYYYYYYYYYYYYYY */
#define XRAY_SPAN_ID_LEN 16
#define XRAY_LINEAGE_MAX 256

enum xray_sampled {
    XRAY_SAMPLED_UNKNOWN = -1, /* absent, or "?" (decision requested) */
    XRAY_SAMPLED_NO = 0,
    XRAY_SAMPLED_YES = 1,
};

struct xray_header {
    char root[XRAY_TRACE_ID_LEN + 1];   /* "" when absent or malformed */
    char parent[XRAY_SPAN_ID_LEN + 1];  /* "" when absent or malformed */
    enum xray_sampled sampled;
    char lineage[XRAY_LINEAGE_MAX + 1]; /* verbatim, "" when absent or too long */
};

/* Parses len bytes of text (need not be NUL-terminated).  Always fills
 * *ret; returns 0 when a valid Root was found, -EINVAL otherwise. */
int xray_header_parse(const char *text, size_t len, struct xray_header *ret)
    __attribute__((warn_unused_result));

/* True for "1-" + 8 hex + "-" + 24 hex. */
bool xray_trace_id_valid(const char *s, size_t len);
/* True for exactly 16 hex digits. */
bool xray_span_id_valid(const char *s, size_t len);

#endif
