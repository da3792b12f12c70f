/* test_sanitize.c: unit tests for src/http/sanitize.c.
 *
 * Exact outputs for the allowlists, escaping, URL rules, cid: images,
 * remote images, CSS, the layout rules that keep the output stable and the
 * depth limit; the limits that refuse input; stability (sanitizing the
 * output again gives the same bytes); and every vector of tests/hostile,
 * whose output is parsed again with Gumbo and checked by rules written
 * here from the policy, independently of the sanitizer's own tables.
 *
 *   test_http_sanitize          runs the tests
 *   test_http_sanitize FILE...  prints the sanitized form of each FILE */
#include "unit.h"

#include "../../support/html_oracle.h"

#include "core/utf8.h"
#include "http/sanitize.h"

#include <ctype.h>
#include <dirent.h>
#include <gumbo.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers ---- */

#define CID_URL "data:image/png;base64,Y2lk"

/* Knows one cid: "logo@example". */
static const char *resolve_cid(const char *cid, size_t len, void *context)
{
	(void)context;
	return len == 12 && memcmp(cid, "logo@example", 12) == 0 ? CID_URL
								 : NULL;
}

enum {
	REMOTE = 1 << 0, /* remote_images */
	CID = 1 << 1,	 /* resolve_cid */
};

static struct sanitize_options options_of(unsigned flags)
{
	struct sanitize_options opt = {
		.remote_images = (flags & REMOTE) != 0,
		.resolve_cid = (flags & CID) ? resolve_cid : NULL,
	};
	return opt;
}

static bool read_file(const char *path, struct buf *out)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return false;
	uint8_t chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(out, chunk, n);
	fclose(f);
	return true;
}

/* Sanitizes html into out (emptied first); returns html_sanitize's
 * result. */
static int sanitize(struct slice html, unsigned flags, struct buf *out,
		    struct sanitize_result *result)
{
	struct sanitize_options opt = options_of(flags);
	buf_reset(out);
	return html_sanitize(html.p, html.n, &opt, out, result);
}

/* The oracle, with the hostile corpus's hosts. */
static const char *unsafe_in_test(struct slice html, bool remote)
{
	return html_oracle_unsafe(html, remote, true);
}

/* ---- exact outputs ---- */

static const struct {
	const char *in;
	const char *out;
	unsigned flags;
} cases[] = {
	/* Text, escaping, the document around the body. */
	{"", "", 0},
	{"Hello", "Hello", 0},
	{"  \n\t Hello  ", "Hello  ", 0},
	{"a < b & c > d \"q\" 'a'", "a &lt; b &amp; c &gt; d \"q\" 'a'", 0},
	{"&lt;script&gt;&amp;amp;&nbsp;&copy;&#x1F600;",
	 "&lt;script&gt;&amp;amp;\xc2\xa0\xc2\xa9\xf0\x9f\x98\x80", 0},
	{"<!DOCTYPE html><html lang=en><head><title>T</title><meta "
	 "charset=utf-8></head><body bgcolor=red><p>x</p></body></html>",
	 "<p>x</p>", 0},
	{"<p>a<!-- comment --><?php echo 1 ?>b</p>", "<p>ab</p>", 0},
	{"<p title='a\"b&amp;c<d>'>x</p>",
	 "<p title=\"a&quot;b&amp;c&lt;d&gt;\">x</p>", 0},
	{"<p>a\r\nb\rc&#13;d</p>", "<p>a\nb\nc\nd</p>", 0},
	{"x\xc3\x28y\xff\xed\xa0\x80z\xf4\x90\x80\x80",
	 "x\xef\xbf\xbd(y\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdz"
	 "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd",
	 0},
	{"a&#1;b&#x7f;c&#xfffe;d&#0;e",
	 "a\xef\xbf\xbd"
	 "b\xef\xbf\xbd"
	 "c\xef\xbf\xbd"
	 "d\xef\xbf\xbd"
	 "e",
	 0},
	{"\xef\xbb\xbfHi", "Hi", 0},
	{"&#xfeff; x", "x", 0},
	/* Elements: kept, dropped with content, unwrapped. */
	{"<b>b</b><i>i</i><u>u</u><s>s</s><em>e</em><strong>s</strong>"
	 "<sub>1</sub><sup>2</sup><tt>t</tt><strike>k</strike>",
	 "<b>b</b><i>i</i><u>u</u><s>s</s><em>e</em><strong>s</strong>"
	 "<sub>1</sub><sup>2</sup><tt>t</tt><strike>k</strike>",
	 0},
	{"<blockquote><p>q</p></blockquote><hr><br><wbr>",
	 "<blockquote><p>q</p></blockquote><hr><br><wbr>", 0},
	{"<ol start=3 reversed type=a><li value=5>x</ol><ul type=disc><li "
	 "type=square>y</ul>",
	 "<ol start=\"3\" reversed=\"\" type=\"a\"><li value=\"5\">x</li></ol>"
	 "<ul type=\"disc\"><li type=\"square\">y</li></ul>",
	 0},
	{"<dl><dt>t<dd>d</dl><details open><summary>s</summary>d</details>",
	 "<dl><dt>t</dt><dd>d</dd></dl><details open=\"\"><summary>s</summary>"
	 "d</details>",
	 0},
	{"<font face=Arial size=2 color=red>f</font><center>c</center>",
	 "<font face=\"Arial\" size=\"2\" color=\"red\">f</font><center>c"
	 "</center>",
	 0},
	{"<time datetime=2024-01-01>t</time><del datetime=x cite=y>d</del>",
	 "<time datetime=\"2024-01-01\">t</time><del datetime=\"x\">d</del>",
	 0},
	{"a<script>alert(1)</script>b<noscript>n</noscript>c", "abc", 0},
	{"a<style>p{}</style>b<iframe src=x>i</iframe>c<object>o</object>d",
	 "abcd", 0},
	{"a<form><input value=x><button>b</button><select><option>o</select>"
	 "<textarea>t</textarea></form>z",
	 "az", 0},
	{"a<svg><circle/><text>t</text></svg>b<math><mi>x</mi></math>c", "abc",
	 0},
	{"a<video><source src=x></video><audio></audio><canvas>c</canvas>b",
	 "ab", 0},
	{"a<template><b>t</b></template>b<dialog>d</dialog>c<portal>p</portal>"
	 "d",
	 "abcd", 0},
	{"a<xmp><b></xmp>b<title>t</title>c<noembed>n</noembed>d", "abcd", 0},
	{"<x-custom onclick=1><b>k</b></x-custom><foo>f</foo><big>B</big>"
	 "<label>l</label><nobr>n</nobr><marquee>m</marquee>",
	 "<b>k</b>fBlnm", 0},
	{"<mglyph>a</mglyph><malignmark>b</malignmark>c", "c", 0},
	{"a<plaintext><b>rest", "a", 0},
	/* Attributes. */
	{"<p id=x class=y name=z onclick=1 ONMOUSEOVER=2 data-x=1 "
	 "xml:lang=en title=t>p</p>",
	 "<p title=\"t\">p</p>", 0},
	{"<td colspan=2>x</td><table><tr><td colspan=2 rowspan=3 nowrap "
	 "background=x.gif headers=h scope=row>c</table>",
	 "x<table><tbody><tr><td colspan=\"2\" rowspan=\"3\" nowrap=\"\" "
	 "headers=\"h\" scope=\"row\">c</td></tr></tbody></table>",
	 0},
	{"<table border=1 cellpadding=2 cellspacing=0 width=100% "
	 "bgcolor=#fff align=center summary=s><tr valign=top><td>c</table>",
	 "<table border=\"1\" cellpadding=\"2\" cellspacing=\"0\" "
	 "width=\"100%\" bgcolor=\"#fff\" align=\"center\"><tbody><tr "
	 "valign=\"top\"><td>c</td></tr></tbody></table>",
	 0},
	{"<img src=x.png srcset=y.png alt=a width=10 height=20 border=0 "
	 "hspace=1 vspace=2 align=left usemap=#m>",
	 "<img alt=\"a\" width=\"10\" height=\"20\" border=\"0\" hspace=\"1\" "
	 "vspace=\"2\" align=\"left\">",
	 0},
	{"<div colspan=2 start=1 reversed type=x span=2 datetime=x open "
	 "value=1 noshade nowrap>d</div>",
	 "<div>d</div>", 0},
	{"<span href=https://x.example/ src=https://x.example/>s</span>",
	 "<span>s</span>", 0},
	{"<p dir=rtl lang=ar><bdo dir=ltr>b</bdo></p>",
	 "<p dir=\"rtl\" lang=\"ar\"><bdo dir=\"ltr\">b</bdo></p>", 0},
	/* Links. */
	{"<a href=https://example.com/a?b=1&amp;c=2#d>l</a>",
	 "<a href=\"https://example.com/a?b=1&amp;c=2#d\" target=\"_blank\" "
	 "rel=\"noopener noreferrer\">l</a>",
	 0},
	{"<a href=' HTTP://Example.com/ ' target=_self rel=opener>l</a>",
	 "<a href=\"HTTP://Example.com/\" target=\"_blank\" "
	 "rel=\"noopener noreferrer\">l</a>",
	 0},
	{"<a href=\"mailto:a@example.com?subject=Hi%20there\">m</a>",
	 "<a href=\"mailto:a@example.com?subject=Hi%20there\" "
	 "target=\"_blank\" rel=\"noopener noreferrer\">m</a>",
	 0},
	{"<a href=\"ht\ntp\ts://x.example/\">l</a>",
	 "<a href=\"https://x.example/\" target=\"_blank\" "
	 "rel=\"noopener noreferrer\">l</a>",
	 0},
	{"<a href=javascript:alert(1)>1</a><a href=JaVaScRiPt:x>2</a>"
	 "<a href=\"java&#x09;script:x\">3</a><a href=\" &#14;javascript:x\">4"
	 "</a><a href=vbscript:x>5</a><a href=data:text/html,x>6</a>"
	 "<a href=file:///etc/passwd>7</a><a href=ftp://x/>8</a>",
	 "<a>1</a><a>2</a><a>3</a><a>4</a><a>5</a><a>6</a><a>7</a><a>8</a>", 0},
	{"<a href=/relative>1</a><a href=#frag>2</a><a href=//x.example/>3</a>"
	 "<a href=?q>4</a><a href=\"https&#58;//x\">5</a><a href=\"http:&#1;x\">"
	 "6</a>",
	 "<a>1</a><a>2</a><a>3</a><a>4</a><a href=\"https://x\" "
	 "target=\"_blank\" rel=\"noopener noreferrer\">5</a><a>6</a>",
	 0},
	{"<a name=top>anchor</a>", "<a>anchor</a>", 0},
	/* Images. */
	{"<img src=https://t.example/p.gif><img src=http://t.example/p.gif>",
	 "<img><img>", 0},
	{"<img src=https://t.example/p.gif><img src=HTTP://t.example/p.gif>",
	 "<img src=\"https://t.example/p.gif\"><img "
	 "src=\"HTTP://t.example/p.gif\">",
	 REMOTE},
	{"<img src=//t.example/p.gif><img src=/p.gif><img src=p.gif>",
	 "<img><img><img>", REMOTE},
	{"<img src=cid:logo@example><img src=CID:logo@example><img "
	 "src=cid:other@example>",
	 "<img src=\"" CID_URL "\"><img src=\"" CID_URL "\"><img>", CID},
	{"<img src=cid:logo@example>", "<img>", 0},
	{"<img src=\" cid:logo@example\n\"><img src=cid:><img src=cid>",
	 "<img src=\"" CID_URL "\"><img><img>", CID},
	{"<img src=\"data:image/png;base64,iVBORw0KGgo=\"><img "
	 "src=\"DATA:IMAGE/JPEG;BASE64,/9j/4A==\"><img "
	 "src=\"data:image/gif;base64,R0lG\"><img "
	 "src=\"data:image/webp;base64,UklG\">",
	 "<img src=\"data:image/png;base64,iVBORw0KGgo=\"><img "
	 "src=\"DATA:IMAGE/JPEG;BASE64,/9j/4A==\"><img "
	 "src=\"data:image/gif;base64,R0lG\"><img "
	 "src=\"data:image/webp;base64,UklG\">",
	 0},
	{"<img src=\"data:image/svg+xml;base64,PHN2Zz4=\"><img "
	 "src=\"data:text/html;base64,PA==\"><img "
	 "src=\"data:image/png,raw\"><img "
	 "src=\"data:image/png;base64,a<b\"><img src=javascript:x><img "
	 "src=file:///x.png>",
	 "<img><img><img><img><img><img>", REMOTE},
	/* Style attributes. */
	{"<p style=\"color: red; background-color:#fff;FONT-WEIGHT : bold ; "
	 "margin:0 auto!important\">x</p>",
	 "<p style=\"color: red; background-color: #fff; font-weight: bold; "
	 "margin: 0 auto !important\">x</p>",
	 0},
	{"<p style=\"font-family: 'Segoe UI', &quot;Helvetica Neue&quot;, "
	 "sans-serif; font: 12px/1.5 Arial\">x</p>",
	 "<p style=\"font-family: 'Segoe UI', &quot;Helvetica Neue&quot;, "
	 "sans-serif; font: 12px/1.5 Arial\">x</p>",
	 0},
	{"<p style=\"color: rgb(1, 2, 3); border: 1px solid rgba(0,0,0,.5); "
	 "width: calc(100% - 2 * 10px)\">x</p>",
	 "<p style=\"color: rgb(1, 2, 3); border: 1px solid rgba(0,0,0,.5); "
	 "width: calc(100% - 2 * 10px)\">x</p>",
	 0},
	{"<p style=\"position:fixed;top:0;z-index:9;cursor:pointer;content:'x';"
	 "background-image:x;border-image:none;color:red\">x</p>",
	 "<p style=\"color: red\">x</p>", 0},
	{"<p style=\"background:url(https://t.example/x);color:blue\">x</p>",
	 "<p style=\"color: blue\">x</p>", 0},
	{"<p style=\"width:expression(alert(1));color:red;background:"
	 "image-set('x' 1x);height:var(--x);margin:attr(x)\">x</p>",
	 "<p style=\"color: red\">x</p>", 0},
	{"<p style=\"color:red;background:u\\72l(x)\">a</p><p "
	 "style=\"color:red/*x*/\">b</p><p style=\"color:'red\">c</p><p "
	 "style=\"color:red;width:calc(1px\">d</p>",
	 "<p>a</p><p>b</p><p>c</p><p>d</p>", 0},
	{"<p style=\"display:block\">a</p><p style=\"display:flex\">b</p><p "
	 "style=\"display: Table-Cell\">c</p><p style=\"display:none "
	 "!important\">d</p>",
	 "<p style=\"display: block\">a</p><p>b</p><p style=\"display: "
	 "Table-Cell\">c</p><p style=\"display: none !important\">d</p>",
	 0},
	{"<p style=\"color:red !imp; width:1px ! important; height: 2px!x\">a"
	 "</p><p style=\"color:red;;;\">b</p><p style=\"color\">c</p><p "
	 "style=\"font-family:'a:b'\">d</p><p style=\"color:#f00{}\">e</p>",
	 "<p style=\"width: 1px !important\">a</p><p style=\"color: red\">b</p>"
	 "<p>c</p><p>d</p><p>e</p>",
	 0},
	{"<p style=\"font-family:&#x5FAE;&#x8F6F;&#x96C5;&#x9ED1;;color:&#x81;"
	 "\">x</p>",
	 "<p style=\"font-family: \xe5\xbe\xae\xe8\xbd\xaf\xe9\x9b\x85\xe9\xbb"
	 "\x91\">x</p>",
	 0},
	/* Style sheets. */
	{"<style>p { color: red } .c, #i, a:hover, td > p, h1 + h2, a ~ b, * "
	 "{ margin: 0 }</style>x",
	 "<style>p { color: red }\n.c, #i, a:hover, td > p, h1 + h2, a ~ b, * "
	 "{ margin: 0 }\n</style>x",
	 0},
	{"<style><!-- /* client styles */ BODY{margin:0;padding:0} "
	 "a[href]{color:red} a::before{color:red} p:nth-child(2){color:red} "
	 "div:not(.x){color:red} x{position:absolute} --></style>x",
	 "<style>body { margin: 0; padding: 0 }\n</style>x", 0},
	{"<style>@import url(x.css); @charset \"utf-8\"; @font-face{font-family:"
	 "x;src:url(x)} @media only screen and (max-width:600px) { td "
	 "{width:100%!important} @font-face{src:url(y)} } @media print{} "
	 "@supports (display:grid){p{color:red}} @media url(x){p{color:red}} "
	 "p{color:blue}</style>",
	 "<style>@media only screen and (max-width:600px) {\ntd { width: 100% "
	 "!important }\n}\np { color: blue }\n</style>",
	 0},
	{"<style>p{background:u\\72l(x)} .a\\:b{color:red} p{color:red}"
	 "</style>",
	 "<style>p { color: red }\n</style>", 0},
	{"<style>p{color:red}</style><style>@import 'x';</style>",
	 "<style>p { color: red }\n</style>", 0},
	{"<style>p{color:red</style>", "<style>p { color: red }\n</style>", 0},
	{"<style>p{font-family:\"</style><script>x</script>\"}</style>", "\"}",
	 0},
	/* Layout the sanitized output must keep when parsed again. */
	{"<pre>\n\nx\n</pre>", "<pre>\n\nx\n</pre>", 0},
	{"<pre>x</pre>", "<pre>\nx</pre>", 0},
	{"<table><tr><td>a<td>b<tr><th>c</table>",
	 "<table><tbody><tr><td>a</td><td>b</td></tr><tr><th>c</th></tr>"
	 "</tbody></table>",
	 0},
	{"<table> <caption>c</caption><colgroup><col span=2></colgroup>"
	 "<thead><tr><th>h</thead><tfoot><tr><td>f</tfoot></table>",
	 "<table> <caption>c</caption><colgroup><col span=\"2\"></colgroup>"
	 "<thead><tr><th>h</th></tr></thead><tfoot><tr><td>f</td></tr>"
	 "</tfoot></table>",
	 0},
	{"<table>x<tr><td>y</table>",
	 "x<table><tbody><tr><td>y</td></tr>"
	 "</tbody></table>",
	 0},
	{"<p>a<foo><div>b</div></foo></p>", "<p>a</p><div>b</div><p></p>", 0},
	{"<p>a<marquee><div>b</div></marquee>c</p>", "<p>abc</p>", 0},
	{"<h1>a<foo><h2>b</h2></foo></h1>", "<h1>ab</h1>", 0},
	{"<h1>a<span><h2>b</h2></span></h1>",
	 "<h1>a<span><h2>b</h2></span></h1>", 0},
	{"<li>a<menu><li>b</li></menu></li>", "<li>ab</li>", 0},
	{"<ul><li>a<ul><li>b</ul></ul>",
	 "<ul><li>a<ul><li>b</li></ul></li>"
	 "</ul>",
	 0},
	{"<p><marquee><h1>t</h1></marquee></p>", "<p>t</p>", 0},
	{"<a href=https://a/>x<a href=https://b/>y</a>",
	 "<a href=\"https://a/\" target=\"_blank\" rel=\"noopener "
	 "noreferrer\">x</a><a href=\"https://b/\" target=\"_blank\" "
	 "rel=\"noopener noreferrer\">y</a>",
	 0},
	{"<table><style>td{color:red}</style><tr> <td>x</td> </tr></table>",
	 "<table><style>td { color: red }\n</style><tbody><tr> <td>x</td> "
	 "</tr></tbody></table>",
	 0},
	{"<html><body>a</body></html>b<p>c", "ab<p>c</p>", 0},
	{"<dl><dt>a<fieldset><dd>b</dd></fieldset></dl>",
	 "<dl><dt>ab</dt>"
	 "</dl>",
	 0},
	{"<a href=https://a/>a<marquee><a href=https://b/>b</a></marquee></a>",
	 "<a href=\"https://a/\" target=\"_blank\" rel=\"noopener "
	 "noreferrer\">ab</a>",
	 0},
	{"<a>a<table><tr><td><a>b</a></td></tr></table></a>",
	 "<a>a<table><tbody><tr><td><a>b</a></td></tr></tbody></table></a>", 0},
	{"<b><p>x</b>y</p>", "<b></b><p><b>x</b>y</p>", 0},
	{"<p>a<table><tr><td>b</table>",
	 "<p>a<table><tbody><tr><td>b</td>"
	 "</tr></tbody></table></p>",
	 0},
	{"<!DOCTYPE html><p>a<table><tr><td>b</table>",
	 "<p>a</p><table><tbody><tr><td>b</td></tr></tbody></table>", 0},
	{"<style>p{color:red}</style> \n <p>x</p>",
	 "<style>p { color: red }\n</style> \n <p>x</p>", 0},
};

static void test_cases(void)
{
	struct buf out, again;
	buf_init(&out, 1 << 20);
	buf_init(&again, 1 << 20);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct sanitize_result result;
		int r = sanitize(slice_cstr(cases[i].in), cases[i].flags, &out,
				 &result);
		CHECK_CASE(r == 0 && result.error == NULL, i, cases[i].in);
		const char *got = buf_cstr(&out);
		CHECK_CASE(strcmp(got, cases[i].out) == 0, i, cases[i].in);
		if (strcmp(got, cases[i].out) != 0)
			fprintf(stderr, "  got:    \"%s\"\n  wanted: \"%s\"\n",
				got, cases[i].out);
		CHECK_CASE(unsafe_in_test(buf_slice(&out),
					  cases[i].flags & REMOTE) == NULL,
			   i, cases[i].in);
		r = sanitize(buf_slice(&out), cases[i].flags, &again, NULL);
		CHECK_CASE(r == 0 && again.n == out.n &&
				   memcmp(again.p, out.p, out.n) == 0,
			   i, cases[i].in);
	}
	buf_free(&out);
	buf_free(&again);
}

/* ---- counts, options, output room ---- */

static void test_counts(void)
{
	struct buf out;
	buf_init(&out, 1 << 20);
	struct sanitize_result r;
	const char *html =
		"<img src=https://a/1.gif><img src=http://a/2.gif onerror=x>"
		"<img src=cid:x><script>s</script><iframe></iframe>"
		"<p class=c id=i style=\"position:fixed\">p</p><foo>f</foo>";
	CHECK(sanitize(slice_cstr(html), 0, &out, &r) == 0);
	CHECK(r.remote_images_blocked == 2);
	CHECK(r.removed_elements == 2);
	/* Two remote sources, onerror, the cid: source, class, id, style. */
	CHECK(r.removed_attributes == 7);
	CHECK(r.error == NULL);
	CHECK(sanitize(slice_cstr(html), REMOTE, &out, &r) == 0);
	CHECK(r.remote_images_blocked == 0 && r.removed_attributes == 5);

	/* Defaults when opt and result are NULL; out is appended to. */
	buf_reset(&out);
	buf_append_cstr(&out, "before:");
	CHECK(html_sanitize((const uint8_t *)"<img src=https://a/>x", 21, NULL,
			    &out, NULL) == 0);
	CHECK(strcmp(buf_cstr(&out), "before:<img>x") == 0);

	/* An output that does not fit leaves out as it was. */
	struct buf small;
	buf_init(&small, 13);
	buf_append_cstr(&small, "12345");
	CHECK(html_sanitize((const uint8_t *)"<p>abcdef</p>", 13, NULL, &small,
			    &r) == -1);
	CHECK(small.n == 5 && !buf_overflowed(&small) && r.error != NULL);
	CHECK(html_sanitize((const uint8_t *)"<b>a</b>", 8, NULL, &small, &r) ==
	      0);
	CHECK(strcmp(buf_cstr(&small), "12345<b>a</b>") == 0);
	buf_free(&small);
	buf_free(&out);
}

/* ---- limits ---- */

static void repeat(struct buf *b, const char *s, size_t times)
{
	for (size_t i = 0; i < times; i++)
		buf_append_cstr(b, s);
}

static size_t count(struct slice s, const char *needle)
{
	size_t n = 0, m = strlen(needle);
	for (size_t i = 0; i + m <= s.n; i++)
		if (memcmp(s.p + i, needle, m) == 0)
			n++;
	return n;
}

static void test_limits(void)
{
	struct buf in, out, again;
	struct sanitize_result r;
	buf_init(&in, 64u << 20);
	buf_init(&out, 64u << 20);
	buf_init(&again, 64u << 20);

	/* Size: up to the limit is fine, one more byte is not. */
	repeat(&in, "a", SANITIZE_MAX_INPUT);
	CHECK(sanitize(buf_slice(&in), 0, &out, &r) == 0);
	CHECK(out.n == SANITIZE_MAX_INPUT);
	buf_append_cstr(&in, "a");
	buf_reset(&out);
	buf_append_cstr(&out, "kept");
	struct sanitize_options opt = {0};
	CHECK(html_sanitize(in.p, in.n, &opt, &out, &r) == -1);
	CHECK(strcmp(buf_cstr(&out), "kept") == 0 && r.error != NULL);

	/* 200,000 nested elements are refused before Gumbo sees them. */
	buf_reset(&in);
	repeat(&in, "<div>", 200000);
	CHECK(sanitize(buf_slice(&in), 0, &out, &r) == -1);
	CHECK(r.error != NULL && strstr(r.error, "tags") != NULL);
	buf_reset(&in);
	repeat(&in, "<b>", 200000);
	CHECK(sanitize(buf_slice(&in), 0, &out, &r) == -1);

	/* As many tags as allowed, not nested, are fine. */
	buf_reset(&in);
	repeat(&in, "<br>", SANITIZE_MAX_TAGS);
	CHECK(sanitize(buf_slice(&in), 0, &out, &r) == 0);
	CHECK(out.n == 4u * SANITIZE_MAX_TAGS);
	CHECK(unsafe_in_test(buf_slice(&out), false) == NULL);

	/* Attributes of one tag: the limit counts wherever a tag may start,
	 * even inside another tag's quotes. */
	buf_reset(&in);
	buf_append_cstr(&in, "<p");
	for (size_t i = 0; i < SANITIZE_MAX_ATTRIBUTES; i++)
		buf_printf(&in, " a%zu", i);
	buf_append_cstr(&in, ">x");
	CHECK(sanitize(buf_slice(&in), 0, &out, &r) == 0);
	CHECK(strcmp(buf_cstr(&out), "<p>x</p>") == 0);
	buf_reset(&in);
	buf_append_cstr(&in, "<p title=\"<b");
	for (size_t i = 0; i <= SANITIZE_MAX_ATTRIBUTES; i++)
		buf_printf(&in, " a%zu", i);
	buf_append_cstr(&in, "\">x");
	CHECK(sanitize(buf_slice(&in), 0, &out, &r) == -1);
	CHECK(r.error != NULL && strstr(r.error, "attributes") != NULL);
	buf_reset(&in);
	repeat(&in, "<p a b c d e f>", 100000 / 2);
	CHECK(sanitize(buf_slice(&in), 0, &out, &r) == 0);

	/* Depth: past the limit only text is kept, and a table needs room
	 * for its rows and cells. */
	buf_reset(&in);
	repeat(&in, "<b>", 1000);
	buf_append_cstr(&in,
			"deep<i>er</i><script>no</script><style>p{}</style>"
			"<br>");
	CHECK(sanitize(buf_slice(&in), 0, &out, &r) == 0);
	CHECK(count(buf_slice(&out), "<b>") == SANITIZE_MAX_DEPTH);
	CHECK(count(buf_slice(&out), "</b>") == SANITIZE_MAX_DEPTH);
	CHECK(strstr(buf_cstr(&out), "<b>deeper</b>") != NULL);
	CHECK(unsafe_in_test(buf_slice(&out), false) == NULL);
	CHECK(sanitize(buf_slice(&out), 0, &again, &r) == 0);
	CHECK(again.n == out.n && memcmp(again.p, out.p, out.n) == 0);
	for (size_t d = SANITIZE_MAX_DEPTH - 5; d <= SANITIZE_MAX_DEPTH; d++) {
		buf_reset(&in);
		repeat(&in, "<div>", d);
		buf_append_cstr(&in, "<table><tr><td>cell<p>p</table>after");
		CHECK_CASE(sanitize(buf_slice(&in), 0, &out, &r) == 0, d,
			   "table at depth");
		bool table = d + 4 <= SANITIZE_MAX_DEPTH;
		CHECK_CASE((strstr(buf_cstr(&out), "<td>cell") != NULL) ==
				   table,
			   d, "table at depth");
		CHECK_CASE(strstr(buf_cstr(&out), "cell") != NULL, d,
			   "table at depth");
		CHECK(sanitize(buf_slice(&out), 0, &again, &r) == 0);
		CHECK_CASE(again.n == out.n &&
				   memcmp(again.p, out.p, out.n) == 0,
			   d, "table at depth");
	}

	/* Misnested formatting elements make Gumbo clone them for every
	 * later block: the memory or time budget stops it. */
	buf_reset(&in);
	buf_append_cstr(&in, "<div>");
	for (size_t i = 0; i < 2000; i++)
		buf_printf(&in, "<b a=%zu>", i);
	buf_append_cstr(&in, "</div>");
	repeat(&in, "<div>x</div>", 60000);
	CHECK(sanitize(buf_slice(&in), 0, &out, &r) == -1);
	CHECK(r.error != NULL && strstr(r.error, "parse") != NULL);

	/* Nesting under the tag limit that Gumbo would take seconds over. */
	buf_reset(&in);
	for (size_t i = 0; i < 60000; i++)
		buf_printf(&in, "<b a=%zu>", i);
	CHECK(sanitize(buf_slice(&in), 0, &out, &r) == -1);
	CHECK(r.error != NULL && strstr(r.error, "too long") != NULL);

	buf_free(&in);
	buf_free(&out);
	buf_free(&again);
}

/* ---- Gumbo's assertions ---- */

/* Found by the fuzz target: Gumbo 0.10.1 asserts in handle_in_body when
 * </body> meets the stack that templates in foreign content leave. */
static const char *const gumbo_asserts[] = {
	"<svg><tfoot><foreignObject><template></template><td><tbody><p>"
	"<template></template></body>",
	"<math><tfoot><mi><template></template><td><tbody><p><template>"
	"</template></body>",
};

static void test_gumbo_asserts(void)
{
	struct buf out;
	buf_init(&out, 1 << 20);
	for (size_t i = 0; i < ARRAY_SIZE(gumbo_asserts); i++) {
		struct sanitize_result r;
		buf_reset(&out);
		buf_append_cstr(&out, "kept");
		struct sanitize_options opt = {0};
		CHECK_CASE(html_sanitize((const uint8_t *)gumbo_asserts[i],
					 strlen(gumbo_asserts[i]), &opt, &out,
					 &r) == -1,
			   i, gumbo_asserts[i]);
		CHECK_CASE(r.error != NULL && strstr(r.error, "parser") != NULL,
			   i, gumbo_asserts[i]);
		CHECK_CASE(strcmp(buf_cstr(&out), "kept") == 0, i,
			   gumbo_asserts[i]);
		/* And the next call works as before. */
		CHECK(sanitize(slice_cstr("<b>x</b>"), 0, &out, &r) == 0);
		CHECK(strcmp(buf_cstr(&out), "<b>x</b>") == 0);
	}
	/* Outside Gumbo an abort still ends the process, after an assertion
	 * caught too. */
	fflush(NULL);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct buf b;
		buf_init(&b, 1 << 10);
		if (html_sanitize((const uint8_t *)gumbo_asserts[0],
				  strlen(gumbo_asserts[0]), NULL, &b,
				  NULL) == -1)
			abort();
		_exit(0);
	}
	int status = 0;
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
	buf_free(&out);
}

/* ---- the hostile corpus ---- */

static const char *hostile_dir(void)
{
	static const char *const candidates[] = {
		"tests/hostile",
		"../tests/hostile",
	};
	const char *env = getenv("HOSTILE_CORPUS");
	if (env != NULL)
		return env;
	for (size_t i = 0; i < ARRAY_SIZE(candidates); i++) {
		DIR *d = opendir(candidates[i]);
		if (d != NULL) {
			closedir(d);
			return candidates[i];
		}
	}
	return NULL;
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_hostile(void)
{
	const char *dir = hostile_dir();
	CHECK(dir != NULL);
	if (dir == NULL) {
		fprintf(stderr, "tests/hostile not found: run from the source "
				"or build directory, or set HOSTILE_CORPUS\n");
		return;
	}
	DIR *d = opendir(dir);
	char *names[512];
	size_t n = 0;
	for (struct dirent *e; (e = readdir(d)) != NULL && n < 512;) {
		size_t len = strlen(e->d_name);
		if (len > 5 && strcmp(e->d_name + len - 5, ".html") == 0)
			names[n++] = xstrdup(e->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(*names), compare_names);
	CHECK(n >= 45);

	struct buf html, out, again;
	buf_init(&html, 1 << 24);
	buf_init(&out, 1 << 24);
	buf_init(&again, 1 << 24);
	for (size_t i = 0; i < n; i++) {
		char *path = xasprintf("%s/%s", dir, names[i]);
		buf_reset(&html);
		CHECK_CASE(read_file(path, &html), i, names[i]);
		for (unsigned flags = 0; flags <= (REMOTE | CID); flags++) {
			struct sanitize_result r;
			CHECK_CASE(sanitize(buf_slice(&html), flags, &out,
					    &r) == 0,
				   i, names[i]);
			const char *why =
				unsafe_in_test(buf_slice(&out), flags & REMOTE);
			CHECK_CASE(why == NULL, i, names[i]);
			if (why != NULL)
				fprintf(stderr, "  %s: %s\n", why,
					buf_cstr(&out));
			CHECK_CASE(sanitize(buf_slice(&out), flags, &again,
					    NULL) == 0 &&
					   again.n == out.n &&
					   memcmp(again.p, out.p, out.n) == 0,
				   i, names[i]);
		}
		free(path);
		free(names[i]);
	}
	buf_free(&html);
	buf_free(&out);
	buf_free(&again);
}

/* The oracle itself must see what it is for. */
static void test_oracle(void)
{
	static const struct {
		const char *html;
		bool remote;
	} bad[] = {
		{"<script>x</script>", false},
		{"<img src=x onerror=y>", false},
		{"<a href=javascript:x>", false},
		{"<img src=https://t/p.gif>", false},
		{"<p style=\"background:url(x)\">", false},
		{"<p style=\"color: red; position: fixed\">", false},
		{"<style>p { z-index: 1 }</style>", false},
		{"<style>@import 'x';</style>", false},
		{"<svg></svg>", false},
		{"<p id=x>", false},
		{"<!-- c -->", false},
		{"<x-foo>", false},
		{"<body onload=x>", false},
		{"<a href=x target=_self>", false},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		CHECK_CASE(unsafe_in_test(slice_cstr(bad[i].html),
					  bad[i].remote) != NULL,
			   i, bad[i].html);
	CHECK(unsafe_in_test(slice_cstr("<img src=https://t/p.gif>"), true) ==
	      NULL);
	CHECK(unsafe_in_test(slice_cstr("<p style=\"color: red\">x</p>"),
			     false) == NULL);
}

static int dump(int argc, char **argv)
{
	struct buf html, out;
	buf_init(&html, 64u << 20);
	buf_init(&out, 256u << 20);
	for (int i = 1; i < argc; i++) {
		buf_reset(&html);
		if (!read_file(argv[i], &html)) {
			fprintf(stderr, "%s: cannot read\n", argv[i]);
			return 1;
		}
		struct sanitize_result r;
		int status = sanitize(buf_slice(&html), CID, &out, &r);
		fwrite(out.p, 1, out.n, stdout);
		fprintf(stderr,
			"%s: %s, %zu remote images blocked, %zu elements and "
			"%zu attributes removed\n",
			argv[i], status == 0 ? "ok" : r.error,
			r.remote_images_blocked, r.removed_elements,
			r.removed_attributes);
	}
	buf_free(&html);
	buf_free(&out);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1)
		return dump(argc, argv);
	test_oracle();
	test_cases();
	test_counts();
	test_hostile();
	test_gumbo_asserts();
	test_limits();
	return unit_result("http_sanitize");
}
