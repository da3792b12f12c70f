/* build.c: RFC 5322 / MIME messages from structured fields (build.h).
 *
 * The work is done in three steps, so that a failure leaves the caller's
 * buffer as it was and a boundary is chosen only once everything it must
 * not occur in is known:
 *   1. the header fields are checked and written to out, folded by a small
 *      line writer (struct folder) that only ever breaks at spaces it was
 *      told it may break at;
 *   2. each leaf part (text, HTML, attachment) is encoded into its own
 *      buffer, with its MIME header fields, and the leaves are hung into
 *      the tree of multiparts the fields call for;
 *   3. one boundary per multipart is drawn at random until it occurs in no
 *      leaf and in no other boundary, and the tree is written out.
 * On any error out is cut back to its length at entry. */
#include "core/common.h"

#include "mime/build.h"

#include "core/base64.h"
#include "core/utf8.h"
#include "mime/mime_internal.h"

#include <sodium.h>

/* RFC 5322 2.1.1: lines SHOULD be at most 78 characters (CRLF not
 * counted) and MUST be at most 998. Folds go before 78; what cannot be
 * folded is kept well below 998: a run of plain header text without a
 * space longer than this is written as encoded words, which can be cut. */
#define LINE_SOFT      78
#define MAX_PLAIN_WORD 900
/* RFC 2047 2: an encoded word is at most 75 characters. */
#define ENCODED_WORD_MAX    75
#define ENCODED_WORD_PREFIX "=?UTF-8?"
/* "=?UTF-8?B?" and "?=" around the encoded text. */
#define ENCODED_WORD_OVERHEAD 12
/* RFC 2045 6.7 (5): encoded lines are at most 76 characters, the soft
 * line break's '=' included. */
#define QP_LINE_MAX 76
/* RFC 2045 6.8: base64 lines of at most 76 characters; 57 bytes make 76. */
#define BASE64_LINE_BYTES 57
/* Text lines longer than this are sent quoted-printable, so that every
 * line of a 7bit body also meets the 78 of RFC 5322. */
#define TEXT_7BIT_LINE_MAX 76
/* RFC 2231 continuations: characters of a parameter value per line. */
#define PARAM_CHUNK 60
/* "=_" cannot occur in quoted-printable or base64 text, so a boundary
 * holding it could only collide with 7bit text and header fields, which
 * are checked; 16 random bytes make a collision hopeless anyway. */
#define BOUNDARY_PREFIX	      "=_dijk_"
#define BOUNDARY_RANDOM_BYTES 16
#define BOUNDARY_LEN	      (sizeof(BOUNDARY_PREFIX) - 1 + 2 * BOUNDARY_RANDOM_BYTES)
/* Draws before giving up: only a broken random source needs a second. */
#define BOUNDARY_TRIES 16
/* Date offsets of RFC 5322 3.3 that mean something: within a day. */
#define MAX_DATE_OFFSET_MINUTES (24 * 60 - 1)

/* ---- character classes ---- */

/* RFC 5322 3.2.3 atext. */
static bool is_atext(uint8_t c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static bool is_printable_ascii(uint8_t c)
{
	return c >= 0x20 && c <= 0x7e;
}

/* Any C0 control or DEL: CR and LF would start a new header field, NUL
 * ends a C string early in some reader, and the rest have no business in
 * a header. TAB is refused too: harmless, but nothing needs it. */
static bool has_control(struct slice s)
{
	for (size_t i = 0; i < s.n; i++)
		if (s.p[i] < 0x20 || s.p[i] == 0x7f)
			return true;
	return false;
}

static bool has_8bit(struct slice s)
{
	for (size_t i = 0; i < s.n; i++)
		if (s.p[i] >= 0x80)
			return true;
	return false;
}

static bool contains(struct slice hay, const char *needle)
{
	/* An empty buffer's p may be NULL, which memmem must not get. */
	return hay.n > 0 &&
	       memmem(hay.p, hay.n, needle, strlen(needle)) != NULL;
}

/* Length of the UTF-8 sequence led by c; the text is known valid. */
static size_t utf8_char_len(uint8_t c)
{
	if (c < 0x80)
		return 1;
	if ((c & 0xe0) == 0xc0)
		return 2;
	if ((c & 0xf0) == 0xe0)
		return 3;
	return 4;
}

/* ---- addresses and ids ---- */

/* dot-atom-text (RFC 5322 3.2.3): atext runs joined by single dots. */
static bool dot_atom_valid(struct slice s)
{
	if (s.n == 0 || s.p[0] == '.' || s.p[s.n - 1] == '.')
		return false;
	for (size_t i = 0; i < s.n; i++) {
		if (s.p[i] == '.') {
			if (s.p[i - 1] == '.')
				return false;
		} else if (!is_atext(s.p[i])) {
			return false;
		}
	}
	return true;
}

/* quoted-string (RFC 5322 3.2.4) without folding: printable ASCII but
 * '"' and '\', or a quoted-pair; an empty one is refused. */
static bool quoted_local_valid(struct slice s)
{
	if (s.n < 3 || s.p[0] != '"' || s.p[s.n - 1] != '"')
		return false;
	for (size_t i = 1; i < s.n - 1; i++) {
		uint8_t c = s.p[i];
		if (c == '\\') {
			/* The pair must end before the closing quote. */
			if (++i >= s.n - 1 || !is_printable_ascii(s.p[i]))
				return false;
		} else if (c == '"' || !is_printable_ascii(c)) {
			return false;
		}
	}
	return true;
}

/* Letter-digit-hyphen labels (RFC 1035 2.3.1, RFC 5321 4.1.2). */
static bool domain_valid(struct slice s)
{
	size_t label = 0;
	for (size_t i = 0; i <= s.n; i++) {
		if (i == s.n || s.p[i] == '.') {
			if (label == 0 || label > 63 || s.p[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		uint8_t c = s.p[i];
		bool ldh = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			   (c >= '0' && c <= '9') || c == '-';
		if (!ldh || (label == 0 && c == '-'))
			return false;
		label++;
	}
	return true;
}

enum address_check {
	ADDRESS_OK,
	ADDRESS_INVALID,
	ADDRESS_NOT_ASCII,
};

static enum address_check address_check(const char *email)
{
	if (email == NULL)
		return ADDRESS_INVALID;
	struct slice s = slice_cstr(email);
	if (s.n > MIME_BUILD_MAX_ADDRESS || has_control(s))
		return ADDRESS_INVALID;
	if (has_8bit(s))
		return ADDRESS_NOT_ASCII;
	/* The last '@': a quoted local part may hold one, a domain never. */
	const char *at = strrchr(email, '@');
	if (at == NULL)
		return ADDRESS_INVALID;
	struct slice local = slice_make(email, (size_t)(at - email));
	struct slice domain = slice_cstr(at + 1);
	if (local.n > MIME_BUILD_MAX_LOCAL_PART || !domain_valid(domain))
		return ADDRESS_INVALID;
	if (!dot_atom_valid(local) && !quoted_local_valid(local))
		return ADDRESS_INVALID;
	return ADDRESS_OK;
}

bool mime_build_address_valid(const char *email)
{
	return address_check(email) == ADDRESS_OK;
}

/* A msg-id without its angle brackets (RFC 5322 3.6.4), read a little
 * wider, as real ids are: id-left is atext and dots in any order (the
 * obsolete local-part forms), id-right the same or a no-fold-literal. */
static bool message_id_valid(const char *id)
{
	if (id == NULL)
		return false;
	size_t n = strlen(id);
	if (n == 0 || n > MIME_BUILD_MAX_ID)
		return false;
	const char *at = strchr(id, '@');
	if (at == NULL || at == id || at[1] == '\0')
		return false;
	for (const char *p = id; p < at; p++)
		if (*p != '.' && !is_atext((uint8_t)*p))
			return false;
	const char *right = at + 1;
	size_t right_n = n - (size_t)(right - id);
	if (right[0] == '[') {
		if (right_n < 2 || right[right_n - 1] != ']')
			return false;
		for (size_t i = 1; i + 1 < right_n; i++) {
			uint8_t c = (uint8_t)right[i];
			/* dtext: printable but '[', ']' and '\'. */
			if (c < 33 || c > 126 || c == '[' || c == ']' ||
			    c == '\\')
				return false;
		}
		return true;
	}
	for (size_t i = 0; i < right_n; i++)
		if (right[i] != '.' && !is_atext((uint8_t)right[i]))
			return false;
	return true;
}

/* Content-IDs in real mail often lack the '@' RFC 2045 7 asks for
 * ("ii_k2x..."), so only what could break out of the angle brackets or
 * the header is refused. */
static bool content_id_valid(const char *cid)
{
	size_t n = strlen(cid);
	if (n == 0 || n > MIME_BUILD_MAX_ID)
		return false;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = (uint8_t)cid[i];
		if (c < 33 || c > 126 || strchr("()<>[]:;\\,\"", c) != NULL)
			return false;
	}
	return true;
}

/* ---- folded header lines ---- */

struct folder {
	struct buf *out;
	size_t line;  /* characters on the current line */
	size_t words; /* words written after the field name */
};

static void fold_start(struct folder *f, struct buf *out, const char *name)
{
	f->out = out;
	buf_append_cstr(out, name);
	buf_append(out, ":", 1);
	f->line = strlen(name) + 1;
	f->words = 0;
}

/* Appends a word (no CR or LF in it), after a space. The space becomes a
 * fold (CRLF SP) when the word would pass LINE_SOFT, except before the
 * first word: a field whose first line holds only its name confuses some
 * readers. Unfolding (removing the CRLF) gives the text back exactly. */
static void fold_word(struct folder *f, const void *p, size_t n)
{
	if (f->words > 0 && f->line + 1 + n > LINE_SOFT) {
		buf_append(f->out, "\r\n ", 3);
		f->line = 1;
	} else {
		buf_append(f->out, " ", 1);
		f->line++;
	}
	buf_append(f->out, p, n);
	f->line += n;
	f->words++;
}

/* Appends to the current word, with no space: the ';' of a parameter. */
static void fold_glue(struct folder *f, const char *s)
{
	size_t n = strlen(s);
	buf_append(f->out, s, n);
	f->line += n;
}

static void fold_end(struct folder *f)
{
	buf_append(f->out, "\r\n", 2);
}

/* Appends text after a space, split into words at single spaces. A space
 * followed by another stays inside the next word, so that a fold never
 * leaves a line of only white space and runs of spaces come back as they
 * were. */
static void fold_text(struct folder *f, struct slice s)
{
	size_t start = 0;
	for (size_t i = 0; i < s.n; i++) {
		if (s.p[i] == ' ' && i > start && i + 1 < s.n &&
		    s.p[i + 1] != ' ') {
			fold_word(f, s.p + start, i - start);
			start = i + 1;
		}
	}
	fold_word(f, s.p + start, s.n - start);
}

/* Longest run without a space: plain text with a longer one would make a
 * line that no fold can shorten. */
static size_t longest_word(struct slice s)
{
	size_t longest = 0, run = 0;
	for (size_t i = 0; i < s.n; i++) {
		run = s.p[i] == ' ' ? 0 : run + 1;
		if (run > longest)
			longest = run;
	}
	return longest;
}

/* ---- RFC 2047 encoded words ---- */

/* Characters a "Q" word may carry as they are anywhere, phrases included
 * (RFC 2047 5 (3)); space becomes '_'. */
static bool q_literal(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '!' || c == '*' || c == '+' ||
	       c == '-' || c == '/';
}

static size_t q_cost(uint8_t c)
{
	return q_literal(c) || c == ' ' ? 1 : 3;
}

static void q_put(struct buf *out, uint8_t c)
{
	static const char hex[] = "0123456789ABCDEF";
	if (c == ' ') {
		buf_append(out, "_", 1);
	} else if (q_literal(c)) {
		buf_append(out, &c, 1);
	} else {
		char e[3] = {'=', hex[c >> 4], hex[c & 15]};
		buf_append(out, e, 3);
	}
}

/* Writes s (valid UTF-8, not empty) as encoded words, each after a space
 * and filling what is left of its line, at most 75 characters, cut only
 * between characters (RFC 2047 5: a character is never split between
 * words). prefix is glued before the first word and suffix after the
 * last one (a quoted parameter value); suffix's room is kept in every
 * word, as the last is known only at the end. "Q" is chosen when it comes
 * out shorter than "B": mostly-ASCII text then stays readable. */
static void fold_encoded(struct folder *f, struct slice s, const char *prefix,
			 const char *suffix, struct buf *scratch)
{
	DIJK_ASSERT(s.n > 0);
	size_t q_total = 0;
	for (size_t i = 0; i < s.n; i++)
		q_total += q_cost(s.p[i]);
	bool q = q_total <= (s.n + 2) / 3 * 4;
	size_t suffix_n = strlen(suffix);
	/* The widest character: four bytes, each "=XX" or (base64) 8. */
	const size_t min_payload = 12;

	size_t i = 0;
	bool first = true;
	while (i < s.n) {
		size_t prefix_n = first ? strlen(prefix) : 0;
		size_t room = 0;
		if (f->line + 1 < LINE_SOFT)
			room = LINE_SOFT - f->line - 1;
		if (f->words > 0 && room < prefix_n + suffix_n +
						    ENCODED_WORD_OVERHEAD +
						    min_payload)
			room = LINE_SOFT - 1; /* fold_word will fold */
		if (room > ENCODED_WORD_MAX + prefix_n + suffix_n)
			room = ENCODED_WORD_MAX + prefix_n + suffix_n;
		size_t payload = min_payload;
		if (room >
		    prefix_n + suffix_n + ENCODED_WORD_OVERHEAD + min_payload)
			payload = room - prefix_n - suffix_n -
				  ENCODED_WORD_OVERHEAD;

		buf_reset(scratch);
		if (first)
			buf_append_cstr(scratch, prefix);
		buf_append_cstr(scratch, ENCODED_WORD_PREFIX);
		buf_append_cstr(scratch, q ? "Q?" : "B?");
		if (q) {
			size_t used = 0;
			while (i < s.n) {
				size_t len = utf8_char_len(s.p[i]);
				size_t cost = 0;
				for (size_t k = 0; k < len; k++)
					cost += q_cost(s.p[i + k]);
				if (used + cost > payload)
					break;
				for (size_t k = 0; k < len; k++)
					q_put(scratch, s.p[i + k]);
				used += cost;
				i += len;
			}
		} else {
			size_t max_bytes = payload / 4 * 3, bytes = 0;
			while (i + bytes < s.n) {
				size_t len = utf8_char_len(s.p[i + bytes]);
				if (bytes + len > max_bytes)
					break;
				bytes += len;
			}
			char encoded[BASE64_ENCODED_SIZE(ENCODED_WORD_MAX)];
			base64_encode(slice_make(s.p + i, bytes), encoded);
			buf_append_cstr(scratch, encoded);
			i += bytes;
		}
		buf_append(scratch, "?=", 2);
		if (i == s.n)
			buf_append_cstr(scratch, suffix);
		fold_word(f, scratch->p, scratch->n);
		first = false;
	}
}

/* How a piece of header text is written. */
enum text_form {
	FORM_PLAIN,   /* as it is */
	FORM_QUOTED,  /* as a quoted-string (display names only) */
	FORM_ENCODED, /* as RFC 2047 encoded words */
};

/* Non-ASCII text must be encoded; so must text holding "=?", which a
 * reader would take for the start of an encoded word, and text with a
 * word too long to fold. A display name that is not a plain phrase of
 * atoms (specials, dots, runs of spaces) is quoted. */
static enum text_form choose_form(struct slice s, bool phrase)
{
	if (has_8bit(s) || contains(s, "=?") ||
	    longest_word(s) > MAX_PLAIN_WORD)
		return FORM_ENCODED;
	if (!phrase)
		return FORM_PLAIN;
	if (s.p[0] == ' ' || s.p[s.n - 1] == ' ')
		return FORM_QUOTED;
	for (size_t i = 0; i < s.n; i++) {
		if (s.p[i] == ' ' ? s.p[i + 1] == ' ' : !is_atext(s.p[i]))
			return FORM_QUOTED;
	}
	return FORM_PLAIN;
}

/* ---- the builder ---- */

/* One body part as it will be written: a leaf holds its own MIME header
 * fields, the blank line and its encoded body; a multipart holds its
 * children and, once chosen, its boundary. */
struct entity {
	struct buf bytes;
	const char *multipart; /* the subtype, or NULL for a leaf */
	struct entity **children;
	size_t child_count;
	char boundary[BOUNDARY_LEN + 1];
};

struct builder {
	const struct mime_build *b;
	struct buf *out;
	size_t room;   /* what out may still take */
	size_t leaves; /* bytes held by leaves so far */
	struct entity *entities;
	size_t entity_count, entity_cap;
	struct buf scratch, scratch2;
	const char *error;
};

static int fail(struct builder *bl, const char *error)
{
	if (bl->error == NULL)
		bl->error = error;
	return -1;
}

/* The address fields, and what can be wrong in each. */
enum address_field {
	FIELD_FROM,
	FIELD_SENDER,
	FIELD_REPLY_TO,
	FIELD_TO,
	FIELD_CC,
	FIELD_BCC,
};

enum address_error {
	ERROR_ADDRESS_INVALID,
	ERROR_ADDRESS_NOT_ASCII,
	ERROR_NAME_CONTROL,
	ERROR_NAME_UTF8,
	ERROR_NAME_TOO_LONG,
};

/* Each field's messages, so that *error_r stays a static string. */
#define ADDRESS_ERRORS(field)                                               \
	{                                                                   \
		[ERROR_ADDRESS_INVALID] = field ": invalid address",        \
		[ERROR_ADDRESS_NOT_ASCII] = field                           \
			": non-ASCII address (SMTPUTF8 is not supported)",  \
		[ERROR_NAME_CONTROL] = field ": control character in name", \
		[ERROR_NAME_UTF8] = field ": name is not UTF-8",            \
		[ERROR_NAME_TOO_LONG] = field ": name too long",            \
	}

static const char *const address_errors[][5] = {
	[FIELD_FROM] = ADDRESS_ERRORS("from"),
	[FIELD_SENDER] = ADDRESS_ERRORS("sender"),
	[FIELD_REPLY_TO] = ADDRESS_ERRORS("reply-to"),
	[FIELD_TO] = ADDRESS_ERRORS("to"),
	[FIELD_CC] = ADDRESS_ERRORS("cc"),
	[FIELD_BCC] = ADDRESS_ERRORS("bcc"),
};

static const char *const address_field_names[] = {
	[FIELD_FROM] = "From",
	[FIELD_SENDER] = "Sender",
	[FIELD_REPLY_TO] = "Reply-To",
	[FIELD_TO] = "To",
	[FIELD_CC] = "Cc",
	[FIELD_BCC] = "Bcc",
};

static int address_valid(struct builder *bl, enum address_field field,
			 const struct mime_build_address *a)
{
	const char *const *errors = address_errors[field];
	switch (address_check(a->email)) {
	case ADDRESS_OK:
		break;
	case ADDRESS_INVALID:
		return fail(bl, errors[ERROR_ADDRESS_INVALID]);
	case ADDRESS_NOT_ASCII:
		return fail(bl, errors[ERROR_ADDRESS_NOT_ASCII]);
	}
	if (a->name == NULL)
		return 0;
	struct slice name = slice_cstr(a->name);
	if (has_control(name))
		return fail(bl, errors[ERROR_NAME_CONTROL]);
	if (!utf8_valid(name))
		return fail(bl, errors[ERROR_NAME_UTF8]);
	if (name.n > MIME_BUILD_MAX_NAME)
		return fail(bl, errors[ERROR_NAME_TOO_LONG]);
	return 0;
}

/* Checks a list of addresses and, when write, appends its field. */
static int write_addresses(struct builder *bl, enum address_field field,
			   const struct mime_build_address *list, size_t count,
			   bool write)
{
	for (size_t i = 0; i < count; i++)
		if (address_valid(bl, field, &list[i]) < 0)
			return -1;
	if (!write || count == 0)
		return 0;
	struct folder f;
	fold_start(&f, bl->out, address_field_names[field]);
	for (size_t i = 0; i < count; i++) {
		const struct mime_build_address *a = &list[i];
		bool named = a->name != NULL && a->name[0] != '\0';
		if (named) {
			struct slice name = slice_cstr(a->name);
			switch (choose_form(name, true)) {
			case FORM_PLAIN:
				fold_text(&f, name);
				break;
			case FORM_QUOTED:
				buf_reset(&bl->scratch2);
				buf_append(&bl->scratch2, "\"", 1);
				for (size_t k = 0; k < name.n; k++) {
					if (name.p[k] == '"' ||
					    name.p[k] == '\\')
						buf_append(&bl->scratch2, "\\",
							   1);
					buf_append(&bl->scratch2, &name.p[k],
						   1);
				}
				buf_append(&bl->scratch2, "\"", 1);
				fold_text(&f, buf_slice(&bl->scratch2));
				break;
			case FORM_ENCODED:
				fold_encoded(&f, name, "", "", &bl->scratch);
				break;
			}
		}
		buf_reset(&bl->scratch);
		buf_printf(&bl->scratch, named ? "<%s>%s" : "%s%s", a->email,
			   i + 1 < count ? "," : "");
		fold_word(&f, bl->scratch.p, bl->scratch.n);
	}
	fold_end(&f);
	return 0;
}

static int write_date(struct builder *bl)
{
	static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed",
					"Thu", "Fri", "Sat"};
	static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr",
					   "May", "Jun", "Jul", "Aug",
					   "Sep", "Oct", "Nov", "Dec"};
	int offset = bl->b->date_offset_minutes;
	if (offset < -MAX_DATE_OFFSET_MINUTES ||
	    offset > MAX_DATE_OFFSET_MINUTES)
		return fail(bl, "date: invalid offset");
	/* Far beyond year 9999 either way; keeps the addition below from
	 * overflowing. */
	const time_t far = (time_t)1 << 40;
	if (bl->b->date < -far || bl->b->date > far)
		return fail(bl, "date: out of range");
	/* The local time of the offset, then written with it. */
	struct tm tm;
	time_t local = bl->b->date + (time_t)offset * 60;
	if (gmtime_r(&local, &tm) == NULL || tm.tm_year < 0 ||
	    tm.tm_year > 9999 - 1900)
		return fail(bl, "date: out of range");
	int abs_offset = offset < 0 ? -offset : offset;
	buf_printf(bl->out,
		   "Date: %s, %d %s %04d %02d:%02d:%02d %c%02d%02d\r\n",
		   days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
		   tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
		   offset < 0 ? '-' : '+', abs_offset / 60, abs_offset % 60);
	return 0;
}

static int write_subject(struct builder *bl)
{
	const char *subject = bl->b->subject;
	if (subject == NULL || subject[0] == '\0')
		return 0;
	struct slice s = slice_cstr(subject);
	if (has_control(s))
		return fail(bl, "subject: control character");
	if (!utf8_valid(s))
		return fail(bl, "subject: not UTF-8");
	if (s.n > MIME_BUILD_MAX_SUBJECT)
		return fail(bl, "subject: too long");
	struct folder f;
	fold_start(&f, bl->out, "Subject");
	if (choose_form(s, false) == FORM_PLAIN)
		fold_text(&f, s);
	else
		fold_encoded(&f, s, "", "", &bl->scratch);
	fold_end(&f);
	return 0;
}

static int write_ids(struct builder *bl, const char *name,
		     const char *const *ids, size_t count, const char *error)
{
	for (size_t i = 0; i < count; i++)
		if (!message_id_valid(ids[i]))
			return fail(bl, error);
	if (count == 0)
		return 0;
	struct folder f;
	fold_start(&f, bl->out, name);
	for (size_t i = 0; i < count; i++) {
		buf_reset(&bl->scratch);
		buf_printf(&bl->scratch, "<%s>", ids[i]);
		fold_word(&f, bl->scratch.p, bl->scratch.n);
	}
	fold_end(&f);
	return 0;
}

/* Fields this module writes itself: an extra one of the same name would
 * be a second From or a Content-Type that lies about the body. */
static bool field_reserved(struct slice name)
{
	static const char *const reserved[] = {
		"Date",	      "From",	     "Sender",	   "Reply-To",
		"To",	      "Cc",	     "Bcc",	   "Subject",
		"Message-ID", "In-Reply-To", "References", "MIME-Version",
	};
	for (size_t i = 0; i < ARRAY_SIZE(reserved); i++)
		if (slice_eq_ci(name, reserved[i]))
			return true;
	return slice_prefix_ci(name, "Content-");
}

static int write_extra(struct builder *bl, const char *field)
{
	if (field == NULL)
		return fail(bl, "extra header: missing");
	const char *colon = strchr(field, ':');
	if (colon == NULL)
		return fail(bl, "extra header: no ':'");
	struct slice name = slice_make(field, (size_t)(colon - field));
	/* RFC 5322 3.6.8: printable ASCII but ':'. */
	for (size_t i = 0; i < name.n; i++)
		if (name.p[i] < 33 || name.p[i] > 126)
			return fail(bl, "extra header: invalid field name");
	if (name.n == 0 || name.n > MIME_BUILD_MAX_FIELD_NAME)
		return fail(bl, "extra header: invalid field name");
	if (field_reserved(name))
		return fail(bl, "extra header: field written by the builder");
	const char *v = colon + 1;
	while (*v == ' ')
		v++;
	struct slice value = slice_cstr(v);
	if (has_control(value))
		return fail(bl, "extra header: control character");
	if (has_8bit(value))
		return fail(bl, "extra header: value is not ASCII");
	if (value.n > MIME_BUILD_MAX_FIELD_VALUE ||
	    longest_word(value) > MAX_PLAIN_WORD)
		return fail(bl, "extra header: value too long");
	struct folder f;
	buf_reset(&bl->scratch);
	buf_append_slice(&bl->scratch, name);
	fold_start(&f, bl->out, buf_cstr(&bl->scratch));
	if (value.n > 0)
		fold_text(&f, value);
	fold_end(&f);
	return 0;
}

static int write_header(struct builder *bl)
{
	const struct mime_build *b = bl->b;
	if (write_date(bl) < 0)
		return -1;
	if (b->from_count > 1 && b->sender == NULL)
		return fail(bl, "sender: required with several from addresses");
	if (write_addresses(bl, FIELD_FROM, b->from, b->from_count, true) < 0 ||
	    write_addresses(bl, FIELD_SENDER, b->sender, b->sender ? 1 : 0,
			    true) < 0 ||
	    write_addresses(bl, FIELD_REPLY_TO, b->reply_to, b->reply_to_count,
			    true) < 0 ||
	    write_addresses(bl, FIELD_TO, b->to, b->to_count, true) < 0 ||
	    write_addresses(bl, FIELD_CC, b->cc, b->cc_count, true) < 0 ||
	    write_addresses(bl, FIELD_BCC, b->bcc, b->bcc_count,
			    b->include_bcc) < 0)
		return -1;
	if (write_subject(bl) < 0)
		return -1;
	if (b->message_id == NULL || b->message_id[0] == '\0')
		return fail(bl, "message-id: missing");
	if (write_ids(bl, "Message-ID", &b->message_id, 1,
		      "message-id: invalid") < 0 ||
	    write_ids(bl, "In-Reply-To", b->in_reply_to, b->in_reply_to_count,
		      "in-reply-to: invalid message id") < 0 ||
	    write_ids(bl, "References", b->references, b->references_count,
		      "references: invalid message id") < 0)
		return -1;
	for (size_t i = 0; i < b->extra_count; i++)
		if (write_extra(bl, b->extra_headers[i]) < 0)
			return -1;
	buf_append_cstr(bl->out, "MIME-Version: 1.0\r\n");
	return 0;
}

/* ---- leaves ---- */

static struct entity *entity_new(struct builder *bl)
{
	DIJK_ASSERT(bl->entity_count < bl->entity_cap);
	struct entity *e = &bl->entities[bl->entity_count++];
	memset(e, 0, sizeof(*e));
	buf_init(&e->bytes, bl->room);
	return e;
}

static struct entity *multipart_new(struct builder *bl, const char *subtype,
				    size_t max_children)
{
	struct entity *e = entity_new(bl);
	e->multipart = subtype;
	e->children = xcalloc(max_children, sizeof(*e->children));
	return e;
}

/* A leaf is done: count it against what out may take. */
static int leaf_done(struct builder *bl, struct entity *e)
{
	if (buf_overflowed(&e->bytes) || e->bytes.n > bl->room - bl->leaves)
		return fail(bl, "message too large");
	bl->leaves += e->bytes.n;
	return 0;
}

/* Where the line starting at i ends (its CR, LF, or the end), and where
 * the next one starts. */
static size_t line_end(struct slice s, size_t i, size_t *next_r)
{
	while (i < s.n && s.p[i] != '\r' && s.p[i] != '\n')
		i++;
	size_t next = i;
	if (next + 1 < s.n && s.p[next] == '\r' && s.p[next + 1] == '\n')
		next += 2; /* CRLF */
	else if (next < s.n)
		next++; /* a lone CR or LF */
	*next_r = next;
	return i;
}

/* 7bit only when every line could go through any relay as it is. */
static bool text_needs_qp(struct slice s)
{
	size_t i = 0;
	while (i < s.n) {
		size_t next, end = line_end(s, i, &next);
		if (end - i > TEXT_7BIT_LINE_MAX)
			return true;
		if (end > i && (s.p[end - 1] == ' ' || s.p[end - 1] == '\t'))
			return true;
		for (size_t k = i; k < end; k++)
			if (s.p[k] >= 0x80 ||
			    (s.p[k] < 0x20 && s.p[k] != '\t') || s.p[k] == 0x7f)
				return true;
		i = next;
	}
	return false;
}

static void text_put_7bit(struct slice s, struct buf *out)
{
	size_t i = 0;
	while (i < s.n) {
		size_t next, end = line_end(s, i, &next);
		buf_append(out, s.p + i, end - i);
		if (next > end)
			buf_append(out, "\r\n", 2);
		i = next;
	}
}

/* RFC 2045 6.7, line ends as hard breaks. White space at the end of a
 * line (or of the text) is encoded, as relays may strip it. */
static void text_put_qp(struct slice s, struct buf *out)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i = 0;
	while (i < s.n) {
		size_t next, end = line_end(s, i, &next);
		size_t line = 0;
		for (size_t k = i; k < end; k++) {
			uint8_t c = s.p[k];
			bool last = k + 1 == end;
			char token[3];
			size_t len = 1;
			if ((c > 32 && c < 127 && c != '=') ||
			    ((c == ' ' || c == '\t') && !last)) {
				token[0] = (char)c;
			} else {
				token[0] = '=';
				token[1] = hex[c >> 4];
				token[2] = hex[c & 15];
				len = 3;
			}
			/* Room for the soft break's '=' on every line. */
			if (line + len > QP_LINE_MAX - 1) {
				buf_append(out, "=\r\n", 3);
				line = 0;
			}
			buf_append(out, token, len);
			line += len;
		}
		if (next > end)
			buf_append(out, "\r\n", 2);
		i = next;
	}
}

/* A text/plain or text/html leaf. When it is the whole body (root) it
 * must end with a line end: SMTP would add one anyway, and a stored copy
 * should be what is sent. Quoted-printable adds a soft break there, which
 * keeps the text exactly. */
static int leaf_text(struct builder *bl, const char *subtype, const char *text,
		     const char *field, bool root, struct entity **entity_r)
{
	struct slice s = slice_cstr(text);
	if (!utf8_valid(s))
		return fail(bl, field);
	struct entity *e = entity_new(bl);
	bool qp = text_needs_qp(s);
	buf_printf(&e->bytes,
		   "Content-Type: text/%s; charset=utf-8\r\n"
		   "Content-Transfer-Encoding: %s\r\n\r\n",
		   subtype, qp ? "quoted-printable" : "7bit");
	if (qp)
		text_put_qp(s, &e->bytes);
	else
		text_put_7bit(s, &e->bytes);
	struct buf *b = &e->bytes;
	bool ended = s.n == 0 || s.p[s.n - 1] == '\r' || s.p[s.n - 1] == '\n';
	if (root && !ended)
		buf_append_cstr(b, qp ? "=\r\n" : "\r\n");
	*entity_r = e;
	return leaf_done(bl, e);
}

/* message/rfc822 may be sent as it is only when it is already mail: CRLF
 * line ends, no line over 998, no NUL (RFC 2046 5.2.1 forbids base64). */
static bool is_mail(const uint8_t *p, size_t n, bool *eight_bit_r)
{
	size_t line = 0;
	*eight_bit_r = false;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];
		if (c == '\r') {
			if (i + 1 >= n || p[i + 1] != '\n')
				return false;
			i++;
			line = 0;
			continue;
		}
		if (c == '\n' || c == '\0' || ++line > 998)
			return false;
		if (c >= 0x80)
			*eight_bit_r = true;
	}
	return true;
}

enum part_encoding {
	ENCODING_BASE64,
	ENCODING_7BIT,
	ENCODING_8BIT,
};

/* The Content-Type to send and how to encode the data: a type that does
 * not read as type/subtype becomes application/octet-stream, as do the
 * composite types, whose bodies may not be base64. */
static int part_type(struct builder *bl, const struct mime_build_part *part,
		     struct slice *type_r, enum part_encoding *encoding_r)
{
	static const char octet_stream[] = "application/octet-stream";
	*type_r = slice_cstr(octet_stream);
	*encoding_r = ENCODING_BASE64;
	if (part->type == NULL)
		return 0;
	struct slice t = slice_cstr(part->type);
	if (has_control(t))
		return fail(bl, "part: control character in type");
	const char *slash = strchr(part->type, '/');
	if (slash == NULL || t.n > 255)
		return 0;
	struct slice major = slice_make(t.p, (size_t)(slash - part->type));
	struct slice minor = slice_cstr(slash + 1);
	if (major.n == 0 || minor.n == 0)
		return 0;
	for (size_t i = 0; i < major.n; i++)
		if (!mime_is_token_char(major.p[i]))
			return 0;
	for (size_t i = 0; i < minor.n; i++)
		if (!mime_is_token_char(minor.p[i]))
			return 0;
	if (slice_eq_ci(major, "multipart"))
		return 0;
	if (slice_eq_ci(major, "message")) {
		bool eight_bit;
		if (slice_eq_ci(minor, "rfc822") &&
		    is_mail(part->data, part->size, &eight_bit)) {
			*encoding_r = eight_bit ? ENCODING_8BIT : ENCODING_7BIT;
			*type_r = t;
			return 0;
		}
		/* RFC 6532 3.5 allows message/global any encoding. */
		if (!slice_eq_ci(minor, "global"))
			return 0;
	}
	*type_r = t;
	return 0;
}

/* The file name to send: its last path component, or none. */
static int part_file_name(struct builder *bl,
			  const struct mime_build_part *part,
			  struct slice *name_r)
{
	*name_r = slice_make(NULL, 0);
	if (part->name == NULL)
		return 0;
	struct slice s = slice_cstr(part->name);
	if (has_control(s))
		return fail(bl, "part: control character in file name");
	if (!utf8_valid(s))
		return fail(bl, "part: file name is not UTF-8");
	size_t start = 0;
	for (size_t i = 0; i < s.n; i++)
		if (s.p[i] == '/' || s.p[i] == '\\')
			start = i + 1;
	struct slice base = slice_make(s.p + start, s.n - start);
	if (base.n > MIME_BUILD_MAX_FILE_NAME)
		return fail(bl, "part: file name too long");
	if (slice_eq_ci(base, ".") || slice_eq_ci(base, ".."))
		return 0;
	*name_r = base;
	return 0;
}

/* A file name that can go into a quoted-string as it is, understood by
 * every reader. */
static bool file_name_plain(struct slice name)
{
	for (size_t i = 0; i < name.n; i++)
		if (!is_printable_ascii(name.p[i]) || name.p[i] == '"' ||
		    name.p[i] == '\\')
			return false;
	return !contains(name, "=?");
}

/* RFC 2231 / RFC 5987 attr-char. */
static bool attr_char(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') ||
	       (c != 0 && strchr("!#$&+-.^_`|~", c) != NULL);
}

/* The RFC 2231 form of one character (a whole UTF-8 sequence): its
 * attr-chars as they are, other bytes as %XX. Returns its length. */
static size_t pct_char(const uint8_t *p, size_t len, char out[12])
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;
	for (size_t k = 0; k < len; k++) {
		if (attr_char(p[k])) {
			out[n++] = (char)p[k];
		} else {
			out[n++] = '%';
			out[n++] = hex[p[k] >> 4];
			out[n++] = hex[p[k] & 15];
		}
	}
	return n;
}

/* filename*=UTF-8''%.. (RFC 2231 4), on one line when it fits, else in
 * numbered pieces (RFC 2231 3). RFC 2231 would allow a piece to end
 * inside a character, but readers that decode each piece alone would
 * then show two broken ones: pieces end between characters. */
static void fold_file_name_2231(struct folder *f, struct slice name,
				struct buf *scratch)
{
	static const char charset[] = "UTF-8''";
	char e[12];
	size_t total = sizeof(charset) - 1;
	for (size_t i = 0; i < name.n;) {
		size_t len = utf8_char_len(name.p[i]);
		total += pct_char(name.p + i, len, e);
		i += len;
	}
	bool single = total <= PARAM_CHUNK;
	size_t i = 0;
	for (unsigned piece = 0; i < name.n; piece++) {
		buf_reset(scratch);
		if (single)
			buf_printf(scratch, "filename*=%s", charset);
		else
			buf_printf(scratch, "filename*%u*=%s", piece,
				   piece == 0 ? charset : "");
		size_t used = piece == 0 ? sizeof(charset) - 1 : 0;
		/* At least one character per piece, so that it ends. */
		while (i < name.n) {
			size_t len = utf8_char_len(name.p[i]);
			size_t n = pct_char(name.p + i, len, e);
			if (used > 0 && !single && used + n > PARAM_CHUNK)
				break;
			buf_append(scratch, e, n);
			used += n;
			i += len;
		}
		if (piece > 0)
			fold_glue(f, ";");
		fold_word(f, scratch->p, scratch->n);
	}
}

static void base64_put(const uint8_t *p, size_t n, struct buf *out)
{
	char line[BASE64_ENCODED_SIZE(BASE64_LINE_BYTES)];
	for (size_t i = 0; i < n; i += BASE64_LINE_BYTES) {
		size_t len =
			n - i < BASE64_LINE_BYTES ? n - i : BASE64_LINE_BYTES;
		if (i > 0)
			buf_append(out, "\r\n", 2);
		base64_encode(slice_make(p + i, len), line);
		buf_append_cstr(out, line);
		if (buf_overflowed(out))
			return;
	}
}

static int leaf_part(struct builder *bl, const struct mime_build_part *part,
		     struct entity **entity_r)
{
	struct slice type, name;
	enum part_encoding encoding;
	if (part_type(bl, part, &type, &encoding) < 0 ||
	    part_file_name(bl, part, &name) < 0)
		return -1;
	if (part->cid != NULL) {
		struct slice cid = slice_cstr(part->cid);
		if (has_control(cid))
			return fail(bl, "part: control character in cid");
		if (!content_id_valid(part->cid))
			return fail(bl, "part: invalid cid");
	}
	if (part->data == NULL && part->size > 0)
		return fail(bl, "part: no data");

	struct entity *e = entity_new(bl);
	struct folder f;
	bool plain = file_name_plain(name);
	buf_reset(&bl->scratch2);
	buf_append_slice(&bl->scratch2, type);
	fold_start(&f, &e->bytes, "Content-Type");
	fold_word(&f, bl->scratch2.p, bl->scratch2.n);
	if (name.n > 0) {
		fold_glue(&f, ";");
		if (plain) {
			buf_reset(&bl->scratch2);
			buf_append_cstr(&bl->scratch2, "name=\"");
			buf_append_slice(&bl->scratch2, name);
			buf_append_cstr(&bl->scratch2, "\"");
			fold_word(&f, bl->scratch2.p, bl->scratch2.n);
		} else {
			/* Not standard (RFC 2047 5 rules out parameters),
			 * but what readers without RFC 2231 understand. */
			fold_encoded(&f, name, "name=\"", "\"", &bl->scratch);
		}
	}
	fold_end(&f);

	fold_start(&f, &e->bytes, "Content-Disposition");
	fold_word(&f, part->is_inline ? "inline" : "attachment",
		  part->is_inline ? 6 : 10);
	if (name.n > 0) {
		fold_glue(&f, ";");
		if (plain) {
			buf_reset(&bl->scratch2);
			buf_append_cstr(&bl->scratch2, "filename=\"");
			buf_append_slice(&bl->scratch2, name);
			buf_append_cstr(&bl->scratch2, "\"");
			fold_word(&f, bl->scratch2.p, bl->scratch2.n);
		} else {
			fold_file_name_2231(&f, name, &bl->scratch);
		}
	}
	fold_end(&f);

	if (part->cid != NULL)
		buf_printf(&e->bytes, "Content-ID: <%s>\r\n", part->cid);
	static const char *const encodings[] = {
		[ENCODING_BASE64] = "base64",
		[ENCODING_7BIT] = "7bit",
		[ENCODING_8BIT] = "8bit",
	};
	buf_printf(&e->bytes, "Content-Transfer-Encoding: %s\r\n\r\n",
		   encodings[encoding]);
	if (encoding == ENCODING_BASE64)
		base64_put(part->data, part->size, &e->bytes);
	else if (part->size > 0)
		buf_append(&e->bytes, part->data, part->size);
	*entity_r = e;
	return leaf_done(bl, e);
}

/* ---- the tree and its boundaries ---- */

static bool part_related(const struct mime_build *b,
			 const struct mime_build_part *part)
{
	return b->html != NULL && part->is_inline && part->cid != NULL;
}

static int build_tree(struct builder *bl, struct entity **root_r)
{
	const struct mime_build *b = bl->b;
	size_t related = 0;
	for (size_t i = 0; i < b->part_count; i++)
		if (part_related(b, &b->parts[i]))
			related++;
	size_t mixed = b->part_count - related;
	bool alternative = b->text != NULL && b->html != NULL;
	bool root_leaf = b->part_count == 0 && !alternative;

	struct entity *text = NULL, *html = NULL;
	if (b->text != NULL &&
	    leaf_text(bl, "plain", b->text, "text: not UTF-8", root_leaf,
		      &text) < 0)
		return -1;
	if (b->html != NULL && leaf_text(bl, "html", b->html, "html: not UTF-8",
					 root_leaf, &html) < 0)
		return -1;
	if (text == NULL && html == NULL && b->part_count == 0)
		return leaf_text(bl, "plain", "", "", true, root_r);

	if (related > 0) {
		struct entity *m = multipart_new(bl, "related", related + 1);
		m->children[m->child_count++] = html;
		for (size_t i = 0; i < b->part_count; i++) {
			if (!part_related(b, &b->parts[i]))
				continue;
			if (leaf_part(bl, &b->parts[i],
				      &m->children[m->child_count++]) < 0)
				return -1;
		}
		html = m;
	}
	struct entity *body = text != NULL ? text : html;
	if (alternative) {
		body = multipart_new(bl, "alternative", 2);
		body->children[body->child_count++] = text;
		body->children[body->child_count++] = html;
	}
	if (mixed > 0) {
		struct entity *m = multipart_new(bl, "mixed", mixed + 1);
		if (body != NULL)
			m->children[m->child_count++] = body;
		for (size_t i = 0; i < b->part_count; i++) {
			if (part_related(b, &b->parts[i]))
				continue;
			if (leaf_part(bl, &b->parts[i],
				      &m->children[m->child_count++]) < 0)
				return -1;
		}
		body = m;
	}
	*root_r = body;
	return 0;
}

static void random_default(void *p, size_t n)
{
	randombytes_buf(p, n);
}

/* RFC 2046 5.1.1: a boundary must occur in none of the parts it
 * encloses. Every multipart's boundary is checked against every leaf
 * (more than needed, and simpler), and against the other boundaries,
 * which have its length: unequal, neither can hold the other. */
static int choose_boundaries(struct builder *bl)
{
	void (*fill_random)(void *, size_t) =
		bl->b->random != NULL ? bl->b->random : random_default;
	static const char hex[] = "0123456789abcdef";
	for (size_t m = 0; m < bl->entity_count; m++) {
		struct entity *e = &bl->entities[m];
		if (e->multipart == NULL)
			continue;
		bool clash = true;
		for (int tries = 0; clash && tries < BOUNDARY_TRIES; tries++) {
			uint8_t raw[BOUNDARY_RANDOM_BYTES];
			fill_random(raw, sizeof(raw));
			char *p = e->boundary;
			memcpy(p, BOUNDARY_PREFIX, sizeof(BOUNDARY_PREFIX) - 1);
			p += sizeof(BOUNDARY_PREFIX) - 1;
			for (size_t i = 0; i < sizeof(raw); i++) {
				*p++ = hex[raw[i] >> 4];
				*p++ = hex[raw[i] & 15];
			}
			*p = '\0';
			clash = false;
			for (size_t k = 0; !clash && k < bl->entity_count;
			     k++) {
				const struct entity *o = &bl->entities[k];
				if (o->multipart == NULL)
					clash = contains(buf_slice(&o->bytes),
							 e->boundary);
				else if (k < m)
					clash = strcmp(o->boundary,
						       e->boundary) == 0;
			}
		}
		if (clash)
			return fail(bl, "no boundary found");
	}
	return 0;
}

/* A multipart ends at its close delimiter, without a line end: that is
 * the next delimiter's (RFC 2046 5.1.1), or the message's last. */
static void write_entity(const struct entity *e, struct buf *out)
{
	if (e->multipart == NULL) {
		buf_append_slice(out, buf_slice(&e->bytes));
		return;
	}
	buf_printf(out,
		   "Content-Type: multipart/%s;\r\n boundary=\"%s\"\r\n\r\n",
		   e->multipart, e->boundary);
	for (size_t i = 0; i < e->child_count; i++) {
		buf_printf(out, "--%s\r\n", e->boundary);
		write_entity(e->children[i], out);
		buf_append(out, "\r\n", 2);
	}
	buf_printf(out, "--%s--", e->boundary);
}

int mime_build_message(const struct mime_build *b, struct buf *out,
		       const char **error_r)
{
	*error_r = NULL;
	if (buf_overflowed(out)) {
		*error_r = "message too large";
		return -1;
	}
	if (b->part_count > MIME_BUILD_MAX_PARTS) {
		*error_r = "too many parts";
		return -1;
	}
	size_t start = out->n;
	struct builder bl = {
		.b = b,
		.out = out,
		.room = out->max - out->n,
		/* Each part, the two text bodies and three multiparts. */
		.entity_cap = b->part_count + 5,
	};
	bl.entities = xcalloc(bl.entity_cap, sizeof(*bl.entities));
	buf_init(&bl.scratch, SIZE_MAX);
	buf_init(&bl.scratch2, SIZE_MAX);

	struct entity *root = NULL;
	if (write_header(&bl) == 0 && build_tree(&bl, &root) == 0 &&
	    choose_boundaries(&bl) == 0) {
		write_entity(root, out);
		if (root->multipart != NULL)
			buf_append(out, "\r\n", 2);
		if (buf_overflowed(out))
			fail(&bl, "message too large");
	}

	for (size_t i = 0; i < bl.entity_count; i++) {
		buf_free(&bl.entities[i].bytes);
		free(bl.entities[i].children);
	}
	free(bl.entities);
	buf_free(&bl.scratch);
	buf_free(&bl.scratch2);
	if (bl.error != NULL) {
		/* Nothing half-built stays behind. */
		out->n = start;
		out->overflowed = false;
		*error_r = bl.error;
		return -1;
	}
	return 0;
}
