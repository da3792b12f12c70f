/* meta.c: builds the cached per-body data of the store from MIME. */
#include "core/common.h"

#include "store/sqlite/meta.h"

#include "mime/jmap.h"
#include "mime/mime.h"

#define META_BUFFERS 20

/* Every buffer of the struct, for setting up and freeing. */
static size_t buffers(struct content_meta *m, struct buf **out)
{
	struct buf *all[] = {
		&m->envelope,	  &m->bodystructure,
		&m->body,	  &m->subject,
		&m->base_subject, &m->from,
		&m->to,		  &m->cc,
		&m->bcc,	  &m->sort_from,
		&m->sort_to,	  &m->sort_cc,
		&m->display_from, &m->display_to,
		&m->message_id,	  &m->in_reply_to,
		&m->references,	  &m->fts_headers,
		&m->fts_body,	  &m->preview,
	};
	memcpy(out, all, sizeof(all));
	return ARRAY_SIZE(all);
}

/* Message ids are NUL-separated by mime_message_ids; the store keeps them
 * space-separated, which no message id contains. */
static void ids_to_text(struct buf *b)
{
	for (size_t i = 0; i < b->n; i++)
		if (b->p[i] == '\0')
			b->p[i] = ' ';
	while (b->n > 0 && b->p[b->n - 1] == ' ')
		b->n--;
}

/* SENTON and friends compare the date as written, in the header's own
 * zone (RFC 3501 6.4.4): the UTC time plus the zone's offset, as a day. */
static int64_t local_day(const struct mime_message *msg, int64_t utc)
{
	struct buf date;
	buf_init(&date, 1024);
	int64_t offset = 0;
	if (mime_header_value(msg, "Date", &date)) {
		const char *text = buf_cstr(&date);
		const char *zone = NULL;
		for (const char *p = text; *p; p++)
			if ((*p == '+' || *p == '-') && p[1] >= '0' &&
			    p[1] <= '9' && p[2] >= '0' && p[2] <= '9' &&
			    p[3] >= '0' && p[3] <= '9' && p[4] >= '0' &&
			    p[4] <= '9' &&
			    (p[5] == '\0' || p[5] == ' ' || p[5] == '('))
				zone = p;
		if (zone != NULL) {
			int64_t h = (zone[1] - '0') * 10 + (zone[2] - '0');
			int64_t mi = (zone[3] - '0') * 10 + (zone[4] - '0');
			offset = (h * 3600 + mi * 60) *
				 (zone[0] == '-' ? -1 : 1);
		}
	}
	buf_free(&date);
	int64_t local = utc + offset;
	return local - ((local % 86400) + 86400) % 86400;
}

void content_meta_build(struct content_meta *m, struct slice bytes)
{
	struct buf *b[META_BUFFERS];
	size_t count = buffers(m, b);
	for (size_t i = 0; i < count; i++)
		buf_init(b[i], META_MAX_FIELD);
	/* Never cut: a truncated ENVELOPE or BODYSTRUCTURE would desync a
	 * client. Their size is bounded by the message's and MIME's limits. */
	m->envelope.max = SIZE_MAX;
	m->bodystructure.max = SIZE_MAX;
	m->body.max = SIZE_MAX;
	m->fts_body.max = META_MAX_FTS_TEXT;

	struct mime_message *msg = mime_parse(bytes);
	mime_envelope(msg, &m->envelope);
	mime_bodystructure(msg, true, &m->bodystructure);
	mime_bodystructure(msg, false, &m->body);
	mime_header_value(msg, "Subject", &m->subject);
	/* A slice into a buffer that is never NULL, even when empty. */
	mime_base_subject(slice_cstr(buf_cstr(&m->subject)), &m->base_subject);
	mime_header_value(msg, "From", &m->from);
	mime_header_value(msg, "To", &m->to);
	mime_header_value(msg, "Cc", &m->cc);
	mime_header_value(msg, "Bcc", &m->bcc);
	mime_sort_address(msg, "From", false, &m->sort_from);
	mime_sort_address(msg, "To", false, &m->sort_to);
	mime_sort_address(msg, "Cc", false, &m->sort_cc);
	mime_sort_address(msg, "From", true, &m->display_from);
	mime_sort_address(msg, "To", true, &m->display_to);
	mime_message_ids(msg, "Message-ID", &m->message_id);
	mime_message_ids(msg, "In-Reply-To", &m->in_reply_to);
	mime_message_ids(msg, "References", &m->references);
	ids_to_text(&m->message_id);
	ids_to_text(&m->in_reply_to);
	ids_to_text(&m->references);
	const struct buf *h[] = {&m->from, &m->to, &m->cc, &m->bcc,
				 &m->subject};
	for (size_t i = 0; i < ARRAY_SIZE(h); i++) {
		buf_append(&m->fts_headers, h[i]->p, h[i]->n);
		buf_append(&m->fts_headers, "\n", 1);
	}
	mime_body_text(msg, &m->fts_body);
	mime_preview(msg, &m->preview);
	m->text_complete = !buf_overflowed(&m->fts_body);
	m->sent_date = mime_date(msg);
	m->sent_day = m->sent_date < 0 ? -1 : local_day(msg, m->sent_date);
	m->has_attachment = mime_has_attachment(msg);
	mime_free(&msg);
}

void content_meta_free(struct content_meta *m)
{
	struct buf *b[META_BUFFERS];
	size_t count = buffers(m, b);
	for (size_t i = 0; i < count; i++)
		buf_free(b[i]);
}
