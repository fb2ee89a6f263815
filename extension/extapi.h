/*
 * extapi.h - client of the Lambda Extensions API (2020-01-01) and of the
 * Telemetry API subscription (2022-07-01).
 *
 * Owned by the lifecycle (main) thread; every call runs on that thread, over
 * one kept-alive blocking socket (apihttp.h), not libcurl.
 * /event/next has no total timeout because the sandbox may be frozen inside
 * it for hours (reference trap 6); every other call has connect and total
 * timeouts.  Nothing here logs: failures come back as negative errno plus
 * an extapi_error the caller may log.
 */
#ifndef LAMBDA_TRACER_EXTAPI_H
#define LAMBDA_TRACER_EXTAPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "ext_event.h"

struct extapi;

struct extapi_registration {
    char function_name[128];
    char function_version[64];
    char handler[256];
    char account_id[32];
};

/* What went wrong, for the caller's one log line. */
struct extapi_error {
    long status;            /* HTTP status, 0 for a transport error */
    char error_type[96];    /* errorType of the answer, or a short transport reason */
    char message[256];      /* errorMessage of the answer, or the transport's detail */
};

/* runtime_api is AWS_LAMBDA_RUNTIME_API ("host:port", checked with
 * config_runtime_api_valid), name the extension's file name.  0, -EINVAL
 * (bad arguments), -ENOMEM. */
int extapi_new(const char *runtime_api, const char *name, struct extapi **ret)
    __attribute__((warn_unused_result));
void extapi_destroy(struct extapi *api); /* NULL-safe */

/* POST /extension/register for the given events.  Returns 0 and keeps the
 * identifier; -EACCES (403: e.g. INVOKE refused on Managed Instances),
 * -EINVAL (400), -EPROTO (2xx without identifier, or a malformed body),
 * -EIO (500 or other status), or a transport error. */
int extapi_register(struct extapi *api, bool invoke, bool shutdown,
                    struct extapi_registration *ret, struct extapi_error *err)
    __attribute__((warn_unused_result));

/* The identifier from a successful register ("" before). */
const char *extapi_identifier(const struct extapi *api);

/* GET /extension/event/next, blocking with no total timeout.  A connection
 * reset right after a thaw, or an answer cut off mid-body, is retried a few
 * times.  0 with *ret filled; -EPROTO for an unparsable event; -EMSGSIZE
 * for one over EXTAPI_MAX_EVENT_BYTES (skipped: the connection is dropped);
 * -EACCES, -EIO, transport errors. */
int extapi_next(struct extapi *api, struct ext_event *ret, struct extapi_error *err)
    __attribute__((warn_unused_result));

/* The same, calling sent(ctx) once, on this thread, as soon as the request
 * has gone out and before the answer is waited for (apihttp.h): the work
 * of Init that need not come before our first /event/next is done there,
 * while the platform finishes Init.  Not called when no request could be
 * sent.  sent may be NULL. */
int extapi_next_then(struct extapi *api, struct ext_event *ret, struct extapi_error *err,
                     void (*sent)(void *ctx), void *ctx) __attribute__((warn_unused_result));

/* The subscription body: schema version, types, explicit buffering, and the
 * destination http://sandbox.localdomain:<port>/telemetry.  0, or -ENOBUFS
 * when buf is too small. */
int extapi_subscription_body(const struct config *cfg, const char *schema_version, uint16_t port,
                             char *buf, size_t size) __attribute__((warn_unused_result));

/* PUT /2022-07-01/telemetry with that body.  Returns 0 (200: subscribed),
 * 1 (202: this environment has no Telemetry API, nothing will arrive),
 * -EINVAL (400: e.g. schema version refused), -EACCES (403), -EIO, or a
 * transport error. */
int extapi_subscribe(struct extapi *api, const char *body, struct extapi_error *err)
    __attribute__((warn_unused_result));

/* POST /extension/init/error or /exit/error with an "Extension.<Reason>"
 * type.  0 when Lambda accepted it (202); afterwards the process should
 * exit. */
int extapi_report_error(struct extapi *api, bool during_init, const char *error_type,
                        const char *message, struct extapi_error *err)
    __attribute__((warn_unused_result));

/* The register answer's body ({"functionName", "functionVersion",
 * "handler", "accountId"}): fills *ret with what it holds, "" for anything
 * absent, not a string, or not JSON; over-long values are cut to fit.
 * Pure; any thread. */
void extapi_parse_registration(const char *body, size_t len, struct extapi_registration *ret);

/* An error answer's body ({"errorType", "errorMessage"}): copies what it
 * holds into err->error_type and err->message (cut to fit), leaving them as
 * they were otherwise.  Pure; any thread. */
void extapi_parse_error(const char *body, size_t len, struct extapi_error *err);

#endif
