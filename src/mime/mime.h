/* mime.h: the structure of a message (RFC 5322, RFC 2045-2049) as IMAP
 * needs it: ENVELOPE, BODYSTRUCTURE, sections by part number, decoded
 * content, and the decoded text and header values that search and sort use.
 *
 * Parsing never fails: malformed input (broken boundaries, missing blank
 * lines, 8-bit headers, bad encodings) gives the structure a tolerant
 * reader would see, bounded by MIME_MAX_DEPTH and MIME_MAX_PARTS. A parsed
 * message borrows the bytes it was parsed from: they must outlive it. */
#ifndef DIJK_MIME_H
#define DIJK_MIME_H

#include "core/common.h"

#include "core/buf.h"

/* Nesting of multiparts and message/rfc822 parts kept as structure; a
 * deeper one is an opaque leaf, shown as text/plain. */
#define MIME_MAX_DEPTH 32
/* Parts kept per message; later ones are part of their parent's body. */
#define MIME_MAX_PARTS 2000
/* A header block ends at its blank line, or after this many bytes or
 * lines (the rest is then body, as Postfix's header_size_limit does). */
#define MIME_MAX_HEADER_SIZE  (1024 * 1024)
#define MIME_MAX_HEADER_LINES 10000
/* Boundaries longer than this (RFC 2046 allows 70) are not boundaries: the
 * multipart is shown as text/plain. */
#define MIME_MAX_BOUNDARY 256
/* IMAP strings longer than this, or holding anything but printable ASCII
 * and tabs, are sent as literals. */
#define MIME_MAX_QUOTED 1024

struct mime_message;

/* Parses bytes; never returns NULL. The caller frees with mime_free. */
struct mime_message *mime_parse(struct slice bytes);
void mime_free(struct mime_message **m);

/* Appends the IMAP ENVELOPE list, "(date subject from ...)", RFC 3501
 * 7.4.2 / RFC 9051 7.5.2. Header values are given as in the message,
 * unfolded and trimmed (encoded words are not decoded). A string holding
 * anything but printable ASCII and tabs (8-bit bytes, UTF-8 or not, and
 * controls), or longer than MIME_MAX_QUOTED, is sent as a literal, which
 * every IMAP4rev1 and IMAP4rev2 client accepts; NUL bytes are dropped.
 * Sender and Reply-To default to From; a mailbox without a local part or
 * domain gets "MISSING_MAILBOX" / "MISSING_DOMAIN" (as Dovecot does), as
 * a NIL host would mean group syntax. */
void mime_envelope(const struct mime_message *m, struct buf *out);

/* Appends BODYSTRUCTURE (extensible true) or BODY (false), starting with
 * "(". Types, subtypes, parameters and encodings are given as the message
 * spells them (parameters, RFC 2231 ones included, are passed through
 * one by one, unquoted); without a Content-Type a part is "TEXT" "PLAIN"
 * ("CHARSET" "US-ASCII") (or message/rfc822 in a multipart/digest), and
 * text without a charset gets "CHARSET" "US-ASCII" (RFC 2045 5.2). A
 * multipart without a usable boundary, and a multipart or message beyond
 * MIME_MAX_DEPTH or MIME_MAX_PARTS, is shown as text/plain; a multipart
 * without parts gets one empty text/plain part, as IMAP needs one. Sizes
 * count the octets as stored; lines count the line ends of the body. */
void mime_bodystructure(const struct mime_message *m, bool extensible,
			struct buf *out);

enum mime_section_kind {
	MIME_SECTION_ALL,	    /* BODY[] or BODY[1.2] */
	MIME_SECTION_HEADER,	    /* BODY[HEADER], BODY[1.2.HEADER] */
	MIME_SECTION_HEADER_FIELDS, /* BODY[HEADER.FIELDS (A B)] */
	MIME_SECTION_HEADER_FIELDS_NOT,
	MIME_SECTION_TEXT, /* BODY[TEXT], BODY[1.2.TEXT] */
	MIME_SECTION_MIME, /* BODY[1.2.MIME] */
};

struct mime_section {
	uint32_t parts[MIME_MAX_DEPTH]; /* "1.2.3" is {1, 2, 3} */
	size_t part_count;		/* 0: the whole message */
	enum mime_section_kind kind;
	const struct slice *fields; /* HEADER.FIELDS(.NOT) names */
	size_t field_count;
};

/* Appends the bytes of the section (RFC 3501 6.4.5), as stored (bare LF
 * line ends are not made CRLF). Returns 0, or -1 when the part does not
 * exist (IMAP then sends an empty string).
 *
 * Part numbers, as Dovecot and the RFC's example read them: in a
 * multipart, n is its n-th part; a part that is not a multipart has only
 * part 1, itself (so BODY[1] of a single-part message is its body, and
 * BODY[1.1] of a text part is that part); numbers after a message/rfc822
 * part go into the message it holds (2.1 is the first part of the message
 * attached as part 2). BODY[n] is the body of the part without its MIME
 * header; the line end before the next boundary is not part of it (RFC
 * 2046 5.1.1). HEADER, HEADER.FIELDS(.NOT) and TEXT after part numbers
 * need a message/rfc822 part and give its message's header or text; MIME
 * needs part numbers. HEADER includes the blank line; HEADER.FIELDS gives
 * the matching fields (names compared without case, folded lines kept) and
 * a blank line; HEADER.FIELDS.NOT the others, and the blank line when the
 * header has one (so that HEADER.FIELDS.NOT () equals HEADER). */
int mime_section_bytes(const struct mime_message *m,
		       const struct mime_section *section, struct buf *out);

/* BINARY[part] (RFC 3516): the part's content with its transfer encoding
 * undone. Returns 0; -1 when the part does not exist; -2 when its
 * Content-Transfer-Encoding is unknown (IMAP: NO [UNKNOWN-CTE]). Part
 * numbers as for mime_section_bytes; none gives the whole message as it
 * is, and so does a multipart or message/rfc822 part (they are never
 * encoded). Decoding is lenient: base64 skips what is not base64 and
 * reads on after padding; quoted-printable keeps malformed escapes. The
 * result may hold NUL bytes: the caller chooses literal8 then. */
int mime_section_binary(const struct mime_message *m, const uint32_t *parts,
			size_t part_count, struct buf *out);

/* The decoded value (RFC 2047 words and charsets to UTF-8, unfolded) of
 * every top-level header field called name (without case), joined by
 * ", ". Whitespace between adjacent encoded words is dropped; a character
 * split between words of one charset is joined; unknown charsets and raw
 * 8-bit text are read as UTF-8 when they are, else as windows-1252;
 * control characters become spaces; the ends are trimmed. Returns false
 * when there is none. */
bool mime_header_value(const struct mime_message *m, const char *name,
		       struct buf *out);

/* The text of the message for the full-text index: the decoded text of its
 * text/plain and text/html parts (HTML reduced to its text: no tags,
 * scripts or styles, character references decoded), attached messages
 * included, as UTF-8, parts separated by a new line. Of a
 * multipart/alternative only the text/plain part is taken when it has
 * one. */
void mime_body_text(const struct mime_message *m, struct buf *out);

/* The Date: header as seconds since the epoch; -1 when absent or invalid. */
int64_t mime_date(const struct mime_message *m);

/* RFC 5256 base subject of a decoded subject (for SORT and THREAD). Case
 * is kept: SORT compares with i;ascii-casemap. */
void mime_base_subject(struct slice subject, struct buf *out);
/* True when extracting the base subject removed a reply or forward mark
 * ("Re:", "Fwd:", "(fwd)", "[fwd: ...]"): THREAD=REFERENCES needs it. */
bool mime_subject_is_reply_or_forward(struct slice subject);

/* Sort keys of RFC 5256 and RFC 5957: the first address of From, To or Cc:
 * its mailbox (local part) or, for display, its decoded display name or
 * else its address. Empty when there is none. */
void mime_sort_address(const struct mime_message *m, const char *field,
		       bool display, struct buf *out);

/* Message-ID, In-Reply-To and References for THREAD=REFERENCES: the
 * message ids found in the first field called field, in order, without
 * angle brackets, each appended to out followed by a NUL byte. An id is
 * what stands between '<' and '>' outside comments and quoted strings,
 * without whitespace (folding inside it is removed). */
void mime_message_ids(const struct mime_message *m, const char *field,
		      struct buf *out);

/* True when the message has a part with Content-Disposition attachment, a
 * non-text leaf with a file name (name, filename, or their RFC 2231
 * forms), or an attached message/rfc822: JMAP hasAttachment and the
 * webmail. */
bool mime_has_attachment(const struct mime_message *m);

#endif
