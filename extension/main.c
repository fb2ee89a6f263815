/*
 * main.c - lambda-tracer, an AWS Lambda external extension.
 *
 * The story: register with the Extensions API under our file name, start
 * the telemetry listener, subscribe to the Telemetry API (only possible
 * before our first /event/next), then loop on /event/next until SHUTDOWN,
 * and on SHUTDOWN drain what arrived and exit 0 inside the deadline.  The
 * rest of Init (journal, event loop, the Init line) is done once the first
 * /event/next went out, before its answer is read (finish_init).
 *
 * Threads, each with one job:
 *   main      - the Extensions API loop (this file).  Blocks in /event/next
 *               with no timeout: the sandbox is frozen inside that call.
 *   loop      - one event loop (pipeline.c, loop.c): accepts the platform's
 *               telemetry POSTs, answers 200 at once, parses them, follows
 *               invocations, builds segments and hands them to the
 *               exporters; samples the runtime during Init and slow
 *               invocations on timers.  It sleeps while nothing happens.
 *   exporter  - sends segments (export.c), started at the first segment.
 * Main and loop meet at the pipeline's small hand-off: events in, "runtime
 * done" and "drained" out, each with its own condition.  Workers are started with every signal
 * blocked, so signals land on the main thread.
 *
 * Failing open: nothing here may take the function down.  A bad setting
 * falls back to its default, a listener or subscription failure leaves a
 * registered extension that keeps calling next, and we never exit non-zero
 * during Init once registered (Lambda would fail the function with
 * Extension.Crash).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "export.h"
#include "ext_event.h"
#include "extapi.h"
#include "http_client.h"
#include "ids.h"
#include "initwatch.h"
#include "journal.h"
#include "limits.h"
#include "listener.h"
#include "log.h"
#include "pipeline.h"
#include "policy.h"
#include "summary.h"

/* Schema versions tried in order when Lambda refuses one with 400. */
static const char *const schema_fallbacks[] = {"2025-01-29", "2022-12-13", "2022-07-01"};

/* Telemetry still arriving while we stop the listener gets this long. */
#define LISTENER_STOP_DRAIN_MS 20

struct runtime {
    struct config cfg;
    struct extapi *api;
    struct listener *listener; /* opened; the pipeline's once it started */
    struct pipeline *pipeline;
    struct export_config export_cfg;
    bool export_wanted;        /* export_cfg names at least one usable sink */
    bool telemetry_active;
    struct extapi_registration reg;
    int64_t registered_us;
    uint64_t invokes;          /* INVOKE events received */
    bool left_running;         /* pipeline_stop gave up on a thread: exit at once */
    int64_t started_us;     /* this process's start (epoch) */
    struct journal *journal;
    struct initwatch *initwatch; /* the Init anatomy's sampler (NULL: off) */
    struct journal_entry recovered[JOURNAL_SLOTS];
    size_t recovered_count;
    const char *name;          /* our file name */
    const char *schema;        /* the Telemetry API schema subscribed to (telemetry_active) */
    uint16_t telemetry_port;   /* and the listener's port */
    bool init_finished;        /* finish_init ran */
    int64_t init_finished_cpu_us; /* this process's CPU time at its end (-1: unavailable) */
};

static const char *env_lookup(const char *name, void *ctx)
{
    (void)ctx;
    return getenv(name);
}

static void warn_setting(const char *name, const char *problem, const char *fallback, void *ctx)
{
    (void)ctx;
    log_warn("setting %s is invalid (%s); using %s", name, problem, fallback);
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash != NULL ? slash + 1 : path;
}

/* "HTTP 403, Type: message" or, without an answer, "no HTTP answer,
 * reason: detail": what the Extensions API said, or why it said nothing.
 * Returned by value: .text lives until the end of the caller's statement. */
struct api_detail {
    char text[sizeof(((struct extapi_error *)0)->error_type) + sizeof(((struct extapi_error *)0)->message) + 32];
};

static struct api_detail api_error_detail(const struct extapi_error *err)
{
    struct api_detail d;
    int n = err->status > 0 ? snprintf(d.text, sizeof(d.text), "HTTP %ld", err->status)
                            : snprintf(d.text, sizeof(d.text), "no HTTP answer");

    if (n > 0 && (size_t)n < sizeof(d.text))
        snprintf(d.text + n, sizeof(d.text) - (size_t)n, "%s%s%s%s", err->error_type[0] ? ", " : "",
                 err->error_type, err->message[0] ? ": " : "", err->message);
    return d;
}

/* then: what happens next ("exiting", "continuing without telemetry"). */
static void log_api_error(const char *what, int r, const struct extapi_error *err, const char *then)
{
    log_error("%s failed: %s (%s); %s", what, strerror(-r), api_error_detail(err).text, then);
}

/* Bind, subscribe.  Leaves rt->telemetry_active false (and logs why) when
 * telemetry cannot be had; the extension then keeps running without it. */
static void start_telemetry(struct runtime *rt, const char *listen_host)
{
    struct listener_options opts = {
        .host = listen_host,
        .port = rt->cfg.listener_port,
        /* Lambda may send up to 2 x maxBytes plus metadata in one POST. */
        .max_body_bytes = 2 * (size_t)rt->cfg.buffer_max_bytes + LISTENER_BODY_SLACK_BYTES,
    };
    struct extapi_error err = {0};
    char body[512];
    int fell_back = 0;
    size_t first = 0;
    int r;

    r = listener_open(&opts, &rt->listener, &fell_back);
    if (r < 0) {
        log_error("telemetry listener could not start: %s; continuing without telemetry",
                  strerror(-r));
        return;
    }
    if (fell_back)
        log_debug("%s does not resolve; listening on loopback", listen_host);

    /* Start with the configured version, then fall back to older ones. */
    for (size_t i = 0; i < sizeof(schema_fallbacks) / sizeof(schema_fallbacks[0]); i++)
        if (strcmp(schema_fallbacks[i], rt->cfg.schema_version) == 0)
            first = i;
    for (size_t i = first; i < sizeof(schema_fallbacks) / sizeof(schema_fallbacks[0]); i++) {
        r = extapi_subscription_body(&rt->cfg, schema_fallbacks[i], listener_port(rt->listener),
                                     body, sizeof(body));
        if (r < 0) {
            snprintf(err.error_type, sizeof(err.error_type), "%s", "subscription body too long");
            break;
        }
        r = extapi_subscribe(rt->api, body, &err);
        if (r == 0) {
            /* Said on the settings line, after our first /event/next went out. */
            rt->telemetry_active = true;
            rt->schema = schema_fallbacks[i];
            rt->telemetry_port = listener_port(rt->listener);
            return;
        }
        if (r == 1) {
            log_warn("the Telemetry API is not available here (%s); continuing without telemetry",
                     err.error_type[0] ? err.error_type : "status 202");
            break;
        }
        if (r != -EINVAL)
            break;
        log_info("Telemetry API refused schema %s (%s); trying an older one", schema_fallbacks[i],
                 err.message);
    }
    if (r < 0)
        log_api_error("Telemetry API subscription", r, &err, "continuing without telemetry");
    listener_close(rt->listener, NULL);
    rt->listener = NULL;
}

static void log_export_stats(const struct export_stats *es)
{
    static const char *const names[EXPORT_SINK_COUNT] = {"xray", "daemon", "otlp", "stdout", "xray_otlp"};
    char line[512] = "";
    size_t len = 0;

    for (unsigned i = 0; i < EXPORT_SINK_COUNT; i++) {
        const struct export_sink_stats *s = &es->sink[i];
        if (s->sent + s->failed + s->skipped + s->requests == 0)
            continue;
        int n = snprintf(line + len, sizeof(line) - len, " %s_sent=%llu %s_failed=%llu %s_skipped=%llu",
                         names[i], (unsigned long long)s->sent, names[i], (unsigned long long)s->failed,
                         names[i], (unsigned long long)s->skipped);
        if (n < 0 || (size_t)n >= sizeof(line) - len)
            break;
        len += (size_t)n;
    }
    log_info("export submitted=%llu dropped_full=%llu dropped_encode=%llu unprocessed=%llu rejected_spans=%llu%s",
             (unsigned long long)es->submitted, (unsigned long long)es->dropped_full,
             (unsigned long long)es->dropped_encode, (unsigned long long)es->unprocessed,
             (unsigned long long)es->rejected_spans, line);
}

/* How many counters a (possibly cut) summary line holds, and how many
 * there are: what the truncation warning reports. */
static size_t summary_counters_in(const char *line)
{
    size_t n = line[0] != '\0';

    for (const char *p = line; *p != '\0'; p++)
        n += *p == ' ';
    return n;
}

static size_t summary_counters_all(void)
{
    char name[128];
    size_t n = 0;

    while (summary_counter_name(n, name, sizeof(name)))
        n++;
    return n;
}

/* SHUTDOWN: let the loop drain within the one budget (policy.h), stop
 * it and the exporters, and log the summary. */
static void shut_down(struct runtime *rt, const struct ext_event *ev, int64_t received_us)
{
    struct pipeline_result res;
    struct summary_input in = {.invokes = rt->invokes};
    struct policy_shutdown b;
    int64_t started_ms = clock_mono_ms();
    char line[3072];

    policy_shutdown_budget(ev->deadline_ms, received_us, rt->cfg.shutdown_telemetry_wait_ms, clock_epoch_us(),
                           clock_mono_ns(), &b);
    if (rt->pipeline != NULL) {
        /* A guard: the loop's own wait ends earlier. */
        if (!pipeline_wait_drained(rt->pipeline, b.end_ns))
            log_warn("shutdown deadline near; stopping before the pipeline drained");
        int64_t left_ms = (b.end_ns - clock_mono_ns()) / 1000000;
        int drain_ms = left_ms < LISTENER_STOP_DRAIN_MS ? (left_ms > 0 ? (int)left_ms : 0) : LISTENER_STOP_DRAIN_MS;
        rt->left_running = !pipeline_stop(rt->pipeline, b.end_ns, drain_ms, &res);
        rt->pipeline = NULL;
        in.pipeline = &res.stats;
        in.queue = &res.intake;
        if (res.has_listener)
            in.listener = &res.listener;
        if (res.has_exporter) {
            in.exporter = &res.exporter;
            log_export_stats(&res.exporter);
        }
    }
    in.shutdown_ms = clock_mono_ms() - started_ms;
    if (summary_format(&in, line, sizeof(line)) < 0)
        log_warn("shutdown summary truncated: %zu of %zu counters fit in its %zu bytes; the rest are left out",
                 summary_counters_in(line), summary_counters_all(), sizeof(line));
    log_info("shutdown reason=%s %s", ext_shutdown_reason_name(ev->shutdown_reason), line);
}

static int64_t env_int(const char *name)
{
    const char *v = getenv(name);
    uint64_t n = 0;

    if (v == NULL || config_parse_u64(v, 0, 1u << 20, &n) < 0)
        return 0;
    return (int64_t)n;
}

/* The journal of invocations not yet exported, in the sandbox's /tmp, and
 * what a killed predecessor left in it.  Without it (no /tmp, a write
 * error) the extension works as before, minus that recovery. */
static void open_journal(struct runtime *rt, const char *name)
{
    char path[512];
    int r = journal_path(getenv("TMPDIR"), name, path, sizeof(path));

    if (r == 0)
        r = journal_open(path, &rt->journal, rt->recovered, JOURNAL_SLOTS, &rt->recovered_count);
    if (r < 0) {
        log_warn("invocation journal unavailable (%s); continuing without it", strerror(-r));
        rt->journal = NULL;
        return;
    }
    if (rt->recovered_count > 0)
        log_info("%zu invocation(s) of a previous process of this environment were not exported; "
                 "exporting them",
                 rt->recovered_count);
}

/* The exporters from the settings; a sink that cannot work is left out
 * with one log line, and with none left, segments are only counted.  The
 * pipeline starts them at the first segment. */
static void configure_exporter(struct runtime *rt, const char *region)
{
    struct export_config *ec = &rt->export_cfg;
    char host_region[CONFIG_REGION_MAX];
    unsigned sinks = 0;

    if (export_parse_sinks(rt->cfg.exporters, &sinks) < 0 || sinks == 0)
        return;
    if ((sinks & (1u << EXPORT_SINK_XRAY)) && rt->cfg.xray_endpoint[0] == '\0' && region[0] == '\0') {
        log_warn("X-Ray exporter needs AWS_REGION or LAMBDA_TRACER_XRAY_ENDPOINT; leaving it out");
        sinks &= ~(1u << EXPORT_SINK_XRAY);
    }
    if ((sinks & (1u << EXPORT_SINK_DAEMON)) && rt->cfg.daemon_address[0] == '\0') {
        log_warn("X-Ray daemon exporter needs LAMBDA_TRACER_DAEMON_ADDRESS (or AWS_XRAY_DAEMON_ADDRESS); "
                 "leaving it out");
        sinks &= ~(1u << EXPORT_SINK_DAEMON);
    }
    if ((sinks & (1u << EXPORT_SINK_OTLP)) && rt->cfg.otlp_endpoint[0] == '\0') {
        /* Unset, the endpoint is the default: only a refused one is "" (the first set wins). */
        static const char *const names[] = {"LAMBDA_TRACER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                                            "OTEL_EXPORTER_OTLP_ENDPOINT"};
        const char *refused = "its setting";
        for (size_t i = sizeof(names) / sizeof(names[0]); i-- > 0;)
            if (getenv(names[i]) != NULL)
                refused = names[i];
        log_warn("OTLP exporter has no usable endpoint (%s was refused: see its line above); leaving it out",
                 refused);
        sinks &= ~(1u << EXPORT_SINK_OTLP);
    }
    /* X-Ray's own OTLP endpoint needs SigV4: the xray-otlp sink. */
    if ((sinks & (1u << EXPORT_SINK_OTLP)) &&
        export_xray_otlp_host(rt->cfg.otlp_endpoint, host_region, sizeof(host_region))) {
        sinks = (sinks & ~(1u << EXPORT_SINK_OTLP)) | 1u << EXPORT_SINK_XRAY_OTLP;
        snprintf(ec->xray_otlp_endpoint, sizeof(ec->xray_otlp_endpoint), "%s", rt->cfg.otlp_endpoint);
        region = host_region;
    } else if (rt->cfg.xray_endpoint[0] != '\0') {
        snprintf(ec->xray_otlp_endpoint, sizeof(ec->xray_otlp_endpoint), "%s/v1/traces", rt->cfg.xray_endpoint);
    } else {
        snprintf(ec->xray_otlp_endpoint, sizeof(ec->xray_otlp_endpoint), "https://xray.%s.amazonaws.com/v1/traces",
                 region);
    }
    if ((sinks & (1u << EXPORT_SINK_XRAY_OTLP)) && rt->cfg.otlp_json) {
        log_warn("X-Ray OTLP exporter sends protobuf, not http/json (the OTLP protocol setting); leaving it out");
        sinks &= ~(1u << EXPORT_SINK_XRAY_OTLP);
    }
    if ((sinks & (1u << EXPORT_SINK_XRAY_OTLP)) && region[0] == '\0') {
        log_warn("X-Ray OTLP exporter needs AWS_REGION (SigV4); leaving it out");
        sinks &= ~(1u << EXPORT_SINK_XRAY_OTLP);
    }
    if (sinks == 0)
        return;
    ec->sinks = sinks;
    if (rt->cfg.xray_endpoint[0] != '\0')
        snprintf(ec->xray_endpoint, sizeof(ec->xray_endpoint), "%s", rt->cfg.xray_endpoint);
    else
        snprintf(ec->xray_endpoint, sizeof(ec->xray_endpoint), "https://xray.%s.amazonaws.com", region);
    snprintf(ec->region, sizeof(ec->region), "%s", region);
    snprintf(ec->daemon_address, sizeof(ec->daemon_address), "%s", rt->cfg.daemon_address);
    snprintf(ec->otlp_endpoint, sizeof(ec->otlp_endpoint), "%s", rt->cfg.otlp_endpoint);
    snprintf(ec->otlp_headers, sizeof(ec->otlp_headers), "%s", rt->cfg.otlp_headers);
    ec->otlp_json = rt->cfg.otlp_json;
    ec->otlp_gzip = rt->cfg.otlp_gzip;
    ec->otlp_span_new = rt->cfg.otlp_span_new;
    ec->otlp_timeout_ms = rt->cfg.otlp_timeout_ms;
    snprintf(ec->ca_file, sizeof(ec->ca_file), "%s", rt->cfg.ca_file);
    ec->queue_max_bytes = rt->cfg.export_queue_max_bytes;
    ec->request_timeout_ms = rt->cfg.export_timeout_ms;
    ec->connect_timeout_ms = EXPORT_CONNECT_TIMEOUT_MS;
    rt->export_wanted = true;
}

/* One line with the subscription and the settings in effect (after every
 * fallback), never a secret. */
static void log_settings(const struct runtime *rt)
{
    static const char *const names[EXPORT_SINK_COUNT] = {"xray", "daemon", "otlp", "stdout", "xray-otlp"};
    unsigned sinks = rt->export_wanted ? rt->export_cfg.sinks : 0;
    char exporters[64] = "";
    char line[2048];
    size_t len = 0;

    for (unsigned i = 0; i < EXPORT_SINK_COUNT; i++) {
        if ((sinks & (1u << i)) == 0)
            continue;
        int n = snprintf(exporters + len, sizeof(exporters) - len, "%s%s", len > 0 ? "," : "", names[i]);
        if (n < 0 || (size_t)n >= sizeof(exporters) - len)
            break;
        len += (size_t)n;
    }
    config_describe(&rt->cfg, exporters, (sinks & (1u << EXPORT_SINK_XRAY)) ? rt->export_cfg.xray_endpoint : NULL,
                    (sinks & (1u << EXPORT_SINK_DAEMON)) != 0, (sinks & (1u << EXPORT_SINK_OTLP)) != 0, line,
                    sizeof(line));
    if (rt->telemetry_active)
        log_info("subscribed to the Telemetry API (schema %s) on port %u; settings: %s", rt->schema,
                 (unsigned)rt->telemetry_port, line);
    else
        log_info("settings: %s (no telemetry: nothing is traced)", line);
}

/* AWS_REGION, or "" when unset or not a region name: it goes into the X-Ray
 * host name, the SigV4 scope and resource attributes, so a value like
 * "x@host:port/" must not reach them. */
static const char *checked_region(void)
{
    const char *region = getenv("AWS_REGION");

    if (region == NULL || region[0] == '\0')
        return "";
    if (!config_region_valid(region)) {
        log_warn("AWS_REGION is not a region name ([a-z0-9-], at most %d bytes); using none (the X-Ray "
                 "API exporter needs LAMBDA_TRACER_XRAY_ENDPOINT then)",
                 CONFIG_REGION_MAX - 1);
        return "";
    }
    return region;
}

/* AWS_LAMBDA_INITIALIZATION_TYPE is type: "snap-start" (Init ends in a
 * snapshot the environment's copies are restored from),
 * "lambda-managed-instances", ... */
static bool initialization_type_is(const char *type)
{
    const char *init_type = getenv("AWS_LAMBDA_INITIALIZATION_TYPE");

    return init_type != NULL && strcmp(init_type, type) == 0;
}

static void start_pipeline(struct runtime *rt)
{
    const char *region = checked_region();
    struct pipeline_function fn = {
        .name = rt->reg.function_name[0] ? rt->reg.function_name : getenv("AWS_LAMBDA_FUNCTION_NAME"),
        .version = rt->reg.function_version[0] ? rt->reg.function_version
                                               : getenv("AWS_LAMBDA_FUNCTION_VERSION"),
        .account_id = rt->reg.account_id,
        .region = region,
        .memory_size_mb = env_int("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"),
        .journal = rt->journal,
        .initwatch = rt->initwatch,
        .recovered = rt->recovered,
        .recovered_count = rt->recovered_count,
        .reset_us = rt->started_us,
        .snap_start = initialization_type_is("snap-start"),
    };
    int r;

    configure_exporter(rt, fn.region);
    fn.export_cfg = rt->export_wanted ? &rt->export_cfg : NULL;
    fn.listener = rt->listener;
    r = pipeline_start(&rt->cfg, &fn, &rt->pipeline);
    if (r < 0) {
        log_error("pipeline could not start: %s; continuing without telemetry", strerror(-r));
        listener_close(rt->listener, NULL);
    }
    rt->listener = NULL; /* the pipeline's now, or closed */
}

/* Registers for INVOKE and SHUTDOWN; on Lambda Managed Instances, where
 * extensions get no INVOKE (refused with 403), for SHUTDOWN only: the
 * invocations are then built from platform.start / platform.report alone. */
static int register_once(struct runtime *rt, struct extapi_error *err)
{
    bool managed = initialization_type_is("lambda-managed-instances");

    if (!managed) {
        int r = extapi_register(rt->api, true, true, &rt->reg, err);
        if (r != -EACCES)
            return r;
        log_info("INVOKE registration refused (%s); registering for SHUTDOWN only",
                 err->error_type[0] ? err->error_type : "403");
    }
    return extapi_register(rt->api, false, true, &rt->reg, err);
}

/* A transport error, a 5xx or an answer without an identifier may be a
 * passing hiccup: try again, briefly (Lambda holds the function's Init
 * until every extension has registered).  A refusal (4xx) is final. */
static int register_extension(struct runtime *rt, struct extapi_error *err)
{
    int r = -EIO;

    for (int attempt = 0; attempt < REGISTER_ATTEMPTS; attempt++) {
        if (attempt > 0) {
            log_warn("registration attempt %d of %d failed: %s (%s); trying again", attempt, REGISTER_ATTEMPTS,
                     strerror(-r), api_error_detail(err).text);
            clock_sleep_ms((int64_t)REGISTER_RETRY_DELAY_MS * attempt);
        }
        r = register_once(rt, err);
        if (r == 0 || r == -EACCES || r == -EINVAL)
            break;
    }
    return r;
}

/* A run of /event/next calls that brought no usable event.  Logged once
 * when it starts and once when it ends, never per call. */
struct next_trouble {
    unsigned calls;
    int64_t delay_ms;
};

/* Logs the first failure of a run and sleeps the run's next delay
 * (EXTAPI_NEXT_BACKOFF_MIN_MS doubling up to _MAX_MS): a platform
 * answering garbage or errors at once must not make us spin. */
static void next_failed(struct next_trouble *t, int r, const struct extapi_error *err)
{
    if (t->calls++ == 0) {
        if (r == -EPROTO)
            log_warn("/event/next answered something that is not an event (status %ld); calling again, "
                     "at most every %d ms while it lasts",
                     err->status, EXTAPI_NEXT_BACKOFF_MAX_MS);
        else if (r == -EMSGSIZE)
            log_warn("/event/next answered an event over %lu bytes; skipping it and calling again",
                     (unsigned long)EXTAPI_MAX_EVENT_BYTES);
        else
            log_warn("/event/next failed: %s (%s); calling again, at most every %d ms while it fails", strerror(-r),
                     api_error_detail(err).text, EXTAPI_NEXT_BACKOFF_MAX_MS);
        t->delay_ms = EXTAPI_NEXT_BACKOFF_MIN_MS;
    } else if (t->delay_ms < EXTAPI_NEXT_BACKOFF_MAX_MS) {
        t->delay_ms = t->delay_ms * 2 < EXTAPI_NEXT_BACKOFF_MAX_MS ? t->delay_ms * 2
                                                                   : EXTAPI_NEXT_BACKOFF_MAX_MS;
    }
    clock_sleep_ms(t->delay_ms);
}

/* This process's CPU time (all threads), µs; -1 when unavailable. */
static int64_t process_cpu_us(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0)
        return -1;
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Before the /event/next that ends our part in an invocation: when we
 * call it (after the runtime's, we held the invocation open) and the CPU
 * we used since the previous one, for its cost (tracer.h). */
static void push_released(struct runtime *rt, const char *request_id, int64_t *cpu_prev_us)
{
    int64_t cpu = process_cpu_us();

    pipeline_post_released(rt->pipeline, request_id, clock_epoch_us(),
                           cpu >= 0 && *cpu_prev_us >= 0 ? cpu - *cpu_prev_us : -1);
    *cpu_prev_us = cpu;
}

/* The rest of Init, run once on the main thread as soon as our first
 * /event/next has gone out (extapi_next_then), before its answer is read:
 * nothing here is needed for Lambda to end Init (register, the listener
 * and the subscription came before), and the INVOKE it answers is only
 * read once this is done, so the journal is open, a killed predecessor's
 * invocations recovered and the pipeline started before the first event
 * is handled.  The platform's telemetry waits in the listener's backlog
 * meanwhile.  Also run when no request could be sent (ctx: the runtime). */
static void finish_init(void *ctx)
{
    struct runtime *rt = ctx;
    int64_t first_next_us;
    sigset_t all;
    sigset_t old;

    if (rt->init_finished)
        return;
    rt->init_finished = true;
    first_next_us = clock_epoch_us();
    /* A CPU time soft limit (RLIMIT_CPU, at least 1 s) only warns with
     * SIGXCPU: ignored (far from reached by now). */
    signal(SIGXCPU, SIG_IGN);
    if (!rt->cfg.disabled) {
        /* Workers inherit this mask: signals stay with the main thread. */
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        if (rt->telemetry_active && rt->cfg.init_watch_ms > 0) {
            /* The runtime starts once every extension registered: the watcher
             * looks for it every interval, for at most 30 s of Init. */
            struct initwatch_opts wo = {.self = getpid(), .interval_ms = rt->cfg.init_watch_ms,
                                        .max_samples = 30000 / rt->cfg.init_watch_ms + 1};
            errno = 0;
            rt->initwatch = initwatch_new(&wo);
            if (rt->initwatch == NULL)
                log_warn("cannot start the Init watcher (%s); no Init anatomy",
                         strerror(errno != 0 ? errno : EINVAL));
        }
        if (rt->telemetry_active) {
            open_journal(rt, rt->name);
            start_pipeline(rt);
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        log_settings(rt);
        pipeline_post_ready(rt->pipeline, rt->registered_us, first_next_us);
    }
    rt->init_finished_cpu_us = process_cpu_us();
}

/* The Extensions API loop.  Returns the process exit status: non-zero only
 * when /event/next fails before it ever brought an event (Init then fails,
 * as Lambda documents); once one came, Init is over and a failing API is
 * called again, paced, until SHUTDOWN (or Lambda's SIGKILL). */
static int event_loop(struct runtime *rt)
{
    struct next_trouble trouble = {0};
    bool init_over = false;
    char last_invoke[EVENT_REQUEST_ID_MAX] = "";
    int64_t cpu_prev_us = -1;
    bool snap_start = initialization_type_is("snap-start");

    for (;;) {
        struct ext_event ev;
        struct extapi_error err;
        int64_t received_us;
        int64_t received_ns;
        int r;

        if (rt->init_finished) {
            push_released(rt, last_invoke, &cpu_prev_us);
            last_invoke[0] = '\0';
            r = extapi_next(rt->api, &ev, &err);
        } else {
            /* The first: the rest of Init is done once it went out. */
            r = extapi_next_then(rt->api, &ev, &err, finish_init, rt);
            finish_init(rt); /* when it could not be sent */
            cpu_prev_us = rt->init_finished_cpu_us;
        }

        received_us = clock_epoch_us();
        received_ns = clock_mono_ns();
        if (r == 0 && ev.type == EXT_EVENT_INVOKE)
            rt->invokes++; /* whatever happens to it next (no telemetry, no pipeline) */
        if (r < 0 && r != -EPROTO && r != -EMSGSIZE && !init_over) {
            /* Lambda says to exit on errors here; it restarts the sandbox. */
            log_api_error("/event/next", r, &err, "exiting (Init fails; Lambda starts the environment again)");
            return EXIT_FAILURE;
        }
        if (r < 0) {
            next_failed(&trouble, r, &err);
            continue;
        }
        if (trouble.calls > 0) {
            log_info("/event/next brought an event again after %u call(s) that did not", trouble.calls);
            trouble.calls = 0;
        }
        /* SnapStart: the snapshot was taken while we waited in this call
         * (the Extensions API has no restore event), so this is a restored
         * copy whose random pools every other copy shares: new ids come
         * from fresh entropy, before anything reaches another thread. */
        if (!init_over && snap_start)
            ids_restore_epoch_bump();
        init_over = true;
        if (pipeline_post_event(rt->pipeline, &ev, received_us))
            pipeline_hold(rt->pipeline, &ev, received_ns);
        if (ev.type == EXT_EVENT_INVOKE)
            snprintf(last_invoke, sizeof(last_invoke), "%s", ev.request_id);
        if (ev.type == EXT_EVENT_SHUTDOWN) {
            shut_down(rt, &ev, received_us);
            return EXIT_SUCCESS;
        }
    }
}

/* Started with descriptor 0, 1 or 2 closed, the first files we open would
 * take their numbers: log lines would land in the journal or a socket.
 * /dev/null holds each closed one (what cannot be opened stays closed).
 * One poll tells which are closed (POLLNVAL); fcntl asks one at a time
 * only when it fails. */
static void hold_std_fds(void)
{
    struct pollfd std[3] = {{.fd = 0}, {.fd = 1}, {.fd = 2}};
    bool polled = poll(std, 3, 0) >= 0;

    for (int fd = 0; fd <= 2; fd++) {
        if (polled ? (std[fd].revents & POLLNVAL) == 0 : fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
            continue;
        int n = open("/dev/null", O_RDWR); /* a standard descriptor: kept across exec */
        if (n < 0)
            return;
        if (n != fd) { /* a lower one was open after all: put it in place */
            (void)dup2(n, fd);
            close(n);
        }
    }
}

int main(int argc, char **argv)
{
    struct runtime rt = {.started_us = clock_epoch_us(), .init_finished_cpu_us = -1};
    struct extapi_error err;
    const char *name = argc > 0 && argv[0] != NULL ? base_name(argv[0]) : "lambda-tracer";
    const char *runtime_api = getenv("AWS_LAMBDA_RUNTIME_API");
    int status = EXIT_FAILURE;
    int r;

    /* Before the first log line: a closed stderr must not kill us with
     * SIGPIPE, nor a file size limit (RLIMIT_FSIZE: stderr redirected to a
     * file, the journal) with SIGXFSZ.  Ignored, the write fails (EPIPE,
     * EFBIG) and the journal turns itself off instead.  Without this,
     * journal_open hitting the limit left SIGXFSZ pending on the main
     * thread, fatal when its signal mask was restored.  SIGXCPU: in
     * finish_init. */
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN);
    hold_std_fds();
    log_set_prefix(name);
    rt.name = name;
    config_sinks_parser = export_parse_sinks;
    config_load(&rt.cfg, env_lookup, NULL, warn_setting, NULL);
    if (rt.cfg.trace_unsampled_deprecated)
        log_warn("setting LAMBDA_TRACER_TRACE_UNSAMPLED is deprecated; use LAMBDA_TRACER_SAMPLING "
                 "(now %s)", rt.cfg.sampling == SAMPLING_POLICY_ALL      ? "all"
                         : rt.cfg.sampling == SAMPLING_POLICY_HEADER ? "header"
                                                                     : "smart");
    log_current_level = rt.cfg.log_level;

    if (runtime_api == NULL || runtime_api[0] == '\0') {
        log_error("AWS_LAMBDA_RUNTIME_API is not set: not running inside Lambda");
        return EXIT_FAILURE;
    }
    /* Never echoed: a value that is not host:port (userinfo, a path) would
     * send the whole conversation elsewhere. */
    if (!config_runtime_api_valid(runtime_api)) {
        log_error("AWS_LAMBDA_RUNTIME_API is not host:port (a host name, IPv4 or [IPv6] address and "
                  "a port); not talking to it");
        return EXIT_FAILURE;
    }
    char curl_why[128] = "unknown";
    if (http_client_global_init(curl_why, sizeof(curl_why)) < 0) {
        log_error("libcurl initialisation failed: %s; exiting", curl_why);
        return EXIT_FAILURE;
    }
    r = extapi_new(runtime_api, name, &rt.api);
    if (r < 0) {
        log_error("cannot use AWS_LAMBDA_RUNTIME_API: %s", strerror(-r));
        goto out;
    }
    r = register_extension(&rt, &err);
    if (r < 0) {
        log_api_error("registration", r, &err, "exiting");
        goto out;
    }
    rt.registered_us = clock_epoch_us();
    log_debug("registered (function %s, version %s)", rt.reg.function_name, rt.reg.function_version);

    if (rt.cfg.disabled) {
        log_info("disabled by LAMBDA_TRACER_DISABLE; only keeping the invocation loop");
        status = event_loop(&rt);
        goto out;
    }

    start_telemetry(&rt, "sandbox.localdomain");
    /* The journal, the pipeline's threads and the settings line: in
     * finish_init, once the first /event/next went out. */
    status = event_loop(&rt);
    if (rt.left_running) {
        /* A thread did not end by the SHUTDOWN budget (stuck where nothing
         * can cut it, its work counted): it may still use libcurl and the
         * journal, so nothing is torn down under it.  Exit now, inside the
         * deadline. */
        _exit(EXIT_SUCCESS);
    }

out:
    /* On the error paths the threads may still run: stop them; nothing
     * more is sent, a request in flight is cut at once. */
    listener_close(rt.listener, NULL);
    if (rt.pipeline != NULL) {
        struct pipeline_result res;
        if (!pipeline_stop(rt.pipeline, clock_mono_ns() + 2 * (int64_t)EXPORT_STOP_JOIN_MS * 1000000, 0, &res))
            _exit(status); /* a thread is stuck: tear nothing down under it */
    }
    initwatch_free(rt.initwatch);
    /* After a SHUTDOWN every invocation was exported or counted: the next
     * process (after a reset) must find nothing.  On the error paths the
     * entries stay for it. */
    journal_close(rt.journal, status == EXIT_SUCCESS);
    extapi_destroy(rt.api);
    http_client_global_clean_up();
    return status;
}
