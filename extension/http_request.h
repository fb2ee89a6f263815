/*
 * http_request.h - strict, incremental HTTP/1.1 request parser.
 *
 * Lambda's Telemetry API POSTs JSON batches to our listener.  The listener
 * feeds this parser whatever recv() returned; the parser frames one request
 * at a time (request line, header fields, a Content-Length or chunked body)
 * and tells the listener what to answer.  It does no I/O, never logs and
 * never blocks.
 *
 * Strictness (RFC 9112), chosen because a framing mistake is the one bug a
 * parser must not have:
 *   - every line of the header section, every chunk-size line and the CRLF
 *     after chunk data must end in CRLF; a bare LF or a bare CR is -EPROTO
 *     (RFC 9112 2.2 allows accepting bare LF, but Lambda's Go client never
 *     sends one and a lenient parser is how requests get mis-framed);
 *   - empty lines (CRLF) before the request line are skipped, but counted
 *     against the header cap;
 *   - only "HTTP/1.0" and "HTTP/1.1"; another well-formed "HTTP/x.y" is
 *     -EPROTONOSUPPORT (505), anything else -EPROTO;
 *   - obsolete line folding, whitespace before a field's colon, control
 *     characters in names or values: -EPROTO;
 *   - Content-Length is digits only, must fit in 64 bits (else -EPROTO) and
 *     all copies must agree; Content-Length together with Transfer-Encoding,
 *     Transfer-Encoding in HTTP/1.0 and "chunked" twice are -EPROTO;
 *     a Transfer-Encoding other than exactly "chunked" is -ENOTSUP;
 *   - chunk sizes: 1 to 16 hex digits, then ';' extensions (ignored, at most
 *     HTTP_REQUEST_MAX_CHUNK_EXT_BYTES per line, counting the ";") or CRLF;
 *     no whitespace;
 *   - trailer fields are checked like header fields, counted against the
 *     header cap and then dropped (never visible through the header lookup);
 *   - Host is not checked: the listener serves one sandbox-local endpoint.
 *
 * Memory: buffers grow on demand (doubling) up to the caps given to
 * http_request_new(); nothing is preallocated to the cap.  The header
 * section is kept in one buffer and header names and values are
 * NUL-terminated in place, so lookups return pointers into it.
 *
 * Threads: a parser holds no global state; one instance belongs to one
 * thread at a time (the listener's), different instances may be used from
 * different threads concurrently.  Every pointer returned by an accessor
 * points into the parser and stays valid until the next call to
 * http_request_feed(), http_request_reset(), http_request_take_body() or
 * http_request_destroy() on that instance.
 */
#ifndef LAMBDA_TRACER_HTTP_REQUEST_H
#define LAMBDA_TRACER_HTTP_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

/* Return values of http_request_feed() besides negative errnos. */
#define HTTP_REQUEST_INCOMPLETE 0
#define HTTP_REQUEST_COMPLETE 1

/* Fixed bounds of the parser itself; the caller-facing caps (header section
 * and body bytes) are arguments of http_request_new().
 * 64 fields: Lambda sends fewer than ten; more is a client misbehaving (431).
 * 1 KiB of chunk extensions per chunk-size line: no sender we talk to emits
 * any, and the bound keeps a chunk line from being an unbounded stream. */
#define HTTP_REQUEST_MAX_FIELDS 64
#define HTTP_REQUEST_MAX_CHUNK_EXT_BYTES 1024
/* Largest accepted header cap: field offsets are stored in 32 bits. */
#define HTTP_REQUEST_MAX_HEADER_CAP ((size_t)1024 * 1024)

struct http_request;

/* Create a parser for one connection.  max_header_bytes (1 to
 * HTTP_REQUEST_MAX_HEADER_CAP) caps the request line plus header fields,
 * including their CRLFs, skipped leading empty lines and chunked trailers;
 * max_body_bytes caps the decoded body (0 allows only empty bodies).
 * Returns a new parser owned by the caller (free it with
 * http_request_destroy()), or NULL when a cap is out of range or memory is
 * short.  Any thread. */
struct http_request *http_request_new(size_t max_header_bytes, size_t max_body_bytes)
    __attribute__((warn_unused_result));

/* Free the parser and everything it holds.  NULL-safe.  Owner's thread. */
void http_request_destroy(struct http_request *req);

/* Forget the current request (complete, partial or failed) so the parser is
 * ready for the next request on a kept-alive connection.  Buffers up to a
 * small retained size are kept for reuse; larger ones are freed so one big
 * request does not pin memory for the life of the connection.  After an
 * error the byte stream has lost its framing: the listener should close the
 * connection rather than reset and continue.  Owner's thread. */
void http_request_reset(struct http_request *req);

/* Feed the next len bytes received on the connection (data may be NULL when
 * len is 0).  Always writes *ret_consumed: the number of bytes used.  Bytes
 * after the end of a complete request are not consumed; they start the next
 * pipelined request, to be fed again after http_request_reset().
 * Returns:
 *   HTTP_REQUEST_INCOMPLETE (0)  all len bytes consumed, more are needed;
 *   HTTP_REQUEST_COMPLETE (1)    a whole request is parsed (feeding again
 *                                before a reset consumes nothing and
 *                                returns HTTP_REQUEST_COMPLETE again);
 *   -EPROTO            malformed request (400);
 *   -EPROTONOSUPPORT   HTTP version other than 1.0 / 1.1 (505);
 *   -E2BIG             header section over its cap, or too many fields (431);
 *   -EMSGSIZE          body over its cap (413): a Content-Length over the cap
 *                      fails as soon as the header section ends, a chunked
 *                      body as soon as a chunk size takes the running total
 *                      over the cap, before any of that chunk's data;
 *   -ENOTSUP           transfer coding other than chunked (501);
 *   -ENOMEM            out of memory (500).
 * After an error the parser stays failed: every later feed returns the same
 * error and consumes nothing, until http_request_reset().  On error
 * *ret_consumed counts the bytes examined before the failure, for
 * information only.  The parser copies what it keeps; data stays the
 * caller's.  Owner's thread. */
int http_request_feed(struct http_request *req, const char *data, size_t len, size_t *ret_consumed)
    __attribute__((warn_unused_result));

/* True when bytes of a request have been fed since the last reset (leading
 * empty lines included) and it is neither complete nor failed: the listener
 * uses it to pick the short mid-request idle timeout over the keep-alive
 * one. */
bool http_request_in_progress(const struct http_request *req);

/* True once the header section has been parsed and accepted (the body may
 * still be pending).  False again after an error or a reset. */
bool http_request_headers_done(const struct http_request *req);

/* Method and request-target, NUL-terminated, or NULL until the request line
 * has been parsed.  They stay available after a later error in the same
 * request (useful for logging what was refused) until reset. */
const char *http_request_method(const struct http_request *req);
const char *http_request_target(const struct http_request *req);

/* The decoded (de-chunked) body received so far, complete once feed has
 * returned HTTP_REQUEST_COMPLETE.  Never NULL: "" when there is none; always
 * NUL-terminated for convenience (the body itself may contain NULs, so use
 * *ret_len).  ret_len may be NULL. */
const char *http_request_body(const struct http_request *req, size_t *ret_len);

/* Hands the parser an empty buffer of cap bytes (malloc'd) for the next
 * body, so that a known Content-Length up to cap - 1 lands in it without a
 * new allocation.  true: taken (freed with the parser or handed out by
 * take_body); false (the caller keeps it): a body has started, or the
 * parser's own buffer is as large. */
bool http_request_give_body_buffer(struct http_request *req, char *buf, size_t cap);

/* Move the body of a complete request out of the parser, to hand it on
 * without a copy.  On success returns 0, *ret_body is a NUL-terminated heap
 * buffer of *ret_len bytes (plus the NUL) that the caller now owns and must
 * free(), and the parser's body becomes empty.  Returns -EINVAL unless the
 * last feed completed a request, -ENOMEM if an empty body could not be
 * given its own buffer; nothing is written on failure.  Owner's thread. */
int http_request_take_body(struct http_request *req, char **ret_body, size_t *ret_len)
    __attribute__((warn_unused_result));

/* True when the client sent "Expect: 100-continue" in an HTTP/1.1 request
 * whose headers are done, whose body is still expected and of which no body
 * byte has arrived yet: the listener should then send
 * "HTTP/1.1 100 Continue\r\n\r\n" once (it stays true until body bytes are
 * fed, so the listener remembers that it sent it).  Other expectations are
 * ignored, which RFC 9110 10.1.1 permits. */
bool http_request_expects_continue(const struct http_request *req);

/* Whether the connection may carry another request after this one: HTTP/1.1
 * unless a Connection field lists "close"; HTTP/1.0 only when a Connection
 * field lists "keep-alive" (and none lists "close").  False before the
 * header section is done and after any error. */
bool http_request_keep_alive(const struct http_request *req);

/* Value of the first header field named name (ASCII case-insensitive), with
 * surrounding whitespace removed, or NULL when there is none.  Covers the
 * fields parsed so far (all of them once headers are done); trailers are
 * never included. */
const char *http_request_header(const struct http_request *req, const char *name);

/* Status code to answer for an error returned by http_request_feed():
 * -EPROTO 400, -E2BIG 431, -EMSGSIZE 413, -ENOTSUP 501,
 * -EPROTONOSUPPORT 505, anything else 500. */
int http_request_error_status(int err);

/* The matching reason phrase ("Bad Request", ...); a static string. */
const char *http_request_error_reason(int err);

#endif
