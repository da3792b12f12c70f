/* test_dkim.c: unit tests for src/smtp/dkim.c: the tag-list and key
 * record parsers, canonicalization (RFC 6376 3.4.5), the RFC 8463
 * appendix A message, the key store, sign -> verify round trips for both
 * algorithms, and every way a signature can fail. DNS answers come from a
 * table resolver. */
#include "unit.h"

#include "core/base64.h"
#include "smtp/dkim.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <ftw.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- A table resolver ---- */

struct dns_row {
	const char *name;
	enum dns_status status;
	const char *txt; /* joined text; split into 255-byte strings */
	const char *txt2;
};

static struct dns_row dns_rows[16];
static size_t dns_row_count;
static unsigned dns_queries;

static void dns_reset(void)
{
	dns_row_count = 0;
	dns_queries = 0;
}

static void dns_add(const char *name, enum dns_status status, const char *txt)
{
	DIJK_ASSERT(dns_row_count < ARRAY_SIZE(dns_rows));
	dns_rows[dns_row_count++] = (struct dns_row){name, status, txt, NULL};
}

/* TXT rdata: the text as character-strings of at most 255 bytes. */
static struct slice txt_rdata(const char *text, uint8_t *out, size_t size)
{
	size_t n = strlen(text), at = 0, o = 0;
	do {
		size_t len = n - at > 255 ? 255 : n - at;
		DIJK_ASSERT(o + 1 + len <= size);
		out[o++] = (uint8_t)len;
		memcpy(out + o, text + at, len);
		o += len;
		at += len;
	} while (at < n);
	return slice_make(out, o);
}

static int table_resolve(void *context, const char *name, uint16_t type,
			 struct dns_answer *answer_r)
{
	(void)context;
	dns_queries++;
	for (size_t i = 0; i < dns_row_count; i++) {
		const struct dns_row *r = &dns_rows[i];
		if (strcmp(r->name, name) != 0)
			continue;
		if (r->status == DNS_TEMPFAIL) {
			dns_answer_set(answer_r, DNS_TEMPFAIL, false, NULL, 0);
			return -1;
		}
		if (r->status != DNS_OK || type != DNS_TYPE_TXT)
			return dns_answer_set(answer_r,
					      r->status == DNS_OK ? DNS_NODATA
								  : r->status,
					      false, NULL, 0);
		static uint8_t wire[2][8192];
		struct slice rdata[2];
		size_t count = 0;
		rdata[count++] = txt_rdata(r->txt, wire[0], sizeof(wire[0]));
		if (r->txt2 != NULL)
			rdata[count++] =
				txt_rdata(r->txt2, wire[1], sizeof(wire[1]));
		return dns_answer_set(answer_r, DNS_OK, false, rdata, count);
	}
	return dns_answer_set(answer_r, DNS_NXDOMAIN, false, NULL, 0);
}

static const struct dns_resolver resolver = {table_resolve, NULL};

/* ---- Helpers ---- */

static char *crlf(const char *text)
{
	size_t n = strlen(text), o = 0;
	char *out = xmalloc(2 * n + 1);
	for (size_t i = 0; i < n; i++) {
		if (text[i] == '\n' && (i == 0 || text[i - 1] != '\r'))
			out[o++] = '\r';
		out[o++] = text[i];
	}
	out[o] = '\0';
	return out;
}

/* The public key record of a private key, as dijk dns would print it. */
static char *record_of(EVP_PKEY *pkey)
{
	uint8_t der[2048];
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
	char b64[BASE64_ENCODED_SIZE(2048)];
	base64_encode(slice_make(der, n), b64);
	return xasprintf("v=DKIM1; k=%s; p=%s", ed ? "ed25519" : "rsa", b64);
}

static char *pem_of(EVP_PKEY *pkey)
{
	BIO *bio = BIO_new(BIO_s_mem());
	DIJK_ASSERT(PEM_write_bio_PKCS8PrivateKey(bio, pkey, NULL, NULL, 0,
						  NULL, NULL) == 1);
	char *data;
	long n = BIO_get_mem_data(bio, &data);
	char *pem = xstrndup(data, (size_t)n);
	BIO_free(bio);
	return pem;
}

static size_t verify(const char *message, time_t now,
		     struct dkim_result *results)
{
	return dkim_verify(&resolver, slice_cstr(message), now, results,
			   DKIM_MAX_SIGNATURES);
}

/* An independent signer for hand-made tag sets: tags is everything before
 * bh= (e.g. "v=1; a=ed25519-sha256; c=simple/simple; d=...; s=...;
 * h=from:subject"); the fields named in h= must each occur once in the
 * message. Returns the signature field followed by the message. */
static char *sign_custom(EVP_PKEY *pkey, const char *tags, const char *message,
			 enum dkim_canon header_canon,
			 enum dkim_canon body_canon, long length,
			 const EVP_MD *md)
{
	const char *body = strstr(message, "\r\n\r\n");
	DIJK_ASSERT(body != NULL);
	body += 4;
	struct buf canon;
	buf_init(&canon, 1 << 20);
	dkim_canon_body(body_canon, slice_cstr(body), &canon);
	size_t hashed = canon.n;
	if (length >= 0 && (size_t)length < hashed)
		hashed = (size_t)length;
	uint8_t digest[EVP_MAX_MD_SIZE];
	unsigned digest_len;
	EVP_Digest(canon.p, hashed, digest, &digest_len, md, NULL);
	char bh[BASE64_ENCODED_SIZE(EVP_MAX_MD_SIZE)];
	base64_encode(slice_make(digest, digest_len), bh);
	char *field = xasprintf("DKIM-Signature: %s; bh=%s; b=", tags, bh);

	/* h=: the fields in order, each found once. */
	buf_reset(&canon);
	const char *h = strstr(tags, "h=") + 2;
	size_t h_len = strcspn(h, ";");
	for (size_t at = 0; at < h_len;) {
		size_t n = strcspn(h + at, ":;");
		if (n > h_len - at)
			n = h_len - at;
		char name[64];
		snprintf(name, sizeof(name), "%.*s:", (int)n, h + at);
		const char *f = message;
		while (f != NULL && strncasecmp(f, name, strlen(name)) != 0) {
			f = strstr(f, "\r\n");
			if (f != NULL)
				f += 2;
		}
		if (f != NULL && f < body) {
			const char *end = f;
			for (;;) {
				end = strstr(end, "\r\n");
				if (end[2] != ' ' && end[2] != '\t')
					break;
				end += 2;
			}
			dkim_canon_header(header_canon,
					  slice_make(f, (size_t)(end - f)),
					  &canon);
			buf_append(&canon, "\r\n", 2);
		}
		at += n + 1;
	}
	dkim_canon_header(header_canon, slice_cstr(field), &canon);
	EVP_Digest(canon.p, canon.n, digest, &digest_len, md, NULL);
	uint8_t signature[1024];
	size_t signature_len = sizeof(signature);
	if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_ED25519) {
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();
		DIJK_ASSERT(EVP_DigestSignInit(ctx, NULL, NULL, NULL, pkey) ==
			    1);
		DIJK_ASSERT(EVP_DigestSign(ctx, signature, &signature_len,
					   digest, digest_len) == 1);
		EVP_MD_CTX_free(ctx);
	} else {
		EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pkey, NULL);
		DIJK_ASSERT(EVP_PKEY_sign_init(ctx) == 1);
		EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING);
		EVP_PKEY_CTX_set_signature_md(ctx, md);
		DIJK_ASSERT(EVP_PKEY_sign(ctx, signature, &signature_len,
					  digest, digest_len) == 1);
		EVP_PKEY_CTX_free(ctx);
	}
	char b[BASE64_ENCODED_SIZE(1024)];
	base64_encode(slice_make(signature, signature_len), b);
	char *out = xasprintf("%s%s\r\n%s", field, b, message);
	free(field);
	buf_free(&canon);
	return out;
}

/* ---- Parsers ---- */

static void test_signature_parse(void)
{
	static const struct {
		const char *value;
		int ok;
		const char *error; /* prefix, when not ok */
		enum dkim_algorithm alg;
		size_t header_count;
	} cases[] = {
		{"v=1; a=rsa-sha256; d=example.com; s=sel; h=from:to; bh=AA==; "
		 "b=AA==",
		 0, NULL, DKIM_ALG_RSA_SHA256, 2},
		{" v = 1 ;a=ed25519-sha256;\r\n\td=example.com; s=a.b;\r\n "
		 "h=From : Subject : from; bh=AA==; b=AA\r\n AA ==;",
		 0, NULL, DKIM_ALG_ED25519_SHA256, 3},
		{"v=1; a=rsa-sha512; d=example.com; s=sel; h=from; bh=AA==; "
		 "b=AA==",
		 0, NULL, DKIM_ALG_UNKNOWN, 1},
		{"v=1; a=rsa-sha1; d=example.com; s=sel; h=from; bh=; b=", 0,
		 NULL, DKIM_ALG_RSA_SHA1, 1},
		{"v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh=AA==; "
		 "b=AA==; i=@example.com; q=dns/txt; t=100; x=200; l=5; "
		 "z=From:foo|To:bar; future=whatever",
		 0, NULL, DKIM_ALG_RSA_SHA256, 1},
		{"v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh=A; "
		 "b=A; i=joe@mail.EXAMPLE.com",
		 0, NULL, DKIM_ALG_RSA_SHA256, 1},
		{"", -1, "missing v=", 0, 0},
		{"a=rsa-sha256; d=example.com; s=sel; h=from; bh=AA; b=AA", -1,
		 "missing v=", 0, 0},
		{"v=2; a=rsa-sha256; d=example.com; s=sel; h=from; bh=AA; b=AA",
		 -1, "unsupported version", 0, 0},
		{"v=1; d=example.com; s=sel; h=from; bh=AA; b=AA", -1,
		 "missing a=", 0, 0},
		{"v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh=AA", -1,
		 "missing b=", 0, 0},
		{"v=1; a=rsa-sha256; d=example.com; s=sel; h=from; b=AA", -1,
		 "missing bh=", 0, 0},
		{"v=1; a=rsa-sha256; s=sel; h=from; bh=AA; b=AA", -1,
		 "missing d=", 0, 0},
		{"v=1; a=rsa-sha256; d=example.com; h=from; bh=AA; b=AA", -1,
		 "missing s=", 0, 0},
		{"v=1; a=rsa-sha256; d=example.com; s=sel; bh=AA; b=AA", -1,
		 "missing h=", 0, 0},
		{"v=1; a=rsa-sha256; d=example.com; s=sel; h=to:subject; bh=A; "
		 "b=A",
		 -1, "h= does not sign From", 0, 0},
		{"v=1; v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh=A; "
		 "b=A",
		 -1, "duplicate tag", 0, 0},
		{"v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh=A; b=A; "
		 "c=relaxed/fancy",
		 -1, "unknown canonicalization", 0, 0},
		{"v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh=A; b=A; "
		 "c=",
		 -1, "unknown canonicalization", 0, 0},
		{"v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh=A; b=A; "
		 "q=http/well-known",
		 -1, "unsupported query method", 0, 0},
		{"v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh=A; b=A; "
		 "i=joe@example.org",
		 -1, "i= is not within d=", 0, 0},
		{"v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh=A; b=A; "
		 "i=joe@badexample.com",
		 -1, "i= is not within d=", 0, 0},
		{"v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh=A; b=A; "
		 "t=200; x=100",
		 -1, "x= is not after t=", 0, 0},
		{"v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh=A; b=A; "
		 "t=200; x=200",
		 -1, "x= is not after t=", 0, 0},
		{"v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh=A; b=A; "
		 "t=12x",
		 -1, "bad t=", 0, 0},
		{"v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh=A; b=A; "
		 "l=99999999999999999999999",
		 -1, "bad l=", 0, 0},
		{"v=1; a=rsa-sha256; d=exa mple.com; s=sel; h=from; bh=A; b=A",
		 -1, "bad d=", 0, 0},
		{"v=1; a=rsa-sha256; d=example..com; s=sel; h=from; bh=A; b=A",
		 -1, "bad d=", 0, 0},
		{"v=1; a=rsa-sha256; d=example.com; s=../x; h=from; bh=A; b=A",
		 -1, "bad s=", 0, 0},
		{"v=1; a=rsa-sha256; d=example.com; s=sel; h=from::to; bh=A; "
		 "b=A",
		 -1, "bad h= list", 0, 0},
		{"v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh=A; b=A; "
		 "=x",
		 -1, "tag-list syntax error", 0, 0},
		{"v=1; a=rsa-sha256; 1d=example.com", -1,
		 "tag-list syntax error", 0, 0},
		{"v=1; a=rsa-sha256; d", -1, "tag-list syntax error", 0, 0},
		{"v=1; a=rsa\001; d=x", -1, "tag-list syntax error", 0, 0},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct dkim_signature sig;
		const char *error = NULL;
		int r = dkim_parse_signature(slice_cstr(cases[i].value), &sig,
					     &error);
		CHECK_CASE(r == cases[i].ok, i, cases[i].value);
		if (r != 0 && cases[i].ok != 0) {
			CHECK_CASE(strncmp(error, cases[i].error,
					   strlen(cases[i].error)) == 0,
				   i, cases[i].value);
		}
		if (r == 0 && cases[i].ok == 0) {
			CHECK_CASE(sig.alg == cases[i].alg, i, cases[i].value);
			CHECK_CASE(sig.header_count == cases[i].header_count, i,
				   cases[i].value);
		}
	}

	/* Values, and where b= lies. */
	const char *v = "v=1; a=rsa-sha256; c=relaxed; d=Example.COM; s=s1; "
			"h=from:x-y; i=@sub.example.com; t=5; x=6; l=0; "
			"bh=Ym9keQ==; b= QUJD\r\n REVG ;q=dns/txt:other";
	struct dkim_signature sig;
	const char *error;
	CHECK(dkim_parse_signature(slice_cstr(v), &sig, &error) == 0);
	CHECK(sig.header_canon == DKIM_CANON_RELAXED);
	CHECK(sig.body_canon == DKIM_CANON_SIMPLE);
	CHECK(slice_eq_ci(sig.domain, "example.com"));
	CHECK(slice_eq_ci(sig.headers[1], "x-y"));
	CHECK(sig.has_timestamp && sig.timestamp == 5);
	CHECK(sig.has_expiry && sig.expiry == 6);
	CHECK(sig.has_length && sig.length == 0);
	CHECK(sig.b.n == 11 && memcmp(sig.b.p, "QUJD\r\n REVG", 11) == 0);
	CHECK(memcmp(v + sig.b_start, " QUJD", 5) == 0);
	CHECK(v[sig.b_end] == ';' && v[sig.b_start - 1] == '=');
	/* The canonicalization defaults. */
	CHECK(dkim_parse_signature(
		      slice_cstr("v=1; a=rsa-sha256; d=a.b; s=s; h=from; "
				 "bh=A; b=A"),
		      &sig, &error) == 0);
	CHECK(sig.header_canon == DKIM_CANON_SIMPLE &&
	      sig.body_canon == DKIM_CANON_SIMPLE);

	/* More than DKIM_MAX_TAGS tags, and more than
	 * DKIM_MAX_SIGNED_FIELDS names in h=. */
	struct buf many;
	buf_init(&many, 1 << 16);
	buf_append_cstr(&many, "v=1; a=rsa-sha256; d=a.b; s=s; bh=A; b=A; "
			       "h=from");
	for (int k = 0; k < DKIM_MAX_SIGNED_FIELDS; k++)
		buf_append_cstr(&many, ":to");
	CHECK(dkim_parse_signature(buf_slice(&many), &sig, &error) == -1);
	CHECK(strcmp(error, "bad h= list") == 0);
	buf_reset(&many);
	buf_append_cstr(&many, "v=1; a=rsa-sha256; d=a.b; s=s; bh=A; b=A; "
			       "h=from");
	for (int k = 0; k < DKIM_MAX_TAGS; k++)
		buf_printf(&many, "; t%d=1", k);
	CHECK(dkim_parse_signature(buf_slice(&many), &sig, &error) == -1);
	CHECK(strcmp(error, "too many tags") == 0);
	buf_free(&many);
}

static void test_key_record_parse(void)
{
	static const struct {
		const char *record;
		int ok;
		enum dkim_key_type type;
		bool revoked, sha256, testing, strict;
		const char *p;
	} cases[] = {
		{"v=DKIM1; k=rsa; p=MIGfMA0", 0, DKIM_KEY_RSA, false, true,
		 false, false, "MIGfMA0"},
		{"p=MIGfMA0", 0, DKIM_KEY_RSA, false, true, false, false,
		 "MIGfMA0"},
		{"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPc"
		 "HURo=",
		 0, DKIM_KEY_ED25519, false, true, false, false,
		 "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="},
		{"v=DKIM1; p=", 0, DKIM_KEY_RSA, true, true, false, false, ""},
		{"v=DKIM1; k=rsa; p=; n=revoked", 0, DKIM_KEY_RSA, true, true,
		 false, false, ""},
		{"v=DKIM1; h=sha1:sha256; t=y:s; s=email; p=AB CD", 0,
		 DKIM_KEY_RSA, false, true, true, true, "AB CD"},
		{"v=DKIM1; h=sha1; p=AB", 0, DKIM_KEY_RSA, false, false, false,
		 false, "AB"},
		{"v=DKIM1; s=*; t=x; p=AB;", 0, DKIM_KEY_RSA, false, true,
		 false, false, "AB"},
		{"v=DKIM1; k=rsa", -1, 0, 0, 0, 0, 0, NULL},
		{"k=rsa; v=DKIM1; p=AB", -1, 0, 0, 0, 0, 0, NULL},
		{"v=DKIM2; p=AB", -1, 0, 0, 0, 0, 0, NULL},
		{"v=spf1 -all", -1, 0, 0, 0, 0, 0, NULL},
		{"v=DKIM1; k=dsa; p=AB", -1, 0, 0, 0, 0, 0, NULL},
		{"v=DKIM1; s=http; p=AB", -1, 0, 0, 0, 0, 0, NULL},
		{"v=DKIM1; p=AB; p=CD", -1, 0, 0, 0, 0, 0, NULL},
		{"v=DKIM1; p=A\001B", -1, 0, 0, 0, 0, 0, NULL},
		{"", -1, 0, 0, 0, 0, 0, NULL},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct dkim_key_record key;
		const char *error = NULL;
		int r = dkim_parse_key_record(slice_cstr(cases[i].record), &key,
					      &error);
		CHECK_CASE(r == cases[i].ok, i, cases[i].record);
		if (r != 0) {
			CHECK_CASE(error != NULL && error[0] != '\0', i,
				   cases[i].record);
			continue;
		}
		if (cases[i].ok != 0)
			continue;
		CHECK_CASE(key.type == cases[i].type, i, cases[i].record);
		CHECK_CASE(key.revoked == cases[i].revoked, i, cases[i].record);
		CHECK_CASE(key.sha256_allowed == cases[i].sha256, i,
			   cases[i].record);
		CHECK_CASE(key.testing == cases[i].testing, i, cases[i].record);
		CHECK_CASE(key.strict == cases[i].strict, i, cases[i].record);
		CHECK_CASE(slice_eq_ci(key.public_key, cases[i].p), i,
			   cases[i].record);
	}
}

/* ---- Canonicalization ---- */

static void test_canonicalization(void)
{
	/* RFC 6376 3.4.5. */
	static const char *const fields[] = {"A: X", "B : Y\t\r\n\tZ  "};
	static const char *const relaxed_fields[] = {"a:X", "b:Y Z"};
	const char *body = " C \r\nD \t E\r\n\r\n\r\n";
	struct buf out;
	buf_init(&out, 1 << 16);
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
		buf_reset(&out);
		dkim_canon_header(DKIM_CANON_RELAXED, slice_cstr(fields[i]),
				  &out);
		CHECK_CASE(slice_eq_ci(buf_slice(&out), relaxed_fields[i]) &&
				   memcmp(out.p, relaxed_fields[i], out.n) == 0,
			   i, fields[i]);
		buf_reset(&out);
		dkim_canon_header(DKIM_CANON_SIMPLE, slice_cstr(fields[i]),
				  &out);
		CHECK_CASE(out.n == strlen(fields[i]) &&
				   memcmp(out.p, fields[i], out.n) == 0,
			   i, fields[i]);
	}

	static const struct {
		const char *in;
		const char *simple, *relaxed;
	} bodies[] = {
		{" C \r\nD \t E\r\n\r\n\r\n", " C \r\nD \t E\r\n",
		 " C\r\nD E\r\n"},
		{"", "\r\n", ""},
		{"\r\n", "\r\n", ""},
		{"\r\n\r\n\r\n", "\r\n", ""},
		{"abc", "abc\r\n", "abc\r\n"},
		{"abc\r\n", "abc\r\n", "abc\r\n"},
		{"abc \t", "abc \t\r\n", "abc\r\n"},
		{"a\r\n\r\nb\r\n\r\n", "a\r\n\r\nb\r\n", "a\r\n\r\nb\r\n"},
		{"a\r\n \r\n\t\r\n", "a\r\n \r\n\t\r\n", "a\r\n"},
		{"a\r\n \r\nb", "a\r\n \r\nb\r\n", "a\r\n\r\nb\r\n"},
		{" \t x  y \t", " \t x  y \t\r\n", " x y\r\n"},
		{"bare\nlf\rcr\r\n", "bare\nlf\rcr\r\n", "bare\nlf\rcr\r\n"},
		{"end\r", "end\r\r\n", "end\r\r\n"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bodies); i++) {
		buf_reset(&out);
		dkim_canon_body(DKIM_CANON_SIMPLE, slice_cstr(bodies[i].in),
				&out);
		CHECK_CASE(out.n == strlen(bodies[i].simple) &&
				   memcmp(out.p, bodies[i].simple, out.n) == 0,
			   i, bodies[i].in);
		buf_reset(&out);
		dkim_canon_body(DKIM_CANON_RELAXED, slice_cstr(bodies[i].in),
				&out);
		CHECK_CASE(out.n == strlen(bodies[i].relaxed) &&
				   memcmp(out.p, bodies[i].relaxed, out.n) == 0,
			   i, bodies[i].in);
	}
	(void)body;

	static const struct {
		const char *in, *relaxed;
	} more_fields[] = {
		{"Subject:  Hello   World  ", "subject:Hello World"},
		{"SUBJECT :\r\n  folded\r\n\tvalue", "subject:folded value"},
		{"X-Empty:", "x-empty:"},
		{"X-Empty:   \r\n ", "x-empty:"},
		{"To: a,\r\n b", "to:a, b"},
		{"NoColon", "nocolon"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(more_fields); i++) {
		buf_reset(&out);
		dkim_canon_header(DKIM_CANON_RELAXED,
				  slice_cstr(more_fields[i].in), &out);
		CHECK_CASE(out.n == strlen(more_fields[i].relaxed) &&
				   memcmp(out.p, more_fields[i].relaxed,
					  out.n) == 0,
			   i, more_fields[i].in);
	}
	buf_free(&out);
}

/* ---- RFC 8463 appendix A ---- */

static const char rfc8463_message[] =
	"DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;\n"
	" d=football.example.com; i=@football.example.com;\n"
	" q=dns/txt; s=brisbane; t=1528637909; h=from : to :\n"
	" subject : date : message-id : from : subject : date;\n"
	" bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\n"
	" b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus\n"
	" Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==\n"
	"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\n"
	" d=football.example.com; i=@football.example.com;\n"
	" q=dns/txt; s=test; t=1528637909; h=from : to : subject :\n"
	" date : message-id : from : subject : date;\n"
	" bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\n"
	" b=F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3\n"
	" DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz\n"
	" dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=\n"
	"From: Joe SixPack <joe@football.example.com>\n"
	"To: Suzie Q <suzie@shopping.example.net>\n"
	"Subject: Is dinner ready?\n"
	"Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\n"
	"Message-ID: <20030712040037.46341.5F8J@football.example.com>\n"
	"\n"
	"Hi.\n"
	"\n"
	"We lost the game.  Are you hungry yet?\n"
	"\n"
	"Joe.\n";

static const char rfc8463_ed25519_record[] =
	"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
static const char rfc8463_rsa_record[] =
	"v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWR"
	"iGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutAC"
	"DfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3"
	"Ip3G+2kryOTIKT+l/K4w3QIDAQAB";
/* RFC 8463 A.1: the Ed25519 private key (its seed) in PKCS#8 PEM. */
static const char rfc8463_ed25519_pem[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n"
	"-----END PRIVATE KEY-----\n";

static void test_rfc8463(void)
{
	char *message = crlf(rfc8463_message);
	dns_reset();
	dns_add("brisbane._domainkey.football.example.com", DNS_OK,
		rfc8463_ed25519_record);
	dns_add("test._domainkey.football.example.com", DNS_OK,
		rfc8463_rsa_record);
	struct dkim_result r[DKIM_MAX_SIGNATURES];
	size_t n = verify(message, 1700000000, r);
	CHECK(n == 2);
	CHECK(r[0].status == DKIM_PASS);
	CHECK(strcmp(r[0].domain, "football.example.com") == 0);
	CHECK(strcmp(r[0].selector, "brisbane") == 0);
	CHECK(strcmp(r[0].algorithm, "ed25519-sha256") == 0);
	CHECK(strcmp(r[0].header_b, "/gCrinpcQOoI") == 0);
	CHECK(r[1].status == DKIM_PASS);
	CHECK(strcmp(r[1].algorithm, "rsa-sha256") == 0);
	CHECK(strcmp(r[1].header_b, "F45dVWDfMbQD") == 0);
	if (r[0].status != DKIM_PASS || r[1].status != DKIM_PASS)
		fprintf(stderr, "rfc8463: %s / %s\n", r[0].reason, r[1].reason);

	/* The private key of A.1 has the public key of A.2. */
	BIO *bio = BIO_new_mem_buf(rfc8463_ed25519_pem, -1);
	EVP_PKEY *pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	CHECK(pkey != NULL);
	if (pkey != NULL) {
		char *record = record_of(pkey);
		CHECK(strcmp(record, rfc8463_ed25519_record) == 0);
		free(record);
		EVP_PKEY_free(pkey);
	}

	/* One changed byte in the body fails both. */
	char *p = strstr(message, "hungry");
	p[0] = 'H';
	n = verify(message, 1700000000, r);
	CHECK(n == 2 && r[0].status == DKIM_FAIL && r[1].status == DKIM_FAIL);
	CHECK(strcmp(r[0].reason, "body hash mismatch") == 0);
	p[0] = 'h';
	/* A changed signed header fails the signature, not the body hash. */
	p = strstr(message, "Is dinner");
	p[0] = 'i';
	n = verify(message, 1700000000, r);
	CHECK(n == 2 && r[0].status == DKIM_FAIL && r[1].status == DKIM_FAIL);
	CHECK(strcmp(r[1].reason, "signature did not verify") == 0);
	p[0] = 'I';
	/* Relaxed canonicalization forgives re-folding and case. */
	char *refolded = xstrdup(message);
	p = strstr(refolded, "Subject: Is");
	memcpy(p, "subject:\tIs", 11);
	p = strstr(refolded, "dinner ready?");
	p[6] = '\t';
	n = verify(refolded, 1700000000, r);
	CHECK(n == 2 && r[0].status == DKIM_PASS && r[1].status == DKIM_PASS);
	free(refolded);
	free(message);
}

/* ---- The key store, signing and round trips ---- */

struct listed {
	char lines[8][160];
	char records[8][1024];
	size_t count;
};

static void collect_key(const struct dkim_key_info *key, void *context)
{
	struct listed *l = context;
	if (l->count == ARRAY_SIZE(l->lines))
		return;
	snprintf(l->lines[l->count], sizeof(l->lines[0]), "%s %s %s %s",
		 key->domain, key->selector,
		 key->type == DKIM_KEY_ED25519 ? "ed25519" : "rsa",
		 key->active ? "active" : "inactive");
	snprintf(l->records[l->count], sizeof(l->records[0]), "%s",
		 key->record);
	l->count++;
}

static char *make_temp_dir(void)
{
	char *dir = xstrdup("/tmp/dijk-dkim-test-XXXXXX");
	DIJK_ASSERT(mkdtemp(dir) != NULL);
	return dir;
}

static int remove_entry(const char *path, const struct stat *st, int flag,
			struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static void remove_tree(const char *dir)
{
	nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static const char plain_message[] = "Received: from somewhere\n"
				    "From: Alice <alice@example.test>\n"
				    "To: Bob <bob@example.org>\n"
				    "Subject: Round trip\n"
				    "Date: Sat, 01 Nov 2026 10:00:00 +0000\n"
				    "Message-ID: <rt1@example.test>\n"
				    "List-Id: <list.example.test>\n"
				    "Content-Type: text/plain;\n"
				    "  charset=utf-8\n"
				    "X-Unsigned: yes\n"
				    "\n"
				    "Hello Bob,\n"
				    "\n"
				    "  this  line has   spaces   \n"
				    "\n"
				    "\n";

static void test_key_store_round_trip(void)
{
	char *dir = make_temp_dir();
	const char *error = NULL;
	struct listed l = {0};
	CHECK(dkim_keys_list(dir, NULL, collect_key, &l, &error) == 0);
	CHECK(l.count == 0);
	struct dkim_signer *s = dkim_signer_load(dir, &error);
	CHECK(s != NULL);
	dkim_signer_free(&s);
	CHECK(s == NULL);

	CHECK(dkim_keys_active_count(dir, "example.test", &error) == 0);
	CHECK(dkim_keys_generate(dir, "example.test", "d202611", &error) == 0);
	CHECK(dkim_keys_exist(dir, "example.test", "d202611"));
	CHECK(!dkim_keys_exist(dir, "example.test", "d202612"));
	/* No overwriting, no bad names. */
	CHECK(dkim_keys_generate(dir, "example.test", "d202611", &error) == -1);
	CHECK(dkim_keys_generate(dir, "../etc", "x", &error) == -1);
	CHECK(dkim_keys_generate(dir, "Example.test", "x", &error) == -1);
	CHECK(dkim_keys_generate(dir, "example.test", "a/b", &error) == -1);
	CHECK(dkim_keys_generate(dir, "example.test", "", &error) == -1);
	CHECK(!dkim_selector_prefix_valid("-x"));
	CHECK(dkim_selector_prefix_valid("mail-2026"));

	/* Modes. */
	struct stat st;
	char path[512];
	snprintf(path, sizeof(path), "%s/dkim/example.test", dir);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0700);
	snprintf(path, sizeof(path),
		 "%s/dkim/example.test/d202611e.ed25519.pem", dir);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
	snprintf(path, sizeof(path), "%s/dkim/example.test/d202611r.rsa.pem",
		 dir);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);

	/* Not active yet: nothing signs. */
	s = dkim_signer_load(dir, &error);
	CHECK(s != NULL);
	struct buf out;
	buf_init(&out, 1 << 20);
	char *message = crlf(plain_message);
	CHECK(dkim_sign(s, "example.test", slice_cstr(message), 1790000000,
			&out, &error) == 0);
	dkim_signer_free(&s);

	CHECK(dkim_keys_activate(dir, "example.test", "d202611", &error) == 0);
	CHECK(dkim_keys_activate(dir, "example.test", "nope", &error) == -1);
	CHECK(dkim_keys_active_count(dir, "example.test", &error) == 2);
	CHECK(dkim_keys_list(dir, NULL, collect_key, &l, &error) == 0);
	CHECK(l.count == 2);
	CHECK(strcmp(l.lines[0], "example.test d202611e ed25519 active") == 0);
	CHECK(strcmp(l.lines[1], "example.test d202611r rsa active") == 0);
	CHECK(strncmp(l.records[0], "v=DKIM1; k=ed25519; p=", 22) == 0);
	CHECK(strncmp(l.records[1], "v=DKIM1; k=rsa; p=MIIBIjAN", 26) == 0);

	s = dkim_signer_load(dir, &error);
	CHECK(s != NULL);
	buf_reset(&out);
	CHECK(dkim_sign(s, "EXAMPLE.test", slice_cstr(message), 1790000000,
			&out, &error) == 1);
	CHECK(dkim_sign(s, "other.test", slice_cstr(message), 1790000000, &out,
			&error) == 0);
	buf_append_cstr(&out, message);
	char *signed_message = xstrdup(buf_cstr(&out));

	/* Folded to DKIM_LINE_MAX, Ed25519 first, h= as chosen. */
	const char *line = signed_message;
	const char *body = strstr(signed_message, "\r\nFrom:");
	size_t longest = 0;
	while (line < body) {
		const char *end = strstr(line, "\r\n");
		if ((size_t)(end - line) > longest)
			longest = (size_t)(end - line);
		line = end + 2;
	}
	CHECK(longest <= DKIM_LINE_MAX);
	const char *start = "DKIM-Signature: v=1; a=ed25519-sha256; "
			    "c=relaxed/relaxed; d=example.test;";
	CHECK(strncmp(signed_message, start, strlen(start)) == 0);
	char *second = strstr(signed_message + 1, "DKIM-Signature:");
	CHECK(second != NULL && strstr(second, "a=rsa-sha256;") != NULL);
	struct dkim_signature sig;
	const char *first_value = signed_message + strlen("DKIM-Signature:");
	CHECK(dkim_parse_signature(
		      slice_make(first_value,
				 (size_t)(second - first_value) - 2),
		      &sig, &error) == 0);
	static const char *const expect_h[] = {
		"from",	      "from",	      "to",	"to",
		"subject",    "subject",      "date",	"date",
		"message-id", "content-type", "list-id"};
	CHECK(sig.header_count == ARRAY_SIZE(expect_h));
	for (size_t i = 0; i < sig.header_count && i < ARRAY_SIZE(expect_h);
	     i++)
		CHECK_CASE(slice_eq_ci(sig.headers[i], expect_h[i]), i,
			   expect_h[i]);
	CHECK(sig.has_timestamp && sig.timestamp == 1790000000);
	CHECK(!sig.has_expiry && !sig.has_length);

	dns_reset();
	dns_add("d202611e._domainkey.example.test", DNS_OK, l.records[0]);
	dns_add("d202611r._domainkey.example.test", DNS_OK, l.records[1]);
	struct dkim_result r[DKIM_MAX_SIGNATURES];
	size_t n = verify(signed_message, 1790000100, r);
	CHECK(n == 2);
	CHECK(r[0].status == DKIM_PASS && r[1].status == DKIM_PASS);
	CHECK(strcmp(r[0].selector, "d202611e") == 0);
	CHECK(strcmp(r[1].selector, "d202611r") == 0);
	CHECK(strcmp(r[0].domain, "example.test") == 0);
	CHECK(strcmp(r[1].algorithm, "rsa-sha256") == 0);
	CHECK(strlen(r[0].header_b) == 12);
	CHECK(strcmp(dkim_status_name(r[0].status), "pass") == 0);
	/* max limits the signatures looked at. */
	CHECK(dkim_verify(&resolver, slice_cstr(signed_message), 1790000100, r,
			  1) == 1);

	/* Rotation: a new pair signs, the old one stays listed. */
	CHECK(dkim_keys_generate(dir, "example.test", "d202612", &error) == 0);
	CHECK(dkim_keys_activate(dir, "example.test", "d202612", &error) == 0);
	l.count = 0;
	CHECK(dkim_keys_list(dir, "example.test", collect_key, &l, &error) ==
	      0);
	CHECK(l.count == 4);
	CHECK(strcmp(l.lines[0], "example.test d202611e ed25519 inactive") ==
	      0);
	CHECK(strcmp(l.lines[3], "example.test d202612r rsa active") == 0);
	dkim_signer_free(&s);
	s = dkim_signer_load(dir, &error);
	CHECK(s != NULL);
	buf_reset(&out);
	CHECK(dkim_sign(s, "example.test", slice_cstr(message), 1790000000,
			&out, &error) == 1);
	CHECK(strstr(buf_cstr(&out), "s=d202612e;") != NULL);
	CHECK(strstr(buf_cstr(&out), "s=d202611") == NULL);

	/* A broken active key file stops loading with an error. */
	snprintf(path, sizeof(path), "%s/dkim/example.test/d202612r.rsa.pem",
		 dir);
	FILE *f = fopen(path, "w");
	fputs("garbage\n", f);
	fclose(f);
	struct dkim_signer *broken = dkim_signer_load(dir, &error);
	CHECK(broken == NULL);
	CHECK(strstr(error, "d202612r.rsa.pem") != NULL);

	dkim_signer_free(&s);
	buf_free(&out);
	free(signed_message);
	free(message);
	remove_tree(dir);
	free(dir);
}

/* Keys made in memory, for the failure cases. */
static EVP_PKEY *ed_key, *rsa_key, *small_rsa_key;
static char *ed_record, *rsa_record;

static struct dkim_signer *memory_signer(void)
{
	struct dkim_signer *s = dkim_signer_new();
	const char *error;
	char *pem = pem_of(ed_key);
	CHECK(dkim_signer_add_pem(s, "example.test", "e1", slice_cstr(pem),
				  &error) == 0);
	free(pem);
	pem = pem_of(rsa_key);
	/* Added second but signs second either way. */
	CHECK(dkim_signer_add_pem(s, "example.test", "r1", slice_cstr(pem),
				  &error) == 0);
	free(pem);
	pem = pem_of(small_rsa_key);
	CHECK(dkim_signer_add_pem(s, "example.test", "small", slice_cstr(pem),
				  &error) == -1);
	free(pem);
	CHECK(dkim_signer_add_pem(s, "example.test", "x",
				  slice_cstr("not a key"), &error) == -1);
	CHECK(dkim_signer_add_pem(s, "bad domain", "x",
				  slice_cstr(rfc8463_ed25519_pem),
				  &error) == -1);
	return s;
}

static char *sign_with(const struct dkim_signer *s, const char *message)
{
	struct buf out;
	buf_init(&out, 1 << 20);
	const char *error = NULL;
	int r = dkim_sign(s, "example.test", slice_cstr(message), 1790000000,
			  &out, &error);
	CHECK(r == 1);
	buf_append_cstr(&out, message);
	char *signed_message = xstrdup(buf_cstr(&out));
	buf_free(&out);
	return signed_message;
}

static void dns_standard(void)
{
	dns_reset();
	dns_add("e1._domainkey.example.test", DNS_OK, ed_record);
	dns_add("r1._domainkey.example.test", DNS_OK, rsa_record);
}

static char *replace(const char *text, const char *from, const char *to)
{
	const char *at = strstr(text, from);
	DIJK_ASSERT(at != NULL);
	return xasprintf("%.*s%s%s", (int)(at - text), text, to,
			 at + strlen(from));
}

static void test_failures(void)
{
	struct dkim_signer *s = memory_signer();
	char *message = crlf(plain_message);
	char *good = sign_with(s, message);
	struct dkim_result r[DKIM_MAX_SIGNATURES];
	const time_t now = 1790000100;

	dns_standard();
	CHECK(verify(good, now, r) == 2);
	CHECK(r[0].status == DKIM_PASS && r[1].status == DKIM_PASS);
	CHECK(strcmp(r[0].selector, "e1") == 0);

	/* Messages changed after signing. */
	static const struct {
		const char *from, *to;
		enum dkim_status status;
		const char *reason;
	} edits[] = {
		/* The body. */
		{"Hello Bob", "Hello Eve", DKIM_FAIL, "body hash mismatch"},
		{"\r\n\r\nHello", "\r\n\r\nP.S.\r\nHello", DKIM_FAIL,
		 "body hash mismatch"},
		/* Relaxed body forgives whitespace changes... */
		{"this  line", "this line", DKIM_PASS, ""},
		{"spaces   \r\n", "spaces\r\n\r\n\r\n", DKIM_PASS, ""},
		/* ...and header refolding and case. */
		{"Subject: Round trip", "SUBJECT:   Round\r\n trip", DKIM_PASS,
		 ""},
		/* Signed fields. */
		{"Subject: Round trip", "Subject: Round trap", DKIM_FAIL,
		 "signature did not verify"},
		{"List-Id: <list.example.test>", "List-Id: <other>", DKIM_FAIL,
		 "signature did not verify"},
		/* Over-signing: an added From or Subject, above or below. */
		{"From: Alice", "From: Mallory <m@evil.example>\r\nFrom: Alice",
		 DKIM_FAIL, "signature did not verify"},
		{"X-Unsigned: yes", "X-Unsigned: yes\r\nFrom: m@evil.example",
		 DKIM_FAIL, "signature did not verify"},
		{"X-Unsigned: yes", "X-Unsigned: yes\r\nSubject: urgent",
		 DKIM_FAIL, "signature did not verify"},
		{"X-Unsigned: yes", "X-Unsigned: yes\r\nCc: eve@example.org",
		 DKIM_PASS, ""},
		/* Unsigned fields may change. */
		{"X-Unsigned: yes", "X-Unsigned: no", DKIM_PASS, ""},
		{"Received: from somewhere",
		 "Received: from elsewhere\r\nReceived: from somewhere",
		 DKIM_PASS, ""},
		/* A removed signed field. */
		{"Message-ID: <rt1@example.test>\r\n", "", DKIM_FAIL,
		 "signature did not verify"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(edits); i++) {
		char *edited = replace(good, edits[i].from, edits[i].to);
		size_t n = verify(edited, now, r);
		CHECK_CASE(n == 2, i, edits[i].to);
		CHECK_CASE(r[0].status == edits[i].status &&
				   r[1].status == edits[i].status,
			   i, edits[i].to);
		CHECK_CASE(strcmp(r[0].reason, edits[i].reason) == 0, i,
			   edits[i].to);
		free(edited);
	}

	/* DNS. */
	static const struct {
		enum dns_status status;
		const char *record;
		enum dkim_status expect;
		const char *reason;
	} keys[] = {
		{DNS_NXDOMAIN, NULL, DKIM_PERMERROR, "no key record"},
		{DNS_NODATA, NULL, DKIM_PERMERROR, "no key record"},
		{DNS_TEMPFAIL, NULL, DKIM_TEMPERROR,
		 "DNS failure fetching the key"},
		{DNS_BOGUS, NULL, DKIM_TEMPERROR,
		 "DNSSEC validation of the key failed"},
		{DNS_OK, "v=DKIM1; p=", DKIM_PERMERROR, "key revoked"},
		{DNS_OK, "v=DKIM1; k=ed25519; p=", DKIM_PERMERROR,
		 "key revoked"},
		{DNS_OK, "v=spf1 -all", DKIM_PERMERROR,
		 "not a DKIM1 key record"},
		{DNS_OK, "v=DKIM1; k=ed25519; p=AAAA", DKIM_PERMERROR,
		 "bad Ed25519 key"},
		{DNS_OK, "v=DKIM1; k=ed25519; p=!!!!", DKIM_PERMERROR,
		 "p= is not base64"},
		{DNS_OK, "v=DKIM1; k=ed25519; h=sha1; p=AAAA", DKIM_PERMERROR,
		 "hash not allowed by the key"},
		{DNS_OK, "v=DKIM1; k=ed25519; s=other; p=AAAA", DKIM_PERMERROR,
		 "key is not for email (s=)"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		dns_reset();
		dns_add("e1._domainkey.example.test", keys[i].status,
			keys[i].record ? keys[i].record : "");
		size_t n = verify(good, now, r);
		CHECK_CASE(n == 2 && r[0].status == keys[i].expect, i,
			   keys[i].reason);
		CHECK_CASE(strcmp(r[0].reason, keys[i].reason) == 0, i,
			   keys[i].reason);
		/* The RSA signature is not affected... */
		CHECK_CASE(r[1].status == DKIM_PERMERROR, i, "no r1 record");
	}
	/* Key type mismatch: the RSA key published at the Ed25519 name. */
	dns_reset();
	dns_add("e1._domainkey.example.test", DNS_OK, rsa_record);
	dns_add("r1._domainkey.example.test", DNS_OK, ed_record);
	CHECK(verify(good, now, r) == 2);
	CHECK(r[0].status == DKIM_PERMERROR && r[1].status == DKIM_PERMERROR);
	CHECK(strcmp(r[0].reason, "key type does not match a=") == 0);
	/* The other key of the same type: the signature fails. */
	EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	char *other_record = record_of(other);
	dns_reset();
	dns_add("e1._domainkey.example.test", DNS_OK, other_record);
	CHECK(verify(good, now, r) == 2 && r[0].status == DKIM_FAIL);
	CHECK(strcmp(r[0].reason, "signature did not verify") == 0);
	/* A second, unparsable TXT record beside the key is skipped. */
	dns_reset();
	dns_add("e1._domainkey.example.test", DNS_OK, "hello world");
	dns_rows[0].txt2 = ed_record;
	CHECK(verify(good, now, r) == 2 && r[0].status == DKIM_PASS);
	free(other_record);
	EVP_PKEY_free(other);

	/* A message without signatures. */
	CHECK(verify(message, now, r) == 0);
	/* An empty message, a message of header only. */
	CHECK(verify("", now, r) == 0);
	CHECK(verify("DKIM-Signature: v=1", now, r) == 1 &&
	      r[0].status == DKIM_PERMERROR);
	/* Signing refuses a message starting with a continuation line. */
	struct buf out;
	buf_init(&out, 1 << 16);
	const char *error;
	CHECK(dkim_sign(s, "example.test", slice_cstr(" x\r\n\r\n"), 1, &out,
			&error) == -1);
	/* An empty message and a header-only message sign and verify. */
	static const char *const odd[] = {"", "From: a@example.test",
					  "From: a@example.test\r\n",
					  "From: a@example.test\r\n\r\n"};
	for (size_t i = 0; i < ARRAY_SIZE(odd); i++) {
		char *signed_odd = sign_with(s, odd[i]);
		dns_standard();
		size_t n = verify(signed_odd, now, r);
		CHECK_CASE(n == 2 && r[0].status == DKIM_PASS &&
				   r[1].status == DKIM_PASS,
			   i, odd[i]);
		free(signed_odd);
	}
	buf_free(&out);

	free(good);
	free(message);
	dkim_signer_free(&s);
}

/* Hand-made signatures: tags our signer never writes. */
static void test_custom_tags(void)
{
	char *message = crlf("From: joe@example.test\n"
			     "Subject: tags\n"
			     "\n"
			     "Body line one\n"
			     "Body line two\n");
	const time_t now = 1790000100;
	struct dkim_result r[DKIM_MAX_SIGNATURES];
	dns_standard();
	dns_add("strict._domainkey.example.test", DNS_OK, NULL);
	dns_add("small._domainkey.example.test", DNS_OK, NULL);
	char *strict_record = xasprintf("%s; t=s", ed_record);
	dns_rows[2].txt = strict_record;
	char *small_record = record_of(small_rsa_key);
	dns_rows[3].txt = small_record;
	/* Body length of the canonical (simple) body: 30 bytes. */
	static const struct {
		const char *tags;
		bool rsa, sha1, small;
		enum dkim_canon hc, bc;
		long length;
		time_t now;
		enum dkim_status status;
		const char *reason;
	} cases[] = {
		{"v=1; a=ed25519-sha256; d=example.test; s=e1; h=from:subject",
		 false, false, false, DKIM_CANON_SIMPLE, DKIM_CANON_SIMPLE, -1,
		 now, DKIM_PASS, ""},
		{"v=1; a=ed25519-sha256; c=simple/relaxed; d=example.test; "
		 "s=e1; h=from:subject",
		 false, false, false, DKIM_CANON_SIMPLE, DKIM_CANON_RELAXED, -1,
		 now, DKIM_PASS, ""},
		{"v=1; a=ed25519-sha256; c=relaxed; d=example.test; s=e1; "
		 "h=subject:from",
		 false, false, false, DKIM_CANON_RELAXED, DKIM_CANON_SIMPLE, -1,
		 now, DKIM_PASS, ""},
		/* l= covering the body, part of it, more than it. */
		{"v=1; a=ed25519-sha256; d=example.test; s=e1; h=from; l=30",
		 false, false, false, DKIM_CANON_SIMPLE, DKIM_CANON_SIMPLE, 30,
		 now, DKIM_PASS, ""},
		{"v=1; a=ed25519-sha256; d=example.test; s=e1; h=from; l=15",
		 false, false, false, DKIM_CANON_SIMPLE, DKIM_CANON_SIMPLE, 15,
		 now, DKIM_POLICY, "l= leaves part of the body unsigned"},
		{"v=1; a=ed25519-sha256; d=example.test; s=e1; h=from; l=31",
		 false, false, false, DKIM_CANON_SIMPLE, DKIM_CANON_SIMPLE, 31,
		 now, DKIM_FAIL, "l= is longer than the body"},
		/* x= and t=. */
		{"v=1; a=ed25519-sha256; d=example.test; s=e1; h=from; "
		 "t=1790000000; x=1790000200",
		 false, false, false, DKIM_CANON_SIMPLE, DKIM_CANON_SIMPLE, -1,
		 now, DKIM_PASS, ""},
		{"v=1; a=ed25519-sha256; d=example.test; s=e1; h=from; "
		 "t=1790000000; x=1790000050",
		 false, false, false, DKIM_CANON_SIMPLE, DKIM_CANON_SIMPLE, -1,
		 now, DKIM_FAIL, "signature expired"},
		{"v=1; a=ed25519-sha256; d=example.test; s=e1; h=from; "
		 "t=1790000000; x=1789999999",
		 false, false, false, DKIM_CANON_SIMPLE, DKIM_CANON_SIMPLE, -1,
		 now, DKIM_PERMERROR, "x= is not after t="},
		/* i=, and t=s on the key. */
		{"v=1; a=ed25519-sha256; d=example.test; s=e1; h=from; "
		 "i=joe@sub.example.test",
		 false, false, false, DKIM_CANON_SIMPLE, DKIM_CANON_SIMPLE, -1,
		 now, DKIM_PASS, ""},
		{"v=1; a=ed25519-sha256; d=example.test; s=strict; h=from; "
		 "i=joe@sub.example.test",
		 false, false, false, DKIM_CANON_SIMPLE, DKIM_CANON_SIMPLE, -1,
		 now, DKIM_PERMERROR, "i= is not d= (key has t=s)"},
		{"v=1; a=ed25519-sha256; d=example.test; s=strict; h=from; "
		 "i=joe@example.test",
		 false, false, false, DKIM_CANON_SIMPLE, DKIM_CANON_SIMPLE, -1,
		 now, DKIM_PASS, ""},
		/* RSA, rsa-sha1, a key under 1024 bits, an unknown a=. */
		{"v=1; a=rsa-sha256; d=example.test; s=r1; h=from:subject",
		 true, false, false, DKIM_CANON_SIMPLE, DKIM_CANON_SIMPLE, -1,
		 now, DKIM_PASS, ""},
		{"v=1; a=rsa-sha1; d=example.test; s=r1; h=from:subject", true,
		 true, false, DKIM_CANON_SIMPLE, DKIM_CANON_SIMPLE, -1, now,
		 DKIM_POLICY, "rsa-sha1 is not accepted"},
		{"v=1; a=rsa-sha256; d=example.test; s=small; h=from", true,
		 false, true, DKIM_CANON_SIMPLE, DKIM_CANON_SIMPLE, -1, now,
		 DKIM_FAIL, "RSA key shorter than 1024 bits"},
		{"v=1; a=rsa-sha512; d=example.test; s=r1; h=from", true, false,
		 false, DKIM_CANON_SIMPLE, DKIM_CANON_SIMPLE, -1, now,
		 DKIM_NEUTRAL, "unsupported algorithm"},
		/* From not signed; a missing tag. */
		{"v=1; a=ed25519-sha256; d=example.test; s=e1; h=subject",
		 false, false, false, DKIM_CANON_SIMPLE, DKIM_CANON_SIMPLE, -1,
		 now, DKIM_PERMERROR, "h= does not sign From"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		EVP_PKEY *key = cases[i].small ? small_rsa_key
				: cases[i].rsa ? rsa_key
					       : ed_key;
		char *signed_message =
			sign_custom(key, cases[i].tags, message, cases[i].hc,
				    cases[i].bc, cases[i].length,
				    cases[i].sha1 ? EVP_sha1() : EVP_sha256());
		size_t n = verify(signed_message, cases[i].now, r);
		CHECK_CASE(n == 1, i, cases[i].tags);
		CHECK_CASE(r[0].status == cases[i].status, i, cases[i].tags);
		CHECK_CASE(strcmp(r[0].reason, cases[i].reason) == 0, i,
			   cases[i].tags);
		if (r[0].status != cases[i].status)
			fprintf(stderr, "  got %s: %s\n",
				dkim_status_name(r[0].status), r[0].reason);
		free(signed_message);
	}
	/* Unsafe d= and s= never reach the result. */
	char *odd = crlf("DKIM-Signature: v=1; a=rsa-sha256; d=a\"b; "
			 "s=x y; h=from; bh=A; b=A\nFrom: x\n\nbody\n");
	CHECK(verify(odd, now, r) == 1);
	CHECK(r[0].status == DKIM_PERMERROR);
	CHECK(r[0].domain[0] == '\0' && r[0].selector[0] == '\0');
	CHECK(strcmp(r[0].algorithm, "rsa-sha256") == 0);
	free(odd);
	/* More signatures than DKIM_MAX_SIGNATURES. */
	struct buf many;
	buf_init(&many, 1 << 16);
	for (int k = 0; k < DKIM_MAX_SIGNATURES + 3; k++)
		buf_append_cstr(&many, "DKIM-Signature: v=1\r\n");
	buf_append_cstr(&many, message);
	dns_queries = 0;
	CHECK(verify(buf_cstr(&many), now, r) == DKIM_MAX_SIGNATURES);
	CHECK(dns_queries == 0);
	buf_free(&many);
	free(strict_record);
	free(small_record);
	free(message);
}

/* List-* fields are signed, each instance; absurdly long names are not. */
static void test_list_fields(void)
{
	struct dkim_signer *s = memory_signer();
	char long_name[128];
	memset(long_name, 'x', sizeof(long_name));
	memcpy(long_name, "List-", 5);
	long_name[100] = '\0';
	char *text =
		xasprintf("From: list@example.test\n"
			  "List-Id: <a.example.test>\n"
			  "List-Unsubscribe: <https://example.test/u>\n"
			  "List-Unsubscribe-Post: List-Unsubscribe=One-Click\n"
			  "%s: long\n"
			  "list-id: <b.example.test>\n"
			  "\n"
			  "body\n",
			  long_name);
	char *message = crlf(text);
	char *signed_message = sign_with(s, message);
	const char *h = strstr(signed_message, "h=");
	CHECK(h != NULL);
	struct buf names;
	buf_init(&names, 4096);
	for (; h != NULL && *h != ';'; h++)
		if (*h != '\r' && *h != '\n' && *h != '\t')
			buf_append(&names, h, 1);
	CHECK(strcmp(buf_cstr(&names),
		     "h=from:from:to:subject:date:list-id:list-unsubscribe:"
		     "list-unsubscribe-post:list-id") == 0);
	dns_standard();
	struct dkim_result r[DKIM_MAX_SIGNATURES];
	CHECK(verify(signed_message, 1790000100, r) == 2);
	CHECK(r[0].status == DKIM_PASS && r[1].status == DKIM_PASS);
	char *changed = replace(signed_message, "<b.example", "<c.example");
	CHECK(verify(changed, 1790000100, r) == 2);
	CHECK(r[0].status == DKIM_FAIL && r[1].status == DKIM_FAIL);
	buf_free(&names);
	free(changed);
	free(signed_message);
	free(message);
	free(text);
	dkim_signer_free(&s);
}

static void test_status_names(void)
{
	static const struct {
		enum dkim_status status;
		const char *name;
	} names[] = {
		{DKIM_NONE, "none"},	       {DKIM_PASS, "pass"},
		{DKIM_FAIL, "fail"},	       {DKIM_NEUTRAL, "neutral"},
		{DKIM_POLICY, "policy"},       {DKIM_TEMPERROR, "temperror"},
		{DKIM_PERMERROR, "permerror"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		CHECK_CASE(strcmp(dkim_status_name(names[i].status),
				  names[i].name) == 0,
			   i, names[i].name);
}

int main(void)
{
	ed_key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	rsa_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	small_rsa_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)768);
	DIJK_ASSERT(ed_key != NULL && rsa_key != NULL && small_rsa_key != NULL);
	ed_record = record_of(ed_key);
	rsa_record = record_of(rsa_key);

	test_signature_parse();
	test_key_record_parse();
	test_canonicalization();
	test_rfc8463();
	test_key_store_round_trip();
	test_failures();
	test_custom_tags();
	test_list_fields();
	test_status_names();

	free(ed_record);
	free(rsa_record);
	EVP_PKEY_free(ed_key);
	EVP_PKEY_free(rsa_key);
	EVP_PKEY_free(small_rsa_key);
	return unit_result("smtp_dkim");
}
