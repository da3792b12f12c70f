/* fuzz_dns.c: the rdata readers of DNS answers (MX, TXT, A, AAAA, TLSA,
 * names) over arbitrary bytes. The first byte picks the reader; what a
 * reader accepts must be consistent with the bytes it read. */
#include "core/common.h"

#include "smtp/dns.h"

#include <arpa/inet.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_name(const char *name)
{
	size_t n = strlen(name);
	DIJK_ASSERT(n <= DNS_MAX_NAME);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		DIJK_ASSERT(c > 0x20 && c < 0x7f && !(c >= 'A' && c <= 'Z'));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 4096)
		return 0;
	struct slice rdata = slice_make(data + 1, size - 1);
	char name[DNS_MAX_NAME + 1];
	switch (data[0] % 6) {
	case 0: {
		uint16_t preference;
		if (dns_rdata_mx(rdata, &preference, name) == 0)
			check_name(name);
		break;
	}
	case 1: {
		char *text = xmalloc(rdata.n + 1);
		size_t length;
		if (dns_rdata_txt(rdata, text, &length) == 0)
			DIJK_ASSERT(length < rdata.n || rdata.n == 0 ||
				    length == 0);
		free(text);
		break;
	}
	case 2: {
		struct in_addr a;
		DIJK_ASSERT((dns_rdata_a(rdata, &a) == 0) == (rdata.n == 4));
		break;
	}
	case 3: {
		struct in6_addr a;
		DIJK_ASSERT((dns_rdata_aaaa(rdata, &a) == 0) ==
			    (rdata.n == 16));
		break;
	}
	case 4: {
		struct dns_tlsa t;
		if (dns_rdata_tlsa(rdata, &t) == 0)
			DIJK_ASSERT(t.data.p + t.data.n == rdata.p + rdata.n);
		break;
	}
	default: {
		size_t offset = 0;
		if (dns_read_name(rdata, &offset, name) == 0) {
			DIJK_ASSERT(offset <= rdata.n);
			check_name(name);
		}
		break;
	}
	}
	/* Answers built from the bytes survive a copy. */
	struct dns_answer a;
	struct slice parts[2] = {rdata, slice_make(data, size / 2)};
	if (dns_answer_set(&a, DNS_OK, false, parts, 2) == 0) {
		DIJK_ASSERT(a.count == 2 && a.rdata[0].n == rdata.n);
		DIJK_ASSERT(rdata.n == 0 ||
			    memcmp(a.rdata[0].p, rdata.p, rdata.n) == 0);
		dns_answer_clear(&a);
	}
	return 0;
}
