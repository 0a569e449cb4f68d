/*
 * loadgen: the POP3 load generator of the benchmark (bench/run.sh).
 *
 * One process, one thread, every socket non-blocking, one epoll set: it
 * holds tens of thousands of connections.  Each scenario is a
 * subcommand; each prints one JSON object on standard output (progress
 * and errors go to standard error).  Times are CLOCK_MONOTONIC; a reply
 * is time-stamped when epoll_wait() returns, before any processing, so
 * the generator's own work does not inflate latencies.
 *
 *   loadgen sessions  -c N -d SEC        connect/USER/PASS/STAT/QUIT loop
 *   loadgen storm     -c N [-k K -d SEC] N logins at once + 1 NOOP probe
 *   loadgen retr      -c N -m MSG -d SEC RETR loop, byte count verified
 *   loadgen plain     -c N -d SEC        read-to-EOF loop (plainserver)
 *   loadgen hold      -c N               N idle sessions, PSS, 1 NOOP each
 *   loadgen fair      -c N -m MSG        big RETR (slow/fast) + NOOP probes
 *   loadgen list      -n REPS            login/STAT/LIST/UIDL/QUIT timing
 *
 * Common options: -H host, -p port, -U user pattern ("u%d": %d is the
 * client index plus -o), -W password pattern, -o first index, -t hard
 * time limit.  See usage() for the rest.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* epoll, accept4, sendfile */
#endif
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_LEN	2048
#define OUT_MAX		512
#define RECV_CHUNK	(256 * 1024)
#define NS		1000000000LL
#define MS		1000000LL

/* ------------------------------------------------------------------ */
/* Options */

struct opts {
	const char *scenario;
	const char *host;
	int port;
	const char *user_pat;
	const char *pass_pat;
	int offset;
	int clients;
	double duration;
	double warmup;
	double limit;		/* hard time limit of the whole run */
	int msg;		/* message number for RETR */
	long long expect;	/* expected payload bytes, -1: use +OK octets */
	int ramp;		/* hold: logins in flight at once */
	int window;		/* hold: NOOPs in flight at once */
	double interval_ms;	/* storm/fair: pause between a client's NOOPs */
	int mem_pid;		/* PSS of this process tree (0: none) */
	double settle;		/* hold: pause before measuring PSS */
	const char *big_user;	/* fair: the big reader */
	const char *big_pass;	/* fair: its password */
	bool slow;		/* fair: slow big reader */
	double rate_kbs;	/* fair slow reader: KiB/s */
	int reps;		/* list: repetitions */
	int storms;		/* storm: storms, one after another */
	long long expect_msgs;	/* list: expected message count */
	int rcvbuf;		/* SO_RCVBUF for readers (0: default) */
};

static struct opts O = {
	.host = "127.0.0.1", .port = 110, .user_pat = "u%d",
	.pass_pat = "pw%d", .clients = 1, .duration = 3, .warmup = 0.5,
	.limit = 300, .msg = 1, .expect = -1, .ramp = 256, .window = 16,
	.interval_ms = 1, .settle = 1, .rate_kbs = 1024, .reps = 1,
	.expect_msgs = -1, .storms = 1,
};

static void
die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "loadgen: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void
note(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "loadgen: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ------------------------------------------------------------------ */
/* Time and samples */

static int64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

/* Time of the current epoll_wait() return: the reply's arrival. */
static int64_t now_ns;

struct samples {
	double *v;
	size_t n, cap;
};

static void
sample_add(struct samples *s, double v)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 1024;
		s->v = realloc(s->v, s->cap * sizeof(*s->v));
		if (s->v == NULL)
			die("out of memory");
	}
	s->v[s->n++] = v;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted samples; 0 when there are none. */
static double
pct(const struct samples *s, double p)
{
	size_t k;

	if (s->n == 0)
		return 0;
	k = (size_t)(p / 100.0 * (double)s->n + 0.999999);
	if (k < 1)
		k = 1;
	if (k > s->n)
		k = s->n;
	return s->v[k - 1];
}

static void
json_samples(const char *name, struct samples *s)
{
	double sum = 0;

	qsort(s->v, s->n, sizeof(*s->v), cmp_double);
	for (size_t i = 0; i < s->n; i++)
		sum += s->v[i];
	printf("\"%s\": {\"n\": %zu, \"p50_ms\": %.3f, \"p90_ms\": %.3f, "
	    "\"p99_ms\": %.3f, \"max_ms\": %.3f, \"mean_ms\": %.3f}",
	    name, s->n, pct(s, 50), pct(s, 90), pct(s, 99),
	    s->n ? s->v[s->n - 1] : 0, s->n ? sum / (double)s->n : 0);
}

/* ------------------------------------------------------------------ */
/* PSS of a process tree, from /proc/<pid>/smaps_rollup */

static long long
pss_of(int pid)
{
	char path[64], line[256];
	long long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "Pss:", 4) == 0) {
			kib = strtoll(line + 4, NULL, 10);
			break;
		}
	fclose(f);
	return kib;
}

static int
ppid_of(int pid)
{
	char path[64], buf[1024], *p;
	ssize_t n;
	int fd, ppid = -1;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (p == NULL || sscanf(p + 1, " %*c %d", &ppid) != 1)
		return -1;
	return ppid;
}

/* Sum of Pss (KiB) over root and all its descendants; *nproc counts them. */
static long long
pss_tree(int root, int *nproc)
{
	int *pid = NULL, *par = NULL, *in = NULL;
	size_t n = 0, cap = 0;
	long long sum = 0;
	struct dirent *de;
	DIR *d = opendir("/proc");
	bool grew = true;

	*nproc = 0;
	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		int p;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		p = atoi(de->d_name);
		if (n == cap) {
			cap = cap ? cap * 2 : 4096;
			pid = realloc(pid, cap * sizeof(*pid));
			par = realloc(par, cap * sizeof(*par));
			if (pid == NULL || par == NULL)
				die("out of memory");
		}
		pid[n] = p;
		par[n] = ppid_of(p);
		n++;
	}
	closedir(d);
	in = calloc(n ? n : 1, sizeof(*in));
	if (in == NULL)
		die("out of memory");
	for (size_t i = 0; i < n; i++)
		in[i] = pid[i] == root;
	while (grew) {		/* fixpoint: small trees, cheap enough */
		grew = false;
		for (size_t i = 0; i < n; i++) {
			if (in[i])
				continue;
			for (size_t j = 0; j < n; j++)
				if (in[j] && pid[j] == par[i]) {
					in[i] = 1;
					grew = true;
					break;
				}
		}
	}
	for (size_t i = 0; i < n; i++)
		if (in[i]) {
			long long k = pss_of(pid[i]);

			if (k >= 0) {
				sum += k;
				(*nproc)++;
			}
		}
	free(pid);
	free(par);
	free(in);
	return sum;
}

/* ------------------------------------------------------------------ */
/* Connections */

enum body { BODY_NONE, BODY_ML };

struct conn;
typedef void (*line_fn)(struct conn *c, char *line, size_t len);
typedef void (*done_fn)(struct conn *c);

struct conn {
	int fd;
	int idx;		/* client index (user = pattern % (idx+offset)) */
	int step;		/* 0, 1: logging in; then scenario-defined */
	const char *user;	/* fixed credentials, or NULL: -U/-W */
	const char *pass;
	bool connecting;
	bool open;
	bool want_out;
	bool paused;		/* EPOLLIN switched off (slow reader) */
	uint32_t events;	/* registered epoll events */
	line_fn on_line;	/* a reply line (single-line or first line) */
	done_fn on_body;	/* end of a multi-line body */
	done_fn on_close;	/* the peer closed or an error */

	char line[LINE_MAX_LEN];
	size_t llen;
	char out[OUT_MAX];
	size_t olen, ooff;

	/* Multi-line body parser. */
	enum body body;
	int bstate;
	long long bbytes, blines;
	long long octets;	/* octets announced by the +OK line, -1 */

	int64_t t0, t1, tsend;	/* session start, phase marks, last send */
	int64_t next_at;	/* timed action (0: none) */
	long long count;	/* scenario counter */
	long long tokens;	/* slow reader budget (bytes) */
};

static int ep = -1;
static struct sockaddr_storage peer;
static socklen_t peer_len;
static struct conn *conns;
static size_t nconns;
static long long connect_errors, proto_errors, closed_early;
static char last_error[256];
static unsigned char *rbuf;

static void
set_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
}

static void
resolve(void)
{
	struct addrinfo hints, *ai;
	char port[16];
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%d", O.port);
	rc = getaddrinfo(O.host, port, &hints, &ai);
	if (rc != 0)
		die("%s: %s", O.host, gai_strerror(rc));
	memcpy(&peer, ai->ai_addr, ai->ai_addrlen);
	peer_len = ai->ai_addrlen;
	freeaddrinfo(ai);
}

static void
ep_update(struct conn *c)
{
	uint32_t ev = 0;
	struct epoll_event e;

	if (!c->open)
		return;
	if (!c->paused)
		ev |= EPOLLIN;
	if (c->want_out || c->connecting)
		ev |= EPOLLOUT;
	if (ev == c->events)
		return;
	memset(&e, 0, sizeof(e));
	e.events = ev;
	e.data.ptr = c;
	if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e) < 0)
		die("epoll_ctl: %s", strerror(errno));
	c->events = ev;
}

static void
conn_close(struct conn *c)
{
	if (!c->open)
		return;
	close(c->fd);	/* also leaves the epoll set */
	c->fd = -1;
	c->open = false;
	c->connecting = false;
	c->want_out = false;
	c->paused = false;
	c->events = 0;
	c->llen = c->olen = c->ooff = 0;
	c->body = BODY_NONE;
}

/* Starts a non-blocking connect; false (and counted) on failure. */
static bool
conn_connect(struct conn *c)
{
	struct epoll_event e;
	int fd, one = 1;

	fd = socket(peer.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd < 0) {
		connect_errors++;
		set_error("socket: %s", strerror(errno));
		return false;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (O.rcvbuf > 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &O.rcvbuf,
		    sizeof(O.rcvbuf));
	if (connect(fd, (struct sockaddr *)&peer, peer_len) < 0 &&
	    errno != EINPROGRESS) {
		connect_errors++;
		set_error("connect: %s", strerror(errno));
		close(fd);
		return false;
	}
	c->fd = fd;
	c->open = true;
	c->connecting = true;
	c->want_out = false;
	c->paused = false;
	c->llen = c->olen = c->ooff = 0;
	c->body = BODY_NONE;
	c->t0 = mono_ns();
	memset(&e, 0, sizeof(e));
	e.events = EPOLLIN | EPOLLOUT;
	e.data.ptr = c;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) < 0)
		die("epoll_ctl add: %s", strerror(errno));
	c->events = e.events;
	return true;
}

static void
fail(struct conn *c, const char *why)
{
	if (last_error[0] == '\0')
		set_error("%s", why);
	proto_errors++;
	conn_close(c);
	if (c->on_close)
		c->on_close(c);
}

static void
flush_out(struct conn *c)
{
	while (c->ooff < c->olen) {
		ssize_t n = send(c->fd, c->out + c->ooff, c->olen - c->ooff,
		    MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno == EINTR)
				continue;
			set_error("send: %s", strerror(errno));
			fail(c, "send");
			return;
		}
		c->ooff += (size_t)n;
	}
	if (c->ooff == c->olen)
		c->ooff = c->olen = 0;
	c->want_out = c->olen > 0;
	ep_update(c);
}

static void
sendf(struct conn *c, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(c->out + c->olen, sizeof(c->out) - c->olen, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(c->out) - c->olen)
		die("command too long");
	c->olen += (size_t)n;
	c->tsend = mono_ns();
	flush_out(c);
}

static void
user_of(const struct conn *c, char *buf, size_t cap)
{
	snprintf(buf, cap, O.user_pat, c->idx + O.offset);
}

static void
pass_of(const struct conn *c, char *buf, size_t cap)
{
	snprintf(buf, cap, O.pass_pat, c->idx + O.offset);
}

static void
send_user(struct conn *c)
{
	char u[128];

	if (c->user == NULL)
		user_of(c, u, sizeof(u));
	sendf(c, "USER %s\r\n", c->user != NULL ? c->user : u);
}

static void
send_pass(struct conn *c)
{
	char p[160];

	if (c->pass == NULL)
		pass_of(c, p, sizeof(p));
	sendf(c, "PASS %s\r\n", c->pass != NULL ? c->pass : p);
}

/*
 * The login every scenario starts with: the greeting's +OK sends USER,
 * USER's sends PASS.  Returns true when the reply was one of those two;
 * the PASS reply (step 2 on) is the scenario's own.
 */
static bool
login_step(struct conn *c)
{
	if (c->step == 0)
		send_user(c);
	else if (c->step == 1)
		send_pass(c);
	else
		return false;
	c->step++;
	return true;
}

/* Starts parsing a multi-line body after a +OK first line. */
static void
body_start(struct conn *c, const char *okline)
{
	const char *p = okline + 3;

	c->body = BODY_ML;
	c->bstate = 0;		/* at start of line */
	c->bbytes = c->blines = 0;
	c->octets = -1;
	while (*p == ' ')
		p++;
	if (isdigit((unsigned char)*p)) {
		char *e;
		long long v = strtoll(p, &e, 10);

		while (*e == ' ')
			e++;
		if (strncmp(e, "octets", 6) == 0)
			c->octets = v;
	}
}

/*
 * Feeds body bytes: counts payload bytes (dot-unstuffed, CRLFs counted,
 * the terminating ".\r\n" not) and lines.  Returns the bytes consumed;
 * c->body becomes BODY_NONE at the terminator.
 *   states: 0 start of line, 1 inside a line, 2 "." at start,
 *   3 ".\r" at start
 */
static size_t
body_feed(struct conn *c, const unsigned char *p, size_t n)
{
	const unsigned char *s = p, *end = p + n, *q;

	while (p < end) {
		switch (c->bstate) {
		case 1:
			q = memchr(p, '\n', (size_t)(end - p));
			if (q == NULL) {
				c->bbytes += end - p;
				p = end;
			} else {
				c->bbytes += q + 1 - p;
				c->blines++;
				p = q + 1;
				c->bstate = 0;
			}
			break;
		case 0:
			if (*p == '.') {
				c->bstate = 2;
				p++;
			} else {
				c->bstate = 1;
			}
			break;
		case 2:
			if (*p == '\r') {
				c->bstate = 3;
				p++;
			} else {
				c->bstate = 1;	/* stuffed dot dropped */
			}
			break;
		default:
			if (*p == '\n') {
				c->body = BODY_NONE;
				return (size_t)(p + 1 - s);
			}
			c->bbytes += 1;	/* the '\r' */
			c->bstate = 1;
			break;
		}
	}
	return n;
}

static void
handle_input(struct conn *c, const unsigned char *p, size_t n)
{
	while (n > 0 && c->open) {
		if (c->body == BODY_ML) {
			size_t k = body_feed(c, p, n);

			p += k;
			n -= k;
			if (c->body == BODY_NONE && c->on_body)
				c->on_body(c);
			continue;
		}
		const unsigned char *nl = memchr(p, '\n', n);
		size_t take = nl ? (size_t)(nl + 1 - p) : n;

		if (c->llen + take >= sizeof(c->line)) {
			fail(c, "reply line too long");
			return;
		}
		memcpy(c->line + c->llen, p, take);
		c->llen += take;
		p += take;
		n -= take;
		if (nl != NULL) {
			size_t len = c->llen;

			while (len > 0 && (c->line[len - 1] == '\n' ||
			    c->line[len - 1] == '\r'))
				len--;
			c->line[len] = '\0';
			c->llen = 0;
			if (c->on_line)
				c->on_line(c, c->line, len);
		}
	}
}

/* Plain byte counting (plainserver): no protocol at all. */
static bool plain_mode;
static void plain_data(struct conn *c, size_t n);
static void plain_eof(struct conn *c);

static void
on_event(struct conn *c, uint32_t ev)
{
	if (c->connecting && (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
		int err = 0;
		socklen_t len = sizeof(err);

		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err != 0) {
			connect_errors++;
			set_error("connect: %s", strerror(err));
			conn_close(c);
			if (c->on_close)
				c->on_close(c);
			return;
		}
		c->connecting = false;
		c->want_out = c->olen > 0;
		ep_update(c);
	}
	if ((ev & EPOLLOUT) && c->open && c->olen > 0)
		flush_out(c);
	if ((ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) && c->open && !c->paused) {
		size_t cap = RECV_CHUNK;
		ssize_t r;

		if (c->tokens > 0 && c->tokens < (long long)cap)
			cap = (size_t)c->tokens;
		r = recv(c->fd, rbuf, cap, 0);
		if (r > 0) {
			if (c->tokens > 0) {
				c->tokens -= r;
				if (c->tokens <= 0) {
					c->tokens = 0;
					c->paused = true;
					ep_update(c);
				}
			}
			if (plain_mode)
				plain_data(c, (size_t)r);
			else
				handle_input(c, rbuf, (size_t)r);
		} else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
			if (plain_mode) {
				plain_eof(c);
				return;
			}
			if (r < 0)
				set_error("recv: %s", strerror(errno));
			else if (last_error[0] == '\0')
				set_error("server closed the connection");
			closed_early++;
			conn_close(c);
			if (c->on_close)
				c->on_close(c);
		}
	}
}

static volatile sig_atomic_t interrupted;

static void
on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

/*
 * One pass of the event loop: waits at most wait_ms, handles what is
 * ready.  now_ns is the moment epoll_wait returned.
 */
static void
loop_once(int wait_ms)
{
	struct epoll_event ev[1024];
	int n = epoll_wait(ep, ev, 1024, wait_ms);

	now_ns = mono_ns();
	if (n < 0) {
		if (errno == EINTR)
			return;
		die("epoll_wait: %s", strerror(errno));
	}
	for (int i = 0; i < n; i++)
		on_event(ev[i].data.ptr, ev[i].events);
}

static struct conn *
conns_new(size_t n)
{
	conns = calloc(n ? n : 1, sizeof(*conns));
	if (conns == NULL)
		die("out of memory for %zu connections", n);
	nconns = n;
	for (size_t i = 0; i < n; i++) {
		conns[i].fd = -1;
		conns[i].idx = (int)i;
	}
	return conns;
}

static int64_t t_begin;

static bool
over_limit(void)
{
	if (interrupted)
		return true;
	return (double)(mono_ns() - t_begin) / NS > O.limit;
}

static double
ms_since(int64_t t)
{
	return (double)(now_ns - t) / MS;
}

static void
json_begin(void)
{
	printf("{\"scenario\": \"%s\", \"clients\": %d", O.scenario,
	    O.clients);
}

static void
json_errors(void)
{
	char esc[sizeof(last_error) * 2];
	size_t j = 0;

	for (size_t i = 0; last_error[i] != '\0' && j < sizeof(esc) - 2; i++) {
		char ch = last_error[i];

		if (ch == '"' || ch == '\\')
			esc[j++] = '\\';
		esc[j++] = (ch >= 0x20 && ch < 0x7f) ? ch : '?';
	}
	esc[j] = '\0';
	printf(", \"connect_errors\": %lld, \"protocol_errors\": %lld, "
	    "\"closed_early\": %lld, \"last_error\": \"%s\", "
	    "\"timed_out\": %s", connect_errors, proto_errors, closed_early,
	    esc, over_limit() ? "true" : "false");
}

static bool
is_ok(const char *line)
{
	return strncmp(line, "+OK", 3) == 0;
}

/* ------------------------------------------------------------------ */
/* sessions: connect, greeting, USER, PASS, STAT, QUIT, again */

static struct samples s_lat;
static long long s_done;
static bool s_stopping;
static int64_t s_measure_from, s_last_done;

static void sess_start(struct conn *c);

static void
sess_line(struct conn *c, char *line, size_t len)
{
	(void)len;
	if (!is_ok(line)) {
		set_error("step %d: %.200s", c->step, line);
		fail(c, "-ERR");
		return;
	}
	if (login_step(c))
		return;
	switch (c->step++) {
	case 2:
		sendf(c, "STAT\r\n");
		break;
	case 3:
		sendf(c, "QUIT\r\n");
		break;
	default:
		if (c->t0 >= s_measure_from) {
			sample_add(&s_lat, ms_since(c->t0));
			s_done++;
			s_last_done = now_ns;
		}
		conn_close(c);
		sess_start(c);
		break;
	}
}

static void
sess_closed(struct conn *c)
{
	sess_start(c);
}

static void
sess_start(struct conn *c)
{
	if (s_stopping)
		return;
	c->step = 0;
	c->on_line = sess_line;
	c->on_close = sess_closed;
	if (!conn_connect(c)) {
		/* A failed connect: retry on the next pass, not in a spin. */
		usleep(1000);
		if (connect_errors > 1000)
			s_stopping = true;
		else
			sess_start(c);
	}
}

static int
run_sessions(void)
{
	int64_t start, stop;
	size_t i;
	bool busy = true;

	conns_new((size_t)O.clients);
	start = mono_ns();
	s_measure_from = start + (int64_t)(O.warmup * NS);
	stop = s_measure_from + (int64_t)(O.duration * NS);
	for (i = 0; i < nconns; i++)
		sess_start(&conns[i]);
	while (!over_limit()) {
		loop_once(10);
		if (now_ns >= stop)
			s_stopping = true;
		if (s_stopping) {
			busy = false;
			for (i = 0; i < nconns; i++)
				busy |= conns[i].open;
			if (!busy)
				break;
		}
	}
	{
		double el = (double)((s_last_done > stop ? s_last_done : stop) -
		    s_measure_from) / NS;

		json_begin();
		printf(", \"duration_s\": %.3f, \"sessions\": %lld, "
		    "\"sessions_per_s\": %.1f, ", el, s_done,
		    el > 0 ? (double)s_done / el : 0);
		json_samples("session", &s_lat);
		json_errors();
		printf("}\n");
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* storm: one probe logs in; then N clients log in at once while the
 * probe sends NOOPs, one at a time, -i ms apart */

static struct samples st_noop, st_quiet, st_login;
static bool st_active;		/* a storm is on */
static long long st_ok, st_fail;
static int st_pending;
static bool st_probe_ready, st_probe_busy;
static struct conn *probe;

static void
probe_line(struct conn *c, char *line, size_t len)
{
	(void)len;
	if (!is_ok(line)) {
		set_error("probe step %d: %.200s", c->step, line);
		fail(c, "-ERR");
		return;
	}
	if (login_step(c))
		return;
	switch (c->step) {
	case 2:
		c->step = 3;
		st_probe_ready = true;
		break;
	case 3:		/* a NOOP reply: sent during a storm, or between */
		sample_add(c->count ? &st_noop : &st_quiet, ms_since(c->tsend));
		st_probe_busy = false;
		c->next_at = c->tsend + (int64_t)(O.interval_ms * MS);
		break;
	default:	/* QUIT */
		conn_close(c);
		break;
	}
}

static void
storm_line(struct conn *c, char *line, size_t len)
{
	(void)len;
	if (!is_ok(line)) {
		set_error("storm step %d: %.200s", c->step, line);
		st_fail++;
		st_pending--;
		conn_close(c);
		proto_errors++;
		return;
	}
	if (login_step(c))
		return;
	switch (c->step++) {
	case 2:
		sample_add(&st_login, ms_since(c->t0));
		sendf(c, "QUIT\r\n");
		break;
	default:
		st_ok++;
		st_pending--;
		conn_close(c);
		break;
	}
}

static void
storm_closed(struct conn *c)
{
	(void)c;
	st_fail++;
	st_pending--;
}

static void
probe_closed(struct conn *c)
{
	(void)c;
	st_probe_ready = false;
}

/* Sends the probe's next NOOP when it is due. */
static void
probe_tick(void)
{
	if (probe == NULL || !probe->open || probe->step != 3 ||
	    st_probe_busy)
		return;
	if (mono_ns() >= probe->next_at) {
		st_probe_busy = true;
		probe->count = st_active;
		sendf(probe, "NOOP\r\n");
	}
}

static int
run_storm(void)
{
	int64_t t_storm = 0;
	int nstorms = 0;
	size_t i;

	conns_new((size_t)O.clients + 1);
	/* The probe is the last index: its user follows the storm's. */
	probe = &conns[O.clients];
	probe->on_line = probe_line;
	probe->on_close = probe_closed;
	if (!conn_connect(probe))
		die("probe cannot connect: %s", last_error);
	while (!st_probe_ready && probe->open && !over_limit())
		loop_once(10);
	if (!st_probe_ready)
		die("probe could not log in: %s", last_error);
	/* A short quiet baseline, then the storm. */
	{
		int64_t until = mono_ns() + 200 * MS;

		while (mono_ns() < until && !over_limit()) {
			probe_tick();
			loop_once(1);
		}
	}
	st_noop.n = 0;
	for (int k = 0; k < O.storms && !over_limit(); k++) {
		int64_t t0 = mono_ns(), gap;

		st_active = true;
		for (i = 0; i < (size_t)O.clients; i++) {
			conns[i].on_line = storm_line;
			conns[i].on_close = storm_closed;
			conns[i].step = 0;
			if (conn_connect(&conns[i]))
				st_pending++;
			else
				st_fail++;
		}
		while (!over_limit()) {
			probe_tick();
			loop_once(1);
			if (st_pending <= 0)
				break;
		}
		st_active = false;
		t_storm += mono_ns() - t0;
		nstorms++;
		/* Enough storm time sampled: -d seconds. */
		if ((double)t_storm / NS >= O.duration)
			break;
		/* A quiet 50 ms between storms (the probe goes on). */
		gap = mono_ns() + 50 * MS;
		while (k + 1 < O.storms && mono_ns() < gap && !over_limit()) {
			probe_tick();
			loop_once(1);
		}
	}
	/* Wait for a NOOP in flight, then QUIT. */
	while (st_probe_busy && probe->open && !over_limit())
		loop_once(10);
	if (probe->open) {
		probe->step = 4;
		sendf(probe, "QUIT\r\n");
		for (int k = 0; k < 100 && probe->open; k++)
			loop_once(10);
	}
	json_begin();
	printf(", \"storms\": %d, \"storm_s\": %.3f, \"logins_ok\": %lld, "
	    "\"logins_failed\": %lld, \"logins_per_s\": %.1f, ", nstorms,
	    nstorms ? (double)t_storm / NS / nstorms : 0.0, st_ok, st_fail,
	    t_storm > 0 ? (double)st_ok / ((double)t_storm / NS) : 0.0);
	json_samples("noop", &st_noop);
	printf(", ");
	json_samples("noop_between_storms", &st_quiet);
	printf(", ");
	json_samples("login", &st_login);
	json_errors();
	printf("}\n");
	return 0;
}

/* ------------------------------------------------------------------ */
/* retr: each client logs in, then RETRs -m MSG again and again */

static long long r_bytes, r_done, r_bad;
static int64_t r_stop;
static bool r_stopping;
static int r_active;

static void
retr_check(struct conn *c)
{
	long long want = O.expect >= 0 ? O.expect : c->octets;

	if (want >= 0 && c->bbytes != want) {
		r_bad++;
		set_error("RETR %d: %lld bytes, expected %lld", O.msg,
		    c->bbytes, want);
	}
}

static void
retr_body(struct conn *c)
{
	retr_check(c);
	r_bytes += c->bbytes;
	r_done++;
	if (r_stopping || now_ns >= r_stop) {
		c->step = 10;
		sendf(c, "QUIT\r\n");
	} else {
		sendf(c, "RETR %d\r\n", O.msg);
	}
}

static void
retr_line(struct conn *c, char *line, size_t len)
{
	(void)len;
	if (!is_ok(line)) {
		set_error("retr step %d: %.200s", c->step, line);
		fail(c, "-ERR");
		return;
	}
	if (login_step(c))
		return;
	switch (c->step) {
	case 2:
		c->step = 3;
		r_active++;
		break;
	case 3:		/* +OK of RETR: the body follows */
		body_start(c, line);
		break;
	default:	/* QUIT */
		conn_close(c);
		break;
	}
}

static void
retr_closed(struct conn *c)
{
	(void)c;
}

static int
run_retr(void)
{
	int64_t start;
	size_t i;
	bool busy;

	conns_new((size_t)O.clients);
	for (i = 0; i < nconns; i++) {
		conns[i].on_line = retr_line;
		conns[i].on_body = retr_body;
		conns[i].on_close = retr_closed;
		if (!conn_connect(&conns[i]))
			die("cannot connect: %s", last_error);
	}
	while (r_active + proto_errors + closed_early < (long long)nconns &&
	    !over_limit())
		loop_once(10);
	start = mono_ns();
	r_stop = start + (int64_t)(O.duration * NS);
	for (i = 0; i < nconns; i++)
		if (conns[i].open && conns[i].step == 3)
			sendf(&conns[i], "RETR %d\r\n", O.msg);
	for (;;) {
		loop_once(10);
		if (over_limit()) {
			r_stopping = true;
			break;
		}
		busy = false;
		for (i = 0; i < nconns; i++)
			busy |= conns[i].open;
		if (!busy)
			break;
	}
	{
		double el = (double)(now_ns - start) / NS;

		json_begin();
		printf(", \"msg\": %d, \"duration_s\": %.3f, \"retrievals\": "
		    "%lld, \"bytes\": %lld, \"bad_counts\": %lld, "
		    "\"MB_per_s\": %.1f", O.msg, el, r_done, r_bytes, r_bad,
		    el > 0 ? (double)r_bytes / el / 1e6 : 0);
		json_errors();
		printf("}\n");
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* plain: read to EOF from plainserver, again and again */

static void
plain_data(struct conn *c, size_t n)
{
	c->bbytes += (long long)n;
}

static void
plain_eof(struct conn *c)
{
	if (O.expect >= 0 && c->bbytes != O.expect) {
		r_bad++;
		set_error("plain: %lld bytes, expected %lld", c->bbytes,
		    O.expect);
	}
	r_bytes += c->bbytes;
	r_done++;
	conn_close(c);
	c->bbytes = 0;
	if (mono_ns() < r_stop && !over_limit() && !conn_connect(c))
		die("cannot connect: %s", last_error);
}

static int
run_plain(void)
{
	int64_t start;
	size_t i;
	bool busy;

	plain_mode = true;
	conns_new((size_t)O.clients);
	start = mono_ns();
	r_stop = start + (int64_t)(O.duration * NS);
	for (i = 0; i < nconns; i++)
		if (!conn_connect(&conns[i]))
			die("cannot connect: %s", last_error);
	for (;;) {
		loop_once(10);
		if (over_limit())
			break;
		busy = false;
		for (i = 0; i < nconns; i++)
			busy |= conns[i].open;
		if (!busy)
			break;
	}
	{
		double el = (double)(now_ns - start) / NS;

		json_begin();
		printf(", \"duration_s\": %.3f, \"retrievals\": %lld, "
		    "\"bytes\": %lld, \"bad_counts\": %lld, \"MB_per_s\": %.1f",
		    el, r_done, r_bytes, r_bad,
		    el > 0 ? (double)r_bytes / el / 1e6 : 0);
		json_errors();
		printf("}\n");
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* hold: N authenticated idle sessions (logins -r at a time), PSS of
 * the server's process tree, then one NOOP on each (-w in flight) */

static long long h_ok, h_fail, h_inflight, h_noop_ok, h_noop_fail;
static struct samples h_noop, h_login;

static void
hold_line(struct conn *c, char *line, size_t len)
{
	(void)len;
	if (!is_ok(line)) {
		set_error("hold step %d: %.200s", c->step, line);
		proto_errors++;
		if (c->step <= 2) {
			h_fail++;
			h_inflight--;
		} else if (c->step == 4) {
			h_noop_fail++;
			h_inflight--;
		}
		c->step = 9;
		conn_close(c);
		return;
	}
	if (login_step(c))
		return;
	switch (c->step) {
	case 2:		/* logged in: idle from now on */
		c->step = 3;
		sample_add(&h_login, ms_since(c->t0));
		h_ok++;
		h_inflight--;
		break;
	case 4:		/* the NOOP reply */
		c->step = 5;
		sample_add(&h_noop, ms_since(c->tsend));
		h_noop_ok++;
		h_inflight--;
		break;
	default:
		break;
	}
}

static void
hold_closed(struct conn *c)
{
	if (c->step <= 2) {
		h_fail++;
		h_inflight--;
	} else if (c->step == 4) {
		h_noop_fail++;
		h_inflight--;
	}
	c->step = 9;
}

static int
run_hold(void)
{
	long long pss0 = -1, pss1 = -1;
	int np0 = 0, np1 = 0;
	int64_t t_login, t_logged, t_noop, t_noop_end;
	size_t next = 0, i;

	conns_new((size_t)O.clients);
	if (O.mem_pid > 0)
		pss0 = pss_tree(O.mem_pid, &np0);
	t_login = mono_ns();
	while (!over_limit()) {
		while (next < nconns && h_inflight < O.ramp) {
			struct conn *c = &conns[next++];

			c->on_line = hold_line;
			c->on_close = hold_closed;
			c->step = 0;
			if (conn_connect(c))
				h_inflight++;
			else {
				h_fail++;
				c->step = 9;
			}
		}
		if (next == nconns && h_inflight == 0)
			break;
		loop_once(10);
	}
	t_logged = mono_ns();
	note("hold: %lld sessions logged in (%lld failed) in %.1f s", h_ok,
	    h_fail, (double)(t_logged - t_login) / NS);
	/* Let the server settle (Dovecot hands sessions between processes). */
	{
		int64_t until = mono_ns() + (int64_t)(O.settle * NS);

		while (mono_ns() < until && !over_limit())
			loop_once(10);
	}
	if (O.mem_pid > 0)
		pss1 = pss_tree(O.mem_pid, &np1);
	/* One NOOP per session, at most -w in flight. */
	t_noop = mono_ns();
	next = 0;
	h_inflight = 0;
	while (!over_limit()) {
		while (next < nconns && h_inflight < O.window) {
			struct conn *c = &conns[next++];

			if (!c->open || c->step != 3) {
				if (c->step != 9)
					h_noop_fail++;
				continue;
			}
			c->step = 4;
			h_inflight++;
			sendf(c, "NOOP\r\n");
		}
		if (next == nconns && h_inflight <= 0)
			break;
		loop_once(10);
	}
	t_noop_end = mono_ns();
	json_begin();
	printf(", \"sessions_ok\": %lld, \"sessions_failed\": %lld, "
	    "\"login_s\": %.3f, \"noop_ok\": %lld, \"noop_failed\": %lld, "
	    "\"noop_s\": %.3f, \"window\": %d, ", h_ok, h_fail,
	    (double)(t_logged - t_login) / NS, h_noop_ok,
	    (long long)O.clients - h_noop_ok, (double)(t_noop_end - t_noop) / NS,
	    O.window);
	json_samples("noop", &h_noop);
	printf(", ");
	json_samples("login", &h_login);
	printf(", \"pss_before_kib\": %lld, \"pss_after_kib\": %lld, "
	    "\"procs_before\": %d, \"procs_after\": %d, "
	    "\"pss_per_session_kib\": %.2f", pss0, pss1, np0, np1,
	    (O.mem_pid > 0 && h_ok > 0) ? (double)(pss1 - pss0) /
	    (double)h_ok : 0.0);
	json_errors();
	printf("}\n");
	for (i = 0; i < nconns; i++)
		conn_close(&conns[i]);
	return 0;
}

/* ------------------------------------------------------------------ */
/* fair: one big reader RETRs -m MSG (slow: -R KiB/s; fast: flat out)
 * while -c clients each send a NOOP every -i ms */

static struct samples f_noop;
static long long f_bytes, f_retrs, f_big_bad;
static int f_ready;
static struct conn *big;
static int64_t f_stop;
static bool f_stopping;

static void
fair_noop_line(struct conn *c, char *line, size_t len)
{
	(void)len;
	if (!is_ok(line)) {
		set_error("noop client step %d: %.200s", c->step, line);
		fail(c, "-ERR");
		return;
	}
	if (login_step(c))
		return;
	switch (c->step) {
	case 2:
		c->step = 3;
		f_ready++;
		break;
	case 4:		/* NOOP reply */
		sample_add(&f_noop, ms_since(c->tsend));
		c->step = 3;
		c->next_at = c->tsend + (int64_t)(O.interval_ms * MS);
		break;
	default:
		conn_close(c);
		break;
	}
}

static void
big_body(struct conn *c)
{
	long long want = O.expect >= 0 ? O.expect : c->octets;

	if (want >= 0 && c->bbytes != want) {
		f_big_bad++;
		set_error("big RETR: %lld bytes, expected %lld", c->bbytes,
		    want);
	}
	f_bytes += c->bbytes;
	c->bbytes = 0;
	f_retrs++;
	if (!f_stopping)
		sendf(c, "RETR %d\r\n", O.msg);
}

static void
big_line(struct conn *c, char *line, size_t len)
{
	(void)len;
	if (!is_ok(line)) {
		set_error("big reader step %d: %.200s", c->step, line);
		fail(c, "-ERR");
		return;
	}
	if (login_step(c))
		return;
	switch (c->step) {
	case 2:
		c->step = 3;
		f_ready++;
		break;
	default:	/* +OK of RETR */
		body_start(c, line);
		break;
	}
}

static void
fair_closed(struct conn *c)
{
	(void)c;
}

static int
run_fair(void)
{
	long long pss0 = -1, pss_end = -1;
	int np;
	int64_t start, tick_ns = 10 * MS, next_tick;
	size_t i;

	if (O.big_user == NULL || O.big_pass == NULL)
		die("fair needs -b BIGUSER and -P PASSWORD");
	conns_new((size_t)O.clients + 1);
	big = &conns[O.clients];
	big->user = O.big_user;
	big->pass = O.big_pass;
	big->on_line = big_line;
	big->on_body = big_body;
	big->on_close = fair_closed;
	for (i = 0; i < (size_t)O.clients; i++) {
		conns[i].on_line = fair_noop_line;
		conns[i].on_close = fair_closed;
	}
	for (i = 0; i < nconns; i++)
		if (!conn_connect(&conns[i]))
			die("cannot connect: %s", last_error);
	while (f_ready < (int)nconns && !over_limit() &&
	    proto_errors + closed_early == 0)
		loop_once(10);
	if (f_ready < (int)nconns)
		die("fair: only %d of %zu clients logged in: %s", f_ready,
		    nconns, last_error);
	if (O.mem_pid > 0)
		pss0 = pss_tree(O.mem_pid, &np);
	start = mono_ns();
	f_stop = start + (int64_t)(O.duration * NS);
	next_tick = start;
	if (O.slow) {
		big->tokens = 1;	/* paced from the first tick on */
		big->paused = true;
	}
	sendf(big, "RETR %d\r\n", O.msg);
	for (i = 0; i < (size_t)O.clients; i++)
		conns[i].next_at = start + (int64_t)i * MS / 2;
	while (!over_limit()) {
		int64_t t = mono_ns();

		if (t >= f_stop)
			break;
		if (O.slow && t >= next_tick) {
			big->tokens = (long long)(O.rate_kbs * 1024.0 *
			    (double)tick_ns / NS);
			if (big->tokens < 1)
				big->tokens = 1;
			big->paused = false;
			ep_update(big);
			next_tick += tick_ns;
		}
		for (i = 0; i < (size_t)O.clients; i++) {
			struct conn *c = &conns[i];

			if (c->open && c->step == 3 && t >= c->next_at) {
				c->step = 4;
				sendf(c, "NOOP\r\n");
			}
		}
		loop_once(1);
	}
	f_stopping = true;
	/* Measured at the end only: a scan of /proc would stall the probes. */
	if (O.mem_pid > 0)
		pss_end = pss_tree(O.mem_pid, &np);
	{
		double el = (double)(mono_ns() - start) / NS;
		long long got = f_bytes + (big->body == BODY_ML ?
		    big->bbytes : 0);

		json_begin();
		printf(", \"mode\": \"%s\", \"duration_s\": %.3f, "
		    "\"big_bytes\": %lld, \"big_retrievals\": %lld, "
		    "\"big_bad_counts\": %lld, \"big_MB_per_s\": %.1f, ",
		    O.slow ? "slow" : "fast", el, got, f_retrs, f_big_bad,
		    el > 0 ? (double)got / el / 1e6 : 0);
		json_samples("noop", &f_noop);
		printf(", \"pss_before_kib\": %lld, \"pss_end_kib\": %lld",
		    pss0, pss_end);
		json_errors();
		printf("}\n");
	}
	for (i = 0; i < nconns; i++)
		conn_close(&conns[i]);
	return 0;
}

/* ------------------------------------------------------------------ */
/* list: login, STAT, LIST, UIDL, QUIT on one (large) maildrop */

static struct samples l_total, l_login, l_stat, l_list, l_uidl;
static long long l_stat_n, l_list_n, l_uidl_n, l_bad;
static bool l_done;

static void
list_body(struct conn *c)
{
	if (c->step == 4) {
		l_list_n = c->blines;
		sample_add(&l_list, ms_since(c->t1));
		c->t1 = now_ns;
		c->step = 5;
		sendf(c, "UIDL\r\n");
	} else {
		l_uidl_n = c->blines;
		sample_add(&l_uidl, ms_since(c->t1));
		c->step = 6;
		sendf(c, "QUIT\r\n");
	}
}

static void
list_line(struct conn *c, char *line, size_t len)
{
	(void)len;
	if (!is_ok(line)) {
		set_error("list step %d: %.200s", c->step, line);
		fail(c, "-ERR");
		l_done = true;
		return;
	}
	if (login_step(c))
		return;
	switch (c->step) {
	case 2:
		sample_add(&l_login, ms_since(c->t0));
		c->t1 = now_ns;
		c->step = 3;
		sendf(c, "STAT\r\n");
		break;
	case 3:
		l_stat_n = strtoll(line + 3, NULL, 10);
		sample_add(&l_stat, ms_since(c->t1));
		c->t1 = now_ns;
		c->step = 4;
		sendf(c, "LIST\r\n");
		break;
	case 4:
	case 5:
		body_start(c, line);
		break;
	default:
		sample_add(&l_total, ms_since(c->t0));
		if (l_stat_n != l_list_n || l_stat_n != l_uidl_n ||
		    (O.expect_msgs >= 0 && l_stat_n != O.expect_msgs)) {
			l_bad++;
			set_error("STAT %lld, LIST %lld, UIDL %lld lines, "
			    "expected %lld", l_stat_n, l_list_n, l_uidl_n,
			    O.expect_msgs);
		}
		conn_close(c);
		l_done = true;
		break;
	}
}

static void
list_closed(struct conn *c)
{
	(void)c;
	l_done = true;
}

static int
run_list(void)
{
	struct conn *c;

	conns_new(1);
	c = &conns[0];
	for (int r = 0; r < O.reps && !over_limit(); r++) {
		l_done = false;
		c->step = 0;
		c->on_line = list_line;
		c->on_body = list_body;
		c->on_close = list_closed;
		if (!conn_connect(c))
			die("cannot connect: %s", last_error);
		while (!l_done && !over_limit())
			loop_once(100);
		if (c->open)
			conn_close(c);
	}
	json_begin();
	printf(", \"reps\": %d, \"messages\": %lld, \"list_lines\": %lld, "
	    "\"uidl_lines\": %lld, \"bad\": %lld, ", O.reps, l_stat_n,
	    l_list_n, l_uidl_n, l_bad);
	{
		/* Per-repetition totals in order: [0] is the first login. */
		printf("\"totals_ms\": [");
		for (size_t i = 0; i < l_total.n; i++)
			printf("%s%.3f", i ? ", " : "", l_total.v[i]);
		printf("], ");
	}
	json_samples("total", &l_total);
	printf(", ");
	json_samples("login", &l_login);
	printf(", ");
	json_samples("stat", &l_stat);
	printf(", ");
	json_samples("list", &l_list);
	printf(", ");
	json_samples("uidl", &l_uidl);
	json_errors();
	printf("}\n");
	return 0;
}

/* ------------------------------------------------------------------ */

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: loadgen SCENARIO [options]\n"
	    "scenarios: sessions storm retr plain hold fair list\n"
	    "  -H HOST     server address (default 127.0.0.1)\n"
	    "  -p PORT     server port (default 110)\n"
	    "  -U PATTERN  user name, %%d = client index + offset (u%%d)\n"
	    "  -W PATTERN  password, %%d as for -U (pw%%d)\n"
	    "  -o N        first client index (0)\n"
	    "  -c N        clients (1)\n"
	    "  -d SEC      measured duration (3)\n"
	    "  -w SEC      sessions: warm-up not counted (0.5)\n"
	    "  -t SEC      hard limit of the whole run (300)\n"
	    "  -m N        message number for RETR (1)\n"
	    "  -e BYTES    expected RETR/plain payload bytes (default: the\n"
	    "              octets of the +OK line)\n"
	    "  -r N        hold: logins in flight at once (256)\n"
	    "  -n N        hold: NOOPs in flight at once (16);\n"
	    "              list: repetitions (1)\n"
	    "  -i MS       storm/fair: pause between one client's NOOPs (1)\n"
	    "  -k N        storm: up to N storms, 50 ms apart, until -d\n"
	    "              seconds of storm were sampled (1)\n"
	    "  -M PID      measure PSS of PID's process tree (hold, fair)\n"
	    "  -s SEC      hold: pause before measuring PSS (1)\n"
	    "  -b USER     fair: the big reader's user\n"
	    "  -P PASS     fair: the big reader's password\n"
	    "  -S          fair: slow big reader (default fast)\n"
	    "  -R KIB/S    fair: slow reader's rate (1024)\n"
	    "  -E N        list: expected message count\n"
	    "  -B BYTES    SO_RCVBUF of every client socket\n"
	    "Prints one JSON object on standard output.\n");
}

static double
num(const char *s, const char *what)
{
	char *e;
	double v = strtod(s, &e);

	if (*s == '\0' || *e != '\0' || v < 0)
		die("%s: not a number: '%s'", what, s);
	return v;
}

static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < (rlim_t)O.clients + 64)
		die("descriptor limit %llu is too low for %d clients",
		    (unsigned long long)rl.rlim_cur, O.clients);
}

int
main(int argc, char **argv)
{
	int ch, rc;
	struct sigaction sa;

	if (argc < 2 || argv[1][0] == '-') {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	O.scenario = argv[1];
	optind = 2;
	while ((ch = getopt(argc, argv, "H:p:U:W:o:c:d:w:t:m:e:r:n:i:k:M:s:b:P:SR:E:B:h"))
	    != -1) {
		switch (ch) {
		case 'H': O.host = optarg; break;
		case 'p': O.port = (int)num(optarg, "-p"); break;
		case 'U': O.user_pat = optarg; break;
		case 'W': O.pass_pat = optarg; break;
		case 'o': O.offset = (int)num(optarg, "-o"); break;
		case 'c': O.clients = (int)num(optarg, "-c"); break;
		case 'd': O.duration = num(optarg, "-d"); break;
		case 'w': O.warmup = num(optarg, "-w"); break;
		case 't': O.limit = num(optarg, "-t"); break;
		case 'm': O.msg = (int)num(optarg, "-m"); break;
		case 'e': O.expect = (long long)num(optarg, "-e"); break;
		case 'r': O.ramp = (int)num(optarg, "-r"); break;
		case 'n': O.window = O.reps = (int)num(optarg, "-n"); break;
		case 'i': O.interval_ms = num(optarg, "-i"); break;
		case 'k': O.storms = (int)num(optarg, "-k"); break;
		case 'M': O.mem_pid = (int)num(optarg, "-M"); break;
		case 's': O.settle = num(optarg, "-s"); break;
		case 'b': O.big_user = optarg; break;
		case 'P': O.big_pass = optarg; break;
		case 'S': O.slow = true; break;
		case 'R': O.rate_kbs = num(optarg, "-R"); break;
		case 'E': O.expect_msgs = (long long)num(optarg, "-E"); break;
		case 'B': O.rcvbuf = (int)num(optarg, "-B"); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc)
		die("unexpected argument '%s'", argv[optind]);
	if (O.clients < 1 && strcmp(O.scenario, "fair") != 0)
		die("-c must be at least 1");
	if (O.ramp < 1 || O.window < 1 || O.storms < 1)
		die("-r, -n and -k must be at least 1");
	raise_nofile();
	resolve();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = on_sigint;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	rbuf = malloc(RECV_CHUNK);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (rbuf == NULL || ep < 0)
		die("setup: %s", strerror(errno));
	t_begin = mono_ns();
	now_ns = t_begin;
	if (strcmp(O.scenario, "sessions") == 0)
		rc = run_sessions();
	else if (strcmp(O.scenario, "storm") == 0)
		rc = run_storm();
	else if (strcmp(O.scenario, "retr") == 0)
		rc = run_retr();
	else if (strcmp(O.scenario, "plain") == 0)
		rc = run_plain();
	else if (strcmp(O.scenario, "hold") == 0)
		rc = run_hold();
	else if (strcmp(O.scenario, "fair") == 0)
		rc = run_fair();
	else if (strcmp(O.scenario, "list") == 0)
		rc = run_list();
	else
		die("unknown scenario '%s' (try -h)", O.scenario);
	fflush(stdout);
	return rc;
}
