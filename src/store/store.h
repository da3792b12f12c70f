/* store.h: dijk's storage, backend-neutral.
 *
 * Domains, users and the outbound queue live in the meta store; credentials
 * in the separate credential store that only the auth process (and the
 * local admin) opens; each account's mailboxes and messages in an index of
 * its own; message bytes in immutable blobs. No SQL and no file path leaves
 * this folder: callers name things by address, account id, mailbox name
 * and UID.
 *
 * A struct store is used by one thread at a time. Errors are returned as
 * -1 with *error_r pointing at a message valid until the next call on the
 * same handle. */
#ifndef DIJK_STORE_H
#define DIJK_STORE_H

#include "core/common.h"

#include <time.h>

#define STORE_MAX_ADDRESS      320
#define STORE_MAX_MAILBOX_NAME 1024

struct store;

/* Creates the store below data_dir (which must exist). Idempotent. */
int store_create(const char *data_dir, const char **error_r);

/* Opens the store below data_dir. Returns NULL with *error_r on failure. */
struct store *store_open(const char *data_dir, const char **error_r);
/* Closes the store and sets *s to NULL. */
void store_close(struct store **s);

/* Domains. Names are stored in lower case. */
int store_domain_add(struct store *s, const char *domain, const char **error_r);
/* Refuses a domain that still has users. */
int store_domain_del(struct store *s, const char *domain, const char **error_r);
/* Returns 1 when the domain is local, 0 when not, -1 on error. */
int store_domain_exists(struct store *s, struct slice domain,
			const char **error_r);
/* Calls fn for every domain in name order. */
int store_domain_list(struct store *s,
		      void (*fn)(const char *domain, void *context),
		      void *context, const char **error_r);

/* Users. An address is local@domain; both are compared in lower case.
 * Adding a user creates the account's index with INBOX, Sent, Drafts,
 * Trash, Junk and Archive. */
int store_user_add(struct store *s, const char *address, uint64_t *account_id_r,
		   const char **error_r);
/* Deletes the user, their index and their credentials. */
int store_user_del(struct store *s, const char *address, const char **error_r);
/* Returns 1 and sets *account_id_r when the user exists, 0 when not, -1 on
 * error. */
int store_user_lookup(struct store *s, struct slice address,
		      uint64_t *account_id_r, const char **error_r);
/* The address of an account; writes at most size bytes (NUL included). */
int store_user_address(struct store *s, uint64_t account_id, char *address_r,
		       size_t size, const char **error_r);
/* Calls fn for every user (of domain, when not NULL) in address order. */
int store_user_list(struct store *s, const char *domain,
		    void (*fn)(const char *address, uint64_t account_id,
			       void *context),
		    void *context, const char **error_r);

/* Credentials: password hashes as PHC strings. */
struct store_credentials;
struct store_credentials *store_credentials_open(const char *data_dir,
						 const char **error_r);
void store_credentials_close(struct store_credentials **c);
int store_credentials_set_password(struct store_credentials *c,
				   uint64_t account_id, const char *phc,
				   const char **error_r);
/* Returns 1 and a malloc'd PHC string (caller frees and wipes) when the
 * account has a password, 0 when not, -1 on error. */
int store_credentials_get_password(struct store_credentials *c,
				   uint64_t account_id, char **phc_r,
				   const char **error_r);
int store_credentials_delete(struct store_credentials *c, uint64_t account_id,
			     const char **error_r);

/* Delivery. A delivery is one message for some local accounts (into their
 * INBOX) and some remote recipients (into the outbound queue). The caller
 * owns the struct and the bytes; the store only reads them during the call. */
struct store_delivery {
	const uint8_t *data;
	size_t size;
	time_t internal_date;
	const uint64_t *accounts;
	size_t account_count;
	const char *sender; /* envelope sender, for queued mail ("" for <>) */
	const char *const *remote_recipients;
	size_t remote_count;
	/* Results, set by store_deliver_batch. */
	int result;	   /* 0 or -1 */
	const char *error; /* when result is -1; static text */
	uint32_t *uids;	   /* account_count UIDs, allocated by caller */
};

/* Makes every delivery of the batch durable and visible: message bytes on
 * disk, then the index rows committed, one flush per batch where the
 * backend allows (group commit). Sets each delivery's result. Returns the
 * number of deliveries that failed. A delivery that failed for one of its
 * accounts may have succeeded for others. */
size_t store_deliver_batch(struct store *s, struct store_delivery *const *batch,
			   size_t count);

/* Reading. */
struct store_message_info {
	uint32_t uid;
	uint64_t modseq;
	uint64_t size;
	time_t internal_date;
};

struct store_mailbox_info {
	const char *name;
	const char *special_use; /* "\\Sent" etc., or NULL */
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	uint64_t messages;
};

int store_mailbox_list(struct store *s, uint64_t account_id,
		       void (*fn)(const struct store_mailbox_info *info,
				  void *context),
		       void *context, const char **error_r);
/* Calls fn for each message of the mailbox in UID order. */
int store_message_list(struct store *s, uint64_t account_id,
		       const char *mailbox,
		       void (*fn)(const struct store_message_info *info,
				  void *context),
		       void *context, const char **error_r);
/* Reads a message's bytes into a malloc'd buffer the caller frees. Returns
 * 1 when found, 0 when there is no such message, -1 on error. */
int store_message_read(struct store *s, uint64_t account_id,
		       const char *mailbox, uint32_t uid, uint8_t **data_r,
		       size_t *size_r, const char **error_r);

/* Outbound queue, as far as this issue goes: the number of queued
 * messages and a listing. */
struct store_queue_info {
	uint64_t id;
	const char *sender;
	const char *recipients; /* comma separated */
	uint64_t size;
	time_t created;
};
int store_queue_list(struct store *s,
		     void (*fn)(const struct store_queue_info *info,
				void *context),
		     void *context, const char **error_r);

#endif
