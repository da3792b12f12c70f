/* utf8.c: strict UTF-8 validation. */
#include "core/common.h"

#include "core/utf8.h"

#include <locale.h>
#include <pthread.h>
#include <wctype.h>

bool utf8_valid(struct slice s)
{
	size_t i = 0;
	while (i < s.n) {
		uint8_t c = s.p[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t len;
		uint32_t cp;
		if (c >= 0xc2 && c <= 0xdf) {
			len = 2;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			len = 3;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			len = 4;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (s.n - i < len)
			return false;
		for (size_t k = 1; k < len; k++) {
			uint8_t cc = s.p[i + k];
			if ((cc & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (cc & 0x3f);
		}
		if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

/* The next character of s from *pos; a byte that does not start a valid
 * sequence stands for itself (as a code point above Unicode's, so that it
 * equals only itself). */
static uint32_t next_char(struct slice s, size_t *pos)
{
	const uint8_t *p = s.p + *pos;
	size_t left = s.n - *pos;
	uint8_t c = p[0];
	size_t len = c < 0x80		  ? 1
		     : (c & 0xe0) == 0xc0 ? 2
		     : (c & 0xf0) == 0xe0 ? 3
		     : (c & 0xf8) == 0xf0 ? 4
					  : 0;
	if (len > 1 && len <= left && utf8_valid(slice_make(p, len))) {
		uint32_t cp = c & (0xff >> (len + 1));
		for (size_t i = 1; i < len; i++)
			cp = cp << 6 | (p[i] & 0x3f);
		*pos += len;
		return cp;
	}
	*pos += 1;
	return c < 0x80 ? c : 0x110000u + c;
}

static locale_t fold_locale;
static pthread_once_t fold_once = PTHREAD_ONCE_INIT;

static void fold_init(void)
{
	/* glibc's C.UTF-8 has Unicode's case mappings and is always there
	 * (no locale package needed). */
	fold_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

static uint32_t fold(uint32_t cp)
{
	if (cp < 0x80)
		return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
	if (cp >= 0x110000u || fold_locale == (locale_t)0)
		return cp;
	return (uint32_t)towlower_l((wint_t)cp, fold_locale);
}

size_t utf8_fold_prefix(struct slice text, struct slice needle)
{
	pthread_once(&fold_once, fold_init);
	size_t t = 0, n = 0;
	if (needle.n == 0)
		return 0;
	while (n < needle.n) {
		if (t >= text.n)
			return 0;
		if (fold(next_char(text, &t)) != fold(next_char(needle, &n)))
			return 0;
	}
	return t;
}

bool utf8_fold_contains(struct slice text, struct slice needle)
{
	for (size_t i = 0; i < text.n; i++) {
		/* Only at the start of a character. */
		if ((text.p[i] & 0xc0) == 0x80)
			continue;
		if (utf8_fold_prefix(slice_make(text.p + i, text.n - i),
				     needle) > 0)
			return true;
	}
	return false;
}
