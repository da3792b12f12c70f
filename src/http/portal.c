/* portal.c: the brand portal. One server may carry several webmail brands
 * (after a merger, say). With two or more, "/" asks a visitor once which
 * one they want and remembers it in a long-lived cookie; later visits go
 * straight to that brand's login page, and /choose changes the choice.
 * With one brand, "/" goes straight to it. */
#include "core/common.h"

#include "http/internal.h"

#include "core/log.h"
#include "http/assets.h"

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

static void brand_clear(struct http_brand *b)
{
	free(b->display);
	free(b->logo);
	for (size_t k = 0; k < b->domain_count; k++)
		free(b->domains[k]);
	free(b->domains);
	memset(b, 0, sizeof(*b));
}

struct loading {
	struct http_brand *brands;
	size_t count;
};

static void collect(const struct store_brand *sb, void *context)
{
	struct loading *l = context;
	if (l->count == HTTP_MAX_BRANDS)
		return;
	l->brands = xrealloc(l->brands, (l->count + 1) * sizeof(*l->brands));
	struct http_brand *b = &l->brands[l->count++];
	memset(b, 0, sizeof(*b));
	snprintf(b->name, sizeof(b->name), "%s", sb->name);
	b->display = xstrdup(sb->display);
	snprintf(b->color, sizeof(b->color), "%s", sb->color);
	if (sb->logo != NULL && sb->logo_size > 0 && sb->logo_type != NULL) {
		b->logo = xmalloc(sb->logo_size);
		memcpy(b->logo, sb->logo, sb->logo_size);
		b->logo_size = sb->logo_size;
		snprintf(b->logo_type, sizeof(b->logo_type), "%s",
			 sb->logo_type);
		/* A weak tag from the bytes: FNV-1a is enough to notice a
		 * new logo. */
		uint64_t h = 1469598103934665603ull;
		for (size_t i = 0; i < sb->logo_size; i++)
			h = (h ^ sb->logo[i]) * 1099511628211ull;
		snprintf(b->logo_etag, sizeof(b->logo_etag), "\"%016llx\"",
			 (unsigned long long)h);
	}
	b->domains = xcalloc(sb->domain_count + 1, sizeof(*b->domains));
	for (size_t i = 0; i < sb->domain_count; i++)
		b->domains[b->domain_count++] = xstrdup(sb->domains[i]);
}

void http_brands_refresh(struct http_server *server)
{
	time_t now = time(NULL);
	if (server->brands != NULL &&
	    now - server->brands_loaded < HTTP_BRAND_CACHE_SECONDS)
		return;
	struct loading l = {0};
	const char *error;
	if (store_brand_each(server->store, collect, &l, &error) != 0) {
		log_error("brands: %s", error);
		for (size_t i = 0; i < l.count; i++)
			brand_clear(&l.brands[i]);
		free(l.brands);
		if (server->brands != NULL)
			return; /* keep what we had */
		l.brands = NULL;
		l.count = 0;
	}
	if (l.count == 0) {
		/* No brand configured: one plain brand for every domain. */
		l.brands = xcalloc(1, sizeof(*l.brands));
		snprintf(l.brands[0].name, sizeof(l.brands[0].name), "mail");
		l.brands[0].display = xstrdup("Webmail");
		snprintf(l.brands[0].color, sizeof(l.brands[0].color),
			 "#2d5b8c");
		l.count = 1;
	}
	for (size_t i = 0; i < server->brand_count; i++)
		brand_clear(&server->brands[i]);
	free(server->brands);
	server->brands = l.brands;
	server->brand_count = l.count;
	server->brands_loaded = now;
}

const struct http_brand *http_brand_find(struct http_server *server,
					 const char *name)
{
	http_brands_refresh(server);
	for (size_t i = 0; i < server->brand_count; i++)
		if (strcmp(server->brands[i].name, name) == 0)
			return &server->brands[i];
	return NULL;
}

void http_set_brand_cookie(struct http_call *c, const struct http_brand *b)
{
	char cookie[128];
	snprintf(cookie, sizeof(cookie),
		 HTTP_BRAND_COOKIE "=%s; Max-Age=31536000; Path=/;"
				   " SameSite=Lax; HttpOnly%s",
		 b->name, c->tls ? "; Secure" : "");
	evhttp_add_header(evhttp_request_get_output_headers(c->req),
			  "Set-Cookie", cookie);
}

/* Text that reads well on the brand's colour: dark or light. */
static const char *ink_for(const char *color)
{
	unsigned r, g, b;
	if (sscanf(color, "#%02x%02x%02x", &r, &g, &b) != 3)
		return "#ffffff";
	/* Relative luminance, roughly (sRGB weights, no gamma). */
	unsigned y = (2126 * r + 7152 * g + 722 * b) / 10000;
	return y > 150 ? "#111111" : "#ffffff";
}

static void send_brand_css(struct http_call *c, const struct http_brand *b)
{
	struct buf css;
	buf_init(&css, HTTP_MAX_REPLY_SIZE);
	buf_printf(&css, ":root {\n\t--brand: %s;\n\t--brand-ink: %s;\n}\n",
		   b->color, ink_for(b->color));
	http_send_buf(c, 200, "text/css; charset=utf-8", &css);
	buf_free(&css);
}

/* Every brand's colours, for the chooser. */
static void send_brands_css(struct http_call *c)
{
	struct http_server *server = c->server;
	struct buf css;
	buf_init(&css, HTTP_MAX_REPLY_SIZE);
	for (size_t i = 0; i < server->brand_count; i++) {
		const struct http_brand *b = &server->brands[i];
		buf_printf(
			&css,
			".brand-%s {\n\t--brand: %s;\n\t--brand-ink: %s;\n}\n",
			b->name, b->color, ink_for(b->color));
	}
	http_send_buf(c, 200, "text/css; charset=utf-8", &css);
	buf_free(&css);
}

static void send_brand_json(struct http_call *c, const struct http_brand *b)
{
	json_t *domains = json_array();
	for (size_t i = 0; i < b->domain_count; i++)
		json_array_append_new(domains, json_string(b->domains[i]));
	json_t *o = json_pack("{s:s, s:s, s:s, s:b, s:o, s:b}", "name", b->name,
			      "display", b->display, "color", b->color, "logo",
			      b->logo != NULL, "domains", domains, "choice",
			      c->server->brand_count > 1);
	char *text = json_dumps(o, JSON_COMPACT);
	http_send(c, 200, "application/json", text, strlen(text));
	free(text);
	json_decref(o);
}

static void send_logo(struct http_call *c, const struct http_brand *b)
{
	if (b->logo == NULL) {
		http_send_error(c, 404, "This brand has no logo");
		return;
	}
	struct evkeyvalq *h = evhttp_request_get_output_headers(c->req);
	evhttp_add_header(h, "ETag", b->logo_etag);
	evhttp_add_header(h, "Cache-Control", "no-cache");
	const char *inm = http_header(c, "If-None-Match");
	if (inm != NULL && strstr(inm, b->logo_etag) != NULL) {
		http_send(c, 304, NULL, NULL, 0);
		return;
	}
	http_send(c, 200, b->logo_type, b->logo, b->logo_size);
}

static void send_chooser(struct http_call *c)
{
	struct http_server *server = c->server;
	struct buf page;
	buf_init(&page, HTTP_MAX_REPLY_SIZE);
	buf_append_cstr(
		&page,
		"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
		"<meta charset=\"utf-8\">\n"
		"<meta name=\"viewport\" content=\"width=device-width,"
		" initial-scale=1\">\n"
		"<title>Choose your webmail</title>\n"
		"<link rel=\"icon\" href=\"data:,\">\n"
		"<link rel=\"stylesheet\" href=\"/static/style.css\">\n"
		"<link rel=\"stylesheet\" href=\"/brands.css\">\n"
		"</head>\n<body class=\"portal\">\n<main class=\"chooser\">\n"
		"<h1>Choose your webmail</h1>\n"
		"<p class=\"hint\">This device will remember your choice."
		" You can change it later.</p>\n<ul class=\"brands\">\n");
	for (size_t i = 0; i < server->brand_count; i++) {
		const struct http_brand *b = &server->brands[i];
		buf_printf(&page,
			   "<li><a class=\"brand-card brand-%s\""
			   " href=\"/choose/%s\">",
			   b->name, b->name);
		if (b->logo != NULL)
			buf_printf(
				&page,
				"<img class=\"brand-logo\" src=\"/b/%s/logo\""
				" alt=\"\">",
				b->name);
		else
			buf_append_cstr(&page, "<span class=\"brand-mark\""
					       " aria-hidden=\"true\"></span>");
		buf_append_cstr(&page, "<span class=\"brand-name\">");
		http_append_escaped(&page, b->display);
		buf_append_cstr(&page, "</span><span class=\"brand-domains\">");
		for (size_t k = 0; k < b->domain_count; k++) {
			if (k > 0)
				buf_append_cstr(&page, ", ");
			http_append_escaped(&page, b->domains[k]);
		}
		buf_append_cstr(&page, "</span></a></li>\n");
	}
	buf_append_cstr(&page, "</ul>\n</main>\n</body>\n</html>\n");
	http_send_buf(c, 200, "text/html; charset=utf-8", &page);
	buf_free(&page);
}

static void go_to_brand(struct http_call *c, const struct http_brand *b,
			int code)
{
	char target[64];
	snprintf(target, sizeof(target), "/b/%s/", b->name);
	http_redirect(c, code, target);
}

/* "/b/NAME/rest": the brand and the rest; NULL for another path. */
static const struct http_brand *brand_path(struct http_call *c,
					   const char **rest_r)
{
	if (strncmp(c->path, "/b/", 3) != 0)
		return NULL;
	const char *name = c->path + 3;
	const char *slash = strchr(name, '/');
	size_t n = slash ? (size_t)(slash - name) : strlen(name);
	if (n == 0 || n > STORE_MAX_BRAND_NAME)
		return NULL;
	char copy[STORE_MAX_BRAND_NAME + 1];
	memcpy(copy, name, n);
	copy[n] = '\0';
	*rest_r = slash ? slash : "";
	return http_brand_find(c->server, copy);
}

bool http_portal_route(struct http_call *c)
{
	struct http_server *server = c->server;
	http_brands_refresh(server);
	if (strcmp(c->path, "/") == 0) {
		if (server->brand_count == 1) {
			go_to_brand(c, &server->brands[0], 302);
			return true;
		}
		char chosen[STORE_MAX_BRAND_NAME + 1];
		const struct http_brand *b = NULL;
		if (http_cookie(c, HTTP_BRAND_COOKIE, chosen, sizeof(chosen)))
			b = http_brand_find(server, chosen);
		if (b != NULL)
			go_to_brand(c, b, 302);
		else
			send_chooser(c);
		return true;
	}
	if (strcmp(c->path, "/choose") == 0 ||
	    strcmp(c->path, "/choose/") == 0) {
		send_chooser(c);
		return true;
	}
	if (strcmp(c->path, "/brands.css") == 0) {
		send_brands_css(c);
		return true;
	}
	if (strncmp(c->path, "/choose/", 8) == 0) {
		const struct http_brand *b =
			http_brand_find(server, c->path + 8);
		if (b == NULL) {
			http_send_error(c, 404, "No such webmail");
			return true;
		}
		http_set_brand_cookie(c, b);
		go_to_brand(c, b, 303);
		return true;
	}
	const char *rest;
	const struct http_brand *b = brand_path(c, &rest);
	if (b == NULL)
		return false;
	if (strcmp(rest, "") == 0)
		go_to_brand(c, b, 301);
	else if (strcmp(rest, "/") == 0)
		http_send_asset(c, http_asset_find("/index.html"));
	else if (strcmp(rest, "/brand.css") == 0)
		send_brand_css(c, b);
	else if (strcmp(rest, "/brand.json") == 0)
		send_brand_json(c, b);
	else if (strcmp(rest, "/logo") == 0)
		send_logo(c, b);
	else
		http_send_error(c, 404, "Not found");
	return true;
}
