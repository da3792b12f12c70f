/* session.c: one IMAP connection on the event loop: the greeting, framing
 * of commands (with literals and their continuations), the commands that
 * need no store (CAPABILITY, NOOP and LOGOUT before login, STARTTLS,
 * LOGIN, AUTHENTICATE), IDLE's DONE, and handing every other command to
 * the pool (command.c). One teardown path: session_free(). */
#include "core/common.h"

#include "imap/internal.h"

#include "imap/compress.h"

#include "auth/auth.h"
#include "auth/password.h"
#include "core/base64.h"
#include "core/log.h"
#include "core/net.h"
#include "core/pool.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include <openssl/err.h>
#include <sodium.h>

static void session_read(struct bufferevent *bev, void *arg);
static void session_write(struct bufferevent *bev, void *arg);
static void session_event(struct bufferevent *bev, short what, void *arg);
static void session_process(struct imap_session *s);
static void setup_bev(struct imap_session *s);

static void send_text(struct imap_session *s, const char *text)
{
	bufferevent_write(s->bev, text, strlen(text));
}

static void send_line(struct imap_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void send_line(struct imap_session *s, const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	DIJK_ASSERT(n > 0 && (size_t)n < sizeof(line) - 2);
	memcpy(line + n, "\r\n", 2);
	bufferevent_write(s->bev, line, (size_t)n + 2);
}

/* Bytes not yet handed to the kernel, a compression filter included. */
static size_t output_pending(struct imap_session *s)
{
	size_t n = evbuffer_get_length(bufferevent_get_output(s->bev));
	struct bufferevent *under = bufferevent_get_underlying(s->bev);
	if (under != NULL)
		n += evbuffer_get_length(bufferevent_get_output(under));
	return n;
}

static void session_free(struct imap_session *s, const char *reason)
{
	/* A command on the pool still uses the session: end it when the
	 * command comes back. */
	if (s->busy) {
		s->closing = true;
		bufferevent_disable(s->bev, EV_READ);
		return;
	}
	log_info("session %llu from %s closed: %s", (unsigned long long)s->id,
		 s->remote, reason);
	struct imap_server *server = s->server;
	if (s->auth_request != NULL)
		auth_request_cancel(s->auth_request);
	if (s->idle_timer != NULL)
		event_free(s->idle_timer);
	if (s->close_timer != NULL)
		event_free(s->close_timer);
	if (s->bev != NULL) {
		/* End TLS properly: a close_notify before the FIN. */
		struct bufferevent *tls_bev = s->bev;
		if (s->compress && bufferevent_get_underlying(s->bev) != NULL)
			tls_bev = bufferevent_get_underlying(s->bev);
		SSL *ssl = s->tls ? bufferevent_openssl_get_ssl(tls_bev) : NULL;
		if (ssl != NULL)
			SSL_shutdown(ssl);
		bufferevent_free(s->bev);
	}
	if (!s->bev_owns_fd)
		close(s->fd);
	connlimit_release(server->connlimit, &s->connkey);
	imap_view_free(&s->view);
	imap_audit_free(s);
	free(s->command);
	buf_free(&s->out);
	arena_free(&s->arena);
	if (s->prev)
		s->prev->next = s->next;
	else
		server->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	server->session_count--;
	free(s);
	if (server->stopping && server->sessions == NULL)
		event_base_loopexit(server->base, NULL);
}

#define IMAP_CLOSE_CHECK_MS 20
#define IMAP_CLOSE_CHECKS   250 /* five seconds */

/* A filter's own buffer may be empty while the connection's still holds
 * bytes, and no callback says when those are gone: look again shortly. */
static void close_check(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct imap_session *s = arg;
	if (s->busy)
		return; /* command_done closes again and re-arms */
	if (output_pending(s) == 0 || ++s->close_checks > IMAP_CLOSE_CHECKS) {
		session_free(s, "closed after the last reply");
		return;
	}
	struct timeval tv = {0, IMAP_CLOSE_CHECK_MS * 1000};
	evtimer_add(s->close_timer, &tv);
}

/* Ends the session once what is queued has been sent. */
static void session_close(struct imap_session *s, const char *reason)
{
	s->closing = true;
	bufferevent_disable(s->bev, EV_READ);
	if (output_pending(s) == 0) {
		session_free(s, reason);
		return;
	}
	if (s->compress) {
		if (s->close_timer == NULL)
			s->close_timer =
				evtimer_new(s->server->base, close_check, s);
		struct timeval tv = {0, IMAP_CLOSE_CHECK_MS * 1000};
		evtimer_add(s->close_timer, &tv);
	}
}

/* Counts a BAD (or failed login); past the limit the session ends.
 * Returns true when it did. */
static bool count_bad(struct imap_session *s)
{
	if (++s->bad_commands < IMAP_MAX_BAD_COMMANDS)
		return false;
	send_text(s, "* BYE Too many errors\r\n");
	session_close(s, "too many errors");
	return true;
}

static void set_timeout(struct imap_session *s)
{
	struct timeval tv = {s->state == IMAP_STATE_NOT_AUTHENTICATED
				     ? IMAP_PREAUTH_TIMEOUT
				     : IMAP_IDLE_TIMEOUT,
			     0};
	bufferevent_set_timeouts(s->bev, &tv, NULL);
}

void imap_capabilities(const struct imap_session *s, struct buf *out);

/* Whether a password may be sent on this connection: over TLS, or from
 * loopback unless auth.cleartext_loopback is off. */
static bool imap_cleartext_ok(const struct imap_session *s)
{
	return s->tls || (s->loopback && s->server->config->cleartext_loopback);
}

void imap_capabilities(const struct imap_session *s, struct buf *out)
{
	buf_append_cstr(out, "IMAP4rev1 IMAP4rev2");
	if (s->state == IMAP_STATE_NOT_AUTHENTICATED) {
		if (!s->tls && s->server->tls != NULL && !s->imaps)
			buf_append_cstr(out, " STARTTLS");
		if (imap_cleartext_ok(s))
			buf_append_cstr(out, " AUTH=PLAIN SASL-IR");
		else
			buf_append_cstr(out, " LOGINDISABLED");
	}
	buf_printf(
		out,
		" LITERAL+ ENABLE ID IDLE NAMESPACE UNSELECT UIDPLUS MOVE"
		" SPECIAL-USE LIST-EXTENDED LIST-STATUS CHILDREN CONDSTORE"
		" QRESYNC ESEARCH SEARCHRES SORT SORT=DISPLAY"
		" THREAD=REFERENCES THREAD=ORDEREDSUBJECT QUOTA QUOTA=RES-STORAGE"
		" BINARY STATUS=SIZE COMPRESS=DEFLATE APPENDLIMIT=%u",
		IMAP_APPEND_LIMIT);
}

static void send_capability(struct imap_session *s)
{
	struct buf b;
	buf_init(&b, 4096);
	buf_append_cstr(&b, "* CAPABILITY ");
	imap_capabilities(s, &b);
	buf_append(&b, "\r\n", 2);
	bufferevent_write(s->bev, b.p, b.n);
	buf_free(&b);
}

/* ---- Running commands on the pool ---- */

static void command_work(void *arg)
{
	struct imap_session *s = arg;
	struct store *store = store_thread_handle(s->server->data_dir);
	imap_execute(s, store);
}

static void command_done(void *arg);

static void start_tls(struct imap_session *s);
void imap_session_idle_started(struct imap_session *s);

static void run_on_pool(struct imap_session *s)
{
	s->busy = true;
	s->notified = false;
	buf_reset(&s->out);
	pool_submit(s->server->pool, command_work, command_done, s);
}

static void command_done(void *arg)
{
	struct imap_session *s = arg;
	free(s->command);
	s->command = NULL;
	arena_reset(s->arena);
	imap_audit_flush(s);
	/* Still busy while writing: a filter (COMPRESS) may run our write
	 * callback from inside bufferevent_write, which must not start the
	 * next command while this one's reply is being handed over. */
	if (s->out.n > 0)
		bufferevent_write(s->bev, s->out.p, s->out.n);
	buf_reset(&s->out);
	s->busy = false;
	if (s->closing) {
		session_close(s, "closed");
		return;
	}
	if (s->state == IMAP_STATE_LOGOUT) {
		session_close(s, "LOGOUT");
		return;
	}
	if (s->bad_commands >= IMAP_MAX_BAD_COMMANDS) {
		send_text(s, "* BYE Too many errors\r\n");
		session_close(s, "too many errors");
		return;
	}
	if (s->changed) {
		s->changed = false;
		imap_server_notify(s->server, s->account_id, s);
	}
	if (s->idling) {
		imap_session_idle_started(s);
		if (s->notified) {
			/* Something changed while the last check ran. */
			run_on_pool(s);
			return;
		}
	}
	set_timeout(s);
	session_process(s);
}

/* ---- Authentication (on the loop: the auth process is reached from
 * here) ---- */

static void auth_done(void *context, enum auth_result result,
		      uint64_t account_id, const char *address)
{
	struct imap_session *s = context;
	s->auth_request = NULL;
	s->busy = false;
	const char *tag = s->sasl_tag;
	switch (result) {
	case AUTH_OK:
		s->account_id = account_id;
		snprintf(s->user, sizeof(s->user), "%s", address);
		s->state = IMAP_STATE_AUTHENTICATED;
		log_info("session %llu: authenticated as %s",
			 (unsigned long long)s->id, address);
		imap_audit_logged_in(s);
		struct buf b;
		buf_init(&b, 4096);
		buf_printf(&b, "%s OK [CAPABILITY ", tag);
		imap_capabilities(s, &b);
		buf_append_cstr(&b, "] Logged in\r\n");
		bufferevent_write(s->bev, b.p, b.n);
		buf_free(&b);
		break;
	case AUTH_FAILED:
		send_line(s,
			  "%s NO [AUTHENTICATIONFAILED] Authentication failed",
			  tag);
		if (++s->auth_failures >= IMAP_MAX_AUTH_FAILURES) {
			send_text(s, "* BYE Too many failed logins\r\n");
			session_close(s, "too many failed logins");
			return;
		}
		if (count_bad(s))
			return;
		break;
	case AUTH_UNAVAILABLE:
		send_line(
			s,
			"%s NO [UNAVAILABLE] Temporary authentication failure",
			tag);
		break;
	}
	set_timeout(s);
	session_process(s);
}

static void check_password(struct imap_session *s, struct slice user,
			   struct slice password)
{
	if (user.n == 0 || user.n > AUTH_MAX_USERNAME ||
	    password.n > PASSWORD_MAX_LENGTH) {
		send_line(s,
			  "%s NO [AUTHENTICATIONFAILED] Authentication failed",
			  s->sasl_tag);
		return;
	}
	s->busy = true;
	s->auth_request = auth_check_password(s->server->auth, user, password,
					      "imap", s->remote, auth_done, s);
}

static void sasl_plain(struct imap_session *s, struct slice response)
{
	uint8_t decoded[BASE64_DECODED_MAX(8192)];
	long n = response.n == 1 && response.p[0] == '='
			 ? 0
			 : (BASE64_DECODED_MAX(response.n) <= sizeof(decoded)
				    ? base64_decode(response, decoded)
				    : -1);
	uint8_t *first = n > 0 ? memchr(decoded, '\0', (size_t)n) : NULL;
	uint8_t *second = first ? memchr(first + 1, '\0',
					 (size_t)(decoded + n - first - 1))
				: NULL;
	if (n < 0 || second == NULL) {
		send_line(s, "%s BAD Malformed PLAIN response", s->sasl_tag);
		sodium_memzero(decoded, sizeof(decoded));
		return;
	}
	struct slice authzid = slice_make(decoded, (size_t)(first - decoded));
	struct slice authcid =
		slice_make(first + 1, (size_t)(second - first - 1));
	struct slice password =
		slice_make(second + 1, (size_t)(decoded + n - second - 1));
	if (authzid.n > 0 && (authzid.n != authcid.n ||
			      memcmp(authzid.p, authcid.p, authzid.n) != 0))
		send_line(s, "%s NO [AUTHORIZATIONFAILED] Not authorized",
			  s->sasl_tag);
	else
		check_password(s, authcid, password);
	sodium_memzero(decoded, sizeof(decoded));
}

/* ---- Commands handled on the loop ---- */

static bool save_tag(struct imap_session *s, struct slice tag)
{
	if (tag.n == 0 || tag.n > IMAP_MAX_TAG)
		return false;
	memcpy(s->sasl_tag, tag.p, tag.n);
	s->sasl_tag[tag.n] = '\0';
	return true;
}

/* Handles cmd if it is one of the loop's commands; returns false to send
 * it to the pool. */
static bool loop_command(struct imap_session *s, const struct imap_command *cmd)
{
	struct slice name = cmd->name;
	save_tag(s, cmd->tag);
	const char *tag = s->sasl_tag;
	if (cmd->uid)
		return false;
	if (slice_eq_ci(name, "CAPABILITY") && cmd->arg_count == 0) {
		send_capability(s);
		send_line(s, "%s OK CAPABILITY completed", tag);
		return true;
	}
	if (slice_eq_ci(name, "LOGOUT") && cmd->arg_count == 0) {
		if (s->state == IMAP_STATE_SELECTED)
			return false; /* closes the mailbox on the pool */
		send_text(s, "* BYE Logging out\r\n");
		send_line(s, "%s OK LOGOUT completed", tag);
		session_close(s, "LOGOUT");
		return true;
	}
	if (slice_eq_ci(name, "COMPRESS") &&
	    s->state != IMAP_STATE_NOT_AUTHENTICATED) {
		struct slice mech;
		if (cmd->arg_count != 1 ||
		    !imap_arg_astring(&cmd->args[0], &mech) ||
		    !slice_eq_ci(mech, "DEFLATE")) {
			send_line(s, "%s BAD Syntax: COMPRESS DEFLATE", tag);
		} else if (s->compress) {
			send_line(
				s,
				"%s NO [COMPRESSIONACTIVE] Already compressing",
				tag);
		} else {
			send_line(s, "%s OK DEFLATE active", tag);
			s->compress_pending = true;
		}
		return true;
	}
	if (s->state != IMAP_STATE_NOT_AUTHENTICATED)
		return false;
	if (slice_eq_ci(name, "NOOP") && cmd->arg_count == 0) {
		send_line(s, "%s OK NOOP completed", tag);
		return true;
	}
	if (slice_eq_ci(name, "ID")) {
		imap_audit_client(s,
				  cmd->arg_count == 1 && cmd->args[0].type ==
								 IMAP_ARG_LIST
					  ? &cmd->args[0]
					  : NULL);
		send_text(s, "* ID (\"name\" \"dijk\")\r\n");
		send_line(s, "%s OK ID completed", tag);
		return true;
	}
	if (slice_eq_ci(name, "STARTTLS") && cmd->arg_count == 0) {
		if (s->tls || s->server->tls == NULL || s->imaps) {
			send_line(s, "%s BAD STARTTLS not available", tag);
			return true;
		}
		send_line(s, "%s OK Begin TLS negotiation now", tag);
		s->starttls_pending = true;
		return true;
	}
	bool login = slice_eq_ci(name, "LOGIN");
	bool authenticate = slice_eq_ci(name, "AUTHENTICATE");
	if (!login && !authenticate) {
		send_line(s, "%s BAD Log in first", tag);
		count_bad(s);
		return true;
	}
	if (!imap_cleartext_ok(s)) {
		send_line(s, "%s NO [PRIVACYREQUIRED] Use STARTTLS first", tag);
		return true;
	}
	if (login) {
		struct slice user, password;
		if (cmd->arg_count != 2 ||
		    !imap_arg_astring(&cmd->args[0], &user) ||
		    !imap_arg_astring(&cmd->args[1], &password)) {
			send_line(s, "%s BAD Syntax: LOGIN user password", tag);
			count_bad(s);
			return true;
		}
		check_password(s, user, password);
		return true;
	}
	struct slice mech, initial;
	if (cmd->arg_count < 1 || cmd->arg_count > 2 ||
	    !imap_arg_astring(&cmd->args[0], &mech)) {
		send_line(s, "%s BAD Syntax: AUTHENTICATE mechanism", tag);
		count_bad(s);
		return true;
	}
	if (!slice_eq_ci(mech, "PLAIN")) {
		send_line(s, "%s NO Unsupported authentication mechanism", tag);
		return true;
	}
	if (cmd->arg_count == 2) {
		if (!imap_arg_astring(&cmd->args[1], &initial)) {
			send_line(s, "%s BAD Bad initial response", tag);
			return true;
		}
		sasl_plain(s, initial);
		return true;
	}
	s->sasl_pending = true;
	send_text(s, "+ \r\n");
	return true;
}

/* Reads one line of an AUTHENTICATE exchange or an IDLE DONE. Returns
 * false when more input is needed. */
static bool take_line(struct imap_session *s, struct evbuffer *in,
		      struct slice *line_r, uint8_t *storage, size_t size)
{
	struct evbuffer_ptr eol =
		evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_CRLF_STRICT);
	if (eol.pos < 0) {
		if (evbuffer_get_length(in) >= size) {
			send_text(s, "* BYE Line too long\r\n");
			session_close(s, "line too long");
		}
		return false;
	}
	if ((size_t)eol.pos >= size) {
		send_text(s, "* BYE Line too long\r\n");
		session_close(s, "line too long");
		return false;
	}
	evbuffer_remove(in, storage, (size_t)eol.pos);
	evbuffer_drain(in, 2);
	*line_r = slice_make(storage, (size_t)eol.pos);
	return true;
}

/* Takes one command off the input if a whole one is there. Returns false
 * when nothing could be taken (more input is needed, or the session is
 * ending). */
static void refuse_literal(struct imap_session *s, struct evbuffer *in,
			   size_t available, bool preauth)
{
	struct evbuffer_ptr eol =
		evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_CRLF_STRICT);
	size_t cut = eol.pos >= 0 ? (size_t)eol.pos + 2 : available;
	uint8_t *line = xmalloc(cut + 1);
	evbuffer_remove(in, line, cut);
	size_t tag = 0;
	while (tag < cut && line[tag] != ' ' && tag < IMAP_MAX_TAG)
		tag++;
	char t[IMAP_MAX_TAG + 1];
	memcpy(t, line, tag);
	t[tag] = '\0';
	send_line(s, "%s NO [TOOBIG] Literal larger than %u bytes",
		  tag ? t : "*",
		  preauth ? IMAP_MAX_LITERAL_PREAUTH : IMAP_APPEND_LIMIT);
	free(line);
	imap_framer_reset(&s->framer);
}

/* Takes one command off the input if a whole one is there. Returns false
 * when nothing could be taken (more input is needed, or the session is
 * ending). */
static bool process_one(struct imap_session *s, struct evbuffer *in)
{
	size_t available = evbuffer_get_length(in);
	bool preauth = s->state == IMAP_STATE_NOT_AUTHENTICATED;
	struct imap_frame_limits limits = {
		.max_line = preauth ? IMAP_MAX_LINE_PREAUTH : IMAP_MAX_LINE,
		.max_literal =
			preauth ? IMAP_MAX_LITERAL_PREAUTH : IMAP_APPEND_LIMIT,
		.max_literals = IMAP_MAX_COMMAND_LITERALS,
	};
	const uint8_t *p = evbuffer_pullup(in, -1);
	size_t len = 0;
	uint64_t literal = 0;
	bool nonsync = false;
	enum imap_frame_result r =
		imap_frame(&s->framer, slice_make(p, available), &limits, &len,
			   &literal, &nonsync);
	switch (r) {
	case IMAP_FRAME_NEED_MORE:
		return false;
	case IMAP_FRAME_CONTINUE:
		send_text(s, "+ Ready for literal data\r\n");
		return false;
	case IMAP_FRAME_TOO_LONG:
		send_text(s, "* BYE Command line too long\r\n");
		session_close(s, "command line too long");
		return false;
	case IMAP_FRAME_TOO_MANY_LITERALS:
		send_text(s, "* BYE Too many literals\r\n");
		session_close(s, "too many literals");
		return false;
	case IMAP_FRAME_LITERAL_TOO_BIG:
		if (nonsync) {
			/* The client sends the bytes anyway: no way to stay
			 * in step with it. */
			send_text(s, "* BYE [TOOBIG] Literal too large\r\n");
			session_close(s, "literal too large");
			return false;
		}
		/* A synchronizing literal: refuse it; the client sends
		 * nothing more of this command. Drop what we have of it. */
		refuse_literal(s, in, available, preauth);
		return true;
	case IMAP_FRAME_COMPLETE:
		break;
	}
	s->command = xmalloc(len);
	evbuffer_remove(in, s->command, len);
	s->command_len = len;
	imap_framer_reset(&s->framer);

	struct imap_command cmd;
	const char *error = NULL;
	arena_reset(s->arena);
	if (imap_parse_command(slice_make(s->command, len), s->arena, &cmd,
			       &error) != 0) {
		if (cmd.tag.n > 0 && save_tag(s, cmd.tag))
			send_line(s, "%s BAD %s", s->sasl_tag,
				  error ? error : "Syntax error");
		else
			send_line(s, "* BAD %s",
				  error ? error : "Syntax error");
		free(s->command);
		s->command = NULL;
		count_bad(s);
		return true;
	}
	if (loop_command(s, &cmd)) {
		free(s->command);
		s->command = NULL;
		return true;
	}
	run_on_pool(s);
	return true;
}

static void session_process(struct imap_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	while (!s->busy && !s->closing && !s->starttls_pending &&
	       !s->compress_pending && evbuffer_get_length(in) > 0) {
		if (evbuffer_get_length(bufferevent_get_output(s->bev)) >
		    IMAP_MAX_OUTPUT_PENDING)
			return; /* resumed by session_write */
		uint8_t storage[IMAP_MAX_LINE_PREAUTH];
		struct slice line;
		if (s->sasl_pending) {
			if (!take_line(s, in, &line, storage, sizeof(storage)))
				return;
			s->sasl_pending = false;
			if (line.n == 1 && line.p[0] == '*')
				send_line(s, "%s BAD Authentication cancelled",
					  s->sasl_tag);
			else
				sasl_plain(s, line);
			sodium_memzero(storage, sizeof(storage));
			continue;
		}
		if (s->idling) {
			if (!take_line(s, in, &line, storage, sizeof(storage)))
				return;
			if (!slice_eq_ci(line, "DONE")) {
				send_line(s, "%s BAD Expected DONE",
					  s->sasl_tag);
				s->idling = false;
				continue;
			}
			s->idling = false;
			if (s->idle_timer)
				evtimer_del(s->idle_timer);
			send_line(s, "%s OK IDLE terminated", s->sasl_tag);
			continue;
		}
		if (!process_one(s, in))
			return;
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
	struct imap_session *s = arg;
	/* With TLS the write callback can come for an earlier drain after
	 * the last reply was queued: free only once all of it is out. */
	if (s->closing && !s->busy && output_pending(s) == 0) {
		session_free(s, "closed after the last reply");
		return;
	}
	if (s->closing)
		return;
	if (s->starttls_pending) {
		start_tls(s);
		return;
	}
	if (s->compress_pending && output_pending(s) == 0) {
		struct bufferevent *z =
			imap_compress_start(s->server->base, s->bev);
		s->compress_pending = false;
		if (z == NULL) {
			session_free(s, "cannot start compression");
			return;
		}
		s->bev = z;
		s->compress = true;
		setup_bev(s);
	}
	session_process(s);
}

static void session_event(struct bufferevent *bev, short what, void *arg)
{
	struct imap_session *s = arg;
	if (what & BEV_EVENT_TIMEOUT) {
		if (s->busy) {
			bufferevent_enable(s->bev, EV_READ);
			return;
		}
		send_text(s, "* BYE Autologout; idle for too long\r\n");
		session_close(s, "timeout");
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

static void setup_bev(struct imap_session *s)
{
	bufferevent_setcb(s->bev, session_read, session_write, session_event,
			  s);
	bufferevent_setwatermark(s->bev, EV_READ, 0,
				 IMAP_MAX_LINE + IMAP_APPEND_LIMIT / 8);
	set_timeout(s);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

static void start_tls(struct imap_session *s)
{
	s->starttls_pending = false;
	struct evbuffer *in = bufferevent_get_input(s->bev);
	/* Bytes pipelined after STARTTLS are not trusted: thrown away. */
	evbuffer_drain(in, evbuffer_get_length(in));
	bufferevent_free(s->bev);
	s->bev = NULL;
	SSL *ssl = SSL_new(s->server->tls);
	s->bev = bufferevent_openssl_socket_new(s->server->base, s->fd, ssl,
						BUFFEREVENT_SSL_ACCEPTING,
						BEV_OPT_CLOSE_ON_FREE);
	if (s->bev == NULL) {
		SSL_free(ssl);
		session_free(s, "cannot start TLS");
		return;
	}
	s->bev_owns_fd = true;
	bufferevent_openssl_set_allow_dirty_shutdown(s->bev, 1);
	s->tls = true;
	imap_framer_reset(&s->framer);
	setup_bev(s);
}

void imap_session_start(struct imap_server *server, bool imaps, int fd,
			const struct sockaddr *sa);

void imap_session_start(struct imap_server *server, bool imaps, int fd,
			const struct sockaddr *sa)
{
	if (server->stopping || server->session_count >= IMAP_MAX_SESSIONS) {
		static const char busy[] = "* BYE Too many connections\r\n";
		ssize_t w = write(fd, busy, sizeof(busy) - 1);
		(void)w;
		close(fd);
		return;
	}
	struct connlimit_key key;
	/* Over the limit the session still starts (so that an IMAPS client
	 * gets its BYE over TLS) but only to say goodbye. */
	bool counted = connlimit_acquire(server->connlimit, sa, &key);
	struct imap_session *s = xcalloc(1, sizeof(*s));
	s->server = server;
	if (counted)
		s->connkey = key;
	s->id = ++server->next_id;
	s->fd = fd;
	s->imaps = imaps;
	net_peer(sa, s->remote, sizeof(s->remote), &s->loopback);
	buf_init(&s->out, SIZE_MAX);
	s->arena = arena_new(IMAP_COMMAND_ARENA);
	s->next = server->sessions;
	if (server->sessions)
		server->sessions->prev = s;
	server->sessions = s;
	server->session_count++;
	if (imaps) {
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
	setup_bev(s);
	if (!counted) {
		log_info("session %llu from %s: too many connections from the "
			 "address",
			 (unsigned long long)s->id, s->remote);
		send_text(s,
			  "* BYE Too many connections from your address\r\n");
		session_close(s, "too many connections from one address");
		return;
	}
	struct buf b;
	buf_init(&b, 4096);
	buf_append_cstr(&b, "* OK [CAPABILITY ");
	imap_capabilities(s, &b);
	buf_append_cstr(&b, "] dijk ready\r\n");
	bufferevent_write(s->bev, b.p, b.n);
	buf_free(&b);
}

static void idle_recheck(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct imap_session *s = arg;
	if (s->idling && !s->busy)
		run_on_pool(s);
}

/* Called when the account of an IDLE session changed, or on the loop
 * after IDLE started. */
void imap_session_wake(struct imap_session *s);

void imap_session_wake(struct imap_session *s)
{
	if (s->busy) {
		s->notified = true;
		return;
	}
	if (s->idling && s->view != NULL)
		run_on_pool(s);
}

/* Arms the periodic check of an IDLE session (from command_done). */
void imap_session_idle_started(struct imap_session *s);

void imap_session_idle_started(struct imap_session *s)
{
	if (s->idle_timer == NULL)
		s->idle_timer = event_new(s->server->base, -1, EV_PERSIST,
					  idle_recheck, s);
	struct timeval tv = {IMAP_IDLE_RECHECK, 0};
	evtimer_add(s->idle_timer, &tv);
}

void imap_sessions_shutdown(struct imap_server *server);

void imap_sessions_shutdown(struct imap_server *server)
{
	for (struct imap_session *s = server->sessions, *next; s; s = next) {
		next = s->next;
		send_text(s, "* BYE Server shutting down\r\n");
		session_close(s, "server shutting down");
	}
}
