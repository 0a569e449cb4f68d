/*
 * The message encoder (RETR/TOP) and the wire-size counter (LIST/STAT).
 * Pure byte work on caller memory: no I/O, no allocation.  Both walk
 * the input line by line with memchr() and copy runs with memcpy(), so
 * the cost per byte stays close to a plain copy.
 *
 * One rule for both: a line ends at LF.  A CR just before the LF is part
 * of that line end (sent as is); any other CR is an ordinary byte.  So
 * "a\r\n" and "a\n" both go out as "a\r\n", and "a\rb" stays one line.
 *
 * Encoder invariants, between any two calls:
 *
 *   input  ... x  \n | .  a  b  \n | \n | ...      at_bol: next byte
 *   output ... x \r\n | .. a  b \r\n | \r\n | ...    starts a line
 *
 *   at_bol     the previous input byte was LF (or nothing was fed)
 *   last_cr    the previous input byte was CR (already copied out)
 *   line_empty the current line so far is "" or "\r": an LF now ends
 *              the blank line that closes the headers (TOP)
 *
 * Every output step is one unit of at most two bytes ("..", "\r\n") or
 * a run of plain bytes, so a unit never straddles two calls and any
 * chunking of input or output gives the same bytes.
 */
#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "dotstuff.h"

void
dotstuff_init(struct dotstuff *ds, bool limited, uint64_t body_lines)
{
	assert(ds != NULL);
	ds->at_bol = true;
	ds->empty = true;
	ds->last_cr = false;
	ds->line_empty = true;
	ds->in_body = false;
	ds->limited = limited;
	ds->done = false;
	ds->body_left = body_lines;
	ds->size = 0;
}

/*
 * TOP bookkeeping at a line end.  The first blank line ends the headers;
 * after it, every line end uses up one body line.  Returns true once the
 * limit is reached.
 */
static bool
top_line_end(struct dotstuff *ds)
{
	if (!ds->in_body) {
		if (!ds->line_empty)
			return false;
		ds->in_body = true;
	} else
		ds->body_left--;
	if (ds->body_left == 0)
		ds->done = true;
	return ds->done;
}

/*
 * Copies src up to its first LF, or as much as dst's room takes, and
 * returns the count.  It looks for the LF only as far as the output can
 * take: with a small dst and a long line, scanning the whole input on
 * every call would make the work quadratic.
 */
static size_t
copy_run(struct dotstuff *ds, const uint8_t *src, size_t n, uint8_t *dst,
    size_t room)
{
	size_t scan = n < room ? n : room;
	const uint8_t *lf = memchr(src, '\n', scan);
	size_t run = lf != NULL ? (size_t)(lf - src) : scan;

	if (run > 0) {
		memcpy(dst, src, run);
		ds->line_empty = ds->at_bol && run == 1 && src[0] == '\r';
		ds->last_cr = src[run - 1] == '\r';
		ds->at_bol = false;
	}
	return run;
}

/*
 * Ends a line at src's LF: a CR copied just before makes it CRLF, a
 * bare LF becomes one.  False when dst has no room for it.
 */
static bool
put_line_end(const struct dotstuff *ds, uint8_t *dst, size_t *o, size_t cap)
{
	if (ds->last_cr) {
		if (cap - *o < 1)
			return false;
	} else {
		if (cap - *o < 2)
			return false;
		dst[(*o)++] = '\r';
	}
	dst[(*o)++] = '\n';
	return true;
}

size_t
dotstuff_feed(struct dotstuff *ds, const uint8_t *src, size_t n,
    uint8_t *dst, size_t cap, size_t *out_len)
{
	size_t i = 0, o = 0, stuffed = 0;
	bool top_done;

	assert(ds != NULL && out_len != NULL);
	assert(n == 0 || src != NULL);
	assert(cap == 0 || dst != NULL);

	if (ds->done) {
		/* TOP limit reached: the rest of the file is dropped. */
		*out_len = 0;
		return n;
	}
	while (i < n) {
		size_t run;

		if (ds->at_bol && src[i] == '.') {
			/* RFC 1939 section 3: byte-stuff a leading '.'. */
			if (cap - o < 2)
				break;
			dst[o++] = '.';
			dst[o++] = '.';
			stuffed++;
			i++;
			ds->at_bol = ds->last_cr = ds->line_empty = false;
			continue;
		}

		if (o == cap)
			break;
		run = copy_run(ds, src + i, n - i, dst + o, cap - o);
		o += run;
		i += run;
		if (i == n || src[i] != '\n')
			continue;	/* src ended mid-line, or dst is full */
		if (!put_line_end(ds, dst, &o, cap))
			break;
		i++;
		ds->empty = false;
		top_done = ds->limited && top_line_end(ds);
		ds->at_bol = ds->line_empty = true;
		ds->last_cr = false;
		if (top_done) {
			ds->size += o - stuffed;
			*out_len = o;
			return n;
		}
	}
	if (i > 0)
		ds->empty = false;
	ds->size += o - stuffed;
	*out_len = o;
	return i;
}

uint64_t
dotstuff_size(const struct dotstuff *ds)
{
	return ds->size;
}

bool
dotstuff_done(const struct dotstuff *ds)
{
	return ds->done;
}

size_t
dotstuff_end(struct dotstuff *ds, uint8_t *dst, size_t cap)
{
	static const uint8_t tail[DOTSTUFF_END_MAX] = "\r\n.\r\n";
	size_t need;

	assert(ds != NULL);
	/*
	 * An unterminated last line gets its CRLF even after a lone CR:
	 * that CR was already sent as a plain byte, so the wire has CR CRLF
	 * (the same count wiresize_end() adds).  An empty message is one
	 * unterminated empty line: it is sent as CRLF, as Dovecot does.
	 */
	need = ds->at_bol && !ds->empty ? 3 : 5;
	if (cap < need)
		return 0;
	memcpy(dst, tail + (DOTSTUFF_END_MAX - need), need);
	ds->size += need - 3;
	ds->at_bol = true;
	ds->empty = false;
	ds->last_cr = false;
	ds->line_empty = true;
	return need;
}

void
wiresize_init(struct wiresize *ws)
{
	assert(ws != NULL);
	ws->size = 0;
	ws->last_cr = false;
	ws->at_bol = true;
}

void
wiresize_feed(struct wiresize *ws, const uint8_t *src, size_t n)
{
	const uint8_t *p, *end, *lf;
	uint64_t bare = 0;

	assert(ws != NULL);
	if (n == 0)
		return;
	/* Every byte goes out once; an LF without its CR costs one more. */
	p = src;
	end = src + n;
	while ((lf = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		if (lf == src ? !ws->last_cr : lf[-1] != '\r')
			bare++;
		p = lf + 1;
		if (p == end)
			break;
	}
	ws->size += n + bare;
	ws->last_cr = src[n - 1] == '\r';
	ws->at_bol = src[n - 1] == '\n';
}

uint64_t
wiresize_end(const struct wiresize *ws)
{
	/*
	 * dotstuff_end() adds CRLF to an unterminated last line, and to an
	 * empty message (only an empty input leaves size 0).
	 */
	return ws->size + (ws->at_bol && ws->size > 0 ? 0 : 2);
}
