/* cli_mail.c: the admin commands for mail authentication: DKIM keys
 * (through the key store of smtp/dkim.h), signing and verifying a message
 * by hand, and the DNS records a domain must publish. */
#include "core/common.h"

#include "cli_mail.h"

#include "core/buf.h"
#include "core/config.h"
#include "smtp/dkim.h"
#include "smtp/dns.h"
#include "smtp/mtasts.h"
#include "store/store.h"

#include <errno.h>
#include <time.h>

#include <openssl/evp.h>

/* A message read from stdin is refused beyond this size. */
#define CLI_MAX_MESSAGE (64u * 1024 * 1024)
/* TTL printed with every record. */
#define CLI_DNS_TTL 3600
/* Selector prefixes tried by rotate in one month: dYYYYMM, dYYYYMM-2... */
#define CLI_MAX_SELECTOR_TRIES 99

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("dijk: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return 1;
}

/* The domain argument in lower case, without a trailing dot. Returns NULL
 * when it is not a plausible domain name. Owned by the caller. */
static char *domain_arg(const char *arg)
{
	size_t n = strlen(arg);
	if (n > 0 && arg[n - 1] == '.')
		n--;
	if (n == 0 || n > DNS_MAX_NAME - 1)
		return NULL;
	char *d = xstrndup(arg, n);
	for (size_t i = 0; i < n; i++) {
		char c = d[i];
		if (c >= 'A' && c <= 'Z')
			d[i] = (char)(c + 32);
		else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			   c == '-' || c == '.' || c == '_'))
			goto bad;
		if (c == '.' && (i == 0 || d[i - 1] == '.'))
			goto bad;
	}
	return d;
bad:
	free(d);
	return NULL;
}

/* 1 when domain is a local domain, 0 when not, -1 on error (reported). */
static int is_local_domain(const char *data_dir, const char *domain)
{
	const char *error;
	struct store *s = store_open(data_dir, &error);
	if (s == NULL) {
		fail("%s", error);
		return -1;
	}
	int r = store_domain_exists(s, slice_cstr(domain), &error);
	if (r < 0)
		fail("%s", error);
	store_close(&s);
	return r;
}

/* The keys of one domain, as the commands need them. */
struct key_set {
	char selectors[32][DKIM_MAX_SELECTOR + 1];
	bool active[32];
	enum dkim_key_type types[32];
	char *records[32];
	size_t count;
};

static void collect(const struct dkim_key_info *key, void *context)
{
	struct key_set *set = context;
	if (set->count == ARRAY_SIZE(set->selectors))
		return;
	snprintf(set->selectors[set->count], sizeof(set->selectors[0]), "%s",
		 key->selector);
	set->active[set->count] = key->active;
	set->types[set->count] = key->type;
	set->records[set->count] = xstrdup(key->record);
	set->count++;
}

static void key_set_free(struct key_set *set)
{
	for (size_t i = 0; i < set->count; i++)
		free(set->records[i]);
	set->count = 0;
}

static const char *type_name(enum dkim_key_type type)
{
	return type == DKIM_KEY_ED25519 ? "ed25519" : "rsa";
}

/* Makes and activates a key pair: generate (fresh, true) refuses a domain
 * that signs already; rotate replaces what signs. */
static int make_keys(const char *data_dir, const char *arg,
		     const char *selector, bool fresh)
{
	char *domain = domain_arg(arg);
	if (domain == NULL)
		return fail("%s is not a domain name", arg);
	int ret = 1;
	const char *error;
	struct key_set old = {0};
	int local = is_local_domain(data_dir, domain);
	if (local <= 0) {
		if (local == 0)
			fail("%s is not a local domain (dijk domain add %s)",
			     domain, domain);
		goto out;
	}
	if (dkim_keys_list(data_dir, domain, collect, &old, &error) != 0) {
		fail("%s", error);
		goto out;
	}
	size_t active = 0;
	for (size_t i = 0; i < old.count; i++)
		active += old.active[i];
	if (fresh && active > 0) {
		fail("%s has DKIM keys already; 'dijk dkim rotate %s' makes "
		     "new ones",
		     domain, domain);
		goto out;
	}
	char prefix[DKIM_MAX_SELECTOR + 1];
	if (selector != NULL) {
		if (!dkim_selector_prefix_valid(selector)) {
			fail("%s: a selector is lower-case letters, digits "
			     "and '-', at most %d",
			     selector, DKIM_MAX_SELECTOR - 1);
			goto out;
		}
		snprintf(prefix, sizeof(prefix), "%s", selector);
		if (dkim_keys_exist(data_dir, domain, prefix)) {
			fail("selector %s exists already for %s", prefix,
			     domain);
			goto out;
		}
	} else {
		time_t now = time(NULL);
		struct tm tm;
		gmtime_r(&now, &tm);
		char month[16];
		strftime(month, sizeof(month), "%Y%m", &tm);
		snprintf(prefix, sizeof(prefix), "d%s", month);
		for (int n = 2; dkim_keys_exist(data_dir, domain, prefix);
		     n++) {
			if (n > CLI_MAX_SELECTOR_TRIES) {
				fail("too many selectors this month; name "
				     "one");
				goto out;
			}
			snprintf(prefix, sizeof(prefix), "d%s-%d", month, n);
		}
	}
	if (dkim_keys_generate(data_dir, domain, prefix, &error) != 0 ||
	    dkim_keys_activate(data_dir, domain, prefix, &error) != 0) {
		fail("%s", error);
		goto out;
	}
	printf("%s: new keys %se (ed25519) and %sr (rsa) sign from now on\n",
	       domain, prefix, prefix);
	for (size_t i = 0; i < old.count; i++) {
		if (old.active[i])
			printf("%s: key %s no longer signs; keep its DNS "
			       "record published for a week\n",
			       domain, old.selectors[i]);
	}
	printf("publish the records that 'dijk dns %s' prints\n", domain);
	ret = 0;
out:
	key_set_free(&old);
	free(domain);
	return ret;
}

static void print_key(const struct dkim_key_info *key, void *context)
{
	(void)context;
	printf("%s\t%s\t%s\t%s\n", key->domain, key->selector,
	       type_name(key->type), key->active ? "active" : "inactive");
}

/* Reads all of stdin, bare LF line ends made CRLF. */
static int read_message(struct buf *out)
{
	buf_init(out, CLI_MAX_MESSAGE);
	uint8_t chunk[65536];
	bool cr = false; /* the byte before chunk[0] was CR */
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0) {
		size_t start = 0;
		for (size_t i = 0; i < n; i++) {
			bool after_cr = i > 0 ? chunk[i - 1] == '\r' : cr;
			if (chunk[i] != '\n' || after_cr)
				continue;
			buf_append(out, chunk + start, i - start);
			buf_append(out, "\r", 1);
			start = i;
		}
		buf_append(out, chunk + start, n - start);
		cr = chunk[n - 1] == '\r';
	}
	if (ferror(stdin))
		return fail("cannot read the message: %s", strerror(errno));
	if (buf_overflowed(out))
		return fail("message larger than %u bytes", CLI_MAX_MESSAGE);
	return 0;
}

static int dkim_sign_command(const char *data_dir, const char *arg)
{
	char *domain = domain_arg(arg);
	if (domain == NULL)
		return fail("%s is not a domain name", arg);
	const char *error;
	struct dkim_signer *signer = dkim_signer_load(data_dir, &error);
	if (signer == NULL) {
		free(domain);
		return fail("%s", error);
	}
	struct buf message, out;
	buf_init(&out, CLI_MAX_MESSAGE + 64 * 1024);
	int ret = 1;
	if (read_message(&message) != 0)
		goto done;
	int r = dkim_sign(signer, domain, buf_slice(&message), time(NULL), &out,
			  &error);
	if (r < 0) {
		fail("%s", error);
	} else if (r == 0) {
		fail("%s has no active DKIM key (dijk dkim generate %s)",
		     domain, domain);
	} else {
		buf_append_slice(&out, buf_slice(&message));
		ret = fwrite(out.p, 1, out.n, stdout) == out.n &&
				      fflush(stdout) == 0
			      ? 0
			      : fail("cannot write: %s", strerror(errno));
	}
done:
	buf_free(&message);
	buf_free(&out);
	dkim_signer_free(&signer);
	free(domain);
	return ret;
}

static int load_config(const char *data_dir, struct config *cfg)
{
	char path[4096];
	int n = snprintf(path, sizeof(path), "%s/dijk.conf", data_dir);
	if (n < 0 || (size_t)n >= sizeof(path))
		return fail("data directory path too long");
	const char *error;
	if (config_load(path, cfg, &error) != 0)
		return fail("%s", error);
	return 0;
}

static int dkim_verify_command(const char *data_dir)
{
	struct config *cfg = xcalloc(1, sizeof(*cfg));
	struct buf message;
	buf_init(&message, CLI_MAX_MESSAGE);
	struct dns *dns = NULL;
	int ret = 1;
	if (load_config(data_dir, cfg) != 0 || read_message(&message) != 0)
		goto done;
	const char *error;
	dns = dns_new(cfg->dns_resolver, cfg->dns_trust_anchor, &error);
	if (dns == NULL) {
		fail("%s", error);
		goto done;
	}
	struct dns_resolver resolver = dns_resolver(dns);
	struct dkim_result results[DKIM_MAX_SIGNATURES];
	size_t n = dkim_verify(&resolver, buf_slice(&message), time(NULL),
			       results, ARRAY_SIZE(results));
	if (n == 0)
		printf("none: the message has no DKIM signature\n");
	for (size_t i = 0; i < n; i++) {
		const struct dkim_result *r = &results[i];
		printf("%s d=%s s=%s a=%s", dkim_status_name(r->status),
		       r->domain, r->selector, r->algorithm);
		if (r->status != DKIM_PASS)
			printf(" %s", r->reason);
		printf("\n");
		if (r->status == DKIM_PASS)
			ret = 0;
	}
done:
	dns_free(&dns);
	buf_free(&message);
	free(cfg);
	return ret;
}

int cli_dkim(const char *data_dir, const char *const *args, size_t count)
{
	if (count < 2)
		return 2;
	const char *verb = args[1];
	if (strcmp(verb, "generate") == 0 && (count == 3 || count == 4))
		return make_keys(data_dir, args[2], count == 4 ? args[3] : NULL,
				 true);
	if (strcmp(verb, "rotate") == 0 && (count == 3 || count == 4))
		return make_keys(data_dir, args[2], count == 4 ? args[3] : NULL,
				 false);
	if (strcmp(verb, "list") == 0 && count == 2) {
		const char *error;
		if (dkim_keys_list(data_dir, NULL, print_key, NULL, &error) !=
		    0)
			return fail("%s", error);
		return 0;
	}
	if (strcmp(verb, "sign") == 0 && count == 3)
		return dkim_sign_command(data_dir, args[2]);
	if (strcmp(verb, "verify") == 0 && count == 2)
		return dkim_verify_command(data_dir);
	return 2;
}

/* ---- dijk dns ---- */

/* Prints one TXT record; text longer than a character-string (255
 * octets) is split into several on the same line. The texts printed hold
 * no '"' or '\'. */
static void print_txt(const char *name, const char *text)
{
	printf("%s.\t%d\tIN\tTXT\t", name, CLI_DNS_TTL);
	size_t n = strlen(text);
	if (n == 0)
		printf("\"\"");
	for (size_t at = 0; at < n; at += 255) {
		size_t len = n - at > 255 ? 255 : n - at;
		printf("%s\"%.*s\"", at ? " " : "", (int)len, text + at);
	}
	printf("\n");
}

/* The port of a listener, or 0 when it is off. */
static uint16_t listener_port(const struct config *cfg, enum listener_kind kind)
{
	char host[128];
	uint16_t port = 0;
	if (cfg->listen[kind][0] == '\0' ||
	    config_split_address(cfg->listen[kind], host, sizeof(host),
				 &port) != 0)
		return 0;
	return port;
}

static void print_srv(const char *service, const char *domain,
		      const struct config *cfg, enum listener_kind kind,
		      unsigned priority)
{
	uint16_t port = listener_port(cfg, kind);
	if (port == 0) {
		/* RFC 6186 3.4: target "." says the service is not offered. */
		printf("%s._tcp.%s.\t%d\tIN\tSRV\t0 0 0 .\n", service, domain,
		       CLI_DNS_TTL);
		return;
	}
	printf("%s._tcp.%s.\t%d\tIN\tSRV\t%u 1 %u %s.\n", service, domain,
	       CLI_DNS_TTL, priority, (unsigned)port, cfg->hostname);
}

/* The MTA-STS policy text exactly as the web server serves it
 * (mta_sts_own_policy), so that its id follows what is served. */
static char *mta_sts_policy(const struct config *cfg)
{
	struct buf b;
	buf_init(&b, 1024);
	mta_sts_own_policy(cfg->hostname, &b);
	buf_cstr(&b);
	size_t n;
	return (char *)buf_steal(&b, &n);
}

/* The policy id: it changes exactly when the policy text does. */
static void mta_sts_id(const char *policy, char id[21])
{
	uint8_t digest[EVP_MAX_MD_SIZE];
	unsigned len = 0;
	if (EVP_Digest(policy, strlen(policy), digest, &len, EVP_sha256(),
		       NULL) != 1)
		dijk_panic("SHA-256 failed");
	for (size_t i = 0; i < 10; i++)
		snprintf(id + 2 * i, 3, "%02x", digest[i]);
}

int cli_dns(const char *data_dir, const char *const *args, size_t count)
{
	if (count != 2)
		return 2;
	char *domain = domain_arg(args[1]);
	if (domain == NULL)
		return fail("%s is not a domain name", args[1]);
	struct config *cfg = xcalloc(1, sizeof(*cfg));
	struct key_set keys = {0};
	int ret = 1;
	const char *error;
	if (load_config(data_dir, cfg) != 0)
		goto out;
	int local = is_local_domain(data_dir, domain);
	if (local <= 0) {
		if (local == 0)
			fail("%s is not a local domain", domain);
		goto out;
	}
	if (dkim_keys_list(data_dir, domain, collect, &keys, &error) != 0) {
		fail("%s", error);
		goto out;
	}
	const char *host = cfg->hostname;

	printf("; DNS records for %s, in zone-file form (names are "
	       "absolute).\n",
	       domain);
	printf("; The mail host %s needs A and/or AAAA records of its own,\n"
	       "; and a PTR record for each address naming it back.\n\n",
	       host);

	printf("; Mail for %s is delivered to %s.\n", domain, host);
	printf("%s.\t%d\tIN\tMX\t10 %s.\n\n", domain, CLI_DNS_TTL, host);

	printf("; SPF (RFC 7208): only the MX host sends mail for %s.\n",
	       domain);
	char *spf = xasprintf("v=spf1 mx -all");
	print_txt(domain, spf);
	free(spf);
	printf("\n");

	if (keys.count == 0) {
		printf("; DKIM: no keys yet; 'dijk dkim generate %s' makes "
		       "them.\n\n",
		       domain);
	} else {
		printf("; DKIM (RFC 6376, RFC 8463): every kept key. Active "
		       "keys sign;\n; inactive ones stay published for a "
		       "while after a rotation.\n");
		for (size_t i = 0; i < keys.count; i++) {
			printf("; %s: %s, %s\n", keys.selectors[i],
			       type_name(keys.types[i]),
			       keys.active[i] ? "active" : "inactive");
			char *name = xasprintf("%s._domainkey.%s",
					       keys.selectors[i], domain);
			print_txt(name, keys.records[i]);
			free(name);
		}
		printf("\n");
	}

	printf("; DMARC (RFC 7489): unaligned mail goes to spam; aggregate "
	       "reports\n; go to postmaster@%s.\n",
	       domain);
	char *name = xasprintf("_dmarc.%s", domain);
	char *text = xasprintf("v=DMARC1; p=quarantine; rua=mailto:"
			       "postmaster@%s",
			       domain);
	print_txt(name, text);
	free(name);
	free(text);
	printf("\n");

	char *policy = mta_sts_policy(cfg);
	char id[21];
	mta_sts_id(policy, id);
	printf("; MTA-STS (RFC 8461): senders must reach %s over verified "
	       "TLS.\n",
	       host);
	printf("; The policy must be served at "
	       "https://mta-sts.%s/.well-known/mta-sts.txt\n"
	       "; (with a certificate valid for mta-sts.%s); its text:\n",
	       domain, domain);
	for (const char *line = policy; *line != '\0';) {
		const char *end = strstr(line, "\r\n");
		printf(";   %.*s\n", (int)(end - line), line);
		line = end + 2;
	}
	name = xasprintf("_mta-sts.%s", domain);
	text = xasprintf("v=STSv1; id=%s", id);
	print_txt(name, text);
	free(name);
	free(text);
	free(policy);
	printf("\n");

	printf("; TLS reporting (RFC 8460): reports of failed TLS go to "
	       "postmaster@%s.\n",
	       domain);
	name = xasprintf("_smtp._tls.%s", domain);
	text = xasprintf("v=TLSRPTv1; rua=mailto:postmaster@%s", domain);
	print_txt(name, text);
	free(name);
	free(text);
	printf("\n");

	printf("; Mail client settings (RFC 6186, RFC 8314: implicit TLS "
	       "first).\n");
	print_srv("_submissions", domain, cfg, LISTENER_SUBMISSIONS, 0);
	print_srv("_submission", domain, cfg, LISTENER_SUBMISSION, 10);
	print_srv("_imaps", domain, cfg, LISTENER_IMAPS, 0);
	print_srv("_imap", domain, cfg, LISTENER_IMAP, 10);
	printf("\n");

	printf("; Client autoconfiguration (Thunderbird autoconfig, "
	       "Outlook autodiscover).\n");
	printf("autoconfig.%s.\t%d\tIN\tCNAME\t%s.\n", domain, CLI_DNS_TTL,
	       host);
	uint16_t https = listener_port(cfg, LISTENER_HTTPS);
	printf("_autodiscover._tcp.%s.\t%d\tIN\tSRV\t0 1 %u %s.\n", domain,
	       CLI_DNS_TTL, https ? (unsigned)https : 443u, host);
	ret = fflush(stdout) == 0 ? 0 : 1;
out:
	key_set_free(&keys);
	free(cfg);
	free(domain);
	return ret;
}
