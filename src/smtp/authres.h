/* authres.h: the Authentication-Results header field (RFC 8601).
 *
 * Three jobs: write the field that records our SPF, DKIM and DMARC
 * verdicts on a received message; find fields in a received message
 * that pretend to be ours (RFC 8601 5: they must go before ours is
 * added); and read a field back, for the webmail's "verified sender"
 * mark. The finder and the reader are pure functions over bytes, fuzzed
 * by fuzz/fuzz_authres.c. */
#ifndef DIJK_SMTP_AUTHRES_H
#define DIJK_SMTP_AUTHRES_H

#include "core/buf.h"
#include "core/common.h"
#include "smtp/dkim.h"
#include "smtp/dmarc.h"
#include "smtp/spf.h"

/* Columns a line of the written field stays within (RFC 5322 2.1.1). */
#define AUTHRES_LINE_LIMIT 78

/* ---- writing ---- */

struct authres_input {
	/* Our authserv-id: the server's host name. */
	const char *authserv_id;
	/* SPF: NULL when not checked. mailfrom is the MAIL FROM address (or
	 * its domain) as the client gave it, "" or NULL for <>: then the
	 * result is shown for helo (smtp.helo=). */
	const struct spf_outcome *spf;
	const char *spf_mailfrom;
	const char *spf_helo;
	/* DKIM: one "dkim=" per result; none at all gives "dkim=none". */
	const struct dkim_result *dkim;
	size_t dkim_count;
	/* DMARC: NULL when not checked. */
	const struct dmarc_result *dmarc;
};

/* Appends the value of an Authentication-Results field (what follows
 * "Authentication-Results:", starting with a space, without the final
 * CRLF), folded with CRLF TAB so that no line of the field passes
 * AUTHRES_LINE_LIMIT columns where the parts allow it. Example:
 *
 *   " mx.example.org;\r\n\tspf=pass smtp.mailfrom=a@example.com;\r\n"
 *   "\tdkim=pass header.d=example.com header.s=s1 header.b=\"abc/def\";\r\n"
 *   "\tdmarc=pass (p=reject dis=none) header.from=example.com"
 *
 * Every value written is a token (RFC 2045) or, for the mail from, a
 * local-part@domain whose characters are all safe; anything else is a
 * quoted-string in which '"' and '\' are escaped and bytes outside
 * printable ASCII are written as '?'; a value is cut to
 * AUTHRES_MAX_VALUE - 1 bytes, so that authres_parse reads back all that
 * is written. So no byte of a name that came from the network can end
 * the field or start another. */
void authres_build_value(const struct authres_input *input, struct buf *out);

/* Appends "Authentication-Results:", the value and CRLF. */
void authres_build_field(const struct authres_input *input, struct buf *out);

/* ---- finding forged fields ---- */

struct authres_range {
	size_t offset; /* into the header section */
	size_t length; /* the whole field, continuation lines and line end */
};

/* Finds the next Authentication-Results field at or after *pos of header
 * (the message from its start; reading stops at the first empty line)
 * whose authserv-id is authserv_id (compared without case), advancing
 * *pos past it. Field names are compared without case, with spaces
 * before the colon allowed. Returns true with *range_r, or false when
 * there are no more. Start with *pos = 0. */
bool authres_next_forged(struct slice header, const char *authserv_id,
			 size_t *pos, struct authres_range *range_r);

/* Appends header without the fields authres_next_forged finds; returns
 * how many were left out. */
size_t authres_remove_forged(struct slice header, const char *authserv_id,
			     struct buf *out);

/* ---- reading ---- */

/* Results read from one field; later ones are ignored. */
#define AUTHRES_MAX_RESULTS 16
/* Longest authserv-id, method, result or property value kept, in bytes;
 * a longer one makes the field unreadable. */
#define AUTHRES_MAX_VALUE 320

struct authres_result {
	char method[32]; /* "spf", "dkim", "dmarc", ...; lowercase */
	char result[16]; /* "pass", "fail", ...; lowercase */
	/* Properties the webmail shows; "" when absent. Unquoted, without
	 * control characters. */
	char header_from[AUTHRES_MAX_VALUE]; /* dmarc */
	char header_d[AUTHRES_MAX_VALUE];    /* dkim */
	char header_i[AUTHRES_MAX_VALUE];    /* dkim */
	char smtp_mailfrom[AUTHRES_MAX_VALUE];
	char smtp_helo[AUTHRES_MAX_VALUE];
};

struct authres_summary {
	char authserv_id[AUTHRES_MAX_VALUE]; /* unquoted */
	bool no_result;			     /* "id; none" */
	size_t count;
	struct authres_result results[AUTHRES_MAX_RESULTS];
};

/* Parses an Authentication-Results value (what follows the colon;
 * folding, comments and quoted strings allowed). Returns 0, or -1 with
 * *error_r (static) and an empty summary when the value is malformed.
 * The caller checks that authserv_id is its own before believing it. */
int authres_parse(struct slice value, struct authres_summary *summary_r,
		  const char **error_r);

/* The first result of method (lowercase) in the summary, or NULL. */
const struct authres_result *authres_find(const struct authres_summary *summary,
					  const char *method);

#endif
