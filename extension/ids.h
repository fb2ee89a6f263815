/*
 * ids.h - trace and span identifiers from fresh entropy.
 *
 * Every id's bytes come from the kernel (getrandom), through a small
 * per-thread pool: no seeded generator.  A SnapStart snapshot clones the
 * pool's unused bytes into every restored environment (reference trap 14),
 * so a detected restore discards every pool (ids_restore_epoch_bump).  Any
 * thread.
 */
#ifndef LAMBDA_TRACER_IDS_H
#define LAMBDA_TRACER_IDS_H

#include <stddef.h>
#include <stdint.h>

#include "xray_header.h"

/* "1-<8 hex epoch seconds>-<24 random hex>", NUL-terminated.  0 or a
 * negative errno when no entropy could be had. */
int ids_new_trace_id(int64_t epoch_s, char ret[XRAY_TRACE_ID_LEN + 1])
    __attribute__((warn_unused_result));

/* 16 random hex digits, never all zero.  0 or a negative errno. */
int ids_new_span_id(char ret[XRAY_SPAN_ID_LEN + 1]) __attribute__((warn_unused_result));

/* Marks a SnapStart restore (or anything else that cloned this process's
 * memory): every thread's pool of random bytes, which the snapshot copied
 * into every restored environment, is discarded at that thread's next
 * draw.  Call it as soon as a restore is detected, before anything about
 * the restore reaches another thread.  Any thread; async-signal-safe. */
void ids_restore_epoch_bump(void);

/* How many times any thread's pool was refilled from the kernel (a
 * debugging figure for tests).  Any thread. */
unsigned long ids_refills(void);

/* For tests: copies up to size of the bytes the calling thread's next
 * draws would hand out (were no restore to intervene) into out; returns
 * how many.  The calling thread only. */
size_t ids_pool_peek(uint8_t *out, size_t size);

/* OTLP's 32-hex trace id from an X-Ray one: the 8 + 24 hex digits. */
void ids_xray_to_otel_trace_id(const char xray[XRAY_TRACE_ID_LEN + 1], char ret[33]);

/* The value of one hex digit (either case), -1 when c is none.  Pure, any
 * thread (the one copy: sampling's trace id draw and procsnap's /proc
 * fields use it). */
int ids_hex_value(char c);

#endif
