/*
 * The POP3 engine: session lifecycle, the state table, and the loop that
 * frames input lines, dispatches them to the current state's command
 * table and turns handler outcomes into replies.  Handlers live in one
 * file per state (pop3_auth.c, pop3_trans.c).  No socket calls here.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lock.h"
#include "log.h"
#include "now.h"
#include "pop3_session.h"

static unsigned long next_id;

static unsigned pop3_read(void *ctx);
static unsigned pop3_write(void *ctx);

static const struct stm_state states[POP3_NSTATES] = {
	[POP3_AUTHORIZATION] = {
		.state = POP3_AUTHORIZATION,
		.on_read = pop3_read,
		.on_write = pop3_write,
	},
	[POP3_TRANSACTION] = {
		.state = POP3_TRANSACTION,
		.on_read = pop3_read,
		.on_write = pop3_write,
	},
	[POP3_UPDATE] = {
		.state = POP3_UPDATE,
		.on_arrival = pop3_update_enter,
		.on_write = pop3_write,
	},
};

/* Indexed by state; UPDATE reads no commands. */
static const struct cmd *const tables[POP3_NSTATES] = {
	[POP3_AUTHORIZATION] = pop3_auth_cmds,
	[POP3_TRANSACTION] = pop3_trans_cmds,
	[POP3_UPDATE] = NULL,
};

bool
pop3_reply(struct pop3_session *s, const char *fmt, ...)
{
	va_list ap;
	bool ok;

	s->answered = true;
	va_start(ap, fmt);
	ok = conn_vreply(&s->base.conn, fmt, ap);
	va_end(ap);
	return ok;
}

void
pop3_reply_tally(struct pop3_session *s, const char *lead)
{
	size_t n = maildir_live_count(s->md);

	(void)pop3_reply(s, "+OK %s%zu message%s (%llu octets)", lead, n,
	    n == 1 ? "" : "s", (unsigned long long)maildir_live_size(s->md));
}

void
pop3_maildir_warn(const struct pop3_session *s, const char *what,
    enum maildir_status st, int err)
{
	if (st == MAILDIR_IO)
		log_warn("pop3[%lu] user=%s %s: %s (%s)", s->id, s->user, what,
		    maildir_strerror(st), strerror(err));
	else
		log_warn("pop3[%lu] user=%s %s: %s", s->id, s->user, what,
		    maildir_strerror(st));
}

enum cmd_result
pop3_fail(struct pop3_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->errbuf, sizeof(s->errbuf), fmt, ap);
	va_end(ap);
	s->err = s->errbuf;
	return CMD_ERR;
}

enum cmd_result
pop3_stream(struct pop3_session *s, pop3_producer *p, bool big)
{
	conn_stream_begin(&s->base.conn, big);
	s->produce = p;
	return CMD_STREAM;
}

void
pop3_stream_done(struct pop3_session *s)
{
	s->produce = NULL;
	conn_stream_end(&s->base.conn);
}

/*
 * Heavy work goes in rounds: a session that had its slice in this round
 * waits until every other one that asked has had its own, whatever
 * order the passes visit them in.  A round ends with a pass in which no
 * one was turned away for the budget.
 */
static unsigned long work_round = 1;
static bool work_turned_away;
static int64_t work_spent_ns;	/* this pass's heavy work so far */

void
pop3_pass_begin(void)
{
	if (!work_turned_away)
		work_round++;
	work_turned_away = false;
	work_spent_ns = 0;
}

int64_t
pop3_work_start(struct pop3_session *s)
{
	if (s->work_round == work_round)
		return -1;
	if (work_spent_ns >= PASS_WORK_NS) {
		work_turned_away = true;
		return -1;
	}
	s->work_round = work_round;
	return now_ns(CLOCK_MONOTONIC);
}

void
pop3_work_done(int64_t start)
{
	int64_t end = now_ns(CLOCK_MONOTONIC);

	/* A clock that cannot be read still lets every pass do a slice. */
	work_spent_ns += start != 0 && end != 0 ? end - start : PASS_WORK_NS;
}

void
pop3_abort(struct pop3_session *s)
{
	pop3_trans_cleanup(s);
	s->produce = NULL;
	conn_close_soon(&s->base.conn, END_BROKEN);
}

/*
 * Counts a failed command; true when the session must end (Dovecot).
 * The server's own failures ([SYS/TEMP], [SYS/PERM]: a message file
 * that vanished) are not the client's: they neither count nor reset,
 * so a maildrop emptied under the session never costs its DELEs.
 */
static bool
bad_command(struct pop3_session *s, const char *why)
{
	if (strncmp(why, "[SYS/", 5) == 0)
		return false;
	return ++s->bad_cmds > MAX_BAD_CMDS;
}

/* Turns a handler's outcome into the reply and the next state. */
static unsigned
outcome(struct pop3_session *s, enum cmd_result r)
{
	const char *why = NULL;

	switch (r) {
	case CMD_OK:
		pop3_reply(s, "+OK");
		break;
	case CMD_ERR:
		why = s->err != NULL ? s->err : "command failed";
		break;
	case CMD_UNKNOWN:
		why = "unknown command";
		break;
	case CMD_BAD_STATE:
		why = "command not valid in this state";
		break;
	case CMD_BAD_ARGS:
		why = "wrong number of arguments";
		break;
	case CMD_CLOSE:
		conn_close_after_flush(&s->base.conn, END_QUIT);
		break;
	case CMD_NEXT:
		s->bad_cmds = 0;
		return s->next_state;
	case CMD_PENDING:
		/* Not a success yet: a failed login keeps the streak. */
		s->err = NULL;
		return stm_state(&s->base.stm);
	case CMD_REPLIED:
	case CMD_STREAM:
		break;
	}
	s->err = NULL;
	if (why == NULL) {
		s->bad_cmds = 0;
		return stm_state(&s->base.stm);
	}
	pop3_reply(s, "-ERR %s", why);
	if (bad_command(s, why)) {
		/*
		 * As Dovecot: the command still gets its own answer, then a
		 * line that says why the server closes.
		 */
		pop3_reply(s, "-ERR too many bad commands");
		conn_close_after_flush(&s->base.conn, END_LIMIT);
	}
	return stm_state(&s->base.stm);
}

void
pop3_complete(struct pop3_session *s, enum cmd_result r)
{
	stm_jump(&s->base.stm, outcome(s, r), s);
}

/* The state's read handler: one framed line, in s->base.line. */
static unsigned
pop3_read(void *ctx)
{
	struct pop3_session *s = ctx;
	bool sasl = s->sasl_wait;
	enum cmd_result r;

	s->answered = false;
	/* One line answers the "+ "; even a broken one ends the exchange. */
	if (sasl) {
		s->sasl_wait = false;
		conn_set_line_max(&s->base.conn, POP3_MAX_LINE);
	}
	switch (s->base.line_status) {
	case LINE_TOO_LONG:
		r = sasl ? pop3_sasl_response(s, NULL) :
		    pop3_fail(s, "line too long");
		break;
	case LINE_NUL:
		r = pop3_fail(s, "NUL byte in command");
		break;
	default:	/* LINE_OK: conn never hands on LINE_NONE */
		r = sasl ? pop3_sasl_response(s, s->base.line) :
		    proto_dispatch(tables, POP3_NSTATES,
		    stm_state(&s->base.stm), s, s->base.line);
		break;
	}
	return outcome(s, r);
}

static unsigned
pop3_write(void *ctx)
{
	struct pop3_session *s = ctx;

	s->next_state = stm_state(&s->base.stm);
	if (s->produce != NULL)
		s->produce(s);
	return s->next_state;
}

static void
on_timeout(struct conn *c)
{
	struct pop3_session *s = (struct pop3_session *)c;

	/* Mid-stream a goodbye line would corrupt the message: just go. */
	if (c->streaming) {
		conn_close_soon(c, END_TIMEOUT);
		return;
	}
	pop3_reply(s, "-ERR autologout: idle for too long");
	conn_close_after_flush(c, END_TIMEOUT);
}

/*
 * The logout line's reason is one of the spec's four; a session the
 * server ended for a cause of its own (a broken stream, too many
 * failures, DELETE_USER) is a "disconnect", and a line before says why.
 */
static const char *
logout_reason(const struct pop3_session *s, enum conn_end why)
{
	static const char *const causes[] = {
		[END_ERROR] = "a server error (out of memory)",
		[END_BROKEN] = "a message could not be sent whole",
		[END_LIMIT] = "too many failed logins or bad commands",
		[END_KICKED] = "user deleted by the administrator",
	};

	if ((size_t)why >= sizeof(causes) / sizeof(causes[0]) ||
	    causes[why] == NULL)
		return conn_end_name(why);
	log_info("pop3[%lu] %s user=%s closed by the server: %s", s->id,
	    s->base.conn.peer, s->log_user[0] ? s->log_user : "-",
	    causes[why]);
	return conn_end_name(END_DISCONNECT);
}

void
pop3_release_maildrop(struct pop3_session *s)
{
	maildir_close(s->md);
	s->md = NULL;
	if (s->locked)
		lock_release(s->user, s);
	s->locked = false;
}

/* The one place a session's resources go, once its conn is unregistered. */
static void
end_session(struct pop3_session *s)
{
	const struct conn *c = &s->base.conn;

	pop3_trans_cleanup(s);
	pop3_forget_login(s);
	/*
	 * Closing never starts an UPDATE (RFC 1939 section 6); one that
	 * QUIT started was finished before this.
	 */
	pop3_release_maildrop(s);
	log_info("pop3[%lu] %s user=%s logout retr=%u/%llu top=%u "
	    "dele=%u/%zu size=%llu in=%llu out=%llu reason=%s", s->id,
	    c->peer, s->log_user[0] ? s->log_user : "-", s->retr_count,
	    (unsigned long long)s->retr_bytes, s->top_count, s->dele_count,
	    s->msgs_at_login, (unsigned long long)s->size_at_login,
	    (unsigned long long)c->bytes_in,
	    (unsigned long long)c->bytes_out, s->end_reason);
	free(s);
}

/*
 * Sessions whose client went away while their QUIT was deleting: the
 * deletions go on a slice a pass (the maildrop stays locked), so one
 * client's 60,000 unlinks never stall the others.
 */
static struct pop3_session *orphans;

static void
on_destroy(struct conn *c, enum conn_end why)
{
	struct pop3_session *s = (struct pop3_session *)c;
	bool quitting = pop3_quit_running(s);

	/*
	 * Once UPDATE runs, the QUIT is carried out whatever ends the
	 * connection (at once by a stopping server, pop3_trans_cleanup;
	 * as an orphan otherwise): that session quit.
	 */
	s->end_reason = logout_reason(s, quitting ? END_QUIT : why);
	/*
	 * As Dovecot, the client learns why, unless a multi-line reply has
	 * begun: a line in it would read as part of the message or list.
	 */
	if (why == END_SHUTDOWN && !quitting &&
	    !(c->streaming && s->answered)) {
		pop3_reply(s, "-ERR [SYS/TEMP] server shutting down");
		conn_last_words(c);
	}
	if (why != END_SHUTDOWN && quitting) {
		s->next_orphan = orphans;
		orphans = s;
		return;
	}
	end_session(s);
}

bool
pop3_run_orphans(void)
{
	struct pop3_session **pp = &orphans;

	while (*pp != NULL) {
		struct pop3_session *s = *pp;

		if (pop3_quit_step(s)) {
			*pp = s->next_orphan;
			end_session(s);
		} else {
			pp = &s->next_orphan;
		}
	}
	return orphans != NULL;
}

static const struct conn_ops pop3_ops = {
	.on_line = session_on_line,
	.on_output = session_on_output,
	.on_timeout = on_timeout,
	.on_destroy = on_destroy,
};

int
pop3_session_new(const struct pop3_env *env, int fd, const char *peer)
{
	struct pop3_session *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return -1;
	s->env = env;
	s->id = ++next_id;
	s->msg_fd = -1;
	if (conn_init(&s->base.conn, fd, env->sel, &pop3_ops, peer,
	    (uint64_t)env->settings->idle_s * 1000, true) < 0) {
		free(s);
		return -1;
	}
	stm_init(&s->base.stm, states, POP3_NSTATES, POP3_AUTHORIZATION, s);
	log_info("pop3[%lu] %s user=- connect", s->id, peer);
	pop3_reply(s, "+OK " POP3D_NAME " ready");
	return 0;
}

void
pop3_kick(void *holder)
{
	struct pop3_session *s = holder;

	/* An orphan's conn is closing already: this leaves it alone. */
	if (s != NULL)
		conn_close_soon(&s->base.conn, END_KICKED);
}
