/*
 * libFuzzer harness (a): the POP3 session, driven in-process by
 * arbitrary client bytes over the fixture maildrop (see
 * fuzz_session.c).  The input is what the client sends; the marker
 * "<<CLIENT>>" starts another client running at the same time (three
 * at most), so lock conflicts and the login cache are reached too.
 *
 * Checked on every run, beyond the sanitizers:
 *   - every LF the server sends is part of a CRLF;
 *   - no fixture message disappears unless a session reached UPDATE
 *     (checked when every client read all it was sent);
 *   - a client that stays connected and quiet is logged out by the
 *     idle timeout, whatever the session's state (half of the runs),
 *     even when it has stopped reading (one client in four stops after
 *     a number of bytes drawn from the input's hash).
 *   - no session, maildrop lock or descriptor outlives the run.
 */
#define _GNU_SOURCE	/* memmem */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "pop3.h"

#include "fuzz_session.h"

#define MAX_CLIENTS	3
#define MARKER		"<<CLIENT>>"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fuzz_world world;
static struct pop3_env env;

/* What tells that a session went through UPDATE. */
static const char *const update_lines[] = {
	"signing off (",		/* +OK ... signing off (N messages left) */
	"not every message could be deleted (",
	NULL,
};

static int
start_pop3(int fd, void *arg)
{
	return pop3_session_new(arg, fd, "fuzz");
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_world_init(&world);
	env.sel = world.sel;
	env.users = world.users;
	env.mail_root = world.mail_root;
	env.settings = &world.settings;
	snprintf(env.hostname, sizeof(env.hostname), "fuzz.invalid");
	return 0;
}

/* Splits the input at the markers into at most MAX_CLIENTS clients. */
static size_t
split_clients(const uint8_t *data, size_t size, struct fuzz_peer *peers,
    uint64_t seed)
{
	const size_t mlen = sizeof(MARKER) - 1;
	size_t n = 0, start = 0;

	for (;;) {
		const uint8_t *m = NULL;
		size_t end;

		if (n + 1 < MAX_CLIENTS)
			m = memmem(data + start, size - start, MARKER, mlen);
		end = m != NULL ? (size_t)(m - data) : size;
		/* Every other run, a small send buffer: output in pieces. */
		fuzz_peer_open(&peers[n], start_pop3, &env,
		    (seed >> (8 + n)) & 1 ? 4096 : 0);
		peers[n].in = data + start;
		peers[n].in_len = end - start;
		peers[n].watch = update_lines;
		peers[n].keep_open = (seed >> 20) & 1;
		if (((seed >> (24 + 2 * n)) & 3) == 0)
			peers[n].read_limit = 1 + (seed >> 32) % 60000;
		n++;
		if (m == NULL)
			return n;
		start = end + mlen;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_peer peers[MAX_CLIENTS];
	uint64_t seed = fuzz_hash(data, size);
	bool updated = false, stopped = false, intact;
	size_t n;

	/* Same start every run: no cached login, all messages there. */
	fuzz_begin(&world);
	fuzz_users_reset(&world);
	fuzz_maildrop_restore(&world);

	n = split_clients(data, size, peers, seed);
	fuzz_converse(&world, peers, n, seed);
	if (peers[0].keep_open)
		fuzz_idle_out(&world, peers, n);
	fuzz_finish(&world, peers, n);

	for (size_t i = 0; i < n; i++) {
		if (peers[i].bare_lf)
			fuzz_fail("the server sent an LF without CR");
		if (peers[i].seen != 0)
			updated = true;
		if (fuzz_peer_stopped(&peers[i]))
			stopped = true;
	}
	intact = fuzz_maildrop_restore(&world);
	/* A client that stopped reading may have missed the UPDATE reply. */
	if (!intact && !updated && !stopped)
		fuzz_fail("a message was removed without UPDATE (RFC 1939 6)");
	return 0;
}
