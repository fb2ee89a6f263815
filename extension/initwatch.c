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

struct initwatch {
    pthread_t thread;
    bool threaded;            /* initwatch_start: a thread of its own */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    struct initwatch_opts o;
    /* owned by the thread */
    struct procsnap snap;
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

static void sample(struct initwatch *w)
{
    struct procsnap *s = &w->snap;
    struct procsnap_opts po = {.proc_root = w->o.proc_root, .light = true, .descendants = true,
                               .io = true, .no_sock_diag = true, .budget_us = 20000};
    struct initwatch_figures f;
    long hz = sysconf(_SC_CLK_TCK);

    /* Looked for at every sample, and only the newest candidate kept: an
     * extension run by an interpreter (a script) has the interpreter as
     * argv[0] and passes find_runtime's test, but Lambda starts the
     * runtime after every extension registered, so once it exists it is
     * the newest sibling. */
    if (procsnap_find_runtime(w->o.proc_root, w->o.self, w->roots, ROOTS_MAX, &w->nroots, NULL) < 0 ||
        w->nroots == 0)
        return;
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
    pthread_mutex_lock(&w->mu);
    w->ring[w->head] = f;
    w->head = (w->head + 1) % RING;
    if (w->count < RING)
        w->count++;
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
    return w->taken < w->o.max_samples;
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
