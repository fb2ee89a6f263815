/*
 * tracer.c - see tracer.h.
 *
 * Where each bound comes from (all platform times are the records' own
 * ISO-8601 millisecond timestamps or spans; ours are CLOCK_REALTIME µs):
 *
 *   invocation segment   start: platform.start `time` (the INVOKE arrival on
 *                        our clock when no platform.start came); with a
 *                        suppressed Init (phase "invoke") the caller also
 *                        waited for that Init, so the segment starts at its
 *                        initStart.  end: start + platform.report durationMs,
 *                        which covers everything the invocation was held
 *                        open for; before the report, the end of the last
 *                        runtimeDone span.
 *   Initialization       initStart `time` to initStart + initReport
 *                        durationMs (the whole Init: extensions, runtime,
 *                        function), on the first invocation of the
 *                        environment only.  Provisioned concurrency and
 *                        proactive init: it keeps its real times, possibly
 *                        long before the invocation; the gap is stated in
 *                        metadata, never added to the invocation.
 *     Extension init: lambda-tracer: initStart to our first /event/next,
 *                        i.e. our own share of Init.
 *     Runtime init       Lambda starts the runtime once every extension has
 *                        registered; when we are the only extension
 *                        (platform.extension records) that is the end of our
 *                        registration, and the runtime (with the function's
 *                        static init, which telemetry does not separate
 *                        from it) is done at initRuntimeDone `time`.
 *   Restore              restoreStart to + restoreReport durationMs.
 *   Invocation           platform.start to the end of responseLatency (the
 *                        runtime starts sending its response).
 *   Response             the responseDuration span.
 *   Overhead             runtimeOverhead start to the end of
 *                        extensionOverhead (report), with both as children:
 *                        time after the response that the runtime and the
 *                        extensions (ours included) held the invocation.
 */
#include "tracer.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ids.h"
#include "initwatch.h"
#include "xray_header.h"

/* The invocation table: TRACER_MAX_OPEN slots, grown (doubling) up to
 * TRACER_MAX_ANNOUNCED only for invocations INVOKE announced, when every
 * slot holds one still pinned (see slot_for_new).  Outside Managed
 * Instances an INVOKE comes only once the previous invocation's runtime is
 * done, so a pipeline running behind (Telemetry API buffering, a slow
 * batch) holds many announced invocations that finished running and await
 * their records: each needs its slot, because only INVOKE gave its trace
 * context.  About 1.4 KB a slot: 64 slots 90 KB, at most 720 KB. */
#define TRACER_MAX_OPEN 64
#define TRACER_MAX_ANNOUNCED 512
/* Request ids are found through a hash index: chains of slot numbers. */
#define TRACER_BUCKETS 512
/* The last request ids exported (64-bit hashes), remembered after their
 * slots are reused: Lambda delivers a batch again when our answer to it
 * was late (a timeout on its side), and the records of invocations
 * finished a thousand invocations ago must not make them again.  8 KB. */
#define TRACER_DONE_IDS 1024
/* ... found through chains as the open ones are (a new request id is
 * looked for there once: scanning all 1,024 was a third of the tracer's
 * time per invocation). */
#define TRACER_DONE_BUCKETS 1024
_Static_assert((TRACER_DONE_BUCKETS & (TRACER_DONE_BUCKETS - 1)) == 0, "a power of two");
_Static_assert(TRACER_DONE_IDS < UINT16_MAX, "ring positions + 1 fit a uint16_t");
_Static_assert((TRACER_BUCKETS & (TRACER_BUCKETS - 1)) == 0, "a power of two");
_Static_assert(TRACER_MAX_ANNOUNCED < UINT16_MAX, "slot numbers + 1 fit a uint16_t");
/* Platform times are whole milliseconds; ours are not. */
#define INIT_MILESTONE_SLACK_US 2000
#define ERROR_TYPE_MAX 96
/* An Init that ended longer than this before its first invocation began
 * (or any provisioned-concurrency, SnapStart or managed-instances Init) was not waited for by
 * the caller: it becomes a segment of its own in the invocation's trace
 * rather than a subsegment starting before its parent (README "Read your
 * traces"). */
#define INIT_DETACH_GAP_US 1000000

struct span_val {
    bool set;
    int64_t start_us;
    int64_t duration_us;
};

struct init_info {
    bool seen;
    int64_t start_us;
    enum tel_init_type type;
    enum tel_phase phase;
    bool runtime_done;
    int64_t runtime_done_us;
    enum tel_status runtime_status;
    char runtime_error[ERROR_TYPE_MAX];
    bool reported;
    int64_t duration_us;
    enum tel_status status;
    char error_type[ERROR_TYPE_MAX];
    unsigned extensions; /* platform.extension records */
    /* Each extension the records named, with the events it registered for
     * (TEL_EXT_*): one registered for INVOKE is woken by the first
     * invocation, so its activity right after Init may be that. */
    struct {
        char name[INITWATCH_NAME_BYTES];
        unsigned events;
    } registered[INITWATCH_EXT_MAX];
    unsigned registered_count;
    bool anatomy;         /* the runtime's figures over its Init (initwatch) */
    struct initwatch_figures figures;
    bool failure_emitted; /* a failed Init was exported as its own segment */
    bool restore_seen;
    int64_t restore_start_us;
    bool restore_reported;
    int64_t restore_duration_us;
    enum tel_status restore_status;
    char restore_error[ERROR_TYPE_MAX];
};

enum inv_state {
    INV_FREE = 0,
    INV_OPEN,
    INV_DONE, /* final segment emitted; kept to ignore late records */
};

struct invocation {
    enum inv_state state;
    uint64_t seq; /* creation order */
    uint32_t hash;     /* of request_id */
    uint16_t next;     /* the next slot (number + 1) in its bucket's chain, 0: none */
    char request_id[EVENT_REQUEST_ID_MAX];
    bool have_invoke;
    int64_t invoke_us;
    int64_t deadline_ms;
    char arn[EVENT_ARN_MAX];
    struct xray_header hdr;
    bool have_hdr;
    bool have_start;
    int64_t start_us;
    char version[64];
    bool have_done;
    int64_t done_us;
    enum tel_status done_status;
    char done_error[ERROR_TYPE_MAX];
    int64_t done_duration_us;
    struct span_val latency, response, runtime_overhead;
    bool have_report;
    int64_t report_us;
    enum tel_status report_status;
    char report_error[ERROR_TYPE_MAX];
    int64_t report_duration_us;
    int64_t billed_ms, memory_mb, max_memory_mb, init_duration_us, restore_duration_us;
    struct span_val extension_overhead;
    char tenant_id[TRACE_STRING_MAX]; /* tenant isolation: "" none */
    int64_t released_us;              /* our /event/next after its INVOKE, 0 unknown */
    int64_t own_cpu_us;               /* -1 unknown */
    bool cold;
    bool shutdown_closed;
    enum ext_shutdown_reason shutdown_reason;
    int64_t shutdown_us;
    bool in_progress_sent;
    bool eager;
    bool cold_resolved;
    bool recovered; /* started by a previous process (journal) */
    char *log_tail; /* owned; the function's last lines, captured when it failed */
    /* identity, fixed at creation so every version shares it */
    char trace_id[XRAY_TRACE_ID_LEN + 1];
    char segment_id[XRAY_SPAN_ID_LEN + 1];
    char parent_id[XRAY_SPAN_ID_LEN + 1];
    char runtime_parent_id[XRAY_SPAN_ID_LEN + 1]; /* platform.start's tracing.spanId */
    bool sampled;
    bool ids_ready;
    /* sampling: the reason of the first version exported (SAMPLING_DROP
     * while none was), and the invocation's one reservoir/ratio draw */
    enum sampling_reason kept_by;
    bool drawn;
    enum sampling_reason draw;
};

struct tracer {
    char segment_name[TRACE_NAME_MAX];
    char function_name[TRACE_NAME_MAX];
    char function_version[64];
    char account_id[32];
    char region[32];
    int64_t memory_size_mb;
    enum sampling_policy sampling;
    uint32_t slow_ms;
    struct sampling_reservoir reservoir;
    int64_t timeout_margin_us;
    tracer_emit_fn emit;
    tracer_observe_fn observe;
    tracer_forget_fn forget;
    void *ctx;
    struct cost_price price;
    bool durable; /* durable function (initStart.runtimeVersion) */
    struct initwatch *initwatch;
    /* SnapStart (AWS_LAMBDA_INITIALIZATION_TYPE, or initStart's type): the
     * watcher keeps sampling past initRuntimeDone, for the baseline the
     * restore is measured against. */
    bool snap_start;
    bool restore_detected; /* the first INVOKE after Init, or restoreStart */
    bool restore_anatomy;  /* restore_figures hold the restore's deltas */
    struct initwatch_figures restore_figures; /* wall_us set at emission */
    int64_t restore_rss_delta_bytes;
    int64_t restore_threads_delta;

    int64_t registered_us;
    int64_t first_next_us;
    struct init_info init;
    char instance_id[TRACE_STRING_MAX];
    int64_t instance_max_memory;
    bool cold_taken; /* the first invocation of this process took the Init */
    uint64_t next_seq;
    uint64_t lost_pending; /* telemetry losses not yet reported on a segment */
    uint64_t evicted_pending; /* invocations evicted, not yet reported on a segment */
    /* The latest time of our own clock seen (INVOKE, tick, SHUTDOWN): what
     * "past its deadline" is measured against, never a record's time. */
    int64_t now_us;
    size_t recovered_open; /* journal invocations not yet closed */
    int64_t recovered_latest_us; /* the latest start among them */
    int64_t recovered_close_us;  /* 0, or when tracer_tick closes them */
    /* log tail: a ring of the function's lines since the last platform.start */
    unsigned log_tail_lines;
    size_t log_tail_max_bytes;
    char (*ring)[LOG_TAIL_LINE_MAX_BYTES];
    unsigned ring_next;
    unsigned ring_count;
    struct tracer_stats stats;
    /* Slots [0, inv_cap), made at the first invocation (an idle tracer
     * has none); the used ones are a prefix (see find). */
    struct invocation *inv;
    size_t inv_cap;
    uint16_t bucket[TRACER_BUCKETS]; /* first slot (number + 1) of each chain, 0: none */
    uint64_t done_ids[TRACER_DONE_IDS]; /* a ring; 0: empty */
    size_t done_next;
    uint16_t done_bucket[TRACER_DONE_BUCKETS]; /* first ring position (+ 1) of each chain, 0: none */
    uint16_t done_chain[TRACER_DONE_IDS];      /* the next position (+ 1) in its chain, 0: none */
    struct trace_segment seg; /* scratch: too large for the stack of every caller */
};

struct tracer *tracer_new(const struct tracer_options *opts)
{
    struct tracer *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return NULL;
    trace_copy_str(t->segment_name, sizeof(t->segment_name),
             opts->segment_name != NULL && opts->segment_name[0] ? opts->segment_name
                                                                 : opts->function_name);
    trace_copy_str(t->function_name, sizeof(t->function_name), opts->function_name);
    trace_copy_str(t->function_version, sizeof(t->function_version), opts->function_version);
    trace_copy_str(t->account_id, sizeof(t->account_id), opts->account_id);
    trace_copy_str(t->region, sizeof(t->region), opts->region);
    t->memory_size_mb = opts->memory_size_mb;
    t->sampling = opts->sampling;
    t->slow_ms = opts->slow_ms;
    sampling_reservoir_init(&t->reservoir);
    t->timeout_margin_us = opts->timeout_margin_us;
    t->emit = opts->emit;
    t->observe = opts->observe;
    t->forget = opts->forget;
    t->price = opts->price;
    t->ctx = opts->ctx;
    t->initwatch = opts->initwatch;
    t->snap_start = opts->snap_start;
    t->instance_max_memory = TEL_ABSENT;
    if (opts->log_tail_lines > 0) {
        t->log_tail_lines = opts->log_tail_lines < LOG_TAIL_MAX_LINES ? opts->log_tail_lines
                                                                      : LOG_TAIL_MAX_LINES;
        t->log_tail_max_bytes = opts->log_tail_max_bytes;
        t->ring = calloc(t->log_tail_lines, sizeof(*t->ring));
        if (t->ring == NULL) {
            free(t);
            return NULL;
        }
    }
    return t;
}

void tracer_destroy(struct tracer *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->inv_cap; i++)
        free(t->inv[i].log_tail);
    free(t->inv);
    free(t->ring);
    free(t);
}

/* --- log tail ------------------------------------------------------------- */

static bool newline_char(char c)
{
    return c == '\n' || c == '\r';
}

/* The line without its trailing newlines, cut to what a ring line holds.
 * A long line is not measured to its end: the cut is the same unless only
 * newlines follow its last kept byte, and then stripping them from there
 * ends where stripping from the line's end would. */
static size_t ring_line_len(const char *line)
{
    const size_t keep = LOG_TAIL_LINE_MAX_BYTES - 1;
    size_t len = strnlen(line, keep + 1);

    if (len > keep) {
        const char *rest = line + keep - 1; /* its last kept byte, and on */
        if (rest[strspn(rest, "\r\n")] != '\0')
            return keep; /* something else follows: no newline stripped reaches the cut */
    }
    while (len > 0 && newline_char(line[len - 1]))
        len--;
    return len < keep ? len : keep;
}

static void ring_add(struct tracer *t, const char *line)
{
    size_t len = ring_line_len(line);

    memcpy(t->ring[t->ring_next], line, len);
    t->ring[t->ring_next][len] = '\0';
    t->ring_next = (t->ring_next + 1) % t->log_tail_lines;
    if (t->ring_count < t->log_tail_lines)
        t->ring_count++;
}

/* The ring's lines, oldest first, as one string of at most max bytes: when
 * it does not fit, the oldest lines go (the last ones matter most).  NULL
 * when empty or out of memory. */
static char *ring_take(struct tracer *t)
{
    size_t total = 0;
    unsigned first = 0;
    char *out;
    size_t len = 0;

    if (t->ring == NULL || t->ring_count == 0)
        return NULL;
    /* newest backwards until the cap */
    for (unsigned k = 0; k < t->ring_count; k++) {
        unsigned idx = (t->ring_next + t->log_tail_lines - 1 - k) % t->log_tail_lines;
        size_t l = strlen(t->ring[idx]) + 1;
        if (total + l > t->log_tail_max_bytes)
            break;
        total += l;
        first = k + 1;
    }
    if (first == 0)
        return NULL;
    out = malloc(total + 1);
    if (out == NULL)
        return NULL;
    for (unsigned k = first; k-- > 0;) {
        unsigned idx = (t->ring_next + t->log_tail_lines - 1 - k) % t->log_tail_lines;
        size_t l = strlen(t->ring[idx]);
        memcpy(out + len, t->ring[idx], l);
        len += l;
        out[len++] = '\n';
    }
    out[len] = '\0';
    return out;
}

static void ring_clear(struct tracer *t)
{
    t->ring_next = 0;
    t->ring_count = 0;
}

void tracer_set_own_init(struct tracer *t, int64_t registered_us, int64_t first_next_us)
{
    t->registered_us = registered_us;
    t->first_next_us = first_next_us;
}

void tracer_add_lost(struct tracer *t, uint64_t batches)
{
    t->lost_pending += batches;
}

/* --- the invocation table ------------------------------------------------ */

/* FNV-1a of a request id. */
static uint32_t id_hash(const char *id)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; id[i] != '\0'; i++)
        h = (h ^ (unsigned char)id[i]) * 16777619u;
    return h;
}

/* Slots are taken in order and never freed again (a finished one is
 * reused in place), so the free ones are the table's tail: loops stop at
 * the first.  A request id is found through its bucket's chain, not by
 * comparing it with every slot's (which was most of the tracer's time). */
/* FNV-1a (64 bits) of a request id, never 0 (the done ring's empty). */
static uint64_t id_hash64(const char *id)
{
    uint64_t h = 14695981039346656037ull;

    for (size_t i = 0; id[i] != '\0'; i++)
        h = (h ^ (unsigned char)id[i]) * 1099511628211ull;
    return h != 0 ? h : 1;
}

static uint16_t *done_head(struct tracer *t, uint64_t h)
{
    return &t->done_bucket[h & (TRACER_DONE_BUCKETS - 1)];
}

static void remember_done(struct tracer *t, const char *request_id)
{
    size_t pos = t->done_next;
    uint16_t self = (uint16_t)(pos + 1);
    uint64_t h = id_hash64(request_id);

    if (t->done_ids[pos] != 0) { /* the oldest leaves its chain */
        uint16_t *link = done_head(t, t->done_ids[pos]);
        while (*link != 0 && *link != self)
            link = &t->done_chain[*link - 1];
        if (*link == self)
            *link = t->done_chain[pos];
    }
    t->done_ids[pos] = h;
    t->done_chain[pos] = *done_head(t, h);
    *done_head(t, h) = self;
    t->done_next = (pos + 1) % TRACER_DONE_IDS;
}

static bool recently_done(const struct tracer *t, const char *request_id)
{
    uint64_t h = id_hash64(request_id);

    for (uint16_t k = t->done_bucket[h & (TRACER_DONE_BUCKETS - 1)]; k != 0; k = t->done_chain[k - 1])
        if (t->done_ids[k - 1] == h)
            return true;
    return false;
}

static struct invocation *find(struct tracer *t, const char *request_id)
{
    uint32_t h = id_hash(request_id);

    for (uint16_t k = t->bucket[h & (TRACER_BUCKETS - 1)]; k != 0; k = t->inv[k - 1].next) {
        struct invocation *inv = &t->inv[k - 1];
        if (inv->hash == h && strcmp(inv->request_id, request_id) == 0)
            return inv;
    }
    return NULL;
}

static void index_remove(struct tracer *t, struct invocation *inv)
{
    uint16_t self = (uint16_t)(inv - t->inv + 1);
    uint16_t *link = &t->bucket[inv->hash & (TRACER_BUCKETS - 1)];

    while (*link != 0 && *link != self)
        link = &t->inv[*link - 1].next;
    if (*link == self)
        *link = inv->next;
    inv->next = 0;
}

static void index_add(struct tracer *t, struct invocation *inv)
{
    uint16_t *head = &t->bucket[inv->hash & (TRACER_BUCKETS - 1)];

    inv->next = *head;
    *head = (uint16_t)(inv - t->inv + 1);
}

/* Doubles the table (the first call makes it), up to max slots; the new
 * slots are free.  false when at max or out of memory. */
static bool grow(struct tracer *t, size_t max)
{
    size_t cap = t->inv_cap == 0 ? TRACER_MAX_OPEN : t->inv_cap * 2;
    struct invocation *more;

    if (cap > max)
        return false;
    more = realloc(t->inv, cap * sizeof(*more));
    if (more == NULL)
        return false;
    memset(more + t->inv_cap, 0, (cap - t->inv_cap) * sizeof(*more));
    t->inv = more;
    t->inv_cap = cap;
    return true;
}

/* An open invocation the Extensions API announced (INVOKE, or the journal
 * for a predecessor's) whose deadline has not passed: its trace context
 * came from INVOKE and nothing else can give it back, so records of other
 * request ids never push it out.  Without a deadline it is not held. */
static bool pinned(const struct tracer *t, const struct invocation *inv)
{
    return inv->state == INV_OPEN && inv->have_invoke && inv->deadline_ms > 0 &&
           inv->deadline_ms * 1000 > t->now_us;
}

/* A slot for a new invocation: a free one, else the oldest finished one,
 * else (counted as evicted, its report never came) the oldest open one
 * known from telemetry only, else the oldest announced one past its
 * deadline.  Only an announced newcomer (INVOKE) may take the slot of a
 * pinned one, the oldest; for any other, NULL: it is not tracked, and
 * that is counted too.  Managed Instances announce nothing: there the
 * oldest open invocation yields. */
static struct invocation *slot_for_new(struct tracer *t, bool announced)
{
    struct invocation *oldest_done = NULL;
    struct invocation *oldest_unannounced = NULL;
    struct invocation *oldest_expired = NULL;
    struct invocation *oldest_pinned = NULL;
    struct invocation *victim;

    if (t->inv_cap == 0 && !grow(t, TRACER_MAX_OPEN))
        return NULL; /* out of memory: not tracked (not counted as evicted: no table) */
    for (size_t i = 0; i < t->inv_cap; i++) {
        struct invocation *inv = &t->inv[i];
        struct invocation **oldest;
        if (inv->state == INV_FREE)
            return inv;
        if (inv->state == INV_DONE)
            oldest = &oldest_done;
        else if (!inv->have_invoke)
            oldest = &oldest_unannounced;
        else if (!pinned(t, inv))
            oldest = &oldest_expired;
        else
            oldest = &oldest_pinned;
        if (*oldest == NULL || inv->seq < (*oldest)->seq)
            *oldest = inv;
    }
    if (oldest_done != NULL)
        return oldest_done;
    /* Every slot holds an open invocation: an announced newcomer, when
     * every one is pinned, gets a new slot while the table may grow. */
    if (announced && oldest_unannounced == NULL && oldest_expired == NULL) {
        size_t used = t->inv_cap;
        if (grow(t, TRACER_MAX_ANNOUNCED))
            return &t->inv[used];
    }
    victim = oldest_unannounced != NULL ? oldest_unannounced
             : oldest_expired != NULL   ? oldest_expired
             : announced                ? oldest_pinned
                                        : NULL;
    t->stats.evicted++;
    t->evicted_pending++;
    if (victim != NULL && victim->have_invoke)
        t->stats.evicted_announced++;
    if (victim != NULL && t->forget != NULL)
        t->forget(victim->request_id, t->ctx);
    return victim;
}

/* The invocation of request_id, made if new; NULL when it is new and the
 * table has no room for it (see slot_for_new; when announced, only if the
 * table could not be made at all). */
static struct invocation *get(struct tracer *t, const char *request_id, bool announced)
{
    struct invocation *inv = find(t, request_id);

    if (inv != NULL)
        return inv;
    inv = slot_for_new(t, announced);
    if (inv == NULL)
        return NULL;
    if (inv->state != INV_FREE)
        index_remove(t, inv);
    free(inv->log_tail);
    memset(inv, 0, sizeof(*inv));
    inv->state = INV_OPEN;
    inv->seq = t->next_seq++;
    trace_copy_str(inv->request_id, sizeof(inv->request_id), request_id);
    inv->hash = id_hash(inv->request_id);
    index_add(t, inv);
    inv->billed_ms = inv->memory_mb = inv->max_memory_mb = TEL_ABSENT;
    inv->init_duration_us = inv->restore_duration_us = inv->report_duration_us = TEL_ABSENT;
    inv->done_duration_us = TEL_ABSENT;
    inv->own_cpu_us = -1;
    return inv;
}

static void saw_time(struct tracer *t, int64_t now_us)
{
    if (now_us > t->now_us)
        t->now_us = now_us;
}

/* Trace context, fixed once: from the header when it has a Root (joining
 * the caller's trace as a child of its Parent), else a new trace. */
static void ensure_ids(struct invocation *inv, int64_t start_us)
{
    if (inv->ids_ready)
        return;
    if (inv->have_hdr && inv->hdr.root[0] != '\0') {
        trace_copy_str(inv->trace_id, sizeof(inv->trace_id), inv->hdr.root);
        /* A Sampled=0 header's Parent names a segment nobody sends: the
         * caller chose not to trace, and Lambda in PassThrough (which made
         * that header when the caller sent none) sends nothing.  Kept
         * anyway, the invocation is the root of that trace, so backends
         * show it whole instead of under a missing parent; the Parent goes
         * to metadata. */
        trace_copy_str(inv->parent_id, sizeof(inv->parent_id),
                 inv->hdr.sampled != XRAY_SAMPLED_NO ? inv->hdr.parent : "");
        inv->sampled = inv->hdr.sampled != XRAY_SAMPLED_NO;
    } else {
        if (ids_new_trace_id(start_us / 1000000, inv->trace_id) < 0)
            inv->trace_id[0] = '\0';
        inv->parent_id[0] = '\0';
        inv->sampled = true;
    }
    if (ids_new_span_id(inv->segment_id) < 0)
        inv->segment_id[0] = '\0';
    inv->ids_ready = true;
}

/* --- building a segment -------------------------------------------------- */

static int add_span(struct trace_segment *seg, int parent, const char *name, int64_t start_us,
                    int64_t end_us)
{
    struct trace_span *s;

    if (seg->span_count >= TRACE_MAX_SPANS || start_us == TEL_ABSENT)
        return -1;
    s = &seg->spans[seg->span_count];
    if (ids_new_span_id(s->id) < 0)
        return -1;
    s->error = false;
    s->fault = false;
    s->parent = parent;
    trace_copy_str(s->name, sizeof(s->name), name);
    s->start_us = start_us;
    /* Platform times have millisecond precision, durations microseconds:
     * never let a rounding make a span end before it starts. */
    s->end_us = end_us != TRACE_NO_END && end_us < start_us ? start_us : end_us;
    return (int)seg->span_count++;
}

static const char *init_type_name(enum tel_init_type type)
{
    switch (type) {
    case TEL_INIT_TYPE_ON_DEMAND:
        return "on-demand";
    case TEL_INIT_TYPE_PROVISIONED:
        return "provisioned-concurrency";
    case TEL_INIT_TYPE_SNAP_START:
        return "snap-start";
    case TEL_INIT_TYPE_MANAGED:
        return "lambda-managed-instances";
    case TEL_INIT_TYPE_OTHER:
        return "other";
    case TEL_INIT_TYPE_NONE:
    default:
        return "unknown";
    }
}

static int64_t span_end(const struct span_val *s)
{
    return s->set && s->duration_us != TEL_ABSENT ? s->start_us + s->duration_us : TEL_ABSENT;
}

static int64_t runtime_started(const struct tracer *t, const struct init_info *in);

/* Returns the "Runtime init" span's index, or -1 when there is none. */
static int add_init_spans(struct tracer *t, struct trace_segment *seg)
{
    const struct init_info *in = &t->init;
    int64_t end;
    int parent;

    if (!in->seen)
        return -1;
    end = in->reported && in->duration_us != TEL_ABSENT ? in->start_us + in->duration_us
          : in->runtime_done                            ? in->runtime_done_us
                                                        : TRACE_NO_END;
    parent = add_span(seg, -1, "Initialization", in->start_us, end);
    if (parent < 0)
        return -1;
    if (in->reported && in->status != TEL_STATUS_SUCCESS && in->status != TEL_STATUS_NONE)
        seg->spans[parent].fault = true;
    /* Our own milestones belong to this Init only if they fall inside it
     * (records of another process's Init may reach us after a reset). */
    bool ours = end != TRACE_NO_END && t->first_next_us > in->start_us &&
                t->first_next_us <= end + INIT_MILESTONE_SLACK_US;
    if (ours)
        add_span(seg, parent, "Extension init: lambda-tracer", in->start_us, t->first_next_us);
    /* The runtime's start: seen in /proc (exact whatever the number of
     * extensions), else the end of our registration when we are the only
     * extension. */
    if (in->runtime_done && runtime_started(t, in) != TEL_ABSENT)
        return add_span(seg, parent, "Runtime init", runtime_started(t, in), in->runtime_done_us);
    return -1;
}

/* When the runtime started, or TEL_ABSENT when not knowable. */
static int64_t runtime_started(const struct tracer *t, const struct init_info *in)
{
    int64_t end = in->runtime_done ? in->runtime_done_us : TEL_ABSENT;

    if (!in->seen || end == TEL_ABSENT)
        return TEL_ABSENT;
    if (in->anatomy && in->figures.runtime_start_epoch_us >= in->start_us - INIT_MILESTONE_SLACK_US &&
        in->figures.runtime_start_epoch_us <= end + INIT_MILESTONE_SLACK_US)
        return in->figures.runtime_start_epoch_us < in->start_us ? in->start_us
               : in->figures.runtime_start_epoch_us > end        ? end
                                                                 : in->figures.runtime_start_epoch_us;
    if (in->extensions <= 1 && t->registered_us > in->start_us && end >= t->registered_us)
        return t->registered_us;
    return TEL_ABSENT;
}

static double ms_of(int64_t us)
{
    return (double)us / 1000.0;
}

/* Whole milliseconds, half up (half away from zero below 0): a figure
 * given as a number and in a sentence is printed from this one value, so
 * the two never differ by printf's rounding against a division's truncation. */
static int64_t ms_rounded(int64_t us)
{
    return us >= 0 ? (us + 500) / 1000 : -((-us + 500) / 1000);
}

/* Where Init went (README "Why was the cold start slow?"): the runtime's
 * anatomy and hint, and the extensions' share against the runtime's. */
/* The OTLP names of one phase's figures (static strings). */
struct figure_keys {
    const char *summary, *wall_ms, *cpu_ms, *major_faults, *minor_faults, *read_bytes,
        *storage_read_bytes, *threads, *rss_bytes, *child_processes;
};

static const struct figure_keys init_keys = {
    "lambda_tracer.runtime_init", "lambda_tracer.runtime_init.wall_ms",
    "lambda_tracer.runtime_init.cpu_ms", "lambda_tracer.runtime_init.major_faults",
    "lambda_tracer.runtime_init.minor_faults", "lambda_tracer.runtime_init.read_bytes",
    "lambda_tracer.runtime_init.storage_read_bytes", "lambda_tracer.runtime_init.threads",
    "lambda_tracer.runtime_init.rss_bytes", "lambda_tracer.runtime_init.child_processes",
};

static const struct figure_keys restore_keys = {
    "lambda_tracer.restore", "lambda_tracer.restore.wall_ms", "lambda_tracer.restore.cpu_ms",
    "lambda_tracer.restore.major_faults", "lambda_tracer.restore.minor_faults",
    "lambda_tracer.restore.read_bytes", "lambda_tracer.restore.storage_read_bytes",
    "lambda_tracer.restore.threads", "lambda_tracer.restore.rss_bytes",
    "lambda_tracer.restore.child_processes",
};

/* The runtime's figures over a phase (initwatch) on span rt: the "Runtime
 * init" (or "Restore") subsegment's metadata and its OTLP span's
 * attributes; a figure that could not be read is left out, never
 * guessed.  Restore figures are deltas against the last sample before the
 * snapshot (initwatch_delta). */
static void add_runtime_figures(const struct initwatch_figures *f, const struct figure_keys *k,
                                struct trace_segment *seg, int rt)
{
    char text[2 * TRACE_STRING_MAX]; /* attr_str keeps what fits */

    initwatch_describe(f, text, sizeof(text));
    trace_span_attr_str(seg, rt, "summary", k->summary, TRACE_ATTR_METADATA, text);
    if (f->wall_us >= 0)
        trace_span_attr_int(seg, rt, "wall_ms", k->wall_ms, TRACE_ATTR_METADATA, f->wall_us / 1000);
    if (f->cpu_us >= 0) {
        trace_span_attr_int(seg, rt, "cpu_ms", k->cpu_ms, TRACE_ATTR_METADATA, f->cpu_us / 1000);
        trace_span_attr_int(seg, rt, "major_faults", k->major_faults, TRACE_ATTR_METADATA, f->majflt);
        trace_span_attr_int(seg, rt, "minor_faults", k->minor_faults, TRACE_ATTR_METADATA, f->minflt);
    }
    if (f->rchar >= 0)
        trace_span_attr_int(seg, rt, "read_bytes", k->read_bytes, TRACE_ATTR_METADATA, f->rchar);
    if (f->read_bytes >= 0)
        trace_span_attr_int(seg, rt, "storage_read_bytes", k->storage_read_bytes, TRACE_ATTR_METADATA,
                            f->read_bytes);
    trace_span_attr_int(seg, rt, "threads", k->threads, TRACE_ATTR_METADATA, f->max_threads);
    trace_span_attr_int(seg, rt, "rss_bytes", k->rss_bytes, TRACE_ATTR_METADATA, f->rss_bytes);
    trace_span_attr_int(seg, rt, "child_processes", k->child_processes, TRACE_ATTR_METADATA,
                        f->children_seen);
}

/* A SnapStart restore is detected by whichever comes first: the first
 * INVOKE of a snap-start environment (our /event/next, blocked at the
 * snapshot, returns only after the restore) or the restoreStart record
 * (batched, at least 25 ms late).  Ids drawn from now on come from fresh
 * entropy (main.c bumped already for the INVOKE; once more is harmless),
 * and the watcher samples the runtime again until restoreRuntimeDone. */
static void restore_detected(struct tracer *t)
{
    if (t->restore_detected)
        return;
    t->restore_detected = true;
    ids_restore_epoch_bump();
    initwatch_resume(t->initwatch);
}

/* A sample this much after restoreRuntimeDone still stands for the
 * restore's end (when sampling resumed only as the restore ended): the
 * runtime is then at most starting its first invocation. */
#define RESTORE_LATE_SAMPLE_US 100000

/* restoreRuntimeDone: the runtime's figures over the restore, as deltas
 * against the last sample before the snapshot; sampling stops. */
static void take_restore_figures(struct tracer *t, int64_t done_us)
{
    struct initwatch_figures base, end;

    if (t->initwatch == NULL)
        return;
    if (t->init.restore_seen && !t->restore_anatomy &&
        initwatch_restore_samples(t->initwatch, t->init.restore_start_us, done_us + 1000,
                                  RESTORE_LATE_SAMPLE_US, &base, &end) &&
        initwatch_delta(&base, &end, -1, &t->restore_figures)) {
        t->restore_anatomy = true;
        t->restore_rss_delta_bytes = end.rss_bytes - base.rss_bytes;
        t->restore_threads_delta = (int64_t)end.threads - (int64_t)base.threads;
    }
    initwatch_stop(t->initwatch);
}

/* The restore's figures and hint on the Restore span (restore_span) and
 * its segment; wall time from restoreReport's durationMs only. */
static void add_restore_anatomy(struct tracer *t, struct trace_segment *seg, int restore_span)
{
    struct initwatch_figures f;
    char text[2 * TRACE_STRING_MAX];

    if (!t->restore_anatomy || restore_span < 0)
        return;
    f = t->restore_figures;
    f.wall_us = t->init.restore_reported && t->init.restore_duration_us != TEL_ABSENT
                    ? t->init.restore_duration_us
                    : -1;
    add_runtime_figures(&f, &restore_keys, seg, restore_span);
    trace_span_attr_int(seg, restore_span, "rss_delta_bytes", "lambda_tracer.restore.rss_delta_bytes",
                        TRACE_ATTR_METADATA, t->restore_rss_delta_bytes);
    trace_span_attr_int(seg, restore_span, "threads_delta", "lambda_tracer.restore.threads_delta",
                        TRACE_ATTR_METADATA, t->restore_threads_delta);
    if (initwatch_hint_phase(INITWATCH_PHASE_RESTORE, &f, text, sizeof(text)) != INITWATCH_NONE)
        trace_attr_str(seg, "restore_hint", "lambda_tracer.restore_hint", TRACE_ATTR_ANNOTATION, text);
}

/* Who was ready when, for the Init's segment: ourselves (exact), the
 * runtime and every other extension (initwatch_parties_at: the last sample
 * at or before Init's end in which each was active, an upper bound to
 * within one interval; one still active in the first sample after the end
 * is ready only by the end). */
/* An extension's platform.extension record: its name and events (a record
 * delivered again updates its entry). */
static void note_registered(struct init_info *in, const char *name, unsigned events)
{
    unsigned i;

    if (name == NULL || name[0] == '\0')
        return;
    for (i = 0; i < in->registered_count; i++)
        if (strcmp(in->registered[i].name, name) == 0)
            break;
    if (i == in->registered_count) {
        if (i == INITWATCH_EXT_MAX)
            return;
        trace_copy_str(in->registered[i].name, sizeof(in->registered[i].name), name);
        in->registered_count++;
    }
    in->registered[i].events = events;
}

static bool registered_for_invoke(const struct init_info *in, const char *name)
{
    for (unsigned i = 0; i < in->registered_count; i++)
        if (strcmp(in->registered[i].name, name) == 0)
            return (in->registered[i].events & TEL_EXT_INVOKE) != 0;
    return false;
}

/* What the platform.extension records said: each extension and the events
 * it registered for, e.g. "lambda-tracer: INVOKE, SHUTDOWN; logs: SHUTDOWN". */
static void add_registered(const struct init_info *in, struct trace_segment *seg)
{
    char text[TRACE_STRING_MAX];
    size_t off = 0;

    if (in->registered_count == 0)
        return;
    text[0] = '\0';
    for (unsigned i = 0; i < in->registered_count && off < sizeof(text); i++) {
        unsigned e = in->registered[i].events;
        int k = snprintf(text + off, sizeof(text) - off, "%s%s: %s", i > 0 ? "; " : "", in->registered[i].name,
                         e == (TEL_EXT_INVOKE | TEL_EXT_SHUTDOWN) ? "INVOKE, SHUTDOWN"
                         : e == TEL_EXT_INVOKE                    ? "INVOKE"
                         : e == TEL_EXT_SHUTDOWN                  ? "SHUTDOWN"
                                                                  : "none");
        if (k < 0)
            break;
        off += (size_t)k;
    }
    trace_attr_str(seg, "init_extensions", "lambda_tracer.init.extensions", TRACE_ATTR_METADATA, text);
}

struct ready_party {
    const char *name;
    int64_t ready_us;  /* after initStart: its last activity at or before the end */
    int64_t cpu_us;    /* -1: not shown (ours) */
    bool at_end;       /* active in the sample after the end too */
    bool woken;        /* the runtime, or an extension registered for INVOKE, which the first
                        * invocation had woken by then */
};

static int by_ready(const void *a, const void *b)
{
    const struct ready_party *x = a, *y = b;

    return x->ready_us < y->ready_us ? -1 : x->ready_us > y->ready_us;
}

static const char *unreadable_why(int e)
{
    return e == EACCES || e == EPERM ? "refused"
           : e == ENOENT             ? "absent"
           : e == EPROTO             ? "without figures"
                                     : "unreadable";
}

/* The sentence on who was ready when (init_ready) and on who held Init
 * last (init_held_last, and its clause in *held).  Returns how many other
 * extensions' shares stay unknown: nothing is said of a party that could
 * not be read, and who held Init last only when every party is known and
 * one alone was still active at its end. */
static unsigned add_init_parties(const struct tracer *t, struct trace_segment *seg, bool ours,
                                 int64_t invocation_us, char *held, size_t held_size, bool *ret_runtime_seen)
{
    const struct init_info *in = &t->init;
    struct initwatch_parties ps;
    struct ready_party list[INITWATCH_EXT_MAX + 2];
    char text[2 * TRACE_STRING_MAX], unread[TRACE_STRING_MAX] = "";
    size_t n = 0, off, uoff = 0;
    unsigned others = in->extensions > 0 ? in->extensions - 1 : 0, known = 0, at_end = 0;
    int64_t end = in->start_us + in->duration_us;
    bool runtime_known = false;

    held[0] = '\0';
    *ret_runtime_seen = false;
    /* the end as the records date it, whole ms: up to 1 ms later */
    if (!in->runtime_done || !initwatch_parties_at(t->initwatch, in->runtime_done_us + 1000, &ps) ||
        !ps.end_seen)
        return others;
    if (ours) /* exact: at the end only if it ended Init */
        list[n++] = (struct ready_party){"lambda-tracer", t->first_next_us - in->start_us, -1,
                                         t->first_next_us >= end - INIT_MILESTONE_SLACK_US, false};
    for (uint32_t i = 0; i <= ps.count; i++) {
        const struct initwatch_party *p = i < ps.count ? &ps.ext[i] : &ps.runtime;
        const char *name = i < ps.count ? p->name : "runtime";
        if (i == ps.count && !ps.have_runtime)
            break;
        if (p->unreadable_errno != 0) {
            int k = snprintf(unread + uoff, sizeof(unread) - uoff, "%s%s (schedstat %s)", uoff > 0 ? ", " : "",
                             name, unreadable_why(p->unreadable_errno));
            if (k > 0 && (size_t)k < sizeof(unread) - uoff)
                uoff += (size_t)k;
            continue;
        }
        int64_t ready = p->ready_epoch_us > end            ? end
                        : p->ready_epoch_us < in->start_us ? in->start_us
                                                           : p->ready_epoch_us;
        bool woken = (i == ps.count || registered_for_invoke(in, name)) && invocation_us != TEL_ABSENT &&
                     invocation_us <= ps.end_sample_epoch_us;
        list[n++] = (struct ready_party){name, ready - in->start_us, p->cpu_us, p->active_at_end, woken};
        if (i < ps.count)
            known++;
        else
            runtime_known = true;
    }
    *ret_runtime_seen = runtime_known;
    if (n == 0 && unread[0] == '\0')
        return others;
    /* Init ends when the last party calls next: that call falls in the
     * sample after the end, so the party that held Init last was active
     * there.  One alone (the parties the first invocation had woken left
     * aside: the runtime, the extensions registered for INVOKE; their
     * activity is taken for the invocation's) held it, ready at the end;
     * none but one woken party: that one; none at all: the latest.
     * Several (or several woken): the end's activity may be something
     * else's (a freeze, an event, the invocation), nobody is named. */
    struct ready_party *last = NULL;
    const struct ready_party *woken = NULL;
    unsigned woken_at_end = 0;
    for (size_t i = 0; i < n; i++) {
        if (list[i].at_end && list[i].woken) {
            woken = &list[i];
            woken_at_end++;
        } else if (list[i].at_end) {
            at_end++;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (at_end == 1 ? list[i].at_end && !list[i].woken
            : at_end == 0 && woken_at_end == 1 ? &list[i] == woken
            : at_end == 0 && woken_at_end == 0 ? last == NULL || list[i].ready_us > last->ready_us
                                               : false)
            last = &list[i];
    }
    if (last != NULL && last->at_end)
        last->ready_us = end - in->start_us;
    char last_name[INITWATCH_NAME_BYTES];
    snprintf(last_name, sizeof(last_name), "%s", last != NULL ? last->name : "");
    qsort(list, n, sizeof(list[0]), by_ready);
    off = (size_t)snprintf(text, sizeof(text), "ready after initStart (ms; sampled every %u ms):", ps.interval_ms);
    for (size_t i = 0; i < n && off < sizeof(text); i++) {
        bool held_last = last != NULL && strcmp(list[i].name, last_name) == 0;
        int k = snprintf(text + off, sizeof(text) - off, "%s %s %.0f%s", i > 0 ? "," : "", list[i].name,
                         ms_of(list[i].ready_us),
                         list[i].at_end && !held_last && !(list[i].woken && last != NULL)
                             ? " or later (active at the end)"
                             : "");
        if (k >= 0 && (size_t)k < sizeof(text) - off && list[i].cpu_us >= 0)
            k += snprintf(text + off + k, sizeof(text) - off - (size_t)k, " (%.0f ms CPU)", ms_of(list[i].cpu_us));
        if (k < 0)
            break;
        off += (size_t)k;
    }
    if (unread[0] != '\0' && off < sizeof(text))
        snprintf(text + off, sizeof(text) - off, "; not separable: %s", unread);
    trace_attr_str(seg, "init_ready", "lambda_tracer.init.ready", TRACE_ATTR_METADATA, text);
    /* Who held Init last: only when every party is known. */
    const struct ready_party *before = NULL;
    for (size_t i = 0; last != NULL && i < n; i++)
        if (strcmp(list[i].name, last_name) != 0 && (before == NULL || list[i].ready_us > before->ready_us))
            before = &list[i];
    if (before != NULL && known >= others && runtime_known && unread[0] == '\0') {
        int64_t held_ms = (end - (in->start_us + before->ready_us) + 500) / 1000;
        trace_attr_str(seg, "init_held_last", "lambda_tracer.init.held_last", TRACE_ATTR_ANNOTATION, last_name);
        trace_attr_int(seg, "init_held_last_ms", "lambda_tracer.init.held_last_ms", TRACE_ATTR_METADATA,
                       held_ms);
        snprintf(held, held_size, "; %s held Init %" PRId64 " ms after %s%s was ready", last_name, held_ms,
                 strcmp(before->name, "runtime") == 0 ? "the " : "", before->name);
    }
    return known >= others ? 0 : others - known;
}

static void add_init_anatomy(struct tracer *t, struct trace_segment *seg, int rt, int64_t invocation_us)
{
    const struct init_info *in = &t->init;
    char text[2 * TRACE_STRING_MAX]; /* attr_str keeps what fits */
    int64_t rt_start = runtime_started(t, in);

    if (!in->seen)
        return;
    if (in->anatomy) {
        /* On the Runtime init subsegment; on the Init's segment when that
         * subsegment could not be placed (its start unknown). */
        add_runtime_figures(&in->figures, &init_keys, seg, rt);
        /* With other extensions, initRuntimeDone is dated when the last
         * extension is ready (Lambda emits it then): the runtime's idle
         * time may be a wait for them, so only the busy rules speak. */
        enum initwatch_rule rule = initwatch_hint(&in->figures, text, sizeof(text));
        if (rule != INITWATCH_NONE &&
            (in->extensions <= 1 || rule == INITWATCH_LOADING || rule == INITWATCH_COMPUTING ||
             rule == INITWATCH_CPU))
            trace_attr_str(seg, "init_hint", "lambda_tracer.init_hint", TRACE_ATTR_ANNOTATION, text);
    }
    /* Extensions against the runtime.  Lambda starts the runtime once the
     * last extension registered and ends Init once the runtime and every
     * extension called next: before the runtime started and after it was
     * done, Init waited on extensions. */
    char held[TRACE_STRING_MAX] = "";
    bool runtime_seen = false;
    unsigned unknown = in->extensions > 0 ? in->extensions - 1 : 0;
    bool ours_in = in->reported && in->duration_us != TEL_ABSENT && t->first_next_us > in->start_us &&
                   t->first_next_us <= in->start_us + in->duration_us + INIT_MILESTONE_SLACK_US;
    if (in->reported && in->duration_us != TEL_ABSENT)
        unknown = add_init_parties(t, seg, ours_in, invocation_us, held, sizeof(held), &runtime_seen);
    add_registered(in, seg);
    if (in->reported && in->duration_us != TEL_ABSENT && rt_start != TEL_ABSENT) {
        int64_t end = in->start_us + in->duration_us;
        int64_t before = rt_start - in->start_us;
        int64_t after = end > in->runtime_done_us ? end - in->runtime_done_us : 0;
        int64_t runtime = in->runtime_done_us - rt_start;
        bool ours = t->first_next_us > in->start_us && t->first_next_us <= end + INIT_MILESTONE_SLACK_US;
        int64_t our_before = ours && t->registered_us > in->start_us
                                 ? (t->registered_us < rt_start ? t->registered_us : rt_start) - in->start_us
                                 : 0;
        int64_t our_after = ours && t->first_next_us > in->runtime_done_us
                                ? (t->first_next_us < end ? t->first_next_us : end) - in->runtime_done_us
                                : 0;
        unsigned others = in->extensions > 0 ? in->extensions - 1 : 0;
        /* Only we are an extension: Init ends when the runtime or we are
         * done, whichever is later, and we know when we were.  Otherwise the
         * extensions' figure is a lower bound and the runtime's an upper. */
        bool exact = ours && others == 0;
        int64_t init_ms = ms_rounded(in->duration_us), before_ms = ms_rounded(before);
        int64_t ext_ms = ms_rounded(exact ? before + after : before);
        int64_t rest_ms = ms_rounded(runtime + after);
        trace_attr_int(seg, "init_extensions_ms", "lambda_tracer.init.extensions_ms", TRACE_ATTR_METADATA,
                 ext_ms);
        trace_attr_int(seg, "init_runtime_ms", "lambda_tracer.init.runtime_ms", TRACE_ATTR_METADATA,
                 exact ? ms_rounded(runtime) : rest_ms);
        trace_attr_bool(seg, "init_split_exact", "lambda_tracer.init.split_exact", TRACE_ATTR_METADATA,
                  exact);
        if (exact)
            snprintf(text, sizeof(text),
                     "Init %" PRId64 " ms: extensions %" PRId64 " ms (all lambda-tracer: %" PRId64
                     " ms registering, %" PRId64 " ms after the runtime), runtime %" PRId64 " ms",
                     init_ms, ext_ms, before_ms, ms_rounded(after), ms_rounded(runtime));
        else if (ours && unknown == 0)
            snprintf(text, sizeof(text),
                     "Init %" PRId64 " ms: extensions %" PRId64 " ms before the runtime started "
                     "(lambda-tracer %" PRId64 " ms, %u other%s), then runtime and extensions %" PRId64
                     " ms%s",
                     init_ms, before_ms, ms_rounded(our_before), others, others == 1 ? "" : "s",
                     rest_ms, held);
        else if (ours)
            snprintf(text, sizeof(text),
                     "Init %" PRId64 " ms: extensions %" PRId64 " ms before the runtime started "
                     "(lambda-tracer %" PRId64 " ms, %u other%s not separable), then runtime and "
                     "extensions %" PRId64 " ms%s",
                     init_ms, before_ms, ms_rounded(our_before), unknown, unknown == 1 ? "" : "s",
                     rest_ms, runtime_seen ? "" : " (the runtime's own end is not visible)");
        else
            snprintf(text, sizeof(text),
                     "Init %" PRId64 " ms: extensions %" PRId64 " ms before the runtime started, then "
                     "runtime and extensions %" PRId64 " ms (not separable)",
                     init_ms, before_ms, rest_ms);
        trace_attr_str(seg, "init_split", "lambda_tracer.init.split", TRACE_ATTR_METADATA, text);
        if (ours)
            trace_attr_int(seg, "init_lambda_tracer_ms", "lambda_tracer.init.lambda_tracer_ms",
                     TRACE_ATTR_METADATA, ms_rounded(our_before + our_after));
    }
}

/* The failure, told apart: flags and a cause whose type and message say
 * what happened.  See the README's failure table. */
static void set_outcome(struct tracer *t, const struct invocation *inv, struct trace_segment *seg,
                        int64_t start_us)
{
    enum tel_status status = inv->have_report ? inv->report_status
                             : inv->have_done ? inv->done_status
                                              : TEL_STATUS_NONE;
    const char *error_type = inv->have_report && inv->report_error[0] ? inv->report_error
                             : inv->have_done && inv->done_error[0]   ? inv->done_error
                                                                      : NULL;
    const char *status_name;
    char message[256];

    (void)t;
    message[0] = '\0';
    if (status == TEL_STATUS_NONE && inv->shutdown_closed) {
        /* The sandbox was reset before any record said how it ended. */
        if (inv->shutdown_reason == EXT_SHUTDOWN_TIMEOUT)
            status = TEL_STATUS_TIMEOUT;
        else if (inv->shutdown_reason == EXT_SHUTDOWN_FAILURE)
            status = TEL_STATUS_FAILURE;
    }
    status_name = status == TEL_STATUS_NONE ? (inv->shutdown_closed ? "unknown" : "in_progress")
                                            : tel_status_name(status);
    trace_attr_str(seg, "status", "aws.lambda.status", TRACE_ATTR_ANNOTATION, status_name);

    if (status == TEL_STATUS_SUCCESS || status == TEL_STATUS_NONE)
        return;
    if (status == TEL_STATUS_TIMEOUT) {
        /* The function timeout: deadline minus start; without an INVOKE
         * (Managed Instances) the report's duration, which a timeout fills. */
        double timeout_s = inv->deadline_ms > 0 ? (double)(inv->deadline_ms * 1000 - start_us) / 1e6
                           : inv->have_report && inv->report_duration_us != TEL_ABSENT
                               ? (double)inv->report_duration_us / 1e6
                               : 0;
        seg->fault = true;
        trace_copy_str(seg->cause_type, sizeof(seg->cause_type),
                 error_type != NULL ? error_type : "Sandbox.Timedout");
        if (timeout_s > 0)
            snprintf(message, sizeof(message), "Task timed out after %.2f seconds", timeout_s);
        else
            snprintf(message, sizeof(message), "Task timed out");
    } else if ((error_type != NULL && strcmp(error_type, "Runtime.OutOfMemory") == 0) ||
               (inv->max_memory_mb != TEL_ABSENT && inv->memory_mb != TEL_ABSENT &&
                inv->max_memory_mb >= inv->memory_mb)) {
        seg->fault = true;
        trace_copy_str(seg->cause_type, sizeof(seg->cause_type), "Runtime.OutOfMemory");
        if (inv->max_memory_mb != TEL_ABSENT && inv->memory_mb != TEL_ABSENT)
            snprintf(message, sizeof(message), "Out of memory: %" PRId64 " MB used of %" PRId64 " MB",
                     inv->max_memory_mb, inv->memory_mb);
        else
            snprintf(message, sizeof(message), "Out of memory");
    } else if (error_type != NULL && strncmp(error_type, "Extension.", 10) == 0) {
        seg->fault = true;
        trace_copy_str(seg->cause_type, sizeof(seg->cause_type), error_type);
        snprintf(message, sizeof(message), "An extension failed (%s)", error_type);
    } else if (error_type != NULL && strcmp(error_type, "Runtime.ExitError") == 0) {
        seg->fault = true;
        trace_copy_str(seg->cause_type, sizeof(seg->cause_type), error_type);
        snprintf(message, sizeof(message), "The runtime exited before completing the invocation");
    } else if (status == TEL_STATUS_FAILURE || (error_type != NULL && strncmp(error_type, "Sandbox.", 8) == 0)) {
        seg->fault = true;
        trace_copy_str(seg->cause_type, sizeof(seg->cause_type),
                 error_type != NULL ? error_type : "Sandbox.Failure");
        if (inv->recovered && !inv->have_report && !inv->have_done)
            snprintf(message, sizeof(message),
                     "The extension was reset before it learned how the invocation ended");
        else
            snprintf(message, sizeof(message), "The execution environment failed%s",
                     inv->shutdown_closed && !inv->have_done ? " and was reset" : "");
    } else {
        /* The function reported an error (/invocation/{id}/error). */
        seg->error = true;
        trace_copy_str(seg->cause_type, sizeof(seg->cause_type),
                 error_type != NULL ? error_type : "Function.Unknown");
        snprintf(message, sizeof(message), "The function returned an error (%s)", seg->cause_type);
    }
    if (inv->log_tail != NULL)
        snprintf(seg->cause_message, sizeof(seg->cause_message), "%s\nLast function log lines:\n%s",
                 message, inv->log_tail);
    else
        trace_copy_str(seg->cause_message, sizeof(seg->cause_message), message);
    if (ids_new_span_id(seg->cause_id) < 0)
        seg->cause_id[0] = '\0';
    trace_attr_str(seg, "error_type", "error.type", TRACE_ATTR_ANNOTATION, seg->cause_type);
}

/* Whether inv is the cold start: the first invocation of this process that
 * began at or after this process's own Init (a reset starts a new process,
 * a restore continues this one).  Records of an earlier request, still
 * undelivered when the previous process was reset, may reach this process
 * first: they began before its Init and are not the cold start.  Without
 * any Init record, the first invocation whose INVOKE we received is.
 * Decided once: as soon as it starts when the Init is known (so with
 * concurrent invocations the first to start wins), else when it is first
 * built. */
static void resolve_cold(struct tracer *t, struct invocation *inv, bool must_decide)
{
    int64_t start = inv->have_start ? inv->start_us : inv->invoke_us;

    if (inv->cold_resolved || (!must_decide && !t->init.seen))
        return;
    inv->cold_resolved = true;
    if (t->cold_taken)
        return;
    if (t->init.seen ? (inv->have_start || inv->have_invoke) && start >= t->init.start_us
                     : inv->have_invoke) {
        inv->cold = true;
        t->cold_taken = true;
    }
}

/* --- cost and metrics ------------------------------------------------------ */

static double us_to_ms(int64_t us)
{
    return us == TEL_ABSENT ? -1 : (double)us / 1000.0;
}

/* After the response: runtime's next to the last extension's next (the
 * report's extensionOverhead span, else the report's duration minus the
 * runtime's).  -1 unknown. */
static double after_response_ms(const struct invocation *inv)
{
    if (inv->extension_overhead.set && inv->extension_overhead.duration_us != TEL_ABSENT)
        return us_to_ms(inv->extension_overhead.duration_us);
    if (inv->have_report && inv->have_done && inv->report_duration_us != TEL_ABSENT &&
        inv->done_duration_us != TEL_ABSENT && inv->report_duration_us > inv->done_duration_us)
        return us_to_ms(inv->report_duration_us - inv->done_duration_us);
    return -1;
}

/* Of that, ours: our /next after the runtime's (runtimeDone). -1 unknown. */
static double own_held_ms(const struct invocation *inv)
{
    if (inv->released_us <= 0 || !inv->have_done)
        return -1;
    return inv->released_us > inv->done_us ? (double)(inv->released_us - inv->done_us) / 1000.0 : 0;
}

/* The invocation's cost, from its report; false without one (or without
 * a price). */
static bool cost_of(const struct tracer *t, const struct invocation *inv, struct cost_split *ret)
{
    const struct cost_input in = {
        .billed_ms = inv->have_report && inv->billed_ms != TEL_ABSENT ? inv->billed_ms : -1,
        .memory_mb = inv->memory_mb != TEL_ABSENT ? inv->memory_mb : t->memory_size_mb,
        .duration_ms = inv->have_report ? us_to_ms(inv->report_duration_us) : -1,
        .init_duration_ms = us_to_ms(inv->init_duration_us),
        .after_response_ms = after_response_ms(inv),
        .own_after_response_ms = own_held_ms(inv),
    };

    if (t->price.gb_s_usd <= 0 && t->price.request_usd <= 0)
        return false;
    return cost_split_report(&t->price, &in, ret);
}

static void add_cost_attrs(const struct tracer *t, const struct invocation *inv, struct trace_segment *seg)
{
    struct cost_split c;

    if (t->price.gb_s_usd > 0 || t->price.request_usd > 0) {
        if (!cost_of(t, inv, &c))
            return;
        trace_attr_int(seg, "billed_ms", "lambda_tracer.billed_ms", TRACE_ATTR_ANNOTATION, c.billed_ms);
        trace_attr_double(seg, "cost_usd", "lambda_tracer.cost_usd", TRACE_ATTR_ANNOTATION, c.usd);
        trace_attr_double(seg, "cost_gb_s", "lambda_tracer.cost.gb_s", TRACE_ATTR_METADATA, c.gb_s);
        trace_attr_int(seg, "cost_init_billed_ms", "lambda_tracer.cost.init_billed_ms", TRACE_ATTR_METADATA,
                 c.init_billed_ms);
        trace_attr_double(seg, "cost_init_usd", "lambda_tracer.cost.init_usd", TRACE_ATTR_METADATA, c.init_usd);
        trace_attr_double(seg, "cost_invoke_usd", "lambda_tracer.cost.invoke_usd", TRACE_ATTR_METADATA,
                    c.invoke_usd);
        trace_attr_int(seg, "cost_after_response_billed_ms", "lambda_tracer.cost.after_response_billed_ms",
                 TRACE_ATTR_METADATA, c.after_billed_ms);
        trace_attr_double(seg, "cost_after_response_usd", "lambda_tracer.cost.after_response_usd",
                    TRACE_ATTR_METADATA, c.after_usd);
        trace_attr_int(seg, "cost_tracer_billed_ms", "lambda_tracer.cost.tracer_billed_ms", TRACE_ATTR_METADATA,
                 c.own_billed_ms);
        trace_attr_double(seg, "cost_tracer_usd", "lambda_tracer.cost.tracer_usd", TRACE_ATTR_METADATA,
                    c.own_usd);
        trace_attr_double(seg, "cost_price_gb_s_usd", "lambda_tracer.cost.price_gb_s_usd", TRACE_ATTR_METADATA,
                    t->price.gb_s_usd);
    }
    if (inv->own_cpu_us >= 0)
        trace_attr_double(seg, "tracer_cpu_ms", "lambda_tracer.cpu_ms", TRACE_ATTR_METADATA,
                    (double)inv->own_cpu_us / 1000.0);
}

static enum emf_outcome emf_outcome_of(enum sampling_outcome o)
{
    switch (o) {
    case SAMPLING_OUTCOME_TIMEOUT:
        return EMF_OUTCOME_TIMEOUT;
    case SAMPLING_OUTCOME_OUT_OF_MEMORY:
        return EMF_OUTCOME_OOM;
    case SAMPLING_OUTCOME_CRASH:
        return EMF_OUTCOME_CRASH;
    case SAMPLING_OUTCOME_PLATFORM_FAILURE:
        return EMF_OUTCOME_FAILURE;
    case SAMPLING_OUTCOME_FUNCTION_ERROR:
        return EMF_OUTCOME_ERROR;
    default:
        return EMF_OUTCOME_SUCCESS;
    }
}

static enum sampling_outcome outcome_of(const struct invocation *inv, bool timing_out);

/* Hands the complete invocation to the metrics. */
static bool init_failed(const struct init_info *in);

static void observe(struct tracer *t, const struct invocation *inv)
{
    struct emf_sample s = {.time_ms = (inv->have_report ? inv->report_us
                                       : inv->have_start ? inv->start_us
                                                         : inv->invoke_us) / 1000,
                           .cold = inv->cold,
                           .outcome = emf_outcome_of(outcome_of(inv, false)),
                           .init_ms = -1, .init_runtime_ms = -1, .init_tracer_ms = -1,
                           .duration_ms = inv->have_report ? us_to_ms(inv->report_duration_us) : -1,
                           .billed_ms = inv->have_report && inv->billed_ms != TEL_ABSENT ? inv->billed_ms : -1,
                           .memory_used_mb = inv->max_memory_mb != TEL_ABSENT ? inv->max_memory_mb : -1,
                           .memory_size_mb = inv->memory_mb != TEL_ABSENT ? inv->memory_mb : t->memory_size_mb,
                           .cost_usd = -1, .tracer_held_ms = own_held_ms(inv),
                           .tracer_cpu_ms = inv->own_cpu_us >= 0 ? (double)inv->own_cpu_us / 1000.0 : -1,
                           .tracer_cost_usd = -1,
                           .tenant_id = inv->tenant_id};
    struct cost_split c;
    const struct init_info *in = &t->init;

    if (t->observe == NULL)
        return;
    if (inv->cold && in->seen) {
        int64_t end = in->reported && in->duration_us != TEL_ABSENT ? in->start_us + in->duration_us
                                                                      : TEL_ABSENT;
        s.init_ms = in->reported ? us_to_ms(in->duration_us) : us_to_ms(inv->init_duration_us);
        if (end != TEL_ABSENT && t->first_next_us > in->start_us &&
            t->first_next_us <= end + INIT_MILESTONE_SLACK_US) {
            s.init_tracer_ms = (double)(t->first_next_us - in->start_us) / 1000.0;
            if (in->extensions <= 1 && in->runtime_done && t->registered_us > in->start_us &&
                in->runtime_done_us >= t->registered_us)
                s.init_runtime_ms = (double)(in->runtime_done_us - t->registered_us) / 1000.0;
        }
    }
    /* A failed Init the invocation waited for (phase invoke) is counted
     * with it; one in phase init is counted alone (emit_init_failure). */
    s.init_failed = inv->cold && in->seen && in->phase == TEL_PHASE_INVOKE && init_failed(in);
    if (cost_of(t, inv, &c)) {
        s.cost_usd = c.usd;
        s.tracer_cost_usd = c.own_usd;
    }
    t->observe(&s, t->ctx);
}

static int64_t init_end(const struct init_info *in)
{
    return in->reported && in->duration_us != TEL_ABSENT ? in->start_us + in->duration_us
           : in->runtime_done                            ? in->runtime_done_us
                                                         : TRACE_NO_END;
}

/* Whether this cold invocation's Init ran long before it (provisioned
 * concurrency, a SnapStart snapshot, or a gap over INIT_DETACH_GAP_US):
 * its caller did not wait for it.  A suppressed Init (phase invoke) is
 * always waited for. */
static bool init_detached(const struct tracer *t, const struct invocation *inv, int64_t start)
{
    const struct init_info *in = &t->init;
    int64_t end = init_end(in);

    if (!inv->cold || !in->seen || in->phase == TEL_PHASE_INVOKE)
        return false;
    if (in->type == TEL_INIT_TYPE_PROVISIONED || in->type == TEL_INIT_TYPE_SNAP_START ||
        in->type == TEL_INIT_TYPE_MANAGED)
        return true;
    return end != TRACE_NO_END && start - end > INIT_DETACH_GAP_US;
}

/* A detached Init (init_detached) as a segment of its own in the
 * invocation's trace, a sibling of the invocation's segment (same trace
 * and upstream parent), emitted just before it. */
static void emit_detached_init(struct tracer *t, const struct invocation *inv)
{
    struct trace_segment *seg = &t->seg;
    const struct init_info *in = &t->init;
    int64_t end = init_end(in);

    trace_segment_clear(seg);
    seg->kind = TRACE_SEGMENT_INIT;
    if (ids_new_span_id(seg->id) < 0)
        return;
    trace_copy_str(seg->trace_id, sizeof(seg->trace_id), inv->trace_id);
    trace_copy_str(seg->parent_id, sizeof(seg->parent_id), inv->parent_id);
    seg->sampled = true;
    trace_copy_str(seg->name, sizeof(seg->name), t->segment_name);
    trace_copy_str(seg->origin, sizeof(seg->origin), "AWS::Lambda::Function");
    trace_copy_str(seg->function_version, sizeof(seg->function_version),
                   inv->version[0] ? inv->version : t->function_version);
    trace_copy_str(seg->account_id, sizeof(seg->account_id), t->account_id);
    seg->start_us = in->start_us;
    seg->end_us = end != TRACE_NO_END ? end : in->start_us;
    add_init_anatomy(t, seg, add_init_spans(t, seg), TEL_ABSENT);
    trace_attr_bool(seg, "cold_start", "faas.coldstart", TRACE_ATTR_ANNOTATION, true);
    trace_attr_str(seg, "init_type", "aws.lambda.init_type", TRACE_ATTR_ANNOTATION, init_type_name(in->type));
    trace_attr_str(seg, "init_for_request_id", "aws.lambda.init_for_request_id", TRACE_ATTR_ANNOTATION,
                   inv->request_id);
    trace_attr_str(seg, NULL, "faas.trigger", TRACE_ATTR_ANNOTATION, "other");
    trace_attr_str(seg, "sampled_by", "lambda_tracer.sampled_by", TRACE_ATTR_ANNOTATION,
                   sampling_reason_name(inv->kept_by));
    trace_segment_contain(seg);
    t->stats.segments++;
    if (t->emit != NULL)
        t->emit(seg, true, t->ctx);
}

static void build(struct tracer *t, struct invocation *inv, struct trace_segment *seg, int64_t now_us,
                  bool final, bool timing_out)
{
    bool suppressed;
    int64_t start = inv->have_start ? inv->start_us : inv->have_invoke ? inv->invoke_us : now_us;
    int64_t end = TRACE_NO_END;

    resolve_cold(t, inv, true);
    suppressed = inv->cold && t->init.seen && t->init.phase == TEL_PHASE_INVOKE;
    if (suppressed)
        start = t->init.start_us;
    /* A report longer than platform.start-to-report: the invocation began
     * earlier (a retried Init we did not see); its end is the report's. */
    else if (final && inv->have_report && inv->report_duration_us != TEL_ABSENT &&
             start + inv->report_duration_us > inv->report_us + 1000)
        start = inv->report_us - inv->report_duration_us;
    ensure_ids(inv, start);
    trace_segment_clear(seg);
    seg->kind = TRACE_SEGMENT_INVOCATION;
    trace_copy_str(seg->trace_id, sizeof(seg->trace_id), inv->trace_id);
    trace_copy_str(seg->id, sizeof(seg->id), inv->segment_id);
    trace_copy_str(seg->parent_id, sizeof(seg->parent_id), inv->parent_id);
    if (inv->parent_id[0] != '\0')
        trace_copy_str(seg->runtime_parent_id, sizeof(seg->runtime_parent_id), inv->runtime_parent_id);
    seg->sampled = true; /* built only to be exported */
    trace_copy_str(seg->name, sizeof(seg->name), t->segment_name);
    trace_copy_str(seg->origin, sizeof(seg->origin), "AWS::Lambda::Function");
    trace_copy_str(seg->request_id, sizeof(seg->request_id), inv->request_id);
    trace_copy_str(seg->function_arn, sizeof(seg->function_arn), inv->arn);
    trace_copy_str(seg->function_version, sizeof(seg->function_version),
             inv->version[0] ? inv->version : t->function_version);
    trace_copy_str(seg->account_id, sizeof(seg->account_id), t->account_id);
    seg->start_us = start;

    if (final) {
        if (inv->have_report && inv->report_duration_us != TEL_ABSENT)
            end = start + inv->report_duration_us;
        else if (span_end(&inv->runtime_overhead) != TEL_ABSENT)
            end = span_end(&inv->runtime_overhead);
        else if (inv->have_done)
            end = inv->done_us;
        else if (inv->shutdown_closed)
            end = inv->shutdown_us;
        else
            end = now_us;
        if (end < start)
            end = start;
    }
    seg->end_us = end;

    /* Subsegments.  An Init the caller waited for (on demand, just before
     * this invocation) and a SnapStart restore widen the segment to start
     * with them; an Init that ran long before is a segment of its own
     * (emit_detached_init), never a child starting before its parent. */
    if (inv->cold && !init_detached(t, inv, start)) {
        add_init_anatomy(t, seg, add_init_spans(t, seg),
                         inv->have_start ? inv->start_us : inv->have_invoke ? inv->invoke_us : TEL_ABSENT);
        if (t->init.seen && t->init.start_us < seg->start_us)
            seg->start_us = t->init.start_us;
    }
    if (t->init.restore_seen && inv->cold) {
        int r = add_span(seg, -1, "Restore", t->init.restore_start_us,
                         t->init.restore_reported && t->init.restore_duration_us != TEL_ABSENT
                             ? t->init.restore_start_us + t->init.restore_duration_us
                             : TRACE_NO_END);
        add_restore_anatomy(t, seg, r);
        if (t->init.restore_start_us < seg->start_us)
            seg->start_us = t->init.restore_start_us;
    }
    if (inv->have_start || inv->have_invoke) {
        int64_t invocation_start = inv->have_start ? inv->start_us : inv->invoke_us;
        int64_t invocation_end = span_end(&inv->latency);
        if (invocation_end == TEL_ABSENT)
            invocation_end = inv->have_done ? inv->done_us : final ? end : TRACE_NO_END;
        int i = add_span(seg, -1, "Invocation", invocation_start, invocation_end);
        if (i >= 0 && final && !inv->have_done)
            seg->spans[i].fault = inv->shutdown_closed;
    }
    if (inv->response.set)
        add_span(seg, -1, "Response", inv->response.start_us, span_end(&inv->response));
    if (inv->runtime_overhead.set) {
        int64_t o_end = span_end(&inv->extension_overhead);
        if (o_end == TEL_ABSENT || o_end < span_end(&inv->runtime_overhead))
            o_end = span_end(&inv->runtime_overhead);
        int overhead = add_span(seg, -1, "Overhead", inv->runtime_overhead.start_us, o_end);
        if (overhead >= 0) {
            add_span(seg, overhead, "Runtime overhead", inv->runtime_overhead.start_us,
                     span_end(&inv->runtime_overhead));
            if (inv->extension_overhead.set)
                add_span(seg, overhead, "Extension overhead", inv->extension_overhead.start_us,
                         span_end(&inv->extension_overhead));
        }
    }

    /* Annotations: filterable in X-Ray (keys [A-Za-z0-9_]). */
    trace_attr_bool(seg, "cold_start", "faas.coldstart", TRACE_ATTR_ANNOTATION, inv->cold);
    trace_attr_str(seg, NULL, "faas.invocation_id", TRACE_ATTR_ANNOTATION, inv->request_id);
    trace_attr_str(seg, NULL, "faas.trigger", TRACE_ATTR_ANNOTATION, "other");
    if (inv->arn[0])
        trace_attr_str(seg, NULL, "aws.lambda.invoked_arn", TRACE_ATTR_ANNOTATION, inv->arn);
    if (t->init.seen)
        trace_attr_str(seg, "init_type", "aws.lambda.init_type", TRACE_ATTR_ANNOTATION,
                 init_type_name(t->init.type));
    if (inv->memory_mb != TEL_ABSENT || t->memory_size_mb > 0)
        trace_attr_int(seg, "memory_size_mb", "aws.lambda.memory_size_mb", TRACE_ATTR_ANNOTATION,
                 inv->memory_mb != TEL_ABSENT ? inv->memory_mb : t->memory_size_mb);
    if (inv->max_memory_mb != TEL_ABSENT)
        trace_attr_int(seg, "max_memory_used_mb", "aws.lambda.max_memory_used_mb", TRACE_ATTR_ANNOTATION,
                 inv->max_memory_mb);
    /* The report's duration: the segment may be wider (it starts with an
     * Init or restore the caller waited for). */
    if (final && inv->have_report && inv->report_duration_us != TEL_ABSENT)
        trace_attr_double(seg, "duration_ms", "aws.lambda.duration_ms", TRACE_ATTR_ANNOTATION,
                          (double)inv->report_duration_us / 1000.0);
    if (inv->billed_ms != TEL_ABSENT)
        trace_attr_int(seg, "billed_duration_ms", "aws.lambda.billed_duration_ms", TRACE_ATTR_ANNOTATION,
                 inv->billed_ms);
    if (inv->tenant_id[0])
        trace_attr_str(seg, "tenant_id", "aws.lambda.tenant_id", TRACE_ATTR_ANNOTATION, inv->tenant_id);
    if (t->durable)
        trace_attr_bool(seg, "durable_function", "aws.lambda.durable_function", TRACE_ATTR_ANNOTATION, true);
    if (final)
        add_cost_attrs(t, inv, seg);
    if (timing_out)
        trace_attr_bool(seg, "timing_out", "aws.lambda.timing_out", TRACE_ATTR_ANNOTATION, true);
    trace_attr_str(seg, "sampled_by", "lambda_tracer.sampled_by", TRACE_ATTR_ANNOTATION,
             sampling_reason_name(inv->kept_by));
    set_outcome(t, inv, seg, start);

    /* Metadata: what the annotations cannot say. */
    if (inv->cold && t->init.seen && !suppressed && t->init.reported &&
        t->init.duration_us != TEL_ABSENT) {
        int64_t gap_ms = (start - (t->init.start_us + t->init.duration_us)) / 1000;
        if (gap_ms > 0)
            trace_attr_int(seg, "init_to_invoke_gap_ms", "aws.lambda.init_to_invoke_gap_ms",
                     TRACE_ATTR_METADATA, gap_ms);
    }
    if (inv->have_hdr && inv->hdr.sampled == XRAY_SAMPLED_NO && inv->hdr.parent[0] != '\0' &&
        !inv->recovered)
        trace_attr_str(seg, "upstream_parent_id", "lambda_tracer.upstream_parent_id", TRACE_ATTR_METADATA,
                 inv->hdr.parent);
    if (inv->recovered)
        trace_attr_bool(seg, "recovered_after_reset", "aws.lambda.recovered_after_reset", TRACE_ATTR_METADATA,
                  true);
    else if (inv->shutdown_closed && !inv->have_report)
        trace_attr_str(seg, "closed_by_shutdown", "aws.lambda.closed_by_shutdown", TRACE_ATTR_METADATA,
                 ext_shutdown_reason_name(inv->shutdown_reason));
    if (t->evicted_pending > 0)
        trace_attr_int(seg, "evicted_invocations", "aws.lambda.evicted_invocations", TRACE_ATTR_METADATA,
                 (int64_t)t->evicted_pending);
    if (t->lost_pending > 0 || t->stats.telemetry_dropped_records > 0) {
        trace_attr_int(seg, "telemetry_lost_batches", "aws.lambda.telemetry_lost_batches",
                 TRACE_ATTR_METADATA, (int64_t)t->lost_pending);
        trace_attr_int(seg, "telemetry_dropped_records", "aws.lambda.telemetry_dropped_records",
                 TRACE_ATTR_METADATA, (int64_t)t->stats.telemetry_dropped_records);
    }
    trace_segment_contain(seg);
}

/* The invocation's outcome as far as known now, told apart as set_outcome
 * does; timing_out: it is about to time out. */
static enum sampling_outcome outcome_of(const struct invocation *inv, bool timing_out)
{
    enum tel_status status = inv->have_report ? inv->report_status
                             : inv->have_done ? inv->done_status
                                              : TEL_STATUS_NONE;
    const char *error_type = inv->have_report && inv->report_error[0] ? inv->report_error
                             : inv->have_done && inv->done_error[0]   ? inv->done_error
                                                                      : "";

    if (status == TEL_STATUS_NONE)
        return timing_out ? SAMPLING_OUTCOME_TIMEOUT
               : !inv->shutdown_closed ? SAMPLING_OUTCOME_IN_PROGRESS
               : inv->shutdown_reason == EXT_SHUTDOWN_TIMEOUT ? SAMPLING_OUTCOME_TIMEOUT
                                                              : SAMPLING_OUTCOME_PLATFORM_FAILURE;
    if (status == TEL_STATUS_SUCCESS)
        return timing_out ? SAMPLING_OUTCOME_TIMEOUT : SAMPLING_OUTCOME_SUCCESS;
    if (status == TEL_STATUS_TIMEOUT)
        return SAMPLING_OUTCOME_TIMEOUT;
    if (strcmp(error_type, "Runtime.OutOfMemory") == 0 ||
        (inv->max_memory_mb != TEL_ABSENT && inv->memory_mb != TEL_ABSENT && inv->max_memory_mb >= inv->memory_mb))
        return SAMPLING_OUTCOME_OUT_OF_MEMORY;
    if (strcmp(error_type, "Runtime.ExitError") == 0)
        return SAMPLING_OUTCOME_CRASH;
    if (status == TEL_STATUS_FAILURE || strncmp(error_type, "Extension.", 10) == 0 ||
        strncmp(error_type, "Sandbox.", 8) == 0)
        return SAMPLING_OUTCOME_PLATFORM_FAILURE;
    return SAMPLING_OUTCOME_FUNCTION_ERROR;
}

/* Whether the version about to be made is exported, and why (SAMPLING_DROP:
 * not).  The reason is the first that applies now; a reservoir/ratio draw
 * is made at most once per invocation, and once a version went out every
 * later one follows (X-Ray keeps an in-progress segment forever unless its
 * complete version comes), under the new reason if there is one. */
static enum sampling_reason decide(struct tracer *t, struct invocation *inv, int64_t now_us,
                                   bool timing_out)
{
    int64_t start = inv->have_start ? inv->start_us : inv->have_invoke ? inv->invoke_us : TEL_ABSENT;
    struct sampling_input in = {.duration_us = -1};
    enum sampling_reason reason;

    resolve_cold(t, inv, true);
    in.outcome = outcome_of(inv, timing_out);
    in.cold_start = inv->cold;
    in.header = inv->have_hdr ? inv->hdr.sampled
                : inv->recovered ? (inv->sampled ? XRAY_SAMPLED_YES : XRAY_SAMPLED_NO)
                                 : XRAY_SAMPLED_UNKNOWN;
    if (start != TEL_ABSENT) {
        in.slow_threshold_us = sampling_slow_threshold_us(t->slow_ms, start, inv->deadline_ms);
        if (inv->have_report && inv->report_duration_us != TEL_ABSENT)
            in.duration_us = inv->report_duration_us;
        else if (inv->have_done)
            in.duration_us = inv->done_duration_us != TEL_ABSENT ? inv->done_duration_us : inv->done_us - start;
        else if (inv->shutdown_closed)
            in.duration_us = inv->shutdown_us - start;
        else
            in.duration_us = now_us - start;
    }
    reason = sampling_reason(t->sampling, &in);
    if ((reason == SAMPLING_DROP || reason == SAMPLING_DRAW) && inv->kept_by != SAMPLING_DROP)
        reason = inv->kept_by;
    else if (reason == SAMPLING_DRAW) {
        if (!inv->drawn) {
            inv->drawn = true;
            inv->draw = sampling_draw(&t->reservoir, start != TEL_ABSENT ? start : now_us,
                                      sampling_trace_id_draw(inv->trace_id), SAMPLING_RATIO_PPM);
        }
        reason = inv->draw;
    }
    if (reason != SAMPLING_DROP)
        inv->kept_by = reason;
    return reason;
}

static void finish(struct tracer *t, struct invocation *inv, int64_t now_us)
{
    enum sampling_reason reason;

    if (inv->state != INV_OPEN)
        return;
    inv->state = INV_DONE;
    remember_done(t, inv->request_id);
    ensure_ids(inv, inv->have_start ? inv->start_us : now_us);
    reason = decide(t, inv, now_us, false);
    observe(t, inv);
    if (reason == SAMPLING_DROP) {
        if (t->stats.dropped++ == 0)
            trace_copy_str(t->stats.first_dropped, sizeof(t->stats.first_dropped), inv->request_id);
        if (t->forget != NULL)
            t->forget(inv->request_id, t->ctx);
        return;
    }
    t->stats.kept[reason]++;
    resolve_cold(t, inv, true);
    if (init_detached(t, inv, inv->have_start ? inv->start_us : inv->have_invoke ? inv->invoke_us : now_us))
        emit_detached_init(t, inv);
    build(t, inv, &t->seg, now_us, true, false);
    t->stats.segments++;
    t->lost_pending = 0;
    t->evicted_pending = 0;
    if (t->emit != NULL)
        t->emit(&t->seg, true, t->ctx);
}

/* --- inputs ---------------------------------------------------------------- */

bool tracer_on_invoke(struct tracer *t, const struct ext_event *ev, int64_t received_us, bool eager)
{
    struct invocation *inv;

    saw_time(t, received_us);
    /* Handed over after its records finished it (the loop fell behind):
     * it was exported; a new invocation made of it would be exported
     * again, at its deadline or at SHUTDOWN. */
    inv = find(t, ev->request_id);
    if ((inv != NULL && inv->state == INV_DONE) || (inv == NULL && recently_done(t, ev->request_id))) {
        t->stats.late_records++;
        return false;
    }
    if (t->snap_start)
        restore_detected(t); /* before get draws this invocation's ids */
    inv = get(t, ev->request_id, true);
    if (inv == NULL)
        return true; /* no table: out of memory */
    inv->eager = eager;
    inv->have_invoke = true;
    inv->invoke_us = received_us;
    resolve_cold(t, inv, false);
    inv->deadline_ms = ev->deadline_ms;
    trace_copy_str(inv->arn, sizeof(inv->arn), ev->invoked_function_arn);
    if (ev->trace_header[0] != '\0') {
        inv->have_hdr = xray_header_parse(ev->trace_header, strlen(ev->trace_header), &inv->hdr) == 0;
    }
    return true;
}

static void read_span(const struct tel_event *ev, const char *name, struct span_val *out)
{
    for (unsigned i = 0; i < ev->span_count; i++) {
        if (strcmp(ev->spans[i].name, name) == 0 && ev->spans[i].start_us != TEL_ABSENT) {
            out->set = true;
            out->start_us = ev->spans[i].start_us;
            out->duration_us = ev->spans[i].duration_us != TEL_ABSENT ? ev->spans[i].duration_us : 0;
            return;
        }
    }
}

static bool init_failed(const struct init_info *in)
{
    enum tel_status s = in->reported ? in->status : in->runtime_done ? in->runtime_status : TEL_STATUS_NONE;
    return s != TEL_STATUS_NONE && s != TEL_STATUS_SUCCESS;
}

/* An Init that failed has no invocation to hang it on: it becomes its own
 * segment (a new trace), with the failure as its cause.  A failed Init in
 * phase "invoke" is part of the invocation that waited for it instead. */
static void emit_init_failure(struct tracer *t, int64_t now_us, bool at_shutdown)
{
    struct init_info *in = &t->init;
    struct trace_segment *seg = &t->seg;
    enum tel_status status = in->reported ? in->status : in->runtime_status;
    const char *error_type = in->error_type[0] ? in->error_type : in->runtime_error;
    int64_t end;

    /* A suppressed Init (phase invoke) that failed is shown by the
     * invocation that waited for it, unless that invocation never reached
     * us before the reset (then SHUTDOWN is the last chance). */
    if (!in->seen || in->failure_emitted || !init_failed(in) ||
        (in->phase == TEL_PHASE_INVOKE && (!at_shutdown || t->cold_taken)))
        return;
    in->failure_emitted = true;
    end = in->reported && in->duration_us != TEL_ABSENT ? in->start_us + in->duration_us
          : in->runtime_done                            ? in->runtime_done_us
                                                        : now_us;
    if (t->observe != NULL) {
        /* InitFailures and FailedInitDuration in the metrics (emf.c) */
        const struct emf_sample sample = {
            .time_ms = end / 1000, .init_failed = true, .init_only = true,
            .init_ms = end > in->start_us ? (double)(end - in->start_us) / 1000.0 : 0,
            .init_runtime_ms = -1, .init_tracer_ms = -1, .duration_ms = -1, .billed_ms = -1,
            .memory_used_mb = -1, .memory_size_mb = -1, .cost_usd = -1, .tracer_held_ms = -1,
            .tracer_cpu_ms = -1, .tracer_cost_usd = -1};
        t->observe(&sample, t->ctx);
    }
    trace_segment_clear(seg);
    seg->kind = TRACE_SEGMENT_INIT;
    if (ids_new_trace_id(in->start_us / 1000000, seg->trace_id) < 0 || ids_new_span_id(seg->id) < 0 ||
        ids_new_span_id(seg->cause_id) < 0)
        return;
    seg->sampled = true;
    trace_copy_str(seg->name, sizeof(seg->name), t->segment_name);
    trace_copy_str(seg->origin, sizeof(seg->origin), "AWS::Lambda::Function");
    trace_copy_str(seg->function_version, sizeof(seg->function_version), t->function_version);
    trace_copy_str(seg->account_id, sizeof(seg->account_id), t->account_id);
    seg->start_us = in->start_us;
    seg->end_us = end > in->start_us ? end : in->start_us;
    seg->fault = true;
    if (status == TEL_STATUS_TIMEOUT) {
        trace_copy_str(seg->cause_type, sizeof(seg->cause_type), error_type[0] ? error_type : "Sandbox.Timedout");
        trace_copy_str(seg->cause_message, sizeof(seg->cause_message), "Init timed out");
    } else {
        trace_copy_str(seg->cause_type, sizeof(seg->cause_type), error_type[0] ? error_type : "Runtime.Unknown");
        snprintf(seg->cause_message, sizeof(seg->cause_message), "Init failed (%s)", seg->cause_type);
    }
    add_span(seg, -1, "Initialization", seg->start_us, seg->end_us);
    trace_segment_contain(seg);
    trace_attr_bool(seg, "init_failed", "aws.lambda.init_failed", TRACE_ATTR_ANNOTATION, true);
    if (in->reported && in->duration_us != TEL_ABSENT && in->duration_us > 0 && t->memory_size_mb > 0 &&
        (t->price.gb_s_usd > 0 || t->price.request_usd > 0)) {
        /* Init is billed for every runtime since 2025-08-01, a failed one
         * too (estimated: its duration rounded up to the millisecond). */
        int64_t billed_ms = (in->duration_us + 999) / 1000;
        trace_attr_int(seg, "billed_ms", "lambda_tracer.billed_ms", TRACE_ATTR_ANNOTATION, billed_ms);
        trace_attr_double(seg, "cost_usd", "lambda_tracer.cost_usd", TRACE_ATTR_ANNOTATION,
                    cost_duration_usd(&t->price, billed_ms, t->memory_size_mb));
    }
    trace_attr_str(seg, "init_type", "aws.lambda.init_type", TRACE_ATTR_ANNOTATION, init_type_name(in->type));
    trace_attr_str(seg, "status", "aws.lambda.status", TRACE_ATTR_ANNOTATION, tel_status_name(status));
    trace_attr_str(seg, "error_type", "error.type", TRACE_ATTR_ANNOTATION, seg->cause_type);
    trace_attr_str(seg, NULL, "faas.trigger", TRACE_ATTR_ANNOTATION, "other");
    trace_attr_bool(seg, "cold_start", "faas.coldstart", TRACE_ATTR_ANNOTATION, true);
    {
        /* No header and a failure: every policy keeps it, by its outcome. */
        const struct sampling_input si = {.outcome = SAMPLING_OUTCOME_INIT_FAILED, .cold_start = true,
                                          .duration_us = -1, .header = XRAY_SAMPLED_UNKNOWN};
        enum sampling_reason reason = sampling_reason(t->sampling, &si);
        trace_attr_str(seg, "sampled_by", "lambda_tracer.sampled_by", TRACE_ATTR_ANNOTATION,
                 sampling_reason_name(reason));
        t->stats.kept[reason < SAMPLING_REASON_COUNT ? reason : SAMPLING_DROP]++;
    }
    t->stats.segments++;
    if (t->emit != NULL)
        t->emit(seg, true, t->ctx);
}

static void recovered_passed(struct tracer *t, int64_t record_us);

static void on_init_record(struct tracer *t, const struct tel_event *ev)
{
    struct init_info *in = &t->init;

    switch (ev->type) {
    case TEL_INIT_START:
        /* A new Init in this process (SnapStart restores do not send one). */
        recovered_passed(t, ev->time_us);
        memset(in, 0, sizeof(*in));
        in->seen = true;
        in->start_us = ev->time_us;
        in->type = ev->init_type;
        in->phase = ev->phase;
        if (ev->init_type == TEL_INIT_TYPE_SNAP_START)
            t->snap_start = true;
        if (ev->instance_id != NULL)
            trace_copy_str(t->instance_id, sizeof(t->instance_id), ev->instance_id);
        if (ev->instance_max_memory != TEL_ABSENT)
            t->instance_max_memory = ev->instance_max_memory;
        t->durable = ev->runtime_version != NULL && strstr(ev->runtime_version, "DurableFunction") != NULL;
        break;
    case TEL_INIT_RUNTIME_DONE:
        in->runtime_done = true;
        in->runtime_done_us = ev->time_us;
        /* The runtime's figures up to its Init's end (platform times are
         * whole ms: the sample may be up to 1 ms later); sampling stops,
         * except with SnapStart: the samples up to the snapshot are the
         * restore's baseline (and in a restored copy this record may come
         * only after the restore, which is being sampled). */
        if (t->initwatch != NULL && !in->anatomy) {
            in->anatomy = initwatch_figures_at(t->initwatch, ev->time_us + 1000, &in->figures);
            /* one more sample after Init's end: who was still active then
             * (initwatch_parties_at, read when the segment is made) */
            if (!t->snap_start && !t->restore_detected)
                initwatch_stop_after(t->initwatch, ev->time_us + 1000);
        }
        in->runtime_status = ev->status;
        trace_copy_str(in->runtime_error, sizeof(in->runtime_error), ev->error_type);
        break;
    case TEL_INIT_REPORT:
        in->reported = true;
        in->duration_us = ev->duration_us;
        in->status = ev->status != TEL_STATUS_NONE ? ev->status : in->runtime_status;
        trace_copy_str(in->error_type, sizeof(in->error_type),
                 ev->error_type != NULL ? ev->error_type : in->runtime_error);
        emit_init_failure(t, ev->time_us, false);
        break;
    case TEL_EXTENSION_STATE:
        in->extensions++;
        note_registered(in, ev->name, ev->ext_events);
        break;
    case TEL_RESTORE_START:
        in->restore_seen = true;
        in->restore_start_us = ev->time_us;
        restore_detected(t);
        break;
    case TEL_RESTORE_RUNTIME_DONE:
        take_restore_figures(t, ev->time_us);
        break;
    case TEL_RESTORE_REPORT:
        in->restore_reported = true;
        in->restore_duration_us = ev->duration_us;
        in->restore_status = ev->status;
        trace_copy_str(in->restore_error, sizeof(in->restore_error), ev->error_type);
        break;
    default:
        break;
    }
}

void tracer_on_telemetry(struct tracer *t, const struct tel_event *ev)
{
    struct invocation *inv;

    if (ev->type == TEL_LOGS_DROPPED) {
        if (ev->dropped_records != TEL_ABSENT)
            t->stats.telemetry_dropped_records += (uint64_t)ev->dropped_records;
        return;
    }
    if (ev->type == TEL_FUNCTION_LOG) {
        if (t->ring != NULL && ev->text != NULL)
            ring_add(t, ev->text);
        return;
    }
    if (ev->type != TEL_START && ev->type != TEL_RUNTIME_DONE && ev->type != TEL_REPORT) {
        on_init_record(t, ev);
        return;
    }
    if (ev->request_id == NULL || ev->request_id[0] == '\0')
        return;
    inv = find(t, ev->request_id);
    if ((inv != NULL && inv->state == INV_DONE) || (inv == NULL && recently_done(t, ev->request_id))) {
        t->stats.late_records++; /* of an invocation already exported (a batch delivered again) */
        return;
    }
    if (ev->type == TEL_START && (inv == NULL || !inv->recovered))
        recovered_passed(t, ev->time_us);
    if (inv == NULL)
        inv = get(t, ev->request_id, false);
    if (inv == NULL)
        return; /* every slot pinned: not tracked, counted */
    if (ev->tenant_id != NULL && ev->tenant_id[0] != '\0' && inv->tenant_id[0] == '\0')
        trace_copy_str(inv->tenant_id, sizeof(inv->tenant_id), ev->tenant_id);

    if (ev->type == TEL_START) {
        ring_clear(t); /* the tail is the invocation's own lines */
        inv->have_start = true;
        inv->start_us = ev->time_us;
        resolve_cold(t, inv, false);
        trace_copy_str(inv->version, sizeof(inv->version), ev->version);
        if (!inv->have_hdr && ev->trace_value != NULL)
            inv->have_hdr = xray_header_parse(ev->trace_value, strlen(ev->trace_value), &inv->hdr) == 0;
        if (ev->trace_span_id != NULL && strlen(ev->trace_span_id) == XRAY_SPAN_ID_LEN &&
            strspn(ev->trace_span_id, "0123456789abcdef") == XRAY_SPAN_ID_LEN)
            trace_copy_str(inv->runtime_parent_id, sizeof(inv->runtime_parent_id), ev->trace_span_id);
    } else if (ev->type == TEL_RUNTIME_DONE) {
        inv->have_done = true;
        inv->done_us = ev->time_us;
        inv->done_status = ev->status;
        trace_copy_str(inv->done_error, sizeof(inv->done_error), ev->error_type);
        inv->done_duration_us = ev->duration_us;
        read_span(ev, "responseLatency", &inv->latency);
        read_span(ev, "responseDuration", &inv->response);
        read_span(ev, "runtimeOverhead", &inv->runtime_overhead);
        if (ev->status != TEL_STATUS_SUCCESS && inv->log_tail == NULL)
            inv->log_tail = ring_take(t);
        if (inv->eager && !inv->in_progress_sent) {
            /* Everything but the report is known; the report only comes
             * after our /next, maybe hours later: send what we have. */
            inv->in_progress_sent = true;
            ensure_ids(inv, inv->have_start ? inv->start_us : ev->time_us);
            if (decide(t, inv, ev->time_us, false) != SAMPLING_DROP) {
                build(t, inv, &t->seg, ev->time_us, false, false);
                t->stats.in_progress++;
                if (t->emit != NULL)
                    t->emit(&t->seg, false, t->ctx);
            }
        }
    } else {
        inv->have_report = true;
        inv->report_us = ev->time_us;
        inv->report_status = ev->status;
        trace_copy_str(inv->report_error, sizeof(inv->report_error), ev->error_type);
        inv->report_duration_us = ev->duration_us;
        inv->billed_ms = ev->billed_duration_ms;
        inv->memory_mb = ev->memory_size_mb;
        inv->max_memory_mb = ev->max_memory_used_mb;
        inv->init_duration_us = ev->init_duration_us;
        inv->restore_duration_us = ev->restore_duration_us;
        read_span(ev, "extensionOverhead", &inv->extension_overhead);
        if (ev->status != TEL_STATUS_SUCCESS && inv->log_tail == NULL)
            inv->log_tail = ring_take(t);
        if (!inv->have_done) {
            /* Managed Instances: no runtimeDone; the report has these. */
            read_span(ev, "responseLatency", &inv->latency);
            read_span(ev, "responseDuration", &inv->response);
        }
        finish(t, inv, ev->time_us);
    }
}

void tracer_on_released(struct tracer *t, const char *request_id, int64_t next_us, int64_t cpu_us)
{
    struct invocation *inv = find(t, request_id);

    if (inv == NULL || inv->state != INV_OPEN)
        return;
    inv->released_us = next_us;
    inv->own_cpu_us = cpu_us;
}

bool tracer_identity(struct tracer *t, const char *request_id, struct tracer_identity *ret)
{
    struct invocation *inv = find(t, request_id);

    if (inv == NULL || inv->state != INV_OPEN)
        return false;
    ensure_ids(inv, inv->have_start ? inv->start_us : inv->invoke_us);
    trace_copy_str(ret->trace_id, sizeof(ret->trace_id), inv->trace_id);
    trace_copy_str(ret->segment_id, sizeof(ret->segment_id), inv->segment_id);
    trace_copy_str(ret->parent_id, sizeof(ret->parent_id), inv->parent_id);
    ret->sampled = inv->sampled;
    ret->start_us = inv->have_start ? inv->start_us : inv->invoke_us;
    ret->deadline_ms = inv->deadline_ms;
    return true;
}

void tracer_recover(struct tracer *t, const struct journal_entry *r, int64_t reset_us)
{
    struct invocation *inv = get(t, r->request_id, true);

    if (inv == NULL || inv->state != INV_OPEN || inv->have_invoke)
        return;
    inv->recovered = true;
    inv->cold_resolved = true; /* a previous process's invocation is never our cold start */
    inv->have_invoke = true;
    inv->invoke_us = r->start_us;
    inv->deadline_ms = r->deadline_ms;
    trace_copy_str(inv->trace_id, sizeof(inv->trace_id), r->trace_id);
    trace_copy_str(inv->segment_id, sizeof(inv->segment_id), r->segment_id);
    trace_copy_str(inv->parent_id, sizeof(inv->parent_id), r->parent_id);
    inv->sampled = r->sampled;
    inv->ids_ready = true;
    if (r->done) {
        inv->have_done = true;
        inv->done_us = r->done_us;
        inv->done_status = (enum tel_status)r->done_status;
        trace_copy_str(inv->done_error, sizeof(inv->done_error), r->done_error);
    }
    /* Without records, it ended at the reset: before this process began,
     * and not after its deadline. */
    inv->shutdown_reason = EXT_SHUTDOWN_FAILURE;
    inv->shutdown_us = reset_us;
    if (r->deadline_ms > 0 && r->deadline_ms * 1000 < reset_us)
        inv->shutdown_us = r->deadline_ms * 1000;
    t->stats.recovered++;
    t->recovered_open++;
    if (r->start_us > t->recovered_latest_us)
        t->recovered_latest_us = r->start_us;
}

void tracer_recovered_invoke(struct tracer *t, int64_t now_us)
{
    if (t->recovered_open > 0 && t->recovered_close_us == 0)
        t->recovered_close_us = now_us + TRACER_RECOVERED_WAIT_US;
}

/* A record of something that began after every recovered invocation: the
 * platform delivers in time order, so their own records would have come. */
static void recovered_passed(struct tracer *t, int64_t record_us)
{
    if (t->recovered_open > 0 && record_us > t->recovered_latest_us)
        tracer_close_recovered(t);
}

void tracer_close_recovered(struct tracer *t)
{
    /* Nothing to do once they are closed. */
    t->recovered_close_us = 0;
    for (size_t i = 0; t->recovered_open > 0 && i < t->inv_cap && t->inv[i].state != INV_FREE; i++) {
        struct invocation *inv = &t->inv[i];
        if (inv->state != INV_OPEN || !inv->recovered)
            continue;
        inv->shutdown_closed = true;
        finish(t, inv, inv->shutdown_us);
    }
    t->recovered_open = 0;
}

void tracer_on_shutdown(struct tracer *t, const struct ext_event *ev, int64_t received_us)
{
    saw_time(t, received_us);
    /* An Init whose runtime failed but whose initReport never came. */
    emit_init_failure(t, received_us, true);
    /* A predecessor's invocations end at the reset, not at this SHUTDOWN. */
    tracer_close_recovered(t);
    for (size_t i = 0; i < t->inv_cap; i++) {
        struct invocation *inv = &t->inv[i];
        if (inv->state != INV_OPEN)
            continue;
        inv->shutdown_closed = true;
        inv->shutdown_reason = ev->shutdown_reason;
        if (!inv->have_done && inv->log_tail == NULL)
            inv->log_tail = ring_take(t);
        inv->shutdown_us = received_us;
        t->stats.closed_by_shutdown++;
        finish(t, inv, received_us);
    }
}

int64_t tracer_tick(struct tracer *t, int64_t now_us)
{
    int64_t next = -1;

    saw_time(t, now_us);
    if (t->recovered_close_us > 0) {
        if (now_us >= t->recovered_close_us)
            tracer_close_recovered(t);
        else
            next = t->recovered_close_us;
    }
    for (size_t i = 0; i < t->inv_cap && t->inv[i].state != INV_FREE; i++) {
        struct invocation *inv = &t->inv[i];
        int64_t due;

        if (inv->state != INV_OPEN || inv->in_progress_sent || inv->have_done ||
            inv->deadline_ms <= 0)
            continue;
        due = inv->deadline_ms * 1000 - t->timeout_margin_us;
        if (now_us < due) {
            if (next < 0 || due < next)
                next = due;
            continue;
        }
        inv->in_progress_sent = true;
        ensure_ids(inv, inv->have_start ? inv->start_us : now_us);
        /* About to time out: a failure, kept as such (its header's
         * Sampled=0 included) unless the policy honours the header only. */
        if (decide(t, inv, now_us, true) == SAMPLING_DROP)
            continue;
        build(t, inv, &t->seg, now_us, false, true);
        t->stats.in_progress++;
        if (t->emit != NULL)
            t->emit(&t->seg, false, t->ctx);
    }
    return next;
}

bool tracer_init_pending(const struct tracer *t)
{
    return t->init.seen && !t->init.reported;
}

unsigned tracer_open_count(const struct tracer *t)
{
    unsigned n = 0;

    for (size_t i = 0; i < t->inv_cap; i++)
        n += t->inv[i].state == INV_OPEN;
    return n;
}

void tracer_get_stats(const struct tracer *t, struct tracer_stats *ret)
{
    *ret = t->stats;
}

void tracer_get_resource(const struct tracer *t, struct trace_resource *ret)
{
    memset(ret, 0, sizeof(*ret));
    trace_copy_str(ret->service_name, sizeof(ret->service_name), t->segment_name);
    trace_copy_str(ret->function_name, sizeof(ret->function_name), t->function_name);
    trace_copy_str(ret->function_version, sizeof(ret->function_version), t->function_version);
    trace_copy_str(ret->region, sizeof(ret->region), t->region);
    trace_copy_str(ret->account_id, sizeof(ret->account_id), t->account_id);
    trace_copy_str(ret->instance, sizeof(ret->instance), t->instance_id);
    ret->max_memory_bytes = t->instance_max_memory != TEL_ABSENT ? t->instance_max_memory
                                                                 : t->memory_size_mb * 1048576;
    trace_copy_str(ret->extension_version, sizeof(ret->extension_version), "0.1.0");
}
