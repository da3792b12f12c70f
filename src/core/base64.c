/* base64.c: strict base64. */
#include "core/common.h"

#include "core/base64.h"

static const char alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int value_of(uint8_t c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

long base64_decode(struct slice in, uint8_t *out)
{
	if (in.n % 4 != 0)
		return -1;
	size_t o = 0;
	for (size_t i = 0; i < in.n; i += 4) {
		int v[4];
		size_t pad = 0;
		for (size_t k = 0; k < 4; k++) {
			uint8_t c = in.p[i + k];
			if (c == '=' && i + 4 == in.n && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad > 0)
				return -1; /* data after padding */
			v[k] = value_of(c);
			if (v[k] < 0)
				return -1;
		}
		uint32_t triple = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
				  (uint32_t)v[2] << 6 | (uint32_t)v[3];
		out[o++] = (uint8_t)(triple >> 16);
		if (pad < 2)
			out[o++] = (uint8_t)(triple >> 8);
		if (pad < 1)
			out[o++] = (uint8_t)triple;
	}
	return (long)o;
}

void base64_encode(struct slice in, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < in.n; i += 3) {
		uint32_t triple = (uint32_t)in.p[i] << 16;
		if (i + 1 < in.n)
			triple |= (uint32_t)in.p[i + 1] << 8;
		if (i + 2 < in.n)
			triple |= in.p[i + 2];
		out[o++] = alphabet[(triple >> 18) & 63];
		out[o++] = alphabet[(triple >> 12) & 63];
		out[o++] = i + 1 < in.n ? alphabet[(triple >> 6) & 63] : '=';
		out[o++] = i + 2 < in.n ? alphabet[triple & 63] : '=';
	}
	out[o] = '\0';
}
