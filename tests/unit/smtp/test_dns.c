/* test_dns.c: unit tests for the rdata readers of src/smtp/dns.c and the
 * answers that carry them. */
#include "unit.h"

#include "smtp/dns.h"

#include <arpa/inet.h>

#define S(lit) slice_make(lit, sizeof(lit) - 1)

static void test_mx(void)
{
	static const struct {
		const char *in;
		size_t n;
		int rc;
		uint16_t preference;
		const char *name;
	} cases[] = {
		{"\x00\x0a\x02mx\x01"
		 "b\x04test\x00",
		 13, 0, 10, "mx.b.test"},
		{"\x00\x00\x00", 3, 0, 0, ""}, /* null MX */
		{"\xff\xff\x02MX\x04TeSt\x00", 11, 0, 65535, "mx.test"},
		{"\x00\x0a\x02mx", 5, -1, 0, NULL},	    /* no root */
		{"\x00\x0a\x02mx\x00\x00", 7, -1, 0, NULL}, /* trailing */
		{"\x00\x0a\xc0\x0c", 4, -1, 0, NULL},	    /* pointer */
		{"\x00\x0a\x03m.x\x00", 7, -1, 0, NULL},    /* dot */
		{"\x00\x0a\x03m x\x00", 7, -1, 0, NULL},    /* space */
		{"\x00\x0a\x05mx\x00", 6, -1, 0, NULL},	    /* overrun */
		{"\x00", 1, -1, 0, NULL},
		{"\x00\x0a\x01_\x01*\x00", 7, 0, 10, "_.*"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		uint16_t preference = 1;
		char name[DNS_MAX_NAME + 1] = "";
		int rc = dns_rdata_mx(slice_make(cases[i].in, cases[i].n),
				      &preference, name);
		CHECK_CASE(rc == cases[i].rc, i, cases[i].name);
		if (rc == 0) {
			CHECK_CASE(preference == cases[i].preference, i,
				   cases[i].name);
			CHECK_CASE(strcmp(name, cases[i].name) == 0, i, name);
		}
	}
}

static void test_long_name(void)
{
	/* 4 labels of 63 octets: 4 * 63 + 3 dots = 255 characters, one
	 * more than a name can have. */
	uint8_t wire[300];
	size_t n = 0;
	for (int label = 0; label < 4; label++) {
		wire[n++] = 63;
		memset(wire + n, 'a', 63);
		n += 63;
	}
	wire[n++] = 0;
	size_t offset = 0;
	char name[DNS_MAX_NAME + 1];
	CHECK(dns_read_name(slice_make(wire, n), &offset, name) == -1);
	/* 3 labels of 63 and one of 62 fit exactly. */
	wire[3 * 64] = 62;
	wire[3 * 64 + 63] = 0;
	offset = 0;
	CHECK(dns_read_name(slice_make(wire, 3 * 64 + 64), &offset, name) == 0);
	CHECK(strlen(name) == DNS_MAX_NAME);
	CHECK(offset == 3 * 64 + 64);
	/* A label longer than 63 is refused. */
	uint8_t big[80] = {64};
	memset(big + 1, 'a', 64);
	offset = 0;
	CHECK(dns_read_name(slice_make(big, 66), &offset, name) == -1);
}

static void test_txt(void)
{
	static const struct {
		const char *in;
		size_t n;
		int rc;
		const char *text;
	} cases[] = {
		{"\x0bv=spf1 -all", 12, 0, "v=spf1 -all"},
		{"\x03"
		 "abc\x03"
		 "def",
		 8, 0, "abcdef"},
		{"\x00", 1, 0, ""},
		{"", 0, 0, ""},
		{"\x05"
		 "abc",
		 4, -1, NULL},
		{"\x03"
		 "abc\x01",
		 5, -1, NULL},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char out[64];
		size_t len = 99;
		int rc = dns_rdata_txt(slice_make(cases[i].in, cases[i].n), out,
				       &len);
		CHECK_CASE(rc == cases[i].rc, i, cases[i].in);
		if (rc == 0) {
			CHECK_CASE(strcmp(out, cases[i].text) == 0, i, out);
			CHECK_CASE(len == strlen(cases[i].text), i, out);
		}
	}
}

static void test_addresses_and_tlsa(void)
{
	struct in_addr a;
	CHECK(dns_rdata_a(S("\x7f\x00\x00\x02"), &a) == 0);
	CHECK(a.s_addr == htonl(0x7f000002));
	CHECK(dns_rdata_a(S("\x7f\x00\x00"), &a) == -1);
	struct in6_addr a6;
	CHECK(dns_rdata_aaaa(S("\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01"),
			     &a6) == 0);
	char text[INET6_ADDRSTRLEN];
	inet_ntop(AF_INET6, &a6, text, sizeof(text));
	CHECK(strcmp(text, "2001:db8::1") == 0);
	CHECK(dns_rdata_aaaa(S("\x20\x01"), &a6) == -1);
	struct dns_tlsa t;
	CHECK(dns_rdata_tlsa(S("\x03\x01\x01\xaa\xbb"), &t) == 0);
	CHECK(t.usage == 3 && t.selector == 1 && t.matching == 1);
	CHECK(t.data.n == 2 && t.data.p[0] == 0xaa && t.data.p[1] == 0xbb);
	CHECK(dns_rdata_tlsa(S("\x03\x01\x01"), &t) == -1);
}

static void test_answer(void)
{
	struct slice parts[3] = {S("one"), S(""), S("three")};
	struct dns_answer a;
	CHECK(dns_answer_set(&a, DNS_OK, true, parts, 3) == 0);
	CHECK(a.status == DNS_OK && a.secure && a.count == 3);
	CHECK(a.rdata[0].n == 3 && memcmp(a.rdata[0].p, "one", 3) == 0);
	CHECK(a.rdata[1].n == 0);
	CHECK(a.rdata[2].n == 5 && memcmp(a.rdata[2].p, "three", 5) == 0);
	dns_answer_clear(&a);
	CHECK(a.storage == NULL && a.count == 0);
	/* More records than an answer keeps: the rest are dropped. */
	struct slice many[DNS_MAX_RECORDS + 5];
	for (size_t i = 0; i < ARRAY_SIZE(many); i++)
		many[i] = S("x");
	CHECK(dns_answer_set(&a, DNS_OK, false, many, ARRAY_SIZE(many)) == 0);
	CHECK(a.count == DNS_MAX_RECORDS);
	dns_answer_clear(&a);
}

int main(void)
{
	test_mx();
	test_long_name();
	test_txt();
	test_addresses_and_tlsa();
	test_answer();
	return unit_result("smtp_dns");
}
