/*
 * fuzz_credentials.c - the container credentials endpoint's answer
 * (AWS_CONTAINER_CREDENTIALS_FULL_URI, SnapStart) on arbitrary bytes.
 *
 * Accepted: the key id and secret are non-empty and every field is a
 * NUL-terminated string equal to the JSON member it came from (nothing cut:
 * a cut secret would sign every request wrongly).  Refused: nothing of a
 * secret is left behind.  A violation aborts.
 */
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "credentials.h"
#include "telemetry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
    if (!ok)
        abort();
}

/* The field must hold exactly the member's string, or be empty when the
 * member is absent or not a string. */
static void check_field(const cJSON *root, const char *key, const char *field, size_t size)
{
    const char *want = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, key));

    check(strnlen(field, size) < size);
    check(strcmp(field, want != NULL ? want : "") == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct aws_credentials c;
    static const struct aws_credentials zero;
    int r;

    memset(&c, 0x5a, sizeof(c));
    r = credentials_parse_container((const char *)data, size, &c);
    if (r < 0) {
        check(memcmp(&c, &zero, sizeof(c)) == 0);
        return 0;
    }
    check(r == 0 && c.access_key_id[0] != '\0' && c.secret_access_key[0] != '\0');

    /* An independent read of the same body must agree. */
    cJSON *root = cJSON_ParseWithLengthOpts((const char *)data, size, NULL, false);
    check(cJSON_IsObject(root));
    check_field(root, "AccessKeyId", c.access_key_id, sizeof(c.access_key_id));
    check_field(root, "SecretAccessKey", c.secret_access_key, sizeof(c.secret_access_key));
    check_field(root, "Token", c.session_token, sizeof(c.session_token));
    /* Expiration: its time when it parses, else 0 (long-lived). */
    const char *exp = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "Expiration"));
    int64_t want_us = 0;
    if (exp == NULL || tel_parse_time(exp, &want_us) < 0)
        want_us = 0;
    check(c.expires_us == want_us);
    cJSON_Delete(root);
    credentials_clear(&c);
    check(memcmp(&c, &zero, sizeof(c)) == 0);
    return 0;
}
