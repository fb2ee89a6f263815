/*
 * loop.h - the event loop: one poll over the fds of a few sources, a
 * timer list, and a wake-up other threads use to hand work over.
 *
 * Each round the loop asks every source for the fds it wants polled and
 * the next moment it must run (prepare), polls them together with its
 * wake-up eventfd until the nearest of those moments and of the timers,
 * then hands each source its polled fds back (dispatch) and runs the
 * timers that are due.  Nothing runs between events: with no fd ready, no
 * timer armed and no source asking for a moment, the loop sleeps in poll
 * without a timeout (idle means idle).  Sources are the listener, the
 * pipeline (its own deadlines) and, later, the exporters' transfers (their
 * fds and timeout, as libcurl's multi interface gives them).
 *
 * Threads: everything but loop_wake runs on the loop's thread (or before
 * loop_run starts).  loop_wake is for any thread.
 */
#ifndef LAMBDA_TRACER_LOOP_H
#define LAMBDA_TRACER_LOOP_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The most fds one round polls (the wake-up's included). */
#define LOOP_FDS_MAX 64
#define LOOP_SOURCES_MAX 4

/* ---- the timer list (pure: no clock of its own) ---- */

struct loop_timer;
typedef void (*loop_timer_fn)(struct loop_timer *t, int64_t now_ns, void *ctx);

/* Owned by its user (embedded in its struct); armed at most once. */
struct loop_timer {
    int64_t at_ns;            /* CLOCK_MONOTONIC, while armed */
    loop_timer_fn fn;
    void *ctx;
    struct loop_timer *next;  /* the list's, while armed */
    bool armed;
};

/* Earliest first; equal moments in the order they were armed. */
struct loop_timers {
    struct loop_timer *head;
};

/* Sets t's callback (t not armed yet). */
void loop_timer_init(struct loop_timer *t, loop_timer_fn fn, void *ctx);

/* Arms t for at_ns, moving it if it was armed already. */
void loop_timers_arm(struct loop_timers *ts, struct loop_timer *t, int64_t at_ns);

/* Disarms t; nothing when it is not armed. */
void loop_timers_disarm(struct loop_timers *ts, struct loop_timer *t);

/* The earliest armed moment, or -1 when none is armed. */
int64_t loop_timers_next(const struct loop_timers *ts);

/* Runs, earliest first, every timer due at now_ns (each disarmed before its
 * callback, which may arm it again or arm or disarm others).  A timer armed
 * by a callback for a moment <= now_ns runs at the next call, not this one,
 * so a callback cannot keep the loop here.  Returns how many ran. */
size_t loop_timers_run(struct loop_timers *ts, int64_t now_ns);

/* ---- the loop ---- */

struct loop;

struct loop_source_ops {
    /* Fills at most max fds to poll and returns how many; may lower
     * *deadline_ns (CLOCK_MONOTONIC, -1: none) to the next moment it must
     * run.  May call loop_quit. */
    size_t (*prepare)(void *ctx, struct pollfd *fds, size_t max, int64_t now_ns, int64_t *deadline_ns);
    /* The same fds, with revents, after the poll (also when none is ready,
     * and when the poll was cut short by a wake-up). */
    void (*dispatch)(void *ctx, struct pollfd *fds, size_t n, int64_t now_ns);
};

/* on_wake runs on the loop thread after loop_wake (calls from any number of
 * threads before it runs fold into one).  0, -ENOMEM or a negative errno
 * from eventfd. */
int loop_new(void (*on_wake)(void *ctx), void *ctx, struct loop **ret) __attribute__((warn_unused_result));

/* Adds a source (ops and ctx not owned; they outlive the loop's run).
 * 0 or -ENOSPC (LOOP_SOURCES_MAX). */
int loop_add_source(struct loop *l, const struct loop_source_ops *ops, void *ctx)
    __attribute__((warn_unused_result));

/* The loop's timer list. */
struct loop_timers *loop_timers(struct loop *l);

/* Wakes the loop (on_wake runs soon).  Any thread; async-signal-unsafe
 * nothing: one atomic, and one write(2) only when no wake-up is pending. */
void loop_wake(struct loop *l);

/* Notes work handed over that can wait for the loop's next wake-up for
 * any other reason (a fd, a timer, loop_wake): on_wake runs then, before
 * any source's dispatch and any timer, without a wake-up of its own (no
 * system call, the loop's thread not woken).  For what only matters once
 * something else happens (the pipeline's "extension released the
 * invocation", read when the invocation's report arrives).  Any thread. */
void loop_note(struct loop *l);

/* Ends loop_run after the current round.  Loop thread. */
void loop_quit(struct loop *l);

/* Runs rounds until loop_quit (called during this run).  The loop's thread. */
void loop_run(struct loop *l);

/* Rounds run so far (each a return from poll): the wake-up count tests use. */
uint64_t loop_rounds(const struct loop *l);

/* Frees the loop (not running).  NULL-safe. */
void loop_destroy(struct loop *l);

#endif
