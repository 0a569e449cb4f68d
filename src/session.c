/*
 * The conn callbacks shared by every protocol session: they hand lines
 * and output room to the session's state machine.  No I/O here.
 */
#include "session.h"

bool
session_on_line(struct conn *c, enum line_status st, char *line)
{
	struct session *s = (struct session *)c;
	unsigned before = stm_state(&s->stm);

	s->line_status = st;
	s->line = line;
	return stm_read(&s->stm, s) == before;
}

void
session_on_output(struct conn *c)
{
	struct session *s = (struct session *)c;

	stm_write(&s->stm, s);
}
