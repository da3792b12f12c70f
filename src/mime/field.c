/* field.c: header fields with a grammar of their own: RFC 5322 dates
 * (with the obsolete forms of its section 4.3), message ids for
 * THREAD=REFERENCES, and the RFC 5256 base subject for SORT and THREAD.
 * Pure functions over the bytes they are given. */
#include "core/common.h"

#include "mime/mime.h"
#include "mime/mime_internal.h"

#include <strings.h>

/* ---- dates ---- */

static bool is_alpha(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

/* Reads digits at *pos (at most max of them); returns how many. */
static size_t read_number(struct slice s, size_t *pos, size_t max,
			  int64_t *value_r)
{
	size_t n = 0;
	int64_t v = 0;
	while (*pos < s.n && is_digit(s.p[*pos]) && n < max) {
		v = v * 10 + (s.p[*pos] - '0');
		(*pos)++;
		n++;
	}
	*value_r = v;
	return n;
}

static struct slice read_word(struct slice s, size_t *pos)
{
	size_t start = *pos;
	while (*pos < s.n && is_alpha(s.p[*pos]))
		(*pos)++;
	return slice_make(s.p + start, *pos - start);
}

static int month_number(struct slice word)
{
	static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
	if (word.n < 3)
		return -1;
	for (int m = 0; m < 12; m++) {
		if (strncasecmp((const char *)word.p, months + 3 * m, 3) == 0)
			return m + 1;
	}
	return -1;
}

/* Zone names of RFC 5322 4.3, as minutes east of UTC. Military letters
 * and unknown names mean -0000: nothing is known of the zone. */
static int obsolete_zone(struct slice word)
{
	static const struct {
		const char *name;
		int minutes;
	} zones[] = {
		{"UT", 0},	  {"GMT", 0},	    {"UTC", 0},
		{"EST", -5 * 60}, {"EDT", -4 * 60}, {"CST", -6 * 60},
		{"CDT", -5 * 60}, {"MST", -7 * 60}, {"MDT", -6 * 60},
		{"PST", -8 * 60}, {"PDT", -7 * 60},
	};
	for (size_t i = 0; i < ARRAY_SIZE(zones); i++) {
		if (slice_eq_ci(word, zones[i].name))
			return zones[i].minutes;
	}
	return 0;
}

static bool leap_year(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 1970-01-01 to the given civil date (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int64_t mime_parse_date(struct slice s)
{
	static const int month_days[12] = {31, 28, 31, 30, 31, 30,
					   31, 31, 30, 31, 30, 31};
	size_t pos = mime_skip_cfws(s, 0);
	/* [day-of-week ","]; the comma is often missing. */
	if (pos < s.n && is_alpha(s.p[pos])) {
		struct slice dow = read_word(s, &pos);
		if (dow.n < 3)
			return -1;
		pos = mime_skip_cfws(s, pos);
		if (pos < s.n && s.p[pos] == ',')
			pos = mime_skip_cfws(s, pos + 1);
	}
	int64_t day, year, hour, minute, second = 0;
	if (read_number(s, &pos, 2, &day) == 0)
		return -1;
	pos = mime_skip_cfws(s, pos);
	/* "1-Jul-2003" is seen too. */
	if (pos < s.n && s.p[pos] == '-')
		pos++;
	int month = month_number(read_word(s, &pos));
	if (month < 0)
		return -1;
	pos = mime_skip_cfws(s, pos);
	if (pos < s.n && s.p[pos] == '-')
		pos++;
	size_t digits = read_number(s, &pos, 9, &year);
	if (digits < 2)
		return -1;
	if (digits == 2)
		year += year < 50 ? 2000 : 1900;
	else if (digits == 3)
		year += 1900;
	pos = mime_skip_cfws(s, pos);
	if (read_number(s, &pos, 2, &hour) == 0)
		return -1;
	pos = mime_skip_cfws(s, pos);
	if (pos >= s.n || s.p[pos] != ':')
		return -1;
	pos = mime_skip_cfws(s, pos + 1);
	if (read_number(s, &pos, 2, &minute) != 2)
		return -1;
	pos = mime_skip_cfws(s, pos);
	if (pos < s.n && s.p[pos] == ':') {
		pos = mime_skip_cfws(s, pos + 1);
		if (read_number(s, &pos, 2, &second) != 2)
			return -1;
		pos = mime_skip_cfws(s, pos);
	}
	int zone = 0; /* minutes east of UTC; a missing zone is -0000 */
	if (pos < s.n && (s.p[pos] == '+' || s.p[pos] == '-')) {
		int sign = s.p[pos] == '-' ? -1 : 1;
		int64_t hhmm;
		pos++;
		if (read_number(s, &pos, 4, &hhmm) != 4 || hhmm % 100 > 59)
			return -1;
		zone = sign * (int)(hhmm / 100 * 60 + hhmm % 100);
	} else if (pos < s.n && is_alpha(s.p[pos])) {
		zone = obsolete_zone(read_word(s, &pos));
	}
	if (year < 1900 || year > 9999 || day < 1 || hour > 23 || minute > 59 ||
	    second > 60)
		return -1;
	int max_day = month_days[month - 1] + (month == 2 && leap_year(year));
	if (day > max_day)
		return -1;
	return days_from_civil(year, month, day) * 86400 + hour * 3600 +
	       minute * 60 + second - (int64_t)zone * 60;
}

/* ---- message ids ---- */

void mime_parse_message_ids(struct slice s, struct buf *out)
{
	size_t pos = 0;
	while (pos < s.n) {
		uint8_t c = s.p[pos];
		if (c == '(') {
			pos = mime_skip_cfws(s, pos);
			continue;
		}
		if (c == '"') {
			/* A quoted phrase ("Your message of ..."). */
			size_t q = pos + 1;
			while (q < s.n && s.p[q] != '"')
				q += s.p[q] == '\\' ? 2 : 1;
			pos = q < s.n ? q + 1 : s.n;
			continue;
		}
		if (c != '<') {
			pos++;
			continue;
		}
		size_t start = ++pos;
		while (pos < s.n && s.p[pos] != '>' && s.p[pos] != '<')
			pos++;
		if (pos >= s.n)
			break;
		if (s.p[pos] == '<')
			continue; /* "<a <b@c>": the inner one */
		/* Folding inside an id is dropped; other whitespace or
		 * controls mean it is no id. */
		size_t mark = out->n;
		bool ok = pos > start;
		for (size_t i = start; i < pos && ok; i++) {
			uint8_t b = s.p[i];
			if (b == '\r' || b == '\n')
				continue;
			if (b <= 0x20 || b == 0x7f)
				ok = false;
			else
				buf_append(out, &b, 1);
		}
		if (ok && out->n > mark)
			buf_append(out, "", 1);
		else
			out->n = mark;
		pos++;
	}
}

/* ---- RFC 5256 base subject ---- */

static bool ci_at(const uint8_t *p, size_t n, size_t pos, const char *word)
{
	size_t len = strlen(word);
	return pos + len <= n &&
	       strncasecmp((const char *)p + pos, word, len) == 0;
}

/* subj-blob = "[" *BLOBCHAR "]" *WSP; returns its end, or pos. */
static size_t match_blob(const uint8_t *p, size_t n, size_t pos)
{
	if (pos >= n || p[pos] != '[')
		return pos;
	size_t i = pos + 1;
	while (i < n && p[i] != ']' && p[i] != '[')
		i++;
	if (i >= n || p[i] != ']')
		return pos;
	i++;
	while (i < n && p[i] == ' ')
		i++;
	return i;
}

/* subj-leader = (*subj-blob subj-refwd); returns its end, or pos.
 * subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":" */
static size_t match_leader(const uint8_t *p, size_t n, size_t pos)
{
	size_t i = pos, next;
	while ((next = match_blob(p, n, i)) != i)
		i = next;
	if (ci_at(p, n, i, "re"))
		i += 2;
	else if (ci_at(p, n, i, "fwd"))
		i += 3;
	else if (ci_at(p, n, i, "fw"))
		i += 2;
	else
		return pos;
	while (i < n && p[i] == ' ')
		i++;
	i = match_blob(p, n, i);
	if (i < n && p[i] == ':')
		return i + 1;
	return pos;
}

/* The base subject into out; true when the subject marks a reply or a
 * forward (RFC 5256 2.1 steps 2, 3 and 6 removed something of that). */
static bool base_subject(struct slice subject, struct buf *out)
{
	struct buf w;
	buf_init(&w, subject.n + 1);
	buf_cstr(&w);
	/* Step 1: tabs and continuations to a space, runs to one space. */
	size_t run = 0;
	for (size_t i = 0; i < subject.n; i++) {
		uint8_t c = subject.p[i];
		if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
			continue;
		buf_append(&w, subject.p + run, i - run);
		if (w.n == 0 || w.p[w.n - 1] != ' ')
			buf_append(&w, " ", 1);
		run = i + 1;
	}
	buf_append(&w, subject.p + run, subject.n - run);
	const uint8_t *p = w.p;
	size_t s = 0, e = w.n;
	bool reply = false;
	for (;;) {
		/* Step 2: trailers, "(fwd)" or whitespace. */
		for (;;) {
			if (e > s && p[e - 1] == ' ') {
				e--;
			} else if (e - s >= 5 && ci_at(p, e, e - 5, "(fwd)")) {
				e -= 5;
				reply = true;
			} else {
				break;
			}
		}
		/* Steps 3 to 5. */
		bool changed = true;
		while (changed) {
			changed = false;
			for (;;) {
				size_t next;
				if (s < e && p[s] == ' ') {
					s++;
				} else if ((next = match_leader(p, e, s)) !=
					   s) {
					s = next;
					reply = true;
				} else {
					break;
				}
				changed = true;
			}
			/* Step 4, for a whole run of blobs at once: step 3
			 * would fail again after each one alone (which would
			 * make this quadratic). */
			size_t blob;
			while ((blob = match_blob(p, e, s)) != s && blob < e) {
				s = blob;
				changed = true;
			}
		}
		/* Step 6: "[fwd:" subject "]". */
		if (e - s >= 6 && ci_at(p, e, s, "[fwd:") && p[e - 1] == ']') {
			s += 5;
			e--;
			reply = true;
			continue;
		}
		break;
	}
	buf_append(out, p + s, e - s);
	buf_free(&w);
	return reply;
}

void mime_base_subject(struct slice subject, struct buf *out)
{
	(void)base_subject(subject, out);
}

bool mime_subject_is_reply_or_forward(struct slice subject)
{
	struct buf scratch;
	buf_init(&scratch, subject.n + 1);
	bool reply = base_subject(subject, &scratch);
	buf_free(&scratch);
	return reply;
}
