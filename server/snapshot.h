/* snapshot: one immutable, refcounted view of config + rendered policies + certificates */
#ifndef MTASTSD_SNAPSHOT_H
#define MTASTSD_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "buf.h"
#include "certcache.h"
#include "config.h"
#include "diag.h"
#include "doc.h"
#include "tls.h"

/* The one piece of shared state requests read: everything a request needs, built before
 * it is published, never changed after (certificate state lives in its certcache, whose
 * per-domain values change atomically on their own). Opaque: read it through the
 * functions below. */
struct snapshot;
/* One served domain of a snapshot. */
struct tenant;
struct upstream;
struct upstreams;

/* Renders every static policy (with its response, through render, which may be NULL when
 * nothing is served) and links proxied domains to their provider in ups (borrowed, must
 * outlive the snapshot; NULL when no domain is proxied). certs is the certificate state
 * of config (NULL: no TLS, for 'records'). Takes ownership of config and certs in every
 * case. A provider without a usable copy yet is a warning in d. refs starts at 1; NULL
 * (with the error in d) only when out of memory. */
struct snapshot *snapshot_create(struct config *config, struct certcache *certs,
                                 struct upstreams *ups, const struct doc_renderer *render,
                                 struct diag *d);
struct snapshot *snapshot_ref(struct snapshot *s);
/* Drops a reference; the last one frees everything. NULL is a no-op. */
void snapshot_unref(struct snapshot *s);

/* Borrowed while the snapshot is held. */
const struct config *snapshot_config(const struct snapshot *s);
/* NULL when the snapshot was built without certificates. */
struct certcache *snapshot_certs(const struct snapshot *s);
size_t snapshot_size(const struct snapshot *s);
/* The i-th domain in config order. */
const struct tenant *snapshot_tenant(const struct snapshot *s, size_t i);
/* The tenant serving host (case-insensitive, exact); NULL when none. Never allocates. */
const struct tenant *snapshot_find(const struct snapshot *s, const char *host, size_t len);

const struct config_domain *tenant_domain(const struct tenant *t);
/* Its index in config order (in the snapshot and its certcache). */
size_t tenant_index(const struct tenant *t);
/* The provider of a proxied domain, else NULL. */
struct upstream *tenant_upstream(const struct tenant *t);
/* The doc to serve for t now: a new reference, or NULL (503) when a proxied tenant has
 * no fresh copy. */
struct doc *tenant_doc(const struct tenant *t, time_t now);
/* The certificate to present for t now: a new reference, or NULL (no handshake). */
struct tls_cert *tenant_cert(const struct snapshot *s, const struct tenant *t, time_t now);

/* Lazy certificate mode: loads every certificate in the background until all are in
 * memory or the snapshot is superseded. Returns how many were loaded. */
size_t snapshot_preload(struct snapshot *s);
/* Whether another snapshot was published after s. */
bool snapshot_superseded(const struct snapshot *s);

/* Appends the DNS records to publish (zone lines, or JSON) as 'mtastsd records' prints
 * them: for the n_sel tenants of sel in that order, or every domain when sel is NULL.
 * 0 / -1. */
int snapshot_records(const struct snapshot *s, const struct tenant *const *sel, size_t n_sel,
                     bool json, struct buf *out);

/* Process-wide current snapshot. acquire returns a new reference (or NULL before the
 * first publish); publish installs s (taking the caller's reference) and returns the
 * previous one for the caller to unref. */
struct snapshot *snapshot_acquire(void);
struct snapshot *snapshot_publish(struct snapshot *s);

#endif
