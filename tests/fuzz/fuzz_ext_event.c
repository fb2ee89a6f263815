/*
 * fuzz_ext_event.c - the INVOKE / SHUTDOWN event parser on arbitrary bytes.
 *
 * An accepted event is well-formed (known type, an INVOKE has a request id,
 * every string is NUL-terminated, the deadline is not negative), and the
 * event written back as JSON by cJSON parses to the same value.  A
 * violation aborts.
 */
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ext_event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
    if (!ok)
        abort();
}

static void check_strings(const struct ext_event *ev)
{
    check(strnlen(ev->request_id, sizeof(ev->request_id)) < sizeof(ev->request_id));
    check(strnlen(ev->invoked_function_arn, sizeof(ev->invoked_function_arn)) <
          sizeof(ev->invoked_function_arn));
    check(strnlen(ev->trace_header, sizeof(ev->trace_header)) < sizeof(ev->trace_header));
}

/* The event as Lambda would have sent it. */
static char *encode(const struct ext_event *ev)
{
    cJSON *o = cJSON_CreateObject();
    char *text = NULL;

    check(o != NULL);
    cJSON_AddStringToObject(o, "eventType", ev->type == EXT_EVENT_INVOKE ? "INVOKE" : "SHUTDOWN");
    if (ev->deadline_ms > 0) {
        /* As Lambda prints it: an integer, every digit.  (cJSON's own
         * %.15g-first printing would turn 8999999999999999 into 9e+15.) */
        char digits[24];
        snprintf(digits, sizeof(digits), "%lld", (long long)ev->deadline_ms);
        cJSON_AddRawToObject(o, "deadlineMs", digits);
    }
    if (ev->type == EXT_EVENT_INVOKE) {
        cJSON *tracing = cJSON_AddObjectToObject(o, "tracing");
        cJSON_AddStringToObject(o, "requestId", ev->request_id);
        cJSON_AddStringToObject(o, "invokedFunctionArn", ev->invoked_function_arn);
        cJSON_AddStringToObject(tracing, "type", "X-Amzn-Trace-Id");
        cJSON_AddStringToObject(tracing, "value", ev->trace_header);
    } else if (ev->shutdown_reason != EXT_SHUTDOWN_UNKNOWN) {
        cJSON_AddStringToObject(o, "shutdownReason", ext_shutdown_reason_name(ev->shutdown_reason));
    }
    text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    check(text != NULL);
    return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ext_event ev, again;
    char *text;

    if (ext_event_parse((const char *)data, size, &ev) < 0)
        return 0;
    check(ev.type == EXT_EVENT_INVOKE || ev.type == EXT_EVENT_SHUTDOWN);
    check(ev.type != EXT_EVENT_INVOKE || ev.request_id[0] != '\0');
    check(ev.deadline_ms >= 0);
    check(ev.shutdown_reason == EXT_SHUTDOWN_UNKNOWN || ev.shutdown_reason == EXT_SHUTDOWN_SPINDOWN ||
          ev.shutdown_reason == EXT_SHUTDOWN_TIMEOUT || ev.shutdown_reason == EXT_SHUTDOWN_FAILURE ||
          ev.shutdown_reason == EXT_SHUTDOWN_SANDBOX_TERMINATED);
    check_strings(&ev);

    text = encode(&ev);
    check(ext_event_parse(text, strlen(text), &again) == 0);
    cJSON_free(text);
    check(again.type == ev.type && again.deadline_ms == ev.deadline_ms &&
          again.shutdown_reason == ev.shutdown_reason);
    check(strcmp(again.request_id, ev.request_id) == 0);
    check(strcmp(again.invoked_function_arn, ev.invoked_function_arn) == 0);
    check(strcmp(again.trace_header, ev.trace_header) == 0);
    return 0;
}
