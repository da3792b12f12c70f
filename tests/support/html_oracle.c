/* html_oracle.c: see html_oracle.h. */
#include "core/common.h"

#include "html_oracle.h"

#include "core/utf8.h"
#include "http/sanitize.h"

#include <ctype.h>
#include <gumbo.h>

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

/* Attributes any allowed element may carry (href, src, target and rel
 * are checked apart). */
static const char *const allowed_attributes[] = {
	"title",       "lang",	      "dir",	 "align",   "valign",
	"width",       "height",      "bgcolor", "color",   "border",
	"cellpadding", "cellspacing", "colspan", "rowspan", "nowrap",
	"face",	       "size",	      "alt",	 "start",   "type",
	"reversed",    "datetime",    "scope",	 "headers", "span",
	"hspace",      "vspace",      "style",	 "noshade", "value",
	"open",
};

/* Found in no style attribute and no style sheet, without case. */
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

/* The scheme of a URL as a browser reads it, lowercased into scheme. */
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
	/* The tests resolve cid: to data:image URLs, checked below. */
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

static const char *check_element(const GumboNode *node, bool remote,
				 bool corpus_hosts)
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
		/* The hostile corpus aims its loads at these hosts: only a
		 * link (or a title's text) may name them. */
		if (corpus_hosts && !remote && strcmp(a->name, "href") != 0 &&
		    strcmp(a->name, "title") != 0 &&
		    (strstr(a->value, "attacker.example") != NULL ||
		     strstr(a->value, "tracker.example") != NULL ||
		     strstr(a->value, "127.0.0.1") != NULL))
			return "a load of the attacker's";
		if (corpus_hosts && strcmp(a->name, "title") != 0 &&
		    strstr(a->value, "postMessage") != NULL)
			return "script text in an attribute";
	}
	return NULL;
}

/* NULL when the sanitized html holds nothing that can run script or load
 * what was not asked for; else what it holds. */
const char *html_oracle_unsafe(struct slice html, bool remote,
			       bool corpus_hosts)
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
			why = check_element(node, remote, corpus_hosts);
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
