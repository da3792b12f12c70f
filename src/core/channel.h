/* channel.h: what a child says to the master over its channel. */
#ifndef DIJK_CHANNEL_H
#define DIJK_CHANNEL_H

#include "core/common.h"

struct bufferevent;

/* Tells the master (which tells every other child) that an account's mail
 * changed; mailbox may be "" when it is not one mailbox. Does nothing
 * without a channel (master NULL). */
void channel_notify(struct bufferevent *master, uint64_t account_id,
		    const char *mailbox);

#endif
