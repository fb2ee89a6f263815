/* Fuzz target for refusal_describe: any answer body and error-type header
 * give one NUL-terminated line without control bytes, within the buffer. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "refusal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* first line: the header (NULL when empty), the rest: the body */
    const uint8_t *nl = memchr(data, '\n', size);
    size_t hlen = nl != NULL ? (size_t)(nl - data) : 0;
    char *hdr = malloc(hlen + 1);
    char out[600];
    char small[24];

    if (hdr == NULL)
        return 0;
    memcpy(hdr, data, hlen);
    hdr[hlen] = '\0';
    const char *body = nl != NULL ? (const char *)nl + 1 : (const char *)data;
    size_t body_len = nl != NULL ? size - hlen - 1 : size;
    refusal_describe(403, hlen > 0 ? hdr : NULL, body, body_len, "xray:PutTraceSegments", out, sizeof(out));
    refusal_describe(400, hlen > 0 ? hdr : NULL, body, body_len, NULL, small, sizeof(small));
    free(hdr);
    if (memchr(out, '\0', sizeof(out)) == NULL || memchr(small, '\0', sizeof(small)) == NULL)
        abort();
    for (const char *p = out; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            abort();
    if (strncmp(out, "HTTP 403", 8) != 0)
        abort();
    return 0;
}
