/* audit_wire.c: cleaning an entry's text and reading the audit messages
 * between the workers and the auth process. Each reader checks its input
 * like network bytes: the other side may have been taken over. */
#include "core/common.h"

#include "auth/audit_wire.h"

#include "core/ipc.h"
#include "core/utf8.h"

#include <sodium.h>

void audit_field_set(char *field, size_t size, struct slice text)
{
	DIJK_ASSERT(size > 0);
	size_t out = 0, i = 0;
	while (i < text.n) {
		uint8_t c = text.p[i];
		size_t len = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
		if (i + len > text.n ||
		    (len > 1 && !utf8_valid(slice_make(text.p + i, len))))
			len = 0; /* not a character: one '?' for the byte */
		size_t take = len == 0 ? 1 : len;
		if (out + take >= size)
			break;
		if (len == 0 || (len == 1 && (c < 0x20 || c == 0x7f))) {
			field[out++] = '?';
		} else {
			memcpy(field + out, text.p + i, len);
			out += len;
		}
		i += take;
	}
	field[out] = '\0';
}

void audit_session_id(const uint8_t *session_hash,
		      char id_r[AUDIT_SESSION_ID_SIZE])
{
	sodium_bin2hex(id_r, AUDIT_SESSION_ID_SIZE, session_hash, 8);
}

/* A text field of at most size - 1 bytes: longer is refused, not cut, so
 * that nothing is kept that the sender did not send. */
static int text(struct slice *cursor, char *out, size_t size)
{
	struct slice f;
	if (ipc_get_bytes(cursor, &f) != 0 || f.n >= size)
		return -1;
	audit_field_set(out, size, f);
	return 0;
}

int audit_event_parse(struct slice payload, struct store_audit_entry *e)
{
	memset(e, 0, sizeof(*e));
	struct slice cursor = payload;
	if (ipc_get_u64(&cursor, &e->account_id) != 0 ||
	    text(&cursor, e->user, sizeof(e->user)) != 0 ||
	    text(&cursor, e->protocol, sizeof(e->protocol)) != 0 ||
	    text(&cursor, e->remote, sizeof(e->remote)) != 0 ||
	    text(&cursor, e->session, sizeof(e->session)) != 0 ||
	    text(&cursor, e->action, sizeof(e->action)) != 0 ||
	    text(&cursor, e->detail, sizeof(e->detail)) != 0 || cursor.n != 0 ||
	    e->action[0] == '\0')
		return -1;
	return 0;
}

int audit_page_begin(struct slice *cursor, uint64_t *account_id_r,
		     char *session_r, size_t size, bool *more_r)
{
	struct slice more;
	if (ipc_get_u64(cursor, account_id_r) != 0 ||
	    text(cursor, session_r, size) != 0 ||
	    ipc_get_bytes(cursor, &more) != 0 || more.n != 1 || more.p[0] > 1)
		return -1;
	*more_r = more.p[0] == 1;
	return 0;
}

int audit_page_next(struct slice *cursor, struct store_audit_entry *e)
{
	if (cursor->n == 0)
		return 0;
	memset(e, 0, sizeof(*e));
	uint64_t id, when;
	if (ipc_get_u64(cursor, &id) != 0 || ipc_get_u64(cursor, &when) != 0 ||
	    id > INT64_MAX || when > INT64_MAX ||
	    text(cursor, e->protocol, sizeof(e->protocol)) != 0 ||
	    text(cursor, e->remote, sizeof(e->remote)) != 0 ||
	    text(cursor, e->session, sizeof(e->session)) != 0 ||
	    text(cursor, e->action, sizeof(e->action)) != 0 ||
	    text(cursor, e->detail, sizeof(e->detail)) != 0)
		return -1;
	e->id = (int64_t)id;
	e->time = (int64_t)when;
	return 1;
}
