/*
 * Unit tests of the select() reactor over socketpair()s: which callbacks
 * fire for which interest, changes made from inside callbacks (interest,
 * unregistering another descriptor or itself, reusing a number), the
 * on_close guarantee, capacity limits and descriptors above FD_SETSIZE,
 * and the timer heap (order, cancel, re-arm, poll's wait).
 */
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "selector.h"

/* ---- a log of callbacks ---- */

enum ev_kind { EV_READ = 'r', EV_WRITE = 'w', EV_CLOSE = 'c', EV_NEW = 'n' };

struct ev {
	int kind;
	int fd;
	void *data;
};

static struct ev evs[256];
static size_t nevs;

static void
log_ev(int kind, int fd, void *data)
{
	ck_assert_uint_lt(nevs, sizeof(evs) / sizeof(evs[0]));
	evs[nevs].kind = kind;
	evs[nevs].fd = fd;
	evs[nevs].data = data;
	nevs++;
}

/* How many events of kind (any fd if fd < 0) were logged. */
static int
count(int kind, int fd)
{
	int n = 0;

	for (size_t i = 0; i < nevs; i++)
		if (evs[i].kind == kind && (fd < 0 || evs[i].fd == fd))
			n++;
	return n;
}

static void
rec_read(struct selector *s, int fd, void *data)
{
	(void)s;
	log_ev(EV_READ, fd, data);
}

static void
rec_write(struct selector *s, int fd, void *data)
{
	(void)s;
	log_ev(EV_WRITE, fd, data);
}

static void
rec_close(struct selector *s, int fd, void *data)
{
	(void)s;
	log_ev(EV_CLOSE, fd, data);
}

static const struct sel_handler rec_handler = {
	.on_read = rec_read,
	.on_write = rec_write,
	.on_close = rec_close,
};

/* ---- sockets ---- */

static void
nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	ck_assert_int_ge(fl, 0);
	ck_assert_int_eq(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
}

static void
pair(int sv[2])
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	nonblock(sv[0]);
	nonblock(sv[1]);
}

static void
send_byte(int fd)
{
	ck_assert_int_eq(write(fd, "x", 1), 1);
}

static bool
fd_free(int fd)
{
	return fcntl(fd, F_GETFD) < 0 && errno == EBADF;
}

/* Moves fd to number `to` (which must be free); returns `to`. */
static int
move_fd(int fd, int to)
{
	ck_assert_msg(fd_free(to), "fd %d is in use", to);
	ck_assert_int_eq(dup2(fd, to), to);
	ck_assert_int_eq(close(fd), 0);
	return to;
}

static uint64_t
elapsed_since(uint64_t t0)
{
	return selector_now_ms() - t0;
}

/* ---- descriptors ---- */

START_TEST(test_read_fires_on_read)
{
	struct selector *s = selector_new(1024);
	int sv[2], tag;

	ck_assert_ptr_nonnull(s);
	pair(sv);
	ck_assert_int_eq(selector_register(s, sv[0], &rec_handler, SEL_READ,
	    &tag), SELECTOR_OK);
	ck_assert_uint_eq(selector_interest(s, sv[0]), SEL_READ);
	/* Nothing to read yet. */
	ck_assert_int_eq(selector_poll(s, 0), SELECTOR_OK);
	ck_assert_uint_eq(nevs, 0);
	send_byte(sv[1]);
	ck_assert_int_eq(selector_poll(s, 1000), SELECTOR_OK);
	ck_assert_uint_eq(nevs, 1);
	ck_assert_int_eq(evs[0].kind, EV_READ);
	ck_assert_int_eq(evs[0].fd, sv[0]);
	ck_assert_ptr_eq(evs[0].data, &tag);
	/* Level-triggered: still readable, fires again. */
	ck_assert_int_eq(selector_poll(s, 1000), SELECTOR_OK);
	ck_assert_int_eq(count(EV_READ, sv[0]), 2);
	ck_assert_int_eq(count(EV_WRITE, -1), 0);
	selector_destroy(s);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

START_TEST(test_write_fires_on_write)
{
	struct selector *s = selector_new(1024);
	int sv[2], tag;

	ck_assert_ptr_nonnull(s);
	pair(sv);
	ck_assert_int_eq(selector_register(s, sv[0], &rec_handler, SEL_WRITE,
	    &tag), SELECTOR_OK);
	send_byte(sv[1]);	/* readable too, but read is not wanted */
	ck_assert_int_eq(selector_poll(s, 1000), SELECTOR_OK);
	ck_assert_uint_eq(nevs, 1);
	ck_assert_int_eq(evs[0].kind, EV_WRITE);
	ck_assert_int_eq(evs[0].fd, sv[0]);
	ck_assert_ptr_eq(evs[0].data, &tag);
	selector_destroy(s);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

START_TEST(test_none_fires_nothing)
{
	struct selector *s = selector_new(1024);
	int sv[2];
	uint64_t t0;

	ck_assert_ptr_nonnull(s);
	pair(sv);
	ck_assert_int_eq(selector_register(s, sv[0], &rec_handler, SEL_NONE,
	    NULL), SELECTOR_OK);
	send_byte(sv[1]);	/* readable and writable, watched for neither */
	t0 = selector_now_ms();
	ck_assert_int_eq(selector_poll(s, 60), SELECTOR_OK);
	ck_assert_uint_ge(elapsed_since(t0), 45);
	ck_assert_uint_lt(elapsed_since(t0), 1000);
	ck_assert_uint_eq(nevs, 0);
	selector_destroy(s);
	ck_assert_int_eq(count(EV_CLOSE, sv[0]), 1);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

START_TEST(test_interest_changes)
{
	struct selector *s = selector_new(1024);
	int sv[2];

	ck_assert_ptr_nonnull(s);
	pair(sv);
	send_byte(sv[1]);
	ck_assert_int_eq(selector_register(s, sv[0], &rec_handler, SEL_READ,
	    NULL), SELECTOR_OK);

	ck_assert_int_eq(selector_set_interest(s, sv[0], SEL_WRITE),
	    SELECTOR_OK);
	ck_assert_uint_eq(selector_interest(s, sv[0]), SEL_WRITE);
	ck_assert_int_eq(selector_poll(s, 1000), SELECTOR_OK);
	ck_assert_int_eq(count(EV_WRITE, sv[0]), 1);
	ck_assert_int_eq(count(EV_READ, -1), 0);

	nevs = 0;
	ck_assert_int_eq(selector_set_interest(s, sv[0], SEL_READ | SEL_WRITE),
	    SELECTOR_OK);
	ck_assert_uint_eq(selector_interest(s, sv[0]), SEL_READ | SEL_WRITE);
	ck_assert_int_eq(selector_poll(s, 1000), SELECTOR_OK);
	ck_assert_int_eq(count(EV_READ, sv[0]), 1);
	ck_assert_int_eq(count(EV_WRITE, sv[0]), 1);

	nevs = 0;
	ck_assert_int_eq(selector_set_interest(s, sv[0], SEL_NONE),
	    SELECTOR_OK);
	ck_assert_uint_eq(selector_interest(s, sv[0]), SEL_NONE);
	ck_assert_int_eq(selector_poll(s, 20), SELECTOR_OK);
	ck_assert_uint_eq(nevs, 0);

	ck_assert_int_eq(selector_set_interest(s, sv[0], SEL_READ),
	    SELECTOR_OK);
	ck_assert_int_eq(selector_poll(s, 1000), SELECTOR_OK);
	ck_assert_int_eq(count(EV_READ, sv[0]), 1);
	ck_assert_int_eq(count(EV_WRITE, -1), 0);

	/* Unknown descriptors. */
	ck_assert_int_eq(selector_set_interest(s, sv[1], SEL_READ),
	    SELECTOR_NOTREG);
	ck_assert_uint_eq(selector_interest(s, sv[1]), SEL_NONE);
	ck_assert_uint_eq(selector_interest(s, 100000), SEL_NONE);
	selector_destroy(s);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/* What a callback does to the reactor before logging. */
struct ctl {
	int victim;		/* fd to unregister, -1 for none */
	unsigned new_interest;	/* for set_interest on itself */
	bool set_own;
};

static void
ctl_read(struct selector *s, int fd, void *data)
{
	struct ctl *c = data;

	log_ev(EV_READ, fd, data);
	if (c->victim >= 0)
		ck_assert_int_eq(selector_unregister(s, c->victim),
		    SELECTOR_OK);
	if (c->set_own)
		ck_assert_int_eq(selector_set_interest(s, fd, c->new_interest),
		    SELECTOR_OK);
}

static const struct sel_handler ctl_handler = {
	.on_read = ctl_read,
	.on_write = rec_write,
	.on_close = rec_close,
};

/* Whichever of two ready fds runs first unregisters the other. */
START_TEST(test_unregister_other_in_callback)
{
	struct selector *s = selector_new(1024);
	int a[2], b[2];
	struct ctl ca, cb;

	ck_assert_ptr_nonnull(s);
	pair(a);
	pair(b);
	ca = (struct ctl){ .victim = b[0] };
	cb = (struct ctl){ .victim = a[0] };
	ck_assert_int_eq(selector_register(s, a[0], &ctl_handler,
	    SEL_READ | SEL_WRITE, &ca), SELECTOR_OK);
	ck_assert_int_eq(selector_register(s, b[0], &ctl_handler,
	    SEL_READ | SEL_WRITE, &cb), SELECTOR_OK);
	send_byte(a[1]);
	send_byte(b[1]);
	ck_assert_int_eq(selector_poll(s, 1000), SELECTOR_OK);
	/* One read ran; its victim got on_close and nothing else. */
	ck_assert_int_eq(count(EV_READ, -1), 1);
	{
		int winner = evs[0].fd;
		int loser = winner == a[0] ? b[0] : a[0];

		ck_assert_int_eq(evs[0].kind, EV_READ);
		ck_assert_int_eq(count(EV_CLOSE, loser), 1);
		ck_assert_int_eq(count(EV_CLOSE, -1), 1);
		ck_assert_int_eq(count(EV_READ, loser), 0);
		ck_assert_int_eq(count(EV_WRITE, loser), 0);
		ck_assert_int_eq(count(EV_WRITE, winner), 1);
		ck_assert_uint_eq(selector_interest(s, loser), SEL_NONE);
	}
	selector_destroy(s);
	ck_assert_int_eq(count(EV_CLOSE, -1), 2);
	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
}
END_TEST

START_TEST(test_unregister_self_in_callback)
{
	struct selector *s = selector_new(1024);
	int sv[2];
	struct ctl c;

	ck_assert_ptr_nonnull(s);
	pair(sv);
	c = (struct ctl){ .victim = sv[0] };
	ck_assert_int_eq(selector_register(s, sv[0], &ctl_handler,
	    SEL_READ | SEL_WRITE, &c), SELECTOR_OK);
	send_byte(sv[1]);
	ck_assert_int_eq(selector_poll(s, 1000), SELECTOR_OK);
	/* Readable and writable, but it left during on_read. */
	ck_assert_int_eq(count(EV_READ, sv[0]), 1);
	ck_assert_int_eq(count(EV_WRITE, -1), 0);
	ck_assert_int_eq(count(EV_CLOSE, sv[0]), 1);
	ck_assert_uint_eq(nevs, 2);
	ck_assert_int_eq(evs[1].kind, EV_CLOSE);
	ck_assert_ptr_eq(evs[1].data, &c);
	ck_assert_int_eq(selector_poll(s, 20), SELECTOR_OK);
	ck_assert_uint_eq(nevs, 2);
	selector_destroy(s);
	ck_assert_int_eq(count(EV_CLOSE, -1), 1);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

START_TEST(test_drop_write_interest_in_callback)
{
	struct selector *s = selector_new(1024);
	int sv[2];
	struct ctl c;

	ck_assert_ptr_nonnull(s);
	pair(sv);
	c = (struct ctl){ .victim = -1, .set_own = true,
		.new_interest = SEL_READ };
	ck_assert_int_eq(selector_register(s, sv[0], &ctl_handler,
	    SEL_READ | SEL_WRITE, &c), SELECTOR_OK);
	send_byte(sv[1]);
	ck_assert_int_eq(selector_poll(s, 1000), SELECTOR_OK);
	ck_assert_int_eq(count(EV_READ, sv[0]), 1);
	ck_assert_int_eq(count(EV_WRITE, -1), 0);
	selector_destroy(s);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/*
 * The callback of a lower fd unregisters a ready higher fd, closes it
 * and registers a new, idle socket under the same number: the old
 * readiness must not be delivered to the new registration.
 */
struct reuse {
	struct selector *s;
	int victim;		/* the fd number that gets reused */
	int fresh[2];		/* the new socketpair */
};

static void
fresh_read(struct selector *s, int fd, void *data)
{
	(void)s;
	log_ev(EV_NEW, fd, data);
}

static const struct sel_handler fresh_handler = {
	.on_read = fresh_read,
	.on_write = NULL,
	.on_close = rec_close,
};

static void
reuse_read(struct selector *s, int fd, void *data)
{
	struct reuse *r = data;

	log_ev(EV_READ, fd, data);
	ck_assert_int_eq(selector_unregister(s, r->victim), SELECTOR_OK);
	ck_assert_int_eq(close(r->victim), 0);
	pair(r->fresh);
	r->fresh[0] = move_fd(r->fresh[0], r->victim);
	ck_assert_int_eq(selector_register(s, r->victim, &fresh_handler,
	    SEL_READ, r), SELECTOR_OK);
}

static const struct sel_handler reuse_handler = {
	.on_read = reuse_read,
	.on_write = NULL,
	.on_close = rec_close,
};

START_TEST(test_reused_fd_gets_no_stale_event)
{
	struct selector *s = selector_new(256);
	int a[2], b[2];
	struct reuse r;

	ck_assert_ptr_nonnull(s);
	pair(a);
	pair(b);
	a[0] = move_fd(a[0], 200);
	b[0] = move_fd(b[0], 201);
	r = (struct reuse){ .s = s, .victim = b[0] };
	ck_assert_int_eq(selector_register(s, a[0], &reuse_handler, SEL_READ,
	    &r), SELECTOR_OK);
	ck_assert_int_eq(selector_register(s, b[0], &rec_handler, SEL_READ,
	    NULL), SELECTOR_OK);
	send_byte(a[1]);
	send_byte(b[1]);
	ck_assert_int_eq(selector_poll(s, 1000), SELECTOR_OK);
	ck_assert_int_eq(count(EV_READ, 200), 1);
	ck_assert_int_eq(count(EV_CLOSE, 201), 1);
	/* The old 201 never ran, the new 201 has nothing to read. */
	ck_assert_int_eq(count(EV_READ, 201), 0);
	ck_assert_msg(count(EV_NEW, 201) == 0,
	    "the new registration of fd 201 got the old one's readiness");
	selector_destroy(s);
	close(a[0]);
	close(a[1]);
	close(b[1]);
	close(r.fresh[0]);
	close(r.fresh[1]);
}
END_TEST

START_TEST(test_on_close_once)
{
	struct selector *s = selector_new(1024);
	int p[3][2];
	int tags[3];

	ck_assert_ptr_nonnull(s);
	for (int i = 0; i < 3; i++) {
		pair(p[i]);
		ck_assert_int_eq(selector_register(s, p[i][0], &rec_handler,
		    SEL_READ, &tags[i]), SELECTOR_OK);
	}
	ck_assert_int_eq(selector_unregister(s, p[1][0]), SELECTOR_OK);
	ck_assert_uint_eq(nevs, 1);
	ck_assert_int_eq(evs[0].kind, EV_CLOSE);
	ck_assert_int_eq(evs[0].fd, p[1][0]);
	ck_assert_ptr_eq(evs[0].data, &tags[1]);
	/* A second unregister is refused and calls nothing. */
	ck_assert_int_eq(selector_unregister(s, p[1][0]), SELECTOR_NOTREG);
	ck_assert_int_eq(selector_unregister(s, p[1][1]), SELECTOR_NOTREG);
	ck_assert_uint_eq(nevs, 1);
	/* Destroy closes the other two, once each, with their data. */
	selector_destroy(s);
	ck_assert_uint_eq(nevs, 3);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(count(EV_CLOSE, p[i][0]), 1);
	for (size_t i = 0; i < nevs; i++) {
		ck_assert_int_eq(evs[i].kind, EV_CLOSE);
		for (int k = 0; k < 3; k++)
			if (evs[i].fd == p[k][0])
				ck_assert_ptr_eq(evs[i].data, &tags[k]);
	}
	selector_destroy(NULL);
	for (int i = 0; i < 3; i++) {
		close(p[i][0]);
		close(p[i][1]);
	}
}
END_TEST

/* on_close may register the same number again (a new registration). */
static const struct sel_handler plain_handler = {
	.on_read = rec_read,
	.on_write = rec_write,
	.on_close = NULL,
};

static void
reregister_close(struct selector *s, int fd, void *data)
{
	log_ev(EV_CLOSE, fd, data);
	ck_assert_int_eq(selector_register(s, fd, &plain_handler, SEL_READ,
	    NULL), SELECTOR_OK);
}

static const struct sel_handler rereg_handler = {
	.on_read = rec_read,
	.on_write = NULL,
	.on_close = reregister_close,
};

START_TEST(test_register_from_on_close)
{
	struct selector *s = selector_new(1024);
	int sv[2];

	ck_assert_ptr_nonnull(s);
	pair(sv);
	ck_assert_int_eq(selector_register(s, sv[0], &rereg_handler,
	    SEL_WRITE, NULL), SELECTOR_OK);
	ck_assert_int_eq(selector_unregister(s, sv[0]), SELECTOR_OK);
	ck_assert_int_eq(count(EV_CLOSE, sv[0]), 1);
	ck_assert_uint_eq(selector_interest(s, sv[0]), SEL_READ);
	send_byte(sv[1]);
	ck_assert_int_eq(selector_poll(s, 1000), SELECTOR_OK);
	ck_assert_int_eq(count(EV_READ, sv[0]), 1);
	selector_destroy(s);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

START_TEST(test_capacity_limits)
{
	struct selector *s = selector_new(64);
	int sv[2], hi, top;

	ck_assert_ptr_nonnull(s);
	ck_assert_uint_eq(selector_capacity(s), 64);
	pair(sv);
	hi = dup(sv[0]);
	ck_assert_int_ge(hi, 0);
	hi = move_fd(hi, 64);
	top = dup(sv[0]);
	ck_assert_int_ge(top, 0);
	top = move_fd(top, 63);
	ck_assert_int_eq(selector_register(s, hi, &rec_handler, SEL_READ,
	    NULL), SELECTOR_FDTOOBIG);
	ck_assert_int_eq(selector_register(s, 100000, &rec_handler, SEL_READ,
	    NULL), SELECTOR_FDTOOBIG);
	ck_assert_int_eq(selector_set_interest(s, hi, SEL_READ),
	    SELECTOR_NOTREG);
	ck_assert_uint_eq(selector_interest(s, hi), SEL_NONE);
	ck_assert_int_eq(selector_unregister(s, hi), SELECTOR_NOTREG);
	/* capacity - 1 is the last one accepted, and it works. */
	ck_assert_int_eq(selector_register(s, top, &rec_handler, SEL_READ,
	    NULL), SELECTOR_OK);
	send_byte(sv[1]);
	ck_assert_int_eq(selector_poll(s, 1000), SELECTOR_OK);
	ck_assert_int_eq(count(EV_READ, 63), 1);
	ck_assert_ptr_nonnull(selector_strerror(SELECTOR_FDTOOBIG));
	selector_destroy(s);
	ck_assert_int_eq(count(EV_CLOSE, 63), 1);
	ck_assert_int_eq(count(EV_CLOSE, 64), 0);
	close(hi);
	close(top);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

START_TEST(test_double_register)
{
	struct selector *s = selector_new(1024);
	int sv[2], first, second;

	ck_assert_ptr_nonnull(s);
	pair(sv);
	ck_assert_int_eq(selector_register(s, sv[0], &rec_handler, SEL_READ,
	    &first), SELECTOR_OK);
	ck_assert_int_eq(selector_register(s, sv[0], &ctl_handler, SEL_WRITE,
	    &second), SELECTOR_EXISTS);
	/* The first registration is untouched. */
	ck_assert_uint_eq(selector_interest(s, sv[0]), SEL_READ);
	send_byte(sv[1]);
	ck_assert_int_eq(selector_poll(s, 1000), SELECTOR_OK);
	ck_assert_uint_eq(nevs, 1);
	ck_assert_int_eq(evs[0].kind, EV_READ);
	ck_assert_ptr_eq(evs[0].data, &first);
	selector_destroy(s);
	ck_assert_int_eq(count(EV_CLOSE, sv[0]), 1);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/*
 * A descriptor number past FD_SETSIZE works when capacity allows it:
 * fd 1500, or the highest the hard RLIMIT_NOFILE allows.
 */
START_TEST(test_fd_above_fd_setsize)
{
	struct rlimit rl;
	struct selector *s;
	int sv[2], big, low[2];
	int want = 1500;

	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < 2048)
		want = (int)rl.rlim_max - 1;
	ck_assert_msg(want > FD_SETSIZE, "hard RLIMIT_NOFILE %llu: no fd "
	    "above FD_SETSIZE %d to test", (unsigned long long)rl.rlim_max,
	    FD_SETSIZE);
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur <= (rlim_t)want) {
		rl.rlim_cur = rl.rlim_max != RLIM_INFINITY &&
		    rl.rlim_max < 2048 ? rl.rlim_max : 2048;
		ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	}
	s = selector_new(2048);
	ck_assert_ptr_nonnull(s);
	pair(sv);
	pair(low);
	big = move_fd(sv[0], want);
	ck_assert_int_eq(selector_register(s, big, &rec_handler, SEL_READ,
	    NULL), SELECTOR_OK);
	ck_assert_int_eq(selector_register(s, low[0], &rec_handler, SEL_READ,
	    NULL), SELECTOR_OK);
	ck_assert_int_eq(selector_poll(s, 0), SELECTOR_OK);
	ck_assert_uint_eq(nevs, 0);
	send_byte(sv[1]);
	ck_assert_int_eq(selector_poll(s, 1000), SELECTOR_OK);
	ck_assert_int_eq(count(EV_READ, want), 1);
	ck_assert_int_eq(count(EV_READ, low[0]), 0);
	send_byte(low[1]);
	nevs = 0;
	ck_assert_int_eq(selector_set_interest(s, big, SEL_WRITE),
	    SELECTOR_OK);
	ck_assert_int_eq(selector_poll(s, 1000), SELECTOR_OK);
	ck_assert_int_eq(count(EV_WRITE, want), 1);
	ck_assert_int_eq(count(EV_READ, want), 0);
	ck_assert_int_eq(count(EV_READ, low[0]), 1);
	/* Unregistering the top one leaves the low one working. */
	ck_assert_int_eq(selector_unregister(s, big), SELECTOR_OK);
	nevs = 0;
	ck_assert_int_eq(selector_poll(s, 1000), SELECTOR_OK);
	ck_assert_int_eq(count(EV_READ, low[0]), 1);
	ck_assert_uint_eq(nevs, 1);
	selector_destroy(s);
	close(big);
	close(sv[1]);
	close(low[0]);
	close(low[1]);
}
END_TEST

START_TEST(test_poll_empty)
{
	struct selector *s = selector_new(16);
	uint64_t t0;

	ck_assert_ptr_nonnull(s);
	t0 = selector_now_ms();
	ck_assert_int_eq(selector_poll(s, 0), SELECTOR_OK);
	ck_assert_int_eq(selector_poll(s, 30), SELECTOR_OK);
	ck_assert_uint_ge(elapsed_since(t0), 20);
	ck_assert_uint_lt(elapsed_since(t0), 1000);
	selector_destroy(s);
}
END_TEST

static volatile sig_atomic_t got_alarm;

static void
on_alarm(int sig)
{
	(void)sig;
	got_alarm = 1;
}

/* A signal during select() is not an error. */
START_TEST(test_poll_eintr)
{
	struct selector *s = selector_new(16);
	struct sigaction sa;
	struct itimerval it;
	uint64_t t0;

	ck_assert_ptr_nonnull(s);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;	/* no SA_RESTART */
	ck_assert_int_eq(sigaction(SIGALRM, &sa, NULL), 0);
	memset(&it, 0, sizeof(it));
	it.it_value.tv_usec = 30 * 1000;
	ck_assert_int_eq(setitimer(ITIMER_REAL, &it, NULL), 0);
	t0 = selector_now_ms();
	ck_assert_int_eq(selector_poll(s, 3000), SELECTOR_OK);
	ck_assert_int_eq(got_alarm, 1);
	ck_assert_uint_lt(elapsed_since(t0), 1500);
	selector_destroy(s);
}
END_TEST

/* ---- timers ---- */

struct tlog {
	int ids[64];
	int n;
};

static struct tlog tl;

struct tctx {
	int id;
	struct sel_timer *self;
	int rearm_left;
	uint64_t rearm_ms;
	bool armed_inside;
};

static void
t_fire(struct selector *s, void *data)
{
	struct tctx *t = data;

	ck_assert_int_lt(tl.n, 64);
	tl.ids[tl.n++] = t->id;
	if (t->self != NULL)
		t->armed_inside = selector_timer_armed(t->self);
	if (t->rearm_left > 0) {
		t->rearm_left--;
		ck_assert_int_eq(selector_timer_arm(s, t->self, t->rearm_ms,
		    t_fire, t), SELECTOR_OK);
	}
}

/* Polls until `n` timer calls were logged or `ms` passed. */
static void
poll_timers(struct selector *s, int n, uint64_t ms)
{
	uint64_t t0 = selector_now_ms();

	while (tl.n < n && elapsed_since(t0) < ms)
		ck_assert_int_eq(selector_poll(s, 10), SELECTOR_OK);
}

START_TEST(test_timer_order)
{
	struct selector *s = selector_new(16);
	struct sel_timer t30 = { 0 }, t10 = { 0 }, t20 = { 0 };
	struct tctx c30 = { .id = 30 }, c10 = { .id = 10 }, c20 = { .id = 20 };
	uint64_t t0;

	ck_assert_ptr_nonnull(s);
	t0 = selector_now_ms();
	ck_assert_int_eq(selector_timer_arm(s, &t30, 30, t_fire, &c30),
	    SELECTOR_OK);
	ck_assert_int_eq(selector_timer_arm(s, &t10, 10, t_fire, &c10),
	    SELECTOR_OK);
	ck_assert_int_eq(selector_timer_arm(s, &t20, 20, t_fire, &c20),
	    SELECTOR_OK);
	poll_timers(s, 3, 1000);
	ck_assert_int_eq(tl.n, 3);
	ck_assert_int_eq(tl.ids[0], 10);
	ck_assert_int_eq(tl.ids[1], 20);
	ck_assert_int_eq(tl.ids[2], 30);
	ck_assert_uint_ge(elapsed_since(t0), 30);
	selector_destroy(s);
}
END_TEST

/* Many timers, armed out of order, some cancelled mid-heap. */
START_TEST(test_timer_heap_order)
{
	enum { N = 40 };
	struct selector *s = selector_new(16);
	struct sel_timer t[N];
	struct tctx c[N];
	int fired = 0, last = -1;

	ck_assert_ptr_nonnull(s);
	memset(t, 0, sizeof(t));
	for (int k = 0; k < N; k++) {
		/* A permutation of 0..N-1: deadlines 3 ms apart. */
		int id = (k * 17) % N;

		c[k] = (struct tctx){ .id = id };
		ck_assert_int_eq(selector_timer_arm(s, &t[k],
		    (uint64_t)id * 3, t_fire, &c[k]), SELECTOR_OK);
	}
	for (int k = 0; k < N; k += 3)
		selector_timer_cancel(s, &t[k]);
	poll_timers(s, N - (N + 2) / 3, 1500);
	for (int k = 0; k < N; k++)
		if (k % 3 != 0)
			fired++;
	ck_assert_int_eq(tl.n, fired);
	for (int i = 0; i < tl.n; i++) {
		ck_assert_int_gt(tl.ids[i], last);
		last = tl.ids[i];
		for (int k = 0; k < N; k += 3)
			ck_assert_int_ne(tl.ids[i], c[k].id);
	}
	selector_destroy(s);
}
END_TEST

/*
 * Cancelling a timer deep in the heap moves the last timer into its
 * place, where it may be earlier than its new parent: it must rise.
 * Armed in this order, the heap is 1 20 2 21 22 3 4 23 24 25 26 5 and
 * cancelling 21 puts 5 under 20.
 */
START_TEST(test_timer_cancel_moves_last_up)
{
	static const int order[] = { 1, 20, 2, 21, 22, 3, 4, 23, 24, 25, 26,
		5 };
	enum { N = sizeof(order) / sizeof(order[0]) };
	static const int want[] = { 1, 2, 3, 4, 5, 20, 22, 23, 24, 25, 26 };
	struct selector *s = selector_new(16);
	struct sel_timer t[N];
	struct tctx c[N];

	ck_assert_ptr_nonnull(s);
	memset(t, 0, sizeof(t));
	for (int k = 0; k < N; k++) {
		c[k] = (struct tctx){ .id = order[k] };
		ck_assert_int_eq(selector_timer_arm(s, &t[k],
		    (uint64_t)order[k] * 4, t_fire, &c[k]), SELECTOR_OK);
	}
	selector_timer_cancel(s, &t[3]);	/* 21 */
	poll_timers(s, N - 1, 1500);
	ck_assert_int_eq(tl.n, N - 1);
	for (int i = 0; i < N - 1; i++)
		ck_assert_int_eq(tl.ids[i], want[i]);
	selector_destroy(s);
}
END_TEST

START_TEST(test_timer_cancel)
{
	struct selector *s = selector_new(16);
	struct sel_timer a = { 0 }, b = { 0 };
	struct tctx ca = { .id = 1 }, cb = { .id = 2 };

	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(selector_timer_arm(s, &a, 10, t_fire, &ca),
	    SELECTOR_OK);
	ck_assert_int_eq(selector_timer_arm(s, &b, 20, t_fire, &cb),
	    SELECTOR_OK);
	selector_timer_cancel(s, &a);
	ck_assert(!selector_timer_armed(&a));
	selector_timer_cancel(s, &a);	/* harmless twice */
	poll_timers(s, 1, 1000);
	ck_assert_int_eq(selector_poll(s, 40), SELECTOR_OK);
	ck_assert_int_eq(tl.n, 1);
	ck_assert_int_eq(tl.ids[0], 2);
	/* Never armed at all. */
	{
		struct sel_timer z = { 0 };

		selector_timer_cancel(s, &z);
		ck_assert(!selector_timer_armed(&z));
	}
	selector_destroy(s);
}
END_TEST

START_TEST(test_timer_rearm_moves)
{
	struct selector *s = selector_new(16);
	struct sel_timer a = { 0 }, b = { 0 }, c = { 0 };
	struct tctx ca = { .id = 1 }, cb = { .id = 2 }, cc = { .id = 3 };
	uint64_t t0;

	ck_assert_ptr_nonnull(s);
	/* Later: a (10 -> 60) now fires after b (30). */
	ck_assert_int_eq(selector_timer_arm(s, &a, 10, t_fire, &ca),
	    SELECTOR_OK);
	ck_assert_int_eq(selector_timer_arm(s, &b, 30, t_fire, &cb),
	    SELECTOR_OK);
	ck_assert_int_eq(selector_timer_arm(s, &a, 60, t_fire, &ca),
	    SELECTOR_OK);
	/* Sooner: c (5000 -> 5). */
	ck_assert_int_eq(selector_timer_arm(s, &c, 5000, t_fire, &cc),
	    SELECTOR_OK);
	t0 = selector_now_ms();
	ck_assert_int_eq(selector_timer_arm(s, &c, 5, t_fire, &cc),
	    SELECTOR_OK);
	poll_timers(s, 3, 1000);
	ck_assert_uint_lt(elapsed_since(t0), 1000);
	ck_assert_int_eq(tl.n, 3);
	ck_assert_int_eq(tl.ids[0], 3);
	ck_assert_int_eq(tl.ids[1], 2);
	ck_assert_int_eq(tl.ids[2], 1);
	/* Each fired once: re-arming did not leave a copy behind. */
	ck_assert_int_eq(selector_poll(s, 30), SELECTOR_OK);
	ck_assert_int_eq(tl.n, 3);
	selector_destroy(s);
}
END_TEST

START_TEST(test_timer_rearms_itself)
{
	struct selector *s = selector_new(16);
	struct sel_timer t = { 0 };
	struct tctx c = { .id = 7, .self = &t, .rearm_left = 3,
		.rearm_ms = 5 };

	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(selector_timer_arm(s, &t, 5, t_fire, &c),
	    SELECTOR_OK);
	poll_timers(s, 4, 1000);
	ck_assert_int_eq(tl.n, 4);
	ck_assert_int_eq(c.rearm_left, 0);
	ck_assert(!selector_timer_armed(&t));
	ck_assert_int_eq(selector_poll(s, 30), SELECTOR_OK);
	ck_assert_int_eq(tl.n, 4);
	selector_destroy(s);
}
END_TEST

/*
 * A callback that re-arms its timer for 0 ms is due again at once: it
 * must wait for the next pass, or one selector_poll() would never return
 * (the descriptors starve).  Bounded here by rearm_left, so a reactor
 * that loops shows as too many calls, not as a hung test.
 */
START_TEST(test_timer_rearmed_for_0_ms_waits_for_next_pass)
{
	struct selector *s = selector_new(16);
	struct sel_timer t = { 0 };
	struct tctx c = { .id = 9, .self = &t, .rearm_left = 50,
		.rearm_ms = 0 };

	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(selector_timer_arm(s, &t, 0, t_fire, &c),
	    SELECTOR_OK);
	ck_assert_int_eq(selector_poll(s, 0), SELECTOR_OK);
	ck_assert_int_eq(tl.n, 1);
	ck_assert(selector_timer_armed(&t));
	ck_assert_int_eq(selector_poll(s, 0), SELECTOR_OK);
	ck_assert_int_eq(tl.n, 2);
	ck_assert_int_eq(c.rearm_left, 48);
	selector_destroy(s);
}
END_TEST

START_TEST(test_poll_wait_ends_at_timer)
{
	struct selector *s = selector_new(16);
	struct sel_timer t = { 0 }, far = { 0 };
	struct tctx c = { .id = 1 }, cf = { .id = 2 };
	uint64_t t0, dt;

	ck_assert_ptr_nonnull(s);
	/* No limit of its own: the timer ends the wait. */
	ck_assert_int_eq(selector_timer_arm(s, &t, 60, t_fire, &c),
	    SELECTOR_OK);
	t0 = selector_now_ms();
	ck_assert_int_eq(selector_poll(s, -1), SELECTOR_OK);
	dt = elapsed_since(t0);
	ck_assert_uint_ge(dt, 50);
	ck_assert_uint_lt(dt, 1000);
	ck_assert_int_eq(tl.n, 1);

	/* A long limit is cut short by a nearer timer. */
	ck_assert_int_eq(selector_timer_arm(s, &t, 40, t_fire, &c),
	    SELECTOR_OK);
	t0 = selector_now_ms();
	ck_assert_int_eq(selector_poll(s, 5000), SELECTOR_OK);
	dt = elapsed_since(t0);
	ck_assert_uint_ge(dt, 30);
	ck_assert_uint_lt(dt, 1000);
	ck_assert_int_eq(tl.n, 2);

	/* A short limit wins over a far timer, which does not fire. */
	ck_assert_int_eq(selector_timer_arm(s, &far, 5000, t_fire, &cf),
	    SELECTOR_OK);
	t0 = selector_now_ms();
	ck_assert_int_eq(selector_poll(s, 40), SELECTOR_OK);
	dt = elapsed_since(t0);
	ck_assert_uint_ge(dt, 30);
	ck_assert_uint_lt(dt, 1000);
	ck_assert_int_eq(tl.n, 2);
	ck_assert(selector_timer_armed(&far));
	selector_destroy(s);
}
END_TEST

START_TEST(test_timer_armed_flag)
{
	struct selector *s = selector_new(16);
	struct sel_timer t = { 0 };
	struct tctx c = { .id = 1, .self = &t, .armed_inside = true };

	ck_assert_ptr_nonnull(s);
	ck_assert(!selector_timer_armed(&t));
	ck_assert_int_eq(selector_timer_arm(s, &t, 10, t_fire, &c),
	    SELECTOR_OK);
	ck_assert(selector_timer_armed(&t));
	selector_timer_cancel(s, &t);
	ck_assert(!selector_timer_armed(&t));
	ck_assert_int_eq(selector_timer_arm(s, &t, 0, t_fire, &c),
	    SELECTOR_OK);
	ck_assert(selector_timer_armed(&t));
	poll_timers(s, 1, 1000);
	ck_assert_int_eq(tl.n, 1);
	/* Disarmed once it fires, already inside its callback. */
	ck_assert(!c.armed_inside);
	ck_assert(!selector_timer_armed(&t));
	selector_destroy(s);
}
END_TEST

/* A timer and a ready descriptor in the same pass both run. */
START_TEST(test_timer_and_fd_same_pass)
{
	struct selector *s = selector_new(1024);
	struct sel_timer t = { 0 };
	struct tctx c = { .id = 1 };
	int sv[2];

	ck_assert_ptr_nonnull(s);
	pair(sv);
	ck_assert_int_eq(selector_register(s, sv[0], &rec_handler, SEL_READ,
	    NULL), SELECTOR_OK);
	ck_assert_int_eq(selector_timer_arm(s, &t, 0, t_fire, &c),
	    SELECTOR_OK);
	send_byte(sv[1]);
	ck_assert_int_eq(selector_poll(s, 1000), SELECTOR_OK);
	ck_assert_int_eq(count(EV_READ, sv[0]), 1);
	ck_assert_int_eq(tl.n, 1);
	selector_destroy(s);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

static void
reset_logs(void)
{
	nevs = 0;
	memset(&tl, 0, sizeof(tl));
	got_alarm = 0;
}

Suite *selector_suite(void);

Suite *
selector_suite(void)
{
	Suite *s = suite_create("selector");
	TCase *core = tcase_create("core");
	TCase *limits = tcase_create("limits");

	tcase_set_timeout(core, 10);
	tcase_set_timeout(limits, 10);
	tcase_add_checked_fixture(core, reset_logs, NULL);
	tcase_add_checked_fixture(limits, reset_logs, NULL);

	tcase_add_test(core, test_read_fires_on_read);
	tcase_add_test(core, test_write_fires_on_write);
	tcase_add_test(core, test_none_fires_nothing);
	tcase_add_test(core, test_interest_changes);
	tcase_add_test(core, test_unregister_other_in_callback);
	tcase_add_test(core, test_unregister_self_in_callback);
	tcase_add_test(core, test_drop_write_interest_in_callback);
	tcase_add_test(core, test_on_close_once);
	tcase_add_test(core, test_register_from_on_close);
	tcase_add_test(core, test_timer_order);
	tcase_add_test(core, test_timer_cancel);
	tcase_add_test(core, test_timer_rearm_moves);
	tcase_add_test(core, test_timer_rearms_itself);
	tcase_add_test(core, test_timer_rearmed_for_0_ms_waits_for_next_pass);
	tcase_add_test(core, test_poll_wait_ends_at_timer);
	tcase_add_test(core, test_timer_armed_flag);
	tcase_add_test(core, test_timer_and_fd_same_pass);
	suite_add_tcase(s, core);

	tcase_add_test(limits, test_capacity_limits);
	tcase_add_test(limits, test_double_register);
	tcase_add_test(limits, test_fd_above_fd_setsize);
	tcase_add_test(limits, test_reused_fd_gets_no_stale_event);
	tcase_add_test(limits, test_poll_empty);
	tcase_add_test(limits, test_poll_eintr);
	tcase_add_test(limits, test_timer_heap_order);
	tcase_add_test(limits, test_timer_cancel_moves_last_up);
	suite_add_tcase(s, limits);
	return s;
}
