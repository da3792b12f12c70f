/* main.c: the dijk command line. Admin commands work on the data
 * directory directly and are never reachable from the network; 'serve'
 * hands over to the master process. */
#include "core/common.h"

#include "auth/password.h"
#include "cli_audit.h"
#include "cli_mail.h"
#include "core/config.h"
#include "core/keymem.h"
#include "core/log.h"
#include "core/privsep.h"
#include "core/tls.h"
#include "master.h"
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

static const char usage_text[] =
	"usage: dijk COMMAND [ARGS] [--data DIR]\n"
	"\n"
	"  init [--hostname NAME]                 create a data directory\n"
	"  serve                                  run the mail service\n"
	"  domain add|del DOMAIN | domain list    manage local domains\n"
	"  user add|passwd USER@DOMAIN [--password-stdin]\n"
	"  user del USER@DOMAIN | user list [DOMAIN]\n"
	"  mail list USER@DOMAIN [--mailbox NAME] list stored messages\n"
	"  mail get USER@DOMAIN UID [--mailbox NAME]\n"
	"                                         print one message\n"
	"  queue list | flush | delete ID         the outbound queue\n"
	"  dkim generate DOMAIN [SELECTOR] | dkim rotate DOMAIN | dkim list\n"
	"                                         DKIM signing keys\n"
	"  dkim sign DOMAIN | dkim verify         sign or check a message (stdin)\n"
	"  dns DOMAIN                             the DNS records to publish\n"
	"  brand add NAME --display TEXT --color #RRGGBB [--logo FILE]\n"
	"            --domain DOMAIN [--domain DOMAIN...]\n"
	"                                         add a webmail brand\n"
	"  brand del NAME | brand list            manage webmail brands\n"
	"  audit [--user USER] [--since T] [--json]\n"
	"                                         the access audit log\n"
	"  audit verify | audit prune [--before T] check it; drop old days\n"
	"\n"
	"--data defaults to $DIJK_DATA, then ./dijk-data.\n";

__attribute__((noreturn)) static void usage(void)
{
	fputs(usage_text, stderr);
	exit(2);
}

struct options {
	const char *data_dir;
	const char *hostname;
	const char *mailbox;
	bool password_stdin;
	const char *display, *color, *logo;
	const char *domains[STORE_MAX_BRAND_DOMAINS];
	size_t domain_count;
	const char *args[4];
	size_t arg_count;
	struct cli_audit_options audit;
	/* Read before admin_enter, while the caller's terminal and files
	 * are still reachable: the new password (user add, user passwd)
	 * and the logo (brand add --logo). */
	char password[PASSWORD_MAX_LENGTH + 2];
	uint8_t *logo_data;
	size_t logo_size;
};

static void parse_options(int argc, char **argv, struct options *o)
{
	memset(o, 0, sizeof(*o));
	o->mailbox = "INBOX";
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--data") == 0 && i + 1 < argc) {
			o->data_dir = argv[++i];
		} else if (strncmp(a, "--data=", 7) == 0) {
			o->data_dir = a + 7;
		} else if (strcmp(a, "--hostname") == 0 && i + 1 < argc) {
			o->hostname = argv[++i];
		} else if (strcmp(a, "--mailbox") == 0 && i + 1 < argc) {
			o->mailbox = argv[++i];
		} else if (strcmp(a, "--display") == 0 && i + 1 < argc) {
			o->display = argv[++i];
		} else if (strcmp(a, "--color") == 0 && i + 1 < argc) {
			o->color = argv[++i];
		} else if (strcmp(a, "--logo") == 0 && i + 1 < argc) {
			o->logo = argv[++i];
		} else if (strcmp(a, "--domain") == 0 && i + 1 < argc) {
			if (o->domain_count == ARRAY_SIZE(o->domains))
				dijk_fatal("at most %zu --domain options",
					   ARRAY_SIZE(o->domains));
			o->domains[o->domain_count++] = argv[++i];
		} else if (strcmp(a, "--user") == 0 && i + 1 < argc) {
			o->audit.user = argv[++i];
		} else if (strcmp(a, "--since") == 0 && i + 1 < argc) {
			o->audit.since = argv[++i];
		} else if (strcmp(a, "--before") == 0 && i + 1 < argc) {
			o->audit.before = argv[++i];
		} else if (strcmp(a, "--json") == 0) {
			o->audit.json = true;
		} else if (strcmp(a, "--password-stdin") == 0) {
			o->password_stdin = true;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			fputs(usage_text, stdout);
			exit(0);
		} else if (a[0] == '-' && a[1] == '-') {
			fprintf(stderr, "dijk: unknown option %s\n", a);
			usage();
		} else if (o->arg_count < ARRAY_SIZE(o->args)) {
			o->args[o->arg_count++] = a;
		} else {
			usage();
		}
	}
	if (o->data_dir == NULL)
		o->data_dir = getenv("DIJK_DATA");
	if (o->data_dir == NULL || o->data_dir[0] == '\0')
		o->data_dir = "./dijk-data";
}

/* Admin commands need the rights of the data directory's owner (or
 * root's). The check is made once, in main (admin_enter), before any
 * command touches the store. */
static void check_owner(const char *data_dir)
{
	struct stat st;
	if (stat(data_dir, &st) != 0)
		dijk_fatal("%s: %s", data_dir, strerror(errno));
	if (geteuid() != 0 && st.st_uid != geteuid())
		dijk_fatal("%s belongs to another user (uid %u): the admin "
			   "commands run as its owner or as root",
			   data_dir, (unsigned)st.st_uid);
}

/* Reads dijk.conf for the user names (defaults when it cannot be read). */
static void load_user_names(struct config *cfg)
{
	config_defaults(cfg);
	const char *error;
	if (access("dijk.conf", F_OK) == 0 &&
	    config_load("dijk.conf", cfg, &error) != 0)
		dijk_fatal("%s", error);
}

/* The user an admin command run by root becomes: the owner of what the
 * command writes (auth.db for users, the DKIM keys for dkim and dns; the
 * shared store, as the workers' user, for the rest). */
static enum privsep_role admin_role(const char *command)
{
	/* Commands that change the store write their audit entry too, which
	 * only the auth process's user may (its user is in the shared group,
	 * so what it writes to meta.db and accounts/ stays usable). */
	if (strcmp(command, "user") == 0 || strcmp(command, "audit") == 0 ||
	    strcmp(command, "domain") == 0 || strcmp(command, "queue") == 0 ||
	    strcmp(command, "brand") == 0)
		return PRIVSEP_ROLE_AUTH;
	if (strcmp(command, "dkim") == 0 || strcmp(command, "dns") == 0)
		return PRIVSEP_ROLE_QUEUE;
	return PRIVSEP_ROLE_SMTP;
}

/* Before an admin command: refuses a user who is neither root nor the
 * data directory's owner, works from inside the data directory, and, run
 * by root where dijk's users exist, puts the store's ownership right and
 * becomes the command's user so that what it writes stays usable by the
 * processes of 'dijk serve'. Returns the data directory to use ("."). */
static const char *admin_enter(const struct options *o, const char *command)
{
	check_owner(o->data_dir);
	const char *data = privsep_enter_data(o->data_dir);
	privsep_check_admin(o->data_dir);
	if (geteuid() != 0)
		return data;
	struct config *cfg = xcalloc(1, sizeof(*cfg));
	load_user_names(cfg);
	struct privsep_users users;
	const char *error;
	/* Without dijk's users, root keeps working as root (as before
	 * them); 'dijk serve' is the one that refuses to start. */
	if (privsep_users_lookup(cfg, &users, &error) == 0 && users.active) {
		if (privsep_fix_data(&users, &error) != 0)
			dijk_fatal("%s", error);
		uid_t uid = privsep_role_uid(&users, admin_role(command));
		if (privsep_become(uid, users.gid, &error) != 0)
			dijk_fatal("%s", error);
		umask(007);
	}
	free(cfg);
	return data;
}

static struct store *open_store(const char *data_dir)
{
	const char *error;
	struct store *s = store_open(data_dir, &error);
	if (s == NULL)
		dijk_fatal("%s", error);
	return s;
}

static const char default_conf[] =
	"# dijk.conf: one 'key = value' per line. See docs/configuration.md.\n"
	"hostname = %s\n"
	"\n"
	"# Listeners: ADDR:PORT, or nothing to turn one off.\n"
	"listen.smtp = 0.0.0.0:25\n"
	"listen.submission = 0.0.0.0:587\n"
	"listen.submissions = 0.0.0.0:465\n"
	"listen.imap = 0.0.0.0:143\n"
	"listen.imaps = 0.0.0.0:993\n"
	"listen.http =\n"
	"listen.https = 0.0.0.0:443\n"
	"\n"
	"tls.cert = cert.pem\n"
	"tls.key = key.pem\n"
	"smtp.max_message_size = 52428800\n"
	"smtp.max_recipients = 100\n"
	"smtp.timeout = 300\n"
	"# Number of smtp worker processes; 0 means one per core.\n"
	"workers = 0\n";

static int cmd_init(const struct options *o)
{
	const char *dir = o->data_dir;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		dijk_fatal("%s: %s", dir, strerror(errno));
	check_owner(dir);
	char path[4096];
	snprintf(path, sizeof(path), "%s/dijk.conf", dir);
	if (access(path, F_OK) == 0)
		dijk_fatal("%s exists already: %s is initialised", path, dir);
	struct config defaults;
	config_defaults(&defaults);
	const char *hostname = o->hostname ? o->hostname : defaults.hostname;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (f == NULL)
		dijk_fatal("%s: %s", path, strerror(errno));
	fprintf(f, default_conf, hostname);
	if (fclose(f) != 0)
		dijk_fatal("%s: %s", path, strerror(errno));
	/* The file must parse: a bad --hostname is caught here. */
	struct config cfg;
	const char *error;
	if (config_load(path, &cfg, &error) != 0) {
		unlink(path);
		dijk_fatal("%s", error);
	}
	char cert[4096], key[4096];
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	if (tls_make_self_signed(hostname, cert, key, &error) != 0)
		dijk_fatal("%s", error);
	if (store_create(dir, &error) != 0)
		dijk_fatal("%s", error);
	printf("initialised %s for %s\n", dir, hostname);
	return 0;
}

static void print_line(const char *text, void *context)
{
	(void)context;
	printf("%s\n", text);
}

static int cmd_domain(const struct options *o)
{
	if (o->arg_count < 2)
		usage();
	struct store *s = open_store(o->data_dir);
	const char *what = o->args[1], *error;
	int ret;
	if (strcmp(what, "list") == 0 && o->arg_count == 2) {
		ret = store_domain_list(s, print_line, NULL, &error);
	} else if (strcmp(what, "add") == 0 && o->arg_count == 3) {
		ret = store_domain_add(s, o->args[2], &error);
	} else if (strcmp(what, "del") == 0 && o->arg_count == 3) {
		ret = store_domain_del(s, o->args[2], &error);
	} else {
		usage();
	}
	if (ret != 0)
		dijk_fatal("%s", error);
	store_close(&s);
	return 0;
}

static void print_brand(const struct store_brand *b, void *context)
{
	(void)context;
	printf("%s\t%s\t%s\t%s", b->name, b->color,
	       b->logo_type ? b->logo_type : "no-logo", b->display);
	for (size_t i = 0; i < b->domain_count; i++)
		printf("%s%s", i ? " " : "\t", b->domains[i]);
	printf("\n");
}

/* Reads a whole small file (the logo). */
static uint8_t *read_small_file(const char *path, size_t max, size_t *size_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		dijk_fatal("%s: %s", path, strerror(errno));
	uint8_t *data = xmalloc(max + 1);
	size_t n = 0;
	for (;;) {
		ssize_t r = read(fd, data + n, max + 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			dijk_fatal("%s: %s", path, strerror(errno));
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > max)
			dijk_fatal("%s: larger than %zu bytes", path, max);
	}
	close(fd);
	*size_r = n;
	return data;
}

static int cmd_brand(const struct options *o)
{
	if (o->arg_count < 2)
		usage();
	const char *what = o->args[1], *error;
	int ret;
	if (strcmp(what, "add") == 0 && o->arg_count == 3) {
		if (o->display == NULL || o->color == NULL ||
		    o->domain_count == 0)
			dijk_fatal("brand add needs --display, --color and at"
				   " least one --domain");
		struct store_brand b = {
			.name = o->args[2],
			.display = o->display,
			.color = o->color,
			.domains = o->domains,
			.domain_count = o->domain_count,
		};
		b.logo = o->logo_data;
		b.logo_size = o->logo_size;
		struct store *s = open_store(o->data_dir);
		ret = store_brand_add(s, &b, &error);
		if (ret != 0)
			dijk_fatal("%s", error);
		store_close(&s);
		/* Read by main before it changed user; ours to free. */
		free(o->logo_data);
		return 0;
	}
	struct store *s = open_store(o->data_dir);
	if (strcmp(what, "list") == 0 && o->arg_count == 2)
		ret = store_brand_each(s, print_brand, NULL, &error);
	else if (strcmp(what, "del") == 0 && o->arg_count == 3)
		ret = store_brand_del(s, o->args[2], &error);
	else
		usage();
	if (ret != 0)
		dijk_fatal("%s", error);
	store_close(&s);
	return 0;
}

/* Reads one line from fd into buf (without the line end). */
static int read_secret_line(int fd, char *buf, size_t size)
{
	size_t n = 0;
	for (;;) {
		char c;
		ssize_t r = read(fd, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || c == '\n')
			break;
		if (n + 1 >= size)
			return -1;
		buf[n++] = c;
	}
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	return 0;
}

static int prompt_secret(const char *prompt, char *buf, size_t size)
{
	int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct termios old, quiet;
	if (tcgetattr(fd, &old) != 0) {
		close(fd);
		return -1;
	}
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	ssize_t w = write(fd, prompt, strlen(prompt));
	(void)w;
	tcsetattr(fd, TCSAFLUSH, &quiet);
	int ret = read_secret_line(fd, buf, size);
	tcsetattr(fd, TCSAFLUSH, &old);
	w = write(fd, "\n", 1);
	close(fd);
	return ret;
}

/* Gets the new password from stdin or a prompt, never from argv. */
static void read_password(const struct options *o,
			  char password[PASSWORD_MAX_LENGTH + 2])
{
	if (o->password_stdin) {
		if (read_secret_line(0, password, PASSWORD_MAX_LENGTH + 2) != 0)
			dijk_fatal("password longer than %d bytes",
				   PASSWORD_MAX_LENGTH);
	} else {
		char again[PASSWORD_MAX_LENGTH + 2];
		if (prompt_secret("Password: ", password,
				  PASSWORD_MAX_LENGTH + 2) != 0 ||
		    prompt_secret("Again: ", again, sizeof(again)) != 0)
			dijk_fatal(
				"no terminal to ask for the password; use --password-stdin");
		bool same = strcmp(password, again) == 0;
		sodium_memzero(again, sizeof(again));
		if (!same)
			dijk_fatal("the passwords differ");
	}
	if (strlen(password) < PASSWORD_MIN_LENGTH)
		dijk_fatal("the password must have at least %d characters",
			   PASSWORD_MIN_LENGTH);
}

static void set_password(struct options *o, struct store *s,
			 uint64_t account_id)
{
	char phc[PASSWORD_PHC_MAX];
	const char *error;
	if (password_hash(slice_cstr(o->password), phc) != 0)
		dijk_fatal("password hashing failed");
	sodium_memzero(o->password, sizeof(o->password));
	struct store_credentials *c =
		store_credentials_open(o->data_dir, &error);
	if (c == NULL)
		dijk_fatal("%s", error);
	if (store_credentials_set_password(c, account_id, phc, &error) != 0)
		dijk_fatal("%s", error);
	store_credentials_close(&c);
	sodium_memzero(phc, sizeof(phc));
	(void)s;
}

static void print_user(const char *address, uint64_t id, void *context)
{
	(void)id;
	(void)context;
	printf("%s\n", address);
}

static int cmd_user(struct options *o)
{
	if (o->arg_count < 2)
		usage();
	if (password_init() != 0)
		dijk_fatal("libsodium initialisation failed");
	struct store *s = open_store(o->data_dir);
	const char *what = o->args[1], *error;
	if (strcmp(what, "list") == 0 && o->arg_count <= 3) {
		if (store_user_list(s, o->arg_count == 3 ? o->args[2] : NULL,
				    print_user, NULL, &error) != 0)
			dijk_fatal("%s", error);
	} else if (strcmp(what, "add") == 0 && o->arg_count == 3) {
		/* The password was read first (main): a refused one
		 * creates nothing. */
		char phc[PASSWORD_PHC_MAX];
		if (password_hash(slice_cstr(o->password), phc) != 0)
			dijk_fatal("password hashing failed");
		sodium_memzero(o->password, sizeof(o->password));
		uint64_t id;
		if (store_user_add(s, o->args[2], &id, &error) != 0)
			dijk_fatal("%s", error);
		struct store_credentials *c =
			store_credentials_open(o->data_dir, &error);
		if (c == NULL ||
		    store_credentials_set_password(c, id, phc, &error) != 0) {
			store_user_del(s, o->args[2], &error);
			dijk_fatal("%s", error);
		}
		store_credentials_close(&c);
		sodium_memzero(phc, sizeof(phc));
	} else if (strcmp(what, "passwd") == 0 && o->arg_count == 3) {
		uint64_t id;
		int found = store_user_lookup(s, slice_cstr(o->args[2]), &id,
					      &error);
		if (found < 0)
			dijk_fatal("%s", error);
		if (found == 0)
			dijk_fatal("no user %s", o->args[2]);
		set_password(o, s, id);
	} else if (strcmp(what, "del") == 0 && o->arg_count == 3) {
		if (store_user_del(s, o->args[2], &error) != 0)
			dijk_fatal("%s", error);
	} else {
		usage();
	}
	store_close(&s);
	return 0;
}

static void print_message(const struct store_message_info *m, void *context)
{
	(void)context;
	printf("%u %llu %lld\n", m->uid, (unsigned long long)m->size,
	       (long long)m->internal_date);
}

static int cmd_mail(const struct options *o)
{
	if (o->arg_count < 3)
		usage();
	struct store *s = open_store(o->data_dir);
	const char *what = o->args[1], *error;
	uint64_t id;
	int found = store_user_lookup(s, slice_cstr(o->args[2]), &id, &error);
	if (found < 0)
		dijk_fatal("%s", error);
	if (found == 0)
		dijk_fatal("no user %s", o->args[2]);
	if (strcmp(what, "list") == 0 && o->arg_count == 3) {
		if (store_message_list(s, id, o->mailbox, print_message, NULL,
				       &error) != 0)
			dijk_fatal("%s", error);
	} else if (strcmp(what, "get") == 0 && o->arg_count == 4) {
		char *end;
		errno = 0;
		unsigned long uid = strtoul(o->args[3], &end, 10);
		if (errno != 0 || *end != '\0' || uid == 0 || uid > UINT32_MAX)
			dijk_fatal("bad UID %s", o->args[3]);
		uint8_t *data;
		size_t size;
		int r = store_message_read(s, id, o->mailbox, (uint32_t)uid,
					   &data, &size, &error);
		if (r < 0)
			dijk_fatal("%s", error);
		if (r == 0)
			dijk_fatal("no message with UID %lu in %s", uid,
				   o->mailbox);
		if (fwrite(data, 1, size, stdout) != size)
			dijk_fatal("write: %s", strerror(errno));
		free(data);
	} else {
		usage();
	}
	store_close(&s);
	return 0;
}

static void print_queued(const struct store_queue_info *q, void *context)
{
	(void)context;
	char next[32] = "now";
	struct tm tm;
	if (q->next_attempt > time(NULL) &&
	    gmtime_r(&q->next_attempt, &tm) != NULL)
		strftime(next, sizeof(next), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (q->quarantined)
		snprintf(next, sizeof(next), "never (quarantined)");
	printf("%llu <%s> %s %llu attempts=%u next=%s",
	       (unsigned long long)q->id, q->sender, q->recipients,
	       (unsigned long long)q->size, q->attempts, next);
	if (q->last_error[0] != '\0') {
		/* The remote's words, kept printable on one line. */
		fputs(" error=\"", stdout);
		for (const char *c = q->last_error; *c; c++)
			putchar(*c == '"' || (unsigned char)*c < 0x20 ? '\''
								      : *c);
		putchar('"');
	}
	putchar('\n');
}

static int cmd_queue(const struct options *o)
{
	if (o->arg_count < 2)
		usage();
	const char *verb = o->args[1];
	struct store *s = open_store(o->data_dir);
	const char *error;
	int rc = 0;
	if (strcmp(verb, "list") == 0 && o->arg_count == 2) {
		rc = store_queue_list(s, print_queued, NULL, &error);
	} else if (strcmp(verb, "flush") == 0 && o->arg_count == 2) {
		/* The queue process looks for due messages every second. */
		rc = store_queue_flush(s, &error);
	} else if (strcmp(verb, "delete") == 0 && o->arg_count == 3) {
		char *end;
		errno = 0;
		unsigned long long id = strtoull(o->args[2], &end, 10);
		if (errno != 0 || *end != '\0' || o->args[2][0] == '\0')
			dijk_fatal("%s is not a queue id", o->args[2]);
		rc = store_queue_delete(s, id, &error);
		if (rc == 0)
			dijk_fatal("no queued message %llu", id);
		rc = rc > 0 ? 0 : -1;
	} else {
		store_close(&s);
		usage();
	}
	if (rc != 0)
		dijk_fatal("%s", error);
	store_close(&s);
	return 0;
}

static int cmd_serve(const struct options *o)
{
	if (o->arg_count != 1)
		usage();
	check_owner(o->data_dir);
	char path[4096];
	snprintf(path, sizeof(path), "%s/dijk.conf", o->data_dir);
	struct config *cfg = xcalloc(1, sizeof(*cfg));
	const char *error;
	if (config_load(path, cfg, &error) != 0)
		dijk_fatal("%s", error);
	/* Every process works from inside the data directory, so that one
	 * that gave up root needs no right on the directories above. */
	const char *data = privsep_enter_data(o->data_dir);
	struct privsep_users users;
	if (privsep_users_lookup(cfg, &users, &error) != 0)
		dijk_fatal("started as root, dijk runs its processes as "
			   "unprivileged users: %s",
			   error);
	/* The store must exist before any child opens it. */
	struct store *s = open_store(data);
	store_close(&s);
	if (privsep_fix_data(&users, &error) != 0)
		dijk_fatal("%s", error);
	int status = master_run(data, o->data_dir, cfg, &users);
	free(cfg);
	return status;
}

/* dkim and dns. Their files are the queue's (dijk-queue, when root runs
 * them where dijk's users exist) while the audit log is the auth
 * process's: a command that changes keys runs in a child as the queue's
 * user, and its entry is written afterwards as the auth process's. */
static int dkim_command(struct options *o, const char *command)
{
	bool changes =
		o->arg_count >= 2 && (strcmp(o->args[1], "generate") == 0 ||
				      strcmp(o->args[1], "rotate") == 0);
	int status;
	if (geteuid() == 0 && changes) {
		fflush(NULL);
		pid_t pid = fork();
		if (pid < 0)
			dijk_fatal("fork: %s", strerror(errno));
		if (pid == 0) {
			const char *data = admin_enter(o, command);
			int child = cli_dkim(data, o->args, o->arg_count);
			fflush(NULL); /* _exit would drop what it printed */
			_exit(child);
		}
		int wstatus;
		while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR)
			;
		status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 1;
		if (status == 0)
			cli_audit_admin(admin_enter(o, "audit"), o->args,
					o->arg_count);
	} else {
		o->data_dir = admin_enter(o, command);
		status = (command[1] == 'k' ? cli_dkim : cli_dns)(
			o->data_dir, o->args, o->arg_count);
		if (status == 0 && changes)
			cli_audit_admin(o->data_dir, o->args, o->arg_count);
	}
	if (status == 2)
		usage();
	return status;
}

int main(int argc, char **argv)
{
	/* Before OpenSSL's first allocation (keymem.h). */
	if (keymem_init() != 0)
		dijk_fatal("cannot set OpenSSL's allocator");
	/* Everything dijk creates is its owner's alone. */
	umask(077);
	struct options o;
	parse_options(argc, argv, &o);
	if (o.arg_count == 0)
		usage();
	const char *command = o.args[0];
	if (strcmp(command, "serve") != 0)
		log_set_quiet(true);
	if (strcmp(command, "init") == 0 && o.arg_count == 1)
		return cmd_init(&o);
	if (strcmp(command, "serve") == 0)
		return cmd_serve(&o);
	static const char *const admin_commands[] = {"domain", "user",	"mail",
						     "queue",  "brand", "dkim",
						     "dns",    "audit"};
	bool known = false;
	for (size_t i = 0; i < ARRAY_SIZE(admin_commands); i++)
		known = known || strcmp(command, admin_commands[i]) == 0;
	if (!known)
		usage();
	if (strcmp(command, "user") == 0 && o.arg_count == 3 &&
	    (strcmp(o.args[1], "add") == 0 || strcmp(o.args[1], "passwd") == 0))
		read_password(&o, o.password);
	if (strcmp(command, "brand") == 0 && o.logo != NULL)
		o.logo_data = read_small_file(o.logo, STORE_MAX_LOGO_SIZE,
					      &o.logo_size);
	if (strcmp(command, "dkim") == 0 || strcmp(command, "dns") == 0)
		return dkim_command(&o, command);
	o.data_dir = admin_enter(&o, command);
	/* Admin commands that succeed are recorded in the audit log (those
	 * that fail exit through dijk_fatal before). */
	int status = -1;
	if (strcmp(command, "domain") == 0)
		status = cmd_domain(&o);
	else if (strcmp(command, "user") == 0)
		status = cmd_user(&o);
	else if (strcmp(command, "queue") == 0)
		status = cmd_queue(&o);
	else if (strcmp(command, "brand") == 0)
		status = cmd_brand(&o);
	if (status == 0)
		cli_audit_admin(o.data_dir, o.args, o.arg_count);
	if (status >= 0)
		return status;
	if (strcmp(command, "mail") == 0)
		return cmd_mail(&o);
	if (strcmp(command, "audit") == 0) {
		status = cli_audit(o.data_dir, o.args, o.arg_count, &o.audit);
		if (status == 2)
			usage();
		return status;
	}
	usage();
}
