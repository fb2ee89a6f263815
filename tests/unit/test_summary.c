/* Unit tests for summary.c: the shutdown summary line holds every counter,
 * each with its own value. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "summary.h"

/* Fills a struct of uint64_t counters with distinct values from *next. */
static void fill(void *base, size_t bytes, uint64_t *next)
{
    for (size_t off = 0; off + sizeof(uint64_t) <= bytes; off += sizeof(uint64_t)) {
        uint64_t v = (*next)++;
        memcpy((char *)base + off, &v, sizeof(v));
    }
}

/* The value of `name` in the line, or -1 when absent; fails when present
 * twice. */
static long long value_of(const char *line, const char *name)
{
    char key[96];
    const char *p = line;
    long long v = -1;
    size_t klen = (size_t)snprintf(key, sizeof(key), "%s=", name);

    while ((p = strstr(p, key)) != NULL) {
        if (p == line || p[-1] == ' ') {
            assert_int_equal(v, -1); /* each name once */
            v = strtoll(p + klen, NULL, 10);
        }
        p += klen;
    }
    return v;
}

/* Every counter named in the issue and the README, by the name the tests
 * and the documentation use. */
static const char *const known[] = {
    "invokes", "segments", "in_progress", "dropped", "sampled_by_outcome", "sampled_by_cold_start",
    "sampled_by_slow", "sampled_by_header", "sampled_by_reservoir", "sampled_by_ratio", "sampled_by_all",
    "evicted_invocations", "evicted_announced", "attrs_dropped", "listener_evicted_kept_alive", "closed_by_shutdown", "telemetry_batches",
    "records", "bad_batches", "invalid_records", "platform_dropped_records", "unreported",
    "pipeline_invokes", "recovered", "journal_full", "metric_documents", "metric_documents_failed", "rec_start", "rec_runtime_done", "rec_report",
    "rec_function_log", "rec_unknown", "queue_pushed", "queue_dropped", "queue_dropped_bytes",
    "listener_connections", "listener_requests", "listener_bodies", "listener_body_bytes",
    "listener_rejected", "listener_refused", "listener_evicted", "listener_timed_out",
    "listener_accept_failed", "export_submitted", "export_dropped_full", "export_dropped_encode",
    "export_unprocessed", "export_unsent_at_stop", "export_abandoned", "xray_sent", "xray_failed",
    "xray_skipped", "xray_requests", "xray_retries", "daemon_sent", "daemon_failed",
    "daemon_skipped", "daemon_requests", "daemon_retries", "otlp_sent", "otlp_failed",
    "otlp_skipped", "otlp_requests", "otlp_retries", "stdout_sent", "stdout_failed",
    "stdout_skipped", "stdout_requests", "stdout_retries", "shutdown_ms",
};

static void test_every_counter_with_its_own_value(void **state)
{
    struct pipeline_stats ps;
    struct queue_stats qs = {0};
    struct listener_stats ls;
    struct export_stats es;
    struct summary_input in = {.invokes = 1, .pipeline = &ps, .queue = &qs, .listener = &ls,
                               .exporter = &es, .shutdown_ms = 2};
    uint64_t next = 1000;
    char line[4096];
    char name[96];
    size_t n = 0;
    (void)state;

    fill(&ps, sizeof(ps), &next);
    fill(&qs, offsetof(struct queue_stats, items), &next);
    fill(&ls, sizeof(ls), &next);
    fill(&es, sizeof(es), &next);
    assert_true(summary_format(&in, line, sizeof(line)) > 0);
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (value_of(line, known[i]) < 0)
            fail_msg("%s is not in the summary: %s", known[i], line);
    }
    /* the values come from the right fields */
    assert_int_equal(value_of(line, "invokes"), 1);
    assert_int_equal(value_of(line, "shutdown_ms"), 2);
    assert_int_equal(value_of(line, "segments"), 1000 + offsetof(struct pipeline_stats, segments) / 8);
    assert_int_equal(value_of(line, "rec_report"),
                     1000 + offsetof(struct pipeline_stats, by_type) / 8 + TEL_REPORT);
    /* the queue's counters are filled after the pipeline's last one */
    assert_int_equal(value_of(line, "queue_dropped"), ps.metric_documents_failed + 1 + 1);
    assert_int_equal(value_of(line, "listener_evicted"), (long long)ls.evicted);
    assert_int_equal(value_of(line, "export_abandoned"), (long long)es.abandoned);
    assert_int_equal(value_of(line, "otlp_retries"), (long long)es.sink[EXPORT_SINK_OTLP].retries);
    assert_int_equal(value_of(line, "xray_requests"), (long long)es.sink[EXPORT_SINK_XRAY].requests);
    /* every counter of the table is in the line once, with a value no
     * other counter has (no row reads another's field) */
    for (; summary_counter_name(n, name, sizeof(name)); n++) {
        long long v = value_of(line, name);
        assert_true(v >= 0);
        for (size_t j = 0; j < n; j++) {
            char other[96];
            assert_true(summary_counter_name(j, other, sizeof(other)));
            assert_string_not_equal(name, other);
            if (v >= 1000)
                assert_true(value_of(line, other) != v);
        }
    }
    /* and nothing in the line that is not a counter of the table */
    {
        size_t pairs = 0;
        for (const char *p = line; (p = strchr(p, '=')) != NULL; p++)
            pairs++;
        assert_int_equal(pairs, n);
    }
    assert_true(n >= sizeof(known) / sizeof(known[0]));
}

/* Parts that never ran (no telemetry: no pipeline, listener, exporter)
 * report zeros, and INVOKEs are still counted. */
static void test_missing_parts_report_zeros(void **state)
{
    struct summary_input in = {.invokes = 201};
    char line[4096];
    (void)state;
    assert_true(summary_format(&in, line, sizeof(line)) > 0);
    assert_int_equal(value_of(line, "invokes"), 201);
    assert_int_equal(value_of(line, "segments"), 0);
    assert_int_equal(value_of(line, "xray_sent"), 0);
    assert_int_equal(value_of(line, "queue_dropped"), 0);
}

static void test_small_buffer(void **state)
{
    struct summary_input in = {.invokes = 7};
    char line[40];
    (void)state;
    memset(line, 'x', sizeof(line));
    assert_int_equal(summary_format(&in, line, sizeof(line)), -ENOBUFS);
    assert_non_null(memchr(line, '\0', sizeof(line)));
    assert_int_equal(strncmp(line, "invokes=7", 9), 0);
    assert_int_equal(summary_format(&in, line, 0), -ENOBUFS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_counter_with_its_own_value),
        cmocka_unit_test(test_missing_parts_report_zeros),
        cmocka_unit_test(test_small_buffer),
    };
    return cmocka_run_group_tests_name("summary", tests, NULL, NULL);
}
