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

#include "core/buf.h"

#include <sys/types.h>
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
/* Webmail sessions, by the SHA-256 of their token (the token itself is
 * never stored). */
#define STORE_SESSION_HASH_SIZE 32
#define STORE_SESSION_HOST_SIZE 256
struct store_session {
	uint8_t hash[STORE_SESSION_HASH_SIZE];
	uint64_t account_id;
	time_t created, last_used;
	char remote[64];
	char user_agent[256];
	/* The host name the session was made at (lowercase, no port): it
	 * is good there only, so a cookie of one brand's host is refused on
	 * another's. */
	char host[STORE_SESSION_HOST_SIZE];
};
int store_session_add(struct store_credentials *c,
		      const struct store_session *session,
		      const char **error_r);
/* Returns 1 (found), 0 or -1. */
int store_session_get(struct store_credentials *c,
		      const uint8_t hash[STORE_SESSION_HASH_SIZE],
		      struct store_session *session_r, const char **error_r);
int store_session_touch(struct store_credentials *c,
			const uint8_t hash[STORE_SESSION_HASH_SIZE], time_t now,
			const char **error_r);
/* Returns the number of sessions removed (0 or 1), or -1. */
int store_session_delete(struct store_credentials *c,
			 const uint8_t hash[STORE_SESSION_HASH_SIZE],
			 const char **error_r);
/* Removes every session of the account but the one of keep_hash (say,
 * after a password change); returns how many, or -1. */
int store_session_delete_others(
	struct store_credentials *c, uint64_t account_id,
	const uint8_t keep_hash[STORE_SESSION_HASH_SIZE], const char **error_r);
/* Removes sessions idle since before idle_before or created before
 * created_before; returns how many, or -1. */
int store_session_expire(struct store_credentials *c, time_t idle_before,
			 time_t created_before, const char **error_r);
/* Calls fn for each session of the account, newest use first, at most
 * max of them. Returns 0 or -1. */
int store_session_list(struct store_credentials *c, uint64_t account_id,
		       size_t max,
		       void (*fn)(const struct store_session *session,
				  void *context),
		       void *context, const char **error_r);

/* Second factors (auth.db, read by the auth process only).
 * A TOTP secret is kept sealed by the auth process (the store never sees it
 * in the clear) with the state that stops replay and guessing. enabled is
 * false between the start of an enrollment and its first good code. */
#define STORE_TOTP_BOX_MAX 128
struct store_totp {
	uint8_t box[STORE_TOTP_BOX_MAX];
	size_t box_size;
	bool enabled;
	uint64_t last_step;
	unsigned failures;
	int64_t locked_until;
};
/* Returns 1 with *totp_r, 0 when the account has none, -1 on error. */
int store_totp_get(struct store_credentials *c, uint64_t account_id,
		   struct store_totp *totp_r, const char **error_r);
/* Stores the account's TOTP record, replacing any. */
int store_totp_set(struct store_credentials *c, uint64_t account_id,
		   const struct store_totp *totp, const char **error_r);
/* Removes the account's TOTP record and its recovery codes. */
int store_totp_delete(struct store_credentials *c, uint64_t account_id,
		      const char **error_r);

/* Recovery codes, by the SHA-256 of each (the codes are random and long
 * enough that a fast hash is safe). */
#define STORE_RECOVERY_HASH_SIZE 32
/* Replaces the account's recovery codes with these count hashes. */
int store_recovery_set(struct store_credentials *c, uint64_t account_id,
		       const uint8_t (*hashes)[STORE_RECOVERY_HASH_SIZE],
		       size_t count, const char **error_r);
/* Uses up a code: 1 when it was one of the account's (now removed), 0
 * when not, -1 on error. */
int store_recovery_use(struct store_credentials *c, uint64_t account_id,
		       const uint8_t hash[STORE_RECOVERY_HASH_SIZE],
		       const char **error_r);
/* How many codes are left, or -1. */
int store_recovery_count(struct store_credentials *c, uint64_t account_id,
			 const char **error_r);

/* App passwords: named Argon2id hashes for IMAP and SMTP. */
#define STORE_APP_PASSWORD_NAME_MAX 64
struct store_app_password {
	int64_t id;
	char name[STORE_APP_PASSWORD_NAME_MAX + 1];
	time_t created, last_used; /* last_used 0: never */
	const char *phc;	   /* valid during the callback only */
};
/* Adds one; its id in *id_r. */
int store_app_password_add(struct store_credentials *c, uint64_t account_id,
			   const char *name, const char *phc, time_t created,
			   int64_t *id_r, const char **error_r);
/* Calls fn for each of the account's app passwords, oldest first. */
int store_app_password_list(struct store_credentials *c, uint64_t account_id,
			    void (*fn)(const struct store_app_password *app,
				       void *context),
			    void *context, const char **error_r);
int store_app_password_touch(struct store_credentials *c, int64_t id,
			     time_t now, const char **error_r);
/* Removes one of the account's app passwords: 1, 0 (no such) or -1. */
int store_app_password_delete(struct store_credentials *c, uint64_t account_id,
			      int64_t id, const char **error_r);
/* Removes the account's password and sessions. */
int store_credentials_delete(struct store_credentials *c, uint64_t account_id,
			     const char **error_r);

/* System flags of a message (IMAP \Seen ... \Draft), as bits. */
enum store_flag {
	STORE_FLAG_SEEN = 1 << 0,
	STORE_FLAG_ANSWERED = 1 << 1,
	STORE_FLAG_FLAGGED = 1 << 2,
	STORE_FLAG_DELETED = 1 << 3,
	STORE_FLAG_DRAFT = 1 << 4,
};
#define STORE_FLAGS_ALL 0x1f

/* The calling thread's own store handle, opened on first use (a pool
 * thread's; handles are not shared between threads). Panics when the store
 * cannot be opened. */
struct store *store_thread_handle(const char *data_dir);
/* Closes every thread's handle: once the pool threads have stopped. */
void store_thread_handles_close(void);

/* Webmail brands. A brand is a look (display name, colour, logo) and the
 * domains whose users log in through it. */
#define STORE_MAX_BRAND_NAME	32
#define STORE_MAX_BRAND_DISPLAY 128
#define STORE_MAX_BRAND_DOMAINS 64
#define STORE_MAX_LOGO_SIZE	(256 * 1024)

struct store_brand {
	const char *name;    /* [a-z0-9-], 1 to 32 */
	const char *display; /* UTF-8, no control characters */
	const char *color;   /* "#rgb" or "#rrggbb", lower case */
	const uint8_t *logo; /* PNG, JPEG, GIF or WebP; NULL: none */
	size_t logo_size;
	const char *logo_type; /* "image/png"..., set by the store */
	const char *const *domains;
	size_t domain_count;
};

/* Adds a brand. Checks every field; the logo's type comes from its bytes
 * (SVG is refused: it can carry script). Each domain must exist and belong
 * to no other brand. */
int store_brand_add(struct store *s, const struct store_brand *b,
		    const char **error_r);
int store_brand_del(struct store *s, const char *name, const char **error_r);
/* Calls fn for each brand, by name; the struct is valid during the call. */
int store_brand_each(struct store *s,
		     void (*fn)(const struct store_brand *b, void *context),
		     void *context, const char **error_r);

/* Delivery. A delivery is one message for some local accounts (into their
 * INBOX) and some remote recipients (into the outbound queue). The caller
 * owns the struct and the bytes; the store only reads them during the call. */
struct store_delivery {
	const uint8_t *data;
	size_t size;
	time_t internal_date;
	/* Target mailbox (NULL: INBOX), flags (STORE_FLAG_* bits) and
	 * keywords (space-separated) for every account of the delivery;
	 * IMAP APPEND sets them. */
	const char *mailbox;
	unsigned flags;
	const char *keywords;
	const uint64_t *accounts;
	size_t account_count;
	const char *sender; /* envelope sender, for queued mail ("" for <>) */
	const char *const *remote_recipients;
	size_t remote_count;
	/* Results, set by store_deliver_batch. */
	int result;	      /* 0 or -1 */
	const char *error;    /* when result is -1; static text */
	uint32_t *uids;	      /* account_count UIDs, allocated by caller */
	uint32_t uidvalidity; /* of the target mailbox, for APPENDUID */
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

/* ---- Mailboxes (IMAP) ----
 * Names are UTF-8 with '/' as the hierarchy separator; "INBOX" is the
 * inbox in any case. */
#define STORE_HIERARCHY_SEPARATOR '/'

struct store_mailbox {
	uint64_t id;
	char name[STORE_MAX_MAILBOX_NAME + 1];
	char special_use[16]; /* "\Sent", or "" */
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	bool subscribed;
	/* counts, filled by store_mailbox_status */
	uint64_t messages, unseen, deleted, size, deleted_size;
	uint64_t recent; /* messages no session has claimed as recent */
};

/* Looks a mailbox up by name. Returns 1 (found), 0 or -1. */
int store_mailbox_get(struct store *s, uint64_t account_id, const char *name,
		      struct store_mailbox *out, const char **error_r);
/* JMAP's counts of a mailbox (RFC 8621 2): messages, those with neither
 * \Seen nor \Draft, conversations with a message here, and those of them
 * with an unread message (in any mailbox). */
struct store_mailbox_counts {
	uint64_t emails, unread_emails, threads, unread_threads;
};
int store_mailbox_counts(struct store *s, uint64_t account_id,
			 uint64_t mailbox_id, struct store_mailbox_counts *out,
			 const char **error_r);

/* Claims the mailbox's messages below UID upto as recent (IMAP4rev1's
 * \Recent) for the calling session: *from_r gets the first UID no session
 * had claimed before, so the claim is [*from_r, upto) when *from_r < upto
 * and nothing otherwise. Each message is claimed by one session only. The
 * claim is not worth a flush of its own: a crash may make messages recent
 * again. Returns 0 or -1. */
int store_recent_claim(struct store *s, uint64_t account_id,
		       uint64_t mailbox_id, uint32_t upto, uint32_t *from_r,
		       const char **error_r);
/* The same plus message counts. */
int store_mailbox_status(struct store *s, uint64_t account_id, const char *name,
			 struct store_mailbox *out, const char **error_r);
/* Calls fn for each mailbox in name order (counts not filled). */
int store_mailbox_each(struct store *s, uint64_t account_id,
		       void (*fn)(const struct store_mailbox *m, void *context),
		       void *context, const char **error_r);
/* Calls fn for each subscribed name, existing or not. */
int store_subscription_each(struct store *s, uint64_t account_id,
			    void (*fn)(const char *name, void *context),
			    void *context, const char **error_r);

enum store_mailbox_error {
	STORE_MAILBOX_OK = 0,
	STORE_MAILBOX_FAILED = -1,	 /* I/O or database: *error_r */
	STORE_MAILBOX_EXISTS = -2,	 /* ALREADYEXISTS */
	STORE_MAILBOX_NONEXISTENT = -3,	 /* NONEXISTENT */
	STORE_MAILBOX_HAS_CHILDREN = -4, /* delete refused */
	STORE_MAILBOX_BAD_NAME = -5,	 /* empty level, too long, ... */
	STORE_MAILBOX_INBOX = -6,	 /* INBOX cannot be deleted */
};
/* Creates name and any missing parents. */
int store_mailbox_create(struct store *s, uint64_t account_id, const char *name,
			 const char **error_r);
int store_mailbox_delete(struct store *s, uint64_t account_id, const char *name,
			 const char **error_r);
/* Renames the mailbox and its children. Renaming INBOX moves its messages
 * into a new mailbox and leaves INBOX empty (RFC 3501 6.3.5). */
int store_mailbox_rename(struct store *s, uint64_t account_id, const char *from,
			 const char *to, const char **error_r);
int store_mailbox_subscribe(struct store *s, uint64_t account_id,
			    const char *name, bool subscribe,
			    const char **error_r);

/* ---- Messages of one mailbox ---- */
struct store_message {
	uint32_t uid;
	uint64_t modseq;
	unsigned flags;
	const char *keywords; /* space-separated; valid during the callback */
	time_t internal_date;
	uint64_t size;
};

/* Calls fn for each message with modseq > since (0: all), in UID order. */
int store_messages(struct store *s, uint64_t account_id, uint64_t mailbox_id,
		   uint64_t since,
		   void (*fn)(const struct store_message *m, void *context),
		   void *context, const char **error_r);
/* Calls fn for each UID expunged with modseq > since, in UID order. */
int store_expunged(struct store *s, uint64_t account_id, uint64_t mailbox_id,
		   uint64_t since, void (*fn)(uint32_t uid, void *context),
		   void *context, const char **error_r);

/* What the store cached about a message at delivery. */
enum store_cached_field {
	STORE_CACHED_ENVELOPE,
	STORE_CACHED_BODYSTRUCTURE,
	STORE_CACHED_BODY,
};
/* Appends the cached field to out. Returns 1, 0 (no such message), -1. */
int store_message_cached(struct store *s, uint64_t account_id,
			 uint64_t mailbox_id, uint32_t uid,
			 enum store_cached_field field, struct buf *out,
			 const char **error_r);
/* Reads a message's bytes (malloc'd, the caller frees). 1, 0 or -1. */
int store_message_bytes(struct store *s, uint64_t account_id,
			uint64_t mailbox_id, uint32_t uid, uint8_t **data_r,
			size_t *size_r, const char **error_r);

enum store_flags_op { STORE_FLAGS_SET, STORE_FLAGS_ADD, STORE_FLAGS_REMOVE };

/* No UNCHANGEDSINCE condition. */
#define STORE_NO_UNCHANGEDSINCE UINT64_MAX

/* Changes flags and keywords of the given UIDs. A message whose modseq is
 * greater than unchangedsince is left alone and reported to failed (so
 * UNCHANGEDSINCE 0 always fails, RFC 7162 3.1.3).
 * changed is called for each message whose flags changed, with its new
 * state (and new modseq). */
int store_flags_update(struct store *s, uint64_t account_id,
		       uint64_t mailbox_id, const uint32_t *uids, size_t count,
		       enum store_flags_op op, unsigned flags,
		       const char *keywords, uint64_t unchangedsince,
		       void (*changed)(const struct store_message *m,
				       void *context),
		       void (*failed)(uint32_t uid, void *context),
		       void *context, const char **error_r);

/* Expunges messages flagged \Deleted (among uids when uids is not NULL).
 * Calls fn with each expunged UID, in UID order. */
int store_expunge(struct store *s, uint64_t account_id, uint64_t mailbox_id,
		  const uint32_t *uids, size_t count,
		  void (*fn)(uint32_t uid, void *context), void *context,
		  const char **error_r);

/* Copies (or moves) the given UIDs to another mailbox of the account.
 * new_uids_r (count entries) gets the new UIDs, 0 for UIDs that did not
 * exist; *uidvalidity_r the target's UIDVALIDITY. A move expunges the
 * sources in the same transaction. */
int store_copy(struct store *s, uint64_t account_id, uint64_t from_mailbox,
	       const uint32_t *uids, size_t count, uint64_t to_mailbox,
	       bool move, uint32_t *new_uids_r, uint32_t *uidvalidity_r,
	       const char **error_r);

/* Bytes of all messages of the account (copies count once per mailbox). */
int store_account_usage(struct store *s, uint64_t account_id, uint64_t *bytes_r,
			const char **error_r);

/* Search helpers: substrings of the decoded text, case-insensitively
 * (a trigram full-text index for three characters or more, a scan for
 * shorter values). */
enum store_text_field {
	STORE_TEXT_ALL,	 /* headers and body (IMAP TEXT) */
	STORE_TEXT_BODY, /* body only */
	STORE_TEXT_FROM,
	STORE_TEXT_TO,
	STORE_TEXT_CC,
	STORE_TEXT_BCC,
	STORE_TEXT_SUBJECT,
};
/* Calls fn for each matching UID of the mailbox (any order). */
int store_search_text(struct store *s, uint64_t account_id, uint64_t mailbox_id,
		      enum store_text_field field, const char *value,
		      void (*fn)(uint32_t uid, void *context), void *context,
		      const char **error_r);

/* Sort and thread keys of each message of a mailbox. */
struct store_sort_keys {
	uint32_t uid;
	time_t internal_date;
	int64_t sent_date; /* -1 when none */
	int64_t sent_day;  /* the Date: day in its own zone; INT64_MIN: none */
	uint64_t size;
	const char *base_subject, *sort_from, *sort_to, *sort_cc, *display_from,
		*display_to, *message_id, *in_reply_to, *references, *subject;
};
int store_sort_keys_each(struct store *s, uint64_t account_id,
			 uint64_t mailbox_id,
			 void (*fn)(const struct store_sort_keys *k,
				    void *context),
			 void *context, const char **error_r);

/* ---- The webmail (JMAP) ----
 * An Email is one message row: it lives in exactly one mailbox, keeps its
 * id (never reused) when it moves, and belongs to one thread. The
 * account's MODSEQ counter is the state of its Emails, Mailboxes and
 * Threads: every change takes a new MODSEQ, and what is destroyed is
 * remembered with the MODSEQ of its going. */

/* The account's current state. */
int store_jmap_state(struct store *s, uint64_t account_id, uint64_t *state_r,
		     const char **error_r);

struct store_email {
	uint64_t id;
	uint64_t mailbox_id;
	uint32_t uid;
	uint64_t thread_id;
	uint64_t modseq;
	unsigned flags;
	const char *keywords; /* space-separated, as IMAP stores them */
	time_t internal_date;
	uint64_t size;
	bool has_attachment;
	const char *text; /* the preview (or else the start of the indexed
			   * text), with STORE_EMAIL_PREVIEW */
	const char *body; /* up to 16 KiB of the indexed text, with
			   * STORE_EMAIL_BODY */
};
#define STORE_EMAIL_PREVIEW 1u
#define STORE_EMAIL_BODY    2u
/* Calls fn for each of the ids that exists, in the order given; want
 * (STORE_EMAIL_* bits) says which texts to read too. */
int store_emails_get(struct store *s, uint64_t account_id, const uint64_t *ids,
		     size_t count, unsigned want,
		     void (*fn)(const struct store_email *e, void *context),
		     void *context, const char **error_r);
int store_email_by_uid(struct store *s, uint64_t account_id,
		       uint64_t mailbox_id, uint32_t uid, uint64_t *email_id_r,
		       const char **error_r);
/* A message's bytes (malloc'd; the caller frees). Returns 1, 0 or -1. */
int store_email_bytes(struct store *s, uint64_t account_id, uint64_t email_id,
		      uint8_t **data_r, size_t *size_r, const char **error_r);
/* The Emails of a thread, oldest first (then by id). */
int store_thread_emails(struct store *s, uint64_t account_id,
			uint64_t thread_id,
			void (*fn)(uint64_t email_id, void *context),
			void *context, const char **error_r);
/* Destroys Emails (an expunge, whatever their flags); calls fn with the
 * mailbox and UID of each one that existed. */
int store_emails_destroy(struct store *s, uint64_t account_id,
			 const uint64_t *ids, size_t count,
			 void (*fn)(uint64_t email_id, uint64_t mailbox_id,
				    uint32_t uid, void *context),
			 void *context, const char **error_r);

/* What changed since a state (JMAP's Foo/changes). kind says created,
 * updated or destroyed; at most max_changes ids are reported (0: no
 * limit), and *more_r is set when there are more: *state_r is then the
 * state up to which the changes were reported, else the current one.
 * Returns 0, -1, or -2 (cannotCalculateChanges) when since is not a state
 * the account had, or when more than max_changes things changed at one
 * MODSEQ (one IMAP STORE of many messages) so that no state in between
 * exists. */
enum store_change { STORE_CREATED, STORE_UPDATED, STORE_DESTROYED };
typedef void store_change_fn(enum store_change kind, uint64_t id,
			     void *context);
int store_email_changes(struct store *s, uint64_t account_id, uint64_t since,
			size_t max_changes, store_change_fn *fn, void *context,
			uint64_t *state_r, bool *more_r, const char **error_r);
int store_mailbox_changes(struct store *s, uint64_t account_id, uint64_t since,
			  size_t max_changes, store_change_fn *fn,
			  void *context, uint64_t *state_r, bool *more_r,
			  const char **error_r);
int store_thread_changes(struct store *s, uint64_t account_id, uint64_t since,
			 size_t max_changes, store_change_fn *fn, void *context,
			 uint64_t *state_r, bool *more_r, const char **error_r);

/* Email/query's filter: a tree of operators over conditions. */
enum store_filter_op {
	STORE_FILTER_CONDITION,
	STORE_FILTER_AND,
	STORE_FILTER_OR,
	STORE_FILTER_NOT,
};
#define STORE_NO_TIME INT64_MIN
struct store_filter {
	enum store_filter_op op;
	const struct store_filter *children; /* operators */
	size_t child_count;
	/* A condition: every field set must hold. */
	uint64_t in_mailbox; /* 0: any */
	const uint64_t *not_in_mailboxes;
	size_t not_in_count;
	int64_t before, after;	    /* receivedAt; STORE_NO_TIME: none */
	int64_t min_size, max_size; /* -1: none */
	int has_attachment;	    /* -1: either */
	const char *has_keyword, *not_keyword; /* "$seen" etc. or NULL */
	/* Text: every word must occur (substrings, without case). */
	const char *text, *from, *to, *cc, *bcc, *subject, *body;
};
struct store_query {
	const struct store_filter *filter; /* NULL: every Email */
	bool ascending;			   /* by receivedAt */
	bool collapse_threads;
	uint64_t position;
	uint64_t limit;	 /* 0: no limit */
	uint64_t anchor; /* an Email id, or 0 */
	int64_t anchor_offset;
	bool want_total;
};
/* Calls fn for the page of matching Emails (newest first unless
 * ascending). *total_r gets the number of matches when asked for;
 * *position_r the index of the first one given (anchors move it).
 * Returns 0, -1, or -2 when the anchor is not among the matches. */
int store_email_query(struct store *s, uint64_t account_id,
		      const struct store_query *q,
		      void (*fn)(uint64_t email_id, uint64_t thread_id,
				 void *context),
		      void *context, uint64_t *total_r, uint64_t *position_r,
		      const char **error_r);

/* The owner's webmail settings: short UTF-8 values by name. get returns
 * 1 (out holds the value), 0 (not set) or -1. */
int store_setting_get(struct store *s, uint64_t account_id, const char *name,
		      struct buf *out, const char **error_r);
int store_setting_set(struct store *s, uint64_t account_id, const char *name,
		      const char *value, const char **error_r);

/* Uploaded files, kept for a day (RFC 8620 6.1 asks for at least one
 * hour). add sets *id_r; get returns 1 (bytes appended to out, type
 * copied), 0 or -1. */
#define STORE_UPLOAD_LIFETIME (24 * 3600)
int store_upload_add(struct store *s, uint64_t account_id, const char *type,
		     const uint8_t *data, size_t size, uint64_t *id_r,
		     const char **error_r);
int store_upload_get(struct store *s, uint64_t account_id, uint64_t id,
		     struct buf *out, char *type_r, size_t type_size,
		     const char **error_r);

/* ---- The outbound queue ----
 * A queued message is its bytes (a blob), the envelope sender and its
 * remote recipients, each pending, delivered or failed. Messages enter
 * through store_deliver_batch; the queue process takes them out. */
enum store_recipient_status {
	STORE_RCPT_PENDING = 0,
	STORE_RCPT_DELIVERED = 1,
	STORE_RCPT_FAILED = 2,
};

/* One queued message, for listings: pending recipients only. */
struct store_queue_info {
	uint64_t id;
	const char *sender;
	const char *recipients; /* comma separated */
	uint64_t size;
	time_t created;
	time_t next_attempt;
	unsigned attempts;
	const char *last_error; /* "" before the first attempt */
	bool quarantined;	/* its integrity MAC failed: never sent */
};
int store_queue_list(struct store *s,
		     void (*fn)(const struct store_queue_info *info,
				void *context),
		     void *context, const char **error_r);

/* A message due for an attempt, with its pending recipients. Owned by the
 * caller; store_queue_item_free frees it. */
struct store_queue_item {
	uint64_t id;
	char *sender;
	char *blob;
	uint64_t size;
	time_t created;
	unsigned attempts;
	bool delay_notified;
	char **recipients;
	size_t recipient_count;
};
void store_queue_item_free(struct store_queue_item *item);

/* Fills items_r with up to max messages whose next attempt is due at now,
 * earliest first, leaving out the ids in skip. A message whose integrity
 * MAC does not hold is quarantined (logged, kept, never returned again).
 * Returns the count or -1. */
ssize_t store_queue_due(struct store *s, time_t now, const uint64_t *skip,
			size_t skip_count, struct store_queue_item *items_r,
			size_t max, const char **error_r);
/* The earliest next attempt of any message; 0 with an empty queue. */
int store_queue_next(struct store *s, time_t *next_r, const char **error_r);
/* Reads the message bytes into a malloc'd buffer the caller frees. */
int store_queue_read(struct store *s, const struct store_queue_item *item,
		     uint8_t **data_r, size_t *size_r, const char **error_r);
/* A recipient's fate: delivered or failed, with the last reply. */
struct store_queue_mark {
	const char *address;
	enum store_recipient_status status;
	const char *reply;
};
/* Records marks in one transaction. */
int store_queue_mark(struct store *s, uint64_t id,
		     const struct store_queue_mark *marks, size_t count,
		     const char **error_r);
/* Ends an attempt in one transaction: records marks (may be none),
 * counts the attempt, keeps the error, the next attempt's time and
 * whether the delay notice went out, and removes the message once no
 * recipient is pending. */
int store_queue_attempted(struct store *s, uint64_t id,
			  const struct store_queue_mark *marks, size_t count,
			  time_t next_attempt, const char *last_error,
			  bool delay_notified, const char **error_r);
/* Makes every message due now. */
int store_queue_flush(struct store *s, const char **error_r);
/* Removes a message without a word to its sender. Returns 1 when it was
 * queued, 0 when not, -1 on error. */
int store_queue_delete(struct store *s, uint64_t id, const char **error_r);

#endif
