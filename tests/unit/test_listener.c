/* Unit tests for listener.c over real loopback sockets. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
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
    pthread_mutex_unlock(&s->lock);
    free(body);
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

/* Reads until `want` appears or the peer closes / 2 s pass. */
static void read_until(int fd, char *buf, size_t size, const char *want)
{
    size_t len = 0;
    int64_t deadline = clock_mono_ms() + 2000;
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
    assert_int_equal(sink_count(&f->sink), 1);
    assert_string_equal(f->sink.last, "[]");
    /* keep-alive: a second, chunked request on the same connection */
    send_str(fd, "POST /telemetry HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "3\r\n[1,\r\n2\r\n2]\r\n0\r\n\r\n");
    read_until(fd, buf, sizeof(buf), "\r\n\r\n");
    assert_non_null(strstr(buf, "200 OK"));
    assert_int_equal(sink_count(&f->sink), 2);
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
    assert_int_equal(sink_count(&f->sink), 3);
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
        cmocka_unit_test_setup_teardown(test_stop_with_open_connections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unresolvable_host_falls_back_to_loopback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_port_in_use_is_an_error, setup, teardown),
    };
    return cmocka_run_group_tests_name("listener", tests, NULL, NULL);
}
