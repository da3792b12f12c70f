/* totp.c: RFC 6238 codes with liboath's HOTP, and the rules dijk adds on
 * top: a window of one step either side, no replay, a lock after repeated
 * failures. liboath computes the HMAC and truncation; the window, replay
 * and lock are ours because liboath's validators neither remember the
 * last step nor take a code in constant time. */
#include "core/common.h"

#include "auth/totp.h"

#include <liboath/oath.h>
#include <sodium.h>

int totp_init(void)
{
	return oath_init() == OATH_OK ? 0 : -1;
}

uint64_t totp_step(time_t now)
{
	return now < 0 ? 0 : (uint64_t)now / TOTP_STEP_SECONDS;
}

int totp_code(struct slice key, uint64_t step, unsigned digits, char *out)
{
	if (digits < 6 || digits > 8)
		return -1;
	return oath_hotp_generate((const char *)key.p, key.n, step, digits,
				  false, OATH_HOTP_DYNAMIC_TRUNCATION,
				  out) == OATH_OK
		       ? 0
		       : -1;
}

bool totp_locked(const struct totp_state *state, time_t now)
{
	return state->locked_until > now;
}

enum totp_result totp_fail(struct totp_state *state, time_t now)
{
	if (totp_locked(state, now))
		return TOTP_LOCKED;
	if (++state->failures >= TOTP_MAX_FAILURES) {
		state->failures = 0;
		state->locked_until = now + TOTP_LOCK_SECONDS;
		return TOTP_LOCKED;
	}
	return TOTP_WRONG;
}

enum totp_result totp_check(struct slice key, struct totp_state *state,
			    time_t now, struct slice code)
{
	/* A locked account learns nothing, not even whether the code was
	 * right. */
	if (totp_locked(state, now))
		return TOTP_LOCKED;
	bool shape = code.n == TOTP_DIGITS;
	for (size_t i = 0; shape && i < code.n; i++)
		shape = code.p[i] >= '0' && code.p[i] <= '9';
	uint64_t now_step = totp_step(now), found = 0;
	if (shape) {
		/* Every step of the window is computed and compared, so the
		 * time taken does not depend on which one matched. */
		for (int d = -TOTP_WINDOW; d <= TOTP_WINDOW; d++) {
			if (d < 0 && now_step < (uint64_t)-d)
				continue;
			uint64_t step = now_step + (uint64_t)(int64_t)d;
			char expect[TOTP_MAX_CODE_SIZE + 1];
			if (totp_code(key, step, TOTP_DIGITS, expect) != 0)
				continue;
			bool same =
				sodium_memcmp(expect, code.p, TOTP_DIGITS) == 0;
			sodium_memzero(expect, sizeof(expect));
			/* A step at or before the last one accepted was
			 * used (or passed over) already. When the same
			 * digits are the code of two steps of the window
			 * (one chance in a million), the later step is the
			 * one used up, so that typing them again is refused
			 * (found by fuzz_totp). */
			if (same && step > state->last_step)
				found = step;
		}
	}
	if (found == 0)
		return totp_fail(state, now);
	state->last_step = found;
	state->failures = 0;
	return TOTP_OK;
}
