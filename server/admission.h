/* admission: which connections a listener takes and keeps, so that one client (or a few
 * thousand slow ones) cannot hold every slot: a deadline for the TLS handshake plus the
 * request head that bytes do not extend, a limit per client address, and, when the table
 * is full, the longest-idle keep-alive connection (or, with none idle, the oldest one
 * still owing its request head, or one of the address holding the most connections) closed
 * to admit a new one. */
#ifndef MTASTSD_ADMISSION_H
#define MTASTSD_ADMISSION_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

enum admission_reason {
	ADMISSION_DEADLINE, /* no complete request head in time (slowloris, a stalled handshake) */
	ADMISSION_IDLE,     /* an idle keep-alive connection closed to admit a new one */
	ADMISSION_SLOW,     /* none idle: the oldest connection still owing its request head
	                     * (a second old at least, else from the address holding the
	                     * most connections) closed to admit a new one */
	ADMISSION_FULL,     /* refused: every slot busy, none idle */
	ADMISSION_PER_IP,   /* refused: the client address has its share already */
	ADMISSION_REASONS,
};

extern const char *const admission_reason_names[ADMISSION_REASONS];

struct admission_opts {
	const char *name;         /* of the listener, for the log: "https", "admin" */
	unsigned max_connections; /* at once */
	unsigned per_ip;          /* at once from one address; 0: no limit */
	unsigned head_timeout;    /* seconds from accept to a complete request head (the TLS
	                           * handshake included), and from a response to the next
	                           * head once idle_timeout has passed */
	unsigned idle_timeout;    /* seconds a keep-alive connection may wait for a request */
};

struct admission_ip;

/* One connection, embedded in the listener's own connection state; zeroed before
 * admission_start(). */
struct admission_conn {
	struct admission_conn *prev, *next; /* in the waiting or the idle list */
	int list;                           /* 0: in none (a request is being answered) */
	int64_t deadline;                   /* monotonic milliseconds */
	int fd;
	bool shed; /* shut down by admission: closing */
	struct admission_ip *ip;
};

struct admission;

/* Starts the thread that enforces the deadlines (every 250 ms). NULL on failure (logged). */
struct admission *admission_create(const struct admission_opts *o);
/* Stops the thread and frees a; every connection must have ended. NULL is a no-op. */
void admission_destroy(struct admission *a);

/* The accept policy: whether a connection from sa is taken. When the table is full, the
 * connection idle the longest is shut down to make room; with none idle, or when sa has
 * per_ip connections already, the new one is refused. Thread-safe. */
bool admission_accept(struct admission *a, const struct sockaddr *sa);

/* c (on socket fd, from sa) was accepted: it must send a complete request head within
 * head_timeout. Thread-safe. */
void admission_start(struct admission *a, struct admission_conn *c, int fd,
                     const struct sockaddr *sa);
/* A request head of c was read: no deadline while it is answered. Thread-safe. */
void admission_head(struct admission *a, struct admission_conn *c);
/* c's response went out and it stays open for another request. Thread-safe. */
void admission_idle(struct admission *a, struct admission_conn *c);
/* c ended (before its socket is closed). Thread-safe. */
void admission_end(struct admission *a, struct admission_conn *c);

/* Connections shed or refused for reason since the start. Thread-safe. */
unsigned long admission_count(struct admission *a, enum admission_reason reason);
/* Connections open now. Thread-safe. */
unsigned admission_open(struct admission *a);

/* Calls fn for every admission alive (the listeners of this process), for /metrics. */
void admission_each(void (*fn)(void *arg, struct admission *a, const char *name), void *arg);

#endif
