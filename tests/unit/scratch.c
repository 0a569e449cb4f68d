/* Scratch folders for the unit suites (scratch.h). */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

#include "scratch.h"

void
scratch_make(char *dir, size_t size, const char *suite)
{
	int n = snprintf(dir, size, "/tmp/check_%s.XXXXXX", suite);

	if (n < 0 || (size_t)n >= size || mkdtemp(dir) == NULL)
		dir[0] = '\0';
}

static int
rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	(void)remove(p);
	return 0;	/* keep removing the rest */
}

void
scratch_remove(char *dir)
{
	if (dir[0] != '\0')
		(void)nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	dir[0] = '\0';
}
