/*
 * fuzz_procsnap.c - the /proc text parsers of procsnap.c on arbitrary bytes.
 *
 * The whole input is also a cmdline (an extension's name) and a
 * schedstat line.  The input is cut at NUL bytes into up to five pieces: a stat line
 * (parsed in full and as far as its ppid: the two must agree), a
 * syscall file, a /proc/net/tcp line (tried as IPv4 and IPv6), a
 * readlink result and a peer to leave out (AWS_LAMBDA_RUNTIME_API's
 * "host:port", whose connections leave the snapshot, counted).  Each parser must stay inside its (pointer, length),
 * accept or refuse without touching its output on refusal, and keep what
 * it accepts well-formed (a terminated comm, a valid state byte).  What was
 * accepted is then put into a snapshot and run through the diagnosis, the
 * "where the time went" summary and the JSON encoder: the sentence is
 * terminated printable ASCII, and the JSON parses (cJSON) with a printable
 * ASCII comm read back byte for byte.  A violation aborts.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <cjson/cJSON.h>

#include "buf.h"
#include "initwatch.h"
#include "procsnap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
    if (!ok)
        abort();
}

/* Copies a piece to the heap so that a read past its end is caught. */
static char *piece(const uint8_t *p, size_t n)
{
    char *c = malloc(n ? n : 1);

    check(c != NULL);
    memcpy(c, p, n);
    return c;
}

static bool ascii_printable(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *parts[5] = {NULL};
    size_t lens[5] = {0};
    size_t np = 0, start = 0;
    static struct procsnap snap, prev;
    struct procsnap_stat st, keep;
    char sentence[PROCSNAP_SENTENCE_BYTES];

    for (size_t i = 0; i <= size && np < 5; i++) {
        if (i == size || data[i] == '\0') {
            parts[np] = data + start;
            lens[np++] = i - start;
            start = i + 1;
        }
    }
    memset(&snap, 0, sizeof(snap));
    snap.taken_mono_us = 10000000;
    snap.nprocs = 1;
    snap.procs[0].pid = 1;
    snap.procs[0].state = 'S';
    snap.nthreads = 1;
    snap.threads[0].tid = 1;
    snap.threads[0].state = 'S';
    snap.threads[0].syscall_nr = PROCSNAP_SYSCALL_UNKNOWN;

    if (np > 0) {
        char *c = piece(parts[0], lens[0]);
        memset(&keep, 0x5a, sizeof(keep));
        st = keep;
        int r = procsnap_parse_stat(c, lens[0], &st);
        check(r == 0 || r == -EPROTO);
        /* the scan's short parse agrees with the full one wherever that
         * one accepts */
        pid_t ppid = -7;
        int rp = procsnap_parse_stat_ppid(c, lens[0], &ppid);
        check(rp == 0 || rp == -EPROTO);
        check(rp == 0 ? ppid >= 0 : ppid == -7);
        check(r != 0 || (rp == 0 && ppid == st.ppid));
        if (r == 0) {
            check(memchr(st.comm, '\0', sizeof(st.comm)) != NULL);
            check(st.state >= 'A' && st.state <= 'z');
            check(st.pid > 0);
            memcpy(snap.procs[0].comm, st.comm, sizeof(st.comm));
            memcpy(snap.threads[0].comm, st.comm, sizeof(st.comm));
            snap.procs[0].state = st.state;
            snap.threads[0].state = st.state;
            snap.procs[0].cpu_us = st.utime_ticks % 100000000;
            snap.threads[0].cpu_us = snap.procs[0].cpu_us;
            snap.procs[0].start_ticks = st.start_ticks;
        } else {
            check(memcmp(&st, &keep, sizeof(st)) == 0);
        }
        free(c);
    }
    if (np > 1) {
        char *c = piece(parts[1], lens[1]);
        int32_t nr = 7;
        uint64_t a0 = 7;
        int r = procsnap_parse_syscall(c, lens[1], &nr, &a0);
        check(r == 0 || r == -EPROTO);
        if (r == 0) {
            check(nr >= PROCSNAP_SYSCALL_NONE);
            snap.threads[0].syscall_nr = nr;
            snap.threads[0].syscall_arg0 = a0;
        } else {
            check(nr == 7 && a0 == 7);
        }
        free(c);
    }
    if (np > 2) {
        char *c = piece(parts[2], lens[2]);
        for (int fam = 0; fam < 2; fam++) {
            struct procsnap_socket sk;
            memset(&sk, 0, sizeof(sk));
            int r = procsnap_parse_net_line(c, lens[2], fam ? AF_INET6 : AF_INET, &sk);
            check(r == 0 || r == -EPROTO);
            if (r == 0 && snap.nsockets < PROCSNAP_MAX_SOCKETS) {
                char addr[64];
                procsnap_format_addr(&sk, true, addr, sizeof(addr));
                check(strlen(addr) < sizeof(addr));
                sk.proto = IPPROTO_TCP;
                sk.fd = (int32_t)(sk.inode % 8);
                sk.has_info = (sk.inode & 1) != 0;
                sk.last_data_sent_ms = sk.tx_queue % 20000;
                sk.last_data_recv_ms = sk.rx_queue % 20000;
                snap.sockets[snap.nsockets++] = sk;
            }
        }
        free(c);
    }
    if (np > 3) {
        char *c = piece(parts[3], lens[3]);
        uint64_t ino = 3;
        int r = procsnap_parse_socket_link(c, lens[3], &ino);
        check(r == 0 || r == -EPROTO);
        check(r == 0 || ino == 3);
        free(c);
    }

    if (np > 4) {
        char *c = malloc(lens[4] + 1);
        struct procsnap_peer peer;
        check(c != NULL);
        memcpy(c, parts[4], lens[4]);
        c[lens[4]] = '\0';
        memset(&peer, 0x5a, sizeof(peer));
        int r = procsnap_parse_peer(c, &peer);
        check(r == 0 || r == -EINVAL);
        if (r == 0) {
            check(peer.port != 0 && (peer.family == AF_INET || peer.family == AF_INET6));
            uint16_t ns = snap.nsockets, nt = snap.nthreads;
            procsnap_leave_out_peer(&snap, &peer);
            check(snap.nsockets + snap.ignored_sockets == ns);
            check(snap.nthreads + snap.ignored_threads == nt);
        } else {
            check(peer.port == 0x5a5a);
        }
        free(c);
    }

    /* The whole input as a /proc/P/io text; its figures through the Init
     * anatomy's rules and description. */
    {
        char *c = piece(data, size);
        struct procsnap_io io, iokeep;
        memset(&iokeep, 0x5a, sizeof(iokeep));
        io = iokeep;
        int r = procsnap_parse_io(c, size, &io);
        check(r == 0 || r == -EPROTO);
        check(r == 0 || memcmp(&io, &iokeep, sizeof(io)) == 0);
        free(c);
        if (r == 0) {
            struct initwatch_figures f;
            char text[512];
            memset(&f, 0, sizeof(f));
            f.rchar = (int64_t)(io.rchar >> 1);
            f.read_bytes = (int64_t)(io.read_bytes >> 1);
            f.cpu_us = (int64_t)(io.syscr >> 1);
            f.wall_us = (int64_t)(io.syscr >> 1) + 300000;
            f.majflt = (int64_t)(io.read_bytes >> 12);
            initwatch_hint(&f, text, sizeof(text));
            check(strlen(text) < sizeof(text));
            initwatch_describe(&f, text, sizeof(text));
            check(strlen(text) < sizeof(text));
        }
    }

    /* The whole input as a cmdline (NULs and all): an extension's name is
     * a non-empty basename without '/' or NUL, within the buffer; and as a
     * schedstat line. */
    {
        char *c = piece(data, size);
        char name[PROCSNAP_EXT_NAME_BYTES], small[5];
        memset(name, 0x5a, sizeof(name));
        int r = procsnap_parse_ext_name(c, size, name, sizeof(name));
        check(r == 0 || r == -EPROTO);
        if (r == 0) {
            size_t n = strnlen(name, sizeof(name));
            check(n > 0 && n < sizeof(name) && memchr(name, '/', n) == NULL);
        } else {
            check((unsigned char)name[0] == 0x5a);
        }
        r = procsnap_parse_ext_name(c, size, small, sizeof(small));
        check(r == 0 ? strnlen(small, sizeof(small)) < sizeof(small) : r == -EPROTO);
        struct procsnap_schedstat ss, sskeep;
        memset(&sskeep, 0x5a, sizeof(sskeep));
        ss = sskeep;
        r = procsnap_parse_schedstat(c, size, &ss);
        check(r == 0 || r == -EPROTO);
        check(r == 0 ? (ss.run_ns | ss.wait_ns | ss.slices) != 0 : memcmp(&ss, &sskeep, sizeof(ss)) == 0);
        free(c);
    }

    /* The consumers of what was parsed. */
    procsnap_diagnose(NULL, &snap, 1000000, sentence, sizeof(sentence));
    check(strlen(sentence) < sizeof(sentence) && ascii_printable(sentence));
    prev = snap;
    prev.taken_mono_us = 9000000;
    procsnap_diagnose(&prev, &snap, 1000000, sentence, sizeof(sentence));
    check(ascii_printable(sentence));
    struct procsnap_share sh;
    procsnap_share_init(&sh);
    procsnap_share_add(&sh, &prev, &snap, 1000000);
    procsnap_share_summary(&sh, sentence, sizeof(sentence));
    check(ascii_printable(sentence));
    int64_t total = 0;
    for (uint16_t i = 0; i < sh.n; i++)
        total += sh.entries[i].us;
    check(total == sh.wall_us);

    struct buf b;
    buf_init(&b, 1 << 20);
    check(procsnap_to_json(&snap, &prev, &b) == 0);
    cJSON *root = cJSON_ParseWithLength(buf_data(&b), buf_len(&b));
    check(root != NULL);
    const cJSON *p0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "procs"), 0);
    const char *comm = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(p0, "comm"));
    check(comm != NULL);
    /* Printable ASCII (quotes and backslashes included) reads back as is. */
    if (ascii_printable(snap.procs[0].comm))
        check(strcmp(comm, snap.procs[0].comm) == 0);
    cJSON_Delete(root);
    buf_free(&b);
    return 0;
}
