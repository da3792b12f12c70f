/* config.c: the parser of dijk.conf and its validation of values. */
#include "core/common.h"

#include "core/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const listener_keys[LISTENER_COUNT] = {
	[LISTENER_SMTP] = "listen.smtp",
	[LISTENER_SUBMISSION] = "listen.submission",
	[LISTENER_SUBMISSIONS] = "listen.submissions",
	[LISTENER_IMAP] = "listen.imap",
	[LISTENER_IMAPS] = "listen.imaps",
	[LISTENER_HTTP] = "listen.http",
	[LISTENER_HTTPS] = "listen.https",
};

static char config_error[1400];

const char *config_listener_key(enum listener_kind kind)
{
	DIJK_ASSERT(kind < LISTENER_COUNT);
	return listener_keys[kind];
}

void config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	if (gethostname(cfg->hostname, sizeof(cfg->hostname) - 1) != 0 ||
	    cfg->hostname[0] == '\0')
		snprintf(cfg->hostname, sizeof(cfg->hostname), "localhost");
	snprintf(cfg->tls_cert, sizeof(cfg->tls_cert), "cert.pem");
	snprintf(cfg->tls_key, sizeof(cfg->tls_key), "key.pem");
	cfg->max_message_size = CONFIG_DEFAULT_MAX_MESSAGE_SIZE;
	cfg->max_recipients = CONFIG_DEFAULT_MAX_RECIPIENTS;
	cfg->smtp_timeout_seconds = CONFIG_DEFAULT_SMTP_TIMEOUT;
	cfg->greet_pause_ms = CONFIG_DEFAULT_GREET_PAUSE_MS;
	cfg->quota_bytes = CONFIG_DEFAULT_QUOTA;
	cfg->greet_pause_loopback = false;
	cfg->cleartext_loopback = true;
	cfg->session_idle_seconds = CONFIG_DEFAULT_SESSION_IDLE;
	cfg->session_lifetime_seconds = CONFIG_DEFAULT_SESSION_LIFETIME;
	cfg->audit_retention_days = CONFIG_DEFAULT_AUDIT_RETENTION_DAYS;
	cfg->workers = 0;
	snprintf(cfg->dns_trust_anchor, sizeof(cfg->dns_trust_anchor),
		 "/usr/share/dns/root.key");
	cfg->outbound_port = 25;
	snprintf(cfg->user, sizeof(cfg->user), "dijk");
	snprintf(cfg->auth_user, sizeof(cfg->auth_user), "dijk-auth");
	snprintf(cfg->queue_user, sizeof(cfg->queue_user), "dijk-queue");
	snprintf(cfg->group, sizeof(cfg->group), "dijk");
	cfg->mta_sts_port = 443;
	static const unsigned retry[] = {60, 300, 900, 3600, 14400};
	memcpy(cfg->queue_retry, retry, sizeof(retry));
	cfg->queue_retry_count = ARRAY_SIZE(retry);
	cfg->queue_lifetime_seconds = CONFIG_DEFAULT_QUEUE_LIFETIME;
	cfg->queue_delay_notice_seconds = CONFIG_DEFAULT_DELAY_NOTICE;
	cfg->queue_deliveries = CONFIG_DEFAULT_QUEUE_DELIVERIES;
	cfg->connections_per_ip = CONFIG_DEFAULT_CONNECTIONS_PER_IP;
	cfg->auth_clock_scale = 1;
}

int config_split_address(const char *value, char *host_r, size_t host_size,
			 uint16_t *port_r)
{
	const char *colon;
	const char *host = value;
	size_t host_len;
	if (value[0] == '[') {
		const char *close = strchr(value, ']');
		if (close == NULL || close[1] != ':')
			return -1;
		host = value + 1;
		host_len = (size_t)(close - host);
		colon = close + 1;
	} else {
		colon = strrchr(value, ':');
		if (colon == NULL ||
		    memchr(value, ':', (size_t)(colon - value)))
			return -1;
		host_len = (size_t)(colon - value);
	}
	if (host_len == 0 || host_len >= host_size)
		return -1;
	const char *port = colon + 1;
	if (*port == '\0' || strlen(port) > 5)
		return -1;
	unsigned long n = 0;
	for (const char *c = port; *c; c++) {
		if (!isdigit((unsigned char)*c))
			return -1;
		n = n * 10 + (unsigned long)(*c - '0');
	}
	if (n == 0 || n > 65535)
		return -1;
	for (size_t i = 0; i < host_len; i++) {
		unsigned char c = (unsigned char)host[i];
		if (!isalnum(c) && c != '.' && c != ':' && c != '-')
			return -1;
	}
	memcpy(host_r, host, host_len);
	host_r[host_len] = '\0';
	*port_r = (uint16_t)n;
	return 0;
}

static int parse_uint(const char *value, uint64_t min, uint64_t max,
		      uint64_t *r)
{
	if (*value == '\0' || strlen(value) > 20)
		return -1;
	uint64_t n = 0;
	for (const char *c = value; *c; c++) {
		if (!isdigit((unsigned char)*c))
			return -1;
		unsigned d = (unsigned)(*c - '0');
		if (n > (UINT64_MAX - d) / 10)
			return -1;
		n = n * 10 + d;
	}
	if (n < min || n > max)
		return -1;
	*r = n;
	return 0;
}

static bool valid_hostname(const char *value)
{
	size_t n = strlen(value);
	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)value[i];
		if (!isalnum(c) && c != '.' && c != '-')
			return false;
	}
	return true;
}

/* "60,300,900": at most CONFIG_MAX_RETRY_STEPS seconds, each 1 to a day. */
static int parse_retry(const char *value, struct config *cfg)
{
	size_t count = 0;
	const char *p = value;
	while (*p != '\0') {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		char number[24];
		uint64_t n;
		if (count == CONFIG_MAX_RETRY_STEPS || len == 0 ||
		    len >= sizeof(number))
			return -1;
		memcpy(number, p, len);
		number[len] = '\0';
		if (parse_uint(number, 1, 86400, &n) != 0)
			return -1;
		cfg->queue_retry[count++] = (unsigned)n;
		p += len;
		if (*p == ',' && *++p == '\0')
			return -1;
	}
	if (count == 0)
		return -1;
	cfg->queue_retry_count = count;
	return 0;
}

/* A system account name as useradd takes it: no path, no shell text. */
static bool valid_account_name(const char *value)
{
	size_t n = strlen(value);
	if (n == 0 || n >= CONFIG_MAX_NAME || value[0] == '-')
		return false;
	for (const char *c = value; *c; c++)
		if (!isalnum((unsigned char)*c) && *c != '_' && *c != '-')
			return false;
	return true;
}

static const char *copy_path(char *dst, size_t size, const char *value)
{
	if (strlen(value) >= size)
		return "too long";
	snprintf(dst, size, "%s", value);
	return NULL;
}

/* Applies one key; returns NULL or a description of what is wrong. */
static const char *config_apply(struct config *cfg, const char *key,
				const char *value)
{
	for (int i = 0; i < LISTENER_COUNT; i++) {
		if (strcmp(key, listener_keys[i]) != 0)
			continue;
		if (*value != '\0') {
			char host[128];
			uint16_t port;
			if (strlen(value) >= sizeof(cfg->listen[i]) ||
			    config_split_address(value, host, sizeof(host),
						 &port) != 0)
				return "expected ADDR:PORT (or nothing, for off)";
		}
		snprintf(cfg->listen[i], sizeof(cfg->listen[i]), "%s", value);
		return NULL;
	}
	uint64_t n;
	if (strcmp(key, "hostname") == 0) {
		if (!valid_hostname(value))
			return "expected a host name (letters, digits, '.', '-')";
		snprintf(cfg->hostname, sizeof(cfg->hostname), "%s", value);
	} else if (strcmp(key, "tls.cert") == 0 ||
		   strcmp(key, "tls.key") == 0) {
		char *dst = key[4] == 'c' ? cfg->tls_cert : cfg->tls_key;
		if (*value == '\0' || strlen(value) >= sizeof(cfg->tls_cert))
			return "expected a file name";
		snprintf(dst, sizeof(cfg->tls_cert), "%s", value);
	} else if (strcmp(key, "smtp.max_message_size") == 0) {
		if (parse_uint(value, 1024, UINT64_C(1) << 34, &n) != 0)
			return "expected a byte count from 1024 to 17179869184";
		cfg->max_message_size = n;
	} else if (strcmp(key, "smtp.max_recipients") == 0) {
		if (parse_uint(value, 1, 10000, &n) != 0)
			return "expected a number from 1 to 10000";
		cfg->max_recipients = (unsigned)n;
	} else if (strcmp(key, "smtp.timeout") == 0) {
		if (parse_uint(value, 1, 3600, &n) != 0)
			return "expected seconds from 1 to 3600";
		cfg->smtp_timeout_seconds = (unsigned)n;
	} else if (strcmp(key, "smtp.greet_pause") == 0) {
		if (parse_uint(value, 0, 10000, &n) != 0)
			return "expected milliseconds from 0 to 10000";
		cfg->greet_pause_ms = (unsigned)n;
	} else if (strcmp(key, "smtp.greet_pause_loopback") == 0) {
		if (strcmp(value, "yes") == 0)
			cfg->greet_pause_loopback = true;
		else if (strcmp(value, "no") == 0)
			cfg->greet_pause_loopback = false;
		else
			return "expected yes or no";
	} else if (strcmp(key, "auth.cleartext_loopback") == 0) {
		if (strcmp(value, "yes") == 0)
			cfg->cleartext_loopback = true;
		else if (strcmp(value, "no") == 0)
			cfg->cleartext_loopback = false;
		else
			return "expected yes or no";
	} else if (strcmp(key, "quota") == 0) {
		if (parse_uint(value, 1024 * 1024, UINT64_C(1) << 50, &n) != 0)
			return "expected bytes from 1048576 to 2^50";
		cfg->quota_bytes = n;
	} else if (strcmp(key, "http.session_idle") == 0) {
		if (parse_uint(value, 5, 30 * 86400, &n) != 0)
			return "expected seconds from 5 to 2592000";
		cfg->session_idle_seconds = (unsigned)n;
	} else if (strcmp(key, "http.session_lifetime") == 0) {
		if (parse_uint(value, 5, 365 * 86400, &n) != 0)
			return "expected seconds from 5 to 31536000";
		cfg->session_lifetime_seconds = (unsigned)n;
	} else if (strcmp(key, "audit.retention_days") == 0) {
		if (parse_uint(value, 0, CONFIG_MAX_AUDIT_RETENTION_DAYS, &n) !=
		    0)
			return "expected days from 0 (keep forever) to 36500";
		cfg->audit_retention_days = (unsigned)n;
	} else if (strcmp(key, "workers") == 0) {
		if (parse_uint(value, 0, CONFIG_MAX_WORKERS, &n) != 0)
			return "expected a number from 0 (one per core) to 64";
		cfg->workers = (unsigned)n;
	} else if (strcmp(key, "dns.resolver") == 0) {
		for (const char *c = strcmp(value, "none") == 0 ? "" : value;
		     *c; c++)
			if (!isxdigit((unsigned char)*c) && *c != '.' &&
			    *c != ':' && *c != '@')
				return "expected ADDR, ADDR@PORT or none";
		return copy_path(cfg->dns_resolver, sizeof(cfg->dns_resolver),
				 value);
	} else if (strcmp(key, "dns.trust_anchor") == 0) {
		return copy_path(cfg->dns_trust_anchor,
				 sizeof(cfg->dns_trust_anchor), value);
	} else if (strcmp(key, "outbound.port") == 0 ||
		   strcmp(key, "outbound.mta_sts_port") == 0) {
		if (parse_uint(value, 1, 65535, &n) != 0)
			return "expected a port from 1 to 65535";
		if (key[9] == 'p')
			cfg->outbound_port = (uint16_t)n;
		else
			cfg->mta_sts_port = (uint16_t)n;
	} else if (strcmp(key, "user") == 0 || strcmp(key, "auth_user") == 0 ||
		   strcmp(key, "queue_user") == 0 ||
		   strcmp(key, "group") == 0) {
		char *dst = key[0] == 'u'   ? cfg->user
			    : key[0] == 'a' ? cfg->auth_user
			    : key[0] == 'q' ? cfg->queue_user
					    : cfg->group;
		if (!valid_account_name(value))
			return "expected a user or group name (letters, digits,"
			       " '_', '-', at most 32)";
		snprintf(dst, CONFIG_MAX_NAME, "%s", value);
	} else if (strcmp(key, "outbound.bind") == 0) {
		struct in6_addr a6;
		struct in_addr a4;
		if (*value != '\0' && inet_pton(AF_INET, value, &a4) != 1 &&
		    inet_pton(AF_INET6, value, &a6) != 1)
			return "expected an IPv4 or IPv6 address";
		return copy_path(cfg->outbound_bind, sizeof(cfg->outbound_bind),
				 value);
	} else if (strcmp(key, "outbound.tls_ca") == 0) {
		return copy_path(cfg->outbound_tls_ca,
				 sizeof(cfg->outbound_tls_ca), value);
	} else if (strcmp(key, "queue.retry") == 0) {
		if (parse_retry(value, cfg) != 0)
			return "expected up to 16 comma-separated seconds, each "
			       "from 1 to 86400";
	} else if (strcmp(key, "queue.lifetime") == 0) {
		if (parse_uint(value, 1, 30 * 86400, &n) != 0)
			return "expected seconds from 1 to 2592000";
		cfg->queue_lifetime_seconds = (unsigned)n;
	} else if (strcmp(key, "queue.delay_notice") == 0) {
		if (parse_uint(value, 0, 30 * 86400, &n) != 0)
			return "expected seconds from 0 (never) to 2592000";
		cfg->queue_delay_notice_seconds = (unsigned)n;
	} else if (strcmp(key, "queue.deliveries") == 0) {
		if (parse_uint(value, 1, CONFIG_MAX_QUEUE_DELIVERIES, &n) != 0)
			return "expected a number from 1 to 64";
		cfg->queue_deliveries = (unsigned)n;
	} else if (strcmp(key, "dmarc.reject") == 0) {
		if (strcmp(value, "reject") == 0)
			cfg->dmarc_quarantine_rejects = false;
		else if (strcmp(value, "quarantine") == 0)
			cfg->dmarc_quarantine_rejects = true;
		else
			return "expected reject or quarantine";
	} else if (strcmp(key, "limits.connections_per_ip") == 0) {
		if (parse_uint(value, 0, 1000000, &n) != 0)
			return "expected a number from 0 (no limit) to 1000000";
		cfg->connections_per_ip = (unsigned)n;
	} else if (strcmp(key, "auth.test_clock_scale") == 0) {
		if (parse_uint(value, 1, 3600, &n) != 0)
			return "expected a number from 1 to 3600";
		cfg->auth_clock_scale = (unsigned)n;
	} else {
		return "unknown key";
	}
	return NULL;
}

static bool key_char(uint8_t c)
{
	return isalnum(c) || c == '.' || c == '_';
}

int config_parse(struct slice text, const char *filename, struct config *cfg,
		 const char **error_r)
{
	char seen[32][64];
	size_t seen_count = 0;
	size_t line_no = 0;
	size_t pos = 0;

	while (pos < text.n) {
		line_no++;
		size_t end = pos;
		while (end < text.n && text.p[end] != '\n')
			end++;
		size_t len = end - pos;
		const uint8_t *line = text.p + pos;
		pos = end + 1;
		if (len > 0 && line[len - 1] == '\r')
			len--;
		if (len > CONFIG_MAX_LINE) {
			snprintf(config_error, sizeof(config_error),
				 "%s:%zu: line too long", filename, line_no);
			*error_r = config_error;
			return -1;
		}
		size_t i = 0;
		while (i < len && (line[i] == ' ' || line[i] == '\t'))
			i++;
		if (i == len || line[i] == '#')
			continue;
		size_t key_start = i;
		while (i < len && key_char(line[i]))
			i++;
		char key[64];
		size_t key_len = i - key_start;
		if (key_len == 0 || key_len >= sizeof(key)) {
			snprintf(config_error, sizeof(config_error),
				 "%s:%zu: expected 'key = value'", filename,
				 line_no);
			*error_r = config_error;
			return -1;
		}
		memcpy(key, line + key_start, key_len);
		key[key_len] = '\0';
		while (i < len && (line[i] == ' ' || line[i] == '\t'))
			i++;
		if (i == len || line[i] != '=') {
			snprintf(config_error, sizeof(config_error),
				 "%s:%zu: key '%s': expected '=' after the key",
				 filename, line_no, key);
			*error_r = config_error;
			return -1;
		}
		i++;
		while (i < len && (line[i] == ' ' || line[i] == '\t'))
			i++;
		size_t value_end = len;
		while (value_end > i && (line[value_end - 1] == ' ' ||
					 line[value_end - 1] == '\t'))
			value_end--;
		char value[CONFIG_MAX_LINE + 1];
		size_t value_len = value_end - i;
		if (memchr(line + i, '\0', value_len) != NULL) {
			snprintf(config_error, sizeof(config_error),
				 "%s:%zu: key '%s': NUL byte in value",
				 filename, line_no, key);
			*error_r = config_error;
			return -1;
		}
		memcpy(value, line + i, value_len);
		value[value_len] = '\0';

		for (size_t s = 0; s < seen_count; s++) {
			if (strcmp(seen[s], key) == 0) {
				snprintf(config_error, sizeof(config_error),
					 "%s:%zu: key '%s' given twice",
					 filename, line_no, key);
				*error_r = config_error;
				return -1;
			}
		}
		const char *problem = config_apply(cfg, key, value);
		if (problem != NULL) {
			snprintf(config_error, sizeof(config_error),
				 "%s:%zu: key '%s': %s", filename, line_no, key,
				 problem);
			*error_r = config_error;
			return -1;
		}
		if (seen_count < ARRAY_SIZE(seen))
			snprintf(seen[seen_count++], sizeof(seen[0]), "%s",
				 key);
	}
	return 0;
}

int config_load(const char *path, struct config *cfg, const char **error_r)
{
	config_defaults(cfg);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(config_error, sizeof(config_error), "%s: %s", path,
			 strerror(errno));
		*error_r = config_error;
		return -1;
	}
	uint8_t *data = xmalloc(CONFIG_MAX_FILE_SIZE);
	size_t n = 0;
	for (;;) {
		ssize_t r = read(fd, data + n, CONFIG_MAX_FILE_SIZE - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(config_error, sizeof(config_error), "%s: %s",
				 path, strerror(errno));
			free(data);
			close(fd);
			*error_r = config_error;
			return -1;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n == CONFIG_MAX_FILE_SIZE) {
			snprintf(config_error, sizeof(config_error),
				 "%s: file larger than %d bytes", path,
				 CONFIG_MAX_FILE_SIZE);
			free(data);
			close(fd);
			*error_r = config_error;
			return -1;
		}
	}
	close(fd);
	int ret = config_parse(slice_make(data, n), path, cfg, error_r);
	free(data);
	return ret;
}
