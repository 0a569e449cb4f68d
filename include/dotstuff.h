/*
 * The message encoder: turns the bytes of a stored message (LF line
 * ends, maybe some CRLF) into what POP3 puts on the wire: every line
 * ends in CRLF (a CRLF already there is kept, never doubled), every
 * line starting with '.' gets one more '.', the message ends with a line
 * end (an empty message is one empty line), then ".\r\n".  TOP's
 * limit (headers, blank line, k body lines) is applied here too.  The
 * output never depends on how the input is split into chunks: all
 * state lives in struct dotstuff.
 *
 * Also the size counter: what LIST and STAT report, the message's octets
 * on the wire before byte-stuffing (the final line end included, the
 * ".\r\n" terminator not).  Both share one notion of "line end", so a
 * size always equals the encoded length minus stuffing and terminator.
 */
#ifndef POP3D_DOTSTUFF_H
#define POP3D_DOTSTUFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dotstuff {
	bool at_bol;		/* the next byte starts a line */
	bool empty;		/* nothing consumed yet */
	bool last_cr;		/* the previous byte was a CR */
	bool line_empty;	/* nothing but maybe a CR seen on this line */
	bool in_body;		/* the blank line after the headers is out */
	bool limited;		/* TOP: stop after body_left body lines */
	bool done;		/* limit reached: further input is ignored */
	uint64_t body_left;
	uint64_t size;		/* octets put out, stuffing not counted */
};

/*
 * Starts a message.  limited=false encodes the whole message (RETR);
 * limited=true stops after `body_lines` lines of body (TOP n k), or
 * never if the message has fewer.
 */
void dotstuff_init(struct dotstuff *ds, bool limited, uint64_t body_lines);

/*
 * Encodes from src[0..n) into dst[0..cap).  Returns how many input bytes
 * were consumed and sets *out_len to the bytes written.  It consumes as
 * much as fits; with cap >= 2 it always consumes at least one byte
 * unless n == 0 or the TOP limit was reached.  Once the limit is reached
 * it consumes (drops) all input.
 */
size_t dotstuff_feed(struct dotstuff *ds, const uint8_t *src, size_t n,
    uint8_t *dst, size_t cap, size_t *out_len);

/* True once a TOP limit is reached: the rest of the file is not needed. */
bool dotstuff_done(const struct dotstuff *ds);

/* Room dotstuff_end() needs at most. */
#define DOTSTUFF_END_MAX ((size_t)5)

/*
 * Ends the message: a CRLF if the last line lacked a line end or the
 * message was empty, then ".\r\n".  Returns the bytes written, or 0
 * (writing nothing) when cap is smaller than what is needed.
 */
size_t dotstuff_end(struct dotstuff *ds, uint8_t *dst, size_t cap);

/*
 * The message's octets put out so far, as LIST counts them: the final
 * line end included once dotstuff_end() wrote it, byte-stuffing and the
 * terminator never.  A file sent whole gives its listed size.
 */
uint64_t dotstuff_size(const struct dotstuff *ds);

/* Counts the wire size of a message fed in chunks of any size. */
struct wiresize {
	uint64_t size;
	bool last_cr;
	bool at_bol;
};

void wiresize_init(struct wiresize *ws);
void wiresize_feed(struct wiresize *ws, const uint8_t *src, size_t n);
/*
 * The total, the line end added to an unterminated last line (or to an
 * empty message) included.
 */
uint64_t wiresize_end(const struct wiresize *ws);

#endif
