/* notify: readiness and status for the service manager (sd_notify(3)'s protocol) */
#ifndef MTASTSD_NOTIFY_H
#define MTASTSD_NOTIFY_H

struct notify;

/* The socket named by NOTIFY_SOCKET (a path, or "@NAME" in the abstract namespace),
 * connected now: call it before dropping privileges, a connected socket keeps working
 * after the switch. NOTIFY_SOCKET is removed from the environment, so that commands we
 * start do not speak for us. NULL when it is not set, or unusable (logged); caller
 * destroys. */
struct notify *notify_create(void);
void notify_destroy(struct notify *n);

/* Sends one datagram of newline-separated "KEY=VALUE" assignments ("READY=1\nSTATUS=...").
 * Nothing for n NULL. 0, or -1 when it could not be sent (logged once per failure). */
int notify_send(struct notify *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
