/*
 * Table-driven state machine: transitions and their hooks.  Handlers are
 * the protocol's; this file only keeps the current state honest.
 */
#include <assert.h>
#include <stddef.h>

#include "stm.h"

void
stm_init(struct stm *m, const struct stm_state *states, unsigned n,
    unsigned initial, void *ctx)
{
	assert(initial < n);
	for (unsigned i = 0; i < n; i++)
		assert(states[i].state == i);
	m->states = states;
	m->nstates = n;
	m->current = initial;
	if (states[initial].on_arrival != NULL)
		states[initial].on_arrival(initial, ctx);
}

void
stm_jump(struct stm *m, unsigned next, void *ctx)
{
	unsigned prev = m->current;

	assert(next < m->nstates);
	if (next == prev)
		return;
	if (m->states[prev].on_departure != NULL)
		m->states[prev].on_departure(prev, ctx);
	m->current = next;
	if (m->states[next].on_arrival != NULL)
		m->states[next].on_arrival(next, ctx);
}

unsigned
stm_read(struct stm *m, void *ctx)
{
	const struct stm_state *st = &m->states[m->current];

	if (st->on_read != NULL)
		stm_jump(m, st->on_read(ctx), ctx);
	return m->current;
}

unsigned
stm_write(struct stm *m, void *ctx)
{
	const struct stm_state *st = &m->states[m->current];

	if (st->on_write != NULL)
		stm_jump(m, st->on_write(ctx), ctx);
	return m->current;
}

unsigned
stm_state(const struct stm *m)
{
	return m->current;
}
