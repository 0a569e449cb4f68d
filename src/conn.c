/*
 * Connection lifecycle and I/O: the only code that reads, writes or
 * closes client sockets.  It decides when a conn reads (room in `in`,
 * not frozen), when the protocol may parse (room in `out`, no stream, no
 * pending timer), pumps streams in bounded slices, and closes conns only
 * after the reactor pass that flagged them (deferred free, Redis).
 */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "stats.h"
#include "wipe.h"

static struct conn *pending_head;	/* conns with work but no I/O event */
static struct conn *closing_head;	/* conns to destroy after the pass */
static struct conn *driving;		/* the conn drive() is working on */
static struct conn *all_head;		/* every registered conn */
static size_t stream_mem_used;		/* bytes lent as stream buffers */

static void drive(struct conn *c);

static void
touch(struct conn *c)
{
	c->last_active = selector_now_ms();
}

static void
wake(struct conn *c)
{
	if (c->woken || c->closing)
		return;
	c->woken = true;
	c->next_pending = pending_head;
	pending_head = c;
}

bool
conn_can_answer(const struct conn *c)
{
	return !c->closing && !c->flush_then_close && !c->streaming &&
	    !c->held && !c->frozen && buffer_free(&c->out) >= MAX_REPLY_LINE;
}

static void
update_interest(struct conn *c)
{
	unsigned want = SEL_NONE;

	if (c->closing)
		return;
	/* A frozen conn neither reads nor writes: the service is paused. */
	if (c->frozen)
		want = SEL_NONE;
	else if (!c->eof && !c->flush_then_close && buffer_free(&c->in) > 0)
		want |= SEL_READ;
	if (!c->frozen && (!buffer_empty(&c->out) ||
	    (c->streaming && !c->stream_waiting)))
		want |= SEL_WRITE;
	selector_set_interest(c->sel, c->fd, want);
}

/*
 * Octets in the kernel's send queue (Linux: TIOCOUTQ on a TCP socket),
 * or UINT64_MAX when it cannot tell.
 */
static uint64_t
send_queue(const struct conn *c)
{
#ifdef TIOCOUTQ
	int n;

	if (ioctl(c->fd, TIOCOUTQ, &n) == 0 && n >= 0)
		return (uint64_t)n;
#else
	(void)c;
#endif
	return UINT64_MAX;
}

/*
 * A slow reader behind megabytes of socket buffers can take longer than
 * the idle timeout to drain them while our send() has nothing to do or
 * cannot write.  A send queue that shrank since we last looked (when
 * the socket filled up, at the last idle check, or "unknown" after a
 * send) means the peer is taking our data: activity, not idleness.
 * An empty queue means it is the client's turn to talk.
 */
static bool
peer_draining(struct conn *c)
{
	uint64_t q = send_queue(c);
	bool shrank = q != UINT64_MAX && q > 0 && q < c->queued;

	c->queued = q;
	return shrank;
}

/* Writes what `out` holds until it is empty or the socket is full. */
static void
flush(struct conn *c)
{
	while (!buffer_empty(&c->out)) {
		size_t len;
		uint8_t *p = buffer_read_ptr(&c->out, &len);
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);

		if (n > 0) {
			buffer_read_adv(&c->out, (size_t)n);
			c->queued = UINT64_MAX;
			c->bytes_out += (uint64_t)n;
			if (c->count_stats)
				stats_add_out((uint64_t)n);
			touch(c);
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			c->queued = send_queue(c);
			return;
		} else {
			conn_close_soon(c, END_DISCONNECT);
			return;
		}
	}
}

/* Gives the stream buffer back once what is left fits the small one. */
static void
shrink_out(struct conn *c)
{
	if (c->streaming || c->stream_mem == NULL ||
	    buffer_readable(&c->out) > sizeof(c->out_mem))
		return;
	buffer_move(&c->out, c->out_mem, sizeof(c->out_mem));
	free(c->stream_mem);
	c->stream_mem = NULL;
	stream_mem_used -= STREAM_BUF_SIZE;
}

/*
 * Flushes, and while a stream runs, lets it refill `out`, up to
 * MAX_STREAM_PER_PASS bytes so one fast reader cannot hog a pass.
 */
static void
pump(struct conn *c)
{
	size_t moved = 0;

	for (;;) {
		size_t before;

		flush(c);
		if (c->closing || !buffer_empty(&c->out))
			break;
		if (!c->streaming || c->stream_waiting || c->frozen ||
		    moved >= MAX_STREAM_PER_PASS)
			break;
		before = buffer_readable(&c->out);
		c->ops->on_output(c);
		if (buffer_readable(&c->out) == before && c->streaming)
			break;	/* the producer is waiting for something */
		moved += buffer_readable(&c->out) - before;
	}
	shrink_out(c);
}

/*
 * Hands complete lines to the protocol while it can answer them, at
 * most MAX_CMDS_PER_PASS per call so one pipelining client cannot hog
 * a pass.  Lines left over get the conn woken again.
 */
static void
parse(struct conn *c)
{
	for (int i = 0; i < MAX_CMDS_PER_PASS; i++) {
		char *line = NULL;
		enum line_status st;

		if (!conn_can_answer(c))
			return;
		st = proto_next_line(&c->framer, &c->in, c->line_max, &line);
		if (st == LINE_NONE) {
			c->input_idle = true;
			return;
		}
		/*
		 * A command, not a byte, is activity (RFC 1939 section 3):
		 * a line trickled a byte at a time, or never ended, must not
		 * hold a connection slot for ever (slowloris).
		 */
		touch(c);
		if (!c->ops->on_line(c, st, line))
			break;
	}
	wake(c);
}

static void
drive(struct conn *c)
{
	struct conn *outer = driving;

	if (c->closing)
		return;
	driving = c;
	if (c->frozen) {
		/* Paused: even queued replies wait for the thaw. */
		driving = outer;
		update_interest(c);
		return;
	}
	/*
	 * End of input is not the end of the session: a client may send
	 * its commands and half-close (printf ... | nc -N), and expects
	 * every answer.  A client that really went away is found when we
	 * write to it; one waiting on a silent filter keeps that filter
	 * and its maildrop lock until the filter's own time limit.
	 */
	if (!c->input_idle)
		parse(c);
	pump(c);
	if (conn_can_answer(c) && !c->input_idle)
		wake(c);	/* a stream ended: pipelined lines wait */
	driving = outer;
	if (c->closing)
		return;
	if (buffer_empty(&c->out) && !c->streaming) {
		if (c->flush_then_close)
			conn_close_soon(c, c->end);
		else if (c->eof && c->input_idle && !c->held)
			conn_close_soon(c, END_DISCONNECT);
	}
	update_interest(c);
}

static void
on_readable(struct selector *s, int fd, void *data)
{
	struct conn *c = data;
	size_t room;
	uint8_t *p = buffer_write_ptr(&c->in, &room);
	ssize_t n;

	(void)s;
	(void)fd;
	if (room == 0 || c->frozen) {
		update_interest(c);
		return;
	}
	n = read(c->fd, p, room);
	if (n > 0) {
		buffer_write_adv(&c->in, (size_t)n);
		c->bytes_in += (uint64_t)n;
		if (c->count_stats)
			stats_add_in((uint64_t)n);
		c->input_idle = false;
	} else if (n == 0) {
		c->eof = true;
	} else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
		return;
	} else {
		conn_close_soon(c, END_DISCONNECT);
		return;
	}
	drive(c);
}

static void
on_writable(struct selector *s, int fd, void *data)
{
	(void)s;
	(void)fd;
	drive(data);
}

/* The selector's on_close: the one place a conn is torn down. */
static void
on_unregistered(struct selector *s, int fd, void *data)
{
	struct conn *c = data;
	uint8_t *stream_mem = c->stream_mem;	/* `out` may live there */
	enum conn_end why = c->closing ? c->end : END_SHUTDOWN;

	selector_timer_cancel(s, &c->idle_timer);
	selector_timer_cancel(s, &c->late_timer);
	if (c->count_stats)
		stats_closed();
	if (c->prev_all != NULL)
		c->prev_all->next_all = c->next_all;
	else
		all_head = c->next_all;
	if (c->next_all != NULL)
		c->next_all->prev_all = c->prev_all;
	/*
	 * The socket stays open through on_destroy for conn_last_words();
	 * closing, so no reply or failed send there queues the conn again.
	 */
	c->closing = true;
	/* A PASS line the client never ended is in no handler's hands. */
	wipe(c->in_mem, sizeof(c->in_mem));
	c->ops->on_destroy(c, why);
	if (stream_mem != NULL)
		stream_mem_used -= STREAM_BUF_SIZE;
	free(stream_mem);
	close(fd);
}

static const struct sel_handler conn_handler = {
	.on_read = on_readable,
	.on_write = on_writable,
	.on_close = on_unregistered,
};

/*
 * True while the client waits for us, not we for it: a login being
 * checked, an MGMT TIMEOUT running, a producer with nothing out yet (a
 * filter still thinking, a maildrop being listed, a QUIT's unlinks:
 * nothing in our buffer nor in the kernel's).  Each of those has its
 * own bound (the filter's time limit, slices).
 */
static bool
client_waits(const struct conn *c)
{
	return c->held || (c->streaming && (c->stream_waiting ||
	    (buffer_empty(&c->out) && send_queue(c) == 0)));
}

static void on_idle_timer(struct selector *s, void *data);

/*
 * (Re)arms c's idle timer.  A conn without one would never be logged
 * out, so one that cannot be armed (no memory) ends the session now.
 */
static void
arm_idle(struct conn *c, uint64_t ms)
{
	if (selector_timer_arm(c->sel, &c->idle_timer, ms, on_idle_timer,
	    c) != SELECTOR_OK)
		conn_close_soon(c, END_ERROR);
}

static void
on_idle_timer(struct selector *s, void *data)
{
	struct conn *c = data;
	uint64_t now = selector_now_ms();
	uint64_t deadline = c->last_active + c->idle_ms;
	bool exempt = c->frozen || client_waits(c);

	(void)s;
	if (c->closing)
		return;
	if (!exempt && now >= deadline && peer_draining(c)) {
		touch(c);
		deadline = now + c->idle_ms;
	}
	if (exempt || now < deadline) {
		/* A paused service never counts against the idle timer. */
		uint64_t left = exempt ? c->idle_ms : deadline - now;

		arm_idle(c, left);
		return;
	}
	if (c->flush_then_close) {
		conn_close_soon(c, c->end);
		return;
	}
	c->ops->on_timeout(c);
	/* A goodbye that cannot be flushed gets one second, then the axe. */
	if (!c->closing)
		arm_idle(c, 1000);
}

int
conn_init(struct conn *c, int fd, struct selector *sel,
    const struct conn_ops *ops, const char *peer, uint64_t idle_ms,
    bool count_stats)
{
	memset(c, 0, offsetof(struct conn, in_mem));
	c->fd = fd;
	c->sel = sel;
	c->ops = ops;
	c->idle_ms = idle_ms;
	c->line_max = POP3_MAX_LINE;
	c->count_stats = count_stats;
	c->input_idle = true;
	buffer_init(&c->in, c->in_mem, sizeof(c->in_mem));
	buffer_init(&c->out, c->out_mem, sizeof(c->out_mem));
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	touch(c);
	if (selector_timer_arm(sel, &c->idle_timer, idle_ms, on_idle_timer,
	    c) != SELECTOR_OK)
		return -1;
	if (selector_register(sel, fd, &conn_handler, SEL_READ, c) !=
	    SELECTOR_OK) {
		selector_timer_cancel(sel, &c->idle_timer);
		return -1;
	}
	if (count_stats)
		stats_opened();
	c->next_all = all_head;
	if (all_head != NULL)
		all_head->prev_all = c;
	all_head = c;
	return 0;
}

bool
conn_vreply(struct conn *c, const char *fmt, va_list ap)
{
	size_t room;
	uint8_t *p = buffer_write_ptr(&c->out, &room);
	int n = vsnprintf((char *)p, room, fmt, ap);

	if (n < 0 || (size_t)n + 2 > room)
		return false;
	p[n] = '\r';
	p[n + 1] = '\n';
	buffer_write_adv(&c->out, (size_t)n + 2);
	if (c != driving)
		wake(c);
	return true;
}

bool
conn_reply(struct conn *c, const char *fmt, ...)
{
	va_list ap;
	bool ok;

	va_start(ap, fmt);
	ok = conn_vreply(c, fmt, ap);
	va_end(ap);
	return ok;
}

size_t
conn_out_room(const struct conn *c)
{
	return buffer_free(&c->out);
}

uint8_t *
conn_out_reserve(struct conn *c, size_t *room)
{
	return buffer_write_ptr(&c->out, room);
}

void
conn_out_commit(struct conn *c, size_t n)
{
	buffer_write_adv(&c->out, n);
}

void
conn_stream_begin(struct conn *c, bool big)
{
	if (big && c->stream_mem == NULL &&
	    stream_mem_used + STREAM_BUF_SIZE <= STREAM_MEM_BUDGET) {
		uint8_t *mem = malloc(STREAM_BUF_SIZE);

		/* Without it the stream still runs, through the small one. */
		if (mem != NULL) {
			buffer_move(&c->out, mem, STREAM_BUF_SIZE);
			c->stream_mem = mem;
			stream_mem_used += STREAM_BUF_SIZE;
		}
	}
	c->streaming = true;
}

void
conn_stream_wait(struct conn *c)
{
	c->stream_waiting = true;
}

void
conn_stream_resume(struct conn *c)
{
	if (!c->stream_waiting)
		return;
	c->stream_waiting = false;
	wake(c);
}

void
conn_stream_end(struct conn *c)
{
	c->streaming = false;
	c->stream_waiting = false;
	if (c != driving)
		wake(c);
}

void
conn_hold(struct conn *c)
{
	c->held = true;
}

void
conn_release(struct conn *c)
{
	c->held = false;
	wake(c);
}

static void
on_late_timer(struct selector *s, void *data)
{
	struct conn *c = data;

	(void)s;
	c->held = false;
	if (c->closing)
		return;
	conn_reply(c, "%s", c->late_line);
	if (c->late_close)
		conn_close_after_flush(c, END_LIMIT);
	wake(c);
}

void
conn_reply_later(struct conn *c, uint64_t ms, const char *line,
    bool then_close)
{
	snprintf(c->late_line, sizeof(c->late_line), "%s", line);
	c->late_close = then_close;
	c->held = true;
	/* No memory for the timer: the answer goes now, the close too. */
	if (selector_timer_arm(c->sel, &c->late_timer, ms, on_late_timer,
	    c) != SELECTOR_OK)
		on_late_timer(c->sel, c);
}

void
conn_freeze(struct conn *c, bool frozen)
{
	if (c->frozen == frozen)
		return;
	c->frozen = frozen;
	if (frozen) {
		c->frozen_at = selector_now_ms();
	} else {
		c->last_active += selector_now_ms() - c->frozen_at;
		conn_set_idle(c, c->idle_ms);
		wake(c);
	}
	update_interest(c);
}

void
conn_set_line_max(struct conn *c, size_t max)
{
	c->line_max = max;
}

void
conn_set_idle(struct conn *c, uint64_t idle_ms)
{
	uint64_t now = selector_now_ms();
	uint64_t deadline = c->last_active + idle_ms;

	c->idle_ms = idle_ms;
	if (c->closing)
		return;
	arm_idle(c, deadline > now ? deadline - now : 0);
}

void
conn_last_words(struct conn *c)
{
	flush(c);
}

void
conn_close_after_flush(struct conn *c, enum conn_end why)
{
	if (c->flush_then_close || c->closing)
		return;
	c->flush_then_close = true;
	c->end = why;
	if (c != driving)
		wake(c);
}

void
conn_close_soon(struct conn *c, enum conn_end why)
{
	if (c->closing)
		return;
	c->closing = true;
	/*
	 * A session already ending after its flush keeps that reason: a
	 * QUIT whose answer could not be sent still quit (its UPDATE ran).
	 */
	if (!c->flush_then_close)
		c->end = why;
	selector_set_interest(c->sel, c->fd, SEL_NONE);
	c->next_closing = closing_head;
	closing_head = c;
}

bool
conn_run_pending(void)
{
	struct conn *list = pending_head;

	pending_head = NULL;
	while (list != NULL) {
		struct conn *c = list;

		list = c->next_pending;
		c->woken = false;
		drive(c);
	}
	return pending_head != NULL;
}

void
conn_reap(void)
{
	struct conn **pp = &pending_head;

	if (closing_head == NULL)
		return;
	/* A conn about to be freed must leave the pending list first. */
	while (*pp != NULL) {
		if ((*pp)->closing)
			*pp = (*pp)->next_pending;
		else
			pp = &(*pp)->next_pending;
	}
	while (closing_head != NULL) {
		struct conn *c = closing_head;

		closing_head = c->next_closing;
		selector_unregister(c->sel, c->fd);
	}
}

void
conn_foreach(void (*fn)(struct conn *c, void *arg), void *arg)
{
	struct conn *c = all_head;

	while (c != NULL) {
		struct conn *next = c->next_all;

		if (!c->closing)
			fn(c, arg);
		c = next;
	}
}

const char *
conn_end_name(enum conn_end why)
{
	static const char *const names[] = {
		[END_QUIT] = "quit", [END_TIMEOUT] = "timeout",
		[END_DISCONNECT] = "disconnect", [END_SHUTDOWN] = "shutdown",
		[END_ERROR] = "error", [END_BROKEN] = "broken",
		[END_LIMIT] = "limit",
		[END_KICKED] = "kicked",
	};

	return (size_t)why < sizeof(names) / sizeof(names[0]) ?
	    names[why] : "error";
}
