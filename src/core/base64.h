/* base64.h: RFC 4648 base64, strict decoding (for SASL). Pure. */
#ifndef DIJK_BASE64_H
#define DIJK_BASE64_H

#include "core/common.h"

/* Bytes needed to decode n base64 characters. */
#define BASE64_DECODED_MAX(n) ((n) / 4 * 3 + 3)
/* Bytes (NUL included) needed to encode n bytes. */
#define BASE64_ENCODED_SIZE(n) (((n) + 2) / 3 * 4 + 1)

/* Decodes in into out (BASE64_DECODED_MAX(in.n) bytes). Padding is
 * required; whitespace and any other character are refused. Returns the
 * decoded length or -1. */
long base64_decode(struct slice in, uint8_t *out);

/* Encodes in into out (BASE64_ENCODED_SIZE(in.n) bytes), NUL-terminated. */
void base64_encode(struct slice in, char *out);

#endif
