/* Secrets zeroed through a volatile pointer (wipe.h). */
#include "wipe.h"

void
wipe(void *p, size_t n)
{
	volatile unsigned char *v = p;

	while (n-- > 0)
		*v++ = 0;
}
