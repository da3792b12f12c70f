/* mtasts.c: MTA-STS record and policy parsing (see mtasts.h). */
#include "core/common.h"

#include "smtp/mtasts.h"

#include <ctype.h>

static bool is_space(uint8_t c)
{
	return c == ' ' || c == '\t';
}

/* Trims spaces and tabs from both ends. */
static struct slice trim(struct slice s)
{
	while (s.n > 0 && is_space(s.p[0]))
		s = slice_make(s.p + 1, s.n - 1);
	while (s.n > 0 && is_space(s.p[s.n - 1]))
		s.n--;
	return s;
}

static bool slice_is(struct slice s, const char *lit)
{
	return s.n == strlen(lit) && memcmp(s.p, lit, s.n) == 0;
}

int mta_sts_parse_record(struct slice text, char *id_r)
{
	/* Fields split by ';'; the first must be v=STSv1 (RFC 8461 3.1). */
	bool first = true, have_id = false;
	size_t at = 0;
	while (at <= text.n) {
		size_t end = at;
		while (end < text.n && text.p[end] != ';')
			end++;
		struct slice field = trim(slice_make(text.p + at, end - at));
		at = end + 1;
		if (field.n == 0) {
			if (first)
				return -1;
			continue;
		}
		const uint8_t *eq = memchr(field.p, '=', field.n);
		if (eq == NULL)
			return -1;
		struct slice name = slice_make(field.p, (size_t)(eq - field.p));
		struct slice value = slice_make(eq + 1, field.n - name.n - 1);
		for (size_t i = 0; i < name.n; i++)
			if (!isalnum(name.p[i]) && name.p[i] != '_' &&
			    name.p[i] != '.' && name.p[i] != '-')
				return -1;
		if (first) {
			if (!slice_is(name, "v") || !slice_is(value, "STSv1"))
				return -1;
			first = false;
		} else if (slice_is(name, "id")) {
			if (have_id || value.n == 0 || value.n > MTA_STS_MAX_ID)
				return -1;
			for (size_t i = 0; i < value.n; i++)
				if (!isalnum(value.p[i]))
					return -1;
			memcpy(id_r, value.p, value.n);
			id_r[value.n] = '\0';
			have_id = true;
		}
	}
	return have_id ? 0 : -1;
}

/* A host name or "*." + host name, lowercased into out. */
static int mx_pattern(struct slice s, char *out)
{
	if (s.n == 0 || s.n > DNS_MAX_NAME)
		return -1;
	size_t start = 0;
	if (s.n > 2 && s.p[0] == '*' && s.p[1] == '.')
		start = 2;
	size_t label = 0;
	for (size_t i = start; i < s.n; i++) {
		uint8_t c = s.p[i];
		if (c == '.') {
			if (label == 0)
				return -1;
			label = 0;
		} else if (isalnum(c) || c == '-' || c == '_') {
			if (++label > 63)
				return -1;
		} else {
			return -1;
		}
	}
	if (label == 0)
		return -1; /* empty or ends in a dot */
	for (size_t i = 0; i < s.n; i++)
		out[i] = (char)tolower(s.p[i]);
	out[s.n] = '\0';
	return 0;
}

int mta_sts_parse_policy(struct slice text, struct mta_sts_policy *p,
			 const char **error_r)
{
	memset(p, 0, sizeof(*p));
	if (text.n > MTA_STS_MAX_POLICY) {
		*error_r = "policy too large";
		return -1;
	}
	bool version = false, mode = false, max_age = false;
	size_t at = 0;
	while (at < text.n) {
		size_t end = at;
		while (end < text.n && text.p[end] != '\n')
			end++;
		struct slice line = slice_make(text.p + at, end - at);
		at = end + 1;
		if (line.n > 0 && line.p[line.n - 1] == '\r')
			line.n--;
		if (trim(line).n == 0)
			continue;
		const uint8_t *colon = memchr(line.p, ':', line.n);
		if (colon == NULL) {
			*error_r = "a line is not 'key: value'";
			return -1;
		}
		struct slice key = slice_make(line.p, (size_t)(colon - line.p));
		struct slice value =
			trim(slice_make(colon + 1, line.n - key.n - 1));
		for (size_t i = 0; i < key.n; i++)
			if (!isalnum(key.p[i]) && key.p[i] != '_') {
				*error_r = "bad key";
				return -1;
			}
		if (slice_is(key, "version")) {
			if (version || !slice_is(value, "STSv1")) {
				*error_r = "version is not STSv1";
				return -1;
			}
			version = true;
		} else if (slice_is(key, "mode")) {
			if (mode) {
				*error_r = "mode given twice";
				return -1;
			}
			if (slice_is(value, "enforce"))
				p->mode = MTA_STS_ENFORCE;
			else if (slice_is(value, "testing"))
				p->mode = MTA_STS_TESTING;
			else if (slice_is(value, "none"))
				p->mode = MTA_STS_NONE;
			else {
				*error_r = "unknown mode";
				return -1;
			}
			mode = true;
		} else if (slice_is(key, "max_age")) {
			uint64_t n = 0;
			if (max_age || value.n == 0 || value.n > 10) {
				*error_r = "bad max_age";
				return -1;
			}
			for (size_t i = 0; i < value.n; i++) {
				if (!isdigit(value.p[i])) {
					*error_r = "bad max_age";
					return -1;
				}
				n = n * 10 + (value.p[i] - '0');
			}
			p->max_age = n > MTA_STS_MAX_AGE ? MTA_STS_MAX_AGE
							 : (uint32_t)n;
			max_age = true;
		} else if (slice_is(key, "mx")) {
			if (p->mx_count == MTA_STS_MAX_MX)
				continue;
			if (mx_pattern(value, p->mx[p->mx_count]) != 0) {
				*error_r = "bad mx pattern";
				return -1;
			}
			p->mx_count++;
		}
		/* Other keys are for later versions: ignored. */
	}
	if (!version || !mode || !max_age) {
		*error_r = "version, mode or max_age missing";
		return -1;
	}
	if (p->mode != MTA_STS_NONE && p->mx_count == 0) {
		*error_r = "no mx";
		return -1;
	}
	return 0;
}

bool mta_sts_mx_matches(const struct mta_sts_policy *p, const char *host)
{
	for (size_t i = 0; i < p->mx_count; i++) {
		const char *pattern = p->mx[i];
		if (pattern[0] == '*') {
			/* "*.example.com" matches exactly one more label. */
			const char *dot = strchr(host, '.');
			if (dot != NULL && dot != host &&
			    strcmp(dot + 1, pattern + 2) == 0)
				return true;
		} else if (strcmp(host, pattern) == 0) {
			return true;
		}
	}
	return false;
}

void mta_sts_own_policy(const char *hostname, struct buf *out)
{
	buf_printf(out,
		   "version: STSv1\r\nmode: enforce\r\nmx: %s\r\n"
		   "max_age: %u\r\n",
		   hostname, (unsigned)MTA_STS_OWN_MAX_AGE);
}
