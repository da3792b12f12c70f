/* jmap.c: the webmail's API, JMAP (RFC 8620 core, RFC 8621 mail): the
 * session resource, and the API endpoint that runs a request's method
 * calls in order on the pool. The account of every call is the session's
 * own: a request that names another account gets accountNotFound, so no
 * id can reach another user's mail. A method this version does not have answers
 * unknownMethod. */
#include "core/common.h"

#include "http/internal.h"
#include "http/audit.h"
#include "http/jmap.h"
#include "http/jmap_request.h"

#include "core/log.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <jansson.h>

#define JMAP_CORE	"urn:ietf:params:jmap:core"
#define JMAP_MAIL	"urn:ietf:params:jmap:mail"
#define JMAP_SUBMISSION "urn:ietf:params:jmap:submission"

static const char *const capabilities[] = {JMAP_CORE, JMAP_MAIL,
					   JMAP_SUBMISSION, NULL};

void jmap_account_id(uint64_t account_id, char out[JMAP_ID_TEXT_SIZE])
{
	snprintf(out, JMAP_ID_TEXT_SIZE, "a%llu",
		 (unsigned long long)account_id);
}

void jmap_make_id(char prefix, uint64_t id, char out[JMAP_ID_TEXT_SIZE])
{
	snprintf(out, JMAP_ID_TEXT_SIZE, "%c%llu", prefix,
		 (unsigned long long)id);
}

bool jmap_parse_id(const char *text, char prefix, uint64_t *id_r)
{
	if (text == NULL || text[0] != prefix || text[1] < '1' || text[1] > '9')
		return false;
	uint64_t v = 0;
	for (const char *p = text + 1; *p; p++) {
		if (*p < '0' || *p > '9' || v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*id_r = v;
	return true;
}

const char *jmap_resolve_id(struct jmap_context *jc, const char *id)
{
	if (id == NULL || id[0] != '#' || jc->created == NULL)
		return id;
	json_t *v = json_object_get(jc->created, id + 1);
	return json_is_string(v) ? json_string_value(v) : id;
}

json_t *jmap_state(struct jmap_context *jc)
{
	uint64_t state;
	const char *error;
	if (store_jmap_state(jc->store, jc->account_id, &state, &error) != 0) {
		log_error("state: %s", error);
		return NULL;
	}
	char text[24];
	snprintf(text, sizeof(text), "%llu", (unsigned long long)state);
	return json_string(text);
}

void jmap_notify(struct jmap_context *jc, uint64_t account_id)
{
	for (size_t i = 0; i < jc->notify_count; i++)
		if (jc->notify[i] == account_id)
			return;
	if (jc->notify_count < ARRAY_SIZE(jc->notify))
		jc->notify[jc->notify_count++] = account_id;
}

bool jmap_wanted_properties(json_t *args, const char *name,
			    const char *const *known, size_t count,
			    json_t **props_r)
{
	json_t *props = json_object_get(args, name);
	*props_r = NULL;
	if (props == NULL || json_is_null(props))
		return true;
	if (!json_is_array(props))
		return false;
	size_t i;
	json_t *p;
	json_array_foreach(props, i, p)
	{
		if (!json_is_string(p))
			return false;
		bool ok = false;
		for (size_t k = 0; k < count; k++)
			ok |= strcmp(json_string_value(p), known[k]) == 0;
		if (!ok)
			return false;
	}
	*props_r = props;
	return true;
}

bool jmap_property_wanted(json_t *props, const char *name)
{
	if (props == NULL)
		return true;
	size_t i;
	json_t *p;
	json_array_foreach(props, i, p) if (strcmp(json_string_value(p),
						   name) == 0) return true;
	return false;
}

/* ---- The session resource (RFC 8620 2) ---- */

static void session_resource(struct http_call *c)
{
	char account[JMAP_ID_TEXT_SIZE];
	jmap_account_id(c->account_id, account);
	json_t *core = json_pack(
		"{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:[s, s]}",
		"maxSizeUpload", (json_int_t)JMAP_MAX_SIZE_UPLOAD,
		"maxConcurrentUpload", (json_int_t)4, "maxSizeRequest",
		(json_int_t)JMAP_MAX_SIZE_REQUEST, "maxConcurrentRequests",
		(json_int_t)4, "maxCallsInRequest",
		(json_int_t)JMAP_DEFAULT_MAX_CALLS_IN_REQUEST,
		"maxObjectsInGet", (json_int_t)JMAP_MAX_OBJECTS,
		"maxObjectsInSet", (json_int_t)JMAP_MAX_OBJECTS,
		"collationAlgorithms", "i;ascii-casemap", "i;unicode-casemap");
	json_t *mail_account = json_pack(
		"{s:n, s:n, s:I, s:I, s:[s], s:b}", "maxMailboxesPerEmail",
		"maxMailboxDepth", "maxSizeMailboxName", (json_int_t)490,
		"maxSizeAttachmentsPerEmail", (json_int_t)JMAP_MAX_SIZE_UPLOAD,
		"emailQuerySortOptions", "receivedAt",
		"mayCreateTopLevelMailbox", 1);
	json_t *submission_account =
		json_pack("{s:I, s:{}}", "maxDelayedSend", (json_int_t)0,
			  "submissionExtensions");
	json_t *o = json_pack(
		"{s:{s:o, s:{}, s:{}}, s:{s:{s:s, s:b, s:b, s:{s:o, s:o}}},"
		" s:{s:s, s:s}, s:s, s:s, s:s, s:s, s:s, s:s}",
		"capabilities", JMAP_CORE, core, JMAP_MAIL, JMAP_SUBMISSION,
		"accounts", account, "name", c->address, "isPersonal", 1,
		"isReadOnly", 0, "accountCapabilities", JMAP_MAIL, mail_account,
		JMAP_SUBMISSION, submission_account, "primaryAccounts",
		JMAP_MAIL, account, JMAP_SUBMISSION, account, "username",
		c->address, "apiUrl", "/jmap/api", "downloadUrl",
		"/jmap/download/{accountId}/{blobId}/{name}?type={type}",
		"uploadUrl", "/jmap/upload/{accountId}/", "eventSourceUrl",
		"/jmap/eventsource?types={types}&closeafter={closeafter}"
		"&ping={ping}",
		"state", "0");
	char *text = json_dumps(o, JSON_COMPACT);
	buf_append_cstr(&c->reply, text);
	free(text);
	json_decref(o);
	c->reply_code = 200;
	http_call_finish(c);
}

/* ---- The API (RFC 8620 3) ---- */

struct method {
	const char *name;
	const char *capability;
	json_t *(*run)(struct jmap_context *jc, json_t *args);
};

static json_t *core_echo(struct jmap_context *jc, json_t *args)
{
	(void)jc;
	return json_incref(args);
}

static const struct method methods[] = {
	{"Core/echo", JMAP_CORE, core_echo},
	{"Mailbox/get", JMAP_MAIL, jmap_mailbox_get},
	{"Mailbox/changes", JMAP_MAIL, jmap_mailbox_changes},
	{"Mailbox/set", JMAP_MAIL, jmap_mailbox_set},
	{"Email/get", JMAP_MAIL, jmap_email_get},
	{"Email/query", JMAP_MAIL, jmap_email_query},
	{"Email/set", JMAP_MAIL, jmap_email_set},
	{"Email/changes", JMAP_MAIL, jmap_email_changes},
	{"Thread/get", JMAP_MAIL, jmap_thread_get},
	{"Thread/changes", JMAP_MAIL, jmap_thread_changes},
	{"SearchSnippet/get", JMAP_MAIL, jmap_search_snippet_get},
	{"Identity/get", JMAP_SUBMISSION, jmap_identity_get},
	{"Identity/set", JMAP_SUBMISSION, jmap_identity_set},
	{"EmailSubmission/set", JMAP_SUBMISSION, jmap_submission_set},
};

json_t *jmap_set_error(const char *type, const char *description)
{
	if (description == NULL)
		return json_pack("{s:s}", "type", type);
	return json_pack("{s:s, s:s}", "type", type, "description",
			 description);
}

json_t *jmap_fail(struct jmap_context *jc, const char *type,
		  const char *description)
{
	jc->failed = true;
	return jmap_set_error(type, description);
}

/* A request-level problem (RFC 7807 with the JMAP fields). */
static void problem_reply(struct http_call *c, const struct jmap_problem *p)
{
	json_t *o = json_pack("{s:s, s:i, s:s}", "type", p->type, "status", 400,
			      "detail", p->description);
	if (p->limit != NULL)
		json_object_set_new(o, "limit", json_string(p->limit));
	char *text = json_dumps(o, JSON_COMPACT);
	buf_append_cstr(&c->reply, text);
	free(text);
	json_decref(o);
	c->reply_code = 400;
}

static void api_work(struct http_call *c, struct store *store)
{
	struct jmap_request request;
	struct jmap_problem problem;
	static const struct jmap_limits limits = {
		.max_size_request = JMAP_MAX_SIZE_REQUEST,
		.max_calls_in_request = JMAP_DEFAULT_MAX_CALLS_IN_REQUEST,
		.max_depth = JMAP_DEFAULT_MAX_DEPTH,
	};
	if (jmap_request_parse(c->body.p, c->body.n, &limits, capabilities,
			       &request, &problem) != 0) {
		problem_reply(c, &problem);
		return;
	}
	struct jmap_context jc = {
		.store = store,
		.data_dir = c->server->data_dir,
		.account_id = c->account_id,
		.address = c->address,
		.hostname = c->server->config->hostname,
		.created = json_object(),
		.extra = json_array(),
	};
	jmap_account_id(c->account_id, jc.account);
	if (json_is_object(request.created_ids))
		json_object_update(jc.created, request.created_ids);
	json_t *responses = json_array();
	for (size_t i = 0; i < request.call_count; i++) {
		const struct jmap_call *call = &request.calls[i];
		const struct method *m = NULL;
		for (size_t k = 0; k < ARRAY_SIZE(methods); k++)
			if (strcmp(methods[k].name, call->name) == 0)
				m = &methods[k];
		json_t *result;
		const char *name = call->name;
		const char *type, *why;
		json_t *args = jmap_resolve_references(call->args, responses,
						       &type, &why);
		if (args == NULL) {
			result = jmap_set_error(type, why);
			name = "error";
		} else if (m == NULL) {
			result = jmap_set_error("unknownMethod", NULL);
			name = "error";
		} else if (!jmap_request_uses(&request, m->capability)) {
			/* RFC 8620 3.6.2: the capability was not asked for. */
			result = jmap_set_error("unknownMethod",
						"the request does not use its"
						" capability");
			name = "error";
		} else {
			json_t *account = json_object_get(args, "accountId");
			if (strcmp(m->name, "Core/echo") != 0 &&
			    (!json_is_string(account) ||
			     strcmp(json_string_value(account), jc.account) !=
				     0)) {
				result =
					jmap_set_error("accountNotFound", NULL);
				name = "error";
			} else {
				result = m->run(&jc, args);
				http_audit_jmap(c, store, jc.created, m->name,
						args, result);
				if (jc.failed)
					name = "error";
				jc.failed = false;
			}
		}
		json_decref(args);
		json_array_append_new(responses, json_pack("[s, o, s]", name,
							   result, call->id));
		/* Implicit calls a method asked for (RFC 8621 7.5), with the
		 * same call id. */
		size_t k;
		json_t *extra;
		json_array_foreach(jc.extra, k, extra)
		{
			json_t *more =
				jmap_email_set(&jc, json_array_get(extra, 1));
			http_audit_jmap(c, store, jc.created, "Email/set",
					json_array_get(extra, 1), more);
			json_array_append_new(
				responses,
				json_pack("[s, o, s]",
					  jc.failed ? "error" : "Email/set",
					  more, call->id));
			jc.failed = false;
		}
		json_array_clear(jc.extra);
	}
	memcpy(c->notify, jc.notify, sizeof(jc.notify));
	c->notify_count = jc.notify_count;
	json_t *o = json_pack("{s:o, s:s}", "methodResponses", responses,
			      "sessionState", "0");
	if (request.created_ids != NULL)
		json_object_set(o, "createdIds", jc.created);
	json_decref(jc.created);
	json_decref(jc.extra);
	char *text = json_dumps(o, JSON_COMPACT);
	buf_append_cstr(&c->reply, text);
	free(text);
	json_decref(o);
	jmap_request_free(&request);
	c->reply_code = 200;
}

static void api_checked(struct http_call *c)
{
	http_run_on_pool(c, api_work);
}

bool http_jmap_route(struct http_call *c)
{
	enum evhttp_cmd_type method = evhttp_request_get_command(c->req);
	if (strcmp(c->path, "/.well-known/jmap") == 0) {
		http_redirect(c, 301, "/jmap/session");
		return true;
	}
	if (strcmp(c->path, "/jmap/session") == 0) {
		if (method != EVHTTP_REQ_GET && method != EVHTTP_REQ_HEAD)
			http_send_error(c, 405, "Use GET");
		else
			http_with_session(http_call_keep(c), false,
					  session_resource);
		return true;
	}
	if (strcmp(c->path, "/jmap/api") == 0) {
		if (method != EVHTTP_REQ_POST) {
			http_send_error(c, 405, "Use POST");
			return true;
		}
		struct evbuffer *in = evhttp_request_get_input_buffer(c->req);
		size_t n = evbuffer_get_length(in);
		struct http_call *k = http_call_keep(c);
		/* The pool must not touch the connection's buffers. */
		buf_init(&k->body, JMAP_MAX_SIZE_REQUEST + 1);
		buf_append(&k->body, evbuffer_pullup(in, -1),
			   n <= JMAP_MAX_SIZE_REQUEST
				   ? n
				   : JMAP_MAX_SIZE_REQUEST + 1);
		http_with_session(k, true, api_checked);
		return true;
	}
	return false;
}
