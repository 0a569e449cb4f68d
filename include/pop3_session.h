/*
 * POP3 session internals shared by the engine (pop3.c) and the state
 * files (pop3_auth.c, pop3_trans.c).  Not for other modules.
 */
#ifndef POP3D_POP3_SESSION_H
#define POP3D_POP3_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "conn.h"
#include "dotstuff.h"
#include "filter.h"
#include "maildir.h"
#include "pop3.h"
#include "proto.h"
#include "session.h"
#include "stm.h"
#include "verify.h"

enum pop3_state {
	POP3_AUTHORIZATION,
	POP3_TRANSACTION,
	POP3_UPDATE,
	POP3_NSTATES
};

struct pop3_session;

/* A multi-line reply producer: writes into out while it has room. */
typedef void pop3_producer(struct pop3_session *s);

struct pop3_session {
	struct session base;		/* first: conn, state machine, line */
	const struct pop3_env *env;
	unsigned long id;
	enum pop3_state next_state;	/* set by CMD_NEXT handlers */
	const char *err;		/* reason text for CMD_ERR */
	char errbuf[80];
	unsigned bad_cmds;
	unsigned long work_round;	/* the round of its last heavy slice */
	unsigned auth_failures;
	char user[USER_NAME_MAX + 1];	/* USER / AUTH name, if valid */
	char log_user[USER_NAME_MAX + 1];	/* sanitised, for the log */
	bool have_user;
	bool sasl_wait;			/* AUTH PLAIN awaits its response */
	bool locked;
	bool answered;			/* the command's reply has begun */
	struct verify *pending_login;	/* queued password check */
	struct maildrop *md;

	/* The running producer and its state (one at a time). */
	pop3_producer *produce;
	int msg_fd;
	uint64_t msg_left;		/* file bytes still to encode */
	uint64_t msg_off;		/* where they start in the file */
	struct dotstuff ds;
	size_t cursor;			/* LIST/UIDL: next message */
	struct filter *filter;		/* RETR through -t COMMAND */
	bool filter_replied;		/* its +OK is out */

	/* For the end-of-session log line. */
	bool sending_retr;		/* the stream is a RETR (else TOP) */
	uint64_t sending_size;		/* its message's LIST size */
	unsigned retr_count, top_count, dele_count;
	uint64_t retr_bytes, size_at_login;
	size_t msgs_at_login;
	const char *end_reason;		/* the logout line's reason= */
	struct pop3_session *next_orphan;	/* pop3_run_orphans() */
};

/* Per-state command tables (in their state's file). */
extern const struct cmd pop3_auth_cmds[];
extern const struct cmd pop3_trans_cmds[];

/* The engine's services to the handlers (pop3.c). */
/* Queues one reply line (CRLF added); false when `out` has no room. */
bool pop3_reply(struct pop3_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/*
 * Replies "+OK <lead>N messages (M octets)" ("1 message") for the
 * messages not deleted.
 */
void pop3_reply_tally(struct pop3_session *s, const char *lead);
/* Logs that `what` (the maildrop, a message) failed with st; err: errno. */
void pop3_maildir_warn(const struct pop3_session *s, const char *what,
    enum maildir_status st, int err);
/* Sets s->err to a formatted reason and returns CMD_ERR. */
enum cmd_result pop3_fail(struct pop3_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Starts producer p; big asks for the large output buffer. */
enum cmd_result pop3_stream(struct pop3_session *s, pop3_producer *p,
    bool big);
/* Ends the running producer (it has written its last line). */
void pop3_stream_done(struct pop3_session *s);
/* Answers a command that completed later (CMD_PENDING), as dispatch would. */
void pop3_complete(struct pop3_session *s, enum cmd_result r);
/* Drops a session's queued password check (the session is ending). */
void pop3_forget_login(struct pop3_session *s);
/* Closes the maildrop and releases its lock (failed login, end). */
void pop3_release_maildrop(struct pop3_session *s);
/* Ends the session now, for a producer that cannot go on. */
void pop3_abort(struct pop3_session *s);
/*
 * A slice of heavy work (a maildrop's listing, a QUIT's unlinks) about
 * to start: its start time, or -1 when the session must wait for a
 * later pass (this pass's budget is spent, or its turn in this round
 * was taken).  pop3_work_done() charges the slice to the pass.
 */
int64_t pop3_work_start(struct pop3_session *s);
void pop3_work_done(int64_t start);

/* Shared handlers, rows in both tables. */
enum cmd_result pop3_cmd_capa(void *sp, int argc, char **argv);

/*
 * Handles the line answering an AUTH continuation (pop3_auth.c): line
 * is NULL when the client's was longer than SASL_MAX_LINE (a failed
 * login); "*" cancels.
 */
enum cmd_result pop3_sasl_response(struct pop3_session *s, char *line);

/*
 * Releases what a RETR or QUIT holds (message fd, filter) when it ends
 * or the session does; finishes a QUIT's deletions when the server
 * stops (pop3_trans.c).
 */
void pop3_trans_cleanup(struct pop3_session *s);
/* The UPDATE state's on_arrival hook: starts QUIT's deletions. */
void pop3_update_enter(unsigned state, void *ctx);
/* True while QUIT's deletions are under way. */
bool pop3_quit_running(const struct pop3_session *s);
/*
 * One slice of the deletions of a QUIT whose client is gone; true once
 * all are done (counted and logged; nothing is answered).
 */
bool pop3_quit_step(struct pop3_session *s);

#endif
