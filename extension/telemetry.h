/*
 * telemetry.h - Telemetry API batches parsed into typed events.
 *
 * Parsing is lenient, because fields come and go by schema version and era
 * (reference 2.5 and traps 19-21): every field is optional except `time`,
 * `type` and `record`; `record` may be an object or a string; unknown types
 * are kept as TEL_UNKNOWN.  An element that is not an object with those
 * three is skipped and counted in `invalid`.
 *
 * A batch owns all its strings (one arena); events point into it, or, for
 * a batch parsed in place, into the body it was parsed from.  Batches are
 * created on one thread and may be handed to another; they are never
 * shared.  This module does not log.
 */
#ifndef LAMBDA_TRACER_TELEMETRY_H
#define LAMBDA_TRACER_TELEMETRY_H

#include <stddef.h>
#include <stdint.h>

#include "limits.h"

enum tel_type {
    TEL_UNKNOWN = 0,
    TEL_INIT_START,
    TEL_INIT_RUNTIME_DONE,
    TEL_INIT_REPORT,
    TEL_RESTORE_START,
    TEL_RESTORE_RUNTIME_DONE,
    TEL_RESTORE_REPORT,
    TEL_START,
    TEL_RUNTIME_DONE,
    TEL_REPORT,
    TEL_EXTENSION_STATE,       /* platform.extension */
    TEL_SUBSCRIPTION,          /* platform.telemetrySubscription */
    TEL_LOGS_DROPPED,          /* platform.logsDropped */
    TEL_FUNCTION_LOG,          /* function */
    TEL_EXTENSION_LOG,         /* extension */
    TEL_TYPE_COUNT
};

enum tel_status {
    TEL_STATUS_NONE = 0, /* absent */
    TEL_STATUS_SUCCESS,
    TEL_STATUS_ERROR,
    TEL_STATUS_FAILURE,
    TEL_STATUS_TIMEOUT,
    TEL_STATUS_OTHER,
};

enum tel_init_type {
    TEL_INIT_TYPE_NONE = 0,
    TEL_INIT_TYPE_ON_DEMAND,
    TEL_INIT_TYPE_PROVISIONED,
    TEL_INIT_TYPE_SNAP_START,
    TEL_INIT_TYPE_MANAGED,
    TEL_INIT_TYPE_OTHER,
};

enum tel_phase {
    TEL_PHASE_NONE = 0,
    TEL_PHASE_INIT,
    TEL_PHASE_INVOKE,
    TEL_PHASE_OTHER,
};

/* Value absent: every int64_t metric below uses this. */
#define TEL_ABSENT INT64_MIN

struct tel_span {
    const char *name;
    int64_t start_us; /* epoch microseconds, TEL_ABSENT if unparsable */
    int64_t duration_us;
};

/* The Extensions API events an extension registered for (platform.extension). */
#define TEL_EXT_INVOKE 1u
#define TEL_EXT_SHUTDOWN 2u

struct tel_event {
    enum tel_type type;
    const char *type_name;  /* as received */
    int64_t time_us;        /* epoch microseconds of `time` */
    const char *request_id; /* NULL when absent, likewise every string below */
    enum tel_status status;
    const char *error_type;
    enum tel_init_type init_type;
    enum tel_phase phase;
    const char *trace_value;   /* tracing.value: an X-Ray header */
    const char *trace_span_id; /* tracing.spanId */
    const char *version;
    const char *function_name;
    const char *instance_id;     /* the log stream name (initStart) */
    const char *runtime_version;
    const char *tenant_id;       /* tenant isolation: start, runtimeDone, report */
    const char *name;            /* platform.extension / telemetrySubscription */
    const char *state;
    unsigned ext_events;         /* platform.extension `events`: TEL_EXT_* bits, 0 when absent */
    const char *text;            /* log line, or logsDropped reason */
    int64_t instance_max_memory; /* bytes */
    int64_t duration_us;         /* metrics.durationMs */
    int64_t init_duration_us;
    int64_t restore_duration_us;
    int64_t billed_duration_ms;
    int64_t memory_size_mb;
    int64_t max_memory_used_mb;
    int64_t produced_bytes;
    int64_t dropped_records;
    int64_t dropped_bytes;
    unsigned span_count;
    struct tel_span spans[TELEMETRY_MAX_SPANS];
};

struct tel_arena_block;

struct tel_batch {
    size_t count;
    size_t invalid; /* elements skipped: not {time,type,record} or bad time */
    struct tel_event *events;
    size_t capacity; /* events allocated */
    struct tel_arena_block *arena;
};

/* Why a body was refused: the byte offset where reading stopped and what
 * was wrong there ("a bad string", "unexpected ']'", "the body ends inside
 * the array", ...), printable ASCII, never the body's own bytes beyond one
 * shown as 'c' or 0xHH. */
struct tel_parse_error {
    size_t offset;
    char what[64];
};

/* Parse one POST body (a JSON array).  Returns 0 and a new batch in
 * *ret_batch (caller frees with tel_batch_free), -EPROTO when the body is
 * not a JSON array (then *ret_err, when not NULL, says why and where),
 * -ENOMEM.  Any thread. */
int tel_batch_parse_why(const char *body, size_t len, struct tel_batch **ret_batch, struct tel_parse_error *ret_err)
    __attribute__((warn_unused_result));

/* tel_batch_parse_why, but the events' strings are decoded in place in
 * body (no copy: a string without escapes is only terminated where its
 * closing quote was), so body is changed whatever the result, and must
 * outlive the batch.  The events are the same as tel_batch_parse_why's. */
int tel_batch_parse_inplace(char *body, size_t len, struct tel_batch **ret_batch, struct tel_parse_error *ret_err)
    __attribute__((warn_unused_result));

/* tel_batch_parse_why without the reason. */
int tel_batch_parse(const char *body, size_t len, struct tel_batch **ret_batch)
    __attribute__((warn_unused_result));

/* NULL-safe.  The event array and the arena's blocks of a freed batch are
 * kept (up to TEL_SPARE_MAX_EVENTS events and TEL_SPARE_MAX_BLOCKS blocks,
 * about 1 MiB at most) for the next batch: a busy pipeline would otherwise
 * map, fault in and unmap the same memory for every batch. */
void tel_batch_free(struct tel_batch *batch);

/* Frees that kept memory (tests' leak checks; harmless at any time). */
void tel_spares_release(void);

/* "platform.start" etc.; "unknown" for TEL_UNKNOWN. */
const char *tel_type_name(enum tel_type type);
const char *tel_status_name(enum tel_status status);

/* ISO 8601 UTC timestamp ("2022-10-12T00:00:15.064Z", any fraction length up
 * to 9 digits, `Z` or a numeric offset) to epoch microseconds.  0 or -EINVAL. */
int tel_parse_time(const char *text, int64_t *ret_us) __attribute__((warn_unused_result));

#endif
