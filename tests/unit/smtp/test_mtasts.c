/* test_mtasts.c: unit tests for src/smtp/mtasts.c: the TXT record, the
 * policy text and mx matching. */
#include "unit.h"

#include "smtp/mtasts.h"

static void test_record(void)
{
	static const struct {
		const char *in;
		const char *id; /* NULL: refused */
	} cases[] = {
		{"v=STSv1; id=20160831085700Z;", "20160831085700Z"},
		{"v=STSv1;id=abc", "abc"},
		{"v=STSv1; id=abc; ext=1", "abc"},
		{"  v=STSv1 ;  id=A1  ", "A1"},
		{"v=STSv1;", NULL},	   /* no id */
		{"id=abc; v=STSv1", NULL}, /* v not first */
		{"v=STSv2; id=abc", NULL},
		{"v=spf1 -all", NULL},
		{"v=STSv1; id=", NULL},
		{"v=STSv1; id=ab-c", NULL}, /* not alnum */
		{"v=STSv1; id=123456789012345678901234567890123", NULL},
		{"v=STSv1; id=12345678901234567890123456789012",
		 "12345678901234567890123456789012"},
		{"v=STSv1; id=a; id=b", NULL},
		{"v=STSv1; junk", NULL},
		{"", NULL},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char id[MTA_STS_MAX_ID + 1] = "";
		int rc = mta_sts_parse_record(slice_cstr(cases[i].in), id);
		CHECK_CASE(rc == (cases[i].id ? 0 : -1), i, cases[i].in);
		if (rc == 0 && cases[i].id)
			CHECK_CASE(strcmp(id, cases[i].id) == 0, i, id);
	}
}

static void test_policy(void)
{
	static const struct {
		const char *in;
		int rc;
		enum mta_sts_mode mode;
		uint32_t max_age;
		size_t mx_count;
	} cases[] = {
		{"version: STSv1\nmode: enforce\nmx: mail.example.com\n"
		 "mx: *.example.net\nmx: backupmx.example.com\n"
		 "max_age: 604800\n",
		 0, MTA_STS_ENFORCE, 604800, 3},
		{"version: STSv1\r\nmode: testing\r\nmx: MX.Example.COM\r\n"
		 "max_age: 86400\r\n",
		 0, MTA_STS_TESTING, 86400, 1},
		{"version: STSv1\nmode: none\nmax_age: 1\n", 0, MTA_STS_NONE, 1,
		 0},
		{"version: STSv1\nmode: enforce\nmx: a.test\n"
		 "max_age: 99999999999\n",
		 -1, 0, 0, 0}, /* too many digits */
		{"version: STSv1\nmode: enforce\nmx: a.test\n"
		 "max_age: 999999999\n",
		 0, MTA_STS_ENFORCE, MTA_STS_MAX_AGE, 1}, /* capped */
		{"version: STSv1\nmode: enforce\nmax_age: 5\n", -1, 0, 0, 0},
		{"mode: enforce\nmx: a.test\nmax_age: 5\n", -1, 0, 0, 0},
		{"version: STSv2\nmode: enforce\nmx: a\nmax_age: 5\n", -1, 0, 0,
		 0},
		{"version: STSv1\nmode: strict\nmx: a\nmax_age: 5\n", -1, 0, 0,
		 0},
		{"version: STSv1\nmode: enforce\nmx: a..b\nmax_age: 5\n", -1, 0,
		 0, 0},
		{"version: STSv1\nmode: enforce\nmx: *.\nmax_age: 5\n", -1, 0,
		 0, 0},
		{"version: STSv1\nmode: enforce\nmx: a b\nmax_age: 5\n", -1, 0,
		 0, 0},
		{"version: STSv1\nmode: enforce\nmx: a.test\nmax_age: -5\n", -1,
		 0, 0, 0},
		{"version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 5\n"
		 "future_key: anything at all\n\n",
		 0, MTA_STS_ENFORCE, 5, 1},
		{"<html>not a policy</html>", -1, 0, 0, 0},
		{"", -1, 0, 0, 0},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct mta_sts_policy p;
		const char *error = NULL;
		int rc = mta_sts_parse_policy(slice_cstr(cases[i].in), &p,
					      &error);
		CHECK_CASE(rc == cases[i].rc, i, cases[i].in);
		if (rc != 0) {
			CHECK_CASE(error != NULL, i, cases[i].in);
			continue;
		}
		CHECK_CASE(p.mode == cases[i].mode, i, cases[i].in);
		CHECK_CASE(p.max_age == cases[i].max_age, i, cases[i].in);
		CHECK_CASE(p.mx_count == cases[i].mx_count, i, cases[i].in);
	}
}

static void test_matching(void)
{
	struct mta_sts_policy p;
	const char *error;
	CHECK(mta_sts_parse_policy(
		      slice_cstr("version: STSv1\nmode: enforce\n"
				 "mx: Mail.Example.com\nmx: *.example.net\n"
				 "max_age: 60\n"),
		      &p, &error) == 0);
	static const struct {
		const char *host;
		bool match;
	} cases[] = {
		{"mail.example.com", true},	  {"mx1.example.net", true},
		{"example.net", false},	    /* wildcard needs a label */
		{"a.b.example.net", false}, /* only one label */
		{"mail.example.com.evil", false}, {"xmail.example.com", false},
		{".example.net", false},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		CHECK_CASE(mta_sts_mx_matches(&p, cases[i].host) ==
				   cases[i].match,
			   i, cases[i].host);
}

int main(void)
{
	test_record();
	test_policy();
	test_matching();
	return unit_result("smtp_mtasts");
}
