/* config.h: dijk.conf, "key = value" lines.
 *
 * Blank lines and lines starting with '#' are ignored. An unknown key, a key
 * given twice, or a bad value is an error naming the file, the line and the
 * key; the server does not start on an error. */
#ifndef DIJK_CONFIG_H
#define DIJK_CONFIG_H

#include "core/common.h"

enum listener_kind {
	LISTENER_SMTP,
	LISTENER_SUBMISSION,
	LISTENER_SUBMISSIONS,
	LISTENER_IMAP,
	LISTENER_IMAPS,
	LISTENER_HTTP,
	LISTENER_HTTPS,
	LISTENER_COUNT
};

#define CONFIG_MAX_FILE_SIZE		(1024 * 1024)
#define CONFIG_MAX_LINE			4096
#define CONFIG_DEFAULT_MAX_MESSAGE_SIZE (50u * 1024 * 1024)
#define CONFIG_DEFAULT_MAX_RECIPIENTS	100
#define CONFIG_DEFAULT_SMTP_TIMEOUT	300
#define CONFIG_MAX_WORKERS		64
/* A user or group name (useradd allows 32 characters). */
#define CONFIG_MAX_NAME			    33
#define CONFIG_DEFAULT_GREET_PAUSE_MS	    500
#define CONFIG_DEFAULT_QUOTA		    (UINT64_C(10) << 30)
#define CONFIG_DEFAULT_SESSION_IDLE	    (15 * 60)
#define CONFIG_DEFAULT_SESSION_LIFETIME	    (8 * 3600)
#define CONFIG_DEFAULT_AUDIT_RETENTION_DAYS 180
#define CONFIG_MAX_AUDIT_RETENTION_DAYS	    36500
#define CONFIG_MAX_RETRY_STEPS		    16
#define CONFIG_DEFAULT_QUEUE_LIFETIME	    (5 * 86400)
#define CONFIG_DEFAULT_DELAY_NOTICE	    (4 * 3600)
#define CONFIG_DEFAULT_QUEUE_DELIVERIES	    8
#define CONFIG_MAX_QUEUE_DELIVERIES	    64

/* Connections one address may hold open to each protocol's workers. */
#define CONFIG_DEFAULT_CONNECTIONS_PER_IP 20

struct config {
	char hostname[256];
	/* "ADDR:PORT" per listener; empty string when off. */
	char listen[LISTENER_COUNT][128];
	char tls_cert
		[1024]; /* relative to the data directory unless absolute */
	char tls_key[1024];
	uint64_t max_message_size;
	unsigned max_recipients;
	unsigned smtp_timeout_seconds;
	/* MX only: the greeting waits this long, and a client that talks
	 * meanwhile is not a mail client. 0 greets at once. */
	unsigned greet_pause_ms;
	/* Whether the pause applies to loopback clients too (local
	 * programs are trusted to wait; tests turn this on). */
	bool greet_pause_loopback;
	/* Whether IMAP and SMTP submission take a password without TLS from
	 * a loopback address (a local webmail or script). */
	bool cleartext_loopback;
	unsigned workers; /* worker processes per protocol; 0: one per core */
	uint64_t quota_bytes; /* storage per account (IMAP QUOTA) */
	/* A webmail session ends after this long unused, and this long after
	 * login in any case. */
	unsigned session_idle_seconds;
	unsigned session_lifetime_seconds;
	unsigned audit_retention_days; /* 0: keep the audit log forever */

	/* DNS: "ADDR" or "ADDR@PORT" of a server to send every query to
	 * (empty: dijk recurses itself; "none": no DNS, every lookup fails
	 * as a temporary error), and the DNSSEC trust anchor file (empty:
	 * validate nothing). */
	char dns_resolver[128];
	char dns_trust_anchor[1024];
	/* Outbound SMTP: the port of remote MX hosts (25; tests point it at
	 * their peers), the source address (empty: any), a CA file for
	 * verified TLS (MTA-STS; empty: the system's) and the HTTPS port
	 * MTA-STS policies are fetched from (443). */
	uint16_t outbound_port;
	char outbound_bind[64];
	char outbound_tls_ca[1024];
	uint16_t mta_sts_port;
	/* The outbound queue: seconds between attempts (the last one
	 * repeats), how long a message is tried before it bounces, when the
	 * sender is told of the delay (0: never), and deliveries at once. */
	unsigned queue_retry[CONFIG_MAX_RETRY_STEPS];
	size_t queue_retry_count;
	unsigned queue_lifetime_seconds;
	unsigned queue_delay_notice_seconds;
	unsigned queue_deliveries;
	/* What a DMARC p=reject failure gets: refused at DATA (false) or
	 * delivered into Junk (true). */
	bool dmarc_quarantine_rejects;
	/* Connections one address may hold open at once to each of the
	 * smtp, imap and http workers (0: no limit). */
	unsigned connections_per_ip;
	/* Tests only: the login throttle's clock runs this many times
	 * faster than real time (1 in service). */
	unsigned auth_clock_scale;
	/* Started as root: the system users the protocol workers, the auth
	 * process and the queue run as, and the group they share. */
	char user[CONFIG_MAX_NAME];
	char auth_user[CONFIG_MAX_NAME];
	char queue_user[CONFIG_MAX_NAME];
	char group[CONFIG_MAX_NAME];
};

/* The config key of a listener ("listen.smtp"). */
const char *config_listener_key(enum listener_kind kind);

/* Fills cfg with the defaults (every listener off, hostname of the machine). */
void config_defaults(struct config *cfg);

/* Parses text as dijk.conf on top of the values already in cfg. filename
 * is used in errors only. On error returns -1 and sets *error_r to a message
 * that stays valid until the next call (a static buffer). Pure: no I/O. */
int config_parse(struct slice text, const char *filename, struct config *cfg,
		 const char **error_r);

/* Reads and parses path on top of the defaults. */
int config_load(const char *path, struct config *cfg, const char **error_r);

/* Splits "ADDR:PORT" ("[v6]:PORT" for IPv6) into host and port. Returns 0
 * on success. host_r must hold host_size bytes. */
int config_split_address(const char *value, char *host_r, size_t host_size,
			 uint16_t *port_r);

#endif
