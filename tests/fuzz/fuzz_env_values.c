/*
 * fuzz_env_values.c - the checks on values from the environment that
 * reach a URL or a header: AWS_REGION, AWS_LAMBDA_RUNTIME_API and the
 * credentials (config_region_valid, config_runtime_api_valid,
 * credentials_value_ok, credentials_container_request) on arbitrary bytes.
 *
 * Holds: an accepted region is [a-z0-9-] and shorter than
 * CONFIG_REGION_MAX; an accepted runtime API has no userinfo, path, query,
 * fragment, blank or control byte, exactly one "host:port" split with a
 * port of 1 to 65535, and parses as config_parse_host_port does; an
 * accepted credential or container request holds no byte that could end a
 * header line.  A violation aborts.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "credentials.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
    if (!ok)
        abort();
}

static bool printable_no_blank(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f)
            return false;
    return true;
}

static const char *fuzz_getenv(const char *name, void *ctx)
{
    const char *const *v = ctx;
    if (strcmp(name, "AWS_CONTAINER_CREDENTIALS_FULL_URI") == 0)
        return v[0];
    if (strcmp(name, "AWS_CONTAINER_AUTHORIZATION_TOKEN") == 0)
        return v[1];
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    char host[CONFIG_HOST_MAX];
    uint16_t port = 0;

    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    if (config_region_valid(text)) {
        size_t len = strlen(text);
        check(len > 0 && len < CONFIG_REGION_MAX);
        check(strspn(text, "abcdefghijklmnopqrstuvwxyz0123456789-") == len);
    }
    if (config_runtime_api_valid(text)) {
        check(strlen(text) < CONFIG_RUNTIME_API_MAX);
        check(strpbrk(text, "@/?#%\\ ") == NULL && printable_no_blank(text));
        check(config_parse_host_port(text, host, sizeof(host), &port) == 0 && port >= 1);
        if (text[0] != '[')
            check(strchr(text, ':') == strrchr(text, ':'));
        check(strlen(strrchr(text, ':') + 1) <= 5);
    }
    if (credentials_value_ok(text))
        check(printable_no_blank(text));

    /* The same bytes as the URI, then as the token (split at the first NUL
     * of the input when there is one). */
    const char *second = memchr(data, '\0', size) != NULL ? text + strlen(text) + 1 : "tok";
    const char *vals[2][2] = {{text, second}, {"http://127.0.0.1:1/c", text}};
    for (int i = 0; i < 2; i++) {
        char url[512];
        char auth[512];
        int r = credentials_container_request(fuzz_getenv, (void *)vals[i], url, sizeof(url), auth,
                                              sizeof(auth));
        if (r < 0) {
            check(url[0] == '\0' && auth[0] == '\0');
            continue;
        }
        check(r == 0 && printable_no_blank(url));
        check(strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0);
        check(auth[0] == '\0' || strncmp(auth, "Authorization: ", 15) == 0);
        check(auth[0] == '\0' || printable_no_blank(auth + 15));
    }
    free(text);
    return 0;
}
