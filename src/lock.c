/*
 * The maildrop lock table: a hash table by user name, so that ten
 * thousand live sessions do not make every login scan ten thousand
 * locks.  One table for the process (one thread): the locks outlive
 * any reload of the users file.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "lock.h"

/* Buckets: a power of two, enough for ten thousand sessions. */
#define LOCK_BUCKETS	4096

struct lock {
	struct lock	*next;		/* same bucket */
	void		*holder;
	char		 name[USER_NAME_MAX + 1];
};

static struct lock *buckets[LOCK_BUCKETS];

/* FNV-1a: spreads user names over the buckets. */
static size_t
bucket_of(const char *name)
{
	uint32_t h = 2166136261u;

	for (; *name != '\0'; name++)
		h = (h ^ (unsigned char)*name) * 16777619u;
	return h & (LOCK_BUCKETS - 1);
}

/* The link pointing at name's lock, or at its bucket's end. */
static struct lock **
lock_link(const char *name)
{
	struct lock **pp = &buckets[bucket_of(name)];

	while (*pp != NULL && strcmp((*pp)->name, name) != 0)
		pp = &(*pp)->next;
	return pp;
}

bool
lock_take(const char *name, void *holder)
{
	struct lock **pp, *l;
	size_t n;

	assert(holder != NULL);
	if (name == NULL)
		return false;
	n = strlen(name);
	if (n == 0 || n > USER_NAME_MAX)
		return false;
	pp = lock_link(name);
	if (*pp != NULL)
		return (*pp)->holder == holder;
	if ((l = malloc(sizeof(*l))) == NULL)
		return false;
	memcpy(l->name, name, n + 1);
	l->holder = holder;
	l->next = NULL;
	*pp = l;
	return true;
}

void
lock_release(const char *name, const void *holder)
{
	struct lock **pp, *l;

	if (name == NULL)
		return;
	pp = lock_link(name);
	l = *pp;
	if (l == NULL || l->holder != holder)
		return;
	*pp = l->next;
	free(l);
}

void *
lock_holder(const char *name)
{
	struct lock *const *pp;

	if (name == NULL)
		return NULL;
	pp = lock_link(name);
	return *pp != NULL ? (*pp)->holder : NULL;
}
