/* api_security.c: the webmail's Security page and the second step of a
 * login. Every request goes to the auth process, which alone reads
 * credentials: this worker sees a TOTP secret, recovery codes and an app
 * password once, on their way to the browser, and never keeps them.
 *   POST /api/login/code         {ticket, code} -> like /api/login
 *   GET  /api/security           everything the page shows
 *   GET  /api/2fa                {totp, recovery_left}
 *   POST /api/2fa/begin          {secret, uri, qr}: qr an SVG data: URL
 *   POST /api/2fa/confirm        {code} -> {recovery: [...]}
 *   POST /api/2fa/disable        {password, code}
 *   GET  /api/app-passwords      {app_passwords: [...]}
 *   POST /api/app-passwords      {name, password}: the account's own
 *                                password again -> {id, name, password}
 *   POST /api/app-passwords/revoke {id}
 *   GET  /api/sessions           {sessions: [...]}
 *   POST /api/sessions/revoke    {id}: a session's public id
 * All but the login step need the session; the POSTs also need the CSRF
 * header and our Origin, as /api/password does. */
#include "core/common.h"

#include "http/internal.h"

#include "auth/auth.h"
#include "core/log.h"

#include <qrencode.h>
#include <sodium.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <jansson.h>

#define SECURITY_MAX_BODY (4 * 1024)
/* Modules of white around a QR code (ISO/IEC 18004 asks for 4), and
 * pixels per module of the image. */
#define QR_QUIET_ZONE 4
#define QR_SCALE      5
#define QR_MAX_SVG    (256 * 1024)

static void reply_text(struct http_call *c, int code, const char *json)
{
	c->reply_code = code;
	buf_reset(&c->reply);
	buf_append_cstr(&c->reply, json);
	http_call_finish(c);
}

static void reply_json(struct http_call *c, int code, json_t *o)
{
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	c->reply_code = text ? code : 500;
	buf_reset(&c->reply);
	buf_append_cstr(&c->reply, text ? text : "{\"error\":\"internal\"}");
	if (text != NULL) {
		/* It may hold a secret, codes or a password. */
		sodium_memzero(text, strlen(text));
		free(text);
	}
	http_call_finish(c);
}

/* The body as a JSON object, or NULL. */
static json_t *body_json(struct http_call *c)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(c->req);
	size_t n = evbuffer_get_length(in);
	if (n > SECURITY_MAX_BODY)
		return NULL;
	json_t *o = json_loadb((const char *)evbuffer_pullup(in, -1), n,
			       JSON_REJECT_DUPLICATES, NULL);
	if (o != NULL && !json_is_object(o)) {
		json_decref(o);
		o = NULL;
	}
	return o;
}

/* A string member as a slice (valid while o lives), or an empty one. */
static struct slice member(json_t *o, const char *name)
{
	json_t *v = json_object_get(o, name);
	if (!json_is_string(v))
		return slice_make(NULL, 0);
	return slice_make(json_string_value(v), json_string_length(v));
}

/* ---- QR code ---- */

/* An SVG of the QR code of text, one <rect> per run of dark modules in a
 * row, as a data: URL (the page shows it in an <img>, where no script of
 * an SVG could run anyway). NULL when it cannot be made. Caller frees. */
static char *qr_data_url(const char *text)
{
	QRcode *q = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
	if (q == NULL)
		return NULL;
	int size = q->width + 2 * QR_QUIET_ZONE;
	struct buf svg;
	buf_init(&svg, QR_MAX_SVG);
	buf_printf(&svg,
		   "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\""
		   " height=\"%d\" viewBox=\"0 0 %d %d\""
		   " shape-rendering=\"crispEdges\">"
		   "<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>",
		   size * QR_SCALE, size * QR_SCALE, size, size, size, size);
	for (int y = 0; y < q->width; y++) {
		int x = 0;
		while (x < q->width) {
			if (!(q->data[y * q->width + x] & 1)) {
				x++;
				continue;
			}
			int start = x;
			while (x < q->width && (q->data[y * q->width + x] & 1))
				x++;
			buf_printf(&svg,
				   "<rect x=\"%d\" y=\"%d\" width=\"%d\""
				   " height=\"1\"/>",
				   start + QR_QUIET_ZONE, y + QR_QUIET_ZONE,
				   x - start);
		}
	}
	buf_append_cstr(&svg, "</svg>");
	QRcode_free(q);
	char *url = NULL;
	if (!buf_overflowed(&svg)) {
		static const char prefix[] = "data:image/svg+xml;base64,";
		size_t len = sodium_base64_encoded_len(
			svg.n, sodium_base64_VARIANT_ORIGINAL);
		url = xmalloc(sizeof(prefix) - 1 + len);
		memcpy(url, prefix, sizeof(prefix) - 1);
		sodium_bin2base64(url + sizeof(prefix) - 1, len, svg.p, svg.n,
				  sodium_base64_VARIANT_ORIGINAL);
	}
	/* The image holds the secret. */
	sodium_memzero(svg.p, svg.n);
	buf_free(&svg);
	return url;
}

/* ---- Requests to the auth process ---- */

static enum auth_security_op op_of(const char *path, bool post)
{
	static const struct {
		const char *path;
		bool post;
		enum auth_security_op op;
	} routes[] = {
		{"/api/security", false, AUTH_SECURITY_STATUS},
		{"/api/2fa", false, AUTH_SECURITY_STATUS},
		{"/api/app-passwords", false, AUTH_SECURITY_STATUS},
		{"/api/sessions", false, AUTH_SECURITY_STATUS},
		{"/api/2fa/begin", true, AUTH_SECURITY_TOTP_BEGIN},
		{"/api/2fa/confirm", true, AUTH_SECURITY_TOTP_CONFIRM},
		{"/api/2fa/disable", true, AUTH_SECURITY_TOTP_DISABLE},
		{"/api/app-passwords", true, AUTH_SECURITY_APP_CREATE},
		{"/api/app-passwords/revoke", true, AUTH_SECURITY_APP_REVOKE},
		{"/api/sessions/revoke", true, AUTH_SECURITY_SESSION_REVOKE},
	};
	for (size_t i = 0; i < ARRAY_SIZE(routes); i++)
		if (routes[i].post == post && strcmp(routes[i].path, path) == 0)
			return routes[i].op;
	return 0;
}

/* What a GET of path shows of the full status. */
static json_t *status_view(const char *path, json_t *all)
{
	if (strcmp(path, "/api/2fa") == 0)
		return json_pack("{s:O, s:O}", "totp",
				 json_object_get(all, "totp"), "recovery_left",
				 json_object_get(all, "recovery_left"));
	if (strcmp(path, "/api/app-passwords") == 0)
		return json_pack("{s:O}", "app_passwords",
				 json_object_get(all, "app_passwords"));
	if (strcmp(path, "/api/sessions") == 0)
		return json_pack("{s:O}", "sessions",
				 json_object_get(all, "sessions"));
	return json_incref(all);
}

static void security_answered(void *context, enum auth_result result,
			      enum auth_security_status status,
			      struct slice body)
{
	struct http_call *c = context;
	c->auth = NULL;
	if (result == AUTH_UNAVAILABLE) {
		reply_text(c, 503, "{\"error\":\"unavailable\"}");
		return;
	}
	if (result != AUTH_OK) {
		reply_text(c, 401, "{\"error\":\"unauthenticated\"}");
		return;
	}
	switch (status) {
	case AUTH_SECURITY_DONE:
		break;
	case AUTH_SECURITY_REFUSED:
		reply_text(c, 400, "{\"error\":\"not possible\"}");
		return;
	case AUTH_SECURITY_WRONG:
		reply_text(c, 403, "{\"error\":\"wrong password or code\"}");
		return;
	case AUTH_SECURITY_LOCKED:
		reply_text(c, 429,
			   "{\"error\":\"too many wrong codes; try again"
			   " later\"}");
		return;
	case AUTH_SECURITY_NOT_FOUND:
		reply_text(c, 404, "{\"error\":\"not found\"}");
		return;
	case AUTH_SECURITY_UNAVAILABLE:
		reply_text(c, 503, "{\"error\":\"unavailable\"}");
		return;
	}
	json_t *o = json_loadb((const char *)body.p, body.n, 0, NULL);
	if (o == NULL) {
		reply_text(c, 503, "{\"error\":\"unavailable\"}");
		return;
	}
	bool post = evhttp_request_get_command(c->req) == EVHTTP_REQ_POST;
	if (!post) {
		json_t *view = status_view(c->path, o);
		json_decref(o);
		reply_json(c, 200, view);
		json_decref(view);
		return;
	}
	if (strcmp(c->path, "/api/2fa/begin") == 0) {
		const char *uri = json_string_value(json_object_get(o, "uri"));
		char *qr = uri ? qr_data_url(uri) : NULL;
		if (qr == NULL) {
			json_decref(o);
			reply_text(c, 503, "{\"error\":\"unavailable\"}");
			return;
		}
		json_object_set_new(o, "qr", json_string(qr));
		sodium_memzero(qr, strlen(qr));
		free(qr);
	}
	/* Changes answer 200 with what was made (a new app password, the
	 * recovery codes), or {} when nothing was. */
	reply_json(c, 200, o);
	json_decref(o);
}

/* Runs for a checked session: the arguments come from the body. */
static void security_checked(struct http_call *c)
{
	bool post = evhttp_request_get_command(c->req) == EVHTTP_REQ_POST;
	enum auth_security_op op = op_of(c->path, post);
	DIJK_ASSERT(op != 0);
	json_t *o = NULL;
	struct slice a1 = {0}, a2 = {0};
	char id_text[24] = "";
	if (post) {
		o = body_json(c);
		if (o == NULL) {
			reply_text(c, 400,
				   "{\"error\":\"expected a JSON"
				   " object\"}");
			return;
		}
	}
	switch (op) {
	case AUTH_SECURITY_TOTP_CONFIRM:
		a1 = member(o, "code");
		break;
	case AUTH_SECURITY_TOTP_DISABLE:
		a1 = member(o, "password");
		a2 = member(o, "code");
		break;
	case AUTH_SECURITY_APP_CREATE:
		a1 = member(o, "name");
		a2 = member(o, "password");
		break;
	case AUTH_SECURITY_APP_REVOKE: {
		/* The id is a number in JSON; the auth process takes text. */
		json_t *id = json_object_get(o, "id");
		if (json_is_integer(id) && json_integer_value(id) > 0)
			snprintf(id_text, sizeof(id_text), "%lld",
				 (long long)json_integer_value(id));
		a1 = slice_cstr(id_text);
		break;
	}
	case AUTH_SECURITY_SESSION_REVOKE:
		a1 = member(o, "id");
		break;
	default:
		break;
	}
	if (a1.n > AUTH_SECURITY_MAX_ARG || a2.n > AUTH_SECURITY_MAX_ARG) {
		a1 = slice_make(NULL, 0);
		a2 = slice_make(NULL, 0);
	}
	c->auth = auth_security(c->server->auth, c->token, op, c->remote, a1,
				a2, security_answered, c);
	/* Jansson keeps its own copy of a password: wipe it. */
	if (op == AUTH_SECURITY_TOTP_DISABLE && a1.n > 0)
		sodium_memzero((char *)a1.p, a1.n);
	if (op == AUTH_SECURITY_APP_CREATE && a2.n > 0)
		sodium_memzero((char *)a2.p, a2.n);
	json_decref(o);
}

/* ---- The second step of a login ---- */

static void login_code_answered(void *context, enum auth_result result,
				uint64_t account_id, const char *address,
				const uint8_t *token)
{
	struct http_call *c = context;
	c->auth = NULL;
	if (result == AUTH_UNAVAILABLE) {
		reply_text(c, 503, "{\"error\":\"unavailable\"}");
		return;
	}
	/* One reply for a wrong code, a stale or used ticket and a lock:
	 * the ticket is used up whatever happened. */
	if (result != AUTH_OK || token == NULL) {
		reply_text(c, 401, "{\"error\":\"invalid code\"}");
		return;
	}
	c->account_id = account_id;
	snprintf(c->address, sizeof(c->address), "%s", address);
	http_login_done(c, token);
}

static void login_code(struct http_call *c)
{
	if (!http_same_origin(c)) {
		http_send_error(c, 403, "Cross-origin login refused");
		return;
	}
	json_t *o = body_json(c);
	struct slice ticket_text = member(o, "ticket"),
		     code = member(o, "code");
	uint8_t ticket[AUTH_TOKEN_SIZE];
	size_t n = 0;
	if (o == NULL || code.n == 0 || code.n > 64 ||
	    sodium_base642bin(ticket, sizeof(ticket),
			      (const char *)ticket_text.p, ticket_text.n, NULL,
			      &n, NULL,
			      sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    n != sizeof(ticket)) {
		json_decref(o);
		http_send_error(c, 400, "Expected {\"ticket\", \"code\"}");
		return;
	}
	struct http_call *k = http_call_keep(c);
	char agent[256];
	http_user_agent(c, agent, sizeof(agent));
	char host[AUTH_HOST_SIZE];
	auth_session_host(http_header(c, "Host"), host);
	k->auth = auth_web_login_code(c->server->auth, ticket, code, c->remote,
				      agent, host, login_code_answered, k);
	sodium_memzero(ticket, sizeof(ticket));
	json_decref(o);
}

bool http_security_route(struct http_call *c)
{
	enum evhttp_cmd_type method = evhttp_request_get_command(c->req);
	bool post = method == EVHTTP_REQ_POST;
	if (strcmp(c->path, "/api/login/code") == 0) {
		if (!post)
			http_send_error(c, 405, "Use POST");
		else
			login_code(c);
		return true;
	}
	bool known_get = op_of(c->path, false) != 0,
	     known_post = op_of(c->path, true) != 0;
	if (!known_get && !known_post)
		return false;
	if (post && known_post)
		http_with_session(http_call_keep(c), true, security_checked);
	else if ((method == EVHTTP_REQ_GET || method == EVHTTP_REQ_HEAD) &&
		 known_get)
		http_with_session(http_call_keep(c), false, security_checked);
	else
		http_send_error(c, 405,
				known_get ? "Use GET or POST" : "Use POST");
	return true;
}
