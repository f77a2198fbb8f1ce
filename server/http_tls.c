/* http_tls: the TLS side of the HTTPS server: the certificate by SNI, session tickets per
 * name, the handshake hooks (old versions, ACME validations, resumed sessions), failed
 * handshakes counted and logged */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>

#include <gnutls/crypto.h>

#include "acme.h"
#include "http_conn.h"
#include "log.h"

/* "handshake failed" lines a second at most */
#define HS_LOG_PER_SECOND 10

/* ALPN: what MHD offers, plus acme-tls/1 while ACME validates by TLS-ALPN-01 (RFC 8737). A
 * client that offers acme-tls/1 alone is a CA validating; every other client negotiates
 * http/1.1 or nothing, as before. */
static const gnutls_datum_t alpn_acme[] = {
    {(unsigned char *)(uintptr_t) "http/1.1", 8},
    {(unsigned char *)(uintptr_t) "http/1.0", 8},
    {(unsigned char *)(uintptr_t) "acme-tls/1", 10},
};

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

/* Whether the handshake negotiated acme-tls/1 (known once the ClientHello is read, before
 * the certificate is chosen). */
static bool session_acme(gnutls_session_t session)
{
	gnutls_datum_t p;

	return gnutls_alpn_get_selected_protocol(session, &p) == 0 && p.size == 10 &&
	       memcmp(p.data, "acme-tls/1", 10) == 0;
}

static struct conn *session_conn(gnutls_session_t session)
{
	struct MHD_Connection *c = gnutls_session_get_ptr(session);

	return c != NULL ? http_conn(c) : NULL;
}

/* GnuTLS certificate callback: picks the tenant's chain by SNI, or aborts the handshake
 * with an unrecognized_name alert (RFC 8461 §7.1: never another tenant's certificate). */
int http_tls_cert_callback(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nreqs,
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

/* A connection closed before its handshake completed: counted by reason (unless the
 * certificate callback or the hello hook did) and logged, at most HS_LOG_PER_SECOND lines a
 * second with what was left out said in the next one. */
void http_tls_failed(struct http *h, struct MHD_Connection *c, struct conn *cn)
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
	http_client_address(http_client_sockaddr(c), addr, sizeof(addr));
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

void http_tls_attach(struct http *h, struct conn *cn, struct MHD_Connection *c,
                     gnutls_session_t session)
{
	const struct config *cf = cn != NULL && cn->snap != NULL ? snapshot_config(cn->snap) : NULL;

	if (cf != NULL && cf->acme != NULL && !cf->acme_http01 && h->acme != NULL)
		gnutls_alpn_set_protocols(session, alpn_acme, 3, 0);
	gnutls_session_ticket_enable_server(session, &h->ticket_key);
	gnutls_handshake_set_post_client_hello_function(session, post_client_hello);
	gnutls_handshake_set_hook_function(session, GNUTLS_HANDSHAKE_ANY, GNUTLS_HOOK_BOTH,
	                                   handshake_hook);
	if (cn != NULL && cn->fd >= 0 && h->park != NULL)
		tlspark_attach(h->park, &cn->park, c, session, cn->fd);
}
