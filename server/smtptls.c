/* smtptls: an MX as a sending MTA sees it: EHLO, STARTTLS, the TLS handshake, the certificate */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "policy.h"
#include "smtptls.h"

/* RFC 5321 §4.5.3.1.5 allows 512 octets per reply line; servers exceed it, we allow
 * four times that, and no more than REPLY_LINES_MAX lines in one reply. */
#define LINE_MAX_LEN 2048
#define REPLY_LINES_MAX 100
#define EXPIRY_WARN_DAYS 14
/* Every version from TLS 1.0, so that an old server is reported as old, not as broken. */
#define PRIORITY_OLD "NORMAL:+VERS-TLS1.1:+VERS-TLS1.0"

struct conn {
	int fd;
	long long deadline_ms;
	char buf[LINE_MAX_LEN + 1];
	size_t len;
	gnutls_session_t tls; /* set once the handshake is done */
};

struct pool {
	struct smtptls_probe *p;
	size_t n;
	atomic_size_t next;
	const struct smtptls_opts *o;
	gnutls_certificate_credentials_t cred;
	const char *priority;
};

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on fd until the deadline. 0, or -1 on timeout or error. */
static int wait_fd(int fd, short events, long long deadline_ms)
{
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = events};
		long long left = deadline_ms - now_ms();
		int r;

		if (left <= 0)
			return -1;
		r = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

/* Connects to one numeric address (a bracketed IPv6 one too). fd or -1 with err. */
static int connect_one(const char *addr, unsigned port, long long deadline_ms, char *err,
                       size_t err_size)
{
	struct sockaddr_storage ss = {0};
	socklen_t len;
	char a[64];
	size_t alen = strlen(addr);
	int fd, soerr = 0;
	socklen_t sl = sizeof(soerr);

	if (addr[0] == '[' && alen > 2 && alen - 2 < sizeof(a)) {
		memcpy(a, addr + 1, alen - 2);
		a[alen - 2] = 0;
	} else if (alen < sizeof(a)) {
		memcpy(a, addr, alen + 1);
	} else {
		snprintf(err, err_size, "bad address");
		return -1;
	}
	if (inet_pton(AF_INET, a, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		((struct sockaddr_in *)&ss)->sin_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
		len = sizeof(struct sockaddr_in);
	} else if (inet_pton(AF_INET6, a, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
		len = sizeof(struct sockaddr_in6);
	} else {
		snprintf(err, err_size, "bad address %s", a);
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, err_size, "socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS) {
		snprintf(err, err_size, "%s", strerror(errno));
		close(fd);
		return -1;
	}
	if (wait_fd(fd, POLLOUT, deadline_ms) < 0) {
		snprintf(err, err_size, "connection timed out");
		close(fd);
		return -1;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr != 0) {
		snprintf(err, err_size, "%s", strerror(soerr ? soerr : errno));
		close(fd);
		return -1;
	}
	return fd;
}

static ssize_t conn_recv(struct conn *c, char *buf, size_t size)
{
	for (;;) {
		ssize_t r;

		if (c->tls != NULL) {
			r = gnutls_record_recv(c->tls, buf, size);
			if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
				if (wait_fd(c->fd, POLLIN, c->deadline_ms) < 0)
					return -1;
				continue;
			}
			return r < 0 ? -1 : r;
		}
		r = recv(c->fd, buf, size, 0);
		if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
			if (wait_fd(c->fd, POLLIN, c->deadline_ms) < 0)
				return -1;
			continue;
		}
		return r;
	}
}

static int conn_send(struct conn *c, const char *data)
{
	size_t len = strlen(data), off = 0;

	while (off < len) {
		ssize_t r = c->tls != NULL ? gnutls_record_send(c->tls, data + off, len - off)
		                           : send(c->fd, data + off, len - off, MSG_NOSIGNAL);

		if (c->tls != NULL && (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)) {
			if (wait_fd(c->fd, POLLOUT, c->deadline_ms) < 0)
				return -1;
			continue;
		}
		if (c->tls == NULL && r < 0 && (errno == EAGAIN || errno == EINTR)) {
			if (wait_fd(c->fd, POLLOUT, c->deadline_ms) < 0)
				return -1;
			continue;
		}
		if (r <= 0)
			return -1;
		off += (size_t)r;
	}
	return 0;
}

/* One line without its CRLF (a bare LF ends one too) into line. 0, or -1 with err. */
static int read_line(struct conn *c, char line[LINE_MAX_LEN + 1], char *err, size_t err_size)
{
	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		ssize_t r;

		if (nl != NULL) {
			size_t n = (size_t)(nl - c->buf);

			memcpy(line, c->buf, n);
			line[n] = 0;
			if (n > 0 && line[n - 1] == '\r')
				line[n - 1] = 0;
			c->len -= n + 1;
			memmove(c->buf, nl + 1, c->len);
			return 0;
		}
		if (c->len >= LINE_MAX_LEN) {
			snprintf(err, err_size, "a reply line longer than %d bytes", LINE_MAX_LEN);
			return -1;
		}
		r = conn_recv(c, c->buf + c->len, LINE_MAX_LEN - c->len);
		if (r <= 0) {
			snprintf(err, err_size,
			         r == 0 ? "the server closed the connection"
			                : "no answer in time (or a read error)");
			return -1;
		}
		c->len += (size_t)r;
	}
}

/* A whole (multi-line) reply: its code in ret_code; when starttls is not NULL, whether a
 * line's keyword is STARTTLS. The first line's text goes to first. 0 / -1 with err. */
static int read_reply(struct conn *c, int *ret_code, bool *starttls, char *first, size_t first_size,
                      char *err, size_t err_size)
{
	char line[LINE_MAX_LEN + 1];
	int code = -1;

	for (int i = 0; i < REPLY_LINES_MAX; i++) {
		int this;

		if (read_line(c, line, err, err_size) < 0)
			return -1;
		if (strlen(line) < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' ||
		    line[1] > '9' || line[2] < '0' || line[2] > '9' ||
		    (line[3] != 0 && line[3] != ' ' && line[3] != '-')) {
			snprintf(err, err_size, "not an SMTP reply: \"%.80s\"", line);
			return -1;
		}
		this = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
		if (i == 0) {
			code = this;
			snprintf(first, first_size, "%.120s", line);
		} else if (this != code) {
			snprintf(err, err_size, "reply codes %d and %d in one reply", code, this);
			return -1;
		}
		if (starttls != NULL && i > 0 && strlen(line) >= 12 &&
		    strncasecmp(line + 4, "STARTTLS", 8) == 0 && (line[12] == 0 || line[12] == ' '))
			*starttls = true;
		if (line[3] != '-') {
			*ret_code = code;
			return 0;
		}
	}
	snprintf(err, err_size, "a reply of more than %d lines", REPLY_LINES_MAX);
	return -1;
}

static int handshake(struct conn *c, gnutls_session_t s, char *err, size_t err_size)
{
	for (;;) {
		int r = gnutls_handshake(s);

		if (r == GNUTLS_E_SUCCESS)
			return 0;
		if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
			if (wait_fd(c->fd, gnutls_record_get_direction(s) ? POLLOUT : POLLIN,
			            c->deadline_ms) < 0) {
				snprintf(err, err_size, "TLS handshake timed out");
				return -1;
			}
			continue;
		}
		if (gnutls_error_is_fatal(r) == 0)
			continue;
		if (r == GNUTLS_E_FATAL_ALERT_RECEIVED)
			snprintf(err, err_size, "TLS handshake failed: the server sent alert %s",
			         gnutls_alert_get_name(gnutls_alert_get(s)));
		else
			snprintf(err, err_size, "TLS handshake failed: %s", gnutls_strerror(r));
		return -1;
	}
}

static void add(char *detail, const char *text)
{
	size_t len = strlen(detail);

	snprintf(detail + len, SMTPTLS_DETAIL_MAX - len, "%s%s", len ? "; " : "", text);
}

/* Judges the certificate of a finished handshake: chain, name, expiry. */
static void judge_cert(struct smtptls_probe *p, gnutls_session_t s)
{
	const gnutls_datum_t *certs;
	unsigned n_certs = 0, status = 0;
	gnutls_x509_crt_t crt = NULL;
	char msg[SMTPTLS_DETAIL_MAX];
	bool named = false, any_dns = false;
	time_t now = time(NULL), until;

	certs = gnutls_certificate_get_peers(s, &n_certs);
	if (certs == NULL || n_certs == 0 || gnutls_x509_crt_init(&crt) < 0 ||
	    gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) < 0) {
		p->status = SMTPTLS_FAIL;
		add(p->detail, "no readable certificate");
		gnutls_x509_crt_deinit(crt);
		return;
	}
	/* The chain and the dates; the name is checked below by the MTA-STS rules. */
	if (gnutls_certificate_verify_peers2(s, &status) < 0) {
		p->status = SMTPTLS_FAIL;
		add(p->detail, "the certificate chain cannot be verified");
	} else if (status & ~(unsigned)(GNUTLS_CERT_EXPIRED | GNUTLS_CERT_INVALID)) {
		gnutls_datum_t out = {0};

		p->status = SMTPTLS_FAIL;
		if (gnutls_certificate_verification_status_print(
		        status & ~(unsigned)GNUTLS_CERT_EXPIRED, GNUTLS_CRT_X509, &out, 0) == 0) {
			snprintf(msg, sizeof(msg), "certificate chain not trusted (%s)",
			         (const char *)out.data);
			gnutls_free(out.data);
		} else {
			snprintf(msg, sizeof(msg), "certificate chain not trusted");
		}
		add(p->detail, msg);
	}
	for (unsigned i = 0;; i++) {
		char san[256];
		size_t size = sizeof(san) - 1;
		int type = gnutls_x509_crt_get_subject_alt_name(crt, i, san, &size, NULL);

		if (type == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		if (type == GNUTLS_E_SHORT_MEMORY_BUFFER)
			continue;
		if (type != GNUTLS_SAN_DNSNAME)
			continue;
		san[size] = 0;
		any_dns = true;
		if (strlen(san) == size && policy_mx_match(san, p->host))
			named = true;
	}
	if (!named) {
		p->status = SMTPTLS_FAIL;
		snprintf(msg, sizeof(msg),
		         any_dns ? "the certificate does not name %s (no subjectAltName DNS name "
		                   "matches; a wildcard covers only the leftmost label)"
		                 : "the certificate has no subjectAltName DNS name, so it cannot "
		                   "name %s",
		         p->host);
		add(p->detail, msg);
	}
	until = gnutls_x509_crt_get_expiration_time(crt);
	p->days_left = until == (time_t)-1 ? 0 : (long)((until - now) / 86400);
	if (until != (time_t)-1 && until <= now) {
		struct tm tm;
		char when[32] = "?";

		if (gmtime_r(&until, &tm) != NULL)
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M UTC", &tm);
		p->status = SMTPTLS_FAIL;
		snprintf(msg, sizeof(msg), "the certificate expired on %s", when);
		add(p->detail, msg);
	} else if (gnutls_x509_crt_get_activation_time(crt) > now) {
		p->status = SMTPTLS_FAIL;
		add(p->detail, "the certificate is not valid yet");
	} else if (p->status != SMTPTLS_FAIL && p->days_left < EXPIRY_WARN_DAYS) {
		p->status = SMTPTLS_WARN;
		snprintf(msg, sizeof(msg), "the certificate expires in %ld days: renew it",
		         p->days_left);
		add(p->detail, msg);
	}
	gnutls_x509_crt_deinit(crt);
}

/* From the connection to QUIT; p->status and p->detail say how it went. */
static void probe_session(struct smtptls_probe *p, struct conn *c, const struct pool *pl)
{
	char err[200], first[128], cmd[300];
	int code;
	bool starttls = false;
	gnutls_session_t s = NULL;
	gnutls_protocol_t v;

	if (read_reply(c, &code, NULL, first, sizeof(first), err, sizeof(err)) < 0) {
		snprintf(p->detail, sizeof(p->detail), "greeting: %s", err);
		return;
	}
	if (code != 220) {
		snprintf(p->detail, sizeof(p->detail), "greeting is not 220: \"%s\"", first);
		return;
	}
	snprintf(cmd, sizeof(cmd), "EHLO %s\r\n", pl->o->helo);
	if (conn_send(c, cmd) < 0 ||
	    read_reply(c, &code, &starttls, first, sizeof(first), err, sizeof(err)) < 0) {
		snprintf(p->detail, sizeof(p->detail), "EHLO: %s", err);
		return;
	}
	if (code != 250) {
		snprintf(p->detail, sizeof(p->detail), "EHLO refused: \"%s\"", first);
		goto quit;
	}
	if (!starttls) {
		snprintf(p->detail, sizeof(p->detail),
		         "STARTTLS is not offered in the EHLO reply: senders cannot use TLS");
		goto quit;
	}
	if (conn_send(c, "STARTTLS\r\n") < 0 ||
	    read_reply(c, &code, NULL, first, sizeof(first), err, sizeof(err)) < 0) {
		snprintf(p->detail, sizeof(p->detail), "STARTTLS: %s", err);
		return;
	}
	if (code != 220) {
		snprintf(p->detail, sizeof(p->detail), "STARTTLS refused: \"%s\"", first);
		goto quit;
	}
	/* Bytes sent before the handshake would be read as if they came over TLS. */
	if (c->len != 0) {
		snprintf(p->detail, sizeof(p->detail),
		         "the server sent data after its STARTTLS reply, before TLS");
		return;
	}
	if (gnutls_init(&s, GNUTLS_CLIENT | GNUTLS_NONBLOCK) < 0 ||
	    gnutls_priority_set_direct(s, pl->priority, NULL) < 0 ||
	    gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, pl->cred) < 0 ||
	    gnutls_server_name_set(s, GNUTLS_NAME_DNS, p->host, strlen(p->host)) < 0) {
		snprintf(p->detail, sizeof(p->detail), "cannot set up a TLS session");
		goto out;
	}
	gnutls_transport_set_int(s, c->fd);
	if (handshake(c, s, err, sizeof(err)) < 0) {
		snprintf(p->detail, sizeof(p->detail), "%s", err);
		goto out;
	}
	c->tls = s;
	v = gnutls_protocol_get_version(s);
	snprintf(p->version, sizeof(p->version), "%s", gnutls_protocol_get_name(v));
	p->status = SMTPTLS_OK;
	p->detail[0] = 0;
	if (v == GNUTLS_SSL3 || v == GNUTLS_TLS1_0 || v == GNUTLS_TLS1_1) {
		p->status = SMTPTLS_FAIL;
		snprintf(err, sizeof(err),
		         "%s negotiated, below 1.2: enable TLS 1.2 or 1.3 on this MX (RFC 8996)",
		         p->version);
		add(p->detail, err);
	}
	judge_cert(p, s);
	if (p->status == SMTPTLS_OK) {
		snprintf(err, sizeof(err),
		         "%s, certificate trusted and valid for %s, %ld days left", p->version,
		         p->host, p->days_left);
		add(p->detail, err);
	}
quit:
	/* Politely, and without waiting long: the verdict is made. */
	c->deadline_ms = c->deadline_ms < now_ms() + 2000 ? c->deadline_ms : now_ms() + 2000;
	if (conn_send(c, "QUIT\r\n") == 0)
		(void)read_reply(c, &code, NULL, first, sizeof(first), err, sizeof(err));
	if (c->tls != NULL)
		(void)gnutls_bye(s, GNUTLS_SHUT_WR);
out:
	c->tls = NULL;
	if (s != NULL)
		gnutls_deinit(s);
}

static void probe(struct smtptls_probe *p, const struct pool *pl)
{
	char addrs[256], err[160] = "no address";
	char *save = NULL;

	p->status = SMTPTLS_FAIL;
	p->address[0] = p->version[0] = 0;
	p->days_left = 0;
	snprintf(addrs, sizeof(addrs), "%s", p->addrs != NULL ? p->addrs : "");
	for (char *a = strtok_r(addrs, ",", &save); a != NULL; a = strtok_r(NULL, ",", &save)) {
		struct conn *c;
		int fd = connect_one(a, pl->o->port, pl->o->deadline_ms, err, sizeof(err));

		if (fd < 0)
			continue;
		snprintf(p->address, sizeof(p->address), "%s", a);
		if ((c = calloc(1, sizeof(*c))) == NULL) {
			snprintf(p->detail, sizeof(p->detail), "out of memory");
			close(fd);
			return;
		}
		c->fd = fd;
		c->deadline_ms = pl->o->deadline_ms;
		probe_session(p, c, pl);
		close(fd);
		free(c);
		return;
	}
	snprintf(p->detail, sizeof(p->detail), "no connection to %s port %u: %s", p->host,
	         pl->o->port, err);
}

static void *worker(void *arg)
{
	struct pool *pl = arg;
	size_t i;

	while ((i = atomic_fetch_add(&pl->next, 1)) < pl->n)
		probe(&pl->p[i], pl);
	return NULL;
}

int smtptls_run(struct smtptls_probe *p, size_t n, const struct smtptls_opts *o)
{
	struct pool pl = {.p = p, .n = n, .o = o, .priority = PRIORITY_OLD};
	pthread_t tid[32];
	size_t n_threads = o->threads < 1 ? 1 : o->threads > 32 ? 32 : o->threads, started = 0;
	gnutls_priority_t test;
	int ret = -1;

	atomic_init(&pl.next, 0);
	if (n_threads > n)
		n_threads = n;
	if (gnutls_certificate_allocate_credentials(&pl.cred) < 0)
		goto fail;
	if (o->ca_file != NULL ? gnutls_certificate_set_x509_trust_file(pl.cred, o->ca_file,
	                                                                GNUTLS_X509_FMT_PEM) <= 0
	                       : gnutls_certificate_set_x509_system_trust(pl.cred) <= 0)
		goto fail;
	/* A system policy may forbid TLS 1.0 and 1.1: then a handshake with an old server
	 * fails, with the reason. */
	if (gnutls_priority_init(&test, PRIORITY_OLD, NULL) < 0)
		pl.priority = "NORMAL";
	else
		gnutls_priority_deinit(test);
	for (; started < n_threads; started++)
		if (pthread_create(&tid[started], NULL, worker, &pl) != 0)
			break;
	if (started == 0)
		worker(&pl);
	for (size_t i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	ret = 0;
fail:
	if (ret < 0)
		for (size_t i = 0; i < n; i++) {
			p[i].status = SMTPTLS_FAIL;
			p[i].address[0] = p[i].version[0] = 0;
			snprintf(p[i].detail, sizeof(p[i].detail), "cannot load the trust store %s",
			         o->ca_file != NULL ? o->ca_file : "of the system");
		}
	if (pl.cred != NULL)
		gnutls_certificate_free_credentials(pl.cred);
	return ret;
}
