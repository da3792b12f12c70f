/* audit.h: the rows of the access audit log (DATA/audit.db).
 *
 * A log of its own, apart from meta.db, so that only the auth process and
 * the local admin open it: protocol workers never get a handle on it. This
 * layer only stores and reads rows; the chain of MACs that makes tampering
 * visible is computed by auth/audit.c, which also decides ids and times.
 *
 * A struct store_audit is used by one thread at a time. Errors are -1 with
 * *error_r valid until the next call on the same handle. */
#ifndef DIJK_STORE_AUDIT_H
#define DIJK_STORE_AUDIT_H

#include "core/common.h"

#include "store/store.h"

#define STORE_AUDIT_MAC_SIZE	 32
#define STORE_AUDIT_MAX_PROTOCOL 15
#define STORE_AUDIT_MAX_REMOTE	 63
#define STORE_AUDIT_MAX_SESSION	 63
#define STORE_AUDIT_MAX_ACTION	 31
#define STORE_AUDIT_MAX_DETAIL	 1023

/* One entry. Strings are NUL-terminated and at most their STORE_AUDIT_MAX_
 * bytes long; a stored row with a longer field is cut when read (which its
 * MAC then shows). */
struct store_audit_entry {
	int64_t id;
	int64_t time; /* Unix seconds */
	uint64_t account_id;
	char user[STORE_MAX_ADDRESS + 1];
	char protocol[STORE_AUDIT_MAX_PROTOCOL + 1];
	char remote[STORE_AUDIT_MAX_REMOTE + 1];
	char session[STORE_AUDIT_MAX_SESSION + 1];
	char action[STORE_AUDIT_MAX_ACTION + 1];
	char detail[STORE_AUDIT_MAX_DETAIL + 1];
	uint8_t mac[STORE_AUDIT_MAC_SIZE];
};

struct store_audit;

/* Opens (creating, mode 0600) DATA/audit.db. NULL with *error_r. */
struct store_audit *store_audit_open(const char *data_dir,
				     const char **error_r);
void store_audit_close(struct store_audit **a);

/* A write transaction that holds the database's write lock from its start,
 * so that reading the last entry and appending the next one cannot
 * interleave with another writer (the auth process and the admin CLI). */
int store_audit_begin(struct store_audit *a, const char **error_r);
int store_audit_commit(struct store_audit *a, const char **error_r);
void store_audit_rollback(struct store_audit *a);
/* A read transaction: the reads until store_audit_rollback see one
 * snapshot. */
int store_audit_begin_read(struct store_audit *a, const char **error_r);

/* The entry with the highest id: 1 with *entry_r, 0 when the log is
 * empty. */
int store_audit_last(struct store_audit *a, struct store_audit_entry *entry_r,
		     const char **error_r);
/* The entry of id: 1, or 0 when there is none. */
int store_audit_get(struct store_audit *a, int64_t id,
		    struct store_audit_entry *entry_r, const char **error_r);
/* Stores e as it is, id and mac included. */
int store_audit_insert(struct store_audit *a, const struct store_audit_entry *e,
		       const char **error_r);
/* The lowest id of an entry dated at or after time: 1 with *id_r, 0 when
 * there is none. */
int store_audit_first_since(struct store_audit *a, int64_t time, int64_t *id_r,
			    const char **error_r);
/* Deletes every entry with an id up to last_id; *count_r of them. */
int store_audit_delete_through(struct store_audit *a, int64_t last_id,
			       int64_t *count_r, const char **error_r);

/* What store_audit_scan returns. Zero fields match everything. */
struct store_audit_query {
	uint64_t account_id;
	const char *user;   /* exact address */
	const char *action; /* exact action */
	int64_t since;	    /* time at or after */
	int64_t before_id;  /* id below */
	size_t limit;
	bool newest_first;
};
/* Calls fn for each matching entry (oldest first unless newest_first);
 * fn returns nonzero to stop early. The entry is valid during the call. */
int store_audit_scan(struct store_audit *a, const struct store_audit_query *q,
		     int (*fn)(const struct store_audit_entry *e,
			       void *context),
		     void *context, const char **error_r);

#endif
