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

/* ---- the checks of the unit test: see unsafe() in test_sanitize.c ---- */

static const char *const allowed_elements[] = {
	"a",	      "abbr",	"address",    "article",  "aside",   "b",
	"bdi",	      "bdo",	"blockquote", "br",	  "caption", "center",
	"cite",	      "code",	"col",	      "colgroup", "dd",	     "del",
	"details",    "dfn",	"div",	      "dl",	  "dt",	     "em",
	"figcaption", "figure", "font",	      "footer",	  "h1",	     "h2",
	"h3",	      "h4",	"h5",	      "h6",	  "header",  "hr",
	"i",	      "img",	"ins",	      "kbd",	  "li",	     "main",
	"mark",	      "nav",	"ol",	      "p",	  "pre",     "q",
	"s",	      "samp",	"section",    "small",	  "span",    "strike",
	"strong",     "sub",	"summary",    "sup",	  "table",   "tbody",
	"td",	      "tfoot",	"th",	      "thead",	  "time",    "tr",
	"tt",	      "u",	"ul",	      "var",	  "wbr",     "style",
};

static const char *const allowed_attributes[] = {
	"title",       "lang",	      "dir",	 "align",   "valign",
	"width",       "height",      "bgcolor", "color",   "border",
	"cellpadding", "cellspacing", "colspan", "rowspan", "nowrap",
	"face",	       "size",	      "alt",	 "start",   "type",
	"reversed",    "datetime",    "scope",	 "headers", "span",
	"hspace",      "vspace",      "style",	 "noshade", "value",
	"open",
};

static const char *const css_never[] = {
	"url(", "expression", "javascript", "vbscript",	  "image-set",
	"\\",	"/*",	      "@import",    "@font-face", "<",
};

/* Properties that are never written. */
static const char *const css_properties_never[] = {
	"position",	"z-index",	"content",	    "cursor",
	"behavior",	"-moz-binding", "background-image", "list-style-image",
	"border-image", "src",		"filter",	    "transform",
};

static bool in_list(const char *s, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, list[i]) == 0)
			return true;
	return false;
}

static void url_scheme_of(const char *url, char *scheme, size_t size)
{
	size_t n = 0;
	while (*url != '\0' && (unsigned char)*url <= 0x20)
		url++;
	for (; *url != '\0' && *url != ':'; url++) {
		if (*url == '\t' || *url == '\n' || *url == '\r')
			continue;
		if (n + 1 >= size || strchr("/?#", *url) != NULL) {
			n = 0;
			break;
		}
		scheme[n++] = (char)tolower((unsigned char)*url);
	}
	if (*url != ':')
		n = 0;
	scheme[n] = '\0';
}

static const char *check_url(const char *tag, const char *name,
			     const char *value, bool remote)
{
	char scheme[32];
	url_scheme_of(value, scheme, sizeof(scheme));
	if (strcmp(name, "href") == 0) {
		if (strcmp(tag, "a") != 0)
			return "href off a link";
		if (strcmp(scheme, "http") != 0 &&
		    strcmp(scheme, "https") != 0 &&
		    strcmp(scheme, "mailto") != 0)
			return "link with a scheme not allowed";
		return NULL;
	}
	if (strcmp(tag, "img") != 0)
		return "src off an image";
	if (strcmp(value, CID_URL) == 0)
		return NULL;
	if (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0)
		return remote ? NULL : "remote image not asked for";
	static const char *const images[] = {
		"data:image/png;base64,",
		"data:image/gif;base64,",
		"data:image/jpeg;base64,",
		"data:image/webp;base64,",
	};
	for (size_t i = 0; i < ARRAY_SIZE(images); i++)
		if (strncasecmp(value, images[i], strlen(images[i])) == 0)
			return strpbrk(value, "<>\"' ") == NULL
				       ? NULL
				       : "odd data: image";
	return "image source not allowed";
}

static const char *check_css(const char *css, bool sheet)
{
	for (size_t i = 0; i < ARRAY_SIZE(css_never); i++)
		if (strcasestr(css, css_never[i]) != NULL)
			return "forbidden CSS";
	for (const char *at = strchr(css, '@'); at != NULL;
	     at = strchr(at + 1, '@'))
		if (!sheet || strncmp(at, "@media ", 7) != 0)
			return "CSS at-rule";
	/* The name of each declaration: what precedes a ':' after a ';',
	 * '{' or '}' (a selector's pseudo-class gives a harmless name). */
	for (const char *p = css; *p != '\0';) {
		size_t n = strcspn(p, ";{}");
		const char *colon = memchr(p, ':', n);
		if (colon != NULL) {
			const char *name = p;
			while (name < colon && isspace((unsigned char)*name))
				name++;
			size_t len = (size_t)(colon - name);
			while (len > 0 && isspace((unsigned char)name[len - 1]))
				len--;
			for (size_t i = 0; i < ARRAY_SIZE(css_properties_never);
			     i++)
				if (strlen(css_properties_never[i]) == len &&
				    strncasecmp(name, css_properties_never[i],
						len) == 0)
					return "forbidden CSS property";
		}
		p += n + (p[n] != '\0');
	}
	return NULL;
}

static const char *check_element(const GumboNode *node, bool remote)
{
	const GumboElement *e = &node->v.element;
	if (e->tag_namespace != GUMBO_NAMESPACE_HTML)
		return "element outside HTML";
	if (e->tag == GUMBO_TAG_UNKNOWN)
		return "unknown element";
	const char *tag = gumbo_normalized_tagname(e->tag);
	if (e->tag == GUMBO_TAG_HTML || e->tag == GUMBO_TAG_HEAD ||
	    e->tag == GUMBO_TAG_BODY)
		return e->attributes.length == 0 ? NULL
						 : "attributes on html or body";
	if (!in_list(tag, allowed_elements, ARRAY_SIZE(allowed_elements)))
		return "element not allowed";
	if (e->tag == GUMBO_TAG_STYLE) {
		if (e->attributes.length > 0)
			return "attributes on style";
		for (unsigned i = 0; i < e->children.length; i++) {
			const GumboNode *c = e->children.data[i];
			const char *why = check_css(c->v.text.text, true);
			if (why != NULL)
				return why;
		}
	}
	for (unsigned i = 0; i < e->attributes.length; i++) {
		const GumboAttribute *a = e->attributes.data[i];
		const char *why = NULL;
		if (a->attr_namespace != GUMBO_ATTR_NAMESPACE_NONE)
			why = "namespaced attribute";
		else if (strncasecmp(a->name, "on", 2) == 0)
			why = "event handler";
		else if (strcmp(a->name, "href") == 0 ||
			 strcmp(a->name, "src") == 0)
			why = check_url(tag, a->name, a->value, remote);
		else if (strcmp(a->name, "target") == 0)
			why = e->tag == GUMBO_TAG_A &&
					      strcmp(a->value, "_blank") == 0
				      ? NULL
				      : "target";
		else if (strcmp(a->name, "rel") == 0)
			why = e->tag == GUMBO_TAG_A &&
					      strcmp(a->value,
						     "noopener noreferrer") == 0
				      ? NULL
				      : "rel";
		else if (!in_list(a->name, allowed_attributes,
				  ARRAY_SIZE(allowed_attributes)))
			why = "attribute not allowed";
		else if (strcmp(a->name, "style") == 0)
			why = check_css(a->value, false);
		if (why != NULL)
			return why;
	}
	return NULL;
}

static const char *unsafe(struct slice html, bool remote)
{
	if (!utf8_valid(html))
		return "invalid UTF-8";
	if (memchr(html.p, '\0', html.n) != NULL ||
	    memchr(html.p, '\r', html.n) != NULL)
		return "NUL or CR";
	GumboOutput *parsed = gumbo_parse_with_options(
		&kGumboDefaultOptions, html.n > 0 ? (const char *)html.p : "",
		html.n);
	const char *why = NULL;
	struct {
		const GumboNode *node;
		size_t depth;
	} *stack = NULL;
	size_t n = 0, cap = 0;
	const GumboVector *top = &parsed->document->v.document.children;
	for (unsigned i = 0; i < top->length && why == NULL; i++) {
		stack = xrealloc(stack, sizeof(*stack) * (cap = 64));
		stack[0].node = top->data[i];
		stack[0].depth = 1;
		n = 1;
		while (n > 0 && why == NULL) {
			const GumboNode *node = stack[n - 1].node;
			size_t depth = stack[n - 1].depth;
			n--;
			if (node->type == GUMBO_NODE_TEXT ||
			    node->type == GUMBO_NODE_WHITESPACE)
				continue;
			if (node->type != GUMBO_NODE_ELEMENT) {
				why = "comment, CDATA or template";
				break;
			}
			if (depth > SANITIZE_MAX_DEPTH + 2) {
				why = "too deep";
				break;
			}
			why = check_element(node, remote);
			const GumboVector *c = &node->v.element.children;
			if (n + c->length > cap) {
				cap = (n + c->length) * 2;
				stack = xrealloc(stack, sizeof(*stack) * cap);
			}
			for (unsigned k = 0; k < c->length; k++) {
				stack[n].node = c->data[k];
				stack[n].depth = depth + 1;
				n++;
			}
		}
	}
	free(stack);
	gumbo_destroy_output(&kGumboDefaultOptions, parsed);
	return why;
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
	const char *why = unsafe(sanitized, opt.remote_images);
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
