/* throttle.h: the auth process's side of brute-force throttling.
 *
 * Wraps the pure counters of ratelimit.h with what they leave out: a
 * random hash key, the clock (monotonic, optionally sped up for tests by
 * auth.test_clock_scale) and the tarpit, a timer that holds the reply to
 * a refused attempt for a while so that a client cannot spin on refusals.
 * Everything runs on the auth process's loop thread. */
#ifndef DIJK_THROTTLE_H
#define DIJK_THROTTLE_H

#include "core/common.h"

struct event_base;
struct throttle;

/* How long the reply to a refused attempt waits (real time, never
 * scaled). About what a password check takes, times a few. */
#define THROTTLE_TARPIT_MS 1000

/* clock_scale: 1 in service; N makes lock windows and decay pass N times
 * faster (tests only). */
struct throttle *throttle_new(struct event_base *base, unsigned clock_scale);
/* Runs the callbacks of pending tarpits at once (their replies go out or
 * are dropped with their connections), then frees. Sets *t to NULL. */
void throttle_free(struct throttle **t);

/* Whether the password of username from remote may be checked now (see
 * ratelimit_attempt: an admitted attempt counts as a failure until
 * throttle_succeeded). */
bool throttle_admit(struct throttle *t, const char *username,
		    const char *remote);
/* The password of an admitted attempt held. */
void throttle_succeeded(struct throttle *t, const char *username,
			const char *remote);
/* Calls done(arg) on the loop after THROTTLE_TARPIT_MS. */
void throttle_delay(struct throttle *t, void (*done)(void *arg), void *arg);

#endif
