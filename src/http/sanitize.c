/* sanitize.c: the HTML sanitizer of the webmail (contract in sanitize.h).
 *
 * Four steps. A linear pre-scan refuses input that would keep Gumbo busy
 * for long. Gumbo parses with an allocator of ours that keeps every block
 * on a list and charges it to a budget of memory and CPU time; when the
 * budget is spent it leaves the parse with longjmp (Gumbo keeps no state
 * but that memory, and has no way to fail an allocation). The same way out
 * serves when one of Gumbo's assertions fails (Debian builds it with them):
 * a SIGABRT handler jumps back while the thread is inside Gumbo. A walk over
 * the tree with an explicit stack writes the output from the allowlists.
 * Finally every block is freed from the list: gumbo_destroy_output recurses
 * once per level of the tree, which a deep document turns into a stack
 * overflow on a small thread stack. */
#include "core/common.h"

#include "http/sanitize.h"

#include <gumbo.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <time.h>

/* ---- characters ---- */

static const char replacement_character[] = "\xef\xbf\xbd";

/* HTML's ASCII whitespace. */
static bool html_space(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
}

static bool ascii_alpha(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool ascii_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

/* Whether c is one of set (never for NUL, which strchr would find). */
static bool in_set(uint8_t c, const char *set)
{
	return c != 0 && strchr(set, c) != NULL;
}

static uint8_t ascii_lower(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
}

/* Decodes the UTF-8 sequence at p (n > 0 bytes). Returns its length and
 * sets *cp, or returns 0 for a sequence that is invalid, overlong, cut, a
 * surrogate or past U+10FFFF. */
static size_t utf8_decode(const uint8_t *p, size_t n, uint32_t *cp)
{
	uint8_t c = p[0];
	size_t len;
	uint32_t v;
	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		v = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		v = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		v = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t k = 1; k < len; k++) {
		if ((p[k] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (p[k] & 0x3f);
	}
	if ((len == 3 && v < 0x800) || (len == 4 && v < 0x10000) ||
	    v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return len;
}

/* Code points that an HTML parser reads back as they are: not NUL, not CR
 * (folded into LF), not the controls and noncharacters that the input
 * stream turns into U+FFFD. Writing only these keeps the output stable. */
static bool codepoint_stable(uint32_t cp)
{
	if (cp < 0x20)
		return cp == '\t' || cp == '\n' || cp == '\f';
	if (cp >= 0x7f && cp <= 0x9f)
		return false;
	if (cp >= 0xfdd0 && cp <= 0xfdef)
		return false;
	return (cp & 0xfffe) != 0xfffe;
}

/* Appends text escaped for HTML: & < > always, " in attribute values; CR
 * becomes LF, unstable code points and invalid UTF-8 become U+FFFD. */
static void append_escaped(struct buf *out, const uint8_t *p, size_t n,
			   bool attribute)
{
	size_t run = 0, i = 0;
	while (i < n) {
		const char *rep = NULL;
		size_t len = 1;
		uint8_t c = p[i];
		if (c < 0x80) {
			if (c == '&')
				rep = "&amp;";
			else if (c == '<')
				rep = "&lt;";
			else if (c == '>')
				rep = "&gt;";
			else if (c == '"' && attribute)
				rep = "&quot;";
			else if (c == '\r')
				rep = "\n";
			else if (!codepoint_stable(c))
				rep = replacement_character;
		} else {
			uint32_t cp;
			len = utf8_decode(p + i, n - i, &cp);
			if (len == 0) {
				len = 1;
				rep = replacement_character;
			} else if (!codepoint_stable(cp)) {
				rep = replacement_character;
			}
		}
		if (rep != NULL) {
			buf_append(out, p + run, i - run);
			buf_append_cstr(out, rep);
			run = i + len;
		}
		i += len;
	}
	buf_append(out, p + run, n - run);
}

/* True when s holds needle, ASCII case-insensitively. */
static bool contains_ci(struct slice s, const char *needle)
{
	size_t m = strlen(needle);
	for (size_t i = 0; i + m <= s.n; i++)
		if (strncasecmp((const char *)s.p + i, needle, m) == 0)
			return true;
	return false;
}

static struct slice slice_trim(struct slice s)
{
	while (s.n > 0 && html_space(s.p[0])) {
		s.p++;
		s.n--;
	}
	while (s.n > 0 && html_space(s.p[s.n - 1]))
		s.n--;
	return s;
}

/* ---- the pre-scan ---- */

/* The states of the HTML tokenizer between "<x" and the ">" of a tag. */
enum scan_state {
	SCAN_TAG_NAME,
	SCAN_BEFORE_ATTRIBUTE,
	SCAN_ATTRIBUTE,
	SCAN_AFTER_ATTRIBUTE,
	SCAN_BEFORE_VALUE,
	SCAN_VALUE_DOUBLE,
	SCAN_VALUE_SINGLE,
	SCAN_VALUE_UNQUOTED,
	SCAN_AFTER_VALUE,
	SCAN_SELF_CLOSING,
	SCAN_STATES,
	SCAN_END = -1,
};

/* One step of the tag tokenizer; *attribute is set when c starts one. */
static int scan_step(int state, uint8_t c, bool *attribute)
{
	*attribute = false;
	bool space = html_space(c);
	switch (state) {
	case SCAN_TAG_NAME:
		if (space)
			return SCAN_BEFORE_ATTRIBUTE;
		if (c == '/')
			return SCAN_SELF_CLOSING;
		return c == '>' ? SCAN_END : SCAN_TAG_NAME;
	case SCAN_ATTRIBUTE:
		if (space)
			return SCAN_AFTER_ATTRIBUTE;
		if (c == '/')
			return SCAN_SELF_CLOSING;
		if (c == '=')
			return SCAN_BEFORE_VALUE;
		return c == '>' ? SCAN_END : SCAN_ATTRIBUTE;
	case SCAN_AFTER_ATTRIBUTE:
		if (space)
			return SCAN_AFTER_ATTRIBUTE;
		if (c == '/')
			return SCAN_SELF_CLOSING;
		if (c == '=')
			return SCAN_BEFORE_VALUE;
		if (c == '>')
			return SCAN_END;
		*attribute = true;
		return SCAN_ATTRIBUTE;
	case SCAN_BEFORE_VALUE:
		if (space)
			return SCAN_BEFORE_VALUE;
		if (c == '"')
			return SCAN_VALUE_DOUBLE;
		if (c == '\'')
			return SCAN_VALUE_SINGLE;
		return c == '>' ? SCAN_END : SCAN_VALUE_UNQUOTED;
	case SCAN_VALUE_DOUBLE:
		return c == '"' ? SCAN_AFTER_VALUE : SCAN_VALUE_DOUBLE;
	case SCAN_VALUE_SINGLE:
		return c == '\'' ? SCAN_AFTER_VALUE : SCAN_VALUE_SINGLE;
	case SCAN_VALUE_UNQUOTED:
		if (space)
			return SCAN_BEFORE_ATTRIBUTE;
		return c == '>' ? SCAN_END : SCAN_VALUE_UNQUOTED;
	default:
		/* Before an attribute, after a quoted value, after a '/':
		 * anything but these starts an attribute. */
		if (space)
			return SCAN_BEFORE_ATTRIBUTE;
		if (c == '/')
			return SCAN_SELF_CLOSING;
		if (c == '>')
			return SCAN_END;
		*attribute = true;
		return SCAN_ATTRIBUTE;
	}
}

/* Refuses what would keep Gumbo busy for long: too many start tags, or a
 * tag with too many attributes (Gumbo compares each new attribute with all
 * those before it). Which "<" start real tags depends on the tree builder,
 * so the tag tokenizer is run from every "<x" and "</x" at once: runs that
 * reach the same state at the same byte behave alike from there on and are
 * merged, keeping the highest count. That bounds every real tag's count in
 * one pass over the input. */
static int prescan(const uint8_t *p, size_t n, const char **error_r)
{
	long count[SCAN_STATES], next[SCAN_STATES];
	bool active = false;
	size_t tags = 0;
	long most = 0;
	for (size_t s = 0; s < SCAN_STATES; s++)
		count[s] = -1;
	for (size_t i = 0; i < n; i++) {
		if (!active) {
			const uint8_t *lt = memchr(p + i, '<', n - i);
			if (lt == NULL)
				break;
			i = (size_t)(lt - p);
		}
		uint8_t c = p[i];
		active = false;
		for (size_t s = 0; s < SCAN_STATES; s++)
			next[s] = -1;
		for (size_t s = 0; s < SCAN_STATES; s++) {
			if (count[s] < 0)
				continue;
			bool attribute;
			int to = scan_step((int)s, c, &attribute);
			if (to == SCAN_END)
				continue;
			long v = count[s] + (attribute ? 1 : 0);
			if (v > next[to])
				next[to] = v;
			if (v > most)
				most = v;
			active = true;
		}
		/* The first letter of a tag name starts a run. */
		if (ascii_alpha(c) &&
		    ((i >= 1 && p[i - 1] == '<') ||
		     (i >= 2 && p[i - 1] == '/' && p[i - 2] == '<'))) {
			if (p[i - 1] == '<')
				tags++;
			if (next[SCAN_TAG_NAME] < 0)
				next[SCAN_TAG_NAME] = 0;
			active = true;
		}
		if (c == '<' || (c == '/' && i >= 1 && p[i - 1] == '<'))
			active = true;
		memcpy(count, next, sizeof(count));
		if (tags > SANITIZE_MAX_TAGS) {
			*error_r = "too many tags";
			return -1;
		}
		if (most > SANITIZE_MAX_ATTRIBUTES) {
			*error_r = "too many attributes in a tag";
			return -1;
		}
	}
	return 0;
}

/* ---- the parse ---- */

/* A block of Gumbo's, on the list of the arena; the memory handed out
 * follows the header at max_align_t alignment. */
struct block {
	struct block *prev, *next;
	size_t size;
};

#define BLOCK_HEADER                                          \
	((sizeof(struct block) + _Alignof(max_align_t) - 1) / \
	 _Alignof(max_align_t) * _Alignof(max_align_t))

struct arena {
	struct block *head;
	size_t live;
	size_t calls;
	struct timespec start;
	/* In malloc or free, which may hold a lock: no jumping out. */
	bool in_libc;
	const char *error;
	sigjmp_buf escape;
};

/* The arena of the parse that runs on this thread, if any. */
static _Thread_local struct arena *parsing;
static struct sigaction previous_abort;
static pthread_once_t abort_handler_once = PTHREAD_ONCE_INIT;

/* Gumbo's failed assertions call abort(), which raises SIGABRT with no lock
 * held (glibc releases its own first). Inside Gumbo, whose only state is
 * the arena, the parse is abandoned like one that ran out of budget. Any
 * other abort goes to the handler that was there before, or on to end the
 * process. */
static void on_abort(int number, siginfo_t *info, void *context)
{
	struct arena *a = parsing;
	if (a != NULL && !a->in_libc) {
		parsing = NULL;
		a->error = "the HTML parser failed";
		siglongjmp(a->escape, 1);
	}
	if (previous_abort.sa_flags & SA_SIGINFO) {
		if (previous_abort.sa_sigaction != NULL)
			previous_abort.sa_sigaction(number, info, context);
	} else if (previous_abort.sa_handler != SIG_DFL &&
		   previous_abort.sa_handler != SIG_IGN) {
		previous_abort.sa_handler(number);
	}
}

static void install_abort_handler(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_abort;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGABRT, &sa, &previous_abort) != 0)
		memset(&previous_abort, 0, sizeof(previous_abort));
}

static long cpu_ms_since(const struct timespec *start)
{
	struct timespec now;
	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now) != 0)
		return 0;
	return (long)(now.tv_sec - start->tv_sec) * 1000 +
	       (now.tv_nsec - start->tv_nsec) / 1000000;
}

static _Noreturn void arena_escape(struct arena *a, const char *error)
{
	a->error = error;
	parsing = NULL;
	siglongjmp(a->escape, 1);
}

/* Every token Gumbo reads allocates, so checking the clock every 256 calls
 * bounds the time between two checks by 256 tokens' work. */
static void *arena_alloc(void *userdata, size_t size)
{
	struct arena *a = userdata;
	/* The header counts too: Gumbo makes many small blocks. */
	if (size > SANITIZE_MAX_PARSE_MEMORY - BLOCK_HEADER - a->live)
		arena_escape(a, "the parse needs too much memory");
	if (++a->calls % 256 == 0 &&
	    cpu_ms_since(&a->start) > SANITIZE_MAX_PARSE_MS)
		arena_escape(a, "the parse takes too long");
	a->in_libc = true;
	struct block *b = malloc(BLOCK_HEADER + size);
	a->in_libc = false;
	if (b == NULL)
		arena_escape(a, "out of memory");
	b->size = size;
	b->prev = NULL;
	b->next = a->head;
	if (a->head != NULL)
		a->head->prev = b;
	a->head = b;
	a->live += BLOCK_HEADER + size;
	return (uint8_t *)b + BLOCK_HEADER;
}

static void arena_free(void *userdata, void *p)
{
	struct arena *a = userdata;
	if (p == NULL)
		return;
	struct block *b = (struct block *)(void *)((uint8_t *)p - BLOCK_HEADER);
	if (b->prev != NULL)
		b->prev->next = b->next;
	else
		a->head = b->next;
	if (b->next != NULL)
		b->next->prev = b->prev;
	a->live -= BLOCK_HEADER + b->size;
	a->in_libc = true;
	free(b);
	a->in_libc = false;
}

static void arena_release(struct arena *a)
{
	while (a->head != NULL) {
		struct block *b = a->head;
		a->head = b->next;
		free(b);
	}
	a->live = 0;
}

/* Returns the parse, or NULL (a->error set) when the budget ran out or
 * Gumbo failed. The arena lives in the caller's frame, so nothing here is
 * changed between sigsetjmp and siglongjmp. */
static GumboOutput *parse(struct arena *a, const uint8_t *html, size_t len)
{
	GumboOptions options = kGumboDefaultOptions;
	options.allocator = arena_alloc;
	options.deallocator = arena_free;
	options.userdata = a;
	/* Errors are not wanted: recording them costs memory. */
	options.max_errors = 0;
	pthread_once(&abort_handler_once, install_abort_handler);
	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a->start) != 0)
		memset(&a->start, 0, sizeof(a->start));
	if (sigsetjmp(a->escape, 1) != 0)
		return NULL;
	parsing = a;
	GumboOutput *output = gumbo_parse_with_options(
		&options, len > 0 ? (const char *)html : "", len);
	parsing = NULL;
	return output;
}

/* ---- elements ---- */

enum {
	EL_KEEP = 1 << 0,	 /* on the allowlist */
	EL_DROP = 1 << 1,	 /* dropped with its content */
	EL_VOID = 1 << 2,	 /* no end tag, no content */
	EL_CLOSES_P = 1 << 3,	 /* its start tag closes an open <p> */
	EL_SPECIAL = 1 << 4,	 /* stops the search for an open <li> */
	EL_SCOPE = 1 << 5,	 /* hides a <p> from a closing start tag */
	EL_MARKER = 1 << 6,	 /* hides an <a> from a new <a> */
	EL_HEADING = 1 << 7,	 /* h1-h6 */
	EL_TABLE_MODE = 1 << 8,	 /* holds only table parts and whitespace */
	EL_IN_TABLE = 1 << 9,	 /* only right inside a <table> */
	EL_IN_SECTION = 1 << 10, /* only inside thead, tbody, tfoot */
	EL_IN_ROW = 1 << 11,	 /* only inside a <tr> */
	EL_IN_COLGROUP = 1 << 12,
	EL_LIST_ITEM = 1 << 13, /* li, dd, dt */
};

#define KEEP	EL_KEEP
#define BLOCK	(EL_KEEP | EL_CLOSES_P | EL_SPECIAL)
#define HEADING (BLOCK | EL_HEADING)

/* Flags by Gumbo's tag. EL_CLOSES_P and the scope flags follow the HTML
 * standard and Gumbo both, erring towards unwrapping: an element wrongly
 * unwrapped costs a little layout, one wrongly kept makes the output
 * unstable. */
static const uint16_t element_flags[GUMBO_TAG_LAST] = {
	[GUMBO_TAG_A] = KEEP,
	[GUMBO_TAG_ABBR] = KEEP,
	[GUMBO_TAG_ADDRESS] = EL_KEEP | EL_CLOSES_P,
	[GUMBO_TAG_ARTICLE] = BLOCK,
	[GUMBO_TAG_ASIDE] = BLOCK,
	[GUMBO_TAG_B] = KEEP,
	[GUMBO_TAG_BDI] = KEEP,
	[GUMBO_TAG_BDO] = KEEP,
	[GUMBO_TAG_BLOCKQUOTE] = BLOCK,
	[GUMBO_TAG_BR] = EL_KEEP | EL_VOID,
	[GUMBO_TAG_CAPTION] =
		EL_KEEP | EL_SPECIAL | EL_SCOPE | EL_MARKER | EL_IN_TABLE,
	[GUMBO_TAG_CENTER] = BLOCK,
	[GUMBO_TAG_CITE] = KEEP,
	[GUMBO_TAG_CODE] = KEEP,
	[GUMBO_TAG_COL] = EL_KEEP | EL_VOID | EL_IN_COLGROUP,
	[GUMBO_TAG_COLGROUP] =
		EL_KEEP | EL_SPECIAL | EL_TABLE_MODE | EL_IN_TABLE,
	[GUMBO_TAG_DD] = BLOCK | EL_LIST_ITEM,
	[GUMBO_TAG_DEL] = KEEP,
	[GUMBO_TAG_DETAILS] = BLOCK,
	[GUMBO_TAG_DFN] = KEEP,
	[GUMBO_TAG_DIV] = EL_KEEP | EL_CLOSES_P,
	[GUMBO_TAG_DL] = BLOCK,
	[GUMBO_TAG_DT] = BLOCK | EL_LIST_ITEM,
	[GUMBO_TAG_EM] = KEEP,
	[GUMBO_TAG_FIGCAPTION] = BLOCK,
	[GUMBO_TAG_FIGURE] = BLOCK,
	[GUMBO_TAG_FONT] = KEEP,
	[GUMBO_TAG_FOOTER] = BLOCK,
	[GUMBO_TAG_H1] = HEADING,
	[GUMBO_TAG_H2] = HEADING,
	[GUMBO_TAG_H3] = HEADING,
	[GUMBO_TAG_H4] = HEADING,
	[GUMBO_TAG_H5] = HEADING,
	[GUMBO_TAG_H6] = HEADING,
	[GUMBO_TAG_HEADER] = BLOCK,
	[GUMBO_TAG_HR] = EL_KEEP | EL_VOID | EL_CLOSES_P,
	[GUMBO_TAG_I] = KEEP,
	[GUMBO_TAG_IMG] = EL_KEEP | EL_VOID,
	[GUMBO_TAG_INS] = KEEP,
	[GUMBO_TAG_KBD] = KEEP,
	[GUMBO_TAG_LI] = BLOCK | EL_LIST_ITEM,
	/* Not special for Gumbo: an <li> search passes through it. */
	[GUMBO_TAG_MAIN] = EL_KEEP | EL_CLOSES_P,
	[GUMBO_TAG_MARK] = KEEP,
	[GUMBO_TAG_NAV] = BLOCK,
	[GUMBO_TAG_OL] = BLOCK,
	[GUMBO_TAG_P] = EL_KEEP | EL_CLOSES_P,
	[GUMBO_TAG_PRE] = BLOCK,
	[GUMBO_TAG_Q] = KEEP,
	[GUMBO_TAG_S] = KEEP,
	[GUMBO_TAG_SAMP] = KEEP,
	[GUMBO_TAG_SECTION] = BLOCK,
	[GUMBO_TAG_SMALL] = KEEP,
	[GUMBO_TAG_SPAN] = KEEP,
	[GUMBO_TAG_STRIKE] = KEEP,
	[GUMBO_TAG_STRONG] = KEEP,
	[GUMBO_TAG_SUB] = KEEP,
	[GUMBO_TAG_SUMMARY] = BLOCK,
	[GUMBO_TAG_SUP] = KEEP,
	[GUMBO_TAG_TABLE] = EL_KEEP | EL_SPECIAL | EL_SCOPE | EL_TABLE_MODE,
	[GUMBO_TAG_TBODY] = EL_KEEP | EL_SPECIAL | EL_TABLE_MODE | EL_IN_TABLE,
	[GUMBO_TAG_TD] =
		EL_KEEP | EL_SPECIAL | EL_SCOPE | EL_MARKER | EL_IN_ROW,
	[GUMBO_TAG_TFOOT] = EL_KEEP | EL_SPECIAL | EL_TABLE_MODE | EL_IN_TABLE,
	[GUMBO_TAG_TH] =
		EL_KEEP | EL_SPECIAL | EL_SCOPE | EL_MARKER | EL_IN_ROW,
	[GUMBO_TAG_THEAD] = EL_KEEP | EL_SPECIAL | EL_TABLE_MODE | EL_IN_TABLE,
	[GUMBO_TAG_TIME] = KEEP,
	[GUMBO_TAG_TR] = EL_KEEP | EL_SPECIAL | EL_TABLE_MODE | EL_IN_SECTION,
	[GUMBO_TAG_TT] = KEEP,
	[GUMBO_TAG_U] = KEEP,
	[GUMBO_TAG_UL] = BLOCK,
	[GUMBO_TAG_VAR] = KEEP,
	[GUMBO_TAG_WBR] = EL_KEEP | EL_VOID,
	/* Kept through the CSS filter, never as an open element. */
	[GUMBO_TAG_STYLE] = 0,

	[GUMBO_TAG_SCRIPT] = EL_DROP,
	[GUMBO_TAG_NOSCRIPT] = EL_DROP,
	[GUMBO_TAG_TEMPLATE] = EL_DROP,
	[GUMBO_TAG_IFRAME] = EL_DROP,
	[GUMBO_TAG_FRAME] = EL_DROP,
	[GUMBO_TAG_FRAMESET] = EL_DROP,
	[GUMBO_TAG_OBJECT] = EL_DROP,
	[GUMBO_TAG_EMBED] = EL_DROP,
	[GUMBO_TAG_APPLET] = EL_DROP,
	[GUMBO_TAG_PARAM] = EL_DROP,
	[GUMBO_TAG_FORM] = EL_DROP,
	[GUMBO_TAG_INPUT] = EL_DROP,
	[GUMBO_TAG_BUTTON] = EL_DROP,
	[GUMBO_TAG_SELECT] = EL_DROP,
	[GUMBO_TAG_OPTION] = EL_DROP,
	[GUMBO_TAG_OPTGROUP] = EL_DROP,
	[GUMBO_TAG_DATALIST] = EL_DROP,
	[GUMBO_TAG_KEYGEN] = EL_DROP,
	[GUMBO_TAG_ISINDEX] = EL_DROP,
	[GUMBO_TAG_TEXTAREA] = EL_DROP,
	[GUMBO_TAG_BASE] = EL_DROP,
	[GUMBO_TAG_META] = EL_DROP,
	[GUMBO_TAG_LINK] = EL_DROP,
	[GUMBO_TAG_TITLE] = EL_DROP,
	[GUMBO_TAG_XMP] = EL_DROP,
	[GUMBO_TAG_PLAINTEXT] = EL_DROP,
	[GUMBO_TAG_NOEMBED] = EL_DROP,
	[GUMBO_TAG_NOFRAMES] = EL_DROP,
	[GUMBO_TAG_CANVAS] = EL_DROP,
	[GUMBO_TAG_AUDIO] = EL_DROP,
	[GUMBO_TAG_VIDEO] = EL_DROP,
	[GUMBO_TAG_SOURCE] = EL_DROP,
	[GUMBO_TAG_TRACK] = EL_DROP,
	[GUMBO_TAG_SVG] = EL_DROP,
	[GUMBO_TAG_MATH] = EL_DROP,
	/* MathML and SVG names that Gumbo may leave in the HTML namespace. */
	[GUMBO_TAG_MI] = EL_DROP,
	[GUMBO_TAG_MO] = EL_DROP,
	[GUMBO_TAG_MN] = EL_DROP,
	[GUMBO_TAG_MS] = EL_DROP,
	[GUMBO_TAG_MTEXT] = EL_DROP,
	[GUMBO_TAG_MGLYPH] = EL_DROP,
	[GUMBO_TAG_MALIGNMARK] = EL_DROP,
	[GUMBO_TAG_ANNOTATION_XML] = EL_DROP,
	[GUMBO_TAG_FOREIGNOBJECT] = EL_DROP,
	[GUMBO_TAG_DESC] = EL_DROP,
};

#undef KEEP
#undef BLOCK
#undef HEADING

/* Elements newer than Gumbo 0.10.1 (which calls them unknown) that are
 * dropped with their content. */
static const char *const dropped_unknown[] = {
	"dialog",
	"portal",
	"fencedframe",
};

static bool unknown_is_dropped(const GumboElement *e)
{
	GumboStringPiece name = e->original_tag;
	if (name.length == 0)
		return false;
	gumbo_tag_from_original_text(&name);
	for (size_t i = 0; i < ARRAY_SIZE(dropped_unknown); i++)
		if (slice_eq_ci(slice_make(name.data, name.length),
				dropped_unknown[i]))
			return true;
	return false;
}

static const char *tag_name(GumboTag tag)
{
	return gumbo_normalized_tagname(tag);
}

/* ---- attributes and URLs ---- */

enum attribute_kind {
	ATTRIBUTE_PLAIN,
	ATTRIBUTE_HREF,
	ATTRIBUTE_SRC,
	ATTRIBUTE_STYLE,
};

struct attribute_rule {
	const char *name;
	enum attribute_kind kind;
	size_t tag_count; /* 0: on every element */
	GumboTag tags[3];
};

static const struct attribute_rule attribute_rules[] = {
	{"title", ATTRIBUTE_PLAIN, 0, {0}},
	{"lang", ATTRIBUTE_PLAIN, 0, {0}},
	{"dir", ATTRIBUTE_PLAIN, 0, {0}},
	{"align", ATTRIBUTE_PLAIN, 0, {0}},
	{"valign", ATTRIBUTE_PLAIN, 0, {0}},
	{"width", ATTRIBUTE_PLAIN, 0, {0}},
	{"height", ATTRIBUTE_PLAIN, 0, {0}},
	{"bgcolor", ATTRIBUTE_PLAIN, 0, {0}},
	{"color", ATTRIBUTE_PLAIN, 0, {0}},
	{"border", ATTRIBUTE_PLAIN, 0, {0}},
	{"cellpadding", ATTRIBUTE_PLAIN, 0, {0}},
	{"cellspacing", ATTRIBUTE_PLAIN, 0, {0}},
	{"face", ATTRIBUTE_PLAIN, 0, {0}},
	{"size", ATTRIBUTE_PLAIN, 0, {0}},
	{"alt", ATTRIBUTE_PLAIN, 0, {0}},
	{"hspace", ATTRIBUTE_PLAIN, 0, {0}},
	{"vspace", ATTRIBUTE_PLAIN, 0, {0}},
	{"style", ATTRIBUTE_STYLE, 0, {0}},
	{"colspan", ATTRIBUTE_PLAIN, 2, {GUMBO_TAG_TD, GUMBO_TAG_TH}},
	{"rowspan", ATTRIBUTE_PLAIN, 2, {GUMBO_TAG_TD, GUMBO_TAG_TH}},
	{"nowrap", ATTRIBUTE_PLAIN, 2, {GUMBO_TAG_TD, GUMBO_TAG_TH}},
	{"scope", ATTRIBUTE_PLAIN, 2, {GUMBO_TAG_TD, GUMBO_TAG_TH}},
	{"headers", ATTRIBUTE_PLAIN, 2, {GUMBO_TAG_TD, GUMBO_TAG_TH}},
	{"noshade", ATTRIBUTE_PLAIN, 1, {GUMBO_TAG_HR}},
	{"span", ATTRIBUTE_PLAIN, 2, {GUMBO_TAG_COL, GUMBO_TAG_COLGROUP}},
	{"datetime",
	 ATTRIBUTE_PLAIN,
	 3,
	 {GUMBO_TAG_TIME, GUMBO_TAG_DEL, GUMBO_TAG_INS}},
	{"start", ATTRIBUTE_PLAIN, 1, {GUMBO_TAG_OL}},
	{"reversed", ATTRIBUTE_PLAIN, 1, {GUMBO_TAG_OL}},
	{"value", ATTRIBUTE_PLAIN, 1, {GUMBO_TAG_LI}},
	{"type",
	 ATTRIBUTE_PLAIN,
	 3,
	 {GUMBO_TAG_OL, GUMBO_TAG_UL, GUMBO_TAG_LI}},
	{"open", ATTRIBUTE_PLAIN, 1, {GUMBO_TAG_DETAILS}},
	{"href", ATTRIBUTE_HREF, 1, {GUMBO_TAG_A}},
	{"src", ATTRIBUTE_SRC, 1, {GUMBO_TAG_IMG}},
};

static const struct attribute_rule *attribute_rule(GumboTag tag,
						   const GumboAttribute *a)
{
	if (a->attr_namespace != GUMBO_ATTR_NAMESPACE_NONE)
		return NULL;
	for (size_t i = 0; i < ARRAY_SIZE(attribute_rules); i++) {
		const struct attribute_rule *r = &attribute_rules[i];
		if (strcmp(r->name, a->name) != 0)
			continue;
		if (r->tag_count == 0)
			return r;
		for (size_t k = 0; k < r->tag_count; k++)
			if (r->tags[k] == tag)
				return r;
		return NULL;
	}
	return NULL;
}

/* Reads a URL as browsers do: leading and trailing C0 controls and spaces
 * trimmed, tab, CR and LF removed. Returns false when another control
 * character is left. */
static bool url_normalize(const char *value, struct buf *url)
{
	struct slice s = slice_cstr(value);
	while (s.n > 0 && s.p[0] <= 0x20) {
		s.p++;
		s.n--;
	}
	while (s.n > 0 && s.p[s.n - 1] <= 0x20)
		s.n--;
	buf_reset(url);
	for (size_t i = 0; i < s.n; i++) {
		uint8_t c = s.p[i];
		if (c == '\t' || c == '\n' || c == '\r')
			continue;
		if (c < 0x20 || c == 0x7f)
			return false;
		buf_append(url, &c, 1);
	}
	return !buf_overflowed(url);
}

/* The scheme of url (what precedes the first ':'), or an empty slice for a
 * relative URL. */
static struct slice url_scheme(struct slice url)
{
	if (url.n == 0 || !ascii_alpha(url.p[0]))
		return slice_make(url.p, 0);
	for (size_t i = 1; i < url.n; i++) {
		uint8_t c = url.p[i];
		if (c == ':')
			return slice_make(url.p, i);
		if (!ascii_alpha(c) && !ascii_digit(c) && c != '+' &&
		    c != '-' && c != '.')
			break;
	}
	return slice_make(url.p, 0);
}

static bool href_allowed(struct slice url)
{
	struct slice scheme = url_scheme(url);
	return slice_eq_ci(scheme, "http") || slice_eq_ci(scheme, "https") ||
	       slice_eq_ci(scheme, "mailto");
}

static bool data_image_allowed(struct slice url)
{
	static const char *const prefixes[] = {
		"data:image/png;base64,",
		"data:image/gif;base64,",
		"data:image/jpeg;base64,",
		"data:image/webp;base64,",
	};
	for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++) {
		if (!slice_prefix_ci(url, prefixes[i]))
			continue;
		for (size_t k = strlen(prefixes[i]); k < url.n; k++) {
			uint8_t c = url.p[k];
			if (!ascii_alpha(c) && !ascii_digit(c) && c != '+' &&
			    c != '/' && c != '=')
				return false;
		}
		return true;
	}
	return false;
}

/* ---- CSS ---- */

static const char *const css_properties[] = {
	"background",
	"background-color",
	"border",
	"border-bottom",
	"border-bottom-color",
	"border-bottom-left-radius",
	"border-bottom-right-radius",
	"border-bottom-style",
	"border-bottom-width",
	"border-collapse",
	"border-color",
	"border-left",
	"border-left-color",
	"border-left-style",
	"border-left-width",
	"border-radius",
	"border-right",
	"border-right-color",
	"border-right-style",
	"border-right-width",
	"border-spacing",
	"border-style",
	"border-top",
	"border-top-color",
	"border-top-left-radius",
	"border-top-right-radius",
	"border-top-style",
	"border-top-width",
	"border-width",
	"caption-side",
	"clear",
	"color",
	"display",
	"empty-cells",
	"float",
	"font",
	"font-family",
	"font-size",
	"font-style",
	"font-variant",
	"font-weight",
	"height",
	"letter-spacing",
	"line-height",
	"list-style-position",
	"list-style-type",
	"margin",
	"margin-bottom",
	"margin-left",
	"margin-right",
	"margin-top",
	"max-height",
	"max-width",
	"min-height",
	"min-width",
	"overflow-wrap",
	"padding",
	"padding-bottom",
	"padding-left",
	"padding-right",
	"padding-top",
	"table-layout",
	"text-align",
	"text-decoration",
	"text-decoration-color",
	"text-decoration-line",
	"text-decoration-style",
	"text-indent",
	"text-transform",
	"vertical-align",
	"white-space",
	"width",
	"word-break",
	"word-spacing",
	"word-wrap",
};

static const char *const css_displays[] = {
	"block",
	"inline",
	"inline-block",
	"none",
	"list-item",
	"table",
	"inline-table",
	"table-caption",
	"table-cell",
	"table-column",
	"table-column-group",
	"table-footer-group",
	"table-header-group",
	"table-row",
	"table-row-group",
};

static const char *const css_functions[] = {
	"rgb", "rgba", "hsl", "hsla", "calc",
};

/* Refused anywhere in a value (and in a selector, though none could do
 * harm there, to keep the rule simple): the ways CSS loads or runs
 * things. */
static const char *const css_forbidden[] = {
	"url(",	    "image-set", "image(",  "expression", "javascript",
	"vbscript", "behavior",	 "binding", "import",	  "@",
	"\\",	    "/*",	 "*/",	    "<",
};

#define CSS_MAX_NESTING 8

static bool css_in_list(struct slice s, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (slice_eq_ci(s, list[i]))
			return true;
	return false;
}

static bool css_has_forbidden(struct slice s)
{
	for (size_t i = 0; i < ARRAY_SIZE(css_forbidden); i++)
		if (contains_ci(s, css_forbidden[i]))
			return true;
	return false;
}

static bool css_name_char(uint8_t c)
{
	return ascii_alpha(c) || ascii_digit(c) || c == '-' || c == '_';
}

/* Appends the canonical form of a declaration value to out: whitespace
 * outside strings folded into one space, nothing else changed. Returns
 * false for a value outside the allowed alphabet or with a function that
 * is not allowed. */
static bool css_value(struct slice v, struct buf *out)
{
	size_t start = out->n, depth = 0;
	bool space = false;
	size_t i = 0;
	while (i < v.n) {
		uint8_t c = v.p[i];
		if (html_space(c)) {
			space = true;
			i++;
			continue;
		}
		if (space && out->n > start)
			buf_append(out, " ", 1);
		space = false;
		if (c == '"' || c == '\'') {
			size_t k = i + 1;
			while (k < v.n && v.p[k] != c) {
				uint8_t d = v.p[k];
				uint32_t cp;
				size_t len = utf8_decode(v.p + k, v.n - k, &cp);
				/* Font names: no quote, no '!' (taken
				 * for !important), no punctuation. */
				if (len == 0 || !codepoint_stable(cp) ||
				    (d < 0x80 && !ascii_alpha(d) &&
				     !ascii_digit(d) &&
				     !in_set(d, " #%.,-+_/")))
					return false;
				k += len;
			}
			if (k >= v.n)
				return false;
			buf_append(out, v.p + i, k + 1 - i);
			i = k + 1;
			continue;
		}
		if (c >= 0x80) {
			uint32_t cp;
			size_t len = utf8_decode(v.p + i, v.n - i, &cp);
			if (len == 0 || !codepoint_stable(cp))
				return false;
			buf_append(out, v.p + i, len);
			i += len;
			continue;
		}
		if (c == '(') {
			size_t end = out->n, name = end;
			while (name > start && css_name_char(out->p[name - 1]))
				name--;
			/* A function of the list, or a bare parenthesis
			 * inside one (calc). */
			struct slice function =
				slice_make(out->p + name, end - name);
			bool allowed =
				function.n > 0
					? css_in_list(function, css_functions,
						      ARRAY_SIZE(css_functions))
					: depth > 0;
			if (!allowed)
				return false;
			if (++depth > CSS_MAX_NESTING)
				return false;
		} else if (c == ')') {
			if (depth == 0)
				return false;
			depth--;
		} else if (c == '*') {
			if (depth == 0)
				return false;
		} else if (!ascii_alpha(c) && !ascii_digit(c) &&
			   !in_set(c, "#%.,-+_/")) {
			return false;
		}
		buf_append(out, &c, 1);
		i++;
	}
	return depth == 0 && out->n > start;
}

/* Appends one declaration ("name: value" or "name: value !important"),
 * after sep, to out when it passes; returns whether it did. */
static bool css_declaration(struct slice d, const char *sep, struct buf *out,
			    struct buf *scratch)
{
	d = slice_trim(d);
	const uint8_t *colon = memchr(d.p, ':', d.n);
	if (colon == NULL)
		return false;
	struct slice name = slice_trim(slice_make(d.p, (size_t)(colon - d.p)));
	struct slice value = slice_trim(
		slice_make(colon + 1, d.n - (size_t)(colon + 1 - d.p)));
	if (!css_in_list(name, css_properties, ARRAY_SIZE(css_properties)))
		return false;
	bool important = false;
	const uint8_t *bang = memchr(value.p, '!', value.n);
	if (bang != NULL) {
		struct slice flag = slice_trim(slice_make(
			bang + 1, value.n - (size_t)(bang + 1 - value.p)));
		if (!slice_eq_ci(flag, "important"))
			return false;
		important = true;
		value = slice_trim(
			slice_make(value.p, (size_t)(bang - value.p)));
	}
	buf_reset(scratch);
	if (!css_value(value, scratch) || buf_overflowed(scratch))
		return false;
	struct slice canonical = buf_slice(scratch);
	if (css_has_forbidden(canonical))
		return false;
	if (slice_eq_ci(name, "display") &&
	    !css_in_list(canonical, css_displays, ARRAY_SIZE(css_displays)))
		return false;
	buf_append_cstr(out, sep);
	for (size_t i = 0; i < name.n; i++) {
		uint8_t c = ascii_lower(name.p[i]);
		buf_append(out, &c, 1);
	}
	buf_append_cstr(out, ": ");
	buf_append_slice(out, canonical);
	if (important)
		buf_append_cstr(out, " !important");
	return true;
}

/* Appends the declarations of a list (a style attribute, or the inside of
 * a rule's braces) that pass, as "name: value; name: value", to out, and
 * returns how many. A list holding a backslash or a comment, or whose
 * quotes or parentheses do not balance, keeps nothing: its declarations
 * might not end where we would think. */
static size_t css_declarations(struct slice in, struct buf *out,
			       struct buf *scratch)
{
	if (memchr(in.p, '\\', in.n) != NULL || contains_ci(in, "/*") ||
	    contains_ci(in, "*/"))
		return 0;
	uint8_t quote = 0;
	size_t depth = 0;
	for (size_t i = 0; i < in.n; i++) {
		uint8_t c = in.p[i];
		if (quote != 0) {
			if (c == quote)
				quote = 0;
		} else if (c == '"' || c == '\'') {
			quote = c;
		} else if (c == '(') {
			depth++;
		} else if (c == ')') {
			if (depth == 0)
				return 0;
			depth--;
		}
	}
	if (quote != 0 || depth != 0)
		return 0;
	size_t kept = 0, start = 0;
	for (size_t i = 0; i <= in.n; i++) {
		uint8_t c = i < in.n ? in.p[i] : ';';
		if (quote != 0) {
			if (c == quote)
				quote = 0;
			continue;
		}
		if (c == '"' || c == '\'')
			quote = c;
		else if (c == '(')
			depth++;
		else if (c == ')')
			depth--;
		if (c != ';' || depth > 0)
			continue;
		if (css_declaration(slice_make(in.p + start, i - start),
				    kept > 0 ? "; " : "", out, scratch))
			kept++;
		start = i + 1;
	}
	return kept;
}

/* Skips a string of CSS starting at the quote at i; returns the index
 * after it (a newline or the end also ends it). */
static size_t css_skip_string(struct slice s, size_t i)
{
	uint8_t quote = s.p[i++];
	while (i < s.n && s.p[i] != quote && s.p[i] != '\n') {
		if (s.p[i] == '\\' && i + 1 < s.n)
			i++;
		i++;
	}
	return i < s.n ? i + 1 : i;
}

/* A copy of a style sheet without its comments (each becomes a space). */
static void css_strip_comments(struct slice s, struct buf *out)
{
	size_t i = 0;
	while (i < s.n) {
		uint8_t c = s.p[i];
		if (c == '"' || c == '\'') {
			size_t end = css_skip_string(s, i);
			buf_append(out, s.p + i, end - i);
			i = end;
		} else if (c == '/' && i + 1 < s.n && s.p[i + 1] == '*') {
			size_t k = i + 2;
			while (k + 1 < s.n &&
			       !(s.p[k] == '*' && s.p[k + 1] == '/'))
				k++;
			if (k + 1 >= s.n)
				return;
			buf_append(out, " ", 1);
			i = k + 2;
		} else if (c == '\\' && i + 1 < s.n) {
			buf_append(out, s.p + i, 2);
			i += 2;
		} else {
			buf_append(out, &c, 1);
			i++;
		}
	}
}

/* The index of the first of stops at depth 0 from i on, outside strings
 * and parentheses, or s.n. */
static size_t css_scan_to(struct slice s, size_t i, const char *stops)
{
	size_t depth = 0;
	while (i < s.n) {
		uint8_t c = s.p[i];
		if (c == '"' || c == '\'') {
			i = css_skip_string(s, i);
			continue;
		}
		if (c == '\\') {
			i += 2;
			continue;
		}
		if (c == '(')
			depth++;
		else if (c == ')' && depth > 0)
			depth--;
		else if (depth == 0 && in_set(c, stops))
			return i;
		i++;
	}
	return s.n;
}

/* The index of the '}' that closes the block opened at open, or s.n. */
static size_t css_block_end(struct slice s, size_t open)
{
	size_t depth = 0, i = open;
	while (i < s.n) {
		uint8_t c = s.p[i];
		if (c == '"' || c == '\'') {
			i = css_skip_string(s, i);
			continue;
		}
		if (c == '\\') {
			i += 2;
			continue;
		}
		if (c == '{') {
			depth++;
		} else if (c == '}') {
			if (--depth == 0)
				return i;
		}
		i++;
	}
	return s.n;
}

static bool css_identifier_start(struct slice s, size_t i)
{
	if (i >= s.n)
		return false;
	if (s.p[i] == '-')
		i++;
	return i < s.n && (ascii_alpha(s.p[i]) || s.p[i] == '_');
}

/* Reads an identifier at *i (which must start one) and appends it to out,
 * lowercased if asked. */
static void css_identifier(struct slice s, size_t *i, bool lower,
			   struct buf *out)
{
	while (*i < s.n && css_name_char(s.p[*i])) {
		uint8_t c = lower ? ascii_lower(s.p[*i]) : s.p[*i];
		buf_append(out, &c, 1);
		(*i)++;
	}
}

static const char *const css_pseudo_classes[] = {
	"hover",   "active",	  "focus",	"link",
	"visited", "first-child", "last-child",
};

/* Appends the canonical form of one plain selector to out, or returns
 * false (and leaves out as it was) when it is not plain. */
static bool css_selector(struct slice s, struct buf *out)
{
	size_t start = out->n, i = 0;
	s = slice_trim(s);
	while (i < s.n) {
		size_t parts = 0;
		for (;;) {
			uint8_t c = i < s.n ? s.p[i] : 0;
			if (c == '*' && parts == 0) {
				buf_append(out, "*", 1);
				i++;
			} else if (parts == 0 && css_identifier_start(s, i)) {
				css_identifier(s, &i, true, out);
			} else if ((c == '.' || c == '#') &&
				   css_identifier_start(s, i + 1)) {
				buf_append(out, &c, 1);
				i++;
				css_identifier(s, &i, false, out);
			} else if (c == ':' && css_identifier_start(s, i + 1)) {
				size_t name = out->n + 1;
				buf_append(out, ":", 1);
				i++;
				css_identifier(s, &i, true, out);
				if (!css_in_list(
					    slice_make(out->p + name,
						       out->n - name),
					    css_pseudo_classes,
					    ARRAY_SIZE(css_pseudo_classes)))
					goto refuse;
			} else {
				break;
			}
			parts++;
		}
		if (parts == 0)
			goto refuse;
		bool space = false;
		while (i < s.n && html_space(s.p[i])) {
			space = true;
			i++;
		}
		if (i >= s.n)
			break;
		uint8_t c = s.p[i];
		if (c == '>' || c == '+' || c == '~') {
			uint8_t combinator[3] = {' ', c, ' '};
			buf_append(out, combinator, 3);
			i++;
			while (i < s.n && html_space(s.p[i]))
				i++;
			if (i >= s.n)
				goto refuse;
		} else if (space) {
			buf_append(out, " ", 1);
		} else {
			goto refuse;
		}
	}
	if (out->n > start &&
	    !css_has_forbidden(slice_make(out->p + start, out->n - start)))
		return true;
refuse:
	out->n = start;
	return false;
}

/* Appends the plain selectors of a list, joined by ", ". */
static void css_selectors(struct slice s, struct buf *out)
{
	size_t start = 0;
	for (size_t i = 0; i <= s.n; i++) {
		if (i < s.n && s.p[i] != ',')
			continue;
		size_t before = out->n;
		if (before > 0)
			buf_append_cstr(out, ", ");
		if (!css_selector(slice_make(s.p + start, i - start), out))
			out->n = before;
		start = i + 1;
	}
}

/* Appends the canonical media query list (lowercase, whitespace folded),
 * or returns false. */
static bool css_media(struct slice s, struct buf *out)
{
	size_t start = out->n, depth = 0;
	bool space = false;
	s = slice_trim(s);
	for (size_t i = 0; i < s.n; i++) {
		uint8_t c = s.p[i];
		if (html_space(c)) {
			space = true;
			continue;
		}
		if (space)
			buf_append(out, " ", 1);
		space = false;
		if (c == '(') {
			depth++;
		} else if (c == ')') {
			if (depth == 0)
				return false;
			depth--;
		} else if (!ascii_alpha(c) && !ascii_digit(c) &&
			   !in_set(c, ":,.-/")) {
			return false;
		}
		c = ascii_lower(c);
		buf_append(out, &c, 1);
	}
	return depth == 0 && out->n > start &&
	       !css_has_forbidden(slice_make(out->p + start, out->n - start));
}

struct css_buffers {
	struct buf selectors, declarations, media, scratch;
};

/* Appends the rules of a style sheet (or of an @media block when nested)
 * that pass: "selectors { declarations }" a line each, and "@media query
 * {" ... "}" around those of an @media block. */
static void css_rules(struct slice s, bool nested, struct buf *out,
		      struct css_buffers *b)
{
	size_t i = 0;
	while (i < s.n) {
		uint8_t c = s.p[i];
		if (html_space(c)) {
			i++;
			continue;
		}
		/* <!-- and --> around a style sheet, from the days of
		 * browsers that showed it as text. */
		struct slice rest = slice_make(s.p + i, s.n - i);
		if (slice_prefix_ci(rest, "<!--")) {
			i += 4;
			continue;
		}
		if (slice_prefix_ci(rest, "-->")) {
			i += 3;
			continue;
		}
		if (c == '@') {
			size_t end = css_scan_to(s, i, "{;");
			if (end >= s.n)
				return;
			if (s.p[end] == ';') {
				i = end + 1;
				continue;
			}
			size_t close = css_block_end(s, end);
			size_t name = i + 1;
			while (name < end && css_name_char(s.p[name]))
				name++;
			struct slice keyword =
				slice_make(s.p + i + 1, name - i - 1);
			if (!nested && slice_eq_ci(keyword, "media")) {
				buf_reset(&b->media);
				struct buf inner;
				buf_init(&inner, s.n * 2 + 64);
				if (css_media(
					    slice_make(s.p + name, end - name),
					    &b->media))
					css_rules(slice_make(s.p + end + 1,
							     close - end - 1),
						  true, &inner, b);
				if (inner.n > 0) {
					buf_append_cstr(out, "@media ");
					buf_append_slice(out,
							 buf_slice(&b->media));
					buf_append_cstr(out, " {\n");
					buf_append_slice(out,
							 buf_slice(&inner));
					buf_append_cstr(out, "}\n");
				}
				buf_free(&inner);
			}
			i = close + 1;
			continue;
		}
		size_t open = css_scan_to(s, i, "{");
		if (open >= s.n)
			return;
		size_t close = css_block_end(s, open);
		buf_reset(&b->selectors);
		buf_reset(&b->declarations);
		css_selectors(slice_make(s.p + i, open - i), &b->selectors);
		struct slice block = slice_make(
			s.p + open + 1, (close < s.n ? close : s.n) - open - 1);
		if (b->selectors.n > 0 &&
		    css_declarations(block, &b->declarations, &b->scratch) >
			    0) {
			buf_append_slice(out, buf_slice(&b->selectors));
			buf_append_cstr(out, " { ");
			buf_append_slice(out, buf_slice(&b->declarations));
			buf_append_cstr(out, " }\n");
		}
		i = close + 1;
	}
}

/* The filtered form of a <style> element's text, appended to out. */
static void css_stylesheet(struct slice text, struct buf *out)
{
	struct buf plain;
	struct css_buffers b;
	size_t max = text.n * 2 + 64;
	buf_init(&plain, max);
	buf_init(&b.selectors, max);
	buf_init(&b.declarations, max);
	buf_init(&b.media, max);
	buf_init(&b.scratch, max);
	css_strip_comments(text, &plain);
	css_rules(buf_slice(&plain), false, out, &b);
	buf_free(&plain);
	buf_free(&b.selectors);
	buf_free(&b.declarations);
	buf_free(&b.media);
	buf_free(&b.scratch);
}

/* ---- the walk ---- */

enum frame_mode {
	FRAME_KEEP,    /* the element is written; its end tag follows */
	FRAME_UNWRAP,  /* only the children are written */
	FRAME_FLATTEN, /* past the depth limit: only text is written */
};

struct frame {
	const GumboNode *node;
	unsigned next; /* the next child to visit */
	enum frame_mode mode;
};

struct walker {
	const struct sanitize_options *opt;
	struct sanitize_result *result;
	struct buf *out;
	/* The elements written and not yet closed, as a browser parsing the
	 * output will have them open. */
	GumboTag open[SANITIZE_MAX_DEPTH];
	size_t depth;
	/* Nothing but whitespace written yet: a parser drops whitespace
	 * there, so it is not written either. */
	bool at_start;
	/* Start tags written, which the output's own pre-scan counts. */
	size_t tags;
	struct frame *frames;
	size_t frame_count, frame_cap;
	struct buf url, css, scratch;
};

static uint16_t flags_of(GumboTag tag)
{
	return tag < GUMBO_TAG_LAST ? element_flags[tag] : 0;
}

static uint16_t parent_flags(const struct walker *w)
{
	return w->depth > 0 ? flags_of(w->open[w->depth - 1]) : 0;
}

/* Whether a browser parsing the output would move an element with tag
 * into another place than where we write it: then it is unwrapped. */
static bool would_be_moved(const struct walker *w, GumboTag tag)
{
	uint16_t flags = flags_of(tag);
	if (flags & EL_CLOSES_P) {
		/* A <p> in button scope is closed by this start tag. */
		for (size_t i = w->depth; i-- > 0;) {
			if (w->open[i] == GUMBO_TAG_P)
				return true;
			if (flags_of(w->open[i]) & EL_SCOPE)
				break;
		}
	}
	if (flags & EL_LIST_ITEM) {
		/* An open li (dd, dt) is closed, unless a special element
		 * other than address, div and p is in between. */
		bool li = tag == GUMBO_TAG_LI;
		for (size_t i = w->depth; i-- > 0;) {
			GumboTag t = w->open[i];
			if (li ? t == GUMBO_TAG_LI
			       : (t == GUMBO_TAG_DD || t == GUMBO_TAG_DT))
				return true;
			if ((flags_of(t) & EL_SPECIAL) &&
			    t != GUMBO_TAG_ADDRESS && t != GUMBO_TAG_DIV &&
			    t != GUMBO_TAG_P)
				break;
		}
	}
	if ((flags & EL_HEADING) && (parent_flags(w) & EL_HEADING))
		return true;
	if (tag == GUMBO_TAG_A) {
		for (size_t i = w->depth; i-- > 0;) {
			if (w->open[i] == GUMBO_TAG_A)
				return true;
			if (flags_of(w->open[i]) & EL_MARKER)
				break;
		}
	}
	return false;
}

/* Whether a table part (or any element) may be written here: table parts
 * only inside their own parent, nothing else inside table parts. */
static bool fits_parent(const struct walker *w, GumboTag tag)
{
	uint16_t flags = flags_of(tag);
	GumboTag parent = w->depth > 0 ? w->open[w->depth - 1] : GUMBO_TAG_LAST;
	if (flags & EL_IN_TABLE)
		return parent == GUMBO_TAG_TABLE;
	if (flags & EL_IN_SECTION)
		return parent == GUMBO_TAG_TBODY || parent == GUMBO_TAG_THEAD ||
		       parent == GUMBO_TAG_TFOOT;
	if (flags & EL_IN_ROW)
		return parent == GUMBO_TAG_TR;
	if (flags & EL_IN_COLGROUP)
		return parent == GUMBO_TAG_COLGROUP;
	return !(parent_flags(w) & EL_TABLE_MODE);
}

static void write_text(struct walker *w, const char *text)
{
	struct slice s = slice_cstr(text);
	if (parent_flags(w) & EL_TABLE_MODE) {
		/* Only whitespace stays inside table parts; a parser moves
		 * other text out of the table. */
		for (size_t i = 0; i < s.n; i++)
			if (!html_space(s.p[i]))
				return;
	}
	if (w->at_start) {
		/* And a byte order mark, which a reader of bytes drops. */
		for (;;) {
			if (s.n > 0 && html_space(s.p[0]))
				s = slice_make(s.p + 1, s.n - 1);
			else if (s.n >= 3 &&
				 memcmp(s.p, "\xef\xbb\xbf", 3) == 0)
				s = slice_make(s.p + 3, s.n - 3);
			else
				break;
		}
		if (s.n == 0)
			return;
		w->at_start = false;
	}
	append_escaped(w->out, s.p, s.n, false);
}

static void write_attribute(struct walker *w, const char *name,
			    struct slice value)
{
	buf_append_cstr(w->out, " ");
	buf_append_cstr(w->out, name);
	buf_append_cstr(w->out, "=\"");
	append_escaped(w->out, value.p, value.n, true);
	buf_append_cstr(w->out, "\"");
}

/* Decides an image source: returns whether it is kept, and the URL to
 * write in *url_r. */
static bool image_source(struct walker *w, const char *raw, struct slice *url_r)
{
	if (!url_normalize(raw, &w->url))
		return false;
	struct slice url = buf_slice(&w->url), scheme = url_scheme(url);
	*url_r = url;
	if (slice_eq_ci(scheme, "cid")) {
		if (w->opt->resolve_cid == NULL)
			return false;
		const char *to = w->opt->resolve_cid(
			(const char *)url.p + 4, url.n - 4, w->opt->context);
		if (to == NULL)
			return false;
		*url_r = slice_cstr(to);
		return true;
	}
	if (slice_eq_ci(scheme, "http") || slice_eq_ci(scheme, "https")) {
		if (!w->opt->remote_images)
			w->result->remote_images_blocked++;
		return w->opt->remote_images;
	}
	return data_image_allowed(url);
}

/* Writes the allowed attributes of an element; returns whether an <a>
 * kept its href. */
static bool write_attributes(struct walker *w, const GumboElement *e)
{
	bool href = false;
	for (unsigned i = 0; i < e->attributes.length; i++) {
		const GumboAttribute *a = e->attributes.data[i];
		const struct attribute_rule *rule = attribute_rule(e->tag, a);
		struct slice value = slice_cstr(a->value);
		if (rule == NULL) {
			w->result->removed_attributes++;
			continue;
		}
		bool keep = true;
		switch (rule->kind) {
		case ATTRIBUTE_PLAIN:
			break;
		case ATTRIBUTE_HREF:
			keep = url_normalize(a->value, &w->url) &&
			       href_allowed(buf_slice(&w->url));
			value = buf_slice(&w->url);
			href = keep;
			break;
		case ATTRIBUTE_SRC:
			keep = image_source(w, a->value, &value);
			break;
		case ATTRIBUTE_STYLE:
			buf_reset(&w->css);
			keep = css_declarations(value, &w->css, &w->scratch) >
				       0 &&
			       !buf_overflowed(&w->css);
			value = buf_slice(&w->css);
			break;
		}
		if (!keep) {
			w->result->removed_attributes++;
			continue;
		}
		write_attribute(w, rule->name, value);
	}
	return href;
}

static void push_frame(struct walker *w, const GumboNode *node,
		       enum frame_mode mode)
{
	if (w->frame_count == w->frame_cap) {
		w->frame_cap = w->frame_cap * 2 + 64;
		w->frames =
			xrealloc(w->frames, w->frame_cap * sizeof(*w->frames));
	}
	struct frame *f = &w->frames[w->frame_count++];
	f->node = node;
	f->next = 0;
	f->mode = mode;
}

/* The text of a <style> element, filtered and written when anything is
 * left. */
static void write_style(struct walker *w, const GumboElement *e)
{
	struct buf text;
	buf_init(&text, SIZE_MAX);
	for (unsigned i = 0; i < e->children.length; i++) {
		const GumboNode *child = e->children.data[i];
		if (child->type == GUMBO_NODE_TEXT ||
		    child->type == GUMBO_NODE_WHITESPACE)
			buf_append_cstr(&text, child->v.text.text);
	}
	buf_reset(&w->css);
	css_stylesheet(buf_slice(&text), &w->css);
	buf_free(&text);
	if (w->css.n == 0 || buf_overflowed(&w->css)) {
		w->result->removed_elements++;
		return;
	}
	/* The text of a <style> is not escaped: it ends at the first "</",
	 * so the filter writes no '<' at all. */
	DIJK_ASSERT(memchr(w->css.p, '<', w->css.n) == NULL);
	buf_append_cstr(w->out, "<style>");
	buf_append_slice(w->out, buf_slice(&w->css));
	buf_append_cstr(w->out, "</style>");
	w->at_start = false;
	w->tags++;
}

/* Decides what becomes of an element met in the walk, writes its start
 * tag if it is kept, and pushes a frame for its children. */
static void enter_element(struct walker *w, const GumboNode *node, bool flatten)
{
	const GumboElement *e = &node->v.element;
	uint16_t flags = flags_of(e->tag);
	if (e->tag_namespace != GUMBO_NAMESPACE_HTML || (flags & EL_DROP) ||
	    (e->tag == GUMBO_TAG_UNKNOWN && unknown_is_dropped(e)) ||
	    (flatten && e->tag == GUMBO_TAG_STYLE)) {
		w->result->removed_elements++;
		return;
	}
	if (flatten) {
		push_frame(w, node, FRAME_FLATTEN);
		return;
	}
	/* Room for a whole table: table, tbody, tr and td. */
	size_t room = e->tag == GUMBO_TAG_TABLE ? 4 : 1;
	if (w->depth + room > SANITIZE_MAX_DEPTH) {
		push_frame(w, node, FRAME_FLATTEN);
		return;
	}
	if (e->tag == GUMBO_TAG_STYLE) {
		if (parent_flags(w) & EL_TABLE_MODE &&
		    w->open[w->depth - 1] == GUMBO_TAG_COLGROUP)
			w->result->removed_elements++;
		else
			write_style(w, e);
		return;
	}
	if (!fits_parent(w, e->tag)) {
		/* Inside table parts an unwrapped element would leave its
		 * content where a parser moves it elsewhere. */
		if (parent_flags(w) & EL_TABLE_MODE) {
			w->result->removed_elements++;
			return;
		}
		push_frame(w, node, FRAME_UNWRAP);
		return;
	}
	if (!(flags & EL_KEEP) || would_be_moved(w, e->tag)) {
		push_frame(w, node, FRAME_UNWRAP);
		return;
	}
	buf_append_cstr(w->out, "<");
	buf_append_cstr(w->out, tag_name(e->tag));
	bool href = write_attributes(w, e);
	if (href)
		buf_append_cstr(
			w->out,
			" target=\"_blank\" rel=\"noopener noreferrer\"");
	buf_append_cstr(w->out, ">");
	w->at_start = false;
	w->tags++;
	if (flags & EL_VOID)
		return;
	/* A parser drops a newline right after <pre>: one of ours goes
	 * first, so that the content's own is kept. */
	if (e->tag == GUMBO_TAG_PRE)
		buf_append_cstr(w->out, "\n");
	w->open[w->depth++] = e->tag;
	push_frame(w, node, FRAME_KEEP);
}

static const GumboVector *children_of(const GumboNode *node)
{
	if (node->type == GUMBO_NODE_DOCUMENT)
		return &node->v.document.children;
	return &node->v.element.children;
}

static void walk(struct walker *w, const GumboNode *document)
{
	push_frame(w, document, FRAME_UNWRAP);
	while (w->frame_count > 0) {
		struct frame *f = &w->frames[w->frame_count - 1];
		const GumboVector *children = children_of(f->node);
		if (f->next >= children->length) {
			if (f->mode == FRAME_KEEP) {
				GumboTag tag = w->open[--w->depth];
				buf_append_cstr(w->out, "</");
				buf_append_cstr(w->out, tag_name(tag));
				buf_append_cstr(w->out, ">");
			}
			w->frame_count--;
			continue;
		}
		const GumboNode *child = children->data[f->next++];
		bool flatten = f->mode == FRAME_FLATTEN;
		switch (child->type) {
		case GUMBO_NODE_TEXT:
		case GUMBO_NODE_WHITESPACE:
			write_text(w, child->v.text.text);
			break;
		case GUMBO_NODE_ELEMENT:
			enter_element(w, child, flatten);
			break;
		case GUMBO_NODE_TEMPLATE:
			w->result->removed_elements++;
			break;
		default:
			/* Comments; CDATA only exists in SVG and MathML. */
			break;
		}
	}
}

/* ---- the whole ---- */

int html_sanitize(const uint8_t *html, size_t len,
		  const struct sanitize_options *opt, struct buf *out,
		  struct sanitize_result *result)
{
	static const struct sanitize_options defaults;
	struct sanitize_result ignored;
	if (result == NULL)
		result = &ignored;
	memset(result, 0, sizeof(*result));
	if (opt == NULL)
		opt = &defaults;
	if (len > SANITIZE_MAX_INPUT) {
		result->error = "the HTML is too large";
		return -1;
	}
	if (prescan(html, len, &result->error) < 0)
		return -1;
	if (len >= 3 && memcmp(html, "\xef\xbb\xbf", 3) == 0) {
		html += 3;
		len -= 3;
	}

	struct arena arena;
	memset(&arena, 0, sizeof(arena));
	GumboOutput *parsed = parse(&arena, html, len);
	if (parsed == NULL) {
		result->error = arena.error;
		arena_release(&arena);
		return -1;
	}

	struct buf text;
	size_t room =
		out->n <= out->max && !out->overflowed ? out->max - out->n : 0;
	buf_init(&text, room);
	struct walker w = {
		.opt = opt,
		.result = result,
		.out = &text,
		.at_start = true,
	};
	buf_init(&w.url, SIZE_MAX);
	buf_init(&w.css, SIZE_MAX);
	buf_init(&w.scratch, SIZE_MAX);
	walk(&w, parsed->document);
	free(w.frames);
	buf_free(&w.url);
	buf_free(&w.css);
	buf_free(&w.scratch);
	arena_release(&arena);

	/* An output that its own pre-scan would refuse is refused here,
	 * so that the output can always be sanitized again. */
	int r = 0;
	if (buf_overflowed(&text) || text.n > SANITIZE_MAX_INPUT ||
	    w.tags > SANITIZE_MAX_TAGS) {
		memset(result, 0, sizeof(*result));
		result->error = "the output is too large";
		r = -1;
	} else {
		buf_append_slice(out, buf_slice(&text));
	}
	buf_free(&text);
	return r;
}
