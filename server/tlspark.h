/* tlspark: keeps libmicrohttpd's epoll mode from spinning on TLS handshakes that wait for
 * the network. In 0.9.75, MHD_run_tls_handshake_() returns on GNUTLS_E_AGAIN without
 * clearing the connection's epoll read-ready (or write-ready) flag, so the connection stays
 * on the daemon's ready list and its thread re-runs gnutls_handshake() in a loop until the
 * client's next flight arrives. tlspark is the session's transport: when a handshake read
 * or write would block, it suspends the connection (MHD_suspend_connection, which takes it
 * off the ready list and out of MHD's epoll set) and waits for the socket in its own epoll
 * thread, which resumes it (MHD puts a resumed connection back on the ready list). After
 * the handshake it only passes data through. */
#ifndef MTASTSD_TLSPARK_H
#define MTASTSD_TLSPARK_H

#include <stdbool.h>
#include <stdint.h>

#include <gnutls/gnutls.h>
#include <microhttpd.h>

struct tlspark;

/* One connection, embedded in the listener's connection state; zeroed before
 * tlspark_attach(). */
struct tlspark_conn {
	struct tlspark *park;
	struct MHD_Connection *connection;
	struct tlspark_conn *prev, *next; /* in the parked list */
	int fd;
	uint32_t want;    /* EPOLLIN or EPOLLOUT while parked, else 0 */
	bool registered;  /* fd is in park's epoll set */
	bool handshaking; /* until tlspark_handshake_done() */
};

/* Starts the thread that resumes parked connections. NULL on failure (logged). The daemons
 * must have MHD_ALLOW_SUSPEND_RESUME and an epoll event loop. */
struct tlspark *tlspark_create(void);
/* Resumes every parked connection and parks none from then on: call before
 * MHD_stop_daemon(), which refuses suspended connections. Thread-safe. */
void tlspark_release(struct tlspark *p);
/* Stops the thread and frees p, after the daemons have stopped. NULL is a no-op. */
void tlspark_destroy(struct tlspark *p);

/* Makes pc (connection c on socket fd) the transport of session: from MHD's
 * NOTIFY_CONNECTION STARTED, before the first handshake step. */
void tlspark_attach(struct tlspark *p, struct tlspark_conn *pc, struct MHD_Connection *c,
                    gnutls_session_t session, int fd);
/* The handshake has read its last message: nothing is parked from then on. */
void tlspark_handshake_done(struct tlspark_conn *pc);
/* c is closing (MHD's NOTIFY_CONNECTION CLOSED, before its socket is closed). */
void tlspark_detach(struct tlspark_conn *pc);

#endif
