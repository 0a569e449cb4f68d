/*
 * Shared by the POP3 and MGMT fuzz harnesses: a private world built
 * once per process (a reactor, a users store in a temporary folder, a
 * fixture maildrop) and a driver that feeds client bytes into real
 * sessions over socketpairs, in chunks, interleaved with reactor
 * passes, reading everything the server answers.  Not part of the
 * server; never linked into it.
 */
#ifndef POP3D_FUZZ_SESSION_H
#define POP3D_FUZZ_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "selector.h"
#include "settings.h"
#include "users.h"

/* The fixture accounts; the seed corpora log in with these. */
#define FUZZ_ALICE		"alice"
#define FUZZ_ALICE_PASS		"wonderland"
#define FUZZ_ADMIN		"admin"
#define FUZZ_ADMIN_PASS		"s3cret"

/* Output kept to match watched strings across reads (longest + 1). */
#define FUZZ_TAIL		64

struct fuzz_world {
	struct selector *sel;
	struct users *users;
	struct settings settings;
	char dir[256];			/* mkdtemp(): everything lives here */
	char mail_root[320];
	char users_path[320];
	char *users_text;		/* the pristine users file */
	size_t users_len;
	int fd_floor;			/* lowest free descriptor at run start */
};

/* Builds the world (aborts on any failure); removed at exit. */
void fuzz_world_init(struct fuzz_world *w);

/* Starts a run: notes the descriptors open now (see fuzz_finish). */
void fuzz_begin(struct fuzz_world *w);

/* Rewrites the users file as built and reloads the store from it. */
void fuzz_users_reset(struct fuzz_world *w);

/*
 * Puts alice's maildrop back as built if anything moved.  Returns true
 * when no fixture message had been removed (a message moved from new/
 * to cur/ by a login does not count as removed).
 */
bool fuzz_maildrop_restore(struct fuzz_world *w);

/* One client of a session under test: our end of the socketpair. */
struct fuzz_peer {
	int fd;				/* -1 once closed */
	const uint8_t *in;		/* what the client sends */
	size_t in_len, in_off;
	bool keep_open;			/* never SHUT_WR: a client that stays */
	bool shut;			/* SHUT_WR done after the last byte */
	bool eof;			/* the server closed its end */
	uint64_t read_limit;		/* stop reading after this (0: never) */
	uint64_t got;			/* bytes the server sent */
	bool last_cr;			/* the last byte received was CR */
	bool bare_lf;			/* an LF without its CR was received */
	const char *const *watch;	/* NULL-terminated strings to spot */
	unsigned seen;			/* bit i: watch[i] was received */
	char tail[FUZZ_TAIL];		/* end of the output, for matching */
	size_t tail_len;
};

/*
 * Opens a socketpair and hands its server end to start(fd, arg) (for
 * example pop3_session_new).  sndbuf > 0 shrinks the server end's send
 * buffer so output takes several writes.  Aborts on failure.
 */
void fuzz_peer_open(struct fuzz_peer *p, int (*start)(int fd, void *arg),
    void *arg, int sndbuf);

/*
 * Runs the conversation: every peer sends its input in chunks of sizes
 * drawn from `seed`, then shuts its write side; reactor passes run in
 * between and all output is read.  Timers that delay a reply (failed
 * logins, a failed CHANGE_PASSWORD) are fast-forwarded.  Stops when no session is
 * left or nothing moves any more.
 */
void fuzz_converse(struct fuzz_world *w, struct fuzz_peer *peers,
    size_t npeers, uint64_t seed);

/*
 * Makes every session's idle timeout due now (as if the client had
 * gone quiet for idle_s), then keeps the conversation going until the
 * sessions have said goodbye, letting the time pass again for a
 * goodbye that cannot be flushed; aborts if a session does not end.
 */
void fuzz_idle_out(struct fuzz_world *w, struct fuzz_peer *peers,
    size_t npeers);

/*
 * Ends the run: closes the peers, destroys every session still open,
 * empties the login queue, and aborts if a session, a maildrop lock or
 * a descriptor outlived it.
 */
void fuzz_finish(struct fuzz_world *w, struct fuzz_peer *peers,
    size_t npeers);

/* True when the peer stopped reading with output still to come. */
bool fuzz_peer_stopped(const struct fuzz_peer *p);

/* Number of live (not closing) conns. */
size_t fuzz_live_conns(void);

/* FNV-1a of the input: a deterministic seed for the chunking. */
uint64_t fuzz_hash(const uint8_t *data, size_t n);

/*
 * Creates a private folder <tmpfs or TMPDIR>/<tag>.<pid>.XXXXXX into
 * dir, removed at exit (the first one made); folders left by crashed
 * runs of the same tag are removed first.  Aborts on failure.
 */
void fuzz_make_tempdir(char *dir, size_t cap, const char *tag);

/* Prints a reason and aborts (libFuzzer records the input). */
void fuzz_fail(const char *what) __attribute__((noreturn));

#endif
