/* cli_mail.h: the admin commands for mail authentication.
 *
 *   dijk dkim generate DOMAIN [SELECTOR]   new Ed25519 and RSA-2048 keys
 *   dijk dkim rotate DOMAIN [SELECTOR]     new keys; the old ones stop signing
 *   dijk dkim list                         domains, selectors and key types
 *   dijk dkim sign DOMAIN < MESSAGE        print MESSAGE with signatures
 *   dijk dkim verify < MESSAGE             verify its signatures (DNS)
 *   dijk dns DOMAIN                        every record to publish
 *
 * SELECTOR names a key pair: the Ed25519 key is SELECTOR"e" and the RSA
 * key SELECTOR"r" in DNS. It defaults to "d" and the year and month
 * (d202611), then d202611-2, d202611-3... when taken. generate works on a
 * local domain without active keys and starts signing with the new pair;
 * rotate makes a pair that signs at once and keeps the old keys, inactive,
 * for their DNS records to stay published a while. An existing selector
 * is never overwritten. sign and verify read LF or CRLF line ends; verify
 * uses dns.resolver and dns.trust_anchor of DATA/dijk.conf, prints one
 * line per signature ("pass d=D s=S a=A", or the status and the reason)
 * and exits 0 when one passes, 1 otherwise.
 *
 * args[0] is "dkim" or "dns"; count is the number of args. Each returns
 * the process's exit status (2 for a usage error). */
#ifndef DIJK_CLI_MAIL_H
#define DIJK_CLI_MAIL_H

#include "core/common.h"

int cli_dkim(const char *data_dir, const char *const *args, size_t count);
int cli_dns(const char *data_dir, const char *const *args, size_t count);

#endif
