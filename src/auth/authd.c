/* authd.c: the auth process. Accepts worker connections on a Unix socket,
 * checks passwords on a thread pool (Argon2id never runs on the loop), and
 * upgrades stored hashes that are below policy. It also keeps the webmail's
 * sessions: it makes a session only where a password held, hands its token
 * out once and keeps just the token's SHA-256, so a worker that is taken
 * over can neither mint sessions nor read them. A password changes here
 * too, asked for by a live session that knows the old one. Second factors,
 * app passwords and the Sessions page's requests are in twofactor.c; this
 * file only routes them. */
#include "core/common.h"

#include "auth/auth.h"

#include "auth/audit.h"
#include "auth/auditd.h"
#include "auth/password.h"
#include "auth/twofactor.h"
#include "auth/throttle.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/ipc.h"
#include "core/privsep.h"
#include "core/log.h"
#include "core/pool.h"
#include "store/store.h"

#include <pthread.h>
#include <signal.h>
#include <sodium.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

struct authd_conn;

struct authd {
	struct event_base *base;
	struct pool *pool;
	char *data_dir;
	struct authd_conn *conns;
	time_t session_idle, session_lifetime;
	struct throttle *throttle; /* failed-login counters and tarpit */
};

struct authd_conn {
	struct authd *d;
	struct authd_conn *prev, *next;
	struct bufferevent *bev;
	unsigned refs; /* the connection itself + jobs in flight */
	bool closed;
};

struct authd_job {
	struct authd_conn *conn;
	uint32_t id;
	enum ipc_type type;
	uint8_t token[AUTH_TOKEN_SIZE]; /* in (check, revoke) or out (login) */
	bool token_made;
	bool ticket_made;	 /* token is a second-factor ticket */
	uint64_t ticket_account; /* whose ticket, for the audit log only */
	struct twofactor_request *security; /* IPC_SECURITY */
	bool throttled; /* refused unchecked, during a lock window */
	/* What a password change is throttled under: "session:" and the
	 * session's public id (its old password is the guess). */
	char change_key[40];
	char user_agent[256];
	char host[AUTH_HOST_SIZE]; /* a web session's host (auth.h) */
	bool check_host;	   /* IPC_SESSION_CHECK: it must match */
	char username[AUTH_MAX_USERNAME + 1];
	uint8_t password[PASSWORD_MAX_LENGTH]; /* the old one, for a change */
	size_t password_len;
	uint8_t new_password[PASSWORD_MAX_LENGTH];
	size_t new_password_len;
	char protocol[16];
	char remote[64];
	/* result */
	uint64_t account_id;
	char address[STORE_MAX_ADDRESS];
	enum auth_password_result outcome; /* of a change */
	int sessions_ended;		   /* by a change */
	/* An activity page (IPC_AUDIT_QUERY): what is asked and the reply */
	int64_t before_id;
	uint64_t limit;
	struct buf reply;
	uint64_t expired_account; /* a session found over and ended */
};

/* Each pool thread keeps its own store handles, in a slot of its own so
 * that the process closes them after the threads have stopped. */
struct thread_handles {
	struct store *store;
	struct store_credentials *credentials;
};
static struct thread_handles handles[AUTH_THREADS];
static size_t handles_used;
static pthread_mutex_t handles_lock = PTHREAD_MUTEX_INITIALIZER;
static __thread struct thread_handles *thread_handles;

static struct thread_handles *my_handles(void)
{
	if (thread_handles == NULL) {
		pthread_mutex_lock(&handles_lock);
		DIJK_ASSERT(handles_used < AUTH_THREADS);
		thread_handles = &handles[handles_used++];
		pthread_mutex_unlock(&handles_lock);
	}
	return thread_handles;
}

static void close_handles(void)
{
	for (size_t i = 0; i < handles_used; i++) {
		store_close(&handles[i].store);
		store_credentials_close(&handles[i].credentials);
	}
	handles_used = 0;
}

static void conn_unref(struct authd_conn *c)
{
	DIJK_ASSERT(c->refs > 0);
	if (--c->refs > 0)
		return;
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	free(c);
}

static void conn_close(struct authd_conn *c)
{
	if (c->closed)
		return;
	c->closed = true;
	if (c->prev)
		c->prev->next = c->next;
	else
		c->d->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	bufferevent_free(c->bev);
	c->bev = NULL;
	conn_unref(c);
}

static void session_hash(const uint8_t token[AUTH_TOKEN_SIZE],
			 uint8_t hash[STORE_SESSION_HASH_SIZE])
{
	crypto_hash_sha256(hash, token, AUTH_TOKEN_SIZE);
}

/* A session of a password that held. */
static void session_make(struct authd_job *job,
			 struct store_credentials *credentials)
{
	const char *error;
	struct store_session session = {.account_id = job->account_id};
	randombytes_buf(job->token, sizeof(job->token));
	session_hash(job->token, session.hash);
	session.created = session.last_used = time(NULL);
	snprintf(session.remote, sizeof(session.remote), "%s", job->remote);
	snprintf(session.host, sizeof(session.host), "%s", job->host);
	snprintf(session.user_agent, sizeof(session.user_agent), "%s",
		 job->user_agent);
	if (store_session_add(credentials, &session, &error) != 0) {
		log_error("session: %s", error);
		job->account_id = 0;
		return;
	}
	job->token_made = true;
}

/* Whether the token is a live session; its account in job->account_id. */
static void session_check(struct authd_job *job, struct store *store,
			  struct store_credentials *credentials)
{
	const struct authd *d = job->conn->d;
	const char *error;
	uint8_t hash[STORE_SESSION_HASH_SIZE];
	session_hash(job->token, hash);
	struct store_session session;
	int found = store_session_get(credentials, hash, &session, &error);
	if (found < 0)
		log_error("session: %s", error);
	if (found <= 0)
		return;
	/* A session holds at the host it was made at only (a cookie of
	 * one brand's host is refused at another's); it stays for its own
	 * host. An empty host (a session from before hosts were kept)
	 * holds nowhere. */
	if (job->check_host &&
	    (session.host[0] == '\0' || strcmp(session.host, job->host) != 0)) {
		log_warning("web session of account %llu made at %s refused"
			    " at %s",
			    (unsigned long long)session.account_id,
			    session.host[0] ? session.host : "(no host)",
			    job->host[0] ? job->host : "(no host)");
		return;
	}
	time_t now = time(NULL);
	if (now - session.last_used > d->session_idle ||
	    now - session.created > d->session_lifetime ||
	    store_user_address(store, session.account_id, job->address,
			       sizeof(job->address), &error) != 0) {
		/* Over, or its user is gone: it can never be used again. */
		int deleted = store_session_delete(credentials, hash, &error);
		if (deleted < 0)
			log_error("session: %s", error);
		if (deleted > 0)
			job->expired_account = session.account_id;
		return;
	}
	/* Use soon after the last one is not worth a write: within a minute,
	 * or a quarter of the idle time when that is shorter (so that a
	 * session in use never looks idle). */
	time_t skip = d->session_idle / 4 < 60 ? d->session_idle / 4 : 60;
	if (now - session.last_used >= skip &&
	    store_session_touch(credentials, hash, now, &error) != 0)
		log_error("session: %s", error);
	job->account_id = session.account_id;
}

static void session_revoke(struct authd_job *job, struct store *store,
			   struct store_credentials *credentials)
{
	const char *error;
	uint8_t hash[STORE_SESSION_HASH_SIZE];
	session_hash(job->token, hash);
	struct store_session session;
	if (store_session_get(credentials, hash, &session, &error) <= 0)
		return;
	int deleted = store_session_delete(credentials, hash, &error);
	if (deleted < 0)
		log_error("session: %s", error);
	if (deleted <= 0)
		return;
	job->account_id = session.account_id;
	if (store_user_address(store, session.account_id, job->address,
			       sizeof(job->address), &error) != 0)
		snprintf(job->address, sizeof(job->address), "account %llu",
			 (unsigned long long)session.account_id);
}

/* Whether the account's stored hash is still phc: a password change may
 * have run on the other thread while this one was hashing. */
static bool password_unchanged(struct store_credentials *credentials,
			       uint64_t account_id, const char *phc)
{
	const char *error;
	char *now = NULL;
	int found = store_credentials_get_password(credentials, account_id,
						   &now, &error);
	if (found < 0)
		log_error("credential lookup: %s", error);
	bool same = found > 0 && strcmp(now, phc) == 0;
	if (now != NULL) {
		sodium_memzero(now, strlen(now));
		free(now);
	}
	return same;
}

/* A password change asked for by a live session: the old password must
 * hold and the new one keep the policy. The account's other sessions end
 * before the new hash is stored, so that a failure never leaves them
 * behind a new password, and again after it, for a login with the old one
 * that finished meanwhile. */
static void password_change(struct authd_job *job, struct store *store,
			    struct store_credentials *credentials)
{
	const char *error;
	struct slice old = slice_make(job->password, job->password_len);
	struct slice fresh =
		slice_make(job->new_password, job->new_password_len);
	session_check(job, store, credentials);
	uint64_t account_id = job->account_id;
	job->account_id = 0;
	if (account_id == 0) {
		job->outcome = AUTH_PASSWORD_NO_SESSION;
		return;
	}
	/* The policy first: it costs nothing and tells nothing of the old
	 * password. */
	if (fresh.n < AUTH_NEW_PASSWORD_MIN || fresh.n > PASSWORD_MAX_LENGTH ||
	    memchr(fresh.p, '\0', fresh.n) != NULL) {
		job->outcome = AUTH_PASSWORD_REFUSED;
		return;
	}
	char *phc = NULL;
	int found = store_credentials_get_password(credentials, account_id,
						   &phc, &error);
	if (found < 0) {
		log_error("credential lookup: %s", error);
		job->outcome = AUTH_PASSWORD_UNAVAILABLE;
		return;
	}
	bool holds = false;
	if (found == 0)
		password_verify_dummy(old);
	else
		holds = password_verify(phc, old);
	if (phc != NULL) {
		sodium_memzero(phc, strlen(phc));
		free(phc);
	}
	if (!holds) {
		job->outcome = AUTH_PASSWORD_WRONG;
		return;
	}
	if (fresh.n == old.n && sodium_memcmp(fresh.p, old.p, old.n) == 0) {
		job->outcome = AUTH_PASSWORD_REFUSED;
		return;
	}
	uint8_t keep[STORE_SESSION_HASH_SIZE];
	session_hash(job->token, keep);
	char made[PASSWORD_PHC_MAX];
	int ended = -1;
	job->outcome = AUTH_PASSWORD_UNAVAILABLE;
	if (password_hash(fresh, made) != 0) {
		log_error("password change: hashing failed");
	} else if ((ended = store_session_delete_others(credentials, account_id,
							keep, &error)) < 0 ||
		   store_credentials_set_password(credentials, account_id, made,
						  &error) != 0) {
		log_error("password change: %s", error);
	} else {
		int later = store_session_delete_others(credentials, account_id,
							keep, &error);
		/* Stored, and the sessions older than it are gone anyway. */
		if (later < 0)
			log_error("password change: %s", error);
		else
			ended += later;
		job->outcome = AUTH_PASSWORD_CHANGED;
		job->account_id = account_id;
		job->sessions_ended = ended;
	}
	sodium_memzero(made, sizeof(made));
}

/* Whether a web login whose password held must show a second factor
 * first: then job->token is the ticket. A store failure refuses. */
static bool second_factor_needed(struct authd_job *job,
				 struct store_credentials *credentials)
{
	int need =
		twofactor_web_login(credentials, job->account_id, job->remote,
				    job->user_agent, job->token);
	job->ticket_made = need > 0;
	return need != 0;
}

/* The second step of a web login: the ticket (in job->token) and a code
 * (in job->password). */
static void login_code(struct authd_job *job, struct store *store,
		       struct store_credentials *credentials)
{
	const char *error;
	uint64_t account_id =
		twofactor_redeem(credentials, job->token, job->remote,
				 slice_make(job->password, job->password_len),
				 job->user_agent, sizeof(job->user_agent));
	sodium_memzero(job->password, sizeof(job->password));
	sodium_memzero(job->token, sizeof(job->token));
	if (account_id == 0 ||
	    store_user_address(store, account_id, job->address,
			       sizeof(job->address), &error) != 0)
		return;
	snprintf(job->username, sizeof(job->username), "%s", job->address);
	job->account_id = account_id;
	session_make(job, credentials);
}

/* A request of the Security page: for a live session only. */
static void security_request(struct authd_job *job, struct store *store,
			     struct store_credentials *credentials)
{
	session_check(job, store, credentials);
	if (job->account_id == 0)
		return;
	uint8_t hash[STORE_SESSION_HASH_SIZE];
	session_hash(job->token, hash);
	twofactor_request_run(job->security, credentials, job->account_id,
			      job->address, hash);
}

static void job_work(void *arg)
{
	struct authd_job *job = arg;
	const char *error;
	struct slice password = slice_make(job->password, job->password_len);
	job->account_id = 0;
	job->outcome = AUTH_PASSWORD_UNAVAILABLE;
	struct thread_handles *h = my_handles();
	if (h->store == NULL)
		h->store = store_open(job->conn->d->data_dir, &error);
	if (h->credentials == NULL)
		h->credentials =
			store_credentials_open(job->conn->d->data_dir, &error);
	struct store *thread_store = h->store;
	struct store_credentials *thread_credentials = h->credentials;
	if (thread_store == NULL || thread_credentials == NULL) {
		log_error("cannot open the store: %s", error);
		if (job->type == IPC_AUTH_PASSWORD ||
		    job->type == IPC_WEB_LOGIN)
			password_verify_dummy(password);
		return;
	}
	if (job->type == IPC_SESSION_CHECK) {
		session_check(job, thread_store, thread_credentials);
		return;
	}
	if (job->type == IPC_SESSION_REVOKE) {
		session_revoke(job, thread_store, thread_credentials);
		return;
	}
	if (job->type == IPC_PASSWORD_CHANGE) {
		password_change(job, thread_store, thread_credentials);
		return;
	}
	if (job->type == IPC_SECURITY) {
		security_request(job, thread_store, thread_credentials);
		return;
	}
	if (job->type == IPC_WEB_LOGIN_CODE) {
		login_code(job, thread_store, thread_credentials);
		return;
	}
	if (job->type == IPC_AUDIT_QUERY) {
		uint8_t hash[STORE_SESSION_HASH_SIZE];
		char session[AUDIT_SESSION_ID_SIZE];
		session_check(job, thread_store, thread_credentials);
		session_hash(job->token, hash);
		audit_session_id(hash, session);
		auditd_page(job->account_id, session, job->before_id,
			    (size_t)job->limit, job->id, &job->reply);
		return;
	}
	uint64_t account_id = 0;
	char *phc = NULL;
	int found = store_user_lookup(thread_store, slice_cstr(job->username),
				      &account_id, &error);
	if (found > 0)
		found = store_credentials_get_password(
			thread_credentials, account_id, &phc, &error);
	else if (found == 0)
		/* The same read for an unknown user (account 0 never exists),
		 * so that its reply comes no sooner than a wrong password's. */
		(void)store_credentials_get_password(thread_credentials, 0,
						     &phc, &error);
	if (found < 0)
		log_error("credential lookup: %s", error);
	/* IMAP and SMTP take app passwords, and the main password only
	 * while TOTP is off; the webmail takes the main password alone. */
	int holds = 0;
	if (found <= 0 && job->type == IPC_AUTH_PASSWORD)
		twofactor_protocol_dummy(password);
	else if (found <= 0)
		password_verify_dummy(password);
	else if (job->type == IPC_AUTH_PASSWORD)
		holds = twofactor_protocol_password(thread_credentials,
						    account_id, phc, password);
	else
		holds = password_verify(phc, password) ? 1 : 0;
	if (holds != 0) {
		job->account_id = account_id;
		store_user_address(thread_store, account_id, job->address,
				   sizeof(job->address), &error);
		/* Only the main password's hash (not an app password's). */
		if (holds == 1 && password_needs_rehash(phc)) {
			char upgraded[PASSWORD_PHC_MAX];
			/* Never over a password changed while this one was
			 * hashed. (A window of one statement remains: the
			 * store has no compare-and-set.) */
			if (password_hash(password, upgraded) == 0 &&
			    password_unchanged(thread_credentials, account_id,
					       phc) &&
			    store_credentials_set_password(thread_credentials,
							   account_id, upgraded,
							   &error) == 0) {
				log_info("upgraded the password hash of %s",
					 job->address);
				sodium_memzero(phc, strlen(phc));
				free(phc);
				phc = xstrdup(upgraded);
			}
			sodium_memzero(upgraded, sizeof(upgraded));
		}
	}
	sodium_memzero(job->password, sizeof(job->password));
	if (job->type == IPC_WEB_LOGIN && job->account_id != 0 &&
	    second_factor_needed(job, thread_credentials)) {
		/* Nothing of the account goes back before the second step. */
		job->ticket_account = job->account_id;
		job->account_id = 0;
		job->address[0] = '\0';
	} else if (job->type == IPC_WEB_LOGIN && job->account_id != 0) {
		session_make(job, thread_credentials);
		/* A password change that stored its hash before the session
		 * was made may have ended the other sessions before it too:
		 * a session of the old password must not outlive it. */
		if (job->token_made &&
		    !password_unchanged(thread_credentials, account_id, phc)) {
			uint8_t hash[STORE_SESSION_HASH_SIZE];
			session_hash(job->token, hash);
			if (store_session_delete(thread_credentials, hash,
						 &error) < 0)
				log_error("session: %s", error);
			job->token_made = false;
			job->account_id = 0;
		}
	}
	if (phc != NULL) {
		sodium_memzero(phc, strlen(phc));
		free(phc);
	}
}

/* The name an attempt counts under in the throttle: the username tried,
 * or for a password change its session. */
static const char *throttle_name(const struct authd_job *job)
{
	return job->change_key[0] != '\0' ? job->change_key : job->username;
}

static void log_password_change(const struct authd_job *job)
{
	static const char *const why[] = {
		[AUTH_PASSWORD_NO_SESSION] = "no session",
		[AUTH_PASSWORD_WRONG] = "wrong password",
		[AUTH_PASSWORD_REFUSED] = "new password refused",
		[AUTH_PASSWORD_UNAVAILABLE] = "failed",
	};
	if (job->throttled)
		log_info("web password change throttled for %s from %s",
			 job->change_key, job->remote);
	else if (job->outcome == AUTH_PASSWORD_CHANGED)
		log_info("web password change ok for %s from %s;"
			 " %d other sessions ended",
			 job->address, job->remote, job->sessions_ended);
	else
		log_info("web password change %s for %s from %s",
			 why[job->outcome],
			 job->address[0] ? job->address : "?", job->remote);
}

/* The audit log's entry for what the auth process decided. */
static void audit_job(const struct authd_job *job)
{
	struct store_audit_entry e = {
		.account_id = job->ticket_made ? job->ticket_account
					       : job->account_id,
	};
	const char *action = NULL, *detail = "";
	static const char *const changes[] = {
		[AUTH_PASSWORD_CHANGED] = "password change",
		[AUTH_PASSWORD_NO_SESSION] = "password change failed",
		[AUTH_PASSWORD_WRONG] = "password change failed",
		[AUTH_PASSWORD_REFUSED] = "password change failed",
		[AUTH_PASSWORD_UNAVAILABLE] = "password change failed",
	};
	if (job->ticket_made) {
		/* The password held; the login waits for its second factor.
		 * The account is known here but not yet to the worker. */
		action = "login password ok, code needed";
		detail = job->user_agent;
	} else if (job->type == IPC_AUTH_PASSWORD ||
		   job->type == IPC_WEB_LOGIN) {
		action = job->throttled	   ? "login throttled"
			 : job->account_id ? "login"
					   : "login failed";
		detail = job->user_agent;
	} else if (job->type == IPC_WEB_LOGIN_CODE) {
		action = job->account_id ? "login with code"
					 : "login code failed";
		detail = job->user_agent;
	} else if (job->type == IPC_SECURITY && job->security != NULL) {
		action = twofactor_request_what(job->security);
	} else if (job->type == IPC_SESSION_REVOKE && job->account_id != 0) {
		action = "logout";
	} else if (job->type == IPC_PASSWORD_CHANGE &&
		   job->outcome != AUTH_PASSWORD_NO_SESSION) {
		action = changes[job->outcome];
	}
	if (job->expired_account != 0) {
		struct store_audit_entry ended = {.account_id =
							  job->expired_account};
		uint8_t hash[STORE_SESSION_HASH_SIZE];
		session_hash(job->token, hash);
		audit_session_id(hash, ended.session);
		audit_field_set(ended.protocol, sizeof(ended.protocol),
				slice_cstr("web"));
		audit_field_set(ended.action, sizeof(ended.action),
				slice_cstr("session expired"));
		auditd_record(&ended);
	}
	if (action == NULL)
		return;
	const char *user = job->account_id || job->address[0] ? job->address
							      : job->username;
	audit_field_set(e.user, sizeof(e.user), slice_cstr(user));
	/* Only the webmail has sessions to end. */
	audit_field_set(e.protocol, sizeof(e.protocol),
			slice_cstr(job->protocol[0] ? job->protocol : "web"));
	audit_field_set(e.remote, sizeof(e.remote), slice_cstr(job->remote));
	audit_field_set(e.action, sizeof(e.action), slice_cstr(action));
	audit_field_set(e.detail, sizeof(e.detail), slice_cstr(detail));
	if (job->type != IPC_AUTH_PASSWORD && !job->ticket_made &&
	    ((job->type != IPC_WEB_LOGIN && job->type != IPC_WEB_LOGIN_CODE) ||
	     job->token_made)) {
		uint8_t hash[STORE_SESSION_HASH_SIZE];
		session_hash(job->token, hash);
		audit_session_id(hash, e.session);
	}
	auditd_record(&e);
}

static void job_done(void *arg)
{
	struct authd_job *job = arg;
	struct authd_conn *c = job->conn;
	audit_job(job);
	if (job->type == IPC_AUDIT_QUERY) {
		if (!c->closed && ipc_end(&job->reply) == 0)
			bufferevent_write(c->bev, job->reply.p, job->reply.n);
		buf_free(&job->reply);
		conn_unref(c);
		sodium_memzero(job, sizeof(*job));
		free(job);
		return;
	}
	const char *security_what = NULL;
	if (job->ticket_made) {
		log_info("%s login password ok for %s from %s; second factor"
			 " needed",
			 job->protocol, job->username, job->remote);
		/* The password held: no failure to count. */
		throttle_checked(c->d->throttle, job->username, job->remote,
				 true);
	} else if (job->type == IPC_AUTH_PASSWORD ||
		   job->type == IPC_WEB_LOGIN) {
		log_info("%s login %s for %s from %s", job->protocol,
			 job->throttled	   ? "throttled"
			 : job->account_id ? "ok"
					   : "failed",
			 job->username, job->remote);
		if (!job->throttled)
			throttle_checked(c->d->throttle, job->username,
					 job->remote, job->account_id != 0);
	} else if (job->type == IPC_WEB_LOGIN_CODE) {
		log_info("%s login %s for %s from %s", job->protocol,
			 job->account_id ? "ok" : "failed",
			 job->username[0] ? job->username : "?", job->remote);
	} else if (job->type == IPC_SECURITY && job->change_key[0] != '\0') {
		if (job->throttled)
			log_info("web security request throttled for %s from"
				 " %s",
				 job->change_key, job->remote);
		else
			throttle_checked(
				c->d->throttle, job->change_key, job->remote,
				!twofactor_request_wrong(job->security));
	} else if (job->type == IPC_SESSION_REVOKE && job->account_id != 0) {
		log_info("web session of %s ended", job->address);
	} else if (job->type == IPC_PASSWORD_CHANGE) {
		log_password_change(job);
		/* Only a wrong old password counts as a guess. */
		if (!job->throttled)
			throttle_checked(c->d->throttle, job->change_key,
					 job->remote,
					 job->outcome != AUTH_PASSWORD_WRONG);
	}
	if (!c->closed) {
		struct buf out;
		buf_init(&out, IPC_MAX_FRAME);
		ipc_begin(&out,
			  job->security ? IPC_SECURITY_REPLY : IPC_AUTH_REPLY,
			  job->id);
		ipc_put_u64(&out, job->account_id);
		if (job->security != NULL)
			twofactor_request_reply(job->security, &out,
						&security_what);
		else
			ipc_put_bytes(&out,
				      slice_cstr(job->account_id ? job->address
								 : ""));
		if (job->token_made || job->ticket_made)
			ipc_put_bytes(&out, slice_make(job->token,
						       sizeof(job->token)));
		if (job->type == IPC_PASSWORD_CHANGE) {
			uint8_t outcome = (uint8_t)job->outcome;
			ipc_put_bytes(&out, slice_make(&outcome, 1));
		}
		if (ipc_end(&out) == 0)
			bufferevent_write(c->bev, out.p, out.n);
		sodium_memzero(out.p, out.n);
		buf_free(&out);
	}
	if (security_what != NULL)
		log_info("%s for %s from %s", security_what, job->address,
			 job->remote);
	conn_unref(c);
	twofactor_request_free(&job->security);
	/* Tokens and passwords. */
	sodium_memzero(job, sizeof(*job));
	free(job);
}

/* Puts a job on the pool: at once, on the throttle's yes to a login
 * (throttle.h), or once the audit log has written what came before an
 * activity page. */
static void job_submit(void *arg)
{
	struct authd_job *job = arg;
	pool_submit(job->conn->d->pool, job_work, job_done, job);
}

/* The throttle's no: in a lock window even the right password fails,
 * unchecked, with the reply of a wrong one. */
static void job_refuse(void *arg)
{
	struct authd_job *job = arg;
	job->throttled = true;
	job->account_id = 0;
	job->outcome = AUTH_PASSWORD_WRONG;
	if (job->security != NULL)
		twofactor_request_refuse(job->security);
	sodium_memzero(job->password, sizeof(job->password));
	sodium_memzero(job->new_password, sizeof(job->new_password));
	job_done(job);
}

static int copy_field(struct slice f, char *dst, size_t size)
{
	if (f.n >= size || memchr(f.p, '\0', f.n) != NULL)
		return -1;
	memcpy(dst, f.p, f.n);
	dst[f.n] = '\0';
	return 0;
}

static int parse_token(struct slice *cursor, struct authd_job *job)
{
	struct slice token;
	if (ipc_get_bytes(cursor, &token) != 0 || token.n != sizeof(job->token))
		return -1;
	memcpy(job->token, token.p, token.n);
	return 0;
}

static int handle_frame(struct authd_conn *c, const struct ipc_frame *f)
{
	if (f->type == IPC_AUDIT_EVENT)
		return auditd_event_frame(f);
	struct authd_job *job = xcalloc(1, sizeof(*job));
	job->type = (enum ipc_type)f->type;
	struct slice cursor = f->payload, user = {0}, pass = {0}, proto,
		     remote = {0}, agent, fresh = {0}, host;
	bool ok;
	switch (f->type) {
	case IPC_AUTH_PASSWORD:
		ok = ipc_get_bytes(&cursor, &user) == 0 &&
		     ipc_get_bytes(&cursor, &pass) == 0 &&
		     ipc_get_bytes(&cursor, &proto) == 0 &&
		     ipc_get_bytes(&cursor, &remote) == 0 &&
		     copy_field(proto, job->protocol, sizeof(job->protocol)) ==
			     0;
		break;
	case IPC_WEB_LOGIN:
		ok = ipc_get_bytes(&cursor, &user) == 0 &&
		     ipc_get_bytes(&cursor, &pass) == 0 &&
		     ipc_get_bytes(&cursor, &remote) == 0 &&
		     ipc_get_bytes(&cursor, &agent) == 0 &&
		     copy_field(agent, job->user_agent,
				sizeof(job->user_agent)) == 0 &&
		     ipc_get_bytes(&cursor, &host) == 0 &&
		     copy_field(host, job->host, sizeof(job->host)) == 0;
		snprintf(job->protocol, sizeof(job->protocol), "web");
		break;
	case IPC_SESSION_CHECK:
		ok = parse_token(&cursor, job) == 0 &&
		     ipc_get_bytes(&cursor, &host) == 0 &&
		     copy_field(host, job->host, sizeof(job->host)) == 0;
		job->check_host = true;
		break;
	case IPC_SESSION_REVOKE:
		ok = parse_token(&cursor, job) == 0;
		break;
	case IPC_SECURITY:
		ok = parse_token(&cursor, job) == 0 &&
		     (job->security = twofactor_request_parse(&cursor)) != NULL;
		if (ok)
			twofactor_request_remote(job->security, job->remote,
						 sizeof(job->remote));
		snprintf(job->protocol, sizeof(job->protocol), "web");
		break;
	case IPC_WEB_LOGIN_CODE:
		ok = parse_token(&cursor, job) == 0 &&
		     ipc_get_bytes(&cursor, &pass) == 0 &&
		     ipc_get_bytes(&cursor, &remote) == 0 &&
		     ipc_get_bytes(&cursor, &agent) == 0 &&
		     pass.n <= sizeof(job->password) &&
		     copy_field(remote, job->remote, sizeof(job->remote)) ==
			     0 &&
		     copy_field(agent, job->user_agent,
				sizeof(job->user_agent)) == 0 &&
		     ipc_get_bytes(&cursor, &host) == 0 &&
		     copy_field(host, job->host, sizeof(job->host)) == 0;
		snprintf(job->protocol, sizeof(job->protocol), "web");
		break;
	case IPC_AUDIT_QUERY:
		ok = parse_token(&cursor, job) == 0 &&
		     ipc_get_u64(&cursor, (uint64_t *)&job->before_id) == 0 &&
		     ipc_get_u64(&cursor, &job->limit) == 0;
		buf_init(&job->reply, IPC_MAX_FRAME);
		break;
	case IPC_PASSWORD_CHANGE:
		ok = parse_token(&cursor, job) == 0 &&
		     ipc_get_bytes(&cursor, &pass) == 0 &&
		     ipc_get_bytes(&cursor, &fresh) == 0 &&
		     ipc_get_bytes(&cursor, &remote) == 0 &&
		     pass.n <= sizeof(job->password) &&
		     fresh.n <= sizeof(job->new_password) &&
		     copy_field(remote, job->remote, sizeof(job->remote)) == 0;
		snprintf(job->protocol, sizeof(job->protocol), "web");
		break;
	default:
		ok = false;
	}
	if (ok && (f->type == IPC_AUTH_PASSWORD || f->type == IPC_WEB_LOGIN))
		ok = copy_field(user, job->username, sizeof(job->username)) ==
			     0 &&
		     pass.n <= sizeof(job->password) &&
		     copy_field(remote, job->remote, sizeof(job->remote)) == 0;
	if (!ok || cursor.n != 0) {
		twofactor_request_free(&job->security);
		buf_free(&job->reply);
		sodium_memzero(job, sizeof(*job));
		free(job);
		return -1;
	}
	if (f->type == IPC_AUTH_PASSWORD || f->type == IPC_WEB_LOGIN ||
	    f->type == IPC_PASSWORD_CHANGE || f->type == IPC_WEB_LOGIN_CODE) {
		memcpy(job->password, pass.p, pass.n);
		job->password_len = pass.n;
	}
	if (f->type == IPC_PASSWORD_CHANGE) {
		memcpy(job->new_password, fresh.p, fresh.n);
		job->new_password_len = fresh.n;
	}
	job->id = f->id;
	job->conn = c;
	c->refs++;
	/* Requests of a session that check the main password are guesses
	 * at it: they count under the session, like a password change. */
	bool session_guess = f->type == IPC_PASSWORD_CHANGE ||
			     (f->type == IPC_SECURITY &&
			      twofactor_request_checks_password(job->security));
	if (session_guess) {
		uint8_t hash[STORE_SESSION_HASH_SIZE];
		session_hash(job->token, hash);
		char hex[2 * 8 + 1];
		sodium_bin2hex(hex, sizeof(hex), hash, 8);
		snprintf(job->change_key, sizeof(job->change_key), "session:%s",
			 hex);
	}
	if (f->type == IPC_AUTH_PASSWORD || f->type == IPC_WEB_LOGIN ||
	    session_guess)
		throttle_attempt(c->d->throttle, throttle_name(job),
				 job->remote, job);
	else if (f->type == IPC_AUDIT_QUERY)
		auditd_after_queued(job_submit, job);
	else
		job_submit(job);
	return 0;
}

static void conn_read(struct bufferevent *bev, void *arg)
{
	struct authd_conn *c = arg;
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
		if (r < 0 || handle_frame(c, &f) != 0) {
			log_warning("malformed request from a worker; closing");
			conn_close(c);
			return;
		}
		/* The payload was copied into the job. */
		evbuffer_drain(in, consumed);
	}
}

static void conn_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		conn_close(arg);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd,
		      struct sockaddr *sa, int socklen, void *arg)
{
	(void)l;
	(void)sa;
	(void)socklen;
	struct authd *d = arg;
	struct authd_conn *c = xcalloc(1, sizeof(*c));
	c->d = d;
	c->refs = 1;
	c->next = d->conns;
	if (d->conns)
		d->conns->prev = c;
	d->conns = c;
	c->bev = bufferevent_socket_new(d->base, fd, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(c->bev, conn_read, NULL, conn_event, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, 4 * IPC_MAX_FRAME);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	event_base_loopexit(arg, NULL);
}

int auth_socket_path(const char *data_dir, char *path_r, size_t size)
{
	int n = snprintf(path_r, size, "%s/run/auth.sock", data_dir);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

int authd_run(const char *data_dir, int listen_fd, const struct config *config)
{
	log_set_process("auth");
	if (password_init() != 0) {
		log_error("libsodium initialisation failed");
		return 1;
	}
	const char *error;
	if (twofactor_init(data_dir, &error) != 0) {
		log_error("second factors: %s", error);
		return 1;
	}
	struct authd d = {0};
	d.data_dir = xstrdup(data_dir);
	d.session_idle = config->session_idle_seconds;
	d.session_lifetime = config->session_lifetime_seconds;
	d.base = event_base_new();
	d.pool = pool_new(d.base, AUTH_THREADS);
	auditd_start(d.base, d.pool, d.data_dir, config->audit_retention_days);
	d.throttle = throttle_new(d.base, config->auth_clock_scale, job_submit,
				  job_refuse);
	struct evconnlistener *l = evconnlistener_new(
		d.base, on_accept, &d, LEV_OPT_CLOSE_ON_EXEC, -1, listen_fd);
	if (l == NULL) {
		log_error("cannot listen on the auth socket");
		return 1;
	}
	struct event *term = evsignal_new(d.base, SIGTERM, on_signal, d.base);
	struct event *intr = evsignal_new(d.base, SIGINT, on_signal, d.base);
	event_add(term, NULL);
	event_add(intr, NULL);
	/* Setup is done: from here on, the role's user and filter. */
	privsep_lock_down();
	process_signals_ready();
	log_info("ready");
	event_base_dispatch(d.base);
	evconnlistener_free(l);
	auditd_stop();
	throttle_stop(d.throttle);
	pool_free(&d.pool);
	auditd_close();
	throttle_free(&d.throttle);
	close_handles();
	twofactor_shutdown();
	while (d.conns != NULL)
		conn_close(d.conns);
	event_free(term);
	event_free(intr);
	event_base_free(d.base);
	free(d.data_dir);
	return 0;
}
