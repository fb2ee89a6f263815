/*
 * fail_alloc.c - see fail_alloc.h.  Not thread-aware on purpose: tests that
 * arm a failure do so on one thread; the counters are atomics so threaded
 * tests still count correctly.
 */
#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <stdlib.h>

void *fail_alloc_malloc(size_t size);
void *fail_alloc_calloc(size_t n, size_t size);
void *fail_alloc_realloc(void *p, size_t size);
void fail_alloc_free(void *p);
void fail_alloc_fail_at(unsigned long nth);
unsigned long fail_alloc_count(void);
long fail_alloc_live(void);
void fail_alloc_reset(void);
void fail_alloc_hook_cjson(void);

static atomic_ulong count;
static atomic_ulong fail_at;
static atomic_long live;

static int should_fail(void)
{
    unsigned long n = atomic_fetch_add(&count, 1) + 1;
    unsigned long f = atomic_load(&fail_at);
    return f != 0 && n == f;
}

void *fail_alloc_malloc(size_t size)
{
    void *p;

    if (should_fail())
        return NULL;
    p = malloc(size);
    if (p != NULL)
        atomic_fetch_add(&live, 1);
    return p;
}

void *fail_alloc_calloc(size_t n, size_t size)
{
    void *p;

    if (should_fail())
        return NULL;
    p = calloc(n, size);
    if (p != NULL)
        atomic_fetch_add(&live, 1);
    return p;
}

void *fail_alloc_realloc(void *p, size_t size)
{
    void *q;

    if (should_fail())
        return NULL;
    q = realloc(p, size);
    if (q != NULL && p == NULL)
        atomic_fetch_add(&live, 1);
    return q;
}

void fail_alloc_free(void *p)
{
    if (p != NULL)
        atomic_fetch_sub(&live, 1);
    free(p);
}

void fail_alloc_fail_at(unsigned long nth)
{
    atomic_store(&count, 0);
    atomic_store(&fail_at, nth);
}

unsigned long fail_alloc_count(void)
{
    return atomic_load(&count);
}

long fail_alloc_live(void)
{
    return atomic_load(&live);
}

void fail_alloc_reset(void)
{
    atomic_store(&count, 0);
    atomic_store(&fail_at, 0);
    atomic_store(&live, 0);
}

void fail_alloc_hook_cjson(void)
{
    cJSON_Hooks hooks = {fail_alloc_malloc, fail_alloc_free};
    cJSON_InitHooks(&hooks);
}
