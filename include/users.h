/*
 * The user store: accounts (name + crypt(3) SHA-512 hash), the server
 * settings that MGMT may change, the users/settings file they persist
 * in.  No socket calls here.
 *
 * File format (one record a line; '#' starts a comment line):
 *   name:$6$salt$hash      an account ("$6$rounds=N$salt$hash" too)
 *   key=value              a setting (key: [a-z_]+, value: decimal)
 *   %key text              a text setting (text: to the end of line)
 * The file is rewritten atomically (temporary file in the same folder,
 * fsync, rename, fsync of the folder) with mode 0600.
 */
#ifndef POP3D_USERS_H
#define POP3D_USERS_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

struct users;

enum users_status {
	USERS_OK = 0,
	USERS_NOMEM,
	USERS_IO,		/* the file could not be read or written */
	USERS_PARSE,		/* a line of the file is malformed */
	USERS_BADNAME,		/* users_valid_name() refused the name */
	USERS_BADPASS,		/* users_valid_password() refused it */
	USERS_EXISTS,		/* the user already exists */
	USERS_NOTFOUND,		/* no such user */
	USERS_FULL,		/* max_users reached */
	USERS_UNSYNCED,		/* saved, but the folder's fsync failed */
};

/*
 * Loads `path`.  A missing file is an empty store (it is created by the
 * first users_save()).  On USERS_PARSE, *line is the 1-based bad line:
 * malformed, a hash not of crypt(3)'s SHA-512 shape, a setting outside
 * the range MGMT accepts (settings.h), or a max_users below the number
 * of accounts.  On USERS_IO errno says why.  The store keeps a copy of
 * path.  *out is the caller's.
 */
enum users_status users_load(const char *path, struct users **out,
    unsigned *line);
/* Frees the store; NULL is fine. */
void users_free(struct users *u);

/*
 * Writes the store to its file atomically, mode 0600.  On failure
 * (errno says why) the old file is untouched.  USERS_UNSYNCED: the new
 * file replaced the old one, so the change is in effect, but the fsync
 * of its folder failed (errno): a system crash may still lose it.
 */
enum users_status users_save(struct users *u);

/*
 * Rereads the accounts and settings from the file, dropping changes
 * not saved.  On failure nothing changes.
 * (MGMT undoes a failed change from a users_snapshot(), without I/O;
 * this serves the fuzz harness, which resets the store between inputs.)
 */
enum users_status users_reload(struct users *u);

/*
 * An in-memory copy of the accounts and settings (the file's text; the
 * caller frees it), and its restoration: a change whose save failed is
 * undone without any I/O, even when no descriptor is left.
 * users_snapshot returns NULL when memory is short.
 */
char *users_snapshot(const struct users *u);
enum users_status users_restore(struct users *u, const char *snapshot);

/* 1..USER_NAME_MAX of [A-Za-z0-9._-], not starting with '.'. */
bool users_valid_name(const char *name);
/* 1..PASSWORD_MAX printable ASCII characters (0x21..0x7E). */
bool users_valid_password(const char *password);

/* Number of accounts, and the name of the i-th (0-based, sorted). */
size_t users_count(const struct users *u);
const char *users_name_at(const struct users *u, size_t i);
/*
 * Index of the first account whose name sorts after `name` ("" for the
 * first of all): where a listing that stopped at `name` goes on, even
 * after accounts before it were added or deleted.
 */
size_t users_index_after(const struct users *u, const char *name);
bool users_exists(const struct users *u, const char *name);

/*
 * True when `name` exists and `password` matches its hash.  An unknown
 * user costs the same crypt(3) work as a known one, so timing does not
 * tell which names exist.
 */
bool users_verify(struct users *u, const char *name, const char *password);

/*
 * The fast path: true when `password` is the one that last passed
 * users_verify() for `name`, less than LOGIN_CACHE_TTL seconds ago (a
 * keyed MAC kept in memory, never on disk).  False means "ask
 * users_verify()", not "wrong".
 */
bool users_verify_cached(struct users *u, const char *name,
    const char *password);

/*
 * Account changes, in memory only: call users_save() to persist.
 * users_add fails with USERS_BADNAME, USERS_BADPASS, USERS_EXISTS or
 * USERS_FULL (count == max_users); users_set_password with
 * USERS_NOTFOUND or USERS_BADPASS; users_delete with USERS_NOTFOUND.
 * Passwords are hashed with a fresh random salt ($6$).
 */
enum users_status users_add(struct users *u, const char *name,
    const char *password);
enum users_status users_set_password(struct users *u, const char *name,
    const char *password);
enum users_status users_delete(struct users *u, const char *name);

/*
 * Settings: unsigned values by key.  users_setting returns `dflt` when
 * the key is absent.  users_set_setting adds or replaces (in memory).
 */
unsigned long users_setting(const struct users *u, const char *key,
    unsigned long dflt);
enum users_status users_set_setting(struct users *u, const char *key,
    unsigned long value);

/*
 * Text settings (a filter command line, say).  users_setting_text
 * returns NULL when absent; the pointer lives until the next change.
 * users_set_setting_text with NULL removes the key; text must be
 * non-empty and hold no CR or LF (USERS_PARSE otherwise).
 */
const char *users_setting_text(const struct users *u, const char *key);
enum users_status users_set_setting_text(struct users *u, const char *key,
    const char *text);

/* Shortcuts for the "max_users" setting (DEFAULT_MAX_USERS). */
size_t users_max(const struct users *u);

/*
 * Fills buf with a random password of len-1 characters from
 * [A-Za-z0-9] and a NUL; returns false if no randomness was available.
 */
bool users_random_password(char *buf, size_t len);

const char *users_strerror(enum users_status st);

#endif
