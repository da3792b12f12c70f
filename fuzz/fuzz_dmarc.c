/* fuzz_dmarc.c: the DMARC record parser and the From-domain reader over
 * arbitrary bytes, and a whole check whose DMARC record is the input. */
#include "core/common.h"

#include "smtp/dmarc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_zone {
	struct slice record;
	bool fail;
};

static int fuzz_resolve(void *context, const char *name, uint16_t type,
			struct dns_answer *answer_r)
{
	struct fuzz_zone *z = context;
	DIJK_ASSERT(strncmp(name, "_dmarc.", 7) == 0 && strlen(name) <= 253);
	if (z->fail) {
		dns_answer_set(answer_r, DNS_TEMPFAIL, false, NULL, 0);
		return -1;
	}
	static uint8_t storage[4096 + 4096 / 255 + 1];
	size_t n = 0;
	for (size_t at = 0; at < z->record.n; at += 255) {
		size_t chunk = z->record.n - at < 255 ? z->record.n - at : 255;
		storage[n++] = (uint8_t)chunk;
		memcpy(storage + n, z->record.p + at, chunk);
		n += chunk;
	}
	struct slice rdata = slice_make(storage, n);
	return dns_answer_set(answer_r, DNS_OK, false, &rdata, 1);
}

static struct dmarc_psl *psl;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (psl == NULL) {
		const char *error;
		psl = dmarc_psl_load(&error);
		DIJK_ASSERT(psl != NULL);
	}
	struct slice in = slice_make(data, size);
	if (size > 4096)
		return 0;

	struct dmarc_record record;
	const char *error = NULL;
	if (dmarc_parse_record(in, &record, &error) == 0) {
		DIJK_ASSERT(record.pct <= 100);
		DIJK_ASSERT(record.rua.n == 0 ||
			    (record.rua.p >= in.p &&
			     record.rua.p + record.rua.n <= in.p + in.n));
		DIJK_ASSERT(record.has_sp || record.sp == record.p);
	} else {
		DIJK_ASSERT(error != NULL);
	}

	char domain[DNS_MAX_NAME + 1];
	enum dmarc_from_status from = dmarc_from_domain(in, domain);
	if (from == DMARC_FROM_OK) {
		size_t n = strlen(domain);
		DIJK_ASSERT(n > 0 && n <= 253);
		for (size_t i = 0; i < n; i++)
			DIJK_ASSERT(!(domain[i] >= 'A' && domain[i] <= 'Z') &&
				    domain[i] > 0x20 && domain[i] < 0x7f);
	} else {
		DIJK_ASSERT(domain[0] == '\0');
	}

	struct fuzz_zone z = {in, size > 0 && data[0] == 'X'};
	struct dns_resolver dns = {fuzz_resolve, &z};
	struct dkim_result dkim = {.status = DKIM_PASS,
				   .domain = "mail.example.co.uk"};
	struct dmarc_input input = {
		.from_status = from,
		.from_domain =
			from == DMARC_FROM_OK ? domain : "sub.example.co.uk",
		.spf = SPF_PASS,
		.spf_domain = "bounce.example.com",
		.dkim = &dkim,
		.dkim_count = 1,
		.sample = (uint32_t)size,
	};
	if (from != DMARC_FROM_OK)
		input.from_status = DMARC_FROM_OK;
	struct dmarc_result result;
	enum dmarc_status s = dmarc_check(&dns, psl, &input, &result);
	DIJK_ASSERT(s == result.status);
	DIJK_ASSERT(s != DMARC_PASS || result.disposition == DMARC_POLICY_NONE);
	DIJK_ASSERT(result.disposition <= result.policy);
	for (const char *c = result.reason; *c != '\0'; c++)
		DIJK_ASSERT(*c >= 0x20 && *c <= 0x7e);
	return 0;
}
