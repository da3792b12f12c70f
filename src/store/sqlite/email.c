/* email.c: what the webmail's JMAP asks of an account's index: Emails by
 * id, threads, changes since a state, queries with filters and paging,
 * settings and uploads.
 *
 * The schema's triggers (mail.c, version 4) give every message row an
 * Email id that is never reused and remember destroyed Emails and
 * mailboxes with the MODSEQ of their going, so "what changed since N" is
 * a range scan here, whoever made the change. */
#include "core/common.h"

#include "store/sqlite/internal.h"

#include <ctype.h>
#include <strings.h>
#include <time.h>

/* Steps a statement to its end; 0, or -1 with the error set. */
static int finish(struct store *s, sqlite3 *db, sqlite3_stmt *st, int rc,
		  const char *what, const char **error_r)
{
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		return 0;
	*error_r = store_db_error(s, db, what);
	return -1;
}

static int counter(struct store *s, sqlite3 *db, uint64_t *value_r,
		   const char **error_r)
{
	sqlite3_stmt *st = store_prepare(
		s, db, "SELECT value FROM counter WHERE name = 'modseq'");
	if (st == NULL) {
		*error_r = s->error;
		return -1;
	}
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*value_r = (uint64_t)sqlite3_column_int64(st, 0);
		rc = SQLITE_DONE;
	}
	return finish(s, db, st, rc, "state", error_r);
}

int store_jmap_state(struct store *s, uint64_t account_id, uint64_t *state_r,
		     const char **error_r)
{
	sqlite3 *db = store_account(s, account_id, error_r);
	return db == NULL ? -1 : counter(s, db, state_r, error_r);
}

int store_emails_get(struct store *s, uint64_t account_id, const uint64_t *ids,
		     size_t count, unsigned want,
		     void (*fn)(const struct store_email *e, void *context),
		     void *context, const char **error_r)
{
	sqlite3 *db = store_account(s, account_id, error_r);
	if (db == NULL)
		return -1;
	char sql[600];
	snprintf(sql, sizeof(sql),
		 "SELECT m.email_id, m.mailbox_id, m.uid, m.thread_id,"
		 " m.modseq, m.flags, m.keywords, m.internal_date, c.size,"
		 " c.has_attachment, %s, %s FROM message m JOIN content c ON"
		 " c.id = m.content_id%s WHERE m.email_id = ?",
		 want & STORE_EMAIL_PREVIEW
			 ? "coalesce(c.preview, substr(f.body, 1, 1024))"
			 : "NULL",
		 want & STORE_EMAIL_BODY ? "substr(f.body, 1, 16384)" : "NULL",
		 want ? " LEFT JOIN fts f ON f.rowid = m.content_id" : "");
	sqlite3_stmt *st = store_prepare(s, db, sql);
	if (st == NULL) {
		*error_r = s->error;
		return -1;
	}
	int rc = SQLITE_DONE;
	for (size_t i = 0; i < count; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, (sqlite3_int64)ids[i]);
		rc = sqlite3_step(st);
		if (rc == SQLITE_DONE)
			continue;
		if (rc != SQLITE_ROW)
			break;
		const char *keywords = (const char *)sqlite3_column_text(st, 6);
		const char *text = (const char *)sqlite3_column_text(st, 10);
		const char *body = (const char *)sqlite3_column_text(st, 11);
		struct store_email e = {
			.id = (uint64_t)sqlite3_column_int64(st, 0),
			.mailbox_id = (uint64_t)sqlite3_column_int64(st, 1),
			.uid = (uint32_t)sqlite3_column_int64(st, 2),
			.thread_id = (uint64_t)sqlite3_column_int64(st, 3),
			.modseq = (uint64_t)sqlite3_column_int64(st, 4),
			.flags = (unsigned)sqlite3_column_int(st, 5),
			.keywords = keywords ? keywords : "",
			.internal_date = (time_t)sqlite3_column_int64(st, 7),
			.size = (uint64_t)sqlite3_column_int64(st, 8),
			.has_attachment = sqlite3_column_int(st, 9) != 0,
			.text = text ? text : "",
			.body = body ? body : "",
		};
		fn(&e, context);
		rc = SQLITE_DONE;
	}
	return finish(s, db, st, rc, "email", error_r);
}

int store_email_by_uid(struct store *s, uint64_t account_id,
		       uint64_t mailbox_id, uint32_t uid, uint64_t *email_id_r,
		       const char **error_r)
{
	sqlite3 *db = store_account(s, account_id, error_r);
	if (db == NULL)
		return -1;
	sqlite3_stmt *st = store_prepare(s, db,
					 "SELECT email_id FROM message WHERE"
					 " mailbox_id = ? AND uid = ?");
	if (st == NULL) {
		*error_r = s->error;
		return -1;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	int rc = sqlite3_step(st);
	int found = rc == SQLITE_ROW;
	if (found) {
		*email_id_r = (uint64_t)sqlite3_column_int64(st, 0);
		rc = SQLITE_DONE;
	}
	return finish(s, db, st, rc, "email", error_r) == 0 ? found : -1;
}

int store_email_bytes(struct store *s, uint64_t account_id, uint64_t email_id,
		      uint8_t **data_r, size_t *size_r, const char **error_r)
{
	sqlite3 *db = store_account(s, account_id, error_r);
	if (db == NULL)
		return -1;
	sqlite3_stmt *st = store_prepare(
		s, db,
		"SELECT c.blob, c.size FROM message m JOIN content c ON"
		" c.id = m.content_id WHERE m.email_id = ?");
	if (st == NULL) {
		*error_r = s->error;
		return -1;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)email_id);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW)
		return finish(s, db, st, rc, "email", error_r);
	char blob[64];
	snprintf(blob, sizeof(blob), "%s", sqlite3_column_text(st, 0));
	uint64_t size = (uint64_t)sqlite3_column_int64(st, 1);
	sqlite3_finalize(st);
	return store_blob_read(s, blob, size, data_r, size_r, error_r);
}

int store_thread_emails(struct store *s, uint64_t account_id,
			uint64_t thread_id,
			void (*fn)(uint64_t email_id, void *context),
			void *context, const char **error_r)
{
	sqlite3 *db = store_account(s, account_id, error_r);
	if (db == NULL)
		return -1;
	sqlite3_stmt *st =
		store_prepare(s, db,
			      "SELECT email_id FROM message WHERE thread_id = ?"
			      " ORDER BY internal_date, email_id");
	if (st == NULL) {
		*error_r = s->error;
		return -1;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)thread_id);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		fn((uint64_t)sqlite3_column_int64(st, 0), context);
	return finish(s, db, st, rc, "thread", error_r);
}

/* ---- changes ---- */

struct change {
	uint64_t id, modseq;
	enum store_change kind;
};

static int cmp_change(const void *a, const void *b)
{
	const struct change *x = a, *y = b;
	if (x->modseq != y->modseq)
		return x->modseq < y->modseq ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* Runs the three queries of a Foo/changes (created, updated, destroyed;
 * each selecting id and the MODSEQ of the change, with ?1 = since), then
 * reports at most max changes in MODSEQ order without splitting the
 * changes of one MODSEQ. */
static int changes(struct store *s, uint64_t account_id, uint64_t since,
		   size_t max, const char *const sql[3], store_change_fn *fn,
		   void *context, uint64_t *state_r, bool *more_r,
		   const char **error_r)
{
	sqlite3 *db = store_account(s, account_id, error_r);
	if (db == NULL)
		return -1;
	/* One read transaction: the state and the changes agree. */
	if (store_exec(s, db, "BEGIN") != 0) {
		*error_r = s->error;
		return -1;
	}
	uint64_t now = 0;
	int ret = counter(s, db, &now, error_r);
	if (ret == 0 && since > now)
		ret = -2;
	struct change *list = NULL;
	size_t n = 0, cap = 0;
	for (int k = 0; k < 3 && ret == 0; k++) {
		sqlite3_stmt *st = store_prepare(s, db, sql[k]);
		if (st == NULL) {
			*error_r = s->error;
			ret = -1;
			break;
		}
		sqlite3_bind_int64(st, 1, (sqlite3_int64)since);
		int rc;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				list = xrealloc(list, cap * sizeof(*list));
			}
			list[n++] = (struct change){
				(uint64_t)sqlite3_column_int64(st, 0),
				(uint64_t)sqlite3_column_int64(st, 1),
				(enum store_change)k,
			};
		}
		ret = finish(s, db, st, rc, "changes", error_r);
	}
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	if (ret != 0) {
		free(list);
		return ret;
	}
	if (n > 1)
		qsort(list, n, sizeof(*list), cmp_change);
	size_t upto = n;
	*more_r = false;
	*state_r = now;
	if (max > 0 && n > max) {
		/* Stop before the first MODSEQ that would not fit whole: a
		 * state between the changes of one MODSEQ does not exist. */
		upto = max;
		while (upto > 0 && list[upto].modseq == list[upto - 1].modseq)
			upto--;
		if (upto == 0) {
			/* Even the first MODSEQ changed more than max: the
			 * client must start over (RFC 8620 5.2 forbids
			 * giving more). */
			free(list);
			return -2;
		}
		*more_r = true;
		*state_r = list[upto - 1].modseq;
	}
	for (size_t i = 0; i < upto; i++)
		fn(list[i].kind, list[i].id, context);
	free(list);
	return 0;
}

int store_email_changes(struct store *s, uint64_t account_id, uint64_t since,
			size_t max_changes, store_change_fn *fn, void *context,
			uint64_t *state_r, bool *more_r, const char **error_r)
{
	static const char *const sql[3] = {
		"SELECT email_id, created_modseq FROM message WHERE"
		" created_modseq > ?1",
		"SELECT email_id, modseq FROM message WHERE modseq > ?1 AND"
		" created_modseq <= ?1",
		"SELECT email_id, modseq FROM email_gone WHERE modseq > ?1 AND"
		" created_modseq <= ?1",
	};
	return changes(s, account_id, since, max_changes, sql, fn, context,
		       state_r, more_r, error_r);
}

int store_mailbox_changes(struct store *s, uint64_t account_id, uint64_t since,
			  size_t max_changes, store_change_fn *fn,
			  void *context, uint64_t *state_r, bool *more_r,
			  const char **error_r)
{
	static const char *const sql[3] = {
		"SELECT id, created_modseq FROM mailbox WHERE"
		" created_modseq > ?1",
		"SELECT id, highestmodseq FROM mailbox WHERE"
		" highestmodseq > ?1 AND created_modseq <= ?1",
		"SELECT id, modseq FROM mailbox_gone WHERE modseq > ?1 AND"
		" created_modseq <= ?1",
	};
	return changes(s, account_id, since, max_changes, sql, fn, context,
		       state_r, more_r, error_r);
}

int store_thread_changes(struct store *s, uint64_t account_id, uint64_t since,
			 size_t max_changes, store_change_fn *fn, void *context,
			 uint64_t *state_r, bool *more_r, const char **error_r)
{
	/* A thread changes when an Email joins or leaves it. It is new
	 * when none of its Emails, present or gone, existed before; gone
	 * when none is left. */
	static const char *const sql[3] = {
		"SELECT t, max(ms) FROM (SELECT thread_id AS t,"
		" created_modseq AS ms FROM message WHERE created_modseq > ?1"
		" UNION ALL SELECT thread_id, modseq FROM email_gone WHERE"
		" modseq > ?1) GROUP BY t HAVING NOT EXISTS (SELECT 1 FROM"
		" message WHERE thread_id = t AND created_modseq <= ?1) AND NOT"
		" EXISTS (SELECT 1 FROM email_gone WHERE thread_id = t AND"
		" created_modseq <= ?1) AND EXISTS (SELECT 1 FROM message"
		" WHERE thread_id = t)",
		"SELECT t, max(ms) FROM (SELECT thread_id AS t,"
		" created_modseq AS ms FROM message WHERE created_modseq > ?1"
		" UNION ALL SELECT thread_id, modseq FROM email_gone WHERE"
		" modseq > ?1) GROUP BY t HAVING (EXISTS (SELECT 1 FROM"
		" message WHERE thread_id = t AND created_modseq <= ?1) OR"
		" EXISTS (SELECT 1 FROM email_gone WHERE thread_id = t AND"
		" created_modseq <= ?1)) AND EXISTS (SELECT 1 FROM message"
		" WHERE thread_id = t)",
		"SELECT t, max(ms) FROM (SELECT thread_id AS t, modseq AS ms"
		" FROM email_gone WHERE modseq > ?1) GROUP BY t HAVING NOT"
		" EXISTS (SELECT 1 FROM message WHERE thread_id = t) AND"
		" EXISTS (SELECT 1 FROM email_gone WHERE thread_id = t AND"
		" created_modseq <= ?1)",
	};
	return changes(s, account_id, since, max_changes, sql, fn, context,
		       state_r, more_r, error_r);
}

/* ---- queries ---- */

/* A statement being written: its SQL and the values to bind, in order. */
struct bind {
	bool is_text;
	int64_t number;
	char *text;
};
struct sql {
	struct buf text;
	struct bind *binds;
	size_t bind_count, bind_cap;
	bool need_content; /* joins content */
	bool has_text;	   /* a full-text condition: costly to run twice */
	bool bad;
};

static void bind_number(struct sql *q, int64_t v)
{
	if (q->bind_count == q->bind_cap) {
		q->bind_cap = q->bind_cap ? q->bind_cap * 2 : 16;
		q->binds = xrealloc(q->binds, q->bind_cap * sizeof(*q->binds));
	}
	q->binds[q->bind_count++] = (struct bind){.number = v};
	buf_append_cstr(&q->text, "?");
}

static void bind_text(struct sql *q, struct buf *value)
{
	bind_number(q, 0);
	struct bind *b = &q->binds[q->bind_count - 1];
	b->is_text = true;
	b->text = xmalloc(value->n + 1);
	memcpy(b->text, value->p, value->n);
	b->text[value->n] = '\0';
}

static void sql_free(struct sql *q)
{
	for (size_t i = 0; i < q->bind_count; i++)
		free(q->binds[i].text);
	free(q->binds);
	buf_free(&q->text);
}

/* System flags that JMAP spells as keywords (RFC 8621 4.1.1). */
static unsigned keyword_flag(const char *keyword)
{
	static const struct {
		const char *name;
		unsigned flag;
	} map[] = {
		{"$seen", STORE_FLAG_SEEN},
		{"$answered", STORE_FLAG_ANSWERED},
		{"$flagged", STORE_FLAG_FLAGGED},
		{"$draft", STORE_FLAG_DRAFT},
	};
	for (size_t i = 0; i < ARRAY_SIZE(map); i++)
		if (strcasecmp(keyword, map[i].name) == 0)
			return map[i].flag;
	return 0;
}

static void keyword_condition(struct sql *q, const char *keyword, bool has)
{
	unsigned flag = keyword_flag(keyword);
	if (flag != 0) {
		buf_printf(&q->text, "(m.flags & %u %s 0)", flag,
			   has ? "!=" : "=");
		return;
	}
	/* Other keywords are stored space-separated; JMAP compares them
	 * without case. */
	struct buf pattern;
	buf_init(&pattern, 1024);
	buf_append_cstr(&pattern, "% ");
	for (const char *p = keyword; *p; p++) {
		if (*p == '%' || *p == '_' || *p == '\\')
			buf_append(&pattern, "\\", 1);
		char c = (char)tolower((unsigned char)*p);
		buf_append(&pattern, &c, 1);
	}
	buf_append_cstr(&pattern, " %");
	buf_printf(&q->text, "(%s(' ' || lower(m.keywords) || ' ') LIKE ",
		   has ? "" : "NOT ");
	bind_text(q, &pattern);
	buf_append_cstr(&q->text, " ESCAPE '\\')");
	buf_free(&pattern);
}

static size_t utf8_length(const char *p, size_t n)
{
	size_t chars = 0;
	for (size_t i = 0; i < n; i++)
		if (((unsigned char)p[i] & 0xc0) != 0x80)
			chars++;
	return chars;
}

/* Every word of value must occur in one of the full-text columns. Words
 * of three characters or more use the trigram index; shorter ones have no
 * index and are looked for in a scan of the first short_count columns
 * only (the headers, when the columns are all of them: a scan of every
 * body takes a second per 100,000 messages, and "ok" or "re" in a body
 * finds nearly every message anyway). */
static void text_condition(struct sql *q, const char *value,
			   const char *const *columns, size_t column_count,
			   size_t short_count)
{
	q->has_text = true;
	bool any = false;
	buf_append_cstr(&q->text, "(");
	const char *p = value;
	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
			p++;
		const char *start = p;
		while (*p && *p != ' ' && *p != '\t' && *p != '\n' &&
		       *p != '\r')
			p++;
		size_t n = (size_t)(p - start);
		if (n == 0)
			break;
		if (any)
			buf_append_cstr(&q->text, " AND ");
		any = true;
		struct buf arg;
		buf_init(&arg, 8192);
		if (utf8_length(start, n) >= 3) {
			buf_append_cstr(&arg, "{");
			for (size_t c = 0; c < column_count; c++)
				buf_printf(&arg, "%s%s", c ? " " : "",
					   columns[c]);
			buf_append_cstr(&arg, "} : \"");
			for (size_t i = 0; i < n; i++) {
				if (start[i] == '"')
					buf_append(&arg, "\"", 1);
				buf_append(&arg, &start[i], 1);
			}
			buf_append_cstr(&arg, "\"");
			buf_append_cstr(&q->text,
					"m.content_id IN (SELECT rowid FROM fts"
					" WHERE fts MATCH ");
			bind_text(q, &arg);
			buf_append_cstr(&q->text, ")");
		} else {
			/* The headers are scanned in the content table,
			 * whose rows are far smaller than the index's; the
			 * body only in the index. */
			buf_append(&arg, start, n);
			bool body = short_count == 1 &&
				    strcmp(columns[0], "body") == 0;
			buf_append_cstr(&q->text,
					body ? "m.content_id IN (SELECT rowid"
					       " FROM fts WHERE "
					     : "m.content_id IN (SELECT id"
					       " FROM content WHERE ");
			for (size_t c = 0; c < short_count; c++) {
				buf_printf(&q->text, "%sdijk_contains(%s, ",
					   c ? " OR " : "", columns[c]);
				bind_text(q, &arg);
				buf_append_cstr(&q->text, ")");
			}
			buf_append_cstr(&q->text, ")");
		}
		if (buf_overflowed(&arg))
			q->bad = true;
		buf_free(&arg);
	}
	if (!any)
		buf_append_cstr(&q->text, "1");
	buf_append_cstr(&q->text, ")");
}

static void condition(struct sql *q, const struct store_filter *f)
{
	static const char *const all[] = {"hdr_from", "hdr_to",	 "hdr_cc",
					  "hdr_bcc",  "subject", "body"};
	static const struct {
		size_t offset;
		const char *column;
	} fields[] = {
		{offsetof(struct store_filter, from), "hdr_from"},
		{offsetof(struct store_filter, to), "hdr_to"},
		{offsetof(struct store_filter, cc), "hdr_cc"},
		{offsetof(struct store_filter, bcc), "hdr_bcc"},
		{offsetof(struct store_filter, subject), "subject"},
		{offsetof(struct store_filter, body), "body"},
	};
	buf_append_cstr(&q->text, "(1");
	if (f->in_mailbox != 0) {
		buf_append_cstr(&q->text, " AND m.mailbox_id = ");
		bind_number(q, (int64_t)f->in_mailbox);
	}
	if (f->not_in_count > 0) {
		buf_append_cstr(&q->text, " AND m.mailbox_id NOT IN (");
		for (size_t i = 0; i < f->not_in_count; i++) {
			if (i)
				buf_append_cstr(&q->text, ", ");
			bind_number(q, (int64_t)f->not_in_mailboxes[i]);
		}
		buf_append_cstr(&q->text, ")");
	}
	if (f->before != STORE_NO_TIME) {
		buf_append_cstr(&q->text, " AND m.internal_date < ");
		bind_number(q, f->before);
	}
	if (f->after != STORE_NO_TIME) {
		buf_append_cstr(&q->text, " AND m.internal_date >= ");
		bind_number(q, f->after);
	}
	if (f->min_size >= 0) {
		buf_append_cstr(&q->text, " AND c.size >= ");
		bind_number(q, f->min_size);
		q->need_content = true;
	}
	if (f->max_size >= 0) {
		buf_append_cstr(&q->text, " AND c.size < ");
		bind_number(q, f->max_size);
		q->need_content = true;
	}
	if (f->has_attachment >= 0) {
		buf_printf(&q->text, " AND c.has_attachment = %d",
			   f->has_attachment ? 1 : 0);
		q->need_content = true;
	}
	if (f->has_keyword != NULL) {
		buf_append_cstr(&q->text, " AND ");
		keyword_condition(q, f->has_keyword, true);
	}
	if (f->not_keyword != NULL) {
		buf_append_cstr(&q->text, " AND ");
		keyword_condition(q, f->not_keyword, false);
	}
	if (f->text != NULL) {
		buf_append_cstr(&q->text, " AND ");
		/* Short words: the headers, not the body (see above). */
		text_condition(q, f->text, all, ARRAY_SIZE(all),
			       ARRAY_SIZE(all) - 1);
	}
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
		const char *value = *(const char *const *)((const char *)f +
							   fields[i].offset);
		if (value == NULL)
			continue;
		buf_append_cstr(&q->text, " AND ");
		text_condition(q, value, &fields[i].column, 1, 1);
	}
	buf_append_cstr(&q->text, ")");
}

/* Filters nest at most this deep (the JMAP layer refuses deeper ones
 * first; this keeps the recursion bounded whatever the caller). */
#define STORE_MAX_FILTER_DEPTH 16

static void filter_sql(struct sql *q, const struct store_filter *f,
		       unsigned depth)
{
	if (depth > STORE_MAX_FILTER_DEPTH) {
		q->bad = true;
		return;
	}
	if (f->op == STORE_FILTER_CONDITION) {
		condition(q, f);
		return;
	}
	/* NOT is "none of these": NOT (a OR b). */
	const char *join = f->op == STORE_FILTER_AND ? " AND " : " OR ";
	if (f->op == STORE_FILTER_NOT)
		buf_append_cstr(&q->text, "NOT ");
	buf_append_cstr(&q->text, "(");
	if (f->child_count == 0)
		buf_append_cstr(&q->text,
				f->op == STORE_FILTER_AND ? "1" : "0");
	for (size_t i = 0; i < f->child_count; i++) {
		if (i)
			buf_append_cstr(&q->text, join);
		filter_sql(q, &f->children[i], depth + 1);
	}
	buf_append_cstr(&q->text, ")");
}

static sqlite3_stmt *prepare_query(struct store *s, sqlite3 *db,
				   struct sql *where, const char *select,
				   const char *order)
{
	struct buf text;
	buf_init(&text, SIZE_MAX);
	buf_printf(&text, "SELECT %s FROM message m%s WHERE %s%s", select,
		   where->need_content
			   ? " JOIN content c ON c.id = m.content_id"
			   : "",
		   buf_cstr(&where->text), order);
	sqlite3_stmt *st = store_prepare(s, db, buf_cstr(&text));
	buf_free(&text);
	if (st == NULL)
		return NULL;
	for (size_t i = 0; i < where->bind_count; i++) {
		const struct bind *b = &where->binds[i];
		if (b->is_text)
			sqlite3_bind_text(st, (int)i + 1, b->text, -1,
					  SQLITE_STATIC);
		else
			sqlite3_bind_int64(st, (int)i + 1, b->number);
	}
	return st;
}

/* A set of thread ids (collapseThreads keeps the first of each). */
struct id_set {
	uint64_t *slots;
	size_t cap, count;
};

static bool id_set_add(struct id_set *set, uint64_t id)
{
	if ((set->count + 1) * 2 > set->cap) {
		struct id_set bigger = {
			.cap = set->cap ? set->cap * 2 : 256,
		};
		bigger.slots = xcalloc(bigger.cap, sizeof(*bigger.slots));
		for (size_t i = 0; i < set->cap; i++)
			if (set->slots[i] != 0)
				id_set_add(&bigger, set->slots[i]);
		free(set->slots);
		*set = bigger;
	}
	/* Ids are never 0; 0 marks an empty slot. */
	id++;
	size_t i = (size_t)(id * UINT64_C(0x9e3779b97f4a7c15)) & (set->cap - 1);
	while (set->slots[i] != 0) {
		if (set->slots[i] == id)
			return false;
		i = (i + 1) & (set->cap - 1);
	}
	set->slots[i] = id;
	set->count++;
	return true;
}

int store_email_query(struct store *s, uint64_t account_id,
		      const struct store_query *q,
		      void (*fn)(uint64_t email_id, uint64_t thread_id,
				 void *context),
		      void *context, uint64_t *total_r, uint64_t *position_r,
		      const char **error_r)
{
	sqlite3 *db = store_account(s, account_id, error_r);
	if (db == NULL)
		return -1;
	struct sql where = {0};
	buf_init(&where.text, 1024 * 1024);
	if (q->filter != NULL)
		filter_sql(&where, q->filter, 0);
	else
		buf_append_cstr(&where.text, "1");
	if (where.bad || buf_overflowed(&where.text)) {
		sql_free(&where);
		*error_r = "filter too large";
		return -1;
	}
	int ret = -1;
	/* One read transaction: the page and the total agree. */
	if (store_exec(s, db, "BEGIN") != 0) {
		*error_r = s->error;
		sql_free(&where);
		return -1;
	}
	/* With a full-text condition the total comes from the page's own
	 * walk through every match (running the search twice costs more);
	 * otherwise from a count over the indexes. */
	bool counting = q->want_total && where.has_text;
	if (q->want_total && !counting) {
		sqlite3_stmt *st = prepare_query(
			s, db, &where,
			q->collapse_threads ? "count(DISTINCT m.thread_id)"
					    : "count(*)",
			"");
		if (st == NULL) {
			*error_r = s->error;
			goto out;
		}
		int rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			*total_r = (uint64_t)sqlite3_column_int64(st, 0);
			rc = SQLITE_DONE;
		}
		if (finish(s, db, st, rc, "query", error_r) != 0)
			goto out;
	}
	sqlite3_stmt *st = prepare_query(
		s, db, &where, "m.email_id, m.thread_id",
		q->ascending
			? " ORDER BY m.internal_date, m.email_id"
			: " ORDER BY m.internal_date DESC, m.email_id DESC");
	if (st == NULL) {
		*error_r = s->error;
		goto out;
	}
	struct id_set threads = {0};
	/* With an anchor, the page starts relative to it: the matches up to
	 * it are kept until it is found. */
	uint64_t *before = NULL;
	size_t before_count = 0, before_cap = 0;
	bool anchored = q->anchor == 0;
	uint64_t index = 0, start = q->position, given = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		uint64_t id = (uint64_t)sqlite3_column_int64(st, 0);
		uint64_t thread = (uint64_t)sqlite3_column_int64(st, 1);
		if (q->collapse_threads && !id_set_add(&threads, thread))
			continue;
		if (!anchored) {
			if (id != q->anchor) {
				if (before_count == before_cap) {
					before_cap = before_cap ? before_cap * 2
								: 256;
					before = xrealloc(
						before,
						before_cap * 2 *
							sizeof(*before));
				}
				before[2 * before_count] = id;
				before[2 * before_count + 1] = thread;
				before_count++;
				index++;
				continue;
			}
			anchored = true;
			int64_t at = (int64_t)index + q->anchor_offset;
			start = at < 0 ? 0 : (uint64_t)at;
			/* Matches before the anchor that the page covers. */
			for (uint64_t i = start; i < before_count; i++) {
				if (q->limit != 0 && given == q->limit)
					break;
				fn(before[2 * i], before[2 * i + 1], context);
				given++;
			}
		}
		if (index >= start && (q->limit == 0 || given < q->limit)) {
			fn(id, thread, context);
			given++;
		}
		index++;
		if (q->limit != 0 && given == q->limit && anchored && !counting)
			break;
	}
	if (rc == SQLITE_ROW)
		rc = SQLITE_DONE;
	if (counting)
		*total_r = index;
	free(before);
	free(threads.slots);
	if (finish(s, db, st, rc, "query", error_r) != 0)
		goto out;
	if (!anchored) {
		ret = -2;
		goto out;
	}
	*position_r = start;
	ret = 0;
out:
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	sql_free(&where);
	return ret;
}

/* ---- settings and uploads ---- */

int store_setting_get(struct store *s, uint64_t account_id, const char *name,
		      struct buf *out, const char **error_r)
{
	sqlite3 *db = store_account(s, account_id, error_r);
	if (db == NULL)
		return -1;
	sqlite3_stmt *st = store_prepare(
		s, db, "SELECT value FROM setting WHERE name = ?");
	if (st == NULL) {
		*error_r = s->error;
		return -1;
	}
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	int found = rc == SQLITE_ROW;
	if (found) {
		buf_append(out, sqlite3_column_text(st, 0),
			   (size_t)sqlite3_column_bytes(st, 0));
		rc = SQLITE_DONE;
	}
	return finish(s, db, st, rc, "setting", error_r) == 0 ? found : -1;
}

int store_setting_set(struct store *s, uint64_t account_id, const char *name,
		      const char *value, const char **error_r)
{
	sqlite3 *db = store_account(s, account_id, error_r);
	if (db == NULL)
		return -1;
	sqlite3_stmt *st = store_prepare(
		s, db,
		value != NULL ? "INSERT OR REPLACE INTO setting (name, value)"
				" VALUES (?, ?)"
			      : "DELETE FROM setting WHERE name = ?");
	if (st == NULL) {
		*error_r = s->error;
		return -1;
	}
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if (value != NULL)
		sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
	return finish(s, db, st, sqlite3_step(st), "setting", error_r);
}

int store_upload_add(struct store *s, uint64_t account_id, const char *type,
		     const uint8_t *data, size_t size, uint64_t *id_r,
		     const char **error_r)
{
	sqlite3 *db = store_account(s, account_id, error_r);
	if (db == NULL)
		return -1;
	time_t now = time(NULL);
	sqlite3_stmt *st =
		store_prepare(s, db, "DELETE FROM upload WHERE created < ?");
	if (st == NULL) {
		*error_r = s->error;
		return -1;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)(now - STORE_UPLOAD_LIFETIME));
	if (finish(s, db, st, sqlite3_step(st), "upload", error_r) != 0)
		return -1;
	st = store_prepare(
		s, db,
		"INSERT INTO upload (type, data, created) VALUES (?, ?, ?)"
		" RETURNING id");
	if (st == NULL) {
		*error_r = s->error;
		return -1;
	}
	sqlite3_bind_text(st, 1, type, -1, SQLITE_STATIC);
	sqlite3_bind_blob64(st, 2, size ? (const void *)data : "", size,
			    SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)now);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*id_r = (uint64_t)sqlite3_column_int64(st, 0);
		rc = sqlite3_step(st);
	}
	return finish(s, db, st, rc, "upload", error_r);
}

int store_upload_get(struct store *s, uint64_t account_id, uint64_t id,
		     struct buf *out, char *type_r, size_t type_size,
		     const char **error_r)
{
	sqlite3 *db = store_account(s, account_id, error_r);
	if (db == NULL)
		return -1;
	sqlite3_stmt *st =
		store_prepare(s, db,
			      "SELECT type, data FROM upload WHERE id = ?"
			      " AND created >= ?");
	if (st == NULL) {
		*error_r = s->error;
		return -1;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
	sqlite3_bind_int64(st, 2,
			   (sqlite3_int64)(time(NULL) - STORE_UPLOAD_LIFETIME));
	int rc = sqlite3_step(st);
	int found = rc == SQLITE_ROW;
	if (found) {
		snprintf(type_r, type_size, "%s", sqlite3_column_text(st, 0));
		buf_append(out, sqlite3_column_blob(st, 1),
			   (size_t)sqlite3_column_bytes(st, 1));
		rc = SQLITE_DONE;
	}
	return finish(s, db, st, rc, "upload", error_r) == 0 ? found : -1;
}
