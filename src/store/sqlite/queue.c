/* queue.c: the outbound queue in meta.db (see store.h).
 *
 * Rows: queue (one per message: sender, blob, when created, attempts, the
 * next attempt's time, the last error, whether the delay notice went out)
 * and queue_recipient (one per remote recipient with its status and last
 * reply). A message leaves the table when no recipient is pending; its
 * blob stays, like every blob, until blobs are reclaimed.
 *
 * The queue is untrusted data when it is read back: each message carries
 * an HMAC-SHA256, under the key in DATA/queue.key, over its id, envelope
 * (sender and every recipient), blob and size. A message whose MAC does not
 * hold (edited, copied to another id, a recipient added) is quarantined:
 * logged, kept for the admin to look at, and never sent. */
#include "core/common.h"

#include "store/sqlite/internal.h"

#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#define QUEUE_KEY_FILE "queue.key"
#define QUEUE_MAC_SIZE crypto_auth_hmacsha256_BYTES

/* Version 3: the integrity MAC of each message, and quarantine. */
static const char meta_upgrade_3[] =
	"ALTER TABLE queue ADD COLUMN mac BLOB;"
	"ALTER TABLE queue ADD COLUMN quarantined INTEGER NOT NULL DEFAULT 0;"
	"PRAGMA user_version = 3;";

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

/* Reads DATA/queue.key, making it first when there is none: written
 * whole to a file of its own, then linked into place, so that a process
 * racing to make it too reads either nothing or the whole key. */
static int queue_key(struct store *s)
{
	if (s->queue_key_loaded)
		return 0;
	for (int tries = 0; tries < 3; tries++) {
		int fd = openat(s->data_fd, QUEUE_KEY_FILE,
				O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd >= 0) {
			ssize_t n =
				read(fd, s->queue_key, sizeof(s->queue_key));
			close(fd);
			if (n != (ssize_t)sizeof(s->queue_key)) {
				snprintf(s->error, sizeof(s->error),
					 "%s: not a queue key", QUEUE_KEY_FILE);
				return -1;
			}
			s->queue_key_loaded = true;
			return 0;
		}
		if (errno != ENOENT)
			break;
		char tmp[64];
		snprintf(tmp, sizeof(tmp), QUEUE_KEY_FILE ".%ld",
			 (long)getpid());
		fd = openat(s->data_fd, tmp,
			    O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
				    O_NOFOLLOW,
			    0640);
		if (fd < 0)
			break;
		uint8_t key[sizeof(s->queue_key)];
		randombytes_buf(key, sizeof(key));
		bool written = write(fd, key, sizeof(key)) == sizeof(key) &&
			       fsync(fd) == 0;
		sodium_memzero(key, sizeof(key));
		close(fd);
		/* EEXIST: another process made it first; read theirs. */
		if (!written || (linkat(s->data_fd, tmp, s->data_fd,
					QUEUE_KEY_FILE, 0) != 0 &&
				 errno != EEXIST)) {
			unlinkat(s->data_fd, tmp, 0);
			break;
		}
		unlinkat(s->data_fd, tmp, 0);
		fsync(s->data_fd);
	}
	snprintf(s->error, sizeof(s->error), "%s: %s", QUEUE_KEY_FILE,
		 strerror(errno));
	return -1;
}

static void mac_field(crypto_auth_hmacsha256_state *st, const void *p, size_t n)
{
	uint8_t len[8];
	for (int i = 0; i < 8; i++)
		len[i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
	crypto_auth_hmacsha256_update(st, len, sizeof(len));
	crypto_auth_hmacsha256_update(st, p, n);
}

static void mac_number(crypto_auth_hmacsha256_state *st, uint64_t v)
{
	char text[24];
	int n = snprintf(text, sizeof(text), "%llu", (unsigned long long)v);
	mac_field(st, text, (size_t)n);
}

/* The MAC message id should carry, from what the rows hold now: every
 * recipient counts, delivered or not, since the set never changes. 1 with
 * mac_r, 0 when there is no such message, -1 with s->error. */
static int queue_mac(struct store *s, uint64_t id,
		     uint8_t mac_r[QUEUE_MAC_SIZE])
{
	if (queue_key(s) != 0)
		return -1;
	sqlite3_stmt *q = store_prepare(
		s, s->meta,
		"SELECT sender, blob, size, created FROM queue WHERE id = ?");
	if (q == NULL)
		return -1;
	sqlite3_bind_int64(q, 1, (sqlite3_int64)id);
	int rc = sqlite3_step(q);
	if (rc != SQLITE_ROW) {
		sqlite3_finalize(q);
		if (rc == SQLITE_DONE)
			return 0;
		store_db_error(s, s->meta, "queue seal");
		return -1;
	}
	crypto_auth_hmacsha256_state st;
	crypto_auth_hmacsha256_init(&st, s->queue_key, sizeof(s->queue_key));
	static const char label[] = "dijk queue message v1";
	mac_field(&st, label, sizeof(label) - 1);
	mac_number(&st, id);
	for (int col = 0; col < 2; col++)
		mac_field(&st, sqlite3_column_blob(q, col),
			  (size_t)sqlite3_column_bytes(q, col));
	mac_number(&st, (uint64_t)sqlite3_column_int64(q, 2));
	mac_number(&st, (uint64_t)sqlite3_column_int64(q, 3));
	sqlite3_finalize(q);
	sqlite3_stmt *r = store_prepare(s, s->meta,
					"SELECT address FROM queue_recipient"
					" WHERE queue_id = ? ORDER BY address");
	if (r == NULL)
		return -1;
	sqlite3_bind_int64(r, 1, (sqlite3_int64)id);
	while ((rc = sqlite3_step(r)) == SQLITE_ROW)
		mac_field(&st, sqlite3_column_blob(r, 0),
			  (size_t)sqlite3_column_bytes(r, 0));
	sqlite3_finalize(r);
	crypto_auth_hmacsha256_final(&st, mac_r);
	sodium_memzero(&st, sizeof(st));
	if (rc != SQLITE_DONE) {
		store_db_error(s, s->meta, "queue seal");
		return -1;
	}
	return 1;
}

int store_queue_seal(struct store *s, uint64_t id)
{
	uint8_t mac[QUEUE_MAC_SIZE];
	if (queue_mac(s, id, mac) <= 0)
		return -1;
	sqlite3_stmt *st = store_prepare(
		s, s->meta, "UPDATE queue SET mac = ? WHERE id = ?");
	if (st == NULL)
		return -1;
	sqlite3_bind_blob(st, 1, mac, sizeof(mac), SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)id);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		store_db_error(s, s->meta, "queue seal");
		return -1;
	}
	return 0;
}

/* At the upgrade to version 3: the messages queued before it are sealed
 * as they stand. */
static int seal_all(struct store *s)
{
	sqlite3_stmt *st = store_prepare(s, s->meta, "SELECT id FROM queue");
	if (st == NULL)
		return -1;
	size_t count = 0, cap = 0;
	uint64_t *ids = NULL;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (count == cap) {
			cap = cap ? cap * 2 : 16;
			ids = xrealloc(ids, cap * sizeof(*ids));
		}
		ids[count++] = (uint64_t)sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	int result = rc == SQLITE_DONE ? 0 : -1;
	if (result != 0)
		store_db_error(s, s->meta, "queue seal");
	for (size_t i = 0; result == 0 && i < count; i++)
		result = store_queue_seal(s, ids[i]);
	free(ids);
	return result;
}

/* Whether message id still carries the MAC it was sealed with: 1 yes,
 * 0 no, -1 on a store error. */
static int queue_intact(struct store *s, uint64_t id, const void *stored,
			size_t stored_size)
{
	uint8_t mac[QUEUE_MAC_SIZE];
	int found = queue_mac(s, id, mac);
	if (found < 0)
		return -1;
	return found > 0 && stored != NULL && stored_size == sizeof(mac) &&
	       sodium_memcmp(mac, stored, sizeof(mac)) == 0;
}

static int quarantine(struct store *s, uint64_t id)
{
	log_error("queue: message %llu fails its integrity check (edited"
		  " outside dijk?); quarantined, not sent",
		  (unsigned long long)id);
	sqlite3_stmt *st = store_prepare(
		s, s->meta, "UPDATE queue SET quarantined = 1 WHERE id = ?");
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		store_db_error(s, s->meta, "queue quarantine");
		return -1;
	}
	return 0;
}

int store_meta_upgrade(struct store *s, const char **error_r)
{
	int version;
	if (user_version(s, &version) != 0)
		goto fail;
	if (version >= 3)
		return 0;
	/* Several processes open the store at once when the server starts:
	 * the first one upgrades, the others find it done. */
	if (store_exec(s, s->meta, "BEGIN IMMEDIATE") != 0)
		goto fail;
	if (user_version(s, &version) != 0)
		goto rollback;
	if (version < 2 && store_exec(s, s->meta, meta_upgrade_2) != 0)
		goto rollback;
	if (version < 3 &&
	    (store_exec(s, s->meta, meta_upgrade_3) != 0 || seal_all(s) != 0))
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
		" q.size, q.created, q.next_attempt, q.attempts, q.last_error,"
		" q.quarantined"
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
			.quarantined = sqlite3_column_int(st, 8) != 0,
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
		" delay_notified, mac FROM queue WHERE next_attempt <= ?"
		" AND quarantined = 0 ORDER BY next_attempt, id LIMIT ?");
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
		/* The row is read back as untrusted: its MAC must hold. */
		int intact = queue_intact(s, id, sqlite3_column_blob(st, 7),
					  (size_t)sqlite3_column_bytes(st, 7));
		if (intact < 0) {
			sqlite3_finalize(st);
			goto fail;
		}
		if (intact == 0) {
			if (quarantine(s, id) != 0) {
				sqlite3_finalize(st);
				goto fail;
			}
			continue;
		}
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
					 "SELECT min(next_attempt) FROM queue"
					 " WHERE quarantined = 0");
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
