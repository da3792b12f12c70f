/* util.c: allocation helpers and slice comparisons shared by every module. */
#include "core/common.h"

#include "core/log.h"

#include <strings.h>

bool slice_eq_ci(struct slice s, const char *cstr)
{
	size_t n = strlen(cstr);
	return s.n == n &&
	       (n == 0 || strncasecmp((const char *)s.p, cstr, n) == 0);
}

bool slice_prefix_ci(struct slice s, const char *cstr)
{
	size_t n = strlen(cstr);
	return s.n >= n &&
	       (n == 0 || strncasecmp((const char *)s.p, cstr, n) == 0);
}

void *xmalloc(size_t n)
{
	void *p = malloc(n == 0 ? 1 : n);
	if (p == NULL)
		dijk_panic("out of memory allocating %zu bytes", n);
	return p;
}

void *xcalloc(size_t count, size_t n)
{
	void *p = calloc(count == 0 ? 1 : count, n == 0 ? 1 : n);
	if (p == NULL)
		dijk_panic("out of memory allocating %zu x %zu bytes", count,
			   n);
	return p;
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n == 0 ? 1 : n);
	if (q == NULL)
		dijk_panic("out of memory reallocating %zu bytes", n);
	return q;
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *xstrndup(const void *p, size_t n)
{
	char *s = xmalloc(n + 1);
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		dijk_panic("xasprintf: bad format %s", fmt);
	char *s = xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	int m = vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	DIJK_ASSERT(m == n);
	return s;
}
