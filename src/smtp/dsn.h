/* dsn.h: delivery status notifications (RFC 3464): the message that tells
 * a sender their mail failed or is delayed.
 *
 * Pure: builds bytes from what the queue knows, with no I/O. */
#ifndef DIJK_SMTP_DSN_H
#define DIJK_SMTP_DSN_H

#include "core/buf.h"
#include "core/common.h"

#include <time.h>

/* Bytes of the original's header kept in a notice. */
#define DSN_MAX_HEADER (64 * 1024)

struct dsn_recipient {
	const char *address;
	/* The remote's reply ("550 5.1.1 no such user") or our own words
	 * when there was none; it gives the Status and Diagnostic-Code. */
	const char *reply;
	bool reply_is_remote;	/* from an SMTP server (smtp; ...) */
	const char *remote_mta; /* host that answered, or NULL */
};

struct dsn_report {
	const char *hostname; /* Reporting-MTA and the From's domain */
	const char *sender;   /* the original envelope sender (To) */
	time_t arrival;
	time_t now;
	bool delayed; /* a delay notice, not a failure */
	const struct dsn_recipient *recipients;
	size_t recipient_count;
	struct slice original; /* the original message */
};

/* The status code for a reply: its enhanced code when it has one
 * ("5.1.1"), else one from the reply's class; out holds 16 bytes. */
void dsn_status(const char *reply, bool delayed, char *out);

/* Appends the whole notice (header and body, CRLF line ends) to out.
 * Returns 0, or -1 when out overflowed. */
int dsn_build(const struct dsn_report *r, struct buf *out);

#endif
