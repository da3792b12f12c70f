/* test_parser.c: unit tests for src/imap/parser.c and arena.c: framing
 * (literals of every kind, fed split at every byte), commands and tags,
 * argument helpers, sequence sets, flags, dates, modified UTF-7, response
 * strings, FETCH items, SEARCH keys and SORT criteria. */
#include "unit.h"

#include "imap/parser.h"

#include <inttypes.h>
#include <strings.h>

/* A string literal with its length, NULs included. */
#define T(s) s, sizeof(s) - 1

static struct arena *arena;

/* ---- Rendering parse results for the tables ---- */

static void render_args(struct buf *b, const struct imap_arg *args,
			size_t count)
{
	for (size_t i = 0; i < count; i++) {
		const struct imap_arg *a = &args[i];
		if (i > 0)
			buf_append_cstr(b, " ");
		switch (a->type) {
		case IMAP_ARG_ATOM:
			buf_append_slice(b, a->text);
			break;
		case IMAP_ARG_NIL:
			buf_append_cstr(b, "NIL");
			break;
		case IMAP_ARG_STRING:
			buf_append_cstr(b, "\"");
			buf_append_slice(b, a->text);
			buf_append_cstr(b, "\"");
			break;
		case IMAP_ARG_LITERAL:
			buf_printf(b, "%s{%zu}", a->literal8 ? "~" : "",
				   a->text.n);
			buf_append_slice(b, a->text);
			break;
		case IMAP_ARG_LIST:
			buf_append_cstr(b, "(");
			render_args(b, a->list, a->count);
			buf_append_cstr(b, ")");
			break;
		}
	}
}

static void render_set(struct buf *b, const struct imap_seqset *s)
{
	if (s->saved)
		buf_append_cstr(b, "$");
	for (size_t i = 0; i < s->count; i++) {
		if (i > 0)
			buf_append_cstr(b, ",");
		if (s->ranges[i].lo == s->ranges[i].hi)
			buf_printf(b, "%" PRIu32, s->ranges[i].lo);
		else
			buf_printf(b, "%" PRIu32 ":%" PRIu32, s->ranges[i].lo,
				   s->ranges[i].hi);
	}
}

static void render_key(struct buf *b, const struct imap_search_key *k)
{
	static const char *const names[] = {
		[IMAP_SEARCH_ALL] = "ALL",
		[IMAP_SEARCH_AND] = "AND",
		[IMAP_SEARCH_OR] = "OR",
		[IMAP_SEARCH_NOT] = "NOT",
		[IMAP_SEARCH_SEQSET] = "SEQ",
		[IMAP_SEARCH_UIDSET] = "UID",
		[IMAP_SEARCH_FLAG] = "FLAG",
		[IMAP_SEARCH_NOT_FLAG] = "UNFLAG",
		[IMAP_SEARCH_KEYWORD] = "KW",
		[IMAP_SEARCH_UNKEYWORD] = "UNKW",
		[IMAP_SEARCH_NEW] = "NEW",
		[IMAP_SEARCH_OLD] = "OLD",
		[IMAP_SEARCH_RECENT] = "RECENT",
		[IMAP_SEARCH_BEFORE] = "BEFORE",
		[IMAP_SEARCH_ON] = "ON",
		[IMAP_SEARCH_SINCE] = "SINCE",
		[IMAP_SEARCH_SENTBEFORE] = "SENTBEFORE",
		[IMAP_SEARCH_SENTON] = "SENTON",
		[IMAP_SEARCH_SENTSINCE] = "SENTSINCE",
		[IMAP_SEARCH_LARGER] = "LARGER",
		[IMAP_SEARCH_SMALLER] = "SMALLER",
		[IMAP_SEARCH_HEADER] = "HEADER",
		[IMAP_SEARCH_BODY] = "BODY",
		[IMAP_SEARCH_TEXT] = "TEXT",
		[IMAP_SEARCH_MODSEQ] = "MODSEQ",
		[IMAP_SEARCH_SAVED] = "$",
	};
	buf_append_cstr(b, names[k->kind]);
	switch (k->kind) {
	case IMAP_SEARCH_AND:
	case IMAP_SEARCH_OR:
	case IMAP_SEARCH_NOT:
		buf_append_cstr(b, "(");
		for (size_t i = 0; i < k->child_count; i++) {
			if (i > 0)
				buf_append_cstr(b, " ");
			render_key(b, &k->children[i]);
		}
		buf_append_cstr(b, ")");
		break;
	case IMAP_SEARCH_SEQSET:
	case IMAP_SEARCH_UIDSET:
		buf_append_cstr(b, ":");
		render_set(b, &k->set);
		break;
	case IMAP_SEARCH_FLAG:
	case IMAP_SEARCH_NOT_FLAG:
		buf_printf(b, ":%u", k->flags);
		break;
	case IMAP_SEARCH_KEYWORD:
	case IMAP_SEARCH_UNKEYWORD:
	case IMAP_SEARCH_BODY:
	case IMAP_SEARCH_TEXT:
		buf_append_cstr(b, ":");
		buf_append_slice(b, k->value);
		break;
	case IMAP_SEARCH_HEADER:
		buf_append_cstr(b, ":");
		buf_append_slice(b, k->field);
		buf_append_cstr(b, "=");
		buf_append_slice(b, k->value);
		break;
	case IMAP_SEARCH_BEFORE:
	case IMAP_SEARCH_ON:
	case IMAP_SEARCH_SINCE:
	case IMAP_SEARCH_SENTBEFORE:
	case IMAP_SEARCH_SENTON:
	case IMAP_SEARCH_SENTSINCE:
		buf_printf(b, ":%lld", (long long)k->date);
		break;
	case IMAP_SEARCH_LARGER:
	case IMAP_SEARCH_SMALLER:
		buf_printf(b, ":%" PRIu64, k->number);
		break;
	case IMAP_SEARCH_MODSEQ:
		buf_printf(b, ":%" PRIu64, k->number);
		if (k->value.n > 0) {
			buf_append_cstr(b, "/");
			buf_append_slice(b, k->value);
		}
		break;
	default:
		break;
	}
}

/* Parses "a CMD args\r\n" into cmd; the arena is reset first. */
static int parse_line(const char *line, size_t n, struct imap_command *cmd,
		      const char **error)
{
	arena_reset(arena);
	*error = NULL;
	return imap_parse_command(slice_make(line, n), arena, cmd, error);
}

static bool slice_is(struct slice s, const char *cstr)
{
	return s.n == strlen(cstr) && (s.n == 0 || memcmp(s.p, cstr, s.n) == 0);
}

/* ---- Arena ---- */

static void test_arena(void)
{
	struct arena *a = arena_new(10000);
	void *p1 = arena_alloc(a, 1);
	void *p2 = arena_alloc(a, 3);
	CHECK(p1 != NULL && p2 != NULL && p1 != p2);
	CHECK((uintptr_t)p2 % sizeof(max_align_t) == 0 ||
	      (uintptr_t)p2 % 16 == 0);
	CHECK(arena_contains(a, p1, 1));
	CHECK(arena_contains(a, p2, 3));
	int local;
	CHECK(!arena_contains(a, &local, 1));
	/* Past the maximum: NULL, and the arena still works. */
	CHECK(arena_alloc(a, 20000) == NULL);
	CHECK(arena_alloc(a, SIZE_MAX) == NULL);
	CHECK(arena_alloc(a, SIZE_MAX - 3) == NULL);
	void *big = arena_alloc(a, 6000);
	CHECK(big != NULL);
	memset(big, 0xaa, 6000);
	CHECK(arena_contains(a, big, 6000));
	CHECK(arena_alloc(a, 5000) == NULL);
	arena_reset(a);
	CHECK(!arena_contains(a, big, 1) || arena_contains(a, big, 0));
	void *again = arena_alloc(a, 9000);
	CHECK(again != NULL);
	CHECK(arena_alloc(a, 0) != NULL);
	arena_free(&a);
	CHECK(a == NULL);
	arena_free(&a);
	/* Many small allocations cross chunks. */
	a = arena_new(1 << 20);
	for (int i = 0; i < 10000; i++) {
		uint8_t *p = arena_alloc(a, 17);
		CHECK(p != NULL);
		if (p == NULL)
			break;
		memset(p, i, 17);
	}
	arena_free(&a);
}

/* ---- Framing ---- */

static const struct imap_frame_limits default_limits = {1024, 100, 8};

/* Feeds the whole input at once, answering every CONTINUE. */
static enum imap_frame_result frame_all(struct slice in,
					const struct imap_frame_limits *lim,
					size_t *len, uint64_t *literal,
					bool *nonsync, unsigned *continues)
{
	struct imap_framer f;
	imap_framer_reset(&f);
	*continues = 0;
	for (;;) {
		enum imap_frame_result r =
			imap_frame(&f, in, lim, len, literal, nonsync);
		if (r != IMAP_FRAME_CONTINUE)
			return r;
		(*continues)++;
		if (*continues > 1000)
			return r;
	}
}

static void test_frame(void)
{
	static const struct imap_frame_limits small = {16, 10, 2};
	static const struct imap_frame_limits two = {1024, 10, 2};
	static const struct {
		const char *in;
		size_t n;
		const struct imap_frame_limits *lim;
		enum imap_frame_result r;
		size_t len;	    /* COMPLETE, TOO_BIG, TOO_MANY */
		unsigned continues; /* CONTINUEs answered on the way */
		uint64_t literal;   /* TOO_BIG, TOO_MANY */
		bool nonsync;
	} cases[] = {
		{T("a NOOP\r\n"), NULL, IMAP_FRAME_COMPLETE, 8, 0, 0, false},
		{T(""), NULL, IMAP_FRAME_NEED_MORE, 0, 0, 0, false},
		{T("a NOOP"), NULL, IMAP_FRAME_NEED_MORE, 0, 0, 0, false},
		{T("a NOOP\r"), NULL, IMAP_FRAME_NEED_MORE, 0, 0, 0, false},
		{T("a NOOP\r\nb NOOP\r\n"), NULL, IMAP_FRAME_COMPLETE, 8, 0, 0,
		 false},
		{T("\r\n"), NULL, IMAP_FRAME_COMPLETE, 2, 0, 0, false},
		/* Bare LF ends the frame; the parser then refuses it. */
		{T("a NOOP\n"), NULL, IMAP_FRAME_COMPLETE, 7, 0, 0, false},
		{T("a LOGIN {3}\r\nabc {4}\r\ndefg\r\n"), NULL,
		 IMAP_FRAME_COMPLETE, 28, 2, 0, false},
		{T("a LOGIN {3}\r\nabc {4}\r\ndef"), NULL, IMAP_FRAME_NEED_MORE,
		 0, 2, 0, false},
		{T("a LOGIN {3+}\r\nabc {4+}\r\ndefg\r\n"), NULL,
		 IMAP_FRAME_COMPLETE, 30, 0, 0, false},
		{T("a APPEND x ~{3}\r\na\0c\r\n"), NULL, IMAP_FRAME_COMPLETE,
		 22, 1, 0, false},
		{T("a APPEND x ~{3+}\r\na\0c\r\n"), NULL, IMAP_FRAME_COMPLETE,
		 23, 0, 0, false},
		{T("a X {0}\r\n\r\n"), NULL, IMAP_FRAME_COMPLETE, 11, 1, 0,
		 false},
		{T("a X {0+}\r\n\r\n"), NULL, IMAP_FRAME_COMPLETE, 12, 0, 0,
		 false},
		{T("a X {000}\r\n\r\n"), NULL, IMAP_FRAME_COMPLETE, 13, 1, 0,
		 false},
		/* Literal data that looks like line ends and literals. */
		{T("a X {7}\r\n{5}\r\n\r\n\r\n"), NULL, IMAP_FRAME_COMPLETE, 18,
		 1, 0, false},
		{T("a X {3}\r\n{5}\r\n"), NULL, IMAP_FRAME_COMPLETE, 14, 1, 0,
		 false},
		{T("a X {2}\r\n\r\n\r\n"), NULL, IMAP_FRAME_COMPLETE, 13, 1, 0,
		 false},
		/* Not literal announcements: the line ends there. */
		{T("a X {5-}\r\nabcde\r\n"), NULL, IMAP_FRAME_COMPLETE, 10, 0,
		 0, false},
		{T("a X { 5}\r\nabcde\r\n"), NULL, IMAP_FRAME_COMPLETE, 10, 0,
		 0, false},
		{T("a X {}\r\n"), NULL, IMAP_FRAME_COMPLETE, 8, 0, 0, false},
		{T("a X {+}\r\n"), NULL, IMAP_FRAME_COMPLETE, 9, 0, 0, false},
		{T("a X {5}\n"), NULL, IMAP_FRAME_COMPLETE, 8, 0, 0, false},
		{T("a X {5} \r\n"), NULL, IMAP_FRAME_COMPLETE, 10, 0, 0, false},
		{T("a X 5}\r\n"), NULL, IMAP_FRAME_COMPLETE, 8, 0, 0, false},
		{T("{5}\r\nabcde\r\n"), NULL, IMAP_FRAME_COMPLETE, 12, 1, 0,
		 false},
		/* Inside an unterminated quoted string it still counts: the
		 * client's data is never read as commands. */
		{T("a X \"{3}\r\nabc\r\n"), NULL, IMAP_FRAME_COMPLETE, 15, 1, 0,
		 false},
		/* Too big: not consumed; len is the announcing line. */
		{T("a X {11}\r\n"), &small, IMAP_FRAME_LITERAL_TOO_BIG, 10, 0,
		 11, false},
		{T("a X {11+}\r\nabcdefghijk\r\n"), &small,
		 IMAP_FRAME_LITERAL_TOO_BIG, 11, 0, 11, true},
		{T("a X {10}\r\n0123456789\r\n"), &small, IMAP_FRAME_COMPLETE,
		 22, 1, 0, false},
		{T("a {99999999999999999999999}\r\n"), NULL,
		 IMAP_FRAME_LITERAL_TOO_BIG, 29, 0, UINT64_MAX, false},
		{T("a {18446744073709551615+}\r\n"), NULL,
		 IMAP_FRAME_LITERAL_TOO_BIG, 27, 0, UINT64_MAX, true},
		{T("a {1}\r\nx{1}\r\ny{1+}\r\nz\r\n"), &two,
		 IMAP_FRAME_TOO_MANY_LITERALS, 20, 2, 1, true},
		{T("a {1}\r\nx{1}\r\ny{1}\r\nz\r\n"), &two,
		 IMAP_FRAME_TOO_MANY_LITERALS, 19, 2, 1, false},
		{T("a {1}\r\nx{1}\r\ny\r\n"), &two, IMAP_FRAME_COMPLETE, 16, 2,
		 0, false},
		/* Line length: 16 bytes with the CRLF are fine, 17 not. */
		{T("a NOOP 12345678\r\n"), &small, IMAP_FRAME_TOO_LONG, 0, 0, 0,
		 false},
		{T("a NOOP 1234567\r\n"), &small, IMAP_FRAME_COMPLETE, 16, 0, 0,
		 false},
		{T("a NOOP 1234567\r"), &small, IMAP_FRAME_NEED_MORE, 0, 0, 0,
		 false},
		{T("a NOOP 12345678\r"), &small, IMAP_FRAME_TOO_LONG, 0, 0, 0,
		 false},
		{T("a NOOP 12345678"), &small, IMAP_FRAME_NEED_MORE, 0, 0, 0,
		 false},
		{T("a NOOP 123456789"), &small, IMAP_FRAME_TOO_LONG, 0, 0, 0,
		 false},
		/* Literal data does not count; the lines around it do. */
		{T("a {10}\r\n0123456789 x\r\n"), &small, IMAP_FRAME_COMPLETE,
		 22, 1, 0, false},
		{T("a {1}\r\nx 1234567\r\n"), &small, IMAP_FRAME_TOO_LONG, 0, 1,
		 0, false},
		{T("a {1}\r\nx 123456\r\n"), &small, IMAP_FRAME_COMPLETE, 17, 1,
		 0, false},
		{T("a {1}\r\nx 12345\r\n"), &small, IMAP_FRAME_COMPLETE, 16, 1,
		 0, false},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		size_t len = 0;
		uint64_t literal = 0;
		bool nonsync = false;
		unsigned continues;
		enum imap_frame_result r =
			frame_all(slice_make(cases[i].in, cases[i].n),
				  cases[i].lim ? cases[i].lim : &default_limits,
				  &len, &literal, &nonsync, &continues);
		CHECK_CASE(r == cases[i].r, i, cases[i].in);
		CHECK_CASE(continues == cases[i].continues, i, cases[i].in);
		if (r == IMAP_FRAME_COMPLETE ||
		    r == IMAP_FRAME_TOO_MANY_LITERALS ||
		    r == IMAP_FRAME_LITERAL_TOO_BIG)
			CHECK_CASE(len == cases[i].len, i, cases[i].in);
		if (r == IMAP_FRAME_TOO_MANY_LITERALS ||
		    r == IMAP_FRAME_LITERAL_TOO_BIG) {
			CHECK_CASE(literal == cases[i].literal, i, cases[i].in);
			CHECK_CASE(nonsync == cases[i].nonsync, i, cases[i].in);
		}
	}
}

/* Frames the input fed in two pieces (the first k bytes, then the rest)
 * and byte by byte; every way must agree with feeding it whole. */
static void test_frame_splits(void)
{
	static const struct {
		const char *in;
		size_t n;
	} cases[] = {
		{T("a LOGIN {3}\r\nabc {4}\r\ndefg\r\nb NOOP\r\n")},
		{T("a LOGIN {3+}\r\nabc {4+}\r\ndefg\r\n")},
		{T("a APPEND INBOX (\\Seen) ~{5}\r\nab\0\r\n {0}\r\n\r\n")},
		{T("a X {7}\r\n{5}\r\n\r\n {1+}\r\n\n\r\n")},
		{T("a SEARCH TEXT \"x{3}\" {2}\r\n{}\r\n")},
		{T("a NOOP\r\n")},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct slice whole = slice_make(cases[i].in, cases[i].n);
		size_t want_len = 0;
		uint64_t literal;
		bool nonsync;
		unsigned want_continues;
		enum imap_frame_result want =
			frame_all(whole, &default_limits, &want_len, &literal,
				  &nonsync, &want_continues);
		CHECK_CASE(want == IMAP_FRAME_COMPLETE, i, cases[i].in);
		for (size_t k = 0; k <= whole.n; k++) {
			struct imap_framer f;
			imap_framer_reset(&f);
			unsigned continues = 0;
			size_t len = 0;
			enum imap_frame_result r;
			struct slice part = slice_make(whole.p, k);
			while ((r = imap_frame(&f, part, &default_limits, &len,
					       &literal, &nonsync)) ==
			       IMAP_FRAME_CONTINUE)
				continues++;
			if (r != IMAP_FRAME_COMPLETE) {
				CHECK_CASE(r == IMAP_FRAME_NEED_MORE, i,
					   cases[i].in);
				CHECK_CASE(f.pos <= k, i, cases[i].in);
				while ((r = imap_frame(&f, whole,
						       &default_limits, &len,
						       &literal, &nonsync)) ==
				       IMAP_FRAME_CONTINUE)
					continues++;
			}
			CHECK_CASE(r == IMAP_FRAME_COMPLETE, i, cases[i].in);
			CHECK_CASE(len == want_len, i, cases[i].in);
			CHECK_CASE(continues == want_continues, i, cases[i].in);
		}
		/* Byte by byte: a CONTINUE comes exactly when the CRLF of a
		 * synchronizing announcement arrives. */
		struct imap_framer f;
		imap_framer_reset(&f);
		unsigned continues = 0;
		size_t len = 0;
		enum imap_frame_result r = IMAP_FRAME_NEED_MORE;
		for (size_t k = 0; k <= whole.n; k++) {
			struct slice part = slice_make(whole.p, k);
			while ((r = imap_frame(&f, part, &default_limits, &len,
					       &literal, &nonsync)) ==
			       IMAP_FRAME_CONTINUE) {
				continues++;
				CHECK_CASE(k >= 2 && part.p[k - 1] == '\n' &&
						   part.p[k - 3] == '}' &&
						   part.p[k - 4] != '+',
					   i, cases[i].in);
			}
			if (r == IMAP_FRAME_COMPLETE)
				break;
		}
		CHECK_CASE(r == IMAP_FRAME_COMPLETE && len == want_len, i,
			   cases[i].in);
		CHECK_CASE(continues == want_continues, i, cases[i].in);
	}
}

/* A sequence of commands framed one after the other, as a session does. */
static void test_frame_session(void)
{
	const char in[] = "a1 NOOP\r\na2 LOGIN {4}\r\nuser {4+}\r\npass\r\n"
			  "a3 SELECT INBOX\r\na4 X {20}\r\n";
	static const struct imap_frame_limits lim = {1024, 10, 8};
	struct slice s = slice_make(in, sizeof(in) - 1);
	struct imap_framer f;
	size_t len;
	uint64_t literal;
	bool nonsync;
	imap_framer_reset(&f);
	CHECK(imap_frame(&f, s, &lim, &len, &literal, &nonsync) ==
	      IMAP_FRAME_COMPLETE);
	CHECK(len == 9);
	s = slice_make(s.p + len, s.n - len);
	imap_framer_reset(&f);
	CHECK(imap_frame(&f, s, &lim, &len, &literal, &nonsync) ==
	      IMAP_FRAME_CONTINUE);
	CHECK(f.continuation_sent && !f.last_literal_nonsync);
	CHECK(imap_frame(&f, s, &lim, &len, &literal, &nonsync) ==
	      IMAP_FRAME_COMPLETE);
	CHECK(f.last_literal_nonsync && f.literals == 2);
	CHECK(len == 31);
	s = slice_make(s.p + len, s.n - len);
	imap_framer_reset(&f);
	CHECK(imap_frame(&f, s, &lim, &len, &literal, &nonsync) ==
	      IMAP_FRAME_COMPLETE);
	CHECK(len == 17);
	s = slice_make(s.p + len, s.n - len);
	imap_framer_reset(&f);
	CHECK(imap_frame(&f, s, &lim, &len, &literal, &nonsync) ==
	      IMAP_FRAME_LITERAL_TOO_BIG);
	CHECK(literal == 20 && !nonsync && len == s.n);
}

/* ---- Commands ---- */

static void test_commands(void)
{
	static const struct {
		const char *in;
		size_t n;
		bool ok;
		const char *tag;  /* NULL: none could be read */
		const char *name; /* ok: the command name */
		bool uid;
		const char *args; /* ok: rendered; else the error's start */
	} cases[] = {
		{T("a NOOP\r\n"), true, "a", "NOOP", false, ""},
		{T("A001 capability\r\n"), true, "A001", "capability", false,
		 ""},
		{T("a LOGIN user pass\r\n"), true, "a", "LOGIN", false,
		 "user pass"},
		{T("a LOGIN \"us er\" \"p\\\"a\\\\ss\"\r\n"), true, "a",
		 "LOGIN", false, "\"us er\" \"p\"a\\ss\""},
		{T("a LOGIN \"\" \"\"\r\n"), true, "a", "LOGIN", false,
		 "\"\" \"\""},
		{T("a LOGIN {4}\r\nuser {4+}\r\npass\r\n"), true, "a", "LOGIN",
		 false, "{4}user {4}pass"},
		{T("a LOGIN {0}\r\n {0}\r\n\r\n"), true, "a", "LOGIN", false,
		 "{0} {0}"},
		{T("a APPEND INBOX (\\Seen \\Draft) \"01-Feb-1994 21:57:44 "
		   "+0100\" {5}\r\nhello\r\n"),
		 true, "a", "APPEND", false,
		 "INBOX (\\Seen \\Draft) \"01-Feb-1994 21:57:44 +0100\" "
		 "{5}hello"},
		{T("a APPEND INBOX ~{3}\r\na\0b\r\n"), true, "a", "APPEND",
		 false, "INBOX ~{3}a"},
		{T("a APPEND INBOX {3}\r\na\0b\r\n"), false, "a", NULL, false,
		 "NUL in a literal"},
		{T("a UID FETCH 1:* (FLAGS)\r\n"), true, "a", "FETCH", true,
		 "1:* (FLAGS)"},
		{T("a uid store 1 +FLAGS (\\Seen)\r\n"), true, "a", "store",
		 true, "1 +FLAGS (\\Seen)"},
		{T("a UID\r\n"), false, "a", NULL, false, "Missing command"},
		{T("a UID UID FETCH 1 FLAGS\r\n"), true, "a", "UID", true,
		 "FETCH 1 FLAGS"},
		{T("a FETCH 1 BODY.PEEK[HEADER.FIELDS (FROM \"TO\")]<0.100>\r\n"),
		 true, "a", "FETCH", false,
		 "1 BODY.PEEK[HEADER.FIELDS (FROM \"TO\")]<0.100>"},
		{T("a FETCH 1 (BODY[HEADER.FIELDS (A B)] FLAGS BINARY[1.2] "
		   "BODY[1.2.MIME])\r\n"),
		 true, "a", "FETCH", false,
		 "1 (BODY[HEADER.FIELDS (A B)] FLAGS BINARY[1.2] "
		 "BODY[1.2.MIME])"},
		{T("a FETCH 1 body[header.fields (\"X]Y\")]\r\n"), true, "a",
		 "FETCH", false, "1 body[header.fields (\"X]Y\")]"},
		{T("a FETCH 1 BODY[HEADER.FIELDS (A\r\n"), false, "a", NULL,
		 false, "Unterminated section"},
		{T("a FETCH 1 BODY[HEADER.FIELDS {1}\r\nA)]\r\n"), false, "a",
		 NULL, false, "Literals are not allowed"},
		{T("a FETCH 1 BODY[\"a\r\n"), false, "a", NULL, false,
		 "Unterminated quoted"},
		/* Only FETCH items open a section: a bracket in other atoms
		 * is an atom character. */
		{T("a SELECT foo[bar\r\n"), true, "a", "SELECT", false,
		 "foo[bar"},
		{T("a SELECT [a b]\r\n"), true, "a", "SELECT", false, "[a b]"},
		{T("a LIST \"\" %\r\n"), true, "a", "LIST", false, "\"\" %"},
		{T("a LIST \"\" INBOX.*\r\n"), true, "a", "LIST", false,
		 "\"\" INBOX.*"},
		{T("a STATUS x (MESSAGES UIDNEXT)\r\n"), true, "a", "STATUS",
		 false, "x (MESSAGES UIDNEXT)"},
		{T("a X NIL nil \"NIL\" NILS\r\n"), true, "a", "X", false,
		 "NIL NIL \"NIL\" NILS"},
		{T("a X ()\r\n"), true, "a", "X", false, "()"},
		{T("a X (())\r\n"), true, "a", "X", false, "(())"},
		{T("a X (a (b c) \"d\" {1}\r\ne)\r\n"), true, "a", "X", false,
		 "(a (b c) \"d\" {1}e)"},
		{T("a X \\Seen \\* ~a\r\n"), true, "a", "X", false,
		 "\\Seen \\* ~a"},
		{T("a X a]b\r\n"), true, "a", "X", false, "a]b"},
		{T("a SEARCH SUBJECT \"caf\xc3\xa9\"\r\n"), true, "a", "SEARCH",
		 false, "SUBJECT \"caf\xc3\xa9\""},
		/* Nesting: 16 levels are fine, 17 are not. */
		{T("a X ((((((((((((((((x))))))))))))))))\r\n"), true, "a", "X",
		 false, "((((((((((((((((x))))))))))))))))"},
		{T("a X (((((((((((((((((x)))))))))))))))))\r\n"), false, "a",
		 NULL, false, "Lists nested too deeply"},
		/* Quoted strings. */
		{T("a X \"a\rb\"\r\n"), false, "a", NULL, false,
		 "Unterminated quoted"},
		{T("a X \"a\nb\"\r\n"), false, "a", NULL, false,
		 "Unterminated quoted"},
		{T("a X \"a\0b\"\r\n"), false, "a", NULL, false,
		 "NUL in a quoted"},
		{T("a X \"a\\nb\"\r\n"), false, "a", NULL, false,
		 "Invalid escape"},
		{T("a X \"a\\\"\r\n"), false, "a", NULL, false, "Unterminated"},
		{T("a X \"abc\r\n"), false, "a", NULL, false, "Unterminated"},
		{T("a X \"\xe9t\xe9\"\r\n"), false, "a", NULL, false,
		 "8-bit text in a quoted string"},
		{T("a X \"\xed\xa0\x80\"\r\n"), false, "a", NULL, false,
		 "8-bit text in a quoted string"},
		{T("a X caf\xc3\xa9\r\n"), false, "a", NULL, false,
		 "8-bit text must be sent"},
		{T("a X \"a\"b\r\n"), false, "a", NULL, false, "Invalid char"},
		/* Spacing and structure. */
		{T("a NOOP \r\n"), false, "a", NULL, false, "Extra space"},
		{T("a X a  b\r\n"), false, "a", NULL, false, "Extra space"},
		{T("a X ( a)\r\n"), false, "a", NULL, false, "Extra space"},
		{T("a X (a )\r\n"), false, "a", NULL, false, "Extra space"},
		{T("a X (a\r\n"), false, "a", NULL, false, "Missing ')'"},
		{T("a X a)\r\n"), false, "a", NULL, false, "Unexpected ')'"},
		{T("a X )\r\n"), false, "a", NULL, false, "Unexpected ')'"},
		{T("a X (a)(b)\r\n"), false, "a", NULL, false, "Invalid char"},
		{T("a X a\\b\r\n"), false, "a", NULL, false, "Invalid char"},
		{T("a X \\\r\n"), false, "a", NULL, false, "Missing CRLF"},
		{T("a X a\0\r\n"), false, "a", NULL, false, "NUL in a command"},
		{T("a X {3}x\r\nabc\r\n"), false, "a", NULL, false,
		 "A literal must end the line"},
		{T("a X {3} \r\nabc\r\n"), false, "a", NULL, false,
		 "A literal must end the line"},
		{T("a X {3}\r\nab"), false, "a", NULL, false,
		 "Literal data missing"},
		{T("a X {3-}\r\nabc\r\n"), false, "a", NULL, false,
		 "Invalid literal"},
		{T("a X {}\r\n"), false, "a", NULL, false,
		 "Invalid literal size"},
		{T("a X {99999999999999999999}\r\n"), false, "a", NULL, false,
		 "Invalid literal size"},
		{T("a X {3}\r\nabcd\r\n"), false, "a", NULL, false,
		 "Invalid char"},
		{T("a X {3}\r\nabc\r\n"), true, "a", "X", false, "{3}abc"},
		{T("a X ab{3}\r\nabc\r\n"), false, "a", NULL, false,
		 "A literal must end"},
		{T("a X \"abc"), false, "a", NULL, false,
		 "Unterminated quoted"},
		{T("a X ("), false, "a", NULL, false, "Missing argument"},
		{T("a X (a "), false, "a", NULL, false, "Extra space"},
		{T("a FETCH 1 BODY[\x01]\r\n"), false, "a", NULL, false,
		 "Invalid character in a section"},
		{T("a FETCH 1 BODY[[]]\r\n"), false, "a", NULL, false,
		 "Invalid character in a section"},
		{T("a FETCH 1 BODY[\xc3\xa9]\r\n"), false, "a", NULL, false,
		 "Invalid character in a section"},
		{T("a NOOP\n"), false, "a", NULL, false,
		 "Lines must end with CRLF"},
		{T("a NOOP\r"), false, "a", NULL, false, "CR without LF"},
		{T("a NOOP\rx\r\n"), false, "a", NULL, false, "CR without LF"},
		{T("a NOOP"), false, "a", NULL, false, "Missing CRLF"},
		{T("a NOOP\r\nb NOOP\r\n"), false, "a", NULL, false,
		 "Data after the end"},
		/* Tags: ASTRING-CHAR except '+'. */
		{T("\r\n"), false, NULL, NULL, false, "Empty command"},
		{T(" NOOP\r\n"), false, NULL, NULL, false, "Invalid tag"},
		{T("+ NOOP\r\n"), false, NULL, NULL, false, "Invalid tag"},
		{T("a+b NOOP\r\n"), false, NULL, NULL, false, "Invalid tag"},
		{T("* NOOP\r\n"), false, NULL, NULL, false, "Invalid tag"},
		{T("a%b NOOP\r\n"), false, NULL, NULL, false, "Invalid tag"},
		{T("a(b NOOP\r\n"), false, NULL, NULL, false, "Invalid tag"},
		{T("a)b NOOP\r\n"), false, NULL, NULL, false, "Invalid tag"},
		{T("a{b NOOP\r\n"), false, NULL, NULL, false, "Invalid tag"},
		{T("a\"b NOOP\r\n"), false, NULL, NULL, false, "Invalid tag"},
		{T("a\\b NOOP\r\n"), false, NULL, NULL, false, "Invalid tag"},
		{T("a\x01 NOOP\r\n"), false, NULL, NULL, false, "Invalid tag"},
		{T("\xc3\xa9 NOOP\r\n"), false, NULL, NULL, false,
		 "Invalid tag"},
		{T("a]b.c!#$&'-_=~`|^;:,<>?/@ NOOP\r\n"), true,
		 "a]b.c!#$&'-_=~`|^;:,<>?/@", "NOOP", false, ""},
		{T("a\r\n"), false, "a", NULL, false, "Missing command"},
		{T("a \r\n"), false, "a", NULL, false, "Missing command"},
		{T("a  NOOP\r\n"), false, "a", NULL, false, "Missing command"},
		{T("a (NOOP)\r\n"), false, "a", NULL, false, "Missing command"},
		{T("a NOOP(x)\r\n"), false, "a", NULL, false, "Invalid char"},
		{T("1234567890123456789012345678901234567890123456789012345678"
		   "901234 NOOP\r\n"),
		 true,
		 "1234567890123456789012345678901234567890123456789012345678"
		 "901234",
		 "NOOP", false, ""},
		{T("1234567890123456789012345678901234567890123456789012345678"
		   "9012345 NOOP\r\n"),
		 false, NULL, NULL, false, "Tag too long"},
	};
	struct buf b;
	buf_init(&b, 1 << 16);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct imap_command cmd;
		const char *error;
		int r = parse_line(cases[i].in, cases[i].n, &cmd, &error);
		CHECK_CASE((r == 0) == cases[i].ok, i, cases[i].in);
		if (cases[i].tag == NULL)
			CHECK_CASE(cmd.tag.n == 0, i, cases[i].in);
		else
			CHECK_CASE(slice_is(cmd.tag, cases[i].tag), i,
				   cases[i].in);
		if (r == 0 && cases[i].ok) {
			CHECK_CASE(slice_is(cmd.name, cases[i].name), i,
				   cases[i].in);
			CHECK_CASE(cmd.uid == cases[i].uid, i, cases[i].in);
			buf_reset(&b);
			render_args(&b, cmd.args, cmd.arg_count);
			/* Literal8 bytes hold a NUL: compare its prefix. */
			CHECK_CASE(b.n >= strlen(cases[i].args) &&
					   (b.n == 0 ||
					    memcmp(b.p, cases[i].args,
						   strlen(cases[i].args)) == 0),
				   i, cases[i].in);
			if (strchr(cases[i].in, '~') == NULL)
				CHECK_CASE(
					slice_is(buf_slice(&b), cases[i].args),
					i, cases[i].in);
		} else if (r < 0 && !cases[i].ok) {
			CHECK_CASE(error != NULL &&
					   strncmp(error, cases[i].args,
						   strlen(cases[i].args)) == 0,
				   i, cases[i].in);
			if (error != NULL &&
			    strncmp(error, cases[i].args,
				    strlen(cases[i].args)) != 0)
				fprintf(stderr, "  error was: %s\n", error);
		}
	}
	buf_free(&b);
}

/* Results point into the command or into the arena. */
static void test_command_memory(void)
{
	static const char line[] = "a X \"es\\\\c\" \"plain\" {3}\r\nlit atom "
				   "(\"in\\\"list\")\r\n";
	struct imap_command cmd;
	const char *error;
	CHECK(parse_line(line, sizeof(line) - 1, &cmd, &error) == 0);
	CHECK(cmd.arg_count == 5);
	if (cmd.arg_count != 5)
		return;
	const uint8_t *lo = (const uint8_t *)line, *hi = lo + sizeof(line);
	CHECK(cmd.args[0].text.p < lo || cmd.args[0].text.p >= hi);
	CHECK(arena_contains(arena, cmd.args[0].text.p, cmd.args[0].text.n));
	CHECK(slice_is(cmd.args[0].text, "es\\c"));
	CHECK(cmd.args[1].text.p > lo && cmd.args[1].text.p < hi);
	CHECK(cmd.args[2].text.p > lo && cmd.args[2].text.p < hi);
	CHECK(arena_contains(arena, cmd.args, 5 * sizeof(*cmd.args)));
	CHECK(slice_is(cmd.args[4].list[0].text, "in\"list"));
	CHECK(slice_is(cmd.args[4].text, "(\"in\\\"list\")"));

	/* A small arena: the command is refused, not truncated. */
	struct arena *tiny = arena_new(64);
	const char many[] = "a X a b c d e f g h i j k l\r\n";
	CHECK(imap_parse_command(slice_make(many, sizeof(many) - 1), tiny, &cmd,
				 &error) < 0);
	CHECK(error != NULL && strcmp(error, "Command too large") == 0);
	arena_free(&tiny);

	/* IMAP_MAX_ARGS: one more argument is refused. */
	struct buf b;
	buf_init(&b, 1 << 22);
	buf_append_cstr(&b, "a X");
	for (size_t k = 0; k < IMAP_MAX_ARGS; k++)
		buf_append_cstr(&b, " 1");
	buf_append_cstr(&b, "\r\n");
	struct arena *big = arena_new(64 << 20);
	CHECK(imap_parse_command(buf_slice(&b), big, &cmd, &error) == 0);
	CHECK(cmd.arg_count == IMAP_MAX_ARGS);
	arena_reset(big);
	b.n -= 2;
	buf_append_cstr(&b, " (1)\r\n");
	CHECK(imap_parse_command(buf_slice(&b), big, &cmd, &error) < 0);
	CHECK(error != NULL && strcmp(error, "Too many arguments") == 0);
	arena_free(&big);
	buf_free(&b);
}

/* Every helper with every arena size: a refusal, never a crash, and
 * success once the arena is big enough. */
static void test_arena_exhaustion(void)
{
	static const char *const lines[] = {
		"a FETCH 1:3,5 (FLAGS BODY.PEEK[1.2.HEADER.FIELDS (\"A\\\\B\" "
		"C D)]<0.10> BINARY[1]) (CHANGEDSINCE 5)\r\n",
		"a FETCH 1 FULL\r\n",
		"a SEARCH RETURN (MIN) CHARSET UTF-8 OR (FROM \"x\\\\y\" 1:5) "
		"NOT UID 3,4 HEADER a b\r\n",
		"a STORE 1 +FLAGS (a b c \\Seen)\r\n",
		"a SORT (REVERSE DATE SUBJECT) UTF-8 ALL\r\n",
	};
	for (size_t i = 0; i < ARRAY_SIZE(lines); i++) {
		bool done = false;
		for (size_t size = 0; size <= 8192 && !done; size += 8) {
			struct arena *a = arena_new(size);
			struct imap_command cmd;
			const char *error = NULL;
			int r = imap_parse_command(slice_cstr(lines[i]), a,
						   &cmd, &error);
			if (r == 0) {
				const struct imap_arg *args = cmd.args;
				size_t n = cmd.arg_count;
				if (slice_eq_ci(cmd.name, "FETCH")) {
					struct imap_fetch f;
					struct imap_seqset set;
					r = imap_parse_seqset(args[0].text, 9,
							      a, &set);
					if (r == 0)
						r = imap_parse_fetch(
							&args[1],
							n > 2 ? &args[2] : NULL,
							a, &f, &error);
				} else if (slice_eq_ci(cmd.name, "SEARCH")) {
					struct imap_search sr;
					r = imap_parse_search(args, n, 9, 9, a,
							      &sr, &error);
				} else if (slice_eq_ci(cmd.name, "STORE")) {
					struct imap_flags fl;
					r = imap_parse_flags(&args[2], a, &fl,
							     &error);
				} else {
					struct imap_sort_criterion *c;
					size_t count;
					struct imap_search sr;
					r = imap_parse_sort_criteria(
						&args[0], a, &c, &count,
						&error);
					if (r == 0)
						r = imap_parse_search(
							args + 2, n - 2, 9, 9,
							a, &sr, &error);
				}
			}
			if (r < 0)
				CHECK_CASE(error == NULL ||
						   strcmp(error, "Command too "
								 "large") == 0,
					   i, lines[i]);
			done = r == 0;
			arena_free(&a);
		}
		CHECK_CASE(done, i, lines[i]);
	}
}

/* ---- Argument helpers ---- */

static void test_arg_helpers(void)
{
	struct imap_command cmd;
	const char *error;
	static const char line[] = "a X atom \"quoted\" {3}\r\nlit NIL % a]b "
				   "\\Flag (l) ~{2}\r\nxy 42 0042 "
				   "18446744073709551615 18446744073709551616 "
				   "-1 1x\r\n";
	CHECK(parse_line(line, sizeof(line) - 1, &cmd, &error) == 0);
	CHECK(cmd.arg_count == 15);
	if (cmd.arg_count != 15)
		return;
	const struct imap_arg *a = cmd.args;
	struct slice s;
	bool nil;
	uint64_t v;
	CHECK(imap_arg_astring(&a[0], &s) && slice_is(s, "atom"));
	CHECK(imap_arg_astring(&a[1], &s) && slice_is(s, "quoted"));
	CHECK(imap_arg_astring(&a[2], &s) && slice_is(s, "lit"));
	CHECK(imap_arg_astring(&a[3], &s) && slice_is(s, "NIL"));
	CHECK(!imap_arg_astring(&a[4], &s)); /* % is a list wildcard */
	CHECK(imap_arg_astring(&a[5], &s) && slice_is(s, "a]b"));
	CHECK(!imap_arg_astring(&a[6], &s));
	CHECK(!imap_arg_astring(&a[7], &s));
	CHECK(!imap_arg_astring(&a[8], &s)); /* literal8 */
	CHECK(!imap_arg_astring(NULL, &s));

	CHECK(!imap_arg_nstring(&a[0], &s, &nil));
	CHECK(imap_arg_nstring(&a[1], &s, &nil) && !nil &&
	      slice_is(s, "quoted"));
	CHECK(imap_arg_nstring(&a[2], &s, &nil) && !nil && slice_is(s, "lit"));
	CHECK(imap_arg_nstring(&a[3], &s, &nil) && nil && s.n == 0);
	CHECK(!imap_arg_nstring(&a[7], &s, &nil));
	CHECK(!imap_arg_nstring(&a[8], &s, &nil));

	CHECK(imap_arg_number(&a[9], UINT32_MAX, &v) && v == 42);
	CHECK(imap_arg_number(&a[10], UINT32_MAX, &v) && v == 42);
	CHECK(!imap_arg_number(&a[9], 41, &v));
	CHECK(imap_arg_number(&a[9], 42, &v));

	CHECK(imap_arg_number(&a[11], UINT64_MAX, &v) && v == UINT64_MAX);
	CHECK(!imap_arg_number(&a[11], INT64_MAX, &v));
	CHECK(!imap_arg_number(&a[12], UINT64_MAX, &v));
	CHECK(!imap_arg_number(&a[13], UINT64_MAX, &v));
	CHECK(!imap_arg_number(&a[14], UINT64_MAX, &v));
	CHECK(!imap_arg_number(&a[1], UINT64_MAX, &v));
	CHECK(!imap_arg_number(NULL, UINT64_MAX, &v));

	/* Small maxima: a single digit above max is refused too. */
	static const struct {
		const char *number;
		uint64_t max;
		bool ok;
	} small[] = {
		{"7", 5, false},     {"5", 5, true},   {"0", 0, true},
		{"1", 0, false},     {"10", 9, false}, {"10", 10, true},
		{"9", 8, false},     {"00", 0, true},  {"255", 255, true},
		{"256", 255, false},
	};
	for (size_t i = 0; i < ARRAY_SIZE(small); i++) {
		char text[64];
		int n = snprintf(text, sizeof(text), "a X %s\r\n",
				 small[i].number);
		CHECK(parse_line(text, (size_t)n, &cmd, &error) == 0);
		CHECK_CASE(imap_arg_number(&cmd.args[0], small[i].max, &v) ==
				   small[i].ok,
			   i, small[i].number);
	}
}

/* ---- Sequence sets ---- */

static void test_seqset(void)
{
	static const struct {
		const char *in;
		uint32_t star;
		const char *out; /* NULL: refused */
	} cases[] = {
		{"1", 10, "1"},
		{"1:5", 10, "1:5"},
		{"5:1", 10, "1:5"},
		{"1,3:5,7:*", 10, "1,3:5,7:10"},
		{"*", 10, "10"},
		{"*:3", 10, "3:10"},
		{"*:20", 10, "10:20"},
		{"1:*", 0, "0:1"},
		{"*", 0, "0"},
		{"3,1,2", 10, "1:3"},
		{"1:3,2:6,10,8,9", 100, "1:6,8:10"},
		{"4294967295", 1, "4294967295"},
		{"1:4294967295,5", 1, "1:4294967295"},
		{"4294967294,4294967295", 1, "4294967294:4294967295"},
		{"$", 10, "$"},
		{"4294967296", 1, NULL},
		{"99999999999999999999", 1, NULL},
		{"0", 10, NULL},
		{"0:5", 10, NULL},
		{"01", 10, NULL},
		{"", 10, NULL},
		{",", 10, NULL},
		{"1,", 10, NULL},
		{",1", 10, NULL},
		{"1:", 10, NULL},
		{":1", 10, NULL},
		{"1:2:3", 10, NULL},
		{"1::2", 10, NULL},
		{"1,,2", 10, NULL},
		{"$,1", 10, NULL},
		{"1,$", 10, NULL},
		{"$$", 10, NULL},
		{"-1", 10, NULL},
		{"+1", 10, NULL},
		{"1 ", 10, NULL},
		{"a", 10, NULL},
		{"**", 10, NULL},
	};
	struct buf b;
	buf_init(&b, 4096);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct imap_seqset set;
		arena_reset(arena);
		int r = imap_parse_seqset(slice_cstr(cases[i].in),
					  cases[i].star, arena, &set);
		CHECK_CASE((r == 0) == (cases[i].out != NULL), i, cases[i].in);
		if (r == 0 && cases[i].out != NULL) {
			buf_reset(&b);
			render_set(&b, &set);
			CHECK_CASE(slice_is(buf_slice(&b), cases[i].out), i,
				   cases[i].in);
		}
	}

	struct imap_seqset set;
	arena_reset(arena);
	CHECK(imap_parse_seqset(slice_cstr("2,4:6,9,4294967295"), 9, arena,
				&set) == 0);
	static const struct {
		uint32_t n;
		bool in;
	} members[] = {{0, false}, {1, false},	{2, true},	    {3, false},
		       {4, true},  {5, true},	{6, true},	    {7, false},
		       {9, true},  {10, false}, {4294967295u, true}};
	for (size_t i = 0; i < ARRAY_SIZE(members); i++)
		CHECK_CASE(imap_seqset_contains(&set, members[i].n) ==
				   members[i].in,
			   i, "contains");
	struct imap_seqset empty = {NULL, 0, false};
	CHECK(!imap_seqset_contains(&empty, 1));

	/* IMAP_MAX_SEQUENCE_RANGES ranges pass, one more does not. */
	buf_reset(&b);
	b.max = 1 << 20;
	for (size_t k = 0; k < IMAP_MAX_SEQUENCE_RANGES; k++)
		buf_printf(&b, "%s%zu", k ? "," : "", 2 * k + 1);
	arena_reset(arena);
	CHECK(imap_parse_seqset(buf_slice(&b), 1, arena, &set) == 0);
	CHECK(set.count == IMAP_MAX_SEQUENCE_RANGES);
	CHECK(imap_seqset_contains(&set, 19999) &&
	      !imap_seqset_contains(&set, 19998));
	buf_append_cstr(&b, ",1");
	arena_reset(arena);
	CHECK(imap_parse_seqset(buf_slice(&b), 1, arena, &set) < 0);
	buf_free(&b);

	/* Arena exhaustion is a refusal. */
	struct arena *tiny = arena_new(8);
	CHECK(imap_parse_seqset(slice_cstr("1,2,3"), 1, tiny, &set) < 0);
	arena_free(&tiny);
}

/* ---- Flags ---- */

static void test_flags(void)
{
	static const struct {
		const char *arg; /* one argument as sent */
		int r;
		unsigned bits;
		const char *keywords; /* space-separated */
		const char *error;
	} cases[] = {
		{"(\\Seen)", 0, IMAP_FLAG_SEEN, "", NULL},
		{"\\Seen", 0, IMAP_FLAG_SEEN, "", NULL},
		{"()", 0, 0, "", NULL},
		{"(\\seen \\ANSWERED \\Flagged \\Deleted \\Draft)", 0,
		 IMAP_FLAG_SEEN | IMAP_FLAG_ANSWERED | IMAP_FLAG_FLAGGED |
			 IMAP_FLAG_DELETED | IMAP_FLAG_DRAFT,
		 "", NULL},
		{"($Label1 \\Seen $Forwarded)", 0, IMAP_FLAG_SEEN,
		 "$Forwarded $Label1", NULL},
		{"(a A $x a)", 0, 0, "$x A", NULL},
		{"(b a B c A)", 0, 0, "A B c", NULL},
		{"$Junk", 0, 0, "$Junk", NULL},
		{"(NIL)", 0, 0, "NIL", NULL},
		{"(a.b-c_d+e'f)", 0, 0, "a.b-c_d+e'f", NULL},
		{"(\\Recent)", -1, 0, NULL, "\\Recent cannot be set"},
		{"\\Recent", -1, 0, NULL, "\\Recent cannot be set"},
		{"(\\Xyz)", -1, 0, NULL, "Unknown system flag"},
		{"(\\*)", -1, 0, NULL, "Unknown system flag"},
		{"(\\Seenx)", -1, 0, NULL, "Unknown system flag"},
		{"(a]b)", -1, 0, NULL, "Invalid keyword"},
		{"(a%)", -1, 0, NULL, "Invalid keyword"},
		{"(a*)", -1, 0, NULL, "Invalid keyword"},
		{"(\"quoted\")", -1, 0, NULL, "Invalid flag"},
		{"((a))", -1, 0, NULL, "Invalid flag"},
		{"\"x\"", -1, 0, NULL, "Flags must be"},
		{"{5}\r\n\\Seen", -1, 0, NULL, "Flags must be"},
	};
	char line[256];
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int n = snprintf(line, sizeof(line), "a STORE 1 FLAGS %s\r\n",
				 cases[i].arg);
		CHECK(n > 0 && (size_t)n < sizeof(line));
		struct imap_command cmd;
		const char *error = NULL;
		int r = parse_line(line, (size_t)n, &cmd, &error);
		CHECK_CASE(r == 0 && cmd.arg_count == 3, i, cases[i].arg);
		if (r != 0 || cmd.arg_count != 3)
			continue;
		struct imap_flags flags;
		error = NULL;
		r = imap_parse_flags(&cmd.args[2], arena, &flags, &error);
		CHECK_CASE(r == cases[i].r, i, cases[i].arg);
		if (r == 0 && cases[i].r == 0) {
			CHECK_CASE(flags.system_flags == cases[i].bits, i,
				   cases[i].arg);
			struct buf b;
			buf_init(&b, 1024);
			for (size_t k = 0; k < flags.keyword_count; k++) {
				if (k > 0)
					buf_append_cstr(&b, " ");
				buf_append_slice(&b, flags.keywords[k]);
			}
			CHECK_CASE(slice_is(buf_slice(&b), cases[i].keywords),
				   i, cases[i].arg);
			buf_free(&b);
		} else if (r < 0 && cases[i].error != NULL) {
			CHECK_CASE(error != NULL &&
					   strncmp(error, cases[i].error,
						   strlen(cases[i].error)) == 0,
				   i, cases[i].arg);
		}
	}
	struct imap_flags flags;
	const char *error;
	CHECK(imap_parse_flags(NULL, arena, &flags, &error) < 0);

	/* Thirty thousand keywords, each twice: fast, and deduplicated. */
	struct buf b;
	buf_init(&b, 1 << 20);
	buf_append_cstr(&b, "a STORE 1 FLAGS (");
	for (int k = 0; k < 60000; k++)
		buf_printf(&b, "%sk%d", k ? " " : "", k % 30000);
	buf_append_cstr(&b, ")\r\n");
	struct imap_command cmd;
	CHECK(parse_line((const char *)b.p, b.n, &cmd, &error) == 0);
	CHECK(imap_parse_flags(&cmd.args[2], arena, &flags, &error) == 0);
	CHECK(flags.keyword_count == 30000);
	buf_free(&b);
}

/* ---- Dates ---- */

static void test_dates(void)
{
	static const struct {
		const char *in;
		bool ok;
		long long t;
	} dates[] = {
		{"1-Feb-1994", true, 760060800},
		{"01-Feb-1994", true, 760060800},
		{"1-feb-1994", true, 760060800},
		{"1-FEB-1994", true, 760060800},
		{"29-Feb-2024", true, 1709164800},
		{"1-Jan-1970", true, 0},
		{"31-Dec-1969", true, -86400},
		{"1-Mar-2000", true, 951868800},
		{"29-Feb-2000", true, 951782400},
		{"1-Jan-0001", true, -62135596800},
		{"29-Feb-2023", false, 0},
		{"29-Feb-1900", false, 0},
		{"31-Apr-2024", false, 0},
		{"32-Jan-2024", false, 0},
		{"0-Jan-2024", false, 0},
		{"00-Jan-2024", false, 0},
		{"1-Jan-0000", false, 0},
		{"001-Jan-2024", false, 0},
		{"1-Jan-24", false, 0},
		{"1-Jan-20245", false, 0},
		{"1-Foo-2024", false, 0},
		{"1 Jan 2024", false, 0},
		{" 1-Jan-2024", false, 0},
		{"1-Jan-2024 ", false, 0},
		{"1-Ja-2024", false, 0},
		{"", false, 0},
	};
	for (size_t i = 0; i < ARRAY_SIZE(dates); i++) {
		time_t t = 12345;
		bool ok = imap_parse_date(slice_cstr(dates[i].in), &t);
		CHECK_CASE(ok == dates[i].ok, i, dates[i].in);
		if (ok && dates[i].ok)
			CHECK_CASE((long long)t == dates[i].t, i, dates[i].in);
	}

	static const struct {
		const char *in;
		bool ok;
		long long t;
	} times[] = {
		{"01-Feb-1994 21:57:44 +0100", true, 760136264},
		{" 1-Feb-1994 21:57:44 +0100", true, 760136264},
		{"1-Feb-1994 21:57:44 +0100", true, 760136264},
		{"17-Jul-1996 02:44:25 -0700", true, 837596665},
		{"22-Nov-2026 11:32:00 +0000", true, 1795347120},
		{"22-Nov-2026 11:32:00 -0000", true, 1795347120},
		{"01-Jan-1970 00:00:00 +0000", true, 0},
		{"01-Jan-1970 00:59:60 +0100", true, 0},
		{"31-Dec-1969 23:00:00 -0100", true, 0},
		{"01-Jan-1970 24:00:00 +0000", false, 0},
		{"01-Jan-1970 00:60:00 +0000", false, 0},
		{"01-Jan-1970 00:00:61 +0000", false, 0},
		{"01-Jan-1970 00:00:00 +0060", false, 0},
		{"01-Jan-1970 00:00:00 +2400", false, 0},
		{"01-Jan-1970 00:00:00 0000", false, 0},
		{"01-Jan-1970 00:00:00 +000", false, 0},
		{"01-Jan-1970 00:00:00 +00000", false, 0},
		{"01-Jan-1970 00:00:00", false, 0},
		{"01-Jan-1970 0:00:00 +0000", false, 0},
		{"01-Jan-1970  00:00:00 +0000", false, 0},
		{"31-Feb-1970 00:00:00 +0000", false, 0},
		{"  1-Jan-1970 00:00:00 +0000", false, 0},
		{"01-Jan-1970 00:00:00 +0000 ", false, 0},
		{"01-Jan-1970T00:00:00 +0000", false, 0},
		{"", false, 0},
	};
	for (size_t i = 0; i < ARRAY_SIZE(times); i++) {
		time_t t = 12345;
		bool ok = imap_parse_date_time(slice_cstr(times[i].in), &t);
		CHECK_CASE(ok == times[i].ok, i, times[i].in);
		if (ok && times[i].ok)
			CHECK_CASE((long long)t == times[i].t, i, times[i].in);
	}

	static const struct {
		long long t;
		const char *out;
	} formats[] = {
		{0, "01-Jan-1970 00:00:00 +0000"},
		{1795347120, "22-Nov-2026 11:32:00 +0000"},
		{760136264, "01-Feb-1994 20:57:44 +0000"},
		{-1, "31-Dec-1969 23:59:59 +0000"},
		{951782400, "29-Feb-2000 00:00:00 +0000"},
		{-62135596800, "01-Jan-0001 00:00:00 +0000"},
		{-62135596801, "01-Jan-0001 00:00:00 +0000"},
		{253402300799, "31-Dec-9999 23:59:59 +0000"},
		{253402300800, "31-Dec-9999 23:59:59 +0000"},
		{INT64_MAX, "31-Dec-9999 23:59:59 +0000"},
		{INT64_MIN, "01-Jan-0001 00:00:00 +0000"},
	};
	struct buf b;
	buf_init(&b, 256);
	for (size_t i = 0; i < ARRAY_SIZE(formats); i++) {
		buf_reset(&b);
		imap_format_date_time((time_t)formats[i].t, &b);
		CHECK_CASE(slice_is(buf_slice(&b), formats[i].out), i,
			   formats[i].out);
	}
	/* Formatting and parsing agree over four centuries, hour by odd
	 * hour. */
	for (long long t = -2208988800LL; t < 10413792000LL; t += 3599 * 7) {
		buf_reset(&b);
		imap_format_date_time((time_t)t, &b);
		time_t back;
		bool ok = imap_parse_date_time(buf_slice(&b), &back);
		CHECK(ok && (long long)back == t);
		if (!ok || (long long)back != t) {
			fprintf(stderr, "  at %lld: %s\n", t, buf_cstr(&b));
			break;
		}
	}
	buf_free(&b);
}

/* ---- Modified UTF-7 ---- */

static void test_mutf7(void)
{
	static const struct {
		const char *mutf7;
		const char *utf8; /* NULL: refused */
		bool round_trip;  /* encoding utf8 gives mutf7 back */
	} cases[] = {
		{"", "", true},
		{"Sent", "Sent", true},
		{"INBOX", "INBOX", true},
		{"inbox", "INBOX", false},
		{"InBoX", "INBOX", false},
		{"inbox/x", "inbox/x", true},
		{"&-", "&", true},
		{"a&-b&-", "a&b&", true},
		{"~peter/mail/&U,BTFw-/&ZeVnLIqe-",
		 "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac"
		 "\xe8\xaa\x9e",
		 true},
		{"&AOk-t&AOk-", "\xc3\xa9t\xc3\xa9", true},
		{"&AOkA6Q-", "\xc3\xa9\xc3\xa9", true},
		{"Entw&APw-rfe",
		 "Entw\xc3\xbc"
		 "rfe",
		 true},
		{"&2D3eAA-", "\xf0\x9f\x98\x80", true},
		{"&2D3eANg93gE-", "\xf0\x9f\x98\x80\xf0\x9f\x98\x81", true},
		{"&AAk-", "\t", true},
		{"&AH8-", "\x7f", true},
		{"&AOkAfwDp-", "\xc3\xa9\x7f\xc3\xa9", true},
		{"&AOk-&-", "\xc3\xa9&", true},
		{"&-&AOk-", "&\xc3\xa9", true},
		/* Malformed. */
		{"&", NULL, false},
		{"a&", NULL, false},
		{"&AOk", NULL, false},
		{"&AOk-&", NULL, false},
		{"&AO/-", NULL, false}, /* '/' is not in the alphabet */
		{"&AO=-", NULL, false}, /* nor is '=' */
		{"&AOk=-", NULL, false},
		{"&AGE-", NULL, false},	   /* 'a' must be itself */
		{"&ACY-", NULL, false},	   /* so must '&' */
		{"&ACA-", NULL, false},	   /* and ' ' */
		{"&AH4-", NULL, false},	   /* and '~' */
		{"&AAA-", NULL, false},	   /* NUL */
		{"&AOl-", NULL, false},	   /* nonzero padding bits */
		{"&AOkA-", NULL, false},   /* a sextet too many */
		{"&AOkAAA-", NULL, false}, /* a whole spare unit... of NUL */
		{"&AO-", NULL, false},	   /* too short for one unit */
		{"&A-", NULL, false},
		{"&AOk-&AOk-", NULL, false},  /* two runs where one would do */
		{"&2D0-", NULL, false},	      /* lone high surrogate */
		{"&3gA-", NULL, false},	      /* lone low surrogate */
		{"&2D3YPQ-", NULL, false},    /* high, high */
		{"&2D0A6Q-", NULL, false},    /* high, then not a low */
		{"caf\xc3\xa9", NULL, false}, /* raw 8-bit */
		{"a\tb", NULL, false},	      /* raw control */
		{"a\x7f", NULL, false},
	};
	struct buf b;
	buf_init(&b, 4096);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		buf_reset(&b);
		buf_append_cstr(&b, "pre");
		bool ok = imap_mutf7_decode(slice_cstr(cases[i].mutf7), &b);
		CHECK_CASE(ok == (cases[i].utf8 != NULL), i, cases[i].mutf7);
		if (!ok) {
			/* Nothing is left behind on failure. */
			CHECK_CASE(slice_is(buf_slice(&b), "pre"), i,
				   cases[i].mutf7);
			continue;
		}
		if (cases[i].utf8 == NULL)
			continue;
		CHECK_CASE(b.n >= 3 && slice_is(slice_make(b.p + 3, b.n - 3),
						cases[i].utf8),
			   i, cases[i].mutf7);
		if (!cases[i].round_trip)
			continue;
		buf_reset(&b);
		imap_mutf7_encode(slice_cstr(cases[i].utf8), &b);
		CHECK_CASE(slice_is(buf_slice(&b), cases[i].mutf7), i,
			   cases[i].mutf7);
	}

	/* An output buffer too small: refused, and left as it was. */
	struct buf tiny;
	buf_init(&tiny, 4);
	buf_append_cstr(&tiny, "ab");
	CHECK(!imap_mutf7_decode(slice_cstr("&AOkA6QDp-"), &tiny));
	CHECK(tiny.n == 2);
	buf_free(&tiny);

	/* Invalid UTF-8 is encoded as U+FFFD. */
	buf_reset(&b);
	imap_mutf7_encode(slice_cstr("a\xffz\xc3"), &b);
	CHECK(slice_is(buf_slice(&b), "a&,,0-z&,,0-"));

	/* Round trips over pseudo-random code points: encode, decode, get
	 * the same bytes; encode again, get the same mUTF-7. */
	uint32_t seed = 12345;
	for (int round = 0; round < 3000; round++) {
		struct buf utf8, m, back;
		buf_init(&utf8, 1024);
		buf_init(&m, 4096);
		buf_init(&back, 1024);
		int len = round % 9;
		for (int k = 0; k < len; k++) {
			seed = seed * 1103515245u + 12345u;
			uint32_t cp;
			switch ((seed >> 16) % 4) {
			case 0:
				cp = 0x20 + (seed >> 8) % 0x5f;
				break;
			case 1:
				cp = 1 + (seed >> 8) % 0x7f;
				break;
			case 2:
				cp = 0x80 + (seed >> 4) % 0xff00;
				break;
			default:
				cp = 0x10000 + (seed >> 2) % 0x100000;
				break;
			}
			if (cp >= 0xd800 && cp <= 0xdfff)
				cp = 0xe000;
			uint8_t e[4];
			size_t n;
			if (cp < 0x80) {
				e[0] = (uint8_t)cp;
				n = 1;
			} else if (cp < 0x800) {
				e[0] = (uint8_t)(0xc0 | cp >> 6);
				e[1] = (uint8_t)(0x80 | (cp & 0x3f));
				n = 2;
			} else if (cp < 0x10000) {
				e[0] = (uint8_t)(0xe0 | cp >> 12);
				e[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
				e[2] = (uint8_t)(0x80 | (cp & 0x3f));
				n = 3;
			} else {
				e[0] = (uint8_t)(0xf0 | cp >> 18);
				e[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3f));
				e[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
				e[3] = (uint8_t)(0x80 | (cp & 0x3f));
				n = 4;
			}
			buf_append(&utf8, e, n);
		}
		imap_mutf7_encode(buf_slice(&utf8), &m);
		bool inbox = slice_eq_ci(buf_slice(&utf8), "INBOX");
		CHECK(imap_mutf7_decode(buf_slice(&m), &back));
		if (!inbox)
			CHECK(back.n == utf8.n &&
			      (utf8.n == 0 ||
			       memcmp(back.p, utf8.p, utf8.n) == 0));
		for (size_t k = 0; k < m.n; k++)
			CHECK(m.p[k] >= 0x20 && m.p[k] <= 0x7e);
		buf_free(&utf8);
		buf_free(&m);
		buf_free(&back);
	}
	buf_free(&b);
}

/* ---- Strings in responses ---- */

static void test_append_string(void)
{
	static const struct {
		const char *in;
		size_t n;
		bool utf8;
		const char *out;
		size_t out_n;
	} cases[] = {
		{T(""), false, T("\"\"")},
		{T("abc"), false, T("\"abc\"")},
		{T("a b\tc"), false, T("\"a b\tc\"")},
		{T("say \"hi\" \\o/"), false, T("\"say \\\"hi\\\" \\\\o/\"")},
		{T("NIL"), false, T("\"NIL\"")},
		{T("a\r\nb"), false, T("{4}\r\na\r\nb")},
		{T("a\rb"), false, T("{3}\r\na\rb")},
		{T("a\nb"), false, T("{3}\r\na\nb")},
		{T("a\0b"), false, T("{3}\r\na\0b")},
		{T("caf\xc3\xa9"), false, T("{5}\r\ncaf\xc3\xa9")},
		{T("caf\xc3\xa9"), true, T("\"caf\xc3\xa9\"")},
		{T("caf\xe9"), true, T("{4}\r\ncaf\xe9")},
		{T("caf\xe9"), false, T("{4}\r\ncaf\xe9")},
	};
	struct buf b;
	buf_init(&b, 1 << 16);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		buf_reset(&b);
		imap_append_string(&b, slice_make(cases[i].in, cases[i].n),
				   cases[i].utf8);
		CHECK_CASE(b.n == cases[i].out_n &&
				   memcmp(b.p, cases[i].out, b.n) == 0,
			   i, cases[i].in);
	}
	/* Long strings become literals. */
	char long_text[1100];
	memset(long_text, 'x', sizeof(long_text));
	buf_reset(&b);
	imap_append_string(&b, slice_make(long_text, 1024), false);
	CHECK(b.n == 1026 && b.p[0] == '"');
	buf_reset(&b);
	imap_append_string(&b, slice_make(long_text, 1025), false);
	CHECK(b.n > 8 && memcmp(b.p, "{1025}\r\n", 8) == 0);

	buf_reset(&b);
	imap_append_nstring(&b, NULL, false);
	CHECK(slice_is(buf_slice(&b), "NIL"));
	buf_reset(&b);
	struct slice nil_text = slice_cstr("NIL");
	imap_append_nstring(&b, &nil_text, false);
	CHECK(slice_is(buf_slice(&b), "\"NIL\""));

	/* What is sent parses back to the same bytes (NUL aside: a
	 * literal may not carry one). */
	uint32_t seed = 777;
	for (int round = 0; round < 2000; round++) {
		uint8_t text[40];
		size_t n = (size_t)(round % 40);
		for (size_t k = 0; k < n; k++) {
			seed = seed * 1103515245u + 12345u;
			text[k] = (uint8_t)(seed >> 16);
			if (text[k] == 0)
				text[k] = '"';
		}
		for (int utf8 = 0; utf8 < 2; utf8++) {
			buf_reset(&b);
			buf_append_cstr(&b, "t X ");
			imap_append_string(&b, slice_make(text, n), utf8);
			buf_append_cstr(&b, "\r\n");
			struct imap_command cmd;
			const char *error;
			arena_reset(arena);
			int r = imap_parse_command(buf_slice(&b), arena, &cmd,
						   &error);
			CHECK(r == 0 && cmd.arg_count == 1);
			if (r != 0 || cmd.arg_count != 1)
				continue;
			struct slice s;
			CHECK(imap_arg_astring(&cmd.args[0], &s) && s.n == n &&
			      (n == 0 || memcmp(s.p, text, n) == 0));
		}
	}
	buf_free(&b);
}

/* ---- FETCH ---- */

static void render_fetch(struct buf *b, const struct imap_fetch *f)
{
	for (size_t i = 0; i < f->count; i++) {
		const struct imap_fetch_item *it = &f->items[i];
		if (i > 0)
			buf_append_cstr(b, "|");
		buf_append_slice(b, it->response_name);
		if (it->peek)
			buf_append_cstr(b, " peek");
		if (it->partial)
			buf_printf(b, " <%" PRIu64 ".%" PRIu64 ">",
				   it->partial_start, it->partial_length);
	}
	if (f->changedsince)
		buf_printf(b, " changedsince=%" PRIu64, f->changedsince_modseq);
	if (f->vanished)
		buf_append_cstr(b, " vanished");
}

static void test_fetch(void)
{
	static const struct {
		const char *args; /* after "a FETCH 1 " */
		const char *out;  /* NULL: refused */
	} cases[] = {
		{"FLAGS", "FLAGS"},
		{"flags", "FLAGS"},
		{"ALL", "FLAGS|INTERNALDATE|RFC822.SIZE|ENVELOPE"},
		{"fast", "FLAGS|INTERNALDATE|RFC822.SIZE"},
		{"FULL", "FLAGS|INTERNALDATE|RFC822.SIZE|ENVELOPE|BODY"},
		{"(ALL)", NULL},
		{"(FLAGS ALL)", NULL},
		{"(UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE "
		 "BODY MODSEQ)",
		 "UID|FLAGS|INTERNALDATE|RFC822.SIZE|ENVELOPE|BODYSTRUCTURE|"
		 "BODY|MODSEQ"},
		{"(RFC822 RFC822.HEADER RFC822.TEXT)",
		 "RFC822|RFC822.HEADER peek|RFC822.TEXT"},
		{"BODY[]", "BODY[]"},
		{"body.peek[]", "BODY[] peek"},
		{"BODY[]<0.100>", "BODY[]<0> <0.100>"},
		{"BODY[TEXT]<10.5>", "BODY[TEXT]<10> <10.5>"},
		{"BODY[HEADER]", "BODY[HEADER]"},
		{"BODY[header]", "BODY[HEADER]"},
		{"BODY[TEXT]", "BODY[TEXT]"},
		{"BODY[1]", "BODY[1]"},
		{"BODY[1.2.3]", "BODY[1.2.3]"},
		{"BODY[1.2.MIME]", "BODY[1.2.MIME]"},
		{"BODY[1.HEADER]", "BODY[1.HEADER]"},
		{"BODY[1.TEXT]", "BODY[1.TEXT]"},
		{"BODY.PEEK[HEADER.FIELDS (FROM \"TO\")]<0.100>",
		 "BODY[HEADER.FIELDS (FROM TO)]<0> peek <0.100>"},
		{"BODY[HEADER.FIELDS (From to X-Spam-Flag)]",
		 "BODY[HEADER.FIELDS (From to X-Spam-Flag)]"},
		{"BODY[header.fields.not (Received)]",
		 "BODY[HEADER.FIELDS.NOT (Received)]"},
		{"BODY[2.HEADER.FIELDS (Subject)]",
		 "BODY[2.HEADER.FIELDS (Subject)]"},
		{"BODY[HEADER.FIELDS (\"X]Y\" \"a\\\\b\")]",
		 "BODY[HEADER.FIELDS (\"X]Y\" \"a\\\\b\")]"},
		{"BODY[HEADER.FIELDS (\"A(B\")]",
		 "BODY[HEADER.FIELDS (\"A(B\")]"},
		{"(BODY[HEADER.FIELDS (A B)] FLAGS)",
		 "BODY[HEADER.FIELDS (A B)]|FLAGS"},
		{"BINARY[1.2]", "BINARY[1.2]"},
		{"BINARY[]", "BINARY[]"},
		{"BINARY.PEEK[1]<0.10>", "BINARY[1]<0> peek <0.10>"},
		{"BINARY.SIZE[1]", "BINARY.SIZE[1]"},
		{"BINARY.SIZE[]", "BINARY.SIZE[]"},
		{"BODY[1]<4294967296.18446744073709551615>", NULL},
		{"BODY[1]<4294967296.9223372036854775807>",
		 "BODY[1]<4294967296> <4294967296.9223372036854775807>"},
		{"BODY[1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20.21."
		 "22.23.24.25.26.27.28.29.30.31.32]",
		 "BODY[1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20.21."
		 "22.23.24.25.26.27.28.29.30.31.32]"},
		{"BODY[4294967295]", "BODY[4294967295]"},
		/* Refused. */
		{"BODY[1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20.21."
		 "22.23.24.25.26.27.28.29.30.31.32.33]",
		 NULL},
		{"BODY[4294967296]", NULL},
		{"BODY[0]", NULL},
		{"BODY[01]", NULL},
		{"BODY[1.0]", NULL},
		{"BODY[1.]", NULL},
		{"BODY[.1]", NULL},
		{"BODY[1..2]", NULL},
		{"BODY[MIME]", NULL},
		{"BODY[HEADER ]", NULL},
		{"BODY[HEADERS]", NULL},
		{"BODY[TEXT.MIME]", NULL},
		{"BODY[1.2.FOO]", NULL},
		{"BODY[HEADER.FIELDS]", NULL},
		{"BODY[HEADER.FIELDS ()]", NULL},
		{"BODY[HEADER.FIELDS (A:B)]", NULL},
		{"BODY[HEADER.FIELDS (\"\")]", NULL},
		{"BODY[HEADER.FIELDS (\"A B\")]", NULL},
		{"BODY[HEADER.FIELDS (A  B)]", NULL},
		{"BODY[HEADER.FIELDS (A) ]", NULL},
		{"BODY[HEADER.FIELDS (A)B]", NULL},
		{"BODY[HEADER.FIELDS A]", NULL},
		{"BODY[HEADER.FIELDS (A]", NULL},
		{"BODY[]<0>", NULL},
		{"BODY[]<0.0>", NULL},
		{"BODY[]<.5>", NULL},
		{"BODY[]<1.5", NULL},
		{"BODY[]<1.5>x", NULL},
		{"BODY[]<-1.5>", NULL},
		{"BODY[]x", NULL},
		{"BODY[][]", NULL},
		{"BINARY[TEXT]", NULL},
		{"BINARY[1.MIME]", NULL},
		{"BINARY[1.]", NULL},
		{"BINARY.SIZE[1]<0.5>", NULL},
		{"BINARY", NULL},
		{"BINARY.PEEK", NULL},
		{"BODY.PEEK", NULL},
		{"BODY.SIZE[1]", NULL},
		{"BODYX[1]", NULL},
		{"RFC822.PEEK", NULL},
		{"SAVEDATE", NULL},
		{"FOO", NULL},
		{"()", NULL},
		{"\"FLAGS\"", NULL},
		{"(FLAGS (UID))", NULL},
		{"NIL", NULL},
	};
	struct buf b;
	buf_init(&b, 4096);
	char line[512];
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int n = snprintf(line, sizeof(line), "a FETCH 1 %s\r\n",
				 cases[i].args);
		CHECK(n > 0 && (size_t)n < sizeof(line));
		struct imap_command cmd;
		const char *error = NULL;
		int r = parse_line(line, (size_t)n, &cmd, &error);
		CHECK_CASE(r == 0 && cmd.arg_count == 2, i, cases[i].args);
		if (r != 0 || cmd.arg_count != 2)
			continue;
		struct imap_fetch fetch;
		error = NULL;
		r = imap_parse_fetch(&cmd.args[1], NULL, arena, &fetch, &error);
		CHECK_CASE((r == 0) == (cases[i].out != NULL), i,
			   cases[i].args);
		if (r < 0)
			CHECK_CASE(error != NULL, i, cases[i].args);
		if (r == 0 && cases[i].out != NULL) {
			buf_reset(&b);
			render_fetch(&b, &fetch);
			CHECK_CASE(slice_is(buf_slice(&b), cases[i].out), i,
				   cases[i].args);
			if (!slice_is(buf_slice(&b), cases[i].out))
				fprintf(stderr, "  got: %s\n", buf_cstr(&b));
		}
	}

	/* The details of one item. */
	struct imap_command cmd;
	const char *error;
	static const char one[] =
		"a FETCH 1 BODY.PEEK[3.1.HEADER.FIELDS.NOT (A \"B\")]<5.6>\r\n";
	CHECK(parse_line(one, sizeof(one) - 1, &cmd, &error) == 0);
	struct imap_fetch f;
	CHECK(imap_parse_fetch(&cmd.args[1], NULL, arena, &f, &error) == 0);
	CHECK(f.count == 1);
	const struct imap_fetch_item *it = &f.items[0];
	CHECK(it->kind == IMAP_FETCH_BODY_SECTION && it->peek);
	CHECK(it->part_count == 2 && it->parts[0] == 3 && it->parts[1] == 1);
	CHECK(it->section == MIME_SECTION_HEADER_FIELDS_NOT);
	CHECK(it->field_count == 2 && slice_is(it->fields[0], "A") &&
	      slice_is(it->fields[1], "B"));
	CHECK(it->partial && it->partial_start == 5 && it->partial_length == 6);
	CHECK(arena_contains(arena, it->response_name.p, it->response_name.n));

	static const struct {
		const char *item;
		enum imap_fetch_kind kind;
		bool peek;
		enum mime_section_kind section;
	} kinds[] = {
		{"FLAGS", IMAP_FETCH_FLAGS, false, MIME_SECTION_ALL},
		{"UID", IMAP_FETCH_UID, false, MIME_SECTION_ALL},
		{"INTERNALDATE", IMAP_FETCH_INTERNALDATE, false,
		 MIME_SECTION_ALL},
		{"RFC822.SIZE", IMAP_FETCH_RFC822_SIZE, false,
		 MIME_SECTION_ALL},
		{"ENVELOPE", IMAP_FETCH_ENVELOPE, false, MIME_SECTION_ALL},
		{"BODYSTRUCTURE", IMAP_FETCH_BODYSTRUCTURE, false,
		 MIME_SECTION_ALL},
		{"BODY", IMAP_FETCH_BODY_STRUCTURE_NONEXT, false,
		 MIME_SECTION_ALL},
		{"BODY[TEXT]", IMAP_FETCH_BODY_SECTION, false,
		 MIME_SECTION_TEXT},
		{"BINARY.PEEK[1]", IMAP_FETCH_BINARY, true, MIME_SECTION_ALL},
		{"BINARY.SIZE[1]", IMAP_FETCH_BINARY_SIZE, false,
		 MIME_SECTION_ALL},
		{"RFC822", IMAP_FETCH_RFC822, false, MIME_SECTION_ALL},
		{"RFC822.HEADER", IMAP_FETCH_RFC822_HEADER, true,
		 MIME_SECTION_HEADER},
		{"RFC822.TEXT", IMAP_FETCH_RFC822_TEXT, false,
		 MIME_SECTION_TEXT},
		{"MODSEQ", IMAP_FETCH_MODSEQ, false, MIME_SECTION_ALL},
	};
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		int n = snprintf(line, sizeof(line), "a FETCH 1 %s\r\n",
				 kinds[i].item);
		CHECK(parse_line(line, (size_t)n, &cmd, &error) == 0);
		CHECK_CASE(imap_parse_fetch(&cmd.args[1], NULL, arena, &f,
					    &error) == 0 &&
				   f.count == 1,
			   i, kinds[i].item);
		if (f.count != 1)
			continue;
		CHECK_CASE(f.items[0].kind == kinds[i].kind &&
				   f.items[0].peek == kinds[i].peek &&
				   f.items[0].section == kinds[i].section,
			   i, kinds[i].item);
	}
	CHECK(imap_parse_fetch(NULL, NULL, arena, &f, &error) < 0);
	buf_free(&b);
}

static void test_fetch_modifiers(void)
{
	static const struct {
		const char *mods;
		const char *out; /* NULL: refused */
	} cases[] = {
		{"(CHANGEDSINCE 12345)", "FLAGS changedsince=12345"},
		{"(changedsince 0)", "FLAGS changedsince=0"},
		{"(CHANGEDSINCE 9223372036854775807)",
		 "FLAGS changedsince=9223372036854775807"},
		{"(CHANGEDSINCE 9223372036854775808)", NULL},
		{"(CHANGEDSINCE 5 VANISHED)", "FLAGS changedsince=5 vanished"},
		{"(VANISHED CHANGEDSINCE 5)", "FLAGS changedsince=5 vanished"},
		{"(VANISHED)", NULL},
		{"(CHANGEDSINCE)", NULL},
		{"(CHANGEDSINCE x)", NULL},
		{"(CHANGEDSINCE -1)", NULL},
		{"(CHANGEDSINCE 1 CHANGEDSINCE 2)", NULL},
		{"(CHANGEDSINCE 1 VANISHED VANISHED)", NULL},
		{"(FOO)", NULL},
		{"()", NULL},
		{"CHANGEDSINCE", NULL},
		{"(\"CHANGEDSINCE\" 1)", NULL},
	};
	struct buf b;
	buf_init(&b, 4096);
	char line[256];
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int n = snprintf(line, sizeof(line),
				 "a UID FETCH 1 FLAGS %s\r\n", cases[i].mods);
		struct imap_command cmd;
		const char *error = NULL;
		int r = parse_line(line, (size_t)n, &cmd, &error);
		CHECK_CASE(r == 0 && cmd.arg_count == 3, i, cases[i].mods);
		if (r != 0 || cmd.arg_count != 3)
			continue;
		struct imap_fetch f;
		r = imap_parse_fetch(&cmd.args[1], &cmd.args[2], arena, &f,
				     &error);
		CHECK_CASE((r == 0) == (cases[i].out != NULL), i,
			   cases[i].mods);
		if (r == 0 && cases[i].out != NULL) {
			buf_reset(&b);
			render_fetch(&b, &f);
			CHECK_CASE(slice_is(buf_slice(&b), cases[i].out), i,
				   cases[i].mods);
		}
	}
	buf_free(&b);
}

/* ---- SEARCH ---- */

static void test_search(void)
{
	static const struct {
		const char *args; /* after "a SEARCH " */
		const char *out;  /* rendered root; NULL: refused */
	} cases[] = {
		{"ALL", "AND(ALL)"},
		{"all", "AND(ALL)"},
		{"ANSWERED DELETED DRAFT FLAGGED SEEN",
		 "AND(FLAG:2 FLAG:8 FLAG:16 FLAG:4 FLAG:1)"},
		{"UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNSEEN",
		 "AND(UNFLAG:2 UNFLAG:8 UNFLAG:16 UNFLAG:4 UNFLAG:1)"},
		{"NEW OLD RECENT", "AND(NEW OLD RECENT)"},
		{"BCC a CC b FROM c TO d SUBJECT e",
		 "AND(HEADER:BCC=a HEADER:CC=b HEADER:FROM=c HEADER:TO=d "
		 "HEADER:SUBJECT=e)"},
		{"from \"John Doe\"", "AND(HEADER:from=John Doe)"},
		{"HEADER X-Spam-Flag YES", "AND(HEADER:X-Spam-Flag=YES)"},
		{"HEADER Message-ID \"\"", "AND(HEADER:Message-ID=)"},
		{"HEADER \"\" x", NULL},
		{"HEADER \"a:b\" x", NULL},
		{"HEADER a", NULL},
		{"BODY hello TEXT {5}\r\nworld", "AND(BODY:hello TEXT:world)"},
		{"BODY ~{5}\r\nworld", NULL},
		{"BODY (a)", NULL},
		{"BODY NIL", "AND(BODY:NIL)"},
		{"BEFORE 1-Feb-1994", "AND(BEFORE:760060800)"},
		{"ON \"1-Feb-1994\"", "AND(ON:760060800)"},
		{"SINCE 1-Feb-1994 SENTBEFORE 1-Feb-1994 SENTON 1-Feb-1994 "
		 "SENTSINCE 1-Feb-1994",
		 "AND(SINCE:760060800 SENTBEFORE:760060800 SENTON:760060800 "
		 "SENTSINCE:760060800)"},
		{"SINCE 30-Feb-1994", NULL},
		{"SINCE 1994-02-01", NULL},
		{"SINCE {10}\r\n1-Feb-1994", NULL},
		{"SINCE", NULL},
		{"LARGER 1000 SMALLER 9223372036854775807",
		 "AND(LARGER:1000 SMALLER:9223372036854775807)"},
		{"LARGER 9223372036854775808", NULL},
		{"LARGER -1", NULL},
		{"LARGER x", NULL},
		{"LARGER \"5\"", NULL},
		{"KEYWORD $Label1 UNKEYWORD Junk", "AND(KW:$Label1 UNKW:Junk)"},
		{"KEYWORD \\Seen", NULL},
		{"KEYWORD \"x\"", NULL},
		{"KEYWORD a]", NULL},
		{"1:5", "AND(SEQ:1:5)"},
		{"1,3:*", "AND(SEQ:1,3:100)"},
		{"*", "AND(SEQ:100)"},
		{"5:1 2", "AND(SEQ:1:5 SEQ:2)"},
		{"$", "AND($)"},
		{"UID 1:*", "AND(UID:1:200)"},
		{"UID $", "AND($)"},
		{"UID 4294967296", NULL},
		{"UID (1)", NULL},
		{"UID", NULL},
		{"0", NULL},
		{"1:", NULL},
		{"NOT SEEN", "AND(NOT(FLAG:1))"},
		{"NOT NOT SEEN", "AND(NOT(NOT(FLAG:1)))"},
		{"NOT", NULL},
		{"OR SEEN FLAGGED", "AND(OR(FLAG:1 FLAG:4))"},
		{"OR SEEN", NULL},
		{"OR (SEEN DRAFT) NOT 1:3",
		 "AND(OR(AND(FLAG:1 FLAG:16) NOT(SEQ:1:3)))"},
		{"(SEEN) (FROM x (TO y))",
		 "AND(AND(FLAG:1) AND(HEADER:FROM=x AND(HEADER:TO=y)))"},
		{"()", NULL},
		{"(SEEN", NULL},
		{"SEEN)", NULL},
		{"MODSEQ 0", "AND(MODSEQ:0)"},
		{"MODSEQ 720162338", "AND(MODSEQ:720162338)"},
		{"MODSEQ \"/flags/\\\\draft\" all 620162338",
		 "AND(MODSEQ:620162338/\\draft)"},
		{"MODSEQ \"/flags/$Label\" priv 5", "AND(MODSEQ:5/$Label)"},
		{"MODSEQ \"/flags/\\\\Seen\" shared 5", "AND(MODSEQ:5/\\Seen)"},
		{"MODSEQ \"/flags/\\\\Seen\" both 5", NULL},
		{"MODSEQ \"/flags/\\\\Seen\" 5", NULL},
		{"MODSEQ \"/other/x\" all 5", NULL},
		{"MODSEQ \"/flags/\" all 5", NULL},
		{"MODSEQ \"/flags/a b\" all 5", NULL},
		{"MODSEQ 9223372036854775808", NULL},
		{"MODSEQ", NULL},
		{"MODSEQ x", NULL},
		{"CHARSET UTF-8 SUBJECT x", "AND(HEADER:SUBJECT=x)"},
		{"CHARSET \"UTF-8\" ALL", "AND(ALL)"},
		{"CHARSET", NULL},
		{"CHARSET UTF-8", NULL},
		{"CHARSET \"\" ALL", NULL},
		{"CHARSET (x) ALL", NULL},
		{"ALL CHARSET UTF-8", NULL},
		{"RETURN (MIN MAX) ALL", "AND(ALL) min max"},
		{"RETURN () ALL", "AND(ALL) all"},
		{"RETURN (ALL COUNT SAVE) CHARSET UTF-8 1:*",
		 "AND(SEQ:1:100) all count save"},
		{"return (min) UNSEEN", "AND(UNFLAG:1) min"},
		{"RETURN (PARTIAL 1:10) ALL", NULL},
		{"RETURN (FOO) ALL", NULL},
		{"RETURN ((MIN)) ALL", NULL},
		{"RETURN MIN ALL", NULL},
		{"RETURN (MIN)", NULL},
		{"RETURN", NULL},
		{"CHARSET UTF-8 RETURN (MIN) ALL", NULL},
		{"ALL RETURN (MIN)", NULL},
		{"FOO", NULL},
		{"\"ALL\"", NULL},
		{"NIL", NULL},
		{"YOUNGER 5", NULL},
	};
	struct buf b;
	buf_init(&b, 4096);
	char line[512];
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int n = snprintf(line, sizeof(line), "a SEARCH %s\r\n",
				 cases[i].args);
		struct imap_command cmd;
		const char *error = NULL;
		int r = parse_line(line, (size_t)n, &cmd, &error);
		/* Some refusals come from the lexer already. */
		CHECK_CASE(r == 0 || cases[i].out == NULL, i, cases[i].args);
		if (r != 0)
			continue;
		struct imap_search s;
		error = NULL;
		r = imap_parse_search(cmd.args, cmd.arg_count, 100, 200, arena,
				      &s, &error);
		CHECK_CASE((r == 0) == (cases[i].out != NULL), i,
			   cases[i].args);
		if (r < 0) {
			CHECK_CASE(error != NULL, i, cases[i].args);
			continue;
		}
		if (cases[i].out == NULL)
			continue;
		buf_reset(&b);
		render_key(&b, &s.root);
		if (s.return_min)
			buf_append_cstr(&b, " min");
		if (s.return_max)
			buf_append_cstr(&b, " max");
		if (s.return_all)
			buf_append_cstr(&b, " all");
		if (s.return_count)
			buf_append_cstr(&b, " count");
		if (s.return_save)
			buf_append_cstr(&b, " save");
		CHECK_CASE(slice_is(buf_slice(&b), cases[i].out), i,
			   cases[i].args);
		if (!slice_is(buf_slice(&b), cases[i].out))
			fprintf(stderr, "  got: %s\n", buf_cstr(&b));
		CHECK_CASE(s.esearch == (strncasecmp(cases[i].args, "RETURN",
						     6) == 0),
			   i, cases[i].args);
	}

	/* Charset and ESEARCH details. */
	struct imap_command cmd;
	const char *error;
	struct imap_search s;
	static const char cs[] = "a SEARCH CHARSET iso-8859-1 ALL\r\n";
	CHECK(parse_line(cs, sizeof(cs) - 1, &cmd, &error) == 0);
	CHECK(imap_parse_search(cmd.args, cmd.arg_count, 1, 1, arena, &s,
				&error) == 0);
	CHECK(slice_is(s.charset, "iso-8859-1") && !s.esearch);
	CHECK(imap_parse_search(cmd.args, 0, 1, 1, arena, &s, &error) < 0);
	CHECK(imap_parse_search(NULL, 0, 1, 1, arena, &s, &error) < 0);
	static const char bare[] = "a SEARCH\r\n";
	CHECK(parse_line(bare, sizeof(bare) - 1, &cmd, &error) == 0);
	CHECK(cmd.args == NULL && cmd.arg_count == 0);
	CHECK(imap_parse_search(cmd.args, cmd.arg_count, 1, 1, arena, &s,
				&error) < 0);

	/* Depth: 15 NOTs nest to depth 16 and pass; 16 do not. */
	for (int nots = 15; nots <= 16; nots++) {
		buf_reset(&b);
		buf_append_cstr(&b, "a SEARCH");
		for (int k = 0; k < nots; k++)
			buf_append_cstr(&b, " NOT");
		buf_append_cstr(&b, " SEEN\r\n");
		CHECK(parse_line((const char *)b.p, b.n, &cmd, &error) == 0);
		int r = imap_parse_search(cmd.args, cmd.arg_count, 1, 1, arena,
					  &s, &error);
		CHECK(nots == 15 ? r == 0 : r < 0);
	}
	/* OR chains nest as deep as NOT chains. */
	buf_reset(&b);
	buf_append_cstr(&b, "a SEARCH");
	for (int k = 0; k < 40; k++)
		buf_append_cstr(&b, " OR SEEN");
	buf_append_cstr(&b, " SEEN\r\n");
	CHECK(parse_line((const char *)b.p, b.n, &cmd, &error) == 0);
	CHECK(imap_parse_search(cmd.args, cmd.arg_count, 1, 1, arena, &s,
				&error) < 0);
	/* Parenthesised groups count towards the depth. */
	static const char deep[] =
		"a SEARCH ((((((((((((((((SEEN))))))))))))))))\r\n";
	CHECK(parse_line(deep, sizeof(deep) - 1, &cmd, &error) == 0);
	CHECK(imap_parse_search(cmd.args, cmd.arg_count, 1, 1, arena, &s,
				&error) < 0);
	static const char fine[] =
		"a SEARCH (((((((((((((((SEEN)))))))))))))))\r\n";
	CHECK(parse_line(fine, sizeof(fine) - 1, &cmd, &error) == 0);
	CHECK(imap_parse_search(cmd.args, cmd.arg_count, 1, 1, arena, &s,
				&error) == 0);
	/* A field key's name and a string's text point into the command. */
	static const char pts[] = "a SEARCH FROM \"x\"\r\n";
	CHECK(parse_line(pts, sizeof(pts) - 1, &cmd, &error) == 0);
	CHECK(imap_parse_search(cmd.args, cmd.arg_count, 1, 1, arena, &s,
				&error) == 0);
	CHECK(s.root.child_count == 1 &&
	      s.root.children[0].field.p == (const uint8_t *)pts + 9);
	buf_free(&b);
}

/* ---- SORT ---- */

static void test_sort(void)
{
	static const struct {
		const char *arg;
		const char *out; /* "R" before a reversed key; NULL: refused */
	} cases[] = {
		{"(DATE)", "2"},
		{"(REVERSE DATE SUBJECT)", "R2 5"},
		{"(reverse arrival cc date from size subject to displayfrom "
		 "displayto)",
		 "R0 1 2 3 4 5 6 7 8"},
		{"(REVERSE DISPLAYFROM REVERSE DISPLAYTO)", "R7 R8"},
		{"()", NULL},
		{"(REVERSE)", NULL},
		{"(DATE REVERSE)", NULL},
		{"(REVERSE REVERSE DATE)", NULL},
		{"(FOO)", NULL},
		{"(\"DATE\")", NULL},
		{"((DATE))", NULL},
		{"DATE", NULL},
		{"(THREAD)", NULL},
	};
	char line[256];
	struct buf b;
	buf_init(&b, 1024);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int n = snprintf(line, sizeof(line), "a SORT %s UTF-8 ALL\r\n",
				 cases[i].arg);
		struct imap_command cmd;
		const char *error = NULL;
		int r = parse_line(line, (size_t)n, &cmd, &error);
		CHECK_CASE(r == 0, i, cases[i].arg);
		if (r != 0)
			continue;
		struct imap_sort_criterion *c;
		size_t count;
		r = imap_parse_sort_criteria(&cmd.args[0], arena, &c, &count,
					     &error);
		CHECK_CASE((r == 0) == (cases[i].out != NULL), i, cases[i].arg);
		if (r != 0 || cases[i].out == NULL)
			continue;
		buf_reset(&b);
		for (size_t k = 0; k < count; k++)
			buf_printf(&b, "%s%s%d", k ? " " : "",
				   c[k].reverse ? "R" : "", (int)c[k].key);
		CHECK_CASE(slice_is(buf_slice(&b), cases[i].out), i,
			   cases[i].arg);
		/* The rest of a SORT is a charset and a search program. */
		struct slice charset;
		struct imap_search s;
		CHECK(imap_arg_astring(&cmd.args[1], &charset) &&
		      slice_is(charset, "UTF-8"));
		CHECK(imap_parse_search(cmd.args + 2, cmd.arg_count - 2, 1, 1,
					arena, &s, &error) == 0);
	}
	struct imap_sort_criterion *c;
	size_t count;
	const char *error;
	CHECK(imap_parse_sort_criteria(NULL, arena, &c, &count, &error) < 0);
	buf_free(&b);
}

int main(void)
{
	arena = arena_new(16 << 20);
	test_arena();
	test_frame();
	test_frame_splits();
	test_frame_session();
	test_commands();
	test_command_memory();
	test_arena_exhaustion();
	test_arg_helpers();
	test_seqset();
	test_flags();
	test_dates();
	test_mutf7();
	test_append_string();
	test_fetch();
	test_fetch_modifiers();
	test_search();
	test_sort();
	arena_free(&arena);
	return unit_result("imap_parser");
}
