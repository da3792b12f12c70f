/* test_authres.c: unit tests for src/smtp/authres.c: writing the field
 * (exact strings, folding, hostile names), finding forged fields, and
 * reading a field back. */
#include "unit.h"

#include "smtp/authres.h"

/* ---- writing ---- */

/* Every line of a field within the limit (a tab counted as 8), and line
 * ends only as folds. */
static bool well_folded(struct slice f)
{
	size_t column = 0;
	for (size_t i = 0; i < f.n; i++) {
		uint8_t c = f.p[i];
		if (c == '\r') {
			if (i + 1 >= f.n || f.p[i + 1] != '\n')
				return false;
			/* Only the last line end is not followed by a tab. */
			if (i + 2 < f.n && f.p[i + 2] != '\t')
				return false;
			i++;
			column = 0;
			continue;
		}
		if (c == '\n' || c < 0x09 || (c > 0x09 && c < 0x20) || c > 0x7e)
			return false;
		column += c == '\t' ? 8 : 1;
		if (column > AUTHRES_LINE_LIMIT)
			return false;
	}
	return true;
}

static void test_build(void)
{
	struct spf_outcome spf_pass = {.result = SPF_PASS};
	struct spf_outcome spf_soft = {.result = SPF_SOFTFAIL};
	struct spf_outcome spf_temp = {.result = SPF_TEMPERROR};
	struct dkim_result dkim[] = {
		{.status = DKIM_PASS,
		 .domain = "example.com",
		 .selector = "sel1",
		 .header_b = "abcdEFGH1234"},
		{.status = DKIM_FAIL,
		 .domain =
			 "a-very-long-subdomain-name.of-a-long-domain.example."
			 "com",
		 .selector = "selector2024-long",
		 .header_b = "ab/cd+ef=gh1"},
		{.status = DKIM_PERMERROR,
		 .domain = "exa\"mple;com\r\nX: y",
		 .selector = "s\\1"},
		{.status = DKIM_POLICY, .domain = "example.net"},
		{.status = DKIM_TEMPERROR},
	};
	struct dmarc_result dmarc_pass = {
		.status = DMARC_PASS,
		.from_domain = "example.com",
		.has_record = true,
		.policy = DMARC_POLICY_REJECT,
	};
	struct dmarc_result dmarc_fail = {
		.status = DMARC_FAIL,
		.from_domain = "example.com",
		.has_record = true,
		.policy = DMARC_POLICY_QUARANTINE,
		.disposition = DMARC_POLICY_NONE,
	};
	struct dmarc_result dmarc_none = {
		.status = DMARC_NONE,
		.from_domain = "example.org",
	};
	struct dmarc_result dmarc_perm = {.status = DMARC_PERMERROR};
	static const char long_id[] =
		"a-rather-long-host-name-for-a-mail-exchanger.of.some.example.org";
	const struct {
		struct authres_input in;
		const char *want;
	} cases[] = {
		{{"mx.example.org", &spf_pass, "alice@example.com", "c.example",
		  dkim, 1, &dmarc_pass},
		 "Authentication-Results: mx.example.org;\r\n"
		 "\tspf=pass smtp.mailfrom=alice@example.com;\r\n"
		 "\tdkim=pass header.d=example.com header.s=sel1 "
		 "header.b=abcdEFGH1234;\r\n"
		 "\tdmarc=pass (p=reject dis=none) header.from=example.com\r\n"},
		{{"mx.example.org", &spf_pass, "", "client.example", dkim, 3,
		  &dmarc_pass},
		 "Authentication-Results: mx.example.org;\r\n"
		 "\tspf=pass smtp.helo=client.example;\r\n"
		 "\tdkim=pass header.d=example.com header.s=sel1 "
		 "header.b=abcdEFGH1234;\r\n"
		 "\tdkim=fail\r\n"
		 "\theader.d=a-very-long-subdomain-name.of-a-long-domain."
		 "example.com\r\n"
		 "\theader.s=selector2024-long header.b=\"ab/cd+ef=gh1\";\r\n"
		 "\tdkim=permerror header.d=\"exa\\\"mple;com??X: y\" "
		 "header.s=\"s\\\\1\";\r\n"
		 "\tdmarc=pass (p=reject dis=none) header.from=example.com\r\n"},
		{{"mx.example.org", NULL, NULL, NULL, NULL, 0, NULL},
		 "Authentication-Results: mx.example.org;\r\n\tdkim=none\r\n"},
		{{"evil\r\nX-Injected: 1", &spf_pass, "\"quoted\"@example.com",
		  NULL, NULL, 0, NULL},
		 "Authentication-Results: \"evil??X-Injected: 1\";\r\n"
		 "\tspf=pass smtp.mailfrom=\"\\\"quoted\\\"@example.com\";\r\n"
		 "\tdkim=none\r\n"},
		{{"mx.example.org", &spf_soft, "bob@example.com", NULL, NULL, 0,
		  &dmarc_fail},
		 "Authentication-Results: mx.example.org;\r\n"
		 "\tspf=softfail smtp.mailfrom=bob@example.com;\r\n"
		 "\tdkim=none;\r\n"
		 "\tdmarc=fail (p=quarantine dis=none) header.from=example.com"
		 "\r\n"},
		{{"mx.example.org", &spf_temp, "example.com", NULL, dkim + 3, 2,
		  &dmarc_none},
		 "Authentication-Results: mx.example.org;\r\n"
		 "\tspf=temperror smtp.mailfrom=example.com;\r\n"
		 "\tdkim=policy header.d=example.net;\r\n"
		 "\tdkim=temperror;\r\n"
		 "\tdmarc=none header.from=example.org\r\n"},
		{{"mx.example.org", NULL, NULL, NULL, NULL, 0, &dmarc_perm},
		 "Authentication-Results: mx.example.org;\r\n"
		 "\tdkim=none;\r\n\tdmarc=permerror\r\n"},
		{{"mx.example.org", &spf_pass, "a b@example.com", NULL, NULL, 0,
		  NULL},
		 "Authentication-Results: mx.example.org;\r\n"
		 "\tspf=pass smtp.mailfrom=\"a b@example.com\";\r\n"
		 "\tdkim=none\r\n"},
		{{"mx.example.org", &spf_pass, "a..b@example.com", NULL, NULL,
		  0, NULL},
		 "Authentication-Results: mx.example.org;\r\n"
		 "\tspf=pass smtp.mailfrom=\"a..b@example.com\";\r\n"
		 "\tdkim=none\r\n"},
		{{"mx.example.org", &spf_pass, "user+tag@sub.example.com", NULL,
		  NULL, 0, NULL},
		 "Authentication-Results: mx.example.org;\r\n"
		 "\tspf=pass smtp.mailfrom=user+tag@sub.example.com;\r\n"
		 "\tdkim=none\r\n"},
		{{"mx.example.org", &spf_pass, "x@ex\xc3\xa4mple.com", NULL,
		  NULL, 0, NULL},
		 "Authentication-Results: mx.example.org;\r\n"
		 "\tspf=pass smtp.mailfrom=\"x@ex??mple.com\";\r\n"
		 "\tdkim=none\r\n"},
		{{"", NULL, NULL, NULL, NULL, 0, NULL},
		 "Authentication-Results: \"\";\r\n\tdkim=none\r\n"},
		{{long_id, &spf_pass, "someone@example.com", NULL, NULL, 0,
		  NULL},
		 "Authentication-Results:\r\n"
		 "\ta-rather-long-host-name-for-a-mail-exchanger.of.some."
		 "example.org;\r\n"
		 "\tspf=pass smtp.mailfrom=someone@example.com;\r\n"
		 "\tdkim=none\r\n"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct buf out;
		buf_init(&out, 1 << 16);
		authres_build_field(&cases[i].in, &out);
		bool same = out.n == strlen(cases[i].want) &&
			    memcmp(out.p, cases[i].want, out.n) == 0;
		CHECK_CASE(same, i, cases[i].want);
		if (!same)
			fprintf(stderr, "  got: %.*s\n", (int)out.n,
				(const char *)out.p);
		CHECK_CASE(well_folded(buf_slice(&out)), i, cases[i].want);
		/* What we write, we read back. */
		struct slice value = buf_slice(&out);
		value.p += strlen("Authentication-Results:");
		value.n -= strlen("Authentication-Results:") + 2;
		struct authres_summary sum;
		const char *error = NULL;
		CHECK_CASE(authres_parse(value, &sum, &error) == 0, i,
			   cases[i].want);
		buf_free(&out);
	}

	/* The value alone starts with a space and has no final CRLF. */
	struct buf out;
	buf_init(&out, 4096);
	authres_build_value(&cases[0].in, &out);
	CHECK(out.n > 2 && out.p[0] == ' ' && out.p[out.n - 1] == 'm');
	buf_free(&out);

	/* A name of every byte stays within one quoted string. */
	struct dkim_result hostile = {.status = DKIM_FAIL};
	for (size_t i = 0; i < sizeof(hostile.domain) - 1; i++)
		hostile.domain[i] = (char)(i % 255 + 1);
	struct authres_input in = {"mx.example.org", NULL, NULL, NULL,
				   &hostile,	     1,	   NULL};
	buf_init(&out, 1 << 16);
	authres_build_field(&in, &out);
	/* Line ends only as folds, no other control or 8-bit byte. */
	bool clean = true;
	for (size_t i = 0; i + 2 < out.n; i++) {
		uint8_t c = out.p[i];
		if (c == '\r') {
			clean = clean && out.p[i + 1] == '\n' &&
				out.p[i + 2] == '\t';
			i++;
		} else if (c == '\n' || c >= 0x7f || (c < 0x20 && c != '\t')) {
			clean = false;
		}
	}
	CHECK(clean);
	struct slice v = buf_slice(&out);
	v.p += 23;
	v.n -= 25;
	struct authres_summary sum;
	const char *error;
	CHECK(authres_parse(v, &sum, &error) == 0);
	CHECK(sum.count == 1 && strcmp(sum.results[0].result, "fail") == 0);
	buf_free(&out);

	/* Overlong values are cut to what the reader keeps. */
	char long_name[600];
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	long_name[10] = ' ';
	struct authres_input long_in = {long_name, NULL, NULL, NULL,
					NULL,	   0,	 NULL};
	buf_init(&out, 1 << 16);
	authres_build_value(&long_in, &out);
	CHECK(authres_parse(buf_slice(&out), &sum, &error) == 0);
	CHECK(strlen(sum.authserv_id) == AUTHRES_MAX_VALUE - 1);
	buf_free(&out);
}

/* ---- forged fields ---- */

static void test_forged(void)
{
	static const char header[] =
		"Received: from x by y; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
		"Authentication-Results: mx.example.org; spf=pass\r\n"
		"authentication-results : MX.EXAMPLE.ORG;\r\n"
		"\tdkim=pass header.d=example.com\r\n"
		"Authentication-Results: other.example; spf=fail\r\n"
		"Authentication-Results: (comment) \"mx.example.org\"; none\r\n"
		"Authentication-Results: mx.example.org.evil; spf=pass\r\n"
		"Authentication-Results:mx.example.org.\r\n"
		"X-Authentication-Results: mx.example.org; spf=pass\r\n"
		"Subject: x\r\n"
		"\r\n"
		"Authentication-Results: mx.example.org; in the body\r\n";
	static const char kept[] =
		"Received: from x by y; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
		"Authentication-Results: other.example; spf=fail\r\n"
		"Authentication-Results: mx.example.org.evil; spf=pass\r\n"
		"X-Authentication-Results: mx.example.org; spf=pass\r\n"
		"Subject: x\r\n"
		"\r\n"
		"Authentication-Results: mx.example.org; in the body\r\n";
	struct slice h = slice_cstr(header);
	size_t pos = 0;
	struct authres_range r;
	static const char *const found[] = {
		"Authentication-Results: mx.example.org; spf=pass\r\n",
		("authentication-results : MX.EXAMPLE.ORG;\r\n"
		 "\tdkim=pass header.d=example.com\r\n"),
		"Authentication-Results: (comment) \"mx.example.org\"; none\r\n",
		"Authentication-Results:mx.example.org.\r\n",
	};
	for (size_t i = 0; i < ARRAY_SIZE(found); i++) {
		CHECK_CASE(authres_next_forged(h, "mx.example.org", &pos, &r),
			   i, found[i]);
		CHECK_CASE(r.offset + r.length <= h.n &&
				   r.length == strlen(found[i]) &&
				   memcmp(h.p + r.offset, found[i], r.length) ==
					   0,
			   i, found[i]);
	}
	CHECK(!authres_next_forged(h, "mx.example.org", &pos, &r));
	CHECK(!authres_next_forged(h, "mx.example.org", &pos, &r));

	struct buf out;
	buf_init(&out, 4096);
	CHECK(authres_remove_forged(h, "mx.example.org", &out) == 4);
	CHECK(out.n == strlen(kept) && memcmp(out.p, kept, out.n) == 0);
	buf_reset(&out);
	CHECK(authres_remove_forged(h, "MX.example.org.", &out) == 4);
	buf_reset(&out);
	CHECK(authres_remove_forged(h, "nobody.example", &out) == 0);
	CHECK(out.n == h.n && memcmp(out.p, h.p, h.n) == 0);
	buf_reset(&out);

	/* LF line ends, no blank line, no final line end. */
	static const char lf[] = "A: b\nAuthentication-Results: mx.example.org;"
				 " spf=pass\n continued\nC: d\n"
				 "Authentication-Results: mx.example.org";
	CHECK(authres_remove_forged(slice_cstr(lf), "mx.example.org", &out) ==
	      2);
	CHECK(out.n == 10 && memcmp(out.p, "A: b\nC: d\n", 10) == 0);
	buf_reset(&out);
	/* Unparsable values are not ours. */
	static const char odd[] = "Authentication-Results: ;\r\n"
				  "Authentication-Results: (unterminated\r\n"
				  "Authentication-Results: \"mx.example.org\r\n"
				  "Authentication-Results\r\n"
				  "\r\n";
	CHECK(authres_remove_forged(slice_cstr(odd), "mx.example.org", &out) ==
	      0);
	buf_free(&out);
	pos = 0;
	CHECK(!authres_next_forged(slice_make(NULL, 0), "x", &pos, &r));
}

/* ---- reading ---- */

struct want_result {
	const char *method, *result, *header_from, *header_d, *smtp_mailfrom;
};

static bool field_is(const char *have, const char *want)
{
	return strcmp(have, want != NULL ? want : "") == 0;
}

static void test_parse(void)
{
	static const struct {
		const char *value;
		const char *authserv_id; /* NULL: a syntax error */
		size_t count;
		struct want_result r[3];
	} cases[] = {
		{" mx.example.org; spf=pass smtp.mailfrom=alice@example.com; "
		 "dkim=pass header.d=example.com header.s=s1 "
		 "header.b=\"ab/cd\"; dmarc=pass (p=reject dis=none) "
		 "header.from=example.com",
		 "mx.example.org",
		 3,
		 {{"spf", "pass", NULL, NULL, "alice@example.com"},
		  {"dkim", "pass", NULL, "example.com", NULL},
		  {"dmarc", "pass", "example.com", NULL, NULL}}},
		/* RFC 8601 appendix B. */
		{" example.com; none", "example.com", 0, {{0}}},
		{" example.com; spf=pass smtp.mailfrom=example.net",
		 "example.com",
		 1,
		 {{"spf", "pass", NULL, NULL, "example.net"}}},
		{" example.com;\r\n\tauth=pass (cram-md5) "
		 "smtp.auth=sender@example.net;\r\n\tspf=pass "
		 "smtp.mailfrom=example.net",
		 "example.com",
		 2,
		 {{"auth", "pass", NULL, NULL, NULL},
		  {"spf", "pass", NULL, NULL, "example.net"}}},
		{" example.com;\r\n\tsender-id=fail header.from=example.com;"
		 "\r\n\tdkim=pass (good signature) header.d=example.com",
		 "example.com",
		 2,
		 {{"sender-id", "fail", "example.com", NULL, NULL},
		  {"dkim", "pass", NULL, "example.com", NULL}}},
		{" example.com; iprev=pass policy.iprev=192.0.2.200",
		 "example.com",
		 1,
		 {{"iprev", "pass", NULL, NULL, NULL}}},
		{" foo.example.net (foobar) 1 (baz);\r\n\tdkim (Because I like "
		 "it) / 1 (One yay) = (wait for it) fail\r\n\t  policy (A dot "
		 "can go here) . (like that) expired\r\n\t  (this surprised "
		 "me) = (as I wasn't expecting it) 1362471462",
		 "foo.example.net",
		 1,
		 {{"dkim", "fail", NULL, NULL, NULL}}},
		/* Quoting, folding, reasons, case. */
		{"\"mx.example.org\"; SPF=Pass",
		 "mx.example.org",
		 1,
		 {{"spf", "pass", NULL, NULL, NULL}}},
		{"x; dmarc=pass header.from=\"ex\\\"ample.com\"",
		 "x",
		 1,
		 {{"dmarc", "pass", "ex\"ample.com", NULL, NULL}}},
		{"x;\r\n\tspf=pass\r\n smtp.mailfrom=a@b.example",
		 "x",
		 1,
		 {{"spf", "pass", NULL, NULL, "a@b.example"}}},
		{"x; spf=pass smtp.mailfrom=\"a b\"@b.example",
		 "x",
		 1,
		 {{"spf", "pass", NULL, NULL, "a b@b.example"}}},
		{"x; dkim=fail reason=\"bad sig\" header.d=example.com",
		 "x",
		 1,
		 {{"dkim", "fail", NULL, "example.com", NULL}}},
		{"x 1; spf=pass", "x", 1, {{"spf", "pass", NULL, NULL, NULL}}},
		{"x; spf=pass;", "x", 1, {{"spf", "pass", NULL, NULL, NULL}}},
		{"x; dkim=pass header.d=a.example header.d=b.example",
		 "x",
		 1,
		 {{"dkim", "pass", NULL, "a.example", NULL}}},
		{"x; dkim=pass header.b=ab/cd+e=",
		 "x",
		 1,
		 {{"dkim", "pass", NULL, NULL, NULL}}},
		{"x; dmarc=pass header.from=J\xc3\xb6rg.example",
		 NULL,
		 0,
		 {{0}}},
		/* Garbage. */
		{"", NULL, 0, {{0}}},
		{"   ", NULL, 0, {{0}}},
		{"x", NULL, 0, {{0}}},
		{"x;", NULL, 0, {{0}}},
		{"x; spf", NULL, 0, {{0}}},
		{"x; spf=", NULL, 0, {{0}}},
		{"x; spf=pass smtp", NULL, 0, {{0}}},
		{"x; spf=pass smtp.mailfrom", NULL, 0, {{0}}},
		{"x; spf=pass smtp.mailfrom=", NULL, 0, {{0}}},
		{"x; spf=pass (unterminated", NULL, 0, {{0}}},
		{"x; dmarc=pass header.from=\"unterminated", NULL, 0, {{0}}},
		{"x; none; spf=pass", NULL, 0, {{0}}},
		{"x; spf=pass header.from=a\x01b", NULL, 0, {{0}}},
		{"x; spf=p\xc3\xa9ss", NULL, 0, {{0}}},
		{"x; dkim/=pass", NULL, 0, {{0}}},
		{"x; spf=pass;; dkim=pass", NULL, 0, {{0}}},
		{"x y; spf=pass", NULL, 0, {{0}}},
		{"\"x\x01\"; spf=pass", NULL, 0, {{0}}},
		{"; spf=pass", NULL, 0, {{0}}},
		{"x; spf=pass smtp.mailfrom=\"a\"b", NULL, 0, {{0}}},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct authres_summary sum;
		const char *error = NULL;
		int r = authres_parse(slice_cstr(cases[i].value), &sum, &error);
		if (cases[i].authserv_id == NULL) {
			CHECK_CASE(r < 0 && error != NULL && sum.count == 0 &&
					   sum.authserv_id[0] == '\0',
				   i, cases[i].value);
			continue;
		}
		CHECK_CASE(r == 0, i, cases[i].value);
		if (r < 0)
			fprintf(stderr, "  error: %s\n", error);
		CHECK_CASE(strcmp(sum.authserv_id, cases[i].authserv_id) == 0,
			   i, cases[i].value);
		CHECK_CASE(sum.count == cases[i].count, i, cases[i].value);
		CHECK_CASE(sum.no_result == (cases[i].count == 0), i,
			   cases[i].value);
		for (size_t k = 0; k < cases[i].count && k < sum.count; k++) {
			const struct want_result *w = &cases[i].r[k];
			const struct authres_result *h = &sum.results[k];
			CHECK_CASE(field_is(h->method, w->method) &&
					   field_is(h->result, w->result),
				   i, cases[i].value);
			CHECK_CASE(field_is(h->header_from, w->header_from) &&
					   field_is(h->header_d, w->header_d) &&
					   field_is(h->smtp_mailfrom,
						    w->smtp_mailfrom),
				   i, cases[i].value);
		}
	}

	/* helo, header.i and authres_find. */
	struct authres_summary sum;
	const char *error;
	CHECK(authres_parse(slice_cstr("mx.example.org; spf=none "
				       "smtp.helo=c.example; dkim=pass "
				       "header.i=@example.com; dmarc=fail"),
			    &sum, &error) == 0);
	const struct authres_result *found = authres_find(&sum, "spf");
	CHECK(found != NULL && strcmp(found->smtp_helo, "c.example") == 0);
	found = authres_find(&sum, "dkim");
	CHECK(found != NULL && strcmp(found->header_i, "@example.com") == 0);
	found = authres_find(&sum, "dmarc");
	CHECK(found != NULL && strcmp(found->result, "fail") == 0);
	CHECK(authres_find(&sum, "arc") == NULL);

	/* More results than kept. */
	struct buf many;
	buf_init(&many, 4096);
	buf_append_cstr(&many, "x");
	for (int i = 0; i < AUTHRES_MAX_RESULTS + 4; i++)
		buf_printf(&many, "; m%d=pass", i);
	CHECK(authres_parse(buf_slice(&many), &sum, &error) == 0 &&
	      sum.count == AUTHRES_MAX_RESULTS &&
	      strcmp(sum.results[AUTHRES_MAX_RESULTS - 1].method, "m15") == 0);
	/* A value too long to keep. */
	buf_reset(&many);
	buf_append_cstr(&many, "x; dmarc=pass header.from=");
	for (int i = 0; i < AUTHRES_MAX_VALUE; i++)
		buf_append_cstr(&many, "a");
	CHECK(authres_parse(buf_slice(&many), &sum, &error) < 0);
	/* Deeply nested comments. */
	buf_reset(&many);
	buf_append_cstr(&many, "x; ");
	for (int i = 0; i < 1000; i++)
		buf_append_cstr(&many, "(");
	for (int i = 0; i < 1000; i++)
		buf_append_cstr(&many, ")");
	buf_append_cstr(&many, "spf=pass");
	CHECK(authres_parse(buf_slice(&many), &sum, &error) == 0 &&
	      sum.count == 1);
	buf_free(&many);
	/* A NUL. */
	CHECK(authres_parse(slice_make("x; spf=pass\0", 12), &sum, &error) < 0);
}

int main(void)
{
	test_build();
	test_forged();
	test_parse();
	return unit_result("smtp_authres");
}
