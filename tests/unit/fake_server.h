/*
 * fake_server.h - a scripted HTTP server on loopback for unit tests of the
 * local API client: a listening socket served by one thread that, for each
 * step, reads one request (head and Content-Length body), records it, sends
 * the step's bytes and keeps, closes or holds the connection.  Only the
 * test's main thread runs cmocka asserts; the server counts what it saw and
 * the test checks it after fake_join.
 */
#ifndef LAMBDA_TRACER_FAKE_SERVER_H
#define LAMBDA_TRACER_FAKE_SERVER_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum after { KEEP, CLOSE, HOLD };

struct step {
    const char *reply; /* NULL: none */
    size_t reply_len;  /* 0: strlen(reply) */
    enum after after;  /* HOLD: no reply, wait for the client to close */
};

struct fake {
    int lfd;
    uint16_t port;
    const struct step *steps;
    int nsteps;
    pthread_t thread;
    /* written by the server thread, read after the join */
    int accepts;
    int requests;
    int send_failures;
    char req[8][1024];
};

/* Reads one request (head, then Content-Length bytes) into dst.  -1 when
 * the connection closed first. */
static int read_request(int fd, char *dst, size_t size)
{
    size_t len = 0;

    for (;;) {
        char *end;
        ssize_t n = recv(fd, dst + len, size - 1 - len, 0);
        if (n <= 0)
            return -1;
        len += (size_t)n;
        dst[len] = '\0';
        end = strstr(dst, "\r\n\r\n");
        if (end != NULL) {
            const char *cl = strstr(dst, "Content-Length: ");
            size_t want = (size_t)(end + 4 - dst) + (cl != NULL ? strtoul(cl + 16, NULL, 10) : 0);
            if (len >= want)
                return 0;
        }
    }
}

static void *serve(void *arg)
{
    struct fake *f = arg;
    int fd = -1;

    for (int i = 0; i < f->nsteps; i++) {
        const struct step *s = &f->steps[i];

        if (fd < 0) {
            fd = accept(f->lfd, NULL, NULL);
            if (fd < 0)
                break;
            f->accepts++;
        }
        if (read_request(fd, f->req[f->requests % 8], sizeof(f->req[0])) < 0) {
            /* the client closed a kept connection: the step is served on the next */
            close(fd);
            fd = -1;
            i--;
            continue;
        }
        f->requests++;
        if (s->reply != NULL) {
            size_t len = s->reply_len ? s->reply_len : strlen(s->reply);
            if (send(fd, s->reply, len, MSG_NOSIGNAL) != (ssize_t)len)
                f->send_failures++; /* checked by the test after the join */
        }
        if (s->after == HOLD) {
            char b;
            while (recv(fd, &b, 1, 0) > 0)
                ;
        }
        if (s->after != KEEP) {
            close(fd);
            fd = -1;
        }
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

static void fake_start(struct fake *f, const struct step *steps, int nsteps)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);

    memset(f, 0, sizeof(*f));
    f->steps = steps;
    f->nsteps = nsteps;
    f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(f->lfd >= 0);
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(f->lfd, 8), 0);
    assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&a, &alen), 0);
    f->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&f->thread, NULL, serve, f), 0);
}

static void fake_join(struct fake *f)
{
    /* The thread ends after its last step; shutdown wakes a pending accept. */
    shutdown(f->lfd, SHUT_RDWR);
    pthread_join(f->thread, NULL);
    close(f->lfd);
}

#endif
