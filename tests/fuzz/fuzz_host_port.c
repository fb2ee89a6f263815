/*
 * fuzz_host_port.c - LAMBDA_TRACER_DAEMON_ADDRESS ("host:port",
 * "[IPv6]:port") on arbitrary bytes: the parser config.c validates the
 * setting with and udp.c opens the socket with.
 *
 * Accepted: a non-empty host without blanks, brackets or control bytes, a
 * port from 1 to 65535, and the address written back ("host:port", or
 * "[host]:port" for a host with a colon) parses to the same host and port.
 * A violation aborts.
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    char host[CONFIG_HOST_MAX], host2[CONFIG_HOST_MAX];
    char again[CONFIG_HOST_MAX + 16];
    uint16_t port = 0, port2 = 0;
    int r;

    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    r = config_parse_host_port(text, host, sizeof(host), &port);
    free(text);
    if (r < 0)
        return 0;
    check(r == 0 && port >= 1);
    check(host[0] != '\0' && strnlen(host, sizeof(host)) < sizeof(host));
    for (const char *p = host; *p; p++)
        check(*p > ' ' && *p < 0x7f && *p != '[' && *p != ']' && *p != '/');
    if (strchr(host, ':') != NULL)
        snprintf(again, sizeof(again), "[%s]:%u", host, (unsigned)port);
    else
        snprintf(again, sizeof(again), "%s:%u", host, (unsigned)port);
    check(config_parse_host_port(again, host2, sizeof(host2), &port2) == 0);
    check(strcmp(host, host2) == 0 && port == port2);
    return 0;
}
