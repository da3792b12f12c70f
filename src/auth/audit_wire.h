/* audit_wire.h: the audit log's fields as they cross process boundaries:
 * cleaning text for an entry, a session's public id, and reading the
 * IPC_AUDIT_EVENT and IPC_AUDIT_PAGE payloads (core/ipc.h). Pure functions
 * over bytes, fuzzed by fuzz/fuzz_ipc.c. */
#ifndef DIJK_AUTH_AUDIT_WIRE_H
#define DIJK_AUTH_AUDIT_WIRE_H

#include "core/common.h"

#include "store/audit.h"

/* Copies text into a field of size bytes, cutting it at a UTF-8 character
 * boundary and turning control characters and bytes that are not UTF-8
 * into '?', so that an entry never carries a line break or an escape into
 * a terminal or a table. */
void audit_field_set(char *field, size_t size, struct slice text);

/* A web session's public id: the lowercase hex of the first 8 bytes of its
 * stored hash (17 bytes with the NUL). */
#define AUDIT_SESSION_ID_SIZE 17
void audit_session_id(const uint8_t *session_hash,
		      char id_r[AUDIT_SESSION_ID_SIZE]);

/* Reads an IPC_AUDIT_EVENT payload into e (id, time and mac stay 0): -1
 * when a field is missing, longer than its limit, or the action is empty,
 * or bytes are left over. */
int audit_event_parse(struct slice payload, struct store_audit_entry *e);

/* Reads an IPC_AUDIT_PAGE's head: the account (0: the session is over), the
 * asking session's public id and whether more entries are left. -1 when
 * malformed. */
int audit_page_begin(struct slice *cursor, uint64_t *account_id_r,
		     char *session_r, size_t size, bool *more_r);
/* The next entry of a page (user and mac stay empty): 1, or 0 at the end,
 * -1 when malformed. */
int audit_page_next(struct slice *cursor, struct store_audit_entry *e);

#endif
