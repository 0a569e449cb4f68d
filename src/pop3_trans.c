/*
 * TRANSACTION and UPDATE states: STAT, LIST, RETR, DELE, NOOP, RSET,
 * TOP, UIDL, CAPA, QUIT.  DELE only marks; files are unlinked in UPDATE,
 * reached by QUIT alone (RFC 1939 section 6).  RETR and TOP stream the
 * file through the dot-stuffer a slice at a time as the socket drains,
 * so memory does not grow with message size.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "pop3_session.h"

/*
 * File bytes read per step (a step never sends more than it read, so
 * STREAM_STEP is enough).  Borrowed for one producer call only (one
 * thread: the Redis lending rule); never kept in a session.
 */
static uint8_t scratch[STREAM_STEP];

/* Longest LIST/UIDL line: number, space, 20 digits or a 70-char uid. */
#define LISTING_LINE_MAX 96

/*
 * Parses a message number for a command: digits only, 1..count, not
 * deleted.  On failure sets the reason and returns false.
 */
static bool
get_msg(struct pop3_session *s, const char *arg, size_t *n)
{
	uint64_t v;
	const struct mail_msg *m;

	if (!proto_parse_uint(arg, SIZE_MAX, &v)) {
		pop3_fail(s, "invalid message number");
		return false;
	}
	m = maildir_msg(s->md, (size_t)v);
	if (m == NULL) {
		pop3_fail(s, "no such message");
		return false;
	}
	if (m->deleted) {
		pop3_fail(s, "message %zu already deleted", (size_t)v);
		return false;
	}
	*n = (size_t)v;
	return true;
}

static void produce_commit(struct pop3_session *s);

/*
 * One slice of QUIT's work (sliced false: all of it): the unlinks, then
 * the check that no copy took a deleted message's name meanwhile; true
 * once both are done.
 */
static bool
quit_work(struct pop3_session *s, bool sliced)
{
	int64_t start;
	bool done;

	if (!sliced)
		return maildir_commit_step(s->md, 0) &&
		    maildir_commit_verify(s->md, 0);
	if ((start = pop3_work_start(s)) < 0)
		return false;
	done = maildir_commit_step(s->md, COMMIT_PER_PASS) &&
	    maildir_commit_verify(s->md, VERIFY_PER_PASS);
	pop3_work_done(start);
	return done;
}

/*
 * Once QUIT's work is done: counts the deletions for the logout line,
 * logs failures; the number that failed.
 */
static size_t
quit_outcome(struct pop3_session *s)
{
	size_t failed, marked;

	failed = maildir_commit_failed(s->md);
	marked = maildir_count(s->md) - maildir_live_count(s->md);

	s->dele_count = (unsigned)(marked - failed);
	if (failed > 0) {
		const char *why = "";
		char file[256];

		log_sanitize(file, sizeof(file),
		    maildir_commit_first_failure(s->md, &why));
		log_warn("pop3[%lu] user=%s %zu deletions failed (the first, "
		    "%s: %s)", s->id, s->user, failed, file, why);
	}
	return failed;
}

static void
answer_quit(struct pop3_session *s)
{
	size_t failed = quit_outcome(s), left = maildir_live_count(s->md);

	if (failed > 0)
		pop3_reply(s, "-ERR [SYS/TEMP] not every message could be "
		    "deleted (%zu failed)", failed);
	else
		pop3_reply(s, "+OK " POP3D_NAME " signing off (%zu message%s "
		    "left)", left, left == 1 ? "" : "s");
}

bool
pop3_quit_running(const struct pop3_session *s)
{
	return s->produce == produce_commit;
}

bool
pop3_quit_step(struct pop3_session *s)
{
	if (!quit_work(s, true))
		return false;
	(void)quit_outcome(s);
	s->produce = NULL;
	return true;
}

void
pop3_trans_cleanup(struct pop3_session *s)
{
	/*
	 * The server is stopping with this QUIT's deletions under way: its
	 * owner asked for them, so they are finished here, and answered.
	 */
	if (s->produce == produce_commit) {
		(void)quit_work(s, false);
		answer_quit(s);
		conn_last_words(&s->base.conn);
		s->produce = NULL;
	}
	if (s->msg_fd >= 0) {
		close(s->msg_fd);
		s->msg_fd = -1;
	}
	/* A filter still running is killed here (the client went away). */
	filter_destroy(s->filter);
	s->filter = NULL;
}

static enum cmd_result
cmd_stat(void *sp, int argc, char **argv)
{
	struct pop3_session *s = sp;

	(void)argc;
	(void)argv;
	pop3_reply(s, "+OK %zu %llu", maildir_live_count(s->md),
	    (unsigned long long)maildir_live_size(s->md));
	return CMD_REPLIED;
}

/* Writes LIST or UIDL lines while there is room, then the terminator. */
static void
produce_listing(struct pop3_session *s, bool uidl)
{
	size_t count = maildir_count(s->md);

	while (s->cursor <= count) {
		const struct mail_msg *m = maildir_msg(s->md, s->cursor);

		if (conn_out_room(&s->base.conn) < LISTING_LINE_MAX)
			return;
		if (!m->deleted) {
			if (uidl)
				pop3_reply(s, "%zu %s", s->cursor, m->uid);
			else
				pop3_reply(s, "%zu %llu", s->cursor,
				    (unsigned long long)m->size);
		}
		s->cursor++;
	}
	if (pop3_reply(s, "."))
		pop3_stream_done(s);
}

static void
produce_list(struct pop3_session *s)
{
	produce_listing(s, false);
}

static void
produce_uidl(struct pop3_session *s)
{
	produce_listing(s, true);
}

static enum cmd_result
cmd_list(void *sp, int argc, char **argv)
{
	struct pop3_session *s = sp;
	size_t n;

	if (argc == 2) {
		if (!get_msg(s, argv[1], &n))
			return CMD_ERR;
		pop3_reply(s, "+OK %zu %llu", n,
		    (unsigned long long)maildir_msg(s->md, n)->size);
		return CMD_REPLIED;
	}
	pop3_reply_tally(s, "");
	s->cursor = 1;
	return pop3_stream(s, produce_list,
	    maildir_count(s->md) > SMALL_LISTING);
}

static enum cmd_result
cmd_uidl(void *sp, int argc, char **argv)
{
	struct pop3_session *s = sp;
	size_t n;

	if (argc == 2) {
		if (!get_msg(s, argv[1], &n))
			return CMD_ERR;
		pop3_reply(s, "+OK %zu %s", n, maildir_msg(s->md, n)->uid);
		return CMD_REPLIED;
	}
	pop3_reply(s, "+OK unique-id listing follows");
	s->cursor = 1;
	return pop3_stream(s, produce_uidl,
	    maildir_count(s->md) > SMALL_LISTING);
}

/* Ends a message stream that cannot be finished: drop the client. */
static void
stream_broken(struct pop3_session *s, const char *why)
{
	log_warn("pop3[%lu] user=%s message stream: %s", s->id, s->user, why);
	pop3_abort(s);
}

/* Where this step may write in `out`, and how much (one STREAM_STEP). */
static uint8_t *
step_room(struct pop3_session *s, size_t *room)
{
	uint8_t *dst = conn_out_reserve(&s->base.conn, room);

	if (*room > STREAM_STEP)
		*room = STREAM_STEP;
	return dst;
}

/* Encodes what fits of src into `out`; returns the bytes of src used. */
static size_t
encode(struct pop3_session *s, const uint8_t *src, size_t n)
{
	size_t room, produced, used;
	uint8_t *dst = step_room(s, &room);

	used = dotstuff_feed(&s->ds, src, n, dst, room, &produced);
	conn_out_commit(&s->base.conn, produced);
	return used;
}

/* Writes the end of the message and ends the stream, once it fits. */
static void
finish_message(struct pop3_session *s)
{
	size_t room, n;
	uint8_t *dst = conn_out_reserve(&s->base.conn, &room);

	n = dotstuff_end(&s->ds, dst, room);
	if (n == 0)
		return;		/* no room yet: called again after a flush */
	/*
	 * A file rewritten in place while it was sent (same length, other
	 * line ends) does not add up to the "+OK n octets": no '.' then.
	 */
	if (s->sending_retr && s->filter == NULL &&
	    dotstuff_size(&s->ds) != s->sending_size) {
		stream_broken(s, "the file changed while it was sent");
		return;
	}
	conn_out_commit(&s->base.conn, n);
	/* Only a message sent whole counts as read (the access log). */
	if (s->sending_retr) {
		s->retr_count++;
		s->retr_bytes += s->sending_size;
	} else {
		s->top_count++;
	}
	pop3_trans_cleanup(s);
	pop3_stream_done(s);
}

/*
 * Input bytes that surely fit this step's room once encoded (encoding
 * at most doubles them); 0 when out is too full.
 */
static size_t
safe_slice(struct pop3_session *s)
{
	size_t room;

	(void)step_room(s, &room);
	if (room < 2 * DOTSTUFF_END_MAX)
		return 0;
	room = (room - DOTSTUFF_END_MAX) / 2;
	return room < sizeof(scratch) ? room : sizeof(scratch);
}

/*
 * Reads one step of the message file and encodes it.  The encoder takes
 * what fits and the rest is read again next time (pread at our own
 * offset), so every step sends a full STREAM_STEP.  A file shorter than
 * when it was listed ends the connection: never a truncated message
 * closed by a '.'.
 */
static void
produce_message(struct pop3_session *s)
{
	size_t room, want, used;
	ssize_t n;

	if (s->msg_left == 0 || dotstuff_done(&s->ds)) {
		finish_message(s);
		return;
	}
	(void)step_room(s, &room);
	if (room < 2 * DOTSTUFF_END_MAX)
		return;
	want = s->msg_left < sizeof(scratch) ? (size_t)s->msg_left :
	    sizeof(scratch);
	if (want > room)
		want = room;
	n = pread(s->msg_fd, scratch, want, (off_t)s->msg_off);
	if (n < 0 && errno == EINTR)
		return;
	if (n <= 0) {
		stream_broken(s, n < 0 ? strerror(errno) : "file shrank");
		return;
	}
	used = encode(s, scratch, (size_t)n);
	s->msg_off += used;
	s->msg_left -= used;
}

static void
filter_ready(void *owner)
{
	struct pop3_session *s = owner;

	conn_stream_resume(&s->base.conn);
}

/*
 * Streams a filter's output.  The +OK waits for its first byte (or a
 * clean exit with none); a failure before that is an -ERR and the
 * session goes on, a failure after it ends the connection: never a
 * truncated message closed by a '.'.
 */
static void
produce_filtered(struct pop3_session *s)
{
	enum filter_state st = filter_state(s->filter);
	size_t want, n;

	if (!s->filter_replied) {
		if (st == FILTER_FAILED) {
			pop3_trans_cleanup(s);
			pop3_reply(s, "-ERR [SYS/TEMP] filter failed");
			pop3_stream_done(s);
			return;
		}
		if (!filter_has_output(s->filter) && st != FILTER_DONE) {
			conn_stream_wait(&s->base.conn);
			return;
		}
		pop3_reply(s, "+OK filtered message follows");
		s->filter_replied = true;
	}
	if (st == FILTER_FAILED) {
		stream_broken(s, "filter failed mid-message");
		return;
	}
	want = safe_slice(s);
	if (want == 0)
		return;
	n = filter_take(s->filter, scratch, want);
	if (n > 0) {
		if (encode(s, scratch, n) != n)
			stream_broken(s, "encoder overflow");
	} else if (st == FILTER_DONE) {
		finish_message(s);
	} else {
		conn_stream_wait(&s->base.conn);
	}
}

static enum cmd_result
send_filtered(struct pop3_session *s, size_t n, int fd)
{
	const struct mail_msg *m = maildir_msg(s->md, n);
	struct filter_job job = {
		.command = s->env->settings->filter,
		.input_fd = fd,
		.user = s->user,
		.server = s->env->hostname,
		.uidl = m->uid,
		.msgnum = n,
		.limit_ms = (uint64_t)s->env->settings->filter_limit_s * 1000,
		.log_id = s->id,
	};

	s->filter = filter_start(s->base.conn.sel, &job, filter_ready, s);
	if (s->filter == NULL)
		return pop3_fail(s, "[SYS/TEMP] filter failed");
	s->filter_replied = false;
	dotstuff_init(&s->ds, false, 0);
	return pop3_stream(s, produce_filtered, true);
}

/* Opens message n and starts streaming it (RETR, or TOP with a limit). */
static enum cmd_result
send_message(struct pop3_session *s, size_t n, bool limited, uint64_t lines)
{
	const struct mail_msg *m = maildir_msg(s->md, n);
	enum maildir_status st = maildir_msg_open(s->md, n, &s->msg_fd);

	s->sending_retr = !limited;
	s->sending_size = m->size;
	if (st != MAILDIR_OK) {
		int err = errno;
		char what[40];

		s->msg_fd = -1;
		(void)snprintf(what, sizeof(what), "message %zu", n);
		pop3_maildir_warn(s, what, st, err);
		return pop3_fail(s, "[SYS/TEMP] message %zu is not available",
		    n);
	}
	if (!limited && s->env->settings->filter != NULL) {
		int fd = s->msg_fd;

		s->msg_fd = -1;
		return send_filtered(s, n, fd);
	}
	s->msg_left = m->file_size;
	s->msg_off = 0;
	dotstuff_init(&s->ds, limited, lines);
	pop3_stream(s, produce_message, true);
	if (limited)
		pop3_reply(s, "+OK top of message follows");
	else
		pop3_reply(s, "+OK %llu octets", (unsigned long long)m->size);
	return CMD_STREAM;
}

static enum cmd_result
cmd_retr(void *sp, int argc, char **argv)
{
	struct pop3_session *s = sp;
	size_t n;

	(void)argc;
	if (!get_msg(s, argv[1], &n))
		return CMD_ERR;
	return send_message(s, n, false, 0);
}

static enum cmd_result
cmd_top(void *sp, int argc, char **argv)
{
	struct pop3_session *s = sp;
	uint64_t lines;
	size_t n;

	(void)argc;
	if (!get_msg(s, argv[1], &n))
		return CMD_ERR;
	if (!proto_parse_count(argv[2], &lines))
		return pop3_fail(s, "invalid number of lines");
	return send_message(s, n, true, lines);
}

static enum cmd_result
cmd_dele(void *sp, int argc, char **argv)
{
	struct pop3_session *s = sp;
	size_t n;

	(void)argc;
	if (!get_msg(s, argv[1], &n))
		return CMD_ERR;
	maildir_mark_deleted(s->md, n);
	pop3_reply(s, "+OK message %zu deleted", n);
	return CMD_REPLIED;
}

static enum cmd_result
cmd_noop(void *sp, int argc, char **argv)
{
	(void)sp;
	(void)argc;
	(void)argv;
	return CMD_OK;
}

static enum cmd_result
cmd_rset(void *sp, int argc, char **argv)
{
	struct pop3_session *s = sp;

	(void)argc;
	(void)argv;
	maildir_rollback(s->md);
	pop3_reply_tally(s, "maildrop has ");
	return CMD_REPLIED;
}

static enum cmd_result
cmd_quit(void *sp, int argc, char **argv)
{
	struct pop3_session *s = sp;

	(void)argc;
	(void)argv;
	s->next_state = POP3_UPDATE;
	return CMD_NEXT;
}

/* UPDATE, a slice of unlinks per pass: the only place mail is removed. */
static void
produce_commit(struct pop3_session *s)
{
	if (!quit_work(s, true))
		return;
	answer_quit(s);
	pop3_stream_done(s);
	conn_close_after_flush(&s->base.conn, END_QUIT);
}

void
pop3_update_enter(unsigned state, void *ctx)
{
	(void)state;
	(void)pop3_stream(ctx, produce_commit, false);
}

const struct cmd pop3_trans_cmds[] = {
	{ "STAT", cmd_stat, 0, 0, 0, NULL },
	{ "LIST", cmd_list, 0, 1, 0, NULL },
	{ "RETR", cmd_retr, 1, 1, 0, NULL },
	{ "DELE", cmd_dele, 1, 1, 0, NULL },
	{ "NOOP", cmd_noop, 0, 0, 0, NULL },
	{ "RSET", cmd_rset, 0, 0, 0, NULL },
	{ "TOP", cmd_top, 2, 2, 0, NULL },
	{ "UIDL", cmd_uidl, 0, 1, 0, NULL },
	{ "CAPA", pop3_cmd_capa, 0, 0, 0, NULL },
	{ "QUIT", cmd_quit, 0, 0, 0, NULL },
	{ NULL, NULL, 0, 0, 0, NULL },
};
