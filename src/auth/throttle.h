/* throttle.h: the auth process's side of brute-force throttling.
 *
 * Wraps the pure counters of ratelimit.h with what they leave out: a
 * random hash key, the clock (monotonic, optionally sped up for tests by
 * auth.test_clock_scale), the tarpit (a timer that holds the reply to a
 * refused attempt for a while, so that a client cannot spin on refusals)
 * and the order of checks: attempts of one username from one address are
 * checked one after the other, never in parallel, so that a burst of
 * them (an attacker's, or a mail client opening five connections at
 * once with the right password) is judged on the outcome of the one
 * before. Everything runs on the auth process's loop thread. */
#ifndef DIJK_THROTTLE_H
#define DIJK_THROTTLE_H

#include "core/common.h"

struct event_base;
struct throttle;

/* How long the reply to a refused attempt waits (real time, never
 * scaled). About what a password check takes, times a few. */
#define THROTTLE_TARPIT_MS 1000

/* What becomes of an attempt: check(job) sends it on to the password
 * check, refuse(job) answers it as a wrong password without one. */
typedef void throttle_callback(void *job);

/* clock_scale: 1 in service; N makes lock windows and decay pass N times
 * faster (tests only). */
struct throttle *throttle_new(struct event_base *base, unsigned clock_scale,
			      throttle_callback *check,
			      throttle_callback *refuse);
/* From now on nothing waits and nothing more is checked: attempts that
 * wait (for the tarpit, or behind another check) are refused at once,
 * and new ones too. For shutdown, before the checks in flight end. */
void throttle_stop(struct throttle *t);
/* Frees (after throttle_stop) and sets *t to NULL. */
void throttle_free(struct throttle **t);

/* An attempt of username from remote (both copied): exactly one of
 * check(job) and refuse(job) is called, once, now or later. A checked
 * attempt counts as a failure until throttle_checked says otherwise. */
void throttle_attempt(struct throttle *t, const char *username,
		      const char *remote, void *job);
/* The check of an attempt passed to check() is over; ok when the
 * password held. Must be called once per check(), with its username and
 * remote. */
void throttle_checked(struct throttle *t, const char *username,
		      const char *remote, bool ok);

#endif
