/* session.c: one SMTP session, from the greeting to its single teardown in
 * session_free(). The parser (parser.c) reads the bytes; this file keeps
 * the state, asks the store and the auth process, and replies.
 *
 * Input is processed only while the session is not waiting: during an
 * AUTH check or a delivery, pipelined commands stay buffered, so replies go
 * out in order and a 250 after DATA is sent only once the message is
 * durable. */
#include "core/common.h"

#include "smtp/server.h"

#include "auth/auth.h"
#include "auth/audit_client.h"
#include "auth/password.h"
#include "core/base64.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/net.h"
#include "core/pool.h"
#include "smtp/deliver.h"
#include "smtp/inbound.h"
#include "smtp/parser.h"
#include "store/store.h"

#include <arpa/inet.h>
#include <strings.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include <openssl/err.h>
#include <sodium.h>

/* Protocol errors tolerated before the session is closed. */
#define SMTP_MAX_ERRORS 10
/* Failed AUTH commands per connection: a guesser must reconnect (and
 * meet the connection limit and the auth process's throttle). */
#define SMTP_MAX_AUTH_FAILURES 3
/* Input buffered while the session waits, before reading pauses. */
#define SMTP_MAX_BUFFERED_INPUT (256 * 1024)
/* Output waiting for a slow reader, before command processing pauses. */
#define SMTP_MAX_PENDING_OUTPUT (64 * 1024)
#define SMTP_RECEIVED_MAX	1024
#define SMTP_MAX_HELO		255

enum session_state {
	STATE_GREETING, /* greet pause: reading, but not yet greeted */
	STATE_COMMAND,
	STATE_AUTH_LINE, /* waiting for a SASL response line */
	STATE_DATA,
	STATE_BDAT,
	STATE_WAIT,    /* waiting for auth, a delivery, or STARTTLS */
	STATE_CLOSING, /* last reply going out */
};

enum auth_mechanism { MECH_PLAIN, MECH_LOGIN };

struct smtp_session {
	struct smtp_server *server;
	struct smtp_session *prev, *next;
	uint64_t id;
	enum smtp_port port;
	struct bufferevent *bev;
	int fd;
	bool bev_owns_fd; /* TLS bufferevents close the socket themselves */
	char remote[INET6_ADDRSTRLEN];
	bool loopback;
	bool tls;
	bool starttls_pending;
	enum session_state state;
	struct event *greet_timer;
	/* Armed while a command or text line is incomplete: the whole line
	 * must arrive within smtp.timeout, however slowly it trickles. */
	struct event *line_timer;
	bool line_timer_armed;
	uint64_t lines_done; /* command lines read, for the line timer */
	uint64_t line_mark;  /* progress when the line timer was armed */
	unsigned errors;
	unsigned auth_failures;
	struct connlimit_key connkey; /* what it counts under */
	bool freeing;

	char helo[SMTP_MAX_HELO + 1];
	bool helo_done;
	bool esmtp;

	uint64_t account_id; /* 0 until authenticated */
	char user[STORE_MAX_ADDRESS];
	struct auth_request *auth_request;
	enum auth_mechanism auth_mechanism;
	char auth_username[AUTH_MAX_USERNAME + 1];
	bool auth_have_username;

	/* the transaction */
	bool has_mail;
	char mail_from[SMTP_MAX_PATH + 1];
	bool smtputf8;
	uint64_t *accounts;
	size_t account_count;
	char **remote_recipients;
	size_t remote_count;
	size_t recipient_count;
	struct buf msg;
	size_t received_len;
	struct smtp_data_reader data;
	struct smtp_bdat_checker bdat;
	uint64_t bdat_remaining;
	bool bdat_last;
	bool bdat_started;
	bool bdat_discard; /* chunk bytes read and dropped (failed transaction) */
	const char *bdat_discard_reply;
	struct delivery_job *delivery;
	struct check_job *check; /* MX checks under way */
};

/* A message being checked (inbound.h) on a pool thread. */
struct check_job {
	struct smtp_session *s; /* NULL once the session has gone */
	struct inbound_checker *checker;
	char client[INET6_ADDRSTRLEN];
	char helo[SMTP_MAX_HELO + 1];
	char mail_from[SMTP_MAX_PATH + 1];
	uint8_t *data;
	size_t size, received_len;
	struct inbound_verdict verdict;
};

static void session_process(struct smtp_session *s);
static void session_read(struct bufferevent *bev, void *arg);
static void session_write(struct bufferevent *bev, void *arg);
static void session_event(struct bufferevent *bev, short what, void *arg);

static void reply(struct smtp_session *s, const char *line)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	evbuffer_add(out, line, strlen(line));
	evbuffer_add(out, "\r\n", 2);
}

static void replyf(struct smtp_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void replyf(struct smtp_session *s, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	DIJK_ASSERT(n > 0 && (size_t)n < sizeof(line));
	reply(s, line);
}

static void transaction_reset(struct smtp_session *s)
{
	s->has_mail = false;
	s->mail_from[0] = '\0';
	s->smtputf8 = false;
	free(s->accounts);
	s->accounts = NULL;
	s->account_count = 0;
	for (size_t i = 0; i < s->remote_count; i++)
		free(s->remote_recipients[i]);
	free(s->remote_recipients);
	s->remote_recipients = NULL;
	s->remote_count = 0;
	s->recipient_count = 0;
	buf_free(&s->msg);
	s->received_len = 0;
	s->bdat_started = false;
	s->bdat_discard = false;
}

/* The single teardown path: QUIT, errors, timeouts, disconnects and
 * shutdown all end here. */
static void session_free(struct smtp_session *s, const char *reason)
{
	if (s->freeing)
		return;
	s->freeing = true;
	log_info("session %llu from %s closed: %s", (unsigned long long)s->id,
		 s->remote, reason);
	if (s->auth_request != NULL)
		auth_request_cancel(s->auth_request);
	if (s->delivery != NULL)
		delivery_job_detach(s->delivery);
	if (s->check != NULL)
		s->check->s = NULL;
	if (s->greet_timer != NULL)
		event_free(s->greet_timer);
	if (s->line_timer != NULL)
		event_free(s->line_timer);
	transaction_reset(s);
	if (s->bev != NULL) {
		/* End TLS properly: a close_notify before the FIN. */
		SSL *ssl = s->tls ? bufferevent_openssl_get_ssl(s->bev) : NULL;
		if (ssl != NULL)
			SSL_shutdown(ssl);
		bufferevent_free(s->bev);
	}
	if (!s->bev_owns_fd)
		close(s->fd);
	struct smtp_server *server = s->server;
	connlimit_release(server->connlimit, &s->connkey);
	if (s->prev)
		s->prev->next = s->next;
	else
		server->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	server->session_count--;
	sodium_memzero(s->auth_username, sizeof(s->auth_username));
	free(s);
	if (server->stopping && server->sessions == NULL)
		event_base_loopexit(server->base, NULL);
}

/* Sends what is queued, then ends the session. */
static void session_close(struct smtp_session *s, const char *reason)
{
	if (s->state == STATE_CLOSING)
		return;
	s->state = STATE_CLOSING;
	bufferevent_disable(s->bev, EV_READ);
	evbuffer_drain(bufferevent_get_input(s->bev),
		       evbuffer_get_length(bufferevent_get_input(s->bev)));
	if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
		session_free(s, reason);
	else
		log_info("session %llu: %s", (unsigned long long)s->id, reason);
}

static void protocol_error(struct smtp_session *s, const char *line)
{
	reply(s, line);
	if (++s->errors >= SMTP_MAX_ERRORS) {
		reply(s, "421 4.7.0 Too many errors, closing connection");
		session_close(s, "too many errors");
	}
}

/* A refused AUTH: the same reply whatever the reason (unknown user, wrong
 * password, throttled); past SMTP_MAX_AUTH_FAILURES the session ends. */
static void auth_refused(struct smtp_session *s)
{
	reply(s, "535 5.7.8 Authentication credentials invalid");
	if (++s->auth_failures >= SMTP_MAX_AUTH_FAILURES) {
		reply(s, "421 4.7.0 Too many failed authentications, closing "
			 "connection");
		session_close(s, "too many failed authentications");
	}
}

static bool auth_allowed(const struct smtp_session *s)
{
	if (s->port == SMTP_PORT_MX)
		return false;
	return s->tls || (s->loopback && s->server->config->cleartext_loopback);
}

static bool starttls_offered(const struct smtp_session *s)
{
	return !s->tls && s->server->tls != NULL &&
	       s->port != SMTP_PORT_SUBMISSIONS;
}

static void cmd_ehlo(struct smtp_session *s, const struct smtp_command *cmd)
{
	transaction_reset(s);
	size_t n = cmd->arg.n > SMTP_MAX_HELO ? SMTP_MAX_HELO : cmd->arg.n;
	memcpy(s->helo, cmd->arg.p, n);
	s->helo[n] = '\0';
	s->helo_done = true;
	s->esmtp = cmd->verb == SMTP_VERB_EHLO;
	const char *hostname = s->server->config->hostname;
	if (!s->esmtp) {
		replyf(s, "250 %s", hostname);
		return;
	}
	replyf(s, "250-%s", hostname);
	reply(s, "250-PIPELINING");
	replyf(s, "250-SIZE %llu",
	       (unsigned long long)s->server->config->max_message_size);
	reply(s, "250-8BITMIME");
	reply(s, "250-SMTPUTF8");
	reply(s, "250-ENHANCEDSTATUSCODES");
	if (starttls_offered(s))
		reply(s, "250-STARTTLS");
	if (auth_allowed(s))
		reply(s, "250-AUTH PLAIN LOGIN");
	reply(s, "250 CHUNKING");
}

static void cmd_starttls(struct smtp_session *s)
{
	if (!starttls_offered(s)) {
		protocol_error(s, s->tls ? "503 5.5.1 TLS already active"
					 : "502 5.5.1 STARTTLS not available");
		return;
	}
	reply(s, "220 2.0.0 Ready to start TLS");
	/* The upgrade happens once the 220 is out (session_write); whatever
	 * the client pipelined after STARTTLS is thrown away then. */
	s->starttls_pending = true;
	s->state = STATE_WAIT;
}

static void start_tls(struct smtp_session *s)
{
	s->starttls_pending = false;
	struct evbuffer *in = bufferevent_get_input(s->bev);
	evbuffer_drain(in, evbuffer_get_length(in));
	/* TLS runs on the socket itself rather than as a filter over the
	 * plain bufferevent, so that a drained output buffer means the bytes
	 * reached the kernel, and the last reply is not lost at close. */
	bufferevent_free(s->bev);
	s->bev = NULL;
	SSL *ssl = SSL_new(s->server->tls);
	struct bufferevent *tls_bev = bufferevent_openssl_socket_new(
		s->server->base, s->fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
		BEV_OPT_CLOSE_ON_FREE);
	if (tls_bev == NULL) {
		SSL_free(ssl);
		session_free(s, "cannot start TLS");
		return;
	}
	s->bev_owns_fd = true;
	bufferevent_openssl_set_allow_dirty_shutdown(tls_bev, 1);
	s->bev = tls_bev;
	s->tls = true;
	s->helo_done = false;
	s->helo[0] = '\0';
	transaction_reset(s);
	struct timeval tv = {s->server->config->smtp_timeout_seconds, 0};
	bufferevent_set_timeouts(s->bev, &tv, &tv);
	bufferevent_setwatermark(s->bev, EV_READ, 0, SMTP_MAX_BUFFERED_INPUT);
	bufferevent_setcb(s->bev, session_read, session_write, session_event,
			  s);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	s->state = STATE_COMMAND;
}

static void auth_done(void *context, enum auth_result result,
		      uint64_t account_id, const char *address)
{
	struct smtp_session *s = context;
	s->auth_request = NULL;
	s->state = STATE_COMMAND;
	switch (result) {
	case AUTH_OK:
		s->account_id = account_id;
		snprintf(s->user, sizeof(s->user), "%s", address);
		log_info("session %llu: authenticated as %s",
			 (unsigned long long)s->id, address);
		reply(s, "235 2.7.0 Authentication successful");
		break;
	case AUTH_FAILED:
		auth_refused(s);
		break;
	case AUTH_UNAVAILABLE:
		reply(s, "454 4.7.0 Temporary authentication failure");
		break;
	}
	session_process(s);
}

static void auth_check(struct smtp_session *s, struct slice username,
		       struct slice password)
{
	if (username.n == 0 || username.n > AUTH_MAX_USERNAME ||
	    password.n > PASSWORD_MAX_LENGTH) {
		protocol_error(s,
			       "535 5.7.8 Authentication credentials invalid");
		return;
	}
	s->state = STATE_WAIT;
	s->auth_request =
		auth_check_password(s->server->auth, username, password, "smtp",
				    s->remote, auth_done, s);
}

/* Decodes one SASL response; returns its length or -1. */
static long sasl_decode(struct slice in, uint8_t *out, size_t out_size)
{
	if (in.n == 1 && in.p[0] == '=')
		return 0;
	if (BASE64_DECODED_MAX(in.n) > out_size)
		return -1;
	return base64_decode(in, out);
}

static void auth_plain(struct smtp_session *s, struct slice response)
{
	uint8_t decoded[BASE64_DECODED_MAX(SMTP_MAX_AUTH_LINE)];
	long n = sasl_decode(response, decoded, sizeof(decoded));
	if (n < 0) {
		protocol_error(s, "501 5.5.2 Cannot decode the response");
		return;
	}
	/* authzid NUL authcid NUL password */
	uint8_t *first = memchr(decoded, '\0', (size_t)n);
	uint8_t *second = first ? memchr(first + 1, '\0',
					 (size_t)(decoded + n - first - 1))
				: NULL;
	if (second == NULL) {
		sodium_memzero(decoded, sizeof(decoded));
		protocol_error(s, "501 5.5.2 Malformed PLAIN response");
		return;
	}
	struct slice authzid = slice_make(decoded, (size_t)(first - decoded));
	struct slice authcid =
		slice_make(first + 1, (size_t)(second - first - 1));
	struct slice password =
		slice_make(second + 1, (size_t)(decoded + n - second - 1));
	if (authzid.n > 0 && (authzid.n != authcid.n ||
			      memcmp(authzid.p, authcid.p, authzid.n) != 0)) {
		sodium_memzero(decoded, sizeof(decoded));
		protocol_error(s,
			       "535 5.7.8 Authentication credentials invalid");
		return;
	}
	auth_check(s, authcid, password);
	sodium_memzero(decoded, sizeof(decoded));
}

static void auth_login_step(struct smtp_session *s, struct slice response)
{
	uint8_t decoded[BASE64_DECODED_MAX(SMTP_MAX_AUTH_LINE)];
	long n = sasl_decode(response, decoded, sizeof(decoded));
	if (n < 0) {
		protocol_error(s, "501 5.5.2 Cannot decode the response");
		return;
	}
	if (!s->auth_have_username) {
		if ((size_t)n > AUTH_MAX_USERNAME) {
			protocol_error(
				s,
				"535 5.7.8 Authentication credentials invalid");
			return;
		}
		memcpy(s->auth_username, decoded, (size_t)n);
		s->auth_username[n] = '\0';
		s->auth_have_username = true;
		s->state = STATE_AUTH_LINE;
		reply(s, "334 UGFzc3dvcmQ6"); /* "Password:" */
		return;
	}
	s->auth_have_username = false;
	auth_check(s, slice_cstr(s->auth_username),
		   slice_make(decoded, (size_t)n));
	sodium_memzero(decoded, sizeof(decoded));
	sodium_memzero(s->auth_username, sizeof(s->auth_username));
}

static void cmd_auth(struct smtp_session *s, const struct smtp_command *cmd)
{
	if (s->port == SMTP_PORT_MX) {
		protocol_error(s, "503 5.5.1 AUTH not available on this port");
		return;
	}
	if (!auth_allowed(s)) {
		protocol_error(s,
			       "530 5.7.0 Must issue a STARTTLS command first");
		return;
	}
	if (!s->helo_done) {
		protocol_error(s, "503 5.5.1 Send EHLO first");
		return;
	}
	if (s->account_id != 0) {
		protocol_error(s, "503 5.5.1 Already authenticated");
		return;
	}
	if (s->has_mail) {
		protocol_error(
			s, "503 5.5.1 AUTH not allowed during a transaction");
		return;
	}
	if (slice_eq_ci(cmd->arg, "PLAIN")) {
		s->auth_mechanism = MECH_PLAIN;
		if (cmd->has_initial_response) {
			auth_plain(s, cmd->initial_response);
		} else {
			s->state = STATE_AUTH_LINE;
			reply(s, "334 ");
		}
	} else if (slice_eq_ci(cmd->arg, "LOGIN")) {
		s->auth_mechanism = MECH_LOGIN;
		s->auth_have_username = false;
		if (cmd->has_initial_response) {
			auth_login_step(s, cmd->initial_response);
		} else {
			s->state = STATE_AUTH_LINE;
			reply(s, "334 VXNlcm5hbWU6"); /* "Username:" */
		}
	} else {
		protocol_error(s, "504 5.5.4 Unrecognized authentication type");
	}
}

static void auth_line(struct smtp_session *s, struct slice line)
{
	s->state = STATE_COMMAND;
	if (line.n == 1 && line.p[0] == '*') {
		s->auth_have_username = false;
		protocol_error(s, "501 5.0.0 Authentication cancelled");
		return;
	}
	if (s->auth_mechanism == MECH_PLAIN)
		auth_plain(s, line);
	else
		auth_login_step(s, line);
}

/* "local@domain" of a parsed address, into out. */
static void address_text(const struct smtp_address *a, char *out, size_t size)
{
	if (a->null_path) {
		out[0] = '\0';
		return;
	}
	snprintf(out, size, "%.*s@%.*s", (int)a->local.n,
		 (const char *)a->local.p, (int)a->domain.n,
		 (const char *)a->domain.p);
}

static void cmd_mail(struct smtp_session *s, const struct smtp_command *cmd)
{
	const struct config *cfg = s->server->config;
	if (!s->helo_done) {
		protocol_error(s, "503 5.5.1 Send HELO or EHLO first");
		return;
	}
	if (s->port != SMTP_PORT_MX && s->account_id == 0) {
		protocol_error(s, "530 5.7.0 Authentication required");
		return;
	}
	if (s->has_mail) {
		protocol_error(s, "503 5.5.1 Sender already specified");
		return;
	}
	if (cmd->body == SMTP_BODY_BINARYMIME) {
		protocol_error(s, "555 5.5.4 BODY=BINARYMIME is not supported");
		return;
	}
	if (cmd->has_size && cmd->size > cfg->max_message_size) {
		protocol_error(s, "552 5.3.4 Message size exceeds fixed limit");
		return;
	}
	if (cmd->address.utf8 && !cmd->smtputf8) {
		protocol_error(s,
			       "553 5.6.7 Non-ASCII address requires SMTPUTF8");
		return;
	}
	char from[SMTP_MAX_PATH + 1];
	address_text(&cmd->address, from, sizeof(from));
	if (s->port != SMTP_PORT_MX && strcasecmp(from, s->user) != 0) {
		protocol_error(
			s,
			"553 5.7.1 Sender address not owned by the authenticated user");
		return;
	}
	transaction_reset(s);
	s->has_mail = true;
	s->smtputf8 = cmd->smtputf8;
	snprintf(s->mail_from, sizeof(s->mail_from), "%s", from);
	reply(s, "250 2.1.0 Ok");
}

static void add_account(struct smtp_session *s, uint64_t id)
{
	for (size_t i = 0; i < s->account_count; i++)
		if (s->accounts[i] == id)
			return;
	s->accounts = xrealloc(s->accounts,
			       (s->account_count + 1) * sizeof(*s->accounts));
	s->accounts[s->account_count++] = id;
}

static void add_remote(struct smtp_session *s, const char *address)
{
	for (size_t i = 0; i < s->remote_count; i++)
		if (strcasecmp(s->remote_recipients[i], address) == 0)
			return;
	s->remote_recipients = xrealloc(s->remote_recipients,
					(s->remote_count + 1) * sizeof(char *));
	s->remote_recipients[s->remote_count++] = xstrdup(address);
}

static void cmd_rcpt(struct smtp_session *s, const struct smtp_command *cmd)
{
	if (!s->has_mail) {
		protocol_error(s, "503 5.5.1 Need MAIL before RCPT");
		return;
	}
	if (s->recipient_count >= s->server->config->max_recipients) {
		reply(s, "452 4.5.3 Too many recipients");
		return;
	}
	if (cmd->address.utf8 && !s->smtputf8) {
		protocol_error(s,
			       "553 5.6.7 Non-ASCII address requires SMTPUTF8");
		return;
	}
	const char *error;
	char address[SMTP_MAX_PATH + 1];
	address_text(&cmd->address, address, sizeof(address));
	int local = store_domain_exists(s->server->store, cmd->address.domain,
					&error);
	if (local < 0) {
		log_error("recipient lookup: %s", error);
		reply(s, "451 4.3.0 Temporary lookup failure");
		return;
	}
	if (local == 0) {
		if (s->account_id == 0) {
			protocol_error(s, "554 5.7.1 Relay access denied");
			return;
		}
		add_remote(s, address);
		s->recipient_count++;
		reply(s, "250 2.1.5 Ok");
		return;
	}
	uint64_t account_id;
	int found = store_user_lookup(s->server->store, slice_cstr(address),
				      &account_id, &error);
	if (found < 0) {
		log_error("recipient lookup: %s", error);
		reply(s, "451 4.3.0 Temporary lookup failure");
		return;
	}
	if (found == 0) {
		protocol_error(s, "550 5.1.1 User unknown");
		return;
	}
	add_account(s, account_id);
	s->recipient_count++;
	reply(s, "250 2.1.5 Ok");
}

/* Writes the Received header at the start of the message buffer, and sets
 * the buffer's limit to that plus the message size limit. */
static void begin_message(struct smtp_session *s)
{
	char date[64];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	/* The client's name goes in only if it is a plain host name. */
	const char *helo = s->helo;
	for (const char *c = helo; *c; c++) {
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || strchr(".-_[]:", *c))) {
			helo = "invalid";
			break;
		}
	}
	const char *with =
		s->account_id
			? (s->tls ? "ESMTPSA" : "ESMTPA")
			: (s->tls ? "ESMTPS" : (s->esmtp ? "ESMTP" : "SMTP"));
	char header[SMTP_RECEIVED_MAX];
	int n = snprintf(header, sizeof(header),
			 "Received: from %s ([%s])\r\n"
			 "\tby %s (dijk) with %s id %llx.%llx;\r\n"
			 "\t%s\r\n",
			 helo, s->remote, s->server->config->hostname, with,
			 (unsigned long long)getpid(),
			 (unsigned long long)s->id, date);
	DIJK_ASSERT(n > 0 && (size_t)n < sizeof(header));
	buf_free(&s->msg);
	buf_init(&s->msg, (size_t)n + s->server->config->max_message_size);
	buf_append(&s->msg, header, (size_t)n);
	s->received_len = (size_t)n;
}

static void cmd_data(struct smtp_session *s)
{
	if (!s->has_mail) {
		protocol_error(s, "503 5.5.1 Need MAIL before DATA");
		return;
	}
	if (s->bdat_started) {
		protocol_error(s, "503 5.5.1 DATA not allowed after BDAT");
		return;
	}
	if (s->recipient_count == 0) {
		protocol_error(s, "554 5.5.1 No valid recipients");
		return;
	}
	begin_message(s);
	smtp_data_reader_init(&s->data);
	s->state = STATE_DATA;
	reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

/* A message an authenticated user sent, for the audit log: the sender and
 * the recipients (remote ones by address, local ones counted). */
static void audit_send(struct smtp_session *s)
{
	struct buf detail;
	buf_init(&detail, STORE_AUDIT_MAX_DETAIL);
	buf_printf(&detail, "from %s to %zu recipient%s", s->mail_from,
		   s->recipient_count, s->recipient_count == 1 ? "" : "s");
	for (size_t i = 0; i < s->remote_count; i++)
		buf_printf(&detail, "%s%s", i ? ", " : ": ",
			   s->remote_recipients[i]);
	if (s->account_count > 0)
		buf_printf(&detail, "%s%zu local",
			   s->remote_count ? "; " : ": ", s->account_count);
	if (buf_overflowed(&detail)) {
		detail.overflowed = false;
		detail.n = STORE_AUDIT_MAX_DETAIL - 4;
		buf_append_cstr(&detail, "...");
	}
	char session[40];
	snprintf(session, sizeof(session), "smtp-%ld-%llu", (long)getpid(),
		 (unsigned long long)s->id);
	struct audit_event e = {
		.account_id = s->account_id,
		.user = s->user,
		.protocol = "smtp",
		.remote = s->remote,
		.session = session,
		.action = "send",
		.detail = buf_cstr(&detail),
	};
	auth_audit(s->server->auth, &e);
	buf_free(&detail);
}

static void delivery_done(void *context, int result, const char *error)
{
	struct smtp_session *s = context;
	s->delivery = NULL;
	if (result == 0 && s->account_id != 0)
		audit_send(s);
	if (result == 0) {
		replyf(s, "250 2.0.0 Ok: queued as %llx.%llx",
		       (unsigned long long)getpid(), (unsigned long long)s->id);
	} else {
		(void)error;
		reply(s,
		      "451 4.3.0 Temporary failure storing the message, try again");
	}
	transaction_reset(s);
	s->state = STATE_COMMAND;
	if (s->server->stopping) {
		reply(s, "421 4.3.2 Service shutting down");
		session_close(s, "server shutting down");
		return;
	}
	session_process(s);
}

static void submit(struct smtp_session *s, uint8_t *data, size_t size,
		   const char *mailbox)
{
	s->state = STATE_WAIT;
	s->delivery =
		deliverer_submit(s->server->deliverer, data, size, mailbox,
				 s->accounts, s->account_count, s->mail_from,
				 (const char *const *)s->remote_recipients,
				 s->remote_count, delivery_done, s);
}

static void check_work(void *arg)
{
	struct check_job *job = arg;
	inbound_check(job->checker, job->client, job->helo, job->mail_from,
		      slice_make(job->data, job->received_len),
		      slice_make(job->data + job->received_len,
				 job->size - job->received_len),
		      &job->verdict);
}

static void check_done(void *arg)
{
	struct check_job *job = arg;
	struct smtp_session *s = job->s;
	struct inbound_verdict *v = &job->verdict;
	if (s != NULL) {
		s->check = NULL;
		log_info("session %llu: %s", (unsigned long long)s->id,
			 v->summary);
		if (v->action == INBOUND_REJECT) {
			reply(s, v->reply);
			transaction_reset(s);
			s->state = STATE_COMMAND;
			session_process(s);
		} else {
			size_t size;
			uint8_t *data = buf_steal(&v->message, &size);
			submit(s, data, size,
			       v->action == INBOUND_JUNK ? "Junk" : NULL);
		}
	}
	inbound_verdict_clear(v);
	free(job->data);
	free(job);
}

static void deliver_message(struct smtp_session *s)
{
	size_t size;
	uint8_t *data = buf_steal(&s->msg, &size);
	if (s->port != SMTP_PORT_MX || s->server->checker == NULL) {
		submit(s, data, size, NULL);
		return;
	}
	struct check_job *job = xcalloc(1, sizeof(*job));
	job->s = s;
	job->checker = s->server->checker;
	snprintf(job->client, sizeof(job->client), "%s", s->remote);
	snprintf(job->helo, sizeof(job->helo), "%s", s->helo);
	snprintf(job->mail_from, sizeof(job->mail_from), "%s", s->mail_from);
	job->data = data;
	job->size = size;
	job->received_len = s->received_len;
	s->check = job;
	s->state = STATE_WAIT;
	pool_submit(s->server->check_pool, check_work, check_done, job);
}

/* Replies to a message whose content broke a rule; returns true when the
 * session must end (bare line ends: a smuggling attempt). */
static bool content_error(struct smtp_session *s, enum smtp_data_error e)
{
	switch (e) {
	case SMTP_DATA_ERROR_NONE:
		return false;
	case SMTP_DATA_ERROR_BARE_LINE_END:
		reply(s,
		      "554 5.6.0 Bare CR or LF in message content; rejected");
		session_close(s, "bare CR or LF in message content");
		return true;
	case SMTP_DATA_ERROR_LINE_TOO_LONG:
		reply(s, "554 5.6.0 Line longer than 998 octets; rejected");
		break;
	case SMTP_DATA_ERROR_TOO_BIG:
		reply(s, "552 5.3.4 Message size exceeds fixed limit");
		break;
	}
	transaction_reset(s);
	s->state = STATE_COMMAND;
	return false;
}

static void data_finished(struct smtp_session *s)
{
	if (s->data.error != SMTP_DATA_ERROR_NONE) {
		content_error(s, s->data.error);
		return;
	}
	deliver_message(s);
}

static void cmd_bdat(struct smtp_session *s, const struct smtp_command *cmd)
{
	s->bdat_remaining = cmd->chunk_size;
	s->bdat_last = cmd->last;
	s->bdat_discard = false;
	s->bdat_discard_reply = NULL;
	s->state = STATE_BDAT;
	if (!s->has_mail) {
		s->bdat_discard = true;
		s->bdat_discard_reply = "503 5.5.1 Need MAIL before BDAT";
	} else if (s->recipient_count == 0) {
		s->bdat_discard = true;
		s->bdat_discard_reply = "554 5.5.1 No valid recipients";
	} else if (!s->bdat_started) {
		s->bdat_started = true;
		begin_message(s);
		smtp_bdat_checker_init(&s->bdat);
	}
}

static void bdat_chunk_finished(struct smtp_session *s)
{
	s->state = STATE_COMMAND;
	if (s->bdat_discard) {
		protocol_error(s, s->bdat_discard_reply);
		return;
	}
	if (buf_overflowed(&s->msg) && s->bdat.error == SMTP_DATA_ERROR_NONE)
		s->bdat.error = SMTP_DATA_ERROR_TOO_BIG;
	if (s->bdat_last)
		smtp_bdat_finish(&s->bdat);
	if (s->bdat.error != SMTP_DATA_ERROR_NONE) {
		content_error(s, s->bdat.error);
		return;
	}
	if (!s->bdat_last) {
		replyf(s, "250 2.0.0 %llu octets received",
		       (unsigned long long)(s->msg.n - s->received_len));
		return;
	}
	deliver_message(s);
}

static void dispatch(struct smtp_session *s, struct slice line)
{
	struct smtp_command cmd;
	const char *error_reply;
	switch (smtp_parse_command(line, &cmd, &error_reply)) {
	case SMTP_PARSE_OK:
		break;
	case SMTP_PARSE_UNKNOWN:
	case SMTP_PARSE_SYNTAX:
		protocol_error(s, error_reply);
		return;
	}
	switch (cmd.verb) {
	case SMTP_VERB_HELO:
	case SMTP_VERB_EHLO:
		cmd_ehlo(s, &cmd);
		break;
	case SMTP_VERB_MAIL:
		cmd_mail(s, &cmd);
		break;
	case SMTP_VERB_RCPT:
		cmd_rcpt(s, &cmd);
		break;
	case SMTP_VERB_DATA:
		cmd_data(s);
		break;
	case SMTP_VERB_BDAT:
		cmd_bdat(s, &cmd);
		break;
	case SMTP_VERB_RSET:
		transaction_reset(s);
		reply(s, "250 2.0.0 Ok");
		break;
	case SMTP_VERB_NOOP:
		reply(s, "250 2.0.0 Ok");
		break;
	case SMTP_VERB_QUIT:
		replyf(s, "221 2.0.0 %s closing connection",
		       s->server->config->hostname);
		session_close(s, "QUIT");
		break;
	case SMTP_VERB_HELP:
		reply(s,
		      "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET"
		      " NOOP QUIT HELP VRFY STARTTLS AUTH");
		break;
	case SMTP_VERB_VRFY:
		reply(s, "252 2.5.0 Cannot VRFY user, but will accept message");
		break;
	case SMTP_VERB_EXPN:
		protocol_error(s, "502 5.5.1 EXPN not available");
		break;
	case SMTP_VERB_STARTTLS:
		cmd_starttls(s);
		break;
	case SMTP_VERB_AUTH:
		cmd_auth(s, &cmd);
		break;
	}
}

/* Takes one line off the input. Returns 1 when a line was handled, 0 when
 * more input is needed, -1 when the session is ending. */
static int process_line(struct smtp_session *s, struct evbuffer *in)
{
	size_t available = evbuffer_get_length(in);
	size_t want =
		available < SMTP_MAX_AUTH_LINE ? available : SMTP_MAX_AUTH_LINE;
	const uint8_t *p = evbuffer_pullup(in, (ev_ssize_t)want);
	struct slice view = slice_make(p, want);
	bool auth =
		s->state == STATE_AUTH_LINE || slice_prefix_ci(view, "AUTH ");
	size_t len = 0;
	switch (smtp_find_line(
		view, auth ? SMTP_MAX_AUTH_LINE : SMTP_MAX_COMMAND_LINE,
		&len)) {
	case SMTP_LINE_NEED_MORE:
		return 0;
	case SMTP_LINE_TOO_LONG:
		reply(s, "500 5.5.2 Line too long");
		session_close(s, "command line too long");
		return -1;
	case SMTP_LINE_BARE:
		reply(s, "500 5.5.2 Bare CR or LF in command; closing");
		session_close(s, "bare CR or LF in a command");
		return -1;
	case SMTP_LINE_OK:
		break;
	}
	uint8_t line[SMTP_MAX_AUTH_LINE];
	memcpy(line, p, len - 2);
	evbuffer_drain(in, len);
	s->lines_done++;
	struct slice l = slice_make(line, len - 2);
	if (s->state == STATE_AUTH_LINE)
		auth_line(s, l);
	else
		dispatch(s, l);
	sodium_memzero(line, len);
	return 1;
}

/* Feeds DATA bytes to the reader chunk by chunk without copying. */
static void process_data(struct smtp_session *s, struct evbuffer *in)
{
	while (s->state == STATE_DATA && evbuffer_get_length(in) > 0) {
		struct evbuffer_iovec v;
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			return;
		size_t consumed;
		bool done = smtp_data_feed(&s->data,
					   slice_make(v.iov_base, v.iov_len),
					   &s->msg, &consumed);
		evbuffer_drain(in, consumed);
		if (done)
			data_finished(s);
	}
}

static void process_bdat(struct smtp_session *s, struct evbuffer *in)
{
	while (s->state == STATE_BDAT) {
		if (s->bdat_remaining == 0) {
			bdat_chunk_finished(s);
			return;
		}
		struct evbuffer_iovec v;
		if (evbuffer_get_length(in) == 0 ||
		    evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			return;
		size_t n = v.iov_len;
		if (n > s->bdat_remaining)
			n = (size_t)s->bdat_remaining;
		if (!s->bdat_discard) {
			struct slice chunk = slice_make(v.iov_base, n);
			smtp_bdat_check(&s->bdat, chunk);
			buf_append_slice(&s->msg, chunk);
		}
		evbuffer_drain(in, n);
		s->bdat_remaining -= n;
	}
}

static void line_too_slow(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct smtp_session *s = arg;
	s->line_timer_armed = false;
	if (s->state != STATE_COMMAND && s->state != STATE_AUTH_LINE &&
	    s->state != STATE_DATA)
		return; /* our own wait, or a BDAT chunk: not a line */
	reply(s, "421 4.4.2 Timeout, closing connection");
	session_close(s, "line not finished within the timeout");
}

/* The read timeout restarts with every byte, so a client sending one byte
 * a second would hold its session for ever (slowloris). A line that has
 * begun must also end within the timeout. Called whenever the session
 * waits for more input. */
static void line_deadline_update(struct smtp_session *s)
{
	bool partial = false;
	uint64_t done = s->lines_done;
	if (s->state == STATE_COMMAND || s->state == STATE_AUTH_LINE) {
		partial =
			evbuffer_get_length(bufferevent_get_input(s->bev)) > 0;
	} else if (s->state == STATE_DATA) {
		partial = s->data.line_len > 0;
		done += s->data.total - s->data.line_len;
	}
	/* A line ended since the timer was armed: the clock starts again
	 * for the line now under way (a fast pipelining client may end
	 * every read in the middle of a line). */
	if (partial && s->line_timer_armed && done != s->line_mark) {
		evtimer_del(s->line_timer);
		s->line_timer_armed = false;
	}
	if (partial && !s->line_timer_armed) {
		s->line_mark = done;
		if (s->line_timer == NULL)
			s->line_timer =
				evtimer_new(s->server->base, line_too_slow, s);
		struct timeval tv = {s->server->config->smtp_timeout_seconds,
				     0};
		evtimer_add(s->line_timer, &tv);
		s->line_timer_armed = true;
	} else if (!partial && s->line_timer_armed) {
		evtimer_del(s->line_timer);
		s->line_timer_armed = false;
	}
}

static void session_process(struct smtp_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct evbuffer *out = bufferevent_get_output(s->bev);
	for (;;) {
		if (evbuffer_get_length(out) > SMTP_MAX_PENDING_OUTPUT)
			return; /* resumed by session_write */
		switch (s->state) {
		case STATE_COMMAND:
		case STATE_AUTH_LINE:
			if (evbuffer_get_length(in) == 0) {
				line_deadline_update(s);
				return;
			}
			switch (process_line(s, in)) {
			case 0: /* needs more: the session waits for it */
				line_deadline_update(s);
				return;
			case -1: /* closing */
				return;
			}
			break;
		case STATE_DATA:
			process_data(s, in);
			if (s->state == STATE_DATA) {
				line_deadline_update(s);
				return;
			}
			break;
		case STATE_BDAT:
			process_bdat(s, in);
			if (s->state == STATE_BDAT)
				return;
			break;
		case STATE_GREETING:
		case STATE_WAIT:
		case STATE_CLOSING:
			return;
		}
	}
}

static void session_read(struct bufferevent *bev, void *arg)
{
	(void)bev;
	session_process(arg);
}

static void session_write(struct bufferevent *bev, void *arg)
{
	(void)bev;
	struct smtp_session *s = arg;
	if (s->state == STATE_CLOSING) {
		/* With TLS the callback can come for an earlier drain after
		 * the last reply was queued. */
		if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
			session_free(s, "closed after the last reply");
		return;
	}
	if (s->starttls_pending) {
		start_tls(s);
		return;
	}
	session_process(s);
}

static void session_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	struct smtp_session *s = arg;
	if (what & BEV_EVENT_TIMEOUT) {
		if (s->state == STATE_WAIT || s->state == STATE_GREETING) {
			/* Our own wait, not the client's: keep going. */
			bufferevent_enable(s->bev, EV_READ | EV_WRITE);
			return;
		}
		if (s->state != STATE_CLOSING) {
			/* The write timeout still bounds how long the 421
			 * may wait for a peer that does not read. */
			reply(s, "421 4.4.2 Timeout, closing connection");
			bufferevent_enable(s->bev, EV_WRITE);
			session_close(s, "timeout");
			return;
		}
		session_free(s, "timeout while closing");
		return;
	}
	if (what & BEV_EVENT_EOF) {
		session_free(s, "client disconnected");
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		unsigned long e = bufferevent_get_openssl_error(bev);
		char text[256] = "connection error";
		if (e != 0)
			ERR_error_string_n(e, text, sizeof(text));
		session_free(s, text);
	}
}

static void greet(struct smtp_session *s)
{
	s->state = STATE_COMMAND;
	replyf(s, "220 %s ESMTP dijk", s->server->config->hostname);
}

static void refuse_early_talker(struct smtp_session *s)
{
	reply(s, "554 5.5.0 Talking before the greeting; goodbye");
	session_close(s, "client talked before the greeting");
}

static void greet_pause_over(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct smtp_session *s = arg;
	event_free(s->greet_timer);
	s->greet_timer = NULL;
	if (evbuffer_get_length(bufferevent_get_input(s->bev)) > 0) {
		refuse_early_talker(s);
		return;
	}
	greet(s);
}

void smtp_session_start(struct smtp_server *server, enum smtp_port port, int fd,
			const struct sockaddr *sa, socklen_t salen)
{
	(void)salen;
	if (server->stopping || server->session_count >= SMTP_MAX_SESSIONS) {
		static const char busy[] =
			"421 4.3.2 Too busy, try again later\r\n";
		ssize_t w = write(fd, busy, sizeof(busy) - 1);
		(void)w;
		close(fd);
		return;
	}
	struct connlimit_key key;
	/* Over the limit the session still starts (so that a client on
	 * the TLS port gets its 421 over TLS) but only to say goodbye. */
	bool counted = connlimit_acquire(server->connlimit, sa, &key);
	struct smtp_session *s = xcalloc(1, sizeof(*s));
	s->server = server;
	if (counted)
		s->connkey = key;
	s->id = ++server->next_session_id;
	s->port = port;
	net_peer(sa, s->remote, sizeof(s->remote), &s->loopback);
	buf_init(&s->msg, 0);
	s->fd = fd;
	s->next = server->sessions;
	if (server->sessions)
		server->sessions->prev = s;
	server->sessions = s;
	server->session_count++;

	if (port == SMTP_PORT_SUBMISSIONS) {
		SSL *ssl = SSL_new(server->tls);
		s->bev = bufferevent_openssl_socket_new(
			server->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
			BEV_OPT_CLOSE_ON_FREE);
		if (s->bev == NULL) {
			SSL_free(ssl);
			session_free(s, "cannot start TLS");
			return;
		}
		s->bev_owns_fd = true;
		bufferevent_openssl_set_allow_dirty_shutdown(s->bev, 1);
		s->tls = true;
	} else {
		s->bev = bufferevent_socket_new(server->base, fd, 0);
	}
	struct timeval tv = {server->config->smtp_timeout_seconds, 0};
	bufferevent_set_timeouts(s->bev, &tv, &tv);
	bufferevent_setwatermark(s->bev, EV_READ, 0, SMTP_MAX_BUFFERED_INPUT);
	bufferevent_setcb(s->bev, session_read, session_write, session_event,
			  s);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	log_info("session %llu from %s on %s", (unsigned long long)s->id,
		 s->remote,
		 port == SMTP_PORT_MX		? "smtp"
		 : port == SMTP_PORT_SUBMISSION ? "submission"
						: "submissions");

	if (!counted) {
		reply(s, "421 4.7.0 Too many connections from your address");
		session_close(s, "too many connections from one address");
		return;
	}
	/* A client that talks before the greeting is not a mail client. */
	if (port != SMTP_PORT_SUBMISSIONS) {
		uint8_t peek;
		if (recv(fd, &peek, 1, MSG_PEEK | MSG_DONTWAIT) > 0) {
			refuse_early_talker(s);
			return;
		}
	}
	const struct config *cfg = server->config;
	if (port == SMTP_PORT_MX && cfg->greet_pause_ms > 0 &&
	    (!s->loopback || cfg->greet_pause_loopback)) {
		s->state = STATE_GREETING;
		s->greet_timer = evtimer_new(server->base, greet_pause_over, s);
		struct timeval pause = {cfg->greet_pause_ms / 1000,
					(cfg->greet_pause_ms % 1000) * 1000};
		evtimer_add(s->greet_timer, &pause);
		return;
	}
	greet(s);
}

void smtp_sessions_shutdown(struct smtp_server *server)
{
	struct smtp_session *s = server->sessions;
	while (s != NULL) {
		struct smtp_session *next = s->next;
		/* A session waiting for its delivery gets its 250 first. */
		if (s->delivery == NULL && s->check == NULL &&
		    s->state != STATE_CLOSING) {
			reply(s, "421 4.3.2 Service shutting down");
			session_close(s, "server shutting down");
		}
		s = next;
	}
}
