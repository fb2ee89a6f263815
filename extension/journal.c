/*
 * journal.c - see journal.h.
 *
 * The file is JOURNAL_SLOTS slots of JOURNAL_SLOT_BYTES; each slot is
 * written whole by one pwrite (one page at most, so a killed process leaves
 * either the old or the new slot).  A slot carries a magic number, a format
 * version and an FNV-1a checksum: /tmp is shared with the function, so
 * whatever is read back is checked field by field before it is believed.
 */
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define JOURNAL_SLOT_BYTES 256
#define JOURNAL_MAGIC 0x4c544a31u /* "LTJ1" */
#define JOURNAL_VERSION 1

enum slot_state {
    SLOT_FREE = 0,
    SLOT_OPEN = 1,
};

/* The on-disk slot; native byte order (read back on the same machine). */
struct disk_slot {
    uint32_t magic;
    uint8_t version;
    uint8_t state;
    uint8_t sampled;
    uint8_t done;
    int32_t done_status;
    int64_t start_us;
    int64_t deadline_ms;
    int64_t done_us;
    char request_id[JOURNAL_REQUEST_ID_MAX];
    char trace_id[XRAY_TRACE_ID_LEN + 1];
    char segment_id[XRAY_SPAN_ID_LEN + 1];
    char parent_id[XRAY_SPAN_ID_LEN + 1];
    char done_error[JOURNAL_ERROR_TYPE_MAX];
    uint32_t checksum; /* FNV-1a of every byte before it */
};

_Static_assert(sizeof(struct disk_slot) <= JOURNAL_SLOT_BYTES, "a slot must fit its place");

struct journal {
    int fd;
    bool opened; /* journal_open is done: the slots are ours */
    _Atomic bool failed;
    _Atomic int error; /* the negative errno of the write that turned it off */
    /* 1 while the slot holds an invocation; set by the pipeline thread,
     * cleared by whoever releases the slot, after its write. */
    _Atomic int busy[JOURNAL_SLOTS];
    /* pipeline thread only */
    struct journal_entry mem[JOURNAL_SLOTS];
};

static uint32_t fnv1a(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

static void copy_field(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src != NULL ? src : "");
}

int journal_path(const char *tmpdir, const char *name, char *buf, size_t size)
{
    int n;

    if (tmpdir == NULL || tmpdir[0] == '\0')
        tmpdir = "/tmp";
    n = snprintf(buf, size, "%s/.%s.journal", tmpdir, name);
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* A NUL inside the array, and only printable ASCII before it. */
static bool text_ok(const char *s, size_t size, bool may_be_empty)
{
    size_t len = strnlen(s, size);

    if (len == size || (len == 0 && !may_be_empty))
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] < 0x21 || s[i] > 0x7e)
            return false;
    return true;
}

static bool hex_ok(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static bool span_id_ok(const char *s, bool may_be_empty)
{
    size_t len = strnlen(s, XRAY_SPAN_ID_LEN + 1);
    return (len == 0 && may_be_empty) || (len == XRAY_SPAN_ID_LEN && hex_ok(s, len));
}

static bool trace_id_ok(const char *s)
{
    return strnlen(s, XRAY_TRACE_ID_LEN + 1) == XRAY_TRACE_ID_LEN && s[0] == '1' && s[1] == '-' &&
           hex_ok(s + 2, 8) && s[10] == '-' && hex_ok(s + 11, 24);
}

/* An open, intact slot whose every field is plausible, as an entry. */
static bool slot_read(const struct disk_slot *d, struct journal_entry *ret)
{
    if (d->magic != JOURNAL_MAGIC || d->version != JOURNAL_VERSION || d->state != SLOT_OPEN ||
        d->checksum != fnv1a(d, offsetof(struct disk_slot, checksum)))
        return false;
    if (!text_ok(d->request_id, sizeof(d->request_id), false) || !trace_id_ok(d->trace_id) ||
        !span_id_ok(d->segment_id, false) || !span_id_ok(d->parent_id, true) ||
        !text_ok(d->done_error, sizeof(d->done_error), true) || d->start_us <= 0 ||
        d->deadline_ms < 0 || d->sampled > 1 || d->done > 1 || d->done_status < 0 || d->done_status > 16)
        return false;
    memset(ret, 0, sizeof(*ret));
    copy_field(ret->request_id, sizeof(ret->request_id), d->request_id);
    copy_field(ret->trace_id, sizeof(ret->trace_id), d->trace_id);
    copy_field(ret->segment_id, sizeof(ret->segment_id), d->segment_id);
    copy_field(ret->parent_id, sizeof(ret->parent_id), d->parent_id);
    copy_field(ret->done_error, sizeof(ret->done_error), d->done_error);
    ret->sampled = d->sampled != 0;
    ret->start_us = d->start_us;
    ret->deadline_ms = d->deadline_ms;
    ret->done = d->done != 0;
    ret->done_us = d->done_us;
    ret->done_status = d->done_status;
    return true;
}

/* The first write failure turns the journal off and, once the slots are
 * ours, empties the file: our entries could no longer be cleared when
 * their segments are exported, and a next process believing them would
 * export those invocations again, as failures.  (A failure inside
 * journal_open leaves a predecessor's file as it was.)  ftruncate to 0
 * needs no space and is not limited by RLIMIT_FSIZE. */
static void turn_off(struct journal *j, int error)
{
    int none = 0;

    atomic_compare_exchange_strong(&j->error, &none, error);
    if (atomic_exchange(&j->failed, true) || !j->opened)
        return;
    int r = ftruncate(j->fd, 0);
    (void)r; /* if even this fails, nothing else is left to try */
}

/* One whole slot in one write.  A failure turns the journal off and
 * returns its cause: -EFBIG (a file size limit: SIGXFSZ is ignored by
 * main), -ENOSPC (a full /tmp), -EIO or another negative errno.  A short
 * write (the limit falls inside the slot) is followed by one more for the
 * rest, which fails with the real cause. */
/* Writes len bytes at off (one pwrite unless interrupted or short).  0, or
 * the failure's negative errno (the journal is turned off). */
static int write_at(struct journal *j, const unsigned char *raw, size_t len, off_t off)
{
    size_t done = 0;

    while (done < len) {
        ssize_t w = pwrite(j->fd, raw + done, len - done, off + (off_t)done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int r = w < 0 && errno > 0 ? -errno : -EIO;
            turn_off(j, r);
            return r;
        }
        done += (size_t)w;
    }
    return 0;
}

static int slot_write(struct journal *j, int slot, const struct journal_entry *e)
{
    unsigned char raw[JOURNAL_SLOT_BYTES];
    struct disk_slot d;

    memset(raw, 0, sizeof(raw));
    if (e != NULL) {
        memset(&d, 0, sizeof(d));
        d.magic = JOURNAL_MAGIC;
        d.version = JOURNAL_VERSION;
        d.state = SLOT_OPEN;
        d.sampled = e->sampled ? 1 : 0;
        d.done = e->done ? 1 : 0;
        d.done_status = e->done_status;
        d.start_us = e->start_us;
        d.deadline_ms = e->deadline_ms;
        d.done_us = e->done_us;
        copy_field(d.request_id, sizeof(d.request_id), e->request_id);
        copy_field(d.trace_id, sizeof(d.trace_id), e->trace_id);
        copy_field(d.segment_id, sizeof(d.segment_id), e->segment_id);
        copy_field(d.parent_id, sizeof(d.parent_id), e->parent_id);
        copy_field(d.done_error, sizeof(d.done_error), e->done_error);
        d.checksum = fnv1a(&d, offsetof(struct disk_slot, checksum));
        memcpy(raw, &d, sizeof(d));
    }
    return write_at(j, raw, sizeof(raw), (off_t)slot * JOURNAL_SLOT_BYTES);
}

int journal_open(const char *path, struct journal **ret, struct journal_entry *found, size_t max_found,
                 size_t *ret_found_n)
{
    struct journal *j;
    struct stat st;
    size_t n = 0;

    *ret_found_n = 0;
    j = calloc(1, sizeof(*j));
    if (j == NULL)
        return -ENOMEM;
    /* openat, not open: musl's open follows an O_CLOEXEC open with an
     * fcntl(F_SETFD) for kernels older than 2.6.23, one system call more
     * in Init for nothing. */
    j->fd = openat(AT_FDCWD, path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (j->fd < 0) {
        int r = -errno;
        free(j);
        return r;
    }
    /* Only a regular file of our own: /tmp is shared with the function. */
    if (fstat(j->fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
        close(j->fd);
        free(j);
        return -EPERM;
    }
    /* One read of the whole file and writes only where something must be
     * wiped: this runs in Init, where every system call is billed (and
     * costly under a sandboxing kernel). */
    static const unsigned char zeros[JOURNAL_SLOT_BYTES];
    unsigned char all[JOURNAL_SLOTS * JOURNAL_SLOT_BYTES];
    ssize_t got;
    do
        got = pread(j->fd, all, sizeof(all), 0);
    while (got < 0 && errno == EINTR);
    bool unreadable = got < 0; /* then every free slot is wiped below */
    if (unreadable)
        got = 0;
    for (int i = 0; i < JOURNAL_SLOTS; i++) {
        size_t at = (size_t)i * JOURNAL_SLOT_BYTES;
        struct disk_slot d;

        if ((size_t)got < at + sizeof(d) || n >= max_found)
            continue;
        memcpy(&d, all + at, sizeof(d));
        if (!slot_read(&d, &found[n]))
            continue;
        j->mem[i] = found[n++];
        atomic_store(&j->busy[i], 1);
    }
    /* Anything else in the file (torn, foreign, stale) is wiped now, so a
     * slot is either ours or free; a slot already zero, or past the end of
     * the file, needs no write. */
    for (int i = 0; i < JOURNAL_SLOTS; i++) {
        size_t at = (size_t)i * JOURNAL_SLOT_BYTES;
        size_t have = (size_t)got > at ? (size_t)got - at : 0;

        if (have > JOURNAL_SLOT_BYTES)
            have = JOURNAL_SLOT_BYTES;
        if (atomic_load(&j->busy[i]) || (!unreadable && memcmp(all + at, zeros, have) == 0))
            continue;
        int r = slot_write(j, i, NULL);
        if (r < 0) {
            close(j->fd);
            free(j);
            return r;
        }
    }
    j->opened = true;
    *ret_found_n = n;
    *ret = j;
    return 0;
}

bool journal_ok(const struct journal *j)
{
    return j != NULL && !atomic_load(&j->failed);
}

int journal_error(const struct journal *j)
{
    if (j == NULL)
        return -ENODEV;
    return atomic_load(&j->error);
}

int journal_begin(struct journal *j, const struct journal_entry *e)
{
    if (!journal_ok(j))
        return -ENODEV;
    for (int i = 0; i < JOURNAL_SLOTS; i++) {
        if (atomic_load(&j->busy[i]))
            continue;
        j->mem[i] = *e;
        int r = slot_write(j, i, e);
        if (r < 0)
            return r;
        atomic_store(&j->busy[i], 1);
        return i;
    }
    return -EBUSY;
}

int journal_find(const struct journal *j, const char *request_id)
{
    if (j == NULL)
        return -ENOENT;
    for (int i = 0; i < JOURNAL_SLOTS; i++)
        if (atomic_load(&j->busy[i]) && strcmp(j->mem[i].request_id, request_id) == 0)
            return i;
    return -ENOENT;
}

int journal_done(struct journal *j, const char *request_id, int64_t done_us, int status,
                 const char *error_type)
{
    int slot;

    if (!journal_ok(j))
        return -ENODEV;
    slot = journal_find(j, request_id);
    if (slot < 0)
        return slot;
    j->mem[slot].done = true;
    j->mem[slot].done_us = done_us;
    j->mem[slot].done_status = status;
    copy_field(j->mem[slot].done_error, sizeof(j->mem[slot].done_error), error_type);
    return slot_write(j, slot, &j->mem[slot]);
}

void journal_release(struct journal *j, int slot)
{
    journal_release_many(j, &slot, 1);
}

void journal_release_many(struct journal *j, const int *slots, size_t n)
{
    static const unsigned char zero[JOURNAL_SLOTS * JOURNAL_SLOT_BYTES];
    bool mine[JOURNAL_SLOTS] = {false};

    if (j == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        if (slots[i] >= 0 && slots[i] < JOURNAL_SLOTS)
            mine[slots[i]] = true;
    /* Each run of adjacent slots wiped by one write (the file is 16 KiB;
     * a slot never straddles a page).  A write cut short leaves each slot
     * intact, wiped, or failing its checksum (read as empty), as a single
     * slot's write would.  Only slots released here are written: the
     * others may be the pipeline's. */
    for (int first = 0; first < JOURNAL_SLOTS && !atomic_load(&j->failed);) {
        int end = first;
        if (!mine[first]) {
            first++;
            continue;
        }
        while (end < JOURNAL_SLOTS && mine[end])
            end++;
        if (write_at(j, zero, (size_t)(end - first) * JOURNAL_SLOT_BYTES, (off_t)first * JOURNAL_SLOT_BYTES) < 0)
            break;
        first = end;
    }
    for (int i = 0; i < JOURNAL_SLOTS; i++)
        if (mine[i])
            atomic_store(&j->busy[i], 0);
}

void journal_close(struct journal *j, bool clear_all)
{
    if (j == NULL)
        return;
    /* Also when the journal is off: a begin may have raced its turn_off. */
    if (clear_all && ftruncate(j->fd, 0) < 0 && !atomic_load(&j->failed))
        for (int i = 0; i < JOURNAL_SLOTS; i++)
            (void)slot_write(j, i, NULL);
    close(j->fd);
    free(j);
}
