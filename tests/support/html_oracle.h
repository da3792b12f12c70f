/* html_oracle.h: an independent check of the HTML sanitizer's output, for
 * its unit test and its fuzz target. It re-parses the output with Gumbo and
 * holds every element, attribute, URL and CSS declaration against lists of
 * its own, written apart from src/http/sanitize.c so that one mistake is
 * not made twice. */
#ifndef DIJK_TESTS_HTML_ORACLE_H
#define DIJK_TESTS_HTML_ORACLE_H

#include "core/common.h"

/* NULL when html (sanitized with remote images allowed or not) holds
 * nothing that can run script or load what was not asked for; else what it
 * holds. With corpus_hosts, any attribute but a link or a title naming the
 * hosts that tests/hostile/ aims its loads at is refused too (for inputs
 * from that corpus; random inputs may name them harmlessly, in alt text
 * say). */
const char *html_oracle_unsafe(struct slice html, bool remote,
			       bool corpus_hosts);

#endif
