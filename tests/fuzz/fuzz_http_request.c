/*
 * fuzz_http_request.c - the HTTP request parser on arbitrary bytes.
 *
 * The input is what one connection delivers: requests are parsed, checked and
 * reset in turn, as the listener does with pipelined requests.  The stream is
 * parsed three times, whole, one byte at a time and in 7-byte pieces, and the
 * three outcomes must be identical: framing may never depend on how recv()
 * cut the stream.  Every complete request is also checked for the invariants
 * the listener relies on (caps, NUL-terminated strings, Content-Length equal
 * to the body it framed).  A violation aborts.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_request.h"

/* Small caps so that the fuzzer reaches 431 and 413 with short inputs. */
#define FUZZ_HEADER_CAP 1024
#define FUZZ_BODY_CAP 4096
#define FUZZ_MAX_REQUESTS 64

struct outcome {
    /* One entry per complete request, then the final state. */
    uint64_t digest[FUZZ_MAX_REQUESTS + 1];
    int result[FUZZ_MAX_REQUESTS + 1];
    size_t count;
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
    if (!ok)
        abort();
}

static uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;

    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t digest_string(uint64_t h, const char *s)
{
    return s ? fnv1a(h, s, strlen(s) + 1) : fnv1a(h, "\xff", 1);
}

static bool is_error_code(int rc)
{
    return rc == -EPROTO || rc == -EPROTONOSUPPORT || rc == -E2BIG || rc == -EMSGSIZE ||
           rc == -ENOTSUP || rc == -ENOMEM;
}

/* The listener's view of a complete request: everything must be coherent. */
static uint64_t check_complete(struct http_request *req, size_t request_bytes)
{
    const char *method = http_request_method(req);
    const char *target = http_request_target(req);
    const char *content_length = http_request_header(req, "Content-Length");
    size_t body_len = SIZE_MAX;
    const char *body = http_request_body(req, &body_len);
    uint64_t h = 0xcbf29ce484222325ULL;
    bool keep_alive = http_request_keep_alive(req);

    check(http_request_headers_done(req));
    check(!http_request_in_progress(req));
    check(!http_request_expects_continue(req));
    check(method != NULL && method[0] != '\0');
    check(target != NULL && target[0] != '\0');
    check(body != NULL && body_len <= FUZZ_BODY_CAP && body[body_len] == '\0');
    check(body_len < request_bytes);
    for (const char *p = target; *p; p++)
        check(*p > ' ' && *p < 0x7f);
    /* A body framed by Content-Length is exactly that long. */
    if (content_length && !http_request_header(req, "Transfer-Encoding")) {
        uint64_t v = 0;

        for (const char *p = content_length; *p; p++) {
            check(*p >= '0' && *p <= '9');
            v = v * 10 + (uint64_t)(*p - '0');
        }
        check(v == body_len);
    }

    h = digest_string(h, method);
    h = digest_string(h, target);
    h = digest_string(h, http_request_header(req, "Host"));
    h = digest_string(h, http_request_header(req, "Connection"));
    h = fnv1a(h, body, body_len);
    h = fnv1a(h, &keep_alive, sizeof(keep_alive));
    return h;
}

/* Parse the stream in pieces of step bytes (0: as much as possible). */
static void run(const char *data, size_t size, size_t step, struct outcome *out)
{
    struct http_request *req = http_request_new(FUZZ_HEADER_CAP, FUZZ_BODY_CAP);
    size_t off = 0, request_start = 0;
    int rc = HTTP_REQUEST_INCOMPLETE;

    out->count = 0;
    check(req != NULL);
    while (off < size && out->count < FUZZ_MAX_REQUESTS) {
        size_t piece = (step == 0 || step > size - off) ? size - off : step;
        size_t used = SIZE_MAX;

        rc = http_request_feed(req, data + off, piece, &used);
        check(used <= piece);
        off += used;
        if (rc == HTTP_REQUEST_INCOMPLETE) {
            check(used == piece);
            check(http_request_in_progress(req));
            check(!http_request_expects_continue(req) || http_request_headers_done(req));
            continue;
        }
        if (rc < 0)
            break;
        check(rc == HTTP_REQUEST_COMPLETE);
        /* Feeding a complete request again takes nothing. */
        check(http_request_feed(req, data + off, size - off, &used) == HTTP_REQUEST_COMPLETE);
        check(used == 0);
        out->result[out->count] = rc;
        out->digest[out->count] = check_complete(req, off - request_start);
        /* Hand every other body over, as the listener may. */
        if (out->count % 2) {
            char *body = NULL;
            size_t len = 0;

            check(http_request_take_body(req, &body, &len) == 0);
            check(body != NULL && body[len] == '\0');
            free(body);
        }
        out->count++;
        http_request_reset(req);
        request_start = off;
        rc = HTTP_REQUEST_INCOMPLETE;
    }

    /* The final state: an error, or a partial request and what it held. */
    if (rc < 0) {
        int status = http_request_error_status(rc);

        check(is_error_code(rc));
        check(status >= 400 && status <= 505);
        check(!http_request_keep_alive(req) && !http_request_headers_done(req));
        check(http_request_feed(req, data, size, &off) == rc && off == 0);
        out->digest[out->count] = 0;
    } else {
        size_t body_len = 0;

        (void)http_request_body(req, &body_len);
        out->digest[out->count] = ((uint64_t)http_request_headers_done(req) << 63) | body_len;
    }
    out->result[out->count] = rc;
    out->count++;
    http_request_destroy(req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t steps[] = {1, 7};
    struct outcome whole, split;

    run((const char *)data, size, 0, &whole);
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        run((const char *)data, size, steps[i], &split);
        check(split.count == whole.count);
        for (size_t r = 0; r < whole.count; r++)
            check(split.result[r] == whole.result[r] && split.digest[r] == whole.digest[r]);
    }
    return 0;
}
