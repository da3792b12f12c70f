/* utf8.h: UTF-8 validation (RFC 3629: no overlongs, no surrogates). */
#ifndef DIJK_UTF8_H
#define DIJK_UTF8_H

#include "core/common.h"

bool utf8_valid(struct slice s);

/* Searching without case, for people: when text starts with needle, both
 * compared character by character in lower case (Unicode's simple
 * mapping, so "ÜB" matches "üb"), returns the length in bytes of the
 * part of text that matched; else 0 (also for an empty needle). Bytes
 * that are not UTF-8 compare as themselves. */
size_t utf8_fold_prefix(struct slice text, struct slice needle);
/* Whether needle occurs in text, compared as utf8_fold_prefix does. */
bool utf8_fold_contains(struct slice text, struct slice needle);

#endif
