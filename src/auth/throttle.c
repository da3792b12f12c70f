/* throttle.c: the clock, the key and the tarpit around ratelimit.c. */
#include "core/common.h"

#include "auth/throttle.h"

#include "auth/ratelimit.h"
#include "core/log.h"

#include <sodium.h>
#include <time.h>

#include <event2/event.h>

struct tarpit {
	struct throttle *t;
	struct tarpit *prev, *next;
	struct event *timer;
	void (*done)(void *arg);
	void *arg;
};

struct throttle {
	struct event_base *base;
	struct ratelimit *counters;
	unsigned clock_scale;
	int64_t start_ms;
	struct tarpit *tarpits;
};

static int64_t monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The counters' clock: real time since start, times the scale. */
static int64_t now_ms(const struct throttle *t)
{
	return (monotonic_ms() - t->start_ms) * (int64_t)t->clock_scale;
}

struct throttle *throttle_new(struct event_base *base, unsigned clock_scale)
{
	struct throttle *t = xcalloc(1, sizeof(*t));
	uint8_t key[RATELIMIT_KEY_SIZE];
	randombytes_buf(key, sizeof(key));
	t->base = base;
	t->counters = ratelimit_new(RATELIMIT_DEFAULT_CAPACITY, key);
	sodium_memzero(key, sizeof(key));
	t->clock_scale = clock_scale > 0 ? clock_scale : 1;
	t->start_ms = monotonic_ms();
	if (t->clock_scale != 1)
		log_warning("auth.test_clock_scale = %u: the login throttle's "
			    "clock runs %u times too fast (tests only)",
			    t->clock_scale, t->clock_scale);
	return t;
}

static void tarpit_end(struct tarpit *p)
{
	struct throttle *t = p->t;
	if (p->prev)
		p->prev->next = p->next;
	else
		t->tarpits = p->next;
	if (p->next)
		p->next->prev = p->prev;
	event_free(p->timer);
	void (*done)(void *) = p->done;
	void *arg = p->arg;
	free(p);
	done(arg);
}

void throttle_free(struct throttle **tp)
{
	struct throttle *t = *tp;
	if (t == NULL)
		return;
	while (t->tarpits != NULL)
		tarpit_end(t->tarpits);
	ratelimit_free(&t->counters);
	free(t);
	*tp = NULL;
}

bool throttle_admit(struct throttle *t, const char *username,
		    const char *remote)
{
	return ratelimit_attempt(t->counters, slice_cstr(username), remote,
				 now_ms(t), NULL);
}

void throttle_succeeded(struct throttle *t, const char *username,
			const char *remote)
{
	ratelimit_success(t->counters, slice_cstr(username), remote, now_ms(t));
}

static void tarpit_over(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	tarpit_end(arg);
}

void throttle_delay(struct throttle *t, void (*done)(void *arg), void *arg)
{
	struct tarpit *p = xcalloc(1, sizeof(*p));
	p->t = t;
	p->done = done;
	p->arg = arg;
	p->timer = evtimer_new(t->base, tarpit_over, p);
	p->next = t->tarpits;
	if (t->tarpits)
		t->tarpits->prev = p;
	t->tarpits = p;
	struct timeval tv = {THROTTLE_TARPIT_MS / 1000,
			     (THROTTLE_TARPIT_MS % 1000) * 1000};
	evtimer_add(p->timer, &tv);
}
