/* fuzz_smtp_command.c: SMTP command framing, commands, paths and
 * parameters over arbitrary bytes. */
#include "core/common.h"

#include "smtp/parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct slice in = slice_make(data, size);
	while (in.n > 0) {
		size_t len = 0;
		bool auth = slice_prefix_ci(in, "AUTH ");
		enum smtp_line_result r = smtp_find_line(
			in, auth ? SMTP_MAX_AUTH_LINE : SMTP_MAX_COMMAND_LINE,
			&len);
		if (r != SMTP_LINE_OK)
			break;
		DIJK_ASSERT(len >= 2 && len <= in.n);
		DIJK_ASSERT(in.p[len - 2] == '\r' && in.p[len - 1] == '\n');
		struct smtp_command cmd;
		const char *reply = NULL;
		struct slice line = slice_make(in.p, len - 2);
		if (smtp_parse_command(line, &cmd, &reply) != SMTP_PARSE_OK) {
			DIJK_ASSERT(reply != NULL && strlen(reply) > 4);
		} else if (cmd.verb == SMTP_VERB_MAIL ||
			   cmd.verb == SMTP_VERB_RCPT) {
			/* Results point into the line. */
			const struct smtp_address *a = &cmd.address;
			if (!a->null_path) {
				DIJK_ASSERT(a->local.p >= line.p &&
					    a->local.p + a->local.n <=
						    line.p + line.n);
				DIJK_ASSERT(a->domain.p + a->domain.n <=
					    line.p + line.n);
				DIJK_ASSERT(a->local.n <= SMTP_MAX_LOCAL_PART);
			}
		}
		in = slice_make(in.p + len, in.n - len);
	}
	/* The whole input as one path too. */
	struct smtp_address address;
	const char *reply;
	(void)smtp_parse_path(slice_make(data, size), true, &address, &reply);
	return 0;
}
