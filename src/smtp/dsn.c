/* dsn.c: delivery status notifications (see dsn.h). */
#include "core/common.h"

#include "smtp/dsn.h"

#include <ctype.h>

#include <sodium.h>

void dsn_status(const char *reply, bool delayed, char *out)
{
	/* "550 5.1.1 text": the enhanced code follows the reply code. */
	const char *p = reply;
	if (isdigit((unsigned char)p[0]) && isdigit((unsigned char)p[1]) &&
	    isdigit((unsigned char)p[2]) && (p[3] == ' ' || p[3] == '-')) {
		const char *code = p + 4;
		size_t n = 0;
		int dots = 0;
		bool ok =
			(code[0] == '2' || code[0] == '4' || code[0] == '5') &&
			code[1] == '.';
		while (ok &&
		       (isdigit((unsigned char)code[n]) || code[n] == '.')) {
			dots += code[n] == '.';
			n++;
		}
		if (ok && dots == 2 && n < 12 && code[n - 1] != '.' &&
		    (code[n] == ' ' || code[n] == '\0') && code[0] == p[0]) {
			memcpy(out, code, n);
			out[n] = '\0';
			return;
		}
		snprintf(out, 16, "%c.0.0",
			 p[0] == '5' && !delayed ? '5' : '4');
		return;
	}
	snprintf(out, 16, "%s", delayed ? "4.0.0" : "5.0.0");
}

/* Copies text onto one header-safe line: controls become spaces. */
static void append_clean(struct buf *out, const char *text)
{
	for (const char *c = text; *c; c++) {
		unsigned char ch = (unsigned char)*c;
		char safe = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
		buf_append(out, &safe, 1);
	}
}

static void append_date(struct buf *out, time_t t)
{
	char date[64];
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	buf_append_cstr(out, date);
}

/* The original's header section, up to DSN_MAX_HEADER bytes and cut at a
 * line end. */
static struct slice original_header(struct slice m)
{
	size_t n = 0;
	for (size_t i = 0; i + 1 < m.n; i++) {
		if (m.p[i] == '\n' &&
		    (m.p[i + 1] == '\n' || (m.p[i + 1] == '\r' && i + 2 < m.n &&
					    m.p[i + 2] == '\n'))) {
			n = i + 1;
			break;
		}
	}
	if (n == 0)
		n = m.n;
	if (n > DSN_MAX_HEADER) {
		n = DSN_MAX_HEADER;
		while (n > 0 && m.p[n - 1] != '\n')
			n--;
	}
	return slice_make(m.p, n);
}

/* Appends bytes with every line ending made CRLF. */
static void append_crlf(struct buf *out, struct slice s)
{
	for (size_t i = 0; i < s.n; i++) {
		if (s.p[i] == '\n' && (i == 0 || s.p[i - 1] != '\r'))
			buf_append(out, "\r", 1);
		buf_append(out, &s.p[i], 1);
	}
	if (s.n > 0 && s.p[s.n - 1] != '\n')
		buf_append(out, "\r\n", 2);
}

static bool has_8bit(const char *text)
{
	for (const char *c = text; *c; c++)
		if ((unsigned char)*c >= 0x80)
			return true;
	return false;
}

int dsn_build(const struct dsn_report *r, struct buf *out)
{
	/* Internationalized addresses need the global report of RFC 6533,
	 * whose fields may hold UTF-8 and name such an address "utf-8". */
	bool global = has_8bit(r->sender);
	for (size_t i = 0; i < r->recipient_count; i++)
		global |= has_8bit(r->recipients[i].address);
	const char *report =
		global ? "global-delivery-status" : "delivery-status";
	uint8_t random[12];
	char boundary[40];
	randombytes_buf(random, sizeof(random));
	char *b = boundary + snprintf(boundary, sizeof(boundary), "=_dsn_");
	for (size_t i = 0; i < sizeof(random); i++)
		b += snprintf(b, 3, "%02x", random[i]);

	buf_printf(out, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n",
		   r->hostname);
	buf_append_cstr(out, "To: <");
	append_clean(out, r->sender);
	buf_append_cstr(out, ">\r\nSubject: ");
	buf_append_cstr(out, r->delayed
				     ? "Delayed mail (still being retried)"
				     : "Undelivered mail returned to sender");
	buf_append_cstr(out, "\r\nDate: ");
	append_date(out, r->now);
	buf_printf(out,
		   "\r\nMessage-ID: <dsn.%s@%s>\r\n"
		   "Auto-Submitted: auto-replied\r\n"
		   "MIME-Version: 1.0\r\n"
		   "Content-Type: multipart/report; report-type=%s;"
		   "\r\n\tboundary=\"%s\"\r\n\r\n"
		   "This is a delivery status notification in MIME format.\r\n"
		   "\r\n--%s\r\n"
		   "Content-Type: text/plain; charset=utf-8\r\n\r\n",
		   boundary + 6, r->hostname, report, boundary, boundary);

	/* The part people read. */
	if (r->delayed)
		buf_printf(out,
			   "This is the mail system at %s.\r\n\r\n"
			   "Your message could not be delivered yet to the "
			   "recipients below.\r\nIt will be tried again; you "
			   "need do nothing now, and you will be told if it "
			   "fails for good.\r\n\r\n",
			   r->hostname);
	else
		buf_printf(out,
			   "This is the mail system at %s.\r\n\r\n"
			   "Your message could not be delivered to the "
			   "recipients below. This is final.\r\n\r\n",
			   r->hostname);
	for (size_t i = 0; i < r->recipient_count; i++) {
		const struct dsn_recipient *rc = &r->recipients[i];
		buf_append_cstr(out, "<");
		append_clean(out, rc->address);
		buf_append_cstr(out, ">: ");
		if (rc->remote_mta != NULL) {
			buf_append_cstr(out, "host ");
			append_clean(out, rc->remote_mta);
			buf_append_cstr(out, " said: ");
		}
		append_clean(out, rc->reply);
		buf_append_cstr(out, "\r\n");
	}

	/* The part programs read (RFC 3464 section 2). */
	buf_printf(out,
		   "\r\n--%s\r\nContent-Type: message/%s\r\n\r\n"
		   "Reporting-MTA: dns; %s\r\nArrival-Date: ",
		   boundary, report, r->hostname);
	append_date(out, r->arrival);
	buf_append_cstr(out, "\r\n");
	for (size_t i = 0; i < r->recipient_count; i++) {
		const struct dsn_recipient *rc = &r->recipients[i];
		char status[16];
		dsn_status(rc->reply, r->delayed, status);
		buf_append_cstr(out, has_8bit(rc->address)
					     ? "\r\nFinal-Recipient: utf-8; "
					     : "\r\nFinal-Recipient: rfc822; ");
		append_clean(out, rc->address);
		buf_printf(out, "\r\nAction: %s\r\nStatus: %s\r\n",
			   r->delayed ? "delayed" : "failed", status);
		if (rc->remote_mta != NULL) {
			buf_append_cstr(out, "Remote-MTA: dns; ");
			append_clean(out, rc->remote_mta);
			buf_append_cstr(out, "\r\n");
		}
		buf_append_cstr(out, rc->reply_is_remote
					     ? "Diagnostic-Code: smtp; "
					     : "Diagnostic-Code: X-dijk; ");
		append_clean(out, rc->reply);
		buf_append_cstr(out, "\r\nLast-Attempt-Date: ");
		append_date(out, r->now);
		buf_append_cstr(out, "\r\n");
	}

	/* What was sent, as far as its header. */
	buf_printf(out, "\r\n--%s\r\nContent-Type: text/rfc822-headers\r\n\r\n",
		   boundary);
	append_crlf(out, original_header(r->original));
	buf_printf(out, "\r\n--%s--\r\n", boundary);
	return buf_overflowed(out) ? -1 : 0;
}
