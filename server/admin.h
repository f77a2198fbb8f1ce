/* admin: the plain-HTTP admin listener: /metrics, /healthz, /records, /status */
#ifndef MTASTSD_ADMIN_H
#define MTASTSD_ADMIN_H

struct admin;

/* Serves the admin endpoints on a bound, listening socket (owned from now on) with one
 * thread. Everything is read from the current snapshot and the stats. NULL on failure
 * (logged). */
struct admin *admin_start(int fd);
void admin_stop(struct admin *a);

#endif
