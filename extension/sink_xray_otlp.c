/*
 * sink_xray_otlp.c - X-Ray's OTLP endpoint (https://xray.<region>.amazonaws.com/v1/traces):
 * OTLP protobuf signed with SigV4 (service xray, the credentials of the
 * X-Ray API sink), gzip'd like the otlp sink, within the endpoint's limits
 * (observability-2026.md): XRAY_OTLP_MAX_BODY uncompressed bytes and
 * XRAY_OTLP_MAX_SPANS spans per request (more and the whole call is
 * refused), a span of more than XRAY_OTLP_MAX_SPAN_BYTES or with a time
 * more than XRAY_OTLP_AHEAD_NS ahead or XRAY_OTLP_BACK_NS back is dropped
 * and counted failed.  Its units are spans, not segments.
 */
#include "export_sink.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "clock.h"
#include "config.h"
#include "credentials.h"
#include "gzip.h"
#include "log.h"
#include "otlp_encode.h"

struct sink_xray_otlp {
    const struct export_config *cfg;
    void *xray;                 /* the X-Ray API sink's state: credentials */
    bool unusable;
    bool gzip_failed_logged;
    bool partial_logged;
    char sigv4[64];
    char token_header[sizeof(((struct aws_credentials *)0)->session_token) + 32];
    const char *headers[3];     /* Content-Type, the token (or NULL) */
    const char *gz_headers[4];  /* the same with Content-Encoding: gzip */
    struct buf kept;            /* one segment's request, filtered */
    struct buf scratch[2];      /* the filter's nested messages */
};

struct xray_otlp_request {
    struct sink_request base; /* first: the core hands this back */
    struct buf body;
    struct buf gz;
};

/* --- the span filter ------------------------------------------------------ */

static int read_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *ret)
{
    uint64_t v = 0;

    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (*pos >= len)
            return -EINVAL;
        uint8_t b = p[(*pos)++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            *ret = v;
            return 0;
        }
    }
    return -EINVAL;
}

static int put_varint(struct buf *b, uint64_t v)
{
    uint8_t t[10];
    size_t n = 0;

    do {
        t[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v != 0)
            t[n] |= 0x80;
        n++;
    } while (v != 0);
    return buf_append(b, t, n);
}

/* One field at *pos: its number, wire type and, for length-delimited ones,
 * the payload; *pos moves past it.  -EINVAL when malformed. */
static int next_field(const uint8_t *p, size_t len, size_t *pos, uint32_t *ret_num, unsigned *ret_wire,
                      size_t *ret_off, size_t *ret_len)
{
    uint64_t key, v;

    if (read_varint(p, len, pos, &key) < 0 || (key >> 3) == 0 || (key >> 3) > 0x1fffffff)
        return -EINVAL;
    *ret_num = (uint32_t)(key >> 3);
    *ret_wire = (unsigned)(key & 7);
    *ret_off = *pos;
    switch (*ret_wire) {
    case 0:
        if (read_varint(p, len, pos, &v) < 0)
            return -EINVAL;
        break;
    case 1:
    case 5: {
        size_t w = *ret_wire == 1 ? 8 : 4;
        if (len - *pos < w)
            return -EINVAL;
        *pos += w;
        break;
    }
    case 2:
        if (read_varint(p, len, pos, &v) < 0 || v > len - *pos)
            return -EINVAL;
        *ret_off = *pos;
        *pos += (size_t)v;
        break;
    default:
        return -EINVAL;
    }
    *ret_len = *pos - *ret_off;
    return 0;
}

static uint64_t fixed64_at(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Whether a Span (its bytes) may go to X-Ray: small enough, and its start
 * and end times (fields 7, 8) within the window around now_ns. */
static bool span_ok(const uint8_t *p, size_t len, int64_t now_ns, struct xray_otlp_counts *c)
{
    size_t pos = 0;

    if (len > XRAY_OTLP_MAX_SPAN_BYTES) {
        c->dropped_size++;
        return false;
    }
    while (pos < len) {
        uint32_t num;
        unsigned wire;
        size_t off, n;
        if (next_field(p, len, &pos, &num, &wire, &off, &n) < 0)
            return true; /* the caller saw it whole; not ours to judge */
        if ((num == 7 || num == 8) && wire == 1) {
            uint64_t t = fixed64_at(p + off);
            if (t > (uint64_t)INT64_MAX || (int64_t)t > now_ns + XRAY_OTLP_AHEAD_NS ||
                (int64_t)t < now_ns - XRAY_OTLP_BACK_NS) {
                c->dropped_time++;
                return false;
            }
        }
    }
    return true;
}

static int append_field(struct buf *out, uint32_t num, const uint8_t *payload, size_t len)
{
    if (put_varint(out, (uint64_t)num << 3 | 2) < 0 || put_varint(out, len) < 0 ||
        buf_append(out, payload, len) < 0)
        return -ENOBUFS;
    return 0;
}

/* level 0: ExportTraceServiceRequest (1: ResourceSpans), 1: ResourceSpans
 * (2: ScopeSpans), 2: ScopeSpans (2: Span).  Copies p into out (NULL:
 * only counts) without the spans that fail span_ok and without the
 * containers left empty; *ret_kept: spans copied. */
static int filter_level(struct buf *scratch, int level, const uint8_t *p, size_t len, int64_t now_ns,
                        struct buf *out, struct xray_otlp_counts *c, size_t *ret_kept)
{
    static const uint32_t child[3] = {1, 2, 2};
    size_t pos = 0;

    *ret_kept = 0;
    while (pos < len) {
        uint32_t num;
        unsigned wire;
        size_t start = pos, off, n;
        int r = next_field(p, len, &pos, &num, &wire, &off, &n);

        if (r < 0)
            return r;
        if (num != child[level] || wire != 2) {
            if (out != NULL && buf_append(out, p + start, pos - start) < 0)
                return -ENOBUFS;
            continue;
        }
        if (level == 2) {
            c->spans++;
            if (out == NULL || span_ok(p + off, n, now_ns, c)) {
                if (out != NULL && buf_append(out, p + start, pos - start) < 0)
                    return -ENOBUFS;
                (*ret_kept)++;
            }
            continue;
        }
        size_t kept = 0;
        struct buf *sub = out != NULL ? &scratch[level] : NULL;
        if (sub != NULL)
            buf_reset(sub);
        r = filter_level(scratch, level + 1, p + off, n, now_ns, sub, c, &kept);
        if (r < 0)
            return r;
        if (kept > 0 && out != NULL && append_field(out, num, (const uint8_t *)buf_data(sub), buf_len(sub)) < 0)
            return -ENOBUFS;
        *ret_kept += kept;
    }
    return 0;
}

int xray_otlp_filter(const void *in, size_t len, int64_t now_ns, struct buf *out, struct buf scratch[2],
                     struct xray_otlp_counts *c)
{
    size_t kept = 0;
    size_t mark = out != NULL ? buf_len(out) : 0;
    int r;

    memset(c, 0, sizeof(*c));
    if (in == NULL && len > 0)
        return -EINVAL;
    r = filter_level(scratch, 0, in, len, now_ns, out, c, &kept);
    if (r < 0) {
        if (out != NULL)
            buf_truncate(out, mark);
        return r;
    }
    c->kept = kept;
    return 0;
}

bool export_xray_otlp_host(const char *url, char *ret_region, size_t region_size)
{
    static const char scheme[] = "https://";
    static const char head[] = "xray.";
    static const char tail[] = ".amazonaws.com";
    const char *host, *end;
    size_t n;

    if (url == NULL || strncasecmp(url, scheme, sizeof(scheme) - 1) != 0)
        return false;
    host = url + sizeof(scheme) - 1;
    end = host + strcspn(host, "/:?#");
    n = (size_t)(end - host);
    if (n <= sizeof(head) - 1 + sizeof(tail) - 1 || strncasecmp(host, head, sizeof(head) - 1) != 0 ||
        strncasecmp(end - (sizeof(tail) - 1), tail, sizeof(tail) - 1) != 0)
        return false;
    n -= sizeof(head) - 1 + sizeof(tail) - 1;
    if (n >= region_size || n >= CONFIG_REGION_MAX)
        return false;
    memcpy(ret_region, host + sizeof(head) - 1, n);
    ret_region[n] = '\0';
    return config_region_valid(ret_region);
}

/* --- the sink -------------------------------------------------------------- */

static int xo_open(const struct sink_env *env, void **ret)
{
    struct sink_xray_otlp *x;
    int r;

    if (env->cfg->otlp_json)
        return -EINVAL; /* main.c leaves it out with its line first */
    x = calloc(1, sizeof(*x));
    if (x == NULL)
        return -ENOMEM;
    r = sink_xray_ops.open(env, &x->xray);
    if (r < 0) {
        free(x);
        return r;
    }
    x->cfg = env->cfg;
    snprintf(x->sigv4, sizeof(x->sigv4), "aws:amz:%s:xray", env->cfg->region);
    buf_init(&x->kept, EXPORT_OTLP_MAX_BODY);
    buf_init(&x->scratch[0], EXPORT_OTLP_MAX_BODY);
    buf_init(&x->scratch[1], EXPORT_OTLP_MAX_BODY);
    *ret = x;
    return 0;
}

static void xo_close(void *sink)
{
    struct sink_xray_otlp *x = sink;

    if (x == NULL)
        return;
    sink_xray_ops.close(x->xray);
    buf_free(&x->kept);
    buf_free(&x->scratch[0]);
    buf_free(&x->scratch[1]);
    free(x);
}

/* A segment's spans; a request that does not parse counts as one. */
static size_t item_spans(const struct export_item *it)
{
    struct xray_otlp_counts c;

    if (it->otlp == NULL)
        return 0;
    if (xray_otlp_filter(it->otlp, it->otlp_len, 0, NULL, NULL, &c) < 0)
        return 1;
    return c.spans;
}

static size_t xo_units(struct export_item *const *items, size_t n)
{
    size_t spans = 0;

    for (size_t i = 0; i < n; i++)
        spans += item_spans(items[i]);
    return spans;
}

static void xo_free_request(void *sink, struct sink_request *req)
{
    struct xray_otlp_request *xr = (struct xray_otlp_request *)req;

    (void)sink;
    if (xr == NULL)
        return;
    buf_free(&xr->body);
    buf_free(&xr->gz);
    free(xr);
}

static struct xray_otlp_request *new_request(void)
{
    struct xray_otlp_request *xr = calloc(1, sizeof(*xr));

    if (xr != NULL)
        buf_init(&xr->body, XRAY_OTLP_MAX_BODY);
    return xr;
}

/* Finishes xr (gzip, headers, signature) and pushes it. */
static void push_request(struct sink_xray_otlp *x, struct xray_otlp_request *xr, size_t spans,
                         const struct aws_credentials *creds, struct sink_list *out)
{
    xr->base.units = spans;
    xr->base.timeout_ms = x->cfg->otlp_timeout_ms;
    xr->base.http = (struct http_client_request){
        .method = "POST",
        .url = x->cfg->xray_otlp_endpoint,
        .headers = x->headers,
        .body = buf_data(&xr->body),
        .body_len = buf_len(&xr->body),
        .max_response_bytes = EXPORT_MAX_RESPONSE,
        .aws_sigv4 = x->sigv4,
        .access_key_id = creds->access_key_id,
        .secret_access_key = creds->secret_access_key,
        .ca_file = x->cfg->ca_file[0] != '\0' ? x->cfg->ca_file : NULL,
    };
    if (x->cfg->otlp_gzip) {
        int r;
        buf_init(&xr->gz, XRAY_OTLP_MAX_BODY);
        r = gzip_body(buf_data(&xr->body), buf_len(&xr->body), &xr->gz);
        if (r == 0) {
            buf_free(&xr->body);
            xr->base.http.body = buf_data(&xr->gz);
            xr->base.http.body_len = buf_len(&xr->gz);
            xr->base.http.headers = x->gz_headers;
        } else {
            buf_free(&xr->gz);
            if (!x->gzip_failed_logged) {
                x->gzip_failed_logged = true;
                log_warn("X-Ray OTLP exporter could not gzip a request body (%s); sending it uncompressed "
                         "(logged once)",
                         strerror(-r));
            }
        }
    }
    sink_list_push(out, &xr->base);
}

static void xo_accept(void *sink, struct export_item *const *items, size_t n_items, struct sink_list *out,
                      struct sink_result *res)
{
    struct sink_xray_otlp *x = sink;
    size_t total = xo_units(items, n_items);
    const struct aws_credentials *creds;
    struct xray_otlp_request *xr = NULL;
    size_t in_req = 0;
    int64_t now_ns = clock_epoch_us() * 1000;

    if (total == 0)
        return;
    if (x->unusable) {
        res->skipped += total;
        return;
    }
    creds = sink_xray_credentials(x->xray);
    if (creds == NULL) {
        x->unusable = true;
        res->skipped += total;
        return;
    }
    snprintf(x->token_header, sizeof(x->token_header), "X-Amz-Security-Token: %s", creds->session_token);
    /* Requests already queued keep pointing at these: see sink_xray.c. */
    x->headers[0] = "Content-Type: " OTLP_PROTOBUF_CONTENT_TYPE;
    x->headers[1] = creds->session_token[0] != '\0' ? x->token_header : NULL;
    x->headers[2] = NULL;
    x->gz_headers[0] = x->headers[0];
    x->gz_headers[1] = "Content-Encoding: gzip";
    x->gz_headers[2] = x->headers[1];
    x->gz_headers[3] = NULL;
    for (size_t i = 0; i < n_items; i++) {
        const struct export_item *it = items[i];
        struct xray_otlp_counts c;

        if (it->otlp == NULL)
            continue;
        buf_reset(&x->kept);
        if (xray_otlp_filter(it->otlp, it->otlp_len, now_ns, &x->kept, x->scratch, &c) < 0) {
            res->failed += item_spans(it);
            continue;
        }
        res->failed += c.dropped_size + c.dropped_time;
        if (c.kept == 0)
            continue;
        if (xr != NULL && (in_req + c.kept > XRAY_OTLP_MAX_SPANS ||
                           buf_len(&xr->body) + buf_len(&x->kept) > XRAY_OTLP_MAX_BODY)) {
            push_request(x, xr, in_req, creds, out);
            xr = NULL;
        }
        if (xr == NULL) {
            xr = new_request();
            in_req = 0;
        }
        if (xr == NULL || c.kept > XRAY_OTLP_MAX_SPANS ||
            buf_append(&xr->body, buf_data(&x->kept), buf_len(&x->kept)) < 0) {
            res->failed += c.kept; /* alone over a limit, or no memory */
            continue;
        }
        in_req += c.kept;
    }
    if (xr != NULL && in_req > 0)
        push_request(x, xr, in_req, creds, out);
    else
        xo_free_request(x, xr ? &xr->base : NULL);
}

/* Its units are spans: those the endpoint rejected failed. */
static void xo_answered(void *sink, const struct sink_request *req, const struct http_client_response *resp,
                        struct sink_list *out, struct sink_result *res)
{
    struct sink_xray_otlp *x = sink;
    uint64_t rejected = sink_otlp_rejected("X-Ray OTLP", resp, false, &x->partial_logged);
    uint64_t units = (uint64_t)req->units;
    uint64_t failed = rejected < units ? rejected : units;

    (void)out;
    res->rejected_spans += rejected;
    res->failed += failed;
    res->sent += units - failed;
}

const struct sink_ops sink_xray_otlp_ops = {
    .name = "xray-otlp",
    .open = xo_open,
    .close = xo_close,
    .units = xo_units,
    .accept = xo_accept,
    .answered = xo_answered,
    .free_request = xo_free_request,
};
