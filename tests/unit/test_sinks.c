/* Unit tests for the exporter's sinks (sink_xray.c, sink_otlp.c,
 * sink_daemon.c, sink_stdout.c) through their struct sink_ops, with a fake
 * transport: the test plays the network (it takes the requests a sink
 * makes and hands back answers, good and bad), a function records the
 * daemon's datagrams, and stdout writes into a pipe. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>
#include <zlib.h>

#include "buf.h"
#include "clock.h"
#include "config.h"
#include "export_sink.h"
#include "fail_alloc.h"
#include "xray_encode.h"

/* --- items ----------------------------------------------------------------- */

/* An item holding ndocs X-Ray documents with ids base, base+1, ... (16 hex
 * digits), each pad bytes of padding long, and an OTLP request text. */
static struct export_item *make_item(unsigned base, size_t ndocs, size_t pad, const char *otlp)
{
    struct export_item *it = calloc(1, sizeof(*it) + ndocs * sizeof(it->doc[0]));
    size_t cap = ndocs * (pad + 128) + 1;
    size_t len = 0;

    assert_non_null(it);
    it->ticket = -1;
    it->final = true;
    it->xray = malloc(cap);
    assert_non_null(it->xray);
    for (size_t d = 0; d < ndocs; d++) {
        int n = snprintf(it->xray + len, cap - len,
                         "{\"trace_id\":\"1-5759e988-bd862e3fe1be46a994272793\",\"id\":\"%016x\",\"p\":\"",
                         base + (unsigned)d);
        it->doc[d].off = (uint32_t)len;
        len += (size_t)n;
        memset(it->xray + len, 'x', pad);
        len += pad;
        memcpy(it->xray + len, "\"}", 2);
        len += 2;
        it->doc[d].len = (uint32_t)(len - it->doc[d].off);
        it->xray[len++] = '\n';
    }
    it->xray[len] = '\0';
    it->ndocs = ndocs;
    if (otlp != NULL) {
        it->otlp = strdup(otlp);
        it->otlp_len = strlen(otlp);
    }
    return it;
}

static void free_items(struct export_item **items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(items[i]->xray);
        free(items[i]->otlp);
        free(items[i]);
    }
}

static const char *fake_env(const char *name, void *ctx)
{
    const char *const *vars = ctx;

    for (size_t i = 0; vars[i] != NULL; i += 2)
        if (strcmp(vars[i], name) == 0)
            return vars[i + 1];
    return NULL;
}

static const char *const creds_vars[] = {"AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY", "secret",
                                         "AWS_SESSION_TOKEN", "token123", NULL};
static const char *const no_vars[] = {NULL};

static struct export_config xray_cfg(void)
{
    struct export_config cfg = {.sinks = 1u << EXPORT_SINK_XRAY, .request_timeout_ms = 1000};

    snprintf(cfg.xray_endpoint, sizeof(cfg.xray_endpoint), "http://127.0.0.1:9");
    snprintf(cfg.region, sizeof(cfg.region), "eu-west-1");
    return cfg;
}

static size_t list_len(const struct sink_list *l)
{
    size_t n = 0;

    for (const struct sink_request *r = l->head; r != NULL; r = r->next)
        n++;
    return n;
}

/* The documents a PutTraceSegments body carries (checks its shape). */
static size_t body_docs(const struct sink_request *r)
{
    cJSON *root = cJSON_ParseWithLength(r->http.body, r->http.body_len);
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "TraceSegmentDocuments");
    size_t n;

    assert_non_null(root);
    assert_true(cJSON_IsArray(arr));
    n = (size_t)cJSON_GetArraySize(arr);
    for (size_t i = 0; i < n; i++)
        assert_true(cJSON_IsString(cJSON_GetArrayItem(arr, (int)i)));
    cJSON_Delete(root);
    return n;
}

static void free_list(const struct sink_ops *ops, void *s, struct sink_list *l)
{
    struct sink_request *r;

    while ((r = sink_list_pop(l)) != NULL)
        ops->free_request(s, r);
}

/* --- X-Ray ----------------------------------------------------------------- */

static void test_xray_splits_a_batch_into_signed_requests(void **state)
{
    struct export_config cfg = xray_cfg();
    struct sink_env env = {.cfg = &cfg, .out_fd = -1, .getenv_fn = fake_env, .getenv_ctx = (void *)creds_vars};
    struct export_item *items[3] = {make_item(0x100, 13, 10, NULL), make_item(0x200, 13, 10, NULL),
                                    make_item(0x300, 1, 10, NULL)};
    struct sink_list out = {0};
    struct sink_result res = {0};
    void *s = NULL;
    size_t total = 0;
    bool token = false;

    (void)state;
    assert_int_equal(sink_xray_ops.open(&env, &s), 0);
    assert_int_equal(sink_xray_ops.units(items, 3), 27);
    /* 27 documents, but at most 50 per request: a batch of 4 x 27 = 108 is 3 requests */
    struct export_item *four[] = {items[0], items[1], items[2], items[0], items[1], items[2],
                                  items[0], items[1], items[2], items[0], items[1], items[2]};
    sink_xray_ops.accept(s, four, 12, &out, &res);
    assert_int_equal(list_len(&out), 3);
    assert_int_equal(res.sent + res.failed + res.skipped, 0);
    for (const struct sink_request *r = out.head; r != NULL; r = r->next) {
        assert_true(r->units <= XRAY_PUT_MAX_DOCS);
        assert_int_equal(body_docs(r), r->units);
        assert_false(r->last_try);
        assert_string_equal(r->http.url, "http://127.0.0.1:9/TraceSegments");
        assert_string_equal(r->http.aws_sigv4, "aws:amz:eu-west-1:xray");
        assert_string_equal(r->http.access_key_id, "AKIDEXAMPLE");
        assert_string_equal(r->http.method, "POST");
        for (const char *const *h = r->http.headers; *h != NULL; h++)
            token |= strcmp(*h, "X-Amz-Security-Token: token123") == 0;
        total += r->units;
    }
    assert_true(token);
    assert_int_equal(total, 108);
    free_list(&sink_xray_ops, s, &out);
    sink_xray_ops.close(s);
    free_items(items, 3);
}

/* A finished request is kept (with its body's memory) for the next one:
 * one request per invocation then allocates nothing in the sink (under
 * musl each freed body was a mapping made and unmapped per export), and
 * the reused request carries nothing of the one before. */
static void test_xray_reuses_finished_requests(void **state)
{
    struct export_config cfg = xray_cfg();
    struct sink_env env = {.cfg = &cfg, .out_fd = -1, .getenv_fn = fake_env, .getenv_ctx = (void *)creds_vars};
    struct export_item *big[1] = {make_item(0x100, 13, 10, NULL)};
    struct export_item *small[1] = {make_item(0x200, 1, 10, NULL)};
    struct sink_list out = {0};
    struct sink_result res = {0};
    void *s = NULL;
    unsigned long n;

    (void)state;
    assert_int_equal(sink_xray_ops.open(&env, &s), 0);
    sink_xray_ops.accept(s, big, 1, &out, &res);
    assert_int_equal(list_len(&out), 1);
    free_list(&sink_xray_ops, s, &out);
    n = fail_alloc_count();
    for (int i = 0; i < 5; i++) {
        sink_xray_ops.accept(s, small, 1, &out, &res);
        assert_int_equal(list_len(&out), 1);
        assert_int_equal(out.head->units, 1);
        assert_int_equal(body_docs(out.head), 1); /* the big one's documents are gone */
        assert_false(out.head->last_try);
        free_list(&sink_xray_ops, s, &out);
    }
    /* body_docs' own cJSON parse allocates through cJSON's hooks, not ours */
    assert_int_equal(fail_alloc_count(), n);
    assert_int_equal(res.sent + res.failed + res.skipped, 0);
    sink_xray_ops.close(s); /* frees the kept ones */
    free_items(big, 1);
    free_items(small, 1);
}

/* Answers r with body; returns what the sink made of it. */
static struct sink_result answer(void *s, const struct sink_request *r, const char *body, struct sink_list *more)
{
    struct sink_result res = {0};
    struct http_client_response resp = {.status = 200, .body = (char *)body, .body_len = body ? strlen(body) : 0};

    sink_xray_ops.answered(s, r, &resp, more, &res);
    return res;
}

static void test_xray_unprocessed_get_one_more_try(void **state)
{
    struct export_config cfg = xray_cfg();
    struct sink_env env = {.cfg = &cfg, .out_fd = -1, .getenv_fn = fake_env, .getenv_ctx = (void *)creds_vars};
    struct export_item *items[1] = {make_item(0x10, 5, 10, NULL)};
    struct sink_list out = {0}, more = {0}, again = {0};
    struct sink_result res = {0};
    void *s = NULL;

    (void)state;
    assert_int_equal(sink_xray_ops.open(&env, &s), 0);
    sink_xray_ops.accept(s, items, 1, &out, &res);
    assert_int_equal(list_len(&out), 1);
    /* two of five refused (one of them listed twice, plus an id not sent) */
    res = answer(s, out.head,
                 "{\"UnprocessedTraceSegments\":[{\"Id\":\"0000000000000011\"},{\"Id\":\"0000000000000013\"},"
                 "{\"Id\":\"0000000000000011\"},{\"Id\":\"00000000000000ff\"}]}",
                 &more);
    assert_int_equal(res.sent, 3);
    assert_int_equal(res.unprocessed, 2);
    assert_int_equal(res.failed, 0);
    assert_int_equal(list_len(&more), 1);
    assert_true(more.head->last_try);
    assert_int_equal(more.head->units, 2);
    assert_int_equal(body_docs(more.head), 2);
    assert_non_null(strstr(more.head->http.body, "0000000000000011"));
    assert_non_null(strstr(more.head->http.body, "0000000000000013"));
    /* refused again: given up, no third try */
    res = answer(s, more.head, "{\"UnprocessedTraceSegments\":[{\"Id\":\"0000000000000013\"}]}", &again);
    assert_int_equal(res.sent, 1);
    assert_int_equal(res.failed, 1);
    assert_int_equal(res.unprocessed, 1);
    assert_null(again.head);
    free_list(&sink_xray_ops, s, &out);
    free_list(&sink_xray_ops, s, &more);
    sink_xray_ops.close(s);
    free_items(items, 1);
}

static void test_xray_bad_answers_refuse_nothing(void **state)
{
    static const char *const bodies[] = {
        NULL, "", "garbage", "{\"UnprocessedTraceSegments\":[{\"Id\":\"00000000000", /* cut */
        "{\"UnprocessedTraceSegments\":{\"Id\":\"0000000000000010\"}}", "[1,2,3]",
        "{\"UnprocessedTraceSegments\":[{\"Id\":16},{\"NoId\":\"0000000000000010\"}]}",
    };
    struct export_config cfg = xray_cfg();
    struct sink_env env = {.cfg = &cfg, .out_fd = -1, .getenv_fn = fake_env, .getenv_ctx = (void *)creds_vars};
    struct export_item *items[1] = {make_item(0x10, 4, 10, NULL)};
    struct sink_list out = {0};
    struct sink_result res = {0};
    void *s = NULL;

    (void)state;
    assert_int_equal(sink_xray_ops.open(&env, &s), 0);
    sink_xray_ops.accept(s, items, 1, &out, &res);
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        struct sink_list more = {0};
        res = answer(s, out.head, bodies[i], &more);
        assert_int_equal(res.sent, 4);
        assert_int_equal(res.failed + res.unprocessed, 0);
        assert_null(more.head);
    }
    free_list(&sink_xray_ops, s, &out);
    sink_xray_ops.close(s);
    free_items(items, 1);
}

static void test_xray_without_credentials_skips_and_stays_off(void **state)
{
    struct export_config cfg = xray_cfg();
    struct sink_env env = {.cfg = &cfg, .out_fd = -1, .getenv_fn = fake_env, .getenv_ctx = (void *)no_vars};
    struct export_item *items[1] = {make_item(0x10, 3, 10, NULL)};
    struct sink_list out = {0};
    struct sink_result res = {0};
    void *s = NULL;

    (void)state;
    assert_int_equal(sink_xray_ops.open(&env, &s), 0);
    sink_xray_ops.accept(s, items, 1, &out, &res);
    assert_null(out.head);
    assert_int_equal(res.skipped, 3);
    /* credentials appearing later do not matter: the warning came once */
    env.getenv_ctx = (void *)creds_vars;
    sink_xray_ops.accept(s, items, 1, &out, &res);
    assert_null(out.head);
    assert_int_equal(res.skipped, 6);
    sink_xray_ops.close(s);
    free_items(items, 1);
}

static void test_xray_oversize_document_fails_alone(void **state)
{
    struct export_config cfg = xray_cfg();
    struct sink_env env = {.cfg = &cfg, .out_fd = -1, .getenv_fn = fake_env, .getenv_ctx = (void *)creds_vars};
    /* one document larger than a whole PutTraceSegments body, between two small ones */
    struct export_item *items[3] = {make_item(0x10, 1, 10, NULL), make_item(0x20, 1, EXPORT_PUT_MAX_BODY, NULL),
                                    make_item(0x30, 1, 10, NULL)};
    struct sink_list out = {0};
    struct sink_result res = {0};
    void *s = NULL;
    size_t units = 0;

    (void)state;
    assert_int_equal(sink_xray_ops.open(&env, &s), 0);
    sink_xray_ops.accept(s, items, 3, &out, &res);
    assert_int_equal(res.failed, 1);
    for (const struct sink_request *r = out.head; r != NULL; r = r->next) {
        units += r->units;
        assert_int_equal(body_docs(r), r->units);
        assert_null(strstr(r->http.body, "0000000000000020"));
    }
    assert_int_equal(units, 2);
    free_list(&sink_xray_ops, s, &out);
    sink_xray_ops.close(s);
    free_items(items, 3);
}

static void test_xray_out_of_memory(void **state)
{
    struct export_config cfg = xray_cfg();
    struct sink_env env = {.cfg = &cfg, .out_fd = -1, .getenv_fn = fake_env, .getenv_ctx = (void *)creds_vars};
    struct export_item *items[2] = {make_item(0x10, 13, 10, NULL), make_item(0x30, 13, 10, NULL)};

    (void)state;
    /* every allocation of open and accept failing in turn: every document
     * is either in a request or counted, and nothing leaks */
    for (unsigned long nth = 1; nth < 40; nth++) {
        struct sink_list out = {0};
        struct sink_result res = {0};
        void *s = NULL;
        size_t units = 0;
        long live;

        fail_alloc_reset();
        fail_alloc_fail_at(nth);
        if (sink_xray_ops.open(&env, &s) < 0) {
            fail_alloc_fail_at(0);
            assert_int_equal(fail_alloc_live(), 0);
            continue;
        }
        sink_xray_ops.accept(s, items, 2, &out, &res);
        fail_alloc_fail_at(0);
        for (const struct sink_request *r = out.head; r != NULL; r = r->next)
            units += r->units;
        assert_int_equal(units + res.failed, 26);
        free_list(&sink_xray_ops, s, &out);
        sink_xray_ops.close(s);
        live = fail_alloc_live();
        assert_int_equal(live, 0);
    }
    free_items(items, 2);
}

/* --- OTLP ------------------------------------------------------------------ */

static struct export_config otlp_cfg(bool json, const char *headers)
{
    struct export_config cfg = {.sinks = 1u << EXPORT_SINK_OTLP, .otlp_json = json};

    snprintf(cfg.otlp_endpoint, sizeof(cfg.otlp_endpoint), "http://127.0.0.1:9/v1/traces");
    snprintf(cfg.otlp_headers, sizeof(cfg.otlp_headers), "%s", headers);
    return cfg;
}

static void test_otlp_merges_json_bodies(void **state)
{
    struct export_config cfg = otlp_cfg(true, "x-api-key=abc");
    struct sink_env env = {.cfg = &cfg, .out_fd = -1};
    struct export_item *items[4] = {make_item(1, 1, 1, "{\"resourceSpans\":[{\"a\":1}]}"), make_item(2, 1, 1, NULL),
                                    make_item(3, 1, 1, "{\"resourceSpans\":[{\"b\":2}]}"),
                                    make_item(4, 1, 1, "not an OTLP/JSON request")};
    struct sink_list out = {0};
    struct sink_result res = {0};
    void *s = NULL;
    bool key = false, type = false;

    (void)state;
    assert_int_equal(sink_otlp_ops.open(&env, &s), 0);
    /* in-progress (no OTLP form) are not units */
    assert_int_equal(sink_otlp_ops.units(items, 4), 3);
    sink_otlp_ops.accept(s, items, 4, &out, &res);
    assert_int_equal(list_len(&out), 1);
    assert_int_equal(out.head->units, 2);
    assert_int_equal(res.failed, 1); /* the malformed one, alone */
    assert_int_equal(out.head->http.body_len, strlen("{\"resourceSpans\":[{\"a\":1},{\"b\":2}]}"));
    assert_memory_equal(out.head->http.body, "{\"resourceSpans\":[{\"a\":1},{\"b\":2}]}", out.head->http.body_len);
    for (const char *const *h = out.head->http.headers; *h != NULL; h++) {
        key |= strcmp(*h, "x-api-key: abc") == 0;
        type |= strcmp(*h, "Content-Type: application/json") == 0;
    }
    assert_true(key && type);
    /* a 2xx took both documents; an answer's rejected spans are counted besides */
    {
        static const char *const bodies[] = {
            "", "{}", "{\"partialSuccess\":{\"rejectedSpans\":\"7\",\"errorMessage\":\"too old\"}}",
            "{\"partialSuccess\":{\"errorMessage\":\"a warning\"}}", "not an answer"};
        static const uint64_t rejected[] = {0, 0, 7, 0, 0};
        for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
            struct sink_list more = {0};
            struct sink_result got = {0};
            struct http_client_response resp = {.status = 200, .body = (char *)bodies[i],
                                                .body_len = strlen(bodies[i])};
            sink_otlp_ops.answered(s, out.head, &resp, &more, &got);
            assert_int_equal(got.sent, 2);
            assert_int_equal(got.failed, 0);
            assert_int_equal(got.rejected_spans, rejected[i]);
            assert_int_equal(list_len(&more), 0);
        }
    }
    free_list(&sink_otlp_ops, s, &out);
    sink_otlp_ops.close(s);
    free_items(items, 4);
}

static void test_otlp_protobuf_concatenates_and_splits_at_the_cap(void **state)
{
    struct export_config cfg = otlp_cfg(false, "");
    struct sink_env env = {.cfg = &cfg, .out_fd = -1};
    /* three segments of 1.5 MB: two fit a 4 MB body, the third starts another */
    size_t big = 3 * 512 * 1024;
    char *blob = malloc(big + 1);
    struct export_item *items[3];
    struct sink_list out = {0};
    struct sink_result res = {0};
    void *s = NULL;

    (void)state;
    assert_non_null(blob);
    memset(blob, 'p', big);
    blob[big] = '\0';
    for (int i = 0; i < 3; i++)
        items[i] = make_item((unsigned)i, 1, 1, blob);
    assert_int_equal(sink_otlp_ops.open(&env, &s), 0);
    sink_otlp_ops.accept(s, items, 3, &out, &res);
    assert_int_equal(list_len(&out), 2);
    assert_int_equal(out.head->units, 2);
    assert_int_equal(out.head->http.body_len, 2 * big);
    assert_int_equal(out.head->next->units, 1);
    assert_int_equal(res.failed, 0);
    assert_string_equal(out.head->http.headers[0], "Content-Type: application/x-protobuf");
    free_list(&sink_otlp_ops, s, &out);
    sink_otlp_ops.close(s);
    free_items(items, 3);
    free(blob);
}

static void test_otlp_invalid_headers_refuse_to_open(void **state)
{
    struct export_config cfg = otlp_cfg(false, "no-equals-sign");
    struct sink_env env = {.cfg = &cfg, .out_fd = -1};
    void *s = NULL;

    (void)state;
    assert_int_equal(sink_otlp_ops.open(&env, &s), -EINVAL);
    assert_null(s);
}

/* The gzip member at z inflated (zlib here, not our code) into out; its length. */
static size_t gunzip(const void *z, size_t z_len, unsigned char *out, size_t out_max)
{
    z_stream zs;
    size_t n;

    memset(&zs, 0, sizeof(zs));
    assert_int_equal(inflateInit2(&zs, 15 + 16), Z_OK);
    zs.next_in = (Bytef *)(uintptr_t)z;
    zs.avail_in = (uInt)z_len;
    zs.next_out = out;
    zs.avail_out = (uInt)out_max;
    assert_int_equal(inflate(&zs, Z_FINISH), Z_STREAM_END);
    assert_int_equal(zs.avail_in, 0); /* one member, nothing after it */
    n = out_max - zs.avail_out;
    inflateEnd(&zs);
    return n;
}

static bool has_header(const struct sink_request *r, const char *line)
{
    for (const char *const *h = r->http.headers; *h != NULL; h++)
        if (strcmp(*h, line) == 0)
            return true;
    return false;
}

static void test_otlp_gzip_bodies_inflate_to_the_same_request(void **state)
{
    struct export_config cfg = otlp_cfg(false, "x-api-key=abc");
    struct sink_env env = {.cfg = &cfg, .out_fd = -1};
    /* protobuf-like bytes, repetitive as OTLP is, and a NUL inside */
    char a[3000], b[2000];
    struct export_item *items[3];
    struct sink_list out = {0};
    struct sink_result res = {0};
    unsigned char *plain = malloc(16384);
    void *s = NULL;
    size_t n;

    (void)state;
    for (size_t i = 0; i < sizeof(a) - 1; i++)
        a[i] = (char)("\x0a\x8e\x01service.name\x12lambda"[i % 22] | 1);
    a[sizeof(a) - 1] = '\0';
    memset(b, 'q', sizeof(b) - 1);
    b[sizeof(b) - 1] = '\0';
    cfg.otlp_gzip = true;
    cfg.otlp_timeout_ms = 1234;
    items[0] = make_item(1, 1, 1, a);
    items[1] = make_item(2, 1, 1, NULL); /* in progress: no OTLP form */
    items[2] = make_item(3, 1, 1, b);
    assert_non_null(plain);
    assert_int_equal(sink_otlp_ops.open(&env, &s), 0);
    sink_otlp_ops.accept(s, items, 3, &out, &res);
    assert_int_equal(list_len(&out), 1);
    assert_int_equal(res.failed, 0);
    assert_int_equal(out.head->units, 2);
    assert_int_equal(out.head->timeout_ms, 1234);
    /* the gzip magic, smaller than the input, and exactly the input inflated */
    assert_true(out.head->http.body_len > 18);
    assert_memory_equal(out.head->http.body, "\x1f\x8b", 2);
    assert_true(out.head->http.body_len < (sizeof(a) - 1 + sizeof(b) - 1) / 4);
    n = gunzip(out.head->http.body, out.head->http.body_len, plain, 16384);
    assert_int_equal(n, sizeof(a) - 1 + sizeof(b) - 1);
    assert_memory_equal(plain, a, sizeof(a) - 1);
    assert_memory_equal(plain + sizeof(a) - 1, b, sizeof(b) - 1);
    assert_string_equal(out.head->http.headers[0], "Content-Type: application/x-protobuf");
    assert_true(has_header(out.head, "Content-Encoding: gzip"));
    assert_true(has_header(out.head, "x-api-key: abc"));
    free_list(&sink_otlp_ops, s, &out);
    sink_otlp_ops.close(s);

    /* compression off: the same bytes as they are, no Content-Encoding */
    cfg.otlp_gzip = false;
    memset(&res, 0, sizeof(res));
    assert_int_equal(sink_otlp_ops.open(&env, &s), 0);
    sink_otlp_ops.accept(s, items, 3, &out, &res);
    assert_int_equal(list_len(&out), 1);
    assert_int_equal(out.head->http.body_len, sizeof(a) - 1 + sizeof(b) - 1);
    assert_memory_equal(out.head->http.body, a, sizeof(a) - 1);
    assert_false(has_header(out.head, "Content-Encoding: gzip"));
    assert_true(has_header(out.head, "x-api-key: abc"));
    free_list(&sink_otlp_ops, s, &out);
    sink_otlp_ops.close(s);
    free_items(items, 3);
    free(plain);
}

static void test_otlp_json_gzip_inflates_to_the_merged_body(void **state)
{
    struct export_config cfg = otlp_cfg(true, "");
    struct sink_env env = {.cfg = &cfg, .out_fd = -1};
    struct export_item *items[2] = {make_item(1, 1, 1, "{\"resourceSpans\":[{\"a\":1}]}"),
                                    make_item(2, 1, 1, "{\"resourceSpans\":[{\"b\":2}]}")};
    const char *want = "{\"resourceSpans\":[{\"a\":1},{\"b\":2}]}";
    struct sink_list out = {0};
    struct sink_result res = {0};
    unsigned char plain[256];
    void *s = NULL;

    (void)state;
    cfg.otlp_gzip = true;
    assert_int_equal(sink_otlp_ops.open(&env, &s), 0);
    sink_otlp_ops.accept(s, items, 2, &out, &res);
    assert_int_equal(list_len(&out), 1);
    assert_int_equal(gunzip(out.head->http.body, out.head->http.body_len, plain, sizeof(plain)), strlen(want));
    assert_memory_equal(plain, want, strlen(want));
    assert_string_equal(out.head->http.headers[0], "Content-Type: application/json");
    assert_true(has_header(out.head, "Content-Encoding: gzip"));
    free_list(&sink_otlp_ops, s, &out);
    sink_otlp_ops.close(s);
    free_items(items, 2);
}

static void test_otlp_gzip_failure_sends_identity(void **state)
{
    struct export_config cfg = otlp_cfg(false, "k=v");
    struct sink_env env = {.cfg = &cfg, .out_fd = -1};
    char a[600];
    struct export_item *items[2];
    unsigned identity = 0, gzipped = 0;

    (void)state;
    memset(a, 'z', sizeof(a) - 1);
    a[sizeof(a) - 1] = '\0';
    items[0] = make_item(1, 1, 1, a);
    items[1] = make_item(2, 1, 1, a);
    cfg.otlp_gzip = true;
    /* every allocation of accept failing in turn (zlib's among them):
     * each segment is in a request or counted failed; a request is either
     * gzip'd and marked so or the plain bytes without the mark; no leak */
    for (unsigned long nth = 1; nth < 40; nth++) {
        struct sink_list out = {0};
        struct sink_result res = {0};
        unsigned char plain[2048];
        size_t units = 0;
        void *s = NULL;

        fail_alloc_reset();
        assert_int_equal(sink_otlp_ops.open(&env, &s), 0);
        fail_alloc_fail_at(nth);
        sink_otlp_ops.accept(s, items, 2, &out, &res);
        fail_alloc_fail_at(0);
        for (const struct sink_request *r = out.head; r != NULL; r = r->next) {
            units += r->units;
            assert_true(has_header(r, "k: v"));
            if (has_header(r, "Content-Encoding: gzip")) {
                gzipped++;
                assert_int_equal(gunzip(r->http.body, r->http.body_len, plain, sizeof(plain)),
                                 r->units * (sizeof(a) - 1));
                assert_memory_equal(plain, a, sizeof(a) - 1);
            } else {
                identity++;
                assert_int_equal(r->http.body_len, r->units * (sizeof(a) - 1));
                for (size_t u = 0; u < r->units; u++)
                    assert_memory_equal(r->http.body + u * (sizeof(a) - 1), a, sizeof(a) - 1);
            }
        }
        assert_int_equal(units + res.failed, 2);
        free_list(&sink_otlp_ops, s, &out);
        sink_otlp_ops.close(s);
        assert_int_equal(fail_alloc_live(), 0);
    }
    /* zlib's allocations failed in some rounds: those went out as is */
    assert_true(identity > 0);
    assert_true(gzipped > 0);
    free_items(items, 2);
}

/* --- X-Ray OTLP ------------------------------------------------------------- */

static void pb_varint(struct buf *b, uint64_t v)
{
    do {
        uint8_t c = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v != 0)
            c |= 0x80;
        assert_int_equal(buf_append(b, &c, 1), 0);
    } while (v != 0);
}

static void pb_bytes(struct buf *b, uint32_t num, const void *p, size_t n)
{
    pb_varint(b, (uint64_t)num << 3 | 2);
    pb_varint(b, n);
    assert_int_equal(buf_append(b, p, n), 0);
}

static void pb_fixed64(struct buf *b, uint32_t num, uint64_t v)
{
    uint8_t t[8];

    pb_varint(b, (uint64_t)num << 3 | 1);
    for (int i = 0; i < 8; i++)
        t[i] = (uint8_t)(v >> (8 * i));
    assert_int_equal(buf_append(b, t, 8), 0);
}

struct span_spec {
    size_t count;
    size_t pad;         /* name bytes */
    int64_t start_ns;   /* end: start + 1 ms */
};

/* An ExportTraceServiceRequest: one ResourceSpans (a resource) with one
 * ScopeSpans (a scope) per spec, each with spec.count spans. */
static struct export_item *otlp_item(const struct span_spec *specs, size_t nspecs)
{
    struct buf req, rs, ss, span;
    struct export_item *it = make_item(1, 1, 1, NULL);
    char *name;
    size_t maxpad = 1;

    for (size_t k = 0; k < nspecs; k++)
        maxpad = specs[k].pad > maxpad ? specs[k].pad : maxpad;
    name = malloc(maxpad);
    assert_non_null(name);
    memset(name, 'n', maxpad);
    buf_init(&req, 8UL << 20);
    buf_init(&rs, 8UL << 20);
    buf_init(&ss, 8UL << 20);
    buf_init(&span, 1UL << 20);
    pb_bytes(&rs, 1, "\x0a\x03k=v", 5); /* resource: opaque to the filter */
    for (size_t k = 0; k < nspecs; k++) {
        buf_reset(&ss);
        pb_bytes(&ss, 1, "\x0a\x02sc", 4); /* scope */
        for (size_t i = 0; i < specs[k].count; i++) {
            buf_reset(&span);
            pb_bytes(&span, 1, "0123456789abcdef", 16);
            pb_bytes(&span, 2, "01234567", 8);
            pb_bytes(&span, 5, name, specs[k].pad);
            pb_fixed64(&span, 7, (uint64_t)specs[k].start_ns);
            pb_fixed64(&span, 8, (uint64_t)(specs[k].start_ns + 1000000));
            pb_bytes(&ss, 2, buf_data(&span), buf_len(&span));
        }
        pb_bytes(&rs, 2, buf_data(&ss), buf_len(&ss));
    }
    pb_bytes(&req, 1, buf_data(&rs), buf_len(&rs));
    it->otlp = malloc(buf_len(&req));
    assert_non_null(it->otlp);
    memcpy(it->otlp, buf_data(&req), buf_len(&req));
    it->otlp_len = buf_len(&req);
    buf_free(&req);
    buf_free(&rs);
    buf_free(&ss);
    buf_free(&span);
    free(name);
    return it;
}

static struct export_config xray_otlp_cfg(bool gzip)
{
    struct export_config cfg = {.sinks = 1u << EXPORT_SINK_XRAY_OTLP, .request_timeout_ms = 1000,
                                .otlp_gzip = gzip, .otlp_timeout_ms = 777};

    snprintf(cfg.xray_endpoint, sizeof(cfg.xray_endpoint), "http://127.0.0.1:9");
    snprintf(cfg.xray_otlp_endpoint, sizeof(cfg.xray_otlp_endpoint), "https://xray.eu-west-1.amazonaws.com/v1/traces");
    snprintf(cfg.region, sizeof(cfg.region), "eu-west-1");
    return cfg;
}

/* Spans the filter counts in a body (plain protobuf). */
static size_t spans_in(const void *body, size_t len)
{
    struct xray_otlp_counts c;

    assert_int_equal(xray_otlp_filter(body, len, 0, NULL, NULL, &c), 0);
    return c.spans;
}

static void test_xray_otlp_signed_gzip_protobuf(void **state)
{
    struct export_config cfg = xray_otlp_cfg(true);
    struct sink_env env = {.cfg = &cfg, .out_fd = -1, .getenv_fn = fake_env, .getenv_ctx = (void *)creds_vars};
    int64_t now = clock_epoch_us() * 1000;
    struct span_spec a = {3, 10, now - 1000000000}, b = {2, 20, now};
    struct export_item *items[3] = {otlp_item(&a, 1), make_item(5, 1, 1, NULL), otlp_item(&b, 1)};
    struct sink_list out = {0};
    struct sink_result res = {0};
    unsigned char plain[4096];
    void *s = NULL;
    size_t n;

    (void)state;
    assert_int_equal(sink_xray_otlp_ops.open(&env, &s), 0);
    assert_int_equal(sink_xray_otlp_ops.units(items, 3), 5); /* spans, not segments */
    sink_xray_otlp_ops.accept(s, items, 3, &out, &res);
    assert_int_equal(list_len(&out), 1);
    assert_int_equal(res.failed + res.skipped, 0);
    assert_int_equal(out.head->units, 5);
    assert_int_equal(out.head->timeout_ms, 777);
    assert_string_equal(out.head->http.url, "https://xray.eu-west-1.amazonaws.com/v1/traces");
    assert_string_equal(out.head->http.aws_sigv4, "aws:amz:eu-west-1:xray");
    assert_string_equal(out.head->http.access_key_id, "AKIDEXAMPLE");
    assert_string_equal(out.head->http.secret_access_key, "secret");
    assert_string_equal(out.head->http.headers[0], "Content-Type: application/x-protobuf");
    assert_true(has_header(out.head, "Content-Encoding: gzip"));
    assert_true(has_header(out.head, "X-Amz-Security-Token: token123"));
    n = gunzip(out.head->http.body, out.head->http.body_len, plain, sizeof(plain));
    /* nothing dropped: the two requests concatenated, byte for byte */
    assert_int_equal(n, items[0]->otlp_len + items[2]->otlp_len);
    assert_memory_equal(plain, items[0]->otlp, items[0]->otlp_len);
    assert_memory_equal(plain + items[0]->otlp_len, items[2]->otlp, items[2]->otlp_len);
    /* its units are spans: those an answer rejects failed, never more than were sent */
    {
        static const unsigned char none[] = {0x0a, 0x00};                      /* partial_success {} */
        static const unsigned char three[] = {0x0a, 0x02, 0x08, 0x03};         /* rejected_spans: 3 */
        static const unsigned char many[] = {0x0a, 0x03, 0x08, 0xe8, 0x07};    /* rejected_spans: 1000 */
        static const unsigned char bad[] = {0x0a, 0x05, 0x08};                 /* cut */
        const struct {
            const unsigned char *body;
            size_t len;
            uint64_t sent, failed, rejected;
        } cases[] = {
            {NULL, 0, 5, 0, 0}, {none, sizeof(none), 5, 0, 0}, {three, sizeof(three), 2, 3, 3},
            {many, sizeof(many), 0, 5, 1000}, {bad, sizeof(bad), 5, 0, 0},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            struct sink_list more = {0};
            struct sink_result got = {0};
            struct http_client_response resp = {.status = 200, .body = (char *)cases[i].body,
                                                .body_len = cases[i].len};
            sink_xray_otlp_ops.answered(s, out.head, &resp, &more, &got);
            assert_int_equal(got.sent, cases[i].sent);
            assert_int_equal(got.failed, cases[i].failed);
            assert_int_equal(got.rejected_spans, cases[i].rejected);
            assert_int_equal(list_len(&more), 0);
        }
    }
    free_list(&sink_xray_otlp_ops, s, &out);
    sink_xray_otlp_ops.close(s);

    /* without credentials: every span skipped, no request */
    env.getenv_ctx = (void *)no_vars;
    memset(&res, 0, sizeof(res));
    assert_int_equal(sink_xray_otlp_ops.open(&env, &s), 0);
    sink_xray_otlp_ops.accept(s, items, 3, &out, &res);
    assert_int_equal(list_len(&out), 0);
    assert_int_equal(res.skipped, 5);
    sink_xray_otlp_ops.close(s);
    /* JSON bodies are not for this sink */
    cfg.otlp_json = true;
    assert_int_equal(sink_xray_otlp_ops.open(&env, &s), -EINVAL);
    free_items(items, 3);
}

static void test_xray_otlp_limits(void **state)
{
    struct export_config cfg = xray_otlp_cfg(false);
    struct sink_env env = {.cfg = &cfg, .out_fd = -1, .getenv_fn = fake_env, .getenv_ctx = (void *)creds_vars};
    int64_t now = clock_epoch_us() * 1000;
    int64_t hour = 3600LL * 1000000000, day = 24 * hour;
    struct sink_list out = {0};
    struct sink_result res = {0};
    void *s = NULL;

    (void)state;
    assert_int_equal(sink_xray_otlp_ops.open(&env, &s), 0);

    /* 10,000 spans per request: 4,000 + 4,000 fit, a third 4,000 starts another;
     * 10,000 exactly fit one */
    {
        struct span_spec sp = {4000, 4, now};
        struct span_spec ten = {10000, 4, now};
        struct export_item *items[4] = {otlp_item(&sp, 1), otlp_item(&sp, 1), otlp_item(&sp, 1),
                                        otlp_item(&ten, 1)};
        sink_xray_otlp_ops.accept(s, items, 4, &out, &res);
        assert_int_equal(res.failed, 0);
        assert_int_equal(list_len(&out), 3);
        assert_int_equal(out.head->units, 8000);
        assert_int_equal(spans_in(out.head->http.body, out.head->http.body_len), 8000);
        assert_int_equal(out.head->next->units, 4000);
        assert_int_equal(out.head->next->next->units, 10000);
        assert_int_equal(spans_in(out.head->next->next->http.body, out.head->next->next->http.body_len), 10000);
        free_list(&sink_xray_otlp_ops, s, &out);
        free_items(items, 4);
    }
    /* one segment of 10,001 spans can never go: failed, counted */
    {
        struct span_spec over = {10001, 4, now};
        struct export_item *items[1] = {otlp_item(&over, 1)};
        memset(&res, 0, sizeof(res));
        sink_xray_otlp_ops.accept(s, items, 1, &out, &res);
        assert_int_equal(list_len(&out), 0);
        assert_int_equal(res.failed, 10001);
        free_items(items, 1);
    }
    /* 5 MB uncompressed: segments of ~1.9 MB (10 spans of 190 KB): two per request */
    {
        struct span_spec big = {10, 190000, now};
        struct export_item *items[3] = {otlp_item(&big, 1), otlp_item(&big, 1), otlp_item(&big, 1)};
        memset(&res, 0, sizeof(res));
        sink_xray_otlp_ops.accept(s, items, 3, &out, &res);
        assert_int_equal(res.failed, 0);
        assert_int_equal(list_len(&out), 2);
        assert_int_equal(out.head->units, 20);
        assert_true(out.head->http.body_len <= XRAY_OTLP_MAX_BODY);
        assert_true(out.head->http.body_len > 3800000);
        assert_int_equal(out.head->next->units, 10);
        free_list(&sink_xray_otlp_ops, s, &out);
        free_items(items, 3);
    }
    /* 200 KB per span and the time window: the bad spans dropped and
     * counted, their neighbours kept; a scope left empty goes too */
    {
        struct span_spec mix[] = {
            {2, 10, now},                  /* kept */
            {1, 210000, now},              /* over 200 KB: dropped */
            {1, 199000, now},              /* under: kept */
            {1, 10, now + 3 * hour},       /* too far ahead */
            {1, 10, now + 1 * hour},       /* kept */
            {1, 10, now - 15 * day},       /* too far back */
            {1, 10, now - 13 * day},       /* kept */
        };
        struct export_item *items[1] = {otlp_item(mix, sizeof(mix) / sizeof(mix[0]))};
        struct xray_otlp_counts c;
        struct buf scratch[2];
        memset(&res, 0, sizeof(res));
        assert_int_equal(sink_xray_otlp_ops.units(items, 1), 8);
        sink_xray_otlp_ops.accept(s, items, 1, &out, &res);
        assert_int_equal(res.failed, 3);
        assert_int_equal(list_len(&out), 1);
        assert_int_equal(out.head->units, 5);
        assert_int_equal(spans_in(out.head->http.body, out.head->http.body_len), 5);
        /* what is left is still OTLP: the filter reads it again, nothing to drop */
        buf_init(&scratch[0], 8UL << 20);
        buf_init(&scratch[1], 8UL << 20);
        {
            struct buf again;
            buf_init(&again, 8UL << 20);
            assert_int_equal(xray_otlp_filter(out.head->http.body, out.head->http.body_len, now, &again, scratch, &c),
                             0);
            assert_int_equal(c.kept, 5);
            assert_int_equal(c.dropped_size + c.dropped_time, 0);
            assert_int_equal(buf_len(&again), out.head->http.body_len);
            buf_free(&again);
        }
        assert_int_equal(xray_otlp_filter(items[0]->otlp, items[0]->otlp_len, now, NULL, NULL, &c), 0);
        assert_int_equal(c.spans, 8);
        buf_free(&scratch[0]);
        buf_free(&scratch[1]);
        free_list(&sink_xray_otlp_ops, s, &out);
        free_items(items, 1);
    }
    /* malformed bytes: counted as one failed unit, no request */
    {
        struct export_item *items[1] = {make_item(1, 1, 1, "\x0a\x7f\x01")};
        memset(&res, 0, sizeof(res));
        assert_int_equal(sink_xray_otlp_ops.units(items, 1), 1);
        sink_xray_otlp_ops.accept(s, items, 1, &out, &res);
        assert_int_equal(res.failed, 1);
        assert_int_equal(list_len(&out), 0);
        free_items(items, 1);
    }
    sink_xray_otlp_ops.close(s);
}

static void test_xray_otlp_host(void **state)
{
    char region[CONFIG_REGION_MAX];

    (void)state;
    assert_true(export_xray_otlp_host("https://xray.us-east-1.amazonaws.com/v1/traces", region, sizeof(region)));
    assert_string_equal(region, "us-east-1");
    assert_true(export_xray_otlp_host("HTTPS://XRAY.eu-west-2.amazonaws.com:443/v1/traces", region, sizeof(region)));
    assert_string_equal(region, "eu-west-2");
    assert_false(export_xray_otlp_host("http://xray.us-east-1.amazonaws.com/v1/traces", region, sizeof(region)));
    assert_false(export_xray_otlp_host("https://xray..amazonaws.com/v1/traces", region, sizeof(region)));
    assert_false(export_xray_otlp_host("https://xray.us-east-1.amazonaws.com.evil.example/v1/traces", region,
                                       sizeof(region)));
    assert_false(export_xray_otlp_host("https://otel.xray.us-east-1.amazonaws.com/v1/traces", region, sizeof(region)));
    assert_false(export_xray_otlp_host("https://xray.US_EAST.amazonaws.com/", region, sizeof(region)));
    assert_false(export_xray_otlp_host("https://collector:4318/v1/traces", region, sizeof(region)));
    assert_false(export_xray_otlp_host(NULL, region, sizeof(region)));
}

/* --- daemon ---------------------------------------------------------------- */

struct fake_udp {
    size_t sent;
    size_t fail_every; /* 0: never */
    char last[256];
};

static int fake_send(void *ctx, const void *data, size_t len)
{
    struct fake_udp *f = ctx;

    f->sent++;
    snprintf(f->last, sizeof(f->last), "%.*s", (int)(len < 200 ? len : 200), (const char *)data);
    if (f->fail_every != 0 && f->sent % f->fail_every == 0)
        return -EAGAIN; /* a full socket buffer */
    return 0;
}

static void test_daemon_one_datagram_per_document(void **state)
{
    struct export_config cfg = {.sinks = 1u << EXPORT_SINK_DAEMON};
    struct fake_udp f = {.fail_every = 3};
    struct sink_env env = {.cfg = &cfg, .out_fd = -1, .send_datagram = fake_send, .send_datagram_ctx = &f};
    struct export_item *items[2] = {make_item(0x10, 4, 10, NULL), make_item(0x20, 5, 10, NULL)};
    struct sink_list out = {0};
    struct sink_result res = {0};
    void *s = NULL;

    (void)state;
    assert_int_equal(sink_daemon_ops.open(&env, &s), 0);
    sink_daemon_ops.accept(s, items, 2, &out, &res);
    assert_null(out.head);
    assert_int_equal(f.sent, 9);
    assert_int_equal(res.failed, 3);
    assert_int_equal(res.sent, 6);
    /* the header line, then the document (no trailing newline of ours) */
    assert_true(strncmp(f.last, XRAY_DAEMON_HEADER "{", XRAY_DAEMON_HEADER_LEN + 1) == 0);
    assert_non_null(strstr(f.last, "\"id\":\"0000000000000024\""));
    sink_daemon_ops.close(s);
    free_items(items, 2);
}

static void test_daemon_unusable_address_skips(void **state)
{
    struct export_config cfg = {.sinks = 1u << EXPORT_SINK_DAEMON};
    struct sink_env env = {.cfg = &cfg, .out_fd = -1};
    struct export_item *items[1] = {make_item(0x10, 2, 10, NULL)};
    struct sink_list out = {0};
    struct sink_result res = {0};
    void *s = NULL;

    (void)state;
    snprintf(cfg.daemon_address, sizeof(cfg.daemon_address), "not an address");
    assert_int_equal(sink_daemon_ops.open(&env, &s), 0);
    sink_daemon_ops.accept(s, items, 1, &out, &res);
    sink_daemon_ops.accept(s, items, 1, &out, &res);
    assert_int_equal(res.skipped, 4);
    assert_int_equal(res.sent + res.failed, 0);
    sink_daemon_ops.close(s);
    free_items(items, 1);
}

/* --- stdout ---------------------------------------------------------------- */

static void test_stdout_writes_lines(void **state)
{
    struct export_config cfg = {.sinks = 1u << EXPORT_SINK_STDOUT};
    _Atomic int64_t abort_at = 0;
    int p[2];
    struct sink_env env = {.cfg = &cfg, .abort_at_ns = &abort_at};
    struct export_item *items[2] = {make_item(0x10, 2, 10, NULL), make_item(0x20, 1, 10, NULL)};
    struct sink_list out = {0};
    struct sink_result res = {0};
    void *s = NULL;
    char got[4096];
    ssize_t n;

    (void)state;
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    env.out_fd = p[1];
    assert_int_equal(sink_stdout_ops.open(&env, &s), 0);
    sink_stdout_ops.accept(s, items, 2, &out, &res);
    assert_int_equal(res.sent, 3);
    n = read(p[0], got, sizeof(got) - 1);
    assert_true(n > 0);
    got[n] = '\0';
    /* three lines, each one document */
    assert_int_equal((size_t)n, strlen(items[0]->xray) + strlen(items[1]->xray));
    assert_int_equal(strchr(got, '\n') - got, (long)items[0]->doc[0].len);
    sink_stdout_ops.close(s);
    close(p[0]);
    close(p[1]);
    free_items(items, 2);
}

static void test_stdout_stalled_reader_ends_at_the_abort_time(void **state)
{
    struct export_config cfg = {.sinks = 1u << EXPORT_SINK_STDOUT};
    _Atomic int64_t abort_at = 0;
    int p[2];
    struct sink_env env = {.cfg = &cfg, .abort_at_ns = &abort_at};
    /* documents larger than the pipe holds: the reader never reads */
    struct export_item *items[1] = {make_item(0x10, 3, 100000, NULL)};
    struct sink_list out = {0};
    struct sink_result res = {0};
    void *s = NULL;
    int64_t t0, took_ms;

    (void)state;
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    env.out_fd = p[1];
    atomic_store(&abort_at, clock_mono_ns() + 100 * 1000000LL);
    assert_int_equal(sink_stdout_ops.open(&env, &s), 0);
    t0 = clock_mono_ms();
    sink_stdout_ops.accept(s, items, 1, &out, &res);
    took_ms = clock_mono_ms() - t0;
    /* nothing written in full: all three failed, by the abort time (plus
     * slack for a loaded machine), not hanging */
    assert_int_equal(res.sent, 0);
    assert_int_equal(res.failed, 3);
    assert_true(took_ms >= 90);
    assert_true(took_ms < 2000);
    sink_stdout_ops.close(s);
    close(p[0]);
    close(p[1]);
    free_items(items, 1);
}

static void test_stdout_closed_reader_fails_at_once(void **state)
{
    struct export_config cfg = {.sinks = 1u << EXPORT_SINK_STDOUT};
    int p[2];
    struct sink_env env = {.cfg = &cfg};
    struct export_item *items[1] = {make_item(0x10, 2, 10, NULL)};
    struct sink_list out = {0};
    struct sink_result res = {0};
    void *s = NULL;

    (void)state;
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    close(p[0]);
    env.out_fd = p[1];
    assert_int_equal(sink_stdout_ops.open(&env, &s), 0);
    sink_stdout_ops.accept(s, items, 1, &out, &res);
    assert_int_equal(res.sent, 0);
    assert_int_equal(res.failed, 2);
    sink_stdout_ops.close(s);
    close(p[1]);
    free_items(items, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xray_splits_a_batch_into_signed_requests),
        cmocka_unit_test(test_xray_reuses_finished_requests),
        cmocka_unit_test(test_xray_unprocessed_get_one_more_try),
        cmocka_unit_test(test_xray_bad_answers_refuse_nothing),
        cmocka_unit_test(test_xray_without_credentials_skips_and_stays_off),
        cmocka_unit_test(test_xray_oversize_document_fails_alone),
        cmocka_unit_test(test_xray_out_of_memory),
        cmocka_unit_test(test_otlp_merges_json_bodies),
        cmocka_unit_test(test_otlp_protobuf_concatenates_and_splits_at_the_cap),
        cmocka_unit_test(test_otlp_invalid_headers_refuse_to_open),
        cmocka_unit_test(test_otlp_gzip_bodies_inflate_to_the_same_request),
        cmocka_unit_test(test_otlp_json_gzip_inflates_to_the_merged_body),
        cmocka_unit_test(test_otlp_gzip_failure_sends_identity),
        cmocka_unit_test(test_xray_otlp_signed_gzip_protobuf),
        cmocka_unit_test(test_xray_otlp_limits),
        cmocka_unit_test(test_xray_otlp_host),
        cmocka_unit_test(test_daemon_one_datagram_per_document),
        cmocka_unit_test(test_daemon_unusable_address_skips),
        cmocka_unit_test(test_stdout_writes_lines),
        cmocka_unit_test(test_stdout_stalled_reader_ends_at_the_abort_time),
        cmocka_unit_test(test_stdout_closed_reader_fails_at_once),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests_name("sinks", tests, NULL, NULL);
}
