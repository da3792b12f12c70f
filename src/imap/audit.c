/* audit.c: what IMAP sessions tell the audit log. A command notes its
 * entry while it runs on the pool; the loop sends it to the auth process
 * once the command is done (a worker never writes the log itself, and the
 * auth client lives on the loop). One entry per command: a FETCH of a
 * thousand bodies is one line with its UIDs, not a thousand. */
#include "core/common.h"

#include "imap/internal.h"

#include "auth/audit_client.h"
#include "core/buf.h"

#include <stdarg.h>
#include <unistd.h>

/* UIDs shown in one entry; beyond them only their count. */
#define IMAP_AUDIT_MAX_UIDS 4096
#define IMAP_AUDIT_CLIENT   200

struct imap_audit {
	char action[STORE_AUDIT_MAX_ACTION + 1];
	char text[STORE_AUDIT_MAX_DETAIL + 1];
	uint32_t *uids;
	size_t uid_count, uid_cap, uid_total;
	char client[IMAP_AUDIT_CLIENT + 1]; /* from ID */
	bool client_pending;		    /* ID came before login */
	bool needs_uids; /* an entry only when some message was touched */
};

static struct imap_audit *audit_of(struct imap_session *s)
{
	if (s->audit == NULL)
		s->audit = xcalloc(1, sizeof(*s->audit));
	return s->audit;
}

void imap_audit_note(struct imap_session *s, const char *action,
		     bool needs_uids, const char *fmt, ...)
{
	struct imap_audit *a = audit_of(s);
	snprintf(a->action, sizeof(a->action), "%s", action);
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(a->text, sizeof(a->text), fmt, ap);
	va_end(ap);
	if (n < 0)
		a->text[0] = '\0';
	a->uid_count = a->uid_total = 0;
	a->needs_uids = needs_uids;
}

void imap_audit_uid(struct imap_session *s, uint32_t uid)
{
	struct imap_audit *a = audit_of(s);
	a->uid_total++;
	if (a->uid_count == IMAP_AUDIT_MAX_UIDS)
		return;
	if (a->uid_count == a->uid_cap) {
		a->uid_cap = a->uid_cap ? 2 * a->uid_cap : 64;
		a->uids = xrealloc(a->uids, a->uid_cap * sizeof(*a->uids));
	}
	a->uids[a->uid_count++] = uid;
}

void imap_audit_client(struct imap_session *s, const struct imap_arg *list)
{
	struct imap_audit *a = audit_of(s);
	struct buf b;
	buf_init(&b, IMAP_AUDIT_CLIENT);
	for (size_t i = 0; list != NULL && i + 1 < list->count; i += 2) {
		const struct imap_arg *k = &list->list[i],
				      *v = &list->list[i + 1];
		if (k->type != IMAP_ARG_STRING || v->type == IMAP_ARG_LIST)
			continue;
		buf_printf(&b, "%s%.*s=%.*s", b.n ? " " : "", (int)k->text.n,
			   (const char *)k->text.p,
			   v->type == IMAP_ARG_NIL ? 3 : (int)v->text.n,
			   v->type == IMAP_ARG_NIL ? "NIL"
						   : (const char *)v->text.p);
	}
	/* Cut, not dropped, when it is long. */
	size_t n = b.n < IMAP_AUDIT_CLIENT ? b.n : IMAP_AUDIT_CLIENT;
	memcpy(a->client, b.p ? (const char *)b.p : "", n);
	a->client[n] = '\0';
	buf_free(&b);
	if (s->state == IMAP_STATE_NOT_AUTHENTICATED)
		a->client_pending = true;
	else
		imap_audit_note(s, "client", false, "%s", a->client);
}

/* The UIDs as ranges ("1:3,7"), sorted as they came. */
static void uid_text(const struct imap_audit *a, struct buf *out)
{
	for (size_t i = 0; i < a->uid_count;) {
		size_t j = i;
		while (j + 1 < a->uid_count && a->uids[j + 1] == a->uids[j] + 1)
			j++;
		buf_printf(out, "%s%u", i ? "," : "", a->uids[i]);
		if (j > i)
			buf_printf(out, ":%u", a->uids[j]);
		i = j + 1;
	}
}

static void send_entry(struct imap_session *s, const char *action,
		       const char *detail)
{
	char session[40];
	snprintf(session, sizeof(session), "imap-%ld-%llu", (long)getpid(),
		 (unsigned long long)s->id);
	struct audit_event e = {
		.account_id = s->account_id,
		.user = s->user,
		.protocol = "imap",
		.remote = s->remote,
		.session = session,
		.action = action,
		.detail = detail,
	};
	auth_audit(s->server->auth, &e);
}

void imap_audit_flush(struct imap_session *s)
{
	struct imap_audit *a = s->audit;
	if (a == NULL || a->action[0] == '\0')
		return;
	if (a->needs_uids && a->uid_total == 0) {
		a->action[0] = '\0';
		return;
	}
	struct buf detail;
	buf_init(&detail, STORE_AUDIT_MAX_DETAIL);
	buf_append_cstr(&detail, a->text);
	if (a->uid_total > 0) {
		buf_printf(&detail, " %zu message%s, UID ", a->uid_total,
			   a->uid_total == 1 ? "" : "s");
		uid_text(a, &detail);
	}
	if (buf_overflowed(&detail)) {
		/* Too many ranges for one entry: the count stays, with a
		 * mark that the UID list was cut. */
		detail.overflowed = false;
		if (detail.n > STORE_AUDIT_MAX_DETAIL - 4)
			detail.n = STORE_AUDIT_MAX_DETAIL - 4;
		buf_append_cstr(&detail, "...");
	}
	send_entry(s, a->action, buf_cstr(&detail));
	buf_free(&detail);
	a->action[0] = '\0';
	a->uid_count = a->uid_total = 0;
}

void imap_audit_logged_in(struct imap_session *s)
{
	struct imap_audit *a = s->audit;
	if (a == NULL || !a->client_pending)
		return;
	a->client_pending = false;
	send_entry(s, "client", a->client);
}

void imap_audit_free(struct imap_session *s)
{
	if (s->audit == NULL)
		return;
	free(s->audit->uids);
	free(s->audit);
	s->audit = NULL;
}
