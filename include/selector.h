/*
 * The select() reactor: the only place in the program that waits.
 * It multiplexes descriptors (listeners, client sockets, pipes) and
 * timers, and knows nothing about what flows through them.
 *
 * Descriptor sets are sized at run time for `capacity` descriptors and
 * handled with our own bit operations, so the reactor is not bound to
 * FD_SETSIZE; a descriptor >= capacity is refused, never set out of range.
 */
#ifndef POP3D_SELECTOR_H
#define POP3D_SELECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct selector;

enum sel_interest {
	SEL_NONE = 0,
	SEL_READ = 1 << 0,
	SEL_WRITE = 1 << 1,
};

enum selector_status {
	SELECTOR_OK = 0,
	SELECTOR_ENOMEM,	/* allocation failed */
	SELECTOR_FDTOOBIG,	/* fd >= capacity: refuse the descriptor */
	SELECTOR_EXISTS,	/* fd already registered */
	SELECTOR_NOTREG,	/* fd not registered */
	SELECTOR_IO,		/* select() failed; see errno */
};

/*
 * Callbacks for one descriptor.  Any of them may register, unregister or
 * change interest of any descriptor, its own included; the reactor looks
 * the descriptor up again before the next callback (Redis).  on_close is
 * called by selector_unregister() and selector_destroy(), once.
 */
struct sel_handler {
	void (*on_read)(struct selector *s, int fd, void *data);
	void (*on_write)(struct selector *s, int fd, void *data);
	void (*on_close)(struct selector *s, int fd, void *data);
};

/*
 * A one-shot timer, embedded in its owner's struct and armed through the
 * reactor.  Fields are private to selector.c; zero-initialise it.
 */
struct sel_timer {
	uint64_t when_ms;
	size_t heap_idx;	/* position in the heap + 1; 0 = not armed */
	void (*fn)(struct selector *s, void *data);
	void *data;
};

/* A reactor for descriptors 0..capacity-1; NULL if out of memory. */
struct selector *selector_new(size_t capacity);
/* Unregisters every descriptor (calling on_close) and frees; NULL ok. */
void selector_destroy(struct selector *s);

/* The capacity selector_new() was given. */
size_t selector_capacity(const struct selector *s);

/*
 * Watches fd for `interest` (SEL_READ, SEL_WRITE) and calls h's
 * handlers with data; SELECTOR_FDTOOBIG when fd is outside the
 * capacity, SELECTOR_EXISTS when already registered.
 */
enum selector_status selector_register(struct selector *s, int fd,
    const struct sel_handler *h, unsigned interest, void *data);
/* Stops watching fd and calls its on_close handler. */
enum selector_status selector_unregister(struct selector *s, int fd);
/* Changes what fd is watched for; SELECTOR_NOTREG when not registered. */
enum selector_status selector_set_interest(struct selector *s, int fd,
    unsigned interest);
/* Current interest of fd, or SEL_NONE when fd is not registered. */
unsigned selector_interest(const struct selector *s, int fd);

/* Monotonic milliseconds, as the reactor's timers count them. */
uint64_t selector_now_ms(void);

/* Arms (or re-arms) t to call fn(s, data) in ms milliseconds. */
enum selector_status selector_timer_arm(struct selector *s,
    struct sel_timer *t, uint64_t ms, void (*fn)(struct selector *, void *),
    void *data);
/* Disarms t; harmless when it is not armed. */
void selector_timer_cancel(struct selector *s, struct sel_timer *t);
bool selector_timer_armed(const struct sel_timer *t);

/*
 * One pass: waits until a descriptor is ready, the nearest timer is due,
 * or max_wait_ms passes (negative: no limit), then runs the callbacks.
 * EINTR is not an error (returns SELECTOR_OK so the caller can look at
 * its signal flags); any other select() failure is SELECTOR_IO.
 */
enum selector_status selector_poll(struct selector *s, int max_wait_ms);

const char *selector_strerror(enum selector_status st);

#endif
