/* spf.c: SPF (RFC 7208): the record parser, macro expansion and
 * check_host() over a struct dns_resolver. See spf.h for the choices
 * made where the RFC leaves room. */
#include "core/common.h"

#include "core/ascii.h"

#include "smtp/spf.h"

#include <arpa/inet.h>
#include <strings.h>

#include "core/poison.h"

/* The PTR type is only needed here (dns.h carries the common ones). */
#define SPF_DNS_TYPE_PTR 12
/* Longest name dijk queries: RFC 7208 7.3 truncates expansions to it. */
#define SPF_MAX_QUERY_NAME 253

const char *spf_result_name(enum spf_result result)
{
	switch (result) {
	case SPF_NONE:
		return "none";
	case SPF_NEUTRAL:
		return "neutral";
	case SPF_PASS:
		return "pass";
	case SPF_FAIL:
		return "fail";
	case SPF_SOFTFAIL:
		return "softfail";
	case SPF_TEMPERROR:
		return "temperror";
	case SPF_PERMERROR:
		return "permerror";
	}
	return "permerror";
}

int spf_ip_from_sockaddr(const struct sockaddr *sa, struct spf_ip *ip_r)
{
	memset(ip_r, 0, sizeof(*ip_r));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		ip_r->family = AF_INET;
		ip_r->v4 = in->sin_addr;
		return 0;
	}
	if (sa->sa_family != AF_INET6)
		return -1;
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
	if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
		ip_r->family = AF_INET;
		memcpy(&ip_r->v4, in6->sin6_addr.s6_addr + 12, 4);
		return 0;
	}
	ip_r->family = AF_INET6;
	ip_r->v6 = in6->sin6_addr;
	return 0;
}

int spf_ip_parse(const char *text, struct spf_ip *ip_r)
{
	memset(ip_r, 0, sizeof(*ip_r));
	if (inet_pton(AF_INET, text, &ip_r->v4) == 1) {
		ip_r->family = AF_INET;
		return 0;
	}
	struct in6_addr v6;
	if (inet_pton(AF_INET6, text, &v6) != 1)
		return -1;
	if (IN6_IS_ADDR_V4MAPPED(&v6)) {
		ip_r->family = AF_INET;
		memcpy(&ip_r->v4, v6.s6_addr + 12, 4);
		return 0;
	}
	ip_r->family = AF_INET6;
	ip_r->v6 = v6;
	return 0;
}

/* ---- lexical helpers ---- */

/* RFC 7208 7.1 macro-literal: visible ASCII but '%'. */
static bool is_macro_literal(uint8_t c)
{
	return c >= 0x21 && c <= 0x7e && c != '%';
}

static bool is_delimiter(uint8_t c)
{
	return c == '.' || c == '-' || c == '+' || c == ',' || c == '/' ||
	       c == '_' || c == '=';
}

/* Bytes from..to of s; an empty s may have a NULL p. */
static struct slice sub(struct slice s, size_t from, size_t to)
{
	return slice_make(s.p != NULL ? s.p + from : NULL, to - from);
}

bool spf_is_record(struct slice txt)
{
	return slice_prefix_ci(txt, "v=spf1") &&
	       (txt.n == 6 || txt.p[6] == ' ');
}

/* RFC 7208 7.1 toplabel: alphanumerics with a letter, or alphanumerics
 * and hyphens starting and ending alphanumeric with a hyphen inside. */
static bool is_toplabel(struct slice s)
{
	if (s.n == 0 || !ascii_is_alnum(s.p[0]) ||
	    !ascii_is_alnum(s.p[s.n - 1]))
		return false;
	bool alpha_or_hyphen = false;
	for (size_t i = 0; i < s.n; i++) {
		if (s.p[i] == '-' || ascii_is_alpha(s.p[i]))
			alpha_or_hyphen = true;
		else if (!ascii_is_digit(s.p[i]))
			return false;
	}
	return alpha_or_hyphen;
}

/* Reads a macro-expand at s.p[*pos] == '%'. Returns 0 and advances, or
 * -1. letters_r gets the macro letter (0 for %%, %_, %-); the
 * transformers and delimiters are re-read by the expander. */
static int read_macro(struct slice s, size_t *pos, bool explanation,
		      uint8_t *letter_r, unsigned *digits_r, bool *reverse_r,
		      struct slice *delimiters_r, const char **error_r)
{
	size_t i = *pos + 1;
	*letter_r = 0;
	*digits_r = 0;
	*reverse_r = false;
	*delimiters_r = slice_make(NULL, 0);
	if (i >= s.n) {
		*error_r = "'%' at the end of a macro-string";
		return -1;
	}
	if (s.p[i] == '%' || s.p[i] == '_' || s.p[i] == '-') {
		*letter_r = 0;
		*pos = i + 1;
		return 0;
	}
	if (s.p[i] != '{') {
		*error_r = "'%' not followed by '{', '%', '_' or '-'";
		return -1;
	}
	i++;
	if (i >= s.n) {
		*error_r = "unterminated macro";
		return -1;
	}
	uint8_t letter = ascii_lower(s.p[i]);
	static const char letters[] = "slodiphcrtv";
	if (letter == 0 || strchr(letters, letter) == NULL) {
		*error_r = "unknown macro letter";
		return -1;
	}
	if (!explanation && (letter == 'c' || letter == 'r' || letter == 't')) {
		*error_r = "macro letter c, r or t outside an explanation";
		return -1;
	}
	*letter_r = s.p[i];
	i++;
	if (i < s.n && ascii_is_digit(s.p[i])) {
		if (s.p[i] == '0') {
			*error_r = "macro transformer of zero parts";
			return -1;
		}
		unsigned digits = 0;
		while (i < s.n && ascii_is_digit(s.p[i])) {
			/* More parts than any name has means all of them. */
			if (digits < 1000)
				digits = digits * 10 + (unsigned)(s.p[i] - '0');
			i++;
		}
		*digits_r = digits;
	}
	if (i < s.n && ascii_lower(s.p[i]) == 'r') {
		*reverse_r = true;
		i++;
	}
	size_t delimiters = i;
	while (i < s.n && is_delimiter(s.p[i]))
		i++;
	*delimiters_r = sub(s, delimiters, i);
	if (i >= s.n || s.p[i] != '}') {
		*error_r = "unterminated or malformed macro";
		return -1;
	}
	*pos = i + 1;
	return 0;
}

/* RFC 7208 7.1 macro-string. */
static bool valid_macro_string(struct slice s, bool explanation,
			       const char **error_r)
{
	size_t i = 0;
	while (i < s.n) {
		if (s.p[i] == '%') {
			uint8_t letter;
			unsigned digits;
			bool reverse;
			struct slice delimiters;
			if (read_macro(s, &i, explanation, &letter, &digits,
				       &reverse, &delimiters, error_r) < 0)
				return false;
		} else if (is_macro_literal(s.p[i])) {
			i++;
		} else {
			*error_r = "bad character in a macro-string";
			return false;
		}
	}
	return true;
}

/* RFC 7208 7.1 domain-spec: a macro-string ending in a macro-expand or in
 * "." toplabel ["."]. */
static bool valid_domain_spec(struct slice s, const char **error_r)
{
	if (s.n == 0) {
		*error_r = "empty domain-spec";
		return false;
	}
	size_t i = 0, literal_start = 0;
	while (i < s.n) {
		if (s.p[i] == '%') {
			uint8_t letter;
			unsigned digits;
			bool reverse;
			struct slice delimiters;
			if (read_macro(s, &i, false, &letter, &digits, &reverse,
				       &delimiters, error_r) < 0)
				return false;
			literal_start = i;
		} else if (is_macro_literal(s.p[i])) {
			i++;
		} else {
			*error_r = "bad character in a domain-spec";
			return false;
		}
	}
	if (literal_start == s.n)
		return true; /* ends in a macro-expand */
	struct slice tail = sub(s, literal_start, s.n);
	if (tail.p[tail.n - 1] == '.')
		tail.n--;
	size_t dot = tail.n;
	while (dot > 0 && tail.p[dot - 1] != '.')
		dot--;
	if (dot == 0 || !is_toplabel(sub(tail, dot, tail.n))) {
		*error_r = "domain-spec does not end in a top label";
		return false;
	}
	return true;
}

/* A CIDR length of at most max (digits without a leading zero). */
static bool parse_cidr(struct slice s, unsigned max, unsigned *value_r)
{
	if (s.n == 0 || s.n > 3 || (s.p[0] == '0' && s.n > 1))
		return false;
	unsigned v = 0;
	for (size_t i = 0; i < s.n; i++) {
		if (!ascii_is_digit(s.p[i]))
			return false;
		v = v * 10 + (unsigned)(s.p[i] - '0');
	}
	if (v > max)
		return false;
	*value_r = v;
	return true;
}

/* RFC 7208 5.6 ip4-network: four qnums, no leading zeros. */
static bool parse_ip4(struct slice s, struct in_addr *addr_r)
{
	uint8_t bytes[4];
	size_t i = 0;
	for (int part = 0; part < 4; part++) {
		if (part > 0) {
			if (i >= s.n || s.p[i] != '.')
				return false;
			i++;
		}
		size_t start = i;
		unsigned v = 0;
		while (i < s.n && ascii_is_digit(s.p[i]) && i - start < 3) {
			v = v * 10 + (unsigned)(s.p[i] - '0');
			i++;
		}
		if (i == start || v > 255 ||
		    (s.p[start] == '0' && i - start > 1))
			return false;
		bytes[part] = (uint8_t)v;
	}
	if (i != s.n)
		return false;
	memcpy(addr_r, bytes, 4);
	return true;
}

static bool parse_ip6(struct slice s, struct in6_addr *addr_r)
{
	char text[INET6_ADDRSTRLEN + 1];
	if (s.n == 0 || s.n >= sizeof(text))
		return false;
	for (size_t i = 0; i < s.n; i++)
		if (!(ascii_is_alnum(s.p[i]) || s.p[i] == ':' || s.p[i] == '.'))
			return false;
	memcpy(text, s.p, s.n);
	text[s.n] = '\0';
	return inet_pton(AF_INET6, text, addr_r) == 1;
}

/* Splits a trailing dual-cidr-length ("/24", "//64", "/24//64") off arg,
 * setting the lengths it names. Returns false when a length is bad. */
static bool split_dual_cidr(struct slice *arg, struct spf_term *t)
{
	for (int round = 0; round < 2; round++) {
		size_t end = arg->n, i = end;
		while (i > 0 && ascii_is_digit(arg->p[i - 1]))
			i--;
		if (i == end || i == 0 || arg->p[i - 1] != '/')
			return true;
		struct slice digits = sub(*arg, i, end);
		bool v6 = i >= 2 && arg->p[i - 2] == '/';
		if (v6) {
			/* An IPv6 length only before any IPv4 one. */
			if (round > 0)
				return true;
			if (!parse_cidr(digits, 128, &t->cidr6))
				return false;
			arg->n = i - 2;
		} else {
			if (!parse_cidr(digits, 32, &t->cidr4))
				return false;
			arg->n = i - 1;
			return true;
		}
	}
	return true;
}

static const struct {
	const char *name;
	enum spf_term_kind kind;
} mechanisms[] = {
	{"all", SPF_TERM_ALL}, {"include", SPF_TERM_INCLUDE},
	{"a", SPF_TERM_A},     {"mx", SPF_TERM_MX},
	{"ptr", SPF_TERM_PTR}, {"ip4", SPF_TERM_IP4},
	{"ip6", SPF_TERM_IP6}, {"exists", SPF_TERM_EXISTS},
};

static int parse_term(struct slice text, struct spf_term *t,
		      const char **error_r)
{
	memset(t, 0, sizeof(*t));
	t->text = text;
	t->qualifier = SPF_PASS;
	t->cidr4 = 32;
	t->cidr6 = 128;
	size_t i = 0;
	bool qualified = true;
	switch (text.p[0]) {
	case '+':
		t->qualifier = SPF_PASS;
		break;
	case '-':
		t->qualifier = SPF_FAIL;
		break;
	case '~':
		t->qualifier = SPF_SOFTFAIL;
		break;
	case '?':
		t->qualifier = SPF_NEUTRAL;
		break;
	default:
		qualified = false;
	}
	if (qualified)
		i++;
	/* name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ) */
	size_t name_start = i;
	if (i >= text.n || !ascii_is_alpha(text.p[i])) {
		*error_r = "a term does not start with a name";
		return -1;
	}
	while (i < text.n && (ascii_is_alnum(text.p[i]) || text.p[i] == '-' ||
			      text.p[i] == '_' || text.p[i] == '.'))
		i++;
	struct slice name = sub(text, name_start, i);
	if (i < text.n && text.p[i] == '=') {
		if (qualified) {
			*error_r = "a qualifier before a modifier";
			return -1;
		}
		t->domain_spec = sub(text, i + 1, text.n);
		if (slice_eq_ci(name, "redirect")) {
			t->kind = SPF_TERM_REDIRECT;
			return valid_domain_spec(t->domain_spec, error_r) ? 0
									  : -1;
		}
		if (slice_eq_ci(name, "exp")) {
			t->kind = SPF_TERM_EXP;
			return valid_domain_spec(t->domain_spec, error_r) ? 0
									  : -1;
		}
		t->kind = SPF_TERM_UNKNOWN_MODIFIER;
		return valid_macro_string(t->domain_spec, false, error_r) ? 0
									  : -1;
	}
	size_t m = 0;
	while (m < ARRAY_SIZE(mechanisms) &&
	       !slice_eq_ci(name, mechanisms[m].name))
		m++;
	if (m == ARRAY_SIZE(mechanisms)) {
		*error_r = "unknown mechanism";
		return -1;
	}
	t->kind = mechanisms[m].kind;
	struct slice arg = sub(text, i, text.n);
	switch (t->kind) {
	case SPF_TERM_ALL:
		if (arg.n != 0) {
			*error_r = "\"all\" takes no argument";
			return -1;
		}
		return 0;
	case SPF_TERM_INCLUDE:
	case SPF_TERM_EXISTS:
		if (arg.n < 1 || arg.p[0] != ':') {
			*error_r = "include and exists need a domain-spec";
			return -1;
		}
		t->domain_spec = sub(arg, 1, arg.n);
		return valid_domain_spec(t->domain_spec, error_r) ? 0 : -1;
	case SPF_TERM_A:
	case SPF_TERM_MX:
		if (!split_dual_cidr(&arg, t)) {
			*error_r = "bad CIDR length";
			return -1;
		}
		/* fall through */
	case SPF_TERM_PTR:
		if (arg.n == 0)
			return 0;
		if (arg.p[0] != ':') {
			*error_r = "malformed a, mx or ptr";
			return -1;
		}
		t->domain_spec = sub(arg, 1, arg.n);
		return valid_domain_spec(t->domain_spec, error_r) ? 0 : -1;
	case SPF_TERM_IP4:
	case SPF_TERM_IP6: {
		if (arg.n < 1 || arg.p[0] != ':') {
			*error_r = "ip4 and ip6 need an address";
			return -1;
		}
		arg = sub(arg, 1, arg.n);
		size_t slash = 0;
		while (slash < arg.n && arg.p[slash] != '/')
			slash++;
		struct slice addr = sub(arg, 0, slash);
		bool v4 = t->kind == SPF_TERM_IP4;
		if (slash < arg.n &&
		    !parse_cidr(sub(arg, slash + 1, arg.n), v4 ? 32 : 128,
				v4 ? &t->cidr4 : &t->cidr6)) {
			*error_r = "bad CIDR length";
			return -1;
		}
		if (v4 ? !parse_ip4(addr, &t->ip4)
		       : !parse_ip6(addr, &t->ip6)) {
			*error_r = "bad IP address";
			return -1;
		}
		return 0;
	}
	default:
		break;
	}
	DIJK_ASSERT(!"unreachable");
	return -1;
}

int spf_next_term(struct slice record, size_t *pos, struct spf_term *term_r,
		  const char **error_r)
{
	size_t i = *pos;
	if (i == 0) {
		if (!spf_is_record(record)) {
			*error_r = "not an SPF record";
			return -1;
		}
		i = 6;
	}
	/* Terms are separated by one or more spaces, and only spaces. */
	while (i < record.n && record.p[i] == ' ')
		i++;
	if (i >= record.n) {
		*pos = i;
		return 0;
	}
	if (i > 0 && record.p[i - 1] != ' ') {
		*error_r = "terms not separated by a space";
		return -1;
	}
	size_t start = i;
	while (i < record.n && record.p[i] != ' ')
		i++;
	*pos = i;
	return parse_term(sub(record, start, i), term_r, error_r) < 0 ? -1 : 1;
}

int spf_parse_record(struct slice record, struct spf_record_info *info_r,
		     const char **error_r)
{
	memset(info_r, 0, sizeof(*info_r));
	size_t pos = 0;
	struct spf_term t;
	int r;
	while ((r = spf_next_term(record, &pos, &t, error_r)) == 1) {
		if (++info_r->term_count > SPF_MAX_TERMS) {
			*error_r = "too many terms";
			return -1;
		}
		switch (t.kind) {
		case SPF_TERM_ALL:
			info_r->has_all = true;
			break;
		case SPF_TERM_REDIRECT:
			if (info_r->has_redirect) {
				*error_r = "two redirect modifiers";
				return -1;
			}
			info_r->has_redirect = true;
			info_r->redirect = t.domain_spec;
			break;
		case SPF_TERM_EXP:
			if (info_r->has_exp) {
				*error_r = "two exp modifiers";
				return -1;
			}
			info_r->has_exp = true;
			info_r->exp = t.domain_spec;
			break;
		default:
			break;
		}
	}
	return r;
}

/* ---- macro expansion ---- */

struct expand_state {
	const struct spf_macro_values *values;
	/* Gives %{p}; when NULL, values->validated is used. */
	const char *(*validated)(void *context);
	void *context;
};

static void put_ip_dotted(const struct spf_ip *ip, struct buf *out)
{
	if (ip->family == AF_INET) {
		const uint8_t *b = (const uint8_t *)&ip->v4;
		buf_printf(out, "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
		return;
	}
	/* RFC 7208 7.3: IPv6 as dot-separated nibbles. */
	static const char hex[] = "0123456789abcdef";
	for (int i = 0; i < 16; i++) {
		uint8_t b = ip->v6.s6_addr[i];
		char nibbles[4] = {hex[b >> 4], '.', hex[b & 15], '.'};
		buf_append(out, nibbles, i == 15 ? 3 : 4);
	}
}

static void put_ip_readable(const struct spf_ip *ip, struct buf *out)
{
	char text[INET6_ADDRSTRLEN];
	if (inet_ntop(ip->family,
		      ip->family == AF_INET ? (const void *)&ip->v4
					    : (const void *)&ip->v6,
		      text, sizeof(text)) != NULL)
		buf_append_cstr(out, text);
}

static const char *or_unknown(const char *s)
{
	return s != NULL && s[0] != '\0' ? s : "unknown";
}

/* The value of one macro letter, before transformers. */
static void macro_value(const struct expand_state *st, uint8_t letter,
			struct buf *out)
{
	const struct spf_macro_values *v = st->values;
	const char *local = v->sender_local != NULL && v->sender_local[0]
				    ? v->sender_local
				    : "postmaster";
	switch (ascii_lower(letter)) {
	case 's':
		buf_printf(out, "%s@%s", local, or_unknown(v->sender_domain));
		break;
	case 'l':
		buf_append_cstr(out, local);
		break;
	case 'o':
		buf_append_cstr(out, or_unknown(v->sender_domain));
		break;
	case 'd':
		buf_append_cstr(out, or_unknown(v->domain));
		break;
	case 'i':
		put_ip_dotted(v->ip, out);
		break;
	case 'p':
		buf_append_cstr(out,
				or_unknown(st->validated != NULL
						   ? st->validated(st->context)
						   : v->validated));
		break;
	case 'v':
		buf_append_cstr(out,
				v->ip->family == AF_INET ? "in-addr" : "ip6");
		break;
	case 'h':
		buf_append_cstr(out, or_unknown(v->helo));
		break;
	case 'c':
		put_ip_readable(v->ip, out);
		break;
	case 'r':
		buf_append_cstr(out, or_unknown(v->receiver));
		break;
	case 't':
		buf_printf(out, "%lld", (long long)v->now);
		break;
	}
}

static bool in_delimiters(uint8_t c, struct slice delimiters)
{
	return delimiters.n == 0
		       ? c == '.'
		       : memchr(delimiters.p, c, delimiters.n) != NULL;
}

/* Appends part, URL-escaped for an uppercase macro letter: RFC 3986
 * unreserved characters stay, the rest becomes %XX. */
static void put_part(struct slice part, bool escape, struct buf *out)
{
	if (!escape) {
		buf_append_slice(out, part);
		return;
	}
	for (size_t j = 0; j < part.n; j++) {
		uint8_t c = part.p[j];
		if (ascii_is_alnum(c) || c == '-' || c == '.' || c == '_' ||
		    c == '~')
			buf_append(out, &c, 1);
		else
			buf_printf(out, "%%%02X", c);
	}
}

/* Appends value transformed (RFC 7208 7.3): split on the delimiters,
 * maybe reversed, the rightmost digits parts, joined by dots. One pass
 * over value, whatever the number of parts. */
static void transform(struct slice value, unsigned digits, bool reverse,
		      struct slice delimiters, bool escape, struct buf *out)
{
	size_t count = 1;
	for (size_t i = 0; i < value.n; i++)
		if (in_delimiters(value.p[i], delimiters))
			count++;
	size_t keep = digits == 0 || digits >= count ? count : digits;
	if (!reverse) {
		/* The last keep parts, in order. */
		size_t skip = count - keep, i = 0;
		while (skip > 0) {
			if (in_delimiters(value.p[i], delimiters))
				skip--;
			i++;
		}
		size_t start = i;
		for (; i <= value.n; i++) {
			if (i < value.n &&
			    !in_delimiters(value.p[i], delimiters))
				continue;
			put_part(sub(value, start, i), escape, out);
			if (i < value.n)
				buf_append(out, ".", 1);
			start = i + 1;
		}
		return;
	}
	/* Reversed, the rightmost keep parts are the first keep parts of
	 * value, last to first. */
	size_t end = value.n, seen = 0;
	for (size_t i = 0; i < value.n; i++) {
		if (in_delimiters(value.p[i], delimiters) && ++seen == keep) {
			end = i;
			break;
		}
	}
	size_t part_end = end;
	for (size_t j = end; j > 0; j--) {
		if (!in_delimiters(value.p[j - 1], delimiters))
			continue;
		put_part(sub(value, j, part_end), escape, out);
		buf_append(out, ".", 1);
		part_end = j - 1;
	}
	put_part(sub(value, 0, part_end), escape, out);
}

static int expand(struct slice s, bool explanation,
		  const struct expand_state *st, struct buf *out,
		  const char **error_r)
{
	struct buf value;
	buf_init(&value, SPF_MAX_EXPANSION);
	size_t i = 0;
	int ret = 0;
	/* Past the limit, the rest need not be expanded. */
	while (i < s.n && !buf_overflowed(out) && !buf_overflowed(&value)) {
		if (s.p[i] != '%') {
			if (!is_macro_literal(s.p[i]) &&
			    !(explanation && s.p[i] == ' ')) {
				*error_r = "bad character in a macro-string";
				ret = -1;
				break;
			}
			buf_append(out, s.p + i, 1);
			i++;
			continue;
		}
		size_t start = i;
		uint8_t letter;
		unsigned digits;
		bool reverse;
		struct slice delimiters;
		if (read_macro(s, &i, explanation, &letter, &digits, &reverse,
			       &delimiters, error_r) < 0) {
			ret = -1;
			break;
		}
		if (letter == 0) {
			switch (s.p[start + 1]) {
			case '%':
				buf_append(out, "%", 1);
				break;
			case '_':
				buf_append(out, " ", 1);
				break;
			default:
				buf_append(out, "%20", 3);
			}
			continue;
		}
		buf_reset(&value);
		macro_value(st, letter, &value);
		if (!buf_overflowed(&value))
			transform(buf_slice(&value), digits, reverse,
				  delimiters, letter >= 'A' && letter <= 'Z',
				  out);
	}
	bool too_long = buf_overflowed(out) || buf_overflowed(&value);
	buf_free(&value);
	if (ret == 0 && too_long) {
		*error_r = "macro expansion too long";
		ret = -1;
	}
	return ret;
}

int spf_expand(struct slice macro_string, bool explanation,
	       const struct spf_macro_values *values, struct buf *out,
	       const char **error_r)
{
	struct expand_state st = {values, NULL, NULL};
	return expand(macro_string, explanation, &st, out, error_r);
}

/* ---- check_host() ---- */

struct ptr_cache {
	bool done;
	size_t count;
	char names[SPF_MAX_PTR_NAMES][DNS_MAX_NAME + 1];
	bool checked[SPF_MAX_PTR_NAMES];   /* forward lookup done */
	bool validated[SPF_MAX_PTR_NAMES]; /* and it gave the client */
	bool failed;			   /* the PTR query failed */
};

struct spf_eval {
	const struct dns_resolver *dns;
	const struct spf_ip *ip;
	const char *sender_local;
	const char *sender_domain;
	const char *helo;
	const char *domain; /* of the record being evaluated, for %{d} */
	unsigned lookups, void_lookups;
	struct ptr_cache ptr;
	struct spf_outcome *out;
};

static void set_reason(struct spf_eval *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The first reason given is kept: it is the deepest cause. */
static void set_reason(struct spf_eval *e, const char *fmt, ...)
{
	if (e->out->reason[0] != '\0')
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->out->reason, sizeof(e->out->reason), fmt, ap);
	va_end(ap);
	for (char *c = e->out->reason; *c != '\0'; c++)
		if ((uint8_t)*c < 0x20 || (uint8_t)*c > 0x7e)
			*c = '?';
}

/* A name safe to query: labels of 1..63 visible ASCII bytes but '\',
 * at most SPF_MAX_QUERY_NAME in all. With ldh_only, only letters,
 * digits, '-' and '_' (names given to dijk, not expanded ones); with
 * multi_label, at least two labels. */
static bool valid_query_name(struct slice s, bool ldh_only, bool multi_label)
{
	if (s.n == 0 || s.n > SPF_MAX_QUERY_NAME)
		return false;
	size_t label = 0, labels = 1;
	for (size_t i = 0; i < s.n; i++) {
		uint8_t c = s.p[i];
		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
			labels++;
			continue;
		}
		if (ldh_only ? !(ascii_is_alnum(c) || c == '-' || c == '_')
			     : (c < 0x21 || c > 0x7e || c == '\\'))
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0 && (!multi_label || labels >= 2);
}

static void copy_lower(char *dst, struct slice s)
{
	for (size_t i = 0; i < s.n; i++)
		dst[i] = (char)ascii_lower(s.p[i]);
	dst[s.n] = '\0';
}

/* Reverse-lookup name of the client (RFC 1035 3.5, RFC 3596 2.5). */
static void reverse_name(const struct spf_ip *ip, struct buf *out)
{
	if (ip->family == AF_INET) {
		const uint8_t *b = (const uint8_t *)&ip->v4;
		buf_printf(out, "%u.%u.%u.%u.in-addr.arpa", b[3], b[2], b[1],
			   b[0]);
		return;
	}
	static const char hex[] = "0123456789abcdef";
	for (int i = 15; i >= 0; i--) {
		uint8_t b = ip->v6.s6_addr[i];
		char nibbles[4] = {hex[b & 15], '.', hex[b >> 4], '.'};
		buf_append(out, nibbles, 4);
	}
	buf_append_cstr(out, "ip6.arpa");
}

/* dns_query, where -1 always reads as a failure, whatever the status
 * the resolver left. */
static void query(const struct dns_resolver *dns, const char *name,
		  uint16_t type, struct dns_answer *a)
{
	memset(a, 0, sizeof(*a));
	if (dns_query(dns, name, type, a) < 0 && a->status != DNS_BOGUS)
		a->status = DNS_TEMPFAIL;
}

static bool dns_failed(const struct dns_answer *a)
{
	return a->status == DNS_TEMPFAIL || a->status == DNS_BOGUS;
}

static bool prefix_matches(const uint8_t *x, const uint8_t *y, unsigned bits)
{
	size_t whole = bits / 8;
	unsigned rest = bits % 8;
	if (memcmp(x, y, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (x[whole] & mask) == (y[whole] & mask);
}

/* Whether the client's address is among name's A (IPv4 client) or AAAA
 * records, compared on the first cidr bits. Returns 1, 0, or -1 on a DNS
 * failure; *void_r says the answer was empty. */
static int address_matches(struct spf_eval *e, const char *name, unsigned cidr4,
			   unsigned cidr6, bool *void_r)
{
	bool v4 = e->ip->family == AF_INET;
	struct dns_answer a;
	query(e->dns, name, v4 ? DNS_TYPE_A : DNS_TYPE_AAAA, &a);
	if (dns_failed(&a)) {
		dns_answer_clear(&a);
		return -1;
	}
	if (void_r != NULL)
		*void_r = a.status != DNS_OK || a.count == 0;
	int match = 0;
	for (size_t i = 0; i < a.count && !match; i++) {
		const uint8_t *want, *have;
		unsigned bits;
		struct in_addr a4;
		struct in6_addr a6;
		if (v4) {
			if (dns_rdata_a(a.rdata[i], &a4) < 0)
				continue;
			want = (const uint8_t *)&e->ip->v4;
			have = (const uint8_t *)&a4;
			bits = cidr4;
		} else {
			if (dns_rdata_aaaa(a.rdata[i], &a6) < 0)
				continue;
			want = e->ip->v6.s6_addr;
			have = a6.s6_addr;
			bits = cidr6;
		}
		match = prefix_matches(want, have, bits);
	}
	dns_answer_clear(&a);
	return match;
}

/* True when name is domain or a subdomain of it (no case). */
static bool name_within(const char *name, const char *domain)
{
	size_t n = strlen(name), d = strlen(domain);
	if (n < d || strcasecmp(name + n - d, domain) != 0)
		return false;
	return n == d || name[n - d - 1] == '.';
}

/* Fetches the client's PTR names, at most SPF_MAX_PTR_NAMES. Returns 0,
 * or -1 when the PTR query failed (the mechanism then does not match). */
static int fetch_ptr_names(struct spf_eval *e, bool *void_r)
{
	struct ptr_cache *c = &e->ptr;
	if (c->done)
		return c->failed ? -1 : 0;
	c->done = true;
	struct buf name;
	buf_init(&name, 128);
	reverse_name(e->ip, &name);
	struct dns_answer a;
	query(e->dns, buf_cstr(&name), SPF_DNS_TYPE_PTR, &a);
	buf_free(&name);
	if (dns_failed(&a)) {
		c->failed = true;
		dns_answer_clear(&a);
		return -1;
	}
	if (void_r != NULL)
		*void_r = a.status != DNS_OK || a.count == 0;
	for (size_t i = 0; i < a.count && c->count < SPF_MAX_PTR_NAMES; i++) {
		size_t offset = 0;
		char *n = c->names[c->count];
		if (dns_read_name(a.rdata[i], &offset, n) < 0 || n[0] == '\0')
			continue;
		c->count++;
	}
	dns_answer_clear(&a);
	return 0;
}

/* Whether PTR name i maps back to the client; looked up once. A DNS
 * failure only skips the name (RFC 7208 5.5). */
static bool ptr_validated(struct spf_eval *e, size_t i)
{
	struct ptr_cache *c = &e->ptr;
	if (!c->checked[i]) {
		c->checked[i] = true;
		c->validated[i] =
			address_matches(e, c->names[i], 32, 128, NULL) == 1;
	}
	return c->validated[i];
}

/* RFC 7208 7.3 %{p}: the current domain if validated, else a validated
 * subdomain of it, else any validated name, else "unknown". */
static const char *validated_name(void *context)
{
	struct spf_eval *e = context;
	struct ptr_cache *c = &e->ptr;
	if (fetch_ptr_names(e, NULL) < 0)
		return "unknown";
	const char *best = NULL;
	int best_rank = 0;
	for (size_t i = 0; i < c->count; i++) {
		int rank = strcasecmp(c->names[i], e->domain) == 0 ? 3
			   : name_within(c->names[i], e->domain)   ? 2
								   : 1;
		if (rank <= best_rank || !ptr_validated(e, i))
			continue;
		best = c->names[i];
		best_rank = rank;
	}
	return best != NULL ? best : "unknown";
}

/* Copies s into dst (size bytes), cut to fit, with bytes outside
 * printable ASCII as '?'. */
static void copy_printable(char *dst, size_t size, struct slice s)
{
	size_t n = s.n < size - 1 ? s.n : size - 1;
	for (size_t i = 0; i < n; i++)
		dst[i] = s.p[i] >= 0x20 && s.p[i] <= 0x7e ? (char)s.p[i] : '?';
	dst[n] = '\0';
}

/* Counts a term that queries DNS; false past the limit. */
static bool count_lookup(struct spf_eval *e)
{
	if (++e->lookups <= SPF_MAX_DNS_LOOKUPS)
		return true;
	set_reason(e, "more than %d DNS lookups", SPF_MAX_DNS_LOOKUPS);
	return false;
}

/* Counts an empty answer; false past the limit. */
static bool count_void(struct spf_eval *e, bool is_void)
{
	if (!is_void || ++e->void_lookups <= SPF_MAX_VOID_LOOKUPS)
		return true;
	set_reason(e, "more than %d void DNS lookups", SPF_MAX_VOID_LOOKUPS);
	return false;
}

enum target { TARGET_OK, TARGET_UNUSABLE, TARGET_PERMERROR };

/* The name a term points at: its domain-spec expanded, or the current
 * domain when it has none. Cut on the left to SPF_MAX_QUERY_NAME (RFC
 * 7208 7.3), lowercased. */
static enum target target_name(struct spf_eval *e, struct slice spec,
			       char name_r[DNS_MAX_NAME + 1])
{
	if (spec.n == 0) {
		copy_lower(name_r, slice_cstr(e->domain));
		return TARGET_OK;
	}
	struct buf b;
	buf_init(&b, SPF_MAX_EXPANSION);
	struct spf_macro_values v = {
		.ip = e->ip,
		.sender_local = e->sender_local,
		.sender_domain = e->sender_domain,
		.domain = e->domain,
		.helo = e->helo,
	};
	struct expand_state st = {&v, validated_name, e};
	const char *error = NULL;
	if (expand(spec, false, &st, &b, &error) < 0) {
		set_reason(e, "%s", error);
		buf_free(&b);
		return TARGET_PERMERROR;
	}
	struct slice s = buf_slice(&b);
	if (s.n > 0 && s.p[s.n - 1] == '.')
		s.n--;
	while (s.n > SPF_MAX_QUERY_NAME) {
		const uint8_t *dot = memchr(s.p, '.', s.n);
		if (dot == NULL)
			break;
		s = slice_make(dot + 1, s.n - (size_t)(dot + 1 - s.p));
	}
	enum target r = TARGET_UNUSABLE;
	if (valid_query_name(s, false, false)) {
		copy_lower(name_r, s);
		r = TARGET_OK;
	}
	buf_free(&b);
	return r;
}

enum match { NO_MATCH, MATCH, MATCH_TEMPERROR, MATCH_PERMERROR };

static enum spf_result check_host(struct spf_eval *e, const char *domain,
				  unsigned depth);

static enum match eval_mx(struct spf_eval *e, const struct spf_term *t,
			  const char *name)
{
	struct dns_answer a;
	query(e->dns, name, DNS_TYPE_MX, &a);
	if (dns_failed(&a)) {
		dns_answer_clear(&a);
		set_reason(e, "DNS failure looking up MX of %s", name);
		return MATCH_TEMPERROR;
	}
	if (!count_void(e, a.status != DNS_OK || a.count == 0)) {
		dns_answer_clear(&a);
		return MATCH_PERMERROR;
	}
	if (a.count > SPF_MAX_MX_NAMES) {
		dns_answer_clear(&a);
		set_reason(e, "more than %d MX names at %s", SPF_MAX_MX_NAMES,
			   name);
		return MATCH_PERMERROR;
	}
	enum match m = NO_MATCH;
	for (size_t i = 0; i < a.count && m == NO_MATCH; i++) {
		uint16_t preference;
		char host[DNS_MAX_NAME + 1];
		/* A null MX (RFC 7505) names the root: nothing to match. */
		if (dns_rdata_mx(a.rdata[i], &preference, host) < 0 ||
		    host[0] == '\0')
			continue;
		int r = address_matches(e, host, t->cidr4, t->cidr6, NULL);
		if (r < 0) {
			set_reason(e, "DNS failure looking up %s", host);
			m = MATCH_TEMPERROR;
		} else if (r == 1) {
			m = MATCH;
		}
	}
	dns_answer_clear(&a);
	return m;
}

static enum match eval_include(struct spf_eval *e, const char *name,
			       unsigned depth)
{
	switch (check_host(e, name, depth + 1)) {
	case SPF_PASS:
		return MATCH;
	case SPF_FAIL:
	case SPF_SOFTFAIL:
	case SPF_NEUTRAL:
		return NO_MATCH;
	case SPF_TEMPERROR:
		return MATCH_TEMPERROR;
	case SPF_NONE:
		/* RFC 7208 5.2: an include without a record is an error. */
		set_reason(e, "included %s has no SPF record", name);
		return MATCH_PERMERROR;
	case SPF_PERMERROR:
		break;
	}
	return MATCH_PERMERROR;
}

static enum match eval_mechanism(struct spf_eval *e, const struct spf_term *t,
				 unsigned depth)
{
	bool v4 = e->ip->family == AF_INET;
	switch (t->kind) {
	case SPF_TERM_ALL:
		return MATCH;
	case SPF_TERM_IP4:
		return v4 && prefix_matches((const uint8_t *)&e->ip->v4,
					    (const uint8_t *)&t->ip4, t->cidr4)
			       ? MATCH
			       : NO_MATCH;
	case SPF_TERM_IP6:
		return !v4 && prefix_matches(e->ip->v6.s6_addr, t->ip6.s6_addr,
					     t->cidr6)
			       ? MATCH
			       : NO_MATCH;
	case SPF_TERM_A:
	case SPF_TERM_MX:
	case SPF_TERM_PTR:
	case SPF_TERM_EXISTS:
	case SPF_TERM_INCLUDE:
		break;
	default:
		return NO_MATCH;
	}
	if (!count_lookup(e))
		return MATCH_PERMERROR;
	char name[DNS_MAX_NAME + 1];
	switch (target_name(e, t->domain_spec, name)) {
	case TARGET_OK:
		break;
	case TARGET_UNUSABLE:
		if (t->kind != SPF_TERM_INCLUDE)
			return NO_MATCH;
		set_reason(e, "include of an unusable domain name");
		return MATCH_PERMERROR;
	case TARGET_PERMERROR:
		return MATCH_PERMERROR;
	}
	bool is_void = false;
	switch (t->kind) {
	case SPF_TERM_A: {
		int r = address_matches(e, name, t->cidr4, t->cidr6, &is_void);
		if (r < 0) {
			set_reason(e, "DNS failure looking up %s", name);
			return MATCH_TEMPERROR;
		}
		if (!count_void(e, is_void))
			return MATCH_PERMERROR;
		return r == 1 ? MATCH : NO_MATCH;
	}
	case SPF_TERM_MX:
		return eval_mx(e, t, name);
	case SPF_TERM_PTR: {
		/* A failed PTR query only makes ptr not match (RFC 7208
		 * 5.5); names already fetched for %{p} are reused. */
		if (fetch_ptr_names(e, &is_void) < 0)
			return NO_MATCH;
		if (!count_void(e, is_void))
			return MATCH_PERMERROR;
		for (size_t i = 0; i < e->ptr.count; i++)
			if (name_within(e->ptr.names[i], name) &&
			    ptr_validated(e, i))
				return MATCH;
		return NO_MATCH;
	}
	case SPF_TERM_EXISTS: {
		/* Always an A query, whatever the client's family (5.7). */
		struct dns_answer a;
		query(e->dns, name, DNS_TYPE_A, &a);
		bool failed = dns_failed(&a);
		is_void = a.status != DNS_OK || a.count == 0;
		dns_answer_clear(&a);
		if (failed) {
			set_reason(e, "DNS failure looking up %s", name);
			return MATCH_TEMPERROR;
		}
		if (!count_void(e, is_void))
			return MATCH_PERMERROR;
		return is_void ? NO_MATCH : MATCH;
	}
	case SPF_TERM_INCLUDE:
		return eval_include(e, name, depth);
	default:
		break;
	}
	return NO_MATCH;
}

/* Records the deciding term of the checked domain's own record. */
static void set_mechanism(struct spf_eval *e, unsigned depth, struct slice text)
{
	if (depth == 0)
		copy_printable(e->out->mechanism, sizeof(e->out->mechanism),
			       text);
}

static enum spf_result evaluate(struct spf_eval *e, const char *domain,
				struct slice record, unsigned depth)
{
	struct spf_record_info info;
	const char *error = NULL;
	if (spf_parse_record(record, &info, &error) < 0) {
		set_reason(e, "SPF record of %s: %s", domain, error);
		return SPF_PERMERROR;
	}
	const char *outer_domain = e->domain;
	e->domain = domain;
	enum spf_result result = SPF_NEUTRAL;
	bool decided = false;
	size_t pos = 0;
	struct spf_term t;
	while (!decided && spf_next_term(record, &pos, &t, &error) == 1) {
		if (t.kind == SPF_TERM_REDIRECT || t.kind == SPF_TERM_EXP ||
		    t.kind == SPF_TERM_UNKNOWN_MODIFIER)
			continue;
		switch (eval_mechanism(e, &t, depth)) {
		case NO_MATCH:
			continue;
		case MATCH:
			result = t.qualifier;
			break;
		case MATCH_TEMPERROR:
			result = SPF_TEMPERROR;
			break;
		case MATCH_PERMERROR:
			result = SPF_PERMERROR;
			break;
		}
		decided = true;
		set_mechanism(e, depth, t.text);
	}
	/* RFC 7208 6.1: redirect counts only when nothing matched and the
	 * record has no "all". */
	if (!decided && info.has_redirect && !info.has_all) {
		char name[DNS_MAX_NAME + 1];
		set_mechanism(
			e, depth,
			slice_make(info.redirect.p - 9, info.redirect.n + 9));
		if (!count_lookup(e)) {
			result = SPF_PERMERROR;
		} else {
			switch (target_name(e, info.redirect, name)) {
			case TARGET_OK:
				result = check_host(e, name, depth + 1);
				if (result == SPF_NONE) {
					set_reason(e,
						   "redirect to %s without "
						   "an SPF record",
						   name);
					result = SPF_PERMERROR;
				}
				break;
			case TARGET_UNUSABLE:
				set_reason(e, "redirect to an unusable name");
				result = SPF_PERMERROR;
				break;
			case TARGET_PERMERROR:
				result = SPF_PERMERROR;
				break;
			}
		}
	}
	e->domain = outer_domain;
	return result;
}

static enum spf_result check_host(struct spf_eval *e, const char *domain,
				  unsigned depth)
{
	/* RFC 7208 4.3: a malformed or single-label name has no policy. */
	if (!valid_query_name(slice_cstr(domain), false, true)) {
		set_reason(e, "not a usable domain name");
		return SPF_NONE;
	}
	struct dns_answer a;
	query(e->dns, domain, DNS_TYPE_TXT, &a);
	if (dns_failed(&a)) {
		dns_answer_clear(&a);
		set_reason(e, "DNS failure looking up TXT of %s", domain);
		return SPF_TEMPERROR;
	}
	char *record = NULL;
	size_t record_length = 0, found = 0;
	for (size_t i = 0; i < a.count; i++) {
		char *text = xmalloc(a.rdata[i].n + 1);
		size_t n = 0;
		if (dns_rdata_txt(a.rdata[i], text, &n) < 0 ||
		    !spf_is_record(slice_make(text, n))) {
			free(text);
			continue;
		}
		found++;
		if (record == NULL) {
			record = text;
			record_length = n;
		} else {
			free(text);
		}
	}
	dns_answer_clear(&a);
	if (found == 0) {
		set_reason(e, "no SPF record at %s", domain);
		return SPF_NONE;
	}
	enum spf_result result;
	if (found > 1) {
		set_reason(e, "%zu SPF records at %s", found, domain);
		result = SPF_PERMERROR;
	} else {
		result = evaluate(e, domain, slice_make(record, record_length),
				  depth);
	}
	free(record);
	return result;
}

enum spf_result spf_check(const struct dns_resolver *dns,
			  const struct spf_ip *client, const char *domain,
			  const char *sender_local, const char *helo,
			  struct spf_outcome *outcome_r)
{
	memset(outcome_r, 0, sizeof(*outcome_r));
	struct slice d = slice_cstr(domain != NULL ? domain : "");
	if (d.n > 0 && d.p[d.n - 1] == '.')
		d.n--;
	if (!valid_query_name(d, true, true)) {
		copy_printable(outcome_r->domain, sizeof(outcome_r->domain), d);
		copy_printable(outcome_r->reason, sizeof(outcome_r->reason),
			       slice_cstr("not a multi-label domain name"));
		outcome_r->result = SPF_NONE;
		return SPF_NONE;
	}
	copy_lower(outcome_r->domain, d);
	/* RFC 7208 5: an IPv4-mapped address is evaluated as IPv4. */
	struct spf_ip ip = *client;
	if (ip.family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&ip.v6)) {
		struct in_addr v4;
		memcpy(&v4, client->v6.s6_addr + 12, 4);
		ip.family = AF_INET;
		ip.v4 = v4;
	}
	struct spf_eval *e = xcalloc(1, sizeof(*e));
	e->dns = dns;
	e->ip = &ip;
	e->sender_local = sender_local != NULL && sender_local[0] != '\0'
				  ? sender_local
				  : "postmaster";
	e->sender_domain = outcome_r->domain;
	e->helo = helo;
	e->domain = outcome_r->domain;
	e->out = outcome_r;
	enum spf_result result = check_host(e, outcome_r->domain, 0);
	outcome_r->result = result;
	outcome_r->lookups = e->lookups;
	outcome_r->void_lookups = e->void_lookups;
	if (outcome_r->reason[0] == '\0')
		set_reason(e, "%s",
			   outcome_r->mechanism[0] != '\0'
				   ? "matched"
				   : "no mechanism matched");
	free(e);
	return result;
}
