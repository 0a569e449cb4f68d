/*
 * Opening a maildrop (its folders made when missing), listing it (new/
 * moved into cur/, twins, UIDs), its message list, and closing it.  No
 * sockets, protocol or logging here, as in the other maildir files
 * (maildrop.h); callers log the status they get back.
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
#include "maildir.h"
#include "maildrop.h"
#include "now.h"

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

/* The folder that holds m's file. */
const char *
md_msg_dir(const struct maildrop *md, const struct mail_msg *m)
{
	return m->in_new ? md->newdir : md->cur;
}

/*
 * Builds "a/b" into buf[PATH_MAX].  Returns 0, or -1 with ENAMETOOLONG
 * when it would not fit.
 */
int
md_join_path(char *buf, const char *a, const char *b)
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
bool
md_skip_name(const char *name)
{
	return name[0] == '.' || name[0] == '\0';
}

/* Length of the Maildir unique name: the file name up to its ':' info. */
size_t
md_base_len(const char *name)
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
	int base = (int)md_base_len(name);
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
	return md_join_path(dst, curdir, target);
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
void
md_note_trouble(size_t *count, int *first_errno)
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

	if (md_join_path(src, md->newdir, name) == -1)
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
			md_note_trouble(&md->notes.unmoved,
			    &md->notes.unmoved_errno);
			return MAILDIR_OK;
		}
		rc = -1;
	}
	if (rc == -1) {
		md_note_trouble(&md->notes.unmoved, &md->notes.unmoved_errno);
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
		if (md_skip_name(de->d_name))
			continue;
		if ((st = move_new(md, de->d_name)) != MAILDIR_OK)
			return st;
	}
	return MAILDIR_OK;
}

/* Orders file names by their unique name (the part before ':'). */
int
md_base_cmp(const char *a, const char *b)
{
	size_t la = md_base_len(a), lb = md_base_len(b);
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
	int c = md_base_cmp(x->name, y->name);

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
	return md_base_cmp(a, b) == 0;
}

/* The path of listed file e. */
static int
entry_path(char path[PATH_MAX], const struct maildrop *md,
    const struct entry *e)
{
	return md_join_path(path, e->in_new ? md->newdir : md->cur, e->name);
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
	    md_join_path(src, md->cur, fresh) == 0) {
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
		if (md_skip_name(de->d_name))
			continue;
		if (md_join_path(path, md->cur, de->d_name) == -1)
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

uint64_t
md_fnv1a64(const char *s, size_t len)
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
	size_t len = md_base_len(name);
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
	    (unsigned long long)md_fnv1a64(name, len));
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
				    "~~%016llx", (unsigned long long)md_fnv1a64(
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
	if (md_join_path(udir, root, user) == -1 ||
	    md_join_path(cur, udir, "cur") == -1 ||
	    md_join_path(newd, udir, "new") == -1 ||
	    md_join_path(tmp, udir, "tmp") == -1)
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
	int c = md_base_cmp(x->name, y->name);
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
enum maildir_status
md_list_step(struct maildrop *md, size_t units)
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


void
maildir_close(struct maildrop *md)
{
	size_t i;

	if (md == NULL)
		return;
	md_scan_close(md);
	md_index_free(&md->commit_ix);
	md_index_free(&md->commit_new);
	md_index_free(&md->open_ix);
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
