/*
 * fuzz_xray_otlp_filter.c - the xray-otlp sink's span filter
 * (xray_otlp_filter, sink_xray_otlp.c) on arbitrary bytes as an
 * ExportTraceServiceRequest.
 *
 * Checked: malformed input is refused and leaves out unchanged; otherwise
 * kept + dropped == spans, the counting pass agrees, and the output parses
 * again with every span kept and nothing more dropped (the filter is
 * idempotent) and is no longer than the input.  A violation aborts.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "export_sink.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
    if (!ok)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct buf out, again, scratch[2];
    struct xray_otlp_counts c, count, c2;
    /* "now": the first 8 bytes' worth of time, kept near real values */
    int64_t now_ns = 1700000000LL * 1000000000;
    int r;

    buf_init(&out, 1UL << 20);
    buf_init(&again, 1UL << 20);
    buf_init(&scratch[0], 1UL << 20);
    buf_init(&scratch[1], 1UL << 20);
    check(buf_append(&out, "x", 1) == 0);
    r = xray_otlp_filter(data, size, now_ns, &out, scratch, &c);
    if (r < 0) {
        check(buf_len(&out) == 1);
    } else {
        check(xray_otlp_filter(data, size, now_ns, NULL, NULL, &count) == 0);
        check(count.spans == c.spans);
        check(c.kept + c.dropped_size + c.dropped_time == c.spans);
        check(buf_len(&out) - 1 <= size);
        r = xray_otlp_filter(buf_data(&out) + 1, buf_len(&out) - 1, now_ns, &again, scratch, &c2);
        check(r == 0);
        check(c2.spans == c.kept && c2.kept == c.kept);
        check(buf_len(&again) == buf_len(&out) - 1);
        check(memcmp(buf_data(&again), buf_data(&out) + 1, buf_len(&again)) == 0);
    }
    buf_free(&out);
    buf_free(&again);
    buf_free(&scratch[0]);
    buf_free(&scratch[1]);
    return 0;
}
