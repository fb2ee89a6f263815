/*
 * log.h - levelled logging to stderr, one line per message.
 *
 * Every line is prefixed with the extension's name so it can be told apart
 * in CloudWatch Logs.  Our stderr comes back to us as `extension` telemetry
 * if we subscribe to it, so nothing here logs per telemetry record above the
 * debug level.  Leaf modules never log: the caller that decides the outcome
 * logs once.  Safe to call from any thread.
 */
#ifndef LAMBDA_TRACER_LOG_H
#define LAMBDA_TRACER_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level {
    LOG_LEVEL_ERROR = 0,
    LOG_LEVEL_WARN = 1,
    LOG_LEVEL_INFO = 2,
    LOG_LEVEL_DEBUG = 3,
};

/* The one global besides the stop flag: read by every thread, written only
 * by main() before any thread starts. */
extern enum log_level log_current_level;

/* Set the prefix printed before every line (normally the extension name).
 * The string is copied; call before starting threads. */
void log_set_prefix(const char *prefix);

/* Parse "error", "warn", "info", "debug" (case-insensitive).  Returns 0 and
 * writes *ret_level, or -EINVAL. */
int log_level_parse(const char *text, enum log_level *ret_level) __attribute__((warn_unused_result));

const char *log_level_name(enum log_level level);

/* Formats one message and writes it as one line.  Whatever the arguments
 * hold (request ids, error types, messages from the platform), the line
 * stays one line: the formatted text goes through log_escape, and a line
 * longer than 4 KiB is cut and ends with " [...]". */
void log_write(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Copies src_len bytes of src into dst (dst_size bytes, NUL included)
 * with CR, LF, tab, backslash and every other control byte (C0, DEL, C1,
 * U+2028, U+2029) and each byte that is not part of valid UTF-8 escaped
 * as \n \r \t \\ or \xHH; valid UTF-8 is kept.  Stops before the first
 * unit that does not fit whole.  Returns the bytes written, NUL excluded,
 * and (when ret_consumed is not NULL) how many bytes of src they cover.
 * Pure; any thread. */
size_t log_escape(const char *src, size_t src_len, char *dst, size_t dst_size, size_t *ret_consumed);

#define log_error(...) log_at(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_at(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_at(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_at(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_enabled(level) ((level) <= log_current_level)
#define log_at(level, ...)                                                                         \
    do {                                                                                           \
        if (log_enabled(level))                                                                    \
            log_write(level, __VA_ARGS__);                                                         \
    } while (0)

#endif
