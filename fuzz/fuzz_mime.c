/* fuzz_mime.c: src/mime/ over arbitrary bytes: structure, ENVELOPE and
 * BODYSTRUCTURE (which must be well-formed IMAP data: strings quoted or
 * literal, parentheses balanced outside them), sections of parts nested
 * in multiparts and messages, BINARY, decoded header values, body text,
 * dates, base subjects, sort keys, message ids; and what JMAP reads
 * (mime/jmap.h): body parts and their lists, part content and text,
 * addresses, dates with zones, previews, raw header values. */
#include "core/common.h"

#include "core/utf8.h"
#include "mime/jmap.h"
#include "mime/mime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The checks of the unit test: see imap_well_formed in test_mime.c. */
static bool well_formed(struct slice s)
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

static void sections(const struct mime_message *m, size_t size, struct buf *out)
{
	static const struct slice fields[] = {
		{(const uint8_t *)"From", 4},
		{(const uint8_t *)"subject", 7},
		{(const uint8_t *)"CONTENT-TYPE", 12},
	};
	static const struct {
		uint32_t parts[4];
		size_t count;
	} paths[] = {
		{{0}, 0},	{{1}, 1},	{{2}, 1},
		{{1, 1}, 2},	{{1, 2}, 2},	{{2, 1}, 2},
		{{2, 2}, 2},	{{3, 1}, 2},	{{1, 1, 1}, 3},
		{{2, 1, 1}, 3}, {{2, 2, 1}, 3}, {{1, 1, 1, 1}, 4},
		{{0, 1}, 2},
	};
	static const enum mime_section_kind kinds[] = {
		MIME_SECTION_ALL,	    MIME_SECTION_HEADER,
		MIME_SECTION_HEADER_FIELDS, MIME_SECTION_HEADER_FIELDS_NOT,
		MIME_SECTION_TEXT,	    MIME_SECTION_MIME,
	};
	for (size_t p = 0; p < ARRAY_SIZE(paths); p++) {
		struct mime_section section = {0};
		memcpy(section.parts, paths[p].parts, sizeof(paths[p].parts));
		section.part_count = paths[p].count;
		section.fields = fields;
		section.field_count = ARRAY_SIZE(fields);
		for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
			section.kind = kinds[k];
			buf_reset(out);
			int r = mime_section_bytes(m, &section, out);
			DIJK_ASSERT(r == 0 || r == -1);
			DIJK_ASSERT(r == 0 || out->n == 0);
			/* A section is bytes of the message (HEADER.FIELDS
			 * may add a blank line). */
			DIJK_ASSERT(out->n <= size + 2);
		}
		buf_reset(out);
		int r = mime_section_binary(m, paths[p].parts, paths[p].count,
					    out);
		DIJK_ASSERT(r == 0 || r == -1 || r == -2);
		DIJK_ASSERT(out->n <= size);
	}
	struct mime_section all = {.kind = MIME_SECTION_ALL};
	buf_reset(out);
	DIJK_ASSERT(mime_section_bytes(m, &all, out) == 0 && out->n == size);
}

static bool list_ok(const struct mime_jmap_body *b, const uint32_t *list,
		    size_t count)
{
	if (count > b->part_count)
		return false;
	for (size_t i = 0; i < count; i++) {
		if (list[i] >= b->part_count || b->parts[list[i]].multipart)
			return false;
	}
	return true;
}

static bool string_ok(const char *s)
{
	return s == NULL || (*s != '\0' && strlen(s) <= MIME_JMAP_MAX_VALUE &&
			     utf8_valid(slice_cstr(s)));
}

static void check_address(const char *name, const char *email, void *ctx)
{
	DIJK_ASSERT(name == NULL ||
		    (*name != '\0' && utf8_valid(slice_cstr(name))));
	DIJK_ASSERT(utf8_valid(slice_cstr(email)));
	(*(size_t *)ctx)++;
}

/* The JMAP view: a consistent tree, lists of leaves, every part's content
 * as large as its size says, text that is UTF-8 within its limit. */
static void jmap(const struct mime_message *m, size_t size, struct buf *out)
{
	struct mime_jmap_body b;
	mime_jmap_body(m, &b);
	DIJK_ASSERT(b.part_count >= 1 && b.part_count <= MIME_MAX_PARTS);
	DIJK_ASSERT(b.parts[0].parent == MIME_JMAP_NONE);
	for (size_t i = 0; i < b.part_count; i++) {
		const struct mime_body_part *p = &b.parts[i];
		DIJK_ASSERT(i == 0 || p->parent < i);
		DIJK_ASSERT(p->multipart ==
			    (strncmp(p->type, "multipart/", 10) == 0));
		DIJK_ASSERT(string_ok(p->name) && string_ok(p->cid) &&
			    string_ok(p->language) && string_ok(p->location));
		DIJK_ASSERT(p->name == NULL || (strchr(p->name, '/') == NULL &&
						strchr(p->name, '\\') == NULL));
		if (p->part_id[0] == '\0') {
			DIJK_ASSERT(i == 0 && p->multipart);
			continue;
		}
		buf_reset(out);
		DIJK_ASSERT(mime_part_content(m, p->part_id, out) == 0);
		DIJK_ASSERT(out->n <= size);
		DIJK_ASSERT(p->multipart || out->n == p->size);
		static const size_t limits[] = {0, 1, 7, 256};
		for (size_t k = 0; k < ARRAY_SIZE(limits); k++) {
			buf_reset(out);
			bool truncated = false;
			int r = mime_part_text(m, p->part_id, limits[k], out,
					       &truncated);
			bool text = !p->multipart &&
				    strncmp(p->type, "text/", 5) == 0;
			DIJK_ASSERT(r == (text ? 0 : -1));
			DIJK_ASSERT(utf8_valid(buf_slice(out)));
			DIJK_ASSERT(limits[k] == 0 || out->n <= limits[k]);
			DIJK_ASSERT(!truncated || limits[k] > 0);
		}
	}
	DIJK_ASSERT(list_ok(&b, b.text_body, b.text_count));
	DIJK_ASSERT(list_ok(&b, b.html_body, b.html_count));
	DIJK_ASSERT(list_ok(&b, b.attachments, b.attachment_count));
	mime_jmap_body_free(&b);

	static const char *const ids[] = {"",	 "1", "2",     "1.1",
					  "2.1", "0", "1.2.3", "9999"};
	for (size_t i = 0; i < ARRAY_SIZE(ids); i++) {
		buf_reset(out);
		int r = mime_part_content(m, ids[i], out);
		DIJK_ASSERT((r == 0 || r == -1) && out->n <= size);
	}
	static const char *const fields[] = {"From", "To", "Cc", "Bcc"};
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
		size_t count = 0;
		mime_header_addresses(m, fields[i], check_address, &count);
	}
	int offset = 0;
	int64_t t = mime_date_zone(m, &offset);
	DIJK_ASSERT(t == mime_date(m));
	DIJK_ASSERT(offset > -100 * 60 && offset < 100 * 60);
	buf_reset(out);
	mime_preview(m, out);
	DIJK_ASSERT(utf8_valid(buf_slice(out)));
	DIJK_ASSERT(out->n <= 4 * MIME_JMAP_PREVIEW_CHARS);
	DIJK_ASSERT(out->n == 0 ||
		    (out->p[0] != ' ' && out->p[out->n - 1] != ' '));
	buf_reset(out);
	if (mime_header_raw(m, "Subject", out))
		DIJK_ASSERT(
			utf8_valid(buf_slice(out)) &&
			(out->n == 0 || memchr(out->p, '\0', out->n) == NULL));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf out, tmp;
	buf_init(&out, 64u << 20);
	buf_init(&tmp, 64u << 20);
	struct mime_message *m = mime_parse(slice_make(data, size));

	mime_envelope(m, &out);
	DIJK_ASSERT(well_formed(buf_slice(&out)));
	buf_reset(&out);
	mime_bodystructure(m, true, &out);
	DIJK_ASSERT(well_formed(buf_slice(&out)));
	size_t extended = out.n;
	buf_reset(&out);
	mime_bodystructure(m, false, &out);
	DIJK_ASSERT(well_formed(buf_slice(&out)));
	DIJK_ASSERT(out.n <= extended);

	sections(m, size, &out);

	static const char *const names[] = {"Subject", "From", "to",
					    "Message-ID", "X-Nothing"};
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		buf_reset(&out);
		(void)mime_header_value(m, names[i], &out);
		DIJK_ASSERT(out.n == 0 || memchr(out.p, '\0', out.n) == NULL);
	}
	buf_reset(&out);
	if (mime_header_value(m, "Subject", &out)) {
		buf_reset(&tmp);
		mime_base_subject(buf_slice(&out), &tmp);
		DIJK_ASSERT(tmp.n <= out.n);
		(void)mime_subject_is_reply_or_forward(buf_slice(&out));
	}
	buf_reset(&out);
	mime_body_text(m, &out);
	(void)mime_date(m);
	static const char *const address_fields[] = {"From", "To", "Cc"};
	for (size_t i = 0; i < ARRAY_SIZE(address_fields); i++) {
		buf_reset(&out);
		mime_sort_address(m, address_fields[i], false, &out);
		buf_reset(&out);
		mime_sort_address(m, address_fields[i], true, &out);
	}
	static const char *const id_fields[] = {"Message-ID", "In-Reply-To",
						"References"};
	for (size_t i = 0; i < ARRAY_SIZE(id_fields); i++) {
		buf_reset(&out);
		mime_message_ids(m, id_fields[i], &out);
		DIJK_ASSERT(out.n == 0 || out.p[out.n - 1] == '\0');
	}
	(void)mime_has_attachment(m);

	jmap(m, size, &out);

	/* The whole input as a subject too. */
	buf_reset(&out);
	mime_base_subject(slice_make(data, size), &out);
	DIJK_ASSERT(out.n <= size);

	mime_free(&m);
	DIJK_ASSERT(m == NULL);
	buf_free(&out);
	buf_free(&tmp);
	return 0;
}
