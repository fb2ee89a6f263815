/*
 * http_client.c - see http_client.h.
 */
#include "http_client.h"

#include <curl/curl.h>
#include <errno.h>
#include <malloc.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clock.h"
#include "ids.h"

/* A transfer with an abort time waits on the network at most this long
 * between looks at it (http_client_wake makes it look at once). */
#define HTTP_CLIENT_POLL_MAX_MS 1000

struct http_client {
    CURL *curl;
    /* Abortable clients only (two descriptors for its wake-up pair):
     * transfers with an abort time run here, so another thread can wake
     * them (curl_multi_wakeup); it also holds the connection cache those
     * transfers reuse. */
    CURLM *multi;
};

struct body_sink {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
    bool too_big;
    bool oom;
};

struct header_sink {
    const char *name;
    char *dst;
    size_t dst_size;
};

/*
 * libcurl's memory.  A transfer borrows its multi handle's transfer buffer
 * (CURLOPT_BUFFERSIZE, 16 KiB) and builds its request headers in a dynbuf
 * (grown to 1 KiB); both are freed when the transfer ends, the buffer once
 * no transfer runs.  With one request per invocation that was a malloc and
 * a free of each per request, and under musl's allocator (the release
 * build) each a mapping and an unmapping of its size class's group: about
 * two mmap and two munmap per export.  libcurl's allocations go through
 * these functions instead, which keep up to CURL_KEEP_BLOCKS freed blocks
 * of CURL_KEEP_MIN_BYTES to CURL_KEEP_MAX_BYTES for the next transfer
 * (bounded: at most CURL_KEEP_BLOCKS * CURL_KEEP_MAX_BYTES held while
 * idle, 18 KiB in practice).  Any thread: each place is one atomic pointer.
 */
#define CURL_KEEP_BLOCKS 4
#define CURL_KEEP_MIN_BYTES 1024
#define CURL_KEEP_MAX_BYTES (32UL * 1024)

static _Atomic(void *) curl_kept[CURL_KEEP_BLOCKS];

static bool keep_size(size_t n)
{
    return n >= CURL_KEEP_MIN_BYTES && n <= CURL_KEEP_MAX_BYTES;
}

/* A kept block of at least n bytes (and not more than twice that), or
 * NULL. */
static void *kept_take(size_t n)
{
    for (size_t i = 0; i < CURL_KEEP_BLOCKS; i++) {
        /* Taken out before its size is read: a block is only ever looked
         * at by the thread that holds it. */
        void *p = atomic_exchange(&curl_kept[i], NULL);
        if (p == NULL)
            continue;
        size_t have = malloc_usable_size(p);
        if (have >= n && have / 2 <= n)
            return p;
        void *none = NULL;
        if (!atomic_compare_exchange_strong(&curl_kept[i], &none, p))
            free(p); /* its place was filled meanwhile */
    }
    return NULL;
}

static void curl_mem_free(void *p)
{
    if (p == NULL)
        return;
    if (keep_size(malloc_usable_size(p))) {
        for (size_t i = 0; i < CURL_KEEP_BLOCKS; i++) {
            void *none = NULL;
            if (atomic_compare_exchange_strong(&curl_kept[i], &none, p))
                return;
        }
    }
    free(p);
}

static void *curl_mem_malloc(size_t n)
{
    void *p = keep_size(n) ? kept_take(n) : NULL;

    return p != NULL ? p : malloc(n);
}

static void *curl_mem_realloc(void *old, size_t n)
{
    size_t have;
    void *p;

    if (old == NULL)
        return curl_mem_malloc(n);
    have = malloc_usable_size(old);
    if (n <= have || !keep_size(n) || (p = kept_take(n)) == NULL)
        return realloc(old, n);
    memcpy(p, old, have);
    curl_mem_free(old);
    return p;
}

static void *curl_mem_calloc(size_t n, size_t size)
{
    void *p;

    if (n == 0 || size == 0)
        n = size = 1; /* a unique pointer, as glibc's and musl's calloc give */
    if (n > SIZE_MAX / size)
        return NULL;
    p = keep_size(n * size) ? kept_take(n * size) : NULL;
    if (p == NULL)
        return calloc(n, size);
    memset(p, 0, n * size);
    return p;
}

static char *curl_mem_strdup(const char *s)
{
    return strdup(s);
}

/* Frees the kept blocks (the process is ending, or tests check for leaks). */
static void curl_mem_release(void)
{
    for (size_t i = 0; i < CURL_KEEP_BLOCKS; i++)
        free(atomic_exchange(&curl_kept[i], NULL));
}

int http_client_global_init(char *why, size_t why_size)
{
    CURLcode code = curl_global_init_mem(CURL_GLOBAL_DEFAULT, curl_mem_malloc, curl_mem_free, curl_mem_realloc,
                                         curl_mem_strdup, curl_mem_calloc);

    if (code == CURLE_OK)
        return 0;
    if (why != NULL && why_size > 0)
        snprintf(why, why_size, "%s (CURLcode %d)", curl_easy_strerror(code), (int)code);
    return -EIO;
}

void http_client_global_clean_up(void)
{
    curl_global_cleanup();
    curl_mem_release();
}

struct http_client *http_client_new(void)
{
    struct http_client *client = calloc(1, sizeof(*client));

    if (client == NULL)
        return NULL;
    client->curl = curl_easy_init();
    if (client->curl == NULL) {
        free(client);
        return NULL;
    }
    return client;
}

struct http_client *http_client_new_abortable(void)
{
    struct http_client *client = http_client_new();

    if (client == NULL)
        return NULL;
    client->multi = curl_multi_init();
    if (client->multi == NULL) {
        http_client_destroy(client);
        return NULL;
    }
    return client;
}

void http_client_destroy(struct http_client *client)
{
    if (client == NULL)
        return;
    /* The multi handle owns the cached connections: cleaned up after the
     * easy handle that was last added to it. */
    if (client->curl != NULL)
        curl_easy_cleanup(client->curl);
    if (client->multi != NULL)
        curl_multi_cleanup(client->multi);
    free(client);
}

void http_client_wake(struct http_client *client)
{
    if (client != NULL && client->multi != NULL)
        (void)curl_multi_wakeup(client->multi);
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct body_sink *sink = userdata;
    size_t n = size * nmemb;

    if (n > sink->max - sink->len) {
        sink->too_big = true;
        return 0; /* aborts the transfer */
    }
    if (sink->len + n + 1 > sink->cap) {
        size_t cap = sink->cap ? sink->cap : 1024;
        while (cap < sink->len + n + 1)
            cap *= 2;
        char *grown = curl_mem_realloc(sink->data, cap); /* kept between transfers, as libcurl's */
        if (grown == NULL) {
            sink->oom = true;
            return 0;
        }
        sink->data = grown;
        sink->cap = cap;
    }
    memcpy(sink->data + sink->len, ptr, n);
    sink->len += n;
    sink->data[sink->len] = '\0';
    return n;
}

bool http_client_header_value(const char *line, size_t n, const char *name, char *dst, size_t dst_size)
{
    size_t name_len = strlen(name);
    const char *v;
    size_t vlen;

    if (n <= name_len || line[name_len] != ':' || strncasecmp(line, name, name_len) != 0)
        return false;
    v = line + name_len + 1;
    vlen = n - name_len - 1;
    while (vlen > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        vlen--;
    }
    while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' ' ||
                        v[vlen - 1] == '\t'))
        vlen--;
    if (vlen >= dst_size)
        return false;
    /* The value is sent back in our own header lines: a control byte (a
     * bare CR, a NUL) would split or cut them. */
    for (size_t i = 0; i < vlen; i++)
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
            return false;
    memcpy(dst, v, vlen);
    dst[vlen] = '\0';
    return true;
}

static size_t on_header(char *buffer, size_t size, size_t nitems, void *userdata)
{
    struct header_sink *sink = userdata;
    size_t n = size * nitems;

    if (sink->name != NULL)
        (void)http_client_header_value(buffer, n, sink->name, sink->dst, sink->dst_size);
    return n;
}

static int errno_from_curl(CURLcode code)
{
    switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
        return -ETIMEDOUT;
    case CURLE_COULDNT_CONNECT:
        return -ECONNREFUSED;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE: /* closed before Content-Length bytes came */
        return -ECONNRESET;
    case CURLE_OUT_OF_MEMORY:
        return -ENOMEM;
    default:
        return -EIO;
    }
}

/* The transfer set up on client->curl, run until it ends or *abort_at_ns
 * passes (then CURLE_OPERATION_TIMEDOUT). */
static CURLcode perform_abortable(struct http_client *client, const _Atomic int64_t *abort_at_ns)
{
    CURLcode code = CURLE_OK;
    int running = 1;

    if (curl_multi_add_handle(client->multi, client->curl) != CURLM_OK)
        return CURLE_OUT_OF_MEMORY;
    for (;;) {
        CURLMsg *msg;
        int left;
        int64_t at;
        int wait_ms = HTTP_CLIENT_POLL_MAX_MS;

        if (curl_multi_perform(client->multi, &running) != CURLM_OK) {
            code = CURLE_SEND_ERROR;
            break;
        }
        if (running == 0) {
            msg = curl_multi_info_read(client->multi, &left);
            code = msg != NULL && msg->msg == CURLMSG_DONE ? msg->data.result : CURLE_GOT_NOTHING;
            break;
        }
        at = atomic_load(abort_at_ns);
        if (at > 0) {
            int64_t left_ns = at - clock_mono_ns();
            if (left_ns <= 0) {
                code = CURLE_OPERATION_TIMEDOUT;
                break;
            }
            if (left_ns / 1000000 < wait_ms)
                wait_ms = (int)(left_ns / 1000000) + 1;
        }
        if (curl_multi_poll(client->multi, NULL, 0, wait_ms, NULL) != CURLM_OK) {
            code = CURLE_RECV_ERROR;
            break;
        }
    }
    (void)curl_multi_remove_handle(client->multi, client->curl);
    return code;
}

/* Sets up a transfer of req on curl: the header list goes to *ret_headers
 * (the caller frees it after the transfer).  0 or -ENOMEM. */
static int setup_easy(CURL *curl, const struct http_client_request *req, struct body_sink *body,
                      struct header_sink *hdr, char *errbuf, struct curl_slist **ret_headers)
{
    struct curl_slist *headers = NULL;

    curl_easy_reset(curl); /* keeps the connection cache */
    if (req->headers != NULL) {
        for (const char *const *h = req->headers; *h != NULL; h++) {
            struct curl_slist *next = curl_slist_append(headers, *h);
            if (next == NULL)
                goto oom;
            headers = next;
        }
    }
    /* libcurl adds "Expect: 100-continue" to larger bodies; the local API
     * does not need the extra round trip. */
    if (req->body != NULL) {
        struct curl_slist *next = curl_slist_append(headers, "Expect:");
        if (next == NULL)
            goto oom;
        headers = next;
    }
    hdr->name = req->capture_header;

    curl_easy_setopt(curl, CURLOPT_URL, req->url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req->method);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, hdr);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    if (req->body != NULL) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req->body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    } else if (strcmp(req->method, "GET") == 0) {
        curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    }
    if (req->aws_sigv4 != NULL) {
        /* libcurl computes the canonical request, the signed headers
         * (host, x-amz-date and every x-amz-* header we pass, so the
         * session token is signed too) and the Authorization header. */
        curl_easy_setopt(curl, CURLOPT_AWS_SIGV4, req->aws_sigv4);
        curl_easy_setopt(curl, CURLOPT_USERNAME, req->access_key_id);
        curl_easy_setopt(curl, CURLOPT_PASSWORD, req->secret_access_key);
    }
    /* Set on every request (curl_easy_reset cleared them), whatever the
     * scheme says (libcurl matches "HTTPS:" in any case).
     * The same CA file on every request keeps the pooled connection
     * reusable: libcurl only reuses a TLS connection whose settings match. */
    if (req->ca_file != NULL)
        curl_easy_setopt(curl, CURLOPT_CAINFO, req->ca_file);
    curl_easy_setopt(curl, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    if (req->connect_timeout_ms > 0)
        curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, req->connect_timeout_ms);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, req->timeout_ms > 0 ? req->timeout_ms : 0L);
    *ret_headers = headers;
    return 0;

oom:
    curl_slist_free_all(headers);
    return -ENOMEM;
}

/* The outcome of a finished transfer, as http_client_perform returns it;
 * moves the body into *ret on success. */
static int finish_easy(CURL *curl, CURLcode code, struct body_sink *body, const char *errbuf,
                       struct http_client_response *ret, char *error_detail, size_t error_detail_size)
{
    int r = 0;

    if (body->too_big) {
        r = -EMSGSIZE;
    } else if (body->oom) {
        r = -ENOMEM;
    } else if (code != CURLE_OK) {
        r = errno_from_curl(code);
        if (error_detail != NULL && error_detail_size > 0)
            snprintf(error_detail, error_detail_size, "%s", errbuf[0] ? errbuf : curl_easy_strerror(code));
    }
    if (r == 0) {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &ret->status);
        ret->body = body->data;
        ret->body_len = body->len;
        body->data = NULL;
    }
    return r;
}

/* The handle must not keep pointers to our memory after a transfer. */
static void unset_easy(CURL *curl)
{
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, NULL);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, NULL);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, NULL);
}

int http_client_perform(struct http_client *client, const struct http_client_request *req,
                        struct http_client_response *ret, char *error_detail,
                        size_t error_detail_size)
{
    CURL *curl = client->curl;
    struct curl_slist *headers = NULL;
    struct body_sink body = {.max = req->max_response_bytes};
    struct header_sink hdr = {0};
    char errbuf[CURL_ERROR_SIZE] = "";
    CURLcode code;
    int r;

    memset(ret, 0, sizeof(*ret));
    hdr.dst = ret->captured;
    hdr.dst_size = sizeof(ret->captured);
    r = setup_easy(curl, req, &body, &hdr, errbuf, &headers);
    if (r < 0)
        goto out;
    bool abortable = req->abort_at_ns != NULL && client->multi != NULL;
    code = abortable ? perform_abortable(client, req->abort_at_ns) : curl_easy_perform(curl);
    if (code == CURLE_OPERATION_TIMEDOUT && abortable && errbuf[0] == '\0')
        snprintf(errbuf, sizeof(errbuf), "%s", "cut at the abort time");
    r = finish_easy(curl, code, &body, errbuf, ret, error_detail, error_detail_size);
out:
    unset_easy(curl);
    curl_slist_free_all(headers);
    curl_mem_free(body.data);
    if (r < 0)
        memset(ret, 0, sizeof(*ret));
    return r;
}

/* --- parallel transfers ------------------------------------------------------ */

struct http_transfer {
    CURL *curl;            /* kept between transfers (created on first use) */
    struct curl_slist *headers;
    struct body_sink body;
    struct header_sink hdr;
    char captured[256];
    char errbuf[CURL_ERROR_SIZE];
    void *tag;
    bool active;           /* added and not yet collected */
    bool done;             /* finished (or cut): waiting to be collected */
    CURLcode code;
};

struct http_socket {
    curl_socket_t fd;
    short events;
};

struct http_multi {
    CURLM *multi;
    size_t max;
    struct http_transfer *t;   /* max of them */
    struct http_socket *socks; /* what libcurl waits on */
    size_t nsocks;
    size_t max_socks;
    size_t running;            /* active */
    int64_t timer_at_ns;       /* -1: none */
    unsigned restore_epoch;    /* ids_restore_epoch when the multi was made */
};

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct http_multi *m = userp;
    size_t i;

    (void)easy;
    (void)socketp;
    for (i = 0; i < m->nsocks && m->socks[i].fd != fd; i++)
        ;
    if (what == CURL_POLL_REMOVE) {
        if (i < m->nsocks)
            m->socks[i] = m->socks[--m->nsocks];
        return 0;
    }
    if (i == m->nsocks) {
        if (m->nsocks == m->max_socks)
            return -1; /* libcurl fails that transfer */
        m->socks[m->nsocks++].fd = fd;
    }
    m->socks[i].events = (short)(((what & CURL_POLL_IN) ? POLLIN : 0) | ((what & CURL_POLL_OUT) ? POLLOUT : 0));
    return 0;
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct http_multi *m = userp;

    (void)multi;
    m->timer_at_ns = timeout_ms < 0 ? -1 : clock_mono_ns() + (int64_t)timeout_ms * 1000000;
    return 0;
}

/* A multi handle with our callbacks: its connection cache starts empty. */
static CURLM *multi_open(struct http_multi *m)
{
    CURLM *multi = curl_multi_init();

    if (multi == NULL)
        return NULL;
    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, m);
    curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(multi, CURLMOPT_TIMERDATA, m);
    /* keep one connection per transfer that may run at once */
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long)m->max);
    return multi;
}

struct http_multi *http_multi_new(size_t max_transfers)
{
    struct http_multi *m = calloc(1, sizeof(*m));

    if (m == NULL || max_transfers == 0)
        goto fail;
    m->max = max_transfers;
    m->max_socks = 2 * max_transfers + 2;
    m->timer_at_ns = -1;
    m->restore_epoch = ids_restore_epoch();
    m->t = calloc(max_transfers, sizeof(*m->t));
    m->socks = calloc(m->max_socks, sizeof(*m->socks));
    m->multi = multi_open(m);
    if (m->t == NULL || m->socks == NULL || m->multi == NULL)
        goto fail;
    return m;

fail:
    http_multi_destroy(m);
    return NULL;
}

/* After a SnapStart restore every kept-alive connection is one that every
 * restored copy holds, TLS state and random generator included, to a peer
 * on a network that is gone: once nothing runs, the whole cache is closed
 * and the next transfers connect afresh (with fresh entropy). */
static void forget_connections_after_restore(struct http_multi *m)
{
    unsigned epoch = ids_restore_epoch();
    CURLM *fresh;

    if (epoch == m->restore_epoch || m->running > 0)
        return;
    fresh = multi_open(m);
    if (fresh == NULL)
        return; /* kept: tried again at the next transfer */
    curl_multi_cleanup(m->multi);
    m->multi = fresh;
    m->nsocks = 0;
    m->timer_at_ns = -1;
    m->restore_epoch = epoch;
}

static void transfer_release(struct http_multi *m, struct http_transfer *t)
{
    (void)curl_multi_remove_handle(m->multi, t->curl);
    unset_easy(t->curl);
    curl_slist_free_all(t->headers);
    t->headers = NULL;
    curl_mem_free(t->body.data);
    t->body.data = NULL;
    t->active = false;
    t->done = false;
    m->running--;
}

void http_multi_destroy(struct http_multi *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; m->t != NULL && i < m->max; i++) {
        if (m->t[i].active)
            transfer_release(m, &m->t[i]);
        if (m->t[i].curl != NULL)
            curl_easy_cleanup(m->t[i].curl);
    }
    if (m->multi != NULL)
        curl_multi_cleanup(m->multi);
    free(m->t);
    free(m->socks);
    free(m);
}

size_t http_multi_running(const struct http_multi *m)
{
    return m->running;
}

int http_multi_add(struct http_multi *m, const struct http_client_request *req, void *tag)
{
    struct http_transfer *t = NULL;

    for (size_t i = 0; i < m->max && t == NULL; i++)
        if (!m->t[i].active)
            t = &m->t[i];
    if (t == NULL)
        return -EBUSY;
    forget_connections_after_restore(m);
    if (t->curl == NULL) {
        t->curl = curl_easy_init();
        if (t->curl == NULL)
            return -ENOMEM;
    }
    memset(&t->body, 0, sizeof(t->body));
    t->body.max = req->max_response_bytes;
    t->captured[0] = '\0';
    t->errbuf[0] = '\0';
    t->hdr = (struct header_sink){.dst = t->captured, .dst_size = sizeof(t->captured)};
    if (setup_easy(t->curl, req, &t->body, &t->hdr, t->errbuf, &t->headers) < 0)
        return -ENOMEM;
    curl_easy_setopt(t->curl, CURLOPT_PRIVATE, t);
    if (curl_multi_add_handle(m->multi, t->curl) != CURLM_OK) {
        unset_easy(t->curl);
        curl_slist_free_all(t->headers);
        t->headers = NULL;
        return -ENOMEM;
    }
    t->tag = tag;
    t->active = true;
    t->done = false;
    m->running++;
    return 0;
}

size_t http_multi_fds(const struct http_multi *m, struct pollfd *fds, size_t max)
{
    size_t n = 0;

    for (size_t i = 0; i < m->nsocks && n < max; i++) {
        fds[n].fd = m->socks[i].fd;
        fds[n].events = m->socks[i].events;
        fds[n].revents = 0;
        n++;
    }
    return n;
}

int http_multi_timeout_ms(const struct http_multi *m)
{
    int64_t left;

    if (m->timer_at_ns < 0)
        return -1;
    left = m->timer_at_ns - clock_mono_ns();
    if (left <= 0)
        return 0;
    /* rounded up: waking before the timer is due would spin */
    return left / 1000000 >= INT32_MAX ? INT32_MAX : (int)((left + 999999) / 1000000);
}

static void collect(struct http_multi *m)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(m->multi, &left)) != NULL) {
        struct http_transfer *t = NULL;
        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        if (t != NULL && t->active && !t->done) {
            t->code = msg->data.result;
            t->done = true;
        }
    }
}

void http_multi_perform(struct http_multi *m, const struct pollfd *fds, size_t n)
{
    int running;

    for (size_t i = 0; i < n; i++) {
        int ev = 0;
        bool ours = false;
        if (fds[i].revents == 0)
            continue;
        for (size_t k = 0; k < m->nsocks && !ours; k++)
            ours = m->socks[k].fd == fds[i].fd;
        if (!ours)
            continue;
        if (fds[i].revents & (POLLIN | POLLHUP))
            ev |= CURL_CSELECT_IN;
        if (fds[i].revents & POLLOUT)
            ev |= CURL_CSELECT_OUT;
        if (fds[i].revents & (POLLERR | POLLNVAL))
            ev |= CURL_CSELECT_ERR;
        (void)curl_multi_socket_action(m->multi, fds[i].fd, ev, &running);
    }
    if (m->timer_at_ns >= 0 && clock_mono_ns() >= m->timer_at_ns) {
        m->timer_at_ns = -1;
        (void)curl_multi_socket_action(m->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    }
    collect(m);
}

void http_multi_cut_all(struct http_multi *m)
{
    for (size_t i = 0; i < m->max; i++) {
        struct http_transfer *t = &m->t[i];
        if (!t->active || t->done)
            continue;
        (void)curl_multi_remove_handle(m->multi, t->curl);
        t->code = CURLE_OPERATION_TIMEDOUT;
        snprintf(t->errbuf, sizeof(t->errbuf), "%s", "cut at the abort time");
        t->done = true;
    }
}

bool http_multi_next_done(struct http_multi *m, void **ret_tag, int *ret_r,
                          struct http_client_response *ret, char *error_detail,
                          size_t error_detail_size)
{
    for (size_t i = 0; i < m->max; i++) {
        struct http_transfer *t = &m->t[i];
        if (!t->active || !t->done)
            continue;
        memset(ret, 0, sizeof(*ret));
        *ret_r = finish_easy(t->curl, t->code, &t->body, t->errbuf, ret, error_detail, error_detail_size);
        if (*ret_r == 0)
            memcpy(ret->captured, t->captured, sizeof(ret->captured));
        *ret_tag = t->tag;
        transfer_release(m, t);
        return true;
    }
    return false;
}

void http_client_response_clean_up(struct http_client_response *resp)
{
    if (resp == NULL)
        return;
    curl_mem_free(resp->body);
    resp->body = NULL;
    resp->body_len = 0;
}
