/* poison.h: functions dijk never calls.
 *
 * Included last by every source file of ours (via common.h); any use of the
 * unbounded string functions below is then a compile error. */
#ifndef DIJK_POISON_H
#define DIJK_POISON_H

#pragma GCC poison strcpy strcat sprintf vsprintf gets strtok system popen

#endif
