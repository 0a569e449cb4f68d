/*
 * Unit tests of the user store: parsing and atomic rewrite of the users
 * file, hash format and verification, name and password limits.  Each
 * test works in its own folder under one mkdtemp() base, which the
 * unchecked teardown (run in the parent) removes even when a forked
 * test exits on a failed assertion.
 */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "scratch.h"
#include "settings.h"
#include "users.h"

/* Hashes made outside this code (openssl passwd -6, Python crypt). */
#define H_ALICE	"$6$./xC07S1/lE2Cjby$nPjkOyAPiwIQNLkOj3Bmg9tfsY1HMjKSGmuqf" \
		"eQk1ZRUrVihEYVJvwwcTTNay.PQGAVNJPWVYe3UyU/l9.qws1"
#define P_ALICE	"secret1"
#define H_BOB	"$6$NtXy83Mvd03xgrht$TIbBvfJozmQb5V1eqbpgk.BjJOfH7kESK5MVZ" \
		"O5NU/61piyesdviHW/Bn1aJ0pLWJv/vbkYYWDDGGIMiJAdFG."
#define P_BOB	"hunter2"
#define H_CAROL	"$6$7rDCURMYNam3IOiy$DXTaA270uE/n9a88/YE7lDUlWGzOpNyv6yKYg" \
		"yEwgu7GgBYy5bwcDzJCFB3XlngQCToUcn/ROB2Fm.R6xSvGH1"
#define P_CAROL	"p@ss:w=rd"
/* A "rounds=" hash: its '=' must not make the line a setting. */
#define H_ROUNDS "$6$rounds=1000$abcdefghijklmnop$Sl0YX.ffoyvOz8c0Hw4xx63m" \
		"z/bnlxIu1CjqEMHSGUlwpeDnGfxLllfFQ5SNnfwFoYFY7fT3O4CzXAYC9ogAv1"
#define P_ROUNDS "roundpw"

/* Hashes of the right shape: 86 characters of the crypt(3) alphabet. */
#define H43	"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefg"
#define H86	H43 H43

#define CRYPT_CHARS \
	"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
#define ALNUM_CHARS \
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

/*
 * Comments, CRLF and LF endings, a blank and a whitespace-only line,
 * a known and an unknown setting, unsorted accounts, no final newline.
 */
static const char fixture[] =
    "# pop3server users, written by check_users\r\n"
    "\r\n"
    "max_users=50\r\n"
    "# a comment between records\n"
    "bob:" H_BOB "\r\n"
    "future_knob=7\n"
    " \t\n"
    "alice:" H_ALICE "\n"
    "rounds:" H_ROUNDS "\n"
    "carol.b-x_1:" H_CAROL;

static char base[64];
static char dir[128];
static char path[192];

static void
base_setup(void)
{
	scratch_make(base, sizeof(base), "users");
}

static void
base_teardown(void)
{
	scratch_remove(base);
}

/* A fresh folder for this test; path names "users" inside it. */
static void
new_dir(void)
{
	int n;

	ck_assert_msg(base[0] != '\0', "no base folder");
	n = snprintf(dir, sizeof(dir), "%s/t.XXXXXX", base);
	ck_assert(n > 0 && (size_t)n < sizeof(dir));
	ck_assert_ptr_nonnull(mkdtemp(dir));
	n = snprintf(path, sizeof(path), "%s/users", dir);
	ck_assert(n > 0 && (size_t)n < sizeof(path));
}

/*
 * The unit binary is linked with --wrap=mkstemp64: a test (here or in
 * check_mgmt.c) that sets fail_mkstemp_errno makes users_save()'s
 * temporary file fail to be created, with that errno.
 */
int fail_mkstemp_errno;
int __real_mkstemp64(char *template);
int __wrap_mkstemp64(char *template);

int
__wrap_mkstemp64(char *template)
{
	if (fail_mkstemp_errno != 0) {
		errno = fail_mkstemp_errno;
		return -1;
	}
	return __real_mkstemp64(template);
}

/* A leftover's name, as a version before 1.0 wrote it (path.tmp.<pid>). */
static void
tmp_path(char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s.tmp.%ld", path, (long)getpid());

	ck_assert(n > 0 && (size_t)n < len);
}

static void
write_file(const char *p, const char *data, size_t n)
{
	FILE *f = fopen(p, "wb");

	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(data, 1, n, f), n);
	ck_assert_int_eq(fclose(f), 0);
}

/* The whole file, NUL-terminated; the caller frees it. */
static char *
slurp(const char *p, size_t *len)
{
	size_t cap = 4096, n = 0;
	ssize_t r;
	char *buf;
	int fd;

	fd = open(p, O_RDONLY);
	ck_assert_int_ne(fd, -1);
	buf = malloc(cap);
	ck_assert_ptr_nonnull(buf);
	for (;;) {
		if (cap - n < 2) {
			cap *= 2;
			buf = realloc(buf, cap);
			ck_assert_ptr_nonnull(buf);
		}
		r = read(fd, buf + n, cap - n - 1);
		ck_assert_int_ge(r, 0);
		if (r == 0)
			break;
		n += (size_t)r;
	}
	(void)close(fd);
	buf[n] = '\0';
	*len = n;
	return buf;
}

static struct users *
load_text(const char *data, size_t n)
{
	struct users *u = NULL;
	unsigned line = 99;

	new_dir();
	write_file(path, data, n);
	ck_assert_int_eq(users_load(path, &u, &line), USERS_OK);
	ck_assert_ptr_nonnull(u);
	return u;
}

static struct users *
load_fixture(void)
{
	return load_text(fixture, sizeof(fixture) - 1);
}

/* Copies the hash of `name` in file text `data` into out. */
static void
hash_of(const char *data, const char *name, char *out, size_t len)
{
	const char *p = data, *e;
	size_t ln = strlen(name);

	for (;;) {
		if (strncmp(p, name, ln) == 0 && p[ln] == ':')
			break;
		p = strchr(p, '\n');
		ck_assert_msg(p != NULL, "no line for %s", name);
		p++;
	}
	p += ln + 1;
	e = strchr(p, '\n');
	ck_assert_ptr_nonnull(e);
	ck_assert_uint_lt((size_t)(e - p), len);
	memcpy(out, p, (size_t)(e - p));
	out[e - p] = '\0';
}

/* Names in dir other than "users"; any temporary file is a failure. */
static void
assert_only_users_file(void)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		ck_assert_msg(strcmp(de->d_name, "users") == 0,
		    "unexpected file %s", de->d_name);
		n++;
	}
	(void)closedir(d);
	ck_assert_int_eq(n, 1);
}

static void
expect_parse_error(const char *data, size_t n, unsigned want)
{
	/* Any non-NULL value: users_load() must reset it on failure. */
	struct users *u = (struct users *)(void *)&n;
	unsigned line = 0;

	new_dir();
	write_file(path, data, n);
	ck_assert_int_eq(users_load(path, &u, &line), USERS_PARSE);
	ck_assert_msg(line == want, "line %u, want %u, for \"%s\"", line,
	    want, data);
	ck_assert_ptr_null(u);
}

START_TEST(test_load_fixture)
{
	struct users *u = load_fixture();

	ck_assert_uint_eq(users_count(u), 4);
	ck_assert_str_eq(users_name_at(u, 0), "alice");
	ck_assert_str_eq(users_name_at(u, 1), "bob");
	ck_assert_str_eq(users_name_at(u, 2), "carol.b-x_1");
	ck_assert_str_eq(users_name_at(u, 3), "rounds");
	ck_assert_ptr_null(users_name_at(u, 4));
	ck_assert_uint_eq(users_setting(u, "max_users", 1), 50);
	ck_assert_uint_eq(users_setting(u, "future_knob", 1), 7);
	ck_assert_uint_eq(users_setting(u, "absent", 1234), 1234);
	ck_assert_uint_eq(users_max(u), 50);

	ck_assert(users_verify(u, "alice", P_ALICE));
	ck_assert(users_verify(u, "bob", P_BOB));
	ck_assert(users_verify(u, "carol.b-x_1", P_CAROL));
	ck_assert(users_verify(u, "rounds", P_ROUNDS));

	ck_assert(!users_verify(u, "alice", P_BOB));
	ck_assert(!users_verify(u, "alice", "secret"));
	ck_assert(!users_verify(u, "alice", "secret1 "));
	ck_assert(!users_verify(u, "alice", "Secret1"));
	ck_assert(!users_verify(u, "alice", ""));
	ck_assert(!users_verify(u, "Alice", P_ALICE));
	ck_assert(!users_verify(u, "dave", P_ALICE));
	ck_assert(!users_verify(u, "dave", ""));
	ck_assert(!users_verify(u, "", P_ALICE));
	ck_assert(!users_verify(u, NULL, P_ALICE));
	users_free(u);
}
END_TEST

/* Where a listing that stopped at a name goes on, that name or not. */
START_TEST(test_index_after)
{
	struct users *u = load_fixture();

	ck_assert_uint_eq(users_index_after(u, ""), 0);
	ck_assert_uint_eq(users_index_after(u, "alice"), 1);
	ck_assert_uint_eq(users_index_after(u, "b"), 1);	/* gone */
	ck_assert_uint_eq(users_index_after(u, "bob"), 2);
	ck_assert_uint_eq(users_index_after(u, "rounds"), 4);
	ck_assert_uint_eq(users_index_after(u, "zz"), 4);
	users_free(u);
}
END_TEST

START_TEST(test_missing_file)
{
	struct users *u = NULL;
	unsigned line = 99;
	struct stat st;

	new_dir();
	ck_assert_int_eq(users_load(path, &u, &line), USERS_OK);
	ck_assert_ptr_nonnull(u);
	ck_assert_uint_eq(line, 0);
	ck_assert_uint_eq(users_count(u), 0);
	ck_assert_ptr_null(users_name_at(u, 0));
	ck_assert_uint_eq(users_max(u), DEFAULT_MAX_USERS);
	ck_assert(!users_verify(u, "alice", P_ALICE));
	ck_assert_int_eq(stat(path, &st), -1);
	ck_assert_int_eq(users_save(u), USERS_OK);
	ck_assert_int_eq(stat(path, &st), 0);
	users_free(u);
	users_free(NULL);

	/* A folder where the file should be is an I/O error, not empty. */
	u = NULL;
	ck_assert_int_eq(users_load(dir, &u, NULL), USERS_IO);
	ck_assert_ptr_null(u);
}
END_TEST

static void
assert_sha512_format(const char *h)
{
	ck_assert_msg(strncmp(h, "$6$", 3) == 0, "not $6$: %s", h);
	ck_assert_uint_eq(strspn(h + 3, CRYPT_CHARS), 16);
	ck_assert_int_eq(h[3 + 16], '$');
	ck_assert_uint_eq(strlen(h + 20), 86);
	ck_assert_uint_eq(strspn(h + 20, CRYPT_CHARS), 86);
}

START_TEST(test_hash_format)
{
	char hd[256], he[256], hd2[256];
	struct users *u = NULL;
	size_t n;
	char *data;

	new_dir();
	ck_assert_int_eq(users_load(path, &u, NULL), USERS_OK);
	ck_assert_int_eq(users_add(u, "dave", "same-pass"), USERS_OK);
	ck_assert_int_eq(users_add(u, "erin", "same-pass"), USERS_OK);
	ck_assert_int_eq(users_save(u), USERS_OK);
	data = slurp(path, &n);
	ck_assert_ptr_null(strstr(data, "same-pass"));
	hash_of(data, "dave", hd, sizeof(hd));
	hash_of(data, "erin", he, sizeof(he));
	free(data);
	assert_sha512_format(hd);
	assert_sha512_format(he);
	/* Same password, fresh salts: different hashes. */
	ck_assert_str_ne(hd, he);
	ck_assert_int_ne(strncmp(hd + 3, he + 3, 16), 0);
	ck_assert(users_verify(u, "dave", "same-pass"));
	ck_assert(users_verify(u, "erin", "same-pass"));

	/* Setting the same password again also changes the salt. */
	ck_assert_int_eq(users_set_password(u, "dave", "same-pass"),
	    USERS_OK);
	ck_assert_int_eq(users_save(u), USERS_OK);
	data = slurp(path, &n);
	hash_of(data, "dave", hd2, sizeof(hd2));
	free(data);
	assert_sha512_format(hd2);
	ck_assert_str_ne(hd, hd2);
	ck_assert(users_verify(u, "dave", "same-pass"));
	users_free(u);
}
END_TEST

START_TEST(test_add_delete)
{
	struct users *u = NULL;

	new_dir();
	ck_assert_int_eq(users_load(path, &u, NULL), USERS_OK);
	ck_assert_int_eq(users_add(u, "mike", "pw-m"), USERS_OK);
	ck_assert_int_eq(users_add(u, "charlie", "pw-c"), USERS_OK);
	ck_assert_int_eq(users_add(u, "alpha", "pw-a"), USERS_OK);
	ck_assert_int_eq(users_add(u, "Zulu", "pw-z"), USERS_OK);
	ck_assert_uint_eq(users_count(u), 4);
	/* Byte order: upper case sorts before lower case. */
	ck_assert_str_eq(users_name_at(u, 0), "Zulu");
	ck_assert_str_eq(users_name_at(u, 1), "alpha");
	ck_assert_str_eq(users_name_at(u, 2), "charlie");
	ck_assert_str_eq(users_name_at(u, 3), "mike");
	ck_assert(users_exists(u, "charlie"));
	ck_assert(!users_exists(u, "Charlie"));
	ck_assert(!users_exists(u, "bravo"));

	ck_assert_int_eq(users_add(u, "charlie", "other"), USERS_EXISTS);
	ck_assert(users_verify(u, "charlie", "pw-c"));
	ck_assert_int_eq(users_add(u, ".x", "pw"), USERS_BADNAME);
	ck_assert_int_eq(users_add(u, "x", "has space"), USERS_BADPASS);
	ck_assert_int_eq(users_add(u, "x", ""), USERS_BADPASS);
	ck_assert_uint_eq(users_count(u), 4);

	ck_assert_int_eq(users_set_password(u, "charlie", "new-c"), USERS_OK);
	ck_assert(!users_verify(u, "charlie", "pw-c"));
	ck_assert(users_verify(u, "charlie", "new-c"));
	ck_assert_int_eq(users_set_password(u, "charlie", "bad pass"),
	    USERS_BADPASS);
	ck_assert(users_verify(u, "charlie", "new-c"));
	ck_assert_int_eq(users_set_password(u, "bravo", "pw"),
	    USERS_NOTFOUND);

	ck_assert_int_eq(users_delete(u, "charlie"), USERS_OK);
	ck_assert_int_eq(users_delete(u, "charlie"), USERS_NOTFOUND);
	ck_assert_int_eq(users_delete(u, "nobody"), USERS_NOTFOUND);
	ck_assert(!users_exists(u, "charlie"));
	ck_assert(!users_verify(u, "charlie", "new-c"));
	ck_assert_uint_eq(users_count(u), 3);
	ck_assert_str_eq(users_name_at(u, 0), "Zulu");
	ck_assert_str_eq(users_name_at(u, 1), "alpha");
	ck_assert_str_eq(users_name_at(u, 2), "mike");
	ck_assert_int_eq(users_delete(u, "Zulu"), USERS_OK);
	ck_assert_int_eq(users_delete(u, "mike"), USERS_OK);
	ck_assert_str_eq(users_name_at(u, 0), "alpha");
	ck_assert(users_verify(u, "alpha", "pw-a"));
	ck_assert_int_eq(users_delete(u, "alpha"), USERS_OK);
	ck_assert_uint_eq(users_count(u), 0);
	/* A deleted name can come back. */
	ck_assert_int_eq(users_add(u, "charlie", "again"), USERS_OK);
	ck_assert(users_verify(u, "charlie", "again"));
	users_free(u);
}
END_TEST

START_TEST(test_settings)
{
	struct users *u = load_fixture(), *v = NULL;

	ck_assert_uint_eq(users_setting(u, "idle_timeout", 600), 600);
	ck_assert_int_eq(users_set_setting(u, "idle_timeout", 30), USERS_OK);
	ck_assert_uint_eq(users_setting(u, "idle_timeout", 600), 30);
	ck_assert_int_eq(users_set_setting(u, "idle_timeout", 45), USERS_OK);
	ck_assert_uint_eq(users_setting(u, "idle_timeout", 600), 45);
	ck_assert_int_eq(users_set_setting(u, "max_users",
	    SETTING_MAX_USERS_MAX), USERS_OK);
	ck_assert_int_eq(users_set_setting(u, "Bad", 1), USERS_PARSE);
	ck_assert_int_eq(users_set_setting(u, "a=b", 1), USERS_PARSE);
	ck_assert_int_eq(users_set_setting(u, "", 1), USERS_PARSE);
	ck_assert_uint_eq(users_setting(u, "Bad", 5), 5);
	ck_assert_int_eq(users_save(u), USERS_OK);
	users_free(u);

	ck_assert_int_eq(users_load(path, &v, NULL), USERS_OK);
	ck_assert_uint_eq(users_setting(v, "idle_timeout", 600), 45);
	ck_assert_uint_eq(users_setting(v, "max_users", 1),
	    SETTING_MAX_USERS_MAX);
	/* Unknown keys survive a rewrite. */
	ck_assert_uint_eq(users_setting(v, "future_knob", 1), 7);
	users_free(v);
}
END_TEST

START_TEST(test_save_reload)
{
	struct users *u = load_fixture(), *v = NULL;
	char *first, *second;
	size_t n1, n2, i;
	struct stat st;
	mode_t old;

	ck_assert_int_eq(users_add(u, "dave", "pw-dave"), USERS_OK);
	ck_assert_int_eq(users_set_setting(u, "max_connec", 77), USERS_OK);
	/* Under a umask that would give 0400 the mode must still be 0600. */
	old = umask(0277);
	ck_assert_int_eq(users_save(u), USERS_OK);
	(void)umask(old);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	assert_only_users_file();

	first = slurp(path, &n1);
	ck_assert_int_eq(first[0], '#');
	ck_assert_ptr_nonnull(strstr(strtok(first, "\n"), "pop3server"));
	free(first);
	first = slurp(path, &n1);
	ck_assert_ptr_null(strstr(first, "pw-dave"));

	ck_assert_int_eq(users_load(path, &v, NULL), USERS_OK);
	ck_assert_uint_eq(users_count(v), users_count(u));
	for (i = 0; i < users_count(u); i++)
		ck_assert_str_eq(users_name_at(v, i), users_name_at(u, i));
	ck_assert(users_verify(v, "alice", P_ALICE));
	ck_assert(users_verify(v, "bob", P_BOB));
	ck_assert(users_verify(v, "carol.b-x_1", P_CAROL));
	ck_assert(users_verify(v, "rounds", P_ROUNDS));
	ck_assert(users_verify(v, "dave", "pw-dave"));
	ck_assert(!users_verify(v, "dave", "pw-alice"));
	ck_assert_uint_eq(users_setting(v, "max_users", 1), 50);
	ck_assert_uint_eq(users_setting(v, "future_knob", 1), 7);
	ck_assert_uint_eq(users_setting(v, "max_connec", 1), 77);

	/* The reloaded store writes the same bytes back. */
	ck_assert_int_eq(users_save(v), USERS_OK);
	second = slurp(path, &n2);
	ck_assert_uint_eq(n1, n2);
	ck_assert_mem_eq(first, second, n1);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	assert_only_users_file();
	free(first);
	free(second);
	users_free(u);
	users_free(v);
}
END_TEST

START_TEST(test_random_password)
{
	size_t counts[256] = { 0 }, i, j, first8 = 0, next8 = 0;
	char pw[65], pw2[65], one[1];

	for (i = 0; i < 1000; i++) {
		ck_assert(users_random_password(pw, sizeof(pw)));
		ck_assert_uint_eq(strlen(pw), 64);
		ck_assert_uint_eq(strspn(pw, ALNUM_CHARS), 64);
		ck_assert(users_valid_password(pw));
		for (j = 0; j < 64; j++)
			counts[(unsigned char)pw[j]]++;
	}
	for (j = 0; j < 62; j++)
		ck_assert_msg(counts[(unsigned char)ALNUM_CHARS[j]] > 0,
		    "never drew %c", ALNUM_CHARS[j]);
	/*
	 * 256 % 62 == 8: a plain modulo would draw the first 8 characters
	 * 5/4 as often as the rest (about 2000 more of 64000).  Unbiased,
	 * the difference has a deviation of about 130.
	 */
	for (j = 0; j < 8; j++) {
		first8 += counts[(unsigned char)ALNUM_CHARS[j]];
		next8 += counts[(unsigned char)ALNUM_CHARS[8 + j]];
	}
	ck_assert_msg((first8 > next8 ? first8 - next8 : next8 - first8) < 800,
	    "biased: %zu vs %zu", first8, next8);

	ck_assert(users_random_password(pw2, sizeof(pw2)));
	ck_assert_str_ne(pw, pw2);
	ck_assert(users_random_password(pw, 17));
	ck_assert_uint_eq(strlen(pw), 16);
	one[0] = 'x';
	ck_assert(users_random_password(one, 1));
	ck_assert_int_eq(one[0], '\0');
	ck_assert(!users_random_password(pw, 0));
}
END_TEST

START_TEST(test_name_limits)
{
	char name[USER_NAME_MAX + 2];
	struct users *u = NULL;

	memset(name, 'a', sizeof(name));
	name[USER_NAME_MAX - 1] = '\0';
	ck_assert(users_valid_name(name));
	name[USER_NAME_MAX - 1] = 'a';
	name[USER_NAME_MAX] = '\0';
	ck_assert(users_valid_name(name));
	name[USER_NAME_MAX] = 'a';
	name[USER_NAME_MAX + 1] = '\0';
	ck_assert(!users_valid_name(name));

	ck_assert(users_valid_name("a"));
	ck_assert(users_valid_name("A-Z_0.9"));
	ck_assert(users_valid_name("a..b"));
	ck_assert(users_valid_name("-dash"));
	ck_assert(!users_valid_name(""));
	ck_assert(!users_valid_name(NULL));
	ck_assert(!users_valid_name("."));
	ck_assert(!users_valid_name(".."));
	ck_assert(!users_valid_name(".hidden"));
	ck_assert(!users_valid_name("/"));
	ck_assert(!users_valid_name("a/b"));
	ck_assert(!users_valid_name("../etc"));
	ck_assert(!users_valid_name("a b"));
	ck_assert(!users_valid_name("a@b"));
	ck_assert(!users_valid_name("a:b"));
	ck_assert(!users_valid_name("a=b"));
	ck_assert(!users_valid_name("a\tb"));
	ck_assert(!users_valid_name("a\\b"));
	ck_assert(!users_valid_name("\xc3\xa9t\xc3\xa9"));

	new_dir();
	ck_assert_int_eq(users_load(path, &u, NULL), USERS_OK);
	ck_assert_int_eq(users_add(u, name, "pw"), USERS_BADNAME);
	name[USER_NAME_MAX] = '\0';
	ck_assert_int_eq(users_add(u, name, "pw"), USERS_OK);
	ck_assert(users_verify(u, name, "pw"));
	ck_assert_int_eq(users_add(u, "a/b", "pw"), USERS_BADNAME);
	ck_assert_int_eq(users_add(u, "..", "pw"), USERS_BADNAME);
	ck_assert_int_eq(users_add(u, "", "pw"), USERS_BADNAME);
	ck_assert_uint_eq(users_count(u), 1);
	users_free(u);
}
END_TEST

START_TEST(test_password_limits)
{
	char pw[PASSWORD_MAX + 2];
	struct users *u = NULL;

	memset(pw, 'p', sizeof(pw));
	pw[PASSWORD_MAX] = '\0';
	ck_assert(users_valid_password(pw));
	pw[PASSWORD_MAX] = 'p';
	pw[PASSWORD_MAX + 1] = '\0';
	ck_assert(!users_valid_password(pw));

	ck_assert(users_valid_password("x"));
	ck_assert(users_valid_password("!~\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}"));
	ck_assert(!users_valid_password(""));
	ck_assert(!users_valid_password(NULL));
	ck_assert(!users_valid_password(" "));
	ck_assert(!users_valid_password("a b"));
	ck_assert(!users_valid_password("a\tb"));
	ck_assert(!users_valid_password("ab\r"));
	ck_assert(!users_valid_password("\x7f"));
	ck_assert(!users_valid_password("\xc3\xa9"));

	new_dir();
	ck_assert_int_eq(users_load(path, &u, NULL), USERS_OK);
	ck_assert_int_eq(users_add(u, "long", pw), USERS_BADPASS);
	pw[PASSWORD_MAX] = '\0';
	ck_assert_int_eq(users_add(u, "long", pw), USERS_OK);
	ck_assert(users_verify(u, "long", pw));
	pw[PASSWORD_MAX - 1] = 'q';
	ck_assert(!users_verify(u, "long", pw));
	users_free(u);
}
END_TEST

START_TEST(test_full)
{
	struct users *u = NULL;

	new_dir();
	ck_assert_int_eq(users_load(path, &u, NULL), USERS_OK);
	ck_assert_uint_eq(users_max(u), DEFAULT_MAX_USERS);
	ck_assert_int_eq(users_set_setting(u, "max_users", 2), USERS_OK);
	ck_assert_uint_eq(users_max(u), 2);
	ck_assert_int_eq(users_add(u, "u1", "pw"), USERS_OK);
	ck_assert_int_eq(users_add(u, "u2", "pw"), USERS_OK);
	ck_assert_int_eq(users_add(u, "u3", "pw"), USERS_FULL);
	ck_assert(!users_exists(u, "u3"));
	/* Name and existence errors come before the limit. */
	ck_assert_int_eq(users_add(u, "u1", "pw"), USERS_EXISTS);
	ck_assert_int_eq(users_add(u, ".u", "pw"), USERS_BADNAME);
	ck_assert_int_eq(users_delete(u, "u1"), USERS_OK);
	ck_assert_int_eq(users_add(u, "u3", "pw"), USERS_OK);
	ck_assert_uint_eq(users_count(u), 2);
	ck_assert_int_eq(users_set_setting(u, "max_users", 0), USERS_OK);
	ck_assert_int_eq(users_add(u, "u4", "pw"), USERS_FULL);
	ck_assert_int_eq(users_set_setting(u, "max_users", 3), USERS_OK);
	ck_assert_int_eq(users_add(u, "u4", "pw"), USERS_OK);
	ck_assert_uint_eq(users_count(u), 3);
	users_free(u);
}
END_TEST

/* Each text and the line its error is on. */
static const struct {
	const char	*text;
	unsigned	 line;
} bad_files[] = {
	{ "# c\nalice:" H_ALICE "\nthis is junk\n", 3 },
	/* duplicates, the second without a final LF */
	{ "alice:" H_ALICE "\nbob:" H_BOB "\nalice:" H_BOB "\n", 3 },
	{ "bob:" H_BOB "\nalice:" H_ALICE "\r\nbob:" H_ALICE, 3 },
	{ "\n\n.bad:" H_ALICE "\n", 3 },			/* bad name */
	{ "a b:" H_ALICE "\n", 1 },
	{ "a/b:" H_ALICE "\n", 1 },
	{ ":" H_ALICE "\n", 1 },				/* empty name */
	{ "alice:\n", 1 },				/* empty hash */
	{ "alice:has space\n", 1 },
	{ "alice:x:y\n", 1 },
	{ "# ok\r\njunk\r\n", 2 },
	{ "max_users=3\nMax=3\n", 2 },			/* bad key */
	{ "=3\n", 1 },
	{ "max_users=\n", 1 },
	{ "max_users=-1\n", 1 },
	{ "max_users=+1\n", 1 },
	{ "max_users= 1\n", 1 },
	{ "max_users=12x\n", 1 },
	{ "max_users=99999999999999999999999\n", 1 },	/* overflow */
	{ "max_users=1\nmax_users=2\n", 2 },		/* duplicate key */
	{ "# a\n\n#b\nalice:" H_ALICE "\n\tbob:" H_BOB "\n", 5 }, /* indented */
	{ "just words", 1 },
	/* hashes that are not what crypt(3) makes of "$6$" */
	{ "admin:$6$ta2oC/osHnU6OioU$JWmU/a9KSK/Iua\n", 1 },	/* cut */
	{ "# c\nalice:$6$trunc\n", 2 },
	{ "alice:" H_ALICE "x\n", 1 },		/* 87 characters */
	{ "alice:$6$ab$" H43 "123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefg*\n",
	    1 },					/* 85 and a '*' */
	{ "alice:$6$$" H86 "\n", 1 },			/* no salt */
	{ "alice:$6$abcdefghijklmnopq$" H86 "\n", 1 },	/* 17 of salt */
	{ "alice:$6$ab!d$" H86 "\n", 1 },		/* salt character */
	{ "alice:$6$rounds=$ab$" H86 "\n", 1 },		/* no rounds */
	{ "alice:$6$rounds=1x$ab$" H86 "\n", 1 },
	{ "alice:$5$abcd$" H86 "\n", 1 },		/* SHA-256 */
	{ "alice:!\n", 1 },				/* no password */
	/* settings outside what MGMT accepts */
	{ "idle_timeout=0\n", 1 },
	{ "# c\nidle_timeout=9\n", 2 },
	{ "idle_timeout=86401\n", 1 },
	{ "max_users=0\n", 1 },
	{ "max_users=1000000001\n", 1 },
	{ "max_connections=0\n", 1 },
	/* max_users below the accounts, before or after them */
	{ "max_users=1\nalice:" H_ALICE "\nbob:" H_BOB "\n", 1 },
	{ "alice:" H_ALICE "\nbob:" H_BOB "\n# c\nmax_users=1\n", 4 },
};

START_TEST(test_parse_error_table)
{
	expect_parse_error(bad_files[_i].text, strlen(bad_files[_i].text),
	    bad_files[_i].line);
}
END_TEST

/* The other side of each limit the table refuses. */
START_TEST(test_setting_and_hash_limits)
{
	static const char low[] =
	    "idle_timeout=10\nmax_users=2\nmax_connections=1\n"
	    "a:$6$a$" H86 "\n"
	    "b:$6$abcdefghijklmnop$" H86 "\n";
	static const char high[] =
	    "idle_timeout=86400\nmax_users=1000000000\n"
	    "max_connections=99999999999\nc:$6$rounds=5000$./$" H86 "\n";
	struct users *u = load_text(low, sizeof(low) - 1);

	ck_assert_uint_eq(users_count(u), 2);
	ck_assert_uint_eq(users_max(u), 2);
	users_free(u);
	u = load_text(high, sizeof(high) - 1);
	ck_assert_uint_eq(users_setting(u, "idle_timeout", 0), 86400);
	ck_assert_uint_eq(users_max(u), SETTING_MAX_USERS_MAX);
	ck_assert(users_exists(u, "c"));
	users_free(u);
}
END_TEST

START_TEST(test_parse_error_binary)
{
	static const char nul_line[] = "alice:" H_ALICE "\nbob:" H_BOB
	    "\0y\n";
	static const char tail[] = ":" H_ALICE "\n";
	char text[USER_NAME_MAX + 512];
	struct users *u = NULL;

	expect_parse_error(nul_line, sizeof(nul_line) - 1, 2);

	memset(text, 'n', USER_NAME_MAX + 1);
	memcpy(text + USER_NAME_MAX + 1, tail, sizeof(tail));
	expect_parse_error(text, strlen(text), 1);
	/* One character less is a good name. */
	memmove(text + 1, text + 2, strlen(text + 2) + 1);
	u = load_text(text, strlen(text));
	ck_assert_uint_eq(users_count(u), 1);
	users_free(u);

	/* No final newline, mixed endings, hash with '=': all fine. */
	(void)snprintf(text, sizeof(text), "a:%s\r\nb=2\nc:%s", H_ALICE,
	    H_ROUNDS);
	u = load_text(text, strlen(text));
	ck_assert_uint_eq(users_count(u), 2);
	ck_assert(users_exists(u, "c"));
	ck_assert_uint_eq(users_setting(u, "b", 0), 2);
	users_free(u);

	/* An empty file is an empty store. */
	u = load_text("", 0);
	ck_assert_uint_eq(users_count(u), 0);
	users_free(u);
}
END_TEST

START_TEST(test_many_users)
{
	const size_t n = 5000;
	char *text, name[16], prev[16];
	struct users *u;
	size_t i, len = 0;

	text = malloc(n * (16 + sizeof(H_BOB)) + 32);
	ck_assert_ptr_nonnull(text);
	/* Descending: every insert goes to the front. */
	for (i = n; i-- > 0;)
		len += (size_t)sprintf(text + len, "u%05zu:%s\n", i, H_BOB);
	len += (size_t)sprintf(text + len, "max_users=%zu\n", n);
	u = load_text(text, len);
	free(text);
	ck_assert_uint_eq(users_count(u), n);
	prev[0] = '\0';
	for (i = 0; i < n; i++) {
		(void)snprintf(name, sizeof(name), "u%05zu", i);
		ck_assert_str_eq(users_name_at(u, i), name);
		ck_assert(strcmp(prev, name) < 0);
		memcpy(prev, name, sizeof(name));
	}
	ck_assert(users_exists(u, "u00000"));
	ck_assert(users_exists(u, "u04999"));
	ck_assert(!users_exists(u, "u05000"));
	ck_assert(!users_exists(u, "u0"));
	ck_assert(!users_verify(u, "u00001", "x"));
	ck_assert_int_eq(users_add(u, "extra", "pw"), USERS_FULL);
	ck_assert_int_eq(users_delete(u, "u02500"), USERS_OK);
	ck_assert_str_eq(users_name_at(u, 2500), "u02501");
	ck_assert_int_eq(users_add(u, "u02500", "pw"), USERS_OK);
	ck_assert_str_eq(users_name_at(u, 2500), "u02500");
	ck_assert(users_verify(u, "u02500", "pw"));
	users_free(u);
}
END_TEST

START_TEST(test_save_io_failure)
{
	struct users *u = load_fixture(), *v = NULL;
	char *before, *after, bad[256];
	size_t nb, na;
	struct stat st;

	ck_assert_int_eq(users_save(u), USERS_OK);
	before = slurp(path, &nb);
	ck_assert_int_eq(users_delete(u, "bob"), USERS_OK);
	ck_assert_int_eq(users_set_setting(u, "max_users", 9), USERS_OK);

	/* The temporary file cannot be created: the old file stays. */
	fail_mkstemp_errno = EEXIST;
	errno = 0;
	ck_assert_int_eq(users_save(u), USERS_IO);
	fail_mkstemp_errno = 0;
	ck_assert_int_eq(errno, EEXIST);
	after = slurp(path, &na);
	ck_assert_uint_eq(na, nb);
	ck_assert_mem_eq(after, before, nb);
	free(after);
	assert_only_users_file();

	/* The old file still loads with the old accounts. */
	ck_assert_int_eq(users_load(path, &v, NULL), USERS_OK);
	ck_assert(users_exists(v, "bob"));
	ck_assert_uint_eq(users_setting(v, "max_users", 1), 50);
	users_free(v);

	/* With the obstacle gone the same store saves. */
	ck_assert_int_eq(users_save(u), USERS_OK);
	assert_only_users_file();
	ck_assert_int_eq(users_load(path, &v, NULL), USERS_OK);
	ck_assert(!users_exists(v, "bob"));
	ck_assert_uint_eq(users_setting(v, "max_users", 1), 9);
	users_free(v);
	users_free(u);
	free(before);

	/* A file in a folder that does not exist. */
	(void)snprintf(bad, sizeof(bad), "%s/no/such/users", dir);
	u = NULL;
	ck_assert_int_eq(users_load(bad, &u, NULL), USERS_OK);
	ck_assert_int_eq(users_add(u, "x", "pw"), USERS_OK);
	errno = 0;
	ck_assert_int_eq(users_save(u), USERS_IO);
	ck_assert_int_eq(errno, ENOENT);
	users_free(u);
	assert_only_users_file();

	/*
	 * A failure after the temporary file exists (rename onto a folder)
	 * must remove it.
	 */
	new_dir();
	u = NULL;
	ck_assert_int_eq(users_load(path, &u, NULL), USERS_OK);
	ck_assert_int_eq(users_add(u, "x", "pw"), USERS_OK);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	(void)snprintf(bad, sizeof(bad), "%s/keep", path);
	write_file(bad, "k", 1);
	errno = 0;
	ck_assert_int_eq(users_save(u), USERS_IO);
	ck_assert_int_ne(errno, 0);
	assert_only_users_file();
	ck_assert_int_eq(stat(bad, &st), 0);
	users_free(u);
}
END_TEST

START_TEST(test_stale_temp)
{
	struct users *u = load_fixture(), *v = NULL;
	static const char junk[] = "half a file: no\nbroken";
	char tmp[256];
	struct stat st;

	ck_assert_int_eq(users_save(u), USERS_OK);
	users_free(u);

	/* A crash between temporary write and rename left this behind. */
	tmp_path(tmp, sizeof(tmp));
	write_file(tmp, junk, sizeof(junk) - 1);
	ck_assert_int_eq(users_load(path, &u, NULL), USERS_OK);
	ck_assert_uint_eq(users_count(u), 4);
	ck_assert(users_verify(u, "alice", P_ALICE));
	ck_assert_int_eq(users_add(u, "dave", "pw-dave"), USERS_OK);
	ck_assert_int_eq(users_save(u), USERS_OK);
	ck_assert_int_eq(lstat(tmp, &st), -1);
	ck_assert_int_eq(errno, ENOENT);
	assert_only_users_file();
	ck_assert_int_eq(users_load(path, &v, NULL), USERS_OK);
	ck_assert_uint_eq(users_count(v), 5);
	ck_assert(users_verify(v, "dave", "pw-dave"));
	users_free(v);
	users_free(u);
}
END_TEST

/* path.tmp.<pid> with the given pid, in buf. */
static void
tmp_path_of(char *buf, size_t len, long pid)
{
	int n = snprintf(buf, len, "%s.tmp.%ld", path, pid);

	ck_assert(n > 0 && (size_t)n < len);
}

/* True when another process holds a write lock on the file at p. */
static bool
locked_by_other(const char *p)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	int fd = open(p, O_RDONLY);
	bool locked = fd != -1 && fcntl(fd, F_GETLK, &fl) == 0 &&
	    fl.l_type != F_UNLCK;

	if (fd != -1)
		(void)close(fd);
	return locked;
}

/*
 * A child that holds a write lock on the file at p, as a save under way
 * does, until told to go; its pid, once the lock is taken.
 */
static pid_t
hold_lock(const char *p, int *go)
{
	int ready[2], wait_go[2];
	char c;
	pid_t child;

	ck_assert_int_eq(pipe(ready), 0);
	ck_assert_int_eq(pipe(wait_go), 0);
	child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
		int fd = open(p, O_WRONLY);

		/* Its own copy of the write end would keep the read waiting. */
		(void)close(wait_go[1]);
		if (fd == -1 || fcntl(fd, F_SETLK, &fl) == -1)
			_exit(1);
		(void)write(ready[1], "r", 1);
		(void)read(wait_go[0], &c, 1);
		_exit(0);
	}
	ck_assert_int_eq(read(ready[0], &c, 1), 1);
	(void)close(ready[0]);
	(void)close(ready[1]);
	(void)close(wait_go[0]);
	*go = wait_go[1];
	return child;
}

/*
 * A leftover is removed unless a live save holds its lock: whatever
 * process its pid names now (pid 1 is alive), and a locked one stays.
 */
START_TEST(test_load_removes_dead_temps)
{
	struct users *u = load_fixture();
	char dead[256], live[256], other[256], cousin[256];
	char orig[256], dated[256], made[256];
	struct stat st;
	pid_t child;
	int status, go;

	ck_assert_int_eq(users_save(u), USERS_OK);
	users_free(u);
	/* Its pid lives on in another process: no lock, a dead save. */
	tmp_path_of(dead, sizeof(dead), 1);
	write_file(dead, "hash:$6$left$behind\n", 20);
	/* Another server on the same file, mid-save. */
	tmp_path_of(live, sizeof(live), 2);
	write_file(live, "x", 1);
	child = hold_lock(live, &go);
	/* Not ours by name: "users.tmp.1-2", "users2.tmp.1". */
	(void)snprintf(other, sizeof(other), "%s.tmp.1-2", path);
	write_file(other, "x", 1);
	(void)snprintf(cousin, sizeof(cousin), "%s2.tmp.1", path);
	write_file(cousin, "x", 1);
	/* An operator's copies; and mkstemp's name, unlocked, is ours. */
	(void)snprintf(orig, sizeof(orig), "%s.tmp.orig", path);
	write_file(orig, "x", 1);
	(void)snprintf(dated, sizeof(dated), "%s.tmp.20261130", path);
	write_file(dated, "x", 1);
	(void)snprintf(made, sizeof(made), "%s.tmp.Ab3dE9", path);
	write_file(made, "x", 1);

	ck_assert_int_eq(users_load(path, &u, NULL), USERS_OK);
	ck_assert_int_eq(lstat(dead, &st), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_int_eq(lstat(live, &st), 0);
	ck_assert_int_eq(lstat(other, &st), 0);
	ck_assert_int_eq(lstat(cousin, &st), 0);
	ck_assert_int_eq(lstat(orig, &st), 0);
	ck_assert_int_eq(lstat(dated, &st), 0);
	ck_assert_int_eq(lstat(made, &st), -1);
	ck_assert_uint_eq(users_count(u), 4);
	users_free(u);

	/* The saver gone, even as an unreaped zombie, its leftover goes. */
	(void)close(go);
	for (int i = 0; locked_by_other(live); i++) {
		ck_assert_int_lt(i, 499);
		(void)nanosleep(&(struct timespec){ 0, 10000000 }, NULL);
	}
	ck_assert_int_eq(users_load(path, &u, NULL), USERS_OK);
	ck_assert_int_eq(lstat(live, &st), -1);
	users_free(u);
	ck_assert_int_eq(waitpid(child, &status, 0), child);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_int_eq(unlink(other), 0);
	ck_assert_int_eq(unlink(cousin), 0);
	ck_assert_int_eq(unlink(orig), 0);
	ck_assert_int_eq(unlink(dated), 0);
	assert_only_users_file();
}
END_TEST

/*
 * A leftover's name that is a symlink is removed, not what it points
 * to, even when that is a file a live save holds locked: the lock of
 * another file says nothing of this name.
 */
START_TEST(test_leftover_symlink)
{
	struct users *u = load_fixture();
	char link[256], victim[256], *data;
	size_t n;
	struct stat st;
	pid_t child;
	int status, go;

	ck_assert_int_eq(users_save(u), USERS_OK);
	users_free(u);
	(void)snprintf(victim, sizeof(victim), "%s/../victim", dir);
	write_file(victim, "keep me\n", 8);
	child = hold_lock(victim, &go);
	(void)snprintf(link, sizeof(link), "%s.tmp.Ab3dE9", path);
	ck_assert_int_eq(symlink(victim, link), 0);
	ck_assert_int_eq(users_load(path, &u, NULL), USERS_OK);
	ck_assert_int_eq(lstat(link, &st), -1);
	ck_assert_int_eq(errno, ENOENT);
	(void)close(go);
	ck_assert_int_eq(waitpid(child, &status, 0), child);
	data = slurp(victim, &n);
	ck_assert_str_eq(data, "keep me\n");
	free(data);
	ck_assert_int_eq(unlink(victim), 0);
	assert_only_users_file();
	users_free(u);
}
END_TEST

/*
 * And --wrap=fsync: while users_save() syncs its temporary file, a
 * forked process (another server's load) asks whether it is locked;
 * and a test here or in check_mgmt.c makes the sync of a folder fail.
 */
int __real_fsync(int fd);
int __wrap_fsync(int fd);
static int temp_locked = -1;	/* -1: not asked */
int fail_dir_fsync_errno;

/* 1 when a file "users.tmp.*" in dir is write-locked by another process. */
static int
probe_temp_lock(void)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int locked = 0;

	while (d != NULL && (de = readdir(d)) != NULL) {
		char p[512];

		if (strncmp(de->d_name, "users.tmp.", 10) != 0)
			continue;
		(void)snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (locked_by_other(p))
			locked = 1;
	}
	if (d != NULL)
		(void)closedir(d);
	return locked;
}

int
__wrap_fsync(int fd)
{
	struct stat st;
	pid_t child;
	int status;

	if (fail_dir_fsync_errno != 0 && fstat(fd, &st) == 0 &&
	    S_ISDIR(st.st_mode)) {
		errno = fail_dir_fsync_errno;
		return -1;
	}
	if (temp_locked == 0) {
		child = fork();
		if (child == 0)
			_exit(probe_temp_lock());
		if (child > 0 && waitpid(child, &status, 0) == child &&
		    WIFEXITED(status))
			temp_locked = WEXITSTATUS(status) == 1 ? 1 : 0;
	}
	return __real_fsync(fd);
}

/* A save holds its temporary file locked while it writes and syncs it. */
START_TEST(test_save_locks_its_temp)
{
	struct users *u = load_fixture();

	temp_locked = 0;
	ck_assert_int_eq(users_save(u), USERS_OK);
	ck_assert_int_eq(temp_locked, 1);
	temp_locked = -1;
	assert_only_users_file();
	users_free(u);
}
END_TEST

/* A folder that cannot be synced: the file is replaced all the same. */
START_TEST(test_save_unsynced)
{
	struct users *u = load_fixture(), *v;

	ck_assert_int_eq(users_add(u, "dave", "pw-dave"), USERS_OK);
	fail_dir_fsync_errno = EIO;
	errno = 0;
	ck_assert_int_eq(users_save(u), USERS_UNSYNCED);
	fail_dir_fsync_errno = 0;
	ck_assert_int_eq(errno, EIO);
	ck_assert_int_eq(users_load(path, &v, NULL), USERS_OK);
	ck_assert(users_verify(v, "dave", "pw-dave"));
	users_free(v);
	users_free(u);
	assert_only_users_file();
}
END_TEST

/* Descriptors open in this process, the listing's own left out. */
static int
open_fds(void)
{
	struct dirent *de;
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	(void)closedir(d);
	return n - 1;
}

/*
 * A save closes what it opened: the new file, which would keep the
 * live users file write-locked, and its folder.  The server saves at
 * every MGMT change, so one descriptor left a save would run it out.
 */
START_TEST(test_save_closes_its_descriptors)
{
	struct users *u = load_fixture();
	int before = open_fds(), after;

	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(users_save(u), USERS_OK);
	after = open_fds();
	ck_assert_msg(after == before, "%d descriptors before 3 saves, "
	    "%d after", before, after);
	users_free(u);
}
END_TEST

/*
 * path becomes a relative symlink to "users" in another fresh folder,
 * whose name goes to real (sizeof(dir) bytes); that file holds the
 * fixture, or does not exist yet when dangle is true.
 */
static void
link_users_file(char *real, bool dangle)
{
	char to[sizeof(dir) + 16];

	new_dir();
	if (!dangle)
		write_file(path, fixture, sizeof(fixture) - 1);
	memcpy(real, dir, sizeof(dir));
	(void)snprintf(to, sizeof(to), "../%s/users", strrchr(real, '/') + 1);
	new_dir();
	ck_assert_int_eq(symlink(to, path), 0);
}

/*
 * After a save through the link of link_users_file(): path is still
 * that link to the file in real, which holds user `name`, and neither
 * folder holds anything else (the temporary file was renamed in the
 * real file's folder).
 */
static void
assert_saved_through_link(const char *real, const char *name)
{
	char file[sizeof(dir) + 8], link_dir[sizeof(dir)];
	struct users *v = NULL;
	struct stat lst, st, rst;

	ck_assert_int_eq(lstat(path, &lst), 0);
	ck_assert_msg(S_ISLNK(lst.st_mode), "%s is no longer a symlink", path);
	(void)snprintf(file, sizeof(file), "%s/users", real);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(lstat(file, &rst), 0);
	ck_assert(S_ISREG(rst.st_mode));
	ck_assert(st.st_dev == rst.st_dev && st.st_ino == rst.st_ino);
	ck_assert_int_eq(users_load(file, &v, NULL), USERS_OK);
	ck_assert_msg(users_exists(v, name), "%s not saved in %s", name, file);
	users_free(v);
	assert_only_users_file();
	memcpy(link_dir, dir, sizeof(dir));
	memcpy(dir, real, sizeof(dir));
	assert_only_users_file();
	memcpy(dir, link_dir, sizeof(dir));
}

/*
 * A users file kept in /var/lib and linked from /etc: a save replaces
 * the file the link points to, in its own folder, and the link stays
 * (pop3server(8), operations.md section 7).  Loop 1: the link before
 * its file exists (a first start), which the save creates.
 */
START_TEST(test_save_through_symlink)
{
	char real[sizeof(dir)];
	struct users *u = NULL;

	link_users_file(real, _i == 1);
	ck_assert_int_eq(users_load(path, &u, NULL), USERS_OK);
	ck_assert_uint_eq(users_count(u), _i == 1 ? 0 : 4);
	ck_assert_int_eq(users_add(u, "dave", "pw-dave"), USERS_OK);
	ck_assert_int_eq(users_save(u), USERS_OK);
	assert_saved_through_link(real, "dave");
	users_free(u);
}
END_TEST

/*
 * Salts are 16 characters of crypt's 64 ("./0-9A-Za-z"): 64 of them
 * use most of the alphabet, where a salt of few characters would not.
 */
START_TEST(test_salts_use_the_whole_alphabet)
{
	struct users *u = load_fixture();
	bool seen[256] = { false };
	char name[16], *data, *line;
	size_t n, distinct = 0;

	ck_assert_int_eq(users_set_setting(u, "max_users", 100), USERS_OK);
	for (int i = 0; i < 64; i++) {
		(void)snprintf(name, sizeof(name), "salt%d", i);
		ck_assert_int_eq(users_add(u, name, "pw-salt"), USERS_OK);
	}
	ck_assert_int_eq(users_save(u), USERS_OK);
	data = slurp(path, &n);
	for (line = strstr(data, "\nsalt"); line != NULL;
	    line = strstr(line + 1, "\nsalt")) {
		char *salt = strstr(line, ":$6$");

		ck_assert_ptr_nonnull(salt);
		for (salt += 4; *salt != '$'; salt++)
			seen[(unsigned char)*salt] = true;
	}
	for (int c = 0; c < 256; c++)
		distinct += seen[c];
	ck_assert_uint_ge(distinct, 40);
	free(data);
	users_free(u);
}
END_TEST

START_TEST(test_strerror)
{
	ck_assert_str_eq(users_strerror(USERS_OK), "success");
	ck_assert_str_ne(users_strerror(USERS_FULL),
	    users_strerror(USERS_EXISTS));
	ck_assert_ptr_nonnull(users_strerror((enum users_status)99));
}
END_TEST

Suite *users_suite(void);

Suite *
users_suite(void)
{
	Suite *s = suite_create("users");
	TCase *core = tcase_create("core");
	TCase *limits = tcase_create("limits");
	int nbad = (int)(sizeof(bad_files) / sizeof(bad_files[0]));

	/* crypt(3) SHA-512 is slow on purpose, more so under sanitizers. */
	tcase_set_timeout(core, 60);
	tcase_set_timeout(limits, 60);
	tcase_add_unchecked_fixture(core, base_setup, base_teardown);
	tcase_add_unchecked_fixture(limits, base_setup, base_teardown);

	tcase_add_test(core, test_load_fixture);
	tcase_add_test(core, test_index_after);
	tcase_add_test(core, test_missing_file);
	tcase_add_test(core, test_hash_format);
	tcase_add_test(core, test_add_delete);
	tcase_add_test(core, test_settings);
	tcase_add_test(core, test_save_reload);
	tcase_add_test(core, test_random_password);
	tcase_add_test(core, test_strerror);
	tcase_add_test(core, test_load_removes_dead_temps);
	tcase_add_test(core, test_leftover_symlink);
	tcase_add_test(core, test_save_locks_its_temp);
	tcase_add_test(core, test_save_unsynced);
	tcase_add_test(core, test_save_closes_its_descriptors);
	tcase_add_loop_test(core, test_save_through_symlink, 0, 2);
	tcase_add_test(core, test_salts_use_the_whole_alphabet);
	suite_add_tcase(s, core);

	tcase_add_test(limits, test_name_limits);
	tcase_add_test(limits, test_password_limits);
	tcase_add_test(limits, test_full);
	tcase_add_loop_test(limits, test_parse_error_table, 0, nbad);
	tcase_add_test(limits, test_setting_and_hash_limits);
	tcase_add_test(limits, test_parse_error_binary);
	tcase_add_test(limits, test_many_users);
	tcase_add_test(limits, test_save_io_failure);
	tcase_add_test(limits, test_stale_temp);
	suite_add_tcase(s, limits);
	return s;
}
