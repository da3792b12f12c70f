/* dmarc.c: DMARC (RFC 7489): the record parser, the RFC5322.From domain,
 * Organizational Domains through libpsl, policy discovery and alignment.
 * See dmarc.h for the choices made where the RFC leaves room. */
#include "core/common.h"

#include "core/ascii.h"

#include "smtp/dmarc.h"

#include "core/buf.h"

#include <libpsl.h>
#include <strings.h>

#include "core/poison.h"

/* Longest name dijk queries (RFC 1035, presentation form). */
#define DMARC_MAX_QUERY_NAME 253

const char *dmarc_policy_name(enum dmarc_policy policy)
{
	switch (policy) {
	case DMARC_POLICY_NONE:
		return "none";
	case DMARC_POLICY_QUARANTINE:
		return "quarantine";
	case DMARC_POLICY_REJECT:
		return "reject";
	}
	return "none";
}

const char *dmarc_status_name(enum dmarc_status status)
{
	switch (status) {
	case DMARC_NONE:
		return "none";
	case DMARC_PASS:
		return "pass";
	case DMARC_FAIL:
		return "fail";
	case DMARC_TEMPERROR:
		return "temperror";
	case DMARC_PERMERROR:
		return "permerror";
	}
	return "permerror";
}

/* Bytes from..to of s; an empty s may have a NULL p. */
static struct slice sub(struct slice s, size_t from, size_t to)
{
	return slice_make(s.p != NULL ? s.p + from : NULL, to - from);
}

static struct slice trim(struct slice s)
{
	while (s.n > 0 && ascii_is_wsp(s.p[0]))
		s = sub(s, 1, s.n);
	while (s.n > 0 && ascii_is_wsp(s.p[s.n - 1]))
		s.n--;
	return s;
}

/* ---- the record ---- */

bool dmarc_is_record(struct slice text)
{
	size_t i = 0;
	if (i >= text.n || ascii_lower(text.p[i]) != 'v')
		return false;
	i++;
	while (i < text.n && ascii_is_wsp(text.p[i]))
		i++;
	if (i >= text.n || text.p[i] != '=')
		return false;
	i++;
	while (i < text.n && ascii_is_wsp(text.p[i]))
		i++;
	/* RFC 7489 6.4 spells the version in exact octets. */
	if (text.n - i < 6 || memcmp(text.p + i, "DMARC1", 6) != 0)
		return false;
	i += 6;
	while (i < text.n && ascii_is_wsp(text.p[i]))
		i++;
	return i == text.n || text.p[i] == ';';
}

static bool parse_policy(struct slice value, enum dmarc_policy *policy_r)
{
	if (slice_eq_ci(value, "none"))
		*policy_r = DMARC_POLICY_NONE;
	else if (slice_eq_ci(value, "quarantine"))
		*policy_r = DMARC_POLICY_QUARANTINE;
	else if (slice_eq_ci(value, "reject"))
		*policy_r = DMARC_POLICY_REJECT;
	else
		return false;
	return true;
}

/* A decimal number of at most max_digits digits, no greater than max. */
static bool parse_number(struct slice value, size_t max_digits, uint64_t max,
			 uint64_t *number_r)
{
	if (value.n == 0 || value.n > max_digits)
		return false;
	uint64_t v = 0;
	for (size_t i = 0; i < value.n; i++) {
		if (!ascii_is_digit(value.p[i]))
			return false;
		v = v * 10 + (uint64_t)(value.p[i] - '0');
		if (v > max)
			return false;
	}
	*number_r = v;
	return true;
}

/* RFC 3986 scheme ":" and something, without spaces, optionally followed
 * by "!" size (RFC 7489 6.4 dmarc-uri). */
static bool valid_uri(struct slice u)
{
	if (u.n == 0 || !ascii_is_alpha(u.p[0]))
		return false;
	size_t i = 1;
	while (i < u.n && (ascii_is_alpha(u.p[i]) || ascii_is_digit(u.p[i]) ||
			   u.p[i] == '+' || u.p[i] == '-' || u.p[i] == '.'))
		i++;
	if (i >= u.n || u.p[i] != ':' || i + 1 >= u.n)
		return false;
	size_t bang = u.n;
	for (size_t j = i + 1; j < u.n; j++) {
		if (u.p[j] <= 0x20 || u.p[j] >= 0x7f)
			return false;
		if (u.p[j] == '!' && bang == u.n)
			bang = j;
	}
	if (bang == u.n)
		return true;
	if (bang == i + 1)
		return false;
	/* "!" 1*DIGIT [ "k" / "m" / "g" / "t" ] */
	size_t j = bang + 1;
	size_t digits = j;
	while (j < u.n && ascii_is_digit(u.p[j]))
		j++;
	if (j == digits)
		return false;
	if (j < u.n && strchr("kmgtKMGT", u.p[j]) != NULL)
		j++;
	return j == u.n;
}

/* Whether a comma-separated URI list holds at least one usable URI. */
static bool uri_list_usable(struct slice list)
{
	size_t start = 0;
	for (size_t i = 0; i <= list.n; i++) {
		if (i < list.n && list.p[i] != ',')
			continue;
		if (valid_uri(trim(sub(list, start, i))))
			return true;
		start = i + 1;
	}
	return false;
}

/* fo: "0" / "1" / "d" / "s" separated by ":" (RFC 7489 6.3). */
static bool valid_fo(struct slice v)
{
	size_t start = 0;
	for (size_t i = 0; i <= v.n; i++) {
		if (i < v.n && v.p[i] != ':')
			continue;
		struct slice opt = trim(sub(v, start, i));
		if (opt.n != 1 || strchr("01dsDS", opt.p[0]) == NULL)
			return false;
		start = i + 1;
	}
	return true;
}

/* rf: report formats, keywords separated by ":". */
static bool valid_rf(struct slice v)
{
	size_t start = 0;
	for (size_t i = 0; i <= v.n; i++) {
		if (i < v.n && v.p[i] != ':')
			continue;
		struct slice k = trim(sub(v, start, i));
		if (k.n == 0 || !ascii_is_alpha(k.p[0]))
			return false;
		for (size_t j = 0; j < k.n; j++)
			if (!(ascii_is_alpha(k.p[j]) ||
			      ascii_is_digit(k.p[j]) || k.p[j] == '-'))
				return false;
		start = i + 1;
	}
	return true;
}

/* One tag-spec (RFC 6376 3.2, which RFC 7489 6.3 uses): [WSP] name [WSP]
 * "=" [WSP] value [WSP]. Returns false when it is not one. */
static bool split_tag(struct slice spec, struct slice *name_r,
		      struct slice *value_r)
{
	const uint8_t *eq = memchr(spec.p, '=', spec.n);
	if (eq == NULL)
		return false;
	size_t at = (size_t)(eq - spec.p);
	struct slice name = trim(sub(spec, 0, at));
	struct slice value = trim(sub(spec, at + 1, spec.n));
	if (name.n == 0 || !ascii_is_alpha(name.p[0]))
		return false;
	for (size_t i = 0; i < name.n; i++)
		if (!(ascii_is_alpha(name.p[i]) || ascii_is_digit(name.p[i]) ||
		      name.p[i] == '_'))
			return false;
	/* tag-value: VALCHARs (visible ASCII but ';') and inner spaces. */
	for (size_t i = 0; i < value.n; i++)
		if (!ascii_is_wsp(value.p[i]) &&
		    (value.p[i] < 0x21 || value.p[i] > 0x7e))
			return false;
	*name_r = name;
	*value_r = value;
	return true;
}

/* Tags already seen, so that the first of two equal ones counts. */
enum {
	SEEN_P = 1 << 0,
	SEEN_SP = 1 << 1,
	SEEN_ADKIM = 1 << 2,
	SEEN_ASPF = 1 << 3,
	SEEN_PCT = 1 << 4,
	SEEN_RUA = 1 << 5,
	SEEN_RUF = 1 << 6,
	SEEN_FO = 1 << 7,
	SEEN_RF = 1 << 8,
	SEEN_RI = 1 << 9,
};

static bool first_time(unsigned *seen, unsigned bit)
{
	if (*seen & bit)
		return false;
	*seen |= bit;
	return true;
}

int dmarc_parse_record(struct slice text, struct dmarc_record *record_r,
		       const char **error_r)
{
	memset(record_r, 0, sizeof(*record_r));
	record_r->pct = 100;
	record_r->ri = 86400;
	if (!dmarc_is_record(text)) {
		*error_r = "not a DMARC1 record";
		return -1;
	}
	bool p_valid = false, sp_bad = false;
	unsigned seen = 0;
	size_t start = 0;
	bool first = true;
	for (size_t i = 0; i <= text.n; i++) {
		if (i < text.n && text.p[i] != ';')
			continue;
		struct slice spec = sub(text, start, i);
		start = i + 1;
		if (first) {
			first = false; /* the version, checked above */
			continue;
		}
		/* An empty spec (";;" or a final ";") is tolerated. */
		if (trim(spec).n == 0)
			continue;
		struct slice name, value;
		if (!split_tag(spec, &name, &value)) {
			*error_r = "malformed tag list";
			return -1;
		}
		uint64_t number;
		if (slice_eq_ci(name, "p")) {
			if (first_time(&seen, SEEN_P))
				p_valid = parse_policy(value, &record_r->p);
		} else if (slice_eq_ci(name, "sp")) {
			if (first_time(&seen, SEEN_SP)) {
				record_r->has_sp =
					parse_policy(value, &record_r->sp);
				sp_bad = !record_r->has_sp;
			}
		} else if (slice_eq_ci(name, "adkim")) {
			if (first_time(&seen, SEEN_ADKIM))
				record_r->adkim_strict =
					slice_eq_ci(value, "s");
		} else if (slice_eq_ci(name, "aspf")) {
			if (first_time(&seen, SEEN_ASPF))
				record_r->aspf_strict = slice_eq_ci(value, "s");
		} else if (slice_eq_ci(name, "pct")) {
			if (first_time(&seen, SEEN_PCT) &&
			    parse_number(value, 3, 100, &number))
				record_r->pct = (unsigned)number;
		} else if (slice_eq_ci(name, "rua")) {
			if (first_time(&seen, SEEN_RUA))
				record_r->rua = value;
		} else if (slice_eq_ci(name, "ruf")) {
			if (first_time(&seen, SEEN_RUF))
				record_r->ruf = value;
		} else if (slice_eq_ci(name, "fo")) {
			if (first_time(&seen, SEEN_FO) && valid_fo(value))
				record_r->fo = value;
		} else if (slice_eq_ci(name, "rf")) {
			if (first_time(&seen, SEEN_RF) && valid_rf(value))
				record_r->rf = value;
		} else if (slice_eq_ci(name, "ri")) {
			if (first_time(&seen, SEEN_RI) &&
			    parse_number(value, 10, UINT32_MAX, &number))
				record_r->ri = (uint32_t)number;
		} else if (slice_eq_ci(name, "v")) {
			*error_r = "a second version tag";
			return -1;
		}
		/* Other tags are for later versions: ignored. */
	}
	if (!p_valid || sp_bad) {
		/* RFC 7489 6.6.3 step 6. */
		if (!uri_list_usable(record_r->rua)) {
			*error_r = p_valid ? "bad sp tag" : "no valid p tag";
			return -1;
		}
		record_r->p = DMARC_POLICY_NONE;
		record_r->has_sp = false;
		record_r->p_defaulted = true;
	}
	if (!record_r->has_sp)
		record_r->sp = record_r->p;
	return 0;
}

/* ---- the From domain ---- */

/* A DNS name dijk can query: LDH (and '_') labels of 1..63 octets, at
 * most DMARC_MAX_QUERY_NAME in all. */
static bool valid_domain(struct slice s)
{
	if (s.n == 0 || s.n > DMARC_MAX_QUERY_NAME)
		return false;
	size_t label = 0;
	for (size_t i = 0; i < s.n; i++) {
		uint8_t c = s.p[i];
		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if (ascii_is_alpha(c) || ascii_is_digit(c) || c == '-' ||
			   c == '_') {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
	}
	return label > 0;
}

/* Placeholders for what the simplified From value hides. Raw control
 * characters are refused before, so these cannot come from the input. */
#define HIDDEN_QUOTED  '\x01' /* a quoted-string */
#define HIDDEN_LITERAL '\x02' /* a domain literal */

/* RFC 5322 atext, with '.' and the bytes of UTF-8 (RFC 6532). */
static bool is_word_char(uint8_t c)
{
	return ascii_is_alpha(c) || ascii_is_digit(c) || c >= 0x80 ||
	       (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~.", c) != NULL);
}

/* Copies the From value into out with comments as spaces, folding and
 * tabs as spaces, quoted strings and domain literals as single
 * placeholders. Returns false on unterminated or control characters. */
static bool simplify_from(struct slice v, struct buf *out)
{
	size_t i = 0;
	while (i < v.n) {
		uint8_t c = v.p[i];
		if (c == '"' || c == '[') {
			uint8_t close = c == '"' ? '"' : ']';
			i++;
			while (i < v.n && v.p[i] != close) {
				if (v.p[i] == '\\')
					i++;
				else if (c == '[' && v.p[i] == '[')
					return false;
				i++;
			}
			if (i >= v.n)
				return false;
			i++;
			uint8_t hidden =
				c == '"' ? HIDDEN_QUOTED : HIDDEN_LITERAL;
			buf_append(out, &hidden, 1);
			continue;
		}
		if (c == '(') {
			size_t depth = 0;
			while (i < v.n) {
				if (v.p[i] == '\\')
					i++;
				else if (v.p[i] == '(')
					depth++;
				else if (v.p[i] == ')' && --depth == 0)
					break;
				i++;
			}
			if (i >= v.n)
				return false;
			i++;
			buf_append(out, " ", 1);
			continue;
		}
		if (c == '\r' || c == '\n' || c == '\t')
			c = ' ';
		else if (c < 0x20 || c == 0x7f)
			return false;
		buf_append(out, &c, 1);
		i++;
	}
	return !buf_overflowed(out);
}

/* The domain of the single address in a simplified From value. */
static bool from_value_domain(struct slice s, char *domain_r)
{
	if (s.n == 0)
		return false;
	/* Lists, groups and routes are refused. */
	if (memchr(s.p, ',', s.n) != NULL || memchr(s.p, ':', s.n) != NULL ||
	    memchr(s.p, ';', s.n) != NULL)
		return false;
	const uint8_t *open = memchr(s.p, '<', s.n);
	struct slice addr = s;
	if (open != NULL) {
		size_t at = (size_t)(open - s.p);
		const uint8_t *close = memchr(open, '>', s.n - at);
		if (close == NULL)
			return false;
		size_t end = (size_t)(close - s.p);
		/* A display name before, nothing but spaces after. */
		for (size_t i = 0; i < at; i++)
			if (s.p[i] != ' ' && s.p[i] != HIDDEN_QUOTED &&
			    !is_word_char(s.p[i]))
				return false;
		for (size_t i = end + 1; i < s.n; i++)
			if (s.p[i] != ' ')
				return false;
		addr = sub(s, at + 1, end);
	} else if (memchr(s.p, '>', s.n) != NULL) {
		return false;
	}
	addr = trim(addr);
	const uint8_t *at_sign = memchr(addr.p, '@', addr.n);
	if (at_sign == NULL)
		return false;
	size_t at = (size_t)(at_sign - addr.p);
	struct slice local = trim(sub(addr, 0, at));
	struct slice domain = trim(sub(addr, at + 1, addr.n));
	if (local.n == 0)
		return false;
	for (size_t i = 0; i < local.n; i++)
		if (local.p[i] != HIDDEN_QUOTED && local.p[i] != ' ' &&
		    !is_word_char(local.p[i]))
			return false;
	if (domain.n > 0 && domain.p[domain.n - 1] == '.')
		domain.n--;
	if (!valid_domain(domain))
		return false;
	for (size_t i = 0; i < domain.n; i++)
		domain_r[i] = (char)ascii_lower(domain.p[i]);
	domain_r[domain.n] = '\0';
	return true;
}

enum dmarc_from_status dmarc_from_domain(struct slice header, char *domain_r)
{
	domain_r[0] = '\0';
	size_t froms = 0;
	struct slice value = {NULL, 0};
	size_t pos = 0;
	while (pos < header.n) {
		/* An empty line ends the header section. */
		if (header.p[pos] == '\n' ||
		    (header.p[pos] == '\r' && pos + 1 < header.n &&
		     header.p[pos + 1] == '\n'))
			break;
		size_t start = pos;
		const uint8_t *lf =
			memchr(header.p + pos, '\n', header.n - pos);
		size_t first_end =
			lf != NULL ? (size_t)(lf - header.p) + 1 : header.n;
		size_t end = first_end;
		while (end < header.n && ascii_is_wsp(header.p[end])) {
			lf = memchr(header.p + end, '\n', header.n - end);
			end = lf != NULL ? (size_t)(lf - header.p) + 1
					 : header.n;
		}
		pos = end;
		/* A continuation line without a field is skipped. */
		if (ascii_is_wsp(header.p[start]))
			continue;
		const uint8_t *colon =
			memchr(header.p + start, ':', first_end - start);
		if (colon == NULL)
			continue;
		struct slice name =
			trim(sub(header, start, (size_t)(colon - header.p)));
		if (!slice_eq_ci(name, "From"))
			continue;
		froms++;
		value = sub(header, (size_t)(colon - header.p) + 1, end);
	}
	if (froms == 0)
		return DMARC_FROM_MISSING;
	if (froms > 1 || value.n > DMARC_MAX_FROM)
		return DMARC_FROM_INVALID;
	struct buf simple;
	buf_init(&simple, DMARC_MAX_FROM);
	bool ok = simplify_from(value, &simple) &&
		  from_value_domain(trim(buf_slice(&simple)), domain_r);
	buf_free(&simple);
	if (!ok) {
		domain_r[0] = '\0';
		return DMARC_FROM_INVALID;
	}
	return DMARC_FROM_OK;
}

/* ---- the public suffix list ---- */

struct dmarc_psl {
	const psl_ctx_t *ctx;
	psl_ctx_t *owned; /* freed with the struct; NULL for the built-in */
};

struct dmarc_psl *dmarc_psl_load(const char **error_r)
{
	struct dmarc_psl *psl = xcalloc(1, sizeof(*psl));
	psl->owned = psl_latest(NULL);
	psl->ctx = psl->owned != NULL ? psl->owned : psl_builtin();
	if (psl->ctx == NULL) {
		free(psl);
		*error_r = "no public suffix list (install publicsuffix)";
		return NULL;
	}
	return psl;
}

void dmarc_psl_free(struct dmarc_psl **psl)
{
	if (*psl == NULL)
		return;
	if ((*psl)->owned != NULL)
		psl_free((*psl)->owned);
	free(*psl);
	*psl = NULL;
}

void dmarc_org_domain(const struct dmarc_psl *psl, const char *domain,
		      char *org_r)
{
	size_t n = strlen(domain);
	if (n > DNS_MAX_NAME)
		n = DNS_MAX_NAME;
	char name[DNS_MAX_NAME + 1];
	for (size_t i = 0; i < n; i++)
		name[i] = (char)ascii_lower((uint8_t)domain[i]);
	name[n] = '\0';
	if (n > 0 && name[n - 1] == '.')
		name[--n] = '\0';
	const char *org = psl_registrable_domain(psl->ctx, name);
	if (org == NULL)
		org = name;
	size_t length = strlen(org);
	memcpy(org_r, org, length + 1);
}

/* ---- the check ---- */

static void set_reason(struct dmarc_result *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void set_reason(struct dmarc_result *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
	va_end(ap);
	for (char *c = r->reason; *c != '\0'; c++)
		if ((uint8_t)*c < 0x20 || (uint8_t)*c > 0x7e)
			*c = '?';
}

enum lookup { LOOKUP_FOUND, LOOKUP_NONE, LOOKUP_MULTIPLE, LOOKUP_FAILED };

/* Fetches the DMARC record at _dmarc.domain. On LOOKUP_FOUND, *text_r
 * (the caller frees) holds it. */
static enum lookup fetch_record(const struct dns_resolver *dns,
				const char *domain, char **text_r,
				size_t *length_r)
{
	*text_r = NULL;
	char name[DNS_MAX_NAME + 16];
	int n = snprintf(name, sizeof(name), "_dmarc.%s", domain);
	if (n < 0 || (size_t)n > DMARC_MAX_QUERY_NAME)
		return LOOKUP_NONE;
	struct dns_answer a;
	memset(&a, 0, sizeof(a));
	/* -1 is a failure whatever the status the resolver left. */
	bool failed = dns_query(dns, name, DNS_TYPE_TXT, &a) < 0;
	if (failed || a.status == DNS_TEMPFAIL || a.status == DNS_BOGUS) {
		dns_answer_clear(&a);
		return LOOKUP_FAILED;
	}
	size_t found = 0;
	for (size_t i = 0; i < a.count; i++) {
		char *text = xmalloc(a.rdata[i].n + 1);
		size_t length = 0;
		if (dns_rdata_txt(a.rdata[i], text, &length) < 0 ||
		    !dmarc_is_record(slice_make(text, length))) {
			free(text);
			continue;
		}
		if (found++ == 0) {
			*text_r = text;
			*length_r = length;
		} else {
			free(text);
		}
	}
	dns_answer_clear(&a);
	if (found == 1)
		return LOOKUP_FOUND;
	free(*text_r);
	*text_r = NULL;
	return found == 0 ? LOOKUP_NONE : LOOKUP_MULTIPLE;
}

/* RFC 7489 3.1: strict is equality, relaxed equal Organizational
 * Domains. */
static bool aligned(const struct dmarc_psl *psl, const char *domain,
		    const char *from_domain, const char *from_org, bool strict)
{
	if (domain == NULL || domain[0] == '\0')
		return false;
	size_t n = strlen(domain);
	if (n > 0 && domain[n - 1] == '.')
		n--;
	if (n == strlen(from_domain) &&
	    strncasecmp(domain, from_domain, n) == 0)
		return true;
	if (strict)
		return false;
	char org[DNS_MAX_NAME + 1];
	dmarc_org_domain(psl, domain, org);
	return strcasecmp(org, from_org) == 0;
}

static enum dmarc_policy lower_policy(enum dmarc_policy p)
{
	return p == DMARC_POLICY_REJECT ? DMARC_POLICY_QUARANTINE
					: DMARC_POLICY_NONE;
}

enum dmarc_status dmarc_check(const struct dns_resolver *dns,
			      const struct dmarc_psl *psl,
			      const struct dmarc_input *input,
			      struct dmarc_result *result_r)
{
	struct dmarc_result *r = result_r;
	memset(r, 0, sizeof(*r));
	if (input->from_status == DMARC_FROM_MISSING) {
		set_reason(r, "no From field");
		return r->status = DMARC_NONE;
	}
	struct slice from = slice_cstr(
		input->from_domain != NULL ? input->from_domain : "");
	if (input->from_status != DMARC_FROM_OK || !valid_domain(from)) {
		set_reason(r, "no usable From address");
		return r->status = DMARC_PERMERROR;
	}
	for (size_t i = 0; i < from.n; i++)
		r->from_domain[i] = (char)ascii_lower(from.p[i]);
	dmarc_org_domain(psl, r->from_domain, r->org_domain);

	char *text = NULL;
	size_t length = 0;
	const char *policy_domain = r->from_domain;
	enum lookup l = fetch_record(dns, policy_domain, &text, &length);
	if (l == LOOKUP_NONE && strcmp(r->org_domain, r->from_domain) != 0) {
		policy_domain = r->org_domain;
		l = fetch_record(dns, policy_domain, &text, &length);
	}
	memcpy(r->policy_domain, policy_domain, strlen(policy_domain) + 1);
	switch (l) {
	case LOOKUP_FAILED:
		set_reason(r, "DNS failure looking up _dmarc.%s",
			   policy_domain);
		return r->status = DMARC_TEMPERROR;
	case LOOKUP_NONE:
		r->policy_domain[0] = '\0';
		set_reason(r, "no DMARC record");
		return r->status = DMARC_NONE;
	case LOOKUP_MULTIPLE:
		set_reason(r, "several DMARC records at _dmarc.%s",
			   policy_domain);
		return r->status = DMARC_NONE;
	case LOOKUP_FOUND:
		break;
	}
	const char *error = NULL;
	int parsed = dmarc_parse_record(slice_make(text, length), &r->record,
					&error);
	free(text);
	/* The slices pointed into text. */
	r->record.rua = r->record.ruf = r->record.fo = r->record.rf =
		slice_make(NULL, 0);
	if (parsed < 0) {
		set_reason(r, "DMARC record of %s: %s", policy_domain, error);
		return r->status = DMARC_NONE;
	}
	r->has_record = true;
	bool subdomain = strcmp(policy_domain, r->from_domain) != 0;
	r->policy = subdomain ? r->record.sp : r->record.p;

	r->spf_aligned = input->spf == SPF_PASS &&
			 aligned(psl, input->spf_domain, r->from_domain,
				 r->org_domain, r->record.aspf_strict);
	for (size_t i = 0; i < input->dkim_count && !r->dkim_aligned; i++)
		r->dkim_aligned =
			input->dkim[i].status == DKIM_PASS &&
			aligned(psl, input->dkim[i].domain, r->from_domain,
				r->org_domain, r->record.adkim_strict);
	if (r->spf_aligned || r->dkim_aligned) {
		set_reason(r, "aligned %s passed",
			   r->dkim_aligned ? "DKIM" : "SPF");
		r->disposition = DMARC_POLICY_NONE;
		return r->status = DMARC_PASS;
	}
	r->disposition = r->policy;
	if (input->sample % 100 >= r->record.pct)
		r->disposition = lower_policy(r->policy);
	set_reason(r, "no aligned SPF or DKIM pass");
	return r->status = DMARC_FAIL;
}
