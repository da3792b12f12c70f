/* jmap.c: the webmail's API, JMAP (RFC 8620 core, RFC 8621 mail): the
 * session resource, and the API endpoint that runs a request's method
 * calls in order on the pool. The account of every call is the session's
 * own: a request that names another account gets accountNotFound, so no
 * id can reach another user's mail. A method this version does not have answers
 * unknownMethod. */
#include "core/common.h"

#include "http/internal.h"
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
};

static json_t *jmap_error(const char *type, const char *description)
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
	return jmap_error(type, description);
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
		.account_id = c->account_id,
	};
	jmap_account_id(c->account_id, jc.account);
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
			result = jmap_error(type, why);
			name = "error";
		} else if (m == NULL) {
			result = jmap_error("unknownMethod", NULL);
			name = "error";
		} else if (!jmap_request_uses(&request, m->capability)) {
			/* RFC 8620 3.6.2: the capability was not asked for. */
			result = jmap_error("unknownMethod",
					    "the request does not use its"
					    " capability");
			name = "error";
		} else {
			json_t *account = json_object_get(args, "accountId");
			if (strcmp(m->name, "Core/echo") != 0 &&
			    (!json_is_string(account) ||
			     strcmp(json_string_value(account), jc.account) !=
				     0)) {
				result = jmap_error("accountNotFound", NULL);
				name = "error";
			} else {
				result = m->run(&jc, args);
				if (jc.failed)
					name = "error";
				jc.failed = false;
			}
		}
		json_decref(args);
		json_array_append_new(responses, json_pack("[s, o, s]", name,
							   result, call->id));
	}
	json_t *o = json_pack("{s:o, s:s}", "methodResponses", responses,
			      "sessionState", "0");
	if (request.created_ids != NULL)
		json_object_set(o, "createdIds", request.created_ids);
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
