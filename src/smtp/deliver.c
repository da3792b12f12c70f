/* deliver.c: the group-commit loop between an smtp worker's event loop and
 * the store. One thread makes batches durable; the loop collects the next
 * batch meanwhile. */
#include "core/common.h"

#include "smtp/deliver.h"

#include "core/log.h"
#include "core/pool.h"
#include "store/store.h"

struct delivery_job {
	struct store_delivery d;
	uint8_t *data;
	uint64_t *accounts;
	uint32_t *uids;
	char *sender;
	char **remote;
	delivery_callback *cb;
	void *context;
	struct delivery_job *next;
};

struct deliverer {
	struct event_base *base;
	struct store *store; /* used only on the pool thread */
	struct pool *pool;
	delivery_notify *notify;
	void *notify_context;
	/* waiting for the next batch */
	struct delivery_job *waiting_head, *waiting_tail;
	size_t waiting_count;
	/* the batch in flight */
	struct delivery_job *batch[DELIVER_MAX_BATCH];
	size_t batch_count;
	bool busy;
	bool stopping;
	size_t pending;
};

static void batch_work(void *arg)
{
	struct deliverer *d = arg;
	struct store_delivery *ds[DELIVER_MAX_BATCH];
	for (size_t i = 0; i < d->batch_count; i++)
		ds[i] = &d->batch[i]->d;
	store_deliver_batch(d->store, ds, d->batch_count);
}

static void job_free(struct delivery_job *job)
{
	free(job->data);
	free(job->accounts);
	free(job->uids);
	free(job->sender);
	for (size_t i = 0; i < job->d.remote_count; i++)
		free(job->remote[i]);
	free(job->remote);
	free(job);
}

static void start_batch(struct deliverer *d);

static void batch_done(void *arg)
{
	struct deliverer *d = arg;
	size_t count = d->batch_count;
	d->busy = false;
	d->batch_count = 0;
	/* Notify first: a reader woken by it finds the mail already there. */
	for (size_t i = 0; i < count; i++) {
		struct delivery_job *job = d->batch[i];
		if (job->d.result != 0 || d->notify == NULL)
			continue;
		for (size_t k = 0; k < job->d.account_count; k++)
			d->notify(d->notify_context, job->d.accounts[k]);
	}
	for (size_t i = 0; i < count; i++) {
		struct delivery_job *job = d->batch[i];
		d->pending--;
		if (job->d.result != 0)
			log_error("delivery failed: %s", job->d.error);
		if (job->cb != NULL)
			job->cb(job->context, job->d.result, job->d.error);
		job_free(job);
	}
	start_batch(d);
}

/* Moves waiting jobs into the batch. */
static void take_batch(struct deliverer *d)
{
	while (d->waiting_head != NULL && d->batch_count < DELIVER_MAX_BATCH) {
		struct delivery_job *job = d->waiting_head;
		d->waiting_head = job->next;
		d->waiting_count--;
		d->batch[d->batch_count++] = job;
	}
	if (d->waiting_head == NULL)
		d->waiting_tail = NULL;
	d->busy = true;
}

static void start_batch(struct deliverer *d)
{
	if (d->busy || d->stopping || d->waiting_head == NULL)
		return;
	take_batch(d);
	pool_submit(d->pool, batch_work, batch_done, d);
}

struct deliverer *deliverer_new(struct event_base *base, const char *data_dir,
				delivery_notify *notify, void *notify_context,
				const char **error_r)
{
	struct store *s = store_open(data_dir, error_r);
	if (s == NULL)
		return NULL;
	struct deliverer *d = xcalloc(1, sizeof(*d));
	d->base = base;
	d->store = s;
	d->pool = pool_new(base, 1);
	d->notify = notify;
	d->notify_context = notify_context;
	return d;
}

void deliverer_free(struct deliverer **dp)
{
	struct deliverer *d = *dp;
	if (d == NULL)
		return;
	/* pool_free runs the batch in flight to its end and answers it; what
	 * still waits is then delivered here, on this thread. */
	d->stopping = true;
	pool_free(&d->pool);
	while (d->waiting_head != NULL) {
		take_batch(d);
		batch_work(d);
		batch_done(d);
	}
	store_close(&d->store);
	free(d);
	*dp = NULL;
}

struct delivery_job *deliverer_submit(struct deliverer *d, uint8_t *data,
				      size_t size, const char *mailbox,
				      const uint64_t *accounts,
				      size_t account_count, const char *sender,
				      const char *const *remote,
				      size_t remote_count,
				      delivery_callback *cb, void *context)
{
	struct delivery_job *job = xcalloc(1, sizeof(*job));
	job->data = data;
	job->accounts = xcalloc(account_count, sizeof(uint64_t));
	if (account_count > 0)
		memcpy(job->accounts, accounts,
		       account_count * sizeof(uint64_t));
	job->uids = xcalloc(account_count, sizeof(uint32_t));
	job->sender = xstrdup(sender);
	job->remote = xcalloc(remote_count, sizeof(char *));
	for (size_t i = 0; i < remote_count; i++)
		job->remote[i] = xstrdup(remote[i]);
	job->d.data = data;
	job->d.size = size;
	job->d.internal_date = time(NULL);
	job->d.mailbox = mailbox;
	job->d.accounts = job->accounts;
	job->d.account_count = account_count;
	job->d.sender = job->sender;
	job->d.remote_recipients = (const char *const *)job->remote;
	job->d.remote_count = remote_count;
	job->d.uids = job->uids;
	job->cb = cb;
	job->context = context;
	if (d->waiting_tail)
		d->waiting_tail->next = job;
	else
		d->waiting_head = job;
	d->waiting_tail = job;
	d->waiting_count++;
	d->pending++;
	start_batch(d);
	return job;
}

void delivery_job_detach(struct delivery_job *job)
{
	job->cb = NULL;
	job->context = NULL;
}

size_t deliverer_pending(const struct deliverer *d)
{
	return d->pending;
}
