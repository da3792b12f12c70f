/* imap.h: the imap worker process: IMAP4rev1 and IMAP4rev2 on listen.imap
 * (STARTTLS) and listen.imaps (implicit TLS). */
#ifndef DIJK_IMAP_H
#define DIJK_IMAP_H

#include "core/common.h"

#include "core/config.h"

#include <openssl/ssl.h>

struct imap_worker_params {
	const struct config *config;
	const char *data_dir;
	int imap_fd, imaps_fd; /* listening sockets, -1 when off */
	SSL_CTX *tls;
	int master_fd; /* notifications to and from the master */
};

/* Runs the worker until SIGTERM; returns the exit status. */
int imap_worker_run(const struct imap_worker_params *params);

#endif
