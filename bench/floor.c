/*
 * floor.c - the least an external Lambda extension can do, as a benchmark
 * reference: register for INVOKE and SHUTDOWN, loop on /event/next, exit 0
 * on SHUTDOWN.  Whatever lambda-tracer costs beyond this program is the
 * cost of tracing; what this program costs is the cost of being an
 * extension at all.
 *
 * Plain sockets, one kept-alive connection to the Extensions API, no JSON
 * parser (the event type is found by a substring search), no threads.
 *
 * With BENCH_FLOOR_LISTEN=1 it also subscribes to platform telemetry and
 * receives it on a loopback listener that reads each request and answers
 * 200 without looking at the body: the floor of telemetry ingest (what
 * receiving the bytes over loopback costs before anyone parses them).
 * The listener runs on a second thread, as a telemetry extension's would.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define FLOOR_RESPONSE_MAX_BYTES (64 * 1024)
#define FLOOR_LISTEN_CONNECTIONS 16
/* Telemetry bodies are at most 2 x 1 MiB plus slack; the listener only
 * needs room for one request's headers, the body is read and dropped. */
#define FLOOR_LISTEN_BUFFER_BYTES (64 * 1024)

struct api {
    char host[64];
    unsigned short port;
    int fd;
    char id[128];
};

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash != NULL ? slash + 1 : path;
}

static int api_connect(struct api *a)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(a->port)};
    int one = 1;

    if (a->fd >= 0)
        return 0;
    if (inet_pton(AF_INET, a->host, &sa.sin_addr) != 1)
        return -EINVAL;
    a->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (a->fd < 0)
        return -errno;
    (void)setsockopt(a->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(a->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        close(a->fd);
        a->fd = -1;
        return -e;
    }
    return 0;
}

static void api_drop(struct api *a)
{
    if (a->fd >= 0)
        close(a->fd);
    a->fd = -1;
}

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -EIO;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Finds header `name` in the header block [head, head+len); copies its
 * value into out (NUL-terminated).  0 or -ENOENT. */
static int header_value(const char *head, size_t len, const char *name, char *out, size_t out_size)
{
    size_t nlen = strlen(name);
    const char *p = head;
    const char *end = head + len;

    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            eol = end;
        if ((size_t)(eol - p) > nlen + 1 && strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
            const char *v = p + nlen + 1;
            size_t n;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            n = (size_t)(eol - v);
            while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == ' '))
                n--;
            if (n >= out_size)
                n = out_size - 1;
            memcpy(out, v, n);
            out[n] = '\0';
            return 0;
        }
        p = eol + 1;
    }
    return -ENOENT;
}

/* One request/response on the kept-alive connection.  The response body
 * (NUL-terminated) goes to buf; returns the HTTP status or a negative errno. */
static int api_call(struct api *a, const char *method, const char *path, const char *extra_headers,
                    const char *body, char *buf, size_t buf_size)
{
    char req[1024];
    size_t have = 0;
    char *head_end = NULL;
    char value[64];
    size_t body_len;
    int n, status;

    n = snprintf(req, sizeof(req),
                 "%s %s HTTP/1.1\r\nHost: %s:%u\r\n%sContent-Length: %zu\r\n\r\n", method, path,
                 a->host, (unsigned)a->port, extra_headers, body != NULL ? strlen(body) : 0);
    if (n < 0 || (size_t)n >= sizeof(req))
        return -EINVAL;
    if (api_connect(a) < 0)
        return -ECONNREFUSED;
    if (write_all(a->fd, req, (size_t)n) < 0 || (body != NULL && write_all(a->fd, body, strlen(body)) < 0))
        goto broken;
    while (head_end == NULL) {
        ssize_t r;
        if (have + 1 >= buf_size)
            goto broken;
        r = read(a->fd, buf + have, buf_size - 1 - have);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            goto broken;
        have += (size_t)r;
        buf[have] = '\0';
        head_end = strstr(buf, "\r\n\r\n");
    }
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
        goto broken;
    if (strcmp(path, "/2020-01-01/extension/register") == 0)
        (void)header_value(buf, (size_t)(head_end - buf), "Lambda-Extension-Identifier", a->id,
                           sizeof(a->id));
    if (header_value(buf, (size_t)(head_end - buf), "Content-Length", value, sizeof(value)) < 0)
        goto broken;
    body_len = strtoul(value, NULL, 10);
    {
        size_t head_len = (size_t)(head_end + 4 - buf);
        size_t got = have - head_len;
        if (body_len >= buf_size)
            goto broken;
        memmove(buf, head_end + 4, got);
        while (got < body_len) {
            ssize_t r = read(a->fd, buf + got, body_len - got);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                goto broken;
            got += (size_t)r;
        }
        buf[body_len] = '\0';
    }
    return status;

broken:
    api_drop(a);
    return -EIO;
}

/* --- the optional telemetry listener ------------------------------------- */

struct conn {
    int fd;
    size_t have;       /* bytes of header read so far */
    size_t body_left;  /* body bytes still to discard */
    char head[FLOOR_LISTEN_BUFFER_BYTES];
};

static struct conn conns[FLOOR_LISTEN_CONNECTIONS];

static void conn_close(struct conn *c)
{
    close(c->fd);
    c->fd = -1;
}

/* Reads what the connection has: headers until the blank line, then the
 * body by Content-Length, discarded; answers 200 after each request. */
static void conn_read(struct conn *c)
{
    static char sink[FLOOR_LISTEN_BUFFER_BYTES];
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

    if (c->body_left > 0) {
        ssize_t r = read(c->fd, sink, c->body_left < sizeof(sink) ? c->body_left : sizeof(sink));
        if (r <= 0) {
            conn_close(c);
            return;
        }
        c->body_left -= (size_t)r;
        if (c->body_left == 0 && write_all(c->fd, ok, sizeof(ok) - 1) < 0)
            conn_close(c);
        return;
    }
    ssize_t r = read(c->fd, c->head + c->have, sizeof(c->head) - 1 - c->have);
    if (r <= 0) {
        conn_close(c);
        return;
    }
    c->have += (size_t)r;
    c->head[c->have] = '\0';
    char *end = strstr(c->head, "\r\n\r\n");
    if (end == NULL) {
        if (c->have + 1 >= sizeof(c->head))
            conn_close(c);
        return;
    }
    char value[32];
    size_t head_len = (size_t)(end + 4 - c->head);
    size_t body_len = 0;
    if (header_value(c->head, head_len, "Content-Length", value, sizeof(value)) == 0)
        body_len = strtoul(value, NULL, 10);
    size_t extra = c->have - head_len; /* body bytes read with the headers */
    if (extra > body_len) {
        /* A pipelined request follows: not sent by Lambda, not supported here. */
        conn_close(c);
        return;
    }
    c->body_left = body_len - extra;
    c->have = 0;
    if (c->body_left == 0 && write_all(c->fd, ok, sizeof(ok) - 1) < 0)
        conn_close(c);
}

static void *listen_main(void *arg)
{
    int lfd = *(int *)arg;
    struct pollfd pfd[FLOOR_LISTEN_CONNECTIONS + 1];

    for (size_t i = 0; i < FLOOR_LISTEN_CONNECTIONS; i++)
        conns[i].fd = -1;
    for (;;) {
        nfds_t n = 0;
        pfd[n++] = (struct pollfd){.fd = lfd, .events = POLLIN};
        for (size_t i = 0; i < FLOOR_LISTEN_CONNECTIONS; i++)
            pfd[n++] = (struct pollfd){.fd = conns[i].fd, .events = POLLIN};
        if (poll(pfd, n, -1) < 0) {
            if (errno == EINTR)
                continue;
            return NULL;
        }
        if (pfd[0].revents & POLLIN) {
            int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
            size_t i = 0;
            while (fd >= 0 && i < FLOOR_LISTEN_CONNECTIONS && conns[i].fd >= 0)
                i++;
            if (fd >= 0 && i == FLOOR_LISTEN_CONNECTIONS)
                close(fd);
            else if (fd >= 0)
                conns[i] = (struct conn){.fd = fd};
        }
        for (size_t i = 0; i < FLOOR_LISTEN_CONNECTIONS; i++) {
            if (conns[i].fd >= 0 && (pfd[i + 1].revents & (POLLIN | POLLHUP | POLLERR)))
                conn_read(&conns[i]);
        }
    }
}

/* Binds 127.0.0.1 on a kernel-chosen port, starts the reader thread and
 * subscribes to platform telemetry there.  0 or a negative errno. */
static int start_listener(struct api *a, char *buf, size_t buf_size)
{
    static int lfd;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    pthread_t t;
    char headers[256];
    char body[512];
    int status;

    lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 16) < 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &sl) < 0)
        return -errno;
    if (pthread_create(&t, NULL, listen_main, &lfd) != 0)
        return -EAGAIN;
    snprintf(headers, sizeof(headers),
             "Lambda-Extension-Identifier: %s\r\nContent-Type: application/json\r\n", a->id);
    snprintf(body, sizeof(body),
             "{\"schemaVersion\":\"2022-12-13\",\"types\":[\"platform\"],"
             "\"buffering\":{\"maxItems\":1000,\"maxBytes\":262144,\"timeoutMs\":25},"
             "\"destination\":{\"protocol\":\"HTTP\",\"URI\":\"http://sandbox.localdomain:%u/\"}}",
             (unsigned)ntohs(sa.sin_port));
    status = api_call(a, "PUT", "/2022-07-01/telemetry", headers, body, buf, buf_size);
    return status == 200 || status == 202 ? 0 : -EPROTO;
}

int main(int argc, char **argv)
{
    static char buf[FLOOR_RESPONSE_MAX_BYTES];
    const char *name = argc > 0 ? base_name(argv[0]) : "floor";
    const char *rt_api = getenv("AWS_LAMBDA_RUNTIME_API");
    const char *listen_flag = getenv("BENCH_FLOOR_LISTEN");
    struct api a = {.fd = -1};
    char headers[256];
    const char *colon;
    int status;

    signal(SIGPIPE, SIG_IGN);
    if (rt_api == NULL || (colon = strchr(rt_api, ':')) == NULL ||
        (size_t)(colon - rt_api) >= sizeof(a.host)) {
        fprintf(stderr, "%s: AWS_LAMBDA_RUNTIME_API is not host:port\n", name);
        return 1;
    }
    memcpy(a.host, rt_api, (size_t)(colon - rt_api));
    a.port = (unsigned short)strtoul(colon + 1, NULL, 10);

    snprintf(headers, sizeof(headers), "Lambda-Extension-Name: %s\r\n", name);
    status = api_call(&a, "POST", "/2020-01-01/extension/register", headers,
                      "{\"events\":[\"INVOKE\",\"SHUTDOWN\"]}", buf, sizeof(buf));
    if (status != 200 || a.id[0] == '\0') {
        fprintf(stderr, "%s: register failed (%d)\n", name, status);
        return 1;
    }
    if (listen_flag != NULL && strcmp(listen_flag, "1") == 0 && start_listener(&a, buf, sizeof(buf)) < 0) {
        fprintf(stderr, "%s: telemetry listener failed\n", name);
        return 1;
    }
    snprintf(headers, sizeof(headers), "Lambda-Extension-Identifier: %s\r\n", a.id);
    for (int failures = 0; failures < 5;) {
        status = api_call(&a, "GET", "/2020-01-01/extension/event/next", headers, NULL, buf, sizeof(buf));
        if (status < 0) {
            /* a kept-alive connection reset across a freeze: reconnect */
            failures++;
            continue;
        }
        if (status != 200) {
            fprintf(stderr, "%s: /event/next answered %d\n", name, status);
            return 1;
        }
        failures = 0;
        if (strstr(buf, "\"SHUTDOWN\"") != NULL)
            return 0;
    }
    fprintf(stderr, "%s: /event/next keeps failing\n", name);
    return 1;
}
