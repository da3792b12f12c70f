/* jmap_email.c: Email, Thread and SearchSnippet of JMAP (RFC 8621 4, 3
 * and 5) over the store.
 *
 * Ids: an Email is "e" and its number, a thread "t", a blob "G" and the
 * Email's number (the whole message) followed by "." and an IMAP part
 * number for a part, or "U" and a number for an upload. Every lookup goes
 * through the session's own account index, so a guessed id of another
 * user's mail is simply not found.
 *
 * An Email is in exactly one mailbox here: an update may move it, but a
 * mailboxIds with two mailboxes is refused. */
#include "core/common.h"

#include "http/internal.h"
#include "http/jmap.h"
#include "http/sanitize.h"

#include "core/log.h"
#include "core/utf8.h"
#include "mime/build.h"
#include "mime/jmap.h"
#include "mime/mime.h"
#include "smtp/authres.h"

#include <ctype.h>
#include <errno.h>
#include <strings.h>
#include <time.h>

/* The most bytes of a body value given unless the call asks for fewer. */
#define JMAP_MAX_BODY_VALUE (4u << 20)
/* The most Emails one query gives. */
#define JMAP_MAX_QUERY_LIMIT 1000
/* Filters nest at most this deep. */
#define JMAP_MAX_FILTER_DEPTH 10
#define JMAP_MAX_FILTER_NODES 200
/* Keywords of one Email, and their length. */
#define JMAP_MAX_KEYWORDS     100
#define JMAP_MAX_MESSAGE_SIZE (50u * 1024 * 1024)

static const char *const email_properties[] = {
	"id",
	"blobId",
	"threadId",
	"mailboxIds",
	"keywords",
	"size",
	"receivedAt",
	"messageId",
	"inReplyTo",
	"references",
	"sender",
	"from",
	"to",
	"cc",
	"bcc",
	"replyTo",
	"subject",
	"sentAt",
	"hasAttachment",
	"preview",
	"bodyValues",
	"textBody",
	"htmlBody",
	"attachments",
	"bodyStructure",
	/* dijk's own: whether the sanitizer held back remote images, and
	 * what the MX's SPF, DKIM and DMARC checks said. */
	"dijk:hasRemoteImages",
	"dijk:authentication",
};

/* What Email/get gives when properties is null (RFC 8621 4.2). */
static const char *const default_email_properties[] = {
	"id",	      "blobId",	    "threadId",	     "mailboxIds",
	"keywords",   "size",	    "receivedAt",    "messageId",
	"inReplyTo",  "references", "sender",	     "from",
	"to",	      "cc",	    "bcc",	     "replyTo",
	"subject",    "sentAt",	    "hasAttachment", "preview",
	"bodyValues", "textBody",   "htmlBody",	     "attachments",
};

static const char *const body_properties[] = {
	"partId",      "blobId", "size",     "name",	 "type",     "charset",
	"disposition", "cid",	 "language", "location", "subParts",
};

static const char *const default_body_properties[] = {
	"partId",  "blobId",	  "size", "name",     "type",
	"charset", "disposition", "cid",  "language", "location",
};

/* ---- loading messages ---- */

int jmap_message_load(struct jmap_context *jc, uint64_t email_id,
		      struct jmap_message *out)
{
	const char *error;
	memset(out, 0, sizeof(*out));
	int r = store_email_bytes(jc->store, jc->account_id, email_id,
				  &out->data, &out->size, &error);
	if (r < 0) {
		log_error("email %llu: %s", (unsigned long long)email_id,
			  error);
		return -1;
	}
	if (r == 0)
		return 0;
	out->mime = mime_parse(slice_make(out->data, out->size));
	return 1;
}

void jmap_message_free(struct jmap_message *m)
{
	mime_free(&m->mime);
	free(m->data);
	m->data = NULL;
}

/* ---- keywords ---- */

static const struct {
	const char *name;
	unsigned flag;
} flag_keywords[] = {
	{"$seen", STORE_FLAG_SEEN},
	{"$answered", STORE_FLAG_ANSWERED},
	{"$flagged", STORE_FLAG_FLAGGED},
	{"$draft", STORE_FLAG_DRAFT},
};

/* A keyword as JMAP allows it (RFC 8621 4.1.1: IMAP atom characters but
 * not "]"), lower-cased into out. */
bool jmap_keyword_normalize(const char *in, char out[JMAP_MAX_KEYWORD_SIZE + 1])
{
	size_t n = strlen(in);
	if (n == 0 || n > JMAP_MAX_KEYWORD_SIZE)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c <= 0x20 || c >= 0x7f || strchr("(){]%*\"\\", c))
			return false;
		out[i] = (char)tolower(c);
	}
	out[n] = '\0';
	return true;
}

unsigned jmap_keyword_flag(const char *keyword)
{
	for (size_t i = 0; i < ARRAY_SIZE(flag_keywords); i++)
		if (strcmp(keyword, flag_keywords[i].name) == 0)
			return flag_keywords[i].flag;
	return 0;
}

json_t *jmap_keywords_object(unsigned flags, const char *keywords)
{
	json_t *o = json_object();
	for (size_t i = 0; i < ARRAY_SIZE(flag_keywords); i++)
		if (flags & flag_keywords[i].flag)
			json_object_set_new(o, flag_keywords[i].name,
					    json_true());
	const char *p = keywords;
	while (*p) {
		while (*p == ' ')
			p++;
		const char *start = p;
		while (*p && *p != ' ')
			p++;
		if (p == start)
			break;
		char raw[JMAP_MAX_KEYWORD_SIZE + 1],
			k[JMAP_MAX_KEYWORD_SIZE + 1];
		size_t n = (size_t)(p - start);
		if (n > JMAP_MAX_KEYWORD_SIZE)
			continue;
		memcpy(raw, start, n);
		raw[n] = '\0';
		if (jmap_keyword_normalize(raw, k))
			json_object_set_new(o, k, json_true());
	}
	return o;
}

/* ---- Email/get ---- */

static json_t *address_list(const struct mime_message *m, const char *field);

struct address_collect {
	json_t *list;
};

static void add_address(const char *name, const char *email, void *context)
{
	struct address_collect *a = context;
	json_array_append_new(a->list,
			      json_pack("{s:o, s:s}", "name",
					name ? json_string(name) : json_null(),
					"email", email));
}

static json_t *address_list(const struct mime_message *m, const char *field)
{
	struct buf probe;
	buf_init(&probe, 64 * 1024);
	bool present = mime_header_value(m, field, &probe);
	buf_free(&probe);
	if (!present)
		return json_null();
	struct address_collect a = {json_array()};
	mime_header_addresses(m, field, add_address, &a);
	return a.list;
}

static json_t *header_text(const struct mime_message *m, const char *field)
{
	struct buf b;
	buf_init(&b, 1024 * 1024);
	json_t *v = json_null();
	if (mime_header_value(m, field, &b)) {
		json_decref(v);
		v = json_stringn((const char *)b.p, b.n);
		if (v == NULL)
			v = json_string("");
	}
	buf_free(&b);
	return v;
}

static json_t *message_ids(const struct mime_message *m, const char *field)
{
	struct buf b;
	buf_init(&b, 1024 * 1024);
	mime_message_ids(m, field, &b);
	if (b.n == 0) {
		buf_free(&b);
		return json_null();
	}
	json_t *list = json_array();
	for (size_t i = 0; i < b.n;) {
		size_t n = strnlen((const char *)b.p + i, b.n - i);
		json_t *s = json_stringn((const char *)b.p + i, n);
		if (s != NULL)
			json_array_append_new(list, s);
		i += n + 1;
	}
	buf_free(&b);
	return list;
}

json_t *jmap_utc_date(time_t t)
{
	struct tm tm;
	gmtime_r(&t, &tm);
	char text[32];
	strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_string(text);
}

bool jmap_parse_utc_date(const char *text, int64_t *t_r)
{
	struct tm tm = {0};
	int n = 0;
	if (strlen(text) != 20 ||
	    sscanf(text, "%4d-%2d-%2dT%2d:%2d:%2dZ%n", &tm.tm_year, &tm.tm_mon,
		   &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6 ||
	    n != 20)
		return false;
	if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
	    tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
	    tm.tm_sec > 60)
		return false;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	*t_r = (int64_t)timegm(&tm);
	return true;
}

bool jmap_parse_date(const char *text, int64_t *t_r, int *offset_r)
{
	struct tm tm = {0};
	int n = 0;
	if (sscanf(text, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
		   &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6 ||
	    n != 19)
		return false;
	const char *p = text + n;
	if (*p == '.') {
		/* Fractions of a second: dropped. */
		p++;
		if (!isdigit((unsigned char)*p))
			return false;
		while (isdigit((unsigned char)*p))
			p++;
	}
	int offset = 0;
	if (*p == 'Z' && p[1] == '\0') {
		offset = 0;
	} else if ((*p == '+' || *p == '-') && isdigit((unsigned char)p[1]) &&
		   isdigit((unsigned char)p[2]) && p[3] == ':' &&
		   isdigit((unsigned char)p[4]) &&
		   isdigit((unsigned char)p[5]) && p[6] == '\0') {
		int h = (p[1] - '0') * 10 + (p[2] - '0');
		int m = (p[4] - '0') * 10 + (p[5] - '0');
		if (h > 23 || m > 59)
			return false;
		offset = (h * 60 + m) * (*p == '-' ? -1 : 1);
	} else {
		return false;
	}
	if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
	    tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
	    tm.tm_sec > 60 || tm.tm_year < 1900)
		return false;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	*t_r = (int64_t)timegm(&tm) - (int64_t)offset * 60;
	*offset_r = offset;
	return true;
}

static json_t *sent_at(const struct mime_message *m)
{
	int offset;
	int64_t t = mime_date_zone(m, &offset);
	if (t < 0)
		return json_null();
	time_t local = (time_t)(t + (int64_t)offset * 60);
	struct tm tm;
	gmtime_r(&local, &tm);
	char text[40];
	size_t n = strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &tm);
	int a = offset < 0 ? -offset : offset;
	snprintf(text + n, sizeof(text) - n, "%c%02d:%02d",
		 offset < 0 ? '-' : '+', a / 60, a % 60);
	return json_string(text);
}

/* The preview from the indexed text: runs of white space as one space,
 * at most 256 characters. */
static json_t *preview_of(const char *text)
{
	char out[256 * 4 + 1];
	size_t n = 0, chars = 0;
	bool space = false;
	for (const unsigned char *p = (const unsigned char *)text;
	     *p && chars < 256;) {
		if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' ||
		    *p == '\f' || *p == '\v') {
			space = n > 0;
			p++;
			continue;
		}
		/* The indexed text is valid UTF-8: a lead byte tells the
		 * length. */
		size_t len = *p < 0x80 ? 1 : *p < 0xe0 ? 2 : *p < 0xf0 ? 3 : 4;
		if (strnlen((const char *)p, len) < len)
			break;
		if (space) {
			out[n++] = ' ';
			chars++;
			space = false;
			if (chars == 256)
				break;
		}
		memcpy(out + n, p, len);
		n += len;
		p += len;
		chars++;
	}
	out[n] = '\0';
	json_t *v = json_stringn(out, n);
	return v ? v : json_string("");
}

static void blob_id(uint64_t email_id, const char *part_id, char *out,
		    size_t size)
{
	if (part_id == NULL || *part_id == '\0')
		snprintf(out, size, "G%llu", (unsigned long long)email_id);
	else
		snprintf(out, size, "G%llu.%s", (unsigned long long)email_id,
			 part_id);
}

static json_t *optional_string(const char *s)
{
	if (s == NULL || *s == '\0')
		return json_null();
	json_t *v = json_string(s);
	return v ? v : json_null();
}

static json_t *body_part(const struct mime_jmap_body *b, uint32_t index,
			 uint64_t email_id, json_t *props)
{
	const struct mime_body_part *p = &b->parts[index];
	json_t *o = json_object();
	char blob[JMAP_ID_TEXT_SIZE + MIME_JMAP_PART_ID_SIZE];
	if (!p->multipart) {
		blob_id(email_id, p->part_id, blob, sizeof(blob));
		json_object_set_new(o, "partId", json_string(p->part_id));
		json_object_set_new(o, "blobId", json_string(blob));
	} else {
		json_object_set_new(o, "partId", json_null());
		json_object_set_new(o, "blobId", json_null());
	}
	json_object_set_new(o, "size", json_integer((json_int_t)p->size));
	json_object_set_new(o, "name", optional_string(p->name));
	json_object_set_new(o, "type", json_string(p->type));
	json_object_set_new(o, "charset", optional_string(p->charset));
	json_object_set_new(o, "disposition", optional_string(p->disposition));
	json_object_set_new(o, "cid", optional_string(p->cid));
	json_t *language = json_null();
	if (p->language != NULL) {
		json_decref(language);
		language = json_array();
		for (const char *l = p->language; *l;) {
			const char *comma = strchr(l, ',');
			size_t n = comma ? (size_t)(comma - l) : strlen(l);
			json_t *tag = json_stringn(l, n);
			if (tag != NULL && n > 0)
				json_array_append_new(language, tag);
			else
				json_decref(tag);
			l += n + (comma != NULL);
		}
	}
	json_object_set_new(o, "language", language);
	json_object_set_new(o, "location", optional_string(p->location));
	if (p->multipart && jmap_property_wanted(props, "subParts")) {
		json_t *subs = json_array();
		for (uint32_t i = p->first_child; i != MIME_JMAP_NONE;
		     i = b->parts[i].next_sibling)
			json_array_append_new(subs,
					      body_part(b, i, email_id, props));
		json_object_set_new(o, "subParts", subs);
	}
	const char *key;
	json_t *value;
	void *tmp;
	json_object_foreach_safe(o, tmp, key, value)
	{
		(void)value;
		if (!jmap_property_wanted(props, key))
			json_object_del(o, key);
	}
	return o;
}

static json_t *part_list(const struct mime_jmap_body *b, const uint32_t *list,
			 size_t count, uint64_t email_id, json_t *props)
{
	json_t *a = json_array();
	for (size_t i = 0; i < count; i++)
		json_array_append_new(a,
				      body_part(b, list[i], email_id, props));
	return a;
}

/* Whether the HTML the reader would see loads images from the internet
 * (the webmail then offers "show images"): the sanitizer counts what it
 * blocks. */
static bool remote_images(const struct mime_message *m,
			  const struct mime_jmap_body *b)
{
	for (size_t i = 0; i < b->html_count; i++) {
		const struct mime_body_part *p = &b->parts[b->html_body[i]];
		if (strcmp(p->type, "text/html") != 0)
			continue;
		struct buf html, out;
		buf_init(&html, SANITIZE_MAX_INPUT + 1);
		buf_init(&out, 4 * SANITIZE_MAX_INPUT);
		struct sanitize_result result = {0};
		bool blocked =
			mime_part_text(m, p->part_id, SANITIZE_MAX_INPUT + 1,
				       &html, NULL) == 0 &&
			html_sanitize(html.p, html.n, NULL, &out, &result) ==
				0 &&
			result.remote_images_blocked > 0;
		buf_free(&html);
		buf_free(&out);
		if (blocked)
			return true;
	}
	return false;
}

struct get_options {
	json_t *props, *body_props;
	bool fetch_text, fetch_html, fetch_all;
	size_t max_value_bytes;
};

static void add_body_value(json_t *values, const struct mime_message *m,
			   const struct mime_body_part *p, size_t max)
{
	if (json_object_get(values, p->part_id) != NULL ||
	    strncmp(p->type, "text/", 5) != 0)
		return;
	struct buf text;
	buf_init(&text, max + 8);
	bool truncated = false;
	if (mime_part_text(m, p->part_id, max, &text, &truncated) != 0) {
		buf_free(&text);
		return;
	}
	/* mime_part_text gives valid UTF-8; encoding problems show as
	 * U+FFFD, which is what isEncodingProblem reports. */
	bool problem = memmem(text.p, text.n, "\xef\xbf\xbd", 3) != NULL;
	json_t *value = json_stringn((const char *)text.p, text.n);
	json_object_set_new(values, p->part_id,
			    json_pack("{s:o, s:b, s:b}", "value",
				      value ? value : json_string(""),
				      "isEncodingProblem", problem,
				      "isTruncated", truncated));
	buf_free(&text);
}

struct email_get {
	struct jmap_context *jc;
	const struct get_options *opt;
	json_t *list;
	json_t *found; /* ids found, for notFound */
	bool failed;
};

/* What this server's checks said of the message when it arrived: the
 * Authentication-Results field with our name at the top (the MX removes
 * any other claiming it), as {"dmarc", "dkim", "spf", "fromDomain"}, or
 * null for mail that did not come in over the MX. */
static json_t *authentication(const struct jmap_context *jc,
			      const struct jmap_message *msg)
{
	struct slice raw = slice_make(msg->data, msg->size);
	size_t pos = 0;
	struct authres_range range;
	if (jc->hostname == NULL ||
	    !authres_next_forged(raw, jc->hostname, &pos, &range))
		return json_null();
	const uint8_t *colon = memchr(raw.p + range.offset, ':', range.length);
	if (colon == NULL)
		return json_null();
	size_t skip = (size_t)(colon + 1 - (raw.p + range.offset));
	struct authres_summary *summary = xmalloc(sizeof(*summary));
	const char *error;
	json_t *o = json_null();
	if (authres_parse(slice_make(colon + 1, range.length - skip), summary,
			  &error) == 0 &&
	    strcasecmp(summary->authserv_id, jc->hostname) == 0) {
		json_decref(o);
		o = json_object();
		const char *dkim = "none";
		for (size_t i = 0; i < summary->count; i++) {
			const struct authres_result *r = &summary->results[i];
			if (strcmp(r->method, "dkim") == 0 &&
			    (strcmp(dkim, "pass") != 0))
				dkim = r->result;
		}
		const struct authres_result *spf = authres_find(summary, "spf");
		const struct authres_result *dmarc =
			authres_find(summary, "dmarc");
		json_object_set_new(o, "dkim", json_string(dkim));
		json_object_set_new(o, "spf",
				    json_string(spf ? spf->result : "none"));
		json_object_set_new(
			o, "dmarc",
			json_string(dmarc ? dmarc->result : "none"));
		json_object_set_new(o, "fromDomain",
				    dmarc && dmarc->header_from[0]
					    ? json_string(dmarc->header_from)
					    : json_null());
	}
	free(summary);
	return o;
}

static bool needs_message(json_t *props)
{
	static const char *const light[] = {
		"id",	"blobId",     "threadId",      "mailboxIds", "keywords",
		"size", "receivedAt", "hasAttachment", "preview",
	};
	if (props == NULL)
		return true;
	size_t i;
	json_t *p;
	json_array_foreach(props, i, p)
	{
		bool is_light = false;
		for (size_t k = 0; k < ARRAY_SIZE(light); k++)
			is_light |= strcmp(json_string_value(p), light[k]) == 0;
		if (!is_light)
			return true;
	}
	return false;
}

static void email_row(const struct store_email *e, void *context)
{
	struct email_get *g = context;
	const struct get_options *opt = g->opt;
	json_t *props = opt->props;
	char id[JMAP_ID_TEXT_SIZE];
	jmap_make_id('e', e->id, id);
	json_t *o = json_object();
	json_object_set_new(o, "id", json_string(id));
	char text[JMAP_ID_TEXT_SIZE];
	blob_id(e->id, NULL, text, sizeof(text));
	json_object_set_new(o, "blobId", json_string(text));
	jmap_make_id('t', e->thread_id, text);
	json_object_set_new(o, "threadId", json_string(text));
	jmap_make_id('m', e->mailbox_id, text);
	json_object_set_new(o, "mailboxIds", json_pack("{s:b}", text, 1));
	json_object_set_new(o, "keywords",
			    jmap_keywords_object(e->flags, e->keywords));
	json_object_set_new(o, "size", json_integer((json_int_t)e->size));
	json_object_set_new(o, "receivedAt", jmap_utc_date(e->internal_date));
	json_object_set_new(o, "hasAttachment",
			    json_boolean(e->has_attachment));
	json_object_set_new(o, "preview", preview_of(e->text));
	if (needs_message(props)) {
		struct jmap_message msg;
		int r = jmap_message_load(g->jc, e->id, &msg);
		if (r <= 0) {
			json_decref(o);
			if (r < 0)
				g->failed = true;
			return;
		}
		const struct mime_message *m = msg.mime;
		json_object_set_new(o, "messageId",
				    message_ids(m, "Message-ID"));
		json_object_set_new(o, "inReplyTo",
				    message_ids(m, "In-Reply-To"));
		json_object_set_new(o, "references",
				    message_ids(m, "References"));
		static const struct {
			const char *property, *field;
		} addresses[] = {
			{"sender", "Sender"}, {"from", "From"},
			{"to", "To"},	      {"cc", "Cc"},
			{"bcc", "Bcc"},	      {"replyTo", "Reply-To"},
		};
		for (size_t i = 0; i < ARRAY_SIZE(addresses); i++)
			if (jmap_property_wanted(props, addresses[i].property))
				json_object_set_new(
					o, addresses[i].property,
					address_list(m, addresses[i].field));
		json_object_set_new(o, "subject", header_text(m, "Subject"));
		if (props != NULL &&
		    jmap_property_wanted(props, "dijk:authentication"))
			json_object_set_new(o, "dijk:authentication",
					    authentication(g->jc, &msg));
		json_object_set_new(o, "sentAt", sent_at(m));
		bool structure = jmap_property_wanted(props, "textBody") ||
				 jmap_property_wanted(props, "htmlBody") ||
				 jmap_property_wanted(props, "attachments") ||
				 jmap_property_wanted(props, "bodyValues") ||
				 jmap_property_wanted(props, "bodyStructure");
		if (structure) {
			struct mime_jmap_body b;
			mime_jmap_body(m, &b);
			json_object_set_new(o, "textBody",
					    part_list(&b, b.text_body,
						      b.text_count, e->id,
						      opt->body_props));
			json_object_set_new(o, "htmlBody",
					    part_list(&b, b.html_body,
						      b.html_count, e->id,
						      opt->body_props));
			json_object_set_new(o, "attachments",
					    part_list(&b, b.attachments,
						      b.attachment_count, e->id,
						      opt->body_props));
			if (b.part_count > 0)
				json_object_set_new(o, "bodyStructure",
						    body_part(&b, 0, e->id,
							      opt->body_props));
			json_t *values = json_object();
			for (size_t i = 0; i < b.part_count; i++) {
				bool in_text = false, in_html = false;
				for (size_t k = 0; k < b.text_count; k++)
					in_text |= b.text_body[k] == i;
				for (size_t k = 0; k < b.html_count; k++)
					in_html |= b.html_body[k] == i;
				if (opt->fetch_all ||
				    (opt->fetch_text && in_text) ||
				    (opt->fetch_html && in_html))
					add_body_value(values, m, &b.parts[i],
						       opt->max_value_bytes);
			}
			json_object_set_new(o, "bodyValues", values);
			if (props != NULL &&
			    jmap_property_wanted(props, "dijk:hasRemoteImages"))
				json_object_set_new(
					o, "dijk:hasRemoteImages",
					json_boolean(remote_images(m, &b)));
			mime_jmap_body_free(&b);
		}
		jmap_message_free(&msg);
	}
	const char *key;
	json_t *value;
	void *tmp;
	json_object_foreach_safe(o, tmp, key, value)
	{
		(void)value;
		if (strcmp(key, "id") != 0 && !jmap_property_wanted(props, key))
			json_object_del(o, key);
	}
	json_array_append_new(g->list, o);
	json_object_set_new(g->found, id, json_true());
}

static bool get_bool(json_t *args, const char *name, bool *out)
{
	json_t *v = json_object_get(args, name);
	if (v == NULL || json_is_null(v)) {
		*out = false;
		return true;
	}
	if (!json_is_boolean(v))
		return false;
	*out = json_is_true(v);
	return true;
}

json_t *jmap_email_get(struct jmap_context *jc, json_t *args)
{
	struct get_options opt = {.max_value_bytes = JMAP_MAX_BODY_VALUE};
	json_t *ids = json_object_get(args, "ids");
	if (!json_is_array(ids))
		return jmap_fail(jc,
				 json_is_null(ids) || ids == NULL
					 ? "requestTooLarge"
					 : "invalidArguments",
				 "ids must list the Emails wanted");
	if (json_array_size(ids) > JMAP_MAX_OBJECTS)
		return jmap_fail(jc, "requestTooLarge", NULL);
	json_t *given = json_object_get(args, "properties");
	if (!jmap_wanted_properties(args, "properties", email_properties,
				    ARRAY_SIZE(email_properties), &opt.props))
		return jmap_fail(jc, "invalidArguments",
				 "properties must name Email properties");
	json_t *defaults = NULL;
	if (given == NULL || json_is_null(given)) {
		defaults = json_array();
		for (size_t i = 0; i < ARRAY_SIZE(default_email_properties);
		     i++)
			json_array_append_new(
				defaults,
				json_string(default_email_properties[i]));
		opt.props = defaults;
	}
	json_t *body_given = json_object_get(args, "bodyProperties");
	json_t *body_defaults = NULL;
	if (!jmap_wanted_properties(args, "bodyProperties", body_properties,
				    ARRAY_SIZE(body_properties),
				    &opt.body_props)) {
		json_decref(defaults);
		return jmap_fail(jc, "invalidArguments",
				 "bodyProperties must name EmailBodyPart"
				 " properties");
	}
	if (body_given == NULL || json_is_null(body_given)) {
		body_defaults = json_array();
		for (size_t i = 0; i < ARRAY_SIZE(default_body_properties); i++)
			json_array_append_new(
				body_defaults,
				json_string(default_body_properties[i]));
		opt.body_props = body_defaults;
	}
	json_t *max = json_object_get(args, "maxBodyValueBytes");
	if (!get_bool(args, "fetchTextBodyValues", &opt.fetch_text) ||
	    !get_bool(args, "fetchHTMLBodyValues", &opt.fetch_html) ||
	    !get_bool(args, "fetchAllBodyValues", &opt.fetch_all) ||
	    (max != NULL && !json_is_null(max) &&
	     (!json_is_integer(max) || json_integer_value(max) < 1))) {
		json_decref(defaults);
		json_decref(body_defaults);
		return jmap_fail(jc, "invalidArguments", NULL);
	}
	if (json_is_integer(max) &&
	    (uint64_t)json_integer_value(max) < opt.max_value_bytes)
		opt.max_value_bytes = (size_t)json_integer_value(max);
	uint64_t *numbers = xcalloc(json_array_size(ids) + 1, sizeof(*numbers));
	size_t count = 0;
	size_t i;
	json_t *want;
	json_array_foreach(ids, i, want)
	{
		const char *id =
			json_is_string(want)
				? jmap_resolve_id(jc, json_string_value(want))
				: NULL;
		uint64_t n;
		if (id != NULL && jmap_parse_id(id, 'e', &n))
			numbers[count++] = n;
	}
	json_t *state = jmap_state(jc);
	struct email_get g = {jc, &opt, json_array(), json_object(), false};
	const char *error;
	unsigned texts = jmap_property_wanted(opt.props, "preview")
				 ? STORE_EMAIL_PREVIEW
				 : 0;
	int r = store_emails_get(jc->store, jc->account_id, numbers, count,
				 texts, email_row, &g, &error);
	free(numbers);
	json_decref(defaults);
	json_decref(body_defaults);
	if (r != 0 || g.failed || state == NULL) {
		if (r != 0)
			log_error("Email/get: %s", error);
		json_decref(g.list);
		json_decref(g.found);
		json_decref(state);
		return jmap_fail(jc, "serverFail", NULL);
	}
	json_t *not_found = json_array();
	json_array_foreach(ids, i, want)
	{
		const char *id =
			json_is_string(want)
				? jmap_resolve_id(jc, json_string_value(want))
				: NULL;
		if (id == NULL || json_object_get(g.found, id) == NULL)
			json_array_append(not_found, want);
	}
	json_decref(g.found);
	return json_pack("{s:s, s:o, s:o, s:o}", "accountId", jc->account,
			 "state", state, "list", g.list, "notFound", not_found);
}

/* ---- Email/query ---- */

struct filter_arena {
	struct store_filter nodes[JMAP_MAX_FILTER_NODES];
	size_t used;
	uint64_t not_in[JMAP_MAX_FILTER_NODES][16];
};

static const char *filter_string(json_t *o, const char *name, bool *bad)
{
	json_t *v = json_object_get(o, name);
	if (v == NULL || json_is_null(v))
		return NULL;
	if (!json_is_string(v) || json_string_length(v) > 1024) {
		*bad = true;
		return NULL;
	}
	return json_string_value(v);
}

/* Turns a JMAP FilterOperator or FilterCondition into the store's. Returns
 * NULL with *error_r an error type. */
static struct store_filter *filter_build(struct jmap_context *jc,
					 struct filter_arena *a, json_t *f,
					 unsigned depth, const char **error_r)
{
	if (!json_is_object(f) || depth > JMAP_MAX_FILTER_DEPTH ||
	    a->used == JMAP_MAX_FILTER_NODES) {
		*error_r = "invalidArguments";
		return NULL;
	}
	size_t index = a->used++;
	struct store_filter *node = &a->nodes[index];
	memset(node, 0, sizeof(*node));
	json_t *op = json_object_get(f, "operator");
	if (op != NULL) {
		json_t *conditions = json_object_get(f, "conditions");
		const char *name =
			json_is_string(op) ? json_string_value(op) : "";
		if (strcmp(name, "AND") == 0)
			node->op = STORE_FILTER_AND;
		else if (strcmp(name, "OR") == 0)
			node->op = STORE_FILTER_OR;
		else if (strcmp(name, "NOT") == 0)
			node->op = STORE_FILTER_NOT;
		else {
			*error_r = "unsupportedFilter";
			return NULL;
		}
		if (!json_is_array(conditions) || json_object_size(f) != 2) {
			*error_r = "invalidArguments";
			return NULL;
		}
		/* Children sit next to each other in the arena: build
		 * each into a scratch node, then copy. */
		size_t n = json_array_size(conditions);
		if (a->used + n > JMAP_MAX_FILTER_NODES) {
			*error_r = "invalidArguments";
			return NULL;
		}
		struct store_filter *children = &a->nodes[a->used];
		a->used += n;
		for (size_t i = 0; i < n; i++) {
			struct store_filter *child = filter_build(
				jc, a, json_array_get(conditions, i), depth + 1,
				error_r);
			if (child == NULL)
				return NULL;
			children[i] = *child;
		}
		node->children = children;
		node->child_count = n;
		return node;
	}
	node->op = STORE_FILTER_CONDITION;
	node->before = node->after = STORE_NO_TIME;
	node->min_size = node->max_size = -1;
	node->has_attachment = -1;
	bool bad = false;
	const char *key;
	json_t *value;
	json_object_foreach(f, key, value)
	{
		if (json_is_null(value))
			continue;
		if (strcmp(key, "inMailbox") == 0) {
			const char *id =
				json_is_string(value)
					? jmap_resolve_id(
						  jc, json_string_value(value))
					: NULL;
			/* An unknown mailbox matches nothing, as any
			 * other mailbox without mail would. */
			if (id == NULL ||
			    !jmap_parse_id(id, 'm', &node->in_mailbox))
				node->in_mailbox = UINT64_MAX;
		} else if (strcmp(key, "inMailboxOtherThan") == 0) {
			if (!json_is_array(value) ||
			    json_array_size(value) > 16) {
				bad = true;
				continue;
			}
			size_t i;
			json_t *m;
			json_array_foreach(value, i, m)
			{
				uint64_t mid = UINT64_MAX;
				const char *id =
					json_is_string(m)
						? jmap_resolve_id(
							  jc,
							  json_string_value(m))
						: NULL;
				if (id == NULL || !jmap_parse_id(id, 'm', &mid))
					mid = UINT64_MAX;
				a->not_in[index][i] = mid;
			}
			node->not_in_mailboxes = a->not_in[index];
			node->not_in_count = json_array_size(value);
		} else if (strcmp(key, "before") == 0 ||
			   strcmp(key, "after") == 0) {
			int64_t t;
			if (!json_is_string(value) ||
			    !jmap_parse_utc_date(json_string_value(value),
						 &t)) {
				bad = true;
				continue;
			}
			if (key[0] == 'b')
				node->before = t;
			else
				node->after = t;
		} else if (strcmp(key, "minSize") == 0 ||
			   strcmp(key, "maxSize") == 0) {
			if (!json_is_integer(value) ||
			    json_integer_value(value) < 0) {
				bad = true;
				continue;
			}
			if (strcmp(key, "minSize") == 0)
				node->min_size = json_integer_value(value);
			else
				node->max_size = json_integer_value(value);
		} else if (strcmp(key, "hasAttachment") == 0) {
			if (!json_is_boolean(value)) {
				bad = true;
				continue;
			}
			node->has_attachment = json_is_true(value);
		} else if (strcmp(key, "hasKeyword") == 0 ||
			   strcmp(key, "notKeyword") == 0) {
			const char *k = filter_string(f, key, &bad);
			char norm[JMAP_MAX_KEYWORD_SIZE + 1];
			if (k == NULL || !jmap_keyword_normalize(k, norm)) {
				bad = true;
				continue;
			}
			if (key[0] == 'h')
				node->has_keyword = k;
			else
				node->not_keyword = k;
		} else if (strcmp(key, "text") == 0) {
			node->text = filter_string(f, key, &bad);
		} else if (strcmp(key, "from") == 0) {
			node->from = filter_string(f, key, &bad);
		} else if (strcmp(key, "to") == 0) {
			node->to = filter_string(f, key, &bad);
		} else if (strcmp(key, "cc") == 0) {
			node->cc = filter_string(f, key, &bad);
		} else if (strcmp(key, "bcc") == 0) {
			node->bcc = filter_string(f, key, &bad);
		} else if (strcmp(key, "subject") == 0) {
			node->subject = filter_string(f, key, &bad);
		} else if (strcmp(key, "body") == 0) {
			node->body = filter_string(f, key, &bad);
		} else {
			*error_r = "unsupportedFilter";
			return NULL;
		}
	}
	if (bad) {
		*error_r = "invalidArguments";
		return NULL;
	}
	return node;
}

struct query_result {
	json_t *ids;
};

static void query_row(uint64_t email_id, uint64_t thread_id, void *context)
{
	(void)thread_id;
	struct query_result *q = context;
	char id[JMAP_ID_TEXT_SIZE];
	jmap_make_id('e', email_id, id);
	json_array_append_new(q->ids, json_string(id));
}

json_t *jmap_email_query(struct jmap_context *jc, json_t *args)
{
	struct store_query q = {0};
	json_t *sort = json_object_get(args, "sort");
	if (sort != NULL && !json_is_null(sort)) {
		if (!json_is_array(sort) || json_array_size(sort) > 1)
			return jmap_fail(jc, "unsupportedSort",
					 "dijk sorts by receivedAt only");
		json_t *c = json_array_get(sort, 0);
		json_t *prop = json_object_get(c, "property");
		json_t *asc = json_object_get(c, "isAscending");
		if (c != NULL &&
		    (!json_is_string(prop) ||
		     strcmp(json_string_value(prop), "receivedAt") != 0))
			return jmap_fail(jc, "unsupportedSort",
					 "dijk sorts by receivedAt only");
		if (asc != NULL && !json_is_boolean(asc))
			return jmap_fail(jc, "invalidArguments", NULL);
		q.ascending = asc == NULL || json_is_true(asc);
	}
	json_t *position = json_object_get(args, "position");
	json_t *anchor = json_object_get(args, "anchor");
	json_t *anchor_offset = json_object_get(args, "anchorOffset");
	json_t *limit = json_object_get(args, "limit");
	bool collapse, total;
	if (!get_bool(args, "collapseThreads", &collapse) ||
	    !get_bool(args, "calculateTotal", &total) ||
	    (position != NULL && !json_is_null(position) &&
	     !json_is_integer(position)) ||
	    (limit != NULL && !json_is_null(limit) &&
	     (!json_is_integer(limit) || json_integer_value(limit) < 0)) ||
	    (anchor != NULL && !json_is_null(anchor) &&
	     !json_is_string(anchor)) ||
	    (anchor_offset != NULL && !json_is_null(anchor_offset) &&
	     !json_is_integer(anchor_offset)))
		return jmap_fail(jc, "invalidArguments", NULL);
	q.collapse_threads = collapse;
	q.limit = JMAP_MAX_QUERY_LIMIT;
	bool limited = true;
	if (json_is_integer(limit) &&
	    json_integer_value(limit) <= JMAP_MAX_QUERY_LIMIT) {
		q.limit = (uint64_t)json_integer_value(limit);
		limited = false;
	}
	json_int_t pos =
		json_is_integer(position) ? json_integer_value(position) : 0;
	if (json_is_string(anchor)) {
		const char *id = jmap_resolve_id(jc, json_string_value(anchor));
		if (!jmap_parse_id(id, 'e', &q.anchor))
			return jmap_fail(jc, "anchorNotFound", NULL);
		q.anchor_offset = json_is_integer(anchor_offset)
					  ? json_integer_value(anchor_offset)
					  : 0;
	}
	struct filter_arena *arena = xcalloc(1, sizeof(*arena));
	json_t *filter = json_object_get(args, "filter");
	if (filter != NULL && !json_is_null(filter)) {
		const char *type;
		q.filter = filter_build(jc, arena, filter, 0, &type);
		if (q.filter == NULL) {
			free(arena);
			return jmap_fail(jc, type, NULL);
		}
	}
	/* A negative position counts from the end: that needs the total. */
	q.want_total = total || pos < 0;
	uint64_t count = 0, first = 0;
	json_t *state = jmap_state(jc);
	struct query_result result = {json_array()};
	const char *error;
	int r;
	if (pos < 0 && q.anchor == 0) {
		/* Only the total matters here: its one row is dropped. */
		struct query_result probe = {json_array()};
		r = store_email_query(
			jc->store, jc->account_id,
			&(struct store_query){
				.filter = q.filter,
				.collapse_threads = q.collapse_threads,
				.limit = 1,
				.want_total = true,
			},
			query_row, &probe, &count, &first, &error);
		json_decref(probe.ids);
		pos = (json_int_t)count + pos;
		if (pos < 0)
			pos = 0;
	}
	q.position = (uint64_t)pos;
	if (json_is_integer(limit) && json_integer_value(limit) == 0) {
		/* No ids wanted (the store reads a limit of 0 as none): the
		 * page is empty, the total as asked. */
		struct query_result probe = {json_array()};
		q.limit = 1;
		r = store_email_query(jc->store, jc->account_id, &q, query_row,
				      &probe, &count, &first, &error);
		json_decref(probe.ids);
	} else {
		r = store_email_query(jc->store, jc->account_id, &q, query_row,
				      &result, &count, &first, &error);
	}
	free(arena);
	if (r == -2) {
		json_decref(result.ids);
		json_decref(state);
		return jmap_fail(jc, "anchorNotFound", NULL);
	}
	if (r != 0 || state == NULL) {
		if (r != 0)
			log_error("Email/query: %s", error);
		json_decref(result.ids);
		json_decref(state);
		return jmap_fail(jc, "serverFail", NULL);
	}
	json_t *o =
		json_pack("{s:s, s:o, s:b, s:I, s:o}", "accountId", jc->account,
			  "queryState", state, "canCalculateChanges", 0,
			  "position", (json_int_t)first, "ids", result.ids);
	if (total)
		json_object_set_new(o, "total",
				    json_integer((json_int_t)count));
	if (limited && json_is_integer(limit))
		json_object_set_new(o, "limit",
				    json_integer(JMAP_MAX_QUERY_LIMIT));
	return o;
}

/* ---- Email/changes, Thread/changes ---- */

struct change_lists {
	json_t *created, *updated, *destroyed;
	char prefix;
};

static void change_row(enum store_change kind, uint64_t id, void *context)
{
	struct change_lists *l = context;
	char text[JMAP_ID_TEXT_SIZE];
	jmap_make_id(l->prefix, id, text);
	json_t *list = kind == STORE_CREATED   ? l->created
		       : kind == STORE_UPDATED ? l->updated
					       : l->destroyed;
	json_array_append_new(list, json_string(text));
}

json_t *jmap_changes(struct jmap_context *jc, json_t *args, char prefix,
		     changes_fn *fn)
{
	json_t *since = json_object_get(args, "sinceState");
	json_t *max = json_object_get(args, "maxChanges");
	if (!json_is_string(since) ||
	    (max != NULL && !json_is_null(max) &&
	     (!json_is_integer(max) || json_integer_value(max) < 1)))
		return jmap_fail(jc, "invalidArguments", NULL);
	char *end;
	const char *text = json_string_value(since);
	errno = 0;
	unsigned long long old = strtoull(text, &end, 10);
	if (*text == '\0' || *end != '\0' || errno != 0 || !isdigit(*text))
		return jmap_fail(jc, "cannotCalculateChanges", NULL);
	struct change_lists l = {json_array(), json_array(), json_array(),
				 prefix};
	uint64_t now;
	bool more;
	const char *error;
	int r = fn(jc->store, jc->account_id, old,
		   json_is_integer(max) ? (size_t)json_integer_value(max) : 0,
		   change_row, &l, &now, &more, &error);
	if (r != 0) {
		json_decref(l.created);
		json_decref(l.updated);
		json_decref(l.destroyed);
		if (r == -2)
			return jmap_fail(jc, "cannotCalculateChanges", NULL);
		log_error("changes: %s", error);
		return jmap_fail(jc, "serverFail", NULL);
	}
	char state[24];
	snprintf(state, sizeof(state), "%llu", (unsigned long long)now);
	return json_pack("{s:s, s:s, s:s, s:b, s:o, s:o, s:o}", "accountId",
			 jc->account, "oldState", text, "newState", state,
			 "hasMoreChanges", more, "created", l.created,
			 "updated", l.updated, "destroyed", l.destroyed);
}

json_t *jmap_email_changes(struct jmap_context *jc, json_t *args)
{
	return jmap_changes(jc, args, 'e', store_email_changes);
}

json_t *jmap_thread_changes(struct jmap_context *jc, json_t *args)
{
	return jmap_changes(jc, args, 't', store_thread_changes);
}

/* ---- Thread/get ---- */

static void thread_email(uint64_t email_id, void *context)
{
	char id[JMAP_ID_TEXT_SIZE];
	jmap_make_id('e', email_id, id);
	json_array_append_new(context, json_string(id));
}

json_t *jmap_thread_get(struct jmap_context *jc, json_t *args)
{
	json_t *ids = json_object_get(args, "ids");
	if (!json_is_array(ids))
		return jmap_fail(jc,
				 json_is_null(ids) || ids == NULL
					 ? "requestTooLarge"
					 : "invalidArguments",
				 "ids must list the threads wanted");
	if (json_array_size(ids) > JMAP_MAX_OBJECTS)
		return jmap_fail(jc, "requestTooLarge", NULL);
	json_t *list = json_array(), *not_found = json_array();
	json_t *state = jmap_state(jc);
	size_t i;
	json_t *want;
	json_array_foreach(ids, i, want)
	{
		uint64_t n;
		const char *id =
			json_is_string(want)
				? jmap_resolve_id(jc, json_string_value(want))
				: NULL;
		json_t *emails = json_array();
		const char *error;
		if (id == NULL || !jmap_parse_id(id, 't', &n) ||
		    store_thread_emails(jc->store, jc->account_id, n,
					thread_email, emails, &error) != 0 ||
		    json_array_size(emails) == 0) {
			json_decref(emails);
			json_array_append(not_found, want);
			continue;
		}
		json_array_append_new(list, json_pack("{s:s, s:o}", "id", id,
						      "emailIds", emails));
	}
	if (state == NULL) {
		json_decref(list);
		json_decref(not_found);
		return jmap_fail(jc, "serverFail", NULL);
	}
	return json_pack("{s:s, s:o, s:o, s:o}", "accountId", jc->account,
			 "state", state, "list", list, "notFound", not_found);
}

/* ---- SearchSnippet/get ---- */

#define JMAP_MAX_SNIPPET_TERMS 16

struct terms {
	const char *words[JMAP_MAX_SNIPPET_TERMS];
	size_t lengths[JMAP_MAX_SNIPPET_TERMS];
	size_t count;
};

static void add_terms(struct terms *t, const char *text)
{
	if (text == NULL)
		return;
	const char *p = text;
	while (*p && t->count < JMAP_MAX_SNIPPET_TERMS) {
		while (*p == ' ' || *p == '\t')
			p++;
		const char *start = p;
		while (*p && *p != ' ' && *p != '\t')
			p++;
		if (p > start) {
			t->words[t->count] = start;
			t->lengths[t->count] = (size_t)(p - start);
			t->count++;
		}
	}
}

static void collect_terms(json_t *f, struct terms *t, unsigned depth)
{
	if (!json_is_object(f) || depth > JMAP_MAX_FILTER_DEPTH)
		return;
	json_t *conditions = json_object_get(f, "conditions");
	json_t *op = json_object_get(f, "operator");
	if (json_is_string(op)) {
		/* Words under NOT are what the Emails do not hold. */
		if (strcmp(json_string_value(op), "NOT") == 0)
			return;
		size_t i;
		json_t *c;
		json_array_foreach(conditions, i, c)
			collect_terms(c, t, depth + 1);
		return;
	}
	static const char *const fields[] = {"text", "subject", "body"};
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
		json_t *v = json_object_get(f, fields[i]);
		if (json_is_string(v))
			add_terms(t, json_string_value(v));
	}
}

/* Where a term starts in text from `from` on (without case, Unicode's
 * lower case included), and how long the match is; SIZE_MAX when none. */
static size_t find_term(const char *text, size_t n, size_t from,
			const struct terms *t, size_t *len_r)
{
	for (size_t i = from; i < n; i++) {
		if (((unsigned char)text[i] & 0xc0) == 0x80)
			continue;
		for (size_t k = 0; k < t->count; k++) {
			size_t len = utf8_fold_prefix(
				slice_make((const uint8_t *)text + i, n - i),
				slice_make((const uint8_t *)t->words[k],
					   t->lengths[k]));
			if (len > 0) {
				*len_r = len;
				return i;
			}
		}
	}
	return SIZE_MAX;
}

/* The text escaped for HTML with each term in <mark>; null when no term
 * occurs. */
static json_t *highlight(const char *text, size_t n, const struct terms *t)
{
	size_t len;
	if (t->count == 0 || find_term(text, n, 0, t, &len) == SIZE_MAX)
		return json_null();
	struct buf out;
	buf_init(&out, 64 * 1024);
	size_t pos = 0;
	for (;;) {
		size_t at = find_term(text, n, pos, t, &len);
		if (at == SIZE_MAX)
			break;
		http_append_escaped_n(&out, text + pos, at - pos);
		buf_append_cstr(&out, "<mark>");
		http_append_escaped_n(&out, text + at, len);
		buf_append_cstr(&out, "</mark>");
		pos = at + len;
	}
	http_append_escaped_n(&out, text + pos, n - pos);
	json_t *v = json_stringn((const char *)out.p, out.n);
	buf_free(&out);
	return v ? v : json_null();
}

struct snippet_get {
	struct jmap_context *jc;
	const struct terms *terms;
	json_t *list, *found;
};

static void snippet_row(const struct store_email *e, void *context)
{
	struct snippet_get *g = context;
	char id[JMAP_ID_TEXT_SIZE];
	jmap_make_id('e', e->id, id);
	struct jmap_message msg;
	json_t *subject = json_null();
	if (jmap_message_load(g->jc, e->id, &msg) > 0) {
		struct buf b;
		buf_init(&b, 64 * 1024);
		if (mime_header_value(msg.mime, "Subject", &b)) {
			json_decref(subject);
			subject = highlight((const char *)b.p, b.n, g->terms);
		}
		buf_free(&b);
		jmap_message_free(&msg);
	}
	/* The preview: some 200 bytes of text around the first match. */
	const char *text = e->body;
	size_t n = strlen(text), len;
	size_t at = find_term(text, n, 0, g->terms, &len);
	json_t *preview = json_null();
	if (at != SIZE_MAX) {
		size_t start = at > 60 ? at - 60 : 0;
		while (start > 0 && ((unsigned char)text[start] & 0xc0) == 0x80)
			start--;
		size_t end = start + 200 < n ? start + 200 : n;
		while (end < n && ((unsigned char)text[end] & 0xc0) == 0x80)
			end++;
		char *copy = xmalloc(end - start + 1);
		size_t k = 0;
		for (size_t i = start; i < end; i++)
			copy[k++] = strchr("\r\n\t", text[i]) ? ' ' : text[i];
		copy[k] = '\0';
		json_decref(preview);
		preview = highlight(copy, k, g->terms);
		free(copy);
	}
	json_array_append_new(g->list, json_pack("{s:s, s:o, s:o}", "emailId",
						 id, "subject", subject,
						 "preview", preview));
	json_object_set_new(g->found, id, json_true());
}

json_t *jmap_search_snippet_get(struct jmap_context *jc, json_t *args)
{
	json_t *ids = json_object_get(args, "emailIds");
	if (!json_is_array(ids))
		return jmap_fail(jc, "invalidArguments",
				 "emailIds must be an array");
	if (json_array_size(ids) > JMAP_MAX_OBJECTS)
		return jmap_fail(jc, "requestTooLarge", NULL);
	struct terms terms = {0};
	collect_terms(json_object_get(args, "filter"), &terms, 0);
	uint64_t *numbers = xcalloc(json_array_size(ids) + 1, sizeof(*numbers));
	size_t count = 0, i;
	json_t *want;
	json_array_foreach(ids, i, want)
	{
		uint64_t n;
		const char *id =
			json_is_string(want)
				? jmap_resolve_id(jc, json_string_value(want))
				: NULL;
		if (id != NULL && jmap_parse_id(id, 'e', &n))
			numbers[count++] = n;
	}
	struct snippet_get g = {jc, &terms, json_array(), json_object()};
	const char *error;
	int r = store_emails_get(jc->store, jc->account_id, numbers, count,
				 STORE_EMAIL_BODY, snippet_row, &g, &error);
	free(numbers);
	if (r != 0) {
		log_error("SearchSnippet/get: %s", error);
		json_decref(g.list);
		json_decref(g.found);
		return jmap_fail(jc, "serverFail", NULL);
	}
	json_t *not_found = json_array();
	json_array_foreach(ids, i, want)
	{
		const char *id =
			json_is_string(want) ? json_string_value(want) : NULL;
		if (id == NULL ||
		    json_object_get(g.found, jmap_resolve_id(jc, id)) == NULL)
			json_array_append(not_found, want);
	}
	json_decref(g.found);
	return json_pack("{s:s, s:o, s:o}", "accountId", jc->account, "list",
			 g.list, "notFound", not_found);
}
