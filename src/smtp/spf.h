/* spf.h: Sender Policy Framework (RFC 7208): may this client send mail
 * for this domain?
 *
 * spf_check runs check_host() of RFC 7208 section 4 with every mechanism
 * and modifier, macro expansion, and the processing limits of section
 * 4.6.4; all DNS goes through a struct dns_resolver. The record parser
 * (spf_parse_record, spf_next_term) and the macro expander (spf_expand)
 * are pure functions over bytes, fuzzed by fuzz/fuzz_spf.c.
 *
 * Choices where RFC 7208 leaves room:
 * - "exp" is checked for syntax and otherwise ignored: no explanation is
 *   fetched, as dijk's 550 replies do not quote the sender's text.
 * - "ptr" is evaluated as section 5.5 says (at most SPF_MAX_PTR_NAMES
 *   names, each validated by a forward lookup); so is the %{p} macro.
 * - Void lookups (NXDOMAIN or no records) are counted for the queries of
 *   "a", "mx", "ptr" and "exists"; a third one gives permerror.
 * - A name produced by macro expansion that is not a usable DNS name
 *   (empty label, label over 63 octets, '\' or a byte outside printable
 *   ASCII) makes "a", "mx", "ptr" and "exists" not match, and "include"
 *   and "redirect" give permerror; no query is sent.
 * - A DNSSEC-bogus answer counts as a DNS failure: temperror.
 * - A record of more than SPF_MAX_TERMS terms is a permerror, and so is
 *   a macro expansion of more than SPF_MAX_EXPANSION bytes (before the
 *   cut to 253 that names get). */
#ifndef DIJK_SMTP_SPF_H
#define DIJK_SMTP_SPF_H

#include "core/buf.h"
#include "core/common.h"
#include "smtp/dns.h"

#include <netinet/in.h>
#include <sys/socket.h>

/* RFC 7208 4.6.4: terms that query DNS, per check (include, a, mx, ptr,
 * exists, redirect). */
#define SPF_MAX_DNS_LOOKUPS 10
/* RFC 7208 4.6.4: queries answered with NXDOMAIN or no records. */
#define SPF_MAX_VOID_LOOKUPS 2
/* RFC 7208 4.6.4: MX names one "mx" may look up; more is a permerror. */
#define SPF_MAX_MX_NAMES 10
/* RFC 7208 4.6.4: PTR names one "ptr" or %{p} looks at; the rest are
 * ignored. */
#define SPF_MAX_PTR_NAMES 10
/* Terms in one record. */
#define SPF_MAX_TERMS 256
/* Bytes of one macro expansion. */
#define SPF_MAX_EXPANSION 4096

enum spf_result {
	SPF_NONE,
	SPF_NEUTRAL,
	SPF_PASS,
	SPF_FAIL,
	SPF_SOFTFAIL,
	SPF_TEMPERROR,
	SPF_PERMERROR,
};

/* "none", "neutral", "pass", ... as in Received-SPF and RFC 8601. */
const char *spf_result_name(enum spf_result result);

/* The SMTP client's address. An IPv4-mapped IPv6 address is IPv4 here
 * (RFC 7208 5: it is evaluated as IPv4). */
struct spf_ip {
	int family; /* AF_INET or AF_INET6 */
	union {
		struct in_addr v4;
		struct in6_addr v6;
	};
};

/* From a socket address (AF_INET or AF_INET6). Returns 0, or -1 for
 * another family. */
int spf_ip_from_sockaddr(const struct sockaddr *sa, struct spf_ip *ip_r);
/* From "192.0.2.1" or "2001:db8::1". Returns 0 or -1. */
int spf_ip_parse(const char *text, struct spf_ip *ip_r);

/* ---- the record: pure parsing ---- */

enum spf_term_kind {
	SPF_TERM_ALL,
	SPF_TERM_INCLUDE,
	SPF_TERM_A,
	SPF_TERM_MX,
	SPF_TERM_PTR,
	SPF_TERM_IP4,
	SPF_TERM_IP6,
	SPF_TERM_EXISTS,
	SPF_TERM_REDIRECT,	   /* modifier */
	SPF_TERM_EXP,		   /* modifier */
	SPF_TERM_UNKNOWN_MODIFIER, /* name=value, ignored */
};

struct spf_term {
	enum spf_term_kind kind;
	/* For mechanisms: SPF_PASS (+, the default), SPF_FAIL (-),
	 * SPF_SOFTFAIL (~) or SPF_NEUTRAL (?). */
	enum spf_result qualifier;
	struct slice text; /* the whole term */
	/* The domain-spec (mechanisms) or the value (modifiers), macros
	 * unexpanded; empty when a, mx or ptr has none. */
	struct slice domain_spec;
	unsigned cidr4; /* ip4, a, mx: 0..32, 32 when absent */
	unsigned cidr6; /* ip6, a, mx: 0..128, 128 when absent */
	struct in_addr ip4;
	struct in6_addr ip6;
};

/* True when txt is an SPF record: "v=spf1" (any case) alone or followed
 * by a space (RFC 7208 4.5). */
bool spf_is_record(struct slice txt);

struct spf_record_info {
	size_t term_count;
	bool has_all;	   /* an "all": any redirect is ignored */
	bool has_redirect; /* redirect: its value in redirect */
	bool has_exp;
	struct slice redirect;
	struct slice exp;
};

/* Checks the whole record (version, then every term: RFC 7208 4.6 says a
 * syntax error anywhere is a permerror before anything is evaluated).
 * Returns 0, or -1 with *error_r a static message. Slices in *info_r
 * point into record. */
int spf_parse_record(struct slice record, struct spf_record_info *info_r,
		     const char **error_r);

/* Reads the term at *pos of record (start with *pos = 0: the version is
 * skipped), advancing *pos. Returns 1 with *term_r (pointing into
 * record), 0 at the end, -1 on a syntax error with *error_r set. */
int spf_next_term(struct slice record, size_t *pos, struct spf_term *term_r,
		  const char **error_r);

/* ---- macros (RFC 7208 7) ---- */

struct spf_macro_values {
	const struct spf_ip *ip;   /* %{i}, %{v}, %{c} */
	const char *sender_local;  /* %{l}; %{s} is l@o */
	const char *sender_domain; /* %{o} */
	const char *domain;	   /* %{d} */
	const char *helo;	   /* %{h}; NULL: "unknown" */
	const char *validated;	   /* %{p}; NULL: "unknown" */
	const char *receiver;	   /* %{r}; NULL: "unknown" */
	int64_t now;		   /* %{t} */
};

/* Expands a macro-string into out. explanation allows %{c}, %{r} and
 * %{t}, which are for explanation strings only. Returns 0, or -1 with
 * *error_r (bad syntax, or more than SPF_MAX_EXPANSION bytes). */
int spf_expand(struct slice macro_string, bool explanation,
	       const struct spf_macro_values *values, struct buf *out,
	       const char **error_r);

/* ---- the check ---- */

struct spf_outcome {
	enum spf_result result;
	/* The domain checked (as given, lowercased). */
	char domain[DNS_MAX_NAME + 1];
	/* The term of that domain's record that decided, as written
	 * ("-all", "include:_spf.example.net"); empty when none did. */
	char mechanism[64];
	/* Why, in a few words, for logs: "matched", "no SPF record",
	 * "too many DNS lookups", ... Printable ASCII only. */
	char reason[128];
	unsigned lookups;      /* terms that queried DNS */
	unsigned void_lookups; /* of which answered with nothing */
};

/* check_host(ip, domain, sender) of RFC 7208 4.
 *
 * domain: the MAIL FROM domain, or the HELO name when MAIL FROM is <> (or
 *   for a separate HELO check, RFC 7208 2.3).
 * sender_local: the MAIL FROM local part; NULL or "" (null reverse path,
 *   HELO check) means "postmaster" (RFC 7208 4.3).
 * helo: the HELO/EHLO argument, for %{h}; may be NULL.
 *
 * A domain that is not a multi-label DNS name gives none, as does one
 * without an SPF record. Blocking: the limits keep it to about 130
 * queries in the worst case. Fills *outcome_r and returns
 * its result. */
enum spf_result spf_check(const struct dns_resolver *dns,
			  const struct spf_ip *client, const char *domain,
			  const char *sender_local, const char *helo,
			  struct spf_outcome *outcome_r);

#endif
