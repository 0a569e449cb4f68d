/*
 * Message filters: runs `/bin/sh -c COMMAND` with a message file on its
 * standard input and collects its standard output, through
 * non-blocking pipes registered in the reactor, with bounded buffers
 * and back-pressure both ways.  Its standard error goes to the log.
 * The owner (a POP3 session) takes the output with filter_take() and is
 * notified whenever there is more, or the filter ended.  Children are
 * reaped through filter_reap() (the SIGCHLD self-pipe), never waited
 * for; a destroyed filter's child is killed.
 */
#ifndef POP3D_FILTER_H
#define POP3D_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "selector.h"

struct filter;

enum filter_state {
	FILTER_RUNNING,		/* output may still come */
	FILTER_DONE,		/* exited 0 and all output was taken */
	FILTER_FAILED,		/* could not run, exited non-zero, killed,
				   or silent past its time limit */
};

/* What the filter's environment says about the message. */
struct filter_job {
	const char *command;	/* for /bin/sh -c */
	int input_fd;		/* the message file; the filter owns it now */
	const char *user, *server, *uidl;
	unsigned long msgnum;
	uint64_t limit_ms;	/* silence allowed before it is killed */
	unsigned long log_id;	/* session id for stderr lines in the log */
};

/*
 * Starts a filter.  notify(owner) is called (from a reactor callback)
 * when output can be taken or the state changed.  Returns NULL when it
 * cannot start (the input fd is closed then too).
 */
struct filter *filter_start(struct selector *sel, const struct filter_job *job,
    void (*notify)(void *owner), void *owner);

/*
 * Moves up to cap bytes of output to dst; returns how many.  Taking
 * output makes room, so reading from the filter resumes.
 */
size_t filter_take(struct filter *f, uint8_t *dst, size_t cap);

/* Whether output may still come, and how the filter ended. */
enum filter_state filter_state(const struct filter *f);
/* True once the filter wrote at least one byte of output. */
bool filter_has_output(const struct filter *f);

/* Kills the child if it still runs, closes every pipe, frees; NULL ok. */
void filter_destroy(struct filter *f);

/* Reaps every child that exited (call when SIGCHLD was seen). */
void filter_reap(void);

/*
 * True for a command FILTER can show on one line and the log can carry:
 * at most FILTER_MAX octets, not blank, printable ASCII and tabs only.
 * FILTER_RULE says so to a user: "the command " FILTER_RULE.
 */
bool filter_command_ok(const char *command);

#define FILTER_TEXT_(n) #n
#define FILTER_TEXT(n) FILTER_TEXT_(n)
#define FILTER_RULE "must be one line of at most " FILTER_TEXT(FILTER_MAX) \
	" octets, not blank, of printable ASCII characters and tabs"

#endif
