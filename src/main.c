/*
 * pop3server: command line, users file set-up, signals, and the run.
 * Every option is checked before any socket is opened; a bad one gets a
 * message and exit status 2 (a port in use: 1).  Signal handlers only
 * set flags and poke a self-pipe so select() wakes up.
 */
/* initgroups() is not POSIX; every Unix we target has it. */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "filter.h"
#include "log.h"
#include "proto.h"
#include "regfile.h"
#include "server.h"
#include "settings.h"
#include "users.h"
#include "wipe.h"

#define EXIT_USAGE 2
#define MAX_CLI_USERS 4096

struct options {
	struct server_config server;
	const char *users_file;
	const char *log_file;
	const char *run_as;		/* -g: drop to this user */
	uid_t run_uid;			/* its ids, from the options */
	gid_t run_gid;
	bool allow_root;		/* --allow-root: root is intended */
	char *cli_users[MAX_CLI_USERS];	/* "name:password", from -u */
	size_t ncli_users;
};

static struct server_signals signals;
static int signal_pipe[2] = { -1, -1 };

/* After -h or -v: success only if what was asked for was written. */
static _Noreturn void
exit_printed(void)
{
	if (fflush(stdout) == EOF || ferror(stdout)) {
		fprintf(stderr, "pop3server: cannot write the output: %s\n",
		    strerror(errno));
		exit(EXIT_FAILURE);
	}
	exit(EXIT_SUCCESS);
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: pop3server [options]\n"
	    "  -p PORT      POP3 port (default %d)\n"
	    "  -l ADDR      POP3 address (default: all, IPv4 and IPv6)\n"
	    "  -P PORT      management port (default %d)\n"
	    "  -L ADDR      management address (default: loopback)\n"
	    "  -d DIR       mail root, one Maildir per user (default %s)\n"
	    "  -u USER:PASS create a user or set its password (repeatable)\n"
	    "  -U FILE      users and settings file (default %s)\n"
	    "  -t COMMAND   pass every RETR through /bin/sh -c COMMAND\n"
	    "  --filter-timeout SECONDS\n"
	    "               kill a filter silent that long (default %d)\n"
	    "  -T SECONDS   idle timeout (default %d)\n"
	    "  -m N         maximum connections (default: descriptor limit)\n"
	    "  --log FILE   access log file (default: standard error)\n"
	    "  -g USER      after binding, drop root privileges to USER\n"
	    "  --allow-root serve as root without -g (no warning)\n"
	    "  -v, --version  print the version and exit\n"
	    "  -h, --help     print this help and exit\n",
	    DEFAULT_POP3_PORT, DEFAULT_MGMT_PORT, DEFAULT_MAIL_ROOT,
	    DEFAULT_USERS_FILE, DEFAULT_FILTER_TIMEOUT, DEFAULT_IDLE_TIMEOUT);
}

static void die_usage(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

static void
die_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "pop3server: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'pop3server -h' for help.\n");
	exit(EXIT_USAGE);
}

static unsigned long
number(const char *arg, unsigned long min, unsigned long max,
    const char *what)
{
	uint64_t v;

	if (!proto_parse_uint(arg, max, &v) || v < min)
		die_usage("%s must be a number from %lu to %lu, not '%s'", what,
		    min, max, arg);
	return (unsigned long)v;
}

/*
 * -m: any count from 1 up.  More than the descriptors allow is no usage
 * error: the server clamps it, with a warning, once it knows its limit.
 */
static size_t
connections(const char *arg)
{
	uint64_t v;

	if (!proto_parse_count(arg, &v) || v == 0)
		die_usage("-m connections must be a number from 1 up, not '%s'",
		    arg);
	return v > SIZE_MAX ? SIZE_MAX : (size_t)v;
}

/*
 * An address to listen on must resolve now: a bad one is a usage error.
 * A resolver that cannot answer yet (DNS not up at boot) is a run-time
 * failure, status 1, which a service manager retries.
 */
static const char *
listen_address(const char *addr, const char *what)
{
	struct addrinfo hints = { 0 }, *res;
	int rc;

	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	rc = getaddrinfo(addr, NULL, &hints, &res);
	if (rc == EAI_AGAIN || rc == EAI_MEMORY || rc == EAI_SYSTEM) {
		fprintf(stderr, "pop3server: %s: cannot resolve '%s' now: %s\n",
		    what, addr, rc == EAI_SYSTEM ? strerror(errno) :
		    gai_strerror(rc));
		exit(EXIT_FAILURE);
	}
	if (rc != 0)
		die_usage("%s: cannot use address '%s': %s", what, addr,
		    gai_strerror(rc));
	/* Our IPv6 sockets are IPv6-only: the kernel refuses to bind these. */
	for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next)
		if (ai->ai_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(
		    &((const struct sockaddr_in6 *)(const void *)
		    ai->ai_addr)->sin6_addr)) {
			freeaddrinfo(res);
			die_usage("%s: '%s' is an IPv4-mapped address; give "
			    "the IPv4 address", what, addr);
		}
	freeaddrinfo(res);
	return addr;
}

/* True when binding sa would take the address of sb (same family). */
static bool
takes_address(const struct sockaddr *sa, const struct sockaddr *sb)
{
	if (sa->sa_family == AF_INET) {
		const struct in_addr *a =
		    &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
		const struct in_addr *b =
		    &((const struct sockaddr_in *)(const void *)sb)->sin_addr;

		return a->s_addr == htonl(INADDR_ANY) ||
		    b->s_addr == htonl(INADDR_ANY) || a->s_addr == b->s_addr;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a =
		    &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
		const struct in6_addr *b =
		    &((const struct sockaddr_in6 *)(const void *)sb)->sin6_addr;

		return IN6_IS_ADDR_UNSPECIFIED(a) ||
		    IN6_IS_ADDR_UNSPECIFIED(b) ||
		    memcmp(a, b, sizeof(*a)) == 0;
	}
	return false;
}

/*
 * True when listening on addr a and on addr b (NULL: every address for
 * a, the loopback ones for b, as the server does) on one port would
 * collide: some address of a's is, or covers, one of b's.
 */
static bool
addresses_collide(const char *a, const char *b)
{
	struct addrinfo hints = { 0 }, *ra, *rb;
	bool hit = false;

	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	if (a == NULL)
		return true;
	if (b == NULL)
		return addresses_collide(a, "127.0.0.1") ||
		    addresses_collide(a, "::1");
	if (getaddrinfo(a, NULL, &hints, &ra) != 0)
		return false;
	if (getaddrinfo(b, NULL, &hints, &rb) == 0) {
		for (const struct addrinfo *x = ra; x != NULL; x = x->ai_next)
			for (const struct addrinfo *y = rb; y != NULL;
			    y = y->ai_next)
				hit = hit || (x->ai_family == y->ai_family &&
				    takes_address(x->ai_addr, y->ai_addr));
		freeaddrinfo(rb);
	}
	freeaddrinfo(ra);
	return hit;
}

/*
 * Long-only options get values no short option has, so that optopt
 * tells a refused long option from a refused short one.
 */
enum { OPT_LOG = 0x100, OPT_FILTER_TIMEOUT, OPT_ALLOW_ROOT };

/*
 * Names the option getopt_long() refused.  A short one is optopt:
 * argv[optind - 1] may be the argument before it (`-d m -Zx`, even
 * `--allow-root -Zx`).  For a long one optopt is 0 when unknown, else
 * its value (a long-only one, or -h's and -v's, which are never
 * refused as short options).
 */
static void __attribute__((noreturn))
die_bad_option(char **argv, bool missing_value)
{
	const char *a = argv[optind - 1];
	int len = (int)strcspn(a, "=");
	bool long_refused = strncmp(a, "--", 2) == 0 && (optopt == 0 ||
	    optopt >= OPT_LOG || optopt == 'h' || optopt == 'v');

	if (!long_refused) {
		if (missing_value)
			die_usage("option '-%c' needs a value", optopt);
		die_usage("unknown option '-%c'", optopt);
	}
	if (missing_value)
		die_usage("option '%.*s' needs a value", len, a);
	if (optopt != 0)
		die_usage("option '%.*s' takes no value", len, a);
	die_usage("unknown option '%.*s'", len, a);
}

static void
check_cli_user(char *spec)
{
	char *colon = strchr(spec, ':');

	if (colon == NULL)
		die_usage("-u wants USER:PASS, got no ':'");
	*colon = '\0';
	if (!users_valid_name(spec))
		die_usage("-u: invalid user name '%s' (1-64 of A-Z a-z 0-9 . "
		    "_ -, not starting with '.')", spec);
	if (!users_valid_password(colon + 1))
		die_usage("-u: invalid password for '%s' (1-128 printable "
		    "characters, no spaces)", spec);
	*colon = ':';
}

/*
 * -g must name an account: one that does not exist is a bad option
 * value, found before any socket is opened.  The switch itself waits
 * until the ports are bound.
 */
static void
resolve_run_as(struct options *o)
{
	struct passwd *pw;

	errno = 0;
	pw = getpwnam(o->run_as);
	/*
	 * "Not found" comes with errno 0, ENOENT, ESRCH, EBADF, EPERM...
	 * (getpwnam(3)); only these are real failures of the lookup.
	 */
	if (pw == NULL)
		die_usage("-g %s: %s", o->run_as, errno == EIO ||
		    errno == EMFILE || errno == ENFILE || errno == ENOMEM ||
		    errno == ERANGE || errno == EINTR ? strerror(errno) :
		    "no such user");
	o->run_uid = pw->pw_uid;
	o->run_gid = pw->pw_gid;
}

/* A -u USER:PASS, checked and kept for prepare_users. */
static void
add_cli_user(struct options *o, char *arg)
{
	check_cli_user(arg);
	if (o->ncli_users == MAX_CLI_USERS)
		die_usage("too many -u options (max %d)", MAX_CLI_USERS);
	o->cli_users[o->ncli_users++] = arg;
}

/* A -t COMMAND; MGMT's FILTER and the log show it as one line. */
static const char *
filter_option(const char *arg)
{
	if (*arg == '\0')
		die_usage("-t needs a command");
	if (!filter_command_ok(arg))
		die_usage("-t: the command %s", FILTER_RULE);
	return arg;
}

/* Applies option ch (a getopt_long answer) with its value optarg. */
static void
apply_option(int ch, char **argv, struct options *o)
{
	switch (ch) {
	case 'p':
		o->server.pop3_port = (unsigned)number(optarg, 1, 65535,
		    "-p port");
		break;
	case 'l':
		o->server.pop3_addr = listen_address(optarg, "-l");
		break;
	case 'P':
		o->server.mgmt_port = (unsigned)number(optarg, 1, 65535,
		    "-P port");
		break;
	case 'L':
		o->server.mgmt_addr = listen_address(optarg, "-L");
		break;
	case 'd':
		o->server.mail_root = optarg;
		break;
	case 'u':
		add_cli_user(o, optarg);
		break;
	case 'U':
		o->users_file = optarg;
		break;
	case 'T':
		o->server.idle_s = (unsigned)number(optarg, 1,
		    SETTING_IDLE_MAX, "-T seconds");
		break;
	case 'm':
		o->server.max_conn = connections(optarg);
		break;
	case OPT_LOG:
		o->log_file = optarg;
		break;
	case 't':
		o->server.filter = filter_option(optarg);
		break;
	case 'g':
		o->run_as = optarg;
		break;
	case OPT_ALLOW_ROOT:
		o->allow_root = true;
		break;
	case OPT_FILTER_TIMEOUT:
		o->server.filter_limit_s = (unsigned)number(optarg, 1,
		    MAX_FILTER_TIMEOUT, "--filter-timeout seconds");
		break;
	case 'v':
		printf(POP3D_NAME " " POP3D_VERSION "\n");
		exit_printed();
	case 'h':
		usage(stdout);
		exit_printed();
	default:
		die_bad_option(argv, ch == ':');
	}
}

/* What no single option shows: the mail root and the two ports. */
static void
check_options(struct options *o)
{
	struct stat st;

	if (stat(o->server.mail_root, &st) < 0)
		die_usage("mail root '%s' does not exist", o->server.mail_root);
	if (!S_ISDIR(st.st_mode))
		die_usage("mail root '%s' is not a directory",
		    o->server.mail_root);
	/* Where they overlap, one would fail to bind: a usage error. */
	if (o->server.pop3_port == o->server.mgmt_port &&
	    addresses_collide(o->server.pop3_addr, o->server.mgmt_addr))
		die_usage("-p and -P are both %u: POP3 and MGMT need their "
		    "own ports", o->server.pop3_port);
	if (o->run_as != NULL)
		resolve_run_as(o);
}

static void
parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "log", required_argument, NULL, OPT_LOG },
		{ "filter-timeout", required_argument, NULL,
		    OPT_FILTER_TIMEOUT },
		{ "allow-root", no_argument, NULL, OPT_ALLOW_ROOT },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	o->server.pop3_port = DEFAULT_POP3_PORT;
	o->server.mgmt_port = DEFAULT_MGMT_PORT;
	o->server.mail_root = DEFAULT_MAIL_ROOT;
	o->server.idle_s = 0;	/* not given: the default, or the saved one */
	o->server.filter_limit_s = DEFAULT_FILTER_TIMEOUT;
	o->users_file = DEFAULT_USERS_FILE;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":p:l:P:L:d:u:U:t:T:m:g:vh",
	    longopts, NULL)) != -1)
		apply_option(ch, argv, o);
	if (optind < argc)
		die_usage("unexpected argument '%s'", argv[optind]);
	check_options(o);
}

/*
 * Adds an account at start.  The command line and the administrator
 * are not bound by MAX_USERS (an MGMT limit on ADD_USER): the limit is
 * raised to fit them, with a warning.
 */
static enum users_status
add_at_start(struct users *u, const char *name, const char *password)
{
	enum users_status st = users_add(u, name, password);

	if (st != USERS_FULL)
		return st;
	fprintf(stderr, "pop3server: warning: max users raised to %zu to "
	    "add '%s'\n", users_count(u) + 1, name);
	st = users_set_setting(u, SETTING_MAX_USERS, users_count(u) + 1);
	return st == USERS_OK ? users_add(u, name, password) : st;
}

/* Says why the users file did not load: its bad line, or the cause. */
static void
load_failed(const char *file, enum users_status st, unsigned line, int err)
{
	if (st == USERS_PARSE) {
		fprintf(stderr, "pop3server: %s: %s (line %u)\n", file,
		    users_strerror(st), line);
	} else {
		fprintf(stderr, "pop3server: cannot read %s: %s\n", file,
		    st == USERS_IO ? regfile_strerror(err) :
		    users_strerror(st));
	}
}

/*
 * The users file holds the password hashes.  One that others may read
 * (copied in by hand, a restored backup) gets mode 0600, as each save
 * gives it, and the warning says it was open.
 */
static void
protect_users_file(const char *file)
{
	struct stat sb;
	int fd = regfile_open(file, O_RDONLY, 0);

	if (fd == -1)
		return;		/* missing: it is created 0600 */
	if (fstat(fd, &sb) == 0 && (sb.st_mode & 077) != 0) {
		if (fchmod(fd, 0600) == 0)
			fprintf(stderr, "pop3server: warning: %s was open to "
			    "others (mode %04o); it is 0600 now\n", file,
			    (unsigned)(sb.st_mode & 07777));
		else
			fprintf(stderr, "pop3server: warning: %s is open to "
			    "others (mode %04o) and stays so: %s\n", file,
			    (unsigned)(sb.st_mode & 07777), strerror(errno));
	}
	(void)close(fd);
}

/*
 * A filter saved by an older version, or by hand, that MGMT's FILTER
 * would not save as it is: refused before anything is created or saved.
 * "-" records a removal; an older version saved "- " for it, which the
 * shell would run.
 */
static bool
saved_filter_ok(const char *file, const struct users *u)
{
	const char *f = users_setting_text(u, SETTING_FILTER);

	if (f == NULL || strcmp(f, "-") == 0 || (filter_command_ok(f) &&
	    strchr(" \t", f[0]) == NULL &&
	    strchr(" \t", f[strlen(f) - 1]) == NULL))
		return true;
	fprintf(stderr, "pop3server: %s: the %%filter line's command %s, "
	    "and neither starts nor ends with a space or tab; fix or delete "
	    "that line\n", file, FILTER_RULE);
	return false;
}

/* Sets each -u account's password, adding the account when missing. */
static bool
apply_cli_users(struct options *o, struct users *u)
{
	enum users_status st;

	for (size_t i = 0; i < o->ncli_users; i++) {
		char *colon = strchr(o->cli_users[i], ':');

		*colon = '\0';
		st = users_exists(u, o->cli_users[i]) ?
		    users_set_password(u, o->cli_users[i], colon + 1) :
		    add_at_start(u, o->cli_users[i], colon + 1);
		/* The clear password is not needed any more. */
		wipe(colon + 1, strlen(colon + 1));
		if (st != USERS_OK) {
			fprintf(stderr, "pop3server: -u %s: %s\n",
			    o->cli_users[i], users_strerror(st));
			return false;
		}
	}
	return true;
}

/* Adds "admin" with a random password, left in pw to be shown. */
static bool
create_admin(struct users *u, char *pw, size_t cap)
{
	if (users_random_password(pw, cap) &&
	    add_at_start(u, "admin", pw) == USERS_OK)
		return true;
	wipe(pw, cap);
	fprintf(stderr, "pop3server: cannot create the administrator\n");
	return false;
}

/* Applies -u and creates a missing admin; saves if anything changed. */
static int
prepare_users(struct options *o, struct users **out)
{
	struct users *u;
	unsigned line = 0;
	enum users_status st = users_load(o->users_file, &u, &line);
	char admin_pw[17] = "";

	if (st != USERS_OK) {
		load_failed(o->users_file, st, line, errno);
		return -1;
	}
	if (!saved_filter_ok(o->users_file, u)) {
		users_free(u);
		return -1;
	}
	protect_users_file(o->users_file);
	if (!apply_cli_users(o, u) || (!users_exists(u, "admin") &&
	    !create_admin(u, admin_pw, sizeof(admin_pw)))) {
		users_free(u);
		return -1;
	}
	/* Saved when -u or a new administrator changed the accounts. */
	st = o->ncli_users > 0 || admin_pw[0] != '\0' ? users_save(u) :
	    USERS_OK;
	/* The file was replaced: the change is in effect. */
	if (st == USERS_UNSYNCED) {
		fprintf(stderr, "pop3server: warning: %s %s: %s\n",
		    o->users_file, users_strerror(st), strerror(errno));
	} else if (st != USERS_OK) {
		fprintf(stderr, "pop3server: cannot write %s: %s\n",
		    o->users_file, strerror(errno));
		wipe(admin_pw, sizeof(admin_pw));
		users_free(u);
		return -1;
	}
	/* Shown once it is saved: a password that was not kept is no use. */
	if (admin_pw[0] != '\0')
		fprintf(stderr, "pop3server: created administrator 'admin' "
		    "with password: %s\n", admin_pw);
	wipe(admin_pw, sizeof(admin_pw));
	*out = u;
	return 0;
}

/*
 * Becomes `name`, whose ids resolve_run_as() looked up, for good:
 * supplementary groups, group, user, in that order, then checks that
 * root cannot be regained.
 */
static int
drop_privileges(const char *name, uid_t uid, gid_t gid)
{
	if (initgroups(name, gid) < 0 || setgid(gid) < 0 || setuid(uid) < 0) {
		log_err("-g %s: cannot drop privileges: %s", name,
		    strerror(errno));
		return -1;
	}
	if (getuid() != uid || geteuid() != uid || getgid() != gid ||
	    getegid() != gid || (uid != 0 && setuid(0) == 0)) {
		log_err("-g %s: privileges were not dropped", name);
		return -1;
	}
	log_info("running as %s (uid %u, gid %u)", name, (unsigned)uid,
	    (unsigned)gid);
	return 0;
}

static void
on_signal(int sig)
{
	int saved = errno;
	char c = (char)sig;

	if (sig == SIGHUP)
		signals.reopen_log = 1;
	else if (sig == SIGCHLD)
		signals.child = 1;
	else
		signals.stop = 1;
	if (write(signal_pipe[1], &c, 1) < 0) {
		/* The pipe is full: select() will wake anyway. */
	}
	errno = saved;
}

/* Opens the --log file, if any; false (after saying why) when it cannot. */
static bool
open_log(const struct options *o)
{
	if (o->log_file == NULL || log_open(o->log_file) == 0)
		return true;
	fprintf(stderr, "pop3server: cannot open log %s: %s\n", o->log_file,
	    regfile_strerror(errno));
	return false;
}

/*
 * Checked with the rights that will serve (after -g): a mail root the
 * server cannot enter would answer every login [SYS/TEMP].
 */
static bool
can_enter_mail_root(const struct options *o)
{
	if (access(o->server.mail_root, X_OK) == 0)
		return true;
	fprintf(stderr, "pop3server: mail root '%s': %s%s%s\n",
	    o->server.mail_root, strerror(errno),
	    o->run_as != NULL ? " as " : "",
	    o->run_as != NULL ? o->run_as : "");
	return false;
}

static int
setup_signals(void)
{
	struct sigaction sa;

	if (pipe(signal_pipe) < 0)
		return -1;
	for (int i = 0; i < 2; i++) {
		int fl = fcntl(signal_pipe[i], F_GETFL);

		if (fl < 0 || fcntl(signal_pipe[i], F_SETFL,
		    fl | O_NONBLOCK) < 0 ||
		    fcntl(signal_pipe[i], F_SETFD, FD_CLOEXEC) < 0)
			return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = SIG_IGN;
	if (sigaction(SIGPIPE, &sa, NULL) < 0)
		return -1;
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_NOCLDSTOP;
	if (sigaction(SIGCHLD, &sa, NULL) < 0 ||
	    sigaction(SIGINT, &sa, NULL) < 0 ||
	    sigaction(SIGTERM, &sa, NULL) < 0 ||
	    sigaction(SIGHUP, &sa, NULL) < 0)
		return -1;
	return 0;
}

/*
 * Descriptors 0, 1 and 2 on /dev/null where the parent left them closed:
 * else sockets take those numbers, and a line written to standard error
 * lands in a client's connection.
 */
static bool
std_fds_open(void)
{
	for (int fd = STDIN_FILENO; fd <= STDERR_FILENO; fd++) {
		/* The lower ones are open: open() takes this very number. */
		if (fcntl(fd, F_GETFD) == -1 &&
		    open("/dev/null", O_RDWR) != fd) {
			fprintf(stderr, "pop3server: descriptor %d is closed "
			    "and /dev/null cannot be opened for it\n", fd);
			return false;
		}
	}
	return true;
}

int
main(int argc, char **argv)
{
	static struct options o;
	struct users *users = NULL;
	int rc;

	if (!std_fds_open())
		return EXIT_FAILURE;
	parse_options(argc, argv, &o);
	/*
	 * With -g the log is opened as USER, after the drop: root must not
	 * follow a link USER planted in its own log folder, and the file
	 * it creates is USER's, which SIGHUP reopens as USER.
	 */
	if (o.run_as == NULL && (!open_log(&o) || !can_enter_mail_root(&o)))
		return EXIT_USAGE;
	if (setup_signals() < 0) {
		fprintf(stderr, "pop3server: signals: %s\n", strerror(errno));
		return EXIT_FAILURE;
	}
	if (!server_bind(&o.server, signal_pipe[0]) || (o.run_as != NULL &&
	    drop_privileges(o.run_as, o.run_uid, o.run_gid) < 0)) {
		server_shutdown();
		return EXIT_FAILURE;
	}
	if (o.run_as != NULL && (!open_log(&o) || !can_enter_mail_root(&o))) {
		server_shutdown();
		return EXIT_USAGE;
	}
	/*
	 * Serving as root is allowed (many test rigs and containers run as
	 * root) but never silently: --allow-root says it is intended.
	 */
	if ((getuid() == 0 || geteuid() == 0) && !o.allow_root)
		log_warn("serving mail as root; use -g USER (a user other "
		    "than root) to drop privileges after binding, or "
		    "--allow-root");
	if (prepare_users(&o, &users) < 0) {
		server_shutdown();
		return EXIT_FAILURE;
	}
	if (!server_start(&o.server, users)) {
		server_shutdown();
		users_free(users);
		return EXIT_FAILURE;
	}
	rc = server_run(&signals);
	log_info("pop3server shutting down");
	server_shutdown();
	users_free(users);
	log_close();
	return rc == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
