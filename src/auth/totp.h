/* totp.h: time-based one-time passwords (RFC 6238 over RFC 4226 HOTP).
 *
 * T0 = 0, a step of TOTP_STEP_SECONDS, HMAC-SHA-1, TOTP_DIGITS digits from
 * the RFC 4226 dynamic truncation. A code is accepted for the current step
 * and one step either side, never for a step at or before the last one
 * accepted (so no code works twice), and never while the account is locked
 * after TOTP_MAX_FAILURES wrong codes. Pure functions over a caller-given
 * clock: no I/O, no static state beyond liboath's one-time initialisation. */
#ifndef DIJK_TOTP_H
#define DIJK_TOTP_H

#include "core/common.h"

#include <time.h>

#define TOTP_STEP_SECONDS 30
#define TOTP_DIGITS	  6
/* Steps accepted either side of the current one. */
#define TOTP_WINDOW 1
/* RFC 4226 R6 recommends 160 bits. */
#define TOTP_SECRET_SIZE 20
/* Wrong codes in a row before the lock, and how long it lasts. */
#define TOTP_MAX_FAILURES  5
#define TOTP_LOCK_SECONDS  (15 * 60)
#define TOTP_MAX_CODE_SIZE 8

/* What the store keeps for an account besides the secret. */
struct totp_state {
	uint64_t last_step; /* last step accepted; 0: none yet */
	unsigned failures;  /* wrong codes since the last good one */
	time_t locked_until;
};

enum totp_result {
	TOTP_OK,
	TOTP_WRONG, /* also a replayed code: the caller cannot tell */
	TOTP_LOCKED,
};

/* Initialises liboath; call once per process before the others. */
int totp_init(void);

/* The step of a Unix time. */
uint64_t totp_step(time_t now);

/* The HOTP value of key at counter step with digits (6 to 8) digits into
 * out (digits + 1 bytes, NUL-terminated). Returns 0 or -1. */
int totp_code(struct slice key, uint64_t step, unsigned digits, char *out);

/* Checks a code typed by a user against key at time now, and updates
 * *state: the accepted step on success, the failure count and lock on a
 * wrong code. code is compared in constant time; any byte that is not a
 * digit makes it wrong. The caller stores *state afterwards whatever the
 * result. */
enum totp_result totp_check(struct slice key, struct totp_state *state,
			    time_t now, struct slice code);

/* Counts a failure of another second factor (a wrong recovery code)
 * towards the same lock; TOTP_LOCKED when the account is locked now. */
enum totp_result totp_fail(struct totp_state *state, time_t now);
/* Whether the account is locked at now. */
bool totp_locked(const struct totp_state *state, time_t now);

#endif
