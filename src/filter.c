/*
 * Message filters in the reactor.  Three pipes per filter: the message
 * file is copied to the child's stdin a bounded slice at a time as the
 * pipe drains; its stdout fills a bounded buffer that the owner empties
 * (reading stops while it is full); its stderr is logged line by line.
 * A child is killed (its whole process group) when its owner gives up,
 * and reaped from filter_reap(), so there are no zombies and no waits.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buffer.h"
#include "config.h"
#include "filter.h"
#include "log.h"

#define FILTER_BUF	(32 * 1024)
#define ERR_LINE_MAX	200
/*
 * Standard error lines logged per filter run.  The rest are read (a
 * chatty filter that works must not block on a full pipe) and counted:
 * a filter, or a message that makes it warn at every line, cannot fill
 * the log's disk.
 */
#define ERR_LINES_LOGGED	100

struct filter {
	struct selector *sel;
	pid_t pid;
	int in_fd;		/* the message file */
	int to_child;		/* child's stdin, -1 once closed */
	int from_child;		/* child's stdout, -1 at EOF */
	int err_fd;		/* child's stderr, -1 at EOF */
	struct buffer in;	/* file bytes not yet in the pipe */
	struct buffer out;	/* output not yet taken */
	bool file_eof;
	bool exited;
	bool failed;
	bool produced;
	unsigned long log_id;
	uint64_t limit_ms;
	struct sel_timer timer;
	void (*notify)(void *owner);
	void *owner;
	size_t errlen;
	unsigned err_logged;	/* stderr lines logged, up to the cap */
	uint64_t err_unlogged;	/* and those past it, counted */
	char errline[ERR_LINE_MAX + 1];
	uint8_t in_mem[FILTER_BUF];
	uint8_t out_mem[FILTER_BUF];
};

/* Children not reaped yet; f is NULL once its filter was destroyed. */
struct child {
	pid_t pid;
	struct filter *f;
};

static struct child *children;
static size_t nchildren, children_cap;

static int
set_flags(int fd, bool nonblock)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || (nonblock && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0))
		return -1;
	return fcntl(fd, F_SETFD, FD_CLOEXEC);
}

static void
tell(struct filter *f)
{
	f->notify(f->owner);
}

/* Still holding something back: no exit yet, or stdout still open. */
static bool
alive(const struct filter *f)
{
	return !f->exited || f->from_child >= 0;
}

static void
fail(struct filter *f, const char *why)
{
	if (f->failed)
		return;
	f->failed = true;
	log_warn("pop3[%lu] filter failed: %s", f->log_id, why);
	if (alive(f))
		kill(-f->pid, SIGKILL);
	tell(f);
}

static void
on_timer(struct selector *s, void *data)
{
	(void)s;
	if (alive(data))
		fail(data, "no output in time");
}

/*
 * Progress restarts the silence clock.  It runs only while the output
 * buffer has room: once it is full the client is the slow one (or the
 * POP3 service is paused), and a filter that then stops reading its
 * input, blocked on its own full stdout, is not silent.
 */
static void
touch(struct filter *f)
{
	if (f->failed || !alive(f))
		return;
	if (buffer_free(&f->out) == 0)
		selector_timer_cancel(f->sel, &f->timer);
	else if (selector_timer_arm(f->sel, &f->timer, f->limit_ms, on_timer,
	    f) != SELECTOR_OK)
		fail(f, "no room in the reactor");
}

static void
close_fd(struct filter *f, int *fd)
{
	if (*fd < 0)
		return;
	selector_unregister(f->sel, *fd);
	*fd = -1;
}

static void on_pipe_close(struct selector *s, int fd, void *data);

static void
on_stdin_writable(struct selector *s, int fd, void *data)
{
	struct filter *f = data;
	size_t n;
	uint8_t *p;
	ssize_t w;

	(void)s;
	if (buffer_empty(&f->in) && !f->file_eof) {
		ssize_t r;

		p = buffer_write_ptr(&f->in, &n);
		r = read(f->in_fd, p, n);
		if (r < 0) {
			fail(f, "cannot read the message");
			return;
		}
		if (r == 0)
			f->file_eof = true;
		buffer_write_adv(&f->in, (size_t)r);
	}
	if (buffer_empty(&f->in)) {
		/* All of the message is in: the child sees its EOF. */
		close_fd(f, &f->to_child);
		return;
	}
	p = buffer_read_ptr(&f->in, &n);
	w = write(fd, p, n);
	if (w > 0) {
		buffer_read_adv(&f->in, (size_t)w);
		touch(f);
	} else if (w < 0 && errno != EAGAIN && errno != EINTR) {
		/* It stopped reading (EPIPE): its exit status will tell. */
		close_fd(f, &f->to_child);
	}
}

static void
on_stdout_readable(struct selector *s, int fd, void *data)
{
	struct filter *f = data;
	size_t n;
	uint8_t *p = buffer_write_ptr(&f->out, &n);
	ssize_t r;

	if (n == 0) {
		selector_set_interest(s, fd, SEL_NONE);
		return;
	}
	r = read(fd, p, n);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0) {
		close_fd(f, &f->from_child);
	} else {
		buffer_write_adv(&f->out, (size_t)r);
		f->produced = true;
		touch(f);
		/* Full: reading resumes when filter_take() makes room. */
		if (buffer_free(&f->out) == 0)
			selector_set_interest(s, fd, SEL_NONE);
	}
	tell(f);
}

/* Logs the pending stderr line, if any, while under the cap. */
static void
log_err_line(struct filter *f)
{
	if (f->errlen == 0)
		return;
	f->errline[f->errlen] = '\0';
	if (f->err_logged < ERR_LINES_LOGGED) {
		f->err_logged++;
		log_warn("pop3[%lu] filter: %s", f->log_id, f->errline);
	} else {
		f->err_unlogged++;
	}
	f->errlen = 0;
}

/* At the end of stderr: the pending line, and how many went unlogged. */
static void
log_err_end(struct filter *f)
{
	log_err_line(f);
	if (f->err_unlogged > 0)
		log_warn("pop3[%lu] filter: %llu more lines on standard error "
		    "not logged", f->log_id,
		    (unsigned long long)f->err_unlogged);
	f->err_unlogged = 0;
}

enum drain { DRAIN_MORE, DRAIN_WAIT, DRAIN_END };

/*
 * Reads what the child wrote to stderr and logs it line by line
 * (truncated, made printable).
 */
static enum drain
drain_stderr(struct filter *f)
{
	char buf[4096];
	ssize_t r = read(f->err_fd, buf, sizeof(buf));

	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return errno == EINTR ? DRAIN_MORE : DRAIN_WAIT;
	if (r <= 0) {
		log_err_end(f);
		return DRAIN_END;
	}
	for (ssize_t i = 0; i < r; i++) {
		unsigned char c = (unsigned char)buf[i];

		if (c == '\n')
			log_err_line(f);
		else if (f->errlen < ERR_LINE_MAX)
			f->errline[f->errlen++] =
			    (char)(c >= 0x20 && c < 0x7f ? c : '?');
	}
	return DRAIN_MORE;
}

static void
on_stderr_readable(struct selector *s, int fd, void *data)
{
	struct filter *f = data;

	(void)s;
	(void)fd;
	if (drain_stderr(f) == DRAIN_END)
		close_fd(f, &f->err_fd);
}

static void
on_pipe_close(struct selector *s, int fd, void *data)
{
	(void)s;
	(void)data;
	close(fd);
}

static const struct sel_handler stdin_handler = {
	.on_write = on_stdin_writable, .on_close = on_pipe_close,
};
static const struct sel_handler stdout_handler = {
	.on_read = on_stdout_readable, .on_close = on_pipe_close,
};
static const struct sel_handler stderr_handler = {
	.on_read = on_stderr_readable, .on_close = on_pipe_close,
};

/* Makes room for one more child record. */
static bool
reserve_child(void)
{
	if (nchildren == children_cap) {
		size_t cap = children_cap ? children_cap * 2 : 16;
		struct child *c = realloc(children, cap * sizeof(*c));

		if (c == NULL)
			return false;
		children = c;
		children_cap = cap;
	}
	return true;
}

/* In the child: wire the pipes to 0, 1, 2 and become /bin/sh -c. */
static void
run_child(const struct filter_job *job, int in, int out, int err)
{
	char num[24];

	setpgid(0, 0);
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
		_exit(127);
	/* The server ignores SIGPIPE; a filter should not inherit that. */
	signal(SIGPIPE, SIG_DFL);
	snprintf(num, sizeof(num), "%lu", job->msgnum);
	setenv("POP3_USERNAME", job->user, 1);
	setenv("POP3_SERVER", job->server, 1);
	setenv("POP3_MSGNUM", num, 1);
	setenv("POP3_UIDL", job->uidl, 1);
	execl("/bin/sh", "sh", "-c", job->command, (char *)NULL);
	_exit(127);
}

static void
close_pair(int p[2])
{
	for (int i = 0; i < 2; i++)
		if (p[i] >= 0)
			close(p[i]);
}

/* Hands *fd to the reactor, or closes it (-1) when there is no room. */
static void
watch(struct filter *f, int *fd, const struct sel_handler *h,
    unsigned interest)
{
	if (selector_register(f->sel, *fd, h, interest, f) != SELECTOR_OK) {
		close(*fd);
		*fd = -1;
	}
}

struct filter *
filter_start(struct selector *sel, const struct filter_job *job,
    void (*notify)(void *owner), void *owner)
{
	int pin[2] = { -1, -1 }, pout[2] = { -1, -1 }, perr[2] = { -1, -1 };
	struct filter *f = calloc(1, sizeof(*f));
	pid_t pid;

	if (f == NULL || pipe(pin) < 0 || pipe(pout) < 0 || pipe(perr) < 0)
		goto not_started;
	/* Every end close-on-exec; only the parent's ends non-blocking. */
	if (set_flags(pin[0], false) < 0 || set_flags(pin[1], true) < 0 ||
	    set_flags(pout[0], true) < 0 || set_flags(pout[1], false) < 0 ||
	    set_flags(perr[0], true) < 0 || set_flags(perr[1], false) < 0)
		goto not_started;
	/* Room first, so that recording the child cannot fail after fork. */
	if (!reserve_child())
		goto not_started;
	pid = fork();
	if (pid < 0)
		goto not_started;
	if (pid == 0)
		run_child(job, pin[0], pout[1], perr[1]);
	setpgid(pid, pid);
	children[nchildren].pid = pid;
	children[nchildren++].f = f;
	close(pin[0]);
	close(pout[1]);
	close(perr[1]);
	f->sel = sel;
	f->pid = pid;
	f->in_fd = job->input_fd;
	f->to_child = pin[1];
	f->from_child = pout[0];
	f->err_fd = perr[0];
	f->log_id = job->log_id;
	f->limit_ms = job->limit_ms;
	f->notify = notify;
	f->owner = owner;
	buffer_init(&f->in, f->in_mem, sizeof(f->in_mem));
	buffer_init(&f->out, f->out_mem, sizeof(f->out_mem));
	watch(f, &f->to_child, &stdin_handler, SEL_WRITE);
	watch(f, &f->from_child, &stdout_handler, SEL_READ);
	watch(f, &f->err_fd, &stderr_handler, SEL_READ);
	if (f->to_child < 0 || f->from_child < 0)
		fail(f, "no room in the reactor");
	touch(f);
	return f;
not_started:
	log_warn("pop3[%lu] filter cannot start: %s", job->log_id,
	    strerror(errno));
	close_pair(pin);
	close_pair(pout);
	close_pair(perr);
	close(job->input_fd);
	free(f);
	return NULL;
}

size_t
filter_take(struct filter *f, uint8_t *dst, size_t cap)
{
	size_t n;
	uint8_t *p = buffer_read_ptr(&f->out, &n);

	if (n > cap)
		n = cap;
	memcpy(dst, p, n);
	buffer_read_adv(&f->out, n);
	if (n > 0) {
		touch(f);
		if (f->from_child >= 0)
			selector_set_interest(f->sel, f->from_child, SEL_READ);
	}
	return n;
}

enum filter_state
filter_state(const struct filter *f)
{
	if (f->failed)
		return FILTER_FAILED;
	if (f->exited && f->from_child < 0 && buffer_empty(&f->out))
		return FILTER_DONE;
	return FILTER_RUNNING;
}

bool
filter_has_output(const struct filter *f)
{
	return f->produced;
}

void
filter_destroy(struct filter *f)
{
	if (f == NULL)
		return;
	if (alive(f))
		kill(-f->pid, SIGKILL);
	for (size_t i = 0; i < nchildren; i++)
		if (children[i].f == f)
			children[i].f = NULL;
	selector_timer_cancel(f->sel, &f->timer);
	/* What it already said still goes to the log (bounded). */
	for (int i = 0; f->err_fd >= 0 && i < 256 &&
	    drain_stderr(f) == DRAIN_MORE; i++)
		continue;
	log_err_end(f);
	close_fd(f, &f->to_child);
	close_fd(f, &f->from_child);
	close_fd(f, &f->err_fd);
	close(f->in_fd);
	free(f);
}

static void
child_exited(struct filter *f, int status)
{
	f->exited = true;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		tell(f);
		return;
	}
	if (WIFEXITED(status)) {
		char why[32];

		snprintf(why, sizeof(why), "exit status %d",
		    WEXITSTATUS(status));
		fail(f, why);
	} else {
		fail(f, "killed by a signal");
	}
}

void
filter_reap(void)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (size_t i = 0; i < nchildren; i++) {
			if (children[i].pid != pid)
				continue;
			if (children[i].f != NULL)
				child_exited(children[i].f, status);
			children[i] = children[--nchildren];
			break;
		}
	}
}

bool
filter_command_ok(const char *command)
{
	size_t n = strlen(command);

	/* Blank, the shell runs nothing: every RETR an empty message. */
	if (n > FILTER_MAX || strspn(command, " \t") == n)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)command[i];

		/* 8-bit too: 0x9b and U+009B are a terminal's CSI. */
		if ((c < 0x20 && c != '\t') || c >= 0x7f)
			return false;
	}
	return true;
}
