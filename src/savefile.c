/*
 * Saving a file whole (savefile.h): a new file beside the old one,
 * locked, synced and renamed over it.  The lock tells a save under way
 * from the leftover of one that was killed, which savefile_remove_stale()
 * removes: it holds what the file held (for the users file, hashes).
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "savefile.h"

/*
 * Where a link at `path` points, relative to the link's folder; NULL if
 * it cannot be read.
 */
static char *
link_target(const char *path)
{
	char to[PATH_MAX];
	const char *slash = strrchr(path, '/');
	ssize_t n = readlink(path, to, sizeof(to) - 1);
	int dirlen = slash != NULL ? (int)(slash - path) + 1 : 0;
	char *out;

	if (n <= 0 || (size_t)n >= sizeof(to) - 1)
		return NULL;
	to[n] = '\0';
	if (to[0] == '/')
		dirlen = 0;
	if ((out = malloc((size_t)dirlen + (size_t)n + 1)) != NULL)
		(void)sprintf(out, "%.*s%s", dirlen, path, to);
	return out;
}

/*
 * The file a save replaces: the users file reached through a symlink
 * (kept in /var/lib, linked from /etc) is replaced where it lives, and
 * the links stay, also when it does not exist yet (the links dangle).
 * NULL when out of memory.
 */
static char *
save_target(const char *path)
{
	struct stat sb;
	char *real = NULL, *next;

	if (lstat(path, &sb) == -1 || !S_ISLNK(sb.st_mode))
		return strdup(path);
	if ((real = realpath(path, NULL)) != NULL)
		return real;
	/* Dangling: follow the chain by hand, as far as realpath would. */
	real = strdup(path);
	for (int hops = 0; real != NULL && hops < 40 &&
	    lstat(real, &sb) == 0 && S_ISLNK(sb.st_mode); hops++) {
		if ((next = link_target(real)) == NULL)
			break;
		free(real);
		real = next;
	}
	return real;
}

/*
 * A whole-file write lock on a temporary file, held by a save from
 * just after its creation to its rename: the kernel drops it when the
 * saver dies, so a leftover tells a dead save from one under way, which
 * a pid (reused, or a zombie's) cannot.  On a file system without locks
 * the save goes on unlocked.
 */
static int
lock_temp(int fd)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

	if (fcntl(fd, F_SETLK, &fl) == -1 && errno != ENOLCK &&
	    errno != EOPNOTSUPP && errno != EINVAL)
		return -1;
	return 0;
}

/*
 * True when a live save holds the file at path locked.  One that cannot
 * be opened (a root save's file to the service user, a socket) or asked
 * is no save of a server that could read the users file.
 */
static bool
temp_in_use(const char *path)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	bool in_use;

	if (fd == -1)
		return false;
	in_use = fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
	(void)close(fd);
	return in_use;
}

/*
 * path.tmp. and mkstemp's 6 letters and digits, or a pid of at most 7
 * digits (the names of earlier builds): a save's temporary file.  An
 * operator's users.tmp.orig or users.tmp.20261130 is none.
 */
static bool
is_temp_name(const char *name, const char *base, size_t blen)
{
	const char *suffix = name + blen;
	size_t n, digits = 0;

	if (strncmp(name, base, blen) != 0 || strncmp(suffix, ".tmp.", 5) != 0)
		return false;
	suffix += 5;
	for (n = 0; suffix[n] != '\0'; n++) {
		if (!isalnum((unsigned char)suffix[n]))
			return false;
		digits += isdigit((unsigned char)suffix[n]) != 0;
	}
	return n == 6 || (n > 0 && n <= 7 && digits == n);
}

/*
 * A save killed between writing and renaming leaves path.tmp.XXXXXX
 * (path.tmp.<pid> from earlier builds) behind, a copy of the file.
 * Such a file is removed unless a live save holds its lock (another
 * server on the same file).
 */
static void
remove_stale_temps(const char *path)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash == NULL ? path : slash + 1;
	size_t blen = strlen(base);
	char *dirpath = slash == NULL ? strdup(".") :
	    strndup(path, (size_t)(slash - path) + 1);
	struct dirent *e;
	DIR *d;

	if (dirpath == NULL)
		return;
	d = opendir(dirpath);
	while (d != NULL && (e = readdir(d)) != NULL) {
		char *victim;

		if (!is_temp_name(e->d_name, base, blen))
			continue;
		victim = malloc(strlen(dirpath) + strlen(e->d_name) + 2);
		if (victim == NULL)
			break;
		(void)sprintf(victim, "%s/%s", dirpath, e->d_name);
		if (!temp_in_use(victim))
			(void)unlink(victim);
		free(victim);
	}
	if (d != NULL)
		(void)closedir(d);
	free(dirpath);
}

static int
write_all(int fd, const char *p, size_t n)
{
	ssize_t r;

	while (n > 0) {
		r = write(fd, p, n);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* The folder holding path, opened for its fsync; -1 with errno. */
static int
open_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	int fd, saved;

	if (slash == NULL)
		dir = strdup(".");
	else if (slash == path)
		dir = strdup("/");
	else
		dir = strndup(path, (size_t)(slash - path));
	if (dir == NULL)
		return -1;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	saved = errno;
	free(dir);
	errno = saved;
	return fd;
}

/*
 * Makes the rename durable.  File systems that cannot sync a folder say
 * EINVAL; that is not an error.
 */
static int
sync_dir(int dfd)
{
	return fsync(dfd) == -1 && errno != EINVAL ? -1 : 0;
}

/*
 * A server run as root once (to set a password with -u, say) must not
 * take over the file of the service user, whose next start could no
 * longer read it: the new file gets the old one's owner.
 */
static int
keep_owner(int fd, const char *path)
{
	struct stat old;

	if (geteuid() != 0 || lstat(path, &old) == -1)
		return 0;	/* nothing to keep, or no right to */
	return fchown(fd, old.st_uid, old.st_gid);
}

/* path.tmp.XXXXXX: mkstemp()'s template for the new content's name. */
static char *
temp_name(const char *path)
{
	size_t len = strlen(path) + sizeof(".tmp.XXXXXX");
	char *tmp = malloc(len);

	if (tmp != NULL)
		snprintf(tmp, len, "%s.tmp.XXXXXX", path);
	return tmp;
}

/* Removes the file tmp this save created, then closes it; -1. */
static int
drop_new_file(const char *tmp, int fd)
{
	int saved = errno;

	(void)unlink(tmp);
	(void)close(fd);
	errno = saved;
	return -1;
}

/*
 * Writes data to a new file named after the template tmp, mode 0600
 * and owned as path is, locked (lock_temp) and synced; its descriptor,
 * which the caller closes after the rename, or -1 with errno set and
 * no file left.  mkstemp() gives a name no other file has (O_EXCL,
 * mode 0600, never through a planted link), even to two servers on one
 * file whose pids are equal (two containers).
 */
static int
write_new_file(char *tmp, const char *path, const char *data, size_t len)
{
	int fd = mkstemp(tmp);

	if (fd == -1)
		return -1;
	/*
	 * Locked, then mode 0600 whatever the umask and owned as the old
	 * file at once: a savefile_remove_stale() by a server running as
	 * that owner could not ask a file it cannot open for its lock, and
	 * would take it for a leftover.  (One that took it before the lock
	 * makes the rename fail: the save fails, the old file untouched.)
	 */
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) == -1 || lock_temp(fd) == -1 ||
	    fchmod(fd, 0600) == -1 || keep_owner(fd, path) == -1)
		return drop_new_file(tmp, fd);
	if (write_all(fd, data, len) == -1 || fsync(fd) == -1)
		return drop_new_file(tmp, fd);
	return fd;
}

enum savefile_status
savefile_replace(const char *path, const char *data, size_t len)
{
	enum savefile_status st = SAVEFILE_FAILED;
	bool renamed = false;
	char *target, *tmp = NULL;
	int fd = -1, dfd = -1, saved;

	if ((target = save_target(path)) == NULL ||
	    (tmp = temp_name(target)) == NULL) {
		free(target);
		errno = ENOMEM;
		return SAVEFILE_NOMEM;
	}
	/*
	 * Every failure we can see must come while the old file is still
	 * in place: the folder (which needs read permission) is opened
	 * before the rename, not after.
	 */
	if ((fd = write_new_file(tmp, target, data, len)) == -1 ||
	    (dfd = open_dir(target)) == -1 || rename(tmp, target) == -1)
		goto cleanup;
	renamed = true;
	/* The change is on disk now; only its durability can fail. */
	st = sync_dir(dfd) == -1 ? SAVEFILE_UNSYNCED : SAVEFILE_OK;
cleanup:
	saved = errno;
	if (dfd != -1)
		(void)close(dfd);
	if (fd != -1 && !renamed)
		(void)unlink(tmp);
	/* Its lock goes with it, once the name is no longer a leftover. */
	if (fd != -1)
		(void)close(fd);
	free(tmp);
	free(target);
	errno = saved;
	return st;
}

void
savefile_remove_stale(const char *path)
{
	char *target = save_target(path);

	if (target != NULL)
		remove_stale_temps(target);
	free(target);
}
