/*
 * Zeroing of secrets (wipe.h) through a volatile pointer, so that the
 * stores are kept even when the memory is freed right after.  Knows
 * nothing of what it wipes; never allocates.
 */
#include "wipe.h"

void
wipe(void *p, size_t n)
{
	volatile unsigned char *v = p;

	while (n-- > 0)
		*v++ = 0;
}
