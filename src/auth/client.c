/* client.c: the workers' side of the auth protocol. One connection per
 * worker, opened on first use and again after the auth process restarts;
 * requests in flight when it drops are answered AUTH_UNAVAILABLE. */
#include "core/common.h"

#include "auth/auth.h"

#include "core/buf.h"
#include "core/ipc.h"
#include "core/log.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

/* Requests waiting longer than this are answered AUTH_UNAVAILABLE. */
#define AUTH_REQUEST_TIMEOUT_SECONDS 30

struct auth_request {
	struct auth_client *client;
	uint32_t id;
	auth_callback *cb;
	void *context;
	struct event *timeout;
	struct auth_request *prev, *next;
};

struct auth_client {
	struct event_base *base;
	char *socket_path;
	struct bufferevent *bev;
	uint32_t next_id;
	struct auth_request *requests;
};

static void request_unlink(struct auth_request *r)
{
	struct auth_client *c = r->client;
	if (r->prev)
		r->prev->next = r->next;
	else
		c->requests = r->next;
	if (r->next)
		r->next->prev = r->prev;
	event_free(r->timeout);
}

static void request_finish(struct auth_request *r, enum auth_result result,
			   uint64_t account_id, const char *address)
{
	request_unlink(r);
	auth_callback *cb = r->cb;
	void *context = r->context;
	free(r);
	cb(context, result, account_id, address);
}

static void client_disconnect(struct auth_client *c)
{
	if (c->bev != NULL) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	while (c->requests != NULL)
		request_finish(c->requests, AUTH_UNAVAILABLE, 0, "");
}

static void client_read(struct bufferevent *bev, void *arg)
{
	struct auth_client *c = arg;
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
		struct slice cursor = f.payload, address;
		uint64_t account_id;
		char addr[AUTH_MAX_USERNAME + 1];
		if (r < 0 || f.type != IPC_AUTH_REPLY ||
		    ipc_get_u64(&cursor, &account_id) != 0 ||
		    ipc_get_bytes(&cursor, &address) != 0 ||
		    address.n > AUTH_MAX_USERNAME) {
			log_error("malformed reply from the auth process");
			client_disconnect(c);
			return;
		}
		memcpy(addr, address.p, address.n);
		addr[address.n] = '\0';
		uint32_t id = f.id;
		evbuffer_drain(in, consumed);
		for (struct auth_request *q = c->requests; q; q = q->next) {
			if (q->id == id) {
				request_finish(
					q, account_id ? AUTH_OK : AUTH_FAILED,
					account_id, addr);
				break;
			}
		}
		/* A callback may have freed the client's connection. */
		if (c->bev != bev)
			return;
	}
}

static void client_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		log_warning("lost the connection to the auth process");
		client_disconnect(arg);
	}
}

static int client_connect(struct auth_client *c)
{
	if (c->bev != NULL)
		return 0;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", c->socket_path);
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 &&
	    errno != EINPROGRESS) {
		log_warning("cannot reach the auth process: %s",
			    strerror(errno));
		close(fd);
		return -1;
	}
	c->bev = bufferevent_socket_new(c->base, fd, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(c->bev, client_read, NULL, client_event, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	return 0;
}

struct auth_client *auth_client_new(struct event_base *base,
				    const char *socket_path)
{
	struct auth_client *c = xcalloc(1, sizeof(*c));
	c->base = base;
	c->socket_path = xstrdup(socket_path);
	c->next_id = 1;
	return c;
}

void auth_client_free(struct auth_client **cp)
{
	struct auth_client *c = *cp;
	if (c == NULL)
		return;
	client_disconnect(c);
	free(c->socket_path);
	free(c);
	*cp = NULL;
}

static void request_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct auth_request *r = arg;
	log_warning("the auth process did not answer in time");
	request_finish(r, AUTH_UNAVAILABLE, 0, "");
}

static void fail_soon(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	request_finish(arg, AUTH_UNAVAILABLE, 0, "");
}

struct auth_request *auth_check_password(struct auth_client *c,
					 struct slice username,
					 struct slice password,
					 const char *protocol,
					 const char *remote_address,
					 auth_callback *cb, void *context)
{
	struct auth_request *r = xcalloc(1, sizeof(*r));
	r->client = c;
	r->id = c->next_id++;
	r->cb = cb;
	r->context = context;
	r->next = c->requests;
	if (c->requests)
		c->requests->prev = r;
	c->requests = r;

	struct buf out;
	buf_init(&out, IPC_MAX_FRAME);
	ipc_begin(&out, IPC_AUTH_PASSWORD, r->id);
	ipc_put_bytes(&out, username);
	ipc_put_bytes(&out, password);
	ipc_put_bytes(&out, slice_cstr(protocol));
	ipc_put_bytes(&out, slice_cstr(remote_address));
	bool sent = ipc_end(&out) == 0 && client_connect(c) == 0 &&
		    bufferevent_write(c->bev, out.p, out.n) == 0;
	memset(out.p, 0, out.n);
	buf_free(&out);
	/* The callback never runs before this function returns. */
	struct timeval tv = {sent ? AUTH_REQUEST_TIMEOUT_SECONDS : 0, 0};
	r->timeout =
		evtimer_new(c->base, sent ? request_timeout : fail_soon, r);
	evtimer_add(r->timeout, &tv);
	return r;
}

void auth_request_cancel(struct auth_request *r)
{
	request_unlink(r);
	free(r);
}
