/*
 * procsnap.c - see procsnap.h.  (API stub: every entry point compiles and
 * fails open; the implementation follows.)
 */
#include "procsnap.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int procsnap_find_runtime(const char *proc_root, pid_t self, struct procsnap_target *ret_targets,
                          size_t max, size_t *ret_n, uint32_t *ret_unreadable)
{
    (void)proc_root;
    (void)self;
    (void)ret_targets;
    (void)max;
    (void)ret_unreadable;
    if (ret_n == NULL)
        return -EINVAL;
    *ret_n = 0;
    return 0;
}

int procsnap_take(const struct procsnap_opts *o, struct procsnap *ret)
{
    if (o == NULL || ret == NULL)
        return -EINVAL;
    memset(ret, 0, sizeof(*ret));
    return -ESRCH;
}

void procsnap_diagnose(const struct procsnap *start, const struct procsnap *now,
                       int64_t invocation_start_mono_us, char *sentence, size_t size)
{
    (void)start;
    (void)now;
    (void)invocation_start_mono_us;
    if (size > 0)
        snprintf(sentence, size, "%s", "no snapshot");
}

void procsnap_share_init(struct procsnap_share *s)
{
    memset(s, 0, sizeof(*s));
}

void procsnap_share_add(struct procsnap_share *s, const struct procsnap *prev,
                        const struct procsnap *cur, int64_t invocation_start_mono_us)
{
    (void)s;
    (void)prev;
    (void)cur;
    (void)invocation_start_mono_us;
}

void procsnap_share_summary(const struct procsnap_share *s, char *sentence, size_t size)
{
    (void)s;
    if (size > 0)
        sentence[0] = '\0';
}

int procsnap_to_json(const struct procsnap *s, const struct procsnap *start, struct buf *out)
{
    (void)s;
    (void)start;
    return buf_append_str(out, "{}");
}

const char *procsnap_port_name(uint16_t port)
{
    (void)port;
    return NULL;
}

const char *procsnap_tcp_state_name(uint8_t tcp_state)
{
    (void)tcp_state;
    return "unknown";
}

const char *procsnap_syscall_name(int32_t nr)
{
    (void)nr;
    return NULL;
}

void procsnap_format_addr(const struct procsnap_socket *sk, bool peer, char *out, size_t size)
{
    (void)sk;
    (void)peer;
    if (size > 0)
        out[0] = '\0';
}

int procsnap_parse_stat(const char *s, size_t len, struct procsnap_stat *ret)
{
    (void)s;
    (void)len;
    (void)ret;
    return -EPROTO;
}

int procsnap_parse_syscall(const char *s, size_t len, int32_t *ret_nr, uint64_t *ret_arg0)
{
    (void)s;
    (void)len;
    (void)ret_nr;
    (void)ret_arg0;
    return -EPROTO;
}

int procsnap_parse_net_line(const char *s, size_t len, int family, struct procsnap_socket *ret)
{
    (void)s;
    (void)len;
    (void)family;
    (void)ret;
    return -EPROTO;
}

int procsnap_parse_socket_link(const char *s, size_t len, uint64_t *ret_inode)
{
    (void)s;
    (void)len;
    (void)ret_inode;
    return -EPROTO;
}
