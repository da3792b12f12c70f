/* dmarc.h: DMARC (RFC 7489): does the author's domain (RFC5322.From)
 * stand behind this message, and what does it ask of a receiver that
 * finds it does not?
 *
 * The record parser (dmarc_parse_record) and the From-domain reader
 * (dmarc_from_domain) are pure functions over bytes, fuzzed by
 * fuzz/fuzz_dmarc.c. dmarc_check does policy discovery over a struct
 * dns_resolver and identifier alignment with SPF and DKIM results;
 * Organizational Domains come from the public suffix list (libpsl).
 *
 * Choices where RFC 7489 leaves room:
 * - From (6.6.1): no From field gives DMARC_FROM_MISSING (result none:
 *   nothing to evaluate); two or more From fields, a From with more than
 *   one address, group syntax, or no usable domain (a domain literal, a
 *   non-ASCII or malformed name, a field over DMARC_MAX_FROM bytes)
 *   gives DMARC_FROM_INVALID, which dmarc_check reports as permerror.
 *   Such messages are not evaluated per address. The field is read here
 *   rather than with src/mime's address parser, which is internal to
 *   mime and tolerant where DMARC must be strict.
 * - pct (6.6.4): honoured by a random draw the caller supplies
 *   (dmarc_input.sample); a message outside the sample gets the next
 *   lower policy (reject becomes quarantine, quarantine becomes none).
 * - Records: "v=DMARC1" must be the first tag; a tag list that is not
 *   tag=value pairs is no record; unknown tags are ignored; a bad value
 *   of an optional tag (adkim, aspf, pct, fo, rf, ri) takes the default;
 *   a missing or bad p (or a bad sp) makes the record p=none when rua
 *   has a usable URI, else no record (6.6.3 step 6); the first of two
 *   equal tags counts.
 * - A DNS failure or a DNSSEC-bogus answer is temperror. Two DMARC
 *   records at one name end discovery: result none (6.6.3 step 5).
 * - The public suffix list's private section (e.g. blogspot.com) counts
 *   as suffixes too, as libpsl's registrable domain has it. */
#ifndef DIJK_SMTP_DMARC_H
#define DIJK_SMTP_DMARC_H

#include "core/common.h"
#include "smtp/dkim.h"
#include "smtp/dns.h"
#include "smtp/spf.h"

/* A From field longer than this is not evaluated (DMARC_FROM_INVALID). */
#define DMARC_MAX_FROM 8192

enum dmarc_policy {
	DMARC_POLICY_NONE,
	DMARC_POLICY_QUARANTINE,
	DMARC_POLICY_REJECT,
};

/* "none", "quarantine", "reject". */
const char *dmarc_policy_name(enum dmarc_policy policy);

struct dmarc_record {
	enum dmarc_policy p;
	enum dmarc_policy sp; /* p when the record has no sp */
	bool has_sp;
	bool adkim_strict; /* adkim=s; relaxed by default */
	bool aspf_strict;  /* aspf=s */
	unsigned pct;	   /* 0..100, default 100 */
	/* Reporting: as written, pointing into the record text. */
	struct slice rua, ruf, fo, rf;
	uint32_t ri; /* default 86400 */
	/* The record had no valid p (or a bad sp) and counts as p=none
	 * because of its rua (RFC 7489 6.6.3 step 6). */
	bool p_defaulted;
};

/* True when text starts with the version tag: "v" *WSP "=" *WSP
 * "DMARC1" followed by *WSP and ";" or the end (RFC 7489 6.4). */
bool dmarc_is_record(struct slice text);

/* Parses a DMARC record. Returns 0, or -1 with *error_r (static) when it
 * gives no policy. Slices in *record_r point into text. */
int dmarc_parse_record(struct slice text, struct dmarc_record *record_r,
		       const char **error_r);

enum dmarc_from_status {
	DMARC_FROM_OK,
	DMARC_FROM_MISSING, /* no From field */
	DMARC_FROM_INVALID, /* not exactly one address with a domain */
};

/* The RFC5322.From domain of a message. header is the header section
 * (the message from its start; reading stops at the first empty line);
 * CRLF or LF line ends. On DMARC_FROM_OK, domain_r (DNS_MAX_NAME + 1
 * bytes) holds the domain, lowercase, without a trailing dot. */
enum dmarc_from_status dmarc_from_domain(struct slice header, char *domain_r);

/* The public suffix list. dmarc_psl_load tries the newest list, the
 * system's (Debian's publicsuffix package) or libpsl's built-in one, and
 * then the built-in one; NULL with *error_r when neither is there. Read
 * only once loaded: one may serve every thread. */
struct dmarc_psl;
struct dmarc_psl *dmarc_psl_load(const char **error_r);
void dmarc_psl_free(struct dmarc_psl **psl);

/* The Organizational Domain of domain (RFC 7489 3.2): its registrable
 * domain, or domain itself when it is a public suffix or unknown to the
 * list. Writes it, lowercase, to org_r (DNS_MAX_NAME + 1 bytes). */
void dmarc_org_domain(const struct dmarc_psl *psl, const char *domain,
		      char *org_r);

enum dmarc_status {
	DMARC_NONE, /* no From domain, or no policy published */
	DMARC_PASS,
	DMARC_FAIL,
	DMARC_TEMPERROR,
	DMARC_PERMERROR, /* the From field is not usable */
};

/* "none", "pass", "fail", "temperror", "permerror" (RFC 8601). */
const char *dmarc_status_name(enum dmarc_status status);

struct dmarc_input {
	/* From dmarc_from_domain. */
	enum dmarc_from_status from_status;
	const char *from_domain;
	/* SPF's verdict on the MAIL FROM identity (the HELO name when
	 * MAIL FROM was <>) and the domain it was about. */
	enum spf_result spf;
	const char *spf_domain;
	/* DKIM results of the message; d= of each passing one counts. */
	const struct dkim_result *dkim;
	size_t dkim_count;
	/* A uniformly random number: the policy applies when
	 * sample % 100 < pct. */
	uint32_t sample;
};

struct dmarc_result {
	enum dmarc_status status;
	char from_domain[DNS_MAX_NAME + 1];   /* empty when none */
	char policy_domain[DNS_MAX_NAME + 1]; /* where the record was */
	char org_domain[DNS_MAX_NAME + 1];    /* of the From domain */
	bool has_record;
	struct dmarc_record record; /* its slices are left empty */
	/* The policy published for this From domain (p, or sp for a
	 * subdomain whose record came from its Organizational Domain). */
	enum dmarc_policy policy;
	/* What to do with this message: policy on fail after pct, none on
	 * pass or without a record. */
	enum dmarc_policy disposition;
	bool spf_aligned;  /* SPF passed for an aligned domain */
	bool dkim_aligned; /* a passing DKIM signature has an aligned d= */
	char reason[128];  /* printable ASCII, for logs */
};

/* Policy discovery (RFC 7489 6.6.3) and evaluation. Blocking: at most
 * two TXT queries. Fills *result_r and returns its status. */
enum dmarc_status dmarc_check(const struct dns_resolver *dns,
			      const struct dmarc_psl *psl,
			      const struct dmarc_input *input,
			      struct dmarc_result *result_r);

#endif
