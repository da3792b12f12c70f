/* audit_client.h: the workers' side of the audit log. Workers never open
 * the log: they send what happened to the auth process (IPC_AUDIT_EVENT),
 * which alone appends, and ask it for an account's own entries
 * (IPC_AUDIT_QUERY) for the webmail's Activity page. */
#ifndef DIJK_AUTH_AUDIT_CLIENT_H
#define DIJK_AUTH_AUDIT_CLIENT_H

#include "core/common.h"

#include "auth/audit_wire.h"
#include "auth/auth.h"
#include "store/audit.h"

/* What a worker reports. Strings may be NULL (empty); each is cut to its
 * STORE_AUDIT_MAX_ limit. */
struct audit_event {
	uint64_t account_id;
	const char *user;
	const char *protocol;
	const char *remote;
	const char *session;
	const char *action;
	const char *detail;
};

/* Sends e to the auth process without waiting for anything: never blocks
 * the loop, and a lost connection loses the entry (with a log line). */
void auth_audit(struct auth_client *c, const struct audit_event *e);

/* Sends count fields as one IPC_AUDIT_EVENT frame (client.c). */
void auth_send_event(struct auth_client *c, const struct slice *fields,
		     size_t count);

/* An activity page: on AUTH_OK, page is the IPC_AUDIT_PAGE payload, valid
 * during the call (read it with audit_page_begin/audit_page_next of
 * auth/audit_wire.h); on
 * AUTH_UNAVAILABLE it is empty. */
typedef void auth_activity_callback(void *context, enum auth_result result,
				    struct slice page);
/* Asks for the entries of the session's account with ids below before_id
 * (0: the newest), at most limit. cb runs later, once, unless cancelled. */
struct auth_request *auth_activity(struct auth_client *c,
				   const uint8_t token[AUTH_TOKEN_SIZE],
				   int64_t before_id, size_t limit,
				   auth_activity_callback *cb, void *context);

#endif
