/* mailbox.c: mailboxes and the messages in them, for IMAP and the
 * webmail: create, delete, rename, subscribe; message listings and change
 * tracking by MODSEQ; flags; expunge; copy and move; search and sort keys.
 * Every change takes a new MODSEQ of the account, recorded on the message
 * (or, for an expunge, in the expunged table) and as the mailbox's
 * HIGHESTMODSEQ, so that sessions can ask "what changed since N". */
#include "core/common.h"

#include "store/sqlite/internal.h"

#include "mime/mime.h"

#include <strings.h>

#define STORE_MAX_HIERARCHY 32

sqlite3_stmt *store_prepare(struct store *s, sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		store_db_error(s, db, "prepare");
		sqlite3_finalize(st);
		return NULL;
	}
	return st;
}

sqlite3 *store_account(struct store *s, uint64_t account_id,
		       const char **error_r)
{
	sqlite3 *db = store_account_db(s, account_id, false);
	if (db == NULL)
		*error_r = s->error;
	return db;
}

sqlite3_int64 store_next_modseq(struct store *s, sqlite3 *db)
{
	sqlite3_stmt *st = store_prepare(
		s, db,
		"UPDATE counter SET value = value + 1 WHERE name = 'modseq'"
		" RETURNING value");
	if (st == NULL)
		return 0;
	sqlite3_int64 v = 0;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	else
		store_db_error(s, db, "modseq");
	sqlite3_finalize(st);
	return v;
}

int store_content_ref(struct store *s, sqlite3 *db, sqlite3_int64 content_id,
		      int delta)
{
	sqlite3_stmt *st = store_prepare(s, db,
					 "UPDATE content SET refs = refs + ?"
					 " WHERE id = ? RETURNING refs");
	if (st == NULL)
		return -1;
	sqlite3_bind_int(st, 1, delta);
	sqlite3_bind_int64(st, 2, content_id);
	int rc = sqlite3_step(st);
	sqlite3_int64 refs = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 1;
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		store_db_error(s, db, "content refs");
		return -1;
	}
	if (refs > 0)
		return 0;
	st = store_prepare(s, db, "DELETE FROM fts WHERE rowid = ?");
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, content_id);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	st = store_prepare(s, db, "DELETE FROM content WHERE id = ?");
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, content_id);
	if (rc == SQLITE_DONE)
		rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		store_db_error(s, db, "content delete");
		return -1;
	}
	return 0;
}

static bool is_inbox(const char *name)
{
	return strcasecmp(name, "INBOX") == 0;
}

/* INBOX in any case is stored as "INBOX". */
static const char *canonical(const char *name)
{
	return is_inbox(name) ? "INBOX" : name;
}

static void row_to_mailbox(sqlite3_stmt *st, struct store_mailbox *m)
{
	memset(m, 0, sizeof(*m));
	m->id = (uint64_t)sqlite3_column_int64(st, 0);
	snprintf(m->name, sizeof(m->name), "%s", sqlite3_column_text(st, 1));
	const unsigned char *su = sqlite3_column_text(st, 2);
	snprintf(m->special_use, sizeof(m->special_use), "%s",
		 su ? (const char *)su : "");
	m->uidvalidity = (uint32_t)sqlite3_column_int64(st, 3);
	m->uidnext = (uint32_t)sqlite3_column_int64(st, 4);
	m->highestmodseq = (uint64_t)sqlite3_column_int64(st, 5);
	m->subscribed = sqlite3_column_int(st, 6) != 0;
}

#define MAILBOX_COLUMNS                                          \
	"b.id, b.name, b.special_use, b.uidvalidity, b.uidnext," \
	" b.highestmodseq,"                                      \
	" EXISTS (SELECT 1 FROM subscription s WHERE s.name = b.name)"

int store_mailbox_get(struct store *s, uint64_t account_id, const char *name,
		      struct store_mailbox *out, const char **error_r)
{
	sqlite3 *db = store_account(s, account_id, error_r);
	if (db == NULL)
		return -1;
	sqlite3_stmt *st = store_prepare(s, db,
					 "SELECT " MAILBOX_COLUMNS
					 " FROM mailbox b WHERE name = ?");
	if (st == NULL) {
		*error_r = s->error;
		return -1;
	}
	sqlite3_bind_text(st, 1, canonical(name), -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		row_to_mailbox(st, out);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	*error_r = store_db_error(s, db, "mailbox");
	return -1;
}

int store_mailbox_status(struct store *s, uint64_t account_id, const char *name,
			 struct store_mailbox *out, const char **error_r)
{
	int found = store_mailbox_get(s, account_id, name, out, error_r);
	if (found <= 0)
		return found;
	sqlite3 *db = store_account(s, account_id, error_r);
	sqlite3_stmt *st = store_prepare(
		s, db,
		"SELECT count(*), coalesce(sum(m.flags & 1 = 0), 0),"
		" coalesce(sum(m.flags & 8 != 0), 0), coalesce(sum(c.size), 0),"
		" coalesce(sum(CASE WHEN m.flags & 8 != 0 THEN c.size END), 0),"
		" coalesce(sum(m.uid >= b.recent_uid), 0)"
		" FROM message m JOIN content c ON c.id = m.content_id"
		" JOIN mailbox b ON b.id = m.mailbox_id"
		" WHERE m.mailbox_id = ?");
	if (st == NULL) {
		*error_r = s->error;
		return -1;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)out->id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		out->messages = (uint64_t)sqlite3_column_int64(st, 0);
		out->unseen = (uint64_t)sqlite3_column_int64(st, 1);
		out->deleted = (uint64_t)sqlite3_column_int64(st, 2);
		out->size = (uint64_t)sqlite3_column_int64(st, 3);
		out->deleted_size = (uint64_t)sqlite3_column_int64(st, 4);
		out->recent = (uint64_t)sqlite3_column_int64(st, 5);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW) {
		*error_r = store_db_error(s, db, "status");
		return -1;
	}
	return 1;
}

int store_mailbox_each(struct store *s, uint64_t account_id,
		       void (*fn)(const struct store_mailbox *m, void *context),
		       void *context, const char **error_r)
{
	sqlite3 *db = store_account(s, account_id, error_r);
	if (db == NULL)
		return -1;
	sqlite3_stmt *st = store_prepare(s, db,
					 "SELECT " MAILBOX_COLUMNS
					 " FROM mailbox b ORDER BY name");
	if (st == NULL) {
		*error_r = s->error;
		return -1;
	}
	int rc;
	struct store_mailbox m;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		row_to_mailbox(st, &m);
		fn(&m, context);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*error_r = store_db_error(s, db, "mailbox list");
		return -1;
	}
	return 0;
}

int store_subscription_each(struct store *s, uint64_t account_id,
			    void (*fn)(const char *name, void *context),
			    void *context, const char **error_r)
{
	sqlite3 *db = store_account(s, account_id, error_r);
	if (db == NULL)
		return -1;
	sqlite3_stmt *st = store_prepare(
		s, db, "SELECT name FROM subscription ORDER BY name");
	if (st == NULL) {
		*error_r = s->error;
		return -1;
	}
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		fn((const char *)sqlite3_column_text(st, 0), context);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*error_r = store_db_error(s, db, "subscriptions");
		return -1;
	}
	return 0;
}

/* A name is non-empty levels of UTF-8 without control characters,
 * separated by single '/'. */
static bool valid_name(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > STORE_MAX_MAILBOX_NAME || name[0] == '/' ||
	    name[n - 1] == '/')
		return false;
	size_t levels = 1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c < 0x20 || c == 0x7f)
			return false;
		if (c == '/') {
			if (name[i + 1] == '/')
				return false;
			if (++levels > STORE_MAX_HIERARCHY)
				return false;
		}
	}
	return true;
}

static sqlite3_int64 next_uidvalidity(struct store *s, sqlite3 *db)
{
	/* Unique per name over time: never below the clock, never reused. */
	sqlite3_stmt *st =
		store_prepare(s, db,
			      "UPDATE counter SET value = max(value + 1, ?)"
			      " WHERE name = 'uidvalidity' RETURNING value");
	if (st == NULL)
		return 0;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)time(NULL));
	sqlite3_int64 v = 0;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (v <= 0 || v > UINT32_MAX) {
		store_db_error(s, db, "uidvalidity");
		return 0;
	}
	return v;
}

/* Inserts one mailbox row; returns 1 when made, 0 when it existed. */
static int insert_mailbox(struct store *s, sqlite3 *db, const char *name,
			  uint32_t uidnext)
{
	sqlite3_int64 uidvalidity = next_uidvalidity(s, db);
	if (uidvalidity == 0)
		return -1;
	sqlite3_stmt *st = store_prepare(
		s, db,
		"INSERT OR IGNORE INTO mailbox (name, uidvalidity, uidnext,"
		" highestmodseq) VALUES (?, ?, ?, 1)");
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, uidvalidity);
	sqlite3_bind_int64(st, 3, uidnext);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		store_db_error(s, db, "create");
		return -1;
	}
	return sqlite3_changes(db) > 0 ? 1 : 0;
}

static int begin(struct store *s, sqlite3 *db, const char **error_r)
{
	if (store_exec(s, db, "BEGIN IMMEDIATE") != 0) {
		*error_r = s->error;
		return -1;
	}
	return 0;
}

static int commit(struct store *s, sqlite3 *db, const char **error_r)
{
	if (store_exec(s, db, "COMMIT") != 0) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		*error_r = s->error;
		return -1;
	}
	return 0;
}

static int rollback(struct store *s, sqlite3 *db, const char **error_r,
		    int result)
{
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	if (result == STORE_MAILBOX_FAILED)
		*error_r = s->error;
	return result;
}

static int recent_uid(struct store *s, sqlite3 *db, uint64_t mailbox_id,
		      uint32_t *uid_r)
{
	sqlite3_stmt *st = store_prepare(
		s, db, "SELECT recent_uid FROM mailbox WHERE id = ?");
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)mailbox_id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*uid_r = (uint32_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc == SQLITE_DONE)
		*uid_r = UINT32_MAX; /* gone: nothing to claim */
	else
		store_db_error(s, db, "recent");
	return rc == SQLITE_DONE ? 0 : -1;
}

int store_recent_claim(struct store *s, uint64_t account_id,
		       uint64_t mailbox_id, uint32_t upto, uint32_t *from_r,
		       const char **error_r)
{
	sqlite3 *db = store_account(s, account_id, error_r);
	if (db == NULL)
		return -1;
	/* Most of the time there is nothing new: no write. */
	if (recent_uid(s, db, mailbox_id, from_r) != 0) {
		*error_r = s->error;
		return -1;
	}
	if (*from_r >= upto)
		return 0;
	if (store_exec(s, db, "PRAGMA synchronous = NORMAL") != 0) {
		*error_r = s->error;
		return -1;
	}
	if (begin(s, db, error_r) != 0)
		goto restore;
	sqlite3_stmt *st = NULL;
	if (recent_uid(s, db, mailbox_id, from_r) != 0)
		goto fail;
	if (*from_r < upto) {
		st = store_prepare(
			s, db,
			"UPDATE mailbox SET recent_uid = ? WHERE id = ?");
		if (st == NULL)
			goto fail;
		sqlite3_bind_int64(st, 1, upto);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)mailbox_id);
		int rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE) {
			store_db_error(s, db, "recent");
			goto fail;
		}
	}
	if (commit(s, db, error_r) != 0)
		goto restore;
	if (store_exec(s, db, "PRAGMA synchronous = FULL") != 0) {
		*error_r = s->error;
		return -1;
	}
	return 0;
fail:
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	*error_r = s->error;
restore:
	store_exec(s, db, "PRAGMA synchronous = FULL");
	return -1;
}

int store_mailbox_create(struct store *s, uint64_t account_id, const char *name,
			 const char **error_r)
{
	if (!valid_name(name))
		return STORE_MAILBOX_BAD_NAME;
	name = canonical(name);
	sqlite3 *db = store_account(s, account_id, error_r);
	if (db == NULL || begin(s, db, error_r) != 0)
		return STORE_MAILBOX_FAILED;
	/* Parents first: "a/b/c" makes "a" and "a/b" when missing. */
	char path[STORE_MAX_MAILBOX_NAME + 1];
	snprintf(path, sizeof(path), "%s", name);
	for (char *slash = strchr(path, '/'); slash;
	     slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		if (insert_mailbox(s, db, canonical(path), 1) < 0)
			return rollback(s, db, error_r, STORE_MAILBOX_FAILED);
		*slash = '/';
	}
	int made = insert_mailbox(s, db, name, 1);
	if (made < 0)
		return rollback(s, db, error_r, STORE_MAILBOX_FAILED);
	if (made == 0)
		return rollback(s, db, error_r, STORE_MAILBOX_EXISTS);
	return commit(s, db, error_r) == 0 ? STORE_MAILBOX_OK
					   : STORE_MAILBOX_FAILED;
}

/* Removes every message of a mailbox (recording nothing: the mailbox
 * itself goes away). */
static int drop_messages(struct store *s, sqlite3 *db, sqlite3_int64 mailbox)
{
	sqlite3_stmt *st = store_prepare(
		s, db,
		"DELETE FROM message WHERE mailbox_id = ? RETURNING content_id");
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox);
	/* Collect first: content rows change while RETURNING runs. */
	sqlite3_int64 *ids = NULL;
	size_t n = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			ids = xrealloc(ids, cap * sizeof(*ids));
		}
		ids[n++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	int ret = rc == SQLITE_DONE ? 0 : -1;
	if (ret != 0)
		store_db_error(s, db, "drop messages");
	for (size_t i = 0; i < n && ret == 0; i++)
		ret = store_content_ref(s, db, ids[i], -1);
	free(ids);
	return ret;
}

static int count_children(struct store *s, sqlite3 *db, const char *name,
			  sqlite3_int64 *count_r)
{
	sqlite3_stmt *st = store_prepare(
		s, db,
		"SELECT count(*) FROM mailbox WHERE substr(name, 1, ?) = ?");
	if (st == NULL)
		return -1;
	char prefix[STORE_MAX_MAILBOX_NAME + 2];
	snprintf(prefix, sizeof(prefix), "%s/", name);
	sqlite3_bind_int(st, 1, (int)strlen(prefix));
	sqlite3_bind_text(st, 2, prefix, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	*count_r = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW) {
		store_db_error(s, db, "children");
		return -1;
	}
	return 0;
}

int store_mailbox_delete(struct store *s, uint64_t account_id, const char *name,
			 const char **error_r)
{
	if (is_inbox(name))
		return STORE_MAILBOX_INBOX;
	sqlite3 *db = store_account(s, account_id, error_r);
	if (db == NULL || begin(s, db, error_r) != 0)
		return STORE_MAILBOX_FAILED;
	struct store_mailbox m;
	int found = store_mailbox_get(s, account_id, name, &m, error_r);
	if (found < 0)
		return rollback(s, db, error_r, STORE_MAILBOX_FAILED);
	if (found == 0)
		return rollback(s, db, error_r, STORE_MAILBOX_NONEXISTENT);
	sqlite3_int64 children;
	if (count_children(s, db, m.name, &children) != 0)
		return rollback(s, db, error_r, STORE_MAILBOX_FAILED);
	if (children > 0)
		return rollback(s, db, error_r, STORE_MAILBOX_HAS_CHILDREN);
	if (drop_messages(s, db, (sqlite3_int64)m.id) != 0)
		return rollback(s, db, error_r, STORE_MAILBOX_FAILED);
	sqlite3_stmt *st =
		store_prepare(s, db, "DELETE FROM mailbox WHERE id = ?");
	if (st == NULL)
		return rollback(s, db, error_r, STORE_MAILBOX_FAILED);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)m.id);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE) {
		st = store_prepare(s, db,
				   "DELETE FROM expunged WHERE mailbox_id = ?");
		if (st == NULL)
			return rollback(s, db, error_r, STORE_MAILBOX_FAILED);
		sqlite3_bind_int64(st, 1, (sqlite3_int64)m.id);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
	}
	if (rc != SQLITE_DONE) {
		store_db_error(s, db, "delete");
		return rollback(s, db, error_r, STORE_MAILBOX_FAILED);
	}
	return commit(s, db, error_r) == 0 ? STORE_MAILBOX_OK
					   : STORE_MAILBOX_FAILED;
}

/* Moves every message of INBOX into the new mailbox `to`, which keeps
 * their UIDs; INBOX records them as expunged. */
static int rename_inbox(struct store *s, sqlite3 *db, const char *to,
			const struct store_mailbox *inbox)
{
	int made = insert_mailbox(s, db, to, inbox->uidnext);
	if (made <= 0)
		return made < 0 ? STORE_MAILBOX_FAILED : STORE_MAILBOX_EXISTS;
	sqlite3_int64 modseq = store_next_modseq(s, db);
	if (modseq == 0)
		return STORE_MAILBOX_FAILED;
	sqlite3_stmt *st = store_prepare(
		s, db,
		"INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq)"
		" SELECT mailbox_id, uid, ? FROM message WHERE mailbox_id = ?");
	if (st == NULL)
		return STORE_MAILBOX_FAILED;
	sqlite3_bind_int64(st, 1, modseq);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)inbox->id);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		goto fail;
	st = store_prepare(
		s, db,
		"UPDATE message SET mailbox_id = (SELECT id FROM mailbox"
		" WHERE name = ?), modseq = ? WHERE mailbox_id = ?");
	if (st == NULL)
		return STORE_MAILBOX_FAILED;
	sqlite3_bind_text(st, 1, to, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, modseq);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)inbox->id);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		goto fail;
	st = store_prepare(
		s, db,
		"UPDATE mailbox SET highestmodseq = ? WHERE id = ? OR"
		" name = ?");
	if (st == NULL)
		return STORE_MAILBOX_FAILED;
	sqlite3_bind_int64(st, 1, modseq);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)inbox->id);
	sqlite3_bind_text(st, 3, to, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		goto fail;
	return STORE_MAILBOX_OK;
fail:
	store_db_error(s, db, "rename INBOX");
	return STORE_MAILBOX_FAILED;
}

int store_mailbox_rename(struct store *s, uint64_t account_id, const char *from,
			 const char *to, const char **error_r)
{
	if (!valid_name(to) || is_inbox(to))
		return is_inbox(to) ? STORE_MAILBOX_EXISTS
				    : STORE_MAILBOX_BAD_NAME;
	sqlite3 *db = store_account(s, account_id, error_r);
	if (db == NULL || begin(s, db, error_r) != 0)
		return STORE_MAILBOX_FAILED;
	struct store_mailbox m, other;
	int found = store_mailbox_get(s, account_id, from, &m, error_r);
	if (found <= 0)
		return rollback(s, db, error_r,
				found < 0 ? STORE_MAILBOX_FAILED
					  : STORE_MAILBOX_NONEXISTENT);
	found = store_mailbox_get(s, account_id, to, &other, error_r);
	if (found != 0)
		return rollback(s, db, error_r,
				found < 0 ? STORE_MAILBOX_FAILED
					  : STORE_MAILBOX_EXISTS);
	/* Missing parents of the new name. */
	char path[STORE_MAX_MAILBOX_NAME + 1];
	snprintf(path, sizeof(path), "%s", to);
	for (char *slash = strchr(path, '/'); slash;
	     slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		if (strcmp(path, m.name) == 0) /* into itself */
			return rollback(s, db, error_r, STORE_MAILBOX_BAD_NAME);
		if (insert_mailbox(s, db, canonical(path), 1) < 0)
			return rollback(s, db, error_r, STORE_MAILBOX_FAILED);
		*slash = '/';
	}
	if (strcmp(m.name, "INBOX") == 0) {
		int r = rename_inbox(s, db, to, &m);
		if (r != STORE_MAILBOX_OK)
			return rollback(s, db, error_r, r);
		return commit(s, db, error_r) == 0 ? STORE_MAILBOX_OK
						   : STORE_MAILBOX_FAILED;
	}
	/* The mailbox and every child: "a" -> "b" renames "a/x" -> "b/x";
	 * subscriptions follow. */
	const char *sql[] = {
		"UPDATE mailbox SET name = ?2 || substr(name, length(?1) + 1)"
		" WHERE name = ?1 OR substr(name, 1, length(?1) + 1) = ?1 || '/'",
		"UPDATE OR REPLACE subscription SET name = ?2 ||"
		" substr(name, length(?1) + 1) WHERE name = ?1 OR"
		" substr(name, 1, length(?1) + 1) = ?1 || '/'",
	};
	for (size_t i = 0; i < ARRAY_SIZE(sql); i++) {
		sqlite3_stmt *st = store_prepare(s, db, sql[i]);
		if (st == NULL)
			return rollback(s, db, error_r, STORE_MAILBOX_FAILED);
		sqlite3_bind_text(st, 1, m.name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, to, -1, SQLITE_STATIC);
		int rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE) {
			store_db_error(s, db, "rename");
			return rollback(s, db, error_r,
					rc == SQLITE_CONSTRAINT
						? STORE_MAILBOX_EXISTS
						: STORE_MAILBOX_FAILED);
		}
	}
	return commit(s, db, error_r) == 0 ? STORE_MAILBOX_OK
					   : STORE_MAILBOX_FAILED;
}

int store_mailbox_subscribe(struct store *s, uint64_t account_id,
			    const char *name, bool subscribe,
			    const char **error_r)
{
	if (!valid_name(name))
		return STORE_MAILBOX_BAD_NAME;
	sqlite3 *db = store_account(s, account_id, error_r);
	if (db == NULL)
		return STORE_MAILBOX_FAILED;
	sqlite3_stmt *st = store_prepare(
		s, db,
		subscribe
			? "INSERT OR IGNORE INTO subscription (name) VALUES (?)"
			: "DELETE FROM subscription WHERE name = ?");
	if (st == NULL) {
		*error_r = s->error;
		return STORE_MAILBOX_FAILED;
	}
	sqlite3_bind_text(st, 1, canonical(name), -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*error_r = store_db_error(s, db, "subscribe");
		return STORE_MAILBOX_FAILED;
	}
	return STORE_MAILBOX_OK;
}

static void row_to_message(sqlite3_stmt *st, struct store_message *m)
{
	m->uid = (uint32_t)sqlite3_column_int64(st, 0);
	m->modseq = (uint64_t)sqlite3_column_int64(st, 1);
	m->flags = (unsigned)sqlite3_column_int(st, 2);
	m->keywords = (const char *)sqlite3_column_text(st, 3);
	if (m->keywords == NULL)
		m->keywords = "";
	m->internal_date = (time_t)sqlite3_column_int64(st, 4);
	m->size = (uint64_t)sqlite3_column_int64(st, 5);
}

#define MESSAGE_COLUMNS \
	"m.uid, m.modseq, m.flags, m.keywords, m.internal_date, c.size"

int store_messages(struct store *s, uint64_t account_id, uint64_t mailbox_id,
		   uint64_t since,
		   void (*fn)(const struct store_message *m, void *context),
		   void *context, const char **error_r)
{
	sqlite3 *db = store_account(s, account_id, error_r);
	if (db == NULL)
		return -1;
	sqlite3_stmt *st = store_prepare(
		s, db,
		"SELECT " MESSAGE_COLUMNS " FROM message m"
		" JOIN content c ON c.id = m.content_id"
		" WHERE m.mailbox_id = ? AND m.modseq > ? ORDER BY m.uid");
	if (st == NULL) {
		*error_r = s->error;
		return -1;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)mailbox_id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)since);
	int rc;
	struct store_message m;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		row_to_message(st, &m);
		fn(&m, context);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*error_r = store_db_error(s, db, "messages");
		return -1;
	}
	return 0;
}

int store_expunged(struct store *s, uint64_t account_id, uint64_t mailbox_id,
		   uint64_t since, void (*fn)(uint32_t uid, void *context),
		   void *context, const char **error_r)
{
	sqlite3 *db = store_account(s, account_id, error_r);
	if (db == NULL)
		return -1;
	sqlite3_stmt *st =
		store_prepare(s, db,
			      "SELECT uid FROM expunged WHERE mailbox_id = ?"
			      " AND modseq > ? ORDER BY uid");
	if (st == NULL) {
		*error_r = s->error;
		return -1;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)mailbox_id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)since);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		fn((uint32_t)sqlite3_column_int64(st, 0), context);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*error_r = store_db_error(s, db, "expunged");
		return -1;
	}
	return 0;
}

int store_message_cached(struct store *s, uint64_t account_id,
			 uint64_t mailbox_id, uint32_t uid,
			 enum store_cached_field field, struct buf *out,
			 const char **error_r)
{
	static const char *const sql[] = {
		[STORE_CACHED_ENVELOPE] =
			"SELECT c.envelope FROM message m JOIN content c ON"
			" c.id = m.content_id WHERE m.mailbox_id = ? AND m.uid = ?",
		[STORE_CACHED_BODYSTRUCTURE] =
			"SELECT c.bodystructure FROM message m JOIN content c ON"
			" c.id = m.content_id WHERE m.mailbox_id = ? AND m.uid = ?",
		[STORE_CACHED_BODY] =
			"SELECT c.body FROM message m JOIN content c ON"
			" c.id = m.content_id WHERE m.mailbox_id = ? AND m.uid = ?",
	};
	sqlite3 *db = store_account(s, account_id, error_r);
	if (db == NULL)
		return -1;
	sqlite3_stmt *st = store_prepare(s, db, sql[field]);
	if (st == NULL) {
		*error_r = s->error;
		return -1;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		buf_append(out, sqlite3_column_blob(st, 0),
			   (size_t)sqlite3_column_bytes(st, 0));
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	*error_r = store_db_error(s, db, "cached");
	return -1;
}

/* Parses a space-separated keyword list into a sorted, de-duplicated
 * array of slices pointing into text. */
static size_t split_keywords(const char *text, struct slice *out, size_t max)
{
	size_t n = 0;
	const char *p = text;
	while (*p && n < max) {
		while (*p == ' ')
			p++;
		const char *start = p;
		while (*p && *p != ' ')
			p++;
		if (p > start)
			out[n++] = slice_make(start, (size_t)(p - start));
	}
	/* Insertion sort, case-insensitive; drop duplicates. */
	for (size_t i = 1; i < n; i++) {
		struct slice k = out[i];
		size_t j = i;
		while (j > 0) {
			size_t len = out[j - 1].n < k.n ? out[j - 1].n : k.n;
			int c = strncasecmp((const char *)out[j - 1].p,
					    (const char *)k.p, len);
			if (c < 0 || (c == 0 && out[j - 1].n <= k.n))
				break;
			out[j] = out[j - 1];
			j--;
		}
		out[j] = k;
	}
	size_t w = 0;
	for (size_t i = 0; i < n; i++)
		if (w == 0 ||
		    !(out[w - 1].n == out[i].n &&
		      strncasecmp((const char *)out[w - 1].p,
				  (const char *)out[i].p, out[i].n) == 0))
			out[w++] = out[i];
	return w;
}

#define STORE_MAX_KEYWORDS 128

static bool has_keyword(const struct slice *list, size_t n, struct slice k)
{
	for (size_t i = 0; i < n; i++)
		if (list[i].n == k.n &&
		    strncasecmp((const char *)list[i].p, (const char *)k.p,
				k.n) == 0)
			return true;
	return false;
}

/* The new keyword text of a message after op. */
static void apply_keywords(const char *old, enum store_flags_op op,
			   const char *given, struct buf *out)
{
	struct slice a[STORE_MAX_KEYWORDS], b[STORE_MAX_KEYWORDS],
		r[2 * STORE_MAX_KEYWORDS];
	size_t na = split_keywords(old, a, STORE_MAX_KEYWORDS);
	size_t nb = split_keywords(given, b, STORE_MAX_KEYWORDS);
	size_t nr = 0;
	if (op == STORE_FLAGS_SET) {
		memcpy(r, b, nb * sizeof(*b));
		nr = nb;
	} else if (op == STORE_FLAGS_ADD) {
		memcpy(r, a, na * sizeof(*a));
		nr = na;
		for (size_t i = 0; i < nb && nr < STORE_MAX_KEYWORDS; i++)
			if (!has_keyword(r, nr, b[i]))
				r[nr++] = b[i];
	} else {
		for (size_t i = 0; i < na; i++)
			if (!has_keyword(b, nb, a[i]))
				r[nr++] = a[i];
	}
	buf_reset(out);
	for (size_t i = 0; i < nr; i++) {
		if (i > 0)
			buf_append(out, " ", 1);
		buf_append_slice(out, r[i]);
	}
	/* Keep a canonical order so that equal sets compare equal. */
	char *copy = xstrndup(out->p ? (const char *)out->p : "", out->n);
	struct slice sorted[2 * STORE_MAX_KEYWORDS];
	size_t ns = split_keywords(copy, sorted, ARRAY_SIZE(sorted));
	buf_reset(out);
	for (size_t i = 0; i < ns; i++) {
		if (i > 0)
			buf_append(out, " ", 1);
		buf_append_slice(out, sorted[i]);
	}
	free(copy);
}

int store_flags_update(struct store *s, uint64_t account_id,
		       uint64_t mailbox_id, const uint32_t *uids, size_t count,
		       enum store_flags_op op, unsigned flags,
		       const char *keywords, uint64_t unchangedsince,
		       void (*changed)(const struct store_message *m,
				       void *context),
		       void (*failed)(uint32_t uid, void *context),
		       void *context, const char **error_r)
{
	sqlite3 *db = store_account(s, account_id, error_r);
	if (db == NULL || begin(s, db, error_r) != 0)
		return -1;
	sqlite3_stmt *get = store_prepare(
		s, db,
		"SELECT " MESSAGE_COLUMNS " FROM message m JOIN content c ON"
		" c.id = m.content_id WHERE m.mailbox_id = ? AND m.uid = ?");
	sqlite3_stmt *put =
		store_prepare(s, db,
			      "UPDATE message SET flags = ?, keywords = ?,"
			      " modseq = ? WHERE mailbox_id = ? AND uid = ?");
	if (get == NULL || put == NULL) {
		sqlite3_finalize(get);
		sqlite3_finalize(put);
		return rollback(s, db, error_r, -1);
	}
	sqlite3_int64 modseq = 0;
	struct buf kw;
	buf_init(&kw, 64 * 1024);
	int ret = 0;
	for (size_t i = 0; i < count && ret == 0; i++) {
		sqlite3_reset(get);
		sqlite3_bind_int64(get, 1, (sqlite3_int64)mailbox_id);
		sqlite3_bind_int64(get, 2, uids[i]);
		int rc = sqlite3_step(get);
		if (rc == SQLITE_DONE)
			continue; /* expunged meanwhile */
		if (rc != SQLITE_ROW) {
			store_db_error(s, db, "flags");
			ret = -1;
			break;
		}
		struct store_message m;
		row_to_message(get, &m);
		if (m.modseq > unchangedsince) {
			if (failed != NULL)
				failed(m.uid, context);
			continue;
		}
		unsigned nf = op == STORE_FLAGS_SET   ? flags
			      : op == STORE_FLAGS_ADD ? (m.flags | flags)
						      : (m.flags & ~flags);
		nf &= STORE_FLAGS_ALL;
		apply_keywords(m.keywords, op, keywords ? keywords : "", &kw);
		const char *nk = buf_cstr(&kw);
		if (nf == m.flags && strcmp(nk, m.keywords) == 0)
			continue;
		if (modseq == 0 && (modseq = store_next_modseq(s, db)) == 0) {
			ret = -1;
			break;
		}
		sqlite3_reset(put);
		sqlite3_bind_int(put, 1, (int)nf);
		sqlite3_bind_text(put, 2, nk, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(put, 3, modseq);
		sqlite3_bind_int64(put, 4, (sqlite3_int64)mailbox_id);
		sqlite3_bind_int64(put, 5, m.uid);
		if (sqlite3_step(put) != SQLITE_DONE) {
			store_db_error(s, db, "flags");
			ret = -1;
			break;
		}
		m.flags = nf;
		m.keywords = nk;
		m.modseq = (uint64_t)modseq;
		if (changed != NULL)
			changed(&m, context);
	}
	sqlite3_finalize(get);
	sqlite3_finalize(put);
	buf_free(&kw);
	if (ret == 0 && modseq > 0) {
		sqlite3_stmt *st = store_prepare(
			s, db,
			"UPDATE mailbox SET highestmodseq = ? WHERE id = ?");
		if (st == NULL)
			ret = -1;
		else {
			sqlite3_bind_int64(st, 1, modseq);
			sqlite3_bind_int64(st, 2, (sqlite3_int64)mailbox_id);
			if (sqlite3_step(st) != SQLITE_DONE)
				ret = -1;
			sqlite3_finalize(st);
		}
	}
	if (ret != 0)
		return rollback(s, db, error_r, -1);
	return commit(s, db, error_r);
}

/* Removes one message row, recording the expunge; returns 1 when it
 * existed. */
static int expunge_one(struct store *s, sqlite3 *db, sqlite3_int64 mailbox,
		       uint32_t uid, sqlite3_int64 modseq, bool only_deleted)
{
	sqlite3_stmt *st = store_prepare(
		s, db,
		only_deleted
			? "DELETE FROM message WHERE mailbox_id = ? AND uid = ?"
			  " AND flags & 8 != 0 RETURNING content_id"
			: "DELETE FROM message WHERE mailbox_id = ? AND uid = ?"
			  " RETURNING content_id");
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox);
	sqlite3_bind_int64(st, 2, uid);
	int rc = sqlite3_step(st);
	sqlite3_int64 content =
		rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	if (rc == SQLITE_ROW)
		rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		store_db_error(s, db, "expunge");
		return -1;
	}
	if (content == 0)
		return 0;
	st = store_prepare(
		s, db,
		"INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq)"
		" VALUES (?, ?, ?)");
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox);
	sqlite3_bind_int64(st, 2, uid);
	sqlite3_bind_int64(st, 3, modseq);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		store_db_error(s, db, "expunge");
		return -1;
	}
	if (store_content_ref(s, db, content, -1) != 0)
		return -1;
	return 1;
}

/* Moves one message row to another mailbox under a new UID, recording
 * the expunge in the source. */
static int move_one(struct store *s, sqlite3 *db, sqlite3_int64 from,
		    uint32_t uid, sqlite3_int64 to, sqlite3_int64 new_uid,
		    sqlite3_int64 modseq)
{
	sqlite3_stmt *st = store_prepare(
		s, db,
		"UPDATE message SET mailbox_id = ?, uid = ?, modseq = ?"
		" WHERE mailbox_id = ? AND uid = ?");
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, to);
	sqlite3_bind_int64(st, 2, new_uid);
	sqlite3_bind_int64(st, 3, modseq);
	sqlite3_bind_int64(st, 4, from);
	sqlite3_bind_int64(st, 5, uid);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE) {
		st = store_prepare(
			s, db,
			"INSERT OR REPLACE INTO expunged (mailbox_id, uid,"
			" modseq) VALUES (?, ?, ?)");
		if (st == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, from);
		sqlite3_bind_int64(st, 2, uid);
		sqlite3_bind_int64(st, 3, modseq);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
	}
	if (rc != SQLITE_DONE) {
		store_db_error(s, db, "move");
		return -1;
	}
	return 0;
}

static int set_highestmodseq(struct store *s, sqlite3 *db,
			     sqlite3_int64 mailbox, sqlite3_int64 modseq)
{
	sqlite3_stmt *st = store_prepare(
		s, db, "UPDATE mailbox SET highestmodseq = ? WHERE id = ?");
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, modseq);
	sqlite3_bind_int64(st, 2, mailbox);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		store_db_error(s, db, "highestmodseq");
		return -1;
	}
	return 0;
}

static void collect_uid(uint32_t uid, void *context)
{
	struct buf *b = context;
	buf_append(b, &uid, sizeof(uid));
}

int store_expunge(struct store *s, uint64_t account_id, uint64_t mailbox_id,
		  const uint32_t *uids, size_t count,
		  void (*fn)(uint32_t uid, void *context), void *context,
		  const char **error_r)
{
	sqlite3 *db = store_account(s, account_id, error_r);
	if (db == NULL || begin(s, db, error_r) != 0)
		return -1;
	/* Without a UID list: every \Deleted message. */
	struct buf all;
	buf_init(&all, SIZE_MAX);
	if (uids == NULL) {
		sqlite3_stmt *st = store_prepare(
			s, db,
			"SELECT uid FROM message WHERE mailbox_id = ?"
			" AND flags & 8 != 0 ORDER BY uid");
		if (st == NULL) {
			buf_free(&all);
			return rollback(s, db, error_r, -1);
		}
		sqlite3_bind_int64(st, 1, (sqlite3_int64)mailbox_id);
		while (sqlite3_step(st) == SQLITE_ROW)
			collect_uid((uint32_t)sqlite3_column_int64(st, 0),
				    &all);
		sqlite3_finalize(st);
		uids = (const uint32_t *)all.p;
		count = all.n / sizeof(uint32_t);
	}
	sqlite3_int64 modseq = 0;
	int ret = 0;
	for (size_t i = 0; i < count; i++) {
		if (modseq == 0 && (modseq = store_next_modseq(s, db)) == 0) {
			ret = -1;
			break;
		}
		int r = expunge_one(s, db, (sqlite3_int64)mailbox_id, uids[i],
				    modseq, true);
		if (r < 0) {
			ret = -1;
			break;
		}
		if (r > 0 && fn != NULL)
			fn(uids[i], context);
	}
	if (ret == 0 && modseq > 0)
		ret = set_highestmodseq(s, db, (sqlite3_int64)mailbox_id,
					modseq);
	buf_free(&all);
	if (ret != 0)
		return rollback(s, db, error_r, -1);
	return commit(s, db, error_r);
}

int store_copy(struct store *s, uint64_t account_id, uint64_t from_mailbox,
	       const uint32_t *uids, size_t count, uint64_t to_mailbox,
	       bool move, uint32_t *new_uids_r, uint32_t *uidvalidity_r,
	       const char **error_r)
{
	sqlite3 *db = store_account(s, account_id, error_r);
	if (db == NULL || begin(s, db, error_r) != 0)
		return -1;
	sqlite3_stmt *target = store_prepare(
		s, db, "SELECT uidnext, uidvalidity FROM mailbox WHERE id = ?");
	sqlite3_stmt *source = store_prepare(
		s, db,
		"SELECT flags, keywords, internal_date, content_id FROM message"
		" WHERE mailbox_id = ? AND uid = ?");
	sqlite3_stmt *insert = store_prepare(
		s, db,
		"INSERT INTO message (mailbox_id, uid, modseq, flags, keywords,"
		" internal_date, content_id) VALUES (?, ?, ?, ?, ?, ?, ?)");
	int ret = -1;
	if (target == NULL || source == NULL || insert == NULL)
		goto out;
	sqlite3_bind_int64(target, 1, (sqlite3_int64)to_mailbox);
	if (sqlite3_step(target) != SQLITE_ROW) {
		store_db_error(s, db, "copy: no target");
		goto out;
	}
	sqlite3_int64 uidnext = sqlite3_column_int64(target, 0);
	*uidvalidity_r = (uint32_t)sqlite3_column_int64(target, 1);
	sqlite3_int64 modseq = store_next_modseq(s, db);
	if (modseq == 0)
		goto out;
	for (size_t i = 0; i < count; i++) {
		new_uids_r[i] = 0;
		sqlite3_reset(source);
		sqlite3_bind_int64(source, 1, (sqlite3_int64)from_mailbox);
		sqlite3_bind_int64(source, 2, uids[i]);
		int rc = sqlite3_step(source);
		if (rc == SQLITE_DONE)
			continue;
		if (rc != SQLITE_ROW || uidnext >= UINT32_MAX) {
			store_db_error(s, db, "copy");
			goto out;
		}
		sqlite3_int64 content = sqlite3_column_int64(source, 3);
		if (move) {
			/* The row itself moves, so the webmail's Email keeps
			 * its id; the source records the expunge. */
			int r = move_one(s, db, (sqlite3_int64)from_mailbox,
					 uids[i], (sqlite3_int64)to_mailbox,
					 uidnext, modseq);
			if (r < 0)
				goto out;
			new_uids_r[i] = (uint32_t)uidnext++;
			continue;
		}
		sqlite3_reset(insert);
		sqlite3_bind_int64(insert, 1, (sqlite3_int64)to_mailbox);
		sqlite3_bind_int64(insert, 2, uidnext);
		sqlite3_bind_int64(insert, 3, modseq);
		/* A move keeps \Deleted as it was; a copy too (RFC 3501). */
		sqlite3_bind_int(insert, 4, sqlite3_column_int(source, 0));
		sqlite3_bind_text(insert, 5,
				  (const char *)sqlite3_column_text(source, 1),
				  -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(insert, 6, sqlite3_column_int64(source, 2));
		sqlite3_bind_int64(insert, 7, content);
		if (sqlite3_step(insert) != SQLITE_DONE) {
			store_db_error(s, db, "copy");
			goto out;
		}
		if (store_content_ref(s, db, content, 1) != 0)
			goto out;
		new_uids_r[i] = (uint32_t)uidnext++;
	}
	sqlite3_stmt *st = store_prepare(
		s, db,
		"UPDATE mailbox SET uidnext = ?, highestmodseq = ? WHERE id = ?");
	if (st == NULL)
		goto out;
	sqlite3_bind_int64(st, 1, uidnext);
	sqlite3_bind_int64(st, 2, modseq);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)to_mailbox);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		store_db_error(s, db, "copy");
		goto out;
	}
	if (move &&
	    set_highestmodseq(s, db, (sqlite3_int64)from_mailbox, modseq) != 0)
		goto out;
	ret = 0;
out:
	sqlite3_finalize(target);
	sqlite3_finalize(source);
	sqlite3_finalize(insert);
	if (ret != 0)
		return rollback(s, db, error_r, -1);
	return commit(s, db, error_r);
}

int store_message_bytes(struct store *s, uint64_t account_id,
			uint64_t mailbox_id, uint32_t uid, uint8_t **data_r,
			size_t *size_r, const char **error_r)
{
	sqlite3 *db = store_account(s, account_id, error_r);
	if (db == NULL)
		return -1;
	sqlite3_stmt *st = store_prepare(
		s, db,
		"SELECT c.blob, c.size FROM message m JOIN content c ON"
		" c.id = m.content_id WHERE m.mailbox_id = ? AND m.uid = ?");
	if (st == NULL) {
		*error_r = s->error;
		return -1;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_finalize(st);
		if (rc == SQLITE_DONE)
			return 0;
		*error_r = store_db_error(s, db, "message");
		return -1;
	}
	char blob[64];
	snprintf(blob, sizeof(blob), "%s", sqlite3_column_text(st, 0));
	uint64_t size = (uint64_t)sqlite3_column_int64(st, 1);
	sqlite3_finalize(st);
	return store_blob_read(s, blob, size, data_r, size_r, error_r);
}

/* Escapes a LIKE pattern: the value is matched literally. */
static void like_pattern(const char *value, struct buf *out)
{
	buf_append(out, "%", 1);
	for (const char *p = value; *p; p++) {
		if (*p == '%' || *p == '_' || *p == '\\')
			buf_append(out, "\\", 1);
		buf_append(out, p, 1);
	}
	buf_append(out, "%", 1);
}

static bool contains_ci(struct slice hay, const char *needle)
{
	size_t n = strlen(needle);
	if (n == 0)
		return true;
	for (size_t i = 0; i + n <= hay.n; i++)
		if (strncasecmp((const char *)hay.p + i, needle, n) == 0)
			return true;
	return false;
}

/* The messages whose text was too long for the index are searched in
 * their bytes. */
static int search_long_texts(struct store *s, sqlite3 *db, uint64_t mailbox_id,
			     bool headers_too, const char *value,
			     void (*fn)(uint32_t uid, void *context),
			     void *context)
{
	sqlite3_stmt *st = store_prepare(
		s, db,
		"SELECT m.uid, c.blob, c.size FROM message m JOIN content c ON"
		" c.id = m.content_id WHERE m.mailbox_id = ? AND"
		" c.text_complete = 0");
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)mailbox_id);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		uint32_t uid = (uint32_t)sqlite3_column_int64(st, 0);
		char blob[64];
		snprintf(blob, sizeof(blob), "%s", sqlite3_column_text(st, 1));
		uint64_t size = (uint64_t)sqlite3_column_int64(st, 2);
		uint8_t *data;
		size_t n;
		const char *error;
		if (store_blob_read(s, blob, size, &data, &n, &error) != 1)
			continue;
		struct mime_message *m = mime_parse(slice_make(data, n));
		struct buf text;
		buf_init(&text, SIZE_MAX);
		mime_body_text(m, &text);
		if (headers_too) {
			struct mime_section h = {.kind = MIME_SECTION_HEADER};
			mime_section_bytes(m, &h, &text);
		}
		if (contains_ci(buf_slice(&text), value))
			fn(uid, context);
		buf_free(&text);
		mime_free(&m);
		free(data);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		store_db_error(s, db, "search");
		return -1;
	}
	return 0;
}

static size_t utf8_chars(const char *p)
{
	size_t n = 0;
	for (; *p; p++)
		if (((unsigned char)*p & 0xc0) != 0x80)
			n++;
	return n;
}

int store_search_text(struct store *s, uint64_t account_id, uint64_t mailbox_id,
		      enum store_text_field field, const char *value,
		      void (*fn)(uint32_t uid, void *context), void *context,
		      const char **error_r)
{
	static const char *const columns[] = {
		[STORE_TEXT_ALL] = NULL,	  [STORE_TEXT_BODY] = "body",
		[STORE_TEXT_FROM] = "hdr_from",	  [STORE_TEXT_TO] = "hdr_to",
		[STORE_TEXT_CC] = "hdr_cc",	  [STORE_TEXT_BCC] = "hdr_bcc",
		[STORE_TEXT_SUBJECT] = "subject",
	};
	static const char *const all[] = {"headers", "body"};
	sqlite3 *db = store_account(s, account_id, error_r);
	if (db == NULL)
		return -1;
	const char *column = columns[field];
	struct buf sql, arg;
	buf_init(&sql, 4096);
	buf_init(&arg, 64 * 1024);
	bool match_all = *value == '\0';
	if (match_all) {
		buf_append_cstr(
			&sql, "SELECT uid FROM message WHERE mailbox_id = ?1");
	} else if (utf8_chars(value) >= 3) {
		/* The trigram index answers substrings of three characters
		 * or more: the value as one phrase. */
		if (column != NULL)
			buf_printf(&arg, "%s : ", column);
		buf_append(&arg, "\"", 1);
		for (const char *p = value; *p; p++) {
			if (*p == '"')
				buf_append(&arg, "\"", 1);
			buf_append(&arg, p, 1);
		}
		buf_append(&arg, "\"", 1);
		/* The index first, then the mailbox: a join would run the
		 * MATCH once per message. */
		buf_append_cstr(&sql,
				"SELECT uid FROM message WHERE"
				" mailbox_id = ?1 AND content_id IN"
				" (SELECT rowid FROM fts WHERE fts MATCH ?2)");
	} else {
		/* Shorter values: a scan of the same text. */
		like_pattern(value, &arg);
		buf_append_cstr(&sql, "SELECT m.uid FROM message m JOIN fts ON"
				      " fts.rowid = m.content_id WHERE"
				      " m.mailbox_id = ?1 AND (");
		if (column != NULL) {
			buf_printf(&sql, "fts.%s LIKE ?2 ESCAPE '\\'", column);
		} else {
			for (size_t i = 0; i < ARRAY_SIZE(all); i++)
				buf_printf(&sql, "%sfts.%s LIKE ?2 ESCAPE '\\'",
					   i ? " OR " : "", all[i]);
		}
		buf_append_cstr(&sql, ")");
	}
	sqlite3_stmt *st = store_prepare(s, db, buf_cstr(&sql));
	int ret = -1;
	if (st != NULL) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)mailbox_id);
		if (!match_all)
			sqlite3_bind_text(st, 2, buf_cstr(&arg), -1,
					  SQLITE_TRANSIENT);
		int rc;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW)
			fn((uint32_t)sqlite3_column_int64(st, 0), context);
		if (rc == SQLITE_DONE)
			ret = 0;
		else
			store_db_error(s, db, "search");
		sqlite3_finalize(st);
	}
	if (ret == 0 && !match_all &&
	    (field == STORE_TEXT_ALL || field == STORE_TEXT_BODY))
		ret = search_long_texts(s, db, mailbox_id,
					field == STORE_TEXT_ALL, value, fn,
					context);
	buf_free(&sql);
	buf_free(&arg);
	if (ret != 0)
		*error_r = s->error;
	return ret;
}

int store_sort_keys_each(struct store *s, uint64_t account_id,
			 uint64_t mailbox_id,
			 void (*fn)(const struct store_sort_keys *k,
				    void *context),
			 void *context, const char **error_r)
{
	sqlite3 *db = store_account(s, account_id, error_r);
	if (db == NULL)
		return -1;
	sqlite3_stmt *st = store_prepare(
		s, db,
		"SELECT m.uid, m.internal_date, c.sent_date, c.size,"
		" c.base_subject, c.sort_from, c.sort_to, c.sort_cc,"
		" c.display_from, c.display_to, c.message_id, c.in_reply_to,"
		" c.refs_header, c.subject, c.sent_day FROM message m JOIN content c ON"
		" c.id = m.content_id WHERE m.mailbox_id = ? ORDER BY m.uid");
	if (st == NULL) {
		*error_r = s->error;
		return -1;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)mailbox_id);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_sort_keys k;
		k.uid = (uint32_t)sqlite3_column_int64(st, 0);
		k.internal_date = (time_t)sqlite3_column_int64(st, 1);
		k.sent_date = sqlite3_column_type(st, 2) == SQLITE_NULL
				      ? -1
				      : sqlite3_column_int64(st, 2);
		k.size = (uint64_t)sqlite3_column_int64(st, 3);
		const char **texts[] = {&k.base_subject, &k.sort_from,
					&k.sort_to,	 &k.sort_cc,
					&k.display_from, &k.display_to,
					&k.message_id,	 &k.in_reply_to,
					&k.references,	 &k.subject};
		for (size_t i = 0; i < ARRAY_SIZE(texts); i++) {
			const unsigned char *t =
				sqlite3_column_text(st, 4 + (int)i);
			*texts[i] = t ? (const char *)t : "";
		}
		k.sent_day = sqlite3_column_type(st, 14) == SQLITE_NULL
				     ? INT64_MIN
				     : sqlite3_column_int64(st, 14);
		fn(&k, context);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*error_r = store_db_error(s, db, "sort keys");
		return -1;
	}
	return 0;
}

int store_account_usage(struct store *s, uint64_t account_id, uint64_t *bytes_r,
			const char **error_r)
{
	sqlite3 *db = store_account(s, account_id, error_r);
	if (db == NULL)
		return -1;
	sqlite3_stmt *st = store_prepare(
		s, db,
		"SELECT coalesce(sum(c.size), 0) FROM message m JOIN content c"
		" ON c.id = m.content_id");
	if (st == NULL) {
		*error_r = s->error;
		return -1;
	}
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*bytes_r = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW) {
		*error_r = store_db_error(s, db, "usage");
		return -1;
	}
	return 0;
}

int store_mailbox_counts(struct store *s, uint64_t account_id,
			 uint64_t mailbox_id, struct store_mailbox_counts *out,
			 const char **error_r)
{
	sqlite3 *db = store_account(s, account_id, error_r);
	if (db == NULL)
		return -1;
	sqlite3_stmt *st = store_prepare(
		s, db,
		"WITH here AS (SELECT m.flags, coalesce(c.thread_id, c.id) AS t"
		" FROM message m JOIN content c ON c.id = m.content_id"
		" WHERE m.mailbox_id = ?1),"
		" unread AS (SELECT DISTINCT coalesce(c.thread_id, c.id) AS t"
		" FROM message m JOIN content c ON c.id = m.content_id"
		" WHERE m.flags & 17 = 0 AND coalesce(c.thread_id, c.id) IN"
		" (SELECT t FROM here))"
		" SELECT (SELECT count(*) FROM here),"
		" (SELECT count(*) FROM here WHERE flags & 17 = 0),"
		" (SELECT count(DISTINCT t) FROM here),"
		" (SELECT count(*) FROM unread)");
	if (st == NULL) {
		*error_r = s->error;
		return -1;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)mailbox_id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		out->emails = (uint64_t)sqlite3_column_int64(st, 0);
		out->unread_emails = (uint64_t)sqlite3_column_int64(st, 1);
		out->threads = (uint64_t)sqlite3_column_int64(st, 2);
		out->unread_threads = (uint64_t)sqlite3_column_int64(st, 3);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW) {
		*error_r = store_db_error(s, db, "mailbox counts");
		return -1;
	}
	return 0;
}

struct destroyed {
	uint64_t email_id, mailbox_id;
	uint32_t uid;
};

int store_emails_destroy(struct store *s, uint64_t account_id,
			 const uint64_t *ids, size_t count,
			 void (*fn)(uint64_t email_id, uint64_t mailbox_id,
				    uint32_t uid, void *context),
			 void *context, const char **error_r)
{
	sqlite3 *db = store_account(s, account_id, error_r);
	if (db == NULL || begin(s, db, error_r) != 0)
		return -1;
	sqlite3_stmt *find = store_prepare(
		s, db,
		"SELECT mailbox_id, uid FROM message WHERE email_id = ?");
	struct destroyed *done = xcalloc(count ? count : 1, sizeof(*done));
	size_t n = 0;
	sqlite3_int64 modseq = 0;
	int ret = find == NULL ? -1 : 0;
	for (size_t i = 0; i < count && ret == 0; i++) {
		sqlite3_reset(find);
		sqlite3_bind_int64(find, 1, (sqlite3_int64)ids[i]);
		int rc = sqlite3_step(find);
		if (rc == SQLITE_DONE)
			continue;
		if (rc != SQLITE_ROW) {
			store_db_error(s, db, "destroy");
			ret = -1;
			break;
		}
		sqlite3_int64 mailbox = sqlite3_column_int64(find, 0);
		uint32_t uid = (uint32_t)sqlite3_column_int64(find, 1);
		if (modseq == 0 && (modseq = store_next_modseq(s, db)) == 0) {
			ret = -1;
			break;
		}
		int r = expunge_one(s, db, mailbox, uid, modseq, false);
		if (r < 0 ||
		    (r > 0 && set_highestmodseq(s, db, mailbox, modseq) != 0)) {
			ret = -1;
			break;
		}
		if (r > 0)
			done[n++] = (struct destroyed){ids[i],
						       (uint64_t)mailbox, uid};
	}
	sqlite3_finalize(find);
	if (ret != 0 || commit(s, db, error_r) != 0) {
		if (ret != 0)
			rollback(s, db, error_r, STORE_MAILBOX_FAILED);
		free(done);
		return -1;
	}
	for (size_t i = 0; i < n && fn != NULL; i++)
		fn(done[i].email_id, done[i].mailbox_id, done[i].uid, context);
	free(done);
	return 0;
}
