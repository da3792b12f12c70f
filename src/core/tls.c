/* tls.c: server TLS settings and self-signed certificates (OpenSSL 3). */
#include "core/common.h"

#include "core/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

/* Mozilla Server Side TLS, intermediate profile (guideline 5.7). */
static const char tls12_ciphers[] =
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
	"DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:"
	"DHE-RSA-CHACHA20-POLY1305";
static const char tls13_ciphers[] =
	"TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
	"TLS_CHACHA20_POLY1305_SHA256";
static const char tls_groups[] = "X25519:prime256v1:secp384r1:ffdhe2048";

static char tls_error[512];

static const char *openssl_error(const char *what)
{
	unsigned long e = ERR_get_error();
	char detail[256];
	ERR_error_string_n(e, detail, sizeof(detail));
	snprintf(tls_error, sizeof(tls_error), "%s: %s", what,
		 e ? detail : "unknown error");
	ERR_clear_error();
	return tls_error;
}

SSL_CTX *tls_server_context(const char *cert_path, const char *key_path,
			    const char **error_r)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		*error_r = openssl_error("SSL_CTX_new");
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(ctx, tls12_ciphers) != 1 ||
	    SSL_CTX_set_ciphersuites(ctx, tls13_ciphers) != 1 ||
	    SSL_CTX_set1_groups_list(ctx, tls_groups) != 1) {
		*error_r = openssl_error("TLS settings");
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_dh_auto(ctx, 1);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
					 SSL_OP_NO_COMPRESSION |
					 SSL_OP_NO_TICKET);
	SSL_CTX_clear_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_path) != 1) {
		*error_r = openssl_error(cert_path);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_path, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		*error_r = openssl_error(key_path);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

int tls_make_self_signed(const char *hostname, const char *cert_path,
			 const char *key_path, const char **error_r)
{
	int ret = -1;
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *cert = X509_new();
	FILE *f = NULL;
	if (key == NULL || cert == NULL) {
		*error_r = openssl_error("key generation");
		goto out;
	}
	X509_set_version(cert, 2);
	uint8_t serial[16];
	if (RAND_bytes(serial, sizeof(serial)) != 1) {
		*error_r = openssl_error("RAND_bytes");
		goto out;
	}
	serial[0] &= 0x7f;
	BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
	BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert));
	BN_free(bn);
	X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
	X509_gmtime_adj(X509_getm_notAfter(cert), 10L * 365 * 24 * 3600);
	X509_set_pubkey(cert, key);
	X509_NAME *name = X509_get_subject_name(cert);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
				   (const unsigned char *)hostname, -1, -1, 0);
	X509_set_issuer_name(cert, name);
	char san[300];
	snprintf(san, sizeof(san), "DNS:%s", hostname);
	X509V3_CTX v3;
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, cert, cert, NULL, NULL, 0);
	X509_EXTENSION *ext =
		X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
	if (ext == NULL || X509_add_ext(cert, ext, -1) != 1) {
		X509_EXTENSION_free(ext);
		*error_r = openssl_error("certificate name");
		goto out;
	}
	X509_EXTENSION_free(ext);
	if (X509_sign(cert, key, EVP_sha256()) == 0) {
		*error_r = openssl_error("certificate signing");
		goto out;
	}
	int fd = open(key_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
		snprintf(tls_error, sizeof(tls_error), "%s: %s", key_path,
			 strerror(errno));
		if (fd >= 0)
			close(fd);
		*error_r = tls_error;
		goto out;
	}
	if (PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) != 1 ||
	    fclose(f) != 0) {
		f = NULL;
		*error_r = openssl_error(key_path);
		goto out;
	}
	f = fopen(cert_path, "w");
	if (f == NULL) {
		snprintf(tls_error, sizeof(tls_error), "%s: %s", cert_path,
			 strerror(errno));
		*error_r = tls_error;
		goto out;
	}
	if (PEM_write_X509(f, cert) != 1 || fclose(f) != 0) {
		f = NULL;
		*error_r = openssl_error(cert_path);
		goto out;
	}
	f = NULL;
	ret = 0;
out:
	if (f != NULL)
		fclose(f);
	X509_free(cert);
	EVP_PKEY_free(key);
	return ret;
}
