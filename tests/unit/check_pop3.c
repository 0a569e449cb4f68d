/*
 * Unit tests of how POP3 sessions share a pass's heavy work (listing
 * maildrops, QUIT's unlinks): a budget per pass, and rounds, so that
 * every session that asks gets its slice whatever order the passes
 * visit them in.  Each test starts with new sessions, never yet served
 * in any round, so none depends on Check forking it (the valgrind run
 * does not).
 */
#include <check.h>
#include <stdlib.h>

#include "config.h"
#include "pop3_session.h"

#define NSESS 3

static struct pop3_session *sess[NSESS];

static void
setup(void)
{
	for (int i = 0; i < NSESS; i++)
		ck_assert_ptr_nonnull(sess[i] = calloc(1, sizeof(*sess[i])));
}

static void
teardown(void)
{
	for (int i = 0; i < NSESS; i++)
		free(sess[i]);
}

/*
 * One pass visiting the sessions in their fixed order, each slice
 * taking the whole budget (big) or next to nothing; who worked, as a
 * bit mask.
 */
static unsigned
pass(bool big)
{
	unsigned worked = 0;

	pop3_pass_begin();
	for (int i = 0; i < NSESS; i++) {
		int64_t start = pop3_work_start(sess[i]);

		if (start < 0)
			continue;
		worked |= 1u << i;
		pop3_work_done(big ? start - PASS_WORK_NS : start);
	}
	return worked;
}

START_TEST(test_small_slices_share_a_pass)
{
	for (int p = 0; p < 4; p++)
		ck_assert_uint_eq(pass(false), 7);
}
END_TEST

/* A pass's budget spent, the sessions after wait: never all in one. */
START_TEST(test_spent_budget_turns_away)
{
	int64_t start;

	pop3_pass_begin();
	start = pop3_work_start(sess[0]);
	ck_assert_int_ge(start, 0);
	pop3_work_done(start - PASS_WORK_NS);
	ck_assert_int_lt(pop3_work_start(sess[1]), 0);
	ck_assert_int_lt(pop3_work_start(sess[2]), 0);
}
END_TEST

/* Big slices: one session a pass, each in turn, the last one too. */
START_TEST(test_round_robin)
{
	for (int round = 0; round < 3; round++)
		for (int i = 0; i < NSESS; i++)
			ck_assert_uint_eq(pass(true), 1u << i);
}
END_TEST

/* Alone, a session works every pass, however big its slices. */
START_TEST(test_alone_every_pass)
{
	for (int p = 0; p < 4; p++) {
		int64_t start;

		pop3_pass_begin();
		start = pop3_work_start(sess[0]);
		ck_assert_int_ge(start, 0);
		pop3_work_done(start - PASS_WORK_NS);
	}
}
END_TEST

Suite *pop3_suite(void);

Suite *
pop3_suite(void)
{
	Suite *s = suite_create("pop3");
	TCase *work = tcase_create("work");

	tcase_add_checked_fixture(work, setup, teardown);
	tcase_add_test(work, test_small_slices_share_a_pass);
	tcase_add_test(work, test_spent_budget_turns_away);
	tcase_add_test(work, test_round_robin);
	tcase_add_test(work, test_alone_every_pass);
	suite_add_tcase(s, work);
	return s;
}
