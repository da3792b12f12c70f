/* privsep.h: who each process of the family runs as, and the lock-down
 * every child goes through before it reads a byte from the network.
 *
 * Started as root, 'dijk serve' looks up three system users and one group
 * (config keys user, auth_user, queue_user, group; by default dijk,
 * dijk-auth, dijk-queue and dijk), fixes the ownership of the data
 * directory, and each child then gives up root for good: protocol
 * workers become 'user', the auth process 'auth_user', the queue
 * 'queue_user', all with 'group' as their only group, no capabilities,
 * no-new-privs and a seccomp filter (sandbox.h). Started as any other
 * user, nothing can change uid, but the no-new-privs bit, the
 * not-dumpable bit and the seccomp filter still apply.
 *
 * Every process works from inside the data directory (privsep_enter_data
 * makes it the current directory and hands back "."), so a child that is
 * no longer root needs no right on the directories above it.
 *
 * The admin commands run by root switch to the user that owns what they
 * write (privsep_become); run by another user that does not own the data
 * directory, they are refused (privsep_check_admin). */
#ifndef DIJK_PRIVSEP_H
#define DIJK_PRIVSEP_H

#include "core/config.h"

#include <stdbool.h>
#include <sys/types.h>

enum privsep_role {
	PRIVSEP_ROLE_NONE = 0, /* the master, the admin commands */
	PRIVSEP_ROLE_AUTH,
	PRIVSEP_ROLE_QUEUE,
	PRIVSEP_ROLE_SMTP,
	PRIVSEP_ROLE_IMAP,
	PRIVSEP_ROLE_HTTP,
};

/* The accounts of a root-started family; active is false when dijk was
 * started by another user and keeps that one uid throughout. */
struct privsep_users {
	bool active;
	uid_t worker_uid, auth_uid, queue_uid;
	gid_t gid;
};

/* Fills users from cfg's user names when the process runs as root (else
 * users->active = false and returns 0). A missing user or group is an
 * error naming it, so that 'dijk serve' refuses to start rather than run
 * a child as root. The error stays valid until the next call. */
int privsep_users_lookup(const struct config *cfg,
			 struct privsep_users *users_r, const char **error_r);

/* Makes data_dir the current directory and returns "." for use as the
 * data directory from then on. Start-up only: dijk_fatal on failure. */
const char *privsep_enter_data(const char *data_dir);

/* As root, with the data directory as current directory: gives each file
 * of the store the owner and mode its readers need (see docs/security.md,
 * "Privilege separation"). Walks without following symbolic links. */
int privsep_fix_data(const struct privsep_users *users, const char **error_r);

/* The uid a role runs as under users (root's own when not active). */
uid_t privsep_role_uid(const struct privsep_users *users,
		       enum privsep_role role);

/* In a new child, still single-threaded: remembers role for
 * privsep_lock_down, drops the capability bounding and ambient sets,
 * sets no-new-privs and not-dumpable, and the umask the shared store
 * needs. dijk_fatal on failure. */
void privsep_child_begin(enum privsep_role role,
			 const struct privsep_users *users);

/* Called by each child after its setup (store opened, keys loaded) and
 * before its event loop reads anything: becomes the role's user (when
 * root started the family), checks that no capability is left, and
 * enters the role's seccomp filter. Does nothing in a process that
 * privsep_child_begin never saw. Exits through dijk_fatal on any
 * failure: a child never serves with more rights than it should. */
void privsep_lock_down(void);

/* Gives up root for good: no supplementary groups, gid, then uid. */
int privsep_become(uid_t uid, gid_t gid, const char **error_r);

/* Admin commands: refuses (dijk_fatal) a caller that is neither root nor
 * the owner of the current directory (the data directory). */
void privsep_check_admin(const char *shown_name);

#endif
