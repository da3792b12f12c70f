/* pool.h: a small pool of threads for work that would block the event
 * loop (Argon2id, fsync, long SQLite writes).
 *
 * work() runs on a pool thread and must not touch the loop; done() then
 * runs on the loop thread. The job's arg is owned by the caller throughout. */
#ifndef DIJK_POOL_H
#define DIJK_POOL_H

#include "core/common.h"

struct event_base;
struct pool;

struct pool *pool_new(struct event_base *base, unsigned threads);
/* Waits for running and queued jobs (running their done callbacks), then
 * stops the threads and sets *p to NULL. */
void pool_free(struct pool **p);

void pool_submit(struct pool *p, void (*work)(void *arg),
		 void (*done)(void *arg), void *arg);

/* Jobs submitted and not yet done. */
size_t pool_pending(const struct pool *p);

#endif
