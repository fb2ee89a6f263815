/*
 * ids.h - trace and span identifiers from fresh entropy.
 *
 * Every id is drawn from the kernel (getrandom) at the moment it is made:
 * no seeded generator whose state a SnapStart snapshot would clone into
 * every restored environment (reference trap 14).  Any thread.
 */
#ifndef LAMBDA_TRACER_IDS_H
#define LAMBDA_TRACER_IDS_H

#include <stdint.h>

#include "xray_header.h"

/* "1-<8 hex epoch seconds>-<24 random hex>", NUL-terminated.  0 or a
 * negative errno when no entropy could be had. */
int ids_new_trace_id(int64_t epoch_s, char ret[XRAY_TRACE_ID_LEN + 1])
    __attribute__((warn_unused_result));

/* 16 random hex digits, never all zero.  0 or a negative errno. */
int ids_new_span_id(char ret[XRAY_SPAN_ID_LEN + 1]) __attribute__((warn_unused_result));

/* OTLP's 32-hex trace id from an X-Ray one: the 8 + 24 hex digits. */
void ids_xray_to_otel_trace_id(const char xray[XRAY_TRACE_ID_LEN + 1], char ret[33]);

/* The value of one hex digit (either case), -1 when c is none.  Pure, any
 * thread (the one copy: sampling's trace id draw and procsnap's /proc
 * fields use it). */
int ids_hex_value(char c);

#endif
