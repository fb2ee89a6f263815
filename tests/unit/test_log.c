/* Unit tests for log.c: whatever a message carries, it is one line. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

#include "log.h"

static void escapes_to(const char *src, size_t len, const char *want)
{
    char out[512];
    size_t consumed = 0;
    size_t n = log_escape(src, len, out, sizeof(out), &consumed);

    assert_string_equal(out, want);
    assert_int_equal(n, strlen(want));
    assert_int_equal(consumed, len);
}

#define ESC(lit, want) escapes_to(lit, sizeof(lit) - 1, want)

static void test_escape_control_bytes(void **state)
{
    (void)state;
    ESC("plain text, 42 = ok", "plain text, 42 = ok");
    ESC("a\nb", "a\\nb");
    ESC("a\r\nb", "a\\r\\nb");
    ESC("tab\there", "tab\\there");
    ESC("back\\slash", "back\\\\slash"); /* so an escape in the text cannot pass for one of ours */
    ESC("nul\0x", "nul\\x00x");
    ESC("\x01\x1b[31m\x1f", "\\x01\\x1b[31m\\x1f");
    ESC("del\x7f", "del\\x7f");
    ESC("", "");
}

static void test_escape_utf8(void **state)
{
    (void)state;
    /* valid UTF-8 is kept */
    ESC("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    ESC("\xc2\xa0", "\xc2\xa0"); /* U+00A0, the first after the C1 block */
    /* line separators some readers break on */
    ESC("a\xe2\x80\xa8" "b\xe2\x80\xa9" "c", "a\\xe2\\x80\\xa8b\\xe2\\x80\\xa9c");
    ESC("nel\xc2\x85", "nel\\xc2\\x85");
    ESC("\xc2\x80\xc2\x9f", "\\xc2\\x80\\xc2\\x9f");
    /* invalid: each byte escaped on its own */
    ESC("\x80", "\\x80");
    ESC("\xbf\xff\xfe", "\\xbf\\xff\\xfe");
    ESC("\xc0\x8a", "\\xc0\\x8a");               /* overlong LF */
    ESC("\xe0\x80\x8a", "\\xe0\\x80\\x8a");       /* overlong LF, 3 bytes */
    ESC("\xf0\x80\x80\x8a", "\\xf0\\x80\\x80\\x8a");
    ESC("\xed\xa0\x80", "\\xed\\xa0\\x80");       /* surrogate */
    ESC("\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80"); /* over U+10FFFF */
    ESC("\xe2\x82", "\\xe2\\x82");               /* cut short */
    ESC("\xe2\x82" "x", "\\xe2\\x82x");
    ESC("\xc3" "\n", "\\xc3\\n");
}

/* A full buffer stops before the first unit that does not fit: never half
 * an escape, never half a character. */
static void test_escape_bounds(void **state)
{
    char out[8];
    size_t consumed;
    size_t n;
    (void)state;

    n = log_escape("abcdefghij", 10, out, sizeof(out), &consumed);
    assert_int_equal(n, 7);
    assert_int_equal(consumed, 7);
    assert_string_equal(out, "abcdefg");
    n = log_escape("abcde\nf", 7, out, sizeof(out), &consumed);
    assert_string_equal(out, "abcde\\n"); /* just fits with its NUL */
    assert_int_equal(n, 7);
    assert_int_equal(consumed, 6);
    n = log_escape("abcdef\ng", 8, out, sizeof(out), &consumed);
    assert_string_equal(out, "abcdef"); /* "\n" would need 2 of the 1 left */
    assert_int_equal(n, 6);
    assert_int_equal(consumed, 6);
    n = log_escape("abcd\x01", 5, out, sizeof(out), &consumed);
    assert_string_equal(out, "abcd"); /* "\x01" would need 4 of the 3 left */
    assert_int_equal(consumed, 4);
    n = log_escape("abcd\xe2\x82\xac", 7, out, sizeof(out), &consumed);
    assert_string_equal(out, "abcd\xe2\x82\xac");
    n = log_escape("abcde\xe2\x82\xac", 8, out, sizeof(out), &consumed);
    assert_string_equal(out, "abcde");
    assert_int_equal(consumed, 5);
    n = log_escape("a\x01", 2, out, 1, &consumed);
    assert_int_equal(n, 0);
    assert_string_equal(out, "");
    assert_int_equal(log_escape("a", 1, out, 0, NULL), 0);
}

/* log_write on a pipe in place of stderr: capture_begin, log, capture_end
 * returns what was written. */
static int cap_fds[2];
static int cap_saved;

static void capture_begin(void)
{
    assert_int_equal(pipe(cap_fds), 0);
    cap_saved = dup(STDERR_FILENO);
    assert_true(cap_saved >= 0);
    dup2(cap_fds[1], STDERR_FILENO);
}

static size_t capture_end(char *buf, size_t size)
{
    ssize_t n;

    dup2(cap_saved, STDERR_FILENO);
    close(cap_saved);
    close(cap_fds[1]);
    n = read(cap_fds[0], buf, size - 1);
    close(cap_fds[0]);
    assert_true(n > 0);
    buf[n] = '\0';
    return (size_t)n;
}

#define capture(buf, size, fmt, arg)                                                               \
    (capture_begin(), log_write(LOG_LEVEL_ERROR, fmt, arg), capture_end(buf, size))

static void test_write_is_one_line(void **state)
{
    char buf[4096];
    size_t n;
    (void)state;

    log_set_prefix("lt");
    n = capture(buf, sizeof(buf), "request %s done", "r1\n[lt] ERROR forged\r\n");
    assert_string_equal(buf, "[lt] ERROR request r1\\n[lt] ERROR forged\\r\\n done\n");
    assert_int_equal(n, strlen(buf));
    /* the format itself is ours and passes unchanged */
    n = capture(buf, sizeof(buf), "%s", "fine");
    assert_string_equal(buf, "[lt] ERROR fine\n");
    (void)n;
}

static void test_write_bounds_the_line(void **state)
{
    static char big[8192];
    char buf[8192];
    size_t n;
    (void)state;

    log_set_prefix("lt");
    memset(big, 'a', sizeof(big) - 1);
    n = capture(buf, sizeof(buf), "%s", big);
    assert_true(n <= 4096 + 8);
    assert_int_equal(buf[n - 1], '\n');
    assert_null(memchr(buf, '\n', n - 1));
    assert_non_null(strstr(buf, " [...]\n"));
    /* all newlines: each takes two bytes, the line is still bounded and whole */
    memset(big, '\n', sizeof(big) - 1);
    n = capture(buf, sizeof(buf), "%s", big);
    assert_true(n <= 4096 + 8);
    assert_null(memchr(buf, '\n', n - 1));
    assert_non_null(strstr(buf, "\\n\\n [...]\n"));
    /* invalid UTF-8 everywhere: four bytes each */
    memset(big, 0xff, sizeof(big) - 1);
    n = capture(buf, sizeof(buf), "%s", big);
    assert_true(n <= 4096 + 8);
    assert_non_null(strstr(buf, "\\xff [...]\n"));
}

/* Logging is not on a hot path, but every line goes through the escaper:
 * it must stay cheap.  Prints the figure. */
static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* stdout as a pipe: a line goes through whole; with nobody reading and
 * the pipe full, the write gives up at its deadline (never blocks), and
 * ends the cut line; the lock held by another writer also ends at the
 * deadline. */
static void test_stdout_write_is_bounded(void **state)
{
    int fds[2];
    int saved = dup(STDOUT_FILENO);
    char big[70000];
    char got[64];
    int64_t t0;
    (void)state;
    assert_true(saved >= 0);
    assert_int_equal(pipe(fds), 0);
    assert_true(dup2(fds[1], STDOUT_FILENO) >= 0);

    assert_int_equal(log_write_stdout("{\"a\":1}\n", 8, now_ns() + 1000000000LL), 0);
    assert_int_equal(read(fds[0], got, sizeof(got)), 8);
    assert_memory_equal(got, "{\"a\":1}\n", 8);

    /* nobody reads: fill the pipe (64 KiB by default) and more */
    memset(big, 'x', sizeof(big));
    big[sizeof(big) - 1] = '\n';
    assert_true(fcntl(fds[1], F_SETFL, O_NONBLOCK) == 0);
    t0 = now_ns();
    assert_int_equal(log_write_stdout(big, sizeof(big), t0 + 50000000LL), -ETIMEDOUT);
    assert_true(now_ns() - t0 < 2000000000LL);

    log_stdout_lock();
    t0 = now_ns();
    assert_int_equal(log_write_stdout("y\n", 2, t0 + 20000000LL), -ETIMEDOUT);
    assert_true(now_ns() - t0 >= 20000000LL);
    log_stdout_unlock();

    assert_true(dup2(saved, STDOUT_FILENO) >= 0);
    close(saved);
    close(fds[0]);
    close(fds[1]);
}

/* A two-page pipe, full, blocking (as Lambda's log pipe is when its reader
 * stalls): every blocking write to it would wait forever. */
static void full_pipe(int fds[2])
{
    char page[4096];

    assert_int_equal(pipe(fds), 0);
    assert_true(fcntl(fds[1], F_SETPIPE_SZ, 8192) >= 0);
    assert_true(fcntl(fds[1], F_SETFL, O_NONBLOCK) == 0);
    memset(page, 'x', sizeof(page));
    while (write(fds[1], page, sizeof(page)) > 0) {
    }
    assert_true(fcntl(fds[1], F_SETFL, 0) == 0);
    assert_true(fcntl(fds[0], F_SETFL, O_NONBLOCK) == 0);
}

/* stderr nobody reads: lines are dropped, the first after a short wait, the
 * next ones at once; once the pipe drains, the next line is followed by one
 * counting those dropped.  (Before: log_write blocked in write(2) for good,
 * and with it Init and SHUTDOWN.)  alarm() turns such a hang into a failure. */
static void test_stderr_full_pipe_never_blocks(void **state)
{
    int fds[2];
    int saved = dup(STDERR_FILENO);
    char long_text[6000];
    char got[1 << 16];
    ssize_t n, total = 0;
    int64_t t0;
    (void)state;

    assert_true(saved >= 0);
    log_current_level = LOG_LEVEL_WARN; /* the count is a WARN line */
    full_pipe(fds);
    assert_true(dup2(fds[1], STDERR_FILENO) >= 0);
    alarm(10);
    memset(long_text, 'y', sizeof(long_text) - 1);
    long_text[sizeof(long_text) - 1] = '\0';
    t0 = now_ns();
    for (int i = 0; i < 4; i++)
        log_write(LOG_LEVEL_WARN, "line %d", i);
    log_write(LOG_LEVEL_WARN, "%s", long_text);
    /* one wait of at most 100 ms; generous for valgrind and a loaded machine */
    assert_true(now_ns() - t0 < 1000000000LL);
    while ((n = read(fds[0], got, sizeof(got))) > 0) {
    }
    log_write(LOG_LEVEL_WARN, "after");
    alarm(0);
    while ((n = read(fds[0], got + total, sizeof(got) - 1 - (size_t)total)) > 0)
        total += n;
    got[total] = '\0';
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    assert_non_null(strstr(got, "] WARN after\n"));
    assert_non_null(strstr(got, "] WARN 5 log lines dropped: stderr (the function's log stream) was not being read\n"));
    assert_null(strstr(got, "line 0"));
    close(fds[0]);
    close(fds[1]);
}

/* A stdout line cut by the deadline on a full, blocking pipe: ending it
 * with a newline must not wait either (it did, for good). */
static void test_stdout_cut_line_on_a_full_blocking_pipe(void **state)
{
    int fds[2];
    int saved = dup(STDOUT_FILENO);
    char big[20000];
    char drain[4096];
    int64_t t0;
    (void)state;

    assert_true(saved >= 0);
    full_pipe(fds);
    /* room for one page: the first piece goes out, then the pipe is full */
    assert_true(read(fds[0], drain, sizeof(drain)) == (ssize_t)sizeof(drain));
    assert_true(dup2(fds[1], STDOUT_FILENO) >= 0);
    memset(big, 'z', sizeof(big));
    big[sizeof(big) - 1] = '\n';
    alarm(10);
    t0 = now_ns();
    assert_int_equal(log_write_stdout(big, sizeof(big), t0 + 50000000LL), -ETIMEDOUT);
    alarm(0);
    assert_true(now_ns() - t0 < 2000000000LL);
    assert_true(dup2(saved, STDOUT_FILENO) >= 0);
    close(saved);
    close(fds[0]);
    close(fds[1]);
}

static void test_escape_cost(void **state)
{
    char line[200];
    char out[1024];
    struct timespec t0, t1;
    const int rounds = 20000;
    size_t total = 0;
    (void)state;

    for (size_t i = 0; i < sizeof(line); i++)
        line[i] = (char)('a' + (int)(i % 26));
    memcpy(line + 50, "\xc3\xa9\n\x01", 4);
    /* The best of 20 batches: load stretches some, not every one. */
    double ns = 1e18;
    for (int b = 0; b < 20; b++) {
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int i = 0; i < rounds / 20; i++)
            total += log_escape(line, sizeof(line), out, sizeof(out), NULL);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double batch = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) /
                       (rounds / 20);
        if (batch < ns)
            ns = batch;
    }
    printf("log_escape: %.0f ns per 200-byte line (best of 20 batches)\n", ns);
    assert_true(total > 0);
    /* generous: valgrind runs this too (measured ~0.3 us plain) */
    assert_true(ns < 200000.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape_control_bytes),
        cmocka_unit_test(test_escape_utf8),
        cmocka_unit_test(test_escape_bounds),
        cmocka_unit_test(test_write_is_one_line),
        cmocka_unit_test(test_write_bounds_the_line),
        cmocka_unit_test(test_stderr_full_pipe_never_blocks),
        cmocka_unit_test(test_stdout_cut_line_on_a_full_blocking_pipe),
        cmocka_unit_test(test_stdout_write_is_bounded),
        cmocka_unit_test(test_escape_cost),
    };
    return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
