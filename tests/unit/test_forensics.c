/* Unit tests for forensics.c: when snapshots are taken (a fake snapshot
 * function counts them) and what a segment then carries. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include "forensics.h"
#include "fail_alloc.h"

#define T0 1700000000000000LL /* epoch µs */
#define MS 1000LL
#define MARGIN_US (300 * MS)

static int snaps;          /* calls of the fake */
static int64_t fake_now;   /* the fake snapshot's epoch time */
static int fake_result;    /* what the fake returns */

static bool fake_api;       /* add a worker waiting on the Runtime API (127.0.0.1:9001) */
static bool fake_busy;      /* and a thread in the handler, on the CPU */
static char fake_state = 'S'; /* the runtime's state; 'Z': exiting, no threads */

static void fake_socket(struct procsnap_socket *sk, int fd, int family, const uint8_t *peer, size_t n,
                        uint16_t port)
{
    memset(sk, 0, sizeof(*sk));
    sk->fd = fd;
    sk->proto = IPPROTO_TCP;
    sk->family = (uint8_t)family;
    memcpy(sk->peer_addr, peer, n);
    sk->peer_port = port;
    sk->tcp_state = PROCSNAP_TCP_ESTABLISHED;
}

static int fake_snap(void *ctx, const struct procsnap_opts *o, struct procsnap *ret)
{
    static const uint8_t lo[4] = {127, 0, 0, 1};
    static const uint8_t lo_mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1};
    static const uint8_t other[4] = {10, 0, 3, 17};
    (void)ctx;
    snaps++;
    if (fake_result < 0)
        return fake_result;
    memset(ret, 0, sizeof(*ret));
    ret->taken_epoch_us = fake_now;
    ret->taken_mono_us = fake_now - T0 + 5000000; /* another origin */
    ret->nprocs = 1;
    ret->procs[0].pid = 4242;
    ret->procs[0].state = 'S';
    snprintf(ret->procs[0].comm, sizeof(ret->procs[0].comm), "%s", "python3");
    ret->procs[0].state = fake_state;
    ret->threads[0] = (struct procsnap_thread){.tid = 4242, .state = 'S', .syscall_nr = 230};
    ret->nthreads = fake_state == 'Z' ? 0 : 1;
    if (fake_api) {
        /* fd 3: the Runtime API, a worker in recvfrom(3); fd 4 the same
         * through an IPv6 socket; fd 5 to a database, nobody on it */
        fake_socket(&ret->sockets[0], 3, AF_INET, lo, 4, 9001);
        fake_socket(&ret->sockets[1], 4, AF_INET6, lo_mapped, 16, 9001);
        fake_socket(&ret->sockets[2], 5, AF_INET, other, 4, 5432);
        fake_socket(&ret->sockets[3], 6, AF_INET, lo, 4, 9002); /* another local port */
        ret->nsockets = 4;
        ret->threads[0] = (struct procsnap_thread){.tid = 4242, .state = 'S', .syscall_nr = 45, .syscall_arg0 = 3};
        ret->threads[1] = (struct procsnap_thread){.tid = 4243, .state = 'S', .syscall_nr = 45, .syscall_arg0 = 4};
        ret->nthreads = 2;
        if (fake_busy)
            ret->threads[ret->nthreads++] = (struct procsnap_thread){
                .tid = 4244, .state = 'R', .syscall_nr = PROCSNAP_SYSCALL_RUNNING, .cpu_us = 900000};
    }
    /* as procsnap_take does with these options */
    if (o->ignore_peer != NULL)
        procsnap_leave_out_peer(ret, o->ignore_peer);
    return 0;
}

static struct forensics *new_f_api(uint32_t slow_ms, const char *api)
{
    struct forensics_options o = {
        .slow_ms = slow_ms,
        .timeout_margin_us = MARGIN_US,
        .snap = fake_snap,
        .runtime_api = api,
    };
    snaps = 0;
    fake_result = 0;
    fake_api = fake_busy = false;
    fake_state = 'S';
    return forensics_new(&o);
}

static struct forensics *new_f(uint32_t slow_ms)
{
    return new_f_api(slow_ms, "127.0.0.1:9001");
}

static int64_t tick(struct forensics *f, int64_t at_us)
{
    fake_now = at_us;
    return forensics_tick(f, at_us);
}

static void record(struct forensics *f, enum tel_type type, const char *rid, int64_t at_us,
                   enum tel_status status, int64_t max_mb)
{
    struct tel_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.type = type;
    ev.request_id = rid;
    ev.time_us = at_us;
    ev.status = status;
    ev.max_memory_used_mb = max_mb;
    ev.duration_us = TEL_ABSENT;
    fake_now = at_us;
    forensics_on_telemetry(f, &ev);
}

/* A segment as the tracer makes it: status annotation, maybe a cause. */
static void make_seg(struct trace_segment *seg, const char *rid, const char *status, const char *cause_type,
                     const char *cause_message)
{
    memset(seg, 0, sizeof(*seg));
    seg->kind = TRACE_SEGMENT_INVOCATION;
    snprintf(seg->request_id, sizeof(seg->request_id), "%s", rid);
    seg->start_us = T0;
    seg->end_us = T0 + 3000 * MS;
    seg->attr_count = 1;
    seg->attrs[0].xray_key = "status";
    seg->attrs[0].otel_key = "aws.lambda.status";
    seg->attrs[0].kind = TRACE_VALUE_STRING;
    snprintf(seg->attrs[0].str, sizeof(seg->attrs[0].str), "%s", status);
    if (cause_type != NULL) {
        seg->fault = true;
        snprintf(seg->cause_type, sizeof(seg->cause_type), "%s", cause_type);
        snprintf(seg->cause_message, sizeof(seg->cause_message), "%s", cause_message);
    }
}

static const struct trace_attr *find_attr(const struct trace_segment *seg, const char *key)
{
    for (size_t i = 0; i < seg->attr_count; i++)
        if (seg->attrs[i].xray_key != NULL && strcmp(seg->attrs[i].xray_key, key) == 0)
            return &seg->attrs[i];
    return NULL;
}

static void test_fast_invocation_pays_nothing(void **state)
{
    struct forensics *f = new_f(0);
    struct forensics_stats st;
    static struct trace_segment seg;
    (void)state;

    forensics_on_invoke(f, "r1", T0, (T0 + 3000 * MS) / 1000);
    record(f, TEL_START, "r1", T0, TEL_STATUS_NONE, TEL_ABSENT);
    /* it wants to run at the slow threshold (half of 3 s), not before */
    assert_int_equal(tick(f, T0 + 10 * MS), T0 + 1500 * MS);
    record(f, TEL_RUNTIME_DONE, "r1", T0 + 40 * MS, TEL_STATUS_SUCCESS, TEL_ABSENT);
    /* done: no wake-up wanted any more, even past the threshold */
    assert_int_equal(tick(f, T0 + 50 * MS), -1);
    assert_int_equal(tick(f, T0 + 1600 * MS), -1);
    record(f, TEL_REPORT, "r1", T0 + 60 * MS, TEL_STATUS_SUCCESS, 60);
    make_seg(&seg, "r1", "success", NULL, NULL);
    assert_ptr_equal(forensics_decorate(f, &seg, true), &seg);
    assert_int_equal(snaps, 0);
    forensics_get_stats(f, &st);
    assert_int_equal(st.snapshots, 0);
    assert_int_equal(st.slow, 0);
    forensics_destroy(f);
}

static void test_slow_then_timeout_snapshots_are_bounded(void **state)
{
    struct forensics *f = new_f(0);
    struct forensics_stats st;
    int64_t deadline_us = T0 + 3000 * MS;
    int64_t next;
    (void)state;

    forensics_on_invoke(f, "r1", T0, deadline_us / 1000);
    next = tick(f, T0);
    assert_int_equal(next, T0 + 1500 * MS);
    for (int i = 0; i < FORENSICS_SLOW_MAX_SNAPSHOTS; i++) {
        int64_t at = next;
        next = tick(f, at);
        assert_int_equal(snaps, i + 1);
        if (i + 1 < FORENSICS_SLOW_MAX_SNAPSHOTS)
            assert_int_equal(next, at + FORENSICS_SLOW_INTERVAL_MS * MS);
    }
    /* the sampler's budget is spent: next is the deadline snapshot */
    assert_int_equal(next, deadline_us - MARGIN_US);
    assert_int_equal(tick(f, deadline_us - MARGIN_US), -1);
    assert_int_equal(snaps, FORENSICS_SLOW_MAX_SNAPSHOTS + 1);
    /* nothing more, whatever the time */
    assert_int_equal(tick(f, deadline_us), -1);
    assert_int_equal(snaps, FORENSICS_SLOW_MAX_SNAPSHOTS + 1);
    forensics_get_stats(f, &st);
    assert_int_equal(st.slow, 1);
    assert_int_equal(st.snapshots, FORENSICS_SLOW_MAX_SNAPSHOTS + 1);
    forensics_destroy(f);
}

/* The deadline snapshot counts the CPU from the slow sampler's first
 * snapshot (which a timing-out invocation always passes): "in the last",
 * never "since the process started"; with the threshold past the deadline
 * there is no earlier snapshot, and the sentence says since when. */
static void test_deadline_cpu_counts_from_the_first_slow_snapshot(void **state)
{
    static struct trace_segment seg;
    char expect[128];
    int64_t deadline_us = T0 + 3000 * MS;
    (void)state;

    for (int k = 0; k < 2; k++) {
        struct forensics *f = new_f(k == 0 ? 0 : 5000);
        const struct trace_segment *out;
        const struct trace_attr *diag;

        forensics_on_invoke(f, "r1", T0, deadline_us / 1000);
        if (k == 0) {
            tick(f, T0 + 1500 * MS);
            tick(f, T0 + 1600 * MS);
        }
        tick(f, deadline_us - MARGIN_US);
        assert_int_equal(snaps, k == 0 ? 3 : 1);
        record(f, TEL_RUNTIME_DONE, "r1", deadline_us, TEL_STATUS_TIMEOUT, TEL_ABSENT);
        make_seg(&seg, "r1", "timeout", "Sandbox.Timedout", "Task timed out after 3.00 seconds");
        out = forensics_decorate(f, &seg, true);
        diag = find_attr(out, "diagnosis");
        assert_non_null(diag);
        print_message("%s\n", diag->str);
        if (k == 0) {
            /* 1.5 s to 2.7 s */
            assert_non_null(strstr(diag->str, "of CPU in the last 1.2 s"));
            assert_null(strstr(diag->str, "since the process started"));
            assert_non_null(strstr(out->snapshot_json, "\"cpu_since_start_us\":"));
            /* the JSON says the *_start figures count from the slow
             * sampler's first snapshot (1.5 s), not the invocation's start */
            snprintf(expect, sizeof(expect), ",\"baseline\":\"first_slow_snapshot\",\"baseline_taken_us\":%lld,",
                     (long long)(T0 + 1500 * MS));
            assert_non_null(strstr(out->snapshot_json, expect));
        } else {
            assert_non_null(strstr(diag->str, "since the process started"));
            assert_null(strstr(out->snapshot_json, "\"cpu_since_start_us\":"));
            assert_non_null(strstr(out->snapshot_json, ",\"baseline\":\"process_start\","));
            assert_null(strstr(out->snapshot_json, "baseline_taken_us"));
        }
        forensics_destroy(f);
    }
}

static void test_slow_setting_and_platform_start_move_the_threshold(void **state)
{
    struct forensics *f = new_f(250);
    (void)state;

    forensics_on_invoke(f, "r1", T0 + 20 * MS, (T0 + 3000 * MS) / 1000);
    assert_int_equal(tick(f, T0 + 20 * MS), T0 + 270 * MS);
    /* platform.start is the invocation's start */
    record(f, TEL_START, "r1", T0, TEL_STATUS_NONE, TEL_ABSENT);
    assert_int_equal(tick(f, T0 + 30 * MS), T0 + 250 * MS);
    forensics_destroy(f);
}

static void test_timeout_cause_gets_the_sentence(void **state)
{
    struct forensics *f = new_f(0);
    static struct trace_segment seg;
    const struct trace_segment *out;
    const struct trace_attr *diag;
    char expect[TRACE_CAUSE_MESSAGE_MAX];
    int64_t deadline_us = T0 + 3000 * MS;
    (void)state;

    forensics_on_invoke(f, "r1", T0, deadline_us / 1000);
    tick(f, deadline_us - MARGIN_US); /* also passes the slow threshold: one snapshot serves both */
    assert_int_equal(snaps, 1);
    /* the in-progress version: snapshot and diagnosis, the cause untouched (there is none) */
    make_seg(&seg, "r1", "in_progress", NULL, NULL);
    out = forensics_decorate(f, &seg, false);
    assert_ptr_not_equal(out, &seg);
    assert_string_equal(out->cause_type, "");
    assert_true(out->snapshot_json[0] == '{');
    assert_int_equal(out->snapshot_us, deadline_us - MARGIN_US);
    assert_non_null(find_attr(out, "diagnosis"));
    /* the final version */
    record(f, TEL_RUNTIME_DONE, "r1", deadline_us, TEL_STATUS_TIMEOUT, TEL_ABSENT);
    record(f, TEL_REPORT, "r1", deadline_us, TEL_STATUS_TIMEOUT, 60);
    make_seg(&seg, "r1", "timeout", "Sandbox.Timedout",
             "Task timed out after 3.00 seconds\nLast function log lines:\nsleeping");
    out = forensics_decorate(f, &seg, true);
    assert_ptr_not_equal(out, &seg);
    diag = find_attr(out, "diagnosis");
    assert_non_null(diag);
    assert_true(diag->str[0] != '\0');
    snprintf(expect, sizeof(expect), "Task timed out after 3.00 seconds: %s\nLast function log lines:\nsleeping",
             diag->str);
    assert_string_equal(out->cause_message, expect);
    assert_string_equal(out->cause_type, "Sandbox.Timedout");
    assert_int_equal(find_attr(out, "snapshots")->i, 1);
    assert_non_null(strstr(find_attr(out, "snapshot_scope")->str, "one invocation at a time"));
    /* the input is untouched */
    assert_string_equal(seg.cause_message, "Task timed out after 3.00 seconds\nLast function log lines:\nsleeping");
    assert_int_equal(seg.attr_count, 1);
    /* released once final: a repeat is not decorated */
    assert_ptr_equal(forensics_decorate(f, &seg, true), &seg);
    forensics_destroy(f);
}

static void test_managed_instances_snapshot_at_timeout_report(void **state)
{
    struct forensics *f = new_f(0);
    static struct trace_segment seg;
    const struct trace_segment *out;
    (void)state;

    /* no INVOKE: timed from platform.start, default threshold */
    record(f, TEL_START, "a", T0, TEL_STATUS_NONE, TEL_ABSENT);
    record(f, TEL_START, "b", T0 + 200 * MS, TEL_STATUS_NONE, TEL_ABSENT);
    assert_int_equal(tick(f, T0 + 300 * MS), T0 + FORENSICS_SLOW_DEFAULT_MS * MS);
    /* both due at once: one snapshot for the two */
    assert_int_equal(tick(f, T0 + 1200 * MS), T0 + 1300 * MS);
    assert_int_equal(snaps, 1);
    record(f, TEL_REPORT, "b", T0 + 1250 * MS, TEL_STATUS_SUCCESS, 70);
    /* a's timeout report: its handler still runs, one more look */
    record(f, TEL_REPORT, "a", T0 + 1260 * MS, TEL_STATUS_TIMEOUT, 70);
    assert_int_equal(snaps, 2);
    assert_int_equal(tick(f, T0 + 1400 * MS), -1);
    make_seg(&seg, "a", "timeout", "Sandbox.Timedout", "Task timed out after 1.26 seconds");
    out = forensics_decorate(f, &seg, true);
    assert_int_equal(find_attr(out, "snapshots")->i, 2);
    assert_int_equal(out->snapshot_us, T0 + 1260 * MS);
    assert_non_null(strstr(find_attr(out, "snapshot_scope")->str, "process-wide"));
    assert_non_null(strstr(out->cause_message, "Task timed out after 1.26 seconds: "));
    forensics_destroy(f);
}

static void test_frozen_wakeup_and_superseded_invocation_take_nothing(void **state)
{
    struct forensics *f = new_f(100);
    (void)state;

    forensics_on_invoke(f, "r1", T0, (T0 + 3000 * MS) / 1000);
    /* the sandbox froze before runtimeDone reached us: thawed much later */
    assert_int_equal(tick(f, T0 + 100 * MS + FORENSICS_STALE_US + 1), -1);
    assert_int_equal(snaps, 0);
    /* thawed after its deadline too: nothing either */
    forensics_on_invoke(f, "r0", T0 + 5000 * MS, (T0 + 6000 * MS) / 1000);
    assert_int_equal(tick(f, T0 + 6000 * MS - MARGIN_US + FORENSICS_STALE_US + 1), -1);
    assert_int_equal(snaps, 0);
    /* a new INVOKE ends the previous one's sampling */
    forensics_on_invoke(f, "r2", T0 + 10000 * MS, (T0 + 13000 * MS) / 1000);
    forensics_on_invoke(f, "r3", T0 + 10050 * MS, (T0 + 13050 * MS) / 1000);
    assert_int_equal(tick(f, T0 + 10060 * MS), T0 + 10150 * MS);
    assert_int_equal(tick(f, T0 + 10150 * MS), T0 + 10250 * MS);
    assert_int_equal(snaps, 1);
    forensics_destroy(f);
}

/* A look at a runtime that is being stopped (a reset after a timeout)
 * does not replace what it showed before. */
static void test_exiting_runtime_keeps_the_last_snapshot(void **state)
{
    struct forensics *f = new_f(100);
    struct forensics_stats st;
    static struct trace_segment seg;
    const struct trace_segment *out;
    (void)state;

    record(f, TEL_START, "a", T0, TEL_STATUS_NONE, TEL_ABSENT);
    tick(f, T0 + 100 * MS);
    fake_state = 'Z';
    tick(f, T0 + 200 * MS);
    fake_now = T0 + 250 * MS;
    record(f, TEL_REPORT, "a", T0 + 250 * MS, TEL_STATUS_TIMEOUT, 60);
    assert_int_equal(snaps, 3);
    make_seg(&seg, "a", "timeout", "Sandbox.Timedout", "Task timed out after 0.25 seconds");
    out = forensics_decorate(f, &seg, true);
    assert_int_equal(out->snapshot_us, T0 + 100 * MS);
    assert_int_equal(find_attr(out, "snapshots")->i, 1);
    forensics_get_stats(f, &st);
    assert_int_equal(st.snapshot_failures, 2);
    forensics_destroy(f);
}

static void test_snapshot_failure_is_counted_and_not_attached(void **state)
{
    struct forensics *f = new_f(100);
    struct forensics_stats st;
    static struct trace_segment seg;
    (void)state;

    fake_result = -ESRCH;
    forensics_on_invoke(f, "r1", T0, (T0 + 3000 * MS) / 1000);
    tick(f, T0 + 100 * MS);
    tick(f, T0 + 200 * MS);
    make_seg(&seg, "r1", "in_progress", NULL, NULL);
    assert_ptr_equal(forensics_decorate(f, &seg, false), &seg);
    forensics_get_stats(f, &st);
    assert_int_equal(st.snapshots, 0);
    assert_int_equal(st.snapshot_failures, 2);
    forensics_destroy(f);
}

static void test_out_of_memory_cause_states_the_trend(void **state)
{
    struct forensics *f = new_f(0);
    static struct trace_segment seg;
    const struct trace_segment *out;
    static const char *ids[] = {"a", "b", "c", "d"};
    (void)state;

    for (int i = 0; i < 4; i++) {
        forensics_on_invoke(f, ids[i], T0 + i * 1000 * MS, 0);
        record(f, TEL_REPORT, ids[i], T0 + i * 1000 * MS + 10, i == 3 ? TEL_STATUS_ERROR : TEL_STATUS_SUCCESS,
               40 + i * 20);
    }
    make_seg(&seg, "d", "error", "Runtime.OutOfMemory", "Out of memory: 100 MB used of 128 MB");
    out = forensics_decorate(f, &seg, true);
    assert_string_equal(out->cause_message,
                        "Out of memory: 100 MB used of 128 MB; max memory used by the last 4 invocations: "
                        "40, 60, 80, 100 MB (growing steadily: a leak?)");
    assert_non_null(find_attr(out, "memory_trend"));
    assert_int_equal(out->snapshot_json[0], '\0');
    /* a function error is not the environment's failure: untouched */
    make_seg(&seg, "d", "error", "Function.MyError", "The function returned an error (Function.MyError)");
    seg.fault = false;
    seg.error = true;
    assert_ptr_equal(forensics_decorate(f, &seg, true), &seg);
    assert_int_equal(snaps, 0);
    forensics_destroy(f);
}

/* An invocation exported by the process after the one that ran it (the
 * journal): this process's memory history holds only later invocations, so
 * its cause gets no trend; the same failure of this process's own does. */
static void test_recovered_invocation_gets_no_memory_trend(void **state)
{
    static struct trace_segment seg;
    (void)state;

    for (int recovered = 0; recovered < 2; recovered++) {
        struct forensics *f = new_f(100);
        const struct trace_segment *out;

        record(f, TEL_REPORT, "later1", T0 + 4000 * MS, TEL_STATUS_SUCCESS, 38);
        record(f, TEL_REPORT, "later2", T0 + 5000 * MS, TEL_STATUS_SUCCESS, 38);
        make_seg(&seg, "old", "failure", "Sandbox.Failure",
                 "The extension was reset before it learned how the invocation ended");
        if (recovered) {
            seg.attrs[1].xray_key = "recovered_after_reset";
            seg.attrs[1].otel_key = "aws.lambda.recovered_after_reset";
            seg.attrs[1].kind = TRACE_VALUE_BOOL;
            seg.attrs[1].b = true;
            seg.attr_count = 2;
        }
        out = forensics_decorate(f, &seg, true);
        if (recovered) {
            assert_string_equal(out->cause_message,
                                "The extension was reset before it learned how the invocation ended");
            assert_null(find_attr(out, "memory_trend"));
        } else {
            assert_string_equal(out->cause_message,
                                "The extension was reset before it learned how the invocation ended; max memory "
                                "used by the last 2 invocations: 38, 38 MB (flat)");
            assert_non_null(find_attr(out, "memory_trend"));
        }
        forensics_destroy(f);
    }
}

/* A slow invocation that then crashed: the cause says what the last
 * snapshot saw and how long before the end it was taken, after the memory
 * trend when there is one; a function's own error keeps its cause. */
static void test_crash_cause_carries_the_last_snapshot(void **state)
{
    static struct trace_segment seg;
    char expect[TRACE_CAUSE_MESSAGE_MAX];
    (void)state;

    for (int k = 0; k < 4; k++) {
        struct forensics *f = new_f(100);
        const struct trace_segment *out;
        const struct trace_attr *diag;

        if (k == 1) {
            /* two earlier invocations: a trend of three values */
            record(f, TEL_REPORT, "p1", T0 - 2000 * MS, TEL_STATUS_SUCCESS, 50);
            record(f, TEL_REPORT, "p2", T0 - 1000 * MS, TEL_STATUS_SUCCESS, 50);
        }
        forensics_on_invoke(f, "r1", T0, (T0 + 3000 * MS) / 1000);
        tick(f, T0 + 100 * MS);
        tick(f, T0 + 200 * MS);
        assert_int_equal(snaps, 2);
        record(f, TEL_RUNTIME_DONE, "r1", T0 + 900 * MS, TEL_STATUS_ERROR, TEL_ABSENT);
        record(f, TEL_REPORT, "r1", T0 + 900 * MS, TEL_STATUS_ERROR, 51);
        make_seg(&seg, "r1", "error", "Runtime.ExitError",
                 "The runtime exited before completing the invocation\nLast function log lines:\ncrash");
        seg.end_us = T0 + 900 * MS;
        if (k == 2)
            seg.end_us = TRACE_NO_END;
        if (k == 3) {
            seg.fault = false; /* the function's own error */
            seg.error = true;
        }
        out = forensics_decorate(f, &seg, true);
        assert_ptr_not_equal(out, &seg);
        diag = find_attr(out, "diagnosis");
        assert_non_null(diag);
        assert_true(strncmp(diag->str, "sleeping", 8) == 0);
        assert_int_equal(out->snapshot_us, T0 + 200 * MS);
        assert_int_equal(find_attr(out, "snapshots")->i, 2);
        if (k == 0)
            snprintf(expect, sizeof(expect),
                     "The runtime exited before completing the invocation; last snapshot, 0.7 s before the "
                     "end: %s\nLast function log lines:\ncrash", diag->str);
        else if (k == 1)
            snprintf(expect, sizeof(expect),
                     "The runtime exited before completing the invocation; max memory used by the last 3 "
                     "invocations: 50, 50, 51 MB (flat); last snapshot, 0.7 s before the end: %s\n"
                     "Last function log lines:\ncrash", diag->str);
        else if (k == 2) /* no end known: no made-up figure */
            snprintf(expect, sizeof(expect),
                     "The runtime exited before completing the invocation; last snapshot, 0.0 s before the "
                     "end: %s\nLast function log lines:\ncrash", diag->str);
        else
            snprintf(expect, sizeof(expect), "%s", seg.cause_message);
        assert_string_equal(out->cause_message, expect);
        if (k == 1)
            assert_string_equal(find_attr(out, "memory_trend")->str,
                                "max memory used by the last 3 invocations: 50, 50, 51 MB (flat)");
        else
            assert_null(find_attr(out, "memory_trend"));
        forensics_destroy(f);
    }
}

static void test_memory_trend_sentences(void **state)
{
    char out[256];
    static const int64_t up[] = {40, 52, 64, 77, 89};
    static const int64_t flat[] = {60, 61, 60, 62};
    static const int64_t jump[] = {60, 61, 60, 128};
    static const int64_t wobble[] = {60, 90, 50, 70};
    static const int64_t bad_up[] = {40, 90, 80, 100};
    (void)state;

    forensics_memory_trend(up, 5, out, sizeof(out));
    assert_string_equal(out, "max memory used by the last 5 invocations: 40, 52, 64, 77, 89 MB (growing steadily: a leak?)");
    forensics_memory_trend(flat, 4, out, sizeof(out));
    assert_string_equal(out, "max memory used by the last 4 invocations: 60, 61, 60, 62 MB (flat)");
    forensics_memory_trend(jump, 4, out, sizeof(out));
    assert_string_equal(out, "max memory used by the last 4 invocations: 60, 61, 60, 128 MB (jumped in the last one)");
    forensics_memory_trend(wobble, 4, out, sizeof(out));
    assert_string_equal(out, "max memory used by the last 4 invocations: 60, 90, 50, 70 MB");
    forensics_memory_trend(bad_up, 4, out, sizeof(out));
    assert_null(strstr(out, "leak"));
    forensics_memory_trend(up, 1, out, sizeof(out));
    assert_string_equal(out, "");
    forensics_memory_trend(up, 5, out, 10); /* cut, still terminated */
    assert_int_equal(strlen(out), 9);
}

static void test_table_full_evicts_finished_first(void **state)
{
    struct forensics *f = new_f(100);
    char rid[16];
    (void)state;

    /* Managed Instances: more starts than slots, the first one stuck */
    record(f, TEL_START, "stuck", T0, TEL_STATUS_NONE, TEL_ABSENT);
    for (int i = 0; i < FORENSICS_MAX_OPEN * 2; i++) {
        snprintf(rid, sizeof(rid), "r%d", i);
        record(f, TEL_START, rid, T0 + 1 * MS, TEL_STATUS_NONE, TEL_ABSENT);
        record(f, TEL_REPORT, rid, T0 + 2 * MS, TEL_STATUS_SUCCESS, 50);
    }
    /* the stuck one is still followed */
    assert_int_equal(tick(f, T0 + 3 * MS), T0 + 100 * MS);
    tick(f, T0 + 100 * MS);
    assert_int_equal(snaps, 1);
    forensics_destroy(f);
}

/* A snapshot that finds the runtime waiting for its next event (its
 * runtimeDone is still on its way): the invocation is over, the snapshot
 * is not its. */
static void test_runtime_between_invocations_is_not_the_invocation(void **state)
{
    struct forensics *f = new_f(100);
    struct forensics_stats st;
    static struct trace_segment seg;
    (void)state;

    fake_api = true;
    forensics_on_invoke(f, "r1", T0, (T0 + 3000 * MS) / 1000);
    assert_int_equal(tick(f, T0 + 100 * MS), -1); /* over: nothing more wanted */
    assert_int_equal(snaps, 1);
    make_seg(&seg, "r1", "success", NULL, NULL);
    assert_ptr_equal(forensics_decorate(f, &seg, true), &seg);
    forensics_get_stats(f, &st);
    assert_int_equal(st.idle, 1);
    forensics_destroy(f);
}

/* With a thread at work, the workers waiting on the Runtime API and their
 * connections (IPv4, and IPv4 through an IPv6 socket) are left out; other
 * sockets, even to another local port, stay. */
static void test_runtime_api_waits_are_left_out(void **state)
{
    static const char *apis[] = {"127.0.0.1:9001", "[::ffff:127.0.0.1]:9001"};
    static struct trace_segment seg;
    (void)state;

    for (size_t k = 0; k < 2; k++) {
        struct forensics *f = new_f_api(100, apis[k]);
        const struct trace_segment *out;

        fake_api = fake_busy = true;
        record(f, TEL_START, "a", T0, TEL_STATUS_NONE, TEL_ABSENT);
        tick(f, T0 + 100 * MS);
        make_seg(&seg, "a", "in_progress", NULL, NULL);
        out = forensics_decorate(f, &seg, false);
        assert_ptr_not_equal(out, &seg);
        assert_null(strstr(out->snapshot_json, "\"fd\":3,"));
        assert_null(strstr(out->snapshot_json, "\"tid\":4242"));
        assert_null(strstr(out->snapshot_json, "\"tid\":4243"));
        assert_non_null(strstr(out->snapshot_json, "\"tid\":4244"));
        assert_non_null(strstr(out->snapshot_json, "\"fd\":5,"));
        assert_non_null(strstr(out->snapshot_json, "\"fd\":6,"));
        /* mapped addresses are compared in IPv4 terms, on either side */
        assert_null(strstr(out->snapshot_json, "\"fd\":4,"));
        forensics_destroy(f);
    }
}

/* An unknown or malformed Runtime API address filters nothing. */
static void test_runtime_api_unknown_filters_nothing(void **state)
{
    static const char *bad[] = {NULL, "", "localhost:9001", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0",
                                "127.0.0.1:99999", "127.0.0.1:90x1", "[::1:9001", "127.0.0.1:9002"};
    static struct trace_segment seg;
    (void)state;

    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        struct forensics *f = new_f_api(100, bad[k]);
        const struct trace_segment *out;

        fake_api = true;
        forensics_on_invoke(f, "r1", T0, (T0 + 3000 * MS) / 1000);
        tick(f, T0 + 100 * MS);
        make_seg(&seg, "r1", "in_progress", NULL, NULL);
        out = forensics_decorate(f, &seg, false);
        assert_ptr_not_equal(out, &seg);
        assert_non_null(strstr(out->snapshot_json, "\"fd\":3,"));
        assert_non_null(strstr(out->snapshot_json, "\"tid\":4242"));
        forensics_destroy(f);
    }
}

static void test_null_and_out_of_memory(void **state)
{
    struct forensics_options o = {.snap = fake_snap};
    static struct trace_segment seg;
    struct forensics_stats st;
    struct forensics *f;
    (void)state;

    fail_alloc_reset();
    fail_alloc_fail_at(1);
    assert_null(forensics_new(&o));
    fail_alloc_reset();
    /* a NULL forensics does nothing */
    forensics_on_invoke(NULL, "r", T0, 0);
    record(NULL, TEL_START, "r", T0, TEL_STATUS_NONE, TEL_ABSENT);
    assert_int_equal(forensics_tick(NULL, T0), -1);
    make_seg(&seg, "r", "success", NULL, NULL);
    assert_ptr_equal(forensics_decorate(NULL, &seg, true), &seg);
    forensics_get_stats(NULL, &st);
    assert_int_equal(st.snapshots, 0);
    /* the first snapshot's copy cannot be allocated: nothing attached, no crash */
    f = new_f(100);
    forensics_on_invoke(f, "r", T0, 0);
    fail_alloc_fail_at(1);
    tick(f, T0 + 100 * MS);
    fail_alloc_fail_at(0);
    assert_ptr_equal(forensics_decorate(f, &seg, false), &seg);
    forensics_destroy(f);
    assert_int_equal(fail_alloc_live(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fast_invocation_pays_nothing),
        cmocka_unit_test(test_slow_then_timeout_snapshots_are_bounded),
        cmocka_unit_test(test_slow_setting_and_platform_start_move_the_threshold),
        cmocka_unit_test(test_timeout_cause_gets_the_sentence),
        cmocka_unit_test(test_managed_instances_snapshot_at_timeout_report),
        cmocka_unit_test(test_frozen_wakeup_and_superseded_invocation_take_nothing),
        cmocka_unit_test(test_snapshot_failure_is_counted_and_not_attached),
        cmocka_unit_test(test_exiting_runtime_keeps_the_last_snapshot),
        cmocka_unit_test(test_out_of_memory_cause_states_the_trend),
        cmocka_unit_test(test_crash_cause_carries_the_last_snapshot),
        cmocka_unit_test(test_recovered_invocation_gets_no_memory_trend),
        cmocka_unit_test(test_memory_trend_sentences),
        cmocka_unit_test(test_table_full_evicts_finished_first),
        cmocka_unit_test(test_runtime_between_invocations_is_not_the_invocation),
        cmocka_unit_test(test_deadline_cpu_counts_from_the_first_slow_snapshot),
        cmocka_unit_test(test_runtime_api_waits_are_left_out),
        cmocka_unit_test(test_runtime_api_unknown_filters_nothing),
        cmocka_unit_test(test_null_and_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
