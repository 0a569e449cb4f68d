/*
 * Sizing: the POP3 size of each listed message (its octets on the
 * wire, after CRLF and dot-stuffing), a slice of bytes per call, with a
 * cache of the sizes earlier logins computed.  A message that vanished
 * or cannot be read is dropped from the list here.  No sockets and no
 * logging, as in all of maildir: the notes say what was dropped.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "dotstuff.h"
#include "maildir.h"
#include "maildrop.h"
#include "now.h"

/* Read size while sizing messages; see scratch below. */
#define SCAN_CHUNK	(64 * 1024)

/*
 * Read buffer for sizing.  The server is single-threaded and the buffer
 * is only used inside one maildir_scan_step() call, so one static area
 * serves every maildrop (and keeps 64 KiB off the stack).
 */
static uint8_t scratch[SCAN_CHUNK];

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

void
md_scan_close(struct maildrop *md)
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
	const char *dir = md_msg_dir(md, m);
	uint64_t h = md_fnv1a64(dir, strlen(dir));

	return h ^
	    (md_fnv1a64(m->file, strlen(m->file)) * 0x9e3779b97f4a7c15ULL);
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
	md_note_trouble(&md->notes.unreadable, &md->notes.unreadable_errno);
	return MAILDIR_GONE;
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
	fd = md_on_msg_file(md, m, md_open_for_reading, &md->open_ix);
	if (fd == -1 && errno == ENOENT && !fresh &&
	    !md_cur_as_read(md, &md->open_ix)) {
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
	md_scan_close(md);
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

		st = md_list_step(md, units < SCAN_MIN_ENTRIES ?
		    SCAN_MIN_ENTRIES : units);
		if (st != MAILDIR_OK || md->listing != LIST_DONE)
			return st;
	}
	md_index_free(&md->open_ix);	/* renames since: read afresh */
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
		md_scan_close(md);
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
