/*
 * Maildir internals shared by the backend's files: maildir.c (opening,
 * listing, the message list, closing), maildir_size.c (sizing),
 * maildir_find.c (following a message another reader renamed, opening
 * it) and maildir_commit.c (the UPDATE's unlinks and their verify).
 * Not for other modules: their contract is maildir.h.
 */
#ifndef POP3D_MAILDROP_H
#define POP3D_MAILDROP_H

#include <sys/types.h>

#include <dirent.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dotstuff.h"
#include "maildir.h"

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

struct entry;

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
 * was read (see cur_unchanged); else a miss reads cur/ again.  Those
 * three are in maildir_find.c.
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
	int first_failed_errno;		/* and why: errno, or a FAIL_ code */
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

/* maildir.c */

/* The folder that holds m's file: cur/, or new/ when it could not move. */
const char *md_msg_dir(const struct maildrop *md, const struct mail_msg *m);

/* "a/b" into buf[PATH_MAX]: 0, or -1 with ENAMETOOLONG. */
int md_join_path(char *buf, const char *a, const char *b);

/* True for a name every Maildir reader skips (a leading '.'). */
bool md_skip_name(const char *name);

/* Length of a file name's unique part, up to its ':' info. */
size_t md_base_len(const char *name);

/* Orders file names by their unique part. */
int md_base_cmp(const char *a, const char *b);

/* Counts a trouble of one kind, keeping the first one's errno. */
void md_note_trouble(size_t *count, int *first_errno);

/* FNV-1a, 64 bits: UIDs of long names, and the size cache's keys. */
uint64_t md_fnv1a64(const char *s, size_t len);

/*
 * Lists at most `units` more directory entries (new/, then cur/).  Not
 * MAILDIR_OK: the login fails.  The listing is whole once md->listing
 * is LIST_DONE; until then, call again.
 */
enum maildir_status md_list_step(struct maildrop *md, size_t units);

/* maildir_size.c */

/* Closes the file being sized, if any. */
void md_scan_close(struct maildrop *md);

/* maildir_find.c */

/* open(2) of a message file for reading: never blocks, follows no link. */
int md_open_for_reading(const char *path);

/* Frees ix's reading and zeroes it: the next use reads afresh. */
void md_index_free(struct cur_index *ix);

/* Adds dir's file names to ix, unsorted; false (errno) when it cannot. */
bool md_names_read(const char *dir, struct cur_index *ix);

/* True when cur/'s mtime is still the one ix was read at. */
bool md_cur_as_read(const struct maildrop *md, const struct cur_index *ix);

/*
 * Runs op on m's file; when the file is not under its listed name,
 * follows another reader's rename (reading cur/ into ix at most once)
 * and runs op again.  op's result, with errno.
 */
int md_on_msg_file(struct maildrop *md, struct mail_msg *m,
    int (*op)(const char *path), struct cur_index *ix);

#endif
