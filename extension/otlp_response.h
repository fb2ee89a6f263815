/*
 * otlp_response.h - what an OTLP/HTTP endpoint's 2xx answer says about the
 * spans it was sent: an ExportTraceServiceResponse whose partial_success
 * counts the spans the endpoint rejected and may carry a message (with no
 * rejection, a warning).  Protobuf or OTLP/JSON.  Pure, any thread.
 */
#ifndef LAMBDA_TRACER_OTLP_RESPONSE_H
#define LAMBDA_TRACER_OTLP_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OTLP_RESPONSE_MESSAGE_BYTES 256

struct otlp_partial {
    bool present;        /* the answer had a partial_success */
    uint64_t rejected;   /* rejected_spans (0 when absent) */
    char message[OTLP_RESPONSE_MESSAGE_BYTES]; /* error_message, cut to fit; "" when absent */
};

/* Reads the answer body (len bytes; an empty body is a full success) into
 * *ret.  json: the request was OTLP/JSON; a body starting with '{' is read
 * as JSON either way (an endpoint or proxy answering JSON to protobuf).
 * 0, or -EINVAL when the body is neither (*ret then says nothing was
 * rejected). */
int otlp_response_parse(const char *body, size_t len, bool json, struct otlp_partial *ret)
    __attribute__((warn_unused_result));

#endif
