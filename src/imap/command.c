/* command.c: IMAP commands that run on the pool: mailbox management,
 * SELECT and its friends, APPEND, STORE, COPY and MOVE, EXPUNGE, IDLE,
 * QUOTA, and the executor that ends each command with the updates the
 * session is due and its tagged reply. FETCH lives in fetch.c; SEARCH,
 * SORT and THREAD in search.c. */
#include "core/common.h"

#include "imap/internal.h"

#include "core/log.h"
#include "core/utf8.h"

#include <strings.h>

void imap_capabilities(const struct imap_session *s, struct buf *out);

void imap_send_vanished_earlier(struct imap_session *s, struct store *store,
				uint64_t since,
				const struct imap_seqset *known);

/* The result of a command, written after the updates. */
struct result {
	const char *status; /* "OK", "NO", "BAD" */
	char text[512];
	bool allow_expunge;
};

/* Provided by fetch.c and search.c. */
void imap_cmd_fetch(struct imap_session *s, struct store *store,
		    const struct imap_command *cmd, struct result *r);
void imap_cmd_search(struct imap_session *s, struct store *store,
		     const struct imap_command *cmd, struct result *r);
void imap_cmd_sort(struct imap_session *s, struct store *store,
		   const struct imap_command *cmd, struct result *r);
void imap_cmd_thread(struct imap_session *s, struct store *store,
		     const struct imap_command *cmd, struct result *r);

void imap_result(struct result *r, const char *status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void imap_result(struct result *r, const char *status, const char *fmt, ...)
{
	r->status = status;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->text, sizeof(r->text), fmt, ap);
	va_end(ap);
}

void imap_untagged(struct imap_session *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char line[4096];
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n > 0) {
		buf_append_cstr(&s->out, "* ");
		buf_append(&s->out, line,
			   (size_t)n < sizeof(line) ? (size_t)n
						    : sizeof(line) - 1);
		buf_append(&s->out, "\r\n", 2);
	}
}

void imap_append_mailbox(struct imap_session *s, struct buf *out,
			 const char *name)
{
	if (s->rev2 || s->utf8) {
		imap_append_string(out, slice_cstr(name), true);
		return;
	}
	struct buf enc;
	buf_init(&enc, 4 * STORE_MAX_MAILBOX_NAME);
	imap_mutf7_encode(slice_cstr(name), &enc);
	imap_append_string(out, buf_slice(&enc), false);
	buf_free(&enc);
}

bool imap_mailbox_arg(struct imap_session *s, const struct imap_arg *arg,
		      char *out, size_t size)
{
	struct slice name;
	if (!imap_arg_astring(arg, &name) || name.n == 0)
		return false;
	struct buf dec;
	buf_init(&dec, size - 1);
	bool ok;
	if (s->rev2 || s->utf8)
		ok = utf8_valid(name) && buf_append_slice(&dec, name);
	else
		ok = imap_mutf7_decode(name, &dec);
	if (ok && !buf_overflowed(&dec) && memchr(dec.p, '\0', dec.n) == NULL) {
		memcpy(out, dec.p, dec.n);
		out[dec.n] = '\0';
	} else {
		ok = false;
	}
	buf_free(&dec);
	if (ok && strcasecmp(out, "INBOX") == 0)
		snprintf(out, size, "INBOX");
	return ok;
}

static const char *mailbox_error(int code)
{
	switch (code) {
	case STORE_MAILBOX_EXISTS:
		return "[ALREADYEXISTS] Mailbox exists already";
	case STORE_MAILBOX_NONEXISTENT:
		return "[NONEXISTENT] No such mailbox";
	case STORE_MAILBOX_HAS_CHILDREN:
		return "[INUSE] Mailbox has children; delete them first";
	case STORE_MAILBOX_BAD_NAME:
		return "[CANNOT] Invalid mailbox name";
	case STORE_MAILBOX_INBOX:
		return "[CANNOT] INBOX cannot be deleted";
	default:
		return "[SERVERBUG] Internal error";
	}
}

/* ---- SELECT / EXAMINE ---- */

static void send_flags_lists(struct imap_session *s, bool readonly)
{
	imap_untagged(s,
		      "FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)");
	if (readonly)
		imap_untagged(s, "OK [PERMANENTFLAGS ()] Read-only mailbox");
	else
		imap_untagged(
			s, "OK [PERMANENTFLAGS (\\Answered \\Flagged"
			   " \\Deleted \\Seen \\Draft \\*)] Flags permitted");
}

struct vanished_collect {
	struct buf *out;
	const struct imap_seqset *known;
	bool first;
	uint32_t run_lo, run_hi;
	bool in_run;
};

static void vanished_flush(struct vanished_collect *c)
{
	if (!c->in_run)
		return;
	buf_printf(c->out, "%s%u", c->first ? "" : ",", c->run_lo);
	if (c->run_hi > c->run_lo)
		buf_printf(c->out, ":%u", c->run_hi);
	c->first = false;
	c->in_run = false;
}

static void vanished_one(uint32_t uid, void *context)
{
	struct vanished_collect *c = context;
	if (c->known != NULL && !imap_seqset_contains(c->known, uid))
		return;
	if (c->in_run && uid == c->run_hi + 1) {
		c->run_hi = uid;
		return;
	}
	vanished_flush(c);
	c->run_lo = c->run_hi = uid;
	c->in_run = true;
}

void imap_send_vanished_earlier(struct imap_session *s, struct store *store,
				uint64_t since, const struct imap_seqset *known)
{
	struct buf list;
	buf_init(&list, SIZE_MAX);
	struct vanished_collect c = {
		.out = &list, .known = known, .first = true};
	const char *error;
	if (store_expunged(store, s->account_id, s->view->mailbox.id, since,
			   vanished_one, &c, &error) != 0)
		log_error("VANISHED: %s", error);
	vanished_flush(&c);
	if (list.n > 0) {
		buf_append_cstr(&s->out, "* VANISHED (EARLIER) ");
		buf_append(&s->out, list.p, list.n);
		buf_append_cstr(&s->out, "\r\n");
	}
	buf_free(&list);
}

static void cmd_select(struct imap_session *s, struct store *store,
		       const struct imap_command *cmd, struct result *r,
		       bool readonly)
{
	char name[STORE_MAX_MAILBOX_NAME + 1];
	/* Selecting closes the current mailbox first, without expunging. */
	if (s->view != NULL) {
		imap_view_free(&s->view);
		s->state = IMAP_STATE_AUTHENTICATED;
		if (s->condstore || s->qresync || s->rev2)
			imap_untagged(s, "OK [CLOSED] Previous mailbox closed");
	}
	if (cmd->arg_count < 1 || cmd->arg_count > 2 ||
	    !imap_mailbox_arg(s, &cmd->args[0], name, sizeof(name))) {
		imap_result(r, "BAD", "Syntax: SELECT mailbox [(parameters)]");
		return;
	}
	bool want_condstore = false, want_qresync = false;
	uint64_t q_uidvalidity = 0, q_modseq = 0;
	struct imap_seqset known = {0};
	bool have_known = false;
	if (cmd->arg_count == 2) {
		const struct imap_arg *p = &cmd->args[1];
		if (p->type != IMAP_ARG_LIST) {
			imap_result(r, "BAD", "Parameters must be a list");
			return;
		}
		for (size_t i = 0; i < p->count; i++) {
			struct slice key = p->list[i].text;
			if (p->list[i].type == IMAP_ARG_ATOM &&
			    slice_eq_ci(key, "CONDSTORE")) {
				want_condstore = true;
			} else if (p->list[i].type == IMAP_ARG_ATOM &&
				   slice_eq_ci(key, "QRESYNC") &&
				   i + 1 < p->count &&
				   p->list[i + 1].type == IMAP_ARG_LIST) {
				if (!s->qresync) {
					imap_result(r, "BAD",
						    "QRESYNC is not enabled");
					return;
				}
				const struct imap_arg *q = &p->list[++i];
				if (q->count < 2 ||
				    !imap_arg_number(&q->list[0], UINT32_MAX,
						     &q_uidvalidity) ||
				    !imap_arg_number(&q->list[1], INT64_MAX,
						     &q_modseq)) {
					imap_result(r, "BAD",
						    "Bad QRESYNC parameters");
					return;
				}
				if (q->count >= 3 &&
				    (q->list[2].type != IMAP_ARG_ATOM ||
				     imap_parse_seqset(q->list[2].text,
						       UINT32_MAX, s->arena,
						       &known) != 0)) {
					imap_result(r, "BAD", "Bad known UIDs");
					return;
				}
				have_known = q->count >= 3;
				want_qresync = true;
			} else {
				imap_result(r, "BAD",
					    "Unknown SELECT parameter");
				return;
			}
		}
	}
	if (want_condstore)
		s->condstore = true;
	const char *error;
	struct store_mailbox mb;
	int found = store_mailbox_get(store, s->account_id, name, &mb, &error);
	if (found < 0) {
		log_error("SELECT: %s", error);
		imap_result(r, "NO", "[SERVERBUG] Internal error");
		return;
	}
	if (found == 0) {
		imap_result(r, "NO", "[NONEXISTENT] No such mailbox");
		return;
	}
	s->view = imap_view_open(store, s->account_id, &mb, readonly, &error);
	if (s->view == NULL) {
		log_error("SELECT: %s", error);
		imap_result(r, "NO", "[SERVERBUG] Internal error");
		return;
	}
	s->state = IMAP_STATE_SELECTED;
	imap_audit_note(s, readonly ? "examine" : "select", false, "%s",
			mb.name);
	struct view *v = s->view;
	send_flags_lists(s, readonly);
	imap_untagged(s, "%zu EXISTS", v->count);
	if (!s->rev2)
		imap_untagged(s, "%zu RECENT", imap_view_recent_count(v));
	if (!s->rev2) {
		for (size_t i = 0; i < v->count; i++) {
			if (!(v->messages[i].flags & STORE_FLAG_SEEN)) {
				imap_untagged(s, "OK [UNSEEN %zu] First unseen",
					      i + 1);
				break;
			}
		}
	}
	imap_untagged(s, "OK [UIDVALIDITY %u] UIDs valid", mb.uidvalidity);
	imap_untagged(s, "OK [UIDNEXT %u] Predicted next UID", mb.uidnext);
	imap_untagged(s, "OK [HIGHESTMODSEQ %llu] Highest",
		      (unsigned long long)mb.highestmodseq);
	buf_append_cstr(&s->out, "* LIST () \"/\" ");
	imap_append_mailbox(s, &s->out, mb.name);
	buf_append_cstr(&s->out, "\r\n");
	if (want_qresync && q_uidvalidity == mb.uidvalidity) {
		imap_send_vanished_earlier(s, store, q_modseq,
					   have_known ? &known : NULL);
		for (size_t i = 0; i < v->count; i++)
			if (v->messages[i].modseq > q_modseq)
				imap_send_flags(s, i + 1, &v->messages[i],
						true);
	}
	imap_result(r, "OK", "[READ-%s] %s completed",
		    readonly ? "ONLY" : "WRITE",
		    readonly ? "EXAMINE" : "SELECT");
}

/* ---- Mailbox management ---- */

static void cmd_create(struct imap_session *s, struct store *store,
		       const struct imap_command *cmd, struct result *r)
{
	char name[STORE_MAX_MAILBOX_NAME + 1];
	if (cmd->arg_count < 1 ||
	    !imap_mailbox_arg(s, &cmd->args[0], name, sizeof(name))) {
		imap_result(r, "BAD", "Syntax: CREATE mailbox");
		return;
	}
	/* A trailing separator says "will have children": ignored. */
	size_t n = strlen(name);
	if (n > 1 && name[n - 1] == '/')
		name[n - 1] = '\0';
	if (strcasecmp(name, "INBOX") == 0) {
		imap_result(r, "NO", "[ALREADYEXISTS] INBOX exists already");
		return;
	}
	const char *error;
	int rc = store_mailbox_create(store, s->account_id, name, &error);
	if (rc == STORE_MAILBOX_FAILED)
		log_error("CREATE: %s", error);
	if (rc == STORE_MAILBOX_OK)
		imap_result(r, "OK", "CREATE completed");
	else
		imap_result(r, "NO", "%s", mailbox_error(rc));
}

static void cmd_delete(struct imap_session *s, struct store *store,
		       const struct imap_command *cmd, struct result *r)
{
	char name[STORE_MAX_MAILBOX_NAME + 1];
	if (cmd->arg_count != 1 ||
	    !imap_mailbox_arg(s, &cmd->args[0], name, sizeof(name))) {
		imap_result(r, "BAD", "Syntax: DELETE mailbox");
		return;
	}
	const char *error;
	int rc = store_mailbox_delete(store, s->account_id, name, &error);
	if (rc == STORE_MAILBOX_FAILED)
		log_error("DELETE: %s", error);
	if (rc == STORE_MAILBOX_OK) {
		/* Its messages go with it. */
		imap_audit_note(s, "delete mailbox", false, "%s", name);
		imap_result(r, "OK", "DELETE completed");
	} else
		imap_result(r, "NO", "%s", mailbox_error(rc));
}

static void cmd_rename(struct imap_session *s, struct store *store,
		       const struct imap_command *cmd, struct result *r)
{
	char from[STORE_MAX_MAILBOX_NAME + 1], to[STORE_MAX_MAILBOX_NAME + 1];
	if (cmd->arg_count != 2 ||
	    !imap_mailbox_arg(s, &cmd->args[0], from, sizeof(from)) ||
	    !imap_mailbox_arg(s, &cmd->args[1], to, sizeof(to))) {
		imap_result(r, "BAD", "Syntax: RENAME from to");
		return;
	}
	const char *error;
	int rc = store_mailbox_rename(store, s->account_id, from, to, &error);
	if (rc == STORE_MAILBOX_FAILED)
		log_error("RENAME: %s", error);
	if (rc == STORE_MAILBOX_OK) {
		imap_audit_note(s, "rename mailbox", false, "%s to %s", from,
				to);
		imap_result(r, "OK", "RENAME completed");
	} else
		imap_result(r, "NO", "%s", mailbox_error(rc));
}

static void cmd_subscribe(struct imap_session *s, struct store *store,
			  const struct imap_command *cmd, struct result *r,
			  bool subscribe)
{
	char name[STORE_MAX_MAILBOX_NAME + 1];
	if (cmd->arg_count != 1 ||
	    !imap_mailbox_arg(s, &cmd->args[0], name, sizeof(name))) {
		imap_result(r, "BAD", "Syntax: %s mailbox",
			    subscribe ? "SUBSCRIBE" : "UNSUBSCRIBE");
		return;
	}
	const char *error;
	struct store_mailbox mb;
	if (subscribe &&
	    store_mailbox_get(store, s->account_id, name, &mb, &error) == 0) {
		imap_result(r, "NO", "[NONEXISTENT] No such mailbox");
		return;
	}
	int rc = store_mailbox_subscribe(store, s->account_id, name, subscribe,
					 &error);
	if (rc == STORE_MAILBOX_OK)
		imap_result(r, "OK", "%s completed",
			    subscribe ? "SUBSCRIBE" : "UNSUBSCRIBE");
	else
		imap_result(r, "NO", "%s", mailbox_error(rc));
}

/* ---- LIST ---- */

/* Matches an IMAP LIST pattern: '*' any characters, '%' any but '/'. */
static bool pattern_match(const char *pattern, const char *name)
{
	for (;;) {
		if (*pattern == '\0')
			return *name == '\0';
		if (*pattern == '*' || *pattern == '%') {
			bool any = *pattern == '*';
			pattern++;
			for (const char *n = name;; n++) {
				if (pattern_match(pattern, n))
					return true;
				if (*n == '\0' || (!any && *n == '/'))
					return false;
			}
		}
		if (*name == '\0' || *pattern != *name)
			return false;
		pattern++;
		name++;
	}
}

static bool list_match(const char *pattern, const char *name)
{
	/* INBOX matches case-insensitively. */
	if (strcasecmp(name, "INBOX") == 0 &&
	    strncasecmp(pattern, "INBOX", 5) == 0) {
		char p[STORE_MAX_MAILBOX_NAME * 2 + 8];
		snprintf(p, sizeof(p), "INBOX%s", pattern + 5);
		return pattern_match(p, name);
	}
	return pattern_match(pattern, name);
}

struct list_entry {
	char *name;
	char special_use[16];
	bool exists;
	bool subscribed;
	bool has_children;
	bool child_subscribed;
	bool lsub_parent; /* LSUB: a parent of a subscribed name, itself not */
};

struct list_state {
	struct list_entry *entries;
	size_t count, cap;
};

static struct list_entry *list_add(struct list_state *l, const char *name)
{
	for (size_t i = 0; i < l->count; i++)
		if (strcmp(l->entries[i].name, name) == 0)
			return &l->entries[i];
	if (l->count == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 32;
		l->entries = xrealloc(l->entries, l->cap * sizeof(*l->entries));
	}
	struct list_entry *e = &l->entries[l->count++];
	memset(e, 0, sizeof(*e));
	e->name = xstrdup(name);
	return e;
}

static void list_mailbox(const struct store_mailbox *m, void *context)
{
	struct list_entry *e = list_add(context, m->name);
	e->exists = true;
	snprintf(e->special_use, sizeof(e->special_use), "%s", m->special_use);
}

static void list_subscription(const char *name, void *context)
{
	list_add(context, name)->subscribed = true;
}

static void status_items(struct imap_session *s, struct store *store,
			 const char *name, const struct imap_arg *items,
			 struct result *r, bool *ok_r);

static void cmd_list(struct imap_session *s, struct store *store,
		     const struct imap_command *cmd, struct result *r,
		     bool lsub)
{
	size_t i = 0;
	bool sel_subscribed = false, sel_special = false, recursive = false;
	bool ret_subscribed = false, ret_children = false, ret_special = false;
	const struct imap_arg *ret_status = NULL;
	bool extended = false;
	if (!lsub && i < cmd->arg_count && cmd->args[i].type == IMAP_ARG_LIST) {
		extended = true;
		const struct imap_arg *sel = &cmd->args[i++];
		for (size_t k = 0; k < sel->count; k++) {
			struct slice o = sel->list[k].text;
			if (slice_eq_ci(o, "SUBSCRIBED"))
				sel_subscribed = true;
			else if (slice_eq_ci(o, "SPECIAL-USE"))
				sel_special = true;
			else if (slice_eq_ci(o, "RECURSIVEMATCH"))
				recursive = true;
			else if (!slice_eq_ci(o, "REMOTE")) {
				imap_result(r, "BAD",
					    "Unknown selection option");
				return;
			}
		}
		if (recursive && !sel_subscribed) {
			imap_result(r, "BAD",
				    "RECURSIVEMATCH needs another option");
			return;
		}
	}
	struct slice reference;
	if (cmd->arg_count < i + 2 ||
	    !imap_arg_astring(&cmd->args[i], &reference)) {
		imap_result(r, "BAD", "Syntax: LIST reference pattern");
		return;
	}
	i++;
	/* One pattern or a list of them. */
	const struct imap_arg *patterns = &cmd->args[i];
	size_t pattern_count = 1;
	if (patterns->type == IMAP_ARG_LIST) {
		extended = true;
		pattern_count = patterns->count;
		patterns = patterns->list;
	}
	i++;
	if (i < cmd->arg_count) {
		if (lsub || i + 2 != cmd->arg_count ||
		    !slice_eq_ci(cmd->args[i].text, "RETURN") ||
		    cmd->args[i + 1].type != IMAP_ARG_LIST) {
			imap_result(r, "BAD",
				    "Syntax: LIST ... RETURN (options)");
			return;
		}
		const struct imap_arg *ret = &cmd->args[i + 1];
		for (size_t k = 0; k < ret->count; k++) {
			struct slice o = ret->list[k].text;
			if (slice_eq_ci(o, "SUBSCRIBED")) {
				ret_subscribed = true;
			} else if (slice_eq_ci(o, "CHILDREN")) {
				ret_children = true;
			} else if (slice_eq_ci(o, "SPECIAL-USE")) {
				ret_special = true;
			} else if (slice_eq_ci(o, "STATUS") &&
				   k + 1 < ret->count &&
				   ret->list[k + 1].type == IMAP_ARG_LIST) {
				ret_status = &ret->list[++k];
			} else {
				imap_result(r, "BAD", "Unknown return option");
				return;
			}
		}
		extended = true;
	}
	(void)extended;
	const char *error;
	struct list_state l = {0};
	if (store_mailbox_each(store, s->account_id, list_mailbox, &l,
			       &error) != 0 ||
	    store_subscription_each(store, s->account_id, list_subscription, &l,
				    &error) != 0) {
		log_error("LIST: %s", error);
		imap_result(r, "NO", "[SERVERBUG] Internal error");
		goto out;
	}
	/* Children: a name with an existing (or subscribed) inferior. */
	for (size_t a = 0; a < l.count; a++) {
		size_t an = strlen(l.entries[a].name);
		for (size_t b = 0; b < l.count; b++) {
			const char *bn = l.entries[b].name;
			if (strncmp(bn, l.entries[a].name, an) == 0 &&
			    bn[an] == '/') {
				if (l.entries[b].exists)
					l.entries[a].has_children = true;
				if (l.entries[b].subscribed)
					l.entries[a].child_subscribed = true;
			}
		}
	}
	for (size_t p = 0; p < pattern_count; p++) {
		/* list-mailbox: an atom that may hold '*' and '%', or a
		 * string. */
		struct slice pat = patterns[p].text;
		if (patterns[p].type == IMAP_ARG_LIST ||
		    patterns[p].type == IMAP_ARG_NIL)
			continue;
		struct buf dec;
		buf_init(&dec, 2 * STORE_MAX_MAILBOX_NAME);
		buf_append_slice(&dec, reference);
		struct buf pdec;
		buf_init(&pdec, 2 * STORE_MAX_MAILBOX_NAME);
		if (s->rev2 || s->utf8)
			buf_append_slice(&pdec, pat);
		else if (!imap_mutf7_decode(pat, &pdec))
			buf_append_slice(&pdec, pat);
		buf_append(&dec, pdec.p, pdec.n);
		buf_free(&pdec);
		const char *pattern = buf_cstr(&dec);
		if (*pattern == '\0' && !lsub) {
			/* LIST "" "": the hierarchy delimiter. */
			buf_append_cstr(&s->out,
					"* LIST (\\Noselect) \"/\" \"\"\r\n");
			buf_free(&dec);
			continue;
		}
		if (lsub && strchr(pattern, '%') != NULL) {
			/* RFC 3501 6.3.9: with "%", the parent of a subscribed
			 * name that matches shows as \Noselect. */
			size_t known = l.count;
			for (size_t e = 0; e < known; e++) {
				if (!l.entries[e].subscribed)
					continue;
				char parent[STORE_MAX_MAILBOX_NAME + 1];
				snprintf(parent, sizeof(parent), "%s",
					 l.entries[e].name);
				for (char *slash = strrchr(parent, '/'); slash;
				     slash = strrchr(parent, '/')) {
					*slash = '\0';
					if (list_match(pattern, parent)) {
						struct list_entry *pe =
							list_add(&l, parent);
						if (!pe->subscribed)
							pe->lsub_parent = true;
					}
				}
			}
		}
		for (size_t e = 0; e < l.count; e++) {
			struct list_entry *le = &l.entries[e];
			bool matches = list_match(pattern, le->name);
			if (!matches)
				continue;
			bool show;
			if (lsub || sel_subscribed)
				show = le->subscribed ||
				       (lsub && le->lsub_parent) ||
				       (recursive && le->child_subscribed);
			else
				show = le->exists;
			if (sel_special && le->special_use[0] == '\0')
				show = false;
			if (!show)
				continue;
			buf_append_cstr(&s->out,
					lsub ? "* LSUB (" : "* LIST (");
			bool first = true;
#define ATTR(text)                                                   \
	do {                                                         \
		buf_printf(&s->out, "%s%s", first ? "" : " ", text); \
		first = false;                                       \
	} while (0)
			if (lsub && le->lsub_parent)
				ATTR("\\Noselect");
			else if (!le->exists)
				ATTR(lsub ? "\\Noselect" : "\\NonExistent");
			if (!lsub || ret_children) {
				if (le->exists)
					ATTR(le->has_children
						     ? "\\HasChildren"
						     : "\\HasNoChildren");
			}
			if ((sel_subscribed || ret_subscribed) &&
			    le->subscribed && !lsub)
				ATTR("\\Subscribed");
			if (le->special_use[0] && (!lsub || ret_special))
				ATTR(le->special_use);
#undef ATTR
			buf_append_cstr(&s->out, ") \"/\" ");
			imap_append_mailbox(s, &s->out, le->name);
			if (recursive && !le->subscribed &&
			    le->child_subscribed)
				buf_append_cstr(
					&s->out,
					" (\"CHILDINFO\" (\"SUBSCRIBED\"))");
			buf_append_cstr(&s->out, "\r\n");
			if (ret_status != NULL && le->exists) {
				bool ok;
				struct result ignored;
				status_items(s, store, le->name, ret_status,
					     &ignored, &ok);
			}
		}
		buf_free(&dec);
	}
	imap_result(r, "OK", "%s completed", lsub ? "LSUB" : "LIST");
out:
	for (size_t e = 0; e < l.count; e++)
		free(l.entries[e].name);
	free(l.entries);
}

/* ---- STATUS ---- */

static void status_items(struct imap_session *s, struct store *store,
			 const char *name, const struct imap_arg *items,
			 struct result *r, bool *ok_r)
{
	*ok_r = false;
	const char *error;
	struct store_mailbox mb;
	int found =
		store_mailbox_status(store, s->account_id, name, &mb, &error);
	if (found <= 0) {
		if (found < 0)
			log_error("STATUS: %s", error);
		imap_result(r, "NO", "%s",
			    found == 0 ? "[NONEXISTENT] No such mailbox"
				       : "[SERVERBUG] Internal error");
		return;
	}
	/* Recent: the messages no session has claimed, and those this
	 * session has when the mailbox is the one it has selected. */
	size_t own_recent = 0;
	if (s->view != NULL && s->view->mailbox.id == mb.id)
		own_recent = imap_view_recent_count(s->view);
	struct buf line;
	buf_init(&line, 64 * 1024);
	buf_append_cstr(&line, "* STATUS ");
	imap_append_mailbox(s, &line, mb.name);
	buf_append_cstr(&line, " (");
	for (size_t i = 0; i < items->count; i++) {
		struct slice k = items->list[i].text;
		if (i > 0)
			buf_append(&line, " ", 1);
		if (slice_eq_ci(k, "MESSAGES"))
			buf_printf(&line, "MESSAGES %llu",
				   (unsigned long long)mb.messages);
		else if (slice_eq_ci(k, "RECENT"))
			buf_printf(
				&line, "RECENT %llu",
				(unsigned long long)(mb.recent + own_recent));
		else if (slice_eq_ci(k, "UIDNEXT"))
			buf_printf(&line, "UIDNEXT %u", mb.uidnext);
		else if (slice_eq_ci(k, "UIDVALIDITY"))
			buf_printf(&line, "UIDVALIDITY %u", mb.uidvalidity);
		else if (slice_eq_ci(k, "UNSEEN"))
			buf_printf(&line, "UNSEEN %llu",
				   (unsigned long long)mb.unseen);
		else if (slice_eq_ci(k, "DELETED"))
			buf_printf(&line, "DELETED %llu",
				   (unsigned long long)mb.deleted);
		else if (slice_eq_ci(k, "SIZE"))
			buf_printf(&line, "SIZE %llu",
				   (unsigned long long)mb.size);
		else if (slice_eq_ci(k, "HIGHESTMODSEQ"))
			buf_printf(&line, "HIGHESTMODSEQ %llu",
				   (unsigned long long)mb.highestmodseq);
		else if (slice_eq_ci(k, "DELETED-STORAGE"))
			/* RFC 9208 5.1: KiB an EXPUNGE would free. */
			buf_printf(
				&line, "DELETED-STORAGE %llu",
				(unsigned long long)((mb.deleted_size + 1023) /
						     1024));
		else if (slice_eq_ci(k, "APPENDLIMIT"))
			buf_printf(&line, "APPENDLIMIT %u", IMAP_APPEND_LIMIT);
		else {
			imap_result(r, "BAD", "Unknown STATUS item");
			buf_free(&line);
			return;
		}
	}
	buf_append_cstr(&line, ")\r\n");
	buf_append(&s->out, line.p, line.n);
	buf_free(&line);
	*ok_r = true;
}

static void cmd_status(struct imap_session *s, struct store *store,
		       const struct imap_command *cmd, struct result *r)
{
	char name[STORE_MAX_MAILBOX_NAME + 1];
	if (cmd->arg_count != 2 || cmd->args[1].type != IMAP_ARG_LIST ||
	    !imap_mailbox_arg(s, &cmd->args[0], name, sizeof(name))) {
		imap_result(r, "BAD", "Syntax: STATUS mailbox (items)");
		return;
	}
	bool ok;
	status_items(s, store, name, &cmd->args[1], r, &ok);
	if (ok)
		imap_result(r, "OK", "STATUS completed");
}

/* ---- APPEND ---- */

static void cmd_append(struct imap_session *s, struct store *store,
		       const struct imap_command *cmd, struct result *r)
{
	char name[STORE_MAX_MAILBOX_NAME + 1];
	size_t i = 1;
	if (cmd->arg_count < 2 ||
	    !imap_mailbox_arg(s, &cmd->args[0], name, sizeof(name))) {
		imap_result(r, "BAD",
			    "Syntax: APPEND mailbox [flags] [date] message");
		return;
	}
	struct imap_flags flags = {0};
	const char *error = NULL;
	if (i < cmd->arg_count && cmd->args[i].type == IMAP_ARG_LIST) {
		if (imap_parse_flags(&cmd->args[i], s->arena, &flags, &error) !=
		    0) {
			imap_result(r, "BAD", "%s",
				    error ? error : "Bad flags");
			return;
		}
		i++;
	}
	time_t when = time(NULL);
	if (i < cmd->arg_count && cmd->args[i].type == IMAP_ARG_STRING) {
		if (!imap_parse_date_time(cmd->args[i].text, &when)) {
			imap_result(r, "BAD", "Bad date-time");
			return;
		}
		i++;
	}
	if (i + 1 != cmd->arg_count || cmd->args[i].type != IMAP_ARG_LITERAL) {
		imap_result(r, "BAD", "The message must be a literal");
		return;
	}
	struct slice message = cmd->args[i].text;
	if (!cmd->args[i].literal8 && memchr(message.p, '\0', message.n)) {
		imap_result(r, "NO", "NUL in a literal: use literal8 (~{n})");
		return;
	}
	struct store_mailbox mb;
	int found = store_mailbox_get(store, s->account_id, name, &mb, &error);
	if (found <= 0) {
		imap_result(r, "NO", "%s",
			    found == 0 ? "[TRYCREATE] No such mailbox"
				       : "[SERVERBUG] Internal error");
		return;
	}
	struct buf keywords;
	buf_init(&keywords, 64 * 1024);
	for (size_t k = 0; k < flags.keyword_count; k++) {
		if (k > 0)
			buf_append(&keywords, " ", 1);
		buf_append_slice(&keywords, flags.keywords[k]);
	}
	uint32_t uid = 0;
	uint64_t account = s->account_id;
	struct store_delivery d = {
		.data = message.p,
		.size = message.n,
		.internal_date = when,
		.mailbox = mb.name,
		.flags = flags.system_flags,
		.keywords = buf_cstr(&keywords),
		.accounts = &account,
		.account_count = 1,
		.sender = "",
		.uids = &uid,
	};
	struct store_delivery *batch[1] = {&d};
	store_deliver_batch(store, batch, 1);
	buf_free(&keywords);
	if (d.result != 0) {
		log_error("APPEND: %s", d.error);
		imap_result(r, "NO", "[SERVERBUG] Cannot store the message");
		return;
	}
	imap_result(r, "OK", "[APPENDUID %u %u] APPEND completed",
		    d.uidvalidity, uid);
}

/* ---- Selected state ---- */

/* The UIDs of a sequence set (or UID set) that are in the view, in
 * order. *count_r is their number; the array is in the arena. */
uint32_t *imap_set_uids(struct imap_session *s, const struct imap_arg *arg,
			bool uid, size_t *count_r, const char **error_r);

uint32_t *imap_set_uids(struct imap_session *s, const struct imap_arg *arg,
			bool uid, size_t *count_r, const char **error_r)
{
	struct view *v = s->view;
	struct imap_seqset set;
	*count_r = 0;
	if (arg->type != IMAP_ARG_ATOM) {
		*error_r = "Bad sequence set";
		return NULL;
	}
	uint32_t star = uid ? (v->count ? v->messages[v->count - 1].uid : 0)
			    : (uint32_t)v->count;
	if (imap_parse_seqset(arg->text, star, s->arena, &set) != 0) {
		*error_r = "Bad sequence set";
		return NULL;
	}
	uint32_t *out =
		arena_alloc(s->arena, (v->count + 1) * sizeof(uint32_t));
	if (out == NULL) {
		*error_r = "Too much";
		return NULL;
	}
	if (set.saved) {
		for (size_t i = 0; i < v->saved_count; i++) {
			long k = imap_view_find(v, v->saved[i]);
			if (k >= 0)
				out[(*count_r)++] = v->saved[i];
		}
		return out;
	}
	for (size_t i = 0; i < v->count; i++) {
		uint32_t key = uid ? v->messages[i].uid : (uint32_t)(i + 1);
		if (imap_seqset_contains(&set, key))
			out[(*count_r)++] = v->messages[i].uid;
	}
	/* A sequence number past the end is an error; a UID is not. */
	if (!uid) {
		for (size_t i = 0; i < set.count; i++) {
			if (set.ranges[i].hi > v->count) {
				*error_r = "Invalid message sequence number";
				return NULL;
			}
		}
	}
	return out;
}

struct store_ctx {
	struct imap_session *s;
	bool silent;
	bool uid;
	struct buf modified;
};

static void stored(const struct store_message *m, void *context)
{
	struct store_ctx *c = context;
	struct view *v = c->s->view;
	long i = imap_view_find(v, m->uid);
	if (i < 0)
		return;
	struct view_message *vm = &v->messages[i];
	vm->flags = m->flags;
	imap_view_set_keywords(vm, m->keywords);
	vm->modseq = m->modseq;
	/* .SILENT still reports MODSEQ with CONDSTORE (RFC 7162 3.1.3). */
	if (!c->silent || c->s->condstore) {
		imap_send_flags(c->s, (size_t)i + 1, vm,
				c->uid || c->s->condstore);
		vm->unreported = false;
	}
}

static void store_failed(uint32_t uid, void *context)
{
	struct store_ctx *c = context;
	uint32_t key = uid;
	if (!c->uid) {
		long i = imap_view_find(c->s->view, uid);
		key = (uint32_t)(i + 1);
	}
	buf_printf(&c->modified, "%s%u", c->modified.n ? "," : "", key);
}

static void cmd_store(struct imap_session *s, struct store *store,
		      const struct imap_command *cmd, struct result *r)
{
	const char *error = "Syntax: STORE set [(UNCHANGEDSINCE n)] item value";
	if (s->view->readonly) {
		imap_result(r, "NO", "[READ-ONLY] Mailbox is read-only");
		return;
	}
	size_t i = 1;
	uint64_t unchangedsince = STORE_NO_UNCHANGEDSINCE;
	if (cmd->arg_count < 3) {
		imap_result(r, "BAD", "%s", error);
		return;
	}
	if (cmd->args[1].type == IMAP_ARG_LIST) {
		const struct imap_arg *m = &cmd->args[1];
		if (m->count != 2 ||
		    !slice_eq_ci(m->list[0].text, "UNCHANGEDSINCE") ||
		    !imap_arg_number(&m->list[1], INT64_MAX, &unchangedsince)) {
			imap_result(r, "BAD", "Bad STORE modifier");
			return;
		}
		s->condstore = true;
		i++;
	}
	if (i + 2 != cmd->arg_count) {
		imap_result(r, "BAD", "%s", error);
		return;
	}
	struct slice item = cmd->args[i].text;
	enum store_flags_op op;
	if (slice_prefix_ci(item, "+FLAGS"))
		op = STORE_FLAGS_ADD;
	else if (slice_prefix_ci(item, "-FLAGS"))
		op = STORE_FLAGS_REMOVE;
	else if (slice_prefix_ci(item, "FLAGS"))
		op = STORE_FLAGS_SET;
	else {
		imap_result(r, "BAD", "Unknown STORE item");
		return;
	}
	size_t base = op == STORE_FLAGS_SET ? 5 : 6;
	bool silent = item.n == base + 7 &&
		      slice_eq_ci(slice_make(item.p + base, 7), ".SILENT");
	if (item.n != base && !silent) {
		imap_result(r, "BAD", "Unknown STORE item");
		return;
	}
	struct imap_flags flags;
	if (imap_parse_flags(&cmd->args[i + 1], s->arena, &flags, &error) !=
	    0) {
		imap_result(r, "BAD", "%s", error ? error : "Bad flags");
		return;
	}
	size_t count;
	uint32_t *uids =
		imap_set_uids(s, &cmd->args[0], cmd->uid, &count, &error);
	if (uids == NULL) {
		imap_result(r, "BAD", "%s", error);
		return;
	}
	struct buf keywords;
	buf_init(&keywords, 64 * 1024);
	for (size_t k = 0; k < flags.keyword_count; k++) {
		if (k > 0)
			buf_append(&keywords, " ", 1);
		buf_append_slice(&keywords, flags.keywords[k]);
	}
	struct store_ctx c = {.s = s, .silent = silent, .uid = cmd->uid};
	buf_init(&c.modified, SIZE_MAX);
	int rc = store_flags_update(store, s->account_id, s->view->mailbox.id,
				    uids, count, op, flags.system_flags,
				    buf_cstr(&keywords), unchangedsince, stored,
				    store_failed, &c, &error);
	buf_free(&keywords);
	if (rc != 0) {
		log_error("STORE: %s", error);
		imap_result(r, "NO", "[SERVERBUG] Internal error");
	} else if (c.modified.n > 0) {
		imap_result(r, "OK", "[MODIFIED %s] Conditional STORE failed",
			    buf_cstr(&c.modified));
	} else {
		imap_result(r, "OK", "STORE completed");
	}
	buf_free(&c.modified);
}

/* Writes a UID list compactly ("1:3,7"). */
static void append_uid_set(struct buf *out, const uint32_t *uids, size_t count)
{
	for (size_t i = 0; i < count;) {
		size_t j = i;
		while (j + 1 < count && uids[j + 1] == uids[j] + 1)
			j++;
		buf_printf(out, "%s%u", i ? "," : "", uids[i]);
		if (j > i)
			buf_printf(out, ":%u", uids[j]);
		i = j + 1;
	}
}

static void cmd_copy(struct imap_session *s, struct store *store,
		     const struct imap_command *cmd, struct result *r,
		     bool move)
{
	char name[STORE_MAX_MAILBOX_NAME + 1];
	const char *error;
	if (cmd->arg_count != 2 ||
	    !imap_mailbox_arg(s, &cmd->args[1], name, sizeof(name))) {
		imap_result(r, "BAD", "Syntax: %s set mailbox",
			    move ? "MOVE" : "COPY");
		return;
	}
	if (move && s->view->readonly) {
		imap_result(r, "NO", "[READ-ONLY] Mailbox is read-only");
		return;
	}
	size_t count;
	uint32_t *uids =
		imap_set_uids(s, &cmd->args[0], cmd->uid, &count, &error);
	if (uids == NULL) {
		imap_result(r, "BAD", "%s", error);
		return;
	}
	struct store_mailbox to;
	int found = store_mailbox_get(store, s->account_id, name, &to, &error);
	if (found <= 0) {
		imap_result(r, "NO", "%s",
			    found == 0 ? "[TRYCREATE] No such mailbox"
				       : "[SERVERBUG] Internal error");
		return;
	}
	if (count == 0) {
		imap_result(r, "OK", "%s completed, nothing to do",
			    move ? "MOVE" : "COPY");
		return;
	}
	uint32_t *new_uids = arena_alloc(s->arena, count * sizeof(uint32_t));
	uint32_t uidvalidity = 0;
	if (new_uids == NULL ||
	    store_copy(store, s->account_id, s->view->mailbox.id, uids, count,
		       to.id, move, new_uids, &uidvalidity, &error) != 0) {
		log_error("COPY: %s", error);
		imap_result(r, "NO", "[SERVERBUG] Internal error");
		return;
	}
	/* Only pairs that were copied. */
	size_t n = 0;
	imap_audit_note(s, move ? "move" : "copy", true,
			"%s to %s:", s->view->mailbox.name, to.name);
	for (size_t i = 0; i < count; i++) {
		if (new_uids[i] != 0) {
			imap_audit_uid(s, uids[i]);
			uids[n] = uids[i];
			new_uids[n] = new_uids[i];
			n++;
		}
	}
	struct buf code;
	buf_init(&code, SIZE_MAX);
	if (n > 0) {
		buf_printf(&code, "[COPYUID %u ", uidvalidity);
		append_uid_set(&code, uids, n);
		buf_append(&code, " ", 1);
		append_uid_set(&code, new_uids, n);
		buf_append(&code, "] ", 2);
	}
	if (move) {
		/* RFC 6851: COPYUID in an untagged OK, then the expunges. */
		if (n > 0)
			imap_untagged(s, "OK %.*s", (int)code.n - 1,
				      (const char *)code.p);
		for (size_t i = 0; i < n; i++) {
			long k = imap_view_find(s->view, uids[i]);
			if (k >= 0)
				s->view->messages[k].expunged = true;
		}
		imap_view_report_expunges(s);
		imap_result(r, "OK", "MOVE completed");
	} else {
		imap_result(r, "OK", "%sCOPY completed", buf_cstr(&code));
	}
	buf_free(&code);
}

static void expunged_one(uint32_t uid, void *context)
{
	struct imap_session *s = context;
	imap_audit_uid(s, uid);
	long k = imap_view_find(s->view, uid);
	if (k >= 0)
		s->view->messages[k].expunged = true;
}

static void cmd_expunge(struct imap_session *s, struct store *store,
			const struct imap_command *cmd, struct result *r,
			bool silent)
{
	const char *error;
	if (s->view->readonly) {
		if (!silent)
			imap_result(r, "NO",
				    "[READ-ONLY] Mailbox is read-only");
		return;
	}
	uint32_t *uids = NULL;
	size_t count = 0;
	if (cmd != NULL && cmd->uid) {
		if (cmd->arg_count != 1) {
			imap_result(r, "BAD", "Syntax: UID EXPUNGE set");
			return;
		}
		uids = imap_set_uids(s, &cmd->args[0], true, &count, &error);
		if (uids == NULL) {
			imap_result(r, "BAD", "%s", error);
			return;
		}
	}
	/* The expunged UIDs go to the audit log even when silent (CLOSE):
	 * marking them in a view about to close does no harm. */
	imap_audit_note(s, "expunge", true, "%s:", s->view->mailbox.name);
	if (store_expunge(store, s->account_id, s->view->mailbox.id, uids,
			  count, expunged_one, s, &error) != 0) {
		log_error("EXPUNGE: %s", error);
		imap_result(r, "NO", "[SERVERBUG] Internal error");
		return;
	}
	if (!silent)
		imap_view_report_expunges(s);
	imap_result(r, "OK", "EXPUNGE completed");
}

static void cmd_close(struct imap_session *s, struct store *store,
		      struct result *r, bool expunge)
{
	if (expunge && !s->view->readonly) {
		struct result ignored = {0};
		cmd_expunge(s, store, NULL, &ignored, true);
	}
	imap_view_free(&s->view);
	s->state = IMAP_STATE_AUTHENTICATED;
	imap_result(r, "OK", "%s completed", expunge ? "CLOSE" : "UNSELECT");
}

static void cmd_enable(struct imap_session *s, const struct imap_command *cmd,
		       struct result *r)
{
	/* RFC 5161: one or more capabilities. (Clients must not ENABLE once
	 * a mailbox is selected; servers need not check.) */
	if (cmd->arg_count == 0) {
		imap_result(r, "BAD", "Syntax: ENABLE capability...");
		return;
	}

	struct buf enabled;
	buf_init(&enabled, 4096);
	for (size_t i = 0; i < cmd->arg_count; i++) {
		struct slice e = cmd->args[i].text;
		const char *name = NULL;
		if (slice_eq_ci(e, "CONDSTORE")) {
			s->condstore = true;
			name = "CONDSTORE";
		} else if (slice_eq_ci(e, "QRESYNC")) {
			s->qresync = s->condstore = true;
			name = "QRESYNC";
		} else if (slice_eq_ci(e, "IMAP4rev2")) {
			s->rev2 = true;
			name = "IMAP4rev2";
		}
		if (name != NULL)
			buf_printf(&enabled, " %s", name);
	}
	imap_untagged(s, "ENABLED%s", buf_cstr(&enabled));
	buf_free(&enabled);
	imap_result(r, "OK", "ENABLE completed");
}

static void cmd_quota(struct imap_session *s, struct store *store,
		      const struct imap_command *cmd, struct result *r,
		      bool root)
{
	const char *error;
	uint64_t used = 0;
	if (store_account_usage(store, s->account_id, &used, &error) != 0) {
		log_error("QUOTA: %s", error);
		imap_result(r, "NO", "[SERVERBUG] Internal error");
		return;
	}
	uint64_t limit_kib = s->server->config->quota_bytes / 1024;
	if (root) {
		char name[STORE_MAX_MAILBOX_NAME + 1];
		if (cmd->arg_count != 1 ||
		    !imap_mailbox_arg(s, &cmd->args[0], name, sizeof(name))) {
			imap_result(r, "BAD", "Syntax: GETQUOTAROOT mailbox");
			return;
		}
		buf_append_cstr(&s->out, "* QUOTAROOT ");
		imap_append_mailbox(s, &s->out, name);
		buf_append_cstr(&s->out, " \"\"\r\n");
	} else {
		struct slice rootname;
		if (cmd->arg_count != 1 ||
		    !imap_arg_astring(&cmd->args[0], &rootname) ||
		    rootname.n != 0) {
			imap_result(r, "NO",
				    "[NONEXISTENT] No such quota root");
			return;
		}
	}
	imap_untagged(s, "QUOTA \"\" (STORAGE %llu %llu)",
		      (unsigned long long)((used + 1023) / 1024),
		      (unsigned long long)limit_kib);
	imap_result(r, "OK", "%s completed",
		    root ? "GETQUOTAROOT" : "GETQUOTA");
}

/* ---- The executor ---- */

static bool is(const struct imap_command *cmd, const char *name)
{
	return slice_eq_ci(cmd->name, name);
}

void imap_tagged(struct imap_session *s, struct slice tag, const char *status,
		 const char *fmt, ...)
{
	buf_append_slice(&s->out, tag);
	buf_printf(&s->out, " %s ", status);
	va_list ap;
	va_start(ap, fmt);
	char text[1024];
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	buf_append_cstr(&s->out, text);
	buf_append(&s->out, "\r\n", 2);
}

void imap_execute(struct imap_session *s, struct store *store)
{
	/* No command: an IDLE session checking for news. */
	if (s->command == NULL) {
		imap_view_refresh(s, store, true);
		return;
	}
	struct imap_command cmd;
	const char *error = NULL;
	arena_reset(s->arena);
	if (imap_parse_command(slice_make(s->command, s->command_len), s->arena,
			       &cmd, &error) != 0) {
		/* The loop parsed it already; this cannot differ. */
		imap_tagged(s, cmd.tag, "BAD", "%s",
			    error ? error : "Syntax error");
		return;
	}
	if (s->view != NULL && s->view->asleep &&
	    imap_view_wake(s->view, store, s->account_id, &error) != 0) {
		log_error("waking the view: %s", error);
		imap_tagged(s, cmd.tag, "NO", "[SERVERBUG] %s",
			    "The mailbox could not be read; try again");
		return;
	}
	struct result r = {.status = NULL, .allow_expunge = true};
	bool selected = s->state == IMAP_STATE_SELECTED;
	bool needs_selected =
		is(&cmd, "FETCH") || is(&cmd, "STORE") || is(&cmd, "SEARCH") ||
		is(&cmd, "COPY") || is(&cmd, "MOVE") || is(&cmd, "EXPUNGE") ||
		is(&cmd, "CLOSE") || is(&cmd, "UNSELECT") || is(&cmd, "SORT") ||
		is(&cmd, "THREAD") || is(&cmd, "CHECK");
	if (cmd.uid &&
	    !(is(&cmd, "FETCH") || is(&cmd, "STORE") || is(&cmd, "SEARCH") ||
	      is(&cmd, "COPY") || is(&cmd, "MOVE") || is(&cmd, "EXPUNGE") ||
	      is(&cmd, "SORT") || is(&cmd, "THREAD"))) {
		imap_result(&r, "BAD", "Unknown UID command");
	} else if (needs_selected && !selected) {
		imap_result(&r, "BAD", "No mailbox selected");
	} else if (is(&cmd, "NOOP") || is(&cmd, "CHECK")) {
		imap_result(&r, "OK", "%.*s completed", (int)cmd.name.n,
			    (const char *)cmd.name.p);
	} else if (is(&cmd, "SELECT") || is(&cmd, "EXAMINE")) {
		cmd_select(s, store, &cmd, &r, is(&cmd, "EXAMINE"));
		r.allow_expunge = false;
	} else if (is(&cmd, "CREATE")) {
		cmd_create(s, store, &cmd, &r);
	} else if (is(&cmd, "DELETE")) {
		cmd_delete(s, store, &cmd, &r);
	} else if (is(&cmd, "RENAME")) {
		cmd_rename(s, store, &cmd, &r);
	} else if (is(&cmd, "SUBSCRIBE") || is(&cmd, "UNSUBSCRIBE")) {
		cmd_subscribe(s, store, &cmd, &r, is(&cmd, "SUBSCRIBE"));
	} else if (is(&cmd, "LIST") || is(&cmd, "LSUB")) {
		cmd_list(s, store, &cmd, &r, is(&cmd, "LSUB"));
	} else if (is(&cmd, "STATUS")) {
		cmd_status(s, store, &cmd, &r);
	} else if (is(&cmd, "APPEND")) {
		cmd_append(s, store, &cmd, &r);
	} else if (is(&cmd, "NAMESPACE") && cmd.arg_count == 0) {
		imap_untagged(s, "NAMESPACE ((\"\" \"/\")) NIL NIL");
		imap_result(&r, "OK", "NAMESPACE completed");
	} else if (is(&cmd, "ID")) {
		imap_audit_client(s, cmd.arg_count == 1 && cmd.args[0].type ==
								   IMAP_ARG_LIST
					     ? &cmd.args[0]
					     : NULL);
		imap_untagged(s, "ID (\"name\" \"dijk\")");
		imap_result(&r, "OK", "ID completed");
	} else if (is(&cmd, "ENABLE")) {
		cmd_enable(s, &cmd, &r);
	} else if (is(&cmd, "GETQUOTA") || is(&cmd, "GETQUOTAROOT")) {
		cmd_quota(s, store, &cmd, &r, is(&cmd, "GETQUOTAROOT"));
	} else if (is(&cmd, "SETQUOTA")) {
		imap_result(&r, "NO",
			    "[NOPERM] Quotas are set by the administrator");
	} else if (is(&cmd, "IDLE") && cmd.arg_count == 0) {
		if (selected) {
			imap_view_refresh(s, store, true);
			if (s->view != NULL)
				imap_view_sleep(s->view);
		}
		buf_append_cstr(&s->out, "+ idling\r\n");
		s->idling = true;
		return;
	} else if (is(&cmd, "LOGOUT")) {
		buf_append_cstr(&s->out, "* BYE Logging out\r\n");
		imap_view_free(&s->view);
		imap_result(&r, "OK", "LOGOUT completed");
		imap_tagged(s, cmd.tag, r.status, "%s", r.text);
		s->state = IMAP_STATE_LOGOUT;
		return;
	} else if (is(&cmd, "FETCH")) {
		imap_cmd_fetch(s, store, &cmd, &r);
		r.allow_expunge = cmd.uid;
	} else if (is(&cmd, "SEARCH")) {
		imap_cmd_search(s, store, &cmd, &r);
		r.allow_expunge = cmd.uid;
	} else if (is(&cmd, "SORT")) {
		imap_cmd_sort(s, store, &cmd, &r);
		r.allow_expunge = cmd.uid;
	} else if (is(&cmd, "THREAD")) {
		imap_cmd_thread(s, store, &cmd, &r);
		r.allow_expunge = cmd.uid;
	} else if (is(&cmd, "STORE")) {
		cmd_store(s, store, &cmd, &r);
		r.allow_expunge = cmd.uid;
	} else if (is(&cmd, "COPY") || is(&cmd, "MOVE")) {
		cmd_copy(s, store, &cmd, &r, is(&cmd, "MOVE"));
	} else if (is(&cmd, "EXPUNGE")) {
		cmd_expunge(s, store, &cmd, &r, false);
	} else if (is(&cmd, "CLOSE") || is(&cmd, "UNSELECT")) {
		cmd_close(s, store, &r, is(&cmd, "CLOSE"));
	} else {
		imap_result(&r, "BAD", "Unknown command");
	}
	if (r.status == NULL)
		imap_result(&r, "NO", "[SERVERBUG] No result");
	if (strcmp(r.status, "OK") == 0 &&
	    (is(&cmd, "STORE") || is(&cmd, "COPY") || is(&cmd, "MOVE") ||
	     is(&cmd, "EXPUNGE") || is(&cmd, "APPEND") || is(&cmd, "CREATE") ||
	     is(&cmd, "DELETE") || is(&cmd, "RENAME") || is(&cmd, "CLOSE") ||
	     is(&cmd, "FETCH")))
		s->changed = true;
	if (strcmp(r.status, "BAD") == 0)
		s->bad_commands++; /* the loop ends the session past the limit */
	if (s->state == IMAP_STATE_SELECTED && s->view != NULL &&
	    strcmp(r.status, "BAD") != 0)
		imap_view_refresh(s, store, r.allow_expunge);
	imap_tagged(s, cmd.tag, r.status, "%s", r.text);
}
