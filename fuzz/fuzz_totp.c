/* fuzz_totp.c: the second factor's check (auth/totp.h) over arbitrary
 * codes, clocks and stored states, with the rules that must hold whatever
 * comes: a code never works twice, nothing works while locked, a failure
 * never unlocks, and the right code of the current step works on a fresh
 * state (so the target sees the accepting path too). */
#include "core/common.h"

#include "auth/totp.h"

#include <stdlib.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (totp_init() != 0)
		abort();
	return 0;
}

static uint64_t take_u64(const uint8_t **p, size_t *n)
{
	uint64_t v = 0;
	for (int i = 0; i < 8 && *n > 0; i++, (*p)++, (*n)--)
		v = v << 8 | **p;
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < TOTP_SECRET_SIZE + 24)
		return 0;
	struct slice key = slice_make(data, TOTP_SECRET_SIZE);
	const uint8_t *p = data + TOTP_SECRET_SIZE;
	size_t n = size - TOTP_SECRET_SIZE;
	struct totp_state st = {0};
	/* Clocks from 1970-01-02 to about 2500 (the state's last step 0
	 * means "none yet", so the first steps of 1970 are not codes). */
	time_t now = (time_t)(86400 + take_u64(&p, &n) % 16725225600ULL);
	st.last_step = take_u64(&p, &n) % (totp_step(now) + 4);
	st.failures = (unsigned)(take_u64(&p, &n) % 16);
	st.locked_until = (time_t)(take_u64(&p, &n) % 16725225600ULL);
	struct slice code = slice_make(p, n);

	struct totp_state before = st;
	bool was_locked = totp_locked(&st, now);
	enum totp_result r = totp_check(key, &st, now, code);
	DIJK_ASSERT(!(was_locked && r == TOTP_OK));
	if (r == TOTP_OK) {
		DIJK_ASSERT(st.last_step > before.last_step);
		DIJK_ASSERT(st.last_step + TOTP_WINDOW >= totp_step(now) &&
			    st.last_step <= totp_step(now) + TOTP_WINDOW);
		/* The same code again is refused. */
		DIJK_ASSERT(totp_check(key, &st, now, code) != TOTP_OK);
	} else {
		DIJK_ASSERT(st.last_step == before.last_step);
		DIJK_ASSERT(!was_locked || totp_locked(&st, now));
	}

	/* The right code of now on a fresh state works once. */
	char right[TOTP_DIGITS + 1];
	if (totp_code(key, totp_step(now), TOTP_DIGITS, right) == 0) {
		struct totp_state fresh = {0};
		DIJK_ASSERT(totp_check(key, &fresh, now, slice_cstr(right)) ==
			    TOTP_OK);
		DIJK_ASSERT(totp_check(key, &fresh, now, slice_cstr(right)) ==
			    TOTP_WRONG);
	}
	return 0;
}
