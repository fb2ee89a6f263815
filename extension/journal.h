/*
 * journal.h - a small file in the sandbox's /tmp naming the invocations this
 * process has started and not yet exported.
 *
 * A killed extension (SIGKILL at the end of a shutdown budget, an
 * out-of-memory kill, an Extension.Crash) loses its memory, and with it the
 * invocation in flight and any segment still waiting for its
 * platform.report.  Lambda keeps /tmp across the re-inits of one execution
 * environment, so the process started after the reset reads the entries
 * left behind and exports a segment for each under the same ids (replacing
 * any in-progress version X-Ray already has).
 *
 * Cost: one pwrite of one fixed-size slot at INVOKE, one at runtimeDone and
 * one when the final segment has been exported; no fsync (the file only has
 * to survive the process, not the machine).  Every failure turns the
 * journal off, never the extension: a full /tmp (ENOSPC), a file size
 * limit (EFBIG; main ignores SIGXFSZ, whose default action would kill the
 * process), a short write.
 *
 * Threads: journal_begin, journal_done and journal_find run on the pipeline
 * thread only; journal_release(slot) (and journal_release_many) on any one
 * thread at a time per slot
 * (the exporter's, or the pipeline's when nothing is exported).  A slot is
 * reused only after its release has written it.
 */
#ifndef LAMBDA_TRACER_JOURNAL_H
#define LAMBDA_TRACER_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xray_header.h"

/* As many as the invocations SHUTDOWN waits for (pipeline.c): under a burst
 * of short invocations, reports lag, and every invocation still waiting
 * for its own keeps its slot. */
#define JOURNAL_SLOTS 64
#define JOURNAL_REQUEST_ID_MAX 64
#define JOURNAL_ERROR_TYPE_MAX 48

/* What is known of an invocation that was not exported yet. */
struct journal_entry {
    char request_id[JOURNAL_REQUEST_ID_MAX];
    char trace_id[XRAY_TRACE_ID_LEN + 1];
    char segment_id[XRAY_SPAN_ID_LEN + 1];
    char parent_id[XRAY_SPAN_ID_LEN + 1]; /* "" without a Parent */
    bool sampled;
    int64_t start_us;    /* epoch µs: INVOKE received (or platform.start) */
    int64_t deadline_ms; /* epoch ms, from INVOKE; 0 when unknown */
    bool done;           /* platform.runtimeDone was seen */
    int64_t done_us;
    int done_status;     /* enum tel_status */
    char done_error[JOURNAL_ERROR_TYPE_MAX];
};

struct journal;

/* Opens (creating, mode 0600, never through a symlink) the journal at
 * path and reads what a previous process left: up to max_found valid,
 * unfinished entries go to found[] (their count to *ret_found_n) and keep
 * their slots until released.  0 and *ret, or a negative errno (the caller
 * logs once and runs without a journal): the open's, or the write's that
 * wiped a stale slot (-EFBIG under a file size limit, -ENOSPC on a full
 * /tmp).  Main thread, before the pipeline starts. */
int journal_open(const char *path, struct journal **ret, struct journal_entry *found, size_t max_found,
                 size_t *ret_found_n) __attribute__((warn_unused_result));

/* The path for an extension named name: $TMPDIR (Lambda: unset, so /tmp)
 * / .name.journal.  0 or -ENAMETOOLONG. */
int journal_path(const char *tmpdir, const char *name, char *buf, size_t size)
    __attribute__((warn_unused_result));

/* Records a started invocation in a free slot.  Returns the slot, or a
 * negative errno: -EBUSY (every slot held), -ENODEV (the journal is off),
 * or the failed write's own (-ENOSPC a full /tmp, -EFBIG a file size
 * limit, -EROFS, -EIO...: the journal turns itself off).  NULL-safe
 * (-ENODEV). */
int journal_begin(struct journal *j, const struct journal_entry *e);

/* Adds runtimeDone to the slot of request_id (if any).  0, -ENOENT,
 * -ENODEV (off), or the failed write's errno as journal_begin. */
int journal_done(struct journal *j, const char *request_id, int64_t done_us, int status,
                 const char *error_type);

/* The slot holding request_id, or -ENOENT.  NULL-safe. */
int journal_find(const struct journal *j, const char *request_id);

/* Clears a slot (its segment was exported, or given up on and counted) and
 * frees it for reuse.  Negative slots are ignored.  NULL-safe. */
void journal_release(struct journal *j, int slot);

/* The same for n slots at once (the segments of one exported batch), each
 * run of adjacent slots wiped with one write.  Slots out of range are
 * ignored; each slot at most once.  NULL-safe. */
void journal_release_many(struct journal *j, const int *slots, size_t n);

/* false once a write failed (the journal is off). */
bool journal_ok(const struct journal *j);

/* Why it is off: the negative errno of the first write that failed (on
 * any thread, a release's included), 0 while it is on; -ENODEV for NULL. */
int journal_error(const struct journal *j);

/* Closes the file.  clear_all: every entry is accounted for (a clean exit):
 * the next process must find nothing.  Main thread; NULL-safe. */
void journal_close(struct journal *j, bool clear_all);

#endif
