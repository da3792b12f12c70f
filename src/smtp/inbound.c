/* inbound.c: the checks of a received message (see inbound.h). */
#include "core/common.h"

#include "smtp/inbound.h"

#include "core/log.h"
#include "smtp/authres.h"
#include "smtp/dkim.h"
#include "smtp/dmarc.h"
#include "smtp/dns.h"
#include "smtp/spf.h"

#include <sodium.h>

struct inbound_checker {
	const struct config *cfg;
	struct dns *dns;
	struct dns_resolver resolver;
	struct dmarc_psl *psl;
};

struct inbound_checker *inbound_checker_new(const struct config *cfg,
					    const char **error_r)
{
	struct inbound_checker *c = xcalloc(1, sizeof(*c));
	c->cfg = cfg;
	c->dns = dns_new(cfg->dns_resolver, cfg->dns_trust_anchor, error_r);
	if (c->dns == NULL) {
		free(c);
		return NULL;
	}
	c->resolver = dns_resolver(c->dns);
	c->psl = dmarc_psl_load(error_r);
	if (c->psl == NULL) {
		inbound_checker_free(&c);
		return NULL;
	}
	return c;
}

void inbound_checker_free(struct inbound_checker **cp)
{
	struct inbound_checker *c = *cp;
	if (c == NULL)
		return;
	dmarc_psl_free(&c->psl);
	dns_free(&c->dns);
	free(c);
	*cp = NULL;
}

void inbound_verdict_clear(struct inbound_verdict *v)
{
	buf_free(&v->message);
}

/* The header section of a message: up to and including the empty line
 * (or all of it when there is none). */
static struct slice header_of(struct slice m)
{
	for (size_t i = 0; i + 1 < m.n; i++)
		if (m.p[i] == '\n' &&
		    (m.p[i + 1] == '\n' ||
		     (m.p[i + 1] == '\r' && i + 2 < m.n && m.p[i + 2] == '\n')))
			return slice_make(m.p, i + 1);
	return m;
}

void inbound_check(struct inbound_checker *c, const char *client,
		   const char *helo, const char *mail_from,
		   struct slice received, struct slice message,
		   struct inbound_verdict *v)
{
	memset(v, 0, sizeof(*v));
	v->action = INBOUND_ACCEPT;
	const char *hostname = c->cfg->hostname;

	/* SPF: the MAIL FROM domain, or the HELO name for <> (RFC 7208
	 * 2.4). */
	struct spf_outcome spf;
	memset(&spf, 0, sizeof(spf));
	struct spf_ip ip;
	const char *at = strrchr(mail_from, '@');
	char local[256] = "postmaster";
	const char *spf_domain = helo;
	if (mail_from[0] != '\0' && at != NULL) {
		size_t n = (size_t)(at - mail_from);
		if (n < sizeof(local)) {
			memcpy(local, mail_from, n);
			local[n] = '\0';
		}
		spf_domain = at + 1;
	}
	if (spf_ip_parse(client, &ip) == 0)
		spf_check(&c->resolver, &ip, spf_domain, local, helo, &spf);
	else
		spf.result = SPF_NONE;

	/* DKIM, over the message as the client sent it. */
	struct dkim_result dkim[DKIM_MAX_SIGNATURES];
	size_t dkim_count = dkim_verify(&c->resolver, message, time(NULL), dkim,
					DKIM_MAX_SIGNATURES);

	/* DMARC for the From domain. */
	struct slice header = header_of(message);
	char from[DNS_MAX_NAME + 1] = "";
	struct dmarc_input in = {
		.from_status = dmarc_from_domain(header, from),
		.from_domain = from,
		.spf = spf.result,
		.spf_domain = spf.domain[0] ? spf.domain : spf_domain,
		.dkim = dkim,
		.dkim_count = dkim_count,
		.sample = randombytes_random(),
	};
	struct dmarc_result dmarc;
	dmarc_check(&c->resolver, c->psl, &in, &dmarc);

	if (dmarc.status == DMARC_FAIL &&
	    dmarc.disposition == DMARC_POLICY_REJECT &&
	    !c->cfg->dmarc_quarantine_rejects) {
		v->action = INBOUND_REJECT;
		snprintf(v->reply, sizeof(v->reply),
			 "550 5.7.1 Rejected by the DMARC policy of %s",
			 dmarc.from_domain);
	} else if (dmarc.status == DMARC_FAIL &&
		   (dmarc.disposition == DMARC_POLICY_QUARANTINE ||
		    dmarc.disposition == DMARC_POLICY_REJECT)) {
		v->action = INBOUND_JUNK;
	}

	struct authres_input ar = {
		.authserv_id = hostname,
		.spf = &spf,
		.spf_mailfrom = mail_from,
		.spf_helo = helo,
		.dkim = dkim,
		.dkim_count = dkim_count,
		.dmarc = &dmarc,
	};
	buf_init(&v->message, INBOUND_MAX_FIELD + received.n + message.n);
	/* Our Received field first, then what we found on this hop: both
	 * at the top, above everything that came with the message. */
	buf_append_slice(&v->message, received);
	authres_build_field(&ar, &v->message);
	size_t removed = authres_remove_forged(header, hostname, &v->message);
	buf_append(&v->message, message.p + header.n, message.n - header.n);
	if (buf_overflowed(&v->message)) {
		/* The field alone is too long (many signatures): the message
		 * goes without it rather than cut. */
		buf_reset(&v->message);
		buf_append_slice(&v->message, received);
		authres_remove_forged(header, hostname, &v->message);
		buf_append(&v->message, message.p + header.n,
			   message.n - header.n);
	}
	snprintf(v->summary, sizeof(v->summary), "spf=%s dkim=%s dmarc=%s%s%s",
		 spf_result_name(spf.result),
		 dkim_count ? dkim_status_name(dkim[0].status) : "none",
		 dmarc_status_name(dmarc.status),
		 v->action == INBOUND_REJECT ? " rejected"
		 : v->action == INBOUND_JUNK ? " into Junk"
					     : "",
		 removed ? " (forged Authentication-Results removed)" : "");
}
