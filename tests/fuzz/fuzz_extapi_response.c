/*
 * fuzz_extapi_response.c - what the Extensions API answers, on arbitrary
 * bytes: the whole HTTP answer as apihttp reads it off the socket (status
 * line, header fields, Content-Length / chunked / read-to-close bodies), the
 * register answer's body, an error answer's body, and a response header line
 * (the Lambda-Extension-Identifier we send back in every later request).
 *
 * The answer parser returns one of its documented results (never "more"
 * once the server closed); a whole answer has a final status, a
 * NUL-terminated body inside the input's bytes within the limit, and parses
 * the same from exactly the bytes it consumed.
 *
 * Every string copied out is NUL-terminated and is the JSON member's value,
 * cut to fit; an error body without a member leaves the field as it was;
 * a captured header value has no control byte and no surrounding blanks,
 * so it cannot split the header line it is sent back in.  A violation
 * aborts.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "extapi.h"
#include "apihttp.h"
#include "http_client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
    if (!ok)
        abort();
}

/* field (size bytes) holds the member's string cut to size - 1 bytes, or
 * `absent` when the member is missing or not a string. */
static void check_field(const cJSON *root, const char *key, const char *field, size_t size,
                        const char *absent)
{
    const char *want = cJSON_IsObject(root)
                           ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, key))
                           : NULL;

    check(strnlen(field, size) < size);
    if (want == NULL)
        want = absent;
    check(strncmp(field, want, size - 1) == 0);
}

#define HEAD_MAX 512
#define BODY_MAX 1024

static char *copy_of(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1); /* the parser's spare byte */

    if (buf != NULL)
        memcpy(buf, data, size);
    return buf;
}

static void check_answer(const uint8_t *data, size_t size, bool eof)
{
    struct apihttp_response resp;
    struct apihttp_parsed how;
    char *buf = copy_of(data, size);
    int r;

    if (buf == NULL)
        return;
    r = apihttp_parse_response(buf, size, eof, HEAD_MAX, BODY_MAX, "Lambda-Extension-Identifier",
                               &resp, &how);
    check(r == 1 || r == -EMSGSIZE || r == -EPROTO || r == -ECONNRESET || (r == 0 && !eof));
    if (r == 1) {
        size_t clen = strnlen(resp.captured, sizeof(resp.captured));
        check(resp.status >= 200 && resp.status <= 599);
        check(resp.body >= buf && resp.body + resp.body_len <= buf + size);
        check(resp.body_len <= BODY_MAX && resp.body[resp.body_len] == '\0');
        check(how.consumed > 0 && how.consumed <= size);
        check(!how.keep_alive || (how.consumed == size && !eof));
        check(clen < sizeof(resp.captured));
        for (size_t i = 0; i < clen; i++)
            check((unsigned char)resp.captured[i] >= 0x20 && resp.captured[i] != 0x7f);
        if (!eof) {
            /* The same answer from exactly the bytes it took. */
            struct apihttp_response again;
            struct apihttp_parsed how2;
            char *body = malloc(resp.body_len + 1);
            char *buf2 = copy_of(data, how.consumed);
            if (body != NULL && buf2 != NULL) {
                size_t blen = resp.body_len;
                memcpy(body, resp.body, blen);
                check(apihttp_parse_response(buf2, how.consumed, false, HEAD_MAX, BODY_MAX, NULL,
                                             &again, &how2) == 1);
                check(again.status == resp.status && again.body_len == blen &&
                      memcmp(again.body, body, blen) == 0 && how2.consumed == how.consumed);
            }
            free(body);
            free(buf2);
        }
    }
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    struct extapi_registration reg;
    struct extapi_error err;
    char value[128];
    cJSON *root;

    memset(&reg, 0x5a, sizeof(reg));
    extapi_parse_registration(body, size, &reg);
    memset(&err, 0, sizeof(err));
    snprintf(err.error_type, sizeof(err.error_type), "before");
    snprintf(err.message, sizeof(err.message), "before");
    extapi_parse_error(body, size, &err);

    root = cJSON_ParseWithLengthOpts(body, size, NULL, false);
    check_field(root, "functionName", reg.function_name, sizeof(reg.function_name), "");
    check_field(root, "functionVersion", reg.function_version, sizeof(reg.function_version), "");
    check_field(root, "handler", reg.handler, sizeof(reg.handler), "");
    check_field(root, "accountId", reg.account_id, sizeof(reg.account_id), "");
    check_field(root, "errorType", err.error_type, sizeof(err.error_type), "before");
    check_field(root, "errorMessage", err.message, sizeof(err.message), "before");
    cJSON_Delete(root);

    check_answer(data, size, false);
    check_answer(data, size, true);

    memset(value, 0x5a, sizeof(value));
    if (http_client_header_value(body, size, "Lambda-Extension-Identifier", value, sizeof(value))) {
        size_t len = strnlen(value, sizeof(value));

        check(len < sizeof(value));
        check(size > 27 && strncasecmp(body, "Lambda-Extension-Identifier:", 28) == 0);
        for (size_t i = 0; i < len; i++)
            check((unsigned char)value[i] >= 0x20 && value[i] != 0x7f);
        check(len == 0 || (value[0] != ' ' && value[0] != '\t' && value[len - 1] != ' ' &&
                           value[len - 1] != '\t'));
        /* The value is the line's own bytes. */
        check(len == 0 || memmem(body, size, value, len) != NULL);
    }
    return 0;
}
