/* mtasts.h: MTA-STS (RFC 8461): the TXT record that announces a policy and
 * the policy text a domain serves at
 * https://mta-sts.DOMAIN/.well-known/mta-sts.txt.
 *
 * Pure parsers over bytes from the network (fuzzed: fuzz/fuzz_mta_sts.c);
 * fetching and caching live in outbound.c. */
#ifndef DIJK_SMTP_MTASTS_H
#define DIJK_SMTP_MTASTS_H

#include "core/buf.h"
#include "core/common.h"
#include "smtp/dns.h"

/* Largest policy read (RFC 8461 3.3 suggests 64 KiB). */
#define MTA_STS_MAX_POLICY (64 * 1024)
/* mx patterns kept of one policy. */
#define MTA_STS_MAX_MX 16
/* RFC 8461 3.2: max_age is at most a year. */
#define MTA_STS_MAX_AGE 31557600
/* id= of the TXT record: 1 to 32 letters and digits. */
#define MTA_STS_MAX_ID 32

enum mta_sts_mode {
	MTA_STS_NONE,
	MTA_STS_TESTING,
	MTA_STS_ENFORCE,
};

struct mta_sts_policy {
	enum mta_sts_mode mode;
	uint32_t max_age;
	size_t mx_count;
	/* Lowercase host names, or "*.name" for any one label before. */
	char mx[MTA_STS_MAX_MX][DNS_MAX_NAME + 1];
};

/* Reads the TXT record's text ("v=STSv1; id=20261122T1;"). Returns 0 and
 * the id (MTA_STS_MAX_ID + 1 bytes) when it is an MTA-STS record, -1 when
 * it is not one or is malformed. */
int mta_sts_parse_record(struct slice text, char *id_r);

/* Reads a policy. Returns 0, or -1 with *error_r (static text). */
int mta_sts_parse_policy(struct slice text, struct mta_sts_policy *policy_r,
			 const char **error_r);

/* The policy dijk publishes for its own domains: enforce, the server's
 * host name as the only mx, a week's max_age. Appends it to out. */
#define MTA_STS_OWN_MAX_AGE 604800
void mta_sts_own_policy(const char *hostname, struct buf *out);

/* Whether host (lowercase, no trailing dot) is one of the policy's mx. */
bool mta_sts_mx_matches(const struct mta_sts_policy *policy, const char *host);

#endif
