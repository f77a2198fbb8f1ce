/* log: diagnostics and the access log, one write(2) per line on stderr */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define LINE_MAX_LEN 2048

/* Set by log_init before any thread starts, read only afterwards. */
static bool journal;

/* One decimal number of JOURNAL_STREAM ending at end (':' or NUL); -1 on anything else. */
static int parse_number(const char *s, char end, const char **ret_next, uintmax_t *ret)
{
	char *next;
	uintmax_t v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoumax(s, &next, 10);
	if (errno != 0 || *next != end)
		return -1;
	*ret_next = next;
	*ret = v;
	return 0;
}

void log_init(void)
{
	/* systemd sets JOURNAL_STREAM=DEV:INO for a stderr connected to the journal; the
	 * variable alone is inherited by anything we start, so the descriptor must match. */
	const char *env = getenv("JOURNAL_STREAM"), *p = env;
	uintmax_t dev, ino;
	struct stat st;

	journal = env != NULL && parse_number(p, ':', &p, &dev) == 0 &&
	          parse_number(p + 1, 0, &p, &ino) == 0 && fstat(STDERR_FILENO, &st) == 0 &&
	          (uintmax_t)st.st_dev == dev && (uintmax_t)st.st_ino == ino;
}

/* Starts a line: "<N>" in the journal, else nothing. Returns its length. */
static size_t line_start(char *line, enum log_level level)
{
	if (!journal)
		return 0;
	line[0] = '<';
	line[1] = (char)('0' + (int)level);
	line[2] = '>';
	return 3;
}

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

static void vline(enum log_level level, const char *prefix, const char *fmt, va_list ap)
{
	char line[LINE_MAX_LEN + 1];
	size_t start = line_start(line, level);
	int p = snprintf(line + start, LINE_MAX_LEN - start, "%s", prefix), n;
	size_t head, len;

	if (p < 0)
		return;
	head = start + (size_t)p;
	if ((n = vsnprintf(line + head, LINE_MAX_LEN - head, fmt, ap)) < 0)
		return;
	len = head + (size_t)n;
	/* libmicrohttpd's messages end in a newline already. */
	while (len > head && len < LINE_MAX_LEN && line[len - 1] == '\n')
		len--;
	write_line(line, len);
}

void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	vline(level, "mtastsd: ", fmt, ap);
}

void log_msg(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vline(LOG_LEVEL_INFO, "mtastsd: ", fmt, ap);
	va_end(ap);
}

void log_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vline(LOG_LEVEL_WARNING, "mtastsd: ", fmt, ap);
	va_end(ap);
}

void log_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vline(LOG_LEVEL_ERR, "mtastsd: ", fmt, ap);
	va_end(ap);
}

void log_plain(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vline(level, "", fmt, ap);
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
	size_t len = line_start(line, LOG_LEVEL_INFO);
	time_t now = time(NULL);
	struct tm tm;
	int n;

	gmtime_r(&now, &tm);
	len += strftime(line + len, LINE_MAX_LEN - len, "access: %Y-%m-%dT%H:%M:%SZ ", &tm);
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
