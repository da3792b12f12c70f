/* dns.c: DNS lookups through libunbound, and the rdata readers (see
 * dns.h). */
#include "core/common.h"

#include "smtp/dns.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <sys/mman.h>
#include <unistd.h>
#include <unbound.h>

#define DNS_CLASS_IN 1

struct dns {
	struct ub_ctx *ctx; /* NULL for "none" */
};

void dns_answer_clear(struct dns_answer *a)
{
	free(a->storage);
	memset(a, 0, sizeof(*a));
}

int dns_answer_set(struct dns_answer *a, enum dns_status status, bool secure,
		   const struct slice *rdata, size_t count)
{
	memset(a, 0, sizeof(*a));
	a->status = status;
	a->secure = secure;
	if (count > DNS_MAX_RECORDS)
		count = DNS_MAX_RECORDS;
	size_t total = 0;
	for (size_t i = 0; i < count; i++)
		total += rdata[i].n;
	a->storage = malloc(total + 1);
	if (a->storage == NULL)
		return -1;
	size_t at = 0;
	for (size_t i = 0; i < count; i++) {
		if (rdata[i].n > 0)
			memcpy(a->storage + at, rdata[i].p, rdata[i].n);
		a->rdata[i] = slice_make(a->storage + at, rdata[i].n);
		at += rdata[i].n;
	}
	a->count = count;
	return 0;
}

static int unbound_resolve(void *context, const char *name, uint16_t type,
			   struct dns_answer *answer_r)
{
	struct dns *d = context;
	struct ub_result *result = NULL;
	memset(answer_r, 0, sizeof(*answer_r));
	answer_r->status = DNS_TEMPFAIL;
	if (d->ctx == NULL || strlen(name) > DNS_MAX_NAME)
		return -1;
	if (ub_resolve(d->ctx, name, type, DNS_CLASS_IN, &result) != 0 ||
	    result == NULL)
		return -1;
	struct slice records[DNS_MAX_RECORDS];
	size_t count = 0;
	enum dns_status status;
	if (result->bogus) {
		status = DNS_BOGUS;
	} else if (result->nxdomain) {
		status = DNS_NXDOMAIN;
	} else if (result->rcode != 0) {
		status = DNS_TEMPFAIL;
	} else if (!result->havedata) {
		status = DNS_NODATA;
	} else {
		status = DNS_OK;
		for (int i = 0;
		     result->data[i] != NULL && count < DNS_MAX_RECORDS; i++)
			records[count++] = slice_make(result->data[i],
						      (size_t)result->len[i]);
	}
	bool secure = result->secure != 0;
	int rc = dns_answer_set(answer_r, status, secure, records, count);
	ub_resolve_free(result);
	if (rc != 0) {
		answer_r->status = DNS_TEMPFAIL;
		return -1;
	}
	return status == DNS_TEMPFAIL || status == DNS_BOGUS ? -1 : 0;
}

/* With a resolver of the admin's choice, that resolver answers for every
 * name: libunbound must query it even on loopback, and must not answer
 * the special-use names of RFC 6761 itself ("test." is where test setups
 * live). Local zones can only be changed by a configuration file, so one
 * is made in memory. */
static int forwarder_options(struct ub_ctx *ctx)
{
	static const char conf[] = "server:\n"
				   "  do-not-query-localhost: no\n"
				   "  local-zone: \"test.\" nodefault\n";
	int fd = memfd_create("dijk-unbound.conf", MFD_CLOEXEC);
	if (fd < 0)
		return UB_SYNTAX;
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	int rc = write(fd, conf, sizeof(conf) - 1) == (ssize_t)sizeof(conf) - 1
			 ? ub_ctx_config(ctx, path)
			 : UB_SYNTAX;
	close(fd);
	return rc;
}

struct dns *dns_new(const char *forwarder, const char *trust_anchor_file,
		    const char **error_r)
{
	static char error[256];
	struct dns *d = calloc(1, sizeof(*d));
	if (d == NULL) {
		*error_r = "out of memory";
		return NULL;
	}
	if (forwarder != NULL && strcmp(forwarder, "none") == 0)
		return d;
	d->ctx = ub_ctx_create();
	if (d->ctx == NULL) {
		free(d);
		*error_r = "cannot create the DNS resolver";
		return NULL;
	}
	int rc = 0;
	const char *what = "";
	if (forwarder != NULL && forwarder[0] != '\0') {
		what = "dns.resolver";
		rc = forwarder_options(d->ctx);
		if (rc == 0)
			rc = ub_ctx_set_fwd(d->ctx, forwarder);
	}
	if (rc == 0 && trust_anchor_file != NULL &&
	    trust_anchor_file[0] != '\0') {
		what = "dns.trust_anchor";
		rc = ub_ctx_add_ta_file(d->ctx, trust_anchor_file);
		/* libunbound reads the file when the context is finalized;
		 * removing a zone that is not there finalizes it now, while
		 * this process may still read the file (the children give up
		 * root after their setup), and a bad anchor fails here
		 * rather than at the first lookup. */
		if (rc == 0)
			rc = ub_ctx_zone_remove(d->ctx, "dijk-setup.invalid.");
	}
	if (rc != 0) {
		snprintf(error, sizeof(error), "%s: %s", what, ub_strerror(rc));
		*error_r = error;
		dns_free(&d);
		return NULL;
	}
	return d;
}

void dns_free(struct dns **d)
{
	if (*d == NULL)
		return;
	if ((*d)->ctx != NULL)
		ub_ctx_delete((*d)->ctx);
	free(*d);
	*d = NULL;
}

struct dns_resolver dns_resolver(struct dns *d)
{
	struct dns_resolver r = {unbound_resolve, d};
	return r;
}

/* ---- rdata readers ---- */

int dns_read_name(struct slice rdata, size_t *offset, char *name_r)
{
	size_t at = *offset, out = 0;
	for (;;) {
		if (at >= rdata.n)
			return -1;
		uint8_t len = rdata.p[at++];
		if (len == 0)
			break;
		/* Compression pointers and extended labels never appear in
		 * the rdata a resolver hands over. */
		if (len > 63 || len > rdata.n - at)
			return -1;
		if (out + (out > 0) + len > DNS_MAX_NAME)
			return -1;
		if (out > 0)
			name_r[out++] = '.';
		for (uint8_t i = 0; i < len; i++) {
			uint8_t c = rdata.p[at + i];
			if (!isalnum(c) && c != '-' && c != '_' && c != '*')
				return -1;
			name_r[out++] = (char)tolower(c);
		}
		at += len;
	}
	name_r[out] = '\0';
	*offset = at;
	return 0;
}

int dns_rdata_mx(struct slice rdata, uint16_t *preference_r, char *name_r)
{
	if (rdata.n < 3)
		return -1;
	*preference_r = (uint16_t)(rdata.p[0] << 8 | rdata.p[1]);
	size_t offset = 2;
	if (dns_read_name(rdata, &offset, name_r) != 0 || offset != rdata.n)
		return -1;
	return 0;
}

int dns_rdata_txt(struct slice rdata, char *out, size_t *length_r)
{
	size_t at = 0, n = 0;
	while (at < rdata.n) {
		uint8_t len = rdata.p[at++];
		if (len > rdata.n - at)
			return -1;
		memcpy(out + n, rdata.p + at, len);
		n += len;
		at += len;
	}
	out[n] = '\0';
	*length_r = n;
	return 0;
}

int dns_rdata_a(struct slice rdata, struct in_addr *addr_r)
{
	if (rdata.n != 4)
		return -1;
	memcpy(addr_r, rdata.p, 4);
	return 0;
}

int dns_rdata_aaaa(struct slice rdata, struct in6_addr *addr_r)
{
	if (rdata.n != 16)
		return -1;
	memcpy(addr_r, rdata.p, 16);
	return 0;
}

int dns_rdata_tlsa(struct slice rdata, struct dns_tlsa *tlsa_r)
{
	if (rdata.n < 4)
		return -1;
	tlsa_r->usage = rdata.p[0];
	tlsa_r->selector = rdata.p[1];
	tlsa_r->matching = rdata.p[2];
	tlsa_r->data = slice_make(rdata.p + 3, rdata.n - 3);
	return 0;
}
