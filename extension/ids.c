/*
 * ids.c - see ids.h.
 *
 * Random bytes come from a small per-thread pool refilled by one getrandom
 * call, not one system call per id: a busy pipeline makes several ids per
 * invocation.  Per thread, so no lock; the extension never forks, so no
 * two processes share a pool.
 *
 * A SnapStart snapshot does what fork would: it copies every pool, with the
 * bytes still unused, into every environment restored from it, which would
 * then hand out the same ids (reference: generate X-Ray ids from fresh
 * entropy after restore).  So a restore bumps the restore epoch
 * (ids_restore_epoch_bump) and each pool remembers the epoch it was filled
 * in: a draw that sees another epoch wipes the pool and refills it.  One
 * relaxed atomic load per draw; relaxed is enough because whichever thread
 * detects the restore bumps before it hands anything about the restore to
 * another thread (through a queue or a lock, which orders the bump before
 * that thread's next draw).
 */
#include "ids.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/random.h>

static const char hex_digits[] = "0123456789abcdef";

#define RANDOM_POOL_BYTES 256

struct random_pool {
    uint8_t bytes[RANDOM_POOL_BYTES];
    size_t left; /* unused bytes, at the end of `bytes` */
    unsigned epoch; /* restore_epoch when filled */
};

static __thread struct random_pool pool;
static atomic_uint restore_epoch;
static atomic_ulong refills;

static int refill(void)
{
    size_t got = 0;

    while (got < sizeof(pool.bytes)) {
        ssize_t n = getrandom(pool.bytes + got, sizeof(pool.bytes) - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        got += (size_t)n;
    }
    pool.left = sizeof(pool.bytes);
    atomic_fetch_add_explicit(&refills, 1, memory_order_relaxed);
    return 0;
}

/* len <= RANDOM_POOL_BYTES.  Each byte is handed out once, then wiped. */
static int fill_random(uint8_t *buf, size_t len)
{
    uint8_t *from;
    unsigned epoch = atomic_load_explicit(&restore_epoch, memory_order_relaxed);

    if (pool.epoch != epoch) {
        /* filled before a restore: every restored copy holds these bytes */
        memset(pool.bytes, 0, sizeof(pool.bytes));
        pool.left = 0;
        pool.epoch = epoch;
    }
    if (pool.left < len) {
        int r = refill();
        if (r < 0)
            return r;
    }
    from = pool.bytes + sizeof(pool.bytes) - pool.left;
    memcpy(buf, from, len);
    memset(from, 0, len);
    pool.left -= len;
    return 0;
}

void ids_restore_epoch_bump(void)
{
    atomic_fetch_add_explicit(&restore_epoch, 1, memory_order_relaxed);
}

unsigned long ids_refills(void)
{
    return atomic_load_explicit(&refills, memory_order_relaxed);
}

size_t ids_pool_peek(uint8_t *out, size_t size)
{
    size_t n = pool.left < size ? pool.left : size;

    memcpy(out, pool.bytes + sizeof(pool.bytes) - pool.left, n);
    return n;
}

static void to_hex(const uint8_t *bytes, size_t len, char *out)
{
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = hex_digits[bytes[i] >> 4];
        out[2 * i + 1] = hex_digits[bytes[i] & 0xf];
    }
}

int ids_new_trace_id(int64_t epoch_s, char ret[XRAY_TRACE_ID_LEN + 1])
{
    uint8_t rnd[12];
    uint8_t ts[4];
    int r = fill_random(rnd, sizeof(rnd));

    if (r < 0)
        return r;
    ts[0] = (uint8_t)(epoch_s >> 24);
    ts[1] = (uint8_t)(epoch_s >> 16);
    ts[2] = (uint8_t)(epoch_s >> 8);
    ts[3] = (uint8_t)epoch_s;
    ret[0] = '1';
    ret[1] = '-';
    to_hex(ts, sizeof(ts), ret + 2);
    ret[10] = '-';
    to_hex(rnd, sizeof(rnd), ret + 11);
    ret[XRAY_TRACE_ID_LEN] = '\0';
    return 0;
}

int ids_new_span_id(char ret[XRAY_SPAN_ID_LEN + 1])
{
    uint8_t rnd[8];

    do {
        int r = fill_random(rnd, sizeof(rnd));
        if (r < 0)
            return r;
    } while (memcmp(rnd, "\0\0\0\0\0\0\0\0", 8) == 0); /* all-zero is invalid in OTel */
    to_hex(rnd, sizeof(rnd), ret);
    ret[XRAY_SPAN_ID_LEN] = '\0';
    return 0;
}

void ids_xray_to_otel_trace_id(const char xray[XRAY_TRACE_ID_LEN + 1], char ret[33])
{
    memcpy(ret, xray + 2, 8);
    memcpy(ret + 8, xray + 11, 24);
    ret[32] = '\0';
}

int ids_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}
