/* throttle.c: the clock, the key, the order of checks and the tarpit
 * around ratelimit.c. */
#include "core/common.h"

#include "auth/throttle.h"

#include "auth/auth.h"
#include "auth/ratelimit.h"
#include "core/log.h"

#include <sodium.h>
#include <time.h>

#include <event2/event.h>

/* A refused attempt waiting out the tarpit. */
struct tarpit {
	struct throttle *t;
	struct tarpit *prev, *next;
	struct event *timer;
	void *job;
};

/* An attempt waiting for the check of its username and address. */
struct waiting {
	struct waiting *next;
	void *job;
};

/* A username and address with a check in flight, and the attempts of
 * the same that came meanwhile, in order. */
struct in_flight {
	struct in_flight *prev, *next;
	char username[AUTH_MAX_USERNAME + 1]; /* in lower case */
	char remote[64];
	struct waiting *first, *last;
};

struct throttle {
	struct event_base *base;
	struct ratelimit *counters;
	unsigned clock_scale;
	int64_t start_ms;
	throttle_callback *check, *refuse;
	struct tarpit *tarpits;
	struct in_flight *flights;
	bool stopping;
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

struct throttle *throttle_new(struct event_base *base, unsigned clock_scale,
			      throttle_callback *check,
			      throttle_callback *refuse)
{
	struct throttle *t = xcalloc(1, sizeof(*t));
	uint8_t key[RATELIMIT_KEY_SIZE];
	randombytes_buf(key, sizeof(key));
	t->base = base;
	t->counters = ratelimit_new(RATELIMIT_DEFAULT_CAPACITY, key);
	sodium_memzero(key, sizeof(key));
	t->clock_scale = clock_scale > 0 ? clock_scale : 1;
	t->start_ms = monotonic_ms();
	t->check = check;
	t->refuse = refuse;
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
	void *job = p->job;
	free(p);
	t->refuse(job);
}

static void tarpit_over(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	tarpit_end(arg);
}

static void refuse_later(struct throttle *t, void *job)
{
	if (t->stopping) {
		t->refuse(job);
		return;
	}
	struct tarpit *p = xcalloc(1, sizeof(*p));
	p->t = t;
	p->job = job;
	p->timer = evtimer_new(t->base, tarpit_over, p);
	p->next = t->tarpits;
	if (t->tarpits)
		t->tarpits->prev = p;
	t->tarpits = p;
	struct timeval tv = {THROTTLE_TARPIT_MS / 1000,
			     (THROTTLE_TARPIT_MS % 1000) * 1000};
	evtimer_add(p->timer, &tv);
}

static void lower_copy(char *dst, size_t size, const char *src)
{
	size_t i = 0;
	for (; src[i] != '\0' && i + 1 < size; i++)
		dst[i] = (char)(src[i] >= 'A' && src[i] <= 'Z' ? src[i] + 32
							       : src[i]);
	dst[i] = '\0';
}

static struct in_flight *flight_find(struct throttle *t, const char *username,
				     const char *remote)
{
	char lower[AUTH_MAX_USERNAME + 1];
	lower_copy(lower, sizeof(lower), username);
	for (struct in_flight *f = t->flights; f != NULL; f = f->next)
		if (strcmp(f->username, lower) == 0 &&
		    strcmp(f->remote, remote) == 0)
			return f;
	return NULL;
}

/* Decides about an attempt whose username and address have no check in
 * flight. */
static void decide(struct throttle *t, const char *username, const char *remote,
		   void *job)
{
	if (t->stopping || !ratelimit_attempt(t->counters, slice_cstr(username),
					      remote, now_ms(t), NULL)) {
		refuse_later(t, job);
		return;
	}
	struct in_flight *f = xcalloc(1, sizeof(*f));
	lower_copy(f->username, sizeof(f->username), username);
	snprintf(f->remote, sizeof(f->remote), "%s", remote);
	f->next = t->flights;
	if (t->flights)
		t->flights->prev = f;
	t->flights = f;
	t->check(job);
}

void throttle_attempt(struct throttle *t, const char *username,
		      const char *remote, void *job)
{
	struct in_flight *f = flight_find(t, username, remote);
	if (f == NULL) {
		decide(t, username, remote, job);
		return;
	}
	if (t->stopping) {
		t->refuse(job);
		return;
	}
	struct waiting *w = xcalloc(1, sizeof(*w));
	w->job = job;
	if (f->last)
		f->last->next = w;
	else
		f->first = w;
	f->last = w;
}

void throttle_checked(struct throttle *t, const char *username,
		      const char *remote, bool ok)
{
	if (ok)
		ratelimit_success(t->counters, slice_cstr(username), remote,
				  now_ms(t));
	struct in_flight *f = flight_find(t, username, remote);
	DIJK_ASSERT(f != NULL);
	if (f->prev)
		f->prev->next = f->next;
	else
		t->flights = f->next;
	if (f->next)
		f->next->prev = f->prev;
	/* The next in line is decided on now, knowing this outcome; the
	 * ones behind it wait for its check in turn. */
	struct waiting *w = f->first;
	char name[AUTH_MAX_USERNAME + 1], from[64];
	snprintf(name, sizeof(name), "%s", f->username);
	snprintf(from, sizeof(from), "%s", f->remote);
	free(f);
	while (w != NULL) {
		struct waiting *rest = w->next;
		void *job = w->job;
		free(w);
		decide(t, name, from, job);
		struct in_flight *next = flight_find(t, name, from);
		if (next != NULL) {
			/* Checked: the rest wait behind it. */
			next->first = rest;
			next->last = NULL;
			for (struct waiting *r = rest; r != NULL; r = r->next)
				next->last = r;
			return;
		}
		w = rest; /* refused: decide on the next one */
	}
}

void throttle_stop(struct throttle *t)
{
	t->stopping = true;
	while (t->tarpits != NULL)
		tarpit_end(t->tarpits);
	for (struct in_flight *f = t->flights; f != NULL; f = f->next) {
		while (f->first != NULL) {
			struct waiting *w = f->first;
			f->first = w->next;
			void *job = w->job;
			free(w);
			t->refuse(job);
		}
		f->last = NULL;
	}
}

void throttle_free(struct throttle **tp)
{
	struct throttle *t = *tp;
	if (t == NULL)
		return;
	DIJK_ASSERT(t->stopping && t->tarpits == NULL);
	while (t->flights != NULL) {
		struct in_flight *f = t->flights;
		t->flights = f->next;
		free(f);
	}
	ratelimit_free(&t->counters);
	free(t);
	*tp = NULL;
}
