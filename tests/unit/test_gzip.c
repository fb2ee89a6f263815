/* Unit tests for gzip.c: round trips checked by zlib's own inflate (which
 * also checks the gzip header, CRC-32 and length), the cap, bad arguments,
 * and every allocation failure. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <zlib.h>

#include "buf.h"
#include "fail_alloc.h"
#include "gzip.h"

static int setup(void **state)
{
    (void)state;
    fail_alloc_reset();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(fail_alloc_live(), 0);
    fail_alloc_reset();
    return 0;
}

/* Inflates a whole gzip member (and nothing after it) into a new buffer of
 * *ret_len bytes; fails the test when zlib refuses it. */
static unsigned char *gunzip(const void *gz, size_t gz_len, size_t max_len, size_t *ret_len)
{
    unsigned char *outp = malloc(max_len + 1);
    z_stream zs;

    assert_non_null(outp);
    memset(&zs, 0, sizeof(zs));
    assert_int_equal(inflateInit2(&zs, 15 + 16), Z_OK); /* gzip only, not zlib or raw */
    zs.next_in = (Bytef *)(uintptr_t)gz;
    zs.avail_in = (uInt)gz_len;
    zs.next_out = outp;
    zs.avail_out = (uInt)max_len + 1;
    assert_int_equal(inflate(&zs, Z_FINISH), Z_STREAM_END);
    assert_int_equal(zs.avail_in, 0); /* one member, no trailing bytes */
    *ret_len = zs.total_out;
    inflateEnd(&zs);
    return outp;
}

static void round_trip(const unsigned char *in, size_t n)
{
    struct buf b;
    size_t got_len;
    unsigned char *got;

    buf_init(&b, 4 * n + 1024);
    assert_int_equal(gzip_body(in, n, &b), 0);
    assert_true(buf_len(&b) >= 18); /* 10-byte header, 8-byte trailer */
    assert_int_equal((unsigned char)buf_data(&b)[0], 0x1f);
    assert_int_equal((unsigned char)buf_data(&b)[1], 0x8b);
    got = gunzip(buf_data(&b), buf_len(&b), n, &got_len);
    assert_int_equal(got_len, n);
    if (n > 0)
        assert_memory_equal(got, in, n);
    free(got);
    buf_free(&b);
}

/* Repetitive text (like OTLP), random bytes (incompressible, larger than
 * the input), empty input, and sizes around zlib's and our chunk sizes. */
static void test_round_trips(void **state)
{
    static const size_t sizes[] = {0, 1, 4095, 4096, 4097, 65536, 300000};
    uint32_t x = 2463534242u;

    (void)state;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t n = sizes[i];
        unsigned char *text = malloc(n + 1), *noise = malloc(n + 1);

        assert_non_null(text);
        assert_non_null(noise);
        for (size_t k = 0; k < n; k++) {
            text[k] = (unsigned char)"{\"key\":\"service.name\",\"value\":1}"[k % 33];
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            noise[k] = (unsigned char)x;
        }
        round_trip(text, n);
        round_trip(noise, n);
        free(text);
        free(noise);
    }
    round_trip(NULL, 0);
}

/* Repetitive bodies shrink: the point of compressing them. */
static void test_repetitive_body_shrinks(void **state)
{
    char body[20000];
    struct buf b;

    (void)state;
    for (size_t i = 0; i < sizeof(body); i++)
        body[i] = "resourceSpans scopeSpans faas.name cloud.region "[i % 48];
    buf_init(&b, sizeof(body));
    assert_int_equal(gzip_body(body, sizeof(body), &b), 0);
    assert_true(buf_len(&b) < sizeof(body) / 10);
    buf_free(&b);
}

/* The member is appended after what the buffer holds, which stays. */
static void test_appends(void **state)
{
    struct buf b;
    size_t got_len;
    unsigned char *got;

    (void)state;
    buf_init(&b, 4096);
    assert_int_equal(buf_append_str(&b, "prefix"), 0);
    assert_int_equal(gzip_body("hello", 5, &b), 0);
    assert_memory_equal(buf_data(&b), "prefix", 6);
    got = gunzip(buf_data(&b) + 6, buf_len(&b) - 6, 5, &got_len);
    assert_int_equal(got_len, 5);
    assert_memory_equal(got, "hello", 5);
    free(got);
    buf_free(&b);
}

/* Over the cap: -ENOBUFS and the buffer exactly as it was; from a cap of 0
 * to one byte short of the result. */
static void test_cap(void **state)
{
    unsigned char noise[10000];
    struct buf b;
    size_t need;
    uint32_t x = 88172645u;

    (void)state;
    for (size_t i = 0; i < sizeof(noise); i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        noise[i] = (unsigned char)x;
    }
    buf_init(&b, 1 << 20);
    assert_int_equal(gzip_body(noise, sizeof(noise), &b), 0);
    need = buf_len(&b);
    buf_free(&b);
    assert_true(need > sizeof(noise)); /* stored blocks plus framing */
    const size_t caps[] = {0, 3, 10, 4096, 8192, need - 1};
    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
        buf_init(&b, caps[i] + 3);
        assert_int_equal(buf_append_str(&b, "abc"), 0);
        assert_int_equal(gzip_body(noise, sizeof(noise), &b), -ENOBUFS);
        assert_int_equal(buf_len(&b), 3);
        assert_string_equal(buf_data(&b), "abc");
        buf_free(&b);
    }
    buf_init(&b, need);
    assert_int_equal(gzip_body(noise, sizeof(noise), &b), 0);
    assert_int_equal(buf_len(&b), need);
    buf_free(&b);
}

static void test_bad_arguments(void **state)
{
    struct buf b;

    (void)state;
    buf_init(&b, 1024);
    assert_int_equal(buf_append_str(&b, "x"), 0);
    assert_int_equal(gzip_body(NULL, 1, &b), -EINVAL);
    assert_int_equal(gzip_body("x", 1, NULL), -EINVAL);
    assert_int_equal(gzip_body("x", (size_t)UINT32_MAX + 1, &b), -EINVAL);
    assert_int_equal(buf_len(&b), 1);
    assert_int_equal(fail_alloc_count(), 1); /* nothing but the buffer allocated */
    buf_free(&b);
}

/* Fail every allocation in turn (zlib's state and window, the buffer's
 * growth): -ENOMEM, nothing leaked, the buffer as it was; then it works. */
static void test_every_allocation_failure(void **state)
{
    static char body[50000];
    unsigned long total;
    struct buf b;

    (void)state;
    for (size_t i = 0; i < sizeof(body); i++)
        body[i] = (char)('a' + (i * 7919) % 26);
    fail_alloc_reset();
    buf_init(&b, 1 << 20);
    assert_int_equal(gzip_body(body, sizeof(body), &b), 0);
    total = fail_alloc_count();
    buf_free(&b);
    assert_true(total >= 5); /* deflate's state, window, prev, head, pending; the buffer */
    for (unsigned long nth = 1; nth <= total; nth++) {
        fail_alloc_reset();
        buf_init(&b, 1 << 20);
        fail_alloc_fail_at(nth);
        assert_int_equal(gzip_body(body, sizeof(body), &b), -ENOMEM);
        assert_int_equal(buf_len(&b), 0);
        assert_int_equal(fail_alloc_live(), 0);
        fail_alloc_fail_at(0);
        buf_free(&b);
    }
    fail_alloc_reset();
    buf_init(&b, 1 << 20);
    assert_int_equal(gzip_body(body, sizeof(body), &b), 0);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trips, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repetitive_body_shrinks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_appends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_allocation_failure, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
