/* test_totp.c: unit tests for src/auth/totp.c: the RFC 6238 Appendix B
 * SHA-1 vectors on a fixed clock, the six-digit code as the last six of
 * the eight, the one-step window, replay refused, and the lock after
 * TOTP_MAX_FAILURES wrong codes. */
#include "unit.h"

#include "auth/totp.h"

#include <sodium.h>

/* The Appendix B seed for HMAC-SHA-1: "12345678901234567890". */
static const char seed[] = "12345678901234567890";

static struct slice key(void)
{
	return slice_make(seed, TOTP_SECRET_SIZE);
}

static void test_vectors(void)
{
	static const struct {
		time_t time;
		const char *code;
	} vectors[] = {
		{59, "94287082"},	  {1111111109, "07081804"},
		{1111111111, "14050471"}, {1234567890, "89005924"},
		{2000000000, "69279037"}, {20000000000, "65353130"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(vectors); i++) {
		char eight[9], six[7];
		uint64_t step = totp_step(vectors[i].time);
		CHECK_CASE(totp_code(key(), step, 8, eight) == 0, i,
			   vectors[i].code);
		CHECK_CASE(strcmp(eight, vectors[i].code) == 0, i,
			   vectors[i].code);
		CHECK_CASE(totp_code(key(), step, 6, six) == 0, i,
			   vectors[i].code);
		CHECK_CASE(strcmp(six, vectors[i].code + 2) == 0, i,
			   vectors[i].code);
		/* And the checker takes it on that clock. */
		struct totp_state st = {0};
		CHECK_CASE(totp_check(key(), &st, vectors[i].time,
				      slice_cstr(vectors[i].code + 2)) ==
				   TOTP_OK,
			   i, vectors[i].code);
		CHECK_CASE(st.last_step == step, i, vectors[i].code);
	}
}

static void test_window_and_replay(void)
{
	const time_t now = 1234567890;
	char before[7], current[7], after[7], far[7];
	uint64_t step = totp_step(now);
	CHECK(totp_code(key(), step - 1, 6, before) == 0);
	CHECK(totp_code(key(), step, 6, current) == 0);
	CHECK(totp_code(key(), step + 1, 6, after) == 0);
	CHECK(totp_code(key(), step + 2, 6, far) == 0);

	struct totp_state st = {0};
	CHECK(totp_check(key(), &st, now, slice_cstr(far)) == TOTP_WRONG);
	CHECK(totp_check(key(), &st, now, slice_cstr(before)) == TOTP_OK);
	CHECK(st.last_step == step - 1);
	CHECK(st.failures == 0);
	/* The same code again, even a second later in the same step. */
	CHECK(totp_check(key(), &st, now + 1, slice_cstr(before)) ==
	      TOTP_WRONG);
	CHECK(totp_check(key(), &st, now, slice_cstr(current)) == TOTP_OK);
	CHECK(totp_check(key(), &st, now, slice_cstr(current)) == TOTP_WRONG);
	CHECK(totp_check(key(), &st, now, slice_cstr(after)) == TOTP_OK);
	CHECK(st.last_step == step + 1);
	/* Once a later step was used, an earlier code is as good as used. */
	struct totp_state late = {.last_step = step + 1};
	CHECK(totp_check(key(), &late, now, slice_cstr(current)) == TOTP_WRONG);
	/* Malformed codes. */
	struct totp_state fresh = {0};
	const char *bad[] = {"", "12345", "1234567", "12a456", " 12345"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct totp_state s = {0};
		CHECK_CASE(totp_check(key(), &s, now, slice_cstr(bad[i])) ==
				   TOTP_WRONG,
			   i, bad[i]);
	}
	CHECK(totp_check(key(), &fresh, now, slice_make(current, 6)) ==
	      TOTP_OK);
}

static void test_lock(void)
{
	const time_t now = 2000000000;
	char good[7];
	CHECK(totp_code(key(), totp_step(now), 6, good) == 0);
	const char *wrong = strcmp(good, "000000") == 0 ? "111111" : "000000";
	struct totp_state st = {0};
	for (int i = 1; i < TOTP_MAX_FAILURES; i++)
		CHECK(totp_check(key(), &st, now, slice_cstr(wrong)) ==
		      TOTP_WRONG);
	CHECK(totp_check(key(), &st, now, slice_cstr(wrong)) == TOTP_LOCKED);
	/* Locked: even the right code is refused, and tells nothing. */
	CHECK(totp_check(key(), &st, now + 1, slice_cstr(good)) == TOTP_LOCKED);
	CHECK(totp_fail(&st, now + 2) == TOTP_LOCKED);
	CHECK(totp_locked(&st, now + TOTP_LOCK_SECONDS - 1));
	/* After the lock, a fresh code works again. */
	time_t later = now + TOTP_LOCK_SECONDS;
	char then[7];
	CHECK(totp_code(key(), totp_step(later), 6, then) == 0);
	CHECK(!totp_locked(&st, later));
	CHECK(totp_check(key(), &st, later, slice_cstr(then)) == TOTP_OK);
	/* Recovery-code failures count towards the same lock. */
	struct totp_state r = {0};
	for (int i = 1; i < TOTP_MAX_FAILURES; i++)
		CHECK(totp_fail(&r, now) == TOTP_WRONG);
	CHECK(totp_fail(&r, now) == TOTP_LOCKED);
	CHECK(totp_check(key(), &r, now, slice_cstr(good)) == TOTP_LOCKED);
}

int main(void)
{
	if (sodium_init() < 0 || totp_init() != 0)
		return 1;
	test_vectors();
	test_window_and_replay();
	test_lock();
	return unit_result("auth_totp");
}
