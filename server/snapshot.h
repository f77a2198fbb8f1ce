/* snapshot: one immutable, refcounted view of config + rendered policies + certificates */
#ifndef MTASTSD_SNAPSHOT_H
#define MTASTSD_SNAPSHOT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "config.h"
#include "buf.h"
#include "diag.h"
#include "hash.h"
#include "policy.h"
#include "tls.h"

/* A body as served: rendered once, refcounted, shared by every request. */
struct doc {
	atomic_uint refs;
	size_t len;
	char id[POLICY_ID_MAX + 1];
	const char *mode;       /* static string */
	void *_Atomic response; /* built by the HTTP layer on first use */
	char body[];            /* canonical policy, NUL-terminated */
};

struct domain_stats;
struct upstream;
struct upstreams;

struct tenant {
	const struct config_domain *domain; /* borrowed from the snapshot's config */
	struct tls_cert *cert;              /* eager: loaded with the snapshot */
	struct tls_cert *_Atomic lazy_cert; /* lazy: loaded on first handshake */
	_Atomic time_t lazy_failed;         /* lazy: last failed load */
	struct doc *doc;                    /* static policy, NULL when proxied */
	struct upstream *up;                /* proxied: the provider, else NULL */
	struct domain_stats *_Atomic stats; /* counters, looked up on first request */
};

struct snapshot {
	atomic_uint refs;
	struct config *config;
	struct tls_store *tls;  /* NULL when TLS was not loaded */
	struct tenant *tenants; /* config order */
	size_t n_tenants;
	struct hash hosts; /* "mta-sts.<domain>" -> tenant */

	atomic_bool superseded; /* another snapshot was published after it */

	/* Lazy certificate loading: the tenants whose certificate is loaded, oldest
	 * first out when there are cache_cap of them. */
	bool lazy;
	size_t n_with_files; /* domains with their own cert/key files */
	pthread_mutex_t cache_lock;
	struct tenant **cache;
	size_t cache_cap;
	size_t cache_next;
	size_t cache_n;
};

enum snapshot_flags {
	SNAPSHOT_TLS = 1 << 0,         /* load certificates and keys */
	SNAPSHOT_EXPIRY_LINT = 1 << 1, /* warn on certificates expiring within 14 days */
	SNAPSHOT_EAGER = 1 << 2,       /* load every certificate now, whatever cert_cache says */
	SNAPSHOT_VALIDATE = 1 << 3,    /* check them, then let go (no serving: 'check') */
};

/* Renders every policy and (with SNAPSHOT_TLS) loads every certificate, checking that
 * it covers mta-sts.<domain> and has not expired. Proxied domains are linked to their
 * provider in ups (borrowed; must outlive the snapshot); a provider without a usable copy
 * yet is a warning. Takes ownership of config in every case. Errors and warnings go to
 * d; NULL when there was any error. refs starts at 1. */
struct snapshot *snapshot_create(struct config *config, unsigned flags, struct upstreams *ups,
                                 struct diag *d);

/* The certificate to present for t: a new reference (tls_cert_unref it), loading it
 * now in lazy mode (a failure is logged, and retried at most once a minute). NULL when
 * there is none. */
struct tls_cert *tenant_cert(struct snapshot *s, struct tenant *t);
/* Lazy mode, when every certificate fits in the cache: loads them all in config order,
 * so that the server answers at once after start and is warm soon after. Stops early
 * when s is superseded (reload, shutdown). Returns how many were loaded. */
size_t snapshot_preload(struct snapshot *s);

/* Same without loading: NULL when a lazy certificate is not in memory. */
struct tls_cert *tenant_cert_loaded(struct snapshot *s, struct tenant *t);

/* The doc to serve for t now: a new reference, or NULL (503) when a proxied tenant has
 * no fresh copy. */
struct doc *tenant_doc(const struct tenant *t, time_t now);

struct snapshot *snapshot_ref(struct snapshot *s);
/* Drops a reference; the last one frees everything. NULL is a no-op. */
void snapshot_unref(struct snapshot *s);

/* The tenant serving host (case-insensitive, exact); NULL when none. Never allocates. */
struct tenant *snapshot_find(const struct snapshot *s, const char *host, size_t len);

/* Appends the DNS records to publish for every domain (zone lines, or JSON) as
 * 'mtastsd records' prints them. 0 / -1. */
int snapshot_records(const struct snapshot *s, bool json, struct buf *out);

/* Process-wide current snapshot. acquire returns a new reference (or NULL before the
 * first publish); publish installs s (taking the caller's reference) and returns the
 * previous one for the caller to unref. */
struct snapshot *snapshot_acquire(void);
struct snapshot *snapshot_publish(struct snapshot *s);

/* Creates a doc from a canonical body (copied); refs starts at 1. */
struct doc *doc_create(const char *body, size_t len, const char *mode);
struct doc *doc_ref(struct doc *d);
void doc_unref(struct doc *d);
/* Set once by the HTTP layer: how to free a doc's cached response. */
void doc_set_response_free(void (*fn)(void *response));

#endif
