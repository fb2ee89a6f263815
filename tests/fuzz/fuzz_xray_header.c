/*
 * fuzz_xray_header.c - the X-Ray trace header parser on arbitrary bytes.
 * Whatever it accepts must be well-formed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xray_header.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct xray_header h;
    int r = xray_header_parse((const char *)data, size, &h);

    if (r == 0 && !xray_trace_id_valid(h.root, strlen(h.root)))
        abort();
    if (h.parent[0] != '\0' && !xray_span_id_valid(h.parent, strlen(h.parent)))
        abort();
    if (strlen(h.lineage) > XRAY_LINEAGE_MAX)
        abort();
    return 0;
}
