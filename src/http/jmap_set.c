/* jmap_set.c: Email/set (RFC 8621 4.6) and EmailSubmission/set (7.5):
 * keywords and moves, drafts written by the webmail, destroying, and
 * sending.
 *
 * A new Email is built by src/mime/build.c from its parts, which refuses
 * anything that would inject a header; it is then delivered into the
 * account like any other message, so IMAP sees it at once. Sending
 * delivers to local recipients directly and queues the rest; the From of
 * a message sent must be the account's own address (SECURITY.md: no
 * sending as someone else). */
#include "core/common.h"

#include "http/jmap.h"

#include "core/log.h"
#include "mime/build.h"
#include "mime/jmap.h"
#include "mime/mime.h"

#include <ctype.h>
#include <sodium.h>
#include <strings.h>
#include <time.h>

#define JMAP_MAX_ADDRESSES   100
#define JMAP_MAX_IDS	     100
#define JMAP_MAX_ATTACHMENTS 100
#define JMAP_MAX_MESSAGE     (50u * 1024 * 1024)

/* ---- mailboxes by id ---- */

struct mailbox_find {
	uint64_t id;
	const char *special_use;
	struct store_mailbox *out;
	bool found;
};

static void find_mailbox(const struct store_mailbox *m, void *context)
{
	struct mailbox_find *f = context;
	if (f->found)
		return;
	if ((f->special_use == NULL && m->id == f->id) ||
	    (f->special_use != NULL &&
	     strcasecmp(m->special_use, f->special_use) == 0)) {
		*f->out = *m;
		f->found = true;
	}
}

/* The account's mailbox of an id, or of a special use ("\\Sent"). Returns
 * 1, 0 or -1. */
static int mailbox_lookup(struct jmap_context *jc, uint64_t id,
			  const char *special_use, struct store_mailbox *out)
{
	struct mailbox_find f = {id, special_use, out, false};
	const char *error;
	if (store_mailbox_each(jc->store, jc->account_id, find_mailbox, &f,
			       &error) != 0) {
		log_error("mailboxes: %s", error);
		return -1;
	}
	return f.found;
}

/* ---- keywords ---- */

/* A keywords object into flags and IMAP keywords (lower case). */
static bool keywords_split(json_t *o, unsigned *flags_r, struct buf *keywords)
{
	*flags_r = 0;
	if (!json_is_object(o) || json_object_size(o) > 100)
		return false;
	const char *key;
	json_t *value;
	json_object_foreach(o, key, value)
	{
		char lower[JMAP_MAX_KEYWORD_SIZE + 1];
		if (!json_is_true(value) || !jmap_keyword_normalize(key, lower))
			return false;
		unsigned flag = jmap_keyword_flag(lower);
		if (flag != 0) {
			*flags_r |= flag;
			continue;
		}
		if (keywords->n > 0)
			buf_append_cstr(keywords, " ");
		buf_append_cstr(keywords, lower);
	}
	return true;
}

static json_t *invalid_property(const char *property, const char *description)
{
	return json_pack("{s:s, s:[s], s:s}", "type", "invalidProperties",
			 "properties", property, "description", description);
}

/* Decodes a JSON pointer token (~1 is "/", ~0 is "~"). */
static bool pointer_token(const char *in, char *out, size_t size)
{
	size_t n = 0;
	for (const char *p = in; *p; p++) {
		char c = *p;
		if (c == '~') {
			if (p[1] == '0')
				c = '~';
			else if (p[1] == '1')
				c = '/';
			else
				return false;
			p++;
		}
		if (n + 1 >= size)
			return false;
		out[n++] = c;
	}
	out[n] = '\0';
	return true;
}

/* ---- update ---- */

struct email_state {
	bool found;
	struct store_email e;
	char keywords[4096];
};

static void take_email(const struct store_email *e, void *context)
{
	struct email_state *s = context;
	s->found = true;
	s->e = *e;
	snprintf(s->keywords, sizeof(s->keywords), "%s", e->keywords);
	s->e.keywords = s->keywords;
	s->e.text = "";
}

static int email_state(struct jmap_context *jc, uint64_t id,
		       struct email_state *out)
{
	const char *error;
	out->found = false;
	if (store_emails_get(jc->store, jc->account_id, &id, 1, 0, take_email,
			     out, &error) != 0) {
		log_error("email: %s", error);
		return -1;
	}
	return out->found;
}

static void flags_changed(const struct store_message *m, void *context)
{
	(void)m;
	(void)context;
}

/* Applies one patch (RFC 8620 5.3) to an Email. NULL on success, else the
 * SetError. */
static json_t *update_email(struct jmap_context *jc, const char *id,
			    json_t *patch)
{
	uint64_t email_id;
	struct email_state st;
	if (!json_is_object(patch))
		return jmap_set_error("invalidPatch", NULL);
	if (!jmap_parse_id(id, 'e', &email_id))
		return jmap_set_error("notFound", NULL);
	int r = email_state(jc, email_id, &st);
	if (r < 0)
		return jmap_set_error("serverFail", NULL);
	if (r == 0)
		return jmap_set_error("notFound", NULL);
	json_t *keywords = jmap_keywords_object(st.e.flags, st.e.keywords);
	char mailbox[JMAP_ID_TEXT_SIZE];
	jmap_make_id('m', st.e.mailbox_id, mailbox);
	json_t *mailboxes = json_pack("{s:b}", mailbox, 1);
	json_t *error = NULL;
	const char *key;
	json_t *value;
	json_object_foreach(patch, key, value)
	{
		char token[512];
		if (strcmp(key, "keywords") == 0) {
			if (!json_is_object(value)) {
				error = invalid_property(key, "an object");
				break;
			}
			json_decref(keywords);
			keywords = json_object();
			const char *k;
			json_t *v;
			json_object_foreach(value, k, v)
			{
				char lower[JMAP_MAX_KEYWORD_SIZE + 1];
				if (!json_is_true(v) ||
				    !jmap_keyword_normalize(k, lower)) {
					error = invalid_property(
						"keywords", "invalid keyword");
					break;
				}
				json_object_set_new(keywords, lower,
						    json_true());
			}
		} else if (strncmp(key, "keywords/", 9) == 0) {
			char lower[JMAP_MAX_KEYWORD_SIZE + 1];
			if (!pointer_token(key + 9, token, sizeof(token)) ||
			    !jmap_keyword_normalize(token, lower) ||
			    !(json_is_true(value) || json_is_null(value))) {
				error = invalid_property(key, "a keyword");
				break;
			}
			if (json_is_true(value))
				json_object_set_new(keywords, lower,
						    json_true());
			else
				json_object_del(keywords, lower);
		} else if (strcmp(key, "mailboxIds") == 0) {
			if (!json_is_object(value)) {
				error = invalid_property(key, "an object");
				break;
			}
			json_decref(mailboxes);
			mailboxes = json_object();
			const char *k;
			json_t *v;
			json_object_foreach(value, k, v)
			{
				if (json_is_true(v))
					json_object_set_new(
						mailboxes,
						jmap_resolve_id(jc, k),
						json_true());
			}
		} else if (strncmp(key, "mailboxIds/", 11) == 0) {
			if (!pointer_token(key + 11, token, sizeof(token)) ||
			    !(json_is_true(value) || json_is_null(value))) {
				error = invalid_property(key, "a mailbox");
				break;
			}
			const char *m = jmap_resolve_id(jc, token);
			if (json_is_true(value))
				json_object_set_new(mailboxes, m, json_true());
			else
				json_object_del(mailboxes, m);
		} else {
			error = invalid_property(
				key, "only keywords and mailboxIds change");
			break;
		}
	}
	unsigned flags = 0;
	struct buf words;
	buf_init(&words, 64 * 1024);
	if (error == NULL && !keywords_split(keywords, &flags, &words))
		error = invalid_property("keywords", "invalid keyword");
	uint64_t target = 0;
	struct store_mailbox tm;
	if (error == NULL) {
		const char *only = NULL;
		if (json_object_size(mailboxes) == 1) {
			void *it = json_object_iter(mailboxes);
			only = json_object_iter_key(it);
		}
		if (only == NULL || !jmap_parse_id(only, 'm', &target) ||
		    mailbox_lookup(jc, target, NULL, &tm) != 1)
			error = invalid_property(
				"mailboxIds",
				"an Email is in exactly one existing mailbox");
	}
	const char *why;
	/* \Deleted is IMAP's own: JMAP neither shows nor changes it. */
	flags |= st.e.flags & STORE_FLAG_DELETED;
	if (error == NULL && (flags != st.e.flags ||
			      strcmp(buf_cstr(&words), st.keywords) != 0)) {
		if (store_flags_update(jc->store, jc->account_id,
				       st.e.mailbox_id, &st.e.uid, 1,
				       STORE_FLAGS_SET, flags, buf_cstr(&words),
				       STORE_NO_UNCHANGEDSINCE, flags_changed,
				       NULL, NULL, &why) != 0) {
			log_error("Email/set: %s", why);
			error = jmap_set_error("serverFail", NULL);
		}
	}
	if (error == NULL && target != st.e.mailbox_id) {
		uint32_t new_uid, uidvalidity;
		if (store_copy(jc->store, jc->account_id, st.e.mailbox_id,
			       &st.e.uid, 1, target, true, &new_uid,
			       &uidvalidity, &why) != 0) {
			log_error("Email/set: %s", why);
			error = jmap_set_error("serverFail", NULL);
		}
	}
	buf_free(&words);
	json_decref(keywords);
	json_decref(mailboxes);
	if (error == NULL)
		jmap_notify(jc, jc->account_id);
	return error;
}

/* ---- create ---- */

struct addresses {
	struct mime_build_address list[JMAP_MAX_ADDRESSES];
	size_t count;
};

/* An EmailAddress[] property; false when malformed. */
static bool take_addresses(json_t *o, const char *name, struct addresses *a)
{
	json_t *v = json_object_get(o, name);
	a->count = 0;
	if (v == NULL || json_is_null(v))
		return true;
	if (!json_is_array(v) || json_array_size(v) > JMAP_MAX_ADDRESSES)
		return false;
	size_t i;
	json_t *item;
	json_array_foreach(v, i, item)
	{
		json_t *n = json_object_get(item, "name");
		json_t *e = json_object_get(item, "email");
		if (!json_is_string(e) ||
		    (n != NULL && !json_is_null(n) && !json_is_string(n)))
			return false;
		const char *display =
			json_is_string(n) ? json_string_value(n) : NULL;
		a->list[a->count++] = (struct mime_build_address){
			.name = display && *display ? display : NULL,
			.email = json_string_value(e),
		};
	}
	return true;
}

static bool take_ids(json_t *o, const char *name, const char **ids,
		     size_t *count_r)
{
	json_t *v = json_object_get(o, name);
	*count_r = 0;
	if (v == NULL || json_is_null(v))
		return true;
	if (!json_is_array(v) || json_array_size(v) > JMAP_MAX_IDS)
		return false;
	size_t i;
	json_t *item;
	json_array_foreach(v, i, item)
	{
		if (!json_is_string(item))
			return false;
		ids[(*count_r)++] = json_string_value(item);
	}
	return true;
}

int jmap_blob_bytes(struct jmap_context *jc, const char *blob, struct buf *out,
		    char *type, size_t type_size)
{
	uint64_t n;
	const char *error;
	if (jmap_parse_id(blob, 'U', &n)) {
		int r = store_upload_get(jc->store, jc->account_id, n, out,
					 type, type_size, &error);
		if (r < 0)
			log_error("upload: %s", error);
		return r;
	}
	if (blob[0] != 'G')
		return 0;
	char number[32];
	const char *dot = strchr(blob, '.');
	size_t len = dot ? (size_t)(dot - blob) : strlen(blob);
	if (len >= sizeof(number))
		return 0;
	memcpy(number, blob, len);
	number[len] = '\0';
	if (!jmap_parse_id(number, 'G', &n))
		return 0;
	struct jmap_message m;
	int r = jmap_message_load(jc, n, &m);
	if (r <= 0)
		return r;
	if (dot == NULL) {
		buf_append(out, m.data, m.size);
		snprintf(type, type_size, "message/rfc822");
	} else if (mime_part_content(m.mime, dot + 1, out) != 0) {
		r = 0;
	} else {
		snprintf(type, type_size, "application/octet-stream");
	}
	jmap_message_free(&m);
	return r;
}

/* The text of a body part of a new Email: its value in bodyValues. */
static const char *body_text(json_t *o, const char *property, const char *type,
			     json_t **error_r)
{
	json_t *list = json_object_get(o, property);
	if (list == NULL || json_is_null(list))
		return NULL;
	json_t *part = json_array_get(list, 0);
	json_t *part_id = json_object_get(part, "partId");
	json_t *part_type = json_object_get(part, "type");
	json_t *value = json_object_get(
		json_object_get(json_object_get(o, "bodyValues"),
				json_string_value(part_id)),
		"value");
	if (!json_is_array(list) || json_array_size(list) != 1 ||
	    !json_is_string(part_id) || !json_is_string(value) ||
	    (part_type != NULL && !json_is_null(part_type) &&
	     (!json_is_string(part_type) ||
	      strcasecmp(json_string_value(part_type), type) != 0))) {
		*error_r =
			invalid_property(property, "one part with its value in"
						   " bodyValues");
		return NULL;
	}
	return json_string_value(value);
}

static void random_message_id(const char *address, char *out, size_t size)
{
	uint8_t r[16];
	randombytes_buf(r, sizeof(r));
	char hex[33];
	sodium_bin2hex(hex, sizeof(hex), r, sizeof(r));
	const char *at = strrchr(address, '@');
	snprintf(out, size, "%s@%s", hex, at ? at + 1 : "localhost");
}

struct created_email {
	uint64_t id, thread_id, size;
};

static void take_created(const struct store_email *e, void *context)
{
	struct created_email *c = context;
	c->id = e->id;
	c->thread_id = e->thread_id;
	c->size = e->size;
}

/* Delivers bytes into a mailbox of the account; sets *email_r. */
static int store_new_email(struct jmap_context *jc,
			   const struct store_mailbox *mailbox,
			   const uint8_t *data, size_t size, unsigned flags,
			   const char *keywords, time_t received,
			   struct created_email *email_r)
{
	uint32_t uid = 0;
	struct store_delivery d = {
		.data = data,
		.size = size,
		.internal_date = received,
		.mailbox = mailbox->name,
		.flags = flags,
		.keywords = keywords,
		.accounts = &jc->account_id,
		.account_count = 1,
		.sender = "",
		.uids = &uid,
	};
	struct store_delivery *batch[1] = {&d};
	if (store_deliver_batch(jc->store, batch, 1) != 0 || uid == 0) {
		log_error("Email/set create: %s", d.error ? d.error : "failed");
		return -1;
	}
	const char *error;
	uint64_t id;
	if (store_email_by_uid(jc->store, jc->account_id, mailbox->id, uid, &id,
			       &error) != 1 ||
	    store_emails_get(jc->store, jc->account_id, &id, 1, 0, take_created,
			     email_r, &error) != 0) {
		log_error("Email/set create: lost the new message");
		return -1;
	}
	jmap_notify(jc, jc->account_id);
	return 0;
}

/* The JMAP property a builder error names ("reply-to: invalid address"
 * is replyTo's). */
static const char *build_property(const char *why)
{
	static const struct {
		const char *field, *property;
	} map[] = {
		{"from", "from"},
		{"sender", "sender"},
		{"reply-to", "replyTo"},
		{"to", "to"},
		{"cc", "cc"},
		{"bcc", "bcc"},
		{"subject", "subject"},
		{"message-id", "messageId"},
		{"in-reply-to", "inReplyTo"},
		{"references", "references"},
		{"part", "attachments"},
		{"text", "textBody"},
		{"html", "htmlBody"},
	};
	size_t n = strcspn(why, ":");
	for (size_t i = 0; i < ARRAY_SIZE(map); i++)
		if (strlen(map[i].field) == n &&
		    strncmp(why, map[i].field, n) == 0)
			return map[i].property;
	return "attachments";
}

static json_t *create_email(struct jmap_context *jc, json_t *o,
			    json_t **created_r)
{
	static const char *const allowed[] = {
		"mailboxIds", "keywords",    "from",	   "to",
		"cc",	      "bcc",	     "replyTo",	   "sender",
		"subject",    "inReplyTo",   "references", "messageId",
		"sentAt",     "receivedAt",  "textBody",   "htmlBody",
		"bodyValues", "attachments",
	};
	if (!json_is_object(o))
		return jmap_set_error("invalidProperties", NULL);
	const char *key;
	json_t *value;
	json_object_foreach(o, key, value)
	{
		bool ok = false;
		for (size_t i = 0; i < ARRAY_SIZE(allowed); i++)
			ok |= strcmp(key, allowed[i]) == 0;
		if (!ok)
			return invalid_property(key, "not settable by dijk");
	}
	json_t *mailboxes = json_object_get(o, "mailboxIds");
	uint64_t mailbox_id;
	struct store_mailbox mailbox;
	void *it = json_object_iter(mailboxes);
	if (!json_is_object(mailboxes) || json_object_size(mailboxes) != 1 ||
	    !json_is_true(json_object_iter_value(it)) ||
	    !jmap_parse_id(jmap_resolve_id(jc, json_object_iter_key(it)), 'm',
			   &mailbox_id) ||
	    mailbox_lookup(jc, mailbox_id, NULL, &mailbox) != 1)
		return invalid_property("mailboxIds",
					"an Email is in exactly one existing"
					" mailbox");
	unsigned flags = 0;
	struct buf keywords;
	buf_init(&keywords, 64 * 1024);
	json_t *kw = json_object_get(o, "keywords");
	if (kw != NULL && !keywords_split(kw, &flags, &keywords)) {
		buf_free(&keywords);
		return invalid_property("keywords", "invalid keyword");
	}
	struct addresses from, to, cc, bcc, reply_to, sender;
	const char *in_reply_to[JMAP_MAX_IDS], *references[JMAP_MAX_IDS],
		*message_id[JMAP_MAX_IDS];
	size_t in_reply_to_count, references_count, message_id_count;
	json_t *error = NULL;
	if (!take_addresses(o, "from", &from) ||
	    !take_addresses(o, "to", &to) || !take_addresses(o, "cc", &cc) ||
	    !take_addresses(o, "bcc", &bcc) ||
	    !take_addresses(o, "replyTo", &reply_to) ||
	    !take_addresses(o, "sender", &sender) || sender.count > 1)
		error = invalid_property("from", "addresses are"
						 " [{name, email}]");
	else if (!take_ids(o, "inReplyTo", in_reply_to, &in_reply_to_count) ||
		 !take_ids(o, "references", references, &references_count) ||
		 !take_ids(o, "messageId", message_id, &message_id_count) ||
		 message_id_count > 1)
		error = invalid_property("references", "a list of ids");
	json_t *subject = json_object_get(o, "subject");
	if (error == NULL && subject != NULL && !json_is_null(subject) &&
	    !json_is_string(subject))
		error = invalid_property("subject", "a string");
	const char *text = NULL, *html = NULL;
	if (error == NULL)
		text = body_text(o, "textBody", "text/plain", &error);
	if (error == NULL)
		html = body_text(o, "htmlBody", "text/html", &error);
	json_t *sent = json_object_get(o, "sentAt");
	int64_t sent_time = time(NULL);
	int sent_offset = 0;
	if (error == NULL && sent != NULL && !json_is_null(sent) &&
	    (!json_is_string(sent) ||
	     !jmap_parse_date(json_string_value(sent), &sent_time,
			      &sent_offset)))
		error = invalid_property("sentAt", "a Date");
	json_t *received = json_object_get(o, "receivedAt");
	int64_t received_at = time(NULL);
	if (error == NULL && received != NULL && !json_is_null(received) &&
	    (!json_is_string(received) ||
	     !jmap_parse_utc_date(json_string_value(received), &received_at)))
		error = invalid_property("receivedAt", "a UTCDate");
	/* Attachments: uploads, or parts of the account's messages (a
	 * forward). */
	json_t *attachments = json_object_get(o, "attachments");
	struct mime_build_part parts[JMAP_MAX_ATTACHMENTS];
	struct buf data[JMAP_MAX_ATTACHMENTS];
	size_t part_count = 0;
	if (error == NULL && attachments != NULL &&
	    !json_is_null(attachments) &&
	    (!json_is_array(attachments) ||
	     json_array_size(attachments) > JMAP_MAX_ATTACHMENTS))
		error = invalid_property("attachments", "a list of parts");
	size_t i;
	json_t *a;
	size_t total = 0;
	if (error == NULL && json_is_array(attachments)) {
		json_array_foreach(attachments, i, a)
		{
			json_t *blob = json_object_get(a, "blobId");
			json_t *type = json_object_get(a, "type");
			json_t *name = json_object_get(a, "name");
			json_t *cid = json_object_get(a, "cid");
			json_t *disposition = json_object_get(a, "disposition");
			char stored_type[128];
			if (!json_is_string(blob)) {
				error = invalid_property("attachments",
							 "a blobId each");
				break;
			}
			buf_init(&data[part_count], JMAP_MAX_MESSAGE);
			int r = jmap_blob_bytes(
				jc,
				jmap_resolve_id(jc, json_string_value(blob)),
				&data[part_count], stored_type,
				sizeof(stored_type));
			part_count++;
			if (r <= 0) {
				error = r < 0 ? jmap_set_error("serverFail",
							       NULL)
					      : json_pack("{s:s, s:[s]}",
							  "type",
							  "blobNotFound",
							  "notFound",
							  json_string_value(
								  blob));
				break;
			}
			total += data[part_count - 1].n;
			if (total > JMAP_MAX_MESSAGE) {
				error = jmap_set_error("tooLarge", NULL);
				break;
			}
			parts[part_count - 1] = (struct mime_build_part){
				.type = json_is_string(type)
						? json_string_value(type)
						: "application/octet-stream",
				.name = json_is_string(name)
						? json_string_value(name)
						: NULL,
				.cid = json_is_string(cid)
					       ? json_string_value(cid)
					       : NULL,
				.is_inline = json_is_string(disposition) &&
					     strcasecmp(json_string_value(
								disposition),
							"inline") == 0,
				.data = data[part_count - 1].p,
				.size = data[part_count - 1].n,
			};
		}
	}
	char generated_id[128];
	random_message_id(jc->address, generated_id, sizeof(generated_id));
	struct buf message;
	buf_init(&message, 2 * JMAP_MAX_MESSAGE);
	if (error == NULL) {
		struct mime_build b = {
			.from = from.list,
			.from_count = from.count,
			.sender = sender.count ? &sender.list[0] : NULL,
			.reply_to = reply_to.list,
			.reply_to_count = reply_to.count,
			.to = to.list,
			.to_count = to.count,
			.cc = cc.list,
			.cc_count = cc.count,
			.bcc = bcc.list,
			.bcc_count = bcc.count,
			.include_bcc = true,
			.subject = json_is_string(subject)
					   ? json_string_value(subject)
					   : NULL,
			.message_id =
				message_id_count ? message_id[0] : generated_id,
			.in_reply_to = in_reply_to,
			.in_reply_to_count = in_reply_to_count,
			.references = references,
			.references_count = references_count,
			.date = (time_t)sent_time,
			.date_offset_minutes = sent_offset,
			.text = text,
			.html = html,
			.parts = parts,
			.part_count = part_count,
			.extra_headers =
				(const char *const[]){"User-Agent: dijk"
						      " webmail"},
			.extra_count = 1,
		};
		const char *why;
		if (mime_build_message(&b, &message, &why) != 0) {
			/* "to: invalid address": the property is the word
			 * before the colon. */
			error = invalid_property(build_property(why), why);
		}
	}
	struct created_email made = {0};
	if (error == NULL && store_new_email(jc, &mailbox, message.p, message.n,
					     flags, buf_cstr(&keywords),
					     (time_t)received_at, &made) != 0)
		error = jmap_set_error("serverFail", NULL);
	for (size_t k = 0; k < part_count; k++)
		buf_free(&data[k]);
	buf_free(&message);
	buf_free(&keywords);
	if (error != NULL)
		return error;
	char id[JMAP_ID_TEXT_SIZE], blob[JMAP_ID_TEXT_SIZE],
		thread[JMAP_ID_TEXT_SIZE];
	jmap_make_id('e', made.id, id);
	jmap_make_id('G', made.id, blob);
	jmap_make_id('t', made.thread_id, thread);
	*created_r =
		json_pack("{s:s, s:s, s:s, s:I}", "id", id, "blobId", blob,
			  "threadId", thread, "size", (json_int_t)made.size);
	return NULL;
}

/* ---- Email/set ---- */

static void destroyed_one(uint64_t email_id, uint64_t mailbox_id, uint32_t uid,
			  void *context)
{
	(void)mailbox_id;
	(void)uid;
	char id[JMAP_ID_TEXT_SIZE];
	jmap_make_id('e', email_id, id);
	json_array_append_new(context, json_string(id));
}

/* Checks ifInState; NULL when it holds. */
static json_t *check_state(struct jmap_context *jc, json_t *args, json_t *state)
{
	json_t *if_in = json_object_get(args, "ifInState");
	if (if_in == NULL || json_is_null(if_in))
		return NULL;
	if (!json_is_string(if_in) ||
	    strcmp(json_string_value(if_in), json_string_value(state)) != 0)
		return jmap_fail(jc, "stateMismatch", NULL);
	return NULL;
}

json_t *jmap_email_set(struct jmap_context *jc, json_t *args)
{
	json_t *create = json_object_get(args, "create");
	json_t *update = json_object_get(args, "update");
	json_t *destroy = json_object_get(args, "destroy");
	if ((create != NULL && !json_is_null(create) &&
	     !json_is_object(create)) ||
	    (update != NULL && !json_is_null(update) &&
	     !json_is_object(update)) ||
	    (destroy != NULL && !json_is_null(destroy) &&
	     !json_is_array(destroy)))
		return jmap_fail(jc, "invalidArguments", NULL);
	if (json_object_size(create) + json_object_size(update) +
		    json_array_size(destroy) >
	    JMAP_MAX_OBJECTS)
		return jmap_fail(jc, "requestTooLarge", NULL);
	json_t *old_state = jmap_state(jc);
	if (old_state == NULL)
		return jmap_fail(jc, "serverFail", NULL);
	json_t *refused = check_state(jc, args, old_state);
	if (refused != NULL) {
		json_decref(old_state);
		return refused;
	}
	json_t *created = json_object(), *not_created = json_object();
	json_t *updated = json_object(), *not_updated = json_object();
	json_t *destroyed = json_array(), *not_destroyed = json_object();
	const char *key;
	json_t *value;
	json_object_foreach(create, key, value)
	{
		json_t *made = NULL;
		json_t *error = create_email(jc, value, &made);
		if (error != NULL) {
			json_object_set_new(not_created, key, error);
			continue;
		}
		json_object_set_new(jc->created, key,
				    json_incref(json_object_get(made, "id")));
		json_object_set_new(created, key, made);
	}
	json_object_foreach(update, key, value)
	{
		const char *id = jmap_resolve_id(jc, key);
		json_t *error = update_email(jc, id, value);
		if (error != NULL)
			json_object_set_new(not_updated, key, error);
		else
			json_object_set_new(updated, key, json_null());
	}
	if (json_array_size(destroy) > 0) {
		uint64_t *ids = xcalloc(json_array_size(destroy), sizeof(*ids));
		size_t count = 0, i;
		json_t *item;
		json_array_foreach(destroy, i, item)
		{
			uint64_t n;
			const char *id =
				json_is_string(item)
					? jmap_resolve_id(
						  jc, json_string_value(item))
					: NULL;
			if (id != NULL && jmap_parse_id(id, 'e', &n))
				ids[count++] = n;
		}
		const char *why;
		if (store_emails_destroy(jc->store, jc->account_id, ids, count,
					 destroyed_one, destroyed, &why) != 0) {
			log_error("Email/set destroy: %s", why);
			json_array_clear(destroyed);
		}
		free(ids);
		if (json_array_size(destroyed) > 0)
			jmap_notify(jc, jc->account_id);
		json_array_foreach(destroy, i, item)
		{
			bool gone = false;
			const char *id =
				json_is_string(item)
					? jmap_resolve_id(
						  jc, json_string_value(item))
					: "";
			size_t k;
			json_t *d;
			json_array_foreach(destroyed, k, d) gone |=
				strcmp(json_string_value(d), id) == 0;
			if (!gone && json_is_string(item))
				json_object_set_new(
					not_destroyed, json_string_value(item),
					jmap_set_error("notFound", NULL));
		}
	}
	json_t *new_state = jmap_state(jc);
	return json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
			 "accountId", jc->account, "oldState", old_state,
			 "newState", new_state ? new_state : json_string(""),
			 "created", created, "updated", updated, "destroyed",
			 destroyed, "notCreated", not_created, "notUpdated",
			 not_updated, "notDestroyed", not_destroyed);
}

/* ---- EmailSubmission/set ---- */

struct recipients {
	char (*list)[STORE_MAX_ADDRESS];
	size_t count, cap;
};

static void add_recipient(const char *name, const char *email, void *context)
{
	(void)name;
	struct recipients *r = context;
	if (*email == '\0' || strlen(email) >= STORE_MAX_ADDRESS)
		return;
	for (size_t i = 0; i < r->count; i++)
		if (strcasecmp(r->list[i], email) == 0)
			return;
	if (r->count == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 16;
		r->list = xrealloc(r->list, r->cap * sizeof(*r->list));
	}
	snprintf(r->list[r->count++], STORE_MAX_ADDRESS, "%s", email);
}

struct from_check {
	const char *address;
	size_t count;
	bool ours;
};

static void check_from(const char *name, const char *email, void *context)
{
	(void)name;
	struct from_check *f = context;
	f->count++;
	f->ours = f->count == 1 && strcasecmp(email, f->address) == 0;
}

/* The message without its Bcc fields: what recipients see. */
static void strip_bcc(const uint8_t *data, size_t size, struct buf *out)
{
	size_t pos = 0;
	bool skipping = false;
	while (pos < size) {
		const uint8_t *nl = memchr(data + pos, '\n', size - pos);
		size_t end = nl ? (size_t)(nl - data) + 1 : size;
		size_t len = end - pos;
		bool blank =
			len <= 2 && (data[pos] == '\r' || data[pos] == '\n');
		if (blank) {
			buf_append(out, data + pos, size - pos);
			return;
		}
		bool continuation = data[pos] == ' ' || data[pos] == '\t';
		if (!continuation)
			skipping = len >= 4 &&
				   strncasecmp((const char *)data + pos,
					       "bcc:", 4) == 0;
		if (!skipping)
			buf_append(out, data + pos, len);
		pos = end;
	}
}

static json_t *submit_one(struct jmap_context *jc, json_t *o, uint64_t *email_r)
{
	json_t *identity = json_object_get(o, "identityId");
	json_t *email = json_object_get(o, "emailId");
	char expected[JMAP_ID_TEXT_SIZE];
	jmap_make_id('i', jc->account_id, expected);
	if (!json_is_string(identity) ||
	    strcmp(json_string_value(identity), expected) != 0)
		return invalid_property("identityId", "the account's identity");
	uint64_t id;
	if (!json_is_string(email) ||
	    !jmap_parse_id(jmap_resolve_id(jc, json_string_value(email)), 'e',
			   &id))
		return invalid_property("emailId", "an Email of the account");
	json_t *envelope = json_object_get(o, "envelope");
	if (envelope != NULL && !json_is_null(envelope))
		return invalid_property("envelope",
					"dijk takes the envelope from the"
					" message");
	struct jmap_message m;
	int r = jmap_message_load(jc, id, &m);
	if (r <= 0)
		return r < 0 ? jmap_set_error("serverFail", NULL)
			     : jmap_set_error("notFound", "no such Email");
	struct from_check from = {jc->address, 0, false};
	mime_header_addresses(m.mime, "From", check_from, &from);
	if (from.count != 1 || !from.ours) {
		jmap_message_free(&m);
		return jmap_set_error("forbiddenFrom",
				      "From must be the account's own address");
	}
	struct recipients rcpt = {0};
	static const char *const fields[] = {"To", "Cc", "Bcc"};
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++)
		mime_header_addresses(m.mime, fields[i], add_recipient, &rcpt);
	if (rcpt.count == 0) {
		jmap_message_free(&m);
		free(rcpt.list);
		return jmap_set_error("noRecipients", NULL);
	}
	uint64_t *accounts = xcalloc(rcpt.count, sizeof(*accounts));
	const char **remote = xcalloc(rcpt.count, sizeof(*remote));
	size_t local_count = 0, remote_count = 0;
	json_t *error = NULL;
	for (size_t i = 0; i < rcpt.count && error == NULL; i++) {
		const char *why;
		const char *at = strrchr(rcpt.list[i], '@');
		if (at == NULL || !mime_build_address_valid(rcpt.list[i])) {
			error = json_pack("{s:s, s:[s]}", "type",
					  "invalidRecipients",
					  "invalidRecipients", rcpt.list[i]);
			break;
		}
		int local = store_domain_exists(jc->store, slice_cstr(at + 1),
						&why);
		uint64_t account;
		int found =
			local == 1 ? store_user_lookup(jc->store,
						       slice_cstr(rcpt.list[i]),
						       &account, &why)
				   : 0;
		if (local < 0 || found < 0) {
			error = jmap_set_error("serverFail", NULL);
		} else if (local == 1 && found == 0) {
			error = json_pack("{s:s, s:[s]}", "type",
					  "invalidRecipients",
					  "invalidRecipients", rcpt.list[i]);
		} else if (local == 1) {
			bool seen = false;
			for (size_t k = 0; k < local_count; k++)
				seen |= accounts[k] == account;
			if (!seen)
				accounts[local_count++] = account;
		} else {
			remote[remote_count++] = rcpt.list[i];
		}
	}
	if (error == NULL) {
		struct buf wire;
		buf_init(&wire, m.size + 1);
		strip_bcc(m.data, m.size, &wire);
		uint32_t *uids = xcalloc(local_count + 1, sizeof(*uids));
		struct store_delivery d = {
			.data = wire.p,
			.size = wire.n,
			.internal_date = time(NULL),
			.accounts = accounts,
			.account_count = local_count,
			.sender = jc->address,
			.remote_recipients = remote,
			.remote_count = remote_count,
			.uids = uids,
		};
		struct store_delivery *batch[1] = {&d};
		if (store_deliver_batch(jc->store, batch, 1) != 0) {
			log_error("EmailSubmission/set: %s",
				  d.error ? d.error : "failed");
			error = jmap_set_error("serverFail", NULL);
		} else {
			for (size_t k = 0; k < local_count; k++)
				jmap_notify(jc, accounts[k]);
			log_info("webmail: %s sent a message to %zu local and"
				 " %zu remote recipients",
				 jc->address, local_count, remote_count);
		}
		free(uids);
		buf_free(&wire);
	}
	free(accounts);
	free(remote);
	free(rcpt.list);
	jmap_message_free(&m);
	*email_r = id;
	return error;
}

json_t *jmap_submission_set(struct jmap_context *jc, json_t *args)
{
	json_t *create = json_object_get(args, "create");
	json_t *update = json_object_get(args, "update");
	json_t *destroy = json_object_get(args, "destroy");
	json_t *on_update = json_object_get(args, "onSuccessUpdateEmail");
	json_t *on_destroy = json_object_get(args, "onSuccessDestroyEmail");
	if ((create != NULL && !json_is_null(create) &&
	     !json_is_object(create)) ||
	    (on_update != NULL && !json_is_null(on_update) &&
	     !json_is_object(on_update)) ||
	    (on_destroy != NULL && !json_is_null(on_destroy) &&
	     !json_is_array(on_destroy)))
		return jmap_fail(jc, "invalidArguments", NULL);
	if (json_object_size(create) > JMAP_MAX_OBJECTS)
		return jmap_fail(jc, "requestTooLarge", NULL);
	json_t *old_state = jmap_state(jc);
	if (old_state == NULL)
		return jmap_fail(jc, "serverFail", NULL);
	json_t *created = json_object(), *not_created = json_object();
	json_t *not_updated = json_object(), *not_destroyed = json_object();
	json_t *email_update = json_object(), *email_destroy = json_array();
	static uint64_t submission_counter;
	const char *key;
	json_t *value;
	json_object_foreach(create, key, value)
	{
		uint64_t email_id = 0;
		json_t *error =
			json_is_object(value)
				? submit_one(jc, value, &email_id)
				: jmap_set_error("invalidProperties", NULL);
		if (error != NULL) {
			json_object_set_new(not_created, key, error);
			continue;
		}
		/* Submissions are final at once: their ids only name them
		 * within this request. */
		char id[JMAP_ID_TEXT_SIZE];
		jmap_make_id('s',
			     __atomic_add_fetch(&submission_counter, 1,
						__ATOMIC_RELAXED),
			     id);
		char email[JMAP_ID_TEXT_SIZE];
		jmap_make_id('e', email_id, email);
		char ref[300];
		snprintf(ref, sizeof(ref), "#%s", key);
		json_object_set_new(jc->created, key, json_string(id));
		json_object_set_new(created, key,
				    json_pack("{s:s, s:o, s:s}", "id", id,
					      "sendAt",
					      jmap_utc_date(time(NULL)),
					      "undoStatus", "final"));
		json_t *patch = json_object_get(on_update, ref);
		if (patch != NULL)
			json_object_set(email_update, email, patch);
		size_t i;
		json_t *d;
		json_array_foreach(on_destroy, i,
				   d) if (json_is_string(d) &&
					  strcmp(json_string_value(d), ref) ==
						  0)
			json_array_append_new(email_destroy,
					      json_string(email));
	}
	const char *id;
	json_object_foreach(update, id, value)
	{
		json_object_set_new(
			not_updated, id,
			jmap_set_error("notFound",
				       "sent submissions are final"));
	}
	size_t i;
	json_t *d;
	json_array_foreach(destroy, i, d) if (json_is_string(d))
		json_object_set_new(
			not_destroyed, json_string_value(d),
			jmap_set_error("notFound",
				       "sent submissions are final"));
	json_t *new_state = jmap_state(jc);
	json_t *result = json_pack(
		"{s:s, s:o, s:o, s:o, s:n, s:n, s:o, s:o, s:o}", "accountId",
		jc->account, "oldState", old_state, "newState",
		new_state ? new_state : json_string(""), "created", created,
		"updated", "destroyed", "notCreated", not_created, "notUpdated",
		not_updated, "notDestroyed", not_destroyed);
	/* RFC 8621 7.5: the implicit Email/set comes right after. */
	if (json_object_size(email_update) > 0 ||
	    json_array_size(email_destroy) > 0)
		json_array_append_new(
			jc->extra,
			json_pack("[s, {s:s, s:o, s:o}]", "Email/set",
				  "accountId", jc->account, "update",
				  email_update, "destroy", email_destroy));
	else {
		json_decref(email_update);
		json_decref(email_destroy);
	}
	return result;
}
