/*
 * Password checks, a bounded share per reactor pass.  A crypt(3) costs
 * milliseconds of CPU: a storm of logins checked inline, POP3 or MGMT,
 * would stall every session already being served.  A protocol queues
 * the check and pauses its session; the reactor loop calls verify_run()
 * once per pass, which answers up to LOGINS_PER_PASS checks that the
 * login cache knows, or one crypt(3), through each check's callback.
 * Checks the cache knows do not wait behind crypt(3) ones (a flood of
 * wrong passwords), nor the administrator's behind the users'.
 */
#ifndef POP3D_VERIFY_H
#define POP3D_VERIFY_H

#include <stdbool.h>
#include <stddef.h>

#include "users.h"

struct verify;

/* Called from verify_run() with the check's outcome. */
typedef void verify_done_fn(void *owner, bool ok);

/*
 * Queues a check of `password` for user `name` in u ("" or an unknown
 * name fails after a full crypt(3), so the answer's timing tells
 * nothing).  `first`: an administrator's check, whose crypt(3) goes
 * before the users' (MGMT's few sessions and its failure delay bound
 * how many can wait).  The password is copied and the caller's copy
 * wiped.  Returns the check, or NULL when out of memory.
 */
struct verify *verify_submit(struct users *u, const char *name,
    char *password, verify_done_fn *done, void *owner, bool first);

/* The owner goes away: its check is dropped, done is never called. */
void verify_cancel(struct verify *v);

/* Answers the checks this pass has room for, in order within a lane. */
void verify_run(void);

/* True while checks wait: the reactor must not sleep. */
bool verify_waiting(void);

#endif
