/*
 * Zeroing of secrets (passwords, credentials, the bytes around them).
 * A plain memset of memory that is freed or goes out of scope next may
 * be dropped by the compiler as a dead store; wipe() is never dropped.
 */
#ifndef POP3D_WIPE_H
#define POP3D_WIPE_H

#include <stddef.h>

void wipe(void *p, size_t n);

#endif
