/* fill.c: fills the webmail benchmark's mailbox (bench/webmail/run.sh).
 *
 *   fill append -p PORT -u USER -w PASS -n N -q WORDS -m MANIFEST [-c 8] [-d 4]
 *	Makes up messages 1..N (deterministically) and APPENDs them to the
 *	user's empty INBOX over c IMAP connections, each with up to d
 *	APPENDs in flight (LITERAL+). Message k is APPENDed with the
 *	internal date BASE + k * STEP seconds, so its JMAP receivedAt names
 *	it. Then checks that INBOX holds N messages and writes MANIFEST.
 *   fill stats -n N -q WORDS
 *	Makes up the same messages without a server and prints, for each
 *	word, how many messages the JMAP text filter should find.
 *   fill show K
 *	Prints message K.
 *
 * WORDS is a comma-separated list. MANIFEST has one line per message,
 * "k thread mask": the message that started k's conversation, and bit i
 * set when the i-th word occurs (ASCII case-insensitively, as a
 * substring) in what the JMAP text filter searches: the From, To, Cc and
 * Subject header fields, decoded, and the text/plain parts (multipart/
 * alternative contributes its plain part only; attachments nothing); a
 * word of one or two characters only in the header fields, as dijk
 * looks for those (they have no trigram). With -m, stats writes the
 * manifest too (to check a mailbox kept from an earlier run).
 *
 * The messages: 1 to 8 KiB; senders from a few hundred correspondents, a
 * few much more frequent than the rest, some with RFC 2047 encoded names;
 * subjects and bodies drawn from a vocabulary with Zipf-distributed
 * frequencies (common English words, then a long tail of made-up names),
 * so that words range from "in every message" to "in a few dozen"; about
 * 30 % replies (In-Reply-To and References to an earlier message of the
 * last few days, "Re:" subject, quoted text), a fifth multipart/
 * alternative, a tenth multipart/mixed with a base64 attachment. Most
 * are \Seen, a few \Flagged.
 *
 * Exit status: 0 when everything was stored and checked, 1 otherwise, 2 on
 * usage errors. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* Message k's internal date is FILL_BASE_TIME + k * FILL_STEP_SECONDS:
 * 2024-11-22 00:00:00 UTC, then one message every five minutes. */
#define FILL_BASE_TIME	  1732233600L
#define FILL_STEP_SECONDS 300L
#define FILL_MAX_WORDS	  16
#define FILL_SEED	  UINT64_C(20261122)

static int opt_port;
static const char *opt_user = "bench@example.test";
static const char *opt_pass = "bench-password-1";
static int opt_n = 5000;
static int opt_connections = 8;
static int opt_depth = 4;
static const char *opt_manifest;
static const char *query_words[FILL_MAX_WORDS];
static size_t query_word_count;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- a growing buffer ---- */

struct dbuf {
	char *p;
	size_t n, cap;
};

static void db_reserve(struct dbuf *b, size_t extra)
{
	if (b->n + extra + 1 <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 1024;
	while (cap < b->n + extra + 1)
		cap *= 2;
	b->p = realloc(b->p, cap);
	if (b->p == NULL) {
		perror("fill: realloc");
		exit(2);
	}
	b->cap = cap;
}

static void db_add(struct dbuf *b, const void *p, size_t n)
{
	db_reserve(b, n);
	memcpy(b->p + b->n, p, n);
	b->n += n;
	b->p[b->n] = 0;
}

static void db_str(struct dbuf *b, const char *s)
{
	db_add(b, s, strlen(s));
}

static void db_printf(struct dbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		fprintf(stderr, "fill: bad format\n");
		exit(2);
	}
	db_reserve(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->p + b->n, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->n += (size_t)n;
}

/* ---- random numbers (splitmix64) ---- */

static uint64_t rnd_next(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static unsigned rnd(uint64_t *s, unsigned n)
{
	return (unsigned)(rnd_next(s) % n);
}

static double rnd_unit(uint64_t *s)
{
	return (double)(rnd_next(s) >> 11) / 9007199254740992.0;
}

static uint64_t seed_for(int k, unsigned stream)
{
	uint64_t s = FILL_SEED ^ ((uint64_t)k << 8) ^ stream;
	rnd_next(&s);
	return s;
}

/* ---- the vocabulary ---- */

/* Common words of business mail, roughly most frequent first; the
 * vocabulary continues with made-up names (the long tail). A few words
 * have a place of their own further down (placed_words), so that the
 * benchmark has real words of known rarity to search for. */
static const char *const common_words[] = {
	"the",	       "to",	    "and",	    "of",	 "a",
	"in",	       "for",	    "is",	    "on",	 "that",
	"we",	       "you",	    "this",	    "with",	 "be",
	"it",	       "will",	    "are",	    "have",	 "as",
	"at",	       "please",    "can",	    "from",	 "our",
	"by",	       "if",	    "not",	    "your",	 "all",
	"an",	       "or",	    "would",	    "team",	 "next",
	"know",	       "let",	    "thanks",	    "new",	 "any",
	"week",	       "was",	    "there",	    "should",	 "about",
	"been",	       "has",	    "more",	    "also",	 "update",
	"time",	       "need",	    "get",	    "one",	 "so",
	"out",	       "up",	    "do",	    "just",	 "like",
	"project",     "review",    "they",	    "which",	 "report",
	"today",       "some",	    "but",	    "when",	 "what",
	"may",	       "call",	    "me",	    "us",	 "them",
	"work",	       "before",    "after",	    "could",	 "see",
	"file",	       "other",	    "make",	    "did",	 "here",
	"send",	       "attached",  "changes",	    "still",	 "well",
	"into",	       "only",	    "than",	    "then",	 "now",
	"data",	       "first",	    "last",	    "back",	 "over",
	"release",     "customer",  "number",	    "via",	 "schedule",
	"question",    "plan",	    "budget",	    "version",	 "friday",
	"monday",      "tomorrow",  "morning",	    "help",	 "issue",
	"notes",       "server",    "status",	    "draft",	 "final",
	"agenda",      "office",    "support",	    "current",	 "same",
	"going",       "think",	    "sure",	    "good",	 "great",
	"thank",       "hope",	    "best",	    "these",	 "those",
	"each",	       "their",	    "because",	    "between",	 "while",
	"where",       "who",	    "how",	    "why",	 "working",
	"following",   "already",   "below",	    "above",	 "discuss",
	"share",       "available", "quarter",	    "numbers",	 "deadline",
	"ticket",      "deploy",    "test",	    "results",	 "client",
	"contract",    "price",	    "order",	    "delivery",	 "account",
	"access",      "login",	    "email",	    "message",	 "list",
	"document",    "slides",    "presentation", "feedback",	 "proposal",
	"approval",    "signed",    "legal",	    "finance",	 "sales",
	"marketing",   "design",    "product",	    "feature",	 "bug",
	"fix",	       "patch",	    "build",	    "staging",	 "production",
	"database",    "backup",    "migration",    "network",	 "security",
	"audit",       "policy",    "training",	    "hiring",	 "interview",
	"candidate",   "travel",    "flight",	    "hotel",	 "conference",
	"lunch",       "dinner",    "coffee",	    "room",	 "calendar",
	"invite",      "reminder",  "urgent",	    "important", "minor",
	"problem",     "solution",  "option",	    "decision",	 "priority",
	"timeline",    "milestone", "roadmap",	    "estimate",	 "cost",
	"revenue",     "forecast",  "target",	    "goal",	 "progress",
	"summary",     "details",   "answer",	    "request",	 "response",
	"confirm",     "pending",   "complete",	    "done",	 "open",
	"closed",      "ready",	    "late",	    "early",	 "soon",
	"later",       "month",	    "year",	    "weekend",	 "holiday",
	"vacation",    "manager",   "director",	    "board",	 "partner",
	"vendor",      "supplier",  "warehouse",    "inventory", "shipment",
	"tracking",    "payment",   "receipt",	    "refund",	 "tax",
	"spreadsheet", "chart",	    "figures",	    "analysis",	 "research",
	"survey",      "metrics",   "dashboard",    "café",	 "naïve",
	"über",	       "résumé",    "señor",	    "Zürich",	 "København",
	"Kraków"};
#define COMMON_COUNT (sizeof(common_words) / sizeof(common_words[0]))

static const struct {
	const char *word;
	unsigned rank;
} placed_words[] = {{"ok", 420},	 {"invoice", 2400},
		    {"warranty", 3200},	 {"kickoff", 900},
		    {"offsite", 1800},	 {"onboarding", 1300},
		    {"compliance", 2800}};

#define VOCABULARY_SIZE 4000
#define ZIPF_EXPONENT	1.0

static const char *vocabulary[VOCABULARY_SIZE];
static double zipf_cumulative[VOCABULARY_SIZE];

static const char *const syllables[] = {
	"ka",  "lo",  "mi",  "ra",  "ven", "tor", "dal", "sen", "qui", "bro",
	"fel", "nax", "ori", "pel", "sta", "tum", "zer", "vin", "gol", "har",
	"bel", "cor", "dun", "esk", "fir", "gan", "hul", "jor", "lun", "mar"};
#define SYLLABLE_COUNT (sizeof(syllables) / sizeof(syllables[0]))

static void vocabulary_init(void)
{
	size_t next_common = 0;
	uint64_t r = FILL_SEED;
	for (unsigned i = 0; i < VOCABULARY_SIZE; i++) {
		const char *placed = NULL;
		for (size_t p = 0;
		     p < sizeof(placed_words) / sizeof(placed_words[0]); p++)
			if (placed_words[p].rank == i)
				placed = placed_words[p].word;
		if (placed != NULL)
			vocabulary[i] = placed;
		else if (next_common < COMMON_COUNT)
			vocabulary[i] = common_words[next_common++];
		else {
			/* A made-up word: three syllables, so that it is
			 * unlike any common word. */
			char w[16];
			snprintf(w, sizeof(w), "%s%s%s",
				 syllables[rnd(&r, SYLLABLE_COUNT)],
				 syllables[rnd(&r, SYLLABLE_COUNT)],
				 syllables[rnd(&r, SYLLABLE_COUNT)]);
			vocabulary[i] = strdup(w);
		}
	}
	double sum = 0;
	for (unsigned i = 0; i < VOCABULARY_SIZE; i++) {
		sum += 1.0 / pow(i + 1.0, ZIPF_EXPONENT);
		zipf_cumulative[i] = sum;
	}
	for (unsigned i = 0; i < VOCABULARY_SIZE; i++)
		zipf_cumulative[i] /= sum;
}

/* A word of the vocabulary of rank first to last - 1, by Zipf's law
 * (subjects skip the function words and most of the long tail). */
static const char *zipf_range(uint64_t *r, unsigned first, unsigned last)
{
	double lo = first ? zipf_cumulative[first - 1] : 0;
	double u = lo + rnd_unit(r) * (zipf_cumulative[last - 1] - lo);
	unsigned a = first, b = last - 1;
	while (a < b) {
		unsigned m = (a + b) / 2;
		if (zipf_cumulative[m] < u)
			a = m + 1;
		else
			b = m;
	}
	return vocabulary[a];
}

static const char *zipf_word(uint64_t *r, unsigned skip)
{
	return zipf_range(r, skip, VOCABULARY_SIZE);
}

/* A very rare word: in the subjects of about one conversation in
 * RARE_IN_SUBJECT_ONE_IN, and one word of prose in RARE_IN_PROSE_ONE_IN
 * (a few dozen messages in 100,000). */
#define RARE_WORD	       "walrus"
#define RARE_IN_SUBJECT_ONE_IN 8000
#define RARE_IN_PROSE_ONE_IN   4000000

/* ---- correspondents ---- */

static const char *const first_names[] = {
	"Anna",	  "Carl",  "Maria",  "John", "Li",    "Pat",  "Sofia", "Ahmed",
	"Emma",	  "Lucas", "Olivia", "Noah", "Mia",   "Liam", "Chloe", "Ethan",
	"Hannah", "David", "Sara",   "Tom",  "Nina",  "Paul", "Julia", "Omar",
	"Eva",	  "Marco", "Ines",   "Yuki", "Priya", "Ben",  "Clara", "Felix"};
static const char *const last_names[] = {
	"Berg",	    "Dunn",    "Garcia",  "Smith",  "Wei",    "O'Brien",
	"Rossi",    "Khan",    "Jansen",  "Novak",  "Silva",  "Meyer",
	"Kowalski", "Tanaka",  "Patel",	  "Larsen", "Dubois", "Moreau",
	"Fischer",  "Costa",   "Nguyen",  "Evans",  "Visser", "Lindqvist",
	"Horvat",   "Adeyemi", "Brennan", "Sato"};
/* Names that need RFC 2047: as written, and as the header carries them. */
static const char *const foreign_names[][2] = {
	{"Jörg Müller", "=?UTF-8?Q?J=C3=B6rg_M=C3=BCller?="},
	{"René Durand", "=?ISO-8859-1?Q?Ren=E9_Durand?="},
	{"Zoë Ågren", "=?UTF-8?Q?Zo=C3=AB_=C3=85gren?="},
	{"Łukasz Wróbel", "=?UTF-8?B?xYF1a2FzeiBXcsOzYmVs?="},
	{"Søren Kierkegård", "=?UTF-8?Q?S=C3=B8ren_Kierkeg=C3=A5rd?="},
	{"José Núñez", "=?UTF-8?Q?Jos=C3=A9_N=C3=BA=C3=B1ez?="}};
static const char *const domains[] = {
	"northwind.test", "contoso.test",  "fabrikam.test", "initech.test",
	"globex.test",	  "umbrella.test", "hooli.test",    "example.org",
	"acme.test",	  "vandelay.test", "stark.test",    "wayne.test"};
#define ARRAY_COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define SENDER_COUNT   400

struct person {
	char display[64]; /* the name as read */
	char header[96];  /* the name as the header carries it ("" none) */
	char address[96];
	char first[32];
};

static struct person senders[SENDER_COUNT];
static double sender_cumulative[SENDER_COUNT];

static void senders_init(void)
{
	uint64_t r = FILL_SEED + 7;
	double sum = 0;
	for (unsigned i = 0; i < SENDER_COUNT; i++) {
		struct person *p = &senders[i];
		const char *dom = domains[rnd(&r, ARRAY_COUNT(domains))];
		unsigned kind = rnd(&r, 20);
		if (kind < 2) {
			unsigned f = rnd(&r, ARRAY_COUNT(foreign_names));
			snprintf(p->display, sizeof(p->display), "%s",
				 foreign_names[f][0]);
			snprintf(p->header, sizeof(p->header), "%s",
				 foreign_names[f][1]);
			snprintf(p->address, sizeof(p->address), "user%u@%s", i,
				 dom);
			snprintf(p->first, sizeof(p->first), "%.*s",
				 (int)strcspn(foreign_names[f][0], " "),
				 foreign_names[f][0]);
		} else {
			const char *f =
				first_names[rnd(&r, ARRAY_COUNT(first_names))];
			const char *l =
				last_names[rnd(&r, ARRAY_COUNT(last_names))];
			snprintf(p->first, sizeof(p->first), "%s", f);
			snprintf(p->display, sizeof(p->display), "%s %s", f, l);
			if (kind < 4)
				/* "Last, First" needs quotes. */
				snprintf(p->header, sizeof(p->header),
					 "\"%s, %s\"", l, f);
			else if (kind < 6)
				p->header[0] = 0; /* a bare address */
			else
				snprintf(p->header, sizeof(p->header), "%s",
					 p->display);
			char local[64];
			size_t w = 0;
			for (const char *s = f; *s && w < 30; s++)
				if (isalpha((unsigned char)*s))
					local[w++] = (char)tolower(
						(unsigned char)*s);
			local[w++] = '.';
			for (const char *s = l; *s && w < 60; s++)
				if (isalpha((unsigned char)*s))
					local[w++] = (char)tolower(
						(unsigned char)*s);
			local[w] = 0;
			snprintf(p->address, sizeof(p->address), "%s@%s", local,
				 dom);
		}
		/* A few correspondents write most of the mail. */
		sum += 1.0 / pow(i + 1.0, 0.9);
		sender_cumulative[i] = sum;
	}
	for (unsigned i = 0; i < SENDER_COUNT; i++)
		sender_cumulative[i] /= sum;
}

static const struct person *pick_sender(uint64_t *r)
{
	double u = rnd_unit(r);
	unsigned a = 0, b = SENDER_COUNT - 1;
	while (a < b) {
		unsigned m = (a + b) / 2;
		if (sender_cumulative[m] < u)
			a = m + 1;
		else
			b = m;
	}
	return &senders[a];
}

/* ---- conversations (worked out before any message is made) ---- */

struct meta {
	int parent; /* 0: starts a conversation */
	int root;
	bool forward;
	char *subject; /* the conversation's subject, without Re: */
};

static struct meta *metas;

static void make_subject(uint64_t *r, struct dbuf *b)
{
	unsigned kind = rnd(r, 20);
	if (kind == 0)
		db_str(b, "[team-list] ");
	else if (kind == 1)
		db_str(b, "[announce] ");
	unsigned words = 2 + rnd(r, 5);
	for (unsigned i = 0; i < words; i++) {
		const char *w = zipf_range(r, 30, 1500);
		if (i == 0) {
			char first[64];
			snprintf(first, sizeof(first), "%s", w);
			first[0] = (char)toupper((unsigned char)first[0]);
			db_str(b, first);
		} else {
			db_printf(b, " %s", w);
		}
	}
	if (rnd(r, 6) == 0)
		db_printf(b, " (Q%u %u)", 1 + rnd(r, 4), 2024 + rnd(r, 2));
	else if (rnd(r, 8) == 0)
		db_printf(b, " #%u", 1000 + rnd(r, 9000));
}

static void conversations_init(int n)
{
	metas = calloc((size_t)n + 1, sizeof(*metas));
	if (metas == NULL) {
		perror("fill: calloc");
		exit(2);
	}
	for (int k = 1; k <= n; k++) {
		uint64_t r = seed_for(k, 1);
		struct meta *m = &metas[k];
		unsigned kind = rnd(&r, 100);
		if (kind < 30 && k > 1) {
			/* A reply to a message of the last week or so, more
			 * likely a recent one. */
			double u = rnd_unit(&r);
			int window = k - 1 < 2000 ? k - 1 : 2000;
			int back = 1 + (int)(u * u * window);
			if (back > k - 1)
				back = k - 1;
			m->parent = k - back;
			m->root = metas[m->parent].root;
			m->subject = metas[m->root].subject;
		} else {
			m->root = k;
			m->forward = kind >= 30 && kind < 33;
			struct dbuf b = {0};
			make_subject(&r, &b);
			if (rnd(&r, RARE_IN_SUBJECT_ONE_IN) == 0)
				db_str(&b, " " RARE_WORD);
			m->subject = b.p;
		}
	}
}

/* ---- messages ---- */

static const char *const weekdays[] = {"Sun", "Mon", "Tue", "Wed",
				       "Thu", "Fri", "Sat"};
static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
				     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* RFC 5322 date of t in a zone offset of minutes east of UTC. */
static void format_date(struct dbuf *b, time_t t, int zone)
{
	time_t local = t + zone * 60;
	struct tm tm;
	gmtime_r(&local, &tm);
	int a = zone < 0 ? -zone : zone;
	db_printf(b, "%s, %d %s %d %02d:%02d:%02d %c%02d%02d",
		  weekdays[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
		  tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
		  zone < 0 ? '-' : '+', a / 60, a % 60);
}

static void message_id(struct dbuf *b, int k)
{
	uint64_t r = seed_for(k, 3);
	db_printf(b, "<%08x.%d@mail.%s>", (unsigned)rnd_next(&r), k,
		  domains[k % ARRAY_COUNT(domains)]);
}

static void address_header(struct dbuf *b, struct dbuf *search,
			   const struct person *p)
{
	if (p->header[0]) {
		db_printf(b, "%s <%s>", p->header, p->address);
		/* As the index holds it: encoded words decoded. */
		if (p->header[0] == '=')
			db_printf(search, "%s <%s>", p->display, p->address);
		else
			db_printf(search, "%s <%s>", p->header, p->address);
	} else {
		db_str(b, p->address);
		db_str(search, p->address);
	}
}

/* Sentences of Zipf words wrapped at 72 columns, about `bytes` of them,
 * each line after the first starting with quote (when given). */
static void add_prose(struct dbuf *b, uint64_t *r, size_t bytes,
		      const char *quote, bool html)
{
	size_t start = b->n, column = 0, indent = quote ? strlen(quote) : 0;
	unsigned left = 0;
	if (html)
		db_str(b, "<p>");
	if (quote) {
		db_str(b, quote);
		column = indent;
	}
	while (b->n - start < bytes) {
		bool sentence_start = left == 0;
		if (sentence_start)
			left = 6 + rnd(r, 14);
		char w[64];
		const char *word = zipf_word(r, 0);
		if (rnd(r, RARE_IN_PROSE_ONE_IN) == 0)
			word = RARE_WORD;
		snprintf(w, sizeof(w), "%s%s", word, left == 1 ? "." : "");
		if (sentence_start)
			w[0] = (char)toupper((unsigned char)w[0]);
		left--;
		if (column > indent && column + strlen(w) + 1 > 72) {
			db_str(b, "\r\n");
			column = 0;
			if (html && sentence_start && rnd(r, 3) == 0)
				db_str(b, "</p>\r\n<p>");
			if (quote) {
				db_str(b, quote);
				column = indent;
			}
		} else if (column > indent) {
			db_str(b, " ");
			column++;
		}
		db_str(b, w);
		column += strlen(w);
	}
	if (html)
		db_str(b, "</p>");
	db_str(b, "\r\n");
}

static void add_base64(struct dbuf *b, uint64_t *r, size_t bytes)
{
	static const char a[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t chars = (bytes + 2) / 3 * 4;
	for (size_t i = 0; i < chars; i++) {
		char c = a[rnd(r, 64)];
		db_add(b, &c, 1);
		if (i % 76 == 75 || i + 1 == chars)
			db_str(b, "\r\n");
	}
}

/* The plain text of message k: greeting, prose, signature and, in a
 * reply, the quoted parent. All of it is searched. */
static void add_plain_text(struct dbuf *b, struct dbuf *search, uint64_t *r,
			   int k, const struct person *from, size_t bytes)
{
	static const char *const greetings[] = {"Hi", "Hello", "Dear", "Hey"};
	size_t start = b->n;
	db_printf(b, "%s Bench,\r\n\r\n", greetings[rnd(r, 4)]);
	const struct meta *m = &metas[k];
	size_t own = m->parent ? bytes * 2 / 5 : bytes;
	add_prose(b, r, own > 200 ? own - 120 : 80, NULL, false);
	db_printf(b, "\r\nBest regards,\r\n%s\r\n", from->display);
	if (m->parent) {
		uint64_t pr = seed_for(m->parent, 2);
		const struct person *pf = pick_sender(&pr);
		db_str(b, "\r\nOn ");
		format_date(b, FILL_BASE_TIME + m->parent * FILL_STEP_SECONDS,
			    0);
		db_printf(b, ", %s <%s> wrote:\r\n", pf->display, pf->address);
		size_t used = b->n - start;
		add_prose(b, r, bytes > used + 100 ? bytes - used : 100, "> ",
			  false);
	}
	db_add(search, b->p + start, b->n - start);
}

/* Where the header fields end in the searched text of the message made
 * last by this thread. */
static __thread size_t search_headers;

/* Message k; search gets what the JMAP text filter should search. */
static void make_message(int k, struct dbuf *b, struct dbuf *search)
{
	uint64_t r = seed_for(k, 2);
	const struct meta *m = &metas[k];
	const struct person *from = pick_sender(&r);
	b->n = 0;
	search->n = 0;
	size_t target = 1024 + rnd(&r, 7 * 1024);
	time_t received = FILL_BASE_TIME + k * FILL_STEP_SECONDS;
	static const int zones[] = {0,	  0,	60,   60,  120,
				    -300, -240, -420, 330, 540};
	int zone = zones[rnd(&r, ARRAY_COUNT(zones))];

	db_printf(b, "Return-Path: <%s>\r\n", from->address);
	db_printf(b,
		  "Received: from mail.%s (mail.%s [198.51.100.%u])\r\n"
		  "\tby mail.example.test with ESMTPS id %08x\r\n"
		  "\tfor <bench@example.test>; ",
		  strchr(from->address, '@') + 1,
		  strchr(from->address, '@') + 1, 1 + rnd(&r, 250),
		  (unsigned)rnd_next(&r));
	format_date(b, received, 0);
	db_str(b, "\r\n");
	db_str(b, "Date: ");
	format_date(b, received - 30 - rnd(&r, 1800), zone);
	db_str(b, "\r\nFrom: ");
	address_header(b, search, from);
	db_str(search, "\n");
	db_str(b, "\r\nTo: Bench User <bench@example.test>\r\n");
	db_str(search, "Bench User <bench@example.test>\n");
	if (rnd(&r, 10) < 3) {
		db_str(b, "Cc: ");
		unsigned cc = 1 + rnd(&r, 3);
		for (unsigned i = 0; i < cc; i++) {
			if (i) {
				db_str(b, ", ");
				db_str(search, ", ");
			}
			address_header(b, search,
				       &senders[rnd(&r, SENDER_COUNT)]);
		}
		db_str(b, "\r\n");
		db_str(search, "\n");
	}
	const char *prefix = m->parent ? "Re: " : m->forward ? "Fwd: " : "";
	db_printf(b, "Subject: %s%s\r\n", prefix, m->subject);
	db_printf(search, "%s%s\n", prefix, m->subject);
	search_headers = search->n;
	db_str(b, "Message-ID: ");
	message_id(b, k);
	db_str(b, "\r\n");
	if (m->parent) {
		db_str(b, "In-Reply-To: ");
		message_id(b, m->parent);
		db_str(b, "\r\nReferences: ");
		if (m->root != m->parent) {
			message_id(b, m->root);
			db_str(b, "\r\n ");
		}
		message_id(b, m->parent);
		db_str(b, "\r\n");
	}
	if (rnd(&r, 6) == 0)
		db_printf(b, "List-Id: <team.%s>\r\n",
			  strchr(from->address, '@') + 1);
	db_str(b, "MIME-Version: 1.0\r\n");
	size_t header = b->n;
	size_t body = target > header + 400 ? target - header - 200 : 400;
	unsigned kind = rnd(&r, 10);
	if (kind < 2) {
		db_printf(
			b,
			"Content-Type: multipart/alternative; boundary=\"=_alt_%d\"\r\n\r\n",
			k);
		db_printf(
			b,
			"--=_alt_%d\r\nContent-Type: text/plain; charset=utf-8\r\n"
			"Content-Transfer-Encoding: 8bit\r\n\r\n",
			k);
		add_plain_text(b, search, &r, k, from, body / 2);
		db_printf(
			b,
			"--=_alt_%d\r\nContent-Type: text/html; charset=utf-8\r\n"
			"Content-Transfer-Encoding: 8bit\r\n\r\n"
			"<html><body>\r\n",
			k);
		/* Not indexed: the plain part stands for the alternative. */
		add_prose(b, &r, body / 2 - 60, NULL, true);
		db_printf(b, "</body></html>\r\n--=_alt_%d--\r\n", k);
	} else if (kind < 3) {
		static const char *const types[][2] = {
			{"application/pdf", "pdf"},
			{"image/png", "png"},
			{"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
			 "xlsx"},
			{"application/zip", "zip"}};
		unsigned t = rnd(&r, ARRAY_COUNT(types));
		size_t attachment = body / 2 * 3 / 4;
		db_printf(
			b,
			"Content-Type: multipart/mixed; boundary=\"=_mix_%d\"\r\n\r\n",
			k);
		db_printf(
			b,
			"This is a multi-part message in MIME format.\r\n"
			"--=_mix_%d\r\nContent-Type: text/plain; charset=utf-8\r\n"
			"Content-Transfer-Encoding: 8bit\r\n\r\n",
			k);
		add_plain_text(b, search, &r, k, from, body - body / 2);
		db_printf(
			b,
			"--=_mix_%d\r\nContent-Type: %s; name=\"%s-%d.%s\"\r\n"
			"Content-Disposition: attachment; filename=\"%s-%d.%s\"\r\n"
			"Content-Transfer-Encoding: base64\r\n\r\n",
			k, types[t][0], zipf_word(&r, 100), k, types[t][1],
			zipf_word(&r, 100), k, types[t][1]);
		add_base64(b, &r, attachment);
		db_printf(b, "--=_mix_%d--\r\n", k);
	} else {
		db_str(b, "Content-Type: text/plain; charset=utf-8\r\n"
			  "Content-Transfer-Encoding: 8bit\r\n\r\n");
		add_plain_text(b, search, &r, k, from, body);
	}
}

/* Bit i: query_words[i] occurs in the searched text. */
static unsigned word_mask(const struct dbuf *search)
{
	unsigned mask = 0;
	char *lower = malloc(search->n + 1);
	if (lower == NULL)
		exit(2);
	for (size_t i = 0; i < search->n; i++)
		lower[i] = (char)tolower((unsigned char)search->p[i]);
	for (size_t w = 0; w < query_word_count; w++) {
		size_t len = strlen(query_words[w]);
		if (memmem(lower, len < 3 ? search_headers : search->n,
			   query_words[w], len))
			mask |= 1u << w;
	}
	free(lower);
	return mask;
}

/* The APPEND flags of message k: old mail read, a few flagged. */
static const char *flags_for(int k)
{
	uint64_t r = seed_for(k, 4);
	unsigned x = rnd(&r, 100);
	bool recent = k > opt_n - 300;
	if (x < 3)
		return "(\\Seen \\Flagged)";
	if (recent ? x < 60 : x < 97)
		return "(\\Seen)";
	return "()";
}

/* ---- a small IMAP client ---- */

struct conn {
	int fd;
	char in[65536];
	size_t pos, len;
	unsigned tag;
};

static int conn_open(struct conn *c)
{
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -1;
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct timeval tv = {120, 0};
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)opt_port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->pos = c->len = 0;
	return connect(c->fd, (struct sockaddr *)&sa, sizeof(sa));
}

/* One line, without its CRLF, into line (cut at size - 1). */
static int conn_line(struct conn *c, char *line, size_t size)
{
	size_t w = 0;
	for (;;) {
		if (c->pos == c->len) {
			ssize_t n;
			do
				n = read(c->fd, c->in, sizeof(c->in));
			while (n < 0 && errno == EINTR);
			if (n <= 0)
				return -1;
			c->pos = 0;
			c->len = (size_t)n;
		}
		char ch = c->in[c->pos++];
		if (ch == '\n')
			break;
		if (w + 1 < size)
			line[w++] = ch;
	}
	if (w > 0 && line[w - 1] == '\r')
		w--;
	line[w] = 0;
	return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads up to the tagged reply of tag number t; 0 when it is OK. Untagged
 * lines go to on_untagged, when given. */
static int conn_tagged(struct conn *c, unsigned t, char *line, size_t size,
		       void (*on_untagged)(const char *line, void *context),
		       void *context)
{
	char tag[16];
	int tl = snprintf(tag, sizeof(tag), "f%u ", t);
	for (;;) {
		if (conn_line(c, line, size) < 0) {
			snprintf(line, size, "connection: %s", strerror(errno));
			return -1;
		}
		if (strncmp(line, tag, (size_t)tl) == 0)
			return strncmp(line + tl, "OK", 2) == 0 ? 0 : -1;
		if (line[0] == '*') {
			if (on_untagged)
				on_untagged(line, context);
			continue;
		}
		return -1;
	}
}

static int conn_command(struct conn *c, char *line, size_t size,
			void (*on_untagged)(const char *line, void *context),
			void *context, const char *fmt, ...)
{
	struct dbuf out = {0};
	unsigned t = ++c->tag;
	db_printf(&out, "f%u ", t);
	va_list ap;
	va_start(ap, fmt);
	char text[512];
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	db_printf(&out, "%s\r\n", text);
	int rc = write_all(c->fd, out.p, out.n);
	free(out.p);
	if (rc < 0) {
		snprintf(line, size, "write: %s", strerror(errno));
		return -1;
	}
	return conn_tagged(c, t, line, size, on_untagged, context);
}

static void note_capability(const char *line, void *context)
{
	if (strstr(line, " LITERAL+"))
		*(bool *)context = true;
}

static int session_open(struct conn *c, char *line, size_t size)
{
	if (conn_open(c) < 0) {
		snprintf(line, size, "connect: %s", strerror(errno));
		return -1;
	}
	if (conn_line(c, line, size) < 0 || strncmp(line, "* OK", 4) != 0)
		return -1;
	if (conn_command(c, line, size, NULL, NULL, "LOGIN \"%s\" \"%s\"",
			 opt_user, opt_pass) < 0)
		return -1;
	bool literal_plus = false;
	if (conn_command(c, line, size, note_capability, &literal_plus,
			 "CAPABILITY") < 0)
		return -1;
	if (!literal_plus) {
		snprintf(line, size, "the server does not announce LITERAL+");
		return -1;
	}
	return 0;
}

/* ---- append ---- */

static atomic_int next_message;
static atomic_long bytes_sent;
static atomic_int failures;
static unsigned *masks;

struct worker {
	pthread_t thread;
	int number;
};

static void *append_worker(void *arg)
{
	struct worker *wk = arg;
	struct conn c = {.fd = -1};
	char line[1024];
	if (session_open(&c, line, sizeof(line)) < 0) {
		fprintf(stderr, "fill: connection %d: %s\n", wk->number, line);
		atomic_fetch_add(&failures, 1);
		return NULL;
	}
	struct dbuf msg = {0}, search = {0}, out = {0};
	unsigned first_tag = c.tag + 1, in_flight = 0;
	bool done = false;
	while (!done || in_flight > 0) {
		/* Keep up to opt_depth APPENDs in flight. */
		out.n = 0;
		while (!done && in_flight < (unsigned)opt_depth) {
			int k = atomic_fetch_add(&next_message, 1);
			if (k > opt_n) {
				done = true;
				break;
			}
			make_message(k, &msg, &search);
			masks[k] = word_mask(&search);
			time_t t = FILL_BASE_TIME + k * FILL_STEP_SECONDS;
			struct tm tm;
			gmtime_r(&t, &tm);
			db_printf(
				&out,
				"f%u APPEND INBOX %s \"%2d-%s-%d %02d:%02d:%02d +0000\" {%zu+}\r\n",
				++c.tag, flags_for(k), tm.tm_mday,
				months[tm.tm_mon], tm.tm_year + 1900,
				tm.tm_hour, tm.tm_min, tm.tm_sec, msg.n);
			db_add(&out, msg.p, msg.n);
			db_str(&out, "\r\n");
			atomic_fetch_add(&bytes_sent, (long)msg.n);
			in_flight++;
		}
		if (out.n > 0 && write_all(c.fd, out.p, out.n) < 0) {
			fprintf(stderr, "fill: connection %d: write: %s\n",
				wk->number, strerror(errno));
			atomic_fetch_add(&failures, 1);
			break;
		}
		if (in_flight == 0)
			break;
		if (conn_tagged(&c, first_tag, line, sizeof(line), NULL, NULL) <
		    0) {
			fprintf(stderr, "fill: connection %d: APPEND: %s\n",
				wk->number, line);
			atomic_fetch_add(&failures, 1);
			break;
		}
		first_tag++;
		in_flight--;
	}
	char bye[256];
	conn_command(&c, bye, sizeof(bye), NULL, NULL, "LOGOUT");
	close(c.fd);
	free(msg.p);
	free(search.p);
	free(out.p);
	return NULL;
}

static void note_exists(const char *line, void *context)
{
	const char *e = strstr(line, " EXISTS");
	if (e && isdigit((unsigned char)line[2]))
		*(long *)context = strtol(line + 2, NULL, 10);
}

static int write_manifest(void)
{
	FILE *f = fopen(opt_manifest, "w");
	if (f == NULL) {
		fprintf(stderr, "fill: %s: %s\n", opt_manifest,
			strerror(errno));
		return -1;
	}
	for (int k = 1; k <= opt_n; k++)
		fprintf(f, "%d %d %u\n", k, metas[k].root, masks[k]);
	if (fclose(f) != 0) {
		fprintf(stderr, "fill: %s: %s\n", opt_manifest,
			strerror(errno));
		return -1;
	}
	return 0;
}

static int do_append(void)
{
	struct conn check = {.fd = -1};
	char line[1024];
	long exists = -1;
	if (session_open(&check, line, sizeof(line)) < 0 ||
	    conn_command(&check, line, sizeof(line), note_exists, &exists,
			 "SELECT INBOX") < 0) {
		fprintf(stderr, "fill: %s\n", line);
		return 1;
	}
	if (exists != 0) {
		fprintf(stderr,
			"fill: INBOX holds %ld messages; want it empty\n",
			exists);
		return 1;
	}
	masks = calloc((size_t)opt_n + 1, sizeof(*masks));
	atomic_store(&next_message, 1);
	struct worker *workers =
		calloc((size_t)opt_connections, sizeof(*workers));
	double t0 = now();
	for (int i = 0; i < opt_connections; i++) {
		workers[i].number = i;
		pthread_create(&workers[i].thread, NULL, append_worker,
			       &workers[i]);
	}
	for (int i = 0; i < opt_connections; i++)
		pthread_join(workers[i].thread, NULL);
	double seconds = now() - t0;
	exists = -1;
	if (conn_command(&check, line, sizeof(line), note_exists, &exists,
			 "NOOP") < 0 ||
	    conn_command(&check, line, sizeof(line), note_exists, &exists,
			 "SELECT INBOX") < 0)
		fprintf(stderr, "fill: check: %s\n", line);
	conn_command(&check, line, sizeof(line), NULL, NULL, "LOGOUT");
	close(check.fd);
	long bytes = atomic_load(&bytes_sent);
	printf("fill messages=%d connections=%d depth=%d seconds=%.1f msg_per_s=%.0f "
	       "bytes=%ld exists=%ld failures=%d\n",
	       opt_n, opt_connections, opt_depth, seconds, opt_n / seconds,
	       bytes, exists, atomic_load(&failures));
	if (atomic_load(&failures) > 0 || exists != opt_n) {
		fprintf(stderr,
			"fill: INBOX holds %ld messages after loading %d\n",
			exists, opt_n);
		return 1;
	}
	return write_manifest() == 0 ? 0 : 1;
}

static int do_stats(void)
{
	struct dbuf msg = {0}, search = {0};
	long counts[FILL_MAX_WORDS] = {0};
	long bytes = 0, threads = 0, replies = 0;
	size_t smallest = SIZE_MAX, largest = 0;
	if (opt_manifest != NULL)
		masks = calloc((size_t)opt_n + 1, sizeof(*masks));
	for (int k = 1; k <= opt_n; k++) {
		make_message(k, &msg, &search);
		unsigned mask = word_mask(&search);
		if (masks != NULL)
			masks[k] = mask;
		for (size_t w = 0; w < query_word_count; w++)
			counts[w] += (mask >> w) & 1;
		bytes += (long)msg.n;
		smallest = msg.n < smallest ? msg.n : smallest;
		largest = msg.n > largest ? msg.n : largest;
		threads += metas[k].root == k;
		replies += metas[k].parent != 0;
	}
	printf("messages=%d bytes=%ld mean=%ld smallest=%zu largest=%zu conversations=%ld "
	       "replies=%ld\n",
	       opt_n, bytes, bytes / opt_n, smallest, largest, threads,
	       replies);
	for (size_t w = 0; w < query_word_count; w++)
		printf("word %s %ld %.2f%%\n", query_words[w], counts[w],
		       100.0 * (double)counts[w] / opt_n);
	return opt_manifest != NULL && write_manifest() != 0 ? 1 : 0;
}

static void split_words(char *list)
{
	for (char *w = strtok(list, ",");
	     w && query_word_count < FILL_MAX_WORDS; w = strtok(NULL, ",")) {
		for (char *p = w; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		query_words[query_word_count++] = w;
	}
}

static void usage(void)
{
	fprintf(stderr,
		"usage: fill append -p PORT -u USER -w PASS -n N -q WORDS -m MANIFEST [-c 8] [-d 4]\n"
		"       fill stats -n N -q WORDS\n"
		"       fill show K [-n N]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	const char *mode = argv[1];
	int show = 0;
	if (strcmp(mode, "show") == 0) {
		if (argc < 3)
			usage();
		show = atoi(argv[2]);
		optind = 3;
	} else {
		optind = 2;
	}
	int o;
	while ((o = getopt(argc, argv, "p:u:w:n:c:d:q:m:")) != -1) {
		switch (o) {
		case 'p':
			opt_port = atoi(optarg);
			break;
		case 'u':
			opt_user = optarg;
			break;
		case 'w':
			opt_pass = optarg;
			break;
		case 'n':
			opt_n = atoi(optarg);
			break;
		case 'c':
			opt_connections = atoi(optarg);
			break;
		case 'd':
			opt_depth = atoi(optarg);
			break;
		case 'q':
			split_words(optarg);
			break;
		case 'm':
			opt_manifest = optarg;
			break;
		default:
			usage();
		}
	}
	if (opt_n < 1 || opt_connections < 1 || opt_depth < 1)
		usage();
	if (show > opt_n)
		opt_n = show;
	vocabulary_init();
	senders_init();
	conversations_init(opt_n);
	if (strcmp(mode, "show") == 0) {
		if (show < 1)
			usage();
		struct dbuf msg = {0}, search = {0};
		make_message(show, &msg, &search);
		fwrite(msg.p, 1, msg.n, stdout);
		fprintf(stderr, "---- searched text ----\n%s", search.p);
		return 0;
	}
	if (strcmp(mode, "stats") == 0)
		return do_stats();
	if (strcmp(mode, "append") == 0) {
		if (opt_port <= 0 || opt_manifest == NULL)
			usage();
		return do_append();
	}
	usage();
}
