/*
 * export.c - see export.h.
 *
 * Batching: the exporter thread takes the first queued item, then whatever
 * else is already queued (up to EXPORT_BATCH_ITEMS), and sends that batch to
 * every sink: X-Ray documents in PutTraceSegments bodies of at most
 * XRAY_PUT_MAX_DOCS, one datagram per document to the daemon, the
 * segments' OTLP requests merged into one (protobuf: concatenated messages
 * merge their repeated resource_spans; JSON: the resourceSpans arrays are
 * joined).
 */
#include "export.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "config.h"
#include "credentials.h"
#include "http_client.h"
#include "limits.h"
#include "log.h"
#include "otlp_encode.h"
#include "queue.h"
#include "udp.h"
#include "xray_encode.h"

/* Items taken per round: a multiple of XRAY_PUT_MAX_DOCS, so a backlog
 * (SHUTDOWN with many invocations pending) goes out in full
 * PutTraceSegments requests, not one of 50 and one of 14 per round. */
#define EXPORT_BATCH_ITEMS ((size_t)2 * XRAY_PUT_MAX_DOCS)
#define EXPORT_ITEM 1
#define EXPORT_MAX_ATTEMPTS 3
#define EXPORT_RETRY_DELAY_MS 25
#define EXPORT_OTLP_MAX_BODY (4UL * 1024 * 1024)
#define EXPORT_PUT_MAX_BODY (1024UL * 1024)
#define EXPORT_MAX_RESPONSE (64UL * 1024)
/* A sink that failed this many batches in a row is skipped for a while. */
#define BREAKER_FAILURES 3
#define BREAKER_OPEN_MS 30000
#define OTLP_MAX_HEADERS CONFIG_OTLP_MAX_HEADERS
/* Container credentials are refreshed this long before they expire. */
#define CREDENTIALS_REFRESH_US (5LL * 60 * 1000000)

static const char *const sink_names[EXPORT_SINK_COUNT] = {"xray", "daemon", "otlp", "stdout"};

struct export_item {
    bool final;
    int ticket;      /* -1, or reported to cfg.on_handled once handled */
    char *xray;      /* the documents, each followed by '\n' */
    size_t ndocs;
    size_t off[XRAY_MAX_DOCS];
    size_t len[XRAY_MAX_DOCS];
    char *otlp;      /* one ExportTraceServiceRequest for this segment; NULL for in-progress */
    size_t otlp_len;
};

struct breaker {
    unsigned failures;
    int64_t open_until_ms;
    bool logged;
};

struct exporter {
    struct export_config cfg;
    struct queue *q;
    pthread_t thread;

    /* pipeline thread only: encoding scratch */
    struct xray_docs docs;
    struct buf otlp_buf;

    /* exporter thread only */
    struct http_client *xray_http;
    struct http_client *otlp_http;
    struct udp_sender *udp;
    bool udp_unusable;
    struct aws_credentials creds;
    bool xray_unusable;
    char sigv4[64];
    char xray_url[300];
    char token_header[sizeof(((struct aws_credentials *)0)->session_token) + 32];
    char otlp_header_lines[OTLP_MAX_HEADERS][CONFIG_OTLP_HEADER_LINE_BYTES];
    const char *otlp_headers[OTLP_MAX_HEADERS + 2];
    struct breaker breaker[EXPORT_SINK_COUNT];

    /* shared, under lock */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    uint64_t submitted_seq;
    uint64_t done_seq;
    struct export_stats stats;
    /* a waiting flush's deadline; 0 when none.  Read by the exporter thread
     * to shorten requests. */
    _Atomic int64_t flush_deadline_ns;
    _Atomic bool flush_last_chance;
    _Atomic int64_t eager_off_until_ms;
    /* The stop's deadline (0 before it): a request still running then is
     * cut (http_client abort time), a stdout write stops waiting. */
    _Atomic int64_t abort_at_ns;
    size_t sending_docs;  /* under lock: documents of the batch being sent */
    bool finished;        /* under lock: the thread is about to return */
    _Atomic bool abandoned; /* the stop gave up waiting: touch nothing shared */
};

int export_parse_sinks(const char *text, unsigned *ret_mask)
{
    unsigned mask = 0;
    const char *p = text;

    if (text == NULL || text[0] == '\0')
        return -EINVAL;
    if (strcasecmp(text, "none") == 0) {
        *ret_mask = 0;
        return 0;
    }
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        bool found = false;

        while (len > 0 && *p == ' ') {
            p++;
            len--;
        }
        while (len > 0 && p[len - 1] == ' ')
            len--;
        for (unsigned i = 0; i < EXPORT_SINK_COUNT; i++) {
            if (strlen(sink_names[i]) == len && strncasecmp(p, sink_names[i], len) == 0) {
                mask |= 1u << i;
                found = true;
            }
        }
        if (!found)
            return -EINVAL;
        if (end == NULL)
            break;
        p = end + 1;
    }
    *ret_mask = mask;
    return 0;
}

static bool has_sink(const struct exporter *e, enum export_sink s)
{
    return (e->cfg.sinks & (1u << s)) != 0;
}

static void item_free(struct export_item *it)
{
    if (it == NULL)
        return;
    free(it->xray);
    free(it->otlp);
    free(it);
}

static void free_queued(int kind, void *data)
{
    (void)kind;
    item_free(data);
}

/* --- submit (pipeline thread) ------------------------------------------------ */

static void count(struct exporter *e, uint64_t *field, uint64_t n)
{
    pthread_mutex_lock(&e->lock);
    *field += n;
    pthread_mutex_unlock(&e->lock);
}

int export_submit(struct exporter *e, const struct trace_segment *seg,
                  const struct trace_resource *res, bool final, int ticket)
{
    struct export_item *it = calloc(1, sizeof(*it));
    size_t max_doc = XRAY_DOC_MAX_BYTES;
    size_t bytes;
    int r;

    if (it == NULL) {
        count(e, &e->stats.dropped_full, 1);
        return -ENOMEM;
    }
    it->final = final;
    it->ticket = ticket;
    /* Documents that fit a datagram fit PutTraceSegments too. */
    if (has_sink(e, EXPORT_SINK_DAEMON) && XRAY_DAEMON_DOC_MAX_BYTES < max_doc)
        max_doc = XRAY_DAEMON_DOC_MAX_BYTES;
    if (e->cfg.sinks & ~(1u << EXPORT_SINK_OTLP)) {
        r = xray_encode_split(seg, max_doc, &e->docs, NULL);
        if (r < 0)
            goto fail_encode;
        it->xray = malloc(buf_len(&e->docs.text) + 1);
        if (it->xray == NULL) {
            r = -ENOMEM;
            goto fail;
        }
        memcpy(it->xray, buf_data(&e->docs.text), buf_len(&e->docs.text));
        it->xray[buf_len(&e->docs.text)] = '\0';
        it->ndocs = e->docs.count;
        memcpy(it->off, e->docs.off, sizeof(it->off));
        memcpy(it->len, e->docs.len, sizeof(it->len));
    }
    /* OTLP has no in-progress spans; only final versions go there. */
    if (has_sink(e, EXPORT_SINK_OTLP) && final) {
        buf_reset(&e->otlp_buf);
        r = e->cfg.otlp_json ? otlp_encode_json(&e->otlp_buf, res, seg, 1, TRACE_NO_END, NULL)
                             : otlp_encode_protobuf(&e->otlp_buf, res, seg, 1, TRACE_NO_END, NULL);
        if (r < 0)
            goto fail_encode;
        it->otlp = malloc(buf_len(&e->otlp_buf) + 1);
        if (it->otlp == NULL) {
            r = -ENOMEM;
            goto fail;
        }
        memcpy(it->otlp, buf_data(&e->otlp_buf), buf_len(&e->otlp_buf));
        it->otlp_len = buf_len(&e->otlp_buf);
    }
    bytes = sizeof(*it) + (it->xray != NULL ? buf_len(&e->docs.text) : 0) + it->otlp_len;
    pthread_mutex_lock(&e->lock);
    e->submitted_seq++;
    e->stats.submitted++;
    pthread_mutex_unlock(&e->lock);
    r = queue_push(e->q, EXPORT_ITEM, it, bytes, true);
    if (r < 0) {
        /* Not queued: count it as handled so flushes do not wait for it. */
        pthread_mutex_lock(&e->lock);
        e->done_seq++;
        e->stats.dropped_full++;
        pthread_cond_broadcast(&e->cond);
        pthread_mutex_unlock(&e->lock);
        item_free(it);
        return r == -ENOMEM ? -ENOMEM : -ENOBUFS;
    }
    return 0;

fail_encode:
    count(e, &e->stats.dropped_encode, 1);
fail:
    item_free(it);
    return r;
}

/* --- sending (exporter thread) ---------------------------------------------- */

/* Time a request may take now: the configured timeout, or less when a
 * flush is waiting with a nearer deadline.  0: no time left. */
static long request_budget_ms(struct exporter *e)
{
    int64_t deadline = atomic_load(&e->flush_deadline_ns);
    int64_t abort_at = atomic_load(&e->abort_at_ns);
    long budget = (long)e->cfg.request_timeout_ms;

    if (abort_at > 0 && (deadline <= 0 || abort_at < deadline))
        deadline = abort_at;
    if (deadline > 0) {
        int64_t left_ms = (deadline - clock_mono_ns()) / 1000000;
        if (left_ms <= 0)
            return 0;
        if (left_ms < budget)
            budget = (long)left_ms;
    }
    return budget;
}

static bool breaker_allows(struct exporter *e, enum export_sink s)
{
    struct breaker *b = &e->breaker[s];

    if (b->failures < BREAKER_FAILURES)
        return true;
    /* Open: skip, except one probe once the pause is over, or at SHUTDOWN:
     * the last chance. */
    return clock_mono_ms() >= b->open_until_ms || atomic_load(&e->flush_last_chance);
}

static void breaker_result(struct exporter *e, enum export_sink s, bool ok, const char *why)
{
    struct breaker *b = &e->breaker[s];

    if (ok) {
        if (b->failures >= BREAKER_FAILURES)
            log_info("%s exporter recovered", sink_names[s]);
        b->failures = 0;
        b->logged = false;
        return;
    }
    b->failures++;
    if (b->failures >= BREAKER_FAILURES) {
        b->open_until_ms = clock_mono_ms() + BREAKER_OPEN_MS;
        if (!b->logged) {
            log_warn("%s exporter failing (%s); pausing it for %d s, counting what is not sent",
                     sink_names[s], why, BREAKER_OPEN_MS / 1000);
            b->logged = true;
        }
    }
}

static void sink_count(struct exporter *e, enum export_sink s, uint64_t sent, uint64_t failed,
                       uint64_t skipped)
{
    pthread_mutex_lock(&e->lock);
    e->stats.sink[s].sent += sent;
    e->stats.sink[s].failed += failed;
    e->stats.sink[s].skipped += skipped;
    pthread_mutex_unlock(&e->lock);
}

/* One HTTP POST with retries on transport errors, 429 and 5xx, within the
 * budget.  0 and the answer (caller cleans up), or a negative errno. */
static int post(struct exporter *e, enum export_sink s, struct http_client *http,
                struct http_client_request *req, struct http_client_response *resp, char *why,
                size_t why_size)
{
    int r = -ETIMEDOUT;

    for (int attempt = 0; attempt < EXPORT_MAX_ATTEMPTS; attempt++) {
        long budget = request_budget_ms(e);
        char detail[128] = "";

        if (budget <= 0)
            break;
        if (attempt > 0) {
            count(e, &e->stats.sink[s].retries, 1);
            long delay_ms = (long)EXPORT_RETRY_DELAY_MS * attempt;
            if (budget <= delay_ms)
                break;
            clock_sleep_ms(delay_ms);
            budget = request_budget_ms(e);
            if (budget <= 0)
                break;
        }
        req->timeout_ms = budget;
        req->abort_at_ns = &e->abort_at_ns;
        req->connect_timeout_ms = budget < (long)e->cfg.connect_timeout_ms ? budget
                                                                         : (long)e->cfg.connect_timeout_ms;
        count(e, &e->stats.sink[s].requests, 1);
        r = http_client_perform(http, req, resp, detail, sizeof(detail));
        if (r < 0) {
            snprintf(why, why_size, "%s", detail[0] ? detail : "transport error");
            log_debug("%s export request failed: %s", sink_names[s], why);
            continue;
        }
        if (resp->status >= 200 && resp->status < 300)
            return 0;
        snprintf(why, why_size, "HTTP %ld", resp->status);
        r = -EIO;
        bool retry = resp->status == 429 || resp->status >= 500;
        http_client_response_clean_up(resp);
        if (!retry)
            break;
    }
    return r;
}

/* The CA bundle chosen at start, or NULL for libcurl's default.  Set on
 * every request, since each begins with curl_easy_reset. */
static const char *ca_file(const struct exporter *e)
{
    return e->cfg.ca_file[0] != '\0' ? e->cfg.ca_file : NULL;
}

static const char *env_lookup(const char *name, void *ctx)
{
    (void)ctx;
    return getenv(name);
}

/* Fresh credentials for SigV4, from the environment or the container
 * credentials endpoint.  false when there are none. */
static bool ensure_credentials(struct exporter *e)
{
    char uri[1024];
    char auth[1100];
    const char *headers[] = {auth, NULL};
    struct http_client_request req = {
        .method = "GET",
        .max_response_bytes = EXPORT_MAX_RESPONSE,
        .connect_timeout_ms = 1000,
        .ca_file = ca_file(e),
    };
    struct http_client_response resp;
    int r;

    if (e->creds.access_key_id[0] != '\0' &&
        (e->creds.expires_us == 0 || e->creds.expires_us - clock_epoch_us() > CREDENTIALS_REFRESH_US))
        return true;
    /* Checked where read: a URI or token with a control byte is refused. */
    r = credentials_container_request(env_lookup, NULL, uri, sizeof(uri), auth, sizeof(auth));
    if (r == -ENOENT)
        return credentials_from_env(env_lookup, NULL, &e->creds) == 0;
    if (r < 0)
        return false;
    req.url = uri;
    req.headers = auth[0] != '\0' ? headers : NULL;
    req.timeout_ms = request_budget_ms(e);
    req.abort_at_ns = &e->abort_at_ns;
    if (req.timeout_ms <= 0)
        return false;
    r = http_client_perform(e->xray_http, &req, &resp, NULL, 0);
    if (r < 0)
        return false;
    r = resp.status == 200 ? credentials_parse_container(resp.body, resp.body_len, &e->creds) : -EIO;
    http_client_response_clean_up(&resp);
    return r == 0;
}

/* Finds the document whose "id" is id among docs (for
 * UnprocessedTraceSegments, which names documents by id). */
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

/* Collects the documents an answer lists as UnprocessedTraceSegments
 * (n <= XRAY_PUT_MAX_DOCS) for one more try.  Returns how many. */
static size_t unprocessed(const struct http_client_response *resp, const struct xray_doc *docs,
                          size_t n, struct xray_doc *retry, size_t *retry_n)
{
    bool refused[XRAY_PUT_MAX_DOCS];
    size_t listed = export_xray_unprocessed(resp->body, resp->body_len, docs, n, refused);

    for (size_t i = 0; i < n; i++)
        if (refused[i])
            retry[(*retry_n)++] = docs[i];
    return listed;
}

/* Sends docs in PutTraceSegments bodies; documents X-Ray lists as
 * unprocessed are collected into retry (when not NULL).  Adds to *sent and
 * *failed.  Returns false when the sink stopped being usable. */
static bool put_docs(struct exporter *e, struct buf *body, const struct xray_doc *docs, size_t n,
                     struct xray_doc *retry, size_t *retry_n, uint64_t *sent, uint64_t *failed)
{
    const char *headers[] = {"Content-Type: application/json",
                             e->creds.session_token[0] ? e->token_header : NULL, NULL};
    char why[160] = "";
    size_t i = 0;

    while (i < n) {
        struct http_client_response resp;
        struct http_client_request req = {
            .method = "POST",
            .url = e->xray_url,
            .headers = headers,
            .max_response_bytes = EXPORT_MAX_RESPONSE,
            .aws_sigv4 = e->sigv4,
            .access_key_id = e->creds.access_key_id,
            .secret_access_key = e->creds.secret_access_key,
            .ca_file = ca_file(e),
        };
        size_t chunk = n - i < XRAY_PUT_MAX_DOCS ? n - i : XRAY_PUT_MAX_DOCS;
        size_t used = 0;

        buf_reset(body);
        if (xray_put_body(body, docs + i, chunk, &used) < 0) {
            (*failed)++; /* one document over the body cap */
            i++;
            continue;
        }
        req.body = buf_data(body);
        req.body_len = buf_len(body);
        if (post(e, EXPORT_SINK_XRAY, e->xray_http, &req, &resp, why, sizeof(why)) < 0) {
            *failed += used;
            i += used;
            breaker_result(e, EXPORT_SINK_XRAY, false, why);
            if (!breaker_allows(e, EXPORT_SINK_XRAY)) {
                *failed += n - i;
                return false;
            }
            continue;
        }
        size_t before = retry != NULL ? *retry_n : 0;
        size_t scratch_n = 0;
        struct xray_doc scratch[XRAY_PUT_MAX_DOCS];
        size_t listed = unprocessed(&resp, docs + i, used, retry != NULL ? retry : scratch,
                                    retry != NULL ? retry_n : &scratch_n);
        size_t refused = retry != NULL ? *retry_n - before : scratch_n;
        count(e, &e->stats.unprocessed, listed);
        *sent += used - refused;
        if (retry == NULL)
            *failed += refused; /* second refusal: given up */
        http_client_response_clean_up(&resp);
        breaker_result(e, EXPORT_SINK_XRAY, true, NULL);
        i += used;
    }
    return true;
}

static void send_xray(struct exporter *e, struct export_item **items, size_t n_items)
{
    static struct xray_doc docs[EXPORT_BATCH_ITEMS * XRAY_MAX_DOCS];
    static struct xray_doc retry[EXPORT_BATCH_ITEMS * XRAY_MAX_DOCS];
    size_t n = 0, retry_n = 0;
    uint64_t sent = 0, failed = 0;
    struct buf body;

    for (size_t i = 0; i < n_items; i++)
        for (size_t d = 0; d < items[i]->ndocs; d++)
            docs[n++] = (struct xray_doc){items[i]->xray + items[i]->off[d], items[i]->len[d]};
    if (n == 0)
        return;
    if (e->xray_unusable || !breaker_allows(e, EXPORT_SINK_XRAY)) {
        sink_count(e, EXPORT_SINK_XRAY, 0, 0, n);
        return;
    }
    if (!ensure_credentials(e)) {
        log_warn("X-Ray exporter has no AWS credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                 "or AWS_CONTAINER_CREDENTIALS_FULL_URI; unset, or holding blanks or control bytes); "
                 "not sending to X-Ray (documents counted)");
        e->xray_unusable = true;
        sink_count(e, EXPORT_SINK_XRAY, 0, 0, n);
        return;
    }
    snprintf(e->token_header, sizeof(e->token_header), "X-Amz-Security-Token: %s",
             e->creds.session_token);
    buf_init(&body, EXPORT_PUT_MAX_BODY);
    /* Documents X-Ray did not process get exactly one more try. */
    if (put_docs(e, &body, docs, n, retry, &retry_n, &sent, &failed) && retry_n > 0)
        (void)put_docs(e, &body, retry, retry_n, NULL, NULL, &sent, &failed);
    else
        failed += retry_n;
    buf_free(&body);
    sink_count(e, EXPORT_SINK_XRAY, sent, failed, 0);
}

static void send_daemon(struct exporter *e, struct export_item **items, size_t n_items)
{
    struct buf dgram;
    uint64_t sent = 0, failed = 0, total = 0;

    for (size_t i = 0; i < n_items; i++)
        total += items[i]->ndocs;
    if (total == 0)
        return;
    if (e->udp == NULL && !e->udp_unusable) {
        int r = udp_sender_open(e->cfg.daemon_address, &e->udp);
        if (r < 0) {
            log_warn("setting LAMBDA_TRACER_DAEMON_ADDRESS (%s) is unusable (%s); not sending to the "
                     "daemon (documents counted)",
                     e->cfg.daemon_address, strerror(-r));
            e->udp_unusable = true;
        }
    }
    if (e->udp == NULL) {
        sink_count(e, EXPORT_SINK_DAEMON, 0, 0, total);
        return;
    }
    buf_init(&dgram, XRAY_DATAGRAM_MAX_BYTES);
    for (size_t i = 0; i < n_items; i++) {
        for (size_t d = 0; d < items[i]->ndocs; d++) {
            buf_reset(&dgram);
            if (xray_daemon_datagram(&dgram, items[i]->xray + items[i]->off[d], items[i]->len[d]) < 0 ||
                udp_sender_send(e->udp, buf_data(&dgram), buf_len(&dgram)) < 0)
                failed++;
            else
                sent++;
        }
    }
    buf_free(&dgram);
    sink_count(e, EXPORT_SINK_DAEMON, sent, failed, 0);
}

/* Writes one line to stdout.  stdout is a pipe in Lambda: when its reader
 * stalls, a write would block, so each write waits for room with poll, at
 * most until the stop's abort time once there is one (checked at least
 * every STDOUT_POLL_MS).  Writes of at most PIPE_BUF bytes into a pipe with
 * room do not block.  true when all was written. */
#define STDOUT_POLL_MS 50
#define STDOUT_CHUNK_BYTES 4096

static bool write_stdout(struct exporter *e, const char *p, size_t len)
{
    while (len > 0) {
        struct pollfd pfd = {.fd = STDOUT_FILENO, .events = POLLOUT};
        int64_t abort_at = atomic_load(&e->abort_at_ns);
        int wait_ms = STDOUT_POLL_MS;
        ssize_t w;

        if (abort_at > 0) {
            int64_t left_ms = (abort_at - clock_mono_ns()) / 1000000;
            if (left_ms <= 0)
                return false;
            if (left_ms < wait_ms)
                wait_ms = (int)left_ms + 1;
        }
        int r = poll(&pfd, 1, wait_ms);
        if (r < 0 && errno != EINTR)
            return false;
        if (r <= 0)
            continue;
        if (pfd.revents & (POLLERR | POLLNVAL))
            return false;
        w = write(STDOUT_FILENO, p, len < STDOUT_CHUNK_BYTES ? len : STDOUT_CHUNK_BYTES);
        if (w < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (w <= 0)
            return false;
        p += w;
        len -= (size_t)w;
    }
    return true;
}

static void send_stdout(struct exporter *e, struct export_item **items, size_t n_items)
{
    uint64_t sent = 0, failed = 0;

    for (size_t i = 0; i < n_items; i++) {
        for (size_t d = 0; d < items[i]->ndocs; d++) {
            /* Each document is followed by '\n' in the item. */
            if (write_stdout(e, items[i]->xray + items[i]->off[d], items[i]->len[d] + 1))
                sent++;
            else
                failed++;
        }
    }
    sink_count(e, EXPORT_SINK_STDOUT, sent, failed, 0);
}

/* OTLP/JSON bodies are {"resourceSpans":[...]}: the arrays are joined. */
#define OTLP_JSON_HEAD "{\"resourceSpans\":["
#define OTLP_JSON_TAIL "]}"

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

static void send_otlp(struct exporter *e, struct export_item **items, size_t n_items)
{
    bool json = e->cfg.otlp_json;
    struct buf body;
    size_t i = 0;
    char why[160] = "";

    buf_init(&body, EXPORT_OTLP_MAX_BODY);
    while (i < n_items) {
        size_t in_body = 0;
        size_t start = i;
        struct http_client_response resp;

        buf_reset(&body);
        if (json && buf_append(&body, OTLP_JSON_HEAD, sizeof(OTLP_JSON_HEAD) - 1) < 0)
            break;
        for (; i < n_items; i++) {
            size_t mark = buf_len(&body);
            if (items[i]->otlp == NULL)
                continue;
            if (otlp_append(&body, items[i], json, in_body == 0) < 0 ||
                (json && buf_len(&body) + 2 > buf_max(&body))) {
                buf_truncate(&body, mark);
                if (in_body == 0) {
                    sink_count(e, EXPORT_SINK_OTLP, 0, 1, 0); /* alone too big */
                    i++;
                }
                break;
            }
            in_body++;
        }
        if (in_body == 0) {
            if (i == start)
                break;
            continue;
        }
        if (json && buf_append(&body, OTLP_JSON_TAIL, 2) < 0) {
            sink_count(e, EXPORT_SINK_OTLP, 0, in_body, 0);
            continue;
        }
        if (!breaker_allows(e, EXPORT_SINK_OTLP)) {
            sink_count(e, EXPORT_SINK_OTLP, 0, 0, in_body);
            continue;
        }
        struct http_client_request req = {
            .method = "POST",
            .url = e->cfg.otlp_endpoint,
            .headers = e->otlp_headers,
            .body = buf_data(&body),
            .body_len = buf_len(&body),
            .max_response_bytes = EXPORT_MAX_RESPONSE,
            .ca_file = ca_file(e),
        };
        if (post(e, EXPORT_SINK_OTLP, e->otlp_http, &req, &resp, why, sizeof(why)) < 0) {
            sink_count(e, EXPORT_SINK_OTLP, 0, in_body, 0);
            breaker_result(e, EXPORT_SINK_OTLP, false, why);
        } else {
            http_client_response_clean_up(&resp);
            sink_count(e, EXPORT_SINK_OTLP, in_body, 0, 0);
            breaker_result(e, EXPORT_SINK_OTLP, true, NULL);
        }
    }
    buf_free(&body);
}

/* Documents (or OTLP segments) a batch holds for its sinks: what the
 * stop counts as abandoned if it gives up waiting for the batch. */
static size_t batch_docs(const struct exporter *e, struct export_item **batch, size_t n)
{
    size_t docs = 0;

    for (size_t i = 0; i < n; i++) {
        if (e->cfg.sinks & ~(1u << EXPORT_SINK_OTLP))
            docs += batch[i]->ndocs;
        if (has_sink(e, EXPORT_SINK_OTLP) && batch[i]->otlp != NULL)
            docs++;
    }
    return docs;
}

static void *export_main(void *arg)
{
    struct exporter *e = arg;
    struct export_item *batch[EXPORT_BATCH_ITEMS];

    for (;;) {
        int kind;
        void *data;
        size_t n = 0;

        if (queue_pop(e->q, -1, &kind, &data, NULL) < 0)
            break; /* closed and empty */
        batch[n++] = data;
        while (n < EXPORT_BATCH_ITEMS && queue_pop(e->q, 0, &kind, &data, NULL) == 0)
            batch[n++] = data;
        pthread_mutex_lock(&e->lock);
        e->sending_docs = batch_docs(e, batch, n);
        pthread_mutex_unlock(&e->lock);

        if (has_sink(e, EXPORT_SINK_STDOUT))
            send_stdout(e, batch, n);
        if (has_sink(e, EXPORT_SINK_DAEMON))
            send_daemon(e, batch, n);
        if (has_sink(e, EXPORT_SINK_XRAY))
            send_xray(e, batch, n);
        if (has_sink(e, EXPORT_SINK_OTLP))
            send_otlp(e, batch, n);

        /* A stop that gave up on this thread has counted the batch and may
         * be tearing down what on_handled uses (the journal). */
        if (atomic_load(&e->abandoned)) {
            for (size_t i = 0; i < n; i++)
                item_free(batch[i]);
            return NULL;
        }
        for (size_t i = 0; i < n; i++) {
            if (batch[i]->ticket >= 0 && e->cfg.on_handled != NULL)
                e->cfg.on_handled(batch[i]->ticket, e->cfg.on_handled_ctx);
            item_free(batch[i]);
        }
        pthread_mutex_lock(&e->lock);
        e->sending_docs = 0;
        e->done_seq += n;
        pthread_cond_broadcast(&e->cond);
        pthread_mutex_unlock(&e->lock);
    }
    pthread_mutex_lock(&e->lock);
    e->finished = true;
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->lock);
    return NULL;
}

/* "name=value,name=value" into "name: value" header lines after the
 * Content-Type line. */
static int parse_otlp_headers(struct exporter *e)
{
    size_t lines = 0;
    int r = config_parse_otlp_headers(e->cfg.otlp_headers, e->otlp_header_lines, OTLP_MAX_HEADERS,
                                      &lines);

    if (r < 0)
        return r;
    e->otlp_headers[0] = e->cfg.otlp_json ? "Content-Type: " OTLP_JSON_CONTENT_TYPE
                                          : "Content-Type: " OTLP_PROTOBUF_CONTENT_TYPE;
    for (size_t i = 0; i < lines; i++)
        e->otlp_headers[i + 1] = e->otlp_header_lines[i];
    e->otlp_headers[lines + 1] = NULL;
    return 0;
}

static bool file_readable(const char *path, void *ctx)
{
    (void)ctx;
    return access(path, R_OK) == 0;
}

static bool is_https(const char *url)
{
    return strncasecmp(url, "https://", 8) == 0;
}

/* Chooses the CA bundle once, before the thread starts, when an enabled
 * sink speaks HTTPS.  The choice is fixed for the process: every request
 * then names the same file, so libcurl keeps reusing the open connection
 * (a new TLS connection parses the whole bundle again, about 8 ms with
 * mbedTLS).  Main thread. */
static void choose_ca_file(struct exporter *e)
{
    char chosen[sizeof(e->cfg.ca_file)];
    bool https = (has_sink(e, EXPORT_SINK_XRAY) && is_https(e->cfg.xray_endpoint)) ||
                 (has_sink(e, EXPORT_SINK_OTLP) && is_https(e->cfg.otlp_endpoint));
    int r;

    if (!https)
        return;
    r = config_choose_ca_file(e->cfg.ca_file, file_readable, NULL, chosen, sizeof(chosen));
    if (r < 0)
        log_warn("no readable CA bundle (LAMBDA_TRACER_CA_FILE, %s, %s); HTTPS exports will fail "
                 "certificate checks",
                 CONFIG_CA_FILE_AMAZON_LINUX, CONFIG_CA_FILE_DEBIAN);
    else if (e->cfg.ca_file[0] != '\0' && strcmp(chosen, e->cfg.ca_file) != 0)
        log_warn("LAMBDA_TRACER_CA_FILE is not readable; using %s", chosen);
    else
        log_debug("HTTPS CA bundle: %s", chosen);
    if (r == 0)
        snprintf(e->cfg.ca_file, sizeof(e->cfg.ca_file), "%s", chosen);
}

int export_start(const struct export_config *cfg, struct exporter **ret)
{
    struct exporter *e;
    pthread_condattr_t attr;
    int r;

    if (cfg->sinks == 0)
        return -EINVAL;
    e = calloc(1, sizeof(*e));
    if (e == NULL)
        return -ENOMEM;
    e->cfg = *cfg;
    xray_docs_init(&e->docs);
    buf_init(&e->otlp_buf, EXPORT_OTLP_MAX_BODY);
    snprintf(e->sigv4, sizeof(e->sigv4), "aws:amz:%s:xray", cfg->region);
    snprintf(e->xray_url, sizeof(e->xray_url), "%s/TraceSegments", cfg->xray_endpoint);
    if (has_sink(e, EXPORT_SINK_OTLP) && parse_otlp_headers(e) < 0) {
        /* One bad setting costs its own sink, not the others. */
        log_warn("setting LAMBDA_TRACER_OTLP_HEADERS is invalid (not name=value,... of at most %d "
                 "headers); leaving the OTLP exporter out",
                 OTLP_MAX_HEADERS);
        e->cfg.sinks &= ~(1u << EXPORT_SINK_OTLP);
        if (e->cfg.sinks == 0) {
            r = -EINVAL;
            goto fail;
        }
    }
    choose_ca_file(e);
    e->q = queue_new(cfg->queue_max_bytes);
    /* One client per HTTP sink in use (each holds descriptors). */
    if (has_sink(e, EXPORT_SINK_XRAY))
        e->xray_http = http_client_new_abortable();
    if (has_sink(e, EXPORT_SINK_OTLP))
        e->otlp_http = http_client_new_abortable();
    if (e->q == NULL || (has_sink(e, EXPORT_SINK_XRAY) && e->xray_http == NULL) ||
        (has_sink(e, EXPORT_SINK_OTLP) && e->otlp_http == NULL)) {
        r = -ENOMEM;
        goto fail;
    }
    if (pthread_mutex_init(&e->lock, NULL) != 0) {
        r = -ENOMEM;
        goto fail;
    }
    if (pthread_condattr_init(&attr) != 0 || pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&e->cond, &attr) != 0) {
        pthread_mutex_destroy(&e->lock);
        r = -ENOMEM;
        goto fail;
    }
    pthread_condattr_destroy(&attr);
    r = -pthread_create(&e->thread, NULL, export_main, e);
    if (r < 0) {
        pthread_cond_destroy(&e->cond);
        pthread_mutex_destroy(&e->lock);
        goto fail;
    }
    *ret = e;
    return 0;

fail:
    queue_destroy(e->q, free_queued);
    http_client_destroy(e->xray_http);
    http_client_destroy(e->otlp_http);
    xray_docs_free(&e->docs);
    buf_free(&e->otlp_buf);
    free(e);
    return r;
}

/* Documents given up on or skipped so far, all sinks.  Under e->lock. */
static uint64_t lost_locked(const struct exporter *e)
{
    uint64_t n = 0;

    for (unsigned i = 0; i < EXPORT_SINK_COUNT; i++)
        n += e->stats.sink[i].failed + e->stats.sink[i].skipped;
    return n;
}

bool export_eager_ok(struct exporter *e)
{
    return clock_mono_ms() >= atomic_load(&e->eager_off_until_ms);
}

void export_eager_off(struct exporter *e)
{
    atomic_store(&e->eager_off_until_ms, clock_mono_ms() + EXPORT_EAGER_OFF_MS);
}

void export_hold(struct exporter *e)
{
    queue_hold(e->q);
}

void export_release(struct exporter *e)
{
    queue_release(e->q);
}

/* From now on nothing the thread does outlives deadline_ns: a request in
 * flight is cut then, and woken to notice at once. */
static void set_abort_at(struct exporter *e, int64_t deadline_ns)
{
    int64_t at = deadline_ns > 0 ? deadline_ns : 1;
    int64_t old = atomic_load(&e->abort_at_ns);

    if (old == 0 || at < old)
        atomic_store(&e->abort_at_ns, at);
    http_client_wake(e->xray_http);
    http_client_wake(e->otlp_http);
}

bool export_flush(struct exporter *e, int64_t deadline_ns, bool last_chance)
{
    struct timespec ts = {
        .tv_sec = (time_t)(deadline_ns / 1000000000),
        .tv_nsec = (long)(deadline_ns % 1000000000),
    };
    bool done;

    queue_wake(e->q); /* a burst being submitted is not held back from a flush */
    if (last_chance)
        set_abort_at(e, deadline_ns);
    pthread_mutex_lock(&e->lock);
    uint64_t target = e->submitted_seq;
    uint64_t lost_before = lost_locked(e);
    atomic_store(&e->flush_last_chance, last_chance);
    atomic_store(&e->flush_deadline_ns, deadline_ns);
    while (e->done_seq < target) {
        if (pthread_cond_timedwait(&e->cond, &e->lock, &ts) == ETIMEDOUT)
            break;
    }
    done = e->done_seq >= target;
    bool lost = lost_locked(e) > lost_before;
    atomic_store(&e->flush_deadline_ns, 0);
    pthread_mutex_unlock(&e->lock);
    /* Handled is not delivered: a backend that failed or timed out makes
     * the next eager invocations pay for nothing. */
    if ((!done || lost) && !last_chance) {
        export_eager_off(e);
        log_warn("export before /next %s; exporting in the background for the next %d s",
                 done ? "failed" : "did not finish within its budget", EXPORT_EAGER_OFF_MS / 1000);
    }
    return done;
}

bool export_stop(struct exporter *e, int64_t deadline_ns, struct export_stats *ret)
{
    struct timespec ts;
    uint64_t left = 0;
    bool finished;
    int64_t join_ms = e != NULL && e->cfg.stop_join_ms > 0 ? (int64_t)e->cfg.stop_join_ms : EXPORT_STOP_JOIN_MS;
    int64_t cut_ns = deadline_ns - join_ms * 1000000;
    /* With the deadline already passed, the thread still gets the time a
     * cut request takes to return (the process is late either way; giving
     * up on a thread that only needs to be scheduled helps nothing). */
    int64_t join_ns = deadline_ns;

    if (e == NULL)
        return true;
    if (join_ns <= clock_mono_ns())
        join_ns = clock_mono_ns() + join_ms * 1000000;
    ts.tv_sec = (time_t)(join_ns / 1000000000);
    ts.tv_nsec = (long)(join_ns % 1000000000);
    /* Sending ends (a request in flight is cut) a little before the
     * deadline, so the thread has returned by the deadline itself. */
    (void)export_flush(e, cut_ns, true);
    /* Whatever is still queued then is not sent. */
    set_abort_at(e, cut_ns);
    queue_close(e->q);
    {
        int kind;
        void *data;
        while (queue_pop(e->q, 0, &kind, &data, NULL) == 0) {
            item_free(data);
            left++;
        }
    }
    pthread_mutex_lock(&e->lock);
    e->stats.unsent_at_stop += left;
    /* The thread ends within moments of the abort time; should it be stuck
     * where nothing cuts it, it is not waited for past the deadline. */
    while (!e->finished) {
        if (pthread_cond_timedwait(&e->cond, &e->lock, &ts) == ETIMEDOUT)
            break;
    }
    finished = e->finished;
    if (!finished) {
        atomic_store(&e->abandoned, true);
        e->stats.abandoned += e->sending_docs;
    }
    if (ret != NULL)
        *ret = e->stats;
    pthread_mutex_unlock(&e->lock);
    if (!finished) {
        /* The process exits; the thread goes with it.  Kept reachable
         * (not freed under the running thread). */
        static struct exporter *left_running;
        left_running = e;
        (void)left_running;
        pthread_detach(e->thread); /* nobody joins it */
        return false;
    }
    pthread_join(e->thread, NULL);
    queue_destroy(e->q, free_queued);
    udp_sender_close(e->udp);
    http_client_destroy(e->xray_http);
    http_client_destroy(e->otlp_http);
    credentials_clear(&e->creds);
    xray_docs_free(&e->docs);
    buf_free(&e->otlp_buf);
    pthread_cond_destroy(&e->cond);
    pthread_mutex_destroy(&e->lock);
    free(e);
    return true;
}
