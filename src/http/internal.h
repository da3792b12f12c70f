/* internal.h: what the files of the http worker share. Internal to
 * src/http. */
#ifndef DIJK_HTTP_INTERNAL_H
#define DIJK_HTTP_INTERNAL_H

#include "core/common.h"

#include "core/buf.h"
#include "http/http.h"
#include "store/store.h"

#include <time.h>

struct evhttp_request;

#define HTTP_MAX_HEADERS_SIZE (16 * 1024)
#define HTTP_MAX_BODY_SIZE    (64u * 1024 * 1024)
#define HTTP_TIMEOUT_SECONDS  60
/* How long the worker trusts its copy of the brands. */
#define HTTP_BRAND_CACHE_SECONDS 2
#define HTTP_BRAND_COOKIE	 "dijk_brand"
#define HTTP_MAX_BRANDS		 256

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
	bool stopping;
};

/* A request with what the worker knows of its connection. */
struct http_call {
	struct http_server *server;
	struct evhttp_request *req;
	bool tls;
	bool loopback;
	char path[1024];   /* decoded path of the request */
	const char *query; /* raw query string, or NULL */
};

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
/* Appends text with HTML escaping. */
void http_append_escaped(struct buf *out, const char *text);

/* Sends an embedded file of web/ (ETag, gzip when accepted), or 304. */
struct http_asset;
void http_send_asset(struct http_call *c, const struct http_asset *a);

/* Routes of portal.c: "/", "/choose", "/choose/NAME", "/b/NAME/...";
 * returns false when the path is not one of them. */
bool http_portal_route(struct http_call *c);

#endif
