/* dns: batched c-ares lookups: _mta-sts ids, TXT records, MX hosts and addresses */
#ifndef MTASTSD_DNS_H
#define MTASTSD_DNS_H

#include <stddef.h>

#include "policy.h"

#define DNS_ADDRS_MAX 256
#define DNS_ERROR_MAX 160

enum dns_kind {
	DNS_STS_ID, /* TXT at the name: the one v=STSv1 record's id */
	DNS_ADDRS,  /* A and AAAA of the name */
	DNS_TXT,    /* TXT at the name (CNAMEs followed): every record, strings joined */
	DNS_MX,     /* MX of the name: the hosts, lowest preference first */
};

enum dns_result {
	DNS_OK,
	DNS_NONE, /* no such name or no usable record */
	DNS_FAIL, /* timeout, server failure, malformed answer */
};

struct dns_query {
	enum dns_kind kind;
	const char *name; /* borrowed */
	/* results */
	enum dns_result result;
	char id[POLICY_ID_MAX + 1]; /* DNS_STS_ID */
	char addrs[DNS_ADDRS_MAX];  /* DNS_ADDRS: "a,b,[v6]" for CURLOPT_RESOLVE */
	char **list; /* DNS_TXT: the records; DNS_MX: the hosts (lowercase, no trailing dot);
	              * owned, freed by dns_query_finish */
	size_t n_list;
	char error[DNS_ERROR_MAX];
};

struct dns;

/* server: "ip", "ip:port" or "[v6]:port", or NULL for /etc/resolv.conf. timeout is per
 * query in seconds. Returns NULL with a message in err on failure. */
struct dns *dns_create(const char *server, unsigned timeout, char *err, size_t err_size);
void dns_destroy(struct dns *d);

/* Runs every query concurrently and returns when all have answered or timed out. */
void dns_run(struct dns *d, struct dns_query *q, size_t n);

/* Frees a query's list (DNS_TXT, DNS_MX); the query can be run again. */
void dns_query_finish(struct dns_query *q);

/* RFC 8461 §3.1 on the TXT records at _mta-sts: records not starting with "v=STSv1"
 * are dropped; exactly one must remain, with a valid id (first one wins). Returns 0 with
 * the id in ret_id, or -1 with a reason in err. Pure: exposed for the tests. */
int dns_sts_id(const char *const *records, size_t n, char ret_id[POLICY_ID_MAX + 1], char *err,
               size_t err_size);

#endif
