/*
 * sink_otlp.c - the OTLP/HTTP sink: the final segments of a batch merged
 * into requests of at most EXPORT_OTLP_MAX_BODY bytes (protobuf:
 * concatenated ExportTraceServiceRequest messages merge their repeated
 * resource_spans; JSON: the resourceSpans arrays are joined), with the
 * configured headers.  In-progress versions have no OTLP form.  With
 * otlp_gzip (the default) each body goes out gzip'd (Content-Encoding:
 * gzip); when gzip fails (no memory) that body goes out as is, logged once.  Each request carries otlp_timeout_ms.
 */
#include "export_sink.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "config.h"
#include "gzip.h"
#include "log.h"
#include "otlp_encode.h"
#include "otlp_response.h"

#define OTLP_MAX_HEADERS CONFIG_OTLP_MAX_HEADERS

/* OTLP/JSON bodies are {"resourceSpans":[...]}: the arrays are joined. */
#define OTLP_JSON_HEAD "{\"resourceSpans\":["
#define OTLP_JSON_TAIL "]}"

struct sink_otlp {
    const struct export_config *cfg;
    char header_lines[OTLP_MAX_HEADERS][CONFIG_OTLP_HEADER_LINE_BYTES];
    const char *headers[OTLP_MAX_HEADERS + 2];
    const char *gz_headers[OTLP_MAX_HEADERS + 3]; /* headers plus Content-Encoding */
    bool gzip_failed_logged;
    bool partial_logged;
};

struct otlp_request {
    struct sink_request base; /* first: the core hands this back */
    struct buf body;
    struct buf gz;            /* the gzip'd body, when sent so */
};

/* "name=value,name=value" into "name: value" header lines after the
 * Content-Type line. */
static int otlp_open(const struct sink_env *env, void **ret)
{
    struct sink_otlp *o = calloc(1, sizeof(*o));
    size_t lines = 0;
    int r;

    if (o == NULL)
        return -ENOMEM;
    o->cfg = env->cfg;
    r = config_parse_otlp_headers(o->cfg->otlp_headers, o->header_lines, OTLP_MAX_HEADERS, &lines);
    if (r < 0) {
        free(o);
        return -EINVAL;
    }
    o->headers[0] = o->cfg->otlp_json ? "Content-Type: " OTLP_JSON_CONTENT_TYPE
                                      : "Content-Type: " OTLP_PROTOBUF_CONTENT_TYPE;
    for (size_t i = 0; i < lines; i++)
        o->headers[i + 1] = o->header_lines[i];
    o->headers[lines + 1] = NULL;
    o->gz_headers[0] = o->headers[0];
    o->gz_headers[1] = "Content-Encoding: gzip";
    for (size_t i = 0; i < lines; i++)
        o->gz_headers[i + 2] = o->header_lines[i];
    o->gz_headers[lines + 2] = NULL;
    *ret = o;
    return 0;
}

static void otlp_close(void *sink)
{
    free(sink);
}

static size_t otlp_units(struct export_item *const *items, size_t n)
{
    size_t segs = 0;

    for (size_t i = 0; i < n; i++)
        segs += items[i]->otlp != NULL;
    return segs;
}

static int otlp_append(struct buf *body, const struct export_item *it, bool json, bool first)
{
    size_t head = sizeof(OTLP_JSON_HEAD) - 1;
    size_t tail = sizeof(OTLP_JSON_TAIL) - 1;

    if (!json)
        return buf_append(body, it->otlp, it->otlp_len);
    if (it->otlp_len < head + tail || memcmp(it->otlp, OTLP_JSON_HEAD, head) != 0 ||
        memcmp(it->otlp + it->otlp_len - tail, OTLP_JSON_TAIL, tail) != 0)
        return -EINVAL;
    if (!first && buf_append(body, ",", 1) < 0)
        return -ENOBUFS;
    return buf_append(body, it->otlp + head, it->otlp_len - head - tail);
}

static void otlp_free_request(void *sink, struct sink_request *req)
{
    struct otlp_request *or = (struct otlp_request *)req;

    (void)sink;
    if (or == NULL)
        return;
    buf_free(&or->body);
    buf_free(&or->gz);
    free(or);
}

/* The request's body gzip'd, or left as is (logged once
 * per sink) when gzip fails: an uncompressed body is still a valid OTLP
 * request. */
static void compress_body(struct sink_otlp *o, struct otlp_request *or)
{
    int r;

    buf_init(&or->gz, EXPORT_OTLP_MAX_BODY);
    r = gzip_body(buf_data(&or->body), buf_len(&or->body), &or->gz);
    if (r < 0) {
        buf_free(&or->gz);
        if (!o->gzip_failed_logged) {
            o->gzip_failed_logged = true;
            log_warn("OTLP exporter could not gzip a request body (%s); sending it uncompressed "
                     "(logged once)",
                     strerror(-r));
        }
        return;
    }
    buf_free(&or->body); /* retries send the gzip'd one */
    or->base.http.headers = o->gz_headers;
    or->base.http.body = buf_data(&or->gz);
    or->base.http.body_len = buf_len(&or->gz);
}

static void otlp_accept(void *sink, struct export_item *const *items, size_t n_items, struct sink_list *out,
                        struct sink_result *res)
{
    struct sink_otlp *o = sink;
    bool json = o->cfg->otlp_json;
    size_t i = 0;

    while (i < n_items) {
        struct otlp_request *or = calloc(1, sizeof(*or));
        size_t in_body = 0;
        struct buf *body;

        if (or == NULL) {
            for (; i < n_items; i++)
                res->failed += items[i]->otlp != NULL;
            return;
        }
        body = &or->body;
        buf_init(body, EXPORT_OTLP_MAX_BODY);
        if (json && buf_append(body, OTLP_JSON_HEAD, sizeof(OTLP_JSON_HEAD) - 1) < 0) {
            otlp_free_request(o, &or->base);
            for (; i < n_items; i++)
                res->failed += items[i]->otlp != NULL;
            return;
        }
        for (; i < n_items; i++) {
            size_t mark = buf_len(body);
            if (items[i]->otlp == NULL)
                continue;
            if (otlp_append(body, items[i], json, in_body == 0) < 0 ||
                (json && buf_len(body) + 2 > buf_max(body))) {
                buf_truncate(body, mark);
                if (in_body == 0) {
                    res->failed++; /* alone too big (or no memory); the loop moves on */
                    continue;
                }
                break;
            }
            in_body++;
        }
        if (in_body == 0 || (json && buf_append(body, OTLP_JSON_TAIL, 2) < 0)) {
            res->failed += in_body;
            otlp_free_request(o, &or->base);
            continue;
        }
        or->base.units = in_body;
        or->base.timeout_ms = o->cfg->otlp_timeout_ms;
        or->base.http = (struct http_client_request){
            .method = "POST",
            .url = o->cfg->otlp_endpoint,
            .headers = o->headers,
            .body = buf_data(body),
            .body_len = buf_len(body),
            .max_response_bytes = EXPORT_MAX_RESPONSE,
            .ca_file = o->cfg->ca_file[0] != '\0' ? o->cfg->ca_file : NULL,
        };
        if (o->cfg->otlp_gzip)
            compress_body(o, or);
        sink_list_push(out, &or->base);
    }
}

uint64_t sink_otlp_rejected(const char *who, const struct http_client_response *resp, bool json, bool *logged)
{
    struct otlp_partial ps;

    if (otlp_response_parse(resp->body, resp->body_len, json, &ps) < 0 || !ps.present)
        return 0;
    if (!*logged && (ps.rejected > 0 || ps.message[0] != '\0')) {
        *logged = true;
        log_warn("%s exporter: the endpoint rejected %llu span%s of a request (%s); counting rejected "
                 "spans in export_rejected_spans (logged once)",
                 who, (unsigned long long)ps.rejected, ps.rejected == 1 ? "" : "s",
                 ps.message[0] != '\0' ? ps.message : "no message");
    }
    return ps.rejected;
}

/* The documents were taken; the spans the endpoint says it rejected are
 * counted besides (a document holds several spans). */
static void otlp_answered(void *sink, const struct sink_request *req, const struct http_client_response *resp,
                          struct sink_list *out, struct sink_result *res)
{
    struct sink_otlp *o = sink;

    (void)out;
    res->sent += req->units;
    res->rejected_spans += sink_otlp_rejected("OTLP", resp, o->cfg->otlp_json, &o->partial_logged);
}

const struct sink_ops sink_otlp_ops = {
    .name = "otlp",
    .open = otlp_open,
    .close = otlp_close,
    .units = otlp_units,
    .accept = otlp_accept,
    .answered = otlp_answered,
    .free_request = otlp_free_request,
};
