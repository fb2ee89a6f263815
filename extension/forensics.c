/*
 * forensics.c - see forensics.h.
 *
 * Times: the pipeline's clock is the wall clock in epoch µs (like the
 * tracer's); procsnap reasons in CLOCK_MONOTONIC.  An invocation's start is
 * carried over to the monotonic clock through the snapshot's own pair of
 * readings (taken_epoch_us, taken_mono_us), so no third clock reading can
 * disagree with them.
 */
#include "forensics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "limits.h"

#define MAX_ROOTS 4

struct entry {
    bool used;
    uint64_t seq;
    char request_id[EVENT_REQUEST_ID_MAX];
    bool have_invoke;     /* INVOKE seen: a one-invocation-at-a-time process */
    bool have_start;      /* platform.start seen */
    int64_t start_us;     /* epoch: platform.start, else the INVOKE */
    int64_t deadline_ms;  /* epoch ms, 0: unknown */
    bool over;            /* runtimeDone, report, or superseded: no more snapshots */
    int64_t slow_due_us;  /* next slow snapshot, -1: none */
    unsigned slow_taken;
    bool timeout_taken;   /* the deadline snapshot (taken, or too late to) */
    unsigned taken;       /* snapshots this invocation got */
    struct procsnap *last; /* owned; NULL until the first snapshot */
    struct procsnap *first; /* owned; the first snapshot once a later one
                             * exists: the CPU baseline of the diagnosis */
    struct procsnap_share share;
    char diagnosis[PROCSNAP_SENTENCE_BYTES];
};

struct forensics {
    uint32_t slow_ms;
    int64_t margin_us;
    char proc_root[128];
    forensics_snap_fn snap;
    void *snap_ctx;
    /* the runtime, found on first need and again when it vanished */
    struct procsnap_target roots[MAX_ROOTS];
    size_t nroots;
    /* the Runtime API's address: its connections are not the function's */
    bool api_known;
    struct procsnap_peer api;
    uint64_t next_seq;
    int64_t mem_mb[FORENSICS_MEMORY_HISTORY]; /* ring of maxMemoryUsedMB */
    unsigned mem_next, mem_count;
    struct forensics_stats st;
    struct entry e[FORENSICS_MAX_OPEN];
    struct procsnap cur;      /* scratch: the snapshot being taken */
    struct trace_segment seg; /* scratch: the decorated copy */
    struct buf json;
};

struct forensics *forensics_new(const struct forensics_options *opts)
{
    struct forensics *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return NULL;
    f->slow_ms = opts->slow_ms;
    f->margin_us = opts->timeout_margin_us;
    trace_copy_str(f->proc_root, sizeof(f->proc_root), opts->proc_root != NULL ? opts->proc_root : "/proc");
    f->snap = opts->snap;
    f->snap_ctx = opts->snap_ctx;
    f->api_known = procsnap_parse_peer(opts->runtime_api, &f->api) == 0;
    buf_init(&f->json, TRACE_SNAPSHOT_MAX - 1);
    return f;
}

void forensics_destroy(struct forensics *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < FORENSICS_MAX_OPEN; i++)
    {
        free(f->e[i].last);
        free(f->e[i].first);
    }
    buf_free(&f->json);
    free(f);
}

void forensics_get_stats(const struct forensics *f, struct forensics_stats *ret)
{
    if (f == NULL) {
        memset(ret, 0, sizeof(*ret));
        return;
    }
    *ret = f->st;
}

/* --- the table ------------------------------------------------------------ */

static struct entry *find(struct forensics *f, const char *request_id)
{
    for (size_t i = 0; i < FORENSICS_MAX_OPEN; i++)
        if (f->e[i].used && strcmp(f->e[i].request_id, request_id) == 0)
            return &f->e[i];
    return NULL;
}

static void release(struct entry *e)
{
    free(e->last);
    free(e->first);
    memset(e, 0, sizeof(*e));
}

/* A free slot, else the oldest finished one, else the oldest. */
static struct entry *get(struct forensics *f, const char *request_id)
{
    struct entry *e = find(f, request_id);
    struct entry *victim = NULL;

    if (e != NULL)
        return e;
    struct entry *free_slot = NULL;

    for (size_t i = 0; i < FORENSICS_MAX_OPEN && free_slot == NULL; i++)
        if (!f->e[i].used)
            free_slot = victim = &f->e[i];
    for (size_t i = 0; i < FORENSICS_MAX_OPEN && free_slot == NULL; i++) {
        struct entry *c = &f->e[i];
        if (c->over && (victim == NULL || c->seq < victim->seq))
            victim = c; /* the oldest finished one */
    }
    if (victim == NULL) {
        victim = &f->e[0];
        for (size_t i = 1; i < FORENSICS_MAX_OPEN; i++)
            if (f->e[i].seq < victim->seq)
                victim = &f->e[i];
    }
    release(victim);
    victim->used = true;
    victim->seq = f->next_seq++;
    victim->slow_due_us = -1;
    trace_copy_str(victim->request_id, sizeof(victim->request_id), request_id);
    return victim;
}

/* The slow threshold from the invocation's start: the setting, else half
 * the time budget, else the default (no deadline: Managed Instances). */
static void schedule_slow(const struct forensics *f, struct entry *e)
{
    int64_t slow_us = (int64_t)f->slow_ms * 1000;

    if (e->slow_taken > 0)
        return; /* already sampling: keep its rhythm */
    if (slow_us == 0)
        slow_us = e->deadline_ms > 0 && e->deadline_ms * 1000 > e->start_us
                      ? (e->deadline_ms * 1000 - e->start_us) / 2
                      : (int64_t)FORENSICS_SLOW_DEFAULT_MS * 1000;
    e->slow_due_us = e->start_us + slow_us;
}

/* --- inputs ---------------------------------------------------------------- */

void forensics_on_invoke(struct forensics *f, const char *request_id, int64_t received_us,
                         int64_t deadline_ms)
{
    struct entry *e;

    if (f == NULL)
        return;
    /* One invocation at a time: whatever else is still followed is over
     * (its runtimeDone may come later, the sandbox froze in between). */
    for (size_t i = 0; i < FORENSICS_MAX_OPEN; i++)
        if (f->e[i].used && strcmp(f->e[i].request_id, request_id) != 0)
            f->e[i].over = true;
    e = get(f, request_id);
    e->have_invoke = true;
    e->deadline_ms = deadline_ms > 0 ? deadline_ms : 0;
    if (!e->have_start)
        e->start_us = received_us;
    if (!e->over)
        schedule_slow(f, e);
}

static void memory_push(struct forensics *f, int64_t mb)
{
    f->mem_mb[f->mem_next] = mb;
    f->mem_next = (f->mem_next + 1) % FORENSICS_MEMORY_HISTORY;
    if (f->mem_count < FORENSICS_MEMORY_HISTORY)
        f->mem_count++;
}

static void take_for(struct forensics *f, struct entry **due, size_t n);

void forensics_on_telemetry(struct forensics *f, const struct tel_event *ev)
{
    struct entry *e;

    if (f == NULL)
        return;
    if (ev->type == TEL_REPORT && ev->max_memory_used_mb != TEL_ABSENT && ev->max_memory_used_mb >= 0)
        memory_push(f, ev->max_memory_used_mb);
    if ((ev->type != TEL_START && ev->type != TEL_RUNTIME_DONE && ev->type != TEL_REPORT) ||
        ev->request_id == NULL || ev->request_id[0] == '\0')
        return;
    e = find(f, ev->request_id);
    if (ev->type == TEL_START) {
        if (e == NULL)
            e = get(f, ev->request_id);
        e->have_start = true;
        e->start_us = ev->time_us;
        if (!e->over)
            schedule_slow(f, e);
        return;
    }
    if (e == NULL)
        return;
    /* Without a deadline (Managed Instances) a timed-out handler is not
     * stopped: it is still there to be seen when the report arrives. */
    if (ev->type == TEL_REPORT && ev->status == TEL_STATUS_TIMEOUT && !e->over && !e->have_invoke)
        take_for(f, &e, 1);
    e->over = true;
}

/* --- snapshots ------------------------------------------------------------- */

static int64_t thread_cpu_us(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int find_runtime(struct forensics *f)
{
    size_t n = 0;
    int r;

    f->st.runtime_finds++;
    f->nroots = 0;
    r = procsnap_find_runtime(f->proc_root, getpid(), f->roots, MAX_ROOTS, &n, NULL);
    if (r < 0)
        return r;
    if (n == 0)
        return -ESRCH;
    f->nroots = n;
    return 0;
}

static struct procsnap_opts snap_opts(const struct forensics *f)
{
    struct procsnap_opts o = {
        .proc_root = f->proc_root,
        .budget_us = FORENSICS_SNAPSHOT_BUDGET_US,
        .ignore_peer = f->api_known ? &f->api : NULL,
    };
    return o;
}

/* The runtime as procsnap sees it; found again once if it vanished (a
 * crash and a new Init give it a new pid). */
static int default_snap(struct forensics *f, struct procsnap *ret)
{
    int r = -ESRCH;

    for (int attempt = 0; attempt < 2; attempt++) {
        struct procsnap_opts o = snap_opts(f);

        if (f->nroots == 0 && (r = find_runtime(f)) < 0)
            return r;
        o.roots = f->roots;
        o.nroots = f->nroots;
        r = procsnap_take(&o, ret);
        if (r == 0 && ret->nprocs > 0)
            return 0;
        f->nroots = 0;
        if (r == 0)
            r = -ESRCH;
    }
    return r;
}

/* The invocation's start on the snapshot's monotonic clock. */
static int64_t start_mono_us(const struct entry *e, const struct procsnap *s)
{
    return s->taken_mono_us - (s->taken_epoch_us - e->start_us);
}

/* One snapshot, shared by every invocation in due (it is process-wide). */
static void take_for(struct forensics *f, struct entry **due, size_t n)
{
    int64_t cpu0 = thread_cpu_us();
    struct procsnap_opts o = snap_opts(f);
    int r = f->snap != NULL ? f->snap(f->snap_ctx, &o, &f->cur) : default_snap(f, &f->cur);
    int64_t cpu1 = thread_cpu_us();

    f->st.snapshot_cpu_us += (uint64_t)(cpu1 > cpu0 ? cpu1 - cpu0 : 0);
    if (r < 0) {
        f->st.snapshot_failures++;
        return;
    }
    f->st.snapshots++;
    if (f->cur.nthreads == 0 && f->cur.ignored_threads > 0) {
        /* every thread waits on the Runtime API for its next event:
         * whatever was due is over (its runtimeDone is on its way) */
        f->st.idle++;
        for (size_t i = 0; i < n; i++)
            due[i]->over = true;
        return;
    }
    if (f->cur.nthreads == 0 || f->cur.procs[0].state == 'Z' || f->cur.procs[0].state == 'X') {
        /* the runtime is exiting (a reset after a timeout, a crash): what
         * it showed before is the answer */
        f->st.snapshot_failures++;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        struct entry *e = due[i];
        int64_t start = start_mono_us(e, &f->cur);

        if (e->last == NULL) {
            e->last = malloc(sizeof(*e->last));
            if (e->last == NULL)
                continue;
        } else {
            procsnap_share_add(&e->share, e->last, &f->cur, start);
            if (e->first == NULL) {
                /* the first snapshot (the slow sampler's, which a timing-
                 * out invocation always passes) becomes the baseline */
                struct procsnap *nx = malloc(sizeof(*nx));
                if (nx != NULL) {
                    e->first = e->last;
                    e->last = nx;
                }
            }
        }
        memcpy(e->last, &f->cur, sizeof(*e->last));
        e->taken++;
        procsnap_diagnose(e->first, e->last, start, e->diagnosis, sizeof(e->diagnosis));
    }
}

/* When e next wants a snapshot (epoch µs), or -1. */
static int64_t entry_due(const struct forensics *f, const struct entry *e)
{
    int64_t due = -1;

    /* After the deadline snapshot the runtime is being stopped: what it
     * showed just before is the answer. */
    if (!e->used || e->over || e->timeout_taken)
        return -1;
    if (e->slow_due_us >= 0 && e->slow_taken < FORENSICS_SLOW_MAX_SNAPSHOTS)
        due = e->slow_due_us;
    if (e->deadline_ms > 0 && !e->timeout_taken) {
        int64_t t = e->deadline_ms * 1000 - f->margin_us;
        /* a slow snapshot this close to the deadline one is the same */
        if (due < 0 || t < due + (int64_t)FORENSICS_SLOW_INTERVAL_MS * 1000)
            due = t;
    }
    return due;
}

int64_t forensics_tick(struct forensics *f, int64_t now_us)
{
    struct entry *due[FORENSICS_MAX_OPEN];
    size_t n = 0;
    int64_t next = -1;

    if (f == NULL)
        return -1;
    for (size_t i = 0; i < FORENSICS_MAX_OPEN; i++) {
        struct entry *e = &f->e[i];
        int64_t d = entry_due(f, e);

        if (d < 0 || d > now_us)
            continue;
        /* late from the most recent moment due: the deadline snapshot's if
         * that has come, else the slow sampler's */
        if (e->deadline_ms > 0 && now_us >= e->deadline_ms * 1000 - f->margin_us)
            d = e->deadline_ms * 1000 - f->margin_us;
        if (now_us - d > FORENSICS_STALE_US) {
            /* frozen in between: this moment belongs to the past */
            e->over = true;
            continue;
        }
        due[n++] = e;
    }
    if (n > 0)
        take_for(f, due, n);
    for (size_t i = 0; i < n; i++) {
        struct entry *e = due[i];
        bool at_deadline = e->deadline_ms > 0 && !e->timeout_taken &&
                           now_us >= e->deadline_ms * 1000 - f->margin_us;

        if (at_deadline) {
            e->timeout_taken = true;
        } else {
            if (e->slow_taken == 0)
                f->st.slow++;
            e->slow_taken++;
            e->slow_due_us = now_us + (int64_t)FORENSICS_SLOW_INTERVAL_MS * 1000;
        }
    }
    for (size_t i = 0; i < FORENSICS_MAX_OPEN; i++) {
        int64_t d = entry_due(f, &f->e[i]);
        if (d >= 0 && (next < 0 || d < next))
            next = d;
    }
    return next;
}

/* --- the segment ------------------------------------------------------------ */

void forensics_memory_trend(const int64_t *mb, unsigned n, char *out, size_t size)
{
    size_t len = 0;
    bool rising = true;
    int64_t lo, hi, prev_max;

    if (size == 0)
        return;
    out[0] = '\0';
    if (n < 2)
        return;
    lo = hi = mb[0];
    prev_max = mb[0];
    for (unsigned i = 1; i < n; i++) {
        if (mb[i] < mb[i - 1])
            rising = false;
        lo = mb[i] < lo ? mb[i] : lo;
        hi = mb[i] > hi ? mb[i] : hi;
        if (i < n - 1 && mb[i] > prev_max)
            prev_max = mb[i];
    }
    len = (size_t)snprintf(out, size, "max memory used by the last %u invocations:", n);
    for (unsigned i = 0; i < n && len < size; i++)
        len += (size_t)snprintf(out + len, size - len, "%s %" PRId64, i > 0 ? "," : "", mb[i]);
    if (len < size) {
        const char *verdict = "";
        if (n >= 3 && rising && mb[n - 1] > mb[0] && mb[n - 1] - mb[0] >= (mb[0] / 10 > 0 ? mb[0] / 10 : 1))
            verdict = " (growing steadily: a leak?)";
        else if (mb[n - 1] * 2 > prev_max * 3)
            verdict = " (jumped in the last one)";
        else if (hi - lo <= hi / 10)
            verdict = " (flat)";
        snprintf(out + len, size - len, " MB%s", verdict);
    }
}

static const char *seg_status(const struct trace_segment *seg)
{
    for (size_t i = 0; i < seg->attr_count; i++)
        if (seg->attrs[i].xray_key != NULL && strcmp(seg->attrs[i].xray_key, "status") == 0 &&
            seg->attrs[i].kind == TRACE_VALUE_STRING)
            return seg->attrs[i].str;
    return "";
}

/* Exported by the process after the one that ran it (from the journal):
 * this process's memory history holds only invocations that came later. */
static bool seg_recovered(const struct trace_segment *seg)
{
    for (size_t i = 0; i < seg->attr_count; i++)
        if (seg->attrs[i].xray_key != NULL && strcmp(seg->attrs[i].xray_key, "recovered_after_reset") == 0 &&
            seg->attrs[i].kind == TRACE_VALUE_BOOL)
            return seg->attrs[i].b;
    return false;
}

/* The cause message with `what` after its first line ("Task timed out
 * after 3.00 seconds: <what>"), the rest (the log tail) kept after it. */
static void cause_insert(struct trace_segment *seg, const char *sep, const char *what)
{
    char old[TRACE_CAUSE_MESSAGE_MAX];
    size_t first;

    memcpy(old, seg->cause_message, sizeof(old));
    old[sizeof(old) - 1] = '\0';
    first = strcspn(old, "\n");
    snprintf(seg->cause_message, sizeof(seg->cause_message), "%.*s%s%s%s", (int)first, old, sep, what,
             old + first);
}

const struct trace_segment *forensics_decorate(struct forensics *f, const struct trace_segment *seg,
                                               bool final)
{
    struct entry *e;
    struct trace_segment *out;
    const char *status;
    bool timeout, failed, have_snap;
    char trend[256];

    if (f == NULL || seg->kind != TRACE_SEGMENT_INVOCATION)
        return seg;
    e = find(f, seg->request_id);
    status = seg_status(seg);
    timeout = strcmp(status, tel_status_name(TEL_STATUS_TIMEOUT)) == 0;
    /* out of memory, a crash, a failed sandbox: not the function's own error */
    failed = !timeout && seg->fault && seg->cause_type[0] != '\0';
    have_snap = e != NULL && e->last != NULL;
    trend[0] = '\0';
    if (failed && final && !seg_recovered(seg)) {
        int64_t mb[FORENSICS_MEMORY_HISTORY];
        for (unsigned k = 0; k < f->mem_count; k++)
            mb[k] = f->mem_mb[(f->mem_next + FORENSICS_MEMORY_HISTORY - f->mem_count + k) %
                              FORENSICS_MEMORY_HISTORY];
        forensics_memory_trend(mb, f->mem_count, trend, sizeof(trend));
    }
    if (!have_snap && trend[0] == '\0') {
        if (final && e != NULL)
            release(e);
        return seg;
    }
    out = &f->seg;
    memcpy(out, seg, sizeof(*out));
    if (have_snap) {
        buf_reset(&f->json);
        if (procsnap_to_json(e->last, e->first, &f->json) == 0 && buf_len(&f->json) < sizeof(out->snapshot_json)) {
            memcpy(out->snapshot_json, buf_data(&f->json), buf_len(&f->json));
            out->snapshot_json[buf_len(&f->json)] = '\0';
            out->snapshot_us = e->last->taken_epoch_us;
        } else {
            f->st.json_too_big++;
        }
        trace_attr_str(out, "diagnosis", "lambda_tracer.diagnosis", TRACE_ATTR_METADATA, e->diagnosis);
        if (e->share.snapshots > 0) {
            char summary[TRACE_STRING_MAX]; /* what the attribute holds */
            procsnap_share_summary(&e->share, summary, sizeof(summary));
            trace_attr_str(out, "where_the_time_went", "lambda_tracer.where_the_time_went",
                           TRACE_ATTR_METADATA, summary);
        }
        trace_attr_int(out, "snapshots", "lambda_tracer.snapshots", TRACE_ATTR_METADATA, e->taken);
        trace_attr_str(out, "snapshot_scope", "lambda_tracer.snapshot.scope", TRACE_ATTR_METADATA,
                       e->have_invoke ? "process: the runtime serves one invocation at a time"
                                      : "process-wide: the runtime serves concurrent invocations; "
                                        "threads and sockets are not told apart per invocation");
    }
    if (trend[0] != '\0')
        trace_attr_str(out, "memory_trend", "lambda_tracer.memory_trend", TRACE_ATTR_METADATA, trend);
    if (final && out->cause_type[0] != '\0') {
        char what[PROCSNAP_SENTENCE_BYTES + 320];

        what[0] = '\0';
        if (timeout && have_snap)
            snprintf(what, sizeof(what), "%s", e->diagnosis);
        else if (failed && have_snap)
            snprintf(what, sizeof(what), "%s%slast snapshot, %.1f s before the end: %s", trend,
                     trend[0] ? "; " : "",
                     (double)(seg->end_us != TRACE_NO_END ? seg->end_us - e->last->taken_epoch_us : 0) / 1e6,
                     e->diagnosis);
        else if (failed)
            snprintf(what, sizeof(what), "%s", trend);
        if (what[0] != '\0')
            cause_insert(out, timeout ? ": " : "; ", what);
    }
    f->st.diagnosed++;
    if (final && e != NULL)
        release(e);
    return out;
}
