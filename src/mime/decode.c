/* decode.c: the decoders of src/mime/: base64 and quoted-printable bodies
 * (RFC 2045 6), RFC 2047 encoded words, charsets to UTF-8 (windows-1252
 * by table, the rest through glibc's iconv), HTML reduced to text, and the
 * lexical helpers of RFC 5322 / RFC 2045 the other files share.
 *
 * Decoders are tolerant: mail in the wild breaks every rule, and a reader
 * must show something rather than nothing. Everything here is pure. */
#include "core/common.h"

#include "mime/mime_internal.h"

#include <errno.h>
#include <iconv.h>
#include <strings.h>

/* ---- lexical helpers ---- */

bool mime_is_token_char(uint8_t c)
{
	if (c <= 0x20 || c >= 0x7f)
		return false;
	switch (c) {
	case '(':
	case ')':
	case '<':
	case '>':
	case '@':
	case ',':
	case ';':
	case ':':
	case '\\':
	case '"':
	case '/':
	case '[':
	case ']':
	case '?':
	case '=':
		return false;
	default:
		return true;
	}
}

size_t mime_skip_cfws(struct slice s, size_t pos)
{
	while (pos < s.n) {
		uint8_t c = s.p[pos];
		if (mime_is_fws(c)) {
			pos++;
			continue;
		}
		if (c != '(')
			break;
		/* A comment; nesting and quoted-pairs as RFC 5322 3.2.2. */
		size_t level = 0;
		while (pos < s.n) {
			c = s.p[pos++];
			if (c == '\\' && pos < s.n)
				pos++;
			else if (c == '(')
				level++;
			else if (c == ')' && --level == 0)
				break;
		}
	}
	return pos;
}

void mime_unquote(struct slice s, size_t *pos, struct buf *out)
{
	size_t i = *pos + 1, run = i;
	while (i < s.n && s.p[i] != '"') {
		uint8_t c = s.p[i];
		if (c == '\\' || c == '\r' || c == '\n' || c == '\0') {
			buf_append(out, s.p + run, i - run);
			if (c == '\\' && i + 1 < s.n) {
				/* The quoted character itself. */
				i++;
				run = i;
				if (s.p[i] == '\r' || s.p[i] == '\n' ||
				    s.p[i] == '\0')
					run++;
			} else {
				run = i + 1;
			}
		}
		i++;
	}
	buf_append(out, s.p + run, (i < s.n ? i : s.n) - run);
	*pos = i < s.n ? i + 1 : i;
}

void mime_unfold(struct slice value, struct buf *out)
{
	size_t start = 0, end = value.n;
	while (start < end && mime_is_fws(value.p[start]))
		start++;
	while (end > start && mime_is_fws(value.p[end - 1]))
		end--;
	size_t run = start;
	for (size_t i = start; i < end; i++) {
		uint8_t c = value.p[i];
		if (c == '\r' || c == '\n' || c == '\0') {
			buf_append(out, value.p + run, i - run);
			run = i + 1;
		}
	}
	buf_append(out, value.p + run, end - run);
}

/* ---- parameters ---- */

size_t mime_parse_params(struct slice value, size_t pos, struct buf *scratch,
			 mime_param_fn fn, void *ctx)
{
	size_t count = 0;
	for (;;) {
		pos = mime_skip_cfws(value, pos);
		/* Stray and missing semicolons: "a=b c=d", "a=b;;". */
		while (pos < value.n && value.p[pos] == ';')
			pos = mime_skip_cfws(value, pos + 1);
		if (pos >= value.n)
			break;
		size_t name_start = pos;
		while (pos < value.n && mime_is_token_char(value.p[pos]))
			pos++;
		if (pos == name_start)
			break;
		struct mime_param param = {0};
		param.name = slice_make(value.p + name_start, pos - name_start);
		pos = mime_skip_cfws(value, pos);
		if (pos >= value.n || value.p[pos] != '=')
			break;
		pos = mime_skip_cfws(value, pos + 1);
		param.value_start = scratch->n;
		if (pos < value.n && value.p[pos] == '"') {
			mime_unquote(value, &pos, scratch);
		} else {
			/* A token; be lenient and take anything up to the
			 * next ';' or whitespace (unquoted 8-bit names, '/'
			 * and '?' in values are common). */
			size_t v = pos;
			while (pos < value.n && value.p[pos] != ';' &&
			       !mime_is_fws(value.p[pos]) &&
			       value.p[pos] != '\0')
				pos++;
			buf_append(scratch, value.p + v, pos - v);
		}
		param.value_len = scratch->n - param.value_start;
		fn(ctx, &param, scratch);
		count++;
	}
	return count;
}

/* ---- transfer encodings ---- */

static int base64_value(uint8_t c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

void mime_decode_base64(struct slice in, struct buf *out)
{
	uint32_t acc = 0;
	unsigned bits = 0;
	uint8_t chunk[768];
	size_t n = 0;
	for (size_t i = 0; i < in.n; i++) {
		if (in.p[i] == '=') {
			/* Padding ends a block; some encoders write several
			 * blocks one after the other, so read on. */
			acc = 0;
			bits = 0;
			continue;
		}
		int v = base64_value(in.p[i]);
		if (v < 0)
			continue;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			chunk[n++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
			if (n == sizeof(chunk)) {
				buf_append(out, chunk, n);
				n = 0;
			}
		}
	}
	buf_append(out, chunk, n);
}

static int hex_value(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

void mime_decode_qp(struct slice in, bool q_word, struct buf *out)
{
	size_t run = 0, i = 0;
	while (i < in.n) {
		uint8_t c = in.p[i];
		if (c == '_' && q_word) {
			buf_append(out, in.p + run, i - run);
			buf_append(out, " ", 1);
			run = ++i;
			continue;
		}
		if (!q_word && (c == ' ' || c == '\t')) {
			/* Trailing whitespace on a line was added in
			 * transport and is dropped (RFC 2045 6.7 rule 3). */
			size_t j = i;
			while (j < in.n && (in.p[j] == ' ' || in.p[j] == '\t'))
				j++;
			if (j == in.n || in.p[j] == '\n' ||
			    (in.p[j] == '\r' && j + 1 < in.n &&
			     in.p[j + 1] == '\n')) {
				buf_append(out, in.p + run, i - run);
				run = i = j;
			} else {
				i = j;
			}
			continue;
		}
		if (c != '=') {
			i++;
			continue;
		}
		buf_append(out, in.p + run, i - run);
		int hi = i + 1 < in.n ? hex_value(in.p[i + 1]) : -1;
		int lo = i + 2 < in.n ? hex_value(in.p[i + 2]) : -1;
		if (hi >= 0 && lo >= 0) {
			uint8_t b = (uint8_t)(hi << 4 | lo);
			buf_append(out, &b, 1);
			run = i += 3;
			continue;
		}
		if (!q_word) {
			/* A soft line break: '=', optional whitespace, the
			 * line end (CRLF or a bare LF), or the end. */
			size_t j = i + 1;
			while (j < in.n && (in.p[j] == ' ' || in.p[j] == '\t'))
				j++;
			if (j == in.n) {
				run = i = j;
				continue;
			}
			if (in.p[j] == '\n' ||
			    (in.p[j] == '\r' && j + 1 < in.n &&
			     in.p[j + 1] == '\n')) {
				run = i = j + (in.p[j] == '\r' ? 2 : 1);
				continue;
			}
		}
		/* Not an escape: keep the '=' as it is. */
		run = i++;
	}
	buf_append(out, in.p + run, in.n - run);
}

enum mime_cte mime_cte_parse(struct slice value)
{
	size_t pos = mime_skip_cfws(value, 0);
	size_t start = pos;
	while (pos < value.n && mime_is_token_char(value.p[pos]))
		pos++;
	struct slice t = slice_make(value.p + start, pos - start);
	if (t.n == 0 || slice_eq_ci(t, "7bit"))
		return MIME_CTE_7BIT;
	if (slice_eq_ci(t, "8bit"))
		return MIME_CTE_8BIT;
	if (slice_eq_ci(t, "binary"))
		return MIME_CTE_BINARY;
	if (slice_eq_ci(t, "base64"))
		return MIME_CTE_BASE64;
	if (slice_eq_ci(t, "quoted-printable"))
		return MIME_CTE_QP;
	return MIME_CTE_UNKNOWN;
}

/* ---- UTF-8 and charsets ---- */

void mime_utf8_put(struct buf *out, uint32_t cp)
{
	uint8_t b[4];
	size_t n;
	if ((cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff || cp == 0)
		cp = 0xfffd;
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

/* Length of the valid UTF-8 sequence at s[i] (RFC 3629), or 0. */
static size_t utf8_sequence(struct slice s, size_t i)
{
	uint8_t c = s.p[i];
	if (c < 0x80)
		return 1;
	size_t n;
	uint32_t min;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		min = 0x10000;
	} else {
		return 0;
	}
	if (i + n > s.n)
		return 0;
	uint32_t cp = c & (0x7f >> n);
	for (size_t k = 1; k < n; k++) {
		if ((s.p[i + k] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s.p[i + k] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

static bool utf8_all_valid(struct slice s)
{
	for (size_t i = 0; i < s.n;) {
		size_t n = utf8_sequence(s, i);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

/* UTF-8 with every invalid byte replaced by U+FFFD. */
static void utf8_sanitize(struct slice s, struct buf *out)
{
	size_t run = 0;
	for (size_t i = 0; i < s.n;) {
		size_t n = utf8_sequence(s, i);
		if (n > 0) {
			i += n;
			continue;
		}
		buf_append(out, s.p + run, i - run);
		mime_utf8_put(out, 0xfffd);
		run = ++i;
	}
	buf_append(out, s.p + run, s.n - run);
}

/* windows-1252 0x80-0x9f as the WHATWG encoding standard maps them. */
static const uint16_t cp1252_high[32] = {
	0x20ac, 0x0081, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021,
	0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008d, 0x017d, 0x008f,
	0x0090, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014,
	0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0x009d, 0x017e, 0x0178,
};

static void cp1252_to_utf8(struct slice s, struct buf *out)
{
	size_t run = 0;
	for (size_t i = 0; i < s.n; i++) {
		uint8_t c = s.p[i];
		if (c < 0x80)
			continue;
		buf_append(out, s.p + run, i - run);
		mime_utf8_put(out, c < 0xa0 ? cp1252_high[c - 0x80] : c);
		run = i + 1;
	}
	buf_append(out, s.p + run, s.n - run);
}

/* Through iconv; false when iconv does not know the charset. Bytes it
 * cannot convert become U+FFFD. */
static bool iconv_to_utf8(const char *charset, struct slice s, struct buf *out)
{
	iconv_t cd = iconv_open("UTF-8", charset);
	if (cd == (iconv_t)-1)
		return false;
	char chunk[1024];
	char *in = (char *)(uintptr_t)s.p;
	size_t in_left = s.n;
	while (in_left > 0) {
		char *o = chunk;
		size_t o_left = sizeof(chunk);
		size_t r = iconv(cd, &in, &in_left, &o, &o_left);
		int err = errno;
		buf_append(out, chunk, sizeof(chunk) - o_left);
		if (r != (size_t)-1)
			break;
		if (err == E2BIG)
			continue;
		/* EILSEQ, or EINVAL for a sequence cut at the end: replace
		 * one byte and go on from a clean state. */
		mime_utf8_put(out, 0xfffd);
		in++;
		in_left--;
		iconv(cd, NULL, NULL, NULL, NULL);
		if (buf_overflowed(out))
			break;
	}
	/* Flush a stateful encoder (ISO-2022-JP back to ASCII). */
	char *o = chunk;
	size_t o_left = sizeof(chunk);
	iconv(cd, NULL, NULL, &o, &o_left);
	buf_append(out, chunk, sizeof(chunk) - o_left);
	iconv_close(cd);
	return true;
}

void mime_charset_to_utf8(struct slice charset, struct slice in,
			  struct buf *out)
{
	char name[MIME_MAX_CHARSET_NAME + 1];
	size_t n = 0;
	bool usable = charset.n <= MIME_MAX_CHARSET_NAME;
	for (size_t i = 0; usable && i < charset.n; i++) {
		uint8_t c = charset.p[i];
		/* RFC 2231 5: "charset*language". */
		if (c == '*')
			break;
		if (c >= 'A' && c <= 'Z')
			c = (uint8_t)(c - 'A' + 'a');
		/* Only names iconv could mean: no "//TRANSLIT" and the like. */
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.' || c == ':'))
			usable = false;
		name[n++] = (char)c;
	}
	name[n] = '\0';
	if (!usable)
		n = 0;

	if (n > 0 &&
	    (strcmp(name, "utf-8") == 0 || strcmp(name, "utf8") == 0)) {
		utf8_sanitize(in, out);
		return;
	}
	if (strcmp(name, "iso-8859-1") == 0 || strcmp(name, "iso8859-1") == 0 ||
	    strcmp(name, "iso_8859-1") == 0 || strcmp(name, "latin1") == 0 ||
	    strcmp(name, "l1") == 0 || strcmp(name, "windows-1252") == 0 ||
	    strcmp(name, "cp1252") == 0 || strcmp(name, "x-cp1252") == 0 ||
	    strcmp(name, "ansi_x3.4-1968") == 0) {
		cp1252_to_utf8(in, out);
		return;
	}
	/* GB2312 and GBK text often uses GB18030 characters. */
	if (strcmp(name, "gb2312") == 0 || strcmp(name, "gbk") == 0 ||
	    strcmp(name, "x-gbk") == 0)
		memcpy(name, "gb18030", sizeof("gb18030"));
	else if (strcmp(name, "ks_c_5601-1987") == 0)
		memcpy(name, "cp949", sizeof("cp949"));
	bool plain = n == 0 || strcmp(name, "us-ascii") == 0 ||
		     strcmp(name, "ascii") == 0;
	if (!plain && iconv_to_utf8(name, in, out))
		return;
	/* Unlabelled, ASCII-labelled or unknown: UTF-8 if it is, else the
	 * most common 8-bit charset of mail. */
	if (utf8_all_valid(in))
		buf_append_slice(out, in);
	else
		cp1252_to_utf8(in, out);
}

/* ---- RFC 2047 ---- */

struct encoded_word {
	struct slice charset, text;
	bool b; /* "B" encoding, else "Q" */
	size_t end;
};

/* What failed scans for "?=" learnt, so that a header full of "=?x?q?"
 * is read in linear time: no whitespace and no "?=" starts in [from, to);
 * when dead, s.p[to] ends every scan that reaches it (whitespace, or the
 * end of the value). */
struct word_scan {
	size_t from, to;
	bool dead;
};

/* Recognises an encoded word "=?charset?X?text?=" at s.p[pos]. */
static bool parse_encoded_word(struct slice s, size_t pos,
			       struct encoded_word *w, struct word_scan *scan)
{
	if (pos + 8 > s.n || s.p[pos] != '=' || s.p[pos + 1] != '?')
		return false;
	size_t i = pos + 2, cs = i;
	while (i < s.n && s.p[i] != '?' && mime_is_token_char(s.p[i]))
		i++;
	if (i == cs || i + 3 > s.n || s.p[i] != '?' || s.p[i + 2] != '?')
		return false;
	uint8_t e = s.p[i + 1];
	if (e != 'B' && e != 'b' && e != 'Q' && e != 'q')
		return false;
	w->charset = slice_make(s.p + cs, i - cs);
	w->b = e == 'B' || e == 'b';
	size_t t = i + 3;
	i = t;
	if (t >= scan->from && t < scan->to) {
		if (scan->dead)
			return false;
		i = scan->to;
	}
	for (;; i++) {
		if (i + 1 >= s.n || i - pos > MIME_MAX_ENCODED_WORD) {
			scan->from = t;
			scan->to = i;
			scan->dead = i + 1 >= s.n;
			return false;
		}
		if (s.p[i] == '?' && s.p[i + 1] == '=') {
			w->text = slice_make(s.p + t, i - t);
			w->end = i + 2;
			return true;
		}
		/* Encoded text holds no whitespace (RFC 2047 5); a space
		 * means this was no encoded word. */
		if (s.p[i] == ' ' || s.p[i] == '\t' || s.p[i] == '\r' ||
		    s.p[i] == '\n') {
			scan->from = t;
			scan->to = i;
			scan->dead = true;
			return false;
		}
	}
}

/* Converts the pending decoded bytes of one charset. */
static void flush_words(struct slice charset, struct buf *pending,
			struct buf *out)
{
	if (pending->n > 0)
		mime_charset_to_utf8(charset, buf_slice(pending), out);
	buf_reset(pending);
}

void mime_decode_header(struct slice value, struct buf *out)
{
	if (value.n == 0)
		return;
	struct buf unfolded, pending, decoded;
	buf_init(&unfolded, value.n + 1);
	buf_init(&pending, value.n + 1);
	/* Any charset grows at most fourfold into UTF-8 here (one byte to
	 * U+FFFD is three). */
	buf_init(&decoded, 4 * value.n + 16);
	buf_cstr(&unfolded);
	buf_cstr(&decoded);
	mime_unfold(value, &unfolded);
	struct slice s = buf_slice(&unfolded);
	struct slice charset = {0};
	struct word_scan scan = {0, 0, false};
	size_t run = 0, i = 0;
	/* True while only whitespace followed the last encoded word. */
	bool after_word = false;
	while (i < s.n) {
		struct encoded_word w;
		if (s.p[i] != '=' || !parse_encoded_word(s, i, &w, &scan)) {
			if (!mime_is_wsp(s.p[i]))
				after_word = false;
			i++;
			continue;
		}
		/* Whitespace between two encoded words is dropped (RFC 2047
		 * 6.2); other text between them is kept. */
		if (i > run && !after_word) {
			flush_words(charset, &pending, &decoded);
			mime_charset_to_utf8(slice_make(NULL, 0),
					     slice_make(s.p + run, i - run),
					     &decoded);
		}
		/* Words of one charset are converted together: a character
		 * may be split between two of them. */
		if (pending.n > 0 &&
		    (w.charset.n != charset.n ||
		     strncasecmp((const char *)w.charset.p,
				 (const char *)charset.p, w.charset.n) != 0))
			flush_words(charset, &pending, &decoded);
		charset = w.charset;
		if (w.b)
			mime_decode_base64(w.text, &pending);
		else
			mime_decode_qp(w.text, true, &pending);
		run = i = w.end;
		after_word = true;
	}
	flush_words(charset, &pending, &decoded);
	if (run < s.n)
		mime_charset_to_utf8(slice_make(NULL, 0),
				     slice_make(s.p + run, s.n - run),
				     &decoded);
	/* Controls (a decoded "=0A", a NUL) become spaces; trim the ends. */
	uint8_t *d = decoded.p;
	size_t start = 0, end = decoded.n;
	for (size_t k = 0; k < decoded.n; k++) {
		if (d[k] < 0x20 || d[k] == 0x7f)
			d[k] = ' ';
	}
	while (start < end && d[start] == ' ')
		start++;
	while (end > start && d[end - 1] == ' ')
		end--;
	buf_append(out, d + start, end - start);
	buf_free(&unfolded);
	buf_free(&pending);
	buf_free(&decoded);
}

/* ---- HTML to text ---- */

struct html_entity {
	const char *name;
	uint16_t cp;
};

static const struct html_entity html_entities[] = {
	{"amp", '&'},	    {"lt", '<'},	{"gt", '>'},
	{"quot", '"'},	    {"apos", '\''},	{"nbsp", 0x20},
	{"copy", 0xa9},	    {"reg", 0xae},	{"trade", 0x2122},
	{"hellip", 0x2026}, {"mdash", 0x2014},	{"ndash", 0x2013},
	{"lsquo", 0x2018},  {"rsquo", 0x2019},	{"ldquo", 0x201c},
	{"rdquo", 0x201d},  {"sbquo", 0x201a},	{"bdquo", 0x201e},
	{"laquo", 0xab},    {"raquo", 0xbb},	{"bull", 0x2022},
	{"middot", 0xb7},   {"euro", 0x20ac},	{"pound", 0xa3},
	{"yen", 0xa5},	    {"cent", 0xa2},	{"sect", 0xa7},
	{"deg", 0xb0},	    {"plusmn", 0xb1},	{"times", 0xd7},
	{"divide", 0xf7},   {"para", 0xb6},	{"iexcl", 0xa1},
	{"iquest", 0xbf},   {"shy", 0xad},	{"zwnj", 0x200c},
	{"zwj", 0x200d},    {"thinsp", 0x2009}, {"ensp", 0x2002},
	{"emsp", 0x2003},   {"auml", 0xe4},	{"ouml", 0xf6},
	{"uuml", 0xfc},	    {"Auml", 0xc4},	{"Ouml", 0xd6},
	{"Uuml", 0xdc},	    {"szlig", 0xdf},	{"eacute", 0xe9},
	{"egrave", 0xe8},   {"ecirc", 0xea},	{"Eacute", 0xc9},
	{"aacute", 0xe1},   {"agrave", 0xe0},	{"acirc", 0xe2},
	{"ccedil", 0xe7},   {"ntilde", 0xf1},	{"oacute", 0xf3},
	{"iacute", 0xed},   {"uacute", 0xfa},	{"aring", 0xe5},
	{"oslash", 0xf8},   {"aelig", 0xe6},
};

/* Decodes the character reference at s.p[i] ('&'); returns its length,
 * or 0 when it is none (the '&' is then text). */
static size_t html_entity(struct slice s, size_t i, struct buf *out)
{
	size_t j = i + 1;
	if (j < s.n && s.p[j] == '#') {
		bool hex =
			j + 1 < s.n && (s.p[j + 1] == 'x' || s.p[j + 1] == 'X');
		j += hex ? 2 : 1;
		uint32_t cp = 0;
		size_t digits = 0;
		for (; j < s.n; j++, digits++) {
			int v = hex ? hex_value(s.p[j])
				    : (s.p[j] >= '0' && s.p[j] <= '9'
					       ? s.p[j] - '0'
					       : -1);
			if (v < 0)
				break;
			if (cp <= 0x10ffff)
				cp = cp * (hex ? 16 : 10) + (uint32_t)v;
		}
		if (digits == 0)
			return 0;
		if (j < s.n && s.p[j] == ';')
			j++;
		mime_utf8_put(out, cp);
		return j - i;
	}
	size_t start = j;
	while (j < s.n && j - start < 10 &&
	       ((s.p[j] >= 'a' && s.p[j] <= 'z') ||
		(s.p[j] >= 'A' && s.p[j] <= 'Z') ||
		(s.p[j] >= '0' && s.p[j] <= '9')))
		j++;
	struct slice name = slice_make(s.p + start, j - start);
	for (size_t k = 0; k < ARRAY_SIZE(html_entities); k++) {
		const char *e = html_entities[k].name;
		if (name.n == strlen(e) && memcmp(name.p, e, name.n) == 0) {
			if (j < s.n && s.p[j] == ';')
				j++;
			mime_utf8_put(out, html_entities[k].cp);
			return j - i;
		}
	}
	return 0;
}

static bool html_tag_is(struct slice tag, const char *const *names)
{
	for (; *names != NULL; names++) {
		if (slice_eq_ci(tag, *names))
			return true;
	}
	return false;
}

/* Where the element whose contents are not text (script, style) ends:
 * after its end tag, or at the end of the input. */
static size_t html_skip_element(struct slice s, size_t i, struct slice tag)
{
	for (; i + 2 + tag.n <= s.n; i++) {
		if (s.p[i] == '<' && s.p[i + 1] == '/' &&
		    strncasecmp((const char *)s.p + i + 2, (const char *)tag.p,
				tag.n) == 0) {
			const uint8_t *gt = memchr(s.p + i, '>', s.n - i);
			return gt != NULL ? (size_t)(gt - s.p) + 1 : s.n;
		}
	}
	return s.n;
}

static bool html_name_char(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

/* Ends the current line of text, dropping a space before the line end. */
static void html_line_end(struct buf *out, size_t first)
{
	if (out->n <= first || out->p[out->n - 1] == '\n')
		return;
	if (out->p[out->n - 1] == ' ')
		out->n--;
	buf_append(out, "\n", 1);
}

void mime_html_to_text(struct slice s, struct buf *out)
{
	static const char *const blocks[] = {
		"br",	   "p",	     "div",    "tr",	"li",
		"h1",	   "h2",     "h3",     "h4",	"h5",
		"h6",	   "ul",     "ol",     "table", "blockquote",
		"pre",	   "hr",     "dt",     "dd",	"section",
		"article", "header", "footer", "title", NULL};
	static const char *const hidden[] = {"script", "style", "template",
					     NULL};
	size_t first = out->n;
	bool space = true; /* at the start, or after whitespace */
	size_t i = 0;
	while (i < s.n) {
		uint8_t c = s.p[i];
		if (c == '<' && i + 4 <= s.n &&
		    memcmp(s.p + i, "<!--", 4) == 0) {
			size_t j = i + 4;
			while (j + 3 <= s.n && memcmp(s.p + j, "-->", 3) != 0)
				j++;
			i = j + 3 <= s.n ? j + 3 : s.n;
			continue;
		}
		if (c == '<') {
			size_t j = i + 1;
			bool closing = j < s.n && s.p[j] == '/';
			if (closing)
				j++;
			size_t name_start = j;
			while (j < s.n && html_name_char(s.p[j]))
				j++;
			struct slice tag =
				slice_make(s.p + name_start, j - name_start);
			bool markup =
				tag.n > 0 ||
				(j < s.n && (s.p[j] == '!' || s.p[j] == '?'));
			if (!markup || (closing && tag.n == 0)) {
				/* "a < b": text, not a tag. */
				buf_append(out, "<", 1);
				space = false;
				i++;
				continue;
			}
			/* To the end of the tag, minding quoted values. */
			uint8_t quote = 0;
			while (j < s.n && (quote != 0 || s.p[j] != '>')) {
				if (quote != 0 && s.p[j] == quote)
					quote = 0;
				else if (quote == 0 &&
					 (s.p[j] == '"' || s.p[j] == '\''))
					quote = s.p[j];
				j++;
			}
			i = j < s.n ? j + 1 : s.n;
			if (!closing && html_tag_is(tag, hidden)) {
				i = html_skip_element(s, i, tag);
			} else if (html_tag_is(tag, blocks)) {
				html_line_end(out, first);
				space = true;
			} else if (slice_eq_ci(tag, "td") ||
				   slice_eq_ci(tag, "th")) {
				if (!space) {
					buf_append(out, " ", 1);
					space = true;
				}
			}
			continue;
		}
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n' ||
		    c == '\f') {
			if (!space) {
				buf_append(out, " ", 1);
				space = true;
			}
			i++;
			continue;
		}
		if (c == '&') {
			size_t n = html_entity(s, i, out);
			if (n > 0) {
				i += n;
				space = false;
				continue;
			}
		}
		/* A run of plain text. */
		size_t j = i + 1;
		while (j < s.n && s.p[j] != '<' && s.p[j] != '&' &&
		       s.p[j] != ' ' && s.p[j] != '\t' && s.p[j] != '\r' &&
		       s.p[j] != '\n' && s.p[j] != '\f')
			j++;
		buf_append(out, s.p + i, j - i);
		space = false;
		i = j;
	}
	while (out->n > first &&
	       (out->p[out->n - 1] == ' ' || out->p[out->n - 1] == '\n'))
		out->n--;
}
