/* log: diagnostics and the access log, one write(2) per line on stderr */
#ifndef MTASTSD_LOG_H
#define MTASTSD_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <time.h>

/* "mtastsd: <message>\n". */
void log_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_vmsg(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/* t as the logs write times, RFC 3339 in UTC ("2026-12-04T18:08:05Z"); "?" when it cannot
 * be. size: at least LOG_TIME_MAX. */
#define LOG_TIME_MAX 32
void log_time(time_t t, char *out, size_t size);

/* One access-log line:
 * "access: <RFC 3339 UTC time> <client> <sni> <method> <path> <status> <bytes>".
 * Fields are sanitized: anything outside printable ASCII, and spaces, become '?'. */
void log_access(const char *client, const char *sni, const char *method, const char *path,
                unsigned status, size_t bytes);

#endif
