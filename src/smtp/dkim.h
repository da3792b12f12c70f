/* dkim.h: DKIM signatures (RFC 6376), with rsa-sha256 and ed25519-sha256
 * (RFC 8463).
 *
 * Keys live under DATA/dkim/DOMAIN/ and only the queue process (signing)
 * and the admin command read them. Verification needs only DNS.
 *
 * Key layout (dkim.c is the only code that knows it):
 *   DATA/dkim/                        directory, 0700
 *   DATA/dkim/DOMAIN/                 directory, 0700; DOMAIN in lower case
 *   DATA/dkim/DOMAIN/SEL.ed25519.pem  an Ed25519 private key, PKCS#8 PEM, 0600
 *   DATA/dkim/DOMAIN/SEL.rsa.pem      an RSA private key, PKCS#8 PEM, 0600
 *   DATA/dkim/DOMAIN/active           the selectors that sign, one a line
 * Keys are made in pairs named after a prefix P: selector P"e" holds the
 * Ed25519 key and P"r" the RSA-2048 key. A key not named in "active"
 * never signs again; it is kept so that its DNS record can stay published
 * while mail it signed is still in flight, and may be deleted by hand.
 *
 * Choices where RFC 6376 leaves room (verification):
 * - A syntax error, a missing required tag, v= other than 1, an unknown
 *   c= or q=, i= outside d=, x= not after t=, h= without From, and every key
 *   record problem (none, unparsable, revoked, wrong k=, h= or s=) give
 *   permerror; an unknown a= gives neutral.
 * - An expired x=, an RSA key shorter than DKIM_MIN_RSA_BITS, a body hash
 *   or signature that does not match, and an l= longer than the body give
 *   fail.
 * - A valid signature whose l= leaves part of the body unsigned, or made
 *   with rsa-sha1 (RFC 8301), gives policy.
 * - A DNS failure or a DNSSEC-bogus key answer gives temperror.
 * - The first TXT record at the key name that parses as a key record is
 *   used. If h= names DKIM-Signature, the field being verified is never
 *   one of the instances it picks. */
#ifndef DIJK_SMTP_DKIM_H
#define DIJK_SMTP_DKIM_H

#include "core/buf.h"
#include "core/common.h"
#include "smtp/dns.h"

#include <time.h>

/* Signatures of one message looked at; the rest are ignored. */
#define DKIM_MAX_SIGNATURES 8
/* Tags in one tag-list; more is a syntax error. */
#define DKIM_MAX_TAGS 64
/* Names in h=; more is a permerror (and the signer lists no more). */
#define DKIM_MAX_SIGNED_FIELDS 128
/* Header fields of a message looked at; a message with more cannot be
 * signed and its signatures are a permerror. */
#define DKIM_MAX_HEADER_FIELDS 10000
/* RSA key sizes accepted when verifying (RFC 8301: at least 1024; the
 * upper bound keeps a hostile key's cost small). */
#define DKIM_MIN_RSA_BITS 1024
#define DKIM_MAX_RSA_BITS 8192
/* RSA keys made by dkim_keys_generate. */
#define DKIM_RSA_BITS 2048
/* Longest selector (one DNS label, or several). */
#define DKIM_MAX_SELECTOR 63
/* Lines of a signature field are folded to at most this many octets. */
#define DKIM_LINE_MAX 78
/* A private key file larger than this is refused. */
#define DKIM_MAX_KEY_FILE 16384
/* Selectors named in one domain's "active" file. */
#define DKIM_MAX_ACTIVE 4

enum dkim_status {
	DKIM_NONE,	/* no signature */
	DKIM_PASS,	/* verified */
	DKIM_FAIL,	/* the signature or the body hash does not match */
	DKIM_NEUTRAL,	/* a signature we do not evaluate */
	DKIM_POLICY,	/* valid, but against our policy (l=, old sha1) */
	DKIM_TEMPERROR, /* the key could not be fetched now */
	DKIM_PERMERROR, /* malformed signature or key record */
};

struct dkim_result {
	enum dkim_status status;
	char domain[DNS_MAX_NAME + 1]; /* d=, lowercase */
	char selector[64];	       /* s= */
	char algorithm[24];	       /* "rsa-sha256", "ed25519-sha256" */
	char header_b[16];	       /* the first 12 characters of b= */
	char reason[128];	       /* why, for a status other than pass */
};

/* Verifies the DKIM-Signature fields of message (the whole message as
 * received, CRLF line ends), at most max of them. Fills results and
 * returns how many were written (0: the message has no signature).
 * domain, selector and algorithm are filled only with what is safe to
 * print (letters, digits, '.', '-', '_'); otherwise they stay empty. */
size_t dkim_verify(const struct dns_resolver *dns, struct slice message,
		   time_t now, struct dkim_result *results, size_t max);

/* The name of a status in Authentication-Results ("pass", "fail", ...). */
const char *dkim_status_name(enum dkim_status status);

/* Signing keys of every domain that has them, read from DATA/dkim: the
 * keys named in each domain's "active" file. A data directory without
 * DATA/dkim gives a signer without keys. */
struct dkim_signer;
struct dkim_signer *dkim_signer_load(const char *data_dir,
				     const char **error_r);
/* Wipes the keys and frees; sets *s to NULL. */
void dkim_signer_free(struct dkim_signer **s);

/* Appends the DKIM-Signature fields for domain (CRLF-terminated and
 * folded; Ed25519 first, then RSA) to out; message is the whole message,
 * which the caller then sends after the fields. Returns 1 when signed, 0
 * when the domain has no key, -1 on error (*error_r set). */
int dkim_sign(const struct dkim_signer *s, const char *domain,
	      struct slice message, time_t now, struct buf *out,
	      const char **error_r);

/* A signer without keys, and a way to give it one (unit tests and fuzz
 * targets sign without a data directory). dkim_signer_add_pem parses a
 * PEM private key (Ed25519 or RSA of at least 1024 bits) for domain and
 * selector; the caller wipes pem. Returns 0 or -1 (*error_r set, valid
 * until the next call in this thread). */
struct dkim_signer *dkim_signer_new(void);
int dkim_signer_add_pem(struct dkim_signer *s, const char *domain,
			const char *selector, struct slice pem,
			const char **error_r);

/* The pure parts, exposed for tests and fuzz targets. Parsers do no I/O
 * and keep no state; their results point into the input. */

enum dkim_algorithm {
	DKIM_ALG_UNKNOWN,
	DKIM_ALG_RSA_SHA256,
	DKIM_ALG_ED25519_SHA256,
	DKIM_ALG_RSA_SHA1,
};

enum dkim_canon {
	DKIM_CANON_SIMPLE,
	DKIM_CANON_RELAXED,
};

enum dkim_key_type {
	DKIM_KEY_RSA,
	DKIM_KEY_ED25519,
};

/* The tags of a DKIM-Signature field. Slices are the tag values, trimmed
 * (p == NULL when the tag is absent). */
struct dkim_signature {
	struct slice version;	/* v= */
	struct slice algorithm; /* a=, as written */
	enum dkim_algorithm alg;
	struct slice b;		/* b=, folding whitespace included */
	struct slice body_hash; /* bh= */
	enum dkim_canon header_canon, body_canon;     /* c= */
	struct slice domain;			      /* d= */
	struct slice headers[DKIM_MAX_SIGNED_FIELDS]; /* h=, one a name */
	size_t header_count;
	struct slice identity; /* i= */
	struct slice query;    /* q= */
	struct slice selector; /* s= */
	bool has_length, has_timestamp, has_expiry;
	uint64_t length, timestamp, expiry; /* l=, t=, x= */
	/* Where the value of b= lies in the parsed text, from just after
	 * "b=" to the ';' or the end: verification hashes the field with
	 * these bytes removed. */
	size_t b_start, b_end;
};

/* Parses value, the text after the colon of a DKIM-Signature field, and
 * checks what needs no DNS: required tags, v=1, c=, q=, d= and s= syntax,
 * i= within d=, x= after t=, From in h=. An unknown a= is not an
 * error (alg is DKIM_ALG_UNKNOWN). Returns 0, or -1 with *error_r set to a
 * static text; *sig_r holds the tags read before the error either way. */
int dkim_parse_signature(struct slice value, struct dkim_signature *sig_r,
			 const char **error_r);

/* A key record (RFC 6376 3.6.1). */
struct dkim_key_record {
	enum dkim_key_type type; /* k=, rsa when absent */
	struct slice public_key; /* p=, base64 with any whitespace */
	bool revoked;		 /* p= is empty */
	bool sha1_allowed;	 /* h= absent or listing sha1 */
	bool sha256_allowed;	 /* h= absent or listing sha256 */
	bool testing;		 /* t=y */
	bool strict;		 /* t=s: i= must be in d= exactly */
};

/* Parses the text of a key TXT record. v=, when present, must come first
 * and be DKIM1; k= must be rsa or ed25519; s= must allow email; p= must be
 * present. Returns 0, or -1 with *error_r set to a static text. */
int dkim_parse_key_record(struct slice record, struct dkim_key_record *key_r,
			  const char **error_r);

/* Appends the canonical form of one header field (field: name, colon and
 * value, folded lines included, without the final CRLF; no CRLF is added)
 * or of a body (RFC 6376 3.4) to out. */
void dkim_canon_header(enum dkim_canon canon, struct slice field,
		       struct buf *out);
void dkim_canon_body(enum dkim_canon canon, struct slice body, struct buf *out);

/* The key store below data_dir (the layout is at the top of this file).
 * Domains are given in lower case. Errors are static texts or texts in a
 * per-thread buffer valid until the next call. */

/* One key, as dkim_keys_list shows it; strings valid during the call. */
struct dkim_key_info {
	const char *domain;
	const char *selector;
	enum dkim_key_type type;
	bool active;
	/* The TXT record to publish at SELECTOR._domainkey.DOMAIN:
	 * "v=DKIM1; k=ed25519; p=..." */
	const char *record;
};
typedef void dkim_key_fn(const struct dkim_key_info *key, void *context);

/* Calls fn for every key (of domain only, when not NULL), domains and
 * selectors in name order. No DATA/dkim means no keys. */
int dkim_keys_list(const char *data_dir, const char *domain, dkim_key_fn *fn,
		   void *context, const char **error_r);
/* True when prefix is a usable selector prefix (lower-case letters,
 * digits and '-', starting with a letter or digit, short enough for the
 * suffix). */
bool dkim_selector_prefix_valid(const char *prefix);
/* True when a key pair named after prefix exists for domain. */
bool dkim_keys_exist(const char *data_dir, const char *domain,
		     const char *prefix);
/* Makes a new pair: an Ed25519 key named prefix"e" and an RSA key of
 * DKIM_RSA_BITS named prefix"r". Refuses when either selector exists. The
 * keys do not sign until dkim_keys_activate names them. */
int dkim_keys_generate(const char *data_dir, const char *domain,
		       const char *prefix, const char **error_r);
/* Makes prefix"e" and prefix"r" the only keys of domain that sign
 * (written atomically); the others stay on disk, inactive. */
int dkim_keys_activate(const char *data_dir, const char *domain,
		       const char *prefix, const char **error_r);
/* Number of active selectors of domain (0 when none), or -1. */
int dkim_keys_active_count(const char *data_dir, const char *domain,
			   const char **error_r);

#endif
