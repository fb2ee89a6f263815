/* Unit tests for tracer.c: record sequences from the reference (2.10) in,
 * segment trees out. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ids.h"
#include "initwatch.h"
#include "journal.h"
#include "tracer.h"
#include "fail_alloc.h"

#define MAX_EMITTED 16
static struct trace_segment emitted[MAX_EMITTED];
static bool emitted_final[MAX_EMITTED];
static int n_emitted;

/* Every segment the tracer emits is a consistent tree: no span starts
 * before or ends after its parent (the segment for top-level spans). */
static void assert_contained(const struct trace_segment *seg)
{
    if (seg->end_us != TRACE_NO_END)
        assert_true(seg->end_us >= seg->start_us);
    for (size_t i = 0; i < seg->span_count; i++) {
        const struct trace_span *s = &seg->spans[i];
        int64_t lo = s->parent >= 0 ? seg->spans[s->parent].start_us : seg->start_us;
        int64_t hi = s->parent >= 0 ? seg->spans[s->parent].end_us : seg->end_us;
        assert_true(s->parent < (int)i);
        if (s->start_us < lo)
            fail_msg("%s starts %lld us before its parent", s->name, (long long)(lo - s->start_us));
        if (hi != TRACE_NO_END && s->end_us == TRACE_NO_END)
            fail_msg("%s is open in a closed parent", s->name);
        if (hi != TRACE_NO_END && s->end_us > hi)
            fail_msg("%s ends %lld us after its parent", s->name, (long long)(s->end_us - hi));
        if (s->end_us != TRACE_NO_END)
            assert_true(s->end_us >= s->start_us);
    }
}

static void on_emit(const struct trace_segment *seg, bool final, void *ctx)
{
    (void)ctx;
    assert_contained(seg);
    assert_true(n_emitted < MAX_EMITTED);
    emitted[n_emitted] = *seg;
    emitted_final[n_emitted] = final;
    n_emitted++;
}

static struct tracer *new_tracer_tail(bool trace_unsampled, unsigned tail_lines, size_t tail_bytes)
{
    struct tracer_options o = {
        .function_name = "demo-fn",
        .function_version = "$LATEST",
        .region = "us-east-1",
        .sampling = trace_unsampled ? SAMPLING_POLICY_ALL : SAMPLING_POLICY_HEADER,
        .timeout_margin_us = 200000,
        .log_tail_lines = tail_lines,
        .log_tail_max_bytes = tail_bytes,
        .emit = on_emit,
    };
    n_emitted = 0;
    return tracer_new(&o);
}

static struct tracer *new_tracer(bool trace_unsampled)
{
    struct tracer_options o = {
        .function_name = "demo-fn",
        .function_version = "$LATEST",
        .account_id = "123456789012",
        .region = "us-east-1",
        .memory_size_mb = 128,
        .sampling = trace_unsampled ? SAMPLING_POLICY_ALL : SAMPLING_POLICY_HEADER,
        .timeout_margin_us = 200000,
        .emit = on_emit,
    };
    n_emitted = 0;
    return tracer_new(&o);
}

/* Feeds a JSON batch (as the listener would receive it) to the tracer. */
static void feed(struct tracer *t, const char *json)
{
    struct tel_batch *b = NULL;
    assert_int_equal(tel_batch_parse(json, strlen(json), &b), 0);
    assert_int_equal(b->invalid, 0);
    for (size_t i = 0; i < b->count; i++)
        tracer_on_telemetry(t, &b->events[i]);
    tel_batch_free(b);
}

static void invoke(struct tracer *t, const char *rid, int64_t at_us, int64_t deadline_ms,
                   const char *header)
{
    struct ext_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = EXT_EVENT_INVOKE;
    ev.deadline_ms = deadline_ms;
    snprintf(ev.request_id, sizeof(ev.request_id), "%s", rid);
    snprintf(ev.invoked_function_arn, sizeof(ev.invoked_function_arn),
             "arn:aws:lambda:us-east-1:123456789012:function:demo-fn");
    snprintf(ev.trace_header, sizeof(ev.trace_header), "%s", header ? header : "");
    tracer_on_invoke(t, &ev, at_us, false);
}

static const struct trace_span *span(const struct trace_segment *s, const char *name)
{
    for (size_t i = 0; i < s->span_count; i++)
        if (strcmp(s->spans[i].name, name) == 0)
            return &s->spans[i];
    return NULL;
}

static const struct trace_attr *find_attr(const struct trace_segment *s, const char *xray_key)
{
    for (size_t i = 0; i < s->attr_count; i++)
        if (s->attrs[i].xray_key != NULL && strcmp(s->attrs[i].xray_key, xray_key) == 0)
            return &s->attrs[i];
    return NULL;
}

/* 2024-05-20T16:29:45.000Z */
#define T0 1716222585000000LL

static const char *COLD_INIT =
    "[{\"time\":\"2024-05-20T16:29:44.800Z\",\"type\":\"platform.initStart\",\"record\":{"
    "\"initializationType\":\"on-demand\",\"phase\":\"init\",\"functionName\":\"demo-fn\","
    "\"functionVersion\":\"$LATEST\",\"instanceId\":\"2024/05/20/demo-fn[$LATEST]abc\","
    "\"instanceMaxMemory\":134217728}},"
    "{\"time\":\"2024-05-20T16:29:44.950Z\",\"type\":\"platform.initRuntimeDone\",\"record\":{"
    "\"initializationType\":\"on-demand\",\"phase\":\"init\",\"status\":\"success\"}},"
    "{\"time\":\"2024-05-20T16:29:44.951Z\",\"type\":\"platform.extension\",\"record\":{"
    "\"name\":\"lambda-tracer\",\"state\":\"Ready\",\"events\":[\"INVOKE\",\"SHUTDOWN\"]}},"
    "{\"time\":\"2024-05-20T16:29:44.952Z\",\"type\":\"platform.initReport\",\"record\":{"
    "\"initializationType\":\"on-demand\",\"phase\":\"init\",\"status\":\"success\","
    "\"metrics\":{\"durationMs\":152.0}}}]";

/* A killed predecessor's invocation (from the journal) is completed by its
 * own records when they come after this process's first INVOKE, and closed
 * as ended by the reset only once a record of something later (a new Init,
 * another invocation's start) shows they will not, or after the bound when
 * no telemetry comes at all.  Closed at the INVOKE, it once lost records
 * that were a batch behind it (Sandbox.Failure for an Extension.Crash). */
static void test_recovered_invocation_waits_for_its_records(void **state)
{
    static const char *const old_records =
        "[{\"time\":\"2024-05-20T16:29:45.400Z\",\"type\":\"platform.runtimeDone\",\"record\":{"
        "\"requestId\":\"old\",\"status\":\"error\",\"errorType\":\"Extension.Crash\","
        "\"metrics\":{\"durationMs\":400.0}}},"
        "{\"time\":\"2024-05-20T16:29:45.401Z\",\"type\":\"platform.report\",\"record\":{"
        "\"requestId\":\"old\",\"status\":\"error\",\"errorType\":\"Extension.Crash\",\"metrics\":{"
        "\"durationMs\":401.0,\"billedDurationMs\":402,\"memorySizeMB\":128,\"maxMemoryUsedMB\":38}}}]";
    (void)state;

    for (int c = 0; c < 5; c++) {
        struct tracer *t = new_tracer(false);
        struct journal_entry e;
        int64_t invoke_us = T0 + 2000000; /* this process's first INVOKE */
        int finals = 0;
        const struct trace_segment *s = NULL;

        memset(&e, 0, sizeof(e));
        snprintf(e.request_id, sizeof(e.request_id), "old");
        snprintf(e.trace_id, sizeof(e.trace_id), "1-5759e988-bd862e3fe1be46a994272793");
        snprintf(e.segment_id, sizeof(e.segment_id), "53995c3f42cd8ad8");
        e.sampled = true;
        e.start_us = T0;
        e.deadline_ms = T0 / 1000 + 900000;
        n_emitted = 0;
        tracer_recover(t, &e, T0 + 500000);
        tracer_recovered_invoke(t, invoke_us);
        /* an older Init's record (delivered late too) proves nothing */
        feed(t, "[{\"time\":\"2024-05-20T16:29:40.000Z\",\"type\":\"platform.initStart\",\"record\":{"
                "\"initializationType\":\"on-demand\",\"phase\":\"init\"}}]");
        assert_int_equal(n_emitted, 0);
        switch (c) {
        case 0: /* its records come a batch after the INVOKE */
            feed(t, old_records);
            break;
        case 1: /* the records died with the process: the new Init's start closes it */
            feed(t, "[{\"time\":\"2024-05-20T16:29:46.000Z\",\"type\":\"platform.initStart\",\"record\":{"
                    "\"initializationType\":\"on-demand\",\"phase\":\"invoke\"}}]");
            break;
        case 2: /* or the next invocation's start */
            feed(t, "[{\"time\":\"2024-05-20T16:29:47.000Z\",\"type\":\"platform.start\",\"record\":{"
                    "\"requestId\":\"new\",\"version\":\"$LATEST\"}}]");
            break;
        case 3: /* no telemetry at all: the bound */
            assert_true(tracer_tick(t, invoke_us + TRACER_RECOVERED_WAIT_US - 1) <=
                        invoke_us + TRACER_RECOVERED_WAIT_US);
            assert_int_equal(n_emitted, 0);
            (void)tracer_tick(t, invoke_us + TRACER_RECOVERED_WAIT_US);
            break;
        default: /* SHUTDOWN: at once */
            tracer_close_recovered(t);
            break;
        }
        for (int i = 0; i < n_emitted; i++)
            if (emitted_final[i]) {
                finals++;
                s = &emitted[i];
            }
        assert_int_equal(finals, 1);
        assert_string_equal(s->request_id, "old");
        assert_string_equal(s->trace_id, "1-5759e988-bd862e3fe1be46a994272793");
        assert_string_equal(s->id, "53995c3f42cd8ad8");
        assert_true(find_attr(s, "recovered_after_reset")->b);
        assert_true(s->fault);
        if (c == 0) {
            assert_string_equal(s->cause_type, "Extension.Crash");
        } else {
            assert_string_equal(s->cause_type, "Sandbox.Failure");
            assert_string_equal(s->cause_message, "The extension was reset before it learned how the invocation ended");
            assert_true(s->end_us == T0 + 500000); /* ended at the reset */
            /* its records, should they still come, are not a second export */
            n_emitted = 0;
            feed(t, old_records);
            assert_int_equal(n_emitted, 0);
        }
        tracer_destroy(t);
    }
}

/* The Init split's sentence and its numbers say the same whole milliseconds
 * (they were once truncated for the numbers and rounded in the sentence). */
static void assert_split_agrees(const struct trace_segment *s)
{
    const struct trace_attr *split = find_attr(s, "init_split");
    long long init_ms, ext_ms, rest_ms;
    const char *p;

    assert_non_null(split);
    assert_int_equal(sscanf(split->str, "Init %lld ms: extensions %lld ms", &init_ms, &ext_ms), 2);
    assert_int_equal(find_attr(s, "init_extensions_ms")->i, ext_ms);
    if (find_attr(s, "init_split_exact")->b) {
        p = strstr(split->str, "), runtime ");
        assert_non_null(p);
        assert_int_equal(sscanf(p, "), runtime %lld ms", &rest_ms), 1);
    } else {
        p = strstr(split->str, "then runtime and extensions ");
        assert_non_null(p);
        assert_int_equal(sscanf(p, "then runtime and extensions %lld ms", &rest_ms), 1);
    }
    assert_int_equal(find_attr(s, "init_runtime_ms")->i, rest_ms);
}

static void test_init_split_figures_agree(void **state)
{
    struct tracer *t = new_tracer(false);
    (void)state;
    /* registered 10.6 ms after initStart, first next 151.4 ms after: the
     * extensions' figure is 10.6 + 2.0 (Init's end after the runtime's) */
    tracer_set_own_init(t, T0 - 200000 + 10600, T0 - 200000 + 151400);
    invoke(t, "r1", T0 + 1000, T0 / 1000 + 3000, NULL);
    feed(t, COLD_INIT);
    feed(t, "[{\"time\":\"2024-05-20T16:29:45.000Z\",\"type\":\"platform.start\",\"record\":{"
            "\"requestId\":\"r1\",\"version\":\"$LATEST\"}},"
            "{\"time\":\"2024-05-20T16:29:45.020Z\",\"type\":\"platform.report\",\"record\":{"
            "\"requestId\":\"r1\",\"status\":\"success\",\"metrics\":{\"durationMs\":16.5,"
            "\"billedDurationMs\":17,\"memorySizeMB\":128,\"maxMemoryUsedMB\":31,\"initDurationMs\":152.0}}}]");
    assert_int_equal(n_emitted, 1);
    const struct trace_segment *s = &emitted[0];
    printf("  %s\n", find_attr(s, "init_split")->str);
    assert_true(find_attr(s, "init_split_exact")->b);
    assert_split_agrees(s);
    assert_int_equal(find_attr(s, "init_extensions_ms")->i, 13); /* 12.6, rounded */
    assert_int_equal(find_attr(s, "init_runtime_ms")->i, 139);   /* 150 - 10.6 */
    assert_int_equal(find_attr(s, "init_lambda_tracer_ms")->i, 12); /* 10.6 + 1.4 */
    assert_non_null(strstr(find_attr(s, "init_split")->str, "Init 152 ms: extensions 13 ms (all lambda-tracer: "
                                                            "11 ms registering, 2 ms after the runtime)"));
    tracer_destroy(t);
}

static void test_cold_start_with_upstream_parent(void **state)
{
    struct tracer *t = new_tracer(false);
    (void)state;
    tracer_set_own_init(t, T0 - 190000, T0 - 180000);
    invoke(t, "r1", T0 + 1000, T0 / 1000 + 3000,
           "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1");
    feed(t, COLD_INIT);
    feed(t, "[{\"time\":\"2024-05-20T16:29:45.000Z\",\"type\":\"platform.start\",\"record\":{"
            "\"requestId\":\"r1\",\"version\":\"$LATEST\"}},"
            "{\"time\":\"2024-05-20T16:29:45.020Z\",\"type\":\"platform.runtimeDone\",\"record\":{"
            "\"requestId\":\"r1\",\"status\":\"success\",\"spans\":["
            "{\"name\":\"responseLatency\",\"start\":\"2024-05-20T16:29:45.000Z\",\"durationMs\":10.0},"
            "{\"name\":\"responseDuration\",\"start\":\"2024-05-20T16:29:45.010Z\",\"durationMs\":1.0},"
            "{\"name\":\"runtimeOverhead\",\"start\":\"2024-05-20T16:29:45.011Z\",\"durationMs\":4.0}],"
            "\"metrics\":{\"durationMs\":15.0,\"producedBytes\":40}}}]");
    assert_int_equal(n_emitted, 0); /* waits for the report */
    assert_int_equal(tracer_open_count(t), 1);
    feed(t, "[{\"time\":\"2024-05-20T16:29:45.030Z\",\"type\":\"platform.report\",\"record\":{"
            "\"requestId\":\"r1\",\"status\":\"success\",\"metrics\":{\"durationMs\":16.5,"
            "\"billedDurationMs\":17,\"memorySizeMB\":128,\"maxMemoryUsedMB\":31,\"initDurationMs\":152.0},"
            "\"spans\":[{\"name\":\"extensionOverhead\",\"start\":\"2024-05-20T16:29:45.015Z\",\"durationMs\":1.5}]}}]");
    assert_int_equal(n_emitted, 1);
    assert_true(emitted_final[0]);
    const struct trace_segment *s = &emitted[0];
    assert_string_equal(s->trace_id, "1-5759e988-bd862e3fe1be46a994272793");
    assert_string_equal(s->parent_id, "53995c3f42cd8ad8");
    assert_int_equal(strlen(s->id), 16);
    assert_string_equal(s->name, "demo-fn");
    assert_string_equal(s->origin, "AWS::Lambda::Function");
    assert_string_equal(s->request_id, "r1");
    /* the caller waited for the on-demand Init: the segment starts with
     * it, ends with the report, and keeps the report's duration */
    assert_true(s->start_us == T0 - 200000);
    assert_true(s->end_us == T0 + 16500);
    assert_true(find_attr(s, "duration_ms")->d == 16.5);
    assert_false(s->error || s->fault);
    assert_string_equal(s->cause_type, "");

    const struct trace_span *init = span(s, "Initialization");
    assert_non_null(init);
    assert_true(init->start_us == T0 - 200000);
    assert_true(init->end_us == T0 - 200000 + 152000);
    const struct trace_span *own = span(s, "Extension init: lambda-tracer");
    assert_non_null(own);
    assert_true(own->end_us == T0 - 180000);
    assert_int_equal(s->spans[own->parent].start_us, init->start_us);
    const struct trace_span *rt = span(s, "Runtime init");
    assert_non_null(rt);
    assert_true(rt->start_us == T0 - 190000 && rt->end_us == T0 - 50000);
    const struct trace_span *inv = span(s, "Invocation");
    assert_true(inv->start_us == T0 && inv->end_us == T0 + 10000);
    const struct trace_span *resp = span(s, "Response");
    assert_true(resp->start_us == T0 + 10000 && resp->end_us == T0 + 11000);
    const struct trace_span *ov = span(s, "Overhead");
    assert_true(ov->start_us == T0 + 11000 && ov->end_us == T0 + 16500);
    assert_non_null(span(s, "Runtime overhead"));
    assert_non_null(span(s, "Extension overhead"));

    assert_true(find_attr(s, "cold_start")->b);
    assert_string_equal(find_attr(s, "init_type")->str, "on-demand");
    assert_string_equal(find_attr(s, "status")->str, "success");
    assert_true(find_attr(s, "billed_duration_ms")->i == 17);
    assert_true(find_attr(s, "max_memory_used_mb")->i == 31);
    assert_true(find_attr(s, "memory_size_mb")->i == 128);
    assert_null(find_attr(s, "error_type"));

    struct trace_resource res;
    tracer_get_resource(t, &res);
    assert_string_equal(res.instance, "2024/05/20/demo-fn[$LATEST]abc");
    assert_true(res.max_memory_bytes == 134217728);
    tracer_destroy(t);
}

static void warm_invoke(struct tracer *t, const char *rid, const char *header, const char *status,
                        const char *error_type, int max_mem)
{
    char buf[2048];
    invoke(t, rid, T0 + 5000000, T0 / 1000 + 8000, header);
    snprintf(buf, sizeof(buf),
             "[{\"time\":\"2024-05-20T16:29:50.000Z\",\"type\":\"platform.start\",\"record\":{\"requestId\":\"%s\"}},"
             "{\"time\":\"2024-05-20T16:29:53.000Z\",\"type\":\"platform.runtimeDone\",\"record\":{"
             "\"requestId\":\"%s\",\"status\":\"%s\"%s%s%s,\"metrics\":{\"durationMs\":3000.5}}},"
             "{\"time\":\"2024-05-20T16:29:53.001Z\",\"type\":\"platform.report\",\"record\":{"
             "\"requestId\":\"%s\",\"status\":\"%s\"%s%s%s,\"metrics\":{\"durationMs\":3000.0,"
             "\"billedDurationMs\":3000,\"memorySizeMB\":128,\"maxMemoryUsedMB\":%d}}}]",
             rid, rid, status, error_type ? ",\"errorType\":\"" : "", error_type ? error_type : "",
             error_type ? "\"" : "", rid, status, error_type ? ",\"errorType\":\"" : "",
             error_type ? error_type : "", error_type ? "\"" : "", max_mem);
    feed(t, buf);
}

static void test_warm_invocation_is_not_cold_and_new_trace_without_header(void **state)
{
    struct tracer *t = new_tracer(false);
    (void)state;
    warm_invoke(t, "first", NULL, "success", NULL, 30);
    warm_invoke(t, "second", NULL, "success", NULL, 30);
    assert_int_equal(n_emitted, 2);
    assert_true(find_attr(&emitted[0], "cold_start")->b);  /* first of the process */
    assert_false(find_attr(&emitted[1], "cold_start")->b);
    assert_null(span(&emitted[1], "Initialization"));
    /* no header: a fresh trace whose time part is the start second */
    assert_int_equal(strlen(emitted[1].trace_id), 35);
    assert_memory_equal(emitted[1].trace_id, "1-664b7a7e-", 11); /* 0x664b7a7e = 16:29:50 */
    assert_string_equal(emitted[1].parent_id, "");
    assert_string_not_equal(emitted[0].trace_id, emitted[1].trace_id);
    tracer_destroy(t);
}

/* Cost, metrics samples, tenant and durable function (issue 14): a cold
 * start whose report bills its Init, our /next 7 ms after the runtime's;
 * a warm one with a tenant; every invocation observed, dropped ones too. */
#define MAX_OBSERVED 8
static struct emf_sample observed[MAX_OBSERVED];
static char observed_tenant[MAX_OBSERVED][64];
static int n_observed;

static void on_observe(const struct emf_sample *s, void *ctx)
{
    (void)ctx;
    assert_true(n_observed < MAX_OBSERVED);
    observed[n_observed] = *s;
    snprintf(observed_tenant[n_observed], sizeof(observed_tenant[0]), "%s", s->tenant_id ? s->tenant_id : "");
    observed[n_observed].tenant_id = observed_tenant[n_observed];
    n_observed++;
}

static void test_cost_tenant_durable_and_observation(void **state)
{
    struct tracer_options o = {
        .function_name = "demo-fn", .function_version = "$LATEST", .region = "us-east-1",
        .memory_size_mb = 256, .sampling = SAMPLING_POLICY_HEADER, .timeout_margin_us = 200000,
        .price = {.gb_s_usd = 0.0000166667, .request_usd = 0.0000002},
        .emit = on_emit, .observe = on_observe,
    };
    struct tracer *t;
    const struct trace_attr *a;
    (void)state;
    n_emitted = 0;
    n_observed = 0;
    t = tracer_new(&o);
    assert_non_null(t);
    feed(t, "[{\"time\":\"2024-05-20T16:29:44.800Z\",\"type\":\"platform.initStart\",\"record\":{"
            "\"initializationType\":\"on-demand\",\"phase\":\"init\","
            "\"runtimeVersion\":\"python:3.13.DurableFunction.v1\"}},"
            "{\"time\":\"2024-05-20T16:29:44.896Z\",\"type\":\"platform.initReport\",\"record\":{"
            "\"initializationType\":\"on-demand\",\"phase\":\"init\",\"status\":\"success\","
            "\"metrics\":{\"durationMs\":95.4}}}]");
    invoke(t, "cold", T0, 0, "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1");
    feed(t, "[{\"time\":\"2024-05-20T16:29:45.000Z\",\"type\":\"platform.start\",\"record\":{"
            "\"requestId\":\"cold\",\"tenantId\":\"BlueTenant\"}},"
            "{\"time\":\"2024-05-20T16:29:45.050Z\",\"type\":\"platform.runtimeDone\",\"record\":{"
            "\"requestId\":\"cold\",\"status\":\"success\",\"metrics\":{\"durationMs\":50.0}}}]");
    tracer_on_released(t, "cold", T0 + 57000, 1500);
    tracer_on_released(t, "unknown-request", T0, 1); /* ignored */
    feed(t, "[{\"time\":\"2024-05-20T16:29:45.064Z\",\"type\":\"platform.report\",\"record\":{"
            "\"requestId\":\"cold\",\"status\":\"success\",\"tenantId\":\"BlueTenant\",\"metrics\":{"
            "\"durationMs\":63.2,\"billedDurationMs\":160,\"memorySizeMB\":256,\"maxMemoryUsedMB\":64,"
            "\"initDurationMs\":95.4},\"spans\":[{\"name\":\"extensionOverhead\","
            "\"start\":\"2024-05-20T16:29:45.050Z\",\"durationMs\":13.2}]}}]");
    assert_int_equal(n_emitted, 1);
    assert_int_equal(n_observed, 1);
    const struct trace_segment *seg = &emitted[0];
    assert_int_equal(find_attr(seg, "billed_ms")->i, 160);
    assert_int_equal(find_attr(seg, "billed_ms")->target, TRACE_ATTR_ANNOTATION);
    a = find_attr(seg, "cost_usd");
    assert_int_equal(a->target, TRACE_ATTR_ANNOTATION);
    assert_true(a->d == 0.0000166667 * (160.0 / 1000.0 * (256.0 / 1024.0)) + 0.0000002);
    assert_int_equal(find_attr(seg, "cost_init_billed_ms")->i, 96);           /* 160 - ceil(63.2) */
    assert_int_equal(find_attr(seg, "cost_after_response_billed_ms")->i, 14); /* ceil(13.2) */
    assert_int_equal(find_attr(seg, "cost_tracer_billed_ms")->i, 7);          /* 57 ms - 50 ms */
    assert_true(find_attr(seg, "tracer_cpu_ms")->d == 1.5);
    assert_string_equal(find_attr(seg, "tenant_id")->str, "BlueTenant");
    assert_true(find_attr(seg, "durable_function")->b);
    assert_true(observed[0].cold);
    assert_true(observed[0].init_ms == 95.4);
    assert_int_equal(observed[0].billed_ms, 160);
    assert_int_equal(observed[0].memory_used_mb, 64);
    assert_int_equal(observed[0].memory_size_mb, 256);
    assert_true(observed[0].duration_ms == 63.2);
    assert_true(observed[0].cost_usd == find_attr(seg, "cost_usd")->d);
    assert_true(observed[0].tracer_held_ms == 7);
    assert_true(observed[0].tracer_cpu_ms == 1.5);
    assert_int_equal(observed[0].outcome, EMF_OUTCOME_SUCCESS);
    assert_string_equal(observed[0].tenant_id, "BlueTenant");
    assert_true(observed[0].time_ms == (T0 + 64000) / 1000);

    /* Sampled=0 (header policy): not exported, still observed; a timeout. */
    invoke(t, "warm", T0 + 1000000, 0, "Root=1-5759e988-bd862e3fe1be46a994272794;Sampled=0");
    feed(t, "[{\"time\":\"2024-05-20T16:29:46.000Z\",\"type\":\"platform.start\",\"record\":{"
            "\"requestId\":\"warm\"}},"
            "{\"time\":\"2024-05-20T16:29:49.000Z\",\"type\":\"platform.report\",\"record\":{"
            "\"requestId\":\"warm\",\"status\":\"timeout\",\"metrics\":{"
            "\"durationMs\":3000.0,\"billedDurationMs\":3000,\"memorySizeMB\":256,\"maxMemoryUsedMB\":70}}}]");
    assert_int_equal(n_emitted, 1);
    assert_int_equal(n_observed, 2);
    assert_false(observed[1].cold);
    assert_int_equal(observed[1].outcome, EMF_OUTCOME_TIMEOUT);
    assert_true(observed[1].tracer_held_ms < 0); /* we never said when we let go */
    assert_true(observed[1].tracer_cpu_ms < 0);
    assert_true(observed[1].cost_usd == 0.0000166667 * (3000.0 / 1000.0 * (256.0 / 1024.0)) + 0.0000002);
    assert_string_equal(observed[1].tenant_id, "");
    tracer_destroy(t);
}

/* A failed Init is billed too: its own segment carries its cost. */
static void test_failed_init_cost(void **state)
{
    struct tracer_options o = {.function_name = "demo-fn", .memory_size_mb = 512,
                               .price = {.gb_s_usd = 0.0000133334, .request_usd = 0.0000002},
                               .emit = on_emit};
    struct tracer *t;
    (void)state;
    n_emitted = 0;
    t = tracer_new(&o);
    feed(t, "[{\"time\":\"2024-05-20T16:29:40.000Z\",\"type\":\"platform.initStart\",\"record\":{"
            "\"initializationType\":\"on-demand\",\"phase\":\"init\"}},"
            "{\"time\":\"2024-05-20T16:29:40.501Z\",\"type\":\"platform.initReport\",\"record\":{"
            "\"initializationType\":\"on-demand\",\"phase\":\"init\",\"status\":\"error\","
            "\"errorType\":\"Runtime.ExitError\",\"metrics\":{\"durationMs\":500.2}}}]");
    assert_int_equal(n_emitted, 1);
    assert_int_equal(find_attr(&emitted[0], "billed_ms")->i, 501);
    assert_true(find_attr(&emitted[0], "cost_usd")->d == 0.0000133334 * (501.0 / 1000.0 * (512.0 / 1024.0)));
    tracer_destroy(t);
}

/* No price (all zero): no cost attributes; no tenant, no durable runtime:
 * none of those either. */
static void test_no_price_no_cost_attrs(void **state)
{
    struct tracer *t = new_tracer(true);
    (void)state;
    warm_invoke(t, "a", NULL, "success", NULL, 30);
    assert_int_equal(n_emitted, 1);
    assert_null(find_attr(&emitted[0], "cost_usd"));
    assert_null(find_attr(&emitted[0], "billed_ms"));
    assert_null(find_attr(&emitted[0], "tenant_id"));
    assert_null(find_attr(&emitted[0], "durable_function"));
    tracer_destroy(t);
}

static void test_failures_told_apart(void **state)
{
    struct tracer *t = new_tracer(false);
    (void)state;
    warm_invoke(t, "tmo", NULL, "timeout", NULL, 40);
    warm_invoke(t, "crash", NULL, "error", "Runtime.ExitError", 40);
    warm_invoke(t, "oom", NULL, "error", "Runtime.OutOfMemory", 128);
    warm_invoke(t, "oom2", NULL, "error", "Runtime.Unknown", 128);
    warm_invoke(t, "fnerr", NULL, "error", "Function.MyError", 40);
    warm_invoke(t, "ext", NULL, "error", "Extension.Crash", 40);
    warm_invoke(t, "sbx", NULL, "failure", "Sandbox.Failure", 40);
    assert_int_equal(n_emitted, 7);

    assert_true(emitted[0].fault);
    assert_string_equal(emitted[0].cause_type, "Sandbox.Timedout");
    assert_string_equal(emitted[0].cause_message, "Task timed out after 3.00 seconds");
    assert_string_equal(find_attr(&emitted[0], "status")->str, "timeout");

    assert_true(emitted[1].fault && !emitted[1].error);
    assert_string_equal(emitted[1].cause_type, "Runtime.ExitError");
    assert_string_equal(find_attr(&emitted[1], "error_type")->str, "Runtime.ExitError");

    assert_true(emitted[2].fault);
    assert_string_equal(emitted[2].cause_type, "Runtime.OutOfMemory");
    assert_string_equal(emitted[2].cause_message, "Out of memory: 128 MB used of 128 MB");
    /* max memory used reaching the memory size: also out of memory */
    assert_string_equal(emitted[3].cause_type, "Runtime.OutOfMemory");

    assert_true(emitted[4].error && !emitted[4].fault);
    assert_string_equal(emitted[4].cause_type, "Function.MyError");

    assert_true(emitted[5].fault);
    assert_string_equal(emitted[5].cause_type, "Extension.Crash");
    assert_true(emitted[6].fault);
    assert_string_equal(emitted[6].cause_type, "Sandbox.Failure");
    for (int i = 0; i < 7; i++)
        assert_int_equal(strlen(emitted[i].cause_id), 16);
    tracer_destroy(t);
}

static void test_sampled_zero_is_honoured_unless_forced(void **state)
{
    const char *h = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0";
    struct tracer_stats st;
    struct tracer *t = new_tracer(false);
    (void)state;
    warm_invoke(t, "u1", h, "success", NULL, 30);
    assert_int_equal(n_emitted, 0);
    tracer_get_stats(t, &st);
    assert_int_equal(st.dropped, 1);
    assert_string_equal(st.first_dropped, "u1");
    tracer_destroy(t);

    t = new_tracer(true);
    warm_invoke(t, "u1", h, "success", NULL, 30);
    assert_int_equal(n_emitted, 1);
    assert_true(emitted[0].sampled); /* exported: sampled by our decision */
    assert_string_equal(find_attr(&emitted[0], "sampled_by")->str, "cold_start");
    /* joins the header's Root as a root segment: its Parent is never sent */
    assert_string_equal(emitted[0].trace_id, "1-5759e988-bd862e3fe1be46a994272793");
    assert_string_equal(emitted[0].parent_id, "");
    assert_string_equal(find_attr(&emitted[0], "upstream_parent_id")->str, "53995c3f42cd8ad8");
    tracer_destroy(t);
}


/* --- the default sampling policy ------------------------------------------ */

static struct tracer *new_smart_tracer(uint32_t slow_ms)
{
    struct tracer_options o = {
        .function_name = "demo-fn",
        .function_version = "$LATEST",
        .region = "us-east-1",
        .sampling = SAMPLING_POLICY_SMART,
        .slow_ms = slow_ms,
        .timeout_margin_us = 200000,
        .emit = on_emit,
    };
    n_emitted = 0;
    return tracer_new(&o);
}

static void iso(int64_t us, char *out, size_t size)
{
    time_t secs = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(us % 1000000 / 1000));
}

/* One invocation with a 3 s budget starting at start_us (ms precision),
 * lasting dur_ms; report == false stops after runtimeDone. */
static void run_inv(struct tracer *t, const char *rid, const char *header, int64_t start_us, int dur_ms,
                    const char *status, bool report)
{
    char buf[2048], a[96], b[96];
    invoke(t, rid, start_us, start_us / 1000 + 3000, header);
    iso(start_us, a, sizeof(a));
    iso(start_us + dur_ms * 1000LL, b, sizeof(b));
    snprintf(buf, sizeof(buf),
             "[{\"time\":\"%s\",\"type\":\"platform.start\",\"record\":{\"requestId\":\"%s\"}},"
             "{\"time\":\"%s\",\"type\":\"platform.runtimeDone\",\"record\":{\"requestId\":\"%s\","
             "\"status\":\"%s\",\"metrics\":{\"durationMs\":%d.0}}}]",
             a, rid, b, rid, status, dur_ms);
    feed(t, buf);
    if (!report)
        return;
    snprintf(buf, sizeof(buf),
             "[{\"time\":\"%s\",\"type\":\"platform.report\",\"record\":{\"requestId\":\"%s\","
             "\"status\":\"%s\",\"metrics\":{\"durationMs\":%d.0}}}]",
             b, rid, status, dur_ms);
    feed(t, buf);
}

#define ZERO(root) "Root=" root ";Parent=53995c3f42cd8ad8;Sampled=0"
#define ROOT_NEVER "1-5759e988-bd862e3fe1be46a9ffffffff" /* never in the 5 % */
#define ROOT_ALWAYS "1-5759e988-bd862e3fe1be46a900000001" /* always in the 5 % */

static const char *reason_of(int i)
{
    const struct trace_attr *a = find_attr(&emitted[i], "sampled_by");
    assert_non_null(a);
    return a->str;
}

static void test_smart_keeps_what_matters_and_samples_the_rest(void **state)
{
    struct tracer *t = new_smart_tracer(0);
    struct tracer_stats st;
    (void)state;
    /* the first invocation is the cold start, whatever its header */
    run_inv(t, "cold", ZERO(ROOT_NEVER), T0, 10, "success", true);
    assert_int_equal(n_emitted, 1);
    assert_string_equal(reason_of(0), "cold_start");
    /* second T0+1: the first fast one takes the reservoir, the next ones are
     * dropped unless their trace id is in the 5 % */
    run_inv(t, "res", ZERO(ROOT_NEVER), T0 + 1000000, 10, "success", true);
    assert_int_equal(n_emitted, 2);
    assert_string_equal(reason_of(1), "reservoir");
    run_inv(t, "drop1", ZERO(ROOT_NEVER), T0 + 1100000, 10, "success", true);
    run_inv(t, "drop2", NULL, T0 + 1200000, 10, "success", true); /* a new trace id: random, usually out */
    run_inv(t, "ratio", ZERO(ROOT_ALWAYS), T0 + 1300000, 10, "success", true);
    tracer_get_stats(t, &st);
    assert_string_equal(emitted[n_emitted - 1].request_id, "ratio");
    assert_string_equal(reason_of(n_emitted - 1), "ratio");
    assert_int_equal(st.dropped + (uint64_t)n_emitted, 5);
    assert_true(st.dropped >= 1);
    assert_string_equal(st.first_dropped, "drop1");
    /* failures, slow ones and Sampled=1 are kept in the same second */
    int before = n_emitted;
    run_inv(t, "err", ZERO(ROOT_NEVER), T0 + 1400000, 10, "error", true);
    run_inv(t, "slow", ZERO(ROOT_NEVER), T0 + 1500000, 1501, "success", true); /* half of 3 s */
    run_inv(t, "notslow", ZERO(ROOT_NEVER), T0 + 1600000, 1500, "success", true);
    run_inv(t, "hdr", "Root=" ROOT_NEVER ";Parent=53995c3f42cd8ad8;Sampled=1", T0 + 1700000, 10, "success", true);
    assert_int_equal(n_emitted, before + 3);
    assert_string_equal(emitted[before].request_id, "err");
    assert_string_equal(reason_of(before), "outcome");
    assert_string_equal(emitted[before + 1].request_id, "slow");
    assert_string_equal(reason_of(before + 1), "slow");
    assert_string_equal(emitted[before + 2].request_id, "hdr");
    assert_string_equal(reason_of(before + 2), "header");
    /* the Sampled=1 one joins root and parent; Sampled=0 ones the root only */
    assert_string_equal(emitted[before + 2].parent_id, "53995c3f42cd8ad8");
    assert_string_equal(emitted[before].trace_id, ROOT_NEVER);
    assert_string_equal(emitted[before].parent_id, "");
    /* the next second: a reservoir again */
    run_inv(t, "res2", ZERO(ROOT_NEVER), T0 + 2000000, 10, "success", true);
    assert_string_equal(emitted[n_emitted - 1].request_id, "res2");
    assert_string_equal(reason_of(n_emitted - 1), "reservoir");
    tracer_get_stats(t, &st);
    assert_int_equal(st.kept[SAMPLING_BY_COLD_START], 1);
    assert_int_equal(st.kept[SAMPLING_BY_RESERVOIR], 2);
    assert_int_equal(st.kept[SAMPLING_BY_OUTCOME], 1);
    assert_int_equal(st.kept[SAMPLING_BY_SLOW], 1);
    assert_int_equal(st.kept[SAMPLING_BY_HEADER], 1);
    assert_true(st.kept[SAMPLING_BY_RATIO] >= 1);
    assert_int_equal(st.segments, (uint64_t)n_emitted);
    tracer_destroy(t);
}

static void test_smart_slow_ms_setting(void **state)
{
    struct tracer *t = new_smart_tracer(50);
    (void)state;
    run_inv(t, "cold", NULL, T0, 10, "success", true);
    run_inv(t, "res", ZERO(ROOT_NEVER), T0 + 1000000, 10, "success", true);
    run_inv(t, "fast", ZERO(ROOT_NEVER), T0 + 1100000, 50, "success", true);
    run_inv(t, "slow", ZERO(ROOT_NEVER), T0 + 1200000, 51, "success", true);
    assert_int_equal(n_emitted, 3);
    assert_string_equal(emitted[2].request_id, "slow");
    assert_string_equal(reason_of(2), "slow");
    tracer_destroy(t);
}

static void test_smart_timeout_in_progress_is_kept_and_followed(void **state)
{
    struct tracer *t = new_smart_tracer(0);
    char start[160];
    (void)state;
    run_inv(t, "cold", NULL, T0, 10, "success", true);
    run_inv(t, "res", ZERO(ROOT_NEVER), T0 + 1000000, 10, "success", true);
    assert_int_equal(n_emitted, 2);
    /* Sampled=0, the reservoir of its second taken: about to time out, it
     * is exported anyway, as a failure */
    invoke(t, "stuck", T0 + 1100000, (T0 + 1100000) / 1000 + 3000, ZERO(ROOT_NEVER));
    snprintf(start, sizeof(start), "[{\"time\":\"2024-05-20T16:29:46.100Z\",\"type\":\"platform.start\","
                                   "\"record\":{\"requestId\":\"stuck\"}}]");
    feed(t, start);
    assert_true(tracer_tick(t, T0 + 1200000) == T0 + 1100000 + 2800000);
    assert_int_equal(n_emitted, 2);
    assert_true(tracer_tick(t, T0 + 3900000) == -1);
    assert_int_equal(n_emitted, 3);
    assert_false(emitted_final[2]);
    assert_string_equal(reason_of(2), "outcome");
    assert_true(find_attr(&emitted[2], "timing_out")->b);
    assert_string_equal(emitted[2].trace_id, ROOT_NEVER);
    /* it made it after all, fast by the slow rule's measure?  no: the final
     * version follows whatever it says, so X-Ray is not left with an
     * in-progress segment forever */
    feed(t, "[{\"time\":\"2024-05-20T16:29:48.950Z\",\"type\":\"platform.runtimeDone\",\"record\":{"
            "\"requestId\":\"stuck\",\"status\":\"success\"}},"
            "{\"time\":\"2024-05-20T16:29:48.951Z\",\"type\":\"platform.report\",\"record\":{"
            "\"requestId\":\"stuck\",\"status\":\"success\",\"metrics\":{\"durationMs\":2850.0}}}]");
    assert_int_equal(n_emitted, 4);
    assert_true(emitted_final[3]);
    assert_string_equal(emitted[3].id, emitted[2].id);
    assert_string_equal(reason_of(3), "slow");
    tracer_destroy(t);

    /* the header-only policy drops it, as before */
    t = new_tracer(false);
    invoke(t, "stuck", T0, T0 / 1000 + 1000, ZERO(ROOT_NEVER));
    assert_true(tracer_tick(t, T0 + 800000) == -1);
    assert_int_equal(n_emitted, 0);
    tracer_destroy(t);
}

static void test_smart_eager_version_draws_once_and_final_follows(void **state)
{
    struct tracer *t = new_smart_tracer(0);
    struct ext_event ev;
    struct tracer_stats st;
    (void)state;
    run_inv(t, "cold", NULL, T0, 10, "success", true);
    /* eager: runtimeDone exports an in-progress version; it takes the
     * reservoir of its second */
    memset(&ev, 0, sizeof(ev));
    ev.type = EXT_EVENT_INVOKE;
    ev.deadline_ms = T0 / 1000 + 4000;
    snprintf(ev.request_id, sizeof(ev.request_id), "eager");
    snprintf(ev.trace_header, sizeof(ev.trace_header), "%s", ZERO(ROOT_NEVER));
    tracer_on_invoke(t, &ev, T0 + 1000000, true);
    feed(t, "[{\"time\":\"2024-05-20T16:29:46.000Z\",\"type\":\"platform.start\",\"record\":{\"requestId\":\"eager\"}},"
            "{\"time\":\"2024-05-20T16:29:46.010Z\",\"type\":\"platform.runtimeDone\",\"record\":{"
            "\"requestId\":\"eager\",\"status\":\"success\"}}]");
    assert_int_equal(n_emitted, 2);
    assert_false(emitted_final[1]);
    assert_string_equal(reason_of(1), "reservoir");
    /* another of the same second: the reservoir is gone */
    run_inv(t, "other", ZERO(ROOT_NEVER), T0 + 1500000, 10, "success", true);
    assert_int_equal(n_emitted, 2);
    /* the eager one's report: its final version follows, same reason, and
     * it does not draw again */
    feed(t, "[{\"time\":\"2024-05-20T16:29:46.020Z\",\"type\":\"platform.report\",\"record\":{"
            "\"requestId\":\"eager\",\"status\":\"success\",\"metrics\":{\"durationMs\":20.0}}}]");
    assert_int_equal(n_emitted, 3);
    assert_true(emitted_final[2]);
    assert_string_equal(reason_of(2), "reservoir");
    tracer_get_stats(t, &st);
    assert_int_equal(st.kept[SAMPLING_BY_RESERVOIR], 1);
    assert_int_equal(st.dropped, 1);
    assert_string_equal(st.first_dropped, "other");
    tracer_destroy(t);
}

static void test_smart_shutdown_and_failed_init_are_outcomes(void **state)
{
    struct tracer *t = new_smart_tracer(0);
    struct ext_event sd;
    (void)state;
    run_inv(t, "cold", NULL, T0, 10, "success", true);
    run_inv(t, "res", ZERO(ROOT_NEVER), T0 + 1000000, 10, "success", true);
    /* open at SHUTDOWN (reset): a failure */
    invoke(t, "open", T0 + 1100000, (T0 + 1100000) / 1000 + 3000, ZERO(ROOT_NEVER));
    memset(&sd, 0, sizeof(sd));
    sd.type = EXT_EVENT_SHUTDOWN;
    sd.shutdown_reason = EXT_SHUTDOWN_FAILURE;
    tracer_on_shutdown(t, &sd, T0 + 1150000);
    assert_int_equal(n_emitted, 3);
    assert_string_equal(reason_of(2), "outcome");
    tracer_destroy(t);

    t = new_smart_tracer(0);
    feed(t, "[{\"time\":\"2024-05-20T16:29:44.800Z\",\"type\":\"platform.initStart\",\"record\":{"
            "\"initializationType\":\"on-demand\",\"phase\":\"init\"}},"
            "{\"time\":\"2024-05-20T16:29:44.900Z\",\"type\":\"platform.initReport\",\"record\":{"
            "\"initializationType\":\"on-demand\",\"phase\":\"init\",\"status\":\"error\","
            "\"errorType\":\"Runtime.Unknown\",\"metrics\":{\"durationMs\":100.0}}}]");
    assert_int_equal(n_emitted, 1);
    assert_string_equal(reason_of(0), "outcome");
    tracer_destroy(t);
}

static void test_shutdown_closes_open_invocations(void **state)
{
    struct tracer *t = new_tracer(false);
    struct ext_event sd;
    (void)state;
    invoke(t, "killed", T0, T0 / 1000 + 1000, NULL);
    feed(t, "[{\"time\":\"2024-05-20T16:29:45.000Z\",\"type\":\"platform.start\",\"record\":{\"requestId\":\"killed\"}}]");
    memset(&sd, 0, sizeof(sd));
    sd.type = EXT_EVENT_SHUTDOWN;
    sd.shutdown_reason = EXT_SHUTDOWN_TIMEOUT;
    tracer_on_shutdown(t, &sd, T0 + 1000500);
    assert_int_equal(n_emitted, 1);
    assert_true(emitted[0].fault);
    assert_string_equal(emitted[0].cause_type, "Sandbox.Timedout");
    assert_string_equal(emitted[0].cause_message, "Task timed out after 1.00 seconds");
    assert_true(emitted[0].end_us == T0 + 1000500);
    assert_string_equal(find_attr(&emitted[0], "closed_by_shutdown")->str, "timeout");
    /* a late report for it is ignored */
    feed(t, "[{\"time\":\"2024-05-20T16:29:46.000Z\",\"type\":\"platform.report\",\"record\":{\"requestId\":\"killed\",\"status\":\"timeout\"}}]");
    assert_int_equal(n_emitted, 1);
    assert_int_equal(tracer_open_count(t), 0);
    tracer_destroy(t);
}

static void test_in_progress_before_deadline_then_final_same_id(void **state)
{
    struct tracer *t = new_tracer(false);
    (void)state;
    invoke(t, "slow", T0, T0 / 1000 + 1000, NULL);
    assert_true(tracer_tick(t, T0 + 500000) == T0 + 800000); /* deadline - 200 ms margin */
    assert_int_equal(n_emitted, 0);
    assert_true(tracer_tick(t, T0 + 800000) == -1);
    assert_int_equal(n_emitted, 1);
    assert_false(emitted_final[0]);
    assert_true(emitted[0].end_us == TRACE_NO_END);
    assert_true(find_attr(&emitted[0], "timing_out")->b);
    assert_true(tracer_tick(t, T0 + 900000) == -1); /* only once */
    feed(t, "[{\"time\":\"2024-05-20T16:29:46.001Z\",\"type\":\"platform.runtimeDone\",\"record\":{"
            "\"requestId\":\"slow\",\"status\":\"timeout\"}},"
            "{\"time\":\"2024-05-20T16:29:46.002Z\",\"type\":\"platform.report\",\"record\":{"
            "\"requestId\":\"slow\",\"status\":\"timeout\",\"metrics\":{\"durationMs\":1000.0}}}]");
    assert_int_equal(n_emitted, 2);
    assert_true(emitted_final[1]);
    assert_string_equal(emitted[1].id, emitted[0].id);
    assert_string_equal(emitted[1].trace_id, emitted[0].trace_id);
    assert_null(find_attr(&emitted[1], "timing_out"));
    tracer_destroy(t);
}

static void test_provisioned_init_gap_not_added(void **state)
{
    struct tracer *t = new_tracer(false);
    (void)state;
    /* Init at 16:20, first invoke at 16:29:50: the invocation stays short */
    feed(t, "[{\"time\":\"2024-05-20T16:20:00.000Z\",\"type\":\"platform.initStart\",\"record\":{"
            "\"initializationType\":\"provisioned-concurrency\",\"phase\":\"init\"}},"
            "{\"time\":\"2024-05-20T16:20:00.300Z\",\"type\":\"platform.initReport\",\"record\":{"
            "\"initializationType\":\"provisioned-concurrency\",\"phase\":\"init\",\"status\":\"success\","
            "\"metrics\":{\"durationMs\":300.0}}}]");
    warm_invoke(t, "pc", NULL, "success", NULL, 30);
    /* the Init ran long before: a segment of its own in the same trace,
     * emitted first; the invocation's segment has no Initialization */
    assert_int_equal(n_emitted, 2);
    const struct trace_segment *in = &emitted[0];
    const struct trace_segment *s = &emitted[1];
    assert_int_equal(in->kind, TRACE_SEGMENT_INIT);
    assert_true(emitted_final[0] && emitted_final[1]);
    assert_string_equal(in->trace_id, s->trace_id);
    assert_string_equal(in->parent_id, s->parent_id);
    assert_string_not_equal(in->id, s->id);
    assert_string_equal(in->request_id, "");
    assert_string_equal(find_attr(in, "init_for_request_id")->str, "pc");
    assert_true(in->start_us == 1716222000000000LL && in->end_us == 1716222000300000LL);
    assert_true(span(in, "Initialization")->start_us == in->start_us);
    assert_true(span(in, "Initialization")->end_us == in->end_us);
    assert_true(s->start_us == T0 + 5000000);
    assert_true(s->end_us - s->start_us == 3000000);
    assert_null(span(s, "Initialization"));
    assert_string_equal(find_attr(s, "init_type")->str, "provisioned-concurrency");
    assert_true(find_attr(s, "init_to_invoke_gap_ms")->i == 589700);
    tracer_destroy(t);
}

static void test_suppressed_init_starts_the_segment(void **state)
{
    struct tracer *t = new_tracer(false);
    (void)state;
    feed(t, "[{\"time\":\"2024-05-20T16:29:49.000Z\",\"type\":\"platform.initStart\",\"record\":{"
            "\"initializationType\":\"on-demand\",\"phase\":\"invoke\"}},"
            "{\"time\":\"2024-05-20T16:29:49.900Z\",\"type\":\"platform.initReport\",\"record\":{"
            "\"initializationType\":\"on-demand\",\"phase\":\"invoke\",\"status\":\"success\","
            "\"metrics\":{\"durationMs\":900.0}}}]");
    warm_invoke(t, "re", NULL, "success", NULL, 30);
    const struct trace_segment *s = &emitted[0];
    assert_true(s->start_us == T0 + 4000000);
    assert_true(find_attr(s, "cold_start")->b);
    assert_null(find_attr(s, "init_to_invoke_gap_ms"));
    tracer_destroy(t);
}

static void test_dropped_telemetry_reported_once(void **state)
{
    struct tracer *t = new_tracer(false);
    (void)state;
    tracer_add_lost(t, 2);
    feed(t, "[{\"time\":\"2022-10-12T00:02:35.000Z\",\"type\":\"platform.logsDropped\",\"record\":{"
            "\"droppedBytes\":10,\"droppedRecords\":7,\"reason\":\"slow\"}}]");
    warm_invoke(t, "a", NULL, "success", NULL, 30);
    warm_invoke(t, "b", NULL, "success", NULL, 30);
    assert_true(find_attr(&emitted[0], "telemetry_lost_batches")->i == 2);
    assert_true(find_attr(&emitted[0], "telemetry_dropped_records")->i == 7);
    assert_int_equal(find_attr(&emitted[0], "telemetry_lost_batches")->target, TRACE_ATTR_METADATA);
    /* cumulative platform drops stay visible; our own lost count was reported */
    assert_true(find_attr(&emitted[1], "telemetry_lost_batches")->i == 0);
    tracer_destroy(t);
}

/* Announced invocations within their deadlines grow the table up to its
 * bound (512); past it the oldest is evicted, counted as announced. */
static void test_table_full_evicts_oldest(void **state)
{
    struct tracer *t = new_tracer(false);
    struct tracer_stats st;
    char rid[32];
    (void)state;
    for (int i = 0; i < 70; i++) {
        snprintf(rid, sizeof(rid), "open-%d", i);
        invoke(t, rid, T0, T0 / 1000 + 1000, NULL);
    }
    tracer_get_stats(t, &st);
    assert_int_equal(st.evicted, 0);
    assert_int_equal(tracer_open_count(t), 70);
    for (int i = 70; i < 520; i++) {
        snprintf(rid, sizeof(rid), "open-%d", i);
        invoke(t, rid, T0, T0 / 1000 + 1000, NULL);
    }
    tracer_get_stats(t, &st);
    assert_int_equal(st.evicted, 8);
    assert_int_equal(st.evicted_announced, 8);
    assert_int_equal(tracer_open_count(t), 512);
    /* the oldest went, the newest are there */
    struct tracer_identity id;
    assert_false(tracer_identity(t, "open-7", &id));
    assert_true(tracer_identity(t, "open-8", &id));
    assert_true(tracer_identity(t, "open-519", &id));
    tracer_destroy(t);
}

/* --- the invocation table under a flood of other request ids (issue 10.5) --- */

#define FLOOD_SEGS_MAX 2048
struct flood_seg {
    char request_id[EVENT_REQUEST_ID_MAX];
    char trace_id[XRAY_TRACE_ID_LEN + 1];
    char parent_id[XRAY_SPAN_ID_LEN + 1];
    bool final;
    int64_t evicted; /* evicted_invocations metadata, -1 when absent */
};
static struct flood_seg flood_segs[FLOOD_SEGS_MAX];
static int n_flood_segs;

static void on_emit_flood(const struct trace_segment *seg, bool final, void *ctx)
{
    (void)ctx;
    assert_true(n_flood_segs < FLOOD_SEGS_MAX);
    struct flood_seg *f = &flood_segs[n_flood_segs++];
    snprintf(f->request_id, sizeof(f->request_id), "%s", seg->request_id);
    snprintf(f->trace_id, sizeof(f->trace_id), "%s", seg->trace_id);
    snprintf(f->parent_id, sizeof(f->parent_id), "%s", seg->parent_id);
    f->final = final;
    const struct trace_attr *a = find_attr(seg, "evicted_invocations");
    if (a != NULL) {
        assert_int_equal(a->target, TRACE_ATTR_METADATA);
        assert_string_equal(a->otel_key, "aws.lambda.evicted_invocations");
    }
    f->evicted = a != NULL ? a->i : -1;
}

static struct tracer *new_flood_tracer(unsigned tail_lines)
{
    struct tracer_options o = {
        .function_name = "demo-fn",
        .function_version = "$LATEST",
        .region = "us-east-1",
        .timeout_margin_us = 200000,
        .log_tail_lines = tail_lines,
        .log_tail_max_bytes = 2048,
        .emit = on_emit_flood,
    };
    n_flood_segs = 0;
    return tracer_new(&o);
}

static const struct flood_seg *flood_seg_of(const char *rid, bool final)
{
    for (int i = 0; i < n_flood_segs; i++)
        if (strcmp(flood_segs[i].request_id, rid) == 0 && flood_segs[i].final == final)
            return &flood_segs[i];
    return NULL;
}

/* n records of request ids "<prefix>-<from..from+n-1>", in batches of 50:
 * platform.start only, or with a function line and a failed runtimeDone
 * (which attaches a log tail), or platform.start carrying a trace header
 * (Managed Instances: the only trace context there is). */
enum flood_kind { FLOOD_START, FLOOD_FAILING, FLOOD_TRACED };

static void hdr_for(char *buf, size_t size, const char *prefix, int i)
{
    unsigned h = 0;
    for (const char *p = prefix; *p; p++)
        h = h * 31 + (unsigned char)*p;
    snprintf(buf, size, "Root=1-5759e988-%08x%016x;Parent=%016x;Sampled=1", h, (unsigned)i,
             (unsigned)i + 1);
}

static void feed_flood(struct tracer *t, const char *prefix, int from, int n, enum flood_kind kind)
{
    static char buf[64 * 1024];
    for (int i = from; i < from + n;) {
        size_t len = 0;
        buf[len++] = '[';
        for (int k = 0; k < 50 && i < from + n; k++, i++) {
            char hdr[128];
            int w;
            if (kind == FLOOD_TRACED)
                hdr_for(hdr, sizeof(hdr), prefix, i);
            if (kind == FLOOD_START)
                w = snprintf(buf + len, sizeof(buf) - len,
                             "%s{\"time\":\"2024-05-20T16:29:45.001Z\",\"type\":\"platform.start\","
                             "\"record\":{\"requestId\":\"%s-%d\"}}",
                             k ? "," : "", prefix, i);
            else if (kind == FLOOD_TRACED)
                w = snprintf(buf + len, sizeof(buf) - len,
                             "%s{\"time\":\"2024-05-20T16:29:45.001Z\",\"type\":\"platform.start\","
                             "\"record\":{\"requestId\":\"%s-%d\",\"tracing\":{\"type\":\"X-Amzn-Trace-Id\","
                             "\"value\":\"%s\"}}}",
                             k ? "," : "", prefix, i, hdr);
            else
                w = snprintf(buf + len, sizeof(buf) - len,
                             "%s{\"time\":\"2024-05-20T16:29:45.001Z\",\"type\":\"platform.start\","
                             "\"record\":{\"requestId\":\"%s-%d\"}},"
                             "{\"time\":\"2024-05-20T16:29:45.002Z\",\"type\":\"function\",\"record\":\"oops %d\"},"
                             "{\"time\":\"2024-05-20T16:29:45.003Z\",\"type\":\"platform.runtimeDone\","
                             "\"record\":{\"requestId\":\"%s-%d\",\"status\":\"error\",\"errorType\":\"E\"}}",
                             k ? "," : "", prefix, i, i, prefix, i);
            assert_true(w > 0 && (size_t)w < sizeof(buf) - len - 2);
            len += (size_t)w;
        }
        buf[len++] = ']';
        buf[len] = '\0';
        feed(t, buf);
    }
}

static void records_for(struct tracer *t, const char *rid, bool start, bool rest)
{
    char buf[1024];
    if (start) {
        snprintf(buf, sizeof(buf),
                 "[{\"time\":\"2024-05-20T16:29:45.000Z\",\"type\":\"platform.start\",\"record\":{\"requestId\":\"%.128s\"}}]",
                 rid);
        feed(t, buf);
    }
    if (rest) {
        snprintf(buf, sizeof(buf),
                 "[{\"time\":\"2024-05-20T16:29:45.020Z\",\"type\":\"platform.runtimeDone\",\"record\":{"
                 "\"requestId\":\"%.128s\",\"status\":\"success\"}},"
                 "{\"time\":\"2024-05-20T16:29:45.030Z\",\"type\":\"platform.report\",\"record\":{"
                 "\"requestId\":\"%.128s\",\"status\":\"success\",\"metrics\":{\"durationMs\":30.0}}}]",
                 rid, rid);
        feed(t, buf);
    }
}

#define REAL_HDR "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"

/* Thousands of unknown platform.start records between INVOKE and the
 * invocation's own records (before its start, and between its start and
 * its report): it keeps the trace id and parent INVOKE's header gave it,
 * the table stays bounded, every eviction is counted and reported once, on
 * the next segment. */
static void test_flood_keeps_the_invoked_trace_context(void **state)
{
    (void)state;
    for (int mode = 0; mode < 2; mode++) {
        struct tracer *t = new_flood_tracer(0);
        struct tracer_stats st;
        invoke(t, "real", T0, T0 / 1000 + 60000, REAL_HDR);
        if (mode == 1)
            records_for(t, "real", true, false);
        feed_flood(t, "flood", 0, 5000, FLOOD_START);
        assert_int_equal(tracer_open_count(t), 64);
        tracer_get_stats(t, &st);
        assert_int_equal(st.evicted, 5000 - 63);
        records_for(t, "real", mode == 0, true);
        const struct flood_seg *f = flood_seg_of("real", true);
        assert_non_null(f);
        assert_string_equal(f->trace_id, "1-5759e988-bd862e3fe1be46a994272793");
        assert_string_equal(f->parent_id, "53995c3f42cd8ad8");
        assert_int_equal(f->evicted, 5000 - 63);
        assert_int_equal(n_flood_segs, 1);
        /* reported once: the next segment does not repeat it */
        invoke(t, "next", T0 + 1000000, T0 / 1000 + 61000, NULL);
        records_for(t, "next", true, true);
        assert_int_equal(flood_seg_of("next", true)->evicted, -1);
        tracer_get_stats(t, &st);
        assert_int_equal(st.evicted, 5000 - 63);
        assert_int_equal(tracer_open_count(t), 63);
        tracer_destroy(t);
    }
}

/* A table full of INVOKE-announced invocations within their deadlines:
 * unknown records are not admitted (each counted), every announced one keeps
 * its context; once reported, their slots are released to newcomers. */
static void test_announced_invocations_are_pinned_until_reported(void **state)
{
    struct tracer *t = new_flood_tracer(0);
    struct tracer_stats st;
    char rid[32], hdr[128];
    struct tracer_identity id;
    (void)state;
    for (int i = 0; i < 64; i++) {
        snprintf(rid, sizeof(rid), "inv-%d", i);
        hdr_for(hdr, sizeof(hdr), "inv", i);
        invoke(t, rid, T0, T0 / 1000 + 60000, hdr);
    }
    feed_flood(t, "flood", 0, 1000, FLOOD_START);
    tracer_get_stats(t, &st);
    assert_int_equal(st.evicted, 1000);
    assert_int_equal(tracer_open_count(t), 64);
    for (int i = 0; i < 64; i++) {
        snprintf(rid, sizeof(rid), "inv-%d", i);
        hdr_for(hdr, sizeof(hdr), "inv", i);
        assert_true(tracer_identity(t, rid, &id));
        assert_int_equal(strncmp(hdr + 5, id.trace_id, strlen(id.trace_id)), 0);
    }
    for (int i = 0; i < 64; i++) {
        snprintf(rid, sizeof(rid), "inv-%d", i);
        records_for(t, rid, true, true);
    }
    assert_int_equal(n_flood_segs, 64);
    for (int i = 0; i < 64; i++) {
        snprintf(rid, sizeof(rid), "inv-%d", i);
        hdr_for(hdr, sizeof(hdr), "inv", i);
        const struct flood_seg *f = flood_seg_of(rid, true);
        assert_non_null(f);
        assert_int_equal(strncmp(hdr + 5, f->trace_id, strlen(f->trace_id)), 0);
        assert_int_equal(f->evicted, i == 0 ? 1000 : -1);
    }
    assert_int_equal(tracer_open_count(t), 0);
    /* released: 64 finished slots are reused without counting, then the
     * newcomers push out each other */
    feed_flood(t, "late", 0, 100, FLOOD_START);
    tracer_get_stats(t, &st);
    assert_int_equal(st.evicted, 1000 + 100 - 64);
    assert_int_equal(tracer_open_count(t), 64);
    tracer_destroy(t);
}

/* The pipeline running behind INVOKE (issue 12): outside Managed
 * Instances every INVOKE but the newest has finished running, and their
 * records come later (Telemetry API buffering, a slow batch).  With 300
 * announced before any record, every one is still exported, with the trace
 * context INVOKE gave it, nothing evicted; records of other ids met
 * meanwhile are tracked in the grown table too.  (The table held 64: the
 * first 236 lost their slot and, their records finding every slot pinned,
 * were never exported.) */
static void test_pipeline_behind_invoke_exports_every_announced(void **state)
{
    struct tracer *t = new_flood_tracer(0);
    struct tracer_stats st;
    char rid[32], hdr[128];
    (void)state;
    for (int i = 0; i < 300; i++) {
        snprintf(rid, sizeof(rid), "lag-%d", i);
        hdr_for(hdr, sizeof(hdr), "lag", i);
        invoke(t, rid, T0 + i * 1000, T0 / 1000 + 60000, hdr);
    }
    assert_int_equal(tracer_open_count(t), 300);
    /* oldest first, as the platform sends them; the last in one go */
    for (int i = 0; i < 300; i++) {
        snprintf(rid, sizeof(rid), "lag-%d", i);
        records_for(t, rid, true, true);
    }
    tracer_get_stats(t, &st);
    assert_int_equal(st.evicted, 0);
    assert_int_equal(st.evicted_announced, 0);
    assert_int_equal(n_flood_segs, 300);
    assert_int_equal(tracer_open_count(t), 0);
    for (int i = 0; i < 300; i++) {
        snprintf(rid, sizeof(rid), "lag-%d", i);
        hdr_for(hdr, sizeof(hdr), "lag", i);
        const struct flood_seg *f = flood_seg_of(rid, true);
        if (f == NULL)
            fail_msg("%s was not exported", rid);
        assert_memory_equal(hdr + 5, f->trace_id, XRAY_TRACE_ID_LEN + 1 - 1);
        assert_int_equal(f->evicted, -1);
    }
    /* the finished slots are reused: the table does not grow again, a late
     * record of a finished invocation is ignored, not a new invocation */
    records_for(t, "lag-5", true, true);
    assert_int_equal(n_flood_segs, 300);
    assert_int_equal(tracer_open_count(t), 0);
    feed_flood(t, "after", 0, 600, FLOOD_START);
    tracer_get_stats(t, &st);
    assert_int_equal(tracer_open_count(t), 512);
    assert_int_equal(st.evicted, 600 - 512);
    tracer_destroy(t);
}

/* Request ids found through the index: ids that share a bucket, slots
 * reused many times over (each reuse leaves its old id unfindable). */
static void test_index_finds_every_id_after_reuse(void **state)
{
    struct tracer *t = new_flood_tracer(0);
    struct tracer_identity id;
    char rid[32];
    (void)state;
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < 500; i++) {
            char hdr[128];
            snprintf(rid, sizeof(rid), "r%d-%d", round, i);
            hdr_for(hdr, sizeof(hdr), "r", round * 1000 + i); /* Sampled=1: every one exported */
            invoke(t, rid, T0, T0 / 1000 + 60000, hdr);
        }
        for (int i = 0; i < 500; i++) {
            snprintf(rid, sizeof(rid), "r%d-%d", round, i);
            assert_true(tracer_identity(t, rid, &id));
            if (round > 0) {
                snprintf(rid, sizeof(rid), "r%d-%d", round - 1, i);
                assert_false(tracer_identity(t, rid, &id));
            }
        }
        for (int i = 0; i < 500; i++) {
            snprintf(rid, sizeof(rid), "r%d-%d", round, i);
            records_for(t, rid, true, true);
            assert_false(tracer_identity(t, rid, &id)); /* finished */
        }
        assert_int_equal(n_flood_segs, 500 * (round + 1));
    }
    struct tracer_stats st;
    tracer_get_stats(t, &st);
    assert_int_equal(st.evicted, 0);
    tracer_destroy(t);
}

/* Lambda delivers a batch again when our answer was late: the records of
 * invocations exported long ago (their slots reused by hundreds since)
 * make no second segment, and are counted.  (A fresh-clone run found 16
 * invocations exported twice out of 10,000.) */
static void test_redelivered_records_make_no_second_segment(void **state)
{
    struct tracer *t = new_flood_tracer(0);
    struct tracer_stats st;
    char rid[32], hdr[128];
    (void)state;
    for (int i = 0; i < 600; i++) {
        snprintf(rid, sizeof(rid), "d-%d", i);
        hdr_for(hdr, sizeof(hdr), "d", i);
        invoke(t, rid, T0, T0 / 1000 + 60000, hdr);
        records_for(t, rid, true, true);
    }
    assert_int_equal(n_flood_segs, 600);
    /* the first ten, and the last ten (still in the table), delivered again */
    for (int i = 0; i < 600; i++) {
        if (i >= 10 && i < 590)
            continue;
        snprintf(rid, sizeof(rid), "d-%d", i);
        records_for(t, rid, true, true);
    }
    assert_int_equal(n_flood_segs, 600);
    tracer_get_stats(t, &st);
    assert_int_equal(st.late_records, 20 * 3);
    assert_int_equal(st.segments, 600);
    /* a new request id is not mistaken for one of them */
    records_for(t, "d-new", true, true);
    assert_int_equal(n_flood_segs, 601);
    tracer_destroy(t);
}

/* FNV-1a (64 bits), the tracer's hash of a request id: to make ids that
 * share one chain of its index. */
static uint64_t fnv1a64(const char *s)
{
    uint64_t h = 14695981039346656037ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* More invocations than the ring of exported request ids holds (1,024),
 * all of them in one chain of its index: the oldest leave it (their
 * records make a segment again), every one of the last 1,024 is still
 * known. */
static void test_redelivered_records_past_the_ring(void **state)
{
    enum { N = 1100 };
    static char ids[N][24];
    struct tracer *t = new_flood_tracer(0);
    struct tracer_stats st;
    char hdr[128];
    (void)state;
    for (int i = 0, k = 0; i < N; k++) {
        snprintf(ids[i], sizeof(ids[i]), "c-%d", k);
        if ((fnv1a64(ids[i]) & 1023) == 0)
            i++;
    }
    for (int i = 0; i < N; i++) {
        hdr_for(hdr, sizeof(hdr), "c", i);
        invoke(t, ids[i], T0, T0 / 1000 + 60000, hdr);
        records_for(t, ids[i], true, true);
    }
    assert_int_equal(n_flood_segs, N);
    for (int i = N - 1024; i < N; i++)
        records_for(t, ids[i], true, false);
    tracer_get_stats(t, &st);
    assert_int_equal(st.late_records, 1024);
    assert_int_equal(n_flood_segs, N);
    /* forgotten: not late (looked for through the whole chain), a new
     * invocation, exported */
    for (int i = 0; i < N - 1024; i++)
        records_for(t, ids[i], true, false);
    tracer_get_stats(t, &st);
    assert_int_equal(st.late_records, 1024);
    for (int i = 0; i < N - 1024; i += 25) {
        hdr_for(hdr, sizeof(hdr), "c", i);
        invoke(t, ids[i], T0, T0 / 1000 + 60000, hdr);
        records_for(t, ids[i], true, true);
    }
    assert_int_equal(n_flood_segs, N + 4);
    tracer_get_stats(t, &st);
    assert_int_equal(st.late_records, 1024);
    tracer_destroy(t);
}

/* An INVOKE handled after its invocation's records finished it (a loop far
 * behind) makes no second segment: not while the invocation is still in
 * the table, nor once its slot was reused; a deadline or SHUTDOWN later
 * finds nothing open. */
static void test_invoke_after_its_invocation_was_exported_is_ignored(void **state)
{
    struct tracer *t = new_flood_tracer(0);
    struct tracer_stats st;
    struct ext_event ev;
    char rid[32], hdr[128];
    (void)state;
    for (int i = 0; i < 200; i++) {
        snprintf(rid, sizeof(rid), "r-%d", i);
        hdr_for(hdr, sizeof(hdr), "r", i);
        invoke(t, rid, T0, T0 / 1000 + 1000, hdr);
        records_for(t, rid, true, true);
    }
    assert_int_equal(n_flood_segs, 200);
    memset(&ev, 0, sizeof(ev));
    ev.type = EXT_EVENT_INVOKE;
    ev.deadline_ms = T0 / 1000 + 1000;
    for (int i = 0; i < 200; i += 199) { /* r-0: slot reused long ago; r-199: still in the table */
        snprintf(ev.request_id, sizeof(ev.request_id), "r-%d", i);
        hdr_for(hdr, sizeof(hdr), "r", i);
        snprintf(ev.trace_header, sizeof(ev.trace_header), "%s", hdr);
        assert_false(tracer_on_invoke(t, &ev, T0 + 100000, false));
    }
    assert_int_equal(tracer_open_count(t), 0);
    (void)tracer_tick(t, T0 + 5000000); /* past the deadline it would have had */
    memset(&ev, 0, sizeof(ev));
    ev.type = EXT_EVENT_SHUTDOWN;
    ev.shutdown_reason = EXT_SHUTDOWN_SPINDOWN;
    tracer_on_shutdown(t, &ev, T0 + 6000000);
    assert_int_equal(n_flood_segs, 200);
    tracer_get_stats(t, &st);
    assert_int_equal(st.late_records, 2);
    assert_int_equal(st.closed_by_shutdown, 0);
    /* a new id is still taken */
    snprintf(ev.request_id, sizeof(ev.request_id), "r-new");
    ev.type = EXT_EVENT_INVOKE;
    assert_true(tracer_on_invoke(t, &ev, T0 + 100000, false));
    assert_int_equal(tracer_open_count(t), 1);
    tracer_destroy(t);
}

/* The tracer says which invocations will never have a final segment: the
 * ones sampling leaves out and the ones evicted.  The journal frees their
 * slots on this word; one forgotten by mistake would lose a kept segment
 * after a reset, one never forgotten fills the journal. */
#define FORGOT_MAX 64
static char forgot[FORGOT_MAX][EVENT_REQUEST_ID_MAX];
static int n_forgot;

static void on_forget(const char *request_id, void *ctx)
{
    (void)ctx;
    assert_true(n_forgot < FORGOT_MAX);
    snprintf(forgot[n_forgot++], sizeof(forgot[0]), "%s", request_id);
}

static void test_left_out_and_evicted_invocations_are_forgotten(void **state)
{
    struct tracer_options o = {
        .function_name = "demo-fn", .function_version = "$LATEST", .region = "us-east-1",
        .sampling = SAMPLING_POLICY_HEADER, .timeout_margin_us = 200000,
        .emit = on_emit_flood, .forget = on_forget,
    };
    struct tracer *t;
    char rid[32];
    (void)state;
    n_flood_segs = 0;
    n_forgot = 0;
    t = tracer_new(&o);
    assert_non_null(t);
    invoke(t, "kept", T0, T0 / 1000 + 60000, REAL_HDR);
    records_for(t, "kept", true, true);
    invoke(t, "left-out", T0, T0 / 1000 + 60000,
           "Root=1-5759e988-bd862e3fe1be46a994272794;Parent=53995c3f42cd8ad8;Sampled=0");
    records_for(t, "left-out", true, false);
    assert_int_equal(n_forgot, 0); /* not before its outcome is known */
    records_for(t, "left-out", false, true);
    assert_int_equal(n_forgot, 1);
    assert_string_equal(forgot[0], "left-out");
    assert_non_null(flood_seg_of("kept", true));
    assert_null(flood_seg_of("left-out", true));
    /* a record delivered again does not forget it twice */
    records_for(t, "left-out", true, true);
    assert_int_equal(n_forgot, 1);
    /* open invocations known from telemetry only, pushed out by a flood */
    for (int i = 0; i < 40; i++) {
        snprintf(rid, sizeof(rid), "old-%d", i);
        records_for(t, rid, true, false);
    }
    feed_flood(t, "new", 0, 64, FLOOD_START);
    assert_int_equal(n_forgot, 1 + 40);
    for (int i = 0; i < 40; i++) {
        snprintf(rid, sizeof(rid), "old-%d", i);
        assert_string_equal(forgot[1 + i], rid);
    }
    tracer_destroy(t);
}

/* An announced invocation past its deadline with no report yields, but
 * only after every invocation known from telemetry alone: oldest first. */
static void test_announced_past_deadline_yields_last(void **state)
{
    struct tracer *t = new_flood_tracer(0);
    struct tracer_stats st;
    struct tracer_identity id;
    char rid[32];
    (void)state;
    for (int i = 0; i < 64; i++) {
        snprintf(rid, sizeof(rid), "inv-%d", i);
        invoke(t, rid, T0, T0 / 1000 + 1000, REAL_HDR);
    }
    (void)tracer_tick(t, T0 + 1500000); /* past every deadline: in-progress versions */
    assert_int_equal(n_flood_segs, 64);
    feed_flood(t, "u", 0, 3, FLOOD_START);
    tracer_get_stats(t, &st);
    /* u-0 took inv-0's slot; u-1 and u-2 each pushed out the one before */
    assert_int_equal(st.evicted, 3);
    assert_false(tracer_identity(t, "inv-0", &id));
    assert_true(tracer_identity(t, "inv-1", &id));
    assert_false(tracer_identity(t, "u-0", &id));
    assert_false(tracer_identity(t, "u-1", &id));
    assert_true(tracer_identity(t, "u-2", &id));
    /* an INVOKE is announced: it takes the oldest unannounced slot first */
    invoke(t, "new", T0 + 2000000, T0 / 1000 + 60000, NULL);
    assert_false(tracer_identity(t, "u-2", &id));
    assert_true(tracer_identity(t, "inv-1", &id));
    tracer_get_stats(t, &st);
    assert_int_equal(st.evicted, 4);
    assert_int_equal(tracer_open_count(t), 64);
    tracer_destroy(t);
}

/* Managed Instances: no INVOKE, every invocation known from telemetry, its
 * trace context from platform.start.  More concurrent ones than the table:
 * the oldest go (counted), the newest 64 keep their contexts. */
static void test_telemetry_only_invocations_oldest_yield(void **state)
{
    struct tracer *t = new_flood_tracer(0);
    struct tracer_stats st;
    char rid[32], hdr[128];
    (void)state;
    feed_flood(t, "mi", 0, 100, FLOOD_TRACED);
    tracer_get_stats(t, &st);
    assert_int_equal(st.evicted, 36);
    assert_int_equal(tracer_open_count(t), 64);
    for (int i = 36; i < 100; i++) {
        snprintf(rid, sizeof(rid), "mi-%d", i);
        records_for(t, rid, false, true);
        hdr_for(hdr, sizeof(hdr), "mi", i);
        const struct flood_seg *f = flood_seg_of(rid, true);
        assert_non_null(f);
        assert_int_equal(strncmp(hdr + 5, f->trace_id, strlen(f->trace_id)), 0);
        assert_int_equal(strlen(f->trace_id), strlen("1-5759e988-bd862e3fe1be46a994272793"));
    }
    assert_int_equal(flood_seg_of("mi-36", true)->evicted, 36);
    tracer_get_stats(t, &st);
    assert_int_equal(st.evicted, 36);
    assert_int_equal(tracer_open_count(t), 0);
    tracer_destroy(t);
}

/* Memory stays bounded whatever the flood: evicted invocations free what
 * they held (a failed one holds a copy of the log tail). */
static void test_flood_memory_is_bounded(void **state)
{
    struct tracer *t = new_flood_tracer(3);
    struct tracer_stats st;
    (void)state;
    invoke(t, "real", T0, T0 / 1000 + 60000, REAL_HDR);
    fail_alloc_reset();
    feed_flood(t, "bad", 0, 2000, FLOOD_FAILING);
    tracer_get_stats(t, &st);
    assert_int_equal(st.evicted, 2000 - 63);
    assert_true(fail_alloc_live() > 0);
    assert_true(fail_alloc_live() <= 63); /* one tail per open failed invocation at most */
    records_for(t, "real", true, true);
    assert_string_equal(flood_seg_of("real", true)->trace_id, "1-5759e988-bd862e3fe1be46a994272793");
    tracer_destroy(t);
    assert_true(fail_alloc_live() <= 0);
}

static void test_log_tail_attached_to_failures_only(void **state)
{
    struct tracer *t = new_tracer_tail(false, 3, 2048);
    char buf[4096];
    (void)state;
    /* lines before platform.start (Init, the previous invocation) are not the tail */
    feed(t, "[{\"time\":\"2024-05-20T16:29:49.000Z\",\"type\":\"function\",\"record\":\"init line\\n\"}]");
    invoke(t, "ok", T0, T0 / 1000 + 8000, NULL);
    feed(t, "[{\"time\":\"2024-05-20T16:29:50.000Z\",\"type\":\"platform.start\",\"record\":{\"requestId\":\"ok\"}},"
            "{\"time\":\"2024-05-20T16:29:50.001Z\",\"type\":\"function\",\"record\":\"fine\\n\"},"
            "{\"time\":\"2024-05-20T16:29:50.002Z\",\"type\":\"platform.runtimeDone\",\"record\":{\"requestId\":\"ok\",\"status\":\"success\"}},"
            "{\"time\":\"2024-05-20T16:29:50.003Z\",\"type\":\"platform.report\",\"record\":{\"requestId\":\"ok\",\"status\":\"success\",\"metrics\":{\"durationMs\":3.0}}}]");
    assert_string_equal(emitted[0].cause_message, "");
    invoke(t, "bad", T0, T0 / 1000 + 8000, NULL);
    snprintf(buf, sizeof(buf), "%s",
             "[{\"time\":\"2024-05-20T16:29:51.000Z\",\"type\":\"platform.start\",\"record\":{\"requestId\":\"bad\"}},"
             "{\"time\":\"2024-05-20T16:29:51.001Z\",\"type\":\"function\",\"record\":\"one\\n\"},"
             "{\"time\":\"2024-05-20T16:29:51.001Z\",\"type\":\"function\",\"record\":{\"message\":\"two (json)\"}},"
             "{\"time\":\"2024-05-20T16:29:51.002Z\",\"type\":\"function\",\"record\":\"three\\n\"},"
             "{\"time\":\"2024-05-20T16:29:51.003Z\",\"type\":\"function\",\"record\":\"four\\n\"},"
             "{\"time\":\"2024-05-20T16:29:51.004Z\",\"type\":\"platform.runtimeDone\",\"record\":{\"requestId\":\"bad\",\"status\":\"error\",\"errorType\":\"Runtime.ExitError\"}},"
             "{\"time\":\"2024-05-20T16:29:51.005Z\",\"type\":\"function\",\"record\":\"after the end\\n\"},"
             "{\"time\":\"2024-05-20T16:29:51.006Z\",\"type\":\"platform.report\",\"record\":{\"requestId\":\"bad\",\"status\":\"error\",\"errorType\":\"Runtime.ExitError\",\"metrics\":{\"durationMs\":6.0}}}]");
    feed(t, buf);
    assert_int_equal(n_emitted, 2);
    /* the last 3 lines of the invocation, oldest first, newline-terminated */
    assert_string_equal(emitted[1].cause_message,
                        "The runtime exited before completing the invocation\n"
                        "Last function log lines:\ntwo (json)\nthree\nfour\n");
    tracer_destroy(t);
}

/* A long line is kept cut to 511 bytes, its trailing newlines stripped
 * first: only when newlines are all that follows the cut do they matter. */
static void test_log_tail_long_lines(void **state)
{
    static const struct {
        size_t text;     /* 'a's */
        const char *end; /* then this, repeated */
        size_t times;
        size_t kept;     /* 'a's in the tail */
    } cases[] = {
        {600, "\\n", 1, 511}, {100, "\\n", 600, 100}, {510, "\\n", 5, 510}, {511, "\\n", 1, 511},
        {512, "\\n", 1, 511}, {509, "\\r\\n", 3, 509}, {511, "x", 1, 511}, {300, "", 0, 300},
    };
    (void)state;
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        struct tracer *t = new_tracer_tail(false, 3, 4096);
        static char buf[16384];
        char want[600];
        size_t len;
        const char *tail;

        n_emitted = 0;
        invoke(t, "bad", T0, T0 / 1000 + 8000, NULL);
        len = (size_t)snprintf(buf, sizeof(buf), "%s",
                               "[{\"time\":\"2024-05-20T16:29:51.000Z\",\"type\":\"platform.start\",\"record\":{\"requestId\":\"bad\"}},"
                               "{\"time\":\"2024-05-20T16:29:51.001Z\",\"type\":\"function\",\"record\":\"");
        memset(buf + len, 'a', cases[c].text);
        len += cases[c].text;
        for (size_t k = 0; k < cases[c].times; k++)
            len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s", cases[c].end);
        snprintf(buf + len, sizeof(buf) - len, "%s",
                 "\"},{\"time\":\"2024-05-20T16:29:51.004Z\",\"type\":\"platform.runtimeDone\",\"record\":{\"requestId\":\"bad\",\"status\":\"timeout\"}},"
                 "{\"time\":\"2024-05-20T16:29:51.006Z\",\"type\":\"platform.report\",\"record\":{\"requestId\":\"bad\",\"status\":\"timeout\"}}]");
        feed(t, buf);
        assert_int_equal(n_emitted, 1);
        tail = strstr(emitted[0].cause_message, "Last function log lines:\n");
        assert_non_null(tail);
        tail += strlen("Last function log lines:\n");
        memset(want, 'a', cases[c].kept);
        want[cases[c].kept] = '\n';
        want[cases[c].kept + 1] = '\0';
        if (strcmp(tail, want) != 0)
            fail_msg("case %zu: a tail of %zu bytes, want %zu", c, strlen(tail), cases[c].kept + 1);
        tracer_destroy(t);
    }
}

static void test_log_tail_byte_cap_keeps_the_newest(void **state)
{
    struct tracer *t = new_tracer_tail(false, 100, 256);
    char buf[16384];
    size_t len;
    (void)state;
    invoke(t, "bad", T0, T0 / 1000 + 8000, NULL);
    len = (size_t)snprintf(buf, sizeof(buf), "%s",
                           "[{\"time\":\"2024-05-20T16:29:51.000Z\",\"type\":\"platform.start\",\"record\":{\"requestId\":\"bad\"}}");
    for (int i = 0; i < 60; i++)
        len += (size_t)snprintf(buf + len, sizeof(buf) - len,
                                ",{\"time\":\"2024-05-20T16:29:51.001Z\",\"type\":\"function\",\"record\":\"line %02d\\n\"}", i);
    snprintf(buf + len, sizeof(buf) - len, "%s",
             ",{\"time\":\"2024-05-20T16:29:51.004Z\",\"type\":\"platform.runtimeDone\",\"record\":{\"requestId\":\"bad\",\"status\":\"timeout\"}},"
             "{\"time\":\"2024-05-20T16:29:51.006Z\",\"type\":\"platform.report\",\"record\":{\"requestId\":\"bad\",\"status\":\"timeout\"}}]");
    feed(t, buf);
    const char *tail = strstr(emitted[0].cause_message, "Last function log lines:\n");
    assert_non_null(tail);
    tail += strlen("Last function log lines:\n");
    assert_true(strlen(tail) <= 256);
    assert_non_null(strstr(tail, "line 59\n"));
    assert_null(strstr(tail, "line 00"));
    /* whole lines only */
    assert_memory_equal(tail, "line ", 5);
    tracer_destroy(t);
}

static void test_failed_init_is_its_own_segment(void **state)
{
    struct tracer *t = new_tracer(false);
    struct ext_event sd;
    (void)state;
    feed(t, "[{\"time\":\"2024-05-20T16:29:40.000Z\",\"type\":\"platform.initStart\",\"record\":{"
            "\"initializationType\":\"on-demand\",\"phase\":\"init\"}},"
            "{\"time\":\"2024-05-20T16:29:40.500Z\",\"type\":\"platform.initRuntimeDone\",\"record\":{"
            "\"initializationType\":\"on-demand\",\"phase\":\"init\",\"status\":\"error\",\"errorType\":\"Runtime.ExitError\"}},"
            "{\"time\":\"2024-05-20T16:29:40.501Z\",\"type\":\"platform.initReport\",\"record\":{"
            "\"initializationType\":\"on-demand\",\"phase\":\"init\",\"status\":\"error\",\"errorType\":\"Runtime.ExitError\","
            "\"metrics\":{\"durationMs\":501.0}}}]");
    assert_int_equal(n_emitted, 1);
    const struct trace_segment *s = &emitted[0];
    assert_int_equal(s->kind, TRACE_SEGMENT_INIT);
    assert_true(s->fault);
    assert_string_equal(s->cause_type, "Runtime.ExitError");
    assert_string_equal(s->cause_message, "Init failed (Runtime.ExitError)");
    assert_true(s->start_us == T0 - 5000000);
    assert_true(s->end_us == T0 - 5000000 + 501000);
    assert_true(find_attr(s, "init_failed")->b);
    assert_non_null(span(s, "Initialization"));
    /* once only, even when SHUTDOWN follows */
    memset(&sd, 0, sizeof(sd));
    sd.type = EXT_EVENT_SHUTDOWN;
    sd.shutdown_reason = EXT_SHUTDOWN_FAILURE;
    tracer_on_shutdown(t, &sd, T0);
    assert_int_equal(n_emitted, 1);
    tracer_destroy(t);

    /* runtime failed, no initReport before SHUTDOWN: emitted at SHUTDOWN */
    t = new_tracer(false);
    feed(t, "[{\"time\":\"2024-05-20T16:29:40.000Z\",\"type\":\"platform.initStart\",\"record\":{"
            "\"initializationType\":\"on-demand\",\"phase\":\"init\"}},"
            "{\"time\":\"2024-05-20T16:29:41.000Z\",\"type\":\"platform.initRuntimeDone\",\"record\":{"
            "\"initializationType\":\"on-demand\",\"phase\":\"init\",\"status\":\"timeout\"}}]");
    assert_int_equal(n_emitted, 0);
    tracer_on_shutdown(t, &sd, T0);
    assert_int_equal(n_emitted, 1);
    assert_string_equal(emitted[0].cause_type, "Sandbox.Timedout");
    assert_string_equal(emitted[0].cause_message, "Init timed out");
    tracer_destroy(t);

    /* a failed suppressed Init (phase invoke) belongs to its invocation */
    t = new_tracer(false);
    feed(t, "[{\"time\":\"2024-05-20T16:29:40.000Z\",\"type\":\"platform.initStart\",\"record\":{"
            "\"initializationType\":\"on-demand\",\"phase\":\"invoke\"}},"
            "{\"time\":\"2024-05-20T16:29:40.501Z\",\"type\":\"platform.initReport\",\"record\":{"
            "\"initializationType\":\"on-demand\",\"phase\":\"invoke\",\"status\":\"error\",\"errorType\":\"Runtime.ExitError\","
            "\"metrics\":{\"durationMs\":501.0}}}]");
    assert_int_equal(n_emitted, 0);
    /* ... unless the sandbox is reset before that invocation reached us */
    tracer_on_shutdown(t, &sd, T0);
    assert_int_equal(n_emitted, 1);
    assert_int_equal(emitted[0].kind, TRACE_SEGMENT_INIT);
    tracer_destroy(t);
}

static void test_new_out_of_memory(void **state)
{
    struct tracer_options o = {.function_name = "f"};
    (void)state;
    fail_alloc_fail_at(1);
    assert_null(tracer_new(&o));
    fail_alloc_reset();
}

/* ---- SnapStart: the restore's anatomy (a watcher over a fake /proc) ---- */

static char snap_root[64];

static void snap_put(const char *rel, const char *text)
{
    char path[256], dir[256];
    int fd;

    snprintf(path, sizeof(path), "%s/%s", snap_root, rel);
    for (char *p = path + strlen(snap_root) + 1; (p = strchr(p, '/')) != NULL; p++) {
        snprintf(dir, sizeof(dir), "%.*s", (int)(p - path), path);
        mkdir(dir, 0755);
    }
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

/* The runtime (pid 200, a sibling of ours, 100): CPU in clock ticks. */
static void snap_runtime(int majflt, int ticks, long rchar)
{
    char text[512];

    snprintf(text, sizeof(text), "200 (bootstrap) S 1 0 0 0 0 0 1000 0 %d 0 %d 0 0 0 20 0 2 0 900 0 3000\n",
             majflt, ticks);
    snap_put("200/stat", text);
    snprintf(text, sizeof(text), "rchar: %ld\nwchar: 0\nsyscr: 1\nsyscw: 0\nread_bytes: 0\n"
             "write_bytes: 0\ncancelled_write_bytes: 0\n", rchar);
    snap_put("200/io", text);
}

static int64_t epoch_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A platform time (whole ms) strictly after every sample taken so far:
 * the clock is read until it has passed the next millisecond. */
static int64_t next_ms(void)
{
    int64_t t = (epoch_us() / 1000 + 2) * 1000;

    while (epoch_us() < t + 1000) {
    }
    return t;
}

static void test_snap_start_restore_anatomy(void **state)
{
    char tmpl[] = "/tmp/tracer-snap-XXXXXX";
    char buf[2048], a[40], b[40], cmd[128];
    struct initwatch_opts wo = {.self = 100, .interval_ms = 20, .max_samples = 1000};
    struct initwatch *w;
    struct tracer_options o = {
        .function_name = "demo-fn", .function_version = "$LATEST", .region = "us-east-1",
        .memory_size_mb = 128, .sampling = SAMPLING_POLICY_ALL, .timeout_margin_us = 200000,
        .emit = on_emit, .snap_start = true,
    };
    struct tracer *t;
    int64_t init_start, init_done, restore_start, restore_done;
    unsigned long refills;
    (void)state;

    assert_non_null(mkdtemp(tmpl));
    snprintf(snap_root, sizeof(snap_root), "%s", tmpl);
    wo.proc_root = snap_root;
    snap_put("100/stat", "100 (lambda-tracer) S 1 0 0 0 0 0 0 0 0 0 1 1 0 0 20 0 4 0 500 0 100\n");
    snap_put("100/cmdline", "/opt/extensions/lambda-tracer");
    snap_put("200/cmdline", "/var/runtime/bootstrap");
    w = initwatch_new(&wo);
    assert_non_null(w);
    o.initwatch = w;
    n_emitted = 0;
    t = tracer_new(&o);
    assert_non_null(t);

    /* Init: 1 s of CPU, 5 MB read; the snapshot follows */
    init_start = next_ms();
    snap_runtime(3, 100, 5000000);
    assert_true(initwatch_sample(w));
    init_done = next_ms();
    iso(init_start, a, sizeof(a));
    iso(init_done, b, sizeof(b));
    snprintf(buf, sizeof(buf),
             "[{\"time\":\"%s\",\"type\":\"platform.initStart\",\"record\":{\"initializationType\":"
             "\"snap-start\",\"phase\":\"init\"}},"
             "{\"time\":\"%s\",\"type\":\"platform.initRuntimeDone\",\"record\":{\"initializationType\":"
             "\"snap-start\",\"phase\":\"init\",\"status\":\"success\"}},"
             "{\"time\":\"%s\",\"type\":\"platform.initReport\",\"record\":{\"initializationType\":"
             "\"snap-start\",\"phase\":\"init\",\"status\":\"success\",\"metrics\":{\"durationMs\":5.0}}}]",
             a, b, b);
    feed(t, buf);
    /* SnapStart: initRuntimeDone does not stop the watcher (its samples
     * until the snapshot are the restore's baseline) */
    assert_true(initwatch_sample(w));
    assert_false(initwatch_take_resumed(w));

    /* the restore: restoreStart resumes sampling and makes ids fresh */
    restore_start = next_ms();
    iso(restore_start, a, sizeof(a));
    refills = ids_refills();
    snprintf(buf, sizeof(buf), "[{\"time\":\"%s\",\"type\":\"platform.restoreStart\",\"record\":{"
             "\"functionName\":\"demo-fn\",\"functionVersion\":\"$LATEST\"}}]", a);
    feed(t, buf);
    assert_true(initwatch_take_resumed(w));
    /* the hook: 0.6 s of CPU, 700 major faults, 200 MB read */
    snap_runtime(703, 160, 205000000);
    assert_true(initwatch_sample(w));
    restore_done = next_ms();
    snap_runtime(803, 400, 205000000); /* the invocation, after restoreRuntimeDone */
    iso(restore_done, b, sizeof(b));
    snprintf(buf, sizeof(buf),
             "[{\"time\":\"%s\",\"type\":\"platform.restoreRuntimeDone\",\"record\":{\"status\":\"success\"}},"
             "{\"time\":\"%s\",\"type\":\"platform.restoreReport\",\"record\":{\"status\":\"success\","
             "\"metrics\":{\"durationMs\":700.0}}}]", b, b);
    feed(t, buf);
    /* sampling stopped at restoreRuntimeDone */
    assert_false(initwatch_sample(w));

    run_inv(t, "snap-1", NULL, restore_done + 2000, 10, "success", true);
    assert_true(ids_refills() > refills); /* the invocation's ids: from a new pool */
    const struct trace_segment *s = NULL;
    for (int i = 0; i < n_emitted; i++)
        if (emitted_final[i] && span(&emitted[i], "Restore") != NULL)
            s = &emitted[i];
    assert_non_null(s);
    int r = (int)(span(s, "Restore") - s->spans);
    int64_t cpu = -1, majflt = -1, wall = -1, rchar = -1;
    for (size_t i = 0; i < s->attr_count; i++) {
        const struct trace_attr *at = &s->attrs[i];
        if (at->on_span != r + 1 || at->otel_key == NULL)
            continue;
        if (strcmp(at->otel_key, "lambda_tracer.restore.cpu_ms") == 0)
            cpu = at->i;
        else if (strcmp(at->otel_key, "lambda_tracer.restore.major_faults") == 0)
            majflt = at->i;
        else if (strcmp(at->otel_key, "lambda_tracer.restore.wall_ms") == 0)
            wall = at->i;
        else if (strcmp(at->otel_key, "lambda_tracer.restore.read_bytes") == 0)
            rchar = at->i;
    }
    /* deltas against the pre-snapshot baseline, up to restoreRuntimeDone */
    assert_int_equal(cpu, 600);
    assert_int_equal(majflt, 700);
    assert_int_equal(rchar, 200000000);
    assert_int_equal(wall, 700);
    assert_string_equal(find_attr(s, "restore_hint")->str,
                        "Restore read 200 MB and spent 0.6 s of its 0.7 s on CPU: loading code");
    tracer_destroy(t);
    initwatch_free(w);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", snap_root);
    assert_int_equal(system(cmd), 0);
}

/* An extension (pid, name) for the fake /proc: stat (one thread) and,
 * when given, its schedstat. */
static void snap_ext(int pid, const char *name, const char *schedstat)
{
    char rel[64], text[256];

    snprintf(rel, sizeof(rel), "%d/cmdline", pid);
    snprintf(text, sizeof(text), "/opt/extensions/%s", name);
    snap_put(rel, text);
    snprintf(rel, sizeof(rel), "%d/stat", pid);
    snprintf(text, sizeof(text), "%d (ext) S 1 0 0 0 0 0 10 0 0 0 3 1 0 0 20 0 1 0 %d 0 100\n", pid, pid);
    snap_put(rel, text);
    if (schedstat != NULL) {
        snprintf(rel, sizeof(rel), "%d/schedstat", pid);
        snap_put(rel, schedstat);
    }
}

/* The runtime's two threads' schedstat (snap_runtime says 2 threads). */
static void snap_runtime_sched(const char *main_thread)
{
    snap_put("200/task/200/schedstat", main_thread);
    snap_put("200/task/201/schedstat", "100 0 1\n");
}

/* The Init segment's last activity of each party and who held Init last:
 * slow-register and the runtime worked early, slow-ready alone was active
 * in the sample after Init's end (its call to next ended Init).  With a
 * fourth extension whose schedstat cannot be read, that one is named as
 * not separable and nobody is said to have held Init last. */
enum parties_case {
    PARTIES_SLOW_READY_LAST,  /* slow-ready alone active after the end */
    PARTIES_HIDDEN,           /* and a fourth extension whose schedstat cannot be read */
    PARTIES_ALL_WOKEN,        /* every extension active after the end (a freeze) */
    PARTIES_RUNTIME_LAST,     /* only the runtime active after the end (it slept, then called next) */
    PARTIES_INVOKE_WOKEN,     /* slow-ready ended Init; slow-register, registered for INVOKE, was
                               * woken by the first invocation in the same sample */
};

static void run_parties(enum parties_case pc, const struct trace_segment **ret)
{
    char tmpl[] = "/tmp/tracer-parties-XXXXXX";
    char buf[4096], exts[1024], a[40], b[40];
    struct initwatch_opts wo = {.self = 100, .interval_ms = 20, .max_samples = 1000};
    struct initwatch *w;
    struct tracer_options o = {
        .function_name = "demo-fn", .function_version = "$LATEST", .region = "us-east-1",
        .memory_size_mb = 128, .sampling = SAMPLING_POLICY_ALL, .timeout_margin_us = 200000,
        .emit = on_emit,
    };
    struct tracer *t;
    int64_t init_start, init_done;

    assert_non_null(mkdtemp(tmpl));
    snprintf(snap_root, sizeof(snap_root), "%s", tmpl);
    wo.proc_root = snap_root;
    snap_put("100/stat", "100 (lambda-tracer) S 1 0 0 0 0 0 0 0 0 0 1 1 0 0 20 0 4 0 500 0 100\n");
    snap_put("100/cmdline", "/opt/extensions/lambda-tracer");
    snap_put("200/cmdline", "/var/runtime/bootstrap");
    snap_runtime_sched("1000000 0 10\n");
    snap_ext(300, "slow-register", "4000000 0 20\n");
    snap_ext(400, "slow-ready", "5000000 0 30\n");
    if (pc == PARTIES_HIDDEN)
        snap_ext(500, "hidden", NULL);
    w = initwatch_new(&wo);
    assert_non_null(w);
    o.initwatch = w;
    n_emitted = 0;
    t = tracer_new(&o);
    assert_non_null(t);

    init_start = next_ms();
    {
        /* the runtime starts in Init, after initStart (stat's start time:
         * ticks since boot, rounded up) */
        struct timespec bt;
        char text[256];
        clock_gettime(CLOCK_BOOTTIME, &bt);
        snprintf(text, sizeof(text), "200 (bootstrap) S 1 0 0 0 0 0 1000 0 0 0 10 0 0 0 20 0 2 0 %lld 0 3000\n",
                 (long long)(bt.tv_sec * sysconf(_SC_CLK_TCK) + bt.tv_nsec / (1000000000 / sysconf(_SC_CLK_TCK)) + 1));
        snap_put("200/stat", text);
    }
    assert_true(initwatch_sample(w)); /* the first look */
    snap_put("300/schedstat", "4500000 0 26\n"); /* slow-register registers, then waits in next */
    snap_runtime_sched("2000000 0 15\n");
    next_ms(); /* each at least 2 ms on */
    next_ms();
    assert_true(initwatch_sample(w));
    snap_runtime_sched("3000000 0 19\n"); /* the runtime's last work */
    next_ms();
    assert_true(initwatch_sample(w));
    next_ms();
    assert_true(initwatch_sample(w)); /* all idle: slow-ready asleep (in its Init) */
    tracer_set_own_init(t, init_start + 1000, init_start + 2000);
    next_ms(); /* the runtime's start (up to a clock tick, 10 ms, after initStart) is in Init */
    init_done = next_ms();
    iso(init_start, a, sizeof(a));
    iso(init_done, b, sizeof(b));
    exts[0] = '\0';
    for (int i = 0; i < (pc == PARTIES_HIDDEN ? 4 : 3); i++) {
        static const char *const names[] = {"lambda-tracer", "slow-register", "slow-ready", "hidden"};
        size_t off = strlen(exts);
        bool invoke = i == 0 || (i == 1 && pc == PARTIES_INVOKE_WOKEN);
        snprintf(exts + off, sizeof(exts) - off,
                 "{\"time\":\"%s\",\"type\":\"platform.extension\",\"record\":{\"name\":\"%s\","
                 "\"state\":\"Ready\",\"events\":[%s\"SHUTDOWN\"]}},",
                 b, names[i], invoke ? "\"INVOKE\"," : "");
    }
    snprintf(buf, sizeof(buf),
             "[{\"time\":\"%s\",\"type\":\"platform.initStart\",\"record\":{\"initializationType\":"
             "\"on-demand\",\"phase\":\"init\"}},"
             "{\"time\":\"%s\",\"type\":\"platform.initRuntimeDone\",\"record\":{\"initializationType\":"
             "\"on-demand\",\"phase\":\"init\",\"status\":\"success\"}},%s"
             "{\"time\":\"%s\",\"type\":\"platform.initReport\",\"record\":{\"initializationType\":"
             "\"on-demand\",\"phase\":\"init\",\"status\":\"success\",\"metrics\":{\"durationMs\":%lld.0}}}]",
             a, b, exts, b, (long long)((init_done - init_start) / 1000));
    if (pc != PARTIES_RUNTIME_LAST)
        snap_put("400/schedstat", "5200000 0 33\n"); /* slow-ready wakes and calls next: Init ends */
    if (pc == PARTIES_ALL_WOKEN || pc == PARTIES_INVOKE_WOKEN)
        snap_put("300/schedstat", "4500100 0 28\n");
    if (pc == PARTIES_RUNTIME_LAST || pc == PARTIES_ALL_WOKEN)
        snap_runtime_sched("3100000 0 21\n");
    feed(t, buf);
    assert_false(initwatch_sample(w)); /* the sample after the end; then the watcher stops */
    run_inv(t, "r1", NULL, init_done + 1000, 10, "success", true);
    *ret = NULL;
    for (int i = 0; i < n_emitted; i++)
        if (emitted_final[i])
            *ret = &emitted[i];
    assert_non_null(*ret);
    tracer_destroy(t);
    initwatch_free(w);
    snprintf(buf, sizeof(buf), "rm -rf '%s'", snap_root);
    assert_int_equal(system(buf), 0);
}

static void test_init_parties(void **state)
{
    const struct trace_segment *s;
    const struct trace_attr *at;
    int r1, rr, rt;
    (void)state;

    run_parties(PARTIES_SLOW_READY_LAST, &s);
    assert_split_agrees(s);
    at = find_attr(s, "init_ready");
    assert_non_null(at);
    assert_non_null(find_attr(s, "init_split"));
    printf("  %s\n  %s\n", at->str, find_attr(s, "init_split")->str);
    assert_non_null(strstr(at->str, "ready after initStart (ms; sampled every 20 ms): lambda-tracer 2, "));
    /* in the order they were ready: slow-register, the runtime, slow-ready at the end */
    assert_int_equal(sscanf(strstr(at->str, "slow-register "), "slow-register %d (4 ms CPU)", &r1), 1);
    assert_int_equal(sscanf(strstr(at->str, "runtime "), "runtime %d (3 ms CPU)", &rt), 1);
    assert_int_equal(sscanf(strstr(at->str, "slow-ready "), "slow-ready %d (5 ms CPU)", &rr), 1);
    assert_non_null(strstr(at->str, "(4 ms CPU), runtime"));
    assert_non_null(strstr(at->str, "(3 ms CPU), slow-ready"));
    assert_true(r1 < rt && rt < rr);
    assert_null(strstr(at->str, "or later"));
    at = find_attr(s, "init_held_last");
    assert_non_null(at);
    assert_int_equal(at->target, TRACE_ATTR_ANNOTATION);
    assert_string_equal(at->str, "slow-ready");
    assert_string_equal(at->otel_key, "lambda_tracer.init.held_last");
    int64_t held_ms = find_attr(s, "init_held_last_ms")->i;
    assert_true(held_ms >= rr - rt - 1 && held_ms <= rr - rt + 1); /* each rounded to the ms */
    assert_true(held_ms >= 2);
    assert_non_null(find_attr(s, "init_split"));
    assert_non_null(strstr(find_attr(s, "init_split")->str, " ms, 2 others), then runtime and extensions "));
    {
        char want[96];
        snprintf(want, sizeof(want), "; slow-ready held Init %d ms after the runtime was ready", (int)held_ms);
        assert_non_null(strstr(find_attr(s, "init_split")->str, want));
    }

    run_parties(PARTIES_HIDDEN, &s);
    assert_split_agrees(s);
    at = find_attr(s, "init_ready");
    assert_non_null(at);
    assert_non_null(find_attr(s, "init_split"));
    printf("  %s\n  %s\n", at->str, find_attr(s, "init_split")->str);
    assert_non_null(strstr(at->str, "; not separable: hidden (schedstat absent)"));
    assert_null(find_attr(s, "init_held_last"));
    assert_null(find_attr(s, "init_held_last_ms"));
    assert_non_null(find_attr(s, "init_split"));
    assert_non_null(strstr(find_attr(s, "init_split")->str, " ms, 1 other not separable), then runtime"));
    assert_null(strstr(find_attr(s, "init_split")->str, "held"));

    /* everyone active after the end: nobody named, each a lower bound */
    run_parties(PARTIES_ALL_WOKEN, &s);
    assert_split_agrees(s);
    at = find_attr(s, "init_ready");
    assert_non_null(at);
    printf("  %s\n", at->str);
    assert_non_null(strstr(at->str, " or later (active at the end) (4 ms CPU)"));
    assert_non_null(strstr(at->str, " or later (active at the end) (5 ms CPU)"));
    assert_null(find_attr(s, "init_held_last"));
    assert_null(strstr(find_attr(s, "init_split")->str, "held"));

    /* only the runtime active after the end, beside the invocation that woke
     * it: nobody else can have ended Init, so the runtime held it */
    run_parties(PARTIES_RUNTIME_LAST, &s);
    assert_split_agrees(s);
    at = find_attr(s, "init_ready");
    assert_non_null(at);
    printf("  %s\n", at->str);
    assert_string_equal(find_attr(s, "init_held_last")->str, "runtime");
    assert_null(strstr(at->str, "or later"));
    /* the runtime last, at the end; slow-ready, never seen active, ready by the first look */
    assert_non_null(strstr(at->str, " (4 ms CPU), runtime "));
    assert_int_equal(strcmp(at->str + strlen(at->str) - 10, "(3 ms CPU)"), 0);
    assert_non_null(strstr(find_attr(s, "init_split")->str, "; runtime held Init "));
    assert_non_null(strstr(find_attr(s, "init_split")->str, " ms after slow-register was ready"));

    /* slow-register, registered for INVOKE, active after the end beside
     * slow-ready: the first invocation woke it, so slow-ready alone can have
     * ended Init (without the events, nobody could be named) */
    run_parties(PARTIES_INVOKE_WOKEN, &s);
    assert_split_agrees(s);
    at = find_attr(s, "init_ready");
    assert_non_null(at);
    printf("  %s\n", at->str);
    assert_non_null(find_attr(s, "init_held_last"));
    assert_string_equal(find_attr(s, "init_held_last")->str, "slow-ready");
    assert_null(strstr(at->str, "or later"));
    assert_non_null(strstr(find_attr(s, "init_split")->str, "; slow-ready held Init "));
    at = find_attr(s, "init_extensions");
    assert_non_null(at);
    assert_int_equal(at->target, TRACE_ATTR_METADATA);
    assert_string_equal(at->str, "lambda-tracer: INVOKE, SHUTDOWN; slow-register: INVOKE, SHUTDOWN; "
                                 "slow-ready: SHUTDOWN");
    /* a SHUTDOWN-only extension active at the end is not taken for woken */
    run_parties(PARTIES_ALL_WOKEN, &s);
    assert_split_agrees(s);
    assert_null(find_attr(s, "init_held_last"));
    assert_string_equal(find_attr(s, "init_extensions")->str,
                        "lambda-tracer: INVOKE, SHUTDOWN; slow-register: SHUTDOWN; slow-ready: SHUTDOWN");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snap_start_restore_anatomy),
        cmocka_unit_test(test_init_parties),
        cmocka_unit_test(test_cold_start_with_upstream_parent),
        cmocka_unit_test(test_init_split_figures_agree),
        cmocka_unit_test(test_recovered_invocation_waits_for_its_records),
        cmocka_unit_test(test_warm_invocation_is_not_cold_and_new_trace_without_header),
        cmocka_unit_test(test_failures_told_apart),
        cmocka_unit_test(test_cost_tenant_durable_and_observation),
        cmocka_unit_test(test_no_price_no_cost_attrs),
        cmocka_unit_test(test_failed_init_cost),
        cmocka_unit_test(test_sampled_zero_is_honoured_unless_forced),
        cmocka_unit_test(test_smart_keeps_what_matters_and_samples_the_rest),
        cmocka_unit_test(test_smart_slow_ms_setting),
        cmocka_unit_test(test_smart_timeout_in_progress_is_kept_and_followed),
        cmocka_unit_test(test_smart_eager_version_draws_once_and_final_follows),
        cmocka_unit_test(test_smart_shutdown_and_failed_init_are_outcomes),
        cmocka_unit_test(test_shutdown_closes_open_invocations),
        cmocka_unit_test(test_in_progress_before_deadline_then_final_same_id),
        cmocka_unit_test(test_provisioned_init_gap_not_added),
        cmocka_unit_test(test_suppressed_init_starts_the_segment),
        cmocka_unit_test(test_dropped_telemetry_reported_once),
        cmocka_unit_test(test_table_full_evicts_oldest),
        cmocka_unit_test(test_flood_keeps_the_invoked_trace_context),
        cmocka_unit_test(test_announced_invocations_are_pinned_until_reported),
        cmocka_unit_test(test_announced_past_deadline_yields_last),
        cmocka_unit_test(test_pipeline_behind_invoke_exports_every_announced),
        cmocka_unit_test(test_index_finds_every_id_after_reuse),
        cmocka_unit_test(test_redelivered_records_make_no_second_segment),
        cmocka_unit_test(test_redelivered_records_past_the_ring),
        cmocka_unit_test(test_left_out_and_evicted_invocations_are_forgotten),
        cmocka_unit_test(test_invoke_after_its_invocation_was_exported_is_ignored),
        cmocka_unit_test(test_telemetry_only_invocations_oldest_yield),
        cmocka_unit_test(test_flood_memory_is_bounded),
        cmocka_unit_test(test_failed_init_is_its_own_segment),
        cmocka_unit_test(test_log_tail_attached_to_failures_only),
        cmocka_unit_test(test_log_tail_long_lines),
        cmocka_unit_test(test_log_tail_byte_cap_keeps_the_newest),
        cmocka_unit_test(test_new_out_of_memory),
    };
    return cmocka_run_group_tests_name("tracer", tests, NULL, NULL);
}
