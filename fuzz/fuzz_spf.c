/* fuzz_spf.c: the SPF record parser, macro expansion, and a whole
 * check_host() against a resolver that answers from the input.
 *
 * The input is lines: the first is the record of the domain checked;
 * other TXT queries get the line a hash of their name picks; A, AAAA, MX
 * and PTR answers are made up from the same hash, some empty, some
 * failing, some holding the client's address. */
#include "core/common.h"

#include "smtp/spf.h"

#include <arpa/inet.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_LINES 32

struct fuzz_zone {
	struct slice lines[FUZZ_MAX_LINES];
	size_t count;
	uint32_t seed;
	const struct spf_ip *client;
	unsigned queries;
};

static uint32_t hash_name(const char *name, uint32_t seed)
{
	uint32_t h = 2166136261u ^ seed;
	for (const char *p = name; *p != '\0'; p++) {
		uint8_t c = (uint8_t)*p;
		if (c >= 'A' && c <= 'Z')
			c += 32;
		h = (h ^ c) * 16777619u;
	}
	return h;
}

/* TXT rdata: the line cut into character-strings. */
static size_t put_txt(struct slice line, uint8_t *out, size_t cap)
{
	size_t n = 0;
	for (size_t at = 0; at < line.n && n + 256 <= cap; at += 255) {
		size_t chunk = line.n - at < 255 ? line.n - at : 255;
		out[n++] = (uint8_t)chunk;
		memcpy(out + n, line.p + at, chunk);
		n += chunk;
	}
	return n;
}

static size_t put_name(const char *name, uint8_t *out)
{
	size_t n = 0;
	const char *p = name;
	while (*p != '\0') {
		const char *dot = strchr(p, '.');
		size_t len = dot != NULL ? (size_t)(dot - p) : strlen(p);
		out[n++] = (uint8_t)len;
		memcpy(out + n, p, len);
		n += len;
		p += len + (dot != NULL);
	}
	out[n++] = 0;
	return n;
}

static int fuzz_resolve(void *context, const char *name, uint16_t type,
			struct dns_answer *answer_r)
{
	struct fuzz_zone *z = context;
	z->queries++;
	DIJK_ASSERT(z->queries < 400);
	DIJK_ASSERT(strlen(name) <= 253);
	uint32_t h = hash_name(name, z->seed + type);
	if (h % 23 == 0) {
		dns_answer_set(answer_r, DNS_TEMPFAIL, false, NULL, 0);
		return -1;
	}
	static uint8_t storage[16][1100];
	struct slice rdata[16];
	size_t count = 0;
	switch (type) {
	case DNS_TYPE_TXT: {
		bool top = strcmp(name, "fuzz.example") == 0;
		size_t records = top ? 1 : h % 3;
		for (size_t i = 0; i < records && z->count > 0; i++) {
			size_t line = top ? 0 : (h / 3 + i) % z->count;
			size_t n = put_txt(z->lines[line], storage[count],
					   sizeof(storage[count]));
			rdata[count] = slice_make(storage[count], n);
			count++;
		}
		break;
	}
	case DNS_TYPE_A:
	case DNS_TYPE_AAAA: {
		size_t records = h % 4;
		for (size_t i = 0; i < records; i++) {
			size_t n = type == DNS_TYPE_A ? 4 : 16;
			if ((h >> 8) % 2 == 0 && z->client->family == AF_INET)
				memcpy(storage[count], &z->client->v4, 4);
			else if ((h >> 8) % 2 == 0)
				memcpy(storage[count], &z->client->v6, 16);
			else
				memset(storage[count], (int)(h >> 16), 16);
			/* A wrong length now and then. */
			if ((h >> 12) % 17 == 0)
				n--;
			rdata[count] = slice_make(storage[count], n);
			count++;
		}
		break;
	}
	case DNS_TYPE_MX: {
		size_t records = h % 13;
		for (size_t i = 0; i < records; i++) {
			char host[32];
			snprintf(host, sizeof(host), "mx%zu.h%u.example", i,
				 h % 7);
			storage[count][0] = 0;
			storage[count][1] = (uint8_t)i;
			size_t n = 2 + put_name(i == 5 ? "" : host,
						storage[count] + 2);
			rdata[count] = slice_make(storage[count], n);
			count++;
		}
		break;
	}
	case 12: {
		size_t records = h % 3;
		for (size_t i = 0; i < records; i++) {
			size_t n = put_name(i == 0 ? "host.fuzz.example"
						   : "other.example",
					    storage[count]);
			rdata[count] = slice_make(storage[count], n);
			count++;
		}
		break;
	}
	}
	enum dns_status status = count > 0    ? DNS_OK
				 : h % 5 == 0 ? DNS_NXDOMAIN
					      : DNS_NODATA;
	return dns_answer_set(answer_r, status, h % 11 == 0, rdata, count);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_zone z;
	memset(&z, 0, sizeof(z));
	size_t start = 0;
	for (size_t i = 0; i <= size && z.count < FUZZ_MAX_LINES; i++) {
		if (i < size && data[i] != '\n')
			continue;
		z.lines[z.count++] = slice_make(data + start, i - start);
		start = i + 1;
	}
	struct slice record = z.lines[0];

	/* The parser: every term points into the record. */
	struct spf_record_info info;
	const char *error = NULL;
	if (spf_parse_record(record, &info, &error) < 0)
		DIJK_ASSERT(error != NULL);
	size_t pos = 0;
	struct spf_term t;
	int r;
	while ((r = spf_next_term(record, &pos, &t, &error)) == 1) {
		DIJK_ASSERT(t.text.p >= record.p &&
			    t.text.p + t.text.n <= record.p + record.n);
		DIJK_ASSERT(t.domain_spec.n == 0 ||
			    (t.domain_spec.p >= t.text.p &&
			     t.domain_spec.p + t.domain_spec.n <=
				     t.text.p + t.text.n));
		DIJK_ASSERT(t.cidr4 <= 32 && t.cidr6 <= 128);
		DIJK_ASSERT(pos <= record.n);
	}

	/* Macros, as a domain-spec and as an explanation. */
	struct spf_ip v4, v6;
	spf_ip_parse("192.0.2.3", &v4);
	spf_ip_parse("2001:db8::cb01", &v6);
	struct spf_macro_values values = {
		.ip = size > 0 && data[0] & 1 ? &v6 : &v4,
		.sender_local = "strong-bad",
		.sender_domain = "email.example.com",
		.domain = "email.example.com",
		.helo = "mx.example.org",
		.now = 1700000000,
	};
	struct buf out;
	buf_init(&out, SPF_MAX_EXPANSION);
	for (int explanation = 0; explanation < 2; explanation++) {
		buf_reset(&out);
		error = NULL;
		if (spf_expand(record, explanation, &values, &out, &error) < 0)
			DIJK_ASSERT(error != NULL);
		DIJK_ASSERT(out.n <= SPF_MAX_EXPANSION);
	}
	buf_free(&out);

	/* A whole check. */
	z.seed = size > 1 ? data[1] : 0;
	z.client = values.ip;
	struct dns_resolver dns = {fuzz_resolve, &z};
	struct spf_outcome outcome;
	const char *local = size > 2 && data[2] & 1 ? "" : "user";
	enum spf_result result = spf_check(&dns, z.client, "fuzz.example",
					   local, "helo.example", &outcome);
	DIJK_ASSERT(result == outcome.result);
	DIJK_ASSERT(outcome.lookups <= SPF_MAX_DNS_LOOKUPS + 1);
	DIJK_ASSERT(outcome.void_lookups <= SPF_MAX_VOID_LOOKUPS + 1);
	DIJK_ASSERT(strlen(outcome.reason) < sizeof(outcome.reason));
	for (const char *c = outcome.reason; *c != '\0'; c++)
		DIJK_ASSERT(*c >= 0x20 && *c <= 0x7e);
	for (const char *c = outcome.mechanism; *c != '\0'; c++)
		DIJK_ASSERT(*c >= 0x20 && *c <= 0x7e);
	return 0;
}
