/*
 * xray_header.c - see xray_header.h.
 */
#include "xray_header.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool all_hex(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!is_hex(s[i]))
            return false;
    return true;
}

bool xray_trace_id_valid(const char *s, size_t len)
{
    return len == XRAY_TRACE_ID_LEN && s[0] == '1' && s[1] == '-' && all_hex(s + 2, 8) &&
           s[10] == '-' && all_hex(s + 11, 24);
}

bool xray_span_id_valid(const char *s, size_t len)
{
    return len == XRAY_SPAN_ID_LEN && all_hex(s, len);
}

static void trim(const char **s, size_t *len)
{
    while (*len > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*len)--;
    }
    while (*len > 0 && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t'))
        (*len)--;
}

static bool key_is(const char *key, size_t len, const char *want)
{
    return strlen(want) == len && strncasecmp(key, want, len) == 0;
}

int xray_header_parse(const char *text, size_t len, struct xray_header *ret)
{
    size_t pos = 0;

    memset(ret, 0, sizeof(*ret));
    ret->sampled = XRAY_SAMPLED_UNKNOWN;
    if (text == NULL)
        return -EINVAL;
    while (pos < len) {
        const char *part = text + pos;
        const char *semi = memchr(part, ';', len - pos);
        size_t part_len = semi != NULL ? (size_t)(semi - part) : len - pos;
        const char *eq = memchr(part, '=', part_len);

        pos += part_len + 1;
        if (eq == NULL)
            continue;
        const char *key = part;
        size_t key_len = (size_t)(eq - part);
        const char *value = eq + 1;
        size_t value_len = part_len - key_len - 1;
        trim(&key, &key_len);
        trim(&value, &value_len);

        if (key_is(key, key_len, "Root")) {
            if (xray_trace_id_valid(value, value_len)) {
                memcpy(ret->root, value, value_len);
                ret->root[value_len] = '\0';
            }
        } else if (key_is(key, key_len, "Parent")) {
            if (xray_span_id_valid(value, value_len)) {
                memcpy(ret->parent, value, value_len);
                ret->parent[value_len] = '\0';
            }
        } else if (key_is(key, key_len, "Sampled")) {
            if (value_len == 1 && value[0] == '1')
                ret->sampled = XRAY_SAMPLED_YES;
            else if (value_len == 1 && value[0] == '0')
                ret->sampled = XRAY_SAMPLED_NO;
        } else if (key_is(key, key_len, "Lineage")) {
            if (value_len <= XRAY_LINEAGE_MAX && memchr(value, '\0', value_len) == NULL) {
                memcpy(ret->lineage, value, value_len);
                ret->lineage[value_len] = '\0';
            }
        }
    }
    return ret->root[0] != '\0' ? 0 : -EINVAL;
}
