/*
 * The Maildir backend: the only code that touches the mail root.  It
 * creates a user's folders, moves new/ into cur/, lists cur/, sizes the
 * messages a slice at a time, opens message files and unlinks deleted
 * ones at commit.  No sockets and no protocol here; no logging either
 * (callers log the status they get back).
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <assert.h>
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
#include "dotstuff.h"
#include "maildir.h"
#include "now.h"

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

/* Read size while sizing messages; see scratch below. */
#define SCAN_CHUNK	(64 * 1024)

/* How old cur/'s mtime must be for an index of it to be trusted. */
#define INDEX_SETTLE_NS	(2 * (int64_t)1000000000)

/* A cur/ entry while listing: what the sort needs. */
struct entry {
	char *name;
	struct timespec mtime;
	struct timespec ctime;
	uint64_t size;
	ino_t ino;
	/* Moved from new/ by this login (or left there). */
	bool arrived;
	bool in_new;		/* could not be moved: served from new/ */
	bool uid_by_inode;	/* a twin that could not be renamed */
	bool replaced;		/* a name a cut twin rename left behind */
};

/* Inodes of the files a login moved from new/ to cur/. */
struct arrivals {
	ino_t *ino;
	size_t n, cap;
};

/* A file of cur/, for following messages renamed under us. */
struct cur_file {
	uint64_t ino;
	char *name;
};

/*
 * cur/'s files by inode, read once for a run of relocate() calls.  A
 * stale index (kept from an earlier run) is trusted for a hit, which
 * still_same_file() confirms, and for a miss only while cur/ is as it
 * was read (see cur_unchanged); else a miss reads cur/ again.
 */
struct cur_index {
	struct cur_file *files;
	size_t n, cap;
	bool read;
	bool stale;
	bool stamped;		/* dir_mtime_ns was taken */
	bool settled;		/* cur/'s mtime was old when read */
	bool steady;		/* and did not move while it was read */
	int64_t dir_mtime_ns;	/* cur/'s mtime when read */
	int64_t read_end_ns;	/* monotonic clock when the reading ended */
	int64_t read_cost_ns;	/* how long the reading took */
	const char **by_name;	/* the names by unique name, once needed */
};

/* Where listing stands: new/ being moved, cur/ being read, or done. */
enum listing { LIST_MOVE, LIST_CUR, LIST_DONE };

/* Where QUIT's verify stands: not begun, cur/ or new/ being read, done. */
enum verify { VERIFY_IDLE, VERIFY_CUR, VERIFY_NEW, VERIFY_DONE };

struct maildrop {
	char *cur;			/* "<root>/<user>/cur" */
	struct mail_msg *msgs;		/* delivery order */
	size_t count;

	/* Listing progress, a slice of directory entries per step. */
	enum listing listing;
	char *newdir;			/* "<root>/<user>/new" */
	DIR *dir;			/* new/, then cur/, while listing */
	struct entry *ents;		/* cur/ files listed so far */
	size_t nents, ents_cap;
	struct arrivals arrived;
	struct maildir_notes notes;

	/* Sizing progress, kept between maildir_scan_step() calls. */
	size_t scan_next;		/* message being sized */
	size_t scan_dropped;		/* messages dropped, not yet removed */
	int scan_fd;			/* its open file, or -1 */
	uint64_t scan_read;		/* bytes of it read so far */
	uint64_t scan_expect;		/* its st_size when opened */
	int64_t scan_ctime_ns;		/* its st_ctim when opened */
	struct wiresize scan_ws;

	/* UPDATE progress, kept between maildir_commit_step() calls. */
	size_t commit_next;		/* next message to look at */
	size_t commit_failed;		/* unlinks that failed */
	size_t first_failed;		/* the message of the first one */
	int first_failed_errno;		/* and why: errno, or a FAIL_ below */
	size_t sightings;		/* files a reading of cur/ held */
	struct cur_index commit_ix;	/* cur/ by inode, if a pass needs it */
	struct cur_index commit_new;	/* new/'s names, read after commit_ix */
	struct cur_index open_ix;	/* cur/ by inode, kept between opens */

	/* QUIT's verify, kept between maildir_commit_verify() calls. */
	enum verify verify;
	DIR *verify_dir;		/* cur/, then new/ */
	struct mail_msg **verify_by_name; /* deletions, by unique name */
	size_t verify_n;
};

/*
 * Read buffer for sizing.  The server is single-threaded and the buffer
 * is only used inside one maildir_scan_step() call, so one static area
 * serves every maildrop (and keeps 64 KiB off the stack).
 */
static uint8_t scratch[SCAN_CHUNK];

/* The folder that holds m's file. */
static const char *
msg_dir(const struct maildrop *md, const struct mail_msg *m)
{
	return m->in_new ? md->newdir : md->cur;
}

/*
 * Builds "a/b" into buf[PATH_MAX].  Returns 0, or -1 with ENAMETOOLONG
 * when it would not fit.
 */
static int
join_path(char *buf, const char *a, const char *b)
{
	int len;

	len = snprintf(buf, PATH_MAX, "%s/%s", a, b);
	if (len < 0 || len >= PATH_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* mkdir that accepts an existing directory (or a link to one). */
static int
ensure_dir(const char *path)
{
	struct stat st;

	if (mkdir(path, 0700) == 0)
		return 0;
	if (errno != EEXIST)
		return -1;
	if (stat(path, &st) == -1)
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	return 0;
}

/*
 * Maildir readers skip names starting with '.' (cr.yp.to/proto/maildir
 * .html), which also covers "." and "..".
 */
static bool
skip_name(const char *name)
{
	return name[0] == '.' || name[0] == '\0';
}

/* Length of the Maildir unique name: the file name up to its ':' info. */
static size_t
base_len(const char *name)
{
	const char *colon = strchr(name, ':');

	return colon != NULL ? (size_t)(colon - name) : strlen(name);
}

/*
 * Builds <base><suffix><info> for file `name` (info ":2," when it has
 * none) into target[PATH_MAX]; 0, or -1 when too long.  An empty base
 * ("name" is ":2,S") drops the suffix's leading '.': every Maildir
 * reader skips a name that starts with '.', so the message would be
 * lost.
 */
static int
cur_name(char *target, const char *name, const char *suffix)
{
	int base = (int)base_len(name);
	const char *unique = base == 0 && suffix[0] == '.' ? suffix + 1 :
	    suffix;
	int len = snprintf(target, PATH_MAX, "%.*s%s%s", base, name,
	    unique, name[base] == ':' ? name + base : ":2,");

	return len < 0 || len >= PATH_MAX ? -1 : 0;
}

/* curdir/ + cur_name() into dst[PATH_MAX]; 0, or -1 when too long. */
static int
cur_path(char *dst, const char *curdir, const char *name, const char *suffix)
{
	char target[PATH_MAX];

	if (cur_name(target, name, suffix) == -1)
		return -1;
	return join_path(dst, curdir, target);
}

/* The suffix that makes a name unique by its inode, as Maildir does. */
static void
inode_suffix(char suffix[32], ino_t ino)
{
	snprintf(suffix, 32, ".I%llu", (unsigned long long)ino);
}

/*
 * Links src into cur/ (see cur_path), adding the ":2," info when the
 * name has none: 0 (src to be unlinked), 1 (src already renamed), or
 * -1 with errno.  A file never replaces one already in cur/: link()
 * refuses an existing target, where rename() would silently overwrite
 * a message.  On a file system without hard links, fall back to
 * checking for the target first (only the lock holder reads this
 * maildrop, so the window is harmless).
 */
static int
link_into_cur(const char *src, const char *curdir, const char *name,
    const char *suffix)
{
	char dst[PATH_MAX];

	if (cur_path(dst, curdir, name, suffix) == -1) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (link(src, dst) == 0)
		return 0;
	if (errno != EPERM && errno != ENOTSUP && errno != EXDEV)
		return -1;
	/* No hard links here: rename, but never over an existing file. */
	if (lstat(dst, &(struct stat){ 0 }) == 0) {
		errno = EEXIST;
		return -1;
	}
	return rename(src, dst) == 0 ? 1 : -1;
}

/* True when `path` names the very file `st` right now. */
static bool
names_file(const char *path, const struct stat *st)
{
	struct stat now;

	return lstat(path, &now) == 0 && now.st_dev == st->st_dev &&
	    now.st_ino == st->st_ino;
}

/* True when cur/ already holds the very file `st` under that name. */
static bool
same_file_in_cur(const char *curdir, const char *name, const char *suffix,
    const struct stat *st)
{
	char dst[PATH_MAX];

	return cur_path(dst, curdir, name, suffix) == 0 && names_file(dst, st);
}

/*
 * Unlinks src, the old name of file `st` now also linked in cur/: true
 * once src is gone.  Another reader (an IMAP server setting a flag) may
 * have moved it meanwhile, perhaps to the very name in cur/: the cur/
 * name may then be the only one left, so src gone is all that counts.
 */
static bool
drop_old_name(const char *src, const struct stat *st)
{
	int err;

	if (unlink(src) == 0)
		return true;
	err = errno;
	if (!names_file(src, st))
		return true;
	errno = err;
	return false;
}

/*
 * link_into_cur(), except that a target which already is this very
 * file returns 2: a move or a twin rename cut short by kill -9 between
 * link and unlink, to be finished by unlinking the source.  Without
 * this the source would stay for ever, and come back as a new message
 * once its other name was deleted.  A read-only file system refuses
 * the link (EROFS) before it looks at the target, so any refusal is
 * checked.
 */
static int
place_in_cur(const char *src, const char *curdir, const char *name,
    const char *suffix, const struct stat *st)
{
	int rc = link_into_cur(src, curdir, name, suffix);

	if (rc == -1) {
		int err = errno;

		if (same_file_in_cur(curdir, name, suffix, st))
			return 2;
		errno = err;
	}
	return rc;
}

/* Notes an arrival; a note lost to a full memory only costs a rename. */
static void
note_arrival(struct arrivals *a, ino_t ino)
{
	if (a->n == a->cap) {
		size_t cap = a->cap == 0 ? 16 : a->cap * 2;
		ino_t *grown = realloc(a->ino, cap * sizeof(*grown));

		if (grown == NULL)
			return;
		a->ino = grown;
		a->cap = cap;
	}
	a->ino[a->n++] = ino;
}

/* Lists file `name` (of cur/, or of new/ when in_new) for the sort. */
static enum maildir_status
add_entry(struct maildrop *md, const char *name, const struct stat *sb,
    bool in_new)
{
	struct entry *e;

	if (md->nents == MAX_MAILDROP_MSGS)
		return MAILDIR_TOOBIG;
	if (md->nents == md->ents_cap) {
		size_t cap = md->ents_cap == 0 ? 64 : md->ents_cap * 2;
		struct entry *grown = realloc(md->ents, cap * sizeof(*grown));

		if (grown == NULL)
			return MAILDIR_NOMEM;
		md->ents = grown;
		md->ents_cap = cap;
	}
	e = &md->ents[md->nents];
	if ((e->name = strdup(name)) == NULL)
		return MAILDIR_NOMEM;
	e->mtime = sb->st_mtim;
	e->ctime = sb->st_ctim;
	e->size = (uint64_t)sb->st_size;
	e->ino = sb->st_ino;
	/* Left in new/, it has not been in cur/: it never claims a name. */
	e->arrived = in_new;
	e->in_new = in_new;
	e->uid_by_inode = false;
	e->replaced = false;
	md->nents++;
	return MAILDIR_OK;
}

/* Keeps the errno of the first of `count` troubles of one kind. */
static void
note_trouble(size_t *count, int *first_errno)
{
	if ((*count)++ == 0)
		*first_errno = errno;
}

/*
 * Moves one file of new/ into cur/.  A file that cannot be moved (a
 * read-only maildrop, a full disk, a name too long for the info) is
 * still the user's mail: it is listed where it is, in new/.
 */
static enum maildir_status
move_new(struct maildrop *md, const char *name)
{
	char src[PATH_MAX], dst[PATH_MAX], suffix[32] = "";
	struct stat st;
	int rc;

	if (join_path(src, md->newdir, name) == -1)
		return MAILDIR_OK;	/* cannot be opened either */
	if (lstat(src, &st) == -1 || !S_ISREG(st.st_mode))
		return MAILDIR_OK;
	rc = place_in_cur(src, md->cur, name, suffix, &st);
	if (rc == -1) {
		/*
		 * The name is taken in cur/ (a redelivery, a copy): the
		 * message still gets delivered, under a name made unique
		 * by its inode number, which a move cut short may have
		 * given it already.
		 */
		int err = errno;

		inode_suffix(suffix, st.st_ino);
		if (err == EEXIST ||
		    same_file_in_cur(md->cur, name, suffix, &st))
			rc = place_in_cur(src, md->cur, name, suffix, &st);
		else
			errno = err;
	}
	/*
	 * Linked but not unlinked from new/ (new/ not writable): one file
	 * under two names would come back after its DELE.  Keep the one
	 * in new/ only, or, when the one in cur/ cannot go either (a
	 * read-only maildrop), the one in cur/, which cur/'s listing finds.
	 */
	if (rc != -1 && rc != 1 && !drop_old_name(src, &st)) {
		int err = errno;
		bool cur_stays = cur_path(dst, md->cur, name, suffix) == -1 ||
		    unlink(dst) == -1;

		errno = err;
		if (cur_stays) {
			note_trouble(&md->notes.unmoved,
			    &md->notes.unmoved_errno);
			return MAILDIR_OK;
		}
		rc = -1;
	}
	if (rc == -1) {
		note_trouble(&md->notes.unmoved, &md->notes.unmoved_errno);
		return add_entry(md, name, &st, true);
	}
	note_arrival(&md->arrived, st.st_ino);
	return MAILDIR_OK;
}

/*
 * Moves the files of new/ to cur/, at most *units directory entries
 * (each one spent from *units); *end once new/ is exhausted.
 */
static enum maildir_status
move_some(struct maildrop *md, size_t *units, bool *end)
{
	struct dirent *de;
	enum maildir_status st;

	*end = false;
	for (; *units > 0; (*units)--) {
		errno = 0;
		if ((de = readdir(md->dir)) == NULL) {
			*end = true;
			return errno != 0 ? MAILDIR_IO : MAILDIR_OK;
		}
		if (skip_name(de->d_name))
			continue;
		if ((st = move_new(md, de->d_name)) != MAILDIR_OK)
			return st;
	}
	return MAILDIR_OK;
}

/* Orders file names by their unique name (the part before ':'). */
static int
base_cmp(const char *a, const char *b)
{
	size_t la = base_len(a), lb = base_len(b);
	int c = memcmp(a, b, la < lb ? la : lb);

	if (c != 0)
		return c;
	return la == lb ? 0 : la < lb ? -1 : 1;
}

/* Older first. */
static int
mtime_cmp(const struct entry *x, const struct entry *y)
{
	if (x->mtime.tv_sec != y->mtime.tv_sec)
		return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
	if (x->mtime.tv_nsec != y->mtime.tv_nsec)
		return x->mtime.tv_nsec < y->mtime.tv_nsec ? -1 : 1;
	return 0;
}

/*
 * Orders entry pointers by unique name (the part before ':'), files
 * that were in cur/ before this login first, then the oldest (mtime,
 * then inode).  Never by the whole name: a flag change by another
 * reader must not change which twin keeps the unique name's UIDL.
 */
static int
entry_base_cmp(const void *a, const void *b)
{
	const struct entry *x = *(const struct entry *const *)a;
	const struct entry *y = *(const struct entry *const *)b;
	int c = base_cmp(x->name, y->name);

	if (c != 0)
		return c;
	if (x->arrived != y->arrived)
		return x->arrived ? 1 : -1;
	if ((c = mtime_cmp(x, y)) != 0)
		return c;
	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

static int
ino_cmp(const void *a, const void *b)
{
	ino_t x = *(const ino_t *)a, y = *(const ino_t *)b;

	return x < y ? -1 : x > y;
}

static bool
same_base(const char *a, const char *b)
{
	return base_cmp(a, b) == 0;
}

/* The path of listed file e. */
static int
entry_path(char path[PATH_MAX], const struct maildrop *md,
    const struct entry *e)
{
	return join_path(path, e->in_new ? md->newdir : md->cur, e->name);
}

/*
 * Renames twin e to <base>.I<inode><info> in cur/.  Should that fail
 * (a read-only maildrop), e keeps its file but takes the UIDL the
 * rename would have given it, so the UIDL does not change on the day
 * the rename succeeds.
 */
static void
rename_twin(const struct maildrop *md, struct entry *e)
{
	char src[PATH_MAX], target[PATH_MAX], suffix[32], *fresh;
	struct stat st;
	int rc;

	inode_suffix(suffix, e->ino);
	if (entry_path(src, md, e) == -1 ||
	    cur_name(target, e->name, suffix) == -1 ||
	    lstat(src, &st) == -1 || (fresh = strdup(target)) == NULL) {
		e->uid_by_inode = true;
		return;
	}
	rc = place_in_cur(src, md->cur, e->name, suffix, &st);
	if (rc == -1) {
		free(fresh);
		e->uid_by_inode = true;
		return;
	}
	/* One file under two names would come back after its DELE. */
	if (rc != 1 && !drop_old_name(src, &st) &&
	    join_path(src, md->cur, fresh) == 0) {
		(void)unlink(src);
		free(fresh);
		e->uid_by_inode = true;
		return;
	}
	free(e->name);
	e->name = fresh;
	e->in_new = false;
}

/*
 * Two files with one Maildir unique name (a copy restored next to the
 * original, a redelivery under a name cur/ holds with other flags)
 * would share a UIDL, and once one is deleted the other would take
 * over its UIDL: a UIDL reused, so a client that leaves mail on the
 * server never fetches that message.  As Dovecot does, every twin but
 * one gets a name of its own once, <base>.I<inode><info>, and with it a
 * UIDL that never changes.  The one that keeps the name is a file that
 * was in cur/ before this login (a client may know its UIDL), the
 * oldest.
 */
static enum maildir_status
separate_twins(struct maildrop *md)
{
	struct entry **by, *ents = md->ents;
	size_t i, n = md->nents, head = 0;
	struct arrivals *arrived = &md->arrived;

	if (n < 2)
		return MAILDIR_OK;
	if (arrived->n > 0) {
		qsort(arrived->ino, arrived->n, sizeof(ino_t), ino_cmp);
		for (i = 0; i < n; i++)
			ents[i].arrived = ents[i].in_new ||
			    bsearch(&ents[i].ino, arrived->ino, arrived->n,
			    sizeof(ino_t), ino_cmp) != NULL;
	}
	/* NOLINTNEXTLINE(bugprone-sizeof-expression): pointers are meant */
	if ((by = malloc(n * sizeof(*by))) == NULL)
		return MAILDIR_NOMEM;
	for (i = 0; i < n; i++)
		by[i] = &ents[i];
	qsort(by, n, sizeof(*by), /* NOLINT(bugprone-sizeof-expression) */
	    entry_base_cmp);
	for (i = 1; i < n; i++) {
		if (same_base(by[i]->name, by[head]->name))
			rename_twin(md, by[i]);
		else
			head = i;
	}
	free(by);
	return MAILDIR_OK;
}

static int
entry_cmp(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	int c = mtime_cmp(x, y);

	return c != 0 ? c : strcmp(x->name, y->name);
}

static void
free_entries(struct entry *ents, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(ents[i].name);
	free(ents);
}

/*
 * Lists the regular files of cur/ into md->ents, at most *units
 * directory entries (each one spent from *units); *end once cur/ is
 * exhausted.  No symlink is followed out of the maildrop.  Each file is
 * looked up relative to the open directory: one path step per message
 * instead of a walk from the mail root (a fifth of a 10,000-message
 * login went to that walk).
 */
static enum maildir_status
list_some(struct maildrop *md, size_t *units, bool *end)
{
	struct dirent *de;
	enum maildir_status st;
	char path[PATH_MAX];
	struct stat sb;

	*end = false;
	for (; *units > 0; (*units)--) {
		errno = 0;
		if ((de = readdir(md->dir)) == NULL) {
			*end = true;
			return errno != 0 ? MAILDIR_IO : MAILDIR_OK;
		}
		if (skip_name(de->d_name))
			continue;
		if (join_path(path, md->cur, de->d_name) == -1)
			continue;	/* cannot be opened either */
		if (fstatat(dirfd(md->dir), de->d_name, &sb,
		    AT_SYMLINK_NOFOLLOW) == -1) {
			if (errno == ENOENT)
				continue;	/* gone meanwhile */
			return MAILDIR_IO;
		}
		if (!S_ISREG(sb.st_mode))
			continue;
		if ((st = add_entry(md, de->d_name, &sb, false)) != MAILDIR_OK)
			return st;
	}
	return MAILDIR_OK;
}

/*
 * UIDL mapping (RFC 1939 section 7: 1 to 70 characters 0x21..0x7E,
 * unique in the maildrop, stable across sessions).
 *
 *  1. The base name is the file name up to the first ':' (the Maildir
 *     unique name; the ":2,FLAGS" info changes as flags change).  If it
 *     is 1..UIDL_MAX characters, all in 0x21..0x7E, and does not start
 *     with '~', it is the UID as is.
 *  2. Otherwise the UID is "~" followed by the 16 lower-case hex digits
 *     of the 64-bit FNV-1a hash of the base name (17 characters).  '~'
 *     is reserved for these forms, so they never equal a plain name.
 *  3. Messages still sharing a UID (same base name with different
 *     info, or a hash collision) are ordered by file name; the first
 *     keeps it, each other one gets "~~" and the hex FNV-1a hash of its
 *     whole file name (unique in cur/).
 *  4. Should that collide too (a 64-bit collision), the later ones get
 *     "~#" and their message number, unique by construction.
 *
 * Steps 1-3 depend only on the file names, so the UIDs are the same in
 * every session that sees the same files; step 4 also depends on the
 * order, but needs a 64-bit hash collision to happen at all.
 */
#define UID_MAPPED_MARK '~'

static uint64_t
fnv1a64(const char *s, size_t len)
{
	uint64_t h = UINT64_C(0xcbf29ce484222325);
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= UINT64_C(0x100000001b3);
	}
	return h;
}

static void
uid_from_name(char uid[UIDL_MAX + 1], const char *name)
{
	size_t len = base_len(name);
	size_t i;
	bool safe;

	safe = len >= 1 && len <= UIDL_MAX && name[0] != UID_MAPPED_MARK;
	for (i = 0; safe && i < len; i++)
		if ((unsigned char)name[i] < 0x21 ||
		    (unsigned char)name[i] > 0x7e)
			safe = false;
	if (safe) {
		memcpy(uid, name, len);
		uid[len] = '\0';
		return;
	}
	(void)snprintf(uid, UIDL_MAX + 1, "~%016llx",
	    (unsigned long long)fnv1a64(name, len));
}

static int
msg_uid_cmp(const void *a, const void *b)
{
	const struct mail_msg *x = *(const struct mail_msg *const *)a;
	const struct mail_msg *y = *(const struct mail_msg *const *)b;
	int c;

	if ((c = strcmp(x->uid, y->uid)) != 0)
		return c;
	return strcmp(x->file, y->file);
}

/*
 * One pass of steps 3/4 above over `by` (pointers into msgs).  Returns
 * how many UIDs it changed.
 */
static size_t
uid_dedup(struct mail_msg **by, size_t n, const struct mail_msg *base,
    bool last_resort)
{
	size_t i, j, changed = 0;

	/* An array of pointers: sizeof(pointer) is meant. */
	qsort(by, n, sizeof(*by), /* NOLINT(bugprone-sizeof-expression) */
	    msg_uid_cmp);
	/* by[i] heads a run of equal UIDs and keeps its own. */
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && strcmp(by[j]->uid, by[i]->uid) == 0;
		    j++) {
			changed++;
			if (last_resort)
				(void)snprintf(by[j]->uid, UIDL_MAX + 1,
				    "~#%zu", (size_t)(by[j] - base) + 1);
			else
				(void)snprintf(by[j]->uid, UIDL_MAX + 1,
				    "~~%016llx", (unsigned long long)fnv1a64(
				    by[j]->file, strlen(by[j]->file)));
		}
	}
	return changed;
}

/* The UID of entry e (steps 1-2); see rename_twin() for uid_by_inode. */
static void
entry_uid(char uid[UIDL_MAX + 1], const struct entry *e)
{
	char renamed[PATH_MAX], suffix[32];

	inode_suffix(suffix, e->ino);
	if (e->uid_by_inode && cur_name(renamed, e->name, suffix) == 0)
		uid_from_name(uid, renamed);
	else
		uid_from_name(uid, e->name);
}

/* Steps 3-4, once every message has its step 1-2 UID. */
static enum maildir_status
dedup_uids(struct mail_msg *msgs, size_t n)
{
	struct mail_msg **by;
	size_t i;

	if (n < 2)
		return MAILDIR_OK;
	/* NOLINTNEXTLINE(bugprone-sizeof-expression): pointers are meant */
	if ((by = malloc(n * sizeof(*by))) == NULL)
		return MAILDIR_NOMEM;
	for (i = 0; i < n; i++)
		by[i] = &msgs[i];
	if (uid_dedup(by, n, msgs, false) > 0)
		(void)uid_dedup(by, n, msgs, true);
	free(by);
	return MAILDIR_OK;
}

/*
 * True (errno ELOOP) when cur/ and new/ are one folder, one a link to
 * the other: moving new/x:2,S to cur/x:2,S would then drop the file's
 * only name.
 */
static bool
one_folder(const char *cur, const char *newd)
{
	struct stat a, b;

	if (stat(cur, &a) == -1 || stat(newd, &b) == -1 ||
	    a.st_dev != b.st_dev || a.st_ino != b.st_ino)
		return false;
	errno = ELOOP;
	return true;
}

enum maildir_status
maildir_open(const char *root, const char *user, struct maildrop **out)
{
	struct maildrop *md;
	char udir[PATH_MAX], cur[PATH_MAX], newd[PATH_MAX], tmp[PATH_MAX];
	struct stat sb;

	assert(root != NULL && user != NULL && out != NULL);
	*out = NULL;
	/* Second line of defence: users_valid_name() ran already. */
	if (user[0] == '\0' || user[0] == '.' || strchr(user, '/') != NULL) {
		errno = EINVAL;
		return MAILDIR_IO;
	}
	/* The root is the administrator's; never create it. */
	if (stat(root, &sb) == -1)
		return MAILDIR_IO;
	if (!S_ISDIR(sb.st_mode)) {
		errno = ENOTDIR;
		return MAILDIR_IO;
	}
	if (join_path(udir, root, user) == -1 ||
	    join_path(cur, udir, "cur") == -1 ||
	    join_path(newd, udir, "new") == -1 ||
	    join_path(tmp, udir, "tmp") == -1)
		return MAILDIR_IO;
	if (ensure_dir(udir) == -1 || ensure_dir(cur) == -1 ||
	    ensure_dir(newd) == -1 || one_folder(cur, newd))
		return MAILDIR_IO;
	/*
	 * tmp/ is for deliveries, which POP3 never makes: a maildrop where
	 * it cannot be created (read-only, restored without its empty
	 * folder) is still served; one where it is no folder is broken.
	 */
	if (ensure_dir(tmp) == -1 && errno == ENOTDIR)
		return MAILDIR_IO;

	if ((md = calloc(1, sizeof(*md))) == NULL)
		return MAILDIR_NOMEM;
	md->scan_fd = -1;
	md->listing = LIST_MOVE;
	if ((md->cur = strdup(cur)) == NULL ||
	    (md->newdir = strdup(newd)) == NULL) {
		maildir_close(md);
		return MAILDIR_NOMEM;
	}
	if ((md->dir = opendir(newd)) == NULL) {
		maildir_close(md);
		return MAILDIR_IO;
	}
	*out = md;
	return MAILDIR_OK;
}

/* Orders entry pointers by inode, then name. */
static int
entry_ino_cmp(const void *a, const void *b)
{
	const struct entry *x = *(const struct entry *const *)a;
	const struct entry *y = *(const struct entry *const *)b;

	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* Forgets the entries whose name is NULL. */
static void
compact_entries(struct maildrop *md)
{
	size_t i, kept = 0;

	for (i = 0; i < md->nents; i++)
		if (md->ents[i].name != NULL)
			md->ents[kept++] = md->ents[i];
	md->nents = kept;
}

/* True when listed name e still names its file. */
static bool
entry_names_file(const struct maildrop *md, const struct entry *e)
{
	char path[PATH_MAX];
	struct stat now;

	return entry_path(path, md, e) == 0 && lstat(path, &now) == 0 &&
	    now.st_ino == e->ino;
}

/* Leaves name e out of the listing (compact_entries() removes it). */
static void
drop_name(struct entry *e)
{
	free(e->name);
	e->name = NULL;
}

/* True when group (sorted by name) has `name` in cur/. */
static bool
group_has_in_cur(struct entry *const *group, size_t n, const char *name)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(group[mid]->name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < n && strcmp(group[lo]->name, name) == 0; lo++)
		if (!group[lo]->in_new)
			return true;
	return false;
}

/*
 * Names of one file with one unique name: the one to keep first (in
 * cur/, then the one with the most flags, which another reader set).
 */
static int
keep_first_cmp(const void *a, const void *b)
{
	const struct entry *x = *(const struct entry *const *)a;
	const struct entry *y = *(const struct entry *const *)b;
	int c = base_cmp(x->name, y->name);
	size_t lx = strlen(x->name), ly = strlen(y->name);

	if (c != 0)
		return c;
	if (x->in_new != y->in_new)
		return x->in_new ? 1 : -1;
	if (lx != ly)
		return lx > ly ? -1 : 1;
	return strcmp(x->name, y->name);
}

/*
 * Marks the names in group (one inode, sorted by name) that are not
 * messages of their own: x<info> when a twin rename made it
 * x.I<inode><info>, and every name but one sharing a unique name (a
 * move cut short, then the cur/ name's flags changed by another
 * reader).  They are unlinked, which finishes what was cut short, and
 * left out.  One lookup per name and two sorts, so a file with
 * thousands of hard links costs little.
 */
static void
drop_replaced_names(const struct maildrop *md, struct entry **group,
    size_t n)
{
	char target[PATH_MAX], path[PATH_MAX], suffix[32];
	size_t i, head, kept = 0;

	/*
	 * Another reader renaming the file while it was listed (x:2,S to
	 * x:2,) shows both names: the one gone is no copy to keep, and
	 * keeping it would unlink the real one.  Names still here are in
	 * the group's name order.
	 */
	for (i = 0; i < n; i++) {
		if (entry_names_file(md, group[i]))
			group[kept++] = group[i];
		else
			drop_name(group[i]);
	}
	if ((n = kept) < 2)
		return;
	head = n;
	inode_suffix(suffix, group[0]->ino);
	for (i = 0; i < n; i++)
		group[i]->replaced = !group[i]->in_new &&
		    cur_name(target, group[i]->name, suffix) == 0 &&
		    group_has_in_cur(group, n, target);
	/* NOLINTNEXTLINE(bugprone-sizeof-expression): pointers are meant */
	qsort(group, n, sizeof(*group), keep_first_cmp);
	for (i = 0; i < n; i++) {
		if (group[i]->replaced)
			continue;
		if (head < n && same_base(group[i]->name, group[head]->name))
			group[i]->replaced = true;
		else
			head = i;
	}
	for (i = 0; i < n; i++) {
		if (!group[i]->replaced || entry_path(path, md, group[i]) == -1)
			continue;
		(void)unlink(path);
		drop_name(group[i]);
	}
}

/*
 * One file under two names, x<info> and x.I<inode><info>, or two names
 * with one unique name, is a rename or a move cut short by kill -9
 * between link and unlink.  It is finished here, before the twins are
 * sorted out: listed under both names, the file would be served twice,
 * and after a DELE of one name the other would bring it back.  Hard
 * links with unique names of their own are left alone.
 */
static enum maildir_status
finish_cut_renames(struct maildrop *md)
{
	struct entry **by;
	size_t i, j, n = md->nents;

	if (n < 2)
		return MAILDIR_OK;
	/* NOLINTNEXTLINE(bugprone-sizeof-expression): pointers are meant */
	if ((by = malloc(n * sizeof(*by))) == NULL)
		return MAILDIR_NOMEM;
	for (i = 0; i < n; i++)
		by[i] = &md->ents[i];
	qsort(by, n, sizeof(*by), /* NOLINT(bugprone-sizeof-expression) */
	    entry_ino_cmp);
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && by[j]->ino == by[i]->ino; j++)
			continue;
		if (j - i > 1)
			drop_replaced_names(md, by + i, j - i);
	}
	free(by);
	compact_entries(md);
	return MAILDIR_OK;
}

/* Listing is over: sort it into delivery order and give out the UIDs. */
static enum maildir_status
finish_listing(struct maildrop *md)
{
	struct entry *ents;
	size_t n, i;
	enum maildir_status st;

	if ((st = finish_cut_renames(md)) != MAILDIR_OK ||
	    (st = separate_twins(md)) != MAILDIR_OK)
		return st;
	ents = md->ents;
	n = md->nents;
	if (n > 1)
		qsort(ents, n, sizeof(*ents), entry_cmp);
	if (n > 0 && (md->msgs = calloc(n, sizeof(*md->msgs))) == NULL)
		return MAILDIR_NOMEM;
	/* The names move from ents to msgs: ents keeps none after this. */
	for (i = 0; i < n; i++) {
		entry_uid(md->msgs[i].uid, &ents[i]);
		md->msgs[i].file = ents[i].name;
		md->msgs[i].in_new = ents[i].in_new;
		md->msgs[i].ino = (uint64_t)ents[i].ino;
		md->msgs[i].file_size = ents[i].size;
		md->msgs[i].mtime_ns = now_ts_ns(&ents[i].mtime);
		md->msgs[i].ctime_ns = now_ts_ns(&ents[i].ctime);
		ents[i].name = NULL;
	}
	md->count = n;
	free_entries(md->ents, md->nents);
	md->ents = NULL;
	md->nents = md->ents_cap = 0;
	free(md->arrived.ino);
	md->arrived = (struct arrivals){ NULL, 0, 0 };
	md->listing = LIST_DONE;
	return dedup_uids(md->msgs, md->count);
}

/*
 * One slice of listing: new/ moved to cur/, then cur/ read, `units`
 * directory entries at most, so a maildrop of 100,000 files is listed
 * over many reactor passes.
 */
static enum maildir_status
list_step(struct maildrop *md, size_t units)
{
	enum maildir_status st;
	bool end;

	if (md->listing == LIST_MOVE) {
		if ((st = move_some(md, &units, &end)) != MAILDIR_OK || !end)
			return st;
		(void)closedir(md->dir);
		if ((md->dir = opendir(md->cur)) == NULL)
			return MAILDIR_IO;
		md->listing = LIST_CUR;
	}
	if (md->listing == LIST_CUR) {
		if ((st = list_some(md, &units, &end)) != MAILDIR_OK || !end)
			return st;
		(void)closedir(md->dir);
		md->dir = NULL;
		return finish_listing(md);
	}
	return MAILDIR_OK;
}

/*
 * Drops message i (its file vanished, or cannot be read, before
 * sizing).  Only marked here: removing it at once moved the rest of
 * the list each time, quadratic in a maildrop of unreadable files.
 * drop_marked() closes the gaps in one pass when the sizing ends.
 */
static void
drop_msg(struct maildrop *md, size_t i)
{
	free(md->msgs[i].file);
	md->msgs[i].file = NULL;
	md->scan_dropped++;
}

static void
drop_marked(struct maildrop *md)
{
	size_t kept = 0;

	if (md->scan_dropped == 0)
		return;
	for (size_t i = 0; i < md->count; i++)
		if (md->msgs[i].file != NULL)
			md->msgs[kept++] = md->msgs[i];
	md->count = kept;
	md->scan_dropped = 0;
}

static void
scan_close(struct maildrop *md)
{
	if (md->scan_fd >= 0)
		(void)close(md->scan_fd);
	md->scan_fd = -1;
}

/*
 * Sizes already computed, kept across sessions: a client that logs in
 * every few minutes must not make us read its whole maildrop each time
 * (Dovecot keeps sizes in its index for the same reason).  A small
 * 4-way set-associative table: an entry is keyed by a hash of its path
 * plus its size, mtime and ctime, so a file that changed is never
 * served a stale size: mtime alone misses a same-size rewrite whose
 * mtime was put back (touch -r, a restore from backup), and no one can
 * set a ctime.  A new message's ctime is the one after our new/ to
 * cur/ move, taken when it is sized, so the next login finds it.
 * Bounded memory, no eviction bookkeeping (a full set loses a way
 * picked by the key); a miss only costs a re-read.  Four ways, not
 * one: direct-mapped, a 10,000-message maildrop lost ~15% of its sizes
 * to collisions and re-read them at every login.
 */
#define SIZE_CACHE_WAYS 4
#define SIZE_CACHE_SETS (1u << 14)

struct size_slot {
	uint64_t key;
	uint64_t file_size;
	int64_t mtime_ns;
	int64_t ctime_ns;
	uint64_t wire_size;
};

static struct size_slot (*size_cache)[SIZE_CACHE_WAYS];

static uint64_t
size_key(const struct maildrop *md, const struct mail_msg *m)
{
	const char *dir = msg_dir(md, m);
	uint64_t h = fnv1a64(dir, strlen(dir));

	return h ^ (fnv1a64(m->file, strlen(m->file)) * 0x9e3779b97f4a7c15ULL);
}

/* The entry for key: its own when cached, else the one to replace. */
static struct size_slot *
size_slot(uint64_t key)
{
	struct size_slot *set;

	if (size_cache == NULL)
		size_cache = calloc(SIZE_CACHE_SETS, sizeof(*size_cache));
	if (size_cache == NULL)
		return NULL;
	set = size_cache[key & (SIZE_CACHE_SETS - 1)];
	for (int w = 0; w < SIZE_CACHE_WAYS; w++)
		if (set[w].key == key)
			return &set[w];
	for (int w = 0; w < SIZE_CACHE_WAYS; w++)
		if (set[w].key == 0)
			return &set[w];
	return &set[(key >> 40) % SIZE_CACHE_WAYS];
}

/* True (and m->size set) when m's size is known from an earlier scan. */
static bool
size_cached(const struct maildrop *md, struct mail_msg *m)
{
	uint64_t key = size_key(md, m);
	const struct size_slot *e = size_slot(key);

	if (e == NULL || e->key != key || e->file_size != m->file_size ||
	    e->mtime_ns != m->mtime_ns || e->ctime_ns != m->ctime_ns)
		return false;
	m->size = e->wire_size;
	return true;
}

static void
size_remember(const struct maildrop *md, const struct mail_msg *m)
{
	uint64_t key = size_key(md, m);
	struct size_slot *e = size_slot(key);

	if (e != NULL)
		*e = (struct size_slot){ key, m->file_size, m->mtime_ns,
		    md->scan_ctime_ns, m->size };
}

/*
 * A message file that cannot be read (permissions, a bad sector) costs
 * that message, noted for the log, not the whole maildrop: the user
 * still gets the rest of the mail.  No descriptor or memory left is
 * the server's trouble, not the file's: the login fails, to be tried
 * again.  MAILDIR_GONE (drop the message) or MAILDIR_IO, after errno.
 */
static enum maildir_status
unreadable(struct maildrop *md)
{
	if (errno == EMFILE || errno == ENFILE || errno == ENOMEM)
		return MAILDIR_IO;
	note_trouble(&md->notes.unreadable, &md->notes.unreadable_errno);
	return MAILDIR_GONE;
}

/* O_NONBLOCK: a FIFO planted in cur/ cannot hang the server. */
static int
open_for_reading(const char *path)
{
	int f;

	do
		f = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	while (f == -1 && errno == EINTR);
	return f;
}

static void
index_free(struct cur_index *ix)
{
	for (size_t i = 0; i < ix->n; i++)
		free(ix->files[i].name);
	free(ix->files);
	free(ix->by_name);
	*ix = (struct cur_index){ 0 };
}

static int
cur_file_cmp(const void *a, const void *b)
{
	const struct cur_file *x = a, *y = b;

	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/*
 * Notes cur/'s mtime before reading it.  A change lands on the mtime
 * only at the file system's clock tick (a second on some), so a change
 * made in the tick of the one before may not show: an mtime older than
 * INDEX_SETTLE_NS is one no later change can leave as it is.
 */
static void
index_stamp(const struct maildrop *md, struct cur_index *ix)
{
	struct stat sb;

	ix->stamped = stat(md->cur, &sb) == 0;
	if (ix->stamped) {
		ix->dir_mtime_ns = now_ts_ns(&sb.st_mtim);
		ix->settled = now_ns(CLOCK_REALTIME) - ix->dir_mtime_ns >
		    INDEX_SETTLE_NS;
	}
}

/* True when cur/'s mtime is still the one ix was read at. */
static bool
cur_as_read(const struct maildrop *md, const struct cur_index *ix)
{
	struct stat sb;

	return ix->stamped && stat(md->cur, &sb) == 0 &&
	    now_ts_ns(&sb.st_mtim) == ix->dir_mtime_ns;
}

/*
 * True when a message missing from ix is to be taken as gone without
 * reading cur/ again (a long loop for a big one, which a client could
 * make the server repeat with every RETR).  Only while cur/'s mtime has
 * not moved since ix was read, and either its mtime had settled then
 * (no change can hide behind it), or ix is younger than the time its
 * reading took: a reading is itself spread over that long, so a newer
 * one would be no surer, and a client's retries cost at most half the
 * loop's time.
 */
static bool
cur_unchanged(const struct maildrop *md, const struct cur_index *ix)
{
	return cur_as_read(md, ix) && (ix->settled ||
	    now_ns(CLOCK_MONOTONIC) - ix->read_end_ns < ix->read_cost_ns);
}

/* Adds dir's file names to ix, unsorted; false (errno) when it cannot. */
static bool
names_read(const char *dir, struct cur_index *ix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	bool ok = d != NULL;

	while (ok && (de = readdir(d)) != NULL) {
		if (skip_name(de->d_name))
			continue;
		if (ix->n == ix->cap) {
			size_t cap = ix->cap == 0 ? 64 : ix->cap * 2;
			struct cur_file *grown = realloc(ix->files,
			    cap * sizeof(*grown));

			if (grown == NULL) {
				ok = false;
				break;
			}
			ix->files = grown;
			ix->cap = cap;
		}
		ix->files[ix->n].ino = (uint64_t)de->d_ino;
		if ((ix->files[ix->n].name = strdup(de->d_name)) == NULL)
			ok = false;
		else
			ix->n++;
	}
	if (d != NULL)
		(void)closedir(d);
	if (!ok) {
		int err = errno;

		index_free(ix);		/* the next call starts afresh */
		errno = err;
	}
	return ok;
}

/* Reads cur/ into ix, sorted by inode; false (errno) when it cannot. */
static bool
index_read(const struct maildrop *md, struct cur_index *ix)
{
	int64_t start = now_ns(CLOCK_MONOTONIC);

	index_stamp(md, ix);
	if (!names_read(md->cur, ix))
		return false;
	if (ix->n > 1)
		qsort(ix->files, ix->n, sizeof(*ix->files), cur_file_cmp);
	ix->steady = cur_as_read(md, ix);
	ix->read = true;
	ix->read_end_ns = now_ns(CLOCK_MONOTONIC);
	ix->read_cost_ns = ix->read_end_ns - start;
	return true;
}

/* The name in ix of m's very file (same inode, same unique name). */
static const char *
index_find(const struct cur_index *ix, const struct mail_msg *m)
{
	size_t lo = 0, hi = ix->n, base = base_len(m->file);

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ix->files[mid].ino < m->ino)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < ix->n && ix->files[lo].ino == m->ino; lo++)
		if (base_len(ix->files[lo].name) == base &&
		    strncmp(ix->files[lo].name, m->file, base) == 0)
			return ix->files[lo].name;
	return NULL;
}

/*
 * True when sb is m's file as listed: a freed inode number is soon
 * given to a new file, so the size and mtime (which a rename keeps)
 * must match too.
 */
static bool
is_msg_file(const struct stat *sb, const struct mail_msg *m)
{
	return S_ISREG(sb->st_mode) && (uint64_t)sb->st_ino == m->ino &&
	    (uint64_t)sb->st_size == m->file_size &&
	    now_ts_ns(&sb->st_mtim) == m->mtime_ns;
}

/* True when cur/name is m's file as listed. */
static bool
still_same_file(const struct maildrop *md, const struct mail_msg *m,
    const char *name)
{
	char path[PATH_MAX];
	struct stat sb;

	return join_path(path, md->cur, name) == 0 &&
	    lstat(path, &sb) == 0 && is_msg_file(&sb, m);
}

/* The name in ix of m's very file, when it is not m->file already. */
static const char *
index_lookup(const struct maildrop *md, const struct cur_index *ix,
    const struct mail_msg *m)
{
	const char *found = index_find(ix, m);

	if (found == NULL || (!m->in_new && strcmp(found, m->file) == 0) ||
	    !still_same_file(md, m, found))
		return NULL;
	return found;
}

/*
 * ix holds m's file, though relocate could not take it: under a name
 * gone since (renamed again after the reading) or under one already
 * tried (renamed back to it).  Either way it is not gone; retry_missed
 * looks once more.  A name that now holds another file is no sighting.
 */
static bool
seen_in(const struct maildrop *md, const struct cur_index *ix,
    const struct mail_msg *m)
{
	const char *name = index_find(ix, m);
	char path[PATH_MAX];
	struct stat sb;

	if (name == NULL || join_path(path, md->cur, name) == -1)
		return false;
	if (lstat(path, &sb) == -1)
		return errno == ENOENT;
	return is_msg_file(&sb, m);
}

/*
 * m's file is not under its listed name.  Another Maildir reader (an
 * IMAP server, a mail user agent) may have renamed it to change its
 * flags, or moved it from new/, which keeps the file (its inode) and
 * its unique name before ':': look for that in cur/ and follow it.  A
 * file that merely has the same unique name (or a reused inode number)
 * is another message and is never taken for m, least of all deleted
 * for it.  True when m->file now names m's file; else false with errno
 * ENOENT (m's file is gone) or why cur/ could not be searched, which a
 * QUIT must count as a failed deletion, not a done one.  ix is kept by
 * the caller, so that a client fetching, or a QUIT deleting, every
 * message after a flag change on all of them reads cur/ once, not once
 * a message.
 */
static bool
relocate(struct maildrop *md, struct mail_msg *m, struct cur_index *ix)
{
	const char *found = ix->read ? index_lookup(md, ix, m) : NULL;
	char *name;

	if (found == NULL &&
	    (!ix->read || (ix->stale && !cur_unchanged(md, ix)))) {
		index_free(ix);
		if (!index_read(md, ix))
			return false;
		found = index_lookup(md, ix, m);
	}
	if (found == NULL) {
		if (seen_in(md, ix, m))
			md->sightings++;
		errno = ENOENT;
		return false;
	}
	if ((name = strdup(found)) == NULL)
		return false;
	free(m->file);
	m->file = name;
	m->in_new = false;
	md->sightings++;
	return true;
}

/*
 * Runs op on the path of m's file; after an ENOENT, follows a flags
 * rename (relocate) and tries once more.  op's result, with errno.
 */
static int
on_msg_file(struct maildrop *md, struct mail_msg *m,
    int (*op)(const char *path), struct cur_index *ix)
{
	char path[PATH_MAX];
	bool retried = false;
	int r;

	for (;;) {
		struct stat sb;

		if (join_path(path, msg_dir(md, m), m->file) == -1)
			return -1;
		/*
		 * Another file put under the very name (a redelivery after
		 * the message was renamed or expunged) is not m: as for a
		 * name gone, look for m's file elsewhere.  The inode alone
		 * decides, so that m's file grown or cut is still m's
		 * (MAILDIR_CHANGED, never sent); a folder or link made under
		 * the name may have got m's freed inode number.
		 */
		if (lstat(path, &sb) == -1)
			r = -1;
		else if (!S_ISREG(sb.st_mode) || (uint64_t)sb.st_ino != m->ino)
			r = -1, errno = ENOENT;
		else
			r = op(path);
		if (r != -1 || errno != ENOENT || retried)
			return r;
		if (!relocate(md, m, ix))
			return -1;
		retried = true;
	}
}

/*
 * Opens message md->scan_next for sizing.  Returns MAILDIR_OK with
 * scan_fd set (or *later: try it again at the next step), MAILDIR_GONE
 * when the file vanished (or is no longer a regular file) or cannot be
 * read, or MAILDIR_IO.
 */
static enum maildir_status
scan_open(struct maildrop *md, bool *later)
{
	struct mail_msg *m = &md->msgs[md->scan_next];
	/* No reading of cur/ yet this step: a miss now reads it after. */
	bool fresh = !md->open_ix.read;
	struct stat sb;
	int fd;

	/*
	 * Another reader may have renamed the file since the listing (an
	 * IMAP client marking everything read): it is followed, as for
	 * RETR, with at most one reading of cur/ a step.  A miss against
	 * a reading made before it, with cur/ changed since, waits for the
	 * next step's reading.  (A rename in the clock tick of that reading
	 * is taken for gone: left out of this session, listed at the next.)
	 */
	md->open_ix.stale = false;
	*later = false;
	fd = on_msg_file(md, m, open_for_reading, &md->open_ix);
	if (fd == -1 && errno == ENOENT && !fresh &&
	    !cur_as_read(md, &md->open_ix)) {
		*later = true;
		return MAILDIR_OK;
	}
	if (fd == -1)
		return errno == ENOENT ? MAILDIR_GONE : unreadable(md);
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
		(void)close(fd);
		return MAILDIR_GONE;
	}
	md->scan_fd = fd;
	md->scan_read = 0;
	md->scan_expect = (uint64_t)sb.st_size;
	md->scan_ctime_ns = now_ts_ns(&sb.st_ctim);
	/* Sized as it is now: a change since the listing is no change. */
	m->mtime_ns = now_ts_ns(&sb.st_mtim);
	wiresize_init(&md->scan_ws);
	return MAILDIR_OK;
}

/*
 * Feeds the wire size of the file being sized with at most `budget`
 * more bytes.  Returns the count read, 0 once the file is read whole,
 * or -1 when it cannot be read.  It stops at the st_size seen at open:
 * this saves the read() that would only return 0, and a message that
 * grows while we size it is caught by maildir_msg_open() (size changed).
 */
static ssize_t
scan_read(struct maildrop *md, size_t budget)
{
	uint64_t want = md->scan_expect - md->scan_read;
	ssize_t r;

	if (want == 0)
		return 0;
	if (want > budget)
		want = budget;
	if (want > sizeof(scratch))
		want = sizeof(scratch);
	do
		r = read(md->scan_fd, scratch, (size_t)want);
	while (r == -1 && errno == EINTR);
	if (r > 0) {
		wiresize_feed(&md->scan_ws, scratch, (size_t)r);
		md->scan_read += (uint64_t)r;
	}
	return r;	/* 0: shorter than at open; what is there is sized */
}

/* The file being sized is read whole: its message gets its size. */
static void
scan_finish(struct maildrop *md)
{
	struct mail_msg *m = &md->msgs[md->scan_next];

	m->size = wiresize_end(&md->scan_ws);
	/* Remember only a size read whole at the listed size. */
	if (m->file_size == md->scan_read)
		size_remember(md, m);
	m->file_size = md->scan_read;
	scan_close(md);
	md->scan_next++;
}

enum maildir_status
maildir_scan_step(struct maildrop *md, size_t byte_budget, bool *done)
{
	size_t spent = 0;
	enum maildir_status st;
	bool later = false;

	assert(md != NULL && done != NULL);
	/* A budget of 0 would never finish; it means "the least". */
	if (byte_budget == 0)
		byte_budget = 1;
	*done = false;
	if (md->listing != LIST_DONE) {
		size_t units = byte_budget / SCAN_ENTRY_COST;

		st = list_step(md, units < SCAN_MIN_ENTRIES ?
		    SCAN_MIN_ENTRIES : units);
		if (st != MAILDIR_OK || md->listing != LIST_DONE)
			return st;
	}
	index_free(&md->open_ix);	/* renames since: read afresh */
	while (md->scan_next < md->count) {
		ssize_t r;

		if (md->scan_fd < 0) {
			if (size_cached(md, &md->msgs[md->scan_next])) {
				md->scan_next++;
				continue;
			}
			if (spent >= byte_budget)
				break;
			st = scan_open(md, &later);
			if (later)
				break;
			/* Many tiny files cost opens, not bytes. */
			spent += SCAN_ENTRY_COST;
			if (st == MAILDIR_GONE) {
				drop_msg(md, md->scan_next++);
				continue;
			}
			if (st != MAILDIR_OK)
				return st;
		}
		if (md->scan_read < md->scan_expect && spent >= byte_budget)
			break;
		r = scan_read(md, byte_budget - spent);
		if (r > 0) {
			spent += (size_t)r;
			continue;
		}
		if (r == 0) {
			scan_finish(md);
			continue;
		}
		scan_close(md);
		if ((st = unreadable(md)) != MAILDIR_GONE)
			return st;
		drop_msg(md, md->scan_next++);
	}
	*done = md->scan_next >= md->count;
	if (*done) {
		drop_marked(md);
		md->scan_next = md->count;
	}
	return MAILDIR_OK;
}

const struct maildir_notes *
maildir_notes(const struct maildrop *md)
{
	return &md->notes;
}

size_t
maildir_count(const struct maildrop *md)
{
	return md->count;
}

const struct mail_msg *
maildir_msg(const struct maildrop *md, size_t n)
{
	if (n < 1 || n > md->count)
		return NULL;
	return &md->msgs[n - 1];
}

size_t
maildir_live_count(const struct maildrop *md)
{
	size_t i, live = 0;

	for (i = 0; i < md->count; i++)
		if (!md->msgs[i].deleted)
			live++;
	return live;
}

uint64_t
maildir_live_size(const struct maildrop *md)
{
	uint64_t sum = 0;
	size_t i;

	for (i = 0; i < md->count; i++)
		if (!md->msgs[i].deleted)
			sum += md->msgs[i].size;
	return sum;
}

enum maildir_status
maildir_msg_open(struct maildrop *md, size_t n, int *fd)
{
	struct stat sb;
	int f;

	assert(md != NULL && fd != NULL);
	*fd = -1;
	if (n < 1 || n > md->count)
		return MAILDIR_IO;
	md->open_ix.stale = true;	/* cur/ may have changed since */
	f = on_msg_file(md, &md->msgs[n - 1], open_for_reading, &md->open_ix);
	if (f == -1)
		return errno == ENOENT ? MAILDIR_GONE : MAILDIR_IO;
	if (fstat(f, &sb) == -1) {
		int err = errno;

		(void)close(f);
		errno = err;
		return MAILDIR_IO;
	}
	/* Something else put in its place is not the message. */
	if (!S_ISREG(sb.st_mode)) {
		(void)close(f);
		return MAILDIR_GONE;
	}
	/*
	 * The size we announced must still be the size we send, and the
	 * file the one listed (replaced since the check by name: gone).
	 */
	if ((uint64_t)sb.st_ino != md->msgs[n - 1].ino) {
		(void)close(f);
		return MAILDIR_GONE;
	}
	/* A rewrite in place keeps the inode but moves the mtime. */
	if ((uint64_t)sb.st_size != md->msgs[n - 1].file_size ||
	    now_ts_ns(&sb.st_mtim) != md->msgs[n - 1].mtime_ns) {
		(void)close(f);
		return MAILDIR_CHANGED;
	}
	*fd = f;
	return MAILDIR_OK;
}

bool
maildir_mark_deleted(struct maildrop *md, size_t n)
{
	if (n < 1 || n > md->count || md->msgs[n - 1].deleted)
		return false;
	md->msgs[n - 1].deleted = true;
	return true;
}

void
maildir_rollback(struct maildrop *md)
{
	size_t i;

	for (i = 0; i < md->count; i++)
		md->msgs[i].deleted = false;
}

/* Why a deletion failed when no system call did (first_failed_errno). */
#define FAIL_RENAMED	(-1)	/* another program kept renaming it */
#define FAIL_REPLACED	(-2)	/* a file with its name remains */

/* The file name of item k of an array of names, or of messages. */
static const char *
name_at_name(const void *items, size_t k)
{
	return ((const char *const *)items)[k];
}

static const char *
name_at_msg(const void *items, size_t k)
{
	return ((struct mail_msg *const *)items)[k]->file;
}

static int
by_name_cmp(const void *a, const void *b)
{
	return base_cmp(name_at_name(a, 0), name_at_name(b, 0));
}

/* The first of n items sorted by unique name whose name is not below name. */
static size_t
first_not_below(const void *items, size_t n,
    const char *(*name_at)(const void *, size_t), const char *name)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (base_cmp(name_at(items, mid), name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * True when dir/name, listed by a reading of dir, is a regular file
 * (lstat: a link is none), or is no longer there: renamed since, it is
 * somewhere still (or expunged since; the safe side takes it for kept).
 */
static bool
file_or_moved(const char *dir, const char *name)
{
	char path[PATH_MAX];
	struct stat sb;

	if (join_path(path, dir, name) == -1)
		return false;
	if (lstat(path, &sb) == -1)
		return errno == ENOENT;
	return S_ISREG(sb.st_mode);
}

/*
 * 1 when ix (a reading of dir) holds a regular file with m's unique
 * name (file_or_moved), 0 when not, -1 (errno) when that cannot be
 * told.  ix's names are sorted by unique name once a reading, so a
 * slice of misses costs one sort and a binary search each, not a scan
 * each.
 */
static int
holds_name(const char *dir, struct cur_index *ix, const struct mail_msg *m)
{
	size_t lo;

	if (ix->by_name == NULL && ix->n > 0) {
		ix->by_name = malloc(ix->n * sizeof(*ix->by_name));
		if (ix->by_name == NULL)
			return -1;
		for (size_t k = 0; k < ix->n; k++)
			ix->by_name[k] = ix->files[k].name;
		qsort(ix->by_name, ix->n, sizeof(*ix->by_name), by_name_cmp);
	}
	lo = first_not_below(ix->by_name, ix->n, name_at_name, m->file);
	for (; lo < ix->n && base_cmp(ix->by_name[lo], m->file) == 0; lo++)
		if (file_or_moved(dir, ix->by_name[lo]))
			return 1;
	return 0;
}

/*
 * Why m, missing under its listed file, is not gone: FAIL_REPLACED when
 * a regular file with its unique name is in cur/ (as ix read it) or in
 * new/, whatever its flags (another program replaced m: a copy renamed
 * over it, as Python's mailbox changes flags, or m moved back to new/).
 * That file is not m's as listed, so it is never deleted for m; but the
 * next login lists it under m's UIDL, so the QUIT must not answer +OK
 * as if m were gone.  An errno when that cannot be told (the safe
 * side); 0 when m is gone.  new/ is read on first need, and again
 * after each new reading of cur/.
 */
static int
replaced_cause(struct maildrop *md, struct cur_index *ix,
    const struct mail_msg *m)
{
	int r = holds_name(md->cur, ix, m);

	/*
	 * new/ is read after ix: a file moved from cur/ to new/ between the
	 * two readings is in one of them.  One moved back from new/ to cur/
	 * between them is in neither: counted gone, as a file a storm hides
	 * from every reading (design.md, the QUIT rules).
	 */
	if (r == 0 && (!md->commit_new.read ||
	    md->commit_new.read_end_ns < ix->read_end_ns)) {
		index_free(&md->commit_new);
		if (!names_read(md->newdir, &md->commit_new))
			return errno != 0 ? errno : EIO;
		md->commit_new.read = true;
		md->commit_new.read_end_ns = now_ns(CLOCK_MONOTONIC);
	}
	if (r == 0)
		r = holds_name(md->newdir, &md->commit_new, m);
	if (r < 0 && errno == 0)
		errno = EIO;
	return r == 0 ? 0 : r > 0 ? FAIL_REPLACED : errno;
}

/* An unlink of message i that failed with err: counted, the first kept. */
static void
commit_fail(struct maildrop *md, size_t i, int err)
{
	md->msgs[i].kept = true;
	if (md->commit_failed++ == 0) {
		md->first_failed = i;
		md->first_failed_errno = err;
	}
}

/*
 * The slice's deletions from message `from` on that found no file.  One
 * may be a file another reader renamed after cur/ was read for it (an
 * IMAP client changing flags during the QUIT): cur/ is read once more,
 * now, and only a file missing from that reading too is gone.  A file
 * found there but renamed again before its unlink, or missing from a
 * reading that cur/ changed under (a rename can hide an entry from
 * readdir), is looked for again: up to COMMIT_REREADS readings in all.
 * One still unresolved after the last of them and seen in any of them
 * counts as failed (the QUIT answers -ERR, the message stays), never as
 * deleted.  One missing from a steady reading, or from every one, is
 * gone (expunged by another client while cur/ was busy): for a file a
 * storm hid, that takes COMMIT_REREADS misses in a row.  Unless a file
 * with its name remains (replaced_cause): that fails too.  One reading
 * a round, never one a miss.
 */
static void
retry_missed(struct maildrop *md, size_t from)
{
	bool again = true;
	int cause;

	for (int round = 0; again && round < COMMIT_REREADS; round++) {
		again = false;
		index_free(&md->commit_ix);
		for (size_t i = from; i < md->commit_next; i++) {
			struct mail_msg *m = &md->msgs[i];
			size_t seen = md->sightings;

			if (!m->missed)
				continue;
			m->missed = false;
			if (on_msg_file(md, m, unlink, &md->commit_ix) != -1)
				continue;
			if (errno != ENOENT)
				commit_fail(md, i, errno);
			else if (md->sightings != seen ||
			    !md->commit_ix.steady) {
				m->moving = m->moving || md->sightings != seen;
				again = m->missed = true;
			} else if ((cause = replaced_cause(md, &md->commit_ix,
			    m)) != 0)
				commit_fail(md, i, cause);
		}
	}
	for (size_t i = from; i < md->commit_next; i++) {
		struct mail_msg *m = &md->msgs[i];

		if (m->missed && m->moving)
			commit_fail(md, i, FAIL_RENAMED);
		else if (m->missed &&
		    (cause = replaced_cause(md, &md->commit_ix, m)) != 0)
			commit_fail(md, i, cause);
		m->missed = m->moving = false;
	}
}

bool
maildir_commit_step(struct maildrop *md, size_t max)
{
	size_t from = md->commit_next, done = 0;
	bool missed = false, end = true;

	for (; md->commit_next < md->count; md->commit_next++) {
		struct mail_msg *m = &md->msgs[md->commit_next];

		if (!m->deleted)
			continue;
		if (max > 0 && done++ == max) {
			end = false;
			break;
		}
		if (on_msg_file(md, m, unlink, &md->commit_ix) == -1) {
			if (errno == ENOENT)
				missed = m->missed = true;
			else
				commit_fail(md, md->commit_next, errno);
		}
	}
	if (missed)
		retry_missed(md, from);
	/* Renames may come before the next pass: read afresh. */
	index_free(&md->commit_ix);
	index_free(&md->commit_new);
	return end;
}

static int
msg_by_name_cmp(const void *a, const void *b)
{
	return base_cmp(name_at_msg(a, 0), name_at_msg(b, 0));
}

/*
 * The deletions that stand, sorted by unique name for the verify's
 * lookups; false when there are none (or no memory: the deletions
 * stand, they were done).
 */
static bool
verify_begin(struct maildrop *md)
{
	size_t n = 0;

	for (size_t i = 0; i < md->count; i++)
		n += md->msgs[i].deleted && !md->msgs[i].kept;
	if (n == 0)
		return false;
	/* NOLINTNEXTLINE(bugprone-sizeof-expression): pointers are meant */
	md->verify_by_name = malloc(n * sizeof(*md->verify_by_name));
	if (md->verify_by_name == NULL)
		return false;
	for (size_t i = 0; i < md->count; i++)
		if (md->msgs[i].deleted && !md->msgs[i].kept)
			md->verify_by_name[md->verify_n++] = &md->msgs[i];
	/* NOLINTNEXTLINE(bugprone-sizeof-expression): pointers are meant */
	qsort(md->verify_by_name, n, sizeof(*md->verify_by_name),
	    msg_by_name_cmp);
	md->verify_dir = opendir(md->cur);
	md->verify = VERIFY_CUR;
	return true;
}

/* A file the verify's reading of dir found: a deletion it undoes. */
static void
verify_entry(struct maildrop *md, const char *dir, const char *name)
{
	size_t lo = first_not_below(md->verify_by_name, md->verify_n,
	    name_at_msg, name);

	for (; lo < md->verify_n &&
	    base_cmp(md->verify_by_name[lo]->file, name) == 0; lo++) {
		struct mail_msg *m = md->verify_by_name[lo];

		if (!m->kept && file_or_moved(dir, name))
			commit_fail(md, (size_t)(m - md->msgs), FAIL_REPLACED);
	}
}

/* The folder being read is done: new/ after cur/, then the end. */
static void
verify_next_folder(struct maildrop *md)
{
	if (md->verify_dir != NULL)
		(void)closedir(md->verify_dir);
	md->verify_dir = NULL;
	if (md->verify == VERIFY_CUR) {
		md->verify_dir = opendir(md->newdir);
		md->verify = VERIFY_NEW;
		return;
	}
	free(md->verify_by_name);
	md->verify_by_name = NULL;
	md->verify_n = 0;
	md->verify = VERIFY_DONE;
}

/*
 * Python's mailbox rewrites a message to change its flags: a copy under
 * its unique name, which can land after the server deleted the listed
 * file.  A folder that cannot be read finds nothing: the deletions
 * stand, they were done.
 */
bool
maildir_commit_verify(struct maildrop *md, size_t max)
{
	if (md->verify == VERIFY_IDLE && !verify_begin(md))
		md->verify = VERIFY_DONE;
	for (size_t done = 0; md->verify != VERIFY_DONE; done++) {
		struct dirent *de = NULL;

		if (max > 0 && done == max)
			return false;
		if (md->verify_dir != NULL)
			de = readdir(md->verify_dir);
		if (de == NULL)
			verify_next_folder(md);
		else if (!skip_name(de->d_name))
			verify_entry(md, md->verify == VERIFY_CUR ? md->cur :
			    md->newdir, de->d_name);
	}
	return true;
}

size_t
maildir_commit_failed(const struct maildrop *md)
{
	return md->commit_failed;
}

const char *
maildir_commit_first_failure(const struct maildrop *md, const char **why)
{
	if (md->commit_failed == 0)
		return NULL;
	switch (md->first_failed_errno) {
	case FAIL_RENAMED:
		*why = "another program kept renaming it";
		break;
	case FAIL_REPLACED:
		*why = "a file with its name remains";
		break;
	default:
		*why = strerror(md->first_failed_errno);
		break;
	}
	return md->msgs[md->first_failed].file;
}

void
maildir_close(struct maildrop *md)
{
	size_t i;

	if (md == NULL)
		return;
	scan_close(md);
	index_free(&md->commit_ix);
	index_free(&md->commit_new);
	index_free(&md->open_ix);
	if (md->dir != NULL)
		(void)closedir(md->dir);
	if (md->verify_dir != NULL)
		(void)closedir(md->verify_dir);
	free(md->verify_by_name);
	free_entries(md->ents, md->nents);
	free(md->arrived.ino);
	for (i = 0; i < md->count; i++)
		free(md->msgs[i].file);
	free(md->msgs);
	free(md->newdir);
	free(md->cur);
	free(md);
}

const char *
maildir_strerror(enum maildir_status st)
{
	switch (st) {
	case MAILDIR_OK:
		return "success";
	case MAILDIR_NOMEM:
		return "out of memory";
	case MAILDIR_IO:
		return "cannot be read";
	case MAILDIR_TOOBIG:
		return "too many messages in maildrop";
	case MAILDIR_GONE:
		return "message file vanished or replaced";
	case MAILDIR_CHANGED:
		return "message file changed";
	}
	return "unknown maildir error";
}
