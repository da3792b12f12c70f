/* queue.c: the queue process (see queue.h).
 *
 * The loop thread owns the store: it picks due messages, reads their bytes
 * and records the outcome. Delivery threads (the pool) only sign and talk
 * SMTP. A recipient is marked delivered as soon as the attempt that
 * delivered it ends, and a failure's DSN is made durable before the
 * recipient is marked failed, so a crash at any point loses no notice; it
 * can at worst repeat one. */
#include "core/privsep.h"
#include "core/common.h"

#include "smtp/queue.h"

#include "core/buf.h"
#include "core/channel.h"
#include "core/log.h"
#include "core/pool.h"
#include "smtp/dkim.h"
#include "smtp/dns.h"
#include "smtp/dsn.h"
#include "smtp/outbound.h"
#include "store/store.h"

#include <ctype.h>
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

/* Largest DKIM-Signature fields of one message. */
#define QUEUE_MAX_SIGNATURES (16 * 1024)
/* How long a stop waits for deliveries in flight. Connections are cut at
 * once (outbound_cancel); what can still take long is a DNS lookup, which
 * libunbound cannot cut short. */
#define QUEUE_STOP_GRACE_MS 3000
/* Largest notice (DSN) built. */
#define QUEUE_MAX_DSN (DSN_MAX_HEADER + 256 * 1024)

/* A set of DKIM keys shared by the deliveries that started with it; a new
 * set replaces it when the keys change on disk (dijk dkim generate or
 * rotate), and the old one is freed when its last delivery ends. Loop
 * thread only. */
struct keys {
	struct dkim_signer *signer; /* NULL: sign nothing */
	unsigned users;
	bool replaced;
};

struct queue {
	const struct config *cfg;
	const char *data_dir;
	struct event_base *base;
	struct store *store;
	struct dns *dns;
	struct outbound *outbound;
	struct keys *keys;
	uint64_t keys_stamp;
	struct pool *pool;
	struct bufferevent *master;
	struct event *tick;
	uint64_t in_flight[CONFIG_MAX_QUEUE_DELIVERIES];
	size_t in_flight_count;
	bool stopping;
};

struct job {
	struct queue *q;
	struct keys *keys;
	struct store_queue_item item;
	uint8_t *data;
	size_t size;
	struct outbound_recipient *results; /* one per item recipient */
};

static void scan(struct queue *q);

/* ---- On a delivery thread ---- */

static const char *domain_of(const char *address)
{
	const char *at = strrchr(address, '@');
	return at ? at + 1 : "";
}

static void deliver_job(void *arg)
{
	struct job *job = arg;
	struct queue *q = job->q;
	struct slice message = slice_make(job->data, job->size);
	struct buf signatures;
	buf_init(&signatures, QUEUE_MAX_SIGNATURES);
	if (job->keys->signer != NULL) {
		/* Signed for the envelope sender's domain: the submission
		 * checked it is the user's own. A From: of another domain
		 * hosted here gets no signature of that domain, so one
		 * tenant cannot sign as another (its DMARC then fails, as it
		 * should). */
		char domain[DNS_MAX_NAME + 1] = "";
		const char *own = domain_of(job->item.sender);
		for (size_t i = 0; own[i] != '\0' && i < DNS_MAX_NAME; i++) {
			domain[i] = (char)tolower((unsigned char)own[i]);
			domain[i + 1] = '\0';
		}
		const char *error;
		if (domain[0] != '\0' &&
		    dkim_sign(job->keys->signer, domain, message, time(NULL),
			      &signatures, &error) < 0) {
			log_warning(
				"queue %llu: DKIM signing for %s failed: %s",
				(unsigned long long)job->item.id, domain,
				error);
			buf_reset(&signatures);
		}
	}
	/* One transaction per domain: the recipients are sorted by
	 * address, so gather each domain's. */
	size_t n = job->item.recipient_count;
	bool *done = xcalloc(n ? n : 1, sizeof(bool));
	struct outbound_recipient *group = xcalloc(n ? n : 1, sizeof(*group));
	size_t *index = xcalloc(n ? n : 1, sizeof(size_t));
	for (size_t i = 0; i < n; i++) {
		if (done[i])
			continue;
		const char *domain = domain_of(job->item.recipients[i]);
		size_t count = 0;
		for (size_t k = i; k < n; k++) {
			if (done[k] ||
			    strcasecmp(domain_of(job->item.recipients[k]),
				       domain) != 0)
				continue;
			done[k] = true;
			memset(&group[count], 0, sizeof(group[count]));
			group[count].address = job->item.recipients[k];
			index[count++] = k;
		}
		char lower[DNS_MAX_NAME + 1];
		size_t len = strlen(domain);
		if (len > DNS_MAX_NAME || len == 0 || domain[0] == '[') {
			for (size_t k = 0; k < count; k++) {
				struct outbound_recipient *r =
					&job->results[index[k]];
				r->address = group[k].address;
				r->status = OUTBOUND_FAILED;
				snprintf(r->reply, sizeof(r->reply),
					 "550 5.1.2 cannot deliver to the "
					 "domain of this address");
			}
			continue;
		}
		for (size_t k = 0; k <= len; k++)
			lower[k] = (char)tolower((unsigned char)domain[k]);
		outbound_deliver(q->outbound, lower, job->item.sender,
				 buf_slice(&signatures), message, group, count);
		for (size_t k = 0; k < count; k++)
			job->results[index[k]] = group[k];
	}
	free(done);
	free(group);
	free(index);
	buf_free(&signatures);
}

/* ---- Back on the loop ---- */

static void notify_master(struct queue *q, uint64_t account_id)
{
	channel_notify(q->master, account_id, "INBOX");
}

/* Sends a notice to the original sender: into their INBOX when local,
 * else into the queue with the null sender. Returns 0 once durable. */
static int send_notice(struct queue *q, const struct job *job,
		       const struct dsn_recipient *rcpts, size_t count,
		       bool delayed)
{
	struct dsn_report report = {
		.hostname = q->cfg->hostname,
		.sender = job->item.sender,
		.arrival = job->item.created,
		.now = time(NULL),
		.delayed = delayed,
		.recipients = rcpts,
		.recipient_count = count,
		.original = slice_make(job->data, job->size),
	};
	struct buf notice;
	buf_init(&notice, QUEUE_MAX_DSN);
	if (dsn_build(&report, &notice) != 0) {
		buf_free(&notice);
		log_error("queue %llu: notice too large",
			  (unsigned long long)job->item.id);
		return -1;
	}
	const char *error;
	uint64_t account = 0;
	int local = store_user_lookup(q->store, slice_cstr(job->item.sender),
				      &account, &error);
	if (local < 0) {
		buf_free(&notice);
		log_error("queue: %s", error);
		return -1;
	}
	uint32_t uid = 0;
	const char *remote[1] = {job->item.sender};
	struct store_delivery d = {
		.data = notice.p,
		.size = notice.n,
		.internal_date = report.now,
		.accounts = local ? &account : NULL,
		.account_count = local ? 1 : 0,
		.sender = "",
		.remote_recipients = local ? NULL : remote,
		.remote_count = local ? 0 : 1,
		.uids = &uid,
	};
	struct store_delivery *batch[1] = {&d};
	store_deliver_batch(q->store, batch, 1);
	buf_free(&notice);
	if (d.result != 0) {
		log_error("queue %llu: cannot store the notice to <%s>: %s",
			  (unsigned long long)job->item.id, job->item.sender,
			  d.error);
		return -1;
	}
	log_info("queue %llu: %s notice to <%s>",
		 (unsigned long long)job->item.id,
		 delayed ? "delay" : "failure", job->item.sender);
	if (local)
		notify_master(q, account);
	return 0;
}

static void forget(struct queue *q, uint64_t id)
{
	for (size_t i = 0; i < q->in_flight_count; i++) {
		if (q->in_flight[i] == id) {
			q->in_flight[i] = q->in_flight[--q->in_flight_count];
			return;
		}
	}
}

static void keys_release(struct keys *k)
{
	if (k == NULL || --k->users > 0 || !k->replaced)
		return;
	dkim_signer_free(&k->signer);
	free(k);
}

/* A number that changes whenever a key, a domain or an active selector
 * under DATA/dkim does (their modification times). */
static uint64_t keys_stamp(const char *data_dir)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/dkim", data_dir);
	struct stat st;
	if (stat(path, &st) != 0)
		return 0;
	uint64_t stamp = (uint64_t)st.st_mtim.tv_sec * 1000000007u +
			 (uint64_t)st.st_mtim.tv_nsec;
	DIR *dir = opendir(path);
	if (dir == NULL)
		return stamp;
	struct dirent *e;
	while ((e = readdir(dir)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		static const char *const names[] = {"", "/active"};
		for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
			char file[4096 + 512];
			snprintf(file, sizeof(file), "%s/%s%s", path, e->d_name,
				 names[i]);
			if (stat(file, &st) == 0)
				stamp = stamp * 31 +
					(uint64_t)st.st_mtim.tv_sec *
						1000000007u +
					(uint64_t)st.st_mtim.tv_nsec;
		}
	}
	closedir(dir);
	return stamp;
}

/* Loads the keys again when they changed. A rotated key stops signing
 * for every delivery that starts after this. */
static void keys_refresh(struct queue *q)
{
	uint64_t stamp = keys_stamp(q->data_dir);
	if (q->keys != NULL && stamp == q->keys_stamp)
		return;
	const char *error;
	struct keys *k = xcalloc(1, sizeof(*k));
	k->signer = dkim_signer_load(q->data_dir, &error);
	if (k->signer == NULL)
		log_error("DKIM keys: %s; mail goes out unsigned", error);
	else if (q->keys != NULL)
		log_info("DKIM keys loaded again");
	k->users = 1; /* the queue's own reference */
	if (q->keys != NULL) {
		q->keys->replaced = true;
		keys_release(q->keys);
	}
	q->keys = k;
	q->keys_stamp = stamp;
}

static void free_job(struct job *job)
{
	keys_release(job->keys);
	store_queue_item_free(&job->item);
	free(job->data);
	free(job->results);
	free(job);
}

static void job_done(void *arg)
{
	struct job *job = arg;
	struct queue *q = job->q;
	const struct config *cfg = q->cfg;
	const char *error;
	time_t now = time(NULL);
	size_t n = job->item.recipient_count;
	bool expired =
		now - job->item.created >= (time_t)cfg->queue_lifetime_seconds;
	bool null_sender = job->item.sender[0] == '\0';
	struct dsn_recipient *failed = xcalloc(n ? n : 1, sizeof(*failed));
	struct dsn_recipient *delayed = xcalloc(n ? n : 1, sizeof(*delayed));
	struct store_queue_mark *marks = xcalloc(n ? n : 1, sizeof(*marks));
	size_t failed_count = 0, delayed_count = 0, delivered = 0;
	char(*expiry)[600] = xcalloc(n ? n : 1, sizeof(*expiry));
	const char *last_error = "";

	for (size_t i = 0; i < n; i++) {
		struct outbound_recipient *r = &job->results[i];
		const char *address = job->item.recipients[i];
		log_info("queue %llu: to=<%s> %s%s%s: %s",
			 (unsigned long long)job->item.id, address,
			 r->status == OUTBOUND_DELIVERED ? "sent"
			 : r->status == OUTBOUND_FAILED	 ? "failed"
							 : "deferred",
			 r->remote_mta[0] ? " by " : "", r->remote_mta,
			 r->reply);
		if (r->status == OUTBOUND_DELIVERED) {
			marks[delivered++] = (struct store_queue_mark){
				address, STORE_RCPT_DELIVERED, r->reply};
			continue;
		}
		if (r->status == OUTBOUND_DEFERRED && !expired) {
			if (last_error[0] == '\0')
				last_error = r->reply;
			delayed[delayed_count++] = (struct dsn_recipient){
				.address = address,
				.reply = r->reply,
				.reply_is_remote = r->remote_reply,
				.remote_mta =
					r->remote_mta[0] ? r->remote_mta : NULL,
			};
			continue;
		}
		const char *reply = r->reply;
		if (r->status == OUTBOUND_DEFERRED) {
			/* Tried for the whole lifetime: a failure now. */
			snprintf(expiry[i], sizeof(expiry[i]),
				 "554 5.4.7 delivery time expired; last "
				 "error: %s",
				 r->reply);
			reply = expiry[i];
		}
		failed[failed_count++] = (struct dsn_recipient){
			.address = address,
			.reply = reply,
			.reply_is_remote =
				r->remote_reply && r->status == OUTBOUND_FAILED,
			.remote_mta = r->remote_mta[0] ? r->remote_mta : NULL,
		};
	}

	/* Notices to send: for the failures (a message with the null sender
	 * is itself a notice and gets none), and once for the delay. */
	bool failure_notice = failed_count > 0 && !null_sender;
	bool delay_notified = job->item.delay_notified;
	bool delay_notice = delayed_count > 0 && !delay_notified &&
			    cfg->queue_delay_notice_seconds > 0 &&
			    now - job->item.created >=
				    (time_t)cfg->queue_delay_notice_seconds;
	size_t marked = delivered;
	if (failure_notice || delay_notice) {
		/* The delivered ones are marked before any notice, and a
		 * failure after its notice is durable: a crash in between
		 * then repeats a notice, never a delivery or a loss. */
		if (delivered > 0 &&
		    store_queue_mark(q->store, job->item.id, marks, delivered,
				     &error) != 0)
			log_error("queue: %s", error);
		marked = 0;
	}
	bool notice_ok = !failure_notice ||
			 send_notice(q, job, failed, failed_count, false) == 0;
	if (notice_ok)
		for (size_t i = 0; i < failed_count; i++)
			marks[marked++] = (struct store_queue_mark){
				failed[i].address, STORE_RCPT_FAILED,
				failed[i].reply};
	if (delay_notice &&
	    (null_sender ||
	     send_notice(q, job, delayed, delayed_count, true) == 0))
		delay_notified = true;

	unsigned step = job->item.attempts < cfg->queue_retry_count
				? job->item.attempts
				: (unsigned)cfg->queue_retry_count - 1;
	/* Attempts are dated in whole seconds and now is this second's
	 * start: counted from the next one, no retry comes sooner than its
	 * interval after the attempt. */
	time_t next = now + 1 + (time_t)cfg->queue_retry[step];
	/* The last retry comes no later than the end of the lifetime. */
	time_t end = job->item.created + (time_t)cfg->queue_lifetime_seconds;
	if (next > end && end > now)
		next = end;
	/* An attempt cut short by a stop does not count as one. */
	if (q->stopping)
		next = now;
	/* Usually the one commit of the attempt. */
	if (store_queue_attempted(q->store, job->item.id, marks, marked, next,
				  last_error, delay_notified, &error) != 0)
		log_error("queue: %s", error);
	forget(q, job->item.id);
	free(expiry);
	free(marks);
	free(failed);
	free(delayed);
	free_job(job);
	scan(q);
}

static void scan(struct queue *q)
{
	if (q->stopping)
		return;
	size_t room = q->cfg->queue_deliveries - q->in_flight_count;
	if (room == 0)
		return;
	struct store_queue_item *items = xcalloc(room, sizeof(*items));
	const char *error;
	ssize_t count =
		store_queue_due(q->store, time(NULL), q->in_flight,
				q->in_flight_count, items, room, &error);
	if (count < 0)
		log_error("queue: %s", error);
	for (ssize_t i = 0; i < count; i++) {
		struct job *job = xcalloc(1, sizeof(*job));
		job->q = q;
		job->item = items[i];
		if (store_queue_read(q->store, &job->item, &job->data,
				     &job->size, &error) != 0) {
			/* Without its bytes the message cannot go; it stays
			 * for the admin and is tried again later. */
			log_error("queue %llu: %s",
				  (unsigned long long)job->item.id, error);
			store_queue_attempted(q->store, job->item.id, NULL, 0,
					      time(NULL) + 3600,
					      "cannot read the message",
					      job->item.delay_notified, &error);
			free_job(job);
			continue;
		}
		job->keys = q->keys;
		q->keys->users++;
		job->results = xcalloc(job->item.recipient_count
					       ? job->item.recipient_count
					       : 1,
				       sizeof(*job->results));
		q->in_flight[q->in_flight_count++] = job->item.id;
		pool_submit(q->pool, deliver_job, job_done, job);
	}
	free(items);
}

/* The tick comes just after each whole second of the clock, when what
 * fell due in that second (queue entries are dated in whole seconds) is
 * due: a retry waits its interval, not up to a second more. */
static void arm_tick(struct queue *q)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	long usec = 1000000 - now.tv_nsec / 1000 + 5000;
	struct timeval wait = {usec / 1000000, usec % 1000000};
	event_add(q->tick, &wait);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	struct queue *q = arg;
	if (!q->stopping)
		arm_tick(q);
	/* Once a second, not per scan: a scan follows every delivery. */
	keys_refresh(q);
	scan(q);
}

static void begin_stop(struct queue *q)
{
	if (q->stopping)
		return;
	q->stopping = true;
	log_info("shutting down");
	event_del(q->tick);
	/* Deliveries under way end deferred and are tried again after the
	 * restart. */
	outbound_cancel(q->outbound);
	event_base_loopexit(q->base, NULL);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)sig, (void)what;
	begin_stop(arg);
}

static void master_read(struct bufferevent *bev, void *arg)
{
	/* Any change may have queued mail: look now rather than at the
	 * next tick. */
	struct evbuffer *in = bufferevent_get_input(bev);
	evbuffer_drain(in, evbuffer_get_length(in));
	scan(arg);
}

static void master_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	struct queue *q = arg;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		log_warning("lost the master process; shutting down");
		bufferevent_free(q->master);
		q->master = NULL;
		begin_stop(q);
	}
}

int queue_run(const struct queue_params *p)
{
	log_set_process("queue");
	signal(SIGPIPE, SIG_IGN);
	const struct config *cfg = p->config;
	struct queue *q = xcalloc(1, sizeof(*q));
	q->cfg = cfg;
	q->data_dir = p->data_dir;
	const char *error;
	int status = 1;
	q->base = event_base_new();
	q->store = store_open(p->data_dir, &error);
	if (q->store == NULL) {
		log_error("%s", error);
		goto out;
	}
	q->dns = dns_new(cfg->dns_resolver, cfg->dns_trust_anchor, &error);
	if (q->dns == NULL) {
		log_error("%s", error);
		goto out;
	}
	struct outbound_config oc = {
		.hostname = cfg->hostname,
		.port = cfg->outbound_port,
		.bind_address = cfg->outbound_bind,
		.tls_ca_file = cfg->outbound_tls_ca,
		.mta_sts_port = cfg->mta_sts_port,
		.dns = dns_resolver(q->dns),
	};
	q->outbound = outbound_new(&oc, &error);
	if (q->outbound == NULL) {
		log_error("%s", error);
		goto out;
	}
	keys_refresh(q);
	q->pool = pool_new(q->base, cfg->queue_deliveries);
	if (p->master_fd >= 0) {
		q->master = bufferevent_socket_new(q->base, p->master_fd,
						   BEV_OPT_CLOSE_ON_FREE);
		bufferevent_setcb(q->master, master_read, NULL, master_event,
				  q);
		bufferevent_enable(q->master, EV_READ | EV_WRITE);
	}
	q->tick = event_new(q->base, -1, 0, on_tick, q);
	arm_tick(q);
	struct event *term = evsignal_new(q->base, SIGTERM, on_signal, q);
	struct event *intr = evsignal_new(q->base, SIGINT, on_signal, q);
	event_add(term, NULL);
	event_add(intr, NULL);
	/* Setup is done: from here on, the role's user and filter. */
	privsep_lock_down();
	process_signals_ready();
	log_info("ready");
	scan(q);
	event_base_dispatch(q->base);
	/* Records what the deliveries in flight did, as they end. */
	struct timeval poll_interval = {0, 50 * 1000};
	for (int waited = 0;
	     pool_pending(q->pool) > 0 && waited < QUEUE_STOP_GRACE_MS;
	     waited += 50) {
		event_base_loopexit(q->base, &poll_interval);
		event_base_dispatch(q->base);
	}
	if (pool_pending(q->pool) > 0) {
		/* Still waiting for DNS: what they would have recorded is
		 * recorded by the next attempt after the restart. Nothing
		 * is freed while their threads may still use it. */
		log_warning("%zu deliveries still in flight; they will be "
			    "tried again",
			    pool_pending(q->pool));
		exit(0);
	}
	pool_free(&q->pool);
	event_free(term);
	event_free(intr);
	status = 0;
out:
	if (q->tick != NULL)
		event_free(q->tick);
	if (q->master != NULL)
		bufferevent_free(q->master);
	if (q->keys != NULL) {
		q->keys->replaced = true;
		keys_release(q->keys);
	}
	outbound_free(&q->outbound);
	dns_free(&q->dns);
	store_close(&q->store);
	event_base_free(q->base);
	free(q);
	log_info("stopped");
	return status;
}
