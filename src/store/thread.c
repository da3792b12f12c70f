/* thread.c: one store handle per thread of a worker's pool. A handle is
 * not shared between threads; each pool thread opens its own on first use,
 * in a slot the process closes once the threads have stopped. */
#include "core/common.h"

#include "store/store.h"

#include <pthread.h>

#define STORE_THREAD_SLOTS 16

static struct store *slots[STORE_THREAD_SLOTS];
static size_t slots_used;
static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;
static __thread struct store **slot;

struct store *store_thread_handle(const char *data_dir)
{
	if (slot == NULL) {
		pthread_mutex_lock(&slots_lock);
		DIJK_ASSERT(slots_used < STORE_THREAD_SLOTS);
		slot = &slots[slots_used++];
		pthread_mutex_unlock(&slots_lock);
	}
	if (*slot == NULL) {
		const char *error;
		*slot = store_open(data_dir, &error);
		if (*slot == NULL)
			dijk_panic("cannot open the store: %s", error);
	}
	return *slot;
}

void store_thread_handles_close(void)
{
	pthread_mutex_lock(&slots_lock);
	for (size_t i = 0; i < slots_used; i++)
		store_close(&slots[i]);
	pthread_mutex_unlock(&slots_lock);
}
