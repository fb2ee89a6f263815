/*
 * http_client.c - see http_client.h.
 */
#include "http_client.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clock.h"

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

int http_client_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -EIO;
}

void http_client_global_clean_up(void)
{
    curl_global_cleanup();
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
        char *grown = realloc(sink->data, cap);
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
    int r = 0;

    memset(ret, 0, sizeof(*ret));
    curl_easy_reset(curl); /* keeps the connection cache */
    if (req->headers != NULL) {
        for (const char *const *h = req->headers; *h != NULL; h++) {
            struct curl_slist *next = curl_slist_append(headers, *h);
            if (next == NULL) {
                r = -ENOMEM;
                goto out;
            }
            headers = next;
        }
    }
    /* libcurl adds "Expect: 100-continue" to larger bodies; the local API
     * does not need the extra round trip. */
    if (req->body != NULL) {
        struct curl_slist *next = curl_slist_append(headers, "Expect:");
        if (next == NULL) {
            r = -ENOMEM;
            goto out;
        }
        headers = next;
    }

    hdr.name = req->capture_header;
    hdr.dst = ret->captured;
    hdr.dst_size = sizeof(ret->captured);

    curl_easy_setopt(curl, CURLOPT_URL, req->url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req->method);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &hdr);
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

    bool abortable = req->abort_at_ns != NULL && client->multi != NULL;
    code = abortable ? perform_abortable(client, req->abort_at_ns) : curl_easy_perform(curl);
    if (code == CURLE_OPERATION_TIMEDOUT && abortable && errbuf[0] == '\0')
        snprintf(errbuf, sizeof(errbuf), "%s", "cut at the abort time");
    if (body.too_big) {
        r = -EMSGSIZE;
    } else if (body.oom) {
        r = -ENOMEM;
    } else if (code != CURLE_OK) {
        r = errno_from_curl(code);
        if (error_detail != NULL && error_detail_size > 0)
            snprintf(error_detail, error_detail_size, "%s", errbuf[0] ? errbuf : curl_easy_strerror(code));
    }
    if (r == 0) {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &ret->status);
        ret->body = body.data;
        ret->body_len = body.len;
        body.data = NULL;
    }
out:
    /* The handle must not keep pointers to our stack after returning. */
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, NULL);
    curl_slist_free_all(headers);
    free(body.data);
    if (r < 0)
        memset(ret, 0, sizeof(*ret));
    return r;
}

void http_client_response_clean_up(struct http_client_response *resp)
{
    if (resp == NULL)
        return;
    free(resp->body);
    resp->body = NULL;
    resp->body_len = 0;
}
