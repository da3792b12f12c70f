/* jmap.c: a parsed message as the JMAP webmail sees it (RFC 8621 4.1):
 * EmailBodyPart objects, the textBody / htmlBody / attachments lists of
 * 4.1.4, part content and text for blobs and bodyValues, addresses, the
 * sent date with its zone, and the preview.
 *
 * It reads the part tree mime.c built (mime_internal.h) and never parses
 * boundaries itself. Attached messages are leaves here, as in JMAP's
 * bodyStructure, so the walk over the tree stays within MIME_MAX_DEPTH
 * multiparts; the one recursion (parseStructure) follows that nesting. */
#include "core/common.h"

#include "mime/jmap.h"
#include "mime/mime_internal.h"

/* ---- small helpers ---- */

static char lower(uint8_t c)
{
	return (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
}

static void set_cstr(char *dst, size_t size, const char *s)
{
	size_t n = strlen(s);
	DIJK_ASSERT(n < size);
	memcpy(dst, s, n + 1);
}

/* Copies s into dst lower-cased; false (and dst "") when it does not fit
 * or holds anything but printable ASCII. */
static bool copy_lower(char *dst, size_t size, struct slice s)
{
	dst[0] = '\0';
	if (s.n >= size)
		return false;
	for (size_t i = 0; i < s.n; i++) {
		if (s.p[i] <= 0x20 || s.p[i] >= 0x7f) {
			dst[0] = '\0';
			return false;
		}
		dst[i] = lower(s.p[i]);
	}
	dst[s.n] = '\0';
	return true;
}

/* The length of the longest prefix of the UTF-8 text s of at most max
 * bytes that does not end inside a character. */
static size_t utf8_cut(struct slice s, size_t max)
{
	if (s.n <= max)
		return s.n;
	size_t cut = max;
	/* s.p[cut] is the first byte left out: if it continues a
	 * character, that character starts before it and goes too. */
	while (cut > 0 && (s.p[cut] & 0xc0) == 0x80)
		cut--;
	return cut;
}

/* Decodes the UTF-8 character at s.p[*pos] and advances past it; an
 * invalid byte is U+FFFD and one byte long. */
static uint32_t utf8_next(struct slice s, size_t *pos)
{
	uint8_t c = s.p[(*pos)++];
	if (c < 0x80)
		return c;
	size_t n;
	uint32_t cp, min;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 1;
		cp = c & 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 2;
		cp = c & 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 3;
		cp = c & 0x07;
		min = 0x10000;
	} else {
		return 0xfffd;
	}
	if (*pos + n > s.n)
		return 0xfffd;
	for (size_t k = 0; k < n; k++) {
		uint8_t cc = s.p[*pos + k];
		if ((cc & 0xc0) != 0x80)
			return 0xfffd;
		cp = cp << 6 | (cc & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0xfffd;
	*pos += n;
	return cp;
}

static bool is_control(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp < 0xa0);
}

/* Appends s as UTF-8 (read as UTF-8 when it is, else windows-1252, as
 * unlabelled header text is) without control characters. */
static void append_clean(struct slice s, struct buf *out)
{
	if (s.n == 0)
		return;
	struct buf utf8;
	buf_init(&utf8, 4 * s.n + 16);
	mime_charset_to_utf8(slice_make("", 0), s, &utf8);
	struct slice u = buf_slice(&utf8);
	for (size_t pos = 0; pos < u.n;) {
		size_t start = pos;
		uint32_t cp = utf8_next(u, &pos);
		if (!is_control(cp))
			buf_append(out, u.p + start, pos - start);
	}
	buf_free(&utf8);
}

/* A heap copy of the first MIME_JMAP_MAX_VALUE bytes of s (cut before a
 * character), or NULL when s is empty. */
static char *dup_value(struct slice s)
{
	size_t n = utf8_cut(s, MIME_JMAP_MAX_VALUE);
	return n == 0 ? NULL : xstrndup(s.p, n);
}

/* The first token of a header value, with the position after it. */
static struct slice first_token(struct slice v, size_t *end_r)
{
	size_t pos = mime_skip_cfws(v, 0), start = pos;
	while (pos < v.n && mime_is_token_char(v.p[pos]))
		pos++;
	*end_r = pos;
	return slice_make(v.p + start, pos - start);
}

/* ---- parameters with RFC 2231 (and RFC 2047) ---- */

struct param_section {
	bool seen, extended;
	size_t start, len; /* in the scratch buffer */
};

/* What one header value says of one parameter: name=, name*= and
 * name*N(*)= pieces, each the first of its kind. */
struct param_slot {
	const char *name;
	struct param_section plain, extended;
	bool any_section;
	struct param_section sections[MIME_JMAP_MAX_SECTIONS];
};

struct param_search {
	struct param_slot *slots;
	size_t count;
};

static void keep_section(struct param_section *s, bool extended,
			 const struct mime_param *param)
{
	if (s->seen)
		return;
	s->seen = true;
	s->extended = extended;
	s->start = param->value_start;
	s->len = param->value_len;
}

static void param_piece(void *ctx, const struct mime_param *param,
			const struct buf *scratch)
{
	struct param_search *ps = ctx;
	struct slice n = param->name;
	const uint8_t *star = memchr(n.p, '*', n.n);
	struct slice base =
		slice_make(n.p, star != NULL ? (size_t)(star - n.p) : n.n);
	struct param_slot *slot = NULL;
	for (size_t i = 0; i < ps->count && slot == NULL; i++) {
		if (slice_eq_ci(base, ps->slots[i].name))
			slot = &ps->slots[i];
	}
	if (slot == NULL)
		return;
	if (star == NULL) {
		keep_section(&slot->plain, false, param);
		return;
	}
	/* What follows the name: "*", or "*N" or "*N*" (RFC 2231 3, 4). */
	size_t pos = base.n + 1;
	if (pos == n.n) {
		keep_section(&slot->extended, true, param);
		return;
	}
	size_t number = 0, digits = 0;
	while (pos < n.n && n.p[pos] >= '0' && n.p[pos] <= '9' && digits < 4) {
		number = number * 10 + (size_t)(n.p[pos++] - '0');
		digits++;
	}
	bool extended = pos < n.n && n.p[pos] == '*';
	if (extended)
		pos++;
	if (digits == 0 || pos != n.n || number >= MIME_JMAP_MAX_SECTIONS)
		return;
	slot->any_section = true;
	keep_section(&slot->sections[number], extended, param);
}

/* Reads the parameters of a Content-Type or Content-Disposition value
 * from pos into slots. The values stay in scratch. */
static void find_params(struct slice value, size_t pos, struct buf *scratch,
			struct param_slot *slots, size_t count)
{
	struct param_search ps = {slots, count};
	/* Values are read as scratch->p + offset, which needs storage even
	 * when every value is empty. */
	buf_cstr(scratch);
	mime_parse_params(value, pos, scratch, param_piece, &ps);
}

static int hex_digit(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* RFC 2231 %XX escapes undone; a malformed one is kept as it is. */
static void percent_decode(struct slice s, struct buf *out)
{
	size_t run = 0;
	for (size_t i = 0; i < s.n; i++) {
		if (s.p[i] != '%' || i + 2 >= s.n)
			continue;
		int hi = hex_digit(s.p[i + 1]), lo = hex_digit(s.p[i + 2]);
		if (hi < 0 || lo < 0)
			continue;
		buf_append(out, s.p + run, i - run);
		uint8_t byte = (uint8_t)(hi << 4 | lo);
		buf_append(out, &byte, 1);
		i += 2;
		run = i + 1;
	}
	buf_append(out, s.p + run, s.n - run);
}

/* Splits charset'language'text (RFC 2231 4); without both quotes the
 * whole value is text in no charset. */
static struct slice split_charset(struct slice v, struct slice *charset_r)
{
	*charset_r = slice_make("", 0);
	const uint8_t *q1 = memchr(v.p, '\'', v.n);
	if (q1 == NULL)
		return v;
	size_t after = (size_t)(q1 - v.p) + 1;
	const uint8_t *q2 = memchr(v.p + after, '\'', v.n - after);
	if (q2 == NULL)
		return v;
	*charset_r = slice_make(v.p, (size_t)(q1 - v.p));
	size_t text = (size_t)(q2 - v.p) + 1;
	return slice_make(v.p + text, v.n - text);
}

/* Appends the value of a parameter as UTF-8: its RFC 2231 form when there
 * is one (RFC 6266 4.3 prefers it), else the plain one with RFC 2047
 * words decoded. Returns false when the parameter is absent. */
static bool param_text(const struct param_slot *slot, const struct buf *scratch,
		       struct buf *out)
{
	struct buf raw;
	struct slice charset = slice_make("", 0);
	bool encoded = false;
	if (slot->extended.seen) {
		struct slice v = slice_make(scratch->p + slot->extended.start,
					    slot->extended.len);
		buf_init(&raw, v.n + 1);
		buf_cstr(&raw);
		percent_decode(split_charset(v, &charset), &raw);
		encoded = true;
	} else if (slot->any_section) {
		buf_init(&raw, scratch->n + 1);
		buf_cstr(&raw);
		for (size_t i = 0; i < MIME_JMAP_MAX_SECTIONS; i++) {
			const struct param_section *s = &slot->sections[i];
			if (!s->seen)
				continue;
			struct slice v =
				slice_make(scratch->p + s->start, s->len);
			if (!s->extended) {
				buf_append_slice(&raw, v);
				continue;
			}
			/* Only the first section names the charset. */
			if (i == 0)
				v = split_charset(v, &charset);
			percent_decode(v, &raw);
			encoded = true;
		}
	} else if (slot->plain.seen) {
		buf_init(&raw, slot->plain.len + 1);
		buf_cstr(&raw);
		buf_append(&raw, scratch->p + slot->plain.start,
			   slot->plain.len);
	} else {
		return false;
	}
	if (encoded)
		mime_charset_to_utf8(charset, buf_slice(&raw), out);
	else
		mime_decode_header(buf_slice(&raw), out);
	buf_free(&raw);
	return true;
}

/* A file name fit for a download: no control characters, no path
 * separators, the ends trimmed; NULL when nothing is left. */
static char *safe_name(struct slice utf8)
{
	struct buf out;
	buf_init(&out, utf8.n + 1);
	for (size_t pos = 0; pos < utf8.n;) {
		size_t start = pos;
		uint32_t cp = utf8_next(utf8, &pos);
		if (is_control(cp) || cp == '/' || cp == '\\')
			buf_append(&out, "_", 1);
		else if (cp == 0xfffd && pos - start == 1)
			mime_utf8_put(&out, cp); /* an invalid byte */
		else
			buf_append(&out, utf8.p + start, pos - start);
	}
	size_t start = 0, end = out.n;
	while (start < end && mime_is_wsp(out.p[start]))
		start++;
	while (end > start && mime_is_wsp(out.p[end - 1]))
		end--;
	char *name = start < end
			     ? dup_value(slice_make(out.p + start, end - start))
			     : NULL;
	buf_free(&out);
	return name;
}

/* ---- one part ---- */

/* Whether the part's Content-Type (type, subtype and parameters) is read:
 * not for a part without a usable one, nor for a multipart or message
 * shown as text/plain (its parameters describe what it is not). */
static bool type_usable(const struct mime_part *part)
{
	return part->have_type && !part->as_text;
}

/* type and charset of a part, as struct mime_body_part gives them. */
static void part_media(const struct mime_message *m,
		       const struct mime_part *part,
		       char type[MIME_JMAP_TYPE_SIZE],
		       char charset[MIME_JMAP_CHARSET_SIZE])
{
	charset[0] = '\0';
	if (!type_usable(part)) {
		/* RFC 2045 5.2 and RFC 2046 5.1.5 defaults; RFC 8621 gives
		 * "us-ascii" to every part without a Content-Type. */
		set_cstr(type, MIME_JMAP_TYPE_SIZE,
			 part->digest_default && !part->as_text
				 ? "message/rfc822"
				 : "text/plain");
		set_cstr(charset, MIME_JMAP_CHARSET_SIZE, "us-ascii");
		return;
	}
	size_t tn = part->type.n, sn = part->subtype.n;
	if (tn + 1 + sn >= MIME_JMAP_TYPE_SIZE) {
		/* A multipart stays one (RFC 2046 5.1.3: an unknown subtype
		 * is read as mixed), so that type and structure agree. */
		set_cstr(type, MIME_JMAP_TYPE_SIZE,
			 part->kind == MIME_PART_MULTIPART
				 ? "multipart/mixed"
				 : "application/octet-stream");
	} else {
		copy_lower(type, tn + 1, part->type);
		type[tn] = '/';
		copy_lower(type + tn + 1, sn + 1, part->subtype);
	}
	struct param_slot slot = {.name = "charset"};
	struct slice v = mime_field_slice(m, part->content_type);
	struct buf scratch;
	buf_init(&scratch, v.n + 1);
	find_params(v, part->params_pos, &scratch, &slot, 1);
	if (slot.plain.seen)
		copy_lower(charset, MIME_JMAP_CHARSET_SIZE,
			   slice_make(scratch.p + slot.plain.start,
				      slot.plain.len));
	else if (strncmp(type, "text/", 5) == 0)
		set_cstr(charset, MIME_JMAP_CHARSET_SIZE, "us-ascii");
	buf_free(&scratch);
}

/* The name parameter of one header value, as safe_name gives it. */
static char *name_param(struct slice value, size_t pos, const char *param)
{
	struct param_slot slot = {.name = param};
	struct buf scratch, text;
	buf_init(&scratch, value.n + 1);
	find_params(value, pos, &scratch, &slot, 1);
	buf_init(&text, 4 * scratch.n + 16);
	char *name = NULL;
	if (param_text(&slot, &scratch, &text))
		name = safe_name(buf_slice(&text));
	buf_free(&text);
	buf_free(&scratch);
	return name;
}

/* Content-ID: what is between the angle brackets (or the first word
 * when there are none), folding and controls removed. */
static char *content_id(struct slice v)
{
	size_t pos = mime_skip_cfws(v, 0), end;
	if (pos < v.n && v.p[pos] == '<') {
		pos++;
		const uint8_t *gt = memchr(v.p + pos, '>', v.n - pos);
		end = gt != NULL ? (size_t)(gt - v.p) : v.n;
	} else {
		end = pos;
		while (end < v.n && !mime_is_fws(v.p[end]) && v.p[end] != '(')
			end++;
	}
	struct buf raw, out;
	buf_init(&raw, end - pos + 1);
	for (size_t i = pos; i < end; i++) {
		if (!mime_is_fws(v.p[i]))
			buf_append(&raw, v.p + i, 1);
	}
	buf_init(&out, 4 * raw.n + 16);
	append_clean(buf_slice(&raw), &out);
	char *cid = dup_value(buf_slice(&out));
	buf_free(&raw);
	buf_free(&out);
	return cid;
}

/* Content-Language: its tags joined by ",". */
static char *languages(struct slice v)
{
	struct buf out;
	buf_init(&out, v.n + 1);
	size_t pos = 0;
	for (;;) {
		pos = mime_skip_cfws(v, pos);
		if (pos < v.n && v.p[pos] == ',') {
			pos++;
			continue;
		}
		size_t t = pos;
		while (pos < v.n && mime_is_token_char(v.p[pos]))
			pos++;
		if (pos == t)
			break;
		if (out.n > 0)
			buf_append(&out, ",", 1);
		buf_append(&out, v.p + t, pos - t);
	}
	char *tags = dup_value(buf_slice(&out));
	buf_free(&out);
	return tags;
}

static char *location(struct slice v)
{
	struct buf unfolded, out;
	buf_init(&unfolded, v.n + 1);
	mime_unfold(v, &unfolded);
	buf_init(&out, 4 * unfolded.n + 16);
	append_clean(buf_slice(&unfolded), &out);
	char *loc = dup_value(buf_slice(&out));
	buf_free(&unfolded);
	buf_free(&out);
	return loc;
}

/* Fills bp from part idx. Sizes after decoding need the decoding, done
 * in decoded; without it (NULL) sizes are as stored. */
static void fill_part(const struct mime_message *m, uint32_t idx,
		      struct mime_body_part *bp, struct buf *decoded)
{
	const struct mime_part *part = &m->parts[idx];
	bp->multipart = part->kind == MIME_PART_MULTIPART;
	part_media(m, part, bp->type, bp->charset);

	size_t disposition_end = 0;
	if (part->disposition.present) {
		struct slice v = mime_field_slice(m, part->disposition);
		struct slice token = first_token(v, &disposition_end);
		copy_lower(bp->disposition, sizeof(bp->disposition), token);
		bp->name = name_param(v, disposition_end, "filename");
	}
	if (bp->name == NULL && type_usable(part))
		bp->name = name_param(mime_field_slice(m, part->content_type),
				      part->params_pos, "name");
	if (part->id.present)
		bp->cid = content_id(mime_field_slice(m, part->id));
	if (part->language.present)
		bp->language = languages(mime_field_slice(m, part->language));
	if (part->location.present)
		bp->location = location(mime_field_slice(m, part->location));

	bp->size = part->body_end - part->body_start;
	if (decoded != NULL && part->kind == MIME_PART_LEAF &&
	    (part->encoding == MIME_CTE_BASE64 ||
	     part->encoding == MIME_CTE_QP)) {
		buf_reset(decoded);
		mime_decode_body(m, part, decoded);
		bp->size = decoded->n;
	}
}

/* ---- RFC 8621 4.1.4 parseStructure ---- */

struct body_list {
	uint32_t *items;
	size_t count, cap;
};

static void list_push(struct body_list *l, uint32_t idx)
{
	/* Each part enters each list once at most (a copy at the end of an
	 * alternative only moves what the other list did not get), so cap,
	 * the number of parts, is never reached; the check is a guard. */
	if (l->count < l->cap)
		l->items[l->count++] = idx;
}

struct structure {
	const struct mime_jmap_body *b;
	struct body_list text, html, attachments;
};

static bool is_inline_media(const char *type)
{
	return strncmp(type, "image/", 6) == 0 ||
	       strncmp(type, "audio/", 6) == 0 ||
	       strncmp(type, "video/", 6) == 0;
}

/* The algorithm of the RFC over the parts first, first's siblings...
 * (the root has none);
 * text_on / html_on are false where the RFC's textBody / htmlBody are
 * null. The lists are shared by every level, as the RFC's arrays are. */
static void parse_structure(struct structure *st, uint32_t first,
			    const char *multipart_type, bool in_alternative,
			    bool text_on, bool html_on, size_t depth)
{
	const struct mime_body_part *parts = st->b->parts;
	/* Multiparts nest at most MIME_MAX_DEPTH deep (mime.c). */
	if (depth > MIME_MAX_DEPTH + 1)
		return;
	bool alternative = strcmp(multipart_type, "alternative") == 0;
	bool related = strcmp(multipart_type, "related") == 0;
	size_t text_length = st->text.count, html_length = st->html.count;
	size_t i = 0;
	for (uint32_t c = first; c != MIME_JMAP_NONE;
	     c = parts[c].next_sibling, i++) {
		const struct mime_body_part *part = &parts[c];
		bool text = strcmp(part->type, "text/plain") == 0;
		bool html = strcmp(part->type, "text/html") == 0;
		bool media = is_inline_media(part->type);
		bool is_inline =
			strcmp(part->disposition, "attachment") != 0 &&
			(text || html || media) &&
			(i == 0 || (!related && (media || part->name == NULL)));
		if (part->multipart) {
			const char *sub = strchr(part->type, '/') + 1;
			parse_structure(st, part->first_child, sub,
					in_alternative ||
						strcmp(sub, "alternative") == 0,
					text_on, html_on, depth + 1);
			continue;
		}
		if (!is_inline) {
			list_push(&st->attachments, c);
			continue;
		}
		if (alternative) {
			/* The RFC pushes here without checking for null: an
			 * enclosing level's dropped list takes nothing. */
			if (text && text_on)
				list_push(&st->text, c);
			else if (html && html_on)
				list_push(&st->html, c);
			else if (!text && !html)
				list_push(&st->attachments, c);
			continue;
		}
		if (in_alternative) {
			if (text)
				html_on = false;
			if (html)
				text_on = false;
		}
		if (text_on)
			list_push(&st->text, c);
		if (html_on)
			list_push(&st->html, c);
		if ((!text_on || !html_on) && media)
			list_push(&st->attachments, c);
	}
	if (!alternative || !text_on || !html_on)
		return;
	/* Only HTML found: it serves as the text too; and the reverse. */
	if (st->text.count == text_length && st->html.count != html_length) {
		for (size_t k = html_length; k < st->html.count; k++)
			list_push(&st->text, st->html.items[k]);
	}
	if (st->html.count == html_length && st->text.count != text_length) {
		for (size_t k = text_length; k < st->text.count; k++)
			list_push(&st->html, st->text.items[k]);
	}
}

/* ---- the body ---- */

/* The next part of a walk over the tree in document order that does not
 * enter attached messages, or MIME_PART_NONE at the end. */
static uint32_t walk_next(const struct mime_message *m, uint32_t idx)
{
	const struct mime_part *part = &m->parts[idx];
	if (part->kind == MIME_PART_MULTIPART &&
	    part->first_child != MIME_PART_NONE)
		return part->first_child;
	while (idx != 0 && m->parts[idx].next_sibling == MIME_PART_NONE)
		idx = m->parts[idx].parent;
	return idx == 0 ? MIME_PART_NONE : m->parts[idx].next_sibling;
}

static void build_body(const struct mime_message *m, bool sizes,
		       struct mime_jmap_body *out)
{
	memset(out, 0, sizeof(*out));
	size_t max = m->part_count;
	out->parts = xcalloc(max, sizeof(*out->parts));
	/* The JMAP index of each mime part, and of each JMAP part the last
	 * child seen and its own number among its siblings. */
	uint32_t *index = xmalloc(max * sizeof(*index));
	uint32_t *last_child = xmalloc(max * sizeof(*last_child));
	uint32_t *number = xmalloc(max * sizeof(*number));
	struct buf decoded;
	buf_init(&decoded, m->bytes.n + 16);

	for (uint32_t idx = 0; idx != MIME_PART_NONE; idx = walk_next(m, idx)) {
		uint32_t j = (uint32_t)out->part_count++;
		struct mime_body_part *bp = &out->parts[j];
		index[idx] = j;
		last_child[j] = MIME_JMAP_NONE;
		bp->first_child = bp->next_sibling = MIME_JMAP_NONE;
		bp->parent =
			idx == 0 ? MIME_JMAP_NONE : index[m->parts[idx].parent];
		fill_part(m, idx, bp, sizes ? &decoded : NULL);
		if (idx == 0) {
			number[j] = 1;
			if (!bp->multipart)
				memcpy(bp->part_id, "1", 2);
			continue;
		}
		struct mime_body_part *parent = &out->parts[bp->parent];
		uint32_t prev = last_child[bp->parent];
		if (prev == MIME_JMAP_NONE)
			parent->first_child = j;
		else
			out->parts[prev].next_sibling = j;
		number[j] = prev == MIME_JMAP_NONE ? 1 : number[prev] + 1;
		last_child[bp->parent] = j;
		int n = bp->parent == 0
				? snprintf(bp->part_id, sizeof(bp->part_id),
					   "%u", number[j])
				: snprintf(bp->part_id, sizeof(bp->part_id),
					   "%s.%u", parent->part_id, number[j]);
		/* Depth and part counts bound the length (jmap.h). */
		DIJK_ASSERT(n > 0 && (size_t)n < sizeof(bp->part_id));
	}
	buf_free(&decoded);
	free(index);
	free(last_child);
	free(number);

	struct structure st = {.b = out};
	struct body_list *lists[] = {&st.text, &st.html, &st.attachments};
	for (size_t k = 0; k < ARRAY_SIZE(lists); k++) {
		lists[k]->items =
			xmalloc(out->part_count * sizeof(*lists[k]->items));
		lists[k]->cap = out->part_count;
	}
	/* The RFC's first call: the root alone, as in a multipart/mixed. */
	parse_structure(&st, 0, "mixed", false, true, true, 0);
	out->text_body = st.text.items;
	out->text_count = st.text.count;
	out->html_body = st.html.items;
	out->html_count = st.html.count;
	out->attachments = st.attachments.items;
	out->attachment_count = st.attachments.count;
}

void mime_jmap_body(const struct mime_message *m, struct mime_jmap_body *out)
{
	build_body(m, true, out);
}

void mime_jmap_body_free(struct mime_jmap_body *b)
{
	for (size_t i = 0; i < b->part_count; i++) {
		free(b->parts[i].name);
		free(b->parts[i].cid);
		free(b->parts[i].language);
		free(b->parts[i].location);
	}
	free(b->parts);
	free(b->text_body);
	free(b->html_body);
	free(b->attachments);
	memset(b, 0, sizeof(*b));
}

/* ---- content and text of a part ---- */

/* The part named by an IMAP section number, or MIME_PART_NONE. */
static uint32_t part_by_id(const struct mime_message *m, const char *id)
{
	uint32_t numbers[MIME_MAX_DEPTH];
	size_t count = 0;
	const char *p = id;
	while (*p != '\0') {
		if (count == MIME_MAX_DEPTH || *p < '1' || *p > '9')
			return MIME_PART_NONE;
		uint32_t n = 0;
		while (*p >= '0' && *p <= '9') {
			n = n * 10 + (uint32_t)(*p++ - '0');
			/* No part has a larger number; stop before overflow. */
			if (n > MIME_MAX_PARTS)
				return MIME_PART_NONE;
		}
		numbers[count++] = n;
		if (*p == '.' && p[1] != '\0')
			p++;
		else if (*p != '\0')
			return MIME_PART_NONE;
	}
	if (count == 0)
		return MIME_PART_NONE;
	return mime_find_part(m, numbers, count);
}

int mime_part_content(const struct mime_message *m, const char *part_id,
		      struct buf *out)
{
	uint32_t idx = part_by_id(m, part_id);
	if (idx == MIME_PART_NONE)
		return -1;
	const struct mime_part *part = &m->parts[idx];
	/* A multipart or message is never encoded (RFC 2045 6.4). */
	if (part->kind == MIME_PART_LEAF)
		mime_decode_body(m, part, out);
	else
		buf_append(out, m->bytes.p + part->body_start,
			   part->body_end - part->body_start);
	return 0;
}

/* Drops a UTF-8 sequence cut short at the end of b. */
static void drop_cut_sequence(struct buf *b)
{
	size_t k = b->n, back = 0;
	while (k > 0 && back < 3 && (b->p[k - 1] & 0xc0) == 0x80) {
		k--;
		back++;
	}
	if (k == 0 || b->p[k - 1] < 0xc0)
		return;
	uint8_t lead = b->p[k - 1];
	size_t need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
	if (b->n - (k - 1) < need)
		b->n = k - 1;
}

/* Appends the text of a leaf as UTF-8, read from at most scan bytes of
 * its body as stored. */
static void leaf_text(const struct mime_message *m,
		      const struct mime_part *part, const char *charset,
		      size_t scan, struct buf *out)
{
	struct mime_part head = *part;
	bool cut = head.body_end - head.body_start > scan;
	if (cut)
		head.body_end = head.body_start + scan;
	struct buf decoded;
	buf_init(&decoded, head.body_end - head.body_start + 16);
	buf_cstr(&decoded);
	mime_decode_body(m, &head, &decoded);
	/* A character cut in two would make unlabelled text look like
	 * windows-1252 rather than UTF-8, and garble the whole of it. */
	if (cut)
		drop_cut_sequence(&decoded);
	mime_charset_to_utf8(slice_cstr(charset), buf_slice(&decoded), out);
	buf_free(&decoded);
}

/* The part part_id names when it is a text/ leaf, with its type and
 * charset; MIME_PART_NONE otherwise. */
static uint32_t text_part(const struct mime_message *m, const char *part_id,
			  char type[MIME_JMAP_TYPE_SIZE],
			  char charset[MIME_JMAP_CHARSET_SIZE])
{
	uint32_t idx = part_by_id(m, part_id);
	if (idx == MIME_PART_NONE || m->parts[idx].kind != MIME_PART_LEAF)
		return MIME_PART_NONE;
	part_media(m, &m->parts[idx], type, charset);
	return strncmp(type, "text/", 5) == 0 ? idx : MIME_PART_NONE;
}

int mime_part_text(const struct mime_message *m, const char *part_id,
		   size_t max_bytes, struct buf *out, bool *truncated_r)
{
	char type[MIME_JMAP_TYPE_SIZE], charset[MIME_JMAP_CHARSET_SIZE];
	bool truncated = false;
	uint32_t idx = text_part(m, part_id, type, charset);
	if (truncated_r != NULL)
		*truncated_r = false;
	if (idx == MIME_PART_NONE)
		return -1;
	const struct mime_part *part = &m->parts[idx];
	size_t size = part->body_end - part->body_start;
	struct buf text;
	/* The whole part, even when a little is asked: unlabelled text is
	 * UTF-8 or windows-1252 by what all of it holds, and a prefix could
	 * read otherwise. */
	buf_init(&text, 4 * size + 64);
	leaf_text(m, part, charset, SIZE_MAX, &text);
	size_t n = text.n;
	if (max_bytes > 0 && n > max_bytes) {
		n = utf8_cut(buf_slice(&text), max_bytes);
		truncated = true;
	}
	buf_append(out, text.p, n);
	buf_free(&text);
	if (truncated_r != NULL)
		*truncated_r = truncated;
	return 0;
}

/* ---- header fields ---- */

/* The raw value of the first top-level field called name. */
static bool first_field(const struct mime_message *m, const char *name,
			struct slice *value_r)
{
	struct mime_field_cursor c;
	struct slice field_name;
	mime_fields_init(m, 0, &c);
	while (mime_fields_next(m, &c, &field_name, value_r)) {
		if (slice_eq_ci(field_name, name))
			return true;
	}
	return false;
}

bool mime_header_raw(const struct mime_message *m, const char *name,
		     struct buf *out)
{
	struct slice value;
	if (!first_field(m, name, &value))
		return false;
	struct buf unfolded;
	buf_init(&unfolded, value.n + 1);
	buf_cstr(&unfolded);
	mime_unfold(value, &unfolded);
	mime_charset_to_utf8(slice_cstr("utf-8"), buf_slice(&unfolded), out);
	buf_free(&unfolded);
	return true;
}

static void field_addresses(struct slice value, mime_address_fn *fn, void *ctx)
{
	struct buf scratch, name, email;
	buf_init(&scratch, 4 * value.n + 64);
	buf_cstr(&scratch);
	buf_init(&name, 4 * value.n + 64);
	buf_init(&email, 4 * value.n + 64);
	size_t count = 0;
	struct mime_address *list =
		mime_parse_addresses(value, &scratch, &count);
	for (size_t i = 0; i < count; i++) {
		const struct mime_address *a = &list[i];
		if (a->group_start || a->group_end)
			continue;
		buf_reset(&name);
		if (a->name != MIME_NIL)
			mime_decode_header(
				slice_make(scratch.p + a->name, a->name_len),
				&name);
		struct buf raw;
		buf_init(&raw, a->mailbox_len + a->host_len + 2);
		if (!a->mailbox_missing)
			buf_append(&raw, scratch.p + a->mailbox,
				   a->mailbox_len);
		if (!a->host_missing) {
			buf_append(&raw, "@", 1);
			buf_append(&raw, scratch.p + a->host, a->host_len);
		}
		buf_reset(&email);
		append_clean(buf_slice(&raw), &email);
		buf_free(&raw);
		fn(name.n > 0 ? buf_cstr(&name) : NULL, buf_cstr(&email), ctx);
	}
	free(list);
	buf_free(&scratch);
	buf_free(&name);
	buf_free(&email);
}

void mime_header_addresses(const struct mime_message *m, const char *field,
			   mime_address_fn *fn, void *ctx)
{
	struct mime_field_cursor c;
	struct slice name, value;
	mime_fields_init(m, 0, &c);
	while (mime_fields_next(m, &c, &name, &value)) {
		if (slice_eq_ci(name, field))
			field_addresses(value, fn, ctx);
	}
}

/* Where the zone of a date-time is: after the time "hh:mm[:ss]" (with
 * the CFWS RFC 5322 4.3 allows around its parts). Empty when there is
 * none. */
static void find_zone(struct slice v, size_t *start_r, size_t *end_r)
{
	size_t pos = 0;
	*start_r = *end_r = v.n;
	for (;;) {
		pos = mime_skip_cfws(v, pos);
		if (pos >= v.n)
			return;
		if (v.p[pos] == ':')
			break;
		pos++;
	}
	for (int part = 0; part < 2; part++) {
		pos = mime_skip_cfws(v, pos + 1);
		while (pos < v.n && v.p[pos] >= '0' && v.p[pos] <= '9')
			pos++;
		pos = mime_skip_cfws(v, pos);
		if (pos >= v.n || v.p[pos] != ':')
			break;
	}
	size_t start = pos;
	if (pos < v.n && (v.p[pos] == '+' || v.p[pos] == '-')) {
		pos++;
		while (pos < v.n && v.p[pos] >= '0' && v.p[pos] <= '9')
			pos++;
	} else {
		while (pos < v.n &&
		       ((v.p[pos] | 0x20) >= 'a' && (v.p[pos] | 0x20) <= 'z'))
			pos++;
	}
	*start_r = start;
	*end_r = pos;
}

int64_t mime_date_zone(const struct mime_message *m, int *offset_minutes_r)
{
	*offset_minutes_r = 0;
	struct slice value;
	if (!first_field(m, "Date", &value))
		return -1;
	/* -1 is also 1969-12-31 23:59:59 UTC, as for mime_date. */
	int64_t utc = mime_parse_date(value);
	if (utc == -1)
		return -1;
	/* The zone is the difference between the time as written and the
	 * time in UTC: read the value again without its zone (which RFC
	 * 5322 4.3 takes as -0000), so that field.c's reading of numeric
	 * and obsolete zones stays the only one. */
	size_t start, end;
	find_zone(value, &start, &end);
	if (start == end)
		return utc;
	struct buf local;
	buf_init(&local, value.n + 1);
	buf_cstr(&local);
	buf_append(&local, value.p, start);
	buf_append(&local, value.p + end, value.n - end);
	int64_t as_written = mime_parse_date(buf_slice(&local));
	buf_free(&local);
	if (as_written != -1)
		*offset_minutes_r = (int)((as_written - utc) / 60);
	return utc;
}

/* ---- preview ---- */

struct preview {
	struct buf *out;
	size_t units; /* UTF-16 units written */
	bool space;   /* whitespace seen since the last character */
	bool full;
};

static bool is_space(uint32_t cp)
{
	return cp <= 0x20 || is_control(cp) || cp == 0xa0 || cp == 0x1680 ||
	       (cp >= 0x2000 && cp <= 0x200b) || cp == 0x2028 || cp == 0x2029 ||
	       cp == 0x202f || cp == 0x205f || cp == 0x3000 || cp == 0xfeff;
}

static void preview_add(struct preview *pv, struct slice text)
{
	for (size_t pos = 0; pos < text.n && !pv->full;) {
		size_t start = pos;
		uint32_t cp = utf8_next(text, &pos);
		if (is_space(cp)) {
			pv->space = true;
			continue;
		}
		/* Leading space is trimmed; trailing space is never
		 * written, as a space waits for the character after it. */
		bool gap = pv->space && pv->units > 0;
		size_t need = (cp > 0xffff ? 2 : 1) + (gap ? 1 : 0);
		if (pv->units + need > MIME_JMAP_PREVIEW_CHARS) {
			pv->full = true;
			return;
		}
		if (gap)
			buf_append(pv->out, " ", 1);
		if (cp == 0xfffd && pos - start == 1)
			mime_utf8_put(pv->out, cp);
		else
			buf_append(pv->out, text.p + start, pos - start);
		pv->units += need;
		pv->space = false;
	}
}

static void preview_parts(const struct mime_message *m,
			  const struct mime_jmap_body *b, const uint32_t *list,
			  size_t count, struct preview *pv)
{
	struct buf text, plain;
	buf_init(&text, 4 * MIME_JMAP_PREVIEW_SCAN + 64);
	buf_init(&plain, 4 * MIME_JMAP_PREVIEW_SCAN + 64);
	buf_cstr(&text);
	buf_cstr(&plain);
	for (size_t i = 0; i < count && !pv->full; i++) {
		const struct mime_body_part *bp = &b->parts[list[i]];
		bool html = strcmp(bp->type, "text/html") == 0;
		if (!html && strcmp(bp->type, "text/plain") != 0)
			continue;
		uint32_t idx = part_by_id(m, bp->part_id);
		if (idx == MIME_PART_NONE ||
		    m->parts[idx].kind != MIME_PART_LEAF)
			continue;
		buf_reset(&text);
		leaf_text(m, &m->parts[idx], bp->charset,
			  MIME_JMAP_PREVIEW_SCAN, &text);
		pv->space = true;
		if (html) {
			buf_reset(&plain);
			mime_html_to_text(buf_slice(&text), &plain);
			preview_add(pv, buf_slice(&plain));
		} else {
			preview_add(pv, buf_slice(&text));
		}
	}
	buf_free(&text);
	buf_free(&plain);
}

void mime_preview(const struct mime_message *m, struct buf *out)
{
	/* The lists need no sizes: spare decoding every attachment. */
	struct mime_jmap_body b;
	build_body(m, false, &b);
	struct preview pv = {.out = out};
	preview_parts(m, &b, b.text_body, b.text_count, &pv);
	if (pv.units == 0)
		preview_parts(m, &b, b.html_body, b.html_count, &pv);
	mime_jmap_body_free(&b);
}
