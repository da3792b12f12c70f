/* mail.c: account indexes, message blobs, delivery with group commit, and
 * reading messages back, in the SQLite backend.
 *
 * Durability: a batch's blobs are written under temporary names, renamed
 * into place and made durable with one syncfs() of the store's file system;
 * only then are the index rows that make them visible committed (WAL, full
 * sync). A crash before the commit leaves at most an unreferenced blob,
 * never a visible half message. */

#include "core/common.h"

#include "store/sqlite/internal.h"

#include "store/sqlite/meta.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>

#define BLOB_ID_LEN	    32
#define STORE_MAX_BLOB_SIZE (UINT64_C(1) << 34)

static const char account_schema[] =
	"CREATE TABLE IF NOT EXISTS mailbox ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" name TEXT NOT NULL UNIQUE,"
	" special_use TEXT,"
	" uidvalidity INTEGER NOT NULL,"
	" uidnext INTEGER NOT NULL,"
	" highestmodseq INTEGER NOT NULL,"
	/* The first UID no IMAP session has claimed as \Recent. */
	" recent_uid INTEGER NOT NULL DEFAULT 1);"
	"CREATE TABLE IF NOT EXISTS subscription ("
	" name TEXT PRIMARY KEY);"
	/* One row per distinct message body in this account; messages in
	 * several mailboxes (copies) share it, and so do its cached IMAP
	 * structures and its full-text entry (fts rowid = content id). */
	"CREATE TABLE IF NOT EXISTS content ("
	" id INTEGER PRIMARY KEY,"
	" blob TEXT NOT NULL,"
	" size INTEGER NOT NULL,"
	" refs INTEGER NOT NULL DEFAULT 0,"
	" envelope TEXT,"
	" bodystructure TEXT,"
	" body TEXT,"
	" sent_date INTEGER,"
	" sent_day INTEGER,"
	" subject TEXT,"
	" base_subject TEXT,"
	" hdr_from TEXT,"
	" hdr_to TEXT,"
	" hdr_cc TEXT,"
	" hdr_bcc TEXT,"
	" sort_from TEXT,"
	" sort_to TEXT,"
	" sort_cc TEXT,"
	" display_from TEXT,"
	" display_to TEXT,"
	" message_id TEXT,"
	" in_reply_to TEXT,"
	" refs_header TEXT,"
	" has_attachment INTEGER NOT NULL DEFAULT 0,"
	" text_complete INTEGER NOT NULL DEFAULT 1,"
	/* The conversation: the content id of its first message (NULL in
	 * indexes from before threads: then the content's own id). */
	" thread_id INTEGER);"
	/* Every Message-ID seen in the account (a message's own, and those
	 * it answers or refers to), with the thread it belongs to. */
	"CREATE TABLE IF NOT EXISTS thread_ref ("
	" message_id TEXT PRIMARY KEY,"
	" thread_id INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS message ("
	" id INTEGER PRIMARY KEY,"
	" mailbox_id INTEGER NOT NULL REFERENCES mailbox(id),"
	" uid INTEGER NOT NULL,"
	" modseq INTEGER NOT NULL,"
	" flags INTEGER NOT NULL DEFAULT 0,"
	" keywords TEXT NOT NULL DEFAULT '',"
	" internal_date INTEGER NOT NULL,"
	" content_id INTEGER NOT NULL REFERENCES content(id),"
	" thread_id INTEGER,"
	" UNIQUE (mailbox_id, uid));"
	"CREATE INDEX IF NOT EXISTS message_modseq ON message (mailbox_id, modseq);"
	"CREATE INDEX IF NOT EXISTS message_content ON message (content_id);"
	/* Expunged UIDs with the MODSEQ of their removal (QRESYNC VANISHED). */
	"CREATE TABLE IF NOT EXISTS expunged ("
	" mailbox_id INTEGER NOT NULL,"
	" uid INTEGER NOT NULL,"
	" modseq INTEGER NOT NULL,"
	" PRIMARY KEY (mailbox_id, uid)) WITHOUT ROWID;"
	/* Trigrams: IMAP SEARCH matches substrings, case-insensitively. */
	"CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5 ("
	" headers, hdr_from, hdr_to, hdr_cc, hdr_bcc, subject, body,"
	" tokenize = 'trigram');"
	"CREATE TABLE IF NOT EXISTS counter ("
	" name TEXT PRIMARY KEY,"
	" value INTEGER NOT NULL);"
	"INSERT OR IGNORE INTO counter (name, value) VALUES ('modseq', 1);"
	"INSERT OR IGNORE INTO counter (name, value) VALUES ('uidvalidity', 0);";

/* Version 4: what the webmail's JMAP needs, for new and old indexes alike.
 * An Email is a message row with an id of its own that is never reused
 * and survives moves (message.id is a rowid and may be); every change to
 * messages and mailboxes takes a MODSEQ, so the account's counter is
 * JMAP's state, and what went away is remembered with the MODSEQ of its
 * going. Triggers keep this true for every writer, IMAP's included. */
static const char account_schema_4[] =
	"ALTER TABLE message ADD COLUMN email_id INTEGER;"
	"ALTER TABLE message ADD COLUMN created_modseq INTEGER NOT NULL"
	" DEFAULT 0;"
	"UPDATE message SET email_id = id, thread_id = (SELECT"
	" coalesce(c.thread_id, c.id) FROM content c WHERE"
	" c.id = message.content_id);"
	"INSERT OR REPLACE INTO counter (name, value) VALUES ('email',"
	" (SELECT coalesce(max(id), 0) FROM message));"
	"CREATE UNIQUE INDEX message_email ON message (email_id);"
	"CREATE INDEX message_date ON message (mailbox_id, internal_date,"
	" email_id);"
	"CREATE INDEX message_thread ON message (thread_id, internal_date);"
	/* Conversations of a mailbox: counted from the index alone. */
	"CREATE INDEX message_mailbox_thread ON message (mailbox_id,"
	" thread_id);"
	"CREATE INDEX message_changed ON message (modseq);"
	"CREATE INDEX message_created ON message (created_modseq);"
	"ALTER TABLE mailbox ADD COLUMN created_modseq INTEGER NOT NULL"
	" DEFAULT 0;"
	/* The webmail's preview, from the body text (indexes made before
	 * have none: the indexed text stands in). */
	"ALTER TABLE content ADD COLUMN preview TEXT;"
	"CREATE TABLE email_gone ("
	" email_id INTEGER PRIMARY KEY,"
	" modseq INTEGER NOT NULL,"
	" created_modseq INTEGER NOT NULL,"
	" thread_id INTEGER);"
	"CREATE INDEX email_gone_modseq ON email_gone (modseq);"
	"CREATE INDEX email_gone_thread ON email_gone (thread_id);"
	"CREATE TABLE mailbox_gone ("
	" id INTEGER PRIMARY KEY,"
	" modseq INTEGER NOT NULL,"
	" created_modseq INTEGER NOT NULL);"
	/* The owner's webmail settings (identity name, signature, brand). */
	"CREATE TABLE setting ("
	" name TEXT PRIMARY KEY,"
	" value TEXT NOT NULL);"
	/* Files uploaded for a message being written; they expire. */
	"CREATE TABLE upload ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" type TEXT NOT NULL,"
	" data BLOB NOT NULL,"
	" created INTEGER NOT NULL);"
	/* Delivery sets these itself (one write of the row instead of two);
	 * the trigger covers every other writer. */
	"CREATE TRIGGER email_created AFTER INSERT ON message"
	" WHEN NEW.email_id IS NULL BEGIN"
	" UPDATE counter SET value = value + 1 WHERE name = 'email';"
	" UPDATE message SET email_id = (SELECT value FROM counter WHERE"
	"  name = 'email'), created_modseq = NEW.modseq, thread_id ="
	"  (SELECT coalesce(c.thread_id, c.id) FROM content c WHERE"
	"  c.id = NEW.content_id) WHERE id = NEW.id;"
	" END;"
	"CREATE TRIGGER email_destroyed AFTER DELETE ON message BEGIN"
	" UPDATE counter SET value = value + 1 WHERE name = 'modseq';"
	" INSERT OR REPLACE INTO email_gone (email_id, modseq,"
	"  created_modseq, thread_id) VALUES (OLD.email_id, (SELECT value"
	"  FROM counter WHERE name = 'modseq'), OLD.created_modseq,"
	"  OLD.thread_id);"
	" END;"
	"CREATE TRIGGER mailbox_created AFTER INSERT ON mailbox BEGIN"
	" UPDATE counter SET value = value + 1 WHERE name = 'modseq';"
	" UPDATE mailbox SET created_modseq = (SELECT value FROM counter"
	"  WHERE name = 'modseq') WHERE id = NEW.id;"
	" END;"
	"CREATE TRIGGER mailbox_renamed AFTER UPDATE OF name ON mailbox BEGIN"
	" UPDATE counter SET value = value + 1 WHERE name = 'modseq';"
	" UPDATE mailbox SET highestmodseq = (SELECT value FROM counter"
	"  WHERE name = 'modseq') WHERE id = NEW.id;"
	" END;"
	"CREATE TRIGGER mailbox_destroyed AFTER DELETE ON mailbox BEGIN"
	" UPDATE counter SET value = value + 1 WHERE name = 'modseq';"
	" INSERT OR REPLACE INTO mailbox_gone (id, modseq, created_modseq)"
	"  VALUES (OLD.id, (SELECT value FROM counter WHERE"
	"  name = 'modseq'), OLD.created_modseq);"
	" END;"
	"CREATE TRIGGER subscribed AFTER INSERT ON subscription BEGIN"
	" UPDATE counter SET value = value + 1 WHERE name = 'modseq';"
	" UPDATE mailbox SET highestmodseq = (SELECT value FROM counter"
	"  WHERE name = 'modseq') WHERE name = NEW.name;"
	" END;"
	"CREATE TRIGGER unsubscribed AFTER DELETE ON subscription BEGIN"
	" UPDATE counter SET value = value + 1 WHERE name = 'modseq';"
	" UPDATE mailbox SET highestmodseq = (SELECT value FROM counter"
	"  WHERE name = 'modseq') WHERE name = OLD.name;"
	" END;";

#define ACCOUNT_SCHEMA_VERSION 4

/* From version 1 (no \Recent) to 2, and from 2 (no threads) to 3. */
static const char account_upgrade_1[] =
	"ALTER TABLE mailbox ADD COLUMN recent_uid INTEGER NOT NULL DEFAULT 1;";
static const char account_upgrade_2[] =
	"ALTER TABLE content ADD COLUMN thread_id INTEGER;";

static const struct {
	const char *name;
	const char *special_use;
} default_mailboxes[] = {
	{"INBOX", NULL},      {"Sent", "\\Sent"}, {"Drafts", "\\Drafts"},
	{"Trash", "\\Trash"}, {"Junk", "\\Junk"}, {"Archive", "\\Archive"},
};

static int account_path(struct store *s, uint64_t id, const char *file,
			char *path, size_t size)
{
	int n = snprintf(path, size, "%s/accounts/%llu%s%s", s->data_dir,
			 (unsigned long long)id, file ? "/" : "",
			 file ? file : "");
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* Creates or upgrades an account's index. Cheap when it is current: every
 * open calls it, so that indexes from older versions upgrade themselves. */
static int account_init(struct store *s, sqlite3 *db, bool create)
{
	sqlite3_stmt *version;
	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &version, NULL) !=
	    SQLITE_OK) {
		store_db_error(s, db, "account version");
		return -1;
	}
	int v = sqlite3_step(version) == SQLITE_ROW
			? sqlite3_column_int(version, 0)
			: -1;
	sqlite3_finalize(version);
	if (v == ACCOUNT_SCHEMA_VERSION && !create)
		return 0;
	if (v < 0) {
		store_db_error(s, db, "account version");
		return -1;
	}
	if (store_exec(s, db, "BEGIN IMMEDIATE") != 0)
		return -1;
	/* Another process may have upgraded it meanwhile. */
	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &version, NULL) !=
	    SQLITE_OK) {
		store_db_error(s, db, "account version");
		goto fail;
	}
	v = sqlite3_step(version) == SQLITE_ROW ? sqlite3_column_int(version, 0)
						: -1;
	sqlite3_finalize(version);
	if (v == 1 && store_exec(s, db, account_upgrade_1) != 0)
		goto fail;
	if ((v == 1 || v == 2) && store_exec(s, db, account_upgrade_2) != 0)
		goto fail;
	if (store_exec(s, db, account_schema) != 0)
		goto fail;
	if (v < 4 && store_exec(s, db, account_schema_4) != 0)
		goto fail;
	char pragma[64];
	snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d",
		 ACCOUNT_SCHEMA_VERSION);
	if (store_exec(s, db, pragma) != 0)
		goto fail;
	/* An upgrade leaves mailboxes and subscriptions as the owner had
	 * them; only a new account gets the defaults. */
	if (!create)
		return store_exec(s, db, "COMMIT");
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(
		    db,
		    "INSERT OR IGNORE INTO mailbox (name, special_use,"
		    " uidvalidity, uidnext, highestmodseq)"
		    " VALUES (?, ?, ?, 1, 1)",
		    -1, &st, NULL) != SQLITE_OK) {
		store_db_error(s, db, "account init");
		goto fail;
	}
	uint32_t uidvalidity = (uint32_t)time(NULL);
	for (size_t i = 0; i < ARRAY_SIZE(default_mailboxes); i++) {
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, default_mailboxes[i].name, -1,
				  SQLITE_STATIC);
		if (default_mailboxes[i].special_use)
			sqlite3_bind_text(st, 2,
					  default_mailboxes[i].special_use, -1,
					  SQLITE_STATIC);
		else
			sqlite3_bind_null(st, 2);
		sqlite3_bind_int64(st, 3, uidvalidity);
		if (sqlite3_step(st) != SQLITE_DONE) {
			store_db_error(s, db, "account init");
			sqlite3_finalize(st);
			goto fail;
		}
	}
	sqlite3_finalize(st);
	char sql[200];
	snprintf(sql, sizeof(sql),
		 "INSERT OR IGNORE INTO subscription (name) SELECT name FROM"
		 " mailbox; UPDATE counter SET value = %u WHERE name ="
		 " 'uidvalidity' AND value < %u",
		 uidvalidity, uidvalidity);
	if (store_exec(s, db, sql) != 0)
		goto fail;
	return store_exec(s, db, "COMMIT");
fail:
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

sqlite3 *store_account_db(struct store *s, uint64_t account_id, bool create)
{
	struct store_account *slot = NULL;
	for (size_t i = 0; i < STORE_ACCOUNT_CACHE; i++) {
		struct store_account *a = &s->accounts[i];
		if (a->db != NULL && a->id == account_id) {
			a->last_used = ++s->use_counter;
			return a->db;
		}
		if (slot == NULL || a->db == NULL ||
		    (slot->db != NULL && a->last_used < slot->last_used))
			slot = a;
	}
	char path[4096];
	if (account_path(s, account_id, NULL, path, sizeof(path)) != 0) {
		snprintf(s->error, sizeof(s->error), "account path too long");
		return NULL;
	}
	/* Group modes: the umask decides (007 for a root-started family,
	 * whose members share the store; 077 otherwise). */
	if (create && mkdir(path, 0770) != 0 && errno != EEXIST) {
		snprintf(s->error, sizeof(s->error), "%s: %s", path,
			 strerror(errno));
		return NULL;
	}
	account_path(s, account_id, "index.db", path, sizeof(path));
	if (!create && access(path, F_OK) != 0) {
		snprintf(s->error, sizeof(s->error),
			 "account %llu has no index",
			 (unsigned long long)account_id);
		return NULL;
	}
	sqlite3 *db;
	if (store_sqlite_open(path, &db, s->error, sizeof(s->error)) != 0)
		return NULL;
	if (account_init(s, db, create) != 0) {
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_close(slot->db);
	slot->db = db;
	slot->id = account_id;
	slot->last_used = ++s->use_counter;
	return db;
}

int store_account_remove(struct store *s, uint64_t account_id)
{
	for (size_t i = 0; i < STORE_ACCOUNT_CACHE; i++) {
		if (s->accounts[i].db != NULL &&
		    s->accounts[i].id == account_id) {
			sqlite3_close(s->accounts[i].db);
			s->accounts[i].db = NULL;
		}
	}
	char path[4096];
	const char *files[] = {"index.db", "index.db-wal", "index.db-shm"};
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		account_path(s, account_id, files[i], path, sizeof(path));
		if (unlink(path) != 0 && errno != ENOENT) {
			snprintf(s->error, sizeof(s->error), "%s: %s", path,
				 strerror(errno));
			return -1;
		}
	}
	account_path(s, account_id, NULL, path, sizeof(path));
	if (rmdir(path) != 0 && errno != ENOENT) {
		snprintf(s->error, sizeof(s->error), "%s: %s", path,
			 strerror(errno));
		return -1;
	}
	return 0;
}

static void blob_new_id(char id[BLOB_ID_LEN + 1])
{
	uint8_t raw[BLOB_ID_LEN / 2];
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		dijk_panic("RAND_bytes failed");
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < sizeof(raw); i++) {
		id[2 * i] = hex[raw[i] >> 4];
		id[2 * i + 1] = hex[raw[i] & 15];
	}
	id[BLOB_ID_LEN] = '\0';
}

static bool blob_id_valid(const char *id)
{
	if (strlen(id) != BLOB_ID_LEN)
		return false;
	for (size_t i = 0; i < BLOB_ID_LEN; i++)
		if (!((id[i] >= '0' && id[i] <= '9') ||
		      (id[i] >= 'a' && id[i] <= 'f')))
			return false;
	return true;
}

/* "blobs/ab/cdef..." relative to the data directory. */
static void blob_relative_path(const char *id, char path[64])
{
	snprintf(path, 64, "blobs/%.2s/%s", id, id + 2);
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Writes the bytes under a temporary name and renames them into place. Not
 * yet durable: the caller syncs. */
static int blob_write(struct store *s, const uint8_t *data, size_t size,
		      char id_r[BLOB_ID_LEN + 1])
{
	blob_new_id(id_r);
	char tmp[64], final[64], dir[64];
	snprintf(tmp, sizeof(tmp), "blobs/tmp/%s", id_r);
	blob_relative_path(id_r, final);
	snprintf(dir, sizeof(dir), "blobs/%.2s", id_r);
	int fd = openat(s->data_fd, tmp,
			O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0660);
	if (fd < 0)
		return -1;
	if (write_all(fd, data, size) != 0) {
		int saved = errno;
		close(fd);
		unlinkat(s->data_fd, tmp, 0);
		errno = saved;
		return -1;
	}
	if (close(fd) != 0) {
		unlinkat(s->data_fd, tmp, 0);
		return -1;
	}
	/* The fan-out directories exist from store_create. One that is
	 * missing (removed by hand, or a data directory made before they
	 * were) is made again; another process may make it at the same
	 * moment. */
	int r = renameat(s->data_fd, tmp, s->data_fd, final);
	if (r != 0 && errno == ENOENT &&
	    (mkdirat(s->data_fd, dir, 0770) == 0 || errno == EEXIST))
		r = renameat(s->data_fd, tmp, s->data_fd, final);
	if (r != 0) {
		unlinkat(s->data_fd, tmp, 0);
		return -1;
	}
	return 0;
}

static void blob_remove(struct store *s, const char *id)
{
	char path[64];
	blob_relative_path(id, path);
	unlinkat(s->data_fd, path, 0);
}

struct account_job {
	uint64_t account_id;
	size_t delivery;
	size_t position; /* index into the delivery's accounts and uids */
};

static int compare_jobs(const void *a, const void *b)
{
	const struct account_job *x = a, *y = b;
	if (x->account_id != y->account_id)
		return x->account_id < y->account_id ? -1 : 1;
	if (x->delivery != y->delivery)
		return x->delivery < y->delivery ? -1 : 1;
	return x->position < y->position ? -1 : x->position > y->position;
}

static void fail_delivery(struct store_delivery *d, const char *why)
{
	if (d->result == 0) {
		d->result = -1;
		d->error = why;
	}
}

static void bind_buf(sqlite3_stmt *st, int column, const struct buf *b)
{
	sqlite3_bind_text(st, column, b->n ? (const char *)b->p : "", (int)b->n,
			  SQLITE_STATIC);
}

/* Puts a new message into its conversation: the thread of the first of
 * its ids (its own Message-ID, then In-Reply-To, then References, latest
 * first) that the account has seen, or a thread of its own; then records
 * its ids for the messages to come. Threads only grow: a message never
 * changes thread, as JMAP requires. */
static int assign_thread(sqlite3 *db, sqlite3_int64 content,
			 const struct content_meta *m)
{
	const struct buf *lists[] = {&m->message_id, &m->in_reply_to,
				     &m->references};
	sqlite3_stmt *find = NULL, *record = NULL, *set = NULL;
	int ret = -1;
	if (sqlite3_prepare_v2(db,
			       "SELECT thread_id FROM thread_ref WHERE"
			       " message_id = ?",
			       -1, &find, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
			       "INSERT OR IGNORE INTO thread_ref (message_id,"
			       " thread_id) VALUES (?, ?)",
			       -1, &record, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
			       "UPDATE content SET thread_id = ? WHERE id = ?",
			       -1, &set, NULL) != SQLITE_OK)
		goto out;
	sqlite3_int64 thread = 0;
	for (size_t l = 0; l < ARRAY_SIZE(lists) && thread == 0; l++) {
		const struct buf *b = lists[l];
		/* References lists oldest first: look from the end. */
		size_t end = b->n;
		while (end > 0 && thread == 0) {
			size_t start = end;
			while (start > 0 && b->p[start - 1] != ' ')
				start--;
			if (end > start) {
				sqlite3_reset(find);
				sqlite3_bind_text(
					find, 1, (const char *)b->p + start,
					(int)(end - start), SQLITE_STATIC);
				if (sqlite3_step(find) == SQLITE_ROW)
					thread = sqlite3_column_int64(find, 0);
			}
			end = start > 0 ? start - 1 : 0;
		}
	}
	if (thread == 0)
		thread = content;
	for (size_t l = 0; l < ARRAY_SIZE(lists); l++) {
		const struct buf *b = lists[l];
		for (size_t i = 0; i < b->n;) {
			size_t j = i;
			while (j < b->n && b->p[j] != ' ')
				j++;
			if (j > i) {
				sqlite3_reset(record);
				sqlite3_bind_text(record, 1,
						  (const char *)b->p + i,
						  (int)(j - i), SQLITE_STATIC);
				sqlite3_bind_int64(record, 2, thread);
				if (sqlite3_step(record) != SQLITE_DONE)
					goto out;
			}
			i = j + 1;
		}
	}
	sqlite3_bind_int64(set, 1, thread);
	sqlite3_bind_int64(set, 2, content);
	if (sqlite3_step(set) == SQLITE_DONE)
		ret = 0;
out:
	sqlite3_finalize(find);
	sqlite3_finalize(record);
	sqlite3_finalize(set);
	return ret;
}

/* Inserts the content row (with its cached data and full-text entry) of
 * one delivery in an account; returns its id or 0. */
static sqlite3_int64 insert_content(struct store *s, sqlite3 *db,
				    const char *blob, size_t size,
				    const struct content_meta *m)
{
	sqlite3_stmt *st = NULL;
	sqlite3_int64 id = 0;
	if (sqlite3_prepare_v2(
		    db,
		    "INSERT INTO content (blob, size, envelope, bodystructure,"
		    " body, sent_date, subject, base_subject, hdr_from, hdr_to,"
		    " hdr_cc, hdr_bcc, sort_from, sort_to, sort_cc,"
		    " display_from, display_to, message_id, in_reply_to,"
		    " refs_header, has_attachment, sent_day, text_complete,"
		    " preview)"
		    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
		    " ?, ?, ?, ?, ?, ?, ?)",
		    -1, &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_text(st, 1, blob, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)size);
	bind_buf(st, 3, &m->envelope);
	bind_buf(st, 4, &m->bodystructure);
	bind_buf(st, 5, &m->body);
	if (m->sent_date >= 0)
		sqlite3_bind_int64(st, 6, m->sent_date);
	else
		sqlite3_bind_null(st, 6);
	const struct buf *texts[] = {
		&m->subject,	  &m->base_subject, &m->from,
		&m->to,		  &m->cc,	    &m->bcc,
		&m->sort_from,	  &m->sort_to,	    &m->sort_cc,
		&m->display_from, &m->display_to,   &m->message_id,
		&m->in_reply_to,  &m->references,
	};
	for (size_t i = 0; i < ARRAY_SIZE(texts); i++)
		bind_buf(st, 7 + (int)i, texts[i]);
	sqlite3_bind_int(st, 21, m->has_attachment);
	if (m->sent_day >= 0 || m->sent_date >= 0)
		sqlite3_bind_int64(st, 22, m->sent_day);
	else
		sqlite3_bind_null(st, 22);
	sqlite3_bind_int(st, 23, m->text_complete);
	bind_buf(st, 24, &m->preview);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto out;
	id = sqlite3_last_insert_rowid(db);
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(
		    db,
		    "INSERT INTO fts (rowid, headers, hdr_from, hdr_to,"
		    " hdr_cc, hdr_bcc, subject, body)"
		    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
		    -1, &st, NULL) != SQLITE_OK) {
		id = 0;
		goto out;
	}
	sqlite3_bind_int64(st, 1, id);
	bind_buf(st, 2, &m->fts_headers);
	bind_buf(st, 3, &m->from);
	bind_buf(st, 4, &m->to);
	bind_buf(st, 5, &m->cc);
	bind_buf(st, 6, &m->bcc);
	bind_buf(st, 7, &m->subject);
	bind_buf(st, 8, &m->fts_body);
	if (sqlite3_step(st) != SQLITE_DONE || assign_thread(db, id, m) != 0)
		id = 0;
out:
	if (id == 0)
		store_db_error(s, db, "deliver: content");
	sqlite3_finalize(st);
	return id;
}

/* Inserts one account's share of the batch in one transaction. */
static int deliver_to_account(struct store *s,
			      struct store_delivery *const *batch,
			      char (*blob_ids)[BLOB_ID_LEN + 1],
			      const struct content_meta *metas,
			      const struct account_job *jobs, size_t count)
{
	sqlite3 *db = store_account_db(s, jobs[0].account_id, false);
	if (db == NULL)
		return -1;
	if (store_exec(s, db, "BEGIN IMMEDIATE") != 0)
		return -1;
	sqlite3_stmt *mailbox = NULL, *insert = NULL, *update = NULL,
		     *next_email = NULL;
	if (sqlite3_prepare_v2(db,
			       "SELECT id, uidnext, uidvalidity FROM mailbox"
			       " WHERE name = ?",
			       -1, &mailbox, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
			       "INSERT INTO message (mailbox_id, uid, modseq,"
			       " flags, keywords, internal_date, content_id,"
			       " created_modseq, email_id, thread_id)"
			       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?3,"
			       " (SELECT value + 1 FROM counter WHERE"
			       " name = 'email'), (SELECT coalesce(thread_id,"
			       " id) FROM content WHERE id = ?7))",
			       -1, &insert, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
			       "UPDATE counter SET value = value + 1 WHERE"
			       " name = 'email'",
			       -1, &next_email, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
			       "UPDATE mailbox SET uidnext = uidnext + 1,"
			       " highestmodseq = ? WHERE id = ?",
			       -1, &update, NULL) != SQLITE_OK) {
		store_db_error(s, db, "deliver");
		goto fail;
	}
	sqlite3_int64 modseq = store_next_modseq(s, db);
	if (modseq <= 0)
		goto fail;
	for (size_t i = 0; i < count; i++) {
		struct store_delivery *d = batch[jobs[i].delivery];
		sqlite3_reset(mailbox);
		sqlite3_bind_text(mailbox, 1, d->mailbox ? d->mailbox : "INBOX",
				  -1, SQLITE_STATIC);
		if (sqlite3_step(mailbox) != SQLITE_ROW) {
			snprintf(s->error, sizeof(s->error),
				 "deliver: no mailbox %s",
				 d->mailbox ? d->mailbox : "INBOX");
			goto fail;
		}
		sqlite3_int64 mailbox_id = sqlite3_column_int64(mailbox, 0);
		sqlite3_int64 uid = sqlite3_column_int64(mailbox, 1);
		d->uidvalidity = (uint32_t)sqlite3_column_int64(mailbox, 2);
		if (uid >= UINT32_MAX) {
			snprintf(s->error, sizeof(s->error),
				 "UID space exhausted");
			goto fail;
		}
		sqlite3_int64 content =
			insert_content(s, db, blob_ids[jobs[i].delivery],
				       d->size, &metas[jobs[i].delivery]);
		if (content == 0)
			goto fail;
		sqlite3_reset(insert);
		sqlite3_bind_int64(insert, 1, mailbox_id);
		sqlite3_bind_int64(insert, 2, uid);
		sqlite3_bind_int64(insert, 3, modseq);
		sqlite3_bind_int(insert, 4, (int)(d->flags & STORE_FLAGS_ALL));
		sqlite3_bind_text(insert, 5, d->keywords ? d->keywords : "", -1,
				  SQLITE_STATIC);
		sqlite3_bind_int64(insert, 6, (sqlite3_int64)d->internal_date);
		sqlite3_bind_int64(insert, 7, content);
		sqlite3_reset(next_email);
		if (sqlite3_step(insert) != SQLITE_DONE ||
		    sqlite3_step(next_email) != SQLITE_DONE) {
			store_db_error(s, db, "deliver: insert");
			goto fail;
		}
		if (store_content_ref(s, db, content, 1) != 0)
			goto fail;
		sqlite3_reset(update);
		sqlite3_bind_int64(update, 1, modseq);
		sqlite3_bind_int64(update, 2, mailbox_id);
		if (sqlite3_step(update) != SQLITE_DONE) {
			store_db_error(s, db, "deliver: update");
			goto fail;
		}
		batch[jobs[i].delivery]->uids[jobs[i].position] = (uint32_t)uid;
	}
	sqlite3_finalize(mailbox);
	sqlite3_finalize(insert);
	sqlite3_finalize(next_email);
	sqlite3_finalize(update);
	if (store_exec(s, db, "COMMIT") != 0) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		for (size_t i = 0; i < count; i++)
			batch[jobs[i].delivery]->uids[jobs[i].position] = 0;
		return -1;
	}
	return 0;
fail:
	sqlite3_finalize(mailbox);
	sqlite3_finalize(insert);
	sqlite3_finalize(next_email);
	sqlite3_finalize(update);
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	for (size_t i = 0; i < count; i++)
		batch[jobs[i].delivery]->uids[jobs[i].position] = 0;
	return -1;
}

static int queue_batch(struct store *s, struct store_delivery *const *batch,
		       size_t count, char (*blob_ids)[BLOB_ID_LEN + 1])
{
	bool any = false;
	for (size_t i = 0; i < count; i++)
		if (batch[i]->result == 0 && batch[i]->remote_count > 0)
			any = true;
	if (!any)
		return 0;
	if (store_exec(s, s->meta, "BEGIN IMMEDIATE") != 0)
		return -1;
	sqlite3_stmt *q = NULL, *r = NULL;
	if (sqlite3_prepare_v2(s->meta,
			       "INSERT INTO queue (sender, blob, size, created,"
			       " next_attempt) VALUES (?, ?, ?, ?, ?)",
			       -1, &q, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->meta,
			       "INSERT OR IGNORE INTO queue_recipient"
			       " (queue_id, address) VALUES (?, ?)",
			       -1, &r, NULL) != SQLITE_OK) {
		store_db_error(s, s->meta, "queue");
		goto fail;
	}
	for (size_t i = 0; i < count; i++) {
		struct store_delivery *d = batch[i];
		if (d->result != 0 || d->remote_count == 0)
			continue;
		sqlite3_reset(q);
		sqlite3_bind_text(q, 1, d->sender, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 2, blob_ids[i], -1, SQLITE_STATIC);
		sqlite3_bind_int64(q, 3, (sqlite3_int64)d->size);
		sqlite3_bind_int64(q, 4, (sqlite3_int64)d->internal_date);
		sqlite3_bind_int64(q, 5, (sqlite3_int64)d->internal_date);
		if (sqlite3_step(q) != SQLITE_DONE) {
			store_db_error(s, s->meta, "queue");
			goto fail;
		}
		sqlite3_int64 id = sqlite3_last_insert_rowid(s->meta);
		for (size_t k = 0; k < d->remote_count; k++) {
			sqlite3_reset(r);
			sqlite3_bind_int64(r, 1, id);
			sqlite3_bind_text(r, 2, d->remote_recipients[k], -1,
					  SQLITE_STATIC);
			if (sqlite3_step(r) != SQLITE_DONE) {
				store_db_error(s, s->meta, "queue");
				goto fail;
			}
		}
		if (store_queue_seal(s, (uint64_t)id) != 0)
			goto fail;
	}
	sqlite3_finalize(q);
	sqlite3_finalize(r);
	if (store_exec(s, s->meta, "COMMIT") != 0) {
		sqlite3_exec(s->meta, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	return 0;
fail:
	sqlite3_finalize(q);
	sqlite3_finalize(r);
	sqlite3_exec(s->meta, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

size_t store_deliver_batch(struct store *s, struct store_delivery *const *batch,
			   size_t count)
{
	char(*blob_ids)[BLOB_ID_LEN + 1] = xcalloc(count, sizeof(*blob_ids));
	size_t job_count = 0;
	for (size_t i = 0; i < count; i++) {
		batch[i]->result = 0;
		batch[i]->error = NULL;
		if (batch[i]->account_count > 0)
			memset(batch[i]->uids, 0,
			       batch[i]->account_count *
				       sizeof(batch[i]->uids[0]));
		job_count += batch[i]->account_count;
	}
	/* 1. Bytes into blobs. */
	bool any_written = false;
	for (size_t i = 0; i < count; i++) {
		struct store_delivery *d = batch[i];
		if (blob_write(s, d->data, d->size, blob_ids[i]) != 0) {
			fail_delivery(d, "cannot write message file");
			blob_ids[i][0] = '\0';
		} else {
			any_written = true;
		}
	}
	/* 2. One flush for the whole batch: data, inodes and names. */
	if (any_written && syncfs(s->data_fd) != 0) {
		for (size_t i = 0; i < count; i++)
			fail_delivery(batch[i], "cannot flush message files");
	}
	/* 3. Cached structure and text, once per message body. */
	struct content_meta *metas = xcalloc(count, sizeof(*metas));
	for (size_t i = 0; i < count; i++)
		if (batch[i]->result == 0 && batch[i]->account_count > 0)
			content_meta_build(
				&metas[i],
				slice_make(batch[i]->data, batch[i]->size));
	/* 4. Index rows, one transaction per account. */
	struct account_job *jobs = xcalloc(job_count, sizeof(*jobs));
	size_t n = 0;
	for (size_t i = 0; i < count; i++) {
		if (batch[i]->result != 0)
			continue;
		for (size_t k = 0; k < batch[i]->account_count; k++) {
			jobs[n].account_id = batch[i]->accounts[k];
			jobs[n].delivery = i;
			jobs[n].position = k;
			n++;
		}
	}
	qsort(jobs, n, sizeof(*jobs), compare_jobs);
	for (size_t start = 0; start < n;) {
		size_t end = start + 1;
		while (end < n &&
		       jobs[end].account_id == jobs[start].account_id)
			end++;
		/* One message listed twice for the same account is stored
		 * once per listing; the session removes duplicates. */
		if (deliver_to_account(s, batch, blob_ids, metas, jobs + start,
				       end - start) != 0) {
			for (size_t k = start; k < end; k++)
				fail_delivery(
					batch[jobs[k].delivery],
					"cannot update the mailbox index");
		}
		start = end;
	}
	free(jobs);
	for (size_t i = 0; i < count; i++)
		if (batch[i]->account_count > 0)
			content_meta_free(&metas[i]);
	free(metas);
	/* 5. Remote recipients into the outbound queue. */
	if (queue_batch(s, batch, count, blob_ids) != 0) {
		for (size_t i = 0; i < count; i++)
			if (batch[i]->remote_count > 0)
				fail_delivery(batch[i],
					      "cannot queue the message");
	}
	size_t failed = 0;
	for (size_t i = 0; i < count; i++) {
		if (batch[i]->result == 0)
			continue;
		failed++;
		/* A blob no committed row refers to is removed at once. */
		bool referenced = false;
		for (size_t k = 0; k < batch[i]->account_count; k++)
			if (batch[i]->uids[k] != 0)
				referenced = true;
		if (!referenced && blob_ids[i][0] != '\0')
			blob_remove(s, blob_ids[i]);
	}
	free(blob_ids);
	return failed;
}

int store_mailbox_list(struct store *s, uint64_t account_id,
		       void (*fn)(const struct store_mailbox_info *info,
				  void *context),
		       void *context, const char **error_r)
{
	sqlite3 *db = store_account_db(s, account_id, false);
	if (db == NULL) {
		*error_r = s->error;
		return -1;
	}
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(
		    db,
		    "SELECT m.name, m.special_use, m.uidvalidity,"
		    " m.uidnext, m.highestmodseq,"
		    " (SELECT count(*) FROM message WHERE mailbox_id = m.id)"
		    " FROM mailbox m ORDER BY m.id",
		    -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_db_error(s, db, "mailbox list");
		return -1;
	}
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_mailbox_info info = {
			.name = (const char *)sqlite3_column_text(st, 0),
			.special_use = (const char *)sqlite3_column_text(st, 1),
			.uidvalidity = (uint32_t)sqlite3_column_int64(st, 2),
			.uidnext = (uint32_t)sqlite3_column_int64(st, 3),
			.highestmodseq = (uint64_t)sqlite3_column_int64(st, 4),
			.messages = (uint64_t)sqlite3_column_int64(st, 5),
		};
		fn(&info, context);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*error_r = store_db_error(s, db, "mailbox list");
		return -1;
	}
	return 0;
}

int store_message_list(struct store *s, uint64_t account_id,
		       const char *mailbox,
		       void (*fn)(const struct store_message_info *info,
				  void *context),
		       void *context, const char **error_r)
{
	sqlite3 *db = store_account_db(s, account_id, false);
	if (db == NULL) {
		*error_r = s->error;
		return -1;
	}
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(
		    db,
		    "SELECT m.uid, m.modseq, c.size, m.internal_date"
		    " FROM message m JOIN mailbox b ON b.id = m.mailbox_id"
		    " JOIN content c ON c.id = m.content_id"
		    " WHERE b.name = ? ORDER BY m.uid",
		    -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_db_error(s, db, "message list");
		return -1;
	}
	sqlite3_bind_text(st, 1, mailbox, -1, SQLITE_STATIC);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_message_info info = {
			.uid = (uint32_t)sqlite3_column_int64(st, 0),
			.modseq = (uint64_t)sqlite3_column_int64(st, 1),
			.size = (uint64_t)sqlite3_column_int64(st, 2),
			.internal_date = (time_t)sqlite3_column_int64(st, 3),
		};
		fn(&info, context);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*error_r = store_db_error(s, db, "message list");
		return -1;
	}
	return 0;
}

int store_message_read(struct store *s, uint64_t account_id,
		       const char *mailbox, uint32_t uid, uint8_t **data_r,
		       size_t *size_r, const char **error_r)
{
	sqlite3 *db = store_account_db(s, account_id, false);
	if (db == NULL) {
		*error_r = s->error;
		return -1;
	}
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db,
			       "SELECT c.blob, c.size FROM message m"
			       " JOIN mailbox b ON b.id = m.mailbox_id"
			       " JOIN content c ON c.id = m.content_id"
			       " WHERE b.name = ? AND m.uid = ?",
			       -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_db_error(s, db, "message read");
		return -1;
	}
	sqlite3_bind_text(st, 1, mailbox, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, uid);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_finalize(st);
		if (rc == SQLITE_DONE)
			return 0;
		*error_r = store_db_error(s, db, "message read");
		return -1;
	}
	char id[BLOB_ID_LEN + 1];
	snprintf(id, sizeof(id), "%s", sqlite3_column_text(st, 0));
	uint64_t size = (uint64_t)sqlite3_column_int64(st, 1);
	sqlite3_finalize(st);
	return store_blob_read(s, id, size, data_r, size_r, error_r);
}

int store_blob_read(struct store *s, const char *id, uint64_t size,
		    uint8_t **data_r, size_t *size_r, const char **error_r)
{
	if (!blob_id_valid(id) || size > STORE_MAX_BLOB_SIZE) {
		snprintf(s->error, sizeof(s->error),
			 "corrupt index row for blob %s", id);
		*error_r = s->error;
		return -1;
	}
	char path[64];
	blob_relative_path(id, path);
	int fd = openat(s->data_fd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(s->error, sizeof(s->error), "message file %s: %s", id,
			 strerror(errno));
		*error_r = s->error;
		return -1;
	}
	uint8_t *data = xmalloc((size_t)size);
	size_t got = 0;
	while (got < size) {
		ssize_t r = read(fd, data + got, (size_t)size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	if (got != size) {
		free(data);
		snprintf(s->error, sizeof(s->error),
			 "message file %s is short (%zu of %llu bytes)", id,
			 got, (unsigned long long)size);
		*error_r = s->error;
		return -1;
	}
	*data_r = data;
	*size_r = (size_t)size;
	return 1;
}
