/*
 * Logging: one line per event, ISO-8601 UTC timestamp first, to standard
 * error or to a file (appended, reopened on request for log rotation).
 * Callers never pass passwords; log_sanitize() makes client-supplied
 * text (user names) safe to print.
 */
#ifndef POP3D_LOG_H
#define POP3D_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level { LOG_ERR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/*
 * Sends the log to `path` (appending, created 0600), or to standard
 * error when path is NULL.  Returns 0, or -1 with errno set.
 */
int log_open(const char *path);
/*
 * Reopens the file given to log_open() (SIGHUP); 0, or -1 with errno
 * set when the old file is kept.  A failure is logged, to standard
 * error as well: the old file may be deleted, and read by nobody.
 */
int log_reopen(void);
void log_close(void);

void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
#define log_err(...)	log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...)	log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)	log_msg(LOG_INFO, __VA_ARGS__)

/*
 * Copies `src` into dst[0..cap) replacing anything outside printable
 * ASCII (and spaces) with '?', truncating; a cut copy ends in '?', so
 * it never reads as a whole one.  Returns dst.
 */
char *log_sanitize(char *dst, size_t cap, const char *src);

#endif
