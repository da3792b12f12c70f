/* test_email.c: unit tests for what the webmail's JMAP asks of the store:
 * Email ids that survive moves and are never reused, changes since a
 * state (whoever made them), queries with filters, paging and threads,
 * settings and uploads. */
#include "unit.h"

#include "store/store.h"

#include <ftw.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char data_dir[] = "/tmp/dijk-unit-email-XXXXXX";
static uint64_t account;

static int remove_entry(const char *path, const struct stat *st, int flag,
			struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Delivers one message into a mailbox; returns its Email id. */
static uint64_t deliver(struct store *s, const char *mailbox, const char *text,
			time_t date, unsigned flags)
{
	uint32_t uid = 0;
	struct store_delivery d = {
		.data = (const uint8_t *)text,
		.size = strlen(text),
		.internal_date = date,
		.mailbox = mailbox,
		.flags = flags,
		.accounts = &account,
		.account_count = 1,
		.sender = "",
		.uids = &uid,
	};
	struct store_delivery *batch[1] = {&d};
	CHECK(store_deliver_batch(s, batch, 1) == 0);
	struct store_mailbox m;
	const char *error;
	CHECK(store_mailbox_get(s, account, mailbox ? mailbox : "INBOX", &m,
				&error) == 1);
	uint64_t id = 0;
	CHECK(store_email_by_uid(s, account, m.id, uid, &id, &error) == 1);
	return id;
}

static uint64_t mailbox_id(struct store *s, const char *name)
{
	struct store_mailbox m;
	const char *error;
	CHECK(store_mailbox_get(s, account, name, &m, &error) == 1);
	return m.id;
}

static uint64_t state(struct store *s)
{
	uint64_t v = 0;
	const char *error;
	CHECK(store_jmap_state(s, account, &v, &error) == 0);
	return v;
}

/* Changes as a string: "c5 u3 d7 " in the order reported. */
struct changes {
	char text[512];
};

static void note_change(enum store_change kind, uint64_t id, void *context)
{
	struct changes *c = context;
	size_t n = strlen(c->text);
	snprintf(c->text + n, sizeof(c->text) - n, "%c%llu ",
		 kind == STORE_CREATED	 ? 'c'
		 : kind == STORE_UPDATED ? 'u'
					 : 'd',
		 (unsigned long long)id);
}

static const char *email_changes(struct store *s, uint64_t since, size_t max,
				 uint64_t *state_r, bool *more_r,
				 struct changes *c)
{
	const char *error;
	c->text[0] = '\0';
	uint64_t st;
	bool more;
	CHECK(store_email_changes(s, account, since, max, note_change, c, &st,
				  &more, &error) == 0);
	if (state_r)
		*state_r = st;
	if (more_r)
		*more_r = more;
	return c->text;
}

struct email_seen {
	uint64_t mailbox_id, thread_id;
	uint32_t uid;
	unsigned flags;
	char keywords[128];
	char text[128];
	size_t count;
};

static void take_email(const struct store_email *e, void *context)
{
	struct email_seen *seen = context;
	seen->count++;
	seen->mailbox_id = e->mailbox_id;
	seen->thread_id = e->thread_id;
	seen->uid = e->uid;
	seen->flags = e->flags;
	snprintf(seen->keywords, sizeof(seen->keywords), "%s", e->keywords);
	snprintf(seen->text, sizeof(seen->text), "%s", e->text);
}

static struct email_seen get_email(struct store *s, uint64_t id)
{
	struct email_seen seen = {0};
	const char *error;
	CHECK(store_emails_get(s, account, &id, 1, STORE_EMAIL_PREVIEW,
			       take_email, &seen, &error) == 0);
	return seen;
}

static void test_ids_and_changes(struct store *s)
{
	struct changes c;
	const char *error;
	uint64_t s0 = state(s);
	uint64_t a = deliver(s, NULL, "Subject: a\r\n\r\nalpha\r\n", 1000, 0);
	uint64_t b = deliver(s, NULL, "Subject: b\r\n\r\nbravo\r\n", 2000, 0);
	CHECK(a > 0 && b > a);
	uint64_t s1 = state(s);
	CHECK(s1 > s0);
	char want[64];
	snprintf(want, sizeof(want), "c%llu c%llu ", (unsigned long long)a,
		 (unsigned long long)b);
	CHECK(strcmp(email_changes(s, s0, 0, NULL, NULL, &c), want) == 0);
	CHECK(strcmp(email_changes(s, s1, 0, NULL, NULL, &c), "") == 0);

	/* What the store read back. */
	struct email_seen seen = get_email(s, a);
	CHECK(seen.count == 1 && seen.mailbox_id == mailbox_id(s, "INBOX"));
	CHECK(strncmp(seen.text, "alpha", 5) == 0);
	uint64_t missing = 999999;
	struct email_seen none = {0};
	CHECK(store_emails_get(s, account, &missing, 1, 0, take_email, &none,
			       &error) == 0 &&
	      none.count == 0);

	/* A flag change (IMAP's STORE) is an update. */
	CHECK(store_flags_update(s, account, seen.mailbox_id, &seen.uid, 1,
				 STORE_FLAGS_ADD, STORE_FLAG_SEEN, "work",
				 STORE_NO_UNCHANGEDSINCE, NULL, NULL, NULL,
				 &error) == 0);
	snprintf(want, sizeof(want), "u%llu ", (unsigned long long)a);
	CHECK(strcmp(email_changes(s, s1, 0, NULL, NULL, &c), want) == 0);
	seen = get_email(s, a);
	CHECK(seen.flags == STORE_FLAG_SEEN &&
	      strcmp(seen.keywords, "work") == 0);

	/* A move keeps the Email's id; IMAP sees an expunge and a new UID. */
	uint64_t s2 = state(s);
	uint64_t inbox = mailbox_id(s, "INBOX"),
		 archive = mailbox_id(s, "Archive");
	uint32_t new_uid, uidvalidity, old_uid = seen.uid;
	CHECK(store_copy(s, account, inbox, &old_uid, 1, archive, true,
			 &new_uid, &uidvalidity, &error) == 0);
	seen = get_email(s, a);
	CHECK(seen.count == 1 && seen.mailbox_id == archive &&
	      seen.uid == new_uid);
	CHECK(strcmp(seen.keywords, "work") == 0);
	snprintf(want, sizeof(want), "u%llu ", (unsigned long long)a);
	CHECK(strcmp(email_changes(s, s2, 0, NULL, NULL, &c), want) == 0);

	/* A copy is a new Email. */
	uint32_t copy_uid;
	uint32_t src = new_uid;
	CHECK(store_copy(s, account, archive, &src, 1, inbox, false, &copy_uid,
			 &uidvalidity, &error) == 0);
	uint64_t copy;
	CHECK(store_email_by_uid(s, account, inbox, copy_uid, &copy, &error) ==
	      1);
	CHECK(copy > b);

	/* Destroying reports it; one created and destroyed since is not
	 * reported at all. */
	uint64_t s3 = state(s);
	uint64_t brief =
		deliver(s, NULL, "Subject: c\r\n\r\nbrief\r\n", 3000, 0);
	uint64_t gone[2] = {b, brief};
	CHECK(store_emails_destroy(s, account, gone, 2, NULL, NULL, &error) ==
	      0);
	snprintf(want, sizeof(want), "d%llu ", (unsigned long long)b);
	CHECK(strcmp(email_changes(s, s3, 0, NULL, NULL, &c), want) == 0);
	CHECK(get_email(s, b).count == 0);

	/* Ids are never reused, even of the newest Email destroyed. */
	uint64_t after =
		deliver(s, NULL, "Subject: d\r\n\r\nnext\r\n", 4000, 0);
	CHECK(after > brief);

	/* maxChanges: steps through without losing or repeating any. */
	uint64_t s4 = state(s);
	uint64_t ids[5];
	for (size_t i = 0; i < 5; i++)
		ids[i] = deliver(s, NULL, "Subject: e\r\n\r\nstep\r\n",
				 5000 + (time_t)i, 0);
	uint64_t at = s4, next;
	bool more = true;
	char all[256] = "";
	size_t rounds = 0;
	while (more && rounds++ < 10) {
		email_changes(s, at, 2, &next, &more, &c);
		CHECK(next > at);
		size_t used = strlen(all);
		snprintf(all + used, sizeof(all) - used, "%s", c.text);
		at = next;
	}
	char expect[256] = "";
	for (size_t i = 0; i < 5; i++) {
		size_t n = strlen(expect);
		snprintf(expect + n, sizeof(expect) - n, "c%llu ",
			 (unsigned long long)ids[i]);
	}
	CHECK(strcmp(all, expect) == 0);
	CHECK(rounds == 3);
	CHECK(at == state(s));

	/* A state from the future cannot be answered. */
	uint64_t st;
	CHECK(store_email_changes(s, account, state(s) + 100, 0, note_change,
				  &c, &st, &more, &error) == -2);
}

static void test_mailbox_changes(struct store *s)
{
	const char *error;
	struct changes c = {0};
	uint64_t s0 = state(s), st;
	bool more;
	CHECK(store_mailbox_create(s, account, "Projects", &error) ==
	      STORE_MAILBOX_OK);
	uint64_t projects = mailbox_id(s, "Projects");
	CHECK(store_mailbox_changes(s, account, s0, 0, note_change, &c, &st,
				    &more, &error) == 0);
	char want[64];
	snprintf(want, sizeof(want), "c%llu ", (unsigned long long)projects);
	CHECK(strcmp(c.text, want) == 0);

	uint64_t s1 = state(s);
	CHECK(store_mailbox_rename(s, account, "Projects", "Work", &error) ==
	      STORE_MAILBOX_OK);
	c.text[0] = '\0';
	CHECK(store_mailbox_changes(s, account, s1, 0, note_change, &c, &st,
				    &more, &error) == 0);
	snprintf(want, sizeof(want), "u%llu ", (unsigned long long)projects);
	CHECK(strcmp(c.text, want) == 0);

	uint64_t s2 = state(s);
	CHECK(store_mailbox_subscribe(s, account, "Work", true, &error) ==
	      STORE_MAILBOX_OK);
	c.text[0] = '\0';
	CHECK(store_mailbox_changes(s, account, s2, 0, note_change, &c, &st,
				    &more, &error) == 0);
	CHECK(strcmp(c.text, want) == 0);

	uint64_t s3 = state(s);
	CHECK(store_mailbox_delete(s, account, "Work", &error) ==
	      STORE_MAILBOX_OK);
	c.text[0] = '\0';
	CHECK(store_mailbox_changes(s, account, s3, 0, note_change, &c, &st,
				    &more, &error) == 0);
	snprintf(want, sizeof(want), "d%llu ", (unsigned long long)projects);
	CHECK(strcmp(c.text, want) == 0);
}

/* ---- queries ---- */

struct page {
	uint64_t ids[64];
	size_t count;
};

static void take_row(uint64_t email_id, uint64_t thread_id, void *context)
{
	(void)thread_id;
	struct page *p = context;
	if (p->count < 64)
		p->ids[p->count++] = email_id;
}

static struct page query(struct store *s, const struct store_query *q,
			 uint64_t *total_r, int *result_r)
{
	struct page p = {0};
	uint64_t total = 0, position = 0;
	const char *error;
	int r = store_email_query(s, account, q, take_row, &p, &total,
				  &position, &error);
	if (result_r)
		*result_r = r;
	else
		CHECK(r == 0);
	if (total_r)
		*total_r = total;
	return p;
}

static struct store_filter condition(void)
{
	return (struct store_filter){
		.op = STORE_FILTER_CONDITION,
		.before = STORE_NO_TIME,
		.after = STORE_NO_TIME,
		.min_size = -1,
		.max_size = -1,
		.has_attachment = -1,
	};
}

static void test_query(struct store *s)
{
	const char *error;
	CHECK(store_mailbox_create(s, account, "Query", &error) ==
	      STORE_MAILBOX_OK);
	uint64_t box = mailbox_id(s, "Query");
	/* Three threads: t1 = m0 <- m2 <- m4, t2 = m1, t3 = m3. */
	const char *texts[5] = {
		"Message-ID: <t1@x>\r\nFrom: Ann <ann@x.test>\r\n"
		"Subject: budget plan\r\n\r\nthe giraffe budget\r\n",
		"Message-ID: <t2@x>\r\nFrom: Bob <bob@x.test>\r\n"
		"Subject: lunch\r\n\r\npizza or sushi\r\n",
		"Message-ID: <r1@x>\r\nIn-Reply-To: <t1@x>\r\n"
		"From: Bob <bob@x.test>\r\nSubject: Re: budget plan\r\n\r\n"
		"giraffe agreed\r\n",
		"Message-ID: <t3@x>\r\nFrom: Zoe <zoe@x.test>\r\n"
		"Subject: Übersicht\r\n\r\nGrüße aus Köln\r\n",
		"Message-ID: <r2@x>\r\nReferences: <t1@x> <r1@x>\r\n"
		"From: Ann <ann@x.test>\r\nSubject: Re: budget plan\r\n\r\n"
		"final numbers\r\n",
	};
	uint64_t ids[5];
	for (size_t i = 0; i < 5; i++)
		ids[i] = deliver(s, "Query", texts[i], 10000 + (time_t)i * 100,
				 i == 1 ? STORE_FLAG_SEEN : 0);

	struct store_filter in_box = condition();
	in_box.in_mailbox = box;
	struct store_query q = {.filter = &in_box, .want_total = true};
	uint64_t total;
	struct page p = query(s, &q, &total, NULL);
	CHECK(total == 5 && p.count == 5);
	for (size_t i = 0; i < 5; i++)
		CHECK_CASE(p.ids[i] == ids[4 - i], i, "newest first");
	q.ascending = true;
	p = query(s, &q, NULL, NULL);
	CHECK(p.count == 5 && p.ids[0] == ids[0] && p.ids[4] == ids[4]);

	/* Conversations: the newest of each thread. */
	q.ascending = false;
	q.collapse_threads = true;
	p = query(s, &q, &total, NULL);
	CHECK(total == 3 && p.count == 3);
	CHECK(p.ids[0] == ids[4] && p.ids[1] == ids[3] && p.ids[2] == ids[1]);
	CHECK(get_email(s, ids[0]).thread_id == get_email(s, ids[4]).thread_id);
	CHECK(get_email(s, ids[1]).thread_id != get_email(s, ids[0]).thread_id);

	/* Paging. */
	q.collapse_threads = false;
	q.position = 1;
	q.limit = 2;
	p = query(s, &q, NULL, NULL);
	CHECK(p.count == 2 && p.ids[0] == ids[3] && p.ids[1] == ids[2]);
	q.position = 10;
	p = query(s, &q, NULL, NULL);
	CHECK(p.count == 0);
	/* An anchor: the page starts at it, or offset from it. */
	q.position = 0;
	q.anchor = ids[2];
	q.anchor_offset = -1;
	p = query(s, &q, NULL, NULL);
	CHECK(p.count == 2 && p.ids[0] == ids[3] && p.ids[1] == ids[2]);
	q.anchor = 999999;
	int r;
	query(s, &q, NULL, &r);
	CHECK(r == -2);
	q.anchor = 0;
	q.limit = 0;

	/* Text: every word, without case, in any field. */
	struct store_filter text = condition();
	text.in_mailbox = box;
	text.text = "GIRAFFE";
	q.filter = &text;
	p = query(s, &q, &total, NULL);
	CHECK(total == 2 && p.ids[0] == ids[2] && p.ids[1] == ids[0]);
	text.text = "giraffe agreed";
	p = query(s, &q, &total, NULL);
	CHECK(total == 1 && p.ids[0] == ids[2]);
	text.text = "köln";
	p = query(s, &q, &total, NULL);
	CHECK(total == 1 && p.ids[0] == ids[3]);
	/* Shorter than a trigram: a scan of the headers ("or" is only in
	 * a body), or of the body when asked for. */
	text.text = "or";
	p = query(s, &q, &total, NULL);
	CHECK(total == 0);
	text.text = "zO";
	p = query(s, &q, &total, NULL);
	CHECK(total == 1 && p.ids[0] == ids[3]);
	text.text = "üB"; /* Unicode case: "Übersicht" */
	p = query(s, &q, &total, NULL);
	CHECK(total == 1 && p.ids[0] == ids[3]);
	text.text = NULL;
	text.body = "or";
	p = query(s, &q, &total, NULL);
	CHECK(total == 1 && p.ids[0] == ids[1]);
	text.body = NULL;
	text.text = "nowhere-to-be-found";
	p = query(s, &q, &total, NULL);
	CHECK(total == 0 && p.count == 0);
	text.text = NULL;
	text.from = "bob";
	p = query(s, &q, &total, NULL);
	CHECK(total == 2 && p.ids[0] == ids[2] && p.ids[1] == ids[1]);
	text.from = NULL;
	text.subject = "budget";
	p = query(s, &q, &total, NULL);
	CHECK(total == 3);
	text.subject = NULL;

	/* Keywords, dates, operators. */
	struct store_filter seen = condition();
	seen.in_mailbox = box;
	seen.has_keyword = "$seen";
	q.filter = &seen;
	p = query(s, &q, &total, NULL);
	CHECK(total == 1 && p.ids[0] == ids[1]);
	seen.has_keyword = NULL;
	seen.not_keyword = "$SEEN";
	p = query(s, &q, &total, NULL);
	CHECK(total == 4);
	seen.not_keyword = NULL;
	seen.after = 10100;
	seen.before = 10300;
	p = query(s, &q, &total, NULL);
	CHECK(total == 2 && p.ids[0] == ids[2] && p.ids[1] == ids[1]);

	struct store_filter either[2] = {condition(), condition()};
	either[0].from = "zoe";
	either[1].body = "pizza";
	struct store_filter or
		= {.op = STORE_FILTER_OR, .children = either, .child_count = 2};
	struct store_filter and_parts[2] = {in_box, or };
	struct store_filter and = {.op = STORE_FILTER_AND,
				   .children = and_parts,
				   .child_count = 2};
	q.filter = &and;
	p = query(s, &q, &total, NULL);
	CHECK(total == 2 && p.ids[0] == ids[3] && p.ids[1] == ids[1]);
	struct store_filter not = {
		.op = STORE_FILTER_NOT, .children = & or, .child_count = 1};
	struct store_filter and2_parts[2] = {in_box, not };
	struct store_filter and2 = {.op = STORE_FILTER_AND,
				    .children = and2_parts,
				    .child_count = 2};
	q.filter = &and2;
	p = query(s, &q, &total, NULL);
	CHECK(total == 3);

	/* A keyword with LIKE's wildcards matches only itself. */
	uint32_t uid = get_email(s, ids[0]).uid;
	CHECK(store_flags_update(s, account, box, &uid, 1, STORE_FLAGS_ADD, 0,
				 "a_b", STORE_NO_UNCHANGEDSINCE, NULL, NULL,
				 NULL, &error) == 0);
	struct store_filter kw = condition();
	kw.in_mailbox = box;
	kw.has_keyword = "a_b";
	q.filter = &kw;
	p = query(s, &q, &total, NULL);
	CHECK(total == 1 && p.ids[0] == ids[0]);
	kw.has_keyword = "axb";
	p = query(s, &q, &total, NULL);
	CHECK(total == 0);
}

static void collect_thread(uint64_t id, void *context)
{
	struct page *p = context;
	if (p->count < 64)
		p->ids[p->count++] = id;
}

static void test_threads(struct store *s)
{
	const char *error;
	uint64_t root = deliver(
		s, NULL, "Message-ID: <th1@y>\r\nSubject: x\r\n\r\nx\r\n",
		20000, 0);
	uint64_t reply =
		deliver(s, NULL,
			"Message-ID: <th2@y>\r\nIn-Reply-To: <th1@y>\r\n"
			"Subject: Re: x\r\n\r\ny\r\n",
			20100, 0);
	uint64_t thread = get_email(s, root).thread_id;
	CHECK(get_email(s, reply).thread_id == thread);
	struct page p = {0};
	CHECK(store_thread_emails(s, account, thread, collect_thread, &p,
				  &error) == 0);
	CHECK(p.count == 2 && p.ids[0] == root && p.ids[1] == reply);

	/* Thread changes: the thread is updated when a reply joins. */
	uint64_t before = state(s), st;
	bool more;
	deliver(s, NULL,
		"Message-ID: <th3@y>\r\nIn-Reply-To: <th2@y>\r\n"
		"Subject: Re: x\r\n\r\nz\r\n",
		20200, 0);
	struct changes c = {0};
	CHECK(store_thread_changes(s, account, before, 0, note_change, &c, &st,
				   &more, &error) == 0);
	char want[64];
	snprintf(want, sizeof(want), "u%llu ", (unsigned long long)thread);
	CHECK(strcmp(c.text, want) == 0);
	/* A new conversation is created. */
	before = state(s);
	uint64_t lone = deliver(
		s, NULL, "Message-ID: <lone@y>\r\nSubject: y\r\n\r\ny\r\n",
		20300, 0);
	c.text[0] = '\0';
	CHECK(store_thread_changes(s, account, before, 0, note_change, &c, &st,
				   &more, &error) == 0);
	snprintf(want, sizeof(want), "c%llu ",
		 (unsigned long long)get_email(s, lone).thread_id);
	CHECK(strcmp(c.text, want) == 0);
	/* And destroyed with its only Email. */
	before = state(s);
	uint64_t lone_thread = get_email(s, lone).thread_id;
	CHECK(store_emails_destroy(s, account, &lone, 1, NULL, NULL, &error) ==
	      0);
	c.text[0] = '\0';
	CHECK(store_thread_changes(s, account, before, 0, note_change, &c, &st,
				   &more, &error) == 0);
	snprintf(want, sizeof(want), "d%llu ", (unsigned long long)lone_thread);
	CHECK(strcmp(c.text, want) == 0);
}

static void test_settings_uploads(struct store *s)
{
	const char *error;
	struct buf b;
	buf_init(&b, 1024);
	CHECK(store_setting_get(s, account, "identity.name", &b, &error) == 0);
	CHECK(store_setting_set(s, account, "identity.name", "Carol C.",
				&error) == 0);
	CHECK(store_setting_get(s, account, "identity.name", &b, &error) == 1);
	CHECK(strcmp(buf_cstr(&b), "Carol C.") == 0);
	CHECK(store_setting_set(s, account, "identity.name", NULL, &error) ==
	      0);
	buf_reset(&b);
	CHECK(store_setting_get(s, account, "identity.name", &b, &error) == 0);

	const uint8_t bytes[5] = {0, 1, 2, 0xff, 0};
	uint64_t id, id2;
	CHECK(store_upload_add(s, account, "application/pdf", bytes, 5, &id,
			       &error) == 0);
	CHECK(store_upload_add(s, account, "text/plain", bytes, 0, &id2,
			       &error) == 0);
	CHECK(id2 > id);
	char type[64];
	buf_reset(&b);
	CHECK(store_upload_get(s, account, id, &b, type, sizeof(type),
			       &error) == 1);
	CHECK(b.n == 5 && memcmp(b.p, bytes, 5) == 0);
	CHECK(strcmp(type, "application/pdf") == 0);
	buf_reset(&b);
	CHECK(store_upload_get(s, account, id2, &b, type, sizeof(type),
			       &error) == 1 &&
	      b.n == 0);
	CHECK(store_upload_get(s, account, 999, &b, type, sizeof(type),
			       &error) == 0);
	buf_free(&b);
}

/* An index of version 3 (before the webmail) upgrades itself when opened:
 * its messages get Email ids and changes are tracked from then on. The
 * old index is made by taking version 4's additions away again. */
static void test_upgrade(struct store **s)
{
	const char *error;
	uint64_t old;
	CHECK(store_user_add(*s, "old@example.test", &old, &error) == 0);
	uint64_t saved = account;
	account = old;
	uint64_t first = deliver(*s, NULL, "Subject: 1\r\n\r\none\r\n", 100, 0);
	deliver(*s, NULL, "Subject: 2\r\n\r\ntwo\r\n", 200, 0);
	store_close(s);
	char path[512];
	snprintf(path, sizeof(path), "%s/accounts/%llu/index.db", data_dir,
		 (unsigned long long)old);
	sqlite3 *db;
	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	char *message = NULL;
	int rc = sqlite3_exec(
		db,
		"DROP TRIGGER email_created; DROP TRIGGER email_destroyed;"
		"DROP TRIGGER mailbox_created; DROP TRIGGER mailbox_renamed;"
		"DROP TRIGGER mailbox_destroyed; DROP TRIGGER subscribed;"
		"DROP TRIGGER unsubscribed; DROP INDEX message_email;"
		"DROP INDEX message_date; DROP INDEX message_thread;"
		"DROP INDEX message_changed; DROP INDEX message_created;"
		"DROP INDEX message_mailbox_thread;"
		"ALTER TABLE message DROP COLUMN email_id;"
		"ALTER TABLE message DROP COLUMN created_modseq;"
		"ALTER TABLE mailbox DROP COLUMN created_modseq;"
		"ALTER TABLE content DROP COLUMN preview;"
		"UPDATE message SET thread_id = NULL;"
		"DROP TABLE email_gone; DROP TABLE mailbox_gone;"
		"DROP TABLE setting; DROP TABLE upload;"
		"DELETE FROM counter WHERE name = 'email';"
		"PRAGMA user_version = 3;",
		NULL, NULL, &message);
	CHECK(rc == SQLITE_OK);
	if (rc != SQLITE_OK)
		fprintf(stderr, "downgrade: %s\n", message);
	sqlite3_free(message);
	sqlite3_close(db);

	*s = store_open(data_dir, &error);
	CHECK(*s != NULL);
	if (*s == NULL)
		return;
	/* The old messages are Emails now, with their threads. */
	struct email_seen seen = get_email(*s, first);
	CHECK(seen.count == 1 && seen.thread_id != 0);
	uint64_t since = state(*s);
	uint64_t next =
		deliver(*s, NULL, "Subject: 3\r\n\r\nthree\r\n", 300, 0);
	CHECK(next > first + 1);
	struct changes c;
	char want[32];
	snprintf(want, sizeof(want), "c%llu ", (unsigned long long)next);
	CHECK(strcmp(email_changes(*s, since, 0, NULL, NULL, &c), want) == 0);
	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	sqlite3_stmt *st;
	CHECK(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) ==
	      SQLITE_OK);
	CHECK(sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 4);
	sqlite3_finalize(st);
	sqlite3_close(db);
	account = saved;
}

int main(void)
{
	if (mkdtemp(data_dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	const char *error;
	CHECK(store_create(data_dir, &error) == 0);
	struct store *s = store_open(data_dir, &error);
	CHECK(s != NULL);
	if (s == NULL)
		return unit_result("store_email");
	CHECK(store_domain_add(s, "example.test", &error) == 0);
	CHECK(store_user_add(s, "carol@example.test", &account, &error) == 0);
	test_ids_and_changes(s);
	test_mailbox_changes(s);
	test_query(s);
	test_threads(s);
	test_settings_uploads(s);
	test_upgrade(&s);
	store_close(&s);
	nftw(data_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	return unit_result("store_email");
}
