/*
 * Unit tests of the message encoder and the wire-size counter.  Every
 * case is checked against a literal expected encoding, then re-encoded
 * split at every input offset, byte at a time and through tiny output
 * buffers, all of which must give the same bytes; the size counter must
 * agree with the encoder on each.
 */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dotstuff.h"

/* An encoding held in a growing heap buffer. */
struct enc {
	uint8_t *buf;
	size_t len, cap;
	uint64_t size;		/* dotstuff_size() once ended */
};

static void
enc_append(struct enc *e, const uint8_t *p, size_t n)
{
	if (e->len + n > e->cap) {
		size_t cap = e->cap == 0 ? 256 : e->cap;

		while (cap < e->len + n)
			cap *= 2;
		e->buf = realloc(e->buf, cap);
		ck_assert_ptr_nonnull(e->buf);
		e->cap = cap;
	}
	if (n > 0)
		memcpy(e->buf + e->len, p, n);
	e->len += n;
}

/*
 * Feeds src[0..n) in input chunks of `chunk` bytes (0: all at once),
 * through an output buffer of `cap` bytes (at least 2, the contract's
 * minimum), then ends the message.
 */
static struct enc
encode(const char *src, size_t n, bool limited, uint64_t k, size_t chunk,
    size_t cap)
{
	struct dotstuff ds;
	struct enc e = { NULL, 0, 0, 0 };
	uint8_t *out, tail[DOTSTUFF_END_MAX];
	size_t pos = 0, w;

	ck_assert_uint_ge(cap, 2);
	out = malloc(cap);
	ck_assert_ptr_nonnull(out);
	dotstuff_init(&ds, limited, k);
	while (pos < n) {
		size_t len = chunk == 0 || n - pos < chunk ? n - pos : chunk;
		size_t got = 0;

		/* Drain this chunk; each call must make progress. */
		while (got < len) {
			size_t used = dotstuff_feed(&ds,
			    (const uint8_t *)src + pos + got, len - got, out,
			    cap, &w);

			ck_assert_uint_le(used, len - got);
			ck_assert_uint_le(w, cap);
			ck_assert(used > 0 || w > 0);
			enc_append(&e, out, w);
			got += used;
		}
		pos += len;
	}
	w = dotstuff_end(&ds, tail, sizeof(tail));
	ck_assert_uint_gt(w, 0);
	enc_append(&e, tail, w);
	e.size = dotstuff_size(&ds);
	free(out);
	return e;
}

/* Feeds the input split in two at `split`, output buffer large. */
static struct enc
encode_split(const char *src, size_t n, bool limited, uint64_t k,
    size_t split)
{
	struct dotstuff ds;
	struct enc e = { NULL, 0, 0, 0 };
	size_t cap = 2 * n + DOTSTUFF_END_MAX + 2;
	uint8_t *out = malloc(cap);
	size_t used, w;

	ck_assert_ptr_nonnull(out);
	dotstuff_init(&ds, limited, k);
	used = dotstuff_feed(&ds, (const uint8_t *)src, split, out, cap, &w);
	ck_assert_uint_eq(used, split);
	enc_append(&e, out, w);
	used = dotstuff_feed(&ds, (const uint8_t *)src + split, n - split,
	    out, cap, &w);
	ck_assert_uint_eq(used, n - split);
	enc_append(&e, out, w);
	w = dotstuff_end(&ds, out, cap);
	ck_assert_uint_gt(w, 0);
	enc_append(&e, out, w);
	e.size = dotstuff_size(&ds);
	free(out);
	return e;
}

/* Counts stuffing dots: a '.' right after the start or a CRLF, doubled. */
static size_t
stuffed_dots(const struct enc *e)
{
	size_t i, dots = 0;

	for (i = 0; i + 1 < e->len; i++) {
		bool bol = i == 0 || (e->buf[i - 1] == '\n');

		if (bol && e->buf[i] == '.' && e->buf[i + 1] == '.')
			dots++;
	}
	return dots;
}

/*
 * The expected bytes, and dotstuff_size() counting them as LIST does:
 * without the stuffing and the ".\r\n" terminator.
 */
static void
assert_enc(const struct enc *e, const char *want, size_t want_len)
{
	ck_assert_msg(e->len == want_len &&
	    memcmp(e->buf, want, want_len) == 0,
	    "encoding differs (got %zu bytes, want %zu)", e->len, want_len);
	ck_assert_uint_eq(e->size, e->len - stuffed_dots(e) - 3);
}

static uint64_t
wiresize_chunked(const char *src, size_t n, size_t chunk)
{
	struct wiresize ws;
	size_t pos = 0;

	wiresize_init(&ws);
	if (n == 0)
		wiresize_feed(&ws, (const uint8_t *)"", 0);
	while (pos < n) {
		size_t len = chunk == 0 || n - pos < chunk ? n - pos : chunk;

		wiresize_feed(&ws, (const uint8_t *)src + pos, len);
		pos += len;
	}
	return wiresize_end(&ws);
}

/*
 * The full battery for one message: literal expectation, every split
 * point, byte at a time, tiny output buffers, and wiresize agreement
 * (limited=false) chunked the same ways.
 */
static void
check_message(const char *src, size_t n, bool limited, uint64_t k,
    const char *want, size_t want_len)
{
	struct enc one, e;
	size_t split, c;
	uint64_t size;
	static const size_t caps[] = { 2, 3, 4, 5, 7, 64 };

	one = encode(src, n, limited, k, 0, 2 * n + DOTSTUFF_END_MAX + 2);
	assert_enc(&one, want, want_len);

	for (split = 0; split <= n; split++) {
		e = encode_split(src, n, limited, k, split);
		ck_assert_msg(e.len == one.len &&
		    memcmp(e.buf, one.buf, one.len) == 0,
		    "split at %zu differs", split);
		free(e.buf);
	}
	e = encode(src, n, limited, k, 1, 64);
	assert_enc(&e, want, want_len);
	free(e.buf);
	for (c = 0; c < sizeof(caps) / sizeof(caps[0]); c++) {
		e = encode(src, n, limited, k, 0, caps[c]);
		assert_enc(&e, want, want_len);
		free(e.buf);
		e = encode(src, n, limited, k, 3, caps[c]);
		assert_enc(&e, want, want_len);
		free(e.buf);
	}

	if (!limited) {
		/* LIST size = wire bytes - stuffing - ".\r\n". */
		size = (uint64_t)(one.len - stuffed_dots(&one) - 3);
		ck_assert_uint_eq(wiresize_chunked(src, n, 0), size);
		ck_assert_uint_eq(wiresize_chunked(src, n, 1), size);
		for (split = 0; split <= n; split++) {
			struct wiresize ws;

			wiresize_init(&ws);
			wiresize_feed(&ws, (const uint8_t *)src, split);
			wiresize_feed(&ws, (const uint8_t *)src + split,
			    n - split);
			ck_assert_uint_eq(wiresize_end(&ws), size);
		}
	}
	free(one.buf);
}

#define MSG(s)		s, sizeof(s) - 1
#define RETR(in, out)	check_message(MSG(in), false, 0, MSG(out))
#define TOP(in, k, out)	check_message(MSG(in), true, k, MSG(out))

START_TEST(test_leading_dots)
{
	RETR(".a\nb.\n..c\n", "..a\r\nb.\r\n...c\r\n.\r\n");
	RETR("x\n.\ny\n", "x\r\n..\r\ny\r\n.\r\n");
	RETR("..\n", "...\r\n.\r\n");
	RETR(".", "..\r\n.\r\n");
	RETR(".\n", "..\r\n.\r\n");
}
END_TEST

START_TEST(test_line_ends)
{
	RETR("a\r\nb\r\n", "a\r\nb\r\n.\r\n");
	RETR("a\r\nb\nc\r\n\n", "a\r\nb\r\nc\r\n\r\n.\r\n");
	RETR("a\nb", "a\r\nb\r\n.\r\n");
	RETR("a\r", "a\r\r\n.\r\n");
	/* A CR not before LF is a plain byte: no line end, no stuffing. */
	RETR("a\rb\n", "a\rb\r\n.\r\n");
	RETR("a\r.b\n", "a\r.b\r\n.\r\n");
	RETR("\r.\n", "\r.\r\n.\r\n");
	RETR("a\r\r\n", "a\r\r\n.\r\n");
}
END_TEST

/* An empty message is one empty line, as Dovecot sends it. */
START_TEST(test_empty_messages)
{
	RETR("", "\r\n.\r\n");
	RETR("\n", "\r\n.\r\n");
	RETR("\r\n", "\r\n.\r\n");
	RETR("\n\n", "\r\n\r\n.\r\n");
}
END_TEST

START_TEST(test_tricky_every_split)
{
	RETR("From: a\r\nSubject: .x\n\n.\n..\r\n\r.\r\r\nend.\n.\r",
	    "From: a\r\nSubject: .x\r\n\r\n..\r\n...\r\n\r.\r\r\nend.\r\n"
	    "..\r\r\n.\r\n");
}
END_TEST

START_TEST(test_top_counts)
{
	static const char m[] = "H1: a\nH2: .b\n\nl1\n.l2\nl3\n";

	TOP(m, 0, "H1: a\r\nH2: .b\r\n\r\n.\r\n");
	TOP(m, 1, "H1: a\r\nH2: .b\r\n\r\nl1\r\n.\r\n");
	TOP(m, 2, "H1: a\r\nH2: .b\r\n\r\nl1\r\n..l2\r\n.\r\n");
	TOP(m, 3, "H1: a\r\nH2: .b\r\n\r\nl1\r\n..l2\r\nl3\r\n.\r\n");
	TOP(m, 99999999,
	    "H1: a\r\nH2: .b\r\n\r\nl1\r\n..l2\r\nl3\r\n.\r\n");
}
END_TEST

START_TEST(test_top_shapes)
{
	/* No blank line: all of it is headers, sent whole. */
	TOP("H: a\nb\n", 0, "H: a\r\nb\r\n.\r\n");
	TOP("H: a\nb", 0, "H: a\r\nb\r\n.\r\n");
	/* The blank line as CRLF. */
	TOP("H: a\r\n\r\nbody\r\nmore\r\n", 1,
	    "H: a\r\n\r\nbody\r\n.\r\n");
	TOP("H: a\r\n\r\nbody\r\nmore\r\n", 0, "H: a\r\n\r\n.\r\n");
	/* "\r\r\n" is not blank (two CRs). */
	TOP("H\n\r\r\nx\n\ny\n", 0, "H\r\n\r\r\nx\r\n\r\n.\r\n");
	/* Unterminated last body line. */
	TOP("H: a\n\nbody", 1, "H: a\r\n\r\nbody\r\n.\r\n");
	TOP("H: a\n\nbody", 5, "H: a\r\n\r\nbody\r\n.\r\n");
	/* Blank first line: no headers at all. */
	TOP("\nbody\nb2\n", 1, "\r\nbody\r\n.\r\n");
	TOP("", 0, "\r\n.\r\n");
	/* Stuffing inside the body lines TOP sends. */
	TOP("S: x\n\n.\n..\n.z\n", 2, "S: x\r\n\r\n..\r\n...\r\n.\r\n");
	/* A header line of one dot is stuffed, and is no blank line. */
	TOP("S: x\n.\nT: y\n\nb\n", 0, "S: x\r\n..\r\nT: y\r\n\r\n.\r\n");
}
END_TEST

START_TEST(test_top_drops_rest)
{
	static const char m[] = "H: a\n\nl1\nl2\nl3\n";
	struct dotstuff ds;
	uint8_t out[64];
	size_t used, w;

	dotstuff_init(&ds, true, 1);
	ck_assert(!dotstuff_done(&ds));
	used = dotstuff_feed(&ds, (const uint8_t *)m, sizeof(m) - 1, out,
	    sizeof(out), &w);
	/* The limit is reached inside the input: the rest is dropped. */
	ck_assert_uint_eq(used, sizeof(m) - 1);
	ck_assert_uint_eq(w, strlen("H: a\r\n\r\nl1\r\n"));
	ck_assert_mem_eq(out, "H: a\r\n\r\nl1\r\n", w);
	ck_assert(dotstuff_done(&ds));
	used = dotstuff_feed(&ds, (const uint8_t *)"more\n", 5, out,
	    sizeof(out), &w);
	ck_assert_uint_eq(used, 5);
	ck_assert_uint_eq(w, 0);
	ck_assert_uint_eq(dotstuff_end(&ds, out, sizeof(out)), 3);
	ck_assert_mem_eq(out, ".\r\n", 3);

	/* RETR is never done early. */
	dotstuff_init(&ds, false, 0);
	(void)dotstuff_feed(&ds, (const uint8_t *)m, sizeof(m) - 1, out,
	    sizeof(out), &w);
	ck_assert(!dotstuff_done(&ds));
}
END_TEST

START_TEST(test_tiny_caps)
{
	static const char m[] = ".a\r\n\n..\rb\n.";
	static const char want[] = "..a\r\n\r\n...\rb\r\n..\r\n.\r\n";
	static const size_t caps[] = { 2, 3 };
	size_t c;

	for (c = 0; c < 2; c++) {
		struct dotstuff ds;
		struct enc e = { NULL, 0, 0, 0 };
		uint8_t out[DOTSTUFF_END_MAX];
		size_t pos = 0, w;

		dotstuff_init(&ds, false, 0);
		while (pos < sizeof(m) - 1) {
			size_t used = dotstuff_feed(&ds,
			    (const uint8_t *)m + pos, sizeof(m) - 1 - pos,
			    out, caps[c], &w);

			/* Contract: cap >= 2 always makes progress. */
			ck_assert_uint_gt(used, 0);
			ck_assert_uint_le(w, caps[c]);
			enc_append(&e, out, w);
			pos += used;
		}
		w = dotstuff_end(&ds, out, sizeof(out));
		enc_append(&e, out, w);
		e.size = dotstuff_size(&ds);
		assert_enc(&e, want, sizeof(want) - 1);
		free(e.buf);
	}
}
END_TEST

START_TEST(test_end_needs_room)
{
	struct dotstuff ds;
	uint8_t out[DOTSTUFF_END_MAX];
	size_t w;

	/* Unterminated line: needs 5, refuses 4 and writes nothing. */
	dotstuff_init(&ds, false, 0);
	(void)dotstuff_feed(&ds, (const uint8_t *)"x", 1, out, sizeof(out),
	    &w);
	memset(out, 'Z', sizeof(out));
	ck_assert_uint_eq(dotstuff_end(&ds, out, 4), 0);
	ck_assert_mem_eq(out, "ZZZZZ", 5);
	ck_assert_uint_eq(dotstuff_end(&ds, out, 5), 5);
	ck_assert_mem_eq(out, "\r\n.\r\n", 5);

	/* An empty message is one unterminated empty line: needs 5. */
	dotstuff_init(&ds, false, 0);
	ck_assert_uint_eq(dotstuff_end(&ds, out, 4), 0);
	ck_assert_uint_eq(dotstuff_end(&ds, out, 5), 5);
	ck_assert_mem_eq(out, "\r\n.\r\n", 5);

	/* At a line start: needs 3. */
	dotstuff_init(&ds, false, 0);
	(void)dotstuff_feed(&ds, (const uint8_t *)"x\n", 2, out, sizeof(out),
	    &w);
	ck_assert_uint_eq(dotstuff_end(&ds, out, 2), 0);
	ck_assert_uint_eq(dotstuff_end(&ds, out, 3), 3);
	ck_assert_mem_eq(out, ".\r\n", 3);
}
END_TEST

START_TEST(test_feed_edges)
{
	struct dotstuff ds;
	uint8_t out[8];
	size_t w = 99;

	/* n == 0 consumes and writes nothing. */
	dotstuff_init(&ds, false, 0);
	ck_assert_uint_eq(dotstuff_feed(&ds, (const uint8_t *)"", 0, out,
	    sizeof(out), &w), 0);
	ck_assert_uint_eq(w, 0);
	/* A full output consumes nothing. */
	ck_assert_uint_eq(dotstuff_feed(&ds, (const uint8_t *)"abc", 3, out,
	    0, &w), 0);
	ck_assert_uint_eq(w, 0);
	/* cap 1 cannot take ".." at a line start. */
	ck_assert_uint_eq(dotstuff_feed(&ds, (const uint8_t *)".", 1, out,
	    1, &w), 0);
	ck_assert_uint_eq(w, 0);
}
END_TEST

START_TEST(test_large_message)
{
	/* Many lines, longer than any internal chunk, crossing caps. */
	size_t n = 0, i, lines = 5000;
	char *src = malloc(lines * 40);
	struct enc one, e;
	uint64_t size;

	ck_assert_ptr_nonnull(src);
	for (i = 0; i < lines; i++) {
		int len = snprintf(src + n, 40, "%s%zu line%s",
		    i % 7 == 0 ? "." : "", i, i % 3 == 0 ? "\r\n" : "\n");

		n += (size_t)len;
	}
	one = encode(src, n, false, 0, 0, 2 * n + 16);
	e = encode(src, n, false, 0, 4093, 997);
	ck_assert_uint_eq(e.len, one.len);
	ck_assert_mem_eq(e.buf, one.buf, one.len);
	free(e.buf);
	size = one.len - stuffed_dots(&one) - 3;
	ck_assert_uint_eq(wiresize_chunked(src, n, 0), size);
	ck_assert_uint_eq(wiresize_chunked(src, n, 777), size);
	/* TOP with a huge k equals RETR. */
	e = encode(src, n, true, UINT64_MAX, 0, 2 * n + 16);
	ck_assert_uint_eq(e.len, one.len);
	ck_assert_mem_eq(e.buf, one.buf, one.len);
	free(e.buf);
	free(one.buf);
	free(src);
}
END_TEST

START_TEST(test_wiresize_values)
{
	ck_assert_uint_eq(wiresize_chunked("", 0, 0), 2);	/* one empty line */
	ck_assert_uint_eq(wiresize_chunked(MSG("\n"), 0), 2);
	ck_assert_uint_eq(wiresize_chunked(MSG("a\nb\n"), 0), 6);
	ck_assert_uint_eq(wiresize_chunked(MSG("a\r\nb\r\n"), 0), 6);
	ck_assert_uint_eq(wiresize_chunked(MSG("abc"), 0), 5);
	ck_assert_uint_eq(wiresize_chunked(MSG("a\r"), 0), 4);
	ck_assert_uint_eq(wiresize_chunked(MSG(".\n"), 0), 3);
}
END_TEST

Suite *dotstuff_suite(void);

Suite *
dotstuff_suite(void)
{
	Suite *s = suite_create("dotstuff");
	TCase *core = tcase_create("core");
	TCase *limits = tcase_create("limits");

	tcase_add_test(core, test_leading_dots);
	tcase_add_test(core, test_line_ends);
	tcase_add_test(core, test_top_counts);
	tcase_add_test(core, test_top_shapes);
	tcase_add_test(core, test_top_drops_rest);
	tcase_add_test(core, test_wiresize_values);
	suite_add_tcase(s, core);

	tcase_add_test(limits, test_empty_messages);
	tcase_add_test(limits, test_tricky_every_split);
	tcase_add_test(limits, test_tiny_caps);
	tcase_add_test(limits, test_end_needs_room);
	tcase_add_test(limits, test_feed_edges);
	tcase_add_test(limits, test_large_message);
	suite_add_tcase(s, limits);
	return s;
}
