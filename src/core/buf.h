/* buf.h: owned, growable byte buffers with a hard maximum.
 *
 * A buffer keeps its first error: once an append would cross the maximum,
 * the buffer is marked overflowed and later appends do nothing, so a caller
 * checks once at the end (buf_overflowed) instead of after every append. */
#ifndef DIJK_BUF_H
#define DIJK_BUF_H

#include "core/common.h"

struct buf {
	uint8_t *p;
	size_t n;
	size_t cap;
	size_t max; /* hard maximum of n */
	bool overflowed;
};

/* Initialises an empty buffer that may grow to at most max bytes. */
void buf_init(struct buf *b, size_t max);
/* Frees the storage and leaves an empty buffer with the same maximum. */
void buf_free(struct buf *b);
/* Empties the buffer, keeping its storage; clears the overflow mark. */
void buf_reset(struct buf *b);

/* Appends; returns false (and marks the buffer) when max would be crossed. */
bool buf_append(struct buf *b, const void *p, size_t n);
bool buf_append_slice(struct buf *b, struct slice s);
bool buf_append_cstr(struct buf *b, const char *s);
bool buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The contents as a slice; valid until the next change to b. */
static inline struct slice buf_slice(const struct buf *b)
{
	return slice_make(b->p, b->n);
}

/* NUL-terminates the contents (not counted in n) and returns them. Valid
 * until the next change to b. */
const char *buf_cstr(struct buf *b);

/* Hands the storage to the caller, who frees it; b is left empty. */
uint8_t *buf_steal(struct buf *b, size_t *len_r);

static inline bool buf_overflowed(const struct buf *b)
{
	return b->overflowed;
}

#endif
