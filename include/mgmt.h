/*
 * The management service (docs/mgmt-protocol.md): statistics, live
 * settings and user administration for the administrator, over the same
 * conn, framer and dispatcher as POP3, with its own state tables
 * (AUTH_MGMT, ACTIVE_MGMT).
 */
#ifndef POP3D_MGMT_H
#define POP3D_MGMT_H

#include <stdbool.h>
#include <stdint.h>

#include "selector.h"
#include "settings.h"
#include "users.h"

/* What every MGMT session shares; owned by the server. */
struct mgmt_env {
	struct selector *sel;
	struct users *users;
	struct settings *settings;
	/* Applies settings->idle_s to every open POP3 session. */
	void (*apply_idle)(void);
	/*
	 * Pauses the POP3 service for `seconds` (MGMT TIMEOUT); false,
	 * and no pause, when there is no memory to time it.
	 */
	bool (*pause)(unsigned seconds);
};

/* Idle timeout of MGMT sessions themselves, milliseconds. */
#define MGMT_IDLE_MS	((uint64_t)600 * 1000)

/*
 * Sessions open at once, at most: unauthenticated ones, which may idle
 * for MGMT_IDLE_MS, must not take the descriptors POP3 needs.
 */
#define MGMT_MAX_SESSIONS	64

/* True when MGMT_MAX_SESSIONS are open: refuse the next one. */
bool mgmt_full(void);

/*
 * Starts a session on the accepted, non-blocking socket fd and greets.
 * Returns 0 (fd now owned by the session) or -1 (caller still owns fd).
 */
int mgmt_session_new(const struct mgmt_env *env, int fd, const char *peer);

/*
 * The POP3 pause has ended: every TIMEOUT waiting for it (each waits for
 * the end of the whole pause, which a later TIMEOUT may have extended)
 * gets its "+OK TIMEOUT COMPLETED", and its session goes on.
 */
void mgmt_pause_over(void);

#endif
