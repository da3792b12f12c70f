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
	uint64_t account_id;
	char account[JMAP_ID_TEXT_SIZE]; /* its JMAP id */
	bool failed;			 /* the method answered with an error */
};

/* The JMAP id of an account. */
void jmap_account_id(uint64_t account_id, char out[JMAP_ID_TEXT_SIZE]);

/* A method-level error object; marks the call failed. */
json_t *jmap_fail(struct jmap_context *jc, const char *type,
		  const char *description);

/* Methods (jmap_mail.c). Each takes the call's arguments (references
 * resolved, accountId checked) and returns its response arguments, or an
 * error object through jmap_fail. */
json_t *jmap_mailbox_get(struct jmap_context *jc, json_t *args);

/* Routes of jmap.c: "/.well-known/jmap", "/jmap/session", "/jmap/api". */
bool http_jmap_route(struct http_call *c);

#endif
