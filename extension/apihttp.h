/*
 * apihttp.h - a small HTTP/1.1 client over one blocking TCP socket, for the
 * local Lambda API only (AWS_LAMBDA_RUNTIME_API: register, the Telemetry
 * subscription, /event/next, init/error and exit/error).
 *
 * Why not libcurl: the local API is plain HTTP on a host:port we are given,
 * one request at a time, and the main thread is blocked in it anyway; a
 * blocking socket needs 2 system calls per request where libcurl's easy
 * interface made 10-20 and mapped a 20 KB buffer per request.  libcurl stays
 * for the outside world (http_client.c).
 *
 * One client holds one kept-alive connection and one buffer, allocated once
 * (answers are read into it with large reads; nothing is allocated per
 * request).  A request on a kept connection that the server had closed
 * meanwhile (nothing at all came back) is sent again once on a fresh one.
 * Timeouts are socket options: SO_SNDTIMEO bounds connect and send,
 * SO_RCVTIMEO the wait for the answer, set only when they change (after
 * the request went out: /event/next's "no timeout" costs Init nothing).  A client
 * belongs to one thread (the main thread).  Nothing here logs.
 */
#ifndef LAMBDA_TRACER_APIHTTP_H
#define LAMBDA_TRACER_APIHTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct apihttp;

struct apihttp_request {
    const char *method;         /* "GET", "POST", "PUT" */
    const char *path;           /* "/2020-01-01/extension/register" */
    const char *headers;        /* extra header lines, each ending in "\r\n"; may be NULL */
    const char *body;           /* may be NULL */
    size_t body_len;
    long timeout_ms;            /* total; 0: none (only for /event/next) */
    size_t max_body_bytes;      /* a longer answer body fails with -EMSGSIZE (at most the client's) */
    const char *capture_header; /* response header whose value to keep; may be NULL */
    /* May be NULL.  Called once per apihttp_perform, on the caller's thread,
     * as soon as the request has been handed to the kernel and before its
     * answer is waited for (not when it could not be sent).  What it does
     * overlaps with the server's work on the request; the wait for the
     * answer is bounded as usual once it returns.  It must not use this
     * client. */
    void (*sent)(void *ctx);
    void *sent_ctx;
};

struct apihttp_response {
    long status;
    char *body;         /* NUL-terminated, in the client's buffer: valid until its next request */
    size_t body_len;
    char captured[256]; /* value of capture_header, "" when absent or unusable
                         * (http_client_header_value's rules: no control byte) */
};

/* host_port is "host:port" as config_runtime_api_valid accepts it (a host
 * name, an IPv4 or a [IPv6] address), resolved at each connect (a literal
 * costs no system call).  max_body_bytes is the largest answer body any request may ask
 * for: the buffer holds that and EXTAPI_MAX_HEAD_BYTES of header.  Nothing
 * is connected yet.  0, -EINVAL, -ENOMEM. */
int apihttp_new(const char *host_port, long connect_timeout_ms, size_t max_body_bytes,
                struct apihttp **ret) __attribute__((warn_unused_result));
void apihttp_destroy(struct apihttp *client); /* NULL-safe; closes the connection */

/* Sends one request and reads its answer on the caller's thread.  0 with
 * *ret filled (any status; the caller judges it); or -ETIMEDOUT,
 * -ECONNREFUSED, -ECONNRESET (closed or reset before the whole answer came,
 * including a body cut short), -EMSGSIZE (body over max_body_bytes, or a
 * header over EXTAPI_MAX_HEAD_BYTES), -EIO (an answer that is not HTTP/1.x,
 * other socket errors), -ENOMEM, -EINVAL (bad request).  After an error the
 * connection is closed (the next request opens a new one) and *ret holds
 * nothing.  `detail`, when not NULL, receives a short description of an
 * error for the caller to log. */
int apihttp_perform(struct apihttp *client, const struct apihttp_request *req,
                    struct apihttp_response *ret, char *detail, size_t detail_size)
    __attribute__((warn_unused_result));

/* Closes the kept connection, if any (the next request opens a new one). */
void apihttp_disconnect(struct apihttp *client);

/* How apihttp_parse_response ends the connection afterwards. */
struct apihttp_parsed {
    size_t consumed; /* bytes of buf the answer took (extra bytes after it: keep_alive is false) */
    bool keep_alive; /* the connection may carry the next request */
};

/* The parser, pure (any thread): one answer at the start of buf[0..len).
 * `eof`: the server closed after these bytes.  buf must have len + 1
 * writable bytes: a chunked body is decoded in place and every body is
 * NUL-terminated.  Interim 1xx answers before the real one are skipped.
 * Returns 1 with *ret (body pointing into buf) and *parsed filled when the
 * whole answer is there; 0 when more bytes are needed (never with eof);
 * -EMSGSIZE when the header passes max_head_bytes or the body
 * max_body_bytes (decided as early as the bytes show it); -EPROTO for bytes
 * that are not an HTTP/1.x answer; -ECONNRESET when eof cuts it short. */
int apihttp_parse_response(char *buf, size_t len, bool eof, size_t max_head_bytes,
                           size_t max_body_bytes, const char *capture_header,
                           struct apihttp_response *ret, struct apihttp_parsed *parsed)
    __attribute__((warn_unused_result));

#endif
