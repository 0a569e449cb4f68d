/*
 * libFuzzer harness (b): the MGMT session, driven in-process by
 * arbitrary client bytes (see fuzz_session.c).  "<<CLIENT>>" starts
 * another administrator session running at the same time (three at
 * most).  When the input mentions DELETE_USER, a POP3 client logged in
 * as alice stays connected meanwhile, so deleting her kicks a live
 * session.
 *
 * The users file lives in the harness's temporary folder and is put
 * back before every run, as are the live settings, so commands that
 * change the administrator's password, remove users or set a filter
 * cannot spoil later runs.  TIMEOUT's pause is a stub that ends at
 * once.
 *
 * Checked on every run, beyond the sanitizers:
 *   - every LF the server sends is part of a CRLF;
 *   - the users file on disk always loads and matches the store in
 *     memory (every change is saved before its +OK, or undone), and
 *     the live settings match the saved ones;
 *   - a client that stays connected and quiet is logged out by the
 *     idle timeout (half of the runs; the POP3 session too), even when
 *     it has stopped reading (one client in four stops early);
 *   - no session, lock or descriptor outlives the run.
 */
#define _GNU_SOURCE	/* memmem */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conn.h"
#include "mgmt.h"
#include "pop3.h"

#include "fuzz_session.h"

#define MAX_CLIENTS	3
#define MARKER		"<<CLIENT>>"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fuzz_world world;
static struct mgmt_env menv;
static struct pop3_env penv;

static const char victim_login[] =
    "USER " FUZZ_ALICE "\r\nPASS " FUZZ_ALICE_PASS "\r\n";
static const char *const victim_watch[] = { "+OK maildrop has", NULL };

static void
set_idle(struct conn *c, void *arg)
{
	(void)arg;
	if (c->count_stats)
		conn_set_idle(c, (uint64_t)world.settings.idle_s * 1000);
}

/* As server.c does: the new idle timeout reaches open POP3 sessions. */
static void
apply_idle(void)
{
	conn_foreach(set_idle, NULL);
}

/*
 * The POP3 service pause is the server's business; its end comes at
 * once (fast-forwarded), and answers the TIMEOUTs waiting for it, as
 * the server's timer does.
 */
static struct sel_timer pause_timer;

static void
on_pause_end(struct selector *s, void *data)
{
	(void)s;
	(void)data;
	mgmt_pause_over();
}

static bool
pause_pop3(unsigned seconds)
{
	(void)seconds;
	return selector_timer_arm(world.sel, &pause_timer, 0, on_pause_end,
	    NULL) == SELECTOR_OK;
}

static int
start_mgmt(int fd, void *arg)
{
	return mgmt_session_new(arg, fd, "fuzz");
}

static int
start_pop3(int fd, void *arg)
{
	return pop3_session_new(arg, fd, "fuzz-victim");
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_world_init(&world);
	menv.sel = world.sel;
	menv.users = world.users;
	menv.settings = &world.settings;
	menv.apply_idle = apply_idle;
	menv.pause = pause_pop3;
	penv.sel = world.sel;
	penv.users = world.users;
	penv.mail_root = world.mail_root;
	penv.settings = &world.settings;
	snprintf(penv.hostname, sizeof(penv.hostname), "fuzz.invalid");
	return 0;
}

static void
reset_settings(void)
{
	free(world.settings.filter);
	world.settings.filter = NULL;
	world.settings.max_conn = 50;
	world.settings.conn_ceiling = 100;
	world.settings.idle_s = 600;
	world.settings.filter_limit_s = 30;
}

static bool
mentions(const uint8_t *data, size_t size, const char *word)
{
	size_t len = strlen(word);

	for (size_t i = 0; i + len <= size; i++)
		if (strncasecmp((const char *)data + i, word, len) == 0)
			return true;
	return false;
}

static bool
same_text(const char *a, const char *b)
{
	return (a == NULL && b == NULL) ||
	    (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* The file must load and say what the store and settings say. */
static void
check_saved_state(void)
{
	static const char *const keys[] = { "max_users", "max_connections",
	    "idle_timeout", NULL };
	struct users *disk;
	const char *saved;
	unsigned line;

	if (users_load(world.users_path, &disk, &line) != USERS_OK)
		fuzz_fail("MGMT saved a users file that does not load");
	if (users_count(disk) != users_count(world.users))
		fuzz_fail("users file and store disagree on the count");
	for (size_t i = 0; i < users_count(disk); i++)
		if (strcmp(users_name_at(disk, i),
		    users_name_at(world.users, i)) != 0)
			fuzz_fail("users file and store disagree on a name");
	for (size_t i = 0; keys[i] != NULL; i++)
		if (users_setting(disk, keys[i], 7) !=
		    users_setting(world.users, keys[i], 7))
			fuzz_fail("users file and store disagree on a setting");
	saved = users_setting_text(disk, "filter");
	/* "-" is a saved removal: no filter in force. */
	if (saved != NULL && strcmp(saved, "-") == 0)
		saved = NULL;
	if (!same_text(users_setting_text(disk, "filter"),
	    users_setting_text(world.users, "filter")) ||
	    !same_text(saved, world.settings.filter))
		fuzz_fail("the filter in force is not the one saved");
	if (users_setting(disk, "idle_timeout", 600) != world.settings.idle_s ||
	    users_setting(disk, "max_connections", 50) !=
	    world.settings.max_conn)
		fuzz_fail("the settings in force are not the ones saved");
	if (!users_exists(disk, FUZZ_ADMIN))
		fuzz_fail("the administrator account was removed");
	users_free(disk);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_peer peers[MAX_CLIENTS + 1];
	const size_t mlen = sizeof(MARKER) - 1;
	uint64_t seed = fuzz_hash(data, size);
	size_t n = 0, start = 0;
	bool linger = (seed >> 20) & 1;

	fuzz_begin(&world);
	selector_timer_cancel(world.sel, &pause_timer);	/* a run's own */
	fuzz_users_reset(&world);
	reset_settings();
	fuzz_maildrop_restore(&world);

	if (mentions(data, size, "DELETE_USER")) {
		/* alice logs in first and stays: DELETE_USER kicks her. */
		fuzz_peer_open(&peers[0], start_pop3, &penv, 0);
		peers[0].in = (const uint8_t *)victim_login;
		peers[0].in_len = sizeof(victim_login) - 1;
		peers[0].keep_open = true;
		peers[0].watch = victim_watch;
		fuzz_converse(&world, peers, 1, seed);
		if (peers[0].seen == 0)
			fuzz_fail("the fixture login failed");
		n = 1;
	}
	for (size_t clients = 0;; clients++) {
		const uint8_t *m = NULL;
		size_t end;

		if (clients + 1 < MAX_CLIENTS)
			m = memmem(data + start, size - start, MARKER, mlen);
		end = m != NULL ? (size_t)(m - data) : size;
		fuzz_peer_open(&peers[n], start_mgmt, &menv,
		    (seed >> (8 + n)) & 1 ? 4096 : 0);
		peers[n].in = data + start;
		peers[n].in_len = end - start;
		peers[n].keep_open = linger;
		if (((seed >> (24 + 2 * n)) & 3) == 0)
			peers[n].read_limit = 1 + (seed >> 32) % 4000;
		n++;
		if (m == NULL)
			break;
		start = end + mlen;
	}
	fuzz_converse(&world, peers, n, seed);
	if (linger)
		fuzz_idle_out(&world, peers, n);
	fuzz_finish(&world, peers, n);

	for (size_t i = 0; i < n; i++)
		if (peers[i].bare_lf)
			fuzz_fail("the server sent an LF without CR");
	check_saved_state();
	return 0;
}
