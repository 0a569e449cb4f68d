/*
 * The front every protocol session shares: its connection, the state
 * machine that drives it, and the line being handled.  POP3 and MGMT
 * sessions embed it first, so one pair of conn callbacks serves both:
 * a framed line goes to the current state's on_read, room in `out` to
 * its on_write.
 */
#ifndef POP3D_SESSION_H
#define POP3D_SESSION_H

#include <stdbool.h>

#include "conn.h"
#include "proto.h"
#include "stm.h"

struct session {
	struct conn conn;		/* first: conn callbacks cast back */
	struct stm stm;
	enum line_status line_status;	/* the line being handled */
	char *line;
};

/*
 * conn_ops callbacks for a conn embedded in a struct session.
 * session_on_line returns false when the state changed, so the new
 * state's hooks run before its first line.
 */
bool session_on_line(struct conn *c, enum line_status st, char *line);
void session_on_output(struct conn *c);

#endif
