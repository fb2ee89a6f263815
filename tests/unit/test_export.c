/* Unit tests for export.c: the PutTraceSegments answer, and the exporter
 * against local backends that never answer (the SHUTDOWN deadline). */
#include <arpa/inet.h>
#include <errno.h>
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unprocessed_names_documents_by_id),
        cmocka_unit_test(test_unprocessed_duplicates_refuse_each_document_once),
        cmocka_unit_test(test_unprocessed_out_of_memory),
        cmocka_unit_test(test_unprocessed_counts_only_documents_sent),
        cmocka_unit_test(test_stop_cuts_a_request_to_a_black_hole),
        cmocka_unit_test(test_stop_cuts_a_trickling_answer),
    };
    return cmocka_run_group_tests_name("export", tests, NULL, NULL);
}
