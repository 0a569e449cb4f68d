/*
 * Unit tests of the connection engine over a socketpair(), with a tiny
 * fake protocol: every line is echoed, "STREAM n" streams n pattern
 * bytes, "QUIT" says goodbye and closes after the flush, "QUIET" gets
 * no answer, "LATER" and "LATERCLOSE" answer on a timer.  The test
 * plays the peer and drives the reactor the way server.c does (run
 * pending, reap, poll), always for a bounded time.
 */
#include <sys/socket.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "conn.h"
#include "selector.h"
#include "stats.h"

/* ---- the fake protocol ---- */

struct tconn {
	struct conn c;		/* first: the ops get a struct conn * */
	uint64_t stream_pos;
	uint64_t stream_left;
};

/* What the protocol saw; kept outside the conn, which gets freed. */
static struct {
	int destroyed;
	enum conn_end why;
	int timeouts;
	uint64_t timeout_at;
	size_t lines;		/* lines handed to on_line */
	uint64_t line_bytes;	/* their sizes, CRLF included */
	uint64_t produced;	/* stream bytes put in `out` */
	size_t max_out_cap;	/* the largest `out` seen while streaming */
	bool bad_stream_buf;	/* on_output ran without the big buffer */
	bool last_words;	/* on_destroy answers with conn_last_words() */
	bool secret_left;	/* on_destroy found SECRET in the input */
} res;

#define SECRET "s3cret-pw"

static uint8_t
pattern(uint64_t pos)
{
	return (uint8_t)(pos % 251);
}

static bool
t_line(struct conn *c, enum line_status st, char *line)
{
	struct tconn *t = (struct tconn *)c;

	res.lines++;
	ck_assert(conn_can_answer(c));
	if (st == LINE_TOO_LONG) {
		ck_assert(conn_reply(c, "-ERR too long"));
		return true;
	}
	if (st == LINE_NUL) {
		ck_assert(conn_reply(c, "-ERR nul"));
		return true;
	}
	ck_assert_int_eq(st, LINE_OK);
	res.line_bytes += strlen(line) + 2;
	if (strcmp(line, "QUIT") == 0) {
		ck_assert(conn_reply(c, "+OK bye"));
		conn_close_after_flush(c, END_QUIT);
	} else if (strncmp(line, "STREAM ", 7) == 0) {
		t->stream_pos = 0;
		t->stream_left = strtoull(line + 7, NULL, 10);
		conn_stream_begin(c, true);
	} else if (strcmp(line, "HOLD") == 0) {
		/* A big stream whose source has nothing yet: it keeps one. */
		conn_stream_begin(c, true);
		conn_stream_wait(c);
	} else if (strcmp(line, "QUIET") == 0) {
		/* Parsed, not answered. */
	} else if (strcmp(line, "LATER") == 0) {
		conn_reply_later(c, 50, "+OK later", false);
	} else if (strcmp(line, "LATERCLOSE") == 0) {
		conn_reply_later(c, 50, "-ERR later", true);
	} else {
		ck_assert(conn_reply(c, "%s", line));
	}
	return true;
}

static void
t_output(struct conn *c)
{
	struct tconn *t = (struct tconn *)c;
	size_t room, n;
	uint8_t *p = conn_out_reserve(c, &room);

	if (c->stream_mem == NULL || c->out.cap != STREAM_BUF_SIZE)
		res.bad_stream_buf = true;
	if (c->out.cap > res.max_out_cap)
		res.max_out_cap = c->out.cap;
	n = room < t->stream_left ? room : (size_t)t->stream_left;
	for (size_t i = 0; i < n; i++)
		p[i] = pattern(t->stream_pos + i);
	conn_out_commit(c, n);
	t->stream_pos += n;
	t->stream_left -= n;
	res.produced += n;
	if (t->stream_left == 0)
		conn_stream_end(c);
}

static void
t_timeout(struct conn *c)
{
	res.timeouts++;
	res.timeout_at = selector_now_ms();
	ck_assert(conn_reply(c, "-ERR idle"));
	conn_close_after_flush(c, END_TIMEOUT);
}

static void
t_destroy(struct conn *c, enum conn_end why)
{
	res.destroyed++;
	res.why = why;
	for (size_t i = 0; i + strlen(SECRET) <= sizeof(c->in_mem); i++)
		if (memcmp(c->in_mem + i, SECRET, strlen(SECRET)) == 0)
			res.secret_left = true;
	if (res.last_words) {
		ck_assert(conn_reply(c, "+OK last"));
		conn_last_words(c);
	}
	/* Scribble first, so a later use of the conn shows under ASan too. */
	memset(c, 0x6b, sizeof(struct tconn));
	free(c);
}

static const struct conn_ops tops = {
	.on_line = t_line,
	.on_output = t_output,
	.on_timeout = t_timeout,
	.on_destroy = t_destroy,
};

/* ---- the peer ---- */

struct peer {
	int fd;
	uint8_t *buf;
	size_t len, cap;
	bool eof;
};

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

		if (p->cap - p->len < 65536) {
			p->cap = p->cap == 0 ? 131072 : p->cap * 2;
			p->buf = realloc(p->buf, p->cap);
			ck_assert_ptr_nonnull(p->buf);
		}
		n = read(p->fd, p->buf + p->len, p->cap - p->len);
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
peer_send(struct peer *p, const char *text)
{
	size_t len = strlen(text);

	ck_assert_int_eq(write(p->fd, text, len), (ssize_t)len);
}

static bool
peer_has(const struct peer *p, const char *text)
{
	size_t len = strlen(text);

	return p->len == len && memcmp(p->buf, text, len) == 0;
}

static void
peer_free(struct peer *p)
{
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	free(p->buf);
	p->buf = NULL;
}

/* ---- the loop ---- */

static struct selector *sel;

/* Linked with --wrap=realloc: fails while asked to, counting failures. */
void *__real_realloc(void *ptr, size_t size);
void *__wrap_realloc(void *ptr, size_t size);
static bool fail_realloc;
static int realloc_failures;

void *
__wrap_realloc(void *ptr, size_t size)
{
	if (fail_realloc) {
		realloc_failures++;
		errno = ENOMEM;
		return NULL;
	}
	return __real_realloc(ptr, size);
}

static void
no_op_timer(struct selector *s, void *data)
{
	(void)s;
	(void)data;
}

/* One pass the way server_run() makes it, then the peer reads. */
static void
step(struct peer *p, bool reading)
{
	bool more = conn_run_pending();

	conn_reap();
	ck_assert_int_eq(selector_poll(sel, more ? 0 : 5), SELECTOR_OK);
	if (reading && p != NULL)
		peer_read(p);
}

/* Steps until cond holds or ms pass; fails with what if it never did. */
#define RUN_UNTIL(p, reading, cond, ms, what) \
	do { \
		uint64_t t0_ = selector_now_ms(); \
		while (!(cond) && selector_now_ms() - t0_ < (ms)) \
			step((p), (reading)); \
		ck_assert_msg((cond), "timed out waiting for %s", (what)); \
	} while (0)

static void
run_for(struct peer *p, bool reading, uint64_t ms)
{
	uint64_t t0 = selector_now_ms();

	while (selector_now_ms() - t0 < ms)
		step(p, reading);
}

static struct tconn *
open_conn(struct peer *p, uint64_t idle_ms, bool count_stats)
{
	int sv[2];
	struct tconn *t = calloc(1, sizeof(*t));

	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	nonblock(sv[0]);
	nonblock(sv[1]);
	memset(p, 0, sizeof(*p));
	p->fd = sv[1];
	ck_assert_int_eq(conn_init(&t->c, sv[0], sel, &tops, "test:1",
	    idle_ms, count_stats), 0);
	return t;
}

/* Closes a conn still open, and the reactor. */
static void
finish(struct peer *p)
{
	conn_run_pending();
	conn_reap();
	selector_destroy(sel);
	sel = NULL;
	peer_free(p);
}

static void
setup(void)
{
	memset(&res, 0, sizeof(res));
	/* A write to a closed peer fails an assertion, not the process. */
	signal(SIGPIPE, SIG_IGN);
	stats_init();
	sel = selector_new(1024);
	ck_assert_ptr_nonnull(sel);
}

/* For a test that did not call finish() itself. */
static void
teardown(void)
{
	fail_realloc = false;	/* a failed test must not fail the next */
	if (sel != NULL) {
		conn_run_pending();
		conn_reap();
		selector_destroy(sel);
		sel = NULL;
	}
}

#define IDLE_LONG 10000

/* ---- tests ---- */

START_TEST(test_line_answered)
{
	struct peer p;
	struct tconn *t = open_conn(&p, IDLE_LONG, false);

	peer_send(&p, "hello\r\n");
	RUN_UNTIL(&p, true, p.len >= 7, 1000, "the echo");
	run_for(&p, true, 20);
	ck_assert(peer_has(&p, "hello\r\n"));
	ck_assert_int_eq(res.destroyed, 0);
	ck_assert_uint_eq(res.lines, 1);
	ck_assert_uint_eq(t->c.bytes_in, 7);
	ck_assert_uint_eq(t->c.bytes_out, 7);
	ck_assert(buffer_empty(&t->c.out));
	/* Idle again: reads, does not watch for writability. */
	ck_assert_uint_eq(selector_interest(sel, t->c.fd), SEL_READ);
	finish(&p);
	ck_assert_int_eq(res.destroyed, 1);
	ck_assert_int_eq(res.why, END_SHUTDOWN);
}
END_TEST

START_TEST(test_pipelined_in_order)
{
	struct peer p;
	char all[4096];
	size_t len = 0;

	(void)open_conn(&p, IDLE_LONG, false);
	/* 200 lines, 2000 bytes: more than `in` holds at once. */
	for (int i = 0; i < 200; i++)
		len += (size_t)snprintf(all + len, sizeof(all) - len,
		    "line %03d\r\n", i);
	ck_assert_uint_eq(len, 2000);
	ck_assert_uint_gt(len, IN_BUF_SIZE);
	peer_send(&p, all);
	RUN_UNTIL(&p, true, p.len >= len, 1500, "200 echoes");
	run_for(&p, true, 20);
	ck_assert_uint_eq(p.len, len);
	ck_assert_mem_eq(p.buf, all, len);
	ck_assert_uint_eq(res.lines, 200);
	finish(&p);
}
END_TEST

START_TEST(test_peer_half_close_gets_answers)
{
	struct peer p;
	char all[2048];
	size_t len = 0;

	(void)open_conn(&p, IDLE_LONG, false);
	for (int i = 0; i < 100; i++)
		len += (size_t)snprintf(all + len, sizeof(all) - len,
		    "msg %04d\r\n", i);
	peer_send(&p, all);
	ck_assert_int_eq(shutdown(p.fd, SHUT_WR), 0);
	RUN_UNTIL(&p, true, p.eof, 1500, "the conn to close");
	ck_assert_uint_eq(p.len, len);
	ck_assert_mem_eq(p.buf, all, len);
	ck_assert_int_eq(res.destroyed, 1);
	ck_assert_int_eq(res.why, END_DISCONNECT);
	finish(&p);
	ck_assert_int_eq(res.destroyed, 1);
}
END_TEST

/* A partial last line at EOF is dropped, and the conn still closes. */
START_TEST(test_peer_half_close_partial_line)
{
	struct peer p;

	(void)open_conn(&p, IDLE_LONG, false);
	peer_send(&p, "one\r\ntwo");
	ck_assert_int_eq(shutdown(p.fd, SHUT_WR), 0);
	RUN_UNTIL(&p, true, p.eof, 1500, "the conn to close");
	ck_assert(peer_has(&p, "one\r\n"));
	ck_assert_int_eq(res.why, END_DISCONNECT);
	finish(&p);
}
END_TEST

/* A password in a line the client never ended is wiped at the end. */
START_TEST(test_unended_line_wiped)
{
	struct peer p;

	(void)open_conn(&p, IDLE_LONG, false);
	peer_send(&p, "PASS " SECRET);
	ck_assert_int_eq(shutdown(p.fd, SHUT_WR), 0);
	RUN_UNTIL(&p, true, p.eof, 1500, "the conn to close");
	ck_assert_int_eq(res.destroyed, 1);
	ck_assert(!res.secret_left);
	finish(&p);
}
END_TEST

START_TEST(test_close_after_flush)
{
	struct peer p;

	(void)open_conn(&p, IDLE_LONG, false);
	peer_send(&p, "hi\r\nQUIT\r\nafter\r\n");
	RUN_UNTIL(&p, true, p.eof, 1500, "the conn to close");
	ck_assert(peer_has(&p, "hi\r\n+OK bye\r\n"));
	/* The line after QUIT was never parsed. */
	ck_assert_uint_eq(res.lines, 2);
	ck_assert_int_eq(res.destroyed, 1);
	ck_assert_int_eq(res.why, END_QUIT);
	finish(&p);
}
END_TEST

static bool
check_stream(const struct peer *p, uint64_t n)
{
	if (p->len < n)
		return false;
	for (uint64_t i = 0; i < n; i++)
		if (p->buf[i] != pattern(i))
			ck_abort_msg("stream byte %llu is wrong",
			    (unsigned long long)i);
	return true;
}

START_TEST(test_stream_1mb)
{
	enum { N = 1024 * 1024 };
	struct peer p;
	struct tconn *t = open_conn(&p, IDLE_LONG, false);
	bool saw_big = false;
	uint64_t t0 = selector_now_ms();

	peer_send(&p, "STREAM 1048576\r\nafter\r\n");
	while (p.len < N + 7 && selector_now_ms() - t0 < 1500) {
		step(&p, true);
		if (res.destroyed == 0 && t->c.stream_mem != NULL)
			saw_big = true;
	}
	ck_assert_uint_eq(p.len, N + 7);
	ck_assert(check_stream(&p, N));
	/* The pipelined line waited for the end of the stream. */
	ck_assert_mem_eq(p.buf + N, "after\r\n", 7);
	ck_assert_uint_eq(res.produced, N);
	ck_assert(saw_big);
	ck_assert(!res.bad_stream_buf);
	ck_assert_uint_eq(res.max_out_cap, STREAM_BUF_SIZE);
	ck_assert_int_eq(res.destroyed, 0);
	/* Drained: the big buffer went back to the heap. */
	ck_assert(!t->c.streaming);
	ck_assert_ptr_null(t->c.stream_mem);
	ck_assert_ptr_eq(t->c.out.data, t->c.out_mem);
	ck_assert_uint_eq(t->c.out.cap, OUT_BUF_SIZE);
	ck_assert_uint_eq(t->c.bytes_out, (uint64_t)N + 7);
	/* And the conn goes on as before. */
	peer_send(&p, "again\r\n");
	RUN_UNTIL(&p, true, p.len >= N + 14, 1000, "the echo");
	ck_assert_mem_eq(p.buf + N + 7, "again\r\n", 7);
	finish(&p);
}
END_TEST

/* A peer that never reads: the stream waits, memory stays bounded. */
START_TEST(test_stream_peer_never_reads)
{
	struct peer p;
	struct tconn *t = open_conn(&p, IDLE_LONG, false);
	uint64_t produced;

	peer_send(&p, "STREAM 50000000\r\nnext\r\n");
	run_for(&p, false, 300);
	ck_assert_int_eq(res.destroyed, 0);
	ck_assert(t->c.streaming);
	ck_assert_uint_eq(t->c.out.cap, STREAM_BUF_SIZE);
	ck_assert_uint_le(buffer_readable(&t->c.out), STREAM_BUF_SIZE);
	/* Nothing produced beyond what was sent plus one buffer. */
	ck_assert_uint_le(res.produced, t->c.bytes_out + STREAM_BUF_SIZE);
	ck_assert_uint_lt(res.produced, 50000000);
	/* And production stopped: more passes produce nothing more. */
	produced = res.produced;
	run_for(&p, false, 100);
	ck_assert_uint_eq(res.produced, produced);
	ck_assert_uint_eq(res.lines, 1);
	finish(&p);
	ck_assert_int_eq(res.destroyed, 1);
	ck_assert_int_eq(res.why, END_SHUTDOWN);
}
END_TEST

/*
 * A peer that sends lines as fast as it can and never reads: the conn
 * stops reading once it cannot answer, its buffers never grow, and
 * every line is answered once the peer reads again.
 */
START_TEST(test_lines_peer_never_reads)
{
	static const char line[] = "0123456789012345678901234567890123456789"
	    "0123456789012345678901234567890123456789012345678901234567\r\n";
	enum { LEN = sizeof(line) - 1 };
	struct peer p;
	struct tconn *t = open_conn(&p, IDLE_LONG, false);
	uint64_t sent = 0, t0 = selector_now_ms();
	size_t off = 0;

	ck_assert_uint_eq(LEN, 100);
	/* Keep the peer's socket full for 300 ms without reading. */
	while (selector_now_ms() - t0 < 300) {
		for (;;) {
			ssize_t n = write(p.fd, line + off, LEN - off);

			if (n <= 0)
				break;
			sent += (uint64_t)n;
			off = (off + (size_t)n) % LEN;
		}
		step(&p, false);
		ck_assert_uint_eq(t->c.in.cap, IN_BUF_SIZE);
		ck_assert_uint_eq(t->c.out.cap, OUT_BUF_SIZE);
		ck_assert_ptr_null(t->c.stream_mem);
	}
	ck_assert_int_eq(res.destroyed, 0);
	/* Blocked: not reading, not answering. */
	ck_assert(!conn_can_answer(&t->c));
	ck_assert_uint_eq(selector_interest(sel, t->c.fd) & SEL_READ, 0);
	/* Read, but unanswered: at most what `in` holds. */
	ck_assert_uint_le(t->c.bytes_in - res.line_bytes, IN_BUF_SIZE);
	/* Answered, but unsent: at most what `out` holds. */
	ck_assert_uint_le(res.line_bytes - t->c.bytes_out, OUT_BUF_SIZE);
	ck_assert_uint_gt(sent, t->c.bytes_in);
	/* Finish the last line, then read everything. */
	if (off != 0) {
		ck_assert_int_eq(write(p.fd, line + off, LEN - off),
		    (ssize_t)(LEN - off));
		sent += LEN - off;
	}
	RUN_UNTIL(&p, true, p.len >= sent, 1500, "all the answers");
	ck_assert_uint_eq(p.len, sent);
	for (uint64_t i = 0; i < sent; i += LEN)
		if (memcmp(p.buf + i, line, LEN) != 0)
			ck_abort_msg("answer at %llu is wrong",
			    (unsigned long long)i);
	ck_assert_uint_eq(res.lines, sent / LEN);
	finish(&p);
}
END_TEST

/* STREAM_MEM_BUDGET caps the big buffers lent at once. */
START_TEST(test_stream_budget_caps_big_buffers)
{
	enum { LENT = STREAM_MEM_BUDGET / STREAM_BUF_SIZE };
	static struct peer p[LENT + 2];
	static struct tconn *t[LENT + 2];
	size_t streaming = 0, lent = 0, last;

	for (size_t i = 0; i <= LENT; i++) {
		t[i] = open_conn(&p[i], IDLE_LONG, false);
		peer_send(&p[i], "HOLD\r\n");
	}
	RUN_UNTIL(NULL, false, res.lines == LENT + 1, 3000, "every HOLD");
	for (size_t i = 0; i <= LENT; i++) {
		streaming += t[i]->c.streaming;
		lent += t[i]->c.stream_mem != NULL;
	}
	ck_assert_uint_eq(streaming, LENT + 1);
	ck_assert_uint_eq(lent, LENT);
	/* One that ends gives its buffer back for the next stream. */
	for (last = 0; t[last]->c.stream_mem == NULL; last++)
		continue;
	conn_close_soon(&t[last]->c, END_DISCONNECT);
	t[LENT + 1] = open_conn(&p[LENT + 1], IDLE_LONG, false);
	peer_send(&p[LENT + 1], "HOLD\r\n");
	RUN_UNTIL(NULL, false, res.lines == LENT + 2, 1000, "the last HOLD");
	ck_assert_ptr_nonnull(t[LENT + 1]->c.stream_mem);
	finish(&p[0]);
	for (size_t i = 1; i <= LENT + 1; i++)
		peer_free(&p[i]);
}
END_TEST

/* A big buffer given back as its stream drains is lent again. */
START_TEST(test_stream_buffer_given_back)
{
	enum { ROUNDS = 2 * (STREAM_MEM_BUDGET / STREAM_BUF_SIZE) + 1 };
	struct peer p;

	(void)open_conn(&p, IDLE_LONG, false);
	for (size_t i = 1; i <= ROUNDS; i++) {
		peer_send(&p, "STREAM 10\r\n");
		RUN_UNTIL(&p, true, p.len == 10 * i, 1000, "the stream");
	}
	ck_assert(!res.bad_stream_buf);
	finish(&p);
}
END_TEST

/*
 * A QUIT whose answer cannot be flushed: a peer that never reads,
 * behind a stream that fills the conn's small socket buffer.
 */
static struct tconn *
stuck_quit(struct peer *p, uint64_t idle_ms)
{
	struct tconn *t = open_conn(p, idle_ms, false);
	int small = 4096;

	ck_assert_int_eq(setsockopt(t->c.fd, SOL_SOCKET, SO_SNDBUF, &small,
	    sizeof(small)), 0);
	ck_assert_int_eq(setsockopt(p->fd, SOL_SOCKET, SO_RCVBUF, &small,
	    sizeof(small)), 0);
	peer_send(p, "STREAM 200000\r\nQUIT\r\n");
	RUN_UNTIL(p, false, res.lines == 2, 1000, "the QUIT");
	ck_assert(!buffer_empty(&t->c.out));
	return t;
}

/* It still quit (its UPDATE ran) when the peer goes away meanwhile. */
START_TEST(test_unflushed_quit_keeps_its_reason)
{
	struct peer p;

	(void)stuck_quit(&p, IDLE_LONG);
	close(p.fd);
	p.fd = -1;
	RUN_UNTIL(NULL, false, res.destroyed == 1, 1000, "the close");
	ck_assert_int_eq(res.why, END_QUIT);
	finish(&p);
}
END_TEST

/* And the idle deadline ends it as a QUIT, without an idle goodbye. */
START_TEST(test_unflushed_quit_closed_at_idle)
{
	struct peer p;

	(void)stuck_quit(&p, 100);
	RUN_UNTIL(NULL, false, res.destroyed == 1, 1500, "the idle close");
	ck_assert_int_eq(res.timeouts, 0);
	ck_assert_int_eq(res.why, END_QUIT);
	finish(&p);
}
END_TEST

START_TEST(test_idle_timeout)
{
	struct peer p;
	uint64_t t0 = selector_now_ms();

	(void)open_conn(&p, 50, false);
	RUN_UNTIL(&p, true, p.eof, 1500, "the idle close");
	ck_assert_int_eq(res.timeouts, 1);
	ck_assert_uint_ge(res.timeout_at - t0, 45);
	ck_assert_uint_lt(res.timeout_at - t0, 1000);
	ck_assert(peer_has(&p, "-ERR idle\r\n"));
	ck_assert_int_eq(res.destroyed, 1);
	ck_assert_int_eq(res.why, END_TIMEOUT);
	finish(&p);
}
END_TEST

/* Traffic keeps pushing the idle deadline back. */
START_TEST(test_activity_defers_timeout)
{
	struct peer p;
	uint64_t t0 = selector_now_ms(), last = t0;
	int sent = 0;

	(void)open_conn(&p, 150, false);
	while (selector_now_ms() - t0 < 450) {
		if (selector_now_ms() - last >= 25) {
			peer_send(&p, "ping\r\n");
			last = selector_now_ms();
			sent++;
		}
		step(&p, true);
	}
	ck_assert_int_eq(res.timeouts, 0);
	ck_assert_int_eq(res.destroyed, 0);
	RUN_UNTIL(&p, true, p.eof, 1000, "the idle close");
	ck_assert_int_eq(res.timeouts, 1);
	ck_assert_uint_ge(res.timeout_at - last, 140);
	ck_assert_uint_eq(p.len, (size_t)sent * 6 + 11);
	ck_assert_mem_eq(p.buf + sent * 6, "-ERR idle\r\n", 11);
	ck_assert_int_eq(res.why, END_TIMEOUT);
	finish(&p);
}
END_TEST

/* Input alone, with nothing to answer, is activity too. */
START_TEST(test_input_defers_timeout)
{
	struct peer p;
	uint64_t t0 = selector_now_ms(), last = t0;

	(void)open_conn(&p, 150, false);
	while (selector_now_ms() - t0 < 450) {
		if (selector_now_ms() - last >= 25) {
			peer_send(&p, "QUIET\r\n");
			last = selector_now_ms();
		}
		step(&p, true);
	}
	ck_assert_int_eq(res.timeouts, 0);
	ck_assert_uint_eq(p.len, 0);
	RUN_UNTIL(&p, true, p.eof, 1000, "the idle close");
	ck_assert_int_eq(res.timeouts, 1);
	ck_assert_uint_ge(res.timeout_at - last, 140);
	finish(&p);
}
END_TEST

/* Bytes of a line that never ends are no activity (slowloris). */
START_TEST(test_partial_line_does_not_defer_timeout)
{
	struct peer p;
	uint64_t t0 = selector_now_ms(), last = t0;

	(void)open_conn(&p, 150, false);
	while (!p.eof && selector_now_ms() - t0 < 1000) {
		if (selector_now_ms() - last >= 25) {
			peer_send(&p, "x");
			last = selector_now_ms();
		}
		step(&p, true);
	}
	ck_assert_int_eq(res.timeouts, 1);
	ck_assert_uint_lt(res.timeout_at - t0, 400);
	ck_assert(peer_has(&p, "-ERR idle\r\n"));
	finish(&p);
}
END_TEST

/* A slow reader of a long stream is not idle while bytes flow. */
START_TEST(test_output_defers_timeout)
{
	enum { N = 2 * 1024 * 1024, SLICE = 32 * 1024 };
	struct peer p;
	uint64_t t0 = selector_now_ms();
	uint8_t *tmp = malloc(SLICE);

	ck_assert_ptr_nonnull(tmp);
	(void)open_conn(&p, 100, false);
	peer_send(&p, "STREAM 2097152\r\n");
	/* Read at most SLICE bytes per 5 ms: well over 100 ms in all. */
	while (p.len < N && selector_now_ms() - t0 < 1800) {
		struct timespec ts = { 0, 5 * 1000 * 1000 };
		ssize_t n;

		step(&p, false);
		n = read(p.fd, tmp, SLICE);
		if (n > 0) {
			if (p.cap - p.len < (size_t)n) {
				p.cap = N + SLICE;
				p.buf = realloc(p.buf, p.cap);
				ck_assert_ptr_nonnull(p.buf);
			}
			memcpy(p.buf + p.len, tmp, (size_t)n);
			p.len += (size_t)n;
		}
		nanosleep(&ts, NULL);
	}
	free(tmp);
	ck_assert_uint_ge(selector_now_ms() - t0, 200);
	ck_assert_int_eq(res.timeouts, 0);
	ck_assert_int_eq(res.destroyed, 0);
	ck_assert_uint_eq(p.len, N);
	ck_assert(check_stream(&p, N));
	finish(&p);
}
END_TEST

START_TEST(test_line_too_long_and_nul)
{
	struct peer p;
	char junk[400];

	(void)open_conn(&p, IDLE_LONG, false);
	memset(junk, 'x', sizeof(junk));
	ck_assert_int_eq(write(p.fd, junk, sizeof(junk)),
	    (ssize_t)sizeof(junk));
	ck_assert_int_eq(write(p.fd, "QUIT\r\na\0b\r\nok\r\n", 15), 15);
	RUN_UNTIL(&p, true, p.len >= 29, 1000, "the answers");
	run_for(&p, true, 20);
	/* The tail "QUIT" of the long line is not a command. */
	ck_assert(peer_has(&p, "-ERR too long\r\n-ERR nul\r\nok\r\n"));
	ck_assert_int_eq(res.destroyed, 0);
	finish(&p);
}
END_TEST

START_TEST(test_reply_later)
{
	struct peer p;
	uint64_t t0;

	(void)open_conn(&p, IDLE_LONG, false);
	t0 = selector_now_ms();
	peer_send(&p, "LATER\r\nnext\r\n");
	run_for(&p, true, 25);
	/* Held: not even the pipelined line is answered yet. */
	ck_assert_uint_eq(p.len, 0);
	ck_assert_uint_eq(res.lines, 1);
	RUN_UNTIL(&p, true, p.len >= 17, 1000, "the late answer");
	ck_assert_uint_ge(selector_now_ms() - t0, 45);
	run_for(&p, true, 20);
	ck_assert(peer_has(&p, "+OK later\r\nnext\r\n"));
	ck_assert_int_eq(res.destroyed, 0);
	finish(&p);
}
END_TEST

START_TEST(test_reply_later_then_close)
{
	struct peer p;

	(void)open_conn(&p, IDLE_LONG, false);
	peer_send(&p, "LATERCLOSE\r\nnext\r\n");
	RUN_UNTIL(&p, true, p.eof, 1000, "the close");
	ck_assert(peer_has(&p, "-ERR later\r\n"));
	ck_assert_uint_eq(res.lines, 1);
	ck_assert_int_eq(res.destroyed, 1);
	ck_assert_int_eq(res.why, END_LIMIT);
	finish(&p);
}
END_TEST

START_TEST(test_reply_later_without_memory)
{
	/* Enough dummy timers to fill any timer heap the reactor grows. */
	static struct sel_timer dummies[1024];
	struct peer p;
	size_t n = 0;

	(void)open_conn(&p, IDLE_LONG, false);
	peer_read(&p);	/* the peer's own buffer, before realloc fails */
	fail_realloc = true;
	while (n < sizeof(dummies) / sizeof(dummies[0]) &&
	    selector_timer_arm(sel, &dummies[n], 100000, no_op_timer,
	    NULL) == SELECTOR_OK)
		n++;
	ck_assert_int_eq(realloc_failures, 1);	/* the heap is full */
	peer_send(&p, "LATERCLOSE\r\nnext\r\n");
	/* No timer to wait for: the answer and the close come at once. */
	RUN_UNTIL(&p, true, p.eof, 25, "the close");
	fail_realloc = false;
	ck_assert_int_eq(realloc_failures, 2);
	ck_assert(peer_has(&p, "-ERR later\r\n"));
	ck_assert_uint_eq(res.lines, 1);
	ck_assert_int_eq(res.why, END_LIMIT);
	for (size_t i = 0; i < n; i++)
		selector_timer_cancel(sel, &dummies[i]);
	finish(&p);
}
END_TEST

START_TEST(test_stats_counted)
{
	struct peer p;
	struct tconn *t = open_conn(&p, IDLE_LONG, true);

	ck_assert_uint_eq(stats_get()->live, 1);
	peer_send(&p, "abc\r\nQUIT\r\n");
	RUN_UNTIL(&p, true, p.eof, 1000, "the close");
	(void)t;
	ck_assert_uint_eq(stats_get()->bytes_in, 11);
	ck_assert_uint_eq(stats_get()->bytes_out, 5 + 9);
	ck_assert_uint_eq(stats_get()->live, 0);
	finish(&p);
}
END_TEST

START_TEST(test_no_stats_when_not_asked)
{
	struct peer p;

	(void)open_conn(&p, IDLE_LONG, false);
	peer_send(&p, "abc\r\n");
	RUN_UNTIL(&p, true, p.len >= 5, 1000, "the echo");
	ck_assert_uint_eq(stats_get()->live, 0);
	ck_assert_uint_eq(stats_get()->bytes_in, 0);
	ck_assert_uint_eq(stats_get()->bytes_out, 0);
	finish(&p);
}
END_TEST

static void
count_conn(struct conn *c, void *arg)
{
	(void)c;
	(*(int *)arg)++;
}

START_TEST(test_shutdown_destroys_once)
{
	struct peer p1, p2;
	int n = 0;

	(void)open_conn(&p1, IDLE_LONG, false);
	(void)open_conn(&p2, IDLE_LONG, false);
	conn_foreach(count_conn, &n);
	ck_assert_int_eq(n, 2);
	selector_destroy(sel);
	sel = NULL;
	ck_assert_int_eq(res.destroyed, 2);
	ck_assert_int_eq(res.why, END_SHUTDOWN);
	n = 0;
	conn_foreach(count_conn, &n);
	ck_assert_int_eq(n, 0);
	/* The conns closed their sockets. */
	peer_read(&p1);
	peer_read(&p2);
	ck_assert(p1.eof && p2.eof);
	peer_free(&p1);
	peer_free(&p2);
}
END_TEST

/* on_destroy still has the socket: its last words reach the peer. */
START_TEST(test_last_words_sent_before_close)
{
	struct peer p;
	struct tconn *t = open_conn(&p, IDLE_LONG, false);

	res.last_words = true;
	conn_close_soon(&t->c, END_SHUTDOWN);
	conn_reap();
	ck_assert_int_eq(res.destroyed, 1);
	peer_read(&p);
	ck_assert(peer_has(&p, "+OK last\r\n"));
	ck_assert(p.eof);
	finish(&p);
}
END_TEST

/*
 * To a peer already gone they are lost, and the failed send does not
 * queue the conn being freed for another close (here the reactor itself
 * goes, so the conn was not closing yet).
 */
START_TEST(test_last_words_to_a_gone_peer)
{
	struct peer p;

	(void)open_conn(&p, IDLE_LONG, false);
	peer_free(&p);
	res.last_words = true;
	selector_destroy(sel);
	sel = NULL;
	ck_assert_int_eq(res.destroyed, 1);
	ck_assert_int_eq(res.why, END_SHUTDOWN);
	conn_reap();
	ck_assert_int_eq(res.destroyed, 1);
}
END_TEST

/* A refused descriptor leaves nothing behind: no timer, no callback. */
START_TEST(test_init_refused)
{
	struct selector *small = selector_new(8);
	struct tconn *t = calloc(1, sizeof(*t));
	int sv[2], hi;

	ck_assert_ptr_nonnull(small);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	hi = fcntl(sv[0], F_DUPFD, 8);
	ck_assert_int_ge(hi, 8);
	ck_assert_int_eq(conn_init(&t->c, hi, small, &tops, "x", 20, true),
	    -1);
	ck_assert(!selector_timer_armed(&t->c.idle_timer));
	ck_assert_uint_eq(stats_get()->live, 0);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(selector_poll(small, 20), SELECTOR_OK);
	ck_assert_int_eq(res.timeouts, 0);
	ck_assert_int_eq(res.destroyed, 0);
	/* The caller still owns both. */
	ck_assert_int_eq(close(hi), 0);
	free(t);
	selector_destroy(small);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

START_TEST(test_reply_too_big)
{
	struct peer p;
	struct tconn *t = open_conn(&p, IDLE_LONG, false);
	char big[OUT_BUF_SIZE + 10];
	size_t room = conn_out_room(&t->c);

	ck_assert_uint_eq(room, OUT_BUF_SIZE);
	memset(big, 'b', sizeof(big));
	big[sizeof(big) - 1] = '\0';
	ck_assert(!conn_reply(&t->c, "%s", big));
	ck_assert(buffer_empty(&t->c.out));
	/* One byte short of room for the CRLF. */
	big[room - 1] = '\0';
	ck_assert(!conn_reply(&t->c, "%s", big));
	ck_assert(buffer_empty(&t->c.out));
	/* Exactly the room, CRLF included, fits. */
	big[room - 2] = '\0';
	ck_assert(conn_reply(&t->c, "%s", big));
	ck_assert_uint_eq(buffer_readable(&t->c.out), room);
	ck_assert_uint_eq(conn_out_room(&t->c), 0);
	ck_assert(!conn_reply(&t->c, "%s", ""));
	ck_assert(!conn_can_answer(&t->c));
	RUN_UNTIL(&p, true, p.len >= room, 1000, "the big reply");
	ck_assert_uint_eq(p.len, room);
	ck_assert_mem_eq(p.buf + room - 2, "\r\n", 2);
	finish(&p);
}
END_TEST

Suite *conn_suite(void);

Suite *
conn_suite(void)
{
	Suite *s = suite_create("conn");
	TCase *core = tcase_create("core");
	TCase *limits = tcase_create("limits");

	tcase_set_timeout(core, 10);
	tcase_set_timeout(limits, 10);
	tcase_add_checked_fixture(core, setup, teardown);
	tcase_add_checked_fixture(limits, setup, teardown);

	tcase_add_test(core, test_line_answered);
	tcase_add_test(core, test_pipelined_in_order);
	tcase_add_test(core, test_peer_half_close_gets_answers);
	tcase_add_test(core, test_close_after_flush);
	tcase_add_test(core, test_stream_1mb);
	tcase_add_test(core, test_idle_timeout);
	tcase_add_test(core, test_partial_line_does_not_defer_timeout);
	tcase_add_test(core, test_activity_defers_timeout);
	tcase_add_test(core, test_input_defers_timeout);
	tcase_add_test(core, test_output_defers_timeout);
	tcase_add_test(core, test_reply_later);
	tcase_add_test(core, test_reply_later_then_close);
	tcase_add_test(core, test_stats_counted);
	tcase_add_test(core, test_no_stats_when_not_asked);
	tcase_add_test(core, test_shutdown_destroys_once);
	suite_add_tcase(s, core);

	tcase_add_test(limits, test_peer_half_close_partial_line);
	tcase_add_test(limits, test_unended_line_wiped);
	tcase_add_test(limits, test_stream_peer_never_reads);
	tcase_add_test(limits, test_stream_budget_caps_big_buffers);
	tcase_add_test(limits, test_stream_buffer_given_back);
	tcase_add_test(limits, test_unflushed_quit_keeps_its_reason);
	tcase_add_test(limits, test_unflushed_quit_closed_at_idle);
	tcase_add_test(limits, test_lines_peer_never_reads);
	tcase_add_test(limits, test_line_too_long_and_nul);
	tcase_add_test(limits, test_init_refused);
	tcase_add_test(limits, test_last_words_sent_before_close);
	tcase_add_test(limits, test_last_words_to_a_gone_peer);
	tcase_add_test(limits, test_reply_too_big);
	tcase_add_test(limits, test_reply_later_without_memory);
	suite_add_tcase(s, limits);
	return s;
}
