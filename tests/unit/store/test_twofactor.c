/* test_twofactor.c: unit tests for the second-factor part of auth.db
 * (src/store/sqlite/twofactor.c): a TOTP record kept and replaced, a
 * recovery code used once, app passwords listed, touched and revoked only
 * by their own account, sessions listed newest first, and deleting an
 * account's credentials removing all of it. */
#include "unit.h"

#include "store/store.h"

#include <ftw.h>
#include <stdlib.h>
#include <sys/stat.h>

static char data_dir[] = "/tmp/dijk-unit-twofactor-XXXXXX";

static int remove_entry(const char *path, const struct stat *st, int flag,
			struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static void test_totp(struct store_credentials *c)
{
	const char *error;
	struct store_totp t = {.box_size = 60,
			       .last_step = 7,
			       .failures = 2,
			       .locked_until = 1234};
	memset(t.box, 0xab, t.box_size);
	struct store_totp got;
	CHECK(store_totp_get(c, 1, &got, &error) == 0);
	CHECK(store_totp_set(c, 1, &t, &error) == 0);
	CHECK(store_totp_get(c, 1, &got, &error) == 1);
	CHECK(got.box_size == 60 && memcmp(got.box, t.box, 60) == 0);
	CHECK(!got.enabled && got.last_step == 7 && got.failures == 2 &&
	      got.locked_until == 1234);
	t.enabled = true;
	t.last_step = 99;
	CHECK(store_totp_set(c, 1, &t, &error) == 0);
	CHECK(store_totp_get(c, 1, &got, &error) == 1);
	CHECK(got.enabled && got.last_step == 99);
	CHECK(store_totp_get(c, 2, &got, &error) == 0);
}

static void test_recovery(struct store_credentials *c)
{
	const char *error;
	uint8_t hashes[3][STORE_RECOVERY_HASH_SIZE];
	for (int i = 0; i < 3; i++)
		memset(hashes[i], 'a' + i, STORE_RECOVERY_HASH_SIZE);
	CHECK(store_recovery_set(c, 1, hashes, 3, &error) == 0);
	CHECK(store_recovery_count(c, 1, &error) == 3);
	/* Another account cannot use them. */
	CHECK(store_recovery_use(c, 2, hashes[1], &error) == 0);
	CHECK(store_recovery_use(c, 1, hashes[1], &error) == 1);
	CHECK(store_recovery_use(c, 1, hashes[1], &error) == 0);
	CHECK(store_recovery_count(c, 1, &error) == 2);
	/* A new set replaces the old one. */
	CHECK(store_recovery_set(c, 1, hashes + 2, 1, &error) == 0);
	CHECK(store_recovery_use(c, 1, hashes[0], &error) == 0);
	CHECK(store_recovery_count(c, 1, &error) == 1);
}

struct seen {
	int count;
	int64_t ids[8];
	char names[8][STORE_APP_PASSWORD_NAME_MAX + 1];
	time_t last_used[8];
};

static void app_seen(const struct store_app_password *a, void *context)
{
	struct seen *s = context;
	if (s->count < 8) {
		s->ids[s->count] = a->id;
		snprintf(s->names[s->count], sizeof(s->names[0]), "%s",
			 a->name);
		s->last_used[s->count] = a->last_used;
	}
	s->count++;
	CHECK(strncmp(a->phc, "$argon2id$", 10) == 0);
}

static void test_app_passwords(struct store_credentials *c)
{
	const char *error;
	int64_t one, two;
	CHECK(store_app_password_add(c, 1, "phone", "$argon2id$x", 100, &one,
				     &error) == 0);
	CHECK(store_app_password_add(c, 1, "laptop", "$argon2id$y", 200, &two,
				     &error) == 0);
	CHECK(one != two);
	struct seen s = {0};
	CHECK(store_app_password_list(c, 1, app_seen, &s, &error) == 0);
	CHECK(s.count == 2 && strcmp(s.names[0], "phone") == 0 &&
	      strcmp(s.names[1], "laptop") == 0 && s.last_used[0] == 0);
	CHECK(store_app_password_touch(c, one, 555, &error) == 0);
	memset(&s, 0, sizeof(s));
	CHECK(store_app_password_list(c, 1, app_seen, &s, &error) == 0);
	CHECK(s.last_used[0] == 555);
	/* Only the owner revokes. */
	CHECK(store_app_password_delete(c, 2, one, &error) == 0);
	CHECK(store_app_password_delete(c, 1, one, &error) == 1);
	CHECK(store_app_password_delete(c, 1, one, &error) == 0);
	memset(&s, 0, sizeof(s));
	CHECK(store_app_password_list(c, 1, app_seen, &s, &error) == 0);
	CHECK(s.count == 1 && s.ids[0] == two);
}

static void session_seen(const struct store_session *session, void *context)
{
	struct seen *s = context;
	if (s->count < 8)
		s->last_used[s->count] = session->last_used;
	s->count++;
}

static void test_sessions(struct store_credentials *c)
{
	const char *error;
	for (int i = 0; i < 4; i++) {
		struct store_session s = {.account_id = i < 3 ? 1 : 2,
					  .created = 10,
					  .last_used =
						  10 + i * (i % 2 ? 5 : 1)};
		memset(s.hash, i + 1, sizeof(s.hash));
		snprintf(s.remote, sizeof(s.remote), "127.0.0.1");
		CHECK(store_session_add(c, &s, &error) == 0);
	}
	struct seen s = {0};
	CHECK(store_session_list(c, 1, 10, session_seen, &s, &error) == 0);
	CHECK(s.count == 3);
	CHECK(s.last_used[0] == 15 && s.last_used[1] == 12 &&
	      s.last_used[2] == 10);
	memset(&s, 0, sizeof(s));
	CHECK(store_session_list(c, 1, 2, session_seen, &s, &error) == 0);
	CHECK(s.count == 2);
}

static void test_delete(struct store_credentials *c)
{
	const char *error;
	struct store_totp got;
	struct seen s = {0};
	CHECK(store_credentials_delete(c, 1, &error) == 0);
	CHECK(store_totp_get(c, 1, &got, &error) == 0);
	CHECK(store_recovery_count(c, 1, &error) == 0);
	CHECK(store_app_password_list(c, 1, app_seen, &s, &error) == 0);
	CHECK(s.count == 0);
	CHECK(store_session_list(c, 1, 10, session_seen, &s, &error) == 0);
	CHECK(s.count == 0);
	/* The other account keeps its session. */
	CHECK(store_session_list(c, 2, 10, session_seen, &s, &error) == 0);
	CHECK(s.count == 1);
}

int main(void)
{
	if (mkdtemp(data_dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	const char *error;
	struct store_credentials *c = store_credentials_open(data_dir, &error);
	CHECK(c != NULL);
	if (c != NULL) {
		test_totp(c);
		test_recovery(c);
		test_app_passwords(c);
		test_sessions(c);
		test_delete(c);
		store_credentials_close(&c);
	}
	nftw(data_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	return unit_result("store_twofactor");
}
