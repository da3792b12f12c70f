/* parser.c: SMTP command lines, paths and parameters, DATA and BDAT bodies
 * (RFC 5321, RFC 3030, RFC 6531, RFC 1870, RFC 6152). Pure: see parser.h. */
#include "core/common.h"

#include "smtp/parser.h"

#include "core/utf8.h"

enum smtp_line_result smtp_find_line(struct slice in, size_t max, size_t *len_r)
{
	size_t limit = in.n < max ? in.n : max;
	for (size_t i = 0; i < limit; i++) {
		if (in.p[i] == '\n')
			return SMTP_LINE_BARE;
		if (in.p[i] != '\r')
			continue;
		if (i + 2 > max)
			return SMTP_LINE_TOO_LONG;
		if (i + 1 == in.n)
			return SMTP_LINE_NEED_MORE;
		if (in.p[i + 1] != '\n')
			return SMTP_LINE_BARE;
		*len_r = i + 2;
		return SMTP_LINE_OK;
	}
	if (in.n >= max)
		return SMTP_LINE_TOO_LONG;
	return SMTP_LINE_NEED_MORE;
}

static bool is_alnum(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

/* The atext of RFC 5322 less '%' (the percent hack), '`' and '|', which no
 * real address needs and which only ever appear in attacks. */
static bool is_local_char(uint8_t c)
{
	return is_alnum(c) || c >= 0x80 ||
	       strchr("!#$&'*+-/=?^_{}~", c) != NULL;
}

static bool valid_dot_string(struct slice s)
{
	if (s.n == 0 || s.p[0] == '.' || s.p[s.n - 1] == '.')
		return false;
	for (size_t i = 0; i < s.n; i++) {
		if (s.p[i] == '.') {
			if (s.p[i - 1] == '.')
				return false;
		} else if (!is_local_char(s.p[i])) {
			return false;
		}
	}
	return true;
}

static bool valid_quoted_local(struct slice s)
{
	if (s.n < 2 || s.p[0] != '"' || s.p[s.n - 1] != '"')
		return false;
	for (size_t i = 1; i + 1 < s.n; i++) {
		uint8_t c = s.p[i];
		if (c == '\\') {
			i++;
			if (i + 1 >= s.n || s.p[i] < 0x20 || s.p[i] == 0x7f)
				return false;
			c = s.p[i];
		} else if (c == '"') {
			return false;
		}
		/* A quoted '@' or '%' hides a second address. */
		if (c < 0x20 || c == 0x7f || c == '@' || c == '%' || c == '`' ||
		    c == '|')
			return false;
	}
	return true;
}

static bool valid_domain(struct slice d)
{
	if (d.n == 0 || d.n > SMTP_MAX_DOMAIN)
		return false;
	if (d.p[0] == '[') {
		/* Address literal: [1.2.3.4] or [IPv6:...]. */
		if (d.n < 3 || d.p[d.n - 1] != ']')
			return false;
		for (size_t i = 1; i + 1 < d.n; i++) {
			uint8_t c = d.p[i];
			if (!is_alnum(c) && c != '.' && c != ':')
				return false;
		}
		return true;
	}
	size_t label = 0;
	for (size_t i = 0; i < d.n; i++) {
		uint8_t c = d.p[i];
		if (c == '.') {
			if (label == 0 || d.p[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!is_alnum(c) && c != '-' && c < 0x80)
			return false;
		if (c == '-' && label == 0)
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0 && d.p[d.n - 1] != '-';
}

int smtp_parse_path(struct slice path, bool allow_null,
		    struct smtp_address *address_r, const char **reply_r)
{
	memset(address_r, 0, sizeof(*address_r));
	if (path.n < 2 || path.p[0] != '<' || path.p[path.n - 1] != '>') {
		*reply_r = "501 5.1.7 Address must be enclosed in <>";
		return -1;
	}
	struct slice inner = slice_make(path.p + 1, path.n - 2);
	if (inner.n == 0) {
		if (!allow_null) {
			*reply_r = "501 5.1.3 Empty address not allowed here";
			return -1;
		}
		address_r->null_path = true;
		return 0;
	}
	if (inner.n > SMTP_MAX_PATH) {
		*reply_r = "501 5.1.3 Address too long";
		return -1;
	}
	if (inner.p[0] == '@') {
		*reply_r = "501 5.1.3 Source routes are not accepted";
		return -1;
	}
	if (!utf8_valid(inner)) {
		*reply_r = "501 5.6.7 Address is not valid UTF-8";
		return -1;
	}
	/* The local part ends at the last '@' outside quotes; a quoted local
	 * part may not contain '@' at all (checked below). */
	size_t at = inner.n;
	if (inner.p[0] == '"') {
		size_t i = 1;
		while (i < inner.n && inner.p[i] != '"')
			i += inner.p[i] == '\\' ? 2 : 1;
		if (i + 1 < inner.n && inner.p[i + 1] == '@')
			at = i + 1;
	} else {
		const uint8_t *a = memchr(inner.p, '@', inner.n);
		if (a != NULL)
			at = (size_t)(a - inner.p);
	}
	if (at == inner.n) {
		*reply_r = "501 5.1.3 Address must have a domain";
		return -1;
	}
	struct slice local = slice_make(inner.p, at);
	struct slice domain = slice_make(inner.p + at + 1, inner.n - at - 1);
	if (local.n == 0 || local.n > SMTP_MAX_LOCAL_PART ||
	    !(valid_dot_string(local) || valid_quoted_local(local))) {
		*reply_r = "501 5.1.3 Bad address syntax";
		return -1;
	}
	if (!valid_domain(domain)) {
		*reply_r = "501 5.1.2 Bad domain syntax";
		return -1;
	}
	address_r->local = local;
	address_r->domain = domain;
	for (size_t i = 0; i < inner.n; i++)
		if (inner.p[i] >= 0x80)
			address_r->utf8 = true;
	return 0;
}

/* Parses a decimal number of at most 20 digits without overflow. */
static int parse_decimal(struct slice s, uint64_t *r)
{
	if (s.n == 0 || s.n > 20)
		return -1;
	uint64_t n = 0;
	for (size_t i = 0; i < s.n; i++) {
		if (s.p[i] < '0' || s.p[i] > '9')
			return -1;
		unsigned d = (unsigned)(s.p[i] - '0');
		if (n > (UINT64_MAX - d) / 10)
			return -1;
		n = n * 10 + d;
	}
	*r = n;
	return 0;
}

/* Splits off the next space-separated word of *rest. */
static struct slice next_word(struct slice *rest)
{
	size_t i = 0;
	while (i < rest->n && rest->p[i] == ' ')
		i++;
	size_t start = i;
	while (i < rest->n && rest->p[i] != ' ')
		i++;
	struct slice w = slice_make(rest->p + start, i - start);
	*rest = slice_make(rest->p + i, rest->n - i);
	return w;
}

static bool only_spaces(struct slice s)
{
	for (size_t i = 0; i < s.n; i++)
		if (s.p[i] != ' ')
			return false;
	return true;
}

static enum smtp_parse_result parse_mail_params(struct slice rest,
						struct smtp_command *cmd,
						const char **reply_r)
{
	for (;;) {
		struct slice p = next_word(&rest);
		if (p.n == 0)
			return SMTP_PARSE_OK;
		const uint8_t *eq = memchr(p.p, '=', p.n);
		struct slice key = eq ? slice_make(p.p, (size_t)(eq - p.p)) : p;
		struct slice value = eq ? slice_make(eq + 1, p.n - key.n - 1)
					: slice_make(p.p + p.n, 0);
		if (slice_eq_ci(key, "SIZE") && eq != NULL) {
			if (parse_decimal(value, &cmd->size) != 0) {
				*reply_r = "501 5.5.4 Bad SIZE value";
				return SMTP_PARSE_SYNTAX;
			}
			cmd->has_size = true;
		} else if (slice_eq_ci(key, "BODY") && eq != NULL) {
			if (slice_eq_ci(value, "7BIT")) {
				cmd->body = SMTP_BODY_7BIT;
			} else if (slice_eq_ci(value, "8BITMIME")) {
				cmd->body = SMTP_BODY_8BITMIME;
			} else if (slice_eq_ci(value, "BINARYMIME")) {
				cmd->body = SMTP_BODY_BINARYMIME;
			} else {
				*reply_r = "501 5.5.4 Bad BODY value";
				return SMTP_PARSE_SYNTAX;
			}
		} else if (slice_eq_ci(key, "SMTPUTF8") && eq == NULL) {
			cmd->smtputf8 = true;
		} else if (slice_eq_ci(key, "AUTH") && eq != NULL) {
			/* RFC 4954 5: accepted and not trusted. */
		} else {
			*reply_r = "555 5.5.4 Unsupported parameter";
			return SMTP_PARSE_SYNTAX;
		}
	}
}

/* Takes "FROM:" or "TO:" then the path, with an optional space between
 * (some clients send one), then parameters. */
static enum smtp_parse_result parse_mail_rcpt(struct slice args,
					      const char *keyword,
					      struct smtp_command *cmd,
					      const char **reply_r)
{
	size_t kn = strlen(keyword);
	if (!slice_prefix_ci(args, keyword)) {
		*reply_r = cmd->verb == SMTP_VERB_MAIL
				   ? "501 5.5.4 Syntax: MAIL FROM:<address>"
				   : "501 5.5.4 Syntax: RCPT TO:<address>";
		return SMTP_PARSE_SYNTAX;
	}
	struct slice rest = slice_make(args.p + kn, args.n - kn);
	while (rest.n > 0 && rest.p[0] == ' ')
		rest = slice_make(rest.p + 1, rest.n - 1);
	/* The path ends at the first '>' not inside quotes. */
	size_t end = 0;
	bool quoted = false;
	if (rest.n == 0 || rest.p[0] != '<') {
		*reply_r = "501 5.1.7 Address must be enclosed in <>";
		return SMTP_PARSE_SYNTAX;
	}
	for (end = 1; end < rest.n; end++) {
		uint8_t c = rest.p[end];
		if (quoted && c == '\\') {
			end++;
			continue;
		}
		if (c == '"')
			quoted = !quoted;
		else if (c == '>' && !quoted)
			break;
	}
	if (end >= rest.n) {
		*reply_r = "501 5.1.7 Address must be enclosed in <>";
		return SMTP_PARSE_SYNTAX;
	}
	struct slice path = slice_make(rest.p, end + 1);
	if (smtp_parse_path(path, cmd->verb == SMTP_VERB_MAIL, &cmd->address,
			    reply_r) != 0)
		return SMTP_PARSE_SYNTAX;
	rest = slice_make(rest.p + end + 1, rest.n - end - 1);
	if (rest.n > 0 && rest.p[0] != ' ') {
		*reply_r = "501 5.5.4 Space expected after the address";
		return SMTP_PARSE_SYNTAX;
	}
	if (cmd->verb == SMTP_VERB_RCPT) {
		if (!only_spaces(rest)) {
			*reply_r = "555 5.5.4 Unsupported parameter";
			return SMTP_PARSE_SYNTAX;
		}
		return SMTP_PARSE_OK;
	}
	return parse_mail_params(rest, cmd, reply_r);
}

static bool printable_word(struct slice w)
{
	if (w.n == 0)
		return false;
	for (size_t i = 0; i < w.n; i++)
		if (w.p[i] <= 0x20 || w.p[i] == 0x7f)
			return false;
	return true;
}

static const struct {
	const char *name;
	enum smtp_verb verb;
} verbs[] = {
	{"HELO", SMTP_VERB_HELO},	  {"EHLO", SMTP_VERB_EHLO},
	{"MAIL", SMTP_VERB_MAIL},	  {"RCPT", SMTP_VERB_RCPT},
	{"DATA", SMTP_VERB_DATA},	  {"BDAT", SMTP_VERB_BDAT},
	{"RSET", SMTP_VERB_RSET},	  {"NOOP", SMTP_VERB_NOOP},
	{"QUIT", SMTP_VERB_QUIT},	  {"HELP", SMTP_VERB_HELP},
	{"VRFY", SMTP_VERB_VRFY},	  {"EXPN", SMTP_VERB_EXPN},
	{"STARTTLS", SMTP_VERB_STARTTLS}, {"AUTH", SMTP_VERB_AUTH},
};

enum smtp_parse_result smtp_parse_command(struct slice line,
					  struct smtp_command *cmd,
					  const char **reply_r)
{
	memset(cmd, 0, sizeof(*cmd));
	for (size_t i = 0; i < line.n; i++) {
		if (line.p[i] == '\0' || line.p[i] == '\r' ||
		    line.p[i] == '\n') {
			*reply_r = "500 5.5.2 Control character in command";
			return SMTP_PARSE_UNKNOWN;
		}
	}
	size_t vn = 0;
	while (vn < line.n && line.p[vn] != ' ')
		vn++;
	struct slice verb = slice_make(line.p, vn);
	bool found = false;
	for (size_t i = 0; i < ARRAY_SIZE(verbs); i++) {
		if (slice_eq_ci(verb, verbs[i].name)) {
			cmd->verb = verbs[i].verb;
			found = true;
			break;
		}
	}
	if (!found) {
		*reply_r = "500 5.5.2 Command not recognized";
		return SMTP_PARSE_UNKNOWN;
	}
	struct slice args = slice_make(line.p + vn, line.n - vn);
	if (args.n > 0)
		args = slice_make(args.p + 1, args.n - 1);
	/* Trailing spaces are common and harmless. */
	while (args.n > 0 && args.p[args.n - 1] == ' ')
		args.n--;

	switch (cmd->verb) {
	case SMTP_VERB_HELO:
	case SMTP_VERB_EHLO: {
		struct slice rest = args;
		struct slice name = next_word(&rest);
		if (!printable_word(name)) {
			*reply_r = cmd->verb == SMTP_VERB_EHLO
					   ? "501 5.5.4 Syntax: EHLO hostname"
					   : "501 5.5.4 Syntax: HELO hostname";
			return SMTP_PARSE_SYNTAX;
		}
		cmd->arg = name;
		return SMTP_PARSE_OK;
	}
	case SMTP_VERB_MAIL:
		return parse_mail_rcpt(args, "FROM:", cmd, reply_r);
	case SMTP_VERB_RCPT:
		return parse_mail_rcpt(args, "TO:", cmd, reply_r);
	case SMTP_VERB_DATA:
	case SMTP_VERB_RSET:
	case SMTP_VERB_QUIT:
	case SMTP_VERB_STARTTLS:
		if (args.n != 0) {
			*reply_r = "501 5.5.4 No parameters allowed";
			return SMTP_PARSE_SYNTAX;
		}
		return SMTP_PARSE_OK;
	case SMTP_VERB_NOOP:
	case SMTP_VERB_HELP:
	case SMTP_VERB_VRFY:
	case SMTP_VERB_EXPN:
		cmd->arg = args;
		if ((cmd->verb == SMTP_VERB_VRFY ||
		     cmd->verb == SMTP_VERB_EXPN) &&
		    args.n == 0) {
			*reply_r = "501 5.5.4 Argument required";
			return SMTP_PARSE_SYNTAX;
		}
		return SMTP_PARSE_OK;
	case SMTP_VERB_BDAT: {
		struct slice rest = args;
		struct slice size = next_word(&rest);
		struct slice last = next_word(&rest);
		if (parse_decimal(size, &cmd->chunk_size) != 0 ||
		    (last.n > 0 && !slice_eq_ci(last, "LAST")) ||
		    !only_spaces(rest)) {
			*reply_r = "501 5.5.4 Syntax: BDAT size [LAST]";
			return SMTP_PARSE_SYNTAX;
		}
		cmd->last = last.n > 0;
		return SMTP_PARSE_OK;
	}
	case SMTP_VERB_AUTH: {
		struct slice rest = args;
		struct slice mech = next_word(&rest);
		struct slice initial = next_word(&rest);
		if (!printable_word(mech) || !only_spaces(rest)) {
			*reply_r =
				"501 5.5.4 Syntax: AUTH mechanism [initial-response]";
			return SMTP_PARSE_SYNTAX;
		}
		cmd->arg = mech;
		if (initial.n > 0) {
			cmd->has_initial_response = true;
			cmd->initial_response = initial;
		}
		return SMTP_PARSE_OK;
	}
	}
	dijk_panic("smtp_parse_command: verb %d not handled", cmd->verb);
}

enum {
	DATA_LINE_START,
	DATA_DOT,
	DATA_DOT_CR,
	DATA_IN_LINE,
	DATA_CR,
};

void smtp_data_reader_init(struct smtp_data_reader *r)
{
	memset(r, 0, sizeof(*r));
	r->state = DATA_LINE_START;
}

static void data_error(struct smtp_data_reader *r, enum smtp_data_error e)
{
	if (r->error == SMTP_DATA_ERROR_NONE)
		r->error = e;
}

static void data_emit(struct smtp_data_reader *r, struct buf *out,
		      const uint8_t *p, size_t n)
{
	r->total += n;
	if (r->error != SMTP_DATA_ERROR_NONE)
		return;
	if (!buf_append(out, p, n))
		data_error(r, SMTP_DATA_ERROR_TOO_BIG);
}

bool smtp_data_feed(struct smtp_data_reader *r, struct slice in,
		    struct buf *out, size_t *consumed_r)
{
	size_t i = 0;
	while (i < in.n) {
		uint8_t c = in.p[i];
		switch (r->state) {
		case DATA_LINE_START:
			r->line_len = 0;
			if (c == '.') {
				r->state = DATA_DOT;
				i++;
				continue;
			}
			r->state = DATA_IN_LINE;
			continue;
		case DATA_DOT:
			if (c == '\r') {
				r->state = DATA_DOT_CR;
				i++;
				continue;
			}
			/* Dot stuffing: the leading dot is dropped. */
			r->state = DATA_IN_LINE;
			continue;
		case DATA_DOT_CR:
			if (c == '\n') {
				*consumed_r = i + 1;
				return true;
			}
			/* "." then a bare CR: keep the CR as content. */
			data_error(r, SMTP_DATA_ERROR_BARE_LINE_END);
			r->state = DATA_IN_LINE;
			continue;
		case DATA_IN_LINE: {
			/* Fast path: a run of ordinary octets. */
			size_t start = i;
			while (i < in.n && in.p[i] != '\r' && in.p[i] != '\n')
				i++;
			size_t run = i - start;
			if (run > 0) {
				r->line_len += run;
				if (r->line_len > SMTP_MAX_TEXT_LINE)
					data_error(
						r,
						SMTP_DATA_ERROR_LINE_TOO_LONG);
				data_emit(r, out, in.p + start, run);
				continue;
			}
			if (c == '\n') {
				data_error(r, SMTP_DATA_ERROR_BARE_LINE_END);
				r->line_len = 0;
				i++;
				continue;
			}
			r->state = DATA_CR;
			i++;
			continue;
		}
		case DATA_CR:
			if (c == '\n') {
				data_emit(r, out, (const uint8_t *)"\r\n", 2);
				r->state = DATA_LINE_START;
				i++;
				continue;
			}
			data_error(r, SMTP_DATA_ERROR_BARE_LINE_END);
			r->state = DATA_IN_LINE;
			continue;
		}
	}
	*consumed_r = in.n;
	return false;
}

void smtp_bdat_checker_init(struct smtp_bdat_checker *c)
{
	memset(c, 0, sizeof(*c));
}

static void bdat_error(struct smtp_bdat_checker *c, enum smtp_data_error e)
{
	if (c->error == SMTP_DATA_ERROR_NONE)
		c->error = e;
}

void smtp_bdat_check(struct smtp_bdat_checker *c, struct slice chunk)
{
	for (size_t i = 0; i < chunk.n; i++) {
		uint8_t b = chunk.p[i];
		if (c->pending_cr) {
			c->pending_cr = false;
			if (b == '\n') {
				c->line_len = 0;
				continue;
			}
			bdat_error(c, SMTP_DATA_ERROR_BARE_LINE_END);
		}
		if (b == '\r') {
			c->pending_cr = true;
		} else if (b == '\n') {
			bdat_error(c, SMTP_DATA_ERROR_BARE_LINE_END);
			c->line_len = 0;
		} else if (++c->line_len > SMTP_MAX_TEXT_LINE) {
			bdat_error(c, SMTP_DATA_ERROR_LINE_TOO_LONG);
		}
	}
}

void smtp_bdat_finish(struct smtp_bdat_checker *c)
{
	if (c->pending_cr)
		bdat_error(c, SMTP_DATA_ERROR_BARE_LINE_END);
}
