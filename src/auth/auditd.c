/* auditd.c: the auth process's side of the audit log: appends on the pool
 * threads, the workers' event frames, activity pages for the webmail and
 * the daily retention run. */
#include "core/common.h"

#include "auth/auditd.h"

#include "auth/audit.h"
#include "core/log.h"
#include "core/pool.h"

#include <pthread.h>
#include <sodium.h>

#include <event2/event.h>

#define AUDITD_RETENTION_PERIOD_SECONDS 86400
/* A pool thread's handle; at most this many threads use the log. */
#define AUDITD_MAX_THREADS 16
/* Entries waiting to be written beyond this are dropped (and counted in
 * the log): a worker gone wild must not grow the auth process without
 * bound. */
#define AUDITD_MAX_PENDING 20000
/* Entries wait on the loop in a queue; one pool job at a time takes all
 * that has gathered (at most AUDITD_MAX_PENDING) and writes it in one
 * transaction. Under load the batches grow by themselves, so the log
 * costs one sync to disk per batch instead of one per entry, and pool
 * threads stay free for password checks. */
struct batch {
	struct store_audit_entry **entries;
	size_t n;
};

/* Something to run once the entries queued before it are written. */
struct waiter {
	uint64_t batch; /* runs when this batch is done */
	void (*fn)(void *);
	void *arg;
};

static struct {
	struct event_base *base;
	struct pool *pool;
	const char *data_dir;
	unsigned retention_days;
	struct event *daily;
	struct store_audit_entry **queue;
	size_t queued, queue_size;
	bool writing; /* a batch is on the pool */
	bool stopping;
	uint64_t taken, done; /* batches taken to be written, and finished */
	struct waiter *waiters;
	size_t waiting, waiters_size;
} auditd;

static struct audit_log *thread_logs[AUDITD_MAX_THREADS];
static size_t thread_logs_used;
static pthread_mutex_t thread_logs_lock = PTHREAD_MUTEX_INITIALIZER;
static __thread struct audit_log **thread_log;

/* The calling thread's log, opened on first use (and again after a
 * failure); NULL when it cannot be opened. */
static struct audit_log *my_log(void)
{
	if (thread_log == NULL) {
		pthread_mutex_lock(&thread_logs_lock);
		DIJK_ASSERT(thread_logs_used < AUDITD_MAX_THREADS);
		thread_log = &thread_logs[thread_logs_used++];
		pthread_mutex_unlock(&thread_logs_lock);
	}
	if (*thread_log == NULL) {
		const char *error;
		*thread_log = audit_open(auditd.data_dir, &error);
		if (*thread_log == NULL)
			log_error("audit log: %s", error);
	}
	return *thread_log;
}

static void batch_write(struct batch *b)
{
	struct audit_log *log = my_log();
	const char *error = "cannot open the log";
	size_t written =
		log != NULL ? audit_append_batch(log, b->entries, b->n, &error)
			    : 0;
	if (written < b->n)
		log_error("audit log: %s (%zu of %zu entries lost, the first"
			  " %s %s of %s)",
			  error, b->n - written, b->n, b->entries[0]->protocol,
			  b->entries[0]->action, b->entries[0]->user);
}

static void batch_free(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		free(b->entries[i]);
	free(b->entries);
	free(b);
}

static void batch_work(void *arg)
{
	batch_write(arg);
}

/* Takes the whole queue, which starts again empty; the batch owns the
 * entries. */
static struct batch *batch_take(void)
{
	struct batch *b = xcalloc(1, sizeof(*b));
	b->entries = auditd.queue;
	b->n = auditd.queued;
	auditd.queue = NULL;
	auditd.queued = auditd.queue_size = 0;
	return b;
}

/* A full array of *size elements, given room for twice as many (first
 * when it has none). */
static void *grow(void *array, size_t *size, size_t first, size_t elem)
{
	*size = *size == 0 ? first : *size * 2;
	return xrealloc(array, *size * elem);
}

static void batch_done(void *arg);

static void write_queued(void)
{
	if (auditd.writing || auditd.stopping || auditd.queued == 0 ||
	    auditd.pool == NULL)
		return;
	auditd.writing = true;
	auditd.taken++;
	pool_submit(auditd.pool, batch_work, batch_done, batch_take());
}

/* Runs the waiters whose batch is done (all of them when all is true),
 * in the order they came. Batch numbers only grow along the array, so
 * those are its first entries. */
static void run_waiters(bool all)
{
	size_t n = 0;
	while (n < auditd.waiting &&
	       (all || auditd.waiters[n].batch <= auditd.done))
		n++;
	if (n == 0)
		return;
	/* Taken out first: a waiter's call may add a waiter. */
	struct waiter *ready = xmalloc(n * sizeof(*ready));
	memcpy(ready, auditd.waiters, n * sizeof(*ready));
	auditd.waiting -= n;
	memmove(auditd.waiters, auditd.waiters + n,
		auditd.waiting * sizeof(*auditd.waiters));
	for (size_t i = 0; i < n; i++)
		ready[i].fn(ready[i].arg);
	free(ready);
}

static void batch_done(void *arg)
{
	batch_free(arg);
	auditd.writing = false;
	auditd.done++;
	run_waiters(false);
	write_queued();
}

void auditd_after_queued(void (*fn)(void *), void *arg)
{
	if (auditd.pool == NULL || auditd.stopping ||
	    (auditd.queued == 0 && !auditd.writing)) {
		fn(arg);
		return;
	}
	/* What is queued goes in the batch after the one being written (or
	 * in the next one taken, which write_queued takes at once). */
	uint64_t batch = auditd.taken + (auditd.queued > 0 ? 1 : 0);
	if (auditd.waiting == auditd.waiters_size)
		auditd.waiters = grow(auditd.waiters, &auditd.waiters_size, 8,
				      sizeof(*auditd.waiters));
	auditd.waiters[auditd.waiting++] =
		(struct waiter){.batch = batch, .fn = fn, .arg = arg};
}

void auditd_record(const struct store_audit_entry *e)
{
	static unsigned long dropped;
	if (auditd.pool == NULL)
		return;
	if (auditd.queued >= AUDITD_MAX_PENDING) {
		if (dropped++ % 1000 == 0)
			log_error(
				"audit log: %lu entries dropped, the writer is"
				" behind",
				dropped);
		return;
	}
	struct store_audit_entry *copy = xcalloc(1, sizeof(*copy));
	memcpy(copy, e, sizeof(*copy));
	copy->id = 0;
	copy->time = (int64_t)time(NULL);
	if (auditd.queued == auditd.queue_size)
		auditd.queue = grow(auditd.queue, &auditd.queue_size, 64,
				    sizeof(*auditd.queue));
	auditd.queue[auditd.queued++] = copy;
	write_queued();
}

/* Coalescing mailbox views: one entry per (account, session, mailbox) in
 * AUDIT_VIEW_COALESCE_SECONDS. A small table on the loop; a slot reused
 * early only costs one more entry. */
#define AUDITD_VIEW_SLOTS 512
struct view_slot {
	uint8_t key[crypto_generichash_BYTES_MIN];
	time_t when;
};
static struct view_slot view_slots[AUDITD_VIEW_SLOTS];

static bool view_is_new(const struct store_audit_entry *e, time_t now)
{
	uint8_t key[crypto_generichash_BYTES_MIN];
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, sizeof(key));
	crypto_generichash_update(&st, (const uint8_t *)&e->account_id,
				  sizeof(e->account_id));
	crypto_generichash_update(&st, (const uint8_t *)e->session,
				  strlen(e->session) + 1);
	crypto_generichash_update(&st, (const uint8_t *)e->detail,
				  strlen(e->detail) + 1);
	crypto_generichash_final(&st, key, sizeof(key));
	struct view_slot *oldest = &view_slots[0], *hit = NULL;
	for (size_t i = 0; i < AUDITD_VIEW_SLOTS && hit == NULL; i++) {
		struct view_slot *v = &view_slots[i];
		if (memcmp(v->key, key, sizeof(key)) == 0 && v->when != 0)
			hit = v;
		else if (v->when < oldest->when)
			oldest = v;
	}
	if (hit != NULL && now - hit->when < AUDIT_VIEW_COALESCE_SECONDS)
		return false;
	struct view_slot *v = hit != NULL ? hit : oldest;
	memcpy(v->key, key, sizeof(key));
	v->when = now;
	return true;
}

int auditd_event_frame(const struct ipc_frame *f)
{
	struct store_audit_entry *e = xcalloc(1, sizeof(*e));
	int ok = audit_event_parse(f->payload, e) == 0 &&
		 /* Only the auth process vouches for a drop. */
		 strcmp(e->action, AUDIT_RETENTION_ACTION) != 0;
	if (ok && (strcmp(e->action, AUDIT_VIEW_ACTION) != 0 ||
		   view_is_new(e, time(NULL))))
		auditd_record(e);
	free(e);
	return ok ? 0 : -1;
}

struct page {
	struct buf *out;
	size_t entries, limit;
	bool more; /* entries are left behind the page */
};

static int page_add(const struct store_audit_entry *e, void *context)
{
	struct page *p = context;
	if (p->entries == p->limit) {
		p->more = true;
		return 1;
	}
	size_t before = p->out->n;
	ipc_put_u64(p->out, (uint64_t)e->id);
	ipc_put_u64(p->out, (uint64_t)e->time);
	ipc_put_bytes(p->out, slice_cstr(e->protocol));
	ipc_put_bytes(p->out, slice_cstr(e->remote));
	ipc_put_bytes(p->out, slice_cstr(e->session));
	ipc_put_bytes(p->out, slice_cstr(e->action));
	ipc_put_bytes(p->out, slice_cstr(e->detail));
	if (buf_overflowed(p->out) || p->out->n > IPC_MAX_FRAME) {
		/* The page ends before this entry; the next one starts
		 * with it. */
		p->out->n = before;
		p->out->overflowed = false;
		p->more = true;
		return 1;
	}
	p->entries++;
	return 0;
}

void auditd_page(uint64_t account_id, const char *session, int64_t before_id,
		 size_t limit, uint32_t id, struct buf *out)
{
	ipc_begin(out, IPC_AUDIT_PAGE, id);
	struct audit_log *log = account_id != 0 ? my_log() : NULL;
	ipc_put_u64(out, log != NULL ? account_id : 0);
	ipc_put_bytes(out, slice_cstr(session));
	/* Whether more entries follow this page: one byte, set below. */
	static const uint8_t no_more = 0;
	size_t more_at = out->n + 2;
	ipc_put_bytes(out, slice_make(&no_more, 1));
	if (log == NULL || buf_overflowed(out))
		return;
	if (limit == 0 || limit > AUDITD_PAGE_MAX)
		limit = AUDITD_PAGE_MAX;
	struct store_audit_query q = {.account_id = account_id,
				      .before_id =
					      before_id > 0 ? before_id : 0,
				      .limit = limit + 1,
				      .newest_first = true};
	struct page p = {.out = out, .limit = limit};
	const char *error;
	if (store_audit_scan(audit_store(log), &q, page_add, &p, &error) != 0)
		log_error("audit page: %s", error);
	out->p[more_at] = p.more;
}

static void retention_work(void *arg)
{
	(void)arg;
	struct audit_log *log = my_log();
	const char *error;
	int64_t dropped;
	if (log == NULL)
		return;
	if (audit_retention(log, (int64_t)time(NULL), auditd.retention_days,
			    &dropped, &error) != 0)
		log_error("audit retention: %s", error);
	else if (dropped > 0)
		log_info("audit retention: dropped %lld entries older than %u"
			 " days",
			 (long long)dropped, auditd.retention_days);
}

static void retention_done(void *arg)
{
	(void)arg;
}

static void daily(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	pool_submit(auditd.pool, retention_work, retention_done, NULL);
}

void auditd_start(struct event_base *base, struct pool *pool,
		  const char *data_dir, unsigned retention_days)
{
	auditd.base = base;
	auditd.pool = pool;
	auditd.data_dir = data_dir;
	auditd.retention_days = retention_days;
	auditd.stopping = false;
	if (retention_days == 0)
		return;
	auditd.daily = event_new(base, -1, EV_PERSIST, daily, NULL);
	struct timeval period = {AUDITD_RETENTION_PERIOD_SECONDS, 0};
	event_add(auditd.daily, &period);
	daily(-1, 0, NULL);
}

void auditd_stop(void)
{
	if (auditd.daily != NULL)
		event_free(auditd.daily);
	auditd.daily = NULL;
	auditd.stopping = true;
	/* Nothing more is written until the close: who waits goes on now. */
	run_waiters(true);
	free(auditd.waiters);
	auditd.waiters = NULL;
	auditd.waiting = auditd.waiters_size = 0;
}

void auditd_close(void)
{
	/* What was still waiting when the pool stopped, written here. */
	struct batch *b = batch_take();
	if (b->n > 0)
		batch_write(b);
	batch_free(b);
	for (size_t i = 0; i < thread_logs_used; i++)
		audit_close(&thread_logs[i]);
	auditd.pool = NULL;
}
