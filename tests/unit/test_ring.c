/* Unit tests for ring.c: order across wrap and growth, the bound, the
 * return to inline storage, out of memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "ring.h"
#include "fail_alloc.h"

struct item {
    int v;
    char pad[60]; /* an item larger than a word: copied whole */
};

static struct item mk(int v)
{
    struct item it;
    memset(&it, 0, sizeof(it));
    it.v = v;
    memset(it.pad, 'a' + v % 26, sizeof(it.pad));
    return it;
}

static void expect(struct ring *r, int v)
{
    struct item out;
    assert_true(ring_pop(r, &out));
    assert_int_equal(out.v, v);
    for (size_t i = 0; i < sizeof(out.pad); i++)
        assert_int_equal(out.pad[i], 'a' + v % 26);
}

static void test_fifo_within_inline_storage_allocates_nothing(void **state)
{
    struct item inl[4];
    struct ring r;
    struct item out;
    (void)state;
    fail_alloc_reset();
    ring_init(&r, inl, 4, sizeof(struct item), 4);
    assert_false(ring_pop(&r, &out));
    /* wrap around several times */
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < 3; i++) {
            struct item it = mk(round * 10 + i);
            assert_true(ring_push(&r, &it));
        }
        for (int i = 0; i < 3; i++)
            expect(&r, round * 10 + i);
    }
    assert_false(ring_pop(&r, &out));
    assert_int_equal(fail_alloc_count(), 0);
    ring_release(&r);
}

static void test_grows_in_order_from_a_wrapped_state_to_its_bound(void **state)
{
    struct item inl[4];
    struct ring r;
    struct item it;
    int next_out = 0, next_in = 0;
    (void)state;
    fail_alloc_reset();
    ring_init(&r, inl, 4, sizeof(struct item), 16);
    /* head in the middle of the inline storage, then full: growth must
     * keep the order of a wrapped ring */
    for (; next_in < 3; next_in++) {
        it = mk(next_in);
        assert_true(ring_push(&r, &it));
    }
    expect(&r, next_out++);
    expect(&r, next_out++);
    for (; next_in < 2 + 16; next_in++) {
        it = mk(next_in);
        assert_true(ring_push(&r, &it));
    }
    assert_int_equal(r.count, 16);
    it = mk(999);
    assert_false(ring_push(&r, &it)); /* at its bound */
    assert_int_equal(r.count, 16);
    while (next_out < next_in)
        expect(&r, next_out++);
    /* emptied: back to the inline storage, nothing left allocated */
    assert_ptr_equal(r.buf, (void *)inl);
    assert_int_equal(r.cap, 4);
    assert_int_equal(fail_alloc_live(), 0);
    /* and it grows again when needed */
    for (int i = 0; i < 10; i++) {
        it = mk(100 + i);
        assert_true(ring_push(&r, &it));
    }
    ring_release(&r);
    assert_int_equal(fail_alloc_live(), 0);
    assert_ptr_equal(r.buf, (void *)inl);
    assert_int_equal(r.count, 0);
}

static void test_out_of_memory_keeps_what_it_has(void **state)
{
    struct item inl[2];
    struct ring r;
    struct item it;
    (void)state;
    fail_alloc_reset();
    ring_init(&r, inl, 2, sizeof(struct item), 64);
    for (int i = 0; i < 2; i++) {
        it = mk(i);
        assert_true(ring_push(&r, &it));
    }
    fail_alloc_fail_at(1);
    it = mk(2);
    assert_false(ring_push(&r, &it));
    fail_alloc_fail_at(0);
    assert_int_equal(r.count, 2);
    assert_true(ring_push(&r, &it)); /* memory again: it grows */
    expect(&r, 0);
    expect(&r, 1);
    expect(&r, 2);
    assert_int_equal(fail_alloc_live(), 0);
}

static void test_a_bound_below_the_inline_size_is_the_inline_size(void **state)
{
    struct item inl[3];
    struct ring r;
    struct item it = mk(1);
    (void)state;
    ring_init(&r, inl, 3, sizeof(struct item), 1);
    for (int i = 0; i < 3; i++)
        assert_true(ring_push(&r, &it));
    assert_false(ring_push(&r, &it));
    ring_release(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_within_inline_storage_allocates_nothing),
        cmocka_unit_test(test_grows_in_order_from_a_wrapped_state_to_its_bound),
        cmocka_unit_test(test_out_of_memory_keeps_what_it_has),
        cmocka_unit_test(test_a_bound_below_the_inline_size_is_the_inline_size),
    };
    return cmocka_run_group_tests_name("ring", tests, NULL, NULL);
}
