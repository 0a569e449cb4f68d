/*
 * Unit tests of the maildrop locks: one holder per name, only the
 * holder releases, names out of bounds refused, and many names (many
 * sharing a bucket) kept apart.  The table is the process's own: every
 * test releases what it took, so the suites also pass in one process
 * (CK_FORK=no, as under valgrind).
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "lock.h"

START_TEST(test_one_holder_per_name)
{
	int h1, h2;

	ck_assert_ptr_null(lock_holder("alice"));
	ck_assert(lock_take("alice", &h1));
	ck_assert_ptr_eq(lock_holder("alice"), &h1);
	ck_assert(!lock_take("alice", &h2));
	ck_assert_ptr_eq(lock_holder("alice"), &h1);
	/* The holder asking again keeps it. */
	ck_assert(lock_take("alice", &h1));
	/* Another name is another lock; names are case-sensitive. */
	ck_assert(lock_take("bob", &h2));
	ck_assert_ptr_eq(lock_holder("bob"), &h2);
	ck_assert(lock_take("Alice", &h2));
	ck_assert_ptr_eq(lock_holder("alice"), &h1);

	lock_release("alice", &h1);
	lock_release("bob", &h2);
	lock_release("Alice", &h2);
	ck_assert_ptr_null(lock_holder("alice"));
	ck_assert_ptr_null(lock_holder("bob"));
	ck_assert_ptr_null(lock_holder("Alice"));
}
END_TEST

START_TEST(test_only_the_holder_releases)
{
	int h1, h2;

	ck_assert(lock_take("alice", &h1));
	lock_release("alice", &h2);
	ck_assert_ptr_eq(lock_holder("alice"), &h1);
	lock_release("alice", NULL);
	ck_assert_ptr_eq(lock_holder("alice"), &h1);
	lock_release("nobody", &h1);
	lock_release(NULL, &h1);
	ck_assert_ptr_eq(lock_holder("alice"), &h1);
	lock_release("alice", &h1);
	ck_assert_ptr_null(lock_holder("alice"));
	/* Released, it is free for the next holder. */
	ck_assert(lock_take("alice", &h2));
	ck_assert_ptr_eq(lock_holder("alice"), &h2);
	lock_release("alice", &h2);
	ck_assert_ptr_null(lock_holder("alice"));
}
END_TEST

START_TEST(test_name_bounds)
{
	char longest[USER_NAME_MAX + 2];
	int h;

	memset(longest, 'a', USER_NAME_MAX);
	longest[USER_NAME_MAX] = '\0';
	ck_assert(lock_take(longest, &h));
	ck_assert_ptr_eq(lock_holder(longest), &h);
	lock_release(longest, &h);
	ck_assert_ptr_null(lock_holder(longest));

	longest[USER_NAME_MAX] = 'a';
	longest[USER_NAME_MAX + 1] = '\0';
	ck_assert(!lock_take(longest, &h));
	ck_assert_ptr_null(lock_holder(longest));
	ck_assert(!lock_take("", &h));
	ck_assert(!lock_take(NULL, &h));
	ck_assert_ptr_null(lock_holder(NULL));
}
END_TEST

/*
 * Ten thousand names, more than twice the buckets: chains are walked,
 * and a release in the middle of one leaves the others in place.
 */
START_TEST(test_many_names)
{
	enum { N = 10000 };
	static int holders[N];
	char name[16];

	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "user%d", i);
		ck_assert(lock_take(name, &holders[i]));
	}
	for (int i = 0; i < N; i += 2) {
		snprintf(name, sizeof(name), "user%d", i);
		lock_release(name, &holders[i]);
	}
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "user%d", i);
		ck_assert_ptr_eq(lock_holder(name),
		    i % 2 == 0 ? NULL : &holders[i]);
		lock_release(name, &holders[i]);
		ck_assert_ptr_null(lock_holder(name));
	}
}
END_TEST

Suite *lock_suite(void);

Suite *
lock_suite(void)
{
	Suite *s = suite_create("lock");
	TCase *core = tcase_create("core");
	TCase *limits = tcase_create("limits");

	tcase_add_test(core, test_one_holder_per_name);
	tcase_add_test(core, test_only_the_holder_releases);
	suite_add_tcase(s, core);

	tcase_add_test(limits, test_name_bounds);
	tcase_add_test(limits, test_many_names);
	suite_add_tcase(s, limits);
	return s;
}
