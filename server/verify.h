/* verify: each domain checked live, as a sending MTA sees it: DNS, policy host, MX hosts */
#ifndef MTASTSD_VERIFY_H
#define MTASTSD_VERIFY_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "snapshot.h"

struct verify_opts {
	const char *ca_file; /* trust store for the policy hosts and MX hosts; NULL: system */
	unsigned https_port; /* policy hosts' port, 443 */
	unsigned smtp_port;  /* MX hosts' port, 25 */
	unsigned timeout;    /* seconds for the whole run */
	bool json;           /* output as JSON, else text */
};

enum verify_result {
	VERIFY_OK = 0,     /* nothing failed (warnings allowed) */
	VERIFY_FAILED = 1, /* a check failed */
	VERIFY_USAGE = 2,  /* a domain not in the configuration (message in err) */
};

/* Checks the domains named in domains (n of them; every configured domain when n is 0)
 * of s, which it only reads (nothing is written anywhere): the _mta-sts and _smtp._tls
 * records, the policy as fetched from mta-sts.<domain> against the bytes s serves, the MX
 * hosts against the policy's patterns, and STARTTLS on every MX host. DNS goes through
 * the configuration's dns_server, else resolv.conf. Appends the report to out (text or
 * JSON). */
enum verify_result verify_run(const struct snapshot *s, const char *const *domains, size_t n,
                              const struct verify_opts *o, struct buf *out, char *err,
                              size_t err_size);

#endif
