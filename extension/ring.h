/*
 * ring.h - a FIFO of fixed-size items that lives in storage its owner
 * gives it and grows on the heap, up to a bound, only while it must.
 *
 * The pipeline's hand-off between the lifecycle thread and the loop: a few
 * items wait at a time, so the inline storage is all it normally uses (no
 * allocation in Init or per invocation); when the consumer falls behind
 * (a large batch, a starved CPU) the ring doubles instead of dropping, and
 * returns to the inline storage once emptied.
 *
 * Not locked: the owner serialises every call.
 */
#ifndef LAMBDA_TRACER_RING_H
#define LAMBDA_TRACER_RING_H

#include <stdbool.h>
#include <stddef.h>

struct ring {
    unsigned char *buf;       /* inline, or a grown copy */
    unsigned char *inline_buf;
    size_t item_size;
    size_t inline_cap, max_cap, cap;
    size_t head, count;
};

/* inline_buf holds inline_cap items of item_size; max_cap >= inline_cap
 * (a power-of-two multiple of it is reached exactly). */
void ring_init(struct ring *r, void *inline_buf, size_t inline_cap, size_t item_size, size_t max_cap);

/* Copies item in at the tail.  false when full at max_cap, or out of
 * memory to grow: the item is not kept. */
bool ring_push(struct ring *r, const void *item) __attribute__((warn_unused_result));

/* Copies the head item out and removes it.  false when empty.  The ring
 * goes back to its inline storage when this empties it. */
bool ring_pop(struct ring *r, void *out);

/* Frees what the ring grew; it is empty and inline afterwards. */
void ring_release(struct ring *r);

#endif
