/* test_queue.c: unit tests for the outbound queue in the store
 * (src/store/sqlite/queue.c): what is due and in which order, recipients
 * marked one by one, a message leaving once none is pending, flush,
 * delete, an older meta.db upgraded on open, and a message edited in the
 * database behind dijk's back quarantined, never sent. */
#include "unit.h"

#include "store/store.h"

#include <ftw.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char data_dir[] = "/tmp/dijk-unit-queue-XXXXXX";

static int remove_entry(const char *path, const struct stat *st, int flag,
			struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

/* Queues one message from sender to the remote recipients. */
static void enqueue(struct store *s, const char *sender, const char *body,
		    const char *const *rcpts, size_t count, time_t when)
{
	struct store_delivery d = {
		.data = (const uint8_t *)body,
		.size = strlen(body),
		.internal_date = when,
		.sender = sender,
		.remote_recipients = rcpts,
		.remote_count = count,
	};
	struct store_delivery *batch[1] = {&d};
	CHECK(store_deliver_batch(s, batch, 1) == 0);
	CHECK(d.result == 0);
}

struct listing {
	size_t count;
	char lines[8][512];
};

static void collect(const struct store_queue_info *q, void *context)
{
	struct listing *l = context;
	if (l->count < 8)
		snprintf(l->lines[l->count], sizeof(l->lines[0]),
			 "%llu %s %s %u %s", (unsigned long long)q->id,
			 q->sender, q->recipients, q->attempts, q->last_error);
	l->count++;
}

static void collect_quarantined(const struct store_queue_info *q, void *context)
{
	struct listing *l = context;
	if (q->quarantined)
		l->count++;
}

static void test_due_and_order(struct store *s)
{
	const char *error;
	static const char *const two[] = {"b@two.test", "a@one.test"};
	static const char *const one[] = {"c@three.test"};
	enqueue(s, "alice@example.test", "Subject: first\r\n\r\n1\r\n", two, 2,
		1000);
	enqueue(s, "", "Subject: notice\r\n\r\n2\r\n", one, 1, 900);

	struct store_queue_item items[4];
	/* Nothing is due before its time. */
	CHECK(store_queue_due(s, 899, NULL, 0, items, 4, &error) == 0);
	/* Earliest first; recipients sorted by address. */
	ssize_t n = store_queue_due(s, 2000, NULL, 0, items, 4, &error);
	CHECK(n == 2);
	if (n != 2)
		return;
	CHECK(strcmp(items[0].sender, "") == 0);
	CHECK(items[0].recipient_count == 1);
	CHECK(strcmp(items[1].sender, "alice@example.test") == 0);
	CHECK(items[1].recipient_count == 2);
	CHECK(strcmp(items[1].recipients[0], "a@one.test") == 0);
	CHECK(strcmp(items[1].recipients[1], "b@two.test") == 0);
	CHECK(items[1].attempts == 0 && !items[1].delay_notified);
	uint64_t first = items[1].id, notice = items[0].id;

	/* The bytes come back as they went in. */
	uint8_t *data;
	size_t size;
	CHECK(store_queue_read(s, &items[1], &data, &size, &error) == 0);
	CHECK(size == strlen("Subject: first\r\n\r\n1\r\n") &&
	      memcmp(data, "Subject: first", 14) == 0);
	free(data);

	/* Messages in flight are left out, and max is kept. */
	for (ssize_t i = 0; i < n; i++)
		store_queue_item_free(&items[i]);
	CHECK(store_queue_due(s, 2000, &notice, 1, items, 4, &error) == 1);
	CHECK(items[0].id == first);
	store_queue_item_free(&items[0]);
	CHECK(store_queue_due(s, 2000, NULL, 0, items, 1, &error) == 1);
	CHECK(items[0].id == notice);
	store_queue_item_free(&items[0]);

	/* One recipient delivered, the other deferred: the message stays
	 * with only the pending one, due at the next attempt. */
	struct store_queue_mark ok = {"a@one.test", STORE_RCPT_DELIVERED,
				      "250 ok"};
	CHECK(store_queue_attempted(s, first, &ok, 1, 5000, "451 4.4.1 later",
				    true, &error) == 0);
	struct listing l = {0};
	CHECK(store_queue_list(s, collect, &l, &error) == 0);
	CHECK(l.count == 2);
	char want[256];
	snprintf(want, sizeof(want),
		 "%llu alice@example.test b@two.test 1 451 4.4.1 later",
		 (unsigned long long)first);
	CHECK(strcmp(l.lines[0], want) == 0);
	time_t next;
	CHECK(store_queue_next(s, &next, &error) == 0 && next == 900);
	CHECK(store_queue_due(s, 4999, &notice, 1, items, 4, &error) == 0);
	CHECK(store_queue_due(s, 5000, &notice, 1, items, 4, &error) == 1);
	CHECK(items[0].attempts == 1 && items[0].delay_notified);
	CHECK(items[0].recipient_count == 1);
	store_queue_item_free(&items[0]);

	/* Flush makes everything due now. */
	CHECK(store_queue_flush(s, &error) == 0);
	CHECK(store_queue_due(s, 1, NULL, 0, items, 4, &error) == 2);
	store_queue_item_free(&items[0]);
	store_queue_item_free(&items[1]);

	/* The last recipient failed: the message is gone. */
	struct store_queue_mark no = {"b@two.test", STORE_RCPT_FAILED,
				      "550 no"};
	CHECK(store_queue_mark(s, first, &no, 1, &error) == 0);
	memset(&l, 0, sizeof(l));
	CHECK(store_queue_list(s, collect, &l, &error) == 0);
	CHECK(l.count == 1); /* nothing pending: no longer listed */
	CHECK(store_queue_attempted(s, first, NULL, 0, 6000, "", true,
				    &error) == 0);
	memset(&l, 0, sizeof(l));
	CHECK(store_queue_list(s, collect, &l, &error) == 0);
	CHECK(l.count == 1);

	/* Delete: 1 for a queued message, 0 after. */
	CHECK(store_queue_delete(s, notice, &error) == 1);
	CHECK(store_queue_delete(s, notice, &error) == 0);
	CHECK(store_queue_next(s, &next, &error) == 0 && next == 0);
}

/* Each edit of a queued message made outside dijk: the message is
 * quarantined at its next due read and never returned again, while an
 * untouched one beside it goes out. */
/* sql with each "@ID" replaced by id. */
static void with_id(const char *sql, int id, char *out, size_t size)
{
	size_t w = 0;
	for (const char *p = sql; *p && w + 16 < size;) {
		if (strncmp(p, "@ID", 3) == 0) {
			w += (size_t)snprintf(out + w, size - w, "%d", id);
			p += 3;
		} else {
			out[w++] = *p++;
		}
	}
	out[w] = '\0';
}

static void test_tampering(void)
{
	static const char *const edits[] = {
		"UPDATE queue SET sender = 'evil@example.test' WHERE id = @ID",
		"UPDATE queue SET blob = 'other' WHERE id = @ID",
		"UPDATE queue SET size = size + 1 WHERE id = @ID",
		"UPDATE queue SET created = created - 1 WHERE id = @ID",
		"UPDATE queue SET mac = NULL WHERE id = @ID",
		"UPDATE queue SET mac = zeroblob(32) WHERE id = @ID",
		"UPDATE queue_recipient SET address = 'x@evil.test'"
		" WHERE queue_id = @ID",
		"INSERT INTO queue_recipient (queue_id, address)"
		" VALUES (@ID, 'more@evil.test')",
		/* The same row under another id: a message sent twice. */
		"INSERT INTO queue (id, sender, blob, size, created,"
		" next_attempt, mac) SELECT id + 1000, sender, blob, size,"
		" created, next_attempt, mac FROM queue WHERE id = @ID;"
		"INSERT INTO queue_recipient (queue_id, address) SELECT"
		" queue_id + 1000, address FROM queue_recipient"
		" WHERE queue_id = @ID;"
		"DELETE FROM queue WHERE id = @ID",
	};
	const char *error;
	for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
		struct store *s = store_open(data_dir, &error);
		CHECK(s != NULL);
		if (s == NULL)
			return;
		/* Start from an empty queue. */
		sqlite3 *db;
		char path[512], sql[1024];
		snprintf(path, sizeof(path), "%s/meta.db", data_dir);
		CHECK(sqlite3_open(path, &db) == SQLITE_OK);
		CHECK(sqlite3_exec(db,
				   "DELETE FROM queue_recipient;"
				   " DELETE FROM queue;",
				   NULL, NULL, NULL) == SQLITE_OK);
		sqlite3_close(db);
		const char *rcpt[] = {"r@remote.test"};
		enqueue(s, "alice@example.test", "Subject: a\r\n\r\nx\r\n",
			rcpt, 1, 100);
		enqueue(s, "bob@example.test", "Subject: b\r\n\r\ny\r\n", rcpt,
			1, 101);
		struct listing l = {0};
		CHECK(store_queue_list(s, collect, &l, &error) == 0);
		int first = atoi(l.lines[0]);
		store_close(&s);

		with_id(edits[i], first, sql, sizeof(sql));
		CHECK(sqlite3_open(path, &db) == SQLITE_OK);
		int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
		CHECK_CASE(rc == SQLITE_OK, i, edits[i]);
		sqlite3_close(db);

		s = store_open(data_dir, &error);
		struct store_queue_item items[8];
		ssize_t n = store_queue_due(s, 1000, NULL, 0, items, 8, &error);
		CHECK_CASE(n == 1, i, edits[i]);
		if (n == 1)
			CHECK_CASE(strcmp(items[0].sender,
					  "bob@example.test") == 0,
				   i, edits[i]);
		for (ssize_t k = 0; k < n; k++)
			store_queue_item_free(&items[k]);
		/* Quarantined for good: not due again, and listed so. */
		CHECK(store_queue_due(s, 1000, NULL, 0, items, 8, &error) == 1);
		store_queue_item_free(&items[0]);
		struct listing after = {0};
		CHECK(store_queue_list(s, collect_quarantined, &after,
				       &error) == 0);
		CHECK_CASE(after.count == 1, i, edits[i]);
		store_close(&s);
	}
}

/* A meta.db from before the queue kept its errors opens and upgrades. */
static void test_upgrade(void)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/meta.db", data_dir);
	sqlite3 *db;
	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	CHECK(sqlite3_exec(db,
			   "DROP INDEX IF EXISTS queue_next;"
			   "DROP TABLE queue_recipient; DROP TABLE queue;"
			   "CREATE TABLE queue (id INTEGER PRIMARY KEY"
			   " AUTOINCREMENT, sender TEXT NOT NULL, blob TEXT NOT"
			   " NULL, size INTEGER NOT NULL, created INTEGER NOT"
			   " NULL, next_attempt INTEGER NOT NULL, attempts"
			   " INTEGER NOT NULL DEFAULT 0);"
			   "CREATE TABLE queue_recipient (queue_id INTEGER NOT"
			   " NULL REFERENCES queue(id) ON DELETE CASCADE,"
			   " address TEXT NOT NULL, status INTEGER NOT NULL"
			   " DEFAULT 0, PRIMARY KEY (queue_id, address));"
			   "INSERT INTO queue (sender, blob, size, created,"
			   " next_attempt) VALUES ('old@example.test', 'x', 1,"
			   " 10, 10);"
			   "INSERT INTO queue_recipient VALUES (1, 'r@x.test',"
			   " 0);"
			   "PRAGMA user_version = 1;",
			   NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);
	const char *error;
	struct store *s = store_open(data_dir, &error);
	CHECK(s != NULL);
	if (s == NULL)
		return;
	struct listing l = {0};
	CHECK(store_queue_list(s, collect, &l, &error) == 0);
	CHECK(l.count == 1 &&
	      strcmp(l.lines[0], "1 old@example.test r@x.test 0 ") == 0);
	/* Sealed at the upgrade: due, and whole. */
	struct store_queue_item item;
	CHECK(store_queue_due(s, 10, NULL, 0, &item, 1, &error) == 1);
	store_queue_item_free(&item);
	CHECK(store_queue_attempted(s, 1, NULL, 0, 20, "451 later", false,
				    &error) == 0);
	store_close(&s);
	/* Opening again finds it done. */
	s = store_open(data_dir, &error);
	CHECK(s != NULL);
	store_close(&s);
}

int main(void)
{
	if (mkdtemp(data_dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	const char *error;
	CHECK(store_create(data_dir, &error) == 0);
	struct store *s = store_open(data_dir, &error);
	CHECK(s != NULL);
	if (s != NULL) {
		test_due_and_order(s);
		store_close(&s);
	}
	test_upgrade();
	test_tampering();
	nftw(data_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	return unit_result("store_queue");
}
