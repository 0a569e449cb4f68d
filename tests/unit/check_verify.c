/*
 * Unit tests of the password-check queue: answers come in order within
 * a lane and only from verify_run(); a pass answers up to
 * LOGINS_PER_PASS checks the login cache knows, or one crypt(3); cached
 * checks and the administrator's do not wait behind users' crypt(3)
 * checks; a cancelled check is never answered; wrong, unknown, empty
 * and over-long credentials fail; the caller's copy of the password is
 * wiped at once.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "users.h"
#include "verify.h"

#define MAX_ANSWERS	64

static struct users *users;

/* What done() was told, in order. */
static struct answer {
	int owner;
	bool ok;
} answers[MAX_ANSWERS];
static int nanswers;
static int owners[MAX_ANSWERS];	/* distinct addresses to pass as owner */

static void
done(void *owner, bool ok)
{
	ck_assert_int_lt(nanswers, MAX_ANSWERS);
	answers[nanswers].owner = (int)((int *)owner - owners);
	answers[nanswers].ok = ok;
	nanswers++;
}

static void
setup(void)
{
	unsigned line = 0;

	/* A file that does not exist is an empty store; nothing is saved. */
	ck_assert_int_eq(users_load("/nonexistent/check_verify.users", &users,
	    &line), USERS_OK);
	ck_assert_int_eq(users_add(users, "alice", "alice-pw"), USERS_OK);
	ck_assert_int_eq(users_add(users, "bob", "bob-pw"), USERS_OK);
	nanswers = 0;
}

static void
teardown(void)
{
	/* Leave nothing queued for the next test. */
	while (verify_waiting())
		verify_run();
	users_free(users);
	users = NULL;
}

/*
 * Queues a check for owner i, an administrator's when first; the
 * password is a copy we can inspect.
 */
static struct verify *
submit_as(int i, const char *name, const char *password, bool first)
{
	char pw[PASSWORD_MAX + 64];
	struct verify *v;

	snprintf(pw, sizeof(pw), "%s", password);
	v = verify_submit(users, name, pw, done, &owners[i], first);
	ck_assert_ptr_nonnull(v);
	for (size_t k = 0; k < strlen(password); k++)
		ck_assert_msg(pw[k] == '\0', "password not wiped at %zu", k);
	return v;
}

static struct verify *
submit(int i, const char *name, const char *password)
{
	return submit_as(i, name, password, false);
}

/* Puts a password in the login cache the way a first login does. */
static void
warm(const char *name, const char *password)
{
	submit(0, name, password);
	verify_run();
	ck_assert_int_eq(nanswers, 1);
	ck_assert(answers[0].ok);
	nanswers = 0;
}

/* One pass that answers exactly one more check: owner's, with ok. */
static void
pass_answers(int owner, bool ok)
{
	int before = nanswers;

	verify_run();
	ck_assert_int_eq(nanswers, before + 1);
	ck_assert_int_eq(answers[before].owner, owner);
	ck_assert(answers[before].ok == ok);
}

START_TEST(test_answers_only_in_run)
{
	submit(1, "alice", "alice-pw");
	ck_assert(verify_waiting());
	ck_assert_int_eq(nanswers, 0);
	verify_run();
	ck_assert_int_eq(nanswers, 1);
	ck_assert_int_eq(answers[0].owner, 1);
	ck_assert(answers[0].ok);
	ck_assert(!verify_waiting());
}
END_TEST

START_TEST(test_failures)
{
	char longpw[PASSWORD_MAX + 2];

	memset(longpw, 'x', sizeof(longpw) - 1);
	longpw[sizeof(longpw) - 1] = '\0';
	submit(1, "alice", "bob-pw");
	submit(2, "nobody", "alice-pw");
	submit(3, "", "alice-pw");
	submit(4, "alice", longpw);
	submit(5, "alice", "");
	while (verify_waiting())
		verify_run();
	ck_assert_int_eq(nanswers, 5);
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(answers[i].owner, i + 1);
		ck_assert_msg(!answers[i].ok, "check %d passed", i + 1);
	}
}
END_TEST

/* Every uncached check gets a pass of its own, in queue order. */
START_TEST(test_one_crypt_per_pass)
{
	submit(1, "alice", "alice-pw");
	submit(2, "bob", "wrong");
	submit(3, "bob", "bob-pw");
	for (int pass = 1; pass <= 3; pass++) {
		verify_run();
		ck_assert_int_eq(nanswers, pass);
		ck_assert_int_eq(answers[pass - 1].owner, pass);
	}
	ck_assert(answers[0].ok);
	ck_assert(!answers[1].ok);
	ck_assert(answers[2].ok);
	ck_assert(!verify_waiting());
}
END_TEST

/* Cached checks share a pass, LOGINS_PER_PASS of them at most. */
START_TEST(test_cached_budget)
{
	warm("alice", "alice-pw");
	for (int i = 1; i <= LOGINS_PER_PASS + 2; i++)
		submit(i, "alice", "alice-pw");
	verify_run();
	ck_assert_int_eq(nanswers, LOGINS_PER_PASS);
	verify_run();
	ck_assert_int_eq(nanswers, LOGINS_PER_PASS + 2);
	for (int i = 0; i < nanswers; i++) {
		ck_assert_int_eq(answers[i].owner, i + 1);
		ck_assert(answers[i].ok);
	}
}
END_TEST

/* A crypt(3) behind cached checks waits for the next pass. */
START_TEST(test_crypt_after_cached_waits)
{
	warm("alice", "alice-pw");
	submit(1, "alice", "alice-pw");
	submit(2, "bob", "bob-pw");
	pass_answers(1, true);
	pass_answers(2, true);
}
END_TEST

/* A wrong password is never answered from the cache. */
START_TEST(test_cache_needs_same_password)
{
	warm("alice", "alice-pw");
	submit(1, "alice", "alice-pw!");
	verify_run();
	ck_assert_int_eq(nanswers, 1);
	ck_assert(!answers[0].ok);
}
END_TEST

START_TEST(test_cancel)
{
	struct verify *v;

	submit(1, "alice", "alice-pw");
	v = submit(2, "bob", "bob-pw");
	submit(3, "bob", "bob-pw");
	verify_cancel(v);
	verify_cancel(NULL);
	while (verify_waiting())
		verify_run();
	ck_assert_int_eq(nanswers, 2);
	ck_assert_int_eq(answers[0].owner, 1);
	ck_assert_int_eq(answers[1].owner, 3);
}
END_TEST

/* A cancelled check costs no crypt(3): cached ones behind it go along. */
START_TEST(test_cancelled_is_cheap)
{
	struct verify *v;

	warm("alice", "alice-pw");
	v = submit(1, "bob", "bob-pw");
	submit(2, "alice", "alice-pw");
	submit(3, "alice", "alice-pw");
	verify_cancel(v);
	verify_run();
	ck_assert_int_eq(nanswers, 2);
	ck_assert_int_eq(answers[0].owner, 2);
	ck_assert_int_eq(answers[1].owner, 3);
	ck_assert(!verify_waiting());
}
END_TEST

/*
 * Checks answered without a crypt(3) (passwords longer than any stored
 * one) still share the pass budget: a flood of them cannot take a pass
 * whole, nor put a crypt(3) in the same pass.
 */
START_TEST(test_hopeless_share_the_budget)
{
	char long_pw[PASSWORD_MAX + 2];

	memset(long_pw, 'x', sizeof(long_pw) - 1);
	long_pw[sizeof(long_pw) - 1] = '\0';
	for (int i = 1; i <= LOGINS_PER_PASS + 2; i++)
		submit(i, "alice", long_pw);
	submit(LOGINS_PER_PASS + 3, "alice", "alice-pw");
	verify_run();
	ck_assert_int_eq(nanswers, LOGINS_PER_PASS);
	for (int i = 0; i < nanswers; i++)
		ck_assert(!answers[i].ok);
	verify_run();
	ck_assert_int_eq(nanswers, LOGINS_PER_PASS + 2);
	pass_answers(LOGINS_PER_PASS + 3, true);
}
END_TEST

/* A flood of wrong passwords does not hold up a login the cache knows. */
START_TEST(test_cached_not_behind_crypts)
{
	warm("alice", "alice-pw");
	for (int i = 1; i <= 5; i++)
		submit(i, "bob", "wrong");
	submit(6, "alice", "alice-pw");
	pass_answers(6, true);
}
END_TEST

/* The administrator's crypt(3) goes before the users' waiting ones. */
START_TEST(test_admin_before_users)
{
	submit(1, "bob", "wrong");
	submit(2, "bob", "wrong");
	submit_as(3, "alice", "alice-pw", true);
	pass_answers(3, true);
	pass_answers(1, false);
}
END_TEST

/* Cached checks arriving every pass never starve a crypt(3). */
START_TEST(test_passes_take_turns)
{
	warm("alice", "alice-pw");
	submit(1, "bob", "bob-pw");
	submit(2, "alice", "alice-pw");
	pass_answers(2, true);
	submit(3, "alice", "alice-pw");
	pass_answers(1, true);
	pass_answers(3, true);
}
END_TEST

/* Turns are taken only while both kinds wait: no memory of idle passes. */
START_TEST(test_turns_forget_idle_passes)
{
	warm("alice", "alice-pw");
	submit(1, "alice", "alice-pw");
	pass_answers(1, true);
	submit(2, "bob", "bob-pw");
	submit(3, "alice", "alice-pw");
	pass_answers(3, true);
}
END_TEST

/* A password changed after the check was queued is checked anew. */
START_TEST(test_changed_password_not_cached)
{
	warm("alice", "alice-pw");
	submit(1, "alice", "alice-pw");
	ck_assert_int_eq(users_set_password(users, "alice", "new-pw"),
	    USERS_OK);
	while (verify_waiting())
		verify_run();
	ck_assert_int_eq(nanswers, 1);
	ck_assert_int_eq(answers[0].owner, 1);
	ck_assert(!answers[0].ok);
}
END_TEST

Suite *verify_suite(void);

Suite *
verify_suite(void)
{
	Suite *s = suite_create("verify");
	TCase *tc = tcase_create("queue");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_answers_only_in_run);
	tcase_add_test(tc, test_failures);
	tcase_add_test(tc, test_one_crypt_per_pass);
	tcase_add_test(tc, test_cached_budget);
	tcase_add_test(tc, test_crypt_after_cached_waits);
	tcase_add_test(tc, test_cache_needs_same_password);
	tcase_add_test(tc, test_cancel);
	tcase_add_test(tc, test_cancelled_is_cheap);
	tcase_add_test(tc, test_cached_not_behind_crypts);
	tcase_add_test(tc, test_hopeless_share_the_budget);
	tcase_add_test(tc, test_admin_before_users);
	tcase_add_test(tc, test_passes_take_turns);
	tcase_add_test(tc, test_turns_forget_idle_passes);
	tcase_add_test(tc, test_changed_password_not_cached);
	suite_add_tcase(s, tc);
	return s;
}
