/*
 * libFuzzer harness (e): proto_base64_decode(), the decoder behind
 * AUTH PLAIN (the PLAIN splitting itself runs in fuzz_pop3).
 *
 * The input, up to its first NUL, is the text to decode.  It is
 * decoded with the room it needs exactly (in a heap block of that
 * size, so ASan sees any write past it), with one byte less (must
 * fail), and with plenty.  Properties (abort() on a violation):
 *   - the result agrees with an independent reference decoder of
 *     strict RFC 4648 base64 (padded, no spaces, '=' only at the end of
 *     the last quantum), in the verdict and in every byte;
 *   - what is decoded, encoded again by the harness's own encoder and
 *     decoded once more, gives the same bytes (decode(encode(x)) == x),
 *     and that encoding is the input itself whenever the input is in
 *     canonical form (unused low bits zero).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void
fail(const char *what)
{
	fprintf(stderr, "fuzz_base64: %s\n", what);
	abort();
}

static int
sextet(char c)
{
	const char *p;

	if (c == '\0' || (p = strchr(alphabet, c)) == NULL)
		return -1;
	return (int)(p - alphabet);
}

/*
 * The reference: -1 unless the text is whole quanta of the alphabet,
 * with "=" or "==" allowed only to close the last one.  *canonical
 * tells whether the bits a padded quantum drops are zero.
 */
static long
ref_decode(const char *in, uint8_t *out, size_t cap, bool *canonical)
{
	size_t len = strlen(in), pad = 0, data_len, n = 0;
	uint32_t acc = 0;
	unsigned bits = 0;

	*canonical = true;
	if (len % 4 != 0)
		return -1;
	if (len >= 1 && in[len - 1] == '=')
		pad = len >= 2 && in[len - 2] == '=' ? 2 : 1;
	data_len = len - pad;
	for (size_t i = 0; i < data_len; i++) {
		int v = sextet(in[i]);

		if (v < 0)
			return -1;	/* '=' inside, or not base64 */
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n >= cap)
				return -1;
			out[n++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	/* Padding completes a quantum of 2 or 3 data characters only. */
	if (pad > 0 && data_len % 4 != 4 - pad)
		return -1;
	if (acc != 0)
		*canonical = false;
	return (long)n;
}

/* Canonical padded base64 of src[0..n) into a new string. */
static char *
encode(const uint8_t *src, size_t n)
{
	char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;

	if (out == NULL)
		fail("out of memory");
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)src[i] << 16;

		if (i + 1 < n)
			v |= (uint32_t)src[i + 1] << 8;
		if (i + 2 < n)
			v |= src[i + 2];
		*o++ = alphabet[v >> 18 & 63];
		*o++ = alphabet[v >> 12 & 63];
		*o++ = i + 1 < n ? alphabet[v >> 6 & 63] : '=';
		*o++ = i + 2 < n ? alphabet[v & 63] : '=';
	}
	*o = '\0';
	return out;
}

/* Decodes into a heap block of exactly cap bytes; returns a copy. */
static long
decode_exact(const char *text, size_t cap, uint8_t *copy)
{
	uint8_t *buf = malloc(cap ? cap : 1);
	long n;

	if (buf == NULL)
		fail("out of memory");
	n = proto_base64_decode(text, buf, cap);
	if (n > (long)cap)
		fail("decoded more than cap");
	if (n > 0)
		memcpy(copy, buf, (size_t)n);
	free(buf);
	return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), *again;
	size_t big = size + 16;
	uint8_t *ref = malloc(big), *got = malloc(big), *back = malloc(big);
	bool canonical;
	long want, n;

	if (text == NULL || ref == NULL || got == NULL || back == NULL)
		fail("out of memory");
	memcpy(text, data, size);
	text[size] = '\0';

	want = ref_decode(text, ref, big, &canonical);
	n = decode_exact(text, big, got);
	if (n != want)
		fail("verdict differs from the reference decoder");
	if (want >= 0) {
		if (memcmp(got, ref, (size_t)want) != 0)
			fail("bytes differ from the reference decoder");
		/* Exactly the room it needs is enough; one byte less is not. */
		if (decode_exact(text, (size_t)want, got) != want ||
		    memcmp(got, ref, (size_t)want) != 0)
			fail("decoding into exactly the room needed failed");
		if (want > 0 && decode_exact(text, (size_t)want - 1, got) != -1)
			fail("decoding into too little room did not fail");

		again = encode(ref, (size_t)want);
		if (proto_base64_decode(again, back, big) != want ||
		    memcmp(back, ref, (size_t)want) != 0)
			fail("decode(encode(x)) != x");
		if (canonical && strcmp(again, text) != 0)
			fail("canonical input does not encode back to itself");
		free(again);
	}
	free(text);
	free(ref);
	free(got);
	free(back);
	return 0;
}
