/* ascii.h: character classes of the protocols' ASCII grammars.
 *
 * Unlike <ctype.h> these never depend on the locale and take any byte:
 * bytes from 0x80 up are in no class. */
#ifndef DIJK_ASCII_H
#define DIJK_ASCII_H

#include "core/common.h"

static inline bool ascii_is_alpha(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline bool ascii_is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

static inline bool ascii_is_alnum(uint8_t c)
{
	return ascii_is_alpha(c) || ascii_is_digit(c);
}

/* Space or horizontal tab (RFC 5234's WSP). */
static inline bool ascii_is_wsp(uint8_t c)
{
	return c == ' ' || c == '\t';
}

static inline uint8_t ascii_lower(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
}

#endif
