/*
 * The Maildir backend: the only module that touches the mail root.
 * It opens a user's maildrop (DIR/<user>/{cur,new,tmp}), lists its
 * messages, computes their POP3 sizes, opens message files for reading,
 * and deletes messages at commit.  No socket calls, no protocol here.
 *
 * Nothing is removed before maildir_commit_step(); a session that ends
 * any other way closes the maildrop with its marks unused, and
 * maildir_rollback() forgets them all at RSET (RFC 1939 section 6).
 */
#ifndef POP3D_MAILDIR_H
#define POP3D_MAILDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct maildrop;

struct mail_msg {
	char *file;			/* file name in cur/ or new/ (owned) */
	bool in_new;			/* in new/: it could not be moved */
	uint64_t ino;			/* its inode: what a rename keeps */
	char uid[UIDL_MAX + 1];		/* UIDL: safe, stable, unique */
	uint64_t size;			/* wire octets (see dotstuff.h) */
	uint64_t file_size;		/* st_size when scanned */
	int64_t mtime_ns;		/* st_mtim when listed */
	int64_t ctime_ns;		/* st_ctim when listed */
	bool deleted;			/* marked by DELE */
	bool missed;			/* commit: not found; try again */
	bool moving;			/* commit: and seen since its miss */
	bool kept;			/* commit: its deletion failed */
};

enum maildir_status {
	MAILDIR_OK = 0,
	MAILDIR_NOMEM,		/* out of memory */
	MAILDIR_IO,		/* a folder or file unusable (errno) */
	MAILDIR_TOOBIG,		/* more than MAX_MAILDROP_MSGS messages */
	MAILDIR_GONE,		/* the message file vanished */
	MAILDIR_CHANGED,	/* the message file changed size */
};

/*
 * Opens the maildrop of `user` under `root`.  `user` must already have
 * passed users_valid_name(); as a second line of defence a name holding
 * '/' or starting with '.' is refused (MAILDIR_IO).  Creates the user's
 * folder and cur/, new/, tmp/ (mode 0700) when missing.  Nothing is
 * listed yet: call maildir_scan_step() until it says done.  On success
 * *out is the caller's, to be released with maildir_close().
 */
enum maildir_status maildir_open(const char *root, const char *user,
    struct maildrop **out);

/*
 * Lists the maildrop, then computes message sizes, a slice per call so
 * a huge maildrop never blocks the server for long.  Listing moves the
 * files of new/ to cur/ (adding the ":2," info, as Maildir readers do;
 * one that cannot be moved is listed from new/) and lists the regular
 * files of cur/ (no symlinks, no directories) in delivery order:
 * modification time, then name; at most
 * byte_budget / SCAN_ENTRY_COST directory entries (SCAN_MIN_ENTRIES at
 * least) per call.  Sizing reads at most about `byte_budget` bytes of
 * message files, an open counting SCAN_ENTRY_COST.  The list (count,
 * messages) exists once listing is over; *done is set when every size
 * is known too.  A file that vanished since the listing, or cannot be
 * read (see maildir_notes), is dropped from the list (it was never
 * shown to the client); other errors (a directory that cannot be read,
 * no descriptor left) return MAILDIR_IO, MAILDIR_NOMEM or
 * MAILDIR_TOOBIG.
 */
enum maildir_status maildir_scan_step(struct maildrop *md, size_t byte_budget,
    bool *done);

/*
 * What a login could not do, for the caller to log, each with the errno
 * of its first occurrence: files of new/ that could not be moved to
 * cur/ (they are listed from new/ all the same), and message files left
 * out of the list because they could not be read (permissions, an I/O
 * error: the file stays on disk, untouched).
 */
struct maildir_notes {
	size_t unmoved;
	int unmoved_errno;
	size_t unreadable;
	int unreadable_errno;
};

const struct maildir_notes *maildir_notes(const struct maildrop *md);

/* Messages in the maildrop, deleted ones included (numbers 1..count). */
size_t maildir_count(const struct maildrop *md);
/* Message n (1-based), or NULL when n is out of range. */
const struct mail_msg *maildir_msg(const struct maildrop *md, size_t n);
/* Messages not marked deleted, and the sum of their sizes. */
size_t maildir_live_count(const struct maildrop *md);
uint64_t maildir_live_size(const struct maildrop *md);

/*
 * Opens message n for reading (O_RDONLY, O_CLOEXEC, O_NOFOLLOW, and
 * O_NONBLOCK so a FIFO planted there cannot hang the server) into
 * *fd, owned by the caller.  A file another Maildir reader renamed to
 * change its flags (same unique name before ':') is followed.
 * MAILDIR_GONE when the file vanished (or something else is in its
 * place), MAILDIR_CHANGED when its size is no longer the scanned one.
 */
enum maildir_status maildir_msg_open(struct maildrop *md, size_t n, int *fd);

/* Marks message n deleted; false when out of range or already deleted. */
bool maildir_mark_deleted(struct maildrop *md, size_t n);
/* Forgets every deletion mark (RSET). */
void maildir_rollback(struct maildrop *md);
/*
 * UPDATE state: unlinks the marked messages, at most `max` per call (0:
 * no limit) so that deleting a huge maildrop never blocks the server
 * for long; true once every one was tried.  Follows flag renames as
 * maildir_msg_open() does, keeps going after a failure, and counts a
 * file already gone as deleted.
 */
bool maildir_commit_step(struct maildrop *md, size_t max);
/*
 * After the last step, before the answer: a deletion whose unique name
 * a file holds again (a copy another program wrote meanwhile, which the
 * next login would list under the same UIDL) counts as failed.  One
 * reading of cur/ and new/, at most `max` entries per call (0: no
 * limit); true once both were read.  A copy written after the reading
 * passed its place is not seen.
 */
bool maildir_commit_verify(struct maildrop *md, size_t max);
/* How many unlinks failed so far (0 = every one done). */
size_t maildir_commit_failed(const struct maildrop *md);
/*
 * The file name of the first failed unlink, or NULL if none failed;
 * *why says why: the system's error, or what another program did.
 */
const char *maildir_commit_first_failure(const struct maildrop *md,
    const char **why);

/* Releases the maildrop (no deletion happens here); NULL is fine. */
void maildir_close(struct maildrop *md);

const char *maildir_strerror(enum maildir_status st);

#endif
