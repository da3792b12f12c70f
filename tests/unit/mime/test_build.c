/* test_build.c: unit tests for src/mime/build.c. Messages are built, then
 * read back with the parser of src/mime/ (mime.h and, for addresses and
 * parameters, mime_internal.h), and what comes back must be exactly what
 * went in. Every message built is also checked for its shape: CRLF line
 * ends only, no line over 998, header lines within 78 where the builder
 * could fold, and encoded words of at most 75 characters that each decode
 * to whole UTF-8 characters. */
#include "unit.h"

#include "core/utf8.h"
#include "mime/build.h"
#include "mime/mime.h"
#include "mime/mime_internal.h"

#define OUT_MAX (16u << 20)

/* ---- helpers ---- */

static const struct mime_build_address alice = {"Alice", "alice@example.test"};
static const struct mime_build_address bob = {"Bob", "bob@example.test"};

/* A small valid message; each test changes what it looks at. */
static void base(struct mime_build *b)
{
	memset(b, 0, sizeof(*b));
	b->from = &alice;
	b->from_count = 1;
	b->to = &bob;
	b->to_count = 1;
	b->subject = "Hello";
	b->message_id = "1234.5678@example.test";
	b->date = 1700000000;
	b->text = "Hi Bob.\n";
}

/* Where the header ends (the blank line's first CRLF), or s.n. */
static size_t header_end(struct slice s)
{
	const uint8_t *p = memmem(s.p, s.n, "\r\n\r\n", 4);
	return p == NULL ? s.n : (size_t)(p - s.p) + 2;
}

/* Every line ends in CRLF, with no bare CR or LF and at most 998
 * characters; *longest_header_r is the longest line of the message's
 * header. */
static bool lines_ok(struct slice s, size_t *longest_header_r)
{
	size_t line = 0, hend = header_end(s);
	*longest_header_r = 0;
	for (size_t i = 0; i < s.n; i++) {
		if (s.p[i] == '\r') {
			if (i + 1 >= s.n || s.p[i + 1] != '\n')
				return false;
			if (i < hend && line > *longest_header_r)
				*longest_header_r = line;
			line = 0;
			i++;
			continue;
		}
		if (s.p[i] == '\n' || ++line > 998)
			return false;
	}
	return line == 0; /* the last line ends too */
}

/* Every "=?UTF-8?X?...?=" in the header is at most 75 characters and
 * decodes alone to valid UTF-8: no character is split between words. */
static bool encoded_words_ok(struct slice s)
{
	size_t hend = header_end(s);
	bool ok = true;
	for (size_t i = 0; i + 10 < hend; i++) {
		if (memcmp(s.p + i, "=?UTF-8?", 8) != 0)
			continue;
		uint8_t kind = s.p[i + 8];
		size_t start = i + 10, end = start;
		while (end + 1 < hend &&
		       !(s.p[end] == '?' && s.p[end + 1] == '='))
			end++;
		if (end + 2 - i > 75)
			ok = false;
		struct buf d;
		buf_init(&d, 1024);
		struct slice text = slice_make(s.p + start, end - start);
		if (kind == 'B')
			mime_decode_base64(text, &d);
		else
			mime_decode_qp(text, true, &d);
		if (d.n == 0 || !utf8_valid(buf_slice(&d)))
			ok = false;
		buf_free(&d);
		i = end;
	}
	return ok;
}

/* Builds b into out (emptied first) and checks the message's shape. When
 * fold is true, header lines must also be within 78. */
static int build(const struct mime_build *b, struct buf *out, bool fold)
{
	const char *error = NULL;
	buf_reset(out);
	int r = mime_build_message(b, out, &error);
	if (r < 0) {
		fprintf(stderr, "build failed: %s\n", error);
		return r;
	}
	size_t longest;
	CHECK(lines_ok(buf_slice(out), &longest));
	if (fold)
		CHECK(longest <= 78);
	CHECK(encoded_words_ok(buf_slice(out)));
	return r;
}

/* The unfolded value of the nth field called name in a header block. */
static bool field_value(struct slice h, const char *name, size_t nth,
			struct buf *out)
{
	size_t name_n = strlen(name), pos = 0;
	buf_reset(out);
	while (pos < h.n) {
		size_t eol = pos;
		while (eol < h.n && h.p[eol] != '\r' && h.p[eol] != '\n')
			eol++;
		if (eol == pos)
			return false; /* the blank line */
		bool match = eol - pos > name_n && h.p[pos + name_n] == ':' &&
			     slice_eq_ci(slice_make(h.p + pos, name_n), name);
		size_t next = eol;
		/* Continuation lines join the field, without their CRLF. */
		while (next + 2 < h.n && h.p[next] == '\r' &&
		       (h.p[next + 2] == ' ' || h.p[next + 2] == '\t')) {
			next += 2;
			while (next < h.n && h.p[next] != '\r')
				next++;
		}
		if (match && nth == 0) {
			for (size_t i = pos + name_n + 1; i < next; i++)
				if (h.p[i] != '\r' && h.p[i] != '\n')
					buf_append(out, &h.p[i], 1);
			size_t skip = 0;
			while (skip < out->n && out->p[skip] == ' ')
				skip++;
			memmove(out->p, out->p + skip, out->n - skip);
			out->n -= skip;
			buf_cstr(out);
			return true;
		}
		if (match)
			nth--;
		pos = next + 2;
	}
	return false;
}

/* "name <mailbox@host>" for each address of a field, names decoded,
 * joined by ", ". */
static void addresses_of(struct slice msg, const char *field, struct buf *out)
{
	struct buf value, scratch, name;
	buf_init(&value, 1 << 20);
	buf_init(&scratch, 1 << 20);
	buf_init(&name, 1 << 20);
	buf_reset(out);
	if (field_value(slice_make(msg.p, header_end(msg)), field, 0, &value)) {
		size_t count = 0;
		struct mime_address *list = mime_parse_addresses(
			buf_slice(&value), &scratch, &count);
		for (size_t i = 0; i < count; i++) {
			const struct mime_address *a = &list[i];
			if (i > 0)
				buf_append_cstr(out, ", ");
			if (a->name != MIME_NIL) {
				buf_reset(&name);
				mime_decode_header(
					slice_make(scratch.p + a->name,
						   a->name_len),
					&name);
				buf_append_slice(out, buf_slice(&name));
				buf_append_cstr(out, " ");
			}
			buf_printf(out, "<%.*s@%.*s>", (int)a->mailbox_len,
				   (const char *)scratch.p + a->mailbox,
				   (int)a->host_len,
				   (const char *)scratch.p + a->host);
		}
		free(list);
	}
	buf_cstr(out);
	buf_free(&value);
	buf_free(&scratch);
	buf_free(&name);
}

/* The decoded header value (mime_header_value), or "(none)". */
static const char *header_of(const struct mime_message *m, const char *name,
			     struct buf *out)
{
	buf_reset(out);
	if (!mime_header_value(m, name, out))
		buf_append_cstr(out, "(none)");
	return buf_cstr(out);
}

static const char *crlf(const char *text, struct buf *out)
{
	buf_reset(out);
	for (const char *p = text; *p != '\0'; p++) {
		if (*p == '\r' && p[1] == '\n')
			continue;
		if (*p == '\r' || *p == '\n')
			buf_append_cstr(out, "\r\n");
		else
			buf_append(out, p, 1);
	}
	return buf_cstr(out);
}

/* True when the built message holds the string. */
static bool has(const struct buf *out, const char *s)
{
	return memmem(out->p, out->n, s, strlen(s)) != NULL;
}

static bool slice_eq(struct slice a, const void *p, size_t n)
{
	return a.n == n && (n == 0 || memcmp(a.p, p, n) == 0);
}

/* The decoded content of the part numbered by parts (0-terminated). */
static bool binary_is(const struct mime_message *m, const uint32_t *parts,
		      const void *expect, size_t n)
{
	size_t count = 0;
	while (parts[count] != 0)
		count++;
	struct buf out;
	buf_init(&out, OUT_MAX);
	bool ok = mime_section_binary(m, parts, count, &out) == 0 &&
		  slice_eq(buf_slice(&out), expect, n);
	buf_free(&out);
	return ok;
}

/* The MIME header of the part numbered by parts (0-terminated). */
static void part_header(const struct mime_message *m, const uint32_t *parts,
			struct buf *out)
{
	struct mime_section section = {.kind = MIME_SECTION_MIME};
	while (parts[section.part_count] != 0) {
		section.parts[section.part_count] = parts[section.part_count];
		section.part_count++;
	}
	buf_reset(out);
	if (mime_section_bytes(m, &section, out) < 0)
		buf_reset(out);
}

/* The Content-Type of a part, up to its first ';' (or "(none)"). */
static const char *part_type(const struct mime_message *m,
			     const uint32_t *parts, struct buf *out)
{
	struct buf h;
	buf_init(&h, OUT_MAX);
	part_header(m, parts, &h);
	if (!field_value(buf_slice(&h), "Content-Type", 0, out))
		buf_append_cstr(out, "(none)");
	for (size_t i = 0; i < out->n; i++)
		if (out->p[i] == ';')
			out->n = i;
	buf_free(&h);
	return buf_cstr(out);
}

/* Parameters of a header value, collected by mime_parse_params. */
struct params {
	struct buf plain;    /* NAME="..." */
	struct buf extended; /* NAME*=... or NAME*0*=..., NAME*1*=... joined */
	const char *name;
};

static void collect_param(void *ctx, const struct mime_param *param,
			  const struct buf *scratch)
{
	struct params *p = ctx;
	size_t n = strlen(p->name);
	struct slice value =
		slice_make(scratch->p + param->value_start, param->value_len);
	if (slice_eq_ci(param->name, p->name)) {
		buf_append_slice(&p->plain, value);
		return;
	}
	/* NAME* or NAME*<digits>* (sent in order by the builder). */
	struct slice rest = slice_make(param->name.p + n, param->name.n - n);
	if (param->name.n <= n || !slice_prefix_ci(param->name, p->name) ||
	    rest.p[0] != '*')
		return;
	buf_append_slice(&p->extended, value);
}

/* The file name parameter name (of field) decoded: plain, or RFC 2231
 * joined and percent-decoded, or RFC 2047. */
static const char *param_of(struct slice header, const char *field,
			    const char *name, struct buf *out)
{
	struct buf value, scratch;
	buf_init(&value, 1 << 20);
	buf_init(&scratch, 1 << 20);
	struct params p = {.name = name};
	buf_init(&p.plain, 1 << 20);
	buf_init(&p.extended, 1 << 20);
	buf_reset(out);
	if (field_value(header, field, 0, &value)) {
		const uint8_t *semi = memchr(value.p, ';', value.n);
		if (semi != NULL)
			mime_parse_params(buf_slice(&value),
					  (size_t)(semi - value.p), &scratch,
					  collect_param, &p);
	}
	if (p.extended.n > 0) {
		/* "UTF-8''" then %XX escapes. */
		struct slice e = buf_slice(&p.extended);
		const uint8_t *q = memmem(e.p, e.n, "''", 2);
		size_t i = q == NULL ? 0 : (size_t)(q - e.p) + 2;
		for (; i < e.n; i++) {
			if (e.p[i] == '%' && i + 2 < e.n) {
				char hex[3] = {(char)e.p[i + 1],
					       (char)e.p[i + 2], 0};
				uint8_t c = (uint8_t)strtoul(hex, NULL, 16);
				buf_append(out, &c, 1);
				i += 2;
			} else {
				buf_append(out, &e.p[i], 1);
			}
		}
	} else if (p.plain.n > 0) {
		mime_decode_header(buf_slice(&p.plain), out);
	} else {
		buf_append_cstr(out, "(none)");
	}
	buf_free(&value);
	buf_free(&scratch);
	buf_free(&p.plain);
	buf_free(&p.extended);
	return buf_cstr(out);
}

/* ---- tests ---- */

static void test_address_valid(void)
{
	static const struct {
		const char *email;
		bool valid;
	} cases[] = {
		{"alice@example.test", true},
		{"a.b+tag@sub.example.test", true},
		{"x@localhost", true},
		{"o'brien@xn--bcher-kva.example", true},
		{"\"john doe\"@example.test", true},
		{"\"a\\\"b\"@example.test", true},
		{"\"a@b\"@example.test", true},
		{"a@b>\r\nX:", false},
		{"a b@example.test", false},
		{"<a@example.test>", false},
		{"a@example.test,b@example.test", false},
		{"a(comment)@example.test", false},
		{"a;b@example.test", false},
		{"a:b@example.test", false},
		{"a\\b@example.test", false},
		{".a@example.test", false},
		{"a.@example.test", false},
		{"a..b@example.test", false},
		{"@example.test", false},
		{"a@", false},
		{"a", false},
		{"", false},
		{"a@-b.test", false},
		{"a@b-.test", false},
		{"a@b..test", false},
		{"a@b.test.", false},
		{"a@b_c.test", false},
		{"a@[127.0.0.1]", false},
		{"\"\"@example.test", false},
		{"\"a\r\n\"@example.test", false},
		{"\"a\\\"@example.test", false},
		{"j\xc3\xbcrgen@example.test", false},
		{"a@\xc3\xbc.test", false},
		{"a@b\x7f.test", false},
		{"a@aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		 ".test",
		 true}, /* 63-character label */
		{"a@aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		 ".test",
		 false}, /* 64 */
		{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		 "@example.test",
		 true}, /* 64-character local part */
		{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		 "@example.test",
		 false}, /* 65 */
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		CHECK_CASE(mime_build_address_valid(cases[i].email) ==
				   cases[i].valid,
			   i, cases[i].email);
	CHECK(!mime_build_address_valid(NULL));

	/* 254 octets pass, 255 do not. */
	char long_email[300];
	size_t n = 0;
	memcpy(long_email, "a@", 2);
	n = 2;
	while (n < 254) {
		size_t label = 254 - n > 50 ? 49 : 254 - n;
		memset(long_email + n, 'b', label);
		n += label;
		if (n < 254)
			long_email[n++] = '.';
	}
	long_email[n] = '\0';
	CHECK(strlen(long_email) == 254);
	CHECK(mime_build_address_valid(long_email));
	long_email[n - 1] = '.';
	long_email[n] = 'c';
	long_email[n + 1] = '\0';
	CHECK(strlen(long_email) == 255);
	CHECK(!mime_build_address_valid(long_email));
}

/* The exact bytes of a plain message, to see every header at once. */
static void test_simple(void)
{
	struct mime_build b;
	base(&b);
	static const char *const extra[] = {"User-Agent: dijk"};
	b.extra_headers = extra;
	b.extra_count = 1;
	b.date_offset_minutes = 60;
	struct buf out;
	buf_init(&out, OUT_MAX);
	CHECK(build(&b, &out, true) == 0);
	static const char expect[] =
		"Date: Tue, 14 Nov 2023 23:13:20 +0100\r\n"
		"From: Alice <alice@example.test>\r\n"
		"To: Bob <bob@example.test>\r\n"
		"Subject: Hello\r\n"
		"Message-ID: <1234.5678@example.test>\r\n"
		"User-Agent: dijk\r\n"
		"MIME-Version: 1.0\r\n"
		"Content-Type: text/plain; charset=utf-8\r\n"
		"Content-Transfer-Encoding: 7bit\r\n"
		"\r\n"
		"Hi Bob.\r\n";
	CHECK(slice_eq(buf_slice(&out), expect, sizeof(expect) - 1));
	if (!slice_eq(buf_slice(&out), expect, sizeof(expect) - 1))
		fprintf(stderr, "got:\n%s\n", buf_cstr(&out));

	/* Appending keeps what out held. */
	buf_reset(&out);
	buf_append_cstr(&out, "X");
	const char *error;
	CHECK(mime_build_message(&b, &out, &error) == 0);
	CHECK(out.n == sizeof(expect) && out.p[0] == 'X' &&
	      memcmp(out.p + 1, expect, sizeof(expect) - 1) == 0);
	buf_free(&out);
}

static void test_date(void)
{
	static const struct {
		time_t date;
		int offset;
		const char *expect;
	} cases[] = {
		{0, 0, "Thu, 1 Jan 1970 00:00:00 +0000"},
		{0, -330, "Wed, 31 Dec 1969 18:30:00 -0530"},
		{1700000000, 345, "Wed, 15 Nov 2023 03:58:20 +0545"},
		{951782400, -1439, "Mon, 28 Feb 2000 00:01:00 -2359"},
		{253402300799, 0, "Fri, 31 Dec 9999 23:59:59 +0000"},
	};
	struct buf out, value;
	buf_init(&out, OUT_MAX);
	buf_init(&value, 1024);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct mime_build b;
		base(&b);
		b.date = cases[i].date;
		b.date_offset_minutes = cases[i].offset;
		CHECK_CASE(build(&b, &out, true) == 0, i, cases[i].expect);
		CHECK_CASE(field_value(buf_slice(&out), "Date", 0, &value) &&
				   strcmp(buf_cstr(&value), cases[i].expect) ==
					   0,
			   i, cases[i].expect);
		struct mime_message *m = mime_parse(buf_slice(&out));
		CHECK_CASE(mime_date(m) == (int64_t)cases[i].date, i,
			   cases[i].expect);
		mime_free(&m);
	}
	buf_free(&out);
	buf_free(&value);
}

/* Display names come back exactly, whether plain, quoted or encoded. */
static void test_names(void)
{
	static const char *const names[] = {
		"Alice",
		"Alice Liddell",
		"O'Brien",
		"Smith, John",
		"John Q. Public",
		"a \"quoted\" \\ name",
		"spaces  inside",
		"<not@an.address>",
		"=?utf-8?q?not_encoded?=",
		"J\xc3\xbcrgen M\xc3\xbcller",
		"\xe5\xb1\xb1\xe7\x94\xb0\xe5\xa4\xaa\xe9\x83\x8e",
		"\xf0\x9f\x98\x80 party \xf0\x9f\x8e\x89",
		/* Long enough for several encoded words of each kind. */
		"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe5\x90\x8d"
		"\xe5\x89\x8d\xe3\x81\x8c\xe3\x81\xa8\xe3\x81\xa6\xe3\x82\x82"
		"\xe9\x95\xb7\xe3\x81\x84\xe4\xba\xba\xe3\x81\xa7\xe3\x81\x99"
		"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe5\x90\x8d"
		"\xe5\x89\x8d\xe3\x81\x8c\xe3\x81\xa8\xe3\x81\xa6\xe3\x82\x82"
		"\xe9\x95\xb7\xe3\x81\x84\xe4\xba\xba\xe3\x81\xa7\xe3\x81\x99",
		"Fran\xc3\xa7ois de la Tr\xc3\xa9moille-Saint-Andr\xc3\xa9 et "
		"sa tr\xc3\xa8s longue famille d\xe2\x80\x99"
		"ailleurs",
		"\xf0\x9f\x98\x80\xf0\x9f\x98\x81\xf0\x9f\x98\x82\xf0\x9f\x98"
		"\x83\xf0\x9f\x98\x84\xf0\x9f\x98\x85\xf0\x9f\x98\x86\xf0\x9f"
		"\x98\x87\xf0\x9f\x98\x88\xf0\x9f\x98\x89\xf0\x9f\x98\x8a\xf0"
		"\x9f\x98\x8b\xf0\x9f\x98\x8c\xf0\x9f\x98\x8d\xf0\x9f\x98\x8e",
	};
	struct buf out, got, expect;
	buf_init(&out, OUT_MAX);
	buf_init(&got, 1 << 20);
	buf_init(&expect, 1 << 20);
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		struct mime_build_address to[2] = {
			{names[i], "first@example.test"},
			{names[i], "\"second one\"@example.test"},
		};
		struct mime_build b;
		base(&b);
		b.to = to;
		b.to_count = 2;
		b.from = &to[0];
		CHECK_CASE(build(&b, &out, true) == 0, i, names[i]);
		addresses_of(buf_slice(&out), "To", &got);
		buf_reset(&expect);
		buf_printf(&expect,
			   "%s <first@example.test>, "
			   "%s <\"second one\"@example.test>",
			   names[i], names[i]);
		CHECK_CASE(strcmp(buf_cstr(&got), buf_cstr(&expect)) == 0, i,
			   names[i]);
		if (strcmp(buf_cstr(&got), buf_cstr(&expect)) != 0)
			fprintf(stderr, "  got %s\n", buf_cstr(&got));
		addresses_of(buf_slice(&out), "From", &got);
		buf_reset(&expect);
		buf_printf(&expect, "%s <first@example.test>", names[i]);
		CHECK_CASE(strcmp(buf_cstr(&got), buf_cstr(&expect)) == 0, i,
			   names[i]);
		/* Never raw 8-bit in the header. */
		struct slice h = slice_make(out.p, header_end(buf_slice(&out)));
		bool eight_bit = false;
		for (size_t k = 0; k < h.n; k++)
			eight_bit |= h.p[k] >= 0x80;
		CHECK_CASE(!eight_bit, i, names[i]);
	}

	/* No name, and an empty one, give a bare address. */
	struct mime_build_address bare[2] = {{NULL, "a@example.test"},
					     {"", "b@example.test"}};
	struct mime_build b;
	base(&b);
	b.to = bare;
	b.to_count = 2;
	CHECK(build(&b, &out, true) == 0);
	CHECK(field_value(buf_slice(&out), "To", 0, &got) &&
	      strcmp(buf_cstr(&got), "a@example.test, b@example.test") == 0);

	/* Many addresses fold between addresses, within 78. */
	struct mime_build_address many[40];
	char emails[40][32];
	for (size_t i = 0; i < ARRAY_SIZE(many); i++) {
		snprintf(emails[i], sizeof(emails[i]), "user%zu@example.test",
			 i);
		many[i].name = i % 2 ? "Some Person" : NULL;
		many[i].email = emails[i];
	}
	base(&b);
	b.cc = many;
	b.cc_count = ARRAY_SIZE(many);
	CHECK(build(&b, &out, true) == 0);
	addresses_of(buf_slice(&out), "Cc", &got);
	buf_reset(&expect);
	for (size_t i = 0; i < ARRAY_SIZE(many); i++)
		buf_printf(&expect, "%s%s<%s>", i > 0 ? ", " : "",
			   i % 2 ? "Some Person " : "", emails[i]);
	CHECK(strcmp(buf_cstr(&got), buf_cstr(&expect)) == 0);

	/* Several From need a Sender, which is then written. */
	struct mime_build_address from2[2] = {alice, bob};
	base(&b);
	b.from = from2;
	b.from_count = 2;
	b.sender = &alice;
	b.reply_to = &bob;
	b.reply_to_count = 1;
	CHECK(build(&b, &out, true) == 0);
	addresses_of(buf_slice(&out), "From", &got);
	CHECK(strcmp(buf_cstr(&got), "Alice <alice@example.test>, "
				     "Bob <bob@example.test>") == 0);
	addresses_of(buf_slice(&out), "Sender", &got);
	CHECK(strcmp(buf_cstr(&got), "Alice <alice@example.test>") == 0);
	addresses_of(buf_slice(&out), "Reply-To", &got);
	CHECK(strcmp(buf_cstr(&got), "Bob <bob@example.test>") == 0);

	/* A draft may have no From. */
	base(&b);
	b.from = NULL;
	b.from_count = 0;
	CHECK(build(&b, &out, true) == 0);
	CHECK(!field_value(buf_slice(&out), "From", 0, &got));
	buf_free(&out);
	buf_free(&got);
	buf_free(&expect);
}

static void test_subject(void)
{
	static const char *const subjects[] = {
		"Hello",
		"Re: [list] a (small) question; with: specials, \"quotes\"",
		"several   spaces",
		"=?utf-8?B?SGk=?= is not an encoded word here",
		"caf\xc3\xa9",
		"\xf0\x9f\x8e\x89 Party! \xf0\x9f\x8e\x82",
		"Many words that need folding because together they are much "
		"longer than seventy-eight characters, the soft limit of a "
		"line, and then some more words to make it three lines",
		"\xe4\xbc\x9a\xe8\xad\xb0\xe3\x81\xae\xe3\x81\x8a\xe7\x9f\xa5"
		"\xe3\x82\x89\xe3\x81\x9b\xef\xbc\x9a\xe6\x9d\xa5\xe9\x80\xb1"
		"\xe3\x81\xae\xe6\x9c\xa8\xe6\x9b\x9c\xe6\x97\xa5\xe3\x81\xab"
		"\xe4\xbc\x9a\xe8\xad\xb0\xe5\xae\xa4\xe3\x81\xa7\xe5\x85\xa8"
		"\xe4\xbd\x93\xe4\xbc\x9a\xe8\xad\xb0\xe3\x82\x92\xe8\xa1\x8c"
		"\xe3\x81\x84\xe3\x81\xbe\xe3\x81\x99\xe3\x80\x82\xe3\x81\x94"
		"\xe5\x8f\x82\xe5\x8a\xa0\xe3\x81\x8f\xe3\x81\xa0\xe3\x81\x95"
		"\xe3\x81\x84\xe3\x80\x82",
		/* (parenthesized: one string, split for length) */
		("Mostly ASCII with one \xc3\xa9 and quite a lot of other words "
		 "so that Q encoding spans more than one encoded word"),
		"question? underscore_ equals= tab-free",
	};
	struct buf out, got;
	buf_init(&out, OUT_MAX);
	buf_init(&got, 1 << 20);
	for (size_t i = 0; i < ARRAY_SIZE(subjects); i++) {
		struct mime_build b;
		base(&b);
		b.subject = subjects[i];
		CHECK_CASE(build(&b, &out, true) == 0, i, subjects[i]);
		struct mime_message *m = mime_parse(buf_slice(&out));
		CHECK_CASE(strcmp(header_of(m, "Subject", &got), subjects[i]) ==
				   0,
			   i, subjects[i]);
		if (strcmp(buf_cstr(&got), subjects[i]) != 0)
			fprintf(stderr, "  got %s\n", buf_cstr(&got));
		mime_free(&m);
	}

	/* "Q" where it is shorter (mostly ASCII), "B" elsewhere. */
	struct mime_build b;
	base(&b);
	b.subject = subjects[8];
	CHECK(build(&b, &out, true) == 0);
	CHECK(has(&out, "Subject: =?UTF-8?Q?Mostly_ASCII_with_one_=C3=A9_"));
	CHECK(!has(&out, "?B?"));
	b.subject = subjects[7];
	CHECK(build(&b, &out, true) == 0);
	CHECK(has(&out, "Subject: =?UTF-8?B?"));
	CHECK(!has(&out, "?Q?"));

	/* A word too long for any line is encoded, and still comes back. */
	char word[1200];
	memset(word, 'w', sizeof(word) - 1);
	word[sizeof(word) - 1] = '\0';
	b.subject = word;
	CHECK(build(&b, &out, true) == 0);
	struct mime_message *m = mime_parse(buf_slice(&out));
	CHECK(strcmp(header_of(m, "Subject", &got), word) == 0);
	mime_free(&m);
	/* One just short enough is written as it is, on a line of its own
	 * length: within 998, over 78. */
	word[900] = '\0';
	b.subject = word;
	CHECK(build(&b, &out, false) == 0);
	CHECK(field_value(buf_slice(&out), "Subject", 0, &got) &&
	      strcmp(buf_cstr(&got), word) == 0);

	/* No subject, or an empty one: no field. */
	b.subject = NULL;
	CHECK(build(&b, &out, true) == 0);
	m = mime_parse(buf_slice(&out));
	CHECK(strcmp(header_of(m, "Subject", &got), "(none)") == 0);
	mime_free(&m);
	b.subject = "";
	CHECK(build(&b, &out, true) == 0);
	m = mime_parse(buf_slice(&out));
	CHECK(strcmp(header_of(m, "Subject", &got), "(none)") == 0);
	mime_free(&m);
	buf_free(&out);
	buf_free(&got);
}

static void test_ids_and_extra(void)
{
	static const char *const refs[] = {
		"first.message.with.a.long.id@mail.example.test",
		"CAF=abc+def_123@mail.gmail.com",
		"x@[192.0.2.1]",
		"obs..left.@example.test",
		"fifth-one-to-fold-the-line@example.test",
	};
	struct mime_build b;
	base(&b);
	b.in_reply_to = &refs[4];
	b.in_reply_to_count = 1;
	b.references = refs;
	b.references_count = ARRAY_SIZE(refs);
	static const char *const extra[] = {
		"User-Agent: dijk/0.1",
		("X-Long:   a value with many words that is folded because it "
		 "is longer than a line may be, in more than one place"),
		"X-Empty:",
	};
	b.extra_headers = extra;
	b.extra_count = ARRAY_SIZE(extra);
	struct buf out, got;
	buf_init(&out, OUT_MAX);
	buf_init(&got, 1 << 20);
	CHECK(build(&b, &out, true) == 0);
	struct mime_message *m = mime_parse(buf_slice(&out));
	mime_message_ids(m, "References", &got);
	struct buf expect;
	buf_init(&expect, 4096);
	for (size_t i = 0; i < ARRAY_SIZE(refs); i++) {
		buf_append_cstr(&expect, refs[i]);
		buf_append(&expect, "", 1);
	}
	CHECK(slice_eq(buf_slice(&got), expect.p, expect.n));
	buf_reset(&got);
	mime_message_ids(m, "In-Reply-To", &got);
	CHECK(slice_eq(buf_slice(&got), refs[4], strlen(refs[4]) + 1));
	buf_reset(&got);
	mime_message_ids(m, "Message-ID", &got);
	CHECK(slice_eq(buf_slice(&got), "1234.5678@example.test", 23));
	CHECK(strcmp(header_of(m, "User-Agent", &got), "dijk/0.1") == 0);
	CHECK(strcmp(header_of(m, "X-Long", &got), extra[1] + 10) == 0);
	CHECK(strcmp(header_of(m, "X-Empty", &got), "") == 0);
	CHECK(strcmp(header_of(m, "MIME-Version", &got), "1.0") == 0);
	mime_free(&m);
	buf_free(&out);
	buf_free(&got);
	buf_free(&expect);
}

static void test_bcc(void)
{
	struct mime_build_address bcc = {"Hidden", "hidden@example.test"};
	struct mime_build b;
	base(&b);
	b.bcc = &bcc;
	b.bcc_count = 1;
	struct buf out, got;
	buf_init(&out, OUT_MAX);
	buf_init(&got, 1024);
	CHECK(build(&b, &out, true) == 0);
	struct mime_message *m = mime_parse(buf_slice(&out));
	CHECK(strcmp(header_of(m, "Bcc", &got), "(none)") == 0);
	CHECK(!has(&out, "hidden"));
	mime_free(&m);
	b.include_bcc = true;
	CHECK(build(&b, &out, true) == 0);
	m = mime_parse(buf_slice(&out));
	CHECK(strcmp(header_of(m, "Bcc", &got),
		     "Hidden <hidden@example.test>") == 0);
	mime_free(&m);
	buf_free(&out);
	buf_free(&got);
}

/* Text bodies: 7bit when they may be, quoted-printable otherwise, and the
 * decoded text is the input with CRLF line ends. */
static void test_text(void)
{
	char long_line[400];
	memset(long_line, 'x', sizeof(long_line) - 2);
	long_line[sizeof(long_line) - 2] = '\n';
	long_line[sizeof(long_line) - 1] = '\0';
	static const struct {
		const char *text;
		bool qp;
	} cases[] = {
		{"Hi Bob.\n", false},
		{"lines\nwith\rmixed\r\nends\n\n", false},
		{"a line of just a dot\n.\nis kept\n", false},
		{"--\nsignature\n", false},
		{"caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80\n",
		 true},
		{"trailing space \nand tab\t\n", true},
		{"a = sign and =3D stay\n", false},
		{"control \x01 and \x7f character\n", true},
		{"", false},
		{"no final line end", false},
		{"no final line end, but \xc3\xa9", true},
		{"trailing space at the very end ", true},
		{NULL, true}, /* long_line */
		{"==============================================================="
		 "=====================\n",
		 true},
	};
	struct buf out, expect, h, got;
	buf_init(&out, OUT_MAX);
	buf_init(&expect, 1 << 20);
	buf_init(&h, 1 << 20);
	buf_init(&got, 1 << 20);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const char *text = cases[i].text ? cases[i].text : long_line;
		struct mime_build b;
		base(&b);
		b.text = text;
		CHECK_CASE(build(&b, &out, true) == 0, i, text);
		/* Every body line is within 76. */
		size_t hend = header_end(buf_slice(&out)), line = 0;
		bool short_lines = true;
		for (size_t k = hend; k < out.n; k++) {
			line = out.p[k] == '\r' || out.p[k] == '\n' ? 0
								    : line + 1;
			short_lines &= line <= 76;
		}
		CHECK_CASE(short_lines, i, text);
		CHECK_CASE(field_value(buf_slice(&out),
				       "Content-Transfer-Encoding", 0, &h) &&
				   strcmp(buf_cstr(&h),
					  cases[i].qp ? "quoted-printable"
						      : "7bit") == 0,
			   i, text);
		struct mime_message *m = mime_parse(buf_slice(&out));
		crlf(text, &expect);
		size_t len = strlen(text);
		/* A single 7bit part ends with a line end, which is then
		 * part of the text; quoted-printable ends with a soft
		 * break, which is not. */
		if (!cases[i].qp && len > 0 && text[len - 1] != '\n')
			buf_append_cstr(&expect, "\r\n");
		static const uint32_t part1[] = {1, 0};
		CHECK_CASE(binary_is(m, part1, expect.p, expect.n), i, text);
		buf_reset(&got);
		mime_body_text(m, &got);
		CHECK_CASE(slice_eq(buf_slice(&got), expect.p, expect.n), i,
			   text);
		buf_reset(&got);
		CHECK_CASE(strcmp(part_type(m, part1, &got), "text/plain") == 0,
			   i, text);
		mime_free(&m);
	}

	/* Without any body: an empty text/plain. */
	struct mime_build b;
	base(&b);
	b.text = NULL;
	CHECK(build(&b, &out, true) == 0);
	struct mime_message *m = mime_parse(buf_slice(&out));
	static const uint32_t part1[] = {1, 0};
	CHECK(binary_is(m, part1, "", 0));
	CHECK(field_value(buf_slice(&out), "Content-Type", 0, &h) &&
	      strcmp(buf_cstr(&h), "text/plain; charset=utf-8") == 0);
	mime_free(&m);

	/* HTML alone is text/html. */
	b.html = "<p>caf\xc3\xa9</p>\n";
	CHECK(build(&b, &out, true) == 0);
	m = mime_parse(buf_slice(&out));
	CHECK(field_value(buf_slice(&out), "Content-Type", 0, &h) &&
	      strcmp(buf_cstr(&h), "text/html; charset=utf-8") == 0);
	crlf(b.html, &expect);
	CHECK(binary_is(m, part1, expect.p, expect.n));
	mime_free(&m);
	buf_free(&out);
	buf_free(&expect);
	buf_free(&h);
	buf_free(&got);
}

/* Which multipart holds what, and every part's bytes back. */
static void test_structure(void)
{
	static const uint8_t png[] = {0x89, 'P',  'N', 'G', '\r', '\n',
				      0x1a, '\n', 0,   0,   0,	  0x0d};
	struct mime_build_part parts[3] = {
		{.type = "image/png",
		 .name = "logo.png",
		 .cid = "logo@example.test",
		 .is_inline = true,
		 .data = png,
		 .size = sizeof(png)},
		{.type = "application/pdf",
		 .name = "report.pdf",
		 .data = (const uint8_t *)"%PDF-1.4\n",
		 .size = 9},
		{.type = "image/gif",
		 .cid = "ii_k2x",
		 .is_inline = true,
		 .data = (const uint8_t *)"GIF89a",
		 .size = 6},
	};
	static const char text[] = "plain text\n";
	static const char html[] = "<p>html <img src=\"cid:logo@example.test\">"
				   "</p>\n";
	struct buf out, got, expect, h;
	buf_init(&out, OUT_MAX);
	buf_init(&got, 1 << 20);
	buf_init(&expect, 1 << 20);
	buf_init(&h, 1 << 20);

	/* text + html */
	struct mime_build b;
	base(&b);
	b.text = text;
	b.html = html;
	CHECK(build(&b, &out, true) == 0);
	struct mime_message *m = mime_parse(buf_slice(&out));
	CHECK(field_value(buf_slice(&out), "Content-Type", 0, &h) &&
	      strncmp(buf_cstr(&h), "multipart/alternative;", 22) == 0);
	static const uint32_t p1[] = {1, 0}, p2[] = {2, 0}, p3[] = {3, 0},
			      p4[] = {4, 0}, p11[] = {1, 1, 0},
			      p12[] = {1, 2, 0}, p121[] = {1, 2, 1, 0},
			      p122[] = {1, 2, 2, 0}, p123[] = {1, 2, 3, 0};
	CHECK(strcmp(part_type(m, p1, &got), "text/plain") == 0);
	CHECK(strcmp(part_type(m, p2, &got), "text/html") == 0);
	CHECK(strcmp(part_type(m, p3, &got), "(none)") == 0);
	crlf(text, &expect);
	CHECK(binary_is(m, p1, expect.p, expect.n));
	crlf(html, &expect);
	CHECK(binary_is(m, p2, expect.p, expect.n));
	/* The search text takes the plain part of the alternative. */
	buf_reset(&got);
	mime_body_text(m, &got);
	crlf(text, &expect);
	CHECK(slice_eq(buf_slice(&got), expect.p, expect.n));
	mime_free(&m);

	/* text + html, an inline image, an attachment and an inline part
	 * whose cid the html does not use (it is still related: the builder
	 * does not read the html): mixed(alternative(text, related(html,
	 * png, gif)), pdf). */
	b.parts = parts;
	b.part_count = 3;
	CHECK(build(&b, &out, true) == 0);
	m = mime_parse(buf_slice(&out));
	CHECK(field_value(buf_slice(&out), "Content-Type", 0, &h) &&
	      strncmp(buf_cstr(&h), "multipart/mixed;", 16) == 0);
	CHECK(strncmp(part_type(m, p1, &got), "multipart/alternative", 21) ==
	      0);
	CHECK(strcmp(part_type(m, p11, &got), "text/plain") == 0);
	CHECK(strncmp(part_type(m, p12, &got), "multipart/related", 17) == 0);
	CHECK(strcmp(part_type(m, p121, &got), "text/html") == 0);
	CHECK(strcmp(part_type(m, p122, &got), "image/png") == 0);
	CHECK(strcmp(part_type(m, p123, &got), "image/gif") == 0);
	CHECK(strcmp(part_type(m, p2, &got), "application/pdf") == 0);
	CHECK(strcmp(part_type(m, p3, &got), "(none)") == 0);
	CHECK(binary_is(m, p122, png, sizeof(png)));
	CHECK(binary_is(m, p123, "GIF89a", 6));
	CHECK(binary_is(m, p2, "%PDF-1.4\n", 9));
	crlf(html, &expect);
	CHECK(binary_is(m, p121, expect.p, expect.n));
	part_header(m, p122, &h);
	CHECK(field_value(buf_slice(&h), "Content-ID", 0, &got) &&
	      strcmp(buf_cstr(&got), "<logo@example.test>") == 0);
	CHECK(field_value(buf_slice(&h), "Content-Disposition", 0, &got) &&
	      strncmp(buf_cstr(&got), "inline;", 7) == 0);
	part_header(m, p2, &h);
	CHECK(field_value(buf_slice(&h), "Content-Disposition", 0, &got) &&
	      strncmp(buf_cstr(&got), "attachment;", 11) == 0);
	CHECK(!field_value(buf_slice(&h), "Content-ID", 0, &got));
	CHECK(mime_has_attachment(m));
	mime_free(&m);

	/* Without html the inline parts are plain members of the mixed:
	 * mixed(text, png, pdf, gif). */
	b.html = NULL;
	CHECK(build(&b, &out, true) == 0);
	m = mime_parse(buf_slice(&out));
	CHECK(strcmp(part_type(m, p1, &got), "text/plain") == 0);
	CHECK(strcmp(part_type(m, p2, &got), "image/png") == 0);
	CHECK(strcmp(part_type(m, p3, &got), "application/pdf") == 0);
	CHECK(strcmp(part_type(m, p4, &got), "image/gif") == 0);
	CHECK(binary_is(m, p2, png, sizeof(png)));
	mime_free(&m);

	/* html only with an inline image: related(html, png), then mixed
	 * around it for the pdf: mixed(related(html, png, gif), pdf). */
	b.text = NULL;
	b.html = html;
	CHECK(build(&b, &out, true) == 0);
	m = mime_parse(buf_slice(&out));
	CHECK(strncmp(part_type(m, p1, &got), "multipart/related", 17) == 0);
	CHECK(strcmp(part_type(m, p11, &got), "text/html") == 0);
	CHECK(strcmp(part_type(m, p2, &got), "application/pdf") == 0);
	mime_free(&m);
	/* Only the inline parts: the related is the whole message. */
	struct mime_build_part only_inline[1] = {parts[0]};
	b.parts = only_inline;
	b.part_count = 1;
	CHECK(build(&b, &out, true) == 0);
	m = mime_parse(buf_slice(&out));
	CHECK(field_value(buf_slice(&out), "Content-Type", 0, &h) &&
	      strncmp(buf_cstr(&h), "multipart/related;", 18) == 0);
	CHECK(strcmp(part_type(m, p1, &got), "text/html") == 0);
	CHECK(binary_is(m, p2, png, sizeof(png)));
	mime_free(&m);

	/* Attachments alone, with no text or html: mixed(pdf, gif). */
	b.html = NULL;
	b.parts = parts + 1;
	b.part_count = 2;
	CHECK(build(&b, &out, true) == 0);
	m = mime_parse(buf_slice(&out));
	CHECK(strcmp(part_type(m, p1, &got), "application/pdf") == 0);
	CHECK(strcmp(part_type(m, p2, &got), "image/gif") == 0);
	CHECK(strcmp(part_type(m, p3, &got), "(none)") == 0);
	mime_free(&m);
	buf_free(&out);
	buf_free(&got);
	buf_free(&expect);
	buf_free(&h);
}

/* Attachment bytes come back exactly; base64 lines are 76 long. */
static void test_attachment_bytes(void)
{
	uint8_t all[256 * 3];
	for (size_t i = 0; i < sizeof(all); i++)
		all[i] = (uint8_t)i;
	size_t big_n = 1 << 20;
	uint8_t *big = xmalloc(big_n);
	uint32_t x = 2463534242u;
	for (size_t i = 0; i < big_n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		big[i] = (uint8_t)x;
	}
	struct mime_build_part parts[4] = {
		{.type = "application/octet-stream",
		 .name = "all.bin",
		 .data = all,
		 .size = sizeof(all)},
		{.type = "application/octet-stream",
		 .name = "big.bin",
		 .data = big,
		 .size = big_n},
		{.type = "text/plain", .name = "empty.txt", .data = NULL},
		{.type = "application/octet-stream",
		 .name = "one.bin",
		 .data = all + 200,
		 .size = 1},
	};
	struct mime_build b;
	base(&b);
	b.parts = parts;
	b.part_count = ARRAY_SIZE(parts);
	struct buf out;
	buf_init(&out, OUT_MAX);
	CHECK(build(&b, &out, true) == 0);
	struct mime_message *m = mime_parse(buf_slice(&out));
	static const uint32_t p2[] = {2, 0}, p3[] = {3, 0}, p4[] = {4, 0},
			      p5[] = {5, 0};
	CHECK(binary_is(m, p2, all, sizeof(all)));
	CHECK(binary_is(m, p3, big, big_n));
	CHECK(binary_is(m, p4, "", 0));
	CHECK(binary_is(m, p5, all + 200, 1));
	/* The encoded 1 MiB: full lines of 76 but for the last. */
	struct mime_section section = {.kind = MIME_SECTION_ALL};
	section.parts[0] = 3;
	section.part_count = 1;
	struct buf raw;
	buf_init(&raw, OUT_MAX);
	CHECK(mime_section_bytes(m, &section, &raw) == 0);
	size_t lines = 0, bad = 0, line = 0;
	for (size_t i = 0; i < raw.n; i++) {
		if (raw.p[i] == '\r') {
			lines++;
			bad += line != 76;
			line = 0;
			i++;
		} else {
			line++;
		}
	}
	CHECK(lines == big_n / 57); /* the last, partial line has no CRLF */
	CHECK(bad == 0);
	CHECK(line > 0 && line < 76);
	mime_free(&m);
	buf_free(&raw);
	buf_free(&out);
	free(big);
}

static void test_file_names(void)
{
	static const struct {
		const char *name;
		const char *expect; /* as decoded, "(none)" for no name */
		bool plain;	    /* filename="..." */
	} cases[] = {
		{"report.pdf", "report.pdf", true},
		{"with space (1).pdf", "with space (1).pdf", true},
		{"../../etc/passwd", "passwd", true},
		{"C:\\Users\\me\\doc.pdf", "doc.pdf", true},
		{"dir/", "(none)", false},
		{"..", "(none)", false},
		{"a\"quote\".txt", "a\"quote\".txt", false},
		{"=?utf-8?q?x?=.txt", "=?utf-8?q?x?=.txt", false},
		{"caf\xc3\xa9.txt", "caf\xc3\xa9.txt", false},
		{"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e.pdf",
		 "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e.pdf", false},
		/* Long enough for RFC 2231 continuations. */
		{"\xe3\x81\x82\xe3\x81\x84\xe3\x81\x86\xe3\x81\x88\xe3\x81\x8a"
		 "\xe3\x81\x8b\xe3\x81\x8d\xe3\x81\x8f\xe3\x81\x91\xe3\x81\x93"
		 "\xe3\x81\x95\xe3\x81\x97\xe3\x81\x99\xe3\x81\x9b\xe3\x81\x9d"
		 "\xe3\x81\x9f\xe3\x81\xa1\xe3\x81\xa4\xe3\x81\xa6\xe3\x81\xa8"
		 " \xf0\x9f\x98\x80.txt",
		 "\xe3\x81\x82\xe3\x81\x84\xe3\x81\x86\xe3\x81\x88\xe3\x81\x8a"
		 "\xe3\x81\x8b\xe3\x81\x8d\xe3\x81\x8f\xe3\x81\x91\xe3\x81\x93"
		 "\xe3\x81\x95\xe3\x81\x97\xe3\x81\x99\xe3\x81\x9b\xe3\x81\x9d"
		 "\xe3\x81\x9f\xe3\x81\xa1\xe3\x81\xa4\xe3\x81\xa6\xe3\x81\xa8"
		 " \xf0\x9f\x98\x80.txt",
		 false},
	};
	struct buf out, h, got;
	buf_init(&out, OUT_MAX);
	buf_init(&h, 1 << 20);
	buf_init(&got, 1 << 20);
	static const uint32_t p2[] = {2, 0};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct mime_build_part part = {.type = "application/pdf",
					       .name = cases[i].name,
					       .data = (const uint8_t *)"x",
					       .size = 1};
		struct mime_build b;
		base(&b);
		b.parts = &part;
		b.part_count = 1;
		CHECK_CASE(build(&b, &out, true) == 0, i, cases[i].name);
		struct mime_message *m = mime_parse(buf_slice(&out));
		part_header(m, p2, &h);
		CHECK_CASE(strcmp(param_of(buf_slice(&h), "Content-Disposition",
					   "filename", &got),
				  cases[i].expect) == 0,
			   i, cases[i].name);
		if (strcmp(buf_cstr(&got), cases[i].expect) != 0)
			fprintf(stderr, "  got %s\n%s\n", buf_cstr(&got),
				buf_cstr(&h));
		CHECK_CASE(strcmp(param_of(buf_slice(&h), "Content-Type",
					   "name", &got),
				  cases[i].expect) == 0,
			   i, cases[i].name);
		bool plain_written =
			memmem(h.p, h.n, "filename=\"", 10) != NULL;
		CHECK_CASE(plain_written == cases[i].plain, i, cases[i].name);
		CHECK_CASE(binary_is(m, p2, "x", 1), i, cases[i].name);
		mime_free(&m);
	}
	buf_free(&out);
	buf_free(&h);
	buf_free(&got);
}

static void test_part_types(void)
{
	static const char mail[] = "From: a@example.test\r\n"
				   "Subject: attached\r\n"
				   "\r\n"
				   "Body of the attached message\r\n";
	static const char bad_mail[] = "Subject: bare LF\n\nbody\n";
	static const struct {
		const char *type;
		const char *data;
		const char *expect_type;
		const char *expect_encoding;
	} cases[] = {
		{"image/png", "x", "image/png", "base64"},
		{"IMAGE/PNG", "x", "IMAGE/PNG", "base64"},
		{"application/vnd.ms-excel", "x", "application/vnd.ms-excel",
		 "base64"},
		{NULL, "x", "application/octet-stream", "base64"},
		{"", "x", "application/octet-stream", "base64"},
		{"png", "x", "application/octet-stream", "base64"},
		{"image/", "x", "application/octet-stream", "base64"},
		{"/png", "x", "application/octet-stream", "base64"},
		{"image/png; name=x", "x", "application/octet-stream",
		 "base64"},
		{"image/p\"ng", "x", "application/octet-stream", "base64"},
		{"image/\xc3\xa9", "x", "application/octet-stream", "base64"},
		{"multipart/mixed", "x", "application/octet-stream", "base64"},
		{"message/partial", "x", "application/octet-stream", "base64"},
		{"message/global", "x", "message/global", "base64"},
		{"message/rfc822", mail, "message/rfc822", "7bit"},
		{"message/rfc822", bad_mail, "application/octet-stream",
		 "base64"},
	};
	struct buf out, h, got;
	buf_init(&out, OUT_MAX);
	buf_init(&h, 1 << 20);
	buf_init(&got, 1 << 20);
	static const uint32_t p2[] = {2, 0};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const char *label = cases[i].type ? cases[i].type : "NULL";
		struct mime_build_part part = {
			.type = cases[i].type,
			.data = (const uint8_t *)cases[i].data,
			.size = strlen(cases[i].data)};
		struct mime_build b;
		base(&b);
		b.parts = &part;
		b.part_count = 1;
		CHECK_CASE(build(&b, &out, true) == 0, i, label);
		struct mime_message *m = mime_parse(buf_slice(&out));
		CHECK_CASE(strcmp(part_type(m, p2, &got),
				  cases[i].expect_type) == 0,
			   i, label);
		part_header(m, p2, &h);
		CHECK_CASE(field_value(buf_slice(&h),
				       "Content-Transfer-Encoding", 0, &got) &&
				   strcmp(buf_cstr(&got),
					  cases[i].expect_encoding) == 0,
			   i, label);
		CHECK_CASE(
			binary_is(m, p2, cases[i].data, strlen(cases[i].data)),
			i, label);
		mime_free(&m);
	}

	/* The attached message is read as a message: its subject is in
	 * ENVELOPE of part 2 and its text is searchable. */
	struct mime_build_part part = {.type = "message/rfc822",
				       .name = "attached.eml",
				       .data = (const uint8_t *)mail,
				       .size = strlen(mail)};
	struct mime_build b;
	base(&b);
	b.parts = &part;
	b.part_count = 1;
	CHECK(build(&b, &out, true) == 0);
	struct mime_message *m = mime_parse(buf_slice(&out));
	buf_reset(&got);
	mime_bodystructure(m, false, &got);
	CHECK(strstr(buf_cstr(&got), "\"attached\"") != NULL);
	buf_reset(&got);
	mime_body_text(m, &got);
	CHECK(strstr(buf_cstr(&got), "Body of the attached message") != NULL);
	mime_free(&m);
	buf_free(&out);
	buf_free(&h);
	buf_free(&got);
}

/* Every way to smuggle a line end or a bracket into a header is refused,
 * with the field named and out unchanged. */
static void test_injection(void)
{
	enum what {
		SUBJECT,
		FROM_NAME,
		FROM_EMAIL,
		TO_NAME,
		TO_EMAIL,
		CC_EMAIL,
		BCC_EMAIL,
		REPLY_TO_EMAIL,
		SENDER_NAME,
		MESSAGE_ID,
		IN_REPLY_TO,
		REFERENCES,
		CID,
		TYPE,
		FILE_NAME,
		EXTRA,
		TEXT,
		HTML,
		OFFSET,
		FROM2,
	};
	static const struct {
		enum what what;
		const char *value;
		const char *error;
	} cases[] = {
		{SUBJECT, "a\r\nBcc: x@y", "subject: control character"},
		{SUBJECT, "a\nb", "subject: control character"},
		{SUBJECT, "a\rb", "subject: control character"},
		{SUBJECT, "a\tb", "subject: control character"},
		{SUBJECT, "a\x7f", "subject: control character"},
		{SUBJECT, "a\x1b[31m", "subject: control character"},
		{SUBJECT, "\xff\xfe", "subject: not UTF-8"},
		{SUBJECT, "\xc0\xaf", "subject: not UTF-8"},
		{FROM_NAME, "Eve\nBcc: x@y", "from: control character in name"},
		{FROM_NAME, "\xe9t\xe9", "from: name is not UTF-8"},
		{FROM_EMAIL, "a@b>\r\nX: y", "from: invalid address"},
		{FROM_EMAIL, "a@b.test>, evil@x.test", "from: invalid address"},
		{FROM_EMAIL, "", "from: invalid address"},
		{FROM_EMAIL, NULL, "from: invalid address"},
		{TO_NAME, "Bob\r\n", "to: control character in name"},
		{TO_NAME, "Bob\r\nBcc: x@y.test",
		 "to: control character in name"},
		{TO_EMAIL, "a@b>\r\nX:", "to: invalid address"},
		{TO_EMAIL, "bob@example.test\r\nBcc: x@y.test",
		 "to: invalid address"},
		{TO_EMAIL, "\"a\r\nX: y\"@example.test", "to: invalid address"},
		{TO_EMAIL, "b\xc3\xb6@example.test",
		 "to: non-ASCII address (SMTPUTF8 is not supported)"},
		{CC_EMAIL, "a@b;c", "cc: invalid address"},
		{BCC_EMAIL, "a b@c.test", "bcc: invalid address"},
		{REPLY_TO_EMAIL, "a@b\n", "reply-to: invalid address"},
		{SENDER_NAME, "S\r\n", "sender: control character in name"},
		{MESSAGE_ID, "a@b>\r\nX: y", "message-id: invalid"},
		{MESSAGE_ID, "<a@b.test>", "message-id: invalid"},
		{MESSAGE_ID, "no-at-sign", "message-id: invalid"},
		{MESSAGE_ID, "a b@c.test", "message-id: invalid"},
		{MESSAGE_ID, "a@b c", "message-id: invalid"},
		{MESSAGE_ID, "a@[b]]", "message-id: invalid"},
		{MESSAGE_ID, "", "message-id: missing"},
		{MESSAGE_ID, NULL, "message-id: missing"},
		{IN_REPLY_TO, "x@y>\r\nBcc: z@w",
		 "in-reply-to: invalid message id"},
		{REFERENCES, "x@y z@w", "references: invalid message id"},
		{CID, "x@y>\r\nX: y", "part: control character in cid"},
		{CID, "a>b", "part: invalid cid"},
		{CID, "a b", "part: invalid cid"},
		{CID, "", "part: invalid cid"},
		{TYPE, "text/plain\r\nX: y", "part: control character in type"},
		{TYPE, "text/plain\n", "part: control character in type"},
		{FILE_NAME, "a\r\nb\".txt/..",
		 "part: control character in file name"},
		{FILE_NAME, "x.txt\"\r\nContent-Type: text/html",
		 "part: control character in file name"},
		{FILE_NAME, "a\xff.txt", "part: file name is not UTF-8"},
		{EXTRA, "X-Foo: a\r\nBcc: x@y",
		 "extra header: control character"},
		{EXTRA, "X-Foo: a\nb", "extra header: control character"},
		{EXTRA, "X-Foo: caf\xc3\xa9",
		 "extra header: value is not ASCII"},
		{EXTRA, "Bcc: x@y.test",
		 "extra header: field written by the builder"},
		{EXTRA, "content-type: text/html",
		 "extra header: field written by the builder"},
		{EXTRA, "SUBJECT: again",
		 "extra header: field written by the builder"},
		{EXTRA, "X Y: z", "extra header: invalid field name"},
		{EXTRA, "X\r\nY: z", "extra header: invalid field name"},
		{EXTRA, ": z", "extra header: invalid field name"},
		{EXTRA, "NoColon", "extra header: no ':'"},
		{TEXT, "bad \xff byte", "text: not UTF-8"},
		{HTML, "<p>\xed\xa0\x80</p>", "html: not UTF-8"},
		{OFFSET, "1440", "date: invalid offset"},
		{OFFSET, "-1440", "date: invalid offset"},
		{FROM2, "", "sender: required with several from addresses"},
	};
	struct buf out;
	buf_init(&out, OUT_MAX);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const char *v = cases[i].value;
		struct mime_build b;
		base(&b);
		struct mime_build_address from = alice, to = bob, other = bob;
		struct mime_build_address from2[2] = {alice, bob};
		struct mime_build_part part = {.type = "image/png",
					       .name = "x.png",
					       .cid = "x@y.test",
					       .is_inline = true,
					       .data = (const uint8_t *)"x",
					       .size = 1};
		const char *ids[2] = {"ok@example.test", v};
		const char *extra[2] = {"User-Agent: dijk", v};
		b.from = &from;
		b.to = &to;
		b.html = "<p>x</p>";
		b.parts = &part;
		b.part_count = 1;
		switch (cases[i].what) {
		case SUBJECT:
			b.subject = v;
			break;
		case FROM_NAME:
			from.name = v;
			break;
		case FROM_EMAIL:
			from.email = v;
			break;
		case TO_NAME:
			to.name = v;
			break;
		case TO_EMAIL:
			to.email = v;
			break;
		case CC_EMAIL:
			other.email = v;
			b.cc = &other;
			b.cc_count = 1;
			break;
		case BCC_EMAIL:
			/* Checked even when it is not written. */
			other.email = v;
			b.bcc = &other;
			b.bcc_count = 1;
			break;
		case REPLY_TO_EMAIL:
			other.email = v;
			b.reply_to = &other;
			b.reply_to_count = 1;
			break;
		case SENDER_NAME:
			other.name = v;
			b.sender = &other;
			break;
		case MESSAGE_ID:
			b.message_id = v;
			break;
		case IN_REPLY_TO:
			b.in_reply_to = ids;
			b.in_reply_to_count = 2;
			break;
		case REFERENCES:
			b.references = ids;
			b.references_count = 2;
			break;
		case CID:
			part.cid = v;
			break;
		case TYPE:
			part.type = v;
			break;
		case FILE_NAME:
			part.name = v;
			break;
		case EXTRA:
			b.extra_headers = extra;
			b.extra_count = 2;
			break;
		case TEXT:
			b.text = v;
			break;
		case HTML:
			b.html = v;
			break;
		case OFFSET:
			b.date_offset_minutes = atoi(v);
			break;
		case FROM2:
			b.from = from2;
			b.from_count = 2;
			break;
		}
		buf_reset(&out);
		buf_append_cstr(&out, "kept");
		const char *error = NULL;
		int r = mime_build_message(&b, &out, &error);
		const char *label = v ? v : "NULL";
		CHECK_CASE(r == -1, i, label);
		CHECK_CASE(error != NULL && strcmp(error, cases[i].error) == 0,
			   i, label);
		if (error != NULL && strcmp(error, cases[i].error) != 0)
			fprintf(stderr, "  got %s\n", error);
		CHECK_CASE(slice_eq(buf_slice(&out), "kept", 4), i, label);
		CHECK_CASE(!buf_overflowed(&out), i, label);
	}

	/* The same message with harmless values builds: the failures above
	 * are the values', not the frame's. */
	struct mime_build b;
	base(&b);
	struct mime_build_part part = {.type = "image/png",
				       .cid = "x@y.test",
				       .is_inline = true,
				       .data = (const uint8_t *)"x",
				       .size = 1};
	b.html = "<p>x</p>";
	b.parts = &part;
	b.part_count = 1;
	CHECK(build(&b, &out, true) == 0);
	b.date_offset_minutes = 1439;
	CHECK(build(&b, &out, true) == 0);
	buf_free(&out);
}

/* One build that must fail with error, leaving out empty. */
static void check_refused(const struct mime_build *b, const char *error,
			  const char *label)
{
	struct buf out;
	buf_init(&out, OUT_MAX);
	const char *got = NULL;
	CHECK_CASE(mime_build_message(b, &out, &got) == -1, 0, label);
	CHECK_CASE(got != NULL && strcmp(got, error) == 0, 0, label);
	CHECK_CASE(out.n == 0 && !buf_overflowed(&out), 0, label);
	buf_free(&out);
}

/* The length limits of build.h, each just within and just past. */
static void test_field_limits(void)
{
	size_t n = MIME_BUILD_MAX_SUBJECT + 2;
	char *s = xmalloc(n);
	/* Words of nine letters and a space: foldable all along. */
	for (size_t i = 0; i < n - 1; i++)
		s[i] = i % 10 == 9 ? ' ' : 'a';
	struct mime_build b;
	struct buf out;
	buf_init(&out, OUT_MAX);

	base(&b);
	s[MIME_BUILD_MAX_SUBJECT] = '\0';
	b.subject = s;
	CHECK(build(&b, &out, true) == 0);
	s[MIME_BUILD_MAX_SUBJECT] = 'a';
	s[MIME_BUILD_MAX_SUBJECT + 1] = '\0';
	check_refused(&b, "subject: too long", "subject");

	base(&b);
	struct mime_build_address to = {s, "x@example.test"};
	b.to = &to;
	s[MIME_BUILD_MAX_NAME] = '\0';
	CHECK(build(&b, &out, true) == 0);
	s[MIME_BUILD_MAX_NAME] = 'a';
	s[MIME_BUILD_MAX_NAME + 1] = '\0';
	check_refused(&b, "to: name too long", "name");

	/* A file name's limit is on what is left after the path. */
	base(&b);
	char name[MIME_BUILD_MAX_FILE_NAME + 16];
	memcpy(name, "dir/", 4);
	memset(name + 4, 'f', MIME_BUILD_MAX_FILE_NAME);
	name[4 + MIME_BUILD_MAX_FILE_NAME] = '\0';
	struct mime_build_part part = {.type = "text/plain",
				       .name = name,
				       .data = (const uint8_t *)"x",
				       .size = 1};
	b.parts = &part;
	b.part_count = 1;
	CHECK(build(&b, &out, false) == 0);
	name[4 + MIME_BUILD_MAX_FILE_NAME] = 'f';
	name[5 + MIME_BUILD_MAX_FILE_NAME] = '\0';
	check_refused(&b, "part: file name too long", "file name");
	part.name = NULL;
	part.data = NULL;
	check_refused(&b, "part: no data", "no data");

	base(&b);
	char field[MIME_BUILD_MAX_FIELD_VALUE + 32];
	int len = snprintf(field, sizeof(field), "X-Long: ");
	for (size_t i = 0; i < MIME_BUILD_MAX_FIELD_VALUE; i++)
		field[len + (int)i] = i % 10 == 9 ? ' ' : 'v';
	field[len + MIME_BUILD_MAX_FIELD_VALUE] = '\0';
	const char *extra[1] = {field};
	b.extra_headers = extra;
	b.extra_count = 1;
	CHECK(build(&b, &out, true) == 0);
	field[len + MIME_BUILD_MAX_FIELD_VALUE] = 'v';
	field[len + MIME_BUILD_MAX_FIELD_VALUE + 1] = '\0';
	check_refused(&b, "extra header: value too long", "extra");
	/* An unbreakable value cannot be folded, nor encoded here. */
	memset(field + len, 'v', 901);
	field[len + 901] = '\0';
	check_refused(&b, "extra header: value too long", "extra word");

	base(&b);
	b.date = (time_t)1 << 50;
	check_refused(&b, "date: out of range", "date");
	b.date = 253402300800; /* year 10000 */
	check_refused(&b, "date: out of range", "date 10000");
	b.date = -2208988801; /* 1899 */
	check_refused(&b, "date: out of range", "date 1899");
	b.date = -2208988800;
	CHECK(build(&b, &out, true) == 0);

	/* A display name with spaces at its ends is quoted, to keep them. */
	base(&b);
	to.name = " padded ";
	b.to = &to;
	CHECK(build(&b, &out, true) == 0);
	CHECK(has(&out, "To: \" padded \" <x@example.test>"));

	/* message/rfc822 with 8-bit text is sent 8bit; with a line over
	 * 998 it is base64 application/octet-stream. */
	base(&b);
	static const char mail8[] = "Subject: x\r\n\r\ncaf\xc3\xa9\r\n";
	part = (struct mime_build_part){.type = "message/rfc822",
					.data = (const uint8_t *)mail8,
					.size = sizeof(mail8) - 1};
	b.parts = &part;
	b.part_count = 1;
	CHECK(build(&b, &out, true) == 0);
	CHECK(has(&out, "Content-Transfer-Encoding: 8bit"));
	char *long_mail = xmalloc(1100);
	memcpy(long_mail, "Subject: x\r\n\r\n", 14);
	memset(long_mail + 14, 'x', 999);
	memcpy(long_mail + 14 + 999, "\r\n", 2);
	part.data = (const uint8_t *)long_mail;
	part.size = 14 + 999 + 2;
	CHECK(build(&b, &out, true) == 0);
	CHECK(has(&out, "Content-Type: application/octet-stream"));
	struct mime_message *m = mime_parse(buf_slice(&out));
	static const uint32_t p2[] = {2, 0};
	CHECK(binary_is(m, p2, long_mail, part.size));
	mime_free(&m);
	part.size -= 3; /* 998 and CRLF: mail */
	memcpy(long_mail + 14 + 998, "\r\n", 2);
	CHECK(build(&b, &out, true) == 0);
	CHECK(has(&out, "Content-Type: message/rfc822"));
	free(long_mail);
	free(s);
	buf_free(&out);
}

static void test_size_limit(void)
{
	struct mime_build b;
	base(&b);
	const char *error;
	struct buf small;
	buf_init(&small, 100);
	buf_append_cstr(&small, "kept");
	CHECK(mime_build_message(&b, &small, &error) == -1);
	CHECK(strcmp(error, "message too large") == 0);
	CHECK(slice_eq(buf_slice(&small), "kept", 4) &&
	      !buf_overflowed(&small));
	buf_free(&small);

	/* A 1 MiB attachment needs about 1.37 MiB. */
	size_t n = 1 << 20;
	uint8_t *data = xcalloc(1, n);
	struct mime_build_part part = {
		.type = "application/octet-stream", .data = data, .size = n};
	b.parts = &part;
	b.part_count = 1;
	struct buf out;
	buf_init(&out, n + n / 4);
	CHECK(mime_build_message(&b, &out, &error) == -1);
	CHECK(strcmp(error, "message too large") == 0);
	CHECK(out.n == 0 && !buf_overflowed(&out));
	buf_free(&out);
	buf_init(&out, n + n / 2);
	CHECK(mime_build_message(&b, &out, &error) == 0);
	CHECK(out.n > n * 4 / 3);
	buf_free(&out);

	/* An overflowed buffer stays as it is. */
	buf_init(&out, 4);
	buf_append_cstr(&out, "toolong");
	CHECK(buf_overflowed(&out));
	CHECK(mime_build_message(&b, &out, &error) == -1);
	CHECK(out.n == 0 && buf_overflowed(&out));
	buf_free(&out);

	/* Too many parts. */
	b.part_count = MIME_BUILD_MAX_PARTS + 1;
	buf_init(&out, OUT_MAX);
	CHECK(mime_build_message(&b, &out, &error) == -1);
	CHECK(strcmp(error, "too many parts") == 0);
	CHECK(out.n == 0);
	buf_free(&out);
	free(data);
}

/* A random source that gives all-zero bytes for its first zero_draws
 * calls, then counts. */
static unsigned zero_draws, draws;
static void test_random(void *p, size_t n)
{
	memset(p, 0, n);
	if (draws++ >= zero_draws)
		memcpy(p, &draws, n < sizeof(draws) ? n : sizeof(draws));
}

static void test_boundaries(void)
{
	/* What sixteen zero bytes make. */
	static const char zero[] = "=_dijk_00000000000000000000000000000000";
	struct buf text, out, h;
	buf_init(&text, 4096);
	buf_init(&out, OUT_MAX);
	buf_init(&h, 4096);
	buf_printf(&text, "before\n--%s\nafter\n", zero);
	struct mime_build b;
	base(&b);
	b.text = buf_cstr(&text);
	b.html = "<p>html</p>";
	b.random = test_random;

	/* The zero boundary would occur in the text: it is drawn again. */
	zero_draws = 1;
	draws = 0;
	CHECK(build(&b, &out, true) == 0);
	CHECK(draws == 2);
	CHECK(field_value(buf_slice(&out), "Content-Type", 0, &h));
	CHECK(strstr(buf_cstr(&h), "boundary=\"=_dijk_") != NULL);
	CHECK(strstr(buf_cstr(&h), zero) == NULL);
	struct mime_message *m = mime_parse(buf_slice(&out));
	static const uint32_t p1[] = {1, 0}, p2[] = {2, 0}, p3[] = {3, 0};
	struct buf expect;
	buf_init(&expect, 4096);
	crlf(buf_cstr(&text), &expect);
	CHECK(binary_is(m, p1, expect.p, expect.n));
	CHECK(binary_is(m, p2, "<p>html</p>", 11));
	CHECK(!binary_is(m, p3, "", 0));
	mime_free(&m);

	/* Without the clash the first draw is taken. */
	b.text = "no clash\n";
	draws = 0;
	CHECK(build(&b, &out, true) == 0);
	CHECK(draws == 1);
	CHECK(field_value(buf_slice(&out), "Content-Type", 0, &h) &&
	      strstr(buf_cstr(&h), zero) != NULL);

	/* Two multiparts never share a boundary, even when the source
	 * repeats itself. */
	struct mime_build_part part = {.type = "image/png",
				       .cid = "x@y.test",
				       .is_inline = true,
				       .data = (const uint8_t *)"x",
				       .size = 1};
	b.parts = &part;
	b.part_count = 1;
	zero_draws = 2;
	draws = 0;
	CHECK(build(&b, &out, true) == 0);
	CHECK(draws == 3);
	m = mime_parse(buf_slice(&out));
	static const uint32_t p21[] = {2, 1, 0}, p22[] = {2, 2, 0};
	CHECK(binary_is(m, p21, "<p>html</p>", 11));
	CHECK(binary_is(m, p22, "x", 1));
	mime_free(&m);

	/* A source stuck on a boundary in the content: an error, not a
	 * broken message. */
	b.parts = NULL;
	b.part_count = 0;
	b.text = buf_cstr(&text);
	zero_draws = 1000;
	buf_reset(&out);
	const char *error;
	CHECK(mime_build_message(&b, &out, &error) == -1);
	CHECK(strcmp(error, "no boundary found") == 0);
	CHECK(out.n == 0);

	/* The real source: boundaries differ from one message to the next. */
	b.random = NULL;
	b.text = "x\n";
	struct buf first;
	buf_init(&first, 4096);
	CHECK(build(&b, &out, true) == 0);
	CHECK(field_value(buf_slice(&out), "Content-Type", 0, &first));
	CHECK(build(&b, &out, true) == 0);
	CHECK(field_value(buf_slice(&out), "Content-Type", 0, &h));
	CHECK(strstr(buf_cstr(&h), "boundary=\"=_dijk_") != NULL);
	CHECK(strcmp(buf_cstr(&first), buf_cstr(&h)) != 0);
	buf_free(&first);
	buf_free(&text);
	buf_free(&out);
	buf_free(&h);
	buf_free(&expect);
}

int main(void)
{
	test_address_valid();
	test_simple();
	test_date();
	test_names();
	test_subject();
	test_ids_and_extra();
	test_bcc();
	test_text();
	test_structure();
	test_attachment_bytes();
	test_file_names();
	test_part_types();
	test_injection();
	test_field_limits();
	test_size_limit();
	test_boundaries();
	return unit_result("mime_build");
}
