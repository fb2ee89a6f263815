/*
 * emf.c - see emf.h.
 *
 * A document is one JSON object: the `_aws` metadata (Timestamp, one
 * CloudWatchMetrics directive for every metric under [FunctionName,
 * Version], and a second one for the cold-start count under
 * [FunctionName, TenantId] when a tenant is known), the dimension values
 * and one member per metric.  A metric with no value in the window is left
 * out of both (an empty array is not a metric value).
 */
#include "emf.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum emf_kind {
    EMF_SUM,  /* one number: the window's sum */
    EMF_DIST, /* an array: one value per invocation */
};

enum emf_metric {
    M_INVOCATIONS = 0,
    M_COLD_START,
    M_ERRORS,
    M_TIMEOUTS,
    M_OOM,
    M_CRASHES,
    M_FAILURES,
    M_INIT,
    M_INIT_RUNTIME,
    M_INIT_TRACER,
    M_DURATION,
    M_BILLED,
    M_MEMORY_USED,
    M_MEMORY_PCT,
    M_COST,
    M_DROPPED,
    M_TRACER_HELD,
    M_TRACER_CPU,
    M_TRACER_COST,
    M_INIT_FAILURES,
    M_FAILED_INIT,
    M_COUNT
};

static const struct {
    const char *name;
    const char *unit; /* CloudWatch standard units */
    enum emf_kind kind;
} metrics[M_COUNT] = {
    [M_INVOCATIONS] = {"Invocations", "Count", EMF_SUM},
    [M_COLD_START] = {"ColdStart", "Count", EMF_SUM},
    [M_ERRORS] = {"Errors", "Count", EMF_SUM},
    [M_TIMEOUTS] = {"Timeouts", "Count", EMF_SUM},
    [M_OOM] = {"OutOfMemory", "Count", EMF_SUM},
    [M_CRASHES] = {"Crashes", "Count", EMF_SUM},
    [M_FAILURES] = {"PlatformFailures", "Count", EMF_SUM},
    [M_INIT] = {"InitDuration", "Milliseconds", EMF_DIST},
    [M_INIT_RUNTIME] = {"InitRuntimeDuration", "Milliseconds", EMF_DIST},
    [M_INIT_TRACER] = {"InitTracerDuration", "Milliseconds", EMF_DIST},
    [M_DURATION] = {"Duration", "Milliseconds", EMF_DIST},
    [M_BILLED] = {"BilledDuration", "Milliseconds", EMF_DIST},
    [M_MEMORY_USED] = {"MemoryUsed", "Megabytes", EMF_DIST},
    [M_MEMORY_PCT] = {"MemoryUsedPercent", "Percent", EMF_DIST},
    [M_COST] = {"EstimatedCostUSD", "None", EMF_SUM},
    [M_DROPPED] = {"TelemetryDropped", "Count", EMF_SUM},
    [M_TRACER_HELD] = {"TracerHeldAfterResponse", "Milliseconds", EMF_DIST},
    [M_TRACER_CPU] = {"TracerCpuTime", "Milliseconds", EMF_SUM},
    [M_TRACER_COST] = {"TracerCostUSD", "None", EMF_SUM},
    [M_INIT_FAILURES] = {"InitFailures", "Count", EMF_SUM},
    [M_FAILED_INIT] = {"FailedInitDuration", "Milliseconds", EMF_DIST},
};

struct emf_series {
    unsigned n; /* values (EMF_DIST) or contributions (EMF_SUM) */
    double sum;
    double values[EMF_MAX_VALUES];
};

struct emf {
    char ns[256];
    char function_name[256];
    char function_version[64];
    bool pending;
    int64_t oldest_ms;
    char tenant[EMF_TENANT_MAX_BYTES + 1]; /* this window's tenant, "" none */
    struct emf_series s[M_COUNT];
    char tenants_seen[EMF_MAX_TENANTS][EMF_TENANT_MAX_BYTES + 1];
    unsigned tenants_seen_count;
    uint64_t tenants_refused;
};

static void copy(char *dst, size_t size, const char *src)
{
    size_t n = src != NULL ? strnlen(src, size - 1) : 0;

    if (n > 0)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

int emf_new(const struct emf_options *opts, struct emf **ret)
{
    struct emf *m = calloc(1, sizeof(*m));

    if (m == NULL)
        return -ENOMEM;
    copy(m->ns, sizeof(m->ns), opts->namespace_name);
    copy(m->function_name, sizeof(m->function_name), opts->function_name);
    copy(m->function_version, sizeof(m->function_version), opts->function_version);
    /* Dimension values and the namespace must not be empty. */
    if (m->ns[0] == '\0')
        copy(m->ns, sizeof(m->ns), "LambdaTracer");
    if (m->function_name[0] == '\0')
        copy(m->function_name, sizeof(m->function_name), "unknown");
    if (m->function_version[0] == '\0')
        copy(m->function_version, sizeof(m->function_version), "unknown");
    *ret = m;
    return 0;
}

void emf_destroy(struct emf *m)
{
    free(m);
}

/* The dimension value for a tenant id, or "" when it gets none: a tenant
 * id is at most EMF_TENANT_MAX_BYTES of printable bytes, and a process
 * names at most EMF_MAX_TENANTS tenants (an environment serves one). */
static const char *tenant_key(struct emf *m, const char *tenant, bool count)
{
    size_t n;

    if (tenant == NULL || tenant[0] == '\0')
        return "";
    n = strnlen(tenant, EMF_TENANT_MAX_BYTES + 1);
    for (size_t i = 0; i < n && n <= EMF_TENANT_MAX_BYTES; i++) {
        if ((unsigned char)tenant[i] < 0x20 || tenant[i] == 0x7f)
            n = EMF_TENANT_MAX_BYTES + 1; /* no control bytes in a dimension value */
    }
    if (n > EMF_TENANT_MAX_BYTES)
        goto refused;
    for (unsigned i = 0; i < m->tenants_seen_count; i++) {
        if (strcmp(m->tenants_seen[i], tenant) == 0)
            return m->tenants_seen[i];
    }
    if (m->tenants_seen_count == EMF_MAX_TENANTS)
        goto refused;
    if (!count)
        return tenant; /* would be accepted: not recorded yet */
    copy(m->tenants_seen[m->tenants_seen_count], sizeof(m->tenants_seen[0]), tenant);
    return m->tenants_seen[m->tenants_seen_count++];
refused:
    if (count)
        m->tenants_refused++;
    return "";
}

static void put(struct emf *m, enum emf_metric k, double v)
{
    struct emf_series *s = &m->s[k];

    if (!isfinite(v) || v < 0)
        return;
    if (metrics[k].kind == EMF_DIST)
        s->values[s->n] = v;
    s->n++;
    s->sum += v;
}

int emf_add(struct emf *m, const struct emf_sample *x)
{
    const char *tenant = tenant_key(m, x->tenant_id, false);

    for (int k = 0; k < M_COUNT; k++) {
        if (metrics[k].kind == EMF_DIST && m->s[k].n >= EMF_MAX_VALUES)
            return -EAGAIN;
    }
    if (m->pending && m->s[M_INVOCATIONS].n > 0 && strcmp(m->tenant, tenant) != 0)
        return -EAGAIN;
    tenant = tenant_key(m, x->tenant_id, true);
    copy(m->tenant, sizeof(m->tenant), tenant);
    if (!m->pending || m->oldest_ms == 0 || (x->time_ms > 0 && x->time_ms < m->oldest_ms))
        m->oldest_ms = x->time_ms > 0 ? x->time_ms : m->oldest_ms;
    m->pending = true;
    put(m, M_INIT_FAILURES, x->init_failed ? 1 : 0);
    if (x->init_failed)
        put(m, M_FAILED_INIT, x->init_ms);
    if (x->init_only)
        return 0;
    put(m, M_INVOCATIONS, 1);
    put(m, M_COLD_START, x->cold ? 1 : 0);
    put(m, M_ERRORS, x->outcome == EMF_OUTCOME_ERROR ? 1 : 0);
    put(m, M_TIMEOUTS, x->outcome == EMF_OUTCOME_TIMEOUT ? 1 : 0);
    put(m, M_OOM, x->outcome == EMF_OUTCOME_OOM ? 1 : 0);
    put(m, M_CRASHES, x->outcome == EMF_OUTCOME_CRASH ? 1 : 0);
    put(m, M_FAILURES, x->outcome == EMF_OUTCOME_FAILURE ? 1 : 0);
    if (x->cold) {
        put(m, M_INIT, x->init_ms);
        put(m, M_INIT_RUNTIME, x->init_runtime_ms);
        put(m, M_INIT_TRACER, x->init_tracer_ms);
    }
    put(m, M_DURATION, x->duration_ms);
    if (x->billed_ms >= 0)
        put(m, M_BILLED, (double)x->billed_ms);
    if (x->memory_used_mb >= 0) {
        put(m, M_MEMORY_USED, (double)x->memory_used_mb);
        if (x->memory_size_mb > 0)
            put(m, M_MEMORY_PCT, 100.0 * (double)x->memory_used_mb / (double)x->memory_size_mb);
    }
    put(m, M_COST, x->cost_usd);
    put(m, M_TRACER_HELD, x->tracer_held_ms);
    put(m, M_TRACER_CPU, x->tracer_cpu_ms);
    put(m, M_TRACER_COST, x->tracer_cost_usd);
    return 0;
}

void emf_add_dropped(struct emf *m, uint64_t n)
{
    if (n == 0)
        return;
    m->pending = true;
    m->s[M_DROPPED].n++;
    m->s[M_DROPPED].sum += (double)n;
}

bool emf_pending(const struct emf *m)
{
    return m->pending;
}

int64_t emf_oldest_ms(const struct emf *m)
{
    return m->oldest_ms;
}

uint64_t emf_tenants_refused(const struct emf *m)
{
    return m->tenants_refused;
}

/* A metric goes into the document when it has a value; counts of
 * invocations go in whenever an invocation does (0 is a value). */
static bool present(const struct emf *m, enum emf_metric k)
{
    if (k == M_DROPPED)
        return m->s[k].n > 0 || m->s[M_INVOCATIONS].n > 0;
    return m->s[k].n > 0;
}

static int append_str(struct buf *b, const char *s)
{
    return buf_append_json_string(b, s, strlen(s));
}

int emf_render(struct emf *m, int64_t now_ms, struct buf *out)
{
    size_t mark = buf_len(out);
    bool first = true;
    int r = 0;

    if (!m->pending)
        return -ENODATA;
    TRY(buf_append_str(out, "{\"_aws\":{\"Timestamp\":"));
    TRY(buf_append_i64(out, m->oldest_ms > 0 ? m->oldest_ms : now_ms));
    TRY(buf_append_str(out, ",\"CloudWatchMetrics\":[{\"Namespace\":"));
    TRY(append_str(out, m->ns));
    TRY(buf_append_str(out, ",\"Dimensions\":[[\"FunctionName\",\"Version\"]],\"Metrics\":["));
    for (int k = 0; k < M_COUNT; k++) {
        if (!present(m, k))
            continue;
        TRY(buf_printf(out, "%s{\"Name\":\"%s\",\"Unit\":\"%s\"}", first ? "" : ",",
                       metrics[k].name, metrics[k].unit));
        first = false;
    }
    TRY(buf_append_str(out, "]}"));
    if (m->tenant[0] != '\0' && present(m, M_COLD_START)) {
        TRY(buf_append_str(out, ",{\"Namespace\":"));
        TRY(append_str(out, m->ns));
        TRY(buf_printf(out,
                       ",\"Dimensions\":[[\"FunctionName\",\"TenantId\"]],\"Metrics\":[{\"Name\":"
                       "\"%s\",\"Unit\":\"Count\"}]}",
                       metrics[M_COLD_START].name));
    }
    TRY(buf_append_str(out, "]},\"FunctionName\":"));
    TRY(append_str(out, m->function_name));
    TRY(buf_append_str(out, ",\"Version\":"));
    TRY(append_str(out, m->function_version));
    if (m->tenant[0] != '\0' && present(m, M_COLD_START)) {
        TRY(buf_append_str(out, ",\"TenantId\":"));
        TRY(append_str(out, m->tenant));
    }
    for (int k = 0; k < M_COUNT; k++) {
        const struct emf_series *s = &m->s[k];

        if (!present(m, k))
            continue;
        TRY(buf_printf(out, ",\"%s\":", metrics[k].name));
        if (metrics[k].kind == EMF_SUM) {
            TRY(buf_append_json_double(out, s->sum));
            continue;
        }
        TRY(buf_append_str(out, "["));
        for (unsigned i = 0; i < s->n; i++) {
            if (i > 0)
                TRY(buf_append_str(out, ","));
            TRY(buf_append_json_double(out, s->values[i]));
        }
        TRY(buf_append_str(out, "]"));
    }
    TRY(buf_append_str(out, "}\n"));
    m->pending = false;
    m->oldest_ms = 0;
    m->tenant[0] = '\0';
    memset(m->s, 0, sizeof(m->s));
out:
    if (r < 0)
        buf_truncate(out, mark);
    return r;
}
