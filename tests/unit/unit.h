/* unit.h: a very small table-friendly test harness. Each CHECK that fails
 * prints its file, line and expression; main() of each test file calls its
 * test functions and returns unit_result(). */
#ifndef DIJK_UNIT_H
#define DIJK_UNIT_H

#include "core/common.h"

extern unsigned unit_checks, unit_failures;

#define CHECK(expr)                                                            \
	do {                                                                   \
		unit_checks++;                                                 \
		if (!(expr)) {                                                 \
			unit_failures++;                                       \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, \
				__LINE__, #expr);                              \
		}                                                              \
	} while (0)

/* Like CHECK, naming the table row that failed. */
#define CHECK_CASE(expr, index, input)                                        \
	do {                                                                  \
		unit_checks++;                                                \
		if (!(expr)) {                                                \
			unit_failures++;                                      \
			fprintf(stderr,                                       \
				"%s:%d: case %zu (%s): CHECK failed: %s\n",   \
				__FILE__, __LINE__, (size_t)(index), (input), \
				#expr);                                       \
		}                                                             \
	} while (0)

int unit_result(const char *name);

#endif
