/* auditd.h: the audit log inside the auth process.
 *
 * Entries from the workers (IPC_AUDIT_EVENT) and from the auth process's
 * own decisions (logins, sessions, password changes) are appended on the
 * pool threads, never on the loop, each thread with its own handle on
 * DATA/audit.db. A day's retention run starts at start-up and then daily.
 * There is deliberately no request that changes or deletes an entry. */
#ifndef DIJK_AUTH_AUDITD_H
#define DIJK_AUTH_AUDITD_H

#include "core/common.h"

#include "core/buf.h"
#include "core/ipc.h"
#include "store/audit.h"

struct event_base;
struct pool;

/* An activity page holds at most this many entries (fewer when they do
 * not fit one IPC frame). */
#define AUDITD_PAGE_MAX 100

/* Starts the audit log of the auth process: pool and data_dir stay the
 * caller's and must outlive auditd_stop. Loop thread only. */
void auditd_start(struct event_base *base, struct pool *pool,
		  const char *data_dir, unsigned retention_days);
/* Stops the daily timer. */
void auditd_stop(void);
/* Closes the threads' handles; after the pool has stopped. */
void auditd_close(void);

/* Appends a copy of e (time stamped now) on the pool. Loop thread only. */
void auditd_record(const struct store_audit_entry *e);

/* Calls fn(arg) on the loop once every entry recorded so far is written
 * (at once when none waits, and at the latest at auditd_stop): an
 * activity page then shows what came before it was asked for. Loop
 * thread only. */
void auditd_after_queued(void (*fn)(void *), void *arg);

/* Takes an IPC_AUDIT_EVENT frame, checked like network input, and records
 * it. -1 when it is malformed. Loop thread only. */
int auditd_event_frame(const struct ipc_frame *f);

/* On a pool thread: builds the IPC_AUDIT_PAGE reply of request id into
 * out: account_id's entries below before_id (0: from the newest), at most
 * limit (and AUDITD_PAGE_MAX), and whether more are left; session is the
 * asking session's public id.
 * An account id of 0 gives an empty page that says "no session". */
void auditd_page(uint64_t account_id, const char *session, int64_t before_id,
		 size_t limit, uint32_t id, struct buf *out);

#endif
