/* channel.c: notifications to the master (see channel.h). */
#include "core/common.h"

#include "core/channel.h"

#include "core/buf.h"
#include "core/ipc.h"

#include <event2/bufferevent.h>

void channel_notify(struct bufferevent *master, uint64_t account_id,
		    const char *mailbox)
{
	if (master == NULL)
		return;
	struct buf out;
	buf_init(&out, IPC_MAX_FRAME);
	ipc_begin(&out, IPC_NOTIFY_MAILBOX, 0);
	ipc_put_u64(&out, account_id);
	ipc_put_bytes(&out, slice_cstr(mailbox));
	if (ipc_end(&out) == 0)
		bufferevent_write(master, out.p, out.n);
	buf_free(&out);
}
