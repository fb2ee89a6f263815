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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attrs_past_the_cap_are_counted),
        cmocka_unit_test(test_cleared_segment_encodes_as_a_zeroed_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
