/* log: diagnostics and the access log, one write(2) per line on stderr */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define LINE_MAX_LEN 2048

static void write_line(char *line, size_t len)
{
	/* One write per line so that lines from several threads never interleave. */
	if (len >= LINE_MAX_LEN)
		len = LINE_MAX_LEN - 1;
	line[len++] = '\n';
	while (len > 0) {
		ssize_t n = write(STDERR_FILENO, line, len);
		if (n <= 0)
			return;
		line += n;
		len -= (size_t)n;
	}
}

void log_vmsg(const char *fmt, va_list ap)
{
	char line[LINE_MAX_LEN + 1];
	int prefix = snprintf(line, sizeof(line), "mtastsd: ");
	int n = vsnprintf(line + prefix, LINE_MAX_LEN - (size_t)prefix, fmt, ap);
	size_t len;

	if (n < 0)
		return;
	len = (size_t)prefix + (size_t)n;
	/* libmicrohttpd's messages end in a newline already. */
	while (len > (size_t)prefix && len < LINE_MAX_LEN && line[len - 1] == '\n')
		len--;
	write_line(line, len);
}

void log_msg(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(fmt, ap);
	va_end(ap);
}

/* Copies s into out as one field: no spaces, no control or non-ASCII bytes. */
static size_t field(char *out, size_t room, const char *s)
{
	size_t n = 0;

	if (s == NULL || *s == 0)
		s = "-";
	for (; *s && n + 1 < room; s++)
		out[n++] = (*s > 0x20 && *s < 0x7f) ? *s : '?';
	if (n + 1 < room)
		out[n++] = ' ';
	return n;
}

void log_access(const char *client, const char *sni, const char *method, const char *path,
                unsigned status, size_t bytes)
{
	char line[LINE_MAX_LEN + 1];
	size_t len = 0;
	time_t now = time(NULL);
	struct tm tm;
	int n;

	gmtime_r(&now, &tm);
	len = strftime(line, LINE_MAX_LEN, "access: %Y-%m-%dT%H:%M:%SZ ", &tm);
	len += field(line + len, LINE_MAX_LEN - len, client);
	len += field(line + len, LINE_MAX_LEN - len, sni);
	len += field(line + len, LINE_MAX_LEN - len, method);
	len += field(line + len, LINE_MAX_LEN - len, path);
	n = snprintf(line + len, LINE_MAX_LEN - len, "%u %zu", status, bytes);
	if (n > 0)
		len += (size_t)n < LINE_MAX_LEN - len ? (size_t)n : LINE_MAX_LEN - len - 1;
	write_line(line, len);
}

void log_time(time_t t, char *out, size_t size)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, size, "?");
}
