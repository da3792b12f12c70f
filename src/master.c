/* master.c: the process family of 'dijk serve' (see master.h). */
#include "core/common.h"

#include "master.h"

#include "auth/auth.h"
#include "core/buf.h"
#include "core/ipc.h"
#include "core/log.h"
#include "core/privsep.h"
#include "core/tls.h"
#include "http/http.h"
#include "imap/imap.h"
#include "smtp/queue.h"
#include "smtp/smtp.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include <openssl/crypto.h>

#define MASTER_MAX_CHILDREN    (2 + 3 * CONFIG_MAX_WORKERS)
#define RESTART_FIRST_DELAY_MS 200
#define RESTART_MAX_DELAY_MS   10000
/* A child that lived this long is healthy: its next restart is quick. */
#define RESTART_HEALTHY_SECONDS 10
#define STOP_GRACE_SECONDS	30
#define LISTEN_BACKLOG		1024
/* OpenSSL's secure heap, where private keys' numbers live: never swapped
 * (locked while root), left out of core dumps (MADV_DONTDUMP), and
 * inherited by every child. A power of two; room for hundreds of keys. */
#define SECURE_HEAP_SIZE     (1024 * 1024)
#define SECURE_HEAP_MIN_SIZE 32

enum child_kind { CHILD_AUTH, CHILD_SMTP, CHILD_IMAP, CHILD_HTTP, CHILD_QUEUE };

struct child {
	struct master *m;
	enum child_kind kind;
	pid_t pid;		     /* 0 when not running */
	struct bufferevent *channel; /* master's end */
	int channel_fd;
	struct timespec started;
	unsigned restart_delay_ms;
	struct event *restart_timer;
};

struct master {
	struct event_base *base;
	const char *data_dir;
	const struct config *cfg;
	const struct privsep_users *users;
	int listen_fds[LISTENER_COUNT];
	int auth_fd;
	char auth_path[256];
	SSL_CTX *tls;
	int signal_fd;
	struct event *signal_event;
	struct event *stop_timer;
	struct child children[MASTER_MAX_CHILDREN];
	size_t child_count;
	bool stopping;
};

static const char *child_name(const struct child *c)
{
	switch (c->kind) {
	case CHILD_AUTH:
		return "auth";
	case CHILD_SMTP:
		return "smtp";
	case CHILD_IMAP:
		return "imap";
	case CHILD_HTTP:
		return "http";
	case CHILD_QUEUE:
		return "queue";
	}
	return "?";
}

static int bind_listener(const char *value, const char *key,
			 const char **error_r)
{
	static char error[512];
	char host[128];
	uint16_t port;
	if (config_split_address(value, host, sizeof(host), &port) != 0) {
		snprintf(error, sizeof(error), "%s: bad address %s", key,
			 value);
		*error_r = error;
		return -1;
	}
	char port_text[8];
	snprintf(port_text, sizeof(port_text), "%u", port);
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *ai;
	int rc = getaddrinfo(host, port_text, &hints, &ai);
	if (rc != 0) {
		snprintf(error, sizeof(error), "%s: %s: %s", key, value,
			 gai_strerror(rc));
		*error_r = error;
		return -1;
	}
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	int one = 1;
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
	    listen(fd, LISTEN_BACKLOG) != 0) {
		snprintf(error, sizeof(error), "%s: cannot listen on %s: %s",
			 key, value, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		*error_r = error;
		return -1;
	}
	freeaddrinfo(ai);
	return fd;
}

static int bind_auth_socket(struct master *m, const char **error_r)
{
	static char error[512];
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/run", m->data_dir);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		snprintf(error, sizeof(error), "%s: %s", dir, strerror(errno));
		*error_r = error;
		return -1;
	}
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	if (auth_socket_path(m->data_dir, m->auth_path, sizeof(m->auth_path)) !=
		    0 ||
	    strlen(m->auth_path) >= sizeof(sun.sun_path)) {
		*error_r =
			"the data directory's path is too long for a Unix socket";
		return -1;
	}
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", m->auth_path);
	unlink(m->auth_path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	mode_t old = umask(077);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 ||
	    listen(fd, LISTEN_BACKLOG) != 0) {
		umask(old);
		snprintf(error, sizeof(error), "%s: %s", m->auth_path,
			 strerror(errno));
		if (fd >= 0)
			close(fd);
		*error_r = error;
		return -1;
	}
	umask(old);
	/* Workers (in the group) connect; only auth's user owns it. */
	const struct privsep_users *u = m->users;
	if (u->active && (chown(dir, 0, u->gid) != 0 || chmod(dir, 0750) != 0 ||
			  chown(m->auth_path, u->auth_uid, u->gid) != 0 ||
			  chmod(m->auth_path, 0660) != 0)) {
		snprintf(error, sizeof(error), "%s: %s", m->auth_path,
			 strerror(errno));
		close(fd);
		*error_r = error;
		return -1;
	}
	return fd;
}

static void channel_read(struct bufferevent *bev, void *arg);
static void channel_event(struct bufferevent *bev, short what, void *arg);

/* In a new child: undo what belongs to the master alone. */
static void child_setup(struct master *m, struct child *self, pid_t master)
{
	/* A child never outlives its master: if the master dies (even by
	 * SIGKILL), the kernel asks the child to stop. */
	prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
	if (getppid() != master)
		exit(0);
	/* SIGTERM and SIGINT stay blocked until the child has its own
	 * handlers (log_signals_ready): a stop that comes during start-up
	 * then waits for them instead of killing the child mid-way. */
	sigset_t keep;
	sigemptyset(&keep);
	sigaddset(&keep, SIGTERM);
	sigaddset(&keep, SIGINT);
	sigprocmask(SIG_SETMASK, &keep, NULL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	close(m->signal_fd);
	for (size_t i = 0; i < m->child_count; i++)
		if (&m->children[i] != self && m->children[i].channel_fd >= 0)
			close(m->children[i].channel_fd);
}

static void close_all_listeners(struct master *m)
{
	for (int i = 0; i < LISTENER_COUNT; i++)
		if (m->listen_fds[i] >= 0)
			close(m->listen_fds[i]);
}

static int run_child(struct master *m, struct child *c, int fd)
{
	/* Names the process for ps and for the tests ("dijk-smtp"). */
	char name[16];
	snprintf(name, sizeof(name), "dijk-%s", child_name(c));
	prctl(PR_SET_NAME, name, 0, 0, 0);
	static const enum privsep_role roles[] = {
		[CHILD_AUTH] = PRIVSEP_ROLE_AUTH,
		[CHILD_SMTP] = PRIVSEP_ROLE_SMTP,
		[CHILD_IMAP] = PRIVSEP_ROLE_IMAP,
		[CHILD_HTTP] = PRIVSEP_ROLE_HTTP,
		[CHILD_QUEUE] = PRIVSEP_ROLE_QUEUE,
	};
	/* Still root and single-threaded; the child's own run function
	 * finishes the drop once its setup is done (privsep_lock_down). */
	privsep_child_begin(roles[c->kind], m->users);
	if (c->kind == CHILD_AUTH) {
		close_all_listeners(m);
		close(fd);
		return authd_run(m->data_dir, m->auth_fd, m->cfg);
	}
	close(m->auth_fd);
	if (c->kind == CHILD_QUEUE) {
		/* It listens to nothing and talks only to other servers. */
		close_all_listeners(m);
		struct queue_params qp = {
			.config = m->cfg,
			.data_dir = m->data_dir,
			.master_fd = fd,
		};
		return queue_run(&qp);
	}
	if (c->kind == CHILD_HTTP) {
		for (int i = 0; i < LISTENER_COUNT; i++)
			if (i != LISTENER_HTTP && i != LISTENER_HTTPS &&
			    m->listen_fds[i] >= 0)
				close(m->listen_fds[i]);
		struct http_worker_params hp = {
			.config = m->cfg,
			.data_dir = m->data_dir,
			.http_fd = m->listen_fds[LISTENER_HTTP],
			.https_fd = m->listen_fds[LISTENER_HTTPS],
			.tls = m->tls,
			.master_fd = fd,
		};
		return http_worker_run(&hp);
	}
	close(m->listen_fds[LISTENER_HTTP]);
	close(m->listen_fds[LISTENER_HTTPS]);
	if (c->kind == CHILD_IMAP) {
		close(m->listen_fds[LISTENER_SMTP]);
		close(m->listen_fds[LISTENER_SUBMISSION]);
		close(m->listen_fds[LISTENER_SUBMISSIONS]);
		struct imap_worker_params ip = {
			.config = m->cfg,
			.data_dir = m->data_dir,
			.imap_fd = m->listen_fds[LISTENER_IMAP],
			.imaps_fd = m->listen_fds[LISTENER_IMAPS],
			.tls = m->tls,
			.master_fd = fd,
		};
		return imap_worker_run(&ip);
	}
	close(m->listen_fds[LISTENER_IMAP]);
	close(m->listen_fds[LISTENER_IMAPS]);
	struct smtp_worker_params p = {
		.config = m->cfg,
		.data_dir = m->data_dir,
		.mx_fd = m->listen_fds[LISTENER_SMTP],
		.submission_fd = m->listen_fds[LISTENER_SUBMISSION],
		.submissions_fd = m->listen_fds[LISTENER_SUBMISSIONS],
		.tls = m->tls,
		.master_fd = fd,
	};
	return smtp_worker_run(&p);
}

static void spawn(struct master *m, struct child *c)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
		log_error("socketpair: %s", strerror(errno));
		return;
	}
	fflush(stderr);
	pid_t master = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		log_error("fork: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		return;
	}
	if (pid == 0) {
		close(sv[0]);
		c->channel_fd = -1;
		child_setup(m, c, master);
		/* exit, not _exit: the sanitizer build checks the child for
		 * leaks on the way out. */
		exit(run_child(m, c, sv[1]));
	}
	close(sv[1]);
	c->pid = pid;
	c->channel_fd = sv[0];
	evutil_make_socket_nonblocking(sv[0]);
	c->channel =
		bufferevent_socket_new(m->base, sv[0], BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(c->channel, channel_read, NULL, channel_event, c);
	bufferevent_setwatermark(c->channel, EV_READ, 0, 16 * IPC_MAX_FRAME);
	bufferevent_enable(c->channel, EV_READ | EV_WRITE);
	clock_gettime(CLOCK_MONOTONIC, &c->started);
	log_info("started %s process %ld", child_name(c), (long)pid);
}

static void relay(struct master *m, struct child *from, struct slice frame)
{
	for (size_t i = 0; i < m->child_count; i++) {
		struct child *c = &m->children[i];
		if (c == from || c->channel == NULL || c->kind == CHILD_AUTH)
			continue;
		/* A child that does not read its notifications loses them
		 * rather than growing the master's memory. */
		if (evbuffer_get_length(bufferevent_get_output(c->channel)) >
		    64 * IPC_MAX_FRAME)
			continue;
		bufferevent_write(c->channel, frame.p, frame.n);
	}
}

static void channel_read(struct bufferevent *bev, void *arg)
{
	struct child *c = arg;
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
		struct slice cursor = f.payload, mailbox;
		uint64_t account_id;
		if (r < 0 || f.type != IPC_NOTIFY_MAILBOX ||
		    ipc_get_u64(&cursor, &account_id) != 0 ||
		    ipc_get_bytes(&cursor, &mailbox) != 0 || cursor.n != 0) {
			log_error(
				"malformed message from %s process %ld; dropping its channel",
				child_name(c), (long)c->pid);
			bufferevent_free(c->channel);
			c->channel = NULL;
			c->channel_fd = -1;
			return;
		}
		relay(c->m, c, slice_make(p, consumed));
		evbuffer_drain(in, consumed);
	}
}

static void channel_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	struct child *c = arg;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		bufferevent_free(c->channel);
		c->channel = NULL;
		c->channel_fd = -1;
	}
}

static void restart_due(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct child *c = arg;
	if (!c->m->stopping && c->pid == 0)
		spawn(c->m, c);
}

static bool all_stopped(const struct master *m)
{
	for (size_t i = 0; i < m->child_count; i++)
		if (m->children[i].pid != 0)
			return false;
	return true;
}

/* The auth process stops last: workers ending their sessions may still
 * be talking to it, and would log its going as a failure. */
static void stop_auth_when_alone(struct master *m)
{
	struct child *auth = NULL;
	for (size_t i = 0; i < m->child_count; i++) {
		struct child *c = &m->children[i];
		if (c->kind == CHILD_AUTH)
			auth = c;
		else if (c->pid != 0)
			return;
	}
	if (auth != NULL && auth->pid != 0)
		kill(auth->pid, SIGTERM);
}

static void child_exited(struct master *m, pid_t pid, int status)
{
	struct child *c = NULL;
	for (size_t i = 0; i < m->child_count; i++)
		if (m->children[i].pid == pid)
			c = &m->children[i];
	if (c == NULL)
		return;
	c->pid = 0;
	if (c->channel != NULL) {
		bufferevent_free(c->channel);
		c->channel = NULL;
		c->channel_fd = -1;
	}
	char how[128];
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS)
		snprintf(how, sizeof(how),
			 "was killed by signal %d (SIGSYS: a system call its "
			 "seccomp filter forbids)",
			 WTERMSIG(status));
	else if (WIFSIGNALED(status))
		snprintf(how, sizeof(how), "was killed by signal %d",
			 WTERMSIG(status));
	else
		snprintf(how, sizeof(how), "exited with status %d",
			 WEXITSTATUS(status));
	if (m->stopping) {
		log_info("%s process %ld %s", child_name(c), (long)pid, how);
		stop_auth_when_alone(m);
		if (all_stopped(m))
			event_base_loopexit(m->base, NULL);
		return;
	}
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec - c->started.tv_sec >= RESTART_HEALTHY_SECONDS ||
	    c->restart_delay_ms == 0)
		c->restart_delay_ms = RESTART_FIRST_DELAY_MS;
	else if (c->restart_delay_ms < RESTART_MAX_DELAY_MS)
		c->restart_delay_ms *= 2;
	if (c->restart_delay_ms > RESTART_MAX_DELAY_MS)
		c->restart_delay_ms = RESTART_MAX_DELAY_MS;
	log_warning("%s process %ld %s; restarting in %u ms", child_name(c),
		    (long)pid, how, c->restart_delay_ms);
	struct timeval tv = {c->restart_delay_ms / 1000,
			     (c->restart_delay_ms % 1000) * 1000};
	evtimer_add(c->restart_timer, &tv);
}

static void stop_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct master *m = arg;
	for (size_t i = 0; i < m->child_count; i++) {
		if (m->children[i].pid != 0) {
			log_warning("%s process %ld did not stop; killing it",
				    child_name(&m->children[i]),
				    (long)m->children[i].pid);
			kill(m->children[i].pid, SIGKILL);
		}
	}
}

static void begin_stop(struct master *m)
{
	if (m->stopping)
		return;
	m->stopping = true;
	log_info("stopping");
	for (size_t i = 0; i < m->child_count; i++) {
		evtimer_del(m->children[i].restart_timer);
		if (m->children[i].pid != 0 &&
		    m->children[i].kind != CHILD_AUTH)
			kill(m->children[i].pid, SIGTERM);
	}
	stop_auth_when_alone(m);
	if (all_stopped(m)) {
		event_base_loopexit(m->base, NULL);
		return;
	}
	struct timeval tv = {STOP_GRACE_SECONDS, 0};
	m->stop_timer = evtimer_new(m->base, stop_timeout, m);
	evtimer_add(m->stop_timer, &tv);
}

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
	(void)what;
	struct master *m = arg;
	struct signalfd_siginfo si;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			begin_stop(m);
			break;
		case SIGCHLD: {
			int status;
			pid_t pid;
			while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
				child_exited(m, pid, status);
			break;
		}
		default:
			break;
		}
	}
}

static unsigned worker_count(const struct config *cfg)
{
	if (cfg->workers > 0)
		return cfg->workers;
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	if (n > CONFIG_MAX_WORKERS)
		n = CONFIG_MAX_WORKERS;
	return (unsigned)n;
}

int master_run(const char *data_dir, const char *shown_dir,
	       const struct config *cfg, const struct privsep_users *users)
{
	log_set_process("master");
	struct master *m = xcalloc(1, sizeof(*m));
	m->data_dir = data_dir;
	m->cfg = cfg;
	m->users = users;
#ifndef DIJK_SANITIZED
	/* The master holds the TLS key: no core file of it, and no ptrace
	 * by its own uid. (The sanitizer build's leak checker needs to
	 * attach at exit.) */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
#endif
	/* Before the first key is read. Without it (no memory to lock)
	 * keys live on the ordinary heap, still in not-dumpable
	 * processes. */
	if (CRYPTO_secure_malloc_init(SECURE_HEAP_SIZE, SECURE_HEAP_MIN_SIZE) ==
	    0)
		log_warning("no secure heap for private keys");
	const char *error;
	for (int i = 0; i < LISTENER_COUNT; i++)
		m->listen_fds[i] = -1;

	bool need_tls = cfg->listen[LISTENER_IMAP][0] != '\0' ||
			cfg->listen[LISTENER_IMAPS][0] != '\0' ||
			cfg->listen[LISTENER_SUBMISSIONS][0] != '\0' ||
			cfg->listen[LISTENER_SUBMISSION][0] != '\0' ||
			cfg->listen[LISTENER_SMTP][0] != '\0' ||
			cfg->listen[LISTENER_HTTPS][0] != '\0';
	if (need_tls) {
		char cert[4096], key[4096];
		snprintf(cert, sizeof(cert), "%s%s%s",
			 cfg->tls_cert[0] == '/' ? "" : data_dir,
			 cfg->tls_cert[0] == '/' ? "" : "/", cfg->tls_cert);
		snprintf(key, sizeof(key), "%s%s%s",
			 cfg->tls_key[0] == '/' ? "" : data_dir,
			 cfg->tls_key[0] == '/' ? "" : "/", cfg->tls_key);
		m->tls = tls_server_context(cert, key, &error);
		if (m->tls == NULL)
			dijk_fatal("TLS: %s", error);
	}
	for (int i = 0; i < LISTENER_COUNT; i++) {
		if (cfg->listen[i][0] == '\0')
			continue;
		m->listen_fds[i] = bind_listener(
			cfg->listen[i],
			config_listener_key((enum listener_kind)i), &error);
		if (m->listen_fds[i] < 0)
			dijk_fatal("%s", error);
		log_info("%s on %s", config_listener_key((enum listener_kind)i),
			 cfg->listen[i]);
	}
	m->auth_fd = bind_auth_socket(m, &error);
	if (m->auth_fd < 0)
		dijk_fatal("%s", error);

	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	m->signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (m->signal_fd < 0)
		dijk_fatal("signalfd: %s", strerror(errno));
	m->base = event_base_new();
	m->signal_event = event_new(m->base, m->signal_fd, EV_READ | EV_PERSIST,
				    on_signal, m);
	event_add(m->signal_event, NULL);

	m->children[m->child_count++].kind = CHILD_AUTH;
	m->children[m->child_count++].kind = CHILD_QUEUE;
	unsigned workers = worker_count(cfg);
	bool smtp = cfg->listen[LISTENER_SMTP][0] ||
		    cfg->listen[LISTENER_SUBMISSION][0] ||
		    cfg->listen[LISTENER_SUBMISSIONS][0];
	bool imap =
		cfg->listen[LISTENER_IMAP][0] || cfg->listen[LISTENER_IMAPS][0];
	for (unsigned i = 0; smtp && i < workers; i++)
		m->children[m->child_count++].kind = CHILD_SMTP;
	for (unsigned i = 0; imap && i < workers; i++)
		m->children[m->child_count++].kind = CHILD_IMAP;
	bool http =
		cfg->listen[LISTENER_HTTP][0] || cfg->listen[LISTENER_HTTPS][0];
	for (unsigned i = 0; http && i < workers; i++)
		m->children[m->child_count++].kind = CHILD_HTTP;
	for (size_t i = 0; i < m->child_count; i++) {
		struct child *c = &m->children[i];
		c->m = m;
		c->channel_fd = -1;
		c->restart_timer = evtimer_new(m->base, restart_due, c);
	}
	for (size_t i = 0; i < m->child_count; i++)
		spawn(m, &m->children[i]);
	log_info("dijk serving %s as %s", shown_dir, cfg->hostname);

	event_base_dispatch(m->base);

	unlink(m->auth_path);
	for (size_t i = 0; i < m->child_count; i++) {
		if (m->children[i].channel != NULL)
			bufferevent_free(m->children[i].channel);
		event_free(m->children[i].restart_timer);
	}
	if (m->stop_timer != NULL)
		event_free(m->stop_timer);
	event_free(m->signal_event);
	event_base_free(m->base);
	close(m->signal_fd);
	close(m->auth_fd);
	close_all_listeners(m);
	SSL_CTX_free(m->tls);
	free(m);
	log_info("stopped");
	return 0;
}
