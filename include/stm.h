/*
 * A small table-driven state machine (the ITBA "stm" shape).  Each state
 * has optional on_arrival / on_departure hooks and on_read / on_write
 * handlers that return the next state.  The machine runs the departure
 * and arrival hooks whenever a handler returns a state other than the
 * current one.  No I/O here; the protocol modules own the tables.
 */
#ifndef POP3D_STM_H
#define POP3D_STM_H

struct stm_state {
	unsigned state;		/* must equal its index in the table */
	void (*on_arrival)(unsigned state, void *ctx);
	void (*on_departure)(unsigned state, void *ctx);
	unsigned (*on_read)(void *ctx);		/* returns the next state */
	unsigned (*on_write)(void *ctx);	/* returns the next state */
};

struct stm {
	const struct stm_state *states;
	unsigned nstates;
	unsigned current;
};

/* Starts in `initial` and runs its on_arrival hook. */
void stm_init(struct stm *m, const struct stm_state *states, unsigned n,
    unsigned initial, void *ctx);

/* Runs the current state's on_read (on_write) and moves to its result. */
unsigned stm_read(struct stm *m, void *ctx);
unsigned stm_write(struct stm *m, void *ctx);

/* Moves to `next` (departure, then arrival), unless already there. */
void stm_jump(struct stm *m, unsigned next, void *ctx);

/* The current state. */
unsigned stm_state(const struct stm *m);

#endif
