/* api.c: sessions of the webmail. A login is checked by the auth process,
 * which makes the session and hands out its token once; the browser keeps
 * the token in a __Host- cookie (HttpOnly, Secure, SameSite=Strict) and
 * every request is checked against the auth process again. A request that
 * changes anything must also come from our own origin and carry the
 * session's CSRF value, derived from the token (HMAC), in a header that a
 * page of another site can neither read nor send. */
#include "core/common.h"

#include "http/internal.h"

#include "auth/auth.h"
#include "core/log.h"
#include "core/pool.h"

#include <sodium.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#define LOGIN_MAX_BODY 8192

/* ---- Kept calls ---- */

static void on_connection_close(struct evhttp_connection *conn, void *arg)
{
	(void)conn;
	struct http_call *c = arg;
	c->gone = true;
	c->req = NULL;
	c->conn = NULL;
	if (c->auth != NULL) {
		auth_request_cancel(c->auth);
		c->auth = NULL;
	}
	if (!c->busy)
		http_call_free(c);
}

struct http_call *http_call_keep(const struct http_call *c)
{
	DIJK_ASSERT(!c->kept);
	struct http_call *k = xmalloc(sizeof(*k));
	*k = *c;
	k->kept = true;
	buf_init(&k->reply, HTTP_MAX_REPLY_SIZE);
	k->conn = evhttp_request_get_connection(c->req);
	evhttp_connection_set_closecb(k->conn, on_connection_close, k);
	return k;
}

void http_call_free(struct http_call *c)
{
	DIJK_ASSERT(c->kept && c->auth == NULL && !c->busy);
	if (c->conn != NULL)
		evhttp_connection_set_closecb(c->conn, NULL, NULL);
	sodium_memzero(c->token, sizeof(c->token));
	buf_free(&c->body);
	buf_free(&c->reply);
	free(c);
}

/* Sends a kept call's reply and frees it. */
static void finish(struct http_call *c, int code, const struct buf *json)
{
	if (!c->gone) {
		/* The reply may end the connection: forget it first. */
		evhttp_connection_set_closecb(c->conn, NULL, NULL);
		c->conn = NULL;
		http_send_buf(c, code, "application/json", json);
	}
	http_call_free(c);
}

void http_call_finish(struct http_call *c)
{
	finish(c, c->reply_code ? c->reply_code : 200, &c->reply);
}

static void finish_text(struct http_call *c, int code, const char *json)
{
	struct buf b;
	buf_init(&b, 1024);
	buf_append_cstr(&b, json);
	finish(c, code, &b);
	buf_free(&b);
}

/* ---- Tokens ---- */

static void encode(const uint8_t *bin, size_t n, char *out, size_t size)
{
	sodium_bin2base64(out, size, bin, n,
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

static bool decode_token(const char *text, uint8_t token[AUTH_TOKEN_SIZE])
{
	size_t n = 0;
	return strlen(text) == 43 &&
	       sodium_base642bin(
		       token, AUTH_TOKEN_SIZE, text, 43, NULL, &n, NULL,
		       sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0 &&
	       n == AUTH_TOKEN_SIZE;
}

void http_csrf_value(const uint8_t token[AUTH_TOKEN_SIZE],
		     char out[HTTP_TOKEN_TEXT_SIZE])
{
	static const char label[] = "dijk webmail csrf";
	uint8_t mac[crypto_auth_hmacsha256_BYTES];
	crypto_auth_hmacsha256_state st;
	crypto_auth_hmacsha256_init(&st, token, AUTH_TOKEN_SIZE);
	crypto_auth_hmacsha256_update(&st, (const uint8_t *)label,
				      sizeof(label) - 1);
	crypto_auth_hmacsha256_final(&st, mac);
	encode(mac, sizeof(mac), out, HTTP_TOKEN_TEXT_SIZE);
	sodium_memzero(&st, sizeof(st));
}

/* ---- Origin and session checks ---- */

bool http_same_origin(struct http_call *c)
{
	const char *site = http_header(c, "Sec-Fetch-Site");
	if (site != NULL && strcmp(site, "same-origin") != 0)
		return false;
	const char *origin = http_header(c, "Origin");
	const char *host = http_header(c, "Host");
	if (origin == NULL || host == NULL)
		return false;
	const char *scheme = c->tls ? "https://" : "http://";
	size_t n = strlen(scheme);
	return strncmp(origin, scheme, n) == 0 && strcmp(origin + n, host) == 0;
}

/* Takes the auth process's answer for c: true with the account set, or
 * false after answering 503 (it could not tell) or 401 (refused, with
 * refusal as the error). */
static bool auth_answered(struct http_call *c, enum auth_result result,
			  uint64_t account_id, const char *address,
			  const char *refusal)
{
	c->auth = NULL;
	if (result == AUTH_UNAVAILABLE) {
		finish_text(c, 503, "{\"error\":\"unavailable\"}");
		return false;
	}
	if (result != AUTH_OK) {
		finish_text(c, 401, refusal);
		return false;
	}
	c->account_id = account_id;
	snprintf(c->address, sizeof(c->address), "%s", address);
	return true;
}

static void session_checked(void *context, enum auth_result result,
			    uint64_t account_id, const char *address)
{
	struct http_call *c = context;
	if (!auth_answered(c, result, account_id, address,
			   "{\"error\":\"unauthenticated\"}"))
		return;
	if (c->check_csrf) {
		char expected[HTTP_TOKEN_TEXT_SIZE];
		http_csrf_value(c->token, expected);
		const char *got = http_header(c, HTTP_CSRF_HEADER);
		bool ok = got != NULL && strlen(got) == strlen(expected) &&
			  sodium_memcmp(got, expected, strlen(expected)) == 0;
		if (!ok) {
			finish_text(c, 403, "{\"error\":\"csrf\"}");
			return;
		}
	}
	c->next(c);
}

void http_with_session(struct http_call *c, bool csrf,
		       void (*next)(struct http_call *c))
{
	DIJK_ASSERT(c->kept);
	char text[64];
	if (csrf && !http_same_origin(c)) {
		finish_text(c, 403, "{\"error\":\"origin\"}");
		return;
	}
	if (!http_cookie(c, HTTP_SESSION_COOKIE, text, sizeof(text)) ||
	    !decode_token(text, c->token)) {
		finish_text(c, 401, "{\"error\":\"unauthenticated\"}");
		return;
	}
	c->check_csrf = csrf;
	c->next = next;
	c->auth = auth_session_check(c->server->auth, c->token, session_checked,
				     c);
}

/* ---- Pool ---- */

static void pool_work(void *arg)
{
	struct http_call *c = arg;
	c->work(c, store_thread_handle(c->server->data_dir));
}

static void pool_done(void *arg)
{
	struct http_call *c = arg;
	c->busy = false;
	http_call_finish(c);
}

void http_run_on_pool(struct http_call *c,
		      void (*work)(struct http_call *c, struct store *store))
{
	DIJK_ASSERT(c->kept && !c->busy);
	c->work = work;
	c->busy = true;
	pool_submit(c->server->pool, pool_work, pool_done, c);
}

/* ---- Login, logout, session ---- */

static void set_session_cookie(struct http_call *c, const char *value,
			       unsigned max_age)
{
	char cookie[200];
	snprintf(cookie, sizeof(cookie),
		 HTTP_SESSION_COOKIE "=%s; Max-Age=%u; Path=/; Secure;"
				     " HttpOnly; SameSite=Strict",
		 value, max_age);
	evhttp_add_header(evhttp_request_get_output_headers(c->req),
			  "Set-Cookie", cookie);
}

static void session_json(struct http_call *c,
			 const uint8_t token[AUTH_TOKEN_SIZE], struct buf *out)
{
	char csrf[HTTP_TOKEN_TEXT_SIZE];
	http_csrf_value(token, csrf);
	json_t *o =
		json_pack("{s:s, s:s}", "username", c->address, "csrf", csrf);
	char *text = json_dumps(o, JSON_COMPACT);
	buf_append_cstr(out, text);
	free(text);
	json_decref(o);
}

static void logged_in(void *context, enum auth_result result,
		      uint64_t account_id, const char *address,
		      const uint8_t *token)
{
	struct http_call *c = context;
	/* The refusal never says whether the account exists. */
	if (!auth_answered(c, result, account_id, address,
			   "{\"error\":\"invalid credentials\"}"))
		return;
	char text[HTTP_TOKEN_TEXT_SIZE];
	encode(token, AUTH_TOKEN_SIZE, text, sizeof(text));
	set_session_cookie(c, text,
			   c->server->config->session_lifetime_seconds);
	sodium_memzero(text, sizeof(text));
	struct buf body;
	buf_init(&body, 4096);
	session_json(c, token, &body);
	finish(c, 200, &body);
	buf_free(&body);
}

/* The request body, when it is at most max bytes. */
static bool request_body(struct http_call *c, size_t max, struct buf *out)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(c->req);
	size_t n = evbuffer_get_length(in);
	if (n > max)
		return false;
	return buf_append(out, evbuffer_pullup(in, -1), n);
}

static void user_agent(struct http_call *c, char *out, size_t size)
{
	const char *ua = http_header(c, "User-Agent");
	size_t w = 0;
	for (const char *p = ua ? ua : ""; *p && w + 1 < size; p++)
		out[w++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
	out[w] = '\0';
}

static void login(struct http_call *c)
{
	if (!http_same_origin(c)) {
		http_send_error(c, 403, "Cross-origin login refused");
		return;
	}
	struct buf body;
	buf_init(&body, LOGIN_MAX_BODY);
	json_t *o = NULL;
	const char *user = NULL, *pass = NULL;
	size_t user_len = 0, pass_len = 0;
	if (request_body(c, LOGIN_MAX_BODY, &body))
		o = json_loadb((const char *)body.p, body.n,
			       JSON_REJECT_DUPLICATES, NULL);
	if (o == NULL ||
	    json_unpack(o, "{s:s%, s:s%}", "username", &user, &user_len,
			"password", &pass, &pass_len) != 0 ||
	    user_len == 0 || user_len > AUTH_MAX_USERNAME || pass_len == 0) {
		json_decref(o);
		sodium_memzero(body.p, body.n);
		buf_free(&body);
		http_send_error(c, 400,
				"Expected {\"username\", \"password\"}");
		return;
	}
	struct http_call *k = http_call_keep(c);
	char agent[256];
	user_agent(c, agent, sizeof(agent));
	k->auth = auth_web_login(c->server->auth, slice_make(user, user_len),
				 slice_make(pass, pass_len), c->remote, agent,
				 logged_in, k);
	/* Jansson keeps its own copy of the password: wipe both. */
	sodium_memzero((char *)pass, pass_len);
	json_decref(o);
	sodium_memzero(body.p, body.n);
	buf_free(&body);
}

static void logged_out(void *context, enum auth_result result,
		       uint64_t account_id, const char *address)
{
	(void)account_id;
	(void)address;
	struct http_call *c = context;
	c->auth = NULL;
	if (result == AUTH_UNAVAILABLE) {
		finish_text(c, 503, "{\"error\":\"unavailable\"}");
		return;
	}
	if (!c->gone)
		set_session_cookie(c, "", 0);
	finish_text(c, 200, "{}");
}

static void logout_checked(struct http_call *c)
{
	c->auth = auth_session_revoke(c->server->auth, c->token, logged_out, c);
}

static void session_info(struct http_call *c)
{
	struct buf body;
	buf_init(&body, 4096);
	session_json(c, c->token, &body);
	finish(c, 200, &body);
	buf_free(&body);
}

bool http_api_route(struct http_call *c)
{
	enum evhttp_cmd_type method = evhttp_request_get_command(c->req);
	if (strcmp(c->path, "/api/login") == 0) {
		if (method != EVHTTP_REQ_POST)
			http_send_error(c, 405, "Use POST");
		else
			login(c);
		return true;
	}
	if (strcmp(c->path, "/api/logout") == 0) {
		if (method != EVHTTP_REQ_POST)
			http_send_error(c, 405, "Use POST");
		else
			http_with_session(http_call_keep(c), true,
					  logout_checked);
		return true;
	}
	if (strcmp(c->path, "/api/session") == 0) {
		if (method != EVHTTP_REQ_GET && method != EVHTTP_REQ_HEAD)
			http_send_error(c, 405, "Use GET");
		else
			http_with_session(http_call_keep(c), false,
					  session_info);
		return true;
	}
	return false;
}
