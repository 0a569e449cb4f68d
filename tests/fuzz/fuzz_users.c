/*
 * libFuzzer harness (d): the users-file parser.
 *
 * The input is written as a users file in a temporary folder and
 * loaded.  A file that loads must survive a round trip: the store is
 * saved (rewriting the file) and loaded again, and both stores must
 * hold the same accounts and settings, and saving the second must give
 * the very same bytes as saving the first.  Also checked: accounts are
 * sorted and unique and each is found by name, names are valid, a
 * refused file reports a line that exists, and deleting an account
 * really removes it.  No crypt(3) here (a file may hold any hash).
 */
#include <sys/stat.h>

#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "users.h"

#include "fuzz_session.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[256];
static char path[320];

static void
fail(const char *what)
{
	fprintf(stderr, "fuzz_users: %s\n", what);
	abort();
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* users_save() fsyncs: the folder is on a tmpfs when there is one. */
	fuzz_make_tempdir(dir, sizeof(dir), "usersfuzz");
	snprintf(path, sizeof(path), "%s/users", dir);
	return 0;
}

static void
write_input(const uint8_t *data, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd == -1)
		fail("cannot create the users file");
	while (size > 0) {
		ssize_t n = write(fd, data, size);

		if (n <= 0)
			fail("cannot write the users file");
		data += n;
		size -= (size_t)n;
	}
	close(fd);
}

static char *
read_back(size_t *len)
{
	struct stat st;
	char *buf;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd == -1 || fstat(fd, &st) == -1)
		fail("cannot read the saved file");
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL || read(fd, buf, (size_t)st.st_size) != st.st_size)
		fail("cannot read the saved file");
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

/* Sorted, unique, valid, and each one found by its name. */
static void
check_accounts(const struct users *u)
{
	size_t n = users_count(u);

	for (size_t i = 0; i < n; i++) {
		const char *name = users_name_at(u, i);

		if (name == NULL || !users_valid_name(name))
			fail("an account with an invalid name was loaded");
		if (i > 0 && strcmp(users_name_at(u, i - 1), name) >= 0)
			fail("accounts are not sorted and unique");
		if (!users_exists(u, name))
			fail("an account is not found by its name");
	}
	if (users_name_at(u, n) != NULL)
		fail("users_name_at past the end is not NULL");
}

static bool
same_text(const char *a, const char *b)
{
	return (a == NULL && b == NULL) ||
	    (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Keys the server reads, compared between the two stores. */
static void
check_settings(const struct users *a, const struct users *b)
{
	static const char *const keys[] = { "max_users", "max_connections",
	    "idle_timeout", "filter", NULL };

	for (size_t i = 0; keys[i] != NULL; i++) {
		if (users_setting(a, keys[i], 12345) !=
		    users_setting(b, keys[i], 12345))
			fail("a setting changed in the round trip");
		if (!same_text(users_setting_text(a, keys[i]),
		    users_setting_text(b, keys[i])))
			fail("a text setting changed in the round trip");
	}
	if (users_max(a) != users_max(b))
		fail("max users changed in the round trip");
}

/* Counts the lines of the input as the parser numbers them. */
static unsigned
count_lines(const uint8_t *data, size_t size)
{
	unsigned n = 0;

	for (size_t i = 0; i < size; i++)
		if (data[i] == '\n' || i + 1 == size)
			n++;
	return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct users *u, *again;
	enum users_status st;
	unsigned line = 0;
	char *first, *second;
	size_t first_len, second_len, n;

	write_input(data, size);
	st = users_load(path, &u, &line);
	if (st == USERS_PARSE) {
		if (line == 0 || line > count_lines(data, size))
			fail("a refused file names a line it does not have");
		return 0;
	}
	if (st != USERS_OK)
		return 0;
	check_accounts(u);

	if (users_save(u) != USERS_OK)
		fail("a store that loaded cannot be saved");
	first = read_back(&first_len);
	if (users_load(path, &again, &line) != USERS_OK)
		fail("a saved file does not load again");
	check_accounts(again);
	n = users_count(u);
	if (users_count(again) != n)
		fail("the account count changed in the round trip");
	for (size_t i = 0; i < n; i++)
		if (strcmp(users_name_at(u, i), users_name_at(again, i)) != 0)
			fail("an account name changed in the round trip");
	check_settings(u, again);
	if (users_save(again) != USERS_OK)
		fail("the reloaded store cannot be saved");
	second = read_back(&second_len);
	if (first_len != second_len || memcmp(first, second, first_len) != 0)
		fail("saving is not stable across a round trip");

	/* Deleting the first account removes exactly that one. */
	if (n > 0) {
		char *name = strdup(users_name_at(again, 0));

		if (name == NULL)
			fail("out of memory");
		if (users_delete(again, name) != USERS_OK ||
		    users_exists(again, name) || users_count(again) != n - 1)
			fail("users_delete did not remove the account");
		check_accounts(again);
		free(name);
	}

	free(first);
	free(second);
	users_free(u);
	users_free(again);
	return 0;
}
