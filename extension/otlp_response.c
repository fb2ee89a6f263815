/*
 * otlp_response.c - partial_success out of an ExportTraceServiceResponse.
 *
 *   message ExportTraceServiceResponse { ExportTracePartialSuccess partial_success = 1; }
 *   message ExportTracePartialSuccess  { int64 rejected_spans = 1; string error_message = 2; }
 *
 * Protobuf: unknown fields are skipped by wire type, a field repeated takes
 * its last value (a message field repeated merges), as protobuf parsers
 * do.  JSON: {"partialSuccess":{"rejectedSpans":"5","errorMessage":"..."}},
 * the 64-bit count a decimal string or a number.
 */
#include "otlp_response.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum wire { WIRE_VARINT = 0, WIRE_I64 = 1, WIRE_LEN = 2, WIRE_I32 = 5 };

struct cursor {
    const uint8_t *p, *end;
};

/* A base-128 varint of at most 10 bytes; false past the end or longer. */
static bool varint(struct cursor *c, uint64_t *ret)
{
    uint64_t v = 0;

    for (unsigned shift = 0; shift < 70 && c->p < c->end; shift += 7) {
        uint8_t b = *c->p++;
        if (shift == 63 && b > 1)
            return false; /* more than 64 bits */
        v |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            *ret = v;
            return true;
        }
    }
    return false;
}

/* One field's key; its payload (LEN) or value (the others) consumed or
 * returned.  false on a malformed or unsupported (group) field. */
static bool field(struct cursor *c, uint64_t *ret_number, enum wire *ret_wire, uint64_t *ret_value,
                  struct cursor *ret_payload)
{
    uint64_t key, n;

    if (!varint(c, &key) || key >> 3 == 0 || key >> 3 > 0x1fffffff)
        return false;
    *ret_number = key >> 3;
    *ret_wire = (enum wire)(key & 7);
    switch (key & 7) {
    case WIRE_VARINT:
        return varint(c, ret_value);
    case WIRE_I64:
    case WIRE_I32:
        n = (key & 7) == WIRE_I64 ? 8 : 4;
        if ((uint64_t)(c->end - c->p) < n)
            return false;
        c->p += n;
        return true;
    case WIRE_LEN:
        if (!varint(c, &n) || n > (uint64_t)(c->end - c->p))
            return false;
        ret_payload->p = c->p;
        ret_payload->end = c->p + n;
        c->p += n;
        return true;
    default:
        return false; /* groups (3, 4) and 6, 7: not in these messages */
    }
}

static void set_message(struct otlp_partial *ret, const char *s, size_t len)
{
    if (len >= sizeof(ret->message))
        len = sizeof(ret->message) - 1;
    memcpy(ret->message, s, len);
    ret->message[len] = '\0';
}

static bool parse_partial_pb(struct cursor c, struct otlp_partial *ret)
{
    while (c.p < c.end) {
        uint64_t number, value = 0;
        enum wire wire;
        struct cursor payload = {0};

        if (!field(&c, &number, &wire, &value, &payload))
            return false;
        if (number == 1 && wire == WIRE_VARINT)
            ret->rejected = (int64_t)value > 0 ? value : 0; /* int64: negative means none */
        else if (number == 2 && wire == WIRE_LEN)
            set_message(ret, (const char *)payload.p, (size_t)(payload.end - payload.p));
        else if (number <= 2)
            return false; /* a known field with the wrong wire type */
    }
    return true;
}

static bool parse_pb(const char *body, size_t len, struct otlp_partial *ret)
{
    struct cursor c = {(const uint8_t *)body, (const uint8_t *)body + len};

    while (c.p < c.end) {
        uint64_t number, value;
        enum wire wire;
        struct cursor payload = {0};

        if (!field(&c, &number, &wire, &value, &payload))
            return false;
        if (number != 1)
            continue;
        if (wire != WIRE_LEN || !parse_partial_pb(payload, ret))
            return false;
        ret->present = true;
    }
    return true;
}

/* An int64 count, a decimal string (proto3 JSON's int64) or a whole
 * number; negative means none, as in protobuf above. */
static bool json_count(const cJSON *item, uint64_t *ret)
{
    long long v;

    if (cJSON_IsNumber(item)) {
        double d = item->valuedouble;
        if (!(d > -9223372036854775808.0 && d < 9223372036854775808.0) || floor(d) != d)
            return false;
        v = (long long)d;
    } else if (cJSON_IsString(item)) {
        const char *s = item->valuestring;
        char *end;
        if (*s != '-' && (*s < '0' || *s > '9'))
            return false;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno != 0 || end == s || *end != '\0')
            return false;
    } else {
        return false;
    }
    *ret = v > 0 ? (uint64_t)v : 0;
    return true;
}

static bool parse_json(const char *body, size_t len, struct otlp_partial *ret)
{
    cJSON *root = cJSON_ParseWithLength(body, len);
    const cJSON *ps, *item;
    bool ok = false;

    if (!cJSON_IsObject(root))
        goto out;
    ps = cJSON_GetObjectItemCaseSensitive(root, "partialSuccess");
    if (ps == NULL || cJSON_IsNull(ps)) {
        ok = true;
        goto out;
    }
    if (!cJSON_IsObject(ps))
        goto out;
    ret->present = true;
    item = cJSON_GetObjectItemCaseSensitive(ps, "rejectedSpans");
    if (item != NULL && !cJSON_IsNull(item) && !json_count(item, &ret->rejected))
        goto out;
    item = cJSON_GetObjectItemCaseSensitive(ps, "errorMessage");
    if (cJSON_IsString(item))
        set_message(ret, item->valuestring, strlen(item->valuestring));
    else if (item != NULL && !cJSON_IsNull(item))
        goto out;
    ok = true;
out:
    cJSON_Delete(root);
    return ok;
}

int otlp_response_parse(const char *body, size_t len, bool json, struct otlp_partial *ret)
{
    bool ok;

    memset(ret, 0, sizeof(*ret));
    if (body == NULL || len == 0)
        return 0;
    ok = json || body[0] == '{' ? parse_json(body, len, ret) : parse_pb(body, len, ret);
    if (!ok)
        memset(ret, 0, sizeof(*ret));
    return ok ? 0 : -EINVAL;
}
