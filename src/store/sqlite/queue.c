/* queue.c: the outbound queue in meta.db (see store.h).
 *
 * Rows: queue (one per message: sender, blob, when created, attempts, the
 * next attempt's time, the last error, whether the delay notice went out)
 * and queue_recipient (one per remote recipient with its status and last
 * reply). A message leaves the table when no recipient is pending; its
 * blob stays, like every blob, until blobs are reclaimed. */
#include "core/common.h"

#include "store/sqlite/internal.h"

/* Version 2 of meta.db: the queue keeps what each attempt said. */
static const char meta_upgrade_2[] =
	"ALTER TABLE queue ADD COLUMN last_error TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE queue ADD COLUMN delay_notified INTEGER NOT NULL"
	" DEFAULT 0;"
	"ALTER TABLE queue_recipient ADD COLUMN reply TEXT NOT NULL"
	" DEFAULT '';"
	"CREATE INDEX IF NOT EXISTS queue_next ON queue(next_attempt);"
	"PRAGMA user_version = 2;";

static int user_version(struct store *s, int *version_r)
{
	sqlite3_stmt *st = store_prepare(s, s->meta, "PRAGMA user_version");
	if (st == NULL)
		return -1;
	int rc = sqlite3_step(st);
	*version_r = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW) {
		store_db_error(s, s->meta, "schema version");
		return -1;
	}
	return 0;
}

int store_meta_upgrade(struct store *s, const char **error_r)
{
	int version;
	if (user_version(s, &version) != 0)
		goto fail;
	if (version >= 2)
		return 0;
	/* Several processes open the store at once when the server starts:
	 * the first one upgrades, the others find it done. */
	if (store_exec(s, s->meta, "BEGIN IMMEDIATE") != 0)
		goto fail;
	if (user_version(s, &version) != 0)
		goto rollback;
	if (version < 2 && store_exec(s, s->meta, meta_upgrade_2) != 0)
		goto rollback;
	if (store_exec(s, s->meta, "COMMIT") != 0)
		goto rollback;
	return 0;
rollback:
	sqlite3_exec(s->meta, "ROLLBACK", NULL, NULL, NULL);
fail:
	*error_r = s->error;
	return -1;
}

int store_queue_list(struct store *s,
		     void (*fn)(const struct store_queue_info *info,
				void *context),
		     void *context, const char **error_r)
{
	sqlite3_stmt *st = store_prepare(
		s, s->meta,
		"SELECT q.id, q.sender, group_concat(r.address, ','),"
		" q.size, q.created, q.next_attempt, q.attempts, q.last_error"
		" FROM queue q JOIN queue_recipient r ON r.queue_id = q.id"
		" WHERE r.status = 0 GROUP BY q.id ORDER BY q.id");
	if (st == NULL) {
		*error_r = s->error;
		return -1;
	}
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_queue_info info = {
			.id = (uint64_t)sqlite3_column_int64(st, 0),
			.sender = (const char *)sqlite3_column_text(st, 1),
			.recipients = (const char *)sqlite3_column_text(st, 2),
			.size = (uint64_t)sqlite3_column_int64(st, 3),
			.created = (time_t)sqlite3_column_int64(st, 4),
			.next_attempt = (time_t)sqlite3_column_int64(st, 5),
			.attempts = (unsigned)sqlite3_column_int(st, 6),
			.last_error = (const char *)sqlite3_column_text(st, 7),
		};
		fn(&info, context);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*error_r = store_db_error(s, s->meta, "queue list");
		return -1;
	}
	return 0;
}

void store_queue_item_free(struct store_queue_item *item)
{
	free(item->sender);
	free(item->blob);
	for (size_t i = 0; i < item->recipient_count; i++)
		free(item->recipients[i]);
	free(item->recipients);
	memset(item, 0, sizeof(*item));
}

static int load_recipients(struct store *s, struct store_queue_item *item)
{
	sqlite3_stmt *st = store_prepare(s, s->meta,
					 "SELECT address FROM queue_recipient"
					 " WHERE queue_id = ? AND status = 0"
					 " ORDER BY address");
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)item->id);
	size_t cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (item->recipient_count == cap) {
			cap = cap ? cap * 2 : 4;
			item->recipients = xrealloc(item->recipients,
						    cap * sizeof(char *));
		}
		item->recipients[item->recipient_count++] =
			xstrdup((const char *)sqlite3_column_text(st, 0));
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		store_db_error(s, s->meta, "queue recipients");
		return -1;
	}
	return 0;
}

ssize_t store_queue_due(struct store *s, time_t now, const uint64_t *skip,
			size_t skip_count, struct store_queue_item *items_r,
			size_t max, const char **error_r)
{
	sqlite3_stmt *st = store_prepare(
		s, s->meta,
		"SELECT id, sender, blob, size, created, attempts,"
		" delay_notified FROM queue WHERE next_attempt <= ?"
		" ORDER BY next_attempt, id LIMIT ?");
	if (st == NULL) {
		*error_r = s->error;
		return -1;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)(max + skip_count));
	size_t count = 0;
	int rc;
	while (count < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		uint64_t id = (uint64_t)sqlite3_column_int64(st, 0);
		bool skipped = false;
		for (size_t i = 0; i < skip_count; i++)
			skipped |= skip[i] == id;
		if (skipped)
			continue;
		struct store_queue_item *it = &items_r[count++];
		memset(it, 0, sizeof(*it));
		it->id = id;
		it->sender = xstrdup((const char *)sqlite3_column_text(st, 1));
		it->blob = xstrdup((const char *)sqlite3_column_text(st, 2));
		it->size = (uint64_t)sqlite3_column_int64(st, 3);
		it->created = (time_t)sqlite3_column_int64(st, 4);
		it->attempts = (unsigned)sqlite3_column_int(st, 5);
		it->delay_notified = sqlite3_column_int(st, 6) != 0;
	}
	if (count == max)
		rc = SQLITE_DONE;
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		store_db_error(s, s->meta, "queue");
		goto fail;
	}
	for (size_t i = 0; i < count; i++)
		if (load_recipients(s, &items_r[i]) != 0)
			goto fail;
	return (ssize_t)count;
fail:
	for (size_t i = 0; i < count; i++)
		store_queue_item_free(&items_r[i]);
	*error_r = s->error;
	return -1;
}

int store_queue_next(struct store *s, time_t *next_r, const char **error_r)
{
	sqlite3_stmt *st = store_prepare(s, s->meta,
					 "SELECT min(next_attempt) FROM queue");
	if (st == NULL) {
		*error_r = s->error;
		return -1;
	}
	int rc = sqlite3_step(st);
	*next_r = rc == SQLITE_ROW ? (time_t)sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW) {
		*error_r = store_db_error(s, s->meta, "queue");
		return -1;
	}
	return 0;
}

int store_queue_read(struct store *s, const struct store_queue_item *item,
		     uint8_t **data_r, size_t *size_r, const char **error_r)
{
	return store_blob_read(s, item->blob, item->size, data_r, size_r,
			       error_r) < 0
		       ? -1
		       : 0;
}

static int run(struct store *s, sqlite3_stmt *st, const char *what,
	       const char **error_r)
{
	if (st == NULL) {
		*error_r = s->error;
		return -1;
	}
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*error_r = store_db_error(s, s->meta, what);
		return -1;
	}
	return 0;
}

static int put_marks(struct store *s, uint64_t id,
		     const struct store_queue_mark *marks, size_t count,
		     const char **error_r)
{
	if (count == 0)
		return 0;
	sqlite3_stmt *st =
		store_prepare(s, s->meta,
			      "UPDATE queue_recipient SET status = ?, reply = ?"
			      " WHERE queue_id = ? AND address = ?");
	if (st == NULL) {
		*error_r = s->error;
		return -1;
	}
	for (size_t i = 0; i < count; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int(st, 1, (int)marks[i].status);
		sqlite3_bind_text(st, 2, marks[i].reply, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)id);
		sqlite3_bind_text(st, 4, marks[i].address, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE) {
			sqlite3_finalize(st);
			*error_r =
				store_db_error(s, s->meta, "queue recipient");
			return -1;
		}
	}
	sqlite3_finalize(st);
	return 0;
}

int store_queue_mark(struct store *s, uint64_t id,
		     const struct store_queue_mark *marks, size_t count,
		     const char **error_r)
{
	*error_r = NULL;
	if (store_exec(s, s->meta, "BEGIN IMMEDIATE") != 0) {
		*error_r = s->error;
		return -1;
	}
	if (put_marks(s, id, marks, count, error_r) != 0 ||
	    store_exec(s, s->meta, "COMMIT") != 0) {
		if (*error_r == NULL)
			*error_r = s->error;
		sqlite3_exec(s->meta, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	return 0;
}

int store_queue_attempted(struct store *s, uint64_t id,
			  const struct store_queue_mark *marks, size_t count,
			  time_t next_attempt, const char *last_error,
			  bool delay_notified, const char **error_r)
{
	*error_r = NULL;
	if (store_exec(s, s->meta, "BEGIN IMMEDIATE") != 0) {
		*error_r = s->error;
		return -1;
	}
	if (put_marks(s, id, marks, count, error_r) != 0)
		goto fail;
	sqlite3_stmt *st = store_prepare(
		s, s->meta,
		"UPDATE queue SET attempts = attempts + 1, next_attempt = ?,"
		" last_error = ?, delay_notified = ? WHERE id = ?");
	if (st != NULL) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)next_attempt);
		sqlite3_bind_text(st, 2, last_error, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 3, delay_notified);
		sqlite3_bind_int64(st, 4, (sqlite3_int64)id);
	}
	if (run(s, st, "queue attempt", error_r) != 0)
		goto fail;
	st = store_prepare(s, s->meta,
			   "DELETE FROM queue WHERE id = ? AND NOT EXISTS"
			   " (SELECT 1 FROM queue_recipient"
			   "  WHERE queue_id = ? AND status = 0)");
	if (st != NULL) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)id);
	}
	if (run(s, st, "queue attempt", error_r) != 0)
		goto fail;
	if (store_exec(s, s->meta, "COMMIT") != 0) {
		*error_r = s->error;
		goto fail;
	}
	return 0;
fail:
	sqlite3_exec(s->meta, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

int store_queue_flush(struct store *s, const char **error_r)
{
	return run(
		s,
		store_prepare(s, s->meta, "UPDATE queue SET next_attempt = 0"),
		"queue flush", error_r);
}

int store_queue_delete(struct store *s, uint64_t id, const char **error_r)
{
	sqlite3_stmt *st =
		store_prepare(s, s->meta, "DELETE FROM queue WHERE id = ?");
	if (st != NULL)
		sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
	if (run(s, st, "queue delete", error_r) != 0)
		return -1;
	return sqlite3_changes(s->meta) > 0 ? 1 : 0;
}
