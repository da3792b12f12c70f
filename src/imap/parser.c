/* parser.c: IMAP command framing and parsing (RFC 3501 and RFC 9051
 * section 9), with the extensions dijk announces: LITERAL+ (RFC 7888),
 * BINARY (RFC 3516), CONDSTORE/QRESYNC (RFC 7162), ESEARCH and SEARCHRES
 * (RFC 4731, RFC 5182), SORT and DISPLAY (RFC 5256, RFC 5957); dates and
 * modified UTF-7 mailbox names (RFC 3501 5.1.3). Pure: see parser.h. */
#include "core/common.h"

#include "imap/parser.h"

#include "core/utf8.h"

#include <inttypes.h>
#include <strings.h>

/* Strings the server sends longer than this go out as literals. */
#define IMAP_MAX_QUOTED_OUT 1024
/* number64 (RFC 9051) and mod-sequence-value (RFC 7162): 63 bits. */
#define IMAP_NUMBER64_MAX ((uint64_t)INT64_MAX)
/* Room in a FETCH response name beyond twice the item's own text. */
#define RESPONSE_NAME_SLACK 64

/* ---- Character classes (RFC 3501 section 9) ---- */

static bool is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

/* ATOM-CHAR: any CHAR except atom-specials. */
static bool is_atom_char(uint8_t c)
{
	if (c <= 0x20 || c >= 0x7f)
		return false;
	switch (c) {
	case '(':
	case ')':
	case '{':
	case '%':
	case '*':
	case '"':
	case '\\':
	case ']':
		return false;
	default:
		return true;
	}
}

static bool is_astring_char(uint8_t c)
{
	return is_atom_char(c) || c == ']';
}

static bool is_tag_char(uint8_t c)
{
	return is_astring_char(c) && c != '+';
}

/* What the generic lexer takes into an atom: ASTRING-CHAR and the list
 * wildcards, which LIST patterns and sequence sets ("1:*") use. */
static bool is_lexer_atom_char(uint8_t c)
{
	return is_astring_char(c) || c == '%' || c == '*';
}

/* RFC 5322 ftext: a header field name's characters. */
static bool is_field_char(uint8_t c)
{
	return c > 0x20 && c < 0x7f && c != ':';
}

static bool all_chars(struct slice s, bool (*pred)(uint8_t))
{
	if (s.n == 0)
		return false;
	for (size_t i = 0; i < s.n; i++) {
		if (!pred(s.p[i]))
			return false;
	}
	return true;
}

/* Reads decimal digits at s[*i]; false when there are none or the value
 * passes max. Leading zeros are allowed unless nonzero_first. */
static bool read_number(struct slice s, size_t *i, uint64_t max,
			bool nonzero_first, uint64_t *out)
{
	size_t k = *i;
	if (k >= s.n || !is_digit(s.p[k]) || (nonzero_first && s.p[k] == '0'))
		return false;
	uint64_t v = 0;
	while (k < s.n && is_digit(s.p[k])) {
		unsigned d = s.p[k] - '0';
		if (d > max || v > (max - d) / 10)
			return false;
		v = v * 10 + d;
		k++;
	}
	*i = k;
	*out = v;
	return true;
}

/* ---- Framing ---- */

void imap_framer_reset(struct imap_framer *f)
{
	memset(f, 0, sizeof(*f));
}

/* Reads the literal announcement "{n}" or "{n+}" (maybe after '~') that
 * ends line just before its CRLF. A size past 64 bits reads as
 * UINT64_MAX, which no limit admits. */
static bool trailing_literal(struct slice line, uint64_t *size_r,
			     bool *nonsync_r)
{
	if (line.n < 5 || line.p[line.n - 2] != '\r' ||
	    line.p[line.n - 3] != '}')
		return false;
	size_t i = line.n - 3; /* the '}' */
	bool nonsync = false;
	if (line.p[i - 1] == '+') {
		nonsync = true;
		i--;
	}
	size_t digits_end = i;
	while (i > 0 && is_digit(line.p[i - 1]))
		i--;
	if (i == digits_end || i == 0 || line.p[i - 1] != '{')
		return false;
	uint64_t size = 0;
	for (size_t k = i; k < digits_end; k++) {
		unsigned d = line.p[k] - '0';
		if (size > (UINT64_MAX - d) / 10) {
			size = UINT64_MAX;
			break;
		}
		size = size * 10 + d;
	}
	*size_r = size;
	*nonsync_r = nonsync;
	return true;
}

enum imap_frame_result imap_frame(struct imap_framer *f, struct slice in,
				  const struct imap_frame_limits *limits,
				  size_t *len_r, uint64_t *literal_r,
				  bool *nonsync_r)
{
	DIJK_ASSERT(f->pos <= in.n && f->segment_start <= f->pos);
	for (;;) {
		if (f->literal_left > 0) {
			size_t avail = in.n - f->pos;
			if ((uint64_t)avail < f->literal_left) {
				f->literal_left -= avail;
				f->pos = in.n;
				f->segment_start = in.n;
				return IMAP_FRAME_NEED_MORE;
			}
			f->pos += (size_t)f->literal_left;
			f->literal_left = 0;
			f->segment_start = f->pos;
		}
		const uint8_t *lf = NULL;
		if (f->pos < in.n)
			lf = memchr(in.p + f->pos, '\n', in.n - f->pos);
		if (lf == NULL) {
			f->pos = in.n;
			/* The line still needs its LF: reaching the limit now
			 * means crossing it. */
			if (in.n - f->segment_start >=
			    limits->max_line - f->line_bytes)
				return IMAP_FRAME_TOO_LONG;
			return IMAP_FRAME_NEED_MORE;
		}
		size_t end = (size_t)(lf - in.p) + 1;
		size_t segment = end - f->segment_start;
		if (segment > limits->max_line - f->line_bytes)
			return IMAP_FRAME_TOO_LONG;
		f->line_bytes += segment;
		f->pos = end;
		uint64_t size;
		bool nonsync;
		if (!trailing_literal(
			    slice_make(in.p + f->segment_start, segment), &size,
			    &nonsync)) {
			*len_r = end;
			return IMAP_FRAME_COMPLETE;
		}
		f->last_literal_nonsync = nonsync;
		f->continuation_sent = false;
		if (f->literals >= limits->max_literals) {
			*len_r = end;
			*literal_r = size;
			*nonsync_r = nonsync;
			return IMAP_FRAME_TOO_MANY_LITERALS;
		}
		if (size > limits->max_literal) {
			*len_r = end;
			*literal_r = size;
			*nonsync_r = nonsync;
			return IMAP_FRAME_LITERAL_TOO_BIG;
		}
		f->literals++;
		f->literal_left = size;
		f->segment_start = end;
		if (!nonsync) {
			f->continuation_sent = true;
			return IMAP_FRAME_CONTINUE;
		}
	}
}

/* ---- Lexing a command into arguments ---- */

struct lexer {
	const uint8_t *p;
	size_t n;
	size_t i;
	struct arena *a;
	size_t arg_count;
	const char *error;
};

/* A list's items while it is read: grows by doubling in the arena. */
struct arg_vector {
	struct imap_arg *v;
	size_t n, cap;
};

static int lex_fail(struct lexer *lx, const char *error)
{
	if (lx->error == NULL)
		lx->error = error;
	return -1;
}

static int lex_peek(const struct lexer *lx)
{
	return lx->i < lx->n ? lx->p[lx->i] : -1;
}

/* Why the character c cannot come where it is. */
static const char *unexpected(int c, bool in_list)
{
	if (c == -1 || c == '\r' || c == '\n')
		return in_list ? "Missing ')'" : "Missing CRLF";
	if (c >= 0x80)
		return "8-bit text must be sent as a quoted string or literal";
	if (c == 0)
		return "NUL in a command";
	if (c == ')')
		return "Unexpected ')'";
	if (c == '{')
		return "A literal must end the line";
	return "Invalid character in an argument";
}

/* Scans the quoted string at p[*i] == '"' (QUOTED-CHAR of RFC 9051: any
 * TEXT-CHAR, valid UTF-8, '\' only before '"' or '\'). On success *i is
 * past the closing quote. Returns NULL or why the string is invalid. */
static const char *scan_quoted(const uint8_t *p, size_t n, size_t *i,
			       bool *escapes_r)
{
	size_t k = *i + 1;
	bool escapes = false, eight_bit = false;
	while (k < n) {
		uint8_t c = p[k];
		if (c == '"') {
			if (eight_bit &&
			    !utf8_valid(slice_make(p + *i + 1, k - *i - 1)))
				return "8-bit text in a quoted string must be UTF-8";
			*i = k + 1;
			*escapes_r = escapes;
			return NULL;
		}
		if (c == '\\') {
			if (k + 1 >= n || (p[k + 1] != '"' && p[k + 1] != '\\'))
				return "Invalid escape in a quoted string";
			escapes = true;
			k += 2;
			continue;
		}
		if (c == '\r' || c == '\n')
			return "Unterminated quoted string";
		if (c == 0)
			return "NUL in a quoted string";
		if (c >= 0x80)
			eight_bit = true;
		k++;
	}
	return "Unterminated quoted string";
}

/* The text of the quoted string p[start, end) (quotes included): a view
 * of the input, or an unescaped copy in the arena. */
static int unquote(struct arena *a, const uint8_t *p, size_t start, size_t end,
		   bool escapes, struct slice *out)
{
	struct slice raw = slice_make(p + start + 1, end - start - 2);
	if (!escapes) {
		*out = raw;
		return 0;
	}
	uint8_t *q = arena_alloc(a, raw.n);
	if (q == NULL)
		return -1;
	size_t n = 0;
	for (size_t k = 0; k < raw.n; k++) {
		if (raw.p[k] == '\\')
			k++;
		q[n++] = raw.p[k];
	}
	*out = slice_make(q, n);
	return 0;
}

static int lex_quoted(struct lexer *lx, struct imap_arg *arg)
{
	size_t start = lx->i;
	bool escapes;
	const char *error = scan_quoted(lx->p, lx->n, &lx->i, &escapes);
	if (error != NULL)
		return lex_fail(lx, error);
	if (unquote(lx->a, lx->p, start, lx->i, escapes, &arg->text) < 0)
		return lex_fail(lx, "Command too large");
	arg->type = IMAP_ARG_STRING;
	return 0;
}

/* "{n}" / "{n+}" / "~{n}" / "~{n+}", CRLF, then n bytes: the framer has
 * made sure the bytes are there when the command came from it. */
static int lex_literal(struct lexer *lx, struct imap_arg *arg)
{
	bool literal8 = lx->p[lx->i] == '~';
	lx->i += literal8 ? 2 : 1;
	uint64_t size;
	struct slice s = slice_make(lx->p, lx->n);
	if (!read_number(s, &lx->i, IMAP_NUMBER64_MAX, false, &size))
		return lex_fail(lx, "Invalid literal size");
	if (lex_peek(lx) == '+')
		lx->i++;
	if (lex_peek(lx) != '}')
		return lex_fail(lx, "Invalid literal");
	lx->i++;
	if (lx->n - lx->i < 2 || lx->p[lx->i] != '\r' ||
	    lx->p[lx->i + 1] != '\n')
		return lex_fail(lx, "A literal must end the line");
	lx->i += 2;
	if (size > lx->n - lx->i)
		return lex_fail(lx, "Literal data missing");
	arg->type = IMAP_ARG_LITERAL;
	arg->literal8 = literal8;
	arg->text = slice_make(lx->p + lx->i, (size_t)size);
	/* CHAR8 excludes NUL; binary data travels in a literal8. */
	if (!literal8 && size > 0 && memchr(arg->text.p, 0, arg->text.n))
		return lex_fail(lx, "NUL in a literal (send it as literal8)");
	lx->i += (size_t)size;
	return 0;
}

/* FETCH items whose "[...]" section may hold spaces and parentheses. */
static bool section_prefix(struct slice s)
{
	return slice_eq_ci(s, "BODY") || slice_eq_ci(s, "BODY.PEEK") ||
	       slice_eq_ci(s, "BINARY") || slice_eq_ci(s, "BINARY.PEEK") ||
	       slice_eq_ci(s, "BINARY.SIZE");
}

/* Skips a FETCH section from p[i] == '[' to its ']'; quoted strings inside
 * may hold ']'. Literals inside a section are refused: no client sends
 * them and they would let the section span lines. */
static int lex_section(struct lexer *lx)
{
	lx->i++;
	while (lx->i < lx->n) {
		uint8_t c = lx->p[lx->i];
		if (c == ']') {
			lx->i++;
			return 0;
		}
		if (c == '"') {
			bool escapes;
			const char *error =
				scan_quoted(lx->p, lx->n, &lx->i, &escapes);
			if (error != NULL)
				return lex_fail(lx, error);
			continue;
		}
		if (c == '{')
			return lex_fail(
				lx, "Literals are not allowed in a section");
		if (c == '\r' || c == '\n')
			break;
		if (c < 0x20 || c >= 0x7f || c == '[')
			return lex_fail(lx, "Invalid character in a section");
		lx->i++;
	}
	return lex_fail(lx, "Unterminated section");
}

static int lex_atom(struct lexer *lx, struct imap_arg *arg)
{
	size_t start = lx->i;
	bool flag = lx->p[lx->i] == '\\';
	bool section = false;
	if (flag)
		lx->i++;
	while (lx->i < lx->n) {
		uint8_t c = lx->p[lx->i];
		if (c == '[' && !flag && !section &&
		    section_prefix(slice_make(lx->p + start, lx->i - start))) {
			if (lex_section(lx) < 0)
				return -1;
			section = true;
			continue;
		}
		if (!is_lexer_atom_char(c))
			break;
		lx->i++;
	}
	size_t len = lx->i - start;
	if (len == 0 || (flag && len == 1))
		return lex_fail(lx, unexpected(lex_peek(lx), false));
	arg->type = IMAP_ARG_ATOM;
	arg->text = slice_make(lx->p + start, len);
	if (!flag && !section && slice_eq_ci(arg->text, "NIL"))
		arg->type = IMAP_ARG_NIL;
	return 0;
}

static struct imap_arg *vector_push(struct lexer *lx, struct arg_vector *vec)
{
	if (lx->arg_count >= IMAP_MAX_ARGS) {
		lex_fail(lx, "Too many arguments");
		return NULL;
	}
	lx->arg_count++;
	if (vec->n == vec->cap) {
		size_t cap = vec->cap == 0 ? 4 : vec->cap * 2;
		struct imap_arg *v = arena_alloc(lx->a, cap * sizeof(*v));
		if (v == NULL) {
			lex_fail(lx, "Command too large");
			return NULL;
		}
		if (vec->n > 0)
			memcpy(v, vec->v, vec->n * sizeof(*v));
		vec->v = v;
		vec->cap = cap;
	}
	struct imap_arg *arg = &vec->v[vec->n++];
	memset(arg, 0, sizeof(*arg));
	return arg;
}

static int lex_args(struct lexer *lx, struct arg_vector *vec, unsigned depth,
		    bool in_list);

static int lex_arg(struct lexer *lx, struct imap_arg *arg, unsigned depth)
{
	int c = lex_peek(lx);
	switch (c) {
	case '(': {
		if (depth >= IMAP_MAX_NESTING)
			return lex_fail(lx, "Lists nested too deeply");
		size_t start = lx->i++;
		struct arg_vector items = {NULL, 0, 0};
		if (lex_args(lx, &items, depth + 1, true) < 0)
			return -1;
		arg->type = IMAP_ARG_LIST;
		arg->list = items.v;
		arg->count = items.n;
		arg->text = slice_make(lx->p + start, lx->i - start);
		return 0;
	}
	case '"':
		return lex_quoted(lx, arg);
	case '{':
		return lex_literal(lx, arg);
	case '~':
		if (lx->i + 1 < lx->n && lx->p[lx->i + 1] == '{')
			return lex_literal(lx, arg);
		return lex_atom(lx, arg);
	case ' ':
		return lex_fail(lx, "Extra space");
	case -1:
	case '\r':
	case '\n':
		return lex_fail(lx, "Missing argument");
	default:
		return lex_atom(lx, arg);
	}
}

/* Arguments separated by single spaces, up to ')' (in_list) or CR. */
static int lex_args(struct lexer *lx, struct arg_vector *vec, unsigned depth,
		    bool in_list)
{
	if (in_list && lex_peek(lx) == ')') {
		lx->i++;
		return 0;
	}
	if (!in_list && (lex_peek(lx) == '\r' || lex_peek(lx) == -1))
		return lex_fail(lx, "Extra space");
	for (;;) {
		struct imap_arg *arg = vector_push(lx, vec);
		if (arg == NULL || lex_arg(lx, arg, depth) < 0)
			return -1;
		int c = lex_peek(lx);
		if (c == ' ') {
			lx->i++;
			c = lex_peek(lx);
			if (c == ')' || c == '\r' || c == -1)
				return lex_fail(lx, "Extra space");
			continue;
		}
		if (in_list && c == ')') {
			lx->i++;
			return 0;
		}
		if (!in_list && c == '\r')
			return 0;
		return lex_fail(lx, unexpected(c, in_list));
	}
}

int imap_parse_command(struct slice command, struct arena *a,
		       struct imap_command *cmd, const char **error_r)
{
	memset(cmd, 0, sizeof(*cmd));
	const uint8_t *p = command.p;
	size_t n = command.n;
	size_t i = 0;
	while (i < n && is_tag_char(p[i]))
		i++;
	if (i == 0) {
		*error_r = n > 0 && (p[0] == '\r' || p[0] == '\n')
				   ? "Empty command"
				   : "Invalid tag";
		return -1;
	}
	if (i < n && p[i] != ' ' && p[i] != '\r') {
		*error_r = "Invalid tag";
		return -1;
	}
	if (i > IMAP_MAX_TAG) {
		*error_r = "Tag too long";
		return -1;
	}
	cmd->tag = slice_make(p, i);
	bool uid = false;
	for (;;) {
		if (i >= n || p[i] != ' ') {
			*error_r = "Missing command";
			return -1;
		}
		size_t start = ++i;
		while (i < n && is_atom_char(p[i]))
			i++;
		cmd->name = slice_make(p + start, i - start);
		if (cmd->name.n == 0) {
			*error_r = "Missing command";
			return -1;
		}
		if (uid || !slice_eq_ci(cmd->name, "UID"))
			break;
		uid = true;
	}
	cmd->uid = uid;

	struct lexer lx = {p, n, i, a, 0, NULL};
	struct arg_vector args = {NULL, 0, 0};
	if (lex_peek(&lx) == ' ') {
		lx.i++;
		if (lex_args(&lx, &args, 0, false) < 0) {
			*error_r = lx.error;
			return -1;
		}
	}
	if (lx.i + 2 != n || p[lx.i] != '\r' || p[lx.i + 1] != '\n') {
		if (lx.i < n && p[lx.i] == '\r' && lx.i + 1 < n &&
		    p[lx.i + 1] == '\n')
			*error_r = "Data after the end of the command";
		else if (lx.i < n && p[lx.i] == '\r')
			*error_r = "CR without LF";
		else if (lx.i < n && p[lx.i] == '\n')
			*error_r = "Lines must end with CRLF";
		else
			*error_r = unexpected(lex_peek(&lx), false);
		return -1;
	}
	cmd->args = args.v;
	cmd->arg_count = args.n;
	return 0;
}

/* ---- Grammar helpers ---- */

bool imap_arg_astring(const struct imap_arg *arg, struct slice *out)
{
	if (arg == NULL)
		return false;
	switch (arg->type) {
	case IMAP_ARG_ATOM:
		if (!all_chars(arg->text, is_astring_char))
			return false;
		break;
	case IMAP_ARG_LITERAL:
		if (arg->literal8)
			return false;
		break;
	case IMAP_ARG_NIL: /* the mailbox "NIL" */
	case IMAP_ARG_STRING:
		break;
	case IMAP_ARG_LIST:
	default:
		return false;
	}
	*out = arg->text;
	return true;
}

bool imap_arg_nstring(const struct imap_arg *arg, struct slice *out,
		      bool *nil_r)
{
	if (arg == NULL)
		return false;
	*nil_r = false;
	switch (arg->type) {
	case IMAP_ARG_NIL:
		*nil_r = true;
		*out = slice_make(NULL, 0);
		return true;
	case IMAP_ARG_STRING:
		*out = arg->text;
		return true;
	case IMAP_ARG_LITERAL:
		if (arg->literal8)
			return false;
		*out = arg->text;
		return true;
	default:
		return false;
	}
}

bool imap_arg_number(const struct imap_arg *arg, uint64_t max, uint64_t *out)
{
	if (arg == NULL || arg->type != IMAP_ARG_ATOM)
		return false;
	size_t i = 0;
	uint64_t v;
	if (!read_number(arg->text, &i, max, false, &v) || i != arg->text.n)
		return false;
	*out = v;
	return true;
}

/* ---- Sequence sets ---- */

static bool read_seq_number(struct slice s, size_t *i, uint32_t star,
			    uint32_t *out)
{
	if (*i < s.n && s.p[*i] == '*') {
		(*i)++;
		*out = star;
		return true;
	}
	uint64_t v;
	if (!read_number(s, i, UINT32_MAX, true, &v))
		return false;
	*out = (uint32_t)v;
	return true;
}

static int compare_ranges(const void *x, const void *y)
{
	const struct imap_range *a = x, *b = y;
	if (a->lo != b->lo)
		return a->lo < b->lo ? -1 : 1;
	return a->hi < b->hi ? -1 : a->hi > b->hi;
}

/* imap_parse_seqset, telling a full arena (*full_r) from bad syntax. */
static int parse_seqset(struct slice text, uint32_t star_value, struct arena *a,
			struct imap_seqset *out, bool *full_r)
{
	memset(out, 0, sizeof(*out));
	*full_r = false;
	if (text.n == 1 && text.p[0] == '$') {
		out->saved = true;
		return 0;
	}
	if (text.n == 0)
		return -1;
	size_t count = 1;
	for (size_t k = 0; k < text.n; k++) {
		if (text.p[k] == ',' && ++count > IMAP_MAX_SEQUENCE_RANGES)
			return -1;
	}
	struct imap_range *r = arena_alloc(a, count * sizeof(*r));
	if (r == NULL) {
		*full_r = true;
		return -1;
	}
	size_t i = 0, n = 0;
	for (;;) {
		uint32_t lo, hi;
		if (!read_seq_number(text, &i, star_value, &lo))
			return -1;
		hi = lo;
		if (i < text.n && text.p[i] == ':') {
			i++;
			if (!read_seq_number(text, &i, star_value, &hi))
				return -1;
		}
		/* "5:1" is "1:5" (RFC 9051 9, seq-range). */
		if (lo > hi) {
			uint32_t t = lo;
			lo = hi;
			hi = t;
		}
		DIJK_ASSERT(n < count);
		r[n].lo = lo;
		r[n].hi = hi;
		n++;
		if (i == text.n)
			break;
		if (text.p[i] != ',')
			return -1;
		i++;
	}
	qsort(r, n, sizeof(*r), compare_ranges);
	size_t m = 0;
	for (size_t k = 0; k < n; k++) {
		/* r[k].lo > r[m-1].hi >= 0 in the adjacency test. */
		if (m > 0 &&
		    (r[k].lo <= r[m - 1].hi || r[k].lo - 1 == r[m - 1].hi)) {
			if (r[k].hi > r[m - 1].hi)
				r[m - 1].hi = r[k].hi;
		} else {
			r[m++] = r[k];
		}
	}
	out->ranges = r;
	out->count = m;
	return 0;
}

int imap_parse_seqset(struct slice text, uint32_t star_value, struct arena *a,
		      struct imap_seqset *out)
{
	bool full;
	return parse_seqset(text, star_value, a, out, &full);
}

bool imap_seqset_contains(const struct imap_seqset *s, uint32_t n)
{
	size_t lo = 0, hi = s->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (n < s->ranges[mid].lo)
			hi = mid;
		else if (n > s->ranges[mid].hi)
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

/* ---- Flags ---- */

static const struct {
	const char *name;
	unsigned bit;
} system_flag_names[] = {
	{"\\Seen", IMAP_FLAG_SEEN},	  {"\\Answered", IMAP_FLAG_ANSWERED},
	{"\\Flagged", IMAP_FLAG_FLAGGED}, {"\\Deleted", IMAP_FLAG_DELETED},
	{"\\Draft", IMAP_FLAG_DRAFT},
};

/* The bit of a system flag "\Seen"; 0 when unknown. */
static unsigned system_flag_bit(struct slice s)
{
	for (size_t k = 0; k < ARRAY_SIZE(system_flag_names); k++) {
		if (slice_eq_ci(s, system_flag_names[k].name))
			return system_flag_names[k].bit;
	}
	return 0;
}

static bool slice_eq_ci_slice(struct slice a, struct slice b)
{
	return a.n == b.n &&
	       (a.n == 0 ||
		strncasecmp((const char *)a.p, (const char *)b.p, a.n) == 0);
}

static int compare_keywords(const void *x, const void *y)
{
	const struct slice *a = x, *b = y;
	size_t n = a->n < b->n ? a->n : b->n;
	int r = n == 0 ? 0
		       : strncasecmp((const char *)a->p, (const char *)b->p, n);
	if (r != 0 || a->n != b->n)
		return r != 0 ? r : a->n < b->n ? -1 : 1;
	/* Equal but for case: a fixed order, so the kept spelling does not
	 * depend on qsort. */
	return memcmp(a->p, b->p, n);
}

int imap_parse_flags(const struct imap_arg *arg, struct arena *a,
		     struct imap_flags *out, const char **error_r)
{
	memset(out, 0, sizeof(*out));
	const struct imap_arg *items;
	size_t count;
	if (arg != NULL &&
	    (arg->type == IMAP_ARG_ATOM || arg->type == IMAP_ARG_NIL)) {
		items = arg;
		count = 1;
	} else if (arg != NULL && arg->type == IMAP_ARG_LIST) {
		items = arg->list;
		count = arg->count;
	} else {
		*error_r = "Flags must be a flag or a list of flags";
		return -1;
	}
	struct slice *keywords = arena_alloc(a, count * sizeof(*keywords));
	if (keywords == NULL) {
		*error_r = "Command too large";
		return -1;
	}
	size_t n = 0;
	for (size_t k = 0; k < count; k++) {
		const struct imap_arg *item = &items[k];
		if (item->type != IMAP_ARG_ATOM && item->type != IMAP_ARG_NIL) {
			*error_r = "Invalid flag";
			return -1;
		}
		struct slice s = item->text;
		if (s.p[0] == '\\') {
			unsigned bit = system_flag_bit(s);
			if (bit != 0) {
				out->system_flags |= bit;
				continue;
			}
			*error_r = slice_eq_ci(s, "\\Recent")
					   ? "\\Recent cannot be set"
					   : "Unknown system flag";
			return -1;
		}
		if (!all_chars(s, is_atom_char)) {
			*error_r = "Invalid keyword";
			return -1;
		}
		keywords[n++] = s;
	}
	/* Duplicates go (keywords match case-insensitively); sorting first
	 * keeps a line of 30000 keywords from costing n^2 comparisons. */
	if (n > 1)
		qsort(keywords, n, sizeof(*keywords), compare_keywords);
	size_t unique = 0;
	for (size_t k = 0; k < n; k++) {
		if (unique == 0 ||
		    !slice_eq_ci_slice(keywords[unique - 1], keywords[k]))
			keywords[unique++] = keywords[k];
	}
	out->keywords = keywords;
	out->keyword_count = unique;
	return 0;
}

/* ---- Dates ---- */

static const char month_names[12][4] = {"Jan", "Feb", "Mar", "Apr",
					"May", "Jun", "Jul", "Aug",
					"Sep", "Oct", "Nov", "Dec"};

static bool is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int64_t y, unsigned m)
{
	static const unsigned days[12] = {31, 28, 31, 30, 31, 30,
					  31, 31, 30, 31, 30, 31};
	return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * algorithm: no tables, no time zone, no libc state). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t mp = m > 2 ? m - 3 : m + 9;
	int64_t doy = (153 * mp + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y_r, unsigned *m_r,
			    unsigned *d_r)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	unsigned m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
	*d_r = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
	*m_r = m;
	*y_r = yoe + era * 400 + (m <= 2);
}

/* Reads between min and max digits. */
static bool read_digits(struct slice s, size_t *i, size_t min, size_t max,
			unsigned *out)
{
	unsigned v = 0;
	size_t k = 0;
	while (*i < s.n && k < max && is_digit(s.p[*i])) {
		v = v * 10 + (unsigned)(s.p[*i] - '0');
		(*i)++;
		k++;
	}
	if (k < min)
		return false;
	*out = v;
	return true;
}

static bool expect_char(struct slice s, size_t *i, uint8_t c)
{
	if (*i >= s.n || s.p[*i] != c)
		return false;
	(*i)++;
	return true;
}

/* date-day "-" date-month "-" date-year; with fixed_day, date-day-fixed
 * (" 1" or "01") is taken too. */
static bool read_date_text(struct slice s, size_t *i, bool fixed_day,
			   int64_t *days_r)
{
	unsigned day, month = 0, year;
	if (fixed_day && *i < s.n && s.p[*i] == ' ') {
		(*i)++;
		if (!read_digits(s, i, 1, 1, &day))
			return false;
	} else if (!read_digits(s, i, 1, 2, &day)) {
		return false;
	}
	if (!expect_char(s, i, '-') || s.n - *i < 3)
		return false;
	struct slice name = slice_make(s.p + *i, 3);
	for (unsigned m = 0; m < 12; m++) {
		if (slice_eq_ci(name, month_names[m]))
			month = m + 1;
	}
	if (month == 0)
		return false;
	*i += 3;
	if (!expect_char(s, i, '-') || !read_digits(s, i, 4, 4, &year))
		return false;
	if (year == 0 || day == 0 || day > days_in_month(year, month))
		return false;
	*days_r = days_from_civil(year, month, day);
	return true;
}

bool imap_parse_date(struct slice text, time_t *day_start_utc_r)
{
	size_t i = 0;
	int64_t days;
	if (!read_date_text(text, &i, false, &days) || i != text.n)
		return false;
	*day_start_utc_r = (time_t)(days * 86400);
	return true;
}

bool imap_parse_date_time(struct slice text, time_t *when_r)
{
	size_t i = 0;
	int64_t days;
	unsigned hour, minute, second, zone;
	if (!read_date_text(text, &i, true, &days) ||
	    !expect_char(text, &i, ' ') ||
	    !read_digits(text, &i, 2, 2, &hour) ||
	    !expect_char(text, &i, ':') ||
	    !read_digits(text, &i, 2, 2, &minute) ||
	    !expect_char(text, &i, ':') ||
	    !read_digits(text, &i, 2, 2, &second) ||
	    !expect_char(text, &i, ' ') || i >= text.n)
		return false;
	uint8_t sign = text.p[i++];
	if ((sign != '+' && sign != '-') ||
	    !read_digits(text, &i, 4, 4, &zone) || i != text.n)
		return false;
	/* 60 is a leap second. */
	if (hour > 23 || minute > 59 || second > 60 || zone / 100 > 23 ||
	    zone % 100 > 59)
		return false;
	int64_t offset = (int64_t)(zone / 100) * 3600 + (zone % 100) * 60;
	int64_t t = days * 86400 + (int64_t)hour * 3600 + minute * 60 + second;
	*when_r = (time_t)(sign == '+' ? t - offset : t + offset);
	return true;
}

void imap_format_date_time(time_t when, struct buf *out)
{
	/* Kept within the four-digit years the grammar can write. */
	const int64_t first = days_from_civil(1, 1, 1) * 86400;
	const int64_t last = days_from_civil(9999, 12, 31) * 86400 + 86399;
	int64_t t = (int64_t)when;
	if (t < first)
		t = first;
	if (t > last)
		t = last;
	int64_t days = t / 86400, secs = t % 86400;
	if (secs < 0) {
		secs += 86400;
		days--;
	}
	int64_t year;
	unsigned month, day;
	civil_from_days(days, &year, &month, &day);
	buf_printf(out, "%02u-%s-%04" PRId64 " %02u:%02u:%02u +0000", day,
		   month_names[month - 1], year, (unsigned)(secs / 3600),
		   (unsigned)(secs / 60 % 60), (unsigned)(secs % 60));
}

/* ---- Modified UTF-7 (RFC 3501 5.1.3) ---- */

static const char mutf7_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int mutf7_value(uint8_t c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == ',')
		return 63;
	return -1;
}

static void append_utf8(struct buf *out, uint32_t cp)
{
	uint8_t b[4];
	size_t n;
	if (cp < 0x80) {
		b[0] = (uint8_t)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (uint8_t)(0xc0 | cp >> 6);
		b[1] = (uint8_t)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (uint8_t)(0xe0 | cp >> 12);
		b[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
		b[2] = (uint8_t)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (uint8_t)(0xf0 | cp >> 18);
		b[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3f));
		b[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
		b[3] = (uint8_t)(0x80 | (cp & 0x3f));
		n = 4;
	}
	buf_append(out, b, n);
}

/* Decodes the base64 run s (between "&" and "-") as UTF-16. Refuses what
 * an encoder would not write: printable ASCII, NUL, broken surrogates,
 * leftover bits (a longer run than needed or nonzero padding). */
static bool mutf7_decode_run(struct slice s, struct buf *out)
{
	uint32_t bits = 0, high = 0;
	unsigned nbits = 0;
	for (size_t k = 0; k < s.n; k++) {
		bits = bits << 6 | (uint32_t)mutf7_value(s.p[k]);
		nbits += 6;
		if (nbits < 16)
			continue;
		nbits -= 16;
		uint32_t unit = bits >> nbits & 0xffff;
		bits &= (1u << nbits) - 1;
		if (high != 0) {
			if (unit < 0xdc00 || unit > 0xdfff)
				return false;
			append_utf8(out, 0x10000 + ((high - 0xd800) << 10) +
						 (unit - 0xdc00));
			high = 0;
		} else if (unit >= 0xd800 && unit <= 0xdbff) {
			high = unit;
		} else if (unit >= 0xdc00 && unit <= 0xdfff) {
			return false;
		} else if (unit == 0 || (unit >= 0x20 && unit <= 0x7e)) {
			return false;
		} else {
			append_utf8(out, unit);
		}
	}
	return high == 0 && nbits < 6 && bits == 0;
}

bool imap_mutf7_decode(struct slice in, struct buf *out)
{
	size_t mark = out->n;
	if (slice_eq_ci(in, "INBOX"))
		return buf_append_cstr(out, "INBOX");
	size_t i = 0;
	bool after_run = false;
	while (i < in.n) {
		uint8_t c = in.p[i];
		if (c < 0x20 || c > 0x7e)
			goto fail;
		if (c != '&') {
			buf_append(out, &c, 1);
			after_run = false;
			i++;
			continue;
		}
		size_t start = ++i;
		while (i < in.n && in.p[i] != '-') {
			if (mutf7_value(in.p[i]) < 0)
				goto fail;
			i++;
		}
		if (i == in.n)
			goto fail;
		if (i == start) {
			buf_append(out, "&", 1);
			after_run = false;
		} else {
			/* "&AOk-&AOk-" is "&AOkA6Q-" written twice as long:
			 * one spelling per name. */
			if (after_run)
				goto fail;
			if (!mutf7_decode_run(
				    slice_make(in.p + start, i - start), out))
				goto fail;
			after_run = true;
		}
		i++;
	}
	if (buf_overflowed(out))
		goto fail;
	return true;
fail:
	out->n = mark < out->n ? mark : out->n;
	return false;
}

/* The next code point of s at *i; an invalid byte reads as U+FFFD. */
static uint32_t utf8_next(struct slice s, size_t *i)
{
	uint8_t c = s.p[*i];
	size_t len;
	uint32_t cp;
	if (c < 0x80) {
		(*i)++;
		return c;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else {
		(*i)++;
		return 0xfffd;
	}
	if (s.n - *i < len || !utf8_valid(slice_make(s.p + *i, len))) {
		(*i)++;
		return 0xfffd;
	}
	for (size_t k = 1; k < len; k++)
		cp = cp << 6 | (s.p[*i + k] & 0x3f);
	*i += len;
	return cp;
}

void imap_mutf7_encode(struct slice utf8, struct buf *out)
{
	size_t i = 0;
	bool in_run = false;
	uint32_t bits = 0;
	unsigned nbits = 0;
	while (i < utf8.n) {
		uint32_t cp = utf8_next(utf8, &i);
		if (cp >= 0x20 && cp <= 0x7e) {
			if (in_run) {
				if (nbits > 0)
					buf_append(
						out,
						&mutf7_alphabet
							[bits << (6 - nbits) &
							 0x3f],
						1);
				buf_append(out, "-", 1);
				in_run = false;
			}
			if (cp == '&')
				buf_append(out, "&-", 2);
			else
				buf_append(out, &(uint8_t){(uint8_t)cp}, 1);
			continue;
		}
		if (!in_run) {
			buf_append(out, "&", 1);
			in_run = true;
			bits = 0;
			nbits = 0;
		}
		uint32_t units[2];
		size_t count = 0;
		if (cp >= 0x10000) {
			units[count++] = 0xd800 + ((cp - 0x10000) >> 10);
			units[count++] = 0xdc00 + ((cp - 0x10000) & 0x3ff);
		} else {
			units[count++] = cp;
		}
		for (size_t k = 0; k < count; k++) {
			bits = bits << 16 | units[k];
			nbits += 16;
			while (nbits >= 6) {
				nbits -= 6;
				buf_append(
					out,
					&mutf7_alphabet[bits >> nbits & 0x3f],
					1);
			}
			bits &= (1u << nbits) - 1;
		}
	}
	if (in_run) {
		if (nbits > 0)
			buf_append(out,
				   &mutf7_alphabet[bits << (6 - nbits) & 0x3f],
				   1);
		buf_append(out, "-", 1);
	}
}

/* ---- Strings in responses ---- */

void imap_append_string(struct buf *out, struct slice s, bool allow_utf8)
{
	bool quoted = s.n <= IMAP_MAX_QUOTED_OUT;
	bool eight_bit = false;
	for (size_t k = 0; k < s.n && quoted; k++) {
		uint8_t c = s.p[k];
		if (c == 0 || c == '\r' || c == '\n')
			quoted = false;
		else if (c >= 0x80)
			eight_bit = true;
	}
	if (quoted && eight_bit && (!allow_utf8 || !utf8_valid(s)))
		quoted = false;
	if (!quoted) {
		/* A NUL cannot be sent in a literal either (CHAR8); the
		 * callers' data (header values, names) is not supposed to
		 * hold one, and a literal at least keeps the framing. */
		buf_printf(out, "{%zu}\r\n", s.n);
		buf_append_slice(out, s);
		return;
	}
	buf_append(out, "\"", 1);
	size_t run = 0;
	for (size_t k = 0; k < s.n; k++) {
		if (s.p[k] != '"' && s.p[k] != '\\')
			continue;
		buf_append(out, s.p + run, k - run);
		buf_append(out, "\\", 1);
		run = k;
	}
	buf_append(out, s.p + run, s.n - run);
	buf_append(out, "\"", 1);
}

void imap_append_nstring(struct buf *out, const struct slice *s,
			 bool allow_utf8)
{
	if (s == NULL)
		buf_append_cstr(out, "NIL");
	else
		imap_append_string(out, *s, allow_utf8);
}

/* ---- FETCH ---- */

static const struct fetch_name {
	const char *name;
	enum imap_fetch_kind kind;
	bool peek;
	enum mime_section_kind section;
} fetch_names[] = {
	{"FLAGS", IMAP_FETCH_FLAGS, false, MIME_SECTION_ALL},
	{"UID", IMAP_FETCH_UID, false, MIME_SECTION_ALL},
	{"INTERNALDATE", IMAP_FETCH_INTERNALDATE, false, MIME_SECTION_ALL},
	{"RFC822.SIZE", IMAP_FETCH_RFC822_SIZE, false, MIME_SECTION_ALL},
	{"ENVELOPE", IMAP_FETCH_ENVELOPE, false, MIME_SECTION_ALL},
	{"BODYSTRUCTURE", IMAP_FETCH_BODYSTRUCTURE, false, MIME_SECTION_ALL},
	{"BODY", IMAP_FETCH_BODY_STRUCTURE_NONEXT, false, MIME_SECTION_ALL},
	{"RFC822", IMAP_FETCH_RFC822, false, MIME_SECTION_ALL},
	{"RFC822.HEADER", IMAP_FETCH_RFC822_HEADER, true, MIME_SECTION_HEADER},
	{"RFC822.TEXT", IMAP_FETCH_RFC822_TEXT, false, MIME_SECTION_TEXT},
	{"MODSEQ", IMAP_FETCH_MODSEQ, false, MIME_SECTION_ALL},
};

/* RFC 3501 6.4.5 macros; not allowed inside a list. */
static const struct fetch_macro {
	const char *name;
	const char *items[5];
	size_t count;
} fetch_macros[] = {
	{"ALL", {"FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"}, 4},
	{"FAST", {"FLAGS", "INTERNALDATE", "RFC822.SIZE"}, 3},
	{"FULL",
	 {"FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"},
	 5},
};

static const struct fetch_name *find_fetch_name(struct slice s)
{
	for (size_t k = 0; k < ARRAY_SIZE(fetch_names); k++) {
		if (slice_eq_ci(s, fetch_names[k].name))
			return &fetch_names[k];
	}
	return NULL;
}

static void set_simple_item(struct imap_fetch_item *item,
			    const struct fetch_name *def)
{
	memset(item, 0, sizeof(*item));
	item->kind = def->kind;
	item->peek = def->peek;
	item->section = def->section;
	item->response_name = slice_cstr(def->name);
}

/* Bytes of a response name, in an arena buffer sized in advance. */
struct writer {
	uint8_t *p;
	size_t n, cap;
};

static void write_bytes(struct writer *w, const void *p, size_t n)
{
	DIJK_ASSERT(n <= w->cap - w->n);
	memcpy(w->p + w->n, p, n);
	w->n += n;
}

static void write_cstr(struct writer *w, const char *s)
{
	write_bytes(w, s, strlen(s));
}

static void write_number(struct writer *w, uint64_t v)
{
	char digits[24];
	int len = snprintf(digits, sizeof(digits), "%" PRIu64, v);
	DIJK_ASSERT(len > 0 && (size_t)len < sizeof(digits));
	write_bytes(w, digits, (size_t)len);
}

/* A header field name as an astring: an atom when it can be one and
 * holds no ']' (which would end the section for the client). */
static void write_astring(struct writer *w, struct slice s)
{
	if (all_chars(s, is_atom_char)) {
		write_bytes(w, s.p, s.n);
		return;
	}
	write_bytes(w, "\"", 1);
	for (size_t k = 0; k < s.n; k++) {
		if (s.p[k] == '"' || s.p[k] == '\\')
			write_bytes(w, "\\", 1);
		write_bytes(w, &s.p[k], 1);
	}
	write_bytes(w, "\"", 1);
}

static const char *section_kind_name(enum mime_section_kind kind)
{
	switch (kind) {
	case MIME_SECTION_HEADER:
		return "HEADER";
	case MIME_SECTION_HEADER_FIELDS:
		return "HEADER.FIELDS";
	case MIME_SECTION_HEADER_FIELDS_NOT:
		return "HEADER.FIELDS.NOT";
	case MIME_SECTION_TEXT:
		return "TEXT";
	case MIME_SECTION_MIME:
		return "MIME";
	case MIME_SECTION_ALL:
	default:
		return "";
	}
}

/* header-list: "(" header-fld-name *(SP header-fld-name) ")", from s[*i]
 * at the '('; the names are atoms or quoted strings. */
static int parse_header_list(struct slice s, size_t *i, struct arena *a,
			     struct imap_fetch_item *item, const char **error_r)
{
	*error_r = "Invalid header list";
	if (*i >= s.n || s.p[*i] != '(')
		return -1;
	(*i)++;
	size_t max = 1;
	for (size_t k = *i; k < s.n; k++)
		max += s.p[k] == ' ';
	struct slice *fields = arena_alloc(a, max * sizeof(*fields));
	if (fields == NULL) {
		*error_r = "Command too large";
		return -1;
	}
	size_t n = 0;
	for (;;) {
		struct slice name;
		size_t start = *i;
		if (*i < s.n && s.p[*i] == '"') {
			bool escapes;
			if (scan_quoted(s.p, s.n, i, &escapes) != NULL)
				return -1;
			if (unquote(a, s.p, start, *i, escapes, &name) < 0) {
				*error_r = "Command too large";
				return -1;
			}
		} else {
			while (*i < s.n && is_astring_char(s.p[*i]) &&
			       s.p[*i] != ']')
				(*i)++;
			name = slice_make(s.p + start, *i - start);
		}
		if (!all_chars(name, is_field_char)) {
			*error_r = "Invalid header field name";
			return -1;
		}
		DIJK_ASSERT(n < max);
		fields[n++] = name;
		if (*i < s.n && s.p[*i] == ' ') {
			(*i)++;
			continue;
		}
		if (*i < s.n && s.p[*i] == ')') {
			(*i)++;
			break;
		}
		return -1;
	}
	item->fields = fields;
	item->field_count = n;
	return 0;
}

/* section-spec (RFC 3501 9), or section-binary (RFC 3516) when binary. */
static int parse_section(struct slice s, bool binary, struct arena *a,
			 struct imap_fetch_item *item, const char **error_r)
{
	size_t i = 0;
	bool need_text = false;
	item->section = MIME_SECTION_ALL;
	*error_r = "Invalid section";
	if (s.n > 0 && is_digit(s.p[0])) {
		for (;;) {
			uint64_t part;
			if (!read_number(s, &i, UINT32_MAX, true, &part))
				return -1;
			if (item->part_count == MIME_MAX_DEPTH) {
				*error_r = "Section nested too deeply";
				return -1;
			}
			item->parts[item->part_count++] = (uint32_t)part;
			if (i == s.n)
				break;
			if (s.p[i] != '.')
				return -1;
			i++;
			if (i < s.n && is_digit(s.p[i]))
				continue;
			need_text = true;
			break;
		}
	}
	if (i == s.n)
		return need_text ? -1 : 0;
	if (binary)
		return -1;
	size_t k = i;
	while (k < s.n && s.p[k] != ' ')
		k++;
	struct slice word = slice_make(s.p + i, k - i);
	if (slice_eq_ci(word, "HEADER")) {
		item->section = MIME_SECTION_HEADER;
	} else if (slice_eq_ci(word, "TEXT")) {
		item->section = MIME_SECTION_TEXT;
	} else if (slice_eq_ci(word, "MIME") && item->part_count > 0) {
		item->section = MIME_SECTION_MIME;
	} else if (slice_eq_ci(word, "HEADER.FIELDS")) {
		item->section = MIME_SECTION_HEADER_FIELDS;
	} else if (slice_eq_ci(word, "HEADER.FIELDS.NOT")) {
		item->section = MIME_SECTION_HEADER_FIELDS_NOT;
	} else {
		return -1;
	}
	if (item->section != MIME_SECTION_HEADER_FIELDS &&
	    item->section != MIME_SECTION_HEADER_FIELDS_NOT)
		return k == s.n ? 0 : -1;
	if (k == s.n)
		return -1;
	i = k + 1;
	if (parse_header_list(s, &i, a, item, error_r) < 0)
		return -1;
	if (i != s.n) {
		*error_r = "Invalid section";
		return -1;
	}
	return 0;
}

/* "<" number "." nz-number ">" */
static int parse_partial(struct slice s, struct imap_fetch_item *item)
{
	size_t i = 0;
	if (!expect_char(s, &i, '<') ||
	    !read_number(s, &i, IMAP_NUMBER64_MAX, false,
			 &item->partial_start) ||
	    !expect_char(s, &i, '.') ||
	    !read_number(s, &i, IMAP_NUMBER64_MAX, true,
			 &item->partial_length) ||
	    !expect_char(s, &i, '>') || i != s.n)
		return -1;
	item->partial = true;
	return 0;
}

static int build_response_name(struct slice text, const char *base,
			       struct arena *a, struct imap_fetch_item *item)
{
	struct writer w = {NULL, 0, text.n * 2 + RESPONSE_NAME_SLACK};
	w.p = arena_alloc(a, w.cap);
	if (w.p == NULL)
		return -1;
	write_cstr(&w, base);
	write_bytes(&w, "[", 1);
	for (size_t k = 0; k < item->part_count; k++) {
		if (k > 0)
			write_bytes(&w, ".", 1);
		write_number(&w, item->parts[k]);
	}
	if (item->section != MIME_SECTION_ALL) {
		if (item->part_count > 0)
			write_bytes(&w, ".", 1);
		write_cstr(&w, section_kind_name(item->section));
	}
	if (item->field_count > 0) {
		write_bytes(&w, " (", 2);
		for (size_t k = 0; k < item->field_count; k++) {
			if (k > 0)
				write_bytes(&w, " ", 1);
			write_astring(&w, item->fields[k]);
		}
		write_bytes(&w, ")", 1);
	}
	write_bytes(&w, "]", 1);
	if (item->partial) {
		write_bytes(&w, "<", 1);
		write_number(&w, item->partial_start);
		write_bytes(&w, ">", 1);
	}
	item->response_name = slice_make(w.p, w.n);
	return 0;
}

static int parse_fetch_item(struct slice text, struct arena *a,
			    struct imap_fetch_item *item, const char **error_r)
{
	memset(item, 0, sizeof(*item));
	const uint8_t *lb = memchr(text.p, '[', text.n);
	if (lb == NULL) {
		const struct fetch_name *def = find_fetch_name(text);
		if (def != NULL) {
			set_simple_item(item, def);
			return 0;
		}
		*error_r = slice_eq_ci(text, "SAVEDATE")
				   ? "SAVEDATE is not supported"
				   : "Unknown FETCH item";
		return -1;
	}
	struct slice prefix = slice_make(text.p, (size_t)(lb - text.p));
	const char *base;
	if (slice_eq_ci(prefix, "BODY") || slice_eq_ci(prefix, "BODY.PEEK")) {
		item->kind = IMAP_FETCH_BODY_SECTION;
		base = "BODY";
	} else if (slice_eq_ci(prefix, "BINARY") ||
		   slice_eq_ci(prefix, "BINARY.PEEK")) {
		item->kind = IMAP_FETCH_BINARY;
		base = "BINARY";
	} else if (slice_eq_ci(prefix, "BINARY.SIZE")) {
		item->kind = IMAP_FETCH_BINARY_SIZE;
		base = "BINARY.SIZE";
	} else {
		*error_r = "Unknown FETCH item";
		return -1;
	}
	item->peek =
		prefix.n > 5 &&
		slice_eq_ci(slice_make(prefix.p + prefix.n - 5, 5), ".PEEK");
	/* The closing ']' is the first outside a quoted string. */
	size_t i = prefix.n + 1;
	while (i < text.n && text.p[i] != ']') {
		bool escapes;
		if (text.p[i] != '"')
			i++;
		else if (scan_quoted(text.p, text.n, &i, &escapes) != NULL)
			break;
	}
	if (i >= text.n || text.p[i] != ']') {
		*error_r = "Unterminated section";
		return -1;
	}
	struct slice inner =
		slice_make(text.p + prefix.n + 1, i - prefix.n - 1);
	struct slice rest = slice_make(text.p + i + 1, text.n - i - 1);
	if (parse_section(inner, item->kind != IMAP_FETCH_BODY_SECTION, a, item,
			  error_r) < 0)
		return -1;
	if (rest.n > 0 && (item->kind == IMAP_FETCH_BINARY_SIZE ||
			   parse_partial(rest, item) < 0)) {
		*error_r = "Invalid partial range";
		return -1;
	}
	if (build_response_name(text, base, a, item) < 0) {
		*error_r = "Command too large";
		return -1;
	}
	return 0;
}

static int parse_fetch_modifiers(const struct imap_arg *arg,
				 struct imap_fetch *out, const char **error_r)
{
	if (arg->type != IMAP_ARG_LIST || arg->count == 0) {
		*error_r = "Invalid FETCH modifiers";
		return -1;
	}
	for (size_t k = 0; k < arg->count; k++) {
		const struct imap_arg *m = &arg->list[k];
		if (m->type == IMAP_ARG_ATOM &&
		    slice_eq_ci(m->text, "CHANGEDSINCE")) {
			/* RFC 7162 asks for a positive mod-sequence-value;
			 * 0 ("everything") is taken as clients send it. */
			if (out->changedsince || k + 1 >= arg->count ||
			    !imap_arg_number(&m[1], IMAP_NUMBER64_MAX,
					     &out->changedsince_modseq)) {
				*error_r = "Invalid CHANGEDSINCE";
				return -1;
			}
			out->changedsince = true;
			k++;
		} else if (m->type == IMAP_ARG_ATOM &&
			   slice_eq_ci(m->text, "VANISHED")) {
			if (out->vanished) {
				*error_r = "VANISHED given twice";
				return -1;
			}
			out->vanished = true;
		} else {
			*error_r = "Unknown FETCH modifier";
			return -1;
		}
	}
	/* RFC 7162 3.2.6: VANISHED without CHANGEDSINCE is BAD. */
	if (out->vanished && !out->changedsince) {
		*error_r = "VANISHED needs CHANGEDSINCE";
		return -1;
	}
	return 0;
}

int imap_parse_fetch(const struct imap_arg *attrs,
		     const struct imap_arg *modifiers, struct arena *a,
		     struct imap_fetch *out, const char **error_r)
{
	memset(out, 0, sizeof(*out));
	if (attrs == NULL) {
		*error_r = "Missing FETCH items";
		return -1;
	}
	const struct imap_arg *items;
	size_t count;
	if (attrs->type == IMAP_ARG_ATOM) {
		for (size_t k = 0; k < ARRAY_SIZE(fetch_macros); k++) {
			const struct fetch_macro *m = &fetch_macros[k];
			if (!slice_eq_ci(attrs->text, m->name))
				continue;
			out->items =
				arena_alloc(a, m->count * sizeof(*out->items));
			if (out->items == NULL) {
				*error_r = "Command too large";
				return -1;
			}
			for (size_t j = 0; j < m->count; j++) {
				set_simple_item(&out->items[j],
						find_fetch_name(slice_cstr(
							m->items[j])));
			}
			out->count = m->count;
			goto items_done;
		}
		items = attrs;
		count = 1;
	} else if (attrs->type == IMAP_ARG_LIST && attrs->count > 0) {
		items = attrs->list;
		count = attrs->count;
	} else {
		*error_r = "Invalid FETCH items";
		return -1;
	}
	out->items = arena_alloc(a, count * sizeof(*out->items));
	if (out->items == NULL) {
		*error_r = "Command too large";
		return -1;
	}
	for (size_t k = 0; k < count; k++) {
		if (items[k].type != IMAP_ARG_ATOM) {
			*error_r = "Invalid FETCH item";
			return -1;
		}
		if (parse_fetch_item(items[k].text, a, &out->items[k],
				     error_r) < 0)
			return -1;
	}
	out->count = count;
items_done:
	if (modifiers != NULL &&
	    parse_fetch_modifiers(modifiers, out, error_r) < 0)
		return -1;
	return 0;
}

/* ---- SEARCH ---- */

enum search_arg {
	SEARCH_ARG_NONE,
	SEARCH_ARG_STRING,	 /* BODY, TEXT */
	SEARCH_ARG_FIELD_STRING, /* FROM ... SUBJECT: HEADER with that name */
	SEARCH_ARG_HEADER,	 /* field-name string */
	SEARCH_ARG_DATE,
	SEARCH_ARG_NUMBER,
	SEARCH_ARG_KEYWORD,
	SEARCH_ARG_UIDSET,
	SEARCH_ARG_NOT,
	SEARCH_ARG_OR,
	SEARCH_ARG_MODSEQ,
};

static const struct search_key_def {
	const char *name;
	enum imap_search_kind kind;
	enum search_arg arg;
	unsigned flag;
} search_keys[] = {
	{"ALL", IMAP_SEARCH_ALL, SEARCH_ARG_NONE, 0},
	{"ANSWERED", IMAP_SEARCH_FLAG, SEARCH_ARG_NONE, IMAP_FLAG_ANSWERED},
	{"BCC", IMAP_SEARCH_HEADER, SEARCH_ARG_FIELD_STRING, 0},
	{"BEFORE", IMAP_SEARCH_BEFORE, SEARCH_ARG_DATE, 0},
	{"BODY", IMAP_SEARCH_BODY, SEARCH_ARG_STRING, 0},
	{"CC", IMAP_SEARCH_HEADER, SEARCH_ARG_FIELD_STRING, 0},
	{"DELETED", IMAP_SEARCH_FLAG, SEARCH_ARG_NONE, IMAP_FLAG_DELETED},
	{"DRAFT", IMAP_SEARCH_FLAG, SEARCH_ARG_NONE, IMAP_FLAG_DRAFT},
	{"FLAGGED", IMAP_SEARCH_FLAG, SEARCH_ARG_NONE, IMAP_FLAG_FLAGGED},
	{"FROM", IMAP_SEARCH_HEADER, SEARCH_ARG_FIELD_STRING, 0},
	{"HEADER", IMAP_SEARCH_HEADER, SEARCH_ARG_HEADER, 0},
	{"KEYWORD", IMAP_SEARCH_KEYWORD, SEARCH_ARG_KEYWORD, 0},
	{"LARGER", IMAP_SEARCH_LARGER, SEARCH_ARG_NUMBER, 0},
	{"MODSEQ", IMAP_SEARCH_MODSEQ, SEARCH_ARG_MODSEQ, 0},
	{"NEW", IMAP_SEARCH_NEW, SEARCH_ARG_NONE, 0},
	{"NOT", IMAP_SEARCH_NOT, SEARCH_ARG_NOT, 0},
	{"OLD", IMAP_SEARCH_OLD, SEARCH_ARG_NONE, 0},
	{"ON", IMAP_SEARCH_ON, SEARCH_ARG_DATE, 0},
	{"OR", IMAP_SEARCH_OR, SEARCH_ARG_OR, 0},
	{"RECENT", IMAP_SEARCH_RECENT, SEARCH_ARG_NONE, 0},
	{"SEEN", IMAP_SEARCH_FLAG, SEARCH_ARG_NONE, IMAP_FLAG_SEEN},
	{"SENTBEFORE", IMAP_SEARCH_SENTBEFORE, SEARCH_ARG_DATE, 0},
	{"SENTON", IMAP_SEARCH_SENTON, SEARCH_ARG_DATE, 0},
	{"SENTSINCE", IMAP_SEARCH_SENTSINCE, SEARCH_ARG_DATE, 0},
	{"SINCE", IMAP_SEARCH_SINCE, SEARCH_ARG_DATE, 0},
	{"SMALLER", IMAP_SEARCH_SMALLER, SEARCH_ARG_NUMBER, 0},
	{"SUBJECT", IMAP_SEARCH_HEADER, SEARCH_ARG_FIELD_STRING, 0},
	{"TEXT", IMAP_SEARCH_TEXT, SEARCH_ARG_STRING, 0},
	{"TO", IMAP_SEARCH_HEADER, SEARCH_ARG_FIELD_STRING, 0},
	{"UID", IMAP_SEARCH_UIDSET, SEARCH_ARG_UIDSET, 0},
	{"UNANSWERED", IMAP_SEARCH_NOT_FLAG, SEARCH_ARG_NONE,
	 IMAP_FLAG_ANSWERED},
	{"UNDELETED", IMAP_SEARCH_NOT_FLAG, SEARCH_ARG_NONE, IMAP_FLAG_DELETED},
	{"UNDRAFT", IMAP_SEARCH_NOT_FLAG, SEARCH_ARG_NONE, IMAP_FLAG_DRAFT},
	{"UNFLAGGED", IMAP_SEARCH_NOT_FLAG, SEARCH_ARG_NONE, IMAP_FLAG_FLAGGED},
	{"UNKEYWORD", IMAP_SEARCH_UNKEYWORD, SEARCH_ARG_KEYWORD, 0},
	{"UNSEEN", IMAP_SEARCH_NOT_FLAG, SEARCH_ARG_NONE, IMAP_FLAG_SEEN},
};

struct search_parser {
	const struct imap_arg *args;
	size_t count;
	size_t i;
	uint32_t star_value, uid_star;
	struct arena *a;
	const char *error;
};

static int search_fail(struct search_parser *sp, const char *error)
{
	if (sp->error == NULL)
		sp->error = error;
	return -1;
}

static const struct imap_arg *search_next(struct search_parser *sp)
{
	return sp->i < sp->count ? &sp->args[sp->i++] : NULL;
}

static struct imap_search_key *new_keys(struct search_parser *sp, size_t n)
{
	struct imap_search_key *keys = arena_alloc(sp->a, n * sizeof(*keys));
	if (keys == NULL)
		search_fail(sp, "Command too large");
	return keys;
}

static int parse_search_key(struct search_parser *sp,
			    struct imap_search_key *key, unsigned depth);

/* Every key of args[0..count) under an AND node. */
static int parse_search_program(struct search_parser *sp,
				const struct imap_arg *args, size_t count,
				struct imap_search_key *and_node,
				unsigned depth)
{
	if (count == 0)
		return search_fail(sp, "Missing search key");
	struct search_parser sub = *sp;
	sub.args = args;
	sub.count = count;
	sub.i = 0;
	and_node->kind = IMAP_SEARCH_AND;
	and_node->children = new_keys(sp, count);
	if (and_node->children == NULL)
		return -1;
	size_t n = 0;
	while (sub.i < sub.count) {
		if (parse_search_key(&sub, &and_node->children[n++], depth) <
		    0) {
			sp->error = sub.error;
			return -1;
		}
	}
	and_node->child_count = n;
	return 0;
}

/* "/flags/" attr-flag of RFC 7162 search-modseq-ext: the flag's name. */
static bool modseq_entry_flag(struct slice entry, struct slice *flag_r)
{
	if (!slice_prefix_ci(entry, "/flags/"))
		return false;
	struct slice flag = slice_make(entry.p + 7, entry.n - 7);
	struct slice name = flag;
	if (flag.n > 0 && flag.p[0] == '\\')
		name = slice_make(flag.p + 1, flag.n - 1);
	if (!all_chars(name, is_atom_char))
		return false;
	*flag_r = flag;
	return true;
}

static int parse_search_string(struct search_parser *sp, struct slice *out)
{
	if (!imap_arg_astring(search_next(sp), out))
		return search_fail(sp, "Missing or invalid search string");
	return 0;
}

static int parse_search_arg(struct search_parser *sp,
			    const struct search_key_def *def,
			    struct imap_search_key *key, unsigned depth)
{
	const struct imap_arg *arg;
	bool full;
	switch (def->arg) {
	case SEARCH_ARG_NONE:
		return 0;
	case SEARCH_ARG_STRING:
		return parse_search_string(sp, &key->value);
	case SEARCH_ARG_FIELD_STRING:
		return parse_search_string(sp, &key->value);
	case SEARCH_ARG_HEADER:
		if (parse_search_string(sp, &key->field) < 0)
			return -1;
		if (!all_chars(key->field, is_field_char))
			return search_fail(sp, "Invalid header field name");
		return parse_search_string(sp, &key->value);
	case SEARCH_ARG_DATE:
		arg = search_next(sp);
		if (arg == NULL ||
		    (arg->type != IMAP_ARG_ATOM &&
		     arg->type != IMAP_ARG_STRING) ||
		    !imap_parse_date(arg->text, &key->date))
			return search_fail(sp, "Invalid search date");
		return 0;
	case SEARCH_ARG_NUMBER:
		if (!imap_arg_number(search_next(sp), IMAP_NUMBER64_MAX,
				     &key->number))
			return search_fail(sp, "Invalid search size");
		return 0;
	case SEARCH_ARG_KEYWORD:
		arg = search_next(sp);
		if (arg == NULL ||
		    (arg->type != IMAP_ARG_ATOM && arg->type != IMAP_ARG_NIL) ||
		    !all_chars(arg->text, is_atom_char))
			return search_fail(sp, "Invalid keyword");
		key->value = arg->text;
		return 0;
	case SEARCH_ARG_UIDSET:
		arg = search_next(sp);
		if (arg == NULL || arg->type != IMAP_ARG_ATOM)
			return search_fail(sp, "Invalid UID set");
		if (parse_seqset(arg->text, sp->uid_star, sp->a, &key->set,
				 &full) < 0)
			return search_fail(sp, full ? "Command too large"
						    : "Invalid UID set");
		if (key->set.saved)
			key->kind = IMAP_SEARCH_SAVED;
		return 0;
	case SEARCH_ARG_NOT:
		key->children = new_keys(sp, 1);
		if (key->children == NULL)
			return -1;
		key->child_count = 1;
		return parse_search_key(sp, &key->children[0], depth + 1);
	case SEARCH_ARG_OR:
		key->children = new_keys(sp, 2);
		if (key->children == NULL)
			return -1;
		key->child_count = 2;
		if (parse_search_key(sp, &key->children[0], depth + 1) < 0)
			return -1;
		return parse_search_key(sp, &key->children[1], depth + 1);
	case SEARCH_ARG_MODSEQ:
		arg = search_next(sp);
		/* [entry-name entry-type-req]: dijk keeps one mod-sequence
		 * per message, so the entry only names a flag. */
		if (arg != NULL && (arg->type == IMAP_ARG_STRING ||
				    arg->type == IMAP_ARG_LITERAL)) {
			if (!modseq_entry_flag(arg->text, &key->value))
				return search_fail(sp, "Invalid MODSEQ entry");
			arg = search_next(sp);
			if (arg == NULL || arg->type != IMAP_ARG_ATOM ||
			    !(slice_eq_ci(arg->text, "priv") ||
			      slice_eq_ci(arg->text, "shared") ||
			      slice_eq_ci(arg->text, "all")))
				return search_fail(sp,
						   "Invalid MODSEQ entry type");
			arg = search_next(sp);
		}
		if (!imap_arg_number(arg, IMAP_NUMBER64_MAX, &key->number))
			return search_fail(sp, "Invalid MODSEQ value");
		return 0;
	}
	return search_fail(sp, "Invalid search key");
}

static int parse_search_key(struct search_parser *sp,
			    struct imap_search_key *key, unsigned depth)
{
	memset(key, 0, sizeof(*key));
	if (depth > IMAP_MAX_SEARCH_DEPTH)
		return search_fail(sp, "Search nested too deeply");
	const struct imap_arg *arg = search_next(sp);
	if (arg == NULL)
		return search_fail(sp, "Missing search key");
	if (arg->type == IMAP_ARG_LIST)
		return parse_search_program(sp, arg->list, arg->count, key,
					    depth + 1);
	if (arg->type != IMAP_ARG_ATOM)
		return search_fail(sp, "Invalid search key");
	struct slice name = arg->text;
	uint8_t c = name.p[0];
	if (is_digit(c) || c == '*' || c == '$') {
		bool full;
		if (parse_seqset(name, sp->star_value, sp->a, &key->set,
				 &full) < 0)
			return search_fail(sp, full ? "Command too large"
						    : "Invalid sequence set");
		key->kind =
			key->set.saved ? IMAP_SEARCH_SAVED : IMAP_SEARCH_SEQSET;
		return 0;
	}
	for (size_t k = 0; k < ARRAY_SIZE(search_keys); k++) {
		const struct search_key_def *def = &search_keys[k];
		if (!slice_eq_ci(name, def->name))
			continue;
		key->kind = def->kind;
		key->flags = def->flag;
		if (def->arg == SEARCH_ARG_FIELD_STRING)
			key->field = name;
		return parse_search_arg(sp, def, key, depth);
	}
	return search_fail(sp, "Unknown search key");
}

int imap_parse_search(const struct imap_arg *args, size_t count,
		      uint32_t star_value, uint32_t uid_star, struct arena *a,
		      struct imap_search *out, const char **error_r)
{
	memset(out, 0, sizeof(*out));
	struct search_parser sp = {args,     count, 0,	 star_value,
				   uid_star, a,	    NULL};
	if (count > 0 && args[0].type == IMAP_ARG_ATOM &&
	    slice_eq_ci(args[0].text, "RETURN")) {
		const struct imap_arg *opts = count > 1 ? &args[1] : NULL;
		if (opts == NULL || opts->type != IMAP_ARG_LIST) {
			*error_r = "RETURN needs a list of options";
			return -1;
		}
		out->esearch = true;
		for (size_t k = 0; k < opts->count; k++) {
			const struct imap_arg *o = &opts->list[k];
			bool *flag = NULL;
			if (o->type != IMAP_ARG_ATOM)
				flag = NULL;
			else if (slice_eq_ci(o->text, "MIN"))
				flag = &out->return_min;
			else if (slice_eq_ci(o->text, "MAX"))
				flag = &out->return_max;
			else if (slice_eq_ci(o->text, "ALL"))
				flag = &out->return_all;
			else if (slice_eq_ci(o->text, "COUNT"))
				flag = &out->return_count;
			else if (slice_eq_ci(o->text, "SAVE"))
				flag = &out->return_save;
			if (flag == NULL) {
				*error_r = "Unknown RETURN option";
				return -1;
			}
			*flag = true;
		}
		/* RFC 4731 3.1: "RETURN ()" is "RETURN (ALL)". */
		if (opts->count == 0)
			out->return_all = true;
		sp.i = 2;
	}
	if (sp.i < count && args[sp.i].type == IMAP_ARG_ATOM &&
	    slice_eq_ci(args[sp.i].text, "CHARSET")) {
		sp.i++;
		const struct imap_arg *charset = search_next(&sp);
		if (!imap_arg_astring(charset, &out->charset) ||
		    out->charset.n == 0) {
			*error_r = "Missing or invalid charset";
			return -1;
		}
	}
	/* args is NULL when the command had none. */
	if (sp.i >= count) {
		*error_r = "Missing search key";
		return -1;
	}
	if (parse_search_program(&sp, args + sp.i, count - sp.i, &out->root,
				 1) < 0) {
		*error_r = sp.error;
		return -1;
	}
	return 0;
}

/* ---- SORT ---- */

static const struct {
	const char *name;
	enum imap_sort_key key;
} sort_keys[] = {
	{"ARRIVAL", IMAP_SORT_ARRIVAL},
	{"CC", IMAP_SORT_CC},
	{"DATE", IMAP_SORT_DATE},
	{"FROM", IMAP_SORT_FROM},
	{"SIZE", IMAP_SORT_SIZE},
	{"SUBJECT", IMAP_SORT_SUBJECT},
	{"TO", IMAP_SORT_TO},
	{"DISPLAYFROM", IMAP_SORT_DISPLAYFROM},
	{"DISPLAYTO", IMAP_SORT_DISPLAYTO},
};

int imap_parse_sort_criteria(const struct imap_arg *arg, struct arena *a,
			     struct imap_sort_criterion **out, size_t *count_r,
			     const char **error_r)
{
	*out = NULL;
	*count_r = 0;
	if (arg == NULL || arg->type != IMAP_ARG_LIST || arg->count == 0) {
		*error_r = "Sort criteria must be a non-empty list";
		return -1;
	}
	struct imap_sort_criterion *c = arena_alloc(a, arg->count * sizeof(*c));
	if (c == NULL) {
		*error_r = "Command too large";
		return -1;
	}
	size_t n = 0;
	bool reverse = false;
	for (size_t k = 0; k < arg->count; k++) {
		const struct imap_arg *item = &arg->list[k];
		if (item->type != IMAP_ARG_ATOM) {
			*error_r = "Invalid sort criterion";
			return -1;
		}
		if (slice_eq_ci(item->text, "REVERSE")) {
			if (reverse) {
				*error_r = "REVERSE given twice";
				return -1;
			}
			reverse = true;
			continue;
		}
		size_t j = 0;
		while (j < ARRAY_SIZE(sort_keys) &&
		       !slice_eq_ci(item->text, sort_keys[j].name))
			j++;
		if (j == ARRAY_SIZE(sort_keys)) {
			*error_r = "Unknown sort criterion";
			return -1;
		}
		c[n].key = sort_keys[j].key;
		c[n].reverse = reverse;
		n++;
		reverse = false;
	}
	if (reverse || n == 0) {
		*error_r = "REVERSE must precede a sort key";
		return -1;
	}
	*out = c;
	*count_r = n;
	return 0;
}
