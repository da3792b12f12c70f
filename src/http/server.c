/* server.c: the http worker process: libevent's evhttp on the loop, over
 * plain sockets and OpenSSL, with limits on headers, bodies and time; the
 * security headers every response carries; the embedded static files
 * (ETag, gzip); and the dispatch of requests to the portal and the
 * webmail. */
#include "core/privsep.h"
#include "core/common.h"

#include "http/internal.h"

#include "auth/auth.h"
#include "core/channel.h"
#include "core/ipc.h"
#include "core/log.h"
#include "core/net.h"
#include "core/pool.h"
#include "http/assets.h"
#include "http/jmap.h"

#include <ctype.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <strings.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/http_struct.h>
#include <event2/keyvalq_struct.h>

/* The webmail's own pages: scripts only from us, no inline script or
 * style, no plugins, never framed by another site. Mail bodies get a
 * stricter policy of their own. */
static const char page_policy[] =
	"default-src 'none'; script-src 'self'; style-src 'self';"
	" img-src 'self' data:; connect-src 'self'; font-src 'self';"
	" frame-src 'self'; form-action 'self'; base-uri 'none';"
	" frame-ancestors 'none'";

const struct http_asset *http_asset_find(const char *path)
{
	size_t lo = 0, hi = http_asset_count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(http_assets[mid].path, path);
		if (c == 0)
			return &http_assets[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* ---- Responses ---- */

static void security_headers(struct http_call *c)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(c->req);
	evhttp_add_header(h, "Content-Security-Policy",
			  c->policy ? c->policy : page_policy);
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(h, "Referrer-Policy", "no-referrer");
	evhttp_add_header(h, "X-Frame-Options",
			  c->policy ? "SAMEORIGIN" : "DENY");
	evhttp_add_header(h, "Cross-Origin-Opener-Policy", "same-origin");
	evhttp_add_header(h, "Cross-Origin-Resource-Policy", "same-origin");
	evhttp_add_header(h, "Permissions-Policy",
			  "camera=(), microphone=(), geolocation=(),"
			  " interest-cohort=()");
	if (c->tls)
		evhttp_add_header(h, "Strict-Transport-Security",
				  "max-age=31536000");
}

void http_send(struct http_call *c, int code, const char *type,
	       const void *body, size_t size)
{
	security_headers(c);
	struct evkeyvalq *h = evhttp_request_get_output_headers(c->req);
	if (type != NULL)
		evhttp_add_header(h, "Content-Type", type);
	if (evhttp_find_header(h, "Cache-Control") == NULL)
		evhttp_add_header(h, "Cache-Control", "no-store");
	struct evbuffer *b = evbuffer_new();
	if (size > 0)
		evbuffer_add(b, body, size);
	evhttp_send_reply(c->req, code, NULL, b);
	evbuffer_free(b);
}

void http_send_buf(struct http_call *c, int code, const char *type,
		   const struct buf *body)
{
	http_send(c, code, type, body->p, body->n);
}

void http_send_error(struct http_call *c, int code, const char *text)
{
	struct buf b;
	buf_init(&b, 1024);
	buf_printf(&b, "%d ", code);
	buf_append_cstr(&b, text);
	buf_append_cstr(&b, "\n");
	http_send_buf(c, code, "text/plain; charset=utf-8", &b);
	buf_free(&b);
}

void http_redirect(struct http_call *c, int code, const char *location)
{
	evhttp_add_header(evhttp_request_get_output_headers(c->req), "Location",
			  location);
	http_send(c, code, NULL, NULL, 0);
}

const char *http_header(struct http_call *c, const char *name)
{
	return evhttp_find_header(evhttp_request_get_input_headers(c->req),
				  name);
}

bool http_cookie(struct http_call *c, const char *name, char *out, size_t size)
{
	const char *header = http_header(c, "Cookie");
	size_t n = strlen(name);
	while (header != NULL && *header) {
		while (*header == ' ' || *header == ';')
			header++;
		const char *end = strchr(header, ';');
		size_t len = end ? (size_t)(end - header) : strlen(header);
		if (len > n && strncmp(header, name, n) == 0 &&
		    header[n] == '=') {
			size_t vlen = len - n - 1;
			if (vlen >= size)
				return false;
			memcpy(out, header + n + 1, vlen);
			out[vlen] = '\0';
			return true;
		}
		header = end;
	}
	return false;
}

void http_append_escaped_n(struct buf *out, const char *text, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		switch (text[i]) {
		case '&':
			buf_append_cstr(out, "&amp;");
			break;
		case '<':
			buf_append_cstr(out, "&lt;");
			break;
		case '>':
			buf_append_cstr(out, "&gt;");
			break;
		case '"':
			buf_append_cstr(out, "&quot;");
			break;
		case '\'':
			buf_append_cstr(out, "&#39;");
			break;
		default:
			buf_append(out, text + i, 1);
		}
	}
}

void http_append_escaped(struct buf *out, const char *text)
{
	http_append_escaped_n(out, text, strlen(text));
}

bool http_query_value(const char *query, const char *name, char *out,
		      size_t size)
{
	size_t n = strlen(name);
	for (const char *p = query; p != NULL && *p;) {
		const char *amp = strchr(p, '&');
		size_t len = amp ? (size_t)(amp - p) : strlen(p);
		if (len > n && strncmp(p, name, n) == 0 && p[n] == '=') {
			size_t v = len - n - 1;
			if (v >= size)
				return false;
			memcpy(out, p + n + 1, v);
			out[v] = '\0';
			return true;
		}
		p = amp ? amp + 1 : NULL;
	}
	return false;
}

/* ---- Static files ---- */

static bool accepts_gzip(struct http_call *c)
{
	const char *ae = http_header(c, "Accept-Encoding");
	if (ae == NULL)
		return false;
	/* A token "gzip" not followed by ";q=0". */
	for (const char *p = ae; (p = strcasestr(p, "gzip")) != NULL; p += 4) {
		bool start = p == ae || p[-1] == ' ' || p[-1] == ',';
		const char *q = p + 4;
		while (*q == ' ')
			q++;
		bool zero = strncmp(q, ";q=0", 4) == 0 &&
			    (q[4] == '\0' || q[4] == ',' ||
			     (q[4] == '.' && strspn(q + 5, "0") > 0 &&
			      (q[5 + strspn(q + 5, "0")] == '\0' ||
			       q[5 + strspn(q + 5, "0")] == ',')));
		if (start && !zero)
			return true;
	}
	return false;
}

void http_send_asset(struct http_call *c, const struct http_asset *a)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(c->req);
	evhttp_add_header(h, "ETag", a->etag);
	evhttp_add_header(h, "Cache-Control", "no-cache");
	evhttp_add_header(h, "Vary", "Accept-Encoding");
	const char *inm = http_header(c, "If-None-Match");
	if (inm != NULL && strstr(inm, a->etag) != NULL) {
		http_send(c, 304, NULL, NULL, 0);
		return;
	}
	if (accepts_gzip(c)) {
		evhttp_add_header(h, "Content-Encoding", "gzip");
		http_send(c, 200, a->type, a->gzip, a->gzip_size);
	} else {
		http_send(c, 200, a->type, a->data, a->size);
	}
}

/* ---- Dispatch ---- */

/* Decodes the path of the request into c->path. False for paths we never
 * serve: not absolute, encoded NULs or slashes, dot segments. */
static bool parse_target(struct http_call *c)
{
	const char *uri = evhttp_request_get_uri(c->req);
	if (uri == NULL || uri[0] != '/')
		return false;
	const char *q = strchr(uri, '?');
	size_t len = q ? (size_t)(q - uri) : strlen(uri);
	c->query = q ? q + 1 : NULL;
	size_t w = 0;
	for (size_t i = 0; i < len; i++) {
		char ch = uri[i];
		if (ch == '%') {
			if (i + 2 >= len ||
			    !isxdigit((unsigned char)uri[i + 1]) ||
			    !isxdigit((unsigned char)uri[i + 2]))
				return false;
			char hex[3] = {uri[i + 1], uri[i + 2], '\0'};
			ch = (char)strtol(hex, NULL, 16);
			i += 2;
			if (ch == '\0' || ch == '/' || ch == '\\')
				return false;
		}
		if ((unsigned char)ch < 0x20 || ch == 0x7f)
			return false;
		if (w + 1 >= sizeof(c->path))
			return false;
		c->path[w++] = ch;
	}
	c->path[w] = '\0';
	/* No "." or ".." segments anywhere. */
	for (const char *p = c->path; (p = strchr(p, '/')) != NULL; p++) {
		if (p[1] == '.' &&
		    (p[2] == '/' || p[2] == '\0' ||
		     (p[2] == '.' && (p[3] == '/' || p[3] == '\0'))))
			return false;
	}
	return true;
}

static bool is_loopback(const char *address)
{
	return strncmp(address, "127.", 4) == 0 ||
	       strcmp(address, "::1") == 0 ||
	       strncmp(address, "::ffff:127.", 11) == 0;
}

/* A host header we may put into a redirect: a name or an address, with an
 * optional port. */
static bool safe_host(const char *host)
{
	size_t n = strlen(host);
	if (n == 0 || n > 255)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)host[i];
		if (!(isalnum(ch) || ch == '.' || ch == '-' || ch == ':' ||
		      ch == '[' || ch == ']'))
			return false;
	}
	return true;
}

/* RFC 9110 5.6.2 token characters: what a field name may hold. */
static bool is_tchar(unsigned char ch)
{
	return isalnum(ch) || (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch));
}

/* The checks of a request's head that libevent leaves out, each of which
 * would otherwise let two parsers (ours and a proxy's, or libevent's and
 * the next request's) see different messages (request smuggling):
 * RFC 9112 6.3 (one Content-Length of digits only; Transfer-Encoding
 * only "chunked"; never both), 3.2 (exactly one Host in HTTP/1.1), 5.1
 * (no space before the colon: the name must be a token) and RFC 9110 5.5
 * (no CR or LF in a value: another parser could end the line there;
 * other control characters are tolerated and replaced where a value is
 * kept, as browsers send them in User-Agent). Returns 0, or the
 * status to answer with and *reason_r. The connection is closed after
 * such an answer, since the end of the request is unknown. */
static int check_head(struct evhttp_request *req, const char **reason_r)
{
	struct evkeyvalq *headers = evhttp_request_get_input_headers(req);
	unsigned hosts = 0, lengths = 0, encodings = 0;
	const char *uri = evhttp_request_get_uri(req);
	if (uri != NULL && strlen(uri) > HTTP_MAX_TARGET_SIZE) {
		*reason_r = "URI too long";
		return 414;
	}
	size_t fields = 0;
	struct evkeyval *h;
	TAILQ_FOREACH(h, headers, next)
	{
		/* As sent: "name: value" and CRLF. */
		fields += strlen(h->key) + strlen(h->value) + 4;
		if (fields > HTTP_MAX_HEADER_FIELDS) {
			*reason_r = "Request header fields too large";
			return 431;
		}
		const unsigned char *name = (const unsigned char *)h->key;
		if (*name == '\0') {
			*reason_r = "Bad header field name";
			return 400;
		}
		for (; *name; name++) {
			if (!is_tchar(*name)) {
				*reason_r = "Bad header field name";
				return 400;
			}
		}
		if (strpbrk(h->value, "\r\n") != NULL) {
			*reason_r = "Line break in a header";
			return 400;
		}
		if (strcasecmp(h->key, "Host") == 0) {
			hosts++;
		} else if (strcasecmp(h->key, "Content-Length") == 0) {
			lengths++;
			const char *v = h->value;
			if (*v == '\0' ||
			    strspn(v, "0123456789") != strlen(v)) {
				*reason_r = "Bad Content-Length";
				return 400;
			}
		} else if (strcasecmp(h->key, "Transfer-Encoding") == 0) {
			encodings++;
			if (strcasecmp(h->value, "chunked") != 0) {
				*reason_r = "Transfer-Encoding not supported";
				return 501;
			}
		}
	}
	if (lengths > 1 || encodings > 1 || (lengths && encodings)) {
		*reason_r = "Conflicting message length";
		return 400;
	}
	if (req->major == 1 && req->minor >= 1 ? hosts != 1 : hosts > 1) {
		*reason_r = "A request needs exactly one Host";
		return 400;
	}
	return 0;
}

struct front {
	struct http_server *server;
	bool tls;
};

static void handle(struct evhttp_request *req, void *arg)
{
	struct front *f = arg;
	http_handle_request(f->server, req, f->tls);
}

void http_handle_request(struct http_server *server, struct evhttp_request *req,
			 bool tls)
{
	struct http_call c = {.server = server, .req = req, .tls = tls};
	struct evhttp_connection *conn = evhttp_request_get_connection(req);
	char *peer = NULL;
	ev_uint16_t port = 0;
	evhttp_connection_get_peer(conn, &peer, &port);
	c.loopback = peer != NULL && is_loopback(peer);
	snprintf(c.remote, sizeof(c.remote), "%s", peer ? peer : "");
	if (!http_conns_admit(c.server->conns, req)) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
				  "Connection", "close");
		http_send_error(&c, 503,
				"Too many connections from your address");
		return;
	}
	enum evhttp_cmd_type method = evhttp_request_get_command(req);
	const char *reason = NULL;
	int refused = check_head(req, &reason);
	if (refused != 0) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
				  "Connection", "close");
		http_send_error(&c, refused, reason);
		return;
	}
	if (!parse_target(&c)) {
		http_send_error(&c, 400, "Bad request target");
		return;
	}
	if (!c.tls && !c.loopback) {
		/* Plain HTTP serves only this machine; others go to HTTPS. */
		const char *host = http_header(&c, "Host");
		char target[1400];
		snprintf(target, sizeof(target), "https://%s%s",
			 host && safe_host(host) ? host
						 : c.server->config->hostname,
			 c.path);
		http_redirect(&c, 301, target);
		return;
	}
	if (method != EVHTTP_REQ_GET && method != EVHTTP_REQ_HEAD &&
	    method != EVHTTP_REQ_POST) {
		http_send_error(&c, 405, "Method not allowed");
		return;
	}
	if (strncmp(c.path, "/static/", 8) == 0) {
		const struct http_asset *a = http_asset_find(c.path + 7);
		if (a == NULL || method == EVHTTP_REQ_POST) {
			http_send_error(&c, 404, "Not found");
			return;
		}
		http_send_asset(&c, a);
		return;
	}
	if (http_api_route(&c) || http_jmap_route(&c) || http_push_route(&c) ||
	    http_blob_route(&c) || http_wellknown_route(&c))
		return;
	if (http_portal_route(&c))
		return;
	http_send_error(&c, 404, "Not found");
}

/* ---- The worker ---- */

static struct bufferevent *tls_bev(struct event_base *base, void *arg)
{
	SSL_CTX *ctx = arg;
	SSL *ssl = SSL_new(ctx);
	if (ssl == NULL)
		return NULL;
	return bufferevent_openssl_socket_new(base, -1, ssl,
					      BUFFEREVENT_SSL_ACCEPTING,
					      BEV_OPT_CLOSE_ON_FREE);
}

void http_limit(struct evhttp *http)
{
	evhttp_set_allowed_methods(
		http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
			      EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
			      EVHTTP_REQ_OPTIONS);
	evhttp_set_max_headers_size(http, HTTP_MAX_HEADERS_SIZE);
	evhttp_set_max_body_size(http, HTTP_MAX_BODY_SIZE);
	evhttp_set_timeout(http, HTTP_TIMEOUT_SECONDS);
}

struct worker {
	struct http_server server;
	struct evhttp *http[2];
	struct front fronts[2];
};

static void begin_shutdown(struct worker *w)
{
	if (w->server.stopping)
		return;
	w->server.stopping = true;
	log_info("shutting down");
	http_push_close_all(&w->server);
	/* Every reply is sent before the handler returns: nothing is in
	 * progress to wait for. */
	for (size_t i = 0; i < 2; i++) {
		if (w->http[i] != NULL) {
			evhttp_free(w->http[i]);
			w->http[i] = NULL;
		}
	}
	event_base_loopexit(w->server.base, NULL);
}

void http_notify(struct http_server *server, uint64_t account_id)
{
	http_push_wake(server, account_id);
	channel_notify(server->master, account_id, "");
}

/* Change notifications from the other processes wake the push streams. */
static void master_read(struct bufferevent *bev, void *arg)
{
	struct worker *w = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	for (;;) {
		size_t len = evbuffer_get_length(in);
		if (len == 0)
			return;
		size_t want = len < IPC_MAX_FRAME ? len : IPC_MAX_FRAME;
		const uint8_t *p = evbuffer_pullup(in, (ev_ssize_t)want);
		struct ipc_frame f;
		size_t consumed;
		int r = ipc_parse(slice_make(p, want), &f, &consumed);
		if (r == 0)
			return;
		struct slice cursor = f.payload;
		uint64_t account_id;
		if (r < 0 || f.type != IPC_NOTIFY_MAILBOX ||
		    ipc_get_u64(&cursor, &account_id) != 0) {
			log_error("malformed message from the master");
			evbuffer_drain(in, len);
			return;
		}
		evbuffer_drain(in, consumed);
		http_push_wake(&w->server, account_id);
	}
}

static void master_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	struct worker *w = arg;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		log_warning("lost the master process; shutting down");
		bufferevent_free(w->server.master);
		w->server.master = NULL;
		begin_shutdown(w);
	}
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	begin_shutdown(arg);
}

int http_worker_run(const struct http_worker_params *p)
{
	log_set_process("http");
	signal(SIGPIPE, SIG_IGN);
	struct worker *w = xcalloc(1, sizeof(*w));
	struct http_server *server = &w->server;
	server->base = event_base_new();
	server->config = p->config;
	server->data_dir = p->data_dir;
	const char *error;
	server->store = store_open(p->data_dir, &error);
	if (server->store == NULL) {
		log_error("cannot open the store: %s", error);
		return 1;
	}
	server->pool = pool_new(server->base, HTTP_POOL_THREADS);
	server->conns = http_conns_new(p->config->connections_per_ip);
	char auth_path[256];
	if (auth_socket_path(p->data_dir, auth_path, sizeof(auth_path)) != 0) {
		log_error("data directory path too long for the auth socket");
		return 1;
	}
	server->auth = auth_client_new(server->base, auth_path);
	if (p->master_fd >= 0) {
		server->master = bufferevent_socket_new(
			server->base, p->master_fd, BEV_OPT_CLOSE_ON_FREE);
		bufferevent_setcb(server->master, master_read, NULL,
				  master_event, w);
		bufferevent_enable(server->master, EV_READ | EV_WRITE);
	}
	const int fds[2] = {p->http_fd, p->https_fd};
	for (size_t i = 0; i < 2; i++) {
		if (fds[i] < 0)
			continue;
		/* evhttp writes a reply's head and body apart: with Nagle's
		 * algorithm the body then waits for the client's delayed ACK
		 * (up to 40 ms on Linux). Accepted sockets inherit the
		 * option from the listener. */
		int one = 1;
		setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (i == 1 && p->tls == NULL) {
			log_error("listen.https needs a TLS certificate");
			continue;
		}
		struct evhttp *http = evhttp_new(server->base);
		http_limit(http);
		w->fronts[i] = (struct front){server, i == 1};
		evhttp_set_gencb(http, handle, &w->fronts[i]);
		if (i == 1)
			evhttp_set_bevcb(http, tls_bev, p->tls);
		if (evhttp_accept_socket_with_handle(http, fds[i]) == NULL) {
			log_error("cannot listen");
			return 1;
		}
		w->http[i] = http;
	}
	struct event *term = evsignal_new(server->base, SIGTERM, on_signal, w);
	struct event *intr = evsignal_new(server->base, SIGINT, on_signal, w);
	event_add(term, NULL);
	event_add(intr, NULL);
	/* Setup is done: from here on, the role's user and filter. */
	privsep_lock_down();
	process_signals_ready();
	log_info("ready");
	event_base_dispatch(server->base);

	for (size_t i = 0; i < 2; i++)
		if (w->http[i] != NULL)
			evhttp_free(w->http[i]);
	pool_free(&server->pool);
	http_conns_free(&server->conns);
	store_thread_handles_close();
	auth_client_free(&server->auth);
	event_free(term);
	event_free(intr);
	if (server->master != NULL)
		bufferevent_free(server->master);
	for (size_t i = 0; i < server->brand_count; i++) {
		struct http_brand *b = &server->brands[i];
		free(b->display);
		free(b->logo);
		for (size_t k = 0; k < b->domain_count; k++)
			free(b->domains[k]);
		free(b->domains);
	}
	free(server->brands);
	store_close(&server->store);
	event_base_free(server->base);
	free(w);
	log_info("stopped");
	return 0;
}
