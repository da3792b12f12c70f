/* load.c: the IMAP benchmark's load generator (bench/imap/run.sh).
 *
 * It drives any IMAP4rev1 server the same way; the script runs it against
 * dijk and against a private Dovecot. Plain TCP, LOGIN, loopback.
 *
 *   load append -p PORT -u USER -w PASS [-n 5000] [-c 8]
 *	APPENDs messages 1..n (made up here, deterministically) to an empty
 *	INBOX over c connections, then checks that INBOX holds exactly n
 *	messages whose RFC822.SIZEs add up to what was sent.
 *   load mixed -p PORT -u USER -w PASS [-n 5000] [-c 50] [-d 30]
 *	c clients, each logged in with INBOX selected, run a weighted mix of
 *	commands for d seconds (every client's sequence of commands comes
 *	from its own seeded generator, so both servers get the same one);
 *	answers are checked (message sizes, FETCH counts, SEARCH counts).
 *	Prints one "ops" line and per-command figures.
 *   load idle -p PORT -u USER -w PASS [-c 10000] [-i 64] [-s 4] [-t 600]
 *	Opens c connections (at most i logging in at a time, source
 *	addresses 127.0.0.1 .. 127.0.0.s), each LOGIN, SELECT INBOX, IDLE;
 *	prints "READY ..." once all idle, waits for SIGUSR1 (or -t seconds),
 *	then ends every IDLE (DONE), checks the OK, LOGOUTs and exits.
 *
 * Exit status: 0 when every command got the expected answer, 1 when some
 * did not (the figures are still printed), 2 on usage errors. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

/* ---- options ---- */

static int opt_port;
static const char *opt_user = "bench@example.test";
static const char *opt_pass = "bench-password-1";
static int opt_n = 5000;	  /* messages in the mailbox */
static int opt_c = 0;		  /* connections / clients */
static double opt_d = 30;	  /* seconds (mixed) */
static int opt_inflight = 64;	  /* idle: connections logging in at once */
static int opt_sources = 4;	  /* idle: source addresses */
static double opt_wait = 600;	  /* idle: seconds to wait for SIGUSR1 */
static unsigned opt_seed = 20261122;
static int opt_verbose_errors = 5; /* error details printed per run */

static atomic_int errors_printed;
static atomic_long error_count;

static void error_note(const char *fmt, ...)
{
	atomic_fetch_add(&error_count, 1);
	if (atomic_fetch_add(&errors_printed, 1) >= opt_verbose_errors)
		return;
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "load: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- growing buffer ---- */

struct dbuf {
	char *p;
	size_t n, cap;
};

static void db_reserve(struct dbuf *b, size_t extra)
{
	if (b->n + extra + 1 <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->n + extra + 1)
		cap *= 2;
	b->p = realloc(b->p, cap);
	if (!b->p) {
		perror("realloc");
		exit(2);
	}
	b->cap = cap;
}

static void db_add(struct dbuf *b, const void *p, size_t n)
{
	db_reserve(b, n);
	memcpy(b->p + b->n, p, n);
	b->n += n;
	b->p[b->n] = 0;
}

static void db_str(struct dbuf *b, const char *s) { db_add(b, s, strlen(s)); }

static void db_printf(struct dbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	db_reserve(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->p + b->n, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->n += (size_t)n;
}

/* ---- random numbers (splitmix64) ---- */

static uint64_t rnd_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static unsigned rnd(uint64_t *s, unsigned n) { return (unsigned)(rnd_next(s) % n); }

/* ---- the messages ---- */

/* Subject words: none is a substring of another, of the subject's other
 * text ("Re:", "Fwd:", "[bench-list]", digits) or of an appended message's
 * subject, so SEARCH SUBJECT WORD has a known answer. */
static const char *const subject_words[] = {
	"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf",
	"hotel", "india", "juliett", "kilo", "lima", "mike", "november",
	"oscar", "papa", "quebec", "romeo", "sierra", "tango", "uniform",
	"victor", "whiskey", "xray", "yankee", "zulu"};
#define NWORDS (sizeof(subject_words) / sizeof(subject_words[0]))

static const char *const body_words[] = {
	"the", "meeting", "report", "quarterly", "numbers", "please", "review",
	"attached", "thanks", "regards", "schedule", "budget", "server",
	"deploy", "release", "notes", "customer", "ticket", "update", "status",
	"tomorrow", "morning", "lunch", "project", "deadline", "draft", "final",
	"version", "question", "answer", "mailbox", "index", "latency"};
#define NBODY (sizeof(body_words) / sizeof(body_words[0]))

static const char *const names[] = {
	"\"Anna Berg\"", "Carl Dunn", "=?UTF-8?Q?J=C3=B6rg_M=C3=BCller?=",
	"\"Smith, John\"", "=?ISO-8859-1?Q?Ren=E9_Durand?=", "Li Wei",
	"\"O'Brien, Pat\"", "Maria Garcia", ""};
#define NNAMES (sizeof(names) / sizeof(names[0]))

static const char *const days[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};

struct msg {
	struct dbuf text;
	size_t header_len; /* through the blank line */
	unsigned words;	   /* bit i: subject_words[i] is in the subject */
};

static void add_text_lines(struct dbuf *b, uint64_t *r, size_t bytes)
{
	size_t start = b->n, line = 0;
	while (b->n - start < bytes) {
		const char *w = body_words[rnd(r, NBODY)];
		if (line + strlen(w) + 1 > 72) {
			db_str(b, "\r\n");
			line = 0;
		} else if (line) {
			db_str(b, " ");
			line++;
		}
		db_str(b, w);
		line += strlen(w);
	}
	db_str(b, "\r\n");
}

static void add_base64_lines(struct dbuf *b, uint64_t *r, size_t bytes)
{
	static const char a[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t chars = (bytes + 2) / 3 * 4;
	for (size_t i = 0; i < chars; i++) {
		char c = a[rnd(r, 64)];
		db_add(b, &c, 1);
		if (i % 76 == 75 || i + 1 == chars)
			db_str(b, "\r\n");
	}
}

/* Message k (1-based): 1 to 8 KiB, varied headers, a fifth
 * multipart/alternative and a tenth multipart/mixed with an attachment. */
static void make_message(int k, struct msg *m)
{
	uint64_t r = opt_seed * 0x100000001b3ULL + (uint64_t)k;
	struct dbuf *b = &m->text;
	b->n = 0;
	m->words = 0;
	unsigned day = rnd(&r, 28) + 1;
	db_printf(b, "Return-Path: <sender%u@source%u.test>\r\n", rnd(&r, 50), rnd(&r, 7));
	if (rnd(&r, 2))
		db_printf(b,
			  "Received: from mx%u.source.test (mx%u.source.test [192.0.2.%u])\r\n"
			  "\tby mail.example.test with ESMTPS id %08x\r\n"
			  "\tfor <bench@example.test>; %s, %u Oct 2026 %02u:%02u:%02u +0000\r\n",
			  rnd(&r, 9), rnd(&r, 9), rnd(&r, 250) + 1, (unsigned)rnd_next(&r),
			  days[day % 7], day, rnd(&r, 24), rnd(&r, 60), rnd(&r, 60));
	db_printf(b, "Date: %s, %u Oct 2026 %02u:%02u:%02u %s\r\n", days[day % 7], day,
		  rnd(&r, 24), rnd(&r, 60), rnd(&r, 60), rnd(&r, 3) ? "+0000" : "-0500");
	const char *name = names[rnd(&r, NNAMES)];
	if (*name)
		db_printf(b, "From: %s <sender%u@source%u.test>\r\n", name, rnd(&r, 50), rnd(&r, 7));
	else
		db_printf(b, "From: sender%u@source%u.test\r\n", rnd(&r, 50), rnd(&r, 7));
	db_str(b, "To: Bench User <bench@example.test>\r\n");
	if (rnd(&r, 10) < 3)
		db_printf(b, "Cc: team%u@example.test, \"Pat Doe\" <pat%u@other.test>\r\n",
			  rnd(&r, 5), rnd(&r, 20));
	db_str(b, "Subject: ");
	unsigned pre = rnd(&r, 10);
	if (pre < 2)
		db_str(b, "Re: ");
	else if (pre < 3)
		db_str(b, "Fwd: ");
	else if (pre < 4)
		db_str(b, "[bench-list] ");
	unsigned nw = 2 + rnd(&r, 3);
	for (unsigned i = 0; i < nw; i++) {
		unsigned w = rnd(&r, NWORDS);
		m->words |= 1u << w;
		db_printf(b, "%s%s", i ? " " : "", subject_words[w]);
	}
	db_printf(b, " #%d\r\n", k);
	db_printf(b, "Message-ID: <%d.%08x@source.test>\r\n", k, (unsigned)rnd_next(&r));
	if (pre < 2 && k > 1) {
		int parent = 1 + (int)rnd(&r, (unsigned)k - 1);
		db_printf(b, "In-Reply-To: <%d.parent@source.test>\r\n", parent);
		db_printf(b, "References: <%d.parent@source.test>\r\n", parent);
	}
	if (rnd(&r, 4) == 0)
		db_printf(b, "Reply-To: list%u@lists.test\r\n", rnd(&r, 3));
	db_printf(b, "X-Bench-Id: %d\r\n", k);
	db_str(b, "MIME-Version: 1.0\r\n");
	unsigned kind = rnd(&r, 10);
	size_t body = 800 + rnd(&r, 6000);
	if (kind < 2) {
		db_printf(b, "Content-Type: multipart/alternative; boundary=\"alt-%d\"\r\n\r\n", k);
		m->header_len = b->n;
		db_str(b, "This is a multi-part message in MIME format.\r\n");
		db_printf(b, "--alt-%d\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n", k);
		add_text_lines(b, &r, body / 2);
		db_printf(b, "--alt-%d\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>\r\n", k);
		add_text_lines(b, &r, body / 2);
		db_printf(b, "</p></body></html>\r\n--alt-%d--\r\n", k);
	} else if (kind < 3) {
		db_printf(b, "Content-Type: multipart/mixed; boundary=\"mix-%d\"\r\n\r\n", k);
		m->header_len = b->n;
		db_printf(b, "--mix-%d\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n", k);
		add_text_lines(b, &r, body / 3);
		db_printf(b,
			  "--mix-%d\r\nContent-Type: application/pdf; name=\"report-%d.pdf\"\r\n"
			  "Content-Disposition: attachment; filename=\"report-%d.pdf\"\r\n"
			  "Content-Transfer-Encoding: base64\r\n\r\n",
			  k, k, k);
		add_base64_lines(b, &r, body);
		db_printf(b, "--mix-%d--\r\n", k);
	} else {
		db_str(b, "Content-Type: text/plain; charset=utf-8\r\n");
		if (rnd(&r, 3) == 0)
			db_str(b, "Content-Transfer-Encoding: 7bit\r\n");
		db_str(b, "\r\n");
		m->header_len = b->n;
		add_text_lines(b, &r, body);
	}
}

/* A message for the mixed workload's APPENDs (subject without a word). */
static void make_appended(int client, unsigned j, struct dbuf *b)
{
	uint64_t r = (uint64_t)client * 7919 + j;
	b->n = 0;
	db_printf(b,
		  "Date: Sun, 22 Nov 2026 12:00:00 +0000\r\n"
		  "From: Load Client %d <client%d@source.test>\r\n"
		  "To: bench@example.test\r\n"
		  "Subject: appended %d/%u\r\n"
		  "Message-ID: <appended.%d.%u@source.test>\r\n"
		  "X-Bench-Id: 0\r\n"
		  "MIME-Version: 1.0\r\n"
		  "Content-Type: text/plain; charset=us-ascii\r\n\r\n",
		  client, client, client, j, client, j);
	add_text_lines(b, &r, 1000 + rnd(&r, 3000));
}

/* ---- sockets ---- */

static int connect_to(int port, int source, bool nonblock)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (source > 0) {
		struct sockaddr_in src = {.sin_family = AF_INET};
		src.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)source);
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
		if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) {
			close(fd);
			return -1;
		}
	}
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(0x7f000001u);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* ---- a blocking IMAP client (append, mixed) ---- */

struct conn {
	int fd;
	char rbuf[65536];
	size_t rpos, rlen;
	unsigned tag;
	bool literal_plus;
	struct dbuf out;
	const char *who;
};

/* One server response: the line with the literals' bytes inline. */
struct resp {
	struct dbuf d;
	size_t lit_off[8], lit_len[8];
	int nlit;
};

static int conn_fill(struct conn *c)
{
	if (c->rpos == c->rlen)
		c->rpos = c->rlen = 0;
	if (c->rlen == sizeof c->rbuf) {
		memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
		c->rlen -= c->rpos;
		c->rpos = 0;
	}
	ssize_t n;
	do
		n = read(c->fd, c->rbuf + c->rlen, sizeof c->rbuf - c->rlen);
	while (n < 0 && errno == EINTR);
	if (n == 0) {
		errno = ECONNRESET;
		return -1;
	}
	if (n < 0)
		return -1;
	c->rlen += (size_t)n;
	return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads a whole response (line, literals, rest of line) into r. */
static int read_resp(struct conn *c, struct resp *r)
{
	r->d.n = 0;
	r->nlit = 0;
	db_reserve(&r->d, 0);
	r->d.p[0] = 0;
	for (;;) {
		/* one line */
		size_t seg = r->d.n;
		for (;;) {
			char *nl = memchr(c->rbuf + c->rpos, '\n', c->rlen - c->rpos);
			if (nl) {
				size_t len = (size_t)(nl - (c->rbuf + c->rpos));
				db_add(&r->d, c->rbuf + c->rpos, len);
				c->rpos += len + 1;
				break;
			}
			db_add(&r->d, c->rbuf + c->rpos, c->rlen - c->rpos);
			c->rpos = c->rlen;
			if (conn_fill(c) < 0)
				return -1;
		}
		if (r->d.n > seg && r->d.p[r->d.n - 1] == '\r')
			r->d.p[--r->d.n] = 0;
		/* a literal announced at the end? */
		char *e = r->d.p + r->d.n;
		if (r->d.n == seg || e[-1] != '}')
			return 0;
		char *q = e - 2;
		if (q > r->d.p + seg && *q == '+')
			q--;
		while (q > r->d.p + seg && isdigit((unsigned char)*q))
			q--;
		if (*q != '{' || !isdigit((unsigned char)q[1]))
			return 0;
		size_t len = strtoul(q + 1, NULL, 10);
		if (r->nlit < 8) {
			r->lit_off[r->nlit] = r->d.n;
			r->lit_len[r->nlit] = len;
			r->nlit++;
		}
		while (len) {
			if (c->rpos == c->rlen && conn_fill(c) < 0)
				return -1;
			size_t take = c->rlen - c->rpos < len ? c->rlen - c->rpos : len;
			db_add(&r->d, c->rbuf + c->rpos, take);
			c->rpos += take;
			len -= take;
		}
	}
}

/* What a command's untagged responses held. */
struct result {
	char status[8];	    /* OK, NO, BAD, or "" on a broken connection */
	char text[256];	    /* the tagged line, for errors */
	unsigned fetches;   /* "* N FETCH" responses */
	unsigned envelopes; /* those with an ENVELOPE */
	long search_hits;   /* numbers in "* SEARCH", -1 if none */
	long exists;	    /* last "* N EXISTS", -1 if none */
	unsigned appenduid; /* from [APPENDUID v uid] */
	int bench_id;	    /* X-Bench-Id in the first literal that has one, -1 */
	size_t lit_len;	    /* that literal's length */
	bool capability_literal_plus;
};

static void analyze_untagged(struct resp *r, struct result *res)
{
	char *p = r->d.p + 2;
	if (isdigit((unsigned char)*p)) {
		char *sp = strchr(p, ' ');
		if (!sp)
			return;
		if (strncasecmp(sp + 1, "EXISTS", 6) == 0)
			res->exists = strtol(p, NULL, 10);
		else if (strncasecmp(sp + 1, "FETCH", 5) == 0) {
			res->fetches++;
			if (strstr(sp, "ENVELOPE ("))
				res->envelopes++;
			for (int i = 0; i < r->nlit && res->bench_id < 0; i++) {
				const char *lit = r->d.p + r->lit_off[i];
				const char *h = memmem(lit, r->lit_len[i], "X-Bench-Id: ", 12);
				if (h) {
					res->bench_id = atoi(h + 12);
					res->lit_len = r->lit_len[i];
				}
			}
		}
	} else if (strncasecmp(p, "SEARCH", 6) == 0) {
		long n = 0;
		for (char *q = p + 6; *q; q++)
			if (isdigit((unsigned char)*q) && q[-1] == ' ')
				n++;
		res->search_hits = n;
	} else if (strncasecmp(p, "CAPABILITY", 10) == 0) {
		if (strstr(p, " LITERAL+"))
			res->capability_literal_plus = true;
	}
}

static void result_init(struct result *res)
{
	memset(res, 0, sizeof *res);
	res->search_hits = -1;
	res->exists = -1;
	res->bench_id = -1;
}

/* Reads responses up to the tagged one for tag; fills res. */
static int finish_cmd(struct conn *c, const char *tag, struct resp *r, struct result *res)
{
	size_t tl = strlen(tag);
	for (;;) {
		if (read_resp(c, r) < 0) {
			snprintf(res->text, sizeof res->text, "connection: %s", strerror(errno));
			return -1;
		}
		if (r->d.n >= 2 && r->d.p[0] == '*' && r->d.p[1] == ' ') {
			analyze_untagged(r, res);
			continue;
		}
		if (r->d.n > tl && strncmp(r->d.p, tag, tl) == 0 && r->d.p[tl] == ' ') {
			snprintf(res->text, sizeof res->text, "%s", r->d.p);
			const char *st = r->d.p + tl + 1;
			snprintf(res->status, sizeof res->status, "%.*s", (int)strcspn(st, " "), st);
			if (strstr(st, "[CAPABILITY ") && strstr(st, " LITERAL+"))
				res->capability_literal_plus = true;
			const char *au = strstr(st, "[APPENDUID ");
			if (au) {
				const char *sp = strchr(au + 11, ' ');
				if (sp)
					res->appenduid = (unsigned)strtoul(sp + 1, NULL, 10);
			}
			return 0;
		}
		if (r->d.p[0] == '+')
			continue; /* a stray continuation */
		snprintf(res->text, sizeof res->text, "unexpected: %.200s", r->d.p);
		return -1;
	}
}

/* Sends "TAG " + line + CRLF and reads the answer. */
static int cmd(struct conn *c, struct resp *r, struct result *res, const char *fmt, ...)
{
	char tag[16];
	snprintf(tag, sizeof tag, "a%u", ++c->tag);
	result_init(res);
	c->out.n = 0;
	db_printf(&c->out, "%s ", tag);
	va_list ap;
	va_start(ap, fmt);
	char line[1024];
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	db_str(&c->out, line);
	db_str(&c->out, "\r\n");
	if (write_all(c->fd, c->out.p, c->out.n) < 0) {
		snprintf(res->text, sizeof res->text, "write: %s", strerror(errno));
		return -1;
	}
	if (finish_cmd(c, tag, r, res) < 0)
		return -1;
	return strcmp(res->status, "OK") == 0 ? 0 : -1;
}

static int append_msg(struct conn *c, struct resp *r, struct result *res, const char *msg,
		      size_t len)
{
	char tag[16];
	snprintf(tag, sizeof tag, "a%u", ++c->tag);
	result_init(res);
	c->out.n = 0;
	db_printf(&c->out, "%s APPEND INBOX {%zu%s}\r\n", tag, len, c->literal_plus ? "+" : "");
	if (!c->literal_plus) {
		if (write_all(c->fd, c->out.p, c->out.n) < 0)
			goto write_error;
		if (read_resp(c, r) < 0 || r->d.p[0] != '+') {
			snprintf(res->text, sizeof res->text, "no continuation: %.200s",
				 r->d.n ? r->d.p : strerror(errno));
			return -1;
		}
		c->out.n = 0;
	}
	db_add(&c->out, msg, len);
	db_str(&c->out, "\r\n");
	if (write_all(c->fd, c->out.p, c->out.n) < 0)
		goto write_error;
	if (finish_cmd(c, tag, r, res) < 0)
		return -1;
	return strcmp(res->status, "OK") == 0 ? 0 : -1;
write_error:
	snprintf(res->text, sizeof res->text, "write: %s", strerror(errno));
	return -1;
}

/* Connects, reads the greeting, LOGINs, SELECTs INBOX (if select). */
static int open_session(struct conn *c, struct resp *r, bool select, long *exists)
{
	struct result res;
	c->fd = connect_to(opt_port, 0, false);
	if (c->fd < 0) {
		error_note("%s: connect: %s", c->who, strerror(errno));
		return -1;
	}
	struct timeval tv = {60, 0};
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	c->rpos = c->rlen = 0;
	if (read_resp(c, r) < 0 || strncmp(r->d.p, "* OK", 4) != 0) {
		error_note("%s: bad greeting: %.200s", c->who, r->d.n ? r->d.p : strerror(errno));
		return -1;
	}
	if (cmd(c, r, &res, "LOGIN \"%s\" \"%s\"", opt_user, opt_pass) < 0) {
		error_note("%s: LOGIN: %s", c->who, res.text);
		return -1;
	}
	if (!res.capability_literal_plus) {
		if (cmd(c, r, &res, "CAPABILITY") < 0) {
			error_note("%s: CAPABILITY: %s", c->who, res.text);
			return -1;
		}
	}
	c->literal_plus = res.capability_literal_plus;
	if (select) {
		if (cmd(c, r, &res, "SELECT INBOX") < 0) {
			error_note("%s: SELECT: %s", c->who, res.text);
			return -1;
		}
		if (exists)
			*exists = res.exists;
	}
	return 0;
}

static void close_session(struct conn *c, struct resp *r)
{
	struct result res;
	if (c->fd < 0)
		return;
	cmd(c, r, &res, "LOGOUT");
	close(c->fd);
	c->fd = -1;
}

/* ---- append ---- */

static atomic_int next_msg;
static atomic_long bytes_sent;

static void *append_thread(void *arg)
{
	struct conn *c = arg;
	struct resp r = {0};
	struct result res;
	struct msg m = {0};
	if (open_session(c, &r, false, NULL) < 0)
		return NULL;
	for (;;) {
		int k = atomic_fetch_add(&next_msg, 1);
		if (k > opt_n)
			break;
		make_message(k, &m);
		if (append_msg(c, &r, &res, m.text.p, m.text.n) < 0) {
			error_note("%s: APPEND of message %d: %s", c->who, k, res.text);
			break;
		}
		atomic_fetch_add(&bytes_sent, (long)m.text.n);
	}
	close_session(c, &r);
	return NULL;
}

static int do_append(void)
{
	if (opt_c <= 0)
		opt_c = 8;
	struct conn check = {.fd = -1, .who = "check"};
	struct resp r = {0};
	struct result res;
	long exists = -1;
	if (open_session(&check, &r, true, &exists) < 0)
		return 1;
	if (exists != 0) {
		fprintf(stderr, "load: INBOX holds %ld messages before loading; want it empty\n", exists);
		return 1;
	}
	atomic_store(&next_msg, 1);
	pthread_t th[opt_c];
	struct conn *cs = calloc((size_t)opt_c, sizeof *cs);
	char names_buf[opt_c][32];
	double t0 = now();
	for (int i = 0; i < opt_c; i++) {
		snprintf(names_buf[i], sizeof names_buf[i], "append %d", i);
		cs[i].fd = -1;
		cs[i].who = names_buf[i];
		pthread_create(&th[i], NULL, append_thread, &cs[i]);
	}
	for (int i = 0; i < opt_c; i++)
		pthread_join(th[i], NULL);
	double secs = now() - t0;
	/* What the server holds now. */
	long total = 0;
	if (cmd(&check, &r, &res, "NOOP") < 0) /* lets the EXISTS arrive */
		error_note("check: NOOP: %s", res.text);
	if (cmd(&check, &r, &res, "SELECT INBOX") < 0)
		error_note("check: SELECT: %s", res.text);
	exists = res.exists;
	char tag[16];
	snprintf(tag, sizeof tag, "a%u", ++check.tag);
	char line[64];
	snprintf(line, sizeof line, "%s FETCH 1:* (RFC822.SIZE)\r\n", tag);
	long fetched = 0;
	if (write_all(check.fd, line, strlen(line)) == 0) {
		for (;;) {
			if (read_resp(&check, &r) < 0) {
				error_note("check: FETCH: %s", strerror(errno));
				break;
			}
			if (strncmp(r.d.p, tag, strlen(tag)) == 0) {
				if (strncmp(r.d.p + strlen(tag), " OK", 3) != 0)
					error_note("check: FETCH: %s", r.d.p);
				break;
			}
			const char *s = strcasestr(r.d.p, "RFC822.SIZE ");
			if (s) {
				total += strtol(s + 12, NULL, 10);
				fetched++;
			}
		}
	}
	close_session(&check, &r);
	long sent = atomic_load(&bytes_sent);
	printf("append messages=%d connections=%d seconds=%.3f msg_per_s=%.0f bytes=%ld "
	       "exists=%ld fetched=%ld stored_bytes=%ld errors=%ld\n",
	       opt_n, opt_c, secs, opt_n / secs, sent, exists, fetched, total,
	       atomic_load(&error_count));
	if (exists != opt_n || fetched != opt_n || total != sent) {
		fprintf(stderr,
			"load: after loading, INBOX has %ld messages (%ld sizes fetched, %ld bytes); "
			"sent %d messages, %ld bytes\n",
			exists, fetched, total, opt_n, sent);
		return 1;
	}
	return atomic_load(&error_count) ? 1 : 0;
}

/* ---- mixed ---- */

enum op {
	OP_SELECT,
	OP_FETCH_ENVELOPE,
	OP_FETCH_HEADER,
	OP_FETCH_BODY,
	OP_STORE_SEEN,
	OP_SEARCH_SUBJECT,
	OP_SEARCH_UNSEEN,
	OP_APPEND,
	OP_STORE_DELETED,
	OP_EXPUNGE,
	OP_COUNT
};

static const char *const op_names[OP_COUNT] = {
	"SELECT INBOX",
	"FETCH a:a+49 (FLAGS ENVELOPE)",
	"UID FETCH u BODY.PEEK[HEADER]",
	"FETCH n BODY.PEEK[]",
	"STORE n +/-FLAGS (\\Seen)",
	"SEARCH SUBJECT word",
	"SEARCH UNSEEN",
	"APPEND",
	"UID STORE u +FLAGS (\\Deleted)",
	"EXPUNGE",
};

/* Weights (per 100 draws); a delete draw with nothing appended to delete
 * APPENDs instead. UID STORE \Deleted is always followed by EXPUNGE. */
static const unsigned weights[OP_COUNT] = {
	[OP_SELECT] = 5,	 [OP_FETCH_ENVELOPE] = 15, [OP_FETCH_HEADER] = 15,
	[OP_FETCH_BODY] = 20,	 [OP_STORE_SEEN] = 15,	   [OP_SEARCH_SUBJECT] = 6,
	[OP_SEARCH_UNSEEN] = 4, [OP_APPEND] = 10,	   [OP_STORE_DELETED] = 10,
};

struct base {
	size_t *size;	    /* [k]: message k's length */
	size_t *hdr;	    /* [k]: its header's length */
	long word_hits[NWORDS];
	unsigned *uids;	    /* the INBOX's UIDs at the start */
	long nuids;
};

static struct base base;

struct client {
	int id;
	struct conn c;
	pthread_t th;
	long ops[OP_COUNT];
	double op_time[OP_COUNT];
	long errors;
	double end;
	bool ok;
};

static pthread_barrier_t barrier;
static double deadline;

static bool check(struct client *cl, enum op op, bool cond, const char *fmt, ...)
{
	if (cond)
		return true;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	cl->errors++;
	error_note("client %d, %s: %s", cl->id, op_names[op], msg);
	return false;
}

static void *mixed_thread(void *arg)
{
	struct client *cl = arg;
	struct conn *c = &cl->c;
	struct resp r = {0};
	struct result res;
	struct dbuf msg = {0};
	uint64_t rs = opt_seed * 31 + (uint64_t)cl->id * 1000003;
	unsigned pending[64];
	int npending = 0;
	unsigned appended = 0;
	char name[32];
	snprintf(name, sizeof name, "client %d", cl->id);
	c->who = name;
	long exists = -1;
	cl->ok = open_session(c, &r, true, &exists) == 0;
	if (cl->ok && exists < opt_n) {
		error_note("client %d: SELECT shows %ld messages, want at least %d", cl->id, exists, opt_n);
		cl->ok = false;
	}
	pthread_barrier_wait(&barrier);
	if (!cl->ok) {
		cl->errors++;
		cl->end = now();
		return NULL;
	}
	unsigned wsum = 0;
	for (int i = 0; i < OP_COUNT; i++)
		wsum += weights[i];
	while (now() < deadline) {
		unsigned draw = rnd(&rs, wsum);
		enum op op = 0;
		while (draw >= weights[op])
			draw -= weights[op++];
		if (op == OP_STORE_DELETED && npending == 0)
			op = OP_APPEND;
		if (op == OP_APPEND && npending == 64)
			op = OP_STORE_DELETED;
		double t0 = now();
		int rc = 0;
		unsigned n = 1 + rnd(&rs, (unsigned)opt_n);
		switch (op) {
		case OP_SELECT:
			rc = cmd(c, &r, &res, "SELECT INBOX");
			if (rc == 0)
				check(cl, op, res.exists >= opt_n, "EXISTS %ld", res.exists);
			break;
		case OP_FETCH_ENVELOPE: {
			unsigned a = 1 + rnd(&rs, (unsigned)opt_n - 49);
			rc = cmd(c, &r, &res, "FETCH %u:%u (FLAGS ENVELOPE)", a, a + 49);
			if (rc == 0)
				check(cl, op, res.envelopes == 50,
				      "%u FETCH responses with an ENVELOPE for %u:%u", res.envelopes,
				      a, a + 49);
			break;
		}
		case OP_FETCH_HEADER: {
			unsigned uid = base.uids[rnd(&rs, (unsigned)base.nuids)];
			rc = cmd(c, &r, &res, "UID FETCH %u BODY.PEEK[HEADER]", uid);
			if (rc == 0 &&
			    check(cl, op, res.bench_id >= 1 && res.bench_id <= opt_n,
				  "UID %u: no X-Bench-Id in the answer", uid))
				check(cl, op, res.lit_len == base.hdr[res.bench_id],
				      "UID %u (message %d): header of %zu bytes, want %zu", uid,
				      res.bench_id, res.lit_len, base.hdr[res.bench_id]);
			break;
		}
		case OP_FETCH_BODY:
			rc = cmd(c, &r, &res, "FETCH %u BODY.PEEK[]", n);
			if (rc == 0 &&
			    check(cl, op, res.bench_id >= 1 && res.bench_id <= opt_n,
				  "message %u: no X-Bench-Id in the answer", n))
				check(cl, op, res.lit_len == base.size[res.bench_id],
				      "message %u (X-Bench-Id %d): %zu bytes, want %zu", n,
				      res.bench_id, res.lit_len, base.size[res.bench_id]);
			break;
		case OP_STORE_SEEN:
			rc = cmd(c, &r, &res, "STORE %u %cFLAGS (\\Seen)", n, rnd(&rs, 2) ? '+' : '-');
			break;
		case OP_SEARCH_SUBJECT: {
			unsigned w = rnd(&rs, NWORDS);
			rc = cmd(c, &r, &res, "SEARCH SUBJECT %s", subject_words[w]);
			if (rc == 0)
				check(cl, op, res.search_hits == base.word_hits[w],
				      "SUBJECT %s: %ld hits, want %ld", subject_words[w],
				      res.search_hits, base.word_hits[w]);
			break;
		}
		case OP_SEARCH_UNSEEN:
			rc = cmd(c, &r, &res, "SEARCH UNSEEN");
			if (rc == 0)
				check(cl, op, res.search_hits >= 0, "no SEARCH response");
			break;
		case OP_APPEND:
			make_appended(cl->id, ++appended, &msg);
			rc = append_msg(c, &r, &res, msg.p, msg.n);
			if (rc == 0 && check(cl, op, res.appenduid > 0, "no APPENDUID: %s", res.text))
				pending[npending++] = res.appenduid;
			break;
		case OP_STORE_DELETED: {
			unsigned i = rnd(&rs, (unsigned)npending);
			unsigned uid = pending[i];
			pending[i] = pending[--npending];
			rc = cmd(c, &r, &res, "UID STORE %u +FLAGS.SILENT (\\Deleted)", uid);
			if (rc == 0) {
				cl->ops[op]++;
				cl->op_time[op] += now() - t0;
				op = OP_EXPUNGE;
				t0 = now();
				rc = cmd(c, &r, &res, "EXPUNGE");
			}
			break;
		}
		default:
			break;
		}
		if (rc < 0) {
			check(cl, op, false, "%s", res.text);
			if (res.status[0] == 0)
				break; /* the connection is gone */
			continue;
		}
		cl->ops[op]++;
		cl->op_time[op] += now() - t0;
	}
	cl->end = now();
	close_session(c, &r);
	return NULL;
}

static int do_mixed(void)
{
	if (opt_c <= 0)
		opt_c = 50;
	if (opt_n < 50) {
		fprintf(stderr, "load: mixed needs at least 50 messages\n");
		return 2;
	}
	/* What the loaded messages are. */
	base.size = calloc((size_t)opt_n + 1, sizeof *base.size);
	base.hdr = calloc((size_t)opt_n + 1, sizeof *base.hdr);
	struct msg m = {0};
	for (int k = 1; k <= opt_n; k++) {
		make_message(k, &m);
		base.size[k] = m.text.n;
		base.hdr[k] = m.header_len;
		for (unsigned w = 0; w < NWORDS; w++)
			if (m.words & (1u << w))
				base.word_hits[w]++;
	}
	/* The UIDs of the loaded messages (the first opt_n). */
	struct conn c0 = {.fd = -1, .who = "setup"};
	struct resp r = {0};
	long exists = -1;
	if (open_session(&c0, &r, true, &exists) < 0)
		return 1;
	if (exists < opt_n) {
		fprintf(stderr, "load: INBOX holds %ld messages, want at least %d\n", exists, opt_n);
		return 1;
	}
	char tag[16];
	snprintf(tag, sizeof tag, "a%u", ++c0.tag);
	char line[64];
	snprintf(line, sizeof line, "%s UID SEARCH ALL\r\n", tag);
	base.uids = calloc((size_t)opt_n, sizeof *base.uids);
	if (write_all(c0.fd, line, strlen(line)) < 0)
		return 1;
	for (;;) {
		if (read_resp(&c0, &r) < 0)
			return 1;
		if (strncmp(r.d.p, "* SEARCH", 8) == 0) {
			for (char *p = r.d.p + 8; *p && base.nuids < opt_n;) {
				while (*p == ' ')
					p++;
				if (!isdigit((unsigned char)*p))
					break;
				base.uids[base.nuids++] = (unsigned)strtoul(p, &p, 10);
			}
		} else if (strncmp(r.d.p, tag, strlen(tag)) == 0)
			break;
	}
	close_session(&c0, &r);
	if (base.nuids != opt_n) {
		fprintf(stderr, "load: UID SEARCH ALL gave %ld UIDs, want %d\n", base.nuids, opt_n);
		return 1;
	}

	struct client *cl = calloc((size_t)opt_c, sizeof *cl);
	pthread_barrier_init(&barrier, NULL, (unsigned)opt_c + 1);
	for (int i = 0; i < opt_c; i++) {
		cl[i].id = i;
		cl[i].c.fd = -1;
		pthread_attr_t at;
		pthread_attr_init(&at);
		pthread_attr_setstacksize(&at, 256 * 1024);
		pthread_create(&cl[i].th, &at, mixed_thread, &cl[i]);
		pthread_attr_destroy(&at);
	}
	/* Everyone is logged in with INBOX selected: the clock starts. */
	deadline = now() + opt_d; /* provisional, before the barrier */
	pthread_barrier_wait(&barrier);
	double t0 = now();
	deadline = t0 + opt_d;
	double end = t0;
	long ops[OP_COUNT] = {0}, total = 0, errors = 0;
	double op_time[OP_COUNT] = {0};
	int alive = 0;
	for (int i = 0; i < opt_c; i++) {
		pthread_join(cl[i].th, NULL);
		if (cl[i].end > end)
			end = cl[i].end;
		for (int o = 0; o < OP_COUNT; o++) {
			ops[o] += cl[i].ops[o];
			op_time[o] += cl[i].op_time[o];
			total += cl[i].ops[o];
		}
		errors += cl[i].errors;
		alive += cl[i].ok;
	}
	double secs = end - t0;
	for (int o = 0; o < OP_COUNT; o++)
		printf("op %d count=%ld per_s=%.1f mean_ms=%.2f name=%s\n", o, ops[o], ops[o] / secs,
		       ops[o] ? op_time[o] / ops[o] * 1000 : 0.0, op_names[o]);
	printf("mixed clients=%d started=%d seconds=%.3f ops=%ld ops_per_s=%.1f errors=%ld\n",
	       opt_c, alive, secs, total, total / secs, errors);
	return errors || atomic_load(&error_count) ? 1 : 0;
}

/* ---- idle ---- */

enum idle_state {
	I_CONNECTING,
	I_GREETING,
	I_LOGIN,
	I_SELECT,
	I_IDLE,
	I_IDLING,
	I_DONE,	  /* DONE and LOGOUT sent */
	I_CLOSED,
};

struct iconn {
	int fd;
	enum idle_state st;
	unsigned short len;
	unsigned skip; /* literal bytes to skip */
	bool idle_ok;
	char buf[1024];
};

static struct iconn *ic;
static int iepoll;
static long n_idling, n_failed, n_idle_ok, n_closed;
static int opened, logging_in;

static void iconn_fail(struct iconn *x, const char *fmt, ...)
{
	char msg[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	bool before_idle = x->st < I_IDLING;
	if (x->st == I_IDLING)
		n_idling--;
	error_note("idle connection %ld (state %d): %s", (long)(x - ic), (int)x->st, msg);
	if (x->fd >= 0)
		close(x->fd);
	x->fd = -1;
	x->st = I_CLOSED;
	n_failed++;
	if (before_idle)
		logging_in--;
}

static void isend(struct iconn *x, const char *s)
{
	size_t n = strlen(s);
	ssize_t w = send(x->fd, s, n, MSG_NOSIGNAL);
	if (w != (ssize_t)n)
		iconn_fail(x, "send: %s", w < 0 ? strerror(errno) : "short write");
}

static void iline(struct iconn *x, char *line)
{
	char buf[256];
	switch (x->st) {
	case I_GREETING:
		if (strncmp(line, "* OK", 4) != 0)
			return iconn_fail(x, "greeting: %.200s", line);
		snprintf(buf, sizeof buf, "l LOGIN \"%s\" \"%s\"\r\n", opt_user, opt_pass);
		x->st = I_LOGIN;
		isend(x, buf);
		return;
	case I_LOGIN:
		if (line[0] == '*')
			return;
		if (strncmp(line, "l OK", 4) != 0)
			return iconn_fail(x, "LOGIN: %.200s", line);
		x->st = I_SELECT;
		isend(x, "s SELECT INBOX\r\n");
		return;
	case I_SELECT:
		if (line[0] == '*')
			return;
		if (strncmp(line, "s OK", 4) != 0)
			return iconn_fail(x, "SELECT: %.200s", line);
		x->st = I_IDLE;
		isend(x, "i IDLE\r\n");
		return;
	case I_IDLE:
		if (line[0] == '*')
			return;
		if (line[0] != '+')
			return iconn_fail(x, "IDLE: %.200s", line);
		x->st = I_IDLING;
		n_idling++;
		logging_in--;
		return;
	case I_IDLING:
		return; /* untagged updates */
	case I_DONE:
		if (strncmp(line, "i OK", 4) == 0) {
			x->idle_ok = true;
			n_idle_ok++;
		} else if (strncmp(line, "i ", 2) == 0)
			return iconn_fail(x, "IDLE end: %.200s", line);
		else if (strncmp(line, "o ", 2) == 0) {
			close(x->fd);
			x->fd = -1;
			x->st = I_CLOSED;
			n_closed++;
		}
		return;
	default:
		return;
	}
}

static void iread(struct iconn *x)
{
	for (;;) {
		ssize_t n = recv(x->fd, x->buf + x->len, sizeof x->buf - 1 - x->len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			if (x->st == I_DONE && x->idle_ok) { /* closed after LOGOUT */
				close(x->fd);
				x->fd = -1;
				x->st = I_CLOSED;
				n_closed++;
				return;
			}
			return iconn_fail(x, "%s", n == 0 ? "closed by the server" : strerror(errno));
		}
		x->len += (unsigned short)n;
		size_t pos = 0;
		while (x->st != I_CLOSED) {
			if (x->skip) {
				size_t take = x->len - pos < x->skip ? x->len - pos : x->skip;
				pos += take;
				x->skip -= (unsigned)take;
				if (x->skip)
					break;
			}
			char *nl = memchr(x->buf + pos, '\n', x->len - pos);
			if (!nl)
				break;
			*nl = 0;
			char *line = x->buf + pos;
			size_t ll = (size_t)(nl - line);
			if (ll && line[ll - 1] == '\r')
				line[--ll] = 0;
			pos += (size_t)(nl - (x->buf + pos)) + 1;
			if (ll && line[ll - 1] == '}') {
				char *q = strrchr(line, '{');
				if (q)
					x->skip = (unsigned)strtoul(q + 1, NULL, 10);
			}
			iline(x, line);
		}
		if (x->st == I_CLOSED)
			return;
		memmove(x->buf, x->buf + pos, x->len - pos);
		x->len -= (unsigned short)pos;
		if (x->len == sizeof x->buf - 1 && !x->skip)
			return iconn_fail(x, "line too long");
	}
}

static void iopen(int i)
{
	struct iconn *x = &ic[i];
	x->fd = connect_to(opt_port, opt_sources > 1 ? i % opt_sources : 0, true);
	logging_in++;
	opened++;
	if (x->fd < 0) {
		x->st = I_CONNECTING;
		return iconn_fail(x, "connect: %s", strerror(errno));
	}
	x->st = I_CONNECTING;
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)i};
	epoll_ctl(iepoll, EPOLL_CTL_ADD, x->fd, &ev);
}

static void ievent(uint32_t i, uint32_t events)
{
	struct iconn *x = &ic[i];
	if (x->st == I_CLOSED)
		return;
	if (x->st == I_CONNECTING) {
		int err = 0;
		socklen_t el = sizeof err;
		getsockopt(x->fd, SOL_SOCKET, SO_ERROR, &err, &el);
		if (err)
			return iconn_fail(x, "connect: %s", strerror(err));
		if (!(events & (EPOLLOUT | EPOLLIN)))
			return;
		x->st = I_GREETING;
		struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
		epoll_ctl(iepoll, EPOLL_CTL_MOD, x->fd, &ev);
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		iread(x);
}

static void ipoll(int ms)
{
	struct epoll_event evs[256];
	int n = epoll_wait(iepoll, evs, 256, ms);
	for (int k = 0; k < n; k++)
		ievent(evs[k].data.u32, evs[k].events);
}

static volatile sig_atomic_t got_usr1;
static void on_usr1(int sig) { (void)sig, got_usr1 = 1; }

static int do_idle(void)
{
	if (opt_c <= 0)
		opt_c = 10000;
	struct sigaction sa = {.sa_handler = on_usr1};
	sigaction(SIGUSR1, &sa, NULL);
	ic = calloc((size_t)opt_c, sizeof *ic);
	iepoll = epoll_create1(EPOLL_CLOEXEC);
	double t0 = now(), last = t0, limit = t0 + opt_wait;
	while (n_idling + n_failed < opt_c && now() < limit && !got_usr1) {
		while (opened < opt_c && logging_in < opt_inflight)
			iopen(opened);
		ipoll(100);
		if (now() - last >= 10) {
			last = now();
			fprintf(stderr, "load: idle: %ld idling, %ld failed after %.0f s\n", n_idling,
				n_failed, last - t0);
		}
	}
	double secs = now() - t0;
	printf("READY idling=%ld failed=%ld connections=%d seconds=%.3f setups_per_s=%.1f\n",
	       n_idling, n_failed, opt_c, secs, n_idling / secs);
	fflush(stdout);
	/* Stay idle (still reading, in case the server sends updates or
	 * drops connections) until told to finish. */
	double idle_start = now();
	while (!got_usr1 && now() - idle_start < opt_wait)
		ipoll(200);
	long idling_at_end = n_idling;
	/* Connections still logging in (only when time ran out) are closed;
	 * every IDLE is ended, its OK expected, and the session logged out. */
	long abandoned = 0, ending = 0;
	for (int i = 0; i < opt_c; i++) {
		if (ic[i].st < I_IDLING && i < opened && ic[i].fd >= 0) {
			close(ic[i].fd);
			ic[i].fd = -1;
			ic[i].st = I_CLOSED;
			abandoned++;
			continue;
		}
		if (ic[i].st != I_IDLING)
			continue;
		ic[i].st = I_DONE;
		n_idling--;
		ending++;
		isend(&ic[i], "DONE\r\no LOGOUT\r\n");
	}
	double end_limit = now() + 120;
	for (;;) {
		long left = 0;
		for (int i = 0; i < opt_c; i++)
			left += ic[i].st == I_DONE;
		if (left == 0 || now() >= end_limit)
			break;
		ipoll(200);
	}
	long unanswered = 0;
	for (int i = 0; i < opt_c; i++)
		if (ic[i].st == I_DONE) {
			unanswered++;
			if (!ic[i].idle_ok)
				error_note("idle connection %d: no answer to DONE within 120 s", i);
			close(ic[i].fd);
		}
	printf("finished idling_at_end=%ld idle_ok=%ld logged_out=%ld failed=%ld unanswered=%ld "
	       "abandoned=%ld errors=%ld\n",
	       idling_at_end, n_idle_ok, n_closed, n_failed, unanswered, abandoned,
	       atomic_load(&error_count));
	(void)ending;
	return (n_failed || abandoned || n_idle_ok != opt_c) ? 1 : 0;
}

/* ---- main ---- */

static void usage(void)
{
	fprintf(stderr,
		"usage: load append|mixed|idle -p PORT [-u USER] [-w PASS] [-n MESSAGES]\n"
		"            [-c CONNECTIONS] [-d SECONDS] [-i INFLIGHT] [-s SOURCES] [-t WAIT]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	const char *mode = argv[1];
	int o;
	optind = 2;
	while ((o = getopt(argc, argv, "p:u:w:n:c:d:i:s:t:e:")) != -1) {
		switch (o) {
		case 'p': opt_port = atoi(optarg); break;
		case 'u': opt_user = optarg; break;
		case 'w': opt_pass = optarg; break;
		case 'n': opt_n = atoi(optarg); break;
		case 'c': opt_c = atoi(optarg); break;
		case 'd': opt_d = atof(optarg); break;
		case 'i': opt_inflight = atoi(optarg); break;
		case 's': opt_sources = atoi(optarg); break;
		case 't': opt_wait = atof(optarg); break;
		case 'e': opt_verbose_errors = atoi(optarg); break;
		default: usage();
		}
	}
	if (opt_port <= 0 || opt_n <= 0 || opt_inflight <= 0 || opt_sources <= 0)
		usage();
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(mode, "append") == 0)
		return do_append();
	if (strcmp(mode, "mixed") == 0)
		return do_mixed();
	if (strcmp(mode, "idle") == 0)
		return do_idle();
	usage();
}
