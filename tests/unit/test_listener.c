/* Unit tests for listener.c over real loopback sockets. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "limits.h"
#include "listener.h"
#include "fail_alloc.h"

/* Bodies the listener handed over; written on the listener thread. */
struct sink {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int count;
    size_t total;
    char last[256];
};

static void on_body(char *body, size_t len, void *ctx)
{
    struct sink *s = ctx;
    pthread_mutex_lock(&s->lock);
    s->count++;
    s->total += len;
    snprintf(s->last, sizeof(s->last), "%.*s", (int)(len < 200 ? len : 200), body);
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    free(body);
}

/* The listener answers 200 once a body is its own and hands it over right
 * after: waits (at most 10 s) until n bodies were handed over; returns the
 * count then. */
static int sink_wait(struct sink *s, int n)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 10;
    pthread_mutex_lock(&s->lock);
    while (s->count < n && pthread_cond_timedwait(&s->cond, &s->lock, &ts) == 0)
        ;
    int got = s->count;
    pthread_mutex_unlock(&s->lock);
    return got;
}

static int sink_count(struct sink *s)
{
    pthread_mutex_lock(&s->lock);
    int n = s->count;
    pthread_mutex_unlock(&s->lock);
    return n;
}

struct fixture {
    struct sink sink;
    struct listener *l;
    uint16_t port;
};

static int setup(void **state)
{
    static struct fixture f;
    struct listener_options opts = {.host = "127.0.0.1", .port = 0, .max_body_bytes = 1000};
    memset(&f, 0, sizeof(f));
    pthread_mutex_init(&f.sink.lock, NULL);
    pthread_cond_init(&f.sink.cond, NULL);
    opts.on_body = on_body;
    opts.ctx = &f.sink;
    if (listener_start(&opts, &f.l, NULL) != 0)
        return -1;
    f.port = listener_port(f.l);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    listener_stop(f->l, 0, NULL);
    pthread_mutex_destroy(&f->sink.lock);
    pthread_cond_destroy(&f->sink.cond);
    return 0;
}

static int connect_to(uint16_t port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

static void send_str(int fd, const char *s)
{
    assert_int_equal(send(fd, s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
}

/* Reads until `want` appears or the peer closes / wait_ms pass. */
static void read_until_ms(int fd, char *buf, size_t size, const char *want, int64_t wait_ms)
{
    size_t len = 0;
    int64_t deadline = clock_mono_ms() + wait_ms;
    buf[0] = '\0';
    while (clock_mono_ms() < deadline && len + 1 < size) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        ssize_t n = recv(fd, buf + len, size - len - 1, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
        if (want != NULL && strstr(buf, want) != NULL)
            break;
    }
}

static void read_until(int fd, char *buf, size_t size, const char *want)
{
    read_until_ms(fd, buf, size, want, 2000);
}

static bool peer_closed(int fd)
{
    char b[64];
    int64_t deadline = clock_mono_ms() + 2000;
    while (clock_mono_ms() < deadline) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        ssize_t n = recv(fd, b, sizeof(b), 0);
        if (n <= 0)
            return true;
    }
    return false;
}

static void test_post_is_answered_and_handed_over(void **state)
{
    struct fixture *f = *state;
    char buf[512];
    int fd = connect_to(f->port);
    send_str(fd, "POST /telemetry HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 "Content-Length: 2\r\n\r\n[]");
    read_until(fd, buf, sizeof(buf), "\r\n\r\n");
    assert_non_null(strstr(buf, "HTTP/1.1 200 OK\r\n"));
    assert_null(strstr(buf, "Connection: close"));
    assert_int_equal(sink_wait(&f->sink, 1), 1);
    assert_string_equal(f->sink.last, "[]");
    /* keep-alive: a second, chunked request on the same connection */
    send_str(fd, "POST /telemetry HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "3\r\n[1,\r\n2\r\n2]\r\n0\r\n\r\n");
    read_until(fd, buf, sizeof(buf), "\r\n\r\n");
    assert_non_null(strstr(buf, "200 OK"));
    assert_int_equal(sink_wait(&f->sink, 2), 2);
    assert_string_equal(f->sink.last, "[1,2]");
    close(fd);
}

static void test_pipelined_requests_in_one_packet(void **state)
{
    struct fixture *f = *state;
    char buf[1024];
    int fd = connect_to(f->port);
    send_str(fd, "POST / HTTP/1.1\r\nContent-Length: 1\r\n\r\naPOST / HTTP/1.1\r\nContent-Length: 1\r\n\r\nb"
                 "POST / HTTP/1.1\r\nContent-Length: 1\r\nConnection: close\r\n\r\nc");
    read_until(fd, buf, sizeof(buf), "Connection: close");
    assert_int_equal(sink_wait(&f->sink, 3), 3);
    assert_string_equal(f->sink.last, "c");
    assert_true(peer_closed(fd));
    close(fd);
}

static void test_expect_continue(void **state)
{
    struct fixture *f = *state;
    char buf[512];
    int fd = connect_to(f->port);
    send_str(fd, "POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    read_until(fd, buf, sizeof(buf), "\r\n\r\n");
    assert_string_equal(buf, "HTTP/1.1 100 Continue\r\n\r\n");
    send_str(fd, "[42]");
    read_until(fd, buf, sizeof(buf), "\r\n\r\n");
    assert_non_null(strstr(buf, "200 OK"));
    assert_int_equal(sink_wait(&f->sink, 1), 1);
    assert_string_equal(f->sink.last, "[42]");
    close(fd);
}

static void test_errors_get_status_and_close(void **state)
{
    struct fixture *f = *state;
    char buf[512];
    struct {
        const char *req;
        const char *status;
    } cases[] = {
        {"POST / HTTP/1.1\r\nContent-Length: 1001\r\n\r\n", "413"},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3E9\r\n", "413"},
        {"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n", "400"},
        {"BROKEN\r\n\r\n", "400"},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", "501"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int fd = connect_to(f->port);
        send_str(fd, cases[i].req);
        read_until(fd, buf, sizeof(buf), "\r\n\r\n");
        assert_non_null(strstr(buf, cases[i].status));
        assert_non_null(strstr(buf, "Connection: close"));
        assert_true(peer_closed(fd));
        close(fd);
    }
    /* GET is not how telemetry arrives: 405, connection kept */
    int fd = connect_to(f->port);
    send_str(fd, "GET / HTTP/1.1\r\n\r\n");
    read_until(fd, buf, sizeof(buf), "\r\n\r\n");
    assert_non_null(strstr(buf, "405"));
    close(fd);
    assert_int_equal(sink_count(&f->sink), 0);
}

static void test_oversized_headers_get_431(void **state)
{
    struct fixture *f = *state;
    static char big[LISTENER_MAX_HEADER_BYTES + 100];
    char buf[512];
    int fd = connect_to(f->port);
    memset(big, 'a', sizeof(big) - 1);
    memcpy(big, "POST / HTTP/1.1\r\nX: ", 20);
    send(fd, big, sizeof(big) - 1, MSG_NOSIGNAL);
    read_until(fd, buf, sizeof(buf), "\r\n\r\n");
    assert_non_null(strstr(buf, "431"));
    close(fd);
}

/* More connections than the cap: idle keep-alive ones yield, and a
 * trickling sender never blocks the others. */
static void test_connection_cap_and_slow_sender(void **state)
{
    struct fixture *f = *state;
    int fds[LISTENER_MAX_CONNECTIONS + 4];
    char buf[512];
    int slow = connect_to(f->port);
    send_str(slow, "POST / HTTP/1.1\r\nContent-Le"); /* and then nothing */
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
        fds[i] = connect_to(f->port);
    /* the newest connection is served although the cap was passed */
    int last = fds[sizeof(fds) / sizeof(fds[0]) - 1];
    send_str(last, "POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n[]");
    read_until(last, buf, sizeof(buf), "\r\n\r\n");
    assert_non_null(strstr(buf, "200 OK"));
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
        close(fds[i]);
    close(slow);
}

/* Every slot held mid-request by slow senders: a new connection (perhaps
 * the platform's) still gets served, in place of the longest-running one. */
static void test_slots_held_mid_request_yield_to_a_new_connection(void **state)
{
    struct fixture *f = *state;
    int slow[LISTENER_MAX_CONNECTIONS];
    char buf[512];
    struct listener_stats st;

    for (size_t i = 0; i < LISTENER_MAX_CONNECTIONS; i++) {
        slow[i] = connect_to(f->port);
        send_str(slow[i], "POST / HTTP/1.1\r\nContent-Length: 900\r\n\r\n[");
        clock_sleep_ms(2); /* distinct start times: slow[0] is the oldest */
    }
    clock_sleep_ms(50);
    int fresh = connect_to(f->port);
    send_str(fresh, "POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n[]");
    read_until(fresh, buf, sizeof(buf), "\r\n\r\n");
    assert_non_null(strstr(buf, "200 OK"));
    assert_true(peer_closed(slow[0])); /* the oldest request made room */
    for (size_t i = 0; i < LISTENER_MAX_CONNECTIONS; i++)
        close(slow[i]);
    close(fresh);
    listener_stop(f->l, 0, &st);
    assert_int_equal(st.evicted, 1);
    assert_int_equal(st.refused, 0);
    /* teardown stops it again: give it a fresh one */
    struct listener_options opts = {.host = "127.0.0.1", .max_body_bytes = 10, .on_body = on_body,
                                    .ctx = &f->sink};
    assert_int_equal(listener_start(&opts, &f->l, NULL), 0);
}

/* --- the platform is never dropped for another client's sake (issue 10.4) --- */

static const char platform_post[] = "POST /telemetry HTTP/1.1\r\nHost: sandbox.localdomain\r\n"
                                    "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n[]";

/* Stops the fixture's listener, returns its counters and starts a fresh one
 * (teardown stops whatever is there). */
static struct listener_stats restart(struct fixture *f)
{
    struct listener_stats st;
    struct listener_options opts = {.host = "127.0.0.1", .max_body_bytes = 1000, .on_body = on_body,
                                    .ctx = &f->sink};
    listener_stop(f->l, 0, &st);
    assert_int_equal(listener_start(&opts, &f->l, NULL), 0);
    f->port = listener_port(f->l);
    return st;
}

/* Without waiting: whether the listener has closed fd (EOF or reset; what
 * it sent before, a 503 to a request cut short, is read and dropped). */
static bool closed_now(int fd)
{
    char b[256];
    for (;;) {
        ssize_t n = recv(fd, b, sizeof(b), MSG_DONTWAIT);
        if (n > 0)
            continue;
        return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
    }
}

/* Waits (5 s at most) until n of fds have been closed by the listener;
 * returns how many are. */
static size_t wait_closed(const int *fds, size_t count, size_t n)
{
    int64_t deadline = clock_mono_ms() + 5000;
    size_t closed;
    do {
        closed = 0;
        for (size_t i = 0; i < count; i++)
            closed += closed_now(fds[i]);
        if (closed >= n)
            break;
        struct pollfd p = {.fd = -1};
        (void)poll(&p, 0, 5);
    } while (clock_mono_ms() < deadline);
    return closed;
}

/* One POST on fd; true when it was answered 200. */
static bool post_ok(int fd)
{
    char buf[512];
    if (send(fd, platform_post, sizeof(platform_post) - 1, MSG_NOSIGNAL) != (ssize_t)sizeof(platform_post) - 1)
        return false;
    /* a generous bound: under valgrind with churning threads an answer may
     * take a while; what matters is that it comes */
    read_until_ms(fd, buf, sizeof(buf), "\r\n\r\n", 10000);
    return strncmp(buf, "HTTP/1.1 200 OK\r\n", 17) == 0;
}

/* The attack: every slot held by a slow sender, one more connection,
 * then the platform connects, and one more connection arrives before the
 * platform's bytes do.  The platform is answered every time. */
static void test_platform_post_answered_past_slow_senders_every_time(void **state)
{
    struct fixture *f = *state;
    int answered = 0;

    for (int round = 0; round < 20; round++) {
        int slow[LISTENER_MAX_CONNECTIONS];
        for (size_t i = 0; i < LISTENER_MAX_CONNECTIONS; i++) {
            slow[i] = connect_to(f->port);
            send_str(slow[i], "POST / HTTP/1.1\r\nContent-Length: 900\r\n\r\n[");
        }
        int extra = connect_to(f->port);
        int platform = connect_to(f->port);
        int after = connect_to(f->port);
        answered += post_ok(platform);
        close(after);
        close(platform);
        close(extra);
        for (size_t i = 0; i < LISTENER_MAX_CONNECTIONS; i++)
            close(slow[i]);
    }
    assert_int_equal(answered, 20);
    struct listener_stats st = restart(f);
    /* 19 connections a round against 16 slots: at least 3 made room each time */
    assert_true(st.evicted >= 3 * 20);
    assert_int_equal(st.evicted_kept_alive, 0);
    assert_int_equal(st.refused, 0);
}

/* Connections that never send a byte fill the cap: newcomers take the slots
 * of the oldest, each closing counted, and the platform is served. */
static void test_idle_connections_yield_oldest_first_and_are_counted(void **state)
{
    struct fixture *f = *state;
    int idle[LISTENER_MAX_CONNECTIONS];
    int more[4];

    for (size_t i = 0; i < LISTENER_MAX_CONNECTIONS; i++)
        idle[i] = connect_to(f->port);
    for (size_t i = 0; i < 4; i++)
        more[i] = connect_to(f->port);
    int platform = connect_to(f->port);
    assert_true(post_ok(platform));
    /* the platform was accepted after every other: its answer means all
     * five evictions have happened, the oldest five */
    for (size_t i = 0; i < LISTENER_MAX_CONNECTIONS; i++)
        assert_int_equal(closed_now(idle[i]), i < 5);
    for (size_t i = 0; i < 4; i++)
        assert_false(closed_now(more[i]));
    assert_true(post_ok(platform)); /* and kept alive */
    struct listener_stats st = restart(f);
    assert_int_equal(st.evicted, 5);
    assert_int_equal(st.evicted_kept_alive, 0);
    assert_int_equal(st.timed_out, 0);
    assert_int_equal(st.refused, 0);
    assert_int_equal(st.connections, LISTENER_MAX_CONNECTIONS + 5);
    assert_int_equal(st.requests, 2);
    for (size_t i = 0; i < LISTENER_MAX_CONNECTIONS; i++)
        close(idle[i]);
    for (size_t i = 0; i < 4; i++)
        close(more[i]);
    close(platform);
}

/* The platform keeps its connection alive between deliveries: idle, it must
 * not be what newcomers evict while connections that never completed a
 * request (idle or trickling) hold slots. */
static void test_kept_alive_connection_outlives_newcomers(void **state)
{
    struct fixture *f = *state;
    int attackers[3 * LISTENER_MAX_CONNECTIONS];
    int platform = connect_to(f->port);

    assert_true(post_ok(platform));
    for (size_t i = 0; i < sizeof(attackers) / sizeof(attackers[0]); i++) {
        attackers[i] = connect_to(f->port);
        if (i % 2 == 1)
            send_str(attackers[i], "POST / HTTP/1.1\r\nContent-Length: 900\r\n\r\n[");
    }
    /* 15 free slots, then each of the other 33 newcomers made room: the
     * oldest 33 (all accepted by then) */
    size_t n = sizeof(attackers) / sizeof(attackers[0]);
    size_t evicted = n - (LISTENER_MAX_CONNECTIONS - 1);
    assert_int_equal(wait_closed(attackers, n, evicted), evicted);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(closed_now(attackers[i]), i < evicted);
    assert_true(post_ok(platform));
    assert_false(closed_now(platform));
    struct listener_stats st = restart(f);
    assert_int_equal(st.evicted, evicted);
    assert_int_equal(st.evicted_kept_alive, 0);
    for (size_t i = 0; i < sizeof(attackers) / sizeof(attackers[0]); i++)
        close(attackers[i]);
    close(platform);
}

/* When every slot is held by a connection that has completed requests, the
 * one accepted most recently yields (and is counted as kept alive), however
 * recently the others were used: the oldest (the platform's, from Init)
 * stays even when it has been idle longest. */
static void test_served_connections_yield_the_newest(void **state)
{
    struct fixture *f = *state;
    int served[LISTENER_MAX_CONNECTIONS];

    for (size_t i = 0; i < LISTENER_MAX_CONNECTIONS; i++) {
        served[i] = connect_to(f->port);
        assert_true(post_ok(served[i]));
    }
    /* everyone but the oldest busy again: it is the least recently used */
    for (size_t i = 1; i < LISTENER_MAX_CONNECTIONS; i++)
        assert_true(post_ok(served[i]));
    int n1 = connect_to(f->port);
    assert_true(post_ok(n1));
    assert_true(closed_now(served[LISTENER_MAX_CONNECTIONS - 1]));
    for (size_t i = 0; i < LISTENER_MAX_CONNECTIONS - 1; i++)
        assert_false(closed_now(served[i]));
    /* the next newcomer takes n1's place, not the oldest's */
    int n2 = connect_to(f->port);
    assert_true(post_ok(n2));
    assert_true(closed_now(n1));
    assert_false(closed_now(served[0]));
    assert_true(post_ok(served[0]));
    struct listener_stats st = restart(f);
    assert_int_equal(st.evicted, 2);
    assert_int_equal(st.evicted_kept_alive, 2);
    for (size_t i = 0; i < LISTENER_MAX_CONNECTIONS; i++)
        close(served[i]);
    close(n1);
    close(n2);
}

/* A burst of connections larger than the cap right behind the platform's:
 * connections accepted in the same round are read before any of them can be
 * evicted, so the platform's request, already sent, is answered. */
static void test_burst_behind_the_platform(void **state)
{
    struct fixture *f = *state;
    int slow[LISTENER_MAX_CONNECTIONS];
    int burst[3 * LISTENER_MAX_CONNECTIONS];
    char buf[512];

    for (int round = 0; round < 10; round++) {
        for (size_t i = 0; i < LISTENER_MAX_CONNECTIONS; i++) {
            slow[i] = connect_to(f->port);
            send_str(slow[i], "POST / HTTP/1.1\r\nContent-Length: 900\r\n\r\n[");
        }
        int platform = connect_to(f->port);
        send_str(platform, platform_post);
        for (size_t i = 0; i < sizeof(burst) / sizeof(burst[0]); i++)
            burst[i] = connect_to(f->port);
        read_until(platform, buf, sizeof(buf), "\r\n\r\n");
        assert_non_null(strstr(buf, "200 OK"));
        close(platform);
        for (size_t i = 0; i < sizeof(burst) / sizeof(burst[0]); i++)
            close(burst[i]);
        for (size_t i = 0; i < LISTENER_MAX_CONNECTIONS; i++)
            close(slow[i]);
    }
}

/* Churn: threads open and drop short connections (some silent, some with
 * half a request) as fast as they can, 1,200 each (the closing side keeps
 * each port in TIME_WAIT: the machine is shared), while the platform
 * delivers on its kept-alive connection.  Every delivery is answered and the
 * platform's connection is never taken. */
#define CHURN_CYCLES 200
struct churn {
    uint16_t port;
    _Atomic int opened;
    _Atomic int finished;
};

static void *churn_main(void *arg)
{
    struct churn *c = arg;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(c->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int cycle = 0; cycle < CHURN_CYCLES; cycle++) {
        int fds[6];
        for (size_t i = 0; i < 6; i++) {
            fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (fds[i] >= 0 && connect(fds[i], (struct sockaddr *)&a, sizeof(a)) == 0) {
                c->opened++;
                if (i % 3 == 1)
                    (void)send(fds[i], "POST / HTTP/1.1\r\nContent-Le", 28, MSG_NOSIGNAL);
            }
        }
        for (size_t i = 0; i < 6; i++)
            if (fds[i] >= 0)
                close(fds[i]);
    }
    c->finished++;
    return NULL;
}

static void test_churn_never_costs_a_platform_delivery(void **state)
{
    struct fixture *f = *state;
    struct churn c = {.port = f->port};
    pthread_t th[4];
    int answered = 0;
    int platform = connect_to(f->port);

    /* the platform's connection is up and kept alive when the churn starts
     * (a fresh one is test_burst_behind_the_platform's case) */
    assert_true(post_ok(platform));
    answered++;
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, churn_main, &c), 0);
    /* deliveries all along the churn, and at least 300 */
    for (int i = 0; i < 300 || c.finished < 4; i++) {
        if (!post_ok(platform))
            break;
        answered++;
    }
    for (size_t i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    struct listener_stats st = restart(f);
    assert_int_equal(st.evicted_kept_alive, 0);
    assert_true(answered >= 300);
    assert_int_equal(c.opened, 4 * CHURN_CYCLES * 6);
    assert_int_equal(st.refused, 0);
    close(platform);
}

static void test_stop_with_open_connections(void **state)
{
    struct fixture *f = *state;
    int fd = connect_to(f->port);
    send_str(fd, "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab");
    int64_t start = clock_mono_ms();
    listener_stop(f->l, 50, NULL); /* partial request: waits at most the drain time */
    assert_true(clock_mono_ms() - start < 1000);
    assert_true(peer_closed(fd));
    close(fd);
    /* teardown must not stop it twice */
    struct listener_options opts = {.host = "127.0.0.1", .max_body_bytes = 10, .on_body = on_body,
                                    .ctx = &f->sink};
    assert_int_equal(listener_start(&opts, &f->l, NULL), 0);
}

static void test_unresolvable_host_falls_back_to_loopback(void **state)
{
    struct fixture *f = *state;
    struct listener *l = NULL;
    int fell_back = 0;
    struct listener_options opts = {.host = "no-such-host.invalid", .max_body_bytes = 10,
                                    .on_body = on_body, .ctx = &f->sink};
    char buf[256];
    assert_int_equal(listener_start(&opts, &l, &fell_back), 0);
    assert_int_equal(fell_back, 1);
    int fd = connect_to(listener_port(l));
    send_str(fd, "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    read_until(fd, buf, sizeof(buf), "\r\n\r\n");
    assert_non_null(strstr(buf, "200"));
    close(fd);
    listener_stop(l, 0, NULL);
}

static void test_port_in_use_is_an_error(void **state)
{
    struct fixture *f = *state;
    struct listener *l = NULL;
    struct listener_options opts = {.host = "127.0.0.1", .port = f->port, .max_body_bytes = 10,
                                    .on_body = on_body, .ctx = &f->sink};
    assert_int_equal(listener_start(&opts, &l, NULL), -EADDRINUSE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_post_is_answered_and_handed_over, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipelined_requests_in_one_packet, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expect_continue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors_get_status_and_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversized_headers_get_431, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_cap_and_slow_sender, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slots_held_mid_request_yield_to_a_new_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_platform_post_answered_past_slow_senders_every_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_connections_yield_oldest_first_and_are_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kept_alive_connection_outlives_newcomers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_served_connections_yield_the_newest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_burst_behind_the_platform, setup, teardown),
        cmocka_unit_test_setup_teardown(test_churn_never_costs_a_platform_delivery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_with_open_connections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unresolvable_host_falls_back_to_loopback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_port_in_use_is_an_error, setup, teardown),
    };
    return cmocka_run_group_tests_name("listener", tests, NULL, NULL);
}
