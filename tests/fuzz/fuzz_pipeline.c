/*
 * fuzz_pipeline.c - a telemetry batch on arbitrary bytes, followed all the
 * way to the exported bytes: tel_batch_parse, the tracer (with the INVOKE
 * event the lifecycle would have passed for each platform.start, a tick at
 * each record's time, and a SHUTDOWN at the end), then the X-Ray encoder
 * (whole and split into daemon-sized documents) and both OTLP encoders.
 *
 * The tracer and the encoders never see raw input elsewhere in the fuzz
 * set; here they see every oddity the parser lets through (absurd times,
 * unknown types, records for invocations never announced, huge strings).
 * Checks: every X-Ray document and OTLP/JSON body that is produced is JSON
 * with the ids it must carry, and after SHUTDOWN no invocation is left
 * open.  A violation aborts.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "ext_event.h"
#include "otlp_encode.h"
#include "telemetry.h"
#include "tracer.h"
#include "xray_encode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
    if (!ok)
        abort();
}

static void check_json_doc(const char *text, size_t len, bool xray)
{
    cJSON *doc = cJSON_ParseWithLengthOpts(text, len, NULL, false);

    check(cJSON_IsObject(doc));
    if (xray) {
        check(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(doc, "id")));
        check(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(doc, "trace_id")));
        check(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(doc, "start_time")));
    } else {
        check(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(doc, "resourceSpans")));
    }
    cJSON_Delete(doc);
}

struct harness {
    struct tracer *tracer;
    struct trace_resource res;
    struct xray_docs docs;
    struct buf out;
    unsigned emitted;
};

static void on_emit(const struct trace_segment *seg, bool final, void *ctx)
{
    struct harness *h = ctx;
    int r;

    h->emitted++;
    tracer_get_resource(h->tracer, &h->res);
    buf_reset(&h->out);
    if (xray_encode_segment(&h->out, seg, NULL) == 0)
        check_json_doc(buf_data(&h->out), buf_len(&h->out), true);
    r = xray_encode_split(seg, XRAY_DAEMON_DOC_MAX_BYTES, &h->docs, NULL);
    if (r == 0) {
        check(h->docs.count >= 1 && h->docs.count <= XRAY_MAX_DOCS);
        for (size_t i = 0; i < h->docs.count; i++) {
            struct xray_doc d = xray_docs_get(&h->docs, i);
            check(d.len <= XRAY_DAEMON_DOC_MAX_BYTES);
            check_json_doc(d.data, d.len, true);
        }
    }
    buf_reset(&h->out);
    if (otlp_encode_json(&h->out, &h->res, seg, 1, final ? TRACE_NO_END : seg->start_us, NULL) == 0 &&
        buf_len(&h->out) > 0)
        check_json_doc(buf_data(&h->out), buf_len(&h->out), false);
    buf_reset(&h->out);
    r = otlp_encode_protobuf(&h->out, &h->res, seg, 1, TRACE_NO_END, NULL);
    check(r == 0 || r == -EINVAL || r == -ENOBUFS || r == -ENOMEM);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tel_batch *batch = NULL;
    struct harness h;
    struct tracer_options opts = {
        .function_name = "fuzz-fn",
        .function_version = "$LATEST",
        .account_id = "123456789012",
        .region = "us-east-1",
        .memory_size_mb = 128,
        .timeout_margin_us = 300000,
        .log_tail_lines = 5,
        .log_tail_max_bytes = 512,
        .emit = on_emit,
    };
    int64_t last_us = 0;

    if (tel_batch_parse((const char *)data, size, &batch) < 0)
        return 0;
    memset(&h, 0, sizeof(h));
    opts.ctx = &h;
    h.tracer = tracer_new(&opts);
    check(h.tracer != NULL);
    xray_docs_init(&h.docs);
    buf_init(&h.out, 4UL * 1024 * 1024);
    tracer_set_own_init(h.tracer, 1663083766000000, 1663083766010000);

    for (size_t i = 0; i < batch->count; i++) {
        const struct tel_event *ev = &batch->events[i];

        if (ev->type == TEL_START && ev->request_id != NULL) {
            struct ext_event inv = {.type = EXT_EVENT_INVOKE};
            snprintf(inv.request_id, sizeof(inv.request_id), "%s", ev->request_id);
            if (ev->trace_value != NULL && strlen(ev->trace_value) < sizeof(inv.trace_header))
                snprintf(inv.trace_header, sizeof(inv.trace_header), "%s", ev->trace_value);
            inv.deadline_ms = ev->time_us / 1000 + 3000;
            if (inv.request_id[0] != '\0')
                (void)tracer_on_invoke(h.tracer, &inv, ev->time_us, i % 2 == 1);
        }
        tracer_on_telemetry(h.tracer, ev);
        (void)tracer_tick(h.tracer, ev->time_us);
        if (ev->time_us > last_us)
            last_us = ev->time_us;
    }
    struct ext_event sd = {.type = EXT_EVENT_SHUTDOWN, .shutdown_reason = EXT_SHUTDOWN_SPINDOWN,
                           .deadline_ms = last_us / 1000 + 2000};
    tracer_on_shutdown(h.tracer, &sd, last_us);
    check(tracer_open_count(h.tracer) == 0);

    tracer_destroy(h.tracer);
    xray_docs_free(&h.docs);
    buf_free(&h.out);
    tel_batch_free(batch);
    return 0;
}
