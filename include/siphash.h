/*
 * SipHash-2-4 (Aumasson and Bernstein, 2012): a fast keyed MAC of short
 * inputs.  The login cache keeps one of the last good password instead
 * of the password itself.
 */
#ifndef POP3D_SIPHASH_H
#define POP3D_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/*
 * The MAC of in[0..len) under the 128-bit key, whose halves are the
 * key's octets 0-7 and 8-15 read little-endian, as the paper does.
 */
uint64_t siphash24(const uint64_t key[2], const unsigned char *in,
    size_t len);

#endif
