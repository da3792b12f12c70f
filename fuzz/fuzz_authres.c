/* fuzz_authres.c: the Authentication-Results reader and the forged-field
 * finder over arbitrary bytes, and the writer given names made of the
 * input: what it writes must read back. */
#include "core/common.h"

#include "smtp/authres.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct slice in = slice_make(data, size);

	struct authres_summary sum;
	const char *error = NULL;
	if (authres_parse(in, &sum, &error) == 0) {
		DIJK_ASSERT(sum.count <= AUTHRES_MAX_RESULTS);
		for (size_t i = 0; i < sum.count; i++)
			DIJK_ASSERT(sum.results[i].method[0] != '\0' &&
				    sum.results[i].result[0] != '\0');
	} else {
		DIJK_ASSERT(error != NULL && sum.count == 0);
	}

	/* Ranges lie in the input, in order, without overlap. */
	size_t pos = 0, previous_end = 0, found = 0;
	struct authres_range r;
	while (authres_next_forged(in, "mx.example.org", &pos, &r)) {
		DIJK_ASSERT(r.offset >= previous_end && r.length > 0);
		DIJK_ASSERT(r.offset + r.length <= size && pos <= size);
		DIJK_ASSERT(
			slice_prefix_ci(slice_make(data + r.offset, r.length),
					"authentication-results"));
		previous_end = r.offset + r.length;
		found++;
	}
	struct buf out;
	buf_init(&out, size + 1);
	DIJK_ASSERT(authres_remove_forged(in, "mx.example.org", &out) == found);
	DIJK_ASSERT(!buf_overflowed(&out) && out.n <= size);
	buf_free(&out);

	/* Names from the input: the field must stay one field. */
	struct dkim_result dkim;
	memset(&dkim, 0, sizeof(dkim));
	dkim.status = DKIM_FAIL;
	size_t third = size / 3;
	memcpy(dkim.domain, data,
	       third < sizeof(dkim.domain) - 1 ? third
					       : sizeof(dkim.domain) - 1);
	memcpy(dkim.selector, data + third,
	       third < sizeof(dkim.selector) - 1 ? third
						 : sizeof(dkim.selector) - 1);
	char *id = xstrndup(data + 2 * third, size - 2 * third);
	struct spf_outcome spf = {.result = SPF_SOFTFAIL};
	struct dmarc_result dmarc;
	memset(&dmarc, 0, sizeof(dmarc));
	memcpy(dmarc.from_domain, dkim.domain, sizeof(dmarc.from_domain));
	struct authres_input input = {id,    &spf, id,	  dkim.selector,
				      &dkim, 1,	   &dmarc};
	buf_init(&out, 1 << 16);
	authres_build_field(&input, &out);
	DIJK_ASSERT(!buf_overflowed(&out));
	size_t line = 0;
	for (size_t i = 0; i < out.n; i++) {
		uint8_t c = out.p[i];
		if (c == '\r') {
			DIJK_ASSERT(i + 1 < out.n && out.p[i + 1] == '\n');
			DIJK_ASSERT(i + 2 == out.n || out.p[i + 2] == '\t');
			line = 0;
			i++;
			continue;
		}
		DIJK_ASSERT(c != '\n' && c != 0 && c < 0x7f);
		DIJK_ASSERT(++line <= 998);
	}
	struct slice value = buf_slice(&out);
	value.p += strlen("Authentication-Results:");
	value.n -= strlen("Authentication-Results:") + 2;
	DIJK_ASSERT(authres_parse(value, &sum, &error) == 0);
	DIJK_ASSERT(sum.count == 3);
	buf_free(&out);
	free(id);
	return 0;
}
