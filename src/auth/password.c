/* password.c: Argon2id through libsodium's crypto_pwhash. */
#include "core/common.h"

#include "auth/password.h"

#include <sodium.h>

static char dummy_phc[PASSWORD_PHC_MAX];

int password_init(void)
{
	if (sodium_init() < 0)
		return -1;
	/* Made once, before any thread may use it. */
	return password_hash(slice_cstr("dijk-dummy-password"), dummy_phc);
}

int password_hash(struct slice password, char phc_r[PASSWORD_PHC_MAX])
{
	DIJK_ASSERT(crypto_pwhash_STRBYTES <= PASSWORD_PHC_MAX);
	if (password.n > PASSWORD_MAX_LENGTH)
		return -1;
	return crypto_pwhash_str_alg(phc_r, (const char *)password.p,
				     password.n, PASSWORD_OPSLIMIT,
				     (size_t)PASSWORD_MEMLIMIT_KIB * 1024,
				     crypto_pwhash_ALG_ARGON2ID13);
}

bool password_verify(const char *phc, struct slice password)
{
	if (password.n > PASSWORD_MAX_LENGTH)
		return false;
	/* Only argon2id hashes are accepted: nothing weaker slips in. */
	if (strncmp(phc, "$argon2id$", 10) != 0)
		return false;
	return crypto_pwhash_str_verify(phc, (const char *)password.p,
					password.n) == 0;
}

bool password_needs_rehash(const char *phc)
{
	return crypto_pwhash_str_needs_rehash(phc, PASSWORD_OPSLIMIT,
					      (size_t)PASSWORD_MEMLIMIT_KIB *
						      1024) != 0;
}

void password_verify_dummy(struct slice password)
{
	DIJK_ASSERT(dummy_phc[0] != '\0');
	(void)password_verify(dummy_phc, password);
}
