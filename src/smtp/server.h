/* server.h: what an smtp worker's sessions share. Internal to src/smtp. */
#ifndef DIJK_SMTP_SERVER_H
#define DIJK_SMTP_SERVER_H

#include "core/common.h"

#include "core/connlimit.h"
#include "smtp/smtp.h"

#include <sys/socket.h>

struct event_base;
struct inbound_checker;
struct pool;
struct smtp_session;

enum smtp_port {
	SMTP_PORT_MX,
	SMTP_PORT_SUBMISSION,
	SMTP_PORT_SUBMISSIONS,
};

/* Sessions in one worker at once; more are answered 421 and closed. */
#define SMTP_MAX_SESSIONS 4096

struct smtp_server {
	struct event_base *base;
	const struct config *config;
	const char *data_dir;
	SSL_CTX *tls;
	struct store *store; /* loop thread: recipient lookups */
	struct deliverer *deliverer;
	/* MX only: SPF, DKIM and DMARC checks, on threads of their own. */
	struct inbound_checker *checker;
	struct pool *check_pool;
	struct auth_client *auth;
	struct bufferevent *master;
	struct connlimit *connlimit; /* connections per address */
	struct smtp_session *sessions;
	size_t session_count;
	bool stopping;
	uint64_t next_session_id;
};

/* Starts a session on an accepted socket; takes ownership of fd. */
void smtp_session_start(struct smtp_server *server, enum smtp_port port, int fd,
			const struct sockaddr *sa, socklen_t salen);
/* Ends every session that is not waiting for a delivery, with a 421. */
void smtp_sessions_shutdown(struct smtp_server *server);

#endif
