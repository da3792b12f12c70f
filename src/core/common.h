/* common.h: what every dijk source file includes first.
 *
 * Standard headers, the borrowed byte view (struct slice), and the failure
 * ladder: expected failures return -1 with const char **error_r, bugs go to
 * DIJK_ASSERT / dijk_panic (abort for a core dump), start-up problems go to
 * dijk_fatal (exit 1). */
#ifndef DIJK_COMMON_H
#define DIJK_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A borrowed view of bytes: never owns, never NUL-terminated by contract. */
struct slice {
	const uint8_t *p;
	size_t n;
};

static inline struct slice slice_make(const void *p, size_t n)
{
	struct slice s = {(const uint8_t *)p, n};
	return s;
}

static inline struct slice slice_cstr(const char *s)
{
	return slice_make(s, strlen(s));
}

/* True when the slice equals the C string, ASCII case-insensitively. */
bool slice_eq_ci(struct slice s, const char *cstr);
/* True when the slice starts with the C string, ASCII case-insensitively. */
bool slice_prefix_ci(struct slice s, const char *cstr);

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

void dijk_panic(const char *fmt, ...)
	__attribute__((noreturn, format(printf, 1, 2)));
void dijk_fatal(const char *fmt, ...)
	__attribute__((noreturn, format(printf, 1, 2)));

#define DIJK_ASSERT(expr)                                                     \
	do {                                                                  \
		if (!(expr))                                                  \
			dijk_panic("assertion failed at %s:%d: %s", __FILE__, \
				   __LINE__, #expr);                          \
	} while (0)

/* malloc that panics on exhaustion: callers never see NULL. */
void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const void *p, size_t n);

/* Formats into a new string; panics only on allocation failure. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#include "core/poison.h"

#endif
