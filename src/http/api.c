/* api.c: sessions of the webmail. A login is checked by the auth process,
 * which makes the session and hands out its token once; the browser keeps
 * the token in a __Host- cookie (HttpOnly, Secure, SameSite=Strict) and
 * every request is checked against the auth process again. A request that
 * changes anything must also come from our own origin and carry the
 * session's CSRF value, derived from the token (HMAC), in a header that a
 * page of another site can neither read nor send. A password change goes to
 * the auth process too (this worker never sees a hash); the account's
 * settings (/api/settings: its choice of brand) live in its store. */
#include "core/common.h"

#include "http/internal.h"
#include "http/audit.h"

#include "auth/auth.h"
#include "auth/password.h"
#include "core/log.h"
#include "core/pool.h"
#include "http/jmap.h"

#include <sodium.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#define LOGIN_MAX_BODY 8192
/* Two passwords of PASSWORD_MAX_LENGTH bytes, JSON-escaped. */
#define PASSWORD_MAX_BODY (16 * 1024)
#define SETTINGS_MAX_BODY 4096
/* The account's choice of brand, among its settings. */
#define SETTING_BRAND "brand"

/* ---- Kept calls ---- */

static void on_connection_close(struct evhttp_connection *conn, void *arg)
{
	(void)conn;
	struct http_call *c = arg;
	c->gone = true;
	/* A client that leaves before its reply leaves the request to us:
	 * evhttp detaches a request it was not done with (and frees those
	 * still attached after this callback). */
	if (c->req != NULL && evhttp_request_get_connection(c->req) == NULL)
		evhttp_request_free(c->req);
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
	http_audit_free(c);
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
	if (c->reply_type != NULL && !c->gone) {
		struct evkeyvalq *h = evhttp_request_get_output_headers(c->req);
		if (c->reply_disposition[0] != '\0')
			evhttp_add_header(h, "Content-Disposition",
					  c->reply_disposition);
		if (c->cacheable)
			evhttp_add_header(h, "Cache-Control",
					  "private, max-age=604800, immutable");
		evhttp_connection_set_closecb(c->conn, NULL, NULL);
		c->conn = NULL;
		http_send_buf(c, c->reply_code ? c->reply_code : 200,
			      c->reply_type, &c->reply);
		http_call_free(c);
		return;
	}
	finish(c, c->reply_code ? c->reply_code : 200, &c->reply);
}

static void finish_no_content(struct http_call *c)
{
	if (!c->gone) {
		evhttp_connection_set_closecb(c->conn, NULL, NULL);
		c->conn = NULL;
		http_send(c, 204, NULL, NULL, 0);
	}
	http_call_free(c);
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
	char host[AUTH_HOST_SIZE];
	auth_session_host(http_header(c, "Host"), host);
	c->auth = auth_session_check(c->server->auth, c->token, host,
				     session_checked, c);
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
	for (size_t i = 0; i < c->notify_count; i++)
		http_notify(c->server, c->notify[i]);
	c->notify_count = 0;
	http_audit_flush(c);
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

/* The session cookie lives as long as the browser session: no Expires or
 * Max-Age, so a closed browser forgets it (the server ends it anyway after
 * http.session_idle or http.session_lifetime). clear asks the browser to
 * drop it at once (Max-Age=0), at logout. */
static void set_session_cookie(struct http_call *c, const char *value,
			       bool clear)
{
	char cookie[200];
	int n = snprintf(cookie, sizeof(cookie),
			 HTTP_SESSION_COOKIE "=%s;%s Path=/; Secure;"
					     " HttpOnly; SameSite=Strict",
			 value, clear ? " Max-Age=0;" : "");
	DIJK_ASSERT(n > 0 && (size_t)n < sizeof(cookie));
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

/* ---- Settings ----
 * The account's settings live in its store, so they are read and written
 * on the pool; the reply (and the brand cookie) is made back on the loop,
 * which owns the request and the brands. */

enum settings_kind {
	SETTINGS_LOGIN, /* the login's reply, with the brand */
	SETTINGS_GET,
	SETTINGS_SET, /* store set_brand first */
};

struct settings_job {
	struct http_call *c;
	enum settings_kind kind;
	char set_brand[STORE_MAX_BRAND_NAME + 1]; /* "": forget the choice */
	/* results */
	bool failed;
	char brand[STORE_MAX_BRAND_NAME + 1]; /* "": none */
	char *name;			      /* display name, or NULL */
};

/* A setting as a C string (malloc'd), NULL when not set; -1 on error. */
static int setting_read(struct store *store, uint64_t account_id,
			const char *name, char **value_r)
{
	const char *error;
	struct buf b;
	buf_init(&b, 64 * 1024);
	*value_r = NULL;
	int r = store_setting_get(store, account_id, name, &b, &error);
	if (r < 0)
		log_error("settings: %s", error);
	else if (r > 0)
		*value_r = xstrdup(buf_cstr(&b));
	buf_free(&b);
	return r < 0 ? -1 : 0;
}

static void settings_work(void *arg)
{
	struct settings_job *j = arg;
	struct http_call *c = j->c;
	struct store *store = store_thread_handle(c->server->data_dir);
	const char *error;
	if (j->kind == SETTINGS_SET &&
	    store_setting_set(store, c->account_id, SETTING_BRAND,
			      j->set_brand[0] ? j->set_brand : NULL,
			      &error) != 0) {
		log_error("settings: %s", error);
		j->failed = true;
		return;
	}
	char *brand;
	if (setting_read(store, c->account_id, SETTING_BRAND, &brand) != 0) {
		j->failed = true;
		return;
	}
	if (brand != NULL && strlen(brand) < sizeof(j->brand))
		memcpy(j->brand, brand, strlen(brand) + 1);
	free(brand);
	if (j->kind != SETTINGS_LOGIN &&
	    setting_read(store, c->account_id, JMAP_SETTING_NAME, &j->name) !=
		    0)
		j->failed = true;
}

/* {"brand": NAME or null, "name": display name, "brands": [{"name",
 * "display"}...]}: what the settings page shows. */
static void settings_json(struct http_call *c, const struct http_brand *b,
			  const char *name, struct buf *out)
{
	struct http_server *server = c->server;
	http_brands_refresh(server);
	json_t *brands = json_array();
	for (size_t i = 0; i < server->brand_count; i++)
		json_array_append_new(
			brands,
			json_pack("{s:s, s:s}", "name", server->brands[i].name,
				  "display", server->brands[i].display));
	json_t *o = json_pack("{s:o, s:s, s:o}", "brand",
			      b ? json_string(b->name) : json_null(), "name",
			      name ? name : "", "brands", brands);
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	buf_append_cstr(out, text ? text : "{}");
	free(text);
	json_decref(o);
}

static void settings_done(void *arg)
{
	struct settings_job *j = arg;
	struct http_call *c = j->c;
	c->busy = false;
	/* A choice of a brand that is gone since counts as none. */
	const struct http_brand *b = NULL;
	if (!c->gone && !j->failed && j->brand[0] != '\0')
		b = http_brand_find(c->server, j->brand);
	struct buf body;
	buf_init(&body, 64 * 1024);
	if (j->kind == SETTINGS_LOGIN) {
		/* A setting that cannot be read does not stop a login. */
		char csrf[HTTP_TOKEN_TEXT_SIZE];
		http_csrf_value(c->token, csrf);
		json_t *o = json_pack("{s:s, s:s}", "username", c->address,
				      "csrf", csrf);
		if (b != NULL) {
			json_object_set_new(o, "brand", json_string(b->name));
			http_set_brand_cookie(c, b);
		}
		char *text = json_dumps(o, JSON_COMPACT);
		buf_append_cstr(&body, text);
		free(text);
		json_decref(o);
		finish(c, 200, &body);
	} else if (j->failed) {
		finish_text(c, 503, "{\"error\":\"unavailable\"}");
	} else {
		if (j->kind == SETTINGS_SET) {
			http_audit_note(c, "settings change", "brand %s",
					j->set_brand[0] ? j->set_brand
							: "(none)");
			http_audit_flush(c);
		}
		if (j->kind == SETTINGS_SET && b != NULL)
			http_set_brand_cookie(c, b);
		if (!c->gone)
			settings_json(c, b, j->name, &body);
		finish(c, 200, &body);
	}
	buf_free(&body);
	free(j->name);
	free(j);
}

static void settings_run(struct http_call *c, enum settings_kind kind,
			 const char *set_brand)
{
	DIJK_ASSERT(c->kept && !c->busy);
	struct settings_job *j = xcalloc(1, sizeof(*j));
	j->c = c;
	j->kind = kind;
	if (set_brand != NULL)
		snprintf(j->set_brand, sizeof(j->set_brand), "%s", set_brand);
	c->busy = true;
	pool_submit(c->server->pool, settings_work, settings_done, j);
}

/* A password that held for an account with a second factor: the ticket
 * for /api/login/code, and nothing of the account. */
static void second_factor_needed(struct http_call *c, const uint8_t *ticket)
{
	char text[HTTP_TOKEN_TEXT_SIZE];
	encode(ticket, AUTH_TOKEN_SIZE, text, sizeof(text));
	json_t *o = json_pack("{s:s, s:s}", "second_factor", "totp", "ticket",
			      text);
	char *json = json_dumps(o, JSON_COMPACT);
	finish_text(c, 200, json ? json : "{\"error\":\"internal\"}");
	free(json);
	json_decref(o);
	sodium_memzero(text, sizeof(text));
}

static void logged_in(void *context, enum auth_result result,
		      uint64_t account_id, const char *address,
		      const uint8_t *token)
{
	struct http_call *c = context;
	if (result == AUTH_FAILED && token != NULL) {
		c->auth = NULL;
		second_factor_needed(c, token);
		return;
	}
	/* The refusal never says whether the account exists. */
	if (!auth_answered(c, result, account_id, address,
			   "{\"error\":\"invalid credentials\"}"))
		return;
	http_login_done(c, token);
}

void http_login_done(struct http_call *c, const uint8_t *token)
{
	char text[HTTP_TOKEN_TEXT_SIZE];
	encode(token, AUTH_TOKEN_SIZE, text, sizeof(text));
	set_session_cookie(c, text, false);
	sodium_memzero(text, sizeof(text));
	/* The reply comes with the account's choice of brand, read on the
	 * pool. */
	memcpy(c->token, token, AUTH_TOKEN_SIZE);
	settings_run(c, SETTINGS_LOGIN, NULL);
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

void http_user_agent(struct http_call *c, char *out, size_t size)
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
	http_user_agent(c, agent, sizeof(agent));
	char host[AUTH_HOST_SIZE];
	auth_session_host(http_header(c, "Host"), host);
	k->auth = auth_web_login(c->server->auth, slice_make(user, user_len),
				 slice_make(pass, pass_len), c->remote, agent,
				 host, logged_in, k);
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
		set_session_cookie(c, "", true);
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

static void settings_get(struct http_call *c)
{
	settings_run(c, SETTINGS_GET, NULL);
}

/* {"brand": NAME} chooses a brand for the account (and this browser);
 * {"brand": null} forgets the account's choice. */
static void settings_post(struct http_call *c)
{
	struct buf body;
	buf_init(&body, SETTINGS_MAX_BODY);
	json_t *o = NULL;
	if (request_body(c, SETTINGS_MAX_BODY, &body))
		o = json_loadb((const char *)body.p, body.n,
			       JSON_REJECT_DUPLICATES, NULL);
	buf_free(&body);
	json_t *brand = NULL;
	if (o == NULL || json_unpack(o, "{s:o!}", SETTING_BRAND, &brand) != 0 ||
	    !(json_is_string(brand) || json_is_null(brand))) {
		json_decref(o);
		finish_text(c, 400, "{\"error\":\"expected {\\\"brand\\\"}\"}");
		return;
	}
	const struct http_brand *b = NULL;
	if (json_is_string(brand)) {
		const char *name = json_string_value(brand);
		/* No NUL inside: the name is compared as a C string. */
		if (strlen(name) == json_string_length(brand))
			b = http_brand_find(c->server, name);
		if (b == NULL) {
			json_decref(o);
			finish_text(c, 400, "{\"error\":\"unknown brand\"}");
			return;
		}
	}
	json_decref(o);
	settings_run(c, SETTINGS_SET, b ? b->name : "");
}

/* ---- Password ---- */

static void password_changed(void *context, enum auth_password_result result)
{
	struct http_call *c = context;
	c->auth = NULL;
	switch (result) {
	case AUTH_PASSWORD_CHANGED:
		finish_no_content(c);
		return;
	case AUTH_PASSWORD_NO_SESSION:
		finish_text(c, 401, "{\"error\":\"unauthenticated\"}");
		return;
	case AUTH_PASSWORD_WRONG:
		finish_text(c, 403, "{\"error\":\"wrong password\"}");
		return;
	case AUTH_PASSWORD_REFUSED:
		/* The lengths were checked here: what is left is this. */
		finish_text(c, 400,
			    "{\"error\":\"the new password must differ from the"
			    " old one\"}");
		return;
	case AUTH_PASSWORD_UNAVAILABLE:
		break;
	}
	finish_text(c, 503, "{\"error\":\"unavailable\"}");
}

/* {"old", "new"}: the auth process checks the old password and stores the
 * new one; this worker sees neither hash. */
static void password_post(struct http_call *c)
{
	struct buf body;
	buf_init(&body, PASSWORD_MAX_BODY);
	json_t *o = NULL;
	const char *old = NULL, *fresh = NULL;
	size_t old_len = 0, fresh_len = 0;
	if (request_body(c, PASSWORD_MAX_BODY, &body))
		o = json_loadb((const char *)body.p, body.n,
			       JSON_REJECT_DUPLICATES, NULL);
	int code = 400;
	const char *problem = NULL;
	if (o == NULL || json_unpack(o, "{s:s%, s:s%!}", "old", &old, &old_len,
				     "new", &fresh, &fresh_len) != 0) {
		old = fresh = NULL;
		problem = "{\"error\":\"expected {\\\"old\\\", \\\"new\\\"}\"}";
	} else if (fresh_len < AUTH_NEW_PASSWORD_MIN) {
		problem = "{\"error\":\"the new password is too short (at"
			  " least 10 bytes)\"}";
	} else if (fresh_len > PASSWORD_MAX_LENGTH) {
		problem = "{\"error\":\"the new password is too long (at most"
			  " 1024 bytes)\"}";
	} else if (memchr(fresh, '\0', fresh_len) != NULL) {
		problem = "{\"error\":\"the new password may not hold NUL\"}";
	} else if (old_len > PASSWORD_MAX_LENGTH) {
		/* No password is that long. */
		code = 403;
		problem = "{\"error\":\"wrong password\"}";
	} else {
		c->auth = auth_password_change(c->server->auth, c->token,
					       slice_make(old, old_len),
					       slice_make(fresh, fresh_len),
					       c->remote, password_changed, c);
	}
	/* Jansson keeps its own copies of the passwords: wipe them all. */
	if (old != NULL)
		sodium_memzero((char *)old, old_len);
	if (fresh != NULL)
		sodium_memzero((char *)fresh, fresh_len);
	json_decref(o);
	sodium_memzero(body.p, body.n);
	buf_free(&body);
	if (problem != NULL)
		finish_text(c, code, problem);
}

bool http_api_route(struct http_call *c)
{
	enum evhttp_cmd_type method = evhttp_request_get_command(c->req);
	if (http_security_route(c))
		return true;
	if (http_activity_route(c))
		return true;
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
	if (strcmp(c->path, "/api/password") == 0) {
		if (method != EVHTTP_REQ_POST)
			http_send_error(c, 405, "Use POST");
		else
			http_with_session(http_call_keep(c), true,
					  password_post);
		return true;
	}
	if (strcmp(c->path, "/api/settings") == 0) {
		if (method == EVHTTP_REQ_POST)
			http_with_session(http_call_keep(c), true,
					  settings_post);
		else if (method == EVHTTP_REQ_GET || method == EVHTTP_REQ_HEAD)
			http_with_session(http_call_keep(c), false,
					  settings_get);
		else
			http_send_error(c, 405, "Use GET or POST");
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
