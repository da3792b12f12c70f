/* store.c: the meta store (domains, users, queue) and the credential store
 * of the SQLite backend. */
#include "core/common.h"

#include "store/sqlite/internal.h"

#include "core/utf8.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static const char meta_schema[] =
	"CREATE TABLE IF NOT EXISTS domain ("
	" name TEXT PRIMARY KEY,"
	" created INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS user ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" address TEXT NOT NULL UNIQUE,"
	" domain TEXT NOT NULL REFERENCES domain(name),"
	" created INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS queue ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" sender TEXT NOT NULL,"
	" blob TEXT NOT NULL,"
	" size INTEGER NOT NULL,"
	" created INTEGER NOT NULL,"
	" next_attempt INTEGER NOT NULL,"
	" attempts INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE IF NOT EXISTS queue_recipient ("
	" queue_id INTEGER NOT NULL REFERENCES queue(id) ON DELETE CASCADE,"
	" address TEXT NOT NULL,"
	" status INTEGER NOT NULL DEFAULT 0,"
	" PRIMARY KEY (queue_id, address));"
	/* Webmail brands: the look of the login page and the domains whose
	 * users it serves. */
	"CREATE TABLE IF NOT EXISTS brand ("
	" name TEXT PRIMARY KEY,"
	" display TEXT NOT NULL,"
	" color TEXT NOT NULL,"
	" logo BLOB,"
	" logo_type TEXT,"
	" created INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS brand_domain ("
	" domain TEXT PRIMARY KEY REFERENCES domain(name) ON DELETE CASCADE,"
	" brand TEXT NOT NULL REFERENCES brand(name) ON DELETE CASCADE);"
	"PRAGMA user_version = 1;";

static const char credentials_schema[] =
	"CREATE TABLE IF NOT EXISTS password ("
	" account_id INTEGER PRIMARY KEY,"
	" phc TEXT NOT NULL,"
	" changed INTEGER NOT NULL);"
	/* Webmail sessions: only the SHA-256 of each token is kept. */
	"CREATE TABLE IF NOT EXISTS web_session ("
	" hash BLOB PRIMARY KEY,"
	" account_id INTEGER NOT NULL,"
	" created INTEGER NOT NULL,"
	" last_used INTEGER NOT NULL,"
	" remote TEXT NOT NULL,"
	" user_agent TEXT NOT NULL,"
	" host TEXT NOT NULL DEFAULT '');"
	"CREATE INDEX IF NOT EXISTS web_session_account ON"
	" web_session (account_id);" STORE_TWOFACTOR_SCHEMA
	"PRAGMA user_version = 1;";

/* Another process holds the write lock: wait briefly and retry. SQLite's
 * own busy timeout sleeps in steps of up to 100 ms, far longer than our
 * transactions last, which stalls a whole delivery batch; this waits 50 us
 * at first, doubling to 2 ms, up to STORE_BUSY_TIMEOUT_MS in all. */
static int store_busy_wait(void *context, int count)
{
	(void)context;
	unsigned long step = 50ul << (count < 6 ? count : 6);
	if (step > 2000)
		step = 2000;
	/* Counting every step at its maximum keeps the bound conservative. */
	if ((unsigned long)count * 2000 >= STORE_BUSY_TIMEOUT_MS * 1000ul)
		return 0;
	usleep((useconds_t)step);
	return 1;
}

/* dijk_contains(text, word): whether word occurs in text without case,
 * Unicode's lower case included (SQLite's LIKE folds ASCII only). For
 * search words too short for the trigram index. */
static void sql_contains(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	const uint8_t *text = sqlite3_value_text(argv[0]);
	const uint8_t *word = sqlite3_value_text(argv[1]);
	if (text == NULL || word == NULL) {
		sqlite3_result_int(ctx, 0);
		return;
	}
	struct slice t = slice_make(text, (size_t)sqlite3_value_bytes(argv[0]));
	struct slice w = slice_make(word, (size_t)sqlite3_value_bytes(argv[1]));
	sqlite3_result_int(ctx, w.n == 0 || utf8_fold_contains(t, w));
}

/* The default VFS with one change: a relative path stays relative.
 * SQLite otherwise turns it into an absolute one and looks at every
 * directory on the way up (lstat), which a child that gave up root
 * cannot do above a data directory kept in a closed place (a 0700
 * /tmp/... of root's, say). Every dijk process works from inside the
 * data directory and never changes directory (privsep.h), so the relative
 * name keeps meaning the same file; locks go by inode, not by name. */
static sqlite3_vfs relative_vfs;
static int (*system_full_pathname)(sqlite3_vfs *, const char *, int, char *);

static int relative_full_pathname(sqlite3_vfs *vfs, const char *name, int size,
				  char *out)
{
	if (name[0] == '/')
		return system_full_pathname(vfs, name, size, out);
	size_t n = strlen(name);
	if (size < 0 || n + 1 > (size_t)size)
		return SQLITE_CANTOPEN;
	memcpy(out, name, n + 1);
	return SQLITE_OK;
}

static pthread_once_t relative_vfs_once = PTHREAD_ONCE_INIT;

static void relative_vfs_register(void)
{
	sqlite3_vfs *base = sqlite3_vfs_find(NULL);
	if (base == NULL)
		return;
	relative_vfs = *base;
	relative_vfs.zName = "dijk-relative";
	relative_vfs.pNext = NULL;
	system_full_pathname = base->xFullPathname;
	relative_vfs.xFullPathname = relative_full_pathname;
	sqlite3_vfs_register(&relative_vfs, 1);
}

int store_sqlite_open(const char *path, sqlite3 **db_r, char *error,
		      size_t error_size)
{
	pthread_once(&relative_vfs_once, relative_vfs_register);
	sqlite3 *db = NULL;
	/* SQLite would create a new database 0644 less the umask, which
	 * leaves the group read-only; its journals copy the database's
	 * mode. A new file made here gets 0660 less the umask instead.
	 * O_EXCL matters: closing any descriptor of a file drops every
	 * POSIX lock this process holds on it, so an existing database
	 * (open in another thread's connection) is never opened here. */
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		      0660);
	if (fd >= 0)
		close(fd);
	int rc = sqlite3_open_v2(path, &db,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
					 SQLITE_OPEN_NOMUTEX,
				 NULL);
	if (rc != SQLITE_OK) {
		snprintf(error, error_size, "%s: %s", path,
			 db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		sqlite3_close(db);
		return -1;
	}
	sqlite3_busy_handler(db, store_busy_wait, NULL);
	sqlite3_create_function(db, "dijk_contains", 2,
				SQLITE_UTF8 | SQLITE_DETERMINISTIC |
					SQLITE_INNOCUOUS,
				NULL, sql_contains, NULL, NULL);
	/* WAL with full sync: a committed transaction is on disk. */
	char *err = NULL;
	rc = sqlite3_exec(db,
			  "PRAGMA journal_mode = WAL;"
			  "PRAGMA synchronous = FULL;"
			  "PRAGMA foreign_keys = ON;",
			  NULL, NULL, &err);
	if (rc != SQLITE_OK) {
		snprintf(error, error_size, "%s: %s", path,
			 err ? err : sqlite3_errstr(rc));
		sqlite3_free(err);
		sqlite3_close(db);
		return -1;
	}
	*db_r = db;
	return 0;
}

int store_sqlite_open_schema(const char *path, const char *schema,
			     bool owner_only, sqlite3 **db_r, char *error,
			     size_t error_size)
{
	mode_t old = owner_only ? umask(077) : 0;
	int ret = store_sqlite_open(path, db_r, error, error_size);
	if (owner_only)
		umask(old);
	if (ret != 0)
		return -1;
	char *err = NULL;
	if (sqlite3_exec(*db_r, schema, NULL, NULL, &err) != SQLITE_OK) {
		snprintf(error, error_size, "%s: %s", path,
			 err ? err : sqlite3_errmsg(*db_r));
		sqlite3_free(err);
		sqlite3_close(*db_r);
		*db_r = NULL;
		return -1;
	}
	return 0;
}

const char *store_db_error(struct store *s, sqlite3 *db, const char *what)
{
	snprintf(s->error, sizeof(s->error), "%s: %s", what,
		 sqlite3_errmsg(db));
	return s->error;
}

int store_exec(struct store *s, sqlite3 *db, const char *sql)
{
	char *err = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
		snprintf(s->error, sizeof(s->error), "%s",
			 err ? err : sqlite3_errmsg(db));
		sqlite3_free(err);
		return -1;
	}
	return 0;
}

int store_normalize(struct slice in, char *out, size_t size)
{
	if (in.n >= size)
		return -1;
	for (size_t i = 0; i < in.n; i++) {
		uint8_t c = in.p[i];
		if (c == '\0')
			return -1;
		out[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	out[in.n] = '\0';
	return 0;
}

static char create_error[600];

/* Blobs are spread over this many directories by the first two hex
 * digits of their names (mail.c, blob_relative_path). */
#define STORE_BLOB_FANOUT 256

/* Directory and file modes of the store leave the group to the umask:
 * 077 keeps everything its owner's (admin commands, a family started by
 * an ordinary user), 007 shares it with dijk's group (privsep.h). */
static int make_dir(const char *path)
{
	if (mkdir(path, 0770) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

int store_create(const char *data_dir, const char **error_r)
{
	char path[4096];
	const char *subdirs[] = {"accounts", "blobs", "blobs/tmp"};
	/* Then the blobs' fan-out directories, blobs/00 to blobs/ff (a
	 * blob's first two hex digits): a delivery need not make one. */
	for (size_t i = 0; i < ARRAY_SIZE(subdirs) + STORE_BLOB_FANOUT; i++) {
		if (i < ARRAY_SIZE(subdirs))
			snprintf(path, sizeof(path), "%s/%s", data_dir,
				 subdirs[i]);
		else
			snprintf(path, sizeof(path), "%s/blobs/%02zx", data_dir,
				 i - ARRAY_SIZE(subdirs));
		if (make_dir(path) != 0) {
			snprintf(create_error, sizeof(create_error), "%s: %s",
				 path, strerror(errno));
			*error_r = create_error;
			return -1;
		}
	}
	sqlite3 *db;
	snprintf(path, sizeof(path), "%s/meta.db", data_dir);
	if (store_sqlite_open_schema(path, meta_schema, false, &db,
				     create_error, sizeof(create_error)) != 0) {
		*error_r = create_error;
		return -1;
	}
	sqlite3_close(db);
	struct store_credentials *c = store_credentials_open(data_dir, error_r);
	if (c == NULL)
		return -1;
	store_credentials_close(&c);
	return 0;
}

struct store *store_open(const char *data_dir, const char **error_r)
{
	static char open_error[600];
	char path[4096];
	snprintf(path, sizeof(path), "%s/meta.db", data_dir);
	if (access(path, F_OK) != 0) {
		snprintf(open_error, sizeof(open_error),
			 "%s: no store here (run 'dijk init --data %s')",
			 data_dir, data_dir);
		*error_r = open_error;
		return NULL;
	}
	struct store *s = xcalloc(1, sizeof(*s));
	s->data_dir = xstrdup(data_dir);
	s->data_fd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->data_fd < 0) {
		snprintf(open_error, sizeof(open_error), "%s: %s", data_dir,
			 strerror(errno));
		*error_r = open_error;
		store_close(&s);
		return NULL;
	}
	if (store_sqlite_open(path, &s->meta, open_error, sizeof(open_error)) !=
	    0) {
		*error_r = open_error;
		store_close(&s);
		return NULL;
	}
	if (store_meta_upgrade(s, error_r) != 0) {
		snprintf(open_error, sizeof(open_error), "%s", *error_r);
		*error_r = open_error;
		store_close(&s);
		return NULL;
	}
	return s;
}

void store_close(struct store **sp)
{
	struct store *s = *sp;
	if (s == NULL)
		return;
	for (size_t i = 0; i < STORE_ACCOUNT_CACHE; i++)
		sqlite3_close(s->accounts[i].db);
	sqlite3_close(s->meta);
	if (s->data_fd >= 0)
		close(s->data_fd);
	free(s->data_dir);
	free(s);
	*sp = NULL;
}

static bool valid_domain_name(const char *d)
{
	size_t n = strlen(d);
	if (n == 0 || n > 253 || d[0] == '.' || d[0] == '-' || d[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)d[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.' || c >= 0x80))
			return false;
		if (c == '.' && d[i + 1] == '.')
			return false;
	}
	return true;
}

int store_domain_add(struct store *s, const char *domain, const char **error_r)
{
	char name[256];
	if (store_normalize(slice_cstr(domain), name, sizeof(name)) != 0 ||
	    !valid_domain_name(name)) {
		snprintf(s->error, sizeof(s->error),
			 "'%s' is not a domain name", domain);
		*error_r = s->error;
		return -1;
	}
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(
		    s->meta, "INSERT INTO domain (name, created) VALUES (?, ?)",
		    -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_db_error(s, s->meta, "domain add");
		return -1;
	}
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)time(NULL));
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_CONSTRAINT) {
		snprintf(s->error, sizeof(s->error), "domain %s exists already",
			 name);
		*error_r = s->error;
		return -1;
	}
	if (rc != SQLITE_DONE) {
		*error_r = store_db_error(s, s->meta, "domain add");
		return -1;
	}
	return 0;
}

int store_domain_del(struct store *s, const char *domain, const char **error_r)
{
	char name[256];
	if (store_normalize(slice_cstr(domain), name, sizeof(name)) != 0) {
		*error_r = "domain name too long";
		return -1;
	}
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s->meta,
			       "SELECT count(*) FROM user WHERE domain = ?", -1,
			       &st, NULL) != SQLITE_OK) {
		*error_r = store_db_error(s, s->meta, "domain del");
		return -1;
	}
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	sqlite3_int64 users = 0;
	if (sqlite3_step(st) == SQLITE_ROW)
		users = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (users > 0) {
		snprintf(s->error, sizeof(s->error),
			 "domain %s still has %lld user(s); delete them first",
			 name, (long long)users);
		*error_r = s->error;
		return -1;
	}
	if (sqlite3_prepare_v2(s->meta, "DELETE FROM domain WHERE name = ?", -1,
			       &st, NULL) != SQLITE_OK) {
		*error_r = store_db_error(s, s->meta, "domain del");
		return -1;
	}
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*error_r = store_db_error(s, s->meta, "domain del");
		return -1;
	}
	if (sqlite3_changes(s->meta) == 0) {
		snprintf(s->error, sizeof(s->error), "no domain %s", name);
		*error_r = s->error;
		return -1;
	}
	return 0;
}

int store_domain_exists(struct store *s, struct slice domain,
			const char **error_r)
{
	char name[256];
	if (store_normalize(domain, name, sizeof(name)) != 0)
		return 0;
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s->meta, "SELECT 1 FROM domain WHERE name = ?",
			       -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_db_error(s, s->meta, "domain lookup");
		return -1;
	}
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	*error_r = store_db_error(s, s->meta, "domain lookup");
	return -1;
}

int store_domain_list(struct store *s,
		      void (*fn)(const char *domain, void *context),
		      void *context, const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s->meta, "SELECT name FROM domain ORDER BY name",
			       -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_db_error(s, s->meta, "domain list");
		return -1;
	}
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		fn((const char *)sqlite3_column_text(st, 0), context);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*error_r = store_db_error(s, s->meta, "domain list");
		return -1;
	}
	return 0;
}

/* Checks local@domain: a plain dot-atom local part of safe characters. */
static bool valid_user_local(const char *local, size_t n)
{
	if (n == 0 || n > 64 || local[0] == '.' || local[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)local[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      strchr(".-_+=!#$&'*/?^{}~", c) != NULL || c >= 0x80))
			return false;
		if (c == '.' && local[i + 1] == '.')
			return false;
	}
	return true;
}

int store_user_add(struct store *s, const char *address, uint64_t *account_id_r,
		   const char **error_r)
{
	char addr[STORE_MAX_ADDRESS];
	const char *at;
	if (store_normalize(slice_cstr(address), addr, sizeof(addr)) != 0 ||
	    (at = strrchr(addr, '@')) == NULL ||
	    !valid_user_local(addr, (size_t)(at - addr)) ||
	    !valid_domain_name(at + 1)) {
		snprintf(s->error, sizeof(s->error),
			 "'%s' is not an address (local@domain)", address);
		*error_r = s->error;
		return -1;
	}
	const char *domain = at + 1;
	int exists = store_domain_exists(s, slice_cstr(domain), error_r);
	if (exists < 0)
		return -1;
	if (exists == 0) {
		snprintf(s->error, sizeof(s->error),
			 "no domain %s (add it with 'dijk domain add %s')",
			 domain, domain);
		*error_r = s->error;
		return -1;
	}
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s->meta,
			       "INSERT INTO user (address, domain, created)"
			       " VALUES (?, ?, ?)",
			       -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_db_error(s, s->meta, "user add");
		return -1;
	}
	sqlite3_bind_text(st, 1, addr, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, domain, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)time(NULL));
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_CONSTRAINT) {
		snprintf(s->error, sizeof(s->error), "user %s exists already",
			 addr);
		*error_r = s->error;
		return -1;
	}
	if (rc != SQLITE_DONE) {
		*error_r = store_db_error(s, s->meta, "user add");
		return -1;
	}
	uint64_t id = (uint64_t)sqlite3_last_insert_rowid(s->meta);
	if (store_account_db(s, id, true) == NULL) {
		*error_r = s->error;
		return -1;
	}
	*account_id_r = id;
	return 0;
}

int store_user_lookup(struct store *s, struct slice address,
		      uint64_t *account_id_r, const char **error_r)
{
	char addr[STORE_MAX_ADDRESS];
	if (store_normalize(address, addr, sizeof(addr)) != 0)
		return 0;
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s->meta, "SELECT id FROM user WHERE address = ?",
			       -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_db_error(s, s->meta, "user lookup");
		return -1;
	}
	sqlite3_bind_text(st, 1, addr, -1, SQLITE_TRANSIENT);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*account_id_r = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	*error_r = store_db_error(s, s->meta, "user lookup");
	return -1;
}

int store_user_address(struct store *s, uint64_t account_id, char *address_r,
		       size_t size, const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s->meta, "SELECT address FROM user WHERE id = ?",
			       -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_db_error(s, s->meta, "user address");
		return -1;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)account_id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		snprintf(address_r, size, "%s", sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 0;
	snprintf(s->error, sizeof(s->error), "no account %llu",
		 (unsigned long long)account_id);
	*error_r = s->error;
	return -1;
}

int store_user_del(struct store *s, const char *address, const char **error_r)
{
	uint64_t id;
	int found = store_user_lookup(s, slice_cstr(address), &id, error_r);
	if (found < 0)
		return -1;
	if (found == 0) {
		snprintf(s->error, sizeof(s->error), "no user %s", address);
		*error_r = s->error;
		return -1;
	}
	struct store_credentials *c =
		store_credentials_open(s->data_dir, error_r);
	if (c == NULL)
		return -1;
	int ret = store_credentials_delete(c, id, error_r);
	store_credentials_close(&c);
	if (ret != 0)
		return -1;
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s->meta, "DELETE FROM user WHERE id = ?", -1,
			       &st, NULL) != SQLITE_OK) {
		*error_r = store_db_error(s, s->meta, "user del");
		return -1;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*error_r = store_db_error(s, s->meta, "user del");
		return -1;
	}
	if (store_account_remove(s, id) != 0) {
		*error_r = s->error;
		return -1;
	}
	return 0;
}

int store_user_list(struct store *s, const char *domain,
		    void (*fn)(const char *address, uint64_t account_id,
			       void *context),
		    void *context, const char **error_r)
{
	sqlite3_stmt *st;
	const char *sql =
		domain ? "SELECT address, id FROM user WHERE domain = ?"
			 " ORDER BY address"
		       : "SELECT address, id FROM user ORDER BY address";
	if (sqlite3_prepare_v2(s->meta, sql, -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_db_error(s, s->meta, "user list");
		return -1;
	}
	char name[256];
	if (domain != NULL) {
		if (store_normalize(slice_cstr(domain), name, sizeof(name)) !=
		    0) {
			sqlite3_finalize(st);
			return 0;
		}
		sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	}
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		fn((const char *)sqlite3_column_text(st, 0),
		   (uint64_t)sqlite3_column_int64(st, 1), context);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*error_r = store_db_error(s, s->meta, "user list");
		return -1;
	}
	return 0;
}

/* An auth.db whose sessions predate their host gets the column; those
 * sessions have no host and hold nowhere (their users log in again). */
static int sessions_upgrade(sqlite3 *db, char **err_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, "SELECT host FROM web_session LIMIT 0", -1,
			       &st, NULL) == SQLITE_OK) {
		sqlite3_finalize(st);
		return 0;
	}
	return sqlite3_exec(db,
			    "ALTER TABLE web_session ADD COLUMN host TEXT NOT"
			    " NULL DEFAULT ''",
			    NULL, NULL, err_r) == SQLITE_OK
		       ? 0
		       : -1;
}

struct store_credentials *store_credentials_open(const char *data_dir,
						 const char **error_r)
{
	static char open_error[600];
	char path[4096];
	snprintf(path, sizeof(path), "%s/auth.db", data_dir);
	/* Credentials are readable by their owner only, from the first byte. */
	struct store_credentials *c = xcalloc(1, sizeof(*c));
	if (store_sqlite_open_schema(path, credentials_schema, true, &c->db,
				     open_error, sizeof(open_error)) != 0) {
		free(c);
		*error_r = open_error;
		return NULL;
	}
	char *err = NULL;
	if (sessions_upgrade(c->db, &err) != 0) {
		snprintf(open_error, sizeof(open_error), "%s: %s", path, err);
		sqlite3_free(err);
		store_credentials_close(&c);
		*error_r = open_error;
		return NULL;
	}
	return c;
}

void store_credentials_close(struct store_credentials **cp)
{
	struct store_credentials *c = *cp;
	if (c == NULL)
		return;
	sqlite3_close(c->db);
	free(c);
	*cp = NULL;
}

const char *store_credentials_error(struct store_credentials *c,
				    const char *what)
{
	snprintf(c->error, sizeof(c->error), "%s: %s", what,
		 sqlite3_errmsg(c->db));
	return c->error;
}

int store_credentials_set_password(struct store_credentials *c,
				   uint64_t account_id, const char *phc,
				   const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(c->db,
			       "INSERT OR REPLACE INTO password"
			       " (account_id, phc, changed) VALUES (?, ?, ?)",
			       -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_credentials_error(c, "set password");
		return -1;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)account_id);
	sqlite3_bind_text(st, 2, phc, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)time(NULL));
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*error_r = store_credentials_error(c, "set password");
		return -1;
	}
	return 0;
}

int store_credentials_get_password(struct store_credentials *c,
				   uint64_t account_id, char **phc_r,
				   const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(c->db,
			       "SELECT phc FROM password WHERE account_id = ?",
			       -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_credentials_error(c, "get password");
		return -1;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)account_id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*phc_r = xstrdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	*error_r = store_credentials_error(c, "get password");
	return -1;
}

static int session_exec(struct store_credentials *c, const char *sql,
			const uint8_t *hash, int64_t a, int64_t b,
			const char **error_r);

int store_credentials_delete(struct store_credentials *c, uint64_t account_id,
			     const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(c->db,
			       "DELETE FROM password WHERE account_id = ?", -1,
			       &st, NULL) != SQLITE_OK) {
		*error_r = store_credentials_error(c, "delete credentials");
		return -1;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)account_id);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*error_r = store_credentials_error(c, "delete credentials");
		return -1;
	}
	if (store_twofactor_delete_account(c, account_id, error_r) != 0)
		return -1;
	return session_exec(c, "DELETE FROM web_session WHERE account_id = ?",
			    NULL, (int64_t)account_id, -1, error_r) < 0
		       ? -1
		       : 0;
}

/* A one-statement change of auth.db; returns the number of rows changed
 * or -1. */
static int session_exec(struct store_credentials *c, const char *sql,
			const uint8_t *hash, int64_t a, int64_t b,
			const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_credentials_error(c, "session");
		return -1;
	}
	int n = 1;
	if (hash != NULL)
		sqlite3_bind_blob(st, n++, hash, STORE_SESSION_HASH_SIZE,
				  SQLITE_STATIC);
	if (a >= 0)
		sqlite3_bind_int64(st, n++, a);
	if (b >= 0)
		sqlite3_bind_int64(st, n++, b);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*error_r = store_credentials_error(c, "session");
		return -1;
	}
	return sqlite3_changes(c->db);
}

int store_session_add(struct store_credentials *c,
		      const struct store_session *session, const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(c->db,
			       "INSERT INTO web_session (hash, account_id,"
			       " created, last_used, remote, user_agent, host)"
			       " VALUES (?, ?, ?, ?, ?, ?, ?)",
			       -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_credentials_error(c, "session add");
		return -1;
	}
	sqlite3_bind_blob(st, 1, session->hash, STORE_SESSION_HASH_SIZE,
			  SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)session->account_id);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)session->created);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)session->last_used);
	sqlite3_bind_text(st, 5, session->remote, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, session->user_agent, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, session->host, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*error_r = store_credentials_error(c, "session add");
		return -1;
	}
	return 0;
}

int store_session_get(struct store_credentials *c,
		      const uint8_t hash[STORE_SESSION_HASH_SIZE],
		      struct store_session *session_r, const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(c->db,
			       "SELECT account_id, created, last_used, remote,"
			       " user_agent, host FROM web_session"
			       " WHERE hash = ?",
			       -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_credentials_error(c, "session get");
		return -1;
	}
	sqlite3_bind_blob(st, 1, hash, STORE_SESSION_HASH_SIZE, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		memset(session_r, 0, sizeof(*session_r));
		memcpy(session_r->hash, hash, STORE_SESSION_HASH_SIZE);
		session_r->account_id = (uint64_t)sqlite3_column_int64(st, 0);
		session_r->created = (time_t)sqlite3_column_int64(st, 1);
		session_r->last_used = (time_t)sqlite3_column_int64(st, 2);
		snprintf(session_r->remote, sizeof(session_r->remote), "%s",
			 sqlite3_column_text(st, 3));
		snprintf(session_r->user_agent, sizeof(session_r->user_agent),
			 "%s", sqlite3_column_text(st, 4));
		snprintf(session_r->host, sizeof(session_r->host), "%s",
			 sqlite3_column_text(st, 5));
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	*error_r = store_credentials_error(c, "session get");
	return -1;
}

int store_session_touch(struct store_credentials *c,
			const uint8_t hash[STORE_SESSION_HASH_SIZE], time_t now,
			const char **error_r)
{
	return session_exec(c,
			    "UPDATE web_session SET last_used = ?2"
			    " WHERE hash = ?1",
			    hash, (int64_t)now, -1, error_r) < 0
		       ? -1
		       : 0;
}

int store_session_delete(struct store_credentials *c,
			 const uint8_t hash[STORE_SESSION_HASH_SIZE],
			 const char **error_r)
{
	return session_exec(c, "DELETE FROM web_session WHERE hash = ?", hash,
			    -1, -1, error_r);
}

int store_session_delete_others(
	struct store_credentials *c, uint64_t account_id,
	const uint8_t keep_hash[STORE_SESSION_HASH_SIZE], const char **error_r)
{
	return session_exec(c,
			    "DELETE FROM web_session WHERE account_id = ?2"
			    " AND hash != ?1",
			    keep_hash, (int64_t)account_id, -1, error_r);
}

int store_session_expire(struct store_credentials *c, time_t idle_before,
			 time_t created_before, const char **error_r)
{
	return session_exec(c,
			    "DELETE FROM web_session WHERE last_used < ?"
			    " OR created < ?",
			    NULL, (int64_t)idle_before, (int64_t)created_before,
			    error_r);
}
