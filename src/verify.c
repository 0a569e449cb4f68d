/*
 * The password-check queue (verify.h).  Three lanes, each in the order
 * checks came: those the login cache knew at submission, the
 * administrator's crypt(3) checks, the users' crypt(3) checks.  A
 * flood of wrong passwords then holds up only the crypt(3) checks
 * behind it, never a returning user or the administrator.
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
	bool hopeless;		/* longer than any stored password */
	bool first;		/* an administrator's check */
	char name[USER_NAME_MAX + 1];
	char password[PASSWORD_MAX + 1];
};

enum lane_id { LANE_CACHED, LANE_FIRST, LANE_IN_TURN, LANE_COUNT };

static struct lane {
	struct verify *head, **tail;
} lanes[LANE_COUNT] = {
	[LANE_CACHED] = { NULL, &lanes[LANE_CACHED].head },
	[LANE_FIRST] = { NULL, &lanes[LANE_FIRST].head },
	[LANE_IN_TURN] = { NULL, &lanes[LANE_IN_TURN].head },
};

/*
 * The last pass answered cached checks while a crypt(3) waited: the
 * crypt(3) goes next.
 */
static bool cached_went_last;

static void
enqueue(enum lane_id l, struct verify *v)
{
	v->next = NULL;
	*lanes[l].tail = v;
	lanes[l].tail = &v->next;
}

static struct verify *
dequeue(enum lane_id l)
{
	struct verify *v = lanes[l].head;

	lanes[l].head = v->next;
	if (lanes[l].head == NULL)
		lanes[l].tail = &lanes[l].head;
	return v;
}

/* A check the login cache answers, without crypt(3). */
static bool
cached(const struct verify *v)
{
	return v->owner != NULL && !v->hopeless && v->name[0] != '\0' &&
	    users_verify_cached(v->users, v->name, v->password);
}

static enum lane_id
crypt_lane(const struct verify *v)
{
	return v->first ? LANE_FIRST : LANE_IN_TURN;
}

struct verify *
verify_submit(struct users *u, const char *name, char *password,
    verify_done_fn *done, void *owner, bool first)
{
	size_t len = strlen(password);
	struct verify *v = calloc(1, sizeof(*v));

	if (v != NULL) {
		v->users = u;
		v->done = done;
		v->owner = owner;
		v->first = first;
		v->hopeless = len > PASSWORD_MAX;
		if (!v->hopeless)
			memcpy(v->password, password, len + 1);
		/* A name too long to be anybody's checks as unknown. */
		if (strlen(name) <= USER_NAME_MAX)
			snprintf(v->name, sizeof(v->name), "%s", name);
		enqueue(cached(v) ? LANE_CACHED : crypt_lane(v), v);
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

static void
answer(struct verify *v, bool ok)
{
	if (v->owner != NULL)
		v->done(v->owner, ok);
	wipe(v->password, sizeof(v->password));
	free(v);
}

static bool
crypt_waiting(void)
{
	return lanes[LANE_FIRST].head != NULL ||
	    lanes[LANE_IN_TURN].head != NULL;
}

/*
 * Answers up to budget checks of the cached lane; returns what is
 * left.  One the cache has forgotten since (expired, a new password)
 * joins its crypt(3) lane.
 */
static int
answer_cached(int budget)
{
	while (lanes[LANE_CACHED].head != NULL && budget > 0) {
		struct verify *v = dequeue(LANE_CACHED);

		budget--;
		if (v->owner != NULL && !cached(v))
			enqueue(crypt_lane(v), v);
		else
			answer(v, v->owner != NULL);
	}
	return budget;
}

/*
 * One crypt(3), the administrator's lane first, when the whole budget
 * is left: cancelled checks before it cost a unit each and put it off
 * to the next pass.
 */
static void
answer_crypt(int budget)
{
	while (crypt_waiting() && budget > 0) {
		enum lane_id l = lanes[LANE_FIRST].head != NULL ?
		    LANE_FIRST : LANE_IN_TURN;
		struct verify *v = lanes[l].head;
		bool ok;

		if (v->owner != NULL && !v->hopeless) {
			if (budget < LOGINS_PER_PASS)
				return;
			(void)dequeue(l);
			/* crypt(3) even for "": a failure takes as long. */
			ok = users_verify(v->users, v->name, v->password);
			answer(v, ok && v->name[0] != '\0');
			return;
		}
		(void)dequeue(l);
		answer(v, false);
		budget--;
	}
}

void
verify_run(void)
{
	int budget = LOGINS_PER_PASS;

	/* When both kinds wait, passes take turns: neither starves. */
	if (!cached_went_last || !crypt_waiting())
		budget = answer_cached(budget);
	cached_went_last = budget < LOGINS_PER_PASS && crypt_waiting();
	answer_crypt(budget);
}

bool
verify_waiting(void)
{
	return lanes[LANE_CACHED].head != NULL || crypt_waiting();
}
