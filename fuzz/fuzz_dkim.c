/* fuzz_dkim.c: DKIM over arbitrary bytes.
 *
 * Input: KEY RECORD, a NUL byte, MESSAGE (without a NUL, the whole input is
 * both). The tag-list and key-record parsers and the canonicalizations
 * read the whole input; dkim_verify reads MESSAGE with a resolver that
 * answers every key query with KEY RECORD ('!' first: a DNS failure, '?':
 * no such name). Then MESSAGE is signed with fixed Ed25519 and RSA keys
 * and the result must verify: a signature of ours that does not is a
 * crash. Canonicalization must be idempotent (for header fields: on
 * well-formed folding). */
#include "core/common.h"

#include "core/base64.h"
#include "smtp/dkim.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_DOMAIN "fuzz.example"
#define FUZZ_NOW    1790000000

static struct dkim_signer *signer;
static char *ed_record, *rsa_record;

struct fuzz_dns {
	struct slice record;
};

static char *record_of(EVP_PKEY *pkey)
{
	uint8_t der[1024];
	size_t n = sizeof(der);
	bool ed = EVP_PKEY_get_base_id(pkey) == EVP_PKEY_ED25519;
	if (ed) {
		DIJK_ASSERT(EVP_PKEY_get_raw_public_key(pkey, der, &n) == 1);
	} else {
		uint8_t *p = der;
		int len = i2d_PUBKEY(pkey, &p);
		DIJK_ASSERT(len > 0 && (size_t)len <= sizeof(der));
		n = (size_t)len;
	}
	char b64[BASE64_ENCODED_SIZE(1024)];
	base64_encode(slice_make(der, n), b64);
	return xasprintf("v=DKIM1; k=%s; p=%s", ed ? "ed25519" : "rsa", b64);
}

static void add_key(EVP_PKEY *pkey, const char *selector)
{
	BIO *bio = BIO_new(BIO_s_mem());
	DIJK_ASSERT(PEM_write_bio_PKCS8PrivateKey(bio, pkey, NULL, NULL, 0,
						  NULL, NULL) == 1);
	char *pem;
	long n = BIO_get_mem_data(bio, &pem);
	const char *error;
	DIJK_ASSERT(dkim_signer_add_pem(signer, FUZZ_DOMAIN, selector,
					slice_make(pem, (size_t)n),
					&error) == 0);
	BIO_free(bio);
}

static void setup(void)
{
	static const uint8_t seed[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
	EVP_PKEY *ed = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL,
						    seed, sizeof(seed));
	/* 1024 bits: the smallest key dijk signs with, and the cheapest. */
	EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	DIJK_ASSERT(ed != NULL && rsa != NULL);
	signer = dkim_signer_new();
	add_key(ed, "fze");
	add_key(rsa, "fzr");
	ed_record = record_of(ed);
	rsa_record = record_of(rsa);
	EVP_PKEY_free(ed);
	EVP_PKEY_free(rsa);
}

/* TXT rdata: text as character-strings of at most 255 bytes. */
static size_t txt_rdata(struct slice text, uint8_t *out)
{
	size_t o = 0;
	for (size_t at = 0; at < text.n || at == 0; at += 255) {
		size_t len = text.n - at > 255 ? 255 : text.n - at;
		out[o++] = (uint8_t)len;
		memcpy(out + o, text.p + at, len);
		o += len;
		if (text.n == 0)
			break;
	}
	return o;
}

static int fuzz_resolve(void *context, const char *name, uint16_t type,
			struct dns_answer *answer_r)
{
	const struct fuzz_dns *f = context;
	DIJK_ASSERT(type == DNS_TYPE_TXT);
	DIJK_ASSERT(strlen(name) <= DNS_MAX_NAME);
	struct slice text = f->record;
	if (strcmp(name, "fze._domainkey." FUZZ_DOMAIN) == 0)
		text = slice_cstr(ed_record);
	else if (strcmp(name, "fzr._domainkey." FUZZ_DOMAIN) == 0)
		text = slice_cstr(rsa_record);
	else if (text.n > 0 && text.p[0] == '?')
		return dns_answer_set(answer_r, DNS_NXDOMAIN, false, NULL, 0);
	else if (text.n > 0 && text.p[0] == '!') {
		dns_answer_set(answer_r, DNS_TEMPFAIL, false, NULL, 0);
		return -1;
	}
	uint8_t *wire = xmalloc(text.n + text.n / 255 + 2);
	struct slice rdata = slice_make(wire, txt_rdata(text, wire));
	int r = dns_answer_set(answer_r, DNS_OK, false, &rdata, 1);
	free(wire);
	return r;
}

static bool safe_token(const char *s)
{
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '.' || *s == '-' ||
		      *s == '_'))
			return false;
	return true;
}

static void check_results(const struct dkim_result *r, size_t n, size_t max)
{
	DIJK_ASSERT(n <= max);
	for (size_t i = 0; i < n; i++) {
		DIJK_ASSERT(r[i].status != DKIM_NONE);
		DIJK_ASSERT(memchr(r[i].domain, 0, sizeof(r[i].domain)));
		DIJK_ASSERT(memchr(r[i].reason, 0, sizeof(r[i].reason)));
		DIJK_ASSERT(safe_token(r[i].domain));
		DIJK_ASSERT(safe_token(r[i].selector));
		DIJK_ASSERT(safe_token(r[i].algorithm));
		DIJK_ASSERT(strlen(r[i].header_b) <= 12);
		DIJK_ASSERT((r[i].status == DKIM_PASS) ==
			    (r[i].reason[0] == '\0'));
		DIJK_ASSERT(strcmp(dkim_status_name(r[i].status), "") != 0);
	}
}

/* canon(canon(x)) == canon(x) */
static void check_idempotent(struct slice in)
{
	struct buf once, twice;
	buf_init(&once, 1 << 20);
	buf_init(&twice, 1 << 20);
	for (int c = DKIM_CANON_SIMPLE; c <= DKIM_CANON_RELAXED; c++) {
		buf_reset(&once);
		buf_reset(&twice);
		dkim_canon_body(c, in, &once);
		dkim_canon_body(c, buf_slice(&once), &twice);
		DIJK_ASSERT(once.n == twice.n &&
			    memcmp(once.p, twice.p, once.n) == 0);
		if (c == DKIM_CANON_RELAXED)
			DIJK_ASSERT(
				once.n == 0 ||
				(once.n >= 2 && once.p[once.n - 1] == '\n'));
	}
	/* A header field as a message holds it: CR and LF only as the CRLF
	 * of folding. (Unfolding bare CR and LF can make new CRLFs.) */
	bool folded = true;
	for (size_t i = 0; i < in.n && folded; i++) {
		if (in.p[i] == '\r')
			folded = i + 2 < in.n && in.p[i + 1] == '\n' &&
				 (in.p[i + 2] == ' ' || in.p[i + 2] == '\t');
		else if (in.p[i] == '\n')
			folded = i > 0 && in.p[i - 1] == '\r';
	}
	if (folded) {
		buf_reset(&once);
		buf_reset(&twice);
		dkim_canon_header(DKIM_CANON_RELAXED, in, &once);
		dkim_canon_header(DKIM_CANON_RELAXED, buf_slice(&once), &twice);
		DIJK_ASSERT(once.n == twice.n &&
			    memcmp(once.p, twice.p, once.n) == 0);
	}
	buf_free(&once);
	buf_free(&twice);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (signer == NULL)
		setup();
	struct slice all = slice_make(data, size);
	const uint8_t *nul = memchr(data, 0, size);
	struct slice record = all, message = all;
	if (nul != NULL) {
		record = slice_make(data, (size_t)(nul - data));
		message = slice_make(nul + 1, size - record.n - 1);
	}

	/* The parsers: results point into their input. */
	struct dkim_signature sig;
	const char *error = NULL;
	if (dkim_parse_signature(all, &sig, &error) == 0) {
		DIJK_ASSERT(sig.header_count > 0 &&
			    sig.header_count <= DKIM_MAX_SIGNED_FIELDS);
		DIJK_ASSERT(sig.b_start <= sig.b_end && sig.b_end <= size);
		DIJK_ASSERT(sig.domain.p >= data &&
			    sig.domain.p + sig.domain.n <= data + size);
	} else {
		DIJK_ASSERT(error != NULL && error[0] != '\0');
	}
	struct dkim_key_record key;
	if (dkim_parse_key_record(record, &key, &error) == 0)
		DIJK_ASSERT(key.revoked == (key.public_key.n == 0));
	check_idempotent(all);

	/* Verification of whatever the message holds. */
	struct fuzz_dns f = {record};
	struct dns_resolver resolver = {fuzz_resolve, &f};
	struct dkim_result results[DKIM_MAX_SIGNATURES];
	size_t n = dkim_verify(&resolver, message, FUZZ_NOW, results,
			       DKIM_MAX_SIGNATURES);
	check_results(results, n, DKIM_MAX_SIGNATURES);

	/* Our own signatures always verify. */
	struct buf out;
	buf_init(&out, 1 << 20);
	int r = dkim_sign(signer, FUZZ_DOMAIN, message, FUZZ_NOW, &out, &error);
	if (r == 1) {
		buf_append_slice(&out, message);
		n = dkim_verify(&resolver, buf_slice(&out), FUZZ_NOW, results,
				DKIM_MAX_SIGNATURES);
		check_results(results, n, DKIM_MAX_SIGNATURES);
		DIJK_ASSERT(n >= 2);
		if (results[0].status != DKIM_PASS ||
		    results[1].status != DKIM_PASS)
			dijk_panic("own signature: %s / %s", results[0].reason,
				   results[1].reason);
	} else {
		DIJK_ASSERT(r == -1 && message.n > 0 &&
			    (message.p[0] == ' ' || message.p[0] == '\t'));
	}
	buf_free(&out);
	return 0;
}
