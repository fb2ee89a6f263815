/*
 * limits.h - every named bound of the extension, in one place.
 *
 * Each buffer fed from outside the process (telemetry POSTs, Extensions API
 * answers, environment variables) has a cap here.  Over a cap we answer 413,
 * or drop the item and count it; we never grow without bound inside the
 * customer's sandbox, whose memory is billed and shared with the function.
 */
#ifndef LAMBDA_TRACER_LIMITS_H
#define LAMBDA_TRACER_LIMITS_H

/* Telemetry listener.  Lambda may deliver up to 2 x maxBytes plus metadata
 * in one POST (Telemetry API guide); maxBytes is at most 1 MiB, so the body
 * cap is derived from the configured maxBytes with this floor and slack. */
#define LISTENER_BODY_SLACK_BYTES (64UL * 1024)
#define LISTENER_MAX_HEADER_BYTES (16UL * 1024)
#define LISTENER_MAX_CONNECTIONS 16
/* Connections the kernel queues for us to accept: a burst of many clients
 * waits there for a moment (each is accepted at once, making room by
 * eviction) rather than having its SYN dropped and retried a second later. */
#define LISTENER_LISTEN_BACKLOG 128
/* A connection in the middle of a request, or one that has not started
 * its first, that sends nothing for this long is a slow or stuck sender:
 * close it.  A kept-alive connection idle between requests has no limit. */
#define LISTENER_REQUEST_IDLE_TIMEOUT_MS 5000
/* ... or that keeps trickling bytes for this long: the platform sends a
 * whole batch (at most 2 x 1 MiB) over loopback in milliseconds. */
#define LISTENER_REQUEST_MAX_MS 10000
#define LISTENER_RECV_CHUNK_BYTES (16UL * 1024)
/* Read from one connection per poll round at most this much. */
#define LISTENER_READ_BUDGET_BYTES (1024UL * 1024)
/* After accept() fails for want of descriptors or memory, the listening
 * socket is left alone this long (it stays readable: polling it would spin). */
#define LISTENER_ACCEPT_BACKOFF_MS 100

/* Queue between the listener / lifecycle threads and the pipeline thread.
 * Telemetry bodies are counted in bytes; control items (INVOKE, SHUTDOWN)
 * are tiny, never dropped, and bounded by the invoke rate. */
#define QUEUE_DEFAULT_MAX_BYTES (8UL * 1024 * 1024)
#define QUEUE_MIN_MAX_BYTES (256UL * 1024)
#define QUEUE_MAX_MAX_BYTES (256UL * 1024 * 1024)

/* Telemetry parsing. */
#define TELEMETRY_MAX_SPANS 8

/* Extensions API answers (register response, INVOKE / SHUTDOWN events). */
#define EXTAPI_MAX_RESPONSE_BYTES (64UL * 1024)
/* The header section of an answer (status line, fields, blank line); a
 * chunked body's trailer gets as much. */
#define EXTAPI_MAX_HEAD_BYTES (16UL * 1024)
#define EXTAPI_CONNECT_TIMEOUT_MS 1000
#define EXTAPI_REQUEST_TIMEOUT_MS 2000
/* After the sandbox thaws, a kept-alive /event/next connection may have been
 * reset; retry a few times before giving up (reference, trap 6). */
#define EXTAPI_NEXT_RETRIES 5
#define EXTAPI_NEXT_RETRY_DELAY_MS 10
/* An event is a few hundred bytes; one over this is skipped (the connection
 * is dropped mid-body and /event/next called again). */
#define EXTAPI_MAX_EVENT_BYTES (512UL * 1024)
/* A run of /event/next calls that bring no usable event (non-JSON 200s, an
 * oversized event, errors once Init is over) is paced: 10 ms after the
 * first, doubling up to 250 ms.  The cap stays far below SHUTDOWN's 2 s
 * budget, since a SHUTDOWN waits for our next call while we sleep. */
#define EXTAPI_NEXT_BACKOFF_MIN_MS 10
#define EXTAPI_NEXT_BACKOFF_MAX_MS 250
/* Registration: a 5xx, a transport error or an answer without an identifier
 * is tried again this many times in all, 50 then 100 ms apart. */
#define REGISTER_ATTEMPTS 3
#define REGISTER_RETRY_DELAY_MS 50

/* Identifiers and names copied out of events. */
#define EVENT_REQUEST_ID_MAX 128
#define EVENT_ARN_MAX 512
#define EVENT_TRACE_HEADER_MAX 512
#define EXTENSION_NAME_MAX 128
#define EXTENSION_ID_MAX 128

/* Shutdown: SHUTDOWN carries an absolute deadline; we stop waiting for the
 * final telemetry this long before it, so we exit well inside the budget
 * (2,000 ms for all external extensions together). */
#define SHUTDOWN_SAFETY_MARGIN_MS 300
#define SHUTDOWN_DEFAULT_TELEMETRY_WAIT_MS 1000
/* Everything after SHUTDOWN (exports included: a request still running is
 * cut) ends this long before its deadline: the time to log the summary and
 * exit.  Lambda SIGKILLs at the deadline. */
#define SHUTDOWN_EXIT_MARGIN_MS 100
/* The budget when a SHUTDOWN carries no deadline: Lambda's 2,000 ms for
 * external extensions. */
#define SHUTDOWN_DEFAULT_BUDGET_MS 2000
/* A SHUTDOWN whose budget has already ended when it is read (its deadline
 * passed, or nearer than the exit margin) still gets this long to hand over
 * what is ready (nothing is waited for): Lambda may kill at any moment, and
 * leaving at once would lose, uncounted, what was parsed already. */
#define SHUTDOWN_LATE_GRACE_MS 100

/* Log tail on failure: at most this many lines of at most this many bytes
 * each are kept per environment (bounded memory whatever the function logs). */
#define LOG_TAIL_MAX_LINES 100
#define LOG_TAIL_LINE_MAX_BYTES 512
#define LOG_TAIL_MIN_BYTES 256
#define LOG_TAIL_MAX_BYTES 6144

/* Exporters: a connection that is not up in this time is not coming. */
#define EXPORT_CONNECT_TIMEOUT_MS 500
/* Eager export (before /next) that failed or whose telemetry did not come
 * is turned off for this long: a dead backend or a broken telemetry path
 * then costs the next invocations nothing. */
#define EXPORT_EAGER_OFF_MS 30000
/* At SHUTDOWN, requests still running are cut this long before the
 * exporter's deadline: the time its thread gets to count them and end. */
#define EXPORT_STOP_JOIN_MS 50

/* Configuration values read from the environment. */
#define CONFIG_MAX_VALUE_BYTES 1024
/* OTEL_RESOURCE_ATTRIBUTES: at most this many pairs (more: the whole value
 * is refused, as the specification says for any error in it). */
#define RESOURCE_ATTRS_MAX 32

#endif
