/* fuzz_ipc.c: framing of inter-process messages over arbitrary bytes, as a
 * taken-over worker could send them to master or auth. */
#include "core/common.h"

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
		in = slice_make(in.p + consumed, in.n - consumed);
	}
	return 0;
}
