/* parser.h: the IMAP protocol parser (RFC 3501, RFC 9051 and the
 * extensions dijk announces), pure functions over bytes.
 *
 * No I/O, no static state. Results point into the input or into an arena
 * the caller gives and frees once per command. The session layer owns the
 * socket: it calls imap_frame() on its input until a whole command (line
 * plus literals) is there, answers "+" for synchronizing literals, then
 * calls imap_parse_command() and the grammar helpers below. */
#ifndef DIJK_IMAP_PARSER_H
#define DIJK_IMAP_PARSER_H

#include "core/common.h"

#include "core/buf.h"
#include "mime/mime.h"

#include <time.h>

/* Limits, named so that the session announces and enforces the same
 * values. Tighter before authentication. */
#define IMAP_MAX_LINE		  (64 * 1024) /* one line, without literals */
#define IMAP_MAX_LINE_PREAUTH	  (8 * 1024)
#define IMAP_MAX_LITERAL_PREAUTH  (8 * 1024)
#define IMAP_MAX_COMMAND_LITERALS 64	 /* non-APPEND commands */
#define IMAP_MAX_NESTING	  16	 /* parenthesis depth */
#define IMAP_MAX_ARGS		  100000 /* arguments in one command */
#define IMAP_MAX_TAG		  64
#define IMAP_MAX_SEQUENCE_RANGES  10000
#define IMAP_MAX_SEARCH_DEPTH	  16

/* An arena: allocations freed together. */
struct arena;
struct arena *arena_new(size_t max_bytes);
/* Returns NULL once max_bytes would be crossed (the command is then
 * answered BAD). Memory is aligned for any type and stays valid until
 * arena_reset or arena_free. */
void *arena_alloc(struct arena *a, size_t n);
void arena_reset(struct arena *a);
void arena_free(struct arena **a);
/* True when [p, p + n) lies inside memory handed out by a (tests, fuzz). */
bool arena_contains(const struct arena *a, const void *p, size_t n);

/* ---- Framing ---- */

enum imap_frame_result {
	IMAP_FRAME_COMPLETE,	    /* *len_r bytes hold one whole command */
	IMAP_FRAME_NEED_MORE,	    /* wait for more bytes */
	IMAP_FRAME_CONTINUE,	    /* a synchronizing literal {n} was announced
				  and accepted: send "+ ..." then wait */
	IMAP_FRAME_TOO_LONG,	    /* a line longer than max_line */
	IMAP_FRAME_LITERAL_TOO_BIG, /* *literal_r is the announced size;
				       a {n+} (LITERAL+) one cannot be
				       refused without losing sync: the
				       caller must close the connection */
	IMAP_FRAME_TOO_MANY_LITERALS,
};

struct imap_frame_limits {
	size_t max_line;
	uint64_t max_literal;
	unsigned max_literals;
};

/* State carried between calls while one command arrives. Zero it (or call
 * imap_framer_reset) before each new command. */
struct imap_framer {
	size_t pos;	       /* bytes of input already scanned */
	uint64_t literal_left; /* bytes of the current literal to skip */
	unsigned literals;
	bool continuation_sent;	   /* for the literal being announced */
	bool last_literal_nonsync; /* the last announced literal was {n+} */
	/* Private to imap_frame: where the line after the last literal
	 * starts, and the line bytes (all but literal data) seen so far. */
	size_t segment_start;
	size_t line_bytes;
};

void imap_framer_reset(struct imap_framer *f);

/* Scans in (the session's input, from the start of the command) for the
 * end of the command. On IMAP_FRAME_CONTINUE the caller sends its "+"
 * and calls again when more bytes come; on LITERAL_TOO_BIG *literal_r is
 * set and *nonsync_r tells whether it was {n+}.
 *
 * A literal is announced by "{n}", "{n+}", "~{n}" or "~{n+}" just before
 * a line's CRLF (quoted strings are not tracked: a line ending so is a
 * literal or a syntax error either way, and a client's literal data is
 * then never taken for commands). max_line counts every byte of the
 * command except literal data, CRLFs included.
 *
 * On LITERAL_TOO_BIG and TOO_MANY_LITERALS *len_r is the length up to and
 * including the CRLF of the announcing line and *nonsync_r is set: for a
 * synchronizing literal the client sends nothing more of the command, so
 * the caller answers the tag (NO [TOOBIG] or BAD), drops *len_r bytes and
 * goes on; for {n+} the caller must close. On TOO_LONG the caller closes
 * too (the end of the command is unknown). */
enum imap_frame_result imap_frame(struct imap_framer *f, struct slice in,
				  const struct imap_frame_limits *limits,
				  size_t *len_r, uint64_t *literal_r,
				  bool *nonsync_r);

/* ---- Generic arguments ---- */

enum imap_arg_type {
	IMAP_ARG_ATOM,	  /* also numbers, flags (\Seen), and fetch items
			     with brackets: BODY.PEEK[HEADER.FIELDS (A B)]<0.9>
			     is one atom whose text includes the brackets */
	IMAP_ARG_STRING,  /* quoted string, unescaped */
	IMAP_ARG_LITERAL, /* {n} or ~{n} (literal8) */
	IMAP_ARG_NIL,
	IMAP_ARG_LIST, /* ( ... ) */
};

struct imap_arg {
	enum imap_arg_type type;
	struct slice text;	     /* atom, string or literal bytes */
	bool literal8;		     /* ~{n} */
	const struct imap_arg *list; /* for LIST: its items */
	size_t count;		     /* for LIST */
};

struct imap_command {
	struct slice tag;
	struct slice name; /* command name; "UID" commands: see uid */
	bool uid;	   /* "UID FETCH" etc.: name is FETCH */
	const struct imap_arg *args;
	size_t arg_count;
};

/* Parses one whole command (as framed, with its final CRLF). Returns 0,
 * or -1 with *error_r (text for a BAD reply) and, if a tag could be read,
 * cmd->tag set (otherwise tag.n == 0: answer "* BAD"). */
int imap_parse_command(struct slice command, struct arena *a,
		       struct imap_command *cmd, const char **error_r);

/* ---- Grammar helpers over arguments ---- */

/* astring: atom, quoted string or literal (not NIL as a list). */
bool imap_arg_astring(const struct imap_arg *arg, struct slice *out);
/* nstring: NIL or string. */
bool imap_arg_nstring(const struct imap_arg *arg, struct slice *out,
		      bool *nil_r);
/* number (RFC 9051 number64 when wide): decimal with overflow check. */
bool imap_arg_number(const struct imap_arg *arg, uint64_t max, uint64_t *out);

/* Sequence sets: "1,3:5,7:*", "$" (SEARCHRES). '*' stands for star_value
 * (the largest number in use; 0 when the mailbox is empty). */
struct imap_range {
	uint32_t lo, hi; /* lo <= hi after normalising */
};
struct imap_seqset {
	struct imap_range *ranges;
	size_t count;
	bool saved; /* "$": the caller substitutes the saved result */
};
/* Returns 0, or -1 when text is not a sequence set (nz-numbers up to
 * 2^32 - 1, no leading zeros, at most IMAP_MAX_SEQUENCE_RANGES ranges) or
 * the arena is full. The ranges come out sorted, merged and disjoint (so
 * "5:1,2" is {1..5}); imap_seqset_contains relies on that order. */
int imap_parse_seqset(struct slice text, uint32_t star_value, struct arena *a,
		      struct imap_seqset *out);
bool imap_seqset_contains(const struct imap_seqset *s, uint32_t n);

/* Flags lists for STORE/APPEND: "(\Seen $Label)" or a single flag. System
 * flags are returned as bits, keywords as slices (sorted, duplicates in
 * any case removed). \Recent and unknown \Flags may not be stored (-1). */
enum imap_flag_bits {
	IMAP_FLAG_SEEN = 1 << 0,
	IMAP_FLAG_ANSWERED = 1 << 1,
	IMAP_FLAG_FLAGGED = 1 << 2,
	IMAP_FLAG_DELETED = 1 << 3,
	IMAP_FLAG_DRAFT = 1 << 4,
};
struct imap_flags {
	/* IMAP_FLAG_* bits ("system" itself is poisoned by core/poison.h) */
	unsigned system_flags;
	struct slice *keywords;
	size_t keyword_count;
};
int imap_parse_flags(const struct imap_arg *arg, struct arena *a,
		     struct imap_flags *out, const char **error_r);

/* Dates: date "1-Feb-1994" (SEARCH) and date-time
 * "01-Feb-1994 21:57:44 +0100" (APPEND). */
bool imap_parse_date(struct slice text, time_t *day_start_utc_r);
bool imap_parse_date_time(struct slice text, time_t *when_r);
/* Appends a date-time for INTERNALDATE, in UTC and without the quotes:
 * 22-Nov-2026 11:32:00 +0000 */
void imap_format_date_time(time_t when, struct buf *out);

/* Mailbox names: modified UTF-7 (RFC 3501 5.1.3) to UTF-8 and back, for
 * IMAP4rev1 clients; IMAP4rev2 clients use UTF-8 directly. Decoding
 * refuses malformed names (returns false). "INBOX" in any case is INBOX. */
bool imap_mutf7_decode(struct slice in, struct buf *out);
void imap_mutf7_encode(struct slice utf8, struct buf *out);

/* Appends a string the way IMAP sends it: quoted when it is short and
 * safe, a literal otherwise (allow_utf8: IMAP4rev2 / UTF8=ACCEPT). */
void imap_append_string(struct buf *out, struct slice s, bool allow_utf8);
void imap_append_nstring(struct buf *out, const struct slice *s,
			 bool allow_utf8);

/* ---- FETCH items ---- */

enum imap_fetch_kind {
	IMAP_FETCH_FLAGS,
	IMAP_FETCH_UID,
	IMAP_FETCH_INTERNALDATE,
	IMAP_FETCH_RFC822_SIZE,
	IMAP_FETCH_ENVELOPE,
	IMAP_FETCH_BODYSTRUCTURE,
	IMAP_FETCH_BODY_STRUCTURE_NONEXT, /* BODY without section */
	IMAP_FETCH_BODY_SECTION,	  /* BODY[...] and BODY.PEEK[...] */
	IMAP_FETCH_BINARY,		  /* BINARY[...] / BINARY.PEEK[...] */
	IMAP_FETCH_BINARY_SIZE,
	IMAP_FETCH_RFC822,	  /* = BODY[] setting \Seen */
	IMAP_FETCH_RFC822_HEADER, /* = BODY.PEEK[HEADER] */
	IMAP_FETCH_RFC822_TEXT,	  /* = BODY[TEXT] */
	IMAP_FETCH_MODSEQ,	  /* CONDSTORE */
	IMAP_FETCH_SAVEDATE,	  /* not announced; refused */
};

struct imap_fetch_item {
	enum imap_fetch_kind kind;
	bool peek;
	/* for BODY[...] and BINARY[...]: */
	uint32_t parts[MIME_MAX_DEPTH];
	size_t part_count;
	enum mime_section_kind section;
	const struct slice *fields;
	size_t field_count;
	bool partial;
	uint64_t partial_start, partial_length;
	/* The item's name as it must appear in the response, e.g.
	 * "BODY[HEADER.FIELDS (FROM TO)]<0>" (PEEK dropped, partial shown
	 * as <start> only). */
	struct slice response_name;
};

struct imap_fetch {
	struct imap_fetch_item *items;
	size_t count;
	/* FETCH modifiers (RFC 7162): (CHANGEDSINCE n) and VANISHED */
	bool changedsince;
	uint64_t changedsince_modseq;
	bool vanished;
};

/* Parses the FETCH attributes argument (a macro ALL/FAST/FULL, one item or
 * a list) and optional modifiers arg. */
int imap_parse_fetch(const struct imap_arg *attrs,
		     const struct imap_arg *modifiers, struct arena *a,
		     struct imap_fetch *out, const char **error_r);

/* ---- SEARCH keys (RFC 3501 6.4.4, RFC 9051 6.4.4, RFC 7162 MODSEQ) ---- */

enum imap_search_kind {
	IMAP_SEARCH_ALL,
	IMAP_SEARCH_AND, /* children */
	IMAP_SEARCH_OR,	 /* two children */
	IMAP_SEARCH_NOT, /* one child */
	IMAP_SEARCH_SEQSET,
	IMAP_SEARCH_UIDSET,
	IMAP_SEARCH_FLAG, /* flag bits set: ANSWERED DELETED DRAFT FLAGGED SEEN */
	IMAP_SEARCH_NOT_FLAG, /* UNANSWERED ... UNSEEN */
	IMAP_SEARCH_KEYWORD,
	IMAP_SEARCH_UNKEYWORD,
	IMAP_SEARCH_NEW, /* RECENT UNSEEN */
	IMAP_SEARCH_OLD, /* NOT RECENT */
	IMAP_SEARCH_RECENT,
	IMAP_SEARCH_BEFORE, /* internal date, day granularity */
	IMAP_SEARCH_ON,
	IMAP_SEARCH_SINCE,
	IMAP_SEARCH_SENTBEFORE, /* Date: header */
	IMAP_SEARCH_SENTON,
	IMAP_SEARCH_SENTSINCE,
	IMAP_SEARCH_LARGER,
	IMAP_SEARCH_SMALLER,
	IMAP_SEARCH_HEADER, /* field name + value (substring) */
	IMAP_SEARCH_BODY,
	IMAP_SEARCH_TEXT,
	IMAP_SEARCH_MODSEQ,
	IMAP_SEARCH_SAVED, /* "$" */
};

struct imap_search_key {
	enum imap_search_kind kind;
	struct imap_search_key *children;
	size_t child_count;
	struct imap_seqset set;
	unsigned flags;
	struct slice field; /* HEADER field name; FROM/TO/CC/BCC/SUBJECT map
			       to HEADER with that field */
	struct slice value; /* string, keyword; MODSEQ: the entry's flag
			       ("\Seen"), empty when none was given */
	uint64_t number;    /* LARGER/SMALLER size, MODSEQ value */
	time_t date;	    /* day start, UTC */
};

struct imap_search {
	/* ESEARCH return options (RFC 4731, RFC 5182 SAVE) */
	bool esearch;
	bool return_min, return_max, return_all, return_count, return_save;
	struct slice charset;	     /* empty: none given */
	struct imap_search_key root; /* an AND of the keys */
};

/* Parses SEARCH arguments from args[0..count). star_value is used for
 * sequence sets; uid_star for UID sets. */
int imap_parse_search(const struct imap_arg *args, size_t count,
		      uint32_t star_value, uint32_t uid_star, struct arena *a,
		      struct imap_search *out, const char **error_r);

/* ---- SORT criteria (RFC 5256, RFC 5957 DISPLAY) ---- */

enum imap_sort_key {
	IMAP_SORT_ARRIVAL,
	IMAP_SORT_CC,
	IMAP_SORT_DATE,
	IMAP_SORT_FROM,
	IMAP_SORT_SIZE,
	IMAP_SORT_SUBJECT,
	IMAP_SORT_TO,
	IMAP_SORT_DISPLAYFROM,
	IMAP_SORT_DISPLAYTO,
};

struct imap_sort_criterion {
	enum imap_sort_key key;
	bool reverse;
};

/* Parses "(REVERSE DATE SUBJECT)". */
int imap_parse_sort_criteria(const struct imap_arg *arg, struct arena *a,
			     struct imap_sort_criterion **out, size_t *count_r,
			     const char **error_r);

#endif
