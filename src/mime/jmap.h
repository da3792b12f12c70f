/* jmap.h: what the JMAP webmail needs of a parsed message (RFC 8621 4.1):
 * the body parts as EmailBodyPart objects with the textBody, htmlBody and
 * attachments lists of 4.1.4, the decoded content and text of a part,
 * addresses and dates in JMAP's parsed forms, and the preview.
 *
 * Everything reads a struct mime_message from mime_parse and is bounded
 * by its MIME_MAX_PARTS and MIME_MAX_DEPTH; hostile input gives odd
 * results, never a crash. Strings handed out are valid UTF-8 without NUL
 * bytes, ready for JSON. */
#ifndef DIJK_MIME_JMAP_H
#define DIJK_MIME_JMAP_H

#include "core/common.h"

#include "core/buf.h"
#include "mime/mime.h"

/* No part: the parent of the root, the child of a leaf. */
#define MIME_JMAP_NONE UINT32_MAX
/* An IMAP section number: at most MIME_MAX_DEPTH numbers of at most four
 * digits (MIME_MAX_PARTS), separated by dots. */
#define MIME_JMAP_PART_ID_SIZE (MIME_MAX_DEPTH * 5 + 1)
/* type "/" subtype: RFC 6838 4.2 allows 127 characters for each. A
 * longer one is read as application/octet-stream. */
#define MIME_JMAP_TYPE_SIZE 256
/* Longest charset and disposition kept; longer ones are dropped. */
#define MIME_JMAP_CHARSET_SIZE	   41
#define MIME_JMAP_DISPOSITION_SIZE 33
/* File names, cids, languages and locations are cut (on a character
 * boundary) at this many bytes: they go into every Email/get reply. */
#define MIME_JMAP_MAX_VALUE 1024
/* RFC 2231 continuations (name*0, name*1...) read per parameter. */
#define MIME_JMAP_MAX_SECTIONS 100
/* RFC 8621 4.1.4: the preview is at most 256 characters. */
#define MIME_JMAP_PREVIEW_CHARS 256
/* Bytes of a part's body that the preview reads: enough for 256
 * characters after any sane amount of markup. */
#define MIME_JMAP_PREVIEW_SCAN (256 * 1024)

/* One part of a message as JMAP's EmailBodyPart (RFC 8621 4.1.4). An
 * attached message (message/rfc822) is one leaf: its own parts are not
 * listed, as JMAP gives them through the attached message's blob. */
struct mime_body_part {
	/* The IMAP section number ("1", "2.1"): the body of a message that
	 * is not a multipart is "1"; a multipart inside another has its
	 * number too, the top-level multipart has "". JMAP's partId is null
	 * for every multipart: callers check multipart. */
	char part_id[MIME_JMAP_PART_ID_SIZE];
	/* Indexes into mime_jmap_body.parts, MIME_JMAP_NONE when none:
	 * subParts are first_child and its next_siblings. */
	uint32_t parent, first_child, next_sibling;
	bool multipart;
	/* Lower case: "text/plain" when there is no usable Content-Type
	 * (RFC 2045 5.2), "message/rfc822" inside multipart/digest (RFC 2046
	 * 5.1.5); a multipart without a usable boundary, or beyond
	 * MIME_MAX_DEPTH, is "text/plain". */
	char type[MIME_JMAP_TYPE_SIZE];
	/* The charset parameter, lower case; "us-ascii" for text/ without
	 * one (and without any Content-Type), "" for other types without
	 * one (JMAP null). Only printable ASCII names are kept. */
	char charset[MIME_JMAP_CHARSET_SIZE];
	/* The Content-Disposition token, lower case ("attachment",
	 * "inline"), "" when there is none (JMAP null). */
	char disposition[MIME_JMAP_DISPOSITION_SIZE];
	/* The file name, NULL when none: Content-Disposition's filename,
	 * else Content-Type's name (RFC 8621 4.1.4), each in its RFC 2231
	 * form (filename*, filename*0*..., with charset) before the plain
	 * one, which may hold RFC 2047 words as many clients send. Decoded
	 * to UTF-8, with control characters, '/' and '\\' replaced by '_'
	 * so that it is safe as a download name; the ends trimmed. */
	char *name;
	/* Content-ID without CFWS and angle brackets, or NULL. */
	char *cid;
	/* Content-Language tags joined by ",", or NULL (JMAP wants them
	 * as a list: split on ','). */
	char *language;
	/* Content-Location, unfolded and trimmed, or NULL. */
	char *location;
	/* Octets after the transfer encoding is undone (a multipart and an
	 * attached message count their body as stored). */
	uint64_t size;
};

/* The body of a message as JMAP shows it. */
struct mime_jmap_body {
	struct mime_body_part *parts; /* every part, tree order; [0] is root */
	size_t part_count;
	/* Indexes into parts, in the order RFC 8621 4.1.4 gives. */
	uint32_t *text_body, *html_body, *attachments;
	size_t text_count, html_count, attachment_count;
};

/* Fills out (which the caller frees with mime_jmap_body_free; it does not
 * borrow from m) with every part and the textBody, htmlBody and
 * attachments lists of RFC 8621 4.1.4's parseStructure, followed exactly:
 * multipart/alternative picks, multipart/related keeps only its first
 * part inline, image/, audio/ and video/ parts inline in text are in both
 * bodies (and in attachments when one body does not take them), a text
 * part with a name after the first of its multipart is an attachment, and
 * so is a message/rfc822 part. Where the algorithm would push to a list
 * an enclosing level has dropped (multipart/alternative inside a
 * multipart/mixed inside an alternative), nothing is pushed. */
void mime_jmap_body(const struct mime_message *m, struct mime_jmap_body *out);
/* Frees what mime_jmap_body made and empties b; safe to call twice. */
void mime_jmap_body_free(struct mime_jmap_body *b);

/* Appends the content of the part with IMAP section number part_id ("1",
 * "2.1"; read as mime_section_bytes reads part numbers, so numbers after
 * an attached message go into it, and a leaf is also its own part 1) with
 * its transfer encoding undone, for blob download. An unknown transfer
 * encoding, a multipart and an attached message give the body as stored.
 * Returns 0, or -1 when there is no such part ("" names none). Decoding
 * never yields more bytes than the part stores. */
int mime_part_content(const struct mime_message *m, const char *part_id,
		      struct buf *out);

/* Appends the text of the text/ part part_id as UTF-8 (JMAP's bodyValue):
 * transfer encoding undone, its charset converted (unknown charsets and
 * unlabelled 8-bit text read as UTF-8 when they are, else windows-1252;
 * invalid bytes become U+FFFD). HTML stays HTML. With max_bytes > 0 (JMAP
 * maxBodyValueBytes; 0 means no limit) at most that many bytes are
 * appended, cut before a character, and *truncated_r (may be NULL) says
 * whether it was cut. Returns 0, or -1 when there is no such part or it
 * is not text. */
int mime_part_text(const struct mime_message *m, const char *part_id,
		   size_t max_bytes, struct buf *out, bool *truncated_r);

/* Calls fn for every address of every top-level header field called
 * field (without case), in order, as JMAP's EmailAddress in the Addresses
 * form (RFC 8621 4.1.2.3): groups are flattened. name is the display name
 * (or, without one, a comment after the address), RFC 2047 decoded, or
 * NULL when there is none; email is "local@domain" ("local" when the
 * domain is missing, "" when both are). Both are valid for the call. */
typedef void mime_address_fn(const char *name, const char *email, void *ctx);
void mime_header_addresses(const struct mime_message *m, const char *field,
			   mime_address_fn *fn, void *ctx);

/* The first Date: field (JMAP sentAt) as seconds since the epoch, or -1
 * when absent or invalid; *offset_minutes_r is its zone as minutes east of
 * UTC (+60 for +0100, -300 for EST; 0 for -0000, unknown zones and -1). */
int64_t mime_date_zone(const struct mime_message *m, int *offset_minutes_r);

/* Appends JMAP's preview (RFC 8621 4.1.4): the text of the textBody parts
 * in order (text/plain as it is, text/html reduced to its text), each
 * read from at most MIME_JMAP_PREVIEW_SCAN bytes of its body; whitespace
 * and control characters collapsed to one space, the ends trimmed, cut
 * before a character after MIME_JMAP_PREVIEW_CHARS characters (counted in
 * UTF-16 units, as JavaScript counts them, so that the limit holds on
 * either side). Nothing when the message has no text. */
void mime_preview(const struct mime_message *m, struct buf *out);

/* Appends the value of the first top-level header field called name
 * (without case), unfolded (CR and LF removed), the ends trimmed, NUL
 * bytes dropped and invalid UTF-8 replaced by U+FFFD; encoded words are
 * kept. Returns false when there is none. */
bool mime_header_raw(const struct mime_message *m, const char *name,
		     struct buf *out);

#endif
