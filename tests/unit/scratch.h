/*
 * Scratch folders for the unit suites, under /tmp (not $TMPDIR: a long
 * one would not fit the suites' fixed path buffers).  Used from
 * unchecked fixtures, which must not exit: a folder that cannot be made
 * leaves its name empty, and the tests that need it fail on that.
 */
#ifndef CHECK_SCRATCH_H
#define CHECK_SCRATCH_H

#include <stddef.h>

/* Makes /tmp/check_<suite>.XXXXXX; its name goes to dir. */
void scratch_make(char *dir, size_t size, const char *suite);

/* Removes dir and all it holds, best effort; empties the name. */
void scratch_remove(char *dir);

#endif
