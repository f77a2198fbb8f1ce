/* http: libmicrohttpd glue: TLS by SNI, routing, headers, status codes, access log */
#ifndef MTASTSD_HTTP_H
#define MTASTSD_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "doc.h"

/* Outcomes of a request; the values are the HTTP status codes sent. */
enum http_status {
	HTTP_OK = 200,
	HTTP_BAD_REQUEST = 400,
	HTTP_NOT_FOUND = 404,
	HTTP_METHOD_NOT_ALLOWED = 405,
	HTTP_MISDIRECTED = 421,
	HTTP_UNAVAILABLE = 503,
};

struct http;

/* Builds a doc's 200 response (headers included) when the doc is made. */
extern const struct doc_renderer http_doc_renderer;

struct acme;
struct reports;

/* Starts serving on the bound, listening sockets fds (borrowed; closed by http_stop),
 * taking the tenant for each connection from snapshot_acquire(). Options come from
 * config (threads, timeouts, limits, access log). TLS-ALPN-01 challenges are answered
 * from acme, and reports posted to /tlsrpt go to reports (both borrowed; they must
 * outlive the server, and reports_shutdown() must come before http_stop(); NULL: none).
 * Logs and returns NULL on failure. */
struct http *http_start(const struct config *config, const int *fds, size_t n_fds,
                        struct acme *acme, struct reports *reports);

/* Stops accepting, waits for the threads and closes the sockets. NULL is a no-op. */
void http_stop(struct http *h);

/* Turns the access log on or off (reload). */
void http_set_access_log(struct http *h, bool on);

/* For the request fuzzer: the same handler without TLS, on no socket, one thread; every
 * connection handed to http_plain_add() is the first tenant's of the current snapshot, as
 * if its SNI had named it. Stopped by http_stop(). NULL on failure (logged). */
struct http *http_start_plain(const struct config *config);
/* Hands the server end of a connected socket (owned from now on) to h. 0 / -1. */
int http_plain_add(struct http *h, int fd);

#endif
