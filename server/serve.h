/* serve: the running server: start, reloads, certificate renewals and expiries, stop */
#ifndef MTASTSD_SERVE_H
#define MTASTSD_SERVE_H

/* Runs 'mtastsd serve -c path' in the foreground until SIGTERM or SIGINT: binds, drops
 * privileges, serves, reloads on SIGHUP, picks up certificate files every cert_watch.
 * Returns the exit status: 0 after a signal, 1 when the start failed (logged). */
int serve_run(const char *path);

#endif
