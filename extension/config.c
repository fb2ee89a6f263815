/*
 * config.c - see config.h.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "cost.h"
#include "ids.h"
#include "limits.h"

/* Telemetry API buffering bounds.  AWS pages disagree on the defaults, so we
 * always send all three explicitly within the ranges every page accepts
 * (reference section 2.3).  timeoutMs defaults to the minimum so records of
 * an invocation reach us before we decide to export it. */
#define BUFFER_ITEMS_MIN 1000
#define BUFFER_ITEMS_MAX 10000
#define BUFFER_ITEMS_DEFAULT 1000
#define BUFFER_BYTES_MIN 262144
#define BUFFER_BYTES_MAX 1048576
#define BUFFER_BYTES_DEFAULT 262144
#define BUFFER_TIMEOUT_MIN 25
#define BUFFER_TIMEOUT_MAX 30000
#define BUFFER_TIMEOUT_DEFAULT 25
/* Port 9001 is reserved for the Runtime API. */
#define RESERVED_PORT 9001
#define SHUTDOWN_WAIT_MAX_MS 2000

#define TIMEOUT_MARGIN_DEFAULT_MS 300
#define EXPORT_TIMEOUT_DEFAULT_MS 2000
#define EXPORT_QUEUE_DEFAULT_BYTES (8UL * 1024 * 1024)

config_sinks_fn config_sinks_parser;

static const char *const schema_versions[] = {"2025-01-29", "2022-12-13", "2022-07-01"};

void config_defaults(struct config *ret)
{
    memset(ret, 0, sizeof(*ret));
    ret->log_level = LOG_LEVEL_INFO;
    ret->disabled = false;
    ret->telemetry_types = TELEMETRY_TYPE_PLATFORM;
    snprintf(ret->schema_version, sizeof(ret->schema_version), "%s", schema_versions[0]);
    ret->buffer_max_items = BUFFER_ITEMS_DEFAULT;
    ret->buffer_max_bytes = BUFFER_BYTES_DEFAULT;
    ret->buffer_timeout_ms = BUFFER_TIMEOUT_DEFAULT;
    ret->listener_port = 0;
    ret->queue_max_bytes = QUEUE_DEFAULT_MAX_BYTES;
    ret->shutdown_telemetry_wait_ms = SHUTDOWN_DEFAULT_TELEMETRY_WAIT_MS;
    ret->timeout_margin_ms = TIMEOUT_MARGIN_DEFAULT_MS;
    ret->init_watch_ms = 20;
    ret->log_tail_lines = 0;
    ret->log_tail_max_bytes = 2048;
    ret->flush = CONFIG_FLUSH_AUTO;
    ret->eager_first_invocations = 3;
    ret->eager_idle_s = 60;
    snprintf(ret->exporters, sizeof(ret->exporters), "%s", "xray");
    snprintf(ret->otlp_endpoint, sizeof(ret->otlp_endpoint), "%s", "http://localhost:4318/v1/traces");
    ret->export_timeout_ms = EXPORT_TIMEOUT_DEFAULT_MS;
    ret->otlp_timeout_ms = EXPORT_TIMEOUT_DEFAULT_MS;
    ret->otlp_gzip = true;
    ret->export_queue_max_bytes = EXPORT_QUEUE_DEFAULT_BYTES;
    ret->price_gb_s_usd = -1;
    ret->price_request_usd = -1;
    ret->metrics = false;
    snprintf(ret->metrics_namespace, sizeof(ret->metrics_namespace), "%s", "LambdaTracer");
    ret->metrics_interval_s = 60;
}

int config_parse_u64(const char *text, uint64_t min, uint64_t max, uint64_t *ret_value)
{
    uint64_t value = 0;

    if (text == NULL || text[0] == '\0')
        return -EINVAL;
    for (const char *p = text; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        unsigned digit = (unsigned)(*p - '0');
        if (value > (UINT64_MAX - digit) / 10)
            return -ERANGE;
        value = value * 10 + digit;
    }
    if (value < min || value > max)
        return -ERANGE;
    *ret_value = value;
    return 0;
}

int config_choose_ca_file(const char *override, config_readable_fn readable, void *ctx, char *ret,
                          size_t ret_size)
{
    const char *const candidates[] = {override, CONFIG_CA_FILE_AMAZON_LINUX, CONFIG_CA_FILE_DEBIAN};

    if (ret_size > 0)
        ret[0] = '\0';
    for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++) {
        const char *path = candidates[i];
        if (path == NULL || path[0] == '\0' || strlen(path) >= ret_size || !readable(path, ctx))
            continue;
        memcpy(ret, path, strlen(path) + 1);
        return 0;
    }
    return -ENOENT;
}

int config_parse_bool(const char *text, bool *ret_value)
{
    static const char *const truthy[] = {"1", "true", "yes", "on"};
    static const char *const falsy[] = {"0", "false", "no", "off"};

    if (text == NULL)
        return -EINVAL;
    for (size_t i = 0; i < sizeof(truthy) / sizeof(truthy[0]); i++) {
        if (strcasecmp(text, truthy[i]) == 0) {
            *ret_value = true;
            return 0;
        }
        if (strcasecmp(text, falsy[i]) == 0) {
            *ret_value = false;
            return 0;
        }
    }
    return -EINVAL;
}

static int type_from_word(const char *word, size_t len, unsigned *ret_bit)
{
    static const struct {
        const char *name;
        unsigned bit;
    } types[] = {
        {"platform", TELEMETRY_TYPE_PLATFORM},
        {"function", TELEMETRY_TYPE_FUNCTION},
        {"extension", TELEMETRY_TYPE_EXTENSION},
    };

    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (strlen(types[i].name) == len && strncasecmp(word, types[i].name, len) == 0) {
            *ret_bit = types[i].bit;
            return 0;
        }
    }
    return -EINVAL;
}

int config_parse_types(const char *text, unsigned *ret_mask)
{
    unsigned mask = 0;
    const char *p = text;

    if (text == NULL || text[0] == '\0')
        return -EINVAL;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        const char *word = p;
        unsigned bit;

        while (len > 0 && word[0] == ' ') {
            word++;
            len--;
        }
        while (len > 0 && word[len - 1] == ' ')
            len--;
        if (len == 0 || type_from_word(word, len, &bit) < 0)
            return -EINVAL;
        mask |= bit;
        if (end == NULL)
            break;
        p = end + 1;
    }
    *ret_mask = mask;
    return 0;
}

/* Returns the variable's value, or NULL when unset or empty.  Over-long
 * values are treated as invalid by the callers through `too_long`. */
static const char *lookup(config_getenv_fn getenv_fn, void *ctx, const char *name, bool *too_long)
{
    const char *value = getenv_fn(name, ctx);

    *too_long = false;
    if (value == NULL || value[0] == '\0')
        return NULL;
    if (strnlen(value, CONFIG_MAX_VALUE_BYTES + 1) > CONFIG_MAX_VALUE_BYTES)
        *too_long = true;
    return value;
}

struct loader {
    config_getenv_fn getenv_fn;
    void *getenv_ctx;
    config_warn_fn warn;
    void *warn_ctx;
};

static void warn(const struct loader *l, const char *name, const char *problem, const char *fallback)
{
    if (l->warn != NULL)
        l->warn(name, problem, fallback, l->warn_ctx);
}

static void load_u32(const struct loader *l, const char *name, uint64_t min, uint64_t max,
                     uint32_t *value)
{
    bool too_long;
    const char *text = lookup(l->getenv_fn, l->getenv_ctx, name, &too_long);
    uint64_t parsed;
    char problem[96];
    char fallback[32];

    if (text == NULL)
        return;
    if (!too_long && config_parse_u64(text, min, max, &parsed) == 0) {
        *value = (uint32_t)parsed;
        return;
    }
    snprintf(problem, sizeof(problem), "not a whole number from %llu to %llu",
             (unsigned long long)min, (unsigned long long)max);
    snprintf(fallback, sizeof(fallback), "%u", (unsigned)*value);
    warn(l, name, problem, fallback);
}

/* A free-form string setting: printable ASCII only (it ends up in URLs and
 * header lines), and it must fit. */
static void load_string(const struct loader *l, const char *name, char *dst, size_t size,
                        bool (*valid)(const char *))
{
    bool too_long;
    const char *text = lookup(l->getenv_fn, l->getenv_ctx, name, &too_long);
    bool ok;

    if (text == NULL)
        return;
    ok = !too_long && strlen(text) < size;
    for (const char *p = text; ok && *p != '\0'; p++)
        ok = *p >= 0x20 && *p < 0x7f;
    if (ok && valid != NULL)
        ok = valid(text);
    if (!ok) {
        char fallback[96];
        snprintf(fallback, sizeof(fallback), "%s", dst[0] ? dst : "the default");
        warn(l, name, "not a valid value", fallback);
        return;
    }
    snprintf(dst, size, "%s", text);
}

static bool valid_url(const char *s)
{
    char url[CONFIG_MAX_VALUE_BYTES + 16];

    return config_check_url(s, CONFIG_URL_AS_IS, url, sizeof(url)) == 0;
}

static bool valid_sinks(const char *s)
{
    unsigned mask;
    return config_sinks_parser == NULL || config_sinks_parser(s, &mask) == 0;
}

static bool valid_type(const char *s)
{
    unsigned mask;
    return config_parse_types(s, &mask) == 0;
}

/* A likely meaning of a word that is not a name of the list, or NULL. */
static const char *list_suggestion(const char *word)
{
    static const char *const pairs[][2] = {
        {"otel", "otlp"},       {"opentelemetry", "otlp"}, {"otlphttp", "otlp"}, {"otlp-http", "otlp"},
        {"x-ray", "xray"},      {"aws", "xray"},           {"xray-daemon", "daemon"},
        {"udp", "daemon"},      {"console", "stdout"},     {"log", "stdout"},
        {"logs", "function"},   {"platforms", "platform"}, {"functions", "function"},
        {"extensions", "extension"},
    };

    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++)
        if (strcasecmp(word, pairs[i][0]) == 0)
            return pairs[i][1];
    return NULL;
}

/* A comma-separated list of names (LAMBDA_TRACER_EXPORTERS,
 * LAMBDA_TRACER_TELEMETRY_TYPES): the valid names are kept (in their
 * order, blanks around them dropped), each invalid one is warned about,
 * named (it is a name, not a secret: printable, cut to 24 bytes) with a
 * suggestion where one is likely.  With no valid name left dst keeps its
 * value.  Returns whether dst was written. */
static bool load_list(const struct loader *l, const char *name, char *dst, size_t size,
                      bool (*valid)(const char *), const char *what)
{
    bool too_long;
    const char *text = lookup(l->getenv_fn, l->getenv_ctx, name, &too_long);
    char kept[CONFIG_MAX_VALUE_BYTES + 1];
    size_t kept_len = 0;

    if (text == NULL)
        return false;
    if (too_long) {
        warn(l, name, "too long", dst);
        return false;
    }
    kept[0] = '\0';
    /* Pass 0 keeps the valid names, pass 1 warns about the others (naming
     * what is used instead). */
    for (int pass = 0; pass < 2; pass++) {
        for (const char *p = text;;) {
            const char *end = strchr(p, ',');
            size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
            char word[CONFIG_MAX_VALUE_BYTES + 1];
            bool printable = true, ok;

            while (len > 0 && (*p == ' ' || *p == '\t')) {
                p++;
                len--;
            }
            while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
                len--;
            memcpy(word, p, len);
            word[len] = '\0';
            for (size_t i = 0; i < len; i++)
                printable = printable && word[i] > 0x20 && word[i] < 0x7f;
            ok = len > 0 && printable && valid(word);
            if (pass == 0 && ok && kept_len + len + 2 <= size)
                kept_len += (size_t)snprintf(kept + kept_len, sizeof(kept) - kept_len, "%s%s",
                                             kept_len > 0 ? "," : "", word);
            if (pass == 1 && !ok) {
                char problem[192];
                const char *hint = printable ? list_suggestion(word) : NULL;
                if (len == 0)
                    snprintf(problem, sizeof(problem), "an empty name in a list of %s", what);
                else if (!printable)
                    snprintf(problem, sizeof(problem), "a name with a blank or control byte is not one of %s",
                             what);
                else
                    snprintf(problem, sizeof(problem), "'%.24s%s' is not one of %s%s%s%s", word,
                             len > 24 ? "..." : "", what, hint != NULL ? "; did you mean '" : "",
                             hint != NULL ? hint : "", hint != NULL ? "'?" : "");
                warn(l, name, problem, kept_len > 0 ? kept : dst);
            }
            if (end == NULL)
                break;
            p = end + 1;
        }
    }
    if (kept_len == 0)
        return false;
    snprintf(dst, size, "%s", kept);
    return true;
}

/* One name of LAMBDA_TRACER_EXPORTERS ("none" only stands alone). */
static bool valid_sink_name(const char *s)
{
    return strcasecmp(s, "none") != 0 && valid_sinks(s);
}

int config_parse_host_port(const char *text, char *host, size_t host_size, uint16_t *ret_port)
{
    const char *host_start = text, *host_end, *port;
    uint64_t value;
    size_t len;

    if (text == NULL || host_size == 0)
        return -EINVAL;
    if (text[0] == '[') {
        host_start = text + 1;
        host_end = strchr(host_start, ']');
        if (host_end == NULL || host_end[1] != ':')
            return -EINVAL;
        port = host_end + 2;
    } else {
        host_end = strrchr(text, ':');
        if (host_end == NULL)
            return -EINVAL;
        port = host_end + 1;
    }
    len = (size_t)(host_end - host_start);
    if (len == 0 || len >= host_size)
        return -EINVAL;
    for (const char *p = host_start; p < host_end; p++)
        if (*p <= ' ' || *p >= 0x7f || *p == '[' || *p == ']' || *p == '/')
            return -EINVAL;
    if (config_parse_u64(port, 1, 65535, &value) < 0)
        return -EINVAL;
    memcpy(host, host_start, len);
    host[len] = '\0';
    *ret_port = (uint16_t)value;
    return 0;
}

bool config_region_valid(const char *text)
{
    size_t len;

    if (text == NULL || text[0] < 'a' || text[0] > 'z')
        return false;
    len = strnlen(text, CONFIG_REGION_MAX);
    if (len >= CONFIG_REGION_MAX || text[len - 1] == '-')
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return false;
    }
    return true;
}

static bool is_alnum_ascii(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Whether (s, n) is a "host:port" config_parse_host_port takes. */
static bool valid_host_port_n(const char *s, size_t n)
{
    char copy[CONFIG_HOST_MAX + 8];
    char host[CONFIG_HOST_MAX];
    uint16_t port;

    if (n >= sizeof(copy))
        return false;
    memcpy(copy, s, n);
    copy[n] = '\0';
    return config_parse_host_port(copy, host, sizeof(host), &port) == 0;
}

bool config_runtime_api_valid(const char *text)
{
    char host[CONFIG_HOST_MAX];
    uint16_t port;
    const char *colon;
    size_t len;

    if (text == NULL)
        return false;
    len = strnlen(text, CONFIG_RUNTIME_API_MAX);
    if (len >= CONFIG_RUNTIME_API_MAX || config_parse_host_port(text, host, sizeof(host), &port) < 0)
        return false;
    colon = strrchr(text, ':');
    if (colon == NULL || strlen(colon + 1) > 5)
        return false;
    if (text[0] == '[') {
        for (const char *p = host; *p != '\0'; p++)
            if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F') ||
                  *p == ':' || *p == '.'))
                return false;
        return strchr(host, ':') != NULL;
    }
    if (!is_alnum_ascii(host[0]))
        return false;
    for (const char *p = host; *p != '\0'; p++)
        if (!is_alnum_ascii(*p) && *p != '.' && *p != '-')
            return false;
    return true;
}

/* Percent-decodes (src, n) into dst (dst_size bytes, NUL-terminated): "%XY"
 * with two hex digits is that byte, any other '%' is refused; '+' stays
 * '+' (the W3C Baggage format is not form encoding).  0 with *ret_len, or
 * -EINVAL (bad escape, or it does not fit with its terminator). */
static int percent_decode(const char *src, size_t n, char *dst, size_t dst_size, size_t *ret_len)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        char c = src[i];
        if (c == '%') {
            if (i + 2 >= n || ids_hex_value(src[i + 1]) < 0 || ids_hex_value(src[i + 2]) < 0)
                return -EINVAL;
            c = (char)(ids_hex_value(src[i + 1]) * 16 + ids_hex_value(src[i + 2]));
            i += 2;
        }
        if (o + 1 >= dst_size)
            return -EINVAL;
        dst[o++] = c;
    }
    if (dst_size == 0)
        return -EINVAL;
    dst[o] = '\0';
    *ret_len = o;
    return 0;
}

/* Whether (s, n) is valid UTF-8 (no overlong forms, surrogates or code
 * points past U+10FFFF) without C0 control bytes or DEL: text that may go
 * into a protobuf string, a JSON string and a log line. */
static bool text_ok(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, skip;

    while (i < n) {
        if (p[i] < 0x80) {
            if (p[i] < 0x20 || p[i] == 0x7f)
                return false;
            i++;
            continue;
        }
        size_t len = buf_utf8_sequence(p + i, n - i, &skip);
        if (len == 0)
            return false;
        i += len;
    }
    return true;
}

/* Drops blanks (space, tab) from both ends of (*s, *n). */
static void trim_ows(const char **s, size_t *n)
{
    while (*n > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
        (*n)--;
}

/* RFC 9110 tchar: what a header name may be made of. */
static bool is_tchar(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Writes why entry n (counted from 1) was refused into why (NULL: no
 * reason wanted).  name: the entry's name, shown only when it is a valid
 * header name (an invalid one may be a value typed in its place). */
__attribute__((format(printf, 5, 6))) static int headers_refused(char *why, size_t why_size, size_t n,
                                                                 const char *name, const char *fmt, ...)
{
    va_list ap;
    int used;

    if (why == NULL || why_size == 0)
        return -EINVAL;
    used = name != NULL ? snprintf(why, why_size, "entry %zu (%s): ", n, name)
                        : snprintf(why, why_size, "entry %zu: ", n);
    if (used < 0 || (size_t)used >= why_size)
        return -EINVAL;
    va_start(ap, fmt);
    /* va_start is above; the analyzer misreads it (as in log.c). */
    vsnprintf(why + used, why_size - (size_t)used, fmt, ap); /* NOLINT(clang-analyzer-valist.Uninitialized) */
    va_end(ap);
    return -EINVAL;
}

static int parse_otlp_headers(const char *text, char (*lines)[CONFIG_OTLP_HEADER_LINE_BYTES], size_t max_lines,
                              size_t *ret_count, char *why, size_t why_size)
{
    const char *p = text;
    size_t n = 0;

    while (*p != '\0') {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        const char *name = p, *value;
        size_t name_len, value_len;
        char shown[CONFIG_OTLP_HEADER_LINE_BYTES];

        if (n >= max_lines)
            return headers_refused(why, why_size, n + 1, NULL, "more than %zu headers", max_lines);
        if (len == 0)
            return headers_refused(why, why_size, n + 1, NULL, "empty (two commas in a row, or a leading comma)");
        if (eq == NULL)
            return headers_refused(why, why_size, n + 1, NULL, "no '=' (not name=value)");
        /* Blanks around names and values are dropped (as OTEL_EXPORTER_OTLP_HEADERS
         * does): a leading blank would make the line a folded continuation. */
        name_len = (size_t)(eq - p);
        value = eq + 1;
        value_len = len - name_len - 1;
        while (name_len > 0 && (*name == ' ' || *name == '\t')) {
            name++;
            name_len--;
        }
        while (name_len > 0 && (name[name_len - 1] == ' ' || name[name_len - 1] == '\t'))
            name_len--;
        while (value_len > 0 && (*value == ' ' || *value == '\t')) {
            value++;
            value_len--;
        }
        while (value_len > 0 && (value[value_len - 1] == ' ' || value[value_len - 1] == '\t'))
            value_len--;
        if (name_len == 0)
            return headers_refused(why, why_size, n + 1, NULL, "an empty name");
        for (size_t i = 0; i < name_len; i++)
            if (!is_tchar(name[i]))
                return headers_refused(why, why_size, n + 1, NULL,
                                       "its name holds a byte a header name cannot (a blank, ':', '\"', a "
                                       "control byte...) at byte %zu",
                                       i + 1);
        if (name_len + 2 >= CONFIG_OTLP_HEADER_LINE_BYTES)
            return headers_refused(why, why_size, n + 1, NULL, "a name of %zu bytes, over %d", name_len,
                                   CONFIG_OTLP_HEADER_LINE_BYTES - 3);
        snprintf(shown, sizeof(shown), "%.*s", (int)name_len, name);
        memcpy(lines[n], name, name_len);
        memcpy(lines[n] + name_len, ": ", 2);
        size_t decoded;
        if (percent_decode(value, value_len, lines[n] + name_len + 2,
                           CONFIG_OTLP_HEADER_LINE_BYTES - name_len - 2, &decoded) < 0)
            return headers_refused(why, why_size, n + 1, shown,
                                   "its value has a '%%' not followed by two hex digits, or is over %d bytes "
                                   "with its name",
                                   CONFIG_OTLP_HEADER_LINE_BYTES - 1);
        for (size_t i = 0; i < decoded; i++) {
            unsigned char c = (unsigned char)lines[n][name_len + 2 + i];
            if (c < 0x20 || c == 0x7f) /* no CR, LF or other control byte may reach a header */
                return headers_refused(why, why_size, n + 1, shown, "its value holds a control byte");
        }
        n++;
        if (end == NULL)
            break;
        p = end + 1;
    }
    *ret_count = n;
    return 0;
}

int config_parse_otlp_headers(const char *text, char (*lines)[CONFIG_OTLP_HEADER_LINE_BYTES],
                              size_t max_lines, size_t *ret_count)
{
    return parse_otlp_headers(text, lines, max_lines, ret_count, NULL, 0);
}

int config_otlp_headers_problem(const char *text, char *why, size_t why_size)
{
    char lines[CONFIG_OTLP_MAX_HEADERS][CONFIG_OTLP_HEADER_LINE_BYTES];
    size_t count;
    int r;

    if (why_size > 0)
        why[0] = '\0';
    r = parse_otlp_headers(text, lines, CONFIG_OTLP_MAX_HEADERS, &count, why, why_size);
    explicit_bzero(lines, sizeof(lines)); /* the values are secrets */
    return r;
}

int config_parse_resource_attributes(const char *text, char *ret, size_t ret_size, size_t *ret_len)
{
    const char *p = text;
    size_t used = 0, count = 0;

    if (text == NULL || ret == NULL || ret_size == 0)
        return -EINVAL;
    while (*p != '\0') {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        const char *key = p, *value;
        size_t key_len, value_len, k_dec, v_dec;
        char *k_out, *v_out;

        if (eq == NULL || count >= RESOURCE_ATTRS_MAX)
            return -EINVAL;
        key_len = (size_t)(eq - p);
        value = eq + 1;
        value_len = len - key_len - 1;
        trim_ows(&key, &key_len);
        trim_ows(&value, &value_len);
        k_out = ret + used;
        if (key_len == 0 || percent_decode(key, key_len, k_out, ret_size - used, &k_dec) < 0 ||
            k_dec == 0 || !text_ok(k_out, k_dec) || memchr(k_out, ' ', k_dec) != NULL)
            return -EINVAL; /* a key is a name: "%20" makes it no more one */
        v_out = k_out + k_dec + 1;
        if (percent_decode(value, value_len, v_out, ret_size - used - k_dec - 1, &v_dec) < 0 ||
            !text_ok(v_out, v_dec))
            return -EINVAL;
        /* A key given again replaces the earlier pair: move the pairs after
         * it down, this new one included. */
        for (size_t off = 0; off < used;) {
            size_t klen = strlen(ret + off);
            size_t pair = klen + 1 + strlen(ret + off + klen + 1) + 1;
            if (klen == k_dec && memcmp(ret + off, k_out, k_dec) == 0) {
                memmove(ret + off, ret + off + pair, (used + k_dec + v_dec + 2) - (off + pair));
                used -= pair;
                count--;
                break;
            }
            off += pair;
        }
        used += k_dec + v_dec + 2;
        count++;
        if (end == NULL)
            break;
        p = end + 1;
    }
    *ret_len = used;
    return 0;
}

int config_check_url(const char *text, enum config_url_kind kind, char *ret, size_t ret_size)
{
    static const char suffix[] = "/v1/traces";
    const size_t suffix_len = sizeof(suffix) - 1;
    size_t scheme_len, len, host_end, path_len;
    const char *auth, *path;

    if (text == NULL || ret == NULL || ret_size == 0)
        return -EINVAL;
    if (strncasecmp(text, "http://", 7) == 0)
        scheme_len = 7;
    else if (strncasecmp(text, "https://", 8) == 0)
        scheme_len = 8;
    else
        return -EINVAL;
    len = strnlen(text, CONFIG_MAX_VALUE_BYTES + 1);
    if (len > CONFIG_MAX_VALUE_BYTES)
        return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (c <= ' ' || c >= 0x7f || c == '\\' || c == '#')
            return -EINVAL; /* blanks, control bytes, non-ASCII, fragments */
        if (c == '?' && kind != CONFIG_URL_AS_IS)
            return -EINVAL; /* a query cannot be followed by /v1/traces */
    }
    auth = text + scheme_len;
    host_end = strcspn(auth, "/?");
    path = auth + host_end;
    if (host_end == 0 || memchr(auth, '@', host_end) != NULL)
        return -EINVAL;
    {
        /* host [":" port], the host a name, an IPv4 address or "[IPv6]" */
        const char *h = auth, *port = NULL, *stop = auth + host_end;
        if (*h == '[') {
            const char *close = memchr(h, ']', host_end);
            if (close == NULL || close == h + 1)
                return -EINVAL;
            for (const char *q = h + 1; q < close; q++)
                if (ids_hex_value(*q) < 0 && *q != ':' && *q != '.')
                    return -EINVAL;
            if (close + 1 < stop) {
                if (close[1] != ':')
                    return -EINVAL;
                port = close + 2;
            }
        } else {
            const char *colon = memchr(h, ':', host_end);
            const char *name_end = colon != NULL ? colon : stop;
            if (name_end == h)
                return -EINVAL;
            for (const char *q = h; q < name_end; q++)
                if (!is_alnum_ascii(*q) && *q != '.' && *q != '-' && *q != '_')
                    return -EINVAL;
            if (colon != NULL)
                port = colon + 1;
        }
        if (port != NULL) {
            uint64_t value = 0;
            if (port == stop || stop - port > 5)
                return -EINVAL;
            for (const char *q = port; q < stop; q++) {
                if (*q < '0' || *q > '9')
                    return -EINVAL;
                value = value * 10 + (uint64_t)(*q - '0');
            }
            if (value < 1 || value > 65535)
                return -EINVAL;
        }
    }
    path_len = strlen(path);
    {
        bool append = kind == CONFIG_URL_BASE ||
                      (kind == CONFIG_URL_BASE_OR_FULL &&
                       !(path_len >= suffix_len && memcmp(path + path_len - suffix_len, suffix, suffix_len) == 0));
        size_t keep = len;
        int w;

        if (append && path_len > 0 && path[path_len - 1] == '/')
            keep--; /* "http://host:4318/" is the base "http://host:4318" */
        if (keep + (append ? suffix_len : 0) >= ret_size)
            return -ENAMETOOLONG;
        w = snprintf(ret, ret_size, "%.*s%.*s%s", (int)scheme_len - 3, scheme_len == 7 ? "http" : "https",
                     (int)(keep - scheme_len + 3), text + scheme_len - 3, append ? suffix : "");
        if (w < 0 || (size_t)w >= ret_size)
            return -ENAMETOOLONG;
    }
    return 0;
}

int config_parse_daemon_env(const char *text, char *ret, size_t ret_size)
{
    char host[CONFIG_HOST_MAX];
    const char *udp = NULL, *blank;
    size_t udp_len;
    uint16_t port;
    char one[CONFIG_HOST_MAX + 8];

    if (text == NULL || ret == NULL)
        return -EINVAL;
    blank = strchr(text, ' ');
    if (blank == NULL) {
        if (strncmp(text, "udp:", 4) == 0 || strncmp(text, "tcp:", 4) == 0)
            return -EINVAL; /* one protocol named: the SDKs want both */
        udp = text;
        udp_len = strlen(text);
    } else {
        const char *second = blank + 1;
        bool first_udp = strncmp(text, "udp:", 4) == 0, second_udp = strncmp(second, "udp:", 4) == 0;
        bool first_tcp = strncmp(text, "tcp:", 4) == 0, second_tcp = strncmp(second, "tcp:", 4) == 0;
        if (!((first_udp && second_tcp) || (first_tcp && second_udp)) || strchr(second, ' ') != NULL)
            return -EINVAL;
        if (!valid_host_port_n(first_udp ? second + 4 : text + 4,
                               first_udp ? strlen(second) - 4 : (size_t)(blank - text) - 4))
            return -EINVAL; /* the TCP address must be well-formed too */
        udp = first_udp ? text + 4 : second + 4;
        udp_len = first_udp ? (size_t)(blank - text) - 4 : strlen(second) - 4;
    }
    if (udp_len >= sizeof(one))
        return -EINVAL;
    memcpy(one, udp, udp_len);
    one[udp_len] = '\0';
    if (config_parse_host_port(one, host, sizeof(host), &port) < 0 || udp_len >= ret_size)
        return -EINVAL;
    memcpy(ret, one, udp_len + 1);
    return 0;
}

/* CloudWatch: 1-255 of [A-Za-z0-9.-_/#: ], not starting with "AWS/". */
static bool valid_namespace(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 255 || strncmp(s, "AWS/", 4) == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr(".-_/#: ", c) != NULL))
            return false;
    }
    return true;
}

static void load_price(const struct loader *l, const char *name, double *ret)
{
    bool too_long;
    const char *text = lookup(l->getenv_fn, l->getenv_ctx, name, &too_long);

    if (text != NULL && (too_long || cost_parse_price(text, ret) < 0))
        warn(l, name, "not a price in USD (a decimal number, 0 or more and below 1)",
             "the built-in us-east-1 price");
}

static bool valid_host_port(const char *s)
{
    char host[CONFIG_HOST_MAX];
    uint16_t port;

    return config_parse_host_port(s, host, sizeof(host), &port) == 0;
}

/* The first of names[] that is set (non-empty), or NULL; *ret_name is
 * its name. */
static const char *first_set(const struct loader *l, const char *const *names, size_t n,
                             const char **ret_name, bool *too_long)
{
    for (size_t i = 0; i < n; i++) {
        const char *text = lookup(l->getenv_fn, l->getenv_ctx, names[i], too_long);
        if (text != NULL) {
            *ret_name = names[i];
            return text;
        }
    }
    *too_long = false;
    return NULL;
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* The OTLP exporter and resource settings: LAMBDA_TRACER_* first where one
 * exists, then OTEL_EXPORTER_OTLP_TRACES_*, then OTEL_EXPORTER_OTLP_*.
 * Only the variable that wins is read; when it is malformed it is refused
 * with one warning and its lower-precedence alternatives are not used
 * either (a refused endpoint leaves the OTLP sink without one: no request
 * goes to a URL that was not meant). */
static void load_otel(const struct loader *l, struct config *ret)
{
    static const char *const endpoints[] = {"LAMBDA_TRACER_OTLP_ENDPOINT",
                                            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                                            "OTEL_EXPORTER_OTLP_ENDPOINT"};
    static const enum config_url_kind kinds[] = {CONFIG_URL_BASE_OR_FULL, CONFIG_URL_AS_IS, CONFIG_URL_BASE};
    static const char *const headers[] = {"LAMBDA_TRACER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                                          "OTEL_EXPORTER_OTLP_HEADERS"};
    static const char *const protocols[] = {"LAMBDA_TRACER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                                            "OTEL_EXPORTER_OTLP_PROTOCOL"};
    static const char *const compressions[] = {"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
                                               "OTEL_EXPORTER_OTLP_COMPRESSION"};
    const char *name, *text;
    bool too_long, otel_endpoint = false;

    text = lookup(l->getenv_fn, l->getenv_ctx, "OTEL_SDK_DISABLED", &too_long);
    if (text != NULL) {
        /* The specification: only "true" (any case) is true; anything but
         * "false" is also worth a warning. */
        if (!too_long && strcasecmp(text, "true") == 0)
            ret->otel_sdk_disabled = true;
        else if (too_long || strcasecmp(text, "false") != 0)
            warn(l, "OTEL_SDK_DISABLED", "not true or false", "false");
    }

    otel_endpoint = lookup(l->getenv_fn, l->getenv_ctx, endpoints[1], &too_long) != NULL ||
                    lookup(l->getenv_fn, l->getenv_ctx, endpoints[2], &too_long) != NULL;
    for (size_t i = 0; i < COUNT(endpoints); i++) {
        int r;

        text = lookup(l->getenv_fn, l->getenv_ctx, endpoints[i], &too_long);
        if (text == NULL)
            continue;
        r = too_long ? -EINVAL
                     : config_check_url(text, kinds[i], ret->otlp_endpoint, sizeof(ret->otlp_endpoint));
        if (r < 0) {
            ret->otlp_endpoint[0] = '\0';
            warn(l, endpoints[i],
                 r == -ENAMETOOLONG ? "too long"
                                    : "not an http:// or https:// URL with a host (no userinfo, blanks, "
                                      "control bytes, '\\', '#', or '?' in a base URL)",
                 "none: the OTLP exporter sends nothing");
        }
        break;
    }
    /* An OTEL_* endpoint turns the OTLP sink on, in place of the default
     * sinks (an explicit LAMBDA_TRACER_EXPORTERS wins), unless
     * OTEL_SDK_DISABLED=true. */
    if (otel_endpoint && !ret->otel_sdk_disabled &&
        lookup(l->getenv_fn, l->getenv_ctx, "LAMBDA_TRACER_EXPORTERS", &too_long) == NULL)
        snprintf(ret->exporters, sizeof(ret->exporters), "%s", "otlp");

    text = first_set(l, headers, COUNT(headers), &name, &too_long);
    if (text != NULL) {
        char why[200];
        if (too_long || strlen(text) >= sizeof(ret->otlp_headers)) {
            snprintf(why, sizeof(why), "over %zu bytes", sizeof(ret->otlp_headers) - 1);
            warn(l, name, why, "no headers");
        } else if (config_otlp_headers_problem(text, why, sizeof(why)) < 0) {
            warn(l, name, why, "no headers");
        }
        else
            snprintf(ret->otlp_headers, sizeof(ret->otlp_headers), "%s", text);
    }

    text = first_set(l, protocols, COUNT(protocols), &name, &too_long);
    if (text != NULL) {
        if (!too_long && strcmp(text, "http/json") == 0)
            ret->otlp_json = true;
        else if (!too_long && strcmp(text, "grpc") == 0)
            warn(l, name, "grpc is not supported (OTLP over HTTP only)", "http/protobuf");
        else if (too_long || strcmp(text, "http/protobuf") != 0)
            warn(l, name, "not http/protobuf or http/json", "http/protobuf");
    }

    text = first_set(l, compressions, COUNT(compressions), &name, &too_long);
    if (text != NULL) {
        if (!too_long && strcasecmp(text, "none") == 0)
            ret->otlp_gzip = false;
        else if (too_long || strcasecmp(text, "gzip") != 0)
            warn(l, name, "not gzip or none", "gzip");
    }

    text = lookup(l->getenv_fn, l->getenv_ctx, "LAMBDA_TRACER_OTLP_INVOCATION_SPAN", &too_long);
    if (text != NULL) {
        if (!too_long && strcasecmp(text, "new") == 0)
            ret->otlp_span_new = true;
        else if (too_long || strcasecmp(text, "parent") != 0)
            warn(l, "LAMBDA_TRACER_OTLP_INVOCATION_SPAN", "not parent or new", "parent");
    }

    text = lookup(l->getenv_fn, l->getenv_ctx, "OTEL_SERVICE_NAME", &too_long);
    if (text != NULL) {
        size_t n = strlen(text);
        if (too_long || n >= sizeof(ret->service_name) || !text_ok(text, n))
            warn(l, "OTEL_SERVICE_NAME", "not UTF-8 text of at most 255 bytes", "the function name");
        else
            memcpy(ret->service_name, text, n + 1);
    }
    text = lookup(l->getenv_fn, l->getenv_ctx, "OTEL_RESOURCE_ATTRIBUTES", &too_long);
    if (text != NULL && (too_long || config_parse_resource_attributes(text, ret->resource_attrs,
                                                                      sizeof(ret->resource_attrs),
                                                                      &ret->resource_attrs_len) < 0)) {
        ret->resource_attrs_len = 0;
        warn(l, "OTEL_RESOURCE_ATTRIBUTES",
             "not key=value pairs (percent-encoded, UTF-8, at most 32)", "none");
    }
}

/* OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT (milliseconds) for the OTLP sink,
 * unless LAMBDA_TRACER_EXPORT_TIMEOUT_MS is set (it wins). */
static void load_otel_timeout(const struct loader *l, struct config *ret)
{
    static const char *const timeouts[] = {"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"};
    const char *name;
    bool too_long;

    ret->otlp_timeout_ms = ret->export_timeout_ms;
    if (lookup(l->getenv_fn, l->getenv_ctx, "LAMBDA_TRACER_EXPORT_TIMEOUT_MS", &too_long) != NULL)
        return;
    if (first_set(l, timeouts, COUNT(timeouts), &name, &too_long) != NULL)
        load_u32(l, name, 50, 30000, &ret->otlp_timeout_ms);
}

void config_load(struct config *ret, config_getenv_fn getenv_fn, void *getenv_ctx,
                 config_warn_fn warn_fn, void *warn_ctx)
{
    const struct loader l = {getenv_fn, getenv_ctx, warn_fn, warn_ctx};
    const char *text;
    bool too_long;
    uint32_t u32;

    config_defaults(ret);

    text = lookup(getenv_fn, getenv_ctx, "LAMBDA_TRACER_LOG_LEVEL", &too_long);
    if (text != NULL && (too_long || log_level_parse(text, &ret->log_level) < 0))
        warn(&l, "LAMBDA_TRACER_LOG_LEVEL", "not one of error, warn, info, debug", "info");

    text = lookup(getenv_fn, getenv_ctx, "LAMBDA_TRACER_DISABLE", &too_long);
    if (text != NULL && (too_long || config_parse_bool(text, &ret->disabled) < 0))
        warn(&l, "LAMBDA_TRACER_DISABLE", "not true or false", "false");

    {
        char types[CONFIG_MAX_VALUE_BYTES + 1] = "platform";
        unsigned mask;
        if (load_list(&l, "LAMBDA_TRACER_TELEMETRY_TYPES", types, sizeof(types), valid_type,
                      "platform, function, extension") &&
            config_parse_types(types, &mask) == 0)
            ret->telemetry_types = mask | TELEMETRY_TYPE_PLATFORM; /* traces need platform */
    }

    text = lookup(getenv_fn, getenv_ctx, "LAMBDA_TRACER_SCHEMA_VERSION", &too_long);
    if (text != NULL) {
        bool known = false;
        for (size_t i = 0; !too_long && i < sizeof(schema_versions) / sizeof(schema_versions[0]); i++) {
            if (strcmp(text, schema_versions[i]) == 0) {
                snprintf(ret->schema_version, sizeof(ret->schema_version), "%s", schema_versions[i]);
                known = true;
            }
        }
        if (!known)
            warn(&l, "LAMBDA_TRACER_SCHEMA_VERSION", "not 2025-01-29, 2022-12-13 or 2022-07-01",
                 schema_versions[0]);
    }

    load_u32(&l, "LAMBDA_TRACER_BUFFER_MAX_ITEMS", BUFFER_ITEMS_MIN, BUFFER_ITEMS_MAX,
             &ret->buffer_max_items);
    load_u32(&l, "LAMBDA_TRACER_BUFFER_MAX_BYTES", BUFFER_BYTES_MIN, BUFFER_BYTES_MAX,
             &ret->buffer_max_bytes);
    load_u32(&l, "LAMBDA_TRACER_BUFFER_TIMEOUT_MS", BUFFER_TIMEOUT_MIN, BUFFER_TIMEOUT_MAX,
             &ret->buffer_timeout_ms);

    u32 = ret->listener_port;
    load_u32(&l, "LAMBDA_TRACER_LISTENER_PORT", 0, 65535, &u32);
    if (u32 == RESERVED_PORT)
        warn(&l, "LAMBDA_TRACER_LISTENER_PORT", "9001 is reserved for the Runtime API",
             "0 (any free port)");
    else
        ret->listener_port = (uint16_t)u32;

    u32 = (uint32_t)ret->queue_max_bytes;
    load_u32(&l, "LAMBDA_TRACER_QUEUE_MAX_BYTES", QUEUE_MIN_MAX_BYTES, QUEUE_MAX_MAX_BYTES, &u32);
    ret->queue_max_bytes = u32;

    load_u32(&l, "LAMBDA_TRACER_SHUTDOWN_TELEMETRY_WAIT_MS", 0, SHUTDOWN_WAIT_MAX_MS,
             &ret->shutdown_telemetry_wait_ms);

    text = lookup(getenv_fn, getenv_ctx, "LAMBDA_TRACER_FLUSH", &too_long);
    if (text != NULL) {
        if (!too_long && strcasecmp(text, "auto") == 0)
            ret->flush = CONFIG_FLUSH_AUTO;
        else if (!too_long && strcasecmp(text, "background") == 0)
            ret->flush = CONFIG_FLUSH_BACKGROUND;
        else if (!too_long && strcasecmp(text, "eager") == 0)
            ret->flush = CONFIG_FLUSH_EAGER;
        else
            warn(&l, "LAMBDA_TRACER_FLUSH", "not auto, background or eager", "auto");
    }
    load_u32(&l, "LAMBDA_TRACER_EAGER_FIRST_INVOCATIONS", 0, 1000000, &ret->eager_first_invocations);
    load_u32(&l, "LAMBDA_TRACER_EAGER_IDLE_S", 1, 86400, &ret->eager_idle_s);
    load_string(&l, "LAMBDA_TRACER_SEGMENT_NAME", ret->segment_name, sizeof(ret->segment_name), NULL);
    text = lookup(getenv_fn, getenv_ctx, "LAMBDA_TRACER_SAMPLING", &too_long);
    if (text != NULL) {
        if (!too_long && strcasecmp(text, "smart") == 0)
            ret->sampling = SAMPLING_POLICY_SMART;
        else if (!too_long && strcasecmp(text, "header") == 0)
            ret->sampling = SAMPLING_POLICY_HEADER;
        else if (!too_long && strcasecmp(text, "all") == 0)
            ret->sampling = SAMPLING_POLICY_ALL;
        else
            warn(&l, "LAMBDA_TRACER_SAMPLING", "not smart, header or all", "smart");
    }
    /* Deprecated alias: true meant "Sampled=0 too", i.e. everything.  An
     * explicit LAMBDA_TRACER_SAMPLING wins; false is the old default,
     * which the new default supersedes. */
    text = lookup(getenv_fn, getenv_ctx, "LAMBDA_TRACER_TRACE_UNSAMPLED", &too_long);
    if (text != NULL) {
        bool all = false;
        if (too_long || config_parse_bool(text, &all) < 0)
            warn(&l, "LAMBDA_TRACER_TRACE_UNSAMPLED", "not true or false (deprecated)", "false");
        else
            ret->trace_unsampled_deprecated = true;
        if (all && lookup(getenv_fn, getenv_ctx, "LAMBDA_TRACER_SAMPLING", &too_long) == NULL)
            ret->sampling = SAMPLING_POLICY_ALL;
    }
    load_u32(&l, "LAMBDA_TRACER_SLOW_MS", 0, 900000, &ret->slow_ms);
    load_u32(&l, "LAMBDA_TRACER_TIMEOUT_MARGIN_MS", 0, 10000, &ret->timeout_margin_ms);
    load_u32(&l, "LAMBDA_TRACER_INIT_WATCH_MS", 0, 1000, &ret->init_watch_ms);
    load_u32(&l, "LAMBDA_TRACER_LOG_TAIL_LINES", 0, LOG_TAIL_MAX_LINES, &ret->log_tail_lines);
    load_u32(&l, "LAMBDA_TRACER_LOG_TAIL_MAX_BYTES", LOG_TAIL_MIN_BYTES, LOG_TAIL_MAX_BYTES,
             &ret->log_tail_max_bytes);
    if (ret->log_tail_lines > 0)
        ret->telemetry_types |= TELEMETRY_TYPE_FUNCTION; /* the tail needs the function's logs */
    load_price(&l, "LAMBDA_TRACER_PRICE_GB_S", &ret->price_gb_s_usd);
    load_price(&l, "LAMBDA_TRACER_PRICE_REQUEST", &ret->price_request_usd);
    text = lookup(getenv_fn, getenv_ctx, "LAMBDA_TRACER_METRICS", &too_long);
    if (text != NULL && (too_long || config_parse_bool(text, &ret->metrics) < 0))
        warn(&l, "LAMBDA_TRACER_METRICS", "not true or false", "false");
    load_string(&l, "LAMBDA_TRACER_METRICS_NAMESPACE", ret->metrics_namespace,
                sizeof(ret->metrics_namespace), valid_namespace);
    load_u32(&l, "LAMBDA_TRACER_METRICS_INTERVAL_S", 1, 3600, &ret->metrics_interval_s);
    text = lookup(getenv_fn, getenv_ctx, "LAMBDA_TRACER_EXPORTERS", &too_long);
    if (text != NULL && strcasecmp(text, "none") == 0)
        snprintf(ret->exporters, sizeof(ret->exporters), "%s", "none");
    else
        load_list(&l, "LAMBDA_TRACER_EXPORTERS", ret->exporters, sizeof(ret->exporters), valid_sink_name,
                  "xray, xray-otlp, daemon, otlp, stdout (or none alone)");
    load_string(&l, "LAMBDA_TRACER_XRAY_ENDPOINT", ret->xray_endpoint, sizeof(ret->xray_endpoint),
                valid_url);
    load_string(&l, "LAMBDA_TRACER_DAEMON_ADDRESS", ret->daemon_address, sizeof(ret->daemon_address),
                valid_host_port);
    if (ret->daemon_address[0] == '\0') {
        text = lookup(getenv_fn, getenv_ctx, "AWS_XRAY_DAEMON_ADDRESS", &too_long);
        if (text != NULL &&
            (too_long || config_parse_daemon_env(text, ret->daemon_address, sizeof(ret->daemon_address)) < 0))
            warn(&l, "AWS_XRAY_DAEMON_ADDRESS", "not host:port or \"tcp:host:port udp:host:port\"",
                 "none");
    }
    load_otel(&l, ret);
    load_string(&l, "LAMBDA_TRACER_CA_FILE", ret->ca_file, sizeof(ret->ca_file), NULL);
    load_u32(&l, "LAMBDA_TRACER_EXPORT_TIMEOUT_MS", 50, 30000, &ret->export_timeout_ms);
    load_otel_timeout(&l, ret);
    u32 = (uint32_t)ret->export_queue_max_bytes;
    load_u32(&l, "LAMBDA_TRACER_EXPORT_QUEUE_MAX_BYTES", QUEUE_MIN_MAX_BYTES, QUEUE_MAX_MAX_BYTES, &u32);
    ret->export_queue_max_bytes = u32;
}

void config_describe(const struct config *cfg, const char *exporters, const char *xray_endpoint, bool daemon,
                     bool otlp, char *ret, size_t ret_size)
{
    static const char *const samplings[] = {[SAMPLING_POLICY_SMART] = "smart", [SAMPLING_POLICY_HEADER] = "header",
                                            [SAMPLING_POLICY_ALL] = "all"};
    char slow[24], flush[96], types[40];
    size_t used = 0;
    int n;

    if (ret_size == 0)
        return;
    if (cfg->slow_ms > 0)
        snprintf(slow, sizeof(slow), "%u", (unsigned)cfg->slow_ms);
    else
        snprintf(slow, sizeof(slow), "%s", "auto");
    if (cfg->flush == CONFIG_FLUSH_BACKGROUND)
        snprintf(flush, sizeof(flush), "%s", "background");
    else if (cfg->flush == CONFIG_FLUSH_EAGER)
        snprintf(flush, sizeof(flush), "%s", "eager");
    else
        snprintf(flush, sizeof(flush), "auto(eager for the first %u invocations and after %u s idle)",
                 (unsigned)cfg->eager_first_invocations, (unsigned)cfg->eager_idle_s);
    snprintf(types, sizeof(types), "platform%s%s",
             (cfg->telemetry_types & TELEMETRY_TYPE_FUNCTION) ? ",function" : "",
             (cfg->telemetry_types & TELEMETRY_TYPE_EXTENSION) ? ",extension" : "");
    n = snprintf(ret, ret_size, "exporters=%s sampling=%s slow_ms=%s flush=%s telemetry=%s metrics=%s",
                 exporters != NULL && exporters[0] != '\0' ? exporters : "none",
                 (unsigned)cfg->sampling < sizeof(samplings) / sizeof(samplings[0]) ? samplings[cfg->sampling]
                                                                                    : "?",
                 slow, flush, types, cfg->metrics ? "on" : "off");
    if (n < 0 || (size_t)n >= ret_size)
        return;
    used = (size_t)n;
    if (xray_endpoint != NULL) {
        n = snprintf(ret + used, ret_size - used, " xray_endpoint=%s", xray_endpoint);
        if (n < 0 || (size_t)n >= ret_size - used)
            return;
        used += (size_t)n;
    }
    if (daemon) {
        n = snprintf(ret + used, ret_size - used, " daemon_address=%s", cfg->daemon_address);
        if (n < 0 || (size_t)n >= ret_size - used)
            return;
        used += (size_t)n;
    }
    if (otlp) {
        char lines[CONFIG_OTLP_MAX_HEADERS][CONFIG_OTLP_HEADER_LINE_BYTES];
        char headers[CONFIG_OTLP_MAX_HEADERS * 64] = "";
        size_t count = 0, hlen = 0;
        size_t url_len = strcspn(cfg->otlp_endpoint, "?");
        if (cfg->otlp_headers[0] != '\0' &&
            config_parse_otlp_headers(cfg->otlp_headers, lines, CONFIG_OTLP_MAX_HEADERS, &count) < 0)
            count = 0;
        for (size_t i = 0; i < count && hlen + 2 < sizeof(headers); i++) {
            size_t name_len = strcspn(lines[i], ":");
            int w = snprintf(headers + hlen, sizeof(headers) - hlen, "%s%.*s", i > 0 ? "," : "", (int)name_len,
                             lines[i]);
            if (w < 0 || (size_t)w >= sizeof(headers) - hlen)
                break;
            hlen += (size_t)w;
        }
        n = snprintf(ret + used, ret_size - used, " otlp_url=%.*s%s otlp_protocol=%s otlp_gzip=%s%s%s%s",
                     (int)url_len, cfg->otlp_endpoint, cfg->otlp_endpoint[url_len] != '\0' ? "?(query not shown)" : "",
                     cfg->otlp_json ? "http/json" : "http/protobuf", cfg->otlp_gzip ? "on" : "off",
                     count > 0 ? " otlp_headers=" : "", headers, count > 0 ? "(values not shown)" : "");
        if (n < 0 || (size_t)n >= ret_size - used)
            return;
    }
}
