/* client.c: the workers' side of the auth protocol. One connection per
 * worker, opened on first use and again after the auth process restarts;
 * requests in flight when it drops are answered AUTH_UNAVAILABLE. */
#include "core/common.h"

#include "auth/auth.h"

#include "auth/audit_client.h"

#include "core/buf.h"
#include "core/ipc.h"
#include "core/log.h"

#include <ctype.h>
#include <errno.h>
#include <sodium.h>
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
	auth_login_callback *login_cb;	     /* instead of cb, for web logins */
	auth_password_callback *password_cb; /* or for password changes */
	auth_security_callback *security_cb; /* or for IPC_SECURITY */
	auth_activity_callback *activity_cb; /* or for activity pages */
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

/* extra is the reply's third field: a login's token, a password change's
 * outcome, or nothing. */
static void request_finish(struct auth_request *r, enum auth_result result,
			   uint64_t account_id, const char *address,
			   struct slice extra)
{
	request_unlink(r);
	auth_callback *cb = r->cb;
	auth_login_callback *login_cb = r->login_cb;
	auth_password_callback *password_cb = r->password_cb;
	auth_activity_callback *activity_cb = r->activity_cb;
	void *context = r->context;
	free(r);
	const uint8_t *token = extra.n == AUTH_TOKEN_SIZE ? extra.p : NULL;
	if (activity_cb != NULL) {
		/* Pages come by auth_activity_page; this is the failure. */
		activity_cb(context, AUTH_UNAVAILABLE, slice_make(NULL, 0));
	} else if (password_cb != NULL) {
		enum auth_password_result outcome = AUTH_PASSWORD_UNAVAILABLE;
		if (result != AUTH_UNAVAILABLE && extra.n == 1 &&
		    extra.p[0] <= AUTH_PASSWORD_UNAVAILABLE)
			outcome = (enum auth_password_result)extra.p[0];
		/* Changed exactly when an account came back. */
		if ((outcome == AUTH_PASSWORD_CHANGED) != (result == AUTH_OK))
			outcome = AUTH_PASSWORD_UNAVAILABLE;
		password_cb(context, outcome);
	} else if (login_cb != NULL) {
		/* A login is good only with its session. */
		if (result == AUTH_OK && token == NULL)
			result = AUTH_UNAVAILABLE;
		/* A refusal may carry a second-factor ticket. */
		login_cb(context, result, result == AUTH_OK ? account_id : 0,
			 address, result != AUTH_UNAVAILABLE ? token : NULL);
	} else {
		cb(context, result, account_id, address);
	}
}

static void security_finish(struct auth_request *r, enum auth_result result,
			    enum auth_security_status status, struct slice body)
{
	request_unlink(r);
	auth_security_callback *cb = r->security_cb;
	void *context = r->context;
	free(r);
	cb(context, result, status, body);
}

static void client_disconnect(struct auth_client *c)
{
	if (c->bev != NULL) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	while (c->requests != NULL) {
		if (c->requests->security_cb != NULL)
			security_finish(c->requests, AUTH_UNAVAILABLE,
					AUTH_SECURITY_UNAVAILABLE,
					slice_make(NULL, 0));
		else
			request_finish(c->requests, AUTH_UNAVAILABLE, 0, "",
				       slice_make(NULL, 0));
	}
}

/* An IPC_SECURITY_REPLY: 1 when handled, -1 when malformed. */
static int security_reply(struct auth_client *c, const struct ipc_frame *f)
{
	struct slice cursor = f->payload, status, body;
	uint64_t account_id;
	if (ipc_get_u64(&cursor, &account_id) != 0 ||
	    ipc_get_bytes(&cursor, &status) != 0 || status.n != 1 ||
	    status.p[0] > AUTH_SECURITY_STATUS_MAX ||
	    ipc_get_bytes(&cursor, &body) != 0 || cursor.n != 0)
		return -1;
	struct auth_request *q = c->requests;
	while (q != NULL && q->id != f->id)
		q = q->next;
	if (q == NULL)
		return 1;
	if (q->security_cb == NULL)
		return -1;
	security_finish(q, account_id ? AUTH_OK : AUTH_FAILED,
			(enum auth_security_status)status.p[0], body);
	return 1;
}

/* Hands an activity page (a copy, drained from the input already) to its
 * request, if still waiting; -1 when the id belongs to another kind of
 * request. */
static int activity_page(struct auth_client *c, uint32_t id, struct slice page)
{
	struct auth_request *q = c->requests;
	while (q != NULL && q->id != id)
		q = q->next;
	if (q == NULL)
		return 0; /* cancelled meanwhile */
	if (q->activity_cb == NULL)
		return -1;
	request_unlink(q);
	auth_activity_callback *cb = q->activity_cb;
	void *context = q->context;
	free(q);
	cb(context, AUTH_OK, page);
	return 0;
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
		if (r > 0 && f.type == IPC_AUDIT_PAGE) {
			size_t n = f.payload.n;
			uint8_t *copy = xmalloc(n + 1);
			memcpy(copy, f.payload.p, n);
			uint32_t id = f.id;
			evbuffer_drain(in, consumed);
			int ok = activity_page(c, id, slice_make(copy, n));
			free(copy);
			if (ok != 0) {
				log_error("malformed reply from the auth"
					  " process");
				client_disconnect(c);
				return;
			}
			/* A callback may have freed the connection. */
			if (c->bev != bev)
				return;
			continue;
		}
		if (r > 0 && f.type == IPC_SECURITY_REPLY) {
			/* The reply is used before it is drained. */
			if (security_reply(c, &f) < 0) {
				log_error("malformed reply from the auth"
					  " process");
				client_disconnect(c);
				return;
			}
			if (c->bev != bev)
				return;
			evbuffer_drain(in, consumed);
			continue;
		}
		struct slice cursor = f.payload, address, extra = {0};
		uint64_t account_id;
		char addr[AUTH_MAX_USERNAME + 1];
		uint8_t extra_bytes[AUTH_TOKEN_SIZE];
		if (r < 0 || f.type != IPC_AUTH_REPLY ||
		    ipc_get_u64(&cursor, &account_id) != 0 ||
		    ipc_get_bytes(&cursor, &address) != 0 ||
		    address.n > AUTH_MAX_USERNAME ||
		    (cursor.n > 0 &&
		     (ipc_get_bytes(&cursor, &extra) != 0 ||
		      extra.n > sizeof(extra_bytes) || cursor.n != 0))) {
			log_error("malformed reply from the auth process");
			client_disconnect(c);
			return;
		}
		struct auth_request *q = c->requests;
		while (q != NULL && q->id != f.id)
			q = q->next;
		/* The third field must be what the request asks for. */
		size_t expected = 0;
		if (q != NULL && q->password_cb != NULL)
			expected = 1;
		else if (q != NULL && q->login_cb != NULL && account_id != 0)
			expected = AUTH_TOKEN_SIZE;
		/* A refused login may come with a ticket. */
		bool ticket = q != NULL && q->login_cb != NULL &&
			      account_id == 0 && extra.n == AUTH_TOKEN_SIZE;
		if (q != NULL && (q->security_cb != NULL ||
				  (extra.n != expected && !ticket))) {
			log_error("malformed reply from the auth process");
			client_disconnect(c);
			return;
		}
		memcpy(addr, address.p, address.n);
		addr[address.n] = '\0';
		if (extra.n > 0)
			memcpy(extra_bytes, extra.p, extra.n);
		evbuffer_drain(in, consumed);
		if (q != NULL)
			request_finish(q, account_id ? AUTH_OK : AUTH_FAILED,
				       account_id, addr,
				       slice_make(extra_bytes, extra.n));
		sodium_memzero(extra_bytes, sizeof(extra_bytes));
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
	if (r->security_cb != NULL)
		security_finish(r, AUTH_UNAVAILABLE, AUTH_SECURITY_UNAVAILABLE,
				slice_make(NULL, 0));
	else
		request_finish(r, AUTH_UNAVAILABLE, 0, "", slice_make(NULL, 0));
}

static void fail_soon(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct auth_request *r = arg;
	if (r->security_cb != NULL)
		security_finish(r, AUTH_UNAVAILABLE, AUTH_SECURITY_UNAVAILABLE,
				slice_make(NULL, 0));
	else
		request_finish(r, AUTH_UNAVAILABLE, 0, "", slice_make(NULL, 0));
}

/* Sends a request of type with its fields; the reply goes to the one
 * callback of r that the caller set. */
static struct auth_request *
send_request(struct auth_client *c, struct auth_request *r, enum ipc_type type,
	     const struct slice *fields, size_t count)
{
	r->client = c;
	r->id = c->next_id++;
	r->next = c->requests;
	if (c->requests)
		c->requests->prev = r;
	c->requests = r;

	struct buf out;
	buf_init(&out, IPC_MAX_FRAME);
	ipc_begin(&out, type, r->id);
	for (size_t i = 0; i < count; i++)
		ipc_put_bytes(&out, fields[i]);
	bool sent = ipc_end(&out) == 0 && client_connect(c) == 0 &&
		    bufferevent_write(c->bev, out.p, out.n) == 0;
	/* The frame may hold passwords. */
	sodium_memzero(out.p, out.n);
	buf_free(&out);
	/* The callback never runs before this function returns. */
	struct timeval tv = {sent ? AUTH_REQUEST_TIMEOUT_SECONDS : 0, 0};
	r->timeout =
		evtimer_new(c->base, sent ? request_timeout : fail_soon, r);
	evtimer_add(r->timeout, &tv);
	return r;
}

static struct auth_request *request_new(auth_callback *cb, void *context)
{
	struct auth_request *r = xcalloc(1, sizeof(*r));
	r->cb = cb;
	r->context = context;
	return r;
}

struct auth_request *auth_check_password(struct auth_client *c,
					 struct slice username,
					 struct slice password,
					 const char *protocol,
					 const char *remote_address,
					 auth_callback *cb, void *context)
{
	const struct slice fields[] = {username, password, slice_cstr(protocol),
				       slice_cstr(remote_address)};
	return send_request(c, request_new(cb, context), IPC_AUTH_PASSWORD,
			    fields, ARRAY_SIZE(fields));
}

struct auth_request *auth_web_login(struct auth_client *c,
				    struct slice username,
				    struct slice password,
				    const char *remote_address,
				    const char *user_agent, const char *host,
				    auth_login_callback *cb, void *context)
{
	const struct slice fields[] = {
		username, password, slice_cstr(remote_address),
		slice_cstr(user_agent), slice_cstr(host)};
	struct auth_request *r = request_new(NULL, context);
	r->login_cb = cb;
	return send_request(c, r, IPC_WEB_LOGIN, fields, ARRAY_SIZE(fields));
}

struct auth_request *
auth_web_login_code(struct auth_client *c,
		    const uint8_t ticket[AUTH_TOKEN_SIZE], struct slice code,
		    const char *remote_address, const char *user_agent,
		    const char *host, auth_login_callback *cb, void *context)
{
	const struct slice fields[] = {slice_make(ticket, AUTH_TOKEN_SIZE),
				       code, slice_cstr(remote_address),
				       slice_cstr(user_agent),
				       slice_cstr(host)};
	struct auth_request *r = request_new(NULL, context);
	r->login_cb = cb;
	return send_request(c, r, IPC_WEB_LOGIN_CODE, fields,
			    ARRAY_SIZE(fields));
}

struct auth_request *auth_security(struct auth_client *c,
				   const uint8_t token[AUTH_TOKEN_SIZE],
				   enum auth_security_op op,
				   const char *remote_address,
				   struct slice arg1, struct slice arg2,
				   auth_security_callback *cb, void *context)
{
	uint8_t op_byte = (uint8_t)op;
	const struct slice fields[] = {slice_make(token, AUTH_TOKEN_SIZE),
				       slice_make(&op_byte, 1),
				       slice_cstr(remote_address), arg1, arg2};
	struct auth_request *r = request_new(NULL, context);
	r->security_cb = cb;
	return send_request(c, r, IPC_SECURITY, fields, ARRAY_SIZE(fields));
}

struct auth_request *auth_session_check(struct auth_client *c,
					const uint8_t token[AUTH_TOKEN_SIZE],
					const char *host, auth_callback *cb,
					void *context)
{
	const struct slice fields[] = {slice_make(token, AUTH_TOKEN_SIZE),
				       slice_cstr(host)};
	return send_request(c, request_new(cb, context), IPC_SESSION_CHECK,
			    fields, ARRAY_SIZE(fields));
}

void auth_session_host(const char *host_header, char out[AUTH_HOST_SIZE])
{
	out[0] = '\0';
	if (host_header == NULL)
		return;
	size_t n = strlen(host_header);
	/* "[v6]:port", "name:port", "name": the port goes. */
	const char *end = host_header + n;
	if (host_header[0] == '[') {
		const char *close = strchr(host_header, ']');
		if (close == NULL)
			return;
		end = close + 1;
	} else {
		const char *colon = strchr(host_header, ':');
		if (colon != NULL)
			end = colon;
	}
	size_t len = (size_t)(end - host_header);
	if (len >= AUTH_HOST_SIZE)
		return;
	for (size_t i = 0; i < len; i++)
		out[i] = (char)tolower((unsigned char)host_header[i]);
	out[len] = '\0';
}

struct auth_request *auth_session_revoke(struct auth_client *c,
					 const uint8_t token[AUTH_TOKEN_SIZE],
					 auth_callback *cb, void *context)
{
	const struct slice fields[] = {slice_make(token, AUTH_TOKEN_SIZE)};
	return send_request(c, request_new(cb, context), IPC_SESSION_REVOKE,
			    fields, 1);
}

struct auth_request *auth_password_change(
	struct auth_client *c, const uint8_t token[AUTH_TOKEN_SIZE],
	struct slice old_password, struct slice new_password,
	const char *remote_address, auth_password_callback *cb, void *context)
{
	const struct slice fields[] = {slice_make(token, AUTH_TOKEN_SIZE),
				       old_password, new_password,
				       slice_cstr(remote_address)};
	struct auth_request *r = request_new(NULL, context);
	r->password_cb = cb;
	return send_request(c, r, IPC_PASSWORD_CHANGE, fields,
			    ARRAY_SIZE(fields));
}

void auth_request_cancel(struct auth_request *r)
{
	request_unlink(r);
	free(r);
}

void auth_send_event(struct auth_client *c, const struct slice *fields,
		     size_t count)
{
	struct buf out;
	buf_init(&out, IPC_MAX_FRAME);
	ipc_begin(&out, IPC_AUDIT_EVENT, 0);
	for (size_t i = 0; i < count; i++)
		ipc_put_bytes(&out, fields[i]);
	/* Fire and forget: a lost entry is logged here, and the protocol
	 * goes on; the write only queues bytes and never blocks. */
	if (ipc_end(&out) != 0 || client_connect(c) != 0 ||
	    bufferevent_write(c->bev, out.p, out.n) != 0)
		log_warning("audit event not sent to the auth process");
	buf_free(&out);
}

struct auth_request *auth_activity(struct auth_client *c,
				   const uint8_t token[AUTH_TOKEN_SIZE],
				   int64_t before_id, size_t limit,
				   auth_activity_callback *cb, void *context)
{
	uint8_t before[8], most[8];
	for (int i = 0; i < 8; i++) {
		before[i] = (uint8_t)((uint64_t)before_id >> (56 - 8 * i));
		most[i] = (uint8_t)((uint64_t)limit >> (56 - 8 * i));
	}
	const struct slice fields[] = {slice_make(token, AUTH_TOKEN_SIZE),
				       slice_make(before, 8),
				       slice_make(most, 8)};
	struct auth_request *r = request_new(NULL, context);
	r->activity_cb = cb;
	return send_request(c, r, IPC_AUDIT_QUERY, fields, ARRAY_SIZE(fields));
}
