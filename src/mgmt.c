/*
 * The management protocol (docs/mgmt-protocol.md): AUTH_MGMT and
 * ACTIVE_MGMT command tables over the same conn line reader and
 * dispatcher as POP3.  Figures come from stats, settings and the user
 * store; every change is saved to the users/settings file before the
 * +OK, and undone in memory when the save fails.  No socket calls here.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "filter.h"
#include "lock.h"
#include "log.h"
#include "mgmt.h"
#include "pop3.h"
#include "proto.h"
#include "session.h"
#include "stats.h"
#include "stm.h"
#include "verify.h"

#define ADMIN_NAME	"admin"

enum mgmt_state { MGMT_AUTH, MGMT_ACTIVE, MGMT_NSTATES };

struct mgmt_session {
	struct session base;		/* first: conn, state machine, line */
	const struct mgmt_env *env;
	unsigned long id;
	enum mgmt_state next_state;
	const char *err;		/* reason for CMD_ERR */
	bool have_user;
	bool named_other;		/* a non-admin USER is logged */
	unsigned failures;
	char listed[USER_NAME_MAX + 1];	/* USERS: the last name sent */
	bool awaiting_pause;		/* TIMEOUT sent, the pause not over */
	struct verify *pending_login;	/* PASS being checked */
	char *undo;			/* the store before this command */
};

static unsigned long next_id;
static size_t live_sessions;

static bool
reply(struct mgmt_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static bool
reply(struct mgmt_session *s, const char *fmt, ...)
{
	va_list ap;
	bool ok;

	va_start(ap, fmt);
	ok = conn_vreply(&s->base.conn, fmt, ap);
	va_end(ap);
	return ok;
}

/* A body line of a multi-line reply, byte-stuffed like POP3. */
static bool
body(struct mgmt_session *s, const char *text)
{
	return reply(s, "%s%s", text[0] == '.' ? "." : "", text);
}

static enum cmd_result
fail(struct mgmt_session *s, const char *reason)
{
	s->err = reason;
	return CMD_ERR;
}

/*
 * A command about to change the store keeps a copy first, so that a
 * failed save can be undone in memory without any I/O (even when no
 * descriptor is left to reread the file).
 */
static bool
begin(struct mgmt_session *s)
{
	free(s->undo);
	s->undo = users_snapshot(s->env->users);
	if (s->undo == NULL)
		s->err = "[SYS/TEMP] OUT OF MEMORY";
	return s->undo != NULL;
}

/* Persists the store, or undoes the change in memory and says why. */
static bool
save(struct mgmt_session *s)
{
	enum users_status st = users_save(s->env->users);
	int err = errno;

	if (st == USERS_OK)
		return true;
	/* The file was replaced: answering -ERR would lie about the state. */
	if (st == USERS_UNSYNCED) {
		log_err("mgmt[%lu] users file %s: %s", s->id,
		    users_strerror(st), strerror(err));
		return true;
	}
	log_err("mgmt[%lu] cannot save the users file: %s", s->id,
	    strerror(err));
	if (s->undo == NULL ||
	    users_restore(s->env->users, s->undo) != USERS_OK)
		log_err("mgmt[%lu] cannot undo the change in memory", s->id);
	s->err = "[SYS/TEMP] CANNOT SAVE THE USERS FILE";
	return false;
}

/* Parses a setting's value: digits only, within [min, max]. */
static bool
setting_value(const char *arg, unsigned long min, unsigned long max,
    unsigned long *out)
{
	uint64_t v;

	if (!proto_parse_uint(arg, max, &v) || v < min)
		return false;
	*out = (unsigned long)v;
	return true;
}

/* AUTH_MGMT */

static enum cmd_result
cmd_user(void *sp, int argc, char **argv)
{
	struct mgmt_session *s = sp;

	(void)argc;
	s->have_user = strcmp(argv[1], ADMIN_NAME) == 0;
	if (!s->have_user) {
		char name[USER_NAME_MAX + 1];

		/*
		 * A guessed administrator name is an attack worth seeing,
		 * once a session: USER costs no delay, so a line for each
		 * would let one client fill the disk.
		 */
		if (!s->named_other)
			log_info("mgmt[%lu] %s user=%s login-failed not-admin",
			    s->id, s->base.conn.peer, log_sanitize(name,
			    sizeof(name), argv[1]));
		s->named_other = true;
		return fail(s, "NOT AN ADMINISTRATOR");
	}
	reply(s, "+OK USER");
	return CMD_REPLIED;
}

/* A failed PASS: answered after the delay; the third one ends the session. */
static enum cmd_result
login_failed(struct mgmt_session *s)
{
	s->failures++;
	log_info("mgmt[%lu] %s login-failed", s->id, s->base.conn.peer);
	conn_reply_later(&s->base.conn, AUTH_FAIL_DELAY_MS,
	    "-ERR WRONG PASSWORD", s->failures >= MAX_AUTH_FAILURES);
	return CMD_PENDING;
}

static void complete(struct mgmt_session *s, enum cmd_result r);

/* verify_run() has the answer to the PASS. */
static void
login_checked(void *owner, bool ok)
{
	struct mgmt_session *s = owner;

	s->pending_login = NULL;
	conn_release(&s->base.conn);
	if (!ok) {
		complete(s, login_failed(s));
		return;
	}
	log_info("mgmt[%lu] %s user=admin login", s->id, s->base.conn.peer);
	reply(s, "+OK PASS");
	s->next_state = MGMT_ACTIVE;
	complete(s, CMD_NEXT);
}

/* The password goes through the same queue as POP3 logins (verify.h). */
static enum cmd_result
cmd_pass(void *sp, int argc, char **argv)
{
	struct mgmt_session *s = sp;
	bool have_user = s->have_user;

	(void)argc;
	s->have_user = false;
	if (!have_user)
		return login_failed(s);
	s->pending_login = verify_submit(s->env->users, ADMIN_NAME, argv[1],
	    login_checked, s, true);
	if (s->pending_login == NULL)
		return fail(s, "[SYS/TEMP] OUT OF MEMORY");
	conn_hold(&s->base.conn);
	return CMD_PENDING;
}

static enum cmd_result
cmd_quit(void *sp, int argc, char **argv)
{
	struct mgmt_session *s = sp;

	(void)argc;
	(void)argv;
	reply(s, "+OK GOODBYE");
	return CMD_CLOSE;
}

/* ACTIVE_MGMT: figures */

static enum cmd_result
cmd_noop(void *sp, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	reply(sp, "+OK NOOP");
	return CMD_REPLIED;
}

/* Multi-line reply with one "KEY: value" body line. */
static enum cmd_result
figure(struct mgmt_session *s, const char *keyword, const char *key,
    unsigned long long value)
{
	reply(s, "+OK %s", keyword);
	reply(s, "%s: %llu", key, value);
	reply(s, ".");
	return CMD_REPLIED;
}

static enum cmd_result
cmd_historic(void *sp, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return figure(sp, "HISTORIC_CONNEC", "HISTORIC CONNECTIONS",
	    (unsigned long long)stats_get()->historic);
}

static enum cmd_result
cmd_live(void *sp, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return figure(sp, "LIVE_CONNEC", "LIVE CONNECTIONS",
	    (unsigned long long)stats_get()->live);
}

static enum cmd_result
cmd_bytes(void *sp, int argc, char **argv)
{
	struct mgmt_session *s = sp;
	const struct stats *st = stats_get();

	(void)argc;
	(void)argv;
	reply(s, "+OK BYTES_TRANS");
	reply(s, "BYTES SENT: %llu", (unsigned long long)st->bytes_out);
	reply(s, "BYTES RECEIVED: %llu", (unsigned long long)st->bytes_in);
	reply(s, ".");
	return CMD_REPLIED;
}

static enum cmd_result
cmd_status(void *sp, int argc, char **argv)
{
	struct mgmt_session *s = sp;
	const struct stats *st = stats_get();
	const struct settings *set = s->env->settings;

	(void)argc;
	(void)argv;
	reply(s, "+OK STATUS");
	reply(s, "BYTES SENT: %llu", (unsigned long long)st->bytes_out);
	reply(s, "BYTES RECEIVED: %llu", (unsigned long long)st->bytes_in);
	reply(s, "LIVE CONNECTIONS: %llu", (unsigned long long)st->live);
	reply(s, "HISTORIC CONNECTIONS: %llu",
	    (unsigned long long)st->historic);
	reply(s, "TOTAL USERS: %zu", users_count(s->env->users));
	reply(s, "MAX USERS: %zu", users_max(s->env->users));
	reply(s, "MAX CONNECTIONS: %zu", set->max_conn);
	reply(s, "IDLE TIMEOUT: %u", set->idle_s);
	reply(s, "UPTIME: %llu", (unsigned long long)stats_uptime());
	reply(s, ".");
	return CMD_REPLIED;
}

/*
 * USERS can list thousands of names: a producer, one line at a time.
 * It goes on after the last name it sent, not at an index: another
 * session's ADD_USER or DELETE_USER between two passes moves the
 * indexes, and must not make the listing skip or repeat a name.
 */
static void
produce_users(struct mgmt_session *s)
{
	struct users *u = s->env->users;
	size_t i = users_index_after(u, s->listed);
	const char *name;

	for (; (name = users_name_at(u, i)) != NULL; i++) {
		if (conn_out_room(&s->base.conn) < USER_NAME_MAX + 8)
			return;
		body(s, name);
		(void)snprintf(s->listed, sizeof(s->listed), "%s", name);
	}
	if (reply(s, "."))
		conn_stream_end(&s->base.conn);
}

static enum cmd_result
cmd_users(void *sp, int argc, char **argv)
{
	struct mgmt_session *s = sp;

	(void)argc;
	(void)argv;
	conn_stream_begin(&s->base.conn,
	    users_count(s->env->users) > SMALL_LISTING);
	reply(s, "+OK USERS");
	reply(s, "USER COUNT: %zu", users_count(s->env->users));
	reply(s, "USER LIST:");
	s->listed[0] = '\0';
	return CMD_STREAM;
}

/* ACTIVE_MGMT: settings */

static enum cmd_result
cmd_max_users(void *sp, int argc, char **argv)
{
	struct mgmt_session *s = sp;
	unsigned long n;

	(void)argc;
	if (!setting_value(argv[1], 1, SETTING_MAX_USERS_MAX, &n) ||
	    n < users_count(s->env->users))
		return fail(s, "INVALID MAX USERS");
	if (!begin(s) || users_set_setting(s->env->users, SETTING_MAX_USERS,
	    n) != USERS_OK || !save(s))
		return CMD_ERR;
	log_info("mgmt[%lu] max users now %lu", s->id, n);
	reply(s, "+OK MAX_USERS");
	reply(s, "MAX USERS CHANGED SUCCESSFULLY");
	reply(s, ".");
	return CMD_REPLIED;
}

static enum cmd_result
cmd_max_connec(void *sp, int argc, char **argv)
{
	struct mgmt_session *s = sp;
	unsigned long n;

	(void)argc;
	if (!setting_value(argv[1], 1, s->env->settings->conn_ceiling, &n))
		return fail(s, "INVALID MAX CONNECTIONS");
	if (!begin(s) || users_set_setting(s->env->users, SETTING_MAX_CONN,
	    n) != USERS_OK || !save(s))
		return CMD_ERR;
	/* Takes effect on the next accept; open sessions stay. */
	s->env->settings->max_conn = n;
	log_info("mgmt[%lu] max connections now %lu", s->id, n);
	reply(s, "+OK MAX_CONNEC CHANGED");
	return CMD_REPLIED;
}

static enum cmd_result
cmd_idle_timeout(void *sp, int argc, char **argv)
{
	struct mgmt_session *s = sp;
	unsigned long n;

	(void)argc;
	if (!setting_value(argv[1], SETTING_IDLE_MIN, SETTING_IDLE_MAX,
	    &n))
		return fail(s, "INVALID IDLE TIMEOUT");
	if (!begin(s) || users_set_setting(s->env->users, SETTING_IDLE, n) !=
	    USERS_OK || !save(s))
		return CMD_ERR;
	s->env->settings->idle_s = (unsigned)n;
	s->env->apply_idle();
	log_info("mgmt[%lu] idle timeout now %lus", s->id, n);
	reply(s, "+OK IDLE_TIMEOUT CHANGED");
	return CMD_REPLIED;
}

static enum cmd_result
cmd_timeout(void *sp, int argc, char **argv)
{
	struct mgmt_session *s = sp;
	unsigned long n;

	(void)argc;
	if (!setting_value(argv[1], MGMT_PAUSE_MIN, MGMT_PAUSE_MAX, &n))
		return fail(s, "INVALID TIMEOUT");
	if (!s->env->pause((unsigned)n))
		return fail(s, "[SYS/TEMP] OUT OF MEMORY");
	log_info("mgmt[%lu] POP3 service paused for %lus", s->id, n);
	/* Answered by mgmt_pause_over(), when POP3 really resumes. */
	s->awaiting_pause = true;
	conn_hold(&s->base.conn);
	return CMD_PENDING;
}

/*
 * FILTER shows the RETR filter, FILTER <command> sets it, FILTER -
 * removes it.  The body always shows the filter now in force.
 */
static enum cmd_result
cmd_filter(void *sp, int argc, char **argv)
{
	struct mgmt_session *s = sp;
	struct settings *set = s->env->settings;
	char none[1] = "";
	/*
	 * Blanks around the command are no part of it (a blank rest is no
	 * command): "FILTER - " typed by hand must remove the filter, not
	 * install "- ", which fails every RETR.
	 */
	char *arg = argc == 2 ? argv[1] + strspn(argv[1], " \t") : none;
	size_t len = strlen(arg);
	const char *want;

	while (len > 0 && (arg[len - 1] == ' ' || arg[len - 1] == '\t'))
		arg[--len] = '\0';
	want = len > 0 && strcmp(arg, "-") != 0 ? arg : NULL;

	if (*arg != '\0') {
		char *copy = want != NULL ? strdup(want) : NULL;

		if (!begin(s)) {
			free(copy);
			return CMD_ERR;
		}
		/* "-" is saved too: no filter wins over -t at restart. */
		if ((want != NULL && (copy == NULL ||
		    !filter_command_ok(want))) ||
		    users_set_setting_text(s->env->users, SETTING_FILTER,
		    want != NULL ? want : "-") != USERS_OK) {
			free(copy);
			return fail(s, "INVALID FILTER");
		}
		if (!save(s)) {
			free(copy);
			return CMD_ERR;
		}
		free(set->filter);
		set->filter = copy;
		log_info("mgmt[%lu] RETR filter now: %s", s->id,
		    copy != NULL ? copy : "none");
	}
	reply(s, "+OK FILTER");
	reply(s, "FILTER: %s", set->filter != NULL ? set->filter : "NONE");
	reply(s, ".");
	return CMD_REPLIED;
}

/* ACTIVE_MGMT: users */

static enum cmd_result
done(struct mgmt_session *s, const char *keyword, const char *text)
{
	reply(s, "+OK %s", keyword);
	reply(s, "%s", text);
	reply(s, ".");
	return CMD_REPLIED;
}

static enum cmd_result
cmd_delete_user(void *sp, int argc, char **argv)
{
	struct mgmt_session *s = sp;
	struct users *u = s->env->users;

	(void)argc;
	if (strcmp(argv[1], ADMIN_NAME) == 0)
		return fail(s, "ADMIN CANNOT BE DELETED");
	if (!begin(s))
		return CMD_ERR;
	if (users_delete(u, argv[1]) != USERS_OK)
		return fail(s, "USER NOT FOUND");
	if (!save(s))
		return CMD_ERR;
	/* The account goes, the mail stays; a live session ends, no UPDATE. */
	pop3_kick(lock_holder(argv[1]));
	log_info("mgmt[%lu] deleted user %s", s->id, argv[1]);
	return done(s, "DELETE_USER", "USER DELETED SUCCESSFULLY");
}

static enum cmd_result
cmd_add_user(void *sp, int argc, char **argv)
{
	struct mgmt_session *s = sp;

	(void)argc;
	if (!begin(s))
		return CMD_ERR;
	switch (users_add(s->env->users, argv[1], argv[2])) {
	case USERS_OK:
		break;
	case USERS_BADNAME:
		return fail(s, "INVALID USER NAME");
	case USERS_BADPASS:
		return fail(s, "INVALID PASSWORD");
	case USERS_EXISTS:
		return fail(s, "USER ALREADY EXISTS");
	case USERS_FULL:
		return fail(s, "MAX USERS REACHED");
	default:
		return fail(s, "[SYS/TEMP] CANNOT ADD USER");
	}
	if (!save(s))
		return CMD_ERR;
	log_info("mgmt[%lu] added user %s", s->id, argv[1]);
	return done(s, "ADD_USER", "USER ADDED SUCCESSFULLY");
}

static enum cmd_result
cmd_reset_password(void *sp, int argc, char **argv)
{
	struct mgmt_session *s = sp;

	(void)argc;
	if (!begin(s))
		return CMD_ERR;
	/* The report's rule: the new password is the user name. */
	switch (users_set_password(s->env->users, argv[1], argv[1])) {
	case USERS_OK:
		break;
	case USERS_NOTFOUND:
		return fail(s, "USER NOT FOUND");
	default:	/* no randomness for a salt, no memory */
		return fail(s, "[SYS/TEMP] CANNOT HASH THE PASSWORD");
	}
	if (!save(s))
		return CMD_ERR;
	log_info("mgmt[%lu] reset the password of %s", s->id, argv[1]);
	return done(s, "RESET_USER_PASSWORD", "PASSWORD RESET SUCCESSFULLY");
}

static enum cmd_result
cmd_change_password(void *sp, int argc, char **argv)
{
	struct mgmt_session *s = sp;
	bool ok = users_verify(s->env->users, ADMIN_NAME, argv[1]);
	enum users_status st;

	(void)argc;
	if (!ok) {
		/*
		 * Someone at an open admin session tried a password: noted,
		 * and answered after the failed-login delay, so pipelined
		 * guesses cost a second each, not a crypt(3) in the loop.
		 */
		log_warn("mgmt[%lu] administrator password not changed: wrong "
		    "old password", s->id);
		conn_reply_later(&s->base.conn, AUTH_FAIL_DELAY_MS,
		    "-ERR WRONG PASSWORD", false);
		return CMD_PENDING;
	}
	if (!begin(s))
		return CMD_ERR;
	st = users_set_password(s->env->users, ADMIN_NAME, argv[2]);
	if (st == USERS_BADPASS)
		return fail(s, "INVALID PASSWORD");
	if (st != USERS_OK)
		return fail(s, "[SYS/TEMP] CANNOT HASH THE PASSWORD");
	if (!save(s))
		return CMD_ERR;
	log_info("mgmt[%lu] administrator password changed", s->id);
	return done(s, "CHANGE_PASSWORD", "PASSWORD CHANGED SUCCESSFULLY");
}

static const struct cmd auth_cmds[] = {
	{ "USER", cmd_user, 1, 1, 0, NULL },
	{ "PASS", cmd_pass, 1, 1, CMD_SECRET, NULL },
	{ "QUIT", cmd_quit, 0, 0, 0, NULL },
	{ NULL, NULL, 0, 0, 0, NULL },
};

/* CAPA lists this very table, so it is declared ahead. */
static cmd_fn cmd_capa;

static const struct cmd active_cmds[] = {
	{ "NOOP", cmd_noop, 0, 0, 0,
	    "NOOP" },
	{ "CAPA", cmd_capa, 0, 0, 0,
	    "CAPA" },
	{ "QUIT", cmd_quit, 0, 0, 0,
	    "QUIT" },
	{ "HISTORIC_CONNEC", cmd_historic, 0, 0, 0,
	    "HISTORIC_CONNEC" },
	{ "LIVE_CONNEC", cmd_live, 0, 0, 0,
	    "LIVE_CONNEC" },
	{ "BYTES_TRANS", cmd_bytes, 0, 0, 0,
	    "BYTES_TRANS" },
	{ "USERS", cmd_users, 0, 0, 0,
	    "USERS" },
	{ "STATUS", cmd_status, 0, 0, 0,
	    "STATUS" },
	{ "MAX_USERS", cmd_max_users, 1, 1, 0,
	    "MAX_USERS <n>" },
	{ "MAX_CONNEC", cmd_max_connec, 1, 1, 0,
	    "MAX_CONNEC <n>" },
	{ "IDLE_TIMEOUT", cmd_idle_timeout, 1, 1, 0,
	    "IDLE_TIMEOUT <seconds>" },
	{ "TIMEOUT", cmd_timeout, 1, 1, 0,
	    "TIMEOUT <seconds>" },
	{ "FILTER", cmd_filter, 0, 1, CMD_REST,
	    "FILTER [<command>|-]" },
	{ "DELETE_USER", cmd_delete_user, 1, 1, 0,
	    "DELETE_USER <username>" },
	{ "ADD_USER", cmd_add_user, 2, 2, CMD_SECRET,
	    "ADD_USER <username> <password>" },
	{ "RESET_USER_PASSWORD", cmd_reset_password, 1, 1, 0,
	    "RESET_USER_PASSWORD <username>" },
	{ "CHANGE_PASSWORD", cmd_change_password, 2, 2, CMD_SECRET,
	    "CHANGE_PASSWORD <oldPassword> <newPassword>" },
	{ NULL, NULL, 0, 0, 0, NULL },
};

static enum cmd_result
cmd_capa(void *sp, int argc, char **argv)
{
	struct mgmt_session *s = sp;

	(void)argc;
	(void)argv;
	reply(s, "+OK CAPA");
	for (const struct cmd *c = active_cmds; c->name != NULL; c++)
		body(s, c->usage);
	reply(s, ".");
	return CMD_REPLIED;
}

static const struct cmd *const tables[MGMT_NSTATES] = {
	[MGMT_AUTH] = auth_cmds,
	[MGMT_ACTIVE] = active_cmds,
};

static unsigned
outcome(struct mgmt_session *s, enum cmd_result r)
{
	const char *why = NULL;

	switch (r) {
	case CMD_OK:
		reply(s, "+OK");
		break;
	case CMD_ERR:
		why = s->err != NULL ? s->err : "[SYS/TEMP] COMMAND FAILED";
		break;
	case CMD_UNKNOWN:
		why = "UNKNOWN COMMAND";
		break;
	case CMD_BAD_STATE:
		why = stm_state(&s->base.stm) == MGMT_AUTH ?
		    "NOT AUTHENTICATED" : "ALREADY AUTHENTICATED";
		break;
	case CMD_BAD_ARGS:
		why = "WRONG NUMBER OF ARGUMENTS";
		break;
	case CMD_CLOSE:
		conn_close_after_flush(&s->base.conn, END_QUIT);
		break;
	case CMD_NEXT:
		return s->next_state;
	case CMD_REPLIED:
	case CMD_STREAM:
	case CMD_PENDING:
		break;
	}
	s->err = NULL;
	if (why != NULL)
		reply(s, "-ERR %s", why);
	return stm_state(&s->base.stm);
}

static void
complete(struct mgmt_session *s, enum cmd_result r)
{
	stm_jump(&s->base.stm, outcome(s, r), s);
}

static unsigned
mgmt_read(void *ctx)
{
	struct mgmt_session *s = ctx;
	enum cmd_result r;

	switch (s->base.line_status) {
	case LINE_TOO_LONG:
		r = fail(s, "LINE TOO LONG");
		break;
	case LINE_NUL:
		r = fail(s, "NUL BYTE IN COMMAND");
		break;
	default:	/* LINE_OK: conn never hands on LINE_NONE */
		r = proto_dispatch(tables, MGMT_NSTATES,
		    stm_state(&s->base.stm), s, s->base.line);
		break;
	}
	/* The undo copy lives for one command. */
	free(s->undo);
	s->undo = NULL;
	return outcome(s, r);
}

static unsigned
mgmt_write(void *ctx)
{
	struct mgmt_session *s = ctx;

	if (s->base.conn.streaming)
		produce_users(s);
	return stm_state(&s->base.stm);
}

static const struct stm_state states[MGMT_NSTATES] = {
	[MGMT_AUTH] = { .state = MGMT_AUTH, .on_read = mgmt_read },
	[MGMT_ACTIVE] = {
		.state = MGMT_ACTIVE,
		.on_read = mgmt_read,
		.on_write = mgmt_write,
	},
};

static void
on_timeout(struct conn *c)
{
	reply((struct mgmt_session *)c, "-ERR IDLE TIMEOUT");
	conn_close_after_flush(c, END_TIMEOUT);
}

static void
on_destroy(struct conn *c, enum conn_end why)
{
	struct mgmt_session *s = (struct mgmt_session *)c;

	log_info("mgmt[%lu] %s closed (%s)", s->id, c->peer,
	    conn_end_name(why));
	verify_cancel(s->pending_login);
	free(s->undo);
	free(s);
	live_sessions--;
}

static const struct conn_ops mgmt_ops = {
	.on_line = session_on_line,
	.on_output = session_on_output,
	.on_timeout = on_timeout,
	.on_destroy = on_destroy,
};

static void
answer_pause_over(struct conn *c, void *arg)
{
	struct mgmt_session *s = (struct mgmt_session *)c;

	(void)arg;
	if (c->ops != &mgmt_ops || !s->awaiting_pause)
		return;
	s->awaiting_pause = false;
	conn_release(c);
	reply(s, "+OK TIMEOUT COMPLETED");
	complete(s, CMD_REPLIED);
}

void
mgmt_pause_over(void)
{
	conn_foreach(answer_pause_over, NULL);
}

bool
mgmt_full(void)
{
	return live_sessions >= MGMT_MAX_SESSIONS;
}

int
mgmt_session_new(const struct mgmt_env *env, int fd, const char *peer)
{
	struct mgmt_session *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return -1;
	s->env = env;
	s->id = ++next_id;
	if (conn_init(&s->base.conn, fd, env->sel, &mgmt_ops, peer,
	    MGMT_IDLE_MS, false) < 0) {
		free(s);
		return -1;
	}
	stm_init(&s->base.stm, states, MGMT_NSTATES, MGMT_AUTH, s);
	live_sessions++;
	log_info("mgmt[%lu] %s connect", s->id, peer);
	reply(s, MGMT_GREETING);
	return 0;
}
