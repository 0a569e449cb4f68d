/*
 * Opening a file the operator named (the --log file, the users file)
 * without ever blocking the server: a FIFO or a device at that path
 * could otherwise stop the single thread in open(2) or in the first
 * read or write.  Only regular files are kept.  libc only.
 */
#ifndef POP3D_REGFILE_H
#define POP3D_REGFILE_H

#include <sys/types.h>

#include <errno.h>

/*
 * The errno of a path that is not a regular file (Linux has no
 * EFTYPE).  open(2) itself gives ENODEV only for a device special file,
 * so no failure on a regular file is misnamed by regfile_strerror().
 */
#define REGFILE_ENOTREG	ENODEV

/*
 * open(2) with `flags` (O_CLOEXEC is added) and `mode`, then keeps the
 * descriptor only if it is a regular file; the caller owns it.  Returns
 * it, or -1 with errno set: EISDIR for a folder, REGFILE_ENOTREG for
 * any other file that is not regular (a FIFO, a device, a socket).
 */
int regfile_open(const char *path, int flags, mode_t mode);

/* strerror(err), but REGFILE_ENOTREG reads "not a regular file". */
const char *regfile_strerror(int err);

#endif
