/* admin: the plain-HTTP admin listener: /metrics, /healthz, /records, /status */
#ifndef MTASTSD_ADMIN_H
#define MTASTSD_ADMIN_H

struct admin;
struct acme;
struct journal;

/* Serves the admin endpoints on a bound, listening socket (owned from now on) with one
 * thread. Everything is read from the current snapshot, the stats, acme and the journal
 * (borrowed, must outlive the listener). NULL on failure (logged). */
struct admin *admin_start(int fd, struct acme *acme, struct journal *journal);
void admin_stop(struct admin *a);

#endif
