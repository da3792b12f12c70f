/* push.c: JMAP push over EventSource (RFC 8620 7.3): an open page learns
 * that its account's mail changed without asking.
 *
 * A stream is an HTTP response that never ends. Changes made in this
 * worker, and those the master relays from the others (SMTP deliveries,
 * IMAP, the other http workers), wake the streams of the account; each
 * then reads the account's state (one small query) and sends a
 * StateChange when it moved. A comment line every half minute keeps
 * proxies and the worker's own timeouts from closing a quiet stream. */
#include "core/common.h"

#include "http/internal.h"
#include "http/jmap.h"

#include "core/log.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#define HTTP_MAX_STREAMS	      10000
#define HTTP_MAX_ACCOUNT_STREAMS      16
#define HTTP_STREAM_KEEPALIVE_SECONDS 30

struct http_stream {
	struct http_stream *next, *prev;
	struct http_server *server;
	struct evhttp_request *req;
	struct evhttp_connection *conn;
	struct event *timer;
	uint64_t account_id;
	uint64_t state;
	unsigned ping; /* seconds; 0: none asked for */
	bool close_after_state;
};

static size_t stream_count;

static void stream_free(struct http_stream *s)
{
	struct http_server *server = s->server;
	if (s->prev)
		s->prev->next = s->next;
	else
		server->streams = s->next;
	if (s->next)
		s->next->prev = s->prev;
	event_free(s->timer);
	stream_count--;
	free(s);
}

static void stream_closed(struct evhttp_connection *conn, void *arg)
{
	(void)conn;
	struct http_stream *s = arg;
	/* The client left in the middle of the reply: evhttp detached the
	 * request and leaves it to us. */
	if (evhttp_request_get_connection(s->req) == NULL)
		evhttp_request_free(s->req);
	stream_free(s);
}

static void stream_end(struct http_stream *s)
{
	evhttp_connection_set_closecb(s->conn, NULL, NULL);
	evhttp_send_reply_end(s->req);
	stream_free(s);
}

static void stream_send(struct http_stream *s, const char *text)
{
	struct evbuffer *b = evbuffer_new();
	evbuffer_add(b, text, strlen(text));
	evhttp_send_reply_chunk(s->req, b);
	evbuffer_free(b);
}

/* Sends a StateChange when the account's state moved to state; with
 * force, also when it did not (the first event of a stream). */
static void stream_update(struct http_stream *s, uint64_t state, bool force)
{
	if (state == s->state && !force)
		return;
	s->state = state;
	char account[JMAP_ID_TEXT_SIZE], text[400];
	jmap_account_id(s->account_id, account);
	snprintf(text, sizeof(text),
		 "event: state\ndata: {\"@type\":\"StateChange\","
		 "\"changed\":{\"%s\":{\"Email\":\"%llu\",\"Mailbox\":\"%llu\","
		 "\"Thread\":\"%llu\",\"EmailDelivery\":\"%llu\"}}}\n\n",
		 account, (unsigned long long)state, (unsigned long long)state,
		 (unsigned long long)state, (unsigned long long)state);
	stream_send(s, text);
	if (s->close_after_state && !force)
		stream_end(s);
}

/* The account's state: one small read of the loop's store handle. */
static bool account_state(struct http_server *server, uint64_t account_id,
			  uint64_t *state_r)
{
	const char *error;
	if (store_jmap_state(server->store, account_id, state_r, &error) != 0) {
		log_error("push: %s", error);
		return false;
	}
	return true;
}

void http_push_wake(struct http_server *server, uint64_t account_id)
{
	/* Read once for all the account's streams, and only when it has
	 * one here. */
	uint64_t state;
	bool known = false;
	struct http_stream *next;
	for (struct http_stream *s = server->streams; s; s = next) {
		next = s->next;
		if (s->account_id != account_id)
			continue;
		if (!known && !account_state(server, account_id, &state))
			return;
		known = true;
		stream_update(s, state, false);
	}
}

static void stream_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct http_stream *s = arg;
	if (s->ping > 0) {
		char text[80];
		snprintf(text, sizeof(text),
			 "event: ping\ndata: {\"interval\":%u}\n\n", s->ping);
		stream_send(s, text);
	} else {
		stream_send(s, ": keepalive\n\n");
	}
}

void http_push_close_all(struct http_server *server)
{
	while (server->streams != NULL)
		stream_end(server->streams);
}

static void stream_start(struct http_call *c)
{
	struct http_server *server = c->server;
	size_t mine = 0;
	for (struct http_stream *s = server->streams; s; s = s->next)
		mine += s->account_id == c->account_id;
	if (stream_count >= HTTP_MAX_STREAMS ||
	    mine >= HTTP_MAX_ACCOUNT_STREAMS) {
		buf_append_cstr(&c->reply, "{\"error\":\"too many streams\"}");
		c->reply_code = 429;
		http_call_finish(c);
		return;
	}
	char ping[16] = "0", close_after[16] = "no";
	http_query_value(c->query, "ping", ping, sizeof(ping));
	http_query_value(c->query, "closeafter", close_after,
			 sizeof(close_after));
	char *end;
	unsigned long interval = strtoul(ping, &end, 10);
	if (*end != '\0' || interval > 3600) {
		buf_append_cstr(&c->reply, "{\"error\":\"ping\"}");
		c->reply_code = 400;
		http_call_finish(c);
		return;
	}
	struct http_stream *s = xcalloc(1, sizeof(*s));
	s->server = server;
	s->req = c->req;
	s->conn = c->conn;
	s->account_id = c->account_id;
	s->ping = (unsigned)interval;
	s->close_after_state = strcmp(close_after, "state") == 0;
	s->next = server->streams;
	if (s->next)
		s->next->prev = s;
	server->streams = s;
	stream_count++;
	/* The stream owns the request now: the call goes. */
	evhttp_connection_set_closecb(c->conn, stream_closed, s);
	c->conn = NULL;
	struct evkeyvalq *h = evhttp_request_get_output_headers(c->req);
	evhttp_add_header(h, "Content-Type", "text/event-stream");
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(h, "X-Accel-Buffering", "no");
	evhttp_send_reply_start(c->req, 200, "OK");
	http_call_free(c);
	s->timer = event_new(server->base, -1, EV_PERSIST, stream_tick, s);
	/* Pings as asked, and at least a comment every half minute. */
	struct timeval every = {
		s->ping > 0 && s->ping < HTTP_STREAM_KEEPALIVE_SECONDS
			? s->ping
			: HTTP_STREAM_KEEPALIVE_SECONDS,
		0};
	event_add(s->timer, &every);
	uint64_t state;
	if (account_state(server, s->account_id, &state))
		stream_update(s, state, true);
}

bool http_push_route(struct http_call *c)
{
	if (strcmp(c->path, "/jmap/eventsource") != 0)
		return false;
	enum evhttp_cmd_type method = evhttp_request_get_command(c->req);
	if (method != EVHTTP_REQ_GET) {
		http_send_error(c, 405, "Use GET");
		return true;
	}
	http_with_session(http_call_keep(c), false, stream_start);
	return true;
}
