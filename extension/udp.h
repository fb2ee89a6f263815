/*
 * udp.h - datagrams to the X-Ray daemon.  The one module besides the
 * listener that touches sockets: a connected, non-blocking, close-on-exec
 * UDP socket owned by the exporter thread.  Sending never blocks: a full
 * socket buffer is reported as -EAGAIN and the caller counts the loss.
 */
#ifndef LAMBDA_TRACER_UDP_H
#define LAMBDA_TRACER_UDP_H

#include <stddef.h>

struct udp_sender;

/* address is "host:port" (IPv4 literal, name, or [IPv6]:port).  0, -EINVAL
 * (malformed), -EHOSTUNREACH (does not resolve), -ENOMEM, or a socket errno. */
int udp_sender_open(const char *address, struct udp_sender **ret) __attribute__((warn_unused_result));
void udp_sender_close(struct udp_sender *s); /* NULL-safe */

/* One datagram.  0, -EAGAIN, -EMSGSIZE, or the send errno (for a connected
 * UDP socket, an ICMP "port unreachable" from an earlier datagram shows up
 * here as -ECONNREFUSED). */
int udp_sender_send(struct udp_sender *s, const void *data, size_t len)
    __attribute__((warn_unused_result));

#endif
