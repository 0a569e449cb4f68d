/*
 * Clock readings (now.h): the only place that calls clock_gettime(), so
 * that timers, budgets, UPTIME and the login cache count alike.  Keeps
 * no state; never sleeps.
 */
#include "now.h"

int64_t
now_ts_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

int64_t
now_ns(clockid_t c)
{
	struct timespec now;

	return clock_gettime(c, &now) == 0 ? now_ts_ns(&now) : 0;
}

uint64_t
now_ms(void)
{
	return (uint64_t)now_ns(CLOCK_MONOTONIC) / 1000000;
}
