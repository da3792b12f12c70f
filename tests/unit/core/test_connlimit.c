/* test_connlimit.c: unit tests for src/core/connlimit.c: counting per
 * IPv4 address and IPv6 /64, the limit, release, and no limit at 0. */
#include "unit.h"

#include "core/connlimit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sodium.h>

static struct sockaddr_storage addr(const char *text)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, text, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
	} else {
		DIJK_ASSERT(inet_pton(AF_INET6, text, &in6->sin6_addr) == 1);
		in6->sin6_family = AF_INET6;
	}
	return ss;
}

static bool take(struct connlimit *cl, const char *text,
		 struct connlimit_key *key_r)
{
	struct sockaddr_storage ss = addr(text);
	return connlimit_acquire(cl, (const struct sockaddr *)&ss, key_r);
}

static void test_limit(void)
{
	/* Each row: an address and whether it gets in, with a limit of 2. */
	static const struct {
		const char *address;
		bool admitted;
	} cases[] = {
		{"192.0.2.1", true},
		{"192.0.2.1", true},
		{"192.0.2.1", false},
		{"::ffff:192.0.2.1", false}, /* the same host */
		{"192.0.2.2", true},
		{"2001:db8::1", true},
		{"2001:db8::2", true},
		{"2001:db8::ffff", false}, /* the same /64 */
		{"2001:db8:0:1::1", true},
		{"127.0.0.1", true}, /* loopback is not exempt */
		{"127.0.0.1", true},
		{"127.0.0.1", false},
	};
	struct connlimit *cl = connlimit_new(2);
	struct connlimit_key keys[ARRAY_SIZE(cases)];
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		CHECK_CASE(take(cl, cases[i].address, &keys[i]) ==
				   cases[i].admitted,
			   i, cases[i].address);
	CHECK(connlimit_count(cl, &keys[0]) == 2);
	/* A release makes room for one more. */
	connlimit_release(cl, &keys[0]);
	CHECK(connlimit_count(cl, &keys[0]) == 1);
	struct connlimit_key again;
	CHECK(take(cl, "192.0.2.1", &again));
	CHECK(!take(cl, "192.0.2.1", &again));
	/* Releasing everything frees the entries. */
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		if (cases[i].admitted && i != 0)
			connlimit_release(cl, &keys[i]);
	connlimit_release(cl, &again);
	CHECK(connlimit_count(cl, &keys[0]) == 0);
	CHECK(connlimit_count(cl, &keys[5]) == 0);
	connlimit_free(&cl);
	CHECK(cl == NULL);
}

static void test_unlimited(void)
{
	struct connlimit *cl = connlimit_new(0);
	struct connlimit_key key;
	for (int i = 0; i < 1000; i++)
		CHECK(take(cl, "192.0.2.1", &key));
	CHECK(key.len == 0); /* nothing to release */
	connlimit_release(cl, &key);
	connlimit_free(&cl);
	/* A NULL table limits nothing. */
	CHECK(take(NULL, "192.0.2.1", &key));
	connlimit_release(NULL, &key);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	test_limit();
	test_unlimited();
	return unit_result("core_connlimit");
}
