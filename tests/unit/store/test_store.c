/* test_store.c: unit tests for the store: domains, users, credentials,
 * default mailboxes, delivery in batches (UIDs, MODSEQ, shared blobs) and
 * the outbound queue, on a fresh data directory. */
#include "unit.h"

#include "store/store.h"

#include <ftw.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char data_dir[] = "/tmp/dijk-unit-store-XXXXXX";

static int remove_entry(const char *path, const struct stat *st, int flag,
			struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void collect_domain(const char *domain, void *context)
{
	char *out = context;
	strncat(out, domain, 255 - strlen(out));
	strncat(out, ";", 255 - strlen(out));
}

struct mailbox_seen {
	size_t count;
	bool inbox, sent_special;
	uint32_t inbox_uidnext;
	uint64_t inbox_modseq, inbox_messages;
	uint32_t uidvalidity;
};

static void collect_mailbox(const struct store_mailbox_info *m, void *context)
{
	struct mailbox_seen *seen = context;
	seen->count++;
	if (strcmp(m->name, "INBOX") == 0) {
		seen->inbox = true;
		seen->inbox_uidnext = m->uidnext;
		seen->inbox_modseq = m->highestmodseq;
		seen->inbox_messages = m->messages;
		seen->uidvalidity = m->uidvalidity;
	}
	if (strcmp(m->name, "Sent") == 0 && m->special_use != NULL &&
	    strcmp(m->special_use, "\\Sent") == 0)
		seen->sent_special = true;
}

static void collect_uids(const struct store_message_info *m, void *context)
{
	uint32_t *last = context;
	CHECK(m->uid > *last);
	*last = m->uid;
}

static void test_domains_users(struct store *s)
{
	const char *error;
	CHECK(store_domain_add(s, "Example.TEST", &error) == 0);
	CHECK(store_domain_add(s, "example.test", &error) == -1);
	CHECK(store_domain_add(s, "other.test", &error) == 0);
	CHECK(store_domain_add(s, "bad domain", &error) == -1);
	CHECK(store_domain_add(s, "../etc", &error) == -1);
	char list[256] = "";
	CHECK(store_domain_list(s, collect_domain, list, &error) == 0);
	CHECK(strcmp(list, "example.test;other.test;") == 0);
	CHECK(store_domain_exists(s, slice_cstr("EXAMPLE.test"), &error) == 1);
	CHECK(store_domain_exists(s, slice_cstr("nope.test"), &error) == 0);

	uint64_t alice, bob, id;
	CHECK(store_user_add(s, "Alice@Example.test", &alice, &error) == 0);
	CHECK(store_user_add(s, "bob@example.test", &bob, &error) == 0);
	CHECK(alice != bob);
	CHECK(store_user_add(s, "alice@example.test", &id, &error) == -1);
	CHECK(store_user_add(s, "carol@missing.test", &id, &error) == -1);
	CHECK(store_user_add(s, "no-at-sign", &id, &error) == -1);
	CHECK(store_user_add(s, "a b@example.test", &id, &error) == -1);
	CHECK(store_user_lookup(s, slice_cstr("ALICE@example.TEST"), &id,
				&error) == 1);
	CHECK(id == alice);
	CHECK(store_user_lookup(s, slice_cstr("nobody@example.test"), &id,
				&error) == 0);
	char address[STORE_MAX_ADDRESS];
	CHECK(store_user_address(s, bob, address, sizeof(address), &error) ==
	      0);
	CHECK(strcmp(address, "bob@example.test") == 0);
	CHECK(store_domain_del(s, "example.test", &error) ==
	      -1); /* has users */
	CHECK(store_domain_del(s, "other.test", &error) == 0);
	CHECK(store_domain_del(s, "other.test", &error) == -1);

	struct mailbox_seen seen = {0};
	CHECK(store_mailbox_list(s, alice, collect_mailbox, &seen, &error) ==
	      0);
	CHECK(seen.count == 6 && seen.inbox && seen.sent_special);
	CHECK(seen.inbox_uidnext == 1 && seen.uidvalidity > 0);
}

static void test_credentials(void)
{
	const char *error;
	struct store_credentials *c = store_credentials_open(data_dir, &error);
	CHECK(c != NULL);
	char *phc = NULL;
	CHECK(store_credentials_get_password(c, 1, &phc, &error) == 0);
	CHECK(store_credentials_set_password(c, 1, "$argon2id$v=19$x",
					     &error) == 0);
	CHECK(store_credentials_get_password(c, 1, &phc, &error) == 1);
	CHECK(phc != NULL && strcmp(phc, "$argon2id$v=19$x") == 0);
	free(phc);
	CHECK(store_credentials_delete(c, 1, &error) == 0);
	CHECK(store_credentials_get_password(c, 1, &phc, &error) == 0);
	store_credentials_close(&c);
	CHECK(c == NULL);
	char path[512];
	snprintf(path, sizeof(path), "%s/auth.db", data_dir);
	struct stat st;
	CHECK(stat(path, &st) == 0 && (st.st_mode & 077) == 0);
}

static void test_delivery(struct store *s)
{
	const char *error;
	uint64_t alice, bob;
	CHECK(store_user_lookup(s, slice_cstr("alice@example.test"), &alice,
				&error) == 1);
	CHECK(store_user_lookup(s, slice_cstr("bob@example.test"), &bob,
				&error) == 1);

	enum { N = 5 };
	struct store_delivery d[N];
	struct store_delivery *batch[N];
	uint32_t uids[N][2];
	char bodies[N][64];
	uint64_t both[2] = {alice, bob};
	const char *remote[1] = {"carol@remote.test"};
	for (size_t i = 0; i < N; i++) {
		snprintf(bodies[i], sizeof(bodies[i]),
			 "Subject: %zu\r\n\r\nbody %zu\r\n", i, i);
		memset(&d[i], 0, sizeof(d[i]));
		d[i].data = (const uint8_t *)bodies[i];
		d[i].size = strlen(bodies[i]);
		d[i].internal_date = 1700000000 + (time_t)i;
		d[i].accounts = i == 0 ? both : &alice;
		d[i].account_count = i == 0 ? 2 : 1;
		d[i].sender = "sender@remote.test";
		d[i].remote_recipients = i == 1 ? remote : NULL;
		d[i].remote_count = i == 1 ? 1 : 0;
		d[i].uids = uids[i];
		batch[i] = &d[i];
	}
	CHECK(store_deliver_batch(s, batch, N) == 0);
	for (size_t i = 0; i < N; i++) {
		CHECK_CASE(d[i].result == 0, i, "delivery");
		CHECK_CASE(uids[i][0] == i + 1, i, "alice's UIDs in order");
	}
	CHECK(uids[0][1] == 1); /* bob's first */

	struct mailbox_seen seen = {0};
	CHECK(store_mailbox_list(s, alice, collect_mailbox, &seen, &error) ==
	      0);
	CHECK(seen.inbox_uidnext == N + 1 && seen.inbox_messages == N);
	uint64_t modseq_before = seen.inbox_modseq;
	CHECK(modseq_before > 1);

	for (size_t i = 0; i < N; i++) {
		uint8_t *data;
		size_t size;
		CHECK(store_message_read(s, alice, "INBOX", uids[i][0], &data,
					 &size, &error) == 1);
		CHECK_CASE(size == strlen(bodies[i]) &&
				   memcmp(data, bodies[i], size) == 0,
			   i, bodies[i]);
		free(data);
	}
	uint8_t *data;
	size_t size;
	CHECK(store_message_read(s, bob, "INBOX", 1, &data, &size, &error) ==
	      1);
	CHECK(size == strlen(bodies[0]));
	free(data);
	CHECK(store_message_read(s, alice, "INBOX", 999, &data, &size,
				 &error) == 0);
	CHECK(store_message_read(s, alice, "Sent", 1, &data, &size, &error) ==
	      0);

	uint32_t last = 0;
	CHECK(store_message_list(s, alice, "INBOX", collect_uids, &last,
				 &error) == 0);
	CHECK(last == N);

	/* A second batch goes on from the UIDs and MODSEQ of the first. */
	CHECK(store_deliver_batch(s, batch, 1) == 0);
	CHECK(uids[0][0] == N + 1);
	memset(&seen, 0, sizeof(seen));
	CHECK(store_mailbox_list(s, alice, collect_mailbox, &seen, &error) ==
	      0);
	CHECK(seen.inbox_modseq > modseq_before);

	/* A delivery to an account without an index fails alone. */
	uint64_t ghost = 9999;
	struct store_delivery g = d[2];
	uint32_t ghost_uid;
	g.accounts = &ghost;
	g.account_count = 1;
	g.uids = &ghost_uid;
	struct store_delivery *gb[2] = {&g, &d[3]};
	CHECK(store_deliver_batch(s, gb, 2) == 1);
	CHECK(g.result == -1 && g.error != NULL && d[3].result == 0);
}

static size_t queued;
static void count_queue(const struct store_queue_info *q, void *context)
{
	(void)context;
	CHECK(strcmp(q->recipients, "carol@remote.test") == 0);
	CHECK(strcmp(q->sender, "sender@remote.test") == 0);
	queued++;
}

/* Writers in threads of their own, each with its own store handle, as
 * the workers are processes of their own. */
#define FANOUT_WRITERS	4
#define FANOUT_MESSAGES 150

static void *fanout_writer(void *arg)
{
	size_t *failed = arg;
	const char *error;
	struct store *s = store_open(data_dir, &error);
	CHECK(s != NULL);
	if (s == NULL)
		return NULL;
	uint64_t alice;
	CHECK(store_user_lookup(s, slice_cstr("alice@example.test"), &alice,
				&error) == 1);
	for (size_t i = 0; i < FANOUT_MESSAGES; i++) {
		static const char body[] = "Subject: fan-out\r\n\r\nbody\r\n";
		uint32_t uid;
		struct store_delivery d = {.data = (const uint8_t *)body,
					   .size = sizeof(body) - 1,
					   .internal_date = 1700000000,
					   .accounts = &alice,
					   .account_count = 1,
					   .sender = "sender@remote.test",
					   .uids = &uid};
		struct store_delivery *batch[1] = {&d};
		if (store_deliver_batch(s, batch, 1) != 0 || d.result != 0)
			(*failed)++;
	}
	store_close(&s);
	return NULL;
}

/* store_create makes blobs/00 to blobs/ff; with them gone (a data
 * directory from before), writers that make the same one at the same
 * moment all store their message. */
static void test_fanout(void)
{
	char path[512];
	struct stat st;
	size_t missing = 0;
	for (unsigned i = 0; i < 256; i++) {
		snprintf(path, sizeof(path), "%s/blobs/%02x", data_dir, i);
		if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
			missing++;
	}
	CHECK(missing == 0);
	for (unsigned i = 0; i < 256; i++) {
		snprintf(path, sizeof(path), "%s/blobs/%02x", data_dir, i);
		nftw(path, remove_entry, 4, FTW_DEPTH | FTW_PHYS);
	}
	pthread_t threads[FANOUT_WRITERS];
	size_t failed[FANOUT_WRITERS] = {0};
	for (size_t i = 0; i < FANOUT_WRITERS; i++)
		CHECK(pthread_create(&threads[i], NULL, fanout_writer,
				     &failed[i]) == 0);
	for (size_t i = 0; i < FANOUT_WRITERS; i++) {
		pthread_join(threads[i], NULL);
		CHECK_CASE(failed[i] == 0, i, "writer");
	}
}

int main(void)
{
	if (mkdtemp(data_dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	const char *error;
	CHECK(store_create(data_dir, &error) == 0);
	CHECK(store_create(data_dir, &error) == 0); /* idempotent */
	struct store *s = store_open(data_dir, &error);
	CHECK(s != NULL);
	if (s == NULL)
		return unit_result("store");
	test_domains_users(s);
	test_credentials();
	test_delivery(s);
	test_fanout();
	CHECK(store_queue_list(s, count_queue, NULL, &error) == 0);
	CHECK(queued == 1);
	CHECK(store_user_del(s, "bob@example.test", &error) == 0);
	uint64_t id;
	CHECK(store_user_lookup(s, slice_cstr("bob@example.test"), &id,
				&error) == 0);
	store_close(&s);
	CHECK(store_open("/nonexistent/dijk", &error) == NULL && error != NULL);
	nftw(data_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	return unit_result("store");
}
