/* meta.h: what the store caches about a message body: the IMAP ENVELOPE
 * and BODYSTRUCTURE, decoded header values for search and sort, and the
 * text for the full-text index. Built once per body with src/mime. Internal
 * to src/store. */
#ifndef DIJK_STORE_SQLITE_META_H
#define DIJK_STORE_SQLITE_META_H

#include "core/common.h"

#include "core/buf.h"

/* Text kept in the full-text index per message body. */
#define META_MAX_BODY_TEXT (1024 * 1024)
/* Text of one message put in the trigram index; beyond it, a search reads
 * the message itself (see store_search_text). Trigram indexing costs
 * grow with the number of distinct trigrams, so this bounds the cost of
 * a delivery. */
#define META_MAX_FTS_TEXT (64 * 1024)
#define META_MAX_FIELD	  (64 * 1024)

struct content_meta {
	struct buf envelope, bodystructure, body;
	struct buf subject, base_subject;
	struct buf from, to, cc, bcc;
	struct buf sort_from, sort_to, sort_cc, display_from, display_to;
	struct buf message_id, in_reply_to, references;
	struct buf fts_headers, fts_body;
	struct buf preview; /* JMAP's, of the body text only */
	int64_t sent_date;  /* -1: none */
	int64_t sent_day;   /* the Date: header's day in its own zone, -1 */
	bool has_attachment;
	bool text_complete; /* fts_body holds all of the message's text */
};

/* Fills m (which it initialises) from the message bytes. */
void content_meta_build(struct content_meta *m, struct slice bytes);
void content_meta_free(struct content_meta *m);

#endif
