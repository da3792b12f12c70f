/* fetch.c: FETCH and UID FETCH (RFC 3501 6.4.5, RFC 9051 6.4.5, RFC 3516
 * BINARY, RFC 7162 CHANGEDSINCE and MODSEQ). Cached ENVELOPE and
 * BODYSTRUCTURE come from the store; sections are cut from the message
 * bytes with src/mime. */
#include "core/common.h"

#include "imap/internal.h"

#include "core/log.h"
#include "mime/mime.h"

struct result;
void imap_result(struct result *r, const char *status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
uint32_t *imap_set_uids(struct imap_session *s, const struct imap_arg *arg,
			bool uid, size_t *count_r, const char **error_r);
void imap_cmd_fetch(struct imap_session *s, struct store *store,
		    const struct imap_command *cmd, struct result *r);
void imap_send_vanished_earlier(struct imap_session *s, struct store *store,
				uint64_t since,
				const struct imap_seqset *known);

/* Appends bytes as a literal (literal8 when binary holds NUL). */
static void append_literal(struct buf *out, struct slice bytes, bool binary)
{
	/* An empty part may come as (NULL, 0): memchr wants a pointer. */
	bool nul =
		binary && bytes.n > 0 && memchr(bytes.p, '\0', bytes.n) != NULL;
	buf_printf(out, "%s{%zu}\r\n", nul ? "~" : "", bytes.n);
	buf_append_slice(out, bytes);
}

static struct slice partial(struct slice bytes,
			    const struct imap_fetch_item *it)
{
	if (!it->partial)
		return bytes;
	if (it->partial_start >= bytes.n)
		return slice_make(bytes.p, 0);
	size_t n = bytes.n - (size_t)it->partial_start;
	if (it->partial_length < n)
		n = (size_t)it->partial_length;
	return slice_make(bytes.p + it->partial_start, n);
}

static bool needs_bytes(const struct imap_fetch_item *it)
{
	switch (it->kind) {
	case IMAP_FETCH_BODY_SECTION:
	case IMAP_FETCH_BINARY:
	case IMAP_FETCH_BINARY_SIZE:
	case IMAP_FETCH_RFC822:
	case IMAP_FETCH_RFC822_HEADER:
	case IMAP_FETCH_RFC822_TEXT:
		return true;
	default:
		return false;
	}
}

static bool sets_seen(const struct imap_fetch_item *it)
{
	return (it->kind == IMAP_FETCH_BODY_SECTION && !it->peek) ||
	       (it->kind == IMAP_FETCH_BINARY && !it->peek) ||
	       it->kind == IMAP_FETCH_RFC822 ||
	       it->kind == IMAP_FETCH_RFC822_TEXT;
}

/* Fetches one message; returns false when the store failed. On an
 * unknown transfer encoding, *unknown_cte is set. */
static bool fetch_one(struct imap_session *s, struct store *store,
		      const struct imap_fetch *f, size_t index, bool add_uid,
		      bool add_modseq, bool *unknown_cte)
{
	struct view *v = s->view;
	struct view_message *m = &v->messages[index];
	const char *error;
	bool want_bytes = false;
	for (size_t i = 0; i < f->count; i++)
		want_bytes |= needs_bytes(&f->items[i]);
	uint8_t *data = NULL;
	size_t size = 0;
	struct mime_message *mime = NULL;
	if (want_bytes) {
		int rc =
			store_message_bytes(store, s->account_id, v->mailbox.id,
					    m->uid, &data, &size, &error);
		if (rc <= 0) {
			if (rc < 0)
				log_error("FETCH: %s", error);
			/* Expunged by another session meanwhile: nothing to
			 * send (RFC 9051 allows leaving it out). */
			return rc == 0;
		}
		mime = mime_parse(slice_make(data, size));
	}
	struct buf *out = &s->out;
	struct buf part;
	buf_init(&part, SIZE_MAX);
	buf_printf(out, "* %zu FETCH (", index + 1);
	bool first = true;
#define SEP()                                    \
	do {                                     \
		if (!first)                      \
			buf_append(out, " ", 1); \
		first = false;                   \
	} while (0)
	if (add_uid) {
		SEP();
		buf_printf(out, "UID %u", m->uid);
	}
	for (size_t i = 0; i < f->count; i++) {
		const struct imap_fetch_item *it = &f->items[i];
		buf_reset(&part);
		switch (it->kind) {
		case IMAP_FETCH_UID:
			if (add_uid)
				break;
			SEP();
			buf_printf(out, "UID %u", m->uid);
			break;
		case IMAP_FETCH_FLAGS:
			SEP();
			imap_append_flags(out, m->flags, m->keywords,
					  !s->rev2 &&
						  imap_view_recent(v, m->uid));
			break;
		case IMAP_FETCH_INTERNALDATE:
			SEP();
			buf_append_cstr(out, "INTERNALDATE \"");
			imap_format_date_time(m->internal_date, out);
			buf_append_cstr(out, "\"");
			break;
		case IMAP_FETCH_RFC822_SIZE:
			SEP();
			buf_printf(out, "RFC822.SIZE %llu",
				   (unsigned long long)m->size);
			break;
		case IMAP_FETCH_MODSEQ:
			break; /* below, once */
		case IMAP_FETCH_ENVELOPE:
		case IMAP_FETCH_BODYSTRUCTURE:
		case IMAP_FETCH_BODY_STRUCTURE_NONEXT: {
			enum store_cached_field field =
				it->kind == IMAP_FETCH_ENVELOPE
					? STORE_CACHED_ENVELOPE
				: it->kind == IMAP_FETCH_BODYSTRUCTURE
					? STORE_CACHED_BODYSTRUCTURE
					: STORE_CACHED_BODY;
			if (store_message_cached(store, s->account_id,
						 v->mailbox.id, m->uid, field,
						 &part, &error) < 0)
				log_error("FETCH: %s", error);
			SEP();
			buf_append_cstr(out,
					it->kind == IMAP_FETCH_ENVELOPE
						? "ENVELOPE "
					: it->kind == IMAP_FETCH_BODYSTRUCTURE
						? "BODYSTRUCTURE "
						: "BODY ");
			if (part.n == 0)
				buf_append_cstr(out, "NIL");
			buf_append(out, part.p, part.n);
			break;
		}
		case IMAP_FETCH_BODY_SECTION: {
			struct mime_section sec = {.part_count = it->part_count,
						   .kind = it->section,
						   .fields = it->fields,
						   .field_count =
							   it->field_count};
			memcpy(sec.parts, it->parts,
			       it->part_count * sizeof(it->parts[0]));
			mime_section_bytes(mime, &sec, &part);
			SEP();
			buf_append_slice(out, it->response_name);
			buf_append(out, " ", 1);
			append_literal(out, partial(buf_slice(&part), it),
				       false);
			break;
		}
		case IMAP_FETCH_BINARY:
		case IMAP_FETCH_BINARY_SIZE: {
			int rc = mime_section_binary(mime, it->parts,
						     it->part_count, &part);
			if (rc == -2) {
				*unknown_cte = true;
				break;
			}
			SEP();
			buf_append_slice(out, it->response_name);
			buf_append(out, " ", 1);
			if (it->kind == IMAP_FETCH_BINARY_SIZE)
				buf_printf(out, "%zu", part.n);
			else
				append_literal(out,
					       partial(buf_slice(&part), it),
					       true);
			break;
		}
		case IMAP_FETCH_RFC822:
			SEP();
			buf_append_cstr(out, "RFC822 ");
			append_literal(out, slice_make(data, size), false);
			break;
		case IMAP_FETCH_RFC822_HEADER:
		case IMAP_FETCH_RFC822_TEXT: {
			struct mime_section sec = {
				.kind = it->kind == IMAP_FETCH_RFC822_HEADER
						? MIME_SECTION_HEADER
						: MIME_SECTION_TEXT,
			};
			mime_section_bytes(mime, &sec, &part);
			SEP();
			buf_append_cstr(out,
					it->kind == IMAP_FETCH_RFC822_HEADER
						? "RFC822.HEADER "
						: "RFC822.TEXT ");
			append_literal(out, buf_slice(&part), false);
			break;
		}
		case IMAP_FETCH_SAVEDATE:
			SEP();
			buf_append_cstr(out, "SAVEDATE NIL");
			break;
		}
	}
	if (add_modseq) {
		SEP();
		buf_printf(out, "MODSEQ (%llu)", (unsigned long long)m->modseq);
	}
#undef SEP
	buf_append_cstr(out, ")\r\n");
	buf_free(&part);
	mime_free(&mime);
	free(data);
	return true;
}

static void seen_changed(const struct store_message *m, void *context)
{
	struct imap_session *s = context;
	long i = imap_view_find(s->view, m->uid);
	if (i < 0)
		return;
	struct view_message *vm = &s->view->messages[i];
	vm->flags = m->flags;
	vm->modseq = m->modseq;
}

void imap_cmd_fetch(struct imap_session *s, struct store *store,
		    const struct imap_command *cmd, struct result *r)
{
	const char *error = "Syntax: FETCH set items";
	if (cmd->arg_count < 2 || cmd->arg_count > 3) {
		imap_result(r, "BAD", "%s", error);
		return;
	}
	struct imap_fetch f;
	if (imap_parse_fetch(&cmd->args[1],
			     cmd->arg_count == 3 ? &cmd->args[2] : NULL,
			     s->arena, &f, &error) != 0) {
		imap_result(r, "BAD", "%s", error ? error : "Bad FETCH items");
		return;
	}
	if (f.vanished && (!cmd->uid || !s->qresync || !f.changedsince)) {
		imap_result(
			r, "BAD",
			"VANISHED needs UID FETCH, QRESYNC and CHANGEDSINCE");
		return;
	}
	size_t count;
	uint32_t *uids =
		imap_set_uids(s, &cmd->args[0], cmd->uid, &count, &error);
	if (uids == NULL) {
		imap_result(r, "BAD", "%s", error);
		return;
	}
	bool want_modseq = f.changedsince;
	bool seen = false, reads = false;
	for (size_t i = 0; i < f.count; i++) {
		reads |= needs_bytes(&f.items[i]);
		if (f.items[i].kind == IMAP_FETCH_MODSEQ)
			want_modseq = true;
		seen |= sets_seen(&f.items[i]);
	}
	if (want_modseq)
		s->condstore = true;
	/* \Seen first, in one change, so FLAGS below shows it. */
	bool flags_changed = false;
	if (seen && !s->view->readonly) {
		uint32_t *unseen =
			arena_alloc(s->arena, (count + 1) * sizeof(uint32_t));
		size_t n = 0;
		for (size_t i = 0; unseen && i < count; i++) {
			long k = imap_view_find(s->view, uids[i]);
			if (k >= 0 &&
			    !(s->view->messages[k].flags & STORE_FLAG_SEEN) &&
			    (!f.changedsince || s->view->messages[k].modseq >
							f.changedsince_modseq))
				unseen[n++] = uids[i];
		}
		if (n > 0) {
			if (store_flags_update(
				    store, s->account_id, s->view->mailbox.id,
				    unseen, n, STORE_FLAGS_ADD, STORE_FLAG_SEEN,
				    "", STORE_NO_UNCHANGEDSINCE, seen_changed,
				    NULL, s, &error) != 0)
				log_error("FETCH \\Seen: %s", error);
			else
				flags_changed = true;
		}
	}
	if (f.vanished) {
		/* RFC 7162 3.2.6: UIDs of the set expunged since the given
		 * MODSEQ, before the FETCH responses. */
		struct imap_seqset set;
		uint32_t star = s->view->mailbox.uidnext > 0
					? s->view->mailbox.uidnext - 1
					: 0;
		if (cmd->args[0].type == IMAP_ARG_ATOM &&
		    imap_parse_seqset(cmd->args[0].text, star, s->arena,
				      &set) == 0)
			imap_send_vanished_earlier(s, store,
						   f.changedsince_modseq, &set);
	}
	bool unknown_cte = false;
	/* Reading message contents is logged; FLAGS, ENVELOPE and the like
	 * (a client's routine sync) are not. */
	if (reads)
		imap_audit_note(s, "fetch", true, "%s:", s->view->mailbox.name);
	for (size_t i = 0; i < count; i++) {
		long k = imap_view_find(s->view, uids[i]);
		if (k < 0)
			continue;
		const struct view_message *m = &s->view->messages[k];
		if (f.changedsince && m->modseq <= f.changedsince_modseq)
			continue;
		/* A message that just got \Seen shows its FLAGS. */
		bool has_flags = false;
		for (size_t j = 0; j < f.count; j++)
			has_flags |= f.items[j].kind == IMAP_FETCH_FLAGS;
		struct imap_fetch with_flags = f;
		if (flags_changed && !has_flags) {
			struct imap_fetch_item *items = arena_alloc(
				s->arena, (f.count + 1) * sizeof(*items));
			if (items != NULL) {
				memcpy(items, f.items,
				       f.count * sizeof(*items));
				memset(&items[f.count], 0, sizeof(items[0]));
				items[f.count].kind = IMAP_FETCH_FLAGS;
				with_flags.items = items;
				with_flags.count = f.count + 1;
			}
		}
		/* With CONDSTORE, a response with FLAGS carries MODSEQ
		 * (RFC 7162 3.1.4.1), and UID so the client can match it. */
		bool shows_flags = false;
		for (size_t j = 0; j < with_flags.count; j++)
			shows_flags |=
				with_flags.items[j].kind == IMAP_FETCH_FLAGS;
		bool cs = s->condstore && shows_flags;
		if (!fetch_one(s, store, &with_flags, (size_t)k, cmd->uid || cs,
			       want_modseq || cs, &unknown_cte)) {
			imap_result(r, "NO", "[SERVERBUG] Internal error");
			return;
		}
		if (reads)
			imap_audit_uid(s, m->uid);
	}
	if (unknown_cte)
		imap_result(r, "NO",
			    "[UNKNOWN-CTE] Unknown content transfer encoding");
	else
		imap_result(r, "OK", "%sFETCH completed",
			    cmd->uid ? "UID " : "");
}
