/*
 * Unit tests of the log's line building: a message longer than the
 * line buffer (1 KiB) is cut to fit, and the cut line still ends with
 * its newline, so the next line starts on a line of its own.
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "scratch.h"

/* The line buffer of log.c: the longest line, newline included. */
#define LINE_MAX_OCTETS 1023

static char base[64];
static char path[128];

static void
base_setup(void)
{
	int n;

	scratch_make(base, sizeof(base), "log");
	n = snprintf(path, sizeof(path), "%s/log", base);
	if (n < 0 || (size_t)n >= sizeof(path))
		path[0] = '\0';
}

static void
base_teardown(void)
{
	log_close();
	scratch_remove(base);
}

START_TEST(test_long_line_cut_keeps_its_newline)
{
	static char msg[3000 + 1], got[4096 + 1];
	const char *text;
	ssize_t n;
	int fd;

	ck_assert_msg(base[0] != '\0' && path[0] != '\0', "no scratch folder");
	memset(msg, 'x', sizeof(msg) - 1);
	ck_assert_int_eq(log_open(path), 0);
	log_msg(LOG_INFO, "%s", msg);
	log_close();

	fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	n = read(fd, got, sizeof(got) - 1);
	close(fd);
	/* One line, as long as the buffer allows, and whole. */
	ck_assert_int_eq(n, LINE_MAX_OCTETS);
	ck_assert_int_eq(got[n - 1], '\n');
	ck_assert_ptr_eq(memchr(got, '\n', (size_t)n - 1), NULL);
	/* The message's head is kept after the stamp and level. */
	text = strstr(got, " info: ");
	ck_assert_ptr_nonnull(text);
	text += strlen(" info: ");
	ck_assert_int_eq(strspn(text, "x"), got + n - 1 - text);
}
END_TEST

Suite *log_suite(void);

Suite *
log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *limits = tcase_create("limits");

	tcase_add_unchecked_fixture(limits, base_setup, base_teardown);
	tcase_add_test(limits, test_long_line_cut_keeps_its_newline);
	suite_add_tcase(s, limits);
	return s;
}
