/*
 * Protocol-neutral line machinery shared by POP3 and MGMT: the line
 * framer, the command dispatcher over per-state tables, and strict
 * parsers for numbers and base64.  No sockets and no replies here: the
 * protocol engines turn results into "+OK"/"-ERR" text.
 */
#ifndef POP3D_PROTO_H
#define POP3D_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buffer.h"

enum line_status {
	LINE_NONE,	/* no complete line yet */
	LINE_OK,	/* *line is a NUL-terminated line, end stripped */
	LINE_TOO_LONG,	/* a line over the limit was discarded to its LF */
	LINE_NUL,	/* a line holding a NUL byte was discarded */
};

/* Framer state that must survive between reads (discard mode). */
struct framer {
	bool discarding;
};

/*
 * Takes the next line out of `in`.  A line ends at LF; a CR right before
 * the LF is dropped too (bare LF is accepted, see docs/design.md).  A
 * line longer than `max` octets (its line end included) is discarded up
 * to its LF and reported once as LINE_TOO_LONG; its tail is never taken
 * for a command.  On LINE_OK, *line points into `in`'s storage and stays
 * valid until the next write into `in`.
 */
enum line_status proto_next_line(struct framer *f, struct buffer *in,
    size_t max, char **line);

/* What a command handler tells the engine (cf. popa3d POP_*). */
enum cmd_result {
	CMD_OK,		/* engine replies "+OK" */
	CMD_ERR,	/* engine replies "-ERR <reason>", a bad command */
	CMD_REPLIED,	/* the handler queued its own reply */
	CMD_STREAM,	/* handler started a producer; parsing pauses */
	CMD_NEXT,	/* reply queued; move to the session's next state */
	CMD_CLOSE,	/* reply queued; close once it is flushed */
	CMD_PENDING,	/* the reply comes later (a timer); parsing pauses */
	/* Set by proto_dispatch itself, never by handlers: */
	CMD_UNKNOWN,	/* no state knows the command */
	CMD_BAD_STATE,	/* another state knows it */
	CMD_BAD_ARGS,	/* too few or too many arguments */
};

/* argv[0] is the command word; argv[1..argc-1] its arguments. */
typedef enum cmd_result cmd_fn(void *session, int argc, char **argv);

#define CMD_REST 0x01	/* one argument: the rest of the line, spaces kept */
#define CMD_SECRET 0x02	/* arguments hold a password: wiped after the call */

struct cmd {
	const char *name;	/* upper case; matched case-insensitively */
	cmd_fn *fn;
	unsigned char min_args;
	unsigned char max_args;
	unsigned char flags;
	const char *usage;	/* synopsis for a capability listing */
};

#define PROTO_MAX_ARGS 8	/* most words a command takes */

/*
 * Splits `line` in place into words separated by spaces, looks the first
 * one up in tables[cur] (each table ends with a {NULL} row), checks the
 * argument count and calls the handler.  Returns the handler's result,
 * or CMD_UNKNOWN / CMD_BAD_STATE / CMD_BAD_ARGS.  An empty line is
 * CMD_UNKNOWN.
 */
enum cmd_result proto_dispatch(const struct cmd *const tables[],
    unsigned ntables, unsigned cur, void *session, char *line);

/*
 * Parses a decimal number of digits only: no sign, no spaces, no
 * leading '+', at most `max`.  False on anything else or overflow.
 */
bool proto_parse_uint(const char *s, uint64_t max, uint64_t *out);

/*
 * As proto_parse_uint(s, UINT64_MAX, out), but a number too big for
 * 64 bits gives UINT64_MAX: for counts where "more than there is" is
 * what matters (TOP's line count).
 */
bool proto_parse_count(const char *s, uint64_t *out);

/*
 * Decodes strict base64 (RFC 4648, padded, no spaces) into out[0..cap).
 * Returns the decoded length, or -1 when the text is not base64 or does
 * not fit.
 */
long proto_base64_decode(const char *in, uint8_t *out, size_t cap);

#endif
