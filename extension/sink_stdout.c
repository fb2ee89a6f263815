/*
 * sink_stdout.c - the stdout sink: one JSON document per line, written
 * during accept.  stdout is a pipe in Lambda: when its reader stalls a
 * write would block, so each write first polls for room, at most until the
 * stop's abort time once there is one (looked at at least every
 * STDOUT_POLL_MS).  Writes of at most PIPE_BUF bytes into a pipe with room
 * do not block.
 */
#include "export_sink.h"

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

#define STDOUT_POLL_MS 50
#define STDOUT_CHUNK_BYTES 4096

struct sink_stdout {
    struct sink_env env;
    int fd;
};

static int stdout_open(const struct sink_env *env, void **ret)
{
    struct sink_stdout *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return -ENOMEM;
    s->env = *env;
    s->fd = env->out_fd >= 0 ? env->out_fd : STDOUT_FILENO;
    *ret = s;
    return 0;
}

static void stdout_close(void *sink)
{
    free(sink);
}

static size_t stdout_units(struct export_item *const *items, size_t n)
{
    size_t docs = 0;

    for (size_t i = 0; i < n; i++)
        docs += items[i]->ndocs;
    return docs;
}

/* true when all len bytes were written. */
static bool write_all(struct sink_stdout *s, const char *p, size_t len)
{
    while (len > 0) {
        struct pollfd pfd = {.fd = s->fd, .events = POLLOUT};
        int64_t abort_at = s->env.abort_at_ns != NULL ? atomic_load(s->env.abort_at_ns) : 0;
        int wait_ms = STDOUT_POLL_MS;
        ssize_t w;

        if (abort_at > 0) {
            int64_t left_ms = (abort_at - clock_mono_ns()) / 1000000;
            if (left_ms <= 0)
                return false;
            if (left_ms < wait_ms)
                wait_ms = (int)left_ms + 1;
        }
        int r = poll(&pfd, 1, wait_ms);
        if (r < 0 && errno != EINTR)
            return false;
        if (r <= 0)
            continue;
        if (pfd.revents & (POLLERR | POLLNVAL))
            return false;
        w = write(s->fd, p, len < STDOUT_CHUNK_BYTES ? len : STDOUT_CHUNK_BYTES);
        if (w < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (w <= 0)
            return false;
        p += w;
        len -= (size_t)w;
    }
    return true;
}

static void stdout_accept(void *sink, struct export_item *const *items, size_t n_items, struct sink_list *out,
                          struct sink_result *res)
{
    struct sink_stdout *s = sink;
    bool shared = s->env.out_fd < 0;

    (void)out;
    for (size_t i = 0; i < n_items; i++) {
        for (size_t d = 0; d < items[i]->ndocs; d++) {
            /* Each document is followed by '\n' in the item.  The lock keeps
             * metric documents (pipeline thread) out of its middle. */
            bool ok;
            if (shared)
                log_stdout_lock();
            ok = write_all(s, items[i]->xray + items[i]->doc[d].off, (size_t)items[i]->doc[d].len + 1);
            if (shared)
                log_stdout_unlock();
            if (ok)
                res->sent++;
            else
                res->failed++;
        }
    }
}

const struct sink_ops sink_stdout_ops = {
    .name = "stdout",
    .open = stdout_open,
    .close = stdout_close,
    .units = stdout_units,
    .accept = stdout_accept,
    .answered = NULL,
    .free_request = NULL,
};
