/* fuzz_http_session.c: the http worker's front end over a real loopback
 * connection, with arbitrary client bytes: libevent's HTTP parser, then
 * our request target decoding, routing, cookies, the webmail API, JMAP,
 * uploads, downloads, the portal and the well-known files, on a real store
 * in a temporary directory and with a real auth process (its loop runs on
 * a thread of this process).
 *
 * When the first byte of an input is odd, the first request of the rest
 * gets the headers of a logged-in browser (session cookie, CSRF value,
 * a Host and the matching Origin) right after its request line, so that what needs a session
 * is reached too. The session is made once by a real login and made again
 * whenever an input ended it (logout, say). */
#include "core/common.h"

#include "auth/auth.h"
#include "auth/password.h"
#include "core/config.h"
#include "core/log.h"
#include "core/pool.h"
#include "http/internal.h"
#include "store/store.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/http.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_PASSWORD "correct horse battery"
/* An input runs at most this long before we call it a hang. */
#define FUZZ_INPUT_SECONDS 20

static char data_dir[4096];
static struct config cfg;
static struct http_server server;
static struct evhttp *http;
static struct sockaddr_in http_address;
static char session_headers[512];
static size_t session_headers_len;
static uint8_t server_token[AUTH_TOKEN_SIZE];

static const char seed_message[] =
	"From: Bob <bob@example.test>\r\nTo: alice@example.test\r\n"
	"Subject: plans\r\nMessage-ID: <1@example.test>\r\n"
	"Date: Sun, 22 Nov 2026 10:00:00 +0100\r\nMIME-Version: 1.0\r\n"
	"Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n"
	"Content-Type: text/plain\r\n\r\nhello there\r\n--b\r\n"
	"Content-Type: text/html\r\n\r\n<p onclick=x()>hello <img "
	"src=http://x/>there</p>\r\n--b--\r\n";

static void *auth_thread(void *arg)
{
	int fd = *(int *)arg;
	authd_run(data_dir, fd, &cfg);
	return NULL;
}

static void fill_store(void)
{
	const char *error;
	uint64_t alice;
	if (store_create(data_dir, &error) != 0)
		dijk_fatal("cannot make the fuzz store: %s", error);
	struct store *s = store_open(data_dir, &error);
	if (s == NULL || store_domain_add(s, "example.test", &error) != 0 ||
	    store_user_add(s, "alice@example.test", &alice, &error) != 0)
		dijk_fatal("cannot fill the fuzz store");
	uint32_t uid;
	struct store_delivery d = {
		.data = (const uint8_t *)seed_message,
		.size = sizeof(seed_message) - 1,
		.internal_date = 1795000000,
		.accounts = &alice,
		.account_count = 1,
		.sender = "",
		.uids = &uid,
	};
	struct store_delivery *batch[1] = {&d};
	store_deliver_batch(s, batch, 1);
	store_close(&s);
	char phc[PASSWORD_PHC_MAX];
	struct store_credentials *c = store_credentials_open(data_dir, &error);
	if (c == NULL || password_hash(slice_cstr(FUZZ_PASSWORD), phc) != 0 ||
	    store_credentials_set_password(c, alice, phc, &error) != 0)
		dijk_fatal("cannot set the fuzz password");
	store_credentials_close(&c);
}

/* The auth process, on a thread, listening on the data directory's socket
 * as it does in a running server. */
static void start_auth(void)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	if (auth_socket_path(data_dir, sun.sun_path, sizeof(sun.sun_path)) != 0)
		dijk_fatal("auth socket path too long");
	char run_dir[sizeof(sun.sun_path) + 8];
	snprintf(run_dir, sizeof(run_dir), "%s/run", data_dir);
	mkdir(run_dir, 0700);
	static int fd;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 ||
	    listen(fd, 16) != 0)
		dijk_fatal("auth socket: %s", strerror(errno));
	evutil_make_socket_nonblocking(fd);
	pthread_t t;
	if (pthread_create(&t, NULL, auth_thread, &fd) != 0)
		dijk_fatal("cannot start the auth thread");
	pthread_detach(t);
}

struct waiting {
	bool done;
	enum auth_result result;
	uint8_t token[AUTH_TOKEN_SIZE];
};

static void logged_in(void *context, enum auth_result result,
		      uint64_t account_id, const char *address,
		      const uint8_t *token)
{
	(void)account_id;
	(void)address;
	struct waiting *w = context;
	w->result = result;
	if (result == AUTH_OK)
		memcpy(w->token, token, AUTH_TOKEN_SIZE);
	w->done = true;
}

static void checked(void *context, enum auth_result result, uint64_t account_id,
		    const char *address)
{
	(void)account_id;
	(void)address;
	struct waiting *w = context;
	w->result = result;
	w->done = true;
}

static void wait_for(struct waiting *w)
{
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (!w->done) {
		event_base_loop(server.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		usleep(100);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec > 30)
			dijk_panic("the auth thread did not answer");
	}
}

/* A session made by a real login, as headers for a request. */
static void login(void)
{
	struct waiting w = {0};
	for (int tries = 0; tries < 50; tries++) {
		w = (struct waiting){0};
		auth_web_login(server.auth, slice_cstr("alice@example.test"),
			       slice_cstr(FUZZ_PASSWORD), "127.0.0.1", "fuzz",
			       "fuzz.test", logged_in, &w);
		wait_for(&w);
		if (w.result == AUTH_OK)
			break;
		usleep(100 * 1000); /* the auth thread is still starting */
	}
	if (w.result != AUTH_OK)
		dijk_fatal("cannot log in to the fuzz server");
	char cookie[HTTP_TOKEN_TEXT_SIZE], csrf[HTTP_TOKEN_TEXT_SIZE];
	sodium_bin2base64(cookie, sizeof(cookie), w.token, AUTH_TOKEN_SIZE,
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	http_csrf_value(w.token, csrf);
	int n = snprintf(session_headers, sizeof(session_headers),
			 "Cookie: " HTTP_SESSION_COOKIE "=%s\r\n"
			 "X-Dijk-CSRF: %s\r\nHost: fuzz.test\r\n"
			 "Origin: http://fuzz.test\r\n",
			 cookie, csrf);
	if (n < 0 || (size_t)n >= sizeof(session_headers))
		dijk_fatal("session headers too long");
	session_headers_len = (size_t)n;
	memcpy(server_token, w.token, AUTH_TOKEN_SIZE);
}

static void request_cb(struct evhttp_request *req, void *arg)
{
	(void)arg;
	http_handle_request(&server, req, false);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_set_quiet(true);
	signal(SIGPIPE, SIG_IGN);
	if (password_init() != 0)
		dijk_fatal("libsodium");
	const char *tmp = getenv("TMPDIR");
	snprintf(data_dir, sizeof(data_dir), "%s/dijk-fuzz-http-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	if (mkdtemp(data_dir) == NULL)
		dijk_fatal("mkdtemp: %s", strerror(errno));
	fill_store();
	config_defaults(&cfg);
	start_auth();

	const char *error;
	server.base = event_base_new();
	server.config = &cfg;
	server.data_dir = data_dir;
	server.store = store_open(data_dir, &error);
	if (server.store == NULL)
		dijk_fatal("store: %s", error);
	server.pool = pool_new(server.base, HTTP_POOL_THREADS);
	server.conns = http_conns_new(cfg.connections_per_ip);
	char auth_path[256];
	auth_socket_path(data_dir, auth_path, sizeof(auth_path));
	server.auth = auth_client_new(server.base, auth_path);

	http = evhttp_new(server.base);
	http_limit(http);
	evhttp_set_gencb(http, request_cb, NULL);
	struct evhttp_bound_socket *bound =
		evhttp_bind_socket_with_handle(http, "127.0.0.1", 0);
	if (bound == NULL)
		dijk_fatal("cannot listen on loopback");
	socklen_t len = sizeof(http_address);
	if (getsockname(evhttp_bound_socket_get_fd(bound),
			(struct sockaddr *)&http_address, &len) != 0)
		dijk_fatal("getsockname: %s", strerror(errno));
	login();
	return 0;
}

/* Whether the session still holds; a new one when an input ended it. */
static void keep_session(void)
{
	struct waiting w = {0};
	auth_session_check(server.auth, server_token, "fuzz.test", checked, &w);
	wait_for(&w);
	if (w.result != AUTH_OK)
		login();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 65536)
		return 0;
	bool with_session = data[0] & 1;
	data++;
	size--;
	/* The logged-in headers go after the first line, when there is one. */
	size_t split = size;
	if (with_session) {
		const uint8_t *nl = memchr(data, '\n', size);
		split = nl ? (size_t)(nl - data) + 1 : size;
	}
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&http_address,
			      sizeof(http_address)) != 0)
		dijk_panic("connect: %s", strerror(errno));
	evutil_make_socket_nonblocking(fd);
	struct slice parts[3] = {
		slice_make(data, split),
		slice_make((const uint8_t *)session_headers,
			   with_session && split < size ? session_headers_len
							: 0),
		slice_make(data + split, size - split),
	};
	size_t part = 0, offset = 0;
	bool shut = false, closed = false;
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (!closed) {
		while (part < 3 && offset == parts[part].n) {
			part++;
			offset = 0;
		}
		if (part < 3) {
			ssize_t w = write(fd, parts[part].p + offset,
					  parts[part].n - offset);
			if (w > 0)
				offset += (size_t)w;
		} else if (!shut) {
			shutdown(fd, SHUT_WR);
			shut = true;
		}
		uint8_t sink[65536];
		ssize_t r;
		while ((r = read(fd, sink, sizeof(sink))) > 0)
			;
		if (r == 0 || (r < 0 && errno != EAGAIN))
			closed = true;
		event_base_loop(server.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec > FUZZ_INPUT_SECONDS)
			dijk_panic("request did not end within %d s",
				   FUZZ_INPUT_SECONDS);
		if (shut && !closed)
			usleep(50);
	}
	close(fd);
	if (with_session)
		keep_session();
	return 0;
}
