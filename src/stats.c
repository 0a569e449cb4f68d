/*
 * The counters behind MGMT's figures.  Writers are the connection and
 * server code; MGMT only reads through stats_get().
 */
#include <assert.h>
#include <string.h>

#include "now.h"
#include "stats.h"

static struct stats st;

void
stats_init(void)
{
	memset(&st, 0, sizeof(st));
	st.started_ms = now_ms();
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

/*
 * Monotonic milliseconds: UPTIME must not jump when the clock is set,
 * nor count a second that has not passed (whole seconds would round a
 * start late in one up at the next tick).
 */
uint64_t
stats_uptime(void)
{
	uint64_t now = now_ms();

	return now > st.started_ms ? (now - st.started_ms) / 1000 : 0;
}
