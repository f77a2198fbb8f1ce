/* http: libmicrohttpd glue: TLS by SNI, routing, headers, status codes, access log */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>

#include "acme.h"
#include "admission.h"
#include "host.h"
#include "http.h"
#include "log.h"
#include "reports.h"
#include "snapshot.h"
#include "stats.h"
#include "tlspark.h"

#define POLICY_PATH "/.well-known/mta-sts.txt"
#define MAX_DAEMONS 16
/* Per-connection memory pool: bounds the request header section (431 above ~8 KiB). */
#define CONNECTION_MEMORY 8192
/* "handshake failed" lines a second at most */
#define HS_LOG_PER_SECOND 10

#define METHOD_NOT_ALLOWED "Method Not Allowed\n"

/* The answers that are not a policy, by status. */
static const struct {
	enum http_status status;
	const char *body;
} fixed_bodies[] = {
    {HTTP_BAD_REQUEST, "Bad Request\n"},           {HTTP_NOT_FOUND, "Not Found\n"},
    {HTTP_METHOD_NOT_ALLOWED, METHOD_NOT_ALLOWED}, {HTTP_MISDIRECTED, "Misdirected Request\n"},
    {HTTP_UNAVAILABLE, "No policy available\n"},
};
#define N_FIXED (sizeof(fixed_bodies) / sizeof(fixed_bodies[0]))

struct fixed {
	enum http_status status;
	struct MHD_Response *response;
	size_t len;
};

struct http {
	struct MHD_Daemon *daemons[MAX_DAEMONS];
	size_t n_daemons;
	atomic_bool access_log;
	gnutls_datum_t ticket_key;
	struct fixed fixed[N_FIXED];    /* error answers, shared by every request */
	struct acme *acme;              /* answers TLS-ALPN-01 challenges */
	struct admission *adm;          /* deadlines, per-address limit, shedding */
	struct tlspark *park;           /* handshakes waiting for the network */
	struct reports *reports;        /* stores what is posted to /tlsrpt (NULL: none) */
	struct MHD_Response *post_only; /* 405 for /tlsrpt: Allow: POST */
	bool plain;                     /* http_start_plain(): the first tenant for everyone */
	pthread_mutex_t hs_log_lock;    /* the rate of "handshake failed" lines */
	time_t hs_log_second;
	unsigned hs_log_count;
	unsigned long hs_log_skipped;
};

/* ALPN: what MHD offers, plus acme-tls/1 while ACME validates by TLS-ALPN-01 (RFC 8737). A
 * client that offers acme-tls/1 alone is a CA validating; every other client negotiates
 * http/1.1 or nothing, as before. */
static const gnutls_datum_t alpn_acme[] = {
    {(unsigned char *)(uintptr_t) "http/1.1", 8},
    {(unsigned char *)(uintptr_t) "http/1.0", 8},
    {(unsigned char *)(uintptr_t) "acme-tls/1", 10},
};

static const struct fixed *fixed_for(const struct http *h, enum http_status status)
{
	for (size_t i = 0; i < N_FIXED; i++)
		if (h->fixed[i].status == status)
			return &h->fixed[i];
	return &h->fixed[N_FIXED - 1];
}

static struct MHD_Response *fixed_response(const char *text)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
	    strlen(text), (void *)(uintptr_t)text, MHD_RESPMEM_PERSISTENT);

	if (r != NULL && MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
	                                         "text/plain; charset=utf-8") == MHD_NO) {
		MHD_destroy_response(r);
		return NULL;
	}
	return r;
}

/* The 200 response of a doc, built when the doc is made (never on a request). It sends the
 * doc's own body bytes, and frees the doc when MHD is done with it: a queued response may
 * outlive the doc's last reference (a provider's new copy replaces it). */
static void *doc_response_create(struct doc *d)
{
	struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback_cls(
	    d->len, d->body, doc_memory_free, d);

	if (r == NULL)
		return NULL;
	if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8") ==
	        MHD_NO ||
	    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache") == MHD_NO ||
	    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff") == MHD_NO) {
		MHD_destroy_response(r);
		return NULL;
	}
	return r;
}

static void doc_response_destroy(void *response)
{
	MHD_destroy_response(response);
}

const struct doc_renderer http_doc_renderer = {doc_response_create, doc_response_destroy};

/* The SNI of the connection, lowercase not guaranteed; 0 / -1 when there is none. */
static int session_sni(gnutls_session_t session, char *buf, size_t size, size_t *ret_len)
{
	unsigned type;
	size_t len = size;

	if (gnutls_server_name_get(session, buf, &len, &type, 0) < 0 || type != GNUTLS_NAME_DNS ||
	    len == 0 || len >= size)
		return -1;
	buf[len] = 0;
	*ret_len = len;
	return 0;
}

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
	const char *uri;   /* the request target as MHD read it (uri_seen()) */
	size_t uri_len;    /* to its first NUL */
	bool corked;       /* a response is being written into one TLS record (serve()) */
	bool tcp_uncorked; /* uncork() has undone MHD's TCP_CORK */
};

/* Whether the handshake negotiated acme-tls/1 (known once the ClientHello is read, before
 * the certificate is chosen). */
static bool session_acme(gnutls_session_t session)
{
	gnutls_datum_t p;

	return gnutls_alpn_get_selected_protocol(session, &p) == 0 && p.size == 10 &&
	       memcmp(p.data, "acme-tls/1", 10) == 0;
}

static struct conn *connection_conn(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *info =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return info != NULL ? info->socket_context : NULL;
}

static struct conn *session_conn(gnutls_session_t session)
{
	struct MHD_Connection *c = gnutls_session_get_ptr(session);

	return c != NULL ? connection_conn(c) : NULL;
}

/* GnuTLS certificate callback: picks the tenant's chain by SNI, or aborts the handshake
 * with an unrecognized_name alert (RFC 8461 §7.1: never another tenant's certificate). */
static int cert_callback(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nreqs,
                         const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                         gnutls_pcert_st **ret_pcert, unsigned int *ret_pcert_length,
                         gnutls_privkey_t *ret_key)
{
	struct conn *cn = session_conn(session);
	const struct tenant *t = NULL;
	char sni[256];
	size_t len;
	bool has_sni = session_sni(session, sni, sizeof(sni), &len) == 0;

	if (cn != NULL && cn->snap != NULL && has_sni)
		t = snapshot_find(cn->snap, sni, len);
	if (cn != NULL && session_acme(session)) {
		/* A CA validating: the challenge certificate of a name in the configuration
		 * with a pending challenge, or no handshake (never the tenant's). */
		cn->acme = true;
		if (!cn->handshake_counted)
			stats_handshake(STATS_HS_ACME);
		cn->handshake_counted = true;
		if (t != NULL && cn->cert == NULL && cn->http->acme != NULL)
			cn->cert = acme_alpn_cert(cn->http->acme, tenant_domain(t)->host);
		if (t == NULL || cn->cert == NULL) {
			gnutls_alert_send(session, GNUTLS_AL_FATAL, GNUTLS_A_UNRECOGNIZED_NAME);
			return -1;
		}
		*ret_pcert = cn->cert->chain;
		*ret_pcert_length = cn->cert->n_chain;
		*ret_key = cn->cert->key;
		return 0;
	}
	if (t != NULL && cn->cert == NULL)
		cn->cert = tenant_cert(cn->snap, t, time(NULL));
	if (t == NULL || cn->cert == NULL) {
		/* GnuTLS asks again for every candidate cipher suite: count the handshake
		 * once. */
		if (cn == NULL || !cn->handshake_counted)
			stats_handshake(has_sni ? STATS_HS_UNKNOWN_SNI : STATS_HS_NO_SNI);
		if (cn != NULL) {
			cn->handshake_counted = true;
			cn->failure = has_sni ? STATS_HS_UNKNOWN_SNI : STATS_HS_NO_SNI;
			if (has_sni && cn->bad_sni == NULL && (cn->bad_sni = strdup(sni)) != NULL)
				for (char *p = cn->bad_sni; *p != '\0'; p++)
					if (*p <= ' ' || *p > '~')
						*p = '?'; /* a log line is one line */
		}
		gnutls_alert_send(session, GNUTLS_AL_FATAL, GNUTLS_A_UNRECOGNIZED_NAME);
		return -1;
	}
	cn->tenant = t;
	*ret_pcert = cn->cert->chain;
	*ret_pcert_length = cn->cert->n_chain;
	*ret_key = cn->cert->key;
	return 0;
}

/* Counts a completed handshake when the client's Finished arrives. A resumed session
 * skipped the certificate callback: its tenant comes from the SNI of the resuming
 * ClientHello (which the client must send, RFC 8461 §7.1), so that every completed
 * handshake has one. */
static int handshake_hook(gnutls_session_t session, unsigned int htype, unsigned when,
                          unsigned int incoming, const gnutls_datum_t *msg)
{
	struct conn *cn = session_conn(session);
	char sni[256];
	size_t len;

	if (cn == NULL)
		return 0;
	if (htype == GNUTLS_HANDSHAKE_CLIENT_HELLO && incoming && when == GNUTLS_HOOK_PRE) {
		cn->hello = true;
		/* client_version, the hello's first two bytes, under 3.3: TLS 1.1 or older.
		 * GnuTLS would drop it without a word; RFC 8446 (and 5246) want an alert. */
		if (msg != NULL && msg->size >= 2 &&
		    (msg->data[0] < 3 || (msg->data[0] == 3 && msg->data[1] < 3))) {
			cn->failure = STATS_HS_OLD_VERSION;
			cn->handshake_counted = true;
			stats_handshake(STATS_HS_OLD_VERSION);
			gnutls_alert_send(session, GNUTLS_AL_FATAL, GNUTLS_A_PROTOCOL_VERSION);
			return GNUTLS_E_UNSUPPORTED_VERSION_PACKET;
		}
		return 0;
	}
	if (htype != GNUTLS_HANDSHAKE_FINISHED || when != GNUTLS_HOOK_POST)
		return 0;
	/* The client's Finished is the last message a handshake reads (TLS 1.2 and 1.3,
	 * full or resumed). */
	if (incoming)
		tlspark_handshake_done(&cn->park);

	/* A resumed session skipped the certificate callback: acme-tls/1 is known here. */
	if (!cn->acme && session_acme(session))
		cn->acme = true;
	if (cn->acme) {
		/* RFC 8737 3: nothing is sent over a validation connection. The last Finished
		 * is the client's in TLS 1.3 and ours in a full TLS 1.2 handshake; then the
		 * read side is shut so that MHD sees the end and closes. */
		bool tls13 = gnutls_protocol_get_version(session) == GNUTLS_TLS1_3;

		if (htype == GNUTLS_HANDSHAKE_FINISHED && (incoming != 0) == tls13)
			shutdown(cn->fd, SHUT_RD);
		return 0;
	}
	if (incoming && !cn->handshake_done) {
		if (cn->tenant == NULL && cn->snap != NULL &&
		    session_sni(session, sni, sizeof(sni), &len) == 0)
			cn->tenant = snapshot_find(cn->snap, sni, len);
		cn->handshake_done = cn->handshake_counted = true;
		cn->tls = gnutls_protocol_get_version(session) == GNUTLS_TLS1_3 ? 13 : 12;
		stats_handshake(gnutls_session_is_resumed(session) ? STATS_HS_RESUMED
		                                                   : STATS_HS_OK);
	}
	return 0;
}

static const struct sockaddr *client_sockaddr(struct MHD_Connection *c);
static void client_address(const struct sockaddr *sa, char *out, size_t size);

/* A connection closed before its handshake completed: counted by reason (unless the
 * certificate callback or the hello hook did) and logged, at most HS_LOG_PER_SECOND lines a
 * second with what was left out said in the next one. */
static void handshake_failed(struct http *h, struct MHD_Connection *c, struct conn *cn)
{
	const union MHD_ConnectionInfo *info =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	gnutls_session_t session = info != NULL ? info->tls_session : NULL;
	enum stats_handshake why = cn->failure;
	gnutls_alert_description_t alert = session != NULL ? gnutls_alert_get(session) : 0;
	char addr[INET6_ADDRSTRLEN], more[64] = "";
	const char *sni = cn->bad_sni != NULL  ? cn->bad_sni
	                  : cn->tenant != NULL ? tenant_domain(cn->tenant)->host
	                                       : "-";
	unsigned long skipped = 0;
	time_t now = time(NULL);
	bool log;

	if (!cn->handshake_counted) {
		why = !cn->hello                       ? STATS_HS_NO_HELLO
		      : alert != GNUTLS_A_CLOSE_NOTIFY ? STATS_HS_CLIENT_ALERT
		                                       : STATS_HS_FAILED;
		stats_handshake(why);
	}
	pthread_mutex_lock(&h->hs_log_lock);
	if (now != h->hs_log_second) {
		h->hs_log_second = now;
		h->hs_log_count = 0;
	}
	log = h->hs_log_count++ < HS_LOG_PER_SECOND;
	if (log) {
		skipped = h->hs_log_skipped;
		h->hs_log_skipped = 0;
	} else {
		h->hs_log_skipped++;
	}
	pthread_mutex_unlock(&h->hs_log_lock);
	if (!log)
		return;
	client_address(client_sockaddr(c), addr, sizeof(addr));
	if (skipped != 0)
		snprintf(more, sizeof(more), " (%lu more not logged)", skipped);
	log_warn("handshake failed: client %s, sni %s: %s%s%s%s", addr, sni,
	         stats_handshake_names[why], why == STATS_HS_CLIENT_ALERT ? ", alert " : "",
	         why == STATS_HS_CLIENT_ALERT ? gnutls_alert_get_name(alert) : "", more);
}

/* Once the ClientHello's SNI is known, before its tickets are looked at: the ticket key of
 * that name, derived from the process's key, so that a ticket issued for one tenant never
 * resumes a session under another tenant's name (RFC 6066 3; virtual host confusion). */
static int post_client_hello(gnutls_session_t session)
{
	struct conn *cn = session_conn(session);
	unsigned char key[64];
	gnutls_datum_t k = {key, sizeof(key)};
	char sni[256];
	size_t len = 0;

	if (cn == NULL)
		return 0;
	if (session_sni(session, sni, sizeof(sni), &len) < 0)
		len = 0;
	for (size_t i = 0; i < len; i++)
		sni[i] = (char)(sni[i] >= 'A' && sni[i] <= 'Z' ? sni[i] + 32 : sni[i]);
	if (gnutls_hmac_fast(GNUTLS_MAC_SHA512, cn->http->ticket_key.data,
	                     cn->http->ticket_key.size, sni, len, key) < 0 ||
	    gnutls_session_ticket_enable_server(session, &k) < 0) {
		gnutls_memset(key, 0, sizeof(key));
		return GNUTLS_E_INTERNAL_ERROR; /* no ticket of another name may slip through */
	}
	gnutls_memset(key, 0, sizeof(key));
	return 0;
}

static void notify_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                              enum MHD_ConnectionNotificationCode toe)
{
	struct http *h = cls;
	struct conn *cn = *socket_context;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *info =
		    MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);

		const union MHD_ConnectionInfo *fd =
		    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);

		cn = calloc(1, sizeof(*cn));
		if (cn != NULL) {
			cn->http = h;
			cn->snap = snapshot_acquire();
			cn->fd = fd != NULL ? fd->connect_fd : -1;
			if (fd != NULL) {
				admission_start(h->adm, &cn->adm, fd->connect_fd,
				                client_sockaddr(c));
				cn->admitted = true;
			}
		}
		*socket_context = cn;
		if (info != NULL && info->tls_session != NULL) {
			const struct config *cf =
			    cn != NULL && cn->snap != NULL ? snapshot_config(cn->snap) : NULL;

			if (cf != NULL && cf->acme != NULL && !cf->acme_http01 && h->acme != NULL)
				gnutls_alpn_set_protocols(info->tls_session, alpn_acme, 3, 0);
			gnutls_session_ticket_enable_server(info->tls_session, &h->ticket_key);
			gnutls_handshake_set_post_client_hello_function(info->tls_session,
			                                                post_client_hello);
			gnutls_handshake_set_hook_function(info->tls_session, GNUTLS_HANDSHAKE_ANY,
			                                   GNUTLS_HOOK_BOTH, handshake_hook);
			if (cn != NULL && cn->fd >= 0 && h->park != NULL)
				tlspark_attach(h->park, &cn->park, c, info->tls_session, cn->fd);
		}
	} else if (toe == MHD_CONNECTION_NOTIFY_CLOSED && cn != NULL) {
		if (!cn->handshake_done && !cn->acme)
			handshake_failed(h, c, cn);
		if (cn->admitted)
			admission_end(h->adm, &cn->adm);
		tlspark_detach(&cn->park);
		tls_cert_unref(cn->cert);
		free(cn->bad_sni);
		snapshot_unref(cn->snap);
		free(cn);
		*socket_context = NULL;
	}
}

static int hex_digit(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

static const struct sockaddr *client_sockaddr(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *info =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

	return info != NULL ? info->client_addr : NULL;
}

/* The client's address as text, "-" when unknown. */
static void client_address(const struct sockaddr *sa, char *out, size_t size)
{
	snprintf(out, size, "-");
	if (sa != NULL && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
		          (socklen_t)size);
	else if (sa != NULL && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
		          out, (socklen_t)size);
}

/* The unescape callback (for the target's path and query): %XX decoded as MHD does, but
 * a NUL or a slash written as %00 or %2F marks the request bad (400): it could only be
 * meant to make the path read as another one. A NUL is never written into the string. */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
	struct conn *cn = connection_conn(c);
	char *w = s;

	for (const char *r = s; *r != '\0';) {
		int hi = r[0] == '%' ? hex_digit(r[1]) : -1, lo = hi >= 0 ? hex_digit(r[2]) : -1;

		if (lo < 0) {
			*w++ = *r++;
			continue;
		}
		if ((hi == 0 && lo == 0) || (hi == 2 && lo == 0xf)) {
			if (cn != NULL)
				cn->bad_target = true;
		}
		*w++ = hi == 0 && lo == 0 ? '?' : (char)(hi * 16 + lo);
		r += 3;
	}
	*w = '\0';
	return (size_t)(w - s);
}

/* MHD's URI log callback, called with the request target before MHD changes it (and after
 * it cut the request line at the space before the version): where the target's first NUL
 * is, for head_has_nul(). */
static void *uri_seen(void *cls, const char *uri, struct MHD_Connection *c)
{
	struct conn *cn = connection_conn(c);

	(void)cls;
	if (cn != NULL) {
		cn->uri = uri;
		cn->uri_len = uri != NULL ? strlen(uri) : 0;
	}
	return NULL;
}

/* A NUL byte in the request head. libmicrohttpd 0.9.75 parses the head in place in its read
 * buffer and hands out C strings, measured with strlen(): "Host: a\0b" is read as "a". But
 * the strings it hands out lie in the buffer in the order of the head, and what it leaves
 * between two of them is only what it overwrote with NULs (the space after the method and
 * before the version, each colon and line end, blanks it skipped): any other byte between
 * the end of one string and the start of the next is what followed a NUL inside a method,
 * target, version, header name or value. The head is [method, method + its size). */
struct nul_scan {
	uintptr_t start, end; /* the head */
	const char *from;     /* the end of the string before, NULL when not in the head */
	bool bad;
};

static bool in_head(const struct nul_scan *s, const char *p)
{
	return p != NULL && (uintptr_t)p >= s->start && (uintptr_t)p <= s->end;
}

/* Whether [from, to) holds only separators MHD wrote or skipped. */
static bool separators_only(const struct nul_scan *s, const char *from, const char *to)
{
	if (!in_head(s, from) || !in_head(s, to) || (uintptr_t)to < (uintptr_t)from)
		return true; /* not in the buffer (a folded line MHD copied): nothing to compare */
	for (const char *p = from; p < to; p++)
		if (*p != '\0' && *p != ' ' && *p != '\t')
			return false;
	return true;
}

static void scan_next(struct nul_scan *s, const char *str)
{
	if (!separators_only(s, s->from, str))
		s->bad = true;
	s->from = in_head(s, str) ? str + strlen(str) : NULL;
}

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
	struct nul_scan *s = cls;

	(void)kind;
	scan_next(s, key);
	if (value != NULL)
		scan_next(s, value);
	return MHD_YES;
}

static bool head_has_nul(struct MHD_Connection *c, const struct conn *cn, const char *method,
                         const char *version)
{
	const union MHD_ConnectionInfo *size =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
	struct nul_scan s = {(uintptr_t)method, 0, NULL, false};

	if (size == NULL || cn == NULL || cn->uri == NULL)
		return false;
	s.end = s.start + size->header_size;
	scan_next(&s, method);
	if (!separators_only(&s, s.from, cn->uri))
		s.bad = true;
	s.from = in_head(&s, cn->uri) ? cn->uri + cn->uri_len : NULL;
	scan_next(&s, version);
	MHD_get_connection_values(c, MHD_HEADER_KIND, scan_header, &s);
	if (!separators_only(&s, s.from, (const char *)s.end))
		s.bad = true; /* after the last header: its line end and the empty line */
	return s.bad;
}

struct framing {
	unsigned hosts, lengths, encodings;
};

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
	struct framing *f = cls;

	(void)kind;
	(void)value;
	if (strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0)
		f->hosts++;
	else if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
		f->lengths++;
	else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0)
		f->encodings++;
	return MHD_YES;
}

/* What a strict reading of RFC 9112 refuses with 400, decided once the head is read (before
 * any body, so that a body never becomes a request): not exactly one Host (none only in
 * HTTP/1.0), a Host with a NUL, space, userinfo or bad port, several Content-Length or
 * Transfer-Encoding fields or both kinds at once, a target with %00 or %2F, a NUL byte
 * anywhere in the head. */
static bool request_malformed(struct MHD_Connection *c, const struct conn *cn, const char *method,
                              const char *version)
{
	struct framing f = {0, 0, 0};
	const char *host = NULL;
	size_t len = 0;

	if ((cn != NULL && cn->bad_target) || head_has_nul(c, cn, method, version))
		return true;
	MHD_get_connection_values(c, MHD_HEADER_KIND, count_header, &f);
	if (f.hosts > 1 || f.lengths > 1 || f.encodings > 1 || (f.lengths != 0 && f.encodings != 0))
		return true;
	if (f.hosts == 0)
		return strcmp(version, MHD_HTTP_VERSION_1_0) != 0;
	if (MHD_lookup_connection_value_n(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST,
	                                  strlen(MHD_HTTP_HEADER_HOST), &host, &len) != MHD_YES ||
	    host == NULL)
		return true;
	return strlen(host) != len || !host_well_formed(host, len);
}

/* *req_cls of a request that is not a report being posted */
static int request_seen;

/* A TLS report posted to /tlsrpt: its body as it comes in, then its job while a worker
 * reads and stores it (the connection suspended meanwhile), then the answer. */
struct upload {
	struct reports_job job;
	struct http *http;
	struct MHD_Connection *c;
	struct buf body;
	size_t max;      /* of the body, by its media type */
	size_t reserved; /* of the body budget */
	bool refused;    /* too large, or no budget: the rest is read and dropped */
	enum reports_outcome why;
	bool submitted;
	atomic_bool done; /* the worker is through: the job's outcome is set */
	char client[INET6_ADDRSTRLEN];
};

static void upload_free(struct upload *up)
{
	if (up == NULL)
		return;
	if (up->reserved != 0)
		reports_release(up->http->reports, up->reserved);
	buf_finish(&up->body);
	free(up);
}

/* On the worker's thread: the outcome is there, the connection goes on. */
static void upload_done(struct reports_job *job)
{
	struct upload *up = job->arg;

	atomic_store(&up->done, true);
	MHD_resume_connection(up->c);
}

/* Answers a post: the outcome's status and a line saying why. */
static enum MHD_Result report_answer(struct http *h, struct MHD_Connection *c,
                                     const struct config_domain *cd, enum reports_outcome o,
                                     const char *reason, unsigned retry)
{
	char text[TLSRPT_ERR_MAX + 32], seconds[16];
	unsigned status = reports_status(o);
	struct MHD_Response *r;
	enum MHD_Result ret;
	int len = snprintf(text, sizeof(text), "%s\n",
	                   reason != NULL && reason[0] != '\0' ? reason
	                   : o == REPORTS_STORED               ? "stored"
	                                                       : reports_outcome_names[o]);

	if (len < 0 || (size_t)len >= sizeof(text))
		len = snprintf(text, sizeof(text), "%s\n", reports_outcome_names[o]);
	for (int i = 0; i < len - 1; i++)
		if (text[i] < ' ' || text[i] > '~')
			text[i] = '?'; /* what a report said is not echoed raw */
	r = MHD_create_response_from_buffer((size_t)len, text, MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	snprintf(seconds, sizeof(seconds), "%u", retry != 0 ? retry : 60);
	if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8") ==
	        MHD_NO ||
	    ((status == 429 || status == 503) &&
	     MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, seconds) == MHD_NO)) {
		MHD_destroy_response(r);
		return MHD_NO;
	}
	if (o != REPORTS_STORED && o != REPORTS_DUPLICATE && o != REPORTS_TEMPFAIL &&
	    o != REPORTS_INVALID && o != REPORTS_FOREIGN && o != REPORTS_QUOTA)
		reports_count(h->reports, o); /* the workers count the others */
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	if (atomic_load_explicit(&h->access_log, memory_order_relaxed)) {
		char addr[INET6_ADDRSTRLEN];
		const union MHD_ConnectionInfo *info =
		    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

		client_address(info != NULL ? info->client_addr : NULL, addr, sizeof(addr));
		log_access(addr, cd->host, MHD_HTTP_METHOD_POST, CONFIG_TLSRPT_PATH, status,
		           (size_t)len);
	}
	return ret;
}

/* The head of a POST /tlsrpt on a domain that takes reports: refused at once (and the
 * connection closed, its body unread) for a media type other than RFC 8460's, a declared
 * length past the cap, or a client over its rate; else the body is awaited. */
static enum MHD_Result report_head(struct http *h, struct MHD_Connection *c,
                                   const struct config_domain *cd, void **req_cls)
{
	const char *type =
	    MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	const char *length =
	    MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	enum tlsrpt_encoding enc;
	struct upload *up;
	unsigned retry = 0;
	size_t max;

	if (type == NULL || tlsrpt_content_type(type, &enc) < 0)
		return report_answer(h, c, cd, REPORTS_MEDIA_TYPE,
		                     "Content-Type must be application/tlsrpt+gzip or "
		                     "application/tlsrpt+json",
		                     0);
	max = enc == TLSRPT_ENCODING_GZIP ? TLSRPT_GZIP_MAX : TLSRPT_JSON_MAX;
	if (length != NULL && strtoull(length, NULL, 10) > max)
		return report_answer(h, c, cd, REPORTS_TOO_LARGE, "report too large", 0);
	if (!reports_admit(h->reports, client_sockaddr(c), &retry))
		return report_answer(h, c, cd, REPORTS_RATE_LIMITED,
		                     "too many reports from this address", retry);
	if ((up = calloc(1, sizeof(*up))) == NULL)
		return MHD_NO;
	up->http = h;
	up->c = c;
	up->max = max;
	up->job.encoding = enc;
	up->job.done = upload_done;
	up->job.arg = up;
	snprintf(up->job.domain, sizeof(up->job.domain), "%s", cd->name);
	buf_init(&up->body);
	*req_cls = up;
	return MHD_YES;
}

/* The rest of a POST /tlsrpt: the body as it comes, then the job, then the answer. */
static enum MHD_Result report_body(struct http *h, struct MHD_Connection *c, struct conn *cn,
                                   const struct config_domain *cd, struct upload *up,
                                   const char *data, size_t *size)
{
	if (*size != 0) {
		size_t n = *size;

		*size = 0;
		if (up->refused)
			return MHD_YES;
		if (up->body.len + n > up->max) {
			up->refused = true;
			up->why = REPORTS_TOO_LARGE;
		} else if (!reports_reserve(h->reports, n)) {
			up->refused = true;
			up->why = REPORTS_BUSY;
		} else {
			up->reserved += n;
			if (buf_append(&up->body, data, n) < 0) {
				up->refused = true;
				up->why = REPORTS_BUSY;
			}
		}
		if (up->refused) { /* nothing more is kept */
			buf_finish(&up->body);
			buf_init(&up->body);
		}
		return MHD_YES;
	}
	if (up->submitted) {
		if (!atomic_load(&up->done))
			return MHD_YES; /* not through yet: suspended again shortly */
		return report_answer(h, c, cd, up->job.outcome, up->job.reason, 300);
	}
	if (cn != NULL && cn->admitted)
		admission_head(h->adm, &cn->adm); /* the whole request is in */
	if (up->refused)
		return report_answer(h, c, cd, up->why,
		                     up->why == REPORTS_TOO_LARGE ? "report too large"
		                                                  : "too many reports in progress",
		                     0);
	up->job.body = up->body.data != NULL ? up->body.data : "";
	up->job.len = up->body.len;
	up->submitted = true;
	MHD_suspend_connection(c);
	if (reports_submit(h->reports, &up->job) < 0) {
		up->job.outcome = REPORTS_BUSY;
		snprintf(up->job.reason, sizeof(up->job.reason), "too many reports in progress");
		upload_done(&up->job);
	}
	return MHD_YES;
}

/* Whether the request is for /tlsrpt on a domain that takes reports (tlsrpt = self), on its
 * own host name. */
static bool reports_taken(const struct http *h, struct MHD_Connection *c,
                          const struct config_domain *cd, const char *url)
{
	const char *host;

	if (h->reports == NULL || cd == NULL || !cd->tlsrpt_self ||
	    strcmp(url, CONFIG_TLSRPT_PATH) != 0)
		return false;
	host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
	return host == NULL || host_matches(host, cd->host);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **req_cls)
{
	struct http *h = cls;
	const struct sockaddr *client;
	struct conn *cn = connection_conn(c);
	const struct tenant *t = cn == NULL           ? NULL
	                         : cn->tenant != NULL ? cn->tenant
	                         : h->plain && cn->snap != NULL && snapshot_size(cn->snap) > 0
	                             ? snapshot_tenant(cn->snap, 0)
	                             : NULL;
	const struct config_domain *cd = t != NULL ? tenant_domain(t) : NULL;
	struct MHD_Response *r;
	struct doc *doc = NULL;
	enum http_status status;
	const char *host;
	size_t bytes = 0;
	enum MHD_Result ret;

	if (cn != NULL && cn->acme)
		return MHD_NO; /* a validation connection: nothing is served over it */
	/* Answer on the second call: queuing on the first makes MHD close the connection,
	 * which is what a malformed request gets. */
	if (*req_cls == NULL) {
		*req_cls = &request_seen;
		if (!request_malformed(c, cn, method, version)) {
			if (reports_taken(h, c, cd, url) &&
			    strcmp(method, MHD_HTTP_METHOD_POST) == 0)
				return report_head(h, c, cd, req_cls);
			return MHD_YES;
		}
		status = HTTP_BAD_REQUEST;
		goto respond;
	}
	if (*req_cls != &request_seen)
		return report_body(h, c, cn, cd, *req_cls, upload_data, upload_data_size);
	if (*upload_data_size != 0) {
		*upload_data_size = 0; /* a body is read and dropped */
		return MHD_YES;
	}
	host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);

	if (t == NULL)
		status = HTTP_MISDIRECTED;
	else if (host != NULL && !host_matches(host, cd->host))
		status = HTTP_MISDIRECTED;
	else if (reports_taken(h, c, cd, url))
		status = HTTP_METHOD_NOT_ALLOWED; /* POST went to report_head() */
	else if (strcmp(url, POLICY_PATH) != 0)
		status = HTTP_NOT_FOUND;
	else if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
	         strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		status = HTTP_METHOD_NOT_ALLOWED;
	else if ((doc = tenant_doc(t, time(NULL))) == NULL)
		status = HTTP_UNAVAILABLE;
	else
		status = HTTP_OK;

respond:
	if (cn != NULL) {
		cn->bad_target = false; /* for the next request on the connection */
		if (cn->admitted)
			admission_head(h->adm, &cn->adm); /* head and body are in */
	}
	if (status == HTTP_OK) {
		r = doc->response;
		bytes = doc->len;
	} else if (status == HTTP_METHOD_NOT_ALLOWED && strcmp(url, CONFIG_TLSRPT_PATH) == 0) {
		r = h->post_only;
		bytes = strlen(METHOD_NOT_ALLOWED);
	} else {
		const struct fixed *f = fixed_for(h, status);

		r = f->response;
		bytes = f->len;
	}
	if (r == NULL) {
		doc_unref(doc);
		return MHD_NO;
	}
	if (strcmp(method, MHD_HTTP_METHOD_HEAD) == 0)
		bytes = 0;
	ret = MHD_queue_response(c, (unsigned)status, r);
	client = client_sockaddr(c);
	if (t != NULL) {
		if (cn->stats == NULL)
			cn->stats = stats_domain(cd->name);
		stats_request(cn->stats, (unsigned)status, client, doc != NULL ? doc->id : NULL,
		              cn->tls);
	}
	/* Queued: the response holds its own copy of the body, the doc may go. */
	doc_unref(doc);
	if (atomic_load_explicit(&h->access_log, memory_order_relaxed)) {
		char addr[INET6_ADDRSTRLEN];

		client_address(client, addr, sizeof(addr));
		log_access(addr, cd != NULL ? cd->host : "-", method, url, (unsigned)status, bytes);
	}
	return ret;
}

static gnutls_session_t connection_session(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *info =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);

	return info != NULL ? info->tls_session : NULL;
}

/* The access handler of the TLS listeners: handle() with the response corked. MHD 0.9.75
 * sends a response's header block and body as two TLS records with two sendmsg() calls
 * (and does not combine them for TLS); corked, GnuTLS makes them one record, written once
 * the response is complete (request_completed()). Corked on the handler's last call for a
 * request (head and body read), which is where a response is queued, so that nothing sent
 * before it (a 100 Continue) waits. */
static enum MHD_Result serve(void *cls, struct MHD_Connection *c, const char *url,
                             const char *method, const char *version, const char *upload_data,
                             size_t *upload_data_size, void **req_cls)
{
	struct conn *cn = connection_conn(c);

	if (cn != NULL && !cn->corked && *req_cls != NULL && *upload_data_size == 0) {
		gnutls_session_t session = connection_session(c);

		if (session != NULL) {
			gnutls_record_cork(session);
			cn->corked = true;
		}
	}
	return handle(cls, c, url, method, version, upload_data, upload_data_size, req_cls);
}

/* Sends what serve() corked. A client that has stopped reading (the socket buffer is
 * full) loses its connection: the response cannot wait anywhere else. */
static void uncork(struct MHD_Connection *c, struct conn *cn)
{
	gnutls_session_t session = connection_session(c);

	cn->corked = false;
	/* MHD corks the socket (TCP_CORK) before its first header block and never uncorks it:
	 * it pushes each response by setting TCP_NODELAY after the body's send, which here
	 * comes before our write, so Linux would hold the write for 200 ms. Uncorked once;
	 * MHD believes it corked still and does not cork again. */
	if (!cn->tcp_uncorked)
		setsockopt(cn->fd, IPPROTO_TCP, TCP_CORK, &(int){0}, sizeof(int));
	cn->tcp_uncorked = true;
	if (session != NULL && gnutls_record_uncork(session, 0) < 0 &&
	    gnutls_record_check_corked(session) > 0)
		shutdown(cn->fd, SHUT_RDWR);
}

static enum MHD_Result accept_policy(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	struct http *h = cls;

	(void)addrlen;
	return admission_accept(h->adm, addr) ? MHD_YES : MHD_NO;
}

/* A response went out: a connection that stays open waits for its next request. */
static void request_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                              enum MHD_RequestTerminationCode toe)
{
	struct http *h = cls;
	struct conn *cn = connection_conn(c);

	if (*req_cls != NULL && *req_cls != (void *)&request_seen)
		upload_free(*req_cls);
	*req_cls = NULL;
	if (cn != NULL)
		cn->uri = NULL; /* the next request's comes with it */
	if (cn != NULL && cn->corked)
		uncork(c, cn);
	if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK && cn != NULL && cn->admitted)
		admission_idle(h->adm, &cn->adm);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	/* Every failed handshake: handshake_failed() says it better, once, rate-limited. */
	if (strstr(fmt, "handshake message out of context") != NULL)
		return;
	log_vmsg(LOG_LEVEL_WARNING, fmt, ap);
}

static int make_responses(struct http *h)
{
	for (size_t i = 0; i < N_FIXED; i++) {
		struct fixed *f = &h->fixed[i];

		f->status = fixed_bodies[i].status;
		f->len = strlen(fixed_bodies[i].body);
		f->response = fixed_response(fixed_bodies[i].body);
		if (f->response == NULL)
			return -1;
	}
	/* A malformed request may have been framed wrongly: nothing more is read after it. */
	if (MHD_add_response_header(fixed_for(h, HTTP_BAD_REQUEST)->response,
	                            MHD_HTTP_HEADER_CONNECTION, "close") == MHD_NO ||
	    MHD_add_response_header(fixed_for(h, HTTP_METHOD_NOT_ALLOWED)->response,
	                            MHD_HTTP_HEADER_ALLOW, "GET, HEAD") == MHD_NO ||
	    MHD_add_response_header(fixed_for(h, HTTP_UNAVAILABLE)->response,
	                            MHD_HTTP_HEADER_RETRY_AFTER, "60") == MHD_NO)
		return -1;
	h->post_only = fixed_response(METHOD_NOT_ALLOWED);
	if (h->post_only == NULL ||
	    MHD_add_response_header(h->post_only, MHD_HTTP_HEADER_ALLOW, "POST") == MHD_NO)
		return -1;
	return 0;
}

static void destroy_responses(struct http *h)
{
	if (h->post_only != NULL)
		MHD_destroy_response(h->post_only);
	for (size_t i = 0; i < N_FIXED; i++)
		if (h->fixed[i].response != NULL)
			MHD_destroy_response(h->fixed[i].response);
}

struct http *http_start(const struct config *config, const int *fds, size_t n_fds,
                        struct acme *acme, struct reports *reports)
{
	struct http *h = calloc(1, sizeof(*h));
	unsigned threads = config->threads;

	if (h == NULL)
		return NULL;
	h->acme = acme;
	h->reports = reports;
	pthread_mutex_init(&h->hs_log_lock, NULL);
	if (n_fds > MAX_DAEMONS) {
		log_err("at most %d listen addresses", MAX_DAEMONS);
		goto fail;
	}
	if (threads == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		threads = n > 0 ? (unsigned)n : 1;
	}
	atomic_init(&h->access_log, config->access_log);
	h->adm = admission_create(&(struct admission_opts){
	    .name = "https",
	    .max_connections = config->max_connections,
	    .per_ip = config->max_connections_per_ip,
	    .head_timeout = config->request_timeout,
	    .idle_timeout = config->idle_timeout,
	});
	if (h->adm == NULL)
		goto fail;
	if (make_responses(h) < 0 || gnutls_session_ticket_key_generate(&h->ticket_key) < 0) {
		log_err("out of memory");
		goto fail;
	}
	h->park = tlspark_create();
	if (h->park == NULL)
		goto fail;
	for (size_t i = 0; i < n_fds; i++) {
		/* Epoll mode, so that a request costs the same with thousands of connections
		 * open (poll mode walks every connection on every round); tlspark keeps its
		 * TLS handshakes from spinning (tlspark.h), for which connections are
		 * suspended and resumed. */
		unsigned flags = MHD_USE_TLS | MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG |
		                 MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME;
		/* The connection limit is admission's: libmicrohttpd's own is higher, so that
		 * shed connections may finish closing while new ones come in. */
		h->daemons[i] = MHD_start_daemon(
		    flags, 0, accept_policy, h, serve, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
		    MHD_OPTION_LISTEN_SOCKET, fds[i], MHD_OPTION_HTTPS_CERT_CALLBACK, cert_callback,
		    MHD_OPTION_HTTPS_PRIORITIES, tls_priorities, MHD_OPTION_NOTIFY_CONNECTION,
		    notify_connection, h, MHD_OPTION_CONNECTION_TIMEOUT, config->idle_timeout,
		    MHD_OPTION_CONNECTION_LIMIT,
		    config->max_connections + config->max_connections / 8 + 64,
		    MHD_OPTION_NOTIFY_COMPLETED, request_completed, h,
		    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
		    MHD_OPTION_SIGPIPE_HANDLED_BY_APP, 1, MHD_OPTION_THREAD_POOL_SIZE, threads,
		    MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL, MHD_OPTION_URI_LOG_CALLBACK,
		    uri_seen, NULL, MHD_OPTION_END);
		if (h->daemons[i] == NULL) {
			log_err("cannot start the HTTPS server on listen socket %zu", i + 1);
			goto fail;
		}
		h->n_daemons++;
	}
	return h;
fail:
	http_stop(h);
	return NULL;
}

/* The fuzzer's server on socket pairs: libmicrohttpd's complaints about TCP options on them
 * (and about what the fuzzer sends) would only slow it down. */
static void plain_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	(void)fmt;
	(void)ap;
}

struct http *http_start_plain(const struct config *config)
{
	struct http *h = calloc(1, sizeof(*h));

	if (h == NULL)
		return NULL;
	h->plain = true;
	pthread_mutex_init(&h->hs_log_lock, NULL);
	atomic_init(&h->access_log, false);
	h->adm = admission_create(&(struct admission_opts){
	    .name = "plain",
	    .max_connections = config->max_connections,
	    .head_timeout = config->request_timeout,
	    .idle_timeout = config->idle_timeout,
	});
	if (h->adm == NULL || make_responses(h) < 0 ||
	    gnutls_session_ticket_key_generate(&h->ticket_key) < 0)
		goto fail;
	h->daemons[0] = MHD_start_daemon(
	    MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_USE_ITC |
	        MHD_USE_NO_LISTEN_SOCKET,
	    0, NULL, NULL, handle, h, MHD_OPTION_EXTERNAL_LOGGER, plain_log, NULL,
	    MHD_OPTION_NOTIFY_CONNECTION, notify_connection, h, MHD_OPTION_CONNECTION_TIMEOUT,
	    config->idle_timeout, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
	    MHD_OPTION_SIGPIPE_HANDLED_BY_APP, 1, MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
	    MHD_OPTION_URI_LOG_CALLBACK, uri_seen, NULL, MHD_OPTION_NOTIFY_COMPLETED,
	    request_completed, h, MHD_OPTION_END);
	if (h->daemons[0] == NULL)
		goto fail;
	h->n_daemons = 1;
	return h;
fail:
	log_err("cannot start the plain HTTP server");
	http_stop(h);
	return NULL;
}

int http_plain_add(struct http *h, int fd)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};

	return MHD_add_connection(h->daemons[0], fd, (struct sockaddr *)&sa, sizeof(sa)) == MHD_YES
	           ? 0
	           : -1;
}

void http_set_access_log(struct http *h, bool on)
{
	atomic_store(&h->access_log, on);
}

void http_stop(struct http *h)
{
	MHD_socket fds[MAX_DAEMONS];

	if (h == NULL)
		return;
	for (size_t i = 0; i < h->n_daemons; i++)
		fds[i] = h->plain ? MHD_INVALID_SOCKET : MHD_quiesce_daemon(h->daemons[i]);
	/* MHD_stop_daemon() refuses suspended connections. */
	tlspark_release(h->park);
	for (size_t i = 0; i < h->n_daemons; i++) {
		MHD_stop_daemon(h->daemons[i]);
		if (fds[i] != MHD_INVALID_SOCKET)
			close(fds[i]);
	}
	tlspark_destroy(h->park);
	destroy_responses(h);
	admission_destroy(h->adm); /* after the daemons: every connection has ended */
	pthread_mutex_destroy(&h->hs_log_lock);
	if (h->ticket_key.data != NULL) {
		gnutls_memset(h->ticket_key.data, 0, h->ticket_key.size);
		gnutls_free(h->ticket_key.data);
	}
	free(h);
}
