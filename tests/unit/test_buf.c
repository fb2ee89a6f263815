/* Unit tests for buf.c: caps, growth, printf, insert, JSON escaping and
 * invalid UTF-8, number formatting, and every allocation failure. */
#include <errno.h>
#include <stdio.h>
#include <inttypes.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "buf.h"
#include "fail_alloc.h"

static int setup(void **state)
{
    (void)state;
    fail_alloc_reset();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    /* Every test frees what it allocated. */
    assert_int_equal(fail_alloc_live(), 0);
    fail_alloc_reset();
    return 0;
}

/* The escaped JSON string for (s, n), as a C string the test can compare. */
static void assert_json(const char *s, size_t n, const char *want)
{
    struct buf b;

    buf_init(&b, 1024);
    assert_int_equal(buf_append_json_string(&b, s, n), 0);
    assert_string_equal(buf_data(&b), want);
    assert_int_equal(buf_len(&b), strlen(want));
    /* The measuring function agrees with what was written. */
    assert_int_equal(buf_json_escaped_len(s, n) + 2, strlen(want));
    buf_free(&b);
}

static void test_empty_and_append(void **state)
{
    struct buf b;
    (void)state;
    buf_init(&b, 100);
    assert_string_equal(buf_data(&b), "");
    assert_int_equal(buf_len(&b), 0);
    assert_int_equal(buf_max(&b), 100);
    assert_int_equal(buf_append(&b, "abc", 3), 0);
    assert_int_equal(buf_append(&b, NULL, 0), 0);
    assert_int_equal(buf_append_str(&b, "def"), 0);
    assert_string_equal(buf_data(&b), "abcdef");
    assert_int_equal(buf_len(&b), 6);
    buf_truncate(&b, 2);
    assert_string_equal(buf_data(&b), "ab");
    buf_truncate(&b, 10); /* no-op past the end */
    assert_string_equal(buf_data(&b), "ab");
    buf_reset(&b);
    assert_string_equal(buf_data(&b), "");
    assert_int_equal(buf_len(&b), 0);
    assert_int_equal(buf_append_str(&b, "x"), 0);
    assert_string_equal(buf_data(&b), "x");
    buf_free(&b);
    buf_free(&b); /* twice is fine */
    buf_free(NULL);
    assert_string_equal(buf_data(&b), "");
}

static void test_cap_is_hard_and_failure_leaves_buffer_unchanged(void **state)
{
    struct buf b;
    (void)state;
    buf_init(&b, 8);
    assert_int_equal(buf_append_str(&b, "12345"), 0);
    assert_int_equal(buf_append_str(&b, "6789"), -ENOBUFS);
    assert_string_equal(buf_data(&b), "12345");
    assert_int_equal(buf_printf(&b, "%d", 6789), -ENOBUFS);
    assert_string_equal(buf_data(&b), "12345");
    assert_int_equal(buf_append_json_string(&b, "ab", 2), -ENOBUFS); /* "ab" = 4 bytes */
    assert_string_equal(buf_data(&b), "12345");
    assert_int_equal(buf_insert(&b, 0, "abcd", 4), -ENOBUFS);
    assert_string_equal(buf_data(&b), "12345");
    /* exactly at the cap is fine */
    assert_int_equal(buf_append_str(&b, "678"), 0);
    assert_string_equal(buf_data(&b), "12345678");
    assert_int_equal(buf_append(&b, "9", 1), -ENOBUFS);
    assert_int_equal(buf_len(&b), 8);
    buf_free(&b);

    /* a zero cap holds nothing */
    buf_init(&b, 0);
    assert_int_equal(buf_append(&b, "a", 1), -ENOBUFS);
    assert_int_equal(buf_append(&b, "", 0), 0);
    buf_free(&b);

    /* an absurd cap is clamped, never overflows */
    buf_init(&b, SIZE_MAX);
    assert_true(buf_max(&b) <= SIZE_MAX / 2);
    assert_int_equal(buf_append(&b, "a", SIZE_MAX / 2 + 1), -ENOBUFS);
    buf_free(&b);
}

static void test_growth_keeps_contents(void **state)
{
    struct buf b;
    char chunk[100];
    (void)state;
    memset(chunk, 'x', sizeof(chunk));
    buf_init(&b, 100000);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(buf_append(&b, chunk, sizeof(chunk)), 0);
    assert_int_equal(buf_len(&b), 100000);
    assert_int_equal(strlen(buf_data(&b)), 100000);
    assert_int_equal(buf_append(&b, "y", 1), -ENOBUFS);
    buf_free(&b);
}

static void test_printf(void **state)
{
    struct buf b;
    char big[600];
    (void)state;
    buf_init(&b, 4096);
    assert_int_equal(buf_printf(&b, "%s=%d;", "a", 1), 0);
    assert_int_equal(buf_printf(&b, "%s", ""), 0);
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    /* larger than the first allocation: grows, then formats */
    assert_int_equal(buf_printf(&b, "[%s]", big), 0);
    assert_int_equal(buf_len(&b), 4 + 601);
    assert_memory_equal(buf_data(&b), "a=1;[zzz", 8);
    assert_int_equal(buf_data(&b)[buf_len(&b) - 1], ']');
    buf_free(&b);
}

static void test_insert(void **state)
{
    struct buf b;
    (void)state;
    buf_init(&b, 64);
    assert_int_equal(buf_insert(&b, 0, "cd", 2), 0);
    assert_int_equal(buf_insert(&b, 0, "ab", 2), 0);
    assert_int_equal(buf_insert(&b, 4, "gh", 2), 0);
    assert_int_equal(buf_insert(&b, 4, "ef", 2), 0);
    assert_int_equal(buf_insert(&b, 8, "", 0), 0);
    assert_string_equal(buf_data(&b), "abcdefgh");
    assert_int_equal(buf_insert(&b, 9, "x", 1), -EINVAL);
    assert_string_equal(buf_data(&b), "abcdefgh");
    buf_free(&b);
}

static void test_json_escapes(void **state)
{
    (void)state;
    assert_json("", 0, "\"\"");
    assert_json("plain text", 10, "\"plain text\"");
    assert_json("q\"b\\s/", 6, "\"q\\\"b\\\\s/\"");
    assert_json("a\nb\rc\td", 7, "\"a\\nb\\rc\\td\"");
    /* other control characters, DEL and an embedded NUL as \u00XX */
    assert_json("\x01\x08\x0c\x1f\x7f", 5, "\"\\u0001\\u0008\\u000c\\u001f\\u007f\"");
    assert_json("a\0b", 3, "\"a\\u0000b\"");
    /* only n bytes are read, no terminator needed */
    assert_json("abcdef", 3, "\"abc\"");
}

static void test_json_valid_utf8_is_kept(void **state)
{
    (void)state;
    assert_json("caf\xC3\xA9", 5, "\"caf\xC3\xA9\"");                 /* U+00E9 */
    assert_json("\xE2\x82\xAC", 3, "\"\xE2\x82\xAC\"");               /* U+20AC */
    assert_json("\xF0\x9F\x98\x80", 4, "\"\xF0\x9F\x98\x80\"");       /* U+1F600 */
    assert_json("\xF4\x8F\xBF\xBF", 4, "\"\xF4\x8F\xBF\xBF\"");       /* U+10FFFF */
    assert_json("\xED\x9F\xBF", 3, "\"\xED\x9F\xBF\"");               /* U+D7FF */
    assert_json("\xEF\xBF\xBD", 3, "\"\xEF\xBF\xBD\"");               /* U+FFFD itself */
}

#define R "\xEF\xBF\xBD" /* U+FFFD */

static void test_json_invalid_utf8_is_replaced(void **state)
{
    (void)state;
    assert_json("a\x80z", 3, "\"a" R "z\"");                 /* stray continuation */
    assert_json("\xFF\xFE", 2, "\"" R R "\"");              /* never valid */
    assert_json("\xC0\xAF", 2, "\"" R R "\"");              /* overlong '/' */
    assert_json("\xC1\xBF", 2, "\"" R R "\"");
    assert_json("\xE0\x80\x80", 3, "\"" R R R "\"");        /* overlong, 3 bytes */
    assert_json("\xED\xA0\x80", 3, "\"" R R R "\"");        /* surrogate U+D800 */
    assert_json("\xF4\x90\x80\x80", 4, "\"" R R R R "\"");  /* above U+10FFFF */
    assert_json("\xF5\x80", 2, "\"" R R "\"");
    /* truncated sequences: the maximal valid prefix is one replacement */
    assert_json("\xE2\x82", 2, "\"" R "\"");
    assert_json("\xF0\x9F\x98" "A", 4, "\"" R "A\"");
    assert_json("\xC3", 1, "\"" R "\"");
    assert_json("\xC3" "\"", 2, "\"" R "\\\"\"");
}

static void test_utf8_sanitising_without_escapes(void **state)
{
    struct buf b;
    (void)state;
    buf_init(&b, 64);
    assert_int_equal(buf_append_utf8(&b, "q\"\n\xC3\xA9", 5), 0);
    assert_int_equal(buf_append_utf8(&b, "\xFF\xF0\x9F\x98" "A\xE2\x82", 7), 0);
    assert_int_equal(buf_append_utf8(&b, "", 0), 0);
    assert_string_equal(buf_data(&b), "q\"\n\xC3\xA9" R R "A" R);
    buf_free(&b);
    buf_init(&b, 3);
    assert_int_equal(buf_append_utf8(&b, "\xFF\xFF", 2), -ENOBUFS); /* 6 bytes out */
    assert_int_equal(buf_len(&b), 0);
    buf_free(&b);
}

static void test_json_string_max(void **state)
{
    struct buf b;
    bool cut = true;
    (void)state;
    buf_init(&b, 1024);
    /* fits: written whole, not marked */
    assert_int_equal(buf_append_json_string_max(&b, "hello", 5, 5, "~", &cut), 0);
    assert_string_equal(buf_data(&b), "\"hello\"");
    assert_false(cut);
    buf_reset(&b);
    /* does not fit: prefix + suffix within the budget */
    assert_int_equal(buf_append_json_string_max(&b, "hello world", 11, 8, "...", &cut), 0);
    assert_string_equal(buf_data(&b), "\"hello...\"");
    assert_true(cut);
    buf_reset(&b);
    /* never splits an escape: "ab\n" needs 4 bytes; a budget of 3 keeps "ab" */
    assert_int_equal(buf_append_json_string_max(&b, "ab\ncd", 5, 4, "!", &cut), 0);
    assert_string_equal(buf_data(&b), "\"ab!\"");
    buf_reset(&b);
    /* never splits a multi-byte character */
    assert_int_equal(buf_append_json_string_max(&b, "a\xE2\x82\xAC" "bcdef", 9, 4, "", &cut), 0);
    assert_string_equal(buf_data(&b), "\"a\xE2\x82\xAC\"");
    buf_reset(&b);
    assert_int_equal(buf_append_json_string_max(&b, "a\xE2\x82\xAC" "bcdef", 9, 3, "", &cut), 0);
    assert_string_equal(buf_data(&b), "\"a\"");
    buf_reset(&b);
    /* the suffix alone */
    assert_int_equal(buf_append_json_string_max(&b, "abcdef", 6, 3, "...", NULL), 0);
    assert_string_equal(buf_data(&b), "\"...\"");
    buf_reset(&b);
    /* not even the suffix fits */
    assert_int_equal(buf_append_json_string_max(&b, "abcdef", 6, 2, "...", &cut), -EINVAL);
    assert_int_equal(buf_len(&b), 0);
    /* over the buffer's own cap: unchanged */
    buf_free(&b);
    buf_init(&b, 4);
    assert_int_equal(buf_append_json_string_max(&b, "abcdef", 6, 3, "", &cut), -ENOBUFS);
    assert_int_equal(buf_len(&b), 0);
    buf_free(&b);
}

static void assert_double(double d, const char *want)
{
    struct buf b;

    buf_init(&b, 64);
    assert_int_equal(buf_append_json_double(&b, d), 0);
    assert_string_equal(buf_data(&b), want);
    assert_true(strtod(buf_data(&b), NULL) == d);
    buf_free(&b);
}

static void test_json_double(void **state)
{
    struct buf b;
    (void)state;
    assert_double(0.1, "0.1");
    assert_double(1.5, "1.5");
    assert_double(-0.0, "-0");
    assert_double(264.19, "264.19");
    assert_double(1e300, "1e+300");
    assert_double(1.0 / 3.0, "0.3333333333333333");
    assert_double(0.1 + 0.2, "0.30000000000000004");
    buf_init(&b, 64);
    assert_int_equal(buf_append_json_double(&b, NAN), -EINVAL);
    assert_int_equal(buf_append_json_double(&b, INFINITY), -EINVAL);
    assert_int_equal(buf_append_json_double(&b, -INFINITY), -EINVAL);
    assert_int_equal(buf_len(&b), 0);
    buf_free(&b);
}

/* A sequence touching every growing call; returns its first error. */
static int workload(struct buf *b)
{
    static const char text[] = "line one\nline \"two\" \xC3\xA9\xFF";
    int r;

    r = buf_append_str(b, "start;");
    if (r == 0)
        r = buf_printf(b, "%0300d", 7);
    if (r == 0)
        r = buf_insert(b, 0, "head;", 5);
    for (int i = 0; r == 0 && i < 40; i++)
        r = buf_append_json_string(b, text, sizeof(text) - 1);
    if (r == 0)
        r = buf_append_json_string_max(b, text, sizeof(text) - 1, 10, "~", NULL);
    if (r == 0)
        r = buf_append_json_double(b, 2.5);
    for (int i = 0; r == 0 && i < 40; i++)
        r = buf_append_utf8(b, text, sizeof(text) - 1);
    return r;
}

/* --- the word-at-a-time clean runs against the simple path --------------- */

/* The byte-by-byte rules the fast path must match: escape and sanitise one
 * character at a time (the encoder before clean runs). */
static size_t ref_utf8_len(const unsigned char *s, size_t n, size_t *skip)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    size_t need;

    if (c >= 0xC2 && c <= 0xDF)
        need = 1;
    else if (c == 0xE0)
        need = 2, lo = 0xA0;
    else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF)
        need = 2;
    else if (c == 0xED)
        need = 2, hi = 0x9F;
    else if (c == 0xF0)
        need = 3, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3)
        need = 3;
    else if (c == 0xF4)
        need = 3, hi = 0x8F;
    else {
        *skip = 1;
        return 0;
    }
    for (size_t i = 1; i <= need; i++) {
        if (i >= n || (i == 1 ? (s[i] < lo || s[i] > hi) : (s[i] < 0x80 || s[i] > 0xBF))) {
            *skip = i;
            return 0;
        }
    }
    return need + 1;
}

/* Reference output into out (room for 6n + 2); json: quoted and escaped,
 * else sanitised only.  Returns the length. */
static size_t ref_encode(const unsigned char *u, size_t n, bool json, char *out)
{
    size_t o = 0;

    if (json)
        out[o++] = '"';
    for (size_t i = 0; i < n;) {
        unsigned char c = u[i];
        size_t skip, len;
        if (c < 0x80) {
            i++;
            if (!json)
                out[o++] = (char)c;
            else if (c == '"' || c == '\\')
                out[o++] = '\\', out[o++] = (char)c;
            else if (c == '\n')
                out[o++] = '\\', out[o++] = 'n';
            else if (c == '\r')
                out[o++] = '\\', out[o++] = 'r';
            else if (c == '\t')
                out[o++] = '\\', out[o++] = 't';
            else if (c < 0x20 || c == 0x7F)
                o += (size_t)sprintf(out + o, "\\u%04x", c);
            else
                out[o++] = (char)c;
            continue;
        }
        len = ref_utf8_len(u + i, n - i, &skip);
        if (len > 0) {
            memcpy(out + o, u + i, len);
            o += len;
            i += len;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i += skip;
        }
    }
    if (json)
        out[o++] = '"';
    return o;
}

/* A buffer grown to its cap once (4,096 bytes), reused by every check:
 * memory already there.  Freed at the end of each test using it. */
static struct buf warm;
static char fill[4096];

static struct buf *warm_buffer(void)
{
    if (buf_len(&warm) == 0 && buf_max(&warm) == 0) {
        memset(fill, 'z', sizeof(fill));
        buf_init(&warm, sizeof(fill));
        assert_int_equal(buf_append(&warm, fill, sizeof(fill)), 0);
    }
    buf_reset(&warm);
    return &warm;
}

static void warm_free(void)
{
    buf_free(&warm);
    buf_init(&warm, 0);
}

static void check_against_ref(const unsigned char *s, size_t n)
{
    static char want[6 * 300 + 2];
    struct buf b;
    struct buf *w = warm_buffer();
    size_t wn;

    assert_true(n <= 300);
    buf_init(&b, 4096);
    wn = ref_encode(s, n, true, want);
    /* into a new buffer: measured first */
    assert_int_equal(buf_append_json_string(&b, (const char *)s, n), 0);
    assert_int_equal(buf_len(&b), wn);
    assert_memory_equal(buf_data(&b), want, wn);
    assert_int_equal(buf_json_escaped_len((const char *)s, n) + 2, wn);
    /* into memory already there, with room for the worst case: one pass,
     * after 0 to 7 bytes so the words land at every alignment */
    for (size_t lead = 0; lead < 8; lead += 3) {
        buf_reset(w);
        assert_int_equal(buf_append(w, fill, lead), 0);
        assert_int_equal(buf_append_json_string(w, (const char *)s, n), 0);
        assert_int_equal(buf_len(w), lead + wn);
        assert_memory_equal(buf_data(w) + lead, want, wn);
        assert_int_equal(buf_data(w)[lead + wn], '\0');
    }
    /* with room for the string but not its worst case: measured again */
    buf_reset(w);
    assert_int_equal(buf_append(w, fill, sizeof(fill) - wn), 0);
    assert_int_equal(buf_append_json_string(w, (const char *)s, n), 0);
    assert_memory_equal(buf_data(w) + sizeof(fill) - wn, want, wn);
    buf_reset(&b);
    wn = ref_encode(s, n, false, want);
    assert_int_equal(buf_append_utf8(&b, (const char *)s, n), 0);
    assert_int_equal(buf_len(&b), wn);
    if (wn > 0)
        assert_memory_equal(buf_data(&b), want, wn);
    buf_free(&b);
}

/* Every byte value at every position of clean strings whose lengths cross
 * the 8- and 16-byte steps, at an aligned and an unaligned start. */
static void test_clean_runs_every_byte_every_position(void **state)
{
    static unsigned char mem[80 + 8];
    (void)state;

    for (size_t align = 0; align < 8; align += 5) {
        unsigned char *s = mem + align;
        for (size_t n = 1; n <= 72; n++) {
            for (size_t pos = 0; pos < n; pos++) {
                for (unsigned v = 0; v < 256; v++) {
                    /* past 40 bytes (the word-copied ids and keys go to
                     * 64), the bytes at the edges of each rule */
                    if (n > 40 && v != 0 && v != 0x1f && v != ' ' && v != '"' && v != '\\' && v != 0x7e &&
                        v != 0x7f && v != 0x80 && v != 0xc3 && v != 0xff)
                        continue;
                    for (size_t i = 0; i < n; i++)
                        s[i] = (unsigned char)('a' + i % 26);
                    s[pos] = (unsigned char)v;
                    check_against_ref(s, n);
                }
            }
        }
    }
    warm_free();
}

static void test_clean_runs_random_mixes(void **state)
{
    static const char *const pieces[] = {
        "abcdefghijklmnop", "0123456789", " ", "\"", "\\", "\n", "\t", "\r", "\x01", "\x1f", "\x7f",
        "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xc3", "\xe2\x82", "\xf0\x9f\x98", "\x80",
        "\xbf", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xff", "\xfe", "/",
        "~", "\x00",
    };
    unsigned char s[300];
    uint32_t seed = 12345;
    (void)state;

    for (int round = 0; round < 20000; round++) {
        size_t n = 0;
        size_t want;
        seed = seed * 1103515245u + 12345u;
        want = (seed >> 8) % 300;
        while (n < want) {
            seed = seed * 1103515245u + 12345u;
            const char *p = pieces[(seed >> 8) % (sizeof(pieces) / sizeof(pieces[0]))];
            size_t len = p[0] == '\0' ? 1 : strlen(p);
            if (len > want - n)
                len = want - n;
            memcpy(s + n, p, len);
            n += len;
        }
        check_against_ref(s, n);
    }
    warm_free();
}

/* --- doubles: the integer fast path against printf ------------------------ */

/* The simple path: the first of %.15g/%.16g/%.17g that reads back. */
static size_t ref_double(double d, char *out)
{
    int n = 0;

    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(out, 32, "%.*g", prec, d);
        if (strtod(out, NULL) == d)
            break;
    }
    return (size_t)n;
}

static void check_double(double d)
{
    char want[32];
    struct buf b;
    size_t n = ref_double(d, want);

    buf_init(&b, 64);
    assert_int_equal(buf_append_json_double(&b, d), 0);
    if (buf_len(&b) != n || memcmp(buf_data(&b), want, n) != 0)
        fail_msg("%.17g (%a): got %s, want %.*s", d, d, buf_data(&b), (int)n, want);
    buf_free(&b);
}

static uint64_t rng_next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* Random bit patterns over and around the fast path's range (4M passed once; 200k per run), the figures
 * the tracer computes (prices times milliseconds and megabytes), short
 * decimals and their neighbours, powers of ten and the range's edges. */
static void test_double_fast_path_matches_printf(void **state)
{
    static const double edges[] = {1e-4, 1e-3, 0.1, 1, 10, 1e14, 1e15, 9.99999999999999e14,
                                   999999999999999.9, 0.5, 0.25, 12.5, 0.0001, 0.00009999999999999999,
                                   1.5, 2.5, 0.3, 0.1 + 0.2, 1.0 / 3, 2.0 / 3, 123456789012345.6,
                                   4503599627370496.0, 0.000166667, 1.66667e-05, 2e-07, 0.0000002083,
                                   1e-10, 1e-9, 1e-5, 9.99999999999999e-11, 2.9166725e-08, 1e-11};
    uint64_t x = 88172645463325252ULL;
    (void)state;

    for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
        double d = edges[i];
        for (int k = 0; k < 40; k++) {
            check_double(d);
            check_double(-d);
            d = nextafter(d, k < 20 ? INFINITY : 0);
            if (k == 19)
                d = nextafter(edges[i], 0);
        }
    }
    for (int i = 0; i < 200000; i++) {
        uint64_t bits = rng_next(&x);
        double d;
        /* exponents around [1e-11, 1e16]: biased exponents 986..1077 */
        bits = (bits & UINT64_C(0x800fffffffffffff)) | ((uint64_t)(986 + rng_next(&x) % 92) << 52);
        memcpy(&d, &bits, sizeof(d));
        check_double(d);
    }
    for (int i = 0; i < 100000; i++) {
        double price = (double)(rng_next(&x) % 100000) / 1e10; /* USD per GB-s */
        double ms = (double)(rng_next(&x) % 900000);
        double mb = (double)(128 + rng_next(&x) % 10112);
        check_double(price * ms / 1000.0 * mb / 1024.0);
        check_double(price * ms / 1000.0 * mb / 1024.0 + 2e-7);
        check_double(price * (double)(rng_next(&x) % 1000) / 1000.0 * 0.125);
        check_double(ms / 1000.0);
        check_double((double)(rng_next(&x) % 100000000) / 1000.0);
        check_double((double)(rng_next(&x) % 1000) / 100.0);
    }
    /* outside the fast path: printf decides, unchanged */
    check_double(0.0);
    check_double(-0.0);
    check_double(1e-300);
    check_double(5e-324);
    check_double(1e300);
    check_double(1e15);
    check_double(12345678901234567890.0);
}

static void test_every_allocation_failure(void **state)
{
    struct buf b;
    unsigned long allocations;
    (void)state;
    /* count the allocations of a clean run */
    fail_alloc_reset();
    buf_init(&b, 1 << 20);
    assert_int_equal(workload(&b), 0);
    allocations = fail_alloc_count();
    buf_free(&b);
    assert_true(allocations > 3);
    for (unsigned long nth = 1; nth <= allocations; nth++) {
        size_t before;
        char *copy;
        int r;

        fail_alloc_reset();
        buf_init(&b, 1 << 20);
        fail_alloc_fail_at(nth);
        r = workload(&b);
        assert_int_equal(r, -ENOMEM);
        /* the buffer is still consistent: what is there can be read and
         * more can be appended once memory is back */
        before = buf_len(&b);
        assert_int_equal(strlen(buf_data(&b)), before);
        fail_alloc_fail_at(0);
        copy = malloc(before + 1);
        assert_non_null(copy);
        memcpy(copy, buf_data(&b), before + 1);
        assert_int_equal(buf_append_str(&b, "!"), 0);
        assert_memory_equal(buf_data(&b), copy, before);
        free(copy);
        buf_free(&b);
        assert_int_equal(fail_alloc_live(), 0);
    }
}

/* Integers and fixed-point decimals without printf: checked against it. */
static void test_integers_and_fixed_point(void **state)
{
    static const int64_t values[] = {0, 1, -1, 9, 10, 999999, 1000000, -1000000, 1480615200000001,
                                     -500000, INT64_MAX, INT64_MIN, 123456789012};
    char want[64];
    struct buf b;
    (void)state;
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        int64_t v = values[i];
        uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

        buf_init(&b, 64);
        assert_int_equal(buf_append_i64(&b, v), 0);
        snprintf(want, sizeof(want), "%" PRId64, v);
        assert_string_equal(buf_data(&b), want);
        buf_reset(&b);
        assert_int_equal(buf_append_fixed(&b, v, 6), 0);
        snprintf(want, sizeof(want), "%s%" PRIu64 ".%06" PRIu64, v < 0 ? "-" : "", mag / 1000000,
                 mag % 1000000);
        assert_string_equal(buf_data(&b), want);
        buf_reset(&b);
        assert_int_equal(buf_append_fixed(&b, v, 3), 0);
        snprintf(want, sizeof(want), "%s%" PRIu64 ".%03" PRIu64, v < 0 ? "-" : "", mag / 1000,
                 mag % 1000);
        assert_string_equal(buf_data(&b), want);
        buf_free(&b);
    }
    buf_init(&b, 64);
    assert_int_equal(buf_append_fixed(&b, 1480615200000001, 6), 0);
    assert_string_equal(buf_data(&b), "1480615200.000001"); /* trap 26: no double on the way */
    assert_int_equal(buf_append_fixed(&b, 5, 0), -EINVAL);
    assert_int_equal(buf_append_fixed(&b, 5, 10), -EINVAL);
    buf_free(&b);
    /* over the cap: refused, the buffer as it was */
    buf_init(&b, 8);
    assert_int_equal(buf_append_str(&b, "ab"), 0);
    assert_int_equal(buf_append_i64(&b, 1234567), -ENOBUFS);
    assert_int_equal(buf_append_fixed(&b, 1234567, 6), -ENOBUFS);
    assert_string_equal(buf_data(&b), "ab");
    assert_int_equal(buf_append_i64(&b, -12345), 0);
    assert_string_equal(buf_data(&b), "ab-12345");
    buf_free(&b);
}

/* buf_recycle: empty and reusable under a new cap; memory kept up to
 * keep_bytes (no allocation on the next use), freed above it or above the
 * new cap. */
static void test_recycle_keeps_small_frees_large(void **state)
{
    struct buf b;
    unsigned long n;
    (void)state;

    buf_init(&b, 1 << 20);
    assert_int_equal(buf_append_str(&b, "hello"), 0);
    buf_recycle(&b, 1 << 20, 4096);
    assert_int_equal(buf_len(&b), 0);
    assert_string_equal(buf_data(&b), "");
    n = fail_alloc_count();
    assert_int_equal(buf_append_str(&b, "again"), 0);
    assert_int_equal(fail_alloc_count(), n); /* the kept memory, no allocation */
    assert_string_equal(buf_data(&b), "again");
    /* grown past keep_bytes: freed at the next recycle */
    char big[8192];
    memset(big, 'a', sizeof(big));
    assert_int_equal(buf_append(&b, big, sizeof(big)), 0);
    buf_recycle(&b, 1 << 20, 4096);
    assert_int_equal(fail_alloc_live(), 0);
    assert_int_equal(buf_len(&b), 0);
    /* a new, smaller cap: kept memory above it is freed, the cap applies */
    assert_int_equal(buf_append(&b, big, 2000), 0);
    buf_recycle(&b, 100, 4096);
    assert_int_equal(fail_alloc_live(), 0);
    assert_int_equal(buf_max(&b), 100);
    assert_int_equal(buf_append(&b, big, 101), -ENOBUFS);
    buf_free(&b);
    /* a zeroed struct is a valid start */
    memset(&b, 0, sizeof(b));
    buf_recycle(&b, 10, 4096);
    assert_int_equal(buf_append_str(&b, "0123456789"), 0);
    assert_int_equal(buf_append_str(&b, "x"), -ENOBUFS);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_empty_and_append, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cap_is_hard_and_failure_leaves_buffer_unchanged, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_growth_keeps_contents, setup, teardown),
        cmocka_unit_test_setup_teardown(test_printf, setup, teardown),
        cmocka_unit_test_setup_teardown(test_insert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_escapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_valid_utf8_is_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_invalid_utf8_is_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_utf8_sanitising_without_escapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_string_max, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_double, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clean_runs_every_byte_every_position, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clean_runs_random_mixes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_double_fast_path_matches_printf, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_allocation_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_integers_and_fixed_point, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recycle_keeps_small_frees_large, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
