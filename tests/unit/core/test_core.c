/* test_core.c: unit tests for src/core: buffers, config, base64, UTF-8
 * and IPC framing. */
#include "unit.h"

#include "core/base64.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/ipc.h"
#include "core/utf8.h"

static void test_buf(void)
{
	struct buf b;
	buf_init(&b, 8);
	CHECK(buf_append_cstr(&b, "abcd"));
	CHECK(buf_printf(&b, "%d", 123));
	CHECK(b.n == 7);
	CHECK(strcmp(buf_cstr(&b), "abcd123") == 0);
	CHECK(!buf_append_cstr(&b, "xy"));
	CHECK(buf_overflowed(&b));
	/* The first error sticks: a later small append is refused too. */
	CHECK(!buf_append_cstr(&b, "z"));
	CHECK(b.n == 7);
	buf_reset(&b);
	CHECK(!buf_overflowed(&b) && b.n == 0);
	CHECK(buf_append(&b, "12345678", 8));
	size_t n;
	uint8_t *p = buf_steal(&b, &n);
	CHECK(n == 8 && memcmp(p, "12345678", 8) == 0 && b.n == 0);
	free(p);
	buf_free(&b);
}

static const struct {
	const char *text;
	int result;
	const char *error_part; /* expected in the error message */
} config_cases[] = {
	{"", 0, NULL},
	{"# comment\n\n   \nhostname = mx.example.org\n", 0, NULL},
	{"listen.smtp = 127.0.0.1:25\nlisten.imap =\n", 0, NULL},
	{"listen.smtp = [::1]:2525\n", 0, NULL},
	{"workers = 4\r\nsmtp.max_recipients = 5\r\n", 0, NULL},
	{"hostname = ok\nbogus = 1\n", -1,
	 "dijk.conf:2: key 'bogus': unknown key"},
	{"listen.smtp = nonsense\n", -1, "dijk.conf:1: key 'listen.smtp'"},
	{"listen.smtp = 1.2.3.4:0\n", -1, "key 'listen.smtp'"},
	{"listen.smtp = 1.2.3.4:65536\n", -1, "key 'listen.smtp'"},
	{"smtp.max_recipients = 0\n", -1, "key 'smtp.max_recipients'"},
	{"smtp.max_message_size = 99999999999999999999999\n", -1,
	 "key 'smtp.max_message_size'"},
	{"workers = 65\n", -1, "key 'workers'"},
	{"hostname = a b\n", -1, "key 'hostname'"},
	{"hostname\n", -1, "dijk.conf:1: key 'hostname': expected '='"},
	{"= x\n", -1, "dijk.conf:1: expected 'key = value'"},
	{"hostname = a\nhostname = b\n", -1,
	 "dijk.conf:2: key 'hostname' given twice"},
};

static void test_config(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(config_cases); i++) {
		struct config cfg;
		config_defaults(&cfg);
		const char *error = NULL;
		int r = config_parse(slice_cstr(config_cases[i].text),
				     "dijk.conf", &cfg, &error);
		CHECK_CASE(r == config_cases[i].result, i,
			   config_cases[i].text);
		if (config_cases[i].error_part != NULL)
			CHECK_CASE(error != NULL &&
					   strstr(error,
						  config_cases[i].error_part),
				   i, config_cases[i].text);
	}
	struct config cfg;
	config_defaults(&cfg);
	const char *error;
	CHECK(cfg.max_message_size == 50u * 1024 * 1024);
	CHECK(cfg.max_recipients == 100);
	CHECK(config_parse(slice_cstr("listen.submission = 0.0.0.0:587\n"
				      "hostname = mx.example.org\n"),
			   "x", &cfg, &error) == 0);
	CHECK(strcmp(cfg.listen[LISTENER_SUBMISSION], "0.0.0.0:587") == 0);
	CHECK(strcmp(cfg.hostname, "mx.example.org") == 0);
	char host[64];
	uint16_t port;
	CHECK(config_split_address("[::1]:993", host, sizeof(host), &port) ==
	      0);
	CHECK(strcmp(host, "::1") == 0 && port == 993);
	CHECK(config_split_address("::1:993", host, sizeof(host), &port) != 0);
}

static void test_base64(void)
{
	static const struct {
		const char *plain, *encoded;
	} cases[] = {
		{"", ""},
		{"f", "Zg=="},
		{"fo", "Zm8="},
		{"foo", "Zm9v"},
		{"foob", "Zm9vYg=="},
		{"fooba", "Zm9vYmE="},
		{"foobar", "Zm9vYmFy"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char enc[64];
		uint8_t dec[64];
		base64_encode(slice_cstr(cases[i].plain), enc);
		CHECK_CASE(strcmp(enc, cases[i].encoded) == 0, i,
			   cases[i].plain);
		long n = base64_decode(slice_cstr(cases[i].encoded), dec);
		CHECK_CASE(n == (long)strlen(cases[i].plain) &&
				   memcmp(dec, cases[i].plain, (size_t)n) == 0,
			   i, cases[i].encoded);
	}
	static const char *bad[] = {"Zg=",	"Z===", "Zm9v\n",
				    "Zg==Zg==", "Zm 9", "Z=g="};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		uint8_t dec[64];
		CHECK_CASE(base64_decode(slice_cstr(bad[i]), dec) == -1, i,
			   bad[i]);
	}
}

static void test_utf8(void)
{
	CHECK(utf8_valid(slice_cstr("plain")));
	CHECK(utf8_valid(slice_cstr("gr\xc3\xbc\xc3\x9f")));
	CHECK(utf8_valid(slice_cstr("\xf0\x9f\x93\xa7")));
	CHECK(!utf8_valid(slice_cstr("\xc0\xaf")));	    /* overlong */
	CHECK(!utf8_valid(slice_cstr("\xed\xa0\x80")));	    /* surrogate */
	CHECK(!utf8_valid(slice_cstr("\xf4\x90\x80\x80"))); /* > U+10FFFF */
	CHECK(!utf8_valid(slice_cstr("\xc3")));		    /* truncated */
	CHECK(!utf8_valid(slice_cstr("\xff")));
}

static void test_ipc(void)
{
	struct buf b;
	buf_init(&b, IPC_MAX_FRAME);
	ipc_begin(&b, IPC_AUTH_PASSWORD, 42);
	ipc_put_bytes(&b, slice_cstr("alice@example.test"));
	ipc_put_u64(&b, 1234567890123ULL);
	CHECK(ipc_end(&b) == 0);
	struct ipc_frame f;
	size_t consumed;
	/* Every proper prefix needs more. */
	for (size_t i = 0; i < b.n; i++)
		CHECK_CASE(ipc_parse(slice_make(b.p, i), &f, &consumed) == 0, i,
			   "prefix");
	CHECK(ipc_parse(buf_slice(&b), &f, &consumed) == 1);
	CHECK(consumed == b.n && f.type == IPC_AUTH_PASSWORD && f.id == 42);
	struct slice cursor = f.payload, s;
	uint64_t v;
	CHECK(ipc_get_bytes(&cursor, &s) == 0 && s.n == 18);
	CHECK(ipc_get_u64(&cursor, &v) == 0 && v == 1234567890123ULL);
	CHECK(cursor.n == 0 && ipc_get_bytes(&cursor, &s) == -1);
	/* A bad version, or a length over the maximum, is refused. */
	b.p[4] = 9;
	CHECK(ipc_parse(buf_slice(&b), &f, &consumed) == -1);
	uint8_t huge[12] = {0x7f, 0xff, 0xff, 0xff, IPC_VERSION};
	CHECK(ipc_parse(slice_make(huge, sizeof(huge)), &f, &consumed) == -1);
	/* A field longer than the rest of the frame is refused. */
	uint8_t shortf[3] = {0, 5, 'x'};
	cursor = slice_make(shortf, 3);
	CHECK(ipc_get_bytes(&cursor, &s) == -1);
	buf_free(&b);
}

int main(void)
{
	test_buf();
	test_config();
	test_base64();
	test_utf8();
	test_ipc();
	return unit_result("core");
}
