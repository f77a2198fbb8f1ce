/* http: the HTTPS server on libmicrohttpd: connections (admission, the snapshot each
 * holds), routing, the prebuilt responses, corked writes, the access log. The TLS handshake
 * is http_tls.c's, strict request parsing http_strict.c's, posted reports http_report.c's. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host.h"
#include "http_conn.h"
#include "log.h"

#define POLICY_PATH "/.well-known/mta-sts.txt"
/* Per-connection memory pool: bounds the request header section (431 above ~8 KiB). */
#define CONNECTION_MEMORY 8192

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
_Static_assert(N_FIXED == HTTP_N_FIXED, "struct http holds HTTP_N_FIXED fixed answers");

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
				                http_client_sockaddr(c));
				cn->admitted = true;
			}
		}
		*socket_context = cn;
		if (info != NULL && info->tls_session != NULL)
			http_tls_attach(h, cn, c, info->tls_session);
	} else if (toe == MHD_CONNECTION_NOTIFY_CLOSED && cn != NULL) {
		if (!h->plain && !cn->handshake_done && !cn->acme)
			http_tls_failed(h, c, cn); /* (a plain connection has no handshake) */
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

/* *req_cls of a request that is not a report being posted */
static int request_seen;

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **req_cls)
{
	struct http *h = cls;
	const struct sockaddr *client;
	struct conn *cn = http_conn(c);
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
		if (!http_strict_malformed(c, cn, method, version)) {
			if (http_report_taken(h, c, cd, url) &&
			    strcmp(method, MHD_HTTP_METHOD_POST) == 0)
				return http_report_head(h, c, cd, req_cls);
			return MHD_YES;
		}
		status = HTTP_BAD_REQUEST;
		goto respond;
	}
	if (*req_cls != &request_seen)
		return http_report_body(h, c, cn, cd, *req_cls, upload_data, upload_data_size);
	if (*upload_data_size != 0) {
		*upload_data_size = 0; /* a body is read and dropped */
		return MHD_YES;
	}
	host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);

	if (t == NULL)
		status = HTTP_MISDIRECTED;
	else if (host != NULL && !host_matches(host, cd->host))
		status = HTTP_MISDIRECTED;
	else if (http_report_taken(h, c, cd, url))
		status = HTTP_METHOD_NOT_ALLOWED; /* POST went to http_report_head() */
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
	client = http_client_sockaddr(c);
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

		http_client_address(client, addr, sizeof(addr));
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
	struct conn *cn = http_conn(c);

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
	struct conn *cn = http_conn(c);

	if (*req_cls != NULL && *req_cls != (void *)&request_seen)
		http_report_free(*req_cls);
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
	/* Every failed handshake: http_tls_failed() says it better, once, rate-limited. */
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
	if (n_fds > HTTP_MAX_DAEMONS) {
		log_err("at most %d listen addresses", HTTP_MAX_DAEMONS);
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
		    MHD_OPTION_LISTEN_SOCKET, fds[i], MHD_OPTION_HTTPS_CERT_CALLBACK,
		    http_tls_cert_callback, MHD_OPTION_HTTPS_PRIORITIES, tls_priorities,
		    MHD_OPTION_NOTIFY_CONNECTION, notify_connection, h,
		    MHD_OPTION_CONNECTION_TIMEOUT, config->idle_timeout,
		    MHD_OPTION_CONNECTION_LIMIT,
		    config->max_connections + config->max_connections / 8 + 64,
		    MHD_OPTION_NOTIFY_COMPLETED, request_completed, h,
		    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
		    MHD_OPTION_SIGPIPE_HANDLED_BY_APP, 1, MHD_OPTION_THREAD_POOL_SIZE, threads,
		    MHD_OPTION_UNESCAPE_CALLBACK, http_strict_unescape, NULL,
		    MHD_OPTION_URI_LOG_CALLBACK, http_strict_uri_seen, NULL, MHD_OPTION_END);
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
	    MHD_OPTION_SIGPIPE_HANDLED_BY_APP, 1, MHD_OPTION_UNESCAPE_CALLBACK,
	    http_strict_unescape, NULL, MHD_OPTION_URI_LOG_CALLBACK, http_strict_uri_seen, NULL,
	    MHD_OPTION_NOTIFY_COMPLETED, request_completed, h, MHD_OPTION_END);
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
	MHD_socket fds[HTTP_MAX_DAEMONS];

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
