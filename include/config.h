/*
 * Every limit and default of pop3server, each with the reason it has the
 * value it has (popa3d params.h).  Nothing here is tunable at run time
 * unless main.c or mgmt says so.
 */
#ifndef POP3D_CONFIG_H
#define POP3D_CONFIG_H

#include <stddef.h>

#define POP3D_NAME		"pop3server"
#define POP3D_VERSION		"1.0"

/* Defaults of the command line (spec "Command line"). */
#define DEFAULT_POP3_PORT	1110
#define DEFAULT_MGMT_PORT	6000
#define DEFAULT_MAIL_ROOT	"./mail"
#define DEFAULT_USERS_FILE	"./pop3server.users"

/* RFC 2449 section 4: command lines are at most 255 octets, CRLF included. */
#define POP3_MAX_LINE		255

/*
 * RFC 5034 section 4: a SASL response after "+ " is not bound by the
 * command line limit.  The longest PLAIN response we can accept (64-octet
 * authzid and authcid, 128-octet password) is 344 base64 characters.
 */
#define SASL_MAX_LINE		512

/*
 * Per-connection input.  Larger than one line so pipelined commands can
 * be read in one go; small because an idle session must stay cheap.
 */
#define IN_BUF_SIZE		((size_t)1024)
_Static_assert(SASL_MAX_LINE <= IN_BUF_SIZE / 2,
    "a whole SASL line must fit the input buffer");

/*
 * Per-connection output kept while a session is idle: enough for any
 * single-line reply.  Multi-line replies borrow STREAM_BUF_SIZE from the
 * heap only while they stream (memory per idle session stays small).
 */
#define OUT_BUF_SIZE		((size_t)1024)
#define STREAM_BUF_SIZE		((size_t)256 * 1024)

/*
 * A listing (LIST, UIDL, MGMT USERS) of more entries than this streams
 * through the big buffer; a few lines fit the small one.
 */
#define SMALL_LISTING		8

/*
 * Most wire bytes a message stream encodes and sends in one step.  Steps
 * well under the stream buffer let our encoding overlap the reader's
 * copy instead of taking turns with it, and staying just under two
 * 64 KiB segments of the loopback interface (where stunnel hands us
 * POP3S traffic) saves a sliver segment per send: RETR moved about 40%
 * more than with 256 KiB steps (docs/performance.md).
 */
#define STREAM_STEP		((size_t)127 * 1024)

/*
 * All stream buffers together stay under this; past it a stream makes
 * do with the small buffer (slower, never refused), so ten thousand
 * clients that RETR and never read cannot exhaust memory.
 */
#define STREAM_MEM_BUDGET	((size_t)64 * 1024 * 1024)

/* Longest single-line reply we ever build; parsing waits for this room. */
#define MAX_REPLY_LINE		512

/*
 * Longest RETR filter command: MGMT's FILTER shows it on one reply line,
 * which must fit the room a command is answered with (MAX_REPLY_LINE).
 */
#define FILTER_MAX		400

/* Lines handled per read callback, so one client cannot hog a pass. */
#define MAX_CMDS_PER_PASS	16

/* Bytes a stream may produce per write callback (fairness per pass). */
#define MAX_STREAM_PER_PASS	((size_t)1024 * 1024)

/* RFC 1939 section 3: the autologout timer is at least 10 minutes. */
#define DEFAULT_IDLE_TIMEOUT	600

/* A RETR filter silent this long is killed (spec: default 30 s). */
#define DEFAULT_FILTER_TIMEOUT	30
/* The longest --filter-timeout, as the longest idle timeout: a day. */
#define MAX_FILTER_TIMEOUT	86400

/*
 * The MGMT spec's greeting: admin_monitor checks it, so a --port that
 * names the POP3 service by mistake is not taken for MGMT.
 */
#define MGMT_GREETING		"+OK Management server ready"
/*
 * The greetings of MGMT clients refused (admin_monitor exits 1, and
 * tells them from another service's -ERR): over the 64 sessions, and
 * no descriptor or memory left.
 */
#define MGMT_FULL_GREETING	"-ERR TOO MANY MANAGEMENT SESSIONS"
#define MGMT_BUSY_GREETING	"-ERR SERVER BUSY, TRY AGAIN LATER"

/* The MGMT spec's bounds for a TIMEOUT pause, seconds. */
#define MGMT_PAUSE_MIN		1
#define MGMT_PAUSE_MAX		3600

/* Delay before a failed PASS/AUTH is answered, and failures allowed. */
#define AUTH_FAIL_DELAY_MS	1000
#define MAX_AUTH_FAILURES	3

/* Dovecot closes after 20 consecutive bad commands; so do we. */
#define MAX_BAD_CMDS		20

/* User names become path components (spec "Mail storage"). */
#define USER_NAME_MAX		64
/* MGMT spec: passwords are 1 to 128 printable characters. */
#define PASSWORD_MAX		128

/* RFC 1939 section 7: a unique-id is 1 to 70 characters 0x21..0x7E. */
#define UIDL_MAX		70

/*
 * crypt(3) SHA-512 costs about 2 ms of CPU: a successful login is
 * remembered this long (seconds) so reconnecting clients are cheap,
 * and at most one full check runs per reactor pass so a login storm
 * cannot freeze the other sessions.
 */
#define LOGIN_CACHE_TTL		3600

/*
 * Logins finished per reactor pass.  A remembered password costs one
 * of these (opening the maildrop, ~0.1 ms), a crypt(3) check all of
 * them: 500 returning clients at once no longer make one 20 ms pass.
 */
#define LOGINS_PER_PASS		16

/* Default number of users the store may hold (MGMT MAX_USERS). */
#define DEFAULT_MAX_USERS	1000

/*
 * Descriptors kept back from the connection budget: listeners, the
 * log, the signal pipe, the spare descriptor used to refuse cleanly at
 * EMFILE, and the users-file rewrite.
 */
#define RESERVED_FDS		32

/*
 * Share of the remaining descriptors that may be client connections;
 * the rest is for message files opened by RETR/TOP.
 */
#define CONN_FD_SHARE_PCT	75

/*
 * MAX_CONNEC accepts at least this many (the MGMT spec), even where the
 * descriptor limit allows fewer: connections beyond the descriptors are
 * then refused cleanly when accepted.  The start (-m, the default, a
 * saved value) keeps to what the descriptors allow.
 */
#define CONN_CEILING_MIN	1000

/* A maildrop larger than this is refused with [SYS/PERM] (popa3d). */
#define MAX_MAILDROP_MSGS	1000000

/* Bytes of message files read per pass while sizing a maildrop. */
#define SCAN_BYTES_PER_PASS	((size_t)4 * 1024 * 1024)

/*
 * A directory entry listed or a message file opened counts as this many
 * bytes of that budget: a pass handles at most 512 of them, so a login
 * with 20,000 files in new/ no longer stalls everyone for a quarter of
 * a second (2.5 s with a cold cache), and a smaller budget never stops
 * listing (SCAN_MIN_ENTRIES per pass at least).
 */
#define SCAN_ENTRY_COST		((size_t)8 * 1024)
#define SCAN_MIN_ENTRIES	((size_t)512)

/*
 * Messages unlinked per pass at QUIT (about 4 ms of work): a user who
 * deletes 100,000 messages does not stall everyone else for 0.7 s.
 */
#define COMMIT_PER_PASS		((size_t)512)

/*
 * Directory entries QUIT's verify reads per pass (a readdir and a
 * binary search each, about 1 ms): the reading of a 200,000-file cur/
 * that looks for copies of the deleted messages stalled everyone else
 * for 0.3 s in one go.
 */
#define VERIFY_PER_PASS		((size_t)4096)

/*
 * Heavy work all POP3 sessions may do in one pass (listing and sizing
 * maildrops, QUIT's unlinks and verify), in ns: the slices above bound
 * one session, and forty QUITs of 512 unlinks each made one pass last
 * over half a second for everyone else.  A pass may overrun it by one
 * slice; the sessions left wait for the next pass.
 */
#define PASS_WORK_NS		((int64_t)8 * 1000 * 1000)

/*
 * Readings of cur/ a QUIT slice may make for files another reader keeps
 * renaming (an IMAP flag storm): a bound on the stall, not on safety.
 */
#define COMMIT_REREADS		3

#endif
