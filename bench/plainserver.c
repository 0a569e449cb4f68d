/*
 * plainserver: the benchmark's physical limit.  It listens on a port and
 * sends one file to every client that connects, with no protocol at all,
 * then closes: with sendfile(2) (default), or with -r by read(2) into a
 * 256 KiB buffer and write(2) -- whichever is faster on a machine is the
 * most a server can do there.  One process, non-blocking, epoll.
 * `loadgen plain` measures it next to a POP3 RETR of the same file.
 *
 *   plainserver -p PORT -f FILE [-l ADDR] [-r]
 *
 * Prints "plainserver: ready on ADDR:PORT" on standard error once it
 * listens; SIGINT/SIGTERM stop it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* epoll, accept4, sendfile */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK	(4 * 1024 * 1024)
#define RWBUF	(256 * 1024)

struct client {
	int fd;
	off_t off;		/* file offset sent (sendfile) or read (rw) */
	char *buf;		/* rw: bytes read, not yet written */
	size_t blen, boff;
};

static int use_rw;

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void
drop(int ep, struct client *c)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->buf);
	free(c);
}

/* Sends until the socket is full; 1 when the file is done or on error. */
static int
pump_sendfile(struct client *c, int filefd, off_t size)
{
	for (;;) {
		ssize_t w = sendfile(c->fd, filefd, &c->off, CHUNK);

		if (w > 0 && c->off < size)
			continue;
		if (w < 0 && errno == EAGAIN)
			return 0;
		return 1;
	}
}

static int
pump_rw(struct client *c, int filefd)
{
	for (;;) {
		if (c->boff == c->blen) {
			ssize_t r = pread(filefd, c->buf, RWBUF, c->off);

			if (r <= 0)
				return 1;
			c->off += r;
			c->blen = (size_t)r;
			c->boff = 0;
		}
		ssize_t w = write(c->fd, c->buf + c->boff, c->blen - c->boff);

		if (w < 0)
			return errno == EAGAIN ? 0 : 1;
		c->boff += (size_t)w;
	}
}

int
main(int argc, char **argv)
{
	const char *addr = "127.0.0.1", *file = NULL;
	int port = 0, ch, lfd, ep, filefd, one = 1;
	struct sockaddr_in sin;
	struct epoll_event ev;
	struct stat st;
	struct sigaction sa;
	struct rlimit rl;

	while ((ch = getopt(argc, argv, "p:f:l:rh")) != -1) {
		switch (ch) {
		case 'r': use_rw = 1; break;
		case 'p': port = atoi(optarg); break;
		case 'f': file = optarg; break;
		case 'l': addr = optarg; break;
		default:
			fprintf(stderr, "usage: plainserver -p PORT -f FILE "
			    "[-l ADDR] [-r]\n");
			return ch == 'h' ? 0 : 2;
		}
	}
	if (port <= 0 || port > 65535 || file == NULL) {
		fprintf(stderr, "usage: plainserver -p PORT -f FILE [-l ADDR] "
		    "[-r]\n");
		return 2;
	}
	filefd = open(file, O_RDONLY | O_CLOEXEC);
	if (filefd < 0 || fstat(filefd, &st) < 0) {
		fprintf(stderr, "plainserver: %s: %s\n", file, strerror(errno));
		return 1;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)port);
	if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1) {
		fprintf(stderr, "plainserver: bad address %s\n", addr);
		return 2;
	}
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		return 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    listen(lfd, SOMAXCONN) < 0) {
		fprintf(stderr, "plainserver: %s:%d: %s\n", addr, port,
		    strerror(errno));
		return 1;
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
		return 1;
	fprintf(stderr, "plainserver: ready on %s:%d, %lld bytes by %s\n",
	    addr, port, (long long)st.st_size, use_rw ? "read/write" :
	    "sendfile");

	while (!stop) {
		struct epoll_event evs[256];
		int n = epoll_wait(ep, evs, 256, 500);

		for (int i = 0; i < n; i++) {
			struct client *c = evs[i].data.ptr;

			if (c == NULL) {	/* the listener */
				int fd;

				while ((fd = accept4(lfd, NULL, NULL,
				    SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
					c = calloc(1, sizeof(*c));
					if (c == NULL) {
						close(fd);
						continue;
					}
					c->fd = fd;
					if (use_rw && (c->buf = malloc(RWBUF)) ==
					    NULL) {
						close(fd);
						free(c);
						continue;
					}
					ev.events = EPOLLOUT;
					ev.data.ptr = c;
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
				}
				continue;
			}
			if (evs[i].events & (EPOLLERR | EPOLLHUP)) {
				drop(ep, c);
				continue;
			}
			if (use_rw ? pump_rw(c, filefd) :
			    pump_sendfile(c, filefd, st.st_size))
				drop(ep, c);	/* done, or an error */
		}
	}
	return 0;
}
