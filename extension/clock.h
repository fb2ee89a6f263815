/*
 * clock.h - the two clocks the extension uses.
 *
 * Monotonic time for timeouts and waits (it does not jump with the wall
 * clock; note it may jump across a SnapStart restore), wall-clock epoch time
 * for anything that ends up in a trace.  Any thread.
 */
#ifndef LAMBDA_TRACER_CLOCK_H
#define LAMBDA_TRACER_CLOCK_H

#include <stdint.h>

int64_t clock_mono_ns(void);
int64_t clock_mono_ms(void);
int64_t clock_epoch_us(void);

/* Sleeps ms milliseconds, resuming after signals. */
void clock_sleep_ms(int64_t ms);

#endif
