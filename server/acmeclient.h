/* acmeclient: RFC 8555 conversations with one CA: directory, nonces, account, orders */
#ifndef MTASTSD_ACMECLIENT_H
#define MTASTSD_ACMECLIENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "acmehttp.h"
#include "buf.h"

struct acme_ca_opts {
	const char *directory;   /* https URL */
	const char *email;       /* contact, or NULL */
	const char *ca_file;     /* trust store for the CA's API, or NULL: the system's */
	const char *eab_kid;     /* External Account Binding, or NULL */
	const char *eab_hmac;    /* base64url */
	const char *account_key; /* file of the account key: made when missing (0600) */
	unsigned timeout;        /* seconds per request */
	const atomic_bool *stop; /* requests and waits end early when it becomes true */
};

/* A challenge to answer: the client asks its owner to answer it (present) before it tells
 * the CA to look, and to stop answering (cleanup) once the CA has. */
struct acme_challenge {
	const char *host;
	const char *type;              /* "tls-alpn-01" or "http-01" */
	const char *token;             /* base64url, checked */
	const char *key_authorization; /* token "." account key thumbprint */
};

struct acme_challenger {
	const char *type; /* the challenge to answer */
	int (*present)(void *arg, const struct acme_challenge *c, struct acme_problem *p);
	void (*cleanup)(void *arg, const struct acme_challenge *c);
	void *arg;
};

struct acme_ca;

/* Copies o. NULL when out of memory. Nothing is sent before the first order. */
struct acme_ca *acme_ca_create(const struct acme_ca_opts *o);
/* NULL is a no-op. No order may be in progress. */
void acme_ca_destroy(struct acme_ca *ca);

/* Orders a certificate for host with a new P-256 key, answering its challenge through ch,
 * within order_timeout seconds. Safe from several threads at once (one account, one nonce
 * pool). 0 with the PEM chain (leaf first) followed by the key's PEM appended to ret, or -1
 * with the problem in *p. */
int acme_ca_order(struct acme_ca *ca, const char *host, const struct acme_challenger *ch,
                  unsigned order_timeout, struct buf *ret, struct acme_problem *p);

/* When the CA suggests a certificate (PEM, leaf first) be renewed (RFC 9773 ARI, read from
 * the directory's renewalInfo): a random time within its suggested window. 0 with *ret_at
 * set, -1 when it cannot tell (no ARI, an error). */
int acme_ca_renewal_time(struct acme_ca *ca, const char *pem, size_t len, time_t *ret_at);

#endif
