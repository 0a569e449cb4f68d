/*
 * The in-process session driver shared by fuzz_pop3 and fuzz_mgmt.  It
 * plays the part of server.c (one reactor, the pass loop of
 * server_run) and of the clients (socketpairs written in chunks and
 * read to the end), so the real conn, POP3 and MGMT code runs exactly
 * as in the daemon, minus the listeners.  Everything it creates lives
 * in one temporary folder removed at exit.
 */
#define _GNU_SOURCE	/* memmem */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <crypt.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "lock.h"
#include "log.h"
#include "pop3.h"
#include "stats.h"
#include "verify.h"

#include "fuzz_session.h"

/* Reactor passes without any progress before the run is called stuck. */
#define STALL_PASSES	8
/*
 * Passes one run may take at most.  Each pass moves a chunk of input or
 * up to a stream slice of output, so a finite input never needs this
 * many; reaching it means a session that never ends (a livelock).
 */
#define MAX_PASSES	200000
/* Reactor capacity: sessions, message files, the log. */
#define SEL_CAPACITY	1024

/*
 * The fixture maildrop of alice: small messages for each case the
 * encoder and the sizes must get right, plus one large message made at
 * start-up so RETR needs several stream slices.
 */
struct fixture {
	const char *name;
	const char *text;		/* NULL: the generated large message */
	size_t len;
};

#define MSG(name, text) { name, text, sizeof(text) - 1 }

static const struct fixture cur_msgs[] = {
	MSG("1700000001.M1P1.fuzz:2,",
	    "From: bob@example.org\nTo: alice@example.org\n"
	    "Subject: hello\n\nHi Alice,\nhow are you?\n\n-- \nBob\n"),
	MSG("1700000002.M2P1.fuzz:2,",
	    "Subject: dots\n\n.x\n.\n..\n...\nmiddle\n.\n"),
	MSG("1700000003.M3P1.fuzz:2,S",
	    "Subject: crlf\r\n\r\nline one\r\nline two\r\n.dot\r\n"),
	MSG("1700000004.M4P1.fuzz:2,",
	    "Subject: partial\n\nno newline at the end"),
	MSG("1700000005.M5P1.fuzz:2,", "Subject: empty body\nX-A: b\n\n"),
	MSG("1700000006.M6P1.fuzz:2,", ""),
	{ "1700000007.M7P1.fuzz:2,", NULL, 0 },
};
#define NCUR (sizeof(cur_msgs) / sizeof(cur_msgs[0]))

/* In new/: moved to cur/ (":2," added) by the first login. */
static const struct fixture new_msg =
    MSG("1700000008.M8P1.fuzz",
	"Subject: 8bit \xe9\n\ncaf\xc3\xa9 \x80\xff\nbare\rcr\n.\r\n");

static char *big_text;
static size_t big_len;
static char fuzz_dir[256];

void
fuzz_fail(const char *what)
{
	fprintf(stderr, "fuzz: invariant broken: %s\n", what);
	abort();
}

uint64_t
fuzz_hash(const uint8_t *data, size_t n)
{
	uint64_t h = UINT64_C(0xcbf29ce484222325);

	for (size_t i = 0; i < n; i++) {
		h ^= data[i];
		h *= UINT64_C(0x100000001b3);
	}
	return h;
}

/* xorshift64*: the chunk sizes of one run, reproducible from its input. */
static uint64_t
next_rand(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * UINT64_C(0x2545F4914F6CDD1D);
}

static void
make_path(char *buf, size_t cap, const char *a, const char *b)
{
	int n = snprintf(buf, cap, "%s/%s", a, b);

	if (n < 0 || (size_t)n >= cap)
		fuzz_fail("path too long");
}

static void
make_dir(const char *path)
{
	if (mkdir(path, 0700) == -1 && errno != EEXIST)
		fuzz_fail("mkdir");
}

static void
write_file(const char *path, const char *text, size_t len, time_t mtime)
{
	struct timespec ts[2];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd == -1)
		fuzz_fail("cannot create a fixture file");
	while (len > 0) {
		ssize_t n = write(fd, text, len);

		if (n <= 0)
			fuzz_fail("cannot write a fixture file");
		text += n;
		len -= (size_t)n;
	}
	/* Delivery order is by mtime: fixed, so every run sees one order. */
	ts[0].tv_sec = ts[1].tv_sec = mtime;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	if (futimens(fd, ts) == -1 || close(fd) == -1)
		fuzz_fail("cannot finish a fixture file");
}

static char *
read_whole(const char *path, size_t *len)
{
	struct stat st;
	char *buf;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd == -1 || fstat(fd, &st) == -1)
		fuzz_fail("cannot read a file back");
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL)
		fuzz_fail("out of memory");
	n = read(fd, buf, (size_t)st.st_size);
	if (n != st.st_size)
		fuzz_fail("short read");
	close(fd);
	buf[n] = '\0';
	*len = (size_t)n;
	return buf;
}

/*
 * About 40 KiB: long and short lines, dot lines every so often, some
 * CRLF, one line longer than a stream slice of the small buffer.
 */
static void
make_big(void)
{
	size_t cap = 48 * 1024, n = 0;

	big_text = malloc(cap);
	if (big_text == NULL)
		fuzz_fail("out of memory");
	n += (size_t)snprintf(big_text, cap, "Subject: big\n\n");
	for (unsigned i = 0; n + 200 < cap - 6000; i++) {
		if (i % 7 == 0)
			n += (size_t)snprintf(big_text + n, cap - n, ".%u\n", i);
		else if (i % 11 == 0)
			n += (size_t)snprintf(big_text + n, cap - n,
			    "crlf line %u\r\n", i);
		else
			n += (size_t)snprintf(big_text + n, cap - n,
			    "line %u of the big message, padded %*s\n", i,
			    (int)(i % 60), "");
		if (i == 300) {
			memset(big_text + n, 'x', 5000);
			n += 5000;
			big_text[n++] = '\n';
		}
	}
	big_len = n;
}

static void
mail_paths(const struct fuzz_world *w, char *cur, char *newd, char *tmp,
    size_t cap)
{
	char udir[512];

	make_path(udir, sizeof(udir), w->mail_root, FUZZ_ALICE);
	make_path(cur, cap, udir, "cur");
	make_path(newd, cap, udir, "new");
	make_path(tmp, cap, udir, "tmp");
}

static void
rebuild_maildrop(const struct fuzz_world *w)
{
	char cur[768], newd[768], tmp[768], path[1024], udir[512];

	make_path(udir, sizeof(udir), w->mail_root, FUZZ_ALICE);
	make_dir(udir);
	mail_paths(w, cur, newd, tmp, sizeof(cur));
	make_dir(cur);
	make_dir(newd);
	make_dir(tmp);
	/* Sessions only ever move or remove these files, never add any. */
	for (size_t i = 0; i < NCUR; i++) {
		make_path(path, sizeof(path), cur, cur_msgs[i].name);
		if (cur_msgs[i].text != NULL)
			write_file(path, cur_msgs[i].text, cur_msgs[i].len,
			    (time_t)1700000001 + (time_t)i);
		else
			write_file(path, big_text, big_len,
			    (time_t)1700000001 + (time_t)i);
	}
	/* The new/ message, and no copy of it left in cur/. */
	make_path(path, sizeof(path), cur, new_msg.name);
	strncat(path, ":2,", sizeof(path) - strlen(path) - 1);
	(void)unlink(path);
	make_path(path, sizeof(path), newd, new_msg.name);
	write_file(path, new_msg.text, new_msg.len, (time_t)1700000100);
}

static bool
exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

bool
fuzz_maildrop_restore(struct fuzz_world *w)
{
	char cur[768], newd[768], tmp[768], path[1024];
	bool intact = true, pristine;

	mail_paths(w, cur, newd, tmp, sizeof(cur));
	for (size_t i = 0; i < NCUR; i++) {
		make_path(path, sizeof(path), cur, cur_msgs[i].name);
		if (!exists(path))
			intact = false;
	}
	make_path(path, sizeof(path), newd, new_msg.name);
	pristine = intact && exists(path);
	if (!pristine) {
		make_path(path, sizeof(path), cur, new_msg.name);
		strncat(path, ":2,", sizeof(path) - strlen(path) - 1);
		make_path(tmp, sizeof(tmp), newd, new_msg.name);
		if (!exists(path) && !exists(tmp))
			intact = false;
		rebuild_maildrop(w);
	}
	return intact;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	(void)remove(path);
	return 0;
}

static void
remove_world(void)
{
	if (fuzz_dir[0] != '\0')
		(void)nftw(fuzz_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The lowest descriptor number open() would give now. */
static int
lowest_free_fd(void)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	if (fd == -1)
		fuzz_fail("cannot open /dev/null");
	close(fd);
	return fd;
}

/* A tmpfs makes the users file's fsync() free; fall back to TMPDIR. */
static const char *
temp_base(void)
{
	const char *t = getenv("TMPDIR");
	struct stat st;

	if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) &&
	    access("/dev/shm", W_OK) == 0)
		return "/dev/shm";
	return t != NULL && t[0] != '\0' ? t : "/tmp";
}

/*
 * A crash ends the process without atexit(): the folders of processes
 * that are gone are swept by the next one to start.
 */
static void
sweep_stale(const char *base, const char *tag)
{
	char path[512];
	struct dirent *de;
	size_t len = strlen(tag);
	DIR *d = opendir(base);

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		long pid;
		char *end;

		if (strncmp(de->d_name, tag, len) != 0 || de->d_name[len] != '.')
			continue;
		pid = strtol(de->d_name + len + 1, &end, 10);
		if (end == de->d_name + len + 1 || *end != '.' || pid <= 0 ||
		    kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		make_path(path, sizeof(path), base, de->d_name);
		(void)nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	}
	closedir(d);
}

void
fuzz_make_tempdir(char *dir, size_t cap, const char *tag)
{
	const char *base = temp_base();
	int n;

	sweep_stale(base, tag);
	n = snprintf(dir, cap, "%s/%s.%ld.XXXXXX", base, tag, (long)getpid());
	if (n < 0 || (size_t)n >= cap || mkdtemp(dir) == NULL)
		fuzz_fail("mkdtemp");
	if (fuzz_dir[0] == '\0') {
		snprintf(fuzz_dir, sizeof(fuzz_dir), "%s", dir);
		atexit(remove_world);
	}
}

void
fuzz_world_init(struct fuzz_world *w)
{
	struct users *u;
	unsigned line;
	char text[1024];
	const char *hash;
	int n;

	memset(w, 0, sizeof(*w));
	if (getenv("FUZZ_LOG") == NULL && log_open("/dev/null") == -1)
		fuzz_fail("log_open");
	stats_init();
	fuzz_make_tempdir(w->dir, sizeof(w->dir), "pop3fuzz");
	make_path(w->mail_root, sizeof(w->mail_root), w->dir, "mail");
	make_path(w->users_path, sizeof(w->users_path), w->dir, "users");
	make_dir(w->mail_root);
	make_big();
	rebuild_maildrop(w);

	/*
	 * The fixture accounts carry "rounds=1000" hashes (the SHA-crypt
	 * minimum; the file format allows it): logins are the most
	 * expensive thing a run does, and this makes them five times
	 * cheaper.  Loading and saving once gives the server's own layout.
	 */
	if ((hash = crypt(FUZZ_ALICE_PASS, "$6$rounds=1000$fuzzalicefuzzali$"))
	    == NULL || hash[0] != '$')
		fuzz_fail("crypt");
	n = snprintf(text, sizeof(text), "%s:%s\n", FUZZ_ALICE, hash);
	if ((hash = crypt(FUZZ_ADMIN_PASS, "$6$rounds=1000$fuzzadminfuzzadm$"))
	    == NULL || hash[0] != '$' || n < 0)
		fuzz_fail("crypt");
	snprintf(text + n, sizeof(text) - (size_t)n, "%s:%s\n", FUZZ_ADMIN,
	    hash);
	write_file(w->users_path, text, strlen(text), time(NULL));
	if (users_load(w->users_path, &u, &line) != USERS_OK ||
	    users_count(u) != 2 || users_save(u) != USERS_OK ||
	    !users_verify(u, FUZZ_ALICE, FUZZ_ALICE_PASS))
		fuzz_fail("cannot build the users file");
	w->users = u;
	w->users_text = read_whole(w->users_path, &w->users_len);

	w->settings.max_conn = 50;
	w->settings.conn_ceiling = 100;
	w->settings.idle_s = 600;
	w->settings.filter = NULL;
	w->settings.filter_limit_s = 30;

	w->sel = selector_new(SEL_CAPACITY);
	if (w->sel == NULL)
		fuzz_fail("selector_new");
}

void
fuzz_begin(struct fuzz_world *w)
{
	/*
	 * Taken per run: libFuzzer itself opens descriptors between runs
	 * (the pipes to llvm-symbolizer when it reports new functions).
	 */
	w->fd_floor = lowest_free_fd();
}

void
fuzz_users_reset(struct fuzz_world *w)
{
	write_file(w->users_path, w->users_text, w->users_len, time(NULL));
	if (users_reload(w->users) != USERS_OK)
		fuzz_fail("cannot reload the users file");
}

void
fuzz_peer_open(struct fuzz_peer *p, int (*start)(int fd, void *arg),
    void *arg, int sndbuf)
{
	int sv[2];

	memset(p, 0, sizeof(*p));
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
	    sv) == -1)
		fuzz_fail("socketpair");
	if (sndbuf > 0)
		(void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf,
		    sizeof(sndbuf));
	if (start(sv[0], arg) != 0)
		fuzz_fail("the session did not start");
	p->fd = sv[1];
}


static void
count_conn(struct conn *c, void *arg)
{
	(void)c;
	(*(size_t *)arg)++;
}

size_t
fuzz_live_conns(void)
{
	size_t n = 0;

	conn_foreach(count_conn, &n);
	return n;
}

/*
 * A reply held back by a timer (the delay of a failed login or of a
 * failed CHANGE_PASSWORD) is due at once: the harness lets time jump
 * instead of sleeping.  The idle timers are left alone (they are far
 * away).  The timer's fields are the reactor's; we only read them to
 * re-arm it with its own callback.
 */
static void
fast_forward_one(struct conn *c, void *arg)
{
	struct sel_timer *t = &c->late_timer;

	if (!c->held || !selector_timer_armed(t))
		return;
	if (selector_timer_arm(c->sel, t, 0, t->fn, t->data) != SELECTOR_OK)
		fuzz_fail("cannot re-arm a timer");
	(*(size_t *)arg)++;
}

static size_t
fast_forward(void)
{
	size_t n = 0;

	conn_foreach(fast_forward_one, &n);
	return n;
}

/* One pass of the daemon's loop (server_run), never sleeping. */
static bool
reactor_pass(struct fuzz_world *w)
{
	bool more;

	pop3_pass_begin();
	if (selector_poll(w->sel, 0) != SELECTOR_OK)
		fuzz_fail("selector_poll");
	verify_run();
	more = conn_run_pending();
	more = verify_waiting() || more;
	conn_reap();
	/* Sessions gone during their QUIT's deletions finish them here. */
	more = pop3_run_orphans() || more;
	return more;
}

/*
 * Chunk sizes: one mode per run (all at once, small, medium, or one
 * byte at a time), then a size per chunk within it.
 */
struct chunker {
	uint64_t state;
	unsigned mode;
};

static size_t
chunk_size(struct chunker *ck)
{
	uint64_t r = next_rand(&ck->state);

	switch (ck->mode) {
	case 0:
		return 1 << 16;
	case 1:
		return 1 + (size_t)(r % 16);
	case 2:
		return 1 + (size_t)(r % 300);
	default:
		return 1;
	}
}

/* Sends the peer's next chunk; returns the bytes sent. */
static size_t
peer_send(struct fuzz_peer *p, struct chunker *ck)
{
	size_t want;
	ssize_t n;

	if (p->fd < 0)
		return 0;
	if (p->in_off >= p->in_len) {
		if (!p->shut && !p->keep_open) {
			(void)shutdown(p->fd, SHUT_WR);
			p->shut = true;
			return 1;
		}
		return 0;
	}
	want = chunk_size(ck);
	if (want > p->in_len - p->in_off)
		want = p->in_len - p->in_off;
	n = send(p->fd, p->in + p->in_off, want, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n > 0) {
		p->in_off += (size_t)n;
		return (size_t)n;
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == EINTR))
		return 0;
	/* The server hung up: the rest of the input is never read. */
	p->in_off = p->in_len;
	return 0;
}

/* Looks for the watched strings across chunk boundaries. */
static void
peer_watch(struct fuzz_peer *p, const uint8_t *buf, size_t n)
{
	static uint8_t window[FUZZ_TAIL + 65536];
	size_t len, keep;

	if (p->watch == NULL || n > sizeof(window) - FUZZ_TAIL)
		return;
	memcpy(window, p->tail, p->tail_len);
	memcpy(window + p->tail_len, buf, n);
	len = p->tail_len + n;
	for (unsigned i = 0; p->watch[i] != NULL; i++)
		if (memmem(window, len, p->watch[i], strlen(p->watch[i])) !=
		    NULL)
			p->seen |= 1u << i;
	keep = len < FUZZ_TAIL - 1 ? len : FUZZ_TAIL - 1;
	memcpy(p->tail, window + len - keep, keep);
	p->tail_len = keep;
}

/* Reads all the server has sent; returns the bytes read. */
static size_t
peer_drain(struct fuzz_peer *p)
{
	static uint8_t buf[65536];
	static int trace = -1;
	size_t total = 0;

	/* FUZZ_TRACE=1 shows what the server says (replaying an input). */
	if (trace < 0)
		trace = getenv("FUZZ_TRACE") != NULL;

	while (p->fd >= 0 && !p->eof) {
		ssize_t n;

		/* A slow client: it stops reading, the server's output backs up. */
		if (p->read_limit != 0 && p->got >= p->read_limit)
			break;
		n = recv(p->fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			p->eof = true;
			break;
		}
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] == '\n' && !(i > 0 ? buf[i - 1] == '\r' :
			    p->last_cr))
				p->bare_lf = true;
		}
		p->last_cr = buf[n - 1] == '\r';
		if (trace)
			fprintf(stderr, "%.*s", (int)n, (const char *)buf);
		peer_watch(p, buf, (size_t)n);
		p->got += (uint64_t)n;
		total += (size_t)n;
	}
	return total;
}

void
fuzz_converse(struct fuzz_world *w, struct fuzz_peer *peers, size_t npeers,
    uint64_t seed)
{
	struct chunker ck = { seed | 1, 0 };
	unsigned stalls = 0;

	/* Mostly chunked; one run in eight goes byte by byte. */
	ck.mode = (unsigned)(next_rand(&ck.state) % 8);
	ck.mode = ck.mode == 7 ? 3 : ck.mode % 3;
	for (unsigned pass = 0;; pass++) {
		bool progress = false, more;

		if (pass == MAX_PASSES)
			fuzz_fail("the sessions never end (livelock)");
		for (size_t i = 0; i < npeers; i++)
			if (peer_send(&peers[i], &ck) > 0)
				progress = true;
		more = reactor_pass(w);
		for (size_t i = 0; i < npeers; i++)
			if (peer_drain(&peers[i]) > 0)
				progress = true;
		if (fast_forward() > 0)
			progress = true;
		if (fuzz_live_conns() == 0)
			break;
		if (progress || more)
			stalls = 0;
		else if (++stalls >= STALL_PASSES)
			break;
	}
}

static void
idle_now(struct conn *c, void *arg)
{
	(void)arg;
	conn_set_idle(c, 0);
}

void
fuzz_idle_out(struct fuzz_world *w, struct fuzz_peer *peers, size_t npeers)
{
	/*
	 * Round two is "one second later": a goodbye that could not be
	 * flushed gets that long before the conn is dropped.
	 */
	for (int round = 0; round < 3 && fuzz_live_conns() > 0; round++) {
		conn_foreach(idle_now, NULL);
		fuzz_converse(w, peers, npeers, 1);
	}
	if (fuzz_live_conns() != 0)
		fuzz_fail("a session outlived its idle timeout");
}

bool
fuzz_peer_stopped(const struct fuzz_peer *p)
{
	return p->read_limit != 0 && p->got >= p->read_limit;
}

static void
close_one(struct conn *c, void *arg)
{
	(void)arg;
	conn_close_soon(c, END_SHUTDOWN);
}

void
fuzz_finish(struct fuzz_world *w, struct fuzz_peer *peers, size_t npeers)
{
	/* The clients go away; sessions notice on their next read. */
	for (size_t i = 0; i < npeers; i++) {
		peer_drain(&peers[i]);
		if (peers[i].fd >= 0)
			close(peers[i].fd);
		peers[i].fd = -1;
	}
	for (unsigned i = 0; i < 4 && fuzz_live_conns() > 0; i++) {
		reactor_pass(w);
		fast_forward();
	}
	/* Whatever is left (waiting on a timer or a login) is shut down. */
	conn_foreach(close_one, NULL);
	conn_reap();
	do
		pop3_pass_begin();
	while (pop3_run_orphans());
	/* Logins of sessions gone are dropped from the queue. */
	while (verify_waiting())
		verify_run();
	conn_reap();

	if (fuzz_live_conns() != 0)
		fuzz_fail("a session outlived its run");
	if (lock_holder(FUZZ_ALICE) != NULL ||
	    lock_holder(FUZZ_ADMIN) != NULL)
		fuzz_fail("a maildrop lock outlived its session");
	if (lowest_free_fd() > w->fd_floor)
		fuzz_fail("a descriptor outlived its run (leak)");
	if (lowest_free_fd() < w->fd_floor)
		fuzz_fail("a descriptor open before the run was closed");
}
