/* server.c: the smtp worker process. Owns the event loop, the listeners,
 * the store handle for lookups, the deliverer and the auth client; sessions
 * (session.c) borrow them. */
#include "core/privsep.h"
#include "core/common.h"

#include "smtp/server.h"

#include "auth/auth.h"
#include "core/buf.h"
#include "core/channel.h"
#include "core/log.h"
#include "core/pool.h"
#include "smtp/deliver.h"
#include "smtp/inbound.h"
#include "store/store.h"

#include <signal.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

/* Messages checked at once (the checks wait on DNS). */
#define SMTP_CHECK_THREADS 4
/* Sessions still open this long after SIGTERM are cut off. */
#define SMTP_SHUTDOWN_GRACE_SECONDS 20

struct listener_context {
	struct smtp_server *server;
	enum smtp_port port;
	struct evconnlistener *listener;
};

static void on_accept(struct evconnlistener *l, evutil_socket_t fd,
		      struct sockaddr *sa, int socklen, void *arg)
{
	(void)l;
	struct listener_context *lc = arg;
	smtp_session_start(lc->server, lc->port, fd, sa, (socklen_t)socklen);
}

static void notify_master(void *context, uint64_t account_id)
{
	struct smtp_server *server = context;
	channel_notify(server->master, account_id, "INBOX");
}

static void begin_shutdown(struct smtp_server *server,
			   struct listener_context *listeners, size_t count)
{
	if (server->stopping)
		return;
	server->stopping = true;
	log_info("shutting down");
	for (size_t i = 0; i < count; i++) {
		if (listeners[i].listener != NULL) {
			evconnlistener_free(listeners[i].listener);
			listeners[i].listener = NULL;
		}
	}
	smtp_sessions_shutdown(server);
	if (server->sessions == NULL)
		event_base_loopexit(server->base, NULL);
	struct timeval grace = {SMTP_SHUTDOWN_GRACE_SECONDS, 0};
	event_base_loopexit(server->base, &grace);
}

struct worker {
	struct smtp_server server;
	struct listener_context listeners[3];
};

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	struct worker *w = arg;
	begin_shutdown(&w->server, w->listeners, ARRAY_SIZE(w->listeners));
}

static void master_read(struct bufferevent *bev, void *arg)
{
	(void)arg;
	/* Notifications about mailboxes concern IMAP and HTTP workers; this
	 * worker has no reader to wake, so it reads and drops them. */
	struct evbuffer *in = bufferevent_get_input(bev);
	evbuffer_drain(in, evbuffer_get_length(in));
}

static void master_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	struct worker *w = arg;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		log_warning("lost the master process; shutting down");
		bufferevent_free(w->server.master);
		w->server.master = NULL;
		begin_shutdown(&w->server, w->listeners,
			       ARRAY_SIZE(w->listeners));
	}
}

int smtp_worker_run(const struct smtp_worker_params *p)
{
	log_set_process("smtp");
	signal(SIGPIPE, SIG_IGN);
	struct worker *w = xcalloc(1, sizeof(*w));
	struct smtp_server *server = &w->server;
	const char *error;
	server->base = event_base_new();
	server->config = p->config;
	server->data_dir = p->data_dir;
	server->tls = p->tls;
	server->store = store_open(p->data_dir, &error);
	if (server->store == NULL) {
		log_error("%s", error);
		return 1;
	}
	server->deliverer = deliverer_new(server->base, p->data_dir,
					  notify_master, server, &error);
	if (server->deliverer == NULL) {
		log_error("%s", error);
		return 1;
	}
	if (p->mx_fd >= 0) {
		server->checker = inbound_checker_new(p->config, &error);
		if (server->checker == NULL) {
			log_error("inbound checks: %s", error);
			return 1;
		}
		server->check_pool = pool_new(server->base, SMTP_CHECK_THREADS);
	}
	char auth_path[256];
	if (auth_socket_path(p->data_dir, auth_path, sizeof(auth_path)) != 0) {
		log_error("data directory path too long for the auth socket");
		return 1;
	}
	server->auth = auth_client_new(server->base, auth_path);
	server->connlimit = connlimit_new(p->config->connections_per_ip);
	if (p->master_fd >= 0) {
		server->master = bufferevent_socket_new(
			server->base, p->master_fd, BEV_OPT_CLOSE_ON_FREE);
		bufferevent_setcb(server->master, master_read, NULL,
				  master_event, w);
		bufferevent_enable(server->master, EV_READ | EV_WRITE);
	}
	const int fds[3] = {p->mx_fd, p->submission_fd, p->submissions_fd};
	const enum smtp_port ports[3] = {SMTP_PORT_MX, SMTP_PORT_SUBMISSION,
					 SMTP_PORT_SUBMISSIONS};
	for (size_t i = 0; i < 3; i++) {
		w->listeners[i].server = server;
		w->listeners[i].port = ports[i];
		if (fds[i] < 0)
			continue;
		if (ports[i] == SMTP_PORT_SUBMISSIONS && p->tls == NULL) {
			log_error("listen.submissions needs a TLS certificate");
			continue;
		}
		w->listeners[i].listener = evconnlistener_new(
			server->base, on_accept, &w->listeners[i],
			LEV_OPT_CLOSE_ON_EXEC, -1, fds[i]);
		if (w->listeners[i].listener == NULL) {
			log_error("cannot listen");
			return 1;
		}
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

	/* Every message handed to the deliverer is made durable before the
	 * process ends. */
	/* Checks under way end first: their messages then go to the
	 * deliverer, which makes them durable. */
	if (server->check_pool != NULL)
		pool_free(&server->check_pool);
	deliverer_free(&server->deliverer);
	inbound_checker_free(&server->checker);
	if (server->sessions != NULL)
		log_warning("%zu session(s) cut off at shutdown",
			    server->session_count);
	for (size_t i = 0; i < 3; i++)
		if (w->listeners[i].listener != NULL)
			evconnlistener_free(w->listeners[i].listener);
	auth_client_free(&server->auth);
	connlimit_free(&server->connlimit);
	store_close(&server->store);
	event_free(term);
	event_free(intr);
	if (server->master != NULL)
		bufferevent_free(server->master);
	event_base_free(server->base);
	free(w);
	log_info("stopped");
	return 0;
}
