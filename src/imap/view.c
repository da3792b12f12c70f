/* view.c: the selected mailbox as one session sees it: its messages in
 * sequence order, and the untagged updates (EXISTS, EXPUNGE or VANISHED,
 * FETCH FLAGS) that bring the session up to date with the store at the
 * moments the RFCs allow. Runs on pool threads. */
#include "core/common.h"

#include "imap/internal.h"

#include "core/log.h"

static char empty_keywords[] = "";

void imap_view_free(struct view **vp)
{
	struct view *v = *vp;
	if (v == NULL)
		return;
	for (size_t i = 0; i < v->count; i++)
		if (v->messages[i].keywords != empty_keywords)
			free(v->messages[i].keywords);
	free(v->messages);
	free(v->saved);
	free(v);
	*vp = NULL;
}

static char *keywords_copy(const char *k)
{
	return *k ? xstrdup(k) : empty_keywords;
}

void imap_view_set_keywords(struct view_message *m, const char *k)
{
	if (strcmp(m->keywords, k) == 0)
		return;
	if (m->keywords != empty_keywords)
		free(m->keywords);
	m->keywords = keywords_copy(k);
}

/* Index of uid in the view, or -1. */
long imap_view_find(const struct view *v, uint32_t uid);

long imap_view_find(const struct view *v, uint32_t uid)
{
	size_t lo = 0, hi = v->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v->messages[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < v->count && v->messages[lo].uid == uid)
		return (long)lo;
	return -1;
}

struct refresh {
	struct imap_session *s;
	struct view *v;
	size_t new_messages;
	bool changed_flags;
};

/* Writes "* n FETCH (FLAGS (...) [UID u] [MODSEQ (m)])". */
void imap_send_flags(struct imap_session *s, size_t seq,
		     const struct view_message *m, bool with_uid);

void imap_send_flags(struct imap_session *s, size_t seq,
		     const struct view_message *m, bool with_uid)
{
	static const char *const names[] = {"\\Seen", "\\Answered", "\\Flagged",
					    "\\Deleted", "\\Draft"};
	struct buf *out = &s->out;
	buf_printf(out, "* %zu FETCH (", seq);
	if (with_uid)
		buf_printf(out, "UID %u ", m->uid);
	buf_append_cstr(out, "FLAGS (");
	bool first = true;
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		if (m->flags & (1u << i)) {
			buf_printf(out, "%s%s", first ? "" : " ", names[i]);
			first = false;
		}
	}
	if (*m->keywords)
		buf_printf(out, "%s%s", first ? "" : " ", m->keywords);
	buf_append_cstr(out, ")");
	if (s->condstore)
		buf_printf(out, " MODSEQ (%llu)",
			   (unsigned long long)m->modseq);
	buf_append_cstr(out, ")\r\n");
}

static void append_message(struct view *v, const struct store_message *m)
{
	if (v->count == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 64;
		v->messages =
			xrealloc(v->messages, v->cap * sizeof(*v->messages));
	}
	struct view_message *vm = &v->messages[v->count++];
	vm->uid = m->uid;
	vm->flags = m->flags;
	vm->keywords = keywords_copy(m->keywords);
	vm->modseq = m->modseq;
	vm->internal_date = m->internal_date;
	vm->size = m->size;
	vm->expunged = false;
}

static void on_changed(const struct store_message *m, void *context)
{
	struct refresh *r = context;
	struct view *v = r->v;
	long i = imap_view_find(v, m->uid);
	if (i >= 0) {
		struct view_message *vm = &v->messages[i];
		if (vm->expunged)
			return;
		/* The session's own STORE already told it; only what it has
		 * not seen goes out. */
		bool differs = vm->flags != m->flags ||
			       strcmp(vm->keywords, m->keywords) != 0;
		bool newer = m->modseq > vm->modseq;
		vm->flags = m->flags;
		imap_view_set_keywords(vm, m->keywords);
		if (newer)
			vm->modseq = m->modseq;
		if (differs || (r->s->condstore && newer)) {
			imap_send_flags(r->s, (size_t)i + 1, vm,
					r->s->condstore || r->s->qresync ||
						r->s->rev2);
			r->changed_flags = true;
		}
		return;
	}
	if (v->count > 0 && m->uid <= v->messages[v->count - 1].uid)
		return; /* expunged before we saw it */
	append_message(v, m);
	r->new_messages++;
}

static void on_expunged(uint32_t uid, void *context)
{
	struct refresh *r = context;
	long i = imap_view_find(r->v, uid);
	if (i >= 0)
		r->v->messages[i].expunged = true;
}

/* Removes expunged messages, reporting them: VANISHED with QRESYNC,
 * EXPUNGE (highest sequence number first) otherwise. */
void imap_view_report_expunges(struct imap_session *s);

void imap_view_report_expunges(struct imap_session *s)
{
	struct view *v = s->view;
	size_t w = 0;
	bool any = false;
	for (size_t i = 0; i < v->count; i++)
		if (v->messages[i].expunged)
			any = true;
	if (!any)
		return;
	if (s->qresync) {
		/* One VANISHED with the UID set, in ranges. */
		buf_append_cstr(&s->out, "* VANISHED ");
		bool first = true;
		for (size_t i = 0; i < v->count;) {
			if (!v->messages[i].expunged) {
				i++;
				continue;
			}
			size_t j = i;
			while (j + 1 < v->count &&
			       v->messages[j + 1].expunged &&
			       v->messages[j + 1].uid == v->messages[j].uid + 1)
				j++;
			buf_printf(&s->out, "%s%u", first ? "" : ",",
				   v->messages[i].uid);
			if (j > i)
				buf_printf(&s->out, ":%u", v->messages[j].uid);
			first = false;
			i = j + 1;
		}
		buf_append_cstr(&s->out, "\r\n");
	} else {
		for (size_t i = v->count; i-- > 0;)
			if (v->messages[i].expunged)
				buf_printf(&s->out, "* %zu EXPUNGE\r\n", i + 1);
	}
	for (size_t i = 0; i < v->count; i++) {
		if (v->messages[i].expunged) {
			if (v->messages[i].keywords != empty_keywords)
				free(v->messages[i].keywords);
			continue;
		}
		v->messages[w++] = v->messages[i];
	}
	v->count = w;
}

void imap_view_refresh(struct imap_session *s, struct store *store,
		       bool allow_expunge)
{
	struct view *v = s->view;
	if (v == NULL)
		return;
	const char *error;
	struct store_mailbox now;
	int found = store_mailbox_get(store, s->account_id, v->mailbox.name,
				      &now, &error);
	if (found < 0) {
		log_error("refresh: %s", error);
		return;
	}
	if (found == 0 || now.id != v->mailbox.id) {
		/* Deleted or renamed away under us. */
		buf_append_cstr(
			&s->out,
			"* BYE [UNAVAILABLE] The selected mailbox is gone\r\n");
		s->state = IMAP_STATE_LOGOUT;
		return;
	}
	if (now.highestmodseq == v->highestmodseq && !allow_expunge)
		return;
	struct refresh r = {.s = s, .v = v};
	if (now.highestmodseq != v->highestmodseq) {
		if (store_expunged(store, s->account_id, v->mailbox.id,
				   v->highestmodseq, on_expunged, &r,
				   &error) != 0 ||
		    store_messages(store, s->account_id, v->mailbox.id,
				   v->highestmodseq, on_changed, &r,
				   &error) != 0) {
			log_error("refresh: %s", error);
			return;
		}
		v->highestmodseq = now.highestmodseq;
	}
	v->mailbox.uidnext = now.uidnext;
	if (allow_expunge)
		imap_view_report_expunges(s);
	if (r.new_messages > 0) {
		buf_printf(&s->out, "* %zu EXISTS\r\n", v->count);
		if (!s->rev2)
			buf_append_cstr(&s->out, "* 0 RECENT\r\n");
	}
}

static void on_loaded(const struct store_message *m, void *context)
{
	append_message(context, m);
}

/* Loads the whole mailbox into a new view. */
struct view *imap_view_open(struct store *store, uint64_t account_id,
			    const struct store_mailbox *mailbox, bool readonly,
			    const char **error_r);

struct view *imap_view_open(struct store *store, uint64_t account_id,
			    const struct store_mailbox *mailbox, bool readonly,
			    const char **error_r)
{
	struct view *v = xcalloc(1, sizeof(*v));
	v->mailbox = *mailbox;
	v->readonly = readonly;
	v->highestmodseq = mailbox->highestmodseq;
	if (store_messages(store, account_id, mailbox->id, 0, on_loaded, v,
			   error_r) != 0) {
		imap_view_free(&v);
		return NULL;
	}
	return v;
}
