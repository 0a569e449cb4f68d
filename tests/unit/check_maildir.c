/*
 * Unit tests of the Maildir backend.  Each test gets its own mail root
 * from mkdtemp() (a checked fixture) and writes its messages from here,
 * with the mtimes it needs; every directory made is removed afterwards,
 * also when a test fails.
 */
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "maildir.h"
#include "scratch.h"

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

/*
 * base is made once per TCase by an unchecked fixture, which runs in
 * the runner process, so its teardown also removes what a test that
 * failed in a forked child left behind.  root, one fresh directory per
 * test inside base, is the mail root of that test.
 */
static char base[PATH_MAX];
static char root[PATH_MAX];

static void
base_setup(void)
{
	scratch_make(base, sizeof(base), "maildir");
}

static void
base_teardown(void)
{
	scratch_remove(base);
}

static void
setup(void)
{
	int len;

	len = snprintf(root, sizeof(root), "%s/t.XXXXXX", base);
	ck_assert(len > 0 && (size_t)len < sizeof(root));
	ck_assert_ptr_nonnull(mkdtemp(root));
}

static void
teardown(void)
{
	scratch_remove(root);
}

/* root/rel into buf (PATH_MAX). */
static const char *
at(char *buf, const char *rel)
{
	int len = snprintf(buf, PATH_MAX, "%s/%s", root, rel);

	ck_assert(len > 0 && len < PATH_MAX);
	return buf;
}

/* dir + name into buf (64 bytes). */
static const char *
at_user(const char *dir, const char *name, char *buf)
{
	int len = snprintf(buf, 64, "%s%s", dir, name);

	ck_assert(len > 0 && len < 64);
	return buf;
}

static void
mkdir_rel(const char *rel)
{
	char p[PATH_MAX];

	ck_assert_int_eq(mkdir(at(p, rel), 0700), 0);
}

/* A maildrop with its three folders. */
static void
make_user(const char *user)
{
	char rel[PATH_MAX];

	mkdir_rel(user);
	(void)snprintf(rel, sizeof(rel), "%s/cur", user);
	mkdir_rel(rel);
	(void)snprintf(rel, sizeof(rel), "%s/new", user);
	mkdir_rel(rel);
	(void)snprintf(rel, sizeof(rel), "%s/tmp", user);
	mkdir_rel(rel);
}

/* Writes root/rel with n bytes of data and mtime sec.nsec. */
static void
put(const char *rel, const char *data, size_t n, time_t sec, long nsec)
{
	char p[PATH_MAX];
	struct timespec ts[2];
	int fd;

	fd = open(at(p, rel), O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, n), (ssize_t)n);
	ts[0].tv_sec = ts[1].tv_sec = sec;
	ts[0].tv_nsec = ts[1].tv_nsec = nsec;
	ck_assert_int_eq(futimens(fd, ts), 0);
	ck_assert_int_eq(close(fd), 0);
}

static void
put_str(const char *rel, const char *data, time_t sec)
{
	put(rel, data, strlen(data), sec, 0);
}

static bool
exists(const char *rel)
{
	char p[PATH_MAX];
	struct stat sb;

	return lstat(at(p, rel), &sb) == 0;
}

static struct maildrop *
open_ok(const char *user)
{
	struct maildrop *md = NULL;

	ck_assert_int_eq(maildir_open(root, user, &md), MAILDIR_OK);
	ck_assert_ptr_nonnull(md);
	return md;
}

/* Sizes everything in one generous step. */
static struct maildrop *
open_scanned(const char *user)
{
	struct maildrop *md = open_ok(user);
	bool done = false;

	ck_assert_int_eq(maildir_scan_step(md, SIZE_MAX, &done), MAILDIR_OK);
	ck_assert(done);
	return md;
}

static const char *
file_of(const struct maildrop *md, size_t n)
{
	const struct mail_msg *m = maildir_msg(md, n);

	ck_assert_ptr_nonnull(m);
	return m->file;
}

/* The UID of the message whose file is `file`. */
static const char *
uid_of(const struct maildrop *md, const char *file)
{
	size_t i;

	for (i = 1; i <= maildir_count(md); i++)
		if (strcmp(maildir_msg(md, i)->file, file) == 0)
			return maildir_msg(md, i)->uid;
	ck_abort_msg("no message %s", file);
	return NULL;
}

static void
assert_uid_safe(const char *uid)
{
	size_t i, len = strlen(uid);

	ck_assert_uint_ge(len, 1);
	ck_assert_uint_le(len, UIDL_MAX);
	for (i = 0; i < len; i++)
		ck_assert_msg((unsigned char)uid[i] >= 0x21 &&
		    (unsigned char)uid[i] <= 0x7e, "bad byte in uid %s", uid);
}

static void
assert_uids_unique(const struct maildrop *md)
{
	size_t i, j, n = maildir_count(md);

	for (i = 1; i <= n; i++) {
		assert_uid_safe(maildir_msg(md, i)->uid);
		for (j = i + 1; j <= n; j++)
			ck_assert_str_ne(maildir_msg(md, i)->uid,
			    maildir_msg(md, j)->uid);
	}
}

/* A new session of user finds just one message, in file `file`. */
static void
assert_only_message(const char *user, const char *file)
{
	struct maildrop *md = open_scanned(user);

	ck_assert_uint_eq(maildir_count(md), 1);
	ck_assert_str_eq(file_of(md, 1), file);
	maildir_close(md);
}

/* Runs a whole UPDATE; the number of failed unlinks. */
static size_t
commit_all(struct maildrop *md)
{
	ck_assert(maildir_commit_step(md, 0));
	return maildir_commit_failed(md);
}

START_TEST(test_scan_order)
{
	/* Same mtime: by name, whatever order readdir() returns. */
	static const char *const tied[] = {
		"h:2,", "b:2,", "g:2,", "a:2,", "f:2,", "c:2,", "e:2,", "d:2,"
	};
	struct maildrop *md;
	char rel[PATH_MAX];
	size_t i;

	make_user("u");
	for (i = 0; i < 8; i++) {
		(void)snprintf(rel, sizeof(rel), "u/cur/%s", tied[i]);
		put(rel, "t\n", 2, 1000, 0);
	}
	/* Earlier by seconds, then by nanoseconds, despite their names. */
	put("u/cur/y:2,", "y\n", 2, 900, 500000000);
	put("u/cur/z:2,", "z\n", 2, 900, 200000000);
	put("u/cur/0:2,", "0\n", 2, 1000, 1);
	/* Delivered last, though its name sorts first. */
	put("u/new/A", "A\n", 2, 2000, 0);
	md = open_scanned("u");
	ck_assert_uint_eq(maildir_count(md), 12);
	ck_assert_str_eq(file_of(md, 1), "z:2,");
	ck_assert_str_eq(file_of(md, 2), "y:2,");
	for (i = 0; i < 8; i++) {
		(void)snprintf(rel, sizeof(rel), "%c:2,", (int)('a' + i));
		ck_assert_str_eq(file_of(md, 3 + i), rel);
	}
	ck_assert_str_eq(file_of(md, 11), "0:2,");
	ck_assert_str_eq(file_of(md, 12), "A:2,");
	ck_assert_ptr_null(maildir_msg(md, 0));
	ck_assert_ptr_null(maildir_msg(md, 13));
	maildir_close(md);
}
END_TEST

START_TEST(test_sizes)
{
	struct maildrop *md;
	const struct mail_msg *m;

	make_user("u");
	put_str("u/cur/1", "a\nb\n", 1);		/* 2 + 1, 2 + 1 */
	put_str("u/cur/2", "a\r\nb\r\n", 2);	/* as is */
	put_str("u/cur/3", "a\r\nbc", 3);	/* + CRLF at the end */
	put_str("u/cur/4", "", 4);
	put_str("u/cur/5", ".x\n\n", 5);	/* no stuffing counted */
	md = open_scanned("u");
	ck_assert_uint_eq(maildir_count(md), 5);
	m = maildir_msg(md, 1);
	ck_assert_uint_eq(m->size, 6);
	ck_assert_uint_eq(m->file_size, 4);
	ck_assert_uint_eq(maildir_msg(md, 2)->size, 6);
	ck_assert_uint_eq(maildir_msg(md, 2)->file_size, 6);
	ck_assert_uint_eq(maildir_msg(md, 3)->size, 7);
	ck_assert_uint_eq(maildir_msg(md, 4)->size, 2);	/* one empty line */
	ck_assert_uint_eq(maildir_msg(md, 5)->size, 6);
	ck_assert_uint_eq(maildir_live_count(md), 5);
	ck_assert_uint_eq(maildir_live_size(md), 6 + 6 + 7 + 2 + 6);
	maildir_close(md);
}
END_TEST

static struct timespec
ctime_of(const char *rel)
{
	char p[PATH_MAX];
	struct stat sb;

	ck_assert_int_eq(stat(at(p, rel), &sb), 0);
	return sb.st_ctim;
}

/*
 * Rewrites root/rel in place with data and mtime sec, as a restore
 * from backup does.  The ctime clock is coarse, so the write is
 * repeated until the ctime has moved.
 */
static void
rewrite_keeping_mtime(const char *rel, const char *data, time_t sec)
{
	struct timespec before = ctime_of(rel);

	for (int i = 0; i < 1000; i++) {
		const struct timespec ms = { 0, 1000000 };
		struct timespec now;

		put_str(rel, data, sec);
		now = ctime_of(rel);
		if (now.tv_sec != before.tv_sec ||
		    now.tv_nsec != before.tv_nsec)
			return;
		(void)nanosleep(&ms, NULL);
	}
	ck_abort_msg("the ctime of %s never moved", rel);
}

/* A login sized with the least budget a step: how many steps it took. */
static int
steps_to_size(const char *user)
{
	struct maildrop *md = open_ok(user);
	bool done = false;
	int steps = 0;

	while (!done) {
		ck_assert_int_eq(maildir_scan_step(md, 1, &done), MAILDIR_OK);
		steps++;
	}
	maildir_close(md);
	return steps;
}

/* A same-size rewrite whose mtime was put back is sized again. */
START_TEST(test_size_cache_sees_rewrite)
{
	struct maildrop *md;

	make_user("u");
	put_str("u/cur/1", "a\nb\n", 1);		/* 6 on the wire */
	md = open_scanned("u");
	ck_assert_uint_eq(maildir_msg(md, 1)->size, 6);
	maildir_close(md);
	rewrite_keeping_mtime("u/cur/1", "abc\n", 1);	/* 4 octets, 5 */
	md = open_scanned("u");
	ck_assert_uint_eq(maildir_msg(md, 1)->size, 5);
	maildir_close(md);
}
END_TEST

/*
 * A message the login moved from new/ is sized from the cache at the
 * next login (its file is not read again), and a rewrite is not.
 */
START_TEST(test_size_cache_hit_after_move)
{
	int moved, again, rewritten;

	make_user("u");
	put_str("u/new/1", "a\nb\n", 1);
	(void)steps_to_size("u");		/* moves it to cur/ */
	moved = steps_to_size("u");
	again = steps_to_size("u");
	ck_assert_int_eq(moved, again);
	rewrite_keeping_mtime("u/cur/1:2,", "a\nb\n", 1);
	rewritten = steps_to_size("u");
	ck_assert_int_gt(rewritten, again);
	ck_assert_int_eq(steps_to_size("u"), again);
}
END_TEST

START_TEST(test_new_to_cur)
{
	struct maildrop *md;
	char p[PATH_MAX];

	make_user("u");
	put_str("u/new/1.M2P3.host", "one\n", 10);
	put_str("u/new/x:2,S", "x\n", 11);
	/* The same name already in cur/: never overwritten, both kept. */
	put_str("u/new/dup", "new copy\n", 12);
	put_str("u/cur/dup:2,", "old\n", 13);
	mkdir_rel("u/new/subdir");
	ck_assert_int_eq(symlink("../cur/dup:2,", at(p, "u/new/link")), 0);

	md = open_scanned("u");
	ck_assert(exists("u/cur/1.M2P3.host:2,"));
	ck_assert(!exists("u/new/1.M2P3.host"));
	ck_assert(exists("u/cur/x:2,S"));
	ck_assert(!exists("u/cur/x:2,S:2,"));
	ck_assert(!exists("u/new/x:2,S"));
	ck_assert(!exists("u/new/dup"));
	ck_assert(exists("u/cur/dup:2,"));
	ck_assert(exists("u/new/subdir"));
	ck_assert(exists("u/new/link"));
	ck_assert(!exists("u/cur/link:2,"));
	ck_assert(!exists("u/cur/subdir:2,"));
	ck_assert_uint_eq(maildir_count(md), 4);
	ck_assert_str_eq(file_of(md, 1), "1.M2P3.host:2,");
	ck_assert_str_eq(file_of(md, 2), "x:2,S");
	/* The new copy (older mtime) got a name of its own, "dup.I<ino>:2,". */
	ck_assert(strncmp(file_of(md, 3), "dup.I", 5) == 0);
	ck_assert_uint_eq(maildir_msg(md, 3)->size, 10);
	ck_assert_str_eq(file_of(md, 4), "dup:2,");
	ck_assert_uint_eq(maildir_msg(md, 4)->size, 5);
	maildir_close(md);
}
END_TEST

START_TEST(test_non_regular_ignored)
{
	struct maildrop *md;
	char p[PATH_MAX];

	make_user("u");
	put_str("u/cur/m1:2,", "hello\n", 5);
	put_str("outside", "secret\n", 6);
	mkdir_rel("u/cur/adir");
	ck_assert_int_eq(symlink("../../outside", at(p, "u/cur/alink")), 0);
	ck_assert_int_eq(mkfifo(at(p, "u/cur/afifo"), 0600), 0);
	put_str("u/cur/.hidden", "dot\n", 7);
	md = open_scanned("u");
	ck_assert_uint_eq(maildir_count(md), 1);
	ck_assert_str_eq(file_of(md, 1), "m1:2,");
	maildir_close(md);
}
END_TEST

START_TEST(test_uidl_plain)
{
	struct maildrop *md;

	make_user("u");
	put_str("u/cur/1700000000.M1P2.host:2,", "a\n", 1);
	put_str("u/cur/abc:2,S", "b\n", 2);
	put_str("u/cur/noinfo", "c\n", 3);
	md = open_scanned("u");
	ck_assert_str_eq(uid_of(md, "1700000000.M1P2.host:2,"),
	    "1700000000.M1P2.host");
	ck_assert_str_eq(uid_of(md, "abc:2,S"), "abc");
	ck_assert_str_eq(uid_of(md, "noinfo"), "noinfo");
	assert_uids_unique(md);
	maildir_close(md);
}
END_TEST

START_TEST(test_uidl_unsafe_stable)
{
	enum { N = 5 };
	char longname[128], rel[PATH_MAX], uids[N][UIDL_MAX + 1];
	static const char *const names[N] = {
		NULL, "sp ace:2,", "hi\x80gh:2,S", "de\x7fl:2,", "~home:2,"
	};
	struct maildrop *md;
	int pass, i;

	memset(longname, 'L', 100);
	(void)snprintf(longname + 100, sizeof(longname) - 100, ":2,");
	make_user("u");
	for (i = 0; i < N; i++) {
		(void)snprintf(rel, sizeof(rel), "u/cur/%s",
		    i == 0 ? longname : names[i]);
		put_str(rel, "m\n", 10 + i);
	}
	for (pass = 0; pass < 2; pass++) {
		md = open_scanned("u");
		ck_assert_uint_eq(maildir_count(md), N);
		assert_uids_unique(md);
		for (i = 0; i < N; i++) {
			const char *uid = uid_of(md,
			    i == 0 ? longname : names[i]);

			if (pass == 0) {
				const char *name = i == 0 ? longname : names[i];

				/* Mapped: never the unique name itself. */
				assert_uid_safe(uid);
				ck_assert(strncmp(uid, name, strcspn(name, ":"))
				    != 0 || strlen(uid) != strcspn(name, ":"));
				strcpy(uids[i], uid);
			} else
				ck_assert_str_eq(uid, uids[i]);
		}
		maildir_close(md);
	}
}
END_TEST

/* Inode of the file at rel, for the names twins are given. */
static unsigned long long
ino_of(const char *rel)
{
	char p[PATH_MAX];
	struct stat sb;

	ck_assert_int_eq(lstat(at(p, rel), &sb), 0);
	return (unsigned long long)sb.st_ino;
}

/* True when some message of md has the UID `uid`. */
static bool
has_uid(const struct maildrop *md, const char *uid)
{
	for (size_t i = 1; i <= maildir_count(md); i++)
		if (strcmp(maildir_msg(md, i)->uid, uid) == 0)
			return true;
	return false;
}

START_TEST(test_uidl_duplicates)
{
	struct maildrop *md;
	char twin[80], twin_uid[64], path[96], full[PATH_MAX];
	int pass;

	make_user("u");
	/* Same unique name, different info: both must stay distinct. */
	put_str("u/cur/same:2,S", "a\n", 5);
	put_str("u/cur/same:2,T", "b\n", 1);
	put_str("u/cur/other", "c\n", 3);
	(void)snprintf(twin_uid, sizeof(twin_uid), "same.I%llu",
	    ino_of("u/cur/same:2,S"));
	(void)snprintf(twin, sizeof(twin), "%s:2,S", twin_uid);
	(void)snprintf(path, sizeof(path), "u/cur/%s", twin);
	for (pass = 0; pass < 2; pass++) {
		md = open_scanned("u");
		assert_uids_unique(md);
		/*
		 * The oldest keeps its name and plain UID, although it is
		 * not the first by name: flags (which other readers change)
		 * never decide.
		 */
		ck_assert_str_eq(uid_of(md, "same:2,T"), "same");
		/* The other got a name, and so a UID, of its own. */
		ck_assert_str_eq(uid_of(md, twin), twin_uid);
		ck_assert(exists(path));
		ck_assert(!exists("u/cur/same:2,S"));
		ck_assert_str_eq(uid_of(md, "other"), "other");
		maildir_close(md);
	}
	/* The oldest deleted: its UID is not handed to the twin. */
	ck_assert_int_eq(unlink(at(full, "u/cur/same:2,T")), 0);
	md = open_scanned("u");
	ck_assert_uint_eq(maildir_count(md), 2);
	ck_assert_str_eq(uid_of(md, twin), twin_uid);
	ck_assert(!has_uid(md, "same"));
	maildir_close(md);
}
END_TEST

/*
 * A file arriving in new/ under a unique name cur/ already holds (with
 * other flags) is the twin that gets a new name: the one in cur/ may
 * have been seen by a client under its UID, even though the arrival
 * sorts first by name ("x:2," < "x:2,S").
 */
/*
 * Loop 0: the arrival is newer than the message already listed; loop
 * 1: older (a redelivery restored with its mtime kept), so it sorts
 * first, and still the listed message keeps its UIDL.
 */
START_TEST(test_uidl_arrival_twin_renamed)
{
	struct maildrop *md;
	char name[64], rel[80];
	unsigned long long ino;

	make_user("u");
	put_str("u/cur/x:2,S", "old\n", 5);
	md = open_scanned("u");
	ck_assert_str_eq(uid_of(md, "x:2,S"), "x");
	maildir_close(md);

	put_str("u/new/x", "new\n", _i == 0 ? 6 : 2);
	ino = ino_of("u/new/x");
	(void)snprintf(name, sizeof(name), "x.I%llu:2,", ino);
	(void)snprintf(rel, sizeof(rel), "u/cur/%s", name);
	md = open_scanned("u");
	ck_assert_uint_eq(maildir_count(md), 2);
	ck_assert_str_eq(uid_of(md, "x:2,S"), "x");
	ck_assert(exists(rel));
	ck_assert(strncmp(uid_of(md, name), "x.I", 3) == 0);
	ck_assert(!exists("u/cur/x:2,"));
	maildir_close(md);
}
END_TEST

/*
 * Twins whose unique name is empty (":2,S"): the one renamed must not
 * get a name starting with '.', which every Maildir reader skips.
 */
START_TEST(test_empty_unique_name_twins_stay_visible)
{
	struct maildrop *md;
	char rel[80];

	make_user("u");
	put_str("u/cur/:2,S", "old\n", 1);
	put_str("u/new/:2,S", "new\n", 2);
	(void)snprintf(rel, sizeof(rel), "u/cur/I%llu:2,S",
	    ino_of("u/new/:2,S"));
	put_str("u/cur/:2,a", "first\n", 3);
	put_str("u/cur/:2,b", "second\n", 4);
	for (int pass = 0; pass < 2; pass++) {
		md = open_scanned("u");
		ck_assert_uint_eq(maildir_count(md), 4);
		assert_uids_unique(md);
		maildir_close(md);
	}
	ck_assert(exists(rel));
	ck_assert(exists("u/cur/:2,S"));
}
END_TEST

/* Makes root/to a hard link of root/from. */
static void
link_rel(const char *from, const char *to)
{
	char a[PATH_MAX], b[PATH_MAX];

	ck_assert_int_eq(link(at(a, from), at(b, to)), 0);
}

/*
 * kill -9 between the link into cur/ under the inode name and the
 * unlink from new/ (the name was taken): the next login finishes the
 * move.  Left in new/, the file would come back after its DELE.
 */
START_TEST(test_cut_move_to_inode_name)
{
	struct maildrop *md;
	char name[64], rel[80];

	make_user("u");
	put_str("u/cur/m:2,", "old\n", 1);
	put_str("u/new/m", "new\n", 2);
	(void)snprintf(name, sizeof(name), "m.I%llu:2,", ino_of("u/new/m"));
	(void)snprintf(rel, sizeof(rel), "u/cur/%s", name);
	link_rel("u/new/m", rel);
	md = open_scanned("u");
	ck_assert_uint_eq(maildir_count(md), 2);
	ck_assert(!exists("u/new/m"));
	ck_assert_str_eq(uid_of(md, "m:2,"), "m");
	ck_assert(maildir_mark_deleted(md, 2));
	ck_assert_uint_eq(commit_all(md), 0);
	maildir_close(md);
	assert_only_message("u", "m:2,");
}
END_TEST

/*
 * kill -9 between the link of new/m into cur/ and the unlink, then
 * another reader sets a flag on the cur/ name: one file, one unique
 * name, one message, kept under the name with the flag.
 */
START_TEST(test_cut_move_then_flagged)
{
	struct maildrop *md;
	char a[PATH_MAX], b[PATH_MAX];

	make_user("u");
	put_str("u/cur/other:2,", "other\n", 1);
	put_str("u/new/m", "mine\n", 2);
	link_rel("u/new/m", "u/cur/m:2,");
	ck_assert_int_eq(rename(at(a, "u/cur/m:2,"), at(b, "u/cur/m:2,S")), 0);
	md = open_scanned("u");
	ck_assert_uint_eq(maildir_count(md), 2);
	assert_uids_unique(md);
	ck_assert_str_eq(uid_of(md, "m:2,S"), "m");
	ck_assert(!exists("u/new/m"));
	ck_assert(!exists("u/cur/m:2,"));
	ck_assert(maildir_mark_deleted(md, 2));
	ck_assert_uint_eq(commit_all(md), 0);
	maildir_close(md);
	assert_only_message("u", "other:2,");
}
END_TEST

/*
 * kill -9 in the middle of a twin's rename leaves one file under its
 * old and its new name: it is listed once, under the new one, and the
 * old name is gone, whichever of the twins sorts first.
 */
START_TEST(test_cut_twin_rename)
{
	static const char *const olds[] = { "tw:2,S", "tw:2," };
	static const char *const others[] = { "tw:2,", "tw:2,S" };

	for (size_t i = 0; i < 2; i++) {
		struct maildrop *md;
		char oldrel[64], name[64], rel[80];

		make_user("u");
		put_str(at_user("u/cur/", others[i], oldrel), "kept\n", 1);
		put_str(at_user("u/cur/", olds[i], oldrel), "renamed\n", 2);
		(void)snprintf(name, sizeof(name), "tw.I%llu%s",
		    ino_of(oldrel), strchr(olds[i], ':'));
		(void)snprintf(rel, sizeof(rel), "u/cur/%s", name);
		link_rel(oldrel, rel);
		md = open_scanned("u");
		ck_assert_uint_eq(maildir_count(md), 2);
		ck_assert(!exists(oldrel));
		ck_assert_str_eq(uid_of(md, others[i]), "tw");
		ck_assert(strncmp(uid_of(md, name), "tw.I", 4) == 0);
		maildir_close(md);
		teardown();
		setup();
	}
}
END_TEST

/*
 * A file of new/ that cannot go to cur/ (here its name has no room
 * for the ":2," info) is still served, deleted, and noted.
 */
START_TEST(test_served_from_new)
{
	struct maildrop *md;
	char name[256], rel[300];
	int fd = -1;

	make_user("u");
	memset(name, 'n', 255);
	name[255] = '\0';
	(void)snprintf(rel, sizeof(rel), "u/new/%s", name);
	put_str(rel, "stuck\n", 2);
	put_str("u/cur/a:2,", "a\n", 1);
	md = open_scanned("u");
	ck_assert_uint_eq(maildir_count(md), 2);
	ck_assert(maildir_msg(md, 2)->in_new);
	ck_assert_uint_eq(maildir_msg(md, 2)->size, 7);
	assert_uids_unique(md);
	ck_assert_uint_eq(maildir_notes(md)->unmoved, 1);
	ck_assert_int_eq(maildir_notes(md)->unmoved_errno, ENAMETOOLONG);
	ck_assert_uint_eq(maildir_notes(md)->unreadable, 0);
	ck_assert_int_eq(maildir_msg_open(md, 2, &fd), MAILDIR_OK);
	ck_assert_int_eq(close(fd), 0);
	ck_assert(maildir_mark_deleted(md, 2));
	ck_assert_uint_eq(commit_all(md), 0);
	ck_assert(!exists(rel));
	ck_assert(exists("u/cur/a:2,"));
	maildir_close(md);
}
END_TEST

/*
 * Another file under a vanished message's unique name is another
 * message (other inode): never served nor deleted in its place.  The
 * next login lists it under the same UIDL, so the QUIT does not claim
 * the message gone: it counts as failed, and says why.
 */
START_TEST(test_relocate_needs_same_file)
{
	struct maildrop *md;
	char p[PATH_MAX];
	const char *why = NULL;
	int fd = -1;

	make_user("u");
	put_str("u/cur/x:2,", "mine\n", 1);
	md = open_scanned("u");
	ck_assert(maildir_mark_deleted(md, 1));
	ck_assert_int_eq(unlink(at(p, "u/cur/x:2,")), 0);
	put_str("u/cur/x:2,S", "not the listed one\n", 2);
	ck_assert_int_eq(maildir_msg_open(md, 1, &fd), MAILDIR_GONE);
	ck_assert_uint_eq(commit_all(md), 1);
	ck_assert_str_eq(maildir_commit_first_failure(md, &why), "x:2,");
	ck_assert_str_eq(why, "a file with its name remains");
	ck_assert(exists("u/cur/x:2,S"));
	maildir_close(md);
}
END_TEST

/*
 * Two names hard-linked to one file are two messages.  The one deleted
 * went away meanwhile: its inode must not lead the deletion to the
 * other name, which the user never deleted.
 */
START_TEST(test_relocate_ignores_hard_link_twin)
{
	struct maildrop *md;
	char p[PATH_MAX], q[PATH_MAX];
	size_t x;

	make_user("u");
	put_str("u/cur/x:2,", "one file, two names\n", 1);
	ck_assert_int_eq(link(at(p, "u/cur/x:2,"), at(q, "u/cur/y:2,")), 0);
	md = open_scanned("u");
	ck_assert_uint_eq(maildir_count(md), 2);
	x = strcmp(maildir_msg(md, 1)->uid, "x") == 0 ? 1 : 2;
	ck_assert_str_eq(maildir_msg(md, x)->uid, "x");
	ck_assert(maildir_mark_deleted(md, x));
	ck_assert_int_eq(unlink(at(p, "u/cur/x:2,")), 0);
	(void)commit_all(md);
	ck_assert(exists("u/cur/y:2,"));
	maildir_close(md);
}
END_TEST

/*
 * The same when the copy went to new/ (Python's mailbox writes a new
 * MaildirMessage there): the next login would list it under the same
 * UIDL, so the deletion counts as failed.
 */
START_TEST(test_replaced_into_new_is_no_deletion)
{
	struct maildrop *md;
	char p[PATH_MAX];
	const char *why = NULL;

	make_user("u");
	put_str("u/cur/x:2,S", "mine\n", 1);
	put_str("u/cur/y:2,", "other\n", 2);
	md = open_scanned("u");
	ck_assert(maildir_mark_deleted(md, 1));
	ck_assert(maildir_mark_deleted(md, 2));
	ck_assert_int_eq(unlink(at(p, "u/cur/x:2,S")), 0);
	put_str("u/new/x", "mine\n", 1);
	ck_assert_uint_eq(commit_all(md), 1);
	ck_assert_str_eq(maildir_commit_first_failure(md, &why), "x:2,S");
	ck_assert_str_eq(why, "a file with its name remains");
	ck_assert(exists("u/new/x"));
	ck_assert(!exists("u/cur/y:2,"));
	maildir_close(md);

	/* With flags in new/ (mutt's new/X:2,F), the same. */
	put_str("u/cur/z:2,", "third\n", 3);
	md = open_scanned("u");
	ck_assert(maildir_mark_deleted(md, maildir_count(md)));
	ck_assert_int_eq(unlink(at(p, "u/cur/z:2,")), 0);
	put_str("u/new/z:2,F", "third\n", 3);
	ck_assert_uint_eq(commit_all(md), 1);
	ck_assert(exists("u/new/z:2,F"));
	maildir_close(md);
}
END_TEST

/* UPDATE goes a slice at a time, and removes just the marked files. */
START_TEST(test_commit_in_slices)
{
	struct maildrop *md;
	char rel[32];
	int i;

	make_user("u");
	for (i = 0; i < 7; i++) {
		(void)snprintf(rel, sizeof(rel), "u/cur/m%d", i);
		put_str(rel, "x\n", i + 1);
	}
	md = open_scanned("u");
	for (i = 1; i <= 7; i += 2)
		ck_assert(maildir_mark_deleted(md, (size_t)i));
	/* Marked: m0, m2, m4, m6; two per step. */
	ck_assert(!maildir_commit_step(md, 2));
	ck_assert(!exists("u/cur/m0") && !exists("u/cur/m2"));
	ck_assert(exists("u/cur/m4") && exists("u/cur/m6"));
	ck_assert(maildir_commit_step(md, 2));
	ck_assert_uint_eq(maildir_commit_failed(md), 0);
	for (i = 0; i < 7; i++) {
		(void)snprintf(rel, sizeof(rel), "u/cur/m%d", i);
		ck_assert_int_eq(exists(rel), i % 2 == 1);
	}
	maildir_close(md);
}
END_TEST

/*
 * A message whose file was replaced by a symlink before its sizing (a
 * symlink may even get the file's freed inode number) is gone: left
 * out, never followed, and the link stays on disk.  (A regular file
 * that cannot be read is noted for the log: tests/ops, as an
 * unprivileged user.)
 */
START_TEST(test_unreadable_left_out)
{
	struct maildrop *md;
	char p[PATH_MAX], q[PATH_MAX];
	bool done = false;

	make_user("u");
	put_str("u/cur/a", "a\n", 1);
	put_str("u/cur/b", "b\n", 2);
	md = open_ok("u");
	ck_assert_int_eq(maildir_scan_step(md, 1, &done), MAILDIR_OK);
	ck_assert_uint_eq(maildir_count(md), 2);
	ck_assert_int_eq(unlink(at(p, "u/cur/b")), 0);
	ck_assert_int_eq(symlink(at(q, "u/cur/a"), p), 0);
	ck_assert_int_eq(maildir_scan_step(md, SIZE_MAX, &done), MAILDIR_OK);
	ck_assert(done);
	ck_assert_uint_eq(maildir_count(md), 1);
	ck_assert_str_eq(file_of(md, 1), "a");
	ck_assert_uint_eq(maildir_notes(md)->unreadable, 0);
	ck_assert(exists("u/cur/b"));
	maildir_close(md);
}
END_TEST

/* Builds a message of `lines` lines, every third ending in CRLF. */
static char *
big_message(size_t lines, size_t *len)
{
	char *buf = malloc(lines * 64);
	size_t i, n = 0;

	ck_assert_ptr_nonnull(buf);
	for (i = 0; i < lines; i++)
		n += (size_t)snprintf(buf + n, 64, "line %zu of the body%s",
		    i, i % 3 == 0 ? "\r\n" : "\n");
	*len = n;
	return buf;
}

START_TEST(test_scan_budget)
{
	struct maildrop *md;
	size_t len, lines = 10000, calls = 0;
	char *msg = big_message(lines, &len);
	uint64_t want;
	bool done = false;

	make_user("u");
	put("u/cur/big", msg, len, 1, 0);
	put_str("u/cur/small", "x\ny", 2);	/* 1 + 2 + 1 + 2 */
	/* Bytes, plus one per LF-only line (all but every third). */
	want = len + (lines - (lines + 2) / 3);

	md = open_ok("u");
	while (!done) {
		ck_assert_int_eq(maildir_scan_step(md, 4096, &done),
		    MAILDIR_OK);
		ck_assert_uint_lt(++calls, 10000);
	}
	ck_assert_uint_eq(maildir_count(md), 2);
	ck_assert_uint_ge(calls, len / 4096);
	ck_assert_uint_eq(maildir_msg(md, 1)->size, want);
	ck_assert_uint_eq(maildir_msg(md, 1)->file_size, len);
	ck_assert_uint_eq(maildir_msg(md, 2)->size, 6);
	/* Another step after done changes nothing. */
	ck_assert_int_eq(maildir_scan_step(md, 4096, &done), MAILDIR_OK);
	ck_assert(done);
	maildir_close(md);

	md = open_scanned("u");
	ck_assert_uint_eq(maildir_msg(md, 1)->size, want);
	maildir_close(md);

	/* Sizes are remembered: a second login reads no message file. */
	md = open_ok("u");
	ck_assert_int_eq(maildir_scan_step(md, 1, &done), MAILDIR_OK);
	ck_assert(done);
	ck_assert_uint_eq(maildir_msg(md, 1)->size, want);
	maildir_close(md);

	/* A file rewritten since (new mtime) is read again. */
	put("u/cur/big", msg, len, 3, 0);

	/* Closing mid-scan releases the open file (ASan/valgrind). */
	md = open_ok("u");
	ck_assert_int_eq(maildir_scan_step(md, 100, &done), MAILDIR_OK);
	ck_assert(!done);
	maildir_close(md);
	free(msg);
}
END_TEST

START_TEST(test_mark_rollback_commit)
{
	struct maildrop *md;

	make_user("u");
	put_str("u/cur/m1", "one\n", 1);
	put_str("u/cur/m2", "two!\n", 2);
	put_str("u/cur/m3", "three\n", 3);
	md = open_scanned("u");
	ck_assert(maildir_mark_deleted(md, 2));
	ck_assert(!maildir_mark_deleted(md, 2));
	ck_assert(!maildir_mark_deleted(md, 0));
	ck_assert(!maildir_mark_deleted(md, 4));
	ck_assert(maildir_msg(md, 2)->deleted);
	ck_assert_uint_eq(maildir_live_count(md), 2);
	ck_assert_uint_eq(maildir_live_size(md), 5 + 7);

	maildir_rollback(md);
	ck_assert(!maildir_msg(md, 2)->deleted);
	ck_assert_uint_eq(maildir_live_count(md), 3);
	ck_assert_uint_eq(commit_all(md), 0);
	ck_assert(exists("u/cur/m1") && exists("u/cur/m2") &&
	    exists("u/cur/m3"));
	maildir_close(md);

	md = open_scanned("u");
	ck_assert(maildir_mark_deleted(md, 1));
	ck_assert(maildir_mark_deleted(md, 3));
	ck_assert_uint_eq(commit_all(md), 0);
	ck_assert(!exists("u/cur/m1"));
	ck_assert(exists("u/cur/m2"));
	ck_assert(!exists("u/cur/m3"));
	maildir_close(md);
	assert_only_message("u", "m2");
}
END_TEST

/*
 * A file changed after the listing but before its sizing is sized as it
 * is then: served, not refused as changed for the whole session.
 */
START_TEST(test_changed_before_sizing_is_served)
{
	static char big[64 * 1024];
	struct maildrop *md;
	char p[PATH_MAX];
	bool done = false;
	int fd = -1;
	FILE *f;

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\n';
	make_user("u");
	put("u/cur/m1", big, sizeof(big), 1, 0);
	put_str("u/cur/m2", "two\n", 2);
	md = open_ok("u");
	ck_assert_int_eq(maildir_scan_step(md, 4096, &done), MAILDIR_OK);
	ck_assert(!done);
	ck_assert_ptr_nonnull(f = fopen(at(p, "u/cur/m2"), "a"));
	ck_assert_int_ge(fputs("more\n", f), 0);
	ck_assert_int_eq(fclose(f), 0);
	while (!done)
		ck_assert_int_eq(maildir_scan_step(md, 4096, &done),
		    MAILDIR_OK);
	ck_assert_uint_eq(maildir_msg(md, 2)->size, 11);
	ck_assert_int_eq(maildir_msg_open(md, 2, &fd), MAILDIR_OK);
	ck_assert_int_eq(close(fd), 0);
	maildir_close(md);
}
END_TEST

START_TEST(test_msg_open)
{
	struct maildrop *md;
	char buf[16], p[PATH_MAX];
	int fd = 123;

	make_user("u");
	put_str("u/cur/m1", "body\n", 1);
	put_str("u/cur/m2", "gone\n", 2);
	put_str("u/cur/m3", "longer\n", 3);
	md = open_scanned("u");

	ck_assert_int_eq(maildir_msg_open(md, 1, &fd), MAILDIR_OK);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(read(fd, buf, sizeof(buf)), 5);
	ck_assert_mem_eq(buf, "body\n", 5);
	ck_assert_int_ne(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
	ck_assert_int_eq(close(fd), 0);

	ck_assert_int_eq(unlink(at(p, "u/cur/m2")), 0);
	ck_assert_int_eq(maildir_msg_open(md, 2, &fd), MAILDIR_GONE);
	ck_assert_int_eq(fd, -1);

	ck_assert_int_eq(truncate(at(p, "u/cur/m3"), 3), 0);
	ck_assert_int_eq(maildir_msg_open(md, 3, &fd), MAILDIR_CHANGED);
	ck_assert_int_eq(fd, -1);

	/* Rewritten in place, same length: the mtime tells. */
	put_str("u/cur/m1", "BODY\n", 9);
	ck_assert_int_eq(maildir_msg_open(md, 1, &fd), MAILDIR_CHANGED);
	ck_assert_int_eq(fd, -1);

	ck_assert_int_ne(maildir_msg_open(md, 0, &fd), MAILDIR_OK);
	ck_assert_int_ne(maildir_msg_open(md, 4, &fd), MAILDIR_OK);
	maildir_close(md);
}
END_TEST

/*
 * Another Maildir reader renamed files to change their flags (the part
 * after ':'): RETR and DELE follow the unique name; a name that is
 * another listed message's file is never taken; a file really gone
 * stays gone and counts as deleted.
 */
START_TEST(test_flags_renamed_under_us)
{
	struct maildrop *md;
	char a[PATH_MAX], b[PATH_MAX], buf[16];
	int fd = -1;

	make_user("u");
	put_str("u/cur/m1:2,", "one\n", 1);
	put_str("u/cur/m2:2,", "two!\n", 2);
	put_str("u/cur/m3:2,", "three\n", 3);
	put_str("u/cur/m4:2,", "four\n", 4);
	put_str("u/cur/m4:2,F", "four, flagged twin\n", 5);
	md = open_scanned("u");
	ck_assert_uint_eq(maildir_count(md), 5);
	ck_assert_int_eq(rename(at(a, "u/cur/m1:2,"), at(b, "u/cur/m1:2,S")), 0);
	ck_assert_int_eq(rename(at(a, "u/cur/m2:2,"), at(b, "u/cur/m2:2,RS")),
	    0);
	ck_assert_int_eq(unlink(at(a, "u/cur/m3:2,")), 0);
	ck_assert_int_eq(unlink(at(a, "u/cur/m4:2,")), 0);

	ck_assert_int_eq(maildir_msg_open(md, 1, &fd), MAILDIR_OK);
	ck_assert_int_eq(read(fd, buf, sizeof(buf)), 4);
	ck_assert_mem_eq(buf, "one\n", 4);
	ck_assert_int_eq(close(fd), 0);
	ck_assert_str_eq(file_of(md, 1), "m1:2,S");
	ck_assert_str_eq(maildir_msg(md, 1)->uid, "m1");
	ck_assert_int_eq(maildir_msg_open(md, 3, &fd), MAILDIR_GONE);
	/* m4's twin is message 5 of its own: not taken for message 4. */
	ck_assert_int_eq(maildir_msg_open(md, 4, &fd), MAILDIR_GONE);
	ck_assert_int_eq(fd, -1);

	for (size_t n = 1; n <= 4; n++)
		ck_assert(maildir_mark_deleted(md, n));
	ck_assert_uint_eq(commit_all(md), 0);
	ck_assert(!exists("u/cur/m1:2,S"));
	ck_assert(!exists("u/cur/m2:2,RS"));
	/* The twin got a name of its own at open, and is still there. */
	ck_assert(strncmp(file_of(md, 5), "m4.I", 4) == 0);
	(void)snprintf(b, sizeof(b), "u/cur/%s", file_of(md, 5));
	ck_assert(exists(b));
	maildir_close(md);
}
END_TEST

/*
 * Takes every free descriptor (under a lowered limit) until release();
 * returns how many it took.
 */
static int held_fds[64];
static int nheld;
static struct rlimit saved_nofile;

static void
exhaust_fds(void)
{
	struct rlimit low;
	int fd;

	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &saved_nofile), 0);
	low = saved_nofile;
	low.rlim_cur = 64;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
	for (nheld = 0; (fd = open("/dev/null", O_RDONLY)) >= 0; nheld++) {
		ck_assert_int_lt(nheld, 64);
		held_fds[nheld] = fd;
	}
	ck_assert_int_eq(errno, EMFILE);
}

static void
release_fds(void)
{
	while (nheld > 0)
		ck_assert_int_eq(close(held_fds[--nheld]), 0);
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &saved_nofile), 0);
}

/*
 * A renamed message whose new name cannot be searched for (no
 * descriptor for cur/) is a failed deletion, not a done one: it would
 * come back at the next login.
 */
START_TEST(test_commit_cannot_search_is_failure)
{
	struct maildrop *md;
	char a[PATH_MAX], b[PATH_MAX];
	int fd = -1;
	const char *why = NULL;

	make_user("u");
	put_str("u/cur/m:2,", "renamed\n", 1);
	md = open_scanned("u");
	ck_assert_int_eq(rename(at(a, "u/cur/m:2,"), at(b, "u/cur/m:2,S")), 0);
	ck_assert(maildir_mark_deleted(md, 1));
	exhaust_fds();
	ck_assert_int_eq(maildir_msg_open(md, 1, &fd), MAILDIR_IO);
	ck_assert(maildir_commit_step(md, 0));
	release_fds();
	ck_assert_uint_eq(maildir_commit_failed(md), 1);
	ck_assert_str_eq(maildir_commit_first_failure(md, &why), "m:2,");
	ck_assert_str_eq(why, strerror(EMFILE));
	ck_assert(exists("u/cur/m:2,S"));
	maildir_close(md);
}
END_TEST

/* User u with cur/m1:2, .. m3:2, (in that order), opened and sized. */
static struct maildrop *
three_in_cur(void)
{
	char name[32];

	make_user("u");
	for (int i = 1; i <= 3; i++) {
		(void)snprintf(name, sizeof(name), "u/cur/m%d:2,", i);
		put_str(name, "body\n", i);
	}
	return open_scanned("u");
}

/* A rename between two slices of a QUIT is followed too. */
START_TEST(test_commit_follows_rename_between_slices)
{
	struct maildrop *md;
	char a[PATH_MAX], b[PATH_MAX];

	make_user("u");
	put_str("u/cur/m1:2,", "one\n", 1);
	put_str("u/cur/m2:2,", "two\n", 2);
	put_str("u/cur/m3:2,", "three\n", 3);
	md = open_scanned("u");
	for (size_t n = 1; n <= 3; n++)
		ck_assert(maildir_mark_deleted(md, n));
	ck_assert_int_eq(rename(at(a, "u/cur/m1:2,"), at(b, "u/cur/m1:2,S")), 0);
	ck_assert(!maildir_commit_step(md, 1));	/* reads cur/ for m1 */
	ck_assert(!exists("u/cur/m1:2,S"));
	ck_assert_int_eq(rename(at(a, "u/cur/m2:2,"), at(b, "u/cur/m2:2,S")), 0);
	ck_assert(maildir_commit_step(md, 0));
	ck_assert_uint_eq(maildir_commit_failed(md), 0);
	ck_assert(!exists("u/cur/m2:2,S"));
	ck_assert(!exists("u/cur/m3:2,"));
	maildir_close(md);
}
END_TEST

/* The unit binary is linked with --wrap=opendir: readings of cur/. */
DIR *__real_opendir(const char *name);
DIR *__wrap_opendir(const char *name);
static unsigned opendirs;
/* A test's hook, run just before the library opens cur/. */
static void (*before_opendir)(void);

/* Readings of new/, and whether the last folder opened was new/. */
static unsigned newdirs;
static bool reading_new;

DIR *
__wrap_opendir(const char *name)
{
	size_t n = strlen(name);

	reading_new = n >= 4 && strcmp(name + n - 4, "/new") == 0;
	newdirs += reading_new;
	if (n >= 4 && strcmp(name + n - 4, "/cur") == 0) {
		opendirs++;
		if (before_opendir != NULL)
			before_opendir();
	}
	return __real_opendir(name);
}

/*
 * And with --wrap=closedir: a test sets a hook that plays another
 * reader renaming a file just after the library read a folder.
 */
int __real_closedir(DIR *d);
int __wrap_closedir(DIR *d);
static void (*after_closedir)(void);

int
__wrap_closedir(DIR *d)
{
	int rc = __real_closedir(d);

	if (after_closedir != NULL)
		after_closedir();
	return rc;
}

/* An IMAP client renames hook_from to hook_to just after cur/ was read. */
static const char *hook_from, *hook_to;

static void
imap_renames(void)
{
	char a[PATH_MAX], b[PATH_MAX];

	after_closedir = NULL;
	ck_assert_int_eq(rename(at(a, hook_from), at(b, hook_to)), 0);
}

/*
 * Files renamed between the listing and their sizing (an IMAP client
 * marking everything read during the login) are followed and sized,
 * never left out; a rename after the step's reading of cur/ waits for
 * the next step's reading.
 */
START_TEST(test_scan_follows_renames)
{
	struct maildrop *md;
	char a[PATH_MAX], b[PATH_MAX], name[16];
	bool done = false;
	int steps = 0;

	make_user("u");
	for (int i = 0; i < 5; i++) {
		(void)snprintf(name, sizeof(name), "u/cur/%c:2,", 'a' + i);
		put_str(name, "body\n", i + 1);
	}
	md = open_ok("u");
	ck_assert_int_eq(maildir_scan_step(md, 1, &done), MAILDIR_OK);
	ck_assert(!done);
	ck_assert_int_eq(rename(at(a, "u/cur/c:2,"), at(b, "u/cur/c:2,S")), 0);
	ck_assert_int_eq(rename(at(a, "u/cur/d:2,"), at(b, "u/cur/d:2,S")), 0);
	hook_from = "u/cur/e:2,";
	hook_to = "u/cur/e:2,S";
	after_closedir = imap_renames;	/* c's miss reads cur/ */
	while (!done && steps++ < 10)
		ck_assert_int_eq(maildir_scan_step(md, SIZE_MAX, &done),
		    MAILDIR_OK);
	ck_assert(done);
	ck_assert(after_closedir == NULL);
	ck_assert_uint_eq(maildir_count(md), 5);
	ck_assert_str_eq(file_of(md, 3), "c:2,S");
	ck_assert_str_eq(file_of(md, 4), "d:2,S");
	ck_assert_str_eq(file_of(md, 5), "e:2,S");
	for (size_t n = 1; n <= 5; n++)
		ck_assert_uint_eq(maildir_msg(md, n)->size, 6);
	maildir_close(md);
}
END_TEST

/* Three messages marked deleted; m1 re-flagged since the listing. */
static struct maildrop *
three_deleted_m1_flagged(void)
{
	struct maildrop *md = three_in_cur();
	char a[PATH_MAX], b[PATH_MAX];

	for (size_t n = 1; n <= 3; n++)
		ck_assert(maildir_mark_deleted(md, n));
	ck_assert_int_eq(rename(at(a, "u/cur/m1:2,"), at(b, "u/cur/m1:2,S")), 0);
	return md;
}

/*
 * A file renamed after cur/ was read for the QUIT's slice is followed
 * and deleted, not taken for gone (and left, under a +OK, to come back
 * at the next login).
 */
START_TEST(test_commit_follows_rename_after_reading)
{
	struct maildrop *md = three_deleted_m1_flagged();

	hook_from = "u/cur/m2:2,";
	hook_to = "u/cur/m2:2,S";
	after_closedir = imap_renames;	/* m1's miss reads cur/ */
	ck_assert(maildir_commit_step(md, 0));
	ck_assert(after_closedir == NULL);
	ck_assert_uint_eq(maildir_commit_failed(md), 0);
	ck_assert(!exists("u/cur/m1:2,S"));
	ck_assert(!exists("u/cur/m2:2,S"));
	ck_assert(!exists("u/cur/m3:2,"));
	maildir_close(md);
}
END_TEST

/*
 * Another reader re-flags m1 just after each reading of cur/, `storm`
 * times (or for ever if negative): m1's name is never the one read.
 */
static int storm;
static unsigned storm_flips;

static void
flag_storm(void)
{
	static const char *names[] = { "u/cur/m1:2,S", "u/cur/m1:2,RS" };
	char a[PATH_MAX], b[PATH_MAX];

	if (storm == 0)
		return;
	if (storm > 0)
		storm--;
	ck_assert_int_eq(rename(at(a, names[storm_flips % 2]),
	    at(b, names[(storm_flips + 1) % 2])), 0);
	storm_flips++;
}

/* QUIT with m1 re-flagged after each of `flips` readings of cur/. */
static struct maildrop *
commit_in_storm(int flips)
{
	struct maildrop *md = three_deleted_m1_flagged();

	storm = flips;
	storm_flips = 0;
	after_closedir = flag_storm;
	ck_assert(maildir_commit_step(md, 0));
	after_closedir = NULL;
	return md;
}

/*
 * A file renamed again after the reading that found it (a flag storm)
 * is looked for in another reading and deleted, not taken for gone.
 */
START_TEST(test_commit_follows_repeated_renames)
{
	struct maildrop *md = commit_in_storm(COMMIT_REREADS - 1);
	const char *why = NULL;

	ck_assert_uint_eq(storm_flips, COMMIT_REREADS - 1);
	ck_assert_uint_eq(maildir_commit_failed(md), 0);
	ck_assert_ptr_null(maildir_commit_first_failure(md, &why));
	ck_assert(!exists("u/cur/m1:2,S"));
	ck_assert(!exists("u/cur/m1:2,RS"));
	ck_assert(!exists("u/cur/m2:2,"));
	maildir_close(md);
}
END_TEST

/*
 * One still moving after COMMIT_REREADS readings counts as failed (the
 * QUIT answers -ERR) and stays, never counted as deleted under a +OK.
 */
START_TEST(test_commit_endless_renames_fail)
{
	struct maildrop *md = commit_in_storm(-1);
	const char *why = NULL;

	ck_assert_uint_eq(storm_flips, COMMIT_REREADS + 1);
	ck_assert_uint_eq(maildir_commit_failed(md), 1);
	ck_assert_ptr_nonnull(maildir_commit_first_failure(md, &why));
	ck_assert_str_eq(why, "another program kept renaming it");
	ck_assert(exists(storm_flips % 2 ? "u/cur/m1:2,RS" : "u/cur/m1:2,S"));
	ck_assert(!exists("u/cur/m2:2,"));
	ck_assert(!exists("u/cur/m3:2,"));
	maildir_close(md);
}
END_TEST

/* m1's name now, after storm_flips re-flaggings by flag_storm. */
static const char *
storm_name(void)
{
	return storm_flips % 2 ? "u/cur/m1:2,RS" : "u/cur/m1:2,S";
}

/* Before the last reading: m1 leaves cur/ (its mtime moves). */
static void
hide_from_last_reading(void)
{
	char a[PATH_MAX], b[PATH_MAX];

	if (opendirs == 1 + COMMIT_REREADS)
		ck_assert_int_eq(rename(at(a, storm_name()), at(b, "u/tmp/m1")),
		    0);
}

/* After each reading but the last, m1 is re-flagged; then it is back. */
static void
storm_then_back(void)
{
	char a[PATH_MAX], b[PATH_MAX];

	if (opendirs < 1 + COMMIT_REREADS)
		flag_storm();
	else
		ck_assert_int_eq(rename(at(a, "u/tmp/m1"), at(b, storm_name())),
		    0);
}

/*
 * A file seen in the re-readings but missing from the last one, which
 * cur/ changed under, was not shown gone: it counts as failed and
 * stays, never as deleted under a +OK.
 */
START_TEST(test_commit_seen_then_hidden_fails)
{
	struct maildrop *md = three_deleted_m1_flagged();
	const char *why = NULL;

	storm = -1;
	storm_flips = 0;
	opendirs = 0;
	before_opendir = hide_from_last_reading;
	after_closedir = storm_then_back;
	ck_assert(maildir_commit_step(md, 0));
	before_opendir = after_closedir = NULL;
	ck_assert_uint_eq(opendirs, 1 + COMMIT_REREADS);
	ck_assert_uint_eq(maildir_commit_failed(md), 1);
	ck_assert_ptr_nonnull(maildir_commit_first_failure(md, &why));
	ck_assert_str_eq(why, "another program kept renaming it");
	ck_assert(exists(storm_name()));
	ck_assert(!exists("u/cur/m2:2,"));
	maildir_close(md);
}
END_TEST

/* Sets u/cur's mtime to `ago` seconds before now. */
static void
age_cur(time_t ago)
{
	char p[PATH_MAX];
	struct timespec t[2];

	ck_assert_int_eq(clock_gettime(CLOCK_REALTIME, &t[0]), 0);
	t[0].tv_sec -= ago;
	t[1] = t[0];
	ck_assert_int_eq(utimensat(AT_FDCWD, at(p, "u/cur"), t, 0), 0);
}

/* u's x, y and z, listed, DELEd and unlinked; k, if asked, kept. */
static struct maildrop *
three_deleted(bool with_k)
{
	struct maildrop *md;

	make_user("u");
	put_str("u/cur/x:2,", "one\n", 1);
	put_str("u/cur/y:2,", "two\n", 2);
	put_str("u/cur/z:2,", "three\n", 3);
	if (with_k)
		put_str("u/cur/k:2,", "kept\n", 4);
	md = open_scanned("u");
	for (size_t n = 1; n <= 3; n++)
		ck_assert(maildir_mark_deleted(md, n));
	ck_assert_uint_eq(commit_all(md), 0);
	return md;
}

/*
 * A copy written after the QUIT deleted the listed file (Python's
 * mailbox rewriting flags just then), in cur/ or in new/: the next login
 * would list it under the same UIDL, so the deletion counts as failed.
 * One reading of cur/ for the check; none when nothing was deleted.
 */
START_TEST(test_commit_verify_sees_late_copies)
{
	struct maildrop *md = three_deleted(false);
	const char *why = NULL;

	put_str("u/cur/x:2,S", "one\n", 4);
	put_str("u/new/z:2,F", "three\n", 5);
	opendirs = 0;
	ck_assert(maildir_commit_verify(md, 0));
	ck_assert_uint_eq(opendirs, 1);
	ck_assert_uint_eq(maildir_commit_failed(md), 2);
	ck_assert_str_eq(maildir_commit_first_failure(md, &why), "x:2,");
	ck_assert_str_eq(why, "a file with its name remains");
	maildir_close(md);

	/* Nothing deleted: nothing to read. */
	md = open_scanned("u");
	opendirs = 0;
	ck_assert_uint_eq(commit_all(md), 0);
	ck_assert(maildir_commit_verify(md, 0));
	ck_assert_uint_eq(opendirs, 0);
	ck_assert_uint_eq(maildir_commit_failed(md), 0);
	maildir_close(md);
}
END_TEST

/*
 * The verify reads a slice of entries per call, so a big cur/ never
 * stalls the server; new/ is read after cur/, and a copy that lands
 * there before its reading is seen.
 */
START_TEST(test_commit_verify_in_slices)
{
	struct maildrop *md = three_deleted(true);
	unsigned calls = 1;

	put_str("u/cur/x:2,S", "one\n", 5);
	ck_assert(!maildir_commit_verify(md, 1));
	put_str("u/new/y", "two\n", 6);
	while (!maildir_commit_verify(md, 1))
		calls++;
	/* cur/: ., .., k, x; new/: ., .., y; and the end of each. */
	ck_assert_uint_ge(calls, 7);
	ck_assert_uint_eq(maildir_commit_failed(md), 2);
	ck_assert(maildir_commit_verify(md, 1));
	ck_assert_uint_eq(maildir_commit_failed(md), 2);
	maildir_close(md);
}
END_TEST

/* And with --wrap=readdir64: directory entries the library read. */
struct dirent *__real_readdir64(DIR *d);
struct dirent *__wrap_readdir64(DIR *d);
static unsigned readdirs;

struct dirent *
__wrap_readdir64(DIR *d)
{
	readdirs++;
	return __real_readdir64(d);
}

/*
 * No call reads more than its slice, with cur/ (., .., k, x) one entry
 * longer than the slice, as long, or one shorter; a call that is not
 * the last uses its whole slice.
 */
START_TEST(test_commit_verify_slice_bound)
{
	struct maildrop *md = three_deleted(true);
	size_t max = 3 + (size_t)_i;
	bool done;

	put_str("u/cur/x:2,S", "one\n", 5);
	put_str("u/new/y", "two\n", 6);
	do {
		readdirs = 0;
		done = maildir_commit_verify(md, max);
		ck_assert_uint_le(readdirs, max);
		if (!done)
			ck_assert_uint_eq(readdirs, max);
	} while (!done);
	ck_assert_uint_eq(maildir_commit_failed(md), 2);
	maildir_close(md);
}
END_TEST

/*
 * A deletion that failed already is not counted twice, and one whose
 * name no file took again stands.
 */
START_TEST(test_commit_verify_counts_once)
{
	struct maildrop *md;
	char p[PATH_MAX];

	make_user("u");
	/* x, whose deletion fails, comes after y, whose deletion stands. */
	put_str("u/cur/y:2,", "other\n", 1);
	put_str("u/cur/x:2,", "mine\n", 2);
	md = open_scanned("u");
	ck_assert(maildir_mark_deleted(md, 1));
	ck_assert(maildir_mark_deleted(md, 2));
	put_str("u/cur/x:2,S", "copy\n", 3);
	ck_assert_int_eq(unlink(at(p, "u/cur/x:2,")), 0);
	ck_assert_uint_eq(commit_all(md), 1);
	ck_assert(maildir_commit_verify(md, 0));
	ck_assert_uint_eq(maildir_commit_failed(md), 1);
	ck_assert(!exists("u/cur/y:2,"));
	maildir_close(md);
}
END_TEST

/*
 * An IMAP client re-flags the copy that replaced a DELEd message just
 * after every reading: each reading lists it under a name gone by the
 * time it is looked at.  Renamed, it is still there: no +OK.
 */
static void
reflag_copy(void)
{
	static bool flagged;
	char a[PATH_MAX], b[PATH_MAX];

	ck_assert_int_eq(rename(at(a, flagged ? "u/cur/x:2,RS" : "u/cur/x:2,S"),
	    at(b, flagged ? "u/cur/x:2,S" : "u/cur/x:2,RS")), 0);
	flagged = !flagged;
}

START_TEST(test_commit_copy_renamed_after_reading_fails)
{
	struct maildrop *md;
	char p[PATH_MAX];
	const char *why = NULL;

	make_user("u");
	put_str("u/cur/x:2,", "mine\n", 1);
	md = open_scanned("u");
	ck_assert(maildir_mark_deleted(md, 1));
	/* The copy first: its inode is not the one the unlink frees. */
	put_str("u/cur/x:2,S", "copy\n", 2);
	ck_assert_int_eq(unlink(at(p, "u/cur/x:2,")), 0);
	after_closedir = reflag_copy;
	ck_assert(maildir_commit_step(md, 0));
	after_closedir = NULL;
	ck_assert_uint_eq(maildir_commit_failed(md), 1);
	ck_assert_ptr_nonnull(maildir_commit_first_failure(md, &why));
	ck_assert_str_eq(why, "a file with its name remains");
	ck_assert(exists("u/cur/x:2,S") || exists("u/cur/x:2,RS"));
	maildir_close(md);
}
END_TEST

/*
 * m2 is re-flagged just after the slice's own reading of cur/ (a
 * sighting), then moved to new/ (mutt marking it new) just after new/
 * was read for m1, which another client expunged: the reading of new/
 * that cleared m1 is older than the reading of cur/ without m2.
 */
static void
reflag_then_renew_m2(void)
{
	char a[PATH_MAX], b[PATH_MAX];

	if (!reading_new && opendirs == 1)
		ck_assert_int_eq(rename(at(a, "u/cur/m2:2,S"),
		    at(b, "u/cur/m2:2,RS")), 0);
	else if (reading_new && newdirs == 1)
		ck_assert_int_eq(rename(at(a, "u/cur/m2:2,RS"),
		    at(b, "u/new/m2:2,RS")), 0);
}

START_TEST(test_commit_moved_to_new_after_its_reading_fails)
{
	struct maildrop *md = three_in_cur();
	char a[PATH_MAX], b[PATH_MAX];

	ck_assert(maildir_mark_deleted(md, 1));
	ck_assert(maildir_mark_deleted(md, 2));
	ck_assert_int_eq(unlink(at(a, "u/cur/m1:2,")), 0);
	ck_assert_int_eq(rename(at(a, "u/cur/m2:2,"), at(b, "u/cur/m2:2,S")),
	    0);
	age_cur(10);
	opendirs = newdirs = 0;
	after_closedir = reflag_then_renew_m2;
	while (!maildir_commit_step(md, 0))
		;
	after_closedir = NULL;
	ck_assert_uint_ge(newdirs, 1);
	ck_assert_uint_eq(maildir_commit_failed(md), 1);
	ck_assert(exists("u/new/m2:2,RS"));
	maildir_close(md);
}
END_TEST

/*
 * Another reader renames m1 just before a reading of cur/ and back just
 * after: the reading holds m1 under the name the QUIT just failed on.
 */
static const char *const *flip_steps;

static void
flip_step(void)
{
	char a[PATH_MAX], b[PATH_MAX];
	const char *step = *flip_steps;

	if (step == NULL)
		return;
	flip_steps++;
	ck_assert_int_eq(rename(at(a, step), at(b, step + strlen(step) + 1)),
	    0);
}

/*
 * A file renamed back to a name the QUIT already failed on is seen in
 * the reading and deleted, not taken for gone under a +OK.
 */
START_TEST(test_commit_follows_rename_back)
{
	/* "from\0to": before and after each reading of cur/. */
	static const char *const steps[] = {
		"u/cur/m1:2,S\0u/cur/m1:2,", "u/cur/m1:2,\0u/cur/m1:2,S",
		"u/cur/m1:2,S\0u/cur/m1:2,", NULL,
	};
	struct maildrop *md = three_deleted_m1_flagged();

	flip_steps = steps;
	before_opendir = after_closedir = flip_step;
	ck_assert(maildir_commit_step(md, 0));
	before_opendir = after_closedir = NULL;
	ck_assert(*flip_steps == NULL);
	ck_assert_uint_eq(maildir_commit_failed(md), 0);
	ck_assert(!exists("u/cur/m1:2,"));
	ck_assert(!exists("u/cur/m1:2,S"));
	maildir_close(md);
}
END_TEST

/*
 * Another reader changes cur/ while the second reading of it runs (its
 * mtime moves).
 */
static void
cur_changes(void)
{
	char p[PATH_MAX];
	const struct timespec past[2] = { { 1000000000, 0 },
	    { 1000000000, 0 } };

	if (opendirs < 2)
		return;
	before_opendir = NULL;
	ck_assert_int_eq(utimensat(AT_FDCWD, at(p, "u/cur"), past, 0), 0);
}

/*
 * QUIT of three messages, m1 expunged by another client first, with
 * `hook` run before each reading of cur/: how many readings it took.
 * Every file is gone, so none may count as failed.
 */
static unsigned
commit_m1_expunged(void (*hook)(void))
{
	struct maildrop *md = three_deleted_m1_flagged();
	char p[PATH_MAX];

	ck_assert_int_eq(unlink(at(p, "u/cur/m1:2,S")), 0);
	opendirs = 0;
	before_opendir = hook;
	after_closedir = NULL;
	ck_assert(maildir_commit_step(md, 0));
	before_opendir = NULL;
	ck_assert_uint_eq(maildir_commit_failed(md), 0);
	ck_assert(!exists("u/cur/m2:2,"));
	maildir_close(md);
	return opendirs;
}

/*
 * A file missing from a reading that cur/ changed under (a rename can
 * hide an entry from readdir) is looked for in one more reading before
 * it counts as deleted.
 */
START_TEST(test_commit_rereads_after_unsteady_reading)
{
	/* The miss's reading, the retry's (moved), and one more. */
	ck_assert_uint_eq(commit_m1_expunged(cur_changes), 3);
}
END_TEST

/* cur/ changes during every reading (its mtime moves each time). */
static void
cur_keeps_changing(void)
{
	static time_t t = 1000000000;
	char p[PATH_MAX];
	struct timespec when[2] = { { 0, 0 }, { 0, 0 } };

	when[0].tv_sec = when[1].tv_sec = t++;
	ck_assert_int_eq(utimensat(AT_FDCWD, at(p, "u/cur"), when, 0), 0);
}

/*
 * A file another client expunged counts as deleted even while cur/ is
 * busy for the whole QUIT (an IMAP client changing flags): missing
 * from every reading, it is gone; the QUIT must not answer -ERR.
 */
START_TEST(test_commit_gone_from_a_busy_cur)
{
	ck_assert_uint_eq(commit_m1_expunged(cur_keeps_changing),
	    1 + COMMIT_REREADS);
}
END_TEST

/*
 * After another reader re-flagged every message, fetching them all reads
 * cur/ once, not once a message; a name changed again since that read
 * is looked for afresh, never taken for gone.
 */
START_TEST(test_open_keeps_cur_index)
{
	struct maildrop *md;
	char a[PATH_MAX], b[PATH_MAX], name[32], flagged[32];
	int fd = -1;

	md = three_in_cur();
	for (int i = 1; i <= 3; i++) {
		(void)snprintf(name, sizeof(name), "u/cur/m%d:2,", i);
		(void)snprintf(flagged, sizeof(flagged), "u/cur/m%d:2,S", i);
		ck_assert_int_eq(rename(at(a, name), at(b, flagged)), 0);
	}
	opendirs = 0;
	for (size_t n = 1; n <= 2; n++) {
		ck_assert_int_eq(maildir_msg_open(md, n, &fd), MAILDIR_OK);
		ck_assert_int_eq(close(fd), 0);
	}
	ck_assert_uint_eq(opendirs, 1);
	ck_assert_str_eq(file_of(md, 2), "m2:2,S");

	ck_assert_int_eq(rename(at(a, "u/cur/m3:2,S"), at(b, "u/cur/m3:2,RS")),
	    0);
	ck_assert_int_eq(maildir_msg_open(md, 3, &fd), MAILDIR_OK);
	ck_assert_int_eq(close(fd), 0);
	ck_assert_uint_eq(opendirs, 2);
	ck_assert_str_eq(file_of(md, 3), "m3:2,RS");
	maildir_close(md);
}
END_TEST

static void
expect_gone(struct maildrop *md, size_t n, unsigned reads)
{
	int fd = -1;

	ck_assert_int_eq(maildir_msg_open(md, n, &fd), MAILDIR_GONE);
	ck_assert_uint_eq(opendirs, reads);
}

/* Renames u/cur/from to u/cur/to and puts cur/'s mtime back as it was. */
static void
rename_same_tick(const char *from, const char *to)
{
	char a[PATH_MAX], b[PATH_MAX], d[PATH_MAX];
	struct stat sb;
	struct timespec t[2];

	ck_assert_int_eq(stat(at(d, "u/cur"), &sb), 0);
	ck_assert_int_eq(rename(at(a, from), at(b, to)), 0);
	t[0] = sb.st_atim;
	t[1] = sb.st_mtim;
	ck_assert_int_eq(utimensat(AT_FDCWD, d, t, 0), 0);
}

/*
 * A message whose file is gone makes the server read cur/ again only
 * when that can tell something new: after cur/ changed, or while its
 * last change is so recent that another in the same clock tick would
 * not show.  Once that change is old, a client retrying the message
 * must not make the server list a huge cur/ at every RETR.
 */
START_TEST(test_gone_reads_cur_once)
{
	struct maildrop *md;
	char a[PATH_MAX], b[PATH_MAX];
	/* Far longer than reading a 3-file cur/ takes. */
	const struct timespec pause = { 0, 100 * 1000000 };
	int fd = -1;

	md = three_in_cur();
	ck_assert_int_eq(unlink(at(a, "u/cur/m2:2,")), 0);
	age_cur(10);
	opendirs = 0;
	for (int i = 0; i < 3; i++)
		expect_gone(md, 2, 1);

	ck_assert_int_eq(rename(at(a, "u/cur/m3:2,"), at(b, "u/cur/m3:2,S")),
	    0);
	ck_assert_int_eq(maildir_msg_open(md, 3, &fd), MAILDIR_OK);
	ck_assert_int_eq(close(fd), 0);
	ck_assert_uint_eq(opendirs, 2);

	/* A rename in the same tick as the last change is still followed. */
	rename_same_tick("u/cur/m1:2,", "u/cur/m1:2,S");
	ck_assert_int_eq(nanosleep(&pause, NULL), 0);
	ck_assert_int_eq(maildir_msg_open(md, 1, &fd), MAILDIR_OK);
	ck_assert_int_eq(close(fd), 0);
	ck_assert_uint_eq(opendirs, 3);
	ck_assert_str_eq(file_of(md, 1), "m1:2,S");

	age_cur(10);
	expect_gone(md, 2, 4);		/* changed */
	expect_gone(md, 2, 4);		/* settled: gone for sure */
	maildir_close(md);
}
END_TEST

/*
 * The unit binary is also linked with --wrap=link and --wrap=fstatat64:
 * a test sets a hook that plays another reader of the maildrop (an IMAP
 * server) renaming a file at the worst moment.
 */
int __real_link(const char *from, const char *to);
int __wrap_link(const char *from, const char *to);
int __real_fstatat64(int dirfd, const char *name, struct stat *sb,
    int flags);
int __wrap_fstatat64(int dirfd, const char *name, struct stat *sb,
    int flags);
static void (*before_link)(const char *from);
static void (*after_stat)(const char *name);
static int link_errno;	/* non-zero: a file system without hard links */

int
__wrap_link(const char *from, const char *to)
{
	if (before_link != NULL)
		before_link(from);
	if (link_errno != 0) {
		errno = link_errno;
		return -1;
	}
	return __real_link(from, to);
}

int
__wrap_fstatat64(int dirfd, const char *name, struct stat *sb, int flags)
{
	int rc = __real_fstatat64(dirfd, name, sb, flags);

	if (after_stat != NULL)
		after_stat(name);
	return rc;
}

static bool
ends_with(const char *s, const char *tail)
{
	size_t ls = strlen(s), lt = strlen(tail);

	return ls >= lt && strcmp(s + ls - lt, tail) == 0;
}

/* An IMAP server moves new/m to cur/m:2, just before the link does. */
static void
imap_moves_m_first(const char *from)
{
	char p[PATH_MAX];

	if (ends_with(from, "/u/new/m"))
		ck_assert_int_eq(rename(from, at(p, "u/cur/m:2,")), 0);
}

/*
 * The move of new/m loses the race to another reader that moved it to
 * the very name in cur/: the file is there, and stays, served once.
 */
START_TEST(test_move_loses_race)
{
	struct maildrop *md;

	make_user("u");
	put_str("u/new/m", "mine\n", 1);
	before_link = imap_moves_m_first;
	md = open_scanned("u");
	before_link = NULL;
	ck_assert_uint_eq(maildir_count(md), 1);
	ck_assert_str_eq(file_of(md, 1), "m:2,");
	maildir_close(md);
	assert_only_message("u", "m:2,");
}
END_TEST

/*
 * Without hard links the move into cur/ falls back to rename(), which
 * would replace a message already there under the target name.
 */
START_TEST(test_no_hard_links_never_overwrites)
{
	struct maildrop *md;
	char p[PATH_MAX];
	struct stat sb;

	make_user("u");
	put_str("u/cur/x:2,", "already listed\n", 5);
	put_str("u/new/x", "new\n", 6);
	link_errno = EPERM;
	md = open_scanned("u");
	link_errno = 0;
	ck_assert_uint_eq(maildir_count(md), 2);
	ck_assert_int_eq(stat(at(p, "u/cur/x:2,"), &sb), 0);
	ck_assert_int_eq(sb.st_size, 15);
	maildir_close(md);
}
END_TEST

static unsigned x_names_seen;

/* Once the listing read both names, x:2,S becomes x:2, (the rename). */
static void
imap_clears_flag_of_x(const char *name)
{
	char p[PATH_MAX];

	if (strncmp(name, "x:2,", 4) == 0 && ++x_names_seen == 2)
		ck_assert_int_eq(unlink(at(p, "u/cur/x:2,S")), 0);
}

/*
 * Another reader renames cur/x:2,S to cur/x:2, while cur/ is listed,
 * which can show both names of the one file.  The name gone is left
 * out; the file is kept under the name it has, and served once.
 */
START_TEST(test_listing_sees_rename)
{
	struct maildrop *md;

	make_user("u");
	put_str("u/cur/x:2,S", "mine\n", 1);
	link_rel("u/cur/x:2,S", "u/cur/x:2,");
	x_names_seen = 0;
	after_stat = imap_clears_flag_of_x;
	md = open_scanned("u");
	after_stat = NULL;
	ck_assert_uint_eq(x_names_seen, 2);
	ck_assert_uint_eq(maildir_count(md), 1);
	ck_assert_str_eq(file_of(md, 1), "x:2,");
	maildir_close(md);
	assert_only_message("u", "x:2,");
}
END_TEST

static int spare_fds[256];
static size_t spare_count;
static bool m_listed;

static void
note_m_listed(const char *name)
{
	m_listed = m_listed || strcmp(name, "m:2,") == 0;
}

/* Once the listing has read m:2, and closed cur/, no descriptor is left. */
static void
take_every_descriptor(void)
{
	if (!m_listed || spare_count > 0)
		return;
	while (spare_count < sizeof(spare_fds) / sizeof(spare_fds[0]) &&
	    (spare_fds[spare_count] = dup(0)) >= 0)
		spare_count++;
}

/*
 * No descriptor left to size a message is the server's trouble, not
 * the message's: the login fails (to be tried again) rather than
 * serve a maildrop without that message.
 */
START_TEST(test_no_descriptor_left_fails_the_scan)
{
	struct maildrop *md;
	struct rlimit old, low;
	enum maildir_status st;
	bool done = false;
	size_t calls = 0;

	make_user("u");
	put_str("u/cur/m:2,", "mine\n", 1);
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = 64;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
	md = open_ok("u");
	after_stat = note_m_listed;
	after_closedir = take_every_descriptor;
	do
		st = maildir_scan_step(md, 1 << 20, &done);
	while (st == MAILDIR_OK && !done && ++calls < 100);
	after_stat = NULL;
	after_closedir = NULL;
	ck_assert_uint_gt(spare_count, 0);
	while (spare_count > 0)
		(void)close(spare_fds[--spare_count]);
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
	ck_assert_int_eq(st, MAILDIR_IO);
	maildir_close(md);
	ck_assert(exists("u/cur/m:2,"));
}
END_TEST

START_TEST(test_bad_user)
{
	static const char *const bad[] = { "a/b", ".hidden", "..", "", "/" };
	struct maildrop *md;
	char p[PATH_MAX];
	struct stat sb;
	size_t i;

	mkdir_rel("a");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		/* Any old value: a refusal must reset it to NULL. */
		md = (struct maildrop *)&md;
		ck_assert_int_eq(maildir_open(root, bad[i], &md), MAILDIR_IO);
		ck_assert_ptr_null(md);
	}
	ck_assert_int_eq(stat(at(p, "a/b"), &sb), -1);
	ck_assert_int_eq(stat(at(p, ".hidden"), &sb), -1);
}
END_TEST

START_TEST(test_creates_dirs)
{
	static const char *const dirs[] = { "u", "u/cur", "u/new", "u/tmp" };
	struct maildrop *md;
	char p[PATH_MAX];
	struct stat sb;
	size_t i;

	md = open_scanned("u");
	ck_assert_uint_eq(maildir_count(md), 0);
	ck_assert_uint_eq(maildir_live_size(md), 0);
	maildir_close(md);
	for (i = 0; i < 4; i++) {
		ck_assert_int_eq(lstat(at(p, dirs[i]), &sb), 0);
		ck_assert(S_ISDIR(sb.st_mode));
		ck_assert_uint_eq(sb.st_mode & 07777, 0700);
	}

	/* Only some folders missing. */
	make_user("v");
	ck_assert_int_eq(rmdir(at(p, "v/tmp")), 0);
	ck_assert_int_eq(rmdir(at(p, "v/new")), 0);
	md = open_ok("v");
	maildir_close(md);
	ck_assert(exists("v/tmp") && exists("v/new"));
}
END_TEST

START_TEST(test_root_missing)
{
	struct maildrop *md = NULL;
	char p[PATH_MAX];

	ck_assert_int_eq(maildir_open(at(p, "nope"), "u", &md), MAILDIR_IO);
	ck_assert_ptr_null(md);
	ck_assert(!exists("nope"));
	/* A root that is a file, and a user folder that is a file. */
	put_str("file", "x", 1);
	ck_assert_int_eq(maildir_open(at(p, "file"), "u", &md), MAILDIR_IO);
	ck_assert_int_eq(maildir_open(root, "file", &md), MAILDIR_IO);
	ck_assert_ptr_null(md);
}
END_TEST

START_TEST(test_uidl_edges)
{
	char n70[UIDL_MAX + 8], n71[UIDL_MAX + 8];
	struct maildrop *md;
	const char *uid;

	memset(n70, 'a', UIDL_MAX);
	(void)snprintf(n70 + UIDL_MAX, 8, ":2,");
	memset(n71, 'b', UIDL_MAX + 1);
	(void)snprintf(n71 + UIDL_MAX + 1, 7, ":2,");
	make_user("u");
	{
		char rel[PATH_MAX];

		(void)snprintf(rel, sizeof(rel), "u/cur/%s", n70);
		put_str(rel, "a\n", 1);
		(void)snprintf(rel, sizeof(rel), "u/cur/%s", n71);
		put_str(rel, "b\n", 2);
	}
	put_str("u/cur/:2,S", "empty base\n", 3);
	put_str("u/cur/~tilde", "tilde\n", 4);
	put_str("u/cur/!~}", "edges\n", 5);
	md = open_scanned("u");
	ck_assert_uint_eq(maildir_count(md), 5);
	assert_uids_unique(md);
	/* Exactly UIDL_MAX characters: kept as is. */
	uid = uid_of(md, n70);
	ck_assert_uint_eq(strlen(uid), UIDL_MAX);
	ck_assert_int_eq(strncmp(uid, n70, UIDL_MAX), 0);
	/* One more: mapped. */
	uid = uid_of(md, n71);
	ck_assert_uint_le(strlen(uid), UIDL_MAX);
	ck_assert_int_ne(strncmp(uid, n71, 10), 0);
	/*
	 * The mapped form is pinned ("~" + hex FNV-1a 64 of the unique
	 * name): changing it would change every such UID, and clients
	 * would fetch those messages again.
	 */
	ck_assert_str_eq(uid, "~0eeaee9eb190e3a5");
	/* Empty unique name: the hash of "". */
	ck_assert_str_eq(uid_of(md, ":2,S"), "~cbf29ce484222325");
	/* '~' marks mapped forms, so a name using it is mapped too. */
	ck_assert_str_eq(uid_of(md, "~tilde"), "~d2ef55ef4afc7bed");
	ck_assert_str_eq(uid_of(md, "!~}"), "!~}");
	maildir_close(md);
}
END_TEST

START_TEST(test_scan_tiny_budgets)
{
	struct maildrop *md;
	size_t calls = 0;
	bool done = false;

	make_user("u");
	put_str("u/cur/a", "ab\ncd\r\nef", 1);	/* 9 bytes, size 12 */
	put_str("u/cur/b", "", 2);
	put_str("u/cur/c", "\n", 3);
	md = open_ok("u");
	while (!done) {
		ck_assert_int_eq(maildir_scan_step(md, 1, &done), MAILDIR_OK);
		ck_assert_uint_lt(++calls, 100);
	}
	/* One byte per call: at least one call per byte. */
	ck_assert_uint_ge(calls, 10);
	ck_assert_uint_eq(maildir_msg(md, 1)->size, 12);
	ck_assert_uint_eq(maildir_msg(md, 2)->size, 2);
	ck_assert_uint_eq(maildir_msg(md, 3)->size, 2);
	maildir_close(md);

	/* A budget of 0 still makes progress. */
	md = open_ok("u");
	done = false;
	calls = 0;
	while (!done) {
		ck_assert_int_eq(maildir_scan_step(md, 0, &done), MAILDIR_OK);
		ck_assert_uint_lt(++calls, 100);
	}
	ck_assert_uint_eq(maildir_live_size(md), 12 + 2 + 2);
	maildir_close(md);
}
END_TEST

/* Counts the entries of rel that Maildir readers would take. */
static size_t
count_files(const char *rel)
{
	char p[PATH_MAX];
	DIR *d = opendir(at(p, rel));
	struct dirent *de;
	size_t n = 0;

	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	ck_assert_int_eq(closedir(d), 0);
	return n;
}

/*
 * A login with thousands of files in new/ is listed a slice per step:
 * no step moves or lists more than SCAN_MIN_ENTRIES directory entries
 * (with the least budget), and in the end every file is there once.
 */
START_TEST(test_listing_in_slices)
{
	struct maildrop *md;
	char rel[64];
	size_t i, calls = 0, total = 3 * SCAN_MIN_ENTRIES - 100;
	bool done = false;

	make_user("u");
	for (i = 0; i < total; i++) {
		(void)snprintf(rel, sizeof(rel), "u/new/%05zu.M1.test", i);
		put_str(rel, "m\n", (time_t)(1000 + i));
	}
	md = open_ok("u");
	ck_assert_uint_eq(count_files("u/new"), total);
	ck_assert_int_eq(maildir_scan_step(md, 1, &done), MAILDIR_OK);
	ck_assert(!done);
	ck_assert_uint_eq(maildir_count(md), 0);
	/* "." and ".." are entries too. */
	ck_assert_uint_ge(count_files("u/new"), total - SCAN_MIN_ENTRIES);
	ck_assert_uint_lt(count_files("u/new"), total - SCAN_MIN_ENTRIES + 3);
	while (!done) {
		ck_assert_int_eq(maildir_scan_step(md, 1, &done), MAILDIR_OK);
		ck_assert_uint_lt(++calls, 10 * total);
	}
	ck_assert_uint_eq(count_files("u/new"), 0);
	ck_assert_uint_eq(maildir_count(md), total);
	for (i = 0; i < total; i++) {
		(void)snprintf(rel, sizeof(rel), "%05zu.M1.test", i);
		ck_assert_str_eq(maildir_msg(md, i + 1)->uid, rel);
		ck_assert_uint_eq(maildir_msg(md, i + 1)->size, 3);
	}
	maildir_close(md);
}
END_TEST

START_TEST(test_scan_vanished)
{
	struct maildrop *md;
	char p[PATH_MAX];
	bool done = false;

	make_user("u");
	put_str("u/cur/a", "a\n", 1);
	put_str("u/cur/b", "b\n", 2);
	put_str("u/cur/c", "cc\n", 3);
	put_str("u/cur/d", "d\n", 4);
	put_str("u/cur/e", "eee\n", 5);
	md = open_ok("u");
	/* The least step lists everything and sizes no more than one. */
	ck_assert_int_eq(maildir_scan_step(md, 1, &done), MAILDIR_OK);
	ck_assert(!done);
	ck_assert_uint_eq(maildir_count(md), 5);
	ck_assert_int_eq(unlink(at(p, "u/cur/b")), 0);
	ck_assert_int_eq(unlink(at(p, "u/cur/d")), 0);
	ck_assert_int_eq(maildir_scan_step(md, SIZE_MAX, &done), MAILDIR_OK);
	ck_assert(done);
	/* Never shown to the client: dropped, the rest in order. */
	ck_assert_uint_eq(maildir_count(md), 3);
	ck_assert_str_eq(file_of(md, 1), "a");
	ck_assert_str_eq(file_of(md, 2), "c");
	ck_assert_str_eq(file_of(md, 3), "e");
	ck_assert_uint_eq(maildir_msg(md, 2)->size, 4);
	ck_assert_uint_eq(maildir_msg(md, 3)->size, 5);
	maildir_close(md);
}
END_TEST

START_TEST(test_grown_and_commit_failures)
{
	struct maildrop *md;
	char p[PATH_MAX];
	int fd;

	make_user("u");
	put_str("u/cur/a", "a\n", 1);
	put_str("u/cur/b", "b\n", 2);
	put_str("u/cur/c", "c\n", 3);
	md = open_scanned("u");
	put_str("u/cur/a", "a grew\n", 1);
	ck_assert_int_eq(maildir_msg_open(md, 1, &fd), MAILDIR_CHANGED);

	/*
	 * b is already gone (counts as deleted); c became a directory,
	 * which is not c's file: c is gone too, and the directory stays.
	 */
	ck_assert(maildir_mark_deleted(md, 2));
	ck_assert(maildir_mark_deleted(md, 3));
	ck_assert_int_eq(unlink(at(p, "u/cur/b")), 0);
	ck_assert_int_eq(unlink(at(p, "u/cur/c")), 0);
	mkdir_rel("u/cur/c");
	ck_assert_uint_eq(commit_all(md), 0);
	ck_assert(exists("u/cur/a"));
	ck_assert(exists("u/cur/c"));
	maildir_close(md);
	maildir_close(NULL);
}
END_TEST

/*
 * Another file under a listed message's very name (the message renamed
 * or expunged by another reader, then a redelivery) is not the message:
 * never served for it nor deleted for it.  x was followed to its new
 * name and deleted; y's name is taken, so its deletion failed.
 */
START_TEST(test_same_name_other_file)
{
	struct maildrop *md;
	char a[PATH_MAX], b[PATH_MAX];
	int fd = -1;

	make_user("u");
	put_str("u/cur/x:2,", "message A\n", 1);
	put_str("u/cur/y:2,", "message C\n", 2);
	put_str("u/tmp/b", "message B\n", 3);
	put_str("u/tmp/d", "message D\n", 4);
	md = open_scanned("u");
	/* y replaced in place by D, same size. */
	ck_assert_int_eq(rename(at(a, "u/tmp/d"), at(b, "u/cur/y:2,")), 0);
	ck_assert_int_eq(maildir_msg_open(md, 2, &fd), MAILDIR_GONE);
	/* x flagged by another reader, and B delivered under its name. */
	ck_assert_int_eq(rename(at(a, "u/cur/x:2,"), at(b, "u/cur/x:2,S")), 0);
	ck_assert_int_eq(rename(at(a, "u/tmp/b"), at(b, "u/cur/x:2,")), 0);
	ck_assert_int_eq(maildir_msg_open(md, 1, &fd), MAILDIR_OK);
	ck_assert_int_eq(close(fd), 0);
	ck_assert(maildir_mark_deleted(md, 1));
	ck_assert(maildir_mark_deleted(md, 2));
	ck_assert_uint_eq(commit_all(md), 1);
	ck_assert(!exists("u/cur/x:2,S"));
	ck_assert(exists("u/cur/x:2,"));
	ck_assert(exists("u/cur/y:2,"));
	maildir_close(md);
}
END_TEST

/* cur/ a link to new/: the move would drop the files' only names. */
START_TEST(test_cur_and_new_one_folder_refused)
{
	struct maildrop *md = NULL;
	char p[PATH_MAX];

	make_user("u");
	ck_assert_int_eq(rmdir(at(p, "u/new")), 0);
	ck_assert_int_eq(symlink("cur", at(p, "u/new")), 0);
	put_str("u/cur/m:2,S", "kept\n", 1);
	put_str("u/cur/n", "kept too\n", 2);
	errno = 0;
	ck_assert_int_eq(maildir_open(root, "u", &md), MAILDIR_IO);
	ck_assert_int_eq(errno, ELOOP);
	ck_assert_ptr_null(md);
	ck_assert(exists("u/cur/m:2,S"));
	ck_assert(exists("u/cur/n"));
}
END_TEST

START_TEST(test_strerror)
{
	int st;

	for (st = MAILDIR_OK; st <= MAILDIR_CHANGED; st++) {
		const char *s = maildir_strerror((enum maildir_status)st);

		ck_assert_ptr_nonnull(s);
		ck_assert_uint_gt(strlen(s), 0);
	}
	ck_assert_str_ne(maildir_strerror(MAILDIR_GONE),
	    maildir_strerror(MAILDIR_CHANGED));
}
END_TEST

Suite *maildir_suite(void);

Suite *
maildir_suite(void)
{
	Suite *s = suite_create("maildir");
	TCase *core = tcase_create("core");
	TCase *limits = tcase_create("limits");

	tcase_add_unchecked_fixture(core, base_setup, base_teardown);
	tcase_add_checked_fixture(core, setup, teardown);
	tcase_add_test(core, test_scan_order);
	tcase_add_test(core, test_cut_move_then_flagged);
	tcase_add_test(core, test_commit_cannot_search_is_failure);
	tcase_add_test(core, test_commit_follows_rename_between_slices);
	tcase_add_test(core, test_commit_follows_rename_after_reading);
	tcase_add_test(core, test_commit_follows_repeated_renames);
	tcase_add_test(core, test_commit_endless_renames_fail);
	tcase_add_test(core, test_commit_seen_then_hidden_fails);
	tcase_add_test(core, test_commit_follows_rename_back);
	tcase_add_test(core, test_commit_copy_renamed_after_reading_fails);
	tcase_add_test(core, test_commit_moved_to_new_after_its_reading_fails);
	tcase_add_test(core, test_commit_rereads_after_unsteady_reading);
	tcase_add_test(core, test_commit_gone_from_a_busy_cur);
	tcase_add_test(core, test_scan_follows_renames);
	tcase_add_test(core, test_open_keeps_cur_index);
	tcase_add_test(core, test_gone_reads_cur_once);
	tcase_add_test(core, test_sizes);
	tcase_add_test(core, test_size_cache_sees_rewrite);
	tcase_add_test(core, test_size_cache_hit_after_move);
	tcase_add_test(core, test_new_to_cur);
	tcase_add_test(core, test_non_regular_ignored);
	tcase_add_test(core, test_uidl_plain);
	tcase_add_test(core, test_uidl_unsafe_stable);
	tcase_add_test(core, test_uidl_duplicates);
	tcase_add_loop_test(core, test_uidl_arrival_twin_renamed, 0, 2);
	tcase_add_test(core, test_empty_unique_name_twins_stay_visible);
	tcase_add_test(core, test_same_name_other_file);
	tcase_add_test(core, test_cur_and_new_one_folder_refused);
	tcase_add_test(core, test_cut_move_to_inode_name);
	tcase_add_test(core, test_cut_twin_rename);
	tcase_add_test(core, test_served_from_new);
	tcase_add_test(core, test_relocate_needs_same_file);
	tcase_add_test(core, test_relocate_ignores_hard_link_twin);
	tcase_add_test(core, test_replaced_into_new_is_no_deletion);
	tcase_add_test(core, test_commit_verify_sees_late_copies);
	tcase_add_test(core, test_commit_verify_counts_once);
	tcase_add_test(core, test_commit_verify_in_slices);
	tcase_add_loop_test(core, test_commit_verify_slice_bound, 0, 3);
	tcase_add_test(core, test_commit_in_slices);
	tcase_add_test(core, test_unreadable_left_out);
	tcase_add_test(core, test_listing_in_slices);
	tcase_add_test(core, test_scan_budget);
	tcase_add_test(core, test_mark_rollback_commit);
	tcase_add_test(core, test_msg_open);
	tcase_add_test(core, test_changed_before_sizing_is_served);
	tcase_add_test(core, test_flags_renamed_under_us);
	tcase_add_test(core, test_move_loses_race);
	tcase_add_test(core, test_no_hard_links_never_overwrites);
	tcase_add_test(core, test_no_descriptor_left_fails_the_scan);
	tcase_add_test(core, test_listing_sees_rename);
	tcase_add_test(core, test_bad_user);
	tcase_add_test(core, test_creates_dirs);
	suite_add_tcase(s, core);

	tcase_add_unchecked_fixture(limits, base_setup, base_teardown);
	tcase_add_checked_fixture(limits, setup, teardown);
	tcase_add_test(limits, test_root_missing);
	tcase_add_test(limits, test_uidl_edges);
	tcase_add_test(limits, test_scan_tiny_budgets);
	tcase_add_test(limits, test_scan_vanished);
	tcase_add_test(limits, test_grown_and_commit_failures);
	tcase_add_test(limits, test_strerror);
	suite_add_tcase(s, limits);
	return s;
}
