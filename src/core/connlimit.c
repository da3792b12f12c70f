/* connlimit.c: per-address connection counts in a chained hash table,
 * hashed with SipHash under a random key so that no client can choose
 * addresses that pile into one chain. */
#include "core/common.h"

#include "core/connlimit.h"

#include <netinet/in.h>
#include <sodium.h>

#define CONNLIMIT_BUCKETS 1024

struct connlimit_entry {
	struct connlimit_entry *next;
	struct connlimit_key key;
	unsigned count;
};

struct connlimit {
	unsigned limit;
	uint8_t hash_key[crypto_shorthash_KEYBYTES];
	struct connlimit_entry *buckets[CONNLIMIT_BUCKETS];
};

struct connlimit *connlimit_new(unsigned limit)
{
	struct connlimit *cl = xcalloc(1, sizeof(*cl));
	cl->limit = limit;
	randombytes_buf(cl->hash_key, sizeof(cl->hash_key));
	return cl;
}

void connlimit_free(struct connlimit **clp)
{
	struct connlimit *cl = *clp;
	if (cl == NULL)
		return;
	for (size_t i = 0; i < CONNLIMIT_BUCKETS; i++) {
		while (cl->buckets[i] != NULL) {
			struct connlimit_entry *e = cl->buckets[i];
			cl->buckets[i] = e->next;
			free(e);
		}
	}
	free(cl);
	*clp = NULL;
}

void connlimit_key_of(const struct sockaddr *sa, struct connlimit_key *key_r)
{
	memset(key_r, 0, sizeof(*key_r));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		memcpy(key_r->bytes, &in->sin_addr, 4);
		key_r->len = 4;
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 =
			(const struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			memcpy(key_r->bytes, in6->sin6_addr.s6_addr + 12, 4);
			key_r->len = 4;
		} else {
			memcpy(key_r->bytes, in6->sin6_addr.s6_addr, 8);
			key_r->len = 8;
		}
	}
}

static struct connlimit_entry **slot(const struct connlimit *cl,
				     const struct connlimit_key *key)
{
	uint8_t h[crypto_shorthash_BYTES];
	crypto_shorthash(h, key->bytes, key->len, cl->hash_key);
	uint64_t v;
	memcpy(&v, h, sizeof(v));
	struct connlimit_entry **p =
		(struct connlimit_entry **)&cl->buckets[v % CONNLIMIT_BUCKETS];
	while (*p != NULL && ((*p)->key.len != key->len ||
			      memcmp((*p)->key.bytes, key->bytes, key->len)))
		p = &(*p)->next;
	return p;
}

bool connlimit_acquire_key(struct connlimit *cl,
			   const struct connlimit_key *key)
{
	if (cl == NULL || cl->limit == 0 || key->len == 0)
		return true;
	struct connlimit_entry **p = slot(cl, key);
	if (*p == NULL) {
		struct connlimit_entry *e = xcalloc(1, sizeof(*e));
		e->key = *key;
		*p = e;
	}
	if ((*p)->count >= cl->limit)
		return false;
	(*p)->count++;
	return true;
}

bool connlimit_acquire(struct connlimit *cl, const struct sockaddr *sa,
		       struct connlimit_key *key_r)
{
	connlimit_key_of(sa, key_r);
	if (cl == NULL || cl->limit == 0)
		key_r->len = 0; /* nothing counted, nothing to release */
	return connlimit_acquire_key(cl, key_r);
}

void connlimit_release(struct connlimit *cl, const struct connlimit_key *key)
{
	if (cl == NULL || cl->limit == 0 || key->len == 0)
		return;
	struct connlimit_entry **p = slot(cl, key);
	DIJK_ASSERT(*p != NULL && (*p)->count > 0);
	if (--(*p)->count == 0) {
		struct connlimit_entry *e = *p;
		*p = e->next;
		free(e);
	}
}

unsigned connlimit_count(const struct connlimit *cl,
			 const struct connlimit_key *key)
{
	if (cl == NULL || key->len == 0)
		return 0;
	struct connlimit_entry **p = slot(cl, key);
	return *p != NULL ? (*p)->count : 0;
}
