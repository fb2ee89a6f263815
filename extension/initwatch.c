/*
 * initwatch.c - see initwatch.h.
 */
#include "initwatch.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "procsnap.h"

#define RING 256            /* samples kept (the newest) */
#define SEEN_MAX 32         /* descendants remembered for children_seen */
#define ROOTS_MAX 4
#define TRACKS (INITWATCH_EXT_MAX + 1) /* the extensions, then the runtime */
#define RUNTIME_TRACK INITWATCH_EXT_MAX
_Static_assert(TRACKS <= 16, "a tick's bits");
_Static_assert(INITWATCH_NAME_BYTES == PROCSNAP_EXT_NAME_BYTES, "names");

/* ---- the rules (pure) ---- */

static double secs(int64_t us)
{
    return (double)us / 1e6;
}

static double mb(int64_t bytes)
{
    return (double)bytes / 1e6;
}

enum initwatch_rule initwatch_hint(const struct initwatch_figures *f, char *out, size_t size)
{
    return initwatch_hint_phase(INITWATCH_PHASE_INIT, f, out, size);
}

enum initwatch_rule initwatch_hint_phase(enum initwatch_phase phase, const struct initwatch_figures *f,
                                         char *out, size_t size)
{
    const char *name = phase == INITWATCH_PHASE_RESTORE ? "Restore" : "Runtime init";
    const char *work = phase == INITWATCH_PHASE_RESTORE ? "CPU-bound after-restore hooks"
                                                        : "CPU-bound static init";
    int64_t permille;
    bool many_read, many_from_storage;
    char starved[64] = "";

    if (out == NULL || size == 0)
        return INITWATCH_NONE;
    out[0] = '\0';
    /* Never guess: without the CPU figure or a real Init there is no hint. */
    if (f == NULL || f->cpu_us < 0 || f->wall_us < INITWATCH_MIN_WALL_US)
        return INITWATCH_NONE;
    permille = f->cpu_us * 1000 / f->wall_us;
    /* Starved, not idle: it was runnable in most samples (the CPU time is
     * small only because others had the CPU). */
    if (permille < INITWATCH_BUSY_PERMILLE && f->root_samples >= INITWATCH_MIN_STATE_SAMPLES &&
        (int64_t)f->runnable_samples * 1000 / f->root_samples >= INITWATCH_BUSY_PERMILLE) {
        permille = INITWATCH_BUSY_PERMILLE;
        snprintf(starved, sizeof(starved), " (runnable in %u of %u samples: short of CPU)",
                 f->runnable_samples, f->root_samples);
    }
    many_read = f->rchar >= INITWATCH_READ_MANY_BYTES;
    many_from_storage = f->read_bytes >= INITWATCH_READ_MANY_BYTES ||
                        f->majflt >= INITWATCH_MAJFLT_MANY;
    if (permille >= INITWATCH_BUSY_PERMILLE) {
        double cpu = secs(f->cpu_us < f->wall_us ? f->cpu_us : f->wall_us);
        if (f->rchar < 0) {
            snprintf(out, size,
                     "%s spent %.1f s of its %.1f s on CPU (bytes read unknown: "
                     "/proc/<pid>/io unreadable): CPU-bound%s",
                     name, cpu, secs(f->wall_us), starved);
            return INITWATCH_CPU;
        }
        if (many_read) {
            snprintf(out, size, "%s read %.0f MB and spent %.1f s of its %.1f s on CPU: "
                     "loading code%s", name, mb(f->rchar), cpu, secs(f->wall_us), starved);
            return INITWATCH_LOADING;
        }
        snprintf(out, size, "%s spent %.1f s of its %.1f s on CPU and read %.1f MB: "
                 "computing (%s)%s", name, cpu, secs(f->wall_us), mb(f->rchar), work, starved);
        return INITWATCH_COMPUTING;
    }
    if (permille < INITWATCH_IDLE_PERMILLE) {
        if (many_from_storage) {
            if (f->read_bytes >= INITWATCH_READ_MANY_BYTES)
                snprintf(out, size, "%s read %.0f MB from storage and used %.2f s of CPU "
                         "in %.1f s: waiting on disk", name, mb(f->read_bytes), secs(f->cpu_us),
                         secs(f->wall_us));
            else
                snprintf(out, size, "%s took %" PRId64 " major page faults and used "
                         "%.2f s of CPU in %.1f s: waiting on disk", name, f->majflt, secs(f->cpu_us),
                         secs(f->wall_us));
            return INITWATCH_DISK;
        }
        snprintf(out, size, "%s used %.2f s of CPU in %.1f s: waiting (network or a slow "
                 "dependency)", name, secs(f->cpu_us), secs(f->wall_us));
        return INITWATCH_WAITING;
    }
    return INITWATCH_NONE;
}

static int64_t delta_of(int64_t base, int64_t end, bool *bad)
{
    if (base < 0 || end < 0)
        return -1;
    if (end < base)
        *bad = true;
    return end - base;
}

bool initwatch_delta(const struct initwatch_figures *base, const struct initwatch_figures *end,
                     int64_t wall_us, struct initwatch_figures *ret)
{
    bool bad = false;
    struct initwatch_figures d;

    if (base == NULL || end == NULL || ret == NULL)
        return false;
    /* Another root (the runtime restarted): the counters are not one
     * process's; never guess. */
    if (base->runtime_start_epoch_us != end->runtime_start_epoch_us && base->runtime_start_epoch_us != 0 &&
        end->runtime_start_epoch_us != 0 &&
        (base->runtime_start_epoch_us - end->runtime_start_epoch_us > 1000000 ||
         end->runtime_start_epoch_us - base->runtime_start_epoch_us > 1000000))
        return false;
    memset(&d, 0, sizeof(d));
    d.runtime_start_epoch_us = end->runtime_start_epoch_us;
    d.taken_epoch_us = end->taken_epoch_us;
    d.wall_us = wall_us >= 0 ? wall_us : -1;
    d.cpu_us = delta_of(base->cpu_us, end->cpu_us, &bad);
    d.rchar = delta_of(base->rchar, end->rchar, &bad);
    d.read_bytes = delta_of(base->read_bytes, end->read_bytes, &bad);
    d.majflt = delta_of(base->majflt, end->majflt, &bad);
    d.minflt = delta_of(base->minflt, end->minflt, &bad);
    if (d.cpu_us < 0) /* faults come with the CPU figure (stat) */
        d.majflt = d.minflt = 0;
    if (bad)
        return false;
    d.threads = end->threads;
    d.max_threads = end->threads;
    d.rss_bytes = end->rss_bytes;
    d.processes = end->processes;
    d.children_seen = end->children_seen > base->children_seen ? end->children_seen - base->children_seen : 0;
    d.unreadable = base->unreadable | end->unreadable;
    d.samples = end->samples > base->samples ? end->samples - base->samples : 0;
    d.root_samples = end->root_samples > base->root_samples ? end->root_samples - base->root_samples : 0;
    d.runnable_samples = end->runnable_samples > base->runnable_samples
                             ? end->runnable_samples - base->runnable_samples
                             : 0;
    *ret = d;
    return true;
}

void initwatch_describe(const struct initwatch_figures *f, char *out, size_t size)
{
    size_t off = 0;
    int n;

    if (out == NULL || size == 0)
        return;
    out[0] = '\0';
    if (f == NULL)
        return;
#define PUT(...)                                                                               \
    do {                                                                                       \
        n = snprintf(out + off, size - off, __VA_ARGS__);                                      \
        if (n < 0 || (size_t)n >= size - off)                                                  \
            return;                                                                            \
        off += (size_t)n;                                                                      \
    } while (0)
    if (f->wall_us >= 0)
        PUT("%.2f s wall", secs(f->wall_us));
    else
        PUT("wall unknown");
    if (f->cpu_us >= 0)
        PUT(", %.2f s CPU, %" PRId64 " minor / %" PRId64 " major faults", secs(f->cpu_us), f->minflt,
            f->majflt);
    if (f->rchar >= 0)
        PUT(", read %.1f MB (%.1f MB from storage)", mb(f->rchar), mb(f->read_bytes));
    PUT(", %u threads (at most %u), RSS %.1f MB, %u processes, %u child processes seen", f->threads,
        f->max_threads, mb(f->rss_bytes), f->processes, f->children_seen);
    if (f->root_samples > 0)
        PUT(", runnable in %u of %u samples", f->runnable_samples, f->root_samples);
    if (f->unreadable != 0) {
        static const char *const names[PROCSNAP_SRC_COUNT] = {
            "stat", "task", "cmdline", "syscall", "wchan", "fd", "net", "sock_diag", "io"};
        PUT("; unreadable:");
        for (int i = 0; i < PROCSNAP_SRC_COUNT; i++)
            if (f->unreadable & (1u << i))
                PUT(" %s", names[i]);
    }
#undef PUT
}

/* ---- the watcher ---- */

/* One process whose activity is followed: an extension, or the runtime. */
struct track {
    struct procsnap_target id;     /* pid 0: a free slot */
    char name[INITWATCH_NAME_BYTES];
    int64_t start_epoch_us;
    int64_t first_seen_us;         /* its first readable sample; -1: none yet */
    int err;                       /* the first failed read's errno */
    bool have_sig;
    struct procsnap_schedstat sig; /* at the last readable sample */
    uint32_t threads;
    /* What left the ring: its newest active sample, and the CPU at its
     * newest readable one (-1: none) */
    int64_t evicted_active_us, evicted_cpu_us;
};

/* One sample of the tracks: bit i of active / seen for track i. */
struct tick {
    int64_t taken_epoch_us;
    uint16_t active;               /* it ran since the previous sample, or is R or D */
    uint16_t seen;                 /* it was read */
    uint32_t cpu_us[TRACKS];       /* its CPU time then (saturated) */
};

struct initwatch {
    pthread_t thread;
    bool threaded;            /* initwatch_start: a thread of its own */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    int64_t stop_after_us;    /* 0, or stop once a sample is newer */
    struct initwatch_opts o;
    /* owned by the thread */
    struct procsnap snap;
    struct procsnap_links links;   /* the sample's scan, for the descendants */
    struct procsnap_target roots[ROOTS_MAX];
    size_t nroots;
    struct procsnap_target last_root;
    pid_t seen[SEEN_MAX];
    uint32_t nseen, max_threads, samples, root_samples, runnable_samples;
    uint32_t taken;           /* initwatch_sample calls that sampled */
    bool resumed;             /* initwatch_resume since initwatch_take_resumed */
    /* the ring, under mu */
    struct initwatch_figures ring[RING];
    uint32_t head, count;
    /* the tracks and their ring, under mu */
    struct track tracks[TRACKS];
    struct tick ticks[RING];
    uint32_t tick_head, tick_count;
};

static int64_t now_us(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void remember(struct initwatch *w, pid_t pid)
{
    for (uint32_t i = 0; i < w->nseen; i++)
        if (w->seen[i] == pid)
            return;
    if (w->nseen < SEEN_MAX)
        w->seen[w->nseen++] = pid;
}

/* A process's start on the wall clock (stat's start time is in clock
 * ticks since boot). */
static int64_t start_epoch_us(uint64_t start_ticks)
{
    long hz = sysconf(_SC_CLK_TCK);
    int64_t age_us;

    if (hz <= 0)
        return -1;
    age_us = now_us(CLOCK_BOOTTIME) - (int64_t)(start_ticks * 1000000ULL / (uint64_t)hz);
    return now_us(CLOCK_REALTIME) - (age_us > 0 ? age_us : 0);
}

/* One process's activity as read, to be applied under mu. */
struct reading {
    int track;                     /* its track, or -1: no slot left */
    struct procsnap_target id;
    const char *name;              /* an extension's; NULL for the runtime */
    uint32_t threads;
    char state;
    int r;                         /* procsnap_activity's result */
    struct procsnap_schedstat now;
};

/* The track of an extension: its own, else a free one; -1 when all are
 * taken.  The sampling thread (the only one that changes tracks). */
static int track_of(const struct initwatch *w, const struct procsnap_target *id, const bool *claimed)
{
    int free_one = -1;

    for (int i = 0; i < INITWATCH_EXT_MAX; i++) {
        const struct track *t = &w->tracks[i];
        if (t->id.pid == id->pid && t->id.start_ticks == id->start_ticks)
            return i;
        if (t->id.pid == 0 && !claimed[i] && free_one < 0)
            free_one = i;
    }
    return free_one;
}

/* Starts track i over for another process. */
static void track_reset(struct initwatch *w, int i, const struct procsnap_target *id, const char *name)
{
    struct track *t = &w->tracks[i];

    memset(t, 0, sizeof(*t));
    t->id = *id;
    snprintf(t->name, sizeof(t->name), "%s", name != NULL ? name : "");
    t->start_epoch_us = start_epoch_us(id->start_ticks);
    t->first_seen_us = t->evicted_active_us = t->evicted_cpu_us = -1;
    for (uint32_t k = 0; k < RING; k++) {
        w->ticks[k].active &= (uint16_t)~(1u << i);
        w->ticks[k].seen &= (uint16_t)~(1u << i);
    }
}

/* Applies one reading to its track and to tick k (mu held). */
static void apply(struct initwatch *w, const struct reading *rd, struct tick *k)
{
    struct track *t;
    int i = rd->track;

    if (i < 0)
        return;
    t = &w->tracks[i];
    if (t->id.pid != rd->id.pid || t->id.start_ticks != rd->id.start_ticks)
        track_reset(w, i, &rd->id, rd->name);
    if (rd->r < 0) {
        if (t->err == 0)
            t->err = -rd->r;
        return;
    }
    if ((t->have_sig && (rd->now.run_ns != t->sig.run_ns || rd->now.wait_ns != t->sig.wait_ns ||
                         rd->now.slices != t->sig.slices || rd->threads != t->threads)) ||
        rd->state == 'R' || rd->state == 'D')
        k->active |= (uint16_t)(1u << i);
    k->seen |= (uint16_t)(1u << i);
    k->cpu_us[i] = rd->now.run_ns / 1000 > UINT32_MAX ? UINT32_MAX : (uint32_t)(rd->now.run_ns / 1000);
    t->sig = rd->now;
    t->threads = rd->threads;
    t->have_sig = true;
}

static void read_activity(const struct initwatch *w, struct reading *rd)
{
    rd->r = procsnap_activity(w->o.proc_root, rd->id.pid, rd->threads, &rd->now);
}

/* Appends k to the tick ring (mu held), even with nothing read (what was
 * unreadable is then still told); what leaves it is folded into its
 * tracks. */
static void push_tick(struct initwatch *w, struct tick *k)
{
    if (w->tick_count == RING) {
        const struct tick *old = &w->ticks[w->tick_head];
        for (int i = 0; i < TRACKS; i++) {
            if (old->active & (1u << i))
                w->tracks[i].evicted_active_us = old->taken_epoch_us;
            if (old->seen & (1u << i))
                w->tracks[i].evicted_cpu_us = old->cpu_us[i];
        }
    } else {
        w->tick_count++;
    }
    for (int i = 0; i < TRACKS; i++)
        if ((k->seen & (1u << i)) && w->tracks[i].first_seen_us < 0)
            w->tracks[i].first_seen_us = k->taken_epoch_us;
    w->ticks[w->tick_head] = *k;
    w->tick_head = (w->tick_head + 1) % RING;
}

/* The runtime's figures (a light snapshot of it and its descendants). */
static void sample_runtime(struct initwatch *w, struct reading *rd)
{
    struct procsnap *s = &w->snap;
    struct procsnap_opts po = {.proc_root = w->o.proc_root, .light = true, .descendants = true,
                               .io = true, .no_sock_diag = true, .budget_us = 20000,
                               .links = &w->links};
    struct initwatch_figures f;
    long hz = sysconf(_SC_CLK_TCK);

    if (w->roots[0].pid != w->last_root.pid || w->roots[0].start_ticks != w->last_root.start_ticks) {
        w->nseen = 0; /* a newer process: what was seen was another's */
        w->max_threads = 0;
        w->root_samples = w->runnable_samples = 0;
    }
    w->last_root = w->roots[0];
    po.roots = w->roots;
    po.nroots = 1;
    if (procsnap_take(&po, s) < 0)
        return;
    memset(&f, 0, sizeof(f));
    f.cpu_us = (s->unreadable & (1u << PROCSNAP_SRC_STAT)) ? -1 : 0;
    f.rchar = f.read_bytes = (s->unreadable & (1u << PROCSNAP_SRC_IO)) ? -1 : 0;
    for (uint16_t i = 0; i < s->nprocs; i++) {
        const struct procsnap_proc *p = &s->procs[i];
        if (f.cpu_us >= 0)
            f.cpu_us += (int64_t)(p->cpu_us + p->children_cpu_us);
        if (f.rchar >= 0 && p->has_io) {
            f.rchar += (int64_t)p->rchar;
            f.read_bytes += (int64_t)p->read_bytes;
        }
        f.minflt += (int64_t)p->minflt;
        f.majflt += (int64_t)p->majflt;
        f.threads += p->num_threads;
        f.rss_bytes += (int64_t)p->rss_bytes;
        if (p->depth > 0)
            remember(w, p->pid);
    }
    f.processes = s->nprocs;
    if (f.threads > w->max_threads)
        w->max_threads = f.threads;
    f.max_threads = w->max_threads;
    f.children_seen = w->nseen;
    f.unreadable = s->unreadable;
    f.samples = ++w->samples;
    w->root_samples++;
    for (uint16_t i = 0; i < s->nprocs; i++) {
        if (s->procs[i].state == 'R') { /* the root or a child doing its work */
            w->runnable_samples++;
            break;
        }
    }
    f.root_samples = w->root_samples;
    f.runnable_samples = w->runnable_samples;
    f.taken_epoch_us = s->taken_epoch_us;
    /* The root's start on the wall clock: its age by CLOCK_BOOTTIME. */
    if (hz > 0 && s->nprocs > 0) {
        int64_t started_boot_us = (int64_t)(s->procs[0].start_ticks * 1000000ULL / (uint64_t)hz);
        f.wall_us = s->taken_boot_us - started_boot_us;
        if (f.wall_us < 0)
            f.wall_us = 0;
        f.runtime_start_epoch_us = s->taken_epoch_us - f.wall_us;
    }
    if (s->nprocs > 0) {
        /* the root process only (its descendants' work is done for it) */
        rd->track = RUNTIME_TRACK;
        rd->id = w->roots[0];
        rd->threads = s->procs[0].num_threads;
        rd->state = s->procs[0].state;
        read_activity(w, rd);
    }
    pthread_mutex_lock(&w->mu);
    w->ring[w->head] = f;
    w->head = (w->head + 1) % RING;
    if (w->count < RING)
        w->count++;
    pthread_mutex_unlock(&w->mu);
}

static void sample(struct initwatch *w)
{
    struct procsnap_extension ext[INITWATCH_EXT_MAX];
    struct reading rd[TRACKS];
    bool claimed[INITWATCH_EXT_MAX] = {false};
    size_t next = 0, n = 0;
    struct tick k;

    /* Looked for at every sample, and only the newest candidate kept:
     * Lambda starts the runtime after every extension registered, so once
     * it exists it is the newest sibling that is not an extension.  The
     * same scan of /proc gives the parent links that the runtime's
     * snapshot follows to its descendants: one scan per sample. */
    if (procsnap_find_siblings(w->o.proc_root, w->o.self, w->roots, ROOTS_MAX, &w->nroots, ext,
                               INITWATCH_EXT_MAX, &next, &w->links, NULL) < 0)
        return;
    memset(rd, 0, sizeof(rd));
    for (size_t i = 0; i < next; i++) {
        struct reading *r = &rd[n++];
        r->id.pid = ext[i].pid;
        r->id.start_ticks = ext[i].start_ticks;
        r->name = ext[i].name;
        r->threads = ext[i].num_threads;
        r->state = ext[i].state;
        r->track = track_of(w, &r->id, claimed);
        if (r->track < 0)
            continue;
        claimed[r->track] = true;
        read_activity(w, r);
    }
    rd[n].track = -1;
    if (w->nroots > 0)
        sample_runtime(w, &rd[n]);
    n++;
    memset(&k, 0, sizeof(k));
    k.taken_epoch_us = now_us(CLOCK_REALTIME);
    pthread_mutex_lock(&w->mu);
    for (size_t i = 0; i < n; i++)
        apply(w, &rd[i], &k);
    push_tick(w, &k);
    if (w->stop_after_us != 0 && k.taken_epoch_us > w->stop_after_us)
        w->stop = true;
    pthread_mutex_unlock(&w->mu);
}

static void *run(void *arg)
{
    struct initwatch *w = arg;

    for (uint32_t n = 0; n < w->o.max_samples; n++) {
        struct timespec until;
        int64_t t = now_us(CLOCK_MONOTONIC) + (int64_t)w->o.interval_ms * 1000;

        sample(w);
        until.tv_sec = (time_t)(t / 1000000);
        until.tv_nsec = (long)(t % 1000000) * 1000;
        pthread_mutex_lock(&w->mu);
        while (!w->stop && pthread_cond_timedwait(&w->cv, &w->mu, &until) != ETIMEDOUT) {
        }
        bool stop = w->stop;
        pthread_mutex_unlock(&w->mu);
        if (stop)
            break;
    }
    return NULL;
}

struct initwatch *initwatch_new(const struct initwatch_opts *o)
{
    struct initwatch *w;
    pthread_condattr_t ca;

    if (o == NULL || o->interval_ms == 0 || o->max_samples == 0)
        return NULL;
    w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    w->o = *o;
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    return w;
}

bool initwatch_sample(struct initwatch *w)
{
    bool stop;

    if (w == NULL)
        return false;
    pthread_mutex_lock(&w->mu);
    stop = w->stop;
    pthread_mutex_unlock(&w->mu);
    if (stop || w->taken >= w->o.max_samples)
        return false;
    sample(w);
    w->taken++;
    pthread_mutex_lock(&w->mu);
    stop = w->stop; /* a stop_after met */
    pthread_mutex_unlock(&w->mu);
    return !stop && w->taken < w->o.max_samples;
}

uint32_t initwatch_interval_ms(const struct initwatch *w)
{
    return w->o.interval_ms;
}

struct initwatch *initwatch_start(const struct initwatch_opts *o)
{
    struct initwatch *w = initwatch_new(o);

    if (w == NULL)
        return NULL;
    if (pthread_create(&w->thread, NULL, run, w) != 0) {
        initwatch_free(w);
        return NULL;
    }
    w->threaded = true;
    return w;
}

bool initwatch_figures_at(struct initwatch *w, int64_t end_epoch_us, struct initwatch_figures *ret)
{
    bool found = false;

    if (w == NULL || ret == NULL)
        return false;
    pthread_mutex_lock(&w->mu);
    for (uint32_t k = 0; k < w->count; k++) {
        const struct initwatch_figures *f = &w->ring[(w->head + RING - 1 - k) % RING];
        if (f->taken_epoch_us <= end_epoch_us) {
            *ret = *f;
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&w->mu);
    return found;
}

/* Track i's party at end_us (mu held): false when it is not to be told
 * (not seen by then, and no read of it failed). */
static bool party_at(const struct initwatch *w, int i, int64_t end_us, struct initwatch_party *ret)
{
    const struct track *t = &w->tracks[i];
    uint16_t bit = (uint16_t)(1u << i);
    bool have_cpu = false;

    memset(ret, 0, sizeof(*ret));
    memcpy(ret->name, t->name, sizeof(ret->name));
    ret->start_epoch_us = t->start_epoch_us;
    ret->ready_epoch_us = ret->cpu_us = -1;
    if (t->first_seen_us < 0 || t->first_seen_us > end_us) {
        ret->unreadable_errno = t->err;
        return t->err != 0;
    }
    for (uint32_t n = 0; n < w->tick_count; n++) {
        const struct tick *k = &w->ticks[(w->tick_head + RING - 1 - n) % RING];
        if (k->taken_epoch_us > end_us) {
            ret->active_at_end = (k->active & bit) != 0; /* the oldest after it wins */
            continue;
        }
        if ((k->seen & bit) && !have_cpu) {
            ret->cpu_us = k->cpu_us[i];
            have_cpu = true;
        }
        if (k->active & bit) {
            ret->ready_epoch_us = k->taken_epoch_us;
            break;
        }
    }
    if (!have_cpu)
        ret->cpu_us = t->evicted_cpu_us;
    if (ret->ready_epoch_us < 0 && t->evicted_active_us >= 0)
        ret->ready_epoch_us = t->evicted_active_us;
    if (ret->ready_epoch_us < 0) {
        ret->ready_epoch_us = t->first_seen_us;
        ret->never_active = true;
    }
    return true;
}

bool initwatch_parties_at(struct initwatch *w, int64_t end_epoch_us, struct initwatch_parties *ret)
{
    bool any;

    if (w == NULL || ret == NULL)
        return false;
    memset(ret, 0, sizeof(*ret));
    ret->interval_ms = w->o.interval_ms;
    pthread_mutex_lock(&w->mu);
    any = w->tick_count > 0 && w->ticks[(w->tick_head + RING - w->tick_count) % RING].taken_epoch_us <= end_epoch_us;
    if (any) {
        for (uint32_t n = 0; n < w->tick_count; n++) {
            const struct tick *k = &w->ticks[(w->tick_head + RING - 1 - n) % RING];
            if (k->taken_epoch_us <= end_epoch_us)
                break;
            ret->end_seen = true;
            ret->end_sample_epoch_us = k->taken_epoch_us;
        }
        for (int i = 0; i < INITWATCH_EXT_MAX; i++)
            if (w->tracks[i].id.pid != 0 && party_at(w, i, end_epoch_us, &ret->ext[ret->count]))
                ret->count++;
        ret->have_runtime = w->tracks[RUNTIME_TRACK].id.pid != 0 &&
                            party_at(w, RUNTIME_TRACK, end_epoch_us, &ret->runtime);
    }
    pthread_mutex_unlock(&w->mu);
    return any;
}

bool initwatch_restore_samples(struct initwatch *w, int64_t restore_start_us, int64_t done_us,
                               int64_t late_max_us, struct initwatch_figures *ret_base,
                               struct initwatch_figures *ret_end)
{
    bool have_base = false, have_end = false, have_late = false;
    struct initwatch_figures late;

    if (w == NULL || ret_base == NULL || ret_end == NULL)
        return false;
    memset(&late, 0, sizeof(late));
    pthread_mutex_lock(&w->mu);
    /* newest first */
    for (uint32_t k = 0; k < w->count && !have_base; k++) {
        const struct initwatch_figures *f = &w->ring[(w->head + RING - 1 - k) % RING];
        if (f->taken_epoch_us < restore_start_us) {
            *ret_base = *f;
            have_base = true;
        } else if (f->taken_epoch_us <= done_us) {
            if (!have_end) {
                *ret_end = *f;
                have_end = true;
            }
        } else if (f->taken_epoch_us <= done_us + late_max_us) {
            late = *f; /* the oldest such wins: the last one met going back */
            have_late = true;
        }
    }
    pthread_mutex_unlock(&w->mu);
    if (!have_end && have_late) {
        *ret_end = late;
        have_end = true;
    }
    return have_base && have_end;
}

void initwatch_resume(struct initwatch *w)
{
    if (w == NULL || w->threaded)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = false;
    w->stop_after_us = 0;
    pthread_mutex_unlock(&w->mu);
    w->taken = 0;
    w->resumed = true;
}

bool initwatch_take_resumed(struct initwatch *w)
{
    bool r;

    if (w == NULL)
        return false;
    r = w->resumed;
    w->resumed = false;
    return r;
}

void initwatch_stop_after(struct initwatch *w, int64_t epoch_us)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop_after_us = epoch_us > 0 ? epoch_us : 1;
    pthread_mutex_unlock(&w->mu);
}

void initwatch_stop(struct initwatch *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

void initwatch_free(struct initwatch *w)
{
    if (w == NULL)
        return;
    initwatch_stop(w);
    if (w->threaded)
        pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}
