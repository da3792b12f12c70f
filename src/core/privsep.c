/* privsep.c: users, ownership of the data directory, and the lock-down of
 * each child (see privsep.h). */
#include "core/common.h"

#include "core/privsep.h"

#include "core/log.h"
#include "core/sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Directories of the store are at most this deep (blobs/ab/..., and
 * dkim/DOMAIN/...); deeper ones are not ours and are left alone. */
#define PRIVSEP_MAX_DEPTH 4
/* Room for getpwnam_r's strings. */
#define PRIVSEP_PWBUF_SIZE 4096

/* Group-shared store: files rw for the group, directories setgid so that
 * what any member creates stays in the group. */
#define MODE_SHARED_FILE 0660
#define MODE_SHARED_DIR	 02770
/* The data directory: setgid, and sticky, so that a worker (in the group,
 * allowed to create meta.db's journal) can neither remove nor rename a
 * file it does not own, such as auth.db. */
#define MODE_DATA_DIR 03770

static enum privsep_role current_role;
static struct privsep_users current_users;
static pid_t current_master;

static char lookup_error[256];

static int lookup_user(const char *name, const char *group, uid_t *uid_r,
		       const char **error_r)
{
	struct passwd pw, *found = NULL;
	char buf[PRIVSEP_PWBUF_SIZE];
	int rc = getpwnam_r(name, &pw, buf, sizeof(buf), &found);
	if (rc != 0 || found == NULL) {
		snprintf(lookup_error, sizeof(lookup_error),
			 "the system user '%s' does not exist; create it "
			 "(as scripts/deps.sh does: useradd --system "
			 "--no-create-home --shell /usr/sbin/nologin --gid %s "
			 "%s)",
			 name, group, name);
		*error_r = lookup_error;
		return -1;
	}
	if (pw.pw_uid == 0) {
		snprintf(lookup_error, sizeof(lookup_error),
			 "the user '%s' is root: dijk's processes need "
			 "unprivileged users",
			 name);
		*error_r = lookup_error;
		return -1;
	}
	*uid_r = pw.pw_uid;
	return 0;
}

int privsep_users_lookup(const struct config *cfg,
			 struct privsep_users *users_r, const char **error_r)
{
	memset(users_r, 0, sizeof(*users_r));
	if (geteuid() != 0)
		return 0;
	struct group gr, *found = NULL;
	char buf[PRIVSEP_PWBUF_SIZE];
	int rc = getgrnam_r(cfg->group, &gr, buf, sizeof(buf), &found);
	if (rc != 0 || found == NULL || gr.gr_gid == 0) {
		snprintf(
			lookup_error, sizeof(lookup_error),
			"the system group '%s' does not exist (or is root's); "
			"create it (scripts/deps.sh does: groupadd --system %s)",
			cfg->group, cfg->group);
		*error_r = lookup_error;
		return -1;
	}
	users_r->gid = gr.gr_gid;
	if (lookup_user(cfg->user, cfg->group, &users_r->worker_uid, error_r) !=
		    0 ||
	    lookup_user(cfg->auth_user, cfg->group, &users_r->auth_uid,
			error_r) != 0 ||
	    lookup_user(cfg->queue_user, cfg->group, &users_r->queue_uid,
			error_r) != 0)
		return -1;
	/* Separate users are the point: one for all would let a worker
	 * read auth.db. */
	if (users_r->worker_uid == users_r->auth_uid ||
	    users_r->worker_uid == users_r->queue_uid ||
	    users_r->auth_uid == users_r->queue_uid) {
		*error_r = "user, auth_user and queue_user must be three "
			   "different users";
		return -1;
	}
	users_r->active = true;
	return 0;
}

const char *privsep_enter_data(const char *data_dir)
{
	if (chdir(data_dir) != 0)
		dijk_fatal("%s: %s", data_dir, strerror(errno));
	return ".";
}

uid_t privsep_role_uid(const struct privsep_users *users,
		       enum privsep_role role)
{
	if (!users->active)
		return geteuid();
	switch (role) {
	case PRIVSEP_ROLE_AUTH:
		return users->auth_uid;
	case PRIVSEP_ROLE_QUEUE:
		return users->queue_uid;
	case PRIVSEP_ROLE_SMTP:
	case PRIVSEP_ROLE_IMAP:
	case PRIVSEP_ROLE_HTTP:
		return users->worker_uid;
	case PRIVSEP_ROLE_NONE:
		break;
	}
	return 0;
}

/* What one entry of the store should be. uid (uid_t)-1 keeps the owner;
 * owners lists who may own it already (anyone else: refuse, because an
 * unprivileged process made it and we would be adopting its content). */
struct fix_rule {
	const char *name;
	uid_t uid;
	gid_t gid;
	mode_t file_mode, dir_mode;
	bool recurse;
	/* When set, only root and uid may own it; a foreign journal is
	 * removed (it holds nothing of ours), anything else refused. */
	bool guarded;
	bool journal;
};

static char fix_error[512];

static int fix_fail(const char *path, const char *what)
{
	snprintf(fix_error, sizeof(fix_error), "%s: %s", path, what);
	return -1;
}

static int fix_entry(int dirfd, const char *name, const char *path,
		     const struct fix_rule *r, int depth);

static int fix_children(int fd, const char *path, const struct fix_rule *r,
			int depth)
{
	int copy = dup(fd);
	DIR *d = copy >= 0 ? fdopendir(copy) : NULL;
	if (d == NULL) {
		if (copy >= 0)
			close(copy);
		return fix_fail(path, strerror(errno));
	}
	int ret = 0;
	struct dirent *e;
	while (ret == 0 && (e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		char sub[1024];
		int n = snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
		if (n < 0 || (size_t)n >= sizeof(sub))
			continue;
		ret = fix_entry(fd, e->d_name, sub, r, depth + 1);
	}
	closedir(d);
	return ret;
}

static int fix_entry(int dirfd, const char *name, const char *path,
		     const struct fix_rule *r, int depth)
{
	/* Opened without following a link and without blocking on a FIFO:
	 * the owner and mode change on what was checked, never on what a
	 * link points to. */
	int fd = openat(dirfd, name,
			O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
				O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT || errno == ELOOP || errno == ENXIO)
			return 0; /* absent, a link, a socket: not ours */
		return fix_fail(path, strerror(errno));
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		close(fd);
		return fix_fail(path, strerror(errno));
	}
	bool dir = S_ISDIR(st.st_mode);
	if (!dir && !S_ISREG(st.st_mode)) {
		close(fd);
		return 0;
	}
	if (r->guarded && st.st_uid != 0 && st.st_uid != r->uid) {
		close(fd);
		if (r->journal && unlinkat(dirfd, name, 0) == 0) {
			log_warning("%s belonged to uid %u: removed", path,
				    (unsigned)st.st_uid);
			return 0;
		}
		snprintf(fix_error, sizeof(fix_error),
			 "%s belongs to uid %u, not to its user: check it and "
			 "remove it or give it to the right user",
			 path, (unsigned)st.st_uid);
		return -1;
	}
	mode_t mode = dir ? r->dir_mode : r->file_mode;
	if (fchown(fd, r->uid, r->gid) != 0 || fchmod(fd, mode) != 0) {
		int saved = errno;
		close(fd);
		return fix_fail(path, strerror(saved));
	}
	int ret = 0;
	if (dir && r->recurse && depth < PRIVSEP_MAX_DEPTH)
		ret = fix_children(fd, path, r, depth);
	close(fd);
	return ret;
}

int privsep_fix_data(const struct privsep_users *u, const char **error_r)
{
	if (!u->active)
		return 0;
	const uid_t keep = (uid_t)-1;
	/* dkim/ is made by 'dijk dkim generate' as queue_user. One that
	 * another user made (a worker may create entries in the data
	 * directory) is refused below, never adopted with its keys. */
	const struct fix_rule rules[] = {
		{".", 0, u->gid, 0, MODE_DATA_DIR, false, false, false},
		/* The admin commands read the configuration as their user. */
		{"dijk.conf", 0, u->gid, 0640, 0, false, false, false},
		{"run", 0, u->gid, 0, 0750, false, false, false},
		{"meta.db", keep, u->gid, MODE_SHARED_FILE, 0, false, false,
		 false},
		{"meta.db-wal", keep, u->gid, MODE_SHARED_FILE, 0, false, false,
		 false},
		{"meta.db-shm", keep, u->gid, MODE_SHARED_FILE, 0, false, false,
		 false},
		{"accounts", keep, u->gid, MODE_SHARED_FILE, MODE_SHARED_DIR,
		 true, false, false},
		{"blobs", keep, u->gid, MODE_SHARED_FILE, MODE_SHARED_DIR, true,
		 false, false},
		{"auth.db", u->auth_uid, u->gid, 0600, 0, false, true, false},
		{"auth.db-wal", u->auth_uid, u->gid, 0600, 0, false, true,
		 true},
		{"auth.db-shm", u->auth_uid, u->gid, 0600, 0, false, true,
		 true},
		{"auth.key", u->auth_uid, u->gid, 0600, 0, false, true, false},
		{"audit.key", u->auth_uid, u->gid, 0600, 0, false, true, false},
		{"audit.db", u->auth_uid, u->gid, 0600, 0, false, true, false},
		{"audit.db-wal", u->auth_uid, u->gid, 0600, 0, false, true,
		 true},
		{"audit.db-shm", u->auth_uid, u->gid, 0600, 0, false, true,
		 true},
		{"dkim", u->queue_uid, u->gid, 0600, 0700, true, true, false},
	};
	int here = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (here < 0) {
		*error_r = "cannot open the data directory";
		return -1;
	}
	for (size_t i = 0; i < ARRAY_SIZE(rules); i++) {
		if (fix_entry(here, rules[i].name, rules[i].name, &rules[i],
			      0) != 0) {
			close(here);
			*error_r = fix_error;
			return -1;
		}
	}
	close(here);
	return 0;
}

int privsep_become(uid_t uid, gid_t gid, const char **error_r)
{
	/* Groups first, then gid, then uid: once the uid is gone there is
	 * no right left to change the others. */
	if (setgroups(0, NULL) != 0) {
		*error_r = "setgroups failed";
		return -1;
	}
	if (setresgid(gid, gid, gid) != 0) {
		*error_r = "setresgid failed";
		return -1;
	}
	if (setresuid(uid, uid, uid) != 0) {
		*error_r = "setresuid failed";
		return -1;
	}
	/* A way back would mean the drop did not happen. */
	if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
		*error_r = "could regain root after dropping it";
		return -1;
	}
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0 ||
	    ru != uid || eu != uid || su != uid || rg != gid || eg != gid ||
	    sg != gid) {
		*error_r = "the uid or gid did not change";
		return -1;
	}
	return 0;
}

/* True when the calling thread holds no capability at all. */
static bool no_capabilities(void)
{
	struct __user_cap_header_struct header = {
		.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
	memset(data, 0xff, sizeof(data));
	if (syscall(SYS_capget, &header, data) != 0)
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(data); i++)
		if (data[i].effective != 0 || data[i].permitted != 0 ||
		    data[i].inheritable != 0)
			return false;
	return true;
}

void privsep_child_begin(enum privsep_role role,
			 const struct privsep_users *users)
{
	current_role = role;
	current_users = *users;
	current_master = getppid();
	if (users->active) {
		/* The bounding set is per thread: drop it here, before any
		 * thread exists, so that every later thread inherits the
		 * empty one. It needs CAP_SETPCAP, which root still has. */
		for (int cap = 0; cap <= CAP_LAST_CAP; cap++)
			if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 &&
			    errno != EINVAL)
				dijk_fatal("cannot drop capability %d: %s", cap,
					   strerror(errno));
		/* Files the workers and the queue share are group rw. */
		umask(007);
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 &&
	    errno != EINVAL)
		dijk_fatal("cannot clear the ambient capabilities: %s",
			   strerror(errno));
	/* Inherited by every thread made from here on; execve could no
	 * longer raise any right (and the seccomp filter forbids it). */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		dijk_fatal("cannot set no-new-privs: %s", strerror(errno));
	/* Every child holds a key (TLS in the workers, DKIM in the queue,
	 * credentials in auth): no core file, no ptrace by its own uid. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		dijk_fatal("cannot clear the dumpable flag: %s",
			   strerror(errno));
}

void privsep_lock_down(void)
{
	if (current_role == PRIVSEP_ROLE_NONE)
		return;
	const char *error;
	if (current_users.active) {
		uid_t uid = privsep_role_uid(&current_users, current_role);
		if (privsep_become(uid, current_users.gid, &error) != 0)
			dijk_fatal("dropping root: %s", error);
		if (!no_capabilities())
			dijk_fatal("capabilities left after dropping root");
		/* A change of uid clears the parent-death signal: arm it
		 * again, then make sure the master did not go meanwhile, so
		 * that no child outlives it. */
		if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) != 0)
			dijk_fatal("cannot set the parent-death signal: %s",
				   strerror(errno));
		if (getppid() != current_master)
			exit(0);
#ifdef DIJK_SANITIZED
		/* The leak checker at exit attaches to our threads with
		 * ptrace, which a non-dumpable process refuses; only the
		 * sanitizer build keeps the flag (release builds clear it,
		 * and the uid change cleared it too). */
		prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
#endif
	}
	if (sandbox_enter(current_role, &error) != 0)
		dijk_fatal("seccomp: %s", error);
}

void privsep_check_admin(const char *shown_name)
{
	struct stat st;
	if (stat(".", &st) != 0)
		dijk_fatal("%s: %s", shown_name, strerror(errno));
	if (geteuid() != 0 && st.st_uid != geteuid())
		dijk_fatal("%s belongs to another user (uid %u): the admin "
			   "commands run as its owner or as root",
			   shown_name, (unsigned)st.st_uid);
}
