/* pool.c: worker threads that hand results back to the event loop through
 * an eventfd. */
#include "core/common.h"

#include "core/pool.h"

#include <errno.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>

struct job {
	void (*work)(void *arg);
	void (*done)(void *arg);
	void *arg;
	struct job *next;
};

struct job_list {
	struct job *head, *tail;
};

struct pool {
	struct event_base *base;
	pthread_t *threads;
	unsigned thread_count;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct job_list queued, finished;
	bool stopping;
	size_t pending;
	int event_fd;
	struct event *ev;
};

static void list_push(struct job_list *l, struct job *j)
{
	j->next = NULL;
	if (l->tail)
		l->tail->next = j;
	else
		l->head = j;
	l->tail = j;
}

static struct job *list_pop(struct job_list *l)
{
	struct job *j = l->head;
	if (j) {
		l->head = j->next;
		if (l->head == NULL)
			l->tail = NULL;
	}
	return j;
}

static void *pool_thread(void *arg)
{
	struct pool *p = arg;
	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct job *j = list_pop(&p->queued);
		if (j == NULL) {
			if (p->stopping)
				break;
			pthread_cond_wait(&p->wake, &p->lock);
			continue;
		}
		pthread_mutex_unlock(&p->lock);
		j->work(j->arg);
		pthread_mutex_lock(&p->lock);
		list_push(&p->finished, j);
		uint64_t one = 1;
		if (write(p->event_fd, &one, sizeof(one)) < 0 &&
		    errno != EAGAIN)
			dijk_panic("pool: eventfd write: %s", strerror(errno));
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static void pool_run_finished(struct pool *p)
{
	for (;;) {
		pthread_mutex_lock(&p->lock);
		struct job *j = list_pop(&p->finished);
		pthread_mutex_unlock(&p->lock);
		if (j == NULL)
			return;
		p->pending--;
		j->done(j->arg);
		free(j);
	}
}

static void pool_on_event(evutil_socket_t fd, short what, void *arg)
{
	(void)what;
	uint64_t n;
	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		dijk_panic("pool: eventfd read: %s", strerror(errno));
	pool_run_finished(arg);
}

struct pool *pool_new(struct event_base *base, unsigned threads)
{
	struct pool *p = xcalloc(1, sizeof(*p));
	p->base = base;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->wake, NULL);
	p->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->event_fd < 0)
		dijk_panic("pool: eventfd: %s", strerror(errno));
	p->ev = event_new(base, p->event_fd, EV_READ | EV_PERSIST,
			  pool_on_event, p);
	event_add(p->ev, NULL);
	p->thread_count = threads == 0 ? 1 : threads;
	p->threads = xcalloc(p->thread_count, sizeof(*p->threads));
	for (unsigned i = 0; i < p->thread_count; i++)
		if (pthread_create(&p->threads[i], NULL, pool_thread, p) != 0)
			dijk_panic("pool: cannot start a thread");
	return p;
}

void pool_free(struct pool **pp)
{
	struct pool *p = *pp;
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->thread_count; i++)
		pthread_join(p->threads[i], NULL);
	pool_run_finished(p);
	event_free(p->ev);
	close(p->event_fd);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->wake);
	free(p->threads);
	free(p);
	*pp = NULL;
}

void pool_submit(struct pool *p, void (*work)(void *arg),
		 void (*done)(void *arg), void *arg)
{
	struct job *j = xcalloc(1, sizeof(*j));
	j->work = work;
	j->done = done;
	j->arg = arg;
	pthread_mutex_lock(&p->lock);
	list_push(&p->queued, j);
	p->pending++;
	pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->lock);
}

size_t pool_pending(const struct pool *p)
{
	return p->pending;
}
