/*
 * initwatch.h - Init anatomy: the runtime's process watched from outside
 * (procsnap) while Init runs, and the one plain hint that says why Init was
 * slow.
 *
 * Lambda starts the runtime only after every extension registered, so the
 * watcher (a timer of the event loop, initwatch_new + initwatch_sample; or
 * its own small thread, initwatch_start) looks
 * for the runtime every interval until it appears, then takes a light
 * snapshot of it and its descendants (stat and io, no threads or sockets)
 * every interval.  Each sample's figures go into a bounded ring; the tracer,
 * once it knows when the runtime's Init ended (initRuntimeDone), picks the
 * last sample taken at or before that moment and stops the watcher.  The
 * runtime is idle between its Init and its first invocation, so the figures
 * miss at most one interval of the Init's tail.  Each sample also notes
 * which of the other extensions and the runtime was active (below: who
 * held Init).
 */
#ifndef LAMBDA_TRACER_INITWATCH_H
#define LAMBDA_TRACER_INITWATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The runtime's figures over its Init, from its start to one sample. */
struct initwatch_figures {
    int64_t runtime_start_epoch_us; /* the root process's start (stat field 22) */
    int64_t taken_epoch_us;   /* when the sample was taken */
    int64_t wall_us;          /* runtime start to the sample */
    int64_t cpu_us;           /* utime+stime of every process, plus the CPU of
                               * the children they waited for; -1: unknown */
    int64_t rchar;            /* bytes read (read(2) and kin); -1: io unreadable */
    int64_t read_bytes;       /* of which fetched from storage; -1: unreadable */
    int64_t majflt, minflt;   /* page faults (stat, always readable with cpu) */
    uint32_t threads;         /* threads at the sample, over all processes */
    uint32_t max_threads;     /* the most seen in any sample */
    int64_t rss_bytes;        /* summed RSS at the sample */
    uint32_t processes;       /* runtime processes at the sample */
    uint32_t children_seen;   /* distinct descendants seen in any sample */
    uint32_t unreadable;      /* procsnap_src bits */
    uint32_t samples;         /* samples taken up to this one */
    uint32_t root_samples;    /* of which of this root (a newer runtime restarts them) */
    uint32_t runnable_samples; /* of those, the root was running or runnable (state R):
                               * it wanted the CPU, whether or not it got it */
};

enum initwatch_rule {
    INITWATCH_NONE = 0,       /* no rule fired (fast, mixed, or unknown) */
    INITWATCH_LOADING,        /* mostly CPU with many bytes read */
    INITWATCH_COMPUTING,      /* mostly CPU, few bytes read */
    INITWATCH_CPU,            /* mostly CPU, bytes read unknown */
    INITWATCH_DISK,           /* little CPU, much read from storage */
    INITWATCH_WAITING,        /* little CPU, little from storage */
};

/* The thresholds (README "Why was the cold start slow?"). */
#define INITWATCH_MIN_WALL_US 300000      /* a shorter runtime Init gets no hint */
#define INITWATCH_BUSY_PERMILLE 500       /* CPU >= 50 % of wall: busy */
#define INITWATCH_IDLE_PERMILLE 250       /* CPU < 25 % of wall: waiting */
#define INITWATCH_READ_MANY_BYTES INT64_C(16000000) /* bytes read: "many" */
#define INITWATCH_MAJFLT_MANY 4096        /* 16 MB of 4 KB pages from storage */
/* With this many samples of the root's state, runnable in at least
 * INITWATCH_BUSY_PERMILLE of them is busy too: a CPU-bound phase on a CPU
 * shared with others (starved: little CPU time for its wall time) is not
 * "waiting". */
#define INITWATCH_MIN_STATE_SAMPLES 10

/* The phase a hint speaks of. */
enum initwatch_phase {
    INITWATCH_PHASE_INIT,     /* "Runtime init" (with the function's static init) */
    INITWATCH_PHASE_RESTORE,  /* "Restore": a SnapStart restore, its after-restore hooks */
};

/* The rule that fires for f and its sentence (no trailing period), e.g.
 * "Runtime init read 184 MB and spent 1.6 s of its 1.8 s on CPU: loading
 * code", or with INITWATCH_PHASE_RESTORE "Restore read 184 MB ...".  The
 * same rules and thresholds for both phases.  Writes "" when none fires.
 * Pure. */
enum initwatch_rule initwatch_hint_phase(enum initwatch_phase phase, const struct initwatch_figures *f,
                                         char *out, size_t size);

/* initwatch_hint_phase for INITWATCH_PHASE_INIT. */
enum initwatch_rule initwatch_hint(const struct initwatch_figures *f, char *out, size_t size);

/* A SnapStart restore's figures: what the runtime did between base (the
 * last sample before the snapshot) and end (the last sample at or before
 * restoreRuntimeDone), as deltas (CPU, bytes read, faults, samples,
 * children seen), with threads, processes and RSS as at end, and wall_us
 * the restore's duration (restoreReport durationMs: never CLOCK_MONOTONIC,
 * which may jump backwards across a restore; TEL_ABSENT-like -1 when not
 * known, and the hint then stays silent).  A figure unknown in either
 * sample is unknown (-1).  Counters that went backwards (another process
 * took the root's place) make the whole result invalid: false.  Pure. */
bool initwatch_delta(const struct initwatch_figures *base, const struct initwatch_figures *end,
                     int64_t wall_us, struct initwatch_figures *ret);

/* A short anatomy line for the trace, e.g. "1.80 s wall, 1.62 s CPU, read
 * 184.0 MB (2.1 MB from storage), 12034 minor / 3 major faults, 4 threads,
 * RSS 96.3 MB, 1 child process; unreadable: io".  Pure. */
void initwatch_describe(const struct initwatch_figures *f, char *out, size_t size);

struct initwatch;

struct initwatch_opts {
    const char *proc_root;    /* NULL: /proc */
    pid_t self;               /* our pid (the runtime is a sibling) */
    uint32_t interval_ms;     /* between samples (>= 1) */
    uint32_t max_samples;     /* the watcher stops after this many */
};

/* Creates the watcher without a thread: its owner calls initwatch_sample
 * every initwatch_interval_ms (a timer of the event loop).  NULL when out
 * of memory or o is invalid. */
struct initwatch *initwatch_new(const struct initwatch_opts *o);

/* Takes one sample, unless stopped or max_samples were taken.  true while
 * more samples are wanted.  The owner's thread; w may be NULL (false). */
bool initwatch_sample(struct initwatch *w);

uint32_t initwatch_interval_ms(const struct initwatch *w);

/* Starts the watcher thread.  NULL when it could not (out of memory, no
 * thread): the caller logs and goes on without the anatomy. */
struct initwatch *initwatch_start(const struct initwatch_opts *o);

/* The last sample taken at or before end_epoch_us (the runtime's Init end)
 * in *ret: true, or false when there is none (the runtime was never found,
 * or every kept sample is later).  Thread-safe; w may be NULL. */
bool initwatch_figures_at(struct initwatch *w, int64_t end_epoch_us, struct initwatch_figures *ret);

/* A SnapStart restore: pick the runtime's samples around it from the
 * ring.  *ret_base: the newest sample taken before restore_start_us (the
 * restoreStart record's time: every sample before it predates the
 * snapshot).  *ret_end: the newest taken after it and at or before
 * done_us (restoreRuntimeDone's time), or else the oldest taken after
 * done_us but no later than done_us + late_max_us (when sampling only
 * resumed once the restore was over).  false when either is missing (the
 * ring overflowed, or nothing was sampled).  Thread-safe; w may be NULL. */
bool initwatch_restore_samples(struct initwatch *w, int64_t restore_start_us, int64_t done_us,
                               int64_t late_max_us, struct initwatch_figures *ret_base,
                               struct initwatch_figures *ret_end);

/* Resumes sampling (a SnapStart restore was detected): clears a stop and
 * the count of samples taken.  The owner's thread (the event loop, whose
 * timer then re-arms: initwatch_take_resumed).  w may be NULL. */
void initwatch_resume(struct initwatch *w);

/* true once after each initwatch_resume: the owner arms its timer again
 * (at once: its old deadline is on a CLOCK_MONOTONIC that may have jumped
 * across the restore).  The owner's thread; w may be NULL. */
bool initwatch_take_resumed(struct initwatch *w);

/*
 * Who held Init, seen from outside: every sample also looks at the sibling
 * extensions (procsnap_find_siblings) and at the runtime's root process,
 * and notes which of them was ACTIVE since the previous sample (the sum of
 * its threads' schedstat changed: it ran; or it is running or in a disk
 * wait now, state R or D).  An extension must block in /event/next for
 * Init to end and is idle from then on, so the last sample at or before
 * Init's end in which it was active dates its "ready" to within one
 * interval (an upper bound); the same for the runtime, blocked in its
 * /invocation/next.  An extension whose other threads stay busy while it
 * waits (a timer thread, a garbage collector) looks active up to Init's
 * end: its ready time is then only that bound.
 */
#define INITWATCH_EXT_MAX 10  /* Lambda allows at most 10 extensions */
#define INITWATCH_NAME_BYTES 64

struct initwatch_party {
    char name[INITWATCH_NAME_BYTES]; /* the extension's ("" for the runtime) */
    int64_t start_epoch_us;   /* its process's start */
    int64_t ready_epoch_us;   /* the last sample at or before the end in which
                               * it was active; when it never was, the first
                               * sample that saw it (never_active) */
    bool never_active;        /* idle in every sample: ready before we first looked */
    bool active_at_end;       /* active in the first sample after the end too:
                               * it may have been what ended Init (or it reacted
                               * to the first event after it) */
    int64_t cpu_us;           /* its CPU time (all threads, from its start) at
                               * the last sample at or before the end */
    int unreadable_errno;     /* not 0: its schedstat could not be read (this
                               * errno): nothing above is known */
};

struct initwatch_parties {
    uint32_t interval_ms;     /* the resolution of every ready time */
    int64_t end_sample_epoch_us; /* when the first sample after the end was taken */
    bool end_seen;            /* a sample after the end was taken (without it
                               * no ready time is certain: a party asleep in
                               * its Init looks like one waiting in next
                               * until it wakes to call it) */
    bool have_runtime;
    struct initwatch_party runtime;
    uint32_t count;           /* extensions seen, ourselves left out */
    struct initwatch_party ext[INITWATCH_EXT_MAX];
};

/* The runtime's and every other extension's activity up to end_epoch_us
 * (Init's end) and in the first sample after it, in *ret: true, or false
 * when no sample was taken at or before it.  Thread-safe; w may be NULL. */
bool initwatch_parties_at(struct initwatch *w, int64_t end_epoch_us, struct initwatch_parties *ret);

/* Asks the watcher to stop once it took a sample after epoch_us (the
 * sample initwatch_parties_at needs after Init's end).  w may be NULL. */
void initwatch_stop_after(struct initwatch *w, int64_t epoch_us);

/* Asks the watcher to stop sampling (does not wait).  w may be NULL. */
void initwatch_stop(struct initwatch *w);

/* Stops, joins and frees.  w may be NULL. */
void initwatch_free(struct initwatch *w);

#endif
