/*
 * test_trace.c - the trace model's helpers (trace.c): attributes past
 * TRACE_MAX_ATTRS are counted, and a cleared segment that held anything
 * encodes exactly as a zeroed one built the same way.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "otlp_encode.h"
#include "trace.h"
#include "xray_encode.h"

static void test_attrs_past_the_cap_are_counted(void **state)
{
    static struct trace_segment seg;
    (void)state;

    trace_segment_clear(&seg);
    for (int i = 0; i < TRACE_MAX_ATTRS; i++)
        trace_attr_int(&seg, "k", "k", TRACE_ATTR_ANNOTATION, i);
    assert_int_equal(seg.attr_count, TRACE_MAX_ATTRS);
    assert_int_equal(seg.attrs_dropped, 0);
    /* every kind is counted, and what was there stays as it was */
    trace_attr_str(&seg, "s", "s", TRACE_ATTR_METADATA, "lost");
    trace_attr_int(&seg, "i", "i", TRACE_ATTR_METADATA, 7);
    trace_attr_double(&seg, "d", "d", TRACE_ATTR_METADATA, 1.5);
    trace_attr_bool(&seg, "b", "b", TRACE_ATTR_METADATA, true);
    assert_int_equal(seg.attr_count, TRACE_MAX_ATTRS);
    assert_int_equal(seg.attrs_dropped, 4);
    for (int i = 0; i < TRACE_MAX_ATTRS; i++) {
        assert_int_equal(seg.attrs[i].i, i);
        assert_int_equal(seg.attrs[i].kind, TRACE_VALUE_INT);
    }
    /* a cleared segment starts counting again */
    trace_segment_clear(&seg);
    assert_int_equal(seg.attr_count, 0);
    assert_int_equal(seg.attrs_dropped, 0);
    trace_attr_bool(&seg, "b", "b", TRACE_ATTR_ANNOTATION, true);
    assert_int_equal(seg.attr_count, 1);
    assert_int_equal(seg.attrs_dropped, 0);
}

/* The same segment, built into a zeroed one and into one full of junk
 * that was cleared. */
static void fill(struct trace_segment *seg, bool with_cause)
{
    trace_segment_clear(seg);
    trace_copy_str(seg->trace_id, sizeof(seg->trace_id), "1-5759e988-bd862e3fe1be46a994272793");
    trace_copy_str(seg->id, sizeof(seg->id), "53995c3f42cd8ad8");
    trace_copy_str(seg->name, sizeof(seg->name), "fn");
    trace_copy_str(seg->request_id, sizeof(seg->request_id), "req-1");
    seg->sampled = true;
    seg->start_us = 1480615200010000;
    seg->end_us = 1480615200090000;
    if (with_cause) {
        seg->fault = true;
        trace_copy_str(seg->cause_id, sizeof(seg->cause_id), "0123456789abcdef");
        trace_copy_str(seg->cause_type, sizeof(seg->cause_type), "Runtime.ExitError");
        trace_copy_str(seg->cause_message, sizeof(seg->cause_message), "exited");
    }
    trace_attr_str(seg, "status", "aws.lambda.status", TRACE_ATTR_ANNOTATION, "success");
    trace_attr_int(seg, "n", "n", TRACE_ATTR_METADATA, 42);
    trace_attr_double(seg, "d", "d", TRACE_ATTR_METADATA, 0.25);
    trace_attr_bool(seg, "b", "b", TRACE_ATTR_ANNOTATION, false);
}

static void test_cleared_segment_encodes_as_a_zeroed_one(void **state)
{
    static struct trace_segment zeroed, junk;
    struct trace_resource res;
    struct buf a, b;
    (void)state;

    memset(&res, 0, sizeof(res));
    trace_copy_str(res.service_name, sizeof(res.service_name), "fn");
    for (int cause = 0; cause < 2; cause++) {
        memset(&zeroed, 0, sizeof(zeroed));
        memset(&junk, 0xA5, sizeof(junk));
        fill(&zeroed, cause);
        fill(&junk, cause);
        buf_init(&a, 1 << 20);
        buf_init(&b, 1 << 20);
        assert_int_equal(xray_encode_segment(&a, &zeroed, NULL), 0);
        assert_int_equal(xray_encode_segment(&b, &junk, NULL), 0);
        assert_int_equal(buf_len(&a), buf_len(&b));
        assert_memory_equal(buf_data(&a), buf_data(&b), buf_len(&a));
        buf_reset(&a);
        buf_reset(&b);
        assert_int_equal(otlp_encode_protobuf(&a, &res, &zeroed, 1, TRACE_NO_END, NULL), 0);
        assert_int_equal(otlp_encode_protobuf(&b, &res, &junk, 1, TRACE_NO_END, NULL), 0);
        assert_int_equal(buf_len(&a), buf_len(&b));
        assert_memory_equal(buf_data(&a), buf_data(&b), buf_len(&a));
        buf_reset(&a);
        buf_reset(&b);
        assert_int_equal(otlp_encode_json(&a, &res, &zeroed, 1, TRACE_NO_END, NULL), 0);
        assert_int_equal(otlp_encode_json(&b, &res, &junk, 1, TRACE_NO_END, NULL), 0);
        assert_int_equal(buf_len(&a), buf_len(&b));
        assert_memory_equal(buf_data(&a), buf_data(&b), buf_len(&a));
        buf_free(&a);
        buf_free(&b);
    }
}

static struct trace_span *put(struct trace_segment *seg, int parent, int64_t start, int64_t end)
{
    struct trace_span *s = &seg->spans[seg->span_count++];
    s->parent = parent;
    s->start_us = start;
    s->end_us = end;
    return s;
}

/* Millisecond `time` plus microsecond duration: children sticking out of
 * their parent are clamped to it, from either side, at every depth. */
static void test_contain_clamps_children_to_their_parent(void **state)
{
    static struct trace_segment seg;
    (void)state;

    trace_segment_clear(&seg);
    seg.start_us = 1000;
    seg.end_us = 9000;
    struct trace_span *inside = put(&seg, -1, 2000, 3000);
    struct trace_span *late = put(&seg, -1, 8500, 9900);    /* Response 0.9 ms past */
    struct trace_span *early = put(&seg, -1, 200, 4000);    /* starts before */
    struct trace_span *child = put(&seg, 1, 8000, 10000);   /* under `late`, both sides out */
    struct trace_span *after = put(&seg, -1, 9500, 9800);   /* wholly after: a point at the end */
    struct trace_span *open = put(&seg, -1, 5000, TRACE_NO_END);
    struct trace_span *grand = put(&seg, 3, 7000, 12000);    /* under `child` */
    trace_segment_contain(&seg);
    assert_true(inside->start_us == 2000 && inside->end_us == 3000);
    assert_true(late->start_us == 8500 && late->end_us == 9000);
    assert_true(early->start_us == 1000 && early->end_us == 4000);
    assert_true(child->start_us == 8500 && child->end_us == 9000);
    assert_true(after->start_us == 9000 && after->end_us == 9000);
    /* an open span in a closed segment stays open (in progress) */
    assert_true(open->start_us == 5000 && open->end_us == TRACE_NO_END);
    assert_true(grand->start_us == 8500 && grand->end_us == 9000);
}

/* An in-progress segment bounds only the start; a bad parent index (not
 * earlier in the array) is made top-level rather than read out of order;
 * an end before the start becomes a point. */
static void test_contain_open_segment_and_bad_input(void **state)
{
    static struct trace_segment seg;
    (void)state;

    trace_segment_clear(&seg);
    seg.start_us = 1000;
    seg.end_us = TRACE_NO_END;
    struct trace_span *a = put(&seg, -1, 500, 50000);
    struct trace_span *self = put(&seg, 1, 2000, 3000);
    struct trace_span *fwd = put(&seg, 7, 900, 800);
    struct trace_span *neg = put(&seg, -5, 4000, 4500);
    trace_segment_contain(&seg);
    assert_true(a->start_us == 1000 && a->end_us == 50000);
    assert_int_equal(self->parent, -1);
    assert_true(self->start_us == 2000 && self->end_us == 3000);
    assert_int_equal(fwd->parent, -1);
    assert_true(fwd->start_us == 1000 && fwd->end_us == 1000);
    assert_int_equal(neg->parent, -1);
    assert_true(neg->start_us == 4000 && neg->end_us == 4500);
    /* a closed segment whose end is before its start: a point */
    trace_segment_clear(&seg);
    seg.start_us = 5000;
    seg.end_us = 4000;
    put(&seg, -1, 4500, 6000);
    trace_segment_contain(&seg);
    assert_true(seg.end_us == 5000);
    assert_true(seg.spans[0].start_us == 5000 && seg.spans[0].end_us == 5000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attrs_past_the_cap_are_counted),
        cmocka_unit_test(test_contain_clamps_children_to_their_parent),
        cmocka_unit_test(test_contain_open_segment_and_bad_input),
        cmocka_unit_test(test_cleared_segment_encodes_as_a_zeroed_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
