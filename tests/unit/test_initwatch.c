/*
 * test_initwatch.c - the Init anatomy's rules (figures in, hint out), the
 * anatomy line, and the watcher on a real process (a child standing in for
 * the runtime, found as our sibling through a fake parent).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "initwatch.h"
#include "procsnap.h"

static struct initwatch_figures figs(int64_t wall_ms, int64_t cpu_ms, int64_t rchar, int64_t storage,
                                     int64_t majflt)
{
    struct initwatch_figures f;

    memset(&f, 0, sizeof(f));
    f.wall_us = wall_ms * 1000;
    f.cpu_us = cpu_ms * 1000;
    f.rchar = rchar;
    f.read_bytes = storage;
    f.majflt = majflt;
    return f;
}

static enum initwatch_rule hint(struct initwatch_figures f, char *out, size_t size)
{
    enum initwatch_rule r = initwatch_hint(&f, out, size);
    printf("  hint %d: %s\n", (int)r, out);
    return r;
}

static void test_rules(void **state)
{
    char out[256];
    (void)state;

    /* The two examples, word for word. */
    assert_int_equal(hint(figs(1800, 1600, 184000000, 0, 0), out, sizeof(out)), INITWATCH_LOADING);
    assert_string_equal(out, "Runtime init read 184 MB and spent 1.6 s of its 1.8 s on CPU: loading code");
    assert_int_equal(hint(figs(1200, 50, 20000, 0, 0), out, sizeof(out)), INITWATCH_WAITING);
    assert_string_equal(out, "Runtime init used 0.05 s of CPU in 1.2 s: waiting (network or a slow dependency)");
    /* Busy, few bytes: computing. */
    assert_int_equal(hint(figs(1000, 950, 2000000, 0, 0), out, sizeof(out)), INITWATCH_COMPUTING);
    assert_non_null(strstr(out, "computing"));
    /* Idle with much from storage: disk, by read_bytes or by major faults. */
    assert_int_equal(hint(figs(2000, 100, 90000000, 80000000, 0), out, sizeof(out)), INITWATCH_DISK);
    assert_non_null(strstr(out, "80 MB from storage"));
    assert_int_equal(hint(figs(2000, 100, -1, -1, 5000), out, sizeof(out)), INITWATCH_DISK);
    assert_non_null(strstr(out, "5000 major page faults"));
    /* io unreadable: busy still said, the reads never guessed. */
    assert_int_equal(hint(figs(1000, 900, -1, -1, 0), out, sizeof(out)), INITWATCH_CPU);
    assert_non_null(strstr(out, "unknown"));
    assert_null(strstr(out, "loading"));
    /* io unreadable and idle: waiting (the network rule needs no io). */
    assert_int_equal(hint(figs(1000, 10, -1, -1, 0), out, sizeof(out)), INITWATCH_WAITING);
}

static void test_thresholds(void **state)
{
    char out[256];
    (void)state;

    /* Wall under 300 ms: nothing, whatever the figures. */
    assert_int_equal(hint(figs(299, 299, 500000000, 0, 0), out, sizeof(out)), INITWATCH_NONE);
    assert_string_equal(out, "");
    assert_int_equal(hint(figs(300, 150, 0, 0, 0), out, sizeof(out)), INITWATCH_COMPUTING);
    /* The busy and idle edges; between them: mixed, no hint. */
    assert_int_equal(hint(figs(1000, 500, 0, 0, 0), out, sizeof(out)), INITWATCH_COMPUTING);
    assert_int_equal(hint(figs(1000, 499, 0, 0, 0), out, sizeof(out)), INITWATCH_NONE);
    assert_int_equal(hint(figs(1000, 250, 0, 0, 0), out, sizeof(out)), INITWATCH_NONE);
    assert_int_equal(hint(figs(1000, 249, 0, 0, 0), out, sizeof(out)), INITWATCH_WAITING);
    /* The bytes edge. */
    assert_int_equal(hint(figs(1000, 900, INITWATCH_READ_MANY_BYTES - 1, 0, 0), out, sizeof(out)),
                     INITWATCH_COMPUTING);
    assert_int_equal(hint(figs(1000, 900, INITWATCH_READ_MANY_BYTES, 0, 0), out, sizeof(out)),
                     INITWATCH_LOADING);
    assert_int_equal(hint(figs(1000, 100, 0, 0, INITWATCH_MAJFLT_MANY - 1), out, sizeof(out)),
                     INITWATCH_WAITING);
    /* CPU above wall (clock ticks round up, children): capped in the text. */
    assert_int_equal(hint(figs(1000, 1300, 0, 0, 0), out, sizeof(out)), INITWATCH_COMPUTING);
    assert_non_null(strstr(out, "1.0 s of its 1.0 s"));
}

static void test_unknown_and_bad(void **state)
{
    char out[256], tiny[8];
    struct initwatch_figures f = figs(2000, 0, 0, 0, 0);
    (void)state;

    f.cpu_us = -1; /* stat unreadable: never a hint */
    assert_int_equal(initwatch_hint(&f, out, sizeof(out)), INITWATCH_NONE);
    assert_string_equal(out, "");
    assert_int_equal(initwatch_hint(NULL, out, sizeof(out)), INITWATCH_NONE);
    assert_int_equal(initwatch_hint(&f, NULL, 10), INITWATCH_NONE);
    /* Truncated, still terminated. */
    assert_int_equal(hint(figs(1800, 1600, 184000000, 0, 0), tiny, sizeof(tiny)), INITWATCH_LOADING);
    assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
    f = figs(0, 0, 0, 0, 0);
    assert_int_equal(initwatch_hint(&f, out, sizeof(out)), INITWATCH_NONE);
}

static void test_describe(void **state)
{
    char out[512];
    struct initwatch_figures f = figs(1800, 1620, 184000000, 2100000, 3);
    (void)state;

    f.minflt = 12034;
    f.threads = 4;
    f.max_threads = 6;
    f.rss_bytes = 96300000;
    f.processes = 2;
    f.children_seen = 1;
    initwatch_describe(&f, out, sizeof(out));
    printf("  %s\n", out);
    assert_string_equal(out, "1.80 s wall, 1.62 s CPU, 12034 minor / 3 major faults, read 184.0 MB "
                             "(2.1 MB from storage), 4 threads (at most 6), RSS 96.3 MB, 2 processes, "
                             "1 child processes seen");
    f.rchar = f.read_bytes = -1;
    f.unreadable = 1u << PROCSNAP_SRC_IO;
    initwatch_describe(&f, out, sizeof(out));
    assert_null(strstr(out, "read "));
    assert_non_null(strstr(out, "; unreadable: io"));
    initwatch_describe(&f, out, 10);
    assert_true(strlen(out) < 10);
    initwatch_describe(NULL, out, sizeof(out));
    assert_string_equal(out, "");
}

/* The watcher with nothing to find (our parent's other children are not a
 * runtime... a fake proc root that does not exist): no figures, clean stop. */
static void test_watcher_nothing(void **state)
{
    struct initwatch_opts o = {.proc_root = "/nonexistent-proc", .self = 1, .interval_ms = 1,
                               .max_samples = 5};
    struct initwatch_figures f;
    struct initwatch *w;
    (void)state;

    w = initwatch_start(&o);
    assert_non_null(w);
    assert_false(initwatch_figures_at(w, INT64_MAX, &f));
    initwatch_free(w);
    initwatch_free(NULL);
    initwatch_stop(NULL);
    assert_false(initwatch_figures_at(NULL, 0, &f));
    o.interval_ms = 0;
    assert_null(initwatch_start(&o));
    assert_null(initwatch_start(NULL));
}

/* Little CPU for the wall time, but runnable in most samples: starved by
 * others on the CPU, busy all the same; too few samples say nothing. */
static void test_starved_is_busy(void **state)
{
    char out[256];
    struct initwatch_figures f = figs(1600, 700, 100, 0, 0);
    (void)state;

    assert_int_equal(initwatch_hint(&f, out, sizeof(out)), INITWATCH_NONE); /* 44 %: mixed */
    f.root_samples = 60;
    f.runnable_samples = 45;
    assert_int_equal(initwatch_hint(&f, out, sizeof(out)), INITWATCH_COMPUTING);
    assert_string_equal(out, "Runtime init spent 0.7 s of its 1.6 s on CPU and read 0.0 MB: computing "
                             "(CPU-bound static init) (runnable in 45 of 60 samples: short of CPU)");
    f.runnable_samples = 29; /* under half */
    assert_int_equal(initwatch_hint(&f, out, sizeof(out)), INITWATCH_NONE);
    f.root_samples = 9;      /* too few to say */
    f.runnable_samples = 9;
    assert_int_equal(initwatch_hint(&f, out, sizeof(out)), INITWATCH_NONE);
    /* waiting: rarely runnable */
    f = figs(1600, 100, 100, 0, 0);
    f.root_samples = 60;
    f.runnable_samples = 3;
    assert_int_equal(initwatch_hint(&f, out, sizeof(out)), INITWATCH_WAITING);
    /* a starved, mostly runnable one is not waiting even at 6 % CPU */
    f.runnable_samples = 50;
    assert_int_equal(initwatch_hint(&f, out, sizeof(out)), INITWATCH_COMPUTING);
    f.rchar = 200000000;
    assert_int_equal(initwatch_hint(&f, out, sizeof(out)), INITWATCH_LOADING);
}

/* The same rules speak of a SnapStart restore by its name. */
static void test_restore_phase_hints(void **state)
{
    char out[256];
    struct initwatch_figures f = figs(1000, 900, 100, 0, 0);
    (void)state;

    assert_int_equal(initwatch_hint_phase(INITWATCH_PHASE_RESTORE, &f, out, sizeof(out)),
                     INITWATCH_COMPUTING);
    assert_string_equal(out, "Restore spent 0.9 s of its 1.0 s on CPU and read 0.0 MB: computing "
                             "(CPU-bound after-restore hooks)");
    f = figs(1000, 800, 200000000, 0, 0);
    assert_int_equal(initwatch_hint_phase(INITWATCH_PHASE_RESTORE, &f, out, sizeof(out)),
                     INITWATCH_LOADING);
    assert_string_equal(out, "Restore read 200 MB and spent 0.8 s of its 1.0 s on CPU: loading code");
    f = figs(1200, 50, 1000, 0, 0);
    assert_int_equal(initwatch_hint_phase(INITWATCH_PHASE_RESTORE, &f, out, sizeof(out)),
                     INITWATCH_WAITING);
    assert_string_equal(out, "Restore used 0.05 s of CPU in 1.2 s: waiting (network or a slow dependency)");
    f = figs(1200, 50, 1000, 0, 5000);
    assert_int_equal(initwatch_hint_phase(INITWATCH_PHASE_RESTORE, &f, out, sizeof(out)),
                     INITWATCH_DISK);
    assert_string_equal(out, "Restore took 5000 major page faults and used 0.05 s of CPU in 1.2 s: "
                             "waiting on disk");
    /* the Init phase keeps its words */
    f = figs(1000, 900, 100, 0, 0);
    assert_int_equal(initwatch_hint_phase(INITWATCH_PHASE_INIT, &f, out, sizeof(out)), INITWATCH_COMPUTING);
    assert_string_equal(out, "Runtime init spent 0.9 s of its 1.0 s on CPU and read 0.0 MB: computing "
                         "(CPU-bound static init)");
    /* wall unknown (no restoreReport): never a hint */
    f.wall_us = -1;
    assert_int_equal(initwatch_hint_phase(INITWATCH_PHASE_RESTORE, &f, out, sizeof(out)), INITWATCH_NONE);
    assert_string_equal(out, "");
}

static struct initwatch_figures sample_fig(int64_t cpu_us, int64_t rchar, int64_t storage, int64_t majflt,
                                           int64_t minflt, uint32_t threads, int64_t rss)
{
    struct initwatch_figures f;

    memset(&f, 0, sizeof(f));
    f.runtime_start_epoch_us = 1700000000000000;
    f.cpu_us = cpu_us;
    f.rchar = rchar;
    f.read_bytes = storage;
    f.majflt = majflt;
    f.minflt = minflt;
    f.threads = f.max_threads = threads;
    f.rss_bytes = rss;
    f.processes = 1;
    f.samples = 10;
    return f;
}

/* A restore's figures are deltas against the pre-snapshot baseline. */
static void test_delta(void **state)
{
    struct initwatch_figures base = sample_fig(2000000, 50000000, 1000, 10, 20000, 4, 80000000);
    struct initwatch_figures end = sample_fig(2600000, 250000000, 9000, 5010, 26000, 7, 95000000);
    struct initwatch_figures d;
    char out[512];
    (void)state;

    end.samples = 35;
    end.children_seen = 3;
    base.children_seen = 1;
    end.max_threads = 9; /* Init's peak: not the restore's */
    assert_true(initwatch_delta(&base, &end, 750000, &d));
    assert_int_equal(d.wall_us, 750000);
    assert_int_equal(d.cpu_us, 600000);
    assert_int_equal(d.rchar, 200000000);
    assert_int_equal(d.read_bytes, 8000);
    assert_int_equal(d.majflt, 5000);
    assert_int_equal(d.minflt, 6000);
    assert_int_equal(d.threads, 7);
    assert_int_equal(d.max_threads, 7);
    assert_int_equal(d.rss_bytes, 95000000);
    assert_int_equal(d.children_seen, 2);
    assert_int_equal(d.samples, 25);
    assert_int_equal(initwatch_hint_phase(INITWATCH_PHASE_RESTORE, &d, out, sizeof(out)), INITWATCH_LOADING);
    initwatch_describe(&d, out, sizeof(out));
    assert_non_null(strstr(out, "0.75 s wall, 0.60 s CPU, 6000 minor / 5000 major faults, read 200.0 MB"));
    /* wall unknown */
    assert_true(initwatch_delta(&base, &end, -1, &d));
    assert_int_equal(d.wall_us, -1);
    initwatch_describe(&d, out, sizeof(out));
    assert_memory_equal(out, "wall unknown, 0.60 s CPU", 24);
    /* a figure unknown on either side is unknown; the others stay */
    base.rchar = base.read_bytes = -1;
    assert_true(initwatch_delta(&base, &end, 750000, &d));
    assert_int_equal(d.rchar, -1);
    assert_int_equal(d.read_bytes, -1);
    assert_int_equal(d.cpu_us, 600000);
    end.cpu_us = -1;
    assert_true(initwatch_delta(&base, &end, 750000, &d));
    assert_int_equal(d.cpu_us, -1);
    assert_int_equal(initwatch_hint_phase(INITWATCH_PHASE_RESTORE, &d, out, sizeof(out)), INITWATCH_NONE);
    /* counters going backwards: not one process's figures */
    end = sample_fig(1000000, 250000000, 9000, 5010, 26000, 7, 95000000);
    base = sample_fig(2000000, 50000000, 1000, 10, 20000, 4, 80000000);
    assert_false(initwatch_delta(&base, &end, 750000, &d));
    /* another root (a restarted runtime) */
    end = sample_fig(2600000, 250000000, 9000, 5010, 26000, 7, 95000000);
    end.runtime_start_epoch_us += 5000000;
    assert_false(initwatch_delta(&base, &end, 750000, &d));
    assert_false(initwatch_delta(NULL, &end, 0, &d));
    assert_false(initwatch_delta(&base, NULL, 0, &d));
    assert_false(initwatch_delta(&base, &end, 0, NULL));
}

static char fake_root[64];

static void put(const char *rel, const char *text, size_t len)
{
    char path[256], dir[256];
    int fd;

    snprintf(path, sizeof(path), "%s/%s", fake_root, rel);
    for (char *p = path + strlen(fake_root) + 1; (p = strchr(p, '/')) != NULL; p++) {
        snprintf(dir, sizeof(dir), "%.*s", (int)(p - path), path);
        mkdir(dir, 0755);
    }
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
}

/* The runtime (pid 200) with these counters: CPU in clock ticks. */
static void put_runtime(int minflt, int majflt, int ut, int threads, int rss_pages, long rchar)
{
    char text[512];

    snprintf(text, sizeof(text), "200 (bootstrap) S 1 0 0 0 0 0 %d 0 %d 0 %d 0 0 0 20 0 %d 0 900 0 %d\n",
             minflt, majflt, ut, threads, rss_pages);
    put("200/stat", text, strlen(text));
    snprintf(text, sizeof(text), "rchar: %ld\nwchar: 0\nsyscr: 1\nsyscw: 0\nread_bytes: 4096\n"
             "write_bytes: 0\ncancelled_write_bytes: 0\n", rchar);
    put("200/io", text, strlen(text));
}

static int64_t epoch_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The ring's samples around a restore: the baseline is the newest before
 * restoreStart, the end the newest up to restoreRuntimeDone (a later one
 * only when none, and only within late_max). */
static void test_restore_samples(void **state)
{
    char tmpl[] = "/tmp/initwatch-fake-XXXXXX";
    char cmd[128];
    struct initwatch_opts o = {.self = 100, .interval_ms = 20, .max_samples = 3};
    struct initwatch_figures base, end, d;
    struct initwatch *w;
    int64_t restore_start, done, after_all;
    (void)state;

    assert_non_null(mkdtemp(tmpl));
    snprintf(fake_root, sizeof(fake_root), "%s", tmpl);
    o.proc_root = fake_root;
    {
        static const char st[] = "100 (lambda-tracer) S 1 0 0 0 0 0 0 0 0 0 1 1 0 0 20 0 4 0 500 0 100\n";
        put("100/stat", st, strlen(st));
    }
    put("100/cmdline", "/opt/extensions/lambda-tracer\0", 30);
    put("200/cmdline", "/var/runtime/bootstrap\0", 23);
    w = initwatch_new(&o);
    assert_non_null(w);
    assert_false(initwatch_take_resumed(w));

    put_runtime(1000, 2, 100, 2, 1000, 1000000); /* Init's end */
    assert_true(initwatch_sample(w));
    restore_start = epoch_now_us() + 1;
    assert_false(initwatch_restore_samples(w, restore_start, restore_start + 1000000, 0, &base, &end));
    put_runtime(1500, 702, 160, 5, 3000, 9000000); /* after the restore */
    assert_true(initwatch_sample(w));
    done = epoch_now_us() + 1;
    put_runtime(1600, 800, 400, 6, 3000, 9500000); /* the first invocation */
    /* max_samples reached: the watcher wants no more until resumed */
    assert_false(initwatch_sample(w));
    assert_false(initwatch_sample(w)); /* no sample taken */
    after_all = epoch_now_us();

    assert_true(initwatch_restore_samples(w, restore_start, done, 0, &base, &end));
    assert_int_equal(base.cpu_us, 1000000);
    assert_int_equal(end.cpu_us, 1600000);
    assert_true(initwatch_delta(&base, &end, 700000, &d));
    assert_int_equal(d.cpu_us, 600000);
    assert_int_equal(d.majflt, 700);
    assert_int_equal(d.minflt, 500);
    assert_int_equal(d.rchar, 8000000);
    assert_int_equal(d.threads, 5);
    assert_int_equal(d.root_samples, 1);
    assert_int_equal(d.runnable_samples, 0); /* 'S' in the fake stat */
    /* restoreRuntimeDone before the first post-restore sample: that one
     * counts only if late by less than late_max */
    assert_false(initwatch_restore_samples(w, restore_start, restore_start, 0, &base, &end));
    assert_true(initwatch_restore_samples(w, restore_start, restore_start, after_all - restore_start + 1,
                                          &base, &end));
    assert_int_equal(end.cpu_us, 1600000);
    /* no sample before the restore: no baseline */
    assert_false(initwatch_restore_samples(w, 0, done, 0, &base, &end));
    assert_false(initwatch_restore_samples(NULL, restore_start, done, 0, &base, &end));

    /* resumed (a restore detected): samples again, and says so once */
    initwatch_resume(w);
    assert_true(initwatch_take_resumed(w));
    assert_false(initwatch_take_resumed(w));
    assert_true(initwatch_sample(w));
    assert_true(initwatch_restore_samples(w, restore_start, INT64_MAX, 0, &base, &end));
    assert_int_equal(end.cpu_us, 4000000);
    initwatch_stop(w);
    assert_false(initwatch_sample(w));
    initwatch_resume(NULL);
    assert_false(initwatch_take_resumed(NULL));
    initwatch_free(w);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fake_root);
    assert_int_equal(system(cmd), 0);
}

static void put_text(const char *rel, const char *text)
{
    put(rel, text, strlen(text));
}

/* An extension's stat (one thread, sleeping unless state says) and its
 * schedstat. */
static void put_ext(int pid, char state, const char *schedstat)
{
    char rel[64], text[256];

    snprintf(rel, sizeof(rel), "%d/stat", pid);
    snprintf(text, sizeof(text), "%d (ext) %c 1 0 0 0 0 0 10 0 0 0 3 1 0 0 20 0 1 0 %d 0 100\n", pid, state,
             pid);
    put_text(rel, text);
    if (schedstat != NULL) {
        snprintf(rel, sizeof(rel), "%d/schedstat", pid);
        put_text(rel, schedstat);
    }
}

static const struct initwatch_party *party(const struct initwatch_parties *ps, const char *name)
{
    for (uint32_t i = 0; i < ps->count; i++)
        if (strcmp(ps->ext[i].name, name) == 0)
            return &ps->ext[i];
    fail_msg("no party %s", name);
    return NULL;
}

/* Every extension's and the runtime's last activity before Init's end: the
 * last sample in which its schedstat changed (or it was R), and whether it
 * was active in the first sample after the end; a script extension found
 * by argv[1]; one whose schedstat cannot be read is said to be so, with
 * nothing else; ourselves left out. */
static void test_parties(void **state)
{
    char tmpl[] = "/tmp/initwatch-fake-XXXXXX";
    char cmd[128];
    struct initwatch_opts o = {.self = 100, .interval_ms = 20, .max_samples = 100};
    struct initwatch_parties ps;
    const struct initwatch_party *p;
    struct initwatch *w;
    int64_t t0, t1, t2, t3, end;
    (void)state;

    assert_non_null(mkdtemp(tmpl));
    snprintf(fake_root, sizeof(fake_root), "%s", tmpl);
    o.proc_root = fake_root;
    put_text("100/stat", "100 (lambda-tracer) S 1 0 0 0 0 0 0 0 0 0 1 1 0 0 20 0 4 0 500 0 100\n");
    put("100/cmdline", "/opt/extensions/lambda-tracer\0", 30);
    put_text("100/schedstat", "1 1 1\n");
    put("200/cmdline", "/var/runtime/bootstrap\0", 23);
    put_runtime(1000, 0, 10, 1, 1000, 1000);
    put_text("200/schedstat", "1000000 0 10\n");
    put("300/cmdline", "/usr/bin/python3\0/opt/extensions/slow-ready\0", 44);
    put_ext(300, 'S', "5000000 0 20\n");
    put("400/cmdline", "/opt/extensions/quick\0", 22);
    put_ext(400, 'S', "7000000 0 30\n");
    put("500/cmdline", "/opt/extensions/hidden\0", 23);
    put_ext(500, 'S', NULL); /* its schedstat cannot be read */
    w = initwatch_new(&o);
    assert_non_null(w);
    assert_false(initwatch_parties_at(w, INT64_MAX, &ps)); /* no sample yet */

    t0 = epoch_now_us();
    assert_true(initwatch_sample(w)); /* the first look: a baseline */
    t1 = epoch_now_us();
    put_text("300/schedstat", "6000000 0 25\n"); /* slow-ready registers */
    put_text("200/schedstat", "2000000 0 15\n"); /* the runtime works */
    assert_true(initwatch_sample(w));
    t2 = epoch_now_us();
    put_text("200/schedstat", "3000000 0 19\n"); /* the runtime's last work */
    assert_true(initwatch_sample(w));
    t3 = epoch_now_us();
    assert_true(initwatch_sample(w)); /* all idle */
    end = epoch_now_us();
    assert_true(initwatch_parties_at(w, end, &ps));
    assert_false(ps.end_seen); /* nothing after the end yet: no ready time is certain */
    initwatch_stop_after(w, end);
    put_text("300/schedstat", "6100000 0 27\n"); /* slow-ready wakes to call next: Init ends */
    assert_false(initwatch_sample(w)); /* the sample after the end: the watcher stops */
    assert_false(initwatch_sample(w));

    assert_true(initwatch_parties_at(w, end, &ps));
    assert_true(ps.end_seen);
    assert_true(ps.end_sample_epoch_us > end);
    assert_int_equal(ps.interval_ms, 20);
    assert_int_equal(ps.count, 3); /* ourselves left out */
    p = party(&ps, "slow-ready");
    assert_true(p->ready_epoch_us > t1 && p->ready_epoch_us <= t2);
    assert_true(p->active_at_end);
    assert_false(p->never_active);
    assert_int_equal(p->cpu_us, 6000); /* at the last sample up to the end */
    assert_int_equal(p->unreadable_errno, 0);
    assert_true(p->start_epoch_us > 0 && p->start_epoch_us <= t0);
    p = party(&ps, "quick");
    assert_true(p->never_active); /* idle whenever looked at: ready by the first look */
    assert_true(p->ready_epoch_us > t0 && p->ready_epoch_us <= t1);
    assert_false(p->active_at_end);
    assert_int_equal(p->cpu_us, 7000);
    p = party(&ps, "hidden");
    assert_int_equal(p->unreadable_errno, ENOENT);
    assert_int_equal(p->ready_epoch_us, -1);
    assert_int_equal(p->cpu_us, -1);
    assert_true(ps.have_runtime);
    assert_string_equal(ps.runtime.name, "");
    assert_true(ps.runtime.ready_epoch_us > t2 && ps.runtime.ready_epoch_us <= t3);
    assert_false(ps.runtime.active_at_end);
    assert_int_equal(ps.runtime.cpu_us, 3000);
    /* an earlier end: what was known then */
    assert_true(initwatch_parties_at(w, t2, &ps));
    assert_true(party(&ps, "slow-ready")->active_at_end == false);
    assert_true(ps.runtime.active_at_end); /* its last work came after */
    assert_true(ps.runtime.ready_epoch_us > t1 && ps.runtime.ready_epoch_us <= t2);
    /* a state R or D counts as active without a change */
    assert_false(initwatch_parties_at(w, t0 - 1000000, &ps));
    assert_false(initwatch_parties_at(NULL, end, &ps));
    assert_false(initwatch_parties_at(w, end, NULL));
    initwatch_stop_after(NULL, 0);
    initwatch_free(w);

    /* nothing readable at all (a kernel without scheduler statistics):
     * each party is still told, unreadable */
    w = initwatch_new(&o);
    assert_non_null(w);
    put_text("200/schedstat", "0 0 0\n");
    put_text("300/schedstat", "0 0 0\n");
    put_text("400/schedstat", "0 0 0\n");
    assert_true(initwatch_sample(w));
    assert_true(initwatch_sample(w));
    end = epoch_now_us();
    assert_true(initwatch_sample(w));
    assert_true(initwatch_parties_at(w, end, &ps));
    assert_true(ps.end_seen);
    assert_int_equal(ps.count, 3);
    assert_int_equal(party(&ps, "slow-ready")->unreadable_errno, EPROTO);
    assert_int_equal(party(&ps, "quick")->unreadable_errno, EPROTO);
    assert_int_equal(party(&ps, "hidden")->unreadable_errno, ENOENT);
    assert_true(ps.have_runtime);
    assert_int_equal(ps.runtime.unreadable_errno, EPROTO);
    initwatch_free(w);

    /* running (R) counts as active even with the same figures */
    w = initwatch_new(&o);
    assert_non_null(w);
    put_ext(400, 'R', "7000000 0 30\n");
    assert_true(initwatch_sample(w));
    t1 = epoch_now_us();
    assert_true(initwatch_sample(w));
    t2 = epoch_now_us();
    assert_true(initwatch_parties_at(w, t2, &ps));
    p = party(&ps, "quick");
    assert_false(p->never_active);
    assert_true(p->ready_epoch_us > t1 && p->ready_epoch_us <= t2);
    initwatch_free(w);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fake_root);
    assert_int_equal(system(cmd), 0);
}

/* The opens of <pid>/stat that inotify reported since the last call, for
 * each of the watches in wd (in counts). */
static void stat_opens(int ino, const int *wd, unsigned *counts, size_t n)
{
    char ev[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    ssize_t got;

    memset(counts, 0, n * sizeof(counts[0]));
    while ((got = read(ino, ev, sizeof(ev))) > 0) {
        for (ssize_t off = 0; off < got;) {
            const struct inotify_event *e = (const struct inotify_event *)(void *)(ev + off);
            for (size_t i = 0; i < n; i++)
                if (e->wd == wd[i] && e->len > 0 && strcmp(e->name, "stat") == 0)
                    counts[i]++;
            off += (ssize_t)(sizeof(*e) + e->len);
        }
    }
}

/* One scan of the proc root per sample: the runtime and the extensions
 * are found, and the runtime's descendants followed, from the same
 * listing, so a process that is not the runtime's has its stat opened
 * once per sample (it was twice: once to find the runtime, once more to
 * find its descendants), and so have we.  inotify counts the opens. */
static void test_one_scan_per_sample(void **state)
{
    char tmpl[] = "/tmp/initwatch-fake-XXXXXX";
    char cmd[128], path[256];
    static const int pids[] = {100, 200, 300, 500, 600};
    int wd[5];
    unsigned opens[5];
    struct initwatch_opts o = {.self = 100, .interval_ms = 20, .max_samples = 10};
    struct initwatch_figures f;
    struct initwatch *w;
    int ino;
    (void)state;

    assert_non_null(mkdtemp(tmpl));
    snprintf(fake_root, sizeof(fake_root), "%s", tmpl);
    o.proc_root = fake_root;
    put_text("100/stat", "100 (lambda-tracer) S 1 0 0 0 0 0 0 0 0 0 1 1 0 0 20 0 4 0 500 0 100\n");
    put("100/cmdline", "/opt/extensions/lambda-tracer\0", 30);
    put("200/cmdline", "/var/runtime/bootstrap\0", 23);
    put_runtime(1000, 0, 10, 1, 1000, 1000);
    put("300/cmdline", "/opt/extensions/quick\0", 22);
    put_ext(300, 'S', "7000000 0 30\n");
    put_text("500/stat", "500 (sh) S 200 0 0 0 0 0 5 0 0 0 2 1 0 0 20 0 1 0 950 0 10\n");
    put_text("600/stat", "600 (cron) S 42 0 0 0 0 0 5 0 0 0 2 1 0 0 20 0 1 0 10 0 10\n");
    ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    assert_true(ino >= 0);
    for (size_t i = 0; i < 5; i++) {
        snprintf(path, sizeof(path), "%s/%d", fake_root, pids[i]);
        wd[i] = inotify_add_watch(ino, path, IN_OPEN);
        assert_true(wd[i] >= 0);
    }
    w = initwatch_new(&o);
    assert_non_null(w);
    for (int k = 0; k < 2; k++) {
        assert_true(initwatch_sample(w));
        stat_opens(ino, wd, opens, 5);
        printf("  sample %d: stat opened %u (us), %u (runtime), %u (extension), %u (runtime's child), "
               "%u (unrelated) times\n", k + 1, opens[0], opens[1], opens[2], opens[3], opens[4]);
        assert_int_equal(opens[4], 1); /* unrelated: the scan only */
        assert_int_equal(opens[0], 1); /* ourselves: our parent, once */
        assert_int_equal(opens[2], 1); /* a sibling extension: the scan */
        assert_int_equal(opens[3], 2); /* the scan, then its figures */
        assert_int_equal(opens[1], 2); /* the scan, then its figures */
    }
    /* and the sample is the same: the runtime and its child */
    assert_true(initwatch_figures_at(w, INT64_MAX, &f));
    assert_int_equal(f.processes, 2);
    assert_int_equal(f.children_seen, 1);
    assert_int_equal(f.cpu_us, (10 + 3) * 1000000 / sysconf(_SC_CLK_TCK)); /* clock ticks */
    initwatch_free(w);
    close(ino);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fake_root);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_thresholds),
        cmocka_unit_test(test_unknown_and_bad),
        cmocka_unit_test(test_describe),
        cmocka_unit_test(test_watcher_nothing),
        cmocka_unit_test(test_starved_is_busy),
        cmocka_unit_test(test_restore_phase_hints),
        cmocka_unit_test(test_delta),
        cmocka_unit_test(test_restore_samples),
        cmocka_unit_test(test_parties),
        cmocka_unit_test(test_one_scan_per_sample),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
