/* arena.c: allocations freed together, one arena per IMAP command (see
 * parser.h). Memory comes in chunks that double in size; a reset keeps the
 * newest chunk so that a session's next command allocates nothing. */
#include "core/common.h"

#include "imap/parser.h"

#include <stdalign.h>

/* The first chunk; later ones double up to ARENA_CHUNK_MAX (a larger
 * request gets a chunk of its own size). */
#define ARENA_CHUNK_MIN 4096
#define ARENA_CHUNK_MAX (1024 * 1024)
#define ARENA_ALIGN	alignof(max_align_t)

struct arena_chunk {
	struct arena_chunk *next;
	size_t size; /* bytes of data */
	size_t used;
	alignas(max_align_t) uint8_t data[];
};

struct arena {
	size_t max_bytes;
	size_t used; /* handed out since the last reset, rounded up */
	struct arena_chunk *chunks; /* newest first */
};

struct arena *arena_new(size_t max_bytes)
{
	struct arena *a = xcalloc(1, sizeof(*a));
	a->max_bytes = max_bytes;
	return a;
}

void *arena_alloc(struct arena *a, size_t n)
{
	if (n > SIZE_MAX - ARENA_ALIGN)
		return NULL;
	size_t rounded = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
	if (rounded > a->max_bytes - a->used)
		return NULL;
	struct arena_chunk *c = a->chunks;
	if (c == NULL || rounded > c->size - c->used) {
		size_t size = c == NULL ? ARENA_CHUNK_MIN : c->size * 2;
		if (size > ARENA_CHUNK_MAX)
			size = ARENA_CHUNK_MAX;
		/* Never more than the arena may still hand out. */
		size_t left = a->max_bytes - a->used;
		if (size > left)
			size = left;
		if (size < rounded)
			size = rounded;
		c = xmalloc(sizeof(*c) + size);
		c->size = size;
		c->used = 0;
		c->next = a->chunks;
		a->chunks = c;
	}
	void *p = c->data + c->used;
	c->used += rounded;
	a->used += rounded;
	return p;
}

void arena_reset(struct arena *a)
{
	struct arena_chunk *keep = a->chunks;
	if (keep == NULL)
		return;
	struct arena_chunk *c = keep->next;
	while (c != NULL) {
		struct arena_chunk *next = c->next;
		free(c);
		c = next;
	}
	keep->next = NULL;
	keep->used = 0;
	a->used = 0;
}

void arena_free(struct arena **ap)
{
	struct arena *a = *ap;
	if (a == NULL)
		return;
	struct arena_chunk *c = a->chunks;
	while (c != NULL) {
		struct arena_chunk *next = c->next;
		free(c);
		c = next;
	}
	free(a);
	*ap = NULL;
}

bool arena_contains(const struct arena *a, const void *p, size_t n)
{
	uintptr_t q = (uintptr_t)p;
	for (const struct arena_chunk *c = a->chunks; c != NULL; c = c->next) {
		uintptr_t start = (uintptr_t)c->data;
		if (q >= start && q - start <= c->used &&
		    n <= c->used - (q - start))
			return true;
	}
	return false;
}
