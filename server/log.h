/* log: diagnostics and the access log, one write(2) per line on stderr */
#ifndef MTASTSD_LOG_H
#define MTASTSD_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <time.h>

/* How much a line matters: the syslog priorities, which is what journald reads from a
 * "<N>" line prefix (sd-daemon(3)). */
enum log_level {
	LOG_LEVEL_ERR = 3,     /* something failed: an operator should look */
	LOG_LEVEL_WARNING = 4, /* degraded, retried or refused, the server goes on */
	LOG_LEVEL_INFO = 6,    /* start, reload, changes, access lines */
};

/* Looks once whether stderr is the journal (JOURNAL_STREAM names the device and inode
 * of fd 2): then every line starts with "<N>", its level. Call before threads start;
 * without it (and outside the journal) lines carry no prefix. */
void log_init(void);

/* "mtastsd: <message>\n": log_msg at info level, log_warn and log_err at theirs. */
void log_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* "<message>\n", without "mtastsd: " (a FILE:LINE diagnostic, as check prints it). */
void log_plain(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* t as the logs write times, RFC 3339 in UTC ("2026-12-04T18:08:05Z"); "?" when it cannot
 * be. size: at least LOG_TIME_MAX. */
#define LOG_TIME_MAX 32
void log_time(time_t t, char *out, size_t size);

/* One access-log line, info level:
 * "access: <RFC 3339 UTC time> <client> <sni> <method> <path> <status> <bytes>".
 * Fields are sanitized: anything outside printable ASCII, and spaces, become '?'. */
void log_access(const char *client, const char *sni, const char *method, const char *path,
                unsigned status, size_t bytes);

#endif
