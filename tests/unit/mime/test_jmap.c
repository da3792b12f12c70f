/* test_jmap.c: unit tests for src/mime/jmap.c: the body parts and the
 * textBody / htmlBody / attachments lists of RFC 8621 4.1.4 (the RFC's own
 * example among them), file names (RFC 2231, RFC 2047), part content and
 * text with charsets and truncation, addresses, dates with their zone,
 * the preview, raw header values, and hostile structures. */
#include "unit.h"

#include "mime/jmap.h"
#include "mime/mime.h"

/* ---- helpers ---- */

static struct slice cs(const char *s)
{
	return slice_make(s, strlen(s));
}

static bool buf_is(const struct buf *b, const char *want)
{
	return b->n == strlen(want) &&
	       (b->n == 0 || memcmp(b->p, want, b->n) == 0);
}

/* The part ids of a list, separated by spaces. */
static void list_ids(const struct mime_jmap_body *b, const uint32_t *list,
		     size_t count, struct buf *out)
{
	buf_reset(out);
	for (size_t i = 0; i < count; i++) {
		if (i > 0)
			buf_append(out, " ", 1);
		buf_append_cstr(out, b->parts[list[i]].part_id);
	}
	buf_cstr(out);
}

/* Every part as "id type" ("*" for the top-level multipart's id),
 * separated by spaces. */
static void part_summary(const struct mime_jmap_body *b, struct buf *out)
{
	buf_reset(out);
	for (size_t i = 0; i < b->part_count; i++) {
		const struct mime_body_part *p = &b->parts[i];
		buf_printf(out, "%s%s %s", i > 0 ? " " : "",
			   p->part_id[0] != '\0' ? p->part_id : "*", p->type);
	}
	buf_cstr(out);
}

static bool no_duplicates(const uint32_t *list, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		for (size_t k = i + 1; k < count; k++) {
			if (list[i] == list[k])
				return false;
		}
	}
	return true;
}

static bool list_valid(const struct mime_jmap_body *b, const uint32_t *list,
		       size_t count)
{
	if (count > b->part_count || !no_duplicates(list, count))
		return false;
	for (size_t i = 0; i < count; i++) {
		if (list[i] >= b->part_count || b->parts[list[i]].multipart)
			return false;
	}
	return true;
}

static bool string_safe(const char *s, bool file_name)
{
	if (s == NULL)
		return true;
	if (*s == '\0')
		return false;
	for (const uint8_t *p = (const uint8_t *)s; *p; p++) {
		if (*p < 0x20 || *p == 0x7f)
			return false;
		if (file_name && (*p == '/' || *p == '\\'))
			return false;
	}
	return strlen(s) <= MIME_JMAP_MAX_VALUE;
}

/* What must hold of any message: a tree whose links agree, ids that
 * name their parts, lists of leaves, safe strings. Returns the number of
 * violations. */
static unsigned body_invariants(const struct mime_message *m,
				const struct mime_jmap_body *b)
{
	unsigned bad = 0;
	struct buf content;
	buf_init(&content, 64 << 20);
	if (b->part_count == 0 || b->part_count > MIME_MAX_PARTS)
		return 1;
	if (b->parts[0].parent != MIME_JMAP_NONE)
		bad++;
	for (size_t i = 0; i < b->part_count; i++) {
		const struct mime_body_part *p = &b->parts[i];
		if (i > 0 && (p->parent >= i || !b->parts[p->parent].multipart))
			bad++;
		if (!p->multipart && p->first_child != MIME_JMAP_NONE)
			bad++;
		if (p->first_child != MIME_JMAP_NONE &&
		    (p->first_child <= i ||
		     b->parts[p->first_child].parent != i))
			bad++;
		if (p->next_sibling != MIME_JMAP_NONE &&
		    (p->next_sibling <= i ||
		     b->parts[p->next_sibling].parent != p->parent))
			bad++;
		if (p->multipart != (strncmp(p->type, "multipart/", 10) == 0))
			bad++;
		if (strchr(p->type, '/') == NULL)
			bad++;
		if (!string_safe(p->name, true) ||
		    !string_safe(p->cid, false) ||
		    !string_safe(p->language, false) ||
		    !string_safe(p->location, false))
			bad++;
		bool root_multipart = i == 0 && p->multipart;
		if ((p->part_id[0] == '\0') != root_multipart)
			bad++;
		if (root_multipart)
			continue;
		buf_reset(&content);
		if (mime_part_content(m, p->part_id, &content) != 0)
			bad++;
		else if (!p->multipart && content.n != p->size)
			bad++;
		for (size_t k = 0; k < i; k++) {
			if (strcmp(b->parts[k].part_id, p->part_id) == 0)
				bad++;
		}
	}
	if (!list_valid(b, b->text_body, b->text_count) ||
	    !list_valid(b, b->html_body, b->html_count) ||
	    !list_valid(b, b->attachments, b->attachment_count))
		bad++;
	buf_free(&content);
	return bad;
}

/* ---- structure ---- */

static void test_structure(void)
{
	static const struct {
		const char *msg;
		const char *parts;
		const char *text, *html, *attachments;
	} cases[] = {
		/* 0: a single text/plain part, and none at all. */
		{"Subject: x\r\n\r\nhello\r\n", "1 text/plain", "1", "1", ""},
		{"Subject: x\r\n\r\n", "1 text/plain", "1", "1", ""},
		/* 2: alternative text and HTML. */
		{"Content-Type: multipart/alternative; boundary=b\r\n\r\n"
		 "--b\r\nContent-Type: text/plain\r\n\r\nplain\r\n"
		 "--b\r\nContent-Type: text/html\r\n\r\n<b>html</b>\r\n"
		 "--b--\r\n",
		 "* multipart/alternative 1 text/plain 2 text/html", "1", "2",
		 ""},
		/* 3: alternative with HTML only: it is the text too. */
		{"Content-Type: multipart/alternative; boundary=b\r\n\r\n"
		 "--b\r\nContent-Type: text/html\r\n\r\n<b>html</b>\r\n"
		 "--b--\r\n",
		 "* multipart/alternative 1 text/html", "1", "1", ""},
		/* 4: a non-text part in an alternative is an attachment. */
		{"Content-Type: multipart/alternative; boundary=b\r\n\r\n"
		 "--b\r\nContent-Type: text/plain\r\n\r\nplain\r\n"
		 "--b\r\nContent-Type: image/png\r\n\r\npng\r\n--b--\r\n",
		 "* multipart/alternative 1 text/plain 2 image/png", "1", "1",
		 "2"},
		/* 5: mixed with attachments; a named text part after the
		 * first is one too, the first is not. */
		{"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
		 "--b\r\nContent-Type: text/plain; name=first.txt\r\n\r\nA\r\n"
		 "--b\r\nContent-Type: application/pdf\r\n\r\nB\r\n"
		 "--b\r\nContent-Type: text/plain; name=notes.txt\r\n\r\nC\r\n"
		 "--b\r\nContent-Type: text/plain\r\n"
		 "Content-Disposition: attachment\r\n\r\nD\r\n"
		 "--b\r\nContent-Type: text/plain\r\n\r\nE\r\n--b--\r\n",
		 "* multipart/mixed 1 text/plain 2 application/pdf 3 "
		 "text/plain 4 text/plain 5 text/plain",
		 "1 5", "1 5", "2 3 4"},
		/* 6: an inline image between text parts: in both bodies,
		 * not an attachment. */
		{"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
		 "--b\r\nContent-Type: text/plain\r\n\r\nA\r\n"
		 "--b\r\nContent-Type: image/jpeg\r\n"
		 "Content-Disposition: inline; filename=a.jpg\r\n\r\nB\r\n"
		 "--b\r\nContent-Type: text/plain\r\n\r\nC\r\n--b--\r\n",
		 "* multipart/mixed 1 text/plain 2 image/jpeg 3 text/plain",
		 "1 2 3", "1 2 3", ""},
		/* 7: related: only its first part is inline. */
		{"Content-Type: multipart/related; boundary=b\r\n\r\n"
		 "--b\r\nContent-Type: text/html\r\n\r\n<img src=cid:i>\r\n"
		 "--b\r\nContent-Type: image/gif\r\nContent-ID: <i>\r\n\r\n"
		 "G\r\n--b--\r\n",
		 "* multipart/related 1 text/html 2 image/gif", "1", "1", "2"},
		/* 8: an attached message is an attachment and a leaf. */
		{"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
		 "--b\r\nContent-Type: text/plain\r\n\r\nA\r\n"
		 "--b\r\nContent-Type: message/rfc822\r\n\r\n"
		 "Content-Type: multipart/mixed; boundary=c\r\n\r\n"
		 "--c\r\n\r\ninner\r\n--c--\r\n"
		 "--b--\r\n",
		 "* multipart/mixed 1 text/plain 2 message/rfc822", "1", "1",
		 "2"},
		/* 9: no Content-Type: text/plain; in a digest,
		 * message/rfc822. */
		{"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
		 "--b\r\n\r\nA\r\n--b\r\nContent-Type: garbage\r\n\r\nB\r\n"
		 "--b\r\nContent-Type: multipart/digest; boundary=d\r\n\r\n"
		 "--d\r\n\r\nSubject: m\r\n\r\nC\r\n--d--\r\n--b--\r\n",
		 "* multipart/mixed 1 text/plain 2 text/plain 3 "
		 "multipart/digest 3.1 message/rfc822",
		 "1 2", "1 2", "3.1"},
		/* 10: a multipart without a boundary is text/plain. */
		{"Content-Type: multipart/mixed\r\n\r\nbody\r\n",
		 "1 text/plain", "1", "1", ""},
		/* 11: upper case types come out lower case. */
		{"Content-Type: TEXT/HTML; CHARSET=UTF-8\r\n\r\n<p>x</p>\r\n",
		 "1 text/html", "1", "1", ""},
		/* 12: an image alone is inline and in both bodies. */
		{"Content-Type: image/png\r\n\r\npng\r\n", "1 image/png", "1",
		 "1", ""},
		/* 13: an image in an alternative's mixed part: in textBody
		 * (which the HTML alternative does not share) and so an
		 * attachment too. */
		{"Content-Type: multipart/alternative; boundary=a\r\n\r\n"
		 "--a\r\nContent-Type: multipart/mixed; boundary=m\r\n\r\n"
		 "--m\r\nContent-Type: text/plain\r\n\r\nA\r\n"
		 "--m\r\nContent-Type: image/png\r\n\r\nB\r\n"
		 "--m--\r\n"
		 "--a\r\nContent-Type: text/html\r\n\r\nC\r\n--a--\r\n",
		 "* multipart/alternative 1 multipart/mixed 1.1 text/plain 1.2 "
		 "image/png 2 text/html",
		 "1.1 1.2", "2", "1.2"},
		/* 14: an alternative inside a mixed part of an
		 * alternative: the inner one may not push its HTML to the
		 * htmlBody the mixed level dropped (where the RFC's code
		 * would fail on null); the outer one then finds text only
		 * and copies it to htmlBody. */
		{"Content-Type: multipart/alternative; boundary=a\r\n\r\n"
		 "--a\r\nContent-Type: multipart/mixed; boundary=m\r\n\r\n"
		 "--m\r\nContent-Type: text/plain\r\n\r\nA\r\n"
		 "--m\r\nContent-Type: multipart/alternative; boundary=n\r\n"
		 "\r\n--n\r\nContent-Type: text/plain\r\n\r\nB\r\n"
		 "--n\r\nContent-Type: text/html\r\n\r\nC\r\n--n--\r\n"
		 "--m--\r\n--a--\r\n",
		 "* multipart/alternative 1 multipart/mixed 1.1 text/plain 1.2 "
		 "multipart/alternative 1.2.1 text/plain 1.2.2 text/html",
		 "1.1 1.2.1", "1.1 1.2.1", ""},
	};
	struct buf got;
	buf_init(&got, 1 << 20);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct mime_message *m = mime_parse(cs(cases[i].msg));
		struct mime_jmap_body b;
		mime_jmap_body(m, &b);
		part_summary(&b, &got);
		CHECK_CASE(buf_is(&got, cases[i].parts), i, cases[i].msg);
		if (!buf_is(&got, cases[i].parts))
			fprintf(stderr, "  parts \"%s\"\n", got.p);
		list_ids(&b, b.text_body, b.text_count, &got);
		CHECK_CASE(buf_is(&got, cases[i].text), i, cases[i].msg);
		if (!buf_is(&got, cases[i].text))
			fprintf(stderr, "  text \"%s\"\n", got.p);
		list_ids(&b, b.html_body, b.html_count, &got);
		CHECK_CASE(buf_is(&got, cases[i].html), i, cases[i].msg);
		if (!buf_is(&got, cases[i].html))
			fprintf(stderr, "  html \"%s\"\n", got.p);
		list_ids(&b, b.attachments, b.attachment_count, &got);
		CHECK_CASE(buf_is(&got, cases[i].attachments), i, cases[i].msg);
		if (!buf_is(&got, cases[i].attachments))
			fprintf(stderr, "  attachments \"%s\"\n", got.p);
		CHECK_CASE(body_invariants(m, &b) == 0, i, cases[i].msg);
		mime_jmap_body_free(&b);
		CHECK(b.parts == NULL && b.part_count == 0);
		mime_jmap_body_free(&b);
		mime_free(&m);
	}
	buf_free(&got);
}

/* The example of RFC 8621 4.1.4, each leaf holding its letter. */
static const char rfc_example[] =
	"Content-Type: multipart/mixed; boundary=o\r\n\r\n"
	"--o\r\nContent-Type: text/plain\r\n"
	"Content-Disposition: inline\r\n\r\nA\r\n"
	"--o\r\nContent-Type: multipart/mixed; boundary=m\r\n\r\n"
	"--m\r\nContent-Type: multipart/alternative; boundary=a\r\n\r\n"
	"--a\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n"
	"--x\r\nContent-Type: text/plain\r\n"
	"Content-Disposition: inline\r\n\r\nB\r\n"
	"--x\r\nContent-Type: image/jpeg\r\n"
	"Content-Disposition: inline\r\n\r\nC\r\n"
	"--x\r\nContent-Type: text/plain\r\n"
	"Content-Disposition: inline\r\n\r\nD\r\n"
	"--x--\r\n"
	"--a\r\nContent-Type: multipart/related; boundary=r\r\n\r\n"
	"--r\r\nContent-Type: text/html\r\n\r\nE\r\n"
	"--r\r\nContent-Type: image/jpeg\r\n\r\nF\r\n"
	"--r--\r\n"
	"--a--\r\n"
	"--m\r\nContent-Type: image/jpeg\r\n"
	"Content-Disposition: attachment\r\n\r\nG\r\n"
	"--m\r\nContent-Type: application/x-excel\r\n\r\nH\r\n"
	"--m\r\nContent-Type: message/rfc822\r\n\r\n"
	"Subject: J\r\n\r\nJ\r\n"
	"--m--\r\n"
	"--o\r\nContent-Type: text/plain\r\n"
	"Content-Disposition: inline\r\n\r\nK\r\n"
	"--o--\r\n";

/* The letters the parts of a list hold. */
static void list_letters(const struct mime_message *m,
			 const struct mime_jmap_body *b, const uint32_t *list,
			 size_t count, struct buf *out)
{
	struct buf content;
	buf_init(&content, 1 << 20);
	buf_reset(out);
	for (size_t i = 0; i < count; i++) {
		buf_reset(&content);
		mime_part_content(m, b->parts[list[i]].part_id, &content);
		/* The attached message: its body is "J". */
		uint8_t letter = content.n > 0 ? content.p[content.n - 1] : '?';
		buf_append(out, &letter, 1);
	}
	buf_cstr(out);
	buf_free(&content);
}

static void test_rfc_example(void)
{
	struct mime_message *m = mime_parse(cs(rfc_example));
	struct mime_jmap_body b;
	mime_jmap_body(m, &b);
	struct buf got;
	buf_init(&got, 1 << 20);
	/* textBody => [ A, B, C, D, K ], htmlBody => [ A, E, K ],
	 * attachments => [ C, F, G, H, J ] */
	list_letters(m, &b, b.text_body, b.text_count, &got);
	CHECK(buf_is(&got, "ABCDK"));
	list_letters(m, &b, b.html_body, b.html_count, &got);
	CHECK(buf_is(&got, "AEK"));
	list_letters(m, &b, b.attachments, b.attachment_count, &got);
	CHECK(buf_is(&got, "CFGHJ"));
	list_ids(&b, b.text_body, b.text_count, &got);
	CHECK(buf_is(&got, "1 2.1.1.1 2.1.1.2 2.1.1.3 3"));
	list_ids(&b, b.attachments, b.attachment_count, &got);
	CHECK(buf_is(&got, "2.1.1.2 2.1.2.2 2.2 2.3 2.4"));
	CHECK(b.part_count == 15);
	/* The tree: the root's children are A, the inner mixed and K. */
	const struct mime_body_part *root = &b.parts[0];
	CHECK(root->multipart && root->parent == MIME_JMAP_NONE);
	uint32_t c = root->first_child;
	CHECK(c != MIME_JMAP_NONE && strcmp(b.parts[c].part_id, "1") == 0);
	c = b.parts[c].next_sibling;
	CHECK(c != MIME_JMAP_NONE && b.parts[c].multipart &&
	      strcmp(b.parts[c].part_id, "2") == 0);
	c = b.parts[c].next_sibling;
	CHECK(c != MIME_JMAP_NONE && strcmp(b.parts[c].part_id, "3") == 0 &&
	      b.parts[c].next_sibling == MIME_JMAP_NONE);
	CHECK(body_invariants(m, &b) == 0);
	buf_free(&got);
	mime_jmap_body_free(&b);
	mime_free(&m);
}

/* ---- part properties ---- */

static void test_names(void)
{
	static const struct {
		const char *header; /* the part's header fields */
		const char *name;   /* NULL: none */
	} cases[] = {
		{"Content-Disposition: attachment; "
		 "filename*=utf-8''%E2%82%AC.txt\r\n",
		 "\xe2\x82\xac.txt"},
		/* Continuations, extended and not, joined in order. */
		{"Content-Disposition: attachment;\r\n"
		 " filename*1*=%20rate;\r\n"
		 " filename*0*=UTF-8'en'%E2%82%AC;\r\n"
		 " filename*2=\".txt\"\r\n",
		 "\xe2\x82\xac rate.txt"},
		{"Content-Disposition: attachment; filename*0=\"long \";\r\n"
		 " filename*1=\"name.txt\"\r\n",
		 "long name.txt"},
		{"Content-Disposition: attachment; "
		 "filename*=iso-8859-1'fr'caf%E9.txt\r\n",
		 "caf\xc3\xa9.txt"},
		/* RFC 2047 words in name= (many clients send them). */
		{"Content-Type: application/pdf;\r\n"
		 " name=\"=?UTF-8?B?w6l0w6kucGRm?=\"\r\n",
		 "\xc3\xa9t\xc3\xa9.pdf"},
		{"Content-Type: application/pdf; name=\"=?iso-8859-1?Q?"
		 "r=E9sum=E9?=.pdf\"\r\n",
		 "r\xc3\xa9sum\xc3\xa9.pdf"},
		/* Content-Disposition's filename before Content-Type's
		 * name; filename* before filename. */
		{"Content-Type: application/pdf; name=ct.pdf\r\n"
		 "Content-Disposition: attachment; filename=cd.pdf\r\n",
		 "cd.pdf"},
		{"Content-Type: application/pdf; name=ct.pdf\r\n"
		 "Content-Disposition: attachment\r\n",
		 "ct.pdf"},
		{"Content-Disposition: attachment; filename=\"plain.txt\";\r\n"
		 " filename*=utf-8''fancy.txt\r\n",
		 "fancy.txt"},
		/* Raw 8-bit: UTF-8 when it is, else windows-1252. */
		{"Content-Disposition: attachment; filename=\"\xc3\xa9.txt\"\r\n",
		 "\xc3\xa9.txt"},
		{"Content-Disposition: attachment; filename=\"\xe9.txt\"\r\n",
		 "\xc3\xa9.txt"},
		/* Made safe for a download. */
		{"Content-Disposition: attachment; "
		 "filename=\"../../etc/passwd\"\r\n",
		 ".._.._etc_passwd"},
		{"Content-Disposition: attachment; filename=\"a\\\\b.txt\"\r\n",
		 "a_b.txt"},
		{"Content-Disposition: attachment; filename*=utf-8''a%0Ab%00c"
		 "%C2%85d\r\n",
		 "a_b_c_d"},
		{"Content-Disposition: attachment; filename*=utf-8''a%FFb\r\n",
		 "a\xef\xbf\xbd"
		 "b"},
		{"Content-Disposition: attachment; filename=\"  spaced  \"\r\n",
		 "spaced"},
		/* None, empty, and an extended value without quotes. */
		{"Content-Disposition: attachment\r\n", NULL},
		{"Content-Disposition: attachment; filename=\"\"\r\n", NULL},
		{"Content-Disposition: attachment; filename*=%41.txt\r\n",
		 "A.txt"},
		/* A broken percent escape stays. */
		{"Content-Disposition: attachment; filename*=utf-8''100%\r\n",
		 "100%"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct buf msg;
		buf_init(&msg, 1 << 20);
		buf_printf(&msg,
			   "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
			   "--b\r\n\r\ntext\r\n--b\r\n%s\r\nx\r\n--b--\r\n",
			   cases[i].header);
		struct mime_message *m = mime_parse(buf_slice(&msg));
		struct mime_jmap_body b;
		mime_jmap_body(m, &b);
		CHECK_CASE(b.part_count == 3, i, cases[i].header);
		if (b.part_count == 3) {
			const char *name = b.parts[2].name;
			bool same =
				cases[i].name == NULL
					? name == NULL
					: name != NULL &&
						  strcmp(name, cases[i].name) ==
							  0;
			CHECK_CASE(same, i, cases[i].header);
			if (!same)
				fprintf(stderr, "  got \"%s\"\n",
					name ? name : "(null)");
		}
		mime_jmap_body_free(&b);
		mime_free(&m);
		buf_free(&msg);
	}
}

static void test_properties(void)
{
	static const char msg[] =
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
		"--b\r\nContent-Type: text/plain; charset=\"ISO-8859-1\"\r\n"
		"Content-Language: en, (comment) de\r\n"
		"Content-Location: http://example.com/\r\n a.txt\r\n\r\n"
		"caf\xe9\r\n"
		"--b\r\nContent-Type: image/png; charset=x\r\n"
		"Content-Transfer-Encoding: base64\r\n"
		"Content-ID: (c) < img1@example.com >\r\n"
		"Content-Disposition: INLINE\r\n\r\n"
		"aGVs\r\nbG8=\r\n"
		"--b\r\nContent-Type: application/octet-stream\r\n"
		"Content-Transfer-Encoding: quoted-printable\r\n"
		"Content-ID: bare@id\r\n\r\n"
		"a=3Db=\r\nc\r\n"
		"--b\r\nContent-Type: text/html\r\n"
		"Content-Transfer-Encoding: x-unknown\r\n\r\n<p>\r\n"
		"--b--\r\n";
	struct mime_message *m = mime_parse(cs(msg));
	struct mime_jmap_body b;
	mime_jmap_body(m, &b);
	CHECK(b.part_count == 5);
	if (b.part_count != 5) {
		mime_jmap_body_free(&b);
		mime_free(&m);
		return;
	}
	const struct mime_body_part *root = &b.parts[0], *t = &b.parts[1];
	const struct mime_body_part *img = &b.parts[2], *bin = &b.parts[3];
	const struct mime_body_part *html = &b.parts[4];
	CHECK(root->charset[0] == '\0' && root->size == strlen(msg) - 45);
	CHECK(strcmp(t->charset, "iso-8859-1") == 0);
	CHECK(t->language != NULL && strcmp(t->language, "en,de") == 0);
	CHECK(t->location != NULL &&
	      strcmp(t->location, "http://example.com/ a.txt") == 0);
	CHECK(t->cid == NULL && t->disposition[0] == '\0' && t->size == 4);
	CHECK(strcmp(img->charset, "x") == 0);
	CHECK(img->cid != NULL && strcmp(img->cid, "img1@example.com") == 0);
	CHECK(strcmp(img->disposition, "inline") == 0);
	CHECK(img->size == 5 && img->language == NULL);
	CHECK(bin->cid != NULL && strcmp(bin->cid, "bare@id") == 0);
	CHECK(bin->size == 4 && bin->charset[0] == '\0');
	CHECK(strcmp(html->charset, "us-ascii") == 0 && html->size == 3);

	struct buf out;
	buf_init(&out, 1 << 20);
	CHECK(mime_part_content(m, "2", &out) == 0 && buf_is(&out, "hello"));
	buf_reset(&out);
	CHECK(mime_part_content(m, "3", &out) == 0 && buf_is(&out, "a=bc"));
	buf_reset(&out);
	CHECK(mime_part_content(m, "4", &out) == 0 && buf_is(&out, "<p>"));
	/* As in IMAP, a leaf is its own part 1. */
	buf_reset(&out);
	CHECK(mime_part_content(m, "2.1", &out) == 0 && buf_is(&out, "hello"));
	static const char *const missing[] = {
		"",	 "0",  "5",  "1.",   ".1",
		"1.1.1", "01", "2x", "1..1", "99999999999999999999"};
	for (size_t i = 0; i < ARRAY_SIZE(missing); i++) {
		buf_reset(&out);
		CHECK_CASE(mime_part_content(m, missing[i], &out) == -1 &&
				   out.n == 0,
			   i, missing[i]);
	}
	buf_free(&out);
	mime_jmap_body_free(&b);
	mime_free(&m);
}

/* ---- text ---- */

static void test_part_text(void)
{
	static const struct {
		const char *msg;
		const char *part;
		size_t max;
		int result;
		const char *text;
		bool truncated;
	} cases[] = {
		{"Content-Type: text/plain; charset=iso-8859-1\r\n"
		 "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
		 "caf=E9 cr=\r\neme",
		 "1", 0, 0, "caf\xc3\xa9 creme", false},
		{"Content-Type: text/plain; charset=windows-1252\r\n"
		 "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
		 "=80 =93x=94",
		 "1", 0, 0, "\xe2\x82\xac \xe2\x80\x9cx\xe2\x80\x9d", false},
		{"Content-Type: text/plain; charset=UTF-8\r\n"
		 "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
		 "=C3=A9t=C3=A9",
		 "1", 0, 0, "\xc3\xa9t\xc3\xa9", false},
		{"Content-Type: text/plain; charset=utf-8\r\n"
		 "Content-Transfer-Encoding: base64\r\n\r\n"
		 "R3LDvMOfZSBhdXMgS8O2bG4=\r\n",
		 "1", 0, 0,
		 "Gr\xc3\xbc\xc3\x9f"
		 "e aus K\xc3\xb6ln",
		 false},
		{"Content-Type: text/plain; charset=koi8-r\r\n\r\n"
		 "\xf0\xd2\xc9\xd7\xc5\xd4",
		 "1", 0, 0, "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82",
		 false},
		/* Invalid UTF-8 is replaced. */
		{"Content-Type: text/plain; charset=utf-8\r\n\r\na\xff"
		 "b",
		 "1", 0, 0,
		 "a\xef\xbf\xbd"
		 "b",
		 false},
		/* Unlabelled 8-bit: windows-1252 when not UTF-8. */
		{"Subject: x\r\n\r\ncaf\xe9", "1", 0, 0, "caf\xc3\xa9", false},
		/* HTML stays HTML. */
		{"Content-Type: text/html\r\n\r\n<p>a &amp; b</p>", "1", 0, 0,
		 "<p>a &amp; b</p>", false},
		/* Truncation, never inside a character. */
		{"Content-Type: text/plain; charset=utf-8\r\n\r\n"
		 "\xc3\xa9\xc3\xa9\xc3\xa9",
		 "1", 3, 0, "\xc3\xa9", true},
		{"Content-Type: text/plain; charset=utf-8\r\n\r\n"
		 "\xc3\xa9\xc3\xa9\xc3\xa9",
		 "1", 4, 0, "\xc3\xa9\xc3\xa9", true},
		{"Content-Type: text/plain; charset=utf-8\r\n\r\n"
		 "\xc3\xa9\xc3\xa9\xc3\xa9",
		 "1", 6, 0, "\xc3\xa9\xc3\xa9\xc3\xa9", false},
		{"Content-Type: text/plain; charset=utf-8\r\n\r\n"
		 "a\xf0\x9f\x98\x80",
		 "1", 4, 0, "a", true},
		{"Content-Type: text/plain; charset=utf-8\r\n\r\n"
		 "\xf0\x9f\x98\x80",
		 "1", 1, 0, "", true},
		{"Content-Type: text/plain; charset=iso-8859-1\r\n\r\n"
		 "ab\xe9",
		 "1", 3, 0, "ab", true},
		/* Not text, or no such part. */
		{"Content-Type: image/png\r\n\r\npng", "1", 0, -1, "", false},
		{"Subject: x\r\n\r\ntext", "2", 0, -1, "", false},
		{"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
		 "--b\r\n\r\nin part\r\n--b--\r\n",
		 "1", 0, 0, "in part", false},
		{"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
		 "--b\r\nContent-Type: multipart/alternative; boundary=c\r\n"
		 "\r\n--c\r\n\r\nx\r\n--c--\r\n--b--\r\n",
		 "1", 0, -1, "", false},
		/* A part of an attached message. */
		{"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
		 "--b\r\nContent-Type: message/rfc822\r\n\r\n"
		 "Content-Type: text/plain; charset=iso-8859-1\r\n\r\n"
		 "\xe0 l'int\xe9rieur\r\n--b--\r\n",
		 "1.1", 0, 0, "\xc3\xa0 l'int\xc3\xa9rieur", false},
	};
	struct buf out;
	buf_init(&out, 1 << 20);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct mime_message *m = mime_parse(cs(cases[i].msg));
		buf_reset(&out);
		bool truncated = !cases[i].truncated;
		int r = mime_part_text(m, cases[i].part, cases[i].max, &out,
				       &truncated);
		CHECK_CASE(r == cases[i].result, i, cases[i].msg);
		CHECK_CASE(truncated == cases[i].truncated, i, cases[i].msg);
		CHECK_CASE(buf_is(&out, cases[i].text), i, cases[i].msg);
		if (!buf_is(&out, cases[i].text))
			fprintf(stderr, "  got \"%s\"\n", buf_cstr(&out));
		/* truncated_r may be NULL. */
		buf_reset(&out);
		CHECK_CASE(mime_part_text(m, cases[i].part, cases[i].max, &out,
					  NULL) == cases[i].result,
			   i, cases[i].msg);
		mime_free(&m);
	}
	buf_free(&out);
}

/* ---- header fields ---- */

struct collected {
	struct buf text;
	size_t count;
};

static void collect_address(const char *name, const char *email, void *ctx)
{
	struct collected *c = ctx;
	buf_printf(&c->text, "%s[%s|%s]", c->count > 0 ? " " : "",
		   name != NULL ? name : "NULL", email);
	c->count++;
}

static void test_addresses(void)
{
	static const struct {
		const char *header;
		const char *field;
		const char *want;
	} cases[] = {
		{"From: \"Doe, John\" <john@example.com>\r\n", "from",
		 "[Doe, John|john@example.com]"},
		{"To: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <j@x.de>,\r\n"
		 "  plain@x.org\r\n",
		 "To",
		 "[J\xc3\xbcrgen M\xc3\xbcller|j@x.de] [NULL|plain@x.org]"},
		/* Groups are flattened; an empty one gives nothing. */
		{"Cc: Team: a@x, \"B\" <b@y>;, c@z\r\n", "Cc",
		 "[NULL|a@x] [B|b@y] [NULL|c@z]"},
		{"Bcc: undisclosed-recipients:;\r\n", "Bcc", ""},
		/* A comment after the address names it. */
		{"From: alice@example.com (Alice Liddell)\r\n", "From",
		 "[Alice Liddell|alice@example.com]"},
		/* An empty display name is none. */
		{"From: \"\" <e@x>\r\n", "From", "[NULL|e@x]"},
		/* Every field of the name. */
		{"To: a@x\r\nSubject: s\r\nTo: b@y\r\n", "To",
		 "[NULL|a@x] [NULL|b@y]"},
		/* A missing domain, a missing local part. */
		{"To: user\r\n", "To", "[NULL|user]"},
		{"To: @example.com\r\n", "To", "[NULL|@example.com]"},
		{"To: Name <>\r\n", "To", "[Name|]"},
		{"To: x@y\r\n", "From", ""},
		/* 8-bit names as UTF-8, else windows-1252. */
		{"From: Ren\xe9 <r@x>\r\n", "From", "[Ren\xc3\xa9|r@x]"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct buf msg;
		buf_init(&msg, 1 << 20);
		buf_printf(&msg, "%s\r\nbody\r\n", cases[i].header);
		struct mime_message *m = mime_parse(buf_slice(&msg));
		struct collected c = {.count = 0};
		buf_init(&c.text, 1 << 20);
		mime_header_addresses(m, cases[i].field, collect_address, &c);
		bool same = buf_is(&c.text, cases[i].want);
		CHECK_CASE(same, i, cases[i].header);
		if (!same)
			fprintf(stderr, "  got \"%s\"\n", buf_cstr(&c.text));
		buf_free(&c.text);
		mime_free(&m);
		buf_free(&msg);
	}
}

static void test_date_zone(void)
{
	static const struct {
		const char *header;
		int64_t time;
		int offset;
	} cases[] = {
		{"Date: Mon, 6 Jan 2020 10:00:00 +0100", 1578301200, 60},
		{"Date: Mon, 6 Jan 2020 10:00:00 -0530", 1578324600, -330},
		{"Date: Mon, 6 Jan 2020 10:00:00 EST", 1578322800, -300},
		{"Date: Mon, 6 Jan 2020 10:00:00 edt", 1578319200, -240},
		{"Date: Mon, 6 Jan 2020 10:00:00 GMT", 1578304800, 0},
		{"Date: Mon, 6 Jan 2020 10:00:00 -0000", 1578304800, 0},
		/* No zone, an unknown one, comments around the parts. */
		{"Date: Mon, 6 Jan 2020 10:00:00", 1578304800, 0},
		{"Date: Mon, 6 Jan 2020 10:00:00 Z", 1578304800, 0},
		{"Date: Mon, 6 Jan 2020 10 : 00 (x:y) +1345 (NZDT)",
		 1578304800 - 825 * 60, 825},
		{"Date: 6 Jan 2020 10:00 +0100", 1578301200, 60},
		{"Date: Mon, 6 Jan 2020 10:00:00 +0160", -1, 0},
		{"Date: yesterday", -1, 0},
		{"Subject: no date", -1, 0},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct buf msg;
		buf_init(&msg, 1 << 20);
		buf_printf(&msg, "%s\r\n\r\nbody\r\n", cases[i].header);
		struct mime_message *m = mime_parse(buf_slice(&msg));
		int offset = 12345;
		int64_t t = mime_date_zone(m, &offset);
		CHECK_CASE(t == cases[i].time, i, cases[i].header);
		CHECK_CASE(offset == cases[i].offset, i, cases[i].header);
		if (t != cases[i].time || offset != cases[i].offset)
			fprintf(stderr, "  got %lld %d\n", (long long)t,
				offset);
		/* The same instant as mime_date. */
		CHECK_CASE(t == mime_date(m), i, cases[i].header);
		mime_free(&m);
		buf_free(&msg);
	}
}

static void test_header_raw(void)
{
	static const struct {
		const char *header;
		const char *name;
		bool found;
		const char *value;
	} cases[] = {
		{"Subject: =?utf-8?q?x?=\r\n\t folded \r\n", "subject", true,
		 "=?utf-8?q?x?=\t folded"},
		{"List-Id: a\xff"
		 "b\r\n",
		 "List-ID", true,
		 "a\xef\xbf\xbd"
		 "b"},
		{"X-A: one\r\nX-A: two\r\n", "X-A", true, "one"},
		{"X-A:\r\n", "X-A", true, ""},
		{"X-A: one\r\n", "X-B", false, ""},
	};
	struct buf out;
	buf_init(&out, 1 << 20);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct buf msg;
		buf_init(&msg, 1 << 20);
		buf_printf(&msg, "%s\r\nbody\r\n", cases[i].header);
		struct mime_message *m = mime_parse(buf_slice(&msg));
		buf_reset(&out);
		CHECK_CASE(mime_header_raw(m, cases[i].name, &out) ==
				   cases[i].found,
			   i, cases[i].header);
		CHECK_CASE(buf_is(&out, cases[i].value), i, cases[i].header);
		mime_free(&m);
		buf_free(&msg);
	}
	/* A NUL in a value is dropped. */
	static const char with_nul[] = "X-A: a\0b\r\n\r\n";
	struct mime_message *m =
		mime_parse(slice_make(with_nul, sizeof(with_nul) - 1));
	buf_reset(&out);
	CHECK(mime_header_raw(m, "X-A", &out) && buf_is(&out, "ab"));
	mime_free(&m);
	buf_free(&out);
}

/* ---- preview ---- */

/* The number of UTF-16 units of UTF-8 text. */
static size_t utf16_units(struct slice s)
{
	size_t units = 0;
	for (size_t i = 0; i < s.n; i++) {
		if ((s.p[i] & 0xc0) == 0x80)
			continue;
		units += s.p[i] >= 0xf0 ? 2 : 1;
	}
	return units;
}

static void test_preview(void)
{
	static const struct {
		const char *msg;
		const char *preview;
	} cases[] = {
		{"Subject: x\r\n\r\n  hello \r\n\r\n  world\t\t!  \r\n",
		 "hello world !"},
		{"Content-Type: text/html; charset=utf-8\r\n\r\n"
		 "<html><head><style>p{}</style></head><body>"
		 "<p>Hi&nbsp;there</p>\n<p>you</p></body></html>",
		 "Hi there you"},
		/* The text of an alternative, not its HTML. */
		{"Content-Type: multipart/alternative; boundary=b\r\n\r\n"
		 "--b\r\nContent-Type: text/plain\r\n\r\nthe plain one\r\n"
		 "--b\r\nContent-Type: text/html\r\n\r\n<b>html</b>\r\n"
		 "--b--\r\n",
		 "the plain one"},
		/* Text parts in order, attachments left out. */
		{"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
		 "--b\r\nContent-Type: text/plain\r\n\r\nfirst\r\n"
		 "--b\r\nContent-Type: image/png\r\n\r\nPNGDATA\r\n"
		 "--b\r\nContent-Type: application/pdf\r\n\r\nPDF\r\n"
		 "--b\r\nContent-Type: text/html\r\n\r\n<i>second</i>\r\n"
		 "--b--\r\n",
		 "first second"},
		/* Charsets and transfer encodings undone; controls are
		 * spaces. */
		{"Content-Type: text/plain; charset=iso-8859-1\r\n"
		 "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
		 "caf=E9=0Cau=A0lait=00!",
		 "caf\xc3\xa9 au lait !"},
		{"Content-Type: application/pdf\r\n\r\nPDF", ""},
		{"Subject: x\r\n\r\n \r\n\t\r\n", ""},
	};
	struct buf out;
	buf_init(&out, 1 << 20);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct mime_message *m = mime_parse(cs(cases[i].msg));
		buf_reset(&out);
		mime_preview(m, &out);
		CHECK_CASE(buf_is(&out, cases[i].preview), i, cases[i].msg);
		if (!buf_is(&out, cases[i].preview))
			fprintf(stderr, "  got \"%s\"\n", buf_cstr(&out));
		mime_free(&m);
	}

	/* 300 two-byte characters: 256 of them, whole. */
	struct buf msg;
	buf_init(&msg, 1 << 20);
	buf_append_cstr(&msg,
			"Content-Type: text/plain; charset=utf-8\r\n\r\n");
	for (int i = 0; i < 300; i++)
		buf_append_cstr(&msg, "\xc3\xa9");
	struct mime_message *m = mime_parse(buf_slice(&msg));
	buf_reset(&out);
	mime_preview(m, &out);
	CHECK(out.n == 512 && utf16_units(buf_slice(&out)) == 256);
	CHECK(out.n >= 2 && memcmp(out.p + out.n - 2, "\xc3\xa9", 2) == 0);
	mime_free(&m);

	/* Characters beyond the BMP count two, as JavaScript's length. */
	buf_reset(&msg);
	buf_append_cstr(&msg,
			"Content-Type: text/plain; charset=utf-8\r\n\r\n");
	buf_append_cstr(&msg, "a");
	for (int i = 0; i < 200; i++)
		buf_append_cstr(&msg, "\xf0\x9f\x98\x80");
	m = mime_parse(buf_slice(&msg));
	buf_reset(&out);
	mime_preview(m, &out);
	CHECK(out.n == 1 + 127 * 4 && utf16_units(buf_slice(&out)) == 255);
	mime_free(&m);

	/* Whitespace runs count as one space; no trailing space at the
	 * cut. */
	buf_reset(&msg);
	buf_append_cstr(&msg, "Subject: x\r\n\r\n");
	for (int i = 0; i < 200; i++)
		buf_append_cstr(&msg, "ab  \r\n\t ");
	m = mime_parse(buf_slice(&msg));
	buf_reset(&out);
	mime_preview(m, &out);
	CHECK(out.n == 256 && out.p[out.n - 1] == 'a' &&
	      memmem(out.p, out.n, "  ", 2) == NULL);
	mime_free(&m);

	/* A huge body: only its start is read, and cut there a UTF-8
	 * character does not turn the text into windows-1252. */
	buf_reset(&msg);
	buf_free(&msg);
	buf_init(&msg, 4 * MIME_JMAP_PREVIEW_SCAN + 1024);
	buf_append_cstr(&msg, "Subject: x\r\n\r\n");
	for (int i = 0; i < 3; i++)
		buf_append(&msg, " ", 1);
	while (msg.n < 2 * MIME_JMAP_PREVIEW_SCAN)
		buf_append_cstr(&msg, "\xe2\x82\xac");
	m = mime_parse(buf_slice(&msg));
	buf_reset(&out);
	mime_preview(m, &out);
	CHECK(out.n == 256 * 3 &&
	      memcmp(out.p, "\xe2\x82\xac\xe2\x82\xac", 6) == 0);
	mime_free(&m);
	buf_reset(&msg);
	buf_append_cstr(&msg, "Subject: x\r\n\r\n");
	size_t body = msg.n;
	while (msg.n - body < MIME_JMAP_PREVIEW_SCAN)
		buf_append(&msg, " ", 1);
	buf_append_cstr(&msg, "late");
	m = mime_parse(buf_slice(&msg));
	buf_reset(&out);
	mime_preview(m, &out);
	CHECK(out.n == 0);
	mime_free(&m);

	buf_free(&msg);
	buf_free(&out);
}

/* ---- hostile input ---- */

static void test_hostile(void)
{
	struct buf msg;
	buf_init(&msg, 64 << 20);

	/* Multiparts nested 100 deep: bounded by MIME_MAX_DEPTH, the
	 * deepest shown as text. */
	for (int i = 0; i < 100; i++)
		buf_printf(&msg,
			   "Content-Type: multipart/mixed; boundary=b%dz\r\n"
			   "\r\n--b%dz\r\n",
			   i, i);
	buf_append_cstr(&msg, "\r\ndeep\r\n");
	struct mime_message *m = mime_parse(buf_slice(&msg));
	struct mime_jmap_body b;
	mime_jmap_body(m, &b);
	CHECK(b.part_count == MIME_MAX_DEPTH + 1);
	CHECK(body_invariants(m, &b) == 0);
	const struct mime_body_part *last = &b.parts[b.part_count - 1];
	CHECK(!last->multipart && strcmp(last->type, "text/plain") == 0);
	CHECK(strlen(last->part_id) == 2 * MIME_MAX_DEPTH - 1);
	CHECK(b.text_count == 1 && b.text_body[0] == b.part_count - 1);
	mime_jmap_body_free(&b);
	struct buf out;
	buf_init(&out, 64 << 20);
	mime_preview(m, &out);
	/* The deepest part holds the rest as text. */
	CHECK(out.n > 5 && memcmp(out.p, "--b32z ", 7) == 0);
	mime_free(&m);

	/* Alternatives nested 100 deep, each with text and HTML. */
	buf_reset(&msg);
	for (int i = 0; i < 100; i++)
		buf_printf(&msg,
			   "Content-Type: multipart/alternative; "
			   "boundary=a%dz\r\n\r\n"
			   "--a%dz\r\nContent-Type: text/html\r\n\r\nh\r\n"
			   "--a%dz\r\n",
			   i, i, i);
	buf_append_cstr(&msg, "\r\nlast\r\n");
	m = mime_parse(buf_slice(&msg));
	mime_jmap_body(m, &b);
	CHECK(body_invariants(m, &b) == 0);
	CHECK(b.html_count > 0 && b.text_count > 0);
	mime_jmap_body_free(&b);
	mime_free(&m);

	/* More parts than MIME_MAX_PARTS, base64 and named, with the
	 * closing boundary missing. */
	buf_reset(&msg);
	buf_append_cstr(&msg,
			"Content-Type: multipart/mixed; boundary=p\r\n\r\n");
	for (int i = 0; i < MIME_MAX_PARTS + 500; i++)
		buf_append_cstr(&msg, "--p\r\nContent-Type: image/png; "
				      "name*0*=utf-8''%E2%82;name*1*=%AC\r\n"
				      "Content-Transfer-Encoding: base64\r\n"
				      "\r\naGVsbG8=\r\n");
	m = mime_parse(buf_slice(&msg));
	mime_jmap_body(m, &b);
	CHECK(b.part_count == MIME_MAX_PARTS);
	CHECK(body_invariants(m, &b) == 0);
	CHECK(strcmp(b.parts[b.part_count - 1].part_id, "1999") == 0);
	CHECK(b.parts[1].name != NULL &&
	      strcmp(b.parts[1].name, "\xe2\x82\xac") == 0);
	CHECK(b.parts[1].size == 5);
	/* The first image is inline; the rest are inline media too. */
	CHECK(b.text_count == MIME_MAX_PARTS - 1 && b.attachment_count == 0);
	mime_jmap_body_free(&b);
	mime_free(&m);

	/* Unterminated boundaries and a part cut inside its header. */
	static const char *const broken[] = {
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n",
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
		"Content-Type: text/html\r\n",
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
		"Content-Type: multipart/alternative; boundary=c\r\n\r\n"
		"--c\r\n\r\nx\r\n--b\r\n\r\ny",
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
		"--b--\r\n",
		"Content-Type: message/rfc822\r\n\r\n",
		"Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n",
		"Content-Type: /\r\nContent-Disposition: ;filename*0*=''%\r\n"
		"Content-ID: <\r\nContent-Language: ,,,\r\n"
		"Content-Location: \r\n\r\n",
		"Content-Disposition: attachment; filename*99999*=x;"
		" filename*5=y; filename**=z; filename*=\r\n\r\n",
		"",
	};
	for (size_t i = 0; i < ARRAY_SIZE(broken); i++) {
		m = mime_parse(cs(broken[i]));
		mime_jmap_body(m, &b);
		CHECK_CASE(body_invariants(m, &b) == 0, i, broken[i]);
		mime_jmap_body_free(&b);
		buf_reset(&out);
		mime_preview(m, &out);
		CHECK_CASE(utf16_units(buf_slice(&out)) <= 256, i, broken[i]);
		mime_free(&m);
	}

	/* A type longer than MIME_JMAP_TYPE_SIZE allows. */
	buf_reset(&msg);
	buf_append_cstr(&msg, "Content-Type: multipart/");
	for (int i = 0; i < MIME_JMAP_TYPE_SIZE; i++)
		buf_append(&msg, "x", 1);
	buf_append_cstr(&msg, "; boundary=b\r\n\r\n--b\r\nContent-Type: "
			      "image/");
	for (int i = 0; i < MIME_JMAP_TYPE_SIZE; i++)
		buf_append(&msg, "y", 1);
	buf_append_cstr(&msg, "\r\n\r\nz\r\n--b--\r\n");
	m = mime_parse(buf_slice(&msg));
	mime_jmap_body(m, &b);
	CHECK(b.part_count == 2 &&
	      strcmp(b.parts[0].type, "multipart/mixed") == 0 &&
	      strcmp(b.parts[1].type, "application/octet-stream") == 0);
	CHECK(body_invariants(m, &b) == 0);
	mime_jmap_body_free(&b);
	mime_free(&m);

	/* A long file name is cut on a character boundary. */
	buf_reset(&msg);
	buf_append_cstr(&msg, "Content-Disposition: attachment; "
			      "filename=\"a");
	for (int i = 0; i < MIME_JMAP_MAX_VALUE; i++)
		buf_append_cstr(&msg, "\xc3\xa9");
	buf_append_cstr(&msg, "\"\r\n\r\nx");
	m = mime_parse(buf_slice(&msg));
	mime_jmap_body(m, &b);
	CHECK(b.parts[0].name != NULL &&
	      strlen(b.parts[0].name) == MIME_JMAP_MAX_VALUE - 1);
	mime_jmap_body_free(&b);
	mime_free(&m);

	/* Ten thousand addresses in groups that never close. */
	buf_reset(&msg);
	buf_append_cstr(&msg, "To: ");
	for (int i = 0; i < 10000; i++)
		buf_printf(&msg, "g%d: a%d@x, ", i, i);
	buf_append_cstr(&msg, "\r\n\r\n");
	m = mime_parse(buf_slice(&msg));
	struct collected c = {.count = 0};
	buf_init(&c.text, 64 << 20);
	mime_header_addresses(m, "To", collect_address, &c);
	CHECK(c.count > 0 && c.count <= 10000);
	buf_free(&c.text);
	mime_free(&m);

	buf_free(&out);
	buf_free(&msg);
}

int main(void)
{
	test_structure();
	test_rfc_example();
	test_names();
	test_properties();
	test_part_text();
	test_addresses();
	test_date_zone();
	test_header_raw();
	test_preview();
	test_hostile();
	return unit_result("mime_jmap");
}
