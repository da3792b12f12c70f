/* smtp.h: the smtp worker process: MX on listen.smtp, submission on
 * listen.submission (STARTTLS) and listen.submissions (implicit TLS). */
#ifndef DIJK_SMTP_H
#define DIJK_SMTP_H

#include "core/common.h"

#include "core/config.h"

#include <openssl/ssl.h>

struct smtp_worker_params {
	const struct config *config;
	const char *data_dir;
	/* Listening sockets, -1 when off. */
	int mx_fd, submission_fd, submissions_fd;
	SSL_CTX *tls;  /* NULL when no certificate */
	int master_fd; /* channel to master for change notifications */
};

/* Runs the worker until SIGTERM; returns the exit status. */
int smtp_worker_run(const struct smtp_worker_params *params);

#endif
