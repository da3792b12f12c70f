/* sanitize.h: the HTML sanitizer of the webmail.
 *
 * An HTML part of a mail is parsed with Gumbo (an HTML5 parser) and the
 * document is rebuilt from the parse tree by allowlist: nothing of the input
 * is copied through, every element, attribute, URL and CSS declaration of the
 * output is written by us and escaped by us. The result is one of three
 * walls: the webmail shows it in an iframe with sandbox (no allow-scripts,
 * no allow-same-origin) under a CSP that allows no script.
 *
 * What comes out:
 * - Elements: a, abbr, address, article, aside, b, bdi, bdo, blockquote, br,
 *   caption, center, cite, code, col, colgroup, dd, del, details, dfn, div,
 *   dl, dt, em, figcaption, figure, font, footer, h1-h6, header, hr, i, img,
 *   ins, kbd, li, main, mark, nav, ol, p, pre, q, s, samp, section, small,
 *   span, strike, strong, style (see below), sub, summary, sup, table, tbody,
 *   td, tfoot, th, thead, time, tr, tt, u, ul, var, wbr.
 *   Dropped with all they hold: script, noscript, template, iframe, frame,
 *   frameset, object, embed, applet, param, form, input, button, select,
 *   option, optgroup, datalist, keygen, textarea, base, meta, link, title,
 *   xmp, plaintext, noembed, noframes, canvas, audio, video, source, track,
 *   dialog, portal, isindex, svg, math (and every SVG or MathML element,
 *   mglyph and malignmark included). Every other element (html, head, body,
 *   unknown and custom tags...) is unwrapped: its children are kept.
 *   Comments, doctypes and processing instructions are dropped.
 * - Attributes: title, lang, dir, align, valign, width, height, bgcolor,
 *   color, border, cellpadding, cellspacing, colspan, rowspan, nowrap, face,
 *   size, alt, hspace, vspace, noshade, span, scope, headers, datetime,
 *   start, reversed, value, type (ol, ul, li), open (details), style
 *   (filtered), href (a) and src (img). Nothing else: no on* handler, no id,
 *   name, class, target, srcset, background, data-*, xlink:*...
 * - URLs: leading and trailing C0 controls and spaces are trimmed and tabs,
 *   CR and LF removed (as browsers do); any other control character drops
 *   the attribute. a href keeps only http:, https: and mailto: (scheme
 *   compared without case); such links get target="_blank"
 *   rel="noopener noreferrer". img src keeps cid: through resolve_cid,
 *   data:image/(png|gif|jpeg|webp);base64 with a base64 payload, and
 *   http(s): only when remote_images is set (otherwise the attribute is
 *   dropped and counted in remote_images_blocked). Everything else, relative
 *   URLs included, is dropped.
 * - CSS: a style attribute keeps the declarations whose property is on an
 *   allowlist (colors, background, font*, text-*, line-height, spacing,
 *   white-space, vertical-align, margin*, padding*, border* but not
 *   border-image, sizes, float, clear, display with block, inline,
 *   inline-block, none, list-item and the table values only,
 *   list-style-type, table layout...) and whose value passes: letters,
 *   digits, spaces, quoted strings of the same and # % . , - + _ / only,
 *   the functions rgb, rgba, hsl, hsla and calc only (with * inside them),
 *   an optional !important, and none of url(, image-set, expression,
 *   javascript, vbscript, behavior, binding, import, @, \ or a comment.
 *   Position, z-index, content, cursor and the like are dropped. A
 *   backslash, a comment or an unbalanced quote or parenthesis drops the
 *   whole attribute.
 *   A <style> element is kept, rebuilt: its comments and <!-- --> are
 *   dropped, at-rules other than @media are dropped with their blocks,
 *   selectors must be plain (type, *, .class, #id, the combinators space > +
 *   ~ and :hover :active :focus :link :visited :first-child :last-child;
 *   other selectors of a list are dropped), declarations pass the filter of
 *   style attributes, and the text written never holds a '<'. A <style>
 *   left empty is dropped.
 *
 * The output is stable: sanitizing it again with the same options gives the
 * same bytes, provided resolve_cid returns URLs that the same options keep
 * (e.g. https: with remote_images, or data:image/png). To get there, an
 * element that a browser would move when parsing the output (a <div> inside
 * a <p>, an <a> inside an <a>, an <li> inside an <li>, an <h2> right inside
 * an <h1>, table parts outside their table) is unwrapped, <pre> is
 * followed by a newline of ours (a parser drops the first), whitespace and
 * a byte order mark are dropped at the very start, and text leaves no
 * control character, no CR and no invalid UTF-8 (they become U+FFFD or
 * LF). The one exception: a second pass may run out of its CPU time (see
 * the limits), which no output of a few MiB comes near.
 *
 * Links open with target="_blank": inside the sandboxed iframe they need
 * allow-popups and allow-popups-to-escape-sandbox (neither lets script
 * run).
 */
#ifndef DIJK_HTTP_SANITIZE_H
#define DIJK_HTTP_SANITIZE_H

#include "core/common.h"

#include "core/buf.h"

/* Limits. Input over SANITIZE_MAX_INPUT bytes, with more than
 * SANITIZE_MAX_TAGS start tags or with a tag of more than
 * SANITIZE_MAX_ATTRIBUTES attributes is refused before parsing: Gumbo's time
 * grows with the square of the nesting depth and of the attributes of one
 * tag (200,000 nested <div>s take 80 s, 100,000 attributes 20 s). Past the
 * checks the parse may use SANITIZE_MAX_PARSE_MEMORY bytes of memory and
 * SANITIZE_MAX_PARSE_MS of the thread's CPU time, then is abandoned: some
 * misnested input makes Gumbo clone elements without end. Elements deeper
 * than SANITIZE_MAX_DEPTH in the output are unwrapped (their text is kept);
 * Chromium's parser stops nesting at 512, and the webmail's document adds a
 * few levels of its own. */
#define SANITIZE_MAX_INPUT	  (4u << 20)
#define SANITIZE_MAX_TAGS	  100000
#define SANITIZE_MAX_ATTRIBUTES	  256
#define SANITIZE_MAX_PARSE_MEMORY (128u << 20)
#define SANITIZE_MAX_PARSE_MS	  2000
#define SANITIZE_MAX_DEPTH	  400

struct sanitize_options {
	/* false: http(s) image sources are dropped and counted. */
	bool remote_images;
	/* Maps a cid: reference (what follows "cid:", not decoded, without
	 * surrounding whitespace) to a URL of ours, or NULL to drop the
	 * source. The string returned must stay valid until the call
	 * returns; it is written escaped but not checked. NULL: every cid:
	 * source is dropped. */
	const char *(*resolve_cid)(const char *cid, size_t len, void *context);
	void *context;
};

struct sanitize_result {
	/* Image sources dropped only because remote_images was false, so
	 * that the UI can offer "show images". */
	size_t remote_images_blocked;
	/* Elements dropped with their content (each dropped subtree counts
	 * once); unwrapped elements are not counted. */
	size_t removed_elements;
	/* Attributes dropped: not allowed, or with a refused URL or CSS. */
	size_t removed_attributes;
	/* Why html_sanitize returned -1 (a static string), else NULL. */
	const char *error;
};

/* Sanitizes HTML (a whole document or a fragment, converted to UTF-8 by
 * the caller: invalid UTF-8 becomes U+FFFD) and appends the content of its
 * body, as a fragment to put inside <body>, to out. opt may be NULL (no
 * remote images, no cid: images); result may be NULL.
 *
 * Returns 0, or -1 when a limit above is crossed, when the output would
 * not pass the checks of the input itself (over SANITIZE_MAX_INPUT bytes
 * or SANITIZE_MAX_TAGS tags: then it could not be sanitized again), or
 * when out cannot take it (its maximum). On -1 nothing at all is appended
 * to out (no escaped-text fallback: the caller chooses, e.g. the
 * text/plain alternative or a download) and result->error says why; the
 * counts are zero. Never fails on malformed HTML.
 *
 * Does not keep pointers to html or out after returning, and may run on
 * several threads at once. The first call installs a SIGABRT handler that
 * turns a failed assertion inside Gumbo (some input triggers them) into
 * -1; any other abort goes to the handler installed before, or ends the
 * process as usual. */
int html_sanitize(const uint8_t *html, size_t len,
		  const struct sanitize_options *opt, struct buf *out,
		  struct sanitize_result *result);

#endif
