/*
 * gzip.h - gzip (RFC 1952) compression of one request body, for OTLP/HTTP
 * `Content-Encoding: gzip`.  A leaf module over zlib's deflate: it never
 * logs, and zlib's memory goes through malloc/free like ours.
 */
#ifndef LAMBDA_TRACER_GZIP_H
#define LAMBDA_TRACER_GZIP_H

#include <stddef.h>

#include "buf.h"

/* zlib level 1: OTLP bodies (repeated keys, ids, names) shrink about as
 * much as at the default level 6 for a fraction of the CPU, which the
 * function's own work shares. */
#define GZIP_LEVEL 1

/* Appends the gzip member of in_len bytes at in (NULL is fine when in_len
 * is 0) to out, within out's cap.  0; -ENOBUFS when the result does not fit
 * the cap; -ENOMEM; -EINVAL for NULL out, NULL in with in_len > 0, or an
 * in_len zlib cannot take in one call (over UINT_MAX); -EPROTO if zlib
 * reports an internal error.  On failure out is left exactly as it was.
 * Allocates about 270 KB while it runs, frees it before returning.  Any
 * thread; out belongs to the caller. */
int gzip_body(const void *in, size_t in_len, struct buf *out) __attribute__((warn_unused_result));

#endif
