/* audit.c: the audit log's rows in DATA/audit.db (SQLite, WAL). The file is
 * made 0600 from its first byte: only the auth process and the admin read
 * or write it. */
#include "core/common.h"

#include "store/audit.h"
#include "store/sqlite/internal.h"

static const char audit_schema[] =
	"CREATE TABLE IF NOT EXISTS audit ("
	" id INTEGER PRIMARY KEY,"
	" time INTEGER NOT NULL,"
	" account_id INTEGER NOT NULL,"
	" user TEXT NOT NULL,"
	" protocol TEXT NOT NULL,"
	" remote TEXT NOT NULL,"
	" session TEXT NOT NULL,"
	" action TEXT NOT NULL,"
	" detail TEXT NOT NULL,"
	" mac BLOB NOT NULL);"
	"CREATE INDEX IF NOT EXISTS audit_account ON audit (account_id, id);"
	"CREATE INDEX IF NOT EXISTS audit_time ON audit (time);"
	"PRAGMA user_version = 1;";

struct store_audit {
	sqlite3 *db;
	char error[512];
};

static const char *audit_error(struct store_audit *a, const char *what)
{
	snprintf(a->error, sizeof(a->error), "audit %s: %s", what,
		 sqlite3_errmsg(a->db));
	return a->error;
}

struct store_audit *store_audit_open(const char *data_dir, const char **error_r)
{
	static __thread char open_error[600];
	char path[4096];
	int n = snprintf(path, sizeof(path), "%s/audit.db", data_dir);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		*error_r = "audit: data directory path too long";
		return NULL;
	}
	struct store_audit *a = xcalloc(1, sizeof(*a));
	if (store_sqlite_open_schema(path, audit_schema, true, &a->db,
				     open_error, sizeof(open_error)) != 0) {
		free(a);
		*error_r = open_error;
		return NULL;
	}
	return a;
}

void store_audit_close(struct store_audit **ap)
{
	struct store_audit *a = *ap;
	if (a == NULL)
		return;
	sqlite3_close(a->db);
	free(a);
	*ap = NULL;
}

static int audit_exec(struct store_audit *a, const char *sql,
		      const char **error_r)
{
	if (sqlite3_exec(a->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
		*error_r = audit_error(a, sql);
		return -1;
	}
	return 0;
}

int store_audit_begin(struct store_audit *a, const char **error_r)
{
	return audit_exec(a, "BEGIN IMMEDIATE", error_r);
}

int store_audit_begin_read(struct store_audit *a, const char **error_r)
{
	return audit_exec(a, "BEGIN", error_r);
}

int store_audit_commit(struct store_audit *a, const char **error_r)
{
	return audit_exec(a, "COMMIT", error_r);
}

void store_audit_rollback(struct store_audit *a)
{
	if (!sqlite3_get_autocommit(a->db))
		sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
}

static void column_text(sqlite3_stmt *st, int column, char *out, size_t size)
{
	const unsigned char *t = sqlite3_column_text(st, column);
	int n = sqlite3_column_bytes(st, column);
	size_t len = t == NULL || n < 0 ? 0 : (size_t)n;
	if (len >= size)
		len = size - 1;
	if (len > 0)
		memcpy(out, t, len);
	out[len] = '\0';
}

#define AUDIT_COLUMNS                                                    \
	"id, time, account_id, user, protocol, remote, session, action," \
	" detail, mac"

static void row_read(sqlite3_stmt *st, struct store_audit_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->id = sqlite3_column_int64(st, 0);
	e->time = sqlite3_column_int64(st, 1);
	e->account_id = (uint64_t)sqlite3_column_int64(st, 2);
	column_text(st, 3, e->user, sizeof(e->user));
	column_text(st, 4, e->protocol, sizeof(e->protocol));
	column_text(st, 5, e->remote, sizeof(e->remote));
	column_text(st, 6, e->session, sizeof(e->session));
	column_text(st, 7, e->action, sizeof(e->action));
	column_text(st, 8, e->detail, sizeof(e->detail));
	const void *mac = sqlite3_column_blob(st, 9);
	int n = sqlite3_column_bytes(st, 9);
	/* A MAC of the wrong size stays zero and fails verification. */
	if (mac != NULL && n == STORE_AUDIT_MAC_SIZE)
		memcpy(e->mac, mac, STORE_AUDIT_MAC_SIZE);
}

/* Runs a one-row query whose parameter 1 is value. */
static int one_row(struct store_audit *a, const char *sql, int64_t value,
		   bool bind, struct store_audit_entry *entry_r,
		   const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(a->db, sql, -1, &st, NULL) != SQLITE_OK) {
		*error_r = audit_error(a, "read");
		return -1;
	}
	if (bind)
		sqlite3_bind_int64(st, 1, value);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		row_read(st, entry_r);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	*error_r = audit_error(a, "read");
	return -1;
}

int store_audit_last(struct store_audit *a, struct store_audit_entry *entry_r,
		     const char **error_r)
{
	return one_row(a,
		       "SELECT " AUDIT_COLUMNS
		       " FROM audit ORDER BY id DESC LIMIT 1",
		       0, false, entry_r, error_r);
}

int store_audit_get(struct store_audit *a, int64_t id,
		    struct store_audit_entry *entry_r, const char **error_r)
{
	return one_row(a, "SELECT " AUDIT_COLUMNS " FROM audit WHERE id = ?",
		       id, true, entry_r, error_r);
}

int store_audit_insert(struct store_audit *a, const struct store_audit_entry *e,
		       const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(a->db,
			       "INSERT INTO audit (" AUDIT_COLUMNS
			       ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			       -1, &st, NULL) != SQLITE_OK) {
		*error_r = audit_error(a, "insert");
		return -1;
	}
	sqlite3_bind_int64(st, 1, e->id);
	sqlite3_bind_int64(st, 2, e->time);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)e->account_id);
	sqlite3_bind_text(st, 4, e->user, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, e->protocol, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, e->remote, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, e->session, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, e->action, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 9, e->detail, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 10, e->mac, STORE_AUDIT_MAC_SIZE, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*error_r = audit_error(a, "insert");
		return -1;
	}
	return 0;
}

int store_audit_first_since(struct store_audit *a, int64_t time, int64_t *id_r,
			    const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(a->db,
			       "SELECT MIN(id) FROM audit WHERE time >= ?", -1,
			       &st, NULL) != SQLITE_OK) {
		*error_r = audit_error(a, "read");
		return -1;
	}
	sqlite3_bind_int64(st, 1, time);
	int rc = sqlite3_step(st);
	int found = 0;
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
		*id_r = sqlite3_column_int64(st, 0);
		found = 1;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW) {
		*error_r = audit_error(a, "read");
		return -1;
	}
	return found;
}

int store_audit_delete_through(struct store_audit *a, int64_t last_id,
			       int64_t *count_r, const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(a->db, "DELETE FROM audit WHERE id <= ?", -1,
			       &st, NULL) != SQLITE_OK) {
		*error_r = audit_error(a, "delete");
		return -1;
	}
	sqlite3_bind_int64(st, 1, last_id);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*error_r = audit_error(a, "delete");
		return -1;
	}
	*count_r = sqlite3_changes64(a->db);
	return 0;
}

int store_audit_scan(struct store_audit *a, const struct store_audit_query *q,
		     int (*fn)(const struct store_audit_entry *e,
			       void *context),
		     void *context, const char **error_r)
{
	/* Fixed text with every condition present; a zero parameter turns
	 * its condition off, so no SQL is ever built from input. */
	const char *sql_oldest = "SELECT " AUDIT_COLUMNS " FROM audit"
				 " WHERE (?1 = 0 OR account_id = ?1)"
				 " AND (?2 IS NULL OR user = ?2)"
				 " AND (?3 IS NULL OR action = ?3)"
				 " AND time >= ?4 AND (?5 = 0 OR id < ?5)"
				 " ORDER BY id ASC LIMIT ?6";
	const char *sql_newest = "SELECT " AUDIT_COLUMNS " FROM audit"
				 " WHERE (?1 = 0 OR account_id = ?1)"
				 " AND (?2 IS NULL OR user = ?2)"
				 " AND (?3 IS NULL OR action = ?3)"
				 " AND time >= ?4 AND (?5 = 0 OR id < ?5)"
				 " ORDER BY id DESC LIMIT ?6";
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(a->db, q->newest_first ? sql_newest : sql_oldest,
			       -1, &st, NULL) != SQLITE_OK) {
		*error_r = audit_error(a, "scan");
		return -1;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)q->account_id);
	if (q->user != NULL)
		sqlite3_bind_text(st, 2, q->user, -1, SQLITE_STATIC);
	if (q->action != NULL)
		sqlite3_bind_text(st, 3, q->action, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, q->since);
	sqlite3_bind_int64(st, 5, q->before_id);
	sqlite3_bind_int64(st, 6,
			   q->limit == 0 || q->limit > INT64_MAX
				   ? -1
				   : (sqlite3_int64)q->limit);
	struct store_audit_entry *e = xcalloc(1, sizeof(*e));
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		row_read(st, e);
		if (fn(e, context) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	free(e);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*error_r = audit_error(a, "scan");
		return -1;
	}
	return 0;
}
