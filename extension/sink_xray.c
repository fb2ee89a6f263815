/*
 * sink_xray.c - the X-Ray API sink: documents in PutTraceSegments bodies of
 * at most XRAY_PUT_MAX_DOCS documents and EXPORT_PUT_MAX_BODY bytes,
 * signed with SigV4 (libcurl signs; the session token header is signed
 * with it), credentials from the environment or the container credentials
 * endpoint.  Documents an answer lists as UnprocessedTraceSegments get
 * exactly one more try.
 */
#include "export_sink.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "clock.h"
#include "config.h"
#include "credentials.h"
#include "log.h"

/* Finished requests kept for the next ones, each with its body's memory
 * (up to XRAY_SPARE_BODY_KEEP_BYTES): an invocation's request then
 * allocates nothing.  Bounded: at most this many, each at most that. */
#define XRAY_SPARE_REQUESTS 2
#define XRAY_SPARE_BODY_KEEP_BYTES (64UL * 1024)

/* Container credentials are refreshed this long before they expire. */
#define CREDENTIALS_REFRESH_US (5LL * 60 * 1000000)
#define CREDENTIALS_CONNECT_TIMEOUT_MS 1000

struct sink_xray {
    struct sink_env env;
    struct aws_credentials creds;
    bool unusable;              /* no credentials: every document skipped */
    struct http_client *creds_http; /* for the container endpoint; made on first use */
    char sigv4[64];
    char url[300];
    char token_header[sizeof(((struct aws_credentials *)0)->session_token) + 32];
    const char *headers[3];
    struct xray_request *spare[XRAY_SPARE_REQUESTS]; /* finished, for reuse (exporter thread) */
    size_t nspare;
};

struct xray_request {
    struct sink_request base; /* first: the core hands this back */
    struct buf body;
    size_t ndocs;
    struct xray_doc docs[XRAY_PUT_MAX_DOCS];
};

/* A request to fill: a spare one (its body's memory kept), or a new one.
 * NULL when out of memory. */
static struct xray_request *request_get(struct sink_xray *x)
{
    struct xray_request *xr;
    struct buf body;

    if (x->nspare == 0) {
        xr = calloc(1, sizeof(*xr));
        if (xr != NULL)
            buf_init(&xr->body, EXPORT_PUT_MAX_BODY);
        return xr;
    }
    xr = x->spare[--x->nspare];
    body = xr->body;
    memset(xr, 0, sizeof(*xr));
    xr->body = body;
    buf_recycle(&xr->body, EXPORT_PUT_MAX_BODY, XRAY_SPARE_BODY_KEEP_BYTES);
    return xr;
}

static const char *env_lookup(struct sink_xray *x, const char *name)
{
    return x->env.getenv_fn != NULL ? x->env.getenv_fn(name, x->env.getenv_ctx) : getenv(name);
}

static const char *lookup_fn(const char *name, void *ctx)
{
    return env_lookup(ctx, name);
}

static int xray_open(const struct sink_env *env, void **ret)
{
    struct sink_xray *x = calloc(1, sizeof(*x));

    if (x == NULL)
        return -ENOMEM;
    x->env = *env;
    snprintf(x->sigv4, sizeof(x->sigv4), "aws:amz:%s:xray", env->cfg->region);
    snprintf(x->url, sizeof(x->url), "%s/TraceSegments", env->cfg->xray_endpoint);
    *ret = x;
    return 0;
}

static void xray_close(void *sink)
{
    struct sink_xray *x = sink;

    if (x == NULL)
        return;
    while (x->nspare > 0) {
        struct xray_request *xr = x->spare[--x->nspare];
        buf_free(&xr->body);
        free(xr);
    }
    http_client_destroy(x->creds_http);
    credentials_clear(&x->creds);
    free(x);
}

static size_t xray_units(struct export_item *const *items, size_t n)
{
    size_t docs = 0;

    for (size_t i = 0; i < n; i++)
        docs += items[i]->ndocs;
    return docs;
}

/* Fresh credentials for SigV4, from the environment or the container
 * credentials endpoint (the one blocking request left: at most once per
 * credentials' lifetime, cut at the stop's abort time).  false when there
 * are none. */
/* Valid credentials in x->creds, fetched or read when missing or about to
 * expire.  false with the reason in why (names and errors, never a value). */
static bool ensure_credentials(struct sink_xray *x, char *why, size_t why_size)
{
    char uri[1024];
    char auth[1100];
    const char *headers[] = {auth, NULL};
    const struct export_config *cfg = x->env.cfg;
    struct http_client_request req = {
        .method = "GET",
        .max_response_bytes = EXPORT_MAX_RESPONSE,
        .connect_timeout_ms = CREDENTIALS_CONNECT_TIMEOUT_MS,
        .ca_file = cfg->ca_file[0] != '\0' ? cfg->ca_file : NULL,
        .abort_at_ns = x->env.abort_at_ns,
        .timeout_ms = (long)cfg->request_timeout_ms,
    };
    struct http_client_response resp;
    int r;

    if (x->creds.access_key_id[0] != '\0' &&
        (x->creds.expires_us == 0 || x->creds.expires_us - clock_epoch_us() > CREDENTIALS_REFRESH_US))
        return true;
    /* Checked where read: a URI or token with a control byte is refused. */
    r = credentials_container_request(lookup_fn, x, uri, sizeof(uri), auth, sizeof(auth));
    if (r == -ENOENT) {
        if (credentials_from_env(lookup_fn, x, &x->creds) == 0)
            return true;
        char env_why[160];
        credentials_env_problem(lookup_fn, x, env_why, sizeof(env_why));
        snprintf(why, why_size, "%s; AWS_CONTAINER_CREDENTIALS_FULL_URI unset", env_why);
        return false;
    }
    if (r < 0) {
        snprintf(why, why_size, "%s",
                 r == -E2BIG ? "AWS_CONTAINER_CREDENTIALS_FULL_URI or AWS_CONTAINER_AUTHORIZATION_TOKEN too long"
                             : "AWS_CONTAINER_CREDENTIALS_FULL_URI not an http(s):// URL, or it or "
                               "AWS_CONTAINER_AUTHORIZATION_TOKEN holds a blank or control byte");
        return false;
    }
    if (x->env.abort_at_ns != NULL) {
        int64_t at = atomic_load(x->env.abort_at_ns);
        if (at > 0) {
            int64_t left_ms = (at - clock_mono_ns()) / 1000000;
            if (left_ms <= 0) {
                snprintf(why, why_size, "no time left to ask the container credentials endpoint");
                return false;
            }
            if (left_ms < req.timeout_ms)
                req.timeout_ms = (long)left_ms;
        }
    }
    if (x->creds_http == NULL)
        x->creds_http = http_client_new_abortable();
    if (x->creds_http == NULL) {
        snprintf(why, why_size, "out of memory for the container credentials request");
        return false;
    }
    req.url = uri;
    req.headers = auth[0] != '\0' ? headers : NULL;
    r = http_client_perform(x->creds_http, &req, &resp, NULL, 0);
    if (r < 0) {
        snprintf(why, why_size, "the container credentials endpoint did not answer: %s", strerror(-r));
        return false;
    }
    r = resp.status == 200 ? credentials_parse_container(resp.body, resp.body_len, &x->creds) : -EIO;
    if (resp.status != 200)
        snprintf(why, why_size, "the container credentials endpoint answered HTTP %ld", resp.status);
    else if (r < 0)
        snprintf(why, why_size, "the container credentials endpoint's answer holds no usable credentials");
    http_client_response_clean_up(&resp);
    return r == 0;
}

static void xray_free_request(void *sink, struct sink_request *req)
{
    struct sink_xray *x = sink;
    struct xray_request *xr = (struct xray_request *)req;

    if (xr == NULL)
        return;
    if (x != NULL && x->nspare < XRAY_SPARE_REQUESTS) {
        buf_recycle(&xr->body, EXPORT_PUT_MAX_BODY, XRAY_SPARE_BODY_KEEP_BYTES);
        x->spare[x->nspare++] = xr;
        return;
    }
    buf_free(&xr->body);
    free(xr);
}

/* Requests for docs[0..n) pushed on *out; documents over the body cap on
 * their own are counted failed. */
static void make_requests(struct sink_xray *x, const struct xray_doc *docs, size_t n, bool last_try,
                          struct sink_list *out, struct sink_result *res)
{
    size_t i = 0;

    while (i < n) {
        struct xray_request *xr = request_get(x);
        size_t chunk = n - i < XRAY_PUT_MAX_DOCS ? n - i : XRAY_PUT_MAX_DOCS;
        size_t used = 0;

        if (xr == NULL) {
            res->failed += n - i;
            return;
        }
        if (xray_put_body(&xr->body, docs + i, chunk, &used) < 0 || used == 0) {
            res->failed++; /* one document over the body cap (or no memory) */
            i++;
            xray_free_request(x, &xr->base);
            continue;
        }
        memcpy(xr->docs, docs + i, used * sizeof(docs[0]));
        xr->ndocs = used;
        xr->base.units = used;
        xr->base.last_try = last_try;
        xr->base.http = (struct http_client_request){
            .method = "POST",
            .url = x->url,
            .headers = x->headers,
            .body = buf_data(&xr->body),
            .body_len = buf_len(&xr->body),
            .max_response_bytes = EXPORT_MAX_RESPONSE,
            .capture_header = "x-amzn-ErrorType", /* the error's type, also on a 4xx */
            .aws_sigv4 = x->sigv4,
            .access_key_id = x->creds.access_key_id,
            .secret_access_key = x->creds.secret_access_key,
            .ca_file = x->env.cfg->ca_file[0] != '\0' ? x->env.cfg->ca_file : NULL,
        };
        sink_list_push(out, &xr->base);
        i += used;
    }
}

static void xray_accept(void *sink, struct export_item *const *items, size_t n_items, struct sink_list *out,
                        struct sink_result *res)
{
    struct sink_xray *x = sink;
    struct xray_doc docs[XRAY_PUT_MAX_DOCS];
    size_t total = xray_units(items, n_items);
    size_t n = 0;

    if (total == 0)
        return;
    if (x->unusable) {
        res->skipped += total;
        return;
    }
    char why[320];
    if (!ensure_credentials(x, why, sizeof(why))) {
        log_warn("X-Ray exporter has no AWS credentials (%s); not sending to X-Ray (documents counted)", why);
        x->unusable = true;
        res->skipped += total;
        return;
    }
    /* Requests already queued keep pointing at these strings: they change
     * only when the credentials are refreshed, which is rare and replaces
     * them with equally valid ones. */
    snprintf(x->token_header, sizeof(x->token_header), "X-Amz-Security-Token: %s", x->creds.session_token);
    x->headers[0] = "Content-Type: application/json";
    x->headers[1] = x->creds.session_token[0] != '\0' ? x->token_header : NULL;
    x->headers[2] = NULL;
    for (size_t i = 0; i < n_items; i++) {
        for (size_t d = 0; d < items[i]->ndocs; d++) {
            docs[n++] = (struct xray_doc){items[i]->xray + items[i]->doc[d].off, items[i]->doc[d].len};
            if (n == XRAY_PUT_MAX_DOCS) {
                make_requests(x, docs, n, false, out, res);
                n = 0;
            }
        }
    }
    if (n > 0)
        make_requests(x, docs, n, false, out, res);
}

const struct aws_credentials *sink_xray_credentials(void *xray_sink)
{
    struct sink_xray *x = xray_sink;

    if (x->unusable)
        return NULL;
    char why[320];
    if (!ensure_credentials(x, why, sizeof(why))) {
        log_warn("X-Ray OTLP exporter has no AWS credentials (%s); not sending to X-Ray (spans counted)", why);
        x->unusable = true;
        return NULL;
    }
    return &x->creds;
}

/* Whether doc's "id" is id (UnprocessedTraceSegments names documents by id). */
static bool doc_has_id(const struct xray_doc *doc, const char *id)
{
    char needle[40];
    int n = snprintf(needle, sizeof(needle), "\"id\":\"%s\"", id);

    return n > 0 && (size_t)n < sizeof(needle) && memmem(doc->data, doc->len, needle, (size_t)n) != NULL;
}

size_t export_xray_unprocessed(const char *body, size_t len, const struct xray_doc *docs, size_t n,
                               bool *ret_refused)
{
    cJSON *root;
    const cJSON *list;
    const cJSON *entry;
    size_t listed = 0;

    for (size_t i = 0; i < n; i++)
        ret_refused[i] = false;
    if (body == NULL)
        return 0;
    root = cJSON_ParseWithLengthOpts(body, len, NULL, false);
    list = cJSON_GetObjectItemCaseSensitive(root, "UnprocessedTraceSegments");
    cJSON_ArrayForEach(entry, list)
    {
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(entry, "Id"));
        if (id == NULL)
            continue;
        /* An id listed twice still names one document, an id we did not
         * send names none: each document is retried once, and never more
         * documents than were sent are refused or counted. */
        for (size_t i = 0; i < n; i++) {
            if (!ret_refused[i] && doc_has_id(&docs[i], id)) {
                ret_refused[i] = true;
                listed++;
                break;
            }
        }
    }
    cJSON_Delete(root);
    return listed;
}

static void xray_answered(void *sink, const struct sink_request *req, const struct http_client_response *resp,
                          struct sink_list *out, struct sink_result *res)
{
    const struct xray_request *xr = (const struct xray_request *)req;
    bool refused[XRAY_PUT_MAX_DOCS];
    struct xray_doc again[XRAY_PUT_MAX_DOCS];
    size_t listed = export_xray_unprocessed(resp->body, resp->body_len, xr->docs, xr->ndocs, refused);
    size_t n = 0;

    for (size_t i = 0; i < xr->ndocs; i++)
        if (refused[i])
            again[n++] = xr->docs[i];
    res->unprocessed += listed;
    res->sent += xr->ndocs - n;
    if (n == 0)
        return;
    if (req->last_try)
        res->failed += n; /* second refusal: given up */
    else
        make_requests(sink, again, n, true, out, res);
}

const struct sink_ops sink_xray_ops = {
    .name = "xray",
    .open = xray_open,
    .close = xray_close,
    .units = xray_units,
    .accept = xray_accept,
    .answered = xray_answered,
    .free_request = xray_free_request,
};
