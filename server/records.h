/* records: the DNS records to publish for each domain (zone lines and JSON) */
#ifndef MTASTSD_RECORDS_H
#define MTASTSD_RECORDS_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

struct records_domain {
	const char *domain; /* e.g. "example.com" */
	const char *id;     /* our id for the served body; NULL if none yet */
	const char *body;   /* served body, NULL if none yet */
	size_t body_len;
	const char *mode;       /* "enforce"/"testing"/"none" or NULL */
	const char *const *rua; /* TLS-RPT URIs, may be empty */
	size_t n_rua;
	const char *proxy; /* provider domain when delegated, else NULL */
};

struct records_opts {
	unsigned sts_ttl;
	unsigned tlsrpt_ttl;
};

/* Zone-file lines for every domain:
 *   _mta-sts.<domain>. <ttl> IN TXT "v=STSv1; id=<id>"
 *   _smtp._tls.<domain>. <ttl> IN TXT "v=TLSRPTv1; rua=<uri>[,<uri>]"
 * A delegated domain gets the recommended CNAME to _mta-sts.<proxy>. and, commented out
 * with ";", the own-id TXT alternative. 0 / -1 (ENOMEM). */
int records_zone(struct buf *out, const struct records_domain *v, size_t n,
                 const struct records_opts *o);

/* The zone lines of one domain (no header comment), as records_zone prints them for it.
 * Used by the server's start and reload logs so that they print the same records. */
int records_zone_lines(struct buf *out, const struct records_domain *d,
                       const struct records_opts *o);

/* The same data as a JSON array of objects (domain, id, mode, policy, records[]). */
int records_json(struct buf *out, const struct records_domain *v, size_t n,
                 const struct records_opts *o);

/* The _mta-sts TXT value: "v=STSv1; id=<id>". */
int records_sts_value(struct buf *out, const char *id);

/* The TLS-RPT TXT value "v=TLSRPTv1; rua=a,b" with ',', '!' and ';' inside a URI
 * percent-encoded. */
int records_tlsrpt_value(struct buf *out, const char *const *rua, size_t n);

/* True when uri is an acceptable rua: "mailto:" with an addr-spec, or "https://" with a
 * host; no whitespace, no control characters. */
bool records_rua_valid(const char *uri);

#endif
