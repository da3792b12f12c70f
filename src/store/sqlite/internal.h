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
};

/* Opens a database with dijk's settings (WAL, full sync, busy timeout). */
int store_sqlite_open(const char *path, sqlite3 **db_r, char *error,
		      size_t error_size);
/* Runs statements with no results; returns 0 or -1 with s->error set. */
int store_exec(struct store *s, sqlite3 *db, const char *sql);
/* Sets s->error from the database's last error and returns s->error. */
const char *store_db_error(struct store *s, sqlite3 *db, const char *what);

/* The open index of an account, created with its default mailboxes when
 * create is true. NULL with s->error on failure. */
sqlite3 *store_account_db(struct store *s, uint64_t account_id, bool create);
/* Closes an account's index if open, and removes its files. */
int store_account_remove(struct store *s, uint64_t account_id);

/* Lower-cases ASCII letters of an address or domain into out (size bytes).
 * Returns -1 when it does not fit. */
int store_normalize(struct slice in, char *out, size_t size);

#endif
