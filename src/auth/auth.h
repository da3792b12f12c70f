/* auth.h: the auth process and the client workers use to reach it.
 *
 * The auth process is the only one that reads credentials. Workers send it
 * (username, password, protocol, remote address) over a Unix socket and get
 * back an account id and the canonical address, or a refusal that never
 * tells whether the account exists. */
#ifndef DIJK_AUTH_H
#define DIJK_AUTH_H

#include "core/common.h"

struct event_base;

#define AUTH_MAX_USERNAME 320
#define AUTH_THREADS	  2
/* A webmail session token: 256 random bits. */
#define AUTH_TOKEN_SIZE 32

struct config;

/* Runs the auth process: serves connections accepted on listen_fd until
 * SIGTERM. Returns the exit status. */
int authd_run(const char *data_dir, int listen_fd, const struct config *config);

/* The path of the auth socket below data_dir; -1 when it does not fit. */
int auth_socket_path(const char *data_dir, char *path_r, size_t size);

enum auth_result {
	AUTH_OK,
	AUTH_FAILED,	  /* wrong user or password */
	AUTH_UNAVAILABLE, /* auth process unreachable: a temporary failure */
};

struct auth_client;
struct auth_request;

typedef void auth_callback(void *context, enum auth_result result,
			   uint64_t account_id, const char *address);

/* A client that connects (and reconnects) to the auth socket lazily. */
struct auth_client *auth_client_new(struct event_base *base,
				    const char *socket_path);
void auth_client_free(struct auth_client **c);

/* Asks whether the password holds. cb runs later on the loop, exactly once
 * unless the request is cancelled first. The returned handle stays valid
 * until cb runs or auth_request_cancel is called. */
struct auth_request *auth_check_password(struct auth_client *c,
					 struct slice username,
					 struct slice password,
					 const char *protocol,
					 const char *remote_address,
					 auth_callback *cb, void *context);

/* The webmail's login: on AUTH_OK, token is the new session's token
 * (AUTH_TOKEN_SIZE bytes, valid during the call). On AUTH_FAILED token is
 * NULL, except when the password held for an account with two-factor
 * authentication on: then account_id is 0 and token is a pending ticket
 * for auth_web_login_code (single use, bound to remote_address, valid for
 * AUTH_TICKET_SECONDS). */
typedef void auth_login_callback(void *context, enum auth_result result,
				 uint64_t account_id, const char *address,
				 const uint8_t *token);
/* host is the host name the browser asked for (its Host, as
 * auth_session_host makes it): the session holds there only. */
struct auth_request *auth_web_login(struct auth_client *c,
				    struct slice username,
				    struct slice password,
				    const char *remote_address,
				    const char *user_agent, const char *host,
				    auth_login_callback *cb, void *context);
/* The second step of a login: the ticket and a TOTP or recovery code.
 * Answered like auth_web_login (never with a ticket). */
#define AUTH_TICKET_SECONDS (5 * 60)
struct auth_request *
auth_web_login_code(struct auth_client *c,
		    const uint8_t ticket[AUTH_TOKEN_SIZE], struct slice code,
		    const char *remote_address, const char *user_agent,
		    const char *host, auth_login_callback *cb, void *context);
/* Whether a session token is live and was made at host: AUTH_OK with its
 * account, or AUTH_FAILED (a session of another host stays, for its own
 * host). The other calls that carry a token (a password change, the
 * Security and Activity requests) come only after this check. */
struct auth_request *auth_session_check(struct auth_client *c,
					const uint8_t token[AUTH_TOKEN_SIZE],
					const char *host, auth_callback *cb,
					void *context);
/* The host a session is bound to, from a request's Host header: the name
 * in lowercase without its port; "" when there is none or it is longer
 * than STORE-sized hosts allow. */
#define AUTH_HOST_SIZE 256
void auth_session_host(const char *host_header, char out[AUTH_HOST_SIZE]);
/* Ends a session: AUTH_OK with the account it was of, or AUTH_FAILED. */
struct auth_request *auth_session_revoke(struct auth_client *c,
					 const uint8_t token[AUTH_TOKEN_SIZE],
					 auth_callback *cb, void *context);

/* A password change: what the auth process made of it. The values go over
 * the wire (IPC_PASSWORD_CHANGE); UNAVAILABLE is also the client's own
 * answer when the auth process cannot be reached. */
enum auth_password_result {
	AUTH_PASSWORD_CHANGED = 0,
	AUTH_PASSWORD_NO_SESSION = 1, /* the session is over */
	AUTH_PASSWORD_WRONG = 2,      /* the old password does not hold */
	AUTH_PASSWORD_REFUSED = 3,    /* the new one breaks the policy */
	AUTH_PASSWORD_UNAVAILABLE = 4,
};
/* The policy for a new password: AUTH_NEW_PASSWORD_MIN to
 * PASSWORD_MAX_LENGTH (auth/password.h) bytes, no NUL (IMAP and SMTP AUTH
 * could not send it), not the old one. */
#define AUTH_NEW_PASSWORD_MIN 10
typedef void auth_password_callback(void *context,
				    enum auth_password_result result);
/* Changes the password of the session's account when old_password holds,
 * then ends every other session of the account (the one of token stays).
 * Both passwords are at most PASSWORD_MAX_LENGTH bytes; the caller wipes
 * its copies. cb runs later on the loop, once, unless cancelled. */
struct auth_request *auth_password_change(
	struct auth_client *c, const uint8_t token[AUTH_TOKEN_SIZE],
	struct slice old_password, struct slice new_password,
	const char *remote_address, auth_password_callback *cb, void *context);

/* What a live session may do to the account's second factors, app
 * passwords and sessions (IPC_SECURITY). The values go over the wire. */
enum auth_security_op {
	/* {"totp", "recovery_left", "app_passwords", "sessions"} */
	AUTH_SECURITY_STATUS = 1,
	/* {"secret", "uri"}: a new TOTP secret, pending until confirmed */
	AUTH_SECURITY_TOTP_BEGIN = 2,
	/* arg1 code: turns TOTP on; {"recovery": [10 codes]} */
	AUTH_SECURITY_TOTP_CONFIRM = 3,
	/* arg1 password, arg2 TOTP or recovery code: turns TOTP off */
	AUTH_SECURITY_TOTP_DISABLE = 4,
	/* arg1 name: {"id", "name", "password"} */
	AUTH_SECURITY_APP_CREATE = 5,
	/* arg1 id (decimal) */
	AUTH_SECURITY_APP_REVOKE = 6,
	/* arg1 public id of a session (16 lowercase hex digits) */
	AUTH_SECURITY_SESSION_REVOKE = 7,
	AUTH_SECURITY_OP_MAX = 7,
};
enum auth_security_status {
	AUTH_SECURITY_DONE = 0,
	AUTH_SECURITY_REFUSED = 1,   /* not allowed now, or bad arguments */
	AUTH_SECURITY_WRONG = 2,     /* wrong password or code */
	AUTH_SECURITY_LOCKED = 3,    /* too many wrong codes: wait */
	AUTH_SECURITY_NOT_FOUND = 4, /* no such app password or session */
	AUTH_SECURITY_UNAVAILABLE = 5,
	AUTH_SECURITY_STATUS_MAX = 5,
};
/* An argument is at most this long (a password of PASSWORD_MAX_LENGTH
 * fits). */
#define AUTH_SECURITY_MAX_ARG 1024
/* result is AUTH_FAILED when the session is over; body is the reply's
 * JSON text (valid during the call; empty unless DONE). */
typedef void auth_security_callback(void *context, enum auth_result result,
				    enum auth_security_status status,
				    struct slice body);
struct auth_request *auth_security(struct auth_client *c,
				   const uint8_t token[AUTH_TOKEN_SIZE],
				   enum auth_security_op op,
				   const char *remote_address,
				   struct slice arg1, struct slice arg2,
				   auth_security_callback *cb, void *context);

void auth_request_cancel(struct auth_request *r);

#endif
