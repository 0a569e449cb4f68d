/*
 * Unit tests of the server-wide counters: each update moves exactly its
 * counter, byte sums stay exact past 32 bits, stats_init() zeroes all
 * and restarts the uptime clock.
 */
#include <check.h>
#include <stdint.h>
#include <time.h>

#include "stats.h"

#define TB ((uint64_t)1 << 40)

/* The clock stats counts uptime with (it must not jump), in ms. */
static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
nap(void)
{
	struct timespec ts = { 0, 10 * 1000 * 1000 };

	nanosleep(&ts, NULL);
}

START_TEST(test_init_zero)
{
	const struct stats *st;
	uint64_t before = mono_ms(), after;

	stats_init();
	after = mono_ms();
	st = stats_get();
	ck_assert_ptr_nonnull(st);
	ck_assert_uint_eq(st->historic, 0);
	ck_assert_uint_eq(st->live, 0);
	ck_assert_uint_eq(st->bytes_in, 0);
	ck_assert_uint_eq(st->bytes_out, 0);
	ck_assert(st->started_ms >= before && st->started_ms <= after);
	ck_assert_uint_eq(stats_uptime(), 0);
}
END_TEST

START_TEST(test_accepted)
{
	const struct stats *st;

	stats_init();
	for (int i = 0; i < 1000; i++)
		stats_accepted();
	st = stats_get();
	ck_assert_uint_eq(st->historic, 1000);
	ck_assert_uint_eq(st->live, 0);
	ck_assert_uint_eq(st->bytes_in, 0);
	ck_assert_uint_eq(st->bytes_out, 0);
}
END_TEST

START_TEST(test_opened_closed)
{
	const struct stats *st;

	stats_init();
	stats_opened();
	stats_opened();
	stats_opened();
	st = stats_get();
	ck_assert_uint_eq(st->live, 3);
	stats_closed();
	ck_assert_uint_eq(stats_get()->live, 2);
	stats_opened();
	stats_closed();
	stats_closed();
	stats_closed();
	st = stats_get();
	ck_assert_uint_eq(st->live, 0);
	/* live is not historic: opening does not count as accepting. */
	ck_assert_uint_eq(st->historic, 0);
}
END_TEST

START_TEST(test_bytes_sums)
{
	const struct stats *st;

	stats_init();
	stats_add_in(TB - 1);
	stats_add_in(1);
	stats_add_in(0);
	stats_add_out(UINT32_MAX);
	stats_add_out(UINT32_MAX);
	stats_add_out(2);
	st = stats_get();
	ck_assert_uint_eq(st->bytes_in, TB);
	ck_assert_uint_eq(st->bytes_out, (uint64_t)1 << 33);
	for (int i = 0; i < 1000; i++)
		stats_add_in(TB);
	ck_assert_uint_eq(stats_get()->bytes_in, 1001 * TB);
	/* In and out are separate sums. */
	ck_assert_uint_eq(stats_get()->bytes_out, (uint64_t)1 << 33);
	ck_assert_uint_eq(stats_get()->historic, 0);
	ck_assert_uint_eq(stats_get()->live, 0);
}
END_TEST

START_TEST(test_init_resets)
{
	const struct stats *st;

	stats_init();
	stats_accepted();
	stats_opened();
	stats_add_in(TB + 5);
	stats_add_out(TB + 7);
	stats_init();
	st = stats_get();
	ck_assert_uint_eq(st->historic, 0);
	ck_assert_uint_eq(st->live, 0);
	ck_assert_uint_eq(st->bytes_in, 0);
	ck_assert_uint_eq(st->bytes_out, 0);
	stats_add_in(3);
	ck_assert_uint_eq(stats_get()->bytes_in, 3);
}
END_TEST

/*
 * UPTIME counts whole seconds that have passed: 0 all through the first
 * second (a second-boundary of the clock in it is no second of uptime),
 * then 1.
 */
START_TEST(test_uptime_counts_seconds)
{
	uint64_t before = mono_ms(), start, uptime, now;

	stats_init();
	start = stats_get()->started_ms;
	do {
		uptime = stats_uptime();
		now = mono_ms();
		if (now - before < 1000)
			ck_assert_uint_eq(uptime, 0);
		nap();
	} while (now - before < 1000);
	while (mono_ms() - start < 1000)
		nap();
	ck_assert_uint_ge(stats_uptime(), 1);
	ck_assert_uint_le(stats_uptime(), 3);
	/* A new init restarts the clock. */
	stats_init();
	ck_assert_uint_eq(stats_uptime(), 0);
	ck_assert_uint_ge(stats_get()->started_ms, start + 1000);
}
END_TEST

Suite *stats_suite(void);

Suite *
stats_suite(void)
{
	Suite *s = suite_create("stats");
	TCase *core = tcase_create("core");
	TCase *limits = tcase_create("limits");

	tcase_add_test(core, test_init_zero);
	tcase_add_test(core, test_accepted);
	tcase_add_test(core, test_opened_closed);
	tcase_add_test(core, test_init_resets);
	tcase_add_test(core, test_uptime_counts_seconds);
	suite_add_tcase(s, core);

	tcase_add_test(limits, test_bytes_sums);
	suite_add_tcase(s, limits);
	return s;
}
