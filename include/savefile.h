/*
 * Replacing a small file whole, so that readers see the old content or
 * the new, never a mix, and a crash never leaves it half written: the
 * users file's only way to disk.  No logging here; callers report the
 * status they get back.
 */
#ifndef POP3D_SAVEFILE_H
#define POP3D_SAVEFILE_H

#include <stddef.h>

enum savefile_status {
	SAVEFILE_OK,
	SAVEFILE_FAILED,	/* errno; the old file is untouched */
	SAVEFILE_NOMEM,		/* out of memory; the old file is untouched */
	SAVEFILE_UNSYNCED,	/* replaced, but its folder's fsync failed
				   (errno): a system crash may lose it */
};

/*
 * Replaces path with data[0..len).  The new content goes to
 * path.tmp.XXXXXX in the same folder (rename(2) is atomic only within
 * one file system), mode 0600 and owned as the old file, locked while
 * it lives, synced, and is then renamed over path; the folder is synced
 * last.  A path reached through symlinks is replaced where it lives,
 * and the links stay.
 */
enum savefile_status savefile_replace(const char *path, const char *data,
    size_t len);

/*
 * Removes the temporary files a save killed before its rename left
 * beside path, or beside the file a symlink at path leads to (each a
 * copy of the file): path.tmp. and 6 letters or digits, or up to 7
 * digits (earlier builds).  One a live save holds locked stays: another
 * server saving the same file.
 */
void savefile_remove_stale(const char *path);

#endif
