/*
 * fail_alloc.h - allocation seam for unit tests.
 *
 * Force-included (-include) when the extension's modules are compiled for
 * the unit tests: malloc/calloc/realloc/free then go through counters that
 * can fail the Nth allocation, so each constructor and parser is tested on
 * every out-of-memory path, and leaks show as a non-zero balance.  The
 * system headers are included first so the macros only touch our code.
 */
#ifndef LAMBDA_TRACER_FAIL_ALLOC_H
#define LAMBDA_TRACER_FAIL_ALLOC_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

void *fail_alloc_malloc(size_t size);
void *fail_alloc_calloc(size_t n, size_t size);
void *fail_alloc_realloc(void *p, size_t size);
void fail_alloc_free(void *p);

/* Fail the nth allocation from now on (1 = the next one); 0 disarms. */
void fail_alloc_fail_at(unsigned long nth);
/* Allocations made since the last reset. */
unsigned long fail_alloc_count(void);
/* Live allocations (made and not freed) since the last reset. */
long fail_alloc_live(void);
void fail_alloc_reset(void);
/* Route cJSON's allocations through the same seam. */
void fail_alloc_hook_cjson(void);

#define malloc(n) fail_alloc_malloc(n)
#define calloc(n, s) fail_alloc_calloc(n, s)
#define realloc(p, n) fail_alloc_realloc(p, n)
#define free(p) fail_alloc_free(p)

#endif
