/*
 * summary.h - the shutdown summary: one log line with every counter the
 * extension keeps, so that nothing lost goes unreported.
 *
 * Table-driven: each counter of each stats struct has one row in
 * summary.c, and summary.c checks at compile time that the structs still
 * have the size its table was written against, so a counter added to a
 * stats struct without a row fails the build instead of going missing.
 */
#ifndef LAMBDA_TRACER_SUMMARY_H
#define LAMBDA_TRACER_SUMMARY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "export.h"
#include "listener.h"
#include "pipeline.h"
#include "queue.h"

/* What the summary reports.  A NULL source (that part never ran: no
 * telemetry, no exporter) reports zeros. */
struct summary_input {
    uint64_t invokes;                  /* INVOKE events received by the event loop */
    const struct pipeline_stats *pipeline;
    const struct queue_stats *queue;
    const struct listener_stats *listener;
    const struct export_stats *exporter;
    int64_t shutdown_ms;               /* SHUTDOWN to the summary */
};

/* Writes "invokes=N name=N ... shutdown_ms=N" (every counter, in table
 * order, zeros included) into buf.  Returns the length, or -ENOBUFS when
 * buf is too small (buf then holds a truncated, NUL-terminated line).
 * Pure; any thread. */
int summary_format(const struct summary_input *in, char *buf, size_t size)
    __attribute__((warn_unused_result));

/* Writes the name of counter i of the line into buf (truncated to size);
 * false past the last one.  For tests and documentation.  Pure; any
 * thread. */
bool summary_counter_name(size_t i, char *buf, size_t size);

#endif
