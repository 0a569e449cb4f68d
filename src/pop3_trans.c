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
 * File bytes read per slice.  Borrowed for one producer call only (one
 * thread: the Redis lending rule); never kept in a session.
 */
static uint8_t scratch[STREAM_BUF_SIZE / 2];

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

void
pop3_trans_cleanup(struct pop3_session *s)
{
	if (s->msg_fd >= 0) {
		close(s->msg_fd);
		s->msg_fd = -1;
	}
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

		if (conn_out_room(&s->conn) < LISTING_LINE_MAX)
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
	pop3_reply(s, "+OK %zu messages (%llu octets)",
	    maildir_live_count(s->md),
	    (unsigned long long)maildir_live_size(s->md));
	s->cursor = 1;
	return pop3_stream(s, produce_list, maildir_count(s->md) > 8);
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
	return pop3_stream(s, produce_uidl, maildir_count(s->md) > 8);
}

/* Ends a message stream that cannot be finished: drop the client. */
static void
stream_broken(struct pop3_session *s, const char *why)
{
	log_warn("pop3[%lu] user=%s message stream: %s", s->id, s->user, why);
	pop3_abort(s);
}

/*
 * Reads one slice of the message file and encodes it into `out`.  Reads
 * at most half the room, since encoding at most doubles the bytes.
 */
static void
produce_message(struct pop3_session *s)
{
	size_t room;
	uint8_t *dst = buffer_write_ptr(&s->conn.out, &room);
	size_t want, used, produced;
	ssize_t n;

	if (room < 2 * DOTSTUFF_END_MAX)
		return;
	if (s->msg_left == 0 || dotstuff_done(&s->ds)) {
		produced = dotstuff_end(&s->ds, dst, room);
		buffer_write_adv(&s->conn.out, produced);
		pop3_trans_cleanup(s);
		pop3_stream_done(s);
		return;
	}
	want = (room - DOTSTUFF_END_MAX) / 2;
	if (want > sizeof(scratch))
		want = sizeof(scratch);
	if (want > s->msg_left)
		want = (size_t)s->msg_left;
	n = read(s->msg_fd, scratch, want);
	if (n < 0 && errno == EINTR)
		return;
	if (n <= 0) {
		/* Shorter than when listed: never end it with a '.'. */
		stream_broken(s, n < 0 ? strerror(errno) : "file shrank");
		return;
	}
	s->msg_left -= (uint64_t)n;
	used = dotstuff_feed(&s->ds, scratch, (size_t)n, dst, room, &produced);
	buffer_write_adv(&s->conn.out, produced);
	if (used != (size_t)n && !dotstuff_done(&s->ds))
		stream_broken(s, "encoder overflow");
}

/* Opens message n and starts streaming it (RETR, or TOP with a limit). */
static enum cmd_result
send_message(struct pop3_session *s, size_t n, bool limited, uint64_t lines)
{
	const struct mail_msg *m = maildir_msg(s->md, n);
	enum maildir_status st = maildir_msg_open(s->md, n, &s->msg_fd);

	if (st != MAILDIR_OK) {
		s->msg_fd = -1;
		log_warn("pop3[%lu] user=%s message %zu: %s", s->id, s->user, n,
		    maildir_strerror(st));
		return pop3_fail(s, "[SYS/TEMP] message %zu is not available",
		    n);
	}
	s->msg_left = m->file_size;
	dotstuff_init(&s->ds, limited, lines);
	if (pop3_stream(s, produce_message, true) != CMD_STREAM) {
		pop3_trans_cleanup(s);
		return CMD_ERR;
	}
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
	enum cmd_result r;
	size_t n;

	(void)argc;
	if (!get_msg(s, argv[1], &n))
		return CMD_ERR;
	r = send_message(s, n, false, 0);
	if (r == CMD_STREAM) {
		s->retr_count++;
		s->retr_bytes += maildir_msg(s->md, n)->size;
	}
	return r;
}

static enum cmd_result
cmd_top(void *sp, int argc, char **argv)
{
	struct pop3_session *s = sp;
	enum cmd_result r;
	uint64_t lines;
	size_t n;

	(void)argc;
	if (!get_msg(s, argv[1], &n))
		return CMD_ERR;
	if (!proto_parse_uint(argv[2], UINT64_MAX, &lines))
		return pop3_fail(s, "invalid number of lines");
	r = send_message(s, n, true, lines);
	if (r == CMD_STREAM)
		s->top_count++;
	return r;
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
	pop3_reply(s, "+OK maildrop has %zu messages (%llu octets)",
	    maildir_live_count(s->md),
	    (unsigned long long)maildir_live_size(s->md));
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

/* UPDATE: the only place messages are removed. */
void
pop3_update_enter(unsigned state, void *ctx)
{
	struct pop3_session *s = ctx;
	size_t marked = maildir_count(s->md) - maildir_live_count(s->md);
	size_t failed = maildir_commit(s->md);

	(void)state;
	s->dele_count = (unsigned)(marked - failed);
	if (failed > 0) {
		log_warn("pop3[%lu] user=%s %zu deletions failed", s->id,
		    s->user, failed);
		pop3_reply(s, "-ERR [SYS/TEMP] %zu messages could not be "
		    "deleted", failed);
	} else {
		pop3_reply(s, "+OK " POP3D_NAME " signing off (%zu messages "
		    "left)", maildir_live_count(s->md));
	}
	conn_close_after_flush(&s->conn, END_QUIT);
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
