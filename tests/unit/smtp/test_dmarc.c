/* test_dmarc.c: unit tests for src/smtp/dmarc.c: the record parser, the
 * From domain, Organizational Domains from the public suffix list, and
 * policy discovery with alignment against a resolver answering from a
 * table. */
#include "unit.h"

#include "smtp/dmarc.h"

#include <strings.h>

/* ---- a resolver answering TXT queries from a table ---- */

#define TEMPFAIL "\x01TEMPFAIL"

static const struct {
	const char *name;
	const char *text; /* TEMPFAIL: the query fails */
} zone[] = {
	{"_dmarc.example.com", "v=DMARC1; p=reject; rua=mailto:d@example.com"},
	{"_dmarc.example.co.uk", "v=DMARC1; p=quarantine; sp=reject"},
	{"_dmarc.strict.example", "v=DMARC1; p=reject; adkim=s; aspf=s"},
	{"_dmarc.pct.example", "v=DMARC1; p=reject; pct=20"},
	{"_dmarc.pctq.example", "v=DMARC1; p=quarantine; pct=0"},
	{"_dmarc.two.example", "v=DMARC1; p=reject"},
	{"_dmarc.two.example", "v=DMARC1; p=none"},
	{"_dmarc.temp.example", TEMPFAIL},
	{"_dmarc.bad.example", "v=DMARC1; p=bogus"},
	{"_dmarc.defaulted.example",
	 "v=DMARC1; p=bogus; rua=mailto:r@defaulted.example"},
	{"_dmarc.own.example.com", "v=DMARC1; p=none"},
	{"_dmarc.nosp.example", "v=DMARC1; p=quarantine"},
	{"_dmarc.mixed.example", "some other text"},
	{"_dmarc.mixed.example", "v=spf1 -all"},
	{"_dmarc.mixed.example", "v=DMARC1; p=reject"},
	{"_dmarc.subtemp.example", TEMPFAIL},
	{"_dmarc.a.subtemp.example", "v=DMARC1; p=none"},
	{"_dmarc.long.example",
	 "v=DMARC1;p=reject;"
	 "rua=mailto:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	 "@long.example"},
};

struct table_context {
	unsigned queries;
	char last[DNS_MAX_NAME + 16];
};

static int table_resolve(void *context, const char *name, uint16_t type,
			 struct dns_answer *answer_r)
{
	struct table_context *t = context;
	t->queries++;
	snprintf(t->last, sizeof(t->last), "%s", name);
	static uint8_t storage[DNS_MAX_RECORDS][1024];
	struct slice rdata[DNS_MAX_RECORDS];
	size_t count = 0;
	for (size_t i = 0; i < ARRAY_SIZE(zone); i++) {
		if (strcasecmp(zone[i].name, name) != 0 || type != DNS_TYPE_TXT)
			continue;
		if (strcmp(zone[i].text, TEMPFAIL) == 0) {
			dns_answer_set(answer_r, DNS_TEMPFAIL, false, NULL, 0);
			return -1;
		}
		/* Character-strings of at most 255 bytes. */
		size_t len = strlen(zone[i].text), n = 0;
		for (size_t at = 0; at < len; at += 255) {
			size_t chunk = len - at < 255 ? len - at : 255;
			storage[count][n++] = (uint8_t)chunk;
			memcpy(storage[count] + n, zone[i].text + at, chunk);
			n += chunk;
		}
		rdata[count] = slice_make(storage[count], n);
		count++;
	}
	return dns_answer_set(answer_r, count > 0 ? DNS_OK : DNS_NXDOMAIN,
			      false, rdata, count);
}

/* A resolver that fails without saying so in the status. */
static int silent_failure(void *context, const char *name, uint16_t type,
			  struct dns_answer *answer_r)
{
	(void)context;
	(void)name;
	(void)type;
	memset(answer_r, 0, sizeof(*answer_r));
	return -1;
}

/* ---- records ---- */

static void test_records(void)
{
	static const struct {
		const char *text;
		int ok;
		enum dmarc_policy p, sp;
		bool adkim_strict, aspf_strict;
		unsigned pct;
		bool defaulted;
	} cases[] = {
		{"v=DMARC1; p=none", 1, DMARC_POLICY_NONE, DMARC_POLICY_NONE,
		 false, false, 100, false},
		{"v=DMARC1;p=reject;sp=quarantine;adkim=s;aspf=s;pct=50;"
		 "rua=mailto:a@example.com;ruf=mailto:f@example.com;fo=1:d;"
		 "rf=afrf;ri=3600",
		 1, DMARC_POLICY_REJECT, DMARC_POLICY_QUARANTINE, true, true,
		 50, false},
		{"v=DMARC1; p=quarantine; pct=101", 1, DMARC_POLICY_QUARANTINE,
		 DMARC_POLICY_QUARANTINE, false, false, 100, false},
		{"v=DMARC1; p=quarantine; pct=-1", 1, DMARC_POLICY_QUARANTINE,
		 DMARC_POLICY_QUARANTINE, false, false, 100, false},
		{"v=DMARC1; p=quarantine; pct=0", 1, DMARC_POLICY_QUARANTINE,
		 DMARC_POLICY_QUARANTINE, false, false, 0, false},
		{"v=DMARC1; p=quarantine; adkim=x; aspf=r", 1,
		 DMARC_POLICY_QUARANTINE, DMARC_POLICY_QUARANTINE, false, false,
		 100, false},
		{"v=DMARC1 ; p = reject ;", 1, DMARC_POLICY_REJECT,
		 DMARC_POLICY_REJECT, false, false, 100, false},
		{"v = DMARC1;\tp=reject", 1, DMARC_POLICY_REJECT,
		 DMARC_POLICY_REJECT, false, false, 100, false},
		{"v=DMARC1; p=reject; p=none", 1, DMARC_POLICY_REJECT,
		 DMARC_POLICY_REJECT, false, false, 100, false},
		{"v=DMARC1;;p=reject", 1, DMARC_POLICY_REJECT,
		 DMARC_POLICY_REJECT, false, false, 100, false},
		{"v=DMARC1; p=REJECT; SP=None", 1, DMARC_POLICY_REJECT,
		 DMARC_POLICY_NONE, false, false, 100, false},
		{"v=DMARC1; p=reject; foo=bar; np=none", 1, DMARC_POLICY_REJECT,
		 DMARC_POLICY_REJECT, false, false, 100, false},
		{"v=DMARC1; p=reject; ri=4294967296", 1, DMARC_POLICY_REJECT,
		 DMARC_POLICY_REJECT, false, false, 100, false},
		{"v=DMARC1; p=reject; rua=not a uri", 1, DMARC_POLICY_REJECT,
		 DMARC_POLICY_REJECT, false, false, 100, false},
		{"v=DMARC1; rua=mailto:a@example.com", 1, DMARC_POLICY_NONE,
		 DMARC_POLICY_NONE, false, false, 100, true},
		{"v=DMARC1; p=bogus; rua=mailto:x@example.com!10m", 1,
		 DMARC_POLICY_NONE, DMARC_POLICY_NONE, false, false, 100, true},
		{"v=DMARC1; p=reject; sp=bogus; rua=bad, mailto:x@example.com",
		 1, DMARC_POLICY_NONE, DMARC_POLICY_NONE, false, false, 100,
		 true},
		{"v=DMARC1", 0, 0, 0, false, false, 0, false},
		{"v=DMARC1;", 0, 0, 0, false, false, 0, false},
		{"v=DMARC1; p=bogus", 0, 0, 0, false, false, 0, false},
		{"v=DMARC1; p=reject; sp=bogus", 0, 0, 0, false, false, 0,
		 false},
		{"v=DMARC1; p=bogus; rua=nothing", 0, 0, 0, false, false, 0,
		 false},
		{"v=DMARC1; p=bogus; rua=mailto:", 0, 0, 0, false, false, 0,
		 false},
		{"v=DMARC1; p=bogus; rua=mailto:a@b!x", 0, 0, 0, false, false,
		 0, false},
		{"v=dmarc1; p=none", 0, 0, 0, false, false, 0, false},
		{"p=none; v=DMARC1", 0, 0, 0, false, false, 0, false},
		{"v=DMARC1x; p=none", 0, 0, 0, false, false, 0, false},
		{"v=DMARC2; p=none", 0, 0, 0, false, false, 0, false},
		{" v=DMARC1; p=none", 0, 0, 0, false, false, 0, false},
		{"v=DMARC1; p=reject; garbage", 0, 0, 0, false, false, 0,
		 false},
		{"v=DMARC1; p=reject; 1x=y", 0, 0, 0, false, false, 0, false},
		{"v=DMARC1; p=reject; =y", 0, 0, 0, false, false, 0, false},
		{"v=DMARC1; p=reject; v=DMARC1", 0, 0, 0, false, false, 0,
		 false},
		{"v=DMARC1; p=re\x01ject", 0, 0, 0, false, false, 0, false},
		{"v=DMARC1; p=reject; x=\xc3\xa9", 0, 0, 0, false, false, 0,
		 false},
		{"", 0, 0, 0, false, false, 0, false},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct dmarc_record rec;
		const char *error = NULL;
		int r = dmarc_parse_record(slice_cstr(cases[i].text), &rec,
					   &error);
		CHECK_CASE((r == 0) == (cases[i].ok == 1), i, cases[i].text);
		if (r < 0) {
			CHECK_CASE(error != NULL, i, cases[i].text);
			continue;
		}
		CHECK_CASE(rec.p == cases[i].p && rec.sp == cases[i].sp, i,
			   cases[i].text);
		CHECK_CASE(rec.adkim_strict == cases[i].adkim_strict &&
				   rec.aspf_strict == cases[i].aspf_strict,
			   i, cases[i].text);
		CHECK_CASE(rec.pct == cases[i].pct, i, cases[i].text);
		CHECK_CASE(rec.p_defaulted == cases[i].defaulted, i,
			   cases[i].text);
	}
	/* Reporting tags as written. */
	struct dmarc_record rec;
	const char *error;
	CHECK(dmarc_parse_record(
		      slice_cstr("v=DMARC1; p=none; rua=mailto:a@x.example, "
				 "mailto:b@y.example; ruf=mailto:f@x.example; "
				 "fo=0:1:d:s; rf=afrf; ri=60"),
		      &rec, &error) == 0);
	CHECK(slice_eq_ci(rec.rua, "mailto:a@x.example, mailto:b@y.example"));
	CHECK(slice_eq_ci(rec.ruf, "mailto:f@x.example"));
	CHECK(slice_eq_ci(rec.fo, "0:1:d:s"));
	CHECK(slice_eq_ci(rec.rf, "afrf"));
	CHECK(rec.ri == 60 && !rec.has_sp);
	CHECK(dmarc_parse_record(slice_cstr("v=DMARC1; p=none; fo=2; rf=#"),
				 &rec, &error) == 0 &&
	      rec.fo.n == 0 && rec.rf.n == 0 && rec.ri == 86400);
	CHECK(dmarc_parse_record(slice_make("v=DMARC1; p=none\0", 17), &rec,
				 &error) < 0);

	CHECK(dmarc_is_record(slice_cstr("v=DMARC1")));
	CHECK(dmarc_is_record(slice_cstr("v=DMARC1 ;p=none")));
	CHECK(!dmarc_is_record(slice_cstr("v=DMARC10")));
	CHECK(!dmarc_is_record(slice_cstr("v=spf1")));
	CHECK(strcmp(dmarc_policy_name(DMARC_POLICY_QUARANTINE),
		     "quarantine") == 0);
	CHECK(strcmp(dmarc_status_name(DMARC_TEMPERROR), "temperror") == 0);
}

/* ---- the From domain ---- */

static void test_from(void)
{
	static const struct {
		const char *header;
		enum dmarc_from_status status;
		const char *domain;
	} cases[] = {
		{"From: alice@example.com\r\n\r\n", DMARC_FROM_OK,
		 "example.com"},
		{"From: Alice <alice@Example.COM>\r\n", DMARC_FROM_OK,
		 "example.com"},
		{"From: \"Smith, John\" <j@example.org>\r\n", DMARC_FROM_OK,
		 "example.org"},
		{"From: \"a <b@c.example>\" <j@example.org>\r\n", DMARC_FROM_OK,
		 "example.org"},
		{"From: j@example.org (John, Smith)\r\n", DMARC_FROM_OK,
		 "example.org"},
		{"From: (a (nested) comment) <j@sub.example.org>\r\n",
		 DMARC_FROM_OK, "sub.example.org"},
		{"From:\r\n <j@example.org>\r\n", DMARC_FROM_OK, "example.org"},
		{"From: John\r\n\tSmith <j@example.org>\r\n", DMARC_FROM_OK,
		 "example.org"},
		{"from : j@example.org\r\n", DMARC_FROM_OK, "example.org"},
		{"FROM:j@example.org", DMARC_FROM_OK, "example.org"},
		{"From: \"a@b\"@example.com\r\n", DMARC_FROM_OK, "example.com"},
		{"From: a@example.com.\r\n", DMARC_FROM_OK, "example.com"},
		{"From: a @ example.com\r\n", DMARC_FROM_OK, "example.com"},
		{"From: =?utf-8?q?J=C3=B6rg?= <j@example.de>\r\n",
		 DMARC_FROM_OK, "example.de"},
		{"From: J\xc3\xb6rg <j@example.de>\r\n", DMARC_FROM_OK,
		 "example.de"},
		{"From: a@example.com\n", DMARC_FROM_OK, "example.com"},
		{"Received: from x\r\n\tby y\r\nFrom: a@example.com\r\n"
		 "To: b@example.net\r\n\r\n",
		 DMARC_FROM_OK, "example.com"},
		{"From: john.q.public@mail.example.co.uk\r\n", DMARC_FROM_OK,
		 "mail.example.co.uk"},
		{"To: x@y.example\r\n", DMARC_FROM_MISSING, ""},
		{"", DMARC_FROM_MISSING, ""},
		{"Subject: hi\r\n\r\nFrom: a@b.example\r\n", DMARC_FROM_MISSING,
		 ""},
		{"From-Not: a@b.example\r\n", DMARC_FROM_MISSING, ""},
		{"From a@b.example Mon Jan  1 00:00:00 2024\r\n",
		 DMARC_FROM_MISSING, ""},
		{"X: y\r\n From: a@b.example\r\n", DMARC_FROM_MISSING, ""},
		{"From: a@example.org, b@example.net\r\n", DMARC_FROM_INVALID,
		 ""},
		{"From: a@example.org\r\nFrom: a@example.org\r\n",
		 DMARC_FROM_INVALID, ""},
		{"From: group: a@b.example;\r\n", DMARC_FROM_INVALID, ""},
		{"From: undisclosed:;\r\n", DMARC_FROM_INVALID, ""},
		{"From: a@[192.0.2.1]\r\n", DMARC_FROM_INVALID, ""},
		{"From: <>\r\n", DMARC_FROM_INVALID, ""},
		{"From: \r\n", DMARC_FROM_INVALID, ""},
		{"From:", DMARC_FROM_INVALID, ""},
		{"From:\r\n\r\n", DMARC_FROM_INVALID, ""},
		{"From: alice\r\n", DMARC_FROM_INVALID, ""},
		{"From: @example.com\r\n", DMARC_FROM_INVALID, ""},
		{"From: a@\r\n", DMARC_FROM_INVALID, ""},
		{"From: a@exa mple.com\r\n", DMARC_FROM_INVALID, ""},
		{"From: a@b@example.com\r\n", DMARC_FROM_INVALID, ""},
		{"From: a@ex\xc3\xa4mple.com\r\n", DMARC_FROM_INVALID, ""},
		{"From: a@exam_ple..com\r\n", DMARC_FROM_INVALID, ""},
		{"From: <a@example.com> trailing\r\n", DMARC_FROM_INVALID, ""},
		{"From: <a@example.com\r\n", DMARC_FROM_INVALID, ""},
		{"From: a@example.com>\r\n", DMARC_FROM_INVALID, ""},
		{"From: <@route.example:a@example.com>\r\n", DMARC_FROM_INVALID,
		 ""},
		{"From: Bad (unterminated <a@example.com>\r\n",
		 DMARC_FROM_INVALID, ""},
		{"From: \"unterminated <a@example.com>\r\n", DMARC_FROM_INVALID,
		 ""},
		{"From: paypal.com@x <x@evil.example>\r\n", DMARC_FROM_INVALID,
		 ""},
		{"From: <a@example.com> <b@example.net>\r\n",
		 DMARC_FROM_INVALID, ""},
		{"From: a\x01@example.com\r\n", DMARC_FROM_INVALID, ""},
		{"From: a@example.com\r\n"
		 "Reply-To: b@example.net\r\nfrom: c@example.org\r\n",
		 DMARC_FROM_INVALID, ""},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char domain[DNS_MAX_NAME + 1];
		enum dmarc_from_status s =
			dmarc_from_domain(slice_cstr(cases[i].header), domain);
		CHECK_CASE(s == cases[i].status, i, cases[i].header);
		CHECK_CASE(strcmp(domain, cases[i].domain) == 0, i,
			   cases[i].header);
	}
	/* A NUL in the field. */
	char domain[DNS_MAX_NAME + 1];
	CHECK(dmarc_from_domain(slice_make("From: a\0@example.com\r\n", 22),
				domain) == DMARC_FROM_INVALID);
	/* Labels of 63 and 64 octets. */
	char field[128];
	int n = snprintf(field, sizeof(field), "From: a@%.*s.example\r\n", 63,
			 "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz"
			 "abcdefghijklmnopqrstuvwxyz");
	CHECK(n > 0 && dmarc_from_domain(slice_make(field, (size_t)n),
					 domain) == DMARC_FROM_OK);
	n = snprintf(field, sizeof(field), "From: a@%.*s.example\r\n", 64,
		     "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz"
		     "abcdefghijklmnopqrstuvwxyz");
	CHECK(n > 0 && dmarc_from_domain(slice_make(field, (size_t)n),
					 domain) == DMARC_FROM_INVALID);
	/* An overlong From field. */
	struct buf big;
	buf_init(&big, 1 << 16);
	buf_append_cstr(&big, "From: ");
	for (int i = 0; i < DMARC_MAX_FROM; i++)
		buf_append_cstr(&big, " ");
	buf_append_cstr(&big, "a@example.com\r\n");
	CHECK(dmarc_from_domain(buf_slice(&big), domain) == DMARC_FROM_INVALID);
	buf_free(&big);
}

/* ---- Organizational Domains ---- */

static void test_org_domain(const struct dmarc_psl *psl)
{
	static const struct {
		const char *domain, *org;
	} cases[] = {
		{"example.com", "example.com"},
		{"mail.example.com", "example.com"},
		{"a.b.c.example.com", "example.com"},
		{"MAIL.Example.COM.", "example.com"},
		{"mail.example.co.uk", "example.co.uk"},
		{"example.co.uk", "example.co.uk"},
		{"co.uk", "co.uk"},
		{"com", "com"},
		{"example.test", "example.test"},
		{"x.nosp.example", "nosp.example"},
		{"www.city.kawasaki.jp", "city.kawasaki.jp"},
		{"foo.blogspot.com", "foo.blogspot.com"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char org[DNS_MAX_NAME + 1];
		dmarc_org_domain(psl, cases[i].domain, org);
		CHECK_CASE(strcmp(org, cases[i].org) == 0, i, cases[i].domain);
		if (strcmp(org, cases[i].org) != 0)
			fprintf(stderr, "  got %s\n", org);
	}
}

/* ---- discovery and alignment ---- */

struct dkim_given {
	enum dkim_status status;
	const char *domain;
};

static void test_check(const struct dmarc_psl *psl)
{
	static const struct {
		const char *from;
		enum spf_result spf;
		const char *spf_domain;
		struct dkim_given dkim[2];
		uint32_t sample;
		enum dmarc_status status;
		enum dmarc_policy policy, disposition;
		const char *policy_domain;
	} cases[] = {
		{"example.com",
		 SPF_PASS,
		 "example.com",
		 {{0}},
		 0,
		 DMARC_PASS,
		 DMARC_POLICY_REJECT,
		 DMARC_POLICY_NONE,
		 "example.com"},
		{"example.com",
		 SPF_PASS,
		 "bounce.example.com",
		 {{0}},
		 0,
		 DMARC_PASS,
		 DMARC_POLICY_REJECT,
		 DMARC_POLICY_NONE,
		 "example.com"},
		{"example.com",
		 SPF_FAIL,
		 "example.com",
		 {{0}},
		 0,
		 DMARC_FAIL,
		 DMARC_POLICY_REJECT,
		 DMARC_POLICY_REJECT,
		 "example.com"},
		{"example.com",
		 SPF_SOFTFAIL,
		 "example.com",
		 {{0}},
		 0,
		 DMARC_FAIL,
		 DMARC_POLICY_REJECT,
		 DMARC_POLICY_REJECT,
		 "example.com"},
		{"example.com",
		 SPF_PASS,
		 "other.example",
		 {{0}},
		 0,
		 DMARC_FAIL,
		 DMARC_POLICY_REJECT,
		 DMARC_POLICY_REJECT,
		 "example.com"},
		{"example.com",
		 SPF_NONE,
		 NULL,
		 {{DKIM_PASS, "example.com"}},
		 0,
		 DMARC_PASS,
		 DMARC_POLICY_REJECT,
		 DMARC_POLICY_NONE,
		 "example.com"},
		{"example.com",
		 SPF_NONE,
		 NULL,
		 {{DKIM_PASS, "mail.example.com"}},
		 0,
		 DMARC_PASS,
		 DMARC_POLICY_REJECT,
		 DMARC_POLICY_NONE,
		 "example.com"},
		{"example.com",
		 SPF_NONE,
		 NULL,
		 {{DKIM_FAIL, "example.com"}},
		 0,
		 DMARC_FAIL,
		 DMARC_POLICY_REJECT,
		 DMARC_POLICY_REJECT,
		 "example.com"},
		{"example.com",
		 SPF_NONE,
		 NULL,
		 {{DKIM_PASS, "other.example"}, {DKIM_PASS, "example.com"}},
		 0,
		 DMARC_PASS,
		 DMARC_POLICY_REJECT,
		 DMARC_POLICY_NONE,
		 "example.com"},
		{"example.com",
		 SPF_NONE,
		 NULL,
		 {{DKIM_PASS, "notexample.com"}},
		 0,
		 DMARC_FAIL,
		 DMARC_POLICY_REJECT,
		 DMARC_POLICY_REJECT,
		 "example.com"},
		/* Subdomains, sp and the public suffix list. */
		{"mail.example.co.uk",
		 SPF_PASS,
		 "example.co.uk",
		 {{0}},
		 0,
		 DMARC_PASS,
		 DMARC_POLICY_REJECT,
		 DMARC_POLICY_NONE,
		 "example.co.uk"},
		{"mail.example.co.uk",
		 SPF_PASS,
		 "bounce.example.co.uk",
		 {{0}},
		 0,
		 DMARC_PASS,
		 DMARC_POLICY_REJECT,
		 DMARC_POLICY_NONE,
		 "example.co.uk"},
		{"mail.example.co.uk",
		 SPF_NONE,
		 NULL,
		 {{0}},
		 0,
		 DMARC_FAIL,
		 DMARC_POLICY_REJECT,
		 DMARC_POLICY_REJECT,
		 "example.co.uk"},
		{"example.co.uk",
		 SPF_NONE,
		 NULL,
		 {{0}},
		 0,
		 DMARC_FAIL,
		 DMARC_POLICY_QUARANTINE,
		 DMARC_POLICY_QUARANTINE,
		 "example.co.uk"},
		{"example.co.uk",
		 SPF_NONE,
		 NULL,
		 {{DKIM_PASS, "co.uk"}},
		 0,
		 DMARC_FAIL,
		 DMARC_POLICY_QUARANTINE,
		 DMARC_POLICY_QUARANTINE,
		 "example.co.uk"},
		{"example.co.uk",
		 SPF_PASS,
		 "other.co.uk",
		 {{0}},
		 0,
		 DMARC_FAIL,
		 DMARC_POLICY_QUARANTINE,
		 DMARC_POLICY_QUARANTINE,
		 "example.co.uk"},
		{"other.co.uk",
		 SPF_PASS,
		 "example.co.uk",
		 {{0}},
		 0,
		 DMARC_NONE,
		 DMARC_POLICY_NONE,
		 DMARC_POLICY_NONE,
		 ""},
		{"deep.sub.example.com",
		 SPF_NONE,
		 NULL,
		 {{0}},
		 0,
		 DMARC_FAIL,
		 DMARC_POLICY_REJECT,
		 DMARC_POLICY_REJECT,
		 "example.com"},
		{"deep.sub.example.com",
		 SPF_NONE,
		 NULL,
		 {{DKIM_PASS, "example.com"}},
		 0,
		 DMARC_PASS,
		 DMARC_POLICY_REJECT,
		 DMARC_POLICY_NONE,
		 "example.com"},
		{"own.example.com",
		 SPF_NONE,
		 NULL,
		 {{0}},
		 0,
		 DMARC_FAIL,
		 DMARC_POLICY_NONE,
		 DMARC_POLICY_NONE,
		 "own.example.com"},
		{"x.nosp.example",
		 SPF_NONE,
		 NULL,
		 {{0}},
		 0,
		 DMARC_FAIL,
		 DMARC_POLICY_QUARANTINE,
		 DMARC_POLICY_QUARANTINE,
		 "nosp.example"},
		/* Strict alignment. */
		{"strict.example",
		 SPF_PASS,
		 "mail.strict.example",
		 {{0}},
		 0,
		 DMARC_FAIL,
		 DMARC_POLICY_REJECT,
		 DMARC_POLICY_REJECT,
		 "strict.example"},
		{"strict.example",
		 SPF_PASS,
		 "STRICT.example",
		 {{0}},
		 0,
		 DMARC_PASS,
		 DMARC_POLICY_REJECT,
		 DMARC_POLICY_NONE,
		 "strict.example"},
		{"strict.example",
		 SPF_NONE,
		 NULL,
		 {{DKIM_PASS, "mail.strict.example"}},
		 0,
		 DMARC_FAIL,
		 DMARC_POLICY_REJECT,
		 DMARC_POLICY_REJECT,
		 "strict.example"},
		{"strict.example",
		 SPF_NONE,
		 NULL,
		 {{DKIM_PASS, "strict.example."}},
		 0,
		 DMARC_PASS,
		 DMARC_POLICY_REJECT,
		 DMARC_POLICY_NONE,
		 "strict.example"},
		/* pct */
		{"pct.example",
		 SPF_NONE,
		 NULL,
		 {{0}},
		 10,
		 DMARC_FAIL,
		 DMARC_POLICY_REJECT,
		 DMARC_POLICY_REJECT,
		 "pct.example"},
		{"pct.example",
		 SPF_NONE,
		 NULL,
		 {{0}},
		 50,
		 DMARC_FAIL,
		 DMARC_POLICY_REJECT,
		 DMARC_POLICY_QUARANTINE,
		 "pct.example"},
		{"pct.example",
		 SPF_NONE,
		 NULL,
		 {{0}},
		 119,
		 DMARC_FAIL,
		 DMARC_POLICY_REJECT,
		 DMARC_POLICY_REJECT,
		 "pct.example"},
		{"pctq.example",
		 SPF_NONE,
		 NULL,
		 {{0}},
		 0,
		 DMARC_FAIL,
		 DMARC_POLICY_QUARANTINE,
		 DMARC_POLICY_NONE,
		 "pctq.example"},
		/* Discovery. */
		{"two.example",
		 SPF_NONE,
		 NULL,
		 {{0}},
		 0,
		 DMARC_NONE,
		 DMARC_POLICY_NONE,
		 DMARC_POLICY_NONE,
		 "two.example"},
		{"temp.example",
		 SPF_PASS,
		 "temp.example",
		 {{0}},
		 0,
		 DMARC_TEMPERROR,
		 DMARC_POLICY_NONE,
		 DMARC_POLICY_NONE,
		 "temp.example"},
		{"a.b.subtemp.example",
		 SPF_NONE,
		 NULL,
		 {{0}},
		 0,
		 DMARC_TEMPERROR,
		 DMARC_POLICY_NONE,
		 DMARC_POLICY_NONE,
		 "subtemp.example"},
		{"a.subtemp.example",
		 SPF_NONE,
		 NULL,
		 {{0}},
		 0,
		 DMARC_FAIL,
		 DMARC_POLICY_NONE,
		 DMARC_POLICY_NONE,
		 "a.subtemp.example"},
		{"bad.example",
		 SPF_NONE,
		 NULL,
		 {{0}},
		 0,
		 DMARC_NONE,
		 DMARC_POLICY_NONE,
		 DMARC_POLICY_NONE,
		 "bad.example"},
		{"defaulted.example",
		 SPF_NONE,
		 NULL,
		 {{0}},
		 0,
		 DMARC_FAIL,
		 DMARC_POLICY_NONE,
		 DMARC_POLICY_NONE,
		 "defaulted.example"},
		{"nothing.example",
		 SPF_PASS,
		 "nothing.example",
		 {{0}},
		 0,
		 DMARC_NONE,
		 DMARC_POLICY_NONE,
		 DMARC_POLICY_NONE,
		 ""},
		{"mixed.example",
		 SPF_NONE,
		 NULL,
		 {{0}},
		 0,
		 DMARC_FAIL,
		 DMARC_POLICY_REJECT,
		 DMARC_POLICY_REJECT,
		 "mixed.example"},
		{"long.example",
		 SPF_NONE,
		 NULL,
		 {{0}},
		 0,
		 DMARC_FAIL,
		 DMARC_POLICY_REJECT,
		 DMARC_POLICY_REJECT,
		 "long.example"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct table_context ctx = {0};
		struct dns_resolver dns = {table_resolve, &ctx};
		struct dkim_result dkim[2];
		memset(dkim, 0, sizeof(dkim));
		size_t dkim_count = 0;
		for (size_t k = 0; k < 2 && cases[i].dkim[k].domain; k++) {
			dkim[k].status = cases[i].dkim[k].status;
			snprintf(dkim[k].domain, sizeof(dkim[k].domain), "%s",
				 cases[i].dkim[k].domain);
			dkim_count++;
		}
		struct dmarc_input in = {
			.from_status = DMARC_FROM_OK,
			.from_domain = cases[i].from,
			.spf = cases[i].spf,
			.spf_domain = cases[i].spf_domain,
			.dkim = dkim,
			.dkim_count = dkim_count,
			.sample = cases[i].sample,
		};
		struct dmarc_result r;
		enum dmarc_status s = dmarc_check(&dns, psl, &in, &r);
		CHECK_CASE(s == cases[i].status && r.status == s, i,
			   cases[i].from);
		if (s != cases[i].status)
			fprintf(stderr, "  got %s (%s)\n", dmarc_status_name(s),
				r.reason);
		CHECK_CASE(strcmp(r.from_domain, cases[i].from) == 0, i,
			   cases[i].from);
		if (s == DMARC_PASS || s == DMARC_FAIL) {
			CHECK_CASE(r.has_record, i, cases[i].from);
			CHECK_CASE(r.policy == cases[i].policy, i,
				   cases[i].from);
			CHECK_CASE(r.disposition == cases[i].disposition, i,
				   cases[i].from);
		}
		if (s != DMARC_NONE || cases[i].policy_domain[0] == '\0')
			CHECK_CASE(strcmp(r.policy_domain,
					  cases[i].policy_domain) == 0,
				   i, cases[i].from);
		CHECK_CASE(ctx.queries <= 2, i, cases[i].from);
		CHECK_CASE(r.record.rua.p == NULL, i, cases[i].from);
	}

	/* Which identifier aligned. */
	struct table_context ctx = {0};
	struct dns_resolver dns = {table_resolve, &ctx};
	struct dkim_result dkim = {.status = DKIM_PASS,
				   .domain = "example.com"};
	struct dmarc_input in = {
		.from_status = DMARC_FROM_OK,
		.from_domain = "example.com",
		.spf = SPF_PASS,
		.spf_domain = "other.example",
		.dkim = &dkim,
		.dkim_count = 1,
	};
	struct dmarc_result r;
	CHECK(dmarc_check(&dns, psl, &in, &r) == DMARC_PASS);
	CHECK(r.dkim_aligned && !r.spf_aligned);
	CHECK(strcmp(r.org_domain, "example.com") == 0);
	in.spf_domain = "example.com";
	in.dkim_count = 0;
	CHECK(dmarc_check(&dns, psl, &in, &r) == DMARC_PASS);
	CHECK(!r.dkim_aligned && r.spf_aligned);
	CHECK(strcmp(ctx.last, "_dmarc.example.com") == 0);

	struct dns_resolver silent = {silent_failure, NULL};
	CHECK(dmarc_check(&silent, psl, &in, &r) == DMARC_TEMPERROR);

	/* Without a usable From. */
	in.from_status = DMARC_FROM_MISSING;
	CHECK(dmarc_check(&dns, psl, &in, &r) == DMARC_NONE);
	CHECK(r.from_domain[0] == '\0' && r.reason[0] != '\0');
	in.from_status = DMARC_FROM_INVALID;
	CHECK(dmarc_check(&dns, psl, &in, &r) == DMARC_PERMERROR);
	in.from_status = DMARC_FROM_OK;
	in.from_domain = "bad domain";
	CHECK(dmarc_check(&dns, psl, &in, &r) == DMARC_PERMERROR);
	in.from_domain = NULL;
	CHECK(dmarc_check(&dns, psl, &in, &r) == DMARC_PERMERROR);
}

int main(void)
{
	test_records();
	test_from();
	const char *error = NULL;
	struct dmarc_psl *psl = dmarc_psl_load(&error);
	CHECK(psl != NULL);
	if (psl != NULL) {
		test_org_domain(psl);
		test_check(psl);
	}
	dmarc_psl_free(&psl);
	CHECK(psl == NULL);
	dmarc_psl_free(&psl);
	return unit_result("smtp_dmarc");
}
