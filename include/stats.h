/*
 * Server-wide counters of the POP3 service, updated by the connection
 * code and only read by MGMT.  One process, one thread: plain integers.
 */
#ifndef POP3D_STATS_H
#define POP3D_STATS_H

#include <stdint.h>

struct stats {
	uint64_t historic;	/* POP3 connections accepted (refused too) */
	uint64_t live;		/* POP3 connections open now */
	uint64_t bytes_in;	/* octets read from POP3 client sockets */
	uint64_t bytes_out;	/* octets written to POP3 client sockets */
	uint64_t started_ms;	/* when stats_init() ran (monotonic ms) */
};

/* Zeroes the counters and notes the start time. */
void stats_init(void);

void stats_accepted(void);	/* historic++ */
void stats_opened(void);	/* live++ */
void stats_closed(void);	/* live-- */
void stats_add_in(uint64_t n);
void stats_add_out(uint64_t n);

/* The counters; valid until the next update. */
const struct stats *stats_get(void);
/* Whole seconds since stats_init(). */
uint64_t stats_uptime(void);

#endif
