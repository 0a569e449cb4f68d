/*
 * The server: listening sockets, admission of new clients (connection
 * limit, descriptor ceiling), the reactor loop and orderly shutdown.
 * The only module that binds, listens and accepts.
 */
#ifndef POP3D_SERVER_H
#define POP3D_SERVER_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "users.h"

struct server_config {
	const char *pop3_addr;	/* NULL: every IPv4 and IPv6 address */
	unsigned pop3_port;
	const char *mgmt_addr;	/* NULL: loopback (127.0.0.1 and ::1) */
	unsigned mgmt_port;
	const char *mail_root;
	unsigned idle_s;	/* POP3 autologout, seconds; 0: the default */
	size_t max_conn;	/* 0: as many as descriptors allow */
	const char *filter;	/* -t: RETR filter command, or NULL */
	unsigned filter_limit_s;	/* a filter's silence limit */
};

/*
 * Raises the descriptor limit, creates the reactor and binds every
 * listener (the part that may need root).  `signal_fd` is the read end
 * of the signal self-pipe; it wakes select() so server_run() can look
 * at the flags.  False (the reason logged) on failure: a port in use
 * and any other failure both end the server with status 1.
 */
bool server_bind(const struct server_config *cfg,
    int signal_fd);

/*
 * Sets the live settings (the users file's saved ones win over the
 * command line) and the sessions' shared environment.  `users` stays
 * the caller's and must outlive the server.  False (logged) when out
 * of memory.
 */
bool server_start(const struct server_config *cfg, struct users *users);

/* Flags set by main's signal handlers, looked at after every pass. */
struct server_signals {
	volatile sig_atomic_t stop;		/* SIGINT, SIGTERM */
	volatile sig_atomic_t reopen_log;	/* SIGHUP */
	volatile sig_atomic_t child;		/* SIGCHLD: reap filters */
};

/*
 * Runs the reactor until sig->stop becomes non-zero.  Returns 0, or -1
 * when select() failed.
 */
int server_run(struct server_signals *sig);

/* Closes every session without UPDATE, every listener; frees all. */
void server_shutdown(void);

#endif
