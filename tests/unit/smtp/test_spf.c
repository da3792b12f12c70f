/* test_spf.c: unit tests for src/smtp/spf.c: the record parser, macro
 * expansion (with RFC 7208 7.4's examples) and check_host() against a
 * resolver that answers from a table. */
#include "unit.h"

#include "smtp/spf.h"

#include <arpa/inet.h>
#include <strings.h>

/* ---- a resolver answering from a table ---- */

#define TEMPFAIL "\x01TEMPFAIL"

/* data: TXT text; A/AAAA address; MX "pref name"; PTR name; or TEMPFAIL
 * for a failing query. Several rows of one name and type are several
 * records. */
struct zone_row {
	const char *name;
	uint16_t type;
	const char *data;
};

#define PTR 12

static const struct zone_row zone[] = {
	{"pass-all.example", DNS_TYPE_TXT, "v=spf1 +all"},
	{"fail-all.example", DNS_TYPE_TXT, "v=spf1 -all"},
	{"softfail.example", DNS_TYPE_TXT, "v=spf1 ~all"},
	{"neutral.example", DNS_TYPE_TXT, "v=spf1 ?all"},
	{"empty.example", DNS_TYPE_TXT, "v=spf1"},
	{"ip4.example", DNS_TYPE_TXT,
	 "v=spf1 ip4:192.0.2.0/24 ip4:198.51.100.7 -all"},
	{"ip6.example", DNS_TYPE_TXT, "v=spf1 ip6:2001:db8::/32 -all"},
	{"ip0.example", DNS_TYPE_TXT, "v=spf1 ip4:0.0.0.0/0 ip6:::/0 -all"},
	{"a.example", DNS_TYPE_TXT, "v=spf1 a -all"},
	{"a.example", DNS_TYPE_A, "192.0.2.10"},
	{"a.example", DNS_TYPE_AAAA, "2001:db8::10"},
	{"acidr.example", DNS_TYPE_TXT, "v=spf1 a/24 -all"},
	{"acidr.example", DNS_TYPE_A, "192.0.2.10"},
	{"adual.example", DNS_TYPE_TXT,
	 "v=spf1 a:host.adual.example/28//64 -all"},
	{"host.adual.example", DNS_TYPE_A, "192.0.2.16"},
	{"host.adual.example", DNS_TYPE_AAAA, "2001:db8:1:2::1"},
	{"mx.example", DNS_TYPE_TXT, "v=spf1 mx -all"},
	{"mx.example", DNS_TYPE_MX, "10 mx1.mx.example"},
	{"mx.example", DNS_TYPE_MX, "20 mx2.mx.example"},
	{"mx1.mx.example", DNS_TYPE_A, "192.0.2.20"},
	{"mx2.mx.example", DNS_TYPE_A, "192.0.2.21"},
	{"mx2.mx.example", DNS_TYPE_AAAA, "2001:db8::21"},
	{"mxcidr.example", DNS_TYPE_TXT, "v=spf1 mx:mx.example/30 -all"},
	{"mx11.example", DNS_TYPE_TXT, "v=spf1 mx -all"},
	{"mx11.example", DNS_TYPE_MX, "1 m1.mx11.example"},
	{"mx11.example", DNS_TYPE_MX, "2 m2.mx11.example"},
	{"mx11.example", DNS_TYPE_MX, "3 m3.mx11.example"},
	{"mx11.example", DNS_TYPE_MX, "4 m4.mx11.example"},
	{"mx11.example", DNS_TYPE_MX, "5 m5.mx11.example"},
	{"mx11.example", DNS_TYPE_MX, "6 m6.mx11.example"},
	{"mx11.example", DNS_TYPE_MX, "7 m7.mx11.example"},
	{"mx11.example", DNS_TYPE_MX, "8 m8.mx11.example"},
	{"mx11.example", DNS_TYPE_MX, "9 m9.mx11.example"},
	{"mx11.example", DNS_TYPE_MX, "10 m10.mx11.example"},
	{"mx11.example", DNS_TYPE_MX, "11 m11.mx11.example"},
	{"nullmx.example", DNS_TYPE_TXT, "v=spf1 mx ?all"},
	{"nullmx.example", DNS_TYPE_MX, "0 ."},
	{"mxtemp.example", DNS_TYPE_TXT, "v=spf1 mx -all"},
	{"mxtemp.example", DNS_TYPE_MX, "10 down.mxtemp.example"},
	{"down.mxtemp.example", DNS_TYPE_A, TEMPFAIL},
	{"ptr.example", DNS_TYPE_TXT, "v=spf1 ptr -all"},
	{"50.2.0.192.in-addr.arpa", PTR, "host.ptr.example"},
	{"host.ptr.example", DNS_TYPE_A, "192.0.2.50"},
	{"51.2.0.192.in-addr.arpa", PTR, "liar.ptr.example"},
	{"liar.ptr.example", DNS_TYPE_A, "192.0.2.99"},
	{"52.2.0.192.in-addr.arpa", PTR, "other.example"},
	{"other.example", DNS_TYPE_A, "192.0.2.52"},
	{"ptrarg.example", DNS_TYPE_TXT, "v=spf1 ptr:ptr.example -all"},
	{"exists.example", DNS_TYPE_TXT,
	 "v=spf1 exists:%{ir}.list.exists.example -all"},
	{"60.2.0.192.list.exists.example", DNS_TYPE_A, "127.0.0.2"},
	{"existstemp.example", DNS_TYPE_TXT,
	 "v=spf1 exists:tempfail.example -all"},
	{"include.example", DNS_TYPE_TXT,
	 "v=spf1 include:inc-pass.example -all"},
	{"inc-pass.example", DNS_TYPE_TXT, "v=spf1 ip4:192.0.2.70 -all"},
	{"incfail.example", DNS_TYPE_TXT,
	 "v=spf1 include:fail-all.example ?all"},
	{"incsoft.example", DNS_TYPE_TXT,
	 "v=spf1 include:softfail.example -all"},
	{"incnone.example", DNS_TYPE_TXT,
	 "v=spf1 include:nothing.example -all"},
	{"inctemp.example", DNS_TYPE_TXT,
	 "v=spf1 include:tempfail.example -all"},
	{"incperm.example", DNS_TYPE_TXT, "v=spf1 include:bad1.example -all"},
	{"incdeep.example", DNS_TYPE_TXT,
	 "v=spf1 include:include.example ~all"},
	{"redirect.example", DNS_TYPE_TXT, "v=spf1 redirect=ip4.example"},
	{"redirall.example", DNS_TYPE_TXT,
	 "v=spf1 redirect=fail-all.example ?all"},
	{"redirnone.example", DNS_TYPE_TXT, "v=spf1 redirect=nothing.example"},
	{"redirmacro.example", DNS_TYPE_TXT, "v=spf1 redirect=_spf.%{d}"},
	{"_spf.redirmacro.example", DNS_TYPE_TXT, "v=spf1 ip4:192.0.2.90 -all"},
	{"redirfirst.example", DNS_TYPE_TXT,
	 "v=spf1 redirect=ip4.example ip4:203.0.113.5"},
	{"loop.example", DNS_TYPE_TXT, "v=spf1 include:loop.example -all"},
	{"rloop.example", DNS_TYPE_TXT, "v=spf1 redirect=rloop.example"},
	{"many.example", DNS_TYPE_A, "203.0.113.1"},
	{"limit10.example", DNS_TYPE_TXT,
	 "v=spf1 a:many.example a:many.example a:many.example "
	 "a:many.example a:many.example a:many.example a:many.example "
	 "a:many.example a:many.example a:many.example -all"},
	{"limit11.example", DNS_TYPE_TXT,
	 "v=spf1 a:many.example a:many.example a:many.example "
	 "a:many.example a:many.example a:many.example a:many.example "
	 "a:many.example a:many.example a:many.example a:many.example "
	 "-all"},
	{"limitmatch.example", DNS_TYPE_TXT,
	 "v=spf1 a:many.example a:many.example a:many.example "
	 "a:many.example a:many.example a:many.example a:many.example "
	 "a:many.example a:many.example ip4:192.0.2.1 a:many.example "
	 "a:many.example -all"},
	{"limitinc.example", DNS_TYPE_TXT,
	 "v=spf1 include:limit10.example ip4:192.0.2.1 -all"},
	{"void2.example", DNS_TYPE_TXT,
	 "v=spf1 a:nx1.example a:nx2.example -all"},
	{"void3.example", DNS_TYPE_TXT,
	 "v=spf1 a:nx1.example mx:nx2.example exists:nx3.example -all"},
	{"two.example", DNS_TYPE_TXT, "v=spf1 +all"},
	{"two.example", DNS_TYPE_TXT, "v=spf1 -all"},
	{"mixed.example", DNS_TYPE_TXT, "google-site-verification=abc"},
	{"mixed.example", DNS_TYPE_TXT, "v=spf10 +all"},
	{"mixed.example", DNS_TYPE_TXT, "v=spf1 -all"},
	{"mixed.example", DNS_TYPE_TXT, "spf1 +all"},
	{"nodata.example", DNS_TYPE_A, "192.0.2.1"},
	{"nodata.example", DNS_TYPE_TXT, "hello"},
	{"tempfail.example", DNS_TYPE_TXT, TEMPFAIL},
	{"tempfail.example", DNS_TYPE_A, TEMPFAIL},
	{"bad1.example", DNS_TYPE_TXT, "v=spf1 foo -all"},
	{"bad2.example", DNS_TYPE_TXT, "v=spf1 ip4:192.0.2.300 -all"},
	{"bad3.example", DNS_TYPE_TXT, "v=spf1 a:example -all"},
	{"bad4.example", DNS_TYPE_TXT,
	 "v=spf1 redirect=a.example redirect=b.example"},
	{"bad5.example", DNS_TYPE_TXT, "v=spf1 -exp=x.example -all"},
	{"bad6.example", DNS_TYPE_TXT, "v=spf1 ip4:192.0.2.0/33 +all"},
	{"bad7.example", DNS_TYPE_TXT, "v=spf1 exists:%{c}.example.com"},
	{"bad8.example", DNS_TYPE_TXT, "v=spf1 +all\t-all"},
	{"bad9.example", DNS_TYPE_TXT, "v=spf1 +all foo:bar.example"},
	{"unknownmod.example", DNS_TYPE_TXT, "v=spf1 foo=bar -all"},
	{"exp.example", DNS_TYPE_TXT, "v=spf1 exp=explain.%{d} -all"},
	{"upper.example", DNS_TYPE_TXT, "V=SPF1 IP4:192.0.2.1 -ALL"},
	{"local.example", DNS_TYPE_TXT, "v=spf1 a:%{l}.users.example -all"},
	{"alice.users.example", DNS_TYPE_A, "192.0.2.100"},
	{"postmaster.users.example", DNS_TYPE_A, "192.0.2.101"},
	{"atemp.example", DNS_TYPE_TXT, "v=spf1 a:tempfail.example -all"},
	{"mail.helo.example", DNS_TYPE_TXT, "v=spf1 a -all"},
	{"mail.helo.example", DNS_TYPE_A, "192.0.2.110"},
	{"hmacro.example", DNS_TYPE_TXT,
	 "v=spf1 exists:%{h}.allowed.example -all"},
	{"good.client.allowed.example", DNS_TYPE_A, "127.0.0.1"},
	{"pmacro.example", DNS_TYPE_TXT,
	 "v=spf1 exists:%{p}.known.example -all"},
	{"host.ptr.example.known.example", DNS_TYPE_A, "127.0.0.1"},
	{"long.example", DNS_TYPE_TXT,
	 "v=spf1 ip4:192.0.2.1 ip4:192.0.2.2 ip4:192.0.2.3 ip4:192.0.2.4 "
	 "ip4:192.0.2.5 ip4:192.0.2.6 ip4:192.0.2.7 ip4:192.0.2.8 "
	 "ip4:192.0.2.9 ip4:192.0.2.10 ip4:192.0.2.11 ip4:192.0.2.12 "
	 "ip4:192.0.2.13 ip4:192.0.2.14 ip4:192.0.2.15 ip4:192.0.2.16 "
	 "ip4:192.0.2.17 ip4:192.0.2.18 ip4:192.0.2.19 ip4:192.0.2.20 "
	 "ip4:192.0.2.21 ip4:192.0.2.22 ip4:192.0.2.23 ip4:192.0.2.240 "
	 "-all"},
	{"question.example", DNS_TYPE_TXT, "v=spf1 ?ip4:192.0.2.1 -all"},
	{"tilde.example", DNS_TYPE_TXT, "v=spf1 ~ip6:2001:db8::1 +all"},
};

struct table_context {
	unsigned queries;
};

/* Appends name in wire form. */
static size_t put_wire_name(uint8_t *out, const char *name)
{
	size_t n = 0;
	const char *p = name;
	if (strcmp(name, ".") == 0) {
		out[0] = 0;
		return 1;
	}
	while (*p != '\0') {
		const char *dot = strchr(p, '.');
		size_t len = dot != NULL ? (size_t)(dot - p) : strlen(p);
		out[n++] = (uint8_t)len;
		memcpy(out + n, p, len);
		n += len;
		p += len;
		if (*p == '.')
			p++;
	}
	out[n++] = 0;
	return n;
}

/* Encodes one row's data as rdata into out; returns its length. */
static size_t encode_rdata(const struct zone_row *row, uint8_t *out)
{
	size_t n = 0;
	switch (row->type) {
	case DNS_TYPE_TXT: {
		size_t len = strlen(row->data);
		for (size_t i = 0; i < len; i += 255) {
			size_t chunk = len - i < 255 ? len - i : 255;
			out[n++] = (uint8_t)chunk;
			memcpy(out + n, row->data + i, chunk);
			n += chunk;
		}
		if (len == 0)
			out[n++] = 0;
		return n;
	}
	case DNS_TYPE_A:
		inet_pton(AF_INET, row->data, out);
		return 4;
	case DNS_TYPE_AAAA:
		inet_pton(AF_INET6, row->data, out);
		return 16;
	case DNS_TYPE_MX: {
		unsigned pref = (unsigned)strtoul(row->data, NULL, 10);
		out[0] = (uint8_t)(pref >> 8);
		out[1] = (uint8_t)pref;
		return 2 + put_wire_name(out + 2, strchr(row->data, ' ') + 1);
	}
	case PTR:
		return put_wire_name(out, row->data);
	}
	return 0;
}

static int table_resolve(void *context, const char *name, uint16_t type,
			 struct dns_answer *answer_r)
{
	struct table_context *t = context;
	t->queries++;
	static uint8_t storage[DNS_MAX_RECORDS][1024];
	struct slice rdata[DNS_MAX_RECORDS];
	size_t count = 0;
	bool name_exists = false;
	for (size_t i = 0; i < ARRAY_SIZE(zone); i++) {
		if (strcasecmp(zone[i].name, name) != 0)
			continue;
		name_exists = true;
		if (zone[i].type != type)
			continue;
		if (strcmp(zone[i].data, TEMPFAIL) == 0) {
			dns_answer_set(answer_r, DNS_TEMPFAIL, false, NULL, 0);
			return -1;
		}
		size_t n = encode_rdata(&zone[i], storage[count]);
		rdata[count] = slice_make(storage[count], n);
		count++;
	}
	enum dns_status status = count > 0     ? DNS_OK
				 : name_exists ? DNS_NODATA
					       : DNS_NXDOMAIN;
	return dns_answer_set(answer_r, status, false, rdata, count);
}

/* ---- the record parser ---- */

static void test_parse(void)
{
	static const struct {
		const char *record;
		int ok;
	} cases[] = {
		{"v=spf1", 1},
		{"v=spf1 ", 1},
		{"v=spf1  -all  ", 1},
		{"V=SPF1 -ALL", 1},
		{"v=spf1 ip4:192.0.2.1 ip4:192.0.2.0/24 ip6:2001:db8::/32 "
		 "ip6:::1 a mx ptr a:example.com/24//64 mx:%{d}//0 "
		 "exists:%{i}._spf.%{d} include:_spf.example.net ~all",
		 1},
		{"v=spf1 redirect=_spf.example.com", 1},
		{"v=spf1 exp=explain._spf.%{d} -all", 1},
		{"v=spf1 foo.bar-baz_1=anything%{d}x -all", 1},
		{"v=spf1 a:example.com.", 1},
		{"v=spf1 a:%{d}", 1},
		{"v=spf1 a:foo.%{d2r}", 1},
		{"v=spf1 exists:%{l1r+-}.%%.%_.%-.x.example", 1},
		{"v=spf1 a:123-456.example.4-5", 1},
		{"v=spf1 ip4:0.0.0.0/0", 1},
		{"v=spf1 ip6:::/0", 1},
		{"v=spf10", 0},
		{"v=spf", 0},
		{"spf1 -all", 0},
		{"", 0},
		{"v=spf1 -al", 0},
		{"v=spf1 all:x", 0},
		{"v=spf1 -all\t", 0},
		{"v=spf1 ip4:192.0.2.256", 0},
		{"v=spf1 ip4:192.0.2", 0},
		{"v=spf1 ip4:192.0.2.01", 0},
		{"v=spf1 ip4:192.0.2.1/33", 0},
		{"v=spf1 ip4:192.0.2.1/", 0},
		{"v=spf1 ip4:192.0.2.1/024", 0},
		{"v=spf1 ip4:2001:db8::1", 0},
		{"v=spf1 ip6:192.0.2.1", 0},
		{"v=spf1 ip6:2001:db8::/129", 0},
		{"v=spf1 ip6:gggg::", 0},
		{"v=spf1 ip4", 0},
		{"v=spf1 a:", 0},
		{"v=spf1 a:example", 0},
		{"v=spf1 a:example.123", 0},
		{"v=spf1 a:example.com/33", 0},
		{"v=spf1 a/24//129", 0},
		{"v=spf1 include", 0},
		{"v=spf1 include:", 0},
		{"v=spf1 exists", 0},
		{"v=spf1 ptr/24", 0},
		{"v=spf1 +redirect=x.example", 0},
		{"v=spf1 redirect=", 0},
		{"v=spf1 redirect=x.example redirect=y.example", 0},
		{"v=spf1 exp=x.example exp=y.example", 0},
		{"v=spf1 a:%{z}.example.com", 0},
		{"v=spf1 a:%{d0}.example.com", 0},
		{"v=spf1 a:%{d", 0},
		{"v=spf1 a:%x.example.com", 0},
		{"v=spf1 a:example.com%", 0},
		{"v=spf1 exists:%{r}.example.com", 0},
		{"v=spf1 exists:%{t}.example.com", 0},
		{"v=spf1 1a", 0},
		{"v=spf1 =x", 0},
		{"v=spf1 -", 0},
		{"v=spf1 foo=%{", 0},
		{"v=spf1 a:exa\x80mple.com", 0},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct spf_record_info info;
		const char *error = NULL;
		int r = spf_parse_record(slice_cstr(cases[i].record), &info,
					 &error);
		CHECK_CASE((r == 0) == (cases[i].ok == 1), i, cases[i].record);
		if (r < 0)
			CHECK_CASE(error != NULL, i, cases[i].record);
	}

	/* The fields of terms. */
	struct slice rec = slice_cstr(
		"v=spf1 -a:mail.example.com/24//64 ~mx//48 ?ip4:192.0.2.0/25 "
		"+ip6:2001:db8::/40 include:x.example exp=e.example "
		"redirect=r.example");
	size_t pos = 0;
	struct spf_term t;
	const char *error;
	CHECK(spf_next_term(rec, &pos, &t, &error) == 1);
	CHECK(t.kind == SPF_TERM_A && t.qualifier == SPF_FAIL &&
	      t.cidr4 == 24 && t.cidr6 == 64 &&
	      slice_eq_ci(t.domain_spec, "mail.example.com"));
	CHECK(spf_next_term(rec, &pos, &t, &error) == 1);
	CHECK(t.kind == SPF_TERM_MX && t.qualifier == SPF_SOFTFAIL &&
	      t.cidr4 == 32 && t.cidr6 == 48 && t.domain_spec.n == 0);
	CHECK(spf_next_term(rec, &pos, &t, &error) == 1);
	CHECK(t.kind == SPF_TERM_IP4 && t.qualifier == SPF_NEUTRAL &&
	      t.cidr4 == 25 && ntohl(t.ip4.s_addr) == 0xc0000200);
	CHECK(spf_next_term(rec, &pos, &t, &error) == 1);
	CHECK(t.kind == SPF_TERM_IP6 && t.qualifier == SPF_PASS &&
	      t.cidr6 == 40 && t.ip6.s6_addr[1] == 0x01);
	CHECK(spf_next_term(rec, &pos, &t, &error) == 1);
	CHECK(t.kind == SPF_TERM_INCLUDE &&
	      slice_eq_ci(t.domain_spec, "x.example"));
	CHECK(spf_next_term(rec, &pos, &t, &error) == 1);
	CHECK(t.kind == SPF_TERM_EXP);
	CHECK(spf_next_term(rec, &pos, &t, &error) == 1);
	CHECK(t.kind == SPF_TERM_REDIRECT &&
	      slice_eq_ci(t.domain_spec, "r.example") &&
	      slice_eq_ci(t.text, "redirect=r.example"));
	CHECK(spf_next_term(rec, &pos, &t, &error) == 0);

	struct spf_record_info info;
	CHECK(spf_parse_record(rec, &info, &error) == 0);
	CHECK(info.term_count == 7 && info.has_redirect && info.has_exp &&
	      !info.has_all && slice_eq_ci(info.redirect, "r.example"));
	CHECK(spf_parse_record(slice_cstr("v=spf1 ?all redirect=x.example"),
			       &info, &error) == 0 &&
	      info.has_all);

	/* A NUL inside a record. */
	CHECK(spf_parse_record(slice_make("v=spf1 a\0 -all", 14), &info,
			       &error) < 0);
	CHECK(spf_is_record(slice_cstr("v=spf1")));
	CHECK(spf_is_record(slice_cstr("v=spf1 a")));
	CHECK(!spf_is_record(slice_cstr("v=spf1a")));
	CHECK(!spf_is_record(slice_cstr(" v=spf1")));

	/* Too many terms. */
	struct buf big;
	buf_init(&big, 1 << 16);
	buf_append_cstr(&big, "v=spf1");
	for (int i = 0; i <= SPF_MAX_TERMS; i++)
		buf_append_cstr(&big, " ?all");
	CHECK(spf_parse_record(buf_slice(&big), &info, &error) < 0);
	buf_free(&big);
}

/* ---- macros ---- */

/* The buffer holds exactly s. */
static bool buf_is(const struct buf *b, const char *s)
{
	return b->n == strlen(s) && (b->n == 0 || memcmp(b->p, s, b->n) == 0);
}

static void test_macros(void)
{
	struct spf_ip ip4, ip6;
	CHECK(spf_ip_parse("192.0.2.3", &ip4) == 0 && ip4.family == AF_INET);
	CHECK(spf_ip_parse("2001:db8::cb01", &ip6) == 0 &&
	      ip6.family == AF_INET6);
	struct spf_macro_values v4 = {
		.ip = &ip4,
		.sender_local = "strong-bad",
		.sender_domain = "email.example.com",
		.domain = "email.example.com",
		.helo = "mx.example.org",
		.validated = "mx.example.org",
		.receiver = "mx.dijk.example",
		.now = 1700000000,
	};
	struct spf_macro_values v6 = v4;
	v6.ip = &ip6;
	static const struct {
		const char *in;
		bool v6, explanation;
		const char *out; /* NULL: an error */
	} cases[] = {
		/* RFC 7208 7.4. */
		{"%{s}", false, false, "strong-bad@email.example.com"},
		{"%{o}", false, false, "email.example.com"},
		{"%{d}", false, false, "email.example.com"},
		{"%{d4}", false, false, "email.example.com"},
		{"%{d3}", false, false, "email.example.com"},
		{"%{d2}", false, false, "example.com"},
		{"%{d1}", false, false, "com"},
		{"%{dr}", false, false, "com.example.email"},
		{"%{d2r}", false, false, "example.email"},
		{"%{l}", false, false, "strong-bad"},
		{"%{l-}", false, false, "strong.bad"},
		{"%{lr}", false, false, "strong-bad"},
		{"%{lr-}", false, false, "bad.strong"},
		{"%{l1r-}", false, false, "strong"},
		{"%{ir}.%{v}._spf.%{d2}", false, false,
		 "3.2.0.192.in-addr._spf.example.com"},
		{"%{lr-}.lp._spf.%{d2}", false, false,
		 "bad.strong.lp._spf.example.com"},
		{"%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", false, false,
		 "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"},
		{"%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", false, false,
		 "3.2.0.192.in-addr.strong.lp._spf.example.com"},
		{"%{d2}.trusted-domains.example.net", false, false,
		 "example.com.trusted-domains.example.net"},
		{"%{ir}.%{v}._spf.%{d2}", true, false,
		 "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2"
		 ".ip6._spf.example.com"},
		/* More. */
		{"%{i}", false, false, "192.0.2.3"},
		{"%{I}", false, false, "192.0.2.3"},
		{"%{S}", false, false, "strong-bad%40email.example.com"},
		{"%{D1R}", false, false, "email"},
		{"%{h}", false, false, "mx.example.org"},
		{"%{p}", false, false, "mx.example.org"},
		{"%{v}", true, false, "ip6"},
		{"%{d9999999999}", false, false, "email.example.com"},
		{"%{o1r}", false, false, "email"},
		{"%{l+-}", false, false, "strong.bad"},
		{"%%%_%-", false, false, "% %20"},
		{"x%{d1}y", false, false, "xcomy"},
		{"", false, false, ""},
		{"%{c}", false, true, "192.0.2.3"},
		{"%{c}", true, true, "2001:db8::cb01"},
		{"%{r}", false, true, "mx.dijk.example"},
		{"%{t}", false, true, "1700000000"},
		{"%{i} is not allowed", false, true,
		 "192.0.2.3 is not allowed"},
		{"%{c}", false, false, NULL},
		{"%{r}", false, false, NULL},
		{"%{t}", false, false, NULL},
		{"%{d0}", false, false, NULL},
		{"%{x}", false, false, NULL},
		{"%{d", false, false, NULL},
		{"%{}", false, false, NULL},
		{"%{d2r.-+,/_=!}", false, false, NULL},
		{"%x", false, false, NULL},
		{"%", false, false, NULL},
		{"a b", false, false, NULL},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct buf out;
		buf_init(&out, SPF_MAX_EXPANSION);
		const char *error = NULL;
		int r = spf_expand(slice_cstr(cases[i].in),
				   cases[i].explanation,
				   cases[i].v6 ? &v6 : &v4, &out, &error);
		if (cases[i].out == NULL) {
			CHECK_CASE(r < 0 && error != NULL, i, cases[i].in);
		} else {
			CHECK_CASE(r == 0, i, cases[i].in);
			CHECK_CASE(buf_is(&out, cases[i].out), i, cases[i].in);
		}
		buf_free(&out);
	}
	/* Delimiters other than '.', and an empty local part. */
	struct spf_macro_values odd = v4;
	odd.sender_local = "a+b=c_d/e,f";
	odd.validated = NULL;
	struct buf out;
	buf_init(&out, SPF_MAX_EXPANSION);
	const char *error;
	CHECK(spf_expand(slice_cstr("%{l+=_/,}"), false, &odd, &out, &error) ==
		      0 &&
	      buf_is(&out, "a.b.c.d.e.f"));
	buf_reset(&out);
	CHECK(spf_expand(slice_cstr("%{l2r+=_/,}"), false, &odd, &out,
			 &error) == 0 &&
	      buf_is(&out, "b.a"));
	buf_reset(&out);
	CHECK(spf_expand(slice_cstr("%{L}"), false, &odd, &out, &error) == 0 &&
	      buf_is(&out, "a%2Bb%3Dc_d%2Fe%2Cf"));
	buf_reset(&out);
	CHECK(spf_expand(slice_cstr("%{p}"), false, &odd, &out, &error) == 0 &&
	      buf_is(&out, "unknown"));
	buf_reset(&out);
	odd.sender_local = "";
	CHECK(spf_expand(slice_cstr("%{s}"), false, &odd, &out, &error) == 0 &&
	      buf_is(&out, "postmaster@email.example.com"));
	buf_reset(&out);
	/* Empty parts, both ways. */
	odd.domain = "x..y.z";
	static const char *const empty_parts[][2] = {
		{"%{dr}", "z.y..x"},  {"%{d2r}", ".x"},	 {"%{d1}", "z"},
		{"%{d2}", "y.z"},     {"%{d3}", ".y.z"}, {"%{d3r}", "y..x"},
		{"%{d4r}", "z.y..x"}, {"%{l-r}", NULL},
	};
	for (size_t i = 0; i < ARRAY_SIZE(empty_parts); i++) {
		buf_reset(&out);
		int r = spf_expand(slice_cstr(empty_parts[i][0]), false, &odd,
				   &out, &error);
		if (empty_parts[i][1] == NULL)
			CHECK_CASE(r < 0, i, empty_parts[i][0]);
		else
			CHECK_CASE(r == 0 && buf_is(&out, empty_parts[i][1]), i,
				   empty_parts[i][0]);
	}
	buf_reset(&out);
	/* A value longer than the limit is an error, not a cut. */
	char *huge = xmalloc(SPF_MAX_EXPANSION + 10);
	memset(huge, 'a', SPF_MAX_EXPANSION + 9);
	huge[SPF_MAX_EXPANSION + 9] = '\0';
	odd.sender_local = huge;
	CHECK(spf_expand(slice_cstr("%{l}"), false, &odd, &out, &error) < 0);
	buf_reset(&out);
	CHECK(spf_expand(slice_cstr("%{l1}"), false, &odd, &out, &error) < 0);
	buf_reset(&out);
	free(huge);
	/* The expansion limit. */
	struct buf in;
	buf_init(&in, 1 << 16);
	for (int i = 0; i < 200; i++)
		buf_append_cstr(&in, "%{S}");
	CHECK(spf_expand(buf_slice(&in), false, &v4, &out, &error) < 0);
	buf_free(&in);
	buf_free(&out);
}

/* ---- check_host() ---- */

static void test_check(void)
{
	static const struct {
		const char *domain;
		const char *ip;
		enum spf_result result;
		const char *local; /* NULL: none */
		const char *helo;
	} cases[] = {
		{"pass-all.example", "192.0.2.1", SPF_PASS, NULL, NULL},
		{"pass-all.example", "2001:db8::1", SPF_PASS, NULL, NULL},
		{"fail-all.example", "192.0.2.1", SPF_FAIL, NULL, NULL},
		{"softfail.example", "192.0.2.1", SPF_SOFTFAIL, NULL, NULL},
		{"neutral.example", "192.0.2.1", SPF_NEUTRAL, NULL, NULL},
		{"empty.example", "192.0.2.1", SPF_NEUTRAL, NULL, NULL},
		{"question.example", "192.0.2.1", SPF_NEUTRAL, NULL, NULL},
		{"question.example", "192.0.2.2", SPF_FAIL, NULL, NULL},
		{"tilde.example", "2001:db8::1", SPF_SOFTFAIL, NULL, NULL},
		{"tilde.example", "2001:db8::2", SPF_PASS, NULL, NULL},
		/* ip4, ip6 and CIDR */
		{"ip4.example", "192.0.2.77", SPF_PASS, NULL, NULL},
		{"ip4.example", "192.0.2.0", SPF_PASS, NULL, NULL},
		{"ip4.example", "192.0.2.255", SPF_PASS, NULL, NULL},
		{"ip4.example", "192.0.3.0", SPF_FAIL, NULL, NULL},
		{"ip4.example", "198.51.100.7", SPF_PASS, NULL, NULL},
		{"ip4.example", "198.51.100.8", SPF_FAIL, NULL, NULL},
		{"ip4.example", "2001:db8::1", SPF_FAIL, NULL, NULL},
		{"ip4.example", "::ffff:192.0.2.77", SPF_PASS, NULL, NULL},
		{"ip6.example", "2001:db8:1::5", SPF_PASS, NULL, NULL},
		{"ip6.example", "2001:db8:ffff:ffff::1", SPF_PASS, NULL, NULL},
		{"ip6.example", "2001:db9::1", SPF_FAIL, NULL, NULL},
		{"ip6.example", "192.0.2.1", SPF_FAIL, NULL, NULL},
		{"ip0.example", "203.0.113.9", SPF_PASS, NULL, NULL},
		{"ip0.example", "2001:db8::9", SPF_PASS, NULL, NULL},
		{"long.example", "192.0.2.240", SPF_PASS, NULL, NULL},
		{"long.example", "192.0.2.241", SPF_FAIL, NULL, NULL},
		/* a */
		{"a.example", "192.0.2.10", SPF_PASS, NULL, NULL},
		{"a.example", "192.0.2.11", SPF_FAIL, NULL, NULL},
		{"a.example", "2001:db8::10", SPF_PASS, NULL, NULL},
		{"a.example", "2001:db8::11", SPF_FAIL, NULL, NULL},
		{"acidr.example", "192.0.2.200", SPF_PASS, NULL, NULL},
		{"acidr.example", "192.0.3.1", SPF_FAIL, NULL, NULL},
		{"adual.example", "192.0.2.31", SPF_PASS, NULL, NULL},
		{"adual.example", "192.0.2.32", SPF_FAIL, NULL, NULL},
		{"adual.example", "2001:db8:1:2:ffff::1", SPF_PASS, NULL, NULL},
		{"adual.example", "2001:db8:1:3::1", SPF_FAIL, NULL, NULL},
		{"atemp.example", "192.0.2.1", SPF_TEMPERROR, NULL, NULL},
		{"local.example", "192.0.2.100", SPF_PASS, "alice", NULL},
		{"local.example", "192.0.2.100", SPF_FAIL, "bob", NULL},
		{"local.example", "192.0.2.101", SPF_PASS, NULL, NULL},
		/* mx */
		{"mx.example", "192.0.2.20", SPF_PASS, NULL, NULL},
		{"mx.example", "192.0.2.21", SPF_PASS, NULL, NULL},
		{"mx.example", "2001:db8::21", SPF_PASS, NULL, NULL},
		{"mx.example", "192.0.2.22", SPF_FAIL, NULL, NULL},
		{"mxcidr.example", "192.0.2.23", SPF_PASS, NULL, NULL},
		{"mxcidr.example", "192.0.2.24", SPF_FAIL, NULL, NULL},
		{"mx11.example", "192.0.2.1", SPF_PERMERROR, NULL, NULL},
		{"nullmx.example", "192.0.2.1", SPF_NEUTRAL, NULL, NULL},
		{"mxtemp.example", "192.0.2.1", SPF_TEMPERROR, NULL, NULL},
		/* ptr */
		{"ptr.example", "192.0.2.50", SPF_PASS, NULL, NULL},
		{"ptr.example", "192.0.2.51", SPF_FAIL, NULL, NULL},
		{"ptr.example", "192.0.2.52", SPF_FAIL, NULL, NULL},
		{"ptr.example", "192.0.2.53", SPF_FAIL, NULL, NULL},
		{"ptrarg.example", "192.0.2.50", SPF_PASS, NULL, NULL},
		{"ptrarg.example", "192.0.2.52", SPF_FAIL, NULL, NULL},
		/* exists and macros */
		{"exists.example", "192.0.2.60", SPF_PASS, NULL, NULL},
		{"exists.example", "192.0.2.61", SPF_FAIL, NULL, NULL},
		{"existstemp.example", "192.0.2.1", SPF_TEMPERROR, NULL, NULL},
		{"hmacro.example", "192.0.2.1", SPF_PASS, NULL, "good.client"},
		{"hmacro.example", "192.0.2.1", SPF_FAIL, NULL, "bad.client"},
		{"pmacro.example", "192.0.2.50", SPF_PASS, NULL, NULL},
		{"pmacro.example", "192.0.2.51", SPF_FAIL, NULL, NULL},
		/* include */
		{"include.example", "192.0.2.70", SPF_PASS, NULL, NULL},
		{"include.example", "192.0.2.71", SPF_FAIL, NULL, NULL},
		{"incdeep.example", "192.0.2.70", SPF_PASS, NULL, NULL},
		{"incdeep.example", "192.0.2.71", SPF_SOFTFAIL, NULL, NULL},
		{"incfail.example", "192.0.2.1", SPF_NEUTRAL, NULL, NULL},
		{"incsoft.example", "192.0.2.1", SPF_FAIL, NULL, NULL},
		{"incnone.example", "192.0.2.1", SPF_PERMERROR, NULL, NULL},
		{"inctemp.example", "192.0.2.1", SPF_TEMPERROR, NULL, NULL},
		{"incperm.example", "192.0.2.1", SPF_PERMERROR, NULL, NULL},
		/* redirect */
		{"redirect.example", "192.0.2.77", SPF_PASS, NULL, NULL},
		{"redirect.example", "198.51.100.8", SPF_FAIL, NULL, NULL},
		{"redirall.example", "192.0.2.1", SPF_NEUTRAL, NULL, NULL},
		{"redirnone.example", "192.0.2.1", SPF_PERMERROR, NULL, NULL},
		{"redirmacro.example", "192.0.2.90", SPF_PASS, NULL, NULL},
		{"redirmacro.example", "192.0.2.91", SPF_FAIL, NULL, NULL},
		{"redirfirst.example", "203.0.113.5", SPF_PASS, NULL, NULL},
		{"redirfirst.example", "192.0.2.77", SPF_PASS, NULL, NULL},
		{"redirfirst.example", "203.0.113.6", SPF_FAIL, NULL, NULL},
		/* limits */
		{"loop.example", "192.0.2.1", SPF_PERMERROR, NULL, NULL},
		{"rloop.example", "192.0.2.1", SPF_PERMERROR, NULL, NULL},
		{"limit10.example", "192.0.2.1", SPF_FAIL, NULL, NULL},
		{"limit10.example", "203.0.113.1", SPF_PASS, NULL, NULL},
		{"limit11.example", "192.0.2.1", SPF_PERMERROR, NULL, NULL},
		{"limitmatch.example", "192.0.2.1", SPF_PASS, NULL, NULL},
		{"limitinc.example", "192.0.2.1", SPF_PERMERROR, NULL, NULL},
		{"void2.example", "192.0.2.1", SPF_FAIL, NULL, NULL},
		{"void3.example", "192.0.2.1", SPF_PERMERROR, NULL, NULL},
		/* record selection */
		{"two.example", "192.0.2.1", SPF_PERMERROR, NULL, NULL},
		{"mixed.example", "192.0.2.1", SPF_FAIL, NULL, NULL},
		{"nothing.example", "192.0.2.1", SPF_NONE, NULL, NULL},
		{"nodata.example", "192.0.2.1", SPF_NONE, NULL, NULL},
		{"tempfail.example", "192.0.2.1", SPF_TEMPERROR, NULL, NULL},
		/* syntax */
		{"bad1.example", "192.0.2.1", SPF_PERMERROR, NULL, NULL},
		{"bad2.example", "192.0.2.1", SPF_PERMERROR, NULL, NULL},
		{"bad3.example", "192.0.2.1", SPF_PERMERROR, NULL, NULL},
		{"bad4.example", "192.0.2.1", SPF_PERMERROR, NULL, NULL},
		{"bad5.example", "192.0.2.1", SPF_PERMERROR, NULL, NULL},
		{"bad6.example", "192.0.2.1", SPF_PERMERROR, NULL, NULL},
		{"bad7.example", "192.0.2.1", SPF_PERMERROR, NULL, NULL},
		{"bad8.example", "192.0.2.1", SPF_PERMERROR, NULL, NULL},
		{"bad9.example", "192.0.2.1", SPF_PERMERROR, NULL, NULL},
		{"unknownmod.example", "192.0.2.1", SPF_FAIL, NULL, NULL},
		{"exp.example", "192.0.2.1", SPF_FAIL, NULL, NULL},
		{"upper.example", "192.0.2.1", SPF_PASS, NULL, NULL},
		{"UPPER.Example.", "192.0.2.1", SPF_PASS, NULL, NULL},
		/* HELO identity */
		{"mail.helo.example", "192.0.2.110", SPF_PASS, NULL,
		 "mail.helo.example"},
		{"mail.helo.example", "192.0.2.111", SPF_FAIL, NULL,
		 "mail.helo.example"},
		/* not a domain to check */
		{"localhost", "192.0.2.1", SPF_NONE, NULL, NULL},
		{"", "192.0.2.1", SPF_NONE, NULL, NULL},
		{"[192.0.2.1]", "192.0.2.1", SPF_NONE, NULL, NULL},
		{"a..example", "192.0.2.1", SPF_NONE, NULL, NULL},
		{"a.example;rm", "192.0.2.1", SPF_NONE, NULL, NULL},
		{"x.a234567890123456789012345678901234567890123456789012345"
		 "678901234.example",
		 "192.0.2.1", SPF_NONE, NULL, NULL},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct table_context ctx = {0};
		struct dns_resolver dns = {table_resolve, &ctx};
		struct spf_ip ip;
		CHECK_CASE(spf_ip_parse(cases[i].ip, &ip) == 0, i,
			   cases[i].domain);
		struct spf_outcome out;
		enum spf_result r =
			spf_check(&dns, &ip, cases[i].domain, cases[i].local,
				  cases[i].helo, &out);
		CHECK_CASE(r == cases[i].result && out.result == r, i,
			   cases[i].domain);
		if (r != cases[i].result)
			fprintf(stderr, "  got %s (%s, %s)\n",
				spf_result_name(r), out.reason, out.mechanism);
		CHECK_CASE(out.lookups <= SPF_MAX_DNS_LOOKUPS + 1 &&
				   ctx.queries < 200,
			   i, cases[i].domain);
	}
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

/* The outcome's other fields. */
static void test_outcome(void)
{
	struct table_context ctx = {0};
	struct dns_resolver dns = {table_resolve, &ctx};
	struct spf_ip ip;
	struct spf_outcome out;
	spf_ip_parse("192.0.2.71", &ip);
	CHECK(spf_check(&dns, &ip, "Include.Example", "x", NULL, &out) ==
	      SPF_FAIL);
	CHECK(strcmp(out.domain, "include.example") == 0);
	CHECK(strcmp(out.mechanism, "-all") == 0);
	CHECK(strcmp(out.reason, "matched") == 0);
	CHECK(out.lookups == 1);
	spf_ip_parse("192.0.2.70", &ip);
	CHECK(spf_check(&dns, &ip, "include.example", "x", NULL, &out) ==
	      SPF_PASS);
	CHECK(strcmp(out.mechanism, "include:inc-pass.example") == 0);
	spf_ip_parse("198.51.100.8", &ip);
	CHECK(spf_check(&dns, &ip, "redirect.example", "x", NULL, &out) ==
	      SPF_FAIL);
	CHECK(strcmp(out.mechanism, "redirect=ip4.example") == 0);
	CHECK(spf_check(&dns, &ip, "limit11.example", NULL, NULL, &out) ==
	      SPF_PERMERROR);
	CHECK(strstr(out.reason, "DNS lookups") != NULL);
	CHECK(out.lookups == 11);
	CHECK(spf_check(&dns, &ip, "void3.example", NULL, NULL, &out) ==
	      SPF_PERMERROR);
	CHECK(strstr(out.reason, "void") != NULL && out.void_lookups == 3);
	CHECK(spf_check(&dns, &ip, "nothing.example", NULL, NULL, &out) ==
	      SPF_NONE);
	CHECK(strstr(out.reason, "no SPF record") != NULL);
	CHECK(spf_check(&dns, &ip, "two.example", NULL, NULL, &out) ==
	      SPF_PERMERROR);
	CHECK(strstr(out.reason, "2 SPF records") != NULL);
	CHECK(spf_check(&dns, &ip, "bad1.example", NULL, NULL, &out) ==
	      SPF_PERMERROR);
	CHECK(strstr(out.reason, "unknown mechanism") != NULL);
	CHECK(spf_check(&dns, &ip, "a.example\x01", NULL, NULL, &out) ==
	      SPF_NONE);
	CHECK(strchr(out.domain, '\x01') == NULL);

	/* A mapped address built by hand is still IPv4. */
	struct spf_ip mapped = {.family = AF_INET6};
	inet_pton(AF_INET6, "::ffff:192.0.2.77", &mapped.v6);
	CHECK(spf_check(&dns, &mapped, "ip4.example", NULL, NULL, &out) ==
	      SPF_PASS);

	struct dns_resolver silent = {silent_failure, NULL};
	CHECK(spf_check(&silent, &ip, "a.example", NULL, NULL, &out) ==
	      SPF_TEMPERROR);

	/* Result names. */
	CHECK(strcmp(spf_result_name(SPF_SOFTFAIL), "softfail") == 0);
	CHECK(strcmp(spf_result_name(SPF_PERMERROR), "permerror") == 0);
	CHECK(strcmp(spf_result_name(SPF_NONE), "none") == 0);

	/* Addresses. */
	struct sockaddr_in6 sa6;
	memset(&sa6, 0, sizeof(sa6));
	sa6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "::ffff:198.51.100.1", &sa6.sin6_addr);
	CHECK(spf_ip_from_sockaddr((const struct sockaddr *)&sa6, &ip) == 0 &&
	      ip.family == AF_INET && ntohl(ip.v4.s_addr) == 0xc6336401);
	inet_pton(AF_INET6, "2001:db8::1", &sa6.sin6_addr);
	CHECK(spf_ip_from_sockaddr((const struct sockaddr *)&sa6, &ip) == 0 &&
	      ip.family == AF_INET6);
	struct sockaddr_in sa4;
	memset(&sa4, 0, sizeof(sa4));
	sa4.sin_family = AF_INET;
	sa4.sin_addr.s_addr = htonl(0xc0000201);
	CHECK(spf_ip_from_sockaddr((const struct sockaddr *)&sa4, &ip) == 0 &&
	      ip.family == AF_INET && ip.v4.s_addr == sa4.sin_addr.s_addr);
	struct sockaddr sa = {.sa_family = AF_UNIX};
	CHECK(spf_ip_from_sockaddr(&sa, &ip) < 0);
	CHECK(spf_ip_parse("not an address", &ip) < 0);
}

int main(void)
{
	test_parse();
	test_macros();
	test_check();
	test_outcome();
	return unit_result("smtp_spf");
}
