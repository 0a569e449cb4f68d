/*
 * Finding a message file: another Maildir reader (an IMAP server
 * setting a flag) may rename it under us.  cur/ is read into an index
 * by inode, at most once for a run of lookups, and a file is followed
 * only when it is the very one listed.  Also opening a message for
 * RETR and TOP.  No sockets and no logging here, as in all of maildir.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "maildir.h"
#include "maildrop.h"
#include "now.h"

/* How old cur/'s mtime must be for an index of it to be trusted. */
#define INDEX_SETTLE_NS	(2 * (int64_t)1000000000)

/* O_NONBLOCK: a FIFO planted in cur/ cannot hang the server. */
int
md_open_for_reading(const char *path)
{
	int f;

	do
		f = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	while (f == -1 && errno == EINTR);
	return f;
}

void
md_index_free(struct cur_index *ix)
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
bool
md_cur_as_read(const struct maildrop *md, const struct cur_index *ix)
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
	return md_cur_as_read(md, ix) && (ix->settled ||
	    now_ns(CLOCK_MONOTONIC) - ix->read_end_ns < ix->read_cost_ns);
}

/* Adds dir's file names to ix, unsorted; false (errno) when it cannot. */
bool
md_names_read(const char *dir, struct cur_index *ix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	bool ok = d != NULL;

	while (ok && (de = readdir(d)) != NULL) {
		if (md_skip_name(de->d_name))
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

		md_index_free(ix);	/* the next call starts afresh */
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
	if (!md_names_read(md->cur, ix))
		return false;
	if (ix->n > 1)
		qsort(ix->files, ix->n, sizeof(*ix->files), cur_file_cmp);
	ix->steady = md_cur_as_read(md, ix);
	ix->read = true;
	ix->read_end_ns = now_ns(CLOCK_MONOTONIC);
	ix->read_cost_ns = ix->read_end_ns - start;
	return true;
}

/* The name in ix of m's very file (same inode, same unique name). */
static const char *
index_find(const struct cur_index *ix, const struct mail_msg *m)
{
	size_t lo = 0, hi = ix->n, base = md_base_len(m->file);

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ix->files[mid].ino < m->ino)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < ix->n && ix->files[lo].ino == m->ino; lo++)
		if (md_base_len(ix->files[lo].name) == base &&
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

	return md_join_path(path, md->cur, name) == 0 &&
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
 * tried (renamed back to it).  Either way it is not gone; the commit's
 * retry_missed() looks once more.  A name that now holds another file
 * is no sighting.
 */
static bool
seen_in(const struct maildrop *md, const struct cur_index *ix,
    const struct mail_msg *m)
{
	const char *name = index_find(ix, m);
	char path[PATH_MAX];
	struct stat sb;

	if (name == NULL || md_join_path(path, md->cur, name) == -1)
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
		md_index_free(ix);
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
int
md_on_msg_file(struct maildrop *md, struct mail_msg *m,
    int (*op)(const char *path), struct cur_index *ix)
{
	char path[PATH_MAX];
	bool retried = false;
	int r;

	for (;;) {
		struct stat sb;

		if (md_join_path(path, md_msg_dir(md, m), m->file) == -1)
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
	f = md_on_msg_file(md, &md->msgs[n - 1], md_open_for_reading,
	    &md->open_ix);
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
