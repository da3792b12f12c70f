/* internal.h: what the SQLite backend's files share. Not for use outside
 * src/store/. */
#ifndef DIJK_STORE_SQLITE_INTERNAL_H
#define DIJK_STORE_SQLITE_INTERNAL_H

#include "core/common.h"

#include "store/store.h"

#include <sqlite3.h>

/* Open account indexes kept per store handle. */
#define STORE_ACCOUNT_CACHE   32
#define STORE_BUSY_TIMEOUT_MS 10000

struct store_account {
	uint64_t id;
	sqlite3 *db;
	uint64_t last_used;
};

struct store {
	char *data_dir;
	int data_fd; /* directory, for openat/syncfs */
	sqlite3 *meta;
	struct store_account accounts[STORE_ACCOUNT_CACHE];
	uint64_t use_counter;
	char error[512];
	/* The key of the queue's integrity MACs (queue.key), read on first
	 * use. */
	bool queue_key_loaded;
	uint8_t queue_key[32];
};

/* Opens a database with dijk's settings (WAL, full sync, busy timeout). */
int store_sqlite_open(const char *path, sqlite3 **db_r, char *error,
		      size_t error_size);
/* store_sqlite_open, then the statements of schema. With owner_only, a
 * new file is made readable by its owner alone (umask 077) from its first
 * byte: for auth.db and audit.db. */
int store_sqlite_open_schema(const char *path, const char *schema,
			     bool owner_only, sqlite3 **db_r, char *error,
			     size_t error_size);
/* Runs statements with no results; returns 0 or -1 with s->error set. */
int store_exec(struct store *s, sqlite3 *db, const char *sql);
/* Sets s->error from the database's last error and returns s->error. */
const char *store_db_error(struct store *s, sqlite3 *db, const char *what);

/* The open index of an account, created with its default mailboxes when
 * create is true. NULL with s->error on failure. */
sqlite3 *store_account_db(struct store *s, uint64_t account_id, bool create);
/* An account's existing index, or NULL with *error_r. */
sqlite3 *store_account(struct store *s, uint64_t account_id,
		       const char **error_r);
/* Prepares sql or sets s->error; NULL on failure. */
sqlite3_stmt *store_prepare(struct store *s, sqlite3 *db, const char *sql);
/* Closes an account's index if open, and removes its files. */
int store_account_remove(struct store *s, uint64_t account_id);

/* Seals queue row id (inserted with its recipients in the caller's write
 * transaction) with its integrity MAC. 0, or -1 with s->error. */
int store_queue_seal(struct store *s, uint64_t id);

/* Takes the next MODSEQ of the account (inside the caller's write
 * transaction). Returns 0 with s->error on failure. */
sqlite3_int64 store_next_modseq(struct store *s, sqlite3 *db);
/* Adds delta to a content row's reference count; a row that drops to zero
 * is removed with its full-text entry (its blob file stays: blobs may be
 * shared between accounts and are reclaimed separately). */
int store_content_ref(struct store *s, sqlite3 *db, sqlite3_int64 content_id,
		      int delta);

/* Reads a blob of the given size into a malloc'd buffer. Returns 1, or -1
 * with *error_r. */
int store_blob_read(struct store *s, const char *blob, uint64_t size,
		    uint8_t **data_r, size_t *size_r, const char **error_r);

/* Brings an older meta.db up to the current schema (queue.c). */
int store_meta_upgrade(struct store *s, const char **error_r);

/* Lower-cases ASCII letters of an address or domain into out (size bytes).
 * Returns -1 when it does not fit. */
int store_normalize(struct slice in, char *out, size_t size);

/* The credentials database (auth.db). */
struct store_credentials {
	sqlite3 *db;
	char error[512];
};
/* Sets c->error from the database's last error and returns it. */
const char *store_credentials_error(struct store_credentials *c,
				    const char *what);

/* The second-factor tables of auth.db (twofactor.c): TOTP secrets, their
 * recovery codes and app passwords. Additive (CREATE ... IF NOT EXISTS),
 * so an older auth.db gains them on its next open. */
#define STORE_TWOFACTOR_SCHEMA                               \
	"CREATE TABLE IF NOT EXISTS totp ("                  \
	" account_id INTEGER PRIMARY KEY,"                   \
	" box BLOB NOT NULL,"                                \
	" enabled INTEGER NOT NULL,"                         \
	" last_step INTEGER NOT NULL,"                       \
	" failures INTEGER NOT NULL,"                        \
	" locked_until INTEGER NOT NULL,"                    \
	" created INTEGER NOT NULL);"                        \
	"CREATE TABLE IF NOT EXISTS recovery_code ("         \
	" account_id INTEGER NOT NULL,"                      \
	" hash BLOB NOT NULL,"                               \
	" PRIMARY KEY (account_id, hash));"                  \
	"CREATE TABLE IF NOT EXISTS app_password ("          \
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"             \
	" account_id INTEGER NOT NULL,"                      \
	" name TEXT NOT NULL,"                               \
	" phc TEXT NOT NULL,"                                \
	" created INTEGER NOT NULL,"                         \
	" last_used INTEGER NOT NULL);"                      \
	"CREATE INDEX IF NOT EXISTS app_password_account ON" \
	" app_password (account_id);"
/* Removes the account's TOTP secret, recovery codes and app passwords. */
int store_twofactor_delete_account(struct store_credentials *c,
				   uint64_t account_id, const char **error_r);

#endif
