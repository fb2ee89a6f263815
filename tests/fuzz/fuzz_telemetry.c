/*
 * fuzz_telemetry.c - the Telemetry API batch parser on arbitrary bytes.
 * Also checks invariants that would break consumers (counts add up, every
 * event has a type name, spans are bounded) and, differentially, that the
 * parser accepts exactly what the cJSON-based reader it replaced accepted
 * (tel_reference.h) and reads the same events from it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tel_reference.h"
#include "telemetry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tel_batch *batch = NULL;
    struct tel_reference ref;
    int r = tel_batch_parse((const char *)data, size, &batch);
    int rr = tel_reference_parse((const char *)data, size, &ref);

    if (r == -ENOMEM || rr == -ENOMEM) {
        tel_batch_free(r == 0 ? batch : NULL);
        if (rr == 0)
            tel_reference_free(&ref);
        return 0;
    }
    if ((r == 0) != (rr == 0))
        abort(); /* one accepts what the other refuses */
    if (r < 0)
        return 0;
    if (batch->count != ref.count || batch->invalid != ref.invalid)
        abort();
    for (size_t i = 0; i < batch->count; i++) {
        const struct tel_event *ev = &batch->events[i];
        if (ev->type_name == NULL || ev->span_count > TELEMETRY_MAX_SPANS)
            abort();
        if (!tel_reference_same_event(ev, &ref.events[i]))
            abort();
    }
    tel_batch_free(batch);
    tel_reference_free(&ref);
    return 0;
}
