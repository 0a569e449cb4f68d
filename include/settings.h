/*
 * The live server settings that MGMT may change.  Owned by the server;
 * POP3 and MGMT sessions hold a pointer and always read the current
 * value (a change applies on the next accept, login or timer).
 */
#ifndef POP3D_SETTINGS_H
#define POP3D_SETTINGS_H

#include <stddef.h>

struct settings {
	size_t max_conn;	/* concurrent POP3 connections allowed */
	size_t conn_ceiling;	/* the most MAX_CONNEC accepts (config.h) */
	unsigned idle_s;	/* RFC 1939 autologout, seconds */
	char *filter;		/* RETR filter command (owned), or NULL */
	unsigned filter_limit_s;	/* a filter's silence limit */
};

/* Keys under which MGMT persists them in the users/settings file. */
#define SETTING_MAX_CONN	"max_connections"
#define SETTING_IDLE		"idle_timeout"
#define SETTING_MAX_USERS	"max_users"
#define SETTING_FILTER		"filter"

/*
 * The values MGMT accepts (docs/mgmt-protocol.md); the users-file loader
 * refuses others.  Both minimums of the limits are 1.  MAX_CONNEC's top
 * is the descriptor ceiling, known only at run time.
 */
#define SETTING_IDLE_MIN	10
#define SETTING_IDLE_MAX	86400
#define SETTING_MAX_USERS_MAX	1000000000UL

#endif
