/*
 * Clock readings, in one place so that every module counts time the
 * same way.  Monotonic time never jumps when the wall clock is set.
 * (Log timestamps are wall-clock time, read by log.c.)
 */
#ifndef POP3D_NOW_H
#define POP3D_NOW_H

#include <stdint.h>
#include <time.h>

/* Nanoseconds on clock c; 0 when the clock cannot be read. */
int64_t now_ns(clockid_t c);
/* Monotonic milliseconds; 0 when the clock cannot be read. */
uint64_t now_ms(void);
/* A timestamp (st_mtim, a clock reading) in nanoseconds. */
int64_t now_ts_ns(const struct timespec *ts);

#endif
