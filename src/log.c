/*
 * The access and error log.  Lines are built whole in a stack buffer and
 * written with one write() so they never interleave.  The log is a file
 * or standard error (which may be a pipe or the journal's socket).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "regfile.h"

static void log_everywhere(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int log_fd = STDERR_FILENO;
static char *log_path;

static const char *const level_names[] = {
	[LOG_ERR] = "error", [LOG_WARN] = "warning",
	[LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

/*
 * A FIFO at the path (at start or after a rotation) must not block us.
 * /dev/null is the one device that makes a fine log: it never blocks.
 */
static int
open_file(const char *path)
{
	if (strcmp(path, "/dev/null") == 0)
		return open(path, O_WRONLY | O_CLOEXEC);
	return regfile_open(path, O_WRONLY | O_APPEND | O_CREAT, 0600);
}

int
log_open(const char *path)
{
	int fd;

	if (path == NULL) {
		log_close();
		return 0;
	}
	fd = open_file(path);
	if (fd < 0)
		return -1;
	log_close();
	log_path = strdup(path);
	if (log_path == NULL) {
		close(fd);
		errno = ENOMEM;
		return -1;
	}
	log_fd = fd;
	return 0;
}

int
log_reopen(void)
{
	int fd, saved;

	if (log_path == NULL)
		return 0;
	fd = open_file(log_path);
	if (fd < 0) {
		/*
		 * The file we keep may be deleted, or its folder gone: then
		 * this line reaches nobody there.  Standard error (the
		 * journal under systemd) gets it too.
		 */
		saved = errno;
		log_everywhere(LOG_ERR, "cannot reopen the log: %s",
		    regfile_strerror(saved));
		errno = saved;
		return -1;
	}
	close(log_fd);
	log_fd = fd;
	return 0;
}

void
log_close(void)
{
	if (log_path != NULL) {
		close(log_fd);
		free(log_path);
		log_path = NULL;
	}
	log_fd = STDERR_FILENO;
}

/*
 * A pipe or socket as standard error (a journal, `| logger`) whose
 * reader falls behind must not stop the server: a line is written only
 * when it fits now, else counted, and reported once the reader takes
 * lines again.  The descriptor's flags are left alone: they are shared
 * with whoever else writes there (the shell, the next program), and
 * with the server's own start-up messages, which must not be lost.  A
 * full disk costs lines the same way, counted with its cause.
 */
static unsigned long dropped;
static const char *drop_cause;

static void
drop(const char *cause)
{
	dropped++;
	drop_cause = cause;
}

static bool
stderr_may_stall(void)
{
	static int may = -1;
	struct stat sb;

	if (may == -1)
		may = fstat(STDERR_FILENO, &sb) == 0 &&
		    (S_ISFIFO(sb.st_mode) || S_ISSOCK(sb.st_mode));
	return may == 1;
}

/*
 * Room for a line now: a pipe with a free slot takes up to a page
 * whole, a stream socket reports room only with a good part of its
 * buffer free, and our lines are under 1 KiB.
 */
static bool
room_now(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLOUT) != 0;
}

/*
 * Takes back the first `part` octets of a line a full file system cut
 * short: left there, they would glue the next line to their own.  The
 * offset goes back too: standard error opened without O_APPEND (2>file)
 * would write the next line past the end, over a hole of NULs.
 */
static void
undo_partial(int fd, size_t part)
{
	struct stat sb;

	if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) &&
	    sb.st_size >= (off_t)part &&
	    ftruncate(fd, sb.st_size - (off_t)part) == 0)
		(void)lseek(fd, sb.st_size - (off_t)part, SEEK_SET);
}

/* Best effort: a full disk or a stalled reader must not stop us. */
static bool
put(int fd, const char *line, size_t n)
{
	ssize_t w;

	if (fd == STDERR_FILENO && stderr_may_stall() && !room_now(fd)) {
		drop("the log reader was too slow");
		return false;
	}
	w = write(fd, line, n);
	if (w == (ssize_t)n)
		return true;
	if (w > 0)
		undo_partial(fd, (size_t)w);
	drop(w < 0 ? strerror(errno) : strerror(ENOSPC));
	return false;
}

/* The line's timestamp and level into line[cap]; its length. */
static size_t
stamp(char *line, size_t cap, enum log_level level)
{
	struct timeval tv;
	struct tm tm;
	size_t n;
	int k;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = strftime(line, cap, "%Y-%m-%dT%H:%M:%S", &tm);
	k = snprintf(line + n, cap - n, ".%03dZ %s: ",
	    (int)(tv.tv_usec / 1000), level_names[level]);
	return k > 0 ? n + (size_t)k : n;
}

/* Tells how many lines a stalled reader cost, once it reads again. */
static void
report_dropped(void)
{
	char line[128];
	size_t n = stamp(line, sizeof(line), LOG_WARN);
	int k = snprintf(line + n, sizeof(line) - n,
	    "%lu log lines dropped: %s\n", dropped, drop_cause);
	unsigned long was = dropped;

	if (k > 0 && (size_t)k < sizeof(line) - n)
		/* Still refused: the note itself is no lost line. */
		dropped = put(log_fd, line, n + (size_t)k) ? 0 : was;
}

/* Formats one line; to standard error too when `everywhere` is set. */
static void
vlog(enum log_level level, bool everywhere, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void
vlog(enum log_level level, bool everywhere, const char *fmt, va_list ap)
{
	char line[1024];
	size_t n = stamp(line, sizeof(line), level);
	int k;

	if (dropped > 0)
		report_dropped();
	k = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	/* A truncated line still ends with its newline. */
	if (k < 0)
		k = 0;
	n += (size_t)k;
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	(void)put(log_fd, line, n);
	if (everywhere && log_fd != STDERR_FILENO)
		(void)put(STDERR_FILENO, line, n);
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(level, false, fmt, ap);
	va_end(ap);
}

static void
log_everywhere(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(level, true, fmt, ap);
	va_end(ap);
}

char *
log_sanitize(char *dst, size_t cap, const char *src)
{
	size_t i = 0;

	if (cap == 0)
		return dst;
	for (; src[i] != '\0' && i + 1 < cap; i++) {
		unsigned char c = (unsigned char)src[i];

		dst[i] = (char)((c > 0x20 && c < 0x7f) ? c : '?');
	}
	/* Cut: never a whole name (a user name has no '?'). */
	if (src[i] != '\0' && i > 0)
		dst[i - 1] = '?';
	dst[i] = '\0';
	return dst;
}
