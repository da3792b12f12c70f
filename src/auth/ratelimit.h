/* ratelimit.h: counting failed logins, to slow password guessing.
 *
 * Pure: no I/O, no clock of its own (every call is given "now" in
 * milliseconds of any monotonic clock), bounded memory fixed at creation.
 * One table keeps three kinds of counters: per remote address (an IPv6
 * address counts by its /64), per username tried (normalised like the
 * store's lookup: ASCII lower case), and per (username, address). The
 * username is counted whether or not such an account exists, so nothing
 * here depends on, or tells, which accounts exist. The policy and why it
 * cannot lock an owner out is described atop ratelimit.c. */
#ifndef DIJK_RATELIMIT_H
#define DIJK_RATELIMIT_H

#include "core/common.h"

/* The key of the keyed hash that names entries: random per process, so
 * that nobody can choose usernames or addresses that collide. */
#define RATELIMIT_KEY_SIZE 32
/* Entries in the auth process's table (48 bytes each). */
#define RATELIMIT_DEFAULT_CAPACITY 65536

struct ratelimit;

/* A table of capacity entries (rounded up to a power of two, at least
 * 64). The caller frees it with ratelimit_free. */
struct ratelimit *ratelimit_new(size_t capacity,
				const uint8_t key[RATELIMIT_KEY_SIZE]);
void ratelimit_free(struct ratelimit **rl);

/* Asks whether a password may be checked now for username from remote
 * (a textual IPv4 or IPv6 address; anything else counts as one text).
 * Returns true when it may: the attempt is then already counted as a
 * failure, so that attempts running in parallel see it, and
 * ratelimit_success takes it back when the password holds. Returns false
 * during a lock window: the caller must refuse without checking the
 * password, with the reply of a wrong one; nothing is counted, and
 * *wait_ms_r (when not NULL) is how long until the lock that applies
 * ends. */
bool ratelimit_attempt(struct ratelimit *rl, struct slice username,
		       const char *remote, int64_t now_ms, int64_t *wait_ms_r);

/* The password of an admitted attempt held: the failure counted for the
 * (username, address) pair is forgotten, the address's and the
 * username's counts go back by the one failure ratelimit_attempt added. */
void ratelimit_success(struct ratelimit *rl, struct slice username,
		       const char *remote, int64_t now_ms);

/* Entries in use (for tests). */
size_t ratelimit_used(const struct ratelimit *rl);

#endif
