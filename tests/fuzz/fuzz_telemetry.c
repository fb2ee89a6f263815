/*
 * fuzz_telemetry.c - the Telemetry API batch parser on arbitrary bytes.
 *
 * Checks what consumers rely on, against an independent read of the same
 * JSON: the batch accounts for every element exactly once (count + invalid
 * equals the array's length, so a batch never yields more records than it
 * holds), each event's type and time are those of its element, spans are
 * bounded and named.  The input is also read as one timestamp: an accepted
 * time written back by gmtime_r() as "YYYY-MM-DDTHH:MM:SS.ffffffZ" parses
 * to the same microsecond.  A violation aborts.
 *
 * Also checks invariants that would break consumers (counts add up, every
 * event has a type name, spans are bounded) and, differentially, that the
 * parser accepts exactly what the cJSON-based reader it replaced accepted
 * (tel_reference.h) and reads the same events from it, and that parsing in
 * place (tel_batch_parse_inplace, strings decoded in the body itself) gives
 * the same verdict and events as copying them out.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tel_reference.h"
#include "telemetry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
    if (!ok)
        abort();
}

static void check_time_round_trip(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    char again[64];
    int64_t us = 0, us2 = 0;
    struct tm tm;

    if (text == NULL)
        return;
    memcpy(text, data, size);
    text[size] = '\0';
    if (tel_parse_time(text, &us) < 0) {
        free(text);
        return;
    }
    free(text);
    /* Floor division: negative times have a positive fraction. */
    int64_t secs = us / 1000000 - (us % 1000000 < 0);
    int64_t frac = us - secs * 1000000;
    time_t t = (time_t)secs;
    check(frac >= 0 && frac < 1000000);
    check(gmtime_r(&t, &tm) != NULL);
    if (tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999)
        return; /* an offset moved it out of four-digit years */
    snprintf(again, sizeof(again), "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long long)frac);
    check(tel_parse_time(again, &us2) == 0);
    check(us2 == us);
}

/* The element's own view: is it a record the parser should keep? */
static bool element_valid(const cJSON *el, int64_t *ret_time_us, const char **ret_type)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(el, "time");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(el, "type");

    if (!cJSON_IsObject(el) || !cJSON_IsString(t) || !cJSON_IsString(type) ||
        cJSON_GetObjectItemCaseSensitive(el, "record") == NULL)
        return false;
    *ret_type = type->valuestring;
    return tel_parse_time(t->valuestring, ret_time_us) == 0;
}

/* The same events from the body decoded in place (a copy of it, which
 * the events point into). */
static void check_in_place(const uint8_t *data, size_t size, const struct tel_batch *want)
{
    char *copy = malloc(size);
    struct tel_batch *b = NULL;
    int r;

    if (copy == NULL)
        return;
    memcpy(copy, data, size);
    r = tel_batch_parse_inplace(copy, size, &b, NULL);
    if (r == -ENOMEM) {
        free(copy);
        return;
    }
    check(r == 0);
    check(b->count == want->count && b->invalid == want->invalid);
    for (size_t i = 0; i < b->count; i++) {
        const struct tel_event *e = &b->events[i];
        check(tel_reference_same_event(e, &want->events[i]));
        check(e->text == NULL || (e->text >= copy && e->text < copy + size));
    }
    tel_batch_free(b);
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tel_batch *batch = NULL;
    struct tel_reference ref;
    cJSON *root;
    const cJSON *el;
    size_t i = 0, invalid = 0;
    int r, rr;

    check_time_round_trip(data, size);
    r = tel_batch_parse((const char *)data, size, &batch);
    rr = tel_reference_parse((const char *)data, size, &ref);
    if (r == -ENOMEM || rr == -ENOMEM) {
        tel_batch_free(r == 0 ? batch : NULL);
        if (rr == 0)
            tel_reference_free(&ref);
        return 0;
    }
    /* The scanner accepts exactly what the cJSON-based reader it replaced
     * accepted (tel_reference.h). */
    check((r == 0) == (rr == 0));
    root = cJSON_ParseWithLengthOpts((const char *)data, size, NULL, false);
    if (r < 0) {
        /* the reason for the log line: the same verdict, an offset inside
         * the body, and one short line of printable ASCII */
        struct tel_batch *again = NULL;
        struct tel_parse_error why;
        memset(&why, 0x5a, sizeof(why));
        int rw = tel_batch_parse_why((const char *)data, size, &again, &why);
        if (rw == -EPROTO) {
            size_t n = strnlen(why.what, sizeof(why.what));
            check(n > 0 && n < sizeof(why.what));
            check(why.offset <= size);
            for (size_t k = 0; k < n; k++)
                check(why.what[k] >= ' ' && why.what[k] < 0x7f);
        } else {
            check(rw == -ENOMEM);
        }
        check(!cJSON_IsArray(root));
        cJSON_Delete(root);
        return 0;
    }
    check(cJSON_IsArray(root));
    check(batch->count + batch->invalid == (size_t)cJSON_GetArraySize(root));
    cJSON_ArrayForEach(el, root)
    {
        int64_t time_us;
        const char *type;

        if (!element_valid(el, &time_us, &type)) {
            invalid++;
            continue;
        }
        check(i < batch->count);
        const struct tel_event *ev = &batch->events[i++];
        check(ev->time_us == time_us);
        check(ev->type_name != NULL && strcmp(ev->type_name, ev->type == TEL_UNKNOWN ? type : tel_type_name(ev->type)) == 0);
        check(ev->type == TEL_UNKNOWN || strcmp(type, tel_type_name(ev->type)) == 0);
        check(ev->span_count <= TELEMETRY_MAX_SPANS);
        for (unsigned s = 0; s < ev->span_count; s++)
            check(ev->spans[s].name != NULL);
        if (ev->request_id != NULL)
            (void)strlen(ev->request_id);
        if (ev->text != NULL)
            (void)strlen(ev->text);
    }
    check(i == batch->count && invalid == batch->invalid);
    check(batch->count == ref.count && batch->invalid == ref.invalid);
    for (i = 0; i < batch->count; i++)
        check(tel_reference_same_event(&batch->events[i], &ref.events[i]));
    check_in_place(data, size, batch);
    tel_batch_free(batch);
    tel_reference_free(&ref);
    cJSON_Delete(root);
    return 0;
}
