/* test_dsn.c: unit tests for src/smtp/dsn.c: status codes from replies
 * and the shape of a notice (RFC 3464). */
#include "unit.h"

#include "smtp/dsn.h"

static void test_status(void)
{
	static const struct {
		const char *reply;
		bool delayed;
		const char *status;
	} cases[] = {
		{"550 5.1.1 no such user", false, "5.1.1"},
		{"550-5.7.1 policy", false, "5.7.1"},
		{"452 4.2.2 mailbox full", true, "4.2.2"},
		{"550 no enhanced code", false, "5.0.0"},
		{"451 try later", true, "4.0.0"},
		{"550 4.1.1 disagrees with the class", false, "5.0.0"},
		{"556 5.1.10 null MX", false, "5.1.10"},
		{"550 5.1.", false, "5.0.0"},
		{"550 5.1.1x", false, "5.0.0"},
		{"not a reply", false, "5.0.0"},
		{"not a reply", true, "4.0.0"},
		{"", false, "5.0.0"},
		{"550 5.123456789.1 long", false, "5.0.0"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char status[16];
		dsn_status(cases[i].reply, cases[i].delayed, status);
		CHECK_CASE(strcmp(status, cases[i].status) == 0, i,
			   cases[i].reply);
	}
}

static bool contains(const struct buf *b, const char *s)
{
	return memmem(b->p, b->n, s, strlen(s)) != NULL;
}

static void test_build(void)
{
	static const char original[] = "Received: x\nFrom: a@example.test\n"
				       "Subject: hello\n\nsecret body\n";
	struct dsn_recipient r[2] = {
		{"bob@remote.test", "550 5.1.1 <bob@remote.test>: unknown",
		 true, "mx.remote.test"},
		{"eve@evil.test\r\nBcc: x@y", "451 4.4.1 connect failed", false,
		 NULL},
	};
	struct dsn_report report = {
		.hostname = "mail.example.test",
		.sender = "a@example.test",
		.arrival = 1795380000,
		.now = 1795383600,
		.delayed = false,
		.recipients = r,
		.recipient_count = 2,
		.original = slice_make(original, sizeof(original) - 1),
	};
	struct buf b;
	buf_init(&b, 1 << 20);
	CHECK(dsn_build(&report, &b) == 0);
	CHECK(contains(&b, "From: Mail Delivery System "
			   "<MAILER-DAEMON@mail.example.test>\r\n"));
	CHECK(contains(&b, "To: <a@example.test>\r\n"));
	CHECK(contains(&b, "Content-Type: multipart/report; "
			   "report-type=delivery-status;"));
	CHECK(contains(&b, "Reporting-MTA: dns; mail.example.test\r\n"));
	CHECK(contains(&b, "Final-Recipient: rfc822; bob@remote.test\r\n"
			   "Action: failed\r\nStatus: 5.1.1\r\n"
			   "Remote-MTA: dns; mx.remote.test\r\n"
			   "Diagnostic-Code: smtp; 550 5.1.1"));
	CHECK(contains(&b, "Diagnostic-Code: X-dijk; 451 4.4.1"));
	CHECK(contains(&b, "Content-Type: text/rfc822-headers\r\n\r\n"
			   "Received: x\r\nFrom: a@example.test\r\n"
			   "Subject: hello\r\n"));
	/* The body of the original stays out, and a recipient's CR LF
	 * cannot start a header field of its own. */
	CHECK(!contains(&b, "secret body"));
	CHECK(!contains(&b, "\r\nBcc: x@y"));
	/* Every line ends in CRLF. */
	bool bare = false;
	for (size_t i = 0; i < b.n; i++)
		if (b.p[i] == '\n' && (i == 0 || b.p[i - 1] != '\r'))
			bare = true;
	CHECK(!bare);
	buf_free(&b);

	report.delayed = true;
	buf_init(&b, 1 << 20);
	CHECK(dsn_build(&report, &b) == 0);
	CHECK(contains(&b, "Action: delayed\r\nStatus: 5.1.1"));
	CHECK(contains(&b, "Subject: Delayed mail"));
	buf_free(&b);

	/* An address that is not ASCII makes the report global (RFC 6533),
	 * and an ASCII one stays rfc822 in it. */
	struct dsn_recipient intl[2] = {
		{"j\xc3\xb6rg@remote.test", "553 5.6.7 no SMTPUTF8", false,
		 NULL},
		{"bob@remote.test", "550 5.1.1 unknown", true, NULL},
	};
	report.delayed = false;
	report.recipients = intl;
	buf_init(&b, 1 << 20);
	CHECK(dsn_build(&report, &b) == 0);
	CHECK(contains(&b, "report-type=global-delivery-status;"));
	CHECK(contains(&b, "Content-Type: message/global-delivery-status\r\n"));
	CHECK(contains(&b,
		       "Final-Recipient: utf-8; j\xc3\xb6rg@remote.test\r\n"));
	CHECK(contains(&b, "Final-Recipient: rfc822; bob@remote.test\r\n"));
	CHECK(!contains(&b, "report-type=delivery-status"));
	buf_free(&b);
	report.recipients = r;

	/* Too small a buffer fails cleanly. */
	buf_init(&b, 100);
	CHECK(dsn_build(&report, &b) == -1);
	buf_free(&b);
}

int main(void)
{
	test_status();
	test_build();
	return unit_result("smtp_dsn");
}
