/* keymem.c: OpenSSL's wipe-on-free allocator (see keymem.h). */
#include "core/common.h"

#include "core/keymem.h"

#include <malloc.h>

#include <openssl/crypto.h>

static void *keymem_malloc(size_t n, const char *file, int line)
{
	(void)file;
	(void)line;
	return malloc(n);
}

static void wipe(void *p)
{
	/* The whole block, not only what was asked for: the allocator may
	 * have handed out more, and OpenSSL may have used it. */
	explicit_bzero(p, malloc_usable_size(p));
}

static void keymem_free(void *p, const char *file, int line)
{
	(void)file;
	(void)line;
	if (p == NULL)
		return;
	wipe(p);
	free(p);
}

/* Never realloc in place: a block that moves would leave its old bytes
 * behind unwiped. */
static void *keymem_realloc(void *p, size_t n, const char *file, int line)
{
	if (p == NULL)
		return keymem_malloc(n, file, line);
	if (n == 0) {
		keymem_free(p, file, line);
		return NULL;
	}
	void *q = malloc(n);
	if (q == NULL)
		return NULL;
	size_t old = malloc_usable_size(p);
	memcpy(q, p, old < n ? old : n);
	wipe(p);
	free(p);
	return q;
}

int keymem_init(void)
{
	return CRYPTO_set_mem_functions(keymem_malloc, keymem_realloc,
					keymem_free) == 1
		       ? 0
		       : -1;
}
