/*
 * fuzz_otel_settings.c - the OpenTelemetry settings' parsers on arbitrary
 * bytes: OTEL_RESOURCE_ATTRIBUTES, the OTLP endpoint URLs (all three
 * kinds) and AWS_XRAY_DAEMON_ADDRESS.  The first byte picks the parser.
 *
 * Resource attributes: at most RESOURCE_ATTRS_MAX "key\0value\0" pairs,
 * unique non-empty keys without blanks, no control byte anywhere; written
 * back with every byte percent-encoded they parse to the same bytes.
 * URLs: what is accepted starts with http:// or https://, holds only
 * printable ASCII without '#' or '\', no '@' in the authority, a base ends
 * in /v1/traces; taken again as is it comes back unchanged.  Daemon
 * address: the result is a "host:port" config_parse_host_port takes.  A
 * violation aborts.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
    if (!ok)
        abort();
}

static void resource_attributes(const char *text)
{
    static char out[CONFIG_MAX_VALUE_BYTES], again[CONFIG_MAX_VALUE_BYTES];
    static char encoded[CONFIG_MAX_VALUE_BYTES * 3 + 8];
    size_t len = 0, len2 = 0, off = 0, pairs = 0, eo = 0;

    if (config_parse_resource_attributes(text, out, sizeof(out), &len) < 0)
        return;
    check(len <= sizeof(out));
    while (off < len) {
        const char *k = out + off;
        size_t klen = strnlen(k, len - off);
        check(klen > 0 && klen < len - off && memchr(k, ' ', klen) == NULL);
        const char *v = k + klen + 1;
        size_t vlen = strnlen(v, len - off - klen - 1);
        check(vlen < len - off - klen - 1);
        for (size_t i = 0; i < klen; i++)
            check((unsigned char)k[i] >= 0x20 && k[i] != 0x7f);
        for (size_t i = 0; i < vlen; i++)
            check((unsigned char)v[i] >= 0x20 && v[i] != 0x7f);
        for (size_t o = 0; o < off;) { /* unique keys */
            size_t ol = strlen(out + o);
            check(ol != klen || memcmp(out + o, k, klen) != 0);
            o += ol + 1 + strlen(out + o + ol + 1) + 1;
        }
        for (size_t i = 0; i < klen + 1 + vlen; i++) {
            if (i == klen) {
                encoded[eo++] = '=';
                continue;
            }
            check(eo + 3 < sizeof(encoded));
            eo += (size_t)snprintf(encoded + eo, sizeof(encoded) - eo, "%%%02x", (unsigned)(unsigned char)k[i]);
        }
        encoded[eo++] = ',';
        pairs++;
        off += klen + 1 + vlen + 1;
    }
    check(off == len && pairs <= RESOURCE_ATTRS_MAX);
    encoded[eo] = '\0';
    /* every byte encoded takes three: the decoded form must still fit */
    check(config_parse_resource_attributes(encoded, again, sizeof(again), &len2) == 0);
    check(len2 == len && memcmp(out, again, len) == 0);
}

static void url(const char *text, enum config_url_kind kind)
{
    char out[512], again[512];
    const char *auth;
    size_t n;

    if (config_check_url(text, kind, out, sizeof(out)) < 0)
        return;
    check(strncmp(out, "http://", 7) == 0 || strncmp(out, "https://", 8) == 0);
    for (const char *p = out; *p; p++)
        check(*p > ' ' && *p < 0x7f && *p != '#' && *p != '\\');
    auth = strstr(out, "://") + 3;
    n = strcspn(auth, "/?");
    check(n > 0 && memchr(auth, '@', n) == NULL);
    if (kind != CONFIG_URL_AS_IS) {
        check(strlen(out) >= 10 && strcmp(out + strlen(out) - 10, "/v1/traces") == 0);
        check(strchr(out, '?') == NULL);
    }
    check(config_check_url(out, CONFIG_URL_AS_IS, again, sizeof(again)) == 0);
    check(strcmp(out, again) == 0);
    check(config_check_url(out, CONFIG_URL_BASE_OR_FULL, again, sizeof(again)) == 0 ||
          kind == CONFIG_URL_AS_IS);
}

static void daemon_address(const char *text)
{
    char out[128], host[CONFIG_HOST_MAX];
    uint16_t port;

    if (config_parse_daemon_env(text, out, sizeof(out)) < 0)
        return;
    check(strchr(out, ' ') == NULL);
    check(config_parse_host_port(out, host, sizeof(host), &port) == 0 && port > 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text;

    if (size < 1 || size > CONFIG_MAX_VALUE_BYTES + 1)
        return 0; /* longer values are refused before any parser sees them */
    text = malloc(size);
    if (text == NULL)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0'; /* a setting is a C string: it ends at the first NUL */
    switch (data[0] % 5) {
    case 0:
        resource_attributes(text);
        break;
    case 1:
        url(text, CONFIG_URL_AS_IS);
        break;
    case 2:
        url(text, CONFIG_URL_BASE);
        break;
    case 3:
        url(text, CONFIG_URL_BASE_OR_FULL);
        break;
    default:
        daemon_address(text);
        break;
    }
    free(text);
    return 0;
}
