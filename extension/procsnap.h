/*
 * procsnap.h - timeout forensics: a bounded snapshot of the runtime's
 * processes, read from outside through /proc and netlink sock_diag, and the
 * one sentence that says what the function was doing.
 *
 * The extension runs in the same execution environment as the runtime, as
 * the same user, so it can look at the runtime without touching it: no
 * ptrace, no signal, nothing written.  What a file refuses is RECORDED in
 * the snapshot (procsnap.unreadable), never guessed.  /proc/<pid>/environ
 * is never opened (it may hold the function's secrets); neither are
 * cmdline arguments past argv[1] (argv[1] only to tell a script extension
 * by its /opt/extensions/ path), nor maps or mem.  /proc/<pid>/io (byte
 * and syscall counters only) is read when procsnap_opts.io asks for it
 * (the Init anatomy).
 *
 * Every structure here is a plain fixed-size value: no allocation anywhere
 * in this module, every read bounded (PROCSNAP_* caps below), every file
 * read with one read(2) into a stack buffer.  Nothing logs (leaf module).
 * All functions may be called from any thread; they share no state.
 *
 * Which file gives which fact (see also the README, "Diagnosis: why it timed
 * out or was slow", and docs/design.md, "What the forensics can read"):
 *   /proc/P/stat, task/T/stat   state, comm, ppid, utime+stime, start time,
 *                               RSS pages, thread count          (anyone)
 *   /proc/P/stat fields 10-17   page faults (own + waited children),
 *                               the waited children's CPU        (anyone)
 *   /proc/P/io                  rchar, syscr, read_bytes  (ptrace-read; opts.io)
 *   /proc/P/task/               the thread ids                   (anyone)
 *   /proc/P/cmdline (argv[0], argv[1])  extension or not, its name
 *                               (find_runtime, find_siblings)   (anyone)
 *   /proc/P/schedstat, task/T/schedstat  CPU ns and times scheduled
 *                               (initwatch: extensions' activity) (anyone)
 *   /proc/P/task/T/syscall      current syscall nr and 1st arg   (ptrace-attach)
 *   /proc/P/task/T/wchan        kernel wait function, read only when
 *                               syscall is refused               (ptrace-read)
 *   /proc/P/fd/ + readlink      socket fds -> inodes             (ptrace-read)
 *   pidfd_getfd(P, fd)          a second reference to each socket fd
 *                               (ptrace-attach): getsockname,
 *                               getpeername, TCP_INFO, SIOCINQ/OUTQ on it,
 *                               then closed; the socket is never read,
 *                               written or changed.  Costs the same
 *                               whatever else the namespace holds.
 *   /proc/P/net/tcp,tcp6,udp,udp6  addresses, TCP state, queues (netns)
 *   netlink NETLINK_SOCK_DIAG   the same plus tcp_info: last send /
 *                               receive / ack ages, unacked, retransmits
 *   (the last two list every socket of the network namespace: they are
 *   only the fallback where pidfd_getfd is refused)
 */
#ifndef LAMBDA_TRACER_PROCSNAP_H
#define LAMBDA_TRACER_PROCSNAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"

/* Bounds.  A snapshot never holds more; what is left out is counted in
 * procsnap.dropped_* (never silently lost). */
#define PROCSNAP_MAX_PROCS 16   /* the runtime root(s) and descendants */
#define PROCSNAP_MAX_THREADS 64 /* over all processes */
#define PROCSNAP_MAX_SOCKETS 64 /* inet sockets over all processes */
#define PROCSNAP_MAX_FDS_SCANNED 1024 /* per process: fd/ entries looked at */
#define PROCSNAP_MAX_SCAN_PIDS 4096   /* /proc entries looked at by find and take */
#define PROCSNAP_MAX_LINKS 512  /* parent links kept by one scan (procsnap_links) */
#define PROCSNAP_COMM_BYTES 16  /* TASK_COMM_LEN, NUL included */
#define PROCSNAP_WCHAN_BYTES 32
#define PROCSNAP_SENTENCE_BYTES 256 /* enough for any procsnap_diagnose sentence */
#define PROCSNAP_MAX_NET_BYTES (1024UL * 1024) /* per net/ table read */
#define PROCSNAP_MAX_DIAG_MSGS 8192 /* sock_diag answers looked at per dump */

/* The kinds of file (or channel) a fact comes from.  Bit i of
 * procsnap.unreadable is set when a read of kind i failed at least once;
 * unreadable_errno[i] keeps the first errno (EACCES, EPERM, ENOENT, ...). */
enum procsnap_src {
    PROCSNAP_SRC_STAT = 0, /* /proc/P/stat, task/T/stat */
    PROCSNAP_SRC_TASK,     /* /proc/P/task/ listing */
    PROCSNAP_SRC_CMDLINE,  /* /proc/P/cmdline (find_runtime only) */
    PROCSNAP_SRC_SYSCALL,  /* task/T/syscall */
    PROCSNAP_SRC_WCHAN,    /* task/T/wchan */
    PROCSNAP_SRC_FD,       /* /proc/P/fd/ listing and readlink */
    PROCSNAP_SRC_NET,      /* /proc/P/net/{tcp,tcp6,udp,udp6} */
    PROCSNAP_SRC_SOCK_DIAG,/* netlink sock_diag */
    PROCSNAP_SRC_IO,       /* /proc/P/io (only with opts.io) */
    PROCSNAP_SRC_COUNT
};

/* One process: the runtime root or one of its descendants. */
struct procsnap_proc {
    pid_t pid;
    pid_t ppid;
    uint64_t start_ticks;  /* stat field 22: with pid, identifies the process */
    char state;            /* stat field 3: R S D Z T t X I ..., '?' unknown */
    char comm[PROCSNAP_COMM_BYTES]; /* raw kernel comm (outside input: escape it) */
    uint64_t cpu_us;       /* utime+stime of the whole process (all threads,
                            * living and dead), from clock ticks */
    uint64_t rss_bytes;    /* stat field 24 x page size */
    uint32_t num_threads;  /* stat field 20 (may exceed what was kept) */
    uint8_t depth;         /* 0: a runtime root, 1: its child, ... */
    uint64_t minflt;       /* stat fields 10+11: minor page faults, own and
                            * of the children it waited for */
    uint64_t majflt;       /* stat fields 12+13: major faults (read from
                            * storage), likewise */
    uint64_t children_cpu_us; /* stat fields 16+17: CPU of waited children */
    bool has_io;           /* the fields below were read (opts.io) */
    uint64_t rchar;        /* /proc/P/io: bytes read by read(2) and kin
                            * (files, cached or not, pipes, sockets) */
    uint64_t read_bytes;   /* bytes this process caused to be fetched
                            * from storage */
    uint64_t syscr;        /* read syscalls */
};

/* syscall_nr special values. */
#define PROCSNAP_SYSCALL_UNKNOWN (-2) /* not read (refused, or thread running) */
#define PROCSNAP_SYSCALL_RUNNING (-1) /* the file said "running" */
#define PROCSNAP_SYSCALL_NONE (-3)    /* "-1 sp pc": blocked, not in a syscall */

struct procsnap_thread {
    pid_t tid;
    uint8_t proc;          /* index into procsnap.procs */
    char state;            /* as procsnap_proc.state */
    char comm[PROCSNAP_COMM_BYTES];
    uint64_t cpu_us;       /* utime+stime of this thread since it started */
    uint64_t runq_us;      /* time runnable but not on a CPU since it
                            * started (schedstat), when has_runq */
    bool has_runq;
    int32_t syscall_nr;    /* the native ABI's number, or PROCSNAP_SYSCALL_* */
    uint64_t syscall_arg0; /* first argument (an fd for read/connect/...) */
    char wchan[PROCSNAP_WCHAN_BYTES]; /* "" when not read or "0" */
};

/* TCP states as the kernel numbers them (/proc/net/tcp "st" column). */
enum procsnap_tcp_state {
    PROCSNAP_TCP_NONE = 0, /* UDP, or unknown */
    PROCSNAP_TCP_ESTABLISHED = 1,
    PROCSNAP_TCP_SYN_SENT,
    PROCSNAP_TCP_SYN_RECV,
    PROCSNAP_TCP_FIN_WAIT1,
    PROCSNAP_TCP_FIN_WAIT2,
    PROCSNAP_TCP_TIME_WAIT,
    PROCSNAP_TCP_CLOSE,
    PROCSNAP_TCP_CLOSE_WAIT,
    PROCSNAP_TCP_LAST_ACK,
    PROCSNAP_TCP_LISTEN,
    PROCSNAP_TCP_CLOSING
};

struct procsnap_socket {
    uint8_t proc;          /* index into procsnap.procs */
    int32_t fd;
    uint64_t inode;
    uint8_t proto;         /* IPPROTO_TCP or IPPROTO_UDP; 0: inode not found
                            * in any inet table (unix socket, netlink, ...) */
    uint8_t family;        /* AF_INET or AF_INET6 (0 when proto is 0) */
    uint8_t local_addr[16];/* network byte order; IPv4 in the first 4 bytes */
    uint8_t peer_addr[16];
    uint16_t local_port;   /* host byte order */
    uint16_t peer_port;
    uint8_t tcp_state;     /* enum procsnap_tcp_state */
    uint32_t tx_queue;     /* bytes not yet acknowledged (tcp) / queued */
    uint32_t rx_queue;     /* bytes received, not yet read by the process */
    bool has_info;         /* the tcp_info fields below came from sock_diag */
    uint32_t last_data_sent_ms; /* tcpi_last_data_sent: age of the last send */
    uint32_t last_data_recv_ms; /* tcpi_last_data_recv */
    uint32_t last_ack_recv_ms;  /* tcpi_last_ack_recv */
    uint32_t unacked;      /* tcpi_unacked (segments) */
    uint32_t retransmits;  /* tcpi_retransmits (current run of RTOs) */
    uint32_t total_retrans;/* tcpi_total_retrans */
    uint32_t rtt_us;       /* tcpi_rtt */
    bool has_bytes;        /* the byte counters below were reported */
    uint64_t bytes_acked;  /* tcpi_bytes_acked: sent and acknowledged */
    uint64_t bytes_received; /* tcpi_bytes_received */
};

struct procsnap {
    int64_t taken_mono_us; /* CLOCK_MONOTONIC when the snapshot began */
    int64_t taken_boot_us; /* CLOCK_BOOTTIME then: with start_ticks it dates
                            * a process (a child's age) */
    int64_t taken_epoch_us;/* wall clock, for the trace */
    uint32_t took_us;      /* how long taking it lasted (wall) */
    bool partial;          /* the budget ran out or a root vanished: some
                            * facts were not read */
    bool light;            /* taken with opts.light: procs only */
    uint32_t unreadable;   /* bit (1u << enum procsnap_src): a read failed */
    int16_t unreadable_errno[PROCSNAP_SRC_COUNT]; /* first errno per kind */
    uint16_t nprocs, nthreads, nsockets;
    uint16_t dropped_procs, dropped_threads, dropped_sockets; /* over the caps */
    uint16_t sockets_by_fd; /* sockets read through pidfd_getfd */
    uint32_t ns_entries;   /* namespace-wide entries read (sock_diag messages
                            * and net/ lines): 0 unless the fallback ran */
    uint16_t ignored_sockets, ignored_threads; /* left out: opts.ignore_peer */
    struct procsnap_proc procs[PROCSNAP_MAX_PROCS];
    struct procsnap_thread threads[PROCSNAP_MAX_THREADS];
    struct procsnap_socket sockets[PROCSNAP_MAX_SOCKETS];
};

/* /proc/P/schedstat or task/T/schedstat (procsnap_parse_schedstat). */
struct procsnap_schedstat {
    uint64_t run_ns;
    uint64_t wait_ns;
    uint64_t slices;
};

/* A process identity that survives pid reuse: the pid plus its start time
 * (stat field 22, clock ticks since boot). */
struct procsnap_target {
    pid_t pid;
    uint64_t start_ticks;
};

/* A peer whose connections are not the function's (the Runtime API). */
struct procsnap_peer {
    uint8_t family;        /* AF_INET or AF_INET6; an IPv4-mapped IPv6
                            * address is stored as AF_INET */
    uint8_t addr[16];      /* network byte order; IPv4 in the first 4 bytes */
    uint16_t port;         /* host byte order, never 0 */
};

/* One process's parent, as a scan of proc_root read it. */
struct procsnap_link {
    pid_t pid;
    pid_t ppid;
};

/* The parent links of the processes one scan of proc_root saw, in the
 * directory's order: every process whose stat could be read as far as its
 * ppid, kernel threads (pid 2 and its children, ppid 0) left out.  About
 * 4 KiB: keep it in static or heap memory. */
struct procsnap_links {
    size_t n;
    bool dropped;          /* more than PROCSNAP_MAX_LINKS: the first ones
                            * kept, and a snapshot that follows them is
                            * marked partial */
    struct procsnap_link links[PROCSNAP_MAX_LINKS];
};

struct procsnap_opts {
    const char *proc_root;  /* NULL: "/proc".  Tests point it at a fake tree */
    const struct procsnap_target *roots; /* from procsnap_find_runtime */
    size_t nroots;
    uint32_t budget_us;     /* 0: no budget.  Past it, remaining reads are
                             * skipped and the snapshot is marked partial */
    bool light;             /* only the processes (one stat read each): a
                             * cheap start-of-invocation mark for CPU and RSS */
    bool no_sock_diag;      /* do not open a netlink socket (fake trees) */
    bool no_pidfd;          /* do not use pidfd_getfd (tests of the fallback) */
    const struct procsnap_peer *ignore_peer; /* NULL, or: its TCP
                             * connections and the threads blocked on them
                             * are left out (procsnap_leave_out_peer) */
    bool descendants;       /* with light: follow the descendants too (one
                             * scan of proc_root, or `links`) */
    bool io;                /* read /proc/P/io for each process kept (its
                             * refusal is noted as PROCSNAP_SRC_IO) */
    const struct procsnap_links *links; /* NULL, or the parent links of a
                             * scan just made (procsnap_find_siblings):
                             * followed wherever proc_root would be scanned
                             * for them, so that scan is not made again */
};

/*
 * Finds the runtime: the processes in this execution environment that are
 * not extensions.  Rule: on Lambda and under our emulator, the runtime's
 * bootstrap and every extension are children of the same parent (Lambda's
 * init).  So a runtime root is a SIBLING of `self` (same ppid, read from
 * <proc_root>/<self>/stat), other than self, not a zombie or dead, and not
 * an extension (procsnap_parse_ext_name: argv[0], or argv[1] for a script,
 * is ".../opt/extensions/NAME").  A process whose cmdline cannot be read is kept (and
 * PROCSNAP_SRC_CMDLINE noted in *ret_unreadable if not NULL).  Several
 * candidates are all returned, newest first (by start time: Lambda starts
 * the runtime after every extension registered).  Descendants are not
 * returned: procsnap_take follows them.  The start time in each target
 * guards against pid reuse; a runtime that re-execs keeps its pid and start
 * time, so it stays found.  Call it again after a crash/reinit (a new pid).
 *
 * Returns 0 and writes up to `max` targets and their count (0 is possible),
 * -ENOENT when self's stat cannot be read, -EINVAL on bad arguments.  At
 * most PROCSNAP_MAX_SCAN_PIDS entries of proc_root are looked at.
 */
int procsnap_find_runtime(const char *proc_root, pid_t self, struct procsnap_target *ret_targets,
                          size_t max, size_t *ret_n, uint32_t *ret_unreadable)
    __attribute__((warn_unused_result));

/* A sibling extension seen by procsnap_find_siblings: its name and the
 * figures of its stat line, read by the same scan. */
#define PROCSNAP_EXT_NAME_BYTES 64
struct procsnap_extension {
    pid_t pid;
    uint64_t start_ticks;
    char name[PROCSNAP_EXT_NAME_BYTES]; /* procsnap_parse_ext_name */
    char state;
    uint64_t cpu_ticks;    /* utime + stime of all its threads */
    uint64_t faults;       /* minflt + majflt */
    uint32_t num_threads;
};

/*
 * procsnap_find_runtime, and in the same scan of proc_root the siblings
 * that are extensions (up to ext_max, in *ret_ext and *ret_ext_n; ret_ext
 * may be NULL when ext_max is 0).  An extension is told by its cmdline:
 * argv[0], or argv[1] for a script run by an interpreter, is a path
 * ".../opt/extensions/NAME" (procsnap_parse_ext_name).  Of a sibling's
 * cmdline nothing else is kept.  With ret_links (NULL: not kept) the same
 * scan also gives every process's parent link, for a procsnap_take of the
 * runtime's descendants right after it (procsnap_opts.links): one scan of
 * proc_root instead of two.  Each process's stat is opened once and, when
 * it is not a sibling, parsed only as far as its ppid.  Same returns as
 * procsnap_find_runtime; like ret_targets, *ret_links is filled while the
 * scan runs: use it only on success.
 */
int procsnap_find_siblings(const char *proc_root, pid_t self, struct procsnap_target *ret_targets,
                           size_t max, size_t *ret_n, struct procsnap_extension *ret_ext,
                           size_t ext_max, size_t *ret_ext_n, struct procsnap_links *ret_links,
                           uint32_t *ret_unreadable) __attribute__((warn_unused_result));

/*
 * A process's activity: the sum over its threads of their schedstat (at
 * most PROCSNAP_MAX_THREADS threads).  With num_threads 1 (from its stat)
 * one read of <proc_root>/<pid>/schedstat, else the task/ listing and one
 * read per thread.  Any change between two calls means it ran.  Returns 0,
 * or the -errno of the first read that failed (-EPROTO: the kernel keeps no
 * such figures); *ret written only on success.
 */
int procsnap_activity(const char *proc_root, pid_t pid, uint32_t num_threads,
                      struct procsnap_schedstat *ret) __attribute__((warn_unused_result));

/*
 * Takes a snapshot of the roots in o and their descendants (breadth first,
 * up to PROCSNAP_MAX_PROCS, from each thread's task/T/children, or from
 * one scan of proc_root for ppid links, or o->links, where that file is
 * missing or o->light): per
 * process its stat; per thread (task/) its stat, and when it is not
 * running its syscall file, or its wchan when syscall is refused; per
 * process the socket fds, each read through a second reference to it
 * (pidfd_getfd: getsockname, getpeername, TCP_INFO, SIOCINQ/OUTQ; a
 * connecting socket's peer from sock_diag's SYN_SENT sockets only); where
 * pidfd_getfd is refused, matched by inode against a sock_diag dump (TCP,
 * both families, with tcp_info; TIME_WAIT/FIN_WAIT2/SYN_RECV left out)
 * and, for what is left, the runtime's net/ tables.  A root whose start time
 * no longer matches is left out and the snapshot marked partial.  With
 * o->light only the roots' stat is read (one open+read+close each, about
 * 10 us): a start-of-invocation mark for CPU and RSS.
 *
 * Cost, measured (10 threads, 10 sockets): about 150 system calls,
 * 0.25 ms of CPU, the same with 2,000 unrelated sockets in the network
 * namespace (the fallback dump costs 8-11 ms on a host with thousands).
 * Bound it with o->budget_us.
 *
 * *ret is always fully written (zeroed first) when o and ret are valid.
 * Returns 0 (also for a partial snapshot; check ret->partial and
 * ret->unreadable), -ESRCH when no root could be read, -EINVAL on bad
 * arguments.  Allocates nothing; uses up to about 16 KiB of stack
 * (read buffers), and struct procsnap itself is about 14 KiB: keep
 * snapshots in static or heap memory, not on a small thread stack.
 */
int procsnap_take(const struct procsnap_opts *o, struct procsnap *ret)
    __attribute__((warn_unused_result));

/*
 * One sentence (no trailing period) for a timeout's or a slow invocation's
 * cause, from the snapshot `now` and, if not NULL, `start` (an earlier
 * snapshot, full or light: the CPU figures count from it.  Taken at the
 * invocation's start they read "0.04 s of CPU used" / "busy: 2.68 s of
 * CPU in 2.70 s"; taken more than 50 ms later (the slow sampler's first)
 * they say their window: "0.04 s of CPU in the last 1.2 s", "busy: 1.30 s
 * of CPU in the last 1.4 s".  Without `start` they are since the process
 * started and the sentence says so).  invocation_start_mono_us is
 * CLOCK_MONOTONIC in µs.  Examples:
 *   "waiting 2.7 s in a socket read from 10.0.3.17:5432 (PostgreSQL,
 *    established); 0.04 s of CPU used"
 *   "waiting 2.6 s for an answer from 10.0.3.17:443 (https, established)
 *    while in epoll_wait; 0.04 s of CPU used"
 *   "busy: 2.68 s of CPU in 2.70 s on one thread (a loop?)"
 *   "connecting to 10.0.9.9:443 (https) for 2.6 s"
 *   "sleeping (nanosleep) for 2.7 s; 0.01 s of CPU used"
 *   "waiting on child process 1234 (sh) for 2.7 s"
 * The waited-on connection is told apart from idle pooled ones: a TCP
 * socket whose last send is within this invocation and whose last receive
 * is older than that send (request sent, no answer since); a thread
 * blocked in a read/recv/connect on that fd wins over the timing rule.
 * Comm names in the sentence are sanitised (printable ASCII only).
 * Always writes a NUL-terminated sentence (truncated to size) when size > 0.
 * Pure function.
 */
void procsnap_diagnose(const struct procsnap *start, const struct procsnap *now,
                       int64_t invocation_start_mono_us, char *sentence, size_t size);

/*
 * "Where the time went" for a slow invocation: fed with consecutive
 * snapshots (each call with the previous and the current one), it
 * attributes the wall time between them: the CPU-time delta to "cpu", the
 * rest to the wait kind found in `cur` (its diagnosis), per peer for socket
 * waits.  Bounded: at most PROCSNAP_SHARE_MAX_ENTRIES kinds/peers, the rest
 * in "other".
 */
#define PROCSNAP_SHARE_MAX_ENTRIES 8
#define PROCSNAP_SHARE_LABEL_BYTES 64

enum procsnap_wait {
    PROCSNAP_WAIT_CPU = 0,
    PROCSNAP_WAIT_SOCKET,  /* an answer from a peer */
    PROCSNAP_WAIT_CONNECT, /* a connect that has not completed */
    PROCSNAP_WAIT_SLEEP,
    PROCSNAP_WAIT_CHILD,
    PROCSNAP_WAIT_LOCK,    /* futex */
    PROCSNAP_WAIT_DISK,    /* D state */
    PROCSNAP_WAIT_POLL,    /* epoll/poll/select with no socket to blame */
    PROCSNAP_WAIT_OTHER,
    PROCSNAP_WAIT_COUNT
};

struct procsnap_share_entry {
    uint8_t wait;          /* enum procsnap_wait */
    char label[PROCSNAP_SHARE_LABEL_BYTES]; /* "CPU", "waiting on 10.0.3.17:5432
                                             * (PostgreSQL)", "sleeping", ... */
    int64_t us;
};

struct procsnap_share {
    int64_t wall_us;       /* total attributed (first to last snapshot) */
    int64_t cpu_us;        /* of which on CPU (capped at wall per interval) */
    uint16_t n;
    uint16_t snapshots;    /* intervals added */
    struct procsnap_share_entry entries[PROCSNAP_SHARE_MAX_ENTRIES];
};

/* Zeroes s. */
void procsnap_share_init(struct procsnap_share *s);

/* Adds the interval prev -> cur (prev taken earlier; both full snapshots of
 * the same roots).  invocation_start_mono_us as for procsnap_diagnose. */
void procsnap_share_add(struct procsnap_share *s, const struct procsnap *prev,
                        const struct procsnap *cur, int64_t invocation_start_mono_us);

/* A short summary, largest share first, e.g. "1.9 s: 62% waiting on
 * 10.0.3.17:5432 (PostgreSQL), 30% CPU, 8% sleeping (3 snapshots)".
 * Always NUL-terminated when size > 0.  Pure. */
void procsnap_share_summary(const struct procsnap_share *s, char *sentence, size_t size);

/*
 * Serialises the snapshot as one compact JSON object into out (appended),
 * e.g. {"taken_us":...,"took_us":...,"partial":false,"unreadable":{"syscall":
 * "EACCES"},"procs":[{"pid":..,"ppid":..,"comm":"node","state":"S",
 * "cpu_us":..,"rss_bytes":..,"threads":[{"tid":..,"comm":"..","state":"S",
 * "cpu_us":..,"syscall":"read","arg0":5,"wchan":".."}],"sockets":[{"fd":5,
 * "proto":"tcp","local":"..","peer":"10.0.3.17:5432","service":"PostgreSQL",
 * "state":"established","tx_queue":0,"rx_queue":0,"last_send_ms":..,
 * "last_recv_ms":..,"unacked":..,"retransmits":..}]}]}.  With `start`
 * (may be NULL; forensics passes the slow sampler's first snapshot of the
 * invocation) each process and thread also gets "cpu_since_start_us" and
 * each process "rss_start_bytes", counted from that snapshot, not from the
 * invocation's start: the object says so with "baseline":
 * "first_slow_snapshot" and "baseline_taken_us" (its epoch µs).  Without
 * `start` it says "baseline":"process_start" (cpu_us counts from each
 * process's start; there is no earlier RSS).  Strings are JSON-escaped
 * (comm is outside input).  On failure (-ENOBUFS, -ENOMEM) out is left as
 * it was.
 */
int procsnap_to_json(const struct procsnap *s, const struct procsnap *start, struct buf *out)
    __attribute__((warn_unused_result));

/* "a.b.c.d:port", "[v6]:port" (AWS_LAMBDA_RUNTIME_API) -> *ret.  0, or
 * -EINVAL (NULL, empty, a name, no port, port 0 or over 65535, trailing
 * bytes); *ret written only on success. */
int procsnap_parse_peer(const char *text, struct procsnap_peer *ret)
    __attribute__((warn_unused_result));

/* Leaves p's TCP connections (either family: an IPv4 peer reached through
 * an IPv6 socket's mapped address too) out of s, with the threads blocked
 * in a system call whose first argument is one of those fds in the same
 * process; counts them in s->ignored_*.  procsnap_take calls it with
 * opts.ignore_peer.  Pure. */
void procsnap_leave_out_peer(struct procsnap *s, const struct procsnap_peer *p);

/*
 * Small helpers, pure, exposed for the encoders and the tests.
 */

/* The service name of a well-known port ("https", "PostgreSQL", ...) or
 * NULL. */
const char *procsnap_port_name(uint16_t port);

/* "established", "connecting" (SYN_SENT), "closing" (FIN_WAIT*, CLOSING,
 * LAST_ACK, CLOSE_WAIT, TIME_WAIT), "listening", ... */
const char *procsnap_tcp_state_name(uint8_t tcp_state);

/* The name of a syscall number on this build's ABI for the ones the
 * diagnosis knows ("read", "epoll_wait", ...), or NULL. */
const char *procsnap_syscall_name(int32_t nr);

/* Writes "a.b.c.d:port" or "[v6]:port" for a socket's peer (or local)
 * address.  Always NUL-terminated when size > 0. */
void procsnap_format_addr(const struct procsnap_socket *sk, bool peer, char *out, size_t size);

/*
 * Parsers of /proc text, exposed for the unit tests and the fuzz target.
 * Each takes (pointer, length), need not be NUL-terminated, never reads
 * past len, and writes its outputs only on success.  0 or -EPROTO.
 */

/* A stat line "pid (comm) S ppid ...": the comm is everything between the
 * FIRST '(' and the LAST ')' (a comm may hold spaces, parentheses and
 * newlines), truncated to PROCSNAP_COMM_BYTES - 1 bytes. */
struct procsnap_stat {
    pid_t pid;
    pid_t ppid;
    char state;
    char comm[PROCSNAP_COMM_BYTES];
    uint64_t utime_ticks, stime_ticks;
    uint32_t num_threads;
    uint64_t start_ticks;
    uint64_t rss_pages;
    uint64_t minflt, cminflt, majflt, cmajflt; /* fields 10-13 */
    uint64_t cutime_ticks, cstime_ticks;       /* fields 16-17 (negative: 0) */
};
int procsnap_parse_stat(const char *s, size_t len, struct procsnap_stat *ret)
    __attribute__((warn_unused_result));

/* The same line read only as far as field 4, the ppid (what a scan for
 * parent links needs of every process on the host): the same rules up to
 * there, and something must follow the ppid (a line cut inside it is
 * refused).  Accepts every line procsnap_parse_stat accepts, with the same
 * ppid (the fuzz target checks it). */
int procsnap_parse_stat_ppid(const char *s, size_t len, pid_t *ret_ppid)
    __attribute__((warn_unused_result));

/* A syscall file: "running" (PROCSNAP_SYSCALL_RUNNING), "-1 sp pc"
 * (PROCSNAP_SYSCALL_NONE), or "NR arg0 arg1 ... sp pc" (hex args). */
int procsnap_parse_syscall(const char *s, size_t len, int32_t *ret_nr, uint64_t *ret_arg0)
    __attribute__((warn_unused_result));

/* One data line of /proc/net/tcp, tcp6, udp or udp6 (family AF_INET or
 * AF_INET6; the header line is -EPROTO).  Fills the address, port, state,
 * queue and inode fields of *ret (proto is left to the caller). */
int procsnap_parse_net_line(const char *s, size_t len, int family, struct procsnap_socket *ret)
    __attribute__((warn_unused_result));

/* /proc/P/io: rchar, syscr and read_bytes (other lines skipped; each of the
 * three required exactly once, a decimal without sign, ending with '\n'). */
struct procsnap_io {
    uint64_t rchar;
    uint64_t syscr;
    uint64_t read_bytes;
};
int procsnap_parse_io(const char *s, size_t len, struct procsnap_io *ret)
    __attribute__((warn_unused_result));

/* A cmdline ("argv0\0argv1\0..."): the extension's name when argv[0], or
 * else argv[1] (a script run by an interpreter), is a path whose directory
 * ends in "/opt/extensions" (on Lambda "/opt/extensions/NAME"; the
 * emulator runs them from a root of its own).  NAME: the basename, 1 to
 * PROCSNAP_EXT_NAME_BYTES - 1 bytes, which Lambda requires to equal the
 * registered name. */
int procsnap_parse_ext_name(const char *s, size_t len, char *ret_name, size_t size)
    __attribute__((warn_unused_result));

/* /proc/P/schedstat or task/T/schedstat: "run_ns wait_ns timeslices\n"
 * (time on a CPU, time waiting for one, times scheduled in; all three 0
 * when the kernel keeps no such figures: then -EPROTO too). */
int procsnap_parse_schedstat(const char *s, size_t len, struct procsnap_schedstat *ret)
    __attribute__((warn_unused_result));

/* "socket:[12345]" (a readlink result) -> 12345. */
int procsnap_parse_socket_link(const char *s, size_t len, uint64_t *ret_inode)
    __attribute__((warn_unused_result));

#endif
