/* mime_internal.h: what the files of src/mime/ share and nobody else uses:
 * transfer and header decoders (decode.c), the RFC 5322 address parser
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
