/* internal.h: what the files of the imap worker share. Internal to
 * src/imap.
 *
 * Threading: the event loop owns sockets, framing and timers. A whole
 * command (parsing, store work, building the reply) runs on a pool thread
 * while the session waits, so no fsync or long query ever blocks the loop;
 * the reply bytes are handed back and written by the loop. A session is
 * touched by one thread at a time: the loop never looks at it while a
 * command of it is running, except to set `notified`. */
#ifndef DIJK_IMAP_INTERNAL_H
#define DIJK_IMAP_INTERNAL_H

#include "core/common.h"

#include "core/buf.h"
#include "core/connlimit.h"
#include "imap/imap.h"
#include "imap/parser.h"
#include "store/store.h"

#include <sys/socket.h>

struct event_base;
struct bufferevent;
struct imap_session;

#define IMAP_POOL_THREADS	2
#define IMAP_MAX_SESSIONS	20000
#define IMAP_IDLE_TIMEOUT	(30 * 60) /* RFC 3501: at least 30 min */
#define IMAP_PREAUTH_TIMEOUT	60
#define IMAP_MAX_BAD_COMMANDS	20
#define IMAP_MAX_AUTH_FAILURES	3 /* failed logins before "* BYE" */
#define IMAP_COMMAND_ARENA	(64 * 1024 * 1024)
#define IMAP_APPEND_LIMIT	(50u * 1024 * 1024)
#define IMAP_MAX_OUTPUT_PENDING (256 * 1024)
#define IMAP_IDLE_RECHECK	30 /* seconds between IDLE checks anyway */

struct imap_server {
	struct event_base *base;
	const struct config *config;
	const char *data_dir;
	SSL_CTX *tls;
	struct pool *pool;
	struct auth_client *auth;
	struct bufferevent *master;
	struct connlimit *connlimit; /* connections per address */
	struct imap_session *sessions;
	size_t session_count;
	uint64_t next_id;
	bool stopping;
};

/* One message of the selected mailbox as the session knows it. */
struct view_message {
	uint32_t uid;
	unsigned flags;
	char *keywords; /* owned; "" shares a static empty string */
	uint64_t modseq;
	time_t internal_date;
	uint64_t size;
	bool expunged;	 /* gone from the store, not yet reported */
	bool unreported; /* changed since the session last heard of it */
};

/* Consecutive UIDs of a sleeping view. */
struct uid_run {
	uint32_t first, count;
};

/* The selected mailbox. While the session IDLEs the view sleeps: it
 * keeps only its UIDs, as runs of consecutive ones, and the sequence
 * numbers they stand for; the next command wakes it from the store. An
 * IDLE session then costs a few bytes however big the mailbox. */
struct view {
	struct store_mailbox mailbox;
	bool readonly;
	struct view_message *messages; /* NULL while asleep */
	size_t count, cap;	       /* count is kept while asleep */
	bool asleep;
	struct uid_run *runs; /* while asleep */
	size_t run_count, run_cap;
	/* UIDs this session claimed as \Recent (IMAP4rev1), in order. */
	struct uid_run *recent;
	size_t recent_count;
	uint64_t highestmodseq; /* what the session has seen */
	/* SEARCHRES ($) */
	uint32_t *saved;
	size_t saved_count;
};

enum imap_state {
	IMAP_STATE_NOT_AUTHENTICATED,
	IMAP_STATE_AUTHENTICATED,
	IMAP_STATE_SELECTED,
	IMAP_STATE_LOGOUT,
};

struct imap_session {
	struct imap_server *server;
	struct imap_session *prev, *next;
	uint64_t id;
	struct bufferevent *bev;
	int fd;
	bool bev_owns_fd;
	char remote[64];
	bool loopback;
	bool tls;
	bool imaps;
	bool compress;
	enum imap_state state;

	/* Reading commands. */
	struct imap_framer framer;
	bool busy;   /* a command runs on the pool */
	bool idling; /* in IDLE, waiting for DONE */
	bool closing;
	bool notified; /* the account changed while busy */
	bool changed;  /* this command changed the account */
	bool starttls_pending;
	bool compress_pending;
	unsigned bad_commands;
	unsigned auth_failures;
	struct connlimit_key connkey; /* what it counts under */
	struct event *idle_timer;
	struct event *close_timer; /* waits for a compressed stream to drain */
	unsigned close_checks;

	/* The account, once authenticated. */
	uint64_t account_id;
	char user[STORE_MAX_ADDRESS];
	struct auth_request *auth_request;

	/* ENABLEd extensions. */
	bool rev2;
	bool condstore;
	bool qresync;
	bool utf8;

	struct view *view; /* when selected */

	/* The command running on the pool: its bytes, its tag and its
	 * reply. */
	uint8_t *command;
	size_t command_len;
	struct buf out;
	struct arena *arena;
	/* AUTHENTICATE waiting for the client's response line. */
	bool sasl_pending;
	char sasl_tag[IMAP_MAX_TAG + 1];

	/* The audit log entry of the command running on the pool, sent from
	 * the loop when it is done (imap/audit.c). */
	struct imap_audit *audit;
};

/* ---- The audit log (audit.c) ---- */

/* Notes the running command's entry (pool thread): action and the text
 * before the UIDs, if any follow (imap_audit_uid). */
void imap_audit_note(struct imap_session *s, const char *action,
		     bool needs_uids, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Adds a UID to the noted entry (pool thread). */
void imap_audit_uid(struct imap_session *s, uint32_t uid);
/* Notes the client's ID parameters (pool thread). */
void imap_audit_client(struct imap_session *s, const struct imap_arg *list);
/* Sends the noted entry, if any, to the auth process (loop thread). */
void imap_audit_flush(struct imap_session *s);
/* After a login: the client's ID, if it came first (loop thread). */
void imap_audit_logged_in(struct imap_session *s);
void imap_audit_free(struct imap_session *s);

/* Runs a framed command on the pool thread: parses it, executes it,
 * appends the whole reply (untagged lines and the tagged one) to s->out.
 * May set s->state, s->view, the enabled extensions, and the pending
 * STARTTLS/COMPRESS/IDLE/logout markers. */
void imap_execute(struct imap_session *s, struct store *store);

/* Loads the whole mailbox into a new view; NULL with *error_r. */
struct view *imap_view_open(struct store *store, uint64_t account_id,
			    const struct store_mailbox *mailbox, bool readonly,
			    const char **error_r);

/* Index of uid in an awake view, or -1. */
long imap_view_find(const struct view *v, uint32_t uid);

/* Whether uid is \Recent for the session of the view. */
bool imap_view_recent(const struct view *v, uint32_t uid);

/* How many messages of the view are \Recent for its session. */
size_t imap_view_recent_count(const struct view *v);

/* Appends "FLAGS (...)"; \Recent only when recent. */
void imap_append_flags(struct buf *out, unsigned flags, const char *keywords,
		       bool recent);

/* Writes "* n FETCH (FLAGS (...) [UID u] [MODSEQ (m)])" for a message. */
void imap_send_flags(struct imap_session *s, size_t seq,
		     const struct view_message *m, bool with_uid);

/* Removes expunged messages from the view, reporting them: VANISHED with
 * QRESYNC, EXPUNGE (highest sequence number first) otherwise. */
void imap_view_report_expunges(struct imap_session *s);

/* Sends untagged updates of the selected mailbox to s->out: new messages,
 * flag changes and (when allowed) expunges. */
void imap_view_refresh(struct imap_session *s, struct store *store,
		       bool allow_expunge);

/* Sets a view message's keywords (the view owns its copy). */
void imap_view_set_keywords(struct view_message *m, const char *keywords);

/* Puts the view to sleep (at the start of IDLE, once every expunge has
 * been reported); does nothing when some expunge is still pending. */
void imap_view_sleep(struct view *v);

/* Wakes a sleeping view: reloads its messages from the store. Messages
 * that changed since the session last heard are marked so that the next
 * refresh reports them. Returns 0, or -1 with *error_r (still asleep). */
int imap_view_wake(struct view *v, struct store *store, uint64_t account_id,
		   const char **error_r);

/* Frees the view (when a mailbox is closed). */
void imap_view_free(struct view **v);

/* Tells other sessions (in this and other workers) that the account's
 * mailboxes changed. Called on the loop. */
void imap_server_notify(struct imap_server *server, uint64_t account_id,
			struct imap_session *except);

/* Reply helpers (pool thread). */
void imap_tagged(struct imap_session *s, struct slice tag, const char *status,
		 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void imap_untagged(struct imap_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Appends a mailbox name as IMAP sends it (mUTF-7 for IMAP4rev1). */
void imap_append_mailbox(struct imap_session *s, struct buf *out,
			 const char *name);
/* Decodes a mailbox name argument into UTF-8; false when malformed. */
bool imap_mailbox_arg(struct imap_session *s, const struct imap_arg *arg,
		      char *out, size_t size);

#endif
