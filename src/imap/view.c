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
	if (v->messages != NULL)
		for (size_t i = 0; i < v->count; i++)
			if (v->messages[i].keywords != empty_keywords)
				free(v->messages[i].keywords);
	free(v->messages);
	free(v->runs);
	free(v->recent);
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
void imap_append_flags(struct buf *out, unsigned flags, const char *keywords,
		       bool recent)
{
	static const char *const names[] = {"\\Seen", "\\Answered", "\\Flagged",
					    "\\Deleted", "\\Draft"};
	buf_append_cstr(out, "FLAGS (");
	bool first = true;
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		if (flags & (1u << i)) {
			buf_printf(out, "%s%s", first ? "" : " ", names[i]);
			first = false;
		}
	}
	if (recent) {
		buf_printf(out, "%s\\Recent", first ? "" : " ");
		first = false;
	}
	if (*keywords)
		buf_printf(out, "%s%s", first ? "" : " ", keywords);
	buf_append_cstr(out, ")");
}

bool imap_view_recent(const struct view *v, uint32_t uid)
{
	for (size_t i = 0; i < v->recent_count; i++) {
		const struct uid_run *r = &v->recent[i];
		if (uid < r->first)
			return false;
		if (uid - r->first < r->count)
			return true;
	}
	return false;
}

size_t imap_view_recent_count(const struct view *v)
{
	size_t n = 0;
	if (v->recent_count == 0)
		return 0;
	if (v->asleep) {
		for (size_t i = 0; i < v->run_count; i++)
			for (size_t k = 0; k < v->recent_count; k++) {
				uint64_t lo = v->runs[i].first,
					 hi = lo + v->runs[i].count;
				uint64_t rlo = v->recent[k].first,
					 rhi = rlo + v->recent[k].count;
				if (rlo > lo)
					lo = rlo;
				if (rhi < hi)
					hi = rhi;
				if (hi > lo)
					n += (size_t)(hi - lo);
			}
		return n;
	}
	for (size_t i = 0; i < v->count; i++)
		if (imap_view_recent(v, v->messages[i].uid))
			n++;
	return n;
}

static uint32_t last_uid(const struct view *v);

/* Claims, for a read-write view, the messages of the view that no session
 * has had as \Recent yet. */
static void claim_recent(struct view *v, struct store *store,
			 uint64_t account_id)
{
	uint32_t last = last_uid(v);
	if (v->readonly || last == 0)
		return;
	uint32_t from;
	const char *error;
	if (store_recent_claim(store, account_id, v->mailbox.id, last + 1,
			       &from, &error) != 0) {
		log_error("recent: %s", error);
		return;
	}
	if (from > last)
		return;
	if (v->recent_count > 0) {
		struct uid_run *r = &v->recent[v->recent_count - 1];
		if (r->first + r->count == from) {
			r->count += last + 1 - from;
			return;
		}
	}
	v->recent =
		xrealloc(v->recent, (v->recent_count + 1) * sizeof(*v->recent));
	v->recent[v->recent_count++] = (struct uid_run){from, last + 1 - from};
}

static void send_flags(struct imap_session *s, size_t seq, uint32_t uid,
		       unsigned flags, const char *keywords, uint64_t modseq,
		       bool with_uid)
{
	struct buf *out = &s->out;
	buf_printf(out, "* %zu FETCH (", seq);
	if (with_uid)
		buf_printf(out, "UID %u ", uid);
	imap_append_flags(out, flags, keywords,
			  !s->rev2 && imap_view_recent(s->view, uid));
	if (s->condstore)
		buf_printf(out, " MODSEQ (%llu)", (unsigned long long)modseq);
	buf_append_cstr(out, ")\r\n");
}

void imap_send_flags(struct imap_session *s, size_t seq,
		     const struct view_message *m, bool with_uid)
{
	send_flags(s, seq, m->uid, m->flags, m->keywords, m->modseq, with_uid);
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
	vm->unreported = false;
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
		bool differs = vm->unreported || vm->flags != m->flags ||
			       strcmp(vm->keywords, m->keywords) != 0;
		vm->unreported = false;
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

/* The sleeping view: UID runs. */

static void runs_append(struct view *v, uint32_t uid)
{
	if (v->run_count > 0) {
		struct uid_run *last = &v->runs[v->run_count - 1];
		if (uid == last->first + last->count) {
			last->count++;
			return;
		}
	}
	if (v->run_count == v->run_cap) {
		v->run_cap = v->run_cap ? v->run_cap * 2 : 4;
		v->runs = xrealloc(v->runs, v->run_cap * sizeof(*v->runs));
	}
	v->runs[v->run_count++] = (struct uid_run){uid, 1};
}

static uint32_t runs_last(const struct view *v)
{
	if (v->run_count == 0)
		return 0;
	const struct uid_run *last = &v->runs[v->run_count - 1];
	return last->first + last->count - 1;
}

static uint32_t last_uid(const struct view *v)
{
	if (v->asleep)
		return runs_last(v);
	return v->count ? v->messages[v->count - 1].uid : 0;
}

/* The sequence number of uid (from 1), or 0 when it is not in the view. */
static size_t runs_seq(const struct view *v, uint32_t uid)
{
	size_t before = 0;
	for (size_t i = 0; i < v->run_count; i++) {
		const struct uid_run *r = &v->runs[i];
		if (uid < r->first)
			return 0;
		if (uid - r->first < r->count)
			return before + (uid - r->first) + 1;
		before += r->count;
	}
	return 0;
}

/* Takes uid out of the runs; it must be there. */
static void runs_remove(struct view *v, uint32_t uid)
{
	for (size_t i = 0; i < v->run_count; i++) {
		struct uid_run *r = &v->runs[i];
		if (uid < r->first || uid - r->first >= r->count)
			continue;
		if (r->count == 1) {
			memmove(r, r + 1, (v->run_count - i - 1) * sizeof(*r));
			v->run_count--;
		} else if (uid == r->first) {
			r->first++;
			r->count--;
		} else if (uid == r->first + r->count - 1) {
			r->count--;
		} else {
			if (v->run_count == v->run_cap) {
				v->run_cap *= 2;
				v->runs = xrealloc(
					v->runs, v->run_cap * sizeof(*v->runs));
				r = &v->runs[i];
			}
			memmove(r + 2, r + 1,
				(v->run_count - i - 1) * sizeof(*r));
			v->run_count++;
			uint32_t end = r->first + r->count;
			r->count = uid - r->first;
			r[1] = (struct uid_run){uid + 1, end - uid - 1};
		}
		v->count--;
		return;
	}
	DIJK_ASSERT(!"uid not in the view");
}

void imap_view_sleep(struct view *v)
{
	if (v->asleep)
		return;
	for (size_t i = 0; i < v->count; i++)
		if (v->messages[i].expunged)
			return;
	v->run_count = 0;
	for (size_t i = 0; i < v->count; i++) {
		runs_append(v, v->messages[i].uid);
		if (v->messages[i].keywords != empty_keywords)
			free(v->messages[i].keywords);
	}
	free(v->messages);
	v->messages = NULL;
	v->cap = 0;
	v->asleep = true;
	/* Growth room of the runs is not worth keeping for a long IDLE. */
	if (v->run_count < v->run_cap) {
		v->run_cap = v->run_count ? v->run_count : 1;
		v->runs = xrealloc(v->runs, v->run_cap * sizeof(*v->runs));
	}
}

struct wake {
	struct view *v;
	size_t run, offset; /* the next UID of the runs expected */
	uint32_t next_uid;
	bool done;
};

static void wake_advance(struct wake *w)
{
	struct view *v = w->v;
	if (w->run >= v->run_count) {
		w->done = true;
		return;
	}
	w->next_uid = v->runs[w->run].first + (uint32_t)w->offset;
	if (++w->offset == v->runs[w->run].count) {
		w->run++;
		w->offset = 0;
	}
}

static void push_placeholder(struct view *v, uint32_t uid)
{
	struct store_message gone = {.uid = uid, .keywords = ""};
	append_message(v, &gone);
	v->messages[v->count - 1].expunged = true;
}

static void on_wake_message(const struct store_message *m, void *context)
{
	struct wake *w = context;
	struct view *v = w->v;
	/* Messages of the view that the store no longer has were expunged
	 * since the last refresh: they keep their sequence numbers until
	 * the expunge is reported. */
	while (!w->done && w->next_uid < m->uid) {
		push_placeholder(v, w->next_uid);
		wake_advance(w);
	}
	if (w->done || w->next_uid != m->uid)
		return; /* new since the last refresh: not in the view yet */
	append_message(v, m);
	if (m->modseq > v->highestmodseq)
		v->messages[v->count - 1].unreported = true;
	wake_advance(w);
}

int imap_view_wake(struct view *v, struct store *store, uint64_t account_id,
		   const char **error_r)
{
	if (!v->asleep)
		return 0;
	size_t count = v->count;
	struct wake w = {.v = v};
	wake_advance(&w);
	v->messages = xmalloc((count ? count : 1) * sizeof(*v->messages));
	v->cap = count ? count : 1;
	v->count = 0;
	if (store_messages(store, account_id, v->mailbox.id, 0, on_wake_message,
			   &w, error_r) != 0) {
		for (size_t i = 0; i < v->count; i++)
			if (v->messages[i].keywords != empty_keywords)
				free(v->messages[i].keywords);
		free(v->messages);
		v->messages = NULL;
		v->cap = 0;
		v->count = count;
		return -1;
	}
	while (!w.done) {
		push_placeholder(v, w.next_uid);
		wake_advance(&w);
	}
	DIJK_ASSERT(v->count == count);
	free(v->runs);
	v->runs = NULL;
	v->run_count = v->run_cap = 0;
	v->asleep = false;
	return 0;
}

struct sleeping_refresh {
	struct imap_session *s;
	uint32_t *gone;
	size_t gone_count, gone_cap;
	size_t new_messages;
};

static void on_expunged_asleep(uint32_t uid, void *context)
{
	struct sleeping_refresh *r = context;
	if (runs_seq(r->s->view, uid) == 0)
		return;
	if (r->gone_count == r->gone_cap) {
		r->gone_cap = r->gone_cap ? r->gone_cap * 2 : 16;
		r->gone = xrealloc(r->gone, r->gone_cap * sizeof(*r->gone));
	}
	r->gone[r->gone_count++] = uid;
}

static void on_changed_asleep(const struct store_message *m, void *context)
{
	struct sleeping_refresh *r = context;
	struct imap_session *s = r->s;
	struct view *v = s->view;
	size_t seq = runs_seq(v, m->uid);
	if (seq > 0) {
		/* The session heard of everything up to the view's
		 * HIGHESTMODSEQ when it fell asleep: this is news. */
		send_flags(s, seq, m->uid, m->flags, m->keywords, m->modseq,
			   s->condstore || s->qresync || s->rev2);
		return;
	}
	if (m->uid <= runs_last(v))
		return; /* expunged before the session saw it */
	runs_append(v, m->uid);
	v->count++;
	r->new_messages++;
}

/* A sleeping view is refreshed only while the session IDLEs, when
 * expunges may be reported. */
static int refresh_asleep(struct imap_session *s, struct store *store,
			  const char **error_r)
{
	struct view *v = s->view;
	struct sleeping_refresh r = {.s = s};
	if (store_expunged(store, s->account_id, v->mailbox.id,
			   v->highestmodseq, on_expunged_asleep, &r,
			   error_r) != 0) {
		free(r.gone);
		return -1;
	}
	/* The UIDs come in UID order. */
	if (r.gone_count > 0 && s->qresync) {
		buf_append_cstr(&s->out, "* VANISHED ");
		for (size_t i = 0; i < r.gone_count;) {
			size_t j = i;
			while (j + 1 < r.gone_count &&
			       r.gone[j + 1] == r.gone[j] + 1)
				j++;
			buf_printf(&s->out, "%s%u", i ? "," : "", r.gone[i]);
			if (j > i)
				buf_printf(&s->out, ":%u", r.gone[j]);
			i = j + 1;
		}
		buf_append_cstr(&s->out, "\r\n");
		for (size_t i = 0; i < r.gone_count; i++)
			runs_remove(v, r.gone[i]);
	} else {
		/* Highest first, so that each number is still right when
		 * the client reads it. */
		for (size_t i = r.gone_count; i-- > 0;) {
			buf_printf(&s->out, "* %zu EXPUNGE\r\n",
				   runs_seq(v, r.gone[i]));
			runs_remove(v, r.gone[i]);
		}
	}
	free(r.gone);
	r.gone = NULL;
	if (store_messages(store, s->account_id, v->mailbox.id,
			   v->highestmodseq, on_changed_asleep, &r,
			   error_r) != 0)
		return -1;
	if (r.new_messages > 0) {
		claim_recent(v, store, s->account_id);
		buf_printf(&s->out, "* %zu EXISTS\r\n", v->count);
		if (!s->rev2)
			buf_printf(&s->out, "* %zu RECENT\r\n",
				   imap_view_recent_count(v));
	}
	return 0;
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
	if (v->asleep) {
		DIJK_ASSERT(allow_expunge);
		if (now.highestmodseq == v->highestmodseq)
			return;
		if (refresh_asleep(s, store, &error) != 0) {
			log_error("refresh: %s", error);
			return;
		}
		v->highestmodseq = now.highestmodseq;
		v->mailbox.uidnext = now.uidnext;
		return;
	}
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
		claim_recent(v, store, s->account_id);
		buf_printf(&s->out, "* %zu EXISTS\r\n", v->count);
		if (!s->rev2)
			buf_printf(&s->out, "* %zu RECENT\r\n",
				   imap_view_recent_count(v));
	}
}

static void on_loaded(const struct store_message *m, void *context)
{
	append_message(context, m);
}

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
	claim_recent(v, store, account_id);
	return v;
}
