/* jmap.h: what the JMAP methods of the webmail share. Internal to
 * src/http. */
#ifndef DIJK_HTTP_JMAP_H
#define DIJK_HTTP_JMAP_H

#include "core/common.h"

#include "store/store.h"

#include <jansson.h>

struct http_call;

#define JMAP_ID_TEXT_SIZE    24
#define JMAP_MAX_SIZE_UPLOAD (50u * 1024 * 1024)
#define JMAP_MAX_OBJECTS     500
/* A request of small JSON containers costs Jansson about 75 times its size
 * in memory: 2 MB is plenty for the webmail (attachments are uploaded
 * separately) and keeps that bounded. */
#define JMAP_MAX_SIZE_REQUEST 2000000

/* What a method call runs with: the session's account, never one named
 * by the request. */
struct jmap_context {
	struct store *store;
	const char *data_dir;
	uint64_t account_id;
	char account[JMAP_ID_TEXT_SIZE]; /* its JMAP id */
	const char *address;		 /* the session's user */
	const char *hostname; /* the server's: our Authentication-Results */
	bool failed;	      /* the method answered with an error */
	/* Creation ids of this request ("k1") and the ids they got. */
	json_t *created;
	/* Calls a method adds after its own (EmailSubmission/set's implicit
	 * Email/set), as [name, args] pairs. */
	json_t *extra;
	/* Accounts whose mail changed: the worker tells the others. */
	uint64_t notify[8];
	size_t notify_count;
};

/* Records that an account's mail changed. */
void jmap_notify(struct jmap_context *jc, uint64_t account_id);

/* Ids: a letter and a number ("m12" a mailbox, "e7" an Email, "t3" a
 * thread). parse is strict: no sign, no leading zero, no overflow. */
void jmap_make_id(char prefix, uint64_t id, char out[JMAP_ID_TEXT_SIZE]);
bool jmap_parse_id(const char *text, char prefix, uint64_t *id_r);
/* Resolves "#creationId" through jc->created; other ids as they are. */
const char *jmap_resolve_id(struct jmap_context *jc, const char *id);
/* The account's state as a JSON string, or NULL on error (logged). */
json_t *jmap_state(struct jmap_context *jc);
/* RFC 3339 UTC date of a time. */
json_t *jmap_utc_date(time_t t);
/* Parses an RFC 3339 Date with its offset ("2024-01-31T12:00:00+01:00"):
 * the time and the offset in minutes east of UTC; false when bad. */
bool jmap_parse_date(const char *text, int64_t *t_r, int *offset_r);
/* Parses an RFC 3339 UTCDate ("2024-01-31T12:00:00Z"); false when bad. */
bool jmap_parse_utc_date(const char *text, int64_t *t_r);
/* The "properties" argument: true with *props_r NULL for all, or the
 * array; false when it names anything not in known. */
bool jmap_wanted_properties(json_t *args, const char *name,
			    const char *const *known, size_t count,
			    json_t **props_r);
/* Whether props (NULL: all) has name. */
bool jmap_property_wanted(json_t *props, const char *name);

/* The JMAP id of an account. */
void jmap_account_id(uint64_t account_id, char out[JMAP_ID_TEXT_SIZE]);

/* An error object {type, description} (description may be NULL): a
 * SetError, or a method-level error without marking the call. */
json_t *jmap_set_error(const char *type, const char *description);

/* Keywords (RFC 8621 4.1.1): normalize checks one (IMAP atom characters,
 * not "]", 1 to JMAP_MAX_KEYWORD_SIZE bytes) and lower-cases it into out;
 * flag gives the system flag a lower-case keyword stands for ($seen...),
 * or 0; object makes the keywords object of flags and IMAP keywords. */
#define JMAP_MAX_KEYWORD_SIZE 255
bool jmap_keyword_normalize(const char *in,
			    char out[JMAP_MAX_KEYWORD_SIZE + 1]);
unsigned jmap_keyword_flag(const char *keyword);
json_t *jmap_keywords_object(unsigned flags, const char *keywords);

/* A method-level error object; marks the call failed. */
json_t *jmap_fail(struct jmap_context *jc, const char *type,
		  const char *description);

/* Methods (jmap_mail.c). Each takes the call's arguments (references
 * resolved, accountId checked) and returns its response arguments, or an
 * error object through jmap_fail. */
json_t *jmap_mailbox_get(struct jmap_context *jc, json_t *args);
json_t *jmap_mailbox_changes(struct jmap_context *jc, json_t *args);
json_t *jmap_mailbox_set(struct jmap_context *jc, json_t *args);
json_t *jmap_identity_get(struct jmap_context *jc, json_t *args);
json_t *jmap_identity_set(struct jmap_context *jc, json_t *args);
/* Foo/changes of RFC 8620 5.2 (jmap_email.c) for a type of the account,
 * over its store function, with prefix the letter of its ids. */
typedef int changes_fn(struct store *s, uint64_t account_id, uint64_t since,
		       size_t max_changes, store_change_fn *fn, void *context,
		       uint64_t *state_r, bool *more_r, const char **error_r);
json_t *jmap_changes(struct jmap_context *jc, json_t *args, char prefix,
		     changes_fn *fn);
/* jmap_email.c */
json_t *jmap_email_get(struct jmap_context *jc, json_t *args);
json_t *jmap_email_query(struct jmap_context *jc, json_t *args);
json_t *jmap_email_set(struct jmap_context *jc, json_t *args);
json_t *jmap_email_changes(struct jmap_context *jc, json_t *args);
json_t *jmap_thread_get(struct jmap_context *jc, json_t *args);
json_t *jmap_thread_changes(struct jmap_context *jc, json_t *args);
json_t *jmap_search_snippet_get(struct jmap_context *jc, json_t *args);
/* jmap_submit.c */
json_t *jmap_submission_set(struct jmap_context *jc, json_t *args);

/* A message of the account by its Email id, parsed: bytes and MIME
 * structure (jmap_email.c). */
struct mime_message;
struct jmap_message {
	uint8_t *data;
	size_t size;
	struct mime_message *mime;
};
int jmap_message_load(struct jmap_context *jc, uint64_t email_id,
		      struct jmap_message *out);
void jmap_message_free(struct jmap_message *m);
/* The bytes of a blob of the account ("U1" an upload, "G7" a message,
 * "G7.2" a part of it) appended to out, with its type. 1, 0 or -1. */
int jmap_blob_bytes(struct jmap_context *jc, const char *blob, struct buf *out,
		    char *type, size_t type_size);

/* Identity of the account: the display name and signature settings. */
#define JMAP_SETTING_NAME	    "identity.name"
#define JMAP_SETTING_SIGNATURE	    "identity.textSignature"
#define JMAP_SETTING_HTML_SIGNATURE "identity.htmlSignature"

/* Routes of jmap.c: "/.well-known/jmap", "/jmap/session", "/jmap/api". */
bool http_jmap_route(struct http_call *c);

#endif
