/* parser.h: the SMTP protocol parser, a pure function over bytes.
 *
 * No I/O, no static state, no allocation except into the buffer a caller
 * passes to the DATA reader; results point into the input and live as long
 * as it does. Replies for malformed input are full SMTP reply lines (code,
 * enhanced status code, text; no CRLF), static strings the caller sends. */
#ifndef DIJK_SMTP_PARSER_H
#define DIJK_SMTP_PARSER_H

#include "core/common.h"

#include "core/buf.h"

/* RFC 5321 4.5.3.1: command line including CRLF. */
#define SMTP_MAX_COMMAND_LINE 512
/* RFC 4954 4: an AUTH line may be longer; ours holds a 1024-octet password
 * with its user name in base64. */
#define SMTP_MAX_AUTH_LINE 2048
/* RFC 5321 4.5.3.1.6: text line of at most 998 octets plus CRLF. */
#define SMTP_MAX_TEXT_LINE  998
#define SMTP_MAX_LOCAL_PART 64
#define SMTP_MAX_DOMAIN	    255
#define SMTP_MAX_PATH	    256

enum smtp_line_result {
	SMTP_LINE_OK, /* a whole line; *len_r includes the CRLF */
	SMTP_LINE_NEED_MORE,
	SMTP_LINE_TOO_LONG, /* no CRLF within max octets */
	SMTP_LINE_BARE,	    /* a bare CR or LF */
};

/* Finds the first line of in, of at most max octets with its CRLF. */
enum smtp_line_result smtp_find_line(struct slice in, size_t max,
				     size_t *len_r);

enum smtp_verb {
	SMTP_VERB_HELO,
	SMTP_VERB_EHLO,
	SMTP_VERB_MAIL,
	SMTP_VERB_RCPT,
	SMTP_VERB_DATA,
	SMTP_VERB_BDAT,
	SMTP_VERB_RSET,
	SMTP_VERB_NOOP,
	SMTP_VERB_QUIT,
	SMTP_VERB_HELP,
	SMTP_VERB_VRFY,
	SMTP_VERB_EXPN,
	SMTP_VERB_STARTTLS,
	SMTP_VERB_AUTH,
};

enum smtp_body { SMTP_BODY_7BIT, SMTP_BODY_8BITMIME, SMTP_BODY_BINARYMIME };

struct smtp_address {
	struct slice local;  /* as written, quotes included */
	struct slice domain; /* empty only for the null path <> */
	bool null_path;
	bool utf8; /* contains octets >= 0x80 */
};

struct smtp_command {
	enum smtp_verb verb;
	/* HELO/EHLO: the client's name; AUTH: the mechanism; VRFY/EXPN/HELP/
	 * NOOP: the argument. */
	struct slice arg;
	/* AUTH: the initial response, if any ("=" stands for empty). */
	struct slice initial_response;
	bool has_initial_response;
	/* MAIL and RCPT */
	struct smtp_address address;
	/* MAIL parameters */
	uint64_t size;
	bool has_size;
	enum smtp_body body;
	bool smtputf8;
	/* BDAT */
	uint64_t chunk_size;
	bool last;
};

enum smtp_parse_result {
	SMTP_PARSE_OK,
	SMTP_PARSE_UNKNOWN, /* 500: no such command */
	SMTP_PARSE_SYNTAX,  /* 501 or 555: *reply_r says which */
};

/* Parses one command line (without its CRLF). On failure *reply_r is the
 * reply to send. */
enum smtp_parse_result smtp_parse_command(struct slice line,
					  struct smtp_command *cmd_r,
					  const char **reply_r);

/* Parses "<local@domain>" (the path of MAIL or RCPT, brackets included).
 * allow_null accepts "<>". Returns 0 or -1 with *reply_r. */
int smtp_parse_path(struct slice path, bool allow_null,
		    struct smtp_address *address_r, const char **reply_r);

/* Reader of a DATA body: finds the end (CRLF "." CRLF), removes dot
 * stuffing, and refuses bare CR or LF. It keeps consuming up to the real
 * end after an error, so nothing smuggled after a bare line end is ever
 * taken as a command. */
enum smtp_data_error {
	SMTP_DATA_ERROR_NONE,
	SMTP_DATA_ERROR_BARE_LINE_END,
	SMTP_DATA_ERROR_LINE_TOO_LONG,
	SMTP_DATA_ERROR_TOO_BIG,
};

struct smtp_data_reader {
	int state;
	size_t line_len;
	enum smtp_data_error error;
	uint64_t total; /* octets of content seen, errors or not */
};

void smtp_data_reader_init(struct smtp_data_reader *r);

/* Feeds bytes. Appends content (unstuffed, with CRLF line ends) to out
 * until an error; out's maximum is the message size limit. Sets *consumed_r
 * and returns true when the end of data was reached within in (bytes after
 * it are not consumed), false when all of in was consumed and more is
 * needed. */
bool smtp_data_feed(struct smtp_data_reader *r, struct slice in,
		    struct buf *out, size_t *consumed_r);

/* Checker of BDAT content: the same rules on line ends and line length,
 * carried across chunk boundaries. */
struct smtp_bdat_checker {
	bool pending_cr;
	size_t line_len;
	enum smtp_data_error error;
};

void smtp_bdat_checker_init(struct smtp_bdat_checker *c);
void smtp_bdat_check(struct smtp_bdat_checker *c, struct slice chunk);
/* Called after the LAST chunk: a CR at the very end is a bare CR. */
void smtp_bdat_finish(struct smtp_bdat_checker *c);

#endif
