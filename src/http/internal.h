/* internal.h: what the files of the http worker share. Internal to
 * src/http. */
#ifndef DIJK_HTTP_INTERNAL_H
#define DIJK_HTTP_INTERNAL_H

#include "core/common.h"

#include "core/buf.h"
#include "auth/auth.h"
#include "http/http.h"
#include "store/store.h"

#include <time.h>

struct evhttp_request;

/* A request's target and its header fields: over these we answer 414 and
 * 431. libevent's own cap on the head is larger (it answers 400 past it)
 * so that ours is the one a client meets. */
#define HTTP_MAX_TARGET_SIZE   (8 * 1024)
#define HTTP_MAX_HEADER_FIELDS (8 * 1024)
#define HTTP_MAX_HEADERS_SIZE  (64 * 1024)
#define HTTP_MAX_BODY_SIZE     (64u * 1024 * 1024)
#define HTTP_TIMEOUT_SECONDS   60
/* Pages and API replies we make. */
#define HTTP_MAX_REPLY_SIZE (64u * 1024 * 1024)
/* How long the worker trusts its copy of the brands. */
#define HTTP_BRAND_CACHE_SECONDS 2
#define HTTP_BRAND_COOKIE	 "dijk_brand"
#define HTTP_MAX_BRANDS		 256
#define HTTP_SESSION_COOKIE	 "__Host-dijk_session"
#define HTTP_CSRF_HEADER	 "X-Dijk-CSRF"
#define HTTP_POOL_THREADS	 2
/* base64url without padding of a session token and of its CSRF value */
#define HTTP_TOKEN_TEXT_SIZE 44

struct auth_client;
struct auth_request;
struct pool;
struct evhttp_connection;
struct bufferevent;
struct http_stream;
struct http_call;

/* A brand as the worker keeps it. */
struct http_brand {
	char name[STORE_MAX_BRAND_NAME + 1];
	char *display;
	char color[8];
	uint8_t *logo; /* NULL: none */
	size_t logo_size;
	char logo_type[16];
	char logo_etag[24];
	char **domains;
	size_t domain_count;
};

struct http_server {
	struct event_base *base;
	const struct config *config;
	const char *data_dir;
	struct store *store; /* the loop's own handle: short reads only */
	struct http_brand *brands;
	size_t brand_count;
	time_t brands_loaded;
	struct auth_client *auth;
	struct pool *pool;
	struct bufferevent *master;  /* change notifications */
	struct http_stream *streams; /* open EventSource streams */
	struct http_conns *conns;    /* connections per address (conns.c) */
	bool stopping;
};

struct evhttp;
/* Sets the limits every front end of the worker keeps: methods, header
 * and body sizes, timeout. */
void http_limit(struct evhttp *http);
/* Answers one request of a front end (tls: it came over HTTPS). Also the
 * entry point of the fuzz target, which runs the front end in-process. */
void http_handle_request(struct http_server *server, struct evhttp_request *req,
			 bool tls);
/* Connections per address, limited by limits.connections_per_ip (0: no
 * limit). http_conns_admit counts the request's connection if it is new
 * and says whether it may be served: false means the address holds too
 * many already, and the reply is 503 with Connection: close. */
struct http_conns *http_conns_new(unsigned limit);
void http_conns_free(struct http_conns **t);
bool http_conns_admit(struct http_conns *t, struct evhttp_request *req);

/* Tells the other processes (through the master) and this worker's own
 * push streams that an account's mail changed. */
void http_notify(struct http_server *server, uint64_t account_id);
/* Wakes this worker's push streams of an account (push.c). */
void http_push_wake(struct http_server *server, uint64_t account_id);
/* Routes of push.c and blob.c: "/jmap/eventsource", "/jmap/upload/...",
 * "/jmap/download/...", "/jmap/view/...". */
bool http_push_route(struct http_call *c);
bool http_blob_route(struct http_call *c);
/* Closes every push stream (shutdown). */
void http_push_close_all(struct http_server *server);

/* A request with what the worker knows of its connection. */
struct http_call {
	struct http_server *server;
	struct evhttp_request *req;
	bool tls;
	bool loopback;
	char path[1024];   /* decoded path of the request */
	const char *query; /* raw query string, or NULL */
	char remote[64];

	/* A call kept past its handler (waiting for auth or the pool). */
	bool kept;
	bool gone; /* the client left: no reply, free when done */
	bool busy; /* the pool runs work for it */
	struct evhttp_connection *conn;
	struct auth_request *auth;
	/* The session, once checked. */
	uint64_t account_id;
	char address[STORE_MAX_ADDRESS];
	uint8_t token[AUTH_TOKEN_SIZE];
	/* The request body, copied for the pool. */
	struct buf body;
	/* What the pool computed for the reply. */
	struct buf reply;
	int reply_code;
	/* Set by the work for a reply that is not JSON (static strings or
	 * the call's own buffers): type, Content-Disposition, and the CSP of
	 * a document shown in the webmail's sandboxed frame (also allows
	 * framing by our own pages). */
	const char *reply_type;
	char reply_type_text[128]; /* when the type is not a static string */
	char reply_disposition[600];
	const char *policy;
	bool cacheable; /* immutable content: cache privately */
	void (*work)(struct http_call *c, struct store *store);
	/* Accounts whose mail the work changed: other processes and the
	 * push streams are told once it is done. */
	uint64_t notify[8];
	size_t notify_count;
	void (*next)(struct http_call *c);
	bool check_csrf;
	/* Audit log entries the work noted (audit.h). */
	struct http_audit *audit;
};

/* Copies c onto the heap for a reply sent later. When the client goes away
 * meanwhile, the copy is marked gone (its auth request cancelled) and
 * freed once nothing runs for it any more. */
struct http_call *http_call_keep(const struct http_call *c);
/* Frees a kept call after its reply was sent (or it is gone). */
void http_call_free(struct http_call *c);
/* Sends c->reply (JSON) with c->reply_code, and frees the kept call. */
void http_call_finish(struct http_call *c);

/* Requests of the webmail's own API (api.c): "/api/..." and "/jmap/...";
 * false for other paths. */
bool http_api_route(struct http_call *c);

/* A login that holds (password, and the second factor when the account
 * has one): sets the session cookie of token and answers with the session
 * (and the account's brand). c is kept, with account_id and address. */
void http_login_done(struct http_call *c, const uint8_t *token);
/* The request's User-Agent, printable ASCII only, into out. */
void http_user_agent(struct http_call *c, char *out, size_t size);
/* Routes of api_security.c: the second login step, two-factor settings,
 * app passwords and sessions; false for other paths. */
bool http_security_route(struct http_call *c);

/* For a state-changing request: the Origin is ours (and Sec-Fetch-Site,
 * when sent, says same-origin). */
bool http_same_origin(struct http_call *c);

/* The session of the request (its cookie), checked by the auth process;
 * then next(c) runs with c->account_id set, or the request is answered 401.
 * With csrf, the CSRF header must hold the session's value and the Origin
 * must be ours (403 otherwise). Takes over c (kept). */
void http_with_session(struct http_call *c, bool csrf,
		       void (*next)(struct http_call *c));

/* Runs work on the pool with the thread's store handle, then sends
 * c->reply with c->reply_code as JSON. c must be kept. */
void http_run_on_pool(struct http_call *c,
		      void (*work)(struct http_call *c, struct store *store));

/* The CSRF value of a session token (base64url, NUL-terminated). */
void http_csrf_value(const uint8_t token[AUTH_TOKEN_SIZE],
		     char out[HTTP_TOKEN_TEXT_SIZE]);

/* The brands, reloaded when older than HTTP_BRAND_CACHE_SECONDS. With no
 * brand configured there is one built-in brand, "mail". */
void http_brands_refresh(struct http_server *server);
const struct http_brand *http_brand_find(struct http_server *server,
					 const char *name);

/* Responses. Every response carries the security headers. */
void http_send(struct http_call *c, int code, const char *type,
	       const void *body, size_t size);
void http_send_buf(struct http_call *c, int code, const char *type,
		   const struct buf *body);
void http_send_error(struct http_call *c, int code, const char *text);
void http_redirect(struct http_call *c, int code, const char *location);
/* The value of a request header, or NULL. */
const char *http_header(struct http_call *c, const char *name);
/* The value of a cookie of the request into out; false when absent. */
bool http_cookie(struct http_call *c, const char *name, char *out, size_t size);
/* Appends text with HTML escaping (& < > " '); _n for n bytes. */
void http_append_escaped(struct buf *out, const char *text);
void http_append_escaped_n(struct buf *out, const char *text, size_t n);
/* The raw (not decoded) value of a query parameter into out (size bytes);
 * false when absent or too long. query may be NULL. */
bool http_query_value(const char *query, const char *name, char *out,
		      size_t size);

/* Sends an embedded file of web/ (ETag, gzip when accepted), or 304. */
struct http_asset;
void http_send_asset(struct http_call *c, const struct http_asset *a);

/* Remembers b as the visitor's choice of webmail: a long-lived cookie,
 * as /choose/NAME sets it (portal.c). */
void http_set_brand_cookie(struct http_call *c, const struct http_brand *b);

/* Routes of portal.c: "/", "/choose", "/choose/NAME", "/b/NAME/...";
 * returns false when the path is not one of them. */
bool http_portal_route(struct http_call *c);
/* MTA-STS policy, autoconfig and autodiscover (wellknown.c). */
bool http_wellknown_route(struct http_call *c);

#endif
