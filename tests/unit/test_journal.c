/* Unit tests for journal.c: what one process writes, the next reads back;
 * releases, a full journal, garbage and foreign files, failures, cost. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "journal.h"
#include "fail_alloc.h"

static char dir[64];
static char path[128];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/lt-journal-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    assert_int_equal(journal_path(dir, "lambda-tracer", path, sizeof(path)), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    rmdir(dir);
    return 0;
}

static struct journal_entry entry(const char *rid, int n)
{
    struct journal_entry e = {0};
    snprintf(e.request_id, sizeof(e.request_id), "%s", rid);
    snprintf(e.trace_id, sizeof(e.trace_id), "1-5759e988-bd862e3fe1be46a99427279%u", (unsigned)n % 10u);
    snprintf(e.segment_id, sizeof(e.segment_id), "53995c3f42cd8ad%u", (unsigned)n % 10u);
    e.sampled = true;
    e.start_us = 1700000000000000LL + n;
    e.deadline_ms = 1700000003000LL;
    return e;
}

static struct journal *open_expect(size_t want_found, struct journal_entry *found)
{
    struct journal *j = NULL;
    size_t n = 99;
    assert_int_equal(journal_open(path, &j, found, JOURNAL_SLOTS, &n), 0);
    assert_int_equal(n, want_found);
    return j;
}

static void test_path(void **state)
{
    char buf[64];
    (void)state;
    assert_int_equal(journal_path(NULL, "x", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "/tmp/.x.journal");
    assert_int_equal(journal_path("", "x", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "/tmp/.x.journal");
    assert_int_equal(journal_path("/var/tmp", "y", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "/var/tmp/.y.journal");
    assert_int_equal(journal_path("/a-very-long-directory-name-indeed", "y", buf, 16), -ENAMETOOLONG);
}

static void test_unfinished_entries_survive_the_process(void **state)
{
    struct journal_entry found[JOURNAL_SLOTS];
    struct journal_entry a = entry("req-a", 1);
    struct journal_entry b = entry("req-b", 2);
    struct journal *j = open_expect(0, found);
    (void)state;

    int sa = journal_begin(j, &a);
    int sb = journal_begin(j, &b);
    assert_true(sa >= 0 && sb >= 0 && sa != sb);
    assert_int_equal(journal_find(j, "req-b"), sb);
    assert_int_equal(journal_done(j, "req-b", 1700000000500000LL, 2, "Runtime.ExitError"), 0);
    assert_int_equal(journal_done(j, "req-zz", 1, 1, NULL), -ENOENT);
    journal_release(j, sa); /* a was exported */
    assert_int_equal(journal_find(j, "req-a"), -ENOENT);
    journal_close(j, false); /* killed: nothing cleared */

    j = open_expect(1, found);
    assert_string_equal(found[0].request_id, "req-b");
    assert_string_equal(found[0].trace_id, b.trace_id);
    assert_string_equal(found[0].segment_id, b.segment_id);
    assert_string_equal(found[0].parent_id, "");
    assert_true(found[0].sampled);
    assert_int_equal(found[0].start_us, b.start_us);
    assert_int_equal(found[0].deadline_ms, b.deadline_ms);
    assert_true(found[0].done);
    assert_int_equal(found[0].done_us, 1700000000500000LL);
    assert_int_equal(found[0].done_status, 2);
    assert_string_equal(found[0].done_error, "Runtime.ExitError");
    /* the recovered slot is held until released, then reused */
    int sr = journal_find(j, "req-b");
    assert_true(sr >= 0);
    journal_release(j, sr);
    journal_close(j, false);
    j = open_expect(0, found);
    journal_close(j, false);
}

static void test_clean_exit_leaves_nothing(void **state)
{
    struct journal_entry found[JOURNAL_SLOTS];
    struct journal_entry a = entry("req-a", 1);
    struct journal *j = open_expect(0, found);
    struct stat st;
    (void)state;
    assert_true(journal_begin(j, &a) >= 0);
    journal_close(j, true);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    j = open_expect(0, found);
    /* opening an empty journal reads it and writes nothing (Init's system
     * calls are billed) */
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 0);
    journal_close(j, false);
}

static void test_full_journal_refuses_and_recovers(void **state)
{
    struct journal_entry found[JOURNAL_SLOTS];
    struct journal *j = open_expect(0, found);
    int slots[JOURNAL_SLOTS];
    char rid[32];
    (void)state;
    for (int i = 0; i < JOURNAL_SLOTS; i++) {
        snprintf(rid, sizeof(rid), "req-%d", i);
        struct journal_entry e = entry(rid, i);
        slots[i] = journal_begin(j, &e);
        assert_true(slots[i] >= 0);
    }
    struct journal_entry extra = entry("req-extra", 9);
    /* every slot held: -EBUSY, told apart from a full /tmp (-ENOSPC), and
     * the journal stays on */
    assert_int_equal(journal_begin(j, &extra), -EBUSY);
    assert_true(journal_ok(j));
    assert_int_equal(journal_error(j), 0);
    journal_release(j, slots[3]);
    assert_int_equal(journal_begin(j, &extra), slots[3]);
    journal_release(j, -1);           /* ignored */
    journal_release(j, JOURNAL_SLOTS); /* ignored */
    journal_close(j, false);
    j = open_expect(JOURNAL_SLOTS, found);
    journal_close(j, true);
}

/* journal_release_many: the named slots (adjacent or not, out-of-range
 * ones ignored) are wiped and free again; every other slot keeps its
 * entry, on disk too. */
static void test_release_many_wipes_only_those(void **state)
{
    struct journal_entry found[JOURNAL_SLOTS];
    int slots[JOURNAL_SLOTS];
    char rid[16];
    (void)state;
    struct journal *j = open_expect(0, found);
    for (int i = 0; i < JOURNAL_SLOTS; i++) {
        snprintf(rid, sizeof(rid), "req-%d", i);
        struct journal_entry e = entry(rid, i);
        slots[i] = journal_begin(j, &e);
        assert_true(slots[i] >= 0);
    }
    /* a run of three, a single one apart from it, and two to ignore */
    int many[] = {slots[1], slots[2], slots[3], slots[6], -1, JOURNAL_SLOTS};
    journal_release_many(j, many, sizeof(many) / sizeof(many[0]));
    assert_true(journal_ok(j));
    assert_int_equal(journal_find(j, "req-2"), -ENOENT);
    assert_int_equal(journal_find(j, "req-6"), -ENOENT);
    assert_int_equal(journal_find(j, "req-0"), slots[0]);
    assert_int_equal(journal_find(j, "req-4"), slots[4]);
    /* four slots free again */
    for (int i = 0; i < 4; i++) {
        snprintf(rid, sizeof(rid), "new-%d", i);
        struct journal_entry e = entry(rid, i);
        assert_true(journal_begin(j, &e) >= 0);
    }
    struct journal_entry extra = entry("one-more", 9);
    assert_int_equal(journal_begin(j, &extra), -EBUSY);
    journal_close(j, false);
    /* on disk: the four kept and the four new, none of the released */
    j = open_expect(JOURNAL_SLOTS, found);
    bool seen[JOURNAL_SLOTS] = {false};
    for (int i = 0; i < JOURNAL_SLOTS; i++) {
        assert_string_not_equal(found[i].request_id, "req-1");
        assert_string_not_equal(found[i].request_id, "req-2");
        assert_string_not_equal(found[i].request_id, "req-3");
        assert_string_not_equal(found[i].request_id, "req-6");
        for (int k = 0; k < JOURNAL_SLOTS; k++) {
            snprintf(rid, sizeof(rid), "req-%d", k);
            if (strcmp(found[i].request_id, rid) == 0)
                seen[k] = true;
        }
    }
    assert_true(seen[0] && seen[4] && seen[5] && seen[7]);
    journal_release_many(NULL, many, 1); /* NULL-safe */
    journal_close(j, true);
}

/* The journal file holds at least want bytes (it is never shortened), and
 * every byte it holds is zero. */
static void assert_file_zero(size_t want)
{
    unsigned char buf[JOURNAL_SLOTS * 256 + 1];
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    ssize_t got = pread(fd, buf, sizeof(buf), 0);
    close(fd);
    assert_true(got >= (ssize_t)want && got <= JOURNAL_SLOTS * 256);
    for (ssize_t i = 0; i < got; i++)
        if (buf[i] != 0)
            fail_msg("byte %zd of the journal is 0x%02x, not wiped", i, buf[i]);
}

/* Whatever else is in the file is not believed, and is wiped. */
static void test_garbage_is_ignored_and_wiped(void **state)
{
    struct journal_entry found[JOURNAL_SLOTS];
    struct journal_entry a = entry("req-a", 1);
    struct journal_entry bad_ids = entry("req-b", 2);
    struct journal *j = open_expect(0, found);
    unsigned char junk[256];
    int fd;
    (void)state;
    int sa = journal_begin(j, &a);
    snprintf(bad_ids.segment_id, sizeof(bad_ids.segment_id), "NOT-HEX-AT-ALL!!");
    int sb = journal_begin(j, &bad_ids); /* written fine, refused when read back */
    assert_true(sa >= 0 && sb >= 0);
    journal_close(j, false);
    /* a flipped byte in slot a (checksum), random bytes in another slot */
    fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "Z", 1, (off_t)sa * 256 + 40), 1);
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (unsigned char)(i * 37 + 11);
    assert_int_equal(pwrite(fd, junk, sizeof(junk), 5 * 256), (ssize_t)sizeof(junk));
    close(fd);
    j = open_expect(0, found);
    journal_close(j, false);
    /* wiped: every slot (the two refused, the random one, the unused ones)
     * reads back as zeros */
    assert_file_zero(6 * 256);
    /* and a truncated file is simply shorter: its garbage is wiped too */
    fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, junk, 100, 0), 100);
    close(fd);
    assert_int_equal(truncate(path, 100), 0);
    j = open_expect(0, found);
    journal_close(j, false);
    assert_file_zero(256);
    j = open_expect(0, found);
    journal_close(j, true);
}

static void test_symlink_and_foreign_files_are_refused(void **state)
{
    struct journal_entry found[JOURNAL_SLOTS];
    struct journal *j = NULL;
    size_t n = 7;
    char target[160];
    (void)state;
    snprintf(target, sizeof(target), "%s/target", dir);
    assert_int_equal(symlink(target, path), 0);
    assert_int_equal(journal_open(path, &j, found, JOURNAL_SLOTS, &n), -ELOOP);
    assert_int_equal(n, 0);
    assert_int_equal(access(target, F_OK), -1); /* nothing created through the link */
    unlink(path);
    assert_int_equal(mkdir(path, 0700), 0); /* not a regular file */
    assert_true(journal_open(path, &j, found, JOURNAL_SLOTS, &n) < 0);
    rmdir(path);
    char nodir[160];
    snprintf(nodir, sizeof(nodir), "%s/missing/.x.journal", dir);
    assert_int_equal(journal_open(nodir, &j, found, JOURNAL_SLOTS, &n), -ENOENT);
}

static void test_null_journal_is_a_no_op(void **state)
{
    struct journal_entry a = entry("req-a", 1);
    (void)state;
    assert_int_equal(journal_begin(NULL, &a), -ENODEV);
    assert_int_equal(journal_error(NULL), -ENODEV);
    assert_int_equal(journal_done(NULL, "req-a", 1, 1, NULL), -ENODEV);
    assert_int_equal(journal_find(NULL, "req-a"), -ENOENT);
    assert_false(journal_ok(NULL));
    journal_release(NULL, 0);
    journal_close(NULL, true);
}

static void test_out_of_memory(void **state)
{
    struct journal_entry found[JOURNAL_SLOTS];
    struct journal *j = NULL;
    size_t n = 3;
    (void)state;
    fail_alloc_reset();
    fail_alloc_fail_at(1);
    assert_int_equal(journal_open(path, &j, found, JOURNAL_SLOTS, &n), -ENOMEM);
    fail_alloc_fail_at(0);
    assert_int_equal(n, 0);
    assert_int_equal(fail_alloc_live(), 0);
}

/* A write that fails turns the journal off; the caller carries on.  The
 * file size limit makes the next pwrite short (SIGXFSZ ignored). */
static void test_write_failure_turns_it_off(void **state)
{
    struct journal_entry found[JOURNAL_SLOTS];
    struct journal_entry a = entry("req-a", 1);
    struct journal *j = NULL;
    struct rlimit old, small = {.rlim_cur = 100, .rlim_max = RLIM_INFINITY};
    size_t n;
    (void)state;
    assert_int_equal(journal_open("/dev/null", &j, found, JOURNAL_SLOTS, &n), -EPERM); /* not regular */
    j = open_expect(0, found);
    assert_true(journal_ok(j));
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    small.rlim_max = old.rlim_max;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    assert_int_equal(journal_error(j), 0);
    int r = journal_begin(j, &a);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    /* the write's own errno, carried to the caller (which logs it), and
     * kept for a later look */
    assert_int_equal(r, -EFBIG);
    assert_false(journal_ok(j));
    assert_int_equal(journal_error(j), -EFBIG);
    assert_int_equal(journal_begin(j, &a), -ENODEV);
    assert_int_equal(journal_done(j, "req-a", 1, 1, NULL), -ENODEV);
    journal_close(j, true);
}

/* RLIMIT_FSIZE set to limit for the calling process; returns the old one.
 * SIGXFSZ is ignored as main.c ignores it, so a write past the limit fails
 * with EFBIG instead of killing the test. */
static struct rlimit fsize_limit(rlim_t limit)
{
    struct rlimit old, small;
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    small.rlim_cur = limit;
    small.rlim_max = old.rlim_max;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    return old;
}

static void fill_file(unsigned char byte, size_t len)
{
    unsigned char buf[JOURNAL_SLOTS * 256];
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0 && len <= sizeof(buf));
    memset(buf, byte, len);
    assert_int_equal(write(fd, buf, len), (ssize_t)len);
    close(fd);
}

/* A stale file that must be wiped under a file size limit: journal_open
 * fails with the cause (EFBIG), not a generic EIO, hands nothing out and
 * leaves the file as it was; at the limit 0 (no write at all) as at 100
 * bytes (a short write, then EFBIG). */
static void test_file_size_limit_at_open(void **state)
{
    static const rlim_t limits[] = {0, 100, 255};
    struct journal_entry found[JOURNAL_SLOTS];
    (void)state;
    for (size_t k = 0; k < sizeof(limits) / sizeof(limits[0]); k++) {
        struct journal *j = (struct journal *)&found; /* must not be touched */
        size_t n = 5;
        fill_file(0xff, JOURNAL_SLOTS * 256);
        struct rlimit old = fsize_limit(limits[k]);
        int r = journal_open(path, &j, found, JOURNAL_SLOTS, &n);
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
        assert_int_equal(r, -EFBIG);
        assert_int_equal(n, 0);
        assert_ptr_equal(j, (struct journal *)&found);
        /* a predecessor's file is left as it was (what it holds may still
         * be recovered by a process without the limit) */
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_size, JOURNAL_SLOTS * 256);
        /* without the limit the same file opens and is wiped */
        j = open_expect(0, found);
        journal_close(j, false);
        assert_file_zero(JOURNAL_SLOTS * 256);
    }
    /* an empty or absent file needs no write: the limit does not matter
     * until the first invocation */
    unlink(path);
    struct rlimit old = fsize_limit(0);
    struct journal *j = NULL;
    size_t n = 5;
    int r = journal_open(path, &j, found, JOURNAL_SLOTS, &n);
    struct journal_entry a = entry("req-a", 1);
    int b = r == 0 ? journal_begin(j, &a) : 0;
    bool ok = journal_ok(j);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    assert_int_equal(r, 0);
    assert_int_equal(b, -EFBIG);
    assert_false(ok);
    assert_int_equal(journal_error(j), -EFBIG);
    journal_close(j, true);
}

/* The limit falls inside the second slot: the first invocation is
 * journaled, the second write is short and then refused; the journal is
 * off (begin, done refused; release writes nothing) and the file emptied:
 * the first entry could not be cleared once exported any more, and a next
 * process must not export it again as a failure.  Not even a process
 * killed before its clean exit leaves it behind. */
static void test_file_size_limit_mid_slot(void **state)
{
    struct journal_entry found[JOURNAL_SLOTS];
    struct journal_entry a = entry("req-a", 1);
    struct journal_entry b = entry("req-b", 2);
    struct journal *j = open_expect(0, found);
    (void)state;
    struct rlimit old = fsize_limit(256 + 100);
    int sa = journal_begin(j, &a);
    int sb = journal_begin(j, &b);
    bool ok = journal_ok(j);
    int sc = journal_begin(j, &b);
    int d = journal_done(j, "req-a", 5, 1, NULL);
    struct stat st;
    int st_r = stat(path, &st);
    journal_release(j, sa);
    journal_close(j, false); /* as if killed: no clean exit */
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    assert_int_equal(sa, 0);
    assert_int_equal(sb, -EFBIG);
    assert_false(ok);
    assert_int_equal(sc, -ENODEV);
    assert_int_equal(d, -ENODEV);
    assert_int_equal(st_r, 0);
    assert_int_equal(st.st_size, 0);
    j = open_expect(0, found);
    journal_close(j, true);
    /* the same with a clean exit after the failure */
    j = open_expect(0, found);
    old = fsize_limit(256 + 100);
    sa = journal_begin(j, &a);
    sb = journal_begin(j, &b);
    journal_close(j, true);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    assert_true(sa == 0 && sb == -EFBIG);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 0);
}

/* runtimeDone's write refused by the limit: its errno, -EFBIG (what the
 * pipeline logs once), and the journal is off. */
static void test_file_size_limit_at_done(void **state)
{
    struct journal_entry found[JOURNAL_SLOTS];
    struct journal_entry a = entry("req-a", 1);
    struct journal *j = open_expect(0, found);
    (void)state;
    int sa = journal_begin(j, &a);
    struct rlimit old = fsize_limit(0);
    int d = journal_done(j, "req-a", 5, 1, "Runtime.ExitError");
    bool ok = journal_ok(j);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    assert_true(sa >= 0);
    assert_int_equal(d, -EFBIG);
    assert_false(ok);
    assert_int_equal(journal_error(j), -EFBIG);
    journal_release(j, sa);
    journal_close(j, true);
}

/* A release's write (on the exporter's thread) that fails turns the
 * journal off too; nobody is there to log it, so journal_error keeps the
 * cause for the pipeline's next look (its one log line names it). */
static void test_release_failure_keeps_its_errno(void **state)
{
    struct journal_entry found[JOURNAL_SLOTS];
    struct journal_entry a = entry("req-a", 1);
    struct journal *j = open_expect(0, found);
    (void)state;
    int sa = journal_begin(j, &a);
    struct rlimit old = fsize_limit(0);
    journal_release(j, sa);
    bool ok = journal_ok(j);
    int error = journal_error(j);
    int b = journal_begin(j, &a);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    assert_int_equal(sa, 0);
    assert_false(ok);
    assert_int_equal(error, -EFBIG);
    assert_int_equal(b, -ENODEV);
    assert_int_equal(journal_error(j), -EFBIG); /* the first cause stays */
    journal_close(j, true);
}

/* The figure the README quotes: one begin + one done + one release, the
 * journal's whole cost per invocation. */
static void test_cost_per_invocation(void **state)
{
    struct journal_entry found[JOURNAL_SLOTS];
    struct journal *j = open_expect(0, found);
    const int batches = 20;
    const int rounds = 100;
    double best = 1e18;
    (void)state;
    /* The best batch: a loaded machine (or valgrind's pace) stretches some
     * batches, but a journal that syncs each write is slow in every one. */
    for (int b = 0; b < batches; b++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int i = 0; i < rounds; i++) {
            struct journal_entry e = entry("req-cost", b * rounds + i);
            int s = journal_begin(j, &e);
            assert_true(s >= 0);
            assert_int_equal(journal_done(j, "req-cost", 1, 1, NULL), 0);
            journal_release(j, s);
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double us = ((double)(t1.tv_sec - t0.tv_sec) * 1e6 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e3) / rounds;
        if (us < best)
            best = us;
    }
    printf("journal: %.2f us per invocation, best of %d batches (3 pwrites of 256 bytes)\n", best, batches);
    /* Measured 3 to 5 us (plain build) and 40 to 57 us under valgrind on a
     * loaded machine; the same journal with an fdatasync after each write
     * measured 344 to 374 us on this ext4 /tmp.  250 us leaves valgrind four
     * times its worst and still fails such a journal. */
    assert_true(best < 250.0);
    journal_close(j, true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unfinished_entries_survive_the_process, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clean_exit_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_journal_refuses_and_recovers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_is_ignored_and_wiped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlink_and_foreign_files_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_null_journal_is_a_no_op, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_failure_turns_it_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_size_limit_at_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_size_limit_mid_slot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_size_limit_at_done, setup, teardown),
        cmocka_unit_test_setup_teardown(test_release_failure_keeps_its_errno, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cost_per_invocation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_release_many_wipes_only_those, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
