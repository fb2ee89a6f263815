/*
 * ext_event.c - see ext_event.h.
 */
#include "ext_event.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Deadlines are epoch milliseconds; anything from here on is not one (and
 * beyond 2^53 a double would no longer hold it exactly). */
#define DEADLINE_MAX_MS 9000000000000000LL

const char *ext_shutdown_reason_name(enum ext_shutdown_reason reason)
{
    switch (reason) {
    case EXT_SHUTDOWN_SPINDOWN:
        return "spindown";
    case EXT_SHUTDOWN_TIMEOUT:
        return "timeout";
    case EXT_SHUTDOWN_FAILURE:
        return "failure";
    case EXT_SHUTDOWN_SANDBOX_TERMINATED:
        return "SandboxTerminated";
    case EXT_SHUTDOWN_UNKNOWN:
    default:
        return "unknown";
    }
}

/* Copies a string member; returns false if it does not fit. */
static bool copy_string(const cJSON *obj, const char *key, char *dst, size_t dst_size)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, key));

    dst[0] = '\0';
    if (s == NULL)
        return true;
    return (size_t)snprintf(dst, dst_size, "%s", s) < dst_size;
}

int ext_event_parse(const char *body, size_t len, struct ext_event *ret)
{
    cJSON *root;
    const char *type;
    const cJSON *deadline;
    const cJSON *tracing;
    int r = 0;

    if (body == NULL)
        return -EPROTO;
    root = cJSON_ParseWithLengthOpts(body, len, NULL, false);
    if (!cJSON_IsObject(root)) {
        r = -EPROTO;
        goto out;
    }
    memset(ret, 0, sizeof(*ret));
    type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "eventType"));
    if (type == NULL) {
        r = -EPROTO;
        goto out;
    }
    if (strcasecmp(type, "INVOKE") == 0) {
        ret->type = EXT_EVENT_INVOKE;
    } else if (strcasecmp(type, "SHUTDOWN") == 0) {
        ret->type = EXT_EVENT_SHUTDOWN;
    } else {
        r = -EPROTO;
        goto out;
    }

    /* A number on the wire; the docs show a string for SHUTDOWN (trap 5).
     * Both forms have the same bounds: an overflowing string must not
     * become a deadline of LLONG_MAX. */
    deadline = cJSON_GetObjectItemCaseSensitive(root, "deadlineMs");
    if (cJSON_IsNumber(deadline) && isfinite(deadline->valuedouble) && deadline->valuedouble > 0 &&
        deadline->valuedouble < DEADLINE_MAX_MS)
        ret->deadline_ms = (int64_t)deadline->valuedouble;
    else if (cJSON_IsString(deadline) && deadline->valuestring != NULL) {
        char *end = NULL;
        long long v;
        errno = 0;
        v = strtoll(deadline->valuestring, &end, 10);
        if (errno == 0 && end != deadline->valuestring && *end == '\0' && v > 0 && v < DEADLINE_MAX_MS)
            ret->deadline_ms = v;
    }

    if (ret->type == EXT_EVENT_INVOKE) {
        if (!copy_string(root, "requestId", ret->request_id, sizeof(ret->request_id)) ||
            ret->request_id[0] == '\0') {
            r = -EPROTO;
            goto out;
        }
        (void)copy_string(root, "invokedFunctionArn", ret->invoked_function_arn,
                          sizeof(ret->invoked_function_arn));
        tracing = cJSON_GetObjectItemCaseSensitive(root, "tracing");
        /* A header that does not fit is dropped rather than cut: a cut
         * header could carry a wrong Parent or Lineage. */
        if (cJSON_IsObject(tracing) &&
            !copy_string(tracing, "value", ret->trace_header, sizeof(ret->trace_header)))
            ret->trace_header[0] = '\0';
    } else {
        const char *reason =
            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "shutdownReason"));
        ret->shutdown_reason = EXT_SHUTDOWN_UNKNOWN;
        if (reason != NULL) {
            if (strcasecmp(reason, "spindown") == 0)
                ret->shutdown_reason = EXT_SHUTDOWN_SPINDOWN;
            else if (strcasecmp(reason, "timeout") == 0)
                ret->shutdown_reason = EXT_SHUTDOWN_TIMEOUT;
            else if (strcasecmp(reason, "failure") == 0)
                ret->shutdown_reason = EXT_SHUTDOWN_FAILURE;
            else if (strcasecmp(reason, "SandboxTerminated") == 0)
                ret->shutdown_reason = EXT_SHUTDOWN_SANDBOX_TERMINATED;
        }
    }

out:
    cJSON_Delete(root);
    return r;
}
