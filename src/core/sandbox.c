/* sandbox.c: seccomp allowlists per role (see sandbox.h). The lists were
 * found by running the integration suite with the filter on and reading
 * the kernel's record of each killed call (dmesg: "type=1326 ...
 * syscall=N"); see docs/security.md. */
#include "core/common.h"

#include "core/sandbox.h"

#include <errno.h>
#include <linux/sched.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include <seccomp.h>

/* What every role needs: memory, files inside the data directory (and
 * the system's read-only files: CA bundle, charset modules, resolver
 * configuration), time, threads and their futexes, the event loop, and
 * I/O on sockets it already holds. */
static const char *const common_calls[] = {
	"read",
	"write",
	"readv",
	"writev",
	"pread64",
	"pwrite64",
	"preadv",
	"pwritev",
	"close",
	"fstat",
	"newfstatat",
	"stat",
	"lstat",
	"statx",
	"lseek",
	"mmap",
	"mprotect",
	"munmap",
	"mremap",
	"madvise",
	"brk",
	"rt_sigaction",
	"rt_sigprocmask",
	"rt_sigreturn",
	"sigaltstack",
	"pipe",
	"pipe2",
	"dup",
	"dup2",
	"dup3",
	"fcntl",
	"flock",
	"fsync",
	"syncfs",
	"sync_file_range",
	"fdatasync",
	"ftruncate",
	"fallocate",
	"getdents",
	"getdents64",
	"getcwd",
	"rename",
	"renameat",
	"renameat2",
	/* A file made whole elsewhere and put in place only if none is
	 * there yet (queue.key): rename would replace one in use. */
	"linkat",
	"mkdir",
	"mkdirat",
	"rmdir",
	"unlink",
	"unlinkat",
	"readlink",
	"readlinkat",
	"access",
	"faccessat",
	"faccessat2",
	"open",
	"openat",
	"fchmod",
	"fchown",
	"umask",
	"statfs",
	"fstatfs",
	"getpid",
	"gettid",
	"getppid",
	"getuid",
	"geteuid",
	"getgid",
	"getegid",
	"getresuid",
	"getresgid",
	"getrandom",
	"clock_gettime",
	"clock_getres",
	"gettimeofday",
	"time",
	"nanosleep",
	"clock_nanosleep",
	"sched_yield",
	"sched_getaffinity",
	"futex",
	"set_robust_list",
	"get_robust_list",
	"rseq",
	"set_tid_address",
	"exit",
	"exit_group",
	"tgkill",
	"getrlimit",
	"prlimit64",
	"uname",
	"sysinfo",
	"epoll_create",
	"epoll_create1",
	"epoll_ctl",
	"epoll_wait",
	"epoll_pwait",
	"poll",
	"ppoll",
	"select",
	"pselect6",
	"eventfd",
	"eventfd2",
	"timerfd_create",
	"timerfd_settime",
	"socketpair",
	"getsockname",
	"getpeername",
	"setsockopt",
	"getsockopt",
	"shutdown",
	"sendto",
	"recvfrom",
	"sendmsg",
	"recvmsg",
	"sendmmsg",
	"recvmmsg",
	"restart_syscall",
	"membarrier",
	"getpriority",
	"setpriority",
	"mlock",
	"munlock",
	"getitimer",
	"setitimer",
	"alarm",
#ifdef DIJK_SANITIZED
	/* The sanitizers' runtime: its leak checker at exit runs in a
	 * helper that shares our memory and stops our threads with
	 * ptrace, and it reads /proc/self/maps. Only the sanitizer build
	 * allows these; the release filter never does. */
	"ptrace",
	"wait4",
	"waitid",
	"sched_setaffinity",
	"process_vm_readv",
	"kill",
#endif
};

/* Accepting connections on the listeners the master bound. */
static const char *const accept_calls[] = {"accept", "accept4"};
/* Making connections (auth socket, DNS, remote MX). */
static const char *const connect_calls[] = {"connect"};
/* A DNS query's random source port, outbound.bind's source address. */
static const char *const network_calls[] = {"bind"};

static int allow_list(scmp_filter_ctx ctx, const char *const *names,
		      size_t count, const char **error_r)
{
	static char error[128];
	for (size_t i = 0; i < count; i++) {
		int nr = seccomp_syscall_resolve_name(names[i]);
		if (nr == __NR_SCMP_ERROR)
			continue; /* not a call of this architecture */
		int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
		if (rc != 0 && rc != -EEXIST) {
			snprintf(error, sizeof(error), "cannot allow %s: %s",
				 names[i], strerror(-rc));
			*error_r = error;
			return -1;
		}
	}
	return 0;
}

/* socket(family, ...) for the listed families only. */
static int allow_socket_families(scmp_filter_ctx ctx, bool network)
{
	int families[] = {AF_UNIX, AF_INET, AF_INET6};
	size_t count = network ? ARRAY_SIZE(families) : 1;
	for (size_t i = 0; i < count; i++)
		if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
				     SCMP_A0(SCMP_CMP_EQ,
					     (scmp_datum_t)families[i], 0)) !=
		    0)
			return -1;
	return 0;
}

static int allow_conditional(scmp_filter_ctx ctx)
{
	/* Threads, never processes: clone only with CLONE_THREAD. clone3
	 * passes its flags in memory, out of the filter's sight, so it is
	 * answered ENOSYS and the C library falls back to clone. */
	if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
			     SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD,
				     CLONE_THREAD)) != 0)
		return -1;
	if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3),
			     0) != 0)
		return -1;
	/* Naming threads and asking for one's own flags only. */
	const int prctl_ops[] = {PR_SET_NAME, PR_GET_NAME, PR_GET_DUMPABLE,
				 PR_SET_VMA};
	for (size_t i = 0; i < ARRAY_SIZE(prctl_ops); i++)
		if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
				     SCMP_A0(SCMP_CMP_EQ,
					     (scmp_datum_t)prctl_ops[i], 0)) !=
		    0)
			return -1;
	/* Non-blocking mode, bytes waiting, and isatty (stdio) only. */
	const unsigned long ioctls[] = {FIONBIO, FIONREAD, TCGETS};
	for (size_t i = 0; i < ARRAY_SIZE(ioctls); i++)
		if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
				     SCMP_A1(SCMP_CMP_EQ,
					     (scmp_datum_t)ioctls[i], 0)) != 0)
			return -1;
#ifdef DIJK_SANITIZED
	/* The leak checker's helper is a clone without CLONE_THREAD. */
	if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
			     SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0)) != 0)
		return -1;
	if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 0) != 0)
		return -1;
#endif
	return 0;
}

int sandbox_enter(enum privsep_role role, const char **error_r)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	if (ctx == NULL) {
		*error_r = "cannot create a filter";
		return -1;
	}
	bool accepts = role != PRIVSEP_ROLE_QUEUE;
	bool network = role == PRIVSEP_ROLE_SMTP || role == PRIVSEP_ROLE_QUEUE;
	int rc = -1;
	if (allow_list(ctx, common_calls, ARRAY_SIZE(common_calls), error_r) !=
		    0 ||
	    (accepts && allow_list(ctx, accept_calls, ARRAY_SIZE(accept_calls),
				   error_r) != 0) ||
	    allow_list(ctx, connect_calls, ARRAY_SIZE(connect_calls),
		       error_r) != 0 ||
	    (network && allow_list(ctx, network_calls,
				   ARRAY_SIZE(network_calls), error_r) != 0))
		goto out;
	if (allow_socket_families(ctx, network) != 0 ||
	    allow_conditional(ctx) != 0) {
		*error_r = "cannot add a conditional rule";
		goto out;
	}
	/* Every thread, including the pool's, gets the filter. */
	if (seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1) != 0 ||
	    seccomp_load(ctx) != 0) {
		*error_r = "cannot load the filter";
		goto out;
	}
	rc = 0;
out:
	seccomp_release(ctx);
	return rc;
}
