/* test_parser.c: unit tests for src/smtp/parser.c: line framing, commands,
 * paths and parameters, the DATA reader (fed in every possible split) and
 * the BDAT checker. */
#include "unit.h"

#include "smtp/parser.h"

static void test_find_line(void)
{
	static const struct {
		const char *in;
		size_t max;
		enum smtp_line_result r;
		size_t len;
	} cases[] = {
		{"", 512, SMTP_LINE_NEED_MORE, 0},
		{"NOOP", 512, SMTP_LINE_NEED_MORE, 0},
		{"NOOP\r", 512, SMTP_LINE_NEED_MORE, 0},
		{"NOOP\r\n", 512, SMTP_LINE_OK, 6},
		{"NOOP\r\nQUIT\r\n", 512, SMTP_LINE_OK, 6},
		{"NOOP\n", 512, SMTP_LINE_BARE, 0},
		{"NO\rOP\r\n", 512, SMTP_LINE_BARE, 0},
		{"12345678\r\n", 10, SMTP_LINE_OK, 10},
		{"123456789\r\n", 10, SMTP_LINE_TOO_LONG, 0},
		{"123456789\r", 10, SMTP_LINE_TOO_LONG, 0},
		{"1234567890", 10, SMTP_LINE_TOO_LONG, 0},
		{"123456789", 10, SMTP_LINE_NEED_MORE, 0},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		size_t len = 0;
		enum smtp_line_result r = smtp_find_line(
			slice_cstr(cases[i].in), cases[i].max, &len);
		CHECK_CASE(r == cases[i].r, i, cases[i].in);
		if (r == SMTP_LINE_OK)
			CHECK_CASE(len == cases[i].len, i, cases[i].in);
	}
}

static void test_commands(void)
{
	static const struct {
		const char *line;
		enum smtp_parse_result r;
		enum smtp_verb verb;
		const char *reply_prefix; /* on failure */
	} cases[] = {
		{"EHLO client.example.org", SMTP_PARSE_OK, SMTP_VERB_EHLO,
		 NULL},
		{"ehlo [192.0.2.1]", SMTP_PARSE_OK, SMTP_VERB_EHLO, NULL},
		{"EHLO", SMTP_PARSE_SYNTAX, 0, "501 5.5.4"},
		{"HELO x", SMTP_PARSE_OK, SMTP_VERB_HELO, NULL},
		{"MAIL FROM:<a@b.example>", SMTP_PARSE_OK, SMTP_VERB_MAIL,
		 NULL},
		{"MAIL FROM: <a@b.example>", SMTP_PARSE_OK, SMTP_VERB_MAIL,
		 NULL},
		{"mail from:<>", SMTP_PARSE_OK, SMTP_VERB_MAIL, NULL},
		{"MAIL FROM:<a@b.example> SIZE=1000 BODY=8BITMIME",
		 SMTP_PARSE_OK, SMTP_VERB_MAIL, NULL},
		{"MAIL FROM:<a@b.example> SIZE=99999999999999999999",
		 SMTP_PARSE_SYNTAX, 0, "501 5.5.4 Bad SIZE"},
		{"MAIL FROM:<a@b.example> SIZE=12x", SMTP_PARSE_SYNTAX, 0,
		 "501"},
		{"MAIL FROM:<a@b.example> FOO=BAR", SMTP_PARSE_SYNTAX, 0,
		 "555 5.5.4"},
		{"MAIL FROM:<a@b.example>SIZE=1", SMTP_PARSE_SYNTAX, 0, "501"},
		{"MAIL FROM:a@b.example", SMTP_PARSE_SYNTAX, 0, "501 5.1.7"},
		{"MAIL TO:<a@b.example>", SMTP_PARSE_SYNTAX, 0, "501 5.5.4"},
		{"MAIL FROM:<;touch /tmp/p;>", SMTP_PARSE_SYNTAX, 0, "501"},
		{"RCPT TO:<`id`@x>", SMTP_PARSE_SYNTAX, 0, "501"},
		{"RCPT TO:<@a.example,@b.example:u@c.example>",
		 SMTP_PARSE_SYNTAX, 0, "501 5.1.3 Source routes"},
		{"RCPT TO:<u%c.example@b.example>", SMTP_PARSE_SYNTAX, 0,
		 "501"},
		{"RCPT TO:<\"u@c\"@b.example>", SMTP_PARSE_SYNTAX, 0, "501"},
		{"RCPT TO:<\"john doe\"@b.example>", SMTP_PARSE_OK,
		 SMTP_VERB_RCPT, NULL},
		{"RCPT TO:<>", SMTP_PARSE_SYNTAX, 0, "501 5.1.3"},
		{"RCPT TO:<a@b.example> NOTIFY=NEVER", SMTP_PARSE_SYNTAX, 0,
		 "555"},
		{"RCPT TO:<a..b@b.example>", SMTP_PARSE_SYNTAX, 0, "501"},
		{"RCPT TO:<a@-b.example>", SMTP_PARSE_SYNTAX, 0, "501 5.1.2"},
		{"RCPT TO:<a@b..example>", SMTP_PARSE_SYNTAX, 0, "501 5.1.2"},
		{"RCPT TO:<a@[192.0.2.1]>", SMTP_PARSE_OK, SMTP_VERB_RCPT,
		 NULL},
		{"RCPT TO:<j\xc3\xb6rg@b\xc3\xbc.example>", SMTP_PARSE_OK,
		 SMTP_VERB_RCPT, NULL},
		{"RCPT TO:<j\xc3@b.example>", SMTP_PARSE_SYNTAX, 0,
		 "501 5.6.7"},
		{"DATA", SMTP_PARSE_OK, SMTP_VERB_DATA, NULL},
		{"DATA x", SMTP_PARSE_SYNTAX, 0, "501"},
		{"BDAT 100", SMTP_PARSE_OK, SMTP_VERB_BDAT, NULL},
		{"BDAT 0 LAST", SMTP_PARSE_OK, SMTP_VERB_BDAT, NULL},
		{"BDAT 18446744073709551616", SMTP_PARSE_SYNTAX, 0, "501"},
		{"BDAT FFFFFFFFFFFFFFFFF", SMTP_PARSE_SYNTAX, 0, "501"},
		{"BDAT 10 FIRST", SMTP_PARSE_SYNTAX, 0, "501"},
		{"BDAT -1", SMTP_PARSE_SYNTAX, 0, "501"},
		{"RSET", SMTP_PARSE_OK, SMTP_VERB_RSET, NULL},
		{"NOOP anything", SMTP_PARSE_OK, SMTP_VERB_NOOP, NULL},
		{"QUIT", SMTP_PARSE_OK, SMTP_VERB_QUIT, NULL},
		{"VRFY bob", SMTP_PARSE_OK, SMTP_VERB_VRFY, NULL},
		{"VRFY", SMTP_PARSE_SYNTAX, 0, "501"},
		{"STARTTLS", SMTP_PARSE_OK, SMTP_VERB_STARTTLS, NULL},
		{"AUTH PLAIN", SMTP_PARSE_OK, SMTP_VERB_AUTH, NULL},
		{"AUTH PLAIN AGEAYg==", SMTP_PARSE_OK, SMTP_VERB_AUTH, NULL},
		{"AUTH", SMTP_PARSE_SYNTAX, 0, "501"},
		{"AUTH PLAIN a b", SMTP_PARSE_SYNTAX, 0, "501"},
		{"XYZZY", SMTP_PARSE_UNKNOWN, 0, "500 5.5.2"},
		{"", SMTP_PARSE_UNKNOWN, 0, "500"},
		{"NOOP a\0b", SMTP_PARSE_OK, SMTP_VERB_NOOP, NULL},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct smtp_command cmd;
		const char *reply = NULL;
		enum smtp_parse_result r = smtp_parse_command(
			slice_cstr(cases[i].line), &cmd, &reply);
		CHECK_CASE(r == cases[i].r, i, cases[i].line);
		if (r == SMTP_PARSE_OK && cases[i].r == SMTP_PARSE_OK)
			CHECK_CASE(cmd.verb == cases[i].verb, i, cases[i].line);
		if (cases[i].reply_prefix != NULL)
			CHECK_CASE(
				reply != NULL &&
					strncmp(reply, cases[i].reply_prefix,
						strlen(cases[i].reply_prefix)) ==
						0,
				i, cases[i].line);
	}
	/* A NUL inside the line (not seen by slice_cstr above). */
	struct smtp_command cmd;
	const char *reply;
	CHECK(smtp_parse_command(slice_make("NOOP a\0b", 8), &cmd, &reply) ==
	      SMTP_PARSE_UNKNOWN);
	/* Parameters and values. */
	CHECK(smtp_parse_command(
		      slice_cstr(
			      "MAIL FROM:<a@b.example> SIZE=4096 SMTPUTF8 BODY=8BITMIME"),
		      &cmd, &reply) == SMTP_PARSE_OK);
	CHECK(cmd.has_size && cmd.size == 4096 && cmd.smtputf8 &&
	      cmd.body == SMTP_BODY_8BITMIME);
	CHECK(cmd.address.local.n == 1 && cmd.address.domain.n == 9);
	CHECK(smtp_parse_command(slice_cstr("BDAT 512 LAST"), &cmd, &reply) ==
	      SMTP_PARSE_OK);
	CHECK(cmd.chunk_size == 512 && cmd.last);
	CHECK(smtp_parse_command(slice_cstr("AUTH LOGIN ="), &cmd, &reply) ==
	      SMTP_PARSE_OK);
	CHECK(cmd.has_initial_response && cmd.initial_response.n == 1);
	CHECK(smtp_parse_command(slice_cstr("MAIL FROM:<>"), &cmd, &reply) ==
	      SMTP_PARSE_OK);
	CHECK(cmd.address.null_path);
}

/* Feeds input in pieces split at cut; returns consumed total and whether
 * the end was found. */
static bool feed_split(const char *in, size_t len, size_t cut, struct buf *out,
		       struct smtp_data_reader *r, size_t *consumed_total)
{
	smtp_data_reader_init(r);
	size_t consumed;
	*consumed_total = 0;
	if (cut > 0) {
		if (smtp_data_feed(r, slice_make(in, cut), out, &consumed)) {
			*consumed_total = consumed;
			return true;
		}
		*consumed_total = cut;
	}
	bool done = smtp_data_feed(r, slice_make(in + cut, len - cut), out,
				   &consumed);
	*consumed_total += consumed;
	return done;
}

static void test_data_reader(void)
{
	static const struct {
		const char *in;
		bool done;
		const char *content;
		size_t consumed;
		enum smtp_data_error error;
	} cases[] = {
		{".\r\n", true, "", 3, SMTP_DATA_ERROR_NONE},
		{"a\r\n.\r\nNEXT", true, "a\r\n", 6, SMTP_DATA_ERROR_NONE},
		{"..dot\r\n.\r\n", true, ".dot\r\n", 10, SMTP_DATA_ERROR_NONE},
		{"a\r\n.x\r\n.\r\n", true, "a\r\nx\r\n", 10,
		 SMTP_DATA_ERROR_NONE},
		{"a\r\n", false, "a\r\n", 3, SMTP_DATA_ERROR_NONE},
		/* Smuggling: none of these ends the data. */
		{"a\n.\nMAIL", false, NULL, 8, SMTP_DATA_ERROR_BARE_LINE_END},
		{"a\n.\r\nMAIL", false, NULL, 9, SMTP_DATA_ERROR_BARE_LINE_END},
		{"a\r.\r\nMAIL", false, NULL, 9, SMTP_DATA_ERROR_BARE_LINE_END},
		{"a\r\n.\nMAIL", false, NULL, 9, SMTP_DATA_ERROR_BARE_LINE_END},
		{"a\r\n.\rMAIL", false, NULL, 9, SMTP_DATA_ERROR_BARE_LINE_END},
		/* ... and the real end after them is still found. */
		{"a\n.\nX\r\n.\r\n", true, NULL, 10,
		 SMTP_DATA_ERROR_BARE_LINE_END},
		{"a\rb\r\n.\r\n", true, NULL, 8, SMTP_DATA_ERROR_BARE_LINE_END},
		{"a\nb\r\n.\r\n", true, NULL, 8, SMTP_DATA_ERROR_BARE_LINE_END},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		size_t len = strlen(cases[i].in);
		for (size_t cut = 0; cut <= len; cut++) {
			struct buf out;
			buf_init(&out, 1 << 20);
			struct smtp_data_reader r;
			size_t consumed;
			bool done = feed_split(cases[i].in, len, cut, &out, &r,
					       &consumed);
			CHECK_CASE(done == cases[i].done, i, cases[i].in);
			CHECK_CASE(consumed == cases[i].consumed, i,
				   cases[i].in);
			CHECK_CASE(r.error == cases[i].error, i, cases[i].in);
			if (cases[i].content != NULL)
				CHECK_CASE(
					out.n == strlen(cases[i].content) &&
						(out.n == 0 ||
						 memcmp(out.p, cases[i].content,
							out.n) == 0),
					i, cases[i].in);
			buf_free(&out);
		}
	}
	/* Line length: 998 octets pass, 999 do not. */
	char line[1200];
	for (size_t n = 998; n <= 999; n++) {
		memset(line, 'x', n);
		memcpy(line + n, "\r\n.\r\n", 5);
		struct buf out;
		buf_init(&out, 1 << 20);
		struct smtp_data_reader r;
		size_t consumed;
		smtp_data_reader_init(&r);
		CHECK(smtp_data_feed(&r, slice_make(line, n + 5), &out,
				     &consumed));
		CHECK(r.error == (n == 998 ? SMTP_DATA_ERROR_NONE
					   : SMTP_DATA_ERROR_LINE_TOO_LONG));
		buf_free(&out);
	}
	/* Size: content over the buffer's maximum is an error, and the end is
	 * still found. */
	struct buf small;
	buf_init(&small, 4);
	struct smtp_data_reader r;
	size_t consumed;
	smtp_data_reader_init(&r);
	CHECK(smtp_data_feed(&r, slice_cstr("abcdef\r\n.\r\n"), &small,
			     &consumed));
	CHECK(r.error == SMTP_DATA_ERROR_TOO_BIG && consumed == 11);
	buf_free(&small);
}

static void test_bdat_checker(void)
{
	static const struct {
		const char *chunks[3];
		enum smtp_data_error error;
	} cases[] = {
		{{"a\r\nb\r\n", NULL}, SMTP_DATA_ERROR_NONE},
		{{"a\r", "\nb\r\n", NULL}, SMTP_DATA_ERROR_NONE},
		{{"a\r", "b", NULL}, SMTP_DATA_ERROR_BARE_LINE_END},
		{{"a\nb", NULL}, SMTP_DATA_ERROR_BARE_LINE_END},
		{{"a\r\n", "\n", NULL}, SMTP_DATA_ERROR_BARE_LINE_END},
		{{"abc\r", NULL}, SMTP_DATA_ERROR_BARE_LINE_END},
		{{"no line end", NULL}, SMTP_DATA_ERROR_NONE},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct smtp_bdat_checker c;
		smtp_bdat_checker_init(&c);
		for (size_t k = 0; k < 3 && cases[i].chunks[k]; k++)
			smtp_bdat_check(&c, slice_cstr(cases[i].chunks[k]));
		smtp_bdat_finish(&c);
		CHECK_CASE(c.error == cases[i].error, i, cases[i].chunks[0]);
	}
}

int main(void)
{
	test_find_line();
	test_commands();
	test_data_reader();
	test_bdat_checker();
	return unit_result("smtp_parser");
}
