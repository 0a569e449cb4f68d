/*
 * Opens the files the operator names so that nothing at the path can
 * block the server: O_NONBLOCK makes open(2) return at once on a FIFO
 * or a device, and fstat(2) then keeps regular files only.  No logging
 * here; callers say what failed with regfile_strerror().
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "regfile.h"

/*
 * The descriptor is a regular file: O_NONBLOCK did its job in open(2).
 * Linux ignores the flag on regular files, but POSIX leaves its effect
 * there unspecified, and the log and the users file are read and
 * written as plain blocking files everywhere: clear it.
 */
static int
keep_regular(int fd)
{
	struct stat st;
	int fl;

	if (fstat(fd, &st) == -1)
		return -1;
	if (!S_ISREG(st.st_mode)) {
		errno = S_ISDIR(st.st_mode) ? EISDIR : REGFILE_ENOTREG;
		return -1;
	}
	fl = fcntl(fd, F_GETFL);
	if (fl == -1 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == -1)
		return -1;
	return 0;
}

int
regfile_open(const char *path, int flags, mode_t mode)
{
	int fd, saved;

	do
		fd = open(path, flags | O_NONBLOCK | O_CLOEXEC, mode);
	while (fd == -1 && errno == EINTR);
	if (fd == -1) {
		/* Only a FIFO without reader, a socket or a device say so. */
		if (errno == ENXIO)
			errno = REGFILE_ENOTREG;
		return -1;
	}
	if (keep_regular(fd) == -1) {
		saved = errno;
		(void)close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

const char *
regfile_strerror(int err)
{
	return err == REGFILE_ENOTREG ? "not a regular file" : strerror(err);
}
