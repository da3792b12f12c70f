/* test_mime.c: unit tests for src/mime/: ENVELOPE and BODYSTRUCTURE of the
 * corpus in tests/unit/mime/corpus (each NAME.eml beside NAME.expected),
 * sections, BINARY, decoded header values, body text, base subjects,
 * dates, sort addresses, message ids and attachments.
 *
 *   test_mime                      runs the tests
 *   test_mime --dump FILE [SEC..]  prints ENVELOPE, BODYSTRUCTURE, BODY and
 *                                  the named sections ("1.2.MIME",
 *                                  "HEADER.FIELDS (FROM TO)", "BINARY 1.2")
 *                                  of FILE, escaped as .expected files
 *                                  hold them (compare_dovecot.py uses it) */
#include "unit.h"

#include "mime/mime.h"

#include <dirent.h>
#include <errno.h>

/* ---- helpers ---- */

static bool read_file(const char *path, struct buf *out)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return false;
	uint8_t chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(out, chunk, n);
	fclose(f);
	return true;
}

/* The escaped form of .expected files: printable ASCII as it is, and
 * \\, \r, \n, \t, \xHH for the rest. */
static void escape(struct slice s, struct buf *out)
{
	for (size_t i = 0; i < s.n; i++) {
		uint8_t c = s.p[i];
		if (c == '\\')
			buf_append_cstr(out, "\\\\");
		else if (c == '\r')
			buf_append_cstr(out, "\\r");
		else if (c == '\n')
			buf_append_cstr(out, "\\n");
		else if (c == '\t')
			buf_append_cstr(out, "\\t");
		else if (c < 0x20 || c >= 0x7f)
			buf_printf(out, "\\x%02x", c);
		else
			buf_append(out, &c, 1);
	}
}

static const char *escaped(struct slice s, struct buf *tmp)
{
	buf_reset(tmp);
	escape(s, tmp);
	return buf_cstr(tmp);
}

/* Parses "1.2.HEADER.FIELDS (A B)" into section; names point into spec
 * and into names[]. Returns false when it does not read. */
static bool parse_section(const char *spec, struct mime_section *section,
			  struct slice *names, size_t max_names)
{
	memset(section, 0, sizeof(*section));
	const char *p = spec;
	while (*p >= '0' && *p <= '9') {
		uint32_t n = 0;
		while (*p >= '0' && *p <= '9')
			n = n * 10 + (uint32_t)(*p++ - '0');
		if (section->part_count == MIME_MAX_DEPTH)
			return false;
		section->parts[section->part_count++] = n;
		if (*p == '.')
			p++;
		else
			break;
	}
	section->kind = MIME_SECTION_ALL;
	if (*p == '\0')
		return true;
	if (strncmp(p, "HEADER.FIELDS.NOT", 17) == 0) {
		section->kind = MIME_SECTION_HEADER_FIELDS_NOT;
		p += 17;
	} else if (strncmp(p, "HEADER.FIELDS", 13) == 0) {
		section->kind = MIME_SECTION_HEADER_FIELDS;
		p += 13;
	} else if (strcmp(p, "HEADER") == 0) {
		section->kind = MIME_SECTION_HEADER;
		return true;
	} else if (strcmp(p, "TEXT") == 0) {
		section->kind = MIME_SECTION_TEXT;
		return true;
	} else if (strcmp(p, "MIME") == 0) {
		section->kind = MIME_SECTION_MIME;
		return true;
	} else {
		return false;
	}
	while (*p == ' ' || *p == '(')
		p++;
	size_t count = 0;
	while (*p != '\0' && *p != ')') {
		const char *start = p;
		while (*p != '\0' && *p != ' ' && *p != ')')
			p++;
		if (count == max_names)
			return false;
		names[count++] = slice_make(start, (size_t)(p - start));
		while (*p == ' ')
			p++;
	}
	section->fields = names;
	section->field_count = count;
	return true;
}

static void structure_of(const struct mime_message *m, struct buf *env,
			 struct buf *bs, struct buf *body)
{
	mime_envelope(m, env);
	mime_bodystructure(m, true, bs);
	mime_bodystructure(m, false, body);
}

static int dump(int argc, char **argv)
{
	struct buf msg, out, tmp;
	buf_init(&msg, 64 << 20);
	buf_init(&out, 64 << 20);
	buf_init(&tmp, 256 << 20);
	if (!read_file(argv[2], &msg)) {
		fprintf(stderr, "cannot read %s: %s\n", argv[2],
			strerror(errno));
		return 1;
	}
	struct mime_message *m = mime_parse(buf_slice(&msg));
	struct buf env, bs, body;
	buf_init(&env, 64 << 20);
	buf_init(&bs, 64 << 20);
	buf_init(&body, 64 << 20);
	structure_of(m, &env, &bs, &body);
	printf("ENVELOPE %s\n", escaped(buf_slice(&env), &tmp));
	printf("BODYSTRUCTURE %s\n", escaped(buf_slice(&bs), &tmp));
	printf("BODY %s\n", escaped(buf_slice(&body), &tmp));
	for (int i = 3; i < argc; i++) {
		struct mime_section section;
		struct slice names[32];
		buf_reset(&out);
		int r;
		if (strncmp(argv[i], "BINARY ", 7) == 0 ||
		    strcmp(argv[i], "BINARY") == 0) {
			const char *spec = argv[i][6] == ' ' ? argv[i] + 7 : "";
			if (!parse_section(spec, &section, names, 32) ||
			    section.kind != MIME_SECTION_ALL) {
				printf("SECTION %s BAD\n", argv[i]);
				continue;
			}
			r = mime_section_binary(m, section.parts,
						section.part_count, &out);
		} else {
			if (!parse_section(argv[i], &section, names, 32)) {
				printf("SECTION %s BAD\n", argv[i]);
				continue;
			}
			r = mime_section_bytes(m, &section, &out);
		}
		if (r < 0)
			printf("SECTION %s %d\n", argv[i], r);
		else
			printf("SECTION %s %s\n", argv[i],
			       escaped(buf_slice(&out), &tmp));
	}
	mime_free(&m);
	buf_free(&msg);
	buf_free(&out);
	buf_free(&tmp);
	buf_free(&env);
	buf_free(&bs);
	buf_free(&body);
	return 0;
}

/* True when out is well-formed IMAP data: strings quoted or literal,
 * parentheses balanced outside them, no CR, LF or NUL outside literals,
 * no NUL at all. */
static bool imap_well_formed(struct slice s)
{
	size_t depth = 0;
	for (size_t i = 0; i < s.n; i++) {
		uint8_t c = s.p[i];
		if (c == '"') {
			for (i++; i < s.n && s.p[i] != '"'; i++) {
				if (s.p[i] == '\\')
					i++;
				if (i >= s.n || s.p[i] == '\r' ||
				    s.p[i] == '\n' || s.p[i] == '\0' ||
				    s.p[i] >= 0x80)
					return false;
			}
			if (i >= s.n)
				return false;
		} else if (c == '{') {
			size_t n = 0, j = i + 1;
			while (j < s.n && s.p[j] >= '0' && s.p[j] <= '9')
				n = n * 10 + (s.p[j++] - '0');
			if (j + 3 > s.n || s.p[j] != '}' ||
			    s.p[j + 1] != '\r' || s.p[j + 2] != '\n' ||
			    j + 3 + n > s.n)
				return false;
			if (memchr(s.p + j + 3, '\0', n) != NULL)
				return false;
			i = j + 2 + n;
		} else if (c == '(') {
			depth++;
		} else if (c == ')') {
			if (depth == 0)
				return false;
			depth--;
		} else if (c == '\r' || c == '\n' || c == '\0') {
			return false;
		}
	}
	return depth == 0 && s.n > 0 && s.p[0] == '(';
}

static struct slice cs(const char *s)
{
	return slice_cstr(s);
}

/* ---- the corpus ---- */

static const char *corpus_dir(void)
{
	static const char *const candidates[] = {
		"tests/unit/mime/corpus",
		"../tests/unit/mime/corpus",
	};
	const char *env = getenv("MIME_CORPUS");
	if (env != NULL)
		return env;
	for (size_t i = 0; i < ARRAY_SIZE(candidates); i++) {
		DIR *d = opendir(candidates[i]);
		if (d != NULL) {
			closedir(d);
			return candidates[i];
		}
	}
	return NULL;
}

/* The line "KEY value" of an .expected file, or NULL. */
static const char *expected_line(const char *text, const char *key,
				 struct buf *line)
{
	size_t klen = strlen(key);
	for (const char *p = text; *p != '\0';) {
		const char *end = strchr(p, '\n');
		size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
		if (n > klen && strncmp(p, key, klen) == 0 && p[klen] == ' ') {
			buf_reset(line);
			buf_append(line, p + klen + 1, n - klen - 1);
			return buf_cstr(line);
		}
		p += n + (end != NULL);
	}
	return NULL;
}

/* Every prefix of a message still parses into well-formed output. */
static void check_prefixes(struct slice msg, const char *name)
{
	struct buf out;
	buf_init(&out, 1 << 20);
	for (size_t n = 0; n <= msg.n; n++) {
		struct mime_message *m = mime_parse(slice_make(msg.p, n));
		buf_reset(&out);
		mime_bodystructure(m, true, &out);
		bool ok = imap_well_formed(buf_slice(&out));
		buf_reset(&out);
		mime_envelope(m, &out);
		ok = ok && imap_well_formed(buf_slice(&out));
		CHECK_CASE(ok, n, name);
		mime_free(&m);
		if (!ok)
			break;
	}
	buf_free(&out);
}

static void test_corpus(void)
{
	const char *dir = corpus_dir();
	CHECK(dir != NULL);
	if (dir == NULL)
		return;
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t files = 0;
	struct buf path, msg, expected, env, bs, body, line, tmp;
	buf_init(&path, 4096);
	buf_init(&msg, 64 << 20);
	buf_init(&expected, 64 << 20);
	buf_init(&env, 64 << 20);
	buf_init(&bs, 64 << 20);
	buf_init(&body, 64 << 20);
	buf_init(&line, 64 << 20);
	buf_init(&tmp, 256 << 20);
	while ((e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);
		if (len < 5 || strcmp(e->d_name + len - 4, ".eml") != 0)
			continue;
		files++;
		buf_reset(&path);
		buf_printf(&path, "%s/%s", dir, e->d_name);
		buf_reset(&msg);
		CHECK_CASE(read_file(buf_cstr(&path), &msg), files, e->d_name);
		buf_reset(&path);
		buf_printf(&path, "%s/%.*s.expected", dir, (int)(len - 4),
			   e->d_name);
		buf_reset(&expected);
		bool have = read_file(buf_cstr(&path), &expected);
		CHECK_CASE(have, files, e->d_name);
		const char *text = buf_cstr(&expected);
		struct mime_message *m = mime_parse(buf_slice(&msg));
		buf_reset(&env);
		buf_reset(&bs);
		buf_reset(&body);
		structure_of(m, &env, &bs, &body);
		CHECK_CASE(imap_well_formed(buf_slice(&env)), files, e->d_name);
		CHECK_CASE(imap_well_formed(buf_slice(&bs)), files, e->d_name);
		CHECK_CASE(imap_well_formed(buf_slice(&body)), files,
			   e->d_name);
		static const char *const keys[] = {"ENVELOPE", "BODYSTRUCTURE",
						   "BODY"};
		struct buf *got[] = {&env, &bs, &body};
		for (size_t k = 0; k < 3; k++) {
			const char *want = expected_line(text, keys[k], &line);
			const char *mine = escaped(buf_slice(got[k]), &tmp);
			bool same = want != NULL && strcmp(want, mine) == 0;
			CHECK_CASE(same, files, e->d_name);
			if (!same)
				fprintf(stderr, "  %s\n  want %s\n  got  %s\n",
					keys[k], want ? want : "(none)", mine);
		}
		mime_free(&m);
		if (msg.n <= 4096)
			check_prefixes(buf_slice(&msg), e->d_name);
	}
	closedir(d);
	CHECK(files >= 20);
	buf_free(&path);
	buf_free(&msg);
	buf_free(&expected);
	buf_free(&env);
	buf_free(&bs);
	buf_free(&body);
	buf_free(&line);
	buf_free(&tmp);
}

/* ---- sections ---- */

static const char section_msg[] =
	"From: a@example.com\r\n"
	"Subject: Outer\r\n"
	"X-Folded: one\r\n"
	" two\r\n"
	"Content-Type: multipart/mixed; boundary=\"B\"\r\n"
	"\r\n"
	"preamble\r\n"
	"--B\r\n"
	"Content-Type: text/plain\r\n"
	"\r\n"
	"part one\r\n"
	"--B\r\n"
	"Content-Type: message/rfc822\r\n"
	"\r\n"
	"From: inner@example.com\r\n"
	"Subject: Inner\r\n"
	"Content-Type: multipart/alternative; boundary=C\r\n"
	"\r\n"
	"--C\r\n"
	"Content-Type: text/plain\r\n"
	"Content-Transfer-Encoding: base64\r\n"
	"\r\n"
	"aW5uZXIgcGxhaW4=\r\n"
	"--C\r\n"
	"Content-Type: text/html\r\n"
	"\r\n"
	"<p>inner</p>\r\n"
	"--C--\r\n"
	"--B\r\n"
	"Content-Type: message/rfc822\r\n"
	"\r\n"
	"Subject: single\r\n"
	"\r\n"
	"just text\r\n"
	"--B--\r\n"
	"epilogue\r\n";

static void test_sections(void)
{
	static const struct {
		const char *spec;
		int result;
		const char *bytes;
	} cases[] = {
		{"HEADER", 0,
		 "From: a@example.com\r\nSubject: Outer\r\nX-Folded: one\r\n "
		 "two\r\nContent-Type: multipart/mixed; "
		 "boundary=\"B\"\r\n\r\n"},
		{"HEADER.FIELDS (SUBJECT)", 0, "Subject: Outer\r\n\r\n"},
		{"HEADER.FIELDS (x-folded FROM)", 0,
		 "From: a@example.com\r\nX-Folded: one\r\n two\r\n\r\n"},
		{"HEADER.FIELDS (NOPE)", 0, "\r\n"},
		{"HEADER.FIELDS.NOT (content-type x-folded)", 0,
		 "From: a@example.com\r\nSubject: Outer\r\n\r\n"},
		{"1", 0, "part one"},
		{"1.MIME", 0, "Content-Type: text/plain\r\n\r\n"},
		{"1.HEADER", -1, NULL},
		{"1.TEXT", -1, NULL},
		/* A part that is no multipart is its own part 1 (as in
		 * Dovecot): 1.1 is 1. */
		{"1.1", 0, "part one"},
		{"2.MIME", 0, "Content-Type: message/rfc822\r\n\r\n"},
		{"2.HEADER", 0,
		 "From: inner@example.com\r\nSubject: Inner\r\nContent-Type: "
		 "multipart/alternative; boundary=C\r\n\r\n"},
		{"2.HEADER.FIELDS (subject)", 0, "Subject: Inner\r\n\r\n"},
		{"2.1", 0, "aW5uZXIgcGxhaW4="},
		{"2.1.MIME", 0,
		 "Content-Type: text/plain\r\nContent-Transfer-Encoding: "
		 "base64\r\n\r\n"},
		{"2.2", 0, "<p>inner</p>"},
		{"2.3", -1, NULL},
		{"2.1.1", 0, "aW5uZXIgcGxhaW4="},
		{"2.1.2", -1, NULL},
		{"2.TEXT", 0,
		 "--C\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: "
		 "base64\r\n\r\naW5uZXIgcGxhaW4=\r\n--C\r\nContent-Type: "
		 "text/html\r\n\r\n<p>inner</p>\r\n--C--"},
		{"3.HEADER", 0, "Subject: single\r\n\r\n"},
		{"3.TEXT", 0, "just text"},
		{"3.1", 0, "just text"},
		{"3.1.MIME", 0, "Subject: single\r\n\r\n"},
		{"3.2", -1, NULL},
		{"4", -1, NULL},
		{"0", -1, NULL},
		{"MIME", -1, NULL},
		{"TEXT", 0, NULL}, /* checked below */
	};
	struct mime_message *m = mime_parse(cs(section_msg));
	struct buf out;
	buf_init(&out, 1 << 20);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct mime_section section;
		struct slice names[8];
		CHECK_CASE(parse_section(cases[i].spec, &section, names, 8), i,
			   cases[i].spec);
		buf_reset(&out);
		int r = mime_section_bytes(m, &section, &out);
		CHECK_CASE(r == cases[i].result, i, cases[i].spec);
		if (cases[i].bytes != NULL)
			CHECK_CASE(out.n == strlen(cases[i].bytes) &&
					   memcmp(out.p, cases[i].bytes,
						  out.n) == 0,
				   i, cases[i].spec);
	}
	/* BODY[] and BODY[TEXT] of the whole message. */
	struct mime_section all = {.kind = MIME_SECTION_ALL};
	buf_reset(&out);
	CHECK(mime_section_bytes(m, &all, &out) == 0);
	CHECK(out.n == strlen(section_msg) &&
	      memcmp(out.p, section_msg, out.n) == 0);
	struct mime_section text = {.kind = MIME_SECTION_TEXT};
	buf_reset(&out);
	CHECK(mime_section_bytes(m, &text, &out) == 0);
	const char *body = strstr(section_msg, "\r\n\r\n") + 4;
	CHECK(out.n == strlen(body) && memcmp(out.p, body, out.n) == 0);
	/* Too many part numbers. */
	struct mime_section deep = {.kind = MIME_SECTION_ALL,
				    .part_count = MIME_MAX_DEPTH + 1};
	CHECK(mime_section_bytes(m, &deep, &out) == -1);
	mime_free(&m);

	/* A single-part message: part 1 is its body, 1.MIME its header. */
	m = mime_parse(cs("Subject: x\r\n\r\nbody\r\n"));
	struct mime_section one = {.parts = {1}, .part_count = 1};
	buf_reset(&out);
	CHECK(mime_section_bytes(m, &one, &out) == 0);
	CHECK(out.n == 6 && memcmp(out.p, "body\r\n", 6) == 0);
	one.kind = MIME_SECTION_MIME;
	buf_reset(&out);
	CHECK(mime_section_bytes(m, &one, &out) == 0);
	CHECK(out.n == 14 && memcmp(out.p, "Subject: x\r\n\r\n", 14) == 0);
	mime_free(&m);
	buf_free(&out);
}

/* ---- BINARY ---- */

static void test_binary(void)
{
	static const char msg[] =
		"Content-Type: multipart/mixed; boundary=b\r\n"
		"\r\n"
		"--b\r\n"
		"Content-Transfer-Encoding: base64\r\n"
		"\r\n"
		"SGVsbG8s\r\n"
		"IHdvcmxk\r\n"
		"IQ==\r\n"
		"--b\r\n"
		"Content-Transfer-Encoding: quoted-printable\r\n"
		"\r\n"
		"caf=C3=A9 soft=\r\n"
		"break =3D done  \r\n"
		"end\r\n"
		"--b\r\n"
		"Content-Transfer-Encoding: 7bit\r\n"
		"\r\n"
		"seven =41\r\n"
		"--b\r\n"
		"Content-Transfer-Encoding: 8BIT\r\n"
		"\r\n"
		"eight \xc3\xa9\r\n"
		"--b\r\n"
		"Content-Transfer-Encoding: binary\r\n"
		"\r\n"
		"bin\x01\x02\r\n"
		"--b\r\n"
		"Content-Transfer-Encoding: x-uuencode\r\n"
		"\r\n"
		"begin 644 x\r\n"
		"--b\r\n"
		"Content-Type: message/rfc822\r\n"
		"\r\n"
		"Subject: in\r\n"
		"Content-Transfer-Encoding: base64\r\n"
		"\r\n"
		"aW4=\r\n"
		"--b\r\n"
		"Content-Transfer-Encoding: base64\r\n"
		"\r\n"
		"not*base64 at all==\r\n"
		"--b\r\n"
		"Content-Transfer-Encoding: BASE64\r\n"
		"\r\n"
		"SGk=\r\n"
		"IHRoZXJl\r\n"
		"IQ==\r\n"
		"--b--\r\n";
	static const struct {
		uint32_t parts[3];
		size_t count;
		int result;
		const char *bytes;
		size_t len; /* 0: strlen(bytes) */
	} cases[] = {
		{{1}, 1, 0, "Hello, world!", 13},
		{{2},
		 1,
		 0,
		 "caf\xc3\xa9 soft"
		 "break = done\r\nend",
		 0},
		{{3}, 1, 0, "seven =41", 9},
		{{4}, 1, 0, "eight \xc3\xa9", 8},
		{{5}, 1, 0, "bin\x01\x02", 5},
		{{6}, 1, -2, NULL, 0},
		{{7},
		 1,
		 0,
		 "Subject: in\r\nContent-Transfer-Encoding: "
		 "base64\r\n\r\naW4=",
		 0},
		{{7, 1}, 2, 0, "in", 2},
		/* Not base64: what can be read of it. */
		{{8}, 1, 0, "\x9e\x8b\x5b\x6a\xc7\xba\xe1\xab\x5a\x96", 10},
		/* Blocks padded one by one. */
		{{9}, 1, 0, "Hi there!", 0},
		{{10}, 1, -1, NULL, 0},
		{{1, 1}, 2, 0, "Hello, world!", 13},
		{{1, 2}, 2, -1, NULL, 0},
		{{0}, 1, -1, NULL, 0},
	};
	struct mime_message *m = mime_parse(cs(msg));
	struct buf out;
	buf_init(&out, 1 << 20);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		buf_reset(&out);
		int r = mime_section_binary(m, cases[i].parts, cases[i].count,
					    &out);
		CHECK_CASE(r == cases[i].result, i, "binary");
		size_t len = cases[i].len;
		if (cases[i].bytes != NULL && len == 0)
			len = strlen(cases[i].bytes);
		if (cases[i].bytes != NULL)
			CHECK_CASE(out.n == len && memcmp(out.p, cases[i].bytes,
							  out.n) == 0,
				   i, "binary");
	}
	buf_reset(&out);
	CHECK(mime_section_binary(m, NULL, 0, &out) == 0);
	CHECK(out.n == strlen(msg));
	mime_free(&m);
	buf_free(&out);
}

/* ---- decoded values ---- */

static void test_header_value(void)
{
	static const struct {
		const char *header;
		const char *name;
		bool found;
		const char *value;
	} cases[] = {
		{"Subject: plain\r\n", "subject", true, "plain"},
		{"Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n", "Subject", true,
		 "Gr\xc3\xbc\xc3\x9f"
		 "e"},
		/* Adjacent words join without the space between them. */
		{"Subject: =?utf-8?q?a?= =?utf-8?q?b?=\r\n", "Subject", true,
		 "ab"},
		{"Subject: =?utf-8?q?a?=\r\n =?utf-8?q?b?=\r\n", "Subject",
		 true, "ab"},
		{"Subject: =?utf-8?q?a?= x =?utf-8?q?b?=\r\n", "Subject", true,
		 "a x b"},
		/* A character split between two words. */
		{"Subject: =?UTF-8?B?w6k=?= =?UTF-8?B?w6k=?=\r\n", "Subject",
		 true, "\xc3\xa9\xc3\xa9"},
		{"Subject: =?UTF-8?B?4oI=?= =?UTF-8?B?rA==?=\r\n", "Subject",
		 true, "\xe2\x82\xac"},
		{"Subject: =?ISO-8859-1?Q?caf=E9?=\r\n", "Subject", true,
		 "caf\xc3\xa9"},
		{"Subject: =?windows-1252?Q?=93q=94_=80?=\r\n", "Subject", true,
		 "\xe2\x80\x9cq\xe2\x80\x9d \xe2\x82\xac"},
		{"Subject: =?iso-8859-15?q?=A4?=\r\n", "Subject", true,
		 "\xe2\x82\xac"},
		{"Subject: =?koi8-r?b?8NLJ18XU?=\r\n", "Subject", true,
		 "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82"},
		{"Subject: =?ISO-2022-JP?B?GyRCJEskWyRzGyhC?=\r\n", "Subject",
		 true, "\xe3\x81\xab\xe3\x81\xbb\xe3\x82\x93"},
		/* RFC 2231 language suffix. */
		{"Subject: =?US-ASCII*EN?Q?Keith_Moore?=\r\n", "Subject", true,
		 "Keith Moore"},
		/* Unknown charset: UTF-8 if it is, else windows-1252. */
		{"Subject: =?x-bogus?Q?caf=E9?=\r\n", "Subject", true,
		 "caf\xc3\xa9"},
		{"Subject: =?x-bogus?Q?caf=C3=A9?=\r\n", "Subject", true,
		 "caf\xc3\xa9"},
		/* Invalid UTF-8 in a UTF-8 word. */
		{"Subject: =?utf-8?q?a=FFb?=\r\n", "Subject", true,
		 "a\xef\xbf\xbd"
		 "b"},
		/* Not encoded words. */
		{"Subject: =?utf-8?x?abc?=\r\n", "Subject", true,
		 "=?utf-8?x?abc?="},
		{"Subject: =?utf-8?q?a b?=\r\n", "Subject", true,
		 "=?utf-8?q?a b?="},
		{"Subject: a =?\r\n", "Subject", true, "a =?"},
		/* Raw 8-bit: UTF-8, else windows-1252. */
		{"Subject: Stra\xc3\x9f"
		 "e\r\n",
		 "Subject", true,
		 "Stra\xc3\x9f"
		 "e"},
		{"Subject: Ren\xe9"
		 "e\r\n",
		 "Subject", true,
		 "Ren\xc3\xa9"
		 "e"},
		/* Controls become spaces; the ends are trimmed. */
		{"Subject: =?utf-8?q?a=0D=0Ab=00c?=  \r\n", "Subject", true,
		 "a  b c"},
		/* Folding, several fields joined. */
		{"To: a@x,\r\n\tb@y\r\nTo: c@z\r\n", "to", true,
		 "a@x, b@y, c@z"},
		{"Subject: x\r\n", "From", false, ""},
		{"Subject:\r\n", "Subject", true, ""},
	};
	struct buf out;
	buf_init(&out, 1 << 20);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct buf msg;
		buf_init(&msg, 1 << 20);
		buf_printf(&msg, "%s\r\nbody\r\n", cases[i].header);
		struct mime_message *m = mime_parse(buf_slice(&msg));
		buf_reset(&out);
		bool found = mime_header_value(m, cases[i].name, &out);
		CHECK_CASE(found == cases[i].found, i, cases[i].header);
		bool same = out.n == strlen(cases[i].value) &&
			    memcmp(out.p, cases[i].value, out.n) == 0;
		CHECK_CASE(same, i, cases[i].header);
		if (!same)
			fprintf(stderr, "  got \"%s\"\n", buf_cstr(&out));
		mime_free(&m);
		buf_free(&msg);
	}
	buf_free(&out);
}

static void test_body_text(void)
{
	static const struct {
		const char *msg;
		const char *text;
	} cases[] = {
		{"Subject: x\r\n\r\nplain body\r\n", "plain body\r\n"},
		{"Content-Type: text/html; charset=utf-8\r\n\r\n"
		 "<html><head><title>T</title><style>p{}</style></head>"
		 "<body><p>a &amp; b &lt;c&gt;</p><script>x()</script>"
		 "<div>d&nbsp;e &#233; &#x20AC; &bogus; 1 < 2</div>"
		 "<!-- c --></body></html>",
		 "T\na & b <c>\nd e \xc3\xa9 \xe2\x82\xac &bogus; 1 < 2"},
		{"Content-Type: text/plain; charset=iso-8859-1\r\n"
		 "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
		 "caf=E9 cr=\r\neme",
		 "caf\xc3\xa9 creme"},
		{"Content-Type: multipart/alternative; boundary=a\r\n\r\n"
		 "--a\r\nContent-Type: text/plain\r\n\r\nthe plain one\r\n"
		 "--a\r\nContent-Type: text/html\r\n\r\n<b>the html one</b>\r\n"
		 "--a--\r\n",
		 "the plain one"},
		{"Content-Type: multipart/mixed; boundary=a\r\n\r\n"
		 "--a\r\nContent-Type: text/plain\r\n\r\none\r\n"
		 "--a\r\nContent-Type: image/png\r\n"
		 "Content-Transfer-Encoding: base64\r\n\r\niVBORw0=\r\n"
		 "--a\r\nContent-Type: message/rfc822\r\n\r\n"
		 "Subject: in\r\n\r\ntwo\r\n"
		 "--a\r\nContent-Type: text/html\r\n"
		 "Content-Transfer-Encoding: base64\r\n\r\n"
		 "PGk+dGhyZWU8L2k+\r\n--a--\r\n",
		 "one\ntwo\nthree"},
	};
	struct buf out;
	buf_init(&out, 1 << 20);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct mime_message *m = mime_parse(cs(cases[i].msg));
		buf_reset(&out);
		mime_body_text(m, &out);
		bool same = out.n == strlen(cases[i].text) &&
			    memcmp(out.p, cases[i].text, out.n) == 0;
		CHECK_CASE(same, i, cases[i].msg);
		if (!same)
			fprintf(stderr, "  got \"%s\"\n", buf_cstr(&out));
		mime_free(&m);
	}
	buf_free(&out);
}

static void test_base_subject(void)
{
	static const struct {
		const char *subject;
		const char *base;
		bool reply;
	} cases[] = {
		{"Re: [list] Fwd: subj (fwd)", "subj", true},
		{"subj", "subj", false},
		{"  Re:  re: RE : Fw: FWD:subj  ", "subj", true},
		{"Re: RE: Re[2]: subj", "subj", true},
		{"Re: [PATCH 1/2] [list] x", "x", true},
		{"Re [2]: subj", "subj", true},
		{"[fwd: subj]", "subj", true},
		{"Re: [fwd: [list] Re: subj (fwd)]", "subj", true},
		{"[list] subj", "subj", false},
		{"[list]", "[list]", false},
		{"[a][b] subj", "subj", false},
		{"Re: [list]", "[list]", true},
		{"Fwd:", "", true},
		{"subj\t(fwd)\t(FWD)", "subj", true},
		{"a  \t b", "a b", false},
		{"Reply: x", "Reply: x", false},
		{"Re:Re:Re:", "", true},
		{"", "", false},
		{"Gr\xc3\xbc\xc3\x9f"
		 "e (fwd)",
		 "Gr\xc3\xbc\xc3\x9f"
		 "e",
		 true},
	};
	struct buf out;
	buf_init(&out, 4096);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		buf_reset(&out);
		mime_base_subject(cs(cases[i].subject), &out);
		bool same = out.n == strlen(cases[i].base) &&
			    memcmp(out.p, cases[i].base, out.n) == 0;
		CHECK_CASE(same, i, cases[i].subject);
		if (!same)
			fprintf(stderr, "  got \"%s\"\n", buf_cstr(&out));
		CHECK_CASE(mime_subject_is_reply_or_forward(
				   cs(cases[i].subject)) == cases[i].reply,
			   i, cases[i].subject);
	}
	buf_free(&out);
}

static void test_date(void)
{
	static const struct {
		const char *date;
		int64_t t;
	} cases[] = {
		{"Tue, 1 Jul 2003 10:52:37 +0200", 1057049557},
		{"1 Jul 2003 10:52:37 +0200", 1057049557},
		{"Tue,  1 Jul 2003 10:52:37 +0200 (CEST)", 1057049557},
		{"Tue, 01 Jul 2003 08:52:37 GMT", 1057049557},
		{"Tue, 01 Jul 2003 08:52:37 UT", 1057049557},
		{"Tue, 01 Jul 2003 04:52:37 EDT", 1057049557},
		{"Tue, 01 Jul 2003 03:52:37 EST", 1057049557},
		{"Tue, 01 Jul 2003 01:52:37 PDT", 1057049557},
		{"Tue, 01 Jul 2003 08:52:37 Z", 1057049557},
		{"Tue, 01 Jul 2003 08:52:37 -0000", 1057049557},
		{"Tue, 01 Jul 2003 08:52:37", 1057049557},
		{"Tue, 01 Jul 03 08:52:37 +0000", 1057049557},
		{"Tue, 01 Jul 103 08:52:37 +0000", 1057049557},
		{"Thu, 01 Jan 70 00:00:00 +0000", 0},
		{"Thu, 1 Jan 1970 00:00:00 +0100", -3600},
		{"Tue, 01 Jul 2003 08:52 +0000", 1057049520},
		{"Tuesday, 01 July 2003 08:52:37 +0000", 1057049557},
		{"Tue, 01-Jul-2003 08:52:37 +0000", 1057049557},
		{"Tue (day) , 01 (d) Jul (m) 2003 08 : 52 : 37 +0000",
		 1057049557},
		{"Mon, 29 Feb 2016 12:00:00 +0000", 1456747200},
		{"Fri, 31 Dec 9999 23:59:59 +0000", 253402300799},
		{"Sat, 1 Jan 2000 00:00:00 +1400", 946634400},
		{"Mon, 30 Feb 2015 12:00:00 +0000", -1},
		{"Mon, 29 Feb 2015 12:00:00 +0000", -1},
		{"Mon, 32 Jan 2015 12:00:00 +0000", -1},
		{"Mon, 1 Foo 2015 12:00:00 +0000", -1},
		{"Mon, 1 Jan 2015 24:00:00 +0000", -1},
		{"Mon, 1 Jan 2015 12:60:00 +0000", -1},
		{"Mon, 1 Jan 2015 12:00:61 +0000", -1},
		{"Mon, 1 Jan 2015 12:00:00 +0075", -1},
		{"Mon, 1 Jan 2015", -1},
		{"2015-01-01 12:00:00", -1},
		{"", -1},
		{"garbage", -1},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct buf msg;
		buf_init(&msg, 4096);
		buf_printf(&msg, "Date: %s\r\n\r\n", cases[i].date);
		struct mime_message *m = mime_parse(buf_slice(&msg));
		int64_t t = mime_date(m);
		CHECK_CASE(t == cases[i].t, i, cases[i].date);
		if (t != cases[i].t)
			fprintf(stderr, "  got %lld\n", (long long)t);
		mime_free(&m);
		buf_free(&msg);
	}
	struct mime_message *m = mime_parse(cs("Subject: no date\r\n\r\n"));
	CHECK(mime_date(m) == -1);
	mime_free(&m);
}

static void test_sort_address(void)
{
	static const struct {
		const char *header;
		const char *field;
		bool display;
		const char *key;
	} cases[] = {
		{"From: John Doe <John.Doe@Example.COM>", "From", false,
		 "John.Doe"},
		{"From: John Doe <John.Doe@Example.COM>", "From", true,
		 "John Doe"},
		{"From: \"Doe, John\" <j@x>", "from", true, "Doe, John"},
		{"From: =?utf-8?q?J=C3=B6rg?= <j@x>", "From", true,
		 "J\xc3\xb6rg"},
		{"From: j@x (Comment Name)", "From", true, "Comment Name"},
		{"From: j@x", "From", true, "j@x"},
		{"From: <j@x>", "From", true, "j@x"},
		{"To: Group: a@x, b@y;, c@z", "To", false, "a"},
		{"To: Group:;, c@z", "To", true, "c@z"},
		{"Cc: , , d@w", "Cc", false, "d"},
		{"Cc: nobody", "Cc", true, "nobody"},
		{"Cc: nobody", "Cc", false, "nobody"},
		{"Cc: <@x>", "Cc", false, ""},
		{"To: x@y", "Cc", false, ""},
		{"To:", "To", true, ""},
		{"To: <>, , ;, e@f", "To", false, "e"},
	};
	struct buf out;
	buf_init(&out, 4096);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct buf msg;
		buf_init(&msg, 4096);
		buf_printf(&msg, "%s\r\n\r\n", cases[i].header);
		struct mime_message *m = mime_parse(buf_slice(&msg));
		buf_reset(&out);
		mime_sort_address(m, cases[i].field, cases[i].display, &out);
		bool same = out.n == strlen(cases[i].key) &&
			    memcmp(out.p, cases[i].key, out.n) == 0;
		CHECK_CASE(same, i, cases[i].header);
		if (!same)
			fprintf(stderr, "  got \"%s\"\n", buf_cstr(&out));
		mime_free(&m);
		buf_free(&msg);
	}
	buf_free(&out);
}

static void test_message_ids(void)
{
	static const struct {
		const char *header;
		const char *field;
		const char *ids; /* '|' for each NUL */
	} cases[] = {
		{"Message-ID: <a@b>", "Message-ID", "a@b|"},
		{"Message-Id:   <a@b>  (comment)", "message-id", "a@b|"},
		{"References: <a@b> <c@d>\r\n\t<e@f>", "References",
		 "a@b|c@d|e@f|"},
		{"In-Reply-To: <a@b> (Mr. X's message of \"Tue <x@y>\")",
		 "In-Reply-To", "a@b|"},
		{"In-Reply-To: Your message of \"<q@r>\" <a@b>", "In-Reply-To",
		 "a@b|"},
		{"References: <a@b><c@d>", "References", "a@b|c@d|"},
		{"References: <a b@c> <d@e>", "References", "d@e|"},
		{"References: <<a@b>>", "References", "a@b|"},
		{"References: <a@b", "References", ""},
		{"References: <>", "References", ""},
		{"References: <noat>", "References", "noat|"},
		{"Subject: x", "References", ""},
	};
	struct buf out;
	buf_init(&out, 4096);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct buf msg;
		buf_init(&msg, 4096);
		buf_printf(&msg, "%s\r\n\r\n", cases[i].header);
		struct mime_message *m = mime_parse(buf_slice(&msg));
		buf_reset(&out);
		mime_message_ids(m, cases[i].field, &out);
		for (size_t k = 0; k < out.n; k++) {
			if (out.p[k] == '\0')
				out.p[k] = '|';
		}
		bool same = out.n == strlen(cases[i].ids) &&
			    memcmp(out.p, cases[i].ids, out.n) == 0;
		CHECK_CASE(same, i, cases[i].header);
		if (!same)
			fprintf(stderr, "  got \"%s\"\n", buf_cstr(&out));
		mime_free(&m);
		buf_free(&msg);
	}
	buf_free(&out);
}

static void test_has_attachment(void)
{
	static const struct {
		const char *msg;
		bool has;
	} cases[] = {
		{"Subject: x\r\n\r\ntext\r\n", false},
		{"Content-Disposition: attachment\r\n\r\ntext\r\n", true},
		{"Content-Type: multipart/alternative; boundary=a\r\n\r\n"
		 "--a\r\nContent-Type: text/plain\r\n\r\nx\r\n"
		 "--a\r\nContent-Type: text/html\r\n\r\ny\r\n--a--\r\n",
		 false},
		{"Content-Type: multipart/mixed; boundary=a\r\n\r\n"
		 "--a\r\n\r\nx\r\n"
		 "--a\r\nContent-Type: application/pdf; name=\"r.pdf\"\r\n\r\n"
		 "y\r\n--a--\r\n",
		 true},
		{"Content-Type: multipart/mixed; boundary=a\r\n\r\n"
		 "--a\r\n\r\nx\r\n"
		 "--a\r\nContent-Type: image/png\r\nContent-Disposition: "
		 "inline; filename*0*=utf-8''a; filename*1=b.png\r\n\r\n"
		 "y\r\n--a--\r\n",
		 true},
		{"Content-Type: multipart/mixed; boundary=a\r\n\r\n"
		 "--a\r\n\r\nx\r\n"
		 "--a\r\nContent-Type: image/png\r\n\r\ny\r\n--a--\r\n",
		 false},
		{"Content-Type: multipart/mixed; boundary=a\r\n\r\n"
		 "--a\r\nContent-Type: text/plain; name=notes.txt\r\n"
		 "Content-Disposition: inline\r\n\r\nx\r\n--a--\r\n",
		 false},
		{"Content-Type: multipart/mixed; boundary=a\r\n\r\n"
		 "--a\r\n\r\nx\r\n"
		 "--a\r\nContent-Type: message/rfc822\r\n\r\n"
		 "Subject: y\r\n\r\nz\r\n--a--\r\n",
		 true},
		{"Content-Type: multipart/mixed; boundary=a\r\n\r\n"
		 "--a\r\nContent-Disposition: ATTACHMENT; filename=x.txt\r\n"
		 "\r\nx\r\n--a--\r\n",
		 true},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct mime_message *m = mime_parse(cs(cases[i].msg));
		CHECK_CASE(mime_has_attachment(m) == cases[i].has, i,
			   cases[i].msg);
		mime_free(&m);
	}
}

/* ---- limits ---- */

/* Counts the parts of a BODYSTRUCTURE: each "(" that starts a body, i.e.
 * is followed by a string (a type) or by another "(" of a multipart. */
static size_t count_leaves(struct slice s)
{
	size_t n = 0;
	for (size_t i = 0; i + 8 < s.n; i++) {
		if (s.p[i] == '(' &&
		    memcmp(s.p + i + 1, "\"TEXT\" \"PLAIN\"", 14) == 0)
			n++;
	}
	return n;
}

static void test_limits(void)
{
	struct buf msg, out;
	buf_init(&msg, 64 << 20);
	buf_init(&out, 64 << 20);

	/* More parts than MIME_MAX_PARTS: the rest is body of the parent. */
	buf_append_cstr(&msg,
			"Content-Type: multipart/mixed; boundary=p\r\n\r\n");
	for (int i = 0; i < MIME_MAX_PARTS + 500; i++)
		buf_append_cstr(&msg, "--p\r\n\r\nx\r\n");
	buf_append_cstr(&msg, "--p--\r\n");
	struct mime_message *m = mime_parse(buf_slice(&msg));
	mime_bodystructure(m, true, &out);
	CHECK(imap_well_formed(buf_slice(&out)));
	CHECK(count_leaves(buf_slice(&out)) == MIME_MAX_PARTS - 1);
	uint32_t last[1] = {MIME_MAX_PARTS - 1};
	buf_reset(&out);
	CHECK(mime_section_binary(m, last, 1, &out) == 0);
	CHECK(out.n == 1 && out.p[0] == 'x');
	last[0]++;
	CHECK(mime_section_binary(m, last, 1, &out) == -1);
	mime_free(&m);

	/* message/rfc822 nested 100 deep: valid, and bounded. */
	buf_reset(&msg);
	for (int i = 0; i < 100; i++)
		buf_printf(&msg,
			   "Subject: level %d\r\nContent-Type: "
			   "message/rfc822\r\n\r\n",
			   i);
	buf_append_cstr(&msg, "Subject: last\r\n\r\nbody\r\n");
	m = mime_parse(buf_slice(&msg));
	buf_reset(&out);
	mime_bodystructure(m, true, &out);
	CHECK(imap_well_formed(buf_slice(&out)));
	buf_reset(&out);
	mime_bodystructure(m, false, &out);
	CHECK(imap_well_formed(buf_slice(&out)));
	struct mime_section sec = {.kind = MIME_SECTION_HEADER};
	for (size_t i = 0; i < MIME_MAX_DEPTH; i++)
		sec.parts[i] = 1;
	sec.part_count = 31;
	buf_reset(&out);
	CHECK(mime_section_bytes(m, &sec, &out) == 0);
	CHECK(out.n > 0 && memcmp(out.p, "Subject: level 31\r\n", 19) == 0);
	mime_free(&m);

	/* A header longer than MIME_MAX_HEADER_LINES lines: the rest is
	 * body. */
	buf_reset(&msg);
	for (int i = 0; i < MIME_MAX_HEADER_LINES + 10; i++)
		buf_printf(&msg, "X-%d: y\r\n", i);
	buf_append_cstr(&msg, "\r\nbody\r\n");
	m = mime_parse(buf_slice(&msg));
	struct mime_section hdr = {.kind = MIME_SECTION_HEADER};
	buf_reset(&out);
	CHECK(mime_section_bytes(m, &hdr, &out) == 0);
	CHECK(out.n > 0 && memmem(out.p, out.n, "X-9999:", 7) != NULL &&
	      memmem(out.p, out.n, "X-10000:", 8) == NULL);
	mime_free(&m);

	/* A boundary longer than MIME_MAX_BOUNDARY: text/plain. */
	buf_reset(&msg);
	buf_append_cstr(&msg, "Content-Type: multipart/mixed; boundary=");
	for (int i = 0; i < MIME_MAX_BOUNDARY + 1; i++)
		buf_append(&msg, "b", 1);
	buf_append_cstr(&msg, "\r\n\r\nx\r\n");
	m = mime_parse(buf_slice(&msg));
	buf_reset(&out);
	mime_bodystructure(m, false, &out);
	CHECK(out.n > 0 &&
	      strncmp((const char *)out.p, "(\"TEXT\" \"PLAIN\"", 15) == 0);
	mime_free(&m);

	/* Strings: a long one becomes a literal, quotes are escaped, NULs
	 * dropped. */
	buf_reset(&msg);
	buf_append_cstr(&msg, "Subject: ");
	for (int i = 0; i < MIME_MAX_QUOTED + 1; i++)
		buf_append(&msg, "s", 1);
	buf_append_cstr(&msg, "\r\nMessage-ID: <a\"b\\c\0d>\r\n\r\n");
	buf_append(&msg, "", 0);
	m = mime_parse(slice_make(msg.p, msg.n));
	buf_reset(&out);
	mime_envelope(m, &out);
	CHECK(imap_well_formed(buf_slice(&out)));
	CHECK(memmem(out.p, out.n, "{1025}\r\n", 8) != NULL);
	mime_free(&m);

	/* Inputs that would take quadratic time to a naive reader. */
	buf_reset(&msg);
	buf_append_cstr(&msg, "Subject: ");
	for (int i = 0; i < 100000; i++)
		buf_append_cstr(&msg, "=?a?q?x");
	buf_append_cstr(&msg, "\r\nTo: ");
	for (int i = 0; i < 100000; i++)
		buf_append_cstr(&msg, "a a ");
	buf_append_cstr(&msg, "\r\n\r\n");
	m = mime_parse(buf_slice(&msg));
	buf_reset(&out);
	CHECK(mime_header_value(m, "Subject", &out));
	CHECK(out.n == 700000);
	buf_reset(&out);
	mime_envelope(m, &out);
	CHECK(imap_well_formed(buf_slice(&out)));
	mime_free(&m);
	buf_reset(&msg);
	for (int i = 0; i < 100000; i++)
		buf_append_cstr(&msg, "[a]");
	buf_append_cstr(&msg, " x");
	buf_reset(&out);
	mime_base_subject(buf_slice(&msg), &out);
	CHECK(out.n == 1 && out.p[0] == 'x');

	/* A NULL, empty input. */
	m = mime_parse(slice_make(NULL, 0));
	buf_reset(&out);
	mime_bodystructure(m, true, &out);
	CHECK(imap_well_formed(buf_slice(&out)));
	mime_free(&m);
	mime_free(&m);

	buf_free(&msg);
	buf_free(&out);
}

int main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "--dump") == 0)
		return dump(argc, argv);
	test_corpus();
	test_sections();
	test_binary();
	test_header_value();
	test_body_text();
	test_base_subject();
	test_date();
	test_sort_address();
	test_message_ids();
	test_has_attachment();
	test_limits();
	return unit_result("mime");
}
