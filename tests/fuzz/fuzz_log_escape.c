/*
 * fuzz_log_escape.c - log.c's escaper on arbitrary bytes: every log line
 * passes through it, whatever the platform or the function put in it.
 *
 * Holds: the output is NUL-terminated within the buffer, has no byte below
 * 0x20 and no DEL, is valid UTF-8 without C1 controls, U+2028 or U+2029
 * (checked here by an independent decoder), covers a prefix of the input
 * (consumed <= size), and with room enough covers all of it; printable
 * ASCII without a backslash comes out unchanged.  A violation aborts.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
    if (!ok)
        abort();
}

/* Decodes one code point at s (n bytes left); returns its length, 0 when invalid. */
static size_t decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    size_t len;
    uint32_t min;

    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if ((s[0] & 0xe0) == 0xc0) {
        len = 2, min = 0x80, *cp = s[0] & 0x1fu;
    } else if ((s[0] & 0xf0) == 0xe0) {
        len = 3, min = 0x800, *cp = s[0] & 0x0fu;
    } else if ((s[0] & 0xf8) == 0xf0) {
        len = 4, min = 0x10000, *cp = s[0] & 0x07u;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        *cp = (*cp << 6) | (s[i] & 0x3fu);
    }
    if (*cp < min || *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff))
        return 0;
    return len;
}

static void check_output(const char *out, size_t n, size_t dst_size)
{
    const unsigned char *s = (const unsigned char *)out;
    size_t i = 0;

    check(n < dst_size && out[n] == '\0' && strlen(out) == n);
    while (i < n) {
        uint32_t cp = 0;
        size_t len = decode(s + i, n - i, &cp);
        check(len > 0);
        check(cp >= 0x20 && cp != 0x7f && !(cp >= 0x80 && cp < 0xa0) && cp != 0x2028 && cp != 0x2029);
        i += len;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t big_size = size * 4 + 1;
    char *big = malloc(big_size);
    char small[37];
    size_t consumed = 0;
    size_t n;
    bool plain = true;

    if (big == NULL)
        return 0;
    n = log_escape((const char *)data, size, big, big_size, &consumed);
    check_output(big, n, big_size);
    check(consumed == size); /* four bytes per input byte is always room enough */
    for (size_t i = 0; i < size; i++)
        if (data[i] < 0x20 || data[i] >= 0x7f || data[i] == '\\')
            plain = false;
    if (plain)
        check(n == size && memcmp(big, data, size) == 0);

    n = log_escape((const char *)data, size, small, sizeof(small), &consumed);
    check_output(small, n, sizeof(small));
    check(consumed <= size);
    /* what fit is the start of the full output */
    check(memcmp(small, big, n) == 0);
    free(big);
    return 0;
}
