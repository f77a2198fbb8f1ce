/* fetch: hostile-safe HTTPS GET of provider policies with libcurl, many at once */
#ifndef MTASTSD_FETCH_H
#define MTASTSD_FETCH_H

#include <stdbool.h>
#include <stddef.h>

#include "policy.h"

#define FETCH_ERROR_MAX 200

struct fetch_job {
	const char *url;     /* borrowed; https:// only */
	const char *resolve; /* borrowed "host:port:addr[,addr]" pinning, or NULL */
	/* results */
	bool ok;
	char *body; /* on success: the raw body (caller frees), NUL-terminated */
	size_t len;
	char error[FETCH_ERROR_MAX];
};

struct fetch_opts {
	const char *ca_file;      /* NULL: the system trust store */
	unsigned connect_timeout; /* seconds */
	unsigned timeout;         /* seconds, whole transfer */
};

/* What every HTTPS request to another server obeys, set on a libcurl easy handle (a
 * CURL *): https only, a verified chain and name, TLS 1.2+, no redirects, no proxy, the
 * timeouts of o, transfers past max_size aborted, HTTP/1.1, our User-Agent. 0 / -1. */
int fetch_harden(void *easy, const struct fetch_opts *o, size_t max_size);

/* Process-wide libcurl setup, before any thread starts. 0 / -1. */
int fetch_global_init(void);
void fetch_global_cleanup(void);

/* Fetches every job concurrently. A job succeeds only for HTTPS with a verified
 * certificate and name, TLS 1.2+, status 200 (redirects are never followed), a
 * text/plain Content-Type (charset, if any, utf-8 or us-ascii) and a body of at most
 * POLICY_BODY_MAX bytes (the transfer is aborted as soon as it is exceeded). No proxy,
 * no compression, no cookies, no client headers. */
void fetch_run(struct fetch_job *jobs, size_t n, const struct fetch_opts *o);

/* True for "text/plain" with an optional utf-8 / us-ascii charset, case-insensitive. */
bool fetch_content_type_ok(const char *content_type);

#endif
