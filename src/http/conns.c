/* conns.c: the http worker's connections per address.
 *
 * evhttp accepts connections itself and says nothing when one closes, so
 * a connection is counted at its first request, in a table indexed by its
 * socket: a request on a socket whose record names another connection
 * means that one has closed (its descriptor was reused). Records of
 * closed connections whose descriptors were not reused linger; when an
 * address reaches the limit, its records are checked against the kernel
 * (the descriptor's peer must still be that address) before a request is
 * refused. A connection that never completes a request is not counted,
 * and is closed by the request timeout instead. */
#include "core/common.h"

#include "http/internal.h"

#include "core/connlimit.h"

#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <event2/http.h>

struct conn_record {
	struct evhttp_connection *conn; /* NULL: the slot is free */
	struct connlimit_key key;
};

struct http_conns {
	struct connlimit *counts;
	bool unlimited;
	struct conn_record *records; /* indexed by socket */
	size_t record_count;
};

struct http_conns *http_conns_new(unsigned limit)
{
	struct http_conns *t = xcalloc(1, sizeof(*t));
	t->counts = connlimit_new(limit);
	t->unlimited = limit == 0;
	return t;
}

void http_conns_free(struct http_conns **tp)
{
	struct http_conns *t = *tp;
	if (t == NULL)
		return;
	connlimit_free(&t->counts);
	free(t->records);
	free(t);
	*tp = NULL;
}

static bool same_key(const struct connlimit_key *a,
		     const struct connlimit_key *b)
{
	return a->len == b->len && memcmp(a->bytes, b->bytes, a->len) == 0;
}

static bool peer_key(int fd, struct connlimit_key *key_r)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
		return false;
	connlimit_key_of((const struct sockaddr *)&ss, key_r);
	return key_r->len != 0;
}

static void forget(struct http_conns *t, struct conn_record *r)
{
	connlimit_release(t->counts, &r->key);
	r->conn = NULL;
}

/* Drops the records of key whose sockets no longer hold a connection
 * from that address. */
static void sweep(struct http_conns *t, const struct connlimit_key *key)
{
	for (size_t fd = 0; fd < t->record_count; fd++) {
		struct conn_record *r = &t->records[fd];
		struct connlimit_key now;
		if (r->conn == NULL || !same_key(&r->key, key))
			continue;
		if (!peer_key((int)fd, &now) || !same_key(&now, key))
			forget(t, r);
	}
}

bool http_conns_admit(struct http_conns *t, struct evhttp_request *req)
{
	if (t->unlimited)
		return true;
	struct evhttp_connection *conn = evhttp_request_get_connection(req);
	struct bufferevent *bev =
		conn ? evhttp_connection_get_bufferevent(conn) : NULL;
	int fd = bev ? (int)bufferevent_getfd(bev) : -1;
	struct connlimit_key key;
	if (fd < 0 || !peer_key(fd, &key))
		return true;
	if ((size_t)fd >= t->record_count) {
		size_t n = (size_t)fd + 64;
		t->records = xrealloc(t->records, n * sizeof(*t->records));
		memset(t->records + t->record_count, 0,
		       (n - t->record_count) * sizeof(*t->records));
		t->record_count = n;
	}
	struct conn_record *r = &t->records[fd];
	if (r->conn == conn && same_key(&r->key, &key))
		return true;
	if (r->conn != NULL)
		forget(t, r);
	if (!connlimit_acquire_key(t->counts, &key)) {
		sweep(t, &key);
		if (!connlimit_acquire_key(t->counts, &key))
			return false;
	}
	r->conn = conn;
	r->key = key;
	return true;
}
