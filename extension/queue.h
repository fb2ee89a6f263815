/*
 * queue.h - the bounded hand-over queue between threads.
 *
 * Thread model: the listener thread pushes telemetry bodies, the lifecycle
 * (main) thread pushes Extensions API events; the single pipeline thread
 * pops.  Pushing hands ownership of `data` to the queue, popping hands it to
 * the popper.  Push never blocks: a droppable item that would take the queue
 * over its byte bound is refused (and counted), so a slow pipeline can never
 * stall the listener or the /event/next loop.  Control items (not
 * droppable) are always accepted: they are small and arrive at most once
 * per invocation.  No callback runs while the lock is held.
 */
#ifndef LAMBDA_TRACER_QUEUE_H
#define LAMBDA_TRACER_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct queue;

struct queue_stats {
    uint64_t pushed;        /* items accepted */
    uint64_t dropped;       /* droppable items refused because the queue was full */
    uint64_t dropped_bytes;
    size_t items;           /* waiting now */
    size_t bytes;           /* bytes of droppable items waiting now */
    size_t peak_bytes;
    unsigned waiting;       /* poppers blocked in a wait now */
};

/* Frees one item's data; used by queue_destroy for items never popped. */
typedef void (*queue_free_fn)(int kind, void *data);

/* A queue holding at most max_bytes of droppable items.  NULL on ENOMEM. */
struct queue *queue_new(size_t max_bytes);

/* Frees the queue and, through free_fn (may be NULL), every item left in it.
 * Only once no thread uses the queue any more.  NULL-safe. */
void queue_destroy(struct queue *q, queue_free_fn free_fn);

/* Appends an item.  Any thread.  Returns 0 (ownership of data moved to the
 * queue), -ENOBUFS (droppable and full: counted as dropped, caller still
 * owns data), -EPIPE (queue closed), -ENOMEM. */
int queue_push(struct queue *q, int kind, void *data, size_t bytes, bool droppable)
    __attribute__((warn_unused_result));

/* Wake-ups: a push wakes a popper only when one is waiting, and not while
 * the queue is held.  A producer about to push a burst (the pipeline
 * encoding a telemetry batch's segments) holds the queue and releases it
 * after, which wakes the popper once instead of once per item.  Holds nest;
 * every hold must be released.  queue_wake wakes a waiting popper if items
 * are queued, held or not (someone waits for them to be handled).  Any
 * thread. */
void queue_hold(struct queue *q);
/* true when a popper was waiting and was woken (it takes what is queued
 * without any other wake-up). */
bool queue_release(struct queue *q);
void queue_wake(struct queue *q);
/* true while held and not woken: a consumer taking opportunistically (not
 * waiting) leaves the producer's burst until it is whole. */
bool queue_held(struct queue *q);

/* Takes the oldest item, waiting until deadline_ns on CLOCK_MONOTONIC (or
 * forever when deadline_ns < 0).  A waiting pop also waits while the queue
 * is held (the producer's burst is taken whole) unless queue_wake was
 * called; at its deadline it takes what is queued, held or not.  Returns 0 with the item (caller now owns
 * *ret_data), -ETIMEDOUT, or -EPIPE once closed and empty. */
int queue_pop(struct queue *q, int64_t deadline_ns, int *ret_kind, void **ret_data,
              size_t *ret_bytes) __attribute__((warn_unused_result));

/* Refuses further pushes and wakes waiting poppers; items already queued
 * can still be popped.  Any thread; idempotent. */
void queue_close(struct queue *q);

void queue_get_stats(struct queue *q, struct queue_stats *ret);

#endif
