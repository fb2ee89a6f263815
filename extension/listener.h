/*
 * listener.h - the local HTTP listener that receives Telemetry API POSTs.
 *
 * The one module that owns socket code.  A source of an event loop (loop.h):
 * the loop's thread polls its sockets with everything else; listener_start
 * gives it a thread and a loop of its own (the unit tests).  At most
 * LISTENER_MAX_CONNECTIONS connections; it binds the sandbox address only
 * (what sandbox.localdomain resolves to, loopback when it does not resolve),
 * hands every complete POST's body over through the body callback (on the
 * loop's thread) and answers it at once with 200.  Request parsing is http_request's job;
 * caps: headers, body (413), connections, idle time.  A new connection is
 * never turned away for want of a slot: another yields, counted, and never
 * the platform's kept-alive one while a connection that never completed a
 * request holds a slot (listener.c says who yields).
 */
#ifndef LAMBDA_TRACER_LISTENER_H
#define LAMBDA_TRACER_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct listener;

/* Takes ownership of body (malloc'd, NUL-terminated, len bytes) whatever it
 * returns. */
typedef void (*listener_body_fn)(char *body, size_t len, void *ctx);

struct listener_options {
    const char *host;        /* name to resolve and bind, normally "sandbox.localdomain" */
    uint16_t port;           /* 0: any free port */
    size_t max_body_bytes;
    listener_body_fn on_body;
    void *ctx;
};

struct listener_stats {
    uint64_t connections;
    uint64_t requests;       /* complete requests answered */
    uint64_t bodies;         /* bodies handed to on_body */
    uint64_t body_bytes;
    uint64_t rejected;       /* answered 4xx/5xx: malformed, too large, wrong method */
    uint64_t refused;        /* connections closed at once (no memory for them) */
    uint64_t evicted;        /* connections closed to make room for a new one */
    uint64_t evicted_kept_alive; /* of those, connections that had completed requests before */
    uint64_t timed_out;      /* connections closed for want of progress: silent before their first
                              * request or mid-request, or over the request time cap */
    uint64_t accept_failed;  /* accept() out of descriptors or memory (retried after a pause) */
};

/* Binds and listens, without a thread: add listener_source_ops (ctx: the
 * listener) to a loop, whose thread then owns it.  0 and *ret, or a
 * negative errno (bind/listen failure, -ENOMEM).  *ret_fell_back as for
 * listener_start.  Main thread, before the loop runs. */
int listener_open(const struct listener_options *opts, struct listener **ret, int *ret_fell_back)
    __attribute__((warn_unused_result));

/* The listener as a loop source. */
struct loop_source_ops;
extern const struct loop_source_ops listener_source_ops;

/* Stops accepting at once; requests in progress get up to drain_ms, then
 * every connection is closed and listener_finished turns true (fn, set by
 * listener_on_finished, is called then).  Loop thread. */
void listener_begin_stop(struct listener *l, int drain_ms);
bool listener_finished(const struct listener *l);
void listener_on_finished(struct listener *l, void (*fn)(void *ctx), void *ctx);

/* Takes back a body the callback was given (malloc'd), to receive a later
 * body into it; frees it when it is not worth keeping.  Loop thread; l may
 * be NULL (frees). */
void listener_recycle(struct listener *l, char *body);

/* Sets the body callback (before the loop runs the listener). */
void listener_set_body_fn(struct listener *l, listener_body_fn fn, void *ctx);

/* Closes everything and frees (the loop no longer runs it).  NULL-safe. */
void listener_close(struct listener *l, struct listener_stats *ret_stats);
/* The counters as they stand.  The loop's thread. */
void listener_get_stats(const struct listener *l, struct listener_stats *ret);

/* Binds, listens and starts a thread running the listener in a loop of its
 * own.  Returns 0 and *ret, or a
 * negative errno (bind/listen failure, -ENOMEM).  *ret_fell_back (may be
 * NULL) is set when the host did not resolve and loopback was bound.
 * Main thread only. */
int listener_start(const struct listener_options *opts, struct listener **ret, int *ret_fell_back)
    __attribute__((warn_unused_result));

/* The bound port (useful when opts->port was 0). */
uint16_t listener_port(const struct listener *l);

/* Stops accepting at once, keeps serving requests already in progress for
 * up to drain_ms, then closes every connection, joins the thread and frees
 * everything.  Main thread only; NULL-safe. */
void listener_stop(struct listener *l, int drain_ms, struct listener_stats *ret_stats);

#endif
