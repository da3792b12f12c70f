/* log.h: logging to stderr with a process name and severity.
 *
 * Ladder: info < warning < error (serving goes on) < fatal (start-up; exit 1)
 * < panic (a bug; abort for a core dump). */
#ifndef DIJK_LOG_H
#define DIJK_LOG_H

#include "core/common.h"

/* Names the process in every following line ("master", "smtp", ...) and
 * notes its pid; call it first thing in a new child. The string must stay
 * valid for the life of the process. */
void log_set_process(const char *name);
/* Drops info lines when quiet is true (admin commands). */
void log_set_quiet(bool quiet);

/* A child process calls this once its SIGTERM and SIGINT handlers are in
 * place: the master started it with those signals blocked. */
void process_signals_ready(void);

void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
