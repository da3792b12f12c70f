/* buf.c: growable byte buffers that never grow past their maximum. */
#include "core/common.h"

#include "core/buf.h"

void buf_init(struct buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

void buf_free(struct buf *b)
{
	size_t max = b->max;
	free(b->p);
	buf_init(b, max);
}

void buf_reset(struct buf *b)
{
	b->n = 0;
	b->overflowed = false;
}

static bool buf_reserve(struct buf *b, size_t extra)
{
	if (b->overflowed)
		return false;
	/* +1 keeps room for the terminator of buf_cstr. */
	if (extra > b->max - b->n) {
		b->overflowed = true;
		return false;
	}
	size_t need = b->n + extra + 1;
	if (need <= b->cap)
		return true;
	size_t cap = b->cap < 64 ? 64 : b->cap;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	b->p = xrealloc(b->p, cap);
	b->cap = cap;
	return true;
}

bool buf_append(struct buf *b, const void *p, size_t n)
{
	if (!buf_reserve(b, n))
		return false;
	if (n > 0)
		memcpy(b->p + b->n, p, n);
	b->n += n;
	return true;
}

bool buf_append_slice(struct buf *b, struct slice s)
{
	return buf_append(b, s.p, s.n);
}

bool buf_append_cstr(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

bool buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !buf_reserve(b, (size_t)n))
		return false;
	va_start(ap, fmt);
	int m = vsnprintf((char *)b->p + b->n, (size_t)n + 1, fmt, ap);
	va_end(ap);
	DIJK_ASSERT(m == n);
	b->n += (size_t)n;
	return true;
}

const char *buf_cstr(struct buf *b)
{
	if (b->p == NULL) {
		b->p = xmalloc(1);
		b->cap = 1;
	}
	/* buf_reserve always leaves one spare byte past n. */
	b->p[b->n] = '\0';
	return (const char *)b->p;
}

uint8_t *buf_steal(struct buf *b, size_t *len_r)
{
	uint8_t *p = b->p;
	*len_r = b->n;
	if (p == NULL)
		p = xmalloc(1);
	buf_init(b, b->max);
	return p;
}
