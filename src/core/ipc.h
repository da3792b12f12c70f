/* ipc.h: the small typed messages dijk's processes exchange.
 *
 * Frame: u32 length of what follows (big-endian), u8 version, u8 type,
 * u16 zero, u32 request id, then the payload: a sequence of fields, each
 * u16 length + bytes. Frames larger than IPC_MAX_FRAME are refused. A frame
 * is untrusted input to its receiver and is checked like network bytes. */
#ifndef DIJK_IPC_H
#define DIJK_IPC_H

#include "core/common.h"

#include "core/buf.h"

#define IPC_VERSION	1
#define IPC_HEADER_SIZE 12
#define IPC_MAX_FRAME	(16 * 1024)

enum ipc_type {
	/* worker -> auth: username, password, protocol, remote address */
	IPC_AUTH_PASSWORD = 1,
	/* auth -> worker: u64 account id (0: refused), canonical address */
	IPC_AUTH_REPLY = 2,
	/* worker -> master -> other workers: u64 account id, mailbox name */
	IPC_NOTIFY_MAILBOX = 3,
	/* http -> auth: username, password, remote address, user agent;
	 * answered by IPC_AUTH_REPLY with a third field, the new session's
	 * token (AUTH_TOKEN_SIZE bytes), when the password holds */
	IPC_WEB_LOGIN = 4,
	/* http -> auth: token; IPC_AUTH_REPLY (0 when the session is over) */
	IPC_SESSION_CHECK = 5,
	/* http -> auth: token; IPC_AUTH_REPLY with the account it belonged
	 * to (0: there was no such session) */
	IPC_SESSION_REVOKE = 6,
	/* http -> auth: token, old password, new password, remote address;
	 * IPC_AUTH_REPLY with the account (0 unless the password was
	 * changed), its address and a third field of one byte, the outcome
	 * (enum auth_password_result of auth/auth.h) */
	IPC_PASSWORD_CHANGE = 7,
	/* worker -> auth, no reply: an audit log entry (auth/audit.h): u64
	 * account id, user, protocol, remote address, session, action,
	 * detail. The auth process stamps the time and the MAC. */
	IPC_AUDIT_EVENT = 20,
	/* http -> auth: token, u64 before id (0: newest), u64 limit;
	 * answered by IPC_AUDIT_PAGE */
	IPC_AUDIT_QUERY = 21,
	/* auth -> http: u64 account id (0: no session), the session's public
	 * id, one byte (1: more entries follow this page), then per entry, newest first: u64 id, u64 time, protocol,
	 * remote, session, action, detail; as many as fit one frame */
	IPC_AUDIT_PAGE = 22,
	/* Second factors (30-49). An IPC_WEB_LOGIN whose password holds for
	 * an account with TOTP on is answered IPC_AUTH_REPLY with account 0,
	 * an empty address and a third field, a pending ticket
	 * (AUTH_TOKEN_SIZE bytes) for the second step: */
	/* http -> auth: ticket, code, remote address, user agent; answered
	 * like IPC_WEB_LOGIN (account, address, session token) */
	IPC_WEB_LOGIN_CODE = 30,
	/* http -> auth: session token, u8 operation (enum auth_security_op
	 * of auth/auth.h), remote address, two arguments; answered by
	 * IPC_SECURITY_REPLY */
	IPC_SECURITY = 31,
	/* auth -> http: u64 account id (0: no session), u8 status (enum
	 * auth_security_status), JSON text */
	IPC_SECURITY_REPLY = 32,
};

struct ipc_frame {
	uint8_t type;
	uint32_t id;
	struct slice payload; /* points into the input */
};

/* Starts a frame in out (which is reset). */
void ipc_begin(struct buf *out, enum ipc_type type, uint32_t id);
void ipc_put_bytes(struct buf *out, struct slice field);
void ipc_put_u64(struct buf *out, uint64_t value);
/* Fills in the length; returns -1 when the frame is too large. */
int ipc_end(struct buf *out);

/* Parses the first frame of in. Returns 1 with *frame_r and *consumed_r,
 * 0 when more bytes are needed, -1 on a malformed frame. */
int ipc_parse(struct slice in, struct ipc_frame *frame_r, size_t *consumed_r);

/* Take the next field off *cursor. Return -1 when it is missing or
 * malformed. */
int ipc_get_bytes(struct slice *cursor, struct slice *field_r);
int ipc_get_u64(struct slice *cursor, uint64_t *value_r);

#endif
