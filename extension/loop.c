/*
 * loop.c - see loop.h.
 */
#include "loop.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

void loop_timer_init(struct loop_timer *t, loop_timer_fn fn, void *ctx)
{
    *t = (struct loop_timer){.fn = fn, .ctx = ctx};
}

void loop_timers_disarm(struct loop_timers *ts, struct loop_timer *t)
{
    if (!t->armed)
        return;
    for (struct loop_timer **pp = &ts->head; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    }
    t->next = NULL;
    t->armed = false;
}

void loop_timers_arm(struct loop_timers *ts, struct loop_timer *t, int64_t at_ns)
{
    struct loop_timer **pp = &ts->head;

    loop_timers_disarm(ts, t);
    while (*pp != NULL && (*pp)->at_ns <= at_ns)
        pp = &(*pp)->next;
    t->at_ns = at_ns;
    t->next = *pp;
    t->armed = true;
    *pp = t;
}

int64_t loop_timers_next(const struct loop_timers *ts)
{
    return ts->head != NULL ? ts->head->at_ns : -1;
}

size_t loop_timers_run(struct loop_timers *ts, int64_t now_ns)
{
    struct loop_timer *due = NULL;
    struct loop_timer **tail = &due;
    size_t ran = 0;

    /* Take the due ones off first: what their callbacks arm waits for the
     * next call. */
    while (ts->head != NULL && ts->head->at_ns <= now_ns) {
        struct loop_timer *t = ts->head;
        ts->head = t->next;
        t->next = NULL;
        *tail = t;
        tail = &t->next;
    }
    while (due != NULL) {
        struct loop_timer *t = due;
        due = t->next;
        t->next = NULL;
        if (!t->armed)
            continue; /* disarmed by an earlier callback of this run */
        t->armed = false;
        ran++;
        t->fn(t, now_ns, t->ctx);
    }
    return ran;
}

struct loop_src {
    const struct loop_source_ops *ops;
    void *ctx;
    size_t first; /* its fds' place in the round's array */
    size_t n;
};

struct loop {
    int wake_fd;
    atomic_bool wake_pending;
    atomic_bool noted; /* loop_note: on_wake due at the next round */
    void (*on_wake)(void *ctx);
    void *wake_ctx;
    bool quit;
    uint64_t rounds;
    struct loop_timers timers;
    struct loop_src srcs[LOOP_SOURCES_MAX];
    size_t nsrcs;
    struct pollfd fds[LOOP_FDS_MAX];
};

int loop_new(void (*on_wake)(void *ctx), void *ctx, struct loop **ret)
{
    struct loop *l = calloc(1, sizeof(*l));

    if (l == NULL)
        return -ENOMEM;
    l->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (l->wake_fd < 0) {
        int r = -errno;
        free(l);
        return r;
    }
    atomic_init(&l->wake_pending, false);
    atomic_init(&l->noted, false);
    l->on_wake = on_wake;
    l->wake_ctx = ctx;
    *ret = l;
    return 0;
}

int loop_add_source(struct loop *l, const struct loop_source_ops *ops, void *ctx)
{
    if (l->nsrcs == LOOP_SOURCES_MAX)
        return -ENOSPC;
    l->srcs[l->nsrcs++] = (struct loop_src){.ops = ops, .ctx = ctx};
    return 0;
}

struct loop_timers *loop_timers(struct loop *l)
{
    return &l->timers;
}

void loop_wake(struct loop *l)
{
    uint64_t one = 1;

    /* One write per pending wake-up: a burst of hand-overs costs one. */
    if (atomic_exchange(&l->wake_pending, true))
        return;
    while (write(l->wake_fd, &one, sizeof(one)) < 0 && errno == EINTR) {
    }
}

void loop_note(struct loop *l)
{
    atomic_store(&l->noted, true);
}

void loop_quit(struct loop *l)
{
    l->quit = true;
}

uint64_t loop_rounds(const struct loop *l)
{
    return l->rounds;
}

static void drain_wake(struct loop *l)
{
    uint64_t v;

    while (read(l->wake_fd, &v, sizeof(v)) < 0 && errno == EINTR) {
    }
    /* Cleared before on_wake looks: a hand-over after this point writes
     * again, one before it is seen by on_wake. */
    atomic_store(&l->wake_pending, false);
    atomic_store(&l->noted, false);
    if (l->on_wake != NULL)
        l->on_wake(l->wake_ctx);
}

void loop_run(struct loop *l)
{
    l->quit = false;
    while (!l->quit) {
        int64_t now_ns = clock_mono_ns();
        int64_t deadline_ns = loop_timers_next(&l->timers);
        size_t n = 1;
        struct timespec ts;
        int r;

        l->fds[0] = (struct pollfd){.fd = l->wake_fd, .events = POLLIN};
        for (size_t i = 0; i < l->nsrcs; i++) {
            struct loop_src *s = &l->srcs[i];
            s->first = n;
            s->n = s->ops->prepare(s->ctx, l->fds + n, LOOP_FDS_MAX - n, now_ns, &deadline_ns);
            n += s->n;
        }
        if (l->quit)
            break;
        if (deadline_ns >= 0) {
            int64_t left = deadline_ns - now_ns;
            if (left < 0)
                left = 0;
            ts.tv_sec = (time_t)(left / 1000000000);
            ts.tv_nsec = (long)(left % 1000000000);
        }
        r = ppoll(l->fds, (nfds_t)n, deadline_ns >= 0 ? &ts : NULL, NULL);
        l->rounds++;
        if (r < 0) {
            if (errno != EINTR)
                break; /* cannot happen with valid fds; leave rather than spin */
            continue;
        }
        now_ns = clock_mono_ns();
        if (l->fds[0].revents != 0)
            drain_wake(l);
        else if (atomic_exchange(&l->noted, false) && l->on_wake != NULL)
            l->on_wake(l->wake_ctx);
        for (size_t i = 0; i < l->nsrcs; i++) {
            struct loop_src *s = &l->srcs[i];
            s->ops->dispatch(s->ctx, l->fds + s->first, s->n, now_ns);
        }
        loop_timers_run(&l->timers, now_ns);
    }
}

void loop_destroy(struct loop *l)
{
    if (l == NULL)
        return;
    close(l->wake_fd);
    free(l);
}
