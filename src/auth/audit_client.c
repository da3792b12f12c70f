/* audit_client.c: audit events as the workers send them. */
#include "core/common.h"

#include "auth/audit_client.h"

#include "auth/audit.h"

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
