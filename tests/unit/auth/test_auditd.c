/* test_auditd.c: unit tests for the auth process's audit queue
 * (src/auth/auditd.c) with a real event loop, pool and log: what waits
 * with auditd_after_queued runs only once every entry recorded before it
 * is in the database, in the order it came, also while a batch is being
 * written; with nothing queued it runs at once; auditd_stop lets whoever
 * still waits go on, and the close writes what is left. */
#include "unit.h"

#include "auth/audit.h"
#include "auth/auditd.h"
#include "core/pool.h"

#include <event2/event.h>
#include <ftw.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define ACCOUNT 7

static char data_dir[] = "/tmp/dijk-unit-auditd-XXXXXX";
static struct event_base *base;

static int remove_entry(const char *path, const struct stat *st, int flag,
			struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static void record(const char *action)
{
	struct store_audit_entry e = {.account_id = ACCOUNT};
	audit_field_set(e.user, sizeof(e.user),
			slice_cstr("alice@example.test"));
	audit_field_set(e.protocol, sizeof(e.protocol), slice_cstr("imap"));
	audit_field_set(e.remote, sizeof(e.remote), slice_cstr("192.0.2.1"));
	audit_field_set(e.action, sizeof(e.action), slice_cstr(action));
	audit_field_set(e.detail, sizeof(e.detail), slice_cstr("INBOX"));
	auditd_record(&e);
}

static int count_one(const struct store_audit_entry *e, void *context)
{
	(void)e;
	(*(int64_t *)context)++;
	return 0;
}

/* The entries in the database now, read through a handle of its own. */
static int64_t stored(void)
{
	const char *error;
	struct audit_log *log = audit_open(data_dir, &error);
	CHECK(log != NULL);
	if (log == NULL)
		return -1;
	struct store_audit_query q = {.account_id = ACCOUNT};
	int64_t n = 0;
	CHECK(store_audit_scan(audit_store(log), &q, count_one, &n, &error) ==
	      0);
	audit_close(&log);
	return n;
}

/* A waiter notes how many entries it found and its turn. */
struct waiter {
	int64_t seen;
	int turn;
};
static int turns;

static void on_written(void *arg)
{
	struct waiter *w = arg;
	w->seen = stored();
	w->turn = ++turns;
}

/* Runs the loop until w has run (or a minute has gone). */
static void wait_for(struct waiter *w)
{
	for (int i = 0; i < 60000 && w->turn == 0; i++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		usleep(1000);
	}
	CHECK(w->turn != 0);
}

static void test_waits_for_what_came_before(void)
{
	/* Nothing queued: at once. */
	struct waiter now = {0};
	auditd_after_queued(on_written, &now);
	CHECK(now.turn == 1 && now.seen == 0);

	/* 50 entries: the first goes on the pool at once, the others
	 * gather behind it, and the waiter waits for them. */
	for (int i = 0; i < 50; i++)
		record("fetch");
	struct waiter first = {0};
	auditd_after_queued(on_written, &first);
	CHECK(first.turn == 0);
	/* More while the first is written: the second waiter also waits
	 * for these, and goes after the first. */
	for (int i = 0; i < 30; i++)
		record("select");
	struct waiter second = {0};
	auditd_after_queued(on_written, &second);
	wait_for(&second);
	CHECK(first.turn == 2 && second.turn == 3);
	CHECK(first.seen >= 50);
	CHECK(second.seen == 80);
}

static void test_stop_and_close(void)
{
	struct pool *pool = pool_new(base, 2);
	auditd_start(base, pool, data_dir, 0);
	for (int i = 0; i < 20; i++)
		record("logout");
	struct waiter w = {0};
	auditd_after_queued(on_written, &w);
	CHECK(w.turn == 0);
	/* Stopping lets it go on without waiting for the writer... */
	auditd_stop();
	CHECK(w.turn != 0);
	/* ...and what was still queued is written at the close. */
	pool_free(&pool);
	CHECK(stored() < 100);
	auditd_close();
	CHECK(stored() == 100);
}

int main(void)
{
	CHECK(mkdtemp(data_dir) != NULL);
	base = event_base_new();
	struct pool *pool = pool_new(base, 2);
	auditd_start(base, pool, data_dir, 0);
	test_waits_for_what_came_before();
	auditd_stop();
	pool_free(&pool);
	auditd_close();
	test_stop_and_close();
	event_base_free(base);
	nftw(data_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	return unit_result("auth_auditd");
}
