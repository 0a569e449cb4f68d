/*
 * Unit tests of the linear byte buffer: the read/write pointer pairs,
 * the reset to 0 when emptied, compaction of the consumed prefix, the
 * full and empty edges, buffer_move to other storage and back, and a
 * random walk checked against a plain model after every operation.
 */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "buffer.h"

/* 0 <= read <= write <= cap, and the accessors agree with the fields. */
static void
assert_invariant(const struct buffer *b)
{
	ck_assert_uint_le(b->read, b->write);
	ck_assert_uint_le(b->write, b->cap);
	ck_assert_uint_eq(buffer_readable(b), b->write - b->read);
	ck_assert_uint_eq(buffer_free(b), b->cap - (b->write - b->read));
	ck_assert(buffer_empty(b) == (b->read == b->write));
	if (buffer_empty(b)) {
		/* An emptied buffer offers its whole capacity again. */
		ck_assert_uint_eq(b->read, 0);
		ck_assert_uint_eq(b->write, 0);
	}
}

/* The readable bytes equal want[0..n). */
static void
assert_content(struct buffer *b, const void *want, size_t n)
{
	size_t len;
	uint8_t *p = buffer_read_ptr(b, &len);

	ck_assert_uint_eq(len, n);
	if (n > 0)
		ck_assert_mem_eq(p, want, n);
}

START_TEST(test_init_empty)
{
	uint8_t mem[32];
	struct buffer b;
	size_t n = 99;
	uint8_t *p;

	memset(&b, 0xa5, sizeof(b));
	buffer_init(&b, mem, sizeof(mem));
	assert_invariant(&b);
	ck_assert(buffer_empty(&b));
	ck_assert_uint_eq(buffer_readable(&b), 0);
	ck_assert_uint_eq(buffer_free(&b), sizeof(mem));
	p = buffer_read_ptr(&b, &n);
	ck_assert_ptr_eq(p, mem);
	ck_assert_uint_eq(n, 0);
	p = buffer_write_ptr(&b, &n);
	ck_assert_ptr_eq(p, mem);
	ck_assert_uint_eq(n, sizeof(mem));
}
END_TEST

START_TEST(test_put_ptr_adv)
{
	uint8_t mem[32];
	struct buffer b;
	size_t n;
	uint8_t *p;

	buffer_init(&b, mem, sizeof(mem));
	ck_assert(buffer_put(&b, "hello", 5));
	assert_invariant(&b);
	ck_assert(!buffer_empty(&b));
	assert_content(&b, "hello", 5);
	ck_assert_ptr_eq(buffer_read_ptr(&b, &n), mem);
	ck_assert_uint_eq(buffer_free(&b), sizeof(mem) - 5);

	/* Writable space starts right after the readable bytes. */
	p = buffer_write_ptr(&b, &n);
	ck_assert_ptr_eq(p, mem + 5);
	ck_assert_uint_eq(n, sizeof(mem) - 5);
	memcpy(p, " you", 4);
	buffer_write_adv(&b, 4);
	assert_invariant(&b);
	assert_content(&b, "hello you", 9);

	buffer_read_adv(&b, 2);
	assert_invariant(&b);
	ck_assert_ptr_eq(buffer_read_ptr(&b, &n), mem + 2);
	assert_content(&b, "llo you", 7);
	/* The consumed prefix counts as free room. */
	ck_assert_uint_eq(buffer_free(&b), sizeof(mem) - 7);

	buffer_read_adv(&b, 0);
	assert_content(&b, "llo you", 7);
	buffer_read_adv(&b, 7);
	assert_invariant(&b);
	ck_assert(buffer_empty(&b));
	ck_assert_uint_eq(b.read, 0);
	ck_assert_uint_eq(b.write, 0);
	p = buffer_write_ptr(&b, &n);
	ck_assert_ptr_eq(p, mem);
	ck_assert_uint_eq(n, sizeof(mem));
}
END_TEST

START_TEST(test_reset)
{
	uint8_t mem[16];
	struct buffer b;

	buffer_init(&b, mem, sizeof(mem));
	ck_assert(buffer_put(&b, "abcdef", 6));
	buffer_read_adv(&b, 2);
	buffer_reset(&b);
	assert_invariant(&b);
	ck_assert(buffer_empty(&b));
	ck_assert_uint_eq(buffer_free(&b), sizeof(mem));
	ck_assert_ptr_eq(b.data, mem);
	ck_assert_uint_eq(b.cap, sizeof(mem));
}
END_TEST

START_TEST(test_compaction_write_ptr)
{
	uint8_t mem[16];
	struct buffer b;
	size_t n;
	uint8_t *p;

	buffer_init(&b, mem, sizeof(mem));
	ck_assert(buffer_put(&b, "0123456789AB", 12));
	buffer_read_adv(&b, 10);
	/* Tail of 4 with 10 consumed: compacting gives 14. */
	p = buffer_write_ptr(&b, &n);
	assert_invariant(&b);
	ck_assert_uint_eq(n, 14);
	ck_assert_ptr_eq(p, mem + 2);
	ck_assert_ptr_eq(buffer_read_ptr(&b, &n), mem);
	assert_content(&b, "AB", 2);
	memcpy(p, "cdefghijklmnop", 14);
	buffer_write_adv(&b, 14);
	assert_invariant(&b);
	assert_content(&b, "ABcdefghijklmnop", 16);
	ck_assert_uint_eq(buffer_free(&b), 0);
}
END_TEST

/* Compaction leaves no copy of the moved bytes at their old place. */
START_TEST(test_compaction_wipes_old_place)
{
	uint8_t mem[16];
	struct buffer b;
	size_t n;

	buffer_init(&b, mem, sizeof(mem));
	ck_assert(buffer_put(&b, "0123456789PASS x", 16));
	buffer_read_adv(&b, 10);
	(void)buffer_write_ptr(&b, &n);
	assert_content(&b, "PASS x", 6);
	for (size_t i = 6; i < sizeof(mem); i++)
		ck_assert_uint_eq(mem[i], 0);
}
END_TEST

START_TEST(test_compaction_put)
{
	uint8_t mem[8];
	struct buffer b;

	buffer_init(&b, mem, sizeof(mem));
	ck_assert(buffer_put(&b, "abcdefgh", 8));
	buffer_read_adv(&b, 3);
	/* 3 bytes only fit by reclaiming the consumed prefix. */
	ck_assert_uint_eq(buffer_free(&b), 3);
	ck_assert(buffer_put(&b, "XYZ", 3));
	assert_invariant(&b);
	assert_content(&b, "defghXYZ", 8);
	ck_assert_uint_eq(buffer_free(&b), 0);
}
END_TEST

START_TEST(test_full)
{
	uint8_t mem[8];
	struct buffer b;
	size_t n;

	buffer_init(&b, mem, sizeof(mem));
	ck_assert(buffer_put(&b, "12345678", 8));
	assert_invariant(&b);
	ck_assert_uint_eq(buffer_free(&b), 0);
	(void)buffer_write_ptr(&b, &n);
	ck_assert_uint_eq(n, 0);
	ck_assert(!buffer_put(&b, "9", 1));
	ck_assert(buffer_put(&b, "", 0));
	assert_invariant(&b);
	assert_content(&b, "12345678", 8);
	/* One byte consumed: exactly one byte of room, no more. */
	buffer_read_adv(&b, 1);
	ck_assert(!buffer_put(&b, "ab", 2));
	assert_content(&b, "2345678", 7);
	ck_assert(buffer_put(&b, "a", 1));
	assert_content(&b, "2345678a", 8);
	assert_invariant(&b);
}
END_TEST

START_TEST(test_put_too_big_appends_nothing)
{
	uint8_t mem[16];
	uint8_t guard[16];
	struct buffer b;

	memset(mem, '#', sizeof(mem));
	buffer_init(&b, mem, sizeof(mem));
	ck_assert(buffer_put(&b, "hello", 5));
	memset(guard, 'Z', sizeof(guard));
	ck_assert(!buffer_put(&b, guard, 12));
	assert_invariant(&b);
	assert_content(&b, "hello", 5);
	/* Not even partially: the free space is untouched. */
	for (size_t i = 5; i < sizeof(mem); i++)
		ck_assert_int_eq(mem[i], '#');
	ck_assert(!buffer_put(&b, guard, SIZE_MAX));
	assert_content(&b, "hello", 5);
	ck_assert(buffer_put(&b, guard, 11));
	ck_assert_uint_eq(buffer_readable(&b), 16);
}
END_TEST

START_TEST(test_zero_capacity)
{
	uint8_t mem[1] = { 0x42 };
	struct buffer b;
	size_t n = 7;

	buffer_init(&b, mem, 0);
	assert_invariant(&b);
	ck_assert(buffer_empty(&b));
	ck_assert_uint_eq(buffer_free(&b), 0);
	(void)buffer_write_ptr(&b, &n);
	ck_assert_uint_eq(n, 0);
	ck_assert(!buffer_put(&b, "x", 1));
	ck_assert(buffer_put(&b, "", 0));
	ck_assert(buffer_empty(&b));
	ck_assert_int_eq(mem[0], 0x42);
}
END_TEST

START_TEST(test_move_bigger_and_back)
{
	uint8_t small[8], big[64];
	uint8_t pattern[60];
	struct buffer b;
	size_t n;

	for (size_t i = 0; i < sizeof(pattern); i++)
		pattern[i] = (uint8_t)('A' + i % 26);
	buffer_init(&b, small, sizeof(small));
	ck_assert(buffer_put(&b, "xyzabcd", 7));
	buffer_read_adv(&b, 3);
	buffer_move(&b, big, sizeof(big));
	assert_invariant(&b);
	ck_assert_ptr_eq(b.data, big);
	ck_assert_uint_eq(b.cap, sizeof(big));
	ck_assert_ptr_eq(buffer_read_ptr(&b, &n), big);
	assert_content(&b, "abcd", 4);
	ck_assert_uint_eq(buffer_free(&b), 60);

	/* The big storage takes what the small one could not. */
	ck_assert(buffer_put(&b, pattern, 60));
	ck_assert_uint_eq(buffer_free(&b), 0);
	buffer_read_adv(&b, 4 + 55);
	assert_content(&b, pattern + 55, 5);

	buffer_move(&b, small, sizeof(small));
	assert_invariant(&b);
	ck_assert_ptr_eq(b.data, small);
	ck_assert_uint_eq(b.cap, sizeof(small));
	ck_assert_ptr_eq(buffer_read_ptr(&b, &n), small);
	assert_content(&b, pattern + 55, 5);
	ck_assert_uint_eq(buffer_free(&b), 3);
	ck_assert(!buffer_put(&b, "1234", 4));
	ck_assert(buffer_put(&b, "123", 3));
	memcpy(big, pattern + 55, 5);
	memcpy(big + 5, "123", 3);
	assert_content(&b, big, 8);
}
END_TEST

START_TEST(test_move_empty_and_exact)
{
	uint8_t a[8], c[4];
	struct buffer b;

	buffer_init(&b, a, sizeof(a));
	buffer_move(&b, c, sizeof(c));
	assert_invariant(&b);
	ck_assert(buffer_empty(&b));
	ck_assert_uint_eq(buffer_free(&b), sizeof(c));
	/* Moving into storage exactly as large as the readable bytes. */
	buffer_move(&b, a, sizeof(a));
	ck_assert(buffer_put(&b, "wxyz1234", 8));
	buffer_read_adv(&b, 4);
	buffer_move(&b, c, sizeof(c));
	assert_invariant(&b);
	assert_content(&b, "1234", 4);
	ck_assert_uint_eq(buffer_free(&b), 0);
}
END_TEST

/* A tiny deterministic generator (xorshift32). */
static uint32_t
rnd(uint32_t *state)
{
	uint32_t x = *state;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*state = x;
	return x;
}

/*
 * Random puts, direct writes, reads and moves, checked after each step
 * against a model that keeps the readable bytes in a plain array.
 */
START_TEST(test_random_walk)
{
	uint8_t mem1[37], mem2[101];
	uint8_t model[101];
	size_t mlen = 0;
	uint8_t next = 0;
	uint32_t seed = 0x9e3779b9u;
	struct buffer b;

	buffer_init(&b, mem1, sizeof(mem1));
	for (int step = 0; step < 20000; step++) {
		uint32_t op = rnd(&seed) % 10;
		uint8_t chunk[sizeof(mem2) + 3];
		size_t want, n;
		uint8_t *p;

		if (op < 3) {
			want = rnd(&seed) % (b.cap + 3);
			for (size_t i = 0; i < want; i++)
				chunk[i] = next++;
			if (want <= b.cap - mlen) {
				ck_assert(buffer_put(&b, chunk, want));
				memcpy(model + mlen, chunk, want);
				mlen += want;
			} else {
				ck_assert(!buffer_put(&b, chunk, want));
				next = (uint8_t)(next - want);
			}
		} else if (op < 6) {
			p = buffer_write_ptr(&b, &n);
			ck_assert_uint_le(n, b.cap - mlen);
			ck_assert_ptr_eq(p, b.data + b.write);
			want = n == 0 ? 0 : rnd(&seed) % (n + 1);
			for (size_t i = 0; i < want; i++)
				p[i] = model[mlen + i] = next++;
			buffer_write_adv(&b, want);
			mlen += want;
		} else if (op < 9) {
			want = rnd(&seed) % (mlen + 1);
			buffer_read_adv(&b, want);
			memmove(model, model + want, mlen - want);
			mlen -= want;
		} else if (mlen <= sizeof(mem1)) {
			uint8_t *to = b.data == mem1 ? mem2 : mem1;
			size_t cap = to == mem1 ? sizeof(mem1) : sizeof(mem2);

			buffer_move(&b, to, cap);
			ck_assert_ptr_eq(b.data, to);
			ck_assert_uint_eq(b.cap, cap);
		}
		assert_invariant(&b);
		assert_content(&b, model, mlen);
	}
}
END_TEST

Suite *buffer_suite(void);

Suite *
buffer_suite(void)
{
	Suite *s = suite_create("buffer");
	TCase *core = tcase_create("core");
	TCase *limits = tcase_create("limits");

	tcase_add_test(core, test_init_empty);
	tcase_add_test(core, test_put_ptr_adv);
	tcase_add_test(core, test_reset);
	tcase_add_test(core, test_compaction_write_ptr);
	tcase_add_test(core, test_compaction_put);
	tcase_add_test(core, test_compaction_wipes_old_place);
	tcase_add_test(core, test_move_bigger_and_back);
	suite_add_tcase(s, core);

	tcase_add_test(limits, test_full);
	tcase_add_test(limits, test_put_too_big_appends_nothing);
	tcase_add_test(limits, test_zero_capacity);
	tcase_add_test(limits, test_move_empty_and_exact);
	tcase_add_test(limits, test_random_walk);
	suite_add_tcase(s, limits);
	return s;
}
