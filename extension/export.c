/*
 * export.c - see export.h.  The generic part of the exporter: the queue
 * from the pipeline, batches, the budget (flush deadlines and the stop's
 * abort time), retries, the circuit breaker, counters and on_handled
 * tickets.  What is sink-specific (encoding a batch into requests, judging
 * answers, the daemon's datagrams, stdout's lines) lives in sink_*.c behind
 * struct sink_ops (export_sink.h).
 *
 * Batching: each round takes up to EXPORT_BATCH_ITEMS queued items as one
 * batch and hands it to every sink: X-Ray documents become
 * PutTraceSegments bodies of at most XRAY_PUT_MAX_DOCS, the daemon gets one
 * datagram per document, OTLP merges the segments' requests, stdout writes
 * lines.  Requests of an HTTP sink run in parallel, at most
 * EXPORT_PARALLEL at once, on the sink's curl multi handle; while a sink
 * has room, further batches are taken (at most EXPORT_MAX_BATCHES not yet
 * retired), so a backlog at SHUTDOWN against an endpoint that takes tens
 * of milliseconds per answer is sent EXPORT_PARALLEL requests at a time.
 * Batches are retired (tickets reported, flushes woken) in the order they
 * were taken, whatever order their answers come in.
 *
 * The core is driven: export_perform does whatever is due without
 * blocking, export_poll_fds and export_timeout_ms say when to call it next.
 * export_start runs it on a thread of its own (export_main), which blocks
 * in queue_pop while nothing is in flight and in poll otherwise.
 */
#include "export.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "config.h"
#include "export_sink.h"
#include "http_client.h"
#include "limits.h"
#include "log.h"
#include "otlp_encode.h"
#include "queue.h"
#include "refusal.h"
#include "xray_encode.h"

/* Items taken per batch: a multiple of XRAY_PUT_MAX_DOCS, so a backlog
 * goes out in full PutTraceSegments requests, not one of 50 and one of 14
 * per batch. */
#define EXPORT_BATCH_ITEMS ((size_t)2 * XRAY_PUT_MAX_DOCS)
/* Requests in flight at once per HTTP sink: what the X-Ray daemon uses
 * (reference 4.5: "8 concurrent uploads").  10,000 pending segments are
 * 200 PutTraceSegments requests: 25 rounds of 8, 0.75 s at 30 ms each. */
#define EXPORT_PARALLEL 8
/* Batches taken and not yet retired (each holds at most 2 X-Ray requests'
 * worth of documents, so this keeps EXPORT_PARALLEL requests fed). */
#define EXPORT_MAX_BATCHES 8
#define EXPORT_ITEM 1
#define EXPORT_MAX_ATTEMPTS 3
#define EXPORT_RETRY_DELAY_MS 25
/* A sink that failed this many requests in a row is skipped for a while. */
#define BREAKER_FAILURES 3
#define BREAKER_OPEN_MS 30000
/* Without its wake-up descriptor (none left), the thread polling requests
 * looks at the abort time and the queue at least this often. */
#define EXPORT_POLL_NO_WAKE_MS 20
/* The own thread's poll: libcurl's descriptors plus the wake-up eventfd. */
#define EXPORT_MAX_FDS (2 * 2 * EXPORT_PARALLEL + 4)

static const char *const sink_names[EXPORT_SINK_COUNT] = {"xray", "daemon", "otlp", "stdout", "xray-otlp"};
static const struct sink_ops *const sink_table[EXPORT_SINK_COUNT] = {
    [EXPORT_SINK_XRAY] = &sink_xray_ops,
    [EXPORT_SINK_DAEMON] = &sink_daemon_ops,
    [EXPORT_SINK_OTLP] = &sink_otlp_ops,
    [EXPORT_SINK_STDOUT] = &sink_stdout_ops,
    [EXPORT_SINK_XRAY_OTLP] = &sink_xray_otlp_ops,
};

struct export_batch {
    struct export_item *items[EXPORT_BATCH_ITEMS];
    size_t n;
    size_t outstanding;   /* requests of any sink not finished yet */
    size_t units;         /* documents for all sinks (abandoned if the stop gives up) */
    size_t accounted;     /* of them, with an outcome (sent, failed, skipped) */
    struct export_batch *next;
};

struct breaker {
    unsigned failures;
    int64_t open_until_ms;
    bool logged;
    bool refusal_logged;   /* a 4xx was logged at once (it does not pass by itself) */
};

/* One sink in use.  Exporter thread only. */
struct sink_slot {
    const struct sink_ops *ops;
    void *state;
    struct http_multi *multi;   /* sinks with requests */
    struct sink_list pending;   /* requests not started yet */
    size_t npending;
    struct breaker breaker;
};

struct exporter {
    struct export_config cfg;
    char last_failure[560];    /* "sink: why" of the last failed request; under lock */
    struct queue *q;
    pthread_t thread;
    bool threaded;

    /* pipeline thread only: encoding scratch */
    struct xray_docs docs;
    struct buf otlp_buf;
    struct trace_segment *otlp_seg; /* the segment as OTLP sees it (otlp_view) */

    /* exporter thread (the driver) only */
    struct sink_env env;
    struct sink_slot sink[EXPORT_SINK_COUNT];
    struct export_batch *head;  /* batches taken, oldest first */
    struct export_batch *tail;
    size_t nbatches;
    bool queue_closed;

    /* own-thread mode: the thread polls this besides libcurl's descriptors
     * while requests are in flight; export_flush, the stop and a release
     * of submitted items write it. */
    int wake_fd;
    _Atomic bool polling;

    /* shared, under lock */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    uint64_t submitted_seq;
    uint64_t done_seq;
    struct export_stats stats;
    /* a waiting flush's deadline; 0 when none.  Read by the driver to
     * shorten requests. */
    _Atomic int64_t flush_deadline_ns;
    _Atomic bool flush_last_chance;
    _Atomic int64_t eager_off_until_ms;
    /* The stop's deadline (0 before it): requests still running then are
     * cut, a stdout write stops waiting. */
    _Atomic int64_t abort_at_ns;
    size_t sending_docs;  /* under lock: documents of the batches taken */
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

/* --- sending (the driver) ---------------------------------------------------- */

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
    struct breaker *b = &e->sink[s].breaker;

    if (b->failures < BREAKER_FAILURES)
        return true;
    /* Open: skip, except probes once the pause is over, or at SHUTDOWN:
     * the last chance. */
    return clock_mono_ms() >= b->open_until_ms || atomic_load(&e->flush_last_chance);
}

static void breaker_result(struct exporter *e, enum export_sink s, bool ok, const char *why)
{
    struct breaker *b = &e->sink[s].breaker;

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

/* Adds what became of documents of batch b (NULL: of no batch) to the
 * stats.  Documents with an outcome are no longer the batch's to count as
 * abandoned should the stop give up on the driver. */
static void add_result(struct exporter *e, enum export_sink s, const struct sink_result *res,
                       struct export_batch *b)
{
    uint64_t outcome = res->sent + res->failed + res->skipped;

    if (outcome + res->unprocessed + res->rejected_spans == 0)
        return;
    pthread_mutex_lock(&e->lock);
    if (b != NULL) {
        uint64_t open = b->units - b->accounted;
        uint64_t n = outcome < open ? outcome : open;
        b->accounted += n;
        e->sending_docs -= n;
    }
    e->stats.sink[s].sent += res->sent;
    e->stats.sink[s].failed += res->failed;
    e->stats.sink[s].skipped += res->skipped;
    e->stats.unprocessed += res->unprocessed;
    e->stats.rejected_spans += res->rejected_spans;
    pthread_mutex_unlock(&e->lock);
}

/* Moves requests a sink produced for batch b onto its pending list. */
static void enqueue(struct sink_slot *slot, struct export_batch *b, struct sink_list *made)
{
    struct sink_request *r;

    while ((r = sink_list_pop(made)) != NULL) {
        r->batch = b;
        r->attempts = 0;
        r->not_before_ns = 0;
        sink_list_push(&slot->pending, r);
        slot->npending++;
        b->outstanding++;
    }
}

/* A request is over (delivered, refused or given up on). */
static void request_done(struct sink_slot *slot, struct sink_request *req)
{
    struct export_batch *b = req->batch;

    b->outstanding--;
    slot->ops->free_request(slot->state, req);
}

/* Gives up on every request of the sink not started yet, counting its
 * documents as failed (or skipped). */
static void drop_pending(struct exporter *e, enum export_sink s, bool skipped)
{
    struct sink_slot *slot = &e->sink[s];
    struct sink_request *r;

    while ((r = sink_list_pop(&slot->pending)) != NULL) {
        struct sink_result res = {0};
        slot->npending--;
        if (skipped)
            res.skipped = r->units;
        else
            res.failed = r->units;
        add_result(e, s, &res, r->batch);
        request_done(slot, r);
    }
}

static void count_locked_add(struct exporter *e, uint64_t *field, uint64_t n)
{
    pthread_mutex_lock(&e->lock);
    *field += n;
    pthread_mutex_unlock(&e->lock);
}

/* The outcome of one attempt of req: r (0 or a transport error) and the
 * answer. */
static void request_finished(struct exporter *e, enum export_sink s, struct sink_request *req, int r,
                             struct http_client_response *resp, const char *detail)
{
    struct sink_slot *slot = &e->sink[s];
    struct sink_result res = {0};
    char why[512];
    bool retry;

    if (r == 0 && resp->status >= 200 && resp->status < 300) {
        struct sink_list more = {0};
        if (slot->ops->answered != NULL)
            slot->ops->answered(slot->state, req, resp, &more, &res);
        else
            res.sent += req->units;
        http_client_response_clean_up(resp);
        add_result(e, s, &res, req->batch);
        breaker_result(e, s, true, NULL);
        enqueue(slot, req->batch, &more);
        request_done(slot, req);
        return;
    }
    if (r < 0) {
        snprintf(why, sizeof(why), "%s", detail[0] != '\0' ? detail : "transport error");
        log_debug("%s export request failed: %s", sink_names[s], why);
        retry = true;
    } else {
        refusal_describe(resp->status, resp->captured, resp->body, resp->body_len,
                         s == EXPORT_SINK_XRAY ? "xray:PutTraceSegments" : NULL, why, sizeof(why));
        retry = resp->status == 429 || resp->status >= 500;
        http_client_response_clean_up(resp);
    }
    if (retry && req->attempts < EXPORT_MAX_ATTEMPTS) {
        long delay_ms = (long)EXPORT_RETRY_DELAY_MS * req->attempts;
        if (request_budget_ms(e) > delay_ms) {
            req->not_before_ns = clock_mono_ns() + (int64_t)delay_ms * 1000000;
            count_locked_add(e, &e->stats.sink[s].retries, 1);
            sink_list_push(&slot->pending, req);
            slot->npending++;
            return;
        }
    }
    res.failed = req->units;
    add_result(e, s, &res, req->batch);
    request_done(slot, req);
    pthread_mutex_lock(&e->lock);
    snprintf(e->last_failure, sizeof(e->last_failure), "%s: %s", sink_names[s], why);
    pthread_mutex_unlock(&e->lock);
    if (r == 0 && !retry && !slot->breaker.refusal_logged) {
        /* A refusal (a 4xx) is not transient: say so at once, with what
         * the endpoint said, not only when the breaker opens. */
        log_warn("%s exporter refused a request (%s); its documents are counted as failed", sink_names[s], why);
        slot->breaker.refusal_logged = true;
    }
    breaker_result(e, s, false, why);
    if (!breaker_allows(e, s))
        drop_pending(e, s, false);
}

/* Starts the sink's pending requests that are due, while it has room. */
static void start_requests(struct exporter *e, enum export_sink s, int64_t now_ns)
{
    struct sink_slot *slot = &e->sink[s];
    struct sink_list keep = {0};
    struct sink_request *req;

    while (http_multi_running(slot->multi) < EXPORT_PARALLEL && (req = sink_list_pop(&slot->pending)) != NULL) {
        struct sink_result res = {0};
        long budget;

        slot->npending--;
        if (req->not_before_ns > now_ns) {
            sink_list_push(&keep, req); /* a retry waiting for its delay */
            continue;
        }
        if (!breaker_allows(e, s)) {
            res.skipped = req->units;
            add_result(e, s, &res, req->batch);
            request_done(slot, req);
            continue;
        }
        budget = request_budget_ms(e);
        if (req->timeout_ms > 0 && (long)req->timeout_ms < budget)
            budget = (long)req->timeout_ms;
        if (budget <= 0) {
            res.failed = req->units;
            add_result(e, s, &res, req->batch);
            request_done(slot, req);
            continue;
        }
        req->http.timeout_ms = budget;
        req->http.connect_timeout_ms = budget < (long)e->cfg.connect_timeout_ms ? budget
                                                                              : (long)e->cfg.connect_timeout_ms;
        req->http.abort_at_ns = NULL; /* the core cuts at the abort time itself */
        req->attempts++;
        count_locked_add(e, &e->stats.sink[s].requests, 1);
        if (http_multi_add(slot->multi, &req->http, req) < 0) {
            struct http_client_response none = {0};
            request_finished(e, s, req, -ENOMEM, &none, "out of memory");
        }
    }
    /* the waiting retries go back first: they are the oldest */
    while ((req = sink_list_pop(&slot->pending)) != NULL)
        sink_list_push(&keep, req);
    slot->pending = keep;
    for (req = keep.head, slot->npending = 0; req != NULL; req = req->next)
        slot->npending++;
}

/* Hands a batch to every sink. */
static void accept_batch(struct exporter *e, struct export_batch *b)
{
    for (unsigned s = 0; s < EXPORT_SINK_COUNT; s++) {
        struct sink_slot *slot = &e->sink[s];
        struct sink_result res = {0};
        struct sink_list made = {0};

        if (slot->ops == NULL)
            continue;
        if (slot->multi != NULL && !breaker_allows(e, s)) {
            res.skipped = slot->ops->units(b->items, b->n);
        } else {
            slot->ops->accept(slot->state, b->items, b->n, &made, &res);
            enqueue(slot, b, &made);
        }
        add_result(e, s, &res, b);
    }
}

static bool sinks_want_more(const struct exporter *e)
{
    for (unsigned s = 0; s < EXPORT_SINK_COUNT; s++)
        if (e->sink[s].npending > 0)
            return false;
    return e->nbatches < EXPORT_MAX_BATCHES;
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

/* No memory for a batch: the item is given up on, counted, and handled. */
static void fail_item(struct exporter *e, struct export_item *it)
{
    for (unsigned s = 0; s < EXPORT_SINK_COUNT; s++) {
        struct sink_result res = {0};
        if (e->sink[s].ops == NULL)
            continue;
        res.failed = e->sink[s].ops->units(&it, 1);
        add_result(e, s, &res, NULL);
    }
    if (it->ticket >= 0 && e->cfg.on_handled != NULL && !atomic_load(&e->abandoned))
        e->cfg.on_handled(&it->ticket, 1, e->cfg.on_handled_ctx);
    item_free(it);
    pthread_mutex_lock(&e->lock);
    e->done_seq++;
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->lock);
}

/* Takes first (already popped, may be NULL) and whatever else is queued as
 * one batch, and hands it to the sinks.  false when nothing was taken. */
static bool take_batch(struct exporter *e, void *first)
{
    struct export_batch *b;
    int kind;
    void *data;

    /* a burst still being submitted is taken whole, at its release */
    if (first == NULL && queue_held(e->q))
        return false;
    b = calloc(1, sizeof(*b));
    if (b == NULL) {
        if (first != NULL)
            fail_item(e, first);
        return false;
    }
    if (first != NULL)
        b->items[b->n++] = first;
    while (b->n < EXPORT_BATCH_ITEMS) {
        int r = queue_pop(e->q, 0, &kind, &data, NULL);
        if (r == -EPIPE)
            e->queue_closed = true;
        if (r < 0)
            break;
        b->items[b->n++] = data;
    }
    if (b->n == 0) {
        free(b);
        return false;
    }
    for (unsigned s = 0; s < EXPORT_SINK_COUNT; s++)
        if (e->sink[s].ops != NULL)
            b->units += e->sink[s].ops->units(b->items, b->n);
    if (e->tail != NULL)
        e->tail->next = b;
    else
        e->head = b;
    e->tail = b;
    e->nbatches++;
    pthread_mutex_lock(&e->lock);
    e->sending_docs += b->units;
    pthread_mutex_unlock(&e->lock);
    accept_batch(e, b);
    return true;
}

/* Retires finished batches, oldest first: reports their tickets and wakes
 * flushes. */
static void retire_batches(struct exporter *e)
{
    while (e->head != NULL && e->head->outstanding == 0) {
        struct export_batch *b = e->head;
        bool abandoned = atomic_load(&e->abandoned);
        int tickets[EXPORT_BATCH_ITEMS];
        size_t nt = 0;

        e->head = b->next;
        if (e->head == NULL)
            e->tail = NULL;
        e->nbatches--;
        /* A stop that gave up on the driver has counted the batch and may
         * be tearing down what on_handled uses (the journal).  The batch's
         * tickets go together (the journal wipes them in one write). */
        for (size_t i = 0; i < b->n; i++) {
            if (b->items[i]->ticket >= 0)
                tickets[nt++] = b->items[i]->ticket;
            item_free(b->items[i]);
        }
        if (!abandoned && nt > 0 && e->cfg.on_handled != NULL)
            e->cfg.on_handled(tickets, nt, e->cfg.on_handled_ctx);
        if (!abandoned) {
            pthread_mutex_lock(&e->lock);
            e->sending_docs -= b->units - b->accounted;
            e->done_seq += b->n;
            pthread_cond_broadcast(&e->cond);
            pthread_mutex_unlock(&e->lock);
        }
        free(b);
    }
}

size_t export_poll_fds(struct exporter *e, struct pollfd *fds, size_t max)
{
    size_t n = 0;

    for (unsigned s = 0; s < EXPORT_SINK_COUNT; s++)
        if (e->sink[s].multi != NULL)
            n += http_multi_fds(e->sink[s].multi, fds + n, max - n);
    return n;
}

static int min_timeout(int a, int b)
{
    if (a < 0)
        return b;
    if (b < 0)
        return a;
    return a < b ? a : b;
}

static int ms_until(int64_t at_ns, int64_t now_ns)
{
    int64_t left = at_ns - now_ns;

    if (left <= 0)
        return 0;
    left = (left + 999999) / 1000000;
    return left > INT32_MAX ? INT32_MAX : (int)left;
}

int export_timeout_ms(struct exporter *e)
{
    int64_t now = clock_mono_ns();
    int64_t abort_at = atomic_load(&e->abort_at_ns);
    int t = -1;

    for (unsigned s = 0; s < EXPORT_SINK_COUNT; s++) {
        struct sink_slot *slot = &e->sink[s];
        if (slot->multi == NULL)
            continue;
        t = min_timeout(t, http_multi_timeout_ms(slot->multi));
        if (http_multi_running(slot->multi) < EXPORT_PARALLEL)
            for (const struct sink_request *r = slot->pending.head; r != NULL; r = r->next)
                t = min_timeout(t, ms_until(r->not_before_ns, now));
        if (abort_at > 0 && (http_multi_running(slot->multi) > 0 || slot->npending > 0))
            t = min_timeout(t, ms_until(abort_at, now));
    }
    return t;
}

bool export_busy(const struct exporter *e)
{
    return e->nbatches > 0;
}

void export_perform(struct exporter *e, const struct pollfd *fds, size_t n)
{
    int64_t abort_at = atomic_load(&e->abort_at_ns);
    bool cut = abort_at > 0 && clock_mono_ns() >= abort_at;

    for (unsigned s = 0; s < EXPORT_SINK_COUNT; s++) {
        struct sink_slot *slot = &e->sink[s];
        void *tag;
        int r;
        struct http_client_response resp;
        char detail[128];

        if (slot->multi == NULL)
            continue;
        http_multi_perform(slot->multi, fds, n);
        if (cut)
            http_multi_cut_all(slot->multi);
        detail[0] = '\0';
        while (http_multi_next_done(slot->multi, &tag, &r, &resp, detail, sizeof(detail))) {
            request_finished(e, s, tag, r, &resp, detail);
            detail[0] = '\0';
        }
        if (cut)
            drop_pending(e, s, false);
    }
    for (;;) {
        int64_t now = clock_mono_ns();
        for (unsigned s = 0; s < EXPORT_SINK_COUNT; s++)
            if (e->sink[s].multi != NULL)
                start_requests(e, s, now);
        /* retired batches make room for more, taken now: a driver that
         * sees export_busy false after this knows the queue was empty */
        retire_batches(e);
        if (!sinks_want_more(e) || e->queue_closed || !take_batch(e, NULL))
            break;
    }
}

/* --- the own thread ------------------------------------------------------ */

static void wake_thread(struct exporter *e)
{
    uint64_t one = 1;

    if (e->wake_fd >= 0)
        (void)!write(e->wake_fd, &one, sizeof(one));
}

static void *export_main(void *arg)
{
    struct exporter *e = arg;
    struct pollfd fds[EXPORT_MAX_FDS];
    size_t nfds = 0;
    int timeout_ms;

    for (;;) {
        export_perform(e, fds, nfds);
        nfds = 0;
        if (atomic_load(&e->abandoned))
            break;
        if (!export_busy(e)) {
            int kind;
            void *data;
            /* Nothing in flight: wait for the queue (a push wakes us). */
            atomic_store(&e->polling, false);
            if (e->queue_closed || queue_pop(e->q, -1, &kind, &data, NULL) < 0)
                break; /* closed and empty */
            atomic_store(&e->polling, true);
            (void)take_batch(e, data);
            continue;
        }
        /* In flight: wait for libcurl, a due timer, or wake_thread. */
        nfds = export_poll_fds(e, fds, EXPORT_MAX_FDS - 1);
        timeout_ms = export_timeout_ms(e);
        if (e->wake_fd < 0 && (timeout_ms < 0 || timeout_ms > EXPORT_POLL_NO_WAKE_MS))
            timeout_ms = EXPORT_POLL_NO_WAKE_MS;
        fds[nfds] = (struct pollfd){.fd = e->wake_fd, .events = POLLIN}; /* fd -1: ignored */
        if (poll(fds, nfds + 1, timeout_ms) > 0 && fds[nfds].revents != 0) {
            uint64_t v;
            (void)!read(e->wake_fd, &v, sizeof(v));
        }
    }
    pthread_mutex_lock(&e->lock);
    e->finished = true;
    /* Read under the lock the stop sets it under: exactly one of us frees e
     * (the stop when it saw finished, else this detached thread). */
    bool abandoned = atomic_load(&e->abandoned);
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->lock);
    if (abandoned)
        export_destroy(e);
    return NULL;
}

/* --- submit (pipeline thread) ------------------------------------------------ */

static void count(struct exporter *e, uint64_t *field, uint64_t n)
{
    pthread_mutex_lock(&e->lock);
    *field += n;
    pthread_mutex_unlock(&e->lock);
}

/* The segment as OTLP encodes it: unless otlp_span_new, the invocation
 * span takes the Parent the runtime sees as its span id (and has no parent):
 * platform.start's tracing.spanId when Lambda rewrote it (Active), else the
 * trace header's,
 * so the spans the function's own OpenTelemetry SDK parents to that Parent
 * hang under it; its child spans follow.  X-Ray documents are unchanged. */
static const struct trace_segment *otlp_view(struct exporter *e, const struct trace_segment *seg)
{
    const char *id = seg->runtime_parent_id[0] != '\0' ? seg->runtime_parent_id : seg->parent_id;

    if (e->cfg.otlp_span_new || id[0] == '\0' || e->otlp_seg == NULL)
        return seg;
    memcpy(e->otlp_seg, seg, sizeof(*seg));
    memcpy(e->otlp_seg->id, id, sizeof(e->otlp_seg->id));
    e->otlp_seg->parent_id[0] = '\0';
    return e->otlp_seg;
}

int export_submit(struct exporter *e, const struct trace_segment *seg,
                  const struct trace_resource *res, bool final, int ticket)
{
    struct export_item *it;
    size_t max_doc = XRAY_DOC_MAX_BYTES;
    bool xray = (e->cfg.sinks & ~(1u << EXPORT_SINK_OTLP | 1u << EXPORT_SINK_XRAY_OTLP)) != 0;
    size_t ndocs = 0;
    size_t bytes;
    int r;

    /* Documents that fit a datagram fit PutTraceSegments too. */
    if (has_sink(e, EXPORT_SINK_DAEMON) && XRAY_DAEMON_DOC_MAX_BYTES < max_doc)
        max_doc = XRAY_DAEMON_DOC_MAX_BYTES;
    if (xray) {
        r = xray_encode_split(seg, max_doc, &e->docs, NULL);
        if (r < 0) {
            count(e, &e->stats.dropped_encode, 1);
            return r;
        }
        ndocs = e->docs.count;
    }
    it = calloc(1, sizeof(*it) + ndocs * sizeof(it->doc[0]));
    if (it == NULL) {
        count(e, &e->stats.dropped_full, 1);
        return -ENOMEM;
    }
    it->final = final;
    it->ticket = ticket;
    if (xray) {
        it->xray = malloc(buf_len(&e->docs.text) + 1);
        if (it->xray == NULL) {
            r = -ENOMEM;
            goto fail;
        }
        memcpy(it->xray, buf_data(&e->docs.text), buf_len(&e->docs.text));
        it->xray[buf_len(&e->docs.text)] = '\0';
        it->ndocs = ndocs;
        for (size_t d = 0; d < ndocs; d++)
            it->doc[d] = (struct export_doc){(uint32_t)e->docs.off[d], (uint32_t)e->docs.len[d]};
    }
    /* OTLP has no in-progress spans; only final versions go there. */
    if ((has_sink(e, EXPORT_SINK_OTLP) || has_sink(e, EXPORT_SINK_XRAY_OTLP)) && final) {
        buf_reset(&e->otlp_buf);
        seg = otlp_view(e, seg);
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
    bytes = sizeof(*it) + ndocs * sizeof(it->doc[0]) + (it->xray != NULL ? buf_len(&e->docs.text) : 0) +
            it->otlp_len;
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

static bool file_readable(const char *path, void *ctx)
{
    (void)ctx;
    return access(path, R_OK) == 0;
}

/* Why config_choose_ca_file passed over path (max_len: the longest path
 * it takes, NUL included): access(2)'s errno, as text.  Main thread. */
static const char *ca_file_problem(const char *path, size_t max_len)
{
    if (strlen(path) >= max_len)
        return "path too long";
    if (access(path, R_OK) == 0)
        return "readable now"; /* it changed between the two looks */
    return strerror(errno);
}

static bool is_https(const char *url)
{
    return strncasecmp(url, "https://", 8) == 0;
}

/* Chooses the CA bundle once, before the thread starts, when an enabled
 * sink speaks HTTPS.  The choice is fixed for the process: every request
 * then names the same file, so libcurl keeps reusing the open connections
 * (a new TLS connection parses the whole bundle again, about 8 ms with
 * mbedTLS).  Main thread. */
static void choose_ca_file(struct exporter *e)
{
    char chosen[sizeof(e->cfg.ca_file)];
    bool https = (has_sink(e, EXPORT_SINK_XRAY) && is_https(e->cfg.xray_endpoint)) ||
                 (has_sink(e, EXPORT_SINK_OTLP) && is_https(e->cfg.otlp_endpoint)) ||
                 (has_sink(e, EXPORT_SINK_XRAY_OTLP) && is_https(e->cfg.xray_otlp_endpoint));
    int r;

    if (!https)
        return;
    r = config_choose_ca_file(e->cfg.ca_file, file_readable, NULL, chosen, sizeof(chosen));
    if (r < 0)
        log_warn("no readable CA bundle (LAMBDA_TRACER_CA_FILE: %s; %s: %s; %s: %s); HTTPS exports will fail "
                 "certificate checks",
                 e->cfg.ca_file[0] != '\0' ? ca_file_problem(e->cfg.ca_file, sizeof(chosen)) : "unset",
                 CONFIG_CA_FILE_AMAZON_LINUX, ca_file_problem(CONFIG_CA_FILE_AMAZON_LINUX, sizeof(chosen)),
                 CONFIG_CA_FILE_DEBIAN, ca_file_problem(CONFIG_CA_FILE_DEBIAN, sizeof(chosen)));
    else if (e->cfg.ca_file[0] != '\0' && strcmp(chosen, e->cfg.ca_file) != 0)
        log_warn("setting LAMBDA_TRACER_CA_FILE (%s) is not readable (%s); using %s", e->cfg.ca_file,
                 ca_file_problem(e->cfg.ca_file, sizeof(chosen)), chosen);
    else
        log_debug("HTTPS CA bundle: %s", chosen);
    if (r == 0)
        snprintf(e->cfg.ca_file, sizeof(e->cfg.ca_file), "%s", chosen);
}

static void export_free(struct exporter *e)
{
    if (e == NULL)
        return;
    /* batches still taken (a driven exporter destroyed mid-flight) */
    for (unsigned s = 0; s < EXPORT_SINK_COUNT; s++) {
        struct sink_slot *slot = &e->sink[s];
        struct sink_request *r;
        if (slot->multi != NULL)
            http_multi_cut_all(slot->multi);
        while (slot->multi != NULL) {
            void *tag;
            int rr;
            struct http_client_response resp;
            if (!http_multi_next_done(slot->multi, &tag, &rr, &resp, NULL, 0))
                break;
            if (rr == 0)
                http_client_response_clean_up(&resp);
            slot->ops->free_request(slot->state, tag);
        }
        while ((r = sink_list_pop(&slot->pending)) != NULL)
            slot->ops->free_request(slot->state, r);
        http_multi_destroy(slot->multi);
        if (slot->ops != NULL)
            slot->ops->close(slot->state);
    }
    while (e->head != NULL) {
        struct export_batch *b = e->head;
        e->head = b->next;
        for (size_t i = 0; i < b->n; i++)
            item_free(b->items[i]);
        free(b);
    }
    queue_destroy(e->q, free_queued);
    if (e->wake_fd >= 0)
        close(e->wake_fd);
    xray_docs_free(&e->docs);
    buf_free(&e->otlp_buf);
    free(e->otlp_seg);
    free(e);
}

/* Opens the enabled sinks.  0, -EINVAL (none left), -ENOMEM. */
static int open_sinks(struct exporter *e)
{
    e->env = (struct sink_env){.cfg = &e->cfg, .abort_at_ns = &e->abort_at_ns, .out_fd = -1};
    for (unsigned s = 0; s < EXPORT_SINK_COUNT; s++) {
        struct sink_slot *slot = &e->sink[s];
        int r;
        if (!has_sink(e, s))
            continue;
        r = sink_table[s]->open(&e->env, &slot->state);
        if (r == -EINVAL) {
            /* One bad setting costs its own sink, not the others. */
            char why[200];
            if (config_otlp_headers_problem(e->cfg.otlp_headers, why, sizeof(why)) == 0)
                snprintf(why, sizeof(why), "refused by the OTLP exporter");
            log_warn("the OTLP headers are invalid (%s); leaving the OTLP exporter out", why);
            e->cfg.sinks &= ~(1u << s);
            continue;
        }
        if (r < 0)
            return r;
        slot->ops = sink_table[s];
        if (slot->ops->free_request != NULL) {
            slot->multi = http_multi_new(EXPORT_PARALLEL);
            if (slot->multi == NULL)
                return -ENOMEM;
        }
    }
    return e->cfg.sinks != 0 ? 0 : -EINVAL;
}

int export_new(const struct export_config *cfg, struct exporter **ret)
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
    e->wake_fd = -1;
    xray_docs_init(&e->docs);
    buf_init(&e->otlp_buf, EXPORT_OTLP_MAX_BODY);
    if (!cfg->otlp_span_new &&
        (cfg->sinks & (1u << EXPORT_SINK_OTLP | 1u << EXPORT_SINK_XRAY_OTLP)) != 0) {
        e->otlp_seg = malloc(sizeof(*e->otlp_seg));
        if (e->otlp_seg == NULL) {
            r = -ENOMEM;
            goto fail;
        }
    }
    choose_ca_file(e);
    r = open_sinks(e);
    if (r < 0)
        goto fail;
    e->q = queue_new(cfg->queue_max_bytes);
    if (e->q == NULL) {
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
    *ret = e;
    return 0;

fail:
    export_free(e);
    return r;
}

void export_destroy(struct exporter *e)
{
    if (e == NULL)
        return;
    pthread_cond_destroy(&e->cond);
    pthread_mutex_destroy(&e->lock);
    export_free(e);
}

int export_start(const struct export_config *cfg, struct exporter **ret)
{
    struct exporter *e = NULL;
    int r = export_new(cfg, &e);

    if (r < 0)
        return r;
    /* Only a thread that polls requests needs waking there (one
     * descriptor: the sandbox may have few).  Without it the poll is
     * capped at EXPORT_POLL_NO_WAKE_MS instead. */
    if (e->sink[EXPORT_SINK_XRAY].multi != NULL || e->sink[EXPORT_SINK_OTLP].multi != NULL ||
        e->sink[EXPORT_SINK_XRAY_OTLP].multi != NULL)
        e->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    r = -pthread_create(&e->thread, NULL, export_main, e);
    if (r < 0)
        goto fail;
    e->threaded = true;
    *ret = e;
    return 0;

fail:
    export_destroy(e);
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
    /* A thread busy with requests polls, not the queue, and needs its
     * descriptor written; one woken from its wait on the queue takes the
     * burst at once (it set polling only after that wait, so testing the
     * flag alone would write the descriptor for nothing: one write, and a
     * poll and a read on the exporter thread, per telemetry batch). */
    if (!queue_release(e->q) && atomic_load(&e->polling))
        wake_thread(e);
}

/* From now on nothing the driver does outlives deadline_ns: requests in
 * flight are cut then, and the thread is woken to notice at once. */
static void set_abort_at(struct exporter *e, int64_t deadline_ns)
{
    int64_t at = deadline_ns > 0 ? deadline_ns : 1;
    int64_t old = atomic_load(&e->abort_at_ns);

    if (old == 0 || at < old)
        atomic_store(&e->abort_at_ns, at);
    wake_thread(e);
}

bool export_flush(struct exporter *e, int64_t deadline_ns, bool last_chance)
{
    struct timespec ts = {
        .tv_sec = (time_t)(deadline_ns / 1000000000),
        .tv_nsec = (long)(deadline_ns % 1000000000),
    };
    bool done;

    queue_wake(e->q); /* a burst being submitted is not held back from a flush */
    wake_thread(e);
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
        char why[sizeof(e->last_failure)];
        pthread_mutex_lock(&e->lock);
        snprintf(why, sizeof(why), "%s", e->last_failure[0] != '\0' ? e->last_failure : "no answer recorded");
        pthread_mutex_unlock(&e->lock);
        if (done)
            log_warn("export before /next failed (%s); exporting in the background for the next %d s", why,
                     EXPORT_EAGER_OFF_MS / 1000);
        else
            log_warn("export before /next did not finish within its budget (last failure: %s); "
                     "exporting in the background for the next %d s",
                     why, EXPORT_EAGER_OFF_MS / 1000);
    }
    return done;
}

void export_stats_now(struct exporter *e, struct export_stats *ret)
{
    struct queue_stats q;

    queue_get_stats(e->q, &q);
    pthread_mutex_lock(&e->lock);
    *ret = e->stats;
    ret->unsent_at_stop += q.items + e->sending_docs;
    pthread_mutex_unlock(&e->lock);
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
    /* Sending ends (requests in flight are cut) a little before the
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
    wake_thread(e);
    pthread_mutex_lock(&e->lock);
    e->stats.unsent_at_stop += left;
    /* The thread ends within moments of the abort time; should it be stuck
     * where nothing cuts it, it is not waited for past the deadline. */
    while (!e->finished) {
        if (pthread_cond_timedwait(&e->cond, &e->lock, &ts) == ETIMEDOUT)
            break;
    }
    finished = e->finished;
    pthread_t thread = e->thread;
    if (!finished) {
        atomic_store(&e->abandoned, true);
        e->stats.abandoned += e->sending_docs;
    }
    if (ret != NULL)
        *ret = e->stats;
    if (!finished) {
        /* The process normally exits now and the thread goes with it; if
         * it ends first it frees e itself (never touched here again). */
        pthread_detach(thread); /* nobody joins it */
        pthread_mutex_unlock(&e->lock);
        return false;
    }
    pthread_mutex_unlock(&e->lock);
    pthread_join(e->thread, NULL);
    export_destroy(e);
    return true;
}
