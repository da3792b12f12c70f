/* authres.c: Authentication-Results (RFC 8601): writing ours, finding
 * forged ones that claim our authserv-id, and reading one back. */
#include "core/common.h"

#include "core/ascii.h"

#include "smtp/authres.h"

#include <strings.h>

#include "core/poison.h"

/* RFC 2045 token: visible ASCII but tspecials. */
static bool is_token_char(uint8_t c)
{
	return c > 0x20 && c < 0x7f && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

/* RFC 5322 atext. */
static bool is_atext(uint8_t c)
{
	return ascii_is_alpha(c) || ascii_is_digit(c) ||
	       (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* Bytes from..to of s; an empty s may have a NULL p. */
static struct slice sub(struct slice s, size_t from, size_t to)
{
	return slice_make(s.p != NULL ? s.p + from : NULL, to - from);
}

/* ---- writing ---- */

static const char *dmarc_name(enum dmarc_status s)
{
	switch (s) {
	case DMARC_NONE:
		return "none";
	case DMARC_PASS:
		return "pass";
	case DMARC_FAIL:
		return "fail";
	case DMARC_TEMPERROR:
		return "temperror";
	case DMARC_PERMERROR:
		return "permerror";
	}
	return "permerror";
}

static const char *policy_name(enum dmarc_policy p)
{
	switch (p) {
	case DMARC_POLICY_NONE:
		return "none";
	case DMARC_POLICY_QUARANTINE:
		return "quarantine";
	case DMARC_POLICY_REJECT:
		return "reject";
	}
	return "none";
}

static bool all_token(struct slice v)
{
	if (v.n == 0)
		return false;
	for (size_t i = 0; i < v.n; i++)
		if (!is_token_char(v.p[i]))
			return false;
	return true;
}

/* A dot-atom: atext runs separated by single dots. */
static bool is_dot_atom(struct slice v)
{
	if (v.n == 0 || v.p[0] == '.' || v.p[v.n - 1] == '.')
		return false;
	for (size_t i = 0; i < v.n; i++) {
		if (v.p[i] == '.' ? v.p[i - 1] == '.' : !is_atext(v.p[i]))
			return false;
	}
	return true;
}

/* A domain name of letters, digits, '-', '_' and single dots. */
static bool is_plain_domain(struct slice v)
{
	if (!is_dot_atom(v))
		return false;
	for (size_t i = 0; i < v.n; i++)
		if (!(ascii_is_alpha(v.p[i]) || ascii_is_digit(v.p[i]) ||
		      v.p[i] == '-' || v.p[i] == '_' || v.p[i] == '.'))
			return false;
	return true;
}

/* local-part@domain that may stand unquoted (RFC 8601 pvalue). */
static bool is_plain_address(struct slice v)
{
	const uint8_t *at = memchr(v.p, '@', v.n);
	if (at == NULL)
		return false;
	size_t i = (size_t)(at - v.p);
	return is_dot_atom(sub(v, 0, i)) && is_plain_domain(sub(v, i + 1, v.n));
}

/* Longest value written: what authres_parse keeps, so that whatever
 * dijk writes it can read back. */
#define AUTHRES_MAX_WRITTEN (AUTHRES_MAX_VALUE - 1)

/* Appends v as a token (or address when allowed), else as a quoted
 * string; cut to AUTHRES_MAX_WRITTEN bytes. */
static void put_value(struct buf *out, struct slice v, bool address)
{
	if (v.n <= AUTHRES_MAX_WRITTEN &&
	    (all_token(v) || (address && is_plain_address(v)))) {
		buf_append_slice(out, v);
		return;
	}
	if (v.n > AUTHRES_MAX_WRITTEN)
		v.n = AUTHRES_MAX_WRITTEN;
	buf_append(out, "\"", 1);
	for (size_t i = 0; i < v.n; i++) {
		uint8_t c = v.p[i];
		if (c == '"' || c == '\\')
			buf_append(out, "\\", 1);
		else if (c < 0x20 || c > 0x7e)
			c = '?';
		buf_append(out, &c, 1);
	}
	buf_append(out, "\"", 1);
}

/* The field being written, one line at a time: words are joined by a
 * space, or by a fold when the line would pass the limit. */
struct writer {
	struct buf *out;
	size_t column;
	bool line_empty; /* nothing but the fold's tab yet */
	struct buf word;
};

/* Columns a tab takes: counted at its widest so that the field fits
 * whatever a reader's tab stops. */
#define AUTHRES_TAB_COLUMNS 8

static void new_line(struct writer *w)
{
	buf_append(w->out, "\r\n\t", 3);
	w->column = AUTHRES_TAB_COLUMNS;
	w->line_empty = true;
}

/* Appends the word being built; reserve columns stay free after it (for
 * the ';' that may follow). */
static void put_word(struct writer *w, size_t reserve)
{
	size_t n = w->word.n;
	if (!w->line_empty && w->column + 1 + n + reserve > AUTHRES_LINE_LIMIT)
		new_line(w);
	if (!w->line_empty) {
		buf_append(w->out, " ", 1);
		w->column++;
	}
	buf_append_slice(w->out, buf_slice(&w->word));
	w->column += n;
	w->line_empty = false;
	buf_reset(&w->word);
}

static void put_property(struct writer *w, const char *name, struct slice v,
			 bool address)
{
	buf_append_cstr(&w->word, name);
	buf_append(&w->word, "=", 1);
	put_value(&w->word, v, address);
	put_word(w, 1);
}

static void put_method(struct writer *w, const char *method, const char *result)
{
	new_line(w);
	buf_printf(&w->word, "%s=%s", method, result);
	put_word(w, 1);
}

void authres_build_value(const struct authres_input *in, struct buf *out)
{
	struct writer w = {out, 0, false, {0}};
	buf_init(&w.word, 4 * AUTHRES_MAX_VALUE);
	/* "Authentication-Results:" comes before the value. */
	w.column = strlen("Authentication-Results:");
	put_value(&w.word, slice_cstr(in->authserv_id ? in->authserv_id : ""),
		  false);
	put_word(&w, 1);
	if (in->spf != NULL) {
		buf_append(out, ";", 1);
		put_method(&w, "spf", spf_result_name(in->spf->result));
		if (in->spf_mailfrom != NULL && in->spf_mailfrom[0] != '\0')
			put_property(&w, "smtp.mailfrom",
				     slice_cstr(in->spf_mailfrom), true);
		else if (in->spf_helo != NULL && in->spf_helo[0] != '\0')
			put_property(&w, "smtp.helo", slice_cstr(in->spf_helo),
				     false);
	}
	/* Without a signature, still say that DKIM was looked at. */
	size_t dkim_lines = in->dkim_count > 0 ? in->dkim_count : 1;
	for (size_t i = 0; i < dkim_lines; i++) {
		buf_append(out, ";", 1);
		if (in->dkim_count == 0) {
			put_method(&w, "dkim", "none");
			break;
		}
		const struct dkim_result *d = &in->dkim[i];
		put_method(&w, "dkim", dkim_status_name(d->status));
		if (d->domain[0] != '\0')
			put_property(&w, "header.d",
				     slice_make(d->domain,
						strnlen(d->domain,
							sizeof(d->domain))),
				     false);
		if (d->selector[0] != '\0')
			put_property(&w, "header.s",
				     slice_make(d->selector,
						strnlen(d->selector,
							sizeof(d->selector))),
				     false);
		if (d->header_b[0] != '\0')
			put_property(&w, "header.b",
				     slice_make(d->header_b,
						strnlen(d->header_b,
							sizeof(d->header_b))),
				     false);
	}
	if (in->dmarc != NULL) {
		const struct dmarc_result *m = in->dmarc;
		buf_append(out, ";", 1);
		put_method(&w, "dmarc", dmarc_name(m->status));
		if (m->has_record) {
			buf_printf(&w.word, "(p=%s dis=%s)",
				   policy_name(m->policy),
				   policy_name(m->disposition));
			put_word(&w, 1);
		}
		if (m->from_domain[0] != '\0')
			put_property(
				&w, "header.from",
				slice_make(m->from_domain,
					   strnlen(m->from_domain,
						   sizeof(m->from_domain))),
				false);
	}
	buf_free(&w.word);
}

void authres_build_field(const struct authres_input *input, struct buf *out)
{
	buf_append_cstr(out, "Authentication-Results:");
	authres_build_value(input, out);
	buf_append(out, "\r\n", 2);
}

/* ---- lexical reading ---- */

struct cursor {
	struct slice s;
	size_t i;
	const char *error; /* the first one */
};

static bool at_end(const struct cursor *c)
{
	return c->i >= c->s.n;
}

static uint8_t peek(const struct cursor *c)
{
	return at_end(c) ? 0 : c->s.p[c->i];
}

static void fail(struct cursor *c, const char *error)
{
	if (c->error == NULL)
		c->error = error;
}

/* Skips spaces, folding and (nested) comments. */
static void skip_cfws(struct cursor *c)
{
	while (!at_end(c) && c->error == NULL) {
		uint8_t ch = peek(c);
		if (ascii_is_wsp(ch) || ch == '\r' || ch == '\n') {
			c->i++;
			continue;
		}
		if (ch != '(')
			return;
		size_t depth = 0;
		while (!at_end(c)) {
			ch = peek(c);
			if (ch == '\\')
				c->i++;
			else if (ch == '(')
				depth++;
			else if (ch == ')' && --depth == 0)
				break;
			c->i++;
		}
		if (at_end(c)) {
			fail(c, "unterminated comment");
			return;
		}
		c->i++;
	}
}

/* Appends one byte of a value, refusing control characters and values
 * longer than the room left. */
static void put_char(struct cursor *c, char *out, size_t *n, size_t cap,
		     uint8_t ch)
{
	if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
		fail(c, "control character in a value");
		return;
	}
	if (*n + 1 >= cap) {
		fail(c, "value too long");
		return;
	}
	out[(*n)++] = (char)ch;
	out[*n] = '\0';
}

/* A quoted-string at the cursor; folding inside is removed. */
static void read_quoted(struct cursor *c, char *out, size_t *n, size_t cap)
{
	c->i++;
	while (!at_end(c) && c->error == NULL) {
		uint8_t ch = peek(c);
		c->i++;
		if (ch == '"')
			return;
		if (ch == '\r' || ch == '\n')
			continue;
		if (ch == '\\') {
			if (at_end(c))
				break;
			ch = peek(c);
			c->i++;
		}
		put_char(c, out, n, cap, ch);
	}
	fail(c, "unterminated quoted string");
}

/* RFC 8601 value: token / quoted-string. Empty on failure. */
static void read_value(struct cursor *c, char *out, size_t cap)
{
	size_t n = 0;
	out[0] = '\0';
	if (peek(c) == '"') {
		read_quoted(c, out, &n, cap);
		return;
	}
	while (!at_end(c) && is_token_char(peek(c)) && c->error == NULL)
		put_char(c, out, &n, cap, c->s.p[c->i++]);
	if (n == 0)
		fail(c, "a value expected");
}

/* RFC 8601 pvalue: a value or [[local-part] "@"] domain-name. Base64
 * with '/' and '=' unquoted, as some writers send, is read too. */
static void read_pvalue(struct cursor *c, char *out, size_t cap)
{
	size_t n = 0;
	out[0] = '\0';
	if (peek(c) == '"') {
		read_quoted(c, out, &n, cap);
		if (peek(c) != '@')
			return;
	}
	while (!at_end(c) && c->error == NULL) {
		uint8_t ch = peek(c);
		if (!(is_token_char(ch) || ch == '@' || ch == '/' ||
		      ch == '=' || ch == '?'))
			break;
		put_char(c, out, &n, cap, ch);
		c->i++;
	}
	if (n == 0)
		fail(c, "a property value expected");
}

/* RFC 8601 Keyword (RFC 5321 Ldh-str, '_' tolerated), lowercased. */
static void read_keyword(struct cursor *c, char *out, size_t cap)
{
	size_t n = 0;
	out[0] = '\0';
	while (!at_end(c) && c->error == NULL) {
		uint8_t ch = peek(c);
		if (!(ascii_is_alpha(ch) || ascii_is_digit(ch) || ch == '-' ||
		      ch == '_'))
			break;
		put_char(c, out, &n, cap, ascii_lower(ch));
		c->i++;
	}
	if (n == 0)
		fail(c, "a keyword expected");
}

static bool expect(struct cursor *c, uint8_t ch, const char *error)
{
	if (c->error == NULL && peek(c) == ch) {
		c->i++;
		return true;
	}
	fail(c, error);
	return false;
}

/* ---- reading a field ---- */

/* Where a property's value goes, or NULL for one not kept. */
static char *property_slot(struct authres_result *r, const char *ptype,
			   const char *property)
{
	if (strcmp(ptype, "header") == 0) {
		if (strcmp(property, "from") == 0)
			return r->header_from;
		if (strcmp(property, "d") == 0)
			return r->header_d;
		if (strcmp(property, "i") == 0)
			return r->header_i;
	} else if (strcmp(ptype, "smtp") == 0) {
		if (strcmp(property, "mailfrom") == 0)
			return r->smtp_mailfrom;
		if (strcmp(property, "helo") == 0)
			return r->smtp_helo;
	}
	return NULL;
}

static void read_resinfo(struct cursor *c, struct authres_summary *sum,
			 bool first)
{
	/* Parsed into a scratch entry, kept when there is room. */
	struct authres_result r;
	memset(&r, 0, sizeof(r));
	skip_cfws(c);
	read_keyword(c, r.method, sizeof(r.method));
	skip_cfws(c);
	if (first && strcmp(r.method, "none") == 0 && at_end(c)) {
		sum->no_result = true;
		return;
	}
	if (peek(c) == '/') {
		/* A method version: read and dropped. */
		c->i++;
		skip_cfws(c);
		size_t digits = c->i;
		while (ascii_is_digit(peek(c)))
			c->i++;
		if (c->i == digits)
			fail(c, "bad method version");
		skip_cfws(c);
	}
	expect(c, '=', "'=' expected after a method");
	skip_cfws(c);
	read_keyword(c, r.result, sizeof(r.result));
	skip_cfws(c);
	while (!at_end(c) && peek(c) != ';' && c->error == NULL) {
		char ptype[AUTHRES_MAX_VALUE], property[AUTHRES_MAX_VALUE];
		char value[AUTHRES_MAX_VALUE];
		read_keyword(c, ptype, sizeof(ptype));
		skip_cfws(c);
		if (strcmp(ptype, "reason") == 0 && peek(c) == '=') {
			c->i++;
			skip_cfws(c);
			read_value(c, value, sizeof(value));
			skip_cfws(c);
			continue;
		}
		expect(c, '.', "'.' expected in a property");
		skip_cfws(c);
		read_keyword(c, property, sizeof(property));
		skip_cfws(c);
		expect(c, '=', "'=' expected after a property");
		skip_cfws(c);
		read_pvalue(c, value, sizeof(value));
		skip_cfws(c);
		char *slot = c->error == NULL
				     ? property_slot(&r, ptype, property)
				     : NULL;
		/* The first of two equal properties counts. */
		if (slot != NULL && slot[0] == '\0')
			memcpy(slot, value, strlen(value) + 1);
	}
	if (c->error == NULL && sum->count < AUTHRES_MAX_RESULTS)
		sum->results[sum->count++] = r;
}

int authres_parse(struct slice value, struct authres_summary *summary_r,
		  const char **error_r)
{
	struct authres_summary *sum = summary_r;
	memset(sum, 0, sizeof(*sum));
	struct cursor c = {value, 0, NULL};
	skip_cfws(&c);
	read_value(&c, sum->authserv_id, sizeof(sum->authserv_id));
	skip_cfws(&c);
	if (ascii_is_digit(peek(&c))) {
		/* authres-version */
		while (ascii_is_digit(peek(&c)))
			c.i++;
		skip_cfws(&c);
	}
	if (at_end(&c))
		fail(&c, "no result");
	bool first = true;
	while (!at_end(&c) && c.error == NULL) {
		expect(&c, ';', "';' expected");
		skip_cfws(&c);
		/* A final ';' is tolerated. */
		if (at_end(&c) && !first)
			break;
		if (sum->no_result)
			fail(&c, "results after \"none\"");
		read_resinfo(&c, sum, first);
		first = false;
	}
	if (c.error != NULL) {
		memset(sum, 0, sizeof(*sum));
		*error_r = c.error;
		return -1;
	}
	return 0;
}

const struct authres_result *authres_find(const struct authres_summary *summary,
					  const char *method)
{
	for (size_t i = 0; i < summary->count; i++)
		if (strcmp(summary->results[i].method, method) == 0)
			return &summary->results[i];
	return NULL;
}

/* ---- forged fields ---- */

/* The authserv-id of an Authentication-Results value matches id (no
 * case; a final dot on either side ignored). */
static bool claims_id(struct slice value, const char *id)
{
	struct cursor c = {value, 0, NULL};
	char found[AUTHRES_MAX_VALUE];
	skip_cfws(&c);
	read_value(&c, found, sizeof(found));
	if (c.error != NULL)
		return false;
	size_t n = strlen(found), m = strlen(id);
	if (n > 0 && found[n - 1] == '.')
		n--;
	if (m > 0 && id[m - 1] == '.')
		m--;
	return n == m && n > 0 && strncasecmp(found, id, n) == 0;
}

bool authres_next_forged(struct slice header, const char *authserv_id,
			 size_t *pos, struct authres_range *range_r)
{
	size_t p = *pos;
	while (p < header.n) {
		/* An empty line ends the header section. */
		if (header.p[p] == '\n' ||
		    (header.p[p] == '\r' && p + 1 < header.n &&
		     header.p[p + 1] == '\n')) {
			p = header.n;
			break;
		}
		size_t start = p;
		const uint8_t *lf = memchr(header.p + p, '\n', header.n - p);
		size_t first_end =
			lf != NULL ? (size_t)(lf - header.p) + 1 : header.n;
		size_t end = first_end;
		while (end < header.n && ascii_is_wsp(header.p[end])) {
			lf = memchr(header.p + end, '\n', header.n - end);
			end = lf != NULL ? (size_t)(lf - header.p) + 1
					 : header.n;
		}
		p = end;
		if (ascii_is_wsp(header.p[start]))
			continue;
		const uint8_t *colon =
			memchr(header.p + start, ':', first_end - start);
		if (colon == NULL)
			continue;
		struct slice name =
			sub(header, start, (size_t)(colon - header.p));
		while (name.n > 0 && ascii_is_wsp(name.p[name.n - 1]))
			name.n--;
		if (!slice_eq_ci(name, "Authentication-Results"))
			continue;
		struct slice value =
			sub(header, (size_t)(colon - header.p) + 1, end);
		if (!claims_id(value, authserv_id))
			continue;
		range_r->offset = start;
		range_r->length = end - start;
		*pos = p;
		return true;
	}
	*pos = p;
	return false;
}

size_t authres_remove_forged(struct slice header, const char *authserv_id,
			     struct buf *out)
{
	size_t pos = 0, copied = 0, removed = 0;
	struct authres_range r;
	while (authres_next_forged(header, authserv_id, &pos, &r)) {
		buf_append_slice(out, sub(header, copied, r.offset));
		copied = r.offset + r.length;
		removed++;
	}
	buf_append_slice(out, sub(header, copied, header.n));
	return removed;
}
