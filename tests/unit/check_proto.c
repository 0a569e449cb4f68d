/*
 * Unit tests of the protocol-neutral line machinery: the framer (line
 * ends, the 255-octet limit, discard mode, NUL, any split of the input),
 * the dispatcher over fake per-state tables with a fake session, and the
 * strict number and base64 parsers.  No sockets here.
 */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "proto.h"

/* ---- framer ---- */

/*
 * Check reports every passing ck_assert to the runner through a pipe;
 * the framer loops below run millions of checks, so they use this.
 */
#define QUICK(e) \
	do { \
		if (!(e)) \
			ck_abort_msg("Assertion '%s' failed", #e); \
	} while (0)
#define QUICK_LT(a, b) QUICK((a) < (b))
#define QUICK_LE(a, b) QUICK((a) <= (b))
#define QUICK_EQ(a, b) QUICK((a) == (b))
#define QUICK_NN(p) QUICK((p) != NULL)

#define MAX_LINES 16
#define LINE_CAP 512

/* What the framer returned, in order, with a copy of each OK line. */
struct lines {
	size_t n;
	enum line_status st[MAX_LINES];
	char text[MAX_LINES][LINE_CAP];
};

/* Takes every complete line out of b. */
static void
drain(struct framer *f, struct buffer *b, size_t max, struct lines *out)
{
	for (int guard = 0; guard < 1000; guard++) {
		char *line = NULL;
		enum line_status st = proto_next_line(f, b, max, &line);

		if (st == LINE_NONE)
			return;
		QUICK_LT(out->n, MAX_LINES);
		out->st[out->n] = st;
		out->text[out->n][0] = '\0';
		if (st == LINE_OK) {
			size_t len;

			QUICK_NN(line);
			/* The line lives in the buffer's own storage. */
			QUICK((uint8_t *)line >= b->data &&
			    (uint8_t *)line < b->data + b->cap);
			len = strlen(line);
			QUICK_LT(len, LINE_CAP);
			memcpy(out->text[out->n], line, len + 1);
		}
		out->n++;
	}
	ck_abort_msg("framer returned lines forever");
}

static void
feed(struct buffer *b, const char *p, size_t n)
{
	if (!buffer_put(b, p, n))
		ck_abort_msg("test buffer too small for %zu", n);
}

/* Feeds data[0..n) cut at the given offsets, draining after each piece. */
static void
frame_pieces(const char *data, size_t n, const size_t *cuts, size_t ncuts,
    size_t max, struct lines *out)
{
	static uint8_t mem[IN_BUF_SIZE];
	struct buffer b;
	struct framer f = { false };
	size_t from = 0;

	out->n = 0;
	buffer_init(&b, mem, sizeof(mem));
	for (size_t i = 0; i <= ncuts; i++) {
		size_t to = i < ncuts ? cuts[i] : n;

		QUICK_LE(from, to);
		feed(&b, data + from, to - from);
		drain(&f, &b, max, out);
		from = to;
	}
	/* Nothing complete is left behind. */
	{
		char *line;

		QUICK_EQ(proto_next_line(&f, &b, max, &line),
		    LINE_NONE);
	}
}

static void
frame_whole(const char *data, size_t n, size_t max, struct lines *out)
{
	frame_pieces(data, n, NULL, 0, max, out);
}

static void
frame_bytewise(const char *data, size_t n, size_t max, struct lines *out)
{
	static size_t cuts[2048];

	QUICK_LE(n, sizeof(cuts) / sizeof(cuts[0]));
	for (size_t i = 0; i < n; i++)
		cuts[i] = i;
	frame_pieces(data, n, cuts, n, max, out);
}

static const char *
status_name(enum line_status st)
{
	switch (st) {
	case LINE_NONE:
		return "NONE";
	case LINE_OK:
		return "OK";
	case LINE_TOO_LONG:
		return "TOO_LONG";
	case LINE_NUL:
		return "NUL";
	}
	return "?";
}

static void
assert_same(const struct lines *a, const struct lines *b)
{
	if (a->n != b->n)
		ck_abort_msg("%zu lines, expected %zu", b->n, a->n);
	for (size_t i = 0; i < a->n; i++) {
		if (a->st[i] != b->st[i])
			ck_abort_msg("line %zu is %s, expected %s", i,
			    status_name(b->st[i]), status_name(a->st[i]));
		if (strcmp(a->text[i], b->text[i]) != 0)
			ck_abort_msg("line %zu is '%s', expected '%s'", i,
			    b->text[i], a->text[i]);
	}
}

static void
assert_line(const struct lines *l, size_t i, enum line_status st,
    const char *text)
{
	if (i >= l->n)
		ck_abort_msg("no line %zu (only %zu)", i, l->n);
	if (l->st[i] != st)
		ck_abort_msg("line %zu is %s, expected %s", i,
		    status_name(l->st[i]), status_name(st));
	if (st == LINE_OK && strcmp(l->text[i], text) != 0)
		ck_abort_msg("line %zu is '%s', expected '%s'", i, l->text[i],
		    text);
}

START_TEST(test_crlf_line)
{
	static const char in[] = "USER alice\r\n";
	struct lines l;

	frame_whole(in, sizeof(in) - 1, POP3_MAX_LINE, &l);
	ck_assert_uint_eq(l.n, 1);
	assert_line(&l, 0, LINE_OK, "USER alice");
}
END_TEST

START_TEST(test_bare_lf_line)
{
	static const char in[] = "STAT\nLIST 1\n";
	struct lines l;

	frame_whole(in, sizeof(in) - 1, POP3_MAX_LINE, &l);
	ck_assert_uint_eq(l.n, 2);
	assert_line(&l, 0, LINE_OK, "STAT");
	assert_line(&l, 1, LINE_OK, "LIST 1");
}
END_TEST

START_TEST(test_empty_and_inner_cr)
{
	static const char in[] = "\r\n\na\rb\r\nc\r\r\n";
	struct lines l;

	frame_whole(in, sizeof(in) - 1, POP3_MAX_LINE, &l);
	ck_assert_uint_eq(l.n, 4);
	assert_line(&l, 0, LINE_OK, "");
	assert_line(&l, 1, LINE_OK, "");
	/* Only the CR right before the LF goes. */
	assert_line(&l, 2, LINE_OK, "a\rb");
	assert_line(&l, 3, LINE_OK, "c\r");
}
END_TEST

START_TEST(test_partial_line_waits)
{
	static uint8_t mem[64];
	struct buffer b;
	struct framer f = { false };
	char *line;

	buffer_init(&b, mem, sizeof(mem));
	feed(&b, "NOOP\r", 5);
	ck_assert_int_eq(proto_next_line(&f, &b, POP3_MAX_LINE, &line),
	    LINE_NONE);
	ck_assert_uint_eq(buffer_readable(&b), 5);
	feed(&b, "\n", 1);
	ck_assert_int_eq(proto_next_line(&f, &b, POP3_MAX_LINE, &line),
	    LINE_OK);
	ck_assert_str_eq(line, "NOOP");
	ck_assert(buffer_empty(&b));
}
END_TEST

/*
 * Inputs for the split test: plain lines, an overlong line between two
 * good ones, a NUL line, and two overlong lines in a row.
 */
static char split_inputs[4][700];
static size_t split_lens[4];

static void
make_split_inputs(void)
{
	char *p;

	p = split_inputs[0];
	p += sprintf(p, "USER alice\r\nPASS a b\nQUIT\r\n");
	split_lens[0] = (size_t)(p - split_inputs[0]);

	p = split_inputs[1];
	p += sprintf(p, "NOOP\r\n");
	memset(p, 'x', 300);
	p += 300;
	p += sprintf(p, "\r\nSTAT\r\n");
	split_lens[1] = (size_t)(p - split_inputs[1]);

	p = split_inputs[2];
	memcpy(p, "A\r\nB\0C\r\nD\n", 10);
	p += 10;
	split_lens[2] = (size_t)(p - split_inputs[2]);

	p = split_inputs[3];
	memset(p, 'y', 256);
	p += 256;
	p += sprintf(p, "QUIT\n");
	memset(p, 'z', 254);
	p += 254;
	p += sprintf(p, "\r\nLAST\r\n");
	split_lens[3] = (size_t)(p - split_inputs[3]);
}

static void
assert_split_expected(int which, const struct lines *l)
{
	switch (which) {
	case 0:
		ck_assert_uint_eq(l->n, 3);
		assert_line(l, 0, LINE_OK, "USER alice");
		assert_line(l, 1, LINE_OK, "PASS a b");
		assert_line(l, 2, LINE_OK, "QUIT");
		break;
	case 1:
		ck_assert_uint_eq(l->n, 3);
		assert_line(l, 0, LINE_OK, "NOOP");
		assert_line(l, 1, LINE_TOO_LONG, NULL);
		assert_line(l, 2, LINE_OK, "STAT");
		break;
	case 2:
		ck_assert_uint_eq(l->n, 3);
		assert_line(l, 0, LINE_OK, "A");
		assert_line(l, 1, LINE_NUL, NULL);
		assert_line(l, 2, LINE_OK, "D");
		break;
	default:
		ck_assert_uint_eq(l->n, 3);
		assert_line(l, 0, LINE_TOO_LONG, NULL);
		assert_line(l, 1, LINE_TOO_LONG, NULL);
		assert_line(l, 2, LINE_OK, "LAST");
		break;
	}
}

/* Every way to cut the input in three pieces gives the same lines. */
START_TEST(test_split_every_offset)
{
	const char *in;
	size_t len;
	struct lines whole, got;

	make_split_inputs();
	in = split_inputs[_i];
	len = split_lens[_i];
	frame_whole(in, len, POP3_MAX_LINE, &whole);
	assert_split_expected(_i, &whole);
	frame_bytewise(in, len, POP3_MAX_LINE, &got);
	assert_same(&whole, &got);
	for (size_t i = 0; i <= len; i++) {
		for (size_t j = i; j <= len; j++) {
			size_t cuts[2] = { i, j };

			frame_pieces(in, len, cuts, 2, POP3_MAX_LINE, &got);
			if (got.n != whole.n)
				ck_abort_msg("cut at %zu,%zu: %zu lines, "
				    "not %zu", i, j, got.n, whole.n);
			assert_same(&whole, &got);
		}
	}
}
END_TEST

/* A line of `octets` octets, line end included, then "NEXT\r\n". */
static size_t
make_sized_line(char *buf, size_t octets, bool crlf)
{
	size_t body = octets - (crlf ? 2 : 1);

	memset(buf, 'a', body);
	if (crlf)
		buf[body++] = '\r';
	buf[body++] = '\n';
	memcpy(buf + body, "NEXT\r\n", 6);
	return body + 6;
}

static void
check_sized(size_t octets, bool crlf, bool ok)
{
	char buf[1100];
	size_t len;
	struct lines whole, bytes;

	ck_assert_uint_le(octets + 6, sizeof(buf));
	len = make_sized_line(buf, octets, crlf);

	frame_whole(buf, len, POP3_MAX_LINE, &whole);
	frame_bytewise(buf, len, POP3_MAX_LINE, &bytes);
	assert_same(&whole, &bytes);
	ck_assert_uint_eq(whole.n, 2);
	if (ok) {
		ck_assert_int_eq(whole.st[0], LINE_OK);
		ck_assert_uint_eq(strlen(whole.text[0]),
		    octets - (crlf ? 2 : 1));
	} else {
		ck_assert_int_eq(whole.st[0], LINE_TOO_LONG);
	}
	assert_line(&whole, 1, LINE_OK, "NEXT");
}

START_TEST(test_limit_254_255_256)
{
	ck_assert_int_eq(POP3_MAX_LINE, 255);
	check_sized(254, true, true);
	check_sized(255, true, true);
	check_sized(256, true, false);
	check_sized(254, false, true);
	check_sized(255, false, true);
	check_sized(256, false, false);
	check_sized(1000, true, false);
}
END_TEST

/*
 * An overlong line arrives without its LF in pieces: it is reported
 * exactly once when its LF comes, and the next line is parsed.
 */
START_TEST(test_overlong_in_pieces_recovers)
{
	static uint8_t mem[IN_BUF_SIZE];
	struct buffer b;
	struct framer f = { false };
	struct lines l;
	char chunk[100];

	memset(&l, 0, sizeof(l));
	buffer_init(&b, mem, sizeof(mem));
	memset(chunk, 'x', sizeof(chunk));
	for (int i = 0; i < 6; i++) {
		feed(&b, chunk, sizeof(chunk));
		drain(&f, &b, POP3_MAX_LINE, &l);
		ck_assert_uint_eq(l.n, 0);
		/* The junk is not hoarded: memory stays below the limit. */
		ck_assert_uint_lt(buffer_readable(&b), POP3_MAX_LINE);
	}
	feed(&b, "xx\r\nNEXT 1\r\n", 12);
	drain(&f, &b, POP3_MAX_LINE, &l);
	ck_assert_uint_eq(l.n, 2);
	assert_line(&l, 0, LINE_TOO_LONG, NULL);
	assert_line(&l, 1, LINE_OK, "NEXT 1");
	ck_assert(buffer_empty(&b));
}
END_TEST

/* The tail of a discarded line looks like a command: it is not one. */
START_TEST(test_overlong_tail_not_a_command)
{
	static uint8_t mem[IN_BUF_SIZE];
	struct buffer b;
	struct framer f = { false };
	struct lines l;
	char junk[300];

	memset(&l, 0, sizeof(l));
	buffer_init(&b, mem, sizeof(mem));
	memset(junk, 'j', sizeof(junk));
	feed(&b, junk, sizeof(junk));
	drain(&f, &b, POP3_MAX_LINE, &l);
	ck_assert_uint_eq(l.n, 0);
	feed(&b, "QUIT\r\n", 6);
	drain(&f, &b, POP3_MAX_LINE, &l);
	ck_assert_uint_eq(l.n, 1);
	assert_line(&l, 0, LINE_TOO_LONG, NULL);
	feed(&b, "QUIT\r\n", 6);
	drain(&f, &b, POP3_MAX_LINE, &l);
	ck_assert_uint_eq(l.n, 2);
	assert_line(&l, 1, LINE_OK, "QUIT");
}
END_TEST

START_TEST(test_nul_line)
{
	static const char in[] = "US\0ER x\r\nNOOP\r\n\0\n\0\r\nab\0\r\nSTAT\n";
	struct lines l, bytes;

	frame_whole(in, sizeof(in) - 1, POP3_MAX_LINE, &l);
	frame_bytewise(in, sizeof(in) - 1, POP3_MAX_LINE, &bytes);
	assert_same(&l, &bytes);
	ck_assert_uint_eq(l.n, 6);
	assert_line(&l, 0, LINE_NUL, NULL);
	assert_line(&l, 1, LINE_OK, "NOOP");
	assert_line(&l, 2, LINE_NUL, NULL);
	assert_line(&l, 3, LINE_NUL, NULL);
	assert_line(&l, 4, LINE_NUL, NULL);
	assert_line(&l, 5, LINE_OK, "STAT");
	frame_whole("ab\0\r\nSTAT\n", 10, POP3_MAX_LINE, &l);
	ck_assert_uint_eq(l.n, 2);
	assert_line(&l, 0, LINE_NUL, NULL);
	assert_line(&l, 1, LINE_OK, "STAT");
}
END_TEST

/* Bytes of a password somewhere in the buffer's storage. */
static bool
storage_holds(const uint8_t *mem, size_t cap, const char *secret)
{
	size_t n = strlen(secret);

	for (size_t i = 0; i + n <= cap; i++)
		if (memcmp(mem + i, secret, n) == 0)
			return true;
	return false;
}

/*
 * A PASS line dropped as junk never reaches the handler that wipes a
 * password after use: the framer wipes it, whole or in pieces.
 */
START_TEST(test_discarded_lines_wiped)
{
	static uint8_t mem[IN_BUF_SIZE];
	static const char secret[] = "s3cret-pw";
	struct buffer b;
	struct framer f = { false };
	struct lines l;
	char longline[400];
	size_t half = 200;

	memset(&l, 0, sizeof(l));
	memset(longline, 'x', sizeof(longline));
	memcpy(longline, "PASS ", 5);
	memcpy(longline + 5, secret, sizeof(secret) - 1);
	memcpy(longline + half + 5, secret, sizeof(secret) - 1);
	buffer_init(&b, mem, sizeof(mem));
	feed(&b, longline, half);
	drain(&f, &b, POP3_MAX_LINE, &l);
	feed(&b, longline + half, sizeof(longline) - half);
	feed(&b, "\r\n", 2);
	drain(&f, &b, POP3_MAX_LINE, &l);
	ck_assert_uint_eq(l.n, 1);
	assert_line(&l, 0, LINE_TOO_LONG, NULL);
	ck_assert(!storage_holds(mem, sizeof(mem), secret));
	feed(&b, "PASS s3cret-pw\0\r\n", 17);
	drain(&f, &b, POP3_MAX_LINE, &l);
	ck_assert_uint_eq(l.n, 2);
	assert_line(&l, 1, LINE_NUL, NULL);
	ck_assert(!storage_holds(mem, sizeof(mem), secret));
}
END_TEST

/* ---- dispatcher ---- */

struct fake_session {
	int calls;
	const char *which;
	int argc;
	char argv[PROTO_MAX_ARGS + 2][LINE_CAP];
	enum cmd_result ret;
};

static enum cmd_result
record(void *session, const char *which, int argc, char **argv)
{
	struct fake_session *s = session;

	s->calls++;
	s->which = which;
	s->argc = argc;
	ck_assert_int_ge(argc, 1);
	ck_assert_int_le(argc, PROTO_MAX_ARGS + 1);
	for (int i = 0; i < argc; i++) {
		ck_assert_ptr_nonnull(argv[i]);
		ck_assert_uint_lt(strlen(argv[i]), LINE_CAP);
		strcpy(s->argv[i], argv[i]);
	}
	return s->ret;
}

#define HANDLER(name) \
	static enum cmd_result \
	h_##name(void *session, int argc, char **argv) \
	{ \
		return record(session, #name, argc, argv); \
	}

HANDLER(user)
HANDLER(pass)
HANDLER(quit_a)
HANDLER(apop)
HANDLER(stat)
HANDLER(list)
HANDLER(top)
HANDLER(quit_t)
HANDLER(many)
HANDLER(note)

enum { T_AUTH, T_TRANS, T_UPDATE, T_N };

#define ROW(n, f, lo, hi, fl) \
	{ .name = (n), .fn = (f), .min_args = (lo), .max_args = (hi), \
	  .flags = (fl) }

static const struct cmd auth_cmds[] = {
	ROW("USER", h_user, 1, 1, 0),
	ROW("PASS", h_pass, 1, 1, CMD_REST | CMD_SECRET),
	ROW("QUIT", h_quit_a, 0, 0, 0),
	ROW("APOP", h_apop, 2, 2, CMD_SECRET),
	ROW("NOTE", h_note, 0, 1, CMD_REST),
	{ .name = NULL },
};

static const struct cmd trans_cmds[] = {
	ROW("STAT", h_stat, 0, 0, 0),
	ROW("LIST", h_list, 0, 1, 0),
	ROW("TOP", h_top, 2, 2, 0),
	ROW("QUIT", h_quit_t, 0, 0, 0),
	ROW("MANY", h_many, 0, PROTO_MAX_ARGS, 0),
	{ .name = NULL },
};

/* UPDATE has no table at all. */
static const struct cmd *const tables[T_N] = { auth_cmds, trans_cmds, NULL };

/* Dispatches a copy of text (the dispatcher splits in place). */
static enum cmd_result
run(struct fake_session *s, unsigned state, const char *text)
{
	char line[LINE_CAP];

	ck_assert_uint_lt(strlen(text), sizeof(line));
	strcpy(line, text);
	return proto_dispatch(tables, T_N, state, s, line);
}

static void
session_init(struct fake_session *s)
{
	memset(s, 0, sizeof(*s));
	s->ret = CMD_OK;
}

START_TEST(test_dispatch_basic)
{
	struct fake_session s;

	session_init(&s);
	ck_assert_int_eq(run(&s, T_AUTH, "USER alice"), CMD_OK);
	ck_assert_int_eq(s.calls, 1);
	ck_assert_str_eq(s.which, "user");
	ck_assert_int_eq(s.argc, 2);
	ck_assert_str_eq(s.argv[0], "USER");
	ck_assert_str_eq(s.argv[1], "alice");
}
END_TEST

START_TEST(test_dispatch_case_insensitive)
{
	static const char *const forms[] = { "user bob", "User bob",
		"uSeR bob", "USER bob" };
	struct fake_session s;

	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		session_init(&s);
		ck_assert_int_eq(run(&s, T_AUTH, forms[i]), CMD_OK);
		ck_assert_int_eq(s.calls, 1);
		ck_assert_str_eq(s.which, "user");
		/* argv[0] is the command word as the client sent it. */
		ck_assert_int_eq(strncmp(s.argv[0], forms[i], 4), 0);
		ck_assert_uint_eq(strlen(s.argv[0]), 4);
		/* Arguments keep their case. */
		ck_assert_str_eq(s.argv[1], "bob");
	}
	session_init(&s);
	ck_assert_int_eq(run(&s, T_TRANS, "top 1 2"), CMD_OK);
	ck_assert_str_eq(s.which, "top");
}
END_TEST

START_TEST(test_dispatch_result_passes_through)
{
	static const enum cmd_result rs[] = { CMD_OK, CMD_ERR, CMD_REPLIED,
		CMD_STREAM, CMD_NEXT, CMD_CLOSE, CMD_PENDING };
	struct fake_session s;

	for (size_t i = 0; i < sizeof(rs) / sizeof(rs[0]); i++) {
		session_init(&s);
		s.ret = rs[i];
		ck_assert_int_eq(run(&s, T_TRANS, "STAT"), rs[i]);
		ck_assert_int_eq(s.calls, 1);
	}
}
END_TEST

START_TEST(test_dispatch_unknown)
{
	static const char *const lines[] = { "FOO", "USERX alice", "USE a",
		"STATS", "XUSER a", "U", "*" };
	struct fake_session s;

	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		session_init(&s);
		ck_assert_int_eq(run(&s, T_AUTH, lines[i]), CMD_UNKNOWN);
		ck_assert_int_eq(run(&s, T_TRANS, lines[i]), CMD_UNKNOWN);
		ck_assert_int_eq(run(&s, T_UPDATE, lines[i]), CMD_UNKNOWN);
		ck_assert_int_eq(s.calls, 0);
	}
}
END_TEST

START_TEST(test_dispatch_bad_state)
{
	struct fake_session s;

	session_init(&s);
	ck_assert_int_eq(run(&s, T_AUTH, "STAT"), CMD_BAD_STATE);
	ck_assert_int_eq(run(&s, T_AUTH, "list 1"), CMD_BAD_STATE);
	ck_assert_int_eq(run(&s, T_AUTH, "TOP"), CMD_BAD_STATE);
	ck_assert_int_eq(run(&s, T_TRANS, "USER alice"), CMD_BAD_STATE);
	ck_assert_int_eq(run(&s, T_TRANS, "pass x y z"), CMD_BAD_STATE);
	/* A state without a table knows nothing, the others still do. */
	ck_assert_int_eq(run(&s, T_UPDATE, "QUIT"), CMD_BAD_STATE);
	ck_assert_int_eq(run(&s, T_UPDATE, "stat"), CMD_BAD_STATE);
	ck_assert_int_eq(s.calls, 0);
	/* A name in both tables runs the current state's row. */
	ck_assert_int_eq(run(&s, T_AUTH, "QUIT"), CMD_OK);
	ck_assert_str_eq(s.which, "quit_a");
	ck_assert_int_eq(run(&s, T_TRANS, "quit"), CMD_OK);
	ck_assert_str_eq(s.which, "quit_t");
}
END_TEST

START_TEST(test_dispatch_bad_args)
{
	static const struct {
		unsigned state;
		const char *line;
	} bad[] = {
		{ T_AUTH, "USER" },
		{ T_AUTH, "USER a b" },
		{ T_AUTH, "PASS" },
		{ T_AUTH, "QUIT now" },
		{ T_AUTH, "APOP a" },
		{ T_AUTH, "APOP a b c" },
		{ T_TRANS, "STAT 1" },
		{ T_TRANS, "LIST 1 2" },
		{ T_TRANS, "TOP" },
		{ T_TRANS, "TOP 1" },
		{ T_TRANS, "TOP 1 2 3" },
		{ T_TRANS, "MANY 1 2 3 4 5 6 7 8 9" },
	};
	struct fake_session s;

	session_init(&s);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (run(&s, bad[i].state, bad[i].line) != CMD_BAD_ARGS)
			ck_abort_msg("'%s' is not CMD_BAD_ARGS", bad[i].line);
	}
	ck_assert_int_eq(s.calls, 0);
	/* The edges themselves are fine. */
	ck_assert_int_eq(run(&s, T_TRANS, "LIST"), CMD_OK);
	ck_assert_int_eq(s.argc, 1);
	ck_assert_int_eq(run(&s, T_TRANS, "LIST 7"), CMD_OK);
	ck_assert_int_eq(s.argc, 2);
	ck_assert_int_eq(run(&s, T_TRANS, "MANY 1 2 3 4 5 6 7 8"), CMD_OK);
	ck_assert_int_eq(s.argc, PROTO_MAX_ARGS + 1);
	ck_assert_str_eq(s.argv[PROTO_MAX_ARGS], "8");
}
END_TEST

/* Far more words than argv holds: refused, nothing written past it. */
START_TEST(test_dispatch_many_words)
{
	char line[LINE_CAP];
	struct fake_session s;
	size_t len = 0;

	len += (size_t)sprintf(line, "MANY");
	for (int i = 0; i < 100; i++)
		len += (size_t)sprintf(line + len, " %d", i % 10);
	session_init(&s);
	ck_assert_int_eq(proto_dispatch(tables, T_N, T_TRANS, &s, line),
	    CMD_BAD_ARGS);
	ck_assert_int_eq(s.calls, 0);
}
END_TEST

START_TEST(test_dispatch_spaces)
{
	struct fake_session s;

	session_init(&s);
	ck_assert_int_eq(run(&s, T_TRANS, "TOP   1    10"), CMD_OK);
	ck_assert_int_eq(s.argc, 3);
	ck_assert_str_eq(s.argv[0], "TOP");
	ck_assert_str_eq(s.argv[1], "1");
	ck_assert_str_eq(s.argv[2], "10");

	ck_assert_int_eq(run(&s, T_TRANS, "LIST 3   "), CMD_OK);
	ck_assert_int_eq(s.argc, 2);
	ck_assert_str_eq(s.argv[1], "3");

	ck_assert_int_eq(run(&s, T_TRANS, "STAT  "), CMD_OK);
	ck_assert_int_eq(s.argc, 1);
	ck_assert_str_eq(s.argv[0], "STAT");

	ck_assert_int_eq(run(&s, T_TRANS, "  STAT"), CMD_OK);
	ck_assert_int_eq(s.argc, 1);
	ck_assert_str_eq(s.argv[0], "STAT");
}
END_TEST

START_TEST(test_dispatch_rest)
{
	struct fake_session s;

	session_init(&s);
	ck_assert_int_eq(run(&s, T_AUTH, "PASS my pass word"), CMD_OK);
	ck_assert_str_eq(s.which, "pass");
	ck_assert_int_eq(s.argc, 2);
	ck_assert_str_eq(s.argv[0], "PASS");
	ck_assert_str_eq(s.argv[1], "my pass word");

	ck_assert_int_eq(run(&s, T_AUTH, "pass a  b   c "), CMD_OK);
	ck_assert_int_eq(s.argc, 2);
	ck_assert_str_eq(s.argv[1], "a  b   c ");

	ck_assert_int_eq(run(&s, T_AUTH, "PASS single"), CMD_OK);
	ck_assert_int_eq(s.argc, 2);
	ck_assert_str_eq(s.argv[1], "single");

	/* An optional rest argument may be absent. */
	ck_assert_int_eq(run(&s, T_AUTH, "NOTE"), CMD_OK);
	ck_assert_int_eq(s.argc, 1);
	ck_assert_int_eq(run(&s, T_AUTH, "NOTE x y"), CMD_OK);
	ck_assert_int_eq(s.argc, 2);
	ck_assert_str_eq(s.argv[1], "x y");
}
END_TEST

/* True when n bytes from p are all zero. */
static bool
zeroed(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != '\0')
			return false;
	return true;
}

/*
 * A CMD_SECRET row's arguments are wiped from the line once the
 * handler has seen them, and when the arity or the state refuses them
 * too; other rows' lines are left alone.
 */
START_TEST(test_dispatch_secret_wiped)
{
	struct fake_session s;
	char line[LINE_CAP];

	session_init(&s);
	strcpy(line, "PASS my secret");
	ck_assert_int_eq(proto_dispatch(tables, T_N, T_AUTH, &s, line),
	    CMD_OK);
	ck_assert_str_eq(s.argv[1], "my secret");
	ck_assert(zeroed(line + 5, strlen("my secret")));

	strcpy(line, "APOP a b c");
	ck_assert_int_eq(proto_dispatch(tables, T_N, T_AUTH, &s, line),
	    CMD_BAD_ARGS);
	ck_assert(zeroed(line + 5, strlen("a b c")));

	strcpy(line, "PASS late secret");
	ck_assert_int_eq(proto_dispatch(tables, T_N, T_TRANS, &s, line),
	    CMD_BAD_STATE);
	ck_assert(zeroed(line + 5, strlen("late secret")));

	strcpy(line, "USER alice");
	ck_assert_int_eq(proto_dispatch(tables, T_N, T_AUTH, &s, line),
	    CMD_OK);
	ck_assert_str_eq(line + 5, "alice");
}
END_TEST

START_TEST(test_dispatch_empty)
{
	struct fake_session s;

	session_init(&s);
	ck_assert_int_eq(run(&s, T_AUTH, ""), CMD_UNKNOWN);
	ck_assert_int_eq(run(&s, T_TRANS, ""), CMD_UNKNOWN);
	ck_assert_int_eq(run(&s, T_AUTH, "    "), CMD_UNKNOWN);
	ck_assert_int_eq(s.calls, 0);
}
END_TEST

/* ---- numbers ---- */

static bool
parse(const char *text, uint64_t max, uint64_t *v)
{
	*v = 0xdeadbeef;
	return proto_parse_uint(text, max, v);
}

START_TEST(test_parse_uint_good)
{
	uint64_t v;

	ck_assert(parse("0", UINT32_MAX, &v));
	ck_assert_uint_eq(v, 0);
	ck_assert(parse("1", UINT32_MAX, &v));
	ck_assert_uint_eq(v, 1);
	ck_assert(parse("123456", UINT32_MAX, &v));
	ck_assert_uint_eq(v, 123456);
	ck_assert(parse("007", UINT32_MAX, &v));
	ck_assert_uint_eq(v, 7);
	ck_assert(parse("4294967295", UINT32_MAX, &v));
	ck_assert_uint_eq(v, UINT32_MAX);
	ck_assert(parse("18446744073709551615", UINT64_MAX, &v));
	ck_assert_uint_eq(v, UINT64_MAX);
	ck_assert(parse("18446744073709551614", UINT64_MAX, &v));
	ck_assert_uint_eq(v, UINT64_MAX - 1);
}
END_TEST

START_TEST(test_parse_uint_overflow)
{
	uint64_t v;

	ck_assert(!parse("4294967296", UINT32_MAX, &v));
	ck_assert(!parse("4294967297", UINT32_MAX, &v));
	ck_assert(!parse("42949672950", UINT32_MAX, &v));
	ck_assert(!parse("18446744073709551616", UINT64_MAX, &v));
	ck_assert(!parse("18446744073709551620", UINT64_MAX, &v));
	ck_assert(!parse("99999999999999999999", UINT64_MAX, &v));
	ck_assert(!parse("184467440737095516150", UINT64_MAX, &v));
	ck_assert(!parse("1000", 999, &v));
	ck_assert(parse("999", 999, &v));
	ck_assert_uint_eq(v, 999);
}
END_TEST

START_TEST(test_parse_uint_junk)
{
	static const char *const junk[] = { "", "-1", "+1", " 1", "1 ", "1a",
		"a1", "0x10", "1.0", "1,0", "\t1", "1\n", "-0", "--1", " " };
	uint64_t v;

	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		if (parse(junk[i], UINT64_MAX, &v))
			ck_abort_msg("'%s' accepted as %llu", junk[i],
			    (unsigned long long)v);
	}
}
END_TEST

/* A count past 64 bits is "more than there is"; junk is still junk. */
START_TEST(test_parse_count_saturates)
{
	static const char *const junk[] = { "", "-1", "+1", "1a", " 1",
		"99999999999999999999x", "-99999999999999999999" };
	uint64_t v = 0;

	ck_assert(proto_parse_count("42", &v));
	ck_assert_uint_eq(v, 42);
	ck_assert(proto_parse_count("18446744073709551615", &v));
	ck_assert_uint_eq(v, UINT64_MAX);
	v = 0;
	ck_assert(proto_parse_count("18446744073709551616", &v));
	ck_assert_uint_eq(v, UINT64_MAX);
	v = 0;
	ck_assert(proto_parse_count("99999999999999999999999999999", &v));
	ck_assert_uint_eq(v, UINT64_MAX);
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
		if (proto_parse_count(junk[i], &v))
			ck_abort_msg("'%s' accepted", junk[i]);
}
END_TEST

/* "at most max" holds for limits below 9 as well. */
START_TEST(test_parse_uint_small_max)
{
	uint64_t v;

	ck_assert(parse("0", 0, &v));
	ck_assert_uint_eq(v, 0);
	ck_assert(parse("5", 5, &v));
	ck_assert_uint_eq(v, 5);
	ck_assert(parse("10", 10, &v));
	ck_assert(!parse("11", 10, &v));
	ck_assert_msg(!parse("6", 5, &v), "6 accepted with max 5 (got %llu)",
	    (unsigned long long)v);
	ck_assert_msg(!parse("1", 0, &v), "1 accepted with max 0");
	ck_assert_msg(!parse("9", 3, &v), "9 accepted with max 3");
}
END_TEST

/* ---- base64 ---- */

/* A plain RFC 4648 encoder, to round-trip through the decoder. */
static void
b64_encode(const uint8_t *in, size_t n, char *out)
{
	static const char abc[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i;

	for (i = 0; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 |
		    in[i + 2];

		*out++ = abc[v >> 18 & 63];
		*out++ = abc[v >> 12 & 63];
		*out++ = abc[v >> 6 & 63];
		*out++ = abc[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;

		*out++ = abc[v >> 18 & 63];
		*out++ = abc[v >> 12 & 63];
		*out++ = '=';
		*out++ = '=';
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;

		*out++ = abc[v >> 18 & 63];
		*out++ = abc[v >> 12 & 63];
		*out++ = abc[v >> 6 & 63];
		*out++ = '=';
	}
	*out = '\0';
}

static void
assert_decodes(const char *in, const char *want)
{
	uint8_t out[64];
	long n;

	memset(out, 0xee, sizeof(out));
	n = proto_base64_decode(in, out, sizeof(out));
	ck_assert_msg(n == (long)strlen(want), "'%s' decoded to %ld bytes",
	    in, n);
	if (n > 0)
		ck_assert_mem_eq(out, want, (size_t)n);
}

START_TEST(test_base64_vectors)
{
	/* RFC 4648 section 10. */
	assert_decodes("", "");
	assert_decodes("Zg==", "f");
	assert_decodes("Zm8=", "fo");
	assert_decodes("Zm9v", "foo");
	assert_decodes("Zm9vYg==", "foob");
	assert_decodes("Zm9vYmE=", "fooba");
	assert_decodes("Zm9vYmFy", "foobar");
	/* Every character of the alphabet. */
	assert_decodes("+/+/", "\xfb\xff\xbf");
	assert_decodes("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlq"
	    "a2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3ODk=",
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789");
}
END_TEST

START_TEST(test_base64_nul_bytes)
{
	static const uint8_t plain[] = "\0alice\0secret";
	uint8_t out[32];
	char enc[64];
	long n;

	b64_encode(plain, sizeof(plain) - 1, enc);
	ck_assert_str_eq(enc, "AGFsaWNlAHNlY3JldA==");
	n = proto_base64_decode(enc, out, sizeof(out));
	ck_assert_int_eq(n, 13);
	ck_assert_mem_eq(out, plain, 13);
	n = proto_base64_decode("AAAA", out, sizeof(out));
	ck_assert_int_eq(n, 3);
	ck_assert_mem_eq(out, "\0\0\0", 3);
}
END_TEST

START_TEST(test_base64_round_trip)
{
	uint8_t plain[100], out[100];
	char enc[200];
	uint32_t x = 12345;

	memset(plain, 0, sizeof(plain));

	for (size_t len = 0; len <= sizeof(plain); len++) {
		long n;

		for (size_t i = 0; i < len; i++) {
			x = x * 1103515245u + 12345u;
			plain[i] = (uint8_t)(x >> 16);
		}
		b64_encode(plain, len, enc);
		n = proto_base64_decode(enc, out, sizeof(out));
		ck_assert_int_eq(n, (long)len);
		if (len > 0)
			ck_assert_mem_eq(out, plain, len);
	}
}
END_TEST

START_TEST(test_base64_invalid)
{
	static const char *const bad[] = {
		"Zm9v!A==",	/* not in the alphabet */
		"Zm9 v",	/* space */
		"Zm9v\n",	/* line break */
		"Zm-_",		/* the URL-safe alphabet */
		"Zm9",		/* bad length */
		"Zm9vY",
		"Z",
		"Zg=",
		"Zg",
		"Zg=a",		/* data after padding */
		"Zg==Zg==",	/* padding in the middle */
		"Zm8=Zm9v",
		"====",
		"Z===",
		"=Zg=",
		"Zm9v====",
	};
	uint8_t out[64];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		long n = proto_base64_decode(bad[i], out, sizeof(out));

		if (n != -1)
			ck_abort_msg("'%s' decoded to %ld bytes", bad[i], n);
	}
}
END_TEST

START_TEST(test_base64_cap)
{
	uint8_t out[8];

	memset(out, 0x5a, sizeof(out));
	ck_assert_int_eq(proto_base64_decode("Zm9vYmFy", out, 5), -1);
	ck_assert_int_eq(proto_base64_decode("Zm9vYmFy", out, 6), 6);
	ck_assert_int_eq(proto_base64_decode("Zm9v", out, 2), -1);
	ck_assert_int_eq(proto_base64_decode("Zm9v", out, 3), 3);
	ck_assert_int_eq(proto_base64_decode("Zg==", out, 0), -1);
	ck_assert_int_eq(proto_base64_decode("Zg==", out, 1), 1);
	ck_assert_int_eq(proto_base64_decode("Zm8=", out, 1), -1);
	ck_assert_int_eq(proto_base64_decode("Zm8=", out, 2), 2);
	ck_assert_int_eq(proto_base64_decode("", out, 0), 0);
	/* Nothing was written past what cap allowed. */
	memset(out, 0x5a, sizeof(out));
	(void)proto_base64_decode("Zm9vYmFy", out, 4);
	for (size_t i = 4; i < sizeof(out); i++)
		ck_assert_int_eq(out[i], 0x5a);
}
END_TEST

Suite *proto_suite(void);

Suite *
proto_suite(void)
{
	Suite *s = suite_create("proto");
	TCase *core = tcase_create("core");
	TCase *limits = tcase_create("limits");

	tcase_set_timeout(limits, 30);
	tcase_add_test(core, test_crlf_line);
	tcase_add_test(core, test_bare_lf_line);
	tcase_add_test(core, test_empty_and_inner_cr);
	tcase_add_test(core, test_partial_line_waits);
	tcase_add_test(core, test_dispatch_basic);
	tcase_add_test(core, test_dispatch_case_insensitive);
	tcase_add_test(core, test_dispatch_result_passes_through);
	tcase_add_test(core, test_dispatch_unknown);
	tcase_add_test(core, test_dispatch_bad_state);
	tcase_add_test(core, test_dispatch_spaces);
	tcase_add_test(core, test_dispatch_rest);
	tcase_add_test(core, test_dispatch_secret_wiped);
	tcase_add_test(core, test_dispatch_empty);
	tcase_add_test(core, test_parse_uint_good);
	tcase_add_test(core, test_base64_vectors);
	tcase_add_test(core, test_base64_nul_bytes);
	tcase_add_test(core, test_base64_round_trip);
	suite_add_tcase(s, core);

	tcase_add_loop_test(limits, test_split_every_offset, 0, 4);
	tcase_add_test(limits, test_limit_254_255_256);
	tcase_add_test(limits, test_overlong_in_pieces_recovers);
	tcase_add_test(limits, test_overlong_tail_not_a_command);
	tcase_add_test(limits, test_nul_line);
	tcase_add_test(limits, test_discarded_lines_wiped);
	tcase_add_test(limits, test_dispatch_bad_args);
	tcase_add_test(limits, test_dispatch_many_words);
	tcase_add_test(limits, test_parse_uint_overflow);
	tcase_add_test(limits, test_parse_uint_junk);
	tcase_add_test(limits, test_parse_uint_small_max);
	tcase_add_test(limits, test_parse_count_saturates);
	tcase_add_test(limits, test_base64_invalid);
	tcase_add_test(limits, test_base64_cap);
	suite_add_tcase(s, limits);
	return s;
}
