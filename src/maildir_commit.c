/*
 * The UPDATE state's deletions: unlinking the marked files a slice at
 * a time, looking again for the ones another reader renamed, and the
 * verify that counts as failed a deletion that a copy under the same
 * unique name undid.  The only place a message is deleted: listing
 * moves and renames files (a link, then the old name's unlink), it
 * never deletes one.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "maildir.h"
#include "maildrop.h"
#include "now.h"

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
	return md_base_cmp(name_at_name(a, 0), name_at_name(b, 0));
}

/* The first of n items sorted by unique name whose name is not below name. */
static size_t
first_not_below(const void *items, size_t n,
    const char *(*name_at)(const void *, size_t), const char *name)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (md_base_cmp(name_at(items, mid), name) < 0)
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

	if (md_join_path(path, dir, name) == -1)
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
	for (; lo < ix->n && md_base_cmp(ix->by_name[lo], m->file) == 0; lo++)
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
		md_index_free(&md->commit_new);
		if (!md_names_read(md->newdir, &md->commit_new))
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
		md_index_free(&md->commit_ix);
		for (size_t i = from; i < md->commit_next; i++) {
			struct mail_msg *m = &md->msgs[i];
			size_t seen = md->sightings;

			if (!m->missed)
				continue;
			m->missed = false;
			if (md_on_msg_file(md, m, unlink, &md->commit_ix) != -1)
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
		if (md_on_msg_file(md, m, unlink, &md->commit_ix) == -1) {
			if (errno == ENOENT)
				missed = m->missed = true;
			else
				commit_fail(md, md->commit_next, errno);
		}
	}
	if (missed)
		retry_missed(md, from);
	/* Renames may come before the next pass: read afresh. */
	md_index_free(&md->commit_ix);
	md_index_free(&md->commit_new);
	return end;
}

static int
msg_by_name_cmp(const void *a, const void *b)
{
	return md_base_cmp(name_at_msg(a, 0), name_at_msg(b, 0));
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
	    md_base_cmp(md->verify_by_name[lo]->file, name) == 0; lo++) {
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
		else if (!md_skip_name(de->d_name))
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
