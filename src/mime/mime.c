/* mime.c: the structure of a message (RFC 5322, RFC 2045/2046) and what
 * IMAP builds from it: ENVELOPE and BODYSTRUCTURE (RFC 3501 7.4.2, RFC
 * 9051 7.5.2), sections (RFC 3501 6.4.5), BINARY (RFC 3516), and the
 * decoded header values, text, dates and addresses SEARCH, SORT and THREAD
 * use.
 *
 * mime_parse makes one pass over the bytes and keeps, for every part, the
 * offsets of its header and body, so that a section is a slice of the
 * original bytes. Boundaries are matched as RFC 2046 5.1.1 says (the
 * boundary at the start of a line, whatever follows), the innermost one
 * first, and a boundary of an enclosing multipart ends every part inside
 * it. The CRLF before a boundary belongs to the boundary. Parts are kept
 * in an array in document order and linked by index. */
#include "core/common.h"

#include "mime/mime.h"
#include "mime/mime_internal.h"

#include <strings.h>

#define NONE MIME_PART_NONE

/* ---- header fields ---- */

struct header_field {
	struct slice name;  /* empty for a continuation line with no field */
	struct slice value; /* raw: folded, line end excluded */
	struct slice whole; /* the field's lines, line ends included */
};

struct field_iter {
	struct slice s;
	size_t pos, end;
};

static struct field_iter field_iter_init(const struct mime_message *m,
					 const struct mime_part *part)
{
	struct field_iter it = {m->bytes, part->header_start, part->header_end};
	return it;
}

/* The end of the line at pos: the position of its LF, or end. */
static size_t line_end(struct slice s, size_t pos, size_t end)
{
	const uint8_t *lf = memchr(s.p + pos, '\n', end - pos);
	return lf != NULL ? (size_t)(lf - s.p) : end;
}

static bool field_next(struct field_iter *it, struct header_field *f)
{
	struct slice s = it->s;
	if (it->pos >= it->end)
		return false;
	size_t start = it->pos;
	size_t pos = start;
	size_t value_end;
	/* The field's lines: the first and every continuation. */
	for (;;) {
		size_t lf = line_end(s, pos, it->end);
		value_end = lf;
		if (value_end > pos && s.p[value_end - 1] == '\r')
			value_end--;
		pos = lf < it->end ? lf + 1 : it->end;
		if (pos >= it->end || !mime_is_wsp(s.p[pos]))
			break;
	}
	it->pos = pos;
	f->whole = slice_make(s.p + start, pos - start);
	const uint8_t *colon = memchr(s.p + start, ':', value_end - start);
	if (colon == NULL || mime_is_wsp(s.p[start])) {
		f->name = slice_make(s.p + start, 0);
		f->value = slice_make(s.p + start, value_end - start);
		return true;
	}
	size_t name_end = (size_t)(colon - s.p);
	size_t value_start = name_end + 1;
	while (name_end > start && mime_is_wsp(s.p[name_end - 1]))
		name_end--;
	f->name = slice_make(s.p + start, name_end - start);
	f->value = slice_make(s.p + value_start, value_end - value_start);
	return true;
}

void mime_fields_init(const struct mime_message *m, uint32_t idx,
		      struct mime_field_cursor *c)
{
	c->pos = m->parts[idx].header_start;
	c->end = m->parts[idx].header_end;
}

bool mime_fields_next(const struct mime_message *m, struct mime_field_cursor *c,
		      struct slice *name_r, struct slice *value_r)
{
	struct field_iter it = {m->bytes, c->pos, c->end};
	struct header_field f;
	if (!field_next(&it, &f))
		return false;
	c->pos = it.pos;
	*name_r = f.name;
	*value_r = f.value;
	return true;
}

/* field-name = 1*ftext, then (obsolete) whitespace, then ':'. */
static bool is_field_line(struct slice s, size_t pos, size_t end)
{
	size_t i = pos;
	while (i < end && s.p[i] >= 33 && s.p[i] <= 126 && s.p[i] != ':')
		i++;
	if (i == pos)
		return false;
	while (i < end && mime_is_wsp(s.p[i]))
		i++;
	return i < end && s.p[i] == ':';
}

/* The first field called name in the part's header. */
static bool find_field(const struct mime_message *m,
		       const struct mime_part *part, const char *name,
		       struct header_field *f)
{
	struct field_iter it = field_iter_init(m, part);
	while (field_next(&it, f)) {
		if (slice_eq_ci(f->name, name))
			return true;
	}
	return false;
}

/* ---- parsing ---- */

struct boundary {
	uint8_t text[MIME_MAX_BOUNDARY];
	size_t n;
};

struct parser {
	struct mime_message *m;
	struct slice s;
	struct boundary bounds[MIME_MAX_DEPTH + 1];
	size_t bound_count;
};

/* Where an entity ended: at a boundary line (which names the boundary
 * by its place on the stack) or at the end of the bytes (which = -1). */
struct hit {
	int which;
	bool close;
	size_t pos; /* start of the boundary line, or the end */
};

#define PART(ps, idx) (&(ps)->m->parts[(idx)])

static uint32_t new_part(struct parser *ps, uint32_t parent, uint32_t depth)
{
	struct mime_message *m = ps->m;
	if (m->part_count >= MIME_MAX_PARTS)
		return NONE;
	if (m->part_count == m->part_cap) {
		m->part_cap = m->part_cap == 0 ? 4 : m->part_cap * 2;
		if (m->part_cap > MIME_MAX_PARTS)
			m->part_cap = MIME_MAX_PARTS;
		m->parts = xrealloc(m->parts, m->part_cap * sizeof(*m->parts));
	}
	uint32_t idx = (uint32_t)m->part_count++;
	struct mime_part *part = &m->parts[idx];
	memset(part, 0, sizeof(*part));
	part->parent = parent;
	part->first_child = part->next_sibling = NONE;
	part->depth = depth;
	return idx;
}

/* The boundary whose line starts at pos, innermost first, or -1. */
static int boundary_at(const struct parser *ps, size_t pos, bool *close_r)
{
	struct slice s = ps->s;
	if (pos + 2 > s.n || s.p[pos] != '-' || s.p[pos + 1] != '-')
		return -1;
	for (size_t i = ps->bound_count; i-- > 0;) {
		const struct boundary *b = &ps->bounds[i];
		if (pos + 2 + b->n <= s.n &&
		    memcmp(s.p + pos + 2, b->text, b->n) == 0) {
			size_t q = pos + 2 + b->n;
			*close_r = q + 2 <= s.n && s.p[q] == '-' &&
				   s.p[q + 1] == '-';
			return (int)i;
		}
	}
	return -1;
}

static size_t next_line(struct slice s, size_t pos)
{
	size_t lf = line_end(s, pos, s.n);
	return lf < s.n ? lf + 1 : s.n;
}

/* The first boundary line at or after pos (a line start). */
static struct hit find_boundary(const struct parser *ps, size_t pos)
{
	struct hit h = {-1, false, ps->s.n};
	if (ps->bound_count == 0)
		return h;
	while (pos < ps->s.n) {
		int w = boundary_at(ps, pos, &h.close);
		if (w >= 0) {
			h.which = w;
			h.pos = pos;
			return h;
		}
		pos = next_line(ps->s, pos);
	}
	return h;
}

/* The end of a body that a boundary line at h.pos ends: the line end
 * before the boundary belongs to the boundary (RFC 2046 5.1.1). */
static size_t body_end_before(struct slice s, const struct hit *h, size_t min)
{
	size_t e = h->pos;
	if (h->which < 0)
		return e;
	if (e > min && s.p[e - 1] == '\n')
		e--;
	if (e > min && s.p[e - 1] == '\r')
		e--;
	return e;
}

static void note_field(struct mime_part *part, const struct header_field *f,
		       const uint8_t *base)
{
	static const struct {
		const char *name;
		size_t offset;
	} wanted[] = {
		{"Content-Type", offsetof(struct mime_part, content_type)},
		{"Content-Transfer-Encoding",
		 offsetof(struct mime_part, transfer_encoding)},
		{"Content-ID", offsetof(struct mime_part, id)},
		{"Content-Description",
		 offsetof(struct mime_part, description)},
		{"Content-Disposition",
		 offsetof(struct mime_part, disposition)},
		{"Content-Language", offsetof(struct mime_part, language)},
		{"Content-Location", offsetof(struct mime_part, location)},
		{"Content-MD5", offsetof(struct mime_part, md5)},
	};
	if (!slice_prefix_ci(f->name, "Content-"))
		return;
	for (size_t i = 0; i < ARRAY_SIZE(wanted); i++) {
		if (!slice_eq_ci(f->name, wanted[i].name))
			continue;
		struct mime_field_ref *ref =
			(struct mime_field_ref *)((char *)part +
						  wanted[i].offset);
		/* The first of a repeated field counts. */
		if (!ref->present) {
			ref->present = true;
			ref->start = (size_t)(f->value.p - base);
			ref->end = ref->start + f->value.n;
		}
		return;
	}
}

/* Reads the header at start. Returns false when a boundary line cut it
 * short (the part then has no body; *h says where). */
static bool parse_header(struct parser *ps, uint32_t idx, size_t start,
			 struct hit *h)
{
	struct slice s = ps->s;
	struct mime_part *part = PART(ps, idx);
	size_t pos = start, lines = 0;
	bool complete = true;
	part->header_start = start;
	for (;;) {
		if (pos >= s.n) {
			part->header_end = part->body_start = s.n;
			break;
		}
		int w = ps->bound_count > 0 ? boundary_at(ps, pos, &h->close)
					    : -1;
		if (w >= 0) {
			h->which = w;
			h->pos = pos;
			part->header_end = body_end_before(s, h, start);
			part->body_start = part->body_end = part->header_end;
			complete = false;
			break;
		}
		size_t lf = line_end(s, pos, s.n);
		size_t content_end = lf;
		if (content_end > pos && s.p[content_end - 1] == '\r')
			content_end--;
		if (content_end == pos) {
			/* The blank line. */
			part->header_end = pos;
			part->body_start = lf < s.n ? lf + 1 : s.n;
			break;
		}
		bool continuation = mime_is_wsp(s.p[pos]);
		if ((!continuation && !is_field_line(s, pos, content_end)) ||
		    lines >= MIME_MAX_HEADER_LINES ||
		    lf - start >= MIME_MAX_HEADER_SIZE) {
			/* No blank line: the body starts here. */
			part->header_end = part->body_start = pos;
			break;
		}
		lines++;
		pos = lf < s.n ? lf + 1 : s.n;
	}
	struct field_iter it = field_iter_init(ps->m, part);
	struct header_field f;
	while (field_next(&it, &f))
		note_field(part, &f, s.p);
	return complete;
}

/* type "/" subtype, as RFC 2045 5.1 (comments allowed around them). */
static void parse_content_type(struct parser *ps, struct mime_part *part)
{
	if (!part->content_type.present)
		return;
	struct slice v = mime_field_slice(ps->m, part->content_type);
	size_t pos = mime_skip_cfws(v, 0), t = pos;
	while (pos < v.n && mime_is_token_char(v.p[pos]))
		pos++;
	struct slice type = slice_make(v.p + t, pos - t);
	pos = mime_skip_cfws(v, pos);
	if (type.n == 0 || pos >= v.n || v.p[pos] != '/')
		return;
	pos = mime_skip_cfws(v, pos + 1);
	size_t st = pos;
	while (pos < v.n && mime_is_token_char(v.p[pos]))
		pos++;
	if (pos == st)
		return;
	part->have_type = true;
	part->type = type;
	part->subtype = slice_make(v.p + st, pos - st);
	part->params_pos = pos;
}

struct boundary_search {
	struct boundary *out;
	bool found, usable;
};

static void boundary_param(void *ctx, const struct mime_param *param,
			   const struct buf *scratch)
{
	struct boundary_search *bs = ctx;
	if (bs->found || !slice_eq_ci(param->name, "boundary"))
		return;
	bs->found = true;
	if (param->value_len == 0 || param->value_len > MIME_MAX_BOUNDARY)
		return;
	memcpy(bs->out->text, scratch->p + param->value_start,
	       param->value_len);
	bs->out->n = param->value_len;
	bs->usable = true;
}

static bool type_is(const struct mime_part *part, const char *type,
		    const char *subtype)
{
	return part->have_type && slice_eq_ci(part->type, type) &&
	       (subtype == NULL || slice_eq_ci(part->subtype, subtype));
}

static void parse_entity(struct parser *ps, uint32_t idx, size_t start,
			 bool in_digest, struct hit *h);

/* The body of multipart idx: preamble, parts, epilogue. */
static void parse_multipart(struct parser *ps, uint32_t idx, struct hit *h)
{
	struct slice s = ps->s;
	size_t me = ps->bound_count++;
	bool digest = slice_eq_ci(PART(ps, idx)->subtype, "digest");
	uint32_t depth = PART(ps, idx)->depth;
	uint32_t last = NONE;
	size_t pos = PART(ps, idx)->body_start;
	bool popped = false;
	for (;;) {
		*h = find_boundary(ps, pos);
		if (h->which < 0 || h->which != (int)me)
			break; /* the end, or an enclosing boundary */
		if (h->close) {
			/* The epilogue runs to an enclosing boundary. */
			ps->bound_count--;
			popped = true;
			*h = find_boundary(ps, next_line(s, h->pos));
			break;
		}
		size_t child_start = next_line(s, h->pos);
		uint32_t child = new_part(ps, idx, depth + 1);
		if (child == NONE) {
			/* Past MIME_MAX_PARTS: the rest is parent body. */
			pos = child_start;
			continue;
		}
		if (last == NONE)
			PART(ps, idx)->first_child = child;
		else
			PART(ps, last)->next_sibling = child;
		PART(ps, idx)->child_count++;
		last = child;
		parse_entity(ps, child, child_start, digest, h);
		if (h->which < 0)
			break;
		pos = h->pos;
	}
	if (!popped)
		ps->bound_count--;
}

static void parse_entity(struct parser *ps, uint32_t idx, size_t start,
			 bool in_digest, struct hit *h)
{
	struct slice s = ps->s;
	h->which = -1;
	h->pos = s.n;
	/* A header cut short by a boundary leaves an empty body, which is
	 * still read as its Content-Type says. */
	bool cut = !parse_header(ps, idx, start, h);
	struct mime_part *part = PART(ps, idx);
	parse_content_type(ps, part);
	part->digest_default = in_digest && !part->have_type;
	part->encoding = part->transfer_encoding.present
				 ? mime_cte_parse(mime_field_slice(
					   ps->m, part->transfer_encoding))
				 : MIME_CTE_7BIT;
	uint32_t depth = part->depth;
	size_t body_start = part->body_start;
	if (type_is(part, "multipart", NULL)) {
		struct boundary_search bs = {&ps->bounds[ps->bound_count],
					     false, false};
		struct buf scratch;
		struct slice v = mime_field_slice(ps->m, part->content_type);
		buf_init(&scratch, v.n + 1);
		mime_parse_params(v, part->params_pos, &scratch, boundary_param,
				  &bs);
		buf_free(&scratch);
		if (bs.usable && depth < MIME_MAX_DEPTH) {
			part->kind = MIME_PART_MULTIPART;
			if (cut)
				return;
			parse_multipart(ps, idx, h);
			PART(ps, idx)->body_end =
				body_end_before(s, h, body_start);
			return;
		}
		part->as_text = true;
	} else if (type_is(part, "message", "rfc822") || part->digest_default) {
		uint32_t child = depth < MIME_MAX_DEPTH
					 ? new_part(ps, idx, depth + 1)
					 : NONE;
		if (child != NONE) {
			part = PART(ps, idx);
			part->kind = MIME_PART_MESSAGE;
			part->first_child = child;
			part->child_count = 1;
			if (cut) {
				/* An empty message. */
				struct mime_part *inner = PART(ps, child);
				inner->header_start = inner->header_end =
					inner->body_start = inner->body_end =
						body_start;
				return;
			}
			parse_entity(ps, child, body_start, false, h);
			PART(ps, idx)->body_end =
				body_end_before(s, h, body_start);
			return;
		}
		part->as_text = true;
	}
	if (cut)
		return;
	*h = find_boundary(ps, body_start);
	PART(ps, idx)->body_end = body_end_before(s, h, body_start);
}

struct mime_message *mime_parse(struct slice bytes)
{
	struct mime_message *m = xcalloc(1, sizeof(*m));
	/* A NULL pointer must not meet pointer arithmetic, even "+ 0". */
	m->bytes = bytes.p != NULL ? bytes : slice_make("", 0);
	struct parser *ps = xcalloc(1, sizeof(*ps));
	ps->m = m;
	ps->s = m->bytes;
	struct hit h;
	uint32_t root = new_part(ps, NONE, 0);
	parse_entity(ps, root, 0, false, &h);
	/* Nothing encloses the message: it ends with its bytes. */
	m->parts[root].body_end = m->bytes.n;
	free(ps);
	return m;
}

void mime_free(struct mime_message **m)
{
	if (*m == NULL)
		return;
	free((*m)->parts);
	free(*m);
	*m = NULL;
}

/* ---- IMAP strings ---- */

/* A quoted string when that is safe for every client (printable ASCII
 * and tabs, not too long), otherwise a literal. No NUL reaches here. */
static void write_string(struct buf *out, struct slice v)
{
	bool quotable = v.n <= MIME_MAX_QUOTED;
	for (size_t i = 0; quotable && i < v.n; i++) {
		uint8_t c = v.p[i];
		if ((c < 0x20 && c != '\t') || c >= 0x7f)
			quotable = false;
	}
	if (!quotable) {
		buf_printf(out, "{%zu}\r\n", v.n);
		buf_append_slice(out, v);
		return;
	}
	buf_append(out, "\"", 1);
	size_t run = 0;
	for (size_t i = 0; i < v.n; i++) {
		if (v.p[i] == '"' || v.p[i] == '\\') {
			buf_append(out, v.p + run, i - run);
			buf_append(out, "\\", 1);
			run = i;
		}
	}
	buf_append(out, v.p + run, v.n - run);
	buf_append(out, "\"", 1);
}

/* A header value unfolded and trimmed, as an nstring. */
static void write_value(struct buf *out, bool present, struct slice value)
{
	if (!present) {
		buf_append_cstr(out, "NIL");
		return;
	}
	struct buf tmp;
	buf_init(&tmp, value.n + 1);
	buf_cstr(&tmp);
	mime_unfold(value, &tmp);
	write_string(out, buf_slice(&tmp));
	buf_free(&tmp);
}

static void write_field(struct buf *out, const struct mime_message *m,
			struct mime_field_ref ref)
{
	write_value(out, ref.present,
		    ref.present ? mime_field_slice(m, ref) : slice_make("", 0));
}

/* ---- ENVELOPE ---- */

static void write_addresses(struct buf *out, struct slice value, bool *empty_r)
{
	struct buf scratch;
	buf_init(&scratch, 4 * value.n + 64);
	buf_cstr(&scratch);
	size_t count = 0;
	struct mime_address *list =
		mime_parse_addresses(value, &scratch, &count);
	*empty_r = count == 0;
	if (count == 0) {
		buf_append_cstr(out, "NIL");
		free(list);
		buf_free(&scratch);
		return;
	}
	buf_append(out, "(", 1);
	for (size_t i = 0; i < count; i++) {
		const struct mime_address *a = &list[i];
		size_t offs[4] = {a->name, a->route, a->mailbox, a->host};
		size_t lens[4] = {a->name_len, a->route_len, a->mailbox_len,
				  a->host_len};
		buf_append(out, "(", 1);
		for (size_t k = 0; k < 4; k++) {
			if (k > 0)
				buf_append(out, " ", 1);
			if (offs[k] == MIME_NIL || (k == 1 && lens[k] == 0))
				buf_append_cstr(out, "NIL");
			else
				write_string(out,
					     slice_make(scratch.p + offs[k],
							lens[k]));
		}
		buf_append(out, ")", 1);
	}
	buf_append(out, ")", 1);
	free(list);
	buf_free(&scratch);
}

enum envelope_field {
	ENV_DATE,
	ENV_SUBJECT,
	ENV_FROM,
	ENV_SENDER,
	ENV_REPLY_TO,
	ENV_TO,
	ENV_CC,
	ENV_BCC,
	ENV_IN_REPLY_TO,
	ENV_MESSAGE_ID,
	ENV_COUNT
};

static void write_envelope_of(struct buf *out, const struct mime_message *m,
			      const struct mime_part *part)
{
	static const char *const names[ENV_COUNT] = {
		"Date", "Subject", "From", "Sender",	  "Reply-To",
		"To",	"Cc",	   "Bcc",  "In-Reply-To", "Message-ID"};
	struct slice values[ENV_COUNT] = {{0}};
	bool present[ENV_COUNT] = {false};
	struct field_iter it = field_iter_init(m, part);
	struct header_field f;
	while (field_next(&it, &f)) {
		for (size_t i = 0; i < ENV_COUNT; i++) {
			if (!present[i] && slice_eq_ci(f.name, names[i])) {
				present[i] = true;
				values[i] = f.value;
				break;
			}
		}
	}
	buf_append(out, "(", 1);
	write_value(out, present[ENV_DATE], values[ENV_DATE]);
	buf_append(out, " ", 1);
	write_value(out, present[ENV_SUBJECT], values[ENV_SUBJECT]);
	/* Sender and Reply-To default to From when absent or empty (RFC
	 * 3501 7.4.2): written into a buffer first to know. */
	struct buf from;
	buf_init(&from, out->max);
	bool from_empty = true;
	if (present[ENV_FROM])
		write_addresses(&from, values[ENV_FROM], &from_empty);
	else
		buf_append_cstr(&from, "NIL");
	buf_append(out, " ", 1);
	buf_append_slice(out, buf_slice(&from));
	for (size_t i = ENV_SENDER; i <= ENV_BCC; i++) {
		buf_append(out, " ", 1);
		size_t mark = out->n;
		bool empty = true;
		if (present[i])
			write_addresses(out, values[i], &empty);
		else
			buf_append_cstr(out, "NIL");
		if (empty && (i == ENV_SENDER || i == ENV_REPLY_TO)) {
			out->n = mark;
			buf_append_slice(out, buf_slice(&from));
		}
	}
	buf_free(&from);
	buf_append(out, " ", 1);
	write_value(out, present[ENV_IN_REPLY_TO], values[ENV_IN_REPLY_TO]);
	buf_append(out, " ", 1);
	write_value(out, present[ENV_MESSAGE_ID], values[ENV_MESSAGE_ID]);
	buf_append(out, ")", 1);
}

void mime_envelope(const struct mime_message *m, struct buf *out)
{
	write_envelope_of(out, m, &m->parts[0]);
}

/* ---- BODYSTRUCTURE ---- */

struct param_writer {
	struct buf *out;
	size_t count;
	bool charset;
};

static void write_param(void *ctx, const struct mime_param *param,
			const struct buf *scratch)
{
	struct param_writer *pw = ctx;
	buf_append(pw->out, pw->count == 0 ? "(" : " ", 1);
	write_string(pw->out, param->name);
	buf_append(pw->out, " ", 1);
	write_string(pw->out, slice_make(scratch->p + param->value_start,
					 param->value_len));
	if (slice_eq_ci(param->name, "charset"))
		pw->charset = true;
	pw->count++;
}

/* body-fld-param of a Content-Type or Content-Disposition value from pos
 * on; text gets the default charset of RFC 2045 5.2 when it names none. */
static void write_params(struct buf *out, struct slice value, size_t pos,
			 bool text)
{
	struct buf scratch;
	buf_init(&scratch, value.n + 1);
	buf_cstr(&scratch);
	struct param_writer pw = {out, 0, false};
	mime_parse_params(value, pos, &scratch, write_param, &pw);
	buf_free(&scratch);
	if (text && !pw.charset) {
		buf_append_cstr(out, pw.count == 0 ? "(" : " ");
		buf_append_cstr(out, "\"CHARSET\" \"US-ASCII\"");
		pw.count++;
	}
	buf_append_cstr(out, pw.count == 0 ? "NIL" : ")");
}

/* body-fld-dsp: ("type" (params)) or NIL. */
static void write_disposition(struct buf *out, const struct mime_message *m,
			      const struct mime_part *part)
{
	if (!part->disposition.present) {
		buf_append_cstr(out, "NIL");
		return;
	}
	struct slice v = mime_field_slice(m, part->disposition);
	size_t pos = mime_skip_cfws(v, 0), t = pos;
	while (pos < v.n && mime_is_token_char(v.p[pos]))
		pos++;
	if (pos == t) {
		buf_append_cstr(out, "NIL");
		return;
	}
	buf_append(out, "(", 1);
	write_string(out, slice_make(v.p + t, pos - t));
	buf_append(out, " ", 1);
	write_params(out, v, pos, false);
	buf_append(out, ")", 1);
}

/* body-fld-lang: a list of the language tags, or NIL. */
static void write_language(struct buf *out, const struct mime_message *m,
			   const struct mime_part *part)
{
	size_t count = 0;
	if (part->language.present) {
		struct slice v = mime_field_slice(m, part->language);
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
			buf_append(out, count == 0 ? "(" : " ", 1);
			write_string(out, slice_make(v.p + t, pos - t));
			count++;
		}
	}
	buf_append_cstr(out, count == 0 ? "NIL" : ")");
}

static bool is_text(const struct mime_part *part)
{
	if (part->as_text)
		return true;
	if (part->have_type)
		return slice_eq_ci(part->type, "text");
	return !part->digest_default;
}

static size_t count_lines(const struct mime_message *m,
			  const struct mime_part *part)
{
	size_t lines = 0;
	const uint8_t *p = m->bytes.p + part->body_start;
	const uint8_t *end = m->bytes.p + part->body_end;
	while (p < end) {
		const uint8_t *lf = memchr(p, '\n', (size_t)(end - p));
		if (lf == NULL)
			break;
		lines++;
		p = lf + 1;
	}
	return lines;
}

static void write_body(struct buf *out, const struct mime_message *m,
		       uint32_t idx, bool extensible);

/* The body of a multipart without parts: IMAP needs at least one. */
static const char empty_part[] =
	"(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0";

static void write_multipart(struct buf *out, const struct mime_message *m,
			    const struct mime_part *part, bool extensible)
{
	if (part->child_count == 0) {
		buf_append_cstr(out, empty_part);
		buf_append_cstr(out, extensible ? " NIL NIL NIL NIL)" : ")");
	}
	for (uint32_t c = part->first_child; c != NONE;
	     c = m->parts[c].next_sibling)
		write_body(out, m, c, extensible);
	buf_append(out, " ", 1);
	write_string(out, part->subtype);
	if (!extensible)
		return;
	buf_append(out, " ", 1);
	struct slice v = mime_field_slice(m, part->content_type);
	write_params(out, v, part->params_pos, false);
	buf_append(out, " ", 1);
	write_disposition(out, m, part);
	buf_append(out, " ", 1);
	write_language(out, m, part);
	buf_append(out, " ", 1);
	write_field(out, m, part->location);
}

static void write_single(struct buf *out, const struct mime_message *m,
			 const struct mime_part *part, bool extensible)
{
	bool text = is_text(part);
	if (part->as_text || (!part->have_type && !part->digest_default)) {
		buf_append_cstr(out, "\"TEXT\" \"PLAIN\" (\"CHARSET\" "
				     "\"US-ASCII\")");
	} else if (!part->have_type) {
		buf_append_cstr(out, "\"MESSAGE\" \"RFC822\" NIL");
	} else {
		write_string(out, part->type);
		buf_append(out, " ", 1);
		write_string(out, part->subtype);
		buf_append(out, " ", 1);
		write_params(out, mime_field_slice(m, part->content_type),
			     part->params_pos, text);
	}
	buf_append(out, " ", 1);
	write_field(out, m, part->id);
	buf_append(out, " ", 1);
	write_field(out, m, part->description);
	buf_append(out, " ", 1);
	if (part->transfer_encoding.present) {
		/* The mechanism token as the message names it. */
		struct slice v = mime_field_slice(m, part->transfer_encoding);
		size_t pos = mime_skip_cfws(v, 0), t = pos;
		while (pos < v.n && mime_is_token_char(v.p[pos]))
			pos++;
		if (pos > t)
			write_string(out, slice_make(v.p + t, pos - t));
		else
			buf_append_cstr(out, "\"7BIT\"");
	} else {
		buf_append_cstr(out, "\"7BIT\"");
	}
	buf_printf(out, " %zu", part->body_end - part->body_start);
	if (part->kind == MIME_PART_MESSAGE) {
		const struct mime_part *inner = &m->parts[part->first_child];
		buf_append(out, " ", 1);
		write_envelope_of(out, m, inner);
		buf_append(out, " ", 1);
		write_body(out, m, part->first_child, extensible);
		buf_printf(out, " %zu", count_lines(m, part));
	} else if (text) {
		buf_printf(out, " %zu", count_lines(m, part));
	}
	if (!extensible)
		return;
	buf_append(out, " ", 1);
	write_field(out, m, part->md5);
	buf_append(out, " ", 1);
	write_disposition(out, m, part);
	buf_append(out, " ", 1);
	write_language(out, m, part);
	buf_append(out, " ", 1);
	write_field(out, m, part->location);
}

static void write_body(struct buf *out, const struct mime_message *m,
		       uint32_t idx, bool extensible)
{
	const struct mime_part *part = &m->parts[idx];
	buf_append(out, "(", 1);
	if (part->kind == MIME_PART_MULTIPART)
		write_multipart(out, m, part, extensible);
	else
		write_single(out, m, part, extensible);
	buf_append(out, ")", 1);
}

void mime_bodystructure(const struct mime_message *m, bool extensible,
			struct buf *out)
{
	write_body(out, m, 0, extensible);
}

/* ---- sections ---- */

/* The part a section number names (RFC 3501 6.4.5), as Dovecot and
 * Cyrus read it: in a multipart, n is its n-th part; a part that is not
 * a multipart has only part 1, itself; numbers after a message/rfc822
 * part go into the message it holds. */
uint32_t mime_find_part(const struct mime_message *m, const uint32_t *parts,
			size_t count)
{
	uint32_t cur = 0;
	for (size_t k = 0; k < count; k++) {
		const struct mime_part *part = &m->parts[cur];
		uint32_t num = parts[k];
		if (num == 0)
			return NONE;
		if (part->kind == MIME_PART_MULTIPART) {
			uint32_t c = part->first_child;
			for (uint32_t i = 1; i < num && c != NONE; i++)
				c = m->parts[c].next_sibling;
			if (c == NONE)
				return NONE;
			cur = c;
		} else if (num != 1 ||
			   (k + 1 < count && part->kind != MIME_PART_MESSAGE)) {
			return NONE;
		}
		if (k + 1 < count && m->parts[cur].kind == MIME_PART_MESSAGE)
			cur = m->parts[cur].first_child;
	}
	return cur;
}

static void append_range(struct buf *out, const struct mime_message *m,
			 size_t start, size_t end)
{
	buf_append(out, m->bytes.p + start, end - start);
}

static bool field_listed(const struct mime_section *section, struct slice name)
{
	for (size_t i = 0; i < section->field_count; i++) {
		struct slice want = section->fields[i];
		if (want.n == name.n && want.n > 0 &&
		    strncasecmp((const char *)want.p, (const char *)name.p,
				name.n) == 0)
			return true;
	}
	return false;
}

int mime_section_bytes(const struct mime_message *m,
		       const struct mime_section *section, struct buf *out)
{
	if (section->part_count > MIME_MAX_DEPTH)
		return -1;
	uint32_t idx = mime_find_part(m, section->parts, section->part_count);
	if (idx == NONE)
		return -1;
	const struct mime_part *part = &m->parts[idx];
	if (section->kind == MIME_SECTION_ALL) {
		if (section->part_count == 0)
			append_range(out, m, 0, m->bytes.n);
		else
			append_range(out, m, part->body_start, part->body_end);
		return 0;
	}
	if (section->kind == MIME_SECTION_MIME) {
		if (section->part_count == 0)
			return -1;
		append_range(out, m, part->header_start, part->body_start);
		return 0;
	}
	/* HEADER, HEADER.FIELDS and TEXT: of the message, or of the message
	 * a message/rfc822 part holds. */
	if (section->part_count > 0) {
		if (part->kind != MIME_PART_MESSAGE)
			return -1;
		part = &m->parts[part->first_child];
	}
	switch (section->kind) {
	case MIME_SECTION_HEADER:
		append_range(out, m, part->header_start, part->body_start);
		return 0;
	case MIME_SECTION_TEXT:
		append_range(out, m, part->body_start, part->body_end);
		return 0;
	case MIME_SECTION_HEADER_FIELDS:
	case MIME_SECTION_HEADER_FIELDS_NOT: {
		bool want = section->kind == MIME_SECTION_HEADER_FIELDS;
		struct field_iter it = field_iter_init(m, part);
		struct header_field f;
		while (field_next(&it, &f)) {
			if (field_listed(section, f.name) == want)
				buf_append_slice(out, f.whole);
		}
		/* The blank line that ends a header: always after the fields
		 * asked for; after the others only when the header has one,
		 * so that HEADER.FIELDS.NOT () is HEADER (as Dovecot does). */
		if (want || part->header_end < part->body_start)
			buf_append_cstr(out, "\r\n");
		return 0;
	}
	default:
		return -1;
	}
}

void mime_decode_body(const struct mime_message *m,
		      const struct mime_part *part, struct buf *out)
{
	struct slice body = slice_make(m->bytes.p + part->body_start,
				       part->body_end - part->body_start);
	if (part->encoding == MIME_CTE_BASE64)
		mime_decode_base64(body, out);
	else if (part->encoding == MIME_CTE_QP)
		mime_decode_qp(body, false, out);
	else
		buf_append_slice(out, body);
}

int mime_section_binary(const struct mime_message *m, const uint32_t *parts,
			size_t part_count, struct buf *out)
{
	if (part_count > MIME_MAX_DEPTH)
		return -1;
	uint32_t idx = mime_find_part(m, parts, part_count);
	if (idx == NONE)
		return -1;
	if (part_count == 0) {
		append_range(out, m, 0, m->bytes.n);
		return 0;
	}
	const struct mime_part *part = &m->parts[idx];
	if (part->kind == MIME_PART_LEAF && part->encoding == MIME_CTE_UNKNOWN)
		return -2;
	if (part->kind != MIME_PART_LEAF) {
		/* A multipart or message is never encoded (RFC 2045 6.4). */
		append_range(out, m, part->body_start, part->body_end);
		return 0;
	}
	mime_decode_body(m, part, out);
	return 0;
}

/* ---- values for search, sort and thread ---- */

bool mime_header_value(const struct mime_message *m, const char *name,
		       struct buf *out)
{
	struct field_iter it = field_iter_init(m, &m->parts[0]);
	struct header_field f;
	bool found = false;
	while (field_next(&it, &f)) {
		if (!slice_eq_ci(f.name, name))
			continue;
		if (found)
			buf_append_cstr(out, ", ");
		mime_decode_header(f.value, out);
		found = true;
	}
	return found;
}

/* The value of a Content-Type parameter, as an offset into the scratch
 * buffer (which later parameters may move). RFC 2231 continuations are
 * not joined: charset never needs them. */
struct param_lookup {
	const char *name;
	size_t start, len;
	bool found;
};

static void lookup_param(void *ctx, const struct mime_param *param,
			 const struct buf *scratch)
{
	struct param_lookup *pl = ctx;
	if (!pl->found && slice_eq_ci(param->name, pl->name)) {
		pl->found = true;
		pl->start = param->value_start;
		pl->len = param->value_len;
	}
}

static void part_text(const struct mime_message *m,
		      const struct mime_part *part, struct buf *out)
{
	bool html = type_is(part, "text", "html");
	if (!part->as_text && part->have_type &&
	    !type_is(part, "text", "plain") && !html)
		return;
	/* Nothing to index in what cannot be decoded (x-uuencode...). */
	if (part->digest_default || part->encoding == MIME_CTE_UNKNOWN)
		return;
	struct buf decoded, scratch, utf8;
	size_t size = part->body_end - part->body_start;
	buf_init(&decoded, size + 1);
	buf_cstr(&decoded);
	mime_decode_body(m, part, &decoded);
	struct param_lookup pl = {"charset", 0, 0, false};
	struct slice ct = part->content_type.present
				  ? mime_field_slice(m, part->content_type)
				  : slice_make("", 0);
	buf_init(&scratch, ct.n + 1);
	buf_cstr(&scratch);
	if (part->have_type && !part->as_text)
		mime_parse_params(ct, part->params_pos, &scratch, lookup_param,
				  &pl);
	buf_init(&utf8, 4 * decoded.n + 16);
	buf_cstr(&utf8);
	mime_charset_to_utf8(slice_make(scratch.p + pl.start, pl.len),
			     buf_slice(&decoded), &utf8);
	if (out->n > 0)
		buf_append(out, "\n", 1);
	if (html)
		mime_html_to_text(buf_slice(&utf8), out);
	else
		buf_append_slice(out, buf_slice(&utf8));
	buf_free(&decoded);
	buf_free(&scratch);
	buf_free(&utf8);
}

static void collect_text(const struct mime_message *m, uint32_t idx,
			 struct buf *out)
{
	const struct mime_part *part = &m->parts[idx];
	if (part->kind == MIME_PART_MESSAGE) {
		collect_text(m, part->first_child, out);
		return;
	}
	if (part->kind != MIME_PART_MULTIPART) {
		part_text(m, part, out);
		return;
	}
	if (slice_eq_ci(part->subtype, "alternative")) {
		/* One rendering is enough: the plain one when there is. */
		for (uint32_t c = part->first_child; c != NONE;
		     c = m->parts[c].next_sibling) {
			if (m->parts[c].kind == MIME_PART_LEAF &&
			    type_is(&m->parts[c], "text", "plain")) {
				part_text(m, &m->parts[c], out);
				return;
			}
		}
	}
	for (uint32_t c = part->first_child; c != NONE;
	     c = m->parts[c].next_sibling)
		collect_text(m, c, out);
}

void mime_body_text(const struct mime_message *m, struct buf *out)
{
	collect_text(m, 0, out);
}

int64_t mime_date(const struct mime_message *m)
{
	struct header_field f;
	if (!find_field(m, &m->parts[0], "Date", &f))
		return -1;
	return mime_parse_date(f.value);
}

void mime_sort_address(const struct mime_message *m, const char *field,
		       bool display, struct buf *out)
{
	struct header_field f;
	if (!find_field(m, &m->parts[0], field, &f))
		return;
	struct buf scratch;
	buf_init(&scratch, 4 * f.value.n + 64);
	buf_cstr(&scratch);
	size_t count = 0;
	struct mime_address *list =
		mime_parse_addresses(f.value, &scratch, &count);
	for (size_t i = 0; i < count; i++) {
		const struct mime_address *a = &list[i];
		if (a->group_start || a->group_end)
			continue;
		struct slice mailbox =
			a->mailbox_missing ? slice_make("", 0)
					   : slice_make(scratch.p + a->mailbox,
							a->mailbox_len);
		if (!display) {
			buf_append_slice(out, mailbox);
			break;
		}
		size_t mark = out->n;
		if (a->name != MIME_NIL)
			mime_decode_header(
				slice_make(scratch.p + a->name, a->name_len),
				out);
		if (out->n == mark) {
			buf_append_slice(out, mailbox);
			if (!a->host_missing) {
				buf_append(out, "@", 1);
				buf_append(out, scratch.p + a->host,
					   a->host_len);
			}
		}
		break;
	}
	free(list);
	buf_free(&scratch);
}

void mime_message_ids(const struct mime_message *m, const char *field,
		      struct buf *out)
{
	struct header_field f;
	if (find_field(m, &m->parts[0], field, &f))
		mime_parse_message_ids(f.value, out);
}

/* Whether a Content-Type or Content-Disposition value names a file:
 * name=, filename=, or their RFC 2231 forms (name*, filename*0*, ...). */
struct name_search {
	bool found;
};

static void name_param(void *ctx, const struct mime_param *param,
		       const struct buf *scratch)
{
	struct name_search *ns = ctx;
	struct slice n = param->name;
	const uint8_t *star = memchr(n.p, '*', n.n);
	if (star != NULL)
		n.n = (size_t)(star - n.p);
	if (slice_eq_ci(n, "name") || slice_eq_ci(n, "filename"))
		ns->found = true;
}

static bool names_file(const struct mime_message *m, struct mime_field_ref ref,
		       size_t pos)
{
	if (!ref.present)
		return false;
	struct slice v = mime_field_slice(m, ref);
	struct buf scratch;
	buf_init(&scratch, v.n + 1);
	buf_cstr(&scratch);
	struct name_search ns = {false};
	mime_parse_params(v, pos, &scratch, name_param, &ns);
	buf_free(&scratch);
	return ns.found;
}

bool mime_has_attachment(const struct mime_message *m)
{
	for (size_t i = 0; i < m->part_count; i++) {
		const struct mime_part *part = &m->parts[i];
		if (part->kind == MIME_PART_MULTIPART)
			continue;
		if (part->kind == MIME_PART_MESSAGE && i > 0)
			return true;
		if (part->disposition.present) {
			struct slice v = mime_field_slice(m, part->disposition);
			size_t pos = mime_skip_cfws(v, 0), t = pos;
			while (pos < v.n && mime_is_token_char(v.p[pos]))
				pos++;
			if (slice_eq_ci(slice_make(v.p + t, pos - t),
					"attachment"))
				return true;
			if (!is_text(part) &&
			    names_file(m, part->disposition, pos))
				return true;
		}
		if (part->have_type && !is_text(part) &&
		    names_file(m, part->content_type, part->params_pos))
			return true;
	}
	return false;
}
