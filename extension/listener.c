/*
 * listener.c - see listener.h.
 *
 * A single-threaded poll loop.  Every socket is non-blocking and
 * close-on-exec.  The answers we send are a few dozen bytes; if even those
 * cannot be written at once, the peer is not reading and the connection is
 * closed rather than buffered.
 *
 * Who keeps a slot (issue 10): the platform's telemetry must never be lost
 * for another client's sake.  A new connection is always accepted at once
 * (left in the backlog it could wait behind a flood); when every slot is
 * held, one connection is closed to make room, and counted:
 *   1. one that never completed a request (silent, trickling, or a client
 *      that just connected), the one that has held its slot longest first;
 *   2. else one that completed requests and is idle (a kept-alive
 *      connection, as the platform keeps its own between deliveries), the
 *      one accepted most recently first: the platform's connection dates
 *      from Init, before any code of the function ran, and clients that
 *      keep theirs busy cannot make it the one to go (as "least recently
 *      used" would);
 *   3. else one that completed requests and is mid-request, the request
 *      running longest first.
 * A connection accepted in the current round is never chosen: when it would
 * be, the round ends and the rest wait in the backlog for the next, after
 * a poll.  Each is read at accept and again before the next round, so a
 * client whose request is already sent (the platform sends at once) is
 * served before a burst behind it can push it out.  Kept-alive connections have no idle
 * limit: the sandbox is frozen between invocations, and a limit would close
 * the platform's connection just as it thaws to deliver on it.
 */
#include "listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "http_request.h"
#include "limits.h"
#include "loop.h"

struct conn {
    int fd;
    struct http_request *req;
    /* Orders from the listener's event counter: when the connection was
     * accepted, completed its last request, started the request in
     * progress.  Counters, not clock readings: many events share a ms. */
    uint64_t accepted_seq;
    uint64_t done_seq;
    uint64_t started_seq;
    uint64_t requests; /* completed on this connection */
    int64_t last_active_ms;
    int64_t request_started_ms; /* first byte of the request in progress */
    bool sent_continue;
};

struct listener {
    int listen_fd;
    uint16_t port;
    size_t max_body_bytes;
    listener_body_fn on_body;
    void *ctx;
    /* Its own thread and loop (listener_start only). */
    pthread_t thread;
    bool thread_started;
    struct loop *own_loop;
    /* Written by listener_stop before the wake-up, read by the thread after
     * it. */
    _Atomic int drain_ms;
    /* The loop thread's. */
    bool stopping;
    bool finished;
    int64_t drain_deadline_ms;
    void (*on_finished)(void *ctx);
    void *finished_ctx;
    bool listen_polled;          /* this round polls listen_fd first */
    size_t npolled;              /* then these connections, in order */
    struct conn *polled[LISTENER_MAX_CONNECTIONS];
    /* accept() failed for want of descriptors or memory: the pending
     * connection keeps the socket readable, so stop polling it until then
     * rather than spin. */
    int64_t accept_paused_until_ms;
    uint64_t events; /* the counter behind the conns' *_seq */
    struct conn conns[LISTENER_MAX_CONNECTIONS];
    struct listener_stats stats;
    /* A body buffer handed back (listener_recycle), for the next body on a
     * kept-alive connection: the platform's ~1 MB bodies land in the same
     * pages instead of fresh ones each time. */
    char *spare;
    size_t spare_cap;
};

static void conn_close(struct conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    http_request_destroy(c->req);
    c->fd = -1;
    c->req = NULL;
    c->sent_continue = false;
}

static bool conn_mid_request(const struct conn *c)
{
    return c->fd >= 0 && http_request_in_progress(c->req);
}

/* Whole-or-nothing send of a short answer. */
static bool send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        data += n;
        len -= (size_t)n;
    }
    return true;
}

static bool send_status(struct conn *c, int status, const char *reason, bool keep_alive)
{
    char buf[160];
    int n;

    n = snprintf(buf, sizeof(buf), "HTTP/1.1 %d %s\r\nContent-Length: 0\r\n%s\r\n", status, reason,
                 keep_alive ? "" : "Connection: close\r\n");
    return n > 0 && (size_t)n < sizeof(buf) && send_all(c->fd, buf, (size_t)n);
}

/* A complete request: hand the body over and answer.  Returns false when
 * the connection must be closed. */
static bool handle_request(struct listener *l, struct conn *c)
{
    const char *method = http_request_method(c->req);
    bool keep_alive = http_request_keep_alive(c->req);
    size_t len = 0;
    char *body = NULL;

    l->stats.requests++;
    if (strcmp(method, "POST") != 0 && strcmp(method, "PUT") != 0) {
        l->stats.rejected++;
        return send_status(c, 405, "Method Not Allowed", keep_alive) && keep_alive;
    }
    bool taken = http_request_take_body(c->req, &body, &len) == 0;
    /* 200 even when the body is dropped: a retry would not fare better,
     * and the drop is counted downstream.  Sent once the body is ours and
     * before it is handed over: the handler may parse it at once (the
     * event loop does), and the platform's sender must not wait on that. */
    bool ok = send_status(c, 200, "OK", keep_alive) && keep_alive;
    if (taken) {
        l->stats.bodies++;
        l->stats.body_bytes += len;
        l->on_body(body, len, l->ctx); /* takes ownership */
    }
    return ok;
}

/* Reads what is there (up to LISTENER_READ_BUDGET_BYTES a round, so one
 * sender cannot starve the others) and runs every complete request in it.
 * Returns false when the connection should be closed. */
static bool conn_readable(struct listener *l, struct conn *c)
{
    char buf[LISTENER_RECV_CHUNK_BYTES];
    size_t budget = LISTENER_READ_BUDGET_BYTES;

    if (l->spare != NULL && c->requests > 0 && !http_request_in_progress(c->req) &&
        http_request_give_body_buffer(c->req, l->spare, l->spare_cap))
        l->spare = NULL;
    while (budget > 0) {
        ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK;
        if (n == 0)
            return false; /* peer closed; a partial request is abandoned */
        budget = (size_t)n < budget ? budget - (size_t)n : 0;
        c->last_active_ms = clock_mono_ms();
        if (!http_request_in_progress(c->req)) {
            c->request_started_ms = c->last_active_ms;
            c->started_seq = ++l->events;
        }

        size_t off = 0;
        size_t len = (size_t)n;
        while (off < len) {
            size_t used = 0;
            int r = http_request_feed(c->req, buf + off, len - off, &used);
            off += used;
            if (r < 0) {
                l->stats.rejected++;
                send_status(c, http_request_error_status(r), http_request_error_reason(r), false);
                return false;
            }
            if (r == HTTP_REQUEST_INCOMPLETE) {
                if (http_request_expects_continue(c->req) && !c->sent_continue) {
                    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
                    if (!send_all(c->fd, cont, sizeof(cont) - 1))
                        return false;
                    c->sent_continue = true;
                }
                if (used == 0)
                    break;
                continue;
            }
            c->requests++;
            c->done_seq = ++l->events;
            if (!handle_request(l, c))
                return false;
            http_request_reset(c->req);
            c->sent_continue = false;
        }
        /* A short read took all there was: the next poll says when more
         * comes (one recv less per request, the one that would only have
         * said EAGAIN). */
        if ((size_t)n < sizeof(buf))
            break;
    }
    return true;
}

static struct conn *free_slot(struct listener *l)
{
    for (size_t i = 0; i < LISTENER_MAX_CONNECTIONS; i++)
        if (l->conns[i].fd < 0)
            return &l->conns[i];
    return NULL;
}

/* The connection to close for a newcomer, by the order at the top of this
 * file; NULL when that is one accepted in this round (accepted_seq >
 * round_start), which has not been polled since: the round ends, and the
 * next one may take it once it has had its chance. */
static struct conn *victim_for_new(struct listener *l, uint64_t round_start)
{
    struct conn *best = NULL;
    int best_rank = 0;
    uint64_t best_key = 0;

    for (size_t i = 0; i < LISTENER_MAX_CONNECTIONS; i++) {
        struct conn *c = &l->conns[i];
        int rank;
        uint64_t key;

        if (c->fd < 0)
            continue;
        if (c->requests == 0) {
            rank = 0;
            key = c->accepted_seq;
        } else if (!http_request_in_progress(c->req)) {
            rank = 1;
            key = UINT64_MAX - c->accepted_seq; /* the newest first */
        } else {
            rank = 2;
            key = c->started_seq;
        }
        if (best == NULL || rank < best_rank || (rank == best_rank && key < best_key)) {
            best = c;
            best_rank = rank;
            best_key = key;
        }
    }
    return best != NULL && best->accepted_seq > round_start ? NULL : best;
}

/* Closes c to make room, counted; a request cut short is told why. */
static void evict(struct listener *l, struct conn *c)
{
    l->stats.evicted++;
    if (c->requests > 0)
        l->stats.evicted_kept_alive++;
    if (http_request_in_progress(c->req))
        (void)send_status(c, 503, "Service Unavailable", false);
    conn_close(c);
}

/* Accepts every pending connection, reading each at once (a request
 * already sent is served on the spot).  Stops early when making room would
 * take a connection of this same round: the next round reads those first. */
static void accept_all(struct listener *l)
{
    uint64_t round_start = l->events;

    for (;;) {
        struct conn *slot = free_slot(l);
        struct conn *victim = NULL;
        struct http_request *req;
        int fd;

        if (slot == NULL) {
            victim = victim_for_new(l, round_start);
            if (victim == NULL)
                return;
        }
        fd = accept4(l->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                l->stats.accept_failed++;
                l->accept_paused_until_ms = clock_mono_ms() + LISTENER_ACCEPT_BACKOFF_MS;
            }
            return; /* EAGAIN, or a transient error: poll again */
        }
        l->stats.connections++;
        req = http_request_new(LISTENER_MAX_HEADER_BYTES, l->max_body_bytes);
        if (req == NULL) {
            l->stats.refused++;
            close(fd);
            continue;
        }
        if (victim != NULL) {
            evict(l, victim);
            slot = victim;
        }
        slot->fd = fd;
        slot->req = req;
        slot->sent_continue = false;
        slot->requests = 0;
        slot->accepted_seq = ++l->events;
        slot->done_seq = slot->started_seq = 0;
        slot->last_active_ms = clock_mono_ms();
        if (!conn_readable(l, slot))
            conn_close(slot);
    }
}

/* When c is to be closed for want of progress (mono ms), or -1 for never:
 * mid-request, idle too long or trickling for longer than any real sender
 * takes; before its first request, silent too long; kept alive after
 * completed requests, never (it yields its slot only to make room). */
static int64_t conn_deadline(const struct conn *c)
{
    if (http_request_in_progress(c->req)) {
        int64_t until = c->last_active_ms + LISTENER_REQUEST_IDLE_TIMEOUT_MS;
        if (c->request_started_ms + LISTENER_REQUEST_MAX_MS < until)
            until = c->request_started_ms + LISTENER_REQUEST_MAX_MS;
        return until;
    }
    return c->requests == 0 ? c->last_active_ms + LISTENER_REQUEST_IDLE_TIMEOUT_MS : -1;
}

/* Closes connections past their deadline (counted), after reading them one
 * last time: after a thaw the deadline may have passed while the bytes
 * that keep the connection alive are waiting.  Returns the poll timeout
 * (ms) until the next deadline, or -1. */
static int expire_idle(struct listener *l, int64_t now)
{
    int64_t next = -1;

    for (size_t i = 0; i < LISTENER_MAX_CONNECTIONS; i++) {
        struct conn *c = &l->conns[i];
        int64_t until;

        if (c->fd < 0 || (until = conn_deadline(c)) < 0)
            continue;
        if (now >= until) {
            if (!conn_readable(l, c)) {
                conn_close(c);
                continue;
            }
            until = conn_deadline(c);
            if (until >= 0 && now >= until) {
                l->stats.timed_out++;
                conn_close(c);
                continue;
            }
            if (until < 0)
                continue;
        }
        int64_t left = until - now;
        if (next < 0 || left < next)
            next = left;
    }
    return (int)next;
}

/* ---- the loop source ---- */

void listener_begin_stop(struct listener *l, int drain_ms)
{
    if (l->stopping)
        return;
    l->stopping = true;
    l->drain_deadline_ms = clock_mono_ms() + (drain_ms > 0 ? drain_ms : 0);
    if (l->listen_fd >= 0) {
        close(l->listen_fd);
        l->listen_fd = -1;
    }
}

bool listener_finished(const struct listener *l)
{
    return l->finished;
}

static size_t source_prepare(void *ctx, struct pollfd *fds, size_t max, int64_t now_ns, int64_t *deadline_ns)
{
    struct listener *l = ctx;
    int64_t now = now_ns / 1000000;
    int timeout = expire_idle(l, now);
    size_t n = 0;

    l->npolled = 0;
    l->listen_polled = false;
    if (l->finished)
        return 0;
    if (l->stopping) {
        bool busy = false;
        for (size_t i = 0; i < LISTENER_MAX_CONNECTIONS; i++)
            busy = busy || conn_mid_request(&l->conns[i]);
        if (!busy || now >= l->drain_deadline_ms) {
            for (size_t i = 0; i < LISTENER_MAX_CONNECTIONS; i++)
                conn_close(&l->conns[i]);
            l->finished = true;
            if (l->on_finished != NULL)
                l->on_finished(l->finished_ctx);
            return 0;
        }
        int left = (int)(l->drain_deadline_ms - now);
        if (timeout < 0 || left < timeout)
            timeout = left;
    } else if (now < l->accept_paused_until_ms) {
        int left = (int)(l->accept_paused_until_ms - now);
        if (timeout < 0 || left < timeout)
            timeout = left;
    } else if (max > n) {
        fds[n++] = (struct pollfd){.fd = l->listen_fd, .events = POLLIN};
        l->listen_polled = true;
    }
    for (size_t i = 0; i < LISTENER_MAX_CONNECTIONS && n < max; i++) {
        if (l->conns[i].fd < 0)
            continue;
        fds[n] = (struct pollfd){.fd = l->conns[i].fd, .events = POLLIN};
        l->polled[l->npolled++] = &l->conns[i];
        n++;
    }
    if (timeout >= 0) {
        int64_t at = now_ns + (int64_t)timeout * 1000000;
        if (*deadline_ns < 0 || at < *deadline_ns)
            *deadline_ns = at;
    }
    return n;
}

static void source_dispatch(void *ctx, struct pollfd *fds, size_t n, int64_t now_ns)
{
    struct listener *l = ctx;
    size_t first = l->listen_polled ? 1 : 0;
    bool accept_ready = l->listen_polled && n > 0 && fds[0].revents != 0;

    (void)now_ns;
    /* Connections first, new ones last: a request that has arrived is
     * read before a newcomer can take its slot. */
    for (size_t i = first; i < n && i - first < l->npolled; i++) {
        struct conn *c = l->polled[i - first];
        if (fds[i].revents == 0 || c->fd != fds[i].fd)
            continue;
        if (!conn_readable(l, c))
            conn_close(c);
    }
    if (accept_ready && !l->stopping && l->listen_fd >= 0)
        accept_all(l);
}

const struct loop_source_ops listener_source_ops = {source_prepare, source_dispatch};

void listener_recycle(struct listener *l, char *body)
{
    size_t cap;

    if (l == NULL || body == NULL) {
        free(body);
        return;
    }
    cap = malloc_usable_size(body);
    /* One spare, the largest, never over what one body may need. */
    if (cap > l->max_body_bytes + 1 || cap <= l->spare_cap) {
        free(body);
        return;
    }
    free(l->spare);
    l->spare = body;
    l->spare_cap = cap;
}

void listener_set_body_fn(struct listener *l, listener_body_fn fn, void *ctx)
{
    l->on_body = fn;
    l->ctx = ctx;
}

void listener_on_finished(struct listener *l, void (*fn)(void *ctx), void *ctx)
{
    l->on_finished = fn;
    l->finished_ctx = ctx;
}

/* ---- the listener's own thread (listener_start) ---- */

static void thread_finished(void *ctx)
{
    struct listener *l = ctx;

    loop_quit(l->own_loop);
}

static void thread_woken(void *ctx)
{
    struct listener *l = ctx;

    listener_begin_stop(l, atomic_load(&l->drain_ms));
}

static void *listener_main(void *arg)
{
    struct listener *l = arg;

    loop_run(l->own_loop);
    return NULL;
}

/* Fills addr with what host resolves to, or loopback.  Returns true when
 * it fell back. */
static bool resolve_bind_address(const char *host, uint16_t port, struct sockaddr_storage *addr,
                                 socklen_t *addr_len)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    bool fell_back = true;

    memset(addr, 0, sizeof(*addr));
    if (host != NULL && getaddrinfo(host, NULL, &hints, &res) == 0 && res != NULL &&
        res->ai_addrlen <= sizeof(*addr)) {
        memcpy(addr, res->ai_addr, res->ai_addrlen);
        *addr_len = res->ai_addrlen;
        fell_back = false;
    }
    if (res != NULL)
        freeaddrinfo(res);
    if (fell_back) {
        struct sockaddr_in *in = (struct sockaddr_in *)addr;
        in->sin_family = AF_INET;
        in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        *addr_len = sizeof(*in);
    }
    if (addr->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)addr)->sin6_port = htons(port);
    else
        ((struct sockaddr_in *)addr)->sin_port = htons(port);
    return fell_back;
}

int listener_open(const struct listener_options *opts, struct listener **ret, int *ret_fell_back)
{
    struct listener *l;
    struct sockaddr_storage addr;
    socklen_t addr_len = 0;
    int one = 1;
    int r;
    bool fell_back;

    l = calloc(1, sizeof(*l));
    if (l == NULL)
        return -ENOMEM;
    l->listen_fd = -1;
    l->max_body_bytes = opts->max_body_bytes;
    l->on_body = opts->on_body;
    l->ctx = opts->ctx;
    for (size_t i = 0; i < LISTENER_MAX_CONNECTIONS; i++)
        l->conns[i].fd = -1;

    fell_back = resolve_bind_address(opts->host, opts->port, &addr, &addr_len);
    l->listen_fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (l->listen_fd < 0) {
        r = -errno;
        goto fail;
    }
    /* A configured port is bound again by the next process after a reset,
     * while the old connections wait in TIME_WAIT; a port of the kernel's
     * choice (0) needs neither this nor more than asking which it is. */
    if (opts->port != 0)
        (void)setsockopt(l->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(l->listen_fd, (struct sockaddr *)&addr, addr_len) < 0 ||
        listen(l->listen_fd, LISTENER_LISTEN_BACKLOG) < 0) {
        r = -errno;
        goto fail;
    }
    l->port = opts->port;
    addr_len = sizeof(addr);
    if (l->port == 0 && getsockname(l->listen_fd, (struct sockaddr *)&addr, &addr_len) < 0) {
        r = -errno;
        goto fail;
    }
    if (l->port == 0)
        l->port = ntohs(addr.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&addr)->sin6_port
                                                   : ((struct sockaddr_in *)&addr)->sin_port);
    if (ret_fell_back != NULL)
        *ret_fell_back = fell_back;
    *ret = l;
    return 0;

fail:
    if (l->listen_fd >= 0)
        close(l->listen_fd);
    free(l);
    return r;
}

void listener_get_stats(const struct listener *l, struct listener_stats *ret)
{
    *ret = l->stats;
}

void listener_close(struct listener *l, struct listener_stats *ret_stats)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < LISTENER_MAX_CONNECTIONS; i++)
        conn_close(&l->conns[i]);
    if (ret_stats != NULL)
        *ret_stats = l->stats;
    if (l->listen_fd >= 0)
        close(l->listen_fd);
    free(l->spare);
    loop_destroy(l->own_loop);
    free(l);
}

int listener_start(const struct listener_options *opts, struct listener **ret, int *ret_fell_back)
{
    struct listener *l = NULL;
    int r = listener_open(opts, &l, ret_fell_back);

    if (r < 0)
        return r;
    listener_on_finished(l, thread_finished, l);
    r = loop_new(thread_woken, l, &l->own_loop);
    if (r == 0)
        r = loop_add_source(l->own_loop, &listener_source_ops, l);
    if (r == 0)
        r = -pthread_create(&l->thread, NULL, listener_main, l);
    if (r < 0) {
        listener_close(l, NULL);
        return r;
    }
    l->thread_started = true;
    *ret = l;
    return 0;
}

uint16_t listener_port(const struct listener *l)
{
    return l->port;
}

void listener_stop(struct listener *l, int drain_ms, struct listener_stats *ret_stats)
{
    if (l == NULL)
        return;
    if (l->thread_started) {
        atomic_store(&l->drain_ms, drain_ms < 0 ? 0 : drain_ms);
        loop_wake(l->own_loop);
        pthread_join(l->thread, NULL);
    }
    listener_close(l, ret_stats);
}
