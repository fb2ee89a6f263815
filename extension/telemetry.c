/*
 * telemetry.c - see telemetry.h.
 *
 * A batch is read in one pass by a scanner of its own instead of a JSON
 * tree: a 1,000-record batch of 1 KB log lines is about 1 MB, and building
 * cJSON's tree of it (a node and a heap copy per value), copying the strings
 * we keep a second time and freeing the tree cost five times the rest of
 * the pipeline.  The scanner validates the whole body, finds each element's
 * `time`, `type` and `record`, and decodes only the strings an event keeps:
 * in place in the body when the caller hands it over (the pipeline: the
 * listener's buffer), else into the batch's arena.  String ends are found
 * 32 or 16 bytes at a time.
 *
 * It accepts exactly what the cJSON-based reader it replaced accepted, quirks
 * included, so behaviour did not change (tests/fuzz/tel_reference.h keeps
 * that reader as a differential oracle for the fuzz target and unit tests):
 * bytes up to 0x20 are whitespace, a UTF-8 BOM is skipped, anything after
 * the top-level array is ignored, a number is the longest run of
 * [0-9+-eE.] read by strtod (which must take at least one byte of it),
 * control bytes inside strings are kept, \u with bad hex digits is U+0000,
 * a lone or unpaired surrogate is an error, the first of duplicate keys
 * wins, and a string is compared and kept only up to its first NUL.
 * Nesting is limited to TELEMETRY_MAX_DEPTH containers, as cJSON's was.
 */
#include "telemetry.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Arena: a chain of blocks that never move, so event pointers stay valid.
 * 64 KiB: a 1 MB batch of log lines takes a few blocks, not dozens. */
#define ARENA_BLOCK_BYTES 65536

/* Kept from freed batches for the next (see tel_batch_free). */
#define TEL_SPARE_MAX_EVENTS 1024
#define TEL_SPARE_MAX_BLOCKS 10

/* Nesting limit (cJSON's CJSON_NESTING_LIMIT, which the format kept). */
#define TELEMETRY_MAX_DEPTH 1000

/* Strings we compare (keys, enum values, times) are decoded into a small
 * buffer; a longer one cannot equal any of them. */
#define SHORT_STRING_MAX 64

struct tel_arena_block {
    struct tel_arena_block *next;
    size_t used;
    size_t size;
    char data[];
};

static const char *const type_names[TEL_TYPE_COUNT] = {
    [TEL_UNKNOWN] = "unknown",
    [TEL_INIT_START] = "platform.initStart",
    [TEL_INIT_RUNTIME_DONE] = "platform.initRuntimeDone",
    [TEL_INIT_REPORT] = "platform.initReport",
    [TEL_RESTORE_START] = "platform.restoreStart",
    [TEL_RESTORE_RUNTIME_DONE] = "platform.restoreRuntimeDone",
    [TEL_RESTORE_REPORT] = "platform.restoreReport",
    [TEL_START] = "platform.start",
    [TEL_RUNTIME_DONE] = "platform.runtimeDone",
    [TEL_REPORT] = "platform.report",
    [TEL_EXTENSION_STATE] = "platform.extension",
    [TEL_SUBSCRIPTION] = "platform.telemetrySubscription",
    [TEL_LOGS_DROPPED] = "platform.logsDropped",
    [TEL_FUNCTION_LOG] = "function",
    [TEL_EXTENSION_LOG] = "extension",
};

const char *tel_type_name(enum tel_type type)
{
    if ((unsigned)type >= TEL_TYPE_COUNT)
        return type_names[TEL_UNKNOWN];
    return type_names[type];
}

const char *tel_status_name(enum tel_status status)
{
    static const char *const names[] = {"none", "success", "error", "failure", "timeout", "other"};

    if ((unsigned)status >= sizeof(names) / sizeof(names[0]))
        return "other";
    return names[status];
}

static enum tel_type type_from_name(const char *name)
{
    if (name == NULL)
        return TEL_UNKNOWN;
    /* Most records are function log lines: no need to try the 13 others. */
    if (name[0] == 'f')
        return strcmp(name, "function") == 0 ? TEL_FUNCTION_LOG : TEL_UNKNOWN;
    for (unsigned i = 1; i < TEL_TYPE_COUNT; i++) {
        if (strcmp(name, type_names[i]) == 0)
            return (enum tel_type)i;
    }
    return TEL_UNKNOWN;
}

/* Memory kept between batches, under its lock (batches may be parsed and
 * freed on any thread). */
static struct {
    pthread_mutex_t lock;
    struct tel_event *events;
    size_t capacity;
    struct tel_arena_block *blocks; /* all ARENA_BLOCK_BYTES */
    unsigned block_count;
} spare = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void arena_free(struct tel_arena_block *block)
{
    while (block != NULL) {
        struct tel_arena_block *next = block->next;
        bool kept = false;
        if (block->size == ARENA_BLOCK_BYTES) {
            pthread_mutex_lock(&spare.lock);
            if (spare.block_count < TEL_SPARE_MAX_BLOCKS) {
                block->next = spare.blocks;
                spare.blocks = block;
                spare.block_count++;
                kept = true;
            }
            pthread_mutex_unlock(&spare.lock);
        }
        if (!kept)
            free(block);
        block = next;
    }
}

static struct tel_arena_block *spare_block(void)
{
    struct tel_arena_block *block;

    pthread_mutex_lock(&spare.lock);
    block = spare.blocks;
    if (block != NULL) {
        spare.blocks = block->next;
        spare.block_count--;
    }
    pthread_mutex_unlock(&spare.lock);
    return block;
}

void tel_spares_release(void)
{
    struct tel_arena_block *blocks;
    struct tel_event *events;

    pthread_mutex_lock(&spare.lock);
    blocks = spare.blocks;
    events = spare.events;
    spare.blocks = NULL;
    spare.block_count = 0;
    spare.events = NULL;
    spare.capacity = 0;
    pthread_mutex_unlock(&spare.lock);
    while (blocks != NULL) {
        struct tel_arena_block *next = blocks->next;
        free(blocks);
        blocks = next;
    }
    free(events);
}

/* Room for len bytes in the arena; NULL on ENOMEM (the caller fails the
 * batch). */
static char *arena_alloc(struct tel_arena_block **arena, size_t len)
{
    struct tel_arena_block *block = *arena;
    char *p;

    if (block == NULL || block->size - block->used < len) {
        size_t size = len > ARENA_BLOCK_BYTES / 4 ? len : ARENA_BLOCK_BYTES;
        struct tel_arena_block *fresh = size == ARENA_BLOCK_BYTES ? spare_block() : NULL;
        if (fresh == NULL)
            fresh = malloc(sizeof(*fresh) + size);
        if (fresh == NULL)
            return NULL;
        fresh->used = 0;
        fresh->size = size;
        if (size == len && block != NULL) {
            /* A large string gets a block of its own, behind the current
             * one, whose free space stays in use. */
            fresh->next = block->next;
            block->next = fresh;
            fresh->used = len;
            return fresh->data;
        }
        fresh->next = block;
        *arena = fresh;
        block = fresh;
    }
    p = block->data + block->used;
    block->used += len;
    return p;
}

/* Days since 1970-01-01 of a proleptic Gregorian civil date. */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Reads exactly n digits at *p; advances *p.  -1 when not n digits. */
static int64_t read_digits(const char **p, int n)
{
    int64_t value = 0;

    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return -1;
        value = value * 10 + (c - '0');
    }
    *p += n;
    return value;
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* The last date and hour read (tel_parse_time's first 13 bytes,
 * "YYYY-MM-DDTHH"), validated, and their seconds since the epoch: a batch's
 * times mostly share them, so the rest of a time is all there is to read. */
struct time_cache {
    bool valid;
    char key[13];
    int64_t base_s;
};

/* "YYYY-MM-DDTHH" at text (13 bytes): its seconds since the epoch, or -1
 * when it is not a valid date and hour. */
static int64_t date_hour_seconds(const char *text)
{
    static const int month_days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const char *p = text;
    int64_t year, month, day, hour;

    year = read_digits(&p, 4);
    if (year < 0 || *p++ != '-')
        return -1;
    month = read_digits(&p, 2);
    if (month < 1 || month > 12 || *p++ != '-')
        return -1;
    day = read_digits(&p, 2);
    if (day < 1 || day > month_days[month - 1] + (month == 2 && is_leap(year)))
        return -1;
    if (*p != 'T' && *p != 't' && *p != ' ')
        return -1;
    p++;
    hour = read_digits(&p, 2);
    if (hour < 0 || hour > 23)
        return -1;
    return days_from_civil(year, month, day) * 86400 + hour * 3600;
}

static int parse_time(const char *text, int64_t *ret_us, struct time_cache *cache);

int tel_parse_time(const char *text, int64_t *ret_us)
{
    return parse_time(text, ret_us, NULL);
}

/* tel_parse_time, the date and hour taken from cache (when not NULL) if
 * they are the same 13 bytes as the last ones, and kept there. */
static int parse_time(const char *text, int64_t *ret_us, struct time_cache *cache)
{
    const char *p;
    int64_t base, minute, second, frac_us = 0, offset_s = 0;
    bool same = cache != NULL && cache->valid;

    if (text == NULL)
        return -EINVAL;
    /* byte by byte: a shorter text ends (NUL) before any byte past it */
    for (size_t i = 0; same && i < sizeof(cache->key); i++)
        same = text[i] == cache->key[i];
    if (same) {
        base = cache->base_s;
    } else {
        base = date_hour_seconds(text); /* reads no byte past a NUL */
        if (base == -1)
            return -EINVAL;
        if (cache != NULL) {
            memcpy(cache->key, text, sizeof(cache->key));
            cache->base_s = base;
            cache->valid = true;
        }
    }
    p = text + 13;
    if (*p++ != ':')
        return -EINVAL;
    minute = read_digits(&p, 2);
    if (minute < 0 || minute > 59 || *p++ != ':')
        return -EINVAL;
    second = read_digits(&p, 2);
    if (second < 0 || second > 60) /* 60: leap second, folded into the next */
        return -EINVAL;
    /* '.' is the standard separator; ':' appears in AWS doc examples (trap 19). */
    if (*p == '.' || *p == ',' || *p == ':') {
        int digits = 0;
        p++;
        if (*p < '0' || *p > '9')
            return -EINVAL;
        while (*p >= '0' && *p <= '9') {
            if (digits < 6)
                frac_us = frac_us * 10 + (*p - '0');
            digits++;
            if (digits > 9)
                return -EINVAL;
            p++;
        }
        for (int i = digits; i < 6; i++)
            frac_us *= 10;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        int64_t oh, om;
        p++;
        oh = read_digits(&p, 2);
        if (oh < 0 || oh > 23)
            return -EINVAL;
        if (*p == ':')
            p++;
        om = read_digits(&p, 2);
        if (om < 0 || om > 59)
            return -EINVAL;
        offset_s = sign * (oh * 3600 + om * 60);
    } else {
        return -EINVAL;
    }
    if (*p != '\0')
        return -EINVAL;

    int64_t secs = base + minute * 60 + second - offset_s;
    *ret_us = secs * 1000000 + frac_us;
    return 0;
}

/* --- the scanner ----------------------------------------------------------- */

struct scan {
    const unsigned char *p;
    const unsigned char *end;
    unsigned depth; /* containers open */
    int err;        /* -ENOMEM once an allocation failed; else the body is bad */
    const char *expected; /* what a separator or key check wanted where it failed (for the log) */
    /* Where kept strings go: decoded in place in the body when it is
     * writable (tel_batch_parse_inplace: body is that body, where p
     * started), else copied into the batch's arena. */
    unsigned char *writable;
    const unsigned char *body;
    struct time_cache times;
};

enum jkind { J_ABSENT = 0, J_STRING, J_NUMBER, J_LITERAL, J_ARRAY, J_OBJECT };

/* A value found in the body.  A string is [start, end) between its quotes. */
struct jval {
    enum jkind kind;
    bool escaped; /* a string holding a backslash */
    const unsigned char *start;
    const unsigned char *end;
    double number;
};

static void skip_ws(struct scan *s)
{
    while (s->p < s->end && *s->p <= 32)
        s->p++;
}

/* The first '"' or '\\' in [p, end), else end: log lines are most of a
 * batch's bytes.  Sixteen bytes at a time with GCC's vector extensions
 * (NEON on arm64, plain C elsewhere); on x86_64 thirty-two at a time with
 * SSE2 (part of every x86_64), whose byte mask says where the match is. */
typedef unsigned char bytes16 __attribute__((vector_size(16)));

static const unsigned char *find_quote_or_backslash(const unsigned char *p, const unsigned char *end)
{
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i backslash = _mm_set1_epi8('\\');

    while (end - p >= 32) {
        __m128i a = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(p + 16));
        unsigned ma = (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(a, quote), _mm_cmpeq_epi8(a, backslash)));
        unsigned mb = (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(b, quote), _mm_cmpeq_epi8(b, backslash)));
        unsigned m = ma | (mb << 16);

        if (m != 0)
            return p + __builtin_ctz(m);
        p += 32;
    }
#endif
    const bytes16 quote16 = {'"', '"', '"', '"', '"', '"', '"', '"',
                             '"', '"', '"', '"', '"', '"', '"', '"'};
    const bytes16 backslash16 = {'\\', '\\', '\\', '\\', '\\', '\\', '\\', '\\',
                                 '\\', '\\', '\\', '\\', '\\', '\\', '\\', '\\'};

    while (end - p >= 16) {
        bytes16 v;
        uint64_t half[2];
        memcpy(&v, p, sizeof(v));
        v = (bytes16)((v == quote16) | (v == backslash16));
        memcpy(half, &v, sizeof(half));
        if ((half[0] | half[1]) != 0) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            /* the first match's byte: straight to it (x86_64, arm64) */
            return half[0] != 0 ? p + __builtin_ctzll(half[0]) / 8 : p + 8 + __builtin_ctzll(half[1]) / 8;
#else
            break;
#endif
        }
        p += 16;
    }
    while (p < end && *p != '"' && *p != '\\')
        p++;
    return p;
}

/* The first '\\' in [p, end), else NULL: find_quote_or_backslash for
 * decoding (musl's memchr, byte-wise up to alignment and then a word at a
 * time, was a fifth of the release binary's parse). */
static const unsigned char *find_backslash(const unsigned char *p, const unsigned char *end)
{
#if defined(__SSE2__)
    const __m128i backslash = _mm_set1_epi8('\\');

    while (end - p >= 32) {
        __m128i a = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(p + 16));
        unsigned m = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(a, backslash)) |
                     ((unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(b, backslash)) << 16);

        if (m != 0)
            return p + __builtin_ctz(m);
        p += 32;
    }
#endif
    const bytes16 backslash16 = {'\\', '\\', '\\', '\\', '\\', '\\', '\\', '\\',
                                 '\\', '\\', '\\', '\\', '\\', '\\', '\\', '\\'};

    while (end - p >= 16) {
        bytes16 v;
        uint64_t half[2];
        memcpy(&v, p, sizeof(v));
        v = (bytes16)(v == backslash16);
        memcpy(half, &v, sizeof(half));
        if ((half[0] | half[1]) != 0)
            break; /* in these 16 bytes */
        p += 16;
    }
    while (p < end && *p != '\\')
        p++;
    return p < end ? p : NULL;
}

static unsigned hex4(const unsigned char *p)
{
    unsigned h = 0;

    for (int i = 0; i < 4; i++) {
        unsigned char c = p[i];
        if (c >= '0' && c <= '9')
            h = h * 16 + (unsigned)(c - '0');
        else if (c >= 'A' && c <= 'F')
            h = h * 16 + (unsigned)(c - 'A' + 10);
        else if (c >= 'a' && c <= 'f')
            h = h * 16 + (unsigned)(c - 'a' + 10);
        else
            return 0; /* as cJSON: bad hex is U+0000, not an error */
    }
    return h;
}

/* The escape at p (p[0] is the backslash, p < end): its UTF-8 in out
 * (*ret_n bytes, at most 4) and the bytes it takes, 0 when invalid.  p[1]
 * is readable: end is the closing quote. */
static size_t decode_escape(const unsigned char *p, const unsigned char *end, unsigned char *out,
                            size_t *ret_n)
{
    unsigned long cp;
    size_t seq = 6;
    unsigned first;

    *ret_n = 1;
    switch (p[1]) {
    case 'b': out[0] = '\b'; return 2;
    case 'f': out[0] = '\f'; return 2;
    case 'n': out[0] = '\n'; return 2;
    case 'r': out[0] = '\r'; return 2;
    case 't': out[0] = '\t'; return 2;
    case '"':
    case '\\':
    case '/': out[0] = p[1]; return 2;
    case 'u': break;
    default: return 0;
    }
    if (end - p < 6)
        return 0;
    first = hex4(p + 2);
    if (first >= 0xDC00 && first <= 0xDFFF)
        return 0;
    cp = first;
    if (first >= 0xD800 && first <= 0xDBFF) {
        unsigned second;
        if (end - (p + 6) < 6 || p[6] != '\\' || p[7] != 'u')
            return 0;
        second = hex4(p + 8);
        if (second < 0xDC00 || second > 0xDFFF)
            return 0;
        cp = 0x10000 + (((first & 0x3FFUL) << 10) | (second & 0x3FFUL));
        seq = 12;
    }
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
    } else if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        *ret_n = 2;
    } else if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        *ret_n = 3;
    } else {
        out[0] = (unsigned char)(0xF0 | (cp >> 18));
        out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[3] = (unsigned char)(0x80 | (cp & 0x3F));
        *ret_n = 4;
    }
    return seq;
}

/* Decodes the string v into out, writing at most cap bytes.  Returns the
 * bytes written, or (size_t)-1 for an invalid escape; *ret_full is false
 * when the output was cut at cap.  Escapes are read as cJSON read them
 * (after its scan that paired each backslash with the next byte), so an
 * escape may take bytes the scan paired differently. */
static size_t decode_string(const struct jval *v, unsigned char *out, size_t cap, bool *ret_full)
{
    const unsigned char *p = v->start;
    size_t n = 0;

    *ret_full = true;
    while (p < v->end) {
        const unsigned char *bs = v->escaped ? find_backslash(p, v->end) : NULL;
        size_t run = (size_t)((bs != NULL ? bs : v->end) - p);
        unsigned char tmp[4];
        size_t k, take;

        if (run > cap - n) { /* cut at cap */
            if (out != NULL)
                memmove(out + n, p, cap - n);
            *ret_full = false;
            return cap;
        }
        if (run > 0) {
            /* out may be the string itself (decoded in place, never ahead
             * of what is read): up to the first escape nothing moves */
            if (out != NULL && out + n != p)
                memmove(out + n, p, run);
            n += run;
            p += run;
            continue;
        }
        take = decode_escape(p, v->end, tmp, &k);
        if (take == 0)
            return (size_t)-1;
        if (k > cap - n) {
            *ret_full = false;
            return n;
        }
        if (out != NULL)
            memcpy(out + n, tmp, k);
        n += k;
        p += take;
    }
    return n;
}

/* At '"': finds the closing quote (a backslash pairs with the next byte)
 * and checks the escapes.  Single-character escapes are checked on the
 * way; a string with a \u is decoded once more to check it, because a \u
 * takes the next four bytes whatever they are (cJSON's decoding could then
 * leave the scan's pairing), so from the first \u on only that decides. */
static bool scan_string(struct scan *s, struct jval *v)
{
    const unsigned char *p = s->p + 1;
    bool has_u = false;
    bool full;

    v->kind = J_STRING;
    v->start = p;
    v->escaped = false;
    for (;;) {
        p = find_quote_or_backslash(p, s->end);
        if (p >= s->end)
            return false;
        if (*p == '"')
            break;
        v->escaped = true;
        if (s->end - p < 2)
            return false;
        switch (p[1]) {
        case 'b': case 'f': case 'n': case 'r': case 't': case '"': case '\\': case '/':
            break;
        case 'u':
            has_u = true;
            break;
        default:
            if (!has_u)
                return false;
            break; /* after a \u, the decoding decides (it may not pair these) */
        }
        p += 2;
    }
    v->end = p;
    if (has_u && decode_string(v, NULL, (size_t)(v->end - v->start), &full) == (size_t)-1)
        return false; /* s->p stays at the quote: where the log line points */
    s->p = p + 1;
    return true;
}

/* One or more digits at p, appended to *m (counted in *count); the byte
 * after them, or NULL when there is no digit.  (*m may wrap: the caller
 * rejects more than 15 digits.) */
static const unsigned char *digit_run(const unsigned char *p, const unsigned char *end, uint64_t *m,
                                      unsigned *count)
{
    if (p >= end || *p < '0' || *p > '9')
        return NULL;
    while (p < end && *p >= '0' && *p <= '9') {
        *m = *m * 10 + (uint64_t)(*p++ - '0');
        (*count)++;
    }
    return p;
}

/* The common number, [-]digits[.digits] with at most 15 digits, as strtod
 * would read it (all n bytes), without strtod (musl's is slow): an
 * integer below 2^53 divided by an exact power of ten is correctly
 * rounded, so the result is the same double.  false: let strtod decide. */
static bool fast_number(const unsigned char *p, size_t n, double *ret)
{
    static const double pow10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7,
                                   1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
    const unsigned char *end = p + n;
    bool negative = false;
    uint64_t m = 0;
    unsigned digits = 0;
    unsigned decimals = 0;
    double d;

    if (p < end && *p == '-') {
        negative = true;
        p++;
    }
    p = digit_run(p, end, &m, &digits);
    if (p != NULL && p < end && *p == '.') {
        unsigned before = digits;
        p = digit_run(p + 1, end, &m, &digits);
        decimals = digits - before;
    }
    if (p != end || digits > 15)
        return false;
    d = (double)m / pow10[decimals];
    *ret = negative ? -d : d;
    return true;
}

/* At '-' or a digit: the longest run of number bytes, as much of it as
 * strtod reads. */
static bool scan_number(struct scan *s, struct jval *v)
{
    const unsigned char *q = s->p;
    char small[64];
    char *copy = small;
    char *after;
    size_t n, used;

    while (q < s->end && ((*q >= '0' && *q <= '9') || *q == '+' || *q == '-' || *q == 'e' ||
                          *q == 'E' || *q == '.'))
        q++;
    n = (size_t)(q - s->p);
    if (fast_number(s->p, n, &v->number)) {
        used = n;
        goto done;
    }
    if (n >= sizeof(small)) {
        copy = malloc(n + 1);
        if (copy == NULL) {
            s->err = -ENOMEM;
            return false;
        }
    }
    memcpy(copy, s->p, n);
    copy[n] = '\0';
    v->number = strtod(copy, &after);
    used = (size_t)(after - copy);
    if (copy != small)
        free(copy);
    if (used == 0)
        return false;
done:
    v->kind = J_NUMBER;
    v->start = s->p;
    s->p += used;
    v->end = s->p;
    return true;
}

/* A value other than a container. */
static bool scan_scalar(struct scan *s, struct jval *v)
{
    size_t left = (size_t)(s->end - s->p);

    v->start = s->p;
    if ((left >= 4 && memcmp(s->p, "null", 4) == 0) || (left >= 4 && memcmp(s->p, "true", 4) == 0)) {
        s->p += 4;
    } else if (left >= 5 && memcmp(s->p, "false", 5) == 0) {
        s->p += 5;
    } else if (left > 0 && *s->p == '"') {
        return scan_string(s, v);
    } else if (left > 0 && (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))) {
        return scan_number(s, v);
    } else {
        return false;
    }
    v->kind = J_LITERAL;
    v->end = s->p;
    return true;
}

/* At '{' or '[' (checked): opens the container.  -1 past the depth limit
 * or at the end of the body, 0 when it is empty (and closed again), 1 when
 * s->p is at its first item. */
static int open_container(struct scan *s)
{
    unsigned char close = *s->p == '{' ? '}' : ']';

    if (s->depth >= TELEMETRY_MAX_DEPTH)
        return -1;
    s->depth++;
    s->p++;
    skip_ws(s);
    if (s->p >= s->end)
        return -1;
    if (*s->p == close) {
        s->p++;
        s->depth--;
        return 0;
    }
    return 1;
}

/* Inside an object, at a member: its key, the ':' and the whitespace up to
 * the value. */
static bool scan_key(struct scan *s, struct jval *key)
{
    if (s->p >= s->end || *s->p != '"') {
        s->expected = "a \"key\"";
        return false;
    }
    if (!scan_string(s, key))
        return false;
    skip_ws(s);
    if (s->p >= s->end || *s->p != ':') {
        s->expected = "':'";
        return false;
    }
    s->p++;
    skip_ws(s);
    return s->p < s->end; /* a value must follow */
}

/* After a member or element: 1 at ',' (moved past it and the whitespace;
 * in an object, past the next key too), 0 at the closing bracket (moved
 * past it; the container is closed), -1 otherwise. */
static int next_item(struct scan *s, bool object, struct jval *key)
{
    skip_ws(s);
    if (s->p >= s->end)
        return -1;
    if (*s->p == ',') {
        s->p++;
        skip_ws(s);
        if (s->p >= s->end || (object && !scan_key(s, key)))
            return -1;
        return 1; /* s->p is at a value */
    }
    if (*s->p == (object ? '}' : ']')) {
        s->p++;
        s->depth--;
        return 0;
    }
    s->expected = object ? "',' or '}'" : "',' or ']'";
    return -1;
}

/* At '[' or '{': the container validated to its end without recursion
 * (the stack remembers which open containers are objects). */
static bool scan_container(struct scan *s, struct jval *v)
{
    unsigned char is_object[(TELEMETRY_MAX_DEPTH + 7) / 8] = {0};
    unsigned open = 0;
    struct jval tmp;

    v->kind = *s->p == '{' ? J_OBJECT : J_ARRAY;
    v->start = s->p;
    for (;;) {
        if (s->p < s->end && (*s->p == '[' || *s->p == '{')) {
            bool obj = *s->p == '{';
            int items = open_container(s);
            if (items < 0)
                return false;
            if (items > 0) {
                if (obj)
                    is_object[open / 8] |= (unsigned char)(1u << (open % 8));
                else
                    is_object[open / 8] &= (unsigned char)~(1u << (open % 8));
                open++;
                if (obj && !scan_key(s, &tmp))
                    return false;
                continue; /* to the first value */
            }
        } else if (!scan_scalar(s, &tmp)) {
            return false;
        }
        /* A value ended: close what ends with it, or move to the next. */
        for (;;) {
            int r;
            if (open == 0) {
                v->end = s->p;
                return true;
            }
            r = next_item(s, (is_object[(open - 1) / 8] >> ((open - 1) % 8)) & 1, &tmp);
            if (r < 0)
                return false;
            if (r > 0)
                break;
            open--;
        }
    }
}

/* Any value. */
static bool scan_value(struct scan *s, struct jval *v)
{
    if (s->p >= s->end || (*s->p != '[' && *s->p != '{'))
        return scan_scalar(s, v);
    return scan_container(s, v);
}

/* Object members we read: a key list and, per key, the first value seen. */
enum { KEY_NONE = -1 };

/* A key we look for, with its length. */
struct key_name {
    const char *name;
    size_t len;
};
#define KEY(text) {text, sizeof(text) - 1}

/* The index of the key k (len bytes) in names (n of them), KEY_NONE. */
static int name_index(const unsigned char *k, size_t len, const struct key_name *names, int n)
{
    for (int i = 0; i < n; i++) {
        if (names[i].len == len && len > 0 && names[i].name[0] == (char)k[0] &&
            memcmp(names[i].name, k, len) == 0)
            return i;
    }
    return KEY_NONE;
}

/* The index of key in names (n of them), KEY_NONE when it is none of them.
 * The key is compared as cJSON's strcmp compared it: decoded, up to its
 * first NUL.  A key holding a NUL equals no name at its whole length (no
 * name holds one), so the NUL is looked for only when that found none. */
static int key_index(const struct jval *key, const struct key_name *names, int n)
{
    unsigned char buf[SHORT_STRING_MAX];
    const unsigned char *k = key->start;
    size_t len = (size_t)(key->end - key->start);
    const unsigned char *nul;
    bool full = true;

    if (key->escaped) {
        len = decode_string(key, buf, sizeof(buf), &full);
        k = buf;
    }
    if (full) {
        int i = name_index(k, len, names, n);
        if (i != KEY_NONE)
            return i;
    }
    nul = memchr(k, '\0', len);
    if (nul == NULL)
        return KEY_NONE; /* cut at the buffer (a long key) or simply none */
    return name_index(k, (size_t)(nul - k), names, n);
}

/* The string v decoded into buf (NUL-terminated, up to its first NUL);
 * false when v is not a string or does not fit. */
static bool short_string(const struct jval *v, char buf[SHORT_STRING_MAX])
{
    bool full;
    size_t n;

    if (v->kind != J_STRING)
        return false;
    n = decode_string(v, (unsigned char *)buf, SHORT_STRING_MAX - 1, &full);
    if (n == (size_t)-1)
        return false;
    buf[n] = '\0';
    return full || memchr(buf, '\0', n) != NULL;
}

/* Reads an object's members (s->p at '{'): values[i] gets the first value
 * of names[i].  For those, nested (when not NULL) may read the value itself
 * (an object or array it wants the inside of): it returns 1 when it did, 0
 * when the value is to be kept as is, -1 when the body is bad.  Everything
 * is validated. */
struct members {
    const struct key_name *names;
    int count;
    struct jval *values;
};

#define MEMBERS_MAX 24

static bool read_object(struct scan *s, const struct members *m,
                        int (*nested)(struct scan *s, int index, void *ctx), void *ctx)
{
    bool seen[MEMBERS_MAX] = {false};
    struct jval key;
    struct jval skipped;
    int r = open_container(s);

    if (r <= 0)
        return r == 0;
    if (!scan_key(s, &key))
        return false;
    while (r > 0) {
        int i = key_index(&key, m->names, m->count);

        if (i != KEY_NONE && !seen[i]) {
            int h = nested != NULL ? nested(s, i, ctx) : 0;
            seen[i] = true;
            if (h < 0 || (h == 0 && !scan_value(s, &m->values[i])))
                return false;
        } else if (!scan_value(s, &skipped)) {
            return false;
        }
        r = next_item(s, true, &key);
    }
    return r == 0;
}

/* --- records --------------------------------------------------------------- */

enum record_key {
    RK_REQUEST_ID,
    RK_STATUS,
    RK_ERROR_TYPE,
    RK_INIT_TYPE,
    RK_PHASE,
    RK_VERSION,
    RK_FUNCTION_VERSION,
    RK_FUNCTION_NAME,
    RK_INSTANCE_ID,
    RK_RUNTIME_VERSION,
    RK_NAME,
    RK_STATE,
    RK_INSTANCE_MAX_MEMORY,
    RK_DROPPED_RECORDS,
    RK_DROPPED_BYTES,
    RK_REASON,
    RK_MESSAGE,
    RK_TRACING,
    RK_METRICS,
    RK_SPANS,
    RK_TENANT_ID,
    RK_EVENTS,
    RK_COUNT
};

static const struct key_name record_keys[RK_COUNT] = {
    KEY("requestId"), KEY("status"), KEY("errorType"), KEY("initializationType"), KEY("phase"), KEY("version"),
    KEY("functionVersion"), KEY("functionName"), KEY("instanceId"), KEY("runtimeVersion"), KEY("name"), KEY("state"),
    KEY("instanceMaxMemory"), KEY("droppedRecords"), KEY("droppedBytes"), KEY("reason"), KEY("message"), KEY("tracing"),
    KEY("metrics"), KEY("spans"), KEY("tenantId"), KEY("events"),
};

enum { TK_VALUE, TK_SPAN_ID, TK_COUNT };
static const struct key_name tracing_keys[TK_COUNT] = {KEY("value"), KEY("spanId")};

enum {
    MK_DURATION,
    MK_INIT_DURATION,
    MK_RESTORE_DURATION,
    MK_BILLED,
    MK_MEMORY_SIZE,
    MK_MAX_MEMORY_USED,
    MK_PRODUCED_BYTES,
    MK_COUNT
};
static const struct key_name metrics_keys[MK_COUNT] = {
    KEY("durationMs"), KEY("initDurationMs"), KEY("restoreDurationMs"), KEY("billedDurationMs"),
    KEY("memorySizeMB"), KEY("maxMemoryUsedMB"), KEY("producedBytes"),
};

enum { SK_NAME, SK_START, SK_DURATION, SK_COUNT };
static const struct key_name span_keys[SK_COUNT] = {KEY("name"), KEY("start"), KEY("durationMs")};

enum { EK_TIME, EK_TYPE, EK_RECORD, EK_COUNT };
static const struct key_name element_keys[EK_COUNT] = {KEY("time"), KEY("type"), KEY("record")};

/* What one element's record holds, as found in the body. */
_Static_assert(RK_COUNT <= MEMBERS_MAX, "read_object's seen[] holds every record key");

struct raw_record {
    struct jval rec[RK_COUNT];
    struct jval tracing[TK_COUNT];
    struct jval metrics[MK_COUNT];
    unsigned span_count;
    struct jval spans[TELEMETRY_MAX_SPANS][SK_COUNT];
    unsigned ext_events; /* `events`: TEL_EXT_* of its strings */
};

/* `spans` (s->p at '['): the first TELEMETRY_MAX_SPANS objects with a
 * string `name`; the rest is validated only. */
static bool read_spans(struct scan *s, struct raw_record *raw)
{
    static const struct members none = {span_keys, 0, NULL};
    int r = open_container(s);

    if (r <= 0)
        return r == 0;
    while (r > 0) {
        if (*s->p == '{' && raw->span_count < TELEMETRY_MAX_SPANS) {
            struct jval *slot = raw->spans[raw->span_count];
            struct members m = {span_keys, SK_COUNT, slot};
            memset(slot, 0, SK_COUNT * sizeof(*slot));
            if (!read_object(s, &m, NULL, NULL))
                return false;
            if (slot[SK_NAME].kind == J_STRING)
                raw->span_count++;
        } else if (*s->p == '{') {
            if (!read_object(s, &none, NULL, NULL))
                return false;
        } else {
            struct jval skipped;
            if (!scan_value(s, &skipped))
                return false;
        }
        r = next_item(s, false, NULL);
    }
    return r == 0;
}

static const char *compare_string(const struct jval *v, char buf[SHORT_STRING_MAX]);

/* `events` (s->p at '['): the known event names among its strings; any
 * other value is validated only. */
static bool read_event_names(struct scan *s, struct raw_record *raw)
{
    int r = open_container(s);

    if (r <= 0)
        return r == 0;
    while (r > 0) {
        struct jval v;
        char buf[SHORT_STRING_MAX];
        const char *name;

        if (!scan_value(s, &v))
            return false;
        name = compare_string(&v, buf);
        if (name != NULL && strcmp(name, "INVOKE") == 0)
            raw->ext_events |= TEL_EXT_INVOKE;
        else if (name != NULL && strcmp(name, "SHUTDOWN") == 0)
            raw->ext_events |= TEL_EXT_SHUTDOWN;
        r = next_item(s, false, NULL);
    }
    return r == 0;
}

static int record_nested(struct scan *s, int index, void *ctx)
{
    struct raw_record *raw = ctx;
    struct members m = {NULL, 0, NULL};

    if (index == RK_SPANS && *s->p == '[') {
        raw->rec[RK_SPANS].kind = J_ARRAY;
        return read_spans(s, raw) ? 1 : -1;
    }
    if (index == RK_EVENTS && *s->p == '[') {
        raw->rec[RK_EVENTS].kind = J_ARRAY;
        return read_event_names(s, raw) ? 1 : -1;
    }
    if (*s->p != '{')
        return 0;
    if (index == RK_TRACING)
        m = (struct members){tracing_keys, TK_COUNT, raw->tracing};
    else if (index == RK_METRICS)
        m = (struct members){metrics_keys, MK_COUNT, raw->metrics};
    else
        return 0;
    raw->rec[index].kind = J_OBJECT;
    return read_object(s, &m, NULL, NULL) ? 1 : -1;
}

struct element {
    struct jval values[EK_COUNT];
    struct raw_record raw;
};

static int element_nested(struct scan *s, int index, void *ctx)
{
    struct element *el = ctx;
    struct members m = {record_keys, RK_COUNT, el->raw.rec};

    if (index != EK_RECORD || *s->p != '{')
        return 0;
    memset(&el->raw, 0, sizeof(el->raw));
    el->values[EK_RECORD].kind = J_OBJECT;
    return read_object(s, &m, record_nested, &el->raw) ? 1 : -1;
}

/* --- events ---------------------------------------------------------------- */

/* The string v, decoded (cut at a NUL it holds, as a C string): in place
 * in the body when it is writable, else in the arena; NULL when v is not
 * a string.  *oom on ENOMEM.
 *
 * In place, the decoded text starts where the string's first byte was and
 * its terminator takes at most the closing quote's byte: decoding never
 * lengthens a string (an escape of 2, 6 or 12 bytes is 1 to 4 bytes of
 * UTF-8), strings do not overlap, and each is decoded once, after its
 * element was read to its end (nothing reads those bytes again).  A
 * string without escapes is not copied at all. */
static const char *event_string(const struct scan *s, struct tel_arena_block **arena, const struct jval *v,
                                bool *oom)
{
    size_t raw = (size_t)(v->end - v->start);
    bool full;
    char *p;
    size_t n;

    if (v->kind != J_STRING)
        return NULL;
    if (s->writable != NULL) {
        p = (char *)s->writable + (v->start - s->body);
        n = v->escaped ? decode_string(v, (unsigned char *)p, raw, &full) : raw; /* validated: never -1 */
        p[n] = '\0';
        return p;
    }
    p = arena_alloc(arena, raw + 1);
    if (p == NULL) {
        *oom = true;
        return NULL;
    }
    if (!v->escaped) {
        memcpy(p, v->start, raw);
        n = raw;
    } else {
        n = decode_string(v, (unsigned char *)p, raw, &full); /* validated: never -1 */
    }
    p[n] = '\0';
    return p;
}

/* The string v as a C string in buf (see short_string) for comparisons:
 * NULL when v is not a string, "\x7f" (which equals nothing we look for)
 * when it is too long. */
static const char *compare_string(const struct jval *v, char buf[SHORT_STRING_MAX])
{
    if (v->kind != J_STRING)
        return NULL;
    return short_string(v, buf) ? buf : "\x7f";
}

/* Milliseconds to integer microseconds; TEL_ABSENT when absent or not a
 * sane number. */
static int64_t ms_as_us(const struct jval *v)
{
    if (v->kind != J_NUMBER || !isfinite(v->number) || v->number < 0 || v->number > 1e12)
        return TEL_ABSENT;
    return (int64_t)llround(v->number * 1000.0);
}

static int64_t int_value(const struct jval *v)
{
    if (v->kind != J_NUMBER || !isfinite(v->number) || v->number < 0 || v->number > 9e15)
        return TEL_ABSENT;
    return (int64_t)llround(v->number);
}

static enum tel_status status_from(const char *s)
{
    if (s == NULL)
        return TEL_STATUS_NONE;
    if (strcmp(s, "success") == 0)
        return TEL_STATUS_SUCCESS;
    if (strcmp(s, "error") == 0)
        return TEL_STATUS_ERROR;
    if (strcmp(s, "failure") == 0)
        return TEL_STATUS_FAILURE;
    if (strcmp(s, "timeout") == 0)
        return TEL_STATUS_TIMEOUT;
    return TEL_STATUS_OTHER;
}

static enum tel_init_type init_type_from(const char *s)
{
    if (s == NULL)
        return TEL_INIT_TYPE_NONE;
    if (strcmp(s, "on-demand") == 0)
        return TEL_INIT_TYPE_ON_DEMAND;
    if (strcmp(s, "provisioned-concurrency") == 0)
        return TEL_INIT_TYPE_PROVISIONED;
    if (strcmp(s, "snap-start") == 0)
        return TEL_INIT_TYPE_SNAP_START;
    if (strcmp(s, "lambda-managed-instances") == 0)
        return TEL_INIT_TYPE_MANAGED;
    return TEL_INIT_TYPE_OTHER;
}

static enum tel_phase phase_from(const char *s)
{
    if (s == NULL)
        return TEL_PHASE_NONE;
    if (strcmp(s, "init") == 0)
        return TEL_PHASE_INIT;
    if (strcmp(s, "invoke") == 0)
        return TEL_PHASE_INVOKE;
    return TEL_PHASE_OTHER;
}

static void event_init(struct tel_event *ev)
{
    memset(ev, 0, sizeof(*ev));
    ev->instance_max_memory = TEL_ABSENT;
    ev->duration_us = TEL_ABSENT;
    ev->init_duration_us = TEL_ABSENT;
    ev->restore_duration_us = TEL_ABSENT;
    ev->billed_duration_ms = TEL_ABSENT;
    ev->memory_size_mb = TEL_ABSENT;
    ev->max_memory_used_mb = TEL_ABSENT;
    ev->produced_bytes = TEL_ABSENT;
    ev->dropped_records = TEL_ABSENT;
    ev->dropped_bytes = TEL_ABSENT;
}

static void record_to_event(struct scan *s, struct tel_arena_block **arena, const struct raw_record *raw,
                            struct tel_event *ev, bool *oom)
{
    const struct jval *r = raw->rec;
    char buf[SHORT_STRING_MAX];

    ev->request_id = event_string(s, arena, &r[RK_REQUEST_ID], oom);
    ev->status = status_from(compare_string(&r[RK_STATUS], buf));
    ev->error_type = event_string(s, arena, &r[RK_ERROR_TYPE], oom);
    ev->init_type = init_type_from(compare_string(&r[RK_INIT_TYPE], buf));
    ev->phase = phase_from(compare_string(&r[RK_PHASE], buf));
    ev->version = event_string(s, arena, &r[RK_VERSION], oom);
    if (ev->version == NULL)
        ev->version = event_string(s, arena, &r[RK_FUNCTION_VERSION], oom);
    ev->function_name = event_string(s, arena, &r[RK_FUNCTION_NAME], oom);
    ev->instance_id = event_string(s, arena, &r[RK_INSTANCE_ID], oom);
    ev->runtime_version = event_string(s, arena, &r[RK_RUNTIME_VERSION], oom);
    ev->tenant_id = event_string(s, arena, &r[RK_TENANT_ID], oom);
    ev->name = event_string(s, arena, &r[RK_NAME], oom);
    ev->state = event_string(s, arena, &r[RK_STATE], oom);
    ev->ext_events = raw->ext_events;
    ev->instance_max_memory = int_value(&r[RK_INSTANCE_MAX_MEMORY]);
    ev->dropped_records = int_value(&r[RK_DROPPED_RECORDS]);
    ev->dropped_bytes = int_value(&r[RK_DROPPED_BYTES]);
    if (ev->type == TEL_LOGS_DROPPED)
        ev->text = event_string(s, arena, &r[RK_REASON], oom);
    else if (ev->type == TEL_FUNCTION_LOG || ev->type == TEL_EXTENSION_LOG)
        ev->text = event_string(s, arena, &r[RK_MESSAGE], oom); /* JSON log format */
    if (r[RK_TRACING].kind == J_OBJECT) {
        ev->trace_value = event_string(s, arena, &raw->tracing[TK_VALUE], oom);
        ev->trace_span_id = event_string(s, arena, &raw->tracing[TK_SPAN_ID], oom);
    }
    if (r[RK_METRICS].kind == J_OBJECT) {
        ev->duration_us = ms_as_us(&raw->metrics[MK_DURATION]);
        ev->init_duration_us = ms_as_us(&raw->metrics[MK_INIT_DURATION]);
        ev->restore_duration_us = ms_as_us(&raw->metrics[MK_RESTORE_DURATION]);
        ev->billed_duration_ms = int_value(&raw->metrics[MK_BILLED]);
        ev->memory_size_mb = int_value(&raw->metrics[MK_MEMORY_SIZE]);
        ev->max_memory_used_mb = int_value(&raw->metrics[MK_MAX_MEMORY_USED]);
        ev->produced_bytes = int_value(&raw->metrics[MK_PRODUCED_BYTES]);
    }
    for (unsigned i = 0; i < raw->span_count; i++) {
        const struct jval *sp = raw->spans[i];
        struct tel_span *out = &ev->spans[i];
        const char *start = compare_string(&sp[SK_START], buf);

        out->name = event_string(s, arena, &sp[SK_NAME], oom);
        out->start_us = TEL_ABSENT;
        if (start != NULL && parse_time(start, &out->start_us, &s->times) < 0)
            out->start_us = TEL_ABSENT;
        out->duration_us = ms_as_us(&sp[SK_DURATION]);
    }
    ev->span_count = raw->span_count;
}

/* One element that is an object (s->p at '{'): appended to the batch when
 * it has time, type and record, else counted invalid.  0, -EPROTO or
 * -ENOMEM. */
static int read_element(struct scan *s, struct tel_batch *batch)
{
    static const struct members keys = {element_keys, EK_COUNT, NULL};
    struct members m = keys;
    struct element el;
    struct tel_event *ev;
    char buf[SHORT_STRING_MAX];
    const char *time;
    const char *type;
    bool oom = false;

    memset(el.values, 0, sizeof(el.values));
    m.values = el.values;
    if (!read_object(s, &m, element_nested, &el))
        return s->err < 0 ? s->err : -EPROTO;
    time = compare_string(&el.values[EK_TIME], buf);
    if (time == NULL || el.values[EK_TYPE].kind != J_STRING ||
        el.values[EK_RECORD].kind == J_ABSENT) {
        batch->invalid++;
        return 0;
    }
    if (batch->count == batch->capacity && batch->capacity == 0) {
        pthread_mutex_lock(&spare.lock);
        batch->events = spare.events;
        batch->capacity = spare.capacity;
        spare.events = NULL;
        spare.capacity = 0;
        pthread_mutex_unlock(&spare.lock);
    }
    if (batch->count == batch->capacity) {
        size_t more = batch->capacity == 0 ? 64 : batch->capacity * 2;
        struct tel_event *grown = realloc(batch->events, more * sizeof(*grown));
        if (grown == NULL)
            return -ENOMEM;
        batch->events = grown;
        batch->capacity = more;
    }
    ev = &batch->events[batch->count];
    event_init(ev);
    if (parse_time(time, &ev->time_us, &s->times) < 0) {
        batch->invalid++;
        return 0;
    }
    type = compare_string(&el.values[EK_TYPE], buf);
    ev->type = type_from_name(type);
    ev->type_name = ev->type != TEL_UNKNOWN
                        ? type_names[ev->type]
                        : event_string(s, &batch->arena, &el.values[EK_TYPE], &oom);
    if (el.values[EK_RECORD].kind == J_STRING)
        ev->text = event_string(s, &batch->arena, &el.values[EK_RECORD], &oom);
    else if (el.values[EK_RECORD].kind == J_OBJECT)
        record_to_event(s, &batch->arena, &el.raw, ev, &oom);
    if (oom)
        return -ENOMEM;
    batch->count++;
    return 0;
}

/* The one byte at p, for a log line: 'c' when printable, else 0xHH. */
static void describe_byte(char *buf, size_t size, const char *before, unsigned char c)
{
    if (c > ' ' && c < 0x7f && c != '\'' && c != '\\')
        snprintf(buf, size, "%s'%c'", before, c);
    else
        snprintf(buf, size, "%s0x%02X", before, c);
}

/* Whether a string starting at p (after its quote) has no closing quote
 * before end.  Error path only. */
static bool string_runs_off(const unsigned char *p, const unsigned char *end)
{
    while (p < end && *p != '"')
        p += *p == '\\' ? 2 : 1;
    return p >= end;
}

/* Where the scan stopped, and what it found there.  Error path only. */
static void describe_error(const struct scan *s, const unsigned char *body, struct tel_parse_error *ret)
{
    ret->offset = (size_t)(s->p - body);
    if (s->p >= s->end)
        snprintf(ret->what, sizeof(ret->what), "the body ends inside the array");
    else if (s->expected != NULL) {
        char found[16];
        describe_byte(found, sizeof(found), "", *s->p);
        snprintf(ret->what, sizeof(ret->what), "expected %s, found %s", s->expected, found);
    } else if ((*s->p == '[' || *s->p == '{') && s->depth >= TELEMETRY_MAX_DEPTH)
        snprintf(ret->what, sizeof(ret->what), "nested deeper than %d", TELEMETRY_MAX_DEPTH);
    else if (*s->p == '"' && string_runs_off(s->p + 1, s->end))
        snprintf(ret->what, sizeof(ret->what), "the body ends inside a string");
    else if (*s->p == '"')
        snprintf(ret->what, sizeof(ret->what), "a bad string (a bad escape or \\u sequence)");
    else if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))
        snprintf(ret->what, sizeof(ret->what), "a bad number");
    else
        describe_byte(ret->what, sizeof(ret->what), "unexpected ", *s->p);
}

/* Both: writable is body when its strings are decoded in place, else
 * NULL. */
static int parse_batch(const char *body, size_t len, char *writable, struct tel_batch **ret_batch,
                       struct tel_parse_error *ret_err)
{
    struct tel_batch *batch = NULL;
    struct scan s;
    int more;
    int r = 0;

    if (body == NULL || len == 0) {
        if (ret_err != NULL)
            *ret_err = (struct tel_parse_error){.offset = 0, .what = "an empty body"};
        return -EPROTO;
    }
    s.p = (const unsigned char *)body;
    s.end = s.p + len;
    s.depth = 0;
    s.err = 0;
    s.expected = NULL;
    s.writable = (unsigned char *)writable;
    s.body = s.p;
    s.times.valid = false;
    if (len > 4 && memcmp(body, "\xEF\xBB\xBF", 3) == 0)
        s.p += 3;
    skip_ws(&s);
    if (s.p >= s.end || *s.p != '[') {
        if (ret_err != NULL) {
            ret_err->offset = (size_t)(s.p - (const unsigned char *)body);
            if (s.p >= s.end)
                snprintf(ret_err->what, sizeof(ret_err->what), "only blanks, not a JSON array");
            else
                describe_byte(ret_err->what, sizeof(ret_err->what), "not a JSON array: it starts with ", *s.p);
        }
        return -EPROTO;
    }
    batch = calloc(1, sizeof(*batch));
    if (batch == NULL)
        return -ENOMEM;
    more = open_container(&s);
    if (more < 0) {
        r = -EPROTO;
        goto out;
    }
    while (more > 0) {
        struct jval skipped;

        if (*s.p == '{') {
            r = read_element(&s, batch);
            if (r < 0)
                goto out;
        } else if (scan_value(&s, &skipped)) {
            batch->invalid++;
        } else {
            r = s.err < 0 ? s.err : -EPROTO;
            goto out;
        }
        more = next_item(&s, false, NULL);
    }
    if (more < 0)
        r = -EPROTO;
    /* Anything after the array is ignored, as it always was. */

out:
    if (r < 0) {
        if (r == -EPROTO && ret_err != NULL)
            describe_error(&s, (const unsigned char *)body, ret_err);
        tel_batch_free(batch);
        return r;
    }
    *ret_batch = batch;
    return 0;
}

int tel_batch_parse(const char *body, size_t len, struct tel_batch **ret_batch)
{
    return parse_batch(body, len, NULL, ret_batch, NULL);
}

int tel_batch_parse_why(const char *body, size_t len, struct tel_batch **ret_batch, struct tel_parse_error *ret_err)
{
    return parse_batch(body, len, NULL, ret_batch, ret_err);
}

int tel_batch_parse_inplace(char *body, size_t len, struct tel_batch **ret_batch, struct tel_parse_error *ret_err)
{
    return parse_batch(body, len, body, ret_batch, ret_err);
}

void tel_batch_free(struct tel_batch *batch)
{
    if (batch == NULL)
        return;
    arena_free(batch->arena);
    if (batch->events != NULL && batch->capacity <= TEL_SPARE_MAX_EVENTS) {
        pthread_mutex_lock(&spare.lock);
        if (spare.events == NULL || spare.capacity < batch->capacity) {
            struct tel_event *old = spare.events;
            spare.events = batch->events;
            spare.capacity = batch->capacity;
            batch->events = old;
        }
        pthread_mutex_unlock(&spare.lock);
    }
    free(batch->events);
    free(batch);
}
