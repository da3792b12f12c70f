/* fuzz_imap_session.c: a whole IMAP session over a socketpair, on a real
 * store in a temporary directory, with arbitrary client bytes. The first
 * byte decides whether the session starts logged in (as if LOGIN had
 * succeeded: the fuzzer has no auth process) so that every command of the
 * selected state is reached. */
#include "core/common.h"

#include "auth/auth.h"
#include "core/config.h"
#include "core/log.h"
#include "core/pool.h"
#include "imap/internal.h"
#include "store/store.h"

#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
void imap_session_start(struct imap_server *server, bool imaps, int fd,
			const struct sockaddr *sa);

static struct imap_server server;
static struct config cfg;
static char data_dir[4096];
static uint64_t alice;

static const char seed_message[] =
	"From: Bob <bob@example.test>\r\nTo: alice@example.test\r\n"
	"Subject: =?UTF-8?Q?caf=C3=A9?= plans\r\nMessage-ID: <1@example.test>\r\n"
	"Date: Sun, 22 Nov 2026 10:00:00 +0100\r\nMIME-Version: 1.0\r\n"
	"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
	"Content-Type: text/plain\r\n\r\nhello there\r\n--b\r\n"
	"Content-Type: application/octet-stream\r\n"
	"Content-Transfer-Encoding: base64\r\n\r\nAAECAw==\r\n--b--\r\n";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	const char *error;
	log_set_quiet(true);
	signal(SIGPIPE, SIG_IGN);
	const char *tmp = getenv("TMPDIR");
	snprintf(data_dir, sizeof(data_dir), "%s/dijk-fuzz-imap-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	if (mkdtemp(data_dir) == NULL || store_create(data_dir, &error) != 0)
		dijk_fatal("cannot make the fuzz store");
	struct store *s = store_open(data_dir, &error);
	if (s == NULL || store_domain_add(s, "example.test", &error) != 0 ||
	    store_user_add(s, "alice@example.test", &alice, &error) != 0)
		dijk_fatal("cannot fill the fuzz store");
	for (int i = 0; i < 3; i++) {
		uint32_t uid;
		struct store_delivery d = {
			.data = (const uint8_t *)seed_message,
			.size = sizeof(seed_message) - 1,
			.internal_date = 1795000000 + i,
			.accounts = &alice,
			.account_count = 1,
			.sender = "",
			.uids = &uid,
		};
		struct store_delivery *batch[1] = {&d};
		store_deliver_batch(s, batch, 1);
	}
	store_close(&s);
	config_defaults(&cfg);
	server.base = event_base_new();
	server.config = &cfg;
	server.data_dir = data_dir;
	server.pool = pool_new(server.base, IMAP_POOL_THREADS);
	server.auth =
		auth_client_new(server.base, "/nonexistent/dijk-auth.sock");
	return 0;
}

static void drain(int fd)
{
	uint8_t sink[65536];
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
	imap_session_start(&server, false, sv[0], (struct sockaddr *)&sin);
	if ((data[0] & 1) && server.sessions != NULL) {
		struct imap_session *s = server.sessions;
		s->account_id = alice;
		snprintf(s->user, sizeof(s->user), "alice@example.test");
		s->state = IMAP_STATE_AUTHENTICATED;
	}
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
		if (now.tv_sec - start.tv_sec > 10)
			dijk_panic("session did not end within 10 s");
		if (shut && server.session_count > 0)
			usleep(50);
	}
	close(sv[1]);
	return 0;
}
