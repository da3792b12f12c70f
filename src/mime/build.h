/* build.h: RFC 5322 / MIME messages built from structured fields, for the
 * webmail's compose and drafts (JMAP Email/set create).
 *
 * Every field comes from a user and is refused, not repaired, when it could
 * change the message's structure: no CR, LF, NUL or other control character
 * (C0 and DEL) reaches a header, addresses and message ids must have their
 * RFC 5322 shape, and non-ASCII text is written as RFC 2047 encoded words
 * or RFC 2231 parameters, never as raw 8-bit header bytes. The output has
 * CRLF line ends only, header lines folded at 78 characters where they can
 * be and never longer than 998, and boundaries that occur nowhere in the
 * content. */
#ifndef DIJK_MIME_BUILD_H
#define DIJK_MIME_BUILD_H

#include "core/common.h"

#include "core/buf.h"

#include <time.h>

/* Longest address (RFC 5321 4.5.3.1.3 path less its brackets) and local
 * part (4.5.3.1.1). */
#define MIME_BUILD_MAX_ADDRESS	  254
#define MIME_BUILD_MAX_LOCAL_PART 64
/* Longest message id or Content-ID, without angle brackets. */
#define MIME_BUILD_MAX_ID 250
/* Longest display name, subject and file name, in bytes of UTF-8. */
#define MIME_BUILD_MAX_NAME	 1024
#define MIME_BUILD_MAX_SUBJECT	 4096
#define MIME_BUILD_MAX_FILE_NAME 255
/* Longest extra header field name, and its value in bytes. */
#define MIME_BUILD_MAX_FIELD_NAME  76
#define MIME_BUILD_MAX_FIELD_VALUE 4096
/* Attachments and inline parts of one message: the parser keeps
 * MIME_MAX_PARTS, and the text bodies and multiparts need a few more. */
#define MIME_BUILD_MAX_PARTS 1000

/* One mailbox. An empty name is no name. */
struct mime_build_address {
	const char *name;  /* display name, UTF-8, or NULL */
	const char *email; /* addr-spec, ASCII (SMTPUTF8 is not supported) */
};

/* An attachment, or an inline part (an image the HTML shows). */
struct mime_build_part {
	/* "image/png": two RFC 2045 tokens; anything else that holds no
	 * control character is sent as application/octet-stream, and so are
	 * multipart/... and message/... but message/global, which may not be
	 * base64 (RFC 2046 5.1, 5.2.1). message/rfc822 is written as it is
	 * when it is mail (CRLF lines of at most 998 octets, no NUL), else
	 * as application/octet-stream. */
	const char *type;
	/* File name, UTF-8, or NULL. Only what follows the last '/' or '\'
	 * is kept (a client's path is nobody's business, and no receiver
	 * should be handed one); "", "." and ".." are no name. */
	const char *name;
	/* Content-ID without angle brackets, or NULL: printable ASCII but
	 * for spaces and the specials ()<>[]:;\,". */
	const char *cid;
	/* Content-Disposition inline, else attachment. An inline part with a
	 * cid goes into a multipart/related with the HTML body, when there
	 * is one. */
	bool is_inline;
	const uint8_t *data;
	size_t size;
};

struct mime_build {
	/* From may be empty in a draft; sending needs one, which the
	 * submission path checks. Several From addresses need a Sender. */
	const struct mime_build_address *from;
	size_t from_count;
	const struct mime_build_address *sender; /* or NULL */
	const struct mime_build_address *reply_to;
	size_t reply_to_count;
	const struct mime_build_address *to;
	size_t to_count;
	const struct mime_build_address *cc;
	size_t cc_count;
	const struct mime_build_address *bcc;
	size_t bcc_count;
	/* Written only when true: drafts and the Sent copy keep Bcc, the
	 * copy on the wire leaves it out. Bcc addresses are checked either
	 * way. */
	bool include_bcc;

	const char *subject;	/* UTF-8; NULL or "" for no Subject field */
	const char *message_id; /* "left@right" without <>; required */
	const char *const *in_reply_to; /* ids without <> */
	size_t in_reply_to_count;
	const char *const *references;
	size_t references_count;
	time_t date;
	int date_offset_minutes; /* east of UTC, within +-24 hours */

	/* UTF-8 bodies, or NULL. Line ends (CRLF, LF or CR) become CRLF. A
	 * line holding only "." is kept as it is: dot-stuffing is the SMTP
	 * client's job. Without either, and without parts, the body is an
	 * empty text/plain. */
	const char *text;
	const char *html;

	const struct mime_build_part *parts;
	size_t part_count;

	/* "Name: value" fields the server adds (User-Agent...), checked like
	 * the rest: a field name of printable ASCII, a printable ASCII value.
	 * Names of fields this module writes (From, Subject, Content-Type,
	 * MIME-Version...) are refused. */
	const char *const *extra_headers;
	size_t extra_count;

	/* Fills p with n random bytes for boundaries; NULL means libsodium's
	 * randombytes_buf. Tests set it to show that a boundary found in the
	 * content is replaced. */
	void (*random)(void *p, size_t n);
};

/* Appends the message to out, with CRLF line ends: Date, From, Sender,
 * Reply-To, To, Cc, Bcc (when include_bcc), Subject, Message-ID,
 * In-Reply-To, References, the extra fields, MIME-Version, then the body:
 *   text only                 text/plain; charset=utf-8
 *   html only                 text/html; charset=utf-8
 *   text and html             multipart/alternative
 *   html and inline cid parts multipart/related (html, parts) in place
 *                             of the html
 *   other parts               multipart/mixed (body, parts)
 * Text bodies are 7bit when they are ASCII with lines of at most 76
 * characters and no trailing whitespace, else quoted-printable; parts are
 * base64 in lines of 76. A single-part body ends with a line end (a
 * quoted-printable one with a soft line break, so that its text is kept).
 * While building, out's bytes and the encoded parts are held once more:
 * count on twice the message size in memory.
 *
 * Returns 0; or -1 with out as it was and *error_r a static string that
 * names the field ("to: invalid address", "subject: control character",
 * "message too large" when out's maximum would be crossed). */
int mime_build_message(const struct mime_build *b, struct buf *out,
		       const char **error_r);

/* True when email is an address mime_build_message accepts: a dot-atom or
 * quoted-string local part of at most 64 octets, '@', a domain of
 * letter-digit-hyphen labels (1 to 63 characters each, no hyphen at either
 * end), all ASCII and at most 254 octets. For JMAP's invalidProperties. */
bool mime_build_address_valid(const char *email);

#endif
