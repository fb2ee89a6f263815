/*
 * extapi.c - see extapi.h.
 */
#include "extapi.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "apihttp.h"
#include "limits.h"

/* Our header lines: the identifier or name, the error type, a content type. */
#define HEADERS_MAX 512

struct extapi {
    struct apihttp *http;
    char name[EXTENSION_NAME_MAX];
    char identifier[EXTENSION_ID_MAX];
};

int extapi_new(const char *runtime_api, const char *name, struct extapi **ret)
{
    struct extapi *api;
    int r;

    /* The value becomes the authority of every URL below: only host:port
     * may pass (a '@' would make the rest of it the host). */
    if (!config_runtime_api_valid(runtime_api) || name == NULL || name[0] == '\0' ||
        strlen(name) >= EXTENSION_NAME_MAX)
        return -EINVAL;
    /* The name is sent as a header value: no control byte may end it. */
    for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++)
        if (*p < 0x20 || *p == 0x7f)
            return -EINVAL;
    api = calloc(1, sizeof(*api));
    if (api == NULL)
        return -ENOMEM;
    /* The largest answer is an event: the buffer is sized for it once. */
    r = apihttp_new(runtime_api, EXTAPI_CONNECT_TIMEOUT_MS, EXTAPI_MAX_EVENT_BYTES, &api->http);
    if (r < 0) {
        free(api);
        return r;
    }
    snprintf(api->name, sizeof(api->name), "%s", name);
    *ret = api;
    return 0;
}

void extapi_destroy(struct extapi *api)
{
    if (api == NULL)
        return;
    apihttp_destroy(api->http);
    free(api);
}

const char *extapi_identifier(const struct extapi *api)
{
    return api->identifier;
}

static void error_clear(struct extapi_error *err)
{
    if (err != NULL)
        memset(err, 0, sizeof(*err));
}

void extapi_parse_error(const char *body, size_t len, struct extapi_error *err)
{
    cJSON *root;

    if (body == NULL)
        return;
    root = cJSON_ParseWithLengthOpts(body, len, NULL, false);
    if (cJSON_IsObject(root)) {
        const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "errorType"));
        const char *msg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "errorMessage"));
        if (type != NULL)
            snprintf(err->error_type, sizeof(err->error_type), "%s", type);
        if (msg != NULL)
            snprintf(err->message, sizeof(err->message), "%s", msg);
    }
    cJSON_Delete(root);
}

/* Fills err from an answer with a non-success status ({"errorMessage",
 * "errorType"} on Lambda). */
static void error_from_answer(struct extapi_error *err, const struct apihttp_response *resp)
{
    if (err == NULL)
        return;
    err->status = resp->status;
    extapi_parse_error(resp->body, resp->body_len, err);
}

void extapi_parse_registration(const char *body, size_t len, struct extapi_registration *ret)
{
    cJSON *root;

    memset(ret, 0, sizeof(*ret));
    if (body == NULL)
        return;
    root = cJSON_ParseWithLengthOpts(body, len, NULL, false);
    if (cJSON_IsObject(root)) {
        const char *s;
        if ((s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "functionName"))))
            snprintf(ret->function_name, sizeof(ret->function_name), "%s", s);
        if ((s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "functionVersion"))))
            snprintf(ret->function_version, sizeof(ret->function_version), "%s", s);
        if ((s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "handler"))))
            snprintf(ret->handler, sizeof(ret->handler), "%s", s);
        if ((s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "accountId"))))
            snprintf(ret->account_id, sizeof(ret->account_id), "%s", s);
    }
    cJSON_Delete(root);
}

static int errno_from_status(long status)
{
    if (status == 400)
        return -EINVAL;
    if (status == 403)
        return -EACCES;
    return -EIO;
}

/* One request to the local API.  headers: our header lines, each ending
 * in CRLF.  The answer's body stays valid until the next call. */
static int call_then(struct extapi *api, const char *method, const char *path, const char *headers,
                     const char *body, long timeout_ms, size_t max_bytes, const char *capture,
                     void (*sent)(void *ctx), void *sent_ctx, struct apihttp_response *resp,
                     struct extapi_error *err)
{
    struct apihttp_request req = {
        .method = method,
        .path = path,
        .headers = headers,
        .body = body,
        .body_len = body != NULL ? strlen(body) : 0,
        .timeout_ms = timeout_ms,
        .max_body_bytes = max_bytes,
        .capture_header = capture,
        .sent = sent,
        .sent_ctx = sent_ctx,
    };
    int r;

    r = apihttp_perform(api->http, &req, resp, err != NULL ? err->message : NULL,
                        err != NULL ? sizeof(err->message) : 0);
    if (r < 0 && err != NULL)
        snprintf(err->error_type, sizeof(err->error_type), "%s", "transport");
    return r;
}

static int call(struct extapi *api, const char *method, const char *path, const char *headers,
                const char *body, long timeout_ms, size_t max_bytes, const char *capture,
                struct apihttp_response *resp, struct extapi_error *err)
{
    return call_then(api, method, path, headers, body, timeout_ms, max_bytes, capture, NULL, NULL, resp, err);
}

int extapi_register(struct extapi *api, bool invoke, bool shutdown,
                    struct extapi_registration *ret, struct extapi_error *err)
{
    char headers[HEADERS_MAX];
    char body[64];
    struct apihttp_response resp;
    int r;

    error_clear(err);
    snprintf(headers, sizeof(headers),
             "Lambda-Extension-Name: %s\r\nLambda-Extension-Accept-Feature: accountId\r\n"
             "Content-Type: application/json\r\n",
             api->name);
    /* Double quotes: the docs' single-quoted example is not JSON (trap 3). */
    snprintf(body, sizeof(body), "{\"events\":[%s%s%s]}", invoke ? "\"INVOKE\"" : "",
             invoke && shutdown ? "," : "", shutdown ? "\"SHUTDOWN\"" : "");
    r = call(api, "POST", "/2020-01-01/extension/register", headers, body, EXTAPI_REQUEST_TIMEOUT_MS,
             EXTAPI_MAX_RESPONSE_BYTES, "Lambda-Extension-Identifier", &resp, err);
    if (r < 0)
        return r;
    if (resp.status != 200) {
        error_from_answer(err, &resp);
        return errno_from_status(resp.status);
    }
    if (resp.captured[0] == '\0' || strlen(resp.captured) >= sizeof(api->identifier)) {
        if (err != NULL)
            err->status = resp.status;
        return -EPROTO;
    }
    memcpy(api->identifier, resp.captured, strlen(resp.captured) + 1); /* length checked above */
    extapi_parse_registration(resp.body, resp.body_len, ret);
    return 0;
}

/* The identifier header line every call after register sends. */
static void identifier_header(const struct extapi *api, char *buf, size_t size)
{
    snprintf(buf, size, "Lambda-Extension-Identifier: %s\r\n", api->identifier);
}

int extapi_next(struct extapi *api, struct ext_event *ret, struct extapi_error *err)
{
    return extapi_next_then(api, ret, err, NULL, NULL);
}

/* The hook once for the whole call, whichever try got the request out. */
struct sent_once {
    void (*fn)(void *ctx);
    void *ctx;
    bool called;
};

static void call_sent_once(void *ctx)
{
    struct sent_once *o = ctx;

    if (!o->called) {
        o->called = true;
        o->fn(o->ctx);
    }
}

int extapi_next_then(struct extapi *api, struct ext_event *ret, struct extapi_error *err,
                     void (*sent)(void *ctx), void *ctx)
{
    struct sent_once once = {.fn = sent, .ctx = ctx};
    char headers[HEADERS_MAX];
    struct apihttp_response resp;
    int r = -EIO;

    error_clear(err);
    identifier_header(api, headers, sizeof(headers));
    for (int attempt = 0; attempt <= EXTAPI_NEXT_RETRIES; attempt++) {
        /* No total timeout: the sandbox freezes inside this call.  An
         * answer cut off mid-body (reset, or closed before Content-Length)
         * comes back as -ECONNRESET and is asked for again. */
        r = call_then(api, "GET", "/2020-01-01/extension/event/next", headers, NULL, 0,
                      EXTAPI_MAX_EVENT_BYTES, NULL, sent != NULL ? call_sent_once : NULL, &once, &resp, err);
        if (r == -ECONNRESET || r == -ECONNREFUSED) {
            clock_sleep_ms(EXTAPI_NEXT_RETRY_DELAY_MS);
            continue;
        }
        break;
    }
    if (r < 0)
        return r;
    if (resp.status != 200) {
        error_from_answer(err, &resp);
        return errno_from_status(resp.status);
    }
    r = ext_event_parse(resp.body, resp.body_len, ret);
    if (r < 0 && err != NULL) {
        err->status = resp.status;
        snprintf(err->error_type, sizeof(err->error_type), "%s", "malformed event");
    }
    return r;
}

int extapi_subscription_body(const struct config *cfg, const char *schema_version, uint16_t port,
                             char *buf, size_t size)
{
    char types[64] = "";
    int n;

    n = snprintf(types, sizeof(types), "%s%s%s",
                 (cfg->telemetry_types & TELEMETRY_TYPE_PLATFORM) ? ",\"platform\"" : "",
                 (cfg->telemetry_types & TELEMETRY_TYPE_FUNCTION) ? ",\"function\"" : "",
                 (cfg->telemetry_types & TELEMETRY_TYPE_EXTENSION) ? ",\"extension\"" : "");
    if (n <= 0)
        return -EINVAL;
    /* types+1 skips the leading comma.  All three buffering values are sent
     * because AWS pages disagree on the defaults (trap 15). */
    n = snprintf(buf, size,
                 "{\"schemaVersion\":\"%s\",\"types\":[%s],"
                 "\"buffering\":{\"maxItems\":%u,\"maxBytes\":%u,\"timeoutMs\":%u},"
                 "\"destination\":{\"protocol\":\"HTTP\","
                 "\"URI\":\"http://sandbox.localdomain:%u/telemetry\"}}",
                 schema_version, types + 1, (unsigned)cfg->buffer_max_items,
                 (unsigned)cfg->buffer_max_bytes, (unsigned)cfg->buffer_timeout_ms, (unsigned)port);
    if (n < 0 || (size_t)n >= size)
        return -ENOBUFS;
    return 0;
}

int extapi_subscribe(struct extapi *api, const char *body, struct extapi_error *err)
{
    char headers[HEADERS_MAX];
    struct apihttp_response resp;
    size_t n;
    int r;

    error_clear(err);
    identifier_header(api, headers, sizeof(headers));
    n = strlen(headers);
    snprintf(headers + n, sizeof(headers) - n, "%s", "Content-Type: application/json\r\n");
    r = call(api, "PUT", "/2022-07-01/telemetry", headers, body, EXTAPI_REQUEST_TIMEOUT_MS,
             EXTAPI_MAX_RESPONSE_BYTES, NULL, &resp, err);
    if (r < 0)
        return r;
    if (resp.status == 200)
        return 0;
    error_from_answer(err, &resp);
    if (resp.status == 202)
        return 1; /* Telemetry.NotSupported in local emulators */
    return errno_from_status(resp.status);
}

int extapi_report_error(struct extapi *api, bool during_init, const char *error_type,
                        const char *message, struct extapi_error *err)
{
    char headers[HEADERS_MAX];
    struct apihttp_response resp;
    cJSON *root = cJSON_CreateObject();
    char *body = NULL;
    size_t n;
    int r;

    error_clear(err);
    /* The type goes into a header line: a control byte would split it. */
    for (const unsigned char *p = (const unsigned char *)error_type; *p != '\0'; p++)
        if (*p < 0x20 || *p == 0x7f) {
            cJSON_Delete(root);
            return -EINVAL;
        }
    if (root == NULL || cJSON_AddStringToObject(root, "errorMessage", message) == NULL ||
        cJSON_AddStringToObject(root, "errorType", error_type) == NULL ||
        (body = cJSON_PrintUnformatted(root)) == NULL) {
        cJSON_Delete(root);
        return -ENOMEM;
    }
    cJSON_Delete(root);
    identifier_header(api, headers, sizeof(headers));
    n = strlen(headers);
    snprintf(headers + n, sizeof(headers) - n,
             "Lambda-Extension-Function-Error-Type: %.160s\r\nContent-Type: application/json\r\n",
             error_type);
    r = call(api, "POST", during_init ? "/2020-01-01/extension/init/error" : "/2020-01-01/extension/exit/error",
             headers, body, EXTAPI_REQUEST_TIMEOUT_MS, EXTAPI_MAX_RESPONSE_BYTES, NULL, &resp, err);
    cJSON_free(body);
    if (r < 0)
        return r;
    if (resp.status != 202 && resp.status != 200) {
        error_from_answer(err, &resp);
        return errno_from_status(resp.status);
    }
    return 0;
}
