/*
 * buf.c - capped growable buffer and JSON string escaping; see buf.h.
 *
 * Every write first reserves the exact space it needs (checking the cap and
 * allocating once), then writes; so a failure can only happen before the
 * buffer changes, which gives the "unchanged on failure" guarantee without
 * rollback code.  Leaf module: never logs.
 */
#include "buf.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* First allocation: big enough for a typical small document in one go. */
#define BUF_MIN_ALLOC 256

/* U+FFFD REPLACEMENT CHARACTER is 3 bytes of UTF-8. */
#define REPLACEMENT_LEN 3

/* Writes U+FFFD (EF BF BD) at dst; returns the end. */
static char *put_replacement(char *dst)
{
    dst[0] = (char)0xEF;
    dst[1] = (char)0xBF;
    dst[2] = (char)0xBD;
    return dst + REPLACEMENT_LEN;
}

void buf_init(struct buf *b, size_t max_bytes)
{
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
    /* Keeps len + n + 1 from ever overflowing in the size arithmetic. */
    b->max_bytes = max_bytes > SIZE_MAX / 2 ? SIZE_MAX / 2 : max_bytes;
}

void buf_free(struct buf *b)
{
    if (b == NULL)
        return;
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
}

void buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

void buf_recycle(struct buf *b, size_t max_bytes, size_t keep_bytes)
{
    size_t cap = max_bytes > SIZE_MAX / 2 ? SIZE_MAX / 2 : max_bytes;

    if (b->alloc > keep_bytes || b->alloc > cap + 1)
        buf_free(b);
    b->max_bytes = cap;
    buf_reset(b);
}

void buf_truncate(struct buf *b, size_t len)
{
    if (len >= b->len)
        return;
    b->len = len;
    b->data[len] = '\0';
}

const char *buf_data(const struct buf *b)
{
    return b->data != NULL ? b->data : "";
}

size_t buf_len(const struct buf *b)
{
    return b->len;
}

size_t buf_max(const struct buf *b)
{
    return b->max_bytes;
}

/* Makes room for n more bytes plus the terminator.  0, -ENOBUFS, -ENOMEM;
 * the contents are untouched either way. */
static int reserve(struct buf *b, size_t n)
{
    size_t need;
    size_t want;
    char *p;

    if (n > b->max_bytes - b->len)
        return -ENOBUFS;
    need = b->len + n + 1;
    if (need <= b->alloc)
        return 0;
    /* Double to keep appends amortised O(1), but never allocate past the
     * cap: the cap bounds memory, not just the length. */
    want = b->alloc < BUF_MIN_ALLOC ? BUF_MIN_ALLOC : b->alloc;
    while (want < need && want <= SIZE_MAX / 2)
        want *= 2;
    if (want < need)
        want = need;
    if (want > b->max_bytes + 1)
        want = b->max_bytes + 1;
    p = realloc(b->data, want);
    if (p == NULL)
        return -ENOMEM;
    if (b->data == NULL)
        p[0] = '\0';
    b->data = p;
    b->alloc = want;
    return 0;
}

int buf_append_grow(struct buf *b, const void *p, size_t n)
{
    int r;

    if (n == 0)
        return 0;
    r = reserve(b, n);
    if (r < 0)
        return r;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int buf_insert(struct buf *b, size_t off, const void *p, size_t n)
{
    int r;

    if (off > b->len)
        return -EINVAL;
    if (n == 0)
        return 0;
    r = reserve(b, n);
    if (r < 0)
        return r;
    memmove(b->data + off + n, b->data + off, b->len - off);
    memcpy(b->data + off, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;
    int r;

    va_start(ap, fmt);
    /* va_start is above; the analyzer misreads it (as in log.c). */
    n = vsnprintf(NULL, 0, fmt, ap); /* NOLINT(clang-analyzer-valist.Uninitialized) */
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    if (n == 0)
        return 0;
    r = reserve(b, (size_t)n);
    if (r < 0)
        return r;
    va_start(ap, fmt);
    /* Same format and arguments as the measuring call: same length. */
    n = vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap); /* NOLINT(clang-analyzer-valist.Uninitialized) */
    va_end(ap);
    if (n < 0) {
        b->data[b->len] = '\0';
        return -EINVAL;
    }
    b->len += (size_t)n;
    return 0;
}

/* "00" to "99": two digits per division. */
static const char digit_pairs[] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                                  "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                                  "8081828384858687888990919293949596979899";

/* The digits of v, right-aligned ending at end; returns the first. */
static char *format_u64(char *end, uint64_t v)
{
    char *p = end;

    while (v >= 100) {
        unsigned d = (unsigned)(v % 100) * 2;
        v /= 100;
        p -= 2;
        p[0] = digit_pairs[d];
        p[1] = digit_pairs[d + 1];
    }
    if (v >= 10) {
        unsigned d = (unsigned)v * 2;
        p -= 2;
        p[0] = digit_pairs[d];
        p[1] = digit_pairs[d + 1];
    } else {
        *--p = (char)('0' + v);
    }
    return p;
}

static uint64_t magnitude(int64_t v)
{
    return v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
}

int buf_append_i64(struct buf *b, int64_t v)
{
    char tmp[24];
    char *end = tmp + sizeof(tmp);
    char *p = format_u64(end, magnitude(v));

    if (v < 0)
        *--p = '-';
    return buf_append(b, p, (size_t)(end - p));
}

int buf_append_fixed(struct buf *b, int64_t v, unsigned decimals)
{
    static const uint64_t pow10[] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000,
                                     100000000, 1000000000};
    char tmp[40];
    char *end = tmp + sizeof(tmp);
    char *p;
    uint64_t mag = magnitude(v);
    uint64_t frac;
    unsigned i = 0;

    if (decimals < 1 || decimals > 9)
        return -EINVAL;
    frac = mag % pow10[decimals];
    p = end;
    for (; i + 2 <= decimals; i += 2) {
        unsigned d = (unsigned)(frac % 100) * 2;
        frac /= 100;
        p -= 2;
        p[0] = digit_pairs[d];
        p[1] = digit_pairs[d + 1];
    }
    if (i < decimals)
        *--p = (char)('0' + frac % 10);
    *--p = '.';
    p = format_u64(p, mag / pow10[decimals]);
    if (v < 0)
        *--p = '-';
    return buf_append(b, p, (size_t)(end - p));
}

/*
 * Clean runs.  Most bytes of what we escape are printable ASCII that JSON
 * takes as is; they are found a word at a time (two 64-bit words per
 * 16-byte step, plain integer arithmetic: the same code on x86_64 and
 * arm64, no vector unit assumed) and copied with memcpy, and only the
 * bytes in between go through the character rules below.
 */
#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)
#define LOW7 UINT64_C(0x7f7f7f7f7f7f7f7f)

/* The high bit of each byte of x that JSON does not take as is: below
 * 0x20, '"', '\\', DEL, or 0x80 and above.  Exact per byte: the sums
 * work on 7-bit values, so no carry crosses into the next byte. */
static uint64_t unclean_bytes(uint64_t x)
{
    uint64_t t = x & LOW7;
    uint64_t printable = (t + 0x60 * ONES) & HIGHS;    /* low 7 bits >= 0x20 */
    uint64_t not_quote = ((t ^ ('"' * ONES)) + LOW7) & HIGHS;
    uint64_t not_backslash = ((t ^ ('\\' * ONES)) + LOW7) & HIGHS;
    uint64_t del = (t + ONES) & HIGHS;                 /* low 7 bits == 0x7f */

    return (x & HIGHS) | del | (~(printable & not_quote & not_backslash) & HIGHS);
}

static uint64_t load64(const unsigned char *p)
{
    uint64_t x;

    memcpy(&x, p, sizeof(x));
    return x;
}

/* The index of the first byte of x (in memory order) whose high bit mask
 * marks; mask != 0.  Portable C: a count of trailing (little-endian) or
 * leading (big-endian) zero bits, by the compiler's builtin where it has
 * one (one instruction on x86_64 and arm64), else byte by byte. */
static size_t first_marked(uint64_t mask)
{
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return (size_t)__builtin_ctzll(mask) / 8;
#elif defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return (size_t)__builtin_clzll(mask) / 8;
#else
    unsigned char b[8];

    memcpy(b, &mask, sizeof(b));
    for (size_t i = 0; i < 7; i++)
        if (b[i] != 0)
            return i;
    return 7;
#endif
}

/* How many bytes at the start of s (n bytes) JSON takes as they are:
 * sixteen bytes a step, and the first unclean byte found in its word
 * without going back to bytes.  A tail shorter than a word is read as the
 * string's last eight bytes (overlapping what was checked already, which
 * is clean) when the string has eight; only shorter strings go byte by
 * byte. */
static size_t clean_run(const unsigned char *s, size_t n)
{
    size_t i = 0;
    uint64_t m;

    while (n - i >= 16) {
        m = unclean_bytes(load64(s + i));
        if (m != 0)
            return i + first_marked(m);
        m = unclean_bytes(load64(s + i + 8));
        if (m != 0)
            return i + 8 + first_marked(m);
        i += 16;
    }
    if (n - i >= 8) {
        m = unclean_bytes(load64(s + i));
        if (m != 0)
            return i + first_marked(m);
        i += 8;
    }
    if (i == n)
        return n;
    if (n >= 8) {
        /* bytes [n - 8, i) are clean: the first marked one is at i or later */
        m = unclean_bytes(load64(s + n - 8));
        return m == 0 ? n : n - 8 + first_marked(m);
    }
    while (i < n && s[i] >= 0x20 && s[i] < 0x7F && s[i] != '"' && s[i] != '\\')
        i++;
    return i;
}

/* How many bytes at the start of s are ASCII (below 0x80). */
static size_t ascii_run(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (n - i >= 16 && ((load64(s + i) | load64(s + i + 8)) & HIGHS) == 0)
        i += 16;
    while (i < n && s[i] < 0x80)
        i++;
    return i;
}

/*
 * Length of the well-formed UTF-8 sequence starting at s[0] (2..4 bytes),
 * or 0 when it is ill-formed; then *ret_skip is the length of the maximal
 * subpart to replace with one U+FFFD (Unicode 15, table 3-7 and section
 * 3.9 "U+FFFD Substitution of Maximal Subparts").  s[0] >= 0x80.
 */
size_t buf_utf8_sequence(const unsigned char *s, size_t n, size_t *ret_skip)
{
    unsigned char c = s[0];
    unsigned char lo = 0x80;
    unsigned char hi = 0xBF;
    size_t need;

    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
    } else if (c == 0xE0) {
        need = 2;
        lo = 0xA0; /* overlong below U+0800 */
    } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
        need = 2;
    } else if (c == 0xED) {
        need = 2;
        hi = 0x9F; /* U+D800..U+DFFF are surrogates */
    } else if (c == 0xF0) {
        need = 3;
        lo = 0x90; /* overlong below U+10000 */
    } else if (c >= 0xF1 && c <= 0xF3) {
        need = 3;
    } else if (c == 0xF4) {
        need = 3;
        hi = 0x8F; /* above U+10FFFF */
    } else {
        *ret_skip = 1; /* continuation byte, C0/C1 or F5..FF as a lead */
        return 0;
    }
    for (size_t i = 1; i <= need; i++) {
        unsigned char cc;

        if (i >= n) {
            *ret_skip = i;
            return 0;
        }
        cc = s[i];
        if (i == 1 ? (cc < lo || cc > hi) : (cc < 0x80 || cc > 0xBF)) {
            *ret_skip = i;
            return 0;
        }
    }
    return need + 1;
}

/* The next character of s: how many input bytes it spans (*ret_in),
 * whether they are ill-formed and get replaced (*ret_bad), and how many
 * bytes its escaped form takes (returned). */
static size_t next_char(const unsigned char *s, size_t n, size_t *ret_in, bool *ret_bad)
{
    unsigned char c = s[0];
    size_t skip;
    size_t len;

    *ret_bad = false;
    if (c < 0x80) {
        *ret_in = 1;
        if (c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t')
            return 2;
        if (c < 0x20 || c == 0x7F)
            return 6;
        return 1;
    }
    len = buf_utf8_sequence(s, n, &skip);
    if (len > 0) {
        *ret_in = len;
        return len;
    }
    *ret_in = skip;
    *ret_bad = true;
    return REPLACEMENT_LEN;
}

size_t buf_json_escaped_len(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t out = 0;
    size_t i = 0;

    while (i < n) {
        size_t run = clean_run(u + i, n - i);
        size_t in;
        bool bad;

        out += run;
        i += run;
        if (i == n)
            break;
        out += next_char(u + i, n - i, &in, &bad);
        i += in;
    }
    return out;
}

/* Writes the escaped form of s[0..n) at dst, which has room for it (as
 * measured by buf_json_escaped_len).  Returns the end of what was written. */
static char *escape_into(char *dst, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;

    while (i < n) {
        size_t run = clean_run(u + i, n - i);

        if (run > 0) {
            memcpy(dst, u + i, run);
            dst += run;
            i += run;
            if (i == n)
                break;
        }
        unsigned char c = u[i];
        size_t in;
        bool bad;
        size_t out = next_char(u + i, n - i, &in, &bad);

        if (c >= 0x80 && bad) {
            dst = put_replacement(dst);
        } else if (c >= 0x80) {
            memcpy(dst, u + i, out);
            dst += out;
        } else if (out == 1) {
            *dst++ = (char)c;
        } else if (out == 2) {
            dst[0] = '\\';
            switch (c) {
            case '\n':
                dst[1] = 'n';
                break;
            case '\r':
                dst[1] = 'r';
                break;
            case '\t':
                dst[1] = 't';
                break;
            case '"':
                dst[1] = '"';
                break;
            default:
                dst[1] = '\\';
                break;
            }
            dst += 2;
        } else {
            dst[0] = '\\';
            dst[1] = 'u';
            dst[2] = '0';
            dst[3] = '0';
            dst[4] = hex[c >> 4];
            dst[5] = hex[c & 0xF];
            dst += 6;
        }
        i += in;
    }
    return dst;
}

/* The ids, names and keys of a document: 8 to 64 bytes that JSON takes
 * as they are are copied a word at a time (the last word overlapping the
 * one before), checked on the way; false (dst partly written) when the
 * string is not that.  dst has room for 8 bytes past n. */
static bool copy_short_clean(char *dst, const unsigned char *s, size_t n)
{
    size_t i = 0;
    uint64_t w;

    if (n < 8 || n > 64)
        return false;
    for (; i + 8 <= n; i += 8) {
        w = load64(s + i);
        if (unclean_bytes(w) != 0)
            return false;
        memcpy(dst + i, &w, sizeof(w));
    }
    if (i < n) {
        w = load64(s + n - 8);
        if (unclean_bytes(w) != 0)
            return false;
        memcpy(dst + n - 8, &w, sizeof(w));
    }
    return true;
}

/* The most bytes one input byte can become: a control byte's \u00XX. */
#define ESCAPE_MAX_GROWTH 6

int buf_append_json_string(struct buf *b, const char *s, size_t n)
{
    size_t room = b->data != NULL ? b->alloc - b->len - 1 : 0; /* allocated, past the terminator */
    size_t body;
    char *end;
    int r;

    /* When even the worst case (every byte a \u00XX) fits the memory the
     * buffer already has, and so its cap, the string is escaped straight
     * into it: one pass instead of measuring first (most strings of a
     * document are short ids, names and keys). */
    if (room >= 2 && n <= (room - 2) / ESCAPE_MAX_GROWTH) {
        end = b->data + b->len;
        *end++ = '"';
        end = copy_short_clean(end, (const unsigned char *)s, n) ? end + n : escape_into(end, s, n);
        *end++ = '"';
        b->len = (size_t)(end - b->data);
        b->data[b->len] = '\0';
        return 0;
    }
    body = buf_json_escaped_len(s, n);
    if (body > SIZE_MAX / 2)
        return -ENOBUFS;
    r = reserve(b, body + 2);
    if (r < 0)
        return r;
    end = b->data + b->len;
    *end++ = '"';
    end = escape_into(end, s, n);
    *end++ = '"';
    b->len = (size_t)(end - b->data);
    b->data[b->len] = '\0';
    return 0;
}

int buf_append_utf8(struct buf *b, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t out = 0;
    size_t i = 0;
    char *dst;
    int r;

    /* Measure, reserve once, then write (see the top of the file). */
    while (i < n) {
        size_t run = ascii_run(u + i, n - i);
        size_t skip = 1;
        size_t len;

        out += run;
        i += run;
        if (i == n)
            break;
        len = buf_utf8_sequence(u + i, n - i, &skip);
        out += len > 0 ? len : REPLACEMENT_LEN;
        i += len > 0 ? len : skip;
    }
    r = reserve(b, out);
    if (r < 0)
        return r;
    dst = b->data + b->len;
    for (i = 0; i < n;) {
        size_t run = ascii_run(u + i, n - i);
        size_t skip = 1;
        size_t len;

        if (run > 0) {
            memcpy(dst, u + i, run);
            dst += run;
            i += run;
            continue;
        }
        len = buf_utf8_sequence(u + i, n - i, &skip);
        if (len > 0) {
            memcpy(dst, u + i, len);
            dst += len;
            i += len;
        } else {
            dst = put_replacement(dst);
            i += skip;
        }
    }
    b->len += out;
    b->data[b->len] = '\0';
    return 0;
}

int buf_append_json_string_max(struct buf *b, const char *s, size_t n, size_t max_body_bytes,
                               const char *suffix, bool *ret_truncated)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t suffix_len = suffix != NULL ? strlen(suffix) : 0;
    size_t budget;
    size_t used = 0;
    size_t cut = 0;
    char *end;
    int r;

    if (buf_json_escaped_len(s, n) <= max_body_bytes) {
        r = buf_append_json_string(b, s, n);
        if (r == 0 && ret_truncated != NULL)
            *ret_truncated = false;
        return r;
    }
    if (suffix_len > max_body_bytes)
        return -EINVAL;
    budget = max_body_bytes - suffix_len;
    /* The longest prefix of whole characters whose escaped form fits. */
    while (cut < n) {
        size_t in;
        bool bad;
        size_t out = next_char(u + cut, n - cut, &in, &bad);

        if (out > budget - used)
            break;
        used += out;
        cut += in;
    }
    r = reserve(b, used + suffix_len + 2);
    if (r < 0)
        return r;
    end = b->data + b->len;
    *end++ = '"';
    end = escape_into(end, s, cut);
    for (size_t i = 0; i < suffix_len; i++)
        *end++ = suffix[i];
    *end++ = '"';
    b->len = (size_t)(end - b->data);
    b->data[b->len] = '\0';
    if (ret_truncated != NULL)
        *ret_truncated = true;
    return 0;
}

/*
 * The fast path of buf_append_json_double: "%.15g" etc. computed exactly
 * with integers, for the doubles the encoders meet (costs in USD, often
 * below 1e-4 and so in the exponent form; milliseconds): 1e-10 <= |d| <
 * 1e15.  d = m * 2^e with a 53-bit m, so d * 10^k = m * 5^k * 2^(e+k):
 * with k <= 27 that is at most a 116-bit integer shifted right, whose
 * digits and remainder are exact; printf rounds the same exact value to
 * the nearest, ties to even.
 */
__extension__ typedef unsigned __int128 u128;

#define FAST_DOUBLE_MAX_K 27

/* round(|d| * 10^k), ties to even, exact; *ret_reads_back: that decimal
 * (times 10^-k) reads back as d (within half a unit in the last place,
 * a tie going to the even significand, as strtod rounds). */
static uint64_t scaled_digits(uint64_t m, int e, int k, bool *ret_reads_back)
{
    /* 5^0 .. 5^27 (5^27 < 2^63) */
    static const uint64_t pow5_table[FAST_DOUBLE_MAX_K + 1] = {
        UINT64_C(1), UINT64_C(5), UINT64_C(25), UINT64_C(125), UINT64_C(625), UINT64_C(3125),
        UINT64_C(15625), UINT64_C(78125), UINT64_C(390625), UINT64_C(1953125), UINT64_C(9765625),
        UINT64_C(48828125), UINT64_C(244140625), UINT64_C(1220703125), UINT64_C(6103515625),
        UINT64_C(30517578125), UINT64_C(152587890625), UINT64_C(762939453125),
        UINT64_C(3814697265625), UINT64_C(19073486328125), UINT64_C(95367431640625),
        UINT64_C(476837158203125), UINT64_C(2384185791015625), UINT64_C(11920928955078125),
        UINT64_C(59604644775390625), UINT64_C(298023223876953125), UINT64_C(1490116119384765625),
        UINT64_C(7450580596923828125)};
    u128 pow5 = pow5_table[k];
    u128 a, r, half, diff, v;
    uint64_t q;
    int s;

    a = (u128)m * pow5;
    s = -(e + k); /* 1..127 in the fast path's range */
    q = (uint64_t)(a >> s);
    r = a & (((u128)1 << s) - 1);
    half = (u128)1 << (s - 1);
    if (r > half || (r == half && (q & 1) != 0))
        q++;
    /* |d| and the decimal in units of 2^-s / 10^k; half an ulp of d is
     * 5^k / 2 there (a quarter on the lower side of a power of two). */
    v = (u128)q << s;
    if (v >= a) {
        diff = v - a;
        *ret_reads_back = 2 * diff < pow5 || (2 * diff == pow5 && (m & 1) == 0);
    } else {
        diff = a - v;
        u128 scale = m == UINT64_C(1) << 52 ? 4 : 2;
        *ret_reads_back = scale * diff < pow5 || (scale * diff == pow5 && (m & 1) == 0);
    }
    return q;
}

/* The text of d in out (room for 32), as buf_append_json_double defines
 * it, or 0 when d is outside the fast path's range. */
static size_t fast_double(double d, char *out)
{
    static const uint64_t pow10[] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000,
                                     1000000000, UINT64_C(10000000000), UINT64_C(100000000000),
                                     UINT64_C(1000000000000), UINT64_C(10000000000000),
                                     UINT64_C(100000000000000), UINT64_C(1000000000000000),
                                     UINT64_C(10000000000000000), UINT64_C(100000000000000000)};
    double mag = fabs(d);
    int exp2;
    double f;
    uint64_t m;
    int e, x = 0;

    if (!(mag >= 1e-10 && mag < 1e15))
        return 0;
    f = frexp(mag, &exp2); /* mag = f * 2^exp2, 0.5 <= f < 1 */
    m = (uint64_t)ldexp(f, 53);
    e = exp2 - 53;
    /* the decimal exponent, estimated (the loop below corrects it) */
    if (mag >= 1) {
        while (x < 15 && mag >= (double)pow10[x + 1])
            x++;
    } else {
        x = -1;
        while (x > -10 && mag < 1.0 / (double)pow10[-x])
            x--;
    }
    for (int prec = 15; prec <= 17; prec++) {
        bool reads_back = false;
        uint64_t q = 0;
        int tries = 0;
        int k;

        /* prec significant digits: q in [10^(prec-1), 10^prec) */
        for (;;) {
            k = prec - 1 - x;
            if (k < 0 || k > FAST_DOUBLE_MAX_K || ++tries > 4)
                return 0;
            q = scaled_digits(m, e, k, &reads_back);
            if (q >= pow10[prec])
                x++;
            else if (q < pow10[prec - 1])
                x--;
            else
                break;
        }
        /* 10^(prec-1) may be a carry at too coarse a scale (0.00099...96
         * is 0.001 at x = -3): the exponent is the lowest that fits. */
        if (q == pow10[prec - 1]) {
            if (k + 1 > FAST_DOUBLE_MAX_K)
                return 0;
            bool lower_reads_back = false;
            uint64_t lower = scaled_digits(m, e, k + 1, &lower_reads_back);
            if (lower < pow10[prec]) {
                x--;
                q = lower;
                reads_back = lower_reads_back;
            }
        }
        if (!reads_back && prec < 17)
            continue;
        char digits[17] = {0};
        size_t n = 0;
        int ndig = prec;
        for (int i = prec - 1; i >= 0; i--) {
            digits[i] = (char)('0' + q % 10);
            q /= 10;
        }
        bool exp_form = x < -4 || x >= prec; /* as %g decides */
        /* trailing zeros of the fraction go, as %g drops them */
        while (ndig > (exp_form ? 1 : x + 1) && ndig > 1 && digits[ndig - 1] == '0')
            ndig--;
        if (d < 0)
            out[n++] = '-';
        if (exp_form) {
            int ax = x < 0 ? -x : x;
            out[n++] = digits[0];
            if (ndig > 1) {
                out[n++] = '.';
                memcpy(out + n, digits + 1, (size_t)ndig - 1);
                n += (size_t)ndig - 1;
            }
            out[n++] = 'e';
            out[n++] = x < 0 ? '-' : '+';
            if (ax >= 100)
                out[n++] = (char)('0' + ax / 100);
            out[n++] = (char)('0' + ax / 10 % 10);
            out[n++] = (char)('0' + ax % 10);
        } else if (x >= 0) {
            memcpy(out + n, digits, (size_t)x + 1);
            n += (size_t)x + 1;
            if (ndig > x + 1) {
                out[n++] = '.';
                memcpy(out + n, digits + x + 1, (size_t)(ndig - x - 1));
                n += (size_t)(ndig - x - 1);
            }
        } else {
            out[n++] = '0';
            out[n++] = '.';
            for (int i = 0; i < -x - 1; i++)
                out[n++] = '0';
            memcpy(out + n, digits, (size_t)ndig);
            n += (size_t)ndig;
        }
        return n;
    }
    return 0;
}

int buf_append_json_double(struct buf *b, double d)
{
    char text[32];
    int n = 0;
    size_t fast;

    if (!isfinite(d))
        return -EINVAL;
    if (d == 0) /* as "%.15g" writes it, sign included */
        return signbit(d) ? buf_append(b, "-0", 2) : buf_append(b, "0", 1);
    fast = fast_double(d, text);
    if (fast > 0)
        return buf_append(b, text, fast);
    /* 17 significant digits always round-trip; fewer usually do and read
     * better (0.1 rather than 0.10000000000000001). */
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(text, sizeof(text), "%.*g", prec, d);
        if (n < 0 || (size_t)n >= sizeof(text))
            return -EINVAL;
        if (strtod(text, NULL) == d)
            break;
    }
    return buf_append(b, text, (size_t)n);
}
