/* tls.h: TLS contexts with the Mozilla "intermediate" profile, and the
 * self-signed certificate made by 'dijk init'. */
#ifndef DIJK_TLS_H
#define DIJK_TLS_H

#include "core/common.h"

#include <openssl/ssl.h>

/* Creates a server context from PEM files. TLS 1.2 and 1.3 only, the
 * intermediate cipher list, client cipher preference, no renegotiation.
 * Returns NULL with *error_r on failure. The caller frees with SSL_CTX_free. */
SSL_CTX *tls_server_context(const char *cert_path, const char *key_path,
			    const char **error_r);

/* Writes a new ECDSA P-256 key (mode 0600) and a self-signed certificate
 * for hostname, valid for ten years. */
int tls_make_self_signed(const char *hostname, const char *cert_path,
			 const char *key_path, const char **error_r);

#endif
