/*
 * The select() reactor.  Descriptor sets are arrays of words sized for
 * the capacity and set with our own bit operations (as libevent's select
 * backend does), so descriptors above FD_SETSIZE work where the kernel
 * allows them (Linux, the BSDs) and nothing is ever set out of range.
 * Timers are a binary min-heap of caller-owned struct sel_timer.
 *
 * This module knows nothing of sockets, protocols or connections.
 */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>

#include "now.h"
#include "selector.h"

/* The descriptor sets are arrays of unsigned long, as fd_set is. */
#define WORD_BITS (sizeof(unsigned long) * CHAR_BIT)

struct item {
	const struct sel_handler *h;
	void *data;
	unsigned interest;
	bool used;
};

struct selector {
	size_t capacity;
	size_t nwords;
	int max_fd;		/* highest registered fd, -1 when none */
	struct item *items;
	unsigned long *want_r, *want_w;	/* master sets */
	unsigned long *ready_r, *ready_w;	/* copies handed to select() */
	struct sel_timer **heap;
	size_t nheap, heap_cap;
};

static void
bit_set(unsigned long *set, int fd)
{
	set[(size_t)fd / WORD_BITS] |= 1UL << ((size_t)fd % WORD_BITS);
}

static void
bit_clr(unsigned long *set, int fd)
{
	set[(size_t)fd / WORD_BITS] &= ~(1UL << ((size_t)fd % WORD_BITS));
}

static bool
bit_isset(const unsigned long *set, int fd)
{
	return (set[(size_t)fd / WORD_BITS] >> ((size_t)fd % WORD_BITS)) & 1;
}

struct selector *
selector_new(size_t capacity)
{
	struct selector *s = calloc(1, sizeof(*s));
	size_t min_words = sizeof(fd_set) / sizeof(unsigned long);

	if (s == NULL)
		return NULL;
	s->capacity = capacity;
	/* select() reads at least one fd_set's worth on some systems. */
	s->nwords = (capacity + WORD_BITS - 1) / WORD_BITS;
	if (s->nwords < min_words)
		s->nwords = min_words;
	s->max_fd = -1;
	s->items = calloc(capacity ? capacity : 1, sizeof(*s->items));
	s->want_r = calloc(s->nwords, sizeof(unsigned long));
	s->want_w = calloc(s->nwords, sizeof(unsigned long));
	s->ready_r = calloc(s->nwords, sizeof(unsigned long));
	s->ready_w = calloc(s->nwords, sizeof(unsigned long));
	if (s->items == NULL || s->want_r == NULL || s->want_w == NULL ||
	    s->ready_r == NULL || s->ready_w == NULL) {
		selector_destroy(s);
		return NULL;
	}
	return s;
}

void
selector_destroy(struct selector *s)
{
	if (s == NULL)
		return;
	if (s->items != NULL) {
		for (int fd = s->max_fd; fd >= 0; fd--)
			if (s->items[fd].used)
				selector_unregister(s, fd);
	}
	free(s->items);
	free(s->want_r);
	free(s->want_w);
	free(s->ready_r);
	free(s->ready_w);
	free(s->heap);
	free(s);
}

size_t
selector_capacity(const struct selector *s)
{
	return s->capacity;
}

static bool
valid_fd(const struct selector *s, int fd)
{
	return fd >= 0 && (size_t)fd < s->capacity;
}

static void
apply_interest(struct selector *s, int fd, unsigned interest)
{
	if (interest & SEL_READ)
		bit_set(s->want_r, fd);
	else
		bit_clr(s->want_r, fd);
	if (interest & SEL_WRITE)
		bit_set(s->want_w, fd);
	else
		bit_clr(s->want_w, fd);
	s->items[fd].interest = interest;
}

enum selector_status
selector_register(struct selector *s, int fd, const struct sel_handler *h,
    unsigned interest, void *data)
{
	struct item *it;

	if (!valid_fd(s, fd))
		return SELECTOR_FDTOOBIG;
	it = &s->items[fd];
	if (it->used)
		return SELECTOR_EXISTS;
	it->h = h;
	it->data = data;
	it->used = true;
	apply_interest(s, fd, interest);
	if (fd > s->max_fd)
		s->max_fd = fd;
	return SELECTOR_OK;
}

enum selector_status
selector_unregister(struct selector *s, int fd)
{
	struct item *it;
	const struct sel_handler *h;
	void *data;

	if (!valid_fd(s, fd) || !s->items[fd].used)
		return SELECTOR_NOTREG;
	it = &s->items[fd];
	h = it->h;
	data = it->data;
	apply_interest(s, fd, SEL_NONE);
	/*
	 * Forget this pass's readiness too: if the number is registered
	 * again before the pass reaches it, the new owner must not get
	 * the old one's event (Redis re-checks the same way).
	 */
	bit_clr(s->ready_r, fd);
	bit_clr(s->ready_w, fd);
	it->used = false;
	it->h = NULL;
	it->data = NULL;
	while (s->max_fd >= 0 && !s->items[s->max_fd].used)
		s->max_fd--;
	/* Last: the callback may register this very fd number again. */
	if (h != NULL && h->on_close != NULL)
		h->on_close(s, fd, data);
	return SELECTOR_OK;
}

enum selector_status
selector_set_interest(struct selector *s, int fd, unsigned interest)
{
	if (!valid_fd(s, fd) || !s->items[fd].used)
		return SELECTOR_NOTREG;
	apply_interest(s, fd, interest);
	return SELECTOR_OK;
}

unsigned
selector_interest(const struct selector *s, int fd)
{
	if (!valid_fd(s, fd) || !s->items[fd].used)
		return SEL_NONE;
	return s->items[fd].interest;
}

uint64_t
selector_now_ms(void)
{
	return now_ms();
}

/* Heap of timers ordered by when_ms; heap_idx is 1-based (0: unarmed). */
static void
heap_place(struct selector *s, size_t i, struct sel_timer *t)
{
	s->heap[i] = t;
	t->heap_idx = i + 1;
}

static void
heap_up(struct selector *s, size_t i)
{
	struct sel_timer *t = s->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (s->heap[parent]->when_ms <= t->when_ms)
			break;
		heap_place(s, i, s->heap[parent]);
		i = parent;
	}
	heap_place(s, i, t);
}

static void
heap_down(struct selector *s, size_t i)
{
	struct sel_timer *t = s->heap[i];

	for (;;) {
		size_t child = 2 * i + 1;

		if (child >= s->nheap)
			break;
		if (child + 1 < s->nheap &&
		    s->heap[child + 1]->when_ms < s->heap[child]->when_ms)
			child++;
		if (t->when_ms <= s->heap[child]->when_ms)
			break;
		heap_place(s, i, s->heap[child]);
		i = child;
	}
	heap_place(s, i, t);
}

void
selector_timer_cancel(struct selector *s, struct sel_timer *t)
{
	size_t i;
	struct sel_timer *last;

	if (t->heap_idx == 0)
		return;
	i = t->heap_idx - 1;
	assert(i < s->nheap && s->heap[i] == t);
	t->heap_idx = 0;
	last = s->heap[--s->nheap];
	if (last == t)
		return;
	heap_place(s, i, last);
	heap_down(s, i);
	heap_up(s, last->heap_idx - 1);
}

enum selector_status
selector_timer_arm(struct selector *s, struct sel_timer *t, uint64_t ms,
    void (*fn)(struct selector *, void *), void *data)
{
	selector_timer_cancel(s, t);
	if (s->nheap == s->heap_cap) {
		size_t cap = s->heap_cap ? s->heap_cap * 2 : 64;
		struct sel_timer **heap;

		/* NOLINTNEXTLINE(bugprone-sizeof-expression): pointers meant */
		heap = realloc(s->heap, cap * sizeof(*heap));
		if (heap == NULL)
			return SELECTOR_ENOMEM;
		s->heap = heap;
		s->heap_cap = cap;
	}
	t->when_ms = selector_now_ms() + ms;
	t->fn = fn;
	t->data = data;
	heap_place(s, s->nheap++, t);
	heap_up(s, s->nheap - 1);
	return SELECTOR_OK;
}

bool
selector_timer_armed(const struct sel_timer *t)
{
	return t->heap_idx != 0;
}

/*
 * Runs the timers due now.  At most as many as were armed on entry, so
 * a callback that re-arms itself for 0 ms waits for the next pass.
 */
static void
run_timers(struct selector *s)
{
	uint64_t now = selector_now_ms();
	size_t budget = s->nheap;

	while (budget-- > 0 && s->nheap > 0 && s->heap[0]->when_ms <= now) {
		struct sel_timer *t = s->heap[0];

		selector_timer_cancel(s, t);
		t->fn(s, t->data);
	}
}

static struct timeval *
wait_time(struct selector *s, int max_wait_ms, struct timeval *tv)
{
	int64_t ms = max_wait_ms;

	if (s->nheap > 0) {
		uint64_t now = selector_now_ms();
		uint64_t when = s->heap[0]->when_ms;
		int64_t due = when > now ? (int64_t)(when - now) : 0;

		if (ms < 0 || due < ms)
			ms = due;
	}
	if (ms < 0)
		return NULL;
	tv->tv_sec = (time_t)(ms / 1000);
	tv->tv_usec = (suseconds_t)(ms % 1000) * 1000;
	return tv;
}

/*
 * Calls fd's callback for one readiness kind, if fd is still ready
 * (selector_unregister clears it) and still wants it.
 */
static void
fire(struct selector *s, int fd, const unsigned long *ready, unsigned kind)
{
	struct item *it = &s->items[fd];

	if (!bit_isset(ready, fd) || !it->used || !(it->interest & kind))
		return;
	if (kind == SEL_READ && it->h->on_read != NULL)
		it->h->on_read(s, fd, it->data);
	else if (kind == SEL_WRITE && it->h->on_write != NULL)
		it->h->on_write(s, fd, it->data);
}

enum selector_status
selector_poll(struct selector *s, int max_wait_ms)
{
	struct timeval tv, *tvp;
	int nfds = s->max_fd + 1;
	size_t words = ((size_t)nfds + WORD_BITS - 1) / WORD_BITS;
	int n;

	tvp = wait_time(s, max_wait_ms, &tv);
	memcpy(s->ready_r, s->want_r, words * sizeof(unsigned long));
	memcpy(s->ready_w, s->want_w, words * sizeof(unsigned long));
	n = select(nfds, (fd_set *)(void *)s->ready_r,
	    (fd_set *)(void *)s->ready_w, NULL, tvp);
	if (n < 0) {
		if (errno == EINTR)
			return SELECTOR_OK;
		return SELECTOR_IO;
	}
	for (size_t w = 0; n > 0 && w < words; w++) {
		unsigned long any = s->ready_r[w] | s->ready_w[w];

		while (any != 0) {
			unsigned bit = (unsigned)__builtin_ctzl(any);
			int fd = (int)(w * WORD_BITS + bit);

			any &= any - 1;
			fire(s, fd, s->ready_r, SEL_READ);
			fire(s, fd, s->ready_w, SEL_WRITE);
		}
	}
	run_timers(s);
	return SELECTOR_OK;
}

const char *
selector_strerror(enum selector_status st)
{
	switch (st) {
	case SELECTOR_OK:
		return "success";
	case SELECTOR_ENOMEM:
		return "out of memory";
	case SELECTOR_FDTOOBIG:
		return "descriptor above the reactor's capacity";
	case SELECTOR_EXISTS:
		return "descriptor already registered";
	case SELECTOR_NOTREG:
		return "descriptor not registered";
	case SELECTOR_IO:
		return "select() failed";
	}
	return "unknown selector status";
}
