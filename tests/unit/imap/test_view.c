/* test_view.c: unit tests for the selected-mailbox view of an IMAP session
 * on a real store: the view that sleeps while the session IDLEs keeps only
 * UID runs, reports what changed while it slept exactly as an awake view
 * would, and wakes with the sequence numbers the session knows (messages
 * expunged meanwhile hold theirs until reported; flags changed meanwhile
 * are reported at the next refresh; new messages wait for their EXISTS). */
#include "unit.h"

#include "imap/internal.h"

#include <ftw.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char data_dir[] = "/tmp/dijk-unit-view-XXXXXX";

static int remove_entry(const char *path, const struct stat *st, int flag,
			struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static struct store *store;
static uint64_t account;

static uint32_t deliver(const char *subject)
{
	char text[256];
	int n = snprintf(text, sizeof(text),
			 "From: a@example.test\r\nSubject: %s\r\n\r\nbody\r\n",
			 subject);
	uint32_t uid = 0;
	struct store_delivery d = {
		.data = (const uint8_t *)text,
		.size = (size_t)n,
		.internal_date = 1700000000,
		.accounts = &account,
		.account_count = 1,
		.sender = "",
		.uids = &uid,
	};
	struct store_delivery *batch[] = {&d};
	CHECK(store_deliver_batch(store, batch, 1) == 0);
	return uid;
}

static void ignore_message(const struct store_message *m, void *context)
{
	(void)m;
	(void)context;
}

static void ignore_uid(uint32_t uid, void *context)
{
	(void)uid;
	(void)context;
}

static void add_flags(uint64_t mailbox, uint32_t uid, unsigned flags)
{
	const char *error;
	CHECK(store_flags_update(store, account, mailbox, &uid, 1,
				 STORE_FLAGS_ADD, flags, "",
				 STORE_NO_UNCHANGEDSINCE, ignore_message,
				 ignore_uid, NULL, &error) == 0);
}

static void expunge(uint64_t mailbox, uint32_t uid)
{
	const char *error;
	add_flags(mailbox, uid, STORE_FLAG_DELETED);
	CHECK(store_expunge(store, account, mailbox, &uid, 1, ignore_uid, NULL,
			    &error) == 0);
}

/* What the session was sent since the last call, as a string. */
static bool sent(struct imap_session *s, const char *expected)
{
	/* Nothing sent may mean no buffer at all yet. */
	const char *text = s->out.n ? (const char *)s->out.p : "";
	bool same = s->out.n == strlen(expected) &&
		    memcmp(text, expected, s->out.n) == 0;
	if (!same)
		fprintf(stderr, "sent:     \"%.*s\"\nexpected: \"%s\"\n",
			(int)s->out.n, text, expected);
	s->out.n = 0;
	return same;
}

static void open_session(struct imap_session *s, struct store_mailbox *mb)
{
	const char *error;
	memset(s, 0, sizeof(*s));
	buf_init(&s->out, 256);
	s->account_id = account;
	s->state = IMAP_STATE_SELECTED;
	CHECK(store_mailbox_get(store, account, "INBOX", mb, &error) == 1);
	s->view = imap_view_open(store, account, mb, false, &error);
	CHECK(s->view != NULL);
}

static void close_session(struct imap_session *s)
{
	imap_view_free(&s->view);
	buf_free(&s->out);
}

static void test_sleeping_refresh(void)
{
	struct imap_session s;
	struct store_mailbox mb;
	for (int i = 1; i <= 10; i++)
		CHECK(deliver("first ten") == (uint32_t)i);
	open_session(&s, &mb);
	struct view *v = s.view;
	CHECK(v->count == 10);
	/* The first session to see them has them as \Recent. */
	CHECK(imap_view_recent_count(v) == 10 && imap_view_recent(v, 1));

	imap_view_sleep(v);
	CHECK(v->asleep && v->messages == NULL && v->count == 10);
	CHECK(v->run_count == 1 && v->runs[0].first == 1 &&
	      v->runs[0].count == 10);
	/* Nothing changed: nothing to say. */
	imap_view_refresh(&s, store, true);
	CHECK(sent(&s, ""));

	add_flags(mb.id, 3, STORE_FLAG_FLAGGED);
	expunge(mb.id, 5);
	expunge(mb.id, 7);
	CHECK(deliver("eleven") == 11);
	CHECK(deliver("twelve") == 12);
	imap_view_refresh(&s, store, true);
	/* Expunges highest first, then flags at the new numbers, then the
	 * new count. */
	CHECK(sent(&s, "* 7 EXPUNGE\r\n* 5 EXPUNGE\r\n"
		       "* 3 FETCH (FLAGS (\\Flagged \\Recent))\r\n"
		       "* 10 EXISTS\r\n* 10 RECENT\r\n"));
	CHECK(v->asleep && v->count == 10 && v->run_count == 3);

	/* Splitting a run in the middle and emptying one. */
	expunge(mb.id, 2);
	expunge(mb.id, 6);
	imap_view_refresh(&s, store, true);
	CHECK(sent(&s, "* 5 EXPUNGE\r\n* 2 EXPUNGE\r\n"));
	CHECK(v->count == 8 && v->run_count == 3);

	/* With QRESYNC, VANISHED in UID ranges; with CONDSTORE the FETCH
	 * carries UID and MODSEQ. */
	s.qresync = true;
	s.condstore = true;
	expunge(mb.id, 8);
	expunge(mb.id, 9);
	expunge(mb.id, 11);
	add_flags(mb.id, 1, STORE_FLAG_SEEN);
	struct store_mailbox now;
	const char *error;
	imap_view_refresh(&s, store, true);
	CHECK(store_mailbox_get(store, account, "INBOX", &now, &error) == 1);
	char expected[128];
	snprintf(expected, sizeof(expected),
		 "* VANISHED 8:9,11\r\n"
		 "* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent) MODSEQ (%llu))\r\n",
		 (unsigned long long)now.highestmodseq);
	CHECK(sent(&s, expected));
	CHECK(v->count == 5 && v->highestmodseq == now.highestmodseq);

	/* Awake again, the view is what the session was told: UIDs 1 3 4
	 * 10 12, in that order. */
	CHECK(imap_view_wake(v, store, account, &error) == 0);
	CHECK(!v->asleep && v->runs == NULL && v->count == 5);
	static const uint32_t uids[] = {1, 3, 4, 10, 12};
	for (size_t i = 0; i < ARRAY_SIZE(uids); i++) {
		CHECK_CASE(v->messages[i].uid == uids[i], i, "uid");
		CHECK_CASE(!v->messages[i].expunged, i, "expunged");
		CHECK_CASE(!v->messages[i].unreported, i, "unreported");
	}
	CHECK(v->messages[0].flags == STORE_FLAG_SEEN);
	CHECK(v->messages[1].flags == STORE_FLAG_FLAGGED);
	close_session(&s);
}

static void test_wake_after_changes(void)
{
	struct imap_session s;
	struct store_mailbox mb;
	const char *error;
	open_session(&s, &mb);
	struct view *v = s.view;
	/* 1 3 4 10 12 from the test before, claimed by its session. */
	CHECK(v->count == 5);
	CHECK(imap_view_recent_count(v) == 0 && !imap_view_recent(v, 12));
	imap_view_sleep(v);
	/* Changes the session has not heard of when it wakes (the command
	 * after IDLE came before the refresh they would have caused). */
	add_flags(mb.id, 4, STORE_FLAG_ANSWERED);
	expunge(mb.id, 10);
	uint32_t fresh = deliver("thirteen");
	CHECK(fresh == 13);
	CHECK(imap_view_wake(v, store, account, &error) == 0);
	CHECK(v->count == 5);
	CHECK(v->messages[2].uid == 4 && v->messages[2].unreported);
	CHECK(v->messages[3].uid == 10 && v->messages[3].expunged);
	CHECK(v->messages[4].uid == 12 && !v->messages[4].unreported);
	/* A FETCH (no expunges allowed) brings the flag change and the new
	 * message, and still keeps number 4 for the expunged UID 10. */
	imap_view_refresh(&s, store, false);
	CHECK(sent(&s, "* 3 FETCH (FLAGS (\\Answered))\r\n"
		       "* 6 EXISTS\r\n* 1 RECENT\r\n"));
	CHECK(v->count == 6 && v->messages[5].uid == 13);
	/* The next command that may, reports it. */
	imap_view_refresh(&s, store, true);
	CHECK(sent(&s, "* 4 EXPUNGE\r\n"));
	CHECK(v->count == 5);

	/* A view with an unreported expunge does not fall asleep: its
	 * numbers would be lost. */
	expunge(mb.id, 12);
	imap_view_refresh(&s, store, false);
	CHECK(sent(&s, ""));
	imap_view_sleep(v);
	CHECK(!v->asleep);
	imap_view_refresh(&s, store, true);
	CHECK(sent(&s, "* 4 EXPUNGE\r\n"));
	imap_view_sleep(v);
	CHECK(v->asleep && v->count == 4);
	/* A session that ends while asleep frees it. */
	{
		struct view *other =
			imap_view_open(store, account, &mb, true, &error);
		CHECK(other != NULL);
		imap_view_sleep(other);
		CHECK(other->asleep);
		imap_view_free(&other);
		CHECK(other == NULL);
	}

	/* An empty mailbox sleeps and wakes too. */
	expunge(mb.id, 1);
	expunge(mb.id, 3);
	expunge(mb.id, 4);
	expunge(mb.id, 13);
	imap_view_refresh(&s, store, true);
	CHECK(sent(&s, "* 4 EXPUNGE\r\n* 3 EXPUNGE\r\n* 2 EXPUNGE\r\n"
		       "* 1 EXPUNGE\r\n"));
	CHECK(v->count == 0 && v->run_count == 0);
	CHECK(deliver("fourteen") == 14);
	imap_view_refresh(&s, store, true);
	CHECK(sent(&s, "* 1 EXISTS\r\n* 1 RECENT\r\n"));
	CHECK(imap_view_wake(v, store, account, &error) == 0);
	CHECK(v->count == 1 && v->messages[0].uid == 14);
	close_session(&s);
}

static void test_recent(void)
{
	struct imap_session s, examine;
	struct store_mailbox mb;
	const char *error;
	open_session(&s, &mb);
	CHECK(s.view->count == 1 && imap_view_recent_count(s.view) == 0);
	/* A read-only session claims nothing. */
	examine = s;
	examine.view = imap_view_open(store, account, &mb, true, &error);
	buf_init(&examine.out, 64);
	uint32_t a = deliver("fifteen"), b = deliver("sixteen");
	imap_view_refresh(&examine, store, false);
	CHECK(sent(&examine, "* 3 EXISTS\r\n* 0 RECENT\r\n"));
	CHECK(store_mailbox_status(store, account, "INBOX", &mb, &error) == 1);
	CHECK(mb.recent == 2);
	/* The read-write one, asleep, claims them when it hears of them. */
	imap_view_sleep(s.view);
	imap_view_refresh(&s, store, true);
	CHECK(sent(&s, "* 3 EXISTS\r\n* 2 RECENT\r\n"));
	CHECK(store_mailbox_status(store, account, "INBOX", &mb, &error) == 1);
	CHECK(mb.recent == 0);
	CHECK(imap_view_wake(s.view, store, account, &error) == 0);
	CHECK(imap_view_recent(s.view, a) && imap_view_recent(s.view, b) &&
	      !imap_view_recent(s.view, 14));
	/* A claim by another session leaves a gap in this one's. */
	uint32_t from;
	uint32_t c = deliver("seventeen");
	CHECK(store_recent_claim(store, account, mb.id, c + 1, &from, &error) ==
		      0 &&
	      from == c);
	uint32_t d = deliver("eighteen");
	imap_view_refresh(&s, store, true);
	CHECK(sent(&s, "* 5 EXISTS\r\n* 3 RECENT\r\n"));
	CHECK(!imap_view_recent(s.view, c) && imap_view_recent(s.view, d));
	CHECK(s.view->recent_count == 2);
	/* Claiming what is claimed gives nothing. */
	CHECK(store_recent_claim(store, account, mb.id, d + 1, &from, &error) ==
		      0 &&
	      from == d + 1);
	close_session(&examine);
	close_session(&s);
}

int main(void)
{
	if (mkdtemp(data_dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	const char *error;
	CHECK(store_create(data_dir, &error) == 0);
	store = store_open(data_dir, &error);
	CHECK(store != NULL);
	if (store == NULL)
		return unit_result("imap_view");
	CHECK(store_domain_add(store, "example.test", &error) == 0);
	CHECK(store_user_add(store, "view@example.test", &account, &error) ==
	      0);
	test_sleeping_refresh();
	test_wake_after_changes();
	test_recent();
	store_close(&store);
	nftw(data_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	return unit_result("imap_view");
}
