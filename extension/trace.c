/*
 * trace.c - see trace.h: filling a segment's attributes, shared by the
 * tracer and the forensics that add to its segments.
 */
#include "trace.h"

#include <string.h>

void trace_copy_str(char *dst, size_t size, const char *src)
{
    size_t n;

    if (size == 0)
        return;
    n = src != NULL ? strnlen(src, size - 1) : 0;
    if (n > 0)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

void trace_segment_clear(struct trace_segment *seg)
{
    seg->kind = TRACE_SEGMENT_INVOCATION;
    seg->trace_id[0] = '\0';
    seg->id[0] = '\0';
    seg->parent_id[0] = '\0';
    seg->sampled = false;
    seg->name[0] = '\0';
    seg->origin[0] = '\0';
    seg->request_id[0] = '\0';
    seg->function_arn[0] = '\0';
    seg->function_version[0] = '\0';
    seg->account_id[0] = '\0';
    seg->start_us = 0;
    seg->end_us = 0;
    seg->error = false;
    seg->fault = false;
    seg->throttle = false;
    seg->cause_id[0] = '\0';
    seg->cause_type[0] = '\0';
    seg->cause_message[0] = '\0';
    seg->attr_count = 0;
    seg->attrs_dropped = 0;
    seg->span_count = 0;
    seg->snapshot_us = 0;
    seg->snapshot_json[0] = '\0';
}

static void contain(int64_t lo, int64_t hi, int64_t *start, int64_t *end)
{
    if (*start < lo)
        *start = lo;
    if (hi != TRACE_NO_END && *start > hi)
        *start = hi;
    if (*end == TRACE_NO_END)
        return;
    if (hi != TRACE_NO_END && *end > hi)
        *end = hi;
    if (*end < *start)
        *end = *start;
}

void trace_segment_contain(struct trace_segment *seg)
{
    if (seg->end_us != TRACE_NO_END && seg->end_us < seg->start_us)
        seg->end_us = seg->start_us;
    for (size_t i = 0; i < seg->span_count && i < TRACE_MAX_SPANS; i++) {
        struct trace_span *s = &seg->spans[i];
        int64_t lo = seg->start_us;
        int64_t hi = seg->end_us;

        if (s->parent >= (int)i || s->parent < -1)
            s->parent = -1;
        if (s->parent >= 0) {
            lo = seg->spans[s->parent].start_us;
            hi = seg->spans[s->parent].end_us;
        }
        contain(lo, hi, &s->start_us, &s->end_us);
    }
}

/* The next free attribute, cleared, or NULL when the segment has no room
 * left (the attribute is then left out and counted). */
static struct trace_attr *add(struct trace_segment *seg, const char *xray_key, const char *otel_key,
                              enum trace_attr_target target, enum trace_value_kind kind)
{
    struct trace_attr *a;

    if (seg->attr_count >= TRACE_MAX_ATTRS) {
        seg->attrs_dropped++;
        return NULL;
    }
    a = &seg->attrs[seg->attr_count++];
    a->str[0] = '\0';
    a->i = 0;
    a->d = 0;
    a->b = false;
    a->on_span = 0;
    a->xray_key = xray_key;
    a->otel_key = otel_key;
    a->target = target;
    a->kind = kind;
    return a;
}

void trace_attr_str(struct trace_segment *seg, const char *xk, const char *ok,
                    enum trace_attr_target target, const char *value)
{
    struct trace_attr *a = add(seg, xk, ok, target, TRACE_VALUE_STRING);
    if (a != NULL)
        trace_copy_str(a->str, sizeof(a->str), value);
}

void trace_attr_int(struct trace_segment *seg, const char *xk, const char *ok,
                    enum trace_attr_target target, int64_t value)
{
    struct trace_attr *a = add(seg, xk, ok, target, TRACE_VALUE_INT);
    if (a != NULL)
        a->i = value;
}

void trace_attr_double(struct trace_segment *seg, const char *xk, const char *ok,
                       enum trace_attr_target target, double value)
{
    struct trace_attr *a = add(seg, xk, ok, target, TRACE_VALUE_DOUBLE);
    if (a != NULL)
        a->d = value;
}

void trace_attr_bool(struct trace_segment *seg, const char *xk, const char *ok,
                     enum trace_attr_target target, bool value)
{
    struct trace_attr *a = add(seg, xk, ok, target, TRACE_VALUE_BOOL);
    if (a != NULL)
        a->b = value;
}

/* Moves the attribute just added (if it was: attr_count grew) to span. */
static void own(struct trace_segment *seg, size_t before, int span)
{
    if (seg->attr_count > before)
        seg->attrs[seg->attr_count - 1].on_span = span < 0 ? 0 : span + 1;
}

void trace_span_attr_str(struct trace_segment *seg, int span, const char *xk, const char *ok,
                         enum trace_attr_target target, const char *value)
{
    size_t before = seg->attr_count;
    trace_attr_str(seg, xk, ok, target, value);
    own(seg, before, span);
}

void trace_span_attr_int(struct trace_segment *seg, int span, const char *xk, const char *ok,
                         enum trace_attr_target target, int64_t value)
{
    size_t before = seg->attr_count;
    trace_attr_int(seg, xk, ok, target, value);
    own(seg, before, span);
}

void trace_span_attr_bool(struct trace_segment *seg, int span, const char *xk, const char *ok,
                          enum trace_attr_target target, bool value)
{
    size_t before = seg->attr_count;
    trace_attr_bool(seg, xk, ok, target, value);
    own(seg, before, span);
}
