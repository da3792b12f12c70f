/* audit.c: what the webmail tells the audit log, and its Activity page.
 *
 * Work on the pool notes entries in the call; the loop sends them to the
 * auth process when the work is done (the worker never writes the log, and
 * its auth client lives on the loop). A mailbox view is logged once per
 * session and mailbox in a while (the auth process coalesces them), since
 * the webmail polls its list; reads, moves, deletions and sends are logged each time.
 *
 * GET /api/activity?before=ID&limit=N answers the session's own entries,
 * newest first, as the auth process pages them. */
#include "core/common.h"

#include "http/audit.h"

#include "auth/audit.h"
#include "auth/audit_client.h"
#include "core/log.h"
#include "http/jmap.h"

#include <jansson.h>
#include <sodium.h>
#include <stdarg.h>

#include <event2/http.h>

#define HTTP_AUDIT_MAX_NOTES 16
#define HTTP_AUDIT_MAX_IDS   64
#define HTTP_ACTIVITY_PAGE   50

struct http_audit_note {
	char action[STORE_AUDIT_MAX_ACTION + 1];
	char detail[STORE_AUDIT_MAX_DETAIL + 1];
};

struct http_audit {
	struct http_audit_note notes[HTTP_AUDIT_MAX_NOTES];
	size_t count;
};

void http_session_public_id(const uint8_t token[AUTH_TOKEN_SIZE],
			    char id_r[AUDIT_SESSION_ID_SIZE])
{
	uint8_t hash[crypto_hash_sha256_BYTES];
	crypto_hash_sha256(hash, token, AUTH_TOKEN_SIZE);
	audit_session_id(hash, id_r);
}

void http_audit_note(struct http_call *c, const char *action, const char *fmt,
		     ...)
{
	if (c->audit == NULL)
		c->audit = xcalloc(1, sizeof(*c->audit));
	struct http_audit *a = c->audit;
	if (a->count == HTTP_AUDIT_MAX_NOTES) {
		log_warning("audit: too many entries for one request");
		return;
	}
	struct http_audit_note *n = &a->notes[a->count++];
	snprintf(n->action, sizeof(n->action), "%s", action);
	va_list ap;
	va_start(ap, fmt);
	int r = vsnprintf(n->detail, sizeof(n->detail), fmt, ap);
	va_end(ap);
	if (r < 0)
		n->detail[0] = '\0';
}

void http_audit_flush(struct http_call *c)
{
	struct http_audit *a = c->audit;
	if (a == NULL)
		return;
	char session[AUDIT_SESSION_ID_SIZE];
	http_session_public_id(c->token, session);
	for (size_t i = 0; i < a->count; i++) {
		struct audit_event e = {
			.account_id = c->account_id,
			.user = c->address,
			.protocol = "web",
			.remote = c->remote,
			.session = session,
			.action = a->notes[i].action,
			.detail = a->notes[i].detail,
		};
		auth_audit(c->server->auth, &e);
	}
	http_audit_free(c);
}

void http_audit_free(struct http_call *c)
{
	free(c->audit);
	c->audit = NULL;
}

struct name_search {
	uint64_t id;
	char name[STORE_MAX_MAILBOX_NAME + 1];
};

static void name_of(const struct store_mailbox *m, void *context)
{
	struct name_search *n = context;
	if (m->id == n->id)
		snprintf(n->name, sizeof(n->name), "%s", m->name);
}

/* ---- JMAP ---- */

/* The ids of a JSON array (or object keys) as "e1 e2 ...", at most
 * HTTP_AUDIT_MAX_IDS, and their count. */
static size_t id_text(json_t *ids, struct buf *out)
{
	size_t count = 0;
	const char *key;
	json_t *value;
	size_t i;
	if (json_is_array(ids)) {
		json_array_foreach(ids, i, value)
		{
			const char *id = json_string_value(value);
			if (id == NULL)
				id = json_string_value(
					json_object_get(value, "id"));
			if (id == NULL)
				continue;
			if (count++ < HTTP_AUDIT_MAX_IDS)
				buf_printf(out, " %s", id);
		}
	} else if (json_is_object(ids)) {
		json_object_foreach(ids, key, value)
		{
			if (count++ < HTTP_AUDIT_MAX_IDS)
				buf_printf(out, " %s", key);
		}
	}
	if (count > HTTP_AUDIT_MAX_IDS)
		buf_append_cstr(out, " ...");
	return count;
}

static void note_ids(struct http_call *c, const char *action, const char *what,
		     json_t *ids)
{
	struct buf b;
	buf_init(&b, STORE_AUDIT_MAX_DETAIL);
	size_t n = id_text(ids, &b);
	if (n > 0)
		http_audit_note(c, action, "%zu %s%s:%s", n, what,
				n == 1 ? "" : "s", buf_cstr(&b));
	buf_free(&b);
}

static bool wants_bodies(json_t *args)
{
	static const char *const fetch[] = {"fetchTextBodyValues",
					    "fetchHTMLBodyValues",
					    "fetchAllBodyValues"};
	for (size_t i = 0; i < ARRAY_SIZE(fetch); i++)
		if (json_is_true(json_object_get(args, fetch[i])))
			return true;
	json_t *props = json_object_get(args, "properties");
	if (!json_is_array(props))
		return false;
	size_t i;
	json_t *p;
	json_array_foreach(props, i, p)
	{
		const char *name = json_string_value(p);
		if (name != NULL && (strcmp(name, "bodyValues") == 0 ||
				     strcmp(name, "textBody") == 0 ||
				     strcmp(name, "htmlBody") == 0 ||
				     strcmp(name, "attachments") == 0 ||
				     strcmp(name, "bodyStructure") == 0))
			return true;
	}
	return false;
}

/* Moves (mailboxIds changed) and deletions of an Email/set result. */
static void note_email_set(struct http_call *c, json_t *args, json_t *result)
{
	json_t *updated = json_object_get(result, "updated");
	json_t *update = json_object_get(args, "update");
	json_t *moved = json_array();
	const char *id;
	json_t *patch;
	json_object_foreach(update, id, patch)
	{
		if (json_object_get(updated, id) == NULL)
			continue;
		const char *key;
		json_t *v;
		bool moves = false;
		json_object_foreach(patch, key, v)
		{
			moves |= strncmp(key, "mailboxIds", 10) == 0;
		}
		if (moves)
			json_array_append_new(moved, json_string(id));
	}
	note_ids(c, "move", "message", moved);
	json_decref(moved);
	note_ids(c, "delete", "message", json_object_get(result, "destroyed"));
}

void http_audit_jmap(struct http_call *c, struct store *store,
		     json_t *created_ids, const char *method, json_t *args,
		     json_t *result)
{
	if (result == NULL || json_object_get(result, "type") != NULL)
		return; /* an error: nothing happened */
	if (strcmp(method, "Email/query") == 0) {
		json_t *filter = json_object_get(args, "filter");
		const char *in =
			json_string_value(json_object_get(filter, "inMailbox"));
		uint64_t mailbox;
		/* Every poll goes to the auth process, which keeps one entry
		 * per session and mailbox in a while (auditd.c): the workers
		 * are several processes and cannot tell alone. */
		if (in == NULL || !jmap_parse_id(in, 'm', &mailbox))
			return;
		struct name_search n = {.id = mailbox};
		const char *error;
		if (store_mailbox_each(store, c->account_id, name_of, &n,
				       &error) != 0 ||
		    n.name[0] == '\0')
			snprintf(n.name, sizeof(n.name), "%s", in);
		http_audit_note(c, AUDIT_VIEW_ACTION, "%s", n.name);
	} else if (strcmp(method, "Email/get") == 0 && wants_bodies(args)) {
		note_ids(c, "read", "message", json_object_get(result, "list"));
	} else if (strcmp(method, "Email/set") == 0) {
		note_email_set(c, args, result);
	} else if (strcmp(method, "EmailSubmission/set") == 0) {
		json_t *created = json_object_get(result, "created");
		json_t *emails = json_array();
		const char *key;
		json_t *v;
		json_object_foreach(created, key, v)
		{
			json_t *create = json_object_get(
				json_object_get(args, "create"), key);
			const char *email = json_string_value(
				json_object_get(create, "emailId"));
			/* "#k" names an Email made earlier in the request. */
			if (email != NULL && email[0] == '#') {
				const char *id =
					json_string_value(json_object_get(
						created_ids, email + 1));
				email = id != NULL ? id : email;
			}
			if (email != NULL)
				json_array_append_new(emails,
						      json_string(email));
		}
		note_ids(c, "send", "message", emails);
		json_decref(emails);
	} else if (strcmp(method, "Identity/set") == 0) {
		size_t n =
			json_object_size(json_object_get(result, "created")) +
			json_object_size(json_object_get(result, "updated")) +
			json_array_size(json_object_get(result, "destroyed"));
		if (n > 0)
			http_audit_note(c, "identity change", "%zu identit%s",
					n, n == 1 ? "y" : "ies");
	} else if (strcmp(method, "Mailbox/set") == 0) {
		size_t n =
			json_object_size(json_object_get(result, "created")) +
			json_object_size(json_object_get(result, "updated")) +
			json_array_size(json_object_get(result, "destroyed"));
		if (n > 0)
			http_audit_note(c, "mailbox change", "%zu mailbox%s", n,
					n == 1 ? "" : "es");
	}
}

/* ---- The Activity page ---- */

static void activity_page(void *context, enum auth_result result,
			  struct slice page)
{
	struct http_call *c = context;
	c->auth = NULL;
	uint64_t account = 0;
	char session[STORE_AUDIT_MAX_SESSION + 1];
	struct slice cursor = page;
	bool more = false;
	if (result != AUTH_OK ||
	    audit_page_begin(&cursor, &account, session, sizeof(session),
			     &more) != 0) {
		c->reply_code = 503;
		buf_append_cstr(&c->reply, "{\"error\":\"unavailable\"}");
		http_call_finish(c);
		return;
	}
	if (account == 0) {
		c->reply_code = 401;
		buf_append_cstr(&c->reply, "{\"error\":\"unauthenticated\"}");
		http_call_finish(c);
		return;
	}
	json_t *entries = json_array();
	struct store_audit_entry *e = xcalloc(1, sizeof(*e));
	int r;
	int64_t last = 0;
	while ((r = audit_page_next(&cursor, e)) == 1) {
		json_array_append_new(
			entries,
			json_pack("{sI sI ss ss ss ss ss sb}", "id",
				  (json_int_t)e->id, "time",
				  (json_int_t)e->time, "protocol", e->protocol,
				  "remote", e->remote, "session", e->session,
				  "action", e->action, "detail", e->detail,
				  "current",
				  e->session[0] != '\0' &&
					  strcmp(e->session, session) == 0));
		last = e->id;
	}
	free(e);
	json_t *o =
		json_pack("{ss so}", "session", session, "entries", entries);
	if (r == 0 && more && last > 0)
		json_object_set_new(o, "next", json_integer(last));
	char *text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	c->reply_code = r == 0 && text != NULL ? 200 : 502;
	buf_append_cstr(&c->reply, c->reply_code == 200
					   ? text
					   : "{\"error\":\"bad page\"}");
	free(text);
	http_call_finish(c);
}

static void activity_checked(struct http_call *c)
{
	char text[24];
	long long before = 0, limit = HTTP_ACTIVITY_PAGE;
	if (http_query_value(c->query, "before", text, sizeof(text)))
		before = strtoll(text, NULL, 10);
	if (http_query_value(c->query, "limit", text, sizeof(text)))
		limit = strtoll(text, NULL, 10);
	if (before < 0)
		before = 0;
	if (limit <= 0 || limit > AUDIT_ACTIVITY_MAX_LIMIT)
		limit = HTTP_ACTIVITY_PAGE;
	c->auth = auth_activity(c->server->auth, c->token, before,
				(size_t)limit, activity_page, c);
}

bool http_activity_route(struct http_call *c)
{
	if (strcmp(c->path, "/api/activity") != 0)
		return false;
	enum evhttp_cmd_type method = evhttp_request_get_command(c->req);
	if (method != EVHTTP_REQ_GET && method != EVHTTP_REQ_HEAD)
		http_send_error(c, 405, "Use GET");
	else
		http_with_session(http_call_keep(c), false, activity_checked);
	return true;
}
