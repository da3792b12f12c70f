/* outbound.c: the queue's SMTP client (see outbound.h). */
#include "core/common.h"

#include "smtp/outbound.h"

#include "core/buf.h"
#include "core/config.h"
#include "core/log.h"
#include "smtp/mtasts.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sodium.h>

/* Bytes of message written at once. */
#define WRITE_CHUNK (64 * 1024)
/* MTA-STS policies kept in memory, and how long a fetch may take. */
#define STS_CACHE_SIZE	    256
#define STS_FETCH_TIMEOUT   30
#define STS_MAX_HTTP_HEADER 8192

struct sts_entry {
	char domain[DNS_MAX_NAME + 1];
	char id[MTA_STS_MAX_ID + 1];
	time_t expires;
	struct mta_sts_policy policy;
};

struct outbound {
	char hostname[256];
	uint16_t port;
	struct sockaddr_storage bind;
	socklen_t bind_len;
	struct dns_resolver dns;
	SSL_CTX *tls;
	/* Sockets of the connections in progress, for outbound_cancel. */
	pthread_mutex_t lock;
	int open_fds[CONFIG_MAX_QUEUE_DELIVERIES];
	bool cancelled;
	uint16_t mta_sts_port;
	struct sts_entry *sts; /* STS_CACHE_SIZE, under lock */
};

/* One MX host with its addresses and what DNSSEC says of it. */
struct mx_host {
	char name[DNS_MAX_NAME + 1];
	uint16_t preference;
	struct sockaddr_storage addresses[OUTBOUND_MAX_ADDRESSES];
	size_t address_count;
	/* DANE: TLS required and checked against these records. */
	bool dane;
	/* MTA-STS enforce: TLS required, certificate valid for name. */
	bool sts;
	/* The domain itself, for want of MX records (RFC 5321 5.1), and
	 * whether DNS said for sure that it has no address. */
	bool implicit;
	bool no_address;
	struct dns_answer tlsa;
	char error[256]; /* why the host cannot be used, or "" */
};

struct conn {
	struct outbound *o;
	int fd;
	SSL *ssl;
	uint8_t in[4096];
	size_t in_start, in_end;
	char error[256];
};

struct reply {
	int code;
	char text[512]; /* the lines joined by spaces */
	/* EHLO keywords. */
	bool pipelining, starttls, eight_bit, smtputf8, size_known;
	uint64_t size;
};

struct outbound *outbound_new(const struct outbound_config *cfg,
			      const char **error_r)
{
	static char error[256];
	struct outbound *o = xcalloc(1, sizeof(*o));
	snprintf(o->hostname, sizeof(o->hostname), "%s", cfg->hostname);
	o->port = cfg->port;
	o->dns = cfg->dns;
	pthread_mutex_init(&o->lock, NULL);
	for (size_t i = 0; i < ARRAY_SIZE(o->open_fds); i++)
		o->open_fds[i] = -1;
	if (cfg->bind_address != NULL && cfg->bind_address[0] != '\0') {
		struct sockaddr_in *v4 = (struct sockaddr_in *)&o->bind;
		struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&o->bind;
		if (inet_pton(AF_INET, cfg->bind_address, &v4->sin_addr) == 1) {
			v4->sin_family = AF_INET;
			o->bind_len = sizeof(*v4);
		} else if (inet_pton(AF_INET6, cfg->bind_address,
				     &v6->sin6_addr) == 1) {
			v6->sin6_family = AF_INET6;
			o->bind_len = sizeof(*v6);
		} else {
			snprintf(error, sizeof(error),
				 "outbound.bind: %s is not an address",
				 cfg->bind_address);
			*error_r = error;
			free(o);
			return NULL;
		}
	}
	o->tls = SSL_CTX_new(TLS_client_method());
	if (o->tls == NULL || SSL_CTX_dane_enable(o->tls) <= 0) {
		*error_r = "cannot set up TLS for outbound mail";
		outbound_free(&o);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(o->tls, TLS1_2_VERSION);
	/* The trust store for MTA-STS (PKIX); opportunistic TLS checks
	 * nothing and DANE checks its own records. */
	int loaded = cfg->tls_ca_file != NULL && cfg->tls_ca_file[0] != '\0'
			     ? SSL_CTX_load_verify_locations(
				       o->tls, cfg->tls_ca_file, NULL)
			     : SSL_CTX_set_default_verify_paths(o->tls);
	if (loaded != 1) {
		snprintf(error, sizeof(error),
			 "outbound.tls_ca: cannot load %s", cfg->tls_ca_file);
		*error_r = error;
		outbound_free(&o);
		return NULL;
	}
	o->mta_sts_port = cfg->mta_sts_port;
	o->sts = xcalloc(STS_CACHE_SIZE, sizeof(*o->sts));
	/* RFC 7672 3.1.1: a DANE-EE(3) record binds the key; names and
	 * dates on the certificate do not matter. */
	SSL_CTX_dane_set_flags(o->tls, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
	return o;
}

void outbound_free(struct outbound **op)
{
	struct outbound *o = *op;
	if (o == NULL)
		return;
	SSL_CTX_free(o->tls);
	free(o->sts);
	pthread_mutex_destroy(&o->lock);
	free(o);
	*op = NULL;
}

void outbound_cancel(struct outbound *o)
{
	pthread_mutex_lock(&o->lock);
	o->cancelled = true;
	for (size_t i = 0; i < ARRAY_SIZE(o->open_fds); i++)
		if (o->open_fds[i] >= 0)
			shutdown(o->open_fds[i], SHUT_RDWR);
	pthread_mutex_unlock(&o->lock);
}

/* Notes an open socket for outbound_cancel; -1 when cancelled or full. */
static int track(struct outbound *o, int fd, bool add)
{
	int rc = add ? -1 : 0;
	pthread_mutex_lock(&o->lock);
	for (size_t i = 0; i < ARRAY_SIZE(o->open_fds); i++) {
		if (add && o->open_fds[i] < 0 && !o->cancelled) {
			o->open_fds[i] = fd;
			rc = 0;
			break;
		}
		if (!add && o->open_fds[i] == fd) {
			o->open_fds[i] = -1;
			break;
		}
	}
	pthread_mutex_unlock(&o->lock);
	return rc;
}

/* ---- Connections ---- */

static void conn_close(struct conn *c)
{
	if (c->ssl != NULL) {
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0) {
		track(c->o, c->fd, false);
		close(c->fd);
	}
	c->fd = -1;
}

static void set_timeouts(int fd, unsigned seconds)
{
	struct timeval tv = {.tv_sec = seconds};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static void address_text(const struct sockaddr_storage *a, char *out,
			 size_t size)
{
	if (a->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)a)->sin_addr,
			  out, (socklen_t)size);
	else
		inet_ntop(AF_INET6,
			  &((const struct sockaddr_in6 *)a)->sin6_addr, out,
			  (socklen_t)size);
}

static int conn_open(struct outbound *o, struct conn *c,
		     const struct sockaddr_storage *address)
{
	memset(c, 0, sizeof(*c));
	c->o = o;
	char text[INET6_ADDRSTRLEN];
	address_text(address, text, sizeof(text));
	c->fd = socket(address->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		snprintf(c->error, sizeof(c->error), "socket: %s",
			 strerror(errno));
		return -1;
	}
	if (track(o, c->fd, true) != 0) {
		snprintf(c->error, sizeof(c->error), "shutting down");
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	if (o->bind_len > 0 &&
	    bind(c->fd, (const struct sockaddr *)&o->bind, o->bind_len) != 0) {
		snprintf(c->error, sizeof(c->error), "bind: %s",
			 strerror(errno));
		goto fail;
	}
	socklen_t len = address->ss_family == AF_INET
				? sizeof(struct sockaddr_in)
				: sizeof(struct sockaddr_in6);
	int flags = fcntl(c->fd, F_GETFL);
	fcntl(c->fd, F_SETFL, flags | O_NONBLOCK);
	if (connect(c->fd, (const struct sockaddr *)address, len) != 0) {
		if (errno != EINPROGRESS) {
			snprintf(c->error, sizeof(c->error),
				 "connect to %s: %s", text, strerror(errno));
			goto fail;
		}
		struct pollfd p = {.fd = c->fd, .events = POLLOUT};
		int error = 0;
		socklen_t error_len = sizeof(error);
		int ready = poll(&p, 1, OUTBOUND_CONNECT_TIMEOUT * 1000);
		if (ready <= 0) {
			snprintf(c->error, sizeof(c->error),
				 "connect to %s: timed out", text);
			goto fail;
		}
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &error,
			       &error_len) != 0 ||
		    error != 0) {
			snprintf(c->error, sizeof(c->error),
				 "connect to %s: %s", text,
				 strerror(error ? error : errno));
			goto fail;
		}
	}
	fcntl(c->fd, F_SETFL, flags & ~O_NONBLOCK);
	set_timeouts(c->fd, OUTBOUND_REPLY_TIMEOUT);
	return 0;
fail:
	track(o, c->fd, false);
	close(c->fd);
	c->fd = -1;
	return -1;
}

static int conn_write(struct conn *c, const void *data, size_t n)
{
	const uint8_t *p = data;
	while (n > 0) {
		ssize_t w;
		if (c->ssl != NULL) {
			int r = SSL_write(c->ssl, p,
					  n > INT_MAX ? INT_MAX : (int)n);
			w = r > 0 ? r : -1;
		} else {
			w = send(c->fd, p, n, MSG_NOSIGNAL);
			if (w < 0 && errno == EINTR)
				continue;
		}
		if (w <= 0) {
			snprintf(c->error, sizeof(c->error),
				 "connection lost while sending");
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Fills the input buffer with more bytes. */
static int conn_fill(struct conn *c)
{
	if (c->in_start > 0) {
		memmove(c->in, c->in + c->in_start, c->in_end - c->in_start);
		c->in_end -= c->in_start;
		c->in_start = 0;
	}
	if (c->in_end == sizeof(c->in))
		return -1;
	ssize_t r;
	if (c->ssl != NULL) {
		int n = SSL_read(c->ssl, c->in + c->in_end,
				 (int)(sizeof(c->in) - c->in_end));
		r = n > 0 ? n : -1;
	} else {
		do
			r = recv(c->fd, c->in + c->in_end,
				 sizeof(c->in) - c->in_end, 0);
		while (r < 0 && errno == EINTR);
	}
	if (r <= 0) {
		snprintf(c->error, sizeof(c->error), "%s",
			 r == 0		   ? "connection closed by the server"
			 : errno == EAGAIN ? "timed out waiting for the server"
					   : "connection lost");
		return -1;
	}
	c->in_end += (size_t)r;
	return 0;
}

/* Reads one line (without CRLF) into line, at most OUTBOUND_MAX_LINE. */
static int conn_line(struct conn *c, char *line, size_t *len_r)
{
	size_t len = 0;
	for (;;) {
		for (size_t i = c->in_start; i < c->in_end; i++) {
			uint8_t ch = c->in[i];
			if (ch == '\n') {
				c->in_start = i + 1;
				if (len > 0 && line[len - 1] == '\r')
					len--;
				line[len] = '\0';
				*len_r = len;
				return 0;
			}
			if (len == OUTBOUND_MAX_LINE) {
				snprintf(c->error, sizeof(c->error),
					 "reply line too long");
				return -1;
			}
			/* Controls would end up in logs and bounces. */
			line[len++] = ch < 0x20 && ch != '\r' ? ' ' : (char)ch;
		}
		c->in_start = c->in_end;
		if (conn_fill(c) != 0)
			return -1;
	}
}

static void ehlo_keyword(struct reply *r, const char *kw)
{
	if (strcasecmp(kw, "PIPELINING") == 0)
		r->pipelining = true;
	else if (strcasecmp(kw, "STARTTLS") == 0)
		r->starttls = true;
	else if (strcasecmp(kw, "8BITMIME") == 0)
		r->eight_bit = true;
	else if (strcasecmp(kw, "SMTPUTF8") == 0)
		r->smtputf8 = true;
	else if (strncasecmp(kw, "SIZE", 4) == 0 &&
		 (kw[4] == '\0' || kw[4] == ' ')) {
		r->size_known = true;
		r->size = kw[4] ? strtoull(kw + 5, NULL, 10) : 0;
	}
}

/* Reads one reply (all its lines). */
static int read_reply(struct conn *c, struct reply *r)
{
	static __thread char line[OUTBOUND_MAX_LINE + 1];
	memset(r, 0, sizeof(*r));
	size_t used = 0;
	for (int n = 0;; n++) {
		size_t len;
		if (n == OUTBOUND_MAX_REPLY_LINES) {
			snprintf(c->error, sizeof(c->error), "reply too long");
			return -1;
		}
		if (conn_line(c, line, &len) != 0)
			return -1;
		if (len < 3 || !isdigit((unsigned char)line[0]) ||
		    !isdigit((unsigned char)line[1]) ||
		    !isdigit((unsigned char)line[2]) ||
		    (len > 3 && line[3] != ' ' && line[3] != '-')) {
			snprintf(c->error, sizeof(c->error),
				 "not an SMTP reply: %.80s", line);
			return -1;
		}
		int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 +
			   (line[2] - '0');
		if (n > 0 && code != r->code) {
			snprintf(c->error, sizeof(c->error),
				 "reply lines disagree: %.80s", line);
			return -1;
		}
		r->code = code;
		if (n > 0)
			ehlo_keyword(r, len > 4 ? line + 4 : "");
		/* The text: code and first line, then the other lines'
		 * text, as far as it fits. */
		const char *text = n == 0 ? line : (len > 4 ? line + 4 : "");
		int w = snprintf(r->text + used, sizeof(r->text) - used, "%s%s",
				 n == 0 ? "" : " ", text);
		if (w > 0)
			used += (size_t)w < sizeof(r->text) - used
					? (size_t)w
					: sizeof(r->text) - used - 1;
		if (len == 3 || line[3] == ' ')
			break;
	}
	if (r->code < 200 || r->code > 599) {
		snprintf(c->error, sizeof(c->error), "reply code out of range");
		return -1;
	}
	return 0;
}

static int command(struct conn *c, struct reply *r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int command(struct conn *c, struct reply *r, const char *fmt, ...)
{
	char line[1100];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2) {
		snprintf(c->error, sizeof(c->error), "command too long");
		return -1;
	}
	memcpy(line + n, "\r\n", 2);
	if (conn_write(c, line, (size_t)n + 2) != 0)
		return -1;
	return read_reply(c, r);
}

/* ---- DNS ---- */

static int add_addresses(struct outbound *o, struct mx_host *h, uint16_t type,
			 bool *secure_r)
{
	struct dns_answer a;
	dns_query(&o->dns, h->name, type, &a);
	int rc = 0;
	if (a.status == DNS_TEMPFAIL || a.status == DNS_BOGUS) {
		snprintf(h->error, sizeof(h->error),
			 "%s: address lookup failed%s", h->name,
			 a.status == DNS_BOGUS ? " (DNSSEC bogus)" : "");
		rc = -1;
	}
	if (a.status == DNS_OK && !a.secure)
		*secure_r = false;
	if (a.status == DNS_NODATA || a.status == DNS_NXDOMAIN)
		rc = 1;
	for (size_t i = 0;
	     i < a.count && h->address_count < OUTBOUND_MAX_ADDRESSES; i++) {
		struct sockaddr_storage *s = &h->addresses[h->address_count];
		memset(s, 0, sizeof(*s));
		if (type == DNS_TYPE_A) {
			struct sockaddr_in *v4 = (struct sockaddr_in *)s;
			if (dns_rdata_a(a.rdata[i], &v4->sin_addr) != 0)
				continue;
			v4->sin_family = AF_INET;
			v4->sin_port = htons(o->port);
		} else {
			struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)s;
			if (dns_rdata_aaaa(a.rdata[i], &v6->sin6_addr) != 0)
				continue;
			v6->sin6_family = AF_INET6;
			v6->sin6_port = htons(o->port);
		}
		/* With a source address, only its family can be reached. */
		if (o->bind_len > 0 && s->ss_family != o->bind.ss_family)
			continue;
		h->address_count++;
	}
	dns_answer_clear(&a);
	return rc;
}

/* Looks up the host's addresses and, when everything so far was signed,
 * its TLSA records. */
static void resolve_host(struct outbound *o, struct mx_host *h, bool mx_secure)
{
	bool secure = mx_secure;
	int a = add_addresses(o, h, DNS_TYPE_A, &secure);
	int aaaa = add_addresses(o, h, DNS_TYPE_AAAA, &secure);
	if (h->address_count == 0) {
		h->no_address = a == 1 && aaaa == 1;
		if (a >= 0 && aaaa >= 0)
			snprintf(h->error, sizeof(h->error),
				 "%s: host has no address", h->name);
		return;
	}
	if (!secure)
		return;
	char name[DNS_MAX_NAME + 32];
	snprintf(name, sizeof(name), "_%u._tcp.%s", o->port, h->name);
	dns_query(&o->dns, name, DNS_TYPE_TLSA, &h->tlsa);
	if (h->tlsa.status == DNS_TEMPFAIL || h->tlsa.status == DNS_BOGUS) {
		/* RFC 7672 2.2: a host whose TLSA records cannot be had is
		 * not used. */
		snprintf(h->error, sizeof(h->error), "%s: TLSA lookup failed%s",
			 name,
			 h->tlsa.status == DNS_BOGUS ? " (DNSSEC bogus)" : "");
		h->address_count = 0;
		return;
	}
	if (h->tlsa.status != DNS_OK || !h->tlsa.secure)
		return;
	for (size_t i = 0; i < h->tlsa.count; i++) {
		struct dns_tlsa t;
		if (dns_rdata_tlsa(h->tlsa.rdata[i], &t) == 0 &&
		    (t.usage == 2 || t.usage == 3) && t.selector <= 1 &&
		    t.matching <= 2)
			h->dane = true;
	}
	if (!h->dane) {
		/* Only unusable records: RFC 7672 2.2 says TLS is still
		 * mandatory, without authentication. */
		h->dane = true;
	}
}

static int compare_mx(const void *a, const void *b)
{
	const struct mx_host *x = a, *y = b;
	return (int)x->preference - (int)y->preference;
}

/* Fills hosts in the order to try. Returns the count; 0 with a permanent
 * (*permanent_r) or temporary failure in error. */
static size_t find_hosts(struct outbound *o, const char *domain,
			 struct mx_host *hosts, size_t max, bool *permanent_r,
			 char *error, size_t error_size)
{
	*permanent_r = false;
	struct dns_answer mx;
	dns_query(&o->dns, domain, DNS_TYPE_MX, &mx);
	size_t count = 0;
	bool secure = mx.secure;
	switch (mx.status) {
	case DNS_NXDOMAIN:
		*permanent_r = true;
		snprintf(error, error_size,
			 "550 5.1.2 domain %s does not exist", domain);
		break;
	case DNS_TEMPFAIL:
	case DNS_BOGUS:
		snprintf(error, error_size,
			 "451 4.4.3 MX lookup for %s failed%s", domain,
			 mx.status == DNS_BOGUS ? " (DNSSEC bogus)" : "");
		break;
	case DNS_NODATA:
		/* RFC 5321 5.1: no MX means the domain itself. */
		memset(&hosts[0], 0, sizeof(hosts[0]));
		snprintf(hosts[0].name, sizeof(hosts[0].name), "%s", domain);
		hosts[0].implicit = true;
		count = 1;
		break;
	case DNS_OK:
		for (size_t i = 0; i < mx.count && count < max; i++) {
			struct mx_host *h = &hosts[count];
			memset(h, 0, sizeof(*h));
			if (dns_rdata_mx(mx.rdata[i], &h->preference,
					 h->name) != 0)
				continue;
			if (h->name[0] == '\0') {
				/* RFC 7505: a null MX. */
				if (mx.count == 1) {
					*permanent_r = true;
					snprintf(error, error_size,
						 "556 5.1.10 %s accepts no "
						 "mail (null MX)",
						 domain);
				}
				continue;
			}
			count++;
		}
		if (count == 0 && !*permanent_r)
			snprintf(error, error_size,
				 "451 4.4.4 no usable MX record for %s",
				 domain);
		break;
	}
	dns_answer_clear(&mx);
	/* Equal preferences share the load: shuffle, then a stable sort. */
	for (size_t i = count; i > 1; i--) {
		size_t j = randombytes_uniform((uint32_t)i);
		struct mx_host t = hosts[i - 1];
		hosts[i - 1] = hosts[j];
		hosts[j] = t;
	}
	for (size_t i = 1; i < count; i++)
		for (size_t j = i;
		     j > 0 && compare_mx(&hosts[j - 1], &hosts[j]) > 0; j--) {
			struct mx_host t = hosts[j];
			hosts[j] = hosts[j - 1];
			hosts[j - 1] = t;
		}
	for (size_t i = 0; i < count; i++)
		resolve_host(o, &hosts[i], secure);
	return count;
}

/* ---- MTA-STS (RFC 8461) ---- */

/* Reads the HTTP response of a policy fetch: status 200, text/plain, no
 * redirect followed (RFC 8461 3.3). Returns the body's offset or -1. */
static long http_body(const struct buf *b, char *error, size_t size)
{
	const uint8_t *end = memmem(b->p, b->n, "\r\n\r\n", 4);
	if (end == NULL || end - b->p > STS_MAX_HTTP_HEADER) {
		snprintf(error, size, "no HTTP header");
		return -1;
	}
	size_t header = (size_t)(end - b->p);
	if (header < 12 || memcmp(b->p, "HTTP/1.", 7) != 0 ||
	    memcmp(b->p + 8, " 200", 4) != 0) {
		snprintf(error, size, "HTTP status is not 200");
		return -1;
	}
	bool text = false;
	for (size_t i = 0; i + 1 < header; i++) {
		if (b->p[i] != '\n')
			continue;
		static const char name[] = "content-type:";
		if (header - i - 1 < sizeof(name) - 1 ||
		    strncasecmp((const char *)b->p + i + 1, name,
				sizeof(name) - 1) != 0)
			continue;
		size_t v = i + sizeof(name);
		while (v < header && (b->p[v] == ' ' || b->p[v] == '\t'))
			v++;
		text = header - v >= 10 && strncasecmp((const char *)b->p + v,
						       "text/plain", 10) == 0;
	}
	if (!text) {
		snprintf(error, size, "policy is not text/plain");
		return -1;
	}
	return (long)header + 4;
}

/* Fetches and parses https://mta-sts.DOMAIN/.well-known/mta-sts.txt. */
static int fetch_policy(struct outbound *o, const char *domain,
			struct mta_sts_policy *p, char *error, size_t size)
{
	struct mx_host *h = xcalloc(1, sizeof(*h));
	snprintf(h->name, sizeof(h->name), "mta-sts.%s", domain);
	bool secure = false;
	add_addresses(o, h, DNS_TYPE_A, &secure);
	add_addresses(o, h, DNS_TYPE_AAAA, &secure);
	int rc = -1;
	snprintf(error, size, "%s: no address", h->name);
	struct buf b;
	buf_init(&b, MTA_STS_MAX_POLICY + STS_MAX_HTTP_HEADER);
	for (size_t i = 0; i < h->address_count && rc != 0; i++) {
		struct sockaddr_storage *a = &h->addresses[i];
		if (a->ss_family == AF_INET)
			((struct sockaddr_in *)a)->sin_port =
				htons(o->mta_sts_port);
		else
			((struct sockaddr_in6 *)a)->sin6_port =
				htons(o->mta_sts_port);
		struct conn c;
		if (conn_open(o, &c, a) != 0) {
			snprintf(error, size, "%s", c.error);
			continue;
		}
		set_timeouts(c.fd, STS_FETCH_TIMEOUT);
		c.ssl = SSL_new(o->tls);
		char request[DNS_MAX_NAME + 128];
		snprintf(request, sizeof(request),
			 "GET /.well-known/mta-sts.txt HTTP/1.0\r\n"
			 "Host: %s\r\nUser-Agent: dijk\r\n\r\n",
			 h->name);
		buf_reset(&b);
		if (c.ssl == NULL || SSL_set_fd(c.ssl, c.fd) != 1 ||
		    SSL_set_tlsext_host_name(c.ssl, h->name) != 1 ||
		    SSL_set1_host(c.ssl, h->name) != 1) {
			snprintf(error, size, "TLS setup failed");
		} else if ((SSL_set_verify(c.ssl, SSL_VERIFY_PEER, NULL),
			    SSL_connect(c.ssl)) != 1) {
			long v = SSL_get_verify_result(c.ssl);
			snprintf(error, size, "%s: TLS failed: %s", h->name,
				 v != X509_V_OK
					 ? X509_verify_cert_error_string(v)
					 : "handshake");
		} else if (conn_write(&c, request, strlen(request)) != 0) {
			snprintf(error, size, "%s", c.error);
		} else {
			/* Read to the end (HTTP/1.0: the server closes). */
			for (;;) {
				uint8_t chunk[4096];
				int n = SSL_read(c.ssl, chunk, sizeof(chunk));
				if (n <= 0)
					break;
				if (!buf_append(&b, chunk, (size_t)n))
					break;
			}
			long body = buf_overflowed(&b)
					    ? (snprintf(error, size,
							"policy too large"),
					       -1)
					    : http_body(&b, error, size);
			const char *why;
			if (body >= 0 &&
			    mta_sts_parse_policy(
				    slice_make(b.p + body, b.n - (size_t)body),
				    p, &why) != 0)
				snprintf(error, size, "bad policy: %s", why);
			else if (body >= 0)
				rc = 0;
		}
		conn_close(&c);
	}
	buf_free(&b);
	free(h);
	return rc;
}

/* The domain's MTA-STS policy: from the cache while its TXT record's id
 * is the same and it has not expired, else fetched anew. Returns true
 * when there is one. */
static bool sts_policy(struct outbound *o, const char *domain,
		       struct mta_sts_policy *p)
{
	char name[DNS_MAX_NAME + 16];
	snprintf(name, sizeof(name), "_mta-sts.%s", domain);
	char id[MTA_STS_MAX_ID + 1] = "";
	struct dns_answer a;
	dns_query(&o->dns, name, DNS_TYPE_TXT, &a);
	int records = 0;
	for (size_t i = 0; i < a.count; i++) {
		char *text = xmalloc(a.rdata[i].n + 1);
		size_t len;
		char this_id[MTA_STS_MAX_ID + 1];
		if (dns_rdata_txt(a.rdata[i], text, &len) == 0 &&
		    mta_sts_parse_record(slice_make(text, len), this_id) == 0) {
			records++;
			memcpy(id, this_id, sizeof(id));
		}
		free(text);
	}
	bool lookup_failed = a.status == DNS_TEMPFAIL || a.status == DNS_BOGUS;
	dns_answer_clear(&a);
	if (records > 1)
		id[0] = '\0'; /* RFC 8461 3.1: more than one is none */

	time_t now = time(NULL);
	struct sts_entry *slot = NULL, *oldest = &o->sts[0];
	bool found = false;
	pthread_mutex_lock(&o->lock);
	for (size_t i = 0; i < STS_CACHE_SIZE; i++) {
		struct sts_entry *e = &o->sts[i];
		if (strcmp(e->domain, domain) == 0 && e->expires > now) {
			slot = e;
			found = true;
			*p = e->policy;
			break;
		}
		if (e->expires < oldest->expires)
			oldest = e;
	}
	bool fresh = found && id[0] != '\0' && strcmp(slot->id, id) == 0;
	pthread_mutex_unlock(&o->lock);
	/* No record now: a cached policy still holds until it expires
	 * (RFC 8461 5.1), and so it does while DNS fails. */
	if (fresh || id[0] == '\0' || lookup_failed)
		return found;
	char error[256];
	struct mta_sts_policy fetched;
	if (fetch_policy(o, domain, &fetched, error, sizeof(error)) != 0) {
		log_warning("MTA-STS policy of %s: %s%s", domain, error,
			    found ? "; using the cached one" : "");
		return found;
	}
	pthread_mutex_lock(&o->lock);
	struct sts_entry *e = slot ? slot : oldest;
	snprintf(e->domain, sizeof(e->domain), "%s", domain);
	memcpy(e->id, id, sizeof(e->id));
	e->policy = fetched;
	e->expires = now + (time_t)fetched.max_age;
	pthread_mutex_unlock(&o->lock);
	*p = fetched;
	return true;
}

/* ---- The SMTP transaction ---- */

static int start_tls(struct outbound *o, struct conn *c, struct mx_host *h)
{
	c->ssl = SSL_new(o->tls);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
		snprintf(c->error, sizeof(c->error), "TLS setup failed");
		return -1;
	}
	SSL_set_tlsext_host_name(c->ssl, h->name);
	if (h->dane) {
		if (SSL_dane_enable(c->ssl, h->name) <= 0) {
			snprintf(c->error, sizeof(c->error),
				 "DANE setup failed");
			return -1;
		}
		int usable = 0;
		for (size_t i = 0; i < h->tlsa.count; i++) {
			struct dns_tlsa t;
			if (dns_rdata_tlsa(h->tlsa.rdata[i], &t) != 0 ||
			    (t.usage != 2 && t.usage != 3))
				continue;
			if (SSL_dane_tlsa_add(c->ssl, t.usage, t.selector,
					      t.matching, t.data.p,
					      t.data.n) > 0)
				usable++;
		}
		if (usable > 0)
			SSL_set_verify(c->ssl, SSL_VERIFY_PEER, NULL);
	} else if (h->sts) {
		if (SSL_set1_host(c->ssl, h->name) != 1) {
			snprintf(c->error, sizeof(c->error),
				 "TLS setup failed");
			return -1;
		}
		SSL_set_verify(c->ssl, SSL_VERIFY_PEER, NULL);
	} else {
		SSL_set_verify(c->ssl, SSL_VERIFY_NONE, NULL);
	}
	ERR_clear_error();
	if (SSL_connect(c->ssl) != 1) {
		unsigned long e = ERR_get_error();
		long v = SSL_get_verify_result(c->ssl);
		if (h->dane && v != X509_V_OK)
			snprintf(c->error, sizeof(c->error),
				 "%s: certificate does not match its TLSA "
				 "records (DANE): %s",
				 h->name, X509_verify_cert_error_string(v));
		else if (h->sts && v != X509_V_OK)
			snprintf(c->error, sizeof(c->error),
				 "%s: certificate not valid as MTA-STS "
				 "requires: %s",
				 h->name, X509_verify_cert_error_string(v));
		else
			snprintf(c->error, sizeof(c->error),
				 "%s: TLS handshake failed: %s", h->name,
				 e ? ERR_reason_error_string(e) : "closed");
		return -1;
	}
	return 0;
}

/* Sends the message: prefix then message, dot-stuffed, every line ending
 * CRLF, then the final dot. */
static int send_data(struct conn *c, struct slice prefix, struct slice m)
{
	struct buf out;
	buf_init(&out, WRITE_CHUNK + 8);
	bool line_start = true;
	struct slice parts[2] = {prefix, m};
	int rc = 0;
	for (size_t k = 0; k < 2 && rc == 0; k++) {
		struct slice s = parts[k];
		for (size_t i = 0; i < s.n && rc == 0; i++) {
			uint8_t ch = s.p[i];
			if (line_start && ch == '.')
				buf_append(&out, ".", 1);
			if (ch == '\n' && (i == 0 || s.p[i - 1] != '\r'))
				buf_append(&out, "\r", 1);
			buf_append(&out, &ch, 1);
			line_start = ch == '\n';
			if (out.n >= WRITE_CHUNK) {
				rc = conn_write(c, out.p, out.n);
				buf_reset(&out);
			}
		}
	}
	if (rc == 0) {
		if (!line_start)
			buf_append(&out, "\r\n", 2);
		buf_append(&out, ".\r\n", 3);
		rc = conn_write(c, out.p, out.n);
	}
	buf_free(&out);
	return rc;
}

static bool needs_8bit(struct slice s)
{
	for (size_t i = 0; i < s.n; i++)
		if (s.p[i] & 0x80)
			return true;
	return false;
}

static void set_result(struct outbound_recipient *r, enum outbound_status st,
		       bool remote, const char *reply, const char *mta)
{
	r->status = st;
	r->remote_reply = remote;
	snprintf(r->reply, sizeof(r->reply), "%s", reply);
	snprintf(r->remote_mta, sizeof(r->remote_mta), "%s", mta);
}

static enum outbound_status status_of(int code)
{
	return code >= 500  ? OUTBOUND_FAILED
	       : code < 400 ? OUTBOUND_DELIVERED
			    : OUTBOUND_DEFERRED;
}

/* One session with one address of host h. Returns 0 when the transaction
 * reached the recipients (each then has its result), -1 when the next
 * address or host should be tried (c->error says why). */
static int session(struct outbound *o, struct conn *c, struct mx_host *h,
		   bool use_tls, const char *sender, struct slice prefix,
		   struct slice message, struct outbound_recipient *r,
		   size_t count, bool *tls_failed_r)
{
	struct reply rep;
	*tls_failed_r = false;
	if (read_reply(c, &rep) != 0)
		return -1;
	if (rep.code != 220) {
		snprintf(c->error, sizeof(c->error), "%s greeted: %s", h->name,
			 rep.text);
		return -1;
	}
	if (command(c, &rep, "EHLO %s", o->hostname) != 0)
		return -1;
	if (rep.code != 250) {
		if (h->dane || h->sts) {
			snprintf(c->error, sizeof(c->error),
				 "%s: EHLO refused, and TLS is required",
				 h->name);
			return -1;
		}
		if (command(c, &rep, "HELO %s", o->hostname) != 0)
			return -1;
		if (rep.code != 250) {
			snprintf(c->error, sizeof(c->error),
				 "%s refused HELO: %s", h->name, rep.text);
			return -1;
		}
	}
	if ((h->dane || h->sts) && !rep.starttls) {
		snprintf(c->error, sizeof(c->error),
			 "%s offers no STARTTLS, and %s requires TLS", h->name,
			 h->dane ? "its TLSA records (DANE)"
				 : "the domain's MTA-STS policy");
		return -1;
	}
	if (rep.starttls && use_tls) {
		struct reply tls;
		if (command(c, &tls, "STARTTLS") != 0)
			return -1;
		if (tls.code != 220 || start_tls(o, c, h) != 0) {
			if (tls.code != 220)
				snprintf(c->error, sizeof(c->error),
					 "%s refused STARTTLS: %s", h->name,
					 tls.text);
			*tls_failed_r = true;
			return -1;
		}
		if (command(c, &rep, "EHLO %s", o->hostname) != 0)
			return -1;
		if (rep.code != 250) {
			snprintf(c->error, sizeof(c->error),
				 "%s refused EHLO after STARTTLS: %s", h->name,
				 rep.text);
			return -1;
		}
	}
	uint64_t size = prefix.n + message.n;
	if (rep.size_known && rep.size > 0 && size > rep.size) {
		char text[160];
		snprintf(text, sizeof(text),
			 "552 5.3.4 message of %llu bytes exceeds the "
			 "server's limit of %llu",
			 (unsigned long long)size,
			 (unsigned long long)rep.size);
		for (size_t i = 0; i < count; i++)
			set_result(&r[i], OUTBOUND_FAILED, false, text,
				   h->name);
		return 0;
	}

	/* An address that is not ASCII needs SMTPUTF8 (RFC 6531); a server
	 * without it cannot take the message at all (3.2). */
	bool utf8 = needs_8bit(slice_cstr(sender));
	for (size_t i = 0; i < count; i++)
		utf8 |= needs_8bit(slice_cstr(r[i].address));
	if (utf8 && !rep.smtputf8) {
		for (size_t i = 0; i < count; i++)
			set_result(&r[i], OUTBOUND_FAILED, false,
				   "553 5.6.7 the receiving server does not "
				   "support internationalized addresses "
				   "(SMTPUTF8)",
				   h->name);
		return 0;
	}

	/* MAIL, RCPT and DATA: with PIPELINING in one write (RFC 2920). */
	struct buf cmds;
	buf_init(&cmds, 1024 * (count + 2));
	buf_printf(&cmds, "MAIL FROM:<%s>", sender);
	if (rep.size_known)
		buf_printf(&cmds, " SIZE=%llu", (unsigned long long)size);
	if (rep.eight_bit && needs_8bit(message))
		buf_append_cstr(&cmds, " BODY=8BITMIME");
	if (utf8)
		buf_append_cstr(&cmds, " SMTPUTF8");
	buf_append_cstr(&cmds, "\r\n");
	size_t mail_end = cmds.n;
	size_t rcpt_end[count > 0 ? count : 1];
	for (size_t i = 0; i < count; i++) {
		buf_printf(&cmds, "RCPT TO:<%s>\r\n", r[i].address);
		rcpt_end[i] = cmds.n;
	}
	buf_append_cstr(&cmds, "DATA\r\n");
	bool pipe = rep.pipelining;
	int rc = -1;
	size_t accepted = 0;
	if (pipe && conn_write(c, cmds.p, cmds.n) != 0)
		goto out;
	/* MAIL */
	if (!pipe && conn_write(c, cmds.p, mail_end) != 0)
		goto out;
	if (read_reply(c, &rep) != 0)
		goto out;
	bool mail_ok = rep.code == 250;
	if (!mail_ok) {
		if (rep.code >= 500 || !pipe) {
			/* A refused sender applies to every recipient. */
			for (size_t i = 0; i < count; i++)
				set_result(&r[i], status_of(rep.code), true,
					   rep.text, h->name);
			if (!pipe) {
				rc = 0;
				goto quit;
			}
		} else {
			snprintf(c->error, sizeof(c->error), "%s said: %s",
				 h->name, rep.text);
		}
	}
	/* RCPT */
	for (size_t i = 0; i < count; i++) {
		if (!pipe && !mail_ok)
			break;
		size_t start = i == 0 ? mail_end : rcpt_end[i - 1];
		if (!pipe &&
		    conn_write(c, cmds.p + start, rcpt_end[i] - start) != 0)
			goto out;
		if (read_reply(c, &rep) != 0)
			goto out;
		if (!mail_ok)
			continue;
		if (rep.code == 250 || rep.code == 251) {
			accepted++;
			r[i].status = OUTBOUND_DEFERRED; /* until DATA ends */
			r[i].reply[0] = '\0';
		} else {
			set_result(&r[i], status_of(rep.code), true, rep.text,
				   h->name);
		}
	}
	/* DATA */
	if (!pipe && accepted == 0) {
		rc = 0;
		goto quit;
	}
	if (!pipe && conn_write(c, "DATA\r\n", 6) != 0)
		goto out;
	if (read_reply(c, &rep) != 0)
		goto out;
	if (!mail_ok && rep.code != 354) {
		/* Pipelined after a temporary MAIL refusal: next host. */
		goto out;
	}
	if (rep.code != 354) {
		for (size_t i = 0; i < count; i++)
			if (r[i].reply[0] == '\0')
				set_result(&r[i], status_of(rep.code), true,
					   rep.text, h->name);
		rc = 0;
		goto quit;
	}
	if (accepted == 0 || !mail_ok) {
		/* RFC 2920 3.1: the server took DATA though no recipient
		 * was accepted; end it empty. */
		if (conn_write(c, ".\r\n", 3) != 0 || read_reply(c, &rep) != 0)
			goto out;
		rc = mail_ok ? 0 : -1;
		goto quit;
	}
	if (send_data(c, prefix, message) != 0 || read_reply(c, &rep) != 0) {
		/* No final reply: whether it arrived is unknown, and a copy
		 * too many beats a message lost (RFC 5321 6.1). */
		for (size_t i = 0; i < count; i++)
			if (r[i].reply[0] == '\0')
				set_result(&r[i], OUTBOUND_DEFERRED, false,
					   c->error, h->name);
		rc = 0;
		goto out;
	}
	for (size_t i = 0; i < count; i++)
		if (r[i].reply[0] == '\0')
			set_result(&r[i], status_of(rep.code), true, rep.text,
				   h->name);
	rc = 0;
quit:
	command(c, &rep, "QUIT");
out:
	buf_free(&cmds);
	return rc;
}

void outbound_deliver(struct outbound *o, const char *domain,
		      const char *sender, struct slice prefix,
		      struct slice message, struct outbound_recipient *r,
		      size_t count)
{
	for (size_t i = 0; i < count; i++)
		set_result(&r[i], OUTBOUND_DEFERRED, false, "", "");
	struct mx_host *hosts = xcalloc(OUTBOUND_MAX_ADDRESSES, sizeof(*hosts));
	char error[512] = "";
	bool permanent;
	size_t host_count = find_hosts(o, domain, hosts, OUTBOUND_MAX_ADDRESSES,
				       &permanent, error, sizeof(error));
	struct mta_sts_policy policy;
	if (host_count > 0 && sts_policy(o, domain, &policy) &&
	    policy.mode == MTA_STS_ENFORCE) {
		for (size_t k = 0; k < host_count; k++) {
			struct mx_host *h = &hosts[k];
			if (h->dane)
				continue; /* RFC 8461 2: DANE comes first */
			if (mta_sts_mx_matches(&policy, h->name)) {
				h->sts = true;
				continue;
			}
			snprintf(h->error, sizeof(h->error),
				 "MX host %s is not in the MTA-STS policy of "
				 "%s",
				 h->name, domain);
			h->address_count = 0;
		}
	}
	size_t tried = 0;
	bool done = false;
	for (size_t k = 0; k < host_count && !done; k++) {
		struct mx_host *h = &hosts[k];
		if (h->address_count == 0) {
			snprintf(error, sizeof(error), "451 4.4.4 %s",
				 h->error);
			continue;
		}
		for (size_t a = 0; a < h->address_count && !done &&
				   tried < OUTBOUND_MAX_ADDRESSES;
		     a++, tried++) {
			bool use_tls = true;
			for (int round = 0; round < 2 && !done; round++) {
				struct conn c;
				bool tls_failed = false;
				if (conn_open(o, &c, &h->addresses[a]) != 0) {
					snprintf(error, sizeof(error),
						 "451 4.4.1 %s", c.error);
					break;
				}
				if (session(o, &c, h, use_tls, sender, prefix,
					    message, r, count,
					    &tls_failed) == 0)
					done = true;
				else
					snprintf(error, sizeof(error),
						 "451 4.4.2 %s", c.error);
				conn_close(&c);
				/* Opportunistic TLS that fails is tried
				 * once more in the clear; DANE never. */
				if (done || !tls_failed || h->dane || h->sts)
					break;
				use_tls = false;
			}
		}
	}
	/* A domain without MX whose own name has no address cannot take
	 * mail (RFC 5321 5.1): that is final. */
	if (!done && host_count == 1 && hosts[0].implicit &&
	    hosts[0].no_address) {
		permanent = true;
		snprintf(error, sizeof(error),
			 "550 5.1.2 %s has no MX record and no address",
			 domain);
	}
	for (size_t k = 0; k < host_count; k++)
		dns_answer_clear(&hosts[k].tlsa);
	free(hosts);
	if (done)
		return;
	for (size_t i = 0; i < count; i++)
		set_result(&r[i],
			   permanent ? OUTBOUND_FAILED : OUTBOUND_DEFERRED,
			   false, error[0] ? error : "451 4.4.0 not delivered",
			   "");
}
