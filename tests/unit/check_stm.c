/*
 * Unit tests of the table-driven state machine: a 3-state table whose
 * hooks append to an event log in a context struct, so each test checks
 * which hooks ran, in which order, with which state and context.
 */
#include <check.h>
#include <stddef.h>
#include <string.h>

#include "stm.h"

enum { ST_A, ST_B, ST_C, ST_N };

/* One logged event: a hook kind and the state it was called with. */
enum ev_kind { EV_ARRIVE, EV_DEPART, EV_READ, EV_WRITE };

struct ev {
	enum ev_kind kind;
	unsigned state;
};

struct ctx {
	struct ev log[32];
	size_t nlog;
	unsigned next_read;	/* what on_read handlers return */
	unsigned next_write;	/* what on_write handlers return */
	unsigned arrivals[ST_N], departures[ST_N];
	struct stm *m;		/* to look at the machine inside hooks */
	unsigned seen_current;	/* stm_state() seen by the last hook */
};

static void
log_ev(struct ctx *x, enum ev_kind kind, unsigned state)
{
	ck_assert_uint_lt(x->nlog, sizeof(x->log) / sizeof(x->log[0]));
	x->log[x->nlog].kind = kind;
	x->log[x->nlog].state = state;
	x->nlog++;
	if (x->m != NULL)
		x->seen_current = stm_state(x->m);
}

static void
arrive(unsigned state, void *ctx)
{
	struct ctx *x = ctx;

	x->arrivals[state]++;
	log_ev(x, EV_ARRIVE, state);
}

static void
depart(unsigned state, void *ctx)
{
	struct ctx *x = ctx;

	x->departures[state]++;
	log_ev(x, EV_DEPART, state);
}

static unsigned
rd(void *ctx)
{
	struct ctx *x = ctx;

	log_ev(x, EV_READ, x->m != NULL ? stm_state(x->m) : ST_N);
	return x->next_read;
}

static unsigned
wr(void *ctx)
{
	struct ctx *x = ctx;

	log_ev(x, EV_WRITE, x->m != NULL ? stm_state(x->m) : ST_N);
	return x->next_write;
}

/* A and B have every hook; C has handlers but no hooks. */
static const struct stm_state table[ST_N] = {
	[ST_A] = { ST_A, arrive, depart, rd, wr },
	[ST_B] = { ST_B, arrive, depart, rd, wr },
	[ST_C] = { ST_C, NULL, NULL, rd, wr },
};

/* The same states without read or write handlers. */
static const struct stm_state bare[ST_N] = {
	[ST_A] = { ST_A, arrive, depart, NULL, NULL },
	[ST_B] = { ST_B, arrive, depart, NULL, NULL },
	[ST_C] = { ST_C, NULL, NULL, NULL, NULL },
};

static void
assert_ev(const struct ctx *x, size_t i, enum ev_kind kind, unsigned state)
{
	ck_assert_uint_lt(i, x->nlog);
	ck_assert_int_eq(x->log[i].kind, kind);
	ck_assert_uint_eq(x->log[i].state, state);
}

static void
ctx_init(struct ctx *x, struct stm *m)
{
	memset(x, 0, sizeof(*x));
	x->m = m;
}

START_TEST(test_init_runs_arrival)
{
	struct stm m;
	struct ctx x;

	ctx_init(&x, NULL);
	stm_init(&m, table, ST_N, ST_B, &x);
	ck_assert_uint_eq(stm_state(&m), ST_B);
	ck_assert_uint_eq(x.nlog, 1);
	assert_ev(&x, 0, EV_ARRIVE, ST_B);
	ck_assert_uint_eq(x.arrivals[ST_A], 0);
	ck_assert_uint_eq(x.departures[ST_B], 0);
}
END_TEST

START_TEST(test_init_without_hook)
{
	struct stm m;
	struct ctx x;

	ctx_init(&x, NULL);
	stm_init(&m, table, ST_N, ST_C, &x);
	ck_assert_uint_eq(stm_state(&m), ST_C);
	ck_assert_uint_eq(x.nlog, 0);
}
END_TEST

START_TEST(test_read_transition)
{
	struct stm m;
	struct ctx x;

	ctx_init(&x, &m);
	stm_init(&m, table, ST_N, ST_A, &x);
	x.nlog = 0;
	x.next_read = ST_B;
	ck_assert_uint_eq(stm_read(&m, &x), ST_B);
	ck_assert_uint_eq(stm_state(&m), ST_B);
	/* Handler in A, then A's departure, then B's arrival. */
	ck_assert_uint_eq(x.nlog, 3);
	assert_ev(&x, 0, EV_READ, ST_A);
	assert_ev(&x, 1, EV_DEPART, ST_A);
	assert_ev(&x, 2, EV_ARRIVE, ST_B);
	/* The arrival hook already sees the new state as current. */
	ck_assert_uint_eq(x.seen_current, ST_B);
	ck_assert_uint_eq(x.departures[ST_A], 1);
	ck_assert_uint_eq(x.arrivals[ST_B], 1);
}
END_TEST

START_TEST(test_departure_sees_old_state)
{
	struct stm m;
	struct ctx x;

	ctx_init(&x, &m);
	stm_init(&m, table, ST_N, ST_A, &x);
	x.nlog = 0;
	x.next_read = ST_C;	/* C has no arrival: the departure is last */
	ck_assert_uint_eq(stm_read(&m, &x), ST_C);
	ck_assert_uint_eq(x.nlog, 2);
	assert_ev(&x, 1, EV_DEPART, ST_A);
	ck_assert_uint_eq(x.seen_current, ST_A);
	ck_assert_uint_eq(stm_state(&m), ST_C);
}
END_TEST

START_TEST(test_read_same_state_no_hooks)
{
	struct stm m;
	struct ctx x;

	ctx_init(&x, &m);
	stm_init(&m, table, ST_N, ST_A, &x);
	x.nlog = 0;
	x.next_read = ST_A;
	for (int i = 0; i < 3; i++)
		ck_assert_uint_eq(stm_read(&m, &x), ST_A);
	ck_assert_uint_eq(x.nlog, 3);
	for (size_t i = 0; i < 3; i++)
		assert_ev(&x, i, EV_READ, ST_A);
	ck_assert_uint_eq(x.arrivals[ST_A], 1);	/* the init one only */
	ck_assert_uint_eq(x.departures[ST_A], 0);
}
END_TEST

START_TEST(test_write_transition)
{
	struct stm m;
	struct ctx x;

	ctx_init(&x, &m);
	stm_init(&m, table, ST_N, ST_B, &x);
	x.nlog = 0;
	x.next_write = ST_A;
	x.next_read = ST_C;	/* must not be used by stm_write */
	ck_assert_uint_eq(stm_write(&m, &x), ST_A);
	ck_assert_uint_eq(x.nlog, 3);
	assert_ev(&x, 0, EV_WRITE, ST_B);
	assert_ev(&x, 1, EV_DEPART, ST_B);
	assert_ev(&x, 2, EV_ARRIVE, ST_A);

	x.nlog = 0;
	x.next_write = ST_A;
	ck_assert_uint_eq(stm_write(&m, &x), ST_A);
	ck_assert_uint_eq(x.nlog, 1);
	assert_ev(&x, 0, EV_WRITE, ST_A);
}
END_TEST

START_TEST(test_jump)
{
	struct stm m;
	struct ctx x;

	ctx_init(&x, &m);
	stm_init(&m, table, ST_N, ST_A, &x);
	x.nlog = 0;
	stm_jump(&m, ST_B, &x);
	ck_assert_uint_eq(stm_state(&m), ST_B);
	ck_assert_uint_eq(x.nlog, 2);
	assert_ev(&x, 0, EV_DEPART, ST_A);
	assert_ev(&x, 1, EV_ARRIVE, ST_B);

	/* Already there: nothing runs. */
	x.nlog = 0;
	stm_jump(&m, ST_B, &x);
	ck_assert_uint_eq(x.nlog, 0);
	ck_assert_uint_eq(stm_state(&m), ST_B);

	/* Into and out of a state without hooks. */
	stm_jump(&m, ST_C, &x);
	stm_jump(&m, ST_A, &x);
	ck_assert_uint_eq(x.nlog, 2);
	assert_ev(&x, 0, EV_DEPART, ST_B);
	assert_ev(&x, 1, EV_ARRIVE, ST_A);
	ck_assert_uint_eq(stm_state(&m), ST_A);
}
END_TEST

START_TEST(test_missing_handlers)
{
	struct stm m;
	struct ctx x;

	ctx_init(&x, &m);
	stm_init(&m, bare, ST_N, ST_A, &x);
	x.nlog = 0;
	ck_assert_uint_eq(stm_read(&m, &x), ST_A);
	ck_assert_uint_eq(stm_write(&m, &x), ST_A);
	ck_assert_uint_eq(x.nlog, 0);
}
END_TEST

START_TEST(test_chain_of_transitions)
{
	static const unsigned path[] = { ST_B, ST_C, ST_C, ST_A, ST_B, ST_A };
	struct stm m;
	struct ctx x;
	unsigned cur = ST_A;

	ctx_init(&x, &m);
	stm_init(&m, table, ST_N, ST_A, &x);
	for (size_t i = 0; i < sizeof(path) / sizeof(path[0]); i++) {
		x.next_read = path[i];
		ck_assert_uint_eq(stm_read(&m, &x), path[i]);
		cur = path[i];
	}
	ck_assert_uint_eq(stm_state(&m), cur);
	/* A: init + 2 returns; B: 2 entries and 2 exits; C has no hooks. */
	ck_assert_uint_eq(x.arrivals[ST_A], 3);
	ck_assert_uint_eq(x.departures[ST_A], 2);
	ck_assert_uint_eq(x.arrivals[ST_B], 2);
	ck_assert_uint_eq(x.departures[ST_B], 2);
}
END_TEST

Suite *stm_suite(void);

Suite *
stm_suite(void)
{
	Suite *s = suite_create("stm");
	TCase *core = tcase_create("core");
	TCase *limits = tcase_create("limits");

	tcase_add_test(core, test_init_runs_arrival);
	tcase_add_test(core, test_read_transition);
	tcase_add_test(core, test_departure_sees_old_state);
	tcase_add_test(core, test_read_same_state_no_hooks);
	tcase_add_test(core, test_write_transition);
	tcase_add_test(core, test_jump);
	suite_add_tcase(s, core);

	tcase_add_test(limits, test_init_without_hook);
	tcase_add_test(limits, test_missing_handlers);
	tcase_add_test(limits, test_chain_of_transitions);
	suite_add_tcase(s, limits);
	return s;
}
