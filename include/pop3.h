/*
 * The POP3 service (RFC 1939, 2449, 5034; RFC 3206 response codes): one
 * session per client connection, driven by a per-state handler table.
 * This is the whole contract the server needs; the session internals are
 * in pop3_session.h.
 */
#ifndef POP3D_POP3_H
#define POP3D_POP3_H

#include <stdbool.h>
#include <stdint.h>

#include "selector.h"
#include "settings.h"
#include "users.h"

/* What every POP3 session shares; owned by the server, outlives them. */
struct pop3_env {
	struct selector *sel;
	struct users *users;
	const char *mail_root;
	const struct settings *settings;	/* idle_s, filter */
	char hostname[256];	/* POP3_SERVER for filters */
};

/*
 * Starts a session on the accepted, non-blocking socket fd and sends
 * the greeting.  Returns 0 (the session now owns fd), or -1 when it
 * could not (the caller still owns fd and should refuse the client).
 */
int pop3_session_new(const struct pop3_env *env, int fd, const char *peer);

/*
 * Ends the session holding `holder` (a lock_holder() result)
 * without entering UPDATE: nothing is deleted.  Used when an
 * administrator deletes a logged-in user.
 */
void pop3_kick(void *holder);

/*
 * Goes on with the deletions of sessions whose client left during QUIT,
 * a slice each; true while some remain (the reactor must not sleep).
 */
bool pop3_run_orphans(void);

/*
 * A new pass of the loop: the sessions' heavy work (PASS_WORK_NS)
 * starts afresh.  Without it, no session does any more of that work.
 */
void pop3_pass_begin(void);

#endif
