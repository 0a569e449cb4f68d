/*
 * Linear byte buffer over caller-owned storage (see buffer.h for the
 * picture).  No allocation and no I/O here: callers read and write
 * through the paired ptr/adv calls.
 */
#include <assert.h>
#include <string.h>

#include "buffer.h"
#include "wipe.h"

void
buffer_init(struct buffer *b, uint8_t *storage, size_t cap)
{
	b->data = storage;
	b->cap = cap;
	b->read = b->write = 0;
}

void
buffer_reset(struct buffer *b)
{
	b->read = b->write = 0;
}

uint8_t *
buffer_read_ptr(struct buffer *b, size_t *n)
{
	*n = b->write - b->read;
	return b->data + b->read;
}

void
buffer_read_adv(struct buffer *b, size_t n)
{
	assert(n <= b->write - b->read);
	b->read += n;
	if (b->read == b->write)
		b->read = b->write = 0;
}

/*
 * Moves the readable bytes to the front, reclaiming the consumed part.
 * The old place of the moved bytes is wiped: a password not yet parsed
 * must leave no second copy behind (its parsed copy is wiped by proto).
 */
static void
compact(struct buffer *b)
{
	if (b->read == 0)
		return;
	memmove(b->data, b->data + b->read, b->write - b->read);
	b->write -= b->read;
	wipe(b->data + b->write, b->read);
	b->read = 0;
}

uint8_t *
buffer_write_ptr(struct buffer *b, size_t *n)
{
	/* Compacting costs a copy: do it only when the tail is short. */
	if (b->read > 0 && b->cap - b->write < b->cap / 2)
		compact(b);
	*n = b->cap - b->write;
	return b->data + b->write;
}

void
buffer_write_adv(struct buffer *b, size_t n)
{
	assert(n <= b->cap - b->write);
	b->write += n;
}

size_t
buffer_readable(const struct buffer *b)
{
	return b->write - b->read;
}

size_t
buffer_free(const struct buffer *b)
{
	return b->cap - (b->write - b->read);
}

bool
buffer_empty(const struct buffer *b)
{
	return b->read == b->write;
}

bool
buffer_put(struct buffer *b, const void *src, size_t n)
{
	if (n > buffer_free(b))
		return false;
	if (n > b->cap - b->write)
		compact(b);
	memcpy(b->data + b->write, src, n);
	b->write += n;
	return true;
}

void
buffer_move(struct buffer *b, uint8_t *storage, size_t cap)
{
	size_t n = b->write - b->read;

	assert(n <= cap);
	memmove(storage, b->data + b->read, n);
	b->data = storage;
	b->cap = cap;
	b->read = 0;
	b->write = n;
}
