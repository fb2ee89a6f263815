/*
 * export_sink.h - the interface between the exporter core (export.c: queue,
 * batches, budget, breaker, counters, parallel requests) and one sink
 * (sink_xray.c, sink_otlp.c, sink_daemon.c, sink_stdout.c).
 *
 * A sink never waits on the network itself.  The core hands it a batch of
 * encoded items (accept); an HTTP sink turns the batch into requests it
 * pushes on a list, the core sends them (several at once, on one curl multi
 * handle, with timeouts and retries from its budget) and hands each 2xx
 * answer back (answered), which may produce more requests (X-Ray's
 * UnprocessedTraceSegments get one more try).  A sink without requests
 * (daemon, stdout) delivers during accept; what it writes to goes through
 * the transport hooks of struct sink_env, which tests replace.  A sink
 * reports what became of each document in a struct sink_result; the core
 * adds that to the stats.  Everything runs on the thread that drives the
 * exporter.
 */
#ifndef LAMBDA_TRACER_EXPORT_SINK_H
#define LAMBDA_TRACER_EXPORT_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "credentials.h"
#include "export.h"
#include "http_client.h"
#include "xray_encode.h"

/* One segment version, encoded at submit time.  Owned by the core; sinks
 * may point into it until the batch it belongs to is retired (all its
 * requests answered). */
struct export_doc {
    uint32_t off;    /* in xray; documents are at most XRAY_DOC_MAX_BYTES */
    uint32_t len;
};

struct export_item {
    bool final;
    int ticket;      /* -1, or reported to cfg.on_handled once handled */
    char *xray;      /* the documents, each followed by '\n'; NULL when no sink needs them */
    size_t ndocs;
    char *otlp;      /* one ExportTraceServiceRequest for this segment; NULL for in-progress */
    size_t otlp_len;
    /* ndocs of them, allocated with the item: a queued segment costs its
     * bytes plus some 50, not a fixed array for XRAY_MAX_DOCS */
    struct export_doc doc[];
};

/* One request a sink wants sent.  Allocated and filled by the sink (the
 * http fields; the core sets the timeouts and abort time), freed by the
 * sink's free_request.  The rest belongs to the core. */
struct sink_request {
    struct http_client_request http;
    size_t units;                 /* documents (OTLP: segments) it carries */
    bool last_try;                /* X-Ray: refused documents' second try */
    uint32_t timeout_ms;          /* the sink's own per-request limit; 0: the core's */
    /* core's */
    void *batch;
    int attempts;
    int64_t not_before_ns;        /* retry delay */
    struct sink_request *next;
};

struct sink_list {
    struct sink_request *head;
    struct sink_request **tail;   /* NULL while empty (head NULL) */
};

static inline void sink_list_push(struct sink_list *l, struct sink_request *r)
{
    r->next = NULL;
    if (l->head == NULL)
        l->head = r;
    else
        *l->tail = r;
    l->tail = &r->next;
}

static inline struct sink_request *sink_list_pop(struct sink_list *l)
{
    struct sink_request *r = l->head;

    if (r != NULL) {
        l->head = r->next;
        r->next = NULL;
    }
    return r;
}

/* What happened to a sink's documents (added to struct export_sink_stats). */
struct sink_result {
    uint64_t sent;
    uint64_t failed;
    uint64_t skipped;
    uint64_t unprocessed;   /* X-Ray: listed as UnprocessedTraceSegments */
    uint64_t rejected_spans; /* OTLP: an answer's partial_success.rejected_spans */
};

/* What a sink is opened with.  The hooks are the transports of the sinks
 * that do not speak HTTP; NULL means the real one. */
struct sink_env {
    const struct export_config *cfg;   /* lives as long as the sink */
    const _Atomic int64_t *abort_at_ns; /* the stop's abort time (0: none) */
    /* daemon: sends one datagram; 0 or a negative errno.  NULL: UDP to
     * cfg->daemon_address. */
    int (*send_datagram)(void *ctx, const void *data, size_t len);
    void *send_datagram_ctx;
    /* stdout: the descriptor written to (a pipe in Lambda); -1: stdout,
     * writes then hold the process's stdout lock. */
    int out_fd;
    /* X-Ray: looks up credentials' environment variables; NULL: getenv. */
    const char *(*getenv_fn)(const char *name, void *ctx);
    void *getenv_ctx;
};

struct sink_ops {
    const char *name;
    /* 0, -ENOMEM, -EINVAL (a setting makes it unusable: left out). */
    int (*open)(const struct sink_env *env, void **ret);
    void (*close)(void *sink);                      /* NULL-safe */
    /* How many documents the batch holds for this sink (counted skipped
     * when the breaker is open; counted abandoned if the stop gives up). */
    size_t (*units)(struct export_item *const *items, size_t n);
    /* Takes the batch: delivers it now, or pushes requests on *out.  Every
     * document ends up either in *res or in a request. */
    void (*accept)(void *sink, struct export_item *const *items, size_t n, struct sink_list *out,
                   struct sink_result *res);
    /* A 2xx answer to req: counts its documents in *res (and may push
     * more requests on *out).  The core frees req after.  NULL: all sent. */
    void (*answered)(void *sink, const struct sink_request *req, const struct http_client_response *resp,
                     struct sink_list *out, struct sink_result *res);
    void (*free_request)(void *sink, struct sink_request *req);
};

/* The spans an OTLP endpoint's 2xx answer says it rejected
 * (partial_success; an unreadable answer rejected none).  The first answer
 * with a partial_success is logged, with its message, once per sink:
 * *logged remembers.  who names the sink in the line. */
uint64_t sink_otlp_rejected(const char *who, const struct http_client_response *resp, bool json, bool *logged);

extern const struct sink_ops sink_xray_ops;
extern const struct sink_ops sink_daemon_ops;
extern const struct sink_ops sink_otlp_ops;
extern const struct sink_ops sink_stdout_ops;
extern const struct sink_ops sink_xray_otlp_ops;

/* The X-Ray API sink's credentials (for sink_xray_otlp.c, which opens one
 * for them): fresh ones, or NULL when there are none (logged once). */
const struct aws_credentials *sink_xray_credentials(void *xray_sink);

/* X-Ray's OTLP endpoint's limits (observability-2026.md). */
#define XRAY_OTLP_MAX_BODY (5UL * 1000 * 1000)  /* uncompressed, per request */
#define XRAY_OTLP_MAX_SPANS 10000                /* per request */
#define XRAY_OTLP_MAX_SPAN_BYTES (200UL * 1000)  /* one Span message */
#define XRAY_OTLP_AHEAD_NS (2LL * 3600 * 1000000000)
#define XRAY_OTLP_BACK_NS (14LL * 24 * 3600 * 1000000000)

struct xray_otlp_counts {
    size_t spans;         /* spans in the request */
    size_t kept;          /* copied to out */
    size_t dropped_size;  /* over XRAY_OTLP_MAX_SPAN_BYTES */
    size_t dropped_time;  /* a time outside the window around now */
};

/* Copies the ExportTraceServiceRequest (protobuf) of len bytes at in to
 * out without the spans X-Ray would refuse (too large, a start or end time
 * more than XRAY_OTLP_AHEAD_NS after or XRAY_OTLP_BACK_NS before now_ns)
 * and the ResourceSpans and ScopeSpans they leave empty.  out NULL: only
 * counts the spans (c->spans).  scratch: two buffers for the nested
 * messages (unused when out is NULL).  0; -EINVAL when malformed;
 * -ENOBUFS over a cap (out left as it was).  Pure; any thread. */
int xray_otlp_filter(const void *in, size_t len, int64_t now_ns, struct buf *out, struct buf scratch[2],
                     struct xray_otlp_counts *c);

/* Answers larger than this fail the request (-EMSGSIZE). */
#define EXPORT_MAX_RESPONSE (64UL * 1024)
#define EXPORT_OTLP_MAX_BODY (4UL * 1024 * 1024)
#define EXPORT_PUT_MAX_BODY (1024UL * 1024)

#endif
