/* master.h: the master process of 'dijk serve'.
 *
 * Binds every listener, loads the TLS certificate, forks the auth process
 * and the protocol workers, restarts a child that dies (with backoff),
 * relays change notifications between children, and stops them all on
 * SIGTERM or SIGINT. It parses no byte from the network. */
#ifndef DIJK_MASTER_H
#define DIJK_MASTER_H

#include "core/config.h"

/* Runs until SIGTERM/SIGINT; returns the exit status. */
int master_run(const char *data_dir, const struct config *cfg);

#endif
