/* certcache: per-domain certificate state: loaded, lazy, degraded, renewed */
#ifndef MTASTSD_CERTCACHE_H
#define MTASTSD_CERTCACHE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "config.h"
#include "diag.h"
#include "tls.h"

/* Certificates are the runtime world: a domain whose certificate is missing, unreadable,
 * damaged, mismatched, expired or not yet valid is degraded alone. It keeps presenting
 * its last good certificate while that one is valid, or gets no handshake at all
 * (unrecognized_name) when it has none; every other domain is unaffected. */
enum cert_state {
	CERT_OK,       /* a valid certificate is presented */
	CERT_LAZY,     /* files present, loaded on the first handshake (cert_cache) */
	CERT_DEGRADED, /* see above; the fault says why */
	CERT_STATES,
};

extern const char *const cert_state_names[CERT_STATES];

/* What an operator sees of one domain's certificate. */
struct cert_info {
	enum cert_state state;
	enum tls_fault fault; /* degraded: why */
	time_t since;         /* when the domain entered this state */
	time_t not_after;     /* of the certificate presented, 0 when none is */
	char detail[400];     /* degraded: the problem, naming the file */
};

enum certcache_flags {
	CERTCACHE_EAGER = 1 << 0,    /* load every certificate now, whatever cert_cache says */
	CERTCACHE_VALIDATE = 1 << 1, /* check: read every pair, report, let it go */
};

struct certcache;

/* The certificate state of every domain of config (borrowed: it must outlive the cache;
 * slots are in config order). Pairs unchanged since prev (the running cache, borrowed,
 * read only; may be NULL) are taken over, not read again, and a domain whose new files
 * are unusable keeps prev's certificate while it is valid. With CERTCACHE_VALIDATE
 * ('check'), every problem is a FILE:LINE error in d and nothing is logged or kept;
 * otherwise a domain entering or leaving the degraded state is logged once, and d (may
 * be NULL) gets only the warnings: certificates expiring within 14 days, keys readable by
 * others. NULL only when out of memory. */
struct certcache *certcache_create(const struct config *config, struct certcache *prev,
                                   unsigned flags, time_t now, struct diag *d);
/* Drops every certificate (keys are wiped with the last reference). NULL is a no-op. */
void certcache_destroy(struct certcache *cc);

/* The certificate to present for domain i at now: a new reference (tls_cert_unref it), or
 * NULL for no handshake. Loads a lazy domain's pair now (a failure degrades the domain
 * and is retried at most once a minute). Safe from any thread. */
struct tls_cert *certcache_get(struct certcache *cc, size_t i, time_t now);
/* Domain i's state; never loads anything. */
void certcache_info(struct certcache *cc, size_t i, time_t now, struct cert_info *ret);
/* How many domains are in each state, and degraded ones by fault. */
void certcache_count(struct certcache *cc, size_t ret_states[CERT_STATES],
                     size_t ret_faults[TLS_FAULTS]);

/* Certificate files changed (cert_watch): re-reads the pairs that changed, in place,
 * with the same per-domain rules as certcache_create. Only one thread may call it (or
 * certcache_tick) at a time. */
void certcache_refresh(struct certcache *cc, time_t now);
/* certcache_refresh for domain i alone (an ACME certificate issued, renewed, or its order
 * failed). The same thread rule applies. */
void certcache_refresh_domain(struct certcache *cc, size_t i, time_t now);
/* Whether domain i's certificate comes from ACME (no cert/key, nothing in the certs
 * directory, acme on). Any thread. */
bool certcache_acme(struct certcache *cc, size_t i);

/* A certificate expiring, or one not yet valid becoming valid, while nothing changed on
 * disk: updates the states at that time. Cheap when nothing is due. */
void certcache_tick(struct certcache *cc, time_t now);

/* Lazy mode, when every certificate fits in the cache: loads them all in config order,
 * so that the server answers at once after start and is warm soon after. Stops early
 * when *stop becomes true. Returns how many were loaded. */
size_t certcache_preload(struct certcache *cc, const atomic_bool *stop);

#endif
