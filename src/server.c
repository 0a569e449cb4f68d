/*
 * Listeners, admission and the reactor loop.  Binds every listening
 * socket before any client is served, accepts in bounded batches,
 * refuses cleanly over the connection limit and at the descriptor
 * ceiling (a spare descriptor is kept to answer even at EMFILE, so the
 * listener never spins), and runs deferred conn work between passes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "conn.h"
#include "filter.h"
#include "log.h"
#include "mgmt.h"
#include "pop3.h"
#include "selector.h"
#include "server.h"
#include "stats.h"
#include "verify.h"
#include "wipe.h"

/* Accepts per listener per pass: new clients cannot starve old ones. */
#define ACCEPTS_PER_PASS 64
#define MAX_LISTENERS 8
/* The most descriptors we plan for, whatever the hard limit says. */
#define NOFILE_CAP (1u << 20)

#define TOO_MANY "-ERR [SYS/TEMP] too many connections\r\n"
#define BUSY "-ERR [SYS/TEMP] server busy, try again later\r\n"
#define MGMT_FULL MGMT_FULL_GREETING "\r\n"
#define MGMT_BUSY MGMT_BUSY_GREETING "\r\n"
#define REFUSED_INPUT_MAX 4096	/* a client's first lines, not a flood */

struct listener {
	int fd;
	bool pop3;		/* paused with the POP3 service */
};

static struct {
	struct selector *sel;
	struct settings settings;
	struct pop3_env pop3;
	struct mgmt_env mgmt;
	struct listener listeners[MAX_LISTENERS];
	size_t nlisteners;
	int spare_fd;		/* given up to accept-and-refuse at EMFILE */
	size_t nofile;		/* the descriptor limit, raised */
	bool paused;		/* MGMT TIMEOUT in progress */
	uint64_t pause_until;
	struct sel_timer pause_timer;
} srv = { .spare_fd = -1 };

static int set_nonblock_cloexec(int fd);

/*
 * A client socket: non-blocking, close-on-exec, and TCP_NODELAY: replies
 * are already batched in the output buffer, and Nagle's wait for an ACK
 * the client delays would add 40 ms to every second reply of a pipelined
 * exchange (USER then PASS, say).
 */
static int
prepare_client(int fd)
{
	int one = 1;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return set_nonblock_cloexec(fd);
}

static int
set_nonblock_cloexec(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -1;
	return fcntl(fd, F_SETFD, FD_CLOEXEC);
}

/* Raises the soft descriptor limit to the hard one; returns it. */
static size_t
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return FD_SETSIZE;
	if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max > NOFILE_CAP)
		rl.rlim_max = NOFILE_CAP;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > NOFILE_CAP)
		return NOFILE_CAP;
	return (size_t)rl.rlim_cur;
}

static void
peer_text(const struct sockaddr_storage *ss, char *out, size_t cap)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)ss;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		port = ntohs(in->sin_port);
		snprintf(out, cap, "%s:%u", host, port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)ss;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		port = ntohs(in6->sin6_port);
		snprintf(out, cap, "[%s]:%u", host, port);
	} else {
		snprintf(out, cap, "unknown");
	}
}

/*
 * Reads what a refused client already sent (one bounded read): closing
 * a socket with unread input sends a reset, which may destroy the
 * refusal line before the client reads it (RFC 1122 4.2.2.13).
 */
static void
discard_input(int fd, bool pop3)
{
	char junk[REFUSED_INPUT_MAX];
	ssize_t n = recv(fd, junk, sizeof(junk), MSG_DONTWAIT);

	if (n > 0 && pop3)
		stats_add_in((uint64_t)n);
	/* A pipelined USER/PASS may be among them. */
	if (n > 0)
		wipe(junk, (size_t)n);
}

/*
 * One best-effort line, then close: never blocks, never waits.  The
 * line counts in BYTES SENT when it goes to a POP3 client.
 */
static void
refuse(int fd, const char *line, bool pop3, const char *peer,
    const char *why)
{
	const char *service = pop3 ? "pop3" : "mgmt";
	ssize_t n = send(fd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT);

	if (n < 0) {
		log_warn("%s %s refused (%s); could not tell it: %s", service,
		    peer, why, strerror(errno));
	} else {
		if (pop3)
			stats_add_out((uint64_t)n);
		log_warn("%s %s refused: %s", service, peer, why);
	}
	discard_input(fd, pop3);
	close(fd);
}

/*
 * At EMFILE: free the spare, take the client, refuse it, re-take it.
 * True when a client was refused (more may wait in the backlog).
 */
static bool
refuse_at_limit(int lfd, bool pop3)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char peer[64];
	int fd;

	if (srv.spare_fd >= 0) {
		close(srv.spare_fd);
		srv.spare_fd = -1;
	}
	fd = accept(lfd, (struct sockaddr *)&ss, &len);
	if (fd >= 0) {
		if (pop3)
			stats_accepted();
		peer_text(&ss, peer, sizeof(peer));
		refuse(fd, pop3 ? BUSY : MGMT_BUSY, pop3, peer,
		    "out of descriptors");
	}
	srv.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	return fd >= 0 && srv.spare_fd >= 0;
}

static void
admit(int fd, const struct sockaddr_storage *ss)
{
	char peer[64];

	peer_text(ss, peer, sizeof(peer));
	if (prepare_client(fd) < 0) {
		refuse(fd, BUSY, true, peer, "cannot set up its socket");
		return;
	}
	if (stats_get()->live >= srv.settings.max_conn) {
		refuse(fd, TOO_MANY, true, peer, "too many connections");
		return;
	}
	if (pop3_session_new(&srv.pop3, fd, peer) < 0)
		refuse(fd, BUSY, true, peer, "no room in the reactor");
}

/* Accepts a batch; `pop3` picks the service (and the admission rules). */
static void
accept_batch(int lfd, bool pop3)
{
	for (int i = 0; i < ACCEPTS_PER_PASS; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd = accept(lfd, (struct sockaddr *)&ss, &len);
		char peer[64];

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			/* A backlog of thousands is refused in a few passes. */
			if (errno == EMFILE || errno == ENFILE) {
				if (refuse_at_limit(lfd, pop3))
					continue;
				return;
			}
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				log_warn("accept: %s", strerror(errno));
			return;
		}
		if (pop3) {
			stats_accepted();
			admit(fd, &ss);
			continue;
		}
		peer_text(&ss, peer, sizeof(peer));
		if (mgmt_full())
			refuse(fd, MGMT_FULL, false, peer,
			    "too many management sessions");
		else if (prepare_client(fd) < 0)
			refuse(fd, MGMT_BUSY, false, peer,
			    "cannot set up its socket");
		else if (mgmt_session_new(&srv.mgmt, fd, peer) < 0)
			refuse(fd, MGMT_BUSY, false, peer,
			    "no room in the reactor");
	}
}

static void
on_pop3_accept(struct selector *s, int lfd, void *data)
{
	(void)s;
	(void)data;
	accept_batch(lfd, true);
}

static void
on_mgmt_accept(struct selector *s, int lfd, void *data)
{
	(void)s;
	(void)data;
	accept_batch(lfd, false);
}

static void
on_listener_close(struct selector *s, int fd, void *data)
{
	(void)s;
	(void)data;
	close(fd);
}

static const struct sel_handler pop3_listener = {
	.on_read = on_pop3_accept,
	.on_close = on_listener_close,
};

static const struct sel_handler mgmt_listener = {
	.on_read = on_mgmt_accept,
	.on_close = on_listener_close,
};

/* The self-pipe only wakes select(); main's flags say what happened. */
static void
on_signal_pipe(struct selector *s, int fd, void *data)
{
	char buf[64];

	(void)s;
	(void)data;
	while (read(fd, buf, sizeof(buf)) > 0)
		continue;
}

static const struct sel_handler signal_handler = {
	.on_read = on_signal_pipe,
};

/* Creates, binds and registers one listener; -1 with errno on failure. */
static int
listen_on(const struct sockaddr *sa, socklen_t len,
    const struct sel_handler *h)
{
	int one = 1, fd, saved;

	if (srv.nlisteners == MAX_LISTENERS) {
		errno = EMFILE;
		return -1;
	}
	fd = socket(sa->sa_family, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		goto fail;
	if (sa->sa_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6,
	    IPV6_V6ONLY, &one, sizeof(one)) < 0)
		goto fail;
	if (bind(fd, sa, len) < 0 || listen(fd, SOMAXCONN) < 0 ||
	    set_nonblock_cloexec(fd) < 0)
		goto fail;
	if (selector_register(srv.sel, fd, h, SEL_READ, NULL) != SELECTOR_OK) {
		errno = EMFILE;
		goto fail;
	}
	srv.listeners[srv.nlisteners].fd = fd;
	srv.listeners[srv.nlisteners++].pop3 = h == &pop3_listener;
	return 0;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

/*
 * Binds `addr` (or each of `dflt` when addr is NULL) on `port`.  With
 * the defaults, an address family the host lacks is skipped.
 */
static bool
bind_service(const char *what, const char *addr, unsigned port,
    const char *const dflt[], const struct sel_handler *h)
{
	const char *one[] = { addr, NULL };
	const char *const *list = addr != NULL ? one : dflt;
	char portstr[8];
	size_t bound = 0;

	snprintf(portstr, sizeof(portstr), "%u", port);
	for (; *list != NULL; list++) {
		struct addrinfo hints = { 0 }, *res, *ai;
		int rc;

		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
		rc = getaddrinfo(*list, portstr, &hints, &res);
		if (rc != 0) {
			log_err("%s: cannot use address %s: %s", what, *list,
			    gai_strerror(rc));
			return false;
		}
		for (ai = res; ai != NULL; ai = ai->ai_next) {
			if (listen_on(ai->ai_addr, ai->ai_addrlen, h) == 0) {
				bound++;
				continue;
			}
			if (addr == NULL && (errno == EAFNOSUPPORT ||
			    errno == EADDRNOTAVAIL)) {
				log_warn("%s: %s unavailable, skipped", what,
				    *list);
				continue;
			}
			log_err("%s: cannot listen on %s port %u: %s", what,
			    *list, port, strerror(errno));
			freeaddrinfo(res);
			return false;
		}
		freeaddrinfo(res);
	}
	if (bound == 0) {
		log_err("%s: no address to listen on", what);
		return false;
	}
	log_info("%s: listening on port %u (%zu socket%s)", what, port, bound,
	    bound == 1 ? "" : "s");
	return true;
}

/* Applies the idle timeout to one open POP3 session. */
static void
set_idle(struct conn *c, void *arg)
{
	(void)arg;
	if (c->count_stats)
		conn_set_idle(c, (uint64_t)srv.settings.idle_s * 1000);
}

static void
apply_idle(void)
{
	conn_foreach(set_idle, NULL);
}

static void
freeze(struct conn *c, void *arg)
{
	if (c->count_stats)
		conn_freeze(c, *(bool *)arg);
}

/* Stops or restarts every POP3 listener and session (MGMT TIMEOUT). */
static void
set_paused(bool paused)
{
	srv.paused = paused;
	for (size_t i = 0; i < srv.nlisteners; i++)
		if (srv.listeners[i].pop3)
			selector_set_interest(srv.sel, srv.listeners[i].fd,
			    paused ? SEL_NONE : SEL_READ);
	conn_foreach(freeze, &paused);
	log_info("pop3 service %s", paused ? "paused" : "resumed");
}

static void
on_pause_end(struct selector *s, void *data)
{
	uint64_t now = selector_now_ms();

	(void)data;
	/* A pause that cannot wait on (no memory) ends now, not never. */
	if (now < srv.pause_until &&
	    selector_timer_arm(s, &srv.pause_timer, srv.pause_until - now,
	    on_pause_end, NULL) == SELECTOR_OK)
		return;
	set_paused(false);
	mgmt_pause_over();
}

/*
 * Pauses POP3 for `seconds`; overlapping pauses end at the latest end.
 * False, and no pause, when the timer that ends it cannot be armed.
 */
static bool
pause_pop3(unsigned seconds)
{
	uint64_t until = selector_now_ms() + (uint64_t)seconds * 1000;

	if (!selector_timer_armed(&srv.pause_timer) &&
	    selector_timer_arm(srv.sel, &srv.pause_timer,
	    (uint64_t)seconds * 1000, on_pause_end, NULL) != SELECTOR_OK)
		return false;
	if (until > srv.pause_until)
		srv.pause_until = until;
	if (!srv.paused)
		set_paused(true);
	return true;
}

/*
 * Settings: the users file's (saved by MGMT) win over the command line,
 * so a restart keeps every change an administrator made live.
 */
static bool
load_settings(const struct server_config *cfg, struct users *users,
    size_t nofile)
{
	struct settings *set = &srv.settings;
	const char *saved_filter = users_setting_text(users, SETTING_FILTER);
	const char *want_filter = NULL;
	size_t want, fit;

	fit = nofile > RESERVED_FDS ?
	    (nofile - RESERVED_FDS) * CONN_FD_SHARE_PCT / 100 : 1;
	if (fit == 0)
		fit = 1;
	set->conn_ceiling = fit > CONN_CEILING_MIN ? fit : CONN_CEILING_MIN;
	want = users_setting(users, SETTING_MAX_CONN, cfg->max_conn);
	if (want == 0 || want > fit) {
		if (want > fit)
			log_warn("max connections %zu: only %zu fit the "
			    "descriptor limit (%zu); using %zu", want, fit,
			    nofile, fit);
		want = fit;
	}
	set->max_conn = want;
	set->idle_s = (unsigned)users_setting(users, SETTING_IDLE,
	    cfg->idle_s != 0 ? cfg->idle_s : DEFAULT_IDLE_TIMEOUT);
	if (cfg->max_conn != 0 && set->max_conn != cfg->max_conn &&
	    users_setting(users, SETTING_MAX_CONN, 0) != 0)
		log_warn("max connections %zu saved by MGMT overrides -m",
		    set->max_conn);
	if (cfg->idle_s != 0 && set->idle_s != cfg->idle_s)
		log_warn("idle timeout %us saved by MGMT overrides -T",
		    set->idle_s);
	free(set->filter);
	set->filter = NULL;
	if (saved_filter != NULL) {
		/* "-": the administrator removed the filter over MGMT. */
		if (strcmp(saved_filter, "-") != 0)
			want_filter = saved_filter;
		if (cfg->filter != NULL && (want_filter == NULL ||
		    strcmp(cfg->filter, want_filter) != 0))
			log_warn("RETR filter saved by MGMT overrides -t");
	} else {
		want_filter = cfg->filter;
	}
	set->filter_limit_s = cfg->filter_limit_s;
	if (want_filter == NULL)
		return true;
	/* Never serve unfiltered mail because a copy failed. */
	if ((set->filter = strdup(want_filter)) == NULL) {
		log_err("cannot keep the RETR filter: %s", strerror(errno));
		return false;
	}
	log_info("RETR filter: %s", set->filter);
	return true;
}

bool
server_bind(const struct server_config *cfg, int signal_fd)
{
	static const char *const all[] = { "::", "0.0.0.0", NULL };
	static const char *const loopback[] = { "::1", "127.0.0.1", NULL };
	enum selector_status sst;

	srv.nofile = raise_nofile();
	stats_init();
	srv.sel = selector_new(srv.nofile);
	srv.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (srv.sel == NULL || srv.spare_fd < 0) {
		log_err("cannot set up the reactor: %s", strerror(errno));
		return false;
	}
	sst = selector_register(srv.sel, signal_fd, &signal_handler, SEL_READ,
	    NULL);
	if (sst != SELECTOR_OK) {
		log_err("cannot watch the signal pipe: %s",
		    selector_strerror(sst));
		return false;
	}
	return bind_service("pop3", cfg->pop3_addr, cfg->pop3_port, all,
	    &pop3_listener) && bind_service("mgmt", cfg->mgmt_addr,
	    cfg->mgmt_port, loopback, &mgmt_listener);
}

bool
server_start(const struct server_config *cfg, struct users *users)
{
	if (!load_settings(cfg, users, srv.nofile))
		return false;
	srv.pop3 = (struct pop3_env){ .sel = srv.sel, .users = users,
	    .mail_root = cfg->mail_root, .settings = &srv.settings };
	if (gethostname(srv.pop3.hostname, sizeof(srv.pop3.hostname) - 1) < 0)
		snprintf(srv.pop3.hostname, sizeof(srv.pop3.hostname),
		    "localhost");
	srv.mgmt = (struct mgmt_env){ .sel = srv.sel, .users = users,
	    .settings = &srv.settings, .apply_idle = apply_idle,
	    .pause = pause_pop3 };
	log_info("pop3server " POP3D_VERSION " ready: max %zu connections, "
	    "idle timeout %us, mail root %s", srv.settings.max_conn,
	    srv.settings.idle_s, cfg->mail_root);
	return true;
}

int
server_run(struct server_signals *sig)
{
	for (;;) {
		enum selector_status sst;
		bool more;

		if (sig->child) {
			sig->child = 0;
			filter_reap();
		}
		pop3_pass_begin();
		verify_run();
		more = conn_run_pending();
		/* Sessions run just now may have queued logins. */
		more = verify_waiting() || more;
		conn_reap();
		/*
		 * The reap may have left sessions deleting on their own;
		 * paused, they wait as every POP3 session does.
		 */
		if (!srv.paused)
			more = pop3_run_orphans() || more;
		if (sig->stop)
			return 0;
		if (sig->reopen_log) {
			sig->reopen_log = 0;
			/* A failure is logged: the old file is kept. */
			(void)log_reopen();
		}
		sst = selector_poll(srv.sel, more ? 0 : -1);
		if (sst != SELECTOR_OK) {
			log_err("select: %s", sst == SELECTOR_IO ?
			    strerror(errno) : selector_strerror(sst));
			return -1;
		}
	}
}

static void
close_session(struct conn *c, void *arg)
{
	(void)arg;
	conn_close_soon(c, END_SHUTDOWN);
}

void
server_shutdown(void)
{
	for (size_t i = 0; i < srv.nlisteners; i++)
		selector_unregister(srv.sel, srv.listeners[i].fd);
	srv.nlisteners = 0;
	if (srv.sel != NULL)
		selector_timer_cancel(srv.sel, &srv.pause_timer);
	conn_foreach(close_session, NULL);
	conn_reap();
	do
		pop3_pass_begin();
	while (pop3_run_orphans());
	/* The sessions are gone, so their checks are cancelled: free them. */
	while (verify_waiting())
		verify_run();
	selector_destroy(srv.sel);
	srv.sel = NULL;
	if (srv.spare_fd >= 0)
		close(srv.spare_fd);
	srv.spare_fd = -1;
	free(srv.settings.filter);
	srv.settings.filter = NULL;
}
