/* search.c: SEARCH (RFC 3501, RFC 9051, ESEARCH RFC 4731, SEARCHRES RFC
 * 5182, MODSEQ RFC 7162), SORT (RFC 5256, RFC 5957) and THREAD (RFC 5256
 * ORDEREDSUBJECT and REFERENCES) over the selected mailbox. Flags, dates,
 * sizes and sets are answered from the session's view; text from the
 * store's full-text index and decoded header columns. */
#include "core/common.h"

#include "imap/internal.h"

#include "core/log.h"
#include "mime/mime.h"

#include <strings.h>

struct result;
void imap_result(struct result *r, const char *status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void imap_cmd_search(struct imap_session *s, struct store *store,
		     const struct imap_command *cmd, struct result *r);
void imap_cmd_sort(struct imap_session *s, struct store *store,
		   const struct imap_command *cmd, struct result *r);
void imap_cmd_thread(struct imap_session *s, struct store *store,
		     const struct imap_command *cmd, struct result *r);

#define DAY 86400
/* References followed per message in THREAD=REFERENCES. */
#define THREAD_MAX_REFERENCES 64

struct search_ctx {
	struct imap_session *s;
	struct store *store;
	bool failed;
	/* Sent dates, loaded on first use (SENTBEFORE etc.). */
	int64_t *sent;
};

static void sent_key(const struct store_sort_keys *k, void *context)
{
	struct search_ctx *c = context;
	long i = imap_view_find(c->s->view, k->uid);
	if (i >= 0)
		c->sent[i] = k->sent_day;
}

static int64_t sent_date(struct search_ctx *c, size_t i)
{
	if (c->sent == NULL) {
		struct view *v = c->s->view;
		c->sent = xcalloc(v->count + 1, sizeof(*c->sent));
		for (size_t k = 0; k < v->count; k++)
			c->sent[k] = INT64_MIN;
		const char *error;
		if (store_sort_keys_each(c->store, c->s->account_id,
					 v->mailbox.id, sent_key, c,
					 &error) != 0) {
			log_error("SEARCH: %s", error);
			c->failed = true;
		}
	}
	return c->sent[i];
}

static bool has_keyword(const char *list, struct slice k)
{
	const char *p = list;
	while (*p) {
		const char *start = p;
		while (*p && *p != ' ')
			p++;
		if ((size_t)(p - start) == k.n &&
		    strncasecmp(start, (const char *)k.p, k.n) == 0)
			return true;
		while (*p == ' ')
			p++;
	}
	return false;
}

/* Marks hits of a store text search in `hits`. */
struct text_ctx {
	const struct view *v;
	bool *hits;
};

static void text_mark(uint32_t uid, void *context)
{
	struct text_ctx *t = context;
	long i = imap_view_find(t->v, uid);
	if (i >= 0)
		t->hits[i] = true;
}

static bool header_matches(struct search_ctx *c, size_t i, struct slice field,
			   struct slice value)
{
	struct view *v = c->s->view;
	uint8_t *data;
	size_t size;
	const char *error;
	if (store_message_bytes(c->store, c->s->account_id, v->mailbox.id,
				v->messages[i].uid, &data, &size, &error) <= 0)
		return false;
	struct mime_message *m = mime_parse(slice_make(data, size));
	char name[256];
	size_t n = field.n < sizeof(name) - 1 ? field.n : sizeof(name) - 1;
	memcpy(name, field.p, n);
	name[n] = '\0';
	struct buf b;
	buf_init(&b, 1 << 20);
	bool found = mime_header_value(m, name, &b);
	bool match = false;
	if (found) {
		if (value.n == 0)
			match = true;
		else if (b.n >= value.n)
			for (size_t k = 0; k + value.n <= b.n && !match; k++)
				match = strncasecmp((const char *)b.p + k,
						    (const char *)value.p,
						    value.n) == 0;
	}
	buf_free(&b);
	mime_free(&m);
	free(data);
	return match;
}

static time_t day_of(time_t t)
{
	return t - (t % DAY + DAY) % DAY;
}

/* Evaluates a key for every message; hits[count]. */
static void evaluate(struct search_ctx *c, const struct imap_search_key *key,
		     bool *hits)
{
	struct view *v = c->s->view;
	size_t n = v->count;
	switch (key->kind) {
	case IMAP_SEARCH_AND: {
		for (size_t i = 0; i < n; i++)
			hits[i] = true;
		bool *sub = xcalloc(n + 1, sizeof(bool));
		for (size_t k = 0; k < key->child_count; k++) {
			evaluate(c, &key->children[k], sub);
			for (size_t i = 0; i < n; i++)
				hits[i] = hits[i] && sub[i];
		}
		free(sub);
		return;
	}
	case IMAP_SEARCH_OR: {
		bool *sub = xcalloc(n + 1, sizeof(bool));
		for (size_t i = 0; i < n; i++)
			hits[i] = false;
		for (size_t k = 0; k < key->child_count; k++) {
			evaluate(c, &key->children[k], sub);
			for (size_t i = 0; i < n; i++)
				hits[i] = hits[i] || sub[i];
		}
		free(sub);
		return;
	}
	case IMAP_SEARCH_NOT:
		evaluate(c, &key->children[0], hits);
		for (size_t i = 0; i < n; i++)
			hits[i] = !hits[i];
		return;
	case IMAP_SEARCH_BODY:
	case IMAP_SEARCH_TEXT:
	case IMAP_SEARCH_HEADER: {
		for (size_t i = 0; i < n; i++)
			hits[i] = false;
		enum store_text_field field = STORE_TEXT_ALL;
		bool fast = true;
		if (key->kind == IMAP_SEARCH_BODY)
			field = STORE_TEXT_BODY;
		else if (key->kind == IMAP_SEARCH_HEADER) {
			if (slice_eq_ci(key->field, "FROM"))
				field = STORE_TEXT_FROM;
			else if (slice_eq_ci(key->field, "TO"))
				field = STORE_TEXT_TO;
			else if (slice_eq_ci(key->field, "CC"))
				field = STORE_TEXT_CC;
			else if (slice_eq_ci(key->field, "BCC"))
				field = STORE_TEXT_BCC;
			else if (slice_eq_ci(key->field, "SUBJECT"))
				field = STORE_TEXT_SUBJECT;
			else
				fast = false;
			if (key->value.n == 0)
				fast = false; /* "has the field" */
		}
		if (!fast) {
			for (size_t i = 0; i < n; i++)
				hits[i] = header_matches(c, i, key->field,
							 key->value);
			return;
		}
		char *value = xstrndup(key->value.p, key->value.n);
		struct text_ctx t = {v, hits};
		const char *error;
		if (store_search_text(c->store, c->s->account_id, v->mailbox.id,
				      field, value, text_mark, &t,
				      &error) != 0) {
			log_error("SEARCH: %s", error);
			c->failed = true;
		}
		free(value);
		return;
	}
	default:
		break;
	}
	for (size_t i = 0; i < n; i++) {
		const struct view_message *m = &v->messages[i];
		bool h = false;
		switch (key->kind) {
		case IMAP_SEARCH_ALL:
			h = true;
			break;
		case IMAP_SEARCH_OLD:
			h = !imap_view_recent(v, m->uid);
			break;
		case IMAP_SEARCH_NEW:
			h = imap_view_recent(v, m->uid) &&
			    !(m->flags & STORE_FLAG_SEEN);
			break;
		case IMAP_SEARCH_RECENT:
			h = imap_view_recent(v, m->uid);
			break;
		case IMAP_SEARCH_SEQSET:
			h = imap_seqset_contains(&key->set, (uint32_t)(i + 1));
			break;
		case IMAP_SEARCH_UIDSET:
			h = imap_seqset_contains(&key->set, m->uid);
			break;
		case IMAP_SEARCH_SAVED:
			h = false;
			for (size_t k = 0; k < v->saved_count; k++)
				if (v->saved[k] == m->uid)
					h = true;
			break;
		case IMAP_SEARCH_FLAG:
			h = (m->flags & key->flags) == key->flags;
			break;
		case IMAP_SEARCH_NOT_FLAG:
			h = (m->flags & key->flags) == 0;
			break;
		case IMAP_SEARCH_KEYWORD:
			h = has_keyword(m->keywords, key->value);
			break;
		case IMAP_SEARCH_UNKEYWORD:
			h = !has_keyword(m->keywords, key->value);
			break;
		case IMAP_SEARCH_BEFORE:
			h = day_of(m->internal_date) < key->date;
			break;
		case IMAP_SEARCH_ON:
			h = day_of(m->internal_date) == key->date;
			break;
		case IMAP_SEARCH_SINCE:
			h = day_of(m->internal_date) >= key->date;
			break;
		case IMAP_SEARCH_SENTBEFORE:
		case IMAP_SEARCH_SENTON:
		case IMAP_SEARCH_SENTSINCE: {
			/* The Date: header's day in its own zone; without
			 * one, the internal date's. */
			int64_t d = sent_date(c, i);
			time_t day = d == INT64_MIN ? day_of(m->internal_date)
						    : (time_t)d;
			h = key->kind == IMAP_SEARCH_SENTBEFORE
				    ? day < key->date
			    : key->kind == IMAP_SEARCH_SENTON
				    ? day == key->date
				    : day >= key->date;
			break;
		}
		case IMAP_SEARCH_LARGER:
			h = m->size > key->number;
			break;
		case IMAP_SEARCH_SMALLER:
			h = m->size < key->number;
			break;
		case IMAP_SEARCH_MODSEQ:
			h = m->modseq >= key->number;
			break;
		default:
			h = false;
			break;
		}
		hits[i] = h;
	}
}

static void append_set(struct buf *out, const uint32_t *list, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j + 1 < n && list[j + 1] == list[j] + 1)
			j++;
		buf_printf(out, "%s%u", i ? "," : "", list[i]);
		if (j > i)
			buf_printf(out, ":%u", list[j]);
		i = j + 1;
	}
}

/* Runs a search; returns a malloc'd array of matching view indexes. */
static size_t *run_search(struct imap_session *s, struct store *store,
			  const struct imap_search *search, size_t *count_r,
			  bool *failed_r)
{
	struct view *v = s->view;
	struct search_ctx c = {.s = s, .store = store};
	bool *hits = xcalloc(v->count + 1, sizeof(bool));
	evaluate(&c, &search->root, hits);
	size_t *out = xcalloc(v->count + 1, sizeof(size_t));
	size_t n = 0;
	for (size_t i = 0; i < v->count; i++)
		if (hits[i])
			out[n++] = i;
	free(hits);
	free(c.sent);
	*failed_r = c.failed;
	*count_r = n;
	return out;
}

static bool charset_ok(struct slice charset)
{
	return charset.n == 0 || slice_eq_ci(charset, "UTF-8") ||
	       slice_eq_ci(charset, "US-ASCII");
}

void imap_cmd_search(struct imap_session *s, struct store *store,
		     const struct imap_command *cmd, struct result *r)
{
	struct view *v = s->view;
	struct imap_search search;
	const char *error = NULL;
	uint32_t uid_star = v->count ? v->messages[v->count - 1].uid : 0;
	if (imap_parse_search(cmd->args, cmd->arg_count, (uint32_t)v->count,
			      uid_star, s->arena, &search, &error) != 0) {
		imap_result(r, "BAD", "%s", error ? error : "Bad search");
		return;
	}
	if (!charset_ok(search.charset)) {
		imap_result(r, "NO",
			    "[BADCHARSET (UTF-8 US-ASCII)] Unknown charset");
		return;
	}
	size_t count;
	bool failed;
	size_t *found = run_search(s, store, &search, &count, &failed);
	if (failed) {
		free(found);
		imap_result(r, "NO", "[SERVERBUG] Search failed");
		return;
	}
	uint32_t *list = xcalloc(count + 1, sizeof(uint32_t));
	uint64_t highest = 0;
	for (size_t i = 0; i < count; i++) {
		const struct view_message *m = &v->messages[found[i]];
		list[i] = cmd->uid ? m->uid : (uint32_t)(found[i] + 1);
		if (m->modseq > highest)
			highest = m->modseq;
	}
	bool modseq_key = false;
	/* The MODSEQ key anywhere asks for the highest MODSEQ in the reply. */
	const struct imap_search_key *stack[64];
	size_t depth = 0;
	stack[depth++] = &search.root;
	while (depth > 0) {
		const struct imap_search_key *k = stack[--depth];
		if (k->kind == IMAP_SEARCH_MODSEQ)
			modseq_key = true;
		for (size_t i = 0; i < k->child_count && depth < 64; i++)
			stack[depth++] = &k->children[i];
	}
	if (search.return_save) {
		/* RFC 5182 2.1: with MIN or MAX but neither ALL nor COUNT,
		 * only those are saved. */
		bool only_ends = (search.return_min || search.return_max) &&
				 !search.return_all && !search.return_count;
		free(v->saved);
		v->saved = xcalloc(count + 1, sizeof(uint32_t));
		v->saved_count = 0;
		for (size_t i = 0; i < count; i++) {
			bool keep = !only_ends ||
				    (search.return_min && i == 0) ||
				    (search.return_max && i == count - 1);
			if (keep)
				v->saved[v->saved_count++] =
					v->messages[found[i]].uid;
		}
	}
	struct buf *out = &s->out;
	bool esearch = search.esearch || s->rev2;
	bool only_save = search.return_save && !search.return_min &&
			 !search.return_max && !search.return_all &&
			 !search.return_count;
	if (esearch && only_save) {
		/* RFC 5182: SAVE alone answers nothing. */
	} else if (esearch) {
		bool all = search.return_all ||
			   (!search.return_min && !search.return_max &&
			    !search.return_count && !search.return_save);
		buf_append_cstr(out, "* ESEARCH (TAG ");
		imap_append_string(out, cmd->tag, false);
		buf_append_cstr(out, ")");
		if (cmd->uid)
			buf_append_cstr(out, " UID");
		if (search.return_min && count > 0)
			buf_printf(out, " MIN %u", list[0]);
		if (search.return_max && count > 0)
			buf_printf(out, " MAX %u", list[count - 1]);
		if (all && count > 0) {
			buf_append_cstr(out, " ALL ");
			append_set(out, list, count);
		}
		if (search.return_count)
			buf_printf(out, " COUNT %zu", count);
		if (modseq_key && count > 0)
			buf_printf(out, " MODSEQ %llu",
				   (unsigned long long)highest);
		buf_append_cstr(out, "\r\n");
	} else {
		buf_append_cstr(out, "* SEARCH");
		for (size_t i = 0; i < count; i++)
			buf_printf(out, " %u", list[i]);
		if (modseq_key && count > 0)
			buf_printf(out, " (MODSEQ %llu)",
				   (unsigned long long)highest);
		buf_append_cstr(out, "\r\n");
	}
	free(list);
	free(found);
	imap_result(r, "OK", "%sSEARCH completed", cmd->uid ? "UID " : "");
}

/* ---- SORT ---- */

struct sort_row {
	size_t index; /* in the view */
	uint32_t uid;
	time_t arrival;
	int64_t date;
	uint64_t size;
	char *subject, *from, *to, *cc, *display_from, *display_to;
	char *message_id, *in_reply_to, *references;
	bool reply; /* the subject was a reply or forward */
};

struct sort_load {
	struct imap_session *s;
	struct sort_row *rows; /* by view index */
};

static void sort_key(const struct store_sort_keys *k, void *context)
{
	struct sort_load *l = context;
	long i = imap_view_find(l->s->view, k->uid);
	if (i < 0)
		return;
	struct sort_row *row = &l->rows[i];
	row->uid = k->uid;
	row->arrival = k->internal_date;
	row->date = k->sent_date >= 0 ? k->sent_date : k->internal_date;
	row->size = k->size;
	row->subject = xstrdup(k->base_subject);
	row->from = xstrdup(k->sort_from);
	row->to = xstrdup(k->sort_to);
	row->cc = xstrdup(k->sort_cc);
	row->display_from = xstrdup(k->display_from);
	row->display_to = xstrdup(k->display_to);
	row->message_id = xstrdup(k->message_id);
	row->in_reply_to = xstrdup(k->in_reply_to);
	row->references = xstrdup(k->references);
	row->reply = mime_subject_is_reply_or_forward(slice_cstr(k->subject));
}

static struct sort_row *load_rows(struct imap_session *s, struct store *store,
				  bool *failed_r)
{
	struct view *v = s->view;
	struct sort_load l = {s,
			      xcalloc(v->count + 1, sizeof(struct sort_row))};
	for (size_t i = 0; i < v->count; i++) {
		l.rows[i].index = i;
		l.rows[i].uid = v->messages[i].uid;
		l.rows[i].arrival = v->messages[i].internal_date;
		l.rows[i].date = v->messages[i].internal_date;
		l.rows[i].size = v->messages[i].size;
	}
	const char *error;
	*failed_r = store_sort_keys_each(store, s->account_id, v->mailbox.id,
					 sort_key, &l, &error) != 0;
	if (*failed_r)
		log_error("SORT: %s", error);
	return l.rows;
}

static void free_rows(struct sort_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char *texts[] = {rows[i].subject,      rows[i].from,
				 rows[i].to,	       rows[i].cc,
				 rows[i].display_from, rows[i].display_to,
				 rows[i].message_id,   rows[i].in_reply_to,
				 rows[i].references};
		for (size_t k = 0; k < ARRAY_SIZE(texts); k++)
			free(texts[k]);
	}
	free(rows);
}

static int text_cmp(const char *a, const char *b)
{
	return strcasecmp(a ? a : "", b ? b : "");
}

static __thread const struct imap_sort_criterion *tl_criteria;
static __thread size_t tl_criteria_count;

static int compare_rows(const void *x, const void *y)
{
	const struct sort_row *a = *(const struct sort_row *const *)x;
	const struct sort_row *b = *(const struct sort_row *const *)y;
	for (size_t i = 0; i < tl_criteria_count; i++) {
		int c = 0;
		switch (tl_criteria[i].key) {
		case IMAP_SORT_ARRIVAL:
			c = (a->arrival > b->arrival) -
			    (a->arrival < b->arrival);
			break;
		case IMAP_SORT_DATE:
			c = (a->date > b->date) - (a->date < b->date);
			break;
		case IMAP_SORT_SIZE:
			c = (a->size > b->size) - (a->size < b->size);
			break;
		case IMAP_SORT_SUBJECT:
			c = text_cmp(a->subject, b->subject);
			break;
		case IMAP_SORT_FROM:
			c = text_cmp(a->from, b->from);
			break;
		case IMAP_SORT_TO:
			c = text_cmp(a->to, b->to);
			break;
		case IMAP_SORT_CC:
			c = text_cmp(a->cc, b->cc);
			break;
		case IMAP_SORT_DISPLAYFROM:
			c = text_cmp(a->display_from, b->display_from);
			break;
		case IMAP_SORT_DISPLAYTO:
			c = text_cmp(a->display_to, b->display_to);
			break;
		}
		if (tl_criteria[i].reverse)
			c = -c;
		if (c != 0)
			return c;
	}
	/* Ties: by sequence number. */
	return (a->index > b->index) - (a->index < b->index);
}

/* SORT and THREAD take: criteria or algorithm, charset, search keys. */
static bool parse_tail(struct imap_session *s, const struct imap_command *cmd,
		       struct imap_search *search, struct result *r)
{
	struct view *v = s->view;
	struct slice charset;
	if (cmd->arg_count < 3 || !imap_arg_astring(&cmd->args[1], &charset)) {
		imap_result(r, "BAD", "Syntax: criteria charset search-keys");
		return false;
	}
	if (!charset_ok(charset)) {
		imap_result(r, "NO",
			    "[BADCHARSET (UTF-8 US-ASCII)] Unknown charset");
		return false;
	}
	const char *error = NULL;
	uint32_t uid_star = v->count ? v->messages[v->count - 1].uid : 0;
	if (imap_parse_search(cmd->args + 2, cmd->arg_count - 2,
			      (uint32_t)v->count, uid_star, s->arena, search,
			      &error) != 0) {
		imap_result(r, "BAD", "%s", error ? error : "Bad search");
		return false;
	}
	return true;
}

void imap_cmd_sort(struct imap_session *s, struct store *store,
		   const struct imap_command *cmd, struct result *r)
{
	struct imap_sort_criterion *criteria;
	size_t criteria_count;
	const char *error = NULL;
	if (cmd->arg_count < 1 ||
	    imap_parse_sort_criteria(&cmd->args[0], s->arena, &criteria,
				     &criteria_count, &error) != 0) {
		imap_result(r, "BAD", "%s",
			    error ? error : "Bad sort criteria");
		return;
	}
	struct imap_search search;
	if (!parse_tail(s, cmd, &search, r))
		return;
	size_t count;
	bool failed;
	size_t *found = run_search(s, store, &search, &count, &failed);
	struct sort_row *rows = load_rows(s, store, &failed);
	struct sort_row **order = xcalloc(count + 1, sizeof(*order));
	for (size_t i = 0; i < count; i++)
		order[i] = &rows[found[i]];
	tl_criteria = criteria;
	tl_criteria_count = criteria_count;
	qsort(order, count, sizeof(*order), compare_rows);
	buf_append_cstr(&s->out, "* SORT");
	for (size_t i = 0; i < count; i++)
		buf_printf(&s->out, " %u",
			   cmd->uid ? order[i]->uid
				    : (uint32_t)(order[i]->index + 1));
	buf_append_cstr(&s->out, "\r\n");
	free(order);
	free(found);
	free_rows(rows, s->view->count);
	if (failed)
		imap_result(r, "NO", "[SERVERBUG] Sort keys unavailable");
	else
		imap_result(r, "OK", "%sSORT completed",
			    cmd->uid ? "UID " : "");
}

/* ---- THREAD ---- */

/* A node of a thread tree: a message (row) or a dummy for a referenced
 * message we do not have. */
struct node {
	struct sort_row *row; /* NULL: dummy */
	char *id;
	bool merged; /* a dummy made by merge_by_subject: freed alone */
	struct node *parent, *child, *next;
};

static void node_unlink(struct node *n)
{
	if (n->parent == NULL)
		return;
	struct node **pp = &n->parent->child;
	while (*pp && *pp != n)
		pp = &(*pp)->next;
	if (*pp)
		*pp = n->next;
	n->parent = NULL;
	n->next = NULL;
}

static bool is_ancestor(const struct node *maybe, const struct node *n)
{
	for (const struct node *p = n; p; p = p->parent)
		if (p == maybe)
			return true;
	return false;
}

static void node_link(struct node *parent, struct node *child)
{
	if (child->parent == parent || is_ancestor(child, parent))
		return;
	node_unlink(child);
	child->parent = parent;
	child->next = parent->child;
	parent->child = child;
}

/* The date of a thread or subtree: its first message's. */
static int64_t node_date(const struct node *n)
{
	if (n->row)
		return n->row->date;
	int64_t best = INT64_MAX;
	for (const struct node *c = n->child; c; c = c->next) {
		int64_t d = node_date(c);
		if (d < best)
			best = d;
	}
	return best;
}

static int compare_nodes(const void *x, const void *y)
{
	const struct node *a = *(const struct node *const *)x;
	const struct node *b = *(const struct node *const *)y;
	int64_t da = node_date(a), db = node_date(b);
	if (da != db)
		return da < db ? -1 : 1;
	size_t ia = a->row ? a->row->index : SIZE_MAX;
	size_t ib = b->row ? b->row->index : SIZE_MAX;
	return (ia > ib) - (ia < ib);
}

/* Sorts a sibling list by date; returns its new head. */
static struct node *sort_siblings(struct node *head)
{
	size_t n = 0;
	for (struct node *c = head; c; c = c->next)
		n++;
	if (n < 2)
		return head;
	struct node **a = xcalloc(n, sizeof(*a));
	n = 0;
	for (struct node *c = head; c; c = c->next)
		a[n++] = c;
	qsort(a, n, sizeof(*a), compare_nodes);
	for (size_t i = 0; i + 1 < n; i++)
		a[i]->next = a[i + 1];
	a[n - 1]->next = NULL;
	head = a[0];
	free(a);
	return head;
}

static void sort_tree(struct node *n)
{
	n->child = sort_siblings(n->child);
	for (struct node *c = n->child; c; c = c->next)
		sort_tree(c);
}

static void print_node(struct imap_session *s, const struct node *n, bool uid)
{
	/* A chain of single children is written flat; several children are
	 * each in parentheses (RFC 5256 section 4). */
	for (;;) {
		if (n->row)
			buf_printf(&s->out, "%u",
				   uid ? n->row->uid
				       : (uint32_t)(n->row->index + 1));
		if (n->child == NULL)
			return;
		if (n->child->next == NULL) {
			if (n->row)
				buf_append(&s->out, " ", 1);
			n = n->child;
			continue;
		}
		if (n->row)
			buf_append(&s->out, " ", 1);
		for (const struct node *c = n->child; c; c = c->next) {
			buf_append(&s->out, "(", 1);
			print_node(s, c, uid);
			buf_append(&s->out, ")", 1);
		}
		return;
	}
}

/* Step 3 of RFC 5256 REFERENCES below the top level: a dummy without
 * children goes, a dummy with children gives them its place. */
static void prune_dummies(struct node *parent)
{
	struct node **pp = &parent->child;
	while (*pp != NULL) {
		struct node *n = *pp;
		prune_dummies(n);
		if (n->row != NULL) {
			pp = &n->next;
			continue;
		}
		struct node *kids = n->child, *last = NULL;
		for (struct node *c = kids; c != NULL; c = c->next) {
			c->parent = parent;
			last = c;
		}
		if (last != NULL) {
			last->next = n->next;
			*pp = kids;
			pp = &last->next;
		} else {
			*pp = n->next;
		}
		n->child = NULL;
		n->next = NULL;
		n->parent = NULL;
	}
}

static struct node *find_id(struct node **table, size_t count, const char *id)
{
	for (size_t i = 0; i < count; i++)
		if (strcmp(table[i]->id, id) == 0)
			return table[i];
	return NULL;
}

/* The subject a thread root stands for: its own, or its first child's
 * when it is a dummy. */
static const struct sort_row *root_row(const struct node *n)
{
	if (n->row != NULL)
		return n->row;
	for (const struct node *c = n->child; c; c = c->next)
		if (c->row != NULL)
			return c->row;
	return NULL;
}

/* RFC 5256 REFERENCES step 5: roots with the same base subject are
 * gathered under one. */
static void merge_by_subject(struct node *root)
{
	size_t n = 0;
	for (struct node *c = root->child; c; c = c->next)
		n++;
	struct node **roots = xcalloc(n + 1, sizeof(*roots));
	n = 0;
	for (struct node *c = root->child; c; c = c->next)
		roots[n++] = c;
	for (size_t i = 0; i < n; i++) {
		struct node *cur = roots[i];
		const struct sort_row *cr = root_row(cur);
		if (cur == NULL || cr == NULL || cr->subject == NULL ||
		    *cr->subject == '\0')
			continue;
		for (size_t k = 0; k < i; k++) {
			struct node *old = roots[k];
			const struct sort_row *orow =
				old ? root_row(old) : NULL;
			if (orow == NULL || orow->subject == NULL ||
			    strcasecmp(orow->subject, cr->subject) != 0)
				continue;
			if (old->row == NULL && cur->row == NULL) {
				/* Two dummies: cur's children join old. */
				while (cur->child != NULL)
					node_link(old, cur->child);
				node_unlink(cur);
			} else if (old->row == NULL) {
				node_link(old, cur);
			} else if (cur->row == NULL) {
				node_link(cur, old);
				roots[k] = cur;
			} else if (!old->row->reply && cur->row->reply) {
				node_link(old, cur);
			} else if (old->row->reply && !cur->row->reply) {
				node_link(cur, old);
				roots[k] = cur;
			} else {
				/* Neither (or both) replies: siblings under a
				 * new dummy, which takes old's place. */
				struct node *dummy = xcalloc(1, sizeof(*dummy));
				dummy->id = xstrdup("");
				dummy->merged = true;
				node_link(root, dummy);
				node_link(dummy, old);
				node_link(dummy, cur);
				roots[k] = dummy;
			}
			roots[i] = NULL;
			break;
		}
	}
	free(roots);
}

static void free_merged(struct node *n)
{
	for (struct node *c = n->child, *next; c; c = next) {
		next = c->next;
		free_merged(c);
	}
	if (n->merged) {
		free(n->id);
		free(n);
	}
}

void imap_cmd_thread(struct imap_session *s, struct store *store,
		     const struct imap_command *cmd, struct result *r)
{
	struct slice algorithm;
	if (cmd->arg_count < 1 ||
	    !imap_arg_astring(&cmd->args[0], &algorithm)) {
		imap_result(r, "BAD", "Syntax: THREAD algorithm charset keys");
		return;
	}
	bool references = slice_eq_ci(algorithm, "REFERENCES");
	if (!references && !slice_eq_ci(algorithm, "ORDEREDSUBJECT")) {
		imap_result(r, "BAD", "Unknown threading algorithm");
		return;
	}
	struct imap_search search;
	if (!parse_tail(s, cmd, &search, r))
		return;
	size_t count;
	bool failed;
	size_t *found = run_search(s, store, &search, &count, &failed);
	struct sort_row *rows = load_rows(s, store, &failed);
	/* Nodes: one per message plus dummies for referenced ids. */
	size_t cap = count * (THREAD_MAX_REFERENCES / 4 + 2) + 16, used = 0;
	struct node *nodes = xcalloc(cap, sizeof(*nodes));
	struct node root = {0};
	if (references) {
		size_t id_count = 0, id_cap = cap;
		struct node **ids = xcalloc(id_cap, sizeof(*ids));
		/* Steps 1A-1C of RFC 5256: link each message's References
		 * (or In-Reply-To) chain, the message under the last one. */
		for (size_t i = 0; i < count; i++) {
			struct sort_row *row = &rows[found[i]];
			const char *own = row->message_id && *row->message_id
						  ? row->message_id
						  : NULL;
			struct node *me =
				own ? find_id(ids, id_count, own) : NULL;
			if (me != NULL && me->row != NULL)
				me = NULL; /* a duplicate id: a new node */
			if (me == NULL) {
				/* Nodes are reserved for every message (see
				 * below), so this never runs out. */
				DIJK_ASSERT(used < cap);
				me = &nodes[used++];
				me->id = xstrdup(own ? own : "");
				if (own && id_count < id_cap)
					ids[id_count++] = me;
			}
			me->row = row;
			const char *chain = row->references && *row->references
						    ? row->references
						    : row->in_reply_to;
			struct node *prev = NULL;
			char *copy = xstrdup(chain ? chain : "");
			/* Only the nearest THREAD_MAX_REFERENCES ancestors
			 * count: a long chain cannot exhaust the nodes. */
			char *from = copy;
			size_t refs = 0;
			for (char *p = copy + strlen(copy); p > copy; p--)
				if (p[-1] == ' ' && p[0] != ' ' &&
				    ++refs >= THREAD_MAX_REFERENCES) {
					from = p;
					break;
				}
			for (char *tok = from, *end; *tok; tok = end) {
				while (*tok == ' ')
					tok++;
				end = tok;
				while (*end && *end != ' ')
					end++;
				if (end == tok)
					break;
				char saved = *end;
				*end = '\0';
				struct node *ref = find_id(ids, id_count, tok);
				/* Keep one node for each message still to come. */
				size_t reserve = count - i;
				if (ref == NULL && used + reserve < cap &&
				    id_count < id_cap) {
					ref = &nodes[used++];
					ref->id = xstrdup(tok);
					ids[id_count++] = ref;
				}
				*end = saved;
				if (ref == NULL)
					continue;
				if (prev != NULL && ref->parent == NULL &&
				    ref != prev)
					node_link(prev, ref);
				prev = ref;
			}
			free(copy);
			if (prev != NULL && prev != me)
				node_link(prev, me);
			else
				node_unlink(me);
		}
		/* Step 2: the roots. Step 3 (prune dummies): a dummy with
		 * no children goes; a dummy with children gives them its
		 * place, except at the top level, where it stays if it has
		 * several. */
		for (size_t i = 0; i < used; i++) {
			struct node *n = &nodes[i];
			if (n->parent != NULL)
				continue;
			prune_dummies(n);
			if (n->row == NULL && n->child == NULL)
				continue;
			if (n->row == NULL && n->child->next == NULL) {
				struct node *c = n->child;
				n->child = NULL;
				c->parent = NULL;
				c->next = NULL;
				node_link(&root, c);
				continue;
			}
			node_link(&root, n);
		}
		free(ids);
		merge_by_subject(&root);
	} else {
		/* ORDEREDSUBJECT: by base subject; the first (by date) is
		 * the parent of the others. */
		for (size_t i = 0; i < count && used < cap; i++) {
			struct node *me = &nodes[used++];
			me->row = &rows[found[i]];
			me->id = xstrdup("");
		}
		struct node **list = xcalloc(used + 1, sizeof(*list));
		for (size_t i = 0; i < used; i++)
			list[i] = &nodes[i];
		qsort(list, used, sizeof(*list), compare_nodes);
		for (size_t i = 0; i < used; i++) {
			struct node *parent = NULL;
			for (struct node *t = root.child; t; t = t->next)
				if (strcasecmp(t->row->subject,
					       list[i]->row->subject) == 0)
					parent = t;
			node_link(parent ? parent : &root, list[i]);
		}
		free(list);
	}
	sort_tree(&root);
	buf_append_cstr(&s->out, "* THREAD ");
	for (struct node *t = root.child; t; t = t->next) {
		buf_append(&s->out, "(", 1);
		print_node(s, t, cmd->uid);
		buf_append(&s->out, ")", 1);
	}
	buf_append_cstr(&s->out, "\r\n");
	for (struct node *t = root.child, *next; t; t = next) {
		next = t->next;
		free_merged(t);
	}
	for (size_t i = 0; i < used; i++)
		free(nodes[i].id);
	free(nodes);
	free(found);
	free_rows(rows, s->view->count);
	if (failed)
		imap_result(r, "NO", "[SERVERBUG] Thread keys unavailable");
	else
		imap_result(r, "OK", "%sTHREAD completed",
			    cmd->uid ? "UID " : "");
}
