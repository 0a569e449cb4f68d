/*
 * Line framer, table dispatcher and strict parsers shared by the POP3
 * and MGMT engines.  Nothing here writes a reply or touches a socket.
 */
#include <string.h>
#include <strings.h>

#include "proto.h"
#include "wipe.h"

/*
 * Junk is wiped as it is dropped: an over-long or NUL-bearing PASS line
 * never reaches the handler that wipes a password after use.
 */
static void
discard(struct buffer *in, uint8_t *p, size_t n)
{
	wipe(p, n);
	buffer_read_adv(in, n);
}

enum line_status
proto_next_line(struct framer *f, struct buffer *in, size_t max, char **line)
{
	size_t n, len;
	uint8_t *p = buffer_read_ptr(in, &n);
	uint8_t *lf = memchr(p, '\n', n);

	if (lf == NULL) {
		/* No line end yet: a partial line already too long is junk. */
		if (n >= max) {
			discard(in, p, n);
			f->discarding = true;
		}
		return LINE_NONE;
	}
	len = (size_t)(lf - p) + 1;
	if (f->discarding || len > max) {
		discard(in, p, len);
		f->discarding = false;
		return LINE_TOO_LONG;
	}
	if (memchr(p, '\0', len) != NULL) {
		discard(in, p, len);
		return LINE_NUL;
	}
	buffer_read_adv(in, len);
	/* The content: the line without its LF and a CR before it. */
	len--;
	if (len > 0 && p[len - 1] == '\r')
		len--;
	p[len] = '\0';
	*line = (char *)p;
	return LINE_OK;
}

static const struct cmd *
find(const struct cmd *table, const char *name)
{
	for (; table != NULL && table->name != NULL; table++)
		if (strcasecmp(table->name, name) == 0)
			return table;
	return NULL;
}

/*
 * Splits line in place into words; returns their count, or max + 1 when
 * there are more than max.
 */
static int
split(char *line, char **argv, int max)
{
	int argc = 0;
	char *p = line;

	for (;;) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			return argc;
		if (argc == max)
			return max + 1;
		argv[argc++] = p;
		while (*p != '\0' && *p != ' ')
			p++;
		if (*p == '\0')
			return argc;
		*p++ = '\0';
	}
}

/* Runs c on the arguments in args (NULL: none), split by c's rule. */
static enum cmd_result
call(const struct cmd *c, void *session, char *word, char *args)
{
	char *argv[PROTO_MAX_ARGS + 2];
	int argc = 1;

	argv[0] = word;
	if (args != NULL) {
		/* A rest-of-line argument keeps its spaces (RFC 1939 PASS). */
		if ((c->flags & CMD_REST) && *args != '\0') {
			argv[argc++] = args;
		} else {
			/* argv's size bounds the words, whatever a row says. */
			int max = c->max_args < PROTO_MAX_ARGS ? c->max_args :
			    PROTO_MAX_ARGS;
			int n = split(args, argv + 1, max);

			if (n > max)
				return CMD_BAD_ARGS;
			argc += n;
		}
	}
	if (argc - 1 < c->min_args || argc - 1 > c->max_args)
		return CMD_BAD_ARGS;
	argv[argc] = NULL;
	return c->fn(session, argc, argv);
}

enum cmd_result
proto_dispatch(const struct cmd *const tables[], unsigned ntables,
    unsigned cur, void *session, char *line)
{
	const struct cmd *c;
	enum cmd_result r;
	char *sp;
	size_t args_len;

	/* Find the command word alone first, to choose the arity rule. */
	while (*line == ' ')
		line++;
	if (*line == '\0')
		return CMD_UNKNOWN;
	sp = strchr(line, ' ');
	if (sp != NULL)
		*sp++ = '\0';
	args_len = sp != NULL ? strlen(sp) : 0;
	c = find(tables[cur], line);
	r = c != NULL ? call(c, session, line, sp) : CMD_BAD_STATE;
	for (unsigned i = 0; c == NULL && i < ntables; i++)
		if (i != cur)
			c = find(tables[i], line);
	if (c == NULL)
		return CMD_UNKNOWN;
	/*
	 * Whatever came of it (a refusal for arity or state too), a
	 * password must not stay readable in the input buffer, or in a
	 * core dump.
	 */
	if ((c->flags & CMD_SECRET) && sp != NULL)
		wipe(sp, args_len);
	return r;
}

bool
proto_parse_uint(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		unsigned d;

		if (*s < '0' || *s > '9')
			return false;
		d = (unsigned)(*s - '0');
		if (d > max || v > (max - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

bool
proto_parse_count(const char *s, uint64_t *out)
{
	if (proto_parse_uint(s, UINT64_MAX, out))
		return true;
	if (*s == '\0' || s[strspn(s, "0123456789")] != '\0')
		return false;
	*out = UINT64_MAX;
	return true;
}

static int
b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

long
proto_base64_decode(const char *in, uint8_t *out, size_t cap)
{
	size_t len = strlen(in), n = 0;

	if (len % 4 != 0)
		return -1;
	for (size_t i = 0; i < len; i += 4) {
		int v[4];
		int pad = 0;
		bool last = i + 4 == len;

		for (int k = 0; k < 4; k++) {
			if (in[i + k] == '=' && last && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad > 0)
				return -1;	/* data after padding */
			v[k] = b64_value(in[i + k]);
			if (v[k] < 0)
				return -1;
		}
		if (n + 3 - (size_t)pad > cap)
			return -1;
		out[n++] = (uint8_t)(v[0] << 2 | v[1] >> 4);
		if (pad < 2)
			out[n++] = (uint8_t)((v[1] & 0xf) << 4 | v[2] >> 2);
		if (pad < 1)
			out[n++] = (uint8_t)((v[2] & 0x3) << 6 | v[3]);
	}
	return (long)n;
}
