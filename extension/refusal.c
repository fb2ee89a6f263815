/*
 * refusal.c - an endpoint's reason for refusing a request, quoted safely.
 * See refusal.h.
 */
#include "refusal.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>


/* The raw (still JSON-escaped) string value of the first "key": "..." in
 * body, as a pointer and length; false when absent or unterminated. */
static bool json_string(const char *body, size_t body_len, const char *key, const char **ret,
                        size_t *ret_len)
{
    size_t key_len = strlen(key);

    for (size_t i = 0; i + key_len + 2 <= body_len; i++) {
        size_t j;
        if (body[i] != '"' || memcmp(body + i + 1, key, key_len) != 0 || body[i + 1 + key_len] != '"')
            continue;
        j = i + key_len + 2;
        while (j < body_len && (body[j] == ' ' || body[j] == '\t' || body[j] == '\r' || body[j] == '\n'))
            j++;
        if (j >= body_len || body[j] != ':')
            continue;
        j++;
        while (j < body_len && (body[j] == ' ' || body[j] == '\t' || body[j] == '\r' || body[j] == '\n'))
            j++;
        if (j >= body_len || body[j] != '"')
            continue;
        j++;
        for (size_t k = j; k < body_len; k++) {
            if (body[k] == '\\') {
                k++;
                continue;
            }
            if (body[k] == '"') {
                *ret = body + j;
                *ret_len = k - j;
                return true;
            }
        }
        return false;
    }
    return false;
}

/* A protobuf varint at *p (advanced); false when cut or over 64 bits. */
static bool varint(const unsigned char **p, const unsigned char *end, uint64_t *ret)
{
    uint64_t v = 0;

    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        unsigned char b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            *ret = v;
            return true;
        }
    }
    return false;
}

/* google.rpc.Status in protobuf: the message (field 2, bytes). */
static bool proto_message(const char *body, size_t body_len, const char **ret, size_t *ret_len)
{
    const unsigned char *p = (const unsigned char *)body, *end = p + body_len;

    while (p < end) {
        uint64_t key, v;
        if (!varint(&p, end, &key))
            return false;
        switch (key & 7) {
        case 0:
            if (!varint(&p, end, &v))
                return false;
            break;
        case 2:
            if (!varint(&p, end, &v) || v > (uint64_t)(end - p))
                return false;
            if (key >> 3 == 2) {
                *ret = (const char *)p;
                *ret_len = (size_t)v;
                return true;
            }
            p += v;
            break;
        case 1:
            if (end - p < 8)
                return false;
            p += 8;
            break;
        case 5:
            if (end - p < 4)
                return false;
            p += 4;
            break;
        default:
            return false;
        }
    }
    return false;
}

/* Whether the bytes read as text (printable ASCII, blanks, UTF-8). */
static bool looks_like_text(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 && c != '\t' && c != '\r' && c != '\n')
            return false;
    }
    return len > 0;
}

/* Appends s (len bytes, at most cap of them), JSON escapes decoded when
 * json (\uXXXX kept as written), every control byte made a blank: the
 * piece is one line by itself; log_write escapes what else needs it. */
static size_t put_clean(char *ret, size_t ret_size, size_t used, const char *s, size_t len, size_t cap, bool json)
{
    size_t taken = 0, i = 0;

    while (i < len && taken < cap && used + 1 < ret_size) {
        char c = s[i++];
        if (json && c == '\\' && i < len) {
            char e = s[i++];
            if (e == 'n' || e == 'r' || e == 't' || e == 'b' || e == 'f')
                c = ' ';
            else
                c = e;
            if (e == 'u') {
                c = '\\';
                i--;
            }
        }
        if ((unsigned char)c < 0x20 || c == 0x7f)
            c = ' ';
        ret[used++] = c;
        taken++;
    }
    ret[used] = '\0';
    if (i < len && used + 4 <= ret_size) {
        memcpy(ret + used, "...", 4);
        used += 3;
    }
    return used;
}

static size_t put(char *ret, size_t ret_size, size_t used, const char *s)
{
    return put_clean(ret, ret_size, used, s, strlen(s), ret_size, false);
}

void refusal_describe(long status, const char *error_type_header, const char *body, size_t body_len,
                      const char *permission, char *ret, size_t ret_size)
{
    const char *type = NULL, *msg = NULL;
    size_t type_len = 0, msg_len = 0, used;
    bool type_json = true, msg_json = true;
    char head[32];

    if (ret_size == 0)
        return;
    ret[0] = '\0';
    if (body == NULL)
        body_len = 0;
    if (body_len > 0 && !json_string(body, body_len, "__type", &type, &type_len))
        json_string(body, body_len, "code", &type, &type_len); /* some answer a string code */
    if (type == NULL && error_type_header != NULL && error_type_header[0] != '\0') {
        const char *colon = strchr(error_type_header, ':');
        type = error_type_header;
        type_json = false;
        type_len = colon != NULL ? (size_t)(colon - type) : strlen(type);
    }
    if (type != NULL) { /* "com.amazon.coral.service#AccessDeniedException" */
        const char *hash = memchr(type, '#', type_len);
        if (hash != NULL) {
            type_len -= (size_t)(hash + 1 - type);
            type = hash + 1;
        }
    }
    if (body_len > 0 && !json_string(body, body_len, "message", &msg, &msg_len) &&
        !json_string(body, body_len, "Message", &msg, &msg_len)) {
        msg_json = false;
        if (body[0] != '{' && !proto_message(body, body_len, &msg, &msg_len) &&
            looks_like_text(body, body_len)) {
            msg = body;
            msg_len = body_len;
        }
    }
    snprintf(head, sizeof(head), "HTTP %ld", status);
    used = put(ret, ret_size, 0, head);
    if (type != NULL && type_len > 0) {
        used = put(ret, ret_size, used, " ");
        used = put_clean(ret, ret_size, used, type, type_len, REFUSAL_TYPE_MAX, type_json);
    }
    if (msg != NULL && msg_len > 0) {
        used = put(ret, ret_size, used, ": ");
        used = put_clean(ret, ret_size, used, msg, msg_len, REFUSAL_MESSAGE_MAX, msg_json);
    }
    if (permission != NULL &&
        (status == 403 || (type != NULL && type_len >= 12 && memmem(type, type_len, "AccessDenied", 12) != NULL))) {
        used = put(ret, ret_size, used, "; the function's role needs ");
        used = put(ret, ret_size, used, permission);
    }
    (void)used;
}
