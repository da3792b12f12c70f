/* audit.h: dijk's tamper-evident access audit log.
 *
 * Entries live in DATA/audit.db (store/audit.h). Each carries
 *   mac = HMAC-SHA256(key, prev_mac || canonical encoding of its fields)
 * where prev_mac is the MAC of the entry before it (32 zero bytes for the
 * very first) and key is 32 random bytes in DATA/audit.key (0600, made on
 * first use). Without the key an entry can be neither changed, inserted
 * nor removed from the middle without audit_verify noticing.
 *
 * Retention drops whole days and appends an entry of action "retention"
 * whose detail records the dropped ids and the MAC of the last one, so the
 * chain may start after a drop that a signed marker vouches for.
 *
 * Writers: the auth process (for the workers, on its pool threads) and the
 * admin command line. Nothing else opens the log; there is no call that
 * changes or deletes an entry other than retention. */
#ifndef DIJK_AUTH_AUDIT_H
#define DIJK_AUTH_AUDIT_H

#include "core/common.h"

#include "auth/audit_wire.h"
#include "store/audit.h"

#define AUDIT_KEY_SIZE 32
/* Default of audit.retention_days; 0 keeps everything. */
#define AUDIT_DEFAULT_RETENTION_DAYS 180
#define AUDIT_RETENTION_ACTION	     "retention"
/* A webmail mailbox view: coalesced per session and mailbox over
 * AUDIT_VIEW_COALESCE_SECONDS, since the webmail polls. */
#define AUDIT_VIEW_ACTION	    "view mailbox"
#define AUDIT_VIEW_COALESCE_SECONDS 900

struct audit_log;

/* Opens the log and its key below data_dir, making either on first use.
 * NULL with *error_r. */
struct audit_log *audit_open(const char *data_dir, const char **error_r);
/* Closes, wipes the key and sets *log to NULL. */
void audit_close(struct audit_log **log);

/* Appends e: assigns e->id, sets e->time to now when it is 0, computes
 * e->mac. Fields longer than their limits were cut by the caller. */
int audit_append(struct audit_log *log, struct store_audit_entry *e,
		 const char **error_r);
/* Appends e[0] .. e[n - 1] in that order as audit_append does, in one
 * transaction: one write to disk for them all. When that fails, each is
 * tried on its own, so that an entry that cannot be written costs only
 * itself. Returns how many were appended; *error_r says why the last one
 * that failed did. */
size_t audit_append_batch(struct audit_log *log, struct store_audit_entry **e,
			  size_t n, const char **error_r);

/* Drops whole UTC days older than days before now (nothing when days is
 * 0) and appends the signed marker; *dropped_r entries went. */
int audit_retention(struct audit_log *log, int64_t now, unsigned days,
		    int64_t *dropped_r, const char **error_r);

/* The same for the whole UTC days before the one cutoff falls in, whatever
 * their age (the admin's 'dijk audit prune'); the marker is dated now. */
int audit_drop_before(struct audit_log *log, int64_t cutoff, int64_t now,
		      int64_t *dropped_r, const char **error_r);

struct audit_verify_result {
	int64_t count;	/* entries checked */
	int64_t bad_id; /* first entry where the chain breaks */
	char why[160];
};
/* Recomputes the chain. Returns 0 when it holds, 1 when it does not (with
 * bad_id and why), -1 when the log cannot be read. */
int audit_verify(struct audit_log *log, struct audit_verify_result *result_r,
		 const char **error_r);

/* The store handle, for reading entries (store_audit_scan). */
struct store_audit *audit_store(struct audit_log *log);

/* The MAC of e after prev: exposed for the unit tests. */
void audit_mac(const uint8_t key[AUDIT_KEY_SIZE],
	       const uint8_t prev[STORE_AUDIT_MAC_SIZE],
	       const struct store_audit_entry *e,
	       uint8_t mac_r[STORE_AUDIT_MAC_SIZE]);

#endif
