/* twofactor.c: the second-factor part of auth.db: sealed TOTP secrets with
 * their replay and lock state, hashed recovery codes, app passwords, and
 * the listing of an account's web sessions. Only the auth process opens
 * auth.db; it seals and checks, this file only keeps rows. */
#include "core/common.h"

#include "store/sqlite/internal.h"

static sqlite3_stmt *prepare(struct store_credentials *c, const char *sql,
			     const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_credentials_error(c, "second factor");
		return NULL;
	}
	return st;
}

/* Steps a statement that returns no rows; finalizes it. Returns the rows
 * changed, or -1. */
static int run(struct store_credentials *c, sqlite3_stmt *st,
	       const char **error_r)
{
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*error_r = store_credentials_error(c, "second factor");
		return -1;
	}
	return sqlite3_changes(c->db);
}

static int exec_account(struct store_credentials *c, const char *sql,
			uint64_t account_id, const char **error_r)
{
	sqlite3_stmt *st = prepare(c, sql, error_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)account_id);
	return run(c, st, error_r);
}

int store_session_list(struct store_credentials *c, uint64_t account_id,
		       size_t max,
		       void (*fn)(const struct store_session *session,
				  void *context),
		       void *context, const char **error_r)
{
	sqlite3_stmt *st = prepare(c,
				   "SELECT hash, created, last_used, remote,"
				   " user_agent FROM web_session"
				   " WHERE account_id = ?"
				   " ORDER BY last_used DESC LIMIT ?",
				   error_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)account_id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_session s = {.account_id = account_id};
		if (sqlite3_column_bytes(st, 0) != STORE_SESSION_HASH_SIZE)
			continue;
		memcpy(s.hash, sqlite3_column_blob(st, 0),
		       STORE_SESSION_HASH_SIZE);
		s.created = (time_t)sqlite3_column_int64(st, 1);
		s.last_used = (time_t)sqlite3_column_int64(st, 2);
		snprintf(s.remote, sizeof(s.remote), "%s",
			 sqlite3_column_text(st, 3));
		snprintf(s.user_agent, sizeof(s.user_agent), "%s",
			 sqlite3_column_text(st, 4));
		fn(&s, context);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*error_r = store_credentials_error(c, "session list");
		return -1;
	}
	return 0;
}

int store_totp_get(struct store_credentials *c, uint64_t account_id,
		   struct store_totp *totp_r, const char **error_r)
{
	sqlite3_stmt *st = prepare(c,
				   "SELECT box, enabled, last_step, failures,"
				   " locked_until FROM totp"
				   " WHERE account_id = ?",
				   error_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)account_id);
	int rc = sqlite3_step(st);
	int found = 0;
	if (rc == SQLITE_ROW) {
		memset(totp_r, 0, sizeof(*totp_r));
		int n = sqlite3_column_bytes(st, 0);
		if (n > 0 && (size_t)n <= sizeof(totp_r->box)) {
			memcpy(totp_r->box, sqlite3_column_blob(st, 0),
			       (size_t)n);
			totp_r->box_size = (size_t)n;
		}
		totp_r->enabled = sqlite3_column_int(st, 1) != 0;
		totp_r->last_step = (uint64_t)sqlite3_column_int64(st, 2);
		totp_r->failures = (unsigned)sqlite3_column_int(st, 3);
		totp_r->locked_until = sqlite3_column_int64(st, 4);
		found = 1;
	} else if (rc != SQLITE_DONE) {
		*error_r = store_credentials_error(c, "totp get");
		found = -1;
	}
	sqlite3_finalize(st);
	return found;
}

int store_totp_set(struct store_credentials *c, uint64_t account_id,
		   const struct store_totp *totp, const char **error_r)
{
	sqlite3_stmt *st =
		prepare(c,
			"INSERT OR REPLACE INTO totp (account_id, box, enabled,"
			" last_step, failures, locked_until, created)"
			" VALUES (?, ?, ?, ?, ?, ?, strftime('%s', 'now'))",
			error_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)account_id);
	sqlite3_bind_blob(st, 2, totp->box, (int)totp->box_size, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, totp->enabled ? 1 : 0);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)totp->last_step);
	sqlite3_bind_int(st, 5, (int)totp->failures);
	sqlite3_bind_int64(st, 6, totp->locked_until);
	return run(c, st, error_r) < 0 ? -1 : 0;
}

int store_totp_delete(struct store_credentials *c, uint64_t account_id,
		      const char **error_r)
{
	if (exec_account(c, "DELETE FROM totp WHERE account_id = ?", account_id,
			 error_r) < 0 ||
	    exec_account(c, "DELETE FROM recovery_code WHERE account_id = ?",
			 account_id, error_r) < 0)
		return -1;
	return 0;
}

int store_recovery_set(struct store_credentials *c, uint64_t account_id,
		       const uint8_t (*hashes)[STORE_RECOVERY_HASH_SIZE],
		       size_t count, const char **error_r)
{
	/* All or nothing: a half-replaced set would leave codes the user was
	 * told are gone. */
	if (sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	    SQLITE_OK) {
		*error_r = store_credentials_error(c, "recovery codes");
		return -1;
	}
	int ok = exec_account(c,
			      "DELETE FROM recovery_code WHERE account_id = ?",
			      account_id, error_r) >= 0;
	for (size_t i = 0; ok && i < count; i++) {
		sqlite3_stmt *st = prepare(c,
					   "INSERT INTO recovery_code"
					   " (account_id, hash) VALUES (?, ?)",
					   error_r);
		if (st == NULL) {
			ok = 0;
			break;
		}
		sqlite3_bind_int64(st, 1, (sqlite3_int64)account_id);
		sqlite3_bind_blob(st, 2, hashes[i], STORE_RECOVERY_HASH_SIZE,
				  SQLITE_STATIC);
		ok = run(c, st, error_r) >= 0;
	}
	if (ok && sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
		return 0;
	if (ok)
		*error_r = store_credentials_error(c, "recovery codes");
	sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

int store_recovery_use(struct store_credentials *c, uint64_t account_id,
		       const uint8_t hash[STORE_RECOVERY_HASH_SIZE],
		       const char **error_r)
{
	sqlite3_stmt *st = prepare(c,
				   "DELETE FROM recovery_code"
				   " WHERE account_id = ? AND hash = ?",
				   error_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)account_id);
	sqlite3_bind_blob(st, 2, hash, STORE_RECOVERY_HASH_SIZE, SQLITE_STATIC);
	int n = run(c, st, error_r);
	return n < 0 ? -1 : n > 0 ? 1 : 0;
}

int store_recovery_count(struct store_credentials *c, uint64_t account_id,
			 const char **error_r)
{
	sqlite3_stmt *st = prepare(
		c, "SELECT count(*) FROM recovery_code WHERE account_id = ?",
		error_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)account_id);
	int n = -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	else
		*error_r = store_credentials_error(c, "recovery codes");
	sqlite3_finalize(st);
	return n;
}

int store_app_password_add(struct store_credentials *c, uint64_t account_id,
			   const char *name, const char *phc, time_t created,
			   int64_t *id_r, const char **error_r)
{
	sqlite3_stmt *st = prepare(c,
				   "INSERT INTO app_password (account_id, name,"
				   " phc, created, last_used)"
				   " VALUES (?, ?, ?, ?, 0)",
				   error_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)account_id);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, phc, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)created);
	if (run(c, st, error_r) < 0)
		return -1;
	*id_r = sqlite3_last_insert_rowid(c->db);
	return 0;
}

int store_app_password_list(struct store_credentials *c, uint64_t account_id,
			    void (*fn)(const struct store_app_password *app,
				       void *context),
			    void *context, const char **error_r)
{
	sqlite3_stmt *st = prepare(c,
				   "SELECT id, name, phc, created, last_used"
				   " FROM app_password WHERE account_id = ?"
				   " ORDER BY id",
				   error_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)account_id);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_app_password a = {0};
		a.id = sqlite3_column_int64(st, 0);
		snprintf(a.name, sizeof(a.name), "%s",
			 sqlite3_column_text(st, 1));
		a.phc = (const char *)sqlite3_column_text(st, 2);
		a.created = (time_t)sqlite3_column_int64(st, 3);
		a.last_used = (time_t)sqlite3_column_int64(st, 4);
		fn(&a, context);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*error_r = store_credentials_error(c, "app passwords");
		return -1;
	}
	return 0;
}

int store_app_password_touch(struct store_credentials *c, int64_t id,
			     time_t now, const char **error_r)
{
	sqlite3_stmt *st =
		prepare(c, "UPDATE app_password SET last_used = ? WHERE id = ?",
			error_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
	sqlite3_bind_int64(st, 2, id);
	return run(c, st, error_r) < 0 ? -1 : 0;
}

int store_app_password_delete(struct store_credentials *c, uint64_t account_id,
			      int64_t id, const char **error_r)
{
	sqlite3_stmt *st = prepare(c,
				   "DELETE FROM app_password"
				   " WHERE account_id = ? AND id = ?",
				   error_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)account_id);
	sqlite3_bind_int64(st, 2, id);
	int n = run(c, st, error_r);
	return n < 0 ? -1 : n > 0 ? 1 : 0;
}

int store_twofactor_delete_account(struct store_credentials *c,
				   uint64_t account_id, const char **error_r)
{
	if (store_totp_delete(c, account_id, error_r) != 0 ||
	    exec_account(c, "DELETE FROM app_password WHERE account_id = ?",
			 account_id, error_r) < 0)
		return -1;
	return 0;
}
