/*
 * A client connection: its socket, its bounded input and output
 * buffers, its idle timer, and the rules that decide when it reads,
 * writes and closes.  It frames `in` into lines (one line reader for
 * every protocol) and hands them to the protocol on top (POP3, MGMT),
 * which appends replies to `out` and produces streams; the protocol
 * never touches the socket and never frees the conn.
 *
 * Parsing stops while the protocol cannot answer (output nearly full, a
 * stream running, a reply pending on a timer); reading goes on only
 * until the 1 KiB input buffer is full, so a client that sends faster
 * than it reads gets bounded memory.  Output is written at once;
 * writability is watched only while bytes remain (Redis).
 */
#ifndef POP3D_CONN_H
#define POP3D_CONN_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buffer.h"
#include "config.h"
#include "proto.h"
#include "selector.h"

struct conn;

/* Why a connection ended (the access log's reason=). */
enum conn_end {
	END_QUIT,
	END_TIMEOUT,
	END_DISCONNECT,
	END_SHUTDOWN,
	END_ERROR,	/* a failure on our side (no memory) */
	END_BROKEN,	/* a message could not be sent whole */
	END_LIMIT,	/* too many failed logins or bad commands */
	END_KICKED,	/* closed by the administrator */
};

/* The reason as the access log writes it: quit, timeout, disconnect... */
const char *conn_end_name(enum conn_end why);

struct conn_ops {
	/*
	 * One line framed out of `in` (or LINE_TOO_LONG / LINE_NUL), only
	 * called when conn_can_answer().  The line lives until the call
	 * returns.  Returning false stops parsing for this pass (the
	 * protocol changed state; the rest is parsed right after).
	 */
	bool (*on_line)(struct conn *c, enum line_status st, char *line);
	/* A stream is running and out has room: produce more. */
	void (*on_output)(struct conn *c);
	/* The idle timer ran out. */
	void (*on_timeout)(struct conn *c);
	/*
	 * Last call: the conn is unregistered and its memory the
	 * protocol's to release (at once, or after work of its own).  The
	 * socket is still open: conn_last_words() may send a reply.
	 */
	void (*on_destroy)(struct conn *c, enum conn_end why);
};

struct conn {
	int fd;
	struct selector *sel;
	const struct conn_ops *ops;
	struct buffer in, out;
	struct framer framer;	/* the only consumer of `in` */
	uint8_t *stream_mem;	/* STREAM_BUF_SIZE, only while streaming */
	bool count_stats;	/* a POP3 socket: feed the stats counters */
	bool streaming;		/* parsing paused; on_output is called */
	bool stream_waiting;	/* the producer waits for its source */
	bool held;		/* parsing paused by the protocol (a timer) */
	bool frozen;		/* the whole service is paused (MGMT) */
	bool eof;		/* the peer closed its side */
	bool input_idle;	/* no complete line left in `in` */
	bool flush_then_close;
	bool closing;
	bool woken;		/* on the pending list */
	enum conn_end end;
	uint64_t bytes_in, bytes_out;
	size_t line_max;	/* longest line accepted, line end included */
	uint64_t idle_ms;
	uint64_t last_active;
	uint64_t frozen_at;	/* when the pause began */
	uint64_t queued;	/* send queue last seen (peer_draining) */
	struct sel_timer idle_timer;
	struct sel_timer late_timer;	/* conn_reply_later() */
	bool late_close;
	char late_line[96];
	struct conn *next_pending;
	struct conn *next_closing;
	struct conn *prev_all, *next_all;	/* every live conn */
	char peer[64];		/* "addr:port" or "[addr]:port" */
	uint8_t in_mem[IN_BUF_SIZE];
	uint8_t out_mem[OUT_BUF_SIZE];
};

/*
 * Sets up c for the connected, non-blocking socket fd (c's memory is the
 * caller's, usually embedded in a protocol session) and registers it.
 * Returns 0, or -1 when the reactor refused the descriptor (the caller
 * then still owns fd and c).
 */
int conn_init(struct conn *c, int fd, struct selector *sel,
    const struct conn_ops *ops, const char *peer, uint64_t idle_ms,
    bool count_stats);

/*
 * Appends one reply line plus CRLF to `out`.  Returns false, appending
 * nothing, if it does not fit (callers check room first: parsing only
 * runs with MAX_REPLY_LINE bytes free).
 */
bool conn_reply(struct conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
bool conn_vreply(struct conn *c, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/*
 * True when the protocol may parse and answer one more command now:
 * MAX_REPLY_LINE bytes free in `out`, no stream, no hold, not closing.
 */
bool conn_can_answer(const struct conn *c);

/* Room left in `out`. */
size_t conn_out_room(const struct conn *c);

/*
 * For a stream's producer, which encodes straight into `out` instead
 * of formatting a reply: where it may write, and how much (*room, 0
 * when full).  conn_out_commit() then says how many of those bytes it
 * wrote, for the reactor to send.
 */
uint8_t *conn_out_reserve(struct conn *c, size_t *room);
void conn_out_commit(struct conn *c, size_t n);

/*
 * Starts a stream: parsing pauses and on_output is called whenever out
 * has room, until conn_stream_end().  With big=true `out` grows to
 * STREAM_BUF_SIZE for the stream's life when STREAM_MEM_BUDGET allows
 * (otherwise the stream uses the small buffer).
 */
void conn_stream_begin(struct conn *c, bool big);
/* The producer wrote its last byte: parsing resumes after the flush. */
void conn_stream_end(struct conn *c);

/*
 * The producer has nothing now (its source is a pipe): on_output is not
 * called until conn_stream_resume(), so no time is spent polling.
 */
void conn_stream_wait(struct conn *c);
void conn_stream_resume(struct conn *c);

/* Pauses parsing while the protocol waits for something / resumes it. */
void conn_hold(struct conn *c);
void conn_release(struct conn *c);

/*
 * Answers `line` after `ms` milliseconds (a failed login's delay),
 * parsing nothing meanwhile; then closes after the flush
 * if then_close (END_LIMIT), or resumes parsing.  When the timer cannot
 * be armed (no memory), all that happens at once.  A line longer than
 * late_line is truncated.
 */
void conn_reply_later(struct conn *c, uint64_t ms, const char *line,
    bool then_close);

/*
 * Freezes / thaws all input and output of the conn (the MGMT pause).
 * The idle clock stops while frozen: a thawed conn has as long left as
 * it had when the pause began.
 */
void conn_freeze(struct conn *c, bool frozen);

/* Sets the longest line the next lines may have (POP3_MAX_LINE at start). */
void conn_set_line_max(struct conn *c, size_t max);

/* Changes the idle timeout (milliseconds) from now on. */
void conn_set_idle(struct conn *c, uint64_t idle_ms);

/* Closes once `out` is flushed (or at the idle deadline). */
void conn_close_after_flush(struct conn *c, enum conn_end why);
/* Closes after the current reactor pass; output is dropped. */
void conn_close_soon(struct conn *c, enum conn_end why);
/*
 * Last words before the conn goes (on_destroy may call it): sends what
 * `out` holds as far as the socket takes it now, never waiting (a QUIT
 * answered as the server stops).
 */
void conn_last_words(struct conn *c);

/*
 * Runs deferred work: conns woken since the last call get their input
 * parsed and output pumped.  Returns true when more is pending (the
 * reactor should not sleep).
 */
bool conn_run_pending(void);
/* Destroys every conn flagged by conn_close_soon(). */
void conn_reap(void);

/* Calls fn(c, arg) for every conn not yet closing (fn may close c). */
void conn_foreach(void (*fn)(struct conn *c, void *arg), void *arg);

#endif
