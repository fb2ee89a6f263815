/*
 * sink_daemon.c - the X-Ray daemon sink: one UDP datagram (header line and
 * document) per document, sent during accept: a connected non-blocking
 * socket never waits, and a full socket buffer is a counted loss.
 */
#include "export_sink.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "udp.h"

struct sink_daemon {
    struct sink_env env;
    struct udp_sender *udp;   /* opened on first use */
    bool unusable;
    struct buf dgram;
};

static int daemon_open(const struct sink_env *env, void **ret)
{
    struct sink_daemon *d = calloc(1, sizeof(*d));

    if (d == NULL)
        return -ENOMEM;
    d->env = *env;
    buf_init(&d->dgram, XRAY_DATAGRAM_MAX_BYTES);
    *ret = d;
    return 0;
}

static void daemon_close(void *sink)
{
    struct sink_daemon *d = sink;

    if (d == NULL)
        return;
    udp_sender_close(d->udp);
    buf_free(&d->dgram);
    free(d);
}

static size_t daemon_units(struct export_item *const *items, size_t n)
{
    size_t docs = 0;

    for (size_t i = 0; i < n; i++)
        docs += items[i]->ndocs;
    return docs;
}

static int send_one(struct sink_daemon *d, const void *data, size_t len)
{
    if (d->env.send_datagram != NULL)
        return d->env.send_datagram(d->env.send_datagram_ctx, data, len);
    return udp_sender_send(d->udp, data, len);
}

static void daemon_accept(void *sink, struct export_item *const *items, size_t n_items, struct sink_list *out,
                          struct sink_result *res)
{
    struct sink_daemon *d = sink;
    size_t total = daemon_units(items, n_items);

    (void)out;
    if (total == 0)
        return;
    if (d->env.send_datagram == NULL && d->udp == NULL && !d->unusable) {
        int r = udp_sender_open(d->env.cfg->daemon_address, &d->udp);
        if (r < 0) {
            log_warn("setting LAMBDA_TRACER_DAEMON_ADDRESS (%s) is unusable (%s); not sending to the "
                     "daemon (documents counted)",
                     d->env.cfg->daemon_address, strerror(-r));
            d->unusable = true;
        }
    }
    if (d->env.send_datagram == NULL && d->udp == NULL) {
        res->skipped += total;
        return;
    }
    for (size_t i = 0; i < n_items; i++) {
        for (size_t k = 0; k < items[i]->ndocs; k++) {
            buf_reset(&d->dgram);
            if (xray_daemon_datagram(&d->dgram, items[i]->xray + items[i]->doc[k].off, items[i]->doc[k].len) < 0 ||
                send_one(d, buf_data(&d->dgram), buf_len(&d->dgram)) < 0)
                res->failed++;
            else
                res->sent++;
        }
    }
}

const struct sink_ops sink_daemon_ops = {
    .name = "daemon",
    .open = daemon_open,
    .close = daemon_close,
    .units = daemon_units,
    .accept = daemon_accept,
    .answered = NULL,
    .free_request = NULL,
};
