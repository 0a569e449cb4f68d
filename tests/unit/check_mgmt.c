/*
 * Unit tests of the MGMT command parser and engine (docs/mgmt-protocol.md)
 * driven over a socketpair() in-process: the test plays the
 * administrator's client and drives the reactor the way server.c does
 * (run pending, reap, poll), always for a bounded time.  The users file
 * lives in a fresh folder per test under one mkdtemp() base, which the
 * unchecked teardown (run in the parent) removes even when a forked test
 * exits on a failed assertion.  apply_idle and pause are stubs that
 * record their calls.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "conn.h"
#include "log.h"
#include "mgmt.h"
#include "scratch.h"
#include "selector.h"
#include "settings.h"
#include "stats.h"
#include "users.h"
#include "verify.h"

#define GREETING	"+OK Management server ready"
#define ADMIN_PW	"adminpw"

/* How long a reply that is due now may take to arrive, ms. */
#define WAIT_MS		1500
/* A failed PASS is answered after AUTH_FAIL_DELAY_MS; allow slack. */
#define DELAY_MIN_MS	800
#define DELAY_WAIT_MS	2500

/* ---- the world a session lives in ---- */

static char base[64];
static char dir[128];
static char upath[192];
static char logpath[192];

static struct selector *sel;
static struct users *users;
static struct settings settings;
static struct mgmt_env env;

/* What the stubs saw. */
static struct {
	int idle_calls;
	unsigned idle_seen;	/* settings.idle_s when apply_idle ran */
	int pause_calls;
	unsigned pause_arg;
	bool pause_fails;	/* stub_pause plays a server out of memory */
} rec;

static void
stub_apply_idle(void)
{
	rec.idle_calls++;
	rec.idle_seen = settings.idle_s;
}

static bool
stub_pause(unsigned seconds)
{
	rec.pause_calls++;
	rec.pause_arg = seconds;
	return !rec.pause_fails;
}

static void
base_setup(void)
{
	scratch_make(base, sizeof(base), "mgmt");
}

static void
base_teardown(void)
{
	scratch_remove(base);
}

/* ---- the peer (the administrator's client) ---- */

#define PEER_CAP	65536
#define MAX_PEERS	4

struct peer {
	int fd;
	size_t len, pos;	/* bytes read; bytes consumed as lines */
	bool eof;
	char buf[PEER_CAP];
};

/* Peer descriptors still open, closed by teardown if a test did not. */
static int peer_fds[MAX_PEERS] = { -1, -1, -1, -1 };

static void
nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	ck_assert_int_ge(fl, 0);
	ck_assert_int_eq(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
}

/* Reads what is there, without blocking. */
static void
peer_read(struct peer *p)
{
	while (!p->eof) {
		ssize_t n;

		ck_assert_msg(p->len < PEER_CAP, "peer buffer full");
		n = read(p->fd, p->buf + p->len, PEER_CAP - p->len);
		if (n > 0)
			p->len += (size_t)n;
		else if (n == 0)
			p->eof = true;
		else if (errno == EINTR)
			continue;
		else {
			ck_assert_msg(errno == EAGAIN || errno == EWOULDBLOCK,
			    "peer read: %s", strerror(errno));
			return;
		}
	}
}

static void
send_raw(struct peer *p, const char *data, size_t len)
{
	ck_assert_int_eq(write(p->fd, data, len), (ssize_t)len);
}

/* Sends a string literal, embedded NULs included. */
#define SEND_LIT(p, lit)	send_raw((p), (lit), sizeof(lit) - 1)

/* Sends one command line with CRLF. */
static void
send_line(struct peer *p, const char *line)
{
	char buf[1024];
	int n = snprintf(buf, sizeof(buf), "%s\r\n", line);

	ck_assert(n > 0 && (size_t)n < sizeof(buf));
	send_raw(p, buf, (size_t)n);
}

static void
peer_close(struct peer *p)
{
	for (int i = 0; i < MAX_PEERS; i++)
		if (peer_fds[i] == p->fd)
			peer_fds[i] = -1;
	if (p->fd >= 0)
		(void)close(p->fd);
	p->fd = -1;
}

/* ---- the loop ---- */

/* One pass the way server_run() makes it. */
static void
step(void)
{
	bool more;

	verify_run();
	more = conn_run_pending();
	more = verify_waiting() || more;
	conn_reap();
	ck_assert_int_eq(selector_poll(sel, more ? 0 : 5), SELECTOR_OK);
}

static void
run_for(struct peer *p, uint64_t ms)
{
	uint64_t t0 = selector_now_ms();

	while (selector_now_ms() - t0 < ms) {
		step();
		if (p != NULL)
			peer_read(p);
	}
}

/*
 * Steps until a whole reply line is there (or ms pass); copies it
 * without its CRLF.  Every reply line must end in CRLF.
 */
static bool
next_line(struct peer *p, uint64_t ms, char *out, size_t cap)
{
	uint64_t t0 = selector_now_ms();

	for (;;) {
		char *start = p->buf + p->pos;
		char *lf = memchr(start, '\n', p->len - p->pos);

		if (lf != NULL) {
			size_t n = (size_t)(lf - start);

			ck_assert_msg(n > 0 && lf[-1] == '\r',
			    "reply line not ended by CRLF");
			n--;
			ck_assert_uint_lt(n, cap);
			memcpy(out, start, n);
			out[n] = '\0';
			p->pos += n + 2;
			return true;
		}
		if (p->eof || selector_now_ms() - t0 >= ms)
			return false;
		step();
		peer_read(p);
	}
}

static void
expect_within(struct peer *p, const char *want, uint64_t ms, int line)
{
	char got[1024];

	ck_assert_msg(next_line(p, ms, got, sizeof(got)),
	    "line %d: no reply (eof=%d), wanted \"%s\"", line, p->eof, want);
	ck_assert_msg(strcmp(got, want) == 0,
	    "line %d: got \"%s\", wanted \"%s\"", line, got, want);
}

/* The next reply line is exactly `want`. */
#define EXPECT(p, want)	expect_within((p), (want), WAIT_MS, __LINE__)
#define EXPECT_LATE(p, want) \
	expect_within((p), (want), DELAY_WAIT_MS, __LINE__)

/* Sends a command and expects a one-line reply. */
#define CMD(p, cmd, want) \
	do { \
		send_line((p), (cmd)); \
		EXPECT((p), (want)); \
	} while (0)

/* Nothing arrives for ms, and the session is still open. */
static void
silent(struct peer *p, uint64_t ms, int line)
{
	run_for(p, ms);
	ck_assert_msg(p->len == p->pos, "line %d: unexpected reply \"%.*s\"",
	    line, (int)(p->len - p->pos), p->buf + p->pos);
	ck_assert_msg(!p->eof, "line %d: session closed", line);
}

#define SILENT(p, ms)	silent((p), (ms), __LINE__)

/* The session closes with nothing more sent. */
static void
expect_eof(struct peer *p, int line)
{
	uint64_t t0 = selector_now_ms();

	while (!p->eof && selector_now_ms() - t0 < WAIT_MS) {
		step();
		peer_read(p);
	}
	ck_assert_msg(p->eof, "line %d: session not closed", line);
	ck_assert_msg(p->len == p->pos, "line %d: more after the last "
	    "reply: \"%.*s\"", line, (int)(p->len - p->pos),
	    p->buf + p->pos);
}

#define EXPECT_EOF(p)	expect_eof((p), __LINE__)

static void
count_conn(struct conn *c, void *arg)
{
	(void)c;
	(*(int *)arg)++;
}

/* Open sessions (conns not closing). */
static int
live_sessions(void)
{
	int n = 0;

	conn_foreach(count_conn, &n);
	return n;
}

/* ---- sessions ---- */

static struct peer *
open_session(void)
{
	struct peer *p = calloc(1, sizeof(*p));
	int sv[2], slot = -1;

	ck_assert_ptr_nonnull(p);
	for (int i = 0; i < MAX_PEERS && slot < 0; i++)
		if (peer_fds[i] < 0)
			slot = i;
	ck_assert_int_ge(slot, 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	nonblock(sv[0]);
	nonblock(sv[1]);
	p->fd = sv[1];
	peer_fds[slot] = sv[1];
	ck_assert_int_eq(mgmt_session_new(&env, sv[0], "test:1"), 0);
	return p;
}

static void
free_peer(struct peer *p)
{
	peer_close(p);
	free(p);
}

/* A session greeted and logged in as admin. */
static struct peer *
login(void)
{
	struct peer *p = open_session();

	EXPECT(p, GREETING);
	CMD(p, "USER admin", "+OK USER");
	CMD(p, "PASS " ADMIN_PW, "+OK PASS");
	return p;
}

/* ---- the users file, as a restarted server would see it ---- */

static struct users *
reload(void)
{
	struct users *v = NULL;
	unsigned bad = 0;

	ck_assert_int_eq(users_load(upath, &v, &bad), USERS_OK);
	ck_assert_ptr_nonnull(v);
	return v;
}

static char *
slurp(const char *path, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	int fd = open(path, O_RDONLY);

	ck_assert_ptr_nonnull(buf);
	ck_assert_int_ne(fd, -1);
	for (;;) {
		ssize_t r;

		if (cap - n < 2) {
			cap *= 2;
			buf = realloc(buf, cap);
			ck_assert_ptr_nonnull(buf);
		}
		r = read(fd, buf + n, cap - n - 1);
		ck_assert_int_ge(r, 0);
		if (r == 0)
			break;
		n += (size_t)r;
	}
	(void)close(fd);
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* ---- fixture ---- */

static void
setup(void)
{
	unsigned bad = 0;
	int n;

	memset(&rec, 0, sizeof(rec));
	/* A write to a closed peer fails an assertion, not the process. */
	signal(SIGPIPE, SIG_IGN);
	stats_init();
	ck_assert_msg(base[0] != '\0', "no base folder");
	n = snprintf(dir, sizeof(dir), "%s/t.XXXXXX", base);
	ck_assert(n > 0 && (size_t)n < sizeof(dir));
	ck_assert_ptr_nonnull(mkdtemp(dir));
	n = snprintf(upath, sizeof(upath), "%s/users", dir);
	ck_assert(n > 0 && (size_t)n < sizeof(upath));
	n = snprintf(logpath, sizeof(logpath), "%s/log", dir);
	ck_assert(n > 0 && (size_t)n < sizeof(logpath));
	ck_assert_int_eq(log_open(logpath), 0);

	ck_assert_int_eq(users_load(upath, &users, &bad), USERS_OK);
	ck_assert_int_eq(users_add(users, "admin", ADMIN_PW), USERS_OK);
	ck_assert_int_eq(users_save(users), USERS_OK);

	sel = selector_new(1024);
	ck_assert_ptr_nonnull(sel);
	settings = (struct settings){
		.max_conn = 100,
		.conn_ceiling = 1000,
		.idle_s = 600,
		.filter = NULL,
		.filter_limit_s = 30,
	};
	env = (struct mgmt_env){
		.sel = sel,
		.users = users,
		.settings = &settings,
		.apply_idle = stub_apply_idle,
		.pause = stub_pause,
	};
}

static void
teardown(void)
{
	for (int i = 0; i < MAX_PEERS; i++) {
		if (peer_fds[i] >= 0)
			(void)close(peer_fds[i]);
		peer_fds[i] = -1;
	}
	if (sel != NULL) {
		conn_run_pending();
		conn_reap();
		selector_destroy(sel);	/* destroys the open sessions */
		sel = NULL;
	}
	users_free(users);
	users = NULL;
	free(settings.filter);
	settings.filter = NULL;
	log_close();
}

/* ---- core ---- */

START_TEST(test_greeting)
{
	struct peer *p = open_session();

	EXPECT(p, GREETING);
	SILENT(p, 30);
	ck_assert_int_eq(live_sessions(), 1);
	free_peer(p);
}
END_TEST

START_TEST(test_user)
{
	struct peer *p = open_session();

	EXPECT(p, GREETING);
	CMD(p, "USER bob", "-ERR NOT AN ADMINISTRATOR");
	/* User names are case-sensitive. */
	CMD(p, "USER ADMIN", "-ERR NOT AN ADMINISTRATOR");
	/* The session goes on. */
	CMD(p, "USER admin", "+OK USER");
	CMD(p, "PASS " ADMIN_PW, "+OK PASS");
	CMD(p, "NOOP", "+OK NOOP");
	free_peer(p);
}
END_TEST

/* Arguments are separated by one or more spaces, PASS's too. */
START_TEST(test_pass_extra_spaces)
{
	struct peer *p = open_session();

	EXPECT(p, GREETING);
	CMD(p, "USER admin", "+OK USER");
	CMD(p, "PASS  " ADMIN_PW, "+OK PASS");
	free_peer(p);
}
END_TEST

/*
 * A client gone while its PASS waits in the check queue: the check is
 * cancelled with the session, so its answer never reaches freed memory
 * (no login-failed line for it; ASan and valgrind see the rest).  The
 * loop runs without verify_run() until the session is gone.
 */
START_TEST(test_gone_while_pass_queued)
{
	struct peer *p = open_session();
	uint64_t t0 = selector_now_ms();
	size_t len;
	char *log;

	EXPECT(p, GREETING);
	SEND_LIT(p, "USER admin\r\nPASS wrong\r\n");
	peer_close(p);
	while (live_sessions() > 0 && selector_now_ms() - t0 < WAIT_MS) {
		(void)conn_run_pending();
		conn_reap();
		ck_assert_int_eq(selector_poll(sel, 5), SELECTOR_OK);
	}
	conn_reap();
	ck_assert_int_eq(live_sessions(), 0);
	ck_assert(verify_waiting());
	while (verify_waiting())
		verify_run();
	log = slurp(logpath, &len);
	ck_assert_ptr_null(strstr(log, "login-failed"));
	free(log);
	free(p);
}
END_TEST

START_TEST(test_pass_right)
{
	struct peer *p = open_session();
	uint64_t t0;

	EXPECT(p, GREETING);
	CMD(p, "NOOP", "-ERR NOT AUTHENTICATED");
	CMD(p, "USER admin", "+OK USER");
	t0 = selector_now_ms();
	CMD(p, "PASS " ADMIN_PW, "+OK PASS");
	/* A right password is not delayed. */
	ck_assert_uint_lt(selector_now_ms() - t0, 500);
	/* Now in ACTIVE_MGMT. */
	CMD(p, "NOOP", "+OK NOOP");
	free_peer(p);
}
END_TEST

START_TEST(test_case_insensitive)
{
	struct peer *p = open_session();

	EXPECT(p, GREETING);
	CMD(p, "user admin", "+OK USER");
	CMD(p, "pAsS " ADMIN_PW, "+OK PASS");
	CMD(p, "noop", "+OK NOOP");
	CMD(p, "NoOp", "+OK NOOP");
	send_line(p, "live_connec");
	EXPECT(p, "+OK LIVE_CONNEC");
	EXPECT(p, "LIVE CONNECTIONS: 0");
	EXPECT(p, ".");
	CMD(p, "Max_Connec 7", "+OK MAX_CONNEC CHANGED");
	ck_assert_uint_eq(settings.max_conn, 7);
	CMD(p, "idle_timeout 60", "+OK IDLE_TIMEOUT CHANGED");
	CMD(p, "Bogus", "-ERR UNKNOWN COMMAND");
	CMD(p, "quit", "+OK GOODBYE");
	EXPECT_EOF(p);
	free_peer(p);
}
END_TEST

START_TEST(test_unknown_command)
{
	struct peer *p = open_session();

	EXPECT(p, GREETING);
	CMD(p, "HELO there", "-ERR UNKNOWN COMMAND");
	CMD(p, "STAT", "-ERR UNKNOWN COMMAND");	/* POP3's, not MGMT's */
	CMD(p, "", "-ERR UNKNOWN COMMAND");
	CMD(p, "   ", "-ERR UNKNOWN COMMAND");
	CMD(p, "USERX admin", "-ERR UNKNOWN COMMAND");
	CMD(p, "USER admin", "+OK USER");
	CMD(p, "PASS " ADMIN_PW, "+OK PASS");
	CMD(p, "HELO", "-ERR UNKNOWN COMMAND");
	CMD(p, "NOOPX", "-ERR UNKNOWN COMMAND");
	CMD(p, "", "-ERR UNKNOWN COMMAND");
	CMD(p, "NOOP", "+OK NOOP");
	free_peer(p);
}
END_TEST

START_TEST(test_wrong_state)
{
	struct peer *p = open_session();

	EXPECT(p, GREETING);
	CMD(p, "NOOP", "-ERR NOT AUTHENTICATED");
	CMD(p, "STATUS", "-ERR NOT AUTHENTICATED");
	CMD(p, "CAPA", "-ERR NOT AUTHENTICATED");
	CMD(p, "MAX_CONNEC 5", "-ERR NOT AUTHENTICATED");
	CMD(p, "ADD_USER eve evepw", "-ERR NOT AUTHENTICATED");
	CMD(p, "DELETE_USER admin", "-ERR NOT AUTHENTICATED");
	ck_assert(!users_exists(users, "eve"));
	ck_assert_uint_eq(settings.max_conn, 100);
	/* The session goes on. */
	CMD(p, "USER admin", "+OK USER");
	CMD(p, "PASS " ADMIN_PW, "+OK PASS");
	/* And the other way round, without the PASS delay. */
	CMD(p, "USER admin", "-ERR ALREADY AUTHENTICATED");
	CMD(p, "PASS " ADMIN_PW, "-ERR ALREADY AUTHENTICATED");
	CMD(p, "PASS wrong", "-ERR ALREADY AUTHENTICATED");
	CMD(p, "NOOP", "+OK NOOP");
	free_peer(p);
}
END_TEST

START_TEST(test_wrong_number_of_args)
{
	static const char *const auth_bad[] = {
		"USER", "USER admin admin", "PASS", "PASS ", "QUIT now",
	};
	static const char *const active_bad[] = {
		"NOOP x", "CAPA x", "STATUS x", "USERS x", "LIVE_CONNEC 1",
		"HISTORIC_CONNEC 1", "BYTES_TRANS 1", "MAX_USERS",
		"MAX_USERS 5 6", "MAX_CONNEC", "MAX_CONNEC 5 6",
		"IDLE_TIMEOUT", "IDLE_TIMEOUT 60 60", "TIMEOUT",
		"TIMEOUT 1 1", "DELETE_USER", "DELETE_USER a b", "ADD_USER",
		"ADD_USER bob", "ADD_USER bob pw extra",
		"RESET_USER_PASSWORD", "RESET_USER_PASSWORD a b",
		"CHANGE_PASSWORD", "CHANGE_PASSWORD " ADMIN_PW,
		"CHANGE_PASSWORD " ADMIN_PW " a b", "QUIT now",
	};
	struct peer *p = open_session();
	size_t i;

	EXPECT(p, GREETING);
	for (i = 0; i < sizeof(auth_bad) / sizeof(auth_bad[0]); i++)
		CMD(p, auth_bad[i], "-ERR WRONG NUMBER OF ARGUMENTS");
	/* Argument errors are not failed logins: no delay, no close. */
	CMD(p, "USER admin", "+OK USER");
	CMD(p, "PASS " ADMIN_PW, "+OK PASS");
	for (i = 0; i < sizeof(active_bad) / sizeof(active_bad[0]); i++)
		CMD(p, active_bad[i], "-ERR WRONG NUMBER OF ARGUMENTS");
	/* Nothing changed, nothing was paused, the session is alive. */
	ck_assert(!users_exists(users, "bob"));
	ck_assert_uint_eq(users_count(users), 1);
	ck_assert_uint_eq(settings.max_conn, 100);
	ck_assert_uint_eq(settings.idle_s, 600);
	ck_assert_int_eq(rec.pause_calls, 0);
	ck_assert_int_eq(rec.idle_calls, 0);
	CMD(p, "NOOP", "+OK NOOP");
	free_peer(p);
}
END_TEST

START_TEST(test_multiple_spaces)
{
	struct peer *p = open_session();
	struct users *v;

	EXPECT(p, GREETING);
	CMD(p, "USER    admin", "+OK USER");
	CMD(p, "PASS " ADMIN_PW, "+OK PASS");
	CMD(p, "   NOOP", "+OK NOOP");
	CMD(p, "NOOP    ", "+OK NOOP");
	CMD(p, "MAX_CONNEC     7", "+OK MAX_CONNEC CHANGED");
	ck_assert_uint_eq(settings.max_conn, 7);
	CMD(p, "  IDLE_TIMEOUT   45  ", "+OK IDLE_TIMEOUT CHANGED");
	ck_assert_uint_eq(settings.idle_s, 45);
	send_line(p, "ADD_USER   bob      bobpw");
	EXPECT(p, "+OK ADD_USER");
	EXPECT(p, "USER ADDED SUCCESSFULLY");
	EXPECT(p, ".");
	/* The spaces are separators, not part of the name or password. */
	v = reload();
	ck_assert(users_exists(v, "bob"));
	ck_assert(users_verify(v, "bob", "bobpw"));
	users_free(v);
	free_peer(p);
}
END_TEST

START_TEST(test_bare_lf)
{
	struct peer *p = open_session();

	EXPECT(p, GREETING);
	SEND_LIT(p, "USER admin\n");
	EXPECT(p, "+OK USER");
	SEND_LIT(p, "PASS " ADMIN_PW "\n");
	EXPECT(p, "+OK PASS");
	/* Mixed endings in one write; replies still end in CRLF. */
	SEND_LIT(p, "NOOP\nMAX_CONNEC 9\r\nNOOP\n");
	EXPECT(p, "+OK NOOP");
	EXPECT(p, "+OK MAX_CONNEC CHANGED");
	EXPECT(p, "+OK NOOP");
	ck_assert_uint_eq(settings.max_conn, 9);
	SEND_LIT(p, "QUIT\n");
	EXPECT(p, "+OK GOODBYE");
	EXPECT_EOF(p);
	free_peer(p);
}
END_TEST

START_TEST(test_pipelined)
{
	char all[1024];
	size_t len = 0;
	struct peer *p = open_session();
	int i;

	len += (size_t)snprintf(all + len, sizeof(all) - len, "%s",
	    "USER admin\r\nPASS " ADMIN_PW "\r\nNOOP\r\nBOGUS\r\n"
	    "LIVE_CONNEC\r\nMAX_CONNEC 0\r\nMAX_CONNEC 12\r\n");
	/* More lines than one parsing pass takes (MAX_CMDS_PER_PASS). */
	for (i = 0; i < 3 * MAX_CMDS_PER_PASS; i++)
		len += (size_t)snprintf(all + len, sizeof(all) - len,
		    "NOOP\r\n");
	len += (size_t)snprintf(all + len, sizeof(all) - len, "%s",
	    "QUIT\r\nNOOP\r\n");
	ck_assert_uint_lt(len, sizeof(all) - 1);
	EXPECT(p, GREETING);
	send_raw(p, all, len);
	EXPECT(p, "+OK USER");
	EXPECT(p, "+OK PASS");
	EXPECT(p, "+OK NOOP");
	EXPECT(p, "-ERR UNKNOWN COMMAND");
	EXPECT(p, "+OK LIVE_CONNEC");
	EXPECT(p, "LIVE CONNECTIONS: 0");
	EXPECT(p, ".");
	EXPECT(p, "-ERR INVALID MAX CONNECTIONS");
	EXPECT(p, "+OK MAX_CONNEC CHANGED");
	for (i = 0; i < 3 * MAX_CMDS_PER_PASS; i++)
		EXPECT(p, "+OK NOOP");
	EXPECT(p, "+OK GOODBYE");
	/* The line after QUIT is never answered. */
	EXPECT_EOF(p);
	ck_assert_uint_eq(settings.max_conn, 12);
	free_peer(p);
}
END_TEST

START_TEST(test_capa)
{
	/* Every command valid in ACTIVE_MGMT, CAPA included (the spec). */
	static const char *const want[] = {
		"NOOP", "CAPA", "QUIT", "HISTORIC_CONNEC", "LIVE_CONNEC",
		"BYTES_TRANS", "USERS", "STATUS", "MAX_USERS <n>",
		"MAX_CONNEC <n>", "IDLE_TIMEOUT <seconds>",
		"TIMEOUT <seconds>", "FILTER [<command>|-]",
		"DELETE_USER <username>", "ADD_USER <username> <password>",
		"RESET_USER_PASSWORD <username>",
		"CHANGE_PASSWORD <oldPassword> <newPassword>",
	};
	struct peer *p = login();

	send_line(p, "CAPA");
	EXPECT(p, "+OK CAPA");
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		EXPECT(p, want[i]);
	EXPECT(p, ".");
	SILENT(p, 30);
	/* Twice in a row gives the same listing. */
	send_line(p, "capa");
	EXPECT(p, "+OK CAPA");
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		EXPECT(p, want[i]);
	EXPECT(p, ".");
	free_peer(p);
}
END_TEST

/* A "KEY: <digits>" line with this key; returns the value. */
static unsigned long long
key_value(struct peer *p, const char *key)
{
	char got[1024], *end;
	size_t klen = strlen(key);
	unsigned long long v;

	ck_assert_msg(next_line(p, WAIT_MS, got, sizeof(got)),
	    "no line for %s", key);
	ck_assert_msg(strncmp(got, key, klen) == 0 && got[klen] == ':' &&
	    got[klen + 1] == ' ' && got[klen + 2] >= '0' &&
	    got[klen + 2] <= '9', "got \"%s\", wanted \"%s: <n>\"", got, key);
	errno = 0;
	v = strtoull(got + klen + 2, &end, 10);
	ck_assert_msg(errno == 0 && *end == '\0', "bad number in \"%s\"",
	    got);
	return v;
}

START_TEST(test_status)
{
	struct peer *p = login();

	/* POP3 figures; MGMT's own traffic is not counted. */
	stats_accepted();
	stats_accepted();
	stats_accepted();
	stats_opened();
	stats_opened();
	stats_add_in(123);
	stats_add_out(4567);
	send_line(p, "STATUS");
	EXPECT(p, "+OK STATUS");
	ck_assert_uint_eq(key_value(p, "BYTES SENT"), 4567);
	ck_assert_uint_eq(key_value(p, "BYTES RECEIVED"), 123);
	ck_assert_uint_eq(key_value(p, "LIVE CONNECTIONS"), 2);
	ck_assert_uint_eq(key_value(p, "HISTORIC CONNECTIONS"), 3);
	ck_assert_uint_eq(key_value(p, "TOTAL USERS"), 1);
	ck_assert_uint_eq(key_value(p, "MAX USERS"), DEFAULT_MAX_USERS);
	ck_assert_uint_eq(key_value(p, "MAX CONNECTIONS"), 100);
	ck_assert_uint_eq(key_value(p, "IDLE TIMEOUT"), 600);
	ck_assert_uint_le(key_value(p, "UPTIME"), 2);
	EXPECT(p, ".");
	SILENT(p, 30);

	/* The single figures agree. */
	send_line(p, "HISTORIC_CONNEC");
	EXPECT(p, "+OK HISTORIC_CONNEC");
	EXPECT(p, "HISTORIC CONNECTIONS: 3");
	EXPECT(p, ".");
	send_line(p, "LIVE_CONNEC");
	EXPECT(p, "+OK LIVE_CONNEC");
	EXPECT(p, "LIVE CONNECTIONS: 2");
	EXPECT(p, ".");
	send_line(p, "BYTES_TRANS");
	EXPECT(p, "+OK BYTES_TRANS");
	EXPECT(p, "BYTES SENT: 4567");
	EXPECT(p, "BYTES RECEIVED: 123");
	EXPECT(p, ".");

	/* Changes show at once. */
	CMD(p, "MAX_CONNEC 250", "+OK MAX_CONNEC CHANGED");
	CMD(p, "IDLE_TIMEOUT 120", "+OK IDLE_TIMEOUT CHANGED");
	send_line(p, "ADD_USER carol carolpw");
	EXPECT(p, "+OK ADD_USER");
	EXPECT(p, "USER ADDED SUCCESSFULLY");
	EXPECT(p, ".");
	send_line(p, "STATUS");
	EXPECT(p, "+OK STATUS");
	(void)key_value(p, "BYTES SENT");
	(void)key_value(p, "BYTES RECEIVED");
	(void)key_value(p, "LIVE CONNECTIONS");
	(void)key_value(p, "HISTORIC CONNECTIONS");
	ck_assert_uint_eq(key_value(p, "TOTAL USERS"), 2);
	(void)key_value(p, "MAX USERS");
	ck_assert_uint_eq(key_value(p, "MAX CONNECTIONS"), 250);
	ck_assert_uint_eq(key_value(p, "IDLE TIMEOUT"), 120);
	(void)key_value(p, "UPTIME");
	EXPECT(p, ".");
	free_peer(p);
}
END_TEST

/* "userNN-xxx...": 40 characters, so the listing outgrows OUT_BUF_SIZE. */
static void
long_name(char *buf, size_t cap, int i)
{
	ck_assert_uint_gt(cap, 40);
	(void)snprintf(buf, cap, "user%02d-", i);
	memset(buf + 7, 'x', 40 - 7);
	buf[40] = '\0';
}

START_TEST(test_users_listing)
{
	enum { N = 60 };
	struct peer *p;
	char name[64];
	int i;

	/* Many users: the listing streams, more than `out` holds at once. */
	for (i = 0; i < N; i++) {
		long_name(name, sizeof(name), i);
		ck_assert_int_eq(users_add(users, name, "pw"), USERS_OK);
	}
	ck_assert_int_eq(users_save(users), USERS_OK);
	ck_assert_uint_gt((size_t)N * 42, OUT_BUF_SIZE);
	p = login();
	SEND_LIT(p, "USERS\r\nNOOP\r\n");
	EXPECT(p, "+OK USERS");
	EXPECT(p, "USER COUNT: 61");
	EXPECT(p, "USER LIST:");
	EXPECT(p, "admin");
	for (i = 0; i < N; i++) {
		long_name(name, sizeof(name), i);
		EXPECT(p, name);
	}
	EXPECT(p, ".");
	/* The pipelined command waited for the end of the listing. */
	EXPECT(p, "+OK NOOP");
	SILENT(p, 30);
	free_peer(p);
}
END_TEST

START_TEST(test_idle_timeout_applies)
{
	struct peer *p = login();
	struct users *v;

	CMD(p, "IDLE_TIMEOUT 30", "+OK IDLE_TIMEOUT CHANGED");
	ck_assert_uint_eq(settings.idle_s, 30);
	ck_assert_int_eq(rec.idle_calls, 1);
	/* apply_idle ran with the new value already in settings. */
	ck_assert_uint_eq(rec.idle_seen, 30);
	ck_assert_int_eq(rec.pause_calls, 0);
	/* Saved before the +OK. */
	v = reload();
	ck_assert_uint_eq(users_setting(v, SETTING_IDLE, 0), 30);
	users_free(v);
	/* A refused value changes nothing and applies nothing. */
	CMD(p, "IDLE_TIMEOUT 5", "-ERR INVALID IDLE TIMEOUT");
	ck_assert_uint_eq(settings.idle_s, 30);
	ck_assert_int_eq(rec.idle_calls, 1);
	free_peer(p);
}
END_TEST

START_TEST(test_add_user_persists)
{
	struct peer *p = login();
	struct users *v;
	char *text, *at;
	size_t n;

	send_line(p, "ADD_USER carol s3cr3t-pw");
	EXPECT(p, "+OK ADD_USER");
	EXPECT(p, "USER ADDED SUCCESSFULLY");
	EXPECT(p, ".");
	ck_assert(users_exists(users, "carol"));
	/* On disk before the +OK, hashed with SHA-512 crypt, never clear. */
	v = reload();
	ck_assert(users_exists(v, "carol"));
	ck_assert(users_exists(v, "admin"));
	ck_assert_uint_eq(users_count(v), 2);
	ck_assert(users_verify(v, "carol", "s3cr3t-pw"));
	ck_assert(!users_verify(v, "carol", "s3cr3t-PW"));
	users_free(v);
	text = slurp(upath, &n);
	at = strstr(text, "carol:");
	ck_assert_ptr_nonnull(at);
	ck_assert_msg(at == text || at[-1] == '\n', "carol: not a record");
	ck_assert_mem_eq(at + 6, "$6$", 3);
	ck_assert_ptr_null(strstr(text, "s3cr3t-pw"));
	free(text);
	/* Listed, and usable at once. */
	send_line(p, "USERS");
	EXPECT(p, "+OK USERS");
	EXPECT(p, "USER COUNT: 2");
	EXPECT(p, "USER LIST:");
	EXPECT(p, "admin");
	EXPECT(p, "carol");
	EXPECT(p, ".");
	free_peer(p);
}
END_TEST

START_TEST(test_add_user_refused)
{
	static const char *const bad_names[] = {
		".hidden", "..", "a/b", "../etc", "a:b", "a\\b", "na*me",
		"caf\xc3\xa9", "x%y",
		/* 65 characters */
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	};
	static const char name64[] =
	    "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy";
	struct peer *p = login();
	char line[512];
	struct users *v;

	ck_assert_uint_eq(strlen(name64), USER_NAME_MAX);
	for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]);
	    i++) {
		(void)snprintf(line, sizeof(line), "ADD_USER %s pw",
		    bad_names[i]);
		CMD(p, line, "-ERR INVALID USER NAME");
	}
	ck_assert_uint_eq(users_count(users), 1);
	/* 64 characters is a valid name. */
	(void)snprintf(line, sizeof(line), "ADD_USER %s pw", name64);
	send_line(p, line);
	EXPECT(p, "+OK ADD_USER");
	EXPECT(p, "USER ADDED SUCCESSFULLY");
	EXPECT(p, ".");
	/* Existing users, case-sensitive. */
	CMD(p, "ADD_USER admin other", "-ERR USER ALREADY EXISTS");
	(void)snprintf(line, sizeof(line), "ADD_USER %s other", name64);
	CMD(p, line, "-ERR USER ALREADY EXISTS");
	send_line(p, "ADD_USER Admin pw");
	EXPECT(p, "+OK ADD_USER");
	EXPECT(p, "USER ADDED SUCCESSFULLY");
	EXPECT(p, ".");
	/* An existing user's password is not replaced. */
	ck_assert(users_verify(users, "admin", ADMIN_PW));
	/* A password over 128 characters. */
	memset(line, 0, sizeof(line));
	memcpy(line, "ADD_USER dave ", 14);
	memset(line + 14, 'p', PASSWORD_MAX + 1);
	CMD(p, line, "-ERR INVALID PASSWORD");
	ck_assert(!users_exists(users, "dave"));
	/* At the limit: MAX USERS REACHED, and nothing is saved. */
	send_line(p, "MAX_USERS 3");
	EXPECT(p, "+OK MAX_USERS");
	EXPECT(p, "MAX USERS CHANGED SUCCESSFULLY");
	EXPECT(p, ".");
	CMD(p, "ADD_USER eve evepw", "-ERR MAX USERS REACHED");
	ck_assert(!users_exists(users, "eve"));
	v = reload();
	ck_assert_uint_eq(users_count(v), 3);
	ck_assert(!users_exists(v, "eve"));
	ck_assert(!users_exists(v, "dave"));
	users_free(v);
	free_peer(p);
}
END_TEST

START_TEST(test_delete_user)
{
	struct peer *p;
	struct users *v;

	ck_assert_int_eq(users_add(users, "carol", "carolpw"), USERS_OK);
	ck_assert_int_eq(users_save(users), USERS_OK);
	p = login();
	CMD(p, "DELETE_USER admin", "-ERR ADMIN CANNOT BE DELETED");
	CMD(p, "DELETE_USER nobody", "-ERR USER NOT FOUND");
	CMD(p, "DELETE_USER Carol", "-ERR USER NOT FOUND");
	ck_assert(users_exists(users, "admin"));
	send_line(p, "DELETE_USER carol");
	EXPECT(p, "+OK DELETE_USER");
	EXPECT(p, "USER DELETED SUCCESSFULLY");
	EXPECT(p, ".");
	v = reload();
	ck_assert(!users_exists(v, "carol"));
	ck_assert(users_exists(v, "admin"));
	users_free(v);
	CMD(p, "DELETE_USER carol", "-ERR USER NOT FOUND");
	free_peer(p);
}
END_TEST

START_TEST(test_passwords)
{
	struct peer *p, *q;
	struct users *v;

	ck_assert_int_eq(users_add(users, "carol", "carolpw"), USERS_OK);
	ck_assert_int_eq(users_save(users), USERS_OK);
	p = login();
	CMD(p, "RESET_USER_PASSWORD nobody", "-ERR USER NOT FOUND");
	send_line(p, "RESET_USER_PASSWORD carol");
	EXPECT(p, "+OK RESET_USER_PASSWORD");
	EXPECT(p, "PASSWORD RESET SUCCESSFULLY");
	EXPECT(p, ".");
	CMD(p, "CHANGE_PASSWORD wrong newpw", "-ERR WRONG PASSWORD");
	send_line(p, "CHANGE_PASSWORD " ADMIN_PW " newpw");
	EXPECT(p, "+OK CHANGE_PASSWORD");
	EXPECT(p, "PASSWORD CHANGED SUCCESSFULLY");
	EXPECT(p, ".");
	v = reload();
	ck_assert(users_verify(v, "carol", "carol"));
	ck_assert(users_verify(v, "admin", "newpw"));
	ck_assert(!users_verify(v, "admin", ADMIN_PW));
	users_free(v);
	/* The new password logs in. */
	q = open_session();
	EXPECT(q, GREETING);
	CMD(q, "USER admin", "+OK USER");
	CMD(q, "PASS newpw", "+OK PASS");
	free_peer(q);
	free_peer(p);
}
END_TEST

/* Sends a FILTER line; the reply must show `shown` as the filter. */
static void
filter_shows(struct peer *p, const char *line, const char *shown, int at)
{
	char body[128];

	(void)snprintf(body, sizeof(body), "FILTER: %s", shown);
	send_line(p, line);
	expect_within(p, "+OK FILTER", WAIT_MS, at);
	expect_within(p, body, WAIT_MS, at);
	expect_within(p, ".", WAIT_MS, at);
}
#define FILTER_SHOWS(p, line, shown) filter_shows((p), (line), (shown), __LINE__)

START_TEST(test_filter)
{
	struct peer *p = login();
	struct users *v;

	FILTER_SHOWS(p, "FILTER", "NONE");
	/* The rest of the line is the command, its spaces kept. */
	FILTER_SHOWS(p, "filter tr  a-z A-Z", "tr  a-z A-Z");
	ck_assert_str_eq(settings.filter, "tr  a-z A-Z");
	v = reload();
	ck_assert_str_eq(users_setting_text(v, SETTING_FILTER),
	    "tr  a-z A-Z");
	users_free(v);
	FILTER_SHOWS(p, "FILTER -", "NONE");
	ck_assert_ptr_null(settings.filter);
	free_peer(p);
}
END_TEST

/*
 * Control characters would reach the log and the admin's terminal, the
 * 8-bit ones (CSI, 0x9b, alone or as UTF-8's U+009B) too.
 */
START_TEST(test_filter_control_characters_refused)
{
	struct peer *p = login();

	CMD(p, "FILTER cat #\x1b[2J\b", "-ERR INVALID FILTER");
	CMD(p, "FILTER cat\x7f", "-ERR INVALID FILTER");
	CMD(p, "FILTER cat \x9b" "31m", "-ERR INVALID FILTER");
	CMD(p, "FILTER cat \xc2\x9b" "31m", "-ERR INVALID FILTER");
	CMD(p, "FILTER cat \xff", "-ERR INVALID FILTER");
	ck_assert_ptr_null(settings.filter);
	/* Blanks alone are no command: a show, not a filter running nothing. */
	FILTER_SHOWS(p, "FILTER \t ", "NONE");
	FILTER_SHOWS(p, "FILTER tr '\t' ' '", "tr '\t' ' '");
	free_peer(p);
}
END_TEST

/* The spaces after FILTER separate: they are no part of the command. */
START_TEST(test_filter_after_spaces)
{
	struct peer *p = login();

	FILTER_SHOWS(p, "FILTER   cat", "cat");
	FILTER_SHOWS(p, "FILTER    ", "cat");
	ck_assert_str_eq(settings.filter, "cat");
	FILTER_SHOWS(p, "FILTER  -", "NONE");
	ck_assert_ptr_null(settings.filter);
	/* Trailing spaces are no part of the command either. */
	FILTER_SHOWS(p, "FILTER tr a b  ", "tr a b");
	FILTER_SHOWS(p, "FILTER - ", "NONE");
	ck_assert_ptr_null(settings.filter);
	free_peer(p);
}
END_TEST

/* A failed PASS is answered after ~1 s by a timer; others are served. */
START_TEST(test_failed_pass_delayed)
{
	struct peer *p = open_session(), *q;
	uint64_t t0, dt;

	EXPECT(p, GREETING);
	CMD(p, "USER admin", "+OK USER");
	t0 = selector_now_ms();
	SEND_LIT(p, "PASS wrong\r\nUSER admin\r\n");
	/* Meanwhile another session logs in and is answered. */
	q = login();
	CMD(q, "NOOP", "+OK NOOP");
	ck_assert_uint_lt(selector_now_ms() - t0, DELAY_MIN_MS);
	/* Not even the pipelined line is answered yet. */
	peer_read(p);
	ck_assert_uint_eq(p->len, p->pos);
	EXPECT_LATE(p, "-ERR WRONG PASSWORD");
	dt = selector_now_ms() - t0;
	ck_assert_uint_ge(dt, DELAY_MIN_MS);
	ck_assert_uint_lt(dt, DELAY_WAIT_MS);
	EXPECT(p, "+OK USER");
	/* One failure does not close the session. */
	CMD(p, "PASS " ADMIN_PW, "+OK PASS");
	CMD(p, "NOOP", "+OK NOOP");
	free_peer(q);
	free_peer(p);
}
END_TEST

START_TEST(test_pass_without_user)
{
	struct peer *p = open_session();
	uint64_t t0;

	EXPECT(p, GREETING);
	/* The right password, but no USER first: a failed attempt. */
	t0 = selector_now_ms();
	send_line(p, "PASS " ADMIN_PW);
	EXPECT_LATE(p, "-ERR WRONG PASSWORD");
	ck_assert_uint_ge(selector_now_ms() - t0, DELAY_MIN_MS);
	ck_assert_int_eq(live_sessions(), 1);
	CMD(p, "NOOP", "-ERR NOT AUTHENTICATED");
	CMD(p, "USER admin", "+OK USER");
	CMD(p, "PASS " ADMIN_PW, "+OK PASS");
	free_peer(p);
}
END_TEST

START_TEST(test_quit)
{
	struct peer *p = open_session(), *q;

	EXPECT(p, GREETING);
	SEND_LIT(p, "QUIT\r\nNOOP\r\n");
	EXPECT(p, "+OK GOODBYE");
	EXPECT_EOF(p);
	q = login();
	ck_assert_int_eq(live_sessions(), 1);
	SEND_LIT(q, "QUIT\r\nNOOP\r\n");
	EXPECT(q, "+OK GOODBYE");
	EXPECT_EOF(q);
	run_for(NULL, 10);
	ck_assert_int_eq(live_sessions(), 0);
	free_peer(q);
	free_peer(p);
}
END_TEST

/* ---- limits ---- */

/* "NOOP" padded with spaces to `octets` octets, line end included. */
static size_t
padded_noop(char *buf, size_t cap, size_t octets, bool crlf)
{
	ck_assert_uint_lt(octets, cap);
	memset(buf, ' ', octets);
	memcpy(buf, "NOOP", 4);
	if (crlf)
		buf[octets - 2] = '\r';
	buf[octets - 1] = '\n';
	buf[octets] = '\0';
	ck_assert_uint_eq(strlen(buf), octets);
	return octets;
}

START_TEST(test_line_length)
{
	struct peer *p = open_session();
	char buf[4096];
	size_t n;

	EXPECT(p, GREETING);
	/* 256 octets with CRLF, in AUTH: too long; the session goes on. */
	n = padded_noop(buf, sizeof(buf), POP3_MAX_LINE + 1, true);
	memcpy(buf, "USER admin", 10);
	send_raw(p, buf, n);
	EXPECT(p, "-ERR LINE TOO LONG");
	CMD(p, "USER admin", "+OK USER");
	CMD(p, "PASS " ADMIN_PW, "+OK PASS");

	/* 255 octets with CRLF: a command (trailing spaces are fine). */
	n = padded_noop(buf, sizeof(buf), POP3_MAX_LINE, true);
	send_raw(p, buf, n);
	EXPECT(p, "+OK NOOP");
	/* 256: too long, and the next command works. */
	n = padded_noop(buf, sizeof(buf), POP3_MAX_LINE + 1, true);
	send_raw(p, buf, n);
	EXPECT(p, "-ERR LINE TOO LONG");
	CMD(p, "NOOP", "+OK NOOP");
	/* The same limits with a bare LF. */
	n = padded_noop(buf, sizeof(buf), POP3_MAX_LINE, false);
	send_raw(p, buf, n);
	EXPECT(p, "+OK NOOP");
	n = padded_noop(buf, sizeof(buf), POP3_MAX_LINE + 1, false);
	send_raw(p, buf, n);
	EXPECT(p, "-ERR LINE TOO LONG");
	/* A 255-octet line that is not a command is not "too long". */
	n = padded_noop(buf, sizeof(buf), POP3_MAX_LINE, true);
	memset(buf, 'X', n - 2);
	send_raw(p, buf, n);
	EXPECT(p, "-ERR UNKNOWN COMMAND");
	SILENT(p, 20);

	/* Split over two writes, at the worst places. */
	n = padded_noop(buf, sizeof(buf), POP3_MAX_LINE, true);
	send_raw(p, buf, n - 1);
	SILENT(p, 30);
	send_raw(p, buf + n - 1, 1);
	EXPECT(p, "+OK NOOP");
	n = padded_noop(buf, sizeof(buf), POP3_MAX_LINE + 1, true);
	send_raw(p, buf, n - 1);
	run_for(p, 30);
	send_raw(p, buf + n - 1, 1);
	EXPECT(p, "-ERR LINE TOO LONG");
	SILENT(p, 20);

	/* Far longer than the input buffer: one error, tail ignored. */
	memset(buf, 'x', 3000);
	memcpy(buf + 3000 - 6, "QUIT\r\n", 6);
	memcpy(buf + 3000, "NOOP\r\n", 6);
	send_raw(p, buf, 3006);
	EXPECT(p, "-ERR LINE TOO LONG");
	EXPECT(p, "+OK NOOP");
	SILENT(p, 30);
	ck_assert_int_eq(live_sessions(), 1);
	free_peer(p);
}
END_TEST

START_TEST(test_nul_byte)
{
	struct peer *p = open_session();

	EXPECT(p, GREETING);
	SEND_LIT(p, "USER admin\0\r\n");
	EXPECT(p, "-ERR NUL BYTE IN COMMAND");
	SEND_LIT(p, "USER ad\0min\r\nUSER admin\r\n");
	EXPECT(p, "-ERR NUL BYTE IN COMMAND");
	EXPECT(p, "+OK USER");
	CMD(p, "PASS " ADMIN_PW, "+OK PASS");
	SEND_LIT(p, "\0\r\nNO\0OP\nNOOP\r\n");
	EXPECT(p, "-ERR NUL BYTE IN COMMAND");
	EXPECT(p, "-ERR NUL BYTE IN COMMAND");
	EXPECT(p, "+OK NOOP");
	/* Nothing after the NUL was taken for an argument. */
	SEND_LIT(p, "MAX_CONNEC 5\0 0\r\n");
	EXPECT(p, "-ERR NUL BYTE IN COMMAND");
	ck_assert_uint_eq(settings.max_conn, 100);
	SILENT(p, 20);
	free_peer(p);
}
END_TEST

START_TEST(test_max_users_bounds)
{
	struct peer *p = login();
	struct users *v;

	/* One user exists (admin): below 1 is refused, 1 is fine. */
	CMD(p, "MAX_USERS 0", "-ERR INVALID MAX USERS");
	send_line(p, "MAX_USERS 1");
	EXPECT(p, "+OK MAX_USERS");
	EXPECT(p, "MAX USERS CHANGED SUCCESSFULLY");
	EXPECT(p, ".");
	ck_assert_uint_eq(users_max(users), 1);
	CMD(p, "ADD_USER bob bobpw", "-ERR MAX USERS REACHED");
	send_line(p, "MAX_USERS 2");
	EXPECT(p, "+OK MAX_USERS");
	EXPECT(p, "MAX USERS CHANGED SUCCESSFULLY");
	EXPECT(p, ".");
	send_line(p, "ADD_USER bob bobpw");
	EXPECT(p, "+OK ADD_USER");
	EXPECT(p, "USER ADDED SUCCESSFULLY");
	EXPECT(p, ".");
	/* Two users: fewer than that is refused, exactly that is fine. */
	CMD(p, "MAX_USERS 1", "-ERR INVALID MAX USERS");
	ck_assert_uint_eq(users_max(users), 2);
	send_line(p, "MAX_USERS 2");
	EXPECT(p, "+OK MAX_USERS");
	EXPECT(p, "MAX USERS CHANGED SUCCESSFULLY");
	EXPECT(p, ".");
	/* The top (documented as 10^9). */
	send_line(p, "MAX_USERS 1000000000");
	EXPECT(p, "+OK MAX_USERS");
	EXPECT(p, "MAX USERS CHANGED SUCCESSFULLY");
	EXPECT(p, ".");
	CMD(p, "MAX_USERS 1000000001", "-ERR INVALID MAX USERS");
	ck_assert_uint_eq(users_max(users), 1000000000);
	v = reload();
	ck_assert_uint_eq(users_setting(v, SETTING_MAX_USERS, 0),
	    1000000000);
	ck_assert_uint_eq(users_count(v), 2);
	users_free(v);
	free_peer(p);
}
END_TEST

START_TEST(test_max_connec_bounds)
{
	struct peer *p = login();
	struct users *v;

	ck_assert_uint_eq(settings.conn_ceiling, 1000);
	CMD(p, "MAX_CONNEC 0", "-ERR INVALID MAX CONNECTIONS");
	CMD(p, "MAX_CONNEC 1001", "-ERR INVALID MAX CONNECTIONS");
	ck_assert_uint_eq(settings.max_conn, 100);
	v = reload();
	ck_assert_uint_eq(users_setting(v, SETTING_MAX_CONN, 0), 0);
	users_free(v);
	CMD(p, "MAX_CONNEC 1000", "+OK MAX_CONNEC CHANGED");
	ck_assert_uint_eq(settings.max_conn, 1000);
	v = reload();
	ck_assert_uint_eq(users_setting(v, SETTING_MAX_CONN, 0), 1000);
	users_free(v);
	CMD(p, "MAX_CONNEC 1", "+OK MAX_CONNEC CHANGED");
	ck_assert_uint_eq(settings.max_conn, 1);
	/* The ceiling is the server's, read at each command. */
	settings.conn_ceiling = 1500;
	CMD(p, "MAX_CONNEC 1500", "+OK MAX_CONNEC CHANGED");
	CMD(p, "MAX_CONNEC 1501", "-ERR INVALID MAX CONNECTIONS");
	ck_assert_uint_eq(settings.max_conn, 1500);
	v = reload();
	ck_assert_uint_eq(users_setting(v, SETTING_MAX_CONN, 0), 1500);
	users_free(v);
	free_peer(p);
}
END_TEST

START_TEST(test_idle_timeout_bounds)
{
	struct peer *p = login();

	CMD(p, "IDLE_TIMEOUT 9", "-ERR INVALID IDLE TIMEOUT");
	ck_assert_int_eq(rec.idle_calls, 0);
	ck_assert_uint_eq(settings.idle_s, 600);
	CMD(p, "IDLE_TIMEOUT 10", "+OK IDLE_TIMEOUT CHANGED");
	ck_assert_int_eq(rec.idle_calls, 1);
	ck_assert_uint_eq(settings.idle_s, 10);
	CMD(p, "IDLE_TIMEOUT 86400", "+OK IDLE_TIMEOUT CHANGED");
	ck_assert_int_eq(rec.idle_calls, 2);
	ck_assert_uint_eq(settings.idle_s, 86400);
	CMD(p, "IDLE_TIMEOUT 86401", "-ERR INVALID IDLE TIMEOUT");
	ck_assert_int_eq(rec.idle_calls, 2);
	ck_assert_uint_eq(settings.idle_s, 86400);
	free_peer(p);
}
END_TEST

START_TEST(test_timeout_bounds)
{
	struct peer *p = login(), *q = login();

	CMD(p, "TIMEOUT 0", "-ERR INVALID TIMEOUT");
	CMD(p, "TIMEOUT 3601", "-ERR INVALID TIMEOUT");
	ck_assert_int_eq(rec.pause_calls, 0);

	/*
	 * TIMEOUT 1: the pause starts now, the answer comes when the
	 * server says the pause is over, not after the session's own
	 * second (another TIMEOUT may have made it longer).
	 */
	SEND_LIT(p, "TIMEOUT 1\r\nNOOP\r\n");
	run_for(p, 100);
	ck_assert_int_eq(rec.pause_calls, 1);
	ck_assert_uint_eq(rec.pause_arg, 1);
	SILENT(p, 1500);
	CMD(q, "NOOP", "+OK NOOP");	/* other sessions go on */
	mgmt_pause_over();
	EXPECT(p, "+OK TIMEOUT COMPLETED");
	/* The pipelined command waited for it. */
	EXPECT(p, "+OK NOOP");
	SILENT(q, 100);			/* it was not waiting */
	ck_assert_int_eq(rec.pause_calls, 1);
	free_peer(q);

	/* TIMEOUT 3600 is accepted: paused, no answer for now. */
	send_line(p, "TIMEOUT 3600");
	SILENT(p, 100);
	ck_assert_int_eq(rec.pause_calls, 2);
	ck_assert_uint_eq(rec.pause_arg, 3600);
	ck_assert_int_eq(live_sessions(), 1);
	free_peer(p);
}
END_TEST

/*
 * A pause the server cannot time (no memory for its timer) is not
 * started: the administrator is told at once, never "+OK TIMEOUT
 * COMPLETED" for a pause that did not happen, and the session goes on.
 */
START_TEST(test_timeout_not_started)
{
	struct peer *p = login();

	rec.pause_fails = true;
	CMD(p, "TIMEOUT 1", "-ERR [SYS/TEMP] OUT OF MEMORY");
	ck_assert_int_eq(rec.pause_calls, 1);
	SILENT(p, 1500);
	CMD(p, "NOOP", "+OK NOOP");
	free_peer(p);
}
END_TEST

/* Values with a sign, spaces or junk are refused; nothing changes. */
START_TEST(test_numbers_strict)
{
	static const char *const junk[] = {
		"+50", "-50", "50x", "x50", "0x32", "5e1", "50.0", "\t50",
		"50\t", "\xef\xbc\x95", "99999999999999999999999999",
		"18446744073709551666", "-0", "+",
	};
	static const char *const cmds[][2] = {
		{ "MAX_USERS", "-ERR INVALID MAX USERS" },
		{ "MAX_CONNEC", "-ERR INVALID MAX CONNECTIONS" },
		{ "IDLE_TIMEOUT", "-ERR INVALID IDLE TIMEOUT" },
		{ "TIMEOUT", "-ERR INVALID TIMEOUT" },
	};
	struct peer *p = login();
	char line[256];
	struct users *v;

	for (size_t c = 0; c < sizeof(cmds) / sizeof(cmds[0]); c++) {
		for (size_t j = 0; j < sizeof(junk) / sizeof(junk[0]); j++) {
			(void)snprintf(line, sizeof(line), "%s %s",
			    cmds[c][0], junk[j]);
			CMD(p, line, cmds[c][1]);
		}
		/* A space inside the number makes two arguments. */
		(void)snprintf(line, sizeof(line), "%s 5 0", cmds[c][0]);
		CMD(p, line, "-ERR WRONG NUMBER OF ARGUMENTS");
	}
	ck_assert_uint_eq(users_max(users), DEFAULT_MAX_USERS);
	ck_assert_uint_eq(settings.max_conn, 100);
	ck_assert_uint_eq(settings.idle_s, 600);
	ck_assert_int_eq(rec.idle_calls, 0);
	ck_assert_int_eq(rec.pause_calls, 0);
	v = reload();
	ck_assert_uint_eq(users_setting(v, SETTING_MAX_USERS, 0), 0);
	ck_assert_uint_eq(users_setting(v, SETTING_MAX_CONN, 0), 0);
	ck_assert_uint_eq(users_setting(v, SETTING_IDLE, 0), 0);
	users_free(v);
	CMD(p, "NOOP", "+OK NOOP");
	free_peer(p);
}
END_TEST

/* Three failed attempts close the session; a failed PASS forgets USER. */
START_TEST(test_three_failures_close)
{
	struct peer *p = open_session();
	uint64_t t0, t1, t2, t3;

	EXPECT(p, GREETING);
	t0 = selector_now_ms();
	send_line(p, "USER admin");
	send_line(p, "PASS bad1");		/* 1 */
	send_line(p, "PASS " ADMIN_PW);	/* 2: the user was forgotten */
	send_line(p, "USER admin");
	send_line(p, "PASS bad3");		/* 3 */
	send_line(p, "USER admin");		/* never answered */
	EXPECT(p, "+OK USER");
	EXPECT_LATE(p, "-ERR WRONG PASSWORD");
	t1 = selector_now_ms();
	EXPECT_LATE(p, "-ERR WRONG PASSWORD");
	t2 = selector_now_ms();
	EXPECT(p, "+OK USER");
	EXPECT_LATE(p, "-ERR WRONG PASSWORD");
	t3 = selector_now_ms();
	EXPECT_EOF(p);
	ck_assert_uint_ge(t1 - t0, DELAY_MIN_MS);
	ck_assert_uint_ge(t2 - t1, DELAY_MIN_MS);
	ck_assert_uint_ge(t3 - t2, DELAY_MIN_MS);
	run_for(NULL, 10);
	ck_assert_int_eq(live_sessions(), 0);
	free_peer(p);
}
END_TEST

/*
 * check_users.c's hooks: the next save's temporary file fails with the
 * first; the sync of a folder fails with the second.
 */
extern int fail_mkstemp_errno, fail_dir_fsync_errno;

/* A failed save answers -ERR and leaves memory as the file says. */
START_TEST(test_save_failure)
{
	struct peer *p = login();
	struct users *v;

	/* The temporary file cannot be created: the save fails. */
	fail_mkstemp_errno = EEXIST;
	CMD(p, "ADD_USER dave davepw",
	    "-ERR [SYS/TEMP] CANNOT SAVE THE USERS FILE");
	ck_assert(!users_exists(users, "dave"));
	CMD(p, "MAX_CONNEC 5", "-ERR [SYS/TEMP] CANNOT SAVE THE USERS FILE");
	ck_assert_uint_eq(settings.max_conn, 100);
	CMD(p, "IDLE_TIMEOUT 30",
	    "-ERR [SYS/TEMP] CANNOT SAVE THE USERS FILE");
	ck_assert_uint_eq(settings.idle_s, 600);
	ck_assert_int_eq(rec.idle_calls, 0);
	CMD(p, "MAX_USERS 7", "-ERR [SYS/TEMP] CANNOT SAVE THE USERS FILE");
	ck_assert_uint_eq(users_max(users), DEFAULT_MAX_USERS);
	CMD(p, "CHANGE_PASSWORD " ADMIN_PW " other",
	    "-ERR [SYS/TEMP] CANNOT SAVE THE USERS FILE");
	ck_assert(users_verify(users, "admin", ADMIN_PW));
	/* With the obstacle gone the same commands work. */
	fail_mkstemp_errno = 0;
	send_line(p, "ADD_USER dave davepw");
	EXPECT(p, "+OK ADD_USER");
	EXPECT(p, "USER ADDED SUCCESSFULLY");
	EXPECT(p, ".");
	CMD(p, "MAX_CONNEC 5", "+OK MAX_CONNEC CHANGED");
	v = reload();
	ck_assert(users_exists(v, "dave"));
	ck_assert_uint_eq(users_setting(v, SETTING_MAX_CONN, 0), 5);
	users_free(v);
	free_peer(p);
}
END_TEST

/*
 * Once the rename is done the change is on disk and in effect: a folder
 * that cannot be synced after it is logged, not answered -ERR (which
 * would undo in memory what the file already holds).
 */
START_TEST(test_save_unsynced_is_ok)
{
	struct peer *p = login();
	struct users *v;

	fail_dir_fsync_errno = EIO;
	send_line(p, "ADD_USER erin erinpw");
	EXPECT(p, "+OK ADD_USER");
	EXPECT(p, "USER ADDED SUCCESSFULLY");
	EXPECT(p, ".");
	fail_dir_fsync_errno = 0;
	ck_assert(users_exists(users, "erin"));
	v = reload();
	ck_assert(users_exists(v, "erin"));
	users_free(v);
	free_peer(p);
}
END_TEST

Suite *mgmt_suite(void);

Suite *
mgmt_suite(void)
{
	Suite *s = suite_create("mgmt");
	TCase *core = tcase_create("core");
	TCase *limits = tcase_create("limits");

	tcase_set_timeout(core, 10);
	tcase_set_timeout(limits, 10);
	tcase_add_unchecked_fixture(core, base_setup, base_teardown);
	tcase_add_unchecked_fixture(limits, base_setup, base_teardown);
	tcase_add_checked_fixture(core, setup, teardown);
	tcase_add_checked_fixture(limits, setup, teardown);

	tcase_add_test(core, test_greeting);
	tcase_add_test(core, test_user);
	tcase_add_test(core, test_pass_right);
	tcase_add_test(core, test_gone_while_pass_queued);
	tcase_add_test(core, test_pass_extra_spaces);
	tcase_add_test(core, test_case_insensitive);
	tcase_add_test(core, test_unknown_command);
	tcase_add_test(core, test_wrong_state);
	tcase_add_test(core, test_wrong_number_of_args);
	tcase_add_test(core, test_multiple_spaces);
	tcase_add_test(core, test_bare_lf);
	tcase_add_test(core, test_pipelined);
	tcase_add_test(core, test_capa);
	tcase_add_test(core, test_status);
	tcase_add_test(core, test_users_listing);
	tcase_add_test(core, test_idle_timeout_applies);
	tcase_add_test(core, test_add_user_persists);
	tcase_add_test(core, test_delete_user);
	tcase_add_test(core, test_passwords);
	tcase_add_test(core, test_filter);
	tcase_add_test(core, test_filter_after_spaces);
	tcase_add_test(core, test_filter_control_characters_refused);
	tcase_add_test(core, test_failed_pass_delayed);
	tcase_add_test(core, test_pass_without_user);
	tcase_add_test(core, test_quit);
	suite_add_tcase(s, core);

	tcase_add_test(limits, test_line_length);
	tcase_add_test(limits, test_nul_byte);
	tcase_add_test(limits, test_add_user_refused);
	tcase_add_test(limits, test_max_users_bounds);
	tcase_add_test(limits, test_max_connec_bounds);
	tcase_add_test(limits, test_idle_timeout_bounds);
	tcase_add_test(limits, test_timeout_bounds);
	tcase_add_test(limits, test_timeout_not_started);
	tcase_add_test(limits, test_numbers_strict);
	tcase_add_test(limits, test_three_failures_close);
	tcase_add_test(limits, test_save_failure);
	tcase_add_test(limits, test_save_unsynced_is_ok);
	suite_add_tcase(s, limits);
	return s;
}
