/*
 * admin_monitor: the command-line client of the management protocol.
 * Connects, logs in, sends one command, sends QUIT, and prints every
 * line the server sent (without the '.' that ends a multi-line reply).
 * Exit status: 0 the command got +OK; 1 the login or the command got
 * -ERR; 2 usage error; 3 no connection, a broken one, no whole reply in
 * time, or a reply from something that is no management server.  A
 * client may wait, so it blocks, but never without a deadline.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "now.h"
#include "proto.h"
#include "wipe.h"

#define EXIT_ERR	1
#define EXIT_USAGE	2
#define EXIT_CONN	3
#define PROTOCOL_VERSION "1.0"
#define DEFAULT_TIMEOUT	10

/* A client command: its flag, the MGMT verb, arguments, reply kind. */
struct command {
	const char *flag;
	const char *verb;
	int nargs;		/* -1: zero or one */
	bool multi;		/* multi-line reply on +OK */
	const char *usage;
};

static const struct command commands[] = {
	{ "-HELP", NULL, 0, false, "" },
	{ "-HISTORIC_CONNEC", "HISTORIC_CONNEC", 0, true, "" },
	{ "-LIVE_CONNEC", "LIVE_CONNEC", 0, true, "" },
	{ "-BYTES_TRANS", "BYTES_TRANS", 0, true, "" },
	{ "-USERS", "USERS", 0, true, "" },
	{ "-STATUS", "STATUS", 0, true, "" },
	{ "-MAX_USERS", "MAX_USERS", 1, true, " <maxUsers>" },
	{ "-MAX_CONNECTIONS", "MAX_CONNEC", 1, false, " <maxConnections>" },
	{ "-IDLE_TIMEOUT", "IDLE_TIMEOUT", 1, false, " <seconds>" },
	{ "-TIMEOUT", "TIMEOUT", 1, false, " <seconds>" },
	{ "-DELETE_USER", "DELETE_USER", 1, true, " <username>" },
	{ "-ADD_USER", "ADD_USER", 2, true, " <username> <password>" },
	{ "-RESET_USER_PASSWORD", "RESET_USER_PASSWORD", 1, true,
	    " <username>" },
	{ "-CHANGE_PASSWORD", "CHANGE_PASSWORD", 2, true,
	    " <oldPassword> <newPassword>" },
	{ "-FILTER", "FILTER", -1, true, " [<command>|-]" },
	{ "-CAPA", "CAPA", 0, true, "" },
	{ "-NOOP", "NOOP", 0, false, "" },
};

#define LINK_BUF	4096	/* the longest reply line, LF included */

struct link {
	int fd;
	unsigned timeout_s;
	char buf[LINK_BUF];
	size_t len;
};

static bool
one_word(const char *arg)
{
	return arg[0] != '\0' && strchr(arg, ' ') == NULL;
}

static bool
all_one_word(char *const args[], int n)
{
	for (int k = 0; k < n; k++)
		if (!one_word(args[k]))
			return false;
	return true;
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: admin_monitor [--host H] [--port P] [--timeout S] "
	    "<version> <username> <password> <command> [args...]\n"
	    "  <version>   protocol version: " PROTOCOL_VERSION "\n"
	    "  <password>  '-' reads it from standard input\n"
	    "  defaults: --host localhost --port %d --timeout %d\n"
	    "  --help      this text (so does -HELP)\n"
	    "commands:\n", DEFAULT_MGMT_PORT, DEFAULT_TIMEOUT);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %s%s\n", commands[i].flag, commands[i].usage);
}

/* The command a flag names (case-insensitive), or NULL. */
static const struct command *
find_command(const char *flag)
{
	for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++)
		if (strcasecmp(flag, commands[k].flag) == 0)
			return &commands[k];
	return NULL;
}

static void
die_usage(const char *msg, const char *arg)
{
	fprintf(stderr, "admin_monitor: %s%s\n", msg, arg);
	usage(stderr);
	exit(EXIT_USAGE);
}

static void
die_conn(const char *msg, const char *detail)
{
	fprintf(stderr, "admin_monitor: %s%s\n", msg, detail);
	exit(EXIT_CONN);
}

/* Connects to host:port within the timeout; exits 3 on failure. */
static int
dial(const char *host, const char *port, unsigned timeout_s)
{
	struct addrinfo hints = { 0 }, *res, *ai;
	int rc, fd = -1, err = ECONNREFUSED;

	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0)
		die_conn("cannot resolve host: ", gai_strerror(rc));
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		struct pollfd p;
		socklen_t len = sizeof(err);

		fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
		if (fd < 0)
			continue;
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		err = errno;
		if (errno == EINPROGRESS) {
			p.fd = fd;
			p.events = POLLOUT;
			if (poll(&p, 1, (int)timeout_s * 1000) == 1 &&
			    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err,
			    &len) == 0 && err == 0)
				break;
			if (err == EINPROGRESS)
				err = ETIMEDOUT;
		}
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		die_conn("cannot connect: ", strerror(err));
	return fd;
}

/*
 * Waits until the socket is ready for `events` or the deadline (ms,
 * now_ms() clock) passes; exits 3 with `late` at the deadline.
 */
static void
wait_ready(struct link *l, short events, uint64_t deadline, const char *late)
{
	struct pollfd p = { .fd = l->fd, .events = events };
	uint64_t now = now_ms();

	if (now >= deadline)
		die_conn(late, "");
	if (poll(&p, 1, (int)(deadline - now)) < 0 && errno != EINTR)
		die_conn("poll: ", strerror(errno));
	if (p.revents == 0 && now_ms() >= deadline)
		die_conn(late, "");
}

static void
send_line(struct link *l, const char *line)
{
	size_t n = strlen(line), off = 0;
	uint64_t deadline = now_ms() + (uint64_t)l->timeout_s * 1000;

	while (off < n) {
		ssize_t w;

		wait_ready(l, POLLOUT, deadline, "the server does not read");
		w = send(l->fd, line + off, n - off, MSG_NOSIGNAL);
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			die_conn("connection broken: ", strerror(errno));
		if (w > 0)
			off += (size_t)w;
	}
}

/*
 * Reads one line (CRLF or LF stripped) into out, which holds LINK_BUF
 * octets, before the deadline (ms, now_ms() clock) and returns its
 * length; exits 3 when the server closes, stays silent, or sends a
 * line longer than that.
 */
static size_t
read_line(struct link *l, char *out, uint64_t deadline)
{
	for (;;) {
		char *lf = memchr(l->buf, '\n', l->len);
		ssize_t n;

		if (lf != NULL) {
			size_t len = (size_t)(lf - l->buf), keep = len;

			if (keep > 0 && l->buf[keep - 1] == '\r')
				keep--;
			memcpy(out, l->buf, keep);
			l->len -= len + 1;
			memmove(l->buf, lf + 1, l->len);
			return keep;
		}
		if (l->len == sizeof(l->buf))
			die_conn("reply line too long", "");
		wait_ready(l, POLLIN, deadline,
		    "no answer from the server in time");
		n = recv(l->fd, l->buf + l->len, sizeof(l->buf) - l->len, 0);
		if (n == 0)
			die_conn("the server closed the connection", "");
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			die_conn("connection broken: ", strerror(errno));
		if (n > 0)
			l->len += (size_t)n;
	}
}

/* Prints a line as it came, NUL bytes and all. */
static void
print_line(const char *line, size_t len)
{
	fwrite(line, 1, len, stdout);
	putchar('\n');
}

/* True when the line is exactly text. */
static bool
is_line(const char *line, size_t len, const char *text)
{
	return len == strlen(text) && memcmp(line, text, len) == 0;
}

/* True when the line is the status word alone or followed by a space. */
static bool
has_status(const char *line, size_t len, const char *word)
{
	size_t n = strlen(word);

	return len >= n && memcmp(line, word, n) == 0 &&
	    (len == n || line[n] == ' ');
}

/*
 * Prints a reply's status line (and body), all read within wait_ms;
 * true when it was +OK.  A status line that is neither +OK nor -ERR
 * comes from something else than a management server: exit 3.
 */
static bool
print_reply(struct link *l, bool multi, uint64_t wait_ms)
{
	char line[LINK_BUF];
	uint64_t deadline = now_ms() + wait_ms;
	size_t len = read_line(l, line, deadline);
	bool ok = has_status(line, len, "+OK");

	print_line(line, len);
	if (!ok && !has_status(line, len, "-ERR"))
		die_conn("not a management protocol reply", "");
	if (!ok || !multi)
		return ok;
	for (;;) {
		len = read_line(l, line, deadline);
		if (len == 1 && line[0] == '.')
			return true;
		if (len > 0 && line[0] == '.')
			print_line(line + 1, len - 1);
		else
			print_line(line, len);
	}
}

/*
 * Prints the greeting; true for a management server's, false for -ERR
 * (no room for another session).  Any other is no management server
 * (the POP3 port given by mistake greets with +OK too): exit 3.
 */
static bool
read_greeting(struct link *l, uint64_t wait_ms)
{
	char line[LINK_BUF];
	size_t len = read_line(l, line, now_ms() + wait_ms);

	print_line(line, len);
	/* MGMT's own refusals; any other -ERR is another service's. */
	if (is_line(line, len, MGMT_FULL_GREETING) ||
	    is_line(line, len, MGMT_BUSY_GREETING))
		return false;
	if (!is_line(line, len, MGMT_GREETING))
		die_conn("not a management server: its greeting is not ",
		    "\"" MGMT_GREETING "\"");
	return true;
}

static bool
exchange(struct link *l, const char *cmd, bool multi, uint64_t wait_ms)
{
	char line[600];

	if ((size_t)snprintf(line, sizeof(line), "%s\r\n", cmd) >=
	    sizeof(line))
		die_usage("arguments too long", "");
	send_line(l, line);
	wipe(line, sizeof(line));	/* PASS, or a command's password */
	return print_reply(l, multi, wait_ms);
}

/*
 * Exit status st, unless stdout could not be written: a script must not
 * take figures (or a usage text) it never got for a success.
 */
static int
flushed(int st)
{
	if (fflush(stdout) == EOF || ferror(stdout))
		die_conn("cannot write the output", "");
	return st;
}

/* The value after option argv[i]; a usage error when there is none. */
static const char *
option_value(int argc, char **argv, int i)
{
	if (i + 1 >= argc)
		die_usage("option needs a value: ", argv[i]);
	return argv[i + 1];
}

/* Prints the usage on standard output and exits: what --help asked. */
static void
help_and_exit(void)
{
	usage(stdout);
	exit(flushed(0));
}

/* The options before <version>: how to reach the server. */
enum link_option { OPT_HELP, OPT_HOST, OPT_PORT, OPT_TIMEOUT, OPT_NONE };

static enum link_option
link_option(const char *word)
{
	static const char *const names[] = {
		[OPT_HELP] = "--help", [OPT_HOST] = "--host",
		[OPT_PORT] = "--port", [OPT_TIMEOUT] = "--timeout",
	};
	enum link_option o = OPT_HELP;

	while (o < OPT_NONE && strcmp(word, names[o]) != 0)
		o++;
	return o;
}

static bool
is_link_option(const char *word)
{
	return link_option(word) != OPT_NONE;
}

/* Reads --host, --port and --timeout; returns the index of <version>. */
static int
parse_link_options(int argc, char **argv, const char **host,
    const char **port, unsigned *timeout_s)
{
	uint64_t v;
	int i = 1;

	for (; i < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
		switch (link_option(argv[i])) {
		case OPT_HELP:
			help_and_exit();
			break;
		case OPT_HOST:
			*host = option_value(argc, argv, i);
			break;
		case OPT_PORT:
			*port = option_value(argc, argv, i);
			if (!proto_parse_uint(*port, 65535, &v) || v == 0)
				die_usage("invalid port: ", *port);
			break;
		case OPT_TIMEOUT:
			if (!proto_parse_uint(option_value(argc, argv, i), 3600,
			    &v) || v == 0)
				die_usage("invalid timeout: ", argv[i + 1]);
			*timeout_s = (unsigned)v;
			break;
		case OPT_NONE:
			die_usage("unknown option: ", argv[i]);
			break;
		}
	}
	return i;
}

static void
misplaced_option(const char *word)
{
	die_usage("options must come before <version>: ", word);
}

/*
 * Checks <version> <username> <password> <command> [args...] from
 * argv[i] on and returns the command; the arguments must reach the
 * server as the words they are.
 */
static const struct command *
parse_command(int argc, char **argv, int i)
{
	const struct command *cmd;
	const char *first = i < argc ? argv[i] : "";
	int nargs = argc - (i + 4);

	if (strcasecmp(first, "-HELP") == 0) {
		if (argc - i > 1)
			die_usage("-HELP takes no arguments", "");
		help_and_exit();
	}
	/*
	 * "-p 6000" or "-h", pop3server's spellings, are options, not a
	 * version, even alone on the line; a command alone lacks the rest.
	 */
	if (first[0] == '-' && first[1] != '\0' && find_command(first) == NULL)
		die_usage("unknown option (options are --host, --port, "
		    "--timeout and --help): ", first);
	/*
	 * Taken for the user or the command, it would mislead.  A password
	 * may be such a word (CHANGE_PASSWORD sets any), and so may a
	 * command's argument (a user named --host), unless it is one too
	 * many or the command after it is none.
	 */
	for (int k = i + 1; k < argc && k <= i + 3; k += 2)
		if (is_link_option(argv[k]))
			misplaced_option(argv[k]);
	if (nargs < 0)
		die_usage("missing arguments", "");
	if (strcmp(first, PROTOCOL_VERSION) != 0)
		die_usage("unsupported protocol version: ", first);
	if ((cmd = find_command(argv[i + 3])) == NULL) {
		if (is_link_option(argv[i + 2]))
			misplaced_option(argv[i + 2]);
		die_usage("unknown command: ", argv[i + 3]);
	}
	/* A line break would smuggle a command of its own onto the line. */
	for (int k = i + 1; k < argc; k++)
		if (strpbrk(argv[k], "\r\n") != NULL)
			die_usage("an argument may not hold a line break", "");
	if (cmd->nargs >= 0 ? nargs != cmd->nargs : nargs > 1) {
		for (int k = i + 4; k < argc; k++)
			if (is_link_option(argv[k]))
				misplaced_option(argv[k]);
		die_usage("wrong number of arguments for ", cmd->flag);
	}
	if (cmd->verb == NULL)
		help_and_exit();
	/*
	 * Names, passwords and numbers hold no spaces: the server would
	 * split such an argument in two, or see none at all.
	 */
	if (!one_word(argv[i + 1]) || (cmd->nargs >= 0 &&
	    !all_one_word(argv + i + 4, nargs)))
		die_usage("an argument may not be empty or hold a space", "");
	return cmd;
}

/* The password from its argument, or from standard input for "-". */
static void
read_password(const char *arg, char *pw, size_t cap)
{
	if (strcmp(arg, "-") == 0) {
		if (fgets(pw, (int)cap, stdin) == NULL)
			die_usage("no password on standard input", "");
		pw[strcspn(pw, "\r\n")] = '\0';
	} else if (strlen(arg) <= PASSWORD_MAX) {
		snprintf(pw, cap, "%s", arg);
	}
	if (!one_word(pw) || strlen(pw) > PASSWORD_MAX)
		die_usage("a password is 1 to 128 characters without spaces",
		    "");
}

/* The MGMT command line; a line the server would refuse is not sent. */
static void
compose(char *line, size_t cap, const struct command *cmd,
    char *const args[], int nargs, const char *user)
{
	snprintf(line, cap, "%s", cmd->verb);
	for (int k = 0; k < nargs; k++) {
		strncat(line, " ", cap - strlen(line) - 1);
		strncat(line, args[k], cap - strlen(line) - 1);
	}
	if (strlen(line) + 2 > POP3_MAX_LINE ||
	    strlen(user) + 7 > POP3_MAX_LINE)
		die_usage("arguments too long", "");
}

/*
 * How long a reply may take: the timeout, plus what the server adds on
 * purpose (a failed password's delay, a TIMEOUT's pause), which a short
 * --timeout must not take for a server that does not answer.
 */
static uint64_t
reply_wait_ms(const struct link *l, const char *verb)
{
	uint64_t ms = (uint64_t)l->timeout_s * 1000;

	if (strcmp(verb, "PASS") == 0 || strcmp(verb, "CHANGE_PASSWORD") == 0)
		ms += AUTH_FAIL_DELAY_MS;
	/* Another administrator's longer pause may put it off that long. */
	if (strcmp(verb, "TIMEOUT") == 0)
		ms += (uint64_t)MGMT_PAUSE_MAX * 1000;
	return ms;
}

/* Logs in, sends the command and QUIT; true when the command got +OK. */
static bool
run_session(struct link *l, const char *user, const char *pw,
    const struct command *cmd, const char *cmdline)
{
	char line[600];
	bool ok;

	if (!read_greeting(l, reply_wait_ms(l, "")))
		return false;
	snprintf(line, sizeof(line), "USER %s", user);
	ok = exchange(l, line, false, reply_wait_ms(l, "USER"));
	if (ok) {
		snprintf(line, sizeof(line), "PASS %s", pw);
		ok = exchange(l, line, false, reply_wait_ms(l, "PASS"));
		wipe(line, sizeof(line));
	}
	if (ok)
		ok = exchange(l, cmdline, cmd->multi,
		    reply_wait_ms(l, cmd->verb));
	exchange(l, "QUIT", false, reply_wait_ms(l, "QUIT"));
	return ok;
}

int
main(int argc, char **argv)
{
	const char *host = "localhost", *port = "6000";
	static char pw[PASSWORD_MAX + 2];
	char cmdline[600];
	const struct command *cmd;
	struct link l = { .fd = -1, .timeout_s = DEFAULT_TIMEOUT };
	bool ok;
	int i;

	/* A closed output pipe is an output not written: exit 3, said. */
	(void)signal(SIGPIPE, SIG_IGN);
	i = parse_link_options(argc, argv, &host, &port, &l.timeout_s);
	cmd = parse_command(argc, argv, i);
	read_password(argv[i + 2], pw, sizeof(pw));
	compose(cmdline, sizeof(cmdline), cmd, argv + i + 4, argc - (i + 4),
	    argv[i + 1]);
	l.fd = dial(host, port, l.timeout_s);
	ok = run_session(&l, argv[i + 1], pw, cmd, cmdline);
	wipe(pw, sizeof(pw));
	/* ADD_USER and CHANGE_PASSWORD carry passwords too. */
	wipe(cmdline, sizeof(cmdline));
	close(l.fd);
	return flushed(ok ? 0 : EXIT_ERR);
}
