/* cli_audit.h: the admin's view of the audit log, and the entries admin
 * commands add to it.
 *
 *   dijk audit [--user U] [--since T] [--json]   list entries, oldest first
 *   dijk audit verify                            recompute the MAC chain
 *   dijk audit prune [--before T]                drop whole days now
 *
 * T is an ISO date or time in UTC (2026-11-23, 2026-11-23T10:00:00) or an
 * age (30m, 24h, 7d). --json prints one JSON object a line. verify exits 0
 * and prints the count when the chain holds, 1 naming the first bad id when
 * it does not. prune without --before keeps audit.retention_days of
 * DATA/dijk.conf, as the auth process does daily.
 *
 * These commands may run while the server does: SQLite's locking (with a
 * busy timeout) keeps the auth process's appends and theirs apart. */
#ifndef DIJK_CLI_AUDIT_H
#define DIJK_CLI_AUDIT_H

#include "core/common.h"

struct cli_audit_options {
	const char *user;
	const char *since;
	const char *before;
	bool json;
};

/* args[0] is "audit"; returns the exit status (2 for a usage error). */
int cli_audit(const char *data_dir, const char *const *args, size_t count,
	      const struct cli_audit_options *o);

/* Records a successful admin command (args as given, args[0] the
 * command). Commands that change nothing are not recorded. Returns 0, or
 * -1 after telling stderr that the entry could not be written. */
int cli_audit_admin(const char *data_dir, const char *const *args,
		    size_t count);

#endif
