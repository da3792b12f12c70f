/* outbound.h: the SMTP client of the queue process: delivers one message
 * to the recipients of one domain (RFC 5321) through the domain's MX hosts.
 *
 * MX hosts are tried in preference order (equal ones in random order), a
 * domain without MX through its own address; a null MX or a domain that
 * does not exist fails at once. STARTTLS is used whenever offered; where
 * the MX host has DNSSEC-valid TLSA records (DANE, RFC 7672) TLS is
 * required and the certificate must match them; where the domain has an
 * MTA-STS policy in enforce mode (RFC 8461), only the MX hosts it names
 * are used, with TLS and a certificate valid for the host name. Policies
 * are fetched from https://mta-sts.DOMAIN/ only, and kept for their
 * max_age in memory. PIPELINING is used when
 * offered. Blocking, with timeouts: each call runs on a thread of its own,
 * and several may run at once on one struct outbound. */
#ifndef DIJK_SMTP_OUTBOUND_H
#define DIJK_SMTP_OUTBOUND_H

#include "core/common.h"
#include "smtp/dns.h"

/* MX host addresses tried in one attempt. */
#define OUTBOUND_MAX_ADDRESSES 8
/* Longest reply line read, and lines of one reply. */
#define OUTBOUND_MAX_LINE	 2048
#define OUTBOUND_MAX_REPLY_LINES 64
#define OUTBOUND_CONNECT_TIMEOUT 30
/* Every command's reply (RFC 5321 4.5.3.2 allows more for some). */
#define OUTBOUND_REPLY_TIMEOUT 300

struct outbound_config {
	const char *hostname;	  /* our EHLO name */
	uint16_t port;		  /* of the MX hosts: 25 */
	const char *bind_address; /* source address, or "" */
	const char *tls_ca_file;  /* for MTA-STS; "" for the system's */
	uint16_t mta_sts_port;	  /* of policy hosts: 443 */
	struct dns_resolver dns;
};

enum outbound_status {
	OUTBOUND_DEFERRED = 0, /* try again later */
	OUTBOUND_DELIVERED,
	OUTBOUND_FAILED, /* for good: bounce */
};

struct outbound_recipient {
	const char *address; /* set by the caller */
	/* Results. */
	enum outbound_status status;
	bool remote_reply; /* reply is a remote server's words */
	char reply[512];
	char remote_mta[DNS_MAX_NAME + 1]; /* "" when none answered */
};

struct outbound;
struct outbound *outbound_new(const struct outbound_config *cfg,
			      const char **error_r);
void outbound_free(struct outbound **o);
/* Cuts every connection in progress and makes later ones fail at once
 * (shutdown); the deliveries end deferred. Any thread. */
void outbound_cancel(struct outbound *o);

/* Delivers message, preceded by prefix (DKIM-Signature fields; may be
 * empty), from sender ("" for <>) to the count recipients, all at domain.
 * Sets every recipient's results. */
void outbound_deliver(struct outbound *o, const char *domain,
		      const char *sender, struct slice prefix,
		      struct slice message, struct outbound_recipient *r,
		      size_t count);

#endif
