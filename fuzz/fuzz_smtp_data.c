/* fuzz_smtp_data.c: the DATA reader and the BDAT checker over arbitrary
 * bytes, fed in pieces whose sizes come from the input. Checks that the
 * content of an accepted message never holds a bare CR or LF, and that the
 * reader's verdict does not depend on how the bytes were split. */
#include "core/common.h"

#include "core/buf.h"
#include "smtp/parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool run(const uint8_t *data, size_t size, const uint8_t *splits,
		size_t split_count, struct buf *out, struct smtp_data_reader *r,
		size_t *consumed_r)
{
	smtp_data_reader_init(r);
	size_t pos = 0, k = 0;
	while (pos < size) {
		size_t piece = size - pos;
		if (k < split_count && splits[k] != 0 && splits[k] < piece)
			piece = splits[k];
		k++;
		size_t consumed;
		if (smtp_data_feed(r, slice_make(data + pos, piece), out,
				   &consumed)) {
			DIJK_ASSERT(consumed <= piece);
			*consumed_r = pos + consumed;
			return true;
		}
		DIJK_ASSERT(consumed == piece);
		pos += piece;
	}
	*consumed_r = size;
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t split_count = data[0] % 16;
	if (size < 1 + split_count)
		return 0;
	const uint8_t *splits = data + 1;
	data += 1 + split_count;
	size -= 1 + split_count;

	struct buf whole_out, split_out;
	buf_init(&whole_out, 4096);
	buf_init(&split_out, 4096);
	struct smtp_data_reader whole, split;
	size_t whole_consumed, split_consumed;
	bool whole_done =
		run(data, size, NULL, 0, &whole_out, &whole, &whole_consumed);
	bool split_done = run(data, size, splits, split_count, &split_out,
			      &split, &split_consumed);
	DIJK_ASSERT(whole_done == split_done);
	DIJK_ASSERT(whole_consumed == split_consumed);
	DIJK_ASSERT(whole.error == split.error);
	/* Content matters only for a message that is accepted; after an
	 * error the reader only looks for the end. */
	if (whole.error == SMTP_DATA_ERROR_NONE)
		DIJK_ASSERT(
			whole_out.n == split_out.n &&
			(whole_out.n == 0 ||
			 memcmp(whole_out.p, split_out.p, whole_out.n) == 0));
	if (whole_done && whole.error == SMTP_DATA_ERROR_NONE) {
		for (size_t i = 0; i < whole_out.n; i++) {
			if (whole_out.p[i] == '\n')
				DIJK_ASSERT(i > 0 &&
					    whole_out.p[i - 1] == '\r');
			if (whole_out.p[i] == '\r')
				DIJK_ASSERT(i + 1 < whole_out.n &&
					    whole_out.p[i + 1] == '\n');
		}
	}
	buf_free(&whole_out);
	buf_free(&split_out);

	struct smtp_bdat_checker c;
	smtp_bdat_checker_init(&c);
	smtp_bdat_check(&c, slice_make(data, size / 2));
	smtp_bdat_check(&c, slice_make(data + size / 2, size - size / 2));
	smtp_bdat_finish(&c);
	bool bare = false;
	for (size_t i = 0; i < size; i++) {
		if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r'))
			bare = true;
		if (data[i] == '\r' && (i + 1 == size || data[i + 1] != '\n'))
			bare = true;
	}
	/* The checker keeps its first error. */
	if (bare)
		DIJK_ASSERT(c.error == SMTP_DATA_ERROR_BARE_LINE_END ||
			    c.error == SMTP_DATA_ERROR_LINE_TOO_LONG);
	else
		DIJK_ASSERT(c.error != SMTP_DATA_ERROR_BARE_LINE_END);
	return 0;
}
