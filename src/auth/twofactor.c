/* twofactor.c: second factors in the auth process. TOTP secrets are made
 * here from the CSPRNG and stored sealed (XChaCha20-Poly1305 with a key in
 * DATA/auth.key that only this process reads, the account id as associated
 * data so that a row cannot be moved to another account). A worker sees a
 * secret once, at enrollment, and never again. Login tickets live in this
 * process's memory only. Every read-check-write of a TOTP record happens
 * under one lock, so two concurrent requests cannot both use one code. */
#include "core/common.h"

#include "auth/twofactor.h"

#include "auth/password.h"
#include "auth/totp.h"
#include "core/ipc.h"
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <liboath/oath.h>

/* Recovery codes: 16 letters of the base32 alphabet (80 bits), shown in
 * groups of four. App passwords: 16 lowercase letters (75 bits), likewise.
 * Both are long enough that their stored hashes cannot be searched. */
#define RECOVERY_LETTERS 16
#define APP_LETTERS	 16
/* "xxxx-xxxx-xxxx-xxxx" and its NUL */
#define GROUPED_SIZE (16 + 3 + 1)
#define BOX_NONCE    crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define BOX_MAC	     crypto_aead_xchacha20poly1305_ietf_ABYTES

static uint8_t key[TWOFACTOR_KEY_SIZE];
static bool key_loaded;
static pthread_mutex_t totp_lock = PTHREAD_MUTEX_INITIALIZER;

struct ticket {
	uint8_t value[AUTH_TOKEN_SIZE];
	uint64_t account_id;
	time_t expires; /* 0: free slot */
	char remote[64];
	char user_agent[256];
};
static struct ticket tickets[TWOFACTOR_MAX_TICKETS];
static pthread_mutex_t tickets_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- Key ---- */

int twofactor_init(const char *data_dir, const char **error_r)
{
	static char error[512];
	if (totp_init() != 0) {
		*error_r = "liboath initialisation failed";
		return -1;
	}
	char path[4096];
	int n = snprintf(path, sizeof(path), "%s/%s", data_dir,
			 TWOFACTOR_KEY_FILE);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		*error_r = "data directory path too long";
		return -1;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT) {
		uint8_t fresh[TWOFACTOR_KEY_SIZE];
		randombytes_buf(fresh, sizeof(fresh));
		int w = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
			     0600);
		bool ok = w >= 0 &&
			  write(w, fresh, sizeof(fresh)) ==
				  (ssize_t)sizeof(fresh) &&
			  fsync(w) == 0;
		if (w >= 0 && close(w) != 0)
			ok = false;
		sodium_memzero(fresh, sizeof(fresh));
		if (!ok && w >= 0)
			unlink(path);
		/* Another auth process may have won the race: read what is
		 * there. */
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	}
	if (fd < 0) {
		snprintf(error, sizeof(error), "%s: %s", path, strerror(errno));
		*error_r = error;
		return -1;
	}
	ssize_t got = read(fd, key, sizeof(key));
	close(fd);
	if (got != (ssize_t)sizeof(key)) {
		snprintf(error, sizeof(error), "%s: not a %d-byte key", path,
			 TWOFACTOR_KEY_SIZE);
		*error_r = error;
		return -1;
	}
	key_loaded = true;
	return 0;
}

void twofactor_shutdown(void)
{
	sodium_memzero(key, sizeof(key));
	key_loaded = false;
	pthread_mutex_lock(&tickets_lock);
	sodium_memzero(tickets, sizeof(tickets));
	pthread_mutex_unlock(&tickets_lock);
}

static void account_ad(uint64_t account_id, uint8_t ad[16])
{
	memcpy(ad, "dijk totp", 8);
	for (int i = 0; i < 8; i++)
		ad[8 + i] = (uint8_t)(account_id >> (56 - 8 * i));
}

static int seal(uint64_t account_id, const uint8_t secret[TOTP_SECRET_SIZE],
		struct store_totp *t)
{
	if (!key_loaded)
		return -1;
	uint8_t ad[16];
	account_ad(account_id, ad);
	randombytes_buf(t->box, BOX_NONCE);
	unsigned long long n = 0;
	crypto_aead_xchacha20poly1305_ietf_encrypt(
		t->box + BOX_NONCE, &n, secret, TOTP_SECRET_SIZE, ad,
		sizeof(ad), NULL, t->box, key);
	t->box_size = BOX_NONCE + (size_t)n;
	return 0;
}

static int unseal(uint64_t account_id, const struct store_totp *t,
		  uint8_t secret_r[TOTP_SECRET_SIZE])
{
	if (!key_loaded ||
	    t->box_size != BOX_NONCE + TOTP_SECRET_SIZE + BOX_MAC)
		return -1;
	uint8_t ad[16];
	account_ad(account_id, ad);
	unsigned long long n = 0;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(
		    secret_r, &n, NULL, t->box + BOX_NONCE,
		    t->box_size - BOX_NONCE, ad, sizeof(ad), t->box,
		    key) != 0 ||
	    n != TOTP_SECRET_SIZE) {
		sodium_memzero(secret_r, TOTP_SECRET_SIZE);
		return -1;
	}
	return 0;
}

/* ---- Codes ---- */

/* count random letters of alphabet, grouped by four with '-'. */
static void random_grouped(const char *alphabet, char out[GROUPED_SIZE])
{
	uint32_t size = (uint32_t)strlen(alphabet);
	size_t w = 0;
	for (int i = 0; i < 16; i++) {
		if (i > 0 && i % 4 == 0)
			out[w++] = '-';
		out[w++] = alphabet[randombytes_uniform(size)];
	}
	out[w] = '\0';
}

/* The letters of a typed code, lowercased, without '-' or spaces, into
 * out (want + 1 bytes); -1 unless exactly want letters of alphabet. */
static int normalize(struct slice in, const char *alphabet, size_t want,
		     char *out)
{
	size_t w = 0;
	for (size_t i = 0; i < in.n; i++) {
		char ch = (char)in.p[i];
		if (ch == '-' || ch == ' ')
			continue;
		if (ch >= 'A' && ch <= 'Z')
			ch = (char)(ch - 'A' + 'a');
		if (ch == '\0' || strchr(alphabet, ch) == NULL || w >= want)
			return -1;
		out[w++] = ch;
	}
	out[w] = '\0';
	return w == want ? 0 : -1;
}

static const char recovery_alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
static const char app_alphabet[] = "abcdefghijklmnopqrstuvwxyz";

static void recovery_hash(uint64_t account_id, const char *letters,
			  uint8_t out[STORE_RECOVERY_HASH_SIZE])
{
	crypto_hash_sha256_state st;
	uint8_t id[8];
	for (int i = 0; i < 8; i++)
		id[i] = (uint8_t)(account_id >> (56 - 8 * i));
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, id, sizeof(id));
	crypto_hash_sha256_update(&st, (const uint8_t *)letters,
				  strlen(letters));
	crypto_hash_sha256_final(&st, out);
}

/* Checks a TOTP or recovery code for the account and stores the new
 * state. The caller holds totp_lock. */
static enum totp_result code_check(struct store_credentials *c,
				   uint64_t account_id, struct store_totp *t,
				   struct slice code)
{
	const char *error;
	time_t now = time(NULL);
	struct totp_state st = {.last_step = t->last_step,
				.failures = t->failures,
				.locked_until = (time_t)t->locked_until};
	enum totp_result r = TOTP_WRONG;
	char letters[RECOVERY_LETTERS + 1];
	if (totp_locked(&st, now)) {
		r = TOTP_LOCKED;
	} else if (code.n == TOTP_DIGITS) {
		uint8_t secret[TOTP_SECRET_SIZE];
		if (unseal(account_id, t, secret) != 0) {
			log_error("totp: the secret of account %llu does not"
				  " open with auth.key",
				  (unsigned long long)account_id);
			return TOTP_WRONG;
		}
		r = totp_check(slice_make(secret, sizeof(secret)), &st, now,
			       code);
		sodium_memzero(secret, sizeof(secret));
	} else if (t->enabled && normalize(code, recovery_alphabet,
					   RECOVERY_LETTERS, letters) == 0) {
		uint8_t hash[STORE_RECOVERY_HASH_SIZE];
		recovery_hash(account_id, letters, hash);
		int used = store_recovery_use(c, account_id, hash, &error);
		if (used < 0)
			log_error("recovery code: %s", error);
		if (used > 0) {
			st.failures = 0;
			r = TOTP_OK;
		} else {
			r = totp_fail(&st, now);
		}
	} else {
		r = totp_fail(&st, now);
	}
	sodium_memzero(letters, sizeof(letters));
	t->last_step = st.last_step;
	t->failures = st.failures;
	t->locked_until = st.locked_until;
	if (store_totp_set(c, account_id, t, &error) != 0) {
		log_error("totp: %s", error);
		/* Unrecorded, a good code could be used again. */
		if (r == TOTP_OK)
			r = TOTP_WRONG;
	}
	if (r == TOTP_LOCKED)
		log_warning("totp: account %llu locked after wrong codes",
			    (unsigned long long)account_id);
	return r;
}

/* ---- Tickets ---- */

int twofactor_web_login(struct store_credentials *c, uint64_t account_id,
			const char *remote, const char *user_agent,
			uint8_t ticket_r[AUTH_TOKEN_SIZE])
{
	const char *error;
	struct store_totp t;
	int found = store_totp_get(c, account_id, &t, &error);
	if (found < 0) {
		log_error("totp: %s", error);
		return -1;
	}
	if (found == 0 || !t.enabled)
		return 0;
	time_t now = time(NULL);
	pthread_mutex_lock(&tickets_lock);
	struct ticket *slot = &tickets[0];
	for (size_t i = 0; i < TWOFACTOR_MAX_TICKETS; i++) {
		if (tickets[i].expires <= now) {
			slot = &tickets[i];
			break;
		}
		if (tickets[i].expires < slot->expires)
			slot = &tickets[i];
	}
	sodium_memzero(slot, sizeof(*slot));
	randombytes_buf(slot->value, sizeof(slot->value));
	slot->account_id = account_id;
	slot->expires = now + AUTH_TICKET_SECONDS;
	snprintf(slot->remote, sizeof(slot->remote), "%s", remote);
	snprintf(slot->user_agent, sizeof(slot->user_agent), "%s", user_agent);
	memcpy(ticket_r, slot->value, AUTH_TOKEN_SIZE);
	pthread_mutex_unlock(&tickets_lock);
	return 1;
}

uint64_t twofactor_redeem(struct store_credentials *c,
			  const uint8_t ticket[AUTH_TOKEN_SIZE],
			  const char *remote, struct slice code,
			  char *user_agent_r, size_t size)
{
	time_t now = time(NULL);
	uint64_t account_id = 0;
	pthread_mutex_lock(&tickets_lock);
	for (size_t i = 0; i < TWOFACTOR_MAX_TICKETS; i++) {
		struct ticket *k = &tickets[i];
		if (k->expires == 0 ||
		    sodium_memcmp(k->value, ticket, AUTH_TOKEN_SIZE) != 0)
			continue;
		if (k->expires > now && strcmp(k->remote, remote) == 0) {
			account_id = k->account_id;
			snprintf(user_agent_r, size, "%s", k->user_agent);
		}
		/* Single use, whatever comes of it. */
		sodium_memzero(k, sizeof(*k));
		break;
	}
	pthread_mutex_unlock(&tickets_lock);
	if (account_id == 0)
		return 0;
	const char *error;
	struct store_totp t;
	pthread_mutex_lock(&totp_lock);
	int found = store_totp_get(c, account_id, &t, &error);
	if (found < 0)
		log_error("totp: %s", error);
	enum totp_result r = TOTP_WRONG;
	/* Turned off meanwhile: the password alone would do now, but this
	 * login began under the old rule; let it start again. */
	if (found > 0 && t.enabled)
		r = code_check(c, account_id, &t, code);
	pthread_mutex_unlock(&totp_lock);
	sodium_memzero(&t, sizeof(t));
	return r == TOTP_OK ? account_id : 0;
}

/* ---- App passwords ---- */

/* The salt of an account's app passwords: one per account, derived from
 * auth.key, so that one Argon2id computation of a candidate can be
 * compared with all of them (a login never costs more with more app
 * passwords). The passwords are random, so a shared salt gives nothing
 * away. */
static void app_salt(uint64_t account_id, uint8_t salt[crypto_pwhash_SALTBYTES])
{
	uint8_t in[16];
	memcpy(in, "dijk app", 8);
	for (int i = 0; i < 8; i++)
		in[8 + i] = (uint8_t)(account_id >> (56 - 8 * i));
	crypto_generichash(salt, crypto_pwhash_SALTBYTES, in, sizeof(in), key,
			   sizeof(key));
}

/* Argon2id of password with the account's app salt at the policy's
 * parameters. */
static int app_hash(uint64_t account_id, struct slice password, uint8_t out[32])
{
	uint8_t salt[crypto_pwhash_SALTBYTES];
	app_salt(account_id, salt);
	return crypto_pwhash(out, 32, (const char *)password.p, password.n,
			     salt, PASSWORD_OPSLIMIT,
			     (size_t)PASSWORD_MEMLIMIT_KIB * 1024,
			     crypto_pwhash_ALG_ARGON2ID13);
}

/* The PHC string of an app password. */
static int app_phc(uint64_t account_id, const uint8_t hash[32],
		   char out[PASSWORD_PHC_MAX])
{
	uint8_t salt[crypto_pwhash_SALTBYTES];
	app_salt(account_id, salt);
	char salt_text[32], hash_text[48];
	sodium_bin2base64(salt_text, sizeof(salt_text), salt, sizeof(salt),
			  sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
	sodium_bin2base64(hash_text, sizeof(hash_text), hash, 32,
			  sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
	int n = snprintf(
		out, PASSWORD_PHC_MAX, "$argon2id$v=19$m=%d,t=%d,p=1$%s$%s",
		PASSWORD_MEMLIMIT_KIB, PASSWORD_OPSLIMIT, salt_text, hash_text);
	sodium_memzero(hash_text, sizeof(hash_text));
	return n < 0 || n >= PASSWORD_PHC_MAX ? -1 : 0;
}

struct app_match {
	uint64_t account_id;
	const uint8_t *hash;
	int64_t matched; /* id, 0: none */
	size_t count;
};

static void app_compare(const struct store_app_password *a, void *context)
{
	struct app_match *m = context;
	char expect[PASSWORD_PHC_MAX];
	m->count++;
	if (app_phc(m->account_id, m->hash, expect) == 0 &&
	    strlen(a->phc) == strlen(expect) &&
	    sodium_memcmp(a->phc, expect, strlen(expect)) == 0 &&
	    m->matched == 0)
		m->matched = a->id;
	sodium_memzero(expect, sizeof(expect));
}

void twofactor_protocol_dummy(struct slice password)
{
	password_verify_dummy(password);
	uint8_t hash[32];
	if (app_hash(0, password, hash) == 0)
		sodium_memzero(hash, sizeof(hash));
}

int twofactor_protocol_password(struct store_credentials *c,
				uint64_t account_id, const char *phc,
				struct slice password)
{
	const char *error;
	bool main_holds = password_verify(phc, password);
	struct store_totp t;
	int totp = store_totp_get(c, account_id, &t, &error);
	if (totp < 0)
		log_error("totp: %s", error);
	/* The main password opens IMAP and SMTP only without TOTP (a pending
	 * enrollment does not count): with it, the password alone is not
	 * enough anywhere. When that cannot be told, it does not open. */
	bool main_ok = main_holds && (totp == 0 || (totp > 0 && !t.enabled));
	sodium_memzero(&t, sizeof(t));
	/* A login the main password opens says so in its answer: the time
	 * taken can tell nothing more, and a second Argon2id would only
	 * double the cost of every ordinary login. Otherwise the candidate's
	 * app hash is computed, also when the main password held but TOTP
	 * refuses it, so that the time does not tell that it held. */
	if (main_ok)
		return 1;
	char letters[APP_LETTERS + 1];
	uint8_t hash[32];
	int result = 0;
	bool shaped =
		normalize(password, app_alphabet, APP_LETTERS, letters) == 0;
	if (app_hash(account_id,
		     shaped ? slice_make(letters, APP_LETTERS) : password,
		     hash) == 0 &&
	    shaped) {
		struct app_match m = {.account_id = account_id, .hash = hash};
		if (store_app_password_list(c, account_id, app_compare, &m,
					    &error) != 0)
			log_error("app passwords: %s", error);
		if (m.matched != 0) {
			result = 2;
			if (store_app_password_touch(c, m.matched, time(NULL),
						     &error) != 0)
				log_error("app passwords: %s", error);
		}
	}
	sodium_memzero(letters, sizeof(letters));
	sodium_memzero(hash, sizeof(hash));
	return result;
}

/* ---- Security requests of a live session ---- */

struct twofactor_request {
	enum auth_security_op op;
	char remote[64];
	uint8_t arg1[AUTH_SECURITY_MAX_ARG];
	size_t arg1_len;
	uint8_t arg2[AUTH_SECURITY_MAX_ARG];
	size_t arg2_len;
	/* result */
	enum auth_security_status status;
	json_t *reply;
	const char *what; /* for the log */
};

struct twofactor_request *twofactor_request_parse(struct slice *cursor)
{
	struct slice op, remote, a1, a2;
	if (ipc_get_bytes(cursor, &op) != 0 || op.n != 1 || op.p[0] == 0 ||
	    op.p[0] > AUTH_SECURITY_OP_MAX ||
	    ipc_get_bytes(cursor, &remote) != 0 || remote.n >= 64 ||
	    memchr(remote.p, '\0', remote.n) != NULL ||
	    ipc_get_bytes(cursor, &a1) != 0 || a1.n > AUTH_SECURITY_MAX_ARG ||
	    ipc_get_bytes(cursor, &a2) != 0 || a2.n > AUTH_SECURITY_MAX_ARG)
		return NULL;
	struct twofactor_request *r = xcalloc(1, sizeof(*r));
	r->op = (enum auth_security_op)op.p[0];
	memcpy(r->remote, remote.p, remote.n);
	memcpy(r->arg1, a1.p, a1.n);
	r->arg1_len = a1.n;
	memcpy(r->arg2, a2.p, a2.n);
	r->arg2_len = a2.n;
	r->status = AUTH_SECURITY_UNAVAILABLE;
	return r;
}

void twofactor_request_free(struct twofactor_request **rp)
{
	struct twofactor_request *r = *rp;
	if (r == NULL)
		return;
	json_decref(r->reply);
	sodium_memzero(r, sizeof(*r));
	free(r);
	*rp = NULL;
}

void twofactor_request_remote(const struct twofactor_request *r, char *out,
			      size_t size)
{
	snprintf(out, size, "%s", r->remote);
}

static void public_id(const uint8_t hash[STORE_SESSION_HASH_SIZE], char out[17])
{
	sodium_bin2hex(out, 17, hash, 8);
}

struct session_list {
	json_t *array;
	const uint8_t *current;
	/* for a revoke: */
	const char *wanted;
	uint8_t found[STORE_SESSION_HASH_SIZE];
	bool hit;
};

static void session_item(const struct store_session *s, void *context)
{
	struct session_list *l = context;
	char id[17];
	public_id(s->hash, id);
	if (l->wanted != NULL) {
		if (strcmp(id, l->wanted) == 0) {
			memcpy(l->found, s->hash, sizeof(l->found));
			l->hit = true;
		}
		return;
	}
	/* The agent is printable ASCII (the http worker made it so): a cut
	 * anywhere keeps it valid. */
	char agent[TWOFACTOR_MAX_AGENT_LISTED + 1];
	snprintf(agent, sizeof(agent), "%s", s->user_agent);
	json_array_append_new(l->array,
			      json_pack("{s:s, s:I, s:I, s:s, s:s, s:b}", "id",
					id, "created", (json_int_t)s->created,
					"last_used", (json_int_t)s->last_used,
					"remote", s->remote, "user_agent",
					agent, "current",
					memcmp(s->hash, l->current,
					       STORE_SESSION_HASH_SIZE) == 0));
}

static void app_item(const struct store_app_password *a, void *context)
{
	json_array_append_new(context,
			      json_pack("{s:I, s:s, s:I, s:I}", "id",
					(json_int_t)a->id, "name", a->name,
					"created", (json_int_t)a->created,
					"last_used", (json_int_t)a->last_used));
}

static void count_item(const struct store_app_password *a, void *context)
{
	(void)a;
	(*(size_t *)context)++;
}

static void op_status(struct twofactor_request *r, struct store_credentials *c,
		      uint64_t account_id, const uint8_t *session_hash)
{
	const char *error;
	struct store_totp t;
	int totp = store_totp_get(c, account_id, &t, &error);
	bool enabled = totp > 0 && t.enabled;
	sodium_memzero(&t, sizeof(t));
	int left = totp > 0 ? store_recovery_count(c, account_id, &error) : 0;
	struct session_list l = {.array = json_array(),
				 .current = session_hash};
	json_t *apps = json_array();
	if (totp < 0 || left < 0 ||
	    store_app_password_list(c, account_id, app_item, apps, &error) !=
		    0 ||
	    store_session_list(c, account_id, TWOFACTOR_MAX_SESSIONS_LISTED,
			       session_item, &l, &error) != 0) {
		log_error("security status: %s", error);
		json_decref(apps);
		json_decref(l.array);
		return;
	}
	r->reply = json_pack("{s:b, s:i, s:o, s:o}", "totp", enabled,
			     "recovery_left", left, "app_passwords", apps,
			     "sessions", l.array);
	r->status = AUTH_SECURITY_DONE;
}

static void op_totp_begin(struct twofactor_request *r,
			  struct store_credentials *c, uint64_t account_id,
			  const char *address)
{
	const char *error;
	struct store_totp t = {0};
	int found = store_totp_get(c, account_id, &t, &error);
	if (found < 0) {
		log_error("totp: %s", error);
		return;
	}
	if (found > 0 && t.enabled) {
		r->status = AUTH_SECURITY_REFUSED;
		return;
	}
	uint8_t secret[TOTP_SECRET_SIZE];
	randombytes_buf(secret, sizeof(secret));
	memset(&t, 0, sizeof(t));
	char *base32 = NULL;
	size_t base32_len = 0;
	if (seal(account_id, secret, &t) != 0 ||
	    oath_base32_encode((const char *)secret, sizeof(secret), &base32,
			       &base32_len) != OATH_OK ||
	    store_totp_set(c, account_id, &t, &error) != 0) {
		log_error("totp enrollment failed for %s", address);
		sodium_memzero(secret, sizeof(secret));
		if (base32 != NULL) {
			sodium_memzero(base32, base32_len);
			free(base32);
		}
		return;
	}
	sodium_memzero(secret, sizeof(secret));
	/* Base32 without padding, as authenticator apps expect. */
	while (base32_len > 0 && base32[base32_len - 1] == '=')
		base32[--base32_len] = '\0';
	/* The issuer is the mail domain: what the user sees in the app. The
	 * address is letters, digits and . - _ + @ (store-checked), so only
	 * '@' and '+' need escaping in the label. */
	const char *at = strrchr(address, '@');
	const char *issuer = at ? at + 1 : "dijk";
	char label[3 * STORE_MAX_ADDRESS];
	size_t w = 0;
	for (const char *p = address; *p && w + 4 < sizeof(label); p++) {
		if (*p == '@' || *p == '+' || *p == ':' || *p == '%') {
			w += (size_t)snprintf(label + w, sizeof(label) - w,
					      "%%%02X", (unsigned char)*p);
		} else {
			label[w++] = *p;
		}
	}
	label[w] = '\0';
	char *uri = xasprintf("otpauth://totp/%s:%s?secret=%s&issuer=%s"
			      "&algorithm=SHA1&digits=%d&period=%d",
			      issuer, label, base32, issuer, TOTP_DIGITS,
			      TOTP_STEP_SECONDS);
	r->reply = json_pack("{s:s, s:s}", "secret", base32, "uri", uri);
	sodium_memzero(uri, strlen(uri));
	free(uri);
	sodium_memzero(base32, base32_len);
	free(base32);
	r->status = AUTH_SECURITY_DONE;
	r->what = "totp enrollment started";
}

static enum auth_security_status status_of(enum totp_result t)
{
	return t == TOTP_OK	  ? AUTH_SECURITY_DONE
	       : t == TOTP_LOCKED ? AUTH_SECURITY_LOCKED
				  : AUTH_SECURITY_WRONG;
}

static void op_totp_confirm(struct twofactor_request *r,
			    struct store_credentials *c, uint64_t account_id,
			    const uint8_t *session_hash)
{
	const char *error;
	struct store_totp t;
	pthread_mutex_lock(&totp_lock);
	int found = store_totp_get(c, account_id, &t, &error);
	if (found < 0)
		log_error("totp: %s", error);
	if (found == 0 || (found > 0 && t.enabled))
		r->status = AUTH_SECURITY_REFUSED;
	if (found <= 0 || t.enabled) {
		pthread_mutex_unlock(&totp_lock);
		return;
	}
	enum totp_result tr =
		code_check(c, account_id, &t, slice_make(r->arg1, r->arg1_len));
	r->status = status_of(tr);
	if (tr != TOTP_OK) {
		pthread_mutex_unlock(&totp_lock);
		return;
	}
	char codes[TWOFACTOR_RECOVERY_CODES][GROUPED_SIZE];
	uint8_t hashes[TWOFACTOR_RECOVERY_CODES][STORE_RECOVERY_HASH_SIZE];
	json_t *list = json_array();
	for (size_t i = 0; i < TWOFACTOR_RECOVERY_CODES; i++) {
		char letters[RECOVERY_LETTERS + 1];
		random_grouped(recovery_alphabet, codes[i]);
		normalize(slice_cstr(codes[i]), recovery_alphabet,
			  RECOVERY_LETTERS, letters);
		recovery_hash(account_id, letters, hashes[i]);
		sodium_memzero(letters, sizeof(letters));
		json_array_append_new(list, json_string(codes[i]));
	}
	t.enabled = true;
	/* Codes first: TOTP never turns on without its way back in. */
	if (store_recovery_set(c, account_id, hashes, TWOFACTOR_RECOVERY_CODES,
			       &error) != 0 ||
	    store_totp_set(c, account_id, &t, &error) != 0) {
		log_error("totp: %s", error);
		json_decref(list);
		r->status = AUTH_SECURITY_UNAVAILABLE;
	} else {
		r->reply = json_pack("{s:o}", "recovery", list);
		r->what = "totp turned on";
		/* Sessions made with the password alone (perhaps by whoever
		 * made the user want a second factor) end here. */
		if (store_session_delete_others(c, account_id, session_hash,
						&error) < 0)
			log_error("totp: %s", error);
	}
	pthread_mutex_unlock(&totp_lock);
	sodium_memzero(codes, sizeof(codes));
	sodium_memzero(&t, sizeof(t));
}

static void op_totp_disable(struct twofactor_request *r,
			    struct store_credentials *c, uint64_t account_id)
{
	const char *error;
	char *phc = NULL;
	int found = store_credentials_get_password(c, account_id, &phc, &error);
	if (found < 0) {
		log_error("credential lookup: %s", error);
		return;
	}
	struct slice password = slice_make(r->arg1, r->arg1_len);
	bool holds = found > 0 && password_verify(phc, password);
	if (found == 0)
		password_verify_dummy(password);
	if (phc != NULL) {
		sodium_memzero(phc, strlen(phc));
		free(phc);
	}
	struct store_totp t;
	pthread_mutex_lock(&totp_lock);
	found = store_totp_get(c, account_id, &t, &error);
	if (found < 0)
		log_error("totp: %s", error);
	if (found == 0 || (found > 0 && !t.enabled)) {
		r->status = AUTH_SECURITY_REFUSED;
	} else if (found > 0 && !holds) {
		/* A wrong password counts like a wrong code: together they
		 * are one guess at the pair. */
		struct totp_state st = {.last_step = t.last_step,
					.failures = t.failures,
					.locked_until = (time_t)t.locked_until};
		r->status = status_of(totp_fail(&st, time(NULL)));
		t.failures = st.failures;
		t.locked_until = st.locked_until;
		if (store_totp_set(c, account_id, &t, &error) != 0)
			log_error("totp: %s", error);
	} else if (found > 0) {
		r->status = status_of(code_check(
			c, account_id, &t, slice_make(r->arg2, r->arg2_len)));
		if (r->status == AUTH_SECURITY_DONE) {
			if (store_totp_delete(c, account_id, &error) != 0) {
				log_error("totp: %s", error);
				r->status = AUTH_SECURITY_UNAVAILABLE;
			} else {
				r->what = "totp turned off";
			}
		}
	}
	pthread_mutex_unlock(&totp_lock);
	sodium_memzero(&t, sizeof(t));
}

/* Whether password (arg2 of r) is the account's main password: a new
 * way in to the mailbox is made only for one who knows it, not for a
 * stolen session cookie alone. */
static bool main_password_holds(struct twofactor_request *r,
				struct store_credentials *c,
				uint64_t account_id)
{
	const char *error;
	char *phc = NULL;
	int found = store_credentials_get_password(c, account_id, &phc, &error);
	if (found < 0)
		log_error("credential lookup: %s", error);
	struct slice password = slice_make(r->arg2, r->arg2_len);
	bool holds = found > 0 && password_verify(phc, password);
	if (found <= 0)
		password_verify_dummy(password);
	if (phc != NULL) {
		sodium_memzero(phc, strlen(phc));
		free(phc);
	}
	return holds;
}

static void op_app_create(struct twofactor_request *r,
			  struct store_credentials *c, uint64_t account_id)
{
	const char *error;
	if (!main_password_holds(r, c, account_id)) {
		r->status = AUTH_SECURITY_WRONG;
		return;
	}
	/* A name is 1 to STORE_APP_PASSWORD_NAME_MAX bytes of UTF-8 text
	 * without control characters (it is shown back, escaped). */
	bool ok = r->arg1_len > 0 && r->arg1_len <= STORE_APP_PASSWORD_NAME_MAX;
	for (size_t i = 0; ok && i < r->arg1_len; i++)
		ok = r->arg1[i] >= 0x20 && r->arg1[i] != 0x7f;
	char name[STORE_APP_PASSWORD_NAME_MAX + 1];
	if (ok) {
		memcpy(name, r->arg1, r->arg1_len);
		name[r->arg1_len] = '\0';
		json_t *check = json_string(name); /* NULL unless UTF-8 */
		ok = check != NULL;
		json_decref(check);
	}
	size_t count = 0;
	if (ok && store_app_password_list(c, account_id, count_item, &count,
					  &error) != 0) {
		log_error("app passwords: %s", error);
		return;
	}
	if (!ok || count >= TWOFACTOR_MAX_APP_PASSWORDS) {
		r->status = AUTH_SECURITY_REFUSED;
		return;
	}
	char shown[GROUPED_SIZE], letters[APP_LETTERS + 1],
		phc[PASSWORD_PHC_MAX];
	uint8_t hash[32];
	random_grouped(app_alphabet, shown);
	normalize(slice_cstr(shown), app_alphabet, APP_LETTERS, letters);
	int64_t id = 0;
	if (app_hash(account_id, slice_make(letters, APP_LETTERS), hash) == 0 &&
	    app_phc(account_id, hash, phc) == 0 &&
	    store_app_password_add(c, account_id, name, phc, time(NULL), &id,
				   &error) == 0) {
		r->reply = json_pack("{s:I, s:s, s:s}", "id", (json_int_t)id,
				     "name", name, "password", shown);
		r->status = AUTH_SECURITY_DONE;
		r->what = "app password created";
	} else {
		log_error("app password: cannot store it");
	}
	sodium_memzero(shown, sizeof(shown));
	sodium_memzero(letters, sizeof(letters));
	sodium_memzero(phc, sizeof(phc));
	sodium_memzero(hash, sizeof(hash));
}

/* A decimal id of 1 to 18 digits; 0 when not one. */
static int64_t parse_id(const uint8_t *p, size_t n)
{
	if (n == 0 || n > 18)
		return 0;
	int64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return 0;
		v = v * 10 + (p[i] - '0');
	}
	return v;
}

static void op_app_revoke(struct twofactor_request *r,
			  struct store_credentials *c, uint64_t account_id)
{
	const char *error;
	int64_t id = parse_id(r->arg1, r->arg1_len);
	int n = id > 0 ? store_app_password_delete(c, account_id, id, &error)
		       : 0;
	if (n < 0) {
		log_error("app passwords: %s", error);
		return;
	}
	r->status = n > 0 ? AUTH_SECURITY_DONE : AUTH_SECURITY_NOT_FOUND;
	if (n > 0)
		r->what = "app password revoked";
}

static void op_session_revoke(struct twofactor_request *r,
			      struct store_credentials *c, uint64_t account_id)
{
	const char *error;
	char wanted[17];
	r->status = AUTH_SECURITY_NOT_FOUND;
	if (r->arg1_len != 16)
		return;
	memcpy(wanted, r->arg1, 16);
	wanted[16] = '\0';
	/* The list is of this account's sessions only: another account's
	 * id is never found. */
	struct session_list l = {.wanted = wanted};
	if (store_session_list(c, account_id, SIZE_MAX >> 1, session_item, &l,
			       &error) != 0) {
		log_error("session list: %s", error);
		r->status = AUTH_SECURITY_UNAVAILABLE;
		return;
	}
	if (!l.hit)
		return;
	int n = store_session_delete(c, l.found, &error);
	if (n < 0) {
		log_error("session: %s", error);
		r->status = AUTH_SECURITY_UNAVAILABLE;
		return;
	}
	if (n > 0) {
		r->status = AUTH_SECURITY_DONE;
		r->what = "web session revoked";
	}
}

void twofactor_request_run(struct twofactor_request *r,
			   struct store_credentials *c, uint64_t account_id,
			   const char *address,
			   const uint8_t session_hash[STORE_SESSION_HASH_SIZE])
{
	r->status = AUTH_SECURITY_UNAVAILABLE;
	switch (r->op) {
	case AUTH_SECURITY_STATUS:
		op_status(r, c, account_id, session_hash);
		break;
	case AUTH_SECURITY_TOTP_BEGIN:
		op_totp_begin(r, c, account_id, address);
		break;
	case AUTH_SECURITY_TOTP_CONFIRM:
		op_totp_confirm(r, c, account_id, session_hash);
		break;
	case AUTH_SECURITY_TOTP_DISABLE:
		op_totp_disable(r, c, account_id);
		break;
	case AUTH_SECURITY_APP_CREATE:
		op_app_create(r, c, account_id);
		break;
	case AUTH_SECURITY_APP_REVOKE:
		op_app_revoke(r, c, account_id);
		break;
	case AUTH_SECURITY_SESSION_REVOKE:
		op_session_revoke(r, c, account_id);
		break;
	}
	if (r->status == AUTH_SECURITY_DONE && r->reply == NULL)
		r->reply = json_object();
}

bool twofactor_request_checks_password(const struct twofactor_request *r)
{
	return r->op == AUTH_SECURITY_APP_CREATE ||
	       r->op == AUTH_SECURITY_TOTP_DISABLE;
}

void twofactor_request_refuse(struct twofactor_request *r)
{
	sodium_memzero(r->arg1, sizeof(r->arg1));
	sodium_memzero(r->arg2, sizeof(r->arg2));
	r->status = AUTH_SECURITY_WRONG;
	json_decref(r->reply);
	r->reply = NULL;
}

bool twofactor_request_wrong(const struct twofactor_request *r)
{
	return r->status == AUTH_SECURITY_WRONG ||
	       r->status == AUTH_SECURITY_LOCKED;
}

const char *twofactor_request_what(const struct twofactor_request *r)
{
	if (r->status == AUTH_SECURITY_WRONG ||
	    r->status == AUTH_SECURITY_LOCKED)
		return "security check failed";
	return r->status == AUTH_SECURITY_DONE ? r->what : NULL;
}

void twofactor_request_reply(const struct twofactor_request *r, struct buf *out,
			     const char **what_r)
{
	uint8_t status = (uint8_t)r->status;
	ipc_put_bytes(out, slice_make(&status, 1));
	char *text = r->status == AUTH_SECURITY_DONE && r->reply != NULL
			     ? json_dumps(r->reply, JSON_COMPACT)
			     : NULL;
	ipc_put_bytes(out, slice_cstr(text ? text : ""));
	if (text != NULL) {
		/* It may hold a secret, recovery codes or a password. */
		sodium_memzero(text, strlen(text));
		free(text);
	}
	*what_r = r->what;
}
