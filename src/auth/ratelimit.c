/* ratelimit.c: failed-login counters with growing lock windows.
 *
 * The policy. Every admitted password check counts as a failure at once
 * (and is taken back when the password holds), in three counters:
 *
 * - per (username, address): 3 free failures, then the address is locked
 *   out of that username for 2 s, 4 s, 8 s ... up to 15 min after each
 *   further failure. This is what stops one address guessing one account.
 * - per address (IPv6 by /64): 20 free failures, then 1 s, 2 s ... up to
 *   15 min for every username. This stops one address trying one password
 *   on many accounts, and is what an address sees when it spreads its
 *   guesses over usernames.
 * - per username: never locks anything by itself. Once a username has
 *   10 or more failures (from anywhere), the free allowance of each
 *   (username, address) pair drops from 3 to 0: any address that has
 *   failed on it even once waits 2 s, 4 s ... before its next check. This
 *   is what slows many addresses guessing one account.
 *
 * Why the owner is not locked out: a lock is always on something the
 * locked party did, an address or a pair, never on the account as such.
 * An attacker, from one address or many, only ever locks the addresses
 * it uses. The owner coming from an address with no failures on the
 * account has their password checked; even on a hot account, their own
 * typing error costs them seconds, growing only with their own failures.
 * The price is that an attacker with many addresses gets a few checks per
 * address; that is the trade dijk makes, against letting any stranger
 * lock any account.
 *
 * During a lock nothing is counted: a refused attempt neither extends
 * the lock nor reaches the password. Counts decay after quiet time: once
 * a lock is over, each further quiet period (5 min for addresses, 15 min
 * for pairs and usernames) forgets one failure.
 *
 * Memory: a fixed table of entries found by a keyed hash (BLAKE2b, key
 * chosen by the caller: random in the server) with linear probing over a
 * short window. A new entry takes a free slot in its window, or else the
 * slot that would be forgotten soonest, so entries under a long lock are
 * the last to go. */
#include "core/common.h"

#include "auth/ratelimit.h"

#include <arpa/inet.h>
#include <sodium.h>

/* Slots looked at for one key: bounds the work of every call. */
#define RATELIMIT_PROBE	       16
#define RATELIMIT_MIN_CAPACITY 64
#define RATELIMIT_HASH_SIZE    16
/* A failure count this high is as good as infinite (and the shift of a
 * window never overflows). */
#define RATELIMIT_MAX_FAILURES 1000000u

enum kind { KIND_PAIR, KIND_ADDRESS, KIND_ACCOUNT, KIND_COUNT };

struct policy {
	unsigned free;	 /* failures before the first lock */
	int64_t base_ms; /* the first lock; each further failure doubles it */
	int64_t max_ms;
	int64_t decay_ms; /* quiet time after a lock that forgets a failure */
};

#define SECONDS(n) ((int64_t)(n)*1000)

static const struct policy policies[KIND_COUNT] = {
	[KIND_PAIR] = {3, SECONDS(2), SECONDS(15 * 60), SECONDS(15 * 60)},
	[KIND_ADDRESS] = {20, SECONDS(1), SECONDS(15 * 60), SECONDS(5 * 60)},
	/* Never locks: see the top of the file. */
	[KIND_ACCOUNT] = {UINT32_MAX, 0, 0, SECONDS(15 * 60)},
};
/* A username with this many failures is under attack: its pairs get no
 * free failures. */
#define RATELIMIT_ACCOUNT_HOT	10
#define RATELIMIT_PAIR_FREE_HOT 0

struct entry {
	uint8_t hash[RATELIMIT_HASH_SIZE];
	uint32_t failures; /* 0: the slot is free */
	uint8_t kind;
	int64_t last_ms;  /* of the last counted failure */
	int64_t until_ms; /* the end of the lock (<= last_ms: none) */
};

struct ratelimit {
	struct entry *entries;
	size_t mask;
	size_t used;
	uint8_t key[RATELIMIT_KEY_SIZE];
};

struct ratelimit *ratelimit_new(size_t capacity,
				const uint8_t key[RATELIMIT_KEY_SIZE])
{
	size_t n = RATELIMIT_MIN_CAPACITY;
	while (n < capacity && n < (SIZE_MAX >> 2) / sizeof(struct entry))
		n <<= 1;
	struct ratelimit *rl = xcalloc(1, sizeof(*rl));
	rl->entries = xcalloc(n, sizeof(struct entry));
	rl->mask = n - 1;
	memcpy(rl->key, key, RATELIMIT_KEY_SIZE);
	return rl;
}

void ratelimit_free(struct ratelimit **rl)
{
	if (*rl == NULL)
		return;
	sodium_memzero((*rl)->key, sizeof((*rl)->key));
	free((*rl)->entries);
	free(*rl);
	*rl = NULL;
}

size_t ratelimit_used(const struct ratelimit *rl)
{
	return rl->used;
}

/* The bytes an address counts by: 4 for IPv4 (also when IPv4-mapped),
 * the first 8 (the /64) for IPv6, else the text itself. */
static struct slice address_bytes(const char *remote, uint8_t buf[16])
{
	struct in_addr a4;
	struct in6_addr a6;
	if (inet_pton(AF_INET, remote, &a4) == 1) {
		memcpy(buf, &a4, 4);
		return slice_make(buf, 4);
	}
	if (inet_pton(AF_INET6, remote, &a6) == 1) {
		if (IN6_IS_ADDR_V4MAPPED(&a6)) {
			memcpy(buf, a6.s6_addr + 12, 4);
			return slice_make(buf, 4);
		}
		memcpy(buf, a6.s6_addr, 8);
		return slice_make(buf, 8);
	}
	return slice_cstr(remote);
}

static void hash_field(crypto_generichash_state *st, struct slice field,
		       bool lower)
{
	uint8_t len[4] = {(uint8_t)(field.n >> 24), (uint8_t)(field.n >> 16),
			  (uint8_t)(field.n >> 8), (uint8_t)field.n};
	crypto_generichash_update(st, len, sizeof(len));
	uint8_t chunk[64];
	for (size_t i = 0; i < field.n; i += sizeof(chunk)) {
		size_t n = field.n - i < sizeof(chunk) ? field.n - i
						       : sizeof(chunk);
		for (size_t k = 0; k < n; k++) {
			uint8_t c = field.p[i + k];
			chunk[k] = lower && c >= 'A' && c <= 'Z' ? c + 32 : c;
		}
		crypto_generichash_update(st, chunk, n);
	}
}

static void make_hash(const struct ratelimit *rl, enum kind kind,
		      struct slice username, struct slice address,
		      uint8_t out[RATELIMIT_HASH_SIZE])
{
	crypto_generichash_state st;
	crypto_generichash_init(&st, rl->key, sizeof(rl->key),
				RATELIMIT_HASH_SIZE);
	uint8_t k = (uint8_t)kind;
	crypto_generichash_update(&st, &k, 1);
	if (kind != KIND_ADDRESS)
		hash_field(&st, username, true);
	if (kind != KIND_ACCOUNT)
		hash_field(&st, address, false);
	crypto_generichash_final(&st, out, RATELIMIT_HASH_SIZE);
}

static int64_t lock_window(const struct policy *p, unsigned free,
			   uint32_t failures)
{
	if (failures <= free)
		return 0;
	uint32_t doublings = failures - free - 1;
	if (doublings >= 40)
		return p->max_ms;
	int64_t w = p->base_ms << doublings;
	return w > p->max_ms ? p->max_ms : w;
}

/* The failures still remembered at now, after the decay of quiet time. */
static uint32_t decayed(const struct entry *e, int64_t now_ms)
{
	if (e->failures == 0)
		return 0;
	const struct policy *p = &policies[e->kind];
	int64_t quiet_from =
		e->until_ms > e->last_ms ? e->until_ms : e->last_ms;
	if (now_ms <= quiet_from)
		return e->failures;
	int64_t forgotten = (now_ms - quiet_from) / p->decay_ms;
	return forgotten >= (int64_t)e->failures
		       ? 0
		       : e->failures - (uint32_t)forgotten;
}

/* When the entry will have been forgotten entirely. */
static int64_t forget_at(const struct entry *e)
{
	const struct policy *p = &policies[e->kind];
	int64_t from = e->until_ms > e->last_ms ? e->until_ms : e->last_ms;
	return from + (int64_t)e->failures * p->decay_ms;
}

/* The entry of hash, or NULL when there is none and create is false. A
 * created entry has no failures. */
static struct entry *find(struct ratelimit *rl, enum kind kind,
			  const uint8_t hash[RATELIMIT_HASH_SIZE],
			  int64_t now_ms, bool create)
{
	uint64_t start;
	memcpy(&start, hash, sizeof(start));
	struct entry *free_slot = NULL, *victim = NULL;
	for (size_t i = 0; i < RATELIMIT_PROBE; i++) {
		struct entry *e = &rl->entries[(start + i) & rl->mask];
		if (e->failures != 0 && decayed(e, now_ms) == 0) {
			/* Forgotten: the slot is free again. */
			e->failures = 0;
			rl->used--;
		}
		if (e->failures == 0) {
			if (free_slot == NULL)
				free_slot = e;
			continue;
		}
		if (e->kind == kind &&
		    sodium_memcmp(e->hash, hash, RATELIMIT_HASH_SIZE) == 0)
			return e;
		if (victim == NULL || forget_at(e) < forget_at(victim))
			victim = e;
	}
	if (!create)
		return NULL;
	struct entry *e = free_slot;
	if (e == NULL) {
		e = victim;
		rl->used--;
	}
	memset(e, 0, sizeof(*e));
	memcpy(e->hash, hash, RATELIMIT_HASH_SIZE);
	e->kind = (uint8_t)kind;
	return e;
}

/* Counts one failure on e (created for it: its count may be 0). */
static void count_failure(struct ratelimit *rl, struct entry *e, unsigned free,
			  int64_t now_ms)
{
	uint32_t f = decayed(e, now_ms);
	if (e->failures == 0)
		rl->used++;
	if (f < RATELIMIT_MAX_FAILURES)
		f++;
	e->failures = f;
	e->last_ms = now_ms;
	e->until_ms = now_ms + lock_window(&policies[e->kind], free, f);
}

struct keys {
	uint8_t pair[RATELIMIT_HASH_SIZE];
	uint8_t address[RATELIMIT_HASH_SIZE];
	uint8_t account[RATELIMIT_HASH_SIZE];
};

static void make_keys(const struct ratelimit *rl, struct slice username,
		      const char *remote, struct keys *k)
{
	uint8_t buf[16];
	struct slice address = address_bytes(remote, buf);
	make_hash(rl, KIND_PAIR, username, address, k->pair);
	make_hash(rl, KIND_ADDRESS, username, address, k->address);
	make_hash(rl, KIND_ACCOUNT, username, address, k->account);
}

bool ratelimit_attempt(struct ratelimit *rl, struct slice username,
		       const char *remote, int64_t now_ms, int64_t *wait_ms_r)
{
	struct keys k;
	make_keys(rl, username, remote, &k);
	struct entry *pair = find(rl, KIND_PAIR, k.pair, now_ms, false);
	struct entry *address =
		find(rl, KIND_ADDRESS, k.address, now_ms, false);
	int64_t until = 0;
	if (pair != NULL && pair->until_ms > now_ms)
		until = pair->until_ms;
	if (address != NULL && address->until_ms > until)
		until = address->until_ms;
	if (until > now_ms) {
		if (wait_ms_r != NULL)
			*wait_ms_r = until - now_ms;
		return false;
	}
	struct entry *account = find(rl, KIND_ACCOUNT, k.account, now_ms, true);
	count_failure(rl, account, policies[KIND_ACCOUNT].free, now_ms);
	bool hot = account->failures >= RATELIMIT_ACCOUNT_HOT;
	/* Each find may evict what an earlier one returned: look again. */
	address = find(rl, KIND_ADDRESS, k.address, now_ms, true);
	count_failure(rl, address, policies[KIND_ADDRESS].free, now_ms);
	pair = find(rl, KIND_PAIR, k.pair, now_ms, true);
	count_failure(rl, pair,
		      hot ? RATELIMIT_PAIR_FREE_HOT : policies[KIND_PAIR].free,
		      now_ms);
	if (wait_ms_r != NULL)
		*wait_ms_r = 0;
	return true;
}

/* Takes one counted failure back. */
static void uncount(struct ratelimit *rl, struct entry *e, int64_t now_ms)
{
	if (e == NULL)
		return;
	uint32_t f = decayed(e, now_ms);
	if (f > 0)
		f--;
	if (f == 0) {
		e->failures = 0;
		rl->used--;
		return;
	}
	e->failures = f;
	e->until_ms = e->last_ms + lock_window(&policies[e->kind],
					       policies[e->kind].free, f);
}

void ratelimit_success(struct ratelimit *rl, struct slice username,
		       const char *remote, int64_t now_ms)
{
	struct keys k;
	make_keys(rl, username, remote, &k);
	struct entry *pair = find(rl, KIND_PAIR, k.pair, now_ms, false);
	if (pair != NULL) {
		pair->failures = 0;
		rl->used--;
	}
	uncount(rl, find(rl, KIND_ADDRESS, k.address, now_ms, false), now_ms);
	uncount(rl, find(rl, KIND_ACCOUNT, k.account, now_ms, false), now_ms);
}
