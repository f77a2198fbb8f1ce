/* acmestate: what the ACME client keeps per name under state_dir, shared by replicas */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acmestate.h"
#include "buf.h"
#include "statefile.h"

#define STATUS_MAX 4096

int acmestate_path(char *out, size_t size, const char *state_dir, const char *host,
                   const char *file)
{
	int n;

	/* A host name is a path component here: letters, digits, '-' and '.', no "..". */
	if (host[0] == '\0' || host[0] == '.' || strlen(host) > 253 ||
	    strspn(host, "abcdefghijklmnopqrstuvwxyz0123456789-.") != strlen(host) ||
	    strstr(host, "..") != NULL)
		return -1;
	if (file != NULL)
		n = snprintf(out, size, "%s/acme/%s/%s", state_dir, host, file);
	else
		n = snprintf(out, size, "%s/acme/%s", state_dir, host);
	return n > 0 && (size_t)n < size ? 0 : -1;
}

/* One "key value" line of the status file into st; unknown keys are skipped (a newer
 * version's file). -1 when the value is damaged. */
static int status_line(struct acme_status *st, const char *line)
{
	const char *v = strchr(line, ' ');
	char *end;
	long long n;

	if (v == NULL)
		return -1;
	v++;
	if (strncmp(line, "problem ", 8) == 0) {
		snprintf(st->problem, sizeof(st->problem), "%s", v);
		return 0;
	}
	errno = 0;
	n = strtoll(v, &end, 10);
	if (errno != 0 || *end != '\0' || n < 0 || end == v)
		return -1;
	if (strncmp(line, "failures ", 9) == 0)
		st->failures = n > 1000000 ? 1000000 : (unsigned)n;
	else if (strncmp(line, "retry_at ", 9) == 0)
		st->retry_at = (time_t)n;
	else if (strncmp(line, "failed_at ", 10) == 0)
		st->failed_at = (time_t)n;
	return 0;
}

int acmestate_status_read(const char *state_dir, const char *host, struct acme_status *ret)
{
	char path[4096], *data, *save = NULL;
	size_t len;

	memset(ret, 0, sizeof(*ret));
	if (acmestate_path(path, sizeof(path), state_dir, host, "status") < 0 ||
	    statefile_read(path, STATUS_MAX, &data, &len) < 0)
		return -1;
	if (strncmp(data, "mtastsd-acme-status 1\n", 22) != 0)
		goto damaged;
	for (char *line = strtok_r(data + 22, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save))
		if (status_line(ret, line) < 0)
			goto damaged;
	free(data);
	return 0;
damaged:
	free(data);
	memset(ret, 0, sizeof(*ret));
	return -1;
}

int acmestate_status_write(const char *state_dir, const char *host, const struct acme_status *st)
{
	char dir[4096], path[4096];
	struct buf b;
	int r = -1;

	if (acmestate_path(dir, sizeof(dir), state_dir, host, NULL) < 0 ||
	    acmestate_path(path, sizeof(path), state_dir, host, "status") < 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (statefile_mkdirs(dir, 0700) < 0)
		return -1;
	buf_init(&b);
	buf_printf(&b, "mtastsd-acme-status 1\nfailures %u\nretry_at %lld\nfailed_at %lld\n",
	           st->failures, (long long)st->retry_at, (long long)st->failed_at);
	if (st->problem[0] != '\0') {
		/* One line: the CA's text may have newlines. */
		buf_puts(&b, "problem ");
		for (const char *s = st->problem; *s != '\0'; s++)
			buf_append(&b, *s == '\n' || *s == '\r' ? " " : s, 1);
		buf_puts(&b, "\n");
	}
	if (b.failed)
		errno = ENOMEM;
	else
		r = statefile_write(path, b.data, b.len, 0600);
	buf_finish(&b);
	return r;
}
