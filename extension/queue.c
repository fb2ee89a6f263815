/*
 * queue.c - see queue.h.
 *
 * A singly linked FIFO under one mutex.  Nodes are allocated before the lock
 * is taken so the critical sections are a few pointer moves.
 */
#include "queue.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct queue_node {
    struct queue_node *next;
    int kind;
    bool droppable;
    void *data;
    size_t bytes;
};

struct queue {
    pthread_mutex_t lock;
    pthread_cond_t nonempty;
    struct queue_node *head;
    struct queue_node *tail;
    size_t max_bytes;
    bool closed;
    unsigned waiters; /* poppers blocked in a wait */
    unsigned holds;   /* queue_hold calls not yet released */
    bool held_push;   /* something was pushed while held */
    bool woken;       /* queue_wake: take what is queued, held or not */
    struct queue_stats stats;
};

struct queue *queue_new(size_t max_bytes)
{
    struct queue *q = calloc(1, sizeof(*q));
    pthread_condattr_t attr;

    if (q == NULL)
        return NULL;
    if (pthread_mutex_init(&q->lock, NULL) != 0)
        goto fail_mutex;
    if (pthread_condattr_init(&attr) != 0)
        goto fail_cond;
    /* Timed waits must not jump with the wall clock. */
    if (pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&q->nonempty, &attr) != 0) {
        pthread_condattr_destroy(&attr);
        goto fail_cond;
    }
    pthread_condattr_destroy(&attr);
    q->max_bytes = max_bytes;
    return q;

fail_cond:
    pthread_mutex_destroy(&q->lock);
fail_mutex:
    free(q);
    return NULL;
}

void queue_destroy(struct queue *q, queue_free_fn free_fn)
{
    struct queue_node *node;

    if (q == NULL)
        return;
    node = q->head;
    while (node != NULL) {
        struct queue_node *next = node->next;
        if (free_fn != NULL)
            free_fn(node->kind, node->data);
        free(node);
        node = next;
    }
    pthread_cond_destroy(&q->nonempty);
    pthread_mutex_destroy(&q->lock);
    free(q);
}

int queue_push(struct queue *q, int kind, void *data, size_t bytes, bool droppable)
{
    struct queue_node *node = malloc(sizeof(*node));
    int r = 0;

    if (node == NULL) {
        /* Count it like a full queue: the item is lost either way. */
        pthread_mutex_lock(&q->lock);
        if (droppable) {
            q->stats.dropped++;
            q->stats.dropped_bytes += bytes;
        }
        pthread_mutex_unlock(&q->lock);
        return -ENOMEM;
    }
    node->next = NULL;
    node->kind = kind;
    node->droppable = droppable;
    node->data = data;
    node->bytes = bytes;

    pthread_mutex_lock(&q->lock);
    if (q->closed) {
        r = -EPIPE;
    } else if (droppable && (bytes > q->max_bytes || q->stats.bytes > q->max_bytes - bytes)) {
        q->stats.dropped++;
        q->stats.dropped_bytes += bytes;
        r = -ENOBUFS;
    } else {
        if (q->tail != NULL)
            q->tail->next = node;
        else
            q->head = node;
        q->tail = node;
        q->stats.pushed++;
        q->stats.items++;
        if (droppable) {
            q->stats.bytes += bytes;
            if (q->stats.bytes > q->stats.peak_bytes)
                q->stats.peak_bytes = q->stats.bytes;
        }
        /* A popper that is not waiting needs no futex wake-up. */
        if (q->holds > 0)
            q->held_push = true;
        else if (q->waiters > 0)
            pthread_cond_signal(&q->nonempty);
    }
    pthread_mutex_unlock(&q->lock);
    if (r < 0)
        free(node);
    return r;
}

void queue_hold(struct queue *q)
{
    pthread_mutex_lock(&q->lock);
    q->holds++;
    pthread_mutex_unlock(&q->lock);
}

bool queue_release(struct queue *q)
{
    bool wake = false;

    pthread_mutex_lock(&q->lock);
    if (q->holds > 0)
        q->holds--;
    if (q->holds == 0 && (q->held_push || q->head != NULL)) {
        q->held_push = false;
        wake = q->waiters > 0;
    }
    pthread_mutex_unlock(&q->lock);
    /* Signalled after the unlock: the popper it wakes then takes the lock
     * without waiting for this thread to let go of it (no second futex
     * round).  A popper counted in waiters is in pthread_cond_wait, or
     * back from it and about to look at the queue again under the lock:
     * either way it sees what was pushed. */
    if (wake)
        pthread_cond_signal(&q->nonempty);
    return wake;
}

void queue_wake(struct queue *q)
{
    pthread_mutex_lock(&q->lock);
    if (q->head != NULL) {
        q->woken = true;
        if (q->waiters > 0)
            pthread_cond_signal(&q->nonempty);
    }
    pthread_mutex_unlock(&q->lock);
}

bool queue_held(struct queue *q)
{
    pthread_mutex_lock(&q->lock);
    bool held = q->holds > 0 && !q->woken;
    pthread_mutex_unlock(&q->lock);
    return held;
}

int queue_pop(struct queue *q, int64_t deadline_ns, int *ret_kind, void **ret_data, size_t *ret_bytes)
{
    struct queue_node *node = NULL;
    int r = 0;

    pthread_mutex_lock(&q->lock);
    /* A waiting pop also waits out a hold: the producer is in the middle of a
     * burst, which it wants taken whole (a consumer that is not waiting takes
     * what is there). */
    while ((q->head == NULL || (q->holds > 0 && !q->woken && deadline_ns != 0)) && !q->closed) {
        int w;
        if (deadline_ns == 0) {
            r = -ETIMEDOUT;
            break;
        }
        q->waiters++;
        if (deadline_ns < 0) {
            pthread_cond_wait(&q->nonempty, &q->lock);
            q->waiters--;
            continue;
        }
        struct timespec ts = {
            .tv_sec = (time_t)(deadline_ns / 1000000000),
            .tv_nsec = (long)(deadline_ns % 1000000000),
        };
        w = pthread_cond_timedwait(&q->nonempty, &q->lock, &ts);
        q->waiters--;
        if (w == ETIMEDOUT) {
            if (q->head == NULL)
                r = -ETIMEDOUT;
            break; /* at the deadline what is queued is taken, held or not */
        }
    }
    if (r == 0) {
        node = q->head;
        if (node == NULL) {
            r = -EPIPE;
        } else {
            q->head = node->next;
            if (q->head == NULL) {
                q->tail = NULL;
                q->woken = false;
            }
            q->stats.items--;
            if (node->droppable)
                q->stats.bytes -= node->bytes;
        }
    }
    pthread_mutex_unlock(&q->lock);

    if (node == NULL)
        return r;
    *ret_kind = node->kind;
    *ret_data = node->data;
    if (ret_bytes != NULL)
        *ret_bytes = node->bytes;
    free(node);
    return 0;
}

void queue_close(struct queue *q)
{
    pthread_mutex_lock(&q->lock);
    q->closed = true;
    pthread_cond_broadcast(&q->nonempty);
    pthread_mutex_unlock(&q->lock);
}

void queue_get_stats(struct queue *q, struct queue_stats *ret)
{
    pthread_mutex_lock(&q->lock);
    *ret = q->stats;
    ret->waiting = q->waiters;
    pthread_mutex_unlock(&q->lock);
}
