/*
 * refusal.h - what an exporter's endpoint said when it refused a request
 * (an HTTP 4xx or 5xx), as one short, safe piece of a log line.
 *
 * X-Ray (rest-json) names the error in the body ({"__type":
 * "AccessDeniedException","message":"..."}, the type possibly prefixed
 * "namespace#") and in the x-amzn-ErrorType header ("Type:url"); an OTLP
 * endpoint answers a google.rpc.Status, as JSON ({"code":7,"message":
 * "..."}) or as protobuf (message: field 2), or plain text.  The text is
 * escaped (log_escape: it is outside input) and capped.
 */
#ifndef LAMBDA_TRACER_REFUSAL_H
#define LAMBDA_TRACER_REFUSAL_H

#include <stddef.h>

/* Longest message and error type quoted from an answer, in bytes of input. */
#define REFUSAL_MESSAGE_MAX 200
#define REFUSAL_TYPE_MAX 64

/* Writes "HTTP <status>[ <type>][: <message>][; the function's role needs
 * <permission>]" into ret (ret_size bytes, always NUL-terminated when
 * ret_size > 0).  error_type_header: the x-amzn-ErrorType value or NULL;
 * body/body_len: the answer (may be NULL / 0, need not be NUL-terminated);
 * permission: the IAM action the request needs (e.g.
 * "xray:PutTraceSegments") or NULL, named on a 403 or an AccessDenied
 * type.  Pure; any thread. */
void refusal_describe(long status, const char *error_type_header, const char *body, size_t body_len,
                      const char *permission, char *ret, size_t ret_size);

#endif
