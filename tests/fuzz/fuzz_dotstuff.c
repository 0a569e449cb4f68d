/*
 * libFuzzer harness (c): the CRLF / byte-stuffing encoder (RETR, TOP)
 * and the wire-size counter (LIST, STAT).
 *
 * Input layout (short inputs are all message):
 *   byte 0      flags: bit 0 = TOP (limited) mode
 *   byte 1      TOP body lines (255 means UINT64_MAX)
 *   byte 2      number of cut points k (taken modulo 33)
 *   bytes 3..   k chunk lengths, one byte each (0: an empty feed)
 *   the rest    the message; what the cuts leave is the last chunk
 * Output capacities for each dotstuff_feed() call are drawn from a
 * generator seeded by the header, mostly tiny (0..8 bytes).
 *
 * Properties (abort() on a violation):
 *   - the contract of dotstuff_feed(): consumed <= n, written <= cap,
 *     progress whenever cap >= 2 (unless the TOP limit is reached);
 *   - the encoding is the same for every chunking and every output
 *     capacity (compared with one call over the whole message);
 *   - a client that reads the wire (stops at the first ".\r\n" line,
 *     drops one leading '.' of other lines) gets the CRLF-normalised
 *     message: an LF gets a CR unless one precedes it, and a last line
 *     without a line end gets CRLF; in TOP mode, the normalised lines
 *     up to the blank line and k more;
 *   - every LF on the wire is part of a CRLF;
 *   - dotstuff_size() (any chunking) is the normalised length;
 *   - wiresize (fed in other chunks) equals the encoded length less
 *     the stuffing and the terminator, and the normalised length.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dotstuff.h"

#define MAX_CUTS	32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A growing byte string. */
struct bytes {
	uint8_t *p;
	size_t len, cap;
};

static void
fail(const char *what)
{
	fprintf(stderr, "fuzz_dotstuff: %s\n", what);
	abort();
}

static void
put(struct bytes *b, const void *src, size_t n)
{
	if (b->cap - b->len < n) {
		size_t cap = b->cap ? b->cap : 256;

		while (cap - b->len < n)
			cap *= 2;
		b->p = realloc(b->p, cap);
		if (b->p == NULL)
			fail("out of memory");
		b->cap = cap;
	}
	if (n > 0)
		memcpy(b->p + b->len, src, n);
	b->len += n;
}

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

/* Mostly tiny output room, sometimes roomy: every unit split tried. */
static size_t
pick_cap(uint64_t *rng)
{
	uint64_t r = next_rand(rng);

	switch (r % 8) {
	case 0:
		return 0;
	case 1:
		return 1;
	case 2:
	case 3:
		return 2 + (size_t)((r >> 8) % 3);
	case 4:
	case 5:
		return (size_t)((r >> 8) % 9);
	case 6:
		return 1 + (size_t)((r >> 8) % 64);
	default:
		return 4096;
	}
}

/*
 * Feeds one chunk with capacities from rng, checking the contract.
 * Tiny capacities may refuse a two-byte unit; after a few refusals a
 * roomy one is used, so the loop always ends.
 */
static void
feed_chunk(struct dotstuff *ds, const uint8_t *src, size_t n,
    uint64_t *rng, struct bytes *out)
{
	uint8_t dst[4096 + 16];
	unsigned refusals = 0;

	do {
		size_t cap = refusals >= 3 ? 4096 : pick_cap(rng);
		size_t used, wrote = (size_t)-1;
		bool was_done = dotstuff_done(ds);

		/* Canary past cap: a write beyond it is caught. */
		memset(dst, 0xA5, sizeof(dst));
		used = dotstuff_feed(ds, src, n, dst, cap, &wrote);
		if (used > n || wrote > cap)
			fail("dotstuff_feed overran its input or output");
		for (size_t i = cap; i < sizeof(dst); i++)
			if (dst[i] != 0xA5)
				fail("dotstuff_feed wrote past cap");
		if (was_done && (used != n || wrote != 0))
			fail("input after the TOP limit was not dropped");
		if (used == 0 && n > 0 && cap >= 2 && !dotstuff_done(ds))
			fail("no progress with cap >= 2");
		put(out, dst, wrote);
		src += used;
		n -= used;
		refusals = used == 0 ? refusals + 1 : 0;
	} while (n > 0);
}

/* Ends the message with a capacity from rng (retried if too small). */
static void
end_message(struct dotstuff *ds, uint64_t *rng, struct bytes *out)
{
	uint8_t dst[DOTSTUFF_END_MAX + 8];
	size_t cap = (size_t)(next_rand(rng) % (DOTSTUFF_END_MAX + 2));
	size_t need = ds->at_bol && !ds->empty ? 3 : 5;
	size_t wrote;

	memset(dst, 0xA5, sizeof(dst));
	wrote = dotstuff_end(ds, dst, cap);
	if (wrote == 0) {
		if (cap >= need)
			fail("dotstuff_end refused although it had room");
		for (size_t i = 0; i < sizeof(dst); i++)
			if (dst[i] != 0xA5)
				fail("dotstuff_end wrote although it refused");
		wrote = dotstuff_end(ds, dst, DOTSTUFF_END_MAX);
	}
	if (wrote != need)
		fail("dotstuff_end wrote the wrong length");
	for (size_t i = wrote; i < sizeof(dst); i++)
		if (dst[i] != 0xA5)
			fail("dotstuff_end wrote past its end");
	put(out, dst, wrote);
}

/*
 * The reference: the message as normalised lines, each ending CRLF,
 * cut after the blank line and `body` more lines in TOP mode.  Sets
 * *done when the cut happened on a line that had its own LF (so the
 * encoder must report dotstuff_done()) and *stuffed to the number of
 * lines that start with '.'.
 */
static void
reference(const uint8_t *msg, size_t n, bool top, uint64_t body,
    struct bytes *ref, bool *done, size_t *stuffed)
{
	size_t i = 0;
	bool in_body = false;

	*done = false;
	*stuffed = 0;
	if (n == 0)	/* an empty message is one unterminated empty line */
		put(ref, "\r\n", 2);
	while (i < n) {
		size_t start = ref->len;
		bool had_lf = false;

		if (msg[i] == '.')
			(*stuffed)++;
		for (; i < n; i++) {
			if (msg[i] == '\n') {
				if (i == 0 || msg[i - 1] != '\r')
					put(ref, "\r", 1);
				put(ref, "\n", 1);
				had_lf = true;
				i++;
				break;
			}
			put(ref, &msg[i], 1);
		}
		if (!had_lf)
			put(ref, "\r\n", 2);
		if (!top)
			continue;
		if (!in_body) {
			if (ref->len - start != 2)
				continue;	/* not the blank line */
			in_body = true;
		} else {
			body--;
		}
		if (body == 0) {
			*done = had_lf;
			return;
		}
	}
}

/*
 * Decodes the wire as a client does into `got`; returns the number of
 * lines that were un-stuffed.  Aborts on a bare LF, a missing or early
 * terminator.
 */
static size_t
client_decode(const struct bytes *wire, struct bytes *got)
{
	size_t i = 0, unstuffed = 0;

	for (size_t k = 0; k < wire->len; k++)
		if (wire->p[k] == '\n' && (k == 0 || wire->p[k - 1] != '\r'))
			fail("LF without CR on the wire");
	for (;;) {
		const uint8_t *lf;
		size_t len;

		if (i >= wire->len)
			fail("no terminating .CRLF");
		lf = memchr(wire->p + i, '\n', wire->len - i);
		if (lf == NULL)
			fail("the wire does not end with a line end");
		len = (size_t)(lf - (wire->p + i)) + 1;
		if (len == 3 && wire->p[i] == '.') {
			if (i + len != wire->len)
				fail("a lone '.' line before the end");
			return unstuffed;
		}
		if (wire->p[i] == '.') {
			if (len < 2 || wire->p[i + 1] != '.')
				fail("a line starts with a single '.'");
			put(got, wire->p + i + 1, len - 1);
			unstuffed++;
		} else {
			put(got, wire->p + i, len);
		}
		i += len;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t cuts[MAX_CUTS + 1], ncuts = 0, hdr = 0, off, msg_len;
	struct bytes wire = { 0 }, whole = { 0 }, ref = { 0 }, got = { 0 };
	bool top = false, ref_done, whole_done;
	uint64_t body = 0, rng = 0x9E3779B97F4A7C15u, chunked_size;
	const uint8_t *msg;
	struct dotstuff ds;
	struct wiresize ws;
	size_t stuffed, unstuffed, used, wrote;

	if (size >= 3) {
		size_t k = data[2] % (MAX_CUTS + 1);

		top = data[0] & 1;
		body = data[1] == 255 ? UINT64_MAX : data[1];
		hdr = 3;
		for (size_t i = 0; i < k && hdr < size; i++)
			cuts[ncuts++] = data[hdr++];
		for (size_t i = 0; i < hdr; i++)
			rng = (rng ^ data[i]) * UINT64_C(0x100000001b3);
	}
	msg = data + hdr;
	msg_len = size - hdr;

	/* Chunked, with tiny outputs. */
	dotstuff_init(&ds, top, body);
	off = 0;
	for (size_t i = 0; i <= ncuts; i++) {
		size_t len = i < ncuts ? cuts[i] : msg_len - off;

		if (len > msg_len - off)
			len = msg_len - off;
		feed_chunk(&ds, msg + off, len, &rng, &wire);
		off += len;
	}
	if (off != msg_len)
		fail("the cuts lost bytes");
	whole_done = dotstuff_done(&ds);
	end_message(&ds, &rng, &wire);
	chunked_size = dotstuff_size(&ds);

	/* In one call with all the room it can need. */
	dotstuff_init(&ds, top, body);
	whole.cap = 2 * msg_len + DOTSTUFF_END_MAX;
	whole.p = malloc(whole.cap ? whole.cap : 1);
	if (whole.p == NULL)
		fail("out of memory");
	used = dotstuff_feed(&ds, msg, msg_len, whole.p, whole.cap, &wrote);
	if (used != msg_len)
		fail("one roomy call did not take the whole message");
	whole.len = wrote;
	if (dotstuff_done(&ds) != whole_done)
		fail("the TOP limit depends on the chunking");
	wrote = dotstuff_end(&ds, whole.p + whole.len, whole.cap - whole.len);
	if (wrote == 0)
		fail("dotstuff_end refused with room");
	whole.len += wrote;
	if (whole.len != wire.len || memcmp(whole.p, wire.p, wire.len) != 0)
		fail("the encoding depends on the chunking");

	/* What the client reads is the normalised message. */
	reference(msg, msg_len, top, body, &ref, &ref_done, &stuffed);
	unstuffed = client_decode(&wire, &got);
	if (got.len != ref.len ||
	    (ref.len > 0 && memcmp(got.p, ref.p, ref.len) != 0))
		fail("the client does not read the normalised message");
	if (top && ref_done != whole_done)
		fail("dotstuff_done() disagrees with the TOP limit");
	if (dotstuff_size(&ds) != ref.len || chunked_size != ref.len)
		fail("dotstuff_size() is not the size of what was sent");

	if (!top) {
		/* Sizes: fed in the cut chunks again, in reverse order. */
		wiresize_init(&ws);
		off = 0;
		for (size_t i = 0; i <= ncuts && off < msg_len; i++) {
			size_t len = i < ncuts ? cuts[ncuts - 1 - i] :
			    msg_len - off;

			if (len > msg_len - off)
				len = msg_len - off;
			wiresize_feed(&ws, msg + off, len);
			off += len;
		}
		if (off < msg_len)
			wiresize_feed(&ws, msg + off, msg_len - off);
		if (unstuffed != stuffed)
			fail("stuffed lines miscounted");
		if (wiresize_end(&ws) != wire.len - unstuffed - 3 ||
		    wiresize_end(&ws) != ref.len)
			fail("wiresize disagrees with the encoding");
	}

	free(wire.p);
	free(whole.p);
	free(ref.p);
	free(got.p);
	return 0;
}
