/*
 * The counters behind MGMT's figures.  Writers are the connection and
 * server code; MGMT only reads through stats_get().
 */
#include <assert.h>
#include <string.h>

#include "stats.h"

static struct stats st;

/* Monotonic seconds: UPTIME must not jump when the clock is set. */
static time_t
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

void
stats_init(void)
{
	memset(&st, 0, sizeof(st));
	st.started = now_s();
}

void
stats_accepted(void)
{
	st.historic++;
}

void
stats_opened(void)
{
	st.live++;
}

void
stats_closed(void)
{
	assert(st.live > 0);
	st.live--;
}

void
stats_add_in(uint64_t n)
{
	st.bytes_in += n;
}

void
stats_add_out(uint64_t n)
{
	st.bytes_out += n;
}

const struct stats *
stats_get(void)
{
	return &st;
}

uint64_t
stats_uptime(void)
{
	time_t now = now_s();

	return now > st.started ? (uint64_t)(now - st.started) : 0;
}
