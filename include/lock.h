/*
 * The maildrop locks: one session at a time per user name (RFC 1939's
 * exclusive access), so that two sessions never list, hand out or
 * delete the same messages.  Kept by name, apart from the accounts: a
 * deleted user's session holds its lock until it ends.
 */
#ifndef POP3D_LOCK_H
#define POP3D_LOCK_H

#include <stdbool.h>

/*
 * Locks name (1 to USER_NAME_MAX octets, copied) for holder, which
 * must not be NULL.  True when holder holds it now (also when it
 * already did); false when another holder has it, for a name out of
 * bounds, or without memory.
 */
bool lock_take(const char *name, void *holder);

/* Releases name's lock, only when holder holds it. */
void lock_release(const char *name, const void *holder);

/* The holder of name's lock, or NULL. */
void *lock_holder(const char *name);

#endif
