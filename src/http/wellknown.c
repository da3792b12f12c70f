/* wellknown.c: what other programs fetch from dijk's web server about the
 * domains it serves, so that the records of 'dijk dns DOMAIN' hold:
 *
 *   /.well-known/mta-sts.txt on mta-sts.DOMAIN: the MTA-STS policy
 *     (RFC 8461), telling senders to reach the MX over verified TLS;
 *   /mail/config-v1.1.xml (and under /.well-known/autoconfig/): the
 *     settings Thunderbird and others read (autoconfig.DOMAIN);
 *   /autodiscover/autodiscover.xml: the settings Outlook reads.
 *
 * Each answers only for local domains, and only with public facts: the
 * host name and ports. Nothing here needs a session. */
#include "core/common.h"

#include "http/internal.h"

#include "core/buf.h"
#include "smtp/mtasts.h"
#include "store/store.h"

#include <ctype.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/http.h>

/* Longest request body read (an autodiscover request). */
#define WELLKNOWN_MAX_BODY 8192

/* The request's host name without a port, lowercase, or "" when odd. */
static void request_host(struct http_call *c, char *out, size_t size)
{
	out[0] = '\0';
	const char *host = http_header(c, "Host");
	if (host == NULL)
		return;
	size_t n = 0;
	for (const char *p = host; *p && *p != ':' && n + 1 < size; p++) {
		if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-') {
			out[0] = '\0';
			return;
		}
		out[n++] = (char)tolower((unsigned char)*p);
	}
	out[n] = '\0';
}

static bool is_local(struct http_call *c, const char *domain)
{
	const char *error;
	return domain[0] != '\0' &&
	       store_domain_exists(c->server->store, slice_cstr(domain),
				   &error) == 1;
}

/* The port of a listener in dijk.conf ("ADDR:PORT"), or fallback. */
static unsigned listener_port(struct http_call *c, enum listener_kind kind,
			      unsigned fallback)
{
	const char *value = c->server->config->listen[kind];
	const char *colon = strrchr(value, ':');
	unsigned port = colon ? (unsigned)strtoul(colon + 1, NULL, 10) : 0;
	return port ? port : fallback;
}

static void send_mta_sts(struct http_call *c)
{
	char host[256];
	request_host(c, host, sizeof(host));
	if (strncmp(host, "mta-sts.", 8) != 0 || !is_local(c, host + 8)) {
		http_send_error(c, 404, "Not found");
		return;
	}
	struct buf b;
	buf_init(&b, 1024);
	mta_sts_own_policy(c->server->config->hostname, &b);
	http_send_buf(c, 200, "text/plain", &b);
	buf_free(&b);
}

/* The domain to describe: of the emailaddress in the query, else of the
 * host name (autoconfig.DOMAIN). */
static void autoconfig_domain(struct http_call *c, char *out, size_t size)
{
	char address[STORE_MAX_ADDRESS];
	out[0] = '\0';
	if (c->query != NULL && http_query_value(c->query, "emailaddress",
						 address, sizeof(address))) {
		/* Clients send the address %-encoded (%40 for '@'). */
		char *decoded = evhttp_uridecode(address, 1, NULL);
		const char *at = decoded ? strrchr(decoded, '@') : NULL;
		if (at != NULL)
			snprintf(out, size, "%s", at + 1);
		free(decoded);
		for (char *p = out; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		return;
	}
	char host[256];
	request_host(c, host, sizeof(host));
	if (strncmp(host, "autoconfig.", 11) == 0)
		snprintf(out, size, "%s", host + 11);
}

static void send_autoconfig(struct http_call *c)
{
	char domain[256];
	autoconfig_domain(c, domain, sizeof(domain));
	if (!is_local(c, domain)) {
		http_send_error(c, 404, "Not found");
		return;
	}
	const char *host = c->server->config->hostname;
	struct buf b;
	buf_init(&b, 8192);
	buf_append_cstr(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			    "<clientConfig version=\"1.1\">\n"
			    "  <emailProvider id=\"");
	http_append_escaped(&b, domain);
	buf_append_cstr(&b, "\">\n    <domain>");
	http_append_escaped(&b, domain);
	buf_append_cstr(&b, "</domain>\n    <displayName>");
	http_append_escaped(&b, domain);
	buf_printf(&b,
		   "</displayName>\n"
		   "    <incomingServer type=\"imap\">\n"
		   "      <hostname>%s</hostname>\n      <port>%u</port>\n"
		   "      <socketType>SSL</socketType>\n"
		   "      <authentication>password-cleartext</authentication>\n"
		   "      <username>%%EMAILADDRESS%%</username>\n"
		   "    </incomingServer>\n"
		   "    <outgoingServer type=\"smtp\">\n"
		   "      <hostname>%s</hostname>\n      <port>%u</port>\n"
		   "      <socketType>SSL</socketType>\n"
		   "      <authentication>password-cleartext</authentication>\n"
		   "      <username>%%EMAILADDRESS%%</username>\n"
		   "    </outgoingServer>\n"
		   "  </emailProvider>\n</clientConfig>\n",
		   host, listener_port(c, LISTENER_IMAPS, 993), host,
		   listener_port(c, LISTENER_SUBMISSIONS, 465));
	http_send_buf(c, 200, "application/xml", &b);
	buf_free(&b);
}

/* The EMailAddress element of an autodiscover request, or "". */
static void autodiscover_address(struct http_call *c, char *out, size_t size)
{
	out[0] = '\0';
	struct evbuffer *in = evhttp_request_get_input_buffer(c->req);
	size_t n = evbuffer_get_length(in);
	if (n == 0 || n > WELLKNOWN_MAX_BODY)
		return;
	char body[WELLKNOWN_MAX_BODY + 1];
	evbuffer_copyout(in, body, n);
	body[n] = '\0';
	const char *start = strcasestr(body, "<EMailAddress>");
	if (start == NULL)
		return;
	start += strlen("<EMailAddress>");
	const char *end = strchr(start, '<');
	if (end == NULL || (size_t)(end - start) >= size)
		return;
	memcpy(out, start, (size_t)(end - start));
	out[end - start] = '\0';
}

static void send_autodiscover(struct http_call *c)
{
	char address[STORE_MAX_ADDRESS];
	autodiscover_address(c, address, sizeof(address));
	const char *at = strrchr(address, '@');
	char domain[256] = "";
	if (at != NULL)
		snprintf(domain, sizeof(domain), "%s", at + 1);
	for (char *p = domain; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	if (!is_local(c, domain)) {
		http_send_error(c, 404, "Not found");
		return;
	}
	const char *host = c->server->config->hostname;
	struct buf b;
	buf_init(&b, 8192);
	buf_append_cstr(
		&b,
		"<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
		"<Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/"
		"autodiscover/responseschema/2006\">\n"
		"  <Response xmlns=\"http://schemas.microsoft.com/exchange/"
		"autodiscover/outlook/responseschema/2006a\">\n"
		"    <Account>\n      <AccountType>email</AccountType>\n"
		"      <Action>settings</Action>\n");
	static const struct {
		const char *type;
		enum listener_kind kind;
		unsigned port;
	} protocols[] = {{"IMAP", LISTENER_IMAPS, 993},
			 {"SMTP", LISTENER_SUBMISSIONS, 465}};
	for (size_t i = 0; i < ARRAY_SIZE(protocols); i++) {
		buf_printf(
			&b,
			"      <Protocol>\n        <Type>%s</Type>\n"
			"        <Server>%s</Server>\n"
			"        <Port>%u</Port>\n        <LoginName>",
			protocols[i].type, host,
			listener_port(c, protocols[i].kind, protocols[i].port));
		http_append_escaped(&b, address);
		buf_append_cstr(&b, "</LoginName>\n        <SSL>on</SSL>\n"
				    "        <SPA>off</SPA>\n"
				    "        <AuthRequired>on</AuthRequired>\n"
				    "      </Protocol>\n");
	}
	buf_append_cstr(&b, "    </Account>\n  </Response>\n</Autodiscover>\n");
	http_send_buf(c, 200, "application/xml", &b);
	buf_free(&b);
}

bool http_wellknown_route(struct http_call *c)
{
	if (strcmp(c->path, "/.well-known/mta-sts.txt") == 0) {
		send_mta_sts(c);
		return true;
	}
	if (strcmp(c->path, "/mail/config-v1.1.xml") == 0 ||
	    strcmp(c->path, "/.well-known/autoconfig/mail/config-v1.1.xml") ==
		    0) {
		send_autoconfig(c);
		return true;
	}
	if (strcasecmp(c->path, "/autodiscover/autodiscover.xml") == 0) {
		send_autodiscover(c);
		return true;
	}
	return false;
}
