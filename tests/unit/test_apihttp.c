/* Unit tests for apihttp.c: the response parser on whole, cut and bad
 * answers, and the client against a fake server (a listening socket on
 * loopback served by a thread that follows a script). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#include "apihttp.h"
#include "http_client.h"
#include "fail_alloc.h"
#include "fake_server.h"
#include "limits.h"

#define HEAD_MAX 1024
#define BODY_MAX 4096

/* ------------------------------------------------------------ the parser */

struct parsed {
    int r;
    struct apihttp_response resp;
    struct apihttp_parsed how;
    char buf[8192];
};

static int parse(struct parsed *p, const char *bytes, size_t len, bool eof, const char *capture)
{
    assert_true(len < sizeof(p->buf));
    memcpy(p->buf, bytes, len);
    p->buf[len] = 'Z'; /* the spare byte the parser may use */
    p->r = apihttp_parse_response(p->buf, len, eof, HEAD_MAX, BODY_MAX, capture, &p->resp, &p->how);
    return p->r;
}

static int parse_str(struct parsed *p, const char *text, bool eof)
{
    return parse(p, text, strlen(text), eof, NULL);
}

/* Every proper prefix of a good answer asks for more, and is a cut answer
 * when the server closed there; the whole answer parses. */
static void check_prefixes(const char *text, long status, const char *body)
{
    static struct parsed p;
    size_t len = strlen(text);

    for (size_t n = 0; n < len; n++) {
        assert_int_equal(parse(&p, text, n, false, NULL), 0);
        assert_int_equal(parse(&p, text, n, true, NULL), -ECONNRESET);
    }
    assert_int_equal(parse(&p, text, len, false, NULL), 1);
    assert_int_equal(p.resp.status, status);
    assert_int_equal(p.resp.body_len, strlen(body));
    assert_memory_equal(p.resp.body, body, strlen(body));
    assert_int_equal(p.resp.body[p.resp.body_len], '\0');
    assert_int_equal(p.how.consumed, len);
    assert_true(p.how.keep_alive);
}

static void test_content_length_answer(void **state)
{
    static struct parsed p;
    (void)state;
    check_prefixes("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n"
                   "{\"a\":1}",
                   200, "{\"a\":1}");
    /* bare LF line ends, no reason phrase */
    assert_int_equal(parse_str(&p, "HTTP/1.1 403\nContent-Length: 2\n\nno", false), 1);
    assert_int_equal(p.resp.status, 403);
    assert_string_equal(p.resp.body, "no");
}

static void test_chunked_answer_is_decoded(void **state)
{
    static struct parsed p;
    (void)state;
    check_prefixes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "4\r\n{\"a\"\r\n3;ext=1\r\n:1}\r\n0\r\nX-Trailer: t\r\n\r\n",
                   200, "{\"a\":1}");
    /* an empty chunked body, upper-case hex, a bigger chunk */
    assert_int_equal(parse_str(&p, "HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n", false), 1);
    assert_int_equal(p.resp.body_len, 0);
    assert_int_equal(parse_str(&p, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                   "1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n", false), 1);
    assert_string_equal(p.resp.body, "abcdefghijklmnopqrstuvwxyz");
}

static void test_body_to_the_end_without_length(void **state)
{
    static struct parsed p;
    const char *text = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end";
    (void)state;
    /* Without Content-Length or chunked, only the close ends the body. */
    assert_int_equal(parse_str(&p, text, false), 0);
    assert_int_equal(parse_str(&p, text, true), 1);
    assert_string_equal(p.resp.body, "until the end");
    assert_false(p.how.keep_alive);
    /* and it is bounded all the same */
    char big[BODY_MAX + 200];
    int n = snprintf(big, sizeof(big), "HTTP/1.1 200 OK\r\n\r\n");
    memset(big + n, 'x', sizeof(big) - (size_t)n);
    assert_int_equal(parse(&p, big, sizeof(big), false, NULL), -EMSGSIZE);
}

static void test_garbage_is_not_http(void **state)
{
    static struct parsed p;
    static const char *const bad[] = {
        "<html>not an event</html>",
        "GARB", /* found before any line end */
        "HTTP/2 200 OK\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 abc OK\r\n\r\n",
        "HTTP/1.1 600 Nope\r\n\r\n",
        "HTTP/1.1 200OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        "HTTP/1.1 200 OK\r\n: empty name\r\n\r\n",
        "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nA: b\r\n folded: line\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 12x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2x\r\nab\r\n0\r\n\r\n",
        "HTTP/1.1 101 Switching Protocols\r\n\r\n",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        parse_str(&p, bad[i], false);
        if (p.r != -EPROTO)
            fail_msg("%s: %d", bad[i], p.r);
        parse_str(&p, bad[i], true);
        assert_int_equal(p.r, -EPROTO);
    }
}

static void test_sizes_are_bounded(void **state)
{
    static struct parsed p;
    char text[3 * HEAD_MAX];
    int n;
    (void)state;
    /* one endless header line, and many short ones */
    n = snprintf(text, sizeof(text), "HTTP/1.1 200 OK\r\nX: ");
    memset(text + n, 'a', sizeof(text) - (size_t)n);
    assert_int_equal(parse(&p, text, HEAD_MAX + 1, false, NULL), -EMSGSIZE);
    assert_int_equal(parse(&p, text, HEAD_MAX, false, NULL), 0);
    n = snprintf(text, sizeof(text), "HTTP/1.1 200 OK\r\n");
    while ((size_t)n + 8 < sizeof(text))
        n += snprintf(text + n, sizeof(text) - (size_t)n, "A: b\r\n");
    assert_int_equal(parse(&p, text, (size_t)n, false, NULL), -EMSGSIZE);
    /* a body over the limit is refused as soon as the head shows it */
    n = snprintf(text, sizeof(text), "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", BODY_MAX + 1);
    assert_int_equal(parse(&p, text, (size_t)n, false, NULL), -EMSGSIZE);
    n = snprintf(text, sizeof(text), "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", BODY_MAX);
    assert_int_equal(parse(&p, text, (size_t)n, false, NULL), 0);
    /* chunked: the sum of the chunks counts, and one size line alone */
    n = snprintf(text, sizeof(text), "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n",
                 BODY_MAX + 1);
    assert_int_equal(parse(&p, text, (size_t)n, false, NULL), -EMSGSIZE);
    {
        static char chunked[8192];
        n = snprintf(chunked, sizeof(chunked), "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n",
                     BODY_MAX - 1);
        memset(chunked + n, 'x', BODY_MAX - 1);
        n += BODY_MAX - 1;
        int m = n + snprintf(chunked + n, sizeof(chunked) - (size_t)n, "\r\n1\r\nx\r\n0\r\n\r\n");
        assert_int_equal(parse(&p, chunked, (size_t)m, false, NULL), 1); /* exactly the limit */
        assert_int_equal(p.resp.body_len, BODY_MAX);
        m = n + snprintf(chunked + n, sizeof(chunked) - (size_t)n, "\r\n2\r\nxx\r\n0\r\n\r\n");
        assert_int_equal(parse(&p, chunked, (size_t)m, false, NULL), -EMSGSIZE);
    }
    /* endless trailers */
    n = snprintf(text, sizeof(text), "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n");
    while ((size_t)n + 8 < sizeof(text))
        n += snprintf(text + n, sizeof(text) - (size_t)n, "T: v\r\n");
    assert_int_equal(parse(&p, text, (size_t)n, false, NULL), -EMSGSIZE);
}

static void test_connection_reuse_decision(void **state)
{
    static struct parsed p;
    (void)state;
    assert_int_equal(parse_str(&p, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", false), 1);
    assert_false(p.how.keep_alive);
    assert_int_equal(parse_str(&p, "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false), 1);
    assert_false(p.how.keep_alive);
    /* bytes nobody asked for after the answer */
    assert_int_equal(parse_str(&p, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nab", false), 1);
    assert_string_equal(p.resp.body, "a");
    assert_false(p.how.keep_alive);
    /* both framings: chunked wins, the connection is not kept */
    assert_int_equal(parse_str(&p, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\n\r\n"
                                   "1\r\na\r\n0\r\n\r\n", false), 1);
    assert_string_equal(p.resp.body, "a");
    assert_false(p.how.keep_alive);
    assert_int_equal(parse_str(&p, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false), 1);
    assert_true(p.how.keep_alive);
}

static void test_interim_and_empty_answers(void **state)
{
    static struct parsed p;
    (void)state;
    check_prefixes("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nok", 202, "ok");
    /* 204 has no body whatever it says */
    assert_int_equal(parse_str(&p, "HTTP/1.1 204 No Content\r\n\r\n", false), 1);
    assert_int_equal(p.resp.status, 204);
    assert_int_equal(p.resp.body_len, 0);
    assert_true(p.how.keep_alive);
}

static void test_capture_header(void **state)
{
    static struct parsed p;
    const char *id = "Lambda-Extension-Identifier";
    const char *text = "HTTP/1.1 200 OK\r\nlambda-extension-identifier:  abc-123 \r\nContent-Length: 0\r\n\r\n";
    (void)state;
    assert_int_equal(parse(&p, text, strlen(text), false, id), 1);
    assert_string_equal(p.resp.captured, "abc-123");
    /* a control byte in the value: not captured (it is sent back in a header line) */
    text = "HTTP/1.1 200 OK\r\nLambda-Extension-Identifier: a\rb\r\nContent-Length: 0\r\n\r\n";
    assert_int_equal(parse(&p, text, strlen(text), false, id), 1);
    assert_string_equal(p.resp.captured, "");
    /* a longer name that starts the same is another header */
    text = "HTTP/1.1 200 OK\r\nLambda-Extension-Identifier-X: a\r\nContent-Length: 0\r\n\r\n";
    assert_int_equal(parse(&p, text, strlen(text), false, id), 1);
    assert_string_equal(p.resp.captured, "");
    /* an interim answer's headers are not the answer's */
    text = "HTTP/1.1 100 Continue\r\nLambda-Extension-Identifier: early\r\n\r\n"
           "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    assert_int_equal(parse(&p, text, strlen(text), false, id), 1);
    assert_string_equal(p.resp.captured, "");
    {
        char small[4];
        assert_false(http_client_header_value("X: abcd", 7, "X", small, sizeof(small)));
        assert_true(http_client_header_value("X: abc", 6, "X", small, sizeof(small)));
        assert_string_equal(small, "abc");
        assert_false(http_client_header_value("X\0: a", 5, "X", small, sizeof(small)));
    }
}

/* ------------------------------------------------------ the fake server */

static struct apihttp *client_for(const struct fake *f)
{
    char hp[32];
    struct apihttp *c = NULL;

    snprintf(hp, sizeof(hp), "127.0.0.1:%u", (unsigned)f->port);
    assert_int_equal(apihttp_new(hp, 1000, 64 * 1024, &c), 0);
    return c;
}

static int get(struct apihttp *c, long timeout_ms, struct apihttp_response *resp)
{
    struct apihttp_request req = {.method = "GET", .path = "/next", .headers = "X-Id: 1\r\n",
                                  .timeout_ms = timeout_ms, .max_body_bytes = 1024};
    char detail[128];
    return apihttp_perform(c, &req, resp, detail, sizeof(detail));
}

#define OK_ANSWER(body) "HTTP/1.1 200 OK\r\nContent-Length: " #body "\r\n\r\n"

static void test_keep_alive_and_request_bytes(void **state)
{
    static const struct step steps[] = {
        {"HTTP/1.1 200 OK\r\nLambda-Extension-Identifier: id-1\r\nContent-Length: 2\r\n\r\n{}", 0, KEEP},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 0, KEEP},
    };
    struct fake f;
    struct apihttp *c;
    struct apihttp_response resp;
    struct apihttp_request req = {.method = "POST", .path = "/2020-01-01/extension/register",
                                  .headers = "Lambda-Extension-Name: x\r\n", .body = "{\"a\":1}",
                                  .body_len = 7, .timeout_ms = 2000, .max_body_bytes = 1024,
                                  .capture_header = "Lambda-Extension-Identifier"};
    (void)state;
    fake_start(&f, steps, 2);
    c = client_for(&f);
    assert_int_equal(apihttp_perform(c, &req, &resp, NULL, 0), 0);
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.body, "{}");
    assert_string_equal(resp.captured, "id-1");
    assert_int_equal(get(c, 0, &resp), 0);
    assert_string_equal(resp.body, "abc");
    apihttp_destroy(c);
    fake_join(&f);
    assert_int_equal(f.send_failures, 0);
    assert_int_equal(f.accepts, 1); /* one connection for both */
    assert_int_equal(f.requests, 2);
    char want[256];
    snprintf(want, sizeof(want),
             "POST /2020-01-01/extension/register HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n"
             "Lambda-Extension-Name: x\r\nContent-Length: 7\r\n\r\n{\"a\":1}",
             (unsigned)f.port);
    assert_string_equal(f.req[0], want);
    snprintf(want, sizeof(want), "GET /next HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nX-Id: 1\r\n\r\n",
             (unsigned)f.port);
    assert_string_equal(f.req[1], want);
}

/* The server closed the kept connection between two requests (after a
 * thaw): the second is sent once more on a fresh one. */
static void test_stale_connection_is_tried_again(void **state)
{
    static const struct step steps[] = {
        {OK_ANSWER(1) "a", 0, CLOSE},
        {OK_ANSWER(1) "b", 0, KEEP},
        {NULL, 0, CLOSE}, /* read, then closed with no answer */
        {OK_ANSWER(1) "c", 0, KEEP},
    };
    struct fake f;
    struct apihttp *c;
    struct apihttp_response resp;
    (void)state;
    fake_start(&f, steps, 4);
    c = client_for(&f);
    assert_int_equal(get(c, 0, &resp), 0);
    assert_string_equal(resp.body, "a");
    assert_int_equal(get(c, 0, &resp), 0);
    assert_string_equal(resp.body, "b");
    /* on a kept connection that closes with nothing: once more */
    assert_int_equal(get(c, 0, &resp), 0);
    assert_string_equal(resp.body, "c");
    apihttp_destroy(c);
    fake_join(&f);
    assert_int_equal(f.send_failures, 0);
    assert_int_equal(f.accepts, 3);
}

/* A fresh connection closed mid-answer is not tried again: the caller
 * decides (extapi_next asks again). */
static void test_cut_answers_fail(void **state)
{
    static const struct step steps[] = {
        {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 0, CLOSE},
        {"HTTP/1.1 200 OK\r\nContent-Le", 0, CLOSE},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", 0, CLOSE},
        {NULL, 0, CLOSE},
        {OK_ANSWER(2) "ok", 0, KEEP},
    };
    struct fake f;
    struct apihttp *c;
    struct apihttp_response resp;
    (void)state;
    fake_start(&f, steps, 5);
    c = client_for(&f);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(get(c, 0, &resp), -ECONNRESET);
        assert_null(resp.body);
    }
    assert_int_equal(get(c, 0, &resp), 0);
    assert_string_equal(resp.body, "ok");
    apihttp_destroy(c);
    fake_join(&f);
    assert_int_equal(f.send_failures, 0);
    assert_int_equal(f.accepts, 5);
    assert_int_equal(f.requests, 5); /* none sent twice */
}

static void test_bad_answers_close_the_connection(void **state)
{
    static char huge[EXTAPI_MAX_HEAD_BYTES + 100];
    static struct step steps[] = {
        {"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n", 0, KEEP},
        {"<html>hello</html>", 0, KEEP},
        {huge, sizeof(huge), KEEP},
        {"HTTP/1.1 200 OK\r\nContent-Type: x\r\n\r\nto the end", 0, CLOSE},
        {OK_ANSWER(2) "ok", 0, KEEP},
    };
    struct fake f;
    struct apihttp *c;
    struct apihttp_response resp;
    int n;
    (void)state;
    n = snprintf(huge, sizeof(huge), "HTTP/1.1 200 OK\r\nX: ");
    memset(huge + n, 'h', sizeof(huge) - (size_t)n);
    fake_start(&f, steps, 5);
    c = client_for(&f);
    assert_int_equal(get(c, 0, &resp), -EMSGSIZE); /* over the request's 1024 */
    assert_int_equal(get(c, 0, &resp), -EIO);
    assert_int_equal(get(c, 0, &resp), -EMSGSIZE);
    assert_int_equal(get(c, 0, &resp), 0); /* no length: the body ran to the close */
    assert_string_equal(resp.body, "to the end");
    assert_int_equal(get(c, 0, &resp), 0);
    assert_string_equal(resp.body, "ok");
    apihttp_destroy(c);
    fake_join(&f);
    assert_int_equal(f.send_failures, 0);
    assert_int_equal(f.accepts, 5); /* each bad answer cost its connection */
}

static void test_timeout_and_refusal(void **state)
{
    static const struct step steps[] = {{NULL, 0, HOLD}};
    struct fake f;
    struct apihttp *c;
    struct apihttp_response resp;
    (void)state;
    fake_start(&f, steps, 1);
    c = client_for(&f);
    /* the server never answers */
    assert_int_equal(get(c, 50, &resp), -ETIMEDOUT);
    apihttp_destroy(c); /* closes: the server's HOLD ends */
    fake_join(&f);
    /* nothing listens there any more */
    c = client_for(&f);
    assert_int_equal(get(c, 0, &resp), -ECONNREFUSED);
    apihttp_destroy(c);
}

/* An answer begun and left unfinished on an open connection, to a request
 * without a timeout (/event/next): the rest gets 2 s, then the request
 * fails and the connection is dropped; the next request goes out on a new
 * one.  (It waited forever, and never saw SHUTDOWN.) */
static void test_unfinished_answer_without_timeout_ends(void **state)
{
    static const struct step steps[] = {
        {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 0, HOLD},
        {OK_ANSWER(2) "ok", 0, KEEP},
    };
    struct fake f;
    struct apihttp *c;
    struct apihttp_response resp;
    struct timespec t0, t1;
    (void)state;
    fake_start(&f, steps, 2);
    c = client_for(&f);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(get(c, 0, &resp), -ETIMEDOUT);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s_taken = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_true(s_taken >= 1.9 && s_taken < 10.0);
    assert_null(resp.body);
    assert_int_equal(get(c, 0, &resp), 0);
    assert_string_equal(resp.body, "ok");
    apihttp_destroy(c);
    fake_join(&f);
    assert_int_equal(f.accepts, 2);
}

/* The sent hook: once per request that went out, however many tries it
 * took, and never for one that could not be sent. */
struct sent_count {
    int calls;
};

static void count_sent(void *ctx)
{
    struct sent_count *n = ctx;

    n->calls++;
}

static int get_hooked(struct apihttp *c, long timeout_ms, struct apihttp_response *resp, struct sent_count *n)
{
    struct apihttp_request req = {.method = "GET", .path = "/next", .timeout_ms = timeout_ms,
                                  .max_body_bytes = 1024, .sent = count_sent, .sent_ctx = n};
    return apihttp_perform(c, &req, resp, NULL, 0);
}

static void test_sent_hook_once_per_request(void **state)
{
    static const struct step steps[] = {
        {OK_ANSWER(1) "a", 0, CLOSE}, /* answered, then the kept connection is closed */
        {OK_ANSWER(1) "b", 0, KEEP},  /* the second request's second try */
        {NULL, 0, HOLD},              /* never answered */
    };
    struct fake f;
    struct apihttp *c;
    struct apihttp_response resp;
    struct sent_count n = {0};
    (void)state;
    fake_start(&f, steps, 3);
    c = client_for(&f);
    assert_int_equal(get_hooked(c, 0, &resp, &n), 0);
    assert_string_equal(resp.body, "a");
    assert_int_equal(n.calls, 1);
    /* sent twice (the stale connection, then a fresh one): one call */
    assert_int_equal(get_hooked(c, 0, &resp, &n), 0);
    assert_string_equal(resp.body, "b");
    assert_int_equal(n.calls, 2);
    /* out, then no answer in time: it was sent */
    assert_int_equal(get_hooked(c, 50, &resp, &n), -ETIMEDOUT);
    assert_int_equal(n.calls, 3);
    apihttp_destroy(c);
    fake_join(&f);
    assert_int_equal(f.accepts, 2);
    /* nothing listens: never sent, never called */
    c = client_for(&f);
    assert_int_equal(get_hooked(c, 0, &resp, &n), -ECONNREFUSED);
    assert_int_equal(n.calls, 3);
    apihttp_destroy(c);
}

static void test_new_checks_and_out_of_memory(void **state)
{
    struct apihttp *c = NULL;
    struct apihttp_response resp;
    struct apihttp_request req = {.method = "GET", .path = "/", .max_body_bytes = 2048};
    (void)state;
    assert_int_equal(apihttp_new(NULL, 1000, 1024, &c), -EINVAL);
    assert_int_equal(apihttp_new("127.0.0.1:9001/x", 1000, 1024, &c), -EINVAL);
    assert_int_equal(apihttp_new("127.0.0.1:9001", 1000, 0, &c), -EINVAL);
    assert_int_equal(apihttp_new("127.0.0.1:9001", 1000, EXTAPI_MAX_EVENT_BYTES + 1, &c), -EINVAL);
    fail_alloc_reset();
    fail_alloc_fail_at(1);
    assert_int_equal(apihttp_new("127.0.0.1:9001", 1000, 1024, &c), -ENOMEM);
    fail_alloc_reset();
    assert_int_equal(apihttp_new("[::1]:9001", 1000, 1024, &c), 0);
    /* a request may not ask for more than the buffer holds */
    assert_int_equal(apihttp_perform(c, &req, &resp, NULL, 0), -EINVAL);
    apihttp_destroy(c);
    apihttp_destroy(NULL);
    assert_int_equal(fail_alloc_live(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_length_answer),
        cmocka_unit_test(test_chunked_answer_is_decoded),
        cmocka_unit_test(test_body_to_the_end_without_length),
        cmocka_unit_test(test_garbage_is_not_http),
        cmocka_unit_test(test_sizes_are_bounded),
        cmocka_unit_test(test_connection_reuse_decision),
        cmocka_unit_test(test_interim_and_empty_answers),
        cmocka_unit_test(test_capture_header),
        cmocka_unit_test(test_keep_alive_and_request_bytes),
        cmocka_unit_test(test_stale_connection_is_tried_again),
        cmocka_unit_test(test_cut_answers_fail),
        cmocka_unit_test(test_bad_answers_close_the_connection),
        cmocka_unit_test(test_timeout_and_refusal),
        cmocka_unit_test(test_sent_hook_once_per_request),
        cmocka_unit_test(test_unfinished_answer_without_timeout_ends),
        cmocka_unit_test(test_new_checks_and_out_of_memory),
    };
    return cmocka_run_group_tests_name("apihttp", tests, NULL, NULL);
}
