/* unit.c: counters and the summary line of the unit test harness. */
#include "unit.h"

unsigned unit_checks, unit_failures;

int unit_result(const char *name)
{
	printf("%s: %u checks, %u failed\n", name, unit_checks, unit_failures);
	return unit_failures == 0 ? 0 : 1;
}
