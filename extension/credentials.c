/*
 * credentials.c - see credentials.h.
 */
#include "credentials.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "telemetry.h"

static int copy(char *dst, size_t size, const char *src)
{
    if (src == NULL)
        return -ENOENT;
    if ((size_t)snprintf(dst, size, "%s", src) >= size)
        return -E2BIG;
    return 0;
}

int credentials_from_env(config_getenv_fn getenv_fn, void *ctx, struct aws_credentials *ret)
{
    const char *id = getenv_fn("AWS_ACCESS_KEY_ID", ctx);
    const char *secret = getenv_fn("AWS_SECRET_ACCESS_KEY", ctx);
    const char *token = getenv_fn("AWS_SESSION_TOKEN", ctx);
    int r;

    credentials_clear(ret);
    if (id == NULL || id[0] == '\0' || secret == NULL || secret[0] == '\0')
        return -ENOENT;
    r = copy(ret->access_key_id, sizeof(ret->access_key_id), id);
    if (r == 0)
        r = copy(ret->secret_access_key, sizeof(ret->secret_access_key), secret);
    if (r == 0 && token != NULL)
        r = copy(ret->session_token, sizeof(ret->session_token), token);
    if (r < 0)
        credentials_clear(ret);
    return r;
}

int credentials_parse_container(const char *body, size_t len, struct aws_credentials *ret)
{
    cJSON *root;
    int r = 0;

    credentials_clear(ret);
    if (body == NULL)
        return -EPROTO;
    root = cJSON_ParseWithLengthOpts(body, len, NULL, false);
    if (!cJSON_IsObject(root)) {
        r = -EPROTO;
        goto out;
    }
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "AccessKeyId"));
    const char *secret = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "SecretAccessKey"));
    const char *token = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "Token"));
    const char *expiration = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "Expiration"));
    if (id == NULL || id[0] == '\0' || secret == NULL || secret[0] == '\0') {
        r = -EPROTO;
        goto out;
    }
    r = copy(ret->access_key_id, sizeof(ret->access_key_id), id);
    if (r == 0)
        r = copy(ret->secret_access_key, sizeof(ret->secret_access_key), secret);
    if (r == 0 && token != NULL)
        r = copy(ret->session_token, sizeof(ret->session_token), token);
    if (r == 0 && expiration != NULL && tel_parse_time(expiration, &ret->expires_us) < 0)
        ret->expires_us = 0; /* unparsable: treat as long-lived, refreshed on 403 */
out:
    cJSON_Delete(root);
    if (r < 0)
        credentials_clear(ret);
    return r;
}

void credentials_clear(struct aws_credentials *c)
{
    /* explicit_bzero: the compiler may not drop it as a dead store. */
    explicit_bzero(c, sizeof(*c));
}
