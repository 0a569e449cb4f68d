/*
 * A linear byte buffer over storage its owner provides.  It never
 * allocates; every write is bounded by the capacity.
 *
 *   data                read          write               cap
 *    |  consumed bytes   |  readable    |  writable space   |
 *    +-------------------+--------------+-------------------+
 *
 * Invariant: 0 <= read <= write <= cap.  When read reaches write both
 * go back to 0, so an emptied buffer offers its whole capacity again.
 */
#ifndef POP3D_BUFFER_H
#define POP3D_BUFFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buffer {
	uint8_t *data;
	size_t cap;
	size_t read;
	size_t write;
};

/* Uses storage[0..cap) from now on; the buffer starts empty. */
void buffer_init(struct buffer *b, uint8_t *storage, size_t cap);

/* Empties the buffer. */
void buffer_reset(struct buffer *b);

/* Pointer to the readable bytes and their count in *n. */
uint8_t *buffer_read_ptr(struct buffer *b, size_t *n);
/* Marks n readable bytes as consumed (n <= readable). */
void buffer_read_adv(struct buffer *b, size_t n);

/*
 * Pointer to the writable space and its size in *n.  Moves the readable
 * bytes to the start first when less than half the capacity is left at
 * the end (a copy is only worth it when it wins much room).
 */
uint8_t *buffer_write_ptr(struct buffer *b, size_t *n);
/* Marks n bytes just written at buffer_write_ptr() as readable. */
void buffer_write_adv(struct buffer *b, size_t n);

/* Readable bytes. */
size_t buffer_readable(const struct buffer *b);
/* Room left, counting the consumed prefix that compaction reclaims. */
size_t buffer_free(const struct buffer *b);
/* True when nothing is readable. */
bool buffer_empty(const struct buffer *b);

/* Appends n bytes; returns false and appends nothing if they don't fit. */
bool buffer_put(struct buffer *b, const void *src, size_t n);

/*
 * Moves the readable bytes to other storage (a bigger or smaller array),
 * which must hold them.  Used to lend a connection a large stream buffer.
 */
void buffer_move(struct buffer *b, uint8_t *storage, size_t cap);

#endif
