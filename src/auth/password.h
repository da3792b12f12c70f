/* password.h: password hashing with Argon2id (libsodium).
 *
 * Policy: m = 19456 KiB, t = 2, p = 1 (OWASP), 16-byte salt, 32-byte tag,
 * stored as a PHC string. Passwords are at most PASSWORD_MAX_LENGTH bytes so
 * that login cannot be turned into a CPU or memory attack. These calls take
 * tens of milliseconds: never call them on an event loop. */
#ifndef DIJK_PASSWORD_H
#define DIJK_PASSWORD_H

#include "core/common.h"

#define PASSWORD_MAX_LENGTH   1024
#define PASSWORD_MIN_LENGTH   8
#define PASSWORD_PHC_MAX      128
#define PASSWORD_MEMLIMIT_KIB 19456
#define PASSWORD_OPSLIMIT     2

/* Initialises libsodium; call once per process before any other call. */
int password_init(void);

/* Hashes password into phc_r (PASSWORD_PHC_MAX bytes). */
int password_hash(struct slice password, char phc_r[PASSWORD_PHC_MAX]);

/* Returns true when password matches phc. */
bool password_verify(const char *phc, struct slice password);

/* Returns true when phc was made with weaker parameters than the policy. */
bool password_needs_rehash(const char *phc);

/* Burns the time of one verification, for unknown users, so that the reply
 * time does not tell whether an account exists. */
void password_verify_dummy(struct slice password);

#endif
