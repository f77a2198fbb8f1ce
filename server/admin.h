/* admin: the plain-HTTP admin listener: /metrics, /healthz, /records, /status */
#ifndef MTASTSD_ADMIN_H
#define MTASTSD_ADMIN_H

struct admin;
struct acme;
struct journal;
struct reports;

/* Serves the admin endpoints on a bound, listening socket (owned from now on) with one
 * thread. Everything is read from the current snapshot, the stats, acme, the journal and
 * the TLS reports (borrowed, must outlive the listener; reports may be NULL). NULL on
 * failure (logged). */
struct admin *admin_start(int fd, struct acme *acme, struct journal *journal,
                          struct reports *reports);
void admin_stop(struct admin *a);

#endif
