/* master.h: the master process of 'dijk serve'.
 *
 * Binds every listener, loads the TLS certificate, forks the auth process
 * and the protocol workers, restarts a child that dies (with backoff),
 * relays change notifications between children, and stops them all on
 * SIGTERM or SIGINT. It parses no byte from the network. */
#ifndef DIJK_MASTER_H
#define DIJK_MASTER_H

#include "core/config.h"
#include "core/privsep.h"

/* Runs until SIGTERM/SIGINT; returns the exit status. data_dir is the
 * path every process uses ("." once privsep_enter_data ran), shown_dir the
 * one the administrator gave, for the log. users says whom the children
 * become (privsep.h); cfg and users must outlive the call. */
int master_run(const char *data_dir, const char *shown_dir,
	       const struct config *cfg, const struct privsep_users *users);

#endif
