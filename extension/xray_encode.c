/*
 * xray_encode.c - X-Ray segment documents; see xray_encode.h.
 *
 * Documents are written straight into capped buffers: a document that would
 * pass its cap fails with -ENOBUFS as soon as it does, which is how the
 * splitter learns that a form does not fit without measuring it first.
 * Leaf module: never logs.
 */
#include "xray_encode.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "xray_header.h"

/* Length of a string held in a fixed array, even if the array lacks its
 * terminator. */
#define FIELD_LEN(field) strnlen((field), sizeof(field))

/* Annotation keys: ^[a-zA-Z0-9_]{1,500}$ (schema; trap 23). */
#define XRAY_ANNOTATION_KEY_MAX 500

/* Cause message with no length limit. */
#define NO_LIMIT SIZE_MAX

struct enc {
    struct buf *b;
    const struct trace_segment *seg;
    struct xray_encode_stats st; /* this encoding's counts; the caller's get them on success */
    size_t cause_max;            /* escaped cause message bytes allowed, or NO_LIMIT */
};

static void stats_add(struct xray_encode_stats *to, const struct xray_encode_stats *from)
{
    if (to == NULL)
        return;
    to->annotations_skipped += from->annotations_skipped;
    to->metadata_skipped += from->metadata_skipped;
    to->causes_truncated += from->causes_truncated;
    to->segments_split += from->segments_split;
}

/* --- input checks -------------------------------------------------------- */

/* Every span's chain of parents ends at -1 within span_count steps: no
 * out-of-range index and no cycle (a span in a cycle would never be
 * reached from the segment and silently vanish). */
static bool span_tree_valid(const struct trace_segment *seg)
{
    for (size_t i = 0; i < seg->span_count; i++) {
        int p = seg->spans[i].parent;
        size_t steps = 0;

        while (p != -1) {
            if (p < 0 || (size_t)p >= seg->span_count || ++steps > seg->span_count)
                return false;
            p = seg->spans[p].parent;
        }
    }
    return true;
}

static bool span_id_ok(const char *id, size_t size)
{
    return xray_span_id_valid(id, strnlen(id, size));
}

static int validate(const struct trace_segment *seg)
{
    if (seg->span_count > TRACE_MAX_SPANS || seg->attr_count > TRACE_MAX_ATTRS)
        return -EINVAL;
    if (!xray_trace_id_valid(seg->trace_id, FIELD_LEN(seg->trace_id)))
        return -EINVAL;
    if (!span_id_ok(seg->id, sizeof(seg->id)))
        return -EINVAL;
    if (seg->parent_id[0] != '\0' && !span_id_ok(seg->parent_id, sizeof(seg->parent_id)))
        return -EINVAL;
    if (FIELD_LEN(seg->name) == 0 || seg->start_us == TRACE_NO_END)
        return -EINVAL;
    if (seg->cause_type[0] != '\0' && !span_id_ok(seg->cause_id, sizeof(seg->cause_id)))
        return -EINVAL;
    for (size_t i = 0; i < seg->span_count; i++) {
        const struct trace_span *s = &seg->spans[i];

        if (!span_id_ok(s->id, sizeof(s->id)) || FIELD_LEN(s->name) == 0 ||
            s->start_us == TRACE_NO_END)
            return -EINVAL;
    }
    return span_tree_valid(seg) ? 0 : -EINVAL;
}

/* --- fields -------------------------------------------------------------- */

/* prefix"key": (keys are our own short literals), all or nothing.  Hand
 * written: printf was most of the encoder's time. */
static int append_key(struct buf *b, const char *prefix, const char *key)
{
    char text[64];
    size_t p = strlen(prefix);
    size_t k = strlen(key);

    if (p + k + 3 > sizeof(text)) {
        size_t mark = buf_len(b);
        int r = buf_append_str(b, prefix);
        if (r == 0)
            r = buf_append(b, "\"", 1);
        if (r == 0)
            r = buf_append_str(b, key);
        if (r == 0)
            r = buf_append(b, "\":", 2);
        if (r < 0)
            buf_truncate(b, mark);
        return r;
    }
    /* one append: all or nothing by itself */
    memcpy(text, prefix, p + 1); /* terminators copied, then overwritten */
    text[p] = '"';
    memcpy(text + p + 1, key, k + 1);
    text[p + 1 + k] = '"';
    text[p + 2 + k] = ':';
    return buf_append(b, text, p + k + 3);
}

/* Seconds with exactly six decimals from integer microseconds: no double
 * ever holds the value, so 1480615200000001 prints as 1480615200.000001
 * (trap 26). */
static int append_time(struct buf *b, const char *key, int64_t us)
{
    int r = append_key(b, ",", key);

    return r < 0 ? r : buf_append_fixed(b, us, 6);
}

static int append_times(struct buf *b, int64_t start_us, int64_t end_us)
{
    int r = append_time(b, "start_time", start_us);

    if (r < 0)
        return r;
    if (end_us == TRACE_NO_END)
        return buf_append_str(b, ",\"in_progress\":true");
    return append_time(b, "end_time", end_us);
}

static int append_flag(struct buf *b, const char *key, bool on)
{
    if (!on)
        return 0;
    int r = append_key(b, ",", key);

    return r < 0 ? r : buf_append(b, "true", 4);
}

/* ,"key":"escaped value" */
static int append_kv(struct buf *b, const char *key, const char *s, size_t n)
{
    int r = append_key(b, ",", key);

    if (r < 0)
        return r;
    return buf_append_json_string(b, s, n);
}

/* The characters the schema's name pattern allows, ASCII part (reference
 * 4.2: Unicode letters, digits, whitespace and _ . : / % & # = + \ - @;
 * the schema's pattern has no backslash, so it is left out here). */
static bool name_ascii_ok(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == ' ' || c == '_' || c == '.' || c == ':' || c == '/' || c == '%' || c == '&' ||
           c == '#' || c == '=' || c == '+' || c == '-' || c == '@';
}

/* A name as a JSON string, disallowed ASCII replaced by '_', at most 200
 * bytes (X-Ray: 200 characters; n <= TRACE_NAME_MAX). */
static int append_name(struct buf *b, const char *name, size_t n)
{
    char clean[TRACE_NAME_MAX];

    if (n > TRACE_NAME_MAX - 1)
        n = TRACE_NAME_MAX - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];

        clean[i] = (char)(c >= 0x80 || name_ascii_ok(c) ? c : '_');
    }
    return buf_append_json_string(b, clean, n);
}

/* --- annotations and metadata -------------------------------------------- */

static bool annotation_key_ok(const char *key)
{
    size_t n = strnlen(key, XRAY_ANNOTATION_KEY_MAX + 1);

    if (n == 0 || n > XRAY_ANNOTATION_KEY_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = key[i];

        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return false;
    }
    return true;
}

static bool value_ok(const struct trace_attr *a)
{
    switch (a->kind) {
    case TRACE_VALUE_STRING:
    case TRACE_VALUE_INT:
    case TRACE_VALUE_BOOL:
        return true;
    case TRACE_VALUE_DOUBLE:
        return isfinite(a->d);
    default:
        return false;
    }
}

/* Whether attribute i is one this encoder sends under target. */
static bool attr_sendable(const struct trace_attr *a, enum trace_attr_target target)
{
    if (a->target != target || a->xray_key == NULL || !value_ok(a))
        return false;
    return target != TRACE_ATTR_ANNOTATION || annotation_key_ok(a->xray_key);
}

/* A key already sent by an earlier attribute of the same target (those
 * marked in sendable[]): JSON objects with duplicate keys are ambiguous,
 * so the later one is dropped.  Keys are mostly the same static strings:
 * equal pointers are equal keys without comparing. */
static bool attr_duplicate(const struct trace_segment *seg, size_t i, const bool *sendable)
{
    const struct trace_attr *a = &seg->attrs[i];

    for (size_t j = 0; j < i; j++) {
        const struct trace_attr *b = &seg->attrs[j];

        if (sendable[j] && b->on_span == a->on_span &&
            (b->xray_key == a->xray_key ||
             (b->xray_key[0] == a->xray_key[0] && strcmp(b->xray_key, a->xray_key) == 0)))
            return true;
    }
    return false;
}

static int append_value(struct buf *b, const struct trace_attr *a)
{
    switch (a->kind) {
    case TRACE_VALUE_STRING:
        return buf_append_json_string(b, a->str, FIELD_LEN(a->str));
    case TRACE_VALUE_INT:
        return buf_append_i64(b, a->i);
    case TRACE_VALUE_DOUBLE:
        return buf_append_json_double(b, a->d);
    case TRACE_VALUE_BOOL:
        return buf_append_str(b, a->b ? "true" : "false");
    default:
        return -EINVAL;
    }
}

/* Whether text (len bytes) has the shape of one JSON object: '{' first,
 * brackets balanced outside strings, the last '}' closing the first, no raw
 * control bytes.  The snapshot is our own serialiser's output; this only
 * guards the document against a cut or corrupted one (it is not a full
 * JSON validator). */
static bool json_object_shape_ok(const char *text, size_t len)
{
    unsigned depth = 0;
    bool in_string = false;

    if (len < 2 || text[0] != '{')
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];

        if (c < 0x20)
            return false;
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (c == '"')
            in_string = true;
        else if (c == '{' || c == '[')
            depth++;
        else if (c == '}' || c == ']') {
            if (depth == 0)
                return false;
            if (--depth == 0 && i != len - 1)
                return false;
        }
    }
    return depth == 0 && !in_string;
}

/* The snapshot goes out when it is there and well-formed. */
static bool snapshot_sendable(const struct trace_segment *seg)
{
    return seg->snapshot_json[0] != '\0' &&
           json_object_shape_ok(seg->snapshot_json, FIELD_LEN(seg->snapshot_json));
}

/* ,"annotations":{...} or ,"metadata":{"lambda_tracer":{...}}, omitted when
 * nothing qualifies.  The metadata also carries the snapshot, as is. */
/* The annotations or metadata of owner (trace_attr.on_span): 0 the
 * segment, i + 1 span i. */
static int append_attrs(struct enc *e, enum trace_attr_target target, int owner)
{
    const struct trace_segment *seg = e->seg;
    bool annotation = target == TRACE_ATTR_ANNOTATION;
    unsigned long *skipped = annotation ? &e->st.annotations_skipped : &e->st.metadata_skipped;
    bool first = true;
    bool sendable[TRACE_MAX_ATTRS]; /* each key checked once, not once per later attribute */
    int r = 0;

    /* Only this section's attributes are checked: a duplicate is one of the
     * same owner and target (attr_duplicate), so the others' sendable[] is
     * never read.  The segment's sections are asked for once per span. */
    for (size_t i = 0; i < seg->attr_count; i++) {
        const struct trace_attr *a = &seg->attrs[i];

        sendable[i] = false;
        if (a->target != target || a->xray_key == NULL || a->on_span != owner)
            continue; /* not meant for this section: not a skip */
        sendable[i] = attr_sendable(a, target);
        if (!sendable[i] || attr_duplicate(seg, i, sendable)) {
            (*skipped)++;
            continue;
        }
        if (first)
            TRY(buf_append_str(e->b, annotation ? ",\"annotations\":{"
                                                : ",\"metadata\":{\"" XRAY_METADATA_NAMESPACE "\":{"));
        else
            TRY(buf_append_str(e->b, ","));
        first = false;
        TRY(buf_append_json_string(e->b, a->xray_key, strlen(a->xray_key)));
        TRY(buf_append_str(e->b, ":"));
        TRY(append_value(e->b, a));
    }
    if (!annotation && owner == 0 && seg->snapshot_json[0] != '\0') {
        if (!snapshot_sendable(seg)) {
            (*skipped)++;
        } else {
            TRY(buf_append_str(e->b, first ? ",\"metadata\":{\"" XRAY_METADATA_NAMESPACE "\":{" : ","));
            first = false;
            TRY(buf_append_str(e->b, "\"snapshot\":"));
            TRY(buf_append(e->b, seg->snapshot_json, FIELD_LEN(seg->snapshot_json)));
        }
    }
    if (!first)
        TRY(buf_append_str(e->b, annotation ? "}" : "}}"));
out:
    return r;
}

/* --- cause --------------------------------------------------------------- */

static int append_cause(struct enc *e)
{
    const struct trace_segment *seg = e->seg;
    size_t msg_len = FIELD_LEN(seg->cause_message);
    bool truncated = false;
    int r = 0;

    if (seg->cause_type[0] == '\0')
        return 0;
    TRY(buf_append_str(e->b, ",\"cause\":{\"exceptions\":[{\"id\":"));
    TRY(buf_append_json_string(e->b, seg->cause_id, FIELD_LEN(seg->cause_id)));
    TRY(append_kv(e->b, "type", seg->cause_type, FIELD_LEN(seg->cause_type)));
    if (msg_len > 0) {
        TRY(buf_append_str(e->b, ",\"message\":"));
        TRY(buf_append_json_string_max(e->b, seg->cause_message, msg_len, e->cause_max,
                                       XRAY_TRUNCATED_SUFFIX, &truncated));
    }
    TRY(buf_append_str(e->b, "}]}"));
    if (truncated)
        e->st.causes_truncated++;
out:
    return r;
}

/* --- subsegments --------------------------------------------------------- */

static bool has_children(const struct trace_segment *seg, int parent)
{
    for (size_t i = 0; i < seg->span_count; i++) {
        if (seg->spans[i].parent == parent)
            return true;
    }
    return false;
}

static int append_span(struct enc *e, size_t i, bool independent, bool children);

/* ,"subsegments":[...] with the spans whose parent is `parent`, nested. */
static int append_children(struct enc *e, int parent)
{
    const struct trace_segment *seg = e->seg;
    bool first = true;
    int r = 0;

    if (!has_children(seg, parent))
        return 0;
    TRY(buf_append_str(e->b, ",\"subsegments\":["));
    for (size_t i = 0; i < seg->span_count; i++) {
        if (seg->spans[i].parent != parent)
            continue;
        if (!first)
            TRY(buf_append_str(e->b, ","));
        first = false;
        TRY(append_span(e, i, false, true));
    }
    TRY(buf_append_str(e->b, "]"));
out:
    return r;
}

/* One subsegment object.  independent: a document of its own, which needs
 * trace_id, parent_id and "type":"subsegment" (reference 4.2). */
static int append_span(struct enc *e, size_t i, bool independent, bool children)
{
    const struct trace_segment *seg = e->seg;
    const struct trace_span *s = &seg->spans[i];
    int r = 0;

    TRY(buf_append_str(e->b, "{\"name\":"));
    TRY(append_name(e->b, s->name, FIELD_LEN(s->name)));
    TRY(append_kv(e->b, "id", s->id, FIELD_LEN(s->id)));
    if (independent) {
        const char *parent_id = s->parent < 0 ? seg->id : seg->spans[s->parent].id;

        TRY(append_kv(e->b, "trace_id", seg->trace_id, FIELD_LEN(seg->trace_id)));
        TRY(append_kv(e->b, "parent_id", parent_id, strnlen(parent_id, XRAY_SPAN_ID_LEN + 1)));
        TRY(buf_append_str(e->b, ",\"type\":\"subsegment\""));
    }
    TRY(append_times(e->b, s->start_us, s->end_us));
    TRY(append_flag(e->b, "error", s->error));
    TRY(append_flag(e->b, "fault", s->fault));
    TRY(append_attrs(e, TRACE_ATTR_ANNOTATION, (int)i + 1));
    TRY(append_attrs(e, TRACE_ATTR_METADATA, (int)i + 1));
    if (children)
        TRY(append_children(e, (int)i));
    TRY(buf_append_str(e->b, "}"));
out:
    return r;
}

/* --- segment ------------------------------------------------------------- */

static int append_aws(struct buf *b, const struct trace_segment *seg)
{
    const struct {
        const char *key;
        const char *val;
        size_t len;
    } f[] = {
        {"request_id", seg->request_id, FIELD_LEN(seg->request_id)},
        {"function_arn", seg->function_arn, FIELD_LEN(seg->function_arn)},
        {"function_version", seg->function_version, FIELD_LEN(seg->function_version)},
        {"account_id", seg->account_id, FIELD_LEN(seg->account_id)},
    };
    bool first = true;
    int r = 0;

    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        if (f[i].len == 0)
            continue;
        TRY(append_key(b, first ? ",\"aws\":{" : ",", f[i].key));
        TRY(buf_append_json_string(b, f[i].val, f[i].len));
        first = false;
    }
    if (!first)
        TRY(buf_append_str(b, "}"));
out:
    return r;
}

static int append_segment(struct enc *e, bool subsegments)
{
    const struct trace_segment *seg = e->seg;
    int r = 0;

    TRY(buf_append_str(e->b, "{\"name\":"));
    TRY(append_name(e->b, seg->name, FIELD_LEN(seg->name)));
    TRY(append_kv(e->b, "id", seg->id, FIELD_LEN(seg->id)));
    TRY(append_kv(e->b, "trace_id", seg->trace_id, FIELD_LEN(seg->trace_id)));
    if (seg->parent_id[0] != '\0')
        TRY(append_kv(e->b, "parent_id", seg->parent_id, FIELD_LEN(seg->parent_id)));
    TRY(append_times(e->b, seg->start_us, seg->end_us));
    if (seg->origin[0] != '\0')
        TRY(append_kv(e->b, "origin", seg->origin, FIELD_LEN(seg->origin)));
    TRY(append_aws(e->b, seg));
    TRY(append_flag(e->b, "error", seg->error));
    TRY(append_flag(e->b, "fault", seg->fault));
    TRY(append_flag(e->b, "throttle", seg->throttle));
    TRY(append_cause(e));
    TRY(append_attrs(e, TRACE_ATTR_ANNOTATION, 0));
    TRY(append_attrs(e, TRACE_ATTR_METADATA, 0));
    if (subsegments)
        TRY(append_children(e, -1));
    TRY(buf_append_str(e->b, "}"));
out:
    return r;
}

/* One segment document into b (appended; rolled back on failure). */
static int encode_segment_doc(struct buf *b, const struct trace_segment *seg, bool subsegments,
                              size_t cause_max, struct xray_encode_stats *ret_st)
{
    struct enc e = {.b = b, .seg = seg, .cause_max = cause_max};
    size_t start = buf_len(b);
    int r = append_segment(&e, subsegments);

    if (r < 0) {
        buf_truncate(b, start);
        return r;
    }
    *ret_st = e.st;
    return 0;
}

/* One independent subsegment document into b (rolled back on failure). */
static int encode_span_doc(struct buf *b, const struct trace_segment *seg, size_t i, bool children)
{
    struct enc e = {.b = b, .seg = seg, .cause_max = NO_LIMIT};
    size_t start = buf_len(b);
    int r = append_span(&e, i, true, children);

    if (r < 0)
        buf_truncate(b, start);
    return r;
}

int xray_encode_segment(struct buf *out, const struct trace_segment *seg,
                        struct xray_encode_stats *stats)
{
    struct xray_encode_stats st = {0};
    int r = validate(seg);

    if (r < 0)
        return r;
    r = encode_segment_doc(out, seg, true, NO_LIMIT, &st);
    if (r == 0)
        stats_add(stats, &st);
    return r;
}

/* --- splitter ------------------------------------------------------------ */

void xray_docs_init(struct xray_docs *docs)
{
    /* Every document plus its newline. */
    buf_init(&docs->text, XRAY_MAX_DOCS * (XRAY_DOC_MAX_BYTES + 1));
    buf_init(&docs->scratch, XRAY_DOC_MAX_BYTES);
    docs->count = 0;
}

void xray_docs_free(struct xray_docs *docs)
{
    buf_free(&docs->text);
    buf_free(&docs->scratch);
    docs->count = 0;
}

struct xray_doc xray_docs_get(const struct xray_docs *docs, size_t i)
{
    struct xray_doc d = {buf_data(&docs->text) + docs->off[i], docs->len[i]};

    return d;
}

/* Moves the document in scratch to the list (scratch is emptied). */
static int docs_add(struct xray_docs *docs, struct buf *scratch)
{
    size_t start = buf_len(&docs->text);
    int r;

    if (docs->count >= XRAY_MAX_DOCS)
        return -EINVAL; /* cannot happen: one document per span at most */
    r = buf_append(&docs->text, buf_data(scratch), buf_len(scratch));
    if (r == 0)
        r = buf_append(&docs->text, "\n", 1);
    if (r < 0) {
        buf_truncate(&docs->text, start);
        return r;
    }
    docs->off[docs->count] = start;
    docs->len[docs->count] = buf_len(scratch);
    docs->count++;
    buf_reset(scratch);
    return 0;
}

/* Span i as an independent document with its children nested if that fits,
 * else alone followed by its children's own documents. */
static int split_span(struct xray_docs *docs, struct buf *scratch, const struct trace_segment *seg,
                      size_t i)
{
    int r = encode_span_doc(scratch, seg, i, true);

    if (r == 0)
        return docs_add(docs, scratch);
    if (r != -ENOBUFS)
        return r;
    r = encode_span_doc(scratch, seg, i, false);
    if (r == -ENOBUFS)
        return -EMSGSIZE;
    if (r == 0)
        r = docs_add(docs, scratch);
    for (size_t c = 0; r == 0 && c < seg->span_count; c++) {
        if (seg->spans[c].parent == (int)i)
            r = split_span(docs, scratch, seg, c);
    }
    return r;
}

/* The segment document without subsegments, its cause message cut if that
 * is what it takes to fit the cap of scratch. */
static int split_segment(struct buf *scratch, const struct trace_segment *seg,
                         struct xray_encode_stats *ret_st)
{
    size_t suffix_len = sizeof(XRAY_TRUNCATED_SUFFIX) - 1;
    size_t fixed;
    int r = encode_segment_doc(scratch, seg, false, NO_LIMIT, ret_st);

    if (r != -ENOBUFS)
        return r;
    if (seg->cause_type[0] == '\0' || seg->cause_message[0] == '\0')
        return -EMSGSIZE;
    /* With the message cut down to the bare suffix the document has its
     * smallest size; the rest of the cap is what the message may use. */
    r = encode_segment_doc(scratch, seg, false, suffix_len, ret_st);
    if (r == -ENOBUFS)
        return -EMSGSIZE;
    if (r < 0)
        return r;
    fixed = buf_len(scratch) - suffix_len;
    buf_reset(scratch);
    return encode_segment_doc(scratch, seg, false, buf_max(scratch) - fixed, ret_st);
}

int xray_encode_split(const struct trace_segment *seg, size_t max_doc_bytes,
                      struct xray_docs *ret, struct xray_encode_stats *stats)
{
    struct xray_encode_stats st = {0};
    struct buf *scratch = &ret->scratch;
    int r;

    buf_reset(&ret->text);
    ret->count = 0;
    r = validate(seg);
    if (r < 0)
        return r;
    if (max_doc_bytes > XRAY_DOC_MAX_BYTES)
        max_doc_bytes = XRAY_DOC_MAX_BYTES;
    buf_recycle(scratch, max_doc_bytes, XRAY_SCRATCH_KEEP_BYTES);

    r = encode_segment_doc(scratch, seg, true, NO_LIMIT, &st);
    if (r == 0) {
        r = docs_add(ret, scratch);
        goto out;
    }
    if (r != -ENOBUFS)
        goto out;

    r = split_segment(scratch, seg, &st);
    st.segments_split = 1;
    if (r == 0)
        r = docs_add(ret, scratch);
    for (size_t i = 0; r == 0 && i < seg->span_count; i++) {
        if (seg->spans[i].parent == -1)
            r = split_span(ret, scratch, seg, i);
    }
out:
    /* kept for the next segment unless this one made it large */
    buf_recycle(scratch, max_doc_bytes, XRAY_SCRATCH_KEEP_BYTES);
    if (r < 0) {
        buf_reset(&ret->text);
        ret->count = 0;
        return r;
    }
    stats_add(stats, &st);
    return 0;
}

/* --- transports ---------------------------------------------------------- */

int xray_daemon_datagram(struct buf *out, const char *doc, size_t len)
{
    size_t start = buf_len(out);
    int r;

    if (len == 0)
        return -EINVAL;
    r = buf_append(out, XRAY_DAEMON_HEADER, XRAY_DAEMON_HEADER_LEN);
    if (r == 0)
        r = buf_append(out, doc, len);
    if (r < 0)
        buf_truncate(out, start);
    return r;
}

int xray_put_body(struct buf *out, const struct xray_doc *docs, size_t n, size_t *ret_used)
{
    static const char head[] = "{\"TraceSegmentDocuments\":[";
    static const char tail[] = "]}";
    size_t start = buf_len(out);
    size_t used = 0;
    int r;

    *ret_used = 0;
    if (n == 0)
        return -EINVAL;
    r = buf_append(out, head, sizeof(head) - 1);
    for (size_t i = 0; r == 0 && i < n; i++) {
        size_t mark = buf_len(out);

        if (docs[i].len == 0) {
            r = -EINVAL;
            break;
        }
        r = buf_append(out, ",", i > 0 ? 1 : 0);
        if (r == 0)
            r = buf_append_json_string(out, docs[i].data, docs[i].len);
        /* Keep room for the closing bracket and brace. */
        if (r == 0 && buf_max(out) - buf_len(out) < sizeof(tail) - 1)
            r = -ENOBUFS;
        if (r == -ENOBUFS && used > 0) {
            buf_truncate(out, mark);
            r = 0;
            break;
        }
        if (r == 0)
            used++;
    }
    if (r == 0)
        r = buf_append(out, tail, sizeof(tail) - 1);
    if (r < 0) {
        buf_truncate(out, start);
        return r;
    }
    *ret_used = used;
    return 0;
}
