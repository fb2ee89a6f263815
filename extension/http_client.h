/*
 * http_client.h - the one module that owns libcurl.
 *
 * A client wraps one curl easy handle, so connections are reused between
 * requests (keep-alive).  A client belongs to one thread.  Proxies are
 * ignored: every call of ours is either to the local Lambda API or (later)
 * to an exporter that configures its own endpoint.  curl details are mapped
 * to negative errno values here; the caller logs.
 */
#ifndef LAMBDA_TRACER_HTTP_CLIENT_H
#define LAMBDA_TRACER_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pollfd;

struct http_client;

struct http_client_request {
    const char *method;               /* "GET", "POST", "PUT" */
    const char *url;
    const char *const *headers;       /* "Name: value" strings, NULL-terminated; may be NULL */
    const char *body;                 /* may be NULL */
    size_t body_len;
    long connect_timeout_ms;          /* 0: curl's default */
    long timeout_ms;                  /* 0: no total timeout (only for /event/next) */
    size_t max_response_bytes;        /* answer bodies over this fail with -EMSGSIZE */
    const char *capture_header;       /* response header whose value to keep; may be NULL */
    const char *aws_sigv4;            /* e.g. "aws:amz:us-east-1:xray": sign with SigV4; may be NULL */
    const char *access_key_id;        /* with aws_sigv4 */
    const char *secret_access_key;    /* with aws_sigv4 */
    const char *ca_file;              /* CA bundle for HTTPS; NULL: libcurl's default */
    /* May be NULL; honoured by abortable clients only.  A CLOCK_MONOTONIC
     * time (ns; 0: none) that another
     * thread may set or move nearer while the request runs: once it passes,
     * the transfer is cut and fails with -ETIMEDOUT.  After moving it, that
     * thread calls http_client_wake so a transfer waiting on the network
     * looks at it at once. */
    const _Atomic int64_t *abort_at_ns;
};

struct http_client_response {
    long status;
    char *body;            /* NUL-terminated, owned: release with http_client_response_clean_up */
    size_t body_len;
    char captured[256];    /* value of capture_header, "" when absent */
};

/* Process-wide set-up; call once from main() before any thread starts.
 * 0, or -EIO with libcurl's reason written to why (why_size bytes; may be
 * NULL), e.g. "Failed initialization (CURLcode 2)". */
int http_client_global_init(char *why, size_t why_size) __attribute__((warn_unused_result));
void http_client_global_clean_up(void);

/* NULL on failure. */
struct http_client *http_client_new(void);

/* A client whose requests honour abort_at_ns and http_client_wake (it
 * holds a curl multi handle: two more descriptors).  NULL on failure. */
struct http_client *http_client_new_abortable(void);
void http_client_destroy(struct http_client *client); /* NULL-safe */

/* Performs one request on the caller's thread.  Returns 0 with *ret filled
 * (any HTTP status; the caller judges it), or -ETIMEDOUT, -ECONNREFUSED,
 * -ECONNRESET, -EMSGSIZE, -ENOMEM, -EIO (other transport errors).  On error
 * *ret holds nothing to free.  `error_detail`, when not NULL, receives a
 * short description of a transport error for the caller to log. */
int http_client_perform(struct http_client *client, const struct http_client_request *req,
                        struct http_client_response *ret, char *error_detail,
                        size_t error_detail_size) __attribute__((warn_unused_result));

void http_client_response_clean_up(struct http_client_response *resp);

/* Makes a transfer of `client` that runs with an abort_at_ns look at that
 * time now instead of at its next network event.  Any thread, as long as
 * the client exists; harmless when no transfer runs. */
void http_client_wake(struct http_client *client);

/*
 * Parallel transfers, driven from outside (an event loop, or the
 * exporter's own thread): the caller polls the descriptors libcurl wants,
 * calls http_multi_perform with what poll reported (and when
 * http_multi_timeout_ms has passed), then collects finished transfers.
 * Requests in flight at once share one connection cache (one connection
 * each: HTTP/1.1).  Never blocks.  A multi belongs to one thread.
 */
struct http_multi;

/* At most max_transfers at once (and as many cached connections).  NULL on
 * failure. */
struct http_multi *http_multi_new(size_t max_transfers);
/* Transfers still running are dropped unreported.  NULL-safe. */
void http_multi_destroy(struct http_multi *m);

/* Starts req.  Everything req points to except body is copied; body must
 * stay until the transfer is collected.  tag comes back with the result.
 * 0, -EBUSY (max_transfers running), -ENOMEM. */
int http_multi_add(struct http_multi *m, const struct http_client_request *req, void *tag)
    __attribute__((warn_unused_result));
size_t http_multi_running(const struct http_multi *m);

/* The descriptors libcurl waits on now (at most max; events set).
 * Returns how many were written. */
size_t http_multi_fds(const struct http_multi *m, struct pollfd *fds, size_t max);
/* Milliseconds until libcurl's next timer (0: due now), -1 when none. */
int http_multi_timeout_ms(const struct http_multi *m);
/* Lets libcurl act on the descriptors poll reported ready (revents; fds
 * may hold others, which are ignored) and on a due timer.  n may be 0. */
void http_multi_perform(struct http_multi *m, const struct pollfd *fds, size_t n);
/* Ends every running transfer now: each is then collected with
 * -ETIMEDOUT ("cut at the abort time"). */
void http_multi_cut_all(struct http_multi *m);
/* One finished transfer, if any: true with its tag and the result as
 * http_client_perform gives it (r, and *ret to clean up when r == 0). */
bool http_multi_next_done(struct http_multi *m, void **ret_tag, int *ret_r,
                          struct http_client_response *ret, char *error_detail,
                          size_t error_detail_size);

/* One response header line as libcurl hands it over (n bytes, CRLF
 * included, not NUL-terminated): when it is header `name`
 * (case-insensitive), copies its value without surrounding blanks into dst
 * and returns true.  A value that does not fit in dst_size bytes (NUL
 * included) or holds a control byte is not copied.  Pure; any thread. */
bool http_client_header_value(const char *line, size_t n, const char *name, char *dst, size_t dst_size);

#endif
