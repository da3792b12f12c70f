/* twofactor.h: the auth process's second factors: TOTP secrets sealed with
 * DATA/auth.key, recovery codes, pending login tickets, app passwords for
 * IMAP and SMTP, and the session and security operations a live webmail
 * session may ask for. Internal to the auth process (authd.c calls it from
 * its pool threads; every function is thread-safe). */
#ifndef DIJK_TWOFACTOR_H
#define DIJK_TWOFACTOR_H

#include "core/common.h"

#include "auth/auth.h"
#include "core/buf.h"
#include "store/store.h"

#include <time.h>

#define TWOFACTOR_KEY_FILE "auth.key"
#define TWOFACTOR_KEY_SIZE 32
/* Pending login tickets kept at once; the oldest goes first when full. */
#define TWOFACTOR_MAX_TICKETS	    1024
#define TWOFACTOR_RECOVERY_CODES    10
#define TWOFACTOR_MAX_APP_PASSWORDS 20
/* Sessions shown on the Sessions page (most recently used first), and
 * how much of each user agent: the whole status must fit one IPC frame
 * (IPC_MAX_FRAME) with TWOFACTOR_MAX_APP_PASSWORDS app passwords. */
#define TWOFACTOR_MAX_SESSIONS_LISTED 12
#define TWOFACTOR_MAX_AGENT_LISTED    160

/* Loads DATA/auth.key, making it (0600) on first use, and initialises
 * liboath. Returns 0 or -1 with *error_r. */
int twofactor_init(const char *data_dir, const char **error_r);
/* Wipes the key and the tickets. */
void twofactor_shutdown(void);

/* After the right password on the web: 1 with a new ticket in ticket_r
 * when the account needs a second factor, 0 when it does not, -1 when
 * this cannot be told (refuse the login). */
int twofactor_web_login(struct store_credentials *c, uint64_t account_id,
			const char *remote, const char *user_agent,
			uint8_t ticket_r[AUTH_TOKEN_SIZE]);
/* The second step: uses up the ticket (whatever the code) and returns its
 * account when it was live, from remote, and the code (TOTP or recovery)
 * holds; 0 otherwise. The user agent given at the first step goes to
 * user_agent_r. */
uint64_t twofactor_redeem(struct store_credentials *c,
			  const uint8_t ticket[AUTH_TOKEN_SIZE],
			  const char *remote, struct slice code,
			  char *user_agent_r, size_t size);

/* The password rule of IMAP and SMTP for a known account: returns 1 when
 * the main password holds and the account has no TOTP, 2 when one of its
 * app passwords holds, 0 otherwise. Costs one Argon2id computation when
 * it answers 1 and two otherwise, whatever the reason (as does
 * twofactor_protocol_dummy for unknown users). */
int twofactor_protocol_password(struct store_credentials *c,
				uint64_t account_id, const char *phc,
				struct slice password);
void twofactor_protocol_dummy(struct slice password);

/* An IPC_SECURITY request, parsed from a frame by authd. */
struct twofactor_request;
/* Parses the fields after the session token; NULL when malformed. */
struct twofactor_request *twofactor_request_parse(struct slice *cursor);
void twofactor_request_free(struct twofactor_request **r);
/* The remote address the request came with, into out (for the log). */
void twofactor_request_remote(const struct twofactor_request *r, char *out,
			      size_t size);
/* Runs it for the live session of account_id (address its address,
 * session_hash the SHA-256 of its token). */
void twofactor_request_run(struct twofactor_request *r,
			   struct store_credentials *c, uint64_t account_id,
			   const char *address,
			   const uint8_t session_hash[STORE_SESSION_HASH_SIZE]);
/* Whether the request checks the account's main password (making an app
 * password, turning TOTP off): such requests are guesses at it, throttled
 * like logins. */
bool twofactor_request_checks_password(const struct twofactor_request *r);
/* Marks the request refused unchecked (a lock window): it answers as a
 * wrong password does. */
void twofactor_request_refuse(struct twofactor_request *r);
/* Whether it ran and the password (or code) did not hold. */
bool twofactor_request_wrong(const struct twofactor_request *r);
/* What the request did, for the log and the audit log: a static string,
 * "security check failed" for a wrong password or code or a lock, NULL
 * when it changed nothing worth telling. */
const char *twofactor_request_what(const struct twofactor_request *r);
/* Appends the reply's fields (status, JSON) to a frame; "what happened"
 * for the log in what_r (a static string, NULL: nothing to log). */
void twofactor_request_reply(const struct twofactor_request *r, struct buf *out,
			     const char **what_r);

#endif
