/*
 * fuzz_ext_event.c - the INVOKE / SHUTDOWN event parser on arbitrary bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ext_event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ext_event ev;

    if (ext_event_parse((const char *)data, size, &ev) < 0)
        return 0;
    if (ev.type != EXT_EVENT_INVOKE && ev.type != EXT_EVENT_SHUTDOWN)
        abort();
    if (ev.type == EXT_EVENT_INVOKE && ev.request_id[0] == '\0')
        abort();
    if (strnlen(ev.trace_header, sizeof(ev.trace_header)) == sizeof(ev.trace_header))
        abort();
    return 0;
}
