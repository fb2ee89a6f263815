/*
 * http_request.c - strict, incremental HTTP/1.1 request parser.
 *
 * Design: the header section (request line, fields, and later the chunked
 * trailers) is copied line by line into one growable buffer.  Each feed
 * searches only the new bytes for LF and a line is examined exactly once,
 * when its LF arrives, so feeding a request one byte at a time costs the
 * same as feeding it whole.  Bodies are copied straight into a second
 * growable buffer; chunk-size lines are parsed by a byte-level state machine
 * and never buffered.  All bounds are checked before anything is copied.
 */
#include "http_request.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ids.h"

/* Buffers at most this big survive http_request_reset(): enough for a
 * typical Lambda request head (about 250 bytes) and a small batch, small
 * enough that 16 idle connections cost well under our 2 MB RSS budget. */
#define RETAIN_BYTES 4096
#define HEAD_INITIAL_BYTES 512
#define BODY_INITIAL_BYTES 4096
/* 16 hex digits fill 64 bits, so a size of up to 16 digits cannot overflow. */
#define CHUNK_SIZE_MAX_DIGITS 16

enum parse_state {
    STATE_REQUEST_LINE,
    STATE_HEADER_LINE,
    STATE_BODY_LENGTH,
    STATE_CHUNK_SIZE,
    STATE_CHUNK_EXT,
    STATE_CHUNK_SIZE_LF,
    STATE_CHUNK_DATA,
    STATE_CHUNK_DATA_CR,
    STATE_CHUNK_DATA_LF,
    STATE_TRAILER_LINE,
    STATE_COMPLETE,
    STATE_ERROR,
};

/* Offsets into head, each the start of a NUL-terminated string. */
struct field {
    uint32_t name_off;
    uint32_t value_off;
};

struct http_request {
    size_t max_header_bytes;
    size_t max_body_bytes;

    /* Request line, header lines and trailer lines, as received. */
    char *head;
    size_t head_len;
    size_t head_cap;
    /* Offset in head where the line being received starts. */
    size_t line_start;
    /* Empty lines skipped before the request line: not stored, but counted
     * against the cap so a stream of CRLFs cannot go on forever. */
    size_t skipped_bytes;
    size_t method_off;
    size_t target_off;
    size_t field_count;

    /* Decoded body; when allocated, body[body_len] is always NUL. */
    char *body;
    size_t body_len;
    size_t body_cap;
    uint64_t content_length;
    /* Bytes still expected: the rest of Content-Length or of this chunk. */
    uint64_t remaining;
    size_t chunk_ext_bytes;

    enum parse_state state;
    int error;
    int minor_version;
    unsigned te_count;
    unsigned chunk_digits;

    struct field fields[HTTP_REQUEST_MAX_FIELDS];

    /* Some byte of this request has been consumed. */
    bool started;
    bool have_request_line;
    bool headers_done;
    bool have_content_length;
    bool te_unsupported;
    bool conn_close;
    bool conn_keep_alive;
    bool expect_continue;
    bool body_started;
};

/* RFC 9110 5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" /
 * "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA */
static bool is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* field-vchar / SP / HTAB, obs-text included (RFC 9110 5.5). */
static bool is_field_char(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Grow *buf so it holds at least need bytes, doubling, never past limit.
 * Callers check their caps first; need > limit is refused anyway so a slip
 * there can never turn into a short buffer.  On failure the old buffer is
 * untouched. */
static int buffer_reserve(char **buf, size_t *cap, size_t need, size_t initial, size_t limit)
{
    size_t new_cap;
    char *p;

    if (need <= *cap)
        return 0;
    if (need > limit)
        return -EMSGSIZE;
    new_cap = *cap > 0 ? *cap : initial;
    while (new_cap < need && new_cap <= SIZE_MAX / 2)
        new_cap *= 2;
    if (new_cap < need)
        new_cap = need;
    if (new_cap > limit)
        new_cap = limit;
    p = realloc(*buf, new_cap);
    if (!p)
        return -ENOMEM;
    *buf = p;
    *cap = new_cap;
    return 0;
}

/* Append body bytes.  limit is the largest buffer this request may need
 * (decoded length + NUL), so a known Content-Length never over-allocates. */
static int body_append(struct http_request *req, const char *data, size_t len, size_t limit)
{
    int r;

    r = buffer_reserve(&req->body, &req->body_cap, req->body_len + len + 1, BODY_INITIAL_BYTES,
                       limit);
    if (r < 0)
        return r;
    memcpy(req->body + req->body_len, data, len);
    req->body_len += len;
    req->body[req->body_len] = '\0';
    return 0;
}

/* Case-insensitive search of one token in a comma-separated list
 * (RFC 9110 5.6.1), e.g. Connection: "keep-alive, Upgrade". */
static bool list_has_token(const char *list, const char *token)
{
    size_t token_len = strlen(token);
    const char *p = list;

    while (*p) {
        const char *start, *end;

        while (*p == ',' || is_ows(*p))
            p++;
        start = p;
        while (*p && *p != ',')
            p++;
        end = p;
        while (end > start && is_ows(end[-1]))
            end--;
        if ((size_t)(end - start) == token_len && strncasecmp(start, token, token_len) == 0)
            return true;
    }
    return false;
}

/* Content-Length = 1*DIGIT, checked for overflow. */
static int parse_content_length(const char *value, uint64_t *ret_value)
{
    uint64_t v = 0;

    if (*value == '\0')
        return -EPROTO;
    for (const char *p = value; *p; p++) {
        unsigned d;

        if (*p < '0' || *p > '9')
            return -EPROTO;
        d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -EPROTO;
        v = v * 10 + d;
    }
    *ret_value = v;
    return 0;
}

/* React to the fields that change framing or the connection.  Conflicts
 * between fields (CL with TE) are judged once the whole section is in, so the
 * outcome does not depend on field order. */
static int interpret_field(struct http_request *req, const char *name, const char *value)
{
    if (strcasecmp(name, "Content-Length") == 0) {
        uint64_t length;
        int r = parse_content_length(value, &length);

        if (r < 0)
            return r;
        if (req->have_content_length && req->content_length != length)
            return -EPROTO;
        req->have_content_length = true;
        req->content_length = length;
    } else if (strcasecmp(name, "Transfer-Encoding") == 0) {
        req->te_count++;
        if (strcasecmp(value, "chunked") != 0)
            req->te_unsupported = true;
    } else if (strcasecmp(name, "Connection") == 0) {
        if (list_has_token(value, "close"))
            req->conn_close = true;
        if (list_has_token(value, "keep-alive"))
            req->conn_keep_alive = true;
    } else if (strcasecmp(name, "Expect") == 0) {
        if (strcasecmp(value, "100-continue") == 0)
            req->expect_continue = true;
    }
    return 0;
}

/* One field line without its CRLF: name ":" OWS value OWS.  When store is
 * set (header section, not trailers) the name and value are NUL-terminated
 * in place and indexed. */
static int parse_field_line(struct http_request *req, size_t off, size_t len, bool store)
{
    char *line = req->head + off;
    size_t colon, vstart, vend;

    /* A field line starting with whitespace is obsolete line folding, or
     * whitespace between the start line and the first field: both are
     * rejected (RFC 9112 2.2, 5.2). */
    for (colon = 0; colon < len && line[colon] != ':'; colon++)
        if (!is_tchar((unsigned char)line[colon]))
            return -EPROTO;
    if (colon == 0 || colon == len)
        return -EPROTO;

    for (size_t i = colon + 1; i < len; i++)
        if (!is_field_char((unsigned char)line[i]))
            return -EPROTO;
    vstart = colon + 1;
    while (vstart < len && is_ows(line[vstart]))
        vstart++;
    vend = len;
    while (vend > vstart && is_ows(line[vend - 1]))
        vend--;

    if (!store)
        return 0;
    if (req->field_count == HTTP_REQUEST_MAX_FIELDS)
        return -E2BIG;
    /* line[len] is the CR, so writing at vend (<= len) stays in the line. */
    line[colon] = '\0';
    line[vend] = '\0';
    req->fields[req->field_count].name_off = (uint32_t)off;
    req->fields[req->field_count].value_off = (uint32_t)(off + vstart);
    req->field_count++;
    return interpret_field(req, line, line + vstart);
}

/* method SP request-target SP HTTP-version, without its CRLF. */
static int parse_request_line(struct http_request *req, size_t off, size_t len)
{
    char *line = req->head + off;
    const char *version;
    size_t sp1, sp2;

    for (sp1 = 0; sp1 < len && line[sp1] != ' '; sp1++)
        if (!is_tchar((unsigned char)line[sp1]))
            return -EPROTO;
    if (sp1 == 0 || sp1 == len)
        return -EPROTO;
    /* request-target: visible ASCII only; URIs have no spaces or obs-text. */
    for (sp2 = sp1 + 1; sp2 < len && line[sp2] != ' '; sp2++)
        if ((unsigned char)line[sp2] < 0x21 || (unsigned char)line[sp2] > 0x7e)
            return -EPROTO;
    if (sp2 == sp1 + 1 || sp2 == len)
        return -EPROTO;

    /* HTTP-version = "HTTP" "/" DIGIT "." DIGIT, case-sensitive. */
    version = line + sp2 + 1;
    if (len - sp2 - 1 != 8 || memcmp(version, "HTTP/", 5) != 0 || version[5] < '0' ||
        version[5] > '9' || version[6] != '.' || version[7] < '0' || version[7] > '9')
        return -EPROTO;
    if (version[5] != '1' || (version[7] != '0' && version[7] != '1'))
        return -EPROTONOSUPPORT;

    req->minor_version = version[7] - '0';
    line[sp1] = '\0';
    line[sp2] = '\0';
    req->method_off = off;
    req->target_off = off + sp1 + 1;
    req->have_request_line = true;
    return 0;
}

/* The empty line ending the header section: decide the body framing
 * (RFC 9112 6.1 - 6.3). */
static int finish_headers(struct http_request *req)
{
    if (req->te_count > 0) {
        /* CL with TE is the classic request-smuggling vector, and TE in
         * HTTP/1.0 is a faulty frame (RFC 9112 6.1): refuse both. */
        if (req->have_content_length || req->minor_version == 0)
            return -EPROTO;
        if (req->te_unsupported)
            return -ENOTSUP;
        /* chunked applied twice (RFC 9112 6.1 forbids it). */
        if (req->te_count > 1)
            return -EPROTO;
        req->state = STATE_CHUNK_SIZE;
    } else if (req->have_content_length && req->content_length > 0) {
        if (req->content_length > req->max_body_bytes)
            return -EMSGSIZE;
        req->remaining = req->content_length;
        req->state = STATE_BODY_LENGTH;
    } else {
        req->state = STATE_COMPLETE;
    }
    req->headers_done = true;
    return 0;
}

/* A whole line (ending in LF) sits at head[line_start, head_len). */
static int process_line(struct http_request *req)
{
    size_t off = req->line_start;
    size_t len = req->head_len - off;
    int r;

    if (len < 2 || req->head[req->head_len - 2] != '\r')
        return -EPROTO;
    len -= 2;

    switch (req->state) {
    case STATE_REQUEST_LINE:
        if (len == 0) {
            /* RFC 9112 2.2: ignore empty lines before the request line. */
            req->skipped_bytes += 2;
            req->head_len = off;
            return 0;
        }
        r = parse_request_line(req, off, len);
        if (r < 0)
            return r;
        req->state = STATE_HEADER_LINE;
        break;
    case STATE_HEADER_LINE:
        r = len == 0 ? finish_headers(req) : parse_field_line(req, off, len, true);
        if (r < 0)
            return r;
        break;
    case STATE_TRAILER_LINE:
        if (len == 0) {
            req->state = STATE_COMPLETE;
            break;
        }
        r = parse_field_line(req, off, len, false);
        if (r < 0)
            return r;
        break;
    default:
        return -EPROTO;
    }
    req->line_start = req->head_len;
    return 0;
}

/* Copy bytes up to and including the next LF into head and process the line
 * if it is complete.  *ret_used is always written. */
static int feed_head(struct http_request *req, const char *data, size_t len, size_t *ret_used)
{
    const char *lf = memchr(data, '\n', len);
    size_t take = lf ? (size_t)(lf - data) + 1 : len;
    size_t counted = req->head_len + req->skipped_bytes;
    int r;

    *ret_used = 0;
    if (take > req->max_header_bytes - counted)
        return -E2BIG;
    r = buffer_reserve(&req->head, &req->head_cap, req->head_len + take, HEAD_INITIAL_BYTES,
                       req->max_header_bytes);
    if (r < 0)
        return r;
    memcpy(req->head + req->head_len, data, take);
    req->head_len += take;
    *ret_used = take;
    return lf ? process_line(req) : 0;
}

/* One byte of a chunk-size line: chunk-size [ chunk-ext ] CRLF. */
static int feed_chunk_line_byte(struct http_request *req, unsigned char c)
{
    int d;

    switch (req->state) {
    case STATE_CHUNK_SIZE:
        d = ids_hex_value((char)c);
        if (d >= 0) {
            if (++req->chunk_digits > CHUNK_SIZE_MAX_DIGITS)
                return -EPROTO;
            req->remaining = req->remaining * 16 + (unsigned)d;
            /* Fail as soon as the running total would pass the cap, before
             * any of this chunk's data is read. */
            if (req->remaining > req->max_body_bytes - req->body_len)
                return -EMSGSIZE;
            return 0;
        }
        if (req->chunk_digits == 0)
            return -EPROTO;
        if (c == ';') {
            req->chunk_ext_bytes = 1;
            req->state = STATE_CHUNK_EXT;
            return 0;
        }
        if (c == '\r') {
            req->state = STATE_CHUNK_SIZE_LF;
            return 0;
        }
        return -EPROTO;
    case STATE_CHUNK_EXT:
        if (c == '\r') {
            req->state = STATE_CHUNK_SIZE_LF;
            return 0;
        }
        if (!is_field_char(c))
            return -EPROTO;
        if (++req->chunk_ext_bytes > HTTP_REQUEST_MAX_CHUNK_EXT_BYTES)
            return -EPROTO;
        return 0;
    case STATE_CHUNK_SIZE_LF:
        if (c != '\n')
            return -EPROTO;
        if (req->remaining == 0) {
            req->line_start = req->head_len;
            req->state = STATE_TRAILER_LINE;
        } else {
            req->state = STATE_CHUNK_DATA;
        }
        return 0;
    case STATE_CHUNK_DATA_CR:
        if (c != '\r')
            return -EPROTO;
        req->state = STATE_CHUNK_DATA_LF;
        return 0;
    case STATE_CHUNK_DATA_LF:
        if (c != '\n')
            return -EPROTO;
        req->remaining = 0;
        req->chunk_digits = 0;
        req->chunk_ext_bytes = 0;
        req->state = STATE_CHUNK_SIZE;
        return 0;
    default:
        return -EPROTO;
    }
}

struct http_request *http_request_new(size_t max_header_bytes, size_t max_body_bytes)
{
    struct http_request *req;

    if (max_header_bytes == 0 || max_header_bytes > HTTP_REQUEST_MAX_HEADER_CAP)
        return NULL;
    /* The body buffer needs one more byte for its NUL. */
    if (max_body_bytes >= SIZE_MAX / 2)
        return NULL;
    req = calloc(1, sizeof(*req));
    if (!req)
        return NULL;
    req->max_header_bytes = max_header_bytes;
    req->max_body_bytes = max_body_bytes;
    http_request_reset(req);
    return req;
}

void http_request_destroy(struct http_request *req)
{
    if (!req)
        return;
    free(req->head);
    free(req->body);
    free(req);
}

void http_request_reset(struct http_request *req)
{
    char *head = req->head, *body = req->body;
    size_t head_cap = req->head_cap, body_cap = req->body_cap;
    size_t max_header_bytes = req->max_header_bytes, max_body_bytes = req->max_body_bytes;

    if (head_cap > RETAIN_BYTES) {
        free(head);
        head = NULL;
        head_cap = 0;
    }
    if (body_cap > RETAIN_BYTES) {
        free(body);
        body = NULL;
        body_cap = 0;
    }
    memset(req, 0, sizeof(*req));
    req->max_header_bytes = max_header_bytes;
    req->max_body_bytes = max_body_bytes;
    req->head = head;
    req->head_cap = head_cap;
    req->body = body;
    req->body_cap = body_cap;
    if (req->body)
        req->body[0] = '\0';
    req->state = STATE_REQUEST_LINE;
}

int http_request_feed(struct http_request *req, const char *data, size_t len, size_t *ret_consumed)
{
    size_t pos = 0;
    int r = 0;

    if (req->state == STATE_ERROR) {
        *ret_consumed = 0;
        return req->error;
    }

    while (pos < len && req->state != STATE_COMPLETE) {
        size_t used, take;

        switch (req->state) {
        case STATE_REQUEST_LINE:
        case STATE_HEADER_LINE:
        case STATE_TRAILER_LINE:
            r = feed_head(req, data + pos, len - pos, &used);
            pos += used;
            break;
        case STATE_BODY_LENGTH:
        case STATE_CHUNK_DATA:
            req->body_started = true;
            take = len - pos;
            if (take > req->remaining)
                take = (size_t)req->remaining;
            /* Content-Length is known in full: size the buffer to it.  A
             * chunked body may grow up to the cap. */
            if (req->state == STATE_BODY_LENGTH)
                r = buffer_reserve(&req->body, &req->body_cap, (size_t)req->content_length + 1,
                                   (size_t)req->content_length + 1, (size_t)req->content_length + 1);
            else
                r = 0;
            if (r == 0)
                r = body_append(req, data + pos, take,
                                req->state == STATE_BODY_LENGTH ? (size_t)req->content_length + 1
                                                                : req->max_body_bytes + 1);
            if (r < 0)
                break;
            pos += take;
            req->remaining -= take;
            if (req->remaining == 0)
                req->state = req->state == STATE_BODY_LENGTH ? STATE_COMPLETE : STATE_CHUNK_DATA_CR;
            break;
        case STATE_CHUNK_SIZE:
        case STATE_CHUNK_EXT:
        case STATE_CHUNK_SIZE_LF:
        case STATE_CHUNK_DATA_CR:
        case STATE_CHUNK_DATA_LF:
            req->body_started = true;
            r = feed_chunk_line_byte(req, (unsigned char)data[pos]);
            if (r == 0)
                pos++;
            break;
        case STATE_COMPLETE:
        case STATE_ERROR:
            r = -EPROTO;
            break;
        }
        if (r < 0) {
            req->state = STATE_ERROR;
            req->error = r;
            req->headers_done = false;
            *ret_consumed = pos;
            return r;
        }
    }

    if (pos > 0)
        req->started = true;
    *ret_consumed = pos;
    return req->state == STATE_COMPLETE ? HTTP_REQUEST_COMPLETE : HTTP_REQUEST_INCOMPLETE;
}

bool http_request_in_progress(const struct http_request *req)
{
    return req->started && req->state != STATE_COMPLETE && req->state != STATE_ERROR;
}

bool http_request_headers_done(const struct http_request *req)
{
    return req->headers_done;
}

const char *http_request_method(const struct http_request *req)
{
    return req->have_request_line ? req->head + req->method_off : NULL;
}

const char *http_request_target(const struct http_request *req)
{
    return req->have_request_line ? req->head + req->target_off : NULL;
}

const char *http_request_body(const struct http_request *req, size_t *ret_len)
{
    if (ret_len)
        *ret_len = req->body_len;
    return req->body ? req->body : "";
}

bool http_request_give_body_buffer(struct http_request *req, char *buf, size_t cap)
{
    if (req->body_started || req->body_len > 0 || cap <= req->body_cap || cap == 0)
        return false;
    free(req->body);
    req->body = buf;
    req->body_cap = cap;
    req->body[0] = '\0';
    return true;
}

int http_request_take_body(struct http_request *req, char **ret_body, size_t *ret_len)
{
    char *body = req->body;

    if (req->state != STATE_COMPLETE)
        return -EINVAL;
    if (!body) {
        body = malloc(1);
        if (!body)
            return -ENOMEM;
        body[0] = '\0';
    }
    *ret_body = body;
    *ret_len = req->body_len;
    req->body = NULL;
    req->body_len = 0;
    req->body_cap = 0;
    return 0;
}

bool http_request_expects_continue(const struct http_request *req)
{
    return req->headers_done && req->expect_continue && req->minor_version == 1 &&
           !req->body_started && req->state != STATE_COMPLETE && req->state != STATE_ERROR;
}

bool http_request_keep_alive(const struct http_request *req)
{
    if (!req->headers_done || req->state == STATE_ERROR || req->conn_close)
        return false;
    return req->minor_version == 1 || req->conn_keep_alive;
}

const char *http_request_header(const struct http_request *req, const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < req->field_count; i++)
        if (strcasecmp(req->head + req->fields[i].name_off, name) == 0)
            return req->head + req->fields[i].value_off;
    return NULL;
}

int http_request_error_status(int err)
{
    switch (err) {
    case -EPROTO:
        return 400;
    case -E2BIG:
        return 431;
    case -EMSGSIZE:
        return 413;
    case -ENOTSUP:
        return 501;
    case -EPROTONOSUPPORT:
        return 505;
    default:
        return 500;
    }
}

const char *http_request_error_reason(int err)
{
    switch (err) {
    case -EPROTO:
        return "Bad Request";
    case -E2BIG:
        return "Request Header Fields Too Large";
    case -EMSGSIZE:
        return "Content Too Large";
    case -ENOTSUP:
        return "Not Implemented";
    case -EPROTONOSUPPORT:
        return "HTTP Version Not Supported";
    default:
        return "Internal Server Error";
    }
}
