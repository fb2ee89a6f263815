/*
 * udp.c - see udp.h.
 */
#include "udp.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"

struct udp_sender {
    int fd;
};

int udp_sender_open(const char *address, struct udp_sender **ret)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM};
    struct addrinfo *res = NULL;
    char host[CONFIG_HOST_MAX];
    char port[8];
    uint16_t port_number;
    struct udp_sender *s;

    if (config_parse_host_port(address, host, sizeof(host), &port_number) < 0)
        return -EINVAL;
    snprintf(port, sizeof(port), "%u", (unsigned)port_number);
    if (getaddrinfo(host, port, &hints, &res) != 0 || res == NULL)
        return -EHOSTUNREACH;
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        freeaddrinfo(res);
        return -ENOMEM;
    }
    s->fd = socket(res->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0 || connect(s->fd, res->ai_addr, res->ai_addrlen) < 0) {
        int r = -errno;
        if (s->fd >= 0)
            close(s->fd);
        free(s);
        freeaddrinfo(res);
        return r;
    }
    freeaddrinfo(res);
    *ret = s;
    return 0;
}

void udp_sender_close(struct udp_sender *s)
{
    if (s == NULL)
        return;
    close(s->fd);
    free(s);
}

int udp_sender_send(struct udp_sender *s, const void *data, size_t len)
{
    for (;;) {
        ssize_t n = send(s->fd, data, len, MSG_NOSIGNAL);
        if (n >= 0)
            return (size_t)n == len ? 0 : -EMSGSIZE;
        if (errno != EINTR)
            return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
}
