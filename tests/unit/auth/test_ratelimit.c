/* test_ratelimit.c: unit tests for src/auth/ratelimit.c: lock windows
 * per pair, address and username, the owner's way in during an attack,
 * decay, IPv6 prefixes, and bounded memory. Each scenario is a table of
 * steps run against a fresh table with a fixed key. */
#include "unit.h"

#include "auth/ratelimit.h"

#include <sodium.h>

enum action {
	TRY,	 /* ratelimit_attempt: expect admitted (and wait, if refused) */
	SUCCEED, /* ratelimit_success */
};

struct step {
	int64_t t_ms;
	enum action action;
	const char *user;
	const char *remote;
	bool admitted;
	int64_t wait_ms; /* for a refusal; -1: any */
};

#define S(n) ((int64_t)(n)*1000)

static void run(const char *name, const struct step *steps, size_t count)
{
	uint8_t key[RATELIMIT_KEY_SIZE] = {1, 2, 3};
	struct ratelimit *rl = ratelimit_new(1024, key);
	for (size_t i = 0; i < count; i++) {
		const struct step *s = &steps[i];
		char what[200];
		snprintf(what, sizeof(what), "%s: %s from %s at %lld ms", name,
			 s->user, s->remote, (long long)s->t_ms);
		if (s->action == SUCCEED) {
			ratelimit_success(rl, slice_cstr(s->user), s->remote,
					  s->t_ms);
			continue;
		}
		int64_t wait = -2;
		bool admitted = ratelimit_attempt(rl, slice_cstr(s->user),
						  s->remote, s->t_ms, &wait);
		CHECK_CASE(admitted == s->admitted, i, what);
		if (!s->admitted && s->wait_ms >= 0)
			CHECK_CASE(wait == s->wait_ms, i, what);
		if (!s->admitted && s->wait_ms >= 0 && wait != s->wait_ms)
			fprintf(stderr, "waited %lld\n", (long long)wait);
		if (s->admitted)
			CHECK_CASE(wait == 0, i, what);
	}
	ratelimit_free(&rl);
	CHECK(rl == NULL);
}

#define A "192.0.2.1"
#define B "198.51.100.7"

/* One address guessing one account: 3 free failures, then 2 s, 4 s, 8 s;
 * another address is not affected; a success from the owner's address
 * clears only its own pair. */
static const struct step pair_steps[] = {
	{0, TRY, "alice@example.test", A, true, 0},
	{10, TRY, "alice@example.test", A, true, 0},
	{20, TRY, "alice@example.test", A, true, 0},
	{30, TRY, "alice@example.test", A, true, 0}, /* 4th: lock 2 s */
	{40, TRY, "alice@example.test", A, false, 1990},
	{40, TRY, "ALICE@Example.TEST", A, false, 1990}, /* same user */
	{50, TRY, "alice@example.test", B, true, 0},	 /* the owner */
	{60, SUCCEED, "alice@example.test", B, false, 0},
	{2029, TRY, "alice@example.test", A, false, 1},
	{2030, TRY, "alice@example.test", A, true, 0}, /* 5th: lock 4 s */
	{6029, TRY, "alice@example.test", A, false, 1},
	{6030, TRY, "alice@example.test", A, true, 0}, /* 6th: lock 8 s */
	{14029, TRY, "alice@example.test", A, false, 1},
	/* Other accounts from A are not locked (the address has 6). */
	{14030, TRY, "bob@example.test", A, true, 0},
};

/* The lock grows to 15 minutes and stays there. From the 10th failure on
 * the username is hot too, so the pair has no free failures left and its
 * window jumps to the cap at once. */
static const struct step cap_steps[] = {
	{0, TRY, "x", A, true, 0},
	{0, TRY, "x", A, true, 0},
	{0, TRY, "x", A, true, 0},
	{0, TRY, "x", A, true, 0},     /* 2 s */
	{S(2), TRY, "x", A, true, 0},  /* 4 s */
	{S(6), TRY, "x", A, true, 0},  /* 8 s */
	{S(14), TRY, "x", A, true, 0}, /* 16 s */
	{S(30), TRY, "x", A, true, 0}, /* 32 s */
	{S(61), TRY, "x", A, false, S(1)},
	{S(62), TRY, "x", A, true, 0},	/* 64 s */
	{S(126), TRY, "x", A, true, 0}, /* 10th: hot, 900 s */
	{S(1025), TRY, "x", A, false, S(1)},
	{S(1026), TRY, "x", A, true, 0}, /* 900 s */
	{S(1026) + 1, TRY, "x", A, false, S(900) - 1},
};

/* One address spraying many usernames: 20 free, then 1 s, 2 s. */
static const struct step address_steps[] = {
	{0, TRY, "u1", A, true, 0},
	{0, TRY, "u2", A, true, 0},
	{0, TRY, "u3", A, true, 0},
	{0, TRY, "u4", A, true, 0},
	{0, TRY, "u5", A, true, 0},
	{0, TRY, "u6", A, true, 0},
	{0, TRY, "u7", A, true, 0},
	{0, TRY, "u8", A, true, 0},
	{0, TRY, "u9", A, true, 0},
	{0, TRY, "u10", A, true, 0},
	{0, TRY, "u11", A, true, 0},
	{0, TRY, "u12", A, true, 0},
	{0, TRY, "u13", A, true, 0},
	{0, TRY, "u14", A, true, 0},
	{0, TRY, "u15", A, true, 0},
	{0, TRY, "u16", A, true, 0},
	{0, TRY, "u17", A, true, 0},
	{0, TRY, "u18", A, true, 0},
	{0, TRY, "u19", A, true, 0},
	{0, TRY, "u20", A, true, 0},
	{0, TRY, "u21", A, true, 0}, /* 21st: lock 1 s */
	{1, TRY, "u22", A, false, 999},
	{1, TRY, "u1", B, true, 0}, /* other addresses go on */
	{1000, TRY, "u22", A, true, 0},
	{1001, TRY, "u23", A, false, 1999},
};

/* Many addresses guessing one account: after 10 failures on it, an
 * address that has failed on it once waits; a fresh address (the owner)
 * is still checked. */
static const struct step hot_steps[] = {
	{0, TRY, "carol", "10.0.0.1", true, 0},
	{0, TRY, "carol", "10.0.0.2", true, 0},
	{0, TRY, "carol", "10.0.0.3", true, 0},
	{0, TRY, "carol", "10.0.0.4", true, 0},
	{0, TRY, "carol", "10.0.0.5", true, 0},
	{0, TRY, "carol", "10.0.0.6", true, 0},
	{0, TRY, "carol", "10.0.0.7", true, 0},
	{0, TRY, "carol", "10.0.0.8", true, 0},
	{0, TRY, "carol", "10.0.0.9", true, 0}, /* 9 on carol: not yet hot */
	{1, TRY, "carol", "10.0.0.1", true, 0}, /* 10: hot; 10.0.0.1 has 2 */
	{2, TRY, "carol", "10.0.0.1", false, 3999},
	{2, TRY, "carol", "10.0.0.2", true, 0}, /* 2 failures: lock 4 s */
	{3, TRY, "carol", "10.0.0.2", false, 3999},
	{3, TRY, "carol", "10.0.0.99", true, 0}, /* the owner, mistyping */
	{4, TRY, "carol", "10.0.0.99", false, 1999},
	{2004, TRY, "carol", "10.0.0.99", true, 0}, /* and getting it right */
	{2004, SUCCEED, "carol", "10.0.0.99", false, 0},
	{2005, TRY, "carol", "10.0.0.99", true, 0},
	/* Other accounts are not hot. */
	{2006, TRY, "dave", "10.0.0.1", true, 0},
	{2006, TRY, "dave", "10.0.0.1", true, 0},
};

/* Quiet time after a lock forgets failures, one per 15 min for pairs. */
static const struct step decay_steps[] = {
	{0, TRY, "erin", A, true, 0},
	{0, TRY, "erin", A, true, 0},
	{0, TRY, "erin", A, true, 0},
	{0, TRY, "erin", A, true, 0},	 /* 4: lock 2 s */
	{S(2), TRY, "erin", A, true, 0}, /* 5: lock 4 s, until 6 s */
	/* 6 s + 30 min: two forgotten, 3 left: this 4th locks 2 s. */
	{S(6 + 1800), TRY, "erin", A, true, 0},
	{S(6 + 1800) + 1, TRY, "erin", A, false, 1999},
	/* Long quiet: everything forgotten, 3 free again. */
	{S(100000), TRY, "erin", A, true, 0},
	{S(100000), TRY, "erin", A, true, 0},
	{S(100000), TRY, "erin", A, true, 0},
	{S(100000) + 1, TRY, "erin", A, true, 0},
	{S(100000) + 2, TRY, "erin", A, false, 1999},
};

/* IPv6 counts by /64; IPv4-mapped addresses are IPv4. */
static const struct step ipv6_steps[] = {
	{0, TRY, "frank", "2001:db8::1", true, 0},
	{0, TRY, "frank", "2001:db8::2", true, 0},
	{0, TRY, "frank", "2001:db8::ffff:3", true, 0},
	{0, TRY, "frank", "2001:db8:0:0:1::4", true, 0},
	{1, TRY, "frank", "2001:db8::5", false, 1999},
	{1, TRY, "frank", "2001:db8:0:1::1", true, 0}, /* another /64 */
	{1, TRY, "grace", "::ffff:192.0.2.9", true, 0},
	{1, TRY, "grace", "192.0.2.9", true, 0},
	{1, TRY, "grace", "::ffff:192.0.2.9", true, 0},
	{1, TRY, "grace", "192.0.2.9", true, 0},
	{2, TRY, "grace", "::ffff:192.0.2.9", false, 1999},
};

static void test_scenarios(void)
{
	run("pair", pair_steps, ARRAY_SIZE(pair_steps));
	run("cap", cap_steps, ARRAY_SIZE(cap_steps));
	run("address", address_steps, ARRAY_SIZE(address_steps));
	run("hot", hot_steps, ARRAY_SIZE(hot_steps));
	run("decay", decay_steps, ARRAY_SIZE(decay_steps));
	run("ipv6", ipv6_steps, ARRAY_SIZE(ipv6_steps));
}

/* A flood of distinct usernames from distinct addresses fills a small
 * table but never grows it, and does not push out an address under a
 * long lock. */
static void test_bounded(void)
{
	uint8_t key[RATELIMIT_KEY_SIZE];
	randombytes_buf(key, sizeof(key));
	struct ratelimit *rl = ratelimit_new(64, key);
	int64_t now = 0;
	/* Lock the address: 21 usernames. */
	for (int i = 0; i < 21; i++) {
		char user[32];
		snprintf(user, sizeof(user), "victim%d", i);
		CHECK(ratelimit_attempt(rl, slice_cstr(user), A, now, NULL));
	}
	CHECK(!ratelimit_attempt(rl, slice_cstr("anyone"), A, now, NULL));
	for (int i = 0; i < 10000; i++) {
		char user[32], remote[32];
		snprintf(user, sizeof(user), "user%d", i);
		snprintf(remote, sizeof(remote), "10.%d.%d.%d", i >> 16,
			 (i >> 8) & 255, i & 255);
		CHECK(ratelimit_attempt(rl, slice_cstr(user), remote, now,
					NULL));
		if (ratelimit_used(rl) > 64)
			break;
	}
	CHECK(ratelimit_used(rl) <= 64);
	int64_t wait = 0;
	CHECK(!ratelimit_attempt(rl, slice_cstr("anyone"), A, now, &wait));
	CHECK(wait > 0);
	ratelimit_free(&rl);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	test_scenarios();
	test_bounded();
	return unit_result("auth_ratelimit");
}
