/* audit.h: the http worker's part of the audit log (see audit.c). Internal
 * to src/http. */
#ifndef DIJK_HTTP_AUDIT_H
#define DIJK_HTTP_AUDIT_H

#include "core/common.h"

#include "auth/audit.h"
#include "http/internal.h"

#include <jansson.h>

/* The most entries /api/activity gives at once. */
#define AUDIT_ACTIVITY_MAX_LIMIT 100

/* A session's public id from its token (AUDIT_SESSION_ID_SIZE bytes). */
void http_session_public_id(const uint8_t token[AUTH_TOKEN_SIZE],
			    char id_r[AUDIT_SESSION_ID_SIZE]);

/* Notes an entry of the call's session (the thread running the call's
 * work); sent by http_audit_flush. */
void http_audit_note(struct http_call *c, const char *action, const char *fmt,
		     ...) __attribute__((format(printf, 3, 4)));
/* Sends the noted entries to the auth process (loop thread). */
void http_audit_flush(struct http_call *c);
void http_audit_free(struct http_call *c);

/* Notes what a JMAP method call did (pool thread); created maps the
 * request's creation ids to the ids they got. */
void http_audit_jmap(struct http_call *c, struct store *store, json_t *created,
		     const char *method, json_t *args, json_t *result);

/* GET /api/activity; false for other paths. */
bool http_activity_route(struct http_call *c);

#endif
