/*
 * fuzz_extapi_response.c - what the Extensions API answers, on arbitrary
 * bytes: the register answer's body, an error answer's body, and a
 * response header line (the Lambda-Extension-Identifier we send back in
 * every later request).
 *
 * Every string copied out is NUL-terminated and is the JSON member's value,
 * cut to fit; an error body without a member leaves the field as it was;
 * a captured header value has no control byte and no surrounding blanks,
 * so it cannot split the header line it is sent back in.  A violation
 * aborts.
 */
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "extapi.h"
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
