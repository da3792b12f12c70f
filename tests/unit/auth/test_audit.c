/* test_audit.c: unit tests for the audit log's chain (src/auth/audit.c):
 * verify holds on an untouched log and names the first bad entry after
 * each kind of tampering; retention drops whole days behind a marker that
 * verify accepts, and nothing else; fields are cleaned before storing. */
#include "unit.h"

#include "auth/audit.h"

#include "core/ipc.h"

#include <ftw.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define DAY 86400
/* A fixed clock: 2026-11-20 12:00:00 UTC. */
#define NOW ((int64_t)1795176000)

static char data_dir[] = "/tmp/dijk-unit-audit-XXXXXX";

static int remove_entry(const char *path, const struct stat *st, int flag,
			struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

/* A fresh log in its own directory below data_dir. */
static struct audit_log *fresh_log(const char *name, char *dir, size_t size)
{
	snprintf(dir, size, "%s/%s", data_dir, name);
	CHECK(mkdir(dir, 0700) == 0);
	const char *error;
	struct audit_log *log = audit_open(dir, &error);
	CHECK(log != NULL);
	return log;
}

static void add(struct audit_log *log, int64_t when, const char *user,
		const char *action)
{
	struct store_audit_entry e = {.time = when, .account_id = 7};
	audit_field_set(e.user, sizeof(e.user), slice_cstr(user));
	audit_field_set(e.protocol, sizeof(e.protocol), slice_cstr("imap"));
	audit_field_set(e.remote, sizeof(e.remote), slice_cstr("192.0.2.1"));
	audit_field_set(e.action, sizeof(e.action), slice_cstr(action));
	audit_field_set(e.detail, sizeof(e.detail), slice_cstr("INBOX"));
	const char *error;
	CHECK(audit_append(log, &e, &error) == 0);
	CHECK(e.id > 0 && e.time == when);
}

static void run_sql(const char *dir, const char *sql)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/audit.db", dir);
	sqlite3 *db;
	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	char *err = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
	if (rc != SQLITE_OK)
		fprintf(stderr, "sql %s: %s\n", sql, err);
	CHECK(rc == SQLITE_OK);
	sqlite3_free(err);
	sqlite3_close(db);
}

/* 0 when the chain holds, else the first bad id. */
static int64_t verify_bad_id(struct audit_log *log, int64_t *count_r)
{
	struct audit_verify_result r;
	const char *error;
	int ret = audit_verify(log, &r, &error);
	CHECK(ret >= 0);
	if (count_r != NULL)
		*count_r = r.count;
	CHECK((ret == 0) == (r.bad_id == 0));
	return r.bad_id;
}

static void test_fields(void)
{
	static const struct {
		const char *in;
		size_t size;
		const char *out;
	} cases[] = {
		{"plain", 16, "plain"},
		{"line\r\nbreak", 16, "line??break"},
		{"tab\there", 16, "tab?here"},
		{"esc\x1b[31m", 16, "esc?[31m"},
		{"cut here", 4, "cut"},
		/* A cut never splits a character. */
		{"ab\xc3\xa9", 4, "ab"},
		{"ab\xc3\xa9", 5, "ab\xc3\xa9"},
		/* Bytes that are not UTF-8 become '?'. */
		{"x\xff\xfey", 16, "x??y"},
		{"\xc3", 16, "?"},
		{"", 4, ""},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char out[64];
		audit_field_set(out, cases[i].size, slice_cstr(cases[i].in));
		CHECK_CASE(strcmp(out, cases[i].out) == 0, i, cases[i].in);
	}
	char id[AUDIT_SESSION_ID_SIZE];
	uint8_t hash[32] = {0xde, 0xad, 0xbe, 0xef, 0x01,
			    0x02, 0x03, 0x04, 0xff};
	audit_session_id(hash, id);
	CHECK(strcmp(id, "deadbeef01020304") == 0);
}

/* An IPC payload from fields: "u:N" is a u64, "f:N" a field of one byte
 * N, anything else a byte string. */
static struct slice payload(struct buf *b, const char *const *fields,
			    size_t count)
{
	buf_reset(b);
	for (size_t i = 0; i < count; i++) {
		const char *f = fields[i];
		if (strncmp(f, "u:", 2) == 0) {
			ipc_put_u64(b, strtoull(f + 2, NULL, 10));
		} else if (strncmp(f, "f:", 2) == 0) {
			/* Read only once the prefix says there is a third
			 * byte: "a" has none. */
			uint8_t byte = (uint8_t)(f[2] - '0');
			ipc_put_bytes(b, slice_make(&byte, 1));
		} else {
			ipc_put_bytes(b, slice_cstr(f));
		}
	}
	return buf_slice(b);
}

static void test_wire(void)
{
	static char long_detail[STORE_AUDIT_MAX_DETAIL + 2];
	memset(long_detail, 'x', sizeof(long_detail) - 1);
	static const struct {
		const char *name;
		const char *fields[8];
		size_t count;
		int result;
		const char *detail;
	} events[] = {
		{"ok",
		 {"u:3", "alice@example.test", "imap", "192.0.2.1", "imap-1-2",
		  "fetch", "INBOX: 1 message, UID 4"},
		 7,
		 0,
		 "INBOX: 1 message, UID 4"},
		{"control bytes cleaned",
		 {"u:3", "a", "imap", "r", "s", "fetch", "x\r\ny"},
		 7,
		 0,
		 "x??y"},
		{"missing detail",
		 {"u:3", "a", "imap", "r", "s", "fetch"},
		 6,
		 -1,
		 NULL},
		{"trailing field",
		 {"u:3", "a", "imap", "r", "s", "fetch", "d", "more"},
		 8,
		 -1,
		 NULL},
		{"empty action",
		 {"u:3", "a", "imap", "r", "s", "", "d"},
		 7,
		 -1,
		 NULL},
		{"account not a u64",
		 {"3", "a", "imap", "r", "s", "fetch", "d"},
		 7,
		 -1,
		 NULL},
		{"protocol too long",
		 {"u:3", "a", "imap-imap-imap-imap", "r", "s", "fetch", "d"},
		 7,
		 -1,
		 NULL},
		{"detail too long",
		 {"u:3", "a", "imap", "r", "s", "fetch", long_detail},
		 7,
		 -1,
		 NULL},
	};
	struct buf b;
	buf_init(&b, IPC_MAX_FRAME);
	for (size_t i = 0; i < ARRAY_SIZE(events); i++) {
		struct store_audit_entry e;
		int r = audit_event_parse(
			payload(&b, events[i].fields, events[i].count), &e);
		CHECK_CASE(r == events[i].result, i, events[i].name);
		if (r == 0)
			CHECK_CASE(strcmp(e.detail, events[i].detail) == 0 &&
					   e.account_id == 3,
				   i, events[i].name);
	}
	static const struct {
		const char *name;
		const char *fields[12];
		size_t count;
		int head;    /* what audit_page_begin returns */
		bool more;   /* and says */
		int entries; /* read before the end, or -1: malformed */
	} pages[] = {
		{"empty", {"u:3", "0123456789abcdef", "f:0"}, 3, 0, false, 0},
		{"one entry, more behind",
		 {"u:3", "s", "f:1", "u:9", "u:100", "web", "127.0.0.1", "s",
		  "read", "1 message: e7"},
		 10,
		 0,
		 true,
		 1},
		{"more flag 2", {"u:3", "s", "f:2"}, 3, -1, false, 0},
		{"no flag", {"u:3", "s"}, 2, -1, false, 0},
		{"entry cut short",
		 {"u:3", "s", "f:0", "u:9", "u:100", "web", "127.0.0.1", "s",
		  "read"},
		 9,
		 0,
		 false,
		 -1},
		{"id not a u64",
		 {"u:3", "s", "f:0", "9", "u:100", "web", "127.0.0.1", "s",
		  "read", "d"},
		 10,
		 0,
		 false,
		 -1},
	};
	for (size_t i = 0; i < ARRAY_SIZE(pages); i++) {
		struct slice cursor =
			payload(&b, pages[i].fields, pages[i].count);
		uint64_t account;
		char session[STORE_AUDIT_MAX_SESSION + 1];
		bool more = false;
		int head = audit_page_begin(&cursor, &account, session,
					    sizeof(session), &more);
		CHECK_CASE(head == pages[i].head, i, pages[i].name);
		if (head != 0)
			continue;
		CHECK_CASE(account == 3 && more == pages[i].more, i,
			   pages[i].name);
		struct store_audit_entry e;
		int r, n = 0;
		while ((r = audit_page_next(&cursor, &e)) == 1)
			n++;
		CHECK_CASE(r == 0 ? n == pages[i].entries
				  : pages[i].entries == -1,
			   i, pages[i].name);
		if (pages[i].entries == 1)
			CHECK_CASE(e.id == 9 && e.time == 100 &&
					   strcmp(e.action, "read") == 0,
				   i, pages[i].name);
	}
	buf_free(&b);
}

static void test_key_and_chain(void)
{
	char dir[256];
	struct audit_log *log = fresh_log("chain", dir, sizeof(dir));
	CHECK(verify_bad_id(log, NULL) == 0);
	for (int i = 0; i < 6; i++)
		add(log, NOW + i, "alice@example.test", "fetch");
	int64_t count;
	CHECK(verify_bad_id(log, &count) == 0 && count == 6);
	audit_close(&log);

	char path[512];
	struct stat st;
	snprintf(path, sizeof(path), "%s/audit.key", dir);
	CHECK(stat(path, &st) == 0 && st.st_size == AUDIT_KEY_SIZE &&
	      (st.st_mode & 0777) == 0600);
	snprintf(path, sizeof(path), "%s/audit.db", dir);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0077) == 0);

	/* Another key: nothing checks out from the first entry. */
	const char *error;
	snprintf(path, sizeof(path), "%s/audit.key", dir);
	FILE *f = fopen(path, "wb");
	CHECK(f != NULL &&
	      fwrite("0123456789abcdef0123456789abcdef", 1, 32, f) == 32);
	fclose(f);
	log = audit_open(dir, &error);
	CHECK(log != NULL && verify_bad_id(log, NULL) == 1);
	audit_close(&log);
	/* A key file of the wrong size is refused, not replaced. */
	f = fopen(path, "wb");
	CHECK(f != NULL && fwrite("short", 1, 5, f) == 5);
	fclose(f);
	CHECK(audit_open(dir, &error) == NULL);
}

static struct store_audit_entry *entry(int64_t when, const char *action)
{
	struct store_audit_entry *e = calloc(1, sizeof(*e));
	CHECK(e != NULL);
	e->time = when;
	e->account_id = 7;
	audit_field_set(e->user, sizeof(e->user),
			slice_cstr("alice@example.test"));
	audit_field_set(e->protocol, sizeof(e->protocol), slice_cstr("imap"));
	audit_field_set(e->action, sizeof(e->action), slice_cstr(action));
	return e;
}

/* Many entries in one transaction chain on like single ones; an entry the
 * database refuses costs only itself. */
static void test_batch(void)
{
	char dir[256];
	struct audit_log *log = fresh_log("batch", dir, sizeof(dir));
	add(log, NOW, "alice@example.test", "login");
	struct store_audit_entry *e[5];
	for (size_t i = 0; i < ARRAY_SIZE(e); i++)
		e[i] = entry(NOW + 1, "fetch");
	const char *error;
	CHECK(audit_append_batch(log, e, ARRAY_SIZE(e), &error) == 5);
	for (size_t i = 0; i < ARRAY_SIZE(e); i++)
		CHECK_CASE(e[i]->id == (int64_t)i + 2, i, "batch entry");
	add(log, NOW + 2, "alice@example.test", "logout");
	int64_t count;
	CHECK(verify_bad_id(log, &count) == 0 && count == 7);
	audit_close(&log);

	/* The database refuses one entry of a batch: the rest are written,
	 * in order, and the chain still holds. */
	run_sql(dir, "CREATE TRIGGER refuse BEFORE INSERT ON audit"
		     " WHEN NEW.action = 'refused'"
		     " BEGIN SELECT RAISE(ABORT, 'refused here'); END");
	log = audit_open(dir, &error);
	CHECK(log != NULL);
	for (size_t i = 0; i < ARRAY_SIZE(e); i++) {
		memset(e[i], 0, sizeof(*e[i]));
		free(e[i]);
		e[i] = entry(NOW + 3, i == 2 ? "refused" : "fetch");
	}
	error = NULL;
	CHECK(audit_append_batch(log, e, ARRAY_SIZE(e), &error) == 4);
	CHECK(error != NULL && strstr(error, "refused here") != NULL);
	CHECK(e[0]->id == 8 && e[1]->id == 9 && e[3]->id == 10 &&
	      e[4]->id == 11);
	CHECK(verify_bad_id(log, &count) == 0 && count == 11);
	for (size_t i = 0; i < ARRAY_SIZE(e); i++)
		free(e[i]);
	audit_close(&log);
}

static void test_tampering(void)
{
	static const struct {
		const char *name;
		const char *sql;
		int64_t bad_id;
	} cases[] = {
		{"edit detail", "UPDATE audit SET detail = 'Sent' WHERE id = 3",
		 3},
		{"edit user",
		 "UPDATE audit SET user = 'bob@example.test' WHERE id = 1", 1},
		{"edit time", "UPDATE audit SET time = time - 60 WHERE id = 5",
		 5},
		{"edit account", "UPDATE audit SET account_id = 8 WHERE id = 2",
		 2},
		{"edit action", "UPDATE audit SET action = 'x' WHERE id = 6",
		 6},
		{"edit mac", "UPDATE audit SET mac = zeroblob(32) WHERE id = 4",
		 4},
		{"short mac", "UPDATE audit SET mac = x'00' WHERE id = 4", 4},
		{"delete middle", "DELETE FROM audit WHERE id = 3", 4},
		{"delete two", "DELETE FROM audit WHERE id IN (2, 3)", 4},
		{"delete first", "DELETE FROM audit WHERE id = 1", 2},
		{"delete first two", "DELETE FROM audit WHERE id <= 2", 3},
		{"insert at end",
		 "INSERT INTO audit SELECT 7, time, account_id, user, protocol,"
		 " remote, session, action, detail, mac FROM audit WHERE id = 6",
		 7},
		{"insert between",
		 "UPDATE audit SET id = id + 100 WHERE id >= 4;"
		 "UPDATE audit SET id = id - 99 WHERE id >= 100;"
		 "INSERT INTO audit SELECT 4, time, account_id, user, protocol,"
		 " remote, session, action, detail, mac FROM audit WHERE id = 3",
		 4},
		{"swap rows",
		 "UPDATE audit SET id = 100 WHERE id = 2;"
		 "UPDATE audit SET id = 2 WHERE id = 3;"
		 "UPDATE audit SET id = 3 WHERE id = 100",
		 2},
		{"forged marker",
		 "DELETE FROM audit WHERE id <= 2;"
		 "UPDATE audit SET action = 'retention', detail = 'dropped ids"
		 " 1-2, older than 2026-11-20; last mac 0000000000000000000000"
		 "000000000000000000000000000000000000000000' WHERE id = 3",
		 3},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char name[32], dir[256];
		snprintf(name, sizeof(name), "tamper%zu", i);
		struct audit_log *log = fresh_log(name, dir, sizeof(dir));
		for (int k = 0; k < 6; k++)
			add(log, NOW + k, "alice@example.test", "fetch");
		CHECK_CASE(verify_bad_id(log, NULL) == 0, i, cases[i].name);
		run_sql(dir, cases[i].sql);
		int64_t bad = verify_bad_id(log, NULL);
		if (bad != cases[i].bad_id)
			fprintf(stderr, "case %zu: bad id %lld\n", i,
				(long long)bad);
		CHECK_CASE(bad == cases[i].bad_id, i, cases[i].name);
		audit_close(&log);
	}
}

static int64_t first_id(struct audit_log *log)
{
	struct store_audit_entry e;
	int64_t id = 0;
	const char *error;
	for (int64_t k = 1; k < 100 && id == 0; k++)
		if (store_audit_get(audit_store(log), k, &e, &error) == 1)
			id = k;
	return id;
}

static void test_retention(void)
{
	char dir[256];
	struct audit_log *log = fresh_log("retention", dir, sizeof(dir));
	const char *error;
	int64_t dropped, count;
	/* Three entries ten days old, two five days old, one today. */
	for (int i = 0; i < 3; i++)
		add(log, NOW - 10 * DAY + i, "alice@example.test", "select");
	for (int i = 0; i < 2; i++)
		add(log, NOW - 5 * DAY + i, "alice@example.test", "fetch");
	add(log, NOW, "alice@example.test", "send");
	/* Nothing is older than 30 days; 0 keeps everything. */
	CHECK(audit_retention(log, NOW, 30, &dropped, &error) == 0 &&
	      dropped == 0);
	CHECK(audit_retention(log, NOW, 0, &dropped, &error) == 0 &&
	      dropped == 0);
	CHECK(verify_bad_id(log, &count) == 0 && count == 6);
	/* Seven days: the ten-day-old ones go, behind a marker (id 7). */
	CHECK(audit_retention(log, NOW, 7, &dropped, &error) == 0 &&
	      dropped == 3);
	CHECK(first_id(log) == 4);
	struct store_audit_entry marker;
	CHECK(store_audit_get(audit_store(log), 7, &marker, &error) == 1);
	CHECK(strcmp(marker.action, AUDIT_RETENTION_ACTION) == 0);
	CHECK(strncmp(marker.detail, "dropped ids 1-3, older than 2026-11-13;",
		      39) == 0);
	CHECK(verify_bad_id(log, &count) == 0 && count == 4);
	/* Four days: the entries of five days ago go (whole days older than
	 * the day the limit falls in), behind a second marker. */
	add(log, NOW + 1, "alice@example.test", "fetch");
	CHECK(audit_retention(log, NOW, 4, &dropped, &error) == 0 &&
	      dropped == 2);
	CHECK(first_id(log) == 6);
	CHECK(verify_bad_id(log, &count) == 0 && count == 4);
	/* One more row removed at the start is caught. */
	run_sql(dir, "DELETE FROM audit WHERE id = 6");
	CHECK(verify_bad_id(log, NULL) == 7);
	audit_close(&log);

	/* Everything dropped: the chain is the marker alone, and goes on. */
	log = fresh_log("retention-all", dir, sizeof(dir));
	for (int i = 0; i < 3; i++)
		add(log, NOW - 3 * DAY, "bob@example.test", "login");
	CHECK(audit_retention(log, NOW, 1, &dropped, &error) == 0 &&
	      dropped == 3);
	add(log, NOW + 5, "bob@example.test", "login");
	CHECK(verify_bad_id(log, &count) == 0 && count == 2);
	/* A marker edited to claim other ids is caught by its MAC. */
	run_sql(dir, "UPDATE audit SET detail = replace(detail, '1-3', '1-2')"
		     " WHERE id = 4");
	CHECK(verify_bad_id(log, NULL) == 4);
	audit_close(&log);
}

int main(void)
{
	CHECK(mkdtemp(data_dir) != NULL);
	test_fields();
	test_wire();
	test_key_and_chain();
	test_batch();
	test_tampering();
	test_retention();
	nftw(data_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	return unit_result("auth_audit");
}
