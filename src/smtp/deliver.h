/* deliver.h: local delivery with group commit for an smtp worker.
 *
 * Deliveries handed in while a batch is being made durable wait, and all of
 * them go into the next batch together: one flush for many messages. The
 * callback runs on the loop once the message is durable (or has failed). */
#ifndef DIJK_SMTP_DELIVER_H
#define DIJK_SMTP_DELIVER_H

#include "core/common.h"

#include <time.h>

struct event_base;
struct deliverer;
struct delivery_job;

/* Largest batch committed at once. */
#define DELIVER_MAX_BATCH 256

/* result: 0 delivered, -1 failed (error says why). */
typedef void delivery_callback(void *context, int result, const char *error);
/* Called after each batch with each account that got mail. */
typedef void delivery_notify(void *context, uint64_t account_id);

struct deliverer *deliverer_new(struct event_base *base, const char *data_dir,
				delivery_notify *notify, void *notify_context,
				const char **error_r);
/* Waits for deliveries in flight (running their callbacks) and frees. */
void deliverer_free(struct deliverer **d);

/* Hands over a message: data (malloc'd, freed by the deliverer), local
 * account ids, the mailbox it goes into (NULL: INBOX; a static string),
 * remote recipients (copied) and the envelope sender (copied). Returns a
 * handle valid until the callback runs. */
struct delivery_job *deliverer_submit(struct deliverer *d, uint8_t *data,
				      size_t size, const char *mailbox,
				      const uint64_t *accounts,
				      size_t account_count, const char *sender,
				      const char *const *remote,
				      size_t remote_count,
				      delivery_callback *cb, void *context);

/* The caller no longer wants the callback (its session ended). The message
 * is still delivered. */
void delivery_job_detach(struct delivery_job *job);

/* Deliveries submitted and not yet answered. */
size_t deliverer_pending(const struct deliverer *d);

#endif
