/*
 * apihttp.c - see apihttp.h.
 */
#include "apihttp.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
/* Only its pure header-value helper (shared, not duplicated: the layer's
 * zip has a 500 KB budget); no libcurl here. */
#include "http_client.h"
#include "ids.h"
#include "limits.h"

struct apihttp {
    int fd;                  /* the kept connection, -1 when none */
    long connect_timeout_ms;
    long rcv_timeout_ms;     /* SO_RCVTIMEO as last set on fd (0: none, a new socket's) */
    char host[CONFIG_HOST_MAX];
    char port[8];
    char authority[CONFIG_RUNTIME_API_MAX]; /* the Host header's value */
    size_t max_body_bytes;
    size_t cap;              /* bytes of buf an answer may fill; one more is kept for the NUL */
    char buf[];              /* the request head, then the answer */
};

/* Chunk framing a server may add around a body of max_body_bytes (Go's
 * net/http writes chunks of up to 4 KB or so: ~8 bytes each). */
#define APIHTTP_FRAMING_SLACK_BYTES 4096
/* A chunk-size line (size, extensions) longer than this is not HTTP. */
#define APIHTTP_CHUNK_LINE_MAX 256
/* Once an answer has begun, the rest of it comes at once (the API writes
 * an event whole): a request without a timeout (/event/next waits for the
 * next event as long as it takes) gets this long for the rest, so a server
 * that stops mid-answer with the connection open does not hold us forever. */
#define APIHTTP_REST_OF_ANSWER_MS 2000

int apihttp_new(const char *host_port, long connect_timeout_ms, size_t max_body_bytes,
                struct apihttp **ret)
{
    struct apihttp *c;
    char host[CONFIG_HOST_MAX];
    uint16_t port;
    size_t cap;

    if (host_port == NULL || !config_runtime_api_valid(host_port) ||
        config_parse_host_port(host_port, host, sizeof(host), &port) < 0 || max_body_bytes == 0 ||
        max_body_bytes > EXTAPI_MAX_EVENT_BYTES)
        return -EINVAL;
    cap = EXTAPI_MAX_HEAD_BYTES + max_body_bytes + APIHTTP_FRAMING_SLACK_BYTES;
    /* Not calloc: the buffer's pages are only touched as answers fill them. */
    c = malloc(sizeof(*c) + cap + 1);
    if (c == NULL)
        return -ENOMEM;
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->connect_timeout_ms = connect_timeout_ms;
    c->max_body_bytes = max_body_bytes;
    c->cap = cap;
    snprintf(c->host, sizeof(c->host), "%s", host);
    snprintf(c->port, sizeof(c->port), "%u", (unsigned)port);
    snprintf(c->authority, sizeof(c->authority), "%s", host_port);
    *ret = c;
    return 0;
}

void apihttp_disconnect(struct apihttp *client)
{
    if (client != NULL && client->fd >= 0) {
        close(client->fd);
        client->fd = -1;
        client->rcv_timeout_ms = 0;
    }
}

void apihttp_destroy(struct apihttp *client)
{
    if (client == NULL)
        return;
    apihttp_disconnect(client);
    free(client);
}

static void set_detail(char *detail, size_t size, const char *what, int err)
{
    if (detail == NULL || size == 0)
        return;
    if (err != 0)
        snprintf(detail, size, "%s: %s", what, strerror(err));
    else
        snprintf(detail, size, "%s", what);
}

static int set_timeout(int fd, int opt, long ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

    return setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof(tv)) < 0 ? -errno : 0;
}

/* The end of a connect that was interrupted.  0 or a negative errno. */
static int wait_connected(int fd, long timeout_ms)
{
    struct pollfd pfd = {.fd = fd, .events = POLLOUT};
    int err = 0;
    socklen_t err_len = sizeof(err);
    int n;

    do
        n = poll(&pfd, 1, timeout_ms > 0 ? (int)timeout_ms : -1);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    if (n == 0)
        return -ETIMEDOUT;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len) < 0)
        return -errno;
    return err != 0 ? -err : 0;
}

/* A blocking connect to one address, bounded by SO_SNDTIMEO (which then
 * bounds every send too).  Returns the descriptor or a negative errno. */
static int connect_to(const struct apihttp *c, const struct sockaddr *sa, socklen_t len)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int r;

    if (fd < 0)
        return -errno;
    if (c->connect_timeout_ms > 0 && (r = set_timeout(fd, SO_SNDTIMEO, c->connect_timeout_ms)) < 0)
        goto fail;
    if (connect(fd, sa, len) < 0) {
        if (errno == EINTR) {
            /* Interrupted (a stop signal, with SO_SNDTIMEO set): the
             * connect goes on by itself; calling it again would say
             * EALREADY.  Wait for its end instead. */
            r = wait_connected(fd, c->connect_timeout_ms);
            if (r < 0)
                goto fail;
            return fd;
        }
        /* A blocking connect cut by SO_SNDTIMEO says EINPROGRESS. */
        r = errno == EINPROGRESS || errno == EAGAIN ? -ETIMEDOUT : -errno;
        goto fail;
    }
    return fd;
fail:
    close(fd);
    return r;
}

/* Resolved at each connect (once in Init, again only after a reset): an
 * address literal, what Lambda gives, costs musl's getaddrinfo no system
 * call. */
static int open_connection(struct apihttp *c, char *detail, size_t detail_size)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *list = NULL;
    int r;

    r = getaddrinfo(c->host, c->port, &hints, &list);
    if (r != 0) {
        /* Not gai_strerror: its table of messages would weigh on the zip. */
        set_detail(detail, detail_size, "host does not resolve", 0);
        return -ECONNREFUSED;
    }
    r = -ECONNREFUSED;
    for (const struct addrinfo *ai = list; ai != NULL; ai = ai->ai_next) {
        r = connect_to(c, ai->ai_addr, ai->ai_addrlen);
        if (r >= 0)
            break;
    }
    freeaddrinfo(list);
    if (r < 0) {
        set_detail(detail, detail_size, "connect", -r);
        /* As libcurl did: any failure to connect but a timeout is a refusal
         * (the callers retry both the same way). */
        return r == -ETIMEDOUT ? r : -ECONNREFUSED;
    }
    c->fd = r;
    c->rcv_timeout_ms = 0;
    return 0;
}

/* The request (head, then body) into c->buf.  Returns its length, or
 * -ENOBUFS. */
static int build_request(struct apihttp *c, const struct apihttp_request *req)
{
    size_t body_len = req->body != NULL ? req->body_len : 0;
    int n;

    n = snprintf(c->buf, c->cap, "%s %s HTTP/1.1\r\nHost: %s\r\n%s", req->method, req->path,
                 c->authority, req->headers != NULL ? req->headers : "");
    if (n < 0 || (size_t)n >= c->cap)
        return -ENOBUFS;
    if (req->body != NULL || strcmp(req->method, "GET") != 0) {
        int m = snprintf(c->buf + n, c->cap - (size_t)n, "Content-Length: %zu\r\n", body_len);
        if (m < 0 || (size_t)m >= c->cap - (size_t)n)
            return -ENOBUFS;
        n += m;
    }
    if ((size_t)n + 2 + body_len > c->cap)
        return -ENOBUFS;
    memcpy(c->buf + n, "\r\n", 2);
    n += 2;
    if (body_len > 0)
        memcpy(c->buf + n, req->body, body_len);
    return n + (int)body_len;
}

/* The request built in buf (head and body: one system call; our bodies are
 * a few hundred bytes). */
static int send_request(struct apihttp *c, size_t len)
{
    size_t sent = 0;

    while (sent < len) {
        ssize_t n = send(c->fd, c->buf + sent, len - sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
        }
        sent += (size_t)n;
    }
    return 0;
}

/* One try on the current or a new connection.  *ret_stale: it failed
 * before a single byte of answer came on a connection that had served
 * earlier requests (the server closed it meanwhile): worth one more try. */
static int exchange(struct apihttp *c, const struct apihttp_request *req, size_t request_len,
                    struct apihttp_response *ret, char *detail, size_t detail_size, bool *ret_stale,
                    bool *sent_called)
{
    bool reused = c->fd >= 0;
    int64_t deadline_ns = req->timeout_ms > 0 ? clock_mono_ns() + (int64_t)req->timeout_ms * 1000000 : 0;
    size_t len = 0;
    int r;

    *ret_stale = false;
    if (!reused && (r = open_connection(c, detail, detail_size)) < 0)
        return r;
    /* The request was built in buf; the answer overwrites it once sent. */
    r = send_request(c, request_len);
    if (r < 0) {
        *ret_stale = reused && r != -ETIMEDOUT;
        set_detail(detail, detail_size, "send", -r);
        return r == -ETIMEDOUT ? r : -ECONNRESET;
    }
    if (req->sent != NULL && !*sent_called) {
        *sent_called = true;
        req->sent(req->sent_ctx);
    }
    /* SO_RCVTIMEO only bounds the receive: set once the request is out. */
    if (req->timeout_ms != c->rcv_timeout_ms) {
        if ((r = set_timeout(c->fd, SO_RCVTIMEO, req->timeout_ms)) < 0) {
            set_detail(detail, detail_size, "setsockopt", -r);
            return -EIO;
        }
        c->rcv_timeout_ms = req->timeout_ms;
    }
    for (;;) {
        struct apihttp_parsed parsed;
        ssize_t n;

        if (len == c->cap) {
            set_detail(detail, detail_size, "answer larger than the buffer", 0);
            return -EMSGSIZE;
        }
        n = recv(c->fd, c->buf + len, c->cap - len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                set_detail(detail, detail_size, "timed out waiting for the answer", 0);
                return -ETIMEDOUT;
            }
            *ret_stale = reused && len == 0;
            set_detail(detail, detail_size, "recv", errno);
            return errno == ECONNRESET || errno == EPIPE ? -ECONNRESET : -EIO;
        }
        if (n == 0 && len == 0) {
            *ret_stale = reused;
            set_detail(detail, detail_size, "connection closed before an answer", 0);
            return -ECONNRESET;
        }
        len += (size_t)n;
        r = apihttp_parse_response(c->buf, len, n == 0, EXTAPI_MAX_HEAD_BYTES, req->max_body_bytes,
                                   req->capture_header, ret, &parsed);
        if (r == 1) {
            if (!parsed.keep_alive)
                apihttp_disconnect(c);
            return 0;
        }
        if (r < 0) {
            set_detail(detail, detail_size,
                       r == -EMSGSIZE     ? "answer over the size limit"
                       : r == -EPROTO     ? "answer is not HTTP/1.x"
                                          : "connection closed in the middle of the answer",
                       0);
            return r == -EPROTO ? -EIO : r;
        }
        if (deadline_ns == 0) {
            deadline_ns = clock_mono_ns() + (int64_t)APIHTTP_REST_OF_ANSWER_MS * 1000000;
            if ((r = set_timeout(c->fd, SO_RCVTIMEO, APIHTTP_REST_OF_ANSWER_MS)) < 0) {
                set_detail(detail, detail_size, "setsockopt", -r);
                return -EIO;
            }
            c->rcv_timeout_ms = APIHTTP_REST_OF_ANSWER_MS;
        } else {
            /* More to read: what is left of the total timeout. */
            int64_t left_ms = (deadline_ns - clock_mono_ns()) / 1000000;
            if (left_ms <= 0) {
                set_detail(detail, detail_size, "timed out waiting for the answer", 0);
                return -ETIMEDOUT;
            }
            if ((r = set_timeout(c->fd, SO_RCVTIMEO, (long)left_ms)) < 0) {
                set_detail(detail, detail_size, "setsockopt", -r);
                return -EIO;
            }
            c->rcv_timeout_ms = (long)left_ms;
        }
    }
}

int apihttp_perform(struct apihttp *client, const struct apihttp_request *req,
                    struct apihttp_response *ret, char *detail, size_t detail_size)
{
    bool sent_called = false;
    int r = -EIO;

    memset(ret, 0, sizeof(*ret));
    if (detail != NULL && detail_size > 0)
        detail[0] = '\0';
    if (req->method == NULL || req->path == NULL || req->max_body_bytes > client->max_body_bytes ||
        req->timeout_ms < 0)
        return -EINVAL;
    for (int attempt = 0; attempt < 2; attempt++) {
        bool stale;
        /* Built again for the second try: the first answer's bytes overwrote it. */
        int len = build_request(client, req);

        if (len < 0)
            return -EINVAL;
        r = exchange(client, req, (size_t)len, ret, detail, detail_size, &stale, &sent_called);
        if (r == 0)
            return 0;
        apihttp_disconnect(client);
        memset(ret, 0, sizeof(*ret));
        if (!stale)
            break;
    }
    return r;
}

/* ----------------------------------------------------------- the parser */

static bool is_tchar(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* A header's value without surrounding blanks: [*ret_v, *ret_v + *ret_n). */
static void header_value_span(const char *line, size_t n, size_t name_len, const char **ret_v, size_t *ret_n)
{
    const char *v = line + name_len + 1;
    size_t vlen = n - name_len - 1;

    while (vlen > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        vlen--;
    }
    while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
        vlen--;
    *ret_v = v;
    *ret_n = vlen;
}

static bool name_is(const char *line, size_t name_len, const char *name)
{
    return strlen(name) == name_len && strncasecmp(line, name, name_len) == 0;
}

struct head {
    long status;
    bool http10;
    bool close;
    bool chunked;
    bool has_length;
    uint64_t length;
    size_t len; /* bytes, blank line included */
};

/* The header section at buf[0..len): 1 (complete, *ret filled), 0 (more
 * needed), -EPROTO, -EMSGSIZE. */
static int parse_head(const char *buf, size_t len, size_t max_head, const char *capture,
                      char *captured, size_t captured_size, struct head *ret)
{
    static const char prefix[] = "HTTP/1.";
    const char *p = buf;
    const char *end = buf + len;
    bool first = true;

    memset(ret, 0, sizeof(*ret));
    /* Garbage shows in its first bytes: no waiting for a line end. */
    if (memcmp(buf, prefix, len < sizeof(prefix) - 1 ? len : sizeof(prefix) - 1) != 0)
        return -EPROTO;
    for (;;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n;

        if (nl == NULL)
            return (size_t)(end - buf) > max_head ? -EMSGSIZE : 0;
        if ((size_t)(nl + 1 - buf) > max_head)
            return -EMSGSIZE;
        n = (size_t)(nl - p);
        if (n > 0 && p[n - 1] == '\r')
            n--;
        if (first) {
            /* HTTP/1.x SP 3DIGIT [SP reason] */
            if (n < 12 || memcmp(p, prefix, sizeof(prefix) - 1) != 0 || (p[7] != '0' && p[7] != '1') ||
                p[8] != ' ' || p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' ||
                p[11] > '9' || (n > 12 && p[12] != ' '))
                return -EPROTO;
            ret->http10 = p[7] == '0';
            ret->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
            first = false;
        } else if (n == 0) {
            ret->len = (size_t)(nl + 1 - buf);
            return 1;
        } else {
            const char *colon = memchr(p, ':', n);
            const char *v;
            size_t name_len;
            size_t vlen;

            if (colon == NULL || colon == p)
                return -EPROTO; /* also a folded line (leading blank): obsolete */
            name_len = (size_t)(colon - p);
            for (size_t i = 0; i < name_len; i++)
                if (!is_tchar((unsigned char)p[i]))
                    return -EPROTO;
            header_value_span(p, n, name_len, &v, &vlen);
            if (name_is(p, name_len, "Content-Length")) {
                uint64_t value = 0;
                if (vlen == 0 || vlen > 18)
                    return -EPROTO;
                for (size_t i = 0; i < vlen; i++) {
                    if (v[i] < '0' || v[i] > '9')
                        return -EPROTO;
                    value = value * 10 + (uint64_t)(v[i] - '0');
                }
                /* Two that disagree: which one frames the body is anyone's guess. */
                if (ret->has_length && ret->length != value)
                    return -EPROTO;
                ret->has_length = true;
                ret->length = value;
            } else if (name_is(p, name_len, "Transfer-Encoding")) {
                /* We ask for no coding: chunked is the only one we take. */
                if (vlen != 7 || strncasecmp(v, "chunked", 7) != 0)
                    return -EPROTO;
                ret->chunked = true;
            } else if (name_is(p, name_len, "Connection")) {
                for (size_t i = 0; i + 5 <= vlen; i++)
                    if (strncasecmp(v + i, "close", 5) == 0)
                        ret->close = true;
            }
            if (capture != NULL && captured[0] == '\0')
                (void)http_client_header_value(p, n, capture, captured, captured_size);
        }
        p = nl + 1;
    }
}

/* Walks a chunked body at buf[0..len): 1 when it is all there (then, with
 * decode, moves the data together at buf and sets *ret_body_len and
 * *ret_consumed), 0 for more, or -EPROTO, -EMSGSIZE, -ECONNRESET (eof). */
static int walk_chunks(char *buf, size_t len, bool eof, size_t max_body, size_t max_trailer,
                       bool decode, size_t *ret_body_len, size_t *ret_consumed)
{
    const char *end = buf + len;
    char *p = buf;
    const char *trailer;
    size_t out = 0;
    int more = eof ? -ECONNRESET : 0;

    for (;;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        uint64_t size = 0;
        size_t digits = 0;
        const char *q = p;

        if (nl == NULL)
            return (size_t)(end - p) > APIHTTP_CHUNK_LINE_MAX ? -EPROTO : more;
        if (nl - p > APIHTTP_CHUNK_LINE_MAX)
            return -EPROTO;
        for (; q < nl; q++, digits++) {
            int d = ids_hex_value(*q);
            if (d < 0)
                break;
            size = size * 16 + (uint64_t)d;
            if (size > max_body)
                return -EMSGSIZE;
        }
        /* After the size: blanks, an extension (";name=value") or the line end. */
        if (digits == 0 || (q < nl && *q != ';' && *q != ' ' && *q != '\t' && *q != '\r'))
            return -EPROTO;
        p = (char *)nl + 1;
        if (size == 0)
            break;
        if (out + size > max_body)
            return -EMSGSIZE;
        if ((uint64_t)(end - p) < size + 1)
            return more;
        if (decode)
            memmove(buf + out, p, size);
        out += size;
        p += size;
        if (*p == '\r') {
            if (p + 1 == end)
                return more;
            p++;
        }
        if (*p != '\n')
            return -EPROTO;
        p++;
    }
    /* Trailer fields (ignored) up to a blank line. */
    trailer = p;
    for (;;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n;

        if (nl == NULL)
            return (size_t)(end - trailer) > max_trailer ? -EMSGSIZE : more;
        n = (size_t)(nl - p);
        if (n > 0 && p[n - 1] == '\r')
            n--;
        p = (char *)nl + 1;
        if ((size_t)(p - trailer) > max_trailer)
            return -EMSGSIZE;
        if (n == 0)
            break;
    }
    *ret_body_len = out;
    *ret_consumed = (size_t)(p - buf);
    return 1;
}

int apihttp_parse_response(char *buf, size_t len, bool eof, size_t max_head_bytes,
                           size_t max_body_bytes, const char *capture_header,
                           struct apihttp_response *ret, struct apihttp_parsed *parsed)
{
    struct head h;
    size_t start = 0;
    size_t body_len;
    size_t consumed;
    int r;

    memset(ret, 0, sizeof(*ret));
    memset(parsed, 0, sizeof(*parsed));
    for (;;) {
        ret->captured[0] = '\0';
        if (len == start)
            return eof ? -ECONNRESET : 0;
        r = parse_head(buf + start, len - start, max_head_bytes, capture_header, ret->captured,
                       sizeof(ret->captured), &h);
        if (r == 0)
            return eof ? -ECONNRESET : 0;
        if (r < 0)
            return r;
        if (h.status == 101)
            return -EPROTO; /* we never ask to switch protocols */
        if (h.status >= 200)
            break;
        start += h.len; /* an interim answer (100 Continue): the real one follows */
    }
    ret->status = h.status;
    ret->body = buf + start + h.len;
    if (h.status == 204 || h.status == 304) {
        body_len = 0;
        consumed = h.len;
    } else if (h.chunked) {
        r = walk_chunks(ret->body, len - start - h.len, eof, max_body_bytes, max_head_bytes, false,
                        &body_len, &consumed);
        if (r != 1)
            return r;
        (void)walk_chunks(ret->body, len - start - h.len, eof, max_body_bytes, max_head_bytes, true,
                          &body_len, &consumed);
        consumed += h.len;
    } else if (h.has_length) {
        if (h.length > max_body_bytes)
            return -EMSGSIZE;
        if (len - start - h.len < h.length)
            return eof ? -ECONNRESET : 0;
        body_len = (size_t)h.length;
        consumed = h.len + body_len;
    } else {
        /* Neither: the body runs to the end of the connection. */
        if (len - start - h.len > max_body_bytes)
            return -EMSGSIZE;
        if (!eof)
            return 0;
        body_len = len - start - h.len;
        consumed = h.len + body_len;
        h.close = true;
    }
    ret->body[body_len] = '\0';
    ret->body_len = body_len;
    parsed->consumed = start + consumed;
    /* Bytes after the answer were never asked for: not a connection to keep. */
    parsed->keep_alive = !h.close && !h.http10 && !eof && parsed->consumed == len &&
                         !(h.chunked && h.has_length);
    return 1;
}
