/*
 * The password-check queue (verify.h).  One FIFO for the whole process:
 * a check is answered in the order it came, whatever protocol sent it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "verify.h"
#include "wipe.h"

struct verify {
	struct verify *next;
	struct users *users;
	verify_done_fn *done;
	void *owner;			/* NULL once cancelled */
	bool hopeless;			/* longer than any stored password */
	char name[USER_NAME_MAX + 1];
	char password[PASSWORD_MAX + 1];
};

static struct verify *queue_head, **queue_tail = &queue_head;

struct verify *
verify_submit(struct users *u, const char *name, char *password,
    verify_done_fn *done, void *owner)
{
	size_t len = strlen(password);
	struct verify *v = calloc(1, sizeof(*v));

	if (v != NULL) {
		v->users = u;
		v->done = done;
		v->owner = owner;
		v->hopeless = len > PASSWORD_MAX;
		if (!v->hopeless)
			memcpy(v->password, password, len + 1);
		/* A name too long to be anybody's checks as unknown. */
		if (strlen(name) <= USER_NAME_MAX)
			snprintf(v->name, sizeof(v->name), "%s", name);
		*queue_tail = v;
		queue_tail = &v->next;
	}
	wipe(password, len);
	return v;
}

void
verify_cancel(struct verify *v)
{
	if (v != NULL) {
		v->owner = NULL;
		wipe(v->password, sizeof(v->password));
	}
}

static struct verify *
dequeue(void)
{
	struct verify *v = queue_head;

	queue_head = v->next;
	if (queue_head == NULL)
		queue_tail = &queue_head;
	return v;
}

/* A check the login cache answers, without crypt(3). */
static bool
cached(const struct verify *v)
{
	return v->name[0] != '\0' &&
	    users_verify_cached(v->users, v->name, v->password);
}

void
verify_run(void)
{
	int budget = LOGINS_PER_PASS;

	while (queue_head != NULL && budget > 0) {
		struct verify *v = queue_head;
		bool checkable = v->owner != NULL && !v->hopeless;
		bool ok = checkable && cached(v);
		bool needs_crypt = checkable && !ok;

		if (needs_crypt && budget < LOGINS_PER_PASS)
			break;	/* a crypt(3) waits for a pass of its own */
		dequeue();
		budget -= needs_crypt ? LOGINS_PER_PASS : 1;
		if (needs_crypt)
			ok = users_verify(v->users, v->name, v->password) &&
			    v->name[0] != '\0';
		if (v->owner != NULL)
			v->done(v->owner, ok);
		wipe(v->password, sizeof(v->password));
		free(v);
	}
}

bool
verify_waiting(void)
{
	return queue_head != NULL;
}
