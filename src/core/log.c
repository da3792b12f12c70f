/* log.c: one line per event on stderr, prefixed with time, process and pid. */
#include "core/common.h"

#include "core/log.h"

#include <errno.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

static const char *process_name = "dijk";
static long process_id; /* 0: not yet known */
static bool quiet;

void log_set_process(const char *name)
{
	process_name = name;
	process_id = (long)getpid();
}

void log_set_quiet(bool q)
{
	quiet = q;
}

static void log_line(const char *level, const char *fmt, va_list ap)
{
	char text[2048];
	int saved_errno = errno;
	int n = vsnprintf(text, sizeof(text), fmt, ap);
	if (n < 0)
		n = 0;
	if (process_id == 0)
		process_id = (long)getpid();
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	/* One fprintf so that lines of concurrent processes do not interleave. */
	fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%ld] %s: %s\n",
		tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, process_name,
		process_id, level, text);
	errno = saved_errno;
}

void log_info(const char *fmt, ...)
{
	if (quiet)
		return;
	va_list ap;
	va_start(ap, fmt);
	log_line("info", fmt, ap);
	va_end(ap);
}

void log_warning(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_line("warning", fmt, ap);
	va_end(ap);
}

void log_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_line("error", fmt, ap);
	va_end(ap);
}

void dijk_fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char text[2048];
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	fprintf(stderr, "dijk: %s\n", text);
	exit(1);
}

void dijk_panic(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_line("panic", fmt, ap);
	va_end(ap);
	abort();
}

void process_signals_ready(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
}
