/* queue.h: the queue process of 'dijk serve': outbound delivery.
 *
 * Looks for due messages in the store's queue every second (and whenever
 * the master relays a change), hands each to a delivery thread (at most
 * queue.deliveries at once) that signs it with DKIM and delivers it domain
 * by domain (outbound.h), then records each recipient's fate: delivered,
 * failed (a DSN to the sender) or deferred (tried again after the next
 * step of queue.retry, a delay notice once after queue.delay_notice, a DSN
 * once queue.lifetime is over). The only process that reads DKIM keys. */
#ifndef DIJK_SMTP_QUEUE_H
#define DIJK_SMTP_QUEUE_H

#include "core/common.h"

#include "core/config.h"

struct queue_params {
	const struct config *config;
	const char *data_dir;
	int master_fd; /* channel to master, -1 without */
};

/* Runs until SIGTERM or the master goes; returns the exit status. */
int queue_run(const struct queue_params *params);

#endif
