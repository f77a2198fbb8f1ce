/* http_conn: what the parts of the HTTPS server share, private to http*.c: the server, a
 * connection's state, and what one part calls in another (http.c: libmicrohttpd, routing and
 * responses; http_tls.c: the TLS handshake; http_strict.c: strict request parsing;
 * http_report.c: reports posted to /tlsrpt) */
#ifndef MTASTSD_HTTP_CONN_H
#define MTASTSD_HTTP_CONN_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <time.h>

#include <gnutls/gnutls.h>
#include <microhttpd.h>

#include "admission.h"
#include "config.h"
#include "http.h"
#include "snapshot.h"
#include "stats.h"
#include "tlspark.h"

#define HTTP_MAX_DAEMONS 16
/* The fixed answers (http.c's fixed_bodies): 400, 404, 405, 421, 503 */
#define HTTP_N_FIXED 5

/* A prebuilt answer that is not a policy, shared by every request. */
struct fixed {
	enum http_status status;
	struct MHD_Response *response;
	size_t len;
};

/* The server: its listeners and what all its connections share. */
struct http {
	struct MHD_Daemon *daemons[HTTP_MAX_DAEMONS];
	size_t n_daemons;
	atomic_bool access_log;
	gnutls_datum_t ticket_key;
	struct fixed fixed[HTTP_N_FIXED]; /* error answers, shared by every request */
	struct acme *acme;                /* answers TLS-ALPN-01 challenges */
	struct admission *adm;            /* deadlines, per-address limit, shedding */
	struct tlspark *park;             /* handshakes waiting for the network */
	struct reports *reports;          /* stores what is posted to /tlsrpt (NULL: none) */
	struct MHD_Response *post_only;   /* 405 for /tlsrpt: Allow: POST */
	bool plain;                       /* http_start_plain(): the first tenant for everyone */
	pthread_mutex_t hs_log_lock;      /* the rate of "handshake failed" lines */
	time_t hs_log_second;
	unsigned hs_log_count;
	unsigned long hs_log_skipped;
};

/* What a connection keeps: the snapshot current when it was accepted, held until it
 * closes so that a reload never pulls certificates or bodies from under it, and how its
 * handshake went. */
struct conn {
	struct http *http;
	struct snapshot *snap;
	const struct tenant *tenant; /* chosen by SNI in the handshake */
	struct domain_stats *stats;  /* the tenant's counters, found on its first request */
	struct tls_cert *cert;       /* presented, held until the connection closes */
	unsigned tls;                /* 12 or 13 once the handshake is done */
	bool handshake_done;
	bool handshake_counted;
	bool acme;       /* an acme-tls/1 validation: ends after the handshake, serves nothing */
	bool bad_target; /* the request target has %00 or %2F (set when it is unescaped) */
	bool hello;      /* a ClientHello arrived */
	enum stats_handshake failure; /* counted in the certificate callback, if so */
	char *bad_sni;                /* an SNI no tenant has, for the log */
	struct admission_conn adm;
	bool admitted;            /* adm is known to h->adm */
	struct tlspark_conn park; /* the session's transport, when park.park is set */
	int fd;
	const char *uri;   /* the request target as MHD read it (http_strict_uri_seen()) */
	size_t uri_len;    /* to its first NUL */
	bool corked;       /* a response is being written into one TLS record (serve()) */
	bool tcp_uncorked; /* uncork() has undone MHD's TCP_CORK */
};

/* http_conn.c */

/* The connection's state (NULL before MHD_CONNECTION_NOTIFY_STARTED, or out of memory). */
struct conn *http_conn(struct MHD_Connection *c);
/* The client's address, NULL when unknown; borrowed from MHD while the connection lives. */
const struct sockaddr *http_client_sockaddr(struct MHD_Connection *c);
/* The client's address as text, "-" when unknown. */
void http_client_address(const struct sockaddr *sa, char *out, size_t size);

/* http_tls.c */

/* MHD_OPTION_HTTPS_CERT_CALLBACK: the tenant's chain by SNI, or no handshake. */
int http_tls_cert_callback(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nreqs,
                           const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                           gnutls_pcert_st **ret_pcert, unsigned int *ret_pcert_length,
                           gnutls_privkey_t *ret_key);
/* Sets up a new connection's TLS session: ALPN for ACME, tickets per name, the handshake
 * hooks, and tlspark as its transport. cn may be NULL (out of memory). */
void http_tls_attach(struct http *h, struct conn *cn, struct MHD_Connection *c,
                     gnutls_session_t session);
/* A connection closed before its handshake completed: counted by reason and logged
 * (rate-limited). */
void http_tls_failed(struct http *h, struct MHD_Connection *c, struct conn *cn);

/* http_strict.c */

/* MHD_OPTION_UNESCAPE_CALLBACK: %XX decoded; %00 or %2F marks the request bad. */
size_t http_strict_unescape(void *cls, struct MHD_Connection *c, char *s);
/* MHD_OPTION_URI_LOG_CALLBACK: where the request target lies, for the NUL scan. */
void *http_strict_uri_seen(void *cls, const char *uri, struct MHD_Connection *c);
/* Whether the request's head is one a strict reading of RFC 9112 refuses (400). */
bool http_strict_malformed(struct MHD_Connection *c, const struct conn *cn, const char *method,
                           const char *version);

/* http_report.c */

/* Whether the request is for /tlsrpt on a domain that takes reports (tlsrpt = self), on
 * its own host name. */
bool http_report_taken(const struct http *h, struct MHD_Connection *c,
                       const struct config_domain *cd, const char *url);
/* The head of a POST /tlsrpt: answered at once (refused), or *req_cls set to an upload
 * (freed with http_report_free()) whose body http_report_body() takes. */
enum MHD_Result http_report_head(struct http *h, struct MHD_Connection *c,
                                 const struct config_domain *cd, void **req_cls);
/* The rest of a POST /tlsrpt (upload is *req_cls): the body, then the stored report's
 * answer, the connection suspended while a worker stores it. */
enum MHD_Result http_report_body(struct http *h, struct MHD_Connection *c, struct conn *cn,
                                 const struct config_domain *cd, void *upload, const char *data,
                                 size_t *size);
/* Frees what http_report_head() set in *req_cls. NULL is a no-op. */
void http_report_free(void *upload);

#endif
