/* server.c: the imap worker process: its loop, listeners, pool, auth
 * client, per-thread store handles, and the change notifications that wake
 * IDLE sessions (from this worker's own sessions and, through the master,
 * from every other process). */
#include "core/privsep.h"
#include "core/common.h"

#include "imap/internal.h"

#include "auth/auth.h"
#include "core/channel.h"
#include "core/ipc.h"
#include "core/log.h"
#include "core/pool.h"

#include <signal.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#define IMAP_SHUTDOWN_GRACE_SECONDS 10

void imap_session_start(struct imap_server *server, bool imaps, int fd,
			const struct sockaddr *sa);
void imap_session_wake(struct imap_session *s);
void imap_sessions_shutdown(struct imap_server *server);

/* ---- Notifications ---- */

static void wake_account(struct imap_server *server, uint64_t account_id,
			 struct imap_session *except)
{
	/* Sessions are few per account; a linear walk over the worker's
	 * sessions is what costs here, and only IDLE sessions need a
	 * wake-up (the others catch up at their next command). */
	for (struct imap_session *s = server->sessions; s; s = s->next)
		if (s != except && s->account_id == account_id)
			imap_session_wake(s);
}

void imap_server_notify(struct imap_server *server, uint64_t account_id,
			struct imap_session *except)
{
	wake_account(server, account_id, except);
	channel_notify(server->master, account_id, "");
}

struct worker {
	struct imap_server server;
	struct evconnlistener *listeners[2];
};

static void begin_shutdown(struct worker *w)
{
	struct imap_server *server = &w->server;
	if (server->stopping)
		return;
	server->stopping = true;
	log_info("shutting down");
	for (size_t i = 0; i < 2; i++) {
		if (w->listeners[i] != NULL) {
			evconnlistener_free(w->listeners[i]);
			w->listeners[i] = NULL;
		}
	}
	imap_sessions_shutdown(server);
	if (server->sessions == NULL)
		event_base_loopexit(server->base, NULL);
	struct timeval grace = {IMAP_SHUTDOWN_GRACE_SECONDS, 0};
	event_base_loopexit(server->base, &grace);
}

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
		wake_account(&w->server, account_id, NULL);
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

static void on_accept(struct evconnlistener *l, evutil_socket_t fd,
		      struct sockaddr *sa, int socklen, void *arg)
{
	(void)socklen;
	struct worker *w = arg;
	imap_session_start(&w->server, l == w->listeners[1], fd, sa);
}

int imap_worker_run(const struct imap_worker_params *p)
{
	log_set_process("imap");
	signal(SIGPIPE, SIG_IGN);
	struct worker *w = xcalloc(1, sizeof(*w));
	struct imap_server *server = &w->server;
	server->base = event_base_new();
	server->config = p->config;
	server->data_dir = p->data_dir;
	server->tls = p->tls;
	server->pool = pool_new(server->base, IMAP_POOL_THREADS);
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
	const int fds[2] = {p->imap_fd, p->imaps_fd};
	for (size_t i = 0; i < 2; i++) {
		if (fds[i] < 0)
			continue;
		if (i == 1 && p->tls == NULL) {
			log_error("listen.imaps needs a TLS certificate");
			continue;
		}
		w->listeners[i] =
			evconnlistener_new(server->base, on_accept, w,
					   LEV_OPT_CLOSE_ON_EXEC, -1, fds[i]);
		if (w->listeners[i] == NULL) {
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

	pool_free(&server->pool);
	store_thread_handles_close();
	for (size_t i = 0; i < 2; i++)
		if (w->listeners[i] != NULL)
			evconnlistener_free(w->listeners[i]);
	auth_client_free(&server->auth);
	connlimit_free(&server->connlimit);
	event_free(term);
	event_free(intr);
	if (server->master != NULL)
		bufferevent_free(server->master);
	event_base_free(server->base);
	free(w);
	log_info("stopped");
	return 0;
}
