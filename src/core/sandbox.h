/* sandbox.h: the seccomp filter of each child of 'dijk serve'.
 *
 * A child enters its filter once its setup is done (privsep_lock_down):
 * from then on it may make only the system calls its role needs, and any
 * other one kills the whole process at once (SCMP_ACT_KILL_PROCESS): the
 * master logs the signal (SIGSYS) and restarts the child with backoff.
 * No role may run a program (execve), trace (ptrace), fork a process,
 * mount, change its uid, load a module or set up a new namespace. Only
 * threads may be made (clone with CLONE_THREAD). Sockets: the workers
 * and auth accept on the sockets the master opened; imap, http and auth
 * make Unix sockets only; smtp (DNS for SPF, DKIM, DMARC) and the queue
 * (DNS, outbound SMTP, MTA-STS) also make IPv4 and IPv6 ones. */
#ifndef DIJK_SANDBOX_H
#define DIJK_SANDBOX_H

#include "core/privsep.h"

/* Loads role's filter on every thread of the process (TSYNC). Returns 0,
 * or -1 with *error_r (a static message). */
int sandbox_enter(enum privsep_role role, const char **error_r);

#endif
