/* http.h: the http worker process: the webmail and its brand portal on
 * listen.https (and listen.http, which serves loopback clients and sends
 * everyone else to HTTPS). */
#ifndef DIJK_HTTP_H
#define DIJK_HTTP_H

#include "core/common.h"

#include "core/config.h"

#include <openssl/ssl.h>

struct http_worker_params {
	const struct config *config;
	const char *data_dir;
	int http_fd, https_fd; /* listening sockets, -1 when off */
	SSL_CTX *tls;
	int master_fd; /* notifications to and from the master */
};

/* Runs the worker until SIGTERM; returns the exit status. */
int http_worker_run(const struct http_worker_params *params);

#endif
