/*
 * AUTHORIZATION state: USER/PASS, AUTH PLAIN (RFC 5034), CAPA, QUIT.
 * A failed login is answered after AUTH_FAIL_DELAY_MS by a timer, with
 * the same text whether the user exists or not; after MAX_AUTH_FAILURES
 * the session ends.  Passwords are wiped as soon as they are checked
 * and never logged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "pop3_session.h"
#include "users.h"

/*
 * The failure text must never hold "lock", "wait" or "in-use": fetchmail
 * reads those as a busy mailbox and retries forever (clients.md).
 */
#define AUTH_FAILED "-ERR [AUTH] invalid user name or password"

static void
wipe(void *p, size_t n)
{
	volatile unsigned char *v = p;

	while (n-- > 0)
		*v++ = 0;
}

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
	if (!conn_reply_later(&s->base.conn, AUTH_FAIL_DELAY_MS, AUTH_FAILED,
	    s->auth_failures >= MAX_AUTH_FAILURES)) {
		pop3_reply(s, AUTH_FAILED);
		return CMD_REPLIED;
	}
	return CMD_PENDING;
}

/* Sizes the maildrop a slice per call, then enters TRANSACTION. */
static void
produce_scan(struct pop3_session *s)
{
	bool done = false;
	enum maildir_status st = maildir_scan_step(s->md, SCAN_BYTES_PER_PASS,
	    &done);

	if (st != MAILDIR_OK) {
		log_warn("pop3[%lu] user=%s maildrop scan: %s", s->id, s->user,
		    maildir_strerror(st));
		maildir_close(s->md);
		s->md = NULL;
		users_unlock(s->env->users, s->user, s);
		s->locked = false;
		pop3_reply(s, "-ERR [SYS/TEMP] cannot read the maildrop");
		pop3_stream_done(s);
		return;
	}
	if (!done)
		return;
	s->msgs_at_login = maildir_live_count(s->md);
	s->size_at_login = maildir_live_size(s->md);
	log_info("pop3[%lu] %s user=%s login", s->id, s->base.conn.peer, s->user);
	pop3_reply(s, "+OK maildrop has %zu messages (%llu octets)",
	    s->msgs_at_login, (unsigned long long)s->size_at_login);
	s->next_state = POP3_TRANSACTION;
	pop3_stream_done(s);
}

/* Locks and opens the maildrop of a user whose password checked out. */
static enum cmd_result
open_maildrop(struct pop3_session *s)
{
	enum maildir_status st;

	if (!users_lock(s->env->users, s->user, s)) {
		s->have_user = false;
		log_info("pop3[%lu] %s user=%s login-failed in-use", s->id,
		    s->base.conn.peer, s->user);
		return pop3_fail(s, "[IN-USE] maildrop is locked by another "
		    "session");
	}
	s->locked = true;
	st = maildir_open(s->env->mail_root, s->user, &s->md);
	if (st != MAILDIR_OK) {
		users_unlock(s->env->users, s->user, s);
		s->locked = false;
		s->have_user = false;
		log_warn("pop3[%lu] user=%s maildrop: %s", s->id, s->user,
		    maildir_strerror(st));
		return pop3_fail(s, st == MAILDIR_TOOBIG ?
		    "[SYS/PERM] maildrop too large" :
		    "[SYS/TEMP] cannot open the maildrop");
	}
	return pop3_stream(s, produce_scan, false);
}

/*
 * Logins waiting for their password check and maildrop.  Each reactor
 * pass finishes a bounded share of them (pop3_verify_next), so a storm
 * of logins, a crypt(3) costing milliseconds of CPU and a maildrop
 * open a tenth of one, never stalls the sessions already logged in.
 */
struct pending_login {
	struct pending_login *next;
	struct pop3_session *s;		/* NULL once the session is gone */
	char password[PASSWORD_MAX + 1];
};

static struct pending_login *queue_head, **queue_tail = &queue_head;

/*
 * Queues the credentials for pop3_verify_next.  The client's copy of
 * the password is wiped here.
 */
static enum cmd_result
try_login(struct pop3_session *s, char *password)
{
	struct pending_login *p;

	/* Longer than any stored password can be: wrong, and not copied. */
	if (strlen(password) > PASSWORD_MAX) {
		wipe(password, strlen(password));
		return login_failed(s);
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		wipe(password, strlen(password));
		return pop3_fail(s, "[SYS/TEMP] out of memory");
	}
	p->s = s;
	snprintf(p->password, sizeof(p->password), "%s", password);
	wipe(password, strlen(password));
	*queue_tail = p;
	queue_tail = &p->next;
	s->pending_login = p;
	conn_hold(&s->base.conn);
	return CMD_PENDING;
}

/* Takes the first queued login off the queue. */
static struct pending_login *
dequeue(void)
{
	struct pending_login *p = queue_head;

	queue_head = p->next;
	if (queue_head == NULL)
		queue_tail = &queue_head;
	return p;
}

void
pop3_verify_next(void)
{
	int budget = LOGINS_PER_PASS;

	while (queue_head != NULL && budget > 0) {
		struct pop3_session *s = queue_head->s;
		struct pending_login *p;
		bool cached, ok;

		cached = s != NULL && s->user[0] != '\0' &&
		    users_verify_cached(s->env->users, s->user,
		    queue_head->password);
		if (s != NULL && !cached && budget < LOGINS_PER_PASS)
			break;	/* a crypt(3) waits for a pass of its own */
		p = dequeue();
		budget -= s == NULL || cached ? 1 : LOGINS_PER_PASS;
		if (s != NULL) {
			ok = cached || (users_verify(s->env->users, s->user,
			    p->password) && s->user[0] != '\0');
			s->pending_login = NULL;
			conn_release(&s->base.conn);
			pop3_complete(s, ok ? open_maildrop(s) :
			    login_failed(s));
		}
		wipe(p->password, sizeof(p->password));
		free(p);
	}
}

bool
pop3_logins_waiting(void)
{
	return queue_head != NULL;
}

void
pop3_forget_login(struct pop3_session *s)
{
	if (s->pending_login != NULL)
		s->pending_login->s = NULL;
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

	(void)argc;
	if (!s->have_user) {
		wipe(argv[1], strlen(argv[1]));
		return pop3_fail(s, "[AUTH] USER first");
	}
	return try_login(s, argv[1]);
}

/* RFC 4616: [authzid] NUL authcid NUL passwd. */
static enum cmd_result
plain_login(struct pop3_session *s, const char *b64)
{
	unsigned char buf[POP3_MAX_LINE];
	long n = proto_base64_decode(b64, buf, sizeof(buf) - 1);
	char *authzid, *authcid, *password, *end;
	enum cmd_result r;

	if (n < 0)
		return pop3_fail(s, "invalid base64");
	buf[n] = '\0';
	end = (char *)buf + n;
	authzid = (char *)buf;
	authcid = memchr(authzid, '\0', (size_t)n);
	password = authcid != NULL && authcid + 1 < end ?
	    memchr(authcid + 1, '\0', (size_t)(end - authcid - 1)) : NULL;
	if (password == NULL || memchr(password + 1, '\0',
	    (size_t)(end - password - 1)) != NULL) {
		wipe(buf, sizeof(buf));
		return pop3_fail(s, "malformed PLAIN response");
	}
	authcid++;
	password++;
	set_user(s, authcid);
	/* Acting as another user is not offered: authzid must be us. */
	if (*authzid != '\0' && strcmp(authzid, authcid) != 0)
		s->user[0] = '\0';
	r = try_login(s, password);
	wipe(buf, sizeof(buf));
	return r;
}

enum cmd_result pop3_sasl_response(struct pop3_session *s, char *line);

enum cmd_result
pop3_sasl_response(struct pop3_session *s, char *line)
{
	s->sasl_wait = false;
	if (strcmp(line, "*") == 0)
		return pop3_fail(s, "authentication cancelled");
	return plain_login(s, line);
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
	{ "PASS", cmd_pass, 1, 1, CMD_REST, NULL },
	{ "AUTH", cmd_auth, 0, 2, 0, NULL },
	{ "CAPA", pop3_cmd_capa, 0, 0, 0, NULL },
	{ "QUIT", cmd_quit, 0, 0, 0, NULL },
	{ NULL, NULL, 0, 0, 0, NULL },
};
