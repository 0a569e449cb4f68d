/*
 * Unit tests of replacing a file whole: the content exact, mode 0600,
 * no temporary file left, a symlinked file replaced where it lives with
 * the link kept; and which leftovers savefile_remove_stale() removes
 * (a save's names) and keeps (an operator's copies, other files).
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "savefile.h"
#include "scratch.h"

/*
 * One scratch base for the suite (unchecked fixture: removed even when
 * a forked test fails), and a folder of its own for each test.
 */
static char base[256], dir[512];

static void
base_setup(void)
{
	scratch_make(base, sizeof(base), "savefile");
}

static void
base_teardown(void)
{
	scratch_remove(base);
}

static void
use_dir(const char *test)
{
	ck_assert_uint_gt(strlen(base), 0);
	snprintf(dir, sizeof(dir), "%s/%s", base, test);
	ck_assert_int_eq(mkdir(dir, 0700), 0);
}

/* dir/name, into buf[PATH_MAX]. */
static const char *
in_dir(char *buf, const char *name)
{
	snprintf(buf, PATH_MAX, "%s/%s", dir, name);
	return buf;
}

static void
write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

/* The whole of a small file, into buf; its length. */
static size_t
read_text(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	ck_assert_int_ge(fd, 0);
	n = read(fd, buf, size - 1);
	close(fd);
	ck_assert_int_ge(n, 0);
	buf[n] = '\0';
	return (size_t)n;
}

/* Entries of dir other than "." and "..". */
static int
entries(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)) != NULL)
		n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
	closedir(d);
	return n;
}

START_TEST(test_replace_whole)
{
	char path[PATH_MAX], got[64];
	static const char data[] = "new\0content";
	struct stat sb;

	use_dir("replace");
	write_text(in_dir(path, "f"), "the old content, longer than the new\n");
	ck_assert_int_eq(chmod(path, 0644), 0);
	ck_assert_int_eq(savefile_replace(path, data, sizeof(data)),
	    SAVEFILE_OK);
	ck_assert_uint_eq(read_text(path, got, sizeof(got)), sizeof(data));
	ck_assert_mem_eq(got, data, sizeof(data));
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_uint_eq(sb.st_mode & 07777, 0600);
	ck_assert_int_eq(entries(), 1);
	/* A file that did not exist yet is made. */
	ck_assert_int_eq(savefile_replace(in_dir(path, "g"), "g\n", 2),
	    SAVEFILE_OK);
	ck_assert_uint_eq(read_text(path, got, sizeof(got)), 2);
	ck_assert_int_eq(entries(), 2);
}
END_TEST

START_TEST(test_replace_through_symlink)
{
	char link[PATH_MAX], real[PATH_MAX], got[64];
	struct stat sb;

	use_dir("symlink");
	write_text(in_dir(real, "real"), "old\n");
	ck_assert_int_eq(symlink("real", in_dir(link, "link")), 0);
	ck_assert_int_eq(savefile_replace(link, "new\n", 4), SAVEFILE_OK);
	ck_assert_int_eq(lstat(link, &sb), 0);
	ck_assert(S_ISLNK(sb.st_mode));
	read_text(real, got, sizeof(got));
	ck_assert_str_eq(got, "new\n");
	ck_assert_int_eq(entries(), 2);
}
END_TEST

START_TEST(test_remove_stale)
{
	static const char *const gone[] = {
		"f.tmp.aB3dE9", "f.tmp.1234567", "f.tmp.1",
	};
	static const char *const kept[] = {
		"f", "f.tmp.orig", "f.tmp.20261130", "f.tmp.aB3dE", "f.tmp.",
		"g.tmp.aB3dE9", "f.tmp.aB3dE9x",
	};
	char path[PATH_MAX];

	use_dir("stale");
	for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++)
		write_text(in_dir(path, gone[i]), "leftover\n");
	for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
		write_text(in_dir(path, kept[i]), "kept\n");
	savefile_remove_stale(in_dir(path, "f"));
	for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++)
		ck_assert_msg(access(in_dir(path, gone[i]), F_OK) == -1,
		    "%s left", gone[i]);
	for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
		ck_assert_msg(access(in_dir(path, kept[i]), F_OK) == 0,
		    "%s removed", kept[i]);
}
END_TEST

Suite *savefile_suite(void);

Suite *
savefile_suite(void)
{
	Suite *s = suite_create("savefile");
	TCase *core = tcase_create("core");

	tcase_add_unchecked_fixture(core, base_setup, base_teardown);
	tcase_add_test(core, test_replace_whole);
	tcase_add_test(core, test_replace_through_symlink);
	tcase_add_test(core, test_remove_stale);
	suite_add_tcase(s, core);
	return s;
}
