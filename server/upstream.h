/* upstream: provider policies (RFC 8461 §8.2): shared fetches, cache, persistence, refresh */
#ifndef MTASTSD_UPSTREAM_H
#define MTASTSD_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "config.h"
#include "diag.h"
#include "doc.h"

struct upstreams;
struct upstream;

/* What an operator sees of one provider (for logs, check and status). */
struct upstream_info {
	const char *provider;
	bool has_policy;          /* a copy is being served (fetched and within its max_age) */
	time_t fetched_at;        /* of the served copy, 0 if none */
	time_t expires_at;        /* fetched_at + max_age, 0 if none */
	char id[33];              /* our id of the served copy, "" if none */
	char txt_id[33];          /* provider's _mta-sts id last seen, "" if unknown */
	unsigned failures;        /* consecutive failed fetches */
	unsigned long fetches_ok; /* since start */
	unsigned long fetches_failed;
	char last_error[200];
};

/* Called on the fetch thread when a provider's served bytes change (a new id): the owner
 * tells the operator and builds what depends on it. The upstream module never looks at
 * snapshots. */
typedef void upstream_changed_fn(void *owner, const char *provider, const char *id);

/* The registry of providers: a service owned by whoever runs the server (serve; check
 * and records make one for their own run), outliving every snapshot that links to its
 * entries (one fetch per provider however many customer domains delegate to it). Each
 * entry's served copy is its own value, swapped under a short lock that requests take
 * only to copy a reference; nothing else it does (DNS, HTTPS, disk) happens under it.
 * Docs it makes get their response from render (may be NULL); changed (may be NULL) is
 * called with owner. Settings come from upstreams_configure. NULL on allocation failure. */
struct upstreams *upstreams_create(const struct doc_renderer *render, upstream_changed_fn *changed,
                                   void *owner);
/* Stops the refresh thread if running and frees everything. NULL is a no-op. */
void upstreams_destroy(struct upstreams *u);
/* Applies config's upstream settings (CA, state_dir, DNS server, intervals, port): called
 * once a configuration is in service, never for one that failed to load. */
void upstreams_configure(struct upstreams *u, const struct config *config);

/* The provider's entry, created on first use with the last good copy from config's
 * state_dir (if any and still within its max_age). Marks it used by one more snapshot;
 * release with upstream_release. NULL on allocation failure. */
struct upstream *upstreams_use(struct upstreams *u, const char *provider,
                               const struct config *config);
void upstream_release(struct upstream *up);

/* The copy to serve now: a new doc reference (doc_unref it), or NULL when there is none
 * or it is older than its own max_age (then the answer is 503). Never blocks on the
 * network: one short mutex. */
struct doc *upstream_doc(struct upstream *up, time_t now);

void upstream_info(struct upstream *up, time_t now, struct upstream_info *ret);

/* Starts the thread that polls providers' _mta-sts TXT ids and (re)fetches policies.
 * 0 / -1 (logged). */
int upstreams_start(struct upstreams *u);

#endif
