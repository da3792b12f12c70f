/* fuzz_imap_command.c: IMAP framing, commands and the grammar helpers over
 * arbitrary bytes, driven the way a session drives them: the input is fed
 * in chunks, CONTINUEs are answered, refused literals are skipped or end
 * the connection, and each whole command is parsed and its arguments run
 * through the helper its command name calls for. Checks that frames stay
 * inside the input, that every result points into the command or the
 * arena, that the limits hold, and that what is encoded decodes back.
 *
 * The first input byte picks the chunk size and the limits. */
#include "core/common.h"

#include "imap/parser.h"

#include "core/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ARENA_MAX (16 * 1024 * 1024)

static struct arena *arena;
static struct slice command;

static bool inside(struct slice outer, struct slice s)
{
	uintptr_t lo = (uintptr_t)outer.p, p = (uintptr_t)s.p;
	return p >= lo && p - lo <= outer.n && s.n <= outer.n - (p - lo);
}

/* A result: empty, or in the command, or in the arena. */
static void check_slice(struct slice s)
{
	if (s.n == 0)
		return;
	DIJK_ASSERT(inside(command, s) || arena_contains(arena, s.p, s.n));
}

static void check_seqset(const struct imap_seqset *set)
{
	DIJK_ASSERT(set->count <= IMAP_MAX_SEQUENCE_RANGES);
	DIJK_ASSERT(!set->saved || set->count == 0);
	if (set->count > 0)
		DIJK_ASSERT(arena_contains(arena, set->ranges,
					   set->count * sizeof(*set->ranges)));
	for (size_t i = 0; i < set->count; i++) {
		const struct imap_range *r = &set->ranges[i];
		DIJK_ASSERT(r->lo <= r->hi);
		/* Sorted, disjoint and not adjacent. */
		if (i > 0)
			DIJK_ASSERT(r->lo > set->ranges[i - 1].hi + 1ull);
		DIJK_ASSERT(imap_seqset_contains(set, r->lo));
		DIJK_ASSERT(imap_seqset_contains(set, r->hi));
		if (r->lo > 0 && (i == 0 || r->lo - 1 > set->ranges[i - 1].hi))
			DIJK_ASSERT(!imap_seqset_contains(set, r->lo - 1));
	}
}

/* Modified UTF-7: a name that decodes encodes back to itself (INBOX
 * aside), and anything encoded decodes. */
static void check_mutf7(struct slice s)
{
	struct buf utf8, back;
	buf_init(&utf8, 1 << 20);
	buf_init(&back, 1 << 20);
	if (imap_mutf7_decode(s, &utf8)) {
		DIJK_ASSERT(utf8_valid(buf_slice(&utf8)));
		imap_mutf7_encode(buf_slice(&utf8), &back);
		if (!slice_eq_ci(s, "INBOX"))
			DIJK_ASSERT(
				back.n == s.n &&
				(s.n == 0 || memcmp(back.p, s.p, s.n) == 0));
	}
	if (utf8_valid(s) && memchr(s.p, 0, s.n) == NULL) {
		buf_reset(&back);
		buf_reset(&utf8);
		imap_mutf7_encode(s, &back);
		DIJK_ASSERT(imap_mutf7_decode(buf_slice(&back), &utf8));
		if (!slice_eq_ci(s, "INBOX"))
			DIJK_ASSERT(
				utf8.n == s.n &&
				(s.n == 0 || memcmp(utf8.p, s.p, s.n) == 0));
	}
	buf_free(&utf8);
	buf_free(&back);
}

/* A string sent by the server parses back to the same bytes. */
static void check_append_string(struct slice s)
{
	if (s.n > 0 && memchr(s.p, 0, s.n) != NULL)
		return;
	struct arena *a = arena_new(1 << 20);
	for (int utf8 = 0; utf8 < 2; utf8++) {
		struct buf b;
		buf_init(&b, 1 << 20);
		buf_append_cstr(&b, "t X ");
		imap_append_string(&b, s, utf8);
		buf_append_cstr(&b, "\r\n");
		struct imap_command cmd;
		const char *error;
		int r = imap_parse_command(buf_slice(&b), a, &cmd, &error);
		DIJK_ASSERT(r == 0 && cmd.arg_count == 1);
		struct slice back;
		DIJK_ASSERT(imap_arg_astring(&cmd.args[0], &back));
		DIJK_ASSERT(back.n == s.n &&
			    (s.n == 0 || memcmp(back.p, s.p, s.n) == 0));
		buf_free(&b);
		arena_reset(a);
	}
	arena_free(&a);
}

static void check_dates(struct slice s)
{
	time_t t;
	(void)imap_parse_date(s, &t);
	if (imap_parse_date_time(s, &t)) {
		struct buf b;
		buf_init(&b, 128);
		imap_format_date_time(t, &b);
		time_t back;
		DIJK_ASSERT(imap_parse_date_time(buf_slice(&b), &back));
		/* Years 1 to 9999 survive; zones can push past them. */
		if (t >= -62135596800LL && t <= 253402300799LL)
			DIJK_ASSERT(back == t);
		buf_free(&b);
	}
}

/* Every argument, checked and run through the generic helpers. */
static void check_args(const struct imap_arg *args, size_t count,
		       unsigned depth, size_t *total)
{
	DIJK_ASSERT(depth <= IMAP_MAX_NESTING);
	if (count > 0)
		DIJK_ASSERT(arena_contains(arena, args, count * sizeof(*args)));
	for (size_t i = 0; i < count; i++) {
		const struct imap_arg *a = &args[i];
		(*total)++;
		DIJK_ASSERT(*total <= IMAP_MAX_ARGS);
		check_slice(a->text);
		DIJK_ASSERT(a->text.n == 0 || inside(command, a->text) ||
			    a->type == IMAP_ARG_STRING);
		DIJK_ASSERT(!a->literal8 || a->type == IMAP_ARG_LITERAL);
		if (a->type == IMAP_ARG_ATOM || a->type == IMAP_ARG_NIL)
			DIJK_ASSERT(a->text.n > 0);
		if (a->type == IMAP_ARG_LITERAL && !a->literal8)
			DIJK_ASSERT(a->text.n == 0 ||
				    memchr(a->text.p, 0, a->text.n) == NULL);
		if (a->type == IMAP_ARG_LIST) {
			check_args(a->list, a->count, depth + 1, total);
		} else {
			DIJK_ASSERT(a->count == 0 && a->list == NULL);
		}

		struct slice s;
		bool nil;
		uint64_t v;
		if (imap_arg_astring(a, &s)) {
			check_slice(s);
			check_mutf7(s);
			check_dates(s);
			check_append_string(s);
		}
		if (imap_arg_nstring(a, &s, &nil))
			DIJK_ASSERT(nil == (a->type == IMAP_ARG_NIL));
		if (imap_arg_number(a, UINT32_MAX, &v))
			DIJK_ASSERT(v <= UINT32_MAX);
		if (imap_arg_number(a, 9, &v))
			DIJK_ASSERT(v <= 9 &&
				    a->text.p[a->text.n - 1] - '0' == (int)v);
		if (a->type == IMAP_ARG_ATOM) {
			struct imap_seqset set;
			if (imap_parse_seqset(a->text, 1000, arena, &set) == 0)
				check_seqset(&set);
		}
		if (a->type == IMAP_ARG_ATOM || a->type == IMAP_ARG_LIST) {
			struct imap_flags flags;
			const char *error = NULL;
			if (imap_parse_flags(a, arena, &flags, &error) == 0) {
				DIJK_ASSERT(flags.system_flags < 32);
				for (size_t k = 0; k < flags.keyword_count; k++)
					check_slice(flags.keywords[k]);
			} else {
				DIJK_ASSERT(error != NULL);
			}
		}
	}
}

static void check_fetch(const struct imap_arg *attrs,
			const struct imap_arg *modifiers)
{
	struct imap_fetch f;
	const char *error = NULL;
	if (imap_parse_fetch(attrs, modifiers, arena, &f, &error) < 0) {
		DIJK_ASSERT(error != NULL);
		return;
	}
	DIJK_ASSERT(f.count > 0);
	DIJK_ASSERT(!f.vanished || f.changedsince);
	for (size_t i = 0; i < f.count; i++) {
		const struct imap_fetch_item *it = &f.items[i];
		DIJK_ASSERT(it->part_count <= MIME_MAX_DEPTH);
		DIJK_ASSERT(it->response_name.n > 0);
		DIJK_ASSERT(it->kind != IMAP_FETCH_SAVEDATE);
		if (it->partial)
			DIJK_ASSERT(it->partial_length > 0);
		for (size_t k = 0; k < it->part_count; k++)
			DIJK_ASSERT(it->parts[k] > 0);
		for (size_t k = 0; k < it->field_count; k++) {
			DIJK_ASSERT(it->fields[k].n > 0);
			check_slice(it->fields[k]);
		}
		if (it->kind == IMAP_FETCH_BODY_SECTION ||
		    it->kind == IMAP_FETCH_BINARY ||
		    it->kind == IMAP_FETCH_BINARY_SIZE)
			DIJK_ASSERT(arena_contains(arena, it->response_name.p,
						   it->response_name.n));
	}
}

static void check_search_key(const struct imap_search_key *k, unsigned depth)
{
	DIJK_ASSERT(depth <= 2 * IMAP_MAX_SEARCH_DEPTH);
	check_slice(k->field);
	check_slice(k->value);
	switch (k->kind) {
	case IMAP_SEARCH_AND:
		DIJK_ASSERT(k->child_count > 0);
		break;
	case IMAP_SEARCH_OR:
		DIJK_ASSERT(k->child_count == 2);
		break;
	case IMAP_SEARCH_NOT:
		DIJK_ASSERT(k->child_count == 1);
		break;
	case IMAP_SEARCH_SEQSET:
	case IMAP_SEARCH_UIDSET:
		DIJK_ASSERT(!k->set.saved);
		check_seqset(&k->set);
		break;
	case IMAP_SEARCH_HEADER:
		DIJK_ASSERT(k->field.n > 0);
		break;
	default:
		DIJK_ASSERT(k->child_count == 0);
		break;
	}
	for (size_t i = 0; i < k->child_count; i++)
		check_search_key(&k->children[i], depth + 1);
}

static void check_search(const struct imap_arg *args, size_t count)
{
	struct imap_search s;
	const char *error = NULL;
	if (imap_parse_search(args, count, 500, 70000, arena, &s, &error) < 0) {
		DIJK_ASSERT(error != NULL);
		return;
	}
	DIJK_ASSERT(s.root.kind == IMAP_SEARCH_AND);
	DIJK_ASSERT(!s.esearch
			    ? !(s.return_min || s.return_max || s.return_all ||
				s.return_count || s.return_save)
			    : true);
	check_slice(s.charset);
	check_search_key(&s.root, 0);
}

static void check_command(struct slice cmd_bytes)
{
	arena_reset(arena);
	command = cmd_bytes;
	struct imap_command cmd;
	const char *error = NULL;
	int r = imap_parse_command(cmd_bytes, arena, &cmd, &error);
	if (cmd.tag.n > 0) {
		DIJK_ASSERT(inside(cmd_bytes, cmd.tag) &&
			    cmd.tag.p == cmd_bytes.p);
		DIJK_ASSERT(cmd.tag.n <= IMAP_MAX_TAG);
		for (size_t i = 0; i < cmd.tag.n; i++)
			DIJK_ASSERT(cmd.tag.p[i] > 0x20 &&
				    cmd.tag.p[i] < 0x7f &&
				    cmd.tag.p[i] != '+' && cmd.tag.p[i] != '"');
	}
	if (r < 0) {
		DIJK_ASSERT(error != NULL && error[0] != '\0');
		return;
	}
	DIJK_ASSERT(cmd.tag.n > 0 && cmd.name.n > 0);
	DIJK_ASSERT(inside(cmd_bytes, cmd.name));
	DIJK_ASSERT(cmd_bytes.n >= 2 && cmd_bytes.p[cmd_bytes.n - 1] == '\n' &&
		    cmd_bytes.p[cmd_bytes.n - 2] == '\r');
	size_t total = 0;
	check_args(cmd.args, cmd.arg_count, 0, &total);

	const struct imap_arg *a = cmd.args;
	size_t n = cmd.arg_count;
	struct imap_seqset set;
	const char *e;
	if (slice_eq_ci(cmd.name, "FETCH") && n >= 2) {
		if (imap_parse_seqset(a[0].text, 1000, arena, &set) == 0)
			check_seqset(&set);
		check_fetch(&a[1], n >= 3 ? &a[2] : NULL);
	} else if (slice_eq_ci(cmd.name, "STORE") && n >= 3) {
		struct imap_flags flags;
		(void)imap_parse_flags(&a[2], arena, &flags, &e);
	} else if (slice_eq_ci(cmd.name, "SEARCH")) {
		check_search(a, n);
	} else if (slice_eq_ci(cmd.name, "SORT") && n >= 1) {
		struct imap_sort_criterion *c;
		size_t count;
		size_t first = 0;
		/* ESORT: SORT RETURN (...) (criteria) charset keys */
		if (n >= 2 && a[0].type == IMAP_ARG_ATOM &&
		    slice_eq_ci(a[0].text, "RETURN"))
			first = 2;
		if (first < n && imap_parse_sort_criteria(&a[first], arena, &c,
							  &count, &e) == 0) {
			DIJK_ASSERT(count > 0 && count <= a[first].count);
			if (first + 2 <= n)
				check_search(a + first + 2, n - first - 2);
		}
	} else if (n >= 1) {
		/* Any other command: its arguments as FETCH items and as a
		 * search program too, for coverage. */
		check_fetch(&a[0], n >= 2 ? &a[1] : NULL);
		check_search(a, n);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (arena == NULL)
		arena = arena_new(FUZZ_ARENA_MAX);
	static const struct imap_frame_limits preauth = {256, 64, 4};
	static const struct imap_frame_limits normal = {
		IMAP_MAX_LINE, 4096, IMAP_MAX_COMMAND_LITERALS};
	const struct imap_frame_limits *lim =
		(data[0] & 0x20) ? &preauth : &normal;
	size_t chunk = (data[0] & 0x10) ? SIZE_MAX : (size_t)(data[0] & 15) + 1;
	size_t off = 1;
	while (off < size) {
		size_t left = size - off;
		size_t avail = chunk < left ? chunk : left;
		struct imap_framer f;
		imap_framer_reset(&f);
		enum imap_frame_result r;
		size_t len = 0;
		uint64_t literal = 0;
		bool nonsync = false;
		size_t last_continue = SIZE_MAX;
		for (;;) {
			r = imap_frame(&f, slice_make(data + off, avail), lim,
				       &len, &literal, &nonsync);
			DIJK_ASSERT(f.pos <= avail);
			if (r == IMAP_FRAME_CONTINUE) {
				/* Each CONTINUE answers a new line. */
				DIJK_ASSERT(last_continue == SIZE_MAX ||
					    f.pos > last_continue);
				DIJK_ASSERT(f.continuation_sent &&
					    !f.last_literal_nonsync);
				DIJK_ASSERT(f.literals <= lim->max_literals);
				last_continue = f.pos;
				continue;
			}
			if (r != IMAP_FRAME_NEED_MORE)
				break;
			if (avail == left)
				return 0;
			avail = chunk < left - avail ? avail + chunk : left;
		}
		switch (r) {
		case IMAP_FRAME_COMPLETE:
			DIJK_ASSERT(len >= 1 && len <= avail);
			DIJK_ASSERT(data[off + len - 1] == '\n');
			check_command(slice_make(data + off, len));
			off += len;
			break;
		case IMAP_FRAME_LITERAL_TOO_BIG:
		case IMAP_FRAME_TOO_MANY_LITERALS:
			DIJK_ASSERT(len >= 5 && len <= avail);
			DIJK_ASSERT(data[off + len - 1] == '\n' &&
				    data[off + len - 2] == '\r' &&
				    data[off + len - 3] == '}');
			DIJK_ASSERT(r == IMAP_FRAME_TOO_MANY_LITERALS ||
				    literal > lim->max_literal);
			if (nonsync)
				return 0; /* the session closes */
			off += len;
			break;
		case IMAP_FRAME_TOO_LONG:
			return 0;
		default:
			DIJK_ASSERT(!"unexpected frame result");
		}
	}
	return 0;
}
