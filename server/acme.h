/* acme: certificates from an ACME CA for the domains that have none: ordered, renewed and
 * picked up in the background, one name per certificate, kept under state_dir/acme */
#ifndef MTASTSD_ACME_H
#define MTASTSD_ACME_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "tls.h"

struct acme;

/* Whether host's certificate comes from ACME now: the configuration gives it none and the
 * certs directory has none either. Asked before each order, from the order threads. */
typedef bool (*acme_wanted_fn)(void *owner, const char *host);

/* NULL when out of memory. Nothing runs before acme_configure turns it on. */
struct acme *acme_create(acme_wanted_fn wanted, void *owner);
/* Stops the order threads (an order in progress is abandoned within a second). NULL is a
 * no-op. */
void acme_destroy(struct acme *a);

/* Follows a configuration being put in service (c borrowed for the call): the settings, and
 * the names to keep certificates for (mta-sts.<domain> of the domains without cert/key).
 * Threads are restarted only when a setting they use changed. Off when c->acme is NULL. */
void acme_configure(struct acme *a, const struct config *c);

/* The names whose files under state_dir changed (a certificate issued or renewed, here or
 * by another replica; an order failed): fn(arg, host) for each, from the calling thread;
 * the list is emptied. */
void acme_changed(struct acme *a, void (*fn)(void *arg, const char *host), void *arg);

/* TLS-ALPN-01 (RFC 8737): the validation certificate for host when a challenge for it is
 * pending here or, through state_dir, at another replica: a new reference (tls_cert_unref
 * it), or NULL. Any thread. */
struct tls_cert *acme_alpn_cert(struct acme *a, const char *host);

/* HTTP-01: the key authorization for token, pending here or at another replica, into out.
 * 0, or -1 when there is no such challenge (or token is not a token). Any thread. */
int acme_http_answer(struct acme *a, const char *token, char *out, size_t size);

/* Orders since start, for /metrics. */
struct acme_counts {
	unsigned long long issued;
	unsigned long long failed;
	size_t names; /* names kept by ACME */
	size_t busy;  /* orders in progress */
};
void acme_count(struct acme *a, struct acme_counts *ret);

#endif
