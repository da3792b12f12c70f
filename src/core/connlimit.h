/* connlimit.h: how many connections each remote address holds open to
 * one worker process, and a limit on it.
 *
 * An address counts by its IPv4 address, or its /64 for IPv6 (one host
 * can have a whole /64). Loopback is not exempt: a limit high enough for
 * local tools is a configuration matter. The count lives in the worker:
 * with several workers per protocol (SO_REUSEPORT spreads connections by
 * a hash), one address may hold up to workers x limit in all. Memory is
 * one small entry per address with open connections. */
#ifndef DIJK_CONNLIMIT_H
#define DIJK_CONNLIMIT_H

#include "core/common.h"

#include <sys/socket.h>

struct connlimit;

/* What a connection was counted under; kept by the session until it ends. */
struct connlimit_key {
	uint8_t bytes[16];
	uint8_t len; /* 0: not counted (no limit, or an unknown family) */
};

/* limit 0: no limit (nothing is counted). The functions below also take
 * a NULL table, which limits nothing. */
struct connlimit *connlimit_new(unsigned limit);
void connlimit_free(struct connlimit **cl);

/* The key of a peer address (len 0 for families other than IPv4/6). */
void connlimit_key_of(const struct sockaddr *sa, struct connlimit_key *key_r);

/* Counts a new connection from sa and returns true, or returns false
 * without counting when its address already holds the limit. *key_r is
 * what to release later (only after a true). */
bool connlimit_acquire(struct connlimit *cl, const struct sockaddr *sa,
		       struct connlimit_key *key_r);
/* Same, for a key already made. */
bool connlimit_acquire_key(struct connlimit *cl,
			   const struct connlimit_key *key);
/* The connection counted under key has ended. A key of len 0 is
 * ignored, so a session may release what it never counted. */
void connlimit_release(struct connlimit *cl, const struct connlimit_key *key);

/* Connections counted for key now. */
unsigned connlimit_count(const struct connlimit *cl,
			 const struct connlimit_key *key);

#endif
