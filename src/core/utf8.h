/* utf8.h: UTF-8 validation (RFC 3629: no overlongs, no surrogates). */
#ifndef DIJK_UTF8_H
#define DIJK_UTF8_H

#include "core/common.h"

bool utf8_valid(struct slice s);

#endif
