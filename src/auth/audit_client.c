/* audit_client.c: audit events as the workers send them, and the pages of
 * entries the auth process answers with. */
#include "core/common.h"

#include "auth/audit_client.h"

#include "auth/audit.h"
#include "core/ipc.h"

void auth_audit(struct auth_client *c, const struct audit_event *e)
{
	struct store_audit_entry *f = xcalloc(1, sizeof(*f));
	const char *none = "";
	audit_field_set(f->user, sizeof(f->user),
			slice_cstr(e->user ? e->user : none));
	audit_field_set(f->protocol, sizeof(f->protocol),
			slice_cstr(e->protocol ? e->protocol : none));
	audit_field_set(f->remote, sizeof(f->remote),
			slice_cstr(e->remote ? e->remote : none));
	audit_field_set(f->session, sizeof(f->session),
			slice_cstr(e->session ? e->session : none));
	audit_field_set(f->action, sizeof(f->action),
			slice_cstr(e->action ? e->action : none));
	audit_field_set(f->detail, sizeof(f->detail),
			slice_cstr(e->detail ? e->detail : none));
	uint8_t account[8];
	for (int i = 0; i < 8; i++)
		account[i] = (uint8_t)(e->account_id >> (56 - 8 * i));
	const struct slice fields[] = {
		slice_make(account, 8),	 slice_cstr(f->user),
		slice_cstr(f->protocol), slice_cstr(f->remote),
		slice_cstr(f->session),	 slice_cstr(f->action),
		slice_cstr(f->detail),
	};
	auth_send_event(c, fields, ARRAY_SIZE(fields));
	free(f);
}

static int text(struct slice *cursor, char *out, size_t size)
{
	struct slice f;
	if (ipc_get_bytes(cursor, &f) != 0 || f.n >= size)
		return -1;
	audit_field_set(out, size, f);
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
