/*
 * fuzz_xray_header.c - the X-Ray trace header parser on arbitrary bytes.
 *
 * Whatever it keeps must be well-formed (a valid Root and Parent, a Lineage
 * within its cap), and the header written back from what it kept
 * ("Root=...;Parent=...;Sampled=...;Lineage=...") must parse to exactly the
 * same value: nothing is lost or invented in a round trip.  A violation
 * aborts.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xray_header.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
    if (!ok)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct xray_header h, again;
    char text[XRAY_TRACE_ID_LEN + XRAY_SPAN_ID_LEN + XRAY_LINEAGE_MAX + 64];
    int r = xray_header_parse((const char *)data, size, &h);
    int n;

    check(r == 0 || r == -EINVAL);
    check((r == 0) == (h.root[0] != '\0'));
    if (h.root[0] != '\0')
        check(xray_trace_id_valid(h.root, strlen(h.root)));
    if (h.parent[0] != '\0')
        check(xray_span_id_valid(h.parent, strlen(h.parent)));
    check(strnlen(h.lineage, sizeof(h.lineage)) <= XRAY_LINEAGE_MAX);
    check(h.sampled == XRAY_SAMPLED_UNKNOWN || h.sampled == XRAY_SAMPLED_NO ||
          h.sampled == XRAY_SAMPLED_YES);
    /* Kept values are substrings of the input, never made up. */
    check(h.root[0] == '\0' || memmem(data, size, h.root, strlen(h.root)) != NULL);
    check(h.parent[0] == '\0' || memmem(data, size, h.parent, strlen(h.parent)) != NULL);
    check(h.lineage[0] == '\0' || memmem(data, size, h.lineage, strlen(h.lineage)) != NULL);

    n = snprintf(text, sizeof(text), "Root=%s;Parent=%s;Sampled=%s;Lineage=%s", h.root, h.parent,
                 h.sampled == XRAY_SAMPLED_YES ? "1" : h.sampled == XRAY_SAMPLED_NO ? "0" : "?",
                 h.lineage);
    check(n > 0 && (size_t)n < sizeof(text));
    check(xray_header_parse(text, (size_t)n, &again) == r);
    check(strcmp(h.root, again.root) == 0 && strcmp(h.parent, again.parent) == 0 &&
          h.sampled == again.sampled && strcmp(h.lineage, again.lineage) == 0);
    return 0;
}
