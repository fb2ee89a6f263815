/* Unit tests for export.c: the PutTraceSegments answer, and the exporter
 * against local backends that never answer (the SHUTDOWN deadline). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#include "clock.h"
#include "export.h"
#include "fail_alloc.h"
#include "xray_encode.h"
#include "trace_fixture.h"

static const char *const doc_texts[] = {
    "{\"trace_id\":\"1-5759e988-bd862e3fe1be46a994272793\",\"id\":\"6226467e3f845502\"}",
    "{\"trace_id\":\"1-5759e988-bd862e3fe1be46a994272793\",\"id\":\"53995c3f42cd8ad8\"}",
    "{\"trace_id\":\"1-5759e988-bd862e3fe1be46a994272793\",\"id\":\"0000000000000001\"}",
};

static size_t docs_init(struct xray_doc *docs)
{
    for (size_t i = 0; i < 3; i++)
        docs[i] = (struct xray_doc){doc_texts[i], strlen(doc_texts[i])};
    return 3;
}

static size_t parse(const char *body, const struct xray_doc *docs, size_t n, bool *refused)
{
    return export_xray_unprocessed(body, strlen(body), docs, n, refused);
}

static void test_unprocessed_names_documents_by_id(void **state)
{
    struct xray_doc docs[3];
    bool refused[3];
    size_t n = docs_init(docs);
    (void)state;
    /* The reference's example answer, plus an id we never sent. */
    /* Only what names a document we sent counts. */
    assert_int_equal(parse("{\"UnprocessedTraceSegments\":[{\"Id\":\"6226467e3f845502\",\"ErrorCode\":"
                           "\"InvalidTraceId\",\"Message\":\"Invalid segment.\"},{\"Id\":\"ffffffffffffffff\"}]}",
                           docs, n, refused),
                     1);
    assert_true(refused[0]);
    assert_false(refused[1]);
    assert_false(refused[2]);
    assert_int_equal(parse("{\"UnprocessedTraceSegments\":[]}", docs, n, refused), 0);
    assert_false(refused[0]);
    assert_int_equal(parse("not json", docs, n, refused), 0);
    assert_int_equal(parse("{\"UnprocessedTraceSegments\":[{\"Id\":\"\"},{\"Id\":7},{}]}", docs, n, refused), 0);
    assert_false(refused[0] || refused[1] || refused[2]);
    assert_int_equal(export_xray_unprocessed(NULL, 0, docs, n, refused), 0);
}

/* A document listed many times is refused once: the retry array holds one
 * entry per document sent.  Listing one id 60 times over 50 documents
 * overflowed it before. */
static void test_unprocessed_duplicates_refuse_each_document_once(void **state)
{
    struct xray_doc docs[XRAY_PUT_MAX_DOCS];
    bool refused[XRAY_PUT_MAX_DOCS];
    char body[4096] = "{\"UnprocessedTraceSegments\":[";
    size_t count = 0;
    (void)state;
    for (size_t i = 0; i < XRAY_PUT_MAX_DOCS; i++)
        docs[i] = (struct xray_doc){doc_texts[i % 2], strlen(doc_texts[i % 2])};
    for (int i = 0; i < 60; i++)
        snprintf(body + strlen(body), sizeof(body) - strlen(body), "%s{\"Id\":\"6226467e3f845502\"}",
                 i ? "," : "");
    snprintf(body + strlen(body), sizeof(body) - strlen(body), "]}");
    /* 60 entries name 25 of the documents sent: 25 counted, not 60. */
    assert_int_equal(parse(body, docs, XRAY_PUT_MAX_DOCS, refused), XRAY_PUT_MAX_DOCS / 2);
    for (size_t i = 0; i < XRAY_PUT_MAX_DOCS; i++) {
        assert_int_equal(refused[i], i % 2 == 0); /* every document with that id, once */
        count += refused[i];
    }
    assert_int_equal(count, XRAY_PUT_MAX_DOCS / 2);
}

static void test_unprocessed_out_of_memory(void **state)
{
    struct xray_doc docs[3];
    bool refused[3];
    size_t n = docs_init(docs);
    const char *body = "{\"UnprocessedTraceSegments\":[{\"Id\":\"53995c3f42cd8ad8\"}]}";
    (void)state;
    fail_alloc_hook_cjson();
    for (unsigned long k = 1;; k++) {
        fail_alloc_reset();
        fail_alloc_fail_at(k);
        size_t listed = parse(body, docs, n, refused);
        assert_int_equal(fail_alloc_live(), 0);
        if (listed == 1) {
            assert_true(refused[1]);
            break;
        }
        assert_int_equal(listed, 0); /* unparsable for want of memory: nothing refused */
        assert_false(refused[0] || refused[1] || refused[2]);
        assert_true(k < 100);
    }
    fail_alloc_reset();
}

/* An answer listing thousands of ids, none or few of them ours: the count
 * never exceeds the documents sent (an answer listing 5,600 ids counted
 * 5,600 for 7 documents). */
static void test_unprocessed_counts_only_documents_sent(void **state)
{
    static char body[300000];
    struct xray_doc docs[3];
    bool refused[3];
    size_t n = docs_init(docs);
    size_t len;
    (void)state;
    len = (size_t)snprintf(body, sizeof(body), "{\"UnprocessedTraceSegments\":[");
    for (int i = 0; i < 5600; i++)
        len += (size_t)snprintf(body + len, sizeof(body) - len, "%s{\"Id\":\"%016x\"}", i ? "," : "",
                                (unsigned)(0x10000 + i));
    len += (size_t)snprintf(body + len, sizeof(body) - len, "]}");
    assert_true(len < sizeof(body));
    assert_int_equal(export_xray_unprocessed(body, len, docs, n, refused), 0);
    assert_false(refused[0] || refused[1] || refused[2]);
    /* ... plus every document of ours, each listed twice */
    len -= 2;
    for (int i = 0; i < 6; i++)
        len += (size_t)snprintf(body + len, sizeof(body) - len, ",{\"Id\":\"%s\"}",
                                i % 3 == 0 ? "6226467e3f845502" : i % 3 == 1 ? "53995c3f42cd8ad8" : "0000000000000001");
    len += (size_t)snprintf(body + len, sizeof(body) - len, "]}");
    assert_int_equal(export_xray_unprocessed(body, len, docs, n, refused), 3);
    assert_true(refused[0] && refused[1] && refused[2]);
    /* a document is only named by its whole id */
    assert_int_equal(parse("{\"UnprocessedTraceSegments\":[{\"Id\":\"6226467e\"},{\"Id\":\"6226467e3f845502\\\"\"}]}",
                           docs, n, refused),
                     0);
}

/* --- the exporter against backends that accept and never answer ---------- */

/* A TCP server on 127.0.0.1 that accepts and reads, and either never
 * answers (black hole) or trickles one byte of an answer at a time. */
struct hole {
    int fd;
    unsigned short port;
    bool trickle;
    atomic_int accepted;
    atomic_bool stop;
    pthread_t thread;
};

static void *hole_main(void *arg)
{
    struct hole *h = arg;
    int conns[16];
    int n = 0;
    const char *answer = "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n";
    size_t sent = 0;

    while (!atomic_load(&h->stop)) {
        struct pollfd p = {.fd = h->fd, .events = POLLIN};
        if (poll(&p, 1, 20) == 1 && n < 16) {
            int c = accept(h->fd, NULL, NULL);
            if (c >= 0) {
                conns[n++] = c;
                atomic_fetch_add(&h->accepted, 1);
            }
        }
        for (int i = 0; i < n; i++) {
            char scratch[4096];
            (void)recv(conns[i], scratch, sizeof(scratch), MSG_DONTWAIT);
            if (h->trickle) {
                /* the head, then body bytes: one byte per 20 ms, forever */
                char c = sent < strlen(answer) ? answer[sent] : 'x';
                if (send(conns[i], &c, 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1)
                    sent++;
            }
        }
    }
    for (int i = 0; i < n; i++)
        close(conns[i]);
    return NULL;
}

static void hole_start(struct hole *h, bool trickle)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);

    memset(h, 0, sizeof(*h));
    h->trickle = trickle;
    h->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(h->fd >= 0);
    assert_int_equal(bind(h->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(h->fd, 16), 0);
    assert_int_equal(getsockname(h->fd, (struct sockaddr *)&a, &alen), 0);
    h->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&h->thread, NULL, hole_main, h), 0);
}

static void hole_stop(struct hole *h)
{
    atomic_store(&h->stop, true);
    pthread_join(h->thread, NULL);
    close(h->fd);
}

static void one_segment(struct trace_segment *s, struct trace_resource *res)
{
    memset(s, 0, sizeof(*s));
    memset(res, 0, sizeof(*res));
    SET(s->trace_id, "1-5759e988-bd862e3fe1be46a994272793");
    SET(s->id, "6226467e3f845502");
    SET(s->name, "f");
    SET(s->origin, "AWS::Lambda::Function");
    SET(s->request_id, "r1");
    s->sampled = true;
    s->start_us = 1700000000000000;
    s->end_us = 1700000000100000;
    SET(res->service_name, "f");
    SET(res->function_name, "f");
    SET(res->region, "us-east-1");
}

/* Submits one segment to an exporter whose only sink is a backend that
 * takes the request and never finishes answering, waits until the request
 * is in flight, then stops with a deadline far shorter than the request
 * timeout: the stop returns by the deadline and the segment is counted as
 * not delivered. */
static void stop_cuts_in_flight(enum export_sink sink, bool trickle, uint32_t timeout_ms, int64_t budget_ms)
{
    struct hole h;
    struct export_config cfg = {
        .sinks = 1u << sink,
        .queue_max_bytes = 1 << 20,
        .request_timeout_ms = timeout_ms,
        .connect_timeout_ms = 500,
        /* valgrind needs longer than the default 50 ms to end a cut request */
        .stop_join_ms = RUNNING_ON_VALGRIND ? 400 : 0,
    };
    struct exporter *e = NULL;
    struct trace_segment seg;
    struct trace_resource res;
    struct export_stats st;
    int64_t t0, took_ms;
    /* scheduling slack for a loaded machine; valgrind runs the teardown
     * (curl, TLS-free) some 20 times slower.  Either stays well under the
     * smallest request timeout tried (1,000 ms). */
    int64_t slack_ms = RUNNING_ON_VALGRIND ? 600 : 150;

    /* valgrind: a budget the thread can end in once cut (stop_join_ms) */
    if (RUNNING_ON_VALGRIND && budget_ms < 500)
        budget_ms = 500;
    hole_start(&h, trickle);
    snprintf(cfg.otlp_endpoint, sizeof(cfg.otlp_endpoint), "http://127.0.0.1:%u/v1/traces", h.port);
    snprintf(cfg.xray_endpoint, sizeof(cfg.xray_endpoint), "http://127.0.0.1:%u", h.port);
    snprintf(cfg.region, sizeof(cfg.region), "us-east-1");
    setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
    unsetenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    one_segment(&seg, &res);
    assert_int_equal(export_start(&cfg, &e), 0);
    assert_int_equal(export_submit(e, &seg, &res, true, -1), 0);
    export_release(e);
    /* in flight: the backend has the connection (bounded wait: 10 s) */
    for (int i = 0; i < 1000 && atomic_load(&h.accepted) == 0; i++)
        clock_sleep_ms(10);
    assert_int_equal(atomic_load(&h.accepted), 1);
    clock_sleep_ms(50);
    t0 = clock_mono_ms();
    export_stop(e, clock_mono_ns() + budget_ms * 1000000, &st);
    took_ms = clock_mono_ms() - t0;
    if (took_ms > budget_ms + slack_ms)
        print_message("stop took %lld ms for a %lld ms deadline\n", (long long)took_ms, (long long)budget_ms);
    hole_stop(&h);
    /* by the deadline (plus scheduling slack for a loaded machine and
     * valgrind), never the request's own timeout */
    assert_true(took_ms <= budget_ms + slack_ms);
    assert_int_equal(st.submitted, 1);
    assert_int_equal(st.sink[sink].sent, 0);
    /* cut and counted as failed by the sink; or, when the thread was not
     * scheduled before the deadline (valgrind, a loaded machine), counted
     * as abandoned: counted once either way */
    assert_int_equal(st.sink[sink].failed + st.abandoned, 1);
}

static void test_stop_cuts_a_request_to_a_black_hole(void **state)
{
    (void)state;
    stop_cuts_in_flight(EXPORT_SINK_OTLP, false, 30000, 200);
    stop_cuts_in_flight(EXPORT_SINK_XRAY, false, 5000, 100);
    stop_cuts_in_flight(EXPORT_SINK_OTLP, false, 1000, 60);
}

static void test_stop_cuts_a_trickling_answer(void **state)
{
    (void)state;
    stop_cuts_in_flight(EXPORT_SINK_OTLP, true, 30000, 300);
    stop_cuts_in_flight(EXPORT_SINK_XRAY, true, 30000, 150);
}

/* The OTLP sink's own timeout (OTEL_EXPORTER_OTLP_TIMEOUT) bounds each of
 * its requests, not the exporter's longer one: a backend that never answers
 * costs the OTLP timeout per attempt, and the flush ends long before the
 * 30 s request timeout (or its own 20 s deadline) would. */
static void test_otlp_timeout_bounds_each_request(void **state)
{
    struct hole h;
    struct export_config cfg = {
        .sinks = 1u << EXPORT_SINK_OTLP,
        .queue_max_bytes = 1 << 20,
        .request_timeout_ms = 30000,
        .connect_timeout_ms = 500,
        .otlp_timeout_ms = 200,
    };
    struct exporter *e = NULL;
    struct trace_segment seg;
    struct trace_resource res;
    struct export_stats st;
    int64_t t0, took_ms;

    (void)state;
    hole_start(&h, false);
    snprintf(cfg.otlp_endpoint, sizeof(cfg.otlp_endpoint), "http://127.0.0.1:%u/v1/traces", h.port);
    one_segment(&seg, &res);
    assert_int_equal(export_start(&cfg, &e), 0);
    assert_int_equal(export_submit(e, &seg, &res, true, -1), 0);
    export_release(e);
    t0 = clock_mono_ms();
    assert_true(export_flush(e, clock_mono_ns() + 20000 * 1000000LL, false));
    took_ms = clock_mono_ms() - t0;
    export_stop(e, clock_mono_ns() + 2000 * 1000000LL, &st);
    hole_stop(&h);
    /* three attempts of 200 ms plus retry delays; generous for a loaded
     * machine and valgrind, far under the 20 s the old code took */
    assert_true(took_ms < 10000);
    assert_true(took_ms >= 3 * 200);
    assert_int_equal(st.sink[EXPORT_SINK_OTLP].failed, 1);
    assert_int_equal(st.sink[EXPORT_SINK_OTLP].requests, 3);
}

/* --- the exporter against a scripted backend --------------------------------- */

enum script_mode { ANSWER_OK, ANSWER_STATUS, ANSWER_GARBAGE, ANSWER_CUT, ANSWER_OVERSIZE };

/* An HTTP/1.1 server on 127.0.0.1, one thread per connection: each request
 * is read whole, then answered after delay_ms: with a status for the first
 * `bad` requests (mode), then 200 and an empty UnprocessedTraceSegments. */
struct script {
    int fd;
    unsigned short port;
    enum script_mode mode;
    int status;
    atomic_int bad;
    int delay_ms;
    atomic_int requests;
    atomic_int in_flight;
    atomic_int peak;
    atomic_bool stop;
    pthread_t thread;
};

struct script_conn {
    struct script *s;
    int fd;
};

static void send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void *script_conn_main(void *arg)
{
    struct script_conn *c = arg;
    struct script *s = c->s;
    char *buf = malloc(1 << 20);
    size_t have = 0;

    assert_non_null(buf);
    for (;;) {
        char *end;
        size_t head, body_len = 0;
        const char *cl;
        ssize_t r;

        while ((end = memmem(buf, have, "\r\n\r\n", 4)) == NULL) {
            r = recv(c->fd, buf + have, (1 << 20) - have, 0);
            if (r <= 0)
                goto out;
            have += (size_t)r;
        }
        head = (size_t)(end - buf) + 4;
        cl = strcasestr(buf, "Content-Length:");
        if (cl != NULL && cl < end)
            body_len = strtoul(cl + 15, NULL, 10);
        while (have < head + body_len) {
            r = recv(c->fd, buf + have, (1 << 20) - have, 0);
            if (r <= 0)
                goto out;
            have += (size_t)r;
        }
        atomic_fetch_add(&s->requests, 1);
        int now = atomic_fetch_add(&s->in_flight, 1) + 1;
        int peak = atomic_load(&s->peak);
        while (now > peak && !atomic_compare_exchange_weak(&s->peak, &peak, now))
            ;
        if (s->delay_ms > 0)
            clock_sleep_ms(s->delay_ms);
        atomic_fetch_sub(&s->in_flight, 1);
        memmove(buf, buf + head + body_len, have - head - body_len);
        have -= head + body_len;
        if (atomic_fetch_sub(&s->bad, 1) > 0) {
            char line[256];
            switch (s->mode) {
            case ANSWER_STATUS:
                snprintf(line, sizeof(line), "HTTP/1.1 %d Nope\r\nContent-Length: 2\r\n\r\n{}", s->status);
                send_all(c->fd, line, strlen(line));
                continue;
            case ANSWER_GARBAGE:
                send_all(c->fd, "garbage, not HTTP\r\n\r\n", 21);
                goto out;
            case ANSWER_CUT:
                send_all(c->fd, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{\"Unpro", 48);
                goto out;
            case ANSWER_OVERSIZE: {
                size_t big = 100 * 1024;
                char *answer = malloc(big + 100);
                int n;
                assert_non_null(answer);
                n = snprintf(answer, 100, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", big);
                memset(answer + n, ' ', big);
                send_all(c->fd, answer, (size_t)n + big);
                free(answer);
                continue;
            }
            case ANSWER_OK:
                break;
            }
        }
        static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 31\r\n\r\n{\"UnprocessedTraceSegments\":[]}";
        send_all(c->fd, ok, sizeof(ok) - 1);
    }
out:
    close(c->fd);
    free(buf);
    free(c);
    return NULL;
}

static void *script_main(void *arg)
{
    struct script *s = arg;

    while (!atomic_load(&s->stop)) {
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        if (poll(&p, 1, 20) == 1) {
            struct script_conn *c = malloc(sizeof(*c));
            pthread_t t;
            assert_non_null(c);
            c->s = s;
            c->fd = accept(s->fd, NULL, NULL);
            if (c->fd < 0 || pthread_create(&t, NULL, script_conn_main, c) != 0) {
                if (c->fd >= 0)
                    close(c->fd);
                free(c);
                continue;
            }
            pthread_detach(t);
        }
    }
    return NULL;
}

static void script_start(struct script *s, enum script_mode mode, int status, int bad, int delay_ms)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);

    memset(s, 0, sizeof(*s));
    s->mode = mode;
    s->status = status;
    atomic_store(&s->bad, bad);
    s->delay_ms = delay_ms;
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s->fd >= 0);
    assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->fd, 64), 0);
    assert_int_equal(getsockname(s->fd, (struct sockaddr *)&a, &alen), 0);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&s->thread, NULL, script_main, s), 0);
}

static void script_stop(struct script *s)
{
    atomic_store(&s->stop, true);
    pthread_join(s->thread, NULL);
    close(s->fd);
}

static struct export_config script_cfg(const struct script *s)
{
    struct export_config cfg = {
        .sinks = 1u << EXPORT_SINK_XRAY,
        .queue_max_bytes = 64 << 20,
        .request_timeout_ms = 10000,
        .connect_timeout_ms = 5000,
    };

    snprintf(cfg.xray_endpoint, sizeof(cfg.xray_endpoint), "http://127.0.0.1:%u", s->port);
    snprintf(cfg.region, sizeof(cfg.region), "us-east-1");
    setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
    unsetenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    return cfg;
}

static int handled_tickets[1000];
static atomic_int handled_n;

static void on_handled(const int *tickets, size_t n, void *ctx)
{
    (void)ctx;
    assert_true(n >= 1);
    for (size_t i = 0; i < n; i++)
        handled_tickets[atomic_fetch_add(&handled_n, 1)] = tickets[i];
}

/* n segments (distinct ids), submitted as one burst. */
static void submit_n(struct exporter *e, int n)
{
    struct trace_segment seg;
    struct trace_resource res;

    one_segment(&seg, &res);
    export_hold(e);
    for (int i = 0; i < n; i++) {
        snprintf(seg.id, sizeof(seg.id), "%016x", 0x1000 + i);
        assert_int_equal(export_submit(e, &seg, &res, true, i), 0);
    }
    export_release(e);
}

static void test_requests_run_in_parallel_bounded_and_retire_in_order(void **state)
{
    struct script s;
    struct export_config cfg;
    struct exporter *e = NULL;
    struct export_stats st;

    (void)state;
    /* 1,000 segments: 20 requests of 50, each answered after 50 ms */
    script_start(&s, ANSWER_OK, 0, 0, 50);
    cfg = script_cfg(&s);
    cfg.on_handled = on_handled;
    atomic_store(&handled_n, 0);
    assert_int_equal(export_start(&cfg, &e), 0);
    submit_n(e, 1000);
    assert_true(export_flush(e, clock_mono_ns() + 60 * 1000000000LL, false));
    assert_true(export_stop(e, clock_mono_ns() + 5 * 1000000000LL, &st));
    script_stop(&s);
    assert_int_equal(st.sink[EXPORT_SINK_XRAY].sent, 1000);
    assert_int_equal(st.sink[EXPORT_SINK_XRAY].failed, 0);
    /* 50 per request: the burst was submitted under export_hold, so no
     * batch is taken from it before it is whole */
    assert_int_equal(st.sink[EXPORT_SINK_XRAY].requests, 20);
    assert_int_equal(atomic_load(&s.requests), (int)st.sink[EXPORT_SINK_XRAY].requests);
    /* several at once, never more than the bound */
    print_message("peak requests in flight: %d\n", atomic_load(&s.peak));
    assert_true(atomic_load(&s.peak) >= 2);
    assert_true(atomic_load(&s.peak) <= 8);
    /* every ticket once, in submission order */
    assert_int_equal(atomic_load(&handled_n), 1000);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(handled_tickets[i], i);
}

/* One segment against a backend answering `bad` requests badly. */
static void bad_answers(enum script_mode mode, int status, int bad, uint64_t want_sent, uint64_t want_requests)
{
    struct script s;
    struct export_config cfg;
    struct exporter *e = NULL;
    struct export_stats st;

    script_start(&s, mode, status, bad, 0);
    cfg = script_cfg(&s);
    assert_int_equal(export_start(&cfg, &e), 0);
    submit_n(e, 1);
    /* handled either way (delivered or given up on), well before the deadline */
    assert_true(export_flush(e, clock_mono_ns() + 30 * 1000000000LL, true));
    assert_true(export_stop(e, clock_mono_ns() + 5 * 1000000000LL, &st));
    script_stop(&s);
    assert_int_equal(st.sink[EXPORT_SINK_XRAY].sent, want_sent);
    assert_int_equal(st.sink[EXPORT_SINK_XRAY].failed, 1 - want_sent);
    assert_int_equal(st.sink[EXPORT_SINK_XRAY].requests, want_requests);
    assert_int_equal(st.sink[EXPORT_SINK_XRAY].retries, want_requests - 1);
    assert_int_equal(atomic_load(&s.requests), (int)want_requests);
}

static void test_server_errors_are_retried(void **state)
{
    (void)state;
    bad_answers(ANSWER_STATUS, 503, 2, 1, 3); /* third try delivers */
    bad_answers(ANSWER_STATUS, 429, 1, 1, 2);
    bad_answers(ANSWER_STATUS, 500, 3, 0, 3); /* three tries, then given up */
}

static void test_client_errors_are_not_retried(void **state)
{
    (void)state;
    bad_answers(ANSWER_STATUS, 403, 1, 0, 1);
    bad_answers(ANSWER_STATUS, 400, 1, 0, 1);
}

static void test_broken_answers_fail_after_retries(void **state)
{
    (void)state;
    bad_answers(ANSWER_GARBAGE, 0, 3, 0, 3);
    bad_answers(ANSWER_CUT, 0, 3, 0, 3);
    bad_answers(ANSWER_OVERSIZE, 0, 3, 0, 3);
    bad_answers(ANSWER_CUT, 0, 1, 1, 2); /* once, then a good answer */
}

/* The core driven from outside, as an event loop would: poll its
 * descriptors for its timeout, perform, until nothing is in flight. */
static void test_driven_core(void **state)
{
    struct script s;
    struct export_config cfg;
    struct exporter *e = NULL;
    int loops = 0;

    (void)state;
    script_start(&s, ANSWER_OK, 0, 0, 20);
    cfg = script_cfg(&s);
    assert_int_equal(export_new(&cfg, &e), 0);
    assert_false(export_busy(e));
    assert_int_equal(export_timeout_ms(e), -1); /* idle: nothing timed */
    submit_n(e, 300);
    export_perform(e, NULL, 0);
    assert_true(export_busy(e));
    while (export_busy(e) && loops++ < 100000) {
        struct pollfd fds[64];
        size_t n = export_poll_fds(e, fds, 64);
        assert_true(n <= 8 * 2);
        (void)poll(fds, n, export_timeout_ms(e));
        export_perform(e, fds, n);
    }
    assert_false(export_busy(e));
    assert_int_equal(export_timeout_ms(e), -1);
    script_stop(&s);
    assert_int_equal(atomic_load(&s.requests), 6); /* all queued before the first perform */
    assert_true(atomic_load(&s.peak) >= 2);
    export_destroy(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unprocessed_names_documents_by_id),
        cmocka_unit_test(test_unprocessed_duplicates_refuse_each_document_once),
        cmocka_unit_test(test_unprocessed_out_of_memory),
        cmocka_unit_test(test_unprocessed_counts_only_documents_sent),
        cmocka_unit_test(test_stop_cuts_a_request_to_a_black_hole),
        cmocka_unit_test(test_stop_cuts_a_trickling_answer),
        cmocka_unit_test(test_otlp_timeout_bounds_each_request),
        cmocka_unit_test(test_requests_run_in_parallel_bounded_and_retire_in_order),
        cmocka_unit_test(test_server_errors_are_retried),
        cmocka_unit_test(test_client_errors_are_not_retried),
        cmocka_unit_test(test_broken_answers_fail_after_retries),
        cmocka_unit_test(test_driven_core),
    };
    return cmocka_run_group_tests_name("export", tests, NULL, NULL);
}
