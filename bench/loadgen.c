/*
 * loadgen.c - telemetry load generator for the ingest benchmark.
 *
 * Posts Telemetry API batches to an extension's listener the way Lambda
 * does: HTTP/1.1 POSTs of a JSON array, one at a time on a kept-alive
 * connection, each answered before the next is sent.  Every body is built
 * before the clock starts (unique request ids per invocation, so the
 * tracer sees distinct invocations), so the generator costs one write and
 * one small read per batch and is not the bottleneck.
 *
 * Each simulated invocation is platform.start, LINES function log lines of
 * LINE_BYTES bytes of text (the text log format: a string record),
 * platform.runtimeDone with its spans and platform.report with its
 * metrics; a batch holds RECORDS records (whole invocations).
 *
 *   loadgen PORT PATH BATCHES [RECORDS [LINES [LINE_BYTES]]]
 *
 * Prints one JSON object: batches, records, bytes, non-200 answers and the
 * CLOCK_MONOTONIC times (ns) of the first byte sent and the last answer.
 * Exit status 0 when every batch was answered 200.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "telemetry_body.h"

#define LOADGEN_ANSWER_MAX_BYTES 4096

struct batch {
    char *data; /* request line, headers and body */
    size_t len;
};

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "loadgen: %s: %s\n", what, errno ? strerror(errno) : "failed");
    exit(2);
}

static int connect_to(unsigned short port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0)
        die("socket");
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        die("connect");
    return fd;
}

/* Reads one answer (status line and headers; the listener's answers carry
 * small bodies, read by Content-Length).  Returns the status or -1. */
static int read_answer(int fd)
{
    char buf[LOADGEN_ANSWER_MAX_BYTES + 1];
    size_t have = 0;
    char *end = NULL;
    int status = -1;

    while (end == NULL) {
        ssize_t r;
        if (have >= LOADGEN_ANSWER_MAX_BYTES)
            return -1;
        r = read(fd, buf + have, LOADGEN_ANSWER_MAX_BYTES - have);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        have += (size_t)r;
        buf[have] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    {
        const char *cl = strcasestr(buf, "\r\nContent-Length:");
        size_t body = cl != NULL && cl < end ? strtoul(cl + 17, NULL, 10) : 0;
        size_t got = have - (size_t)(end + 4 - buf);
        while (got < body) {
            ssize_t r = read(fd, buf, sizeof(buf) - 1);
            if (r <= 0)
                return -1;
            got += (size_t)r;
        }
    }
    return status;
}

static unsigned long arg_ul(const char *s, const char *what)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || end == s)
        die(what);
    return v;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: loadgen PORT PATH BATCHES [RECORDS [LINES [LINE_BYTES]]]\n");
        return 2;
    }
    unsigned long port = arg_ul(argv[1], "PORT");
    const char *path = argv[2];
    unsigned long batches = arg_ul(argv[3], "BATCHES");
    unsigned long records = argc > 4 ? arg_ul(argv[4], "RECORDS") : 1000;
    unsigned long lines = argc > 5 ? arg_ul(argv[5], "LINES") : 7;
    unsigned long line_bytes = argc > 6 ? arg_ul(argv[6], "LINE_BYTES") : 1024;
    unsigned long per_inv = lines + 3;
    unsigned long sent_records = (records / per_inv) * per_inv;
    struct batch *all = calloc(batches, sizeof(*all));
    uint64_t bytes = 0;
    unsigned long bad = 0;
    int64_t t_first, t_last;
    int fd;

    if (port == 0 || port > 65535 || sent_records == 0 || all == NULL) {
        errno = EINVAL;
        die("arguments");
    }
    for (unsigned long b = 0; b < batches; b++) {
        struct text body = {0};
        struct text req = {0};
        build_body(&body, b, records, lines, line_bytes);
        text_printf(&req,
                    "POST %s HTTP/1.1\r\nHost: sandbox.localdomain:%lu\r\nContent-Type: application/json\r\n"
                    "Content-Length: %zu\r\n\r\n",
                    path, port, body.len);
        text_add(&req, body.p, body.len);
        free(body.p);
        all[b].data = req.p;
        all[b].len = req.len;
        bytes += req.len;
    }
    fd = connect_to((unsigned short)port);
    t_first = mono_ns();
    for (unsigned long b = 0; b < batches; b++) {
        const char *p = all[b].data;
        size_t left = all[b].len;
        while (left > 0) {
            ssize_t w = write(fd, p, left);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                die("write");
            p += w;
            left -= (size_t)w;
        }
        if (read_answer(fd) != 200)
            bad++;
    }
    t_last = mono_ns();
    close(fd);
    printf("{\"batches\":%lu,\"records\":%lu,\"records_per_batch\":%lu,\"bytes\":%" PRIu64
           ",\"non_200\":%lu,\"t_first_ns\":%" PRId64 ",\"t_last_ns\":%" PRId64 "}\n",
           batches, sent_records * batches, sent_records, bytes, bad, t_first, t_last);
    for (unsigned long b = 0; b < batches; b++)
        free(all[b].data);
    free(all);
    return bad == 0 ? 0 : 1;
}
