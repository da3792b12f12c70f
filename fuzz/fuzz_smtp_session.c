/* fuzz_smtp_session.c: a whole SMTP session driven over a socketpair, on a
 * real store in a temporary directory, with arbitrary client bytes. The
 * first byte picks the port (MX or submission). Leaks, crashes and hangs of
 * the session layer show up here; the parser has targets of its own. */
#include "core/common.h"

#include "auth/auth.h"
#include "core/config.h"
#include "core/log.h"
#include "smtp/deliver.h"
#include "smtp/server.h"
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct smtp_server server;
static struct config cfg;
static char data_dir[4096];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	const char *error;
	uint64_t id;
	log_set_quiet(true);
	signal(SIGPIPE, SIG_IGN);
	const char *tmp = getenv("TMPDIR");
	snprintf(data_dir, sizeof(data_dir), "%s/dijk-fuzz-session-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	if (mkdtemp(data_dir) == NULL || store_create(data_dir, &error) != 0)
		dijk_fatal("cannot make the fuzz store");
	struct store *s = store_open(data_dir, &error);
	if (s == NULL || store_domain_add(s, "example.test", &error) != 0 ||
	    store_user_add(s, "alice@example.test", &id, &error) != 0)
		dijk_fatal("cannot fill the fuzz store");
	store_close(&s);
	config_defaults(&cfg);
	snprintf(cfg.hostname, sizeof(cfg.hostname), "fuzz.example.test");
	cfg.max_message_size = 64 * 1024;
	server.base = event_base_new();
	server.config = &cfg;
	server.data_dir = data_dir;
	server.store = store_open(data_dir, &error);
	server.deliverer =
		deliverer_new(server.base, data_dir, NULL, NULL, &error);
	/* No auth process: AUTH answers 454, which is a path worth taking. */
	server.auth =
		auth_client_new(server.base, "/nonexistent/dijk-auth.sock");
	if (server.store == NULL || server.deliverer == NULL)
		dijk_fatal("cannot open the fuzz store");
	return 0;
}

static void drain(int fd)
{
	uint8_t sink[4096];
	while (read(fd, sink, sizeof(sink)) > 0)
		;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 65536)
		return 0;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
		       sv) != 0)
		dijk_panic("socketpair: %s", strerror(errno));
	struct sockaddr_in sin = {.sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	enum smtp_port port = data[0] & 1 ? SMTP_PORT_SUBMISSION : SMTP_PORT_MX;
	/* The greeting goes out before the client talks. */
	smtp_session_start(&server, port, sv[0], (struct sockaddr *)&sin,
			   sizeof(sin));
	event_base_loop(server.base, EVLOOP_NONBLOCK);
	size_t sent = 1;
	bool shut = false;
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (server.session_count > 0) {
		if (sent < size) {
			ssize_t w = write(sv[1], data + sent, size - sent);
			if (w > 0)
				sent += (size_t)w;
		} else if (!shut) {
			shutdown(sv[1], SHUT_WR);
			shut = true;
		}
		drain(sv[1]);
		event_base_loop(server.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec > 5)
			dijk_panic("session did not end within 5 s");
		if (sent == size && shut && server.session_count > 0)
			usleep(100);
	}
	/* Let deliveries in flight finish before the next input. */
	while (deliverer_pending(server.deliverer) > 0)
		event_base_loop(server.base, EVLOOP_ONCE);
	close(sv[1]);
	return 0;
}
