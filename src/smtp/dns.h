/* dns.h: DNS lookups for mail: MX, A/AAAA, TXT (SPF, DKIM, DMARC,
 * MTA-STS) and TLSA (DANE).
 *
 * Lookups go through a struct dns_resolver, a function and its context, so
 * that the mail-authentication code does not care who answers: the server
 * uses libunbound (dns_new, validating DNSSEC), unit tests a table.
 *
 * The rdata readers at the bottom are pure functions over the bytes of one
 * record's rdata as the resolver returns them (names uncompressed); they
 * check every length and are fuzzed (fuzz/fuzz_dns.c). */
#ifndef DIJK_SMTP_DNS_H
#define DIJK_SMTP_DNS_H

#include "core/common.h"

#include <netinet/in.h>

#define DNS_TYPE_A    1
#define DNS_TYPE_MX   15
#define DNS_TYPE_TXT  16
#define DNS_TYPE_AAAA 28
#define DNS_TYPE_TLSA 52

/* Longest presentation name (RFC 1035: 255 octets on the wire). */
#define DNS_MAX_NAME 254
/* Records kept of one answer; the rest are dropped. */
#define DNS_MAX_RECORDS 64

enum dns_status {
	DNS_OK,	      /* records in the answer */
	DNS_NODATA,   /* the name exists, without records of the type */
	DNS_NXDOMAIN, /* the name does not exist */
	DNS_TEMPFAIL, /* no answer now (timeout, SERVFAIL): try later */
	DNS_BOGUS,    /* DNSSEC validation failed: treat as a failure */
};

struct dns_answer {
	enum dns_status status;
	/* The answer (or its denial) was validated by DNSSEC. */
	bool secure;
	size_t count;
	struct slice rdata[DNS_MAX_RECORDS]; /* point into storage */
	uint8_t *storage;		     /* owned; dns_answer_clear frees */
};

/* Fills *answer_r for (name, type). name is a presentation name without a
 * trailing dot. Returns 0, or -1 with the status DNS_TEMPFAIL. Blocking;
 * safe to call from several threads at once on the same resolver. */
typedef int dns_resolve_fn(void *context, const char *name, uint16_t type,
			   struct dns_answer *answer_r);

struct dns_resolver {
	dns_resolve_fn *resolve;
	void *context;
};

static inline int dns_query(const struct dns_resolver *r, const char *name,
			    uint16_t type, struct dns_answer *answer_r)
{
	return r->resolve(r->context, name, type, answer_r);
}

/* Frees the answer's storage and zeroes it. */
void dns_answer_clear(struct dns_answer *a);
/* Copies count rdata slices into the answer's own storage (for resolvers
 * and tests that build answers). Returns 0 or -1 (no memory). */
int dns_answer_set(struct dns_answer *a, enum dns_status status, bool secure,
		   const struct slice *rdata, size_t count);

/* The libunbound resolver.
 * forwarder: "ADDR" or "ADDR@PORT" to send every query to (a local
 *   validating resolver, or the name server of a test); NULL or "" makes
 *   dijk recurse from the root itself, so that DNSSEC does not depend on
 *   the resolvers of /etc/resolv.conf; "none" answers every lookup at
 *   once with DNS_TEMPFAIL (for tests, and hosts without DNS).
 * trust_anchor_file: DS or DNSKEY records in zone-file form; NULL or ""
 *   validates nothing (every answer insecure). */
struct dns;
struct dns *dns_new(const char *forwarder, const char *trust_anchor_file,
		    const char **error_r);
void dns_free(struct dns **d);
/* A resolver for the struct dns; valid while it lives. */
struct dns_resolver dns_resolver(struct dns *d);

/* Rdata readers. Names come out lowercase, without the trailing dot, in
 * name_r (DNS_MAX_NAME + 1 bytes). Return 0, or -1 when the rdata is
 * malformed. */
int dns_rdata_mx(struct slice rdata, uint16_t *preference_r, char *name_r);
/* The character-strings of a TXT record, concatenated (RFC 7208 3.3). out
 * must hold rdata.n bytes plus a NUL; *length_r is set. */
int dns_rdata_txt(struct slice rdata, char *out, size_t *length_r);
int dns_rdata_a(struct slice rdata, struct in_addr *addr_r);
int dns_rdata_aaaa(struct slice rdata, struct in6_addr *addr_r);
struct dns_tlsa {
	uint8_t usage, selector, matching;
	struct slice data; /* points into the rdata */
};
int dns_rdata_tlsa(struct slice rdata, struct dns_tlsa *tlsa_r);
/* Reads a wire-format name at rdata[*offset] (no compression pointers),
 * advancing *offset. */
int dns_read_name(struct slice rdata, size_t *offset, char *name_r);

#endif
