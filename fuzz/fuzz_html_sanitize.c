/* fuzz_html_sanitize.c: src/http/sanitize.c over arbitrary bytes.
 *
 * The first byte picks the options (bit 0: remote images, bit 1: a cid:
 * resolver that maps names starting with 'a' to a fixed data: image); the
 * rest is the HTML. The output, parsed again with Gumbo, must hold only
 * allowlisted elements and attributes, no event handler, no URL with a
 * scheme not allowed, no CSS that loads or runs anything; it must be valid
 * UTF-8 without NUL or CR; and sanitizing it again must give the same
 * bytes. A refusal (-1) must leave the buffer as it was. Any failure
 * aborts. */
#include "core/common.h"

#include "core/utf8.h"
#include "http/sanitize.h"

#include "../tests/support/html_oracle.h"

#include <ctype.h>
#include <gumbo.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CID_URL "data:image/gif;base64,R0lGODlhAQABAAAAACw="
#define PREFIX	"prefix:"

static const char *resolve_cid(const char *cid, size_t len, void *context)
{
	(void)context;
	return len > 0 && cid[0] == 'a' ? CID_URL : NULL;
}

static void fail(const char *why, struct slice html)
{
	fprintf(stderr, "html_sanitize: %s in:\n%.*s\n", why, (int)html.n,
		(const char *)html.p);
	abort();
}

/* ---- the target ---- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	struct sanitize_options opt = {
		.remote_images = (data[0] & 1) != 0,
		.resolve_cid = (data[0] & 2) ? resolve_cid : NULL,
	};
	struct slice html = slice_make(data + 1, size - 1);
	struct buf out, again;
	buf_init(&out, 64u << 20);
	buf_init(&again, 64u << 20);
	buf_append_cstr(&out, PREFIX);
	size_t prefix = out.n;

	struct sanitize_result result;
	int r = html_sanitize(html.p, html.n, &opt, &out, &result);
	if (r != 0) {
		if (r != -1 || result.error == NULL || out.n != prefix ||
		    memcmp(out.p, PREFIX, prefix) != 0)
			fail("a refusal changed the output", html);
		goto done;
	}
	if (result.error != NULL)
		fail("an error with success", html);
	struct slice sanitized = slice_make(out.p + prefix, out.n - prefix);
	const char *why =
		html_oracle_unsafe(sanitized, opt.remote_images, false);
	if (why != NULL)
		fail(why, sanitized);

	struct sanitize_result second;
	r = html_sanitize(sanitized.p, sanitized.n, &opt, &again, &second);
	if (r != 0)
		fail("the output is refused", sanitized);
	if (again.n != sanitized.n ||
	    memcmp(again.p, sanitized.p, sanitized.n) != 0) {
		fprintf(stderr, "second pass:\n%.*s\n", (int)again.n,
			(const char *)again.p);
		fail("the output is not stable", sanitized);
	}
	if (second.removed_elements != 0)
		fail("the output had elements to remove", sanitized);
done:
	buf_free(&out);
	buf_free(&again);
	return 0;
}
