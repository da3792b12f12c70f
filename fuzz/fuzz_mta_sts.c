/* fuzz_mta_sts.c: the MTA-STS record and policy parsers over arbitrary
 * bytes; what they accept must be well-formed. */
#include "core/common.h"

#include "smtp/mtasts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > MTA_STS_MAX_POLICY + 16)
		return 0;
	struct slice s = slice_make(data, size);
	char id[MTA_STS_MAX_ID + 1];
	if (mta_sts_parse_record(s, id) == 0) {
		size_t n = strlen(id);
		DIJK_ASSERT(n >= 1 && n <= MTA_STS_MAX_ID);
	}
	struct mta_sts_policy p;
	const char *error;
	if (mta_sts_parse_policy(s, &p, &error) == 0) {
		DIJK_ASSERT(p.max_age <= MTA_STS_MAX_AGE);
		DIJK_ASSERT(p.mx_count <= MTA_STS_MAX_MX);
		DIJK_ASSERT(p.mode == MTA_STS_NONE || p.mx_count > 0);
		for (size_t i = 0; i < p.mx_count; i++) {
			DIJK_ASSERT(strlen(p.mx[i]) <= DNS_MAX_NAME);
			/* A pattern matches the host it names. */
			if (p.mx[i][0] != '*')
				DIJK_ASSERT(mta_sts_mx_matches(&p, p.mx[i]));
		}
	}
	return 0;
}
