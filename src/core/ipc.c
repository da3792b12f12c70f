/* ipc.c: framing of inter-process messages. */
#include "core/common.h"

#include "core/ipc.h"

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

void ipc_begin(struct buf *out, enum ipc_type type, uint32_t id)
{
	uint8_t header[IPC_HEADER_SIZE] = {0};
	header[4] = IPC_VERSION;
	header[5] = (uint8_t)type;
	put_be32(header + 8, id);
	buf_reset(out);
	buf_append(out, header, sizeof(header));
}

void ipc_put_bytes(struct buf *out, struct slice field)
{
	if (field.n > UINT16_MAX) {
		out->overflowed = true;
		return;
	}
	uint8_t len[2] = {(uint8_t)(field.n >> 8), (uint8_t)field.n};
	buf_append(out, len, 2);
	buf_append_slice(out, field);
}

void ipc_put_u64(struct buf *out, uint64_t value)
{
	uint8_t v[8];
	for (int i = 0; i < 8; i++)
		v[i] = (uint8_t)(value >> (56 - 8 * i));
	ipc_put_bytes(out, slice_make(v, 8));
}

int ipc_end(struct buf *out)
{
	if (buf_overflowed(out) || out->n > IPC_MAX_FRAME)
		return -1;
	put_be32(out->p, (uint32_t)(out->n - 4));
	return 0;
}

int ipc_parse(struct slice in, struct ipc_frame *frame_r, size_t *consumed_r)
{
	if (in.n < 4)
		return 0;
	uint32_t len = get_be32(in.p);
	if (len < IPC_HEADER_SIZE - 4 || len > IPC_MAX_FRAME - 4)
		return -1;
	if (in.n - 4 < len)
		return 0;
	if (in.p[4] != IPC_VERSION || in.p[6] != 0 || in.p[7] != 0)
		return -1;
	frame_r->type = in.p[5];
	frame_r->id = get_be32(in.p + 8);
	frame_r->payload =
		slice_make(in.p + IPC_HEADER_SIZE, len + 4 - IPC_HEADER_SIZE);
	*consumed_r = len + 4;
	return 1;
}

int ipc_get_bytes(struct slice *cursor, struct slice *field_r)
{
	if (cursor->n < 2)
		return -1;
	size_t len = (size_t)cursor->p[0] << 8 | cursor->p[1];
	if (cursor->n - 2 < len)
		return -1;
	*field_r = slice_make(cursor->p + 2, len);
	*cursor = slice_make(cursor->p + 2 + len, cursor->n - 2 - len);
	return 0;
}

int ipc_get_u64(struct slice *cursor, uint64_t *value_r)
{
	struct slice f;
	if (ipc_get_bytes(cursor, &f) != 0 || f.n != 8)
		return -1;
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | f.p[i];
	*value_r = v;
	return 0;
}
