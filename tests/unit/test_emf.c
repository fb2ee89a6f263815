/* Unit tests for emf.c: aggregation, the document's shape, its bounds.
 * With EMF_TEST_DUMP=path every document rendered is also appended to
 * that file, for tests/integration/test_metrics.py's EMF validator. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "emf.h"
#include "fail_alloc.h"

static struct emf *make(const char *fn)
{
    const struct emf_options o = {.namespace_name = "LambdaTracer", .function_name = fn,
                                  .function_version = "$LATEST"};
    struct emf *m = NULL;
    assert_int_equal(emf_new(&o, &m), 0);
    return m;
}

static struct emf_sample sample(void)
{
    struct emf_sample s = {.time_ms = 1764680000000LL, .init_ms = -1, .init_runtime_ms = -1,
                           .init_tracer_ms = -1, .duration_ms = 12.5, .billed_ms = 13,
                           .memory_used_mb = 64, .memory_size_mb = 128, .cost_usd = 0.0000002,
                           .tracer_held_ms = -1, .tracer_cpu_ms = 0.25, .tracer_cost_usd = -1};
    return s;
}

static void dump(const char *doc)
{
    const char *path = getenv("EMF_TEST_DUMP");
    FILE *f;

    if (path == NULL || path[0] == '\0')
        return;
    f = fopen(path, "a");
    assert_non_null(f);
    fputs(doc, f);
    fclose(f);
}

/* Renders, checks it is one line of JSON, returns the parsed tree. */
static cJSON *render(struct emf *m, int64_t now_ms)
{
    struct buf b;
    cJSON *doc;

    buf_init(&b, EMF_DOC_MAX_BYTES);
    assert_int_equal(emf_render(m, now_ms, &b), 0);
    assert_true(buf_len(&b) > 2);
    assert_int_equal(buf_data(&b)[buf_len(&b) - 1], '\n');
    assert_null(memchr(buf_data(&b), '\n', buf_len(&b) - 1));
    dump(buf_data(&b));
    doc = cJSON_ParseWithLength(buf_data(&b), buf_len(&b));
    assert_non_null(doc);
    buf_free(&b);
    return doc;
}

static double num(const cJSON *doc, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, name);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

static bool declared(const cJSON *doc, unsigned directive, const char *name)
{
    const cJSON *d = cJSON_GetArrayItem(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "_aws"), "CloudWatchMetrics"),
        (int)directive);
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(d, "Metrics");
    const cJSON *x;

    cJSON_ArrayForEach(x, ms)
    {
        if (strcmp(cJSON_GetObjectItemCaseSensitive(x, "Name")->valuestring, name) == 0)
            return true;
    }
    return false;
}

static void test_counts_and_distributions(void **state)
{
    struct emf *m = make("fn");
    struct emf_sample s = sample();
    cJSON *doc;
    (void)state;

    assert_false(emf_pending(m));
    s.cold = true;
    s.init_ms = 250.5;
    s.init_runtime_ms = 200;
    s.init_tracer_ms = 3.25;
    s.tracer_held_ms = 4;
    s.tracer_cost_usd = 0.00000001;
    assert_int_equal(emf_add(m, &s), 0);
    s = sample();
    s.time_ms -= 5; /* older: the Timestamp */
    s.outcome = EMF_OUTCOME_TIMEOUT;
    s.duration_ms = 3000;
    assert_int_equal(emf_add(m, &s), 0);
    s = sample();
    s.outcome = EMF_OUTCOME_OOM;
    s.memory_used_mb = 128;
    assert_int_equal(emf_add(m, &s), 0);
    s.outcome = EMF_OUTCOME_CRASH;
    assert_int_equal(emf_add(m, &s), 0);
    s.outcome = EMF_OUTCOME_ERROR;
    assert_int_equal(emf_add(m, &s), 0);
    emf_add_dropped(m, 7);
    emf_add_dropped(m, 0);
    assert_true(emf_pending(m));
    assert_true(emf_oldest_ms(m) == 1764680000000LL - 5);

    doc = render(m, 1);
    assert_false(emf_pending(m));
    assert_true(num(cJSON_GetObjectItemCaseSensitive(doc, "_aws"), "Timestamp") == 1764680000000.0 - 5);
    assert_true(num(doc, "Invocations") == 5);
    assert_true(num(doc, "ColdStart") == 1);
    assert_true(num(doc, "Timeouts") == 1);
    assert_true(num(doc, "OutOfMemory") == 1);
    assert_true(num(doc, "Crashes") == 1);
    assert_true(num(doc, "Errors") == 1);
    assert_true(num(doc, "PlatformFailures") == 0);
    assert_true(num(doc, "TelemetryDropped") == 7);
    assert_true(num(doc, "EstimatedCostUSD") == 0.0000002 * 5);
    assert_true(num(doc, "TracerCpuTime") == 1.25);
    assert_true(num(doc, "TracerCostUSD") == 0.00000001);
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(doc, "Duration");
    assert_int_equal(cJSON_GetArraySize(d), 5);
    assert_true(cJSON_GetArrayItem(d, 1)->valuedouble == 3000);
    const cJSON *pct = cJSON_GetObjectItemCaseSensitive(doc, "MemoryUsedPercent");
    assert_true(cJSON_GetArrayItem(pct, 0)->valuedouble == 50);
    assert_true(cJSON_GetArrayItem(pct, 2)->valuedouble == 100);
    const cJSON *init = cJSON_GetObjectItemCaseSensitive(doc, "InitDuration");
    assert_int_equal(cJSON_GetArraySize(init), 1);
    assert_true(cJSON_GetArrayItem(init, 0)->valuedouble == 250.5);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(doc, "TracerHeldAfterResponse")), 1);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(doc, "FunctionName")->valuestring, "fn");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(doc, "Version")->valuestring, "$LATEST");
    assert_null(cJSON_GetObjectItemCaseSensitive(doc, "TenantId"));
    assert_true(declared(doc, 0, "Duration"));
    cJSON_Delete(doc);

    /* Nothing pending: nothing written. */
    struct buf b;
    buf_init(&b, 1024);
    assert_int_equal(emf_render(m, 1, &b), -ENODATA);
    assert_int_equal(buf_len(&b), 0);
    buf_free(&b);

    /* Only drops: a document with the drop count and now as its time; no
     * invocation counts, no empty arrays. */
    emf_add_dropped(m, 3);
    doc = render(m, 1764680009999LL);
    assert_true(num(cJSON_GetObjectItemCaseSensitive(doc, "_aws"), "Timestamp") == 1764680009999.0);
    assert_true(num(doc, "TelemetryDropped") == 3);
    assert_null(cJSON_GetObjectItemCaseSensitive(doc, "Invocations"));
    assert_null(cJSON_GetObjectItemCaseSensitive(doc, "Duration"));
    assert_false(declared(doc, 0, "Duration"));
    cJSON_Delete(doc);
    emf_destroy(m);
}

/* An array holds at most 100 values: the 101st asks for a render first. */
/* A failed Init alone (no invocation) is InitFailures and its duration,
 * not an invocation; a failed Init an invocation waited for is counted with
 * it; a successful cold start counts InitFailures 0 and no failed duration. */
static void test_init_failures(void **state)
{
    struct emf *m = make("fn");
    struct emf_sample s = sample();
    cJSON *doc;
    const cJSON *arr;
    (void)state;

    const struct emf_sample alone = {.time_ms = 1764680000000LL, .init_failed = true, .init_only = true,
                                     .init_ms = 812.5, .init_runtime_ms = -1, .init_tracer_ms = -1,
                                     .duration_ms = -1, .billed_ms = -1, .memory_used_mb = -1,
                                     .memory_size_mb = -1, .cost_usd = -1, .tracer_held_ms = -1,
                                     .tracer_cpu_ms = -1, .tracer_cost_usd = -1};
    assert_int_equal(emf_add(m, &alone), 0);
    assert_true(emf_pending(m));
    doc = render(m, 1);
    assert_true(num(doc, "InitFailures") == 1);
    assert_true(declared(doc, 0, "InitFailures"));
    assert_true(declared(doc, 0, "FailedInitDuration"));
    arr = cJSON_GetObjectItemCaseSensitive(doc, "FailedInitDuration");
    assert_int_equal(cJSON_GetArraySize(arr), 1);
    assert_true(cJSON_GetArrayItem(arr, 0)->valuedouble == 812.5);
    /* not an invocation: no Invocations, ColdStart, Duration */
    assert_null(cJSON_GetObjectItemCaseSensitive(doc, "Invocations"));
    assert_null(cJSON_GetObjectItemCaseSensitive(doc, "ColdStart"));
    assert_null(cJSON_GetObjectItemCaseSensitive(doc, "Duration"));
    assert_false(declared(doc, 0, "Invocations"));
    cJSON_Delete(doc);

    /* waited for by an invocation: counted with it */
    s.cold = true;
    s.init_ms = 900;
    s.init_failed = true;
    s.outcome = EMF_OUTCOME_CRASH;
    assert_int_equal(emf_add(m, &s), 0);
    s = sample();
    s.cold = true;
    s.init_ms = 100; /* a successful cold start */
    assert_int_equal(emf_add(m, &s), 0);
    doc = render(m, 1);
    assert_true(num(doc, "Invocations") == 2);
    assert_true(num(doc, "InitFailures") == 1);
    arr = cJSON_GetObjectItemCaseSensitive(doc, "FailedInitDuration");
    assert_int_equal(cJSON_GetArraySize(arr), 1);
    assert_true(cJSON_GetArrayItem(arr, 0)->valuedouble == 900);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(doc, "InitDuration")), 2);
    cJSON_Delete(doc);

    /* warm only: InitFailures 0, no failed duration */
    s = sample();
    assert_int_equal(emf_add(m, &s), 0);
    doc = render(m, 1);
    assert_true(num(doc, "InitFailures") == 0);
    assert_null(cJSON_GetObjectItemCaseSensitive(doc, "FailedInitDuration"));
    cJSON_Delete(doc);
    emf_destroy(m);
}

static void test_full_arrays(void **state)
{
    struct emf *m = make("fn");
    struct emf_sample s = sample();
    cJSON *doc;
    (void)state;
    for (int i = 0; i < EMF_MAX_VALUES; i++) {
        s.duration_ms = i;
        assert_int_equal(emf_add(m, &s), 0);
    }
    assert_int_equal(emf_add(m, &s), -EAGAIN);
    doc = render(m, 1);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(doc, "Duration")), EMF_MAX_VALUES);
    assert_true(num(doc, "Invocations") == EMF_MAX_VALUES);
    cJSON_Delete(doc);
    assert_int_equal(emf_add(m, &s), 0);
    doc = render(m, 1);
    assert_true(num(doc, "Invocations") == 1);
    cJSON_Delete(doc);
    emf_destroy(m);
}

/* Tenants: the cold start under [FunctionName, TenantId] too; another
 * tenant's invocation asks for a render first; ids too long, with control
 * bytes or past the per-process bound get no dimension, counted. */
static void test_tenants(void **state)
{
    struct emf *m = make("fn");
    struct emf_sample s = sample();
    char long_id[EMF_TENANT_MAX_BYTES + 2];
    cJSON *doc;
    (void)state;

    s.cold = true;
    s.tenant_id = "BlueTenant";
    assert_int_equal(emf_add(m, &s), 0);
    s.cold = false;
    assert_int_equal(emf_add(m, &s), 0);
    s.tenant_id = "GreenTenant";
    assert_int_equal(emf_add(m, &s), -EAGAIN);
    doc = render(m, 1);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(doc, "TenantId")->valuestring, "BlueTenant");
    assert_true(num(doc, "ColdStart") == 1);
    assert_true(declared(doc, 1, "ColdStart"));
    assert_false(declared(doc, 1, "Duration"));
    cJSON_Delete(doc);
    assert_int_equal(emf_add(m, &s), 0);
    doc = render(m, 1);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(doc, "TenantId")->valuestring, "GreenTenant");
    cJSON_Delete(doc);

    memset(long_id, 'a', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    s.tenant_id = long_id;
    assert_int_equal(emf_add(m, &s), 0);
    s.tenant_id = "bad\ttenant";
    assert_int_equal(emf_add(m, &s), 0);
    assert_int_equal(emf_tenants_refused(m), 2);
    doc = render(m, 1);
    assert_null(cJSON_GetObjectItemCaseSensitive(doc, "TenantId"));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(
                         cJSON_GetObjectItemCaseSensitive(doc, "_aws"), "CloudWatchMetrics")),
                     1);
    cJSON_Delete(doc);

    /* Two tenants seen; six more fit, the ninth is refused. */
    for (int i = 0; i < EMF_MAX_TENANTS; i++) {
        char id[16];
        snprintf(id, sizeof(id), "t%d", i);
        s.tenant_id = id;
        assert_int_equal(emf_add(m, &s), 0);
        doc = render(m, 1);
        if (i < EMF_MAX_TENANTS - 2)
            assert_string_equal(cJSON_GetObjectItemCaseSensitive(doc, "TenantId")->valuestring, id);
        else
            assert_null(cJSON_GetObjectItemCaseSensitive(doc, "TenantId"));
        cJSON_Delete(doc);
    }
    assert_int_equal(emf_tenants_refused(m), 4);
    emf_destroy(m);
}

/* Strings are JSON-escaped; empty names get a placeholder (a dimension
 * value must not be empty); a full buffer leaves it as it was and keeps
 * the data. */
static void test_escaping_and_bounds(void **state)
{
    struct emf *m = make("we\"ird\\fn");
    struct emf_sample s = sample();
    struct buf b;
    cJSON *doc;
    (void)state;
    assert_int_equal(emf_add(m, &s), 0);
    buf_init(&b, 100);
    assert_int_equal(buf_append_str(&b, "keep"), 0);
    assert_int_equal(emf_render(m, 1, &b), -ENOBUFS);
    assert_string_equal(buf_data(&b), "keep");
    assert_true(emf_pending(m));
    buf_free(&b);
    doc = render(m, 1);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(doc, "FunctionName")->valuestring, "we\"ird\\fn");
    cJSON_Delete(doc);
    emf_destroy(m);

    const struct emf_options empty = {.namespace_name = "", .function_name = NULL, .function_version = ""};
    assert_int_equal(emf_new(&empty, &m), 0);
    assert_int_equal(emf_add(m, &s), 0);
    doc = render(m, 1);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(doc, "FunctionName")->valuestring, "unknown");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(doc, "Version")->valuestring, "unknown");
    cJSON_Delete(doc);
    emf_destroy(m);
    emf_destroy(NULL);
}

static void test_out_of_memory(void **state)
{
    const struct emf_options o = {.namespace_name = "N", .function_name = "f", .function_version = "1"};
    struct emf *m = (struct emf *)0x1;
    (void)state;
    fail_alloc_fail_at(1);
    assert_int_equal(emf_new(&o, &m), -ENOMEM);
    assert_true(m == (struct emf *)0x1);
    fail_alloc_fail_at(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_and_distributions),
        cmocka_unit_test(test_init_failures),
        cmocka_unit_test(test_full_arrays),
        cmocka_unit_test(test_tenants),
        cmocka_unit_test(test_escaping_and_bounds),
        cmocka_unit_test(test_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
