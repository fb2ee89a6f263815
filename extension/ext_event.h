/*
 * ext_event.h - INVOKE and SHUTDOWN events from /extension/event/next.
 *
 * Value structs only; the parser copies what it keeps (bounded by
 * limits.h) and does not log.
 */
#ifndef LAMBDA_TRACER_EXT_EVENT_H
#define LAMBDA_TRACER_EXT_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "limits.h"

enum ext_event_type {
    EXT_EVENT_INVOKE = 1,
    EXT_EVENT_SHUTDOWN = 2,
};

/* `shutdownReason`: spindown (the environment is recycled), timeout (the
 * function's duration limit), failure (a runtime crash, out of memory);
 * SandboxTerminated is what AWS's Runtime Interface Emulator sends when it
 * gets SIGTERM or SIGINT (its reset on a signal).  Anything else is
 * UNKNOWN. */
enum ext_shutdown_reason {
    EXT_SHUTDOWN_UNKNOWN = 0,
    EXT_SHUTDOWN_SPINDOWN,
    EXT_SHUTDOWN_TIMEOUT,
    EXT_SHUTDOWN_FAILURE,
    EXT_SHUTDOWN_SANDBOX_TERMINATED,
};

struct ext_event {
    enum ext_event_type type;
    int64_t deadline_ms; /* epoch milliseconds; 0 when absent */
    /* INVOKE */
    char request_id[EVENT_REQUEST_ID_MAX];
    char invoked_function_arn[EVENT_ARN_MAX];
    char trace_header[EVENT_TRACE_HEADER_MAX]; /* tracing.value, "" when absent */
    /* SHUTDOWN */
    enum ext_shutdown_reason shutdown_reason;
};

/* Parse an event body.  Returns 0 and fills *ret, or -EPROTO (not JSON, no
 * known eventType, INVOKE without requestId).  Over-long strings are
 * truncated, except requestId, whose truncation would be a wrong id:
 * -EPROTO.  `shutdownReason` is compared case-insensitively (the docs print
 * upper case, the wire carries lower case). Any thread. */
int ext_event_parse(const char *body, size_t len, struct ext_event *ret)
    __attribute__((warn_unused_result));

/* The reason as the wire spells it ("spindown", "SandboxTerminated"), or
 * "unknown".  Static storage; any thread. */
const char *ext_shutdown_reason_name(enum ext_shutdown_reason reason);

#endif
