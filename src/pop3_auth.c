/*
 * AUTHORIZATION state: USER/PASS, AUTH PLAIN (RFC 5034), CAPA, QUIT.
 * A failed login is answered after AUTH_FAIL_DELAY_MS by a timer, with
 * the same text whether the user exists or not; after MAX_AUTH_FAILURES
 * the session ends.  Passwords are wiped as soon as they are checked
 * and never logged.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lock.h"
#include "log.h"
#include "pop3_session.h"
#include "users.h"
#include "verify.h"
#include "wipe.h"

/*
 * The failure text must never hold "lock", "wait" or "in-use": fetchmail
 * reads those as a busy mailbox and retries forever (clients.md).
 */
#define AUTH_FAILED "-ERR [AUTH] invalid user name or password"

/* Remembers the name a client gave (USER or AUTH), valid or not. */
static void
set_user(struct pop3_session *s, const char *name)
{
	log_sanitize(s->log_user, sizeof(s->log_user), name);
	s->have_user = true;
	if (users_valid_name(name))
		snprintf(s->user, sizeof(s->user), "%s", name);
	else
		s->user[0] = '\0';
}

static enum cmd_result
login_failed(struct pop3_session *s)
{
	s->auth_failures++;
	s->have_user = false;
	log_info("pop3[%lu] %s user=%s login-failed", s->id, s->base.conn.peer,
	    s->log_user[0] ? s->log_user : "-");
	conn_reply_later(&s->base.conn, AUTH_FAIL_DELAY_MS, AUTH_FAILED,
	    s->auth_failures >= MAX_AUTH_FAILURES);
	return CMD_PENDING;
}

/* The login cannot go on: the maildrop failed with st, just now. */
static void
maildrop_failed(struct pop3_session *s, enum maildir_status st)
{
	int err = errno, n;
	char what[PATH_MAX + 16];

	/* The folder, so that the admin can fix its owner or mode. */
	n = snprintf(what, sizeof(what), "maildrop %s/%s", s->env->mail_root,
	    s->user);
	if (n < 0 || (size_t)n >= sizeof(what))
		(void)snprintf(what, sizeof(what), "maildrop");
	pop3_maildir_warn(s, what, st, err);
	/* The access log's login outcome, with the address to find it by. */
	log_info("pop3[%lu] %s user=%s login-failed maildrop", s->id,
	    s->base.conn.peer, s->user);
	pop3_release_maildrop(s);
	s->have_user = false;
	pop3_reply(s, st == MAILDIR_TOOBIG ?
	    "-ERR [SYS/PERM] maildrop too large" :
	    "-ERR [SYS/TEMP] cannot open the maildrop");
}

/* What the login could not do with some files: the admin must know. */
static void
log_maildrop_notes(const struct pop3_session *s)
{
	const struct maildir_notes *n = maildir_notes(s->md);

	if (n->unmoved > 0)
		log_warn("pop3[%lu] user=%s %zu messages could not be moved "
		    "from new/ to cur/ (%s): served where they are", s->id,
		    s->user, n->unmoved, strerror(n->unmoved_errno));
	if (n->unreadable > 0)
		log_warn("pop3[%lu] user=%s %zu message files could not be "
		    "read (%s): left out of the list", s->id, s->user,
		    n->unreadable, strerror(n->unreadable_errno));
}

/* Lists and sizes the maildrop a slice per call, then TRANSACTION. */
static void
produce_scan(struct pop3_session *s)
{
	bool done = false;
	int64_t start = pop3_work_start(s);
	enum maildir_status st;

	if (start < 0)
		return;
	st = maildir_scan_step(s->md, SCAN_BYTES_PER_PASS, &done);
	pop3_work_done(start);
	if (st != MAILDIR_OK) {
		maildrop_failed(s, st);
		pop3_stream_done(s);
		return;
	}
	if (!done)
		return;
	s->msgs_at_login = maildir_live_count(s->md);
	s->size_at_login = maildir_live_size(s->md);
	log_maildrop_notes(s);
	log_info("pop3[%lu] %s user=%s login", s->id, s->base.conn.peer,
	    s->user);
	pop3_reply_tally(s, "maildrop has ");
	s->next_state = POP3_TRANSACTION;
	pop3_stream_done(s);
}

/* Locks and opens the maildrop of a user whose password checked out. */
static enum cmd_result
open_maildrop(struct pop3_session *s)
{
	enum maildir_status st;

	if (!lock_take(s->user, s)) {
		s->have_user = false;
		log_info("pop3[%lu] %s user=%s login-failed in-use", s->id,
		    s->base.conn.peer, s->user);
		return pop3_fail(s, "[IN-USE] maildrop is locked by another "
		    "session");
	}
	s->locked = true;
	st = maildir_open(s->env->mail_root, s->user, &s->md);
	if (st != MAILDIR_OK) {
		maildrop_failed(s, st);
		return CMD_REPLIED;
	}
	return pop3_stream(s, produce_scan, false);
}

/* verify_run() has the answer: on to the maildrop, or a failed login. */
static void
login_checked(void *owner, bool ok)
{
	struct pop3_session *s = owner;

	s->pending_login = NULL;
	conn_release(&s->base.conn);
	pop3_complete(s, ok ? open_maildrop(s) : login_failed(s));
}

/*
 * Queues the password check (verify.h): a storm of logins never stalls
 * the sessions already logged in.  The client's copy of the password
 * is wiped here.
 */
static enum cmd_result
try_login(struct pop3_session *s, char *password)
{
	s->pending_login = verify_submit(s->env->users, s->user, password,
	    login_checked, s, false);
	if (s->pending_login == NULL)
		return pop3_fail(s, "[SYS/TEMP] out of memory");
	conn_hold(&s->base.conn);
	return CMD_PENDING;
}

void
pop3_forget_login(struct pop3_session *s)
{
	verify_cancel(s->pending_login);
	s->pending_login = NULL;
}

static enum cmd_result
cmd_user(void *sp, int argc, char **argv)
{
	struct pop3_session *s = sp;

	(void)argc;
	set_user(s, argv[1]);
	/* Same answer for every name: USER reveals nothing. */
	pop3_reply(s, "+OK send PASS");
	return CMD_REPLIED;
}

static enum cmd_result
cmd_pass(void *sp, int argc, char **argv)
{
	struct pop3_session *s = sp;
	char none[1] = "";
	char *password = argc > 1 ? argv[1] : none;

	/* Out of order, not bad credentials: no [AUTH] (Dovecot). */
	if (!s->have_user)
		return pop3_fail(s, "USER first");
	/* An empty password is a wrong one: delayed and counted. */
	return try_login(s, password);
}

/* RFC 4616: [authzid] NUL authcid NUL passwd, the n octets in buf. */
static enum cmd_result
plain_credentials(struct pop3_session *s, char *buf, size_t n)
{
	char *end = buf + n, *authzid = buf, *authcid, *password;

	buf[n] = '\0';
	authcid = memchr(authzid, '\0', n);
	password = authcid != NULL && authcid + 1 < end ?
	    memchr(authcid + 1, '\0', (size_t)(end - authcid - 1)) : NULL;
	if (password == NULL || memchr(password + 1, '\0',
	    (size_t)(end - password - 1)) != NULL) {
		/* Credentials we cannot read are wrong credentials. */
		set_user(s, "");
		return login_failed(s);
	}
	authcid++;
	password++;
	set_user(s, authcid);
	/* Acting as another user is not offered: authzid must be us. */
	if (*authzid != '\0' && strcmp(authzid, authcid) != 0)
		s->user[0] = '\0';
	return try_login(s, password);
}

/*
 * The decoded credentials are wiped whatever came of them, a decoding
 * cut short by bad base64 too (its first quads are already out).
 */
static enum cmd_result
plain_login(struct pop3_session *s, const char *b64)
{
	unsigned char buf[SASL_MAX_LINE];
	long n = proto_base64_decode(b64, buf, sizeof(buf) - 1);
	enum cmd_result r = n < 0 ? pop3_fail(s, "invalid base64") :
	    plain_credentials(s, (char *)buf, (size_t)n);

	wipe(buf, sizeof(buf));
	return r;
}

/*
 * RFC 5034 section 4 does not let a response fail for its length (line
 * NULL): it fails as wrong credentials, delayed and counted, as
 * Dovecot answers it.  The response, base64 credentials, is wiped
 * after use, as a PASS line is (CMD_SECRET).
 */
enum cmd_result
pop3_sasl_response(struct pop3_session *s, char *line)
{
	enum cmd_result r;

	if (line == NULL) {
		set_user(s, "");
		return login_failed(s);
	}
	if (strcmp(line, "*") == 0)
		return pop3_fail(s, "authentication cancelled");
	r = plain_login(s, line);
	wipe(line, strlen(line));
	return r;
}

static enum cmd_result
cmd_auth(void *sp, int argc, char **argv)
{
	struct pop3_session *s = sp;

	if (argc == 1) {
		pop3_reply(s, "+OK supported mechanisms follow");
		pop3_reply(s, "PLAIN");
		pop3_reply(s, ".");
		return CMD_REPLIED;
	}
	if (strcasecmp(argv[1], "PLAIN") != 0)
		return pop3_fail(s, "unsupported authentication mechanism");
	if (argc == 3)	/* RFC 5034: "=" is an empty initial response */
		return plain_login(s, strcmp(argv[2], "=") == 0 ? "" : argv[2]);
	s->sasl_wait = true;
	conn_set_line_max(&s->base.conn, SASL_MAX_LINE);
	pop3_reply(s, "+ ");
	return CMD_REPLIED;
}

enum cmd_result
pop3_cmd_capa(void *sp, int argc, char **argv)
{
	static const char *const caps[] = {
		"+OK capability list follows", "USER", "TOP", "UIDL",
		"PIPELINING", "RESP-CODES", "AUTH-RESP-CODE", "SASL PLAIN",
		"EXPIRE NEVER",
		/* NOLINTNEXTLINE(bugprone-suspicious-missing-comma) */
		"IMPLEMENTATION " POP3D_NAME "-" POP3D_VERSION,
		".",
	};
	struct pop3_session *s = sp;

	(void)argc;
	(void)argv;
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++)
		pop3_reply(s, "%s", caps[i]);
	return CMD_REPLIED;
}

static enum cmd_result
cmd_quit(void *sp, int argc, char **argv)
{
	struct pop3_session *s = sp;

	(void)argc;
	(void)argv;
	pop3_reply(s, "+OK " POP3D_NAME " signing off");
	return CMD_CLOSE;
}

const struct cmd pop3_auth_cmds[] = {
	{ "USER", cmd_user, 1, 1, 0, NULL },
	{ "PASS", cmd_pass, 0, 1, CMD_REST | CMD_SECRET, NULL },
	{ "AUTH", cmd_auth, 0, 2, CMD_SECRET, NULL },
	{ "CAPA", pop3_cmd_capa, 0, 0, 0, NULL },
	{ "QUIT", cmd_quit, 0, 0, 0, NULL },
	{ NULL, NULL, 0, 0, 0, NULL },
};
