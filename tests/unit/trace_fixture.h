/*
 * Builders for trace model fixtures, shared by the encoder tests
 * (test_xray_encode.c, test_otlp_encode.c).  Header-only: each test program
 * includes it once, after cmocka.h.
 */
#ifndef LAMBDA_TRACER_TRACE_FIXTURE_H
#define LAMBDA_TRACER_TRACE_FIXTURE_H

#include <stdint.h>
#include <stdio.h>

#include "trace.h"

/* Copies s into the fixed-size field dst; a fixture that does not fit is a
 * bug in the test. */
static inline void fixture_set_str(char *dst, size_t size, const char *s)
{
    int n = snprintf(dst, size, "%s", s);

    assert_true(n >= 0 && (size_t)n < size);
}

#define SET(field, s) fixture_set_str((field), sizeof(field), (s))

static inline struct trace_span *add_span(struct trace_segment *s, const char *id, int parent,
                                          const char *name, int64_t start, int64_t end)
{
    struct trace_span *sp;

    assert_true(s->span_count < TRACE_MAX_SPANS);
    sp = &s->spans[s->span_count++];
    SET(sp->id, id);
    SET(sp->name, name);
    sp->parent = parent;
    sp->start_us = start;
    sp->end_us = end;
    return sp;
}

static inline struct trace_attr *add_attr(struct trace_segment *s, const char *xray_key,
                                          const char *otel_key, enum trace_attr_target target,
                                          enum trace_value_kind kind)
{
    struct trace_attr *a;

    assert_true(s->attr_count < TRACE_MAX_ATTRS);
    a = &s->attrs[s->attr_count++];
    a->xray_key = xray_key;
    a->otel_key = otel_key;
    a->target = target;
    a->kind = kind;
    return a;
}

#endif
