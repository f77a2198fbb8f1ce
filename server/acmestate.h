/* acmestate: what the ACME client keeps per name under state_dir, shared by replicas */
#ifndef MTASTSD_ACMESTATE_H
#define MTASTSD_ACMESTATE_H

#include <stddef.h>
#include <time.h>

/* Layout, under state_dir/acme:
 *   account-<hash of the directory URL>.pem   the account key (0600)
 *   <host>/cert.pem    the issued chain, leaf first, then its key (0600): one file, so
 *                      that a renewal replaces both at once
 *   <host>/status      the last order's outcome and the back-off (survives restarts)
 *   <host>/lock        held (flock) by the replica ordering the name
 *   <host>/alpn        the key authorization of a pending TLS-ALPN-01 challenge
 *   http-01/<token>    the key authorization of a pending HTTP-01 challenge */
#define ACMESTATE_PROBLEM_MAX 300

struct acme_status {
	unsigned failures;                   /* orders failed in a row */
	time_t retry_at;                     /* no new order before (back-off), 0: none */
	time_t failed_at;                    /* of the last failure, 0: none */
	char problem[ACMESTATE_PROBLEM_MAX]; /* the last failure, as the CA put it */
};

/* state_dir/acme/<host>/<file> (file NULL: the directory) into out. 0, or -1 when it does
 * not fit or host is not a plain lowercase host name (it becomes a path). */
int acmestate_path(char *out, size_t size, const char *state_dir, const char *host,
                   const char *file);

/* Reads host's status; a missing or damaged file reads as a zeroed status. 0 when a status
 * was read, -1 when not (ret zeroed either way). */
int acmestate_status_read(const char *state_dir, const char *host, struct acme_status *ret);
/* Replaces host's status file (creating the directory). 0, or -1 with errno. */
int acmestate_status_write(const char *state_dir, const char *host, const struct acme_status *st);

#endif
