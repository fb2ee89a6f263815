/*
 * fuzz_otlp_response.c - an OTLP/HTTP endpoint's answer on arbitrary bytes,
 * read as protobuf and as JSON (otlp_response.c).
 *
 * A refusal says nothing was rejected and keeps no message.  What is read
 * is written back (as protobuf, and as OTLP/JSON with cJSON) and must read
 * back the same: the count and the message, which always fits its buffer.
 * A violation aborts.
 */
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otlp_response.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
    if (!ok)
        abort();
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;

    do {
        p[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v != 0);
    return n;
}

static bool same(const struct otlp_partial *a, const struct otlp_partial *b)
{
    return a->present == b->present && a->rejected == b->rejected && strcmp(a->message, b->message) == 0;
}

static void round_trip_pb(const struct otlp_partial *p)
{
    uint8_t inner[16 + OTLP_RESPONSE_MESSAGE_BYTES], outer[32 + sizeof(inner)];
    size_t n = 0, m = 0, len = strlen(p->message);
    struct otlp_partial again;

    inner[n++] = 0x08;
    n += put_varint(inner + n, p->rejected);
    inner[n++] = 0x12;
    n += put_varint(inner + n, len);
    memcpy(inner + n, p->message, len);
    n += len;
    outer[m++] = 0x0a;
    m += put_varint(outer + m, n);
    memcpy(outer + m, inner, n);
    m += n;
    check(otlp_response_parse((const char *)outer, m, false, &again) == 0);
    check(same(p, &again));
}

static void round_trip_json(const struct otlp_partial *p)
{
    cJSON *root = cJSON_CreateObject(), *ps = cJSON_AddObjectToObject(root, "partialSuccess");
    char count[24];
    char *text;
    struct otlp_partial again;

    snprintf(count, sizeof(count), "%llu", (unsigned long long)p->rejected);
    cJSON_AddStringToObject(ps, "rejectedSpans", count);
    cJSON_AddStringToObject(ps, "errorMessage", p->message);
    text = cJSON_PrintUnformatted(root);
    check(text != NULL);
    check(otlp_response_parse(text, strlen(text), true, &again) == 0);
    check(same(p, &again));
    free(text);
    cJSON_Delete(root);
}

static void one(const uint8_t *data, size_t size, bool json)
{
    struct otlp_partial p;
    int r = otlp_response_parse((const char *)data, size, json, &p);

    check(memchr(p.message, '\0', sizeof(p.message)) != NULL);
    if (r != 0) {
        check(!p.present && p.rejected == 0 && p.message[0] == '\0');
        return;
    }
    if (!p.present) {
        check(p.rejected == 0 && p.message[0] == '\0');
        return;
    }
    round_trip_pb(&p);
    round_trip_json(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one(data, size, false);
    one(data, size, true);
    return 0;
}
