/* address.c: RFC 5322 address lists (3.4, with the obsolete forms of 4.4)
 * as the ENVELOPE of RFC 3501 needs them: display name, source route,
 * local part and domain of each mailbox, and group syntax.
 *
 * Real headers break the grammar in every way, so the parser never fails:
 * a mailbox without a local part or a domain gets "MISSING_MAILBOX" or
 * "MISSING_DOMAIN" (a NIL host would announce a group), and text it cannot
 * read is skipped up to the next comma. */
#include "core/common.h"

#include "mime/mime_internal.h"

struct address_parser {
	struct slice s;
	size_t pos;
	struct buf *scratch;
	struct mime_address *list;
	size_t count, cap;
	/* The text of the last comment skipped: "a@b (Name)" names a. It
	 * is kept apart from scratch, where a name or domain may be half
	 * built when a comment interrupts it. */
	struct buf comment;
};

static bool is_atext(uint8_t c)
{
	if (c >= 0x80)
		return true; /* RFC 6532: UTF-8 (and worse) in atoms */
	if (c <= 0x20 || c == 0x7f)
		return false;
	switch (c) {
	case '(':
	case ')':
	case '<':
	case '>':
	case '[':
	case ']':
	case ':':
	case ';':
	case '@':
	case '\\':
	case ',':
	case '.':
	case '"':
		return false;
	default:
		return true;
	}
}

/* Skips whitespace and comments, remembering the text of the last
 * comment (unfolded, outer parentheses removed). */
static void skip_cfws(struct address_parser *ap)
{
	struct slice s = ap->s;
	while (ap->pos < s.n) {
		uint8_t c = s.p[ap->pos];
		if (mime_is_fws(c)) {
			ap->pos++;
			continue;
		}
		if (c != '(')
			break;
		size_t start = ap->pos + 1;
		size_t level = 0, i = ap->pos;
		while (i < s.n) {
			c = s.p[i++];
			if (c == '\\' && i < s.n)
				i++;
			else if (c == '(')
				level++;
			else if (c == ')' && --level == 0)
				break;
		}
		size_t inner_end = level == 0 ? i - 1 : i;
		struct buf *b = &ap->comment;
		buf_reset(b);
		for (size_t k = start; k < inner_end; k++) {
			uint8_t ch = s.p[k];
			if (ch == '\\' && k + 1 < inner_end)
				ch = s.p[++k];
			if (ch != '\r' && ch != '\n' && ch != '\0')
				buf_append(b, &ch, 1);
		}
		ap->pos = i;
	}
}

static bool at(struct address_parser *ap, uint8_t c)
{
	return ap->pos < ap->s.n && ap->s.p[ap->pos] == c;
}

/* phrase = 1*word / obs-phrase; words are joined by one space where the
 * message had whitespace or a comment between them, quotes removed.
 * Appends to scratch; returns the number of words read. */
static size_t parse_phrase(struct address_parser *ap)
{
	struct slice s = ap->s;
	size_t words = 0;
	for (;;) {
		size_t before = ap->pos;
		skip_cfws(ap);
		bool gap = ap->pos > before;
		if (ap->pos >= s.n)
			break;
		uint8_t c = s.p[ap->pos];
		if (c != '"' && c != '.' && !is_atext(c))
			break;
		if (words > 0 && gap)
			buf_append(ap->scratch, " ", 1);
		if (c == '"') {
			mime_unquote(s, &ap->pos, ap->scratch);
		} else if (c == '.') {
			buf_append(ap->scratch, ".", 1);
			ap->pos++;
		} else {
			size_t start = ap->pos;
			while (ap->pos < s.n && is_atext(s.p[ap->pos]))
				ap->pos++;
			buf_append(ap->scratch, s.p + start, ap->pos - start);
		}
		words++;
	}
	return words;
}

/* local-part = dot-atom / quoted-string / obs-local-part, appended as
 * the message spells it without whitespace and comments (a quoted local
 * part keeps its quotes, so that it still reads as one). */
static void parse_local_part(struct address_parser *ap)
{
	struct slice s = ap->s;
	for (;;) {
		skip_cfws(ap);
		if (ap->pos >= s.n)
			break;
		uint8_t c = s.p[ap->pos];
		if (c == '"') {
			size_t start = ap->pos;
			size_t q = ap->pos + 1;
			while (q < s.n && s.p[q] != '"')
				q += s.p[q] == '\\' && q + 1 < s.n ? 2 : 1;
			ap->pos = q < s.n ? q + 1 : s.n;
			for (size_t k = start; k < ap->pos; k++) {
				if (s.p[k] != '\r' && s.p[k] != '\n' &&
				    s.p[k] != '\0')
					buf_append(ap->scratch, s.p + k, 1);
			}
		} else if (is_atext(c)) {
			size_t start = ap->pos;
			while (ap->pos < s.n && is_atext(s.p[ap->pos]))
				ap->pos++;
			buf_append(ap->scratch, s.p + start, ap->pos - start);
		} else {
			break;
		}
		skip_cfws(ap);
		if (!at(ap, '.'))
			break;
		buf_append(ap->scratch, ".", 1);
		ap->pos++;
	}
}

/* domain = dot-atom / domain-literal / obs-domain */
static void parse_domain(struct address_parser *ap)
{
	struct slice s = ap->s;
	for (;;) {
		skip_cfws(ap);
		if (ap->pos >= s.n)
			break;
		uint8_t c = s.p[ap->pos];
		if (c == '[') {
			size_t start = ap->pos++;
			while (ap->pos < s.n && s.p[ap->pos] != ']')
				ap->pos += s.p[ap->pos] == '\\' ? 2 : 1;
			ap->pos = ap->pos < s.n ? ap->pos + 1 : s.n;
			for (size_t k = start; k < ap->pos; k++) {
				if (!mime_is_fws(s.p[k]) && s.p[k] != '\0')
					buf_append(ap->scratch, s.p + k, 1);
			}
		} else if (is_atext(c)) {
			size_t start = ap->pos;
			while (ap->pos < s.n && is_atext(s.p[ap->pos]))
				ap->pos++;
			buf_append(ap->scratch, s.p + start, ap->pos - start);
		} else {
			break;
		}
		skip_cfws(ap);
		if (!at(ap, '.'))
			break;
		buf_append(ap->scratch, ".", 1);
		ap->pos++;
	}
}

static struct mime_address *add(struct address_parser *ap)
{
	if (ap->count == ap->cap) {
		ap->cap = ap->cap == 0 ? 4 : ap->cap * 2;
		ap->list = xrealloc(ap->list, ap->cap * sizeof(*ap->list));
	}
	struct mime_address *a = &ap->list[ap->count++];
	memset(a, 0, sizeof(*a));
	a->name = a->route = a->mailbox = a->host = MIME_NIL;
	return a;
}

/* Places a constant in scratch; returns its offset. */
static size_t put_const(struct address_parser *ap, const char *text,
			size_t *len_r)
{
	size_t off = ap->scratch->n;
	buf_append_cstr(ap->scratch, text);
	*len_r = ap->scratch->n - off;
	return off;
}

/* obs-route = obs-domain-list ":" inside an angle-addr, kept as
 * "@a,@b". */
static void parse_route(struct address_parser *ap, struct mime_address *a)
{
	size_t start = ap->scratch->n;
	for (;;) {
		skip_cfws(ap);
		if (at(ap, ',')) {
			ap->pos++;
			continue;
		}
		if (!at(ap, '@'))
			break;
		ap->pos++;
		if (ap->scratch->n > start)
			buf_append(ap->scratch, ",", 1);
		buf_append(ap->scratch, "@", 1);
		parse_domain(ap);
	}
	if (at(ap, ':'))
		ap->pos++;
	a->route = start;
	a->route_len = ap->scratch->n - start;
}

static void fill_missing(struct address_parser *ap, struct mime_address *a)
{
	if (a->mailbox == MIME_NIL || a->mailbox_len == 0) {
		a->mailbox = put_const(ap, "MISSING_MAILBOX", &a->mailbox_len);
		a->mailbox_missing = true;
	}
	if (a->host == MIME_NIL || a->host_len == 0) {
		a->host = put_const(ap, "MISSING_DOMAIN", &a->host_len);
		a->host_missing = true;
	}
}

/* mailbox = name-addr / addr-spec */
static void parse_mailbox(struct address_parser *ap)
{
	size_t start = ap->pos;
	size_t name = ap->scratch->n;
	buf_reset(&ap->comment);
	size_t words = parse_phrase(ap);
	size_t name_len = ap->scratch->n - name;
	skip_cfws(ap);
	struct mime_address *a;
	if (at(ap, '<')) {
		a = add(ap);
		if (words > 0 && name_len > 0) {
			a->name = name;
			a->name_len = name_len;
		}
		ap->pos++;
		skip_cfws(ap);
		if (at(ap, '@'))
			parse_route(ap, a);
		a->mailbox = ap->scratch->n;
		parse_local_part(ap);
		a->mailbox_len = ap->scratch->n - a->mailbox;
		skip_cfws(ap);
		if (at(ap, '@')) {
			ap->pos++;
			a->host = ap->scratch->n;
			parse_domain(ap);
			a->host_len = ap->scratch->n - a->host;
		}
		/* Anything else up to the '>' is noise. */
		while (ap->pos < ap->s.n && !at(ap, '>'))
			ap->pos++;
		if (at(ap, '>'))
			ap->pos++;
	} else {
		/* addr-spec; a trailing comment names the mailbox. */
		ap->pos = start;
		ap->scratch->n = name;
		buf_reset(&ap->comment);
		a = add(ap);
		a->mailbox = ap->scratch->n;
		parse_local_part(ap);
		a->mailbox_len = ap->scratch->n - a->mailbox;
		skip_cfws(ap);
		if (at(ap, '@')) {
			ap->pos++;
			a->host = ap->scratch->n;
			parse_domain(ap);
			a->host_len = ap->scratch->n - a->host;
		}
	}
	size_t mark = ap->count - 1;
	skip_cfws(ap);
	a = &ap->list[mark];
	if (a->name == MIME_NIL && ap->comment.n > 0) {
		a->name = ap->scratch->n;
		buf_append_slice(ap->scratch, buf_slice(&ap->comment));
		a->name_len = ap->scratch->n - a->name;
	}
	if (a->name == MIME_NIL && a->mailbox_len == 0 &&
	    (a->host == MIME_NIL || a->host_len == 0) && a->route_len == 0) {
		/* Nothing at all ("<>", stray punctuation): no address. */
		ap->count--;
		return;
	}
	fill_missing(ap, a);
}

/* Skips what cannot be read, up to the next ',' (or ';' in a group),
 * outside quotes, comments and angle brackets. */
static void skip_junk(struct address_parser *ap, bool in_group)
{
	struct slice s = ap->s;
	while (ap->pos < s.n) {
		uint8_t c = s.p[ap->pos];
		if (c == ',' || (in_group && c == ';'))
			return;
		if (c == '"') {
			size_t q = ap->pos + 1;
			while (q < s.n && s.p[q] != '"')
				q += s.p[q] == '\\' && q + 1 < s.n ? 2 : 1;
			ap->pos = q < s.n ? q + 1 : s.n;
		} else if (c == '(') {
			skip_cfws(ap);
		} else {
			ap->pos++;
		}
	}
}

/* Whether a group starts here: a phrase followed by ':'. */
static bool group_ahead(struct address_parser *ap, size_t *name_r,
			size_t *name_len_r)
{
	size_t start = ap->pos, mark = ap->scratch->n;
	*name_r = mark;
	size_t words = parse_phrase(ap);
	*name_len_r = ap->scratch->n - mark;
	skip_cfws(ap);
	if (words > 0 && at(ap, ':')) {
		ap->pos++;
		return true;
	}
	ap->pos = start;
	ap->scratch->n = mark;
	return false;
}

struct mime_address *mime_parse_addresses(struct slice value,
					  struct buf *scratch, size_t *count_r)
{
	struct address_parser ap = {0};
	ap.s = value;
	ap.scratch = scratch;
	buf_init(&ap.comment, value.n + 1);
	bool in_group = false;
	for (;;) {
		skip_cfws(&ap);
		if (ap.pos >= value.n || ap.count >= MIME_MAX_ADDRESSES)
			break;
		uint8_t c = value.p[ap.pos];
		if (c == ',') {
			ap.pos++;
			continue;
		}
		if (c == ';') {
			ap.pos++;
			if (in_group) {
				add(&ap)->group_end = true;
				in_group = false;
			}
			continue;
		}
		size_t name, name_len;
		if (!in_group && group_ahead(&ap, &name, &name_len)) {
			struct mime_address *a = add(&ap);
			a->group_start = true;
			a->mailbox = name;
			a->mailbox_len = name_len;
			in_group = true;
			continue;
		}
		size_t before = ap.pos;
		parse_mailbox(&ap);
		skip_cfws(&ap);
		if (ap.pos < value.n && !at(&ap, ',') && !at(&ap, ';'))
			skip_junk(&ap, in_group);
		if (ap.pos == before)
			ap.pos++; /* never loop in place */
	}
	if (in_group)
		add(&ap)->group_end = true;
	buf_free(&ap.comment);
	*count_r = ap.count;
	return ap.list;
}
