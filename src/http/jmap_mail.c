/* jmap_mail.c: the mail methods of JMAP (RFC 8621) over the store. Ids:
 * a mailbox is "m" and its number in the account's index. */
#include "core/common.h"

#include "http/jmap.h"

#include "core/log.h"

#include <ctype.h>
#include <sodium.h>
#include <strings.h>

/* ---- Mailbox ---- */

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
	snprintf(out, JMAP_ID_TEXT_SIZE, "m%llu", (unsigned long long)id);
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

/* The state of the account's mailboxes: changes whenever any of them, or
 * their messages, change. */
static void mailbox_state(const struct mailbox_list *l, char out[65])
{
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, 16);
	for (size_t i = 0; i < l->count; i++) {
		const struct store_mailbox *m = &l->rows[i].m;
		crypto_generichash_update(&st, (const uint8_t *)m->name,
					  strlen(m->name) + 1);
		uint64_t v[3] = {m->id, m->highestmodseq, m->subscribed};
		crypto_generichash_update(&st, (const uint8_t *)v, sizeof(v));
	}
	uint8_t h[16];
	crypto_generichash_final(&st, h, sizeof(h));
	sodium_bin2hex(out, 65, h, sizeof(h));
}

/* The "properties" argument: NULL for all, or an error. */
static bool wanted_properties(json_t *args, const char *const *known,
			      size_t count, json_t **props_r)
{
	json_t *props = json_object_get(args, "properties");
	*props_r = NULL;
	if (props == NULL || json_is_null(props))
		return true;
	if (!json_is_array(props))
		return false;
	size_t i;
	json_t *p;
	json_array_foreach(props, i, p)
	{
		if (!json_is_string(p))
			return false;
		bool ok = false;
		for (size_t k = 0; k < count; k++)
			ok |= strcmp(json_string_value(p), known[k]) == 0;
		if (!ok)
			return false;
	}
	*props_r = props;
	return true;
}

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
		if (strcmp(key, "id") == 0)
			continue;
		bool keep = false;
		size_t i;
		json_t *p;
		json_array_foreach(props, i, p) keep |=
			strcmp(json_string_value(p), key) == 0;
		if (!keep)
			json_object_del(o, key);
	}
}

json_t *jmap_mailbox_get(struct jmap_context *jc, json_t *args)
{
	const char *error;
	json_t *ids = json_object_get(args, "ids");
	json_t *props;
	if (!wanted_properties(args, mailbox_properties,
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
	char state[65];
	mailbox_state(&l, state);
	free(l.rows);
	return json_pack("{s:s, s:s, s:o, s:o}", "accountId", jc->account,
			 "state", state, "list", list, "notFound", not_found);
}
