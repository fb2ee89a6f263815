/*
 * export.h - the exporter thread and its sinks: the X-Ray API
 * (PutTraceSegments, SigV4), the X-Ray daemon (UDP), OTLP/HTTP (protobuf
 * or JSON) and stdout (one JSON document per line).
 *
 * Thread model: the pipeline thread calls export_submit, which encodes the
 * segment at once (so only compact bytes wait in the queue) and hands it
 * over; the exporter thread sends, batching whatever is queued, with up to
 * 8 requests per HTTP sink in flight at once.  The sending core is driven
 * (export_perform and friends below), so an event loop can run it in place
 * of the thread; the sinks sit behind one interface (export_sink.h).  The
 * lifecycle thread may call export_flush to wait, with a deadline, until
 * everything submitted so far has been sent or given up on.  Exporting
 * never runs on the thread that calls /event/next.  Every request has a
 * connect and a total timeout; a sink that keeps failing is skipped for a
 * while (circuit breaker) so a dead backend costs nothing; every document
 * not delivered is counted.
 */
#ifndef LAMBDA_TRACER_EXPORT_H
#define LAMBDA_TRACER_EXPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pollfd;

#include "trace.h"

enum export_sink {
    EXPORT_SINK_XRAY = 0,
    EXPORT_SINK_DAEMON,
    EXPORT_SINK_OTLP,
    EXPORT_SINK_STDOUT,
    EXPORT_SINK_XRAY_OTLP,         /* X-Ray's OTLP endpoint (sink_xray_otlp.c) */
    EXPORT_SINK_COUNT
};

struct export_config {
    unsigned sinks;                /* bit (1u << enum export_sink) per sink */
    char xray_endpoint[256];       /* base URL; /TraceSegments is appended */
    char region[32];               /* SigV4 region */
    char daemon_address[128];      /* host:port */
    char otlp_endpoint[256];       /* full URL, normally .../v1/traces */
    char xray_otlp_endpoint[300];  /* full URL: https://xray.<region>.amazonaws.com/v1/traces */
    char otlp_headers[1024];       /* "name=value,name=value" */
    bool otlp_json;                /* OTLP/JSON instead of protobuf */
    bool otlp_gzip;                /* Content-Encoding: gzip bodies */
    bool otlp_span_new;            /* false: the invocation span takes the header's Parent id */
    uint32_t otlp_timeout_ms;      /* per OTLP request; 0: request_timeout_ms */
    char ca_file[256];             /* "": the first readable default */
    size_t queue_max_bytes;
    uint32_t request_timeout_ms;   /* per request, when no deadline is nearer */
    uint32_t connect_timeout_ms;
    /* export_stop cuts requests this long before its deadline, the time
     * the thread then gets to end; 0: EXPORT_STOP_JOIN_MS. */
    uint32_t stop_join_ms;
    /* Called on the exporter thread once segment versions submitted with a
     * ticket >= 0 were sent to every sink or given up on (counted): their
     * tickets, n >= 1 (those of one batch together).  May be NULL.  Items
     * still queued when export_stop's deadline passes are not reported. */
    void (*on_handled)(const int *tickets, size_t n, void *ctx);
    void *on_handled_ctx;
};

struct export_sink_stats {
    uint64_t sent;      /* documents (X-Ray, stdout) or segments (OTLP) delivered */
    uint64_t failed;    /* given up on after retries */
    uint64_t skipped;   /* not attempted: circuit open or sink unusable */
    uint64_t requests;
    uint64_t retries;
};

struct export_stats {
    uint64_t submitted;       /* segment versions submitted */
    uint64_t dropped_full;    /* refused: queue over its byte bound */
    uint64_t dropped_encode;  /* could not be encoded */
    uint64_t unprocessed;     /* documents X-Ray answered as UnprocessedTraceSegments */
    uint64_t rejected_spans;  /* spans an OTLP endpoint answered as rejected (partial_success) */
    uint64_t unsent_at_stop;  /* still queued when export_stop's deadline came */
    uint64_t abandoned;       /* in the batch the thread was still sending when the
                               * stop gave up waiting for it */
    struct export_sink_stats sink[EXPORT_SINK_COUNT];
};

struct exporter;

/* Whether url is X-Ray's OTLP endpoint, https://xray.<region>.amazonaws.com/...
 * (the xray-otlp sink, SigV4): the region into ret_region.  Pure. */
bool export_xray_otlp_host(const char *url, char *ret_region, size_t region_size);

/* Starts the exporter thread.  Credentials for the X-Ray API are read from
 * the environment (or the container credentials endpoint) on that thread.
 * 0, -EINVAL (no sink), -ENOMEM, -EAGAIN.  Main thread. */
int export_start(const struct export_config *cfg, struct exporter **ret)
    __attribute__((warn_unused_result));

/* Encodes and queues one segment version (final, or the in-progress one of
 * an invocation near its deadline).  Never blocks.  0, -ENOBUFS (queue
 * full: counted), -EMSGSIZE / -EINVAL (not encodable: counted), -ENOMEM.
 * ticket: -1, or a number handed to cfg.on_handled once this version is
 * handled (only on success).  Pipeline thread only. */
int export_submit(struct exporter *e, const struct trace_segment *seg,
                  const struct trace_resource *res, bool final, int ticket)
    __attribute__((warn_unused_result));

/* Around a burst of export_submit calls (one telemetry batch): the
 * exporter thread is woken once, at export_release, instead of once per
 * segment (export_flush still wakes it at once).  Pipeline thread. */
void export_hold(struct exporter *e);
void export_release(struct exporter *e);

/* Waits until everything submitted before the call has been sent or given
 * up on, or until deadline_ns (CLOCK_MONOTONIC).  Requests in flight are
 * given at most the time left.  `last_chance` (SHUTDOWN) also tries sinks
 * whose circuit breaker is open.  A flush that is not last_chance and
 * misses its deadline turns eager export off for a while (see
 * export_eager_ok).  true when all was handled.  Any thread but the
 * exporter's. */
bool export_flush(struct exporter *e, int64_t deadline_ns, bool last_chance);

/* false while eager export is off because a flush recently missed its
 * deadline: a slow or dead backend then costs invocations nothing. */
bool export_eager_ok(struct exporter *e);

/* Turns eager export off for a while (as a missed flush does): the
 * invocation's telemetry did not arrive in time.  Any thread. */
void export_eager_off(struct exporter *e);

/* Sends what is queued until deadline_ns (CLOCK_MONOTONIC), then stops:
 * a request still in flight then is cut (whatever its own timeout), what
 * is still queued is counted as unsent_at_stop, and the thread is waited
 * for until the deadline only.  Returns true when the thread ended and
 * everything was freed.  false when it did not end in time (stuck outside
 * a cut-able request): its batch is counted as abandoned and the exporter
 * is left to it; the caller must then not clean up libcurl or anything the
 * on_handled callback uses, and should exit.  *ret (may be NULL) gets the
 * counts either way.  Main thread; NULL-safe (true). */
/* The counters as they stand, with what waits in the queue or is being
 * sent counted as unsent_at_stop: for a summary written while the thread
 * that submits is still running (a stop that gave up on it).  Any thread. */
void export_stats_now(struct exporter *e, struct export_stats *ret);

bool export_stop(struct exporter *e, int64_t deadline_ns, struct export_stats *ret);

/*
 * The driven core, for an event loop that runs the exporter on its own
 * thread instead of export_start's (libcurl's sockets in the loop's poll).
 * export_start is a thin wrapper around these: its thread blocks in the
 * queue while nothing is in flight, and otherwise polls export_poll_fds
 * (plus its wake-up descriptor) for at most export_timeout_ms, then calls
 * export_perform.  A loop does the same; it calls export_perform also after
 * it submitted segments (and on a flush or stop).  All of them never block
 * (except that the X-Ray sink fetches container credentials with a
 * blocking request, once per credentials' lifetime, cut at the abort time)
 * and run only on the driving thread.  export_flush and export_stop wait
 * for an own thread; a loop keeps its own deadlines instead.
 */

/* Creates an exporter without a thread: the caller drives it.  Same
 * returns as export_start.  Free it with export_destroy. */
int export_new(const struct export_config *cfg, struct exporter **ret)
    __attribute__((warn_unused_result));
/* Frees a driven exporter, cutting its requests (not counted).  NULL-safe. */
void export_destroy(struct exporter *e);

/* Writes the descriptors libcurl waits on (fd and events) into fds, at
 * most max; returns how many. */
size_t export_poll_fds(struct exporter *e, struct pollfd *fds, size_t max);

/* Milliseconds until export_perform has something due without any
 * descriptor event (a libcurl timer, a retry's delay, the abort time); 0:
 * now; -1: nothing timed. */
int export_timeout_ms(struct exporter *e);

/* Does everything due: lets libcurl act on fds[0..n) (their revents; other
 * descriptors are ignored) and its timers, judges finished requests
 * (retries, breaker, counters), cuts everything at the abort time, takes
 * queued segments as batches while the sinks have room (at most
 * EXPORT_PARALLEL requests in flight per HTTP sink), starts requests, and
 * retires finished batches in order (on_handled).  n may be 0. */
void export_perform(struct exporter *e, const struct pollfd *fds, size_t n);

/* true while batches are taken and not yet retired (requests in flight or
 * waiting). */
bool export_busy(const struct exporter *e);

/* Parses "xray,daemon,otlp,stdout" (any order, "none" for nothing) into a
 * sink mask.  0 or -EINVAL. */
int export_parse_sinks(const char *text, unsigned *ret_mask) __attribute__((warn_unused_result));

struct xray_doc;

/* Reads a PutTraceSegments answer body: for each of the n documents sent,
 * ret_refused[i] says whether an entry of UnprocessedTraceSegments names it
 * by Id (each document at most once, however often it is listed).  Returns
 * how many of the documents sent were refused (entries naming no document
 * of this request, or one already named, are not counted); a body that is
 * not that shape refuses none.  Pure; any thread. */
size_t export_xray_unprocessed(const char *body, size_t len, const struct xray_doc *docs, size_t n,
                               bool *ret_refused);

#endif
