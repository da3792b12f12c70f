/* fuzz_base64.c: strict base64 decoding (SASL responses) over arbitrary
 * bytes; what decodes must encode and decode back to the same bytes. */
#include "core/common.h"

#include "core/base64.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4096)
		return 0;
	uint8_t *decoded = xmalloc(BASE64_DECODED_MAX(size));
	long n = base64_decode(slice_make(data, size), decoded);
	if (n >= 0) {
		DIJK_ASSERT((size_t)n <= BASE64_DECODED_MAX(size));
		char *encoded = xmalloc(BASE64_ENCODED_SIZE((size_t)n));
		base64_encode(slice_make(decoded, (size_t)n), encoded);
		uint8_t *again = xmalloc(BASE64_DECODED_MAX(strlen(encoded)));
		long m = base64_decode(slice_cstr(encoded), again);
		DIJK_ASSERT(m == n && memcmp(again, decoded, (size_t)n) == 0);
		free(again);
		free(encoded);
	}
	free(decoded);
	return 0;
}
