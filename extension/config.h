/*
 * config.h - the extension's settings, read from LAMBDA_TRACER_* variables
 * and the standard OpenTelemetry ones (OTEL_*; a LAMBDA_TRACER_* setting,
 * where one exists, wins; a TRACES_ variable wins over its generic one).
 *
 * Loading never fails: a missing value takes its default, an invalid one is
 * reported through the warn callback (one call per bad setting, naming the
 * setting and the fallback, never echoing the value, which may be a secret)
 * and also takes its default.  A bad setting must degrade the extension,
 * never stop the function.
 */
#ifndef LAMBDA_TRACER_CONFIG_H
#define LAMBDA_TRACER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "limits.h"
#include "log.h"
#include "sampling.h"

/* OTEL_SERVICE_NAME, NUL included. */
#define CONFIG_SERVICE_NAME_BYTES 256

/* Telemetry API event types (bit mask). */
enum {
    TELEMETRY_TYPE_PLATFORM = 1u << 0,
    TELEMETRY_TYPE_FUNCTION = 1u << 1,
    TELEMETRY_TYPE_EXTENSION = 1u << 2,
};

/* Plain value struct: copied freely, owns no memory. */
struct config {
    enum log_level log_level;
    bool disabled;                   /* register and loop on next only */
    unsigned telemetry_types;        /* TELEMETRY_TYPE_* mask, always has PLATFORM */
    char schema_version[16];         /* first schema version to try */
    uint32_t buffer_max_items;       /* Telemetry API buffering, sent explicitly */
    uint32_t buffer_max_bytes;
    uint32_t buffer_timeout_ms;
    uint16_t listener_port;          /* 0: let the kernel choose */
    size_t queue_max_bytes;          /* telemetry bytes waiting for the pipeline */
    uint32_t shutdown_telemetry_wait_ms; /* how long SHUTDOWN waits for final records */
    /* when data leaves */
    enum config_flush { CONFIG_FLUSH_AUTO = 0, CONFIG_FLUSH_BACKGROUND, CONFIG_FLUSH_EAGER } flush;
    uint32_t eager_first_invocations; /* auto: the first N invocations of an environment */
    uint32_t eager_idle_s;            /* auto: and any invocation after this long without one */
    /* traces */
    char segment_name[201];          /* "" : the function name */
    enum sampling_policy sampling;   /* which invocations are exported (sampling.h) */
    bool trace_unsampled_deprecated; /* LAMBDA_TRACER_TRACE_UNSAMPLED was set (main logs it) */
    uint32_t slow_ms;                /* slow invocation threshold; 0: auto (sampling.h) */
    uint32_t timeout_margin_ms;      /* in-progress export this long before a deadline */
    uint32_t init_watch_ms;          /* Init anatomy sampling interval; 0: off */
    uint32_t log_tail_lines;         /* 0: off; else also subscribe to function logs */
    uint32_t log_tail_max_bytes;
    /* cost and metrics */
    double price_gb_s_usd;           /* < 0: the built-in table (cost.h) */
    double price_request_usd;        /* < 0: the built-in table */
    bool metrics;                    /* EMF documents on stdout */
    char metrics_namespace[256];     /* CloudWatch namespace */
    uint32_t metrics_interval_s;     /* at most one document per interval (and at SHUTDOWN) */
    /* exporters */
    char exporters[64];              /* "xray,daemon,otlp,stdout" or "none" */
    char xray_endpoint[256];         /* "" : https://xray.<region>.amazonaws.com */
    char daemon_address[128];
    char otlp_endpoint[256];         /* the full URL posted to; "" when the one set was refused */
    char otlp_headers[1024];         /* "name=value,..." as set (config_parse_otlp_headers) */
    bool otlp_json;
    bool otlp_gzip;                  /* gzip request bodies (default; ..._COMPRESSION=none: off) */
    bool otlp_span_new;              /* LAMBDA_TRACER_OTLP_INVOCATION_SPAN=new: our own span id
                                      * (default parent: the trace header's Parent) */
    uint32_t otlp_timeout_ms;        /* per request; export_timeout_ms unless OTEL_*_TIMEOUT */
    bool otel_sdk_disabled;          /* OTEL_SDK_DISABLED=true: OTEL_* turn no sink on */
    /* resource (OTLP) */
    char service_name[CONFIG_SERVICE_NAME_BYTES]; /* OTEL_SERVICE_NAME, "" when unset */
    char resource_attrs[CONFIG_MAX_VALUE_BYTES]; /* OTEL_RESOURCE_ATTRIBUTES, decoded:
                                                  * "key\0value\0" pairs, keys unique */
    size_t resource_attrs_len;                  /* bytes used in resource_attrs */
    char ca_file[256];
    uint32_t export_timeout_ms;
    size_t export_queue_max_bytes;
};

/* Looks a variable up; returns NULL when unset.  getenv() fits via a wrapper. */
typedef const char *(*config_getenv_fn)(const char *name, void *ctx);
/* Told about one invalid setting: its name, what is wrong, what is used instead. */
typedef void (*config_warn_fn)(const char *name, const char *problem, const char *fallback, void *ctx);

/* Fill *ret with the defaults. */
void config_defaults(struct config *ret);

/* Read every setting through getenv_fn; report each invalid one through warn
 * (which may be NULL).  Any thread; touches no global state. */
void config_load(struct config *ret, config_getenv_fn getenv_fn, void *getenv_ctx,
                 config_warn_fn warn, void *warn_ctx);

/* Strict unsigned decimal: digits only, no sign, no spaces, within
 * [min, max].  Returns 0 and writes *ret_value, -EINVAL or -ERANGE. */
int config_parse_u64(const char *text, uint64_t min, uint64_t max, uint64_t *ret_value)
    __attribute__((warn_unused_result));

/* Called by config_load for LAMBDA_TRACER_EXPORTERS, so the list is
 * validated where it is read (export.c owns the names).  0 or -EINVAL. */
typedef int (*config_sinks_fn)(const char *text, unsigned *ret_mask);
extern config_sinks_fn config_sinks_parser;

/* CA bundles tried, in order, when LAMBDA_TRACER_CA_FILE is unset or
 * unreadable: Amazon Linux's (the OS of every Lambda runtime), then
 * Debian's.  The static release build has no compiled-in default, and
 * libcurl ignores CURL_CA_BUNDLE / SSL_CERT_FILE, so the choice is ours. */
#define CONFIG_CA_FILE_AMAZON_LINUX "/etc/pki/tls/certs/ca-bundle.crt"
#define CONFIG_CA_FILE_DEBIAN "/etc/ssl/certs/ca-certificates.crt"

/* Whether a file can be opened for reading; access(2) fits via a wrapper. */
typedef bool (*config_readable_fn)(const char *path, void *ctx);

/* Picks the CA bundle for HTTPS: `override` (LAMBDA_TRACER_CA_FILE; NULL or
 * "" when unset) if readable, else the first readable of
 * CONFIG_CA_FILE_AMAZON_LINUX and CONFIG_CA_FILE_DEBIAN.  Writes the path to
 * ret (ret_size bytes) and returns 0; returns -ENOENT with ret "" when none
 * is readable.  An override that is set but was not taken (unreadable, or
 * longer than ret_size) shows as ret differing from it: the caller logs.
 * Any thread; touches no global state. */
int config_choose_ca_file(const char *override, config_readable_fn readable, void *ctx, char *ret,
                          size_t ret_size) __attribute__((warn_unused_result));

/* Longest host name config_parse_host_port accepts, NUL included. */
#define CONFIG_HOST_MAX 256

/* "host:port" or "[IPv6]:port" (LAMBDA_TRACER_DAEMON_ADDRESS): a non-empty
 * host of printable characters without blanks, brackets or '/', and a
 * decimal port from 1 to 65535.  0 with host (NUL-terminated, host_size
 * bytes at most) and *ret_port written, or -EINVAL.  Pure; any thread. */
int config_parse_host_port(const char *text, char *host, size_t host_size, uint16_t *ret_port)
    __attribute__((warn_unused_result));

/* Longest AWS_REGION accepted, NUL included ("ap-southeast-2",
 * "us-isob-east-1": Lambda's region names are far shorter). */
#define CONFIG_REGION_MAX 32

/* Whether text is a region name as Lambda sets AWS_REGION: 1 to
 * CONFIG_REGION_MAX - 1 bytes of [a-z0-9-], starting with a letter and
 * ending with a letter or digit.  It is placed into the X-Ray host name,
 * the SigV4 scope and resource attributes, so nothing else may pass ('@',
 * '/', ':' and '#' would move the request to another host).  Pure. */
bool config_region_valid(const char *text);

/* Longest AWS_LAMBDA_RUNTIME_API accepted, NUL included. */
#define CONFIG_RUNTIME_API_MAX 200

/* Whether text is an AWS_LAMBDA_RUNTIME_API Lambda can set: "host:port"
 * with a host name or IPv4 address of [A-Za-z0-9.-] (starting with a
 * letter or digit), or "[IPv6]:port" of hex digits, ':' and '.', and a
 * decimal port from 1 to 65535 of at most 5 digits; shorter than
 * CONFIG_RUNTIME_API_MAX.  Userinfo ('@'), a path, query or fragment,
 * blanks and control bytes are refused: the value becomes the authority
 * of every Extensions API URL.  Pure. */
bool config_runtime_api_valid(const char *text);

/* LAMBDA_TRACER_OTLP_HEADERS: at most this many lines of at most this
 * many bytes ("name: value", NUL included). */
#define CONFIG_OTLP_MAX_HEADERS 16
#define CONFIG_OTLP_HEADER_LINE_BYTES 256

/* Parses "name=value,name=value" (LAMBDA_TRACER_OTLP_HEADERS and
 * OTEL_EXPORTER_OTLP_[TRACES_]HEADERS: the OpenTelemetry specification's
 * W3C Baggage-like list) into at most max_lines "name: value" lines.
 * Blanks around names and values are dropped; a name must be an HTTP
 * token; a value is percent-decoded ("Basic%20abc" is "Basic abc"; a '%'
 * not followed by two hex digits is refused) and must then be free of
 * control bytes (so "%0D%0A" cannot add a header); a trailing comma is
 * allowed, an empty item is not.  0 with *ret_count lines written, or
 * -EINVAL.  config_load refuses (and warns about) a value this refuses, so
 * the exporter never sees one.  Pure; any thread. */
int config_parse_otlp_headers(const char *text, char (*lines)[CONFIG_OTLP_HEADER_LINE_BYTES],
                              size_t max_lines, size_t *ret_count) __attribute__((warn_unused_result));

/* Why config_parse_otlp_headers refuses text (at most CONFIG_OTLP_MAX_HEADERS
 * headers): 0 when it does not (why ""), else -EINVAL with the first bad
 * entry's number (from 1) and what is wrong with it in why, e.g. "entry 2
 * (x-api-key): its value holds a control byte".  A name is shown only when
 * it is a valid header name; a value never is.  Pure; any thread. */
int config_otlp_headers_problem(const char *text, char *why, size_t why_size) __attribute__((warn_unused_result));

/* OTEL_RESOURCE_ATTRIBUTES: "key=value,..." with percent-decoded keys and
 * values (the specification: ',' and '=' inside them arrive as %2C and
 * %3D).  Blanks around keys and values are dropped; a key must be non-empty
 * and hold no blank once decoded;
 * both must be valid UTF-8 without control bytes once decoded; at most
 * RESOURCE_ATTRS_MAX pairs; a trailing comma is allowed, an empty item is
 * not.  A key given twice keeps its last value.  Writes "key\0value\0"
 * pairs to ret (ret_size bytes) and their total length to *ret_len.  0 or
 * -EINVAL (any error refuses the whole value, as the specification says).
 * Pure; any thread. */
int config_parse_resource_attributes(const char *text, char *ret, size_t ret_size, size_t *ret_len)
    __attribute__((warn_unused_result));

/* How config_check_url treats the path. */
enum config_url_kind {
    CONFIG_URL_AS_IS,     /* OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, LAMBDA_TRACER_XRAY_ENDPOINT */
    CONFIG_URL_BASE,      /* OTEL_EXPORTER_OTLP_ENDPOINT: "/v1/traces" always appended */
    CONFIG_URL_BASE_OR_FULL, /* LAMBDA_TRACER_OTLP_ENDPOINT: appended unless the path
                              * already ends in "/v1/traces" */
};

/* An endpoint URL a user can have meant: "http://" or "https://" (either
 * case; written lower-case), a non-empty authority of host (a name or
 * address of [A-Za-z0-9._-], or "[IPv6]") and an optional port from 1 to
 * 65535, then an optional path; printable ASCII only: no blank, control
 * byte, '\\' or '#', no userinfo ('@' before the path, which would send
 * the request to another host), and for the base kinds no '?'.  For a base
 * URL one trailing '/' is dropped and "/v1/traces" appended.  Writes the
 * URL to post to into ret (ret_size bytes).  0, -EINVAL (not a URL we
 * accept) or -ENAMETOOLONG (does not fit).  Pure; any thread. */
int config_check_url(const char *text, enum config_url_kind kind, char *ret, size_t ret_size)
    __attribute__((warn_unused_result));

/* AWS_XRAY_DAEMON_ADDRESS: "host:port" or "tcp:host:port udp:host:port"
 * (either order, one blank between: the X-Ray SDKs' format).  Writes the
 * UDP "host:port" (what the daemon sink sends to) into ret.  0 or -EINVAL.
 * Pure; any thread. */
int config_parse_daemon_env(const char *text, char *ret, size_t ret_size)
    __attribute__((warn_unused_result));

/* true/false, 1/0, yes/no, on/off (case-insensitive).  0 or -EINVAL. */
int config_parse_bool(const char *text, bool *ret_value) __attribute__((warn_unused_result));

/* Comma-separated subset of platform,function,extension (spaces around
 * items allowed, duplicates fine, empty items rejected).  0 or -EINVAL. */
int config_parse_types(const char *text, unsigned *ret_mask) __attribute__((warn_unused_result));

/* The effective settings as one line for the startup log ("exporters=...
 * sampling=... slow_ms=... flush=... telemetry=... metrics=..." then the
 * endpoints of the exporters in use): exporters is the list left after the
 * fallbacks ("none" when empty); xray_endpoint is the X-Ray API URL when
 * that exporter is in use, else NULL; daemon and otlp say whether those
 * are.  Never a secret: the OTLP URL loses its query, its headers are
 * named without their values.  Pure; any thread. */
void config_describe(const struct config *cfg, const char *exporters, const char *xray_endpoint, bool daemon,
                     bool otlp, char *ret, size_t ret_size);

#endif
