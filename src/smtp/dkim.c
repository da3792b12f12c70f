/* dkim.c: DKIM signing and verification (RFC 6376, RFC 8301, RFC 8463),
 * and the key store below DATA/dkim (layout in dkim.h).
 *
 * The tag-list and key-record parsers and the canonicalizations are pure
 * functions over slices; verification adds one TXT lookup per signature
 * through the caller's resolver, and OpenSSL for hashes and signatures.
 * Both algorithms sign the SHA-256 hash of the canonical header data:
 * RSA with PKCS#1 v1.5, Ed25519 (RFC 8463) with PureEdDSA over the hash. */
#include "core/common.h"

#include "core/ascii.h"

#include "smtp/dkim.h"

#include "core/base64.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

/* List-* fields with longer names are not signed. */
#define DKIM_MAX_LIST_NAME 64
/* The longest signature we check or make (RSA of DKIM_MAX_RSA_BITS). */
#define DKIM_MAX_SIGNATURE_BYTES (DKIM_MAX_RSA_BITS / 8)

static _Thread_local char error_text[512];

static const char *error_printf(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static const char *error_printf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(error_text, sizeof(error_text), fmt, ap);
	va_end(ap);
	return error_text;
}

/* ---- Small helpers over bytes ---- */

/* Whitespace inside a tag-list: WSP and the CR LF of folding. */
static bool is_tag_space(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool slices_eq_ci(struct slice a, struct slice b)
{
	if (a.n != b.n)
		return false;
	for (size_t i = 0; i < a.n; i++)
		if (ascii_lower(a.p[i]) != ascii_lower(b.p[i]))
			return false;
	return true;
}

static bool slice_eq(struct slice s, const char *cstr)
{
	size_t n = strlen(cstr);
	return s.n == n && memcmp(s.p, cstr, n) == 0;
}

static struct slice trim(struct slice s)
{
	while (s.n > 0 && is_tag_space(s.p[0]))
		s = slice_make(s.p + 1, s.n - 1);
	while (s.n > 0 && is_tag_space(s.p[s.n - 1]))
		s.n--;
	return s;
}

/* Calls back for each element of a ':'-separated list, trimmed. Returns
 * false when the callback does. */
static bool split_colons(struct slice list,
			 bool (*fn)(struct slice item, void *context),
			 void *context)
{
	size_t start = 0;
	for (size_t i = 0; i <= list.n; i++) {
		if (i == list.n || list.p[i] == ':') {
			struct slice item =
				trim(slice_make(list.p + start, i - start));
			if (!fn(item, context))
				return false;
			start = i + 1;
		}
	}
	return true;
}

/* A DNS name as DKIM uses them for d= and s=: dot-separated labels of
 * letters, digits, '-' and '_', 1-63 octets each, DNS_MAX_NAME in all. */
static bool is_dns_name(struct slice s)
{
	if (s.n == 0 || s.n > DNS_MAX_NAME - 1)
		return false;
	size_t label = 0;
	for (size_t i = 0; i < s.n; i++) {
		uint8_t c = s.p[i];
		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!ascii_is_alpha(c) && !ascii_is_digit(c) && c != '-' &&
		    c != '_')
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0;
}

/* Parses 1 to 20 digits into *value_r; false on anything else or on
 * overflow. */
static bool parse_number(struct slice s, uint64_t *value_r)
{
	if (s.n == 0 || s.n > 20)
		return false;
	uint64_t v = 0;
	for (size_t i = 0; i < s.n; i++) {
		if (!ascii_is_digit(s.p[i]))
			return false;
		uint64_t d = (uint64_t)(s.p[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*value_r = v;
	return true;
}

/* Decodes base64 that may hold folding whitespace into out, which has
 * room for out_size bytes. Returns the length, or -1 when the text is not
 * base64 or does not fit. */
static long decode_base64_spaced(struct slice in, uint8_t *out, size_t out_size)
{
	char *packed = xmalloc(in.n + 1);
	size_t n = 0;
	for (size_t i = 0; i < in.n; i++)
		if (!is_tag_space(in.p[i]))
			packed[n++] = (char)in.p[i];
	long r = -1;
	if (BASE64_DECODED_MAX(n) <= out_size)
		r = base64_decode(slice_make(packed, n), out);
	free(packed);
	return r;
}

/* ---- Tag-lists (RFC 6376 3.2) ---- */

struct tag {
	struct slice name, value;
	size_t raw_start, raw_end; /* the value with its whitespace */
};

/* Reads the tag-spec at *pos. Returns 1 with a tag, 0 at the end of the
 * list, -1 on a syntax error. Empty tag-specs (";;") are skipped. Values
 * may hold any byte but controls and ';' (8-bit bytes are let through for
 * RFC 8616 identities). */
static int next_tag(struct slice in, size_t *pos, struct tag *t)
{
	size_t i = *pos;
	for (;;) {
		while (i < in.n && is_tag_space(in.p[i]))
			i++;
		if (i == in.n) {
			*pos = i;
			return 0;
		}
		if (in.p[i] != ';')
			break;
		i++;
	}
	size_t name_start = i;
	if (!ascii_is_alpha(in.p[i]))
		return -1;
	while (i < in.n && (ascii_is_alpha(in.p[i]) ||
			    ascii_is_digit(in.p[i]) || in.p[i] == '_'))
		i++;
	t->name = slice_make(in.p + name_start, i - name_start);
	while (i < in.n && is_tag_space(in.p[i]))
		i++;
	if (i == in.n || in.p[i] != '=')
		return -1;
	i++;
	t->raw_start = i;
	while (i < in.n && is_tag_space(in.p[i]))
		i++;
	size_t value_start = i, value_end = i;
	while (i < in.n && in.p[i] != ';') {
		uint8_t c = in.p[i++];
		if (is_tag_space(c))
			continue;
		if (c < 0x21 || c == 0x7f)
			return -1;
		value_end = i;
	}
	t->raw_end = i;
	t->value = slice_make(in.p + value_start, value_end - value_start);
	if (i < in.n)
		i++; /* the ';' */
	*pos = i;
	return 1;
}

/* Walks a whole tag-list, refusing duplicate names (RFC 6376 3.2) and
 * lists of more than DKIM_MAX_TAGS tags, and calls fn for each tag. */
static int walk_tags(struct slice in,
		     int (*fn)(const struct tag *t, size_t index, void *context,
			       const char **error_r),
		     void *context, const char **error_r)
{
	struct slice seen[DKIM_MAX_TAGS];
	size_t count = 0, pos = 0;
	for (;;) {
		struct tag t;
		int r = next_tag(in, &pos, &t);
		if (r == 0)
			return 0;
		if (r < 0) {
			*error_r = "tag-list syntax error";
			return -1;
		}
		if (count == DKIM_MAX_TAGS) {
			*error_r = "too many tags";
			return -1;
		}
		for (size_t k = 0; k < count; k++) {
			if (seen[k].n == t.name.n &&
			    memcmp(seen[k].p, t.name.p, t.name.n) == 0) {
				*error_r = "duplicate tag";
				return -1;
			}
		}
		seen[count] = t.name;
		if (fn(&t, count, context, error_r) != 0)
			return -1;
		count++;
	}
}

/* ---- DKIM-Signature ---- */

static bool add_signed_name(struct slice name, void *context)
{
	struct dkim_signature *sig = context;
	if (name.n == 0 || sig->header_count == DKIM_MAX_SIGNED_FIELDS)
		return false;
	for (size_t i = 0; i < name.n; i++) {
		/* ftext: printable ASCII but ':' */
		if (name.p[i] < 33 || name.p[i] > 126 || name.p[i] == ':')
			return false;
	}
	sig->headers[sig->header_count++] = name;
	return true;
}

static bool has_dns_txt(struct slice item, void *context)
{
	bool *found = context;
	if (slice_eq(item, "dns/txt"))
		*found = true;
	return true;
}

static int parse_canon(struct slice s, enum dkim_canon *c)
{
	if (slice_eq(s, "simple"))
		*c = DKIM_CANON_SIMPLE;
	else if (slice_eq(s, "relaxed"))
		*c = DKIM_CANON_RELAXED;
	else
		return -1;
	return 0;
}

static int signature_tag(const struct tag *t, size_t index, void *context,
			 const char **error_r)
{
	(void)index;
	struct dkim_signature *sig = context;
	struct slice v = t->value;
	if (slice_eq(t->name, "v")) {
		sig->version = v;
	} else if (slice_eq(t->name, "a")) {
		sig->algorithm = v;
		if (slice_eq(v, "rsa-sha256"))
			sig->alg = DKIM_ALG_RSA_SHA256;
		else if (slice_eq(v, "ed25519-sha256"))
			sig->alg = DKIM_ALG_ED25519_SHA256;
		else if (slice_eq(v, "rsa-sha1"))
			sig->alg = DKIM_ALG_RSA_SHA1;
	} else if (slice_eq(t->name, "b")) {
		sig->b = v;
		sig->b_start = t->raw_start;
		sig->b_end = t->raw_end;
	} else if (slice_eq(t->name, "bh")) {
		sig->body_hash = v;
	} else if (slice_eq(t->name, "c")) {
		const uint8_t *slash = memchr(v.p, '/', v.n);
		struct slice header = v, body = {NULL, 0};
		if (slash != NULL) {
			header = slice_make(v.p, (size_t)(slash - v.p));
			body = slice_make(slash + 1, v.n - header.n - 1);
		}
		if (parse_canon(header, &sig->header_canon) != 0 ||
		    (slash != NULL && parse_canon(body, &sig->body_canon))) {
			*error_r = "unknown canonicalization in c=";
			return -1;
		}
	} else if (slice_eq(t->name, "d")) {
		sig->domain = v;
	} else if (slice_eq(t->name, "h")) {
		sig->header_count = 0;
		if (!split_colons(v, add_signed_name, sig)) {
			*error_r = "bad h= list";
			return -1;
		}
	} else if (slice_eq(t->name, "i")) {
		sig->identity = v;
	} else if (slice_eq(t->name, "l")) {
		if (!parse_number(v, &sig->length)) {
			*error_r = "bad l=";
			return -1;
		}
		sig->has_length = true;
	} else if (slice_eq(t->name, "q")) {
		sig->query = v;
	} else if (slice_eq(t->name, "s")) {
		sig->selector = v;
	} else if (slice_eq(t->name, "t")) {
		if (!parse_number(v, &sig->timestamp)) {
			*error_r = "bad t=";
			return -1;
		}
		sig->has_timestamp = true;
	} else if (slice_eq(t->name, "x")) {
		if (!parse_number(v, &sig->expiry)) {
			*error_r = "bad x=";
			return -1;
		}
		sig->has_expiry = true;
	}
	/* z= (copied fields) and unknown tags are ignored. */
	return 0;
}

/* The domain of i= ("local@domain") is d= or a subdomain of it. */
static bool identity_in_domain(struct slice identity, struct slice domain,
			       bool exact)
{
	const uint8_t *at = NULL;
	for (size_t i = 0; i < identity.n; i++)
		if (identity.p[i] == '@')
			at = identity.p + i;
	if (at == NULL)
		return false;
	struct slice idomain =
		slice_make(at + 1, identity.n - (size_t)(at + 1 - identity.p));
	if (slices_eq_ci(idomain, domain))
		return true;
	if (exact || idomain.n <= domain.n + 1)
		return false;
	struct slice tail =
		slice_make(idomain.p + idomain.n - domain.n, domain.n);
	return idomain.p[idomain.n - domain.n - 1] == '.' &&
	       slices_eq_ci(tail, domain);
}

int dkim_parse_signature(struct slice value, struct dkim_signature *sig_r,
			 const char **error_r)
{
	memset(sig_r, 0, sizeof(*sig_r));
	sig_r->header_canon = DKIM_CANON_SIMPLE;
	sig_r->body_canon = DKIM_CANON_SIMPLE;
	if (walk_tags(value, signature_tag, sig_r, error_r) != 0)
		return -1;
	const struct dkim_signature *s = sig_r;
	if (s->version.p == NULL) {
		*error_r = "missing v=";
		return -1;
	}
	if (!slice_eq(s->version, "1")) {
		*error_r = "unsupported version";
		return -1;
	}
	static const struct {
		size_t offset;
		const char *error;
	} required[] = {
		{offsetof(struct dkim_signature, algorithm), "missing a="},
		{offsetof(struct dkim_signature, b), "missing b="},
		{offsetof(struct dkim_signature, body_hash), "missing bh="},
		{offsetof(struct dkim_signature, domain), "missing d="},
		{offsetof(struct dkim_signature, selector), "missing s="},
	};
	for (size_t i = 0; i < ARRAY_SIZE(required); i++) {
		const struct slice *tag =
			(const struct slice *)((const char *)s +
					       required[i].offset);
		if (tag->p == NULL) {
			*error_r = required[i].error;
			return -1;
		}
	}
	if (s->header_count == 0) {
		*error_r = "missing h=";
		return -1;
	}
	bool from = false;
	for (size_t i = 0; i < s->header_count; i++)
		if (slice_eq_ci(s->headers[i], "from"))
			from = true;
	if (!from) {
		*error_r = "h= does not sign From";
		return -1;
	}
	if (!is_dns_name(s->domain)) {
		*error_r = "bad d=";
		return -1;
	}
	if (!is_dns_name(s->selector) || s->selector.n > DKIM_MAX_SELECTOR) {
		*error_r = "bad s=";
		return -1;
	}
	if (s->query.p != NULL) {
		bool found = false;
		split_colons(s->query, has_dns_txt, &found);
		if (!found) {
			*error_r = "unsupported query method in q=";
			return -1;
		}
	}
	if (s->identity.p != NULL &&
	    !identity_in_domain(s->identity, s->domain, false)) {
		*error_r = "i= is not within d=";
		return -1;
	}
	if (s->has_timestamp && s->has_expiry && s->expiry <= s->timestamp) {
		*error_r = "x= is not after t=";
		return -1;
	}
	return 0;
}

/* ---- Key records (RFC 6376 3.6.1) ---- */

struct key_parse {
	struct dkim_key_record *key;
	bool seen_p;
};

static bool key_hash_item(struct slice item, void *context)
{
	struct dkim_key_record *key = context;
	if (slice_eq(item, "sha256"))
		key->sha256_allowed = true;
	else if (slice_eq(item, "sha1"))
		key->sha1_allowed = true;
	return true;
}

static bool key_service_item(struct slice item, void *context)
{
	bool *email = context;
	if (slice_eq(item, "*") || slice_eq(item, "email"))
		*email = true;
	return true;
}

static bool key_flag_item(struct slice item, void *context)
{
	struct dkim_key_record *key = context;
	if (slice_eq(item, "y"))
		key->testing = true;
	else if (slice_eq(item, "s"))
		key->strict = true;
	return true;
}

static int key_tag(const struct tag *t, size_t index, void *context,
		   const char **error_r)
{
	struct key_parse *kp = context;
	struct dkim_key_record *key = kp->key;
	struct slice v = t->value;
	if (slice_eq(t->name, "v")) {
		if (index != 0) {
			*error_r = "v= is not the first tag";
			return -1;
		}
		if (!slice_eq(v, "DKIM1")) {
			*error_r = "not a DKIM1 key record";
			return -1;
		}
	} else if (slice_eq(t->name, "h")) {
		key->sha1_allowed = key->sha256_allowed = false;
		split_colons(v, key_hash_item, key);
	} else if (slice_eq(t->name, "k")) {
		if (slice_eq(v, "rsa")) {
			key->type = DKIM_KEY_RSA;
		} else if (slice_eq(v, "ed25519")) {
			key->type = DKIM_KEY_ED25519;
		} else {
			*error_r = "unknown key type in k=";
			return -1;
		}
	} else if (slice_eq(t->name, "p")) {
		key->public_key = v;
		kp->seen_p = true;
	} else if (slice_eq(t->name, "s")) {
		bool email = false;
		split_colons(v, key_service_item, &email);
		if (!email) {
			*error_r = "key is not for email (s=)";
			return -1;
		}
	} else if (slice_eq(t->name, "t")) {
		split_colons(v, key_flag_item, key);
	}
	/* n= (notes) and unknown tags are ignored. */
	return 0;
}

int dkim_parse_key_record(struct slice record, struct dkim_key_record *key_r,
			  const char **error_r)
{
	memset(key_r, 0, sizeof(*key_r));
	key_r->type = DKIM_KEY_RSA;
	key_r->sha1_allowed = key_r->sha256_allowed = true;
	struct key_parse kp = {key_r, false};
	if (walk_tags(record, key_tag, &kp, error_r) != 0)
		return -1;
	if (!kp.seen_p) {
		*error_r = "missing p=";
		return -1;
	}
	key_r->revoked = key_r->public_key.n == 0;
	return 0;
}

/* ---- Canonicalization (RFC 6376 3.4) ---- */

/* Where canonical bytes go: a hash, a buffer, or both. Only the first
 * limit bytes are passed on (l=); total counts them all. */
struct sink {
	EVP_MD_CTX *md;
	struct buf *out;
	uint64_t limit;
	uint64_t total;
	bool failed;
};

static void sink_put(struct sink *s, const void *p, size_t n)
{
	uint64_t room = s->total < s->limit ? s->limit - s->total : 0;
	size_t take = (uint64_t)n < room ? n : (size_t)room;
	if (take > 0) {
		if (s->md != NULL && EVP_DigestUpdate(s->md, p, take) != 1)
			s->failed = true;
		if (s->out != NULL)
			buf_append(s->out, p, take);
	}
	s->total += n;
}

static void canon_header(enum dkim_canon canon, struct slice field,
			 struct sink *s)
{
	if (canon == DKIM_CANON_SIMPLE) {
		sink_put(s, field.p, field.n);
		return;
	}
	const uint8_t *colon = memchr(field.p, ':', field.n);
	size_t name_n = colon ? (size_t)(colon - field.p) : field.n;
	while (name_n > 0 && is_tag_space(field.p[name_n - 1]))
		name_n--;
	uint8_t chunk[64];
	for (size_t i = 0; i < name_n;) {
		size_t k = 0;
		while (k < sizeof(chunk) && i < name_n)
			chunk[k++] = ascii_lower(field.p[i++]);
		sink_put(s, chunk, k);
	}
	if (colon == NULL)
		return;
	sink_put(s, ":", 1);
	/* Unfold (CR LF vanish), runs of WSP become one SP, and WSP at the
	 * start and end of the value goes. */
	size_t i = (size_t)(colon - field.p) + 1, run = i;
	bool space = false, any = false;
	while (i < field.n) {
		uint8_t c = field.p[i];
		bool crlf =
			c == '\r' && i + 1 < field.n && field.p[i + 1] == '\n';
		if (crlf || ascii_is_wsp(c)) {
			sink_put(s, field.p + run, i - run);
			i += crlf ? 2 : 1;
			run = i;
			if (!crlf)
				space = true;
			continue;
		}
		if (space && any && run == i)
			sink_put(s, " ", 1);
		space = false;
		any = true;
		i++;
	}
	sink_put(s, field.p + run, i - run);
}

/* Emits one body line (without its CRLF) in relaxed form: WSP runs inside
 * become one SP, WSP at the end goes. */
static void relaxed_line(struct slice line, struct sink *s)
{
	size_t i = 0, run = 0;
	bool space = false;
	while (i < line.n) {
		if (ascii_is_wsp(line.p[i])) {
			sink_put(s, line.p + run, i - run);
			space = true;
			run = ++i;
			continue;
		}
		if (space)
			sink_put(s, " ", 1);
		space = false;
		i++;
	}
	sink_put(s, line.p + run, i - run);
}

static bool line_is_blank(struct slice line)
{
	for (size_t i = 0; i < line.n; i++)
		if (!ascii_is_wsp(line.p[i]))
			return false;
	return true;
}

/* Finds the next CRLF at or after pos; returns its offset or body.n. */
static size_t find_crlf(struct slice body, size_t pos)
{
	while (pos < body.n) {
		const uint8_t *lf = memchr(body.p + pos, '\n', body.n - pos);
		if (lf == NULL)
			return body.n;
		size_t at = (size_t)(lf - body.p);
		if (at > 0 && body.p[at - 1] == '\r' && at - 1 >= pos)
			return at - 1;
		pos = at + 1;
	}
	return body.n;
}

static void canon_body(enum dkim_canon canon, struct slice body, struct sink *s)
{
	uint64_t empty_lines = 0;
	bool any = false;
	size_t pos = 0;
	while (pos < body.n) {
		size_t end = find_crlf(body, pos);
		struct slice line = slice_make(body.p + pos, end - pos);
		pos = end < body.n ? end + 2 : body.n;
		bool empty = canon == DKIM_CANON_SIMPLE ? line.n == 0
							: line_is_blank(line);
		/* Empty lines count only when something follows them. */
		if (empty) {
			empty_lines++;
			continue;
		}
		for (; empty_lines > 0; empty_lines--)
			sink_put(s, "\r\n", 2);
		if (canon == DKIM_CANON_SIMPLE)
			sink_put(s, line.p, line.n);
		else
			relaxed_line(line, s);
		sink_put(s, "\r\n", 2);
		any = true;
	}
	/* An empty simple body is one CRLF; an empty relaxed body is
	 * nothing (RFC 6376 3.4.3, 3.4.4). */
	if (!any && canon == DKIM_CANON_SIMPLE)
		sink_put(s, "\r\n", 2);
}

void dkim_canon_header(enum dkim_canon canon, struct slice field,
		       struct buf *out)
{
	struct sink s = {NULL, out, UINT64_MAX, 0, false};
	canon_header(canon, field, &s);
}

void dkim_canon_body(enum dkim_canon canon, struct slice body, struct buf *out)
{
	struct sink s = {NULL, out, UINT64_MAX, 0, false};
	canon_body(canon, body, &s);
}

/* ---- The header of a message ---- */

struct field {
	struct slice text; /* the whole field, without its final CRLF */
	struct slice name; /* before the colon, trimmed; empty if none */
};

struct header {
	struct field *fields;
	size_t count, cap;
	struct slice body;
	bool too_many;
};

static void add_field(struct header *h, struct slice first_line)
{
	if (h->count == DKIM_MAX_HEADER_FIELDS) {
		h->too_many = true;
		return;
	}
	if (h->count == h->cap) {
		h->cap = h->cap ? h->cap * 2 : 32;
		h->fields = xrealloc(h->fields, h->cap * sizeof(*h->fields));
	}
	struct field *f = &h->fields[h->count++];
	f->text = first_line;
	const uint8_t *colon = memchr(first_line.p, ':', first_line.n);
	size_t n = colon ? (size_t)(colon - first_line.p) : 0;
	while (n > 0 && ascii_is_wsp(first_line.p[n - 1]))
		n--;
	f->name = slice_make(first_line.p, n);
}

/* Splits message into header fields and body at the first empty line
 * (no empty line: all header, no body). Lines end only at CRLF. */
static void split_message(struct slice m, struct header *h)
{
	memset(h, 0, sizeof(*h));
	h->body = slice_make(m.p + m.n, 0);
	size_t pos = 0;
	while (pos < m.n) {
		size_t end = find_crlf(m, pos);
		size_t next = end < m.n ? end + 2 : m.n;
		if (end == pos) {
			h->body = slice_make(m.p + next, m.n - next);
			return;
		}
		if (ascii_is_wsp(m.p[pos]) && h->count > 0 && !h->too_many) {
			struct field *f = &h->fields[h->count - 1];
			f->text.n = end - (size_t)(f->text.p - m.p);
		} else if (!h->too_many) {
			add_field(h, slice_make(m.p + pos, end - pos));
		}
		pos = next;
	}
}

static void header_free(struct header *h)
{
	free(h->fields);
	h->fields = NULL;
}

/* Feeds the fields named in names to s, each picked from the bottom of
 * the header among those not picked yet (RFC 6376 5.4.2); a name with no
 * instance left adds nothing. used[] has h->count entries. */
static void hash_signed_fields(const struct header *h, bool *used,
			       const struct slice *names, size_t name_count,
			       enum dkim_canon canon, struct sink *s)
{
	for (size_t i = 0; i < name_count; i++) {
		for (size_t j = h->count; j-- > 0;) {
			if (used[j] ||
			    !slices_eq_ci(h->fields[j].name, names[i]))
				continue;
			used[j] = true;
			canon_header(canon, h->fields[j].text, s);
			sink_put(s, "\r\n", 2);
			break;
		}
	}
}

/* ---- Verification ---- */

static const EVP_MD *algorithm_md(enum dkim_algorithm alg)
{
	return alg == DKIM_ALG_RSA_SHA1 ? EVP_sha1() : EVP_sha256();
}

/* Body hashes already computed for this message, shared by signatures
 * that ask for the same one. */
struct body_hash {
	const EVP_MD *md;
	enum dkim_canon canon;
	uint64_t limit;
	uint8_t digest[EVP_MAX_MD_SIZE];
	unsigned digest_len;
	uint64_t total; /* canonical body length, whatever the limit */
};

struct verify_state {
	const struct dns_resolver *dns;
	struct header header;
	time_t now;
	struct body_hash hashes[DKIM_MAX_SIGNATURES];
	size_t hash_count;
};

static const struct body_hash *body_hash_get(struct verify_state *st,
					     const EVP_MD *md,
					     enum dkim_canon canon,
					     uint64_t limit)
{
	for (size_t i = 0; i < st->hash_count; i++) {
		const struct body_hash *b = &st->hashes[i];
		if (b->md == md && b->canon == canon && b->limit == limit)
			return b;
	}
	DIJK_ASSERT(st->hash_count < ARRAY_SIZE(st->hashes));
	struct body_hash *b = &st->hashes[st->hash_count];
	b->md = md;
	b->canon = canon;
	b->limit = limit;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (ctx == NULL || EVP_DigestInit_ex(ctx, md, NULL) != 1) {
		EVP_MD_CTX_free(ctx);
		return NULL;
	}
	struct sink s = {ctx, NULL, limit, 0, false};
	canon_body(canon, st->header.body, &s);
	b->total = s.total;
	int ok = !s.failed &&
		 EVP_DigestFinal_ex(ctx, b->digest, &b->digest_len) == 1;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return NULL;
	st->hash_count++;
	return b;
}

static void set_status(struct dkim_result *r, enum dkim_status status,
		       const char *reason)
{
	r->status = status;
	snprintf(r->reason, sizeof(r->reason), "%s", reason);
}

/* Copies a token made only of letters, digits, '.', '-' and '_' (d=, s=,
 * a=), lower-cased when asked; anything else leaves dst empty. */
static void copy_token(char *dst, size_t size, struct slice src, bool lowercase)
{
	dst[0] = '\0';
	if (src.p == NULL || src.n >= size)
		return;
	for (size_t i = 0; i < src.n; i++) {
		uint8_t c = src.p[i];
		if (!ascii_is_alpha(c) && !ascii_is_digit(c) && c != '.' &&
		    c != '-' && c != '_')
			return;
	}
	for (size_t i = 0; i < src.n; i++)
		dst[i] = (char)(lowercase ? ascii_lower(src.p[i]) : src.p[i]);
	dst[src.n] = '\0';
}

static void fill_identity(struct dkim_result *r,
			  const struct dkim_signature *sig)
{
	copy_token(r->domain, sizeof(r->domain), sig->domain, true);
	copy_token(r->selector, sizeof(r->selector), sig->selector, false);
	copy_token(r->algorithm, sizeof(r->algorithm), sig->algorithm, false);
	size_t n = 0;
	for (size_t i = 0; i < sig->b.n && n < 12; i++) {
		uint8_t c = sig->b.p[i];
		if (is_tag_space(c))
			continue;
		if (!ascii_is_alpha(c) && !ascii_is_digit(c) && c != '+' &&
		    c != '/' && c != '=')
			break;
		r->header_b[n++] = (char)c;
	}
	r->header_b[n] = '\0';
}

/* Fetches and parses the key record. On success returns DKIM_PASS and
 * sets *record_r (owned by the caller, which frees it; the key record
 * points into it). */
static enum dkim_status fetch_key(const struct dns_resolver *dns,
				  const struct dkim_signature *sig,
				  struct dkim_key_record *key, char **record_r,
				  const char **reason)
{
	*record_r = NULL;
	char name[DNS_MAX_NAME + 1];
	int n = snprintf(name, sizeof(name), "%.*s._domainkey.%.*s",
			 (int)sig->selector.n, (const char *)sig->selector.p,
			 (int)sig->domain.n, (const char *)sig->domain.p);
	if (n < 0 || (size_t)n >= sizeof(name)) {
		*reason = "key name too long";
		return DKIM_PERMERROR;
	}
	struct dns_answer answer;
	memset(&answer, 0, sizeof(answer));
	if (dns_query(dns, name, DNS_TYPE_TXT, &answer) != 0) {
		dns_answer_clear(&answer);
		*reason = "DNS failure fetching the key";
		return DKIM_TEMPERROR;
	}
	enum dkim_status status = DKIM_PERMERROR;
	switch (answer.status) {
	case DNS_OK:
		*reason = "no key record";
		break;
	case DNS_NODATA:
	case DNS_NXDOMAIN:
		*reason = "no key record";
		goto done;
	case DNS_BOGUS:
		*reason = "DNSSEC validation of the key failed";
		status = DKIM_TEMPERROR;
		goto done;
	case DNS_TEMPFAIL:
	default:
		*reason = "DNS failure fetching the key";
		status = DKIM_TEMPERROR;
		goto done;
	}
	for (size_t i = 0; i < answer.count && i < DNS_MAX_RECORDS; i++) {
		char *text = xmalloc(answer.rdata[i].n + 1);
		size_t len = 0;
		const char *error = "malformed TXT record";
		if (dns_rdata_txt(answer.rdata[i], text, &len) == 0 &&
		    dkim_parse_key_record(slice_make(text, len), key, &error) ==
			    0) {
			*record_r = text;
			status = DKIM_PASS;
			break;
		}
		*reason = error;
		free(text);
	}
done:
	dns_answer_clear(&answer);
	return status;
}

/* Turns p= into a public key of the signature's type. Returns NULL with
 * *status_r and *reason set. */
static EVP_PKEY *decode_public_key(const struct dkim_key_record *key,
				   enum dkim_status *status_r,
				   const char **reason)
{
	*status_r = DKIM_PERMERROR;
	size_t room = BASE64_DECODED_MAX(key->public_key.n);
	uint8_t *der = xmalloc(room + 1);
	long n = decode_base64_spaced(key->public_key, der, room + 1);
	EVP_PKEY *pkey = NULL;
	if (n < 0) {
		*reason = "p= is not base64";
	} else if (key->type == DKIM_KEY_ED25519) {
		if (n == 32)
			pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519,
							   NULL, der, 32);
		if (pkey == NULL)
			*reason = "bad Ed25519 key";
	} else {
		const unsigned char *p = der;
		pkey = d2i_PUBKEY(NULL, &p, n);
		if (pkey == NULL) {
			/* A bare RSAPublicKey, as some old records hold. */
			p = der;
			pkey = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, n);
		}
		if (pkey != NULL &&
		    EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
			EVP_PKEY_free(pkey);
			pkey = NULL;
		}
		if (pkey == NULL) {
			*reason = "bad RSA key";
		} else if (EVP_PKEY_get_bits(pkey) < DKIM_MIN_RSA_BITS) {
			*status_r = DKIM_FAIL;
			*reason = "RSA key shorter than 1024 bits";
			EVP_PKEY_free(pkey);
			pkey = NULL;
		} else if (EVP_PKEY_get_bits(pkey) > DKIM_MAX_RSA_BITS) {
			*reason = "RSA key too long";
			EVP_PKEY_free(pkey);
			pkey = NULL;
		}
	}
	free(der);
	ERR_clear_error();
	return pkey;
}

static bool check_signature(EVP_PKEY *pkey, enum dkim_algorithm alg,
			    const uint8_t *digest, size_t digest_len,
			    const uint8_t *signature, size_t signature_len)
{
	int r = 0;
	if (alg == DKIM_ALG_ED25519_SHA256) {
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();
		if (ctx != NULL &&
		    EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) == 1)
			r = EVP_DigestVerify(ctx, signature, signature_len,
					     digest, digest_len);
		EVP_MD_CTX_free(ctx);
	} else {
		EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pkey, NULL);
		if (ctx != NULL && EVP_PKEY_verify_init(ctx) == 1 &&
		    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
		    EVP_PKEY_CTX_set_signature_md(ctx, algorithm_md(alg)) == 1)
			r = EVP_PKEY_verify(ctx, signature, signature_len,
					    digest, digest_len);
		EVP_PKEY_CTX_free(ctx);
	}
	ERR_clear_error();
	return r == 1;
}

/* Hashes the header data of the signature in field index: the signed
 * fields, then the signature field itself with b= emptied and no CRLF. */
static bool header_digest(const struct header *h, size_t index,
			  struct slice value, const struct dkim_signature *sig,
			  uint8_t *digest, unsigned *digest_len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (ctx == NULL ||
	    EVP_DigestInit_ex(ctx, algorithm_md(sig->alg), NULL) != 1) {
		EVP_MD_CTX_free(ctx);
		return false;
	}
	struct sink s = {ctx, NULL, UINT64_MAX, 0, false};
	bool *used = xcalloc(h->count, sizeof(*used));
	used[index] = true;
	hash_signed_fields(h, used, sig->headers, sig->header_count,
			   sig->header_canon, &s);
	free(used);
	const struct field *f = &h->fields[index];
	size_t before = (size_t)(value.p - f->text.p) + sig->b_start;
	size_t after = (size_t)(value.p - f->text.p) + sig->b_end;
	struct buf copy;
	buf_init(&copy, f->text.n + 1);
	buf_append(&copy, f->text.p, before);
	buf_append(&copy, f->text.p + after, f->text.n - after);
	canon_header(sig->header_canon, buf_slice(&copy), &s);
	buf_free(&copy);
	bool ok = !s.failed && EVP_DigestFinal_ex(ctx, digest, digest_len) == 1;
	EVP_MD_CTX_free(ctx);
	return ok;
}

static void verify_one(struct verify_state *st, size_t index,
		       struct dkim_result *r)
{
	const struct header *h = &st->header;
	const struct field *f = &h->fields[index];
	const uint8_t *colon = memchr(f->text.p, ':', f->text.n);
	DIJK_ASSERT(colon != NULL);
	struct slice value = slice_make(
		colon + 1, f->text.n - (size_t)(colon + 1 - f->text.p));
	struct dkim_signature *sig = xmalloc(sizeof(*sig));
	const char *reason = NULL;
	int parsed = dkim_parse_signature(value, sig, &reason);
	fill_identity(r, sig);
	char *record = NULL;
	EVP_PKEY *pkey = NULL;
	uint8_t *signature = NULL;
	if (parsed != 0) {
		set_status(r, DKIM_PERMERROR, reason);
		goto done;
	}
	if (h->too_many) {
		set_status(r, DKIM_PERMERROR, "too many header fields");
		goto done;
	}
	if (sig->alg == DKIM_ALG_UNKNOWN) {
		set_status(r, DKIM_NEUTRAL, "unsupported algorithm");
		goto done;
	}
	if (sig->has_expiry && st->now >= 0 &&
	    (uint64_t)st->now > sig->expiry) {
		set_status(r, DKIM_FAIL, "signature expired");
		goto done;
	}
	struct dkim_key_record key;
	enum dkim_status status =
		fetch_key(st->dns, sig, &key, &record, &reason);
	if (status != DKIM_PASS) {
		set_status(r, status, reason);
		goto done;
	}
	if (key.revoked) {
		set_status(r, DKIM_PERMERROR, "key revoked");
		goto done;
	}
	bool ed25519 = sig->alg == DKIM_ALG_ED25519_SHA256;
	if (ed25519 != (key.type == DKIM_KEY_ED25519)) {
		set_status(r, DKIM_PERMERROR, "key type does not match a=");
		goto done;
	}
	if (sig->alg == DKIM_ALG_RSA_SHA1 ? !key.sha1_allowed
					  : !key.sha256_allowed) {
		set_status(r, DKIM_PERMERROR, "hash not allowed by the key");
		goto done;
	}
	if (key.strict && sig->identity.p != NULL &&
	    !identity_in_domain(sig->identity, sig->domain, true)) {
		set_status(r, DKIM_PERMERROR, "i= is not d= (key has t=s)");
		goto done;
	}
	pkey = decode_public_key(&key, &status, &reason);
	if (pkey == NULL) {
		set_status(r, status, reason);
		goto done;
	}

	const EVP_MD *md = algorithm_md(sig->alg);
	const struct body_hash *bh =
		body_hash_get(st, md, sig->body_canon,
			      sig->has_length ? sig->length : UINT64_MAX);
	if (bh == NULL) {
		set_status(r, DKIM_TEMPERROR, "hash failure");
		goto done;
	}
	uint8_t claimed[EVP_MAX_MD_SIZE + 8];
	long claimed_n =
		decode_base64_spaced(sig->body_hash, claimed, sizeof(claimed));
	if (claimed_n < 0) {
		set_status(r, DKIM_PERMERROR, "bh= is not base64");
		goto done;
	}
	if (sig->has_length && sig->length > bh->total) {
		set_status(r, DKIM_FAIL, "l= is longer than the body");
		goto done;
	}
	if ((size_t)claimed_n != bh->digest_len ||
	    CRYPTO_memcmp(claimed, bh->digest, bh->digest_len) != 0) {
		set_status(r, DKIM_FAIL, "body hash mismatch");
		goto done;
	}

	size_t room = BASE64_DECODED_MAX(sig->b.n) + 1;
	signature = xmalloc(room);
	long signature_n = decode_base64_spaced(sig->b, signature, room);
	if (signature_n < 0) {
		set_status(r, DKIM_PERMERROR, "b= is not base64");
		goto done;
	}
	uint8_t digest[EVP_MAX_MD_SIZE];
	unsigned digest_len = 0;
	if (!header_digest(h, index, value, sig, digest, &digest_len)) {
		set_status(r, DKIM_TEMPERROR, "hash failure");
		goto done;
	}
	if (!check_signature(pkey, sig->alg, digest, digest_len, signature,
			     (size_t)signature_n)) {
		set_status(r, DKIM_FAIL, "signature did not verify");
		goto done;
	}
	if (sig->alg == DKIM_ALG_RSA_SHA1)
		set_status(r, DKIM_POLICY, "rsa-sha1 is not accepted");
	else if (sig->has_length && sig->length < bh->total)
		set_status(r, DKIM_POLICY,
			   "l= leaves part of the body unsigned");
	else
		set_status(r, DKIM_PASS, "");
done:
	free(signature);
	EVP_PKEY_free(pkey);
	free(record);
	free(sig);
}

size_t dkim_verify(const struct dns_resolver *dns, struct slice message,
		   time_t now, struct dkim_result *results, size_t max)
{
	if (max > DKIM_MAX_SIGNATURES)
		max = DKIM_MAX_SIGNATURES;
	struct verify_state *st = xcalloc(1, sizeof(*st));
	st->dns = dns;
	st->now = now;
	split_message(message, &st->header);
	size_t n = 0;
	for (size_t i = 0; i < st->header.count && n < max; i++) {
		if (!slice_eq_ci(st->header.fields[i].name, "DKIM-Signature"))
			continue;
		struct dkim_result *r = &results[n++];
		memset(r, 0, sizeof(*r));
		verify_one(st, i, r);
	}
	header_free(&st->header);
	free(st);
	return n;
}

const char *dkim_status_name(enum dkim_status status)
{
	switch (status) {
	case DKIM_NONE:
		return "none";
	case DKIM_PASS:
		return "pass";
	case DKIM_FAIL:
		return "fail";
	case DKIM_NEUTRAL:
		return "neutral";
	case DKIM_POLICY:
		return "policy";
	case DKIM_TEMPERROR:
		return "temperror";
	case DKIM_PERMERROR:
		return "permerror";
	}
	return "permerror";
}

/* ---- Signing ---- */

struct signing_key {
	char selector[DKIM_MAX_SELECTOR + 1];
	enum dkim_key_type type;
	EVP_PKEY *pkey;
};

struct signing_domain {
	char name[DNS_MAX_NAME + 1];
	struct signing_key keys[DKIM_MAX_ACTIVE];
	size_t key_count;
};

struct dkim_signer {
	struct signing_domain *domains;
	size_t count;
};

struct dkim_signer *dkim_signer_new(void)
{
	return xcalloc(1, sizeof(struct dkim_signer));
}

void dkim_signer_free(struct dkim_signer **s)
{
	if (*s == NULL)
		return;
	for (size_t i = 0; i < (*s)->count; i++) {
		struct signing_domain *d = &(*s)->domains[i];
		/* EVP_PKEY_free clears the private key material. */
		for (size_t k = 0; k < d->key_count; k++)
			EVP_PKEY_free(d->keys[k].pkey);
	}
	if ((*s)->domains != NULL)
		sodium_memzero((*s)->domains,
			       (*s)->count * sizeof(*(*s)->domains));
	free((*s)->domains);
	free(*s);
	*s = NULL;
}

static bool is_lower_dns_name(const char *name)
{
	struct slice s = slice_cstr(name);
	if (!is_dns_name(s))
		return false;
	for (size_t i = 0; i < s.n; i++)
		if (s.p[i] >= 'A' && s.p[i] <= 'Z')
			return false;
	return true;
}

static struct signing_domain *signer_domain(const struct dkim_signer *s,
					    const char *domain)
{
	for (size_t i = 0; i < s->count; i++)
		if (slice_eq_ci(slice_cstr(domain), s->domains[i].name))
			return &s->domains[i];
	return NULL;
}

int dkim_signer_add_pem(struct dkim_signer *s, const char *domain,
			const char *selector, struct slice pem,
			const char **error_r)
{
	if (!is_dns_name(slice_cstr(domain))) {
		*error_r = "bad domain name";
		return -1;
	}
	if (!is_dns_name(slice_cstr(selector)) ||
	    strlen(selector) > DKIM_MAX_SELECTOR) {
		*error_r = "bad selector";
		return -1;
	}
	if (pem.n > INT_MAX) {
		*error_r = "key too large";
		return -1;
	}
	BIO *bio = BIO_new_mem_buf(pem.p, (int)pem.n);
	EVP_PKEY *pkey =
		bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	ERR_clear_error();
	if (pkey == NULL) {
		*error_r = "not a PEM private key";
		return -1;
	}
	enum dkim_key_type type;
	int id = EVP_PKEY_get_base_id(pkey);
	if (id == EVP_PKEY_ED25519) {
		type = DKIM_KEY_ED25519;
	} else if (id == EVP_PKEY_RSA &&
		   EVP_PKEY_get_bits(pkey) >= DKIM_MIN_RSA_BITS &&
		   EVP_PKEY_get_bits(pkey) <= DKIM_MAX_RSA_BITS) {
		type = DKIM_KEY_RSA;
	} else {
		EVP_PKEY_free(pkey);
		*error_r = "key is neither Ed25519 nor RSA of a usable size";
		return -1;
	}
	struct signing_domain *d = signer_domain(s, domain);
	if (d == NULL) {
		s->domains = xrealloc(s->domains,
				      (s->count + 1) * sizeof(*s->domains));
		d = &s->domains[s->count++];
		memset(d, 0, sizeof(*d));
		for (size_t i = 0; domain[i] != '\0'; i++)
			d->name[i] = (char)ascii_lower((uint8_t)domain[i]);
	}
	if (d->key_count == DKIM_MAX_ACTIVE) {
		EVP_PKEY_free(pkey);
		*error_r = "too many active keys";
		return -1;
	}
	/* Ed25519 keys sign first. */
	size_t at = d->key_count;
	if (type == DKIM_KEY_ED25519)
		while (at > 0 && d->keys[at - 1].type == DKIM_KEY_RSA)
			at--;
	memmove(&d->keys[at + 1], &d->keys[at],
		(d->key_count - at) * sizeof(d->keys[0]));
	struct signing_key *k = &d->keys[at];
	snprintf(k->selector, sizeof(k->selector), "%s", selector);
	k->type = type;
	k->pkey = pkey;
	d->key_count++;
	return 0;
}

/* Folds a field being built to lines of at most DKIM_LINE_MAX octets. */
struct folder {
	struct buf *out;
	size_t line; /* octets on the current line */
};

static void fold_break(struct folder *f)
{
	buf_append(f->out, "\r\n\t", 3);
	f->line = 1;
}

/* Appends word, after a space when spaced, on a new line when it would
 * not fit on this one. */
static void fold_word(struct folder *f, const char *word, size_t n, bool spaced)
{
	size_t need = n + (spaced ? 1 : 0);
	if (f->line > 1 && f->line + need > DKIM_LINE_MAX) {
		fold_break(f);
	} else if (spaced) {
		buf_append(f->out, " ", 1);
		f->line++;
	}
	buf_append(f->out, word, n);
	f->line += n;
}

/* Appends text that may be cut anywhere (base64). */
static void fold_cut(struct folder *f, const char *text, size_t n)
{
	while (n > 0) {
		if (f->line >= DKIM_LINE_MAX)
			fold_break(f);
		size_t room = DKIM_LINE_MAX - f->line;
		size_t take = n < room ? n : room;
		buf_append(f->out, text, take);
		f->line += take;
		text += take;
		n -= take;
	}
}

static void fold_tag(struct folder *f, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void fold_tag(struct folder *f, const char *fmt, ...)
{
	char word[DNS_MAX_NAME + 64];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(word, sizeof(word), fmt, ap);
	va_end(ap);
	DIJK_ASSERT(n > 0 && (size_t)n < sizeof(word));
	fold_word(f, word, (size_t)n, true);
}

/* Field names signed when present (RFC 6376 5.4.1), then the names also
 * signed once more than present so that none can be added. */
static const char *const signed_names[] = {
	"from",		"to",		"cc",
	"subject",	"date",		"message-id",
	"reply-to",	"in-reply-to",	"references",
	"mime-version", "content-type", "content-transfer-encoding",
};
static const char *const oversigned_names[] = {"from", "to", "subject", "date"};

/* The h= list for a message, lower case, ':'-separated, one name per
 * instance signed. */
static void choose_signed_names(const struct header *h, struct slice *names,
				size_t *count_r)
{
	size_t n = 0;
	for (size_t i = 0; i < ARRAY_SIZE(signed_names); i++) {
		struct slice name = slice_cstr(signed_names[i]);
		size_t present = 0;
		for (size_t j = 0; j < h->count; j++)
			if (slices_eq_ci(h->fields[j].name, name))
				present++;
		for (size_t k = 0; k < ARRAY_SIZE(oversigned_names); k++)
			if (strcmp(signed_names[i], oversigned_names[k]) == 0)
				present++;
		for (; present > 0 && n < DKIM_MAX_SIGNED_FIELDS; present--)
			names[n++] = name;
	}
	/* list-* fields (RFC 2369, RFC 2919, RFC 8058), each instance. */
	for (size_t j = 0; j < h->count && n < DKIM_MAX_SIGNED_FIELDS; j++) {
		struct slice name = h->fields[j].name;
		if (!slice_prefix_ci(name, "list-") ||
		    name.n > DKIM_MAX_LIST_NAME)
			continue;
		bool clean = true;
		for (size_t i = 0; i < name.n; i++)
			if (name.p[i] < 33 || name.p[i] > 126)
				clean = false;
		if (clean)
			names[n++] = name;
	}
	*count_r = n;
}

static int sign_one(const struct signing_key *k, const char *domain,
		    const struct header *h, const struct slice *names,
		    size_t name_count, const char *body_hash, time_t now,
		    struct buf *out, const char **error_r)
{
	struct buf field;
	buf_init(&field, 64 * 1024);
	struct folder f = {&field, 0};
	fold_word(&f, "DKIM-Signature:", 15, false);
	fold_tag(&f, "v=1;");
	fold_tag(&f, "a=%s;",
		 k->type == DKIM_KEY_ED25519 ? "ed25519-sha256" : "rsa-sha256");
	fold_tag(&f, "c=relaxed/relaxed;");
	fold_tag(&f, "d=%s;", domain);
	fold_tag(&f, "s=%s;", k->selector);
	fold_tag(&f, "t=%lld;", (long long)now);
	for (size_t i = 0; i < name_count; i++) {
		char word[DNS_MAX_NAME + 8];
		int n = snprintf(word, sizeof(word), "%s%.*s%c",
				 i == 0 ? "h=" : "", (int)names[i].n,
				 (const char *)names[i].p,
				 i + 1 == name_count ? ';' : ':');
		DIJK_ASSERT(n > 0 && (size_t)n < sizeof(word));
		for (int c = 0; c < n; c++)
			word[c] = (char)ascii_lower((uint8_t)word[c]);
		fold_word(&f, word, (size_t)n, i == 0);
	}
	fold_tag(&f, "bh=%s;", body_hash);
	fold_word(&f, "b=", 2, true);

	/* The header hash covers the field as it is now, ending in "b=". */
	uint8_t digest[EVP_MAX_MD_SIZE];
	unsigned digest_len = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	bool ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
	struct sink s = {md, NULL, UINT64_MAX, 0, false};
	if (ok) {
		bool *used = xcalloc(h->count + 1, sizeof(*used));
		hash_signed_fields(h, used, names, name_count,
				   DKIM_CANON_RELAXED, &s);
		free(used);
		canon_header(DKIM_CANON_RELAXED, buf_slice(&field), &s);
		ok = !s.failed &&
		     EVP_DigestFinal_ex(md, digest, &digest_len) == 1;
	}
	EVP_MD_CTX_free(md);

	uint8_t signature[DKIM_MAX_SIGNATURE_BYTES];
	size_t signature_len = sizeof(signature);
	if (ok && k->type == DKIM_KEY_ED25519) {
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();
		ok = ctx != NULL &&
		     EVP_DigestSignInit(ctx, NULL, NULL, NULL, k->pkey) == 1 &&
		     EVP_DigestSign(ctx, signature, &signature_len, digest,
				    digest_len) == 1;
		EVP_MD_CTX_free(ctx);
	} else if (ok) {
		EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(k->pkey, NULL);
		ok = ctx != NULL && EVP_PKEY_sign_init(ctx) == 1 &&
		     EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) ==
			     1 &&
		     EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
		     EVP_PKEY_sign(ctx, signature, &signature_len, digest,
				   digest_len) == 1;
		EVP_PKEY_CTX_free(ctx);
	}
	ERR_clear_error();
	if (!ok) {
		buf_free(&field);
		*error_r = "signing failed";
		return -1;
	}
	char encoded[BASE64_ENCODED_SIZE(DKIM_MAX_SIGNATURE_BYTES)];
	base64_encode(slice_make(signature, signature_len), encoded);
	fold_cut(&f, encoded, strlen(encoded));
	buf_append(&field, "\r\n", 2);
	if (buf_overflowed(&field)) {
		buf_free(&field);
		*error_r = "signature field too long";
		return -1;
	}
	buf_append_slice(out, buf_slice(&field));
	buf_free(&field);
	return 0;
}

int dkim_sign(const struct dkim_signer *s, const char *domain,
	      struct slice message, time_t now, struct buf *out,
	      const char **error_r)
{
	const struct signing_domain *d = signer_domain(s, domain);
	if (d == NULL || d->key_count == 0)
		return 0;
	if (message.n > 0 && ascii_is_wsp(message.p[0])) {
		*error_r = "message starts with a continuation line";
		return -1;
	}
	struct header h;
	split_message(message, &h);
	if (h.too_many) {
		header_free(&h);
		*error_r = "too many header fields to sign";
		return -1;
	}
	struct slice *names = xcalloc(DKIM_MAX_SIGNED_FIELDS, sizeof(*names));
	size_t name_count = 0;
	choose_signed_names(&h, names, &name_count);

	uint8_t digest[EVP_MAX_MD_SIZE];
	unsigned digest_len = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	bool ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
	if (ok) {
		struct sink sk = {md, NULL, UINT64_MAX, 0, false};
		canon_body(DKIM_CANON_RELAXED, h.body, &sk);
		ok = !sk.failed &&
		     EVP_DigestFinal_ex(md, digest, &digest_len) == 1;
	}
	EVP_MD_CTX_free(md);
	int ret = 1;
	if (!ok) {
		*error_r = "hash failure";
		ret = -1;
	}
	char body_hash[BASE64_ENCODED_SIZE(EVP_MAX_MD_SIZE)];
	if (ok)
		base64_encode(slice_make(digest, digest_len), body_hash);
	for (size_t i = 0; ok && i < d->key_count; i++) {
		if (sign_one(&d->keys[i], d->name, &h, names, name_count,
			     body_hash, now, out, error_r) != 0) {
			ret = -1;
			break;
		}
	}
	free(names);
	header_free(&h);
	return ret;
}

/* ---- The key store ---- */

static const char *key_suffix(enum dkim_key_type type)
{
	return type == DKIM_KEY_ED25519 ? ".ed25519.pem" : ".rsa.pem";
}

static int path_printf(char *path, size_t size, const char **error_r,
		       const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int path_printf(char *path, size_t size, const char **error_r,
		       const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(path, size, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size) {
		*error_r = "path too long";
		return -1;
	}
	return 0;
}

/* Reads a whole file of at most max bytes into data (max + 1 bytes of
 * room). Returns the length or -1. */
static long read_small_file(const char *path, uint8_t *data, size_t max,
			    const char **error_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		*error_r = error_printf("%s: %s", path, strerror(errno));
		return -1;
	}
	size_t n = 0;
	for (;;) {
		ssize_t r = read(fd, data + n, max + 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			*error_r =
				error_printf("%s: %s", path, strerror(errno));
			close(fd);
			return -1;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > max) {
			*error_r = error_printf("%s: file too large", path);
			close(fd);
			return -1;
		}
	}
	close(fd);
	return (long)n;
}

/* Reads DATA/dkim/DOMAIN/active: up to DKIM_MAX_ACTIVE selectors. A
 * missing file means none. Returns the count or -1. */
static int read_active(const char *data_dir, const char *domain,
		       char selectors[DKIM_MAX_ACTIVE][DKIM_MAX_SELECTOR + 1],
		       const char **error_r)
{
	char path[4096];
	if (path_printf(path, sizeof(path), error_r, "%s/dkim/%s/active",
			data_dir, domain) != 0)
		return -1;
	if (access(path, F_OK) != 0 && errno == ENOENT)
		return 0;
	uint8_t text[1024 + 1];
	long n = read_small_file(path, text, sizeof(text) - 1, error_r);
	if (n < 0)
		return -1;
	int count = 0;
	size_t start = 0;
	for (size_t i = 0; i <= (size_t)n; i++) {
		if (i < (size_t)n && text[i] != '\n')
			continue;
		struct slice line = trim(slice_make(text + start, i - start));
		start = i + 1;
		if (line.n == 0)
			continue;
		if (!is_dns_name(line) || line.n > DKIM_MAX_SELECTOR ||
		    count == DKIM_MAX_ACTIVE) {
			*error_r = error_printf("%s: bad selector line", path);
			return -1;
		}
		memcpy(selectors[count], line.p, line.n);
		selectors[count][line.n] = '\0';
		count++;
	}
	return count;
}

int dkim_keys_active_count(const char *data_dir, const char *domain,
			   const char **error_r)
{
	char selectors[DKIM_MAX_ACTIVE][DKIM_MAX_SELECTOR + 1];
	if (!is_lower_dns_name(domain)) {
		*error_r = "bad domain name";
		return -1;
	}
	return read_active(data_dir, domain, selectors, error_r);
}

/* Loads one key file into the signer, wiping the bytes read. */
static int load_key_file(struct dkim_signer *s, const char *path,
			 const char *domain, const char *selector,
			 const char **error_r)
{
	uint8_t *pem = xmalloc(DKIM_MAX_KEY_FILE + 1);
	long n = read_small_file(path, pem, DKIM_MAX_KEY_FILE, error_r);
	int ret = -1;
	if (n >= 0) {
		ret = dkim_signer_add_pem(s, domain, selector,
					  slice_make(pem, (size_t)n), error_r);
		if (ret != 0)
			*error_r = error_printf("%s: %s", path, *error_r);
	}
	sodium_memzero(pem, DKIM_MAX_KEY_FILE + 1);
	free(pem);
	return ret;
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in dir for which keep() holds, sorted; *count_r set. A
 * missing directory gives none. */
static char **list_dir(const char *dir, bool (*keep)(const char *name),
		       size_t *count_r, const char **error_r)
{
	*count_r = 0;
	DIR *d = opendir(dir);
	if (d == NULL) {
		if (errno == ENOENT || errno == ENOTDIR)
			return xcalloc(1, sizeof(char *));
		*error_r = error_printf("%s: %s", dir, strerror(errno));
		return NULL;
	}
	char **names = NULL;
	size_t count = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (!keep(e->d_name))
			continue;
		names = xrealloc(names, (count + 1) * sizeof(*names));
		names[count++] = xstrdup(e->d_name);
	}
	closedir(d);
	if (names == NULL)
		names = xcalloc(1, sizeof(char *));
	qsort(names, count, sizeof(*names), compare_names);
	*count_r = count;
	return names;
}

static void free_names(char **names, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(names[i]);
	free(names);
}

struct dkim_signer *dkim_signer_load(const char *data_dir, const char **error_r)
{
	struct dkim_signer *s = dkim_signer_new();
	char dir[4096];
	if (path_printf(dir, sizeof(dir), error_r, "%s/dkim", data_dir) != 0) {
		dkim_signer_free(&s);
		return NULL;
	}
	size_t count = 0;
	char **domains = list_dir(dir, is_lower_dns_name, &count, error_r);
	if (domains == NULL) {
		dkim_signer_free(&s);
		return NULL;
	}
	for (size_t i = 0; i < count && s != NULL; i++) {
		char selectors[DKIM_MAX_ACTIVE][DKIM_MAX_SELECTOR + 1];
		int n = read_active(data_dir, domains[i], selectors, error_r);
		if (n < 0) {
			dkim_signer_free(&s);
			break;
		}
		for (int k = 0; k < n && s != NULL; k++) {
			char path[4096];
			const char *found = NULL;
			static const enum dkim_key_type types[] = {
				DKIM_KEY_ED25519, DKIM_KEY_RSA};
			for (size_t t = 0; t < ARRAY_SIZE(types); t++) {
				if (path_printf(path, sizeof(path), error_r,
						"%s/%s/%s%s", dir, domains[i],
						selectors[k],
						key_suffix(types[t])) == 0 &&
				    access(path, F_OK) == 0) {
					found = path;
					break;
				}
			}
			if (found == NULL) {
				*error_r = error_printf(
					"%s/%s: no key file for active "
					"selector %s",
					dir, domains[i], selectors[k]);
				dkim_signer_free(&s);
			} else if (load_key_file(s, found, domains[i],
						 selectors[k], error_r) != 0) {
				dkim_signer_free(&s);
			}
		}
	}
	free_names(domains, count);
	return s;
}

bool dkim_selector_prefix_valid(const char *prefix)
{
	size_t n = strlen(prefix);
	if (n == 0 || n >= DKIM_MAX_SELECTOR || prefix[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = prefix[i];
		if (!(c >= 'a' && c <= 'z') && !ascii_is_digit((uint8_t)c) &&
		    c != '-')
			return false;
	}
	return true;
}

static bool selector_exists(const char *data_dir, const char *domain,
			    const char *selector)
{
	char path[4096];
	const char *error;
	static const enum dkim_key_type types[] = {DKIM_KEY_ED25519,
						   DKIM_KEY_RSA};
	for (size_t t = 0; t < ARRAY_SIZE(types); t++) {
		if (path_printf(path, sizeof(path), &error, "%s/dkim/%s/%s%s",
				data_dir, domain, selector,
				key_suffix(types[t])) == 0 &&
		    access(path, F_OK) == 0)
			return true;
	}
	return false;
}

bool dkim_keys_exist(const char *data_dir, const char *domain,
		     const char *prefix)
{
	char selector[DKIM_MAX_SELECTOR + 2];
	snprintf(selector, sizeof(selector), "%se", prefix);
	if (selector_exists(data_dir, domain, selector))
		return true;
	snprintf(selector, sizeof(selector), "%sr", prefix);
	return selector_exists(data_dir, domain, selector);
}

static int make_dir(const char *path, const char **error_r)
{
	if (mkdir(path, 0700) != 0 && errno != EEXIST) {
		*error_r = error_printf("%s: %s", path, strerror(errno));
		return -1;
	}
	struct stat st;
	if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
		*error_r = error_printf("%s: not a directory", path);
		return -1;
	}
	if ((st.st_mode & 077) != 0 && chmod(path, 0700) != 0) {
		*error_r = error_printf("%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int sync_dir(const char *path, const char **error_r)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) != 0) {
		*error_r = error_printf("%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* Writes a private key to a new file at path (0600), durably; refuses
 * when the file exists. The key is written straight from OpenSSL to the
 * file, never through a buffer of ours. */
static int write_key_file(const char *path, EVP_PKEY *pkey,
			  const char **error_r)
{
	char tmp[4096];
	if (path_printf(tmp, sizeof(tmp), error_r, "%s.tmp", path) != 0)
		return -1;
	unlink(tmp);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		      0600);
	if (fd < 0) {
		*error_r = error_printf("%s: %s", tmp, strerror(errno));
		return -1;
	}
	BIO *bio = BIO_new_fd(fd, BIO_NOCLOSE);
	bool ok = bio != NULL &&
		  PEM_write_bio_PKCS8PrivateKey(bio, pkey, NULL, NULL, 0, NULL,
						NULL) == 1 &&
		  BIO_flush(bio) == 1;
	BIO_free(bio);
	ERR_clear_error();
	if (!ok || fsync(fd) != 0) {
		*error_r = error_printf("%s: cannot write the key", tmp);
		close(fd);
		unlink(tmp);
		return -1;
	}
	close(fd);
	/* link() refuses an existing name, which rename() would replace. */
	if (link(tmp, path) != 0) {
		*error_r = error_printf("%s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	unlink(tmp);
	return 0;
}

int dkim_keys_generate(const char *data_dir, const char *domain,
		       const char *prefix, const char **error_r)
{
	if (!is_lower_dns_name(domain)) {
		*error_r = "bad domain name";
		return -1;
	}
	if (!dkim_selector_prefix_valid(prefix)) {
		*error_r = "bad selector (lower-case letters, digits and '-')";
		return -1;
	}
	if (dkim_keys_exist(data_dir, domain, prefix)) {
		*error_r = error_printf("selector %s exists already for %s",
					prefix, domain);
		return -1;
	}
	char dir[4096], path[4096];
	if (path_printf(dir, sizeof(dir), error_r, "%s/dkim", data_dir) != 0 ||
	    make_dir(dir, error_r) != 0 ||
	    path_printf(dir, sizeof(dir), error_r, "%s/dkim/%s", data_dir,
			domain) != 0 ||
	    make_dir(dir, error_r) != 0)
		return -1;
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	EVP_PKEY *rsa =
		EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)DKIM_RSA_BITS);
	ERR_clear_error();
	int ret = -1;
	if (ed == NULL || rsa == NULL) {
		*error_r = "key generation failed";
	} else if (path_printf(path, sizeof(path), error_r, "%s/%se%s", dir,
			       prefix, key_suffix(DKIM_KEY_ED25519)) == 0 &&
		   write_key_file(path, ed, error_r) == 0 &&
		   path_printf(path, sizeof(path), error_r, "%s/%sr%s", dir,
			       prefix, key_suffix(DKIM_KEY_RSA)) == 0 &&
		   write_key_file(path, rsa, error_r) == 0 &&
		   sync_dir(dir, error_r) == 0) {
		ret = 0;
	}
	EVP_PKEY_free(ed);
	EVP_PKEY_free(rsa);
	return ret;
}

int dkim_keys_activate(const char *data_dir, const char *domain,
		       const char *prefix, const char **error_r)
{
	if (!is_lower_dns_name(domain) || !dkim_selector_prefix_valid(prefix)) {
		*error_r = "bad domain or selector";
		return -1;
	}
	char e[DKIM_MAX_SELECTOR + 2], r[DKIM_MAX_SELECTOR + 2];
	snprintf(e, sizeof(e), "%se", prefix);
	snprintf(r, sizeof(r), "%sr", prefix);
	if (!selector_exists(data_dir, domain, e) ||
	    !selector_exists(data_dir, domain, r)) {
		*error_r =
			error_printf("no keys %s and %s for %s", e, r, domain);
		return -1;
	}
	char dir[4096], path[4096], tmp[4096];
	if (path_printf(dir, sizeof(dir), error_r, "%s/dkim/%s", data_dir,
			domain) != 0 ||
	    path_printf(path, sizeof(path), error_r, "%s/active", dir) != 0 ||
	    path_printf(tmp, sizeof(tmp), error_r, "%s/active.tmp", dir) != 0)
		return -1;
	unlink(tmp);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		      0600);
	if (fd < 0) {
		*error_r = error_printf("%s: %s", tmp, strerror(errno));
		return -1;
	}
	char text[2 * DKIM_MAX_SELECTOR + 8];
	int n = snprintf(text, sizeof(text), "%s\n%s\n", e, r);
	bool ok = n > 0 && write(fd, text, (size_t)n) == n && fsync(fd) == 0;
	if (close(fd) != 0)
		ok = false;
	if (!ok || rename(tmp, path) != 0) {
		*error_r = error_printf("%s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return sync_dir(dir, error_r);
}

/* The TXT record for a private key: the public half, base64. */
static char *public_record(EVP_PKEY *pkey, enum dkim_key_type type)
{
	uint8_t *der = NULL;
	size_t n = 0;
	if (type == DKIM_KEY_ED25519) {
		der = xmalloc(32);
		n = 32;
		if (EVP_PKEY_get_raw_public_key(pkey, der, &n) != 1 ||
		    n != 32) {
			free(der);
			return NULL;
		}
	} else {
		int len = i2d_PUBKEY(pkey, NULL);
		if (len <= 0)
			return NULL;
		der = xmalloc((size_t)len);
		uint8_t *p = der;
		if (i2d_PUBKEY(pkey, &p) != len) {
			free(der);
			return NULL;
		}
		n = (size_t)len;
	}
	char *encoded = xmalloc(BASE64_ENCODED_SIZE(n));
	base64_encode(slice_make(der, n), encoded);
	free(der);
	char *record = xasprintf("v=DKIM1; k=%s; p=%s",
				 type == DKIM_KEY_ED25519 ? "ed25519" : "rsa",
				 encoded);
	free(encoded);
	return record;
}

static bool is_key_file(const char *name)
{
	size_t n = strlen(name);
	static const enum dkim_key_type types[] = {DKIM_KEY_ED25519,
						   DKIM_KEY_RSA};
	for (size_t t = 0; t < ARRAY_SIZE(types); t++) {
		const char *suffix = key_suffix(types[t]);
		size_t k = strlen(suffix);
		if (n > k && strcmp(name + n - k, suffix) == 0)
			return is_dns_name(slice_make(name, n - k));
	}
	return false;
}

static int list_domain(const char *data_dir, const char *domain,
		       dkim_key_fn *fn, void *context, const char **error_r)
{
	char selectors[DKIM_MAX_ACTIVE][DKIM_MAX_SELECTOR + 1];
	int active = read_active(data_dir, domain, selectors, error_r);
	if (active < 0)
		return -1;
	char dir[4096];
	if (path_printf(dir, sizeof(dir), error_r, "%s/dkim/%s", data_dir,
			domain) != 0)
		return -1;
	size_t count = 0;
	char **files = list_dir(dir, is_key_file, &count, error_r);
	if (files == NULL)
		return -1;
	int ret = 0;
	for (size_t i = 0; i < count && ret == 0; i++) {
		char path[4096];
		if (path_printf(path, sizeof(path), error_r, "%s/%s", dir,
				files[i]) != 0) {
			ret = -1;
			break;
		}
		size_t n = strlen(files[i]);
		enum dkim_key_type type = DKIM_KEY_ED25519;
		if (n > strlen(key_suffix(DKIM_KEY_RSA)) &&
		    strcmp(files[i] + n - strlen(key_suffix(DKIM_KEY_RSA)),
			   key_suffix(DKIM_KEY_RSA)) == 0)
			type = DKIM_KEY_RSA;
		files[i][n - strlen(key_suffix(type))] = '\0';
		struct dkim_signer *one = dkim_signer_new();
		if (load_key_file(one, path, domain, files[i], error_r) != 0) {
			dkim_signer_free(&one);
			ret = -1;
			break;
		}
		const struct signing_key *k = &one->domains[0].keys[0];
		char *record = public_record(k->pkey, k->type);
		if (record == NULL) {
			*error_r = error_printf("%s: no public key", path);
			ret = -1;
		} else {
			struct dkim_key_info info = {
				.domain = domain,
				.selector = files[i],
				.type = k->type,
				.active = false,
				.record = record,
			};
			for (int a = 0; a < active; a++)
				if (strcmp(selectors[a], files[i]) == 0)
					info.active = true;
			fn(&info, context);
			free(record);
		}
		dkim_signer_free(&one);
	}
	free_names(files, count);
	return ret;
}

int dkim_keys_list(const char *data_dir, const char *domain, dkim_key_fn *fn,
		   void *context, const char **error_r)
{
	if (domain != NULL) {
		if (!is_lower_dns_name(domain)) {
			*error_r = "bad domain name";
			return -1;
		}
		return list_domain(data_dir, domain, fn, context, error_r);
	}
	char dir[4096];
	if (path_printf(dir, sizeof(dir), error_r, "%s/dkim", data_dir) != 0)
		return -1;
	size_t count = 0;
	char **domains = list_dir(dir, is_lower_dns_name, &count, error_r);
	if (domains == NULL)
		return -1;
	int ret = 0;
	for (size_t i = 0; i < count && ret == 0; i++)
		ret = list_domain(data_dir, domains[i], fn, context, error_r);
	free_names(domains, count);
	return ret;
}
