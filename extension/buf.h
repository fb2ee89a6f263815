/*
 * buf.h - a growable byte buffer with a hard cap (in the spirit of curl's
 * dynbuf).  Every encoder output goes through one, so no document, datagram
 * or request body can grow past the limit its caller named.
 *
 * The struct is a plain value the caller embeds; touch its fields only
 * through these functions.  The contents are always NUL-terminated once
 * anything was allocated (the terminator is not counted in the length nor
 * in the cap), so text can be handed to C string functions.
 *
 * Failure contract: every function that can fail returns 0 or a negative
 * errno (-ENOBUFS: the result would exceed the cap; -ENOMEM: allocation
 * failed; -EINVAL: bad arguments) and leaves the buffer exactly as it was
 * (same length, same bytes).  A buffer is owned by one thread at a time.
 */
#ifndef LAMBDA_TRACER_BUF_H
#define LAMBDA_TRACER_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct buf {
    char *data;       /* NULL until the first append */
    size_t len;       /* bytes in use, terminator excluded */
    size_t alloc;     /* bytes allocated, terminator included */
    size_t max_bytes; /* hard cap on len */
};

/* Makes an empty buffer that will never hold more than max_bytes.  Does not
 * allocate.  Any thread. */
void buf_init(struct buf *b, size_t max_bytes);

/* Releases the memory and leaves the buffer empty (still usable, same cap).
 * NULL-safe. */
void buf_free(struct buf *b);

/* Empties the buffer but keeps its memory for reuse. */
void buf_reset(struct buf *b);

/* Empties the buffer for its next use, now capped at max_bytes: its memory
 * is kept when at most keep_bytes (and within the new cap) were allocated,
 * freed otherwise, so that a buffer reused for every document or request
 * costs no allocation in the common case and never holds more than
 * keep_bytes while idle.  Works on a zeroed struct too. */
void buf_recycle(struct buf *b, size_t max_bytes, size_t keep_bytes);

/* Shortens the buffer to len bytes (no-op when len >= the current length).
 * Used to roll back a partly written element. */
void buf_truncate(struct buf *b, size_t len);

/* The bytes (NUL-terminated) and their count; "" and 0 when empty.  The
 * pointer is valid until the next call that changes the buffer. */
const char *buf_data(const struct buf *b);
size_t buf_len(const struct buf *b);
/* The cap given to buf_init. */
size_t buf_max(const struct buf *b);

/* Appends n bytes.  0, -ENOBUFS or -ENOMEM. */
static inline int buf_append(struct buf *b, const void *p, size_t n) __attribute__((warn_unused_result));

/* Appends a NUL-terminated string. */
static inline int buf_append_str(struct buf *b, const char *s) __attribute__((warn_unused_result));

/* buf_append out of line: long pieces, and those that do not fit the
 * memory the buffer has. */
int buf_append_grow(struct buf *b, const void *p, size_t n) __attribute__((warn_unused_result));

/* Encoders append many short pieces (keys, punctuation, numbers): when
 * one fits the memory already there (and so the cap, which the allocation
 * never passes), it is copied in place, a literal's copy inlined. */
#define BUF_INLINE_MAX 64

static inline int buf_append(struct buf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    if (n <= BUF_INLINE_MAX && n < b->alloc - b->len) { /* room for the bytes and the terminator */
        memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = '\0';
        return 0;
    }
    return buf_append_grow(b, p, n);
}

static inline int buf_append_str(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

/* Inserts n bytes at offset off (0 <= off <= length), moving the tail up.
 * -EINVAL when off is past the end. */
int buf_insert(struct buf *b, size_t off, const void *p, size_t n)
    __attribute__((warn_unused_result));

/* Appends printf-formatted text (vsnprintf, checked).  0, -ENOBUFS,
 * -ENOMEM, or -EINVAL when the format itself fails. */
int buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((warn_unused_result, format(printf, 2, 3)));

/* Appends v in decimal, as printf's PRId64 would, without printf.  0,
 * -ENOBUFS or -ENOMEM. */
int buf_append_i64(struct buf *b, int64_t v) __attribute__((warn_unused_result));

/* Appends v / 10^decimals with exactly `decimals` digits after the point
 * (1 to 9), from the integer alone: no double ever holds it, so
 * 1480615200000001 with 6 decimals is "1480615200.000001".  Negative
 * values get a '-' (also when the integer part is 0).  -EINVAL for a bad
 * `decimals`. */
int buf_append_fixed(struct buf *b, int64_t v, unsigned decimals) __attribute__((warn_unused_result));

/*
 * JSON strings.  s is (pointer, length) and need not be NUL-terminated;
 * embedded NULs are escaped.  Escaping: `"` and `\` get a backslash; \n, \r
 * and \t use their short forms; every other byte below 0x20 and DEL are
 * written as \u00XX.  Valid UTF-8 is copied as is.  Invalid UTF-8 (stray
 * continuation bytes, overlong forms, surrogates, code points above
 * U+10FFFF, truncated sequences) is REPLACED: each maximal invalid
 * subsequence becomes one U+FFFD (the Unicode "substitution of maximal
 * subparts" practice), so the output is always valid UTF-8 and valid JSON.
 */

/* Appends s as a quoted, escaped JSON string. */
int buf_append_json_string(struct buf *b, const char *s, size_t n)
    __attribute__((warn_unused_result));

/* Like buf_append_json_string, but writes at most max_body_bytes between
 * the quotes.  When s does not fit, it is cut at a character boundary so
 * that the escaped prefix plus `suffix` (written verbatim: pass plain ASCII
 * without quotes or backslashes) fits in max_body_bytes, and
 * *ret_truncated (if not NULL) is set to true; otherwise to false.
 * -EINVAL when not even the suffix fits. */
int buf_append_json_string_max(struct buf *b, const char *s, size_t n, size_t max_body_bytes,
                               const char *suffix, bool *ret_truncated)
    __attribute__((warn_unused_result));

/* Length of the well-formed UTF-8 sequence starting at s[0] >= 0x80 (2 to
 * 4 bytes: no overlong forms, surrogates or code points past U+10FFFF), or
 * 0 when it is ill-formed; then *ret_skip is how many bytes one U+FFFD
 * replaces (the maximal subpart).  Pure. */
size_t buf_utf8_sequence(const unsigned char *s, size_t n, size_t *ret_skip);

/* Appends s unescaped but with each ill-formed UTF-8 subsequence replaced
 * by U+FFFD, by the same rule as the JSON functions: for protobuf `string`
 * fields, which receivers reject unless they are valid UTF-8. */
int buf_append_utf8(struct buf *b, const char *s, size_t n) __attribute__((warn_unused_result));

/* Appends d as a JSON number: the shortest of %.15g/%.16g/%.17g that reads
 * back as the same double (the C locale's '.' is assumed: the extension
 * never calls setlocale).  -EINVAL for NaN and infinities, which JSON
 * numbers cannot express. */
int buf_append_json_double(struct buf *b, double d) __attribute__((warn_unused_result));

/* The number of bytes buf_append_json_string would write between the
 * quotes for s.  Pure function, any thread. */
size_t buf_json_escaped_len(const char *s, size_t n);

/* For the encoders' append sequences: evaluates expr into the caller's
 * `int r` and jumps to its `out:` label when it failed. */
#define TRY(expr)                                                                                  \
    do {                                                                                           \
        r = (expr);                                                                                \
        if (r < 0)                                                                                 \
            goto out;                                                                              \
    } while (0)

#endif
