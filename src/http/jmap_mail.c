/* jmap_mail.c: the mail methods of JMAP (RFC 8621) over the store. Ids:
 * a mailbox is "m" and its number in the account's index. */
#include "core/common.h"

#include "http/jmap.h"

#include "core/log.h"

#include <ctype.h>
#include <sodium.h>
#include <strings.h>

/* ---- Mailbox ---- */

/* Keeps only the wanted properties (and always the id). */
static void trim_properties(json_t *o, json_t *props)
{
	if (props == NULL)
		return;
	const char *key;
	json_t *value;
	void *tmp;
	json_object_foreach_safe(o, tmp, key, value)
	{
		(void)value;
		if (strcmp(key, "id") != 0 && !jmap_property_wanted(props, key))
			json_object_del(o, key);
	}
}

static const char *const mailbox_properties[] = {
	"id",		"name",		"parentId",
	"role",		"sortOrder",	"totalEmails",
	"unreadEmails", "totalThreads", "unreadThreads",
	"myRights",	"isSubscribed",
};

struct mailbox_row {
	struct store_mailbox m;
	struct store_mailbox_counts counts;
};

struct mailbox_list {
	struct mailbox_row *rows;
	size_t count;
};

static void collect_mailbox(const struct store_mailbox *m, void *context)
{
	struct mailbox_list *l = context;
	l->rows = xrealloc(l->rows, (l->count + 1) * sizeof(*l->rows));
	l->rows[l->count].m = *m;
	memset(&l->rows[l->count].counts, 0, sizeof(l->rows[0].counts));
	l->count++;
}

static void mailbox_id(uint64_t id, char out[JMAP_ID_TEXT_SIZE])
{
	jmap_make_id('m', id, out);
}

/* The role of RFC 8621 2 from the special use ("\\Sent" gives "sent"). */
static json_t *mailbox_role(const struct store_mailbox *m)
{
	if (strcmp(m->name, "INBOX") == 0)
		return json_string("inbox");
	if (m->special_use[0] != '\\')
		return json_null();
	char role[sizeof(m->special_use)];
	size_t n = 0;
	for (const char *p = m->special_use + 1; *p && n + 1 < sizeof(role);
	     p++)
		role[n++] = (char)tolower((unsigned char)*p);
	role[n] = '\0';
	return json_string(role);
}

/* Folders people know come first, in the usual order. */
static int mailbox_sort_order(const struct store_mailbox *m)
{
	static const char *const order[] = {"INBOX",	 "\\Drafts", "\\Sent",
					    "\\Archive", "\\Junk",   "\\Trash"};
	for (size_t i = 0; i < ARRAY_SIZE(order); i++)
		if (strcmp(m->name, order[i]) == 0 ||
		    strcmp(m->special_use, order[i]) == 0)
			return (int)i + 1;
	return 10;
}

static const struct mailbox_row *parent_of(const struct mailbox_list *l,
					   const struct store_mailbox *m)
{
	const char *slash = strrchr(m->name, '/');
	if (slash == NULL)
		return NULL;
	size_t n = (size_t)(slash - m->name);
	for (size_t i = 0; i < l->count; i++)
		if (strlen(l->rows[i].m.name) == n &&
		    strncmp(l->rows[i].m.name, m->name, n) == 0)
			return &l->rows[i];
	return NULL;
}

static json_t *mailbox_object(const struct mailbox_list *l,
			      const struct mailbox_row *r)
{
	const struct store_mailbox *m = &r->m;
	char id[JMAP_ID_TEXT_SIZE];
	mailbox_id(m->id, id);
	const char *slash = strrchr(m->name, '/');
	const struct mailbox_row *parent = parent_of(l, m);
	json_t *parent_id = json_null();
	if (parent != NULL) {
		char pid[JMAP_ID_TEXT_SIZE];
		mailbox_id(parent->m.id, pid);
		json_decref(parent_id);
		parent_id = json_string(pid);
	}
	bool inbox = strcmp(m->name, "INBOX") == 0;
	bool special = inbox || m->special_use[0] != '\0';
	json_t *rights = json_pack(
		"{s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:b}", "mayReadItems",
		1, "mayAddItems", 1, "mayRemoveItems", 1, "maySetSeen", 1,
		"maySetKeywords", 1, "mayCreateChild", 1, "mayRename", !special,
		"mayDelete", !special, "maySubmit", 1);
	return json_pack("{s:s, s:s, s:o, s:o, s:i, s:I, s:I, s:I, s:I,"
			 " s:o, s:b}",
			 "id", id, "name", slash ? slash + 1 : m->name,
			 "parentId", parent_id, "role", mailbox_role(m),
			 "sortOrder", mailbox_sort_order(m), "totalEmails",
			 (json_int_t)r->counts.emails, "unreadEmails",
			 (json_int_t)r->counts.unread_emails, "totalThreads",
			 (json_int_t)r->counts.threads, "unreadThreads",
			 (json_int_t)r->counts.unread_threads, "myRights",
			 rights, "isSubscribed", m->subscribed);
}

json_t *jmap_mailbox_get(struct jmap_context *jc, json_t *args)
{
	const char *error;
	json_t *ids = json_object_get(args, "ids");
	json_t *props;
	if (!jmap_wanted_properties(args, "properties", mailbox_properties,
				    ARRAY_SIZE(mailbox_properties), &props))
		return jmap_fail(jc, "invalidArguments",
				 "properties must name Mailbox properties");
	if (ids != NULL && !json_is_null(ids) && !json_is_array(ids))
		return jmap_fail(jc, "invalidArguments",
				 "ids must be an array or null");
	if (json_is_array(ids) && json_array_size(ids) > JMAP_MAX_OBJECTS)
		return jmap_fail(jc, "requestTooLarge", NULL);
	struct mailbox_list l = {0};
	if (store_mailbox_each(jc->store, jc->account_id, collect_mailbox, &l,
			       &error) != 0) {
		log_error("Mailbox/get: %s", error);
		free(l.rows);
		return jmap_fail(jc, "serverFail", NULL);
	}
	for (size_t i = 0; i < l.count; i++) {
		if (store_mailbox_counts(jc->store, jc->account_id,
					 l.rows[i].m.id, &l.rows[i].counts,
					 &error) != 0) {
			log_error("Mailbox/get: %s", error);
			free(l.rows);
			return jmap_fail(jc, "serverFail", NULL);
		}
	}
	json_t *list = json_array(), *not_found = json_array();
	if (json_is_array(ids)) {
		size_t i;
		json_t *want;
		json_array_foreach(ids, i, want)
		{
			const struct mailbox_row *found = NULL;
			for (size_t k = 0; json_is_string(want) && k < l.count;
			     k++) {
				char id[JMAP_ID_TEXT_SIZE];
				mailbox_id(l.rows[k].m.id, id);
				if (strcmp(id, json_string_value(want)) == 0)
					found = &l.rows[k];
			}
			if (found == NULL) {
				json_array_append(not_found, want);
				continue;
			}
			json_t *o = mailbox_object(&l, found);
			trim_properties(o, props);
			json_array_append_new(list, o);
		}
	} else {
		for (size_t k = 0; k < l.count; k++) {
			json_t *o = mailbox_object(&l, &l.rows[k]);
			trim_properties(o, props);
			json_array_append_new(list, o);
		}
	}
	free(l.rows);
	json_t *state = jmap_state(jc);
	if (state == NULL) {
		json_decref(list);
		json_decref(not_found);
		return jmap_fail(jc, "serverFail", NULL);
	}
	return json_pack("{s:s, s:o, s:o, s:o}", "accountId", jc->account,
			 "state", state, "list", list, "notFound", not_found);
}

/* ---- Mailbox/changes ---- */

json_t *jmap_mailbox_changes(struct jmap_context *jc, json_t *args)
{
	json_t *o = jmap_changes(jc, args, 'm', store_mailbox_changes);
	if (!jc->failed)
		json_object_set_new(o, "updatedProperties", json_null());
	return o;
}

/* ---- Mailbox/set ---- */

static const struct mailbox_row *
row_by_id(const struct mailbox_list *l, struct jmap_context *jc, const char *id)
{
	uint64_t n;
	if (!jmap_parse_id(jmap_resolve_id(jc, id), 'm', &n))
		return NULL;
	for (size_t i = 0; i < l->count; i++)
		if (l->rows[i].m.id == n)
			return &l->rows[i];
	return NULL;
}

static int load_mailboxes(struct jmap_context *jc, struct mailbox_list *l)
{
	const char *error;
	free(l->rows);
	l->rows = NULL;
	l->count = 0;
	if (store_mailbox_each(jc->store, jc->account_id, collect_mailbox, l,
			       &error) != 0) {
		log_error("Mailbox/set: %s", error);
		return -1;
	}
	return 0;
}

/* A name as JMAP gives it: one level, no separator. */
static bool name_valid(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > 490 || strchr(name, '/') != NULL)
		return false;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

static json_t *mailbox_store_error(int r)
{
	switch (r) {
	case STORE_MAILBOX_EXISTS:
		return jmap_set_error("invalidProperties",
				      "a mailbox of that name exists");
	case STORE_MAILBOX_HAS_CHILDREN:
		return jmap_set_error("mailboxHasChild", NULL);
	case STORE_MAILBOX_BAD_NAME:
		return jmap_set_error("invalidProperties", "invalid name");
	case STORE_MAILBOX_INBOX:
		return jmap_set_error("forbidden", "the inbox stays");
	case STORE_MAILBOX_NONEXISTENT:
		return jmap_set_error("notFound", NULL);
	default:
		return jmap_set_error("serverFail", NULL);
	}
}

/* The full name of a mailbox called name under parent (NULL: top). */
static void full_name(const struct mailbox_row *parent, const char *name,
		      char *out, size_t size)
{
	if (parent != NULL)
		snprintf(out, size, "%s/%s", parent->m.name, name);
	else
		snprintf(out, size, "%s", name);
}

json_t *jmap_mailbox_set(struct jmap_context *jc, json_t *args)
{
	json_t *create = json_object_get(args, "create");
	json_t *update = json_object_get(args, "update");
	json_t *destroy = json_object_get(args, "destroy");
	json_t *remove_emails = json_object_get(args, "onDestroyRemoveEmails");
	if ((create != NULL && !json_is_null(create) &&
	     !json_is_object(create)) ||
	    (update != NULL && !json_is_null(update) &&
	     !json_is_object(update)) ||
	    (destroy != NULL && !json_is_null(destroy) &&
	     !json_is_array(destroy)) ||
	    (remove_emails != NULL && !json_is_boolean(remove_emails)))
		return jmap_fail(jc, "invalidArguments", NULL);
	json_t *old_state = jmap_state(jc);
	if (old_state == NULL)
		return jmap_fail(jc, "serverFail", NULL);
	json_t *if_in = json_object_get(args, "ifInState");
	if (json_is_string(if_in) &&
	    strcmp(json_string_value(if_in), json_string_value(old_state)) !=
		    0) {
		json_decref(old_state);
		return jmap_fail(jc, "stateMismatch", NULL);
	}
	struct mailbox_list l = {0};
	json_t *created = json_object(), *not_created = json_object();
	json_t *updated = json_object(), *not_updated = json_object();
	json_t *destroyed = json_array(), *not_destroyed = json_object();
	const char *key, *error;
	json_t *value;
	json_object_foreach(create, key, value)
	{
		json_t *name = json_object_get(value, "name");
		json_t *parent_id = json_object_get(value, "parentId");
		json_t *subscribed = json_object_get(value, "isSubscribed");
		const struct mailbox_row *parent = NULL;
		if (load_mailboxes(jc, &l) != 0) {
			json_object_set_new(not_created, key,
					    jmap_set_error("serverFail", NULL));
			continue;
		}
		if (json_is_string(parent_id))
			parent =
				row_by_id(&l, jc, json_string_value(parent_id));
		if (!json_is_string(name) ||
		    !name_valid(json_string_value(name)) ||
		    (parent_id != NULL && !json_is_null(parent_id) &&
		     parent == NULL) ||
		    json_object_get(value, "role") != NULL) {
			json_object_set_new(
				not_created, key,
				jmap_set_error("invalidProperties",
					       "name and parentId"));
			continue;
		}
		char full[STORE_MAX_MAILBOX_NAME + 2];
		full_name(parent, json_string_value(name), full, sizeof(full));
		int r = store_mailbox_create(jc->store, jc->account_id, full,
					     &error);
		if (r == STORE_MAILBOX_OK && !json_is_false(subscribed))
			r = store_mailbox_subscribe(jc->store, jc->account_id,
						    full, true, &error);
		struct store_mailbox m;
		if (r != STORE_MAILBOX_OK ||
		    store_mailbox_get(jc->store, jc->account_id, full, &m,
				      &error) != 1) {
			json_object_set_new(not_created, key,
					    mailbox_store_error(r));
			continue;
		}
		char id[JMAP_ID_TEXT_SIZE];
		mailbox_id(m.id, id);
		json_object_set_new(jc->created, key, json_string(id));
		json_object_set_new(created, key, json_pack("{s:s}", "id", id));
	}
	json_object_foreach(update, key, value)
	{
		if (load_mailboxes(jc, &l) != 0) {
			json_object_set_new(not_updated, key,
					    jmap_set_error("serverFail", NULL));
			continue;
		}
		const struct mailbox_row *row = row_by_id(&l, jc, key);
		if (row == NULL || !json_is_object(value)) {
			json_object_set_new(not_updated, key,
					    jmap_set_error(row ? "invalidPatch"
							       : "notFound",
							   NULL));
			continue;
		}
		struct store_mailbox m = row->m;
		json_t *name = json_object_get(value, "name");
		json_t *parent_id = json_object_get(value, "parentId");
		json_t *subscribed = json_object_get(value, "isSubscribed");
		json_t *problem = NULL;
		const char *k;
		json_t *v;
		json_object_foreach(value, k, v)
		{
			if (strcmp(k, "name") != 0 &&
			    strcmp(k, "parentId") != 0 &&
			    strcmp(k, "isSubscribed") != 0 &&
			    strcmp(k, "sortOrder") != 0)
				problem =
					jmap_set_error("invalidProperties", k);
		}
		if (problem == NULL && (name != NULL || parent_id != NULL)) {
			const char *slash = strrchr(m.name, '/');
			const char *leaf =
				json_is_string(name)
					? json_string_value(name)
					: (slash ? slash + 1 : m.name);
			const struct mailbox_row *parent =
				parent_id == NULL ? parent_of(&l, &m)
				: json_is_string(parent_id)
					? row_by_id(
						  &l, jc,
						  json_string_value(parent_id))
					: NULL;
			if ((name != NULL && !json_is_string(name)) ||
			    !name_valid(leaf) ||
			    (json_is_string(parent_id) && parent == NULL))
				problem = jmap_set_error("invalidProperties",
							 "name and parentId");
			else if (strcmp(m.name, "INBOX") == 0 ||
				 m.special_use[0] != '\0')
				problem = jmap_set_error(
					"forbidden", "special mailboxes keep"
						     " their names");
			else {
				char full[STORE_MAX_MAILBOX_NAME + 2];
				full_name(parent, leaf, full, sizeof(full));
				size_t n = strlen(m.name);
				if (strncmp(full, m.name, n) == 0 &&
				    full[n] == '/')
					problem = jmap_set_error(
						"invalidProperties",
						"a mailbox cannot move into"
						" itself");
				else if (strcmp(full, m.name) != 0) {
					int r = store_mailbox_rename(
						jc->store, jc->account_id,
						m.name, full, &error);
					if (r != STORE_MAILBOX_OK)
						problem =
							mailbox_store_error(r);
					else
						snprintf(m.name, sizeof(m.name),
							 "%s", full);
				}
			}
		}
		if (problem == NULL && subscribed != NULL) {
			if (!json_is_boolean(subscribed))
				problem = jmap_set_error("invalidProperties",
							 "isSubscribed");
			else if (store_mailbox_subscribe(
					 jc->store, jc->account_id, m.name,
					 json_is_true(subscribed),
					 &error) != STORE_MAILBOX_OK)
				problem = jmap_set_error("serverFail", NULL);
		}
		if (problem != NULL)
			json_object_set_new(not_updated, key, problem);
		else
			json_object_set_new(updated, key, json_null());
	}
	size_t i;
	json_t *item;
	json_array_foreach(destroy, i, item)
	{
		const char *id =
			json_is_string(item) ? json_string_value(item) : "";
		if (load_mailboxes(jc, &l) != 0) {
			json_object_set_new(not_destroyed, id,
					    jmap_set_error("serverFail", NULL));
			continue;
		}
		const struct mailbox_row *row = row_by_id(&l, jc, id);
		if (row == NULL) {
			json_object_set_new(not_destroyed, id,
					    jmap_set_error("notFound", NULL));
			continue;
		}
		struct store_mailbox status;
		if (store_mailbox_status(jc->store, jc->account_id, row->m.name,
					 &status, &error) != 1) {
			json_object_set_new(not_destroyed, id,
					    jmap_set_error("serverFail", NULL));
			continue;
		}
		if (status.messages > 0 && !json_is_true(remove_emails)) {
			json_object_set_new(
				not_destroyed, id,
				jmap_set_error("mailboxHasEmail", NULL));
			continue;
		}
		if (strcmp(row->m.name, "INBOX") == 0 ||
		    row->m.special_use[0] != '\0') {
			json_object_set_new(
				not_destroyed, id,
				jmap_set_error("forbidden",
					       "special mailboxes stay"));
			continue;
		}
		int r = store_mailbox_delete(jc->store, jc->account_id,
					     row->m.name, &error);
		if (r == STORE_MAILBOX_OK)
			r = store_mailbox_subscribe(jc->store, jc->account_id,
						    row->m.name, false, &error);
		if (r != STORE_MAILBOX_OK) {
			json_object_set_new(not_destroyed, id,
					    mailbox_store_error(r));
			continue;
		}
		json_array_append_new(destroyed, json_string(id));
	}
	free(l.rows);
	if (json_object_size(created) + json_object_size(updated) +
		    json_array_size(destroyed) >
	    0)
		jmap_notify(jc, jc->account_id);
	json_t *new_state = jmap_state(jc);
	return json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
			 "accountId", jc->account, "oldState", old_state,
			 "newState", new_state ? new_state : json_string(""),
			 "created", created, "updated", updated, "destroyed",
			 destroyed, "notCreated", not_created, "notUpdated",
			 not_updated, "notDestroyed", not_destroyed);
}

/* ---- Identity (RFC 8621 6) ----
 * One identity per account: its own address, with the display name and
 * signatures the owner sets in the webmail. */

static json_t *setting_string(struct jmap_context *jc, const char *name)
{
	struct buf b;
	buf_init(&b, 64 * 1024);
	const char *error;
	int r = store_setting_get(jc->store, jc->account_id, name, &b, &error);
	json_t *v = r == 1 ? json_stringn((const char *)b.p, b.n) : NULL;
	buf_free(&b);
	return v ? v : json_string("");
}

static json_t *identity_object(struct jmap_context *jc)
{
	char id[JMAP_ID_TEXT_SIZE];
	jmap_make_id('i', jc->account_id, id);
	return json_pack("{s:s, s:o, s:s, s:n, s:n, s:o, s:o, s:b}", "id", id,
			 "name", setting_string(jc, JMAP_SETTING_NAME), "email",
			 jc->address, "replyTo", "bcc", "textSignature",
			 setting_string(jc, JMAP_SETTING_SIGNATURE),
			 "htmlSignature",
			 setting_string(jc, JMAP_SETTING_HTML_SIGNATURE),
			 "mayDelete", 0);
}

json_t *jmap_identity_get(struct jmap_context *jc, json_t *args)
{
	static const char *const known[] = {
		"id",  "name",		"email",	 "replyTo",
		"bcc", "textSignature", "htmlSignature", "mayDelete",
	};
	json_t *ids = json_object_get(args, "ids");
	json_t *props;
	if (!jmap_wanted_properties(args, "properties", known,
				    ARRAY_SIZE(known), &props) ||
	    (ids != NULL && !json_is_null(ids) && !json_is_array(ids)))
		return jmap_fail(jc, "invalidArguments", NULL);
	json_t *state = jmap_state(jc);
	if (state == NULL)
		return jmap_fail(jc, "serverFail", NULL);
	json_t *identity = identity_object(jc);
	trim_properties(identity, props);
	json_t *list = json_array(), *not_found = json_array();
	const char *own = json_string_value(json_object_get(identity, "id"));
	if (!json_is_array(ids)) {
		json_array_append(list, identity);
	} else {
		size_t i;
		json_t *want;
		json_array_foreach(ids, i, want)
		{
			if (json_is_string(want) &&
			    strcmp(json_string_value(want), own) == 0)
				json_array_append(list, identity);
			else
				json_array_append(not_found, want);
		}
	}
	json_decref(identity);
	return json_pack("{s:s, s:o, s:o, s:o}", "accountId", jc->account,
			 "state", state, "list", list, "notFound", not_found);
}

/* A setting's value: UTF-8 without control characters but new lines,
 * at most 8 KiB. */
static bool setting_valid(json_t *v, bool multiline)
{
	if (!json_is_string(v) || json_string_length(v) > 8192)
		return false;
	for (const unsigned char *p =
		     (const unsigned char *)json_string_value(v);
	     *p; p++)
		if ((*p < 0x20 && !(multiline && (*p == '\n' || *p == '\t'))) ||
		    *p == 0x7f)
			return false;
	return true;
}

json_t *jmap_identity_set(struct jmap_context *jc, json_t *args)
{
	json_t *create = json_object_get(args, "create");
	json_t *update = json_object_get(args, "update");
	json_t *destroy = json_object_get(args, "destroy");
	json_t *old_state = jmap_state(jc);
	if (old_state == NULL)
		return jmap_fail(jc, "serverFail", NULL);
	char own[JMAP_ID_TEXT_SIZE];
	jmap_make_id('i', jc->account_id, own);
	json_t *updated = json_object(), *not_updated = json_object();
	json_t *not_created = json_object(), *not_destroyed = json_object();
	const char *key;
	json_t *value;
	json_object_foreach(create, key, value) json_object_set_new(
		not_created, key,
		jmap_set_error("forbidden", "one identity per account"));
	size_t i;
	json_t *item;
	json_array_foreach(destroy, i, item) if (json_is_string(item))
		json_object_set_new(not_destroyed, json_string_value(item),
				    jmap_set_error("forbidden",
						   "one identity per account"));
	json_object_foreach(update, key, value)
	{
		if (strcmp(key, own) != 0 || !json_is_object(value)) {
			json_object_set_new(not_updated, key,
					    jmap_set_error("notFound", NULL));
			continue;
		}
		static const struct {
			const char *property, *setting;
			bool multiline;
		} fields[] = {
			{"name", JMAP_SETTING_NAME, false},
			{"textSignature", JMAP_SETTING_SIGNATURE, true},
			{"htmlSignature", JMAP_SETTING_HTML_SIGNATURE, true},
		};
		json_t *problem = NULL;
		const char *k;
		json_t *v;
		json_object_foreach(value, k, v)
		{
			size_t f = 0;
			while (f < ARRAY_SIZE(fields) &&
			       strcmp(fields[f].property, k) != 0)
				f++;
			if (f == ARRAY_SIZE(fields) ||
			    !setting_valid(v, fields[f].multiline)) {
				problem = json_pack("{s:s, s:[s]}", "type",
						    "invalidProperties",
						    "properties", k);
				break;
			}
		}
		const char *error;
		json_object_foreach(value, k, v)
		{
			if (problem != NULL)
				break;
			for (size_t f = 0; f < ARRAY_SIZE(fields); f++)
				if (strcmp(fields[f].property, k) == 0 &&
				    store_setting_set(jc->store, jc->account_id,
						      fields[f].setting,
						      json_string_value(v),
						      &error) != 0)
					problem = jmap_set_error("serverFail",
								 NULL);
		}
		if (problem != NULL)
			json_object_set_new(not_updated, key, problem);
		else
			json_object_set_new(updated, key, json_null());
	}
	json_t *new_state = jmap_state(jc);
	return json_pack("{s:s, s:o, s:o, s:{}, s:o, s:[], s:o, s:o, s:o}",
			 "accountId", jc->account, "oldState", old_state,
			 "newState", new_state ? new_state : json_string(""),
			 "created", "updated", updated, "destroyed",
			 "notCreated", not_created, "notUpdated", not_updated,
			 "notDestroyed", not_destroyed);
}
