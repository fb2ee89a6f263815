/*
 * log.c - see log.h.
 *
 * Each line is formatted into a stack buffer and written with a single
 * write(2) (two for a line over 4096 bytes, only the summary's can be), so
 * lines from different threads never interleave mid-line.
 *
 * A stderr nobody reads (Lambda's log pipe full) must not hold the
 * extension: a line waits at most LOG_WRITE_WAIT_MS for room, and once a
 * line was dropped the next ones do not wait at all until one goes through
 * again; that one is followed by a line counting those dropped.
 */
#include "log.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"

#define LOG_LINE_MAX 4096 /* the shutdown summary holds every counter */
#define LOG_PREFIX_MAX 64
/* Appended to a line cut at LOG_LINE_MAX bytes. */
#define LOG_TRUNCATED_MARK " [...]"
#define LOG_WRITE_WAIT_MS 100
/* Linux's PIPE_BUF: a write up to this size to a pipe is atomic. */
#define LOG_PIPE_ATOMIC 4096

static atomic_bool stderr_stalled;        /* a line was dropped: do not wait */
static atomic_ullong stderr_dropped;      /* lines dropped since the last one written */

static int64_t mono_ns(void);

enum log_level log_current_level = LOG_LEVEL_INFO;
static char log_prefix[LOG_PREFIX_MAX] = "lambda-tracer";

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

void log_set_prefix(const char *prefix)
{
    if (prefix == NULL || prefix[0] == '\0')
        return;
    snprintf(log_prefix, sizeof(log_prefix), "%s", prefix);
}

int log_level_parse(const char *text, enum log_level *ret_level)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};

    if (text == NULL)
        return -EINVAL;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcasecmp(text, names[i]) == 0) {
            *ret_level = (enum log_level)i;
            return 0;
        }
    }
    if (strcasecmp(text, "warning") == 0) {
        *ret_level = LOG_LEVEL_WARN;
        return 0;
    }
    return -EINVAL;
}

const char *log_level_name(enum log_level level)
{
    if ((unsigned)level >= sizeof(level_names) / sizeof(level_names[0]))
        return "?";
    return level_names[level];
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 when the
 * bytes there are not one: overlong forms, surrogates, code points over
 * U+10FFFF and truncated sequences are refused. */
static size_t utf8_sequence(const unsigned char *p, size_t n)
{
    size_t skip;

    return p[0] < 0x80 ? 1 : buf_utf8_sequence(p, n, &skip);
}

/* Whether a valid sequence of len bytes is one some reader takes for a line
 * break or a control: C1 controls (NEL among them), U+2028 and U+2029. */
static bool utf8_is_break(const unsigned char *p, size_t len)
{
    return (len == 2 && p[0] == 0xc2 && p[1] < 0xa0) ||
           (len == 3 && p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9));
}

size_t log_escape(const char *src, size_t src_len, char *dst, size_t dst_size, size_t *ret_consumed)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)src;
    size_t out = 0;
    size_t i = 0;

    if (ret_consumed != NULL)
        *ret_consumed = 0;
    if (dst_size == 0)
        return 0;
    while (i < src_len) {
        char esc[16];
        size_t esc_len = 0;
        size_t take = utf8_sequence(s + i, src_len - i);
        unsigned c = s[i];

        if (take == 1 && c >= 0x20 && c != 0x7f && c != '\\') {
            if (out + 1 >= dst_size)
                break;
            dst[out++] = (char)c;
            i++;
            continue;
        }
        if (take > 1 && !utf8_is_break(s + i, take)) {
            if (out + take >= dst_size)
                break;
            memcpy(dst + out, s + i, take);
            out += take;
            i += take;
            continue;
        }
        if (take == 0)
            take = 1; /* one invalid byte at a time */
        /* Escape every byte of the unit: \n \r \t \\ or \xHH. */
        for (size_t k = 0; k < take; k++) {
            unsigned b = s[i + k];
            esc[esc_len++] = '\\';
            if (b == '\n')
                esc[esc_len++] = 'n';
            else if (b == '\r')
                esc[esc_len++] = 'r';
            else if (b == '\t')
                esc[esc_len++] = 't';
            else if (b == '\\')
                esc[esc_len++] = '\\';
            else {
                esc[esc_len++] = 'x';
                esc[esc_len++] = hex[b >> 4];
                esc[esc_len++] = hex[b & 0xfu];
            }
        }
        if (out + esc_len >= dst_size)
            break;
        memcpy(dst + out, esc, esc_len);
        out += esc_len;
        i += take;
    }
    dst[out] = '\0';
    if (ret_consumed != NULL)
        *ret_consumed = i;
    return out;
}

/* Writes p to fd in pieces of at most chunk bytes (a pipe's atomic write),
 * each once poll says there is room, until deadline_ns: a full pipe costs
 * at most the time left, never a blocked write; one try even when the time
 * is already up.  0, or -ETIMEDOUT or the error that stopped it.  A line
 * cut short is ended, when it can be without waiting, so the next one is
 * not glued to it. */
static int write_within(int fd, const char *p, size_t len, size_t chunk, int64_t deadline_ns)
{
    bool ends_line = len > 0 && p[len - 1] == '\n';
    bool cut = false;
    int r = 0;

    while (len > 0) {
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int64_t left_ms = (deadline_ns - mono_ns() + 999999) / 1000000;
        int pr = poll(&pfd, 1, left_ms <= 0 ? 0 : left_ms > 1000 ? 1000 : (int)left_ms);
        ssize_t w;

        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0) {
            r = -errno;
            break;
        }
        if (pr == 0) {
            if (left_ms <= 0) {
                r = -ETIMEDOUT;
                break;
            }
            continue;
        }
        if (pfd.revents & (POLLERR | POLLNVAL)) {
            r = -EIO;
            break;
        }
        w = write(fd, p, len < chunk ? len : chunk);
        if (w < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (w <= 0) {
            r = w < 0 ? -errno : -EIO;
            break;
        }
        cut = true;
        p += w;
        len -= (size_t)w;
    }
    if (r < 0 && cut && ends_line) {
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        if (poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLOUT))
            (void)!write(fd, "\n", 1);
    }
    return r;
}

/* A whole line to stderr: true when all of it went out.  Waits at most
 * LOG_WRITE_WAIT_MS (none while stalled). */
static bool write_line(const char *p, size_t len)
{
    int64_t wait_ns = atomic_load(&stderr_stalled) ? 0 : LOG_WRITE_WAIT_MS * 1000000LL;

    return write_within(STDERR_FILENO, p, len, LOG_PIPE_ATOMIC, mono_ns() + wait_ns) == 0;
}

void log_write(enum log_level level, const char *fmt, ...)
{
    char text[LOG_LINE_MAX];
    char line[LOG_LINE_MAX + sizeof(LOG_TRUNCATED_MARK) + 1];
    va_list ap;
    int n;
    int m;
    size_t len;
    size_t text_len;

    va_start(ap, fmt);
    n = snprintf(line, LOG_LINE_MAX, "[%s] %s ", log_prefix, log_level_name(level));
    /* va_start is above; the analyzer misreads it. */
    m = vsnprintf(text, sizeof(text), fmt, ap); /* NOLINT(clang-analyzer-valist.Uninitialized) */
    va_end(ap);
    if (n < 0 || m < 0)
        return;
    len = (size_t)n < LOG_LINE_MAX ? (size_t)n : LOG_LINE_MAX - 1;
    text_len = (size_t)m < sizeof(text) ? (size_t)m : sizeof(text) - 1;
    /* Whatever the message carries (ids and error types from the platform,
     * a function's log text), it stays one line: control bytes, invalid
     * UTF-8 and line separators are escaped, the length bounded. */
    size_t consumed = 0;
    len += log_escape(text, text_len, line + len, LOG_LINE_MAX - len, &consumed);
    bool cut = (size_t)m >= sizeof(text) || consumed < text_len;
    if (cut) {
        memcpy(line + len, LOG_TRUNCATED_MARK, sizeof(LOG_TRUNCATED_MARK) - 1);
        len += sizeof(LOG_TRUNCATED_MARK) - 1;
    }
    line[len++] = '\n';

    /* Best effort: a failing stderr must never affect the extension. */
    if (!write_line(line, len)) {
        atomic_store(&stderr_stalled, true);
        atomic_fetch_add(&stderr_dropped, 1);
        return;
    }
    atomic_store(&stderr_stalled, false);
    unsigned long long dropped = atomic_exchange(&stderr_dropped, 0);
    if (dropped > 0)
        log_warn("%llu log line%s dropped: stderr (the function's log stream) was not being read", dropped,
                 dropped == 1 ? "" : "s");
}

static pthread_mutex_t stdout_lock = PTHREAD_MUTEX_INITIALIZER;

void log_stdout_lock(void)
{
    pthread_mutex_lock(&stdout_lock);
}

void log_stdout_unlock(void)
{
    pthread_mutex_unlock(&stdout_lock);
}

static int64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* stdout's pieces: a pipe's atomic write (write_within). */
#define STDOUT_CHUNK_BYTES 4096

int log_write_stdout(const char *p, size_t len, int64_t deadline_ns)
{
    int r;

    /* The lock, within the deadline (the other writer is bounded too). */
    while (pthread_mutex_trylock(&stdout_lock) != 0) {
        if (mono_ns() >= deadline_ns)
            return -ETIMEDOUT;
        poll(NULL, 0, 1);
    }
    r = write_within(STDOUT_FILENO, p, len, STDOUT_CHUNK_BYTES, deadline_ns);
    pthread_mutex_unlock(&stdout_lock);
    return r;
}
