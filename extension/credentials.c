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

bool credentials_value_ok(const char *text)
{
    if (text == NULL)
        return false;
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++)
        if (*p <= ' ' || *p >= 0x7f)
            return false;
    return true;
}

/* Every value copied here ends up in a header line (the session token as
 * X-Amz-Security-Token, the key id in Authorization): a CR or LF would add
 * header lines of the sender's choosing, so only printable ASCII without
 * blanks (what AWS issues: key ids, base64) passes. */
static int copy(char *dst, size_t size, const char *src)
{
    if (src == NULL)
        return -ENOENT;
    if (!credentials_value_ok(src))
        return -EINVAL;
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

void credentials_env_problem(config_getenv_fn getenv_fn, void *ctx, char *why, size_t why_size)
{
    static const char *const names[] = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"};
    const size_t sizes[] = {sizeof(((struct aws_credentials *)0)->access_key_id),
                            sizeof(((struct aws_credentials *)0)->secret_access_key),
                            sizeof(((struct aws_credentials *)0)->session_token)};
    size_t used = 0;

    if (why_size == 0)
        return;
    why[0] = '\0';
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *v = getenv_fn(names[i], ctx);
        const char *problem = NULL;
        int n;

        if (v == NULL)
            problem = i < 2 ? "unset" : NULL; /* the session token is optional */
        else if (v[0] == '\0')
            problem = i < 2 ? "empty" : NULL;
        else if (!credentials_value_ok(v))
            problem = "holds a blank or control byte";
        else if (strlen(v) >= sizes[i])
            problem = "too long";
        if (problem == NULL)
            continue;
        n = snprintf(why + used, why_size - used, "%s%s %s", used > 0 ? ", " : "", names[i], problem);
        if (n < 0 || (size_t)n >= why_size - used)
            return;
        used += (size_t)n;
    }
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
    if (r == -EINVAL)
        r = -EPROTO;
    if (r == 0 && expiration != NULL && tel_parse_time(expiration, &ret->expires_us) < 0)
        ret->expires_us = 0; /* unparsable: treat as long-lived, refreshed on 403 */
out:
    cJSON_Delete(root);
    if (r < 0)
        credentials_clear(ret);
    return r;
}

int credentials_container_request(config_getenv_fn getenv_fn, void *ctx, char *url, size_t url_size,
                                  char *auth_header, size_t auth_size)
{
    const char *uri = getenv_fn("AWS_CONTAINER_CREDENTIALS_FULL_URI", ctx);
    const char *token = getenv_fn("AWS_CONTAINER_AUTHORIZATION_TOKEN", ctx);
    int n;

    if (url_size > 0)
        url[0] = '\0';
    if (auth_size > 0)
        auth_header[0] = '\0';
    if (uri == NULL || uri[0] == '\0')
        return -ENOENT;
    if (!credentials_value_ok(uri) ||
        (strncmp(uri, "http://", 7) != 0 && strncmp(uri, "https://", 8) != 0) ||
        (token != NULL && !credentials_value_ok(token)))
        return -EINVAL;
    if ((size_t)snprintf(url, url_size, "%s", uri) >= url_size)
        goto too_big;
    if (token == NULL)
        return 0;
    n = snprintf(auth_header, auth_size, "Authorization: %s", token);
    if (n < 0 || (size_t)n >= auth_size)
        goto too_big;
    return 0;
too_big:
    if (url_size > 0)
        url[0] = '\0';
    if (auth_size > 0)
        explicit_bzero(auth_header, auth_size);
    return -E2BIG;
}

void credentials_clear(struct aws_credentials *c)
{
    /* explicit_bzero: the compiler may not drop it as a dead store. */
    explicit_bzero(c, sizeof(*c));
}
