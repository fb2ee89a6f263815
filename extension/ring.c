/* ring.c - see ring.h. */
#include "ring.h"

#include <stdlib.h>
#include <string.h>

void ring_init(struct ring *r, void *inline_buf, size_t inline_cap, size_t item_size, size_t max_cap)
{
    r->buf = r->inline_buf = inline_buf;
    r->item_size = item_size;
    r->cap = r->inline_cap = inline_cap;
    r->max_cap = max_cap < inline_cap ? inline_cap : max_cap;
    r->head = r->count = 0;
}

static unsigned char *at(const struct ring *r, size_t i)
{
    return r->buf + ((r->head + i) % r->cap) * r->item_size;
}

/* The items, in order, into storage twice as large. */
static bool grow(struct ring *r)
{
    size_t cap = r->cap * 2;
    unsigned char *b;

    if (r->cap == 0 || cap > r->max_cap || (b = malloc(cap * r->item_size)) == NULL)
        return false;
    for (size_t i = 0; i < r->count; i++)
        memcpy(b + i * r->item_size, at(r, i), r->item_size);
    if (r->buf != r->inline_buf)
        free(r->buf);
    r->buf = b;
    r->cap = cap;
    r->head = 0;
    return true;
}

bool ring_push(struct ring *r, const void *item)
{
    if (r->count == r->cap && !grow(r))
        return false;
    memcpy(at(r, r->count), item, r->item_size);
    r->count++;
    return true;
}

bool ring_pop(struct ring *r, void *out)
{
    if (r->count == 0)
        return false;
    memcpy(out, at(r, 0), r->item_size);
    r->head = (r->head + 1) % r->cap;
    if (--r->count == 0)
        ring_release(r);
    return true;
}

void ring_release(struct ring *r)
{
    if (r->buf != r->inline_buf)
        free(r->buf);
    r->buf = r->inline_buf;
    r->cap = r->inline_cap;
    r->head = r->count = 0;
}
