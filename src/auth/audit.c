/* audit.c: the chain of MACs over the audit log, its key, verification and
 * retention. Rows are stored by store/sqlite/audit.c; this file decides
 * every id, time and MAC. */
#include "core/common.h"

#include "auth/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#define AUDIT_SECONDS_PER_DAY 86400

struct audit_log {
	struct store_audit *store;
	uint8_t key[AUDIT_KEY_SIZE];
	char error[256];
};

static int read_key(const char *path, uint8_t key[AUDIT_KEY_SIZE])
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -1;
	uint8_t extra;
	ssize_t n = read(fd, key, AUDIT_KEY_SIZE);
	/* Exactly the key: a short or longer file is not one. */
	ssize_t more = n == AUDIT_KEY_SIZE ? read(fd, &extra, 1) : -1;
	close(fd);
	if (n != AUDIT_KEY_SIZE || more != 0) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

/* Makes the key file whole or not at all: written under a temporary name,
 * synced, then linked to its name, which fails if another writer (the CLI
 * and the auth process may start together) made one first. */
static int make_key(const char *path, const char *data_dir,
		    uint8_t key[AUDIT_KEY_SIZE])
{
	char tmp[4096];
	int n = snprintf(tmp, sizeof(tmp), "%s/.audit.key.%ld", data_dir,
			 (long)getpid());
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	unlink(tmp);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	randombytes_buf(key, AUDIT_KEY_SIZE);
	bool ok = write(fd, key, AUDIT_KEY_SIZE) == AUDIT_KEY_SIZE &&
		  fsync(fd) == 0;
	close(fd);
	int linked = ok ? link(tmp, path) : -1;
	int saved = errno;
	unlink(tmp);
	errno = saved;
	if (!ok || linked != 0)
		return -1;
	return 0;
}

static int load_key(const char *data_dir, uint8_t key[AUDIT_KEY_SIZE],
		    char *error, size_t size)
{
	char path[4096];
	int n = snprintf(path, sizeof(path), "%s/audit.key", data_dir);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		snprintf(error, size, "audit key: path too long");
		return -1;
	}
	if (read_key(path, key) == 0)
		return 0;
	if (errno == ENOENT) {
		if (make_key(path, data_dir, key) == 0)
			return 0;
		if (errno == EEXIST && read_key(path, key) == 0)
			return 0;
	}
	snprintf(error, size, "%s: %s", path, strerror(errno));
	sodium_memzero(key, AUDIT_KEY_SIZE);
	return -1;
}

struct audit_log *audit_open(const char *data_dir, const char **error_r)
{
	static __thread char open_error[4200];
	if (sodium_init() < 0) {
		*error_r = "audit: libsodium initialisation failed";
		return NULL;
	}
	struct audit_log *log = xcalloc(1, sizeof(*log));
	if (load_key(data_dir, log->key, open_error, sizeof(open_error)) != 0) {
		free(log);
		*error_r = open_error;
		return NULL;
	}
	log->store = store_audit_open(data_dir, error_r);
	if (log->store == NULL) {
		audit_close(&log);
		return NULL;
	}
	return log;
}

void audit_close(struct audit_log **logp)
{
	struct audit_log *log = *logp;
	if (log == NULL)
		return;
	store_audit_close(&log->store);
	sodium_memzero(log->key, sizeof(log->key));
	free(log);
	*logp = NULL;
}

struct store_audit *audit_store(struct audit_log *log)
{
	return log->store;
}

static void mac_u64(crypto_auth_hmacsha256_state *st, uint64_t v)
{
	uint8_t b[8];
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (56 - 8 * i));
	crypto_auth_hmacsha256_update(st, b, sizeof(b));
}

/* Length-prefixed, so that no two different entries encode alike. */
static void mac_text(crypto_auth_hmacsha256_state *st, const char *s)
{
	size_t n = strlen(s);
	mac_u64(st, n);
	crypto_auth_hmacsha256_update(st, (const uint8_t *)s, n);
}

void audit_mac(const uint8_t key[AUDIT_KEY_SIZE],
	       const uint8_t prev[STORE_AUDIT_MAC_SIZE],
	       const struct store_audit_entry *e,
	       uint8_t mac_r[STORE_AUDIT_MAC_SIZE])
{
	crypto_auth_hmacsha256_state st;
	crypto_auth_hmacsha256_init(&st, key, AUDIT_KEY_SIZE);
	crypto_auth_hmacsha256_update(&st, prev, STORE_AUDIT_MAC_SIZE);
	mac_u64(&st, (uint64_t)e->id);
	mac_u64(&st, (uint64_t)e->time);
	mac_u64(&st, e->account_id);
	mac_text(&st, e->user);
	mac_text(&st, e->protocol);
	mac_text(&st, e->remote);
	mac_text(&st, e->session);
	mac_text(&st, e->action);
	mac_text(&st, e->detail);
	crypto_auth_hmacsha256_final(&st, mac_r);
	sodium_memzero(&st, sizeof(st));
}

/* Appends inside the caller's write transaction. */
static int append_locked(struct audit_log *log, struct store_audit_entry *e,
			 const char **error_r)
{
	struct store_audit_entry *last = xcalloc(1, sizeof(*last));
	int found = store_audit_last(log->store, last, error_r);
	if (found < 0) {
		free(last);
		return -1;
	}
	uint8_t prev[STORE_AUDIT_MAC_SIZE] = {0};
	if (found > 0)
		memcpy(prev, last->mac, sizeof(prev));
	e->id = found > 0 ? last->id + 1 : 1;
	free(last);
	if (e->time == 0)
		e->time = (int64_t)time(NULL);
	audit_mac(log->key, prev, e, e->mac);
	return store_audit_insert(log->store, e, error_r);
}

int audit_append(struct audit_log *log, struct store_audit_entry *e,
		 const char **error_r)
{
	if (store_audit_begin(log->store, error_r) != 0)
		return -1;
	if (append_locked(log, e, error_r) != 0 ||
	    store_audit_commit(log->store, error_r) != 0) {
		store_audit_rollback(log->store);
		return -1;
	}
	return 0;
}

size_t audit_append_batch(struct audit_log *log, struct store_audit_entry **e,
			  size_t n, const char **error_r)
{
	if (store_audit_begin(log->store, error_r) == 0) {
		size_t i = 0;
		while (i < n && append_locked(log, e[i], error_r) == 0)
			i++;
		if (i == n && store_audit_commit(log->store, error_r) == 0)
			return n;
		store_audit_rollback(log->store);
	}
	size_t appended = 0;
	for (size_t i = 0; i < n; i++)
		if (audit_append(log, e[i], error_r) == 0)
			appended++;
	return appended;
}

/* The marker's detail, which verification reads back: the dropped ids,
 * the first day kept and the MAC of the last dropped entry. */
static void marker_detail(char *out, size_t size, int64_t first, int64_t last,
			  int64_t cutoff,
			  const uint8_t mac[STORE_AUDIT_MAC_SIZE])
{
	char hex[STORE_AUDIT_MAC_SIZE * 2 + 1];
	sodium_bin2hex(hex, sizeof(hex), mac, STORE_AUDIT_MAC_SIZE);
	time_t t = (time_t)cutoff;
	struct tm tm;
	char day[16] = "?";
	if (gmtime_r(&t, &tm) != NULL)
		strftime(day, sizeof(day), "%Y-%m-%d", &tm);
	snprintf(out, size, "dropped ids %lld-%lld, older than %s; last mac %s",
		 (long long)first, (long long)last, day, hex);
}

/* Reads back what marker_detail wrote: 0 with the last dropped id and its
 * MAC, -1 when detail is not a marker's. */
static int marker_parse(const char *detail, int64_t *last_r,
			uint8_t mac_r[STORE_AUDIT_MAC_SIZE])
{
	static const char head[] = "dropped ids ";
	if (strncmp(detail, head, sizeof(head) - 1) != 0)
		return -1;
	const char *p = detail + sizeof(head) - 1;
	char *end;
	errno = 0;
	long long first = strtoll(p, &end, 10);
	if (errno != 0 || end == p || *end != '-')
		return -1;
	p = end + 1;
	long long last = strtoll(p, &end, 10);
	if (errno != 0 || end == p || last < first)
		return -1;
	const char *m = strstr(end, "; last mac ");
	if (m == NULL)
		return -1;
	m += strlen("; last mac ");
	size_t got = 0;
	if (strlen(m) != STORE_AUDIT_MAC_SIZE * 2 ||
	    sodium_hex2bin(mac_r, STORE_AUDIT_MAC_SIZE, m, strlen(m), NULL,
			   &got, NULL) != 0 ||
	    got != STORE_AUDIT_MAC_SIZE)
		return -1;
	*last_r = last;
	return 0;
}

static int first_entry(const struct store_audit_entry *e, void *context)
{
	memcpy(context, e, sizeof(*e));
	return 1;
}

int audit_retention(struct audit_log *log, int64_t now, unsigned days,
		    int64_t *dropped_r, const char **error_r)
{
	*dropped_r = 0;
	if (days == 0)
		return 0;
	return audit_drop_before(log,
				 now - (int64_t)days * AUDIT_SECONDS_PER_DAY,
				 now, dropped_r, error_r);
}

int audit_drop_before(struct audit_log *log, int64_t cutoff, int64_t now,
		      int64_t *dropped_r, const char **error_r)
{
	*dropped_r = 0;
	/* Whole days: keep all of the day the limit falls in. */
	cutoff -= ((cutoff % AUDIT_SECONDS_PER_DAY) + AUDIT_SECONDS_PER_DAY) %
		  AUDIT_SECONDS_PER_DAY;
	struct store_audit_entry *first = xcalloc(1, sizeof(*first));
	struct store_audit_entry *marker = xcalloc(1, sizeof(*marker));
	int ret = -1;
	if (store_audit_begin(log->store, error_r) != 0)
		goto out;
	first->id = 0;
	struct store_audit_query oldest = {.limit = 1};
	if (store_audit_scan(log->store, &oldest, first_entry, first,
			     error_r) != 0)
		goto out;
	int64_t keep_from;
	int found = store_audit_first_since(log->store, cutoff, &keep_from,
					    error_r);
	if (found < 0)
		goto out;
	int64_t last_dropped = 0;
	if (first->id != 0) {
		if (found > 0) {
			last_dropped = keep_from - 1;
		} else {
			struct store_audit_entry *last = marker;
			if (store_audit_last(log->store, last, error_r) < 0)
				goto out;
			last_dropped = last->id;
		}
	}
	if (first->id == 0 || last_dropped < first->id) {
		ret = 0; /* nothing old enough */
		goto out;
	}
	struct store_audit_entry *dropped = marker;
	int got = store_audit_get(log->store, last_dropped, dropped, error_r);
	if (got == 0)
		*error_r = "audit retention: an entry is missing; run"
			   " 'dijk audit verify'";
	if (got != 1)
		goto out;
	uint8_t mac[STORE_AUDIT_MAC_SIZE];
	memcpy(mac, dropped->mac, sizeof(mac));
	memset(marker, 0, sizeof(*marker));
	marker->time = now;
	snprintf(marker->protocol, sizeof(marker->protocol), "auth");
	snprintf(marker->action, sizeof(marker->action), "%s",
		 AUDIT_RETENTION_ACTION);
	marker_detail(marker->detail, sizeof(marker->detail), first->id,
		      last_dropped, cutoff, mac);
	if (append_locked(log, marker, error_r) != 0 ||
	    store_audit_delete_through(log->store, last_dropped, dropped_r,
				       error_r) != 0 ||
	    store_audit_commit(log->store, error_r) != 0)
		goto out;
	ret = 0;
out:
	/* Nothing to undo after a commit. */
	store_audit_rollback(log->store);
	free(first);
	free(marker);
	return ret;
}

struct verify_state {
	struct audit_log *log;
	struct audit_verify_result *result;
	uint8_t prev[STORE_AUDIT_MAC_SIZE];
	int64_t prev_id;
	/* Looking for the marker that vouches for the first entry. */
	int64_t want_last;
	bool found_start;
};

static int find_marker(const struct store_audit_entry *e, void *context)
{
	struct verify_state *v = context;
	int64_t last;
	uint8_t mac[STORE_AUDIT_MAC_SIZE];
	if (marker_parse(e->detail, &last, mac) == 0 && last == v->want_last) {
		memcpy(v->prev, mac, sizeof(mac));
		v->found_start = true;
		return 1;
	}
	return 0;
}

static int check_entry(const struct store_audit_entry *e, void *context)
{
	struct verify_state *v = context;
	struct audit_verify_result *r = v->result;
	if (v->prev_id != 0 && e->id != v->prev_id + 1) {
		r->bad_id = e->id;
		snprintf(r->why, sizeof(r->why),
			 "entries %lld to %lld are missing",
			 (long long)v->prev_id + 1, (long long)e->id - 1);
		return 1;
	}
	uint8_t mac[STORE_AUDIT_MAC_SIZE];
	audit_mac(v->log->key, v->prev, e, mac);
	if (sodium_memcmp(mac, e->mac, sizeof(mac)) != 0) {
		r->bad_id = e->id;
		snprintf(r->why, sizeof(r->why),
			 v->prev_id == 0 && e->id > 1
				 ? "the first entry does not follow the"
				   " retention marker (entries removed)"
				 : "entry changed, inserted or one before it"
				   " removed");
		return 1;
	}
	memcpy(v->prev, e->mac, sizeof(v->prev));
	v->prev_id = e->id;
	r->count++;
	return 0;
}

int audit_verify(struct audit_log *log, struct audit_verify_result *result_r,
		 const char **error_r)
{
	memset(result_r, 0, sizeof(*result_r));
	struct verify_state v = {.log = log, .result = result_r};
	struct store_audit_entry *first = xcalloc(1, sizeof(*first));
	struct store_audit_query oldest = {.limit = 1};
	int ret = -1;
	/* One snapshot: a retention run meanwhile does not make the chain
	 * look broken. */
	if (store_audit_begin_read(log->store, error_r) != 0) {
		free(first);
		return -1;
	}
	if (store_audit_scan(log->store, &oldest, first_entry, first,
			     error_r) != 0)
		goto out;
	ret = 0;
	if (first->id == 0)
		goto out; /* empty */
	if (first->id > 1) {
		v.want_last = first->id - 1;
		struct store_audit_query markers = {
			.action = AUDIT_RETENTION_ACTION};
		if (store_audit_scan(log->store, &markers, find_marker, &v,
				     error_r) != 0) {
			ret = -1;
			goto out;
		}
		if (!v.found_start) {
			result_r->bad_id = first->id;
			snprintf(result_r->why, sizeof(result_r->why),
				 "entries before it were removed without a"
				 " retention marker");
			ret = 1;
			goto out;
		}
	}
	struct store_audit_query all = {0};
	if (store_audit_scan(log->store, &all, check_entry, &v, error_r) != 0)
		ret = -1;
	else if (result_r->bad_id != 0)
		ret = 1;
out:
	store_audit_rollback(log->store);
	free(first);
	return ret;
}
