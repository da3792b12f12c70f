/* fuzz_config.c: the dijk.conf parser over arbitrary bytes. */
#include "core/common.h"

#include "core/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config cfg;
	config_defaults(&cfg);
	const char *error = NULL;
	if (config_parse(slice_make(data, size), "fuzz.conf", &cfg, &error) !=
	    0)
		DIJK_ASSERT(error != NULL &&
			    strncmp(error, "fuzz.conf", 9) == 0);
	else
		DIJK_ASSERT(cfg.max_recipients >= 1);
	return 0;
}
