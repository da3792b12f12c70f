/* inbound.h: what the MX port checks of a received message before it is
 * stored: SPF for the MAIL FROM domain (or the HELO name for <>), the DKIM
 * signatures, and DMARC for the From domain. The verdicts go into an
 * Authentication-Results field (RFC 8601) at the top of the message, just
 * below our Received field, which replaces any field that claims to be
 * ours; a DMARC p=reject failure is
 * refused (or, with dmarc.reject = quarantine, delivered into Junk), and
 * p=quarantine goes into Junk.
 *
 * The checks block on DNS: inbound_check runs on a pool thread, and one
 * checker serves every thread. */
#ifndef DIJK_SMTP_INBOUND_H
#define DIJK_SMTP_INBOUND_H

#include "core/buf.h"
#include "core/common.h"
#include "core/config.h"

/* Largest Authentication-Results field written. */
#define INBOUND_MAX_FIELD 4096

enum inbound_action {
	INBOUND_ACCEPT,
	INBOUND_JUNK,	/* deliver into the Junk mailbox */
	INBOUND_REJECT, /* refuse at the end of DATA with reply */
};

struct inbound_verdict {
	enum inbound_action action;
	char reply[256];
	/* The message to store: our Received and Authentication-Results
	 * fields, then the message without forged fields of ours. Owned by
	 * the verdict; inbound_verdict_clear. */
	struct buf message;
	char summary[256]; /* for the log */
};

struct inbound_checker;
struct inbound_checker *inbound_checker_new(const struct config *cfg,
					    const char **error_r);
void inbound_checker_free(struct inbound_checker **c);

/* Checks a message from client (address text), who said helo and gave
 * mail_from ("" for <>). received is our Received field (kept at the very
 * top, after the new field) and message what the client sent. */
void inbound_check(struct inbound_checker *c, const char *client,
		   const char *helo, const char *mail_from,
		   struct slice received, struct slice message,
		   struct inbound_verdict *v);
void inbound_verdict_clear(struct inbound_verdict *v);

#endif
