/*
 * export_cpu.c - the exporter's CPU per PutTraceSegments request: segments
 * are submitted first (encoding is the pipeline's cost, measured apart),
 * then the exporter core is driven on this thread (export_poll_fds /
 * export_timeout_ms / export_perform) against a local HTTP/1.1 endpoint
 * that answers at once, and this thread's CPU time
 * (CLOCK_THREAD_CPUTIME_ID) is divided by the requests made.  The endpoint
 * runs on other threads, so its work is not counted.
 *
 *   make -f Makefile -f bench/bench.mk build/dev/bench/export_cpu
 *   build/dev/bench/export_cpu 20000
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "export.h"
#include "http_client.h"
#include "trace.h"

static _Atomic size_t body_bytes;
static _Atomic int connections;

static void *conn_main(void *arg)
{
    int fd = (int)(intptr_t)arg;
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 31\r\n\r\n{\"UnprocessedTraceSegments\":[]}";
    size_t cap = 4 << 20, have = 0;
    char *buf = malloc(cap);

    for (;;) {
        char *end;
        size_t head, body = 0;
        ssize_t r;
        while ((end = memmem(buf, have, "\r\n\r\n", 4)) == NULL) {
            r = recv(fd, buf + have, cap - have, 0);
            if (r <= 0)
                goto out;
            have += (size_t)r;
        }
        head = (size_t)(end - buf) + 4;
        const char *cl = strcasestr(buf, "Content-Length:");
        if (cl != NULL && cl < end)
            body = strtoul(cl + 15, NULL, 10);
        while (have < head + body) {
            r = recv(fd, buf + have, cap - have, 0);
            if (r <= 0)
                goto out;
            have += (size_t)r;
        }
        body_bytes += body;
        memmove(buf, buf + head + body, have - head - body);
        have -= head + body;
        if (send(fd, ok, sizeof(ok) - 1, MSG_NOSIGNAL) < 0)
            goto out;
    }
out:
    close(fd);
    free(buf);
    return NULL;
}

static void *server_main(void *arg)
{
    int lfd = (int)(intptr_t)arg;

    for (;;) {
        pthread_t t;
        int c = accept(lfd, NULL, NULL);
        if (c < 0)
            return NULL;
        connections++;
        pthread_create(&t, NULL, conn_main, (void *)(intptr_t)c);
        pthread_detach(t);
    }
}

static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 10000;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    pthread_t srv;
    struct export_config cfg = {.sinks = 1u << EXPORT_SINK_XRAY, .queue_max_bytes = 256 << 20,
                                .request_timeout_ms = 10000, .connect_timeout_ms = 5000};
    struct exporter *e = NULL;
    struct trace_segment seg;
    struct trace_resource res;
    struct export_stats st;
    double t0, t1, t2;

    if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(lfd, 64) != 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &alen) != 0)
        return 1;
    pthread_create(&srv, NULL, server_main, (void *)(intptr_t)lfd);
    if (http_client_global_init(NULL, 0) < 0)
        return 1;
    snprintf(cfg.xray_endpoint, sizeof(cfg.xray_endpoint), "http://127.0.0.1:%u", ntohs(a.sin_port));
    snprintf(cfg.region, sizeof(cfg.region), "us-east-1");
    setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 1);
    setenv("AWS_SESSION_TOKEN", "FQoGZXIvYXdzEXAMPLETOKEN", 1);
    if (export_new(&cfg, &e) < 0)
        return 1;
    memset(&seg, 0, sizeof(seg));
    memset(&res, 0, sizeof(res));
    snprintf(seg.trace_id, sizeof(seg.trace_id), "1-5759e988-bd862e3fe1be46a994272793");
    snprintf(seg.name, sizeof(seg.name), "demo-fn");
    snprintf(seg.origin, sizeof(seg.origin), "AWS::Lambda::Function");
    seg.sampled = true;
    seg.start_us = 1700000000000000;
    seg.end_us = 1700000000100000;
    snprintf(res.service_name, sizeof(res.service_name), "demo-fn");
    t0 = thread_cpu_s();
    for (int i = 0; i < n; i++) {
        snprintf(seg.id, sizeof(seg.id), "%016x", 0x1000 + i);
        snprintf(seg.request_id, sizeof(seg.request_id), "req-%08d", i);
        if (export_submit(e, &seg, &res, true, -1) < 0)
            return 1;
    }
    t1 = thread_cpu_s();
    long loops = 0, zero = 0;
    export_perform(e, NULL, 0);
    while (export_busy(e)) {
        loops++;
        zero += export_timeout_ms(e) == 0;
        struct pollfd fds[64];
        size_t k = export_poll_fds(e, fds, 64);
        (void)poll(fds, k, export_timeout_ms(e));
        export_perform(e, fds, k);
    }
    t2 = thread_cpu_s();
    (void)export_stop; /* driven: no thread to stop */
    export_destroy(e);
    (void)st;
    printf("perform calls %ld (timeout 0: %ld), %d connections, %zu body bytes per request\n", loops, zero,
           (int)connections,
           body_bytes / (size_t)((n + 49) / 50));
    printf("segments %d, encode (submit) %.1f us/segment; exporter %.3f s CPU for %d requests: %.1f us/request\n", n,
           (t1 - t0) * 1e6 / n, t2 - t1, (n + 49) / 50, (t2 - t1) * 1e6 / ((n + 49) / 50));
    return 0;
}
