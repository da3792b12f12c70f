/* fuzz_ipc.c: framing of inter-process messages over arbitrary bytes, as a
 * taken-over worker could send them to master or auth, and the audit
 * messages' payloads read by both sides (auth/audit_wire.h). */
#include "core/common.h"

#include "auth/audit_wire.h"
#include "core/ipc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct slice in = slice_make(data, size);
	for (;;) {
		struct ipc_frame f;
		size_t consumed;
		if (ipc_parse(in, &f, &consumed) != 1)
			break;
		DIJK_ASSERT(consumed <= in.n && consumed <= IPC_MAX_FRAME);
		struct slice cursor = f.payload, field;
		while (ipc_get_bytes(&cursor, &field) == 0)
			DIJK_ASSERT(field.p + field.n <= in.p + consumed);
		struct store_audit_entry e;
		if (audit_event_parse(f.payload, &e) == 0)
			DIJK_ASSERT(e.action[0] != '\0' &&
				    strlen(e.detail) <= STORE_AUDIT_MAX_DETAIL);
		struct slice page = f.payload;
		uint64_t account;
		char session[STORE_AUDIT_MAX_SESSION + 1];
		bool more;
		if (audit_page_begin(&page, &account, session, sizeof(session),
				     &more) == 0)
			while (audit_page_next(&page, &e) == 1)
				DIJK_ASSERT(e.id >= 0 && e.time >= 0 &&
					    strchr(e.detail, '\n') == NULL);
		in = slice_make(in.p + consumed, in.n - consumed);
	}
	return 0;
}
