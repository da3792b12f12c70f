/* cli_audit.c: dijk audit (list, verify, prune) and the entries that admin
 * commands write directly to the log. */
#include "core/common.h"

#include "cli_audit.h"

#include "auth/audit.h"
#include "core/config.h"
#include "store/store.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <unistd.h>

/* Parses T of the header into Unix seconds; -1 when it is neither. */
static int parse_when(const char *t, int64_t now, int64_t *when_r)
{
	char *end;
	errno = 0;
	unsigned long long n = strtoull(t, &end, 10);
	if (errno == 0 && end != t && end[0] != '\0' && end[1] == '\0' &&
	    t[0] >= '0' && t[0] <= '9' && n <= 100ull * 366 * 86400) {
		unsigned long long unit = end[0] == 'd'	  ? 86400
					  : end[0] == 'h' ? 3600
					  : end[0] == 'm' ? 60
					  : end[0] == 's' ? 1
							  : 0;
		if (unit == 0 || n * unit > (unsigned long long)now)
			return -1;
		*when_r = now - (int64_t)(n * unit);
		return 0;
	}
	static const char *const formats[] = {
		"%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M",
		"%Y-%m-%d %H:%M",    "%Y-%m-%d",
	};
	for (size_t i = 0; i < ARRAY_SIZE(formats); i++) {
		struct tm tm = {0};
		const char *rest = strptime(t, formats[i], &tm);
		if (rest != NULL && (*rest == '\0' || strcmp(rest, "Z") == 0)) {
			*when_r = (int64_t)timegm(&tm);
			return 0;
		}
	}
	return -1;
}

static void format_time(int64_t when, char *out, size_t size)
{
	time_t t = (time_t)when;
	struct tm tm;
	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, size, "%lld", (long long)when);
}

static struct audit_log *open_log(const char *data_dir)
{
	const char *error;
	struct audit_log *log = audit_open(data_dir, &error);
	if (log == NULL)
		dijk_fatal("%s", error);
	return log;
}

static int print_entry(const struct store_audit_entry *e, void *context)
{
	const bool *json = context;
	char when[32];
	format_time(e->time, when, sizeof(when));
	if (!*json) {
		printf("%-6lld %s %-28s %-10s %-16s %-16s %-16s %s\n",
		       (long long)e->id, when, e->user[0] ? e->user : "-",
		       e->protocol[0] ? e->protocol : "-",
		       e->remote[0] ? e->remote : "-",
		       e->session[0] ? e->session : "-", e->action, e->detail);
		return 0;
	}
	json_t *o = json_pack(
		"{sI ss sI sI ss ss ss ss ss ss}", "id", (json_int_t)e->id,
		"time", when, "unix", (json_int_t)e->time, "account_id",
		(json_int_t)e->account_id, "user", e->user, "protocol",
		e->protocol, "remote", e->remote, "session", e->session,
		"action", e->action, "detail", e->detail);
	char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
	if (line != NULL)
		printf("%s\n", line);
	else
		fprintf(stderr, "dijk: entry %lld cannot be shown as JSON\n",
			(long long)e->id);
	free(line);
	json_decref(o);
	return 0;
}

static int audit_list(const char *data_dir, const struct cli_audit_options *o)
{
	/* Addresses are stored in lower case. */
	char user[STORE_MAX_ADDRESS + 1] = "";
	for (size_t i = 0; o->user != NULL && o->user[i] != '\0'; i++) {
		if (i + 1 == sizeof(user)) {
			fprintf(stderr, "dijk: --user: too long\n");
			return 2;
		}
		user[i] = (char)tolower((unsigned char)o->user[i]);
		user[i + 1] = '\0';
	}
	struct store_audit_query q = {.user = o->user ? user : NULL};
	if (o->since != NULL &&
	    parse_when(o->since, (int64_t)time(NULL), &q.since) != 0) {
		fprintf(stderr,
			"dijk: --since %s: expected a date, a time or"
			" an age such as 7d\n",
			o->since);
		return 2;
	}
	struct audit_log *log = open_log(data_dir);
	bool json = o->json;
	if (!json)
		printf("%-6s %-20s %-28s %-10s %-16s %-16s %-16s %s\n", "ID",
		       "TIME (UTC)", "USER", "PROTOCOL", "FROM", "SESSION",
		       "ACTION", "DETAIL");
	const char *error;
	int ret = store_audit_scan(audit_store(log), &q, print_entry, &json,
				   &error);
	audit_close(&log);
	if (ret != 0)
		dijk_fatal("%s", error);
	return 0;
}

static int audit_verify_command(const char *data_dir)
{
	struct audit_log *log = open_log(data_dir);
	struct audit_verify_result r;
	const char *error;
	int ret = audit_verify(log, &r, &error);
	audit_close(&log);
	if (ret < 0)
		dijk_fatal("%s", error);
	if (ret > 0) {
		printf("audit log BROKEN at entry %lld: %s (%lld entries before"
		       " it check out)\n",
		       (long long)r.bad_id, r.why, (long long)r.count);
		return 1;
	}
	printf("audit log OK: %lld entries\n", (long long)r.count);
	return 0;
}

static int audit_prune(const char *data_dir, const struct cli_audit_options *o)
{
	int64_t now = (int64_t)time(NULL), cutoff;
	if (o->before != NULL) {
		if (parse_when(o->before, now, &cutoff) != 0) {
			fprintf(stderr,
				"dijk: --before %s: expected a date, a"
				" time or an age such as 30d\n",
				o->before);
			return 2;
		}
	} else {
		char path[4096];
		const char *error;
		struct config *cfg = xcalloc(1, sizeof(*cfg));
		snprintf(path, sizeof(path), "%s/dijk.conf", data_dir);
		if (config_load(path, cfg, &error) != 0)
			dijk_fatal("%s", error);
		unsigned days = cfg->audit_retention_days;
		free(cfg);
		if (days == 0) {
			printf("audit.retention_days is 0: nothing dropped\n");
			return 0;
		}
		cutoff = now - (int64_t)days * 86400;
	}
	struct audit_log *log = open_log(data_dir);
	int64_t dropped;
	const char *error;
	int ret = audit_drop_before(log, cutoff, now, &dropped, &error);
	audit_close(&log);
	if (ret != 0)
		dijk_fatal("%s", error);
	printf("dropped %lld entries\n", (long long)dropped);
	return 0;
}

int cli_audit(const char *data_dir, const char *const *args, size_t count,
	      const struct cli_audit_options *o)
{
	if (count == 1)
		return audit_list(data_dir, o);
	if (count == 2 && strcmp(args[1], "verify") == 0)
		return audit_verify_command(data_dir);
	if (count == 2 && strcmp(args[1], "prune") == 0)
		return audit_prune(data_dir, o);
	return 2;
}

int cli_audit_admin(const char *data_dir, const char *const *args, size_t count)
{
	static const char *const changes[] = {
		"add", "del", "passwd", "generate", "rotate", "flush", "delete",
	};
	bool changing = false;
	for (size_t i = 0; count >= 2 && i < ARRAY_SIZE(changes); i++)
		changing |= strcmp(args[1], changes[i]) == 0;
	if (!changing)
		return 0;
	struct store_audit_entry *e = xcalloc(1, sizeof(*e));
	char text[STORE_AUDIT_MAX_DETAIL + 1] = "";
	size_t used = 0;
	for (size_t i = 2; i < count; i++) {
		int n = snprintf(text + used, sizeof(text) - used, "%s%s",
				 i > 2 ? " " : "", args[i]);
		if (n < 0 || (size_t)n >= sizeof(text) - used)
			break;
		used += (size_t)n;
	}
	char action[STORE_AUDIT_MAX_ACTION + 1];
	snprintf(action, sizeof(action), "%s %s", args[0], args[1]);
	audit_field_set(e->action, sizeof(e->action), slice_cstr(action));
	audit_field_set(e->detail, sizeof(e->detail), slice_cstr(text));
	audit_field_set(e->protocol, sizeof(e->protocol), slice_cstr("admin"));
	char remote[64];
	snprintf(remote, sizeof(remote), "local uid %ld", (long)getuid());
	audit_field_set(e->remote, sizeof(e->remote), slice_cstr(remote));
	/* A user command's entry is that user's too: their Activity page
	 * shows that the admin set their password. */
	if (strcmp(args[0], "user") == 0 && count >= 3) {
		audit_field_set(e->user, sizeof(e->user), slice_cstr(args[2]));
		const char *error;
		struct store *s = store_open(data_dir, &error);
		if (s != NULL)
			store_user_lookup(s, slice_cstr(args[2]),
					  &e->account_id, &error);
		store_close(&s);
	}
	const char *error;
	struct audit_log *log = audit_open(data_dir, &error);
	int ret = log != NULL ? audit_append(log, e, &error) : -1;
	audit_close(&log);
	if (ret != 0)
		fprintf(stderr,
			"dijk: warning: not recorded in the audit log:"
			" %s\n",
			error);
	free(e);
	return ret;
}
