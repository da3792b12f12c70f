/* blob.c: files in and out of the webmail: uploads (RFC 8620 6.1),
 * downloads (6.2) and the sanitized view of an HTML part shown in the
 * reading pane's sandboxed frame.
 *
 * A download is always an attachment (Content-Disposition, nosniff, and a
 * CSP sandbox in case a browser renders it anyway), so nothing a sender
 * wrote ever runs as our origin. The view is HTML that went through the
 * sanitizer, under a CSP that allows no script at all; remote images only
 * when the reader asked, and then the browser fetches them, never the
 * server. Every blob is looked up in the session's own account. */
#include "core/common.h"

#include "http/internal.h"
#include "http/audit.h"
#include "http/jmap.h"
#include "http/sanitize.h"

#include "core/base64.h"
#include "core/log.h"
#include "mime/jmap.h"
#include "mime/mime.h"

#include <ctype.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/http.h>

/* cid: images put inline into a view, each at most this large. */
#define HTTP_MAX_INLINE_IMAGE (2u << 20)

static const char download_policy[] = "default-src 'none'; sandbox";

/* A view may show images from the message itself (data:), and remote
 * ones only when asked; inline styles are the sanitizer's filtered ones.
 * Links open outside the sandbox in a new tab. */
static const char view_policy[] =
	"default-src 'none'; img-src data:; style-src 'unsafe-inline';"
	" font-src data:; base-uri 'none'; form-action 'none';"
	" frame-ancestors 'self'; sandbox allow-popups"
	" allow-popups-to-escape-sandbox";
static const char view_policy_images[] =
	"default-src 'none'; img-src data: https: http:;"
	" style-src 'unsafe-inline'; font-src data:; base-uri 'none';"
	" form-action 'none'; frame-ancestors 'self'; sandbox allow-popups"
	" allow-popups-to-escape-sandbox";

/* Splits "/jmap/<what>/" paths: the segments after the prefix. */
static size_t split(const char *path, char segments[][512], size_t max)
{
	size_t n = 0;
	const char *p = path;
	while (*p && n < max) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		if (len >= 512)
			return 0;
		memcpy(segments[n], p, len);
		segments[n][len] = '\0';
		n++;
		if (slash == NULL)
			break;
		p = slash + 1;
	}
	return n;
}

/* A MIME type as a download may carry: type/subtype tokens, lower case. */
static bool safe_type(const char *type, char *out, size_t size)
{
	size_t n = 0;
	int slashes = 0;
	for (const char *p = type; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '/')
			slashes++;
		else if (!isalnum(c) && !strchr("!#$&-^_.+", c))
			return false;
		if (n + 1 >= size)
			return false;
		out[n++] = (char)tolower(c);
	}
	out[n] = '\0';
	return slashes == 1 && out[0] != '/' && out[n - 1] != '/';
}

/* The value of a query parameter (raw, not decoded) into out. */
static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes in place (for the type parameter). */
static bool percent_decode(char *s)
{
	char *w = s;
	for (char *r = s; *r; r++) {
		if (*r == '%') {
			int hi = hex_value(r[1]),
			    lo = hi < 0 ? -1 : hex_value(r[2]);
			if (lo < 0)
				return false;
			*w++ = (char)(hi * 16 + lo);
			r += 2;
		} else {
			*w++ = *r == '+' ? ' ' : *r;
		}
	}
	*w = '\0';
	return true;
}

/* Content-Disposition for a download name: an ASCII fallback and the
 * RFC 6266 / 8187 UTF-8 form. */
static void disposition(const char *name, char *out, size_t size)
{
	struct buf b;
	buf_init(&b, size - 1);
	buf_append_cstr(&b, "attachment; filename=\"");
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		buf_append(&b,
			   (*p < 0x20 || *p >= 0x7f || *p == '"' ||
			    *p == '\\' || *p == '/')
				   ? "_"
				   : (const char *)p,
			   1);
	buf_append_cstr(&b, "\"; filename*=UTF-8''");
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		if (isalnum(*p) || strchr("!#$&+-.^_`|~", *p))
			buf_append(&b, p, 1);
		else
			buf_printf(&b, "%%%02X", *p);
	}
	if (buf_overflowed(&b))
		snprintf(out, size, "attachment");
	else
		snprintf(out, size, "%s", buf_cstr(&b));
	buf_free(&b);
}

/* ---- upload ---- */

static void upload_work(struct http_call *c, struct store *store)
{
	const char *error;
	char type[128];
	snprintf(type, sizeof(type), "%s", c->reply_disposition);
	c->reply_disposition[0] = '\0';
	uint64_t id;
	if (store_upload_add(store, c->account_id, type, c->body.p, c->body.n,
			     &id, &error) != 0) {
		log_error("upload: %s", error);
		buf_append_cstr(&c->reply, "{\"type\":\"serverFail\"}");
		c->reply_code = 500;
		return;
	}
	char account[JMAP_ID_TEXT_SIZE], blob[JMAP_ID_TEXT_SIZE];
	jmap_account_id(c->account_id, account);
	jmap_make_id('U', id, blob);
	json_t *o = json_pack("{s:s, s:s, s:s, s:I}", "accountId", account,
			      "blobId", blob, "type", type, "size",
			      (json_int_t)c->body.n);
	char *text = json_dumps(o, JSON_COMPACT);
	buf_append_cstr(&c->reply, text);
	free(text);
	json_decref(o);
	c->reply_code = 201;
}

static void upload_checked(struct http_call *c)
{
	char account[JMAP_ID_TEXT_SIZE];
	jmap_account_id(c->account_id, account);
	char want[JMAP_ID_TEXT_SIZE + 2];
	snprintf(want, sizeof(want), "%s/", account);
	const char *named = c->path + strlen("/jmap/upload/");
	if (strcmp(named, account) != 0 && strcmp(named, want) != 0) {
		buf_append_cstr(&c->reply, "{\"type\":\"accountNotFound\"}");
		c->reply_code = 404;
		http_call_finish(c);
		return;
	}
	http_run_on_pool(c, upload_work);
}

/* ---- download ---- */

static void download_work(struct http_call *c, struct store *store)
{
	char segments[4][512];
	size_t n = split(c->path + strlen("/jmap/download/"), segments, 4);
	struct jmap_context jc = {
		.store = store,
		.account_id = c->account_id,
		.address = c->address,
	};
	jmap_account_id(c->account_id, jc.account);
	char type[128], wanted[128];
	int r = n == 3 && strcmp(segments[0], jc.account) == 0
			? jmap_blob_bytes(&jc, segments[1], &c->reply, type,
					  sizeof(type))
			: 0;
	if (r <= 0) {
		buf_reset(&c->reply);
		buf_append_cstr(&c->reply, r < 0 ? "500 Server error\n"
						 : "404 Not found\n");
		c->reply_code = r < 0 ? 500 : 404;
		c->reply_type = "text/plain; charset=utf-8";
		return;
	}
	/* The type the client asks for, when it is one. */
	if (http_query_value(c->query, "type", wanted, sizeof(wanted)) &&
	    percent_decode(wanted) && safe_type(wanted, type, sizeof(type)))
		;
	else if (!safe_type(type, wanted, sizeof(wanted)))
		snprintf(type, sizeof(type), "application/octet-stream");
	snprintf(c->reply_type_text, sizeof(c->reply_type_text), "%s", type);
	c->reply_type = c->reply_type_text;
	c->reply_code = 200;
	c->policy = download_policy;
	c->cacheable = true;
	http_audit_note(c, "download", "blob %s (%s)", segments[1],
			segments[2]);
	disposition(segments[2], c->reply_disposition,
		    sizeof(c->reply_disposition));
}

static void download_checked(struct http_call *c)
{
	http_run_on_pool(c, download_work);
}

/* ---- view ---- */

struct cid_map {
	const struct mime_message *m;
	const struct mime_jmap_body *body;
	struct buf *urls; /* "data:..." strings, NUL-separated */
	size_t used;
};

/* A cid: reference of the HTML as a data: URL of the message's own image
 * part, so the sandboxed frame needs no request to show it. */
static const char *resolve_cid(const char *cid, size_t len, void *context)
{
	struct cid_map *map = context;
	for (size_t i = 0; i < map->body->part_count; i++) {
		const struct mime_body_part *p = &map->body->parts[i];
		if (p->cid == NULL || strlen(p->cid) != len ||
		    strncasecmp(p->cid, cid, len) != 0)
			continue;
		if (strncmp(p->type, "image/", 6) != 0 ||
		    strcmp(p->type, "image/svg+xml") == 0 ||
		    p->size > HTTP_MAX_INLINE_IMAGE)
			return NULL;
		char type[64];
		if (!safe_type(p->type, type, sizeof(type)))
			return NULL;
		struct buf raw;
		buf_init(&raw, HTTP_MAX_INLINE_IMAGE + 1);
		if (mime_part_content(map->m, p->part_id, &raw) != 0 ||
		    raw.n > HTTP_MAX_INLINE_IMAGE) {
			buf_free(&raw);
			return NULL;
		}
		size_t start = map->urls->n;
		buf_printf(map->urls, "data:%s;base64,", type);
		char *text = xmalloc(BASE64_ENCODED_SIZE(raw.n));
		base64_encode(buf_slice(&raw), text);
		buf_append_cstr(map->urls, text);
		buf_append(map->urls, "", 1);
		free(text);
		buf_free(&raw);
		if (buf_overflowed(map->urls))
			return NULL;
		return (const char *)map->urls->p + start;
	}
	return NULL;
}

static const char view_head[] =
	"<!DOCTYPE html><html><head><meta charset=\"utf-8\">"
	"<meta name=\"referrer\" content=\"no-referrer\">"
	"<style>body{margin:0;padding:16px;font:15px/1.5 system-ui,"
	"sans-serif;color:#1d2129;background:#fff;overflow-wrap:anywhere}"
	"img{max-width:100%;height:auto}pre{white-space:pre-wrap}"
	"blockquote{margin:0 0 0 8px;padding-left:12px;border-left:3px solid"
	" #d0d4da;color:#4a5260}</style></head><body>";

static void view_work(struct http_call *c, struct store *store)
{
	char segments[4][512];
	size_t n = split(c->path + strlen("/jmap/view/"), segments, 4);
	char account[JMAP_ID_TEXT_SIZE], images[4];
	jmap_account_id(c->account_id, account);
	bool remote =
		http_query_value(c->query, "images", images, sizeof(images)) &&
		strcmp(images, "1") == 0;
	struct jmap_context jc = {
		.store = store,
		.account_id = c->account_id,
		.address = c->address,
	};
	uint64_t email_id;
	c->reply_type = "text/plain; charset=utf-8";
	if (n != 3 || strcmp(segments[0], account) != 0 ||
	    !jmap_parse_id(segments[1], 'e', &email_id)) {
		buf_append_cstr(&c->reply, "404 Not found\n");
		c->reply_code = 404;
		return;
	}
	struct jmap_message m;
	int r = jmap_message_load(&jc, email_id, &m);
	if (r <= 0) {
		buf_append_cstr(&c->reply, r < 0 ? "500 Server error\n"
						 : "404 Not found\n");
		c->reply_code = r < 0 ? 500 : 404;
		return;
	}
	struct mime_jmap_body body;
	mime_jmap_body(m.mime, &body);
	const struct mime_body_part *part = NULL;
	for (size_t i = 0; i < body.part_count; i++)
		if (!body.parts[i].multipart &&
		    strcmp(body.parts[i].part_id, segments[2]) == 0)
			part = &body.parts[i];
	struct buf html;
	buf_init(&html, SANITIZE_MAX_INPUT + 1);
	if (part == NULL || strcmp(part->type, "text/html") != 0 ||
	    mime_part_text(m.mime, part->part_id, SANITIZE_MAX_INPUT + 1, &html,
			   NULL) != 0) {
		buf_append_cstr(&c->reply, "404 Not found\n");
		c->reply_code = 404;
	} else {
		struct buf urls;
		buf_init(&urls, 16u << 20);
		struct cid_map map = {m.mime, &body, &urls, 0};
		struct sanitize_options opt = {
			.remote_images = remote,
			.resolve_cid = resolve_cid,
			.context = &map,
		};
		struct sanitize_result result;
		buf_append_cstr(&c->reply, view_head);
		if (html_sanitize(html.p, html.n, &opt, &c->reply, &result) !=
		    0) {
			/* Too much for the sanitizer: show nothing of it
			 * rather than anything unsanitized. */
			buf_append_cstr(&c->reply,
					"<p>This message is too complex to"
					" show safely. Download it to read"
					" it.</p>");
		}
		buf_append_cstr(&c->reply, "</body></html>");
		buf_free(&urls);
		c->reply_type = "text/html; charset=utf-8";
		c->reply_code = 200;
		c->policy = remote ? view_policy_images : view_policy;
	}
	buf_free(&html);
	mime_jmap_body_free(&body);
	jmap_message_free(&m);
}

static void view_checked(struct http_call *c)
{
	http_run_on_pool(c, view_work);
}

bool http_blob_route(struct http_call *c)
{
	enum evhttp_cmd_type method = evhttp_request_get_command(c->req);
	if (strncmp(c->path, "/jmap/upload/", 13) == 0) {
		if (method != EVHTTP_REQ_POST) {
			http_send_error(c, 405, "Use POST");
			return true;
		}
		struct evbuffer *in = evhttp_request_get_input_buffer(c->req);
		size_t n = evbuffer_get_length(in);
		if (n > JMAP_MAX_SIZE_UPLOAD) {
			http_send(c, 413, "application/json",
				  "{\"type\":\"tooLarge\"}", 19);
			return true;
		}
		const char *type = http_header(c, "Content-Type");
		char bare[128], clean[128];
		struct http_call *k = http_call_keep(c);
		/* The type without parameters. */
		size_t len = type ? strcspn(type, "; \t") : 0;
		snprintf(bare, sizeof(bare), "%.*s",
			 (int)(len < 127 ? len : 127), type ? type : "");
		if (type == NULL || len >= sizeof(bare) ||
		    !safe_type(bare, clean, sizeof(clean)))
			snprintf(clean, sizeof(clean),
				 "application/octet-stream");
		snprintf(k->reply_disposition, sizeof(k->reply_disposition),
			 "%s", clean);
		buf_init(&k->body, JMAP_MAX_SIZE_UPLOAD);
		buf_append(&k->body, evbuffer_pullup(in, -1), n);
		http_with_session(k, true, upload_checked);
		return true;
	}
	if (strncmp(c->path, "/jmap/download/", 15) == 0 ||
	    strncmp(c->path, "/jmap/view/", 11) == 0) {
		if (method != EVHTTP_REQ_GET && method != EVHTTP_REQ_HEAD) {
			http_send_error(c, 405, "Use GET");
			return true;
		}
		http_with_session(http_call_keep(c), false,
				  c->path[6] == 'd' ? download_checked
						    : view_checked);
		return true;
	}
	return false;
}
