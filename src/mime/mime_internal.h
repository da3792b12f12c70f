/* mime_internal.h: what the files of src/mime/ share and nobody else uses:
 * the parsed message and its parts (mime.c, read by jmap.c), transfer and
 * header decoders (decode.c), the RFC 5322 address parser
 * (address.c), dates, subjects and message ids (field.c), and the lexical
 * helpers of RFC 5322 / RFC 2045 that all of them use.
 *
 * Every function here is pure: it reads the bytes it is given and appends
 * to the buffer it is given, keeping no state between calls. */
#ifndef DIJK_MIME_INTERNAL_H
#define DIJK_MIME_INTERNAL_H

#include "core/common.h"

#include "core/buf.h"

/* Longest charset name handed to iconv; longer names are unknown. */
#define MIME_MAX_CHARSET_NAME 40
/* Longest encoded word (RFC 2047 says 75; real mail is sloppier). */
#define MIME_MAX_ENCODED_WORD 2048
/* Addresses kept from one header field; the rest is ignored. */
#define MIME_MAX_ADDRESSES 10000

enum mime_cte {
	MIME_CTE_7BIT,
	MIME_CTE_8BIT,
	MIME_CTE_BINARY,
	MIME_CTE_BASE64,
	MIME_CTE_QP,
	MIME_CTE_UNKNOWN,
};

/* ---- the parsed message (mime.c) ---- */

/* No part: a missing parent, child or sibling. */
#define MIME_PART_NONE UINT32_MAX

enum mime_part_kind {
	MIME_PART_LEAF,
	MIME_PART_MULTIPART,
	MIME_PART_MESSAGE, /* message/rfc822: one child, the message inside */
};

/* A header field value, from after the colon to the end of its last
 * line (line end excluded). */
struct mime_field_ref {
	size_t start, end;
	bool present;
};

/* One entity of the message. Offsets index mime_message.bytes. */
struct mime_part {
	size_t header_start; /* first byte of the header */
	size_t header_end;   /* end of the last field, blank line excluded */
	size_t body_start;   /* after the blank line */
	size_t body_end;
	uint32_t parent, first_child, next_sibling, child_count;
	uint32_t depth;
	enum mime_part_kind kind;
	/* A multipart without a usable boundary, or a multipart or message
	 * beyond the limits: shown as text/plain. */
	bool as_text;
	/* A valid Content-Type: type and subtype point into the message. */
	bool have_type;
	/* No Content-Type inside a multipart/digest: message/rfc822. */
	bool digest_default;
	struct slice type, subtype;
	size_t params_pos; /* in the Content-Type value, after the subtype */
	enum mime_cte encoding;
	struct mime_field_ref content_type, transfer_encoding, id, description,
		disposition, language, location, md5;
};

/* Parts are in document order (a part before its children), linked by
 * index; parts[0] is the message itself. */
struct mime_message {
	struct slice bytes;
	struct mime_part *parts;
	size_t part_count, part_cap;
};

static inline struct slice mime_field_slice(const struct mime_message *m,
					    struct mime_field_ref ref)
{
	return slice_make(m->bytes.p + ref.start, ref.end - ref.start);
}

/* The part that IMAP part numbers name (as mime_section_bytes reads
 * them; none is the message), or MIME_PART_NONE. count must not exceed
 * MIME_MAX_DEPTH. */
uint32_t mime_find_part(const struct mime_message *m, const uint32_t *parts,
			size_t count);

/* Appends the body of part with its transfer encoding undone (base64 and
 * quoted-printable; anything else as it is). */
void mime_decode_body(const struct mime_message *m,
		      const struct mime_part *part, struct buf *out);

/* Walks the header fields of one part. */
struct mime_field_cursor {
	size_t pos, end;
};

void mime_fields_init(const struct mime_message *m, uint32_t idx,
		      struct mime_field_cursor *c);
/* The next field: its name (empty for a continuation line that belongs to
 * no field) and its raw value (folded, from after the colon, line end
 * excluded); both point into the message. False after the last. */
bool mime_fields_next(const struct mime_message *m, struct mime_field_cursor *c,
		      struct slice *name_r, struct slice *value_r);

/* ---- lexical helpers (RFC 5322 3.2, RFC 2045 5.1) ---- */

static inline bool mime_is_wsp(uint8_t c)
{
	return c == ' ' || c == '\t';
}

/* Whitespace as it may appear in a header value before unfolding. */
static inline bool mime_is_fws(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* RFC 2045 token characters: printable ASCII but SPACE and tspecials. */
bool mime_is_token_char(uint8_t c);

/* Skips folding whitespace and (nested) comments from *pos; returns the
 * new position. */
size_t mime_skip_cfws(struct slice s, size_t pos);

/* Appends the contents of the quoted string starting at s.p[*pos] (which
 * is '"'), without the quotes and with quoted-pairs undone; CR and LF are
 * dropped (unfolding). Advances *pos past the closing quote (or to the end
 * when there is none). */
void mime_unquote(struct slice s, size_t *pos, struct buf *out);

/* The header value with CR and LF removed and the ends trimmed of
 * whitespace; NUL bytes are dropped too, since no IMAP string may hold
 * them. */
void mime_unfold(struct slice value, struct buf *out);

/* ---- parameters (RFC 2045 5.1, RFC 2231) ---- */

struct mime_param {
	struct slice name;  /* points into the header value */
	size_t value_start; /* unquoted value, in the scratch buffer */
	size_t value_len;
};

/* Parses "; name=value" pairs of a Content-Type or Content-Disposition
 * value from pos on. Calls fn for each, with the unquoted value in
 * scratch (at value_start). Stops at the first thing that is not a
 * parameter. Returns the number of parameters seen. */
typedef void (*mime_param_fn)(void *ctx, const struct mime_param *param,
			      const struct buf *scratch);
size_t mime_parse_params(struct slice value, size_t pos, struct buf *scratch,
			 mime_param_fn fn, void *ctx);

/* ---- decoders (decode.c) ---- */

/* Base64 as mail carries it: whitespace and stray characters skipped,
 * '=' padding ends a block (and another may follow); a partial group
 * before padding or at the end is dropped. */
void mime_decode_base64(struct slice in, struct buf *out);
/* Quoted-printable (RFC 2045 6.7), or with underscores as spaces for
 * RFC 2047 "Q" words. Malformed escapes are kept as they are. */
void mime_decode_qp(struct slice in, bool q_word, struct buf *out);

/* Converts text in the named charset to UTF-8. An unknown or empty
 * charset, US-ASCII and UTF-8 keep valid UTF-8 as it is; bytes that are
 * not valid UTF-8 are read as windows-1252 (for unlabelled or US-ASCII
 * text) or replaced by U+FFFD (for UTF-8). ISO-8859-1 is read as
 * windows-1252, as browsers do. Other charsets go through iconv. */
void mime_charset_to_utf8(struct slice charset, struct slice in,
			  struct buf *out);

/* A header value decoded for people: unfolded, RFC 2047 encoded words
 * decoded (adjacent ones joined without the space between them), 8-bit
 * text taken as UTF-8 or else windows-1252, control characters turned
 * into spaces and the ends trimmed. */
void mime_decode_header(struct slice value, struct buf *out);

/* The text of an HTML document: tags dropped (with script and style
 * contents), block ends as new lines, character references decoded.
 * Input and output are UTF-8. */
void mime_html_to_text(struct slice html, struct buf *out);

/* Appends the UTF-8 encoding of code point cp (U+FFFD when invalid). */
void mime_utf8_put(struct buf *out, uint32_t cp);

/* The Content-Transfer-Encoding named by a header value. */
enum mime_cte mime_cte_parse(struct slice value);

/* ---- addresses (address.c) ---- */

/* One entry of an ENVELOPE address list. Offsets index the scratch
 * buffer given to mime_parse_addresses; MIME_NIL marks an absent field.
 * A group start has only mailbox (the group name); a group end has
 * nothing. */
#define MIME_NIL SIZE_MAX
struct mime_address {
	size_t name, name_len;
	size_t route, route_len;
	size_t mailbox, mailbox_len;
	size_t host, host_len;
	bool group_start, group_end;
	/* mailbox or host hold a MISSING_ placeholder */
	bool mailbox_missing, host_missing;
};

/* Parses an RFC 5322 address-list (obsolete forms and common breakage
 * accepted). Returns a malloc'ed array (caller frees) of *count_r
 * entries; NULL when there is none. */
struct mime_address *mime_parse_addresses(struct slice value,
					  struct buf *scratch, size_t *count_r);

/* ---- fields (field.c) ---- */

/* RFC 5322 date-time (with the obsolete forms of 4.3) as seconds since
 * the epoch, or -1. */
int64_t mime_parse_date(struct slice value);

/* Appends each msg-id found in value, without angle brackets, followed
 * by a NUL byte. */
void mime_parse_message_ids(struct slice value, struct buf *out);

#endif
