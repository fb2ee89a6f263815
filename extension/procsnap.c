/*
 * procsnap.c - see procsnap.h.
 *
 * Cost model: every /proc file is one openat + one read + one close into a
 * stack buffer, relative to a directory fd opened once per process, so a
 * runtime with 10 threads and 10 sockets costs about (3 + 10 x 6 + fds + 12)
 * system calls.  Directories are listed with getdents64 into a stack
 * buffer (opendir would allocate).  No stdio except snprintf into stack
 * buffers; no allocation; no logging.
 */
#include "procsnap.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "ids.h"

/*
 * The kernel's netlink, sock_diag, tcp_info and dirent64 layouts, written
 * out here (they are stable user ABI): the release build uses musl, whose
 * headers carry no <linux/...>.  Checked against the kernel headers where
 * those exist (the development build).
 */
#define NL_NETLINK_SOCK_DIAG 4
#define NL_SOCK_DIAG_BY_FAMILY 20
#define NL_F_REQUEST 0x1
#define NL_F_DUMP 0x300
#define NL_MSG_ERROR 0x2
#define NL_MSG_DONE 0x3
#define NL_INET_DIAG_INFO 2
#define NL_ALIGN(n) (((n) + 3u) & ~3u)

struct nl_hdr {
    uint32_t len;
    uint16_t type, flags;
    uint32_t seq, pid;
};

struct nl_addr {
    sa_family_t family;
    unsigned short pad;
    uint32_t pid, groups;
};

/* Members we never read are kept for the layout. */
struct diag_sockid {
    uint16_t sport, dport; /* network byte order */
    uint32_t src[4], dst[4];
    /* cppcheck-suppress unusedStructMember */
    uint32_t ifindex;
    /* cppcheck-suppress unusedStructMember */
    uint32_t cookie[2];
};

struct diag_req_v2 {
    uint8_t family, protocol, ext;
    /* cppcheck-suppress unusedStructMember */
    uint8_t pad;
    uint32_t states;
    /* cppcheck-suppress unusedStructMember */
    struct diag_sockid id;
};

struct diag_msg {
    uint8_t family, state;
    /* cppcheck-suppress unusedStructMember */
    uint8_t timer;
    /* cppcheck-suppress unusedStructMember */
    uint8_t retrans;
    struct diag_sockid id;
    /* cppcheck-suppress unusedStructMember */
    uint32_t expires;
    uint32_t rqueue, wqueue;
    /* cppcheck-suppress unusedStructMember */
    uint32_t uid;
    uint32_t inode;
};

/* Offsets into struct tcp_info (include/uapi/linux/tcp.h). */
#define TI_RETRANSMITS 2   /* u8 */
#define TI_UNACKED 24
#define TI_LAST_DATA_SENT 44
#define TI_LAST_DATA_RECV 52
#define TI_LAST_ACK_RECV 56
#define TI_RTT 68
#define TI_TOTAL_RETRANS 100
#define TI_BYTES_ACKED 120 /* u64 */
#define TI_BYTES_RECEIVED 128 /* u64 */

/* struct linux_dirent64: d_ino u64, d_off s64, d_reclen u16, d_type u8, name */
#define DIRENT_RECLEN_OFF 16
#define DIRENT_NAME_OFF 19

#if defined(__has_include)
#if __has_include(<linux/inet_diag.h>) && __has_include(<linux/tcp.h>)
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/tcp.h>
_Static_assert(sizeof(struct diag_req_v2) == sizeof(struct inet_diag_req_v2), "inet_diag_req_v2");
_Static_assert(sizeof(struct diag_msg) == sizeof(struct inet_diag_msg), "inet_diag_msg");
_Static_assert(sizeof(struct nl_hdr) == sizeof(struct nlmsghdr), "nlmsghdr");
_Static_assert(sizeof(struct nl_addr) == sizeof(struct sockaddr_nl), "sockaddr_nl");
_Static_assert(NL_NETLINK_SOCK_DIAG == NETLINK_SOCK_DIAG && NL_SOCK_DIAG_BY_FAMILY ==
               SOCK_DIAG_BY_FAMILY && NL_F_DUMP == NLM_F_DUMP && NL_MSG_DONE == NLMSG_DONE &&
               NL_MSG_ERROR == NLMSG_ERROR && NL_INET_DIAG_INFO == INET_DIAG_INFO, "netlink");
_Static_assert(offsetof(struct tcp_info, tcpi_retransmits) == TI_RETRANSMITS &&
               offsetof(struct tcp_info, tcpi_unacked) == TI_UNACKED &&
               offsetof(struct tcp_info, tcpi_last_data_sent) == TI_LAST_DATA_SENT &&
               offsetof(struct tcp_info, tcpi_last_data_recv) == TI_LAST_DATA_RECV &&
               offsetof(struct tcp_info, tcpi_last_ack_recv) == TI_LAST_ACK_RECV &&
               offsetof(struct tcp_info, tcpi_rtt) == TI_RTT &&
               offsetof(struct tcp_info, tcpi_total_retrans) == TI_TOTAL_RETRANS &&
               offsetof(struct tcp_info, tcpi_bytes_acked) == TI_BYTES_ACKED &&
               offsetof(struct tcp_info, tcpi_bytes_received) == TI_BYTES_RECEIVED,
               "tcp_info");
_Static_assert(TCP_INFO == 11, "TCP_INFO");
#endif
#endif

#define READ_BUF_BYTES 1024   /* stat lines are < 400 bytes; more is cut */
#define DENTS_BUF_BYTES 4096
#define NET_CHUNK_BYTES 8192
#define DIAG_BUF_BYTES 8192
/* tcp_info ages count jiffies (1 to 10 ms each, HZ 1000 to 100): a send
 * just after the invocation started may read up to one tick older. */
#define TCP_CLOCK_SLACK_US 10000
/* A start snapshot this long after the invocation's start is not its
 * start: the CPU figures are then "in the last" window. */
#define LATE_START_US 50000

/* ------------------------------------------------------------------ */
/* small pure helpers                                                 */

static int64_t now_us(clockid_t id)
{
    struct timespec ts;

    if (clock_gettime(id, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static uint64_t ticks_to_us(uint64_t ticks)
{
    long hz = sysconf(_SC_CLK_TCK);

    if (hz <= 0)
        hz = 100;
    if (ticks > UINT64_MAX / 1000000)
        return UINT64_MAX;
    return ticks * 1000000 / (uint64_t)hz;
}

/* Parses an unsigned decimal at *p (< end); advances *p.  -EPROTO when
 * there is no digit or it overflows. */
static int parse_u64(const char **p, const char *end, uint64_t *ret)
{
    uint64_t v = 0;
    const char *s = *p;

    if (s >= end || *s < '0' || *s > '9')
        return -EPROTO;
    while (s < end && *s >= '0' && *s <= '9') {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -EPROTO;
        v = v * 10 + d;
        s++;
    }
    *p = s;
    *ret = v;
    return 0;
}

/* Parses exactly `digits` hex digits (0: one to 16 of them). */
static int parse_hex(const char **p, const char *end, unsigned digits, uint64_t *ret)
{
    uint64_t v = 0;
    const char *s = *p;
    unsigned n = 0;

    while (s < end && ids_hex_value(*s) >= 0 && (digits == 0 || n < digits)) {
        if (n >= 16)
            return -EPROTO;
        v = v << 4 | (uint64_t)ids_hex_value(*s);
        s++;
        n++;
    }
    if (n == 0 || (digits != 0 && n != digits))
        return -EPROTO;
    *p = s;
    *ret = v;
    return 0;
}

static void skip_spaces(const char **p, const char *end)
{
    while (*p < end && (**p == ' ' || **p == '\t'))
        (*p)++;
}

/* Skips one whitespace-separated token (a field we do not use, which may be
 * negative). */
static int skip_token(const char **p, const char *end)
{
    const char *s;

    skip_spaces(p, end);
    s = *p;
    while (*p < end && **p != ' ' && **p != '\n' && **p != '\t')
        (*p)++;
    return *p > s ? 0 : -EPROTO;
}

static int field_u64(const char **p, const char *end, uint64_t *ret)
{
    skip_spaces(p, end);
    return parse_u64(p, end, ret);
}

/* Copies a comm, keeping bytes as they are (escaped at output). */
static void copy_comm(char *dst, const char *src, size_t n)
{
    if (n > PROCSNAP_COMM_BYTES - 1)
        n = PROCSNAP_COMM_BYTES - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* ------------------------------------------------------------------ */
/* parsers                                                            */

/* Fields 1 to 4 of a stat line, shared by both stat parsers so that they
 * agree: the pid, the comm (from the FIRST '(' to the LAST ')'), the state
 * and the ppid; rest points just after the ppid. */
struct stat_head {
    pid_t pid, ppid;
    char state;
    const char *comm;
    size_t comm_len;
    const char *rest;
};

static int parse_stat_head(const char *s, size_t len, struct stat_head *ret)
{
    const char *end = s + len;
    const char *p = s;
    const char *open, *close;
    uint64_t v;

    if (field_u64(&p, end, &v) < 0 || v == 0 || v > INT32_MAX)
        return -EPROTO;
    ret->pid = (pid_t)v;
    open = memchr(p, '(', (size_t)(end - p));
    if (open == NULL)
        return -EPROTO;
    /* The comm is outside input: it may hold ')' and spaces, so the comm
     * ends at the LAST ')' of the text (the kernel writes the fields after
     * it in a fixed format without parentheses). */
    close = memrchr(open + 1, ')', (size_t)(end - open - 1));
    if (close == NULL)
        return -EPROTO;
    ret->comm = open + 1;
    ret->comm_len = (size_t)(close - open - 1);
    p = close + 1;
    skip_spaces(&p, end);
    if (p >= end || *p < 'A' || *p > 'z')
        return -EPROTO;
    ret->state = *p++;
    if (field_u64(&p, end, &v) < 0 || v > INT32_MAX) /* 4 ppid */
        return -EPROTO;
    ret->ppid = (pid_t)v;
    ret->rest = p;
    return 0;
}

int procsnap_parse_stat_ppid(const char *s, size_t len, pid_t *ret_ppid)
{
    struct stat_head h;

    if (s == NULL || ret_ppid == NULL || parse_stat_head(s, len, &h) < 0)
        return -EPROTO;
    /* The kernel always writes more fields after the ppid: without them
     * the text may have been cut inside the number. */
    if (h.rest >= s + len)
        return -EPROTO;
    *ret_ppid = h.ppid;
    return 0;
}

int procsnap_parse_stat(const char *s, size_t len, struct procsnap_stat *ret)
{
    struct procsnap_stat st;
    struct stat_head h;
    const char *end;
    const char *p;
    uint64_t v;

    if (s == NULL || ret == NULL || parse_stat_head(s, len, &h) < 0)
        return -EPROTO;
    end = s + len;
    memset(&st, 0, sizeof(st));
    st.pid = h.pid;
    copy_comm(st.comm, h.comm, h.comm_len);
    st.state = h.state;
    st.ppid = h.ppid;
    p = h.rest;
    for (int f = 5; f <= 9; f++)
        if (skip_token(&p, end) < 0)
            return -EPROTO;
    if (field_u64(&p, end, &st.minflt) < 0 || field_u64(&p, end, &st.cminflt) < 0 || /* 10 11 */
        field_u64(&p, end, &st.majflt) < 0 || field_u64(&p, end, &st.cmajflt) < 0)   /* 12 13 */
        return -EPROTO;
    if (field_u64(&p, end, &st.utime_ticks) < 0 || field_u64(&p, end, &st.stime_ticks) < 0)
        return -EPROTO;
    /* 16 cutime, 17 cstime: the waited-for children's CPU (never negative
     * in practice; a negative value is left as 0) */
    {
        const char *q = p;
        if (field_u64(&p, end, &st.cutime_ticks) < 0) {
            p = q;
            st.cutime_ticks = 0;
            if (skip_token(&p, end) < 0)
                return -EPROTO;
        }
        q = p;
        if (field_u64(&p, end, &st.cstime_ticks) < 0) {
            p = q;
            st.cstime_ticks = 0;
            if (skip_token(&p, end) < 0)
                return -EPROTO;
        }
    }
    for (int f = 18; f <= 19; f++)
        if (skip_token(&p, end) < 0)
            return -EPROTO;
    if (field_u64(&p, end, &v) < 0 || v > UINT32_MAX) /* 20 num_threads */
        return -EPROTO;
    st.num_threads = (uint32_t)v;
    if (skip_token(&p, end) < 0 || field_u64(&p, end, &st.start_ticks) < 0 ||
        skip_token(&p, end) < 0 || field_u64(&p, end, &st.rss_pages) < 0)
        return -EPROTO;
    /* The kernel always writes more fields after rss: without a separator
     * here the text was cut inside the number. */
    if (p >= end || (*p != ' ' && *p != '\n'))
        return -EPROTO;
    *ret = st;
    return 0;
}

int procsnap_parse_syscall(const char *s, size_t len, int32_t *ret_nr, uint64_t *ret_arg0)
{
    const char *end;
    const char *p = s;
    uint64_t nr, arg0;

    if (s == NULL || ret_nr == NULL || ret_arg0 == NULL)
        return -EPROTO;
    end = s + len;
    if (len >= 7 && memcmp(s, "running", 7) == 0 && (len == 7 || s[7] == '\n')) {
        *ret_nr = PROCSNAP_SYSCALL_RUNNING;
        *ret_arg0 = 0;
        return 0;
    }
    if (len >= 2 && s[0] == '-' && s[1] == '1' && (len == 2 || s[2] == ' ' || s[2] == '\n')) {
        *ret_nr = PROCSNAP_SYSCALL_NONE;
        *ret_arg0 = 0;
        return 0;
    }
    if (parse_u64(&p, end, &nr) < 0 || nr > INT32_MAX)
        return -EPROTO;
    if (p >= end || *p != ' ')
        return -EPROTO;
    p++;
    if (end - p < 3 || p[0] != '0' || p[1] != 'x')
        return -EPROTO;
    p += 2;
    if (parse_hex(&p, end, 0, &arg0) < 0)
        return -EPROTO;
    if (p < end && *p != ' ' && *p != '\n')
        return -EPROTO;
    *ret_nr = (int32_t)nr;
    *ret_arg0 = arg0;
    return 0;
}

/* "0100007F:1F90" (v4) or 32 hex digits ":" port (v6). */
static int parse_net_addr(const char **p, const char *end, int family, uint8_t addr[16],
                          uint16_t *port)
{
    unsigned words = family == AF_INET6 ? 4 : 1;
    uint64_t v;

    memset(addr, 0, 16);
    for (unsigned i = 0; i < words; i++) {
        uint32_t w;
        if (parse_hex(p, end, 8, &v) < 0)
            return -EPROTO;
        /* The kernel prints each __be32 word with %08X as a host integer:
         * its bytes in memory are the network-order address bytes. */
        w = (uint32_t)v;
        memcpy(addr + (size_t)4 * i, &w, 4);
    }
    if (*p >= end || **p != ':')
        return -EPROTO;
    (*p)++;
    if (parse_hex(p, end, 4, &v) < 0)
        return -EPROTO;
    *port = (uint16_t)v;
    return 0;
}

int procsnap_parse_net_line(const char *s, size_t len, int family, struct procsnap_socket *ret)
{
    struct procsnap_socket sk;
    const char *end;
    const char *p = s;
    uint64_t v, tx, rx, inode;

    if (s == NULL || ret == NULL || (family != AF_INET && family != AF_INET6))
        return -EPROTO;
    end = s + len;
    memset(&sk, 0, sizeof(sk));
    skip_spaces(&p, end);
    if (parse_u64(&p, end, &v) < 0 || p >= end || *p != ':') /* sl */
        return -EPROTO;
    p++;
    skip_spaces(&p, end);
    if (parse_net_addr(&p, end, family, sk.local_addr, &sk.local_port) < 0)
        return -EPROTO;
    skip_spaces(&p, end);
    if (parse_net_addr(&p, end, family, sk.peer_addr, &sk.peer_port) < 0)
        return -EPROTO;
    skip_spaces(&p, end);
    if (parse_hex(&p, end, 2, &v) < 0)
        return -EPROTO;
    sk.tcp_state = (uint8_t)v;
    skip_spaces(&p, end);
    if (parse_hex(&p, end, 8, &tx) < 0 || p >= end || *p != ':')
        return -EPROTO;
    p++;
    if (parse_hex(&p, end, 8, &rx) < 0)
        return -EPROTO;
    /* tr:tm->when, retrnsmt, uid, timeout, then the inode */
    for (int f = 0; f < 4; f++)
        if (skip_token(&p, end) < 0)
            return -EPROTO;
    if (field_u64(&p, end, &inode) < 0)
        return -EPROTO;
    if (p < end && *p != ' ' && *p != '\n')
        return -EPROTO;
    sk.family = (uint8_t)family;
    sk.tx_queue = (uint32_t)tx;
    sk.rx_queue = (uint32_t)rx;
    sk.inode = inode;
    ret->family = sk.family;
    memcpy(ret->local_addr, sk.local_addr, 16);
    memcpy(ret->peer_addr, sk.peer_addr, 16);
    ret->local_port = sk.local_port;
    ret->peer_port = sk.peer_port;
    ret->tcp_state = sk.tcp_state;
    ret->tx_queue = sk.tx_queue;
    ret->rx_queue = sk.rx_queue;
    ret->inode = sk.inode;
    return 0;
}

int procsnap_parse_io(const char *s, size_t len, struct procsnap_io *ret)
{
    /* "rchar: N\nwchar: N\nsyscr: N\nsyscw: N\nread_bytes: N\n..." in the
     * kernel's order; lines are looked up by name, unknown ones skipped. */
    struct procsnap_io io;
    unsigned have = 0;
    const char *p = s;
    const char *end;

    if (s == NULL || ret == NULL)
        return -EPROTO;
    end = s + len;
    memset(&io, 0, sizeof(io));
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *colon;
        uint64_t *dst = NULL;
        unsigned bit = 0;
        uint64_t v;

        if (eol == NULL)
            eol = end;
        colon = memchr(p, ':', (size_t)(eol - p));
        if (colon != NULL) {
            size_t n = (size_t)(colon - p);
            if (n == 5 && memcmp(p, "rchar", 5) == 0) {
                dst = &io.rchar;
                bit = 1;
            } else if (n == 5 && memcmp(p, "syscr", 5) == 0) {
                dst = &io.syscr;
                bit = 2;
            } else if (n == 10 && memcmp(p, "read_bytes", 10) == 0) {
                dst = &io.read_bytes;
                bit = 4;
            }
        }
        if (dst != NULL) {
            const char *q = colon + 1;
            skip_spaces(&q, eol);
            /* the kernel ends every line with '\n': without it the text
             * was cut, possibly inside the number */
            if (eol == end || parse_u64(&q, eol, &v) < 0 || q != eol || (have & bit) != 0)
                return -EPROTO;
            *dst = v;
            have |= bit;
        }
        p = eol + 1;
    }
    if (have != 7)
        return -EPROTO;
    *ret = io;
    return 0;
}

/* The name of an ".../opt/extensions/NAME" path of n bytes, or NULL. */
static const char *ext_name_in(const char *arg, size_t n, size_t *ret_len)
{
    static const char dir[] = "/opt/extensions/";
    const char *slash = n > 0 ? memrchr(arg, '/', n) : NULL;
    size_t off;

    if (slash == NULL || (size_t)(slash - arg) + 1 < sizeof(dir) - 1)
        return NULL;
    off = (size_t)(slash - arg) + 1 - (sizeof(dir) - 1);
    if (memcmp(arg + off, dir, sizeof(dir) - 1) != 0 || (size_t)(slash - arg) + 1 == n)
        return NULL;
    *ret_len = n - (size_t)(slash - arg) - 1;
    return slash + 1;
}

int procsnap_parse_ext_name(const char *s, size_t len, char *ret_name, size_t size)
{
    const char *arg = s, *end, *name = NULL;
    size_t name_len = 0;

    if (s == NULL || ret_name == NULL || size == 0)
        return -EPROTO;
    end = s + len;
    for (int i = 0; i < 2 && arg < end && name == NULL; i++) {
        const char *nul = memchr(arg, '\0', (size_t)(end - arg));
        size_t n = nul != NULL ? (size_t)(nul - arg) : (size_t)(end - arg);
        name = ext_name_in(arg, n, &name_len);
        if (nul == NULL)
            break;
        arg = nul + 1;
    }
    if (name == NULL || name_len >= size)
        return -EPROTO;
    memcpy(ret_name, name, name_len);
    ret_name[name_len] = '\0';
    return 0;
}

int procsnap_parse_schedstat(const char *s, size_t len, struct procsnap_schedstat *ret)
{
    struct procsnap_schedstat v;
    const char *p = s, *end;

    if (s == NULL || ret == NULL)
        return -EPROTO;
    end = s + len;
    if (field_u64(&p, end, &v.run_ns) < 0 || field_u64(&p, end, &v.wait_ns) < 0 ||
        field_u64(&p, end, &v.slices) < 0 || p >= end || *p != '\n')
        return -EPROTO;
    /* a kernel without schedstats writes "0 0 0": nothing to go by */
    if (v.run_ns == 0 && v.wait_ns == 0 && v.slices == 0)
        return -EPROTO;
    *ret = v;
    return 0;
}

int procsnap_parse_socket_link(const char *s, size_t len, uint64_t *ret_inode)
{
    const char *end;
    const char *p = s;
    uint64_t v;

    if (s == NULL || ret_inode == NULL || len < 9 || memcmp(s, "socket:[", 8) != 0)
        return -EPROTO;
    end = s + len;
    p += 8;
    if (parse_u64(&p, end, &v) < 0 || p + 1 != end || *p != ']')
        return -EPROTO;
    *ret_inode = v;
    return 0;
}

/* ------------------------------------------------------------------ */
/* names                                                              */

const char *procsnap_port_name(uint16_t port)
{
    switch (port) {
    case 21: return "FTP";
    case 22: return "SSH";
    case 25:
    case 587: return "SMTP";
    case 53: return "DNS";
    case 80: return "http";
    case 443: return "https";
    case 465: return "SMTPS";
    case 1433: return "SQL Server";
    case 1521: return "Oracle";
    case 2049: return "NFS";
    case 2181: return "ZooKeeper";
    case 2379: return "etcd";
    case 3306: return "MySQL";
    case 4317: return "OTLP gRPC";
    case 4318: return "OTLP http";
    case 5432: return "PostgreSQL";
    case 5439: return "Redshift";
    case 5671: return "AMQPS";
    case 5672: return "AMQP";
    case 6379: return "Redis";
    case 7000:
    case 9042: return "Cassandra";
    case 8080: return "http-alt";
    case 8443: return "https-alt";
    case 9092: return "Kafka";
    case 9094: return "Kafka TLS";
    case 9200:
    case 9243: return "Elasticsearch";
    case 11211: return "memcached";
    case 27017: return "MongoDB";
    default: return NULL;
    }
}

const char *procsnap_tcp_state_name(uint8_t tcp_state)
{
    switch (tcp_state) {
    case PROCSNAP_TCP_ESTABLISHED: return "established";
    case PROCSNAP_TCP_SYN_SENT: return "connecting";
    case PROCSNAP_TCP_SYN_RECV: return "accepting";
    case PROCSNAP_TCP_FIN_WAIT1:
    case PROCSNAP_TCP_FIN_WAIT2:
    case PROCSNAP_TCP_CLOSING:
    case PROCSNAP_TCP_LAST_ACK: return "closing";
    case PROCSNAP_TCP_CLOSE_WAIT: return "closed by peer";
    case PROCSNAP_TCP_TIME_WAIT: return "time-wait";
    case PROCSNAP_TCP_CLOSE: return "closed";
    case PROCSNAP_TCP_LISTEN: return "listening";
    default: return "unknown";
    }
}

/* The syscalls the diagnosis knows, by kind. */
enum sys_kind {
    SYS_K_NONE = 0,
    SYS_K_READ,    /* arg0 is an fd being read */
    SYS_K_CONNECT, /* arg0 is an fd */
    SYS_K_WRITE,   /* arg0 is an fd being written */
    SYS_K_POLL,
    SYS_K_SLEEP,
    SYS_K_CHILD,
    SYS_K_LOCK,
    SYS_K_ACCEPT
};

struct sys_entry {
    int32_t nr;
    const char *name;
    enum sys_kind kind;
};

static const struct sys_entry sys_table[] = {
#ifdef SYS_read
    {SYS_read, "read", SYS_K_READ},
#endif
#ifdef SYS_readv
    {SYS_readv, "readv", SYS_K_READ},
#endif
#ifdef SYS_recvfrom
    {SYS_recvfrom, "recvfrom", SYS_K_READ},
#endif
#ifdef SYS_recvmsg
    {SYS_recvmsg, "recvmsg", SYS_K_READ},
#endif
#ifdef SYS_recvmmsg
    {SYS_recvmmsg, "recvmmsg", SYS_K_READ},
#endif
#ifdef SYS_connect
    {SYS_connect, "connect", SYS_K_CONNECT},
#endif
#ifdef SYS_write
    {SYS_write, "write", SYS_K_WRITE},
#endif
#ifdef SYS_writev
    {SYS_writev, "writev", SYS_K_WRITE},
#endif
#ifdef SYS_sendto
    {SYS_sendto, "sendto", SYS_K_WRITE},
#endif
#ifdef SYS_sendmsg
    {SYS_sendmsg, "sendmsg", SYS_K_WRITE},
#endif
#ifdef SYS_accept
    {SYS_accept, "accept", SYS_K_ACCEPT},
#endif
#ifdef SYS_accept4
    {SYS_accept4, "accept4", SYS_K_ACCEPT},
#endif
#ifdef SYS_epoll_wait
    {SYS_epoll_wait, "epoll_wait", SYS_K_POLL},
#endif
#ifdef SYS_epoll_pwait
    {SYS_epoll_pwait, "epoll_pwait", SYS_K_POLL},
#endif
#ifdef SYS_epoll_pwait2
    {SYS_epoll_pwait2, "epoll_pwait2", SYS_K_POLL},
#endif
#ifdef SYS_poll
    {SYS_poll, "poll", SYS_K_POLL},
#endif
#ifdef SYS_ppoll
    {SYS_ppoll, "ppoll", SYS_K_POLL},
#endif
#ifdef SYS_select
    {SYS_select, "select", SYS_K_POLL},
#endif
#ifdef SYS_pselect6
    {SYS_pselect6, "pselect6", SYS_K_POLL},
#endif
#ifdef SYS_nanosleep
    {SYS_nanosleep, "nanosleep", SYS_K_SLEEP},
#endif
#ifdef SYS_clock_nanosleep
    {SYS_clock_nanosleep, "clock_nanosleep", SYS_K_SLEEP},
#endif
#ifdef SYS_pause
    {SYS_pause, "pause", SYS_K_SLEEP},
#endif
#ifdef SYS_wait4
    {SYS_wait4, "wait4", SYS_K_CHILD},
#endif
#ifdef SYS_waitid
    {SYS_waitid, "waitid", SYS_K_CHILD},
#endif
#ifdef SYS_futex
    {SYS_futex, "futex", SYS_K_LOCK},
#endif
#ifdef SYS_futex_waitv
    {SYS_futex_waitv, "futex_waitv", SYS_K_LOCK},
#endif
#ifdef SYS_flock
    {SYS_flock, "flock", SYS_K_LOCK},
#endif
};

static const struct sys_entry *sys_lookup(int32_t nr)
{
    for (size_t i = 0; i < sizeof(sys_table) / sizeof(sys_table[0]); i++)
        if (sys_table[i].nr == nr)
            return &sys_table[i];
    return NULL;
}

const char *procsnap_syscall_name(int32_t nr)
{
    const struct sys_entry *e = sys_lookup(nr);

    return e != NULL ? e->name : NULL;
}

/* The same kinds from a wchan name (when syscall was refused). */
static enum sys_kind wchan_kind(const char *w)
{
    static const struct {
        const char *prefix;
        enum sys_kind kind;
    } map[] = {
        {"do_wait", SYS_K_CHILD},       {"kernel_wait", SYS_K_CHILD},
        {"hrtimer_nanosleep", SYS_K_SLEEP}, {"do_nanosleep", SYS_K_SLEEP},
        {"inet_wait_for_connect", SYS_K_CONNECT},
        {"sk_wait_data", SYS_K_READ},   {"wait_woken", SYS_K_READ},
        {"tcp_recvmsg", SYS_K_READ},    {"skb_wait_for_more", SYS_K_READ},
        {"ep_poll", SYS_K_POLL},        {"do_epoll_wait", SYS_K_POLL},
        {"do_sys_poll", SYS_K_POLL},    {"do_select", SYS_K_POLL},
        {"core_sys_select", SYS_K_POLL},
        {"futex", SYS_K_LOCK},          {"inet_csk_accept", SYS_K_ACCEPT},
        {"sk_stream_wait_memory", SYS_K_WRITE},
    };

    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strncmp(w, map[i].prefix, strlen(map[i].prefix)) == 0)
            return map[i].kind;
    return SYS_K_NONE;
}

void procsnap_format_addr(const struct procsnap_socket *sk, bool peer, char *out, size_t size)
{
    char a[INET6_ADDRSTRLEN];
    const uint8_t *addr;
    uint16_t port;

    if (size == 0)
        return;
    out[0] = '\0';
    if (sk == NULL)
        return;
    addr = peer ? sk->peer_addr : sk->local_addr;
    port = peer ? sk->peer_port : sk->local_port;
    if (sk->family == AF_INET6) {
        /* An IPv4-mapped address reads better as IPv4. */
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(addr, mapped, 12) == 0 && inet_ntop(AF_INET, addr + 12, a, sizeof(a)) != NULL)
            snprintf(out, size, "%s:%u", a, (unsigned)port);
        else if (inet_ntop(AF_INET6, addr, a, sizeof(a)) != NULL)
            snprintf(out, size, "[%s]:%u", a, (unsigned)port);
    } else if (sk->family == AF_INET) {
        if (inet_ntop(AF_INET, addr, a, sizeof(a)) != NULL)
            snprintf(out, size, "%s:%u", a, (unsigned)port);
    }
}

/* ------------------------------------------------------------------ */
/* reading /proc                                                      */

#define KIDS_MAX ((size_t)PROCSNAP_MAX_PROCS * 4)

struct ctx {
    struct procsnap *s;
    int64_t deadline_mono_us; /* 0: none */
    uint64_t page_bytes;
    int rootfd;               /* the proc root (for /proc/P/io) */
    bool want_io;             /* opts.io */
    /* Children named by task/T/children, visited breadth first. */
    struct {
        pid_t pid, ppid;
        uint8_t depth;
    } kids[KIDS_MAX];
    size_t nkids;
    bool children_missing; /* a children file could not be read: scan */
};

static void note_unreadable(struct procsnap *s, enum procsnap_src src, int err)
{
    if ((s->unreadable & (1u << src)) == 0) {
        s->unreadable |= 1u << src;
        s->unreadable_errno[src] = (int16_t)(err > 0 && err < INT16_MAX ? err : EIO);
    }
}

static bool over_budget(struct ctx *c)
{
    if (c->deadline_mono_us != 0 && now_us(CLOCK_MONOTONIC) > c->deadline_mono_us) {
        c->s->partial = true;
        return true;
    }
    return false;
}

/* Reads a small file relative to dirfd with one read.  Returns the byte
 * count (the buffer is NUL-terminated and cut at size - 1) or -errno. */
static ssize_t read_small(int dirfd, const char *name, char *buf, size_t size)
{
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
    ssize_t n;

    if (fd < 0)
        return -errno;
    do {
        n = read(fd, buf, size - 1);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        n = -errno;
    else
        buf[n] = '\0';
    close(fd);
    return n;
}

static int open_dir(int dirfd, const char *name)
{
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    return fd < 0 ? -errno : fd;
}

/* A directory entry name that is a decimal number in [0, INT32_MAX]. */
static bool numeric_name(const char *name, uint64_t *ret)
{
    const char *p = name;
    const char *end = name + strnlen(name, 32);

    return parse_u64(&p, end, ret) == 0 && p == end && *ret <= INT32_MAX;
}

/* getdents64 by number (glibc and musl disagree on its wrapper). */
static ssize_t dents(int dfd, char *buf, size_t size)
{
    return syscall(SYS_getdents64, dfd, buf, size);
}

/* The record at off of a getdents64 result of n bytes: its length (0 when
 * malformed) and its NUL-terminated name. */
static uint16_t dent_next(const char *buf, ssize_t n, ssize_t off, const char **ret_name)
{
    uint16_t reclen;

    if (n - off < DIRENT_NAME_OFF + 1)
        return 0;
    memcpy(&reclen, buf + off + DIRENT_RECLEN_OFF, sizeof(reclen));
    if (reclen < DIRENT_NAME_OFF + 1 || reclen > n - off ||
        memchr(buf + off + DIRENT_NAME_OFF, '\0', reclen - DIRENT_NAME_OFF) == NULL)
        return 0;
    *ret_name = buf + off + DIRENT_NAME_OFF;
    return reclen;
}

/* Walks the numeric entries of the directory fd, calling fn(pid, arg)
 * until it returns false or `limit` entries were seen.  Returns 0 or
 * -errno from getdents64. */
typedef bool numeric_entry_fn(pid_t pid, void *arg);

static int walk_numeric(int dfd, size_t limit, numeric_entry_fn *fn, void *arg)
{
    char buf[DENTS_BUF_BYTES] __attribute__((aligned(8)));
    size_t seen = 0;

    for (;;) {
        ssize_t n = dents(dfd, buf, sizeof(buf));
        if (n < 0)
            return -errno;
        if (n == 0)
            return 0;
        for (ssize_t off = 0; off < n;) {
            const char *name;
            uint16_t reclen = dent_next(buf, n, off, &name);
            uint64_t v;
            if (reclen == 0)
                return -EIO;
            off += reclen;
            /* /proc holds about 60 named entries besides the pids */
            if (name[0] < '1' || name[0] > '9' || !numeric_name(name, &v))
                continue;
            if (++seen > limit)
                return 0;
            if (!fn((pid_t)v, arg))
                return 0;
        }
    }
}

static int read_stat_at(int dirfd, const char *name, struct procsnap_stat *ret)
{
    char buf[READ_BUF_BYTES];
    ssize_t n = read_small(dirfd, name, buf, sizeof(buf));

    if (n < 0)
        return (int)n;
    return procsnap_parse_stat(buf, (size_t)n, ret) < 0 ? -EPROTO : 0;
}

/* "PID/leaf" (or "PID" when leaf is empty) into out, written by hand: a
 * scan does it for every process on the host at each Init sample, where
 * snprintf cost as much as the parsing.  Returns out. */
#define PID_PATH_BYTES 32

static const char *pid_path(char out[PID_PATH_BYTES], pid_t pid, const char *leaf)
{
    char digits[12];
    size_t nd = 0, n = 0;
    size_t leaf_len = strlen(leaf);
    uint32_t v = pid < 0 ? (uint32_t)-(int64_t)pid : (uint32_t)pid;

    do {
        digits[nd++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    if (leaf_len > PID_PATH_BYTES - sizeof(digits) - 3) {
        out[0] = '\0'; /* a caller's mistake: opening "" fails */
        return out;
    }
    if (pid < 0)
        out[n++] = '-';
    while (nd > 0)
        out[n++] = digits[--nd];
    if (leaf_len > 0) {
        out[n++] = '/';
        memcpy(out + n, leaf, leaf_len);
        n += leaf_len;
    }
    out[n] = '\0';
    return out;
}

static int pid_stat(int rootfd, pid_t pid, struct procsnap_stat *ret)
{
    char name[PID_PATH_BYTES];

    return read_stat_at(rootfd, pid_path(name, pid, "stat"), ret);
}

/* ---- find the runtime ---- */

struct find_state {
    int rootfd;
    pid_t self;
    pid_t parent;
    struct procsnap_target *out;
    size_t max, n;
    struct procsnap_extension *ext;
    size_t ext_max, ext_n;
    struct procsnap_links *links; /* NULL: not kept */
    uint32_t unreadable;
};

/* Whether the process is an extension (its name in ret_name): argv[0] and
 * argv[1] of its cmdline, the only parts looked at. */
static bool is_extension(int rootfd, pid_t pid, uint32_t *unreadable, char *ret_name, size_t size)
{
    char name[PID_PATH_BYTES];
    char buf[512];
    ssize_t n;

    n = read_small(rootfd, pid_path(name, pid, "cmdline"), buf, sizeof(buf));
    if (n < 0) {
        *unreadable |= 1u << PROCSNAP_SRC_CMDLINE;
        return false;
    }
    return procsnap_parse_ext_name(buf, (size_t)n, ret_name, size) == 0;
}

/* Keeps pid's parent link, as procsnap_take's own scan would. */
static void keep_link(struct procsnap_links *l, pid_t pid, pid_t ppid)
{
    /* Kernel threads (ppid 2 or pid 2) are never ours. */
    if (l == NULL || pid == 2 || ppid == 2 || ppid == 0)
        return;
    if (l->n == PROCSNAP_MAX_LINKS) {
        l->dropped = true;
        return;
    }
    l->links[l->n].pid = pid;
    l->links[l->n].ppid = ppid;
    l->n++;
}

static bool find_one(pid_t pid, void *arg)
{
    struct find_state *f = arg;
    struct procsnap_stat st;
    char ext_name[PROCSNAP_EXT_NAME_BYTES];
    char name[PID_PATH_BYTES], buf[READ_BUF_BYTES];
    ssize_t n;
    pid_t ppid;
    size_t i;

    if (pid == f->self) {
        keep_link(f->links, pid, f->parent); /* its stat was read first */
        return true;
    }
    /* Every process on the host passes here: one open and read of its stat,
     * parsed only as far as the ppid unless it is a sibling.  One that
     * ended since the listing fails to open: skipped. */
    n = read_small(f->rootfd, pid_path(name, pid, "stat"), buf, sizeof(buf));
    if (n < 0 || procsnap_parse_stat_ppid(buf, (size_t)n, &ppid) < 0)
        return true;
    keep_link(f->links, pid, ppid);
    if (ppid != f->parent || procsnap_parse_stat(buf, (size_t)n, &st) < 0)
        return true;
    if (st.state == 'Z' || st.state == 'X' || st.state == 'x')
        return true;
    if (is_extension(f->rootfd, pid, &f->unreadable, ext_name, sizeof(ext_name))) {
        if (f->ext_n < f->ext_max) {
            struct procsnap_extension *e = &f->ext[f->ext_n++];
            e->pid = pid;
            e->start_ticks = st.start_ticks;
            memcpy(e->name, ext_name, sizeof(e->name));
            e->state = st.state;
            e->cpu_ticks = st.utime_ticks + st.stime_ticks;
            e->faults = st.minflt + st.majflt;
            e->num_threads = st.num_threads;
        }
        return true;
    }
    /* Newest first; when full, the oldest falls off. */
    for (i = 0; i < f->n && f->out[i].start_ticks >= st.start_ticks; i++)
        ;
    if (i >= f->max)
        return true;
    if (f->n == f->max)
        f->n--;
    memmove(&f->out[i + 1], &f->out[i], (f->n - i) * sizeof(f->out[0]));
    f->out[i].pid = pid;
    f->out[i].start_ticks = st.start_ticks;
    f->n++;
    return true;
}

int procsnap_find_runtime(const char *proc_root, pid_t self, struct procsnap_target *ret_targets,
                          size_t max, size_t *ret_n, uint32_t *ret_unreadable)
{
    size_t ext_n;

    return procsnap_find_siblings(proc_root, self, ret_targets, max, ret_n, NULL, 0, &ext_n, NULL,
                                  ret_unreadable);
}

int procsnap_find_siblings(const char *proc_root, pid_t self, struct procsnap_target *ret_targets,
                           size_t max, size_t *ret_n, struct procsnap_extension *ret_ext,
                           size_t ext_max, size_t *ret_ext_n, struct procsnap_links *ret_links,
                           uint32_t *ret_unreadable)
{
    struct find_state f;
    struct procsnap_stat st;
    int r;

    if (ret_n == NULL || (ret_targets == NULL && max > 0) || self <= 0 || ret_ext_n == NULL ||
        (ret_ext == NULL && ext_max > 0))
        return -EINVAL;
    memset(&f, 0, sizeof(f));
    f.rootfd = open_dir(AT_FDCWD, proc_root != NULL ? proc_root : "/proc");
    if (f.rootfd < 0)
        return -ENOENT;
    if (pid_stat(f.rootfd, self, &st) < 0) {
        r = -ENOENT;
        goto out;
    }
    f.self = self;
    f.parent = st.ppid;
    f.out = ret_targets;
    f.max = max;
    f.ext = ret_ext;
    f.ext_max = ext_max;
    f.links = ret_links;
    if (ret_links != NULL) {
        ret_links->n = 0;
        ret_links->dropped = false;
    }
    r = walk_numeric(f.rootfd, PROCSNAP_MAX_SCAN_PIDS, find_one, &f);
    if (r < 0) {
        r = -ENOENT;
        goto out;
    }
    *ret_n = f.n;
    *ret_ext_n = f.ext_n;
    if (ret_unreadable != NULL)
        *ret_unreadable = f.unreadable;
    r = 0;
out:
    close(f.rootfd);
    return r;
}

/* ---- a process's activity ---- */

struct activity_state {
    int taskfd;
    struct procsnap_schedstat sum;
    uint32_t threads;
    int err;
};

static int read_schedstat(int dirfd, const char *name, struct procsnap_schedstat *ret)
{
    char buf[128];
    ssize_t n = read_small(dirfd, name, buf, sizeof(buf));

    if (n < 0)
        return (int)n;
    return procsnap_parse_schedstat(buf, (size_t)n, ret) < 0 ? -EPROTO : 0;
}

static void add_schedstat(struct procsnap_schedstat *sum, const struct procsnap_schedstat *v)
{
    sum->run_ns += v->run_ns;
    sum->wait_ns += v->wait_ns;
    sum->slices += v->slices;
}

static bool activity_one(pid_t tid, void *arg)
{
    struct activity_state *a = arg;
    struct procsnap_schedstat v;
    char name[32];
    int r;

    if (a->threads++ == PROCSNAP_MAX_THREADS)
        return false;
    snprintf(name, sizeof(name), "%d/schedstat", (int)tid);
    r = read_schedstat(a->taskfd, name, &v);
    if (r == -ENOENT)
        return true; /* the thread ended meanwhile */
    if (r < 0) {
        a->err = r;
        return false;
    }
    add_schedstat(&a->sum, &v);
    return true;
}

int procsnap_activity(const char *proc_root, pid_t pid, uint32_t num_threads,
                      struct procsnap_schedstat *ret)
{
    char path[512];
    struct activity_state a;
    int r;

    if (ret == NULL || pid <= 0)
        return -EINVAL;
    memset(&a, 0, sizeof(a));
    if (num_threads <= 1) {
        snprintf(path, sizeof(path), "%s/%d/schedstat", proc_root != NULL ? proc_root : "/proc", (int)pid);
        r = read_schedstat(AT_FDCWD, path, &a.sum);
        if (r == 0)
            *ret = a.sum;
        return r;
    }
    snprintf(path, sizeof(path), "%s/%d/task", proc_root != NULL ? proc_root : "/proc", (int)pid);
    a.taskfd = open_dir(AT_FDCWD, path);
    if (a.taskfd < 0)
        return a.taskfd;
    r = walk_numeric(a.taskfd, PROCSNAP_MAX_THREADS + 1, activity_one, &a);
    close(a.taskfd);
    if (r < 0)
        return r;
    if (a.err < 0)
        return a.err;
    if (a.sum.slices == 0)
        return -ENOENT; /* no thread left: the process ended */
    *ret = a.sum;
    return 0;
}

/* ---- descendants ---- */

struct scan_state {
    int rootfd;
    struct procsnap_links *links;
};

static bool scan_one(pid_t pid, void *arg)
{
    struct scan_state *sc = arg;
    char name[PID_PATH_BYTES], buf[READ_BUF_BYTES];
    ssize_t n;
    pid_t ppid;

    if (pid == 2)
        return true;
    n = read_small(sc->rootfd, pid_path(name, pid, "stat"), buf, sizeof(buf));
    if (n < 0 || procsnap_parse_stat_ppid(buf, (size_t)n, &ppid) < 0)
        return true;
    keep_link(sc->links, pid, ppid);
    return !sc->links->dropped;
}

/* ---- one process ---- */

/* false when over the cap (counted). */
static bool add_proc(struct ctx *c, const struct procsnap_stat *st, uint8_t depth)
{
    struct procsnap *s = c->s;
    struct procsnap_proc *p;

    if (s->nprocs >= PROCSNAP_MAX_PROCS) {
        s->dropped_procs++;
        return false;
    }
    p = &s->procs[s->nprocs++];
    p->pid = st->pid;
    p->ppid = st->ppid;
    p->start_ticks = st->start_ticks;
    p->state = st->state;
    memcpy(p->comm, st->comm, sizeof(p->comm));
    p->cpu_us = ticks_to_us(st->utime_ticks + st->stime_ticks);
    p->rss_bytes = st->rss_pages * c->page_bytes;
    p->num_threads = st->num_threads;
    p->depth = depth;
    p->minflt = st->minflt + st->cminflt;
    p->majflt = st->majflt + st->cmajflt;
    p->children_cpu_us = ticks_to_us(st->cutime_ticks + st->cstime_ticks);
    if (c->want_io) {
        char name[PID_PATH_BYTES], buf[READ_BUF_BYTES];
        struct procsnap_io io;
        ssize_t n = read_small(c->rootfd, pid_path(name, st->pid, "io"), buf, sizeof(buf));
        if (n < 0 || procsnap_parse_io(buf, (size_t)n, &io) < 0) {
            /* ENOENT too: a kernel without task I/O accounting */
            note_unreadable(s, PROCSNAP_SRC_IO, n < 0 ? (int)-n : EPROTO);
        } else {
            p->has_io = true;
            p->rchar = io.rchar;
            p->read_bytes = io.read_bytes;
            p->syscr = io.syscr;
        }
    }
    return true;
}

struct task_state {
    struct ctx *c;
    int taskfd;
    uint8_t proc;
};

/* task/T/children (CONFIG_PROC_CHILDREN; readable by anyone): the pids
 * this thread forked, space-separated.  Cheaper than reading the stat of
 * every process on the host to find the ones whose ppid is ours. */
static void read_children(struct ctx *c, int taskfd, pid_t tid, const struct procsnap_proc *p)
{
    char name[48];
    char buf[512] = "";
    const char *q, *end;
    ssize_t n;

    if (c->children_missing)
        return;
    snprintf(name, sizeof(name), "%d/children", (int)tid);
    n = read_small(taskfd, name, buf, sizeof(buf));
    if (n < 0) {
        if (n != -ESRCH) /* the thread exited meanwhile: no loss */
            c->children_missing = true;
        return;
    }
    q = buf;
    end = buf + n;
    for (;;) {
        uint64_t v;
        skip_spaces(&q, end);
        if (q >= end || parse_u64(&q, end, &v) < 0)
            break;
        if (v == 0 || v > INT32_MAX)
            continue;
        if (c->nkids == KIDS_MAX) {
            c->s->dropped_procs++;
            break;
        }
        c->kids[c->nkids].pid = (pid_t)v;
        c->kids[c->nkids].ppid = p->pid;
        c->kids[c->nkids].depth = p->depth < 254 ? (uint8_t)(p->depth + 1) : 255;
        c->nkids++;
    }
    /* A list cut by the buffer: the last number may be partial. */
    if ((size_t)n == sizeof(buf) - 1)
        c->children_missing = true;
}

static void read_wait(struct ctx *c, int taskfd, pid_t tid, struct procsnap_thread *t)
{
    char name[48];
    char buf[256] = "";
    ssize_t n;

    snprintf(name, sizeof(name), "%d/syscall", (int)tid);
    n = read_small(taskfd, name, buf, sizeof(buf));
    if (n >= 0) {
        if (procsnap_parse_syscall(buf, (size_t)n, &t->syscall_nr, &t->syscall_arg0) == 0)
            return;
        note_unreadable(c->s, PROCSNAP_SRC_SYSCALL, EPROTO);
    } else {
        note_unreadable(c->s, PROCSNAP_SRC_SYSCALL, (int)-n);
    }
    /* syscall needs ptrace-attach rights, wchan only ptrace-read. */
    snprintf(name, sizeof(name), "%d/wchan", (int)tid);
    n = read_small(taskfd, name, buf, sizeof(buf));
    if (n < 0) {
        note_unreadable(c->s, PROCSNAP_SRC_WCHAN, (int)-n);
        return;
    }
    if (n == 1 && buf[0] == '0')
        return;
    for (ssize_t i = 0; i < n && (size_t)i < sizeof(t->wchan) - 1; i++) {
        char ch = buf[i];
        if (ch == '\n')
            break;
        if (ch <= ' ' || ch >= 0x7f)
            ch = '?';
        t->wchan[i] = ch;
    }
}

static bool task_one(pid_t tid, void *arg)
{
    struct task_state *ts = arg;
    struct ctx *c = ts->c;
    struct procsnap *s = c->s;
    struct procsnap_stat st;
    struct procsnap_schedstat ss;
    struct procsnap_thread *t;
    char name[32];
    int r;

    if (over_budget(c))
        return false;
    if (s->nthreads >= PROCSNAP_MAX_THREADS) {
        s->dropped_threads++;
        return true;
    }
    snprintf(name, sizeof(name), "%d/stat", (int)tid);
    r = read_stat_at(ts->taskfd, name, &st);
    if (r < 0) {
        if (r != -ENOENT) /* a thread that just exited is no failure */
            note_unreadable(s, PROCSNAP_SRC_STAT, -r);
        return true;
    }
    t = &s->threads[s->nthreads++];
    memset(t, 0, sizeof(*t));
    t->tid = tid;
    t->proc = ts->proc;
    t->state = st.state;
    memcpy(t->comm, st.comm, sizeof(t->comm));
    t->cpu_us = ticks_to_us(st.utime_ticks + st.stime_ticks);
    /* Time spent runnable without a CPU: a loop starved by other work
     * (or by the function's CPU share) is still a loop. */
    snprintf(name, sizeof(name), "%d/schedstat", (int)tid);
    if (read_schedstat(ts->taskfd, name, &ss) == 0) {
        t->runq_us = ss.wait_ns / 1000;
        t->has_runq = true;
    }
    t->syscall_nr = PROCSNAP_SYSCALL_UNKNOWN;
    /* A running thread's syscall file says "running": skip the read. */
    if (st.state != 'R' && st.state != 'Z' && st.state != 'X')
        read_wait(c, ts->taskfd, tid, t);
    read_children(c, ts->taskfd, tid, &s->procs[ts->proc]);
    return true;
}

static struct procsnap_socket *find_inode(struct procsnap *s, uint64_t inode)
{
    for (uint16_t i = 0; i < s->nsockets; i++)
        if (s->sockets[i].inode == inode)
            return &s->sockets[i];
    return NULL;
}

static void read_fds(struct ctx *c, int pidfd, uint8_t proc)
{
    char buf[DENTS_BUF_BYTES] __attribute__((aligned(8)));
    struct procsnap *s = c->s;
    size_t seen = 0;
    int dfd = open_dir(pidfd, "fd");

    if (dfd < 0) {
        note_unreadable(s, PROCSNAP_SRC_FD, -dfd);
        return;
    }
    for (;;) {
        ssize_t n = dents(dfd, buf, sizeof(buf));
        if (n < 0) {
            note_unreadable(s, PROCSNAP_SRC_FD, errno);
            break;
        }
        if (n == 0)
            break;
        for (ssize_t off = 0; off < n;) {
            const char *name;
            uint16_t reclen = dent_next(buf, n, off, &name);
            char link[64];
            uint64_t fdnum, inode;
            ssize_t ln;
            if (reclen == 0)
                goto out;
            off += reclen;
            if (!numeric_name(name, &fdnum))
                continue;
            if (++seen > PROCSNAP_MAX_FDS_SCANNED || over_budget(c))
                goto out;
            ln = readlinkat(dfd, name, link, sizeof(link) - 1);
            if (ln < 0) {
                if (errno != ENOENT)
                    note_unreadable(s, PROCSNAP_SRC_FD, errno);
                continue;
            }
            if (procsnap_parse_socket_link(link, (size_t)ln, &inode) < 0)
                continue;
            if (s->nsockets >= PROCSNAP_MAX_SOCKETS) {
                s->dropped_sockets++;
                continue;
            }
            struct procsnap_socket *sk = &s->sockets[s->nsockets++];
            memset(sk, 0, sizeof(*sk));
            sk->proc = proc;
            sk->fd = (int32_t)fdnum;
            sk->inode = inode;
        }
    }
out:
    close(dfd);
}

static void read_proc(struct ctx *c, int rootfd, const struct procsnap_stat *st, uint8_t depth)
{
    struct procsnap *s = c->s;
    char name[PID_PATH_BYTES];
    uint16_t idx = s->nprocs;
    int pidfd, taskfd;

    if (!add_proc(c, st, depth) || s->light)
        return;
    pidfd = open_dir(rootfd, pid_path(name, st->pid, ""));
    if (pidfd < 0)
        return;
    taskfd = open_dir(pidfd, "task");
    if (taskfd < 0) {
        note_unreadable(s, PROCSNAP_SRC_TASK, -taskfd);
    } else {
        struct task_state ts = {.c = c, .taskfd = taskfd, .proc = (uint8_t)idx};
        int r = walk_numeric(taskfd, PROCSNAP_MAX_SCAN_PIDS, task_one, &ts);
        if (r < 0)
            note_unreadable(s, PROCSNAP_SRC_TASK, -r);
        close(taskfd);
    }
    if (!over_budget(c))
        read_fds(c, pidfd, (uint8_t)idx);
    close(pidfd);
}

/* ---- sockets: sock_diag ---- */

static uint32_t ti_u32(const unsigned char *ti, size_t len, size_t off)
{
    uint32_t v = 0;

    if (off + sizeof(v) <= len)
        memcpy(&v, ti + off, sizeof(v));
    return v;
}

static uint64_t ti_u64(const unsigned char *ti, size_t len, size_t off)
{
    uint64_t v = 0;

    if (off + sizeof(v) <= len)
        memcpy(&v, ti + off, sizeof(v));
    return v;
}

static void fill_info(struct procsnap_socket *sk, const unsigned char *ti, size_t ti_len);

static void fill_from_diag(struct procsnap_socket *sk, const struct diag_msg *m,
                           const unsigned char *ti, size_t ti_len)
{
    sk->proto = IPPROTO_TCP;
    sk->family = m->family;
    memcpy(sk->local_addr, m->id.src, 16);
    memcpy(sk->peer_addr, m->id.dst, 16);
    if (sk->family == AF_INET) {
        memset(sk->local_addr + 4, 0, 12);
        memset(sk->peer_addr + 4, 0, 12);
    }
    sk->local_port = ntohs(m->id.sport);
    sk->peer_port = ntohs(m->id.dport);
    sk->tcp_state = m->state;
    sk->tx_queue = m->wqueue;
    sk->rx_queue = m->rqueue;
    fill_info(sk, ti, ti_len);
}

static void fill_info(struct procsnap_socket *sk, const unsigned char *ti, size_t ti_len)
{
    /* An older kernel sends a shorter tcp_info: read what is there. */
    if (ti != NULL && ti_len >= TI_TOTAL_RETRANS + 4) {
        sk->has_info = true;
        sk->last_data_sent_ms = ti_u32(ti, ti_len, TI_LAST_DATA_SENT);
        sk->last_data_recv_ms = ti_u32(ti, ti_len, TI_LAST_DATA_RECV);
        sk->last_ack_recv_ms = ti_u32(ti, ti_len, TI_LAST_ACK_RECV);
        sk->unacked = ti_u32(ti, ti_len, TI_UNACKED);
        sk->retransmits = ti[TI_RETRANSMITS];
        sk->total_retrans = ti_u32(ti, ti_len, TI_TOTAL_RETRANS);
        sk->rtt_us = ti_u32(ti, ti_len, TI_RTT);
    }
    if (ti != NULL && ti_len >= TI_BYTES_RECEIVED + 8) {
        sk->has_bytes = true;
        sk->bytes_acked = ti_u64(ti, ti_len, TI_BYTES_ACKED);
        sk->bytes_received = ti_u64(ti, ti_len, TI_BYTES_RECEIVED);
    }
}

/* One netlink message of a dump: 1 matched, 0 not ours, or the end
 * (NL_MSG_DONE: 2) or an error (< 0). */
static int diag_one(struct ctx *c, const char *msg, uint32_t len, uint16_t type)
{
    struct diag_msg m;
    struct procsnap_socket *sk;
    const unsigned char *ti = NULL;
    size_t ti_len = 0;
    size_t off;

    if (type == NL_MSG_DONE)
        return 2;
    if (type == NL_MSG_ERROR) {
        int32_t err;
        if (len < sizeof(struct nl_hdr) + sizeof(err))
            return -EPROTO;
        memcpy(&err, msg + sizeof(struct nl_hdr), sizeof(err));
        return err < 0 ? err : -EPROTO;
    }
    if (type != NL_SOCK_DIAG_BY_FAMILY || len < sizeof(struct nl_hdr) + sizeof(m))
        return 0;
    memcpy(&m, msg + sizeof(struct nl_hdr), sizeof(m));
    sk = find_inode(c->s, m.inode);
    if (sk == NULL || m.inode == 0 ||
        (sk->proto != 0 && !(sk->proto == IPPROTO_TCP && sk->peer_port == 0)))
        return 0;
    /* The attributes after the message: u16 length, u16 type, payload. */
    off = sizeof(struct nl_hdr) + NL_ALIGN(sizeof(m));
    while (off + 4 <= len) {
        uint16_t alen, atype;
        memcpy(&alen, msg + off, 2);
        memcpy(&atype, msg + off + 2, 2);
        if (alen < 4 || alen > len - off)
            break;
        if (atype == NL_INET_DIAG_INFO) {
            ti = (const unsigned char *)msg + off + 4;
            ti_len = alen - 4u;
        }
        off += NL_ALIGN((size_t)alen);
    }
    fill_from_diag(sk, &m, ti, ti_len);
    return 1;
}

/* One dump of one family's TCP sockets.  Returns matches, or -errno. */
static int diag_dump(struct ctx *c, int nl, uint8_t family, uint32_t states)
{
    struct {
        struct nl_hdr nh;
        struct diag_req_v2 req;
    } q;
    char buf[DIAG_BUF_BYTES] __attribute__((aligned(8)));
    struct nl_addr sa = {.family = AF_NETLINK};
    size_t msgs = 0;
    int matched = 0;

    memset(&q, 0, sizeof(q));
    q.nh.len = sizeof(q);
    q.nh.type = NL_SOCK_DIAG_BY_FAMILY;
    q.nh.flags = NL_F_REQUEST | NL_F_DUMP;
    q.nh.seq = family;
    q.req.family = family;
    q.req.protocol = IPPROTO_TCP;
    q.req.states = states;
    q.req.ext = 1u << (NL_INET_DIAG_INFO - 1);
    if (sendto(nl, &q, sizeof(q), 0, (const struct sockaddr *)(const void *)&sa, sizeof(sa)) < 0)
        return -errno;
    for (;;) {
        ssize_t n;
        if (over_budget(c))
            return -ETIMEDOUT;
        do {
            n = recv(nl, buf, sizeof(buf), 0);
        } while (n < 0 && errno == EINTR);
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EPROTO;
        for (size_t off = 0; off + sizeof(struct nl_hdr) <= (size_t)n;) {
            struct nl_hdr h;
            memcpy(&h, buf + off, sizeof(h));
            if (h.len < sizeof(h) || h.len > (size_t)n - off)
                return -EPROTO;
            if (++msgs > PROCSNAP_MAX_DIAG_MSGS)
                return -E2BIG;
            c->s->ns_entries++;
            int r = diag_one(c, buf + off, h.len, h.type);
            if (r < 0)
                return r;
            if (r == 2)
                return matched;
            matched += r;
            off += NL_ALIGN((size_t)h.len);
        }
    }
}

/* The states a socket still held by an fd is in.  Left out: SYN_RECV
 * and NEW_SYN_RECV (12, not in the mask), TIME_WAIT, and FIN_WAIT2 (the
 * kernel filters time-wait sockets by their sub-state, FIN_WAIT2 or
 * TIME_WAIT): those belong to no fd and a busy host holds tens of
 * thousands.  A half-closed socket in FIN_WAIT2 falls back to the net/
 * tables. */
#define DIAG_HELD_STATES                                                                   \
    (0xfffu & ~(1u << PROCSNAP_TCP_TIME_WAIT) & ~(1u << PROCSNAP_TCP_SYN_RECV) &          \
     ~(1u << PROCSNAP_TCP_FIN_WAIT2))

/* Returns the number of sockets matched, or -errno when sock_diag is not
 * usable. */
static int read_sock_diag(struct ctx *c, uint32_t states)
{
    int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NL_NETLINK_SOCK_DIAG);
    int total = 0;

    if (nl < 0)
        return -errno;
    for (int i = 0; i < 2; i++) {
        int r = diag_dump(c, nl, i == 0 ? AF_INET : AF_INET6, states);
        if (r < 0) {
            close(nl);
            return r;
        }
        total += r;
    }
    close(nl);
    return total;
}

/* ---- sockets: each through a second reference (pidfd_getfd) ---- */

/* New system calls share one number on every architecture (since 424). */
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif
#define SO_TCP_INFO 11     /* TCP_INFO, <netinet/tcp.h> clashes with <linux/tcp.h> */
#define TCP_INFO_BYTES 232 /* struct tcp_info as of Linux 6.x; a shorter
                            * one is read as far as it goes */

static void sockaddr_to(const struct sockaddr_storage *ss, uint8_t addr[16], uint16_t *port)
{
    memset(addr, 0, 16);
    *port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)(const void *)ss;
        memcpy(addr, &a->sin_addr, 4);
        *port = ntohs(a->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)(const void *)ss;
        memcpy(addr, &a->sin6_addr, 16);
        *port = ntohs(a->sin6_port);
    }
}

/* Reads one socket through d, our reference to the runtime's fd: 1 read
 * (an inet socket filled, or another kind left with proto 0), 0 when d is
 * no longer that socket (the fd was reused). */
static int by_fd_one(int d, struct procsnap_socket *sk)
{
    struct stat st;
    struct sockaddr_storage ss;
    socklen_t sl;
    int domain = 0, proto = 0, v = 0;
    socklen_t il = sizeof(int);

    if (fstat(d, &st) != 0 || (uint64_t)st.st_ino != sk->inode)
        return 0;
    if (getsockopt(d, SOL_SOCKET, SO_DOMAIN, &domain, &il) != 0 ||
        (domain != AF_INET && domain != AF_INET6))
        return 1; /* unix, netlink, ...: not an inet socket */
    il = sizeof(int);
    if (getsockopt(d, SOL_SOCKET, SO_PROTOCOL, &proto, &il) != 0 ||
        (proto != IPPROTO_TCP && proto != IPPROTO_UDP))
        return 1;
    sk->proto = (uint8_t)proto;
    sk->family = (uint8_t)domain;
    sl = sizeof(ss);
    memset(&ss, 0, sizeof(ss));
    if (getsockname(d, (struct sockaddr *)&ss, &sl) == 0)
        sockaddr_to(&ss, sk->local_addr, &sk->local_port);
    sl = sizeof(ss);
    memset(&ss, 0, sizeof(ss));
    if (getpeername(d, (struct sockaddr *)&ss, &sl) == 0) /* ENOTCONN: no peer */
        sockaddr_to(&ss, sk->peer_addr, &sk->peer_port);
    /* SIOCINQ/SIOCOUTQ (FIONREAD/TIOCOUTQ); a listener refuses: 0 */
    if (ioctl(d, FIONREAD, &v) == 0 && v > 0)
        sk->rx_queue = (uint32_t)v;
    v = 0;
    if (ioctl(d, TIOCOUTQ, &v) == 0 && v > 0)
        sk->tx_queue = (uint32_t)v;
    if (proto == IPPROTO_TCP) {
        unsigned char ti[TCP_INFO_BYTES];
        socklen_t tl = sizeof(ti);
        memset(ti, 0, sizeof(ti));
        if (getsockopt(d, IPPROTO_TCP, SO_TCP_INFO, ti, &tl) == 0 && tl > 0) {
            sk->tcp_state = ti[0];
            fill_info(sk, ti, tl);
        }
    }
    return 1;
}

/* Every socket through pidfd_getfd; done[i]: 1 read, 2 gone (its fd
 * closed or reused since it was listed), 0 not reached.  Returns the sockets read, or -errno
 * when the way is refused (EPERM under Yama or a seccomp filter, ENOSYS
 * before Linux 5.6): the caller falls back to the namespace's tables. */
static int read_by_fd(struct ctx *c, uint8_t *done)
{
    struct procsnap *s = c->s;
    int pidfd = -1, read_n = 0;
    uint8_t cur = UINT8_MAX;

    for (uint16_t i = 0; i < s->nsockets; i++) {
        struct procsnap_socket *sk = &s->sockets[i];
        long d;
        if (over_budget(c))
            break;
        if (sk->proc != cur) {
            if (pidfd >= 0)
                close(pidfd);
            cur = sk->proc;
            pidfd = (int)syscall(SYS_pidfd_open, (long)s->procs[cur].pid, 0L);
            if (pidfd < 0) {
                if (errno == ESRCH) /* gone since: its sockets too */
                    continue;
                return -errno;
            }
        }
        if (pidfd < 0) {
            done[i] = 2;
            continue;
        }
        d = syscall(SYS_pidfd_getfd, (long)pidfd, (long)sk->fd, 0L);
        if (d < 0) {
            int e = errno;
            if (e == EBADF) { /* closed since */
                done[i] = 2;
                continue;
            }
            close(pidfd);
            return -e;
        }
        /* O_CLOEXEC is set on the new fd by the kernel; closed at once. */
        int r = by_fd_one((int)d, sk);
        close((int)d);
        done[i] = r > 0 ? 1 : 2;
        if (r > 0) {
            read_n++;
            s->sockets_by_fd++;
        }
    }
    if (pidfd >= 0)
        close(pidfd);
    return read_n;
}

/* ---- sockets: /proc/P/net tables ---- */

static size_t unmatched(const struct procsnap *s)
{
    size_t n = 0;

    for (uint16_t i = 0; i < s->nsockets; i++)
        n += s->sockets[i].proto == 0 && s->sockets[i].inode != 0;
    return n;
}

static void net_line(struct procsnap *s, const char *line, size_t len, int family, uint8_t proto)
{
    struct procsnap_socket tmp;
    struct procsnap_socket *sk;

    s->ns_entries++;
    memset(&tmp, 0, sizeof(tmp));
    if (procsnap_parse_net_line(line, len, family, &tmp) < 0)
        return;
    sk = find_inode(s, tmp.inode);
    if (sk == NULL || tmp.inode == 0 || sk->proto != 0)
        return;
    sk->proto = proto;
    sk->family = tmp.family;
    memcpy(sk->local_addr, tmp.local_addr, 16);
    memcpy(sk->peer_addr, tmp.peer_addr, 16);
    sk->local_port = tmp.local_port;
    sk->peer_port = tmp.peer_port;
    sk->tcp_state = proto == IPPROTO_TCP ? tmp.tcp_state : PROCSNAP_TCP_NONE;
    sk->tx_queue = tmp.tx_queue;
    sk->rx_queue = tmp.rx_queue;
}

static void read_net_table(struct ctx *c, int pidfd, const char *name, int family, uint8_t proto)
{
    char buf[NET_CHUNK_BYTES];
    size_t have = 0, total = 0;
    bool skipping = false; /* inside a line longer than the buffer */
    int fd = openat(pidfd, name, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        if (errno != ENOENT) /* no IPv6, or no UDP table: not a refusal */
            note_unreadable(c->s, PROCSNAP_SRC_NET, errno);
        return;
    }
    for (;;) {
        ssize_t n = read(fd, buf + have, sizeof(buf) - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            note_unreadable(c->s, PROCSNAP_SRC_NET, errno);
            break;
        }
        if (n == 0)
            break;
        have += (size_t)n;
        total += (size_t)n;
        size_t start = 0;
        for (;;) {
            const char *nl = memchr(buf + start, '\n', have - start);
            if (nl == NULL)
                break;
            size_t llen = (size_t)(nl - (buf + start));
            if (!skipping)
                net_line(c->s, buf + start, llen, family, proto);
            skipping = false;
            start += llen + 1;
        }
        /* Keep the partial last line (a forward byte copy: the regions
         * overlap, and valgrind misreads the fortified memmove). */
        for (size_t k = start; k < have; k++)
            buf[k - start] = buf[k];
        have -= start;
        if (have == sizeof(buf)) { /* a line longer than the buffer: drop it */
            have = 0;
            skipping = true;
        }
        if (total > PROCSNAP_MAX_NET_BYTES || unmatched(c->s) == 0 || over_budget(c))
            break;
    }
    if (have > 0 && !skipping)
        net_line(c->s, buf, have, family, proto);
    close(fd);
}

static void read_sockets(struct ctx *c, int rootfd, const struct procsnap_opts *o)
{
    struct procsnap *s = c->s;
    bool tcp_done = false;
    char name[32];
    int pidfd;

    if (s->nsockets == 0)
        return;
    if (!o->no_pidfd && (o->proc_root == NULL || strcmp(o->proc_root, "/proc") == 0)) {
        uint8_t done[PROCSNAP_MAX_SOCKETS] = {0};
        int r = read_by_fd(c, done);
        if (r >= 0) {
            /* A socket closed since it was listed is left out; one not
             * reached (the budget) stays as listed.  Nothing is left for
             * the namespace's tables. */
            uint16_t n = 0;
            for (uint16_t i = 0; i < s->nsockets; i++) {
                if (done[i] == 2)
                    continue;
                if (n != i)
                    s->sockets[n] = s->sockets[i];
                n++;
            }
            s->nsockets = n;
            /* A connect in progress has no peer name yet (getpeername
             * says ENOTCONN in SYN_SENT): the kernel's table of sockets
             * in SYN_SENT, and only those, tells it. */
            bool connecting = false;
            for (uint16_t i = 0; i < s->nsockets; i++)
                connecting |= s->sockets[i].proto == IPPROTO_TCP &&
                              s->sockets[i].tcp_state == PROCSNAP_TCP_SYN_SENT &&
                              s->sockets[i].peer_port == 0;
            if (connecting && !o->no_sock_diag && !over_budget(c)) {
                int k = read_sock_diag(c, 1u << PROCSNAP_TCP_SYN_SENT);
                if (k < 0)
                    note_unreadable(s, PROCSNAP_SRC_SOCK_DIAG, -k);
            }
            return;
        }
    }
    if (!o->no_sock_diag) {
        int r = read_sock_diag(c, DIAG_HELD_STATES);
        if (r < 0)
            note_unreadable(s, PROCSNAP_SRC_SOCK_DIAG, -r);
        /* Matched nothing: perhaps the runtime is in another network
         * namespace; its own net/ tables tell. */
        else if (r > 0)
            tcp_done = true;
    }
    if (unmatched(s) == 0 || over_budget(c))
        return;
    /* The tables of the runtime's own network namespace. */
    snprintf(name, sizeof(name), "%d", (int)s->procs[0].pid);
    pidfd = open_dir(rootfd, name);
    if (pidfd < 0) {
        note_unreadable(s, PROCSNAP_SRC_NET, -pidfd);
        return;
    }
    if (!tcp_done) {
        read_net_table(c, pidfd, "net/tcp", AF_INET, IPPROTO_TCP);
        if (unmatched(s) > 0)
            read_net_table(c, pidfd, "net/tcp6", AF_INET6, IPPROTO_TCP);
    }
    if (unmatched(s) > 0)
        read_net_table(c, pidfd, "net/udp", AF_INET, IPPROTO_UDP);
    if (unmatched(s) > 0)
        read_net_table(c, pidfd, "net/udp6", AF_INET6, IPPROTO_UDP);
    close(pidfd);
}

/* ---- a peer left out (the Runtime API) ---- */

/* ::ffff:a.b.c.d, an IPv4 address in IPv6 clothes */
static const uint8_t V4_MAPPED[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int procsnap_parse_peer(const char *text, struct procsnap_peer *ret)
{
    struct procsnap_peer p;
    char host[64];
    const char *colon, *q;
    size_t hlen;
    uint64_t port = 0;

    if (text == NULL || ret == NULL || text[0] == '\0' || (colon = strrchr(text, ':')) == NULL)
        return -EINVAL;
    q = text;
    hlen = (size_t)(colon - text);
    if (text[0] == '[') {
        if (hlen < 2 || text[hlen - 1] != ']')
            return -EINVAL;
        q = text + 1;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= sizeof(host))
        return -EINVAL;
    memcpy(host, q, hlen);
    host[hlen] = '\0';
    for (q = colon + 1; *q >= '0' && *q <= '9' && port <= 65535; q++)
        port = port * 10 + (uint64_t)(*q - '0');
    if (q == colon + 1 || *q != '\0' || port == 0 || port > 65535)
        return -EINVAL;
    memset(&p, 0, sizeof(p));
    if (inet_pton(AF_INET, host, p.addr) == 1)
        p.family = AF_INET;
    else if (inet_pton(AF_INET6, host, p.addr) == 1)
        p.family = AF_INET6;
    else
        return -EINVAL;
    if (p.family == AF_INET6 && memcmp(p.addr, V4_MAPPED, sizeof(V4_MAPPED)) == 0) {
        /* an IPv4 address written as IPv6: compared in IPv4 terms */
        memmove(p.addr, p.addr + 12, 4);
        memset(p.addr + 4, 0, 12);
        p.family = AF_INET;
    }
    p.port = (uint16_t)port;
    *ret = p;
    return 0;
}

static bool is_peer(const struct procsnap_peer *p, const struct procsnap_socket *sk)
{
    if (sk->proto != IPPROTO_TCP || sk->peer_port != p->port)
        return false;
    if (sk->family == p->family)
        return memcmp(sk->peer_addr, p->addr, p->family == AF_INET ? 4 : 16) == 0;
    /* an IPv4 peer reached through an IPv6 socket */
    return p->family == AF_INET && sk->family == AF_INET6 &&
           memcmp(sk->peer_addr, V4_MAPPED, sizeof(V4_MAPPED)) == 0 &&
           memcmp(sk->peer_addr + 12, p->addr, 4) == 0;
}

void procsnap_leave_out_peer(struct procsnap *s, const struct procsnap_peer *p)
{
    uint16_t nsk = 0, nth = 0;
    bool gone[PROCSNAP_MAX_THREADS] = {false};

    if (s == NULL || p == NULL || p->port == 0)
        return;
    for (uint16_t i = 0; i < s->nsockets && i < PROCSNAP_MAX_SOCKETS; i++) {
        const struct procsnap_socket *sk = &s->sockets[i];
        if (is_peer(p, sk)) {
            for (uint16_t t = 0; t < s->nthreads && t < PROCSNAP_MAX_THREADS; t++)
                if (s->threads[t].proc == sk->proc && s->threads[t].syscall_nr >= 0 &&
                    s->threads[t].syscall_arg0 == (uint64_t)(int64_t)sk->fd)
                    gone[t] = true;
            s->ignored_sockets++;
            continue;
        }
        if (nsk != i)
            s->sockets[nsk] = *sk;
        nsk++;
    }
    s->nsockets = nsk;
    for (uint16_t t = 0; t < s->nthreads && t < PROCSNAP_MAX_THREADS; t++) {
        if (gone[t]) {
            s->ignored_threads++;
            continue;
        }
        if (nth != t)
            s->threads[nth] = s->threads[t];
        nth++;
    }
    s->nthreads = nth;
}

/* ---- take ---- */

static bool find_proc_pid(const struct procsnap *s, pid_t pid)
{
    for (uint16_t i = 0; i < s->nprocs; i++)
        if (s->procs[i].pid == pid)
            return true;
    return false;
}

/* The parent links to follow for descendants: o->links, or one scan of
 * the proc root into *scanned (NULL when the budget ran out first). */
static const struct procsnap_links *links_for(struct ctx *c, const struct procsnap_opts *o,
                                              struct procsnap_links *scanned)
{
    if (o->links != NULL)
        return o->links;
    if (over_budget(c))
        return NULL;
    struct scan_state sc = {.rootfd = c->rootfd, .links = scanned};
    scanned->n = 0;
    scanned->dropped = false;
    if (walk_numeric(c->rootfd, PROCSNAP_MAX_SCAN_PIDS, scan_one, &sc) < 0)
        c->s->partial = true;
    return scanned;
}

int procsnap_take(const struct procsnap_opts *o, struct procsnap *ret)
{
    struct procsnap_links scanned;
    const struct procsnap_links *lk;
    static const struct ctx zero_ctx;
    struct ctx c = zero_ctx;
    int rootfd;
    int64_t t0;

    if (o == NULL || ret == NULL || (o->roots == NULL && o->nroots > 0))
        return -EINVAL;
    memset(ret, 0, sizeof(*ret));
    for (size_t i = 0; i < PROCSNAP_SRC_COUNT; i++)
        ret->unreadable_errno[i] = 0;
    t0 = now_us(CLOCK_MONOTONIC);
    ret->taken_mono_us = t0;
    ret->taken_boot_us = now_us(CLOCK_BOOTTIME);
    ret->taken_epoch_us = now_us(CLOCK_REALTIME);
    ret->light = o->light;
    c.s = ret;
    c.deadline_mono_us = o->budget_us != 0 ? t0 + o->budget_us : 0;
    long pg = sysconf(_SC_PAGESIZE);
    c.page_bytes = pg > 0 ? (uint64_t)pg : 4096;
    rootfd = open_dir(AT_FDCWD, o->proc_root != NULL ? o->proc_root : "/proc");
    if (rootfd < 0) {
        note_unreadable(ret, PROCSNAP_SRC_STAT, -rootfd);
        return -ESRCH;
    }
    c.rootfd = rootfd;
    c.want_io = o->io;
    /* The roots first, each checked against its start time (pid reuse). */
    for (size_t i = 0; i < o->nroots; i++) {
        struct procsnap_stat st;
        int r = pid_stat(rootfd, o->roots[i].pid, &st);
        if (r < 0 || st.start_ticks != o->roots[i].start_ticks || st.state == 'X') {
            if (r < 0 && r != -ENOENT)
                note_unreadable(ret, PROCSNAP_SRC_STAT, -r);
            ret->partial = true;
            continue;
        }
        read_proc(&c, rootfd, &st, 0);
    }
    if (ret->nprocs == 0) {
        close(rootfd);
        ret->took_us = (uint32_t)(now_us(CLOCK_MONOTONIC) - t0);
        return -ESRCH;
    }
    /* Descendants, breadth first: from the children files read with the
     * threads (the list grows as children are read), or, when a children
     * file was missing, from the ppid links of one scan of proc_root (or
     * of the caller's, o->links). */
    /* (a light snapshot reads no children files: with opts.descendants
     * it follows the links) */
    bool scan = c.children_missing || (o->light && o->descendants);
    if (!o->light && !scan) {
        for (size_t k = 0; k < c.nkids && !over_budget(&c); k++) {
            struct procsnap_stat st;
            if (ret->nprocs >= PROCSNAP_MAX_PROCS) {
                ret->dropped_procs++;
                continue;
            }
            if (pid_stat(rootfd, c.kids[k].pid, &st) < 0 || st.ppid != c.kids[k].ppid ||
                find_proc_pid(ret, st.pid))
                continue;
            read_proc(&c, rootfd, &st, c.kids[k].depth);
        }
        /* A child's children file failed: its own children are unknown. */
        if (c.children_missing)
            ret->partial = true;
    }
    if ((!o->light || o->descendants) && scan && (lk = links_for(&c, o, &scanned)) != NULL) {
        if (lk->dropped)
            ret->partial = true;
        for (uint16_t pi = 0; pi < ret->nprocs && !over_budget(&c); pi++) {
            pid_t parent = ret->procs[pi].pid;
            for (size_t k = 0; k < lk->n && k < PROCSNAP_MAX_LINKS; k++) {
                struct procsnap_stat st;
                if (lk->links[k].ppid != parent || lk->links[k].pid == parent)
                    continue;
                if (ret->nprocs >= PROCSNAP_MAX_PROCS) {
                    ret->dropped_procs++;
                    continue;
                }
                /* Read again: the stat may have changed since the scan. */
                if (pid_stat(rootfd, lk->links[k].pid, &st) < 0 || st.ppid != parent ||
                    find_proc_pid(ret, st.pid))
                    continue;
                read_proc(&c, rootfd, &st,
                          (uint8_t)(ret->procs[pi].depth < 254 ? ret->procs[pi].depth + 1 : 255));
            }
        }
    }
    if (!o->light && !over_budget(&c))
        read_sockets(&c, rootfd, o);
    if (o->ignore_peer != NULL)
        procsnap_leave_out_peer(ret, o->ignore_peer);
    close(rootfd);
    ret->took_us = (uint32_t)(now_us(CLOCK_MONOTONIC) - t0);
    return 0;
}

/* ------------------------------------------------------------------ */
/* diagnosis                                                          */

struct cause {
    enum procsnap_wait wait;
    int thread;           /* index into threads, or -1 */
    int sock;             /* index into sockets, or -1 */
    int child;            /* index into procs, or -1 */
    const char *what;     /* syscall or wchan name, or NULL */
    bool in_read;         /* a thread is blocked reading that socket */
    bool in_write;        /* ... or writing to it */
    bool in_poll;         /* a thread waits in epoll/poll/select */
    int64_t wait_us;      /* how long, -1 unknown */
    int score;
};

struct cpu_view {
    int64_t age_us;       /* since the invocation started, -1 unknown */
    int64_t cpu_us;       /* process CPU in the window */
    bool since_start;     /* cpu_us is since the start snapshot */
    bool late_start;      /* ... taken well after the invocation started
                           * (the slow sampler's first): window_us says */
    int64_t window_us;    /* the time cpu_us was counted over, -1 unknown */
    bool per_thread;      /* thread CPU deltas are since start */
    unsigned running;     /* threads in state R */
    unsigned busy_threads;/* threads that used >= 10% of the CPU */
    int64_t runq_us;      /* threads' time runnable without a CPU in the
                           * window (0 without a full start snapshot) */
};

static const struct procsnap_proc *find_proc(const struct procsnap *s, pid_t pid,
                                             uint64_t start_ticks)
{
    for (uint16_t i = 0; i < s->nprocs; i++)
        if (s->procs[i].pid == pid && s->procs[i].start_ticks == start_ticks)
            return &s->procs[i];
    return NULL;
}

/* t's own entry in the start snapshot: NULL when it was born since (or
 * the start is light or absent). */
static const struct procsnap_thread *start_thread(const struct procsnap *start, const struct procsnap *now,
                                                  const struct procsnap_thread *t)
{
    const struct procsnap_proc *p = &now->procs[t->proc];

    if (start == NULL || start->light)
        return NULL;
    for (uint16_t i = 0; i < start->nthreads; i++) {
        const struct procsnap_thread *o = &start->threads[i];
        if (o->tid == t->tid && o->proc < start->nprocs && start->procs[o->proc].pid == p->pid &&
            start->procs[o->proc].start_ticks == p->start_ticks)
            return o;
    }
    return NULL;
}

static uint64_t delta_since(uint64_t now, uint64_t then)
{
    return now >= then ? now - then : 0;
}

static uint64_t thread_cpu_delta(const struct procsnap *start, const struct procsnap *now,
                                 const struct procsnap_thread *t)
{
    const struct procsnap_thread *o = start_thread(start, now, t);

    return o != NULL ? delta_since(t->cpu_us, o->cpu_us) : t->cpu_us;
}

/* Time t spent runnable without a CPU in the window: 0 when not known at
 * both ends (a thread born since counts from its birth). */
static uint64_t thread_runq_delta(const struct procsnap *start, const struct procsnap *now,
                                  const struct procsnap_thread *t)
{
    const struct procsnap_thread *o = start_thread(start, now, t);

    if (!t->has_runq || start == NULL || start->light)
        return 0;
    if (o == NULL)
        return t->runq_us;
    return o->has_runq ? delta_since(t->runq_us, o->runq_us) : 0;
}

static void cpu_view(const struct procsnap *start, const struct procsnap *now,
                     int64_t inv_start_us, struct cpu_view *v)
{
    uint64_t total = 0, runq = 0;

    memset(v, 0, sizeof(*v));
    v->age_us = inv_start_us > 0 && now->taken_mono_us >= inv_start_us
                    ? now->taken_mono_us - inv_start_us
                    : -1;
    v->since_start = start != NULL;
    v->per_thread = start != NULL && !start->light;
    v->window_us = v->age_us;
    if (start != NULL && start->taken_mono_us > 0 && now->taken_mono_us > start->taken_mono_us) {
        int64_t w = now->taken_mono_us - start->taken_mono_us;
        if (v->age_us < 0 || w + LATE_START_US < v->age_us) {
            v->window_us = w;
            v->late_start = true;
        }
    }
    for (uint16_t i = 0; i < now->nprocs; i++) {
        const struct procsnap_proc *p = &now->procs[i];
        const struct procsnap_proc *o = start != NULL ? find_proc(start, p->pid, p->start_ticks)
                                                      : NULL;
        if (o != NULL)
            total += p->cpu_us >= o->cpu_us ? p->cpu_us - o->cpu_us : 0;
        else
            total += p->cpu_us;
    }
    v->cpu_us = total > INT64_MAX ? INT64_MAX : (int64_t)total;
    for (uint16_t i = 0; i < now->nthreads; i++) {
        uint64_t d = thread_cpu_delta(start, now, &now->threads[i]);
        if (now->threads[i].state == 'R')
            v->running++;
        if (d > 0 && d * 10 >= total)
            v->busy_threads++;
        runq += thread_runq_delta(start, now, &now->threads[i]);
    }
    v->runq_us = runq > INT64_MAX ? INT64_MAX : (int64_t)runq;
}

static int sock_by_fd(const struct procsnap *s, uint8_t proc, uint64_t fd)
{
    for (uint16_t i = 0; i < s->nsockets; i++)
        if (s->sockets[i].proc == proc && (uint64_t)s->sockets[i].fd == fd)
            return i;
    return -1;
}

static const struct procsnap_socket *same_socket(const struct procsnap *s,
                                                 const struct procsnap_socket *sk)
{
    if (s == NULL)
        return NULL;
    for (uint16_t i = 0; i < s->nsockets; i++)
        if (s->sockets[i].inode == sk->inode && s->sockets[i].fd == sk->fd)
            return &s->sockets[i];
    return NULL;
}

/* Request sent within this invocation, no answer since: the last send
 * lies within the invocation and then either the last receive is older
 * than it, or nothing was ever received on the connection, or (with a
 * start snapshot) bytes were sent since it and none received.  Those are
 * AWAIT_CLEAR.  tcp_info times are in ms of jiffies, so a connect and a
 * send in the same tick read as equal ages: the byte counters settle those.
 * But an answer received in the same tick as its request (a pooled
 * connection's ping on loopback) reads the same as a request sent right
 * after the previous answer; when nothing was received since the start
 * snapshot either (which is the slow sampler's first look, not the
 * invocation's start: the answer may have come before it) that is only
 * AWAIT_SAME_TICK, which never outranks a clear one and counts only while
 * a thread waits on a poll set (classify). */
enum await_kind { AWAIT_NONE, AWAIT_SAME_TICK, AWAIT_CLEAR };

static enum await_kind awaiting_answer(const struct procsnap *start, const struct procsnap_socket *sk,
                                       int64_t age_us)
{
    const struct procsnap_socket *o;

    if (!sk->has_info || sk->proto != IPPROTO_TCP || sk->tcp_state != PROCSNAP_TCP_ESTABLISHED)
        return AWAIT_NONE;
    if (age_us >= 0 && (int64_t)sk->last_data_sent_ms * 1000 > age_us + TCP_CLOCK_SLACK_US)
        return AWAIT_NONE;
    if (sk->last_data_recv_ms > sk->last_data_sent_ms)
        return AWAIT_CLEAR;
    if (sk->has_bytes && sk->bytes_received == 0 && sk->bytes_acked + sk->tx_queue > 0)
        return AWAIT_CLEAR;
    o = same_socket(start, sk);
    if (o == NULL || !sk->has_bytes || !o->has_bytes || o->bytes_received != sk->bytes_received ||
        sk->last_data_recv_ms < sk->last_data_sent_ms)
        return AWAIT_NONE;
    return sk->bytes_acked + sk->tx_queue > o->bytes_acked + o->tx_queue ? AWAIT_CLEAR : AWAIT_SAME_TICK;
}

static void consider(struct cause *best, const struct cause *c)
{
    if (c->score > best->score)
        *best = *c;
}

static void classify(const struct procsnap *start, const struct procsnap *now,
                     const struct cpu_view *v, struct cause *best)
{
    bool any_poll = false;

    memset(best, 0, sizeof(*best));
    best->wait = PROCSNAP_WAIT_OTHER;
    best->thread = best->sock = best->child = -1;
    best->wait_us = -1;
    /* Busy needs a thread on CPU now: a process that burnt its CPU and
     * then blocked is diagnosed by the block (with the CPU in the tail).
     * The runtime's main thread on CPU is busy unless it used under 10%
     * of the window (a blip; a 128 MB function gets about 8% of a vCPU,
     * so it still outranks the vague waits); another thread on CPU is
     * busy when the process used half the window (on a CPU, or runnable
     * and waiting for one: a loop starved by other work), or, without a start
     * mark, outranks only the vague waits (sleep, poll, lock) of helper
     * threads (GC, libuv, sanitizers). */
    bool main_running = false;
    for (uint16_t i = 0; i < now->nthreads; i++) {
        const struct procsnap_thread *t = &now->threads[i];
        if (t->state == 'R' && t->tid == now->procs[t->proc].pid && now->procs[t->proc].depth == 0)
            main_running = true;
    }
    bool windowed = v->since_start && v->window_us > 0;
    if (v->running > 0 && windowed && (v->cpu_us + v->runq_us) * 2 >= v->window_us)
        best->score = 200;
    else if (main_running && (!windowed || v->cpu_us * 10 >= v->window_us))
        best->score = 150;
    else if (main_running && v->cpu_us * 100 < v->window_us)
        best->score = 12; /* just woken (under 1%): no loop; any wait known outranks it */
    else if (main_running || (v->running > 0 && !windowed))
        best->score = 55;
    if (best->score > 0)
        best->wait = PROCSNAP_WAIT_CPU;

    for (uint16_t i = 0; i < now->nthreads; i++) {
        const struct procsnap_thread *t = &now->threads[i];
        const struct procsnap_proc *p = &now->procs[t->proc];
        const struct sys_entry *e = NULL;
        enum sys_kind k = SYS_K_NONE;
        struct cause c = {.thread = i, .sock = -1, .child = -1, .wait_us = -1};
        int main_bonus = t->tid == p->pid && p->depth == 0 ? 2 : 0;

        if (t->state == 'R' || t->state == 'Z' || t->state == 'X')
            continue;
        if (t->syscall_nr >= 0) {
            e = sys_lookup(t->syscall_nr);
            if (e != NULL)
                k = e->kind, c.what = e->name;
        } else if (t->wchan[0] != '\0') {
            k = wchan_kind(t->wchan);
            c.what = t->wchan;
        }
        if (t->state == 'D') {
            c.wait = PROCSNAP_WAIT_DISK;
            c.score = 45 + main_bonus;
            consider(best, &c);
        }
        switch (k) {
        case SYS_K_CONNECT:
            c.wait = PROCSNAP_WAIT_CONNECT;
            c.sock = e != NULL ? sock_by_fd(now, t->proc, t->syscall_arg0) : -1;
            c.score = 100 + main_bonus;
            break;
        case SYS_K_READ:
        case SYS_K_WRITE:
            c.sock = e != NULL ? sock_by_fd(now, t->proc, t->syscall_arg0) : -1;
            if (c.sock >= 0 && now->sockets[c.sock].proto != 0) {
                c.wait = PROCSNAP_WAIT_SOCKET;
                c.in_read = k == SYS_K_READ;
                c.in_write = k == SYS_K_WRITE;
                c.score = 90 + main_bonus;
            } else if (e == NULL) { /* from wchan: a socket, fd unknown */
                c.wait = PROCSNAP_WAIT_SOCKET;
                c.in_read = k == SYS_K_READ;
                c.in_write = k == SYS_K_WRITE;
                c.sock = -1;
                c.score = 60 + main_bonus;
            } else {
                c.wait = PROCSNAP_WAIT_OTHER;
                c.sock = -1;
                c.score = 35 + main_bonus;
            }
            break;
        case SYS_K_CHILD:
            c.wait = PROCSNAP_WAIT_CHILD;
            c.score = 85 + main_bonus;
            for (uint16_t j = 0; j < now->nprocs; j++) {
                const struct procsnap_proc *ch = &now->procs[j];
                if (ch->ppid != p->pid || j == t->proc)
                    continue;
                if (e != NULL && e->nr != 0 && (int64_t)(int32_t)t->syscall_arg0 > 0 &&
                    ch->pid != (pid_t)(int32_t)t->syscall_arg0)
                    continue;
                c.child = j;
                break;
            }
            break;
        case SYS_K_SLEEP:
            c.wait = PROCSNAP_WAIT_SLEEP;
            c.score = 50 + main_bonus;
            break;
        case SYS_K_POLL:
            any_poll = true;
            c.wait = PROCSNAP_WAIT_POLL;
            c.score = 20 + main_bonus;
            break;
        case SYS_K_LOCK:
            c.wait = PROCSNAP_WAIT_LOCK;
            c.score = 10 + main_bonus;
            break;
        case SYS_K_ACCEPT:
            c.wait = PROCSNAP_WAIT_OTHER;
            c.score = 15 + main_bonus;
            break;
        case SYS_K_NONE:
            continue;
        }
        consider(best, &c);
    }

    /* The sockets: a connect in progress (non-blocking, as Node does), or
     * a request sent in this invocation with no answer since. */
    for (uint16_t i = 0; i < now->nsockets; i++) {
        const struct procsnap_socket *sk = &now->sockets[i];
        struct cause c = {.thread = -1, .sock = i, .child = -1, .wait_us = -1};

        if (sk->proto == IPPROTO_TCP && sk->tcp_state == PROCSNAP_TCP_SYN_SENT) {
            c.wait = PROCSNAP_WAIT_CONNECT;
            c.score = 95;
            consider(best, &c);
        } else {
            enum await_kind a = awaiting_answer(start, sk, v->age_us);
            /* A same-tick case is only a guess, worth making when some
             * thread waits on a poll set (which socket it waits on cannot
             * be read): with every thread running, asleep or between
             * calls, a pooled connection answered long ago is no cause. */
            if (a == AWAIT_NONE || (a == AWAIT_SAME_TICK && !any_poll))
                continue;
            c.wait = PROCSNAP_WAIT_SOCKET;
            /* A clear case before a same-tick one; among equals the
             * longest outstanding request wins. */
            c.score = a == AWAIT_CLEAR ? 70 : 67;
            if (best->score == c.score && best->sock >= 0 &&
                now->sockets[best->sock].last_data_sent_ms >= sk->last_data_sent_ms)
                continue;
            if (best->score == c.score)
                best->score = c.score - 1;
            consider(best, &c);
        }
    }
    best->in_poll = any_poll;
    /* A socket wait found from a thread without an fd (wchan only): the
     * timing rule names the socket if one matches. */
    if (best->wait == PROCSNAP_WAIT_SOCKET && best->sock < 0) {
        enum await_kind best_a = AWAIT_NONE;
        for (uint16_t i = 0; i < now->nsockets; i++) {
            enum await_kind a = awaiting_answer(start, &now->sockets[i], v->age_us);
            if (a != AWAIT_NONE &&
                (a > best_a || (a == best_a && now->sockets[i].last_data_sent_ms >
                                                   now->sockets[best->sock].last_data_sent_ms))) {
                best->sock = i;
                best_a = a;
            }
        }
    }
    /* How long. */
    if (best->sock >= 0 && now->sockets[best->sock].has_info &&
        best->wait == PROCSNAP_WAIT_SOCKET) {
        int64_t w = (int64_t)now->sockets[best->sock].last_data_sent_ms * 1000;
        best->wait_us = v->age_us >= 0 && w > v->age_us ? v->age_us : w;
    } else if (best->wait == PROCSNAP_WAIT_CHILD && best->child >= 0) {
        long hz = sysconf(_SC_CLK_TCK);
        int64_t born = (int64_t)ticks_to_us(now->procs[best->child].start_ticks);
        int64_t w = now->taken_boot_us - born;
        (void)hz;
        if (w < 0)
            w = 0;
        best->wait_us = v->age_us >= 0 && w > v->age_us ? v->age_us : w;
    } else if (v->age_us >= 0) {
        int64_t w = v->age_us - (v->since_start ? v->cpu_us : 0);
        best->wait_us = w > 0 ? w : 0;
    }
}

static void fmt_secs(char *out, size_t size, int64_t us)
{
    double s = (double)us / 1e6;

    if (us >= 10000000)
        snprintf(out, size, "%.0f s", s);
    else if (us >= 1000000)
        snprintf(out, size, "%.1f s", s);
    else
        snprintf(out, size, "%.2f s", s);
}

/* Printable ASCII copy of a comm for a sentence. */
static void clean_comm(char *out, const char *comm)
{
    size_t i;

    for (i = 0; i < PROCSNAP_COMM_BYTES - 1 && comm[i] != '\0'; i++) {
        char ch = comm[i];
        if (ch < ' ' || ch >= 0x7f)
            ch = '?';
        out[i] = ch;
    }
    out[i] = '\0';
}

/* "10.0.3.17:5432 (PostgreSQL, established)" */
static void fmt_peer(char *out, size_t size, const struct procsnap_socket *sk, bool with_state)
{
    char addr[64];
    const char *svc = procsnap_port_name(sk->peer_port);

    procsnap_format_addr(sk, true, addr, sizeof(addr));
    if (sk->proto == 0)
        snprintf(out, size, "fd %d (not an inet socket)", (int)sk->fd);
    else if (svc != NULL && with_state && sk->proto == IPPROTO_TCP)
        snprintf(out, size, "%s (%s, %s)", addr, svc, procsnap_tcp_state_name(sk->tcp_state));
    else if (svc != NULL)
        snprintf(out, size, "%s (%s)", addr, svc);
    else if (with_state && sk->proto == IPPROTO_TCP)
        snprintf(out, size, "%s (%s)", addr, procsnap_tcp_state_name(sk->tcp_state));
    else
        snprintf(out, size, "%s%s", addr, sk->proto == IPPROTO_UDP ? " (udp)" : "");
}

static void unreadable_list(const struct procsnap *s, char *out, size_t size)
{
    static const char *const names[PROCSNAP_SRC_COUNT] = {
        "stat", "task", "cmdline", "syscall", "wchan", "fd", "net", "sock_diag", "io"};
    size_t off = 0;

    out[0] = '\0';
    for (int i = 0; i < PROCSNAP_SRC_COUNT; i++) {
        if ((s->unreadable & (1u << i)) == 0)
            continue;
        int n = snprintf(out + off, size - off, "%s%s", off ? ", " : "", names[i]);
        if (n < 0 || (size_t)n >= size - off)
            break;
        off += (size_t)n;
    }
}

void procsnap_diagnose(const struct procsnap *start, const struct procsnap *now,
                       int64_t invocation_start_mono_us, char *sentence, size_t size)
{
    struct cpu_view v;
    struct cause c;
    char dur[32], cpu[32], peer[128], tail[96], unr[96];
    const char *since;

    if (sentence == NULL || size == 0)
        return;
    if (now == NULL || now->nprocs == 0) {
        snprintf(sentence, size, "no snapshot of the runtime could be taken");
        return;
    }
    cpu_view(start, now, invocation_start_mono_us, &v);
    classify(start, now, &v, &c);
    fmt_secs(dur, sizeof(dur), c.wait_us);
    snprintf(cpu, sizeof(cpu), "%.2f s", (double)v.cpu_us / 1e6);
    since = v.since_start ? "" : " since the process started";
    if (v.late_start) {
        char win[32];
        fmt_secs(win, sizeof(win), v.window_us);
        snprintf(tail, sizeof(tail), "; %s of CPU in the last %s", cpu, win);
    } else {
        snprintf(tail, sizeof(tail), "; %s of CPU used%s", cpu, since);
    }
    if (c.wait_us < 0)
        dur[0] = '\0';

    switch (c.wait) {
    case PROCSNAP_WAIT_CPU: {
        char threads[48];
        unsigned n = v.per_thread ? v.busy_threads : v.running;
        if (v.since_start && v.window_us > 0 && v.cpu_us * 100 < v.window_us) {
            /* caught the instant it woke (an answer, a timer, a fatal
             * signal): what it waited on before is not known */
            char wall[32];
            fmt_secs(wall, sizeof(wall), v.window_us);
            snprintf(sentence, size, "on CPU at this instant after %s of CPU in %s%s (just woken from a wait?)",
                     cpu, v.late_start ? "the last " : "", wall);
            return;
        }
        if (n <= 1)
            snprintf(threads, sizeof(threads), "on one thread (a loop?)");
        else
            snprintf(threads, sizeof(threads), "on %u threads", n);
        if (v.since_start && v.window_us >= 0) {
            char wall[32], starved[64] = "";
            fmt_secs(wall, sizeof(wall), v.window_us);
            if (v.runq_us * 10 >= v.window_us && v.window_us > 0)
                snprintf(starved, sizeof(starved), ", and %.2f s more waiting for a CPU",
                         (double)v.runq_us / 1e6);
            snprintf(sentence, size, "busy: %s of CPU in %s%s %s%s", cpu, v.late_start ? "the last " : "",
                     wall, threads, starved);
        } else {
            snprintf(sentence, size, "busy: running %s; %s of CPU used%s", threads, cpu, since);
        }
        return;
    }
    case PROCSNAP_WAIT_SOCKET:
        if (c.sock >= 0)
            fmt_peer(peer, sizeof(peer), &now->sockets[c.sock], true);
        else
            snprintf(peer, sizeof(peer), "a socket (which one is not readable)");
        if (c.in_write)
            snprintf(sentence, size, "blocked%s%s sending to %s%s", dur[0] ? " " : "", dur,
                     peer, tail);
        else if (c.in_read)
            snprintf(sentence, size, "waiting%s%s in a socket read from %s%s", dur[0] ? " " : "",
                     dur, peer, tail);
        else
            snprintf(sentence, size, "waiting%s%s for an answer from %s%s%s%s", dur[0] ? " " : "",
                     dur, peer, c.in_poll ? " in " : "", c.in_poll ? "epoll_wait/poll" : "",
                     tail);
        return;
    case PROCSNAP_WAIT_CONNECT:
        if (c.sock >= 0)
            fmt_peer(peer, sizeof(peer), &now->sockets[c.sock], false);
        else
            snprintf(peer, sizeof(peer), "an unknown peer");
        snprintf(sentence, size, "connecting to %s%s%s%s", peer, dur[0] ? " for " : "", dur, tail);
        return;
    case PROCSNAP_WAIT_CHILD:
        if (c.child >= 0) {
            char comm[PROCSNAP_COMM_BYTES];
            clean_comm(comm, now->procs[c.child].comm);
            snprintf(sentence, size, "waiting on child process %d (%s)%s%s%s",
                     (int)now->procs[c.child].pid, comm, dur[0] ? " for " : "", dur, tail);
        } else {
            snprintf(sentence, size, "waiting on a child process%s%s%s", dur[0] ? " for " : "",
                     dur, tail);
        }
        return;
    case PROCSNAP_WAIT_SLEEP:
        snprintf(sentence, size, "sleeping (%s)%s%s%s", c.what != NULL ? c.what : "sleep",
                 dur[0] ? " for " : "", dur, tail);
        return;
    case PROCSNAP_WAIT_DISK:
        snprintf(sentence, size, "in disk wait (D state%s%s)%s%s%s", c.what ? ", " : "",
                 c.what ? c.what : "", dur[0] ? " for " : "", dur, tail);
        return;
    case PROCSNAP_WAIT_POLL: {
        unsigned conns = 0;
        for (uint16_t i = 0; i < now->nsockets; i++)
            conns += now->sockets[i].proto == IPPROTO_TCP &&
                     now->sockets[i].tcp_state == PROCSNAP_TCP_ESTABLISHED;
        bool info = now->nsockets > 0 && !(now->unreadable & (1u << PROCSNAP_SRC_SOCK_DIAG)) &&
                    !(now->unreadable & (1u << PROCSNAP_SRC_FD));
        snprintf(sentence, size, "waiting in %s with %s on %u open connection%s%s",
                 c.what != NULL ? c.what : "poll",
                 info ? "no request outstanding" : "nothing known to be outstanding", conns,
                 conns == 1 ? "" : "s", tail);
        return;
    }
    case PROCSNAP_WAIT_LOCK:
        snprintf(sentence, size, "waiting on a lock or condition (%s)%s%s%s",
                 c.what != NULL ? c.what : "futex", dur[0] ? " for " : "", dur, tail);
        return;
    case PROCSNAP_WAIT_OTHER:
    case PROCSNAP_WAIT_COUNT:
        break;
    }
    if (c.thread >= 0 && c.what != NULL) {
        const struct procsnap_thread *t = &now->threads[c.thread];
        if (t->syscall_nr >= 0 && (c.what[0] == 'r' || c.what[0] == 'w'))
            snprintf(sentence, size, "waiting in %s on fd %d (not an inet socket)%s", c.what,
                     (int)t->syscall_arg0, tail);
        else
            snprintf(sentence, size, "waiting in %s%s", c.what, tail);
        return;
    }
    unreadable_list(now, unr, sizeof(unr));
    snprintf(sentence, size, "no cause found (%u thread%s, none in a known wait%s%s)%s",
             (unsigned)now->nthreads, now->nthreads == 1 ? "" : "s", unr[0] ? "; not readable: " : "",
             unr, tail);
}

/* ------------------------------------------------------------------ */
/* where the time went                                                */

void procsnap_share_init(struct procsnap_share *s)
{
    if (s != NULL)
        memset(s, 0, sizeof(*s));
}

static void share_put(struct procsnap_share *s, enum procsnap_wait w, const char *label,
                      int64_t us)
{
    uint16_t i;

    if (us <= 0)
        return;
    for (i = 0; i < s->n; i++)
        if (s->entries[i].wait == w && strcmp(s->entries[i].label, label) == 0)
            break;
    if (i == s->n) {
        if (s->n == PROCSNAP_SHARE_MAX_ENTRIES) {
            /* Full: the last entry becomes (or stays) "other". */
            i = PROCSNAP_SHARE_MAX_ENTRIES - 1;
            s->entries[i].wait = PROCSNAP_WAIT_OTHER;
            snprintf(s->entries[i].label, sizeof(s->entries[i].label), "other");
        } else {
            s->n++;
            s->entries[i].wait = (uint8_t)w;
            snprintf(s->entries[i].label, sizeof(s->entries[i].label), "%s", label);
            s->entries[i].us = 0;
        }
    }
    s->entries[i].us += us;
}

static void wait_label(const struct procsnap *now, const struct cause *c, char *out, size_t size)
{
    char peer[96];

    switch (c->wait) {
    /* Busy, yet off CPU: runnable and waiting for a CPU (a fractional
     * Lambda vCPU, or a loaded host), or short waits between snapshots. */
    case PROCSNAP_WAIT_CPU: snprintf(out, size, "runnable, waiting for a CPU"); return;
    case PROCSNAP_WAIT_SOCKET:
    case PROCSNAP_WAIT_CONNECT:
        if (c->sock >= 0)
            fmt_peer(peer, sizeof(peer), &now->sockets[c->sock], false);
        else
            snprintf(peer, sizeof(peer), "a socket");
        /* A long IPv6 peer may be cut: the label is for people. */
        if (snprintf(out, size, "%s %s",
                     c->wait == PROCSNAP_WAIT_CONNECT ? "connecting to" : "waiting on",
                     peer) >= (int)size)
            out[size - 1] = '\0';
        return;
    case PROCSNAP_WAIT_SLEEP: snprintf(out, size, "sleeping"); return;
    case PROCSNAP_WAIT_CHILD: snprintf(out, size, "waiting on a child process"); return;
    case PROCSNAP_WAIT_LOCK: snprintf(out, size, "waiting on a lock"); return;
    case PROCSNAP_WAIT_DISK: snprintf(out, size, "in disk wait"); return;
    case PROCSNAP_WAIT_POLL: snprintf(out, size, "idle in %s", c->what ? c->what : "poll"); return;
    case PROCSNAP_WAIT_OTHER:
    case PROCSNAP_WAIT_COUNT: break;
    }
    snprintf(out, size, "other waits");
}

void procsnap_share_add(struct procsnap_share *s, const struct procsnap *prev,
                        const struct procsnap *cur, int64_t invocation_start_mono_us)
{
    struct cpu_view v;
    struct cause c;
    char label[PROCSNAP_SHARE_LABEL_BYTES];
    int64_t wall, cpu;

    if (s == NULL || prev == NULL || cur == NULL || cur->nprocs == 0 ||
        cur->taken_mono_us <= prev->taken_mono_us)
        return;
    wall = cur->taken_mono_us - prev->taken_mono_us;
    cpu_view(prev, cur, invocation_start_mono_us, &v);
    /* The interval's own CPU, and its cause from the later snapshot. */
    cpu = v.cpu_us < wall ? v.cpu_us : wall;
    v.age_us = wall;
    classify(prev, cur, &v, &c);
    /* Within the interval, a socket's last send must lie inside the
     * invocation, not the interval: classify again with the real age
     * when that finds nothing better. */
    if (c.wait != PROCSNAP_WAIT_SOCKET && invocation_start_mono_us > 0) {
        struct cpu_view v2 = v;
        struct cause c2;
        v2.age_us = cur->taken_mono_us - invocation_start_mono_us;
        classify(prev, cur, &v2, &c2);
        if (c2.wait == PROCSNAP_WAIT_SOCKET)
            c = c2;
    }
    s->wall_us += wall;
    s->cpu_us += cpu;
    s->snapshots++;
    share_put(s, PROCSNAP_WAIT_CPU, "CPU", cpu);
    wait_label(cur, &c, label, sizeof(label));
    share_put(s, c.wait == PROCSNAP_WAIT_CPU ? PROCSNAP_WAIT_OTHER : c.wait, label, wall - cpu);
}

void procsnap_share_summary(const struct procsnap_share *s, char *sentence, size_t size)
{
    uint16_t order[PROCSNAP_SHARE_MAX_ENTRIES];
    char secs[32];
    size_t off;
    int n;

    if (sentence == NULL || size == 0)
        return;
    sentence[0] = '\0';
    if (s == NULL || s->wall_us <= 0) {
        snprintf(sentence, size, "no interval between snapshots");
        return;
    }
    for (uint16_t i = 0; i < PROCSNAP_SHARE_MAX_ENTRIES; i++)
        order[i] = i;
    for (uint16_t i = 1; i < s->n; i++) /* insertion sort, largest first */
        for (uint16_t j = i; j > 0 && s->entries[order[j]].us > s->entries[order[j - 1]].us; j--) {
            uint16_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    fmt_secs(secs, sizeof(secs), s->wall_us);
    n = snprintf(sentence, size, "%s:", secs);
    off = n > 0 && (size_t)n < size ? (size_t)n : size - 1;
    for (uint16_t i = 0; i < s->n && off < size - 1; i++) {
        const struct procsnap_share_entry *e = &s->entries[order[i]];
        long pct = (long)((e->us * 100 + s->wall_us / 2) / s->wall_us);
        n = snprintf(sentence + off, size - off, "%s %ld%% %s", i ? "," : "", pct, e->label);
        off = n > 0 && (size_t)n < size - off ? off + (size_t)n : size - 1;
    }
    if (off < size - 1)
        snprintf(sentence + off, size - off, " (%u snapshots)", (unsigned)s->snapshots + 1);
}

/* ------------------------------------------------------------------ */
/* JSON                                                               */

/* s is a NUL-terminated array of at most cap bytes. */
static int json_str(struct buf *b, const char *s, size_t cap)
{
    return buf_append_json_string(b, s, strnlen(s, cap));
}

static int json_socket(struct buf *b, const struct procsnap_socket *sk)
{
    char addr[64];
    const char *svc = procsnap_port_name(sk->peer_port);
    int r;

    r = buf_printf(b, "{\"fd\":%d,\"inode\":%llu,\"proto\":\"%s\"", (int)sk->fd,
                   (unsigned long long)sk->inode,
                   sk->proto == IPPROTO_TCP ? "tcp" : sk->proto == IPPROTO_UDP ? "udp" : "other");
    if (r < 0 || sk->proto == 0)
        return r < 0 ? r : buf_append_str(b, "}");
    procsnap_format_addr(sk, false, addr, sizeof(addr));
    if ((r = buf_append_str(b, ",\"local\":")) < 0 || (r = json_str(b, addr, sizeof(addr))) < 0)
        return r;
    procsnap_format_addr(sk, true, addr, sizeof(addr));
    if ((r = buf_append_str(b, ",\"peer\":")) < 0 || (r = json_str(b, addr, sizeof(addr))) < 0)
        return r;
    if (svc != NULL && ((r = buf_append_str(b, ",\"service\":")) < 0 || (r = json_str(b, svc, 64)) < 0))
        return r;
    if (sk->proto == IPPROTO_TCP &&
        (r = buf_printf(b, ",\"state\":\"%s\"", procsnap_tcp_state_name(sk->tcp_state))) < 0)
        return r;
    r = buf_printf(b, ",\"tx_queue\":%u,\"rx_queue\":%u", sk->tx_queue, sk->rx_queue);
    if (r == 0 && sk->has_info)
        r = buf_printf(b,
                       ",\"last_send_ms\":%u,\"last_recv_ms\":%u,\"last_ack_ms\":%u,"
                       "\"unacked\":%u,\"retransmits\":%u,\"total_retrans\":%u,\"rtt_us\":%u",
                       sk->last_data_sent_ms, sk->last_data_recv_ms, sk->last_ack_recv_ms,
                       sk->unacked, sk->retransmits, sk->total_retrans, sk->rtt_us);
    return r < 0 ? r : buf_append_str(b, "}");
}

static int json_thread(struct buf *b, const struct procsnap *start, const struct procsnap *s,
                       const struct procsnap_thread *t)
{
    char st[2] = {t->state, '\0'};
    int r;

    if ((r = buf_printf(b, "{\"tid\":%d,\"comm\":", (int)t->tid)) < 0 ||
        (r = json_str(b, t->comm, sizeof(t->comm))) < 0 || (r = buf_append_str(b, ",\"state\":")) < 0 ||
        (r = buf_append_json_string(b, st, 1)) < 0 ||
        (r = buf_printf(b, ",\"cpu_us\":%llu", (unsigned long long)t->cpu_us)) < 0)
        return r;
    if (start != NULL && !start->light &&
        (r = buf_printf(b, ",\"cpu_since_start_us\":%llu",
                        (unsigned long long)thread_cpu_delta(start, s, t))) < 0)
        return r;
    if (t->syscall_nr >= 0) {
        const char *name = procsnap_syscall_name(t->syscall_nr);
        if (name != NULL)
            r = buf_printf(b, ",\"syscall\":\"%s\"", name);
        else
            r = buf_printf(b, ",\"syscall\":%d", (int)t->syscall_nr);
        if (r == 0)
            r = buf_printf(b, ",\"arg0\":%llu", (unsigned long long)t->syscall_arg0);
        if (r < 0)
            return r;
    } else if (t->syscall_nr == PROCSNAP_SYSCALL_NONE &&
               (r = buf_append_str(b, ",\"syscall\":\"none\"")) < 0) {
        return r;
    }
    if (t->wchan[0] != '\0' &&
        ((r = buf_append_str(b, ",\"wchan\":")) < 0 || (r = json_str(b, t->wchan, sizeof(t->wchan))) < 0))
        return r;
    return buf_append_str(b, "}");
}

/* The errno's symbolic name (musl, used for the release build, has no
 * strerrorname_np). */
static const char *errno_name(int e)
{
    switch (e) {
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case ESRCH: return "ESRCH";
    case EPROTO: return "EPROTO";
    case EIO: return "EIO";
    case EINVAL: return "EINVAL";
    case E2BIG: return "E2BIG";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case ENOMEM: return "ENOMEM";
    case ENOBUFS: return "ENOBUFS";
    case ENOTDIR: return "ENOTDIR";
    case ELOOP: return "ELOOP";
    default: return "error";
    }
}

static int json_body(const struct procsnap *s, const struct procsnap *start, struct buf *b)
{
    static const char *const names[PROCSNAP_SRC_COUNT] = {
        "stat", "task", "cmdline", "syscall", "wchan", "fd", "net", "sock_diag", "io"};
    int r;

    r = buf_printf(b, "{\"taken_us\":%lld,\"took_us\":%u,\"partial\":%s,\"light\":%s",
                   (long long)s->taken_epoch_us, s->took_us, s->partial ? "true" : "false",
                   s->light ? "true" : "false");
    if (r < 0)
        return r;
    /* what the *_start figures count from: with an earlier snapshot, that
     * one (forensics' slow sampler's first); without one, cpu_us is all
     * there is, since each process started */
    if (start != NULL)
        r = buf_printf(b, ",\"baseline\":\"first_slow_snapshot\",\"baseline_taken_us\":%lld",
                       (long long)start->taken_epoch_us);
    else
        r = buf_append_str(b, ",\"baseline\":\"process_start\"");
    if (r < 0)
        return r;
    /* how the sockets were read: by fd, or from the namespace's tables */
    if ((r = buf_printf(b, ",\"sockets_by_fd\":%u,\"namespace_entries\":%u", (unsigned)s->sockets_by_fd,
                        (unsigned)s->ns_entries)) < 0)
        return r;
    if (s->ignored_sockets || s->ignored_threads)
        if ((r = buf_printf(b, ",\"ignored\":{\"sockets\":%u,\"threads\":%u}",
                            (unsigned)s->ignored_sockets, (unsigned)s->ignored_threads)) < 0)
            return r;
    if (s->dropped_procs || s->dropped_threads || s->dropped_sockets)
        if ((r = buf_printf(b, ",\"dropped\":{\"procs\":%u,\"threads\":%u,\"sockets\":%u}",
                            s->dropped_procs, s->dropped_threads, s->dropped_sockets)) < 0)
            return r;
    if (s->unreadable != 0) {
        bool first = true;
        if ((r = buf_append_str(b, ",\"unreadable\":{")) < 0)
            return r;
        for (int i = 0; i < PROCSNAP_SRC_COUNT; i++) {
            if ((s->unreadable & (1u << i)) == 0)
                continue;
            if ((r = buf_printf(b, "%s\"%s\":\"%s\"", first ? "" : ",", names[i],
                                errno_name(s->unreadable_errno[i]))) < 0)
                return r;
            first = false;
        }
        if ((r = buf_append_str(b, "}")) < 0)
            return r;
    }
    if ((r = buf_append_str(b, ",\"procs\":[")) < 0)
        return r;
    for (uint16_t i = 0; i < s->nprocs; i++) {
        const struct procsnap_proc *p = &s->procs[i];
        const struct procsnap_proc *o = start != NULL ? find_proc(start, p->pid, p->start_ticks)
                                                      : NULL;
        char st[2] = {p->state, '\0'};

        if ((r = buf_printf(b, "%s{\"pid\":%d,\"ppid\":%d,\"depth\":%u,\"comm\":", i ? "," : "",
                            (int)p->pid, (int)p->ppid, p->depth)) < 0 ||
            (r = json_str(b, p->comm, sizeof(p->comm))) < 0 || (r = buf_append_str(b, ",\"state\":")) < 0 ||
            (r = buf_append_json_string(b, st, 1)) < 0 ||
            (r = buf_printf(b, ",\"cpu_us\":%llu,\"rss_bytes\":%llu,\"num_threads\":%u",
                            (unsigned long long)p->cpu_us, (unsigned long long)p->rss_bytes,
                            p->num_threads)) < 0)
            return r;
        if (o != NULL &&
            (r = buf_printf(b, ",\"cpu_since_start_us\":%llu,\"rss_start_bytes\":%llu",
                            (unsigned long long)(p->cpu_us >= o->cpu_us ? p->cpu_us - o->cpu_us : 0),
                            (unsigned long long)o->rss_bytes)) < 0)
            return r;
        if (!s->light) {
            bool first = true;
            if ((r = buf_append_str(b, ",\"threads\":[")) < 0)
                return r;
            for (uint16_t k = 0; k < s->nthreads; k++) {
                if (s->threads[k].proc != i)
                    continue;
                if ((!first && (r = buf_append_str(b, ",")) < 0) ||
                    (r = json_thread(b, start, s, &s->threads[k])) < 0)
                    return r;
                first = false;
            }
            first = true;
            if ((r = buf_append_str(b, "],\"sockets\":[")) < 0)
                return r;
            for (uint16_t k = 0; k < s->nsockets; k++) {
                if (s->sockets[k].proc != i)
                    continue;
                if ((!first && (r = buf_append_str(b, ",")) < 0) ||
                    (r = json_socket(b, &s->sockets[k])) < 0)
                    return r;
                first = false;
            }
            if ((r = buf_append_str(b, "]")) < 0)
                return r;
        }
        if ((r = buf_append_str(b, "}")) < 0)
            return r;
    }
    return buf_append_str(b, "]}");
}

int procsnap_to_json(const struct procsnap *s, const struct procsnap *start, struct buf *out)
{
    size_t mark;
    int r;

    if (s == NULL || out == NULL)
        return -EINVAL;
    mark = buf_len(out);
    r = json_body(s, start, out);
    if (r < 0)
        buf_truncate(out, mark);
    return r;
}
