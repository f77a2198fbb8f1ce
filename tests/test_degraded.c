/* test_degraded: one domain's certificate fault stays its own. A certs directory of 1,000
 * domains, 10 of them broken in every way a certificate breaks, starts and serves the
 * other 990; renewals and repairs are picked up without a signal and without a failed
 * request; the 10 are named in the log, /status, /metrics and by check. Certificates
 * that run out (or begin) while the server runs change state at that moment. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "harness.h"

#define N_DOMAINS 1000
#define FETCH_TIMEOUT_S 5
#define WATCH_WAIT_MS 15000

static char *dir;   /* this test's files */
static char *certs; /* the certs directory */
static char *conf;
static unsigned port, admin_port;
static struct server srv;
static gnutls_x509_crt_t ca_crt;
static gnutls_x509_privkey_t ca_key;
static unsigned long serial = 1000;

/* ---- certificates, minted in process (certtool would take a minute for 1,000) ------- */

static void load_ca(const char *ca_dir)
{
	char *crt_path = h_strf("%s/intermediate.crt", ca_dir);
	char *key_path = h_strf("%s/intermediate.key", ca_dir);
	char *crt = h_read_file(crt_path, NULL), *key = h_read_file(key_path, NULL);
	gnutls_datum_t c = {(unsigned char *)crt, (unsigned)strlen(crt)};
	gnutls_datum_t k = {(unsigned char *)key, (unsigned)strlen(key)};

	ck_assert_int_eq(gnutls_x509_crt_init(&ca_crt), 0);
	ck_assert_int_eq(gnutls_x509_crt_import(ca_crt, &c, GNUTLS_X509_FMT_PEM), 0);
	ck_assert_int_eq(gnutls_x509_privkey_init(&ca_key), 0);
	ck_assert_int_eq(gnutls_x509_privkey_import(ca_key, &k, GNUTLS_X509_FMT_PEM), 0);
	free(crt);
	free(key);
	free(crt_path);
	free(key_path);
}

/* Writes path through a temporary file renamed into place, as certbot and lego do. */
static void install(const char *path, const void *data, size_t len, mode_t mode)
{
	char *tmp = h_strf("%s.new", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, mode);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	ck_assert_int_eq(close(fd), 0);
	ck_assert_int_eq(rename(tmp, path), 0);
	free(tmp);
}

static char *export_pem(gnutls_x509_crt_t crt)
{
	gnutls_datum_t out;
	char *s;

	ck_assert_int_eq(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &out), 0);
	s = h_strf("%.*s", (int)out.size, (const char *)out.data);
	gnutls_free(out.data);
	return s;
}

/* A leaf for host valid from not_before to not_after, chained to the intermediate; its
 * key is new unless key is given. Returns the PEM chain and, with ret_key, the key PEM. */
static char *mint(const char *host, time_t not_before, time_t not_after, gnutls_x509_privkey_t key,
                  char **ret_key)
{
	gnutls_x509_privkey_t k = key;
	gnutls_x509_crt_t crt;
	unsigned char sn[8];
	char *leaf, *chain, *ca;

	if (k == NULL) {
		ck_assert_int_eq(gnutls_x509_privkey_init(&k), 0);
		ck_assert_int_eq(
		    gnutls_x509_privkey_generate(
		        k, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0),
		    0);
	}
	serial++;
	for (int i = 0; i < 8; i++)
		sn[i] = (unsigned char)(serial >> (8 * (7 - i)));
	ck_assert_int_eq(gnutls_x509_crt_init(&crt), 0);
	ck_assert_int_eq(gnutls_x509_crt_set_version(crt, 3), 0);
	ck_assert_int_eq(gnutls_x509_crt_set_serial(crt, sn, sizeof(sn)), 0);
	ck_assert_int_eq(gnutls_x509_crt_set_activation_time(crt, not_before), 0);
	ck_assert_int_eq(gnutls_x509_crt_set_expiration_time(crt, not_after), 0);
	ck_assert_int_eq(gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, host,
	                                               (unsigned)strlen(host)),
	                 0);
	ck_assert_int_eq(gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, host,
	                                                      (unsigned)strlen(host),
	                                                      GNUTLS_FSAN_SET),
	                 0);
	ck_assert_int_eq(gnutls_x509_crt_set_basic_constraints(crt, 0, -1), 0);
	ck_assert_int_eq(gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0), 0);
	ck_assert_int_eq(gnutls_x509_crt_set_key(crt, k), 0);
	ck_assert_int_eq(gnutls_x509_crt_sign2(crt, ca_crt, ca_key, GNUTLS_DIG_SHA256, 0), 0);
	leaf = export_pem(crt);
	ca = export_pem(ca_crt);
	chain = h_strf("%s%s", leaf, ca);
	if (ret_key != NULL) {
		gnutls_datum_t out;

		ck_assert_int_eq(gnutls_x509_privkey_export2_pkcs8(k, GNUTLS_X509_FMT_PEM, NULL,
		                                                   GNUTLS_PKCS_PLAIN, &out),
		                 0);
		*ret_key = h_strf("%.*s", (int)out.size, (const char *)out.data);
		gnutls_free(out.data);
	}
	if (key == NULL)
		gnutls_x509_privkey_deinit(k);
	gnutls_x509_crt_deinit(crt);
	free(leaf);
	free(ca);
	return chain;
}

/* certs/mta-sts.<domain>.crt and .key for a fresh pair valid in [now + from, now + to). */
static void write_pair(const char *domain, long from, long to)
{
	char *host = h_strf("mta-sts.%s", domain);
	char *crt_path = h_strf("%s/%s.crt", certs, host),
	     *key_path = h_strf("%s/%s.key", certs, host);
	char *key, *chain = mint(host, time(NULL) + from, time(NULL) + to, NULL, &key);

	install(key_path, key, strlen(key), 0600);
	install(crt_path, chain, strlen(chain), 0644);
	free(chain);
	free(key);
	free(crt_path);
	free(key_path);
	free(host);
}

/* The DER of the first certificate of a PEM file, as hex. */
static char *file_leaf(const char *domain)
{
	char *path = h_strf("%s/mta-sts.%s.crt", certs, domain);
	char *pem = h_read_file(path, NULL);
	gnutls_datum_t in = {(unsigned char *)pem, (unsigned)strlen(pem)}, hex;
	gnutls_x509_crt_t crt;
	char *s;

	ck_assert_int_eq(gnutls_x509_crt_init(&crt), 0);
	ck_assert_int_eq(gnutls_x509_crt_import(crt, &in, GNUTLS_X509_FMT_PEM), 0);
	ck_assert_int_eq(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &in), 0);
	ck_assert_int_eq(gnutls_hex_encode2(&in, &hex), 0);
	s = h_strf("%s", (const char *)hex.data);
	gnutls_free(hex.data);
	gnutls_free(in.data);
	gnutls_x509_crt_deinit(crt);
	free(pem);
	free(path);
	return s;
}

/* ---- a sender's fetch ---------------------------------------------------------------- */

struct fetch {
	int handshake; /* 0, or the GnuTLS error */
	int alert;     /* fatal alert received, or -1 */
	char *leaf;    /* DER of the presented leaf, hex */
	char *response;
};

static void fetch_finish(struct fetch *f)
{
	free(f->leaf);
	free(f->response);
}

/* GET /.well-known/mta-sts.txt from mta-sts.<domain> with that SNI (blocking, bounded). */
static void fetch(const char *domain, struct fetch *f)
{
	char *host = h_strf("mta-sts.%s", domain);
	char *req = h_strf(
	    "GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", host);
	struct timeval tv = {FETCH_TIMEOUT_S, 0};
	struct sockaddr_in sa = {.sin_family = AF_INET};
	gnutls_certificate_credentials_t cred;
	gnutls_session_t session;
	char buf[4096];
	size_t len = 0;
	int fd, rc, one = 1;

	memset(f, 0, sizeof(*f));
	f->alert = -1;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(gnutls_certificate_allocate_credentials(&cred), 0);
	ck_assert_int_eq(gnutls_init(&session, GNUTLS_CLIENT), 0);
	gnutls_set_default_priority(session);
	gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, cred);
	gnutls_server_name_set(session, GNUTLS_NAME_DNS, host, strlen(host));
	gnutls_transport_set_int(session, fd);
	do
		rc = gnutls_handshake(session);
	while (rc < 0 && !gnutls_error_is_fatal(rc));
	f->handshake = rc;
	if (rc == GNUTLS_E_FATAL_ALERT_RECEIVED)
		f->alert = (int)gnutls_alert_get(session);
	if (rc == 0) {
		unsigned n = 0;
		const gnutls_datum_t *peer = gnutls_certificate_get_peers(session, &n);
		gnutls_datum_t hex;
		ssize_t r;

		ck_assert_msg(peer != NULL && n > 0, "%s: no certificate", domain);
		ck_assert_int_eq(gnutls_hex_encode2(&peer[0], &hex), 0);
		f->leaf = h_strf("%s", (const char *)hex.data);
		gnutls_free(hex.data);
		ck_assert_int_eq(gnutls_record_send(session, req, strlen(req)),
		                 (ssize_t)strlen(req));
		/* Until the whole response is in (Content-Length), not until the close: the test
		 * makes a thousand of these. */
		while (len < sizeof(buf) - 1 &&
		       ((r = gnutls_record_recv(session, buf + len, sizeof(buf) - 1 - len)) > 0 ||
		        r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)) {
			const char *end, *cl;

			if (r <= 0)
				continue;
			len += (size_t)r;
			buf[len] = 0;
			if ((end = strstr(buf, "\r\n\r\n")) != NULL &&
			    (cl = strcasestr(buf, "\r\nContent-Length: ")) != NULL && cl < end &&
			    len >= (size_t)(end + 4 - buf) + strtoul(cl + 18, NULL, 10))
				break;
		}
		buf[len] = 0;
		f->response = h_strf("%s", buf);
	}
	gnutls_deinit(session);
	gnutls_certificate_free_credentials(cred);
	close(fd);
	free(req);
	free(host);
}

/* The domain answers 200 with its policy over the certificate in its files. */
static void assert_served(const char *domain)
{
	char *want = file_leaf(domain), *mx = h_strf("mx: mail.%s\r\n", domain);
	struct fetch f;

	fetch(domain, &f);
	ck_assert_msg(f.handshake == 0, "%s: handshake failed: %s", domain,
	              gnutls_strerror(f.handshake));
	ck_assert_msg(strcmp(f.leaf, want) == 0, "%s: not the certificate of its files", domain);
	ck_assert_msg(strncmp(f.response, "HTTP/1.1 200 ", 13) == 0 && h_contains(f.response, mx),
	              "%s: %s", domain, f.response);
	fetch_finish(&f);
	free(mx);
	free(want);
}

/* The domain gets no handshake: an unrecognized_name alert, as for an unknown name. */
static void assert_refused(const char *domain)
{
	struct fetch f;

	fetch(domain, &f);
	ck_assert_msg(f.handshake != 0 && f.alert == GNUTLS_A_UNRECOGNIZED_NAME,
	              "%s: handshake %d alert %d, want unrecognized_name", domain, f.handshake,
	              f.alert);
	fetch_finish(&f);
}

/* ---- the server ------------------------------------------------------------------------ */

static void write_config(const char *const *domains, size_t n)
{
	FILE *f = fopen(conf, "w");

	ck_assert_ptr_nonnull(f);
	fprintf(f,
	        "[server]\nlisten = 127.0.0.1:%u\nadmin_listen = 127.0.0.1:%u\ncerts = %s\n"
	        "cert_watch = 1\naccess_log = no\n",
	        port, admin_port, certs);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "\n[domain %s]\nmode = testing\nmx = mail.%s\nmax_age = 86400\n",
		        domains[i], domains[i]);
	ck_assert_int_eq(fclose(f), 0);
}

static char *admin_get(const char *path)
{
	char *url = h_strf("http://127.0.0.1:%u%s", admin_port, path);
	const char *const argv[] = {"curl", "-sS", "--max-time", "10", url, NULL};
	struct run r;
	char *out;

	h_run(&r, NULL, 0, argv);
	ck_assert_msg(r.status == 0, "curl %s: %s", url, r.err);
	out = r.out;
	r.out = NULL;
	run_finish(&r);
	free(url);
	return out;
}

static void run_check(struct run *r, bool no_certs)
{
	const char *const argv[] = {
	    MTASTSD_BIN, "check", "-c", conf, no_certs ? "--no-certs" : NULL, NULL};

	h_run(r, NULL, 0, argv);
}

static void setup(void)
{
	char *ca_dir;

	dir = h_mkdtemp("degraded");
	ca_dir = h_strf("%s/ca", dir);
	certs = h_strf("%s/certs", dir);
	conf = h_strf("%s/mtastsd.ini", dir);
	{
		const char *const argv[] = {"sh", CERTS_SCRIPT, "-o", ca_dir, "ca.test", NULL};

		ck_assert_int_eq(h_make_certs(argv), 0);
	}
	ck_assert_int_eq(mkdir(certs, 0700), 0);
	load_ca(ca_dir);
	port = h_free_port();
	admin_port = h_free_port();
	free(ca_dir);
}

/* The server must have survived the test, stop cleanly on SIGTERM (exit 0) and leave no
 * sanitizer report. */
static void teardown(void)
{
	server_end(&srv, false);
	server_finish(&srv);
	gnutls_x509_crt_deinit(ca_crt);
	gnutls_x509_privkey_deinit(ca_key);
	h_rm_rf(dir);
	free(dir);
	free(certs);
	free(conf);
	memset(&srv, 0, sizeof(srv));
}

/* ---- 1,000 domains, 10 broken --------------------------------------------------------- */

/* The ten broken domains, how, and the reason the server must give. */
enum how { EXPIRED, NOT_YET_VALID, KEY_MISMATCH, NO_KEY, HALF_WRITTEN, OTHER_NAME, EMPTY_KEY };

static const struct {
	const char *domain;
	enum how how;
	const char *reason;
} broken[] = {
    {"d0017.test", EXPIRED, "expired"},
    {"d0101.test", EXPIRED, "expired"},
    {"d0202.test", NOT_YET_VALID, "not_yet_valid"},
    {"d0303.test", KEY_MISMATCH, "key_mismatch"},
    {"d0404.test", KEY_MISMATCH, "key_mismatch"},
    {"d0505.test", NO_KEY, "missing"},
    {"d0606.test", HALF_WRITTEN, "invalid"},
    {"d0707.test", HALF_WRITTEN, "invalid"},
    {"d0808.test", OTHER_NAME, "missing"},
    {"d0909.test", EMPTY_KEY, "invalid"},
};
#define N_BROKEN (sizeof(broken) / sizeof(broken[0]))

static void break_domain(size_t i)
{
	const char *domain = broken[i].domain;
	char *crt = h_strf("%s/mta-sts.%s.crt", certs, domain);
	char *key = h_strf("%s/mta-sts.%s.key", certs, domain);
	char *host = h_strf("mta-sts.%s", domain), *chain, *pem;

	switch (broken[i].how) {
	case EXPIRED:
		write_pair(domain, -30 * 86400, -86400);
		break;
	case NOT_YET_VALID:
		write_pair(domain, 10 * 86400, 40 * 86400);
		break;
	case KEY_MISMATCH: /* a new certificate, the old key (a renewal written half-way) */
		write_pair(domain, -3600, 30 * 86400);
		chain = mint(host, time(NULL) - 3600, time(NULL) + 30 * 86400, NULL, NULL);
		install(crt, chain, strlen(chain), 0644);
		free(chain);
		break;
	case NO_KEY:
		write_pair(domain, -3600, 30 * 86400);
		ck_assert_int_eq(unlink(key), 0);
		break;
	case HALF_WRITTEN: /* the certificate cut in the middle */
		write_pair(domain, -3600, 30 * 86400);
		pem = h_read_file(crt, NULL);
		install(crt, pem, strlen(pem) / 3, 0644);
		free(pem);
		break;
	case OTHER_NAME: /* a valid certificate for a name no domain has */
		chain = mint("mta-sts.elsewhere.test", time(NULL) - 3600, time(NULL) + 30 * 86400,
		             NULL, &pem);
		install(key, pem, strlen(pem), 0600);
		install(crt, chain, strlen(chain), 0644);
		free(chain);
		free(pem);
		break;
	case EMPTY_KEY:
		write_pair(domain, -3600, 30 * 86400);
		install(key, "", 0, 0600);
		break;
	}
	free(crt);
	free(key);
	free(host);
}

static bool is_broken(const char *domain)
{
	for (size_t i = 0; i < N_BROKEN; i++)
		if (strcmp(broken[i].domain, domain) == 0)
			return true;
	return false;
}

START_TEST(thousand_domains_ten_broken)
{
	char *domains[N_DOMAINS], *log, *text, *line, *want, *want_old, *crt, *key;
	struct run r;
	size_t from;
	int served = 0;

	for (size_t i = 0; i < N_DOMAINS; i++) {
		domains[i] = h_strf("d%04zu.test", i + 1);
		write_pair(domains[i], -3600, 60 * 86400);
	}
	for (size_t i = 0; i < N_BROKEN; i++)
		break_domain(i);
	write_config((const char *const *)domains, N_DOMAINS);

	/* check fails, naming each broken domain's problem at its [domain] line */
	run_check(&r, false);
	ck_assert_msg(r.status == 1, "check exit %d:\n%s", r.status, r.err);
	for (size_t i = 0; i < N_BROKEN; i++) {
		char *host = h_strf("mta-sts.%s", broken[i].domain);

		ck_assert_msg(h_contains(r.err, host), "check does not name %s:\n%s", host, r.err);
		free(host);
	}
	ck_assert_msg(!h_contains(r.out, "configuration OK"), "check said OK");
	run_finish(&r);
	run_check(&r, true);
	ck_assert_msg(r.status == 0 && h_contains(r.out, "configuration OK"),
	              "check --no-certs exit %d:\n%s%s", r.status, r.out, r.err);
	run_finish(&r);

	/* serve starts, names the ten once each with the reason */
	server_start_ready(&srv, MTASTSD_BIN, conf, dir);
	log = h_read_file(srv.log, NULL);
	for (size_t i = 0; i < N_BROKEN; i++) {
		want = h_strf("mtastsd: %s: certificate degraded (%s): ", broken[i].domain,
		              broken[i].reason);
		ck_assert_msg(h_contains(log, want), "no '%s' in the start log:\n%s", want, log);
		ck_assert_msg(!h_contains(strstr(log, want) + 1, want), "'%s' logged twice", want);
		free(want);
	}
	ck_assert_msg(!h_contains(log, "d0001.test: certificate"), "a good domain degraded:\n%s",
	              log);
	free(log);

	/* the 990 are served with their own certificates, the 10 get no handshake */
	for (size_t i = 0; i < N_DOMAINS; i++) {
		if (is_broken(domains[i])) {
			assert_refused(domains[i]);
		} else {
			assert_served(domains[i]);
			served++;
		}
	}
	ck_assert_int_eq(served, N_DOMAINS - (int)N_BROKEN);

	/* /metrics: the number by state, by reason, and each of them by name */
	text = admin_get("/metrics");
	ck_assert_msg(h_contains(text, "mtastsd_certificate_domains{state=\"degraded\"} 10\n") &&
	                  h_contains(text, "mtastsd_certificate_domains{state=\"ok\"} 990\n"),
	              "%s", text);
	ck_assert_msg(
	    h_contains(text, "mtastsd_certificate_degraded_domains{reason=\"expired\"} 2\n") &&
	        h_contains(text, "{reason=\"key_mismatch\"} 2\n") &&
	        h_contains(text, "{reason=\"missing\"} 2\n") &&
	        h_contains(text, "{reason=\"invalid\"} 3\n") &&
	        h_contains(text, "{reason=\"not_yet_valid\"} 1\n"),
	    "%s", text);
	for (size_t i = 0; i < N_BROKEN; i++) {
		want = h_strf(
		    "mtastsd_certificate_degraded{domain=\"%s\",reason=\"%s\",serving=\"none\"} ",
		    broken[i].domain, broken[i].reason);
		ck_assert_msg(h_contains(text, want), "no %s", want);
		free(want);
	}
	free(text);

	/* /status: the ten first, with the reason; then the others; still 200 on /healthz */
	text = admin_get("/status");
	line = text;
	for (size_t i = 0; i < N_BROKEN; i++) {
		char *sec = strstr(line, "<section class=\"domain");

		ck_assert_ptr_nonnull(sec);
		ck_assert_msg(strncmp(sec, "<section class=\"domain degraded\"><h2>", 37) == 0,
		              "section %zu is not a degraded one: %.200s", i, sec);
		line = sec + 1;
	}
	line = strstr(line, "<section class=\"domain");
	ck_assert_msg(line != NULL && strncmp(line, "<section class=\"domain\"><h2>", 28) == 0,
	              "more than ten degraded sections");
	for (size_t i = 0; i < N_BROKEN; i++) {
		want = h_strf("<h2>%s</h2>", broken[i].domain);
		ck_assert_msg(h_contains(text, want) && strstr(text, want) < line, "%s not first",
		              want);
		free(want);
		want = h_strf("degraded (%s) since ", broken[i].reason);
		ck_assert_msg(h_contains(text, want), "no '%s' on /status", want);
		free(want);
	}
	free(text);
	text = admin_get("/healthz");
	ck_assert_str_eq(text, "ok\n");
	free(text);

	/* a renewal of a good domain: no signal, no failed request meanwhile */
	from = server_log_size(&srv);
	want_old = file_leaf("d0001.test");
	write_pair("d0001.test", -60, 90 * 86400);
	want = file_leaf("d0001.test");
	ck_assert_str_ne(want, want_old);
	for (long long t0 = h_now_ms();;) {
		struct fetch f;

		fetch("d0001.test", &f);
		ck_assert_msg(f.handshake == 0 &&
		                  (strcmp(f.leaf, want) == 0 || strcmp(f.leaf, want_old) == 0) &&
		                  strncmp(f.response, "HTTP/1.1 200 ", 13) == 0,
		              "a request failed during the renewal");
		fetch_finish(&f);
		if (server_wait_log(&srv, "mtastsd: d0001.test: certificate renewed: ", from, 0) >=
		    0)
			break;
		ck_assert_msg(h_now_ms() - t0 < WATCH_WAIT_MS, "renewal not picked up");
	}
	assert_served("d0001.test");
	free(want);
	free(want_old);

	/* a broken one repaired: recovered, served, and one renewed half-way keeps its old
	 * certificate */
	from = server_log_size(&srv);
	write_pair("d0017.test", -60, 90 * 86400);
	ck_assert_msg(server_wait_log(&srv, "mtastsd: d0017.test: certificate recovered: ", from,
	                              WATCH_WAIT_MS) >= 0,
	              "repair not picked up");
	assert_served("d0017.test");
	want_old = file_leaf("d0002.test");
	crt = h_strf("%s/mta-sts.d0002.test.crt", certs);
	key = mint("mta-sts.d0002.test", time(NULL) - 60, time(NULL) + 90 * 86400, NULL, NULL);
	from = server_log_size(&srv);
	install(crt, key, strlen(key), 0644);
	ck_assert_msg(server_wait_log(&srv,
	                              "mtastsd: d0002.test: certificate degraded (key_mismatch)",
	                              from, WATCH_WAIT_MS) >= 0,
	              "half-way renewal not noticed");
	{
		struct fetch f;

		fetch("d0002.test", &f);
		ck_assert_msg(f.handshake == 0 && strcmp(f.leaf, want_old) == 0,
		              "d0002.test: not its previous certificate");
		fetch_finish(&f);
	}
	text = admin_get("/metrics");
	ck_assert_msg(h_contains(text, "mtastsd_certificate_degraded{domain=\"d0002.test\","
	                               "reason=\"key_mismatch\",serving=\"previous\"} "),
	              "%s", text);
	free(text);
	assert_served("d0003.test");
	free(crt);
	free(key);
	free(want_old);
	for (size_t i = 0; i < N_DOMAINS; i++)
		free(domains[i]);
}
END_TEST

/* ---- certificates that end and begin while the server runs -------------------------- */

START_TEST(expiry_while_running)
{
	const char *const domains[] = {"ends.test", "begins.test", "stays.test"};
	size_t from;

	write_pair("ends.test", -3600, 6);
	write_pair("begins.test", 5, 86400);
	write_pair("stays.test", -3600, 86400);
	write_config(domains, 3);
	server_start_ready(&srv, MTASTSD_BIN, conf, dir);
	from = 0;
	ck_assert_msg(
	    server_wait_log(&srv, "begins.test: certificate degraded (not_yet_valid)", 0, 0) >= 0,
	    "begins.test not degraded at start");
	assert_refused("begins.test");
	assert_served("ends.test");
	/* no file changes from here on: the clock alone */
	ck_assert_msg(server_wait_log(&srv, "mtastsd: begins.test: certificate recovered", from,
	                              WATCH_WAIT_MS) >= 0,
	              "begins.test not served once valid");
	assert_served("begins.test");
	ck_assert_msg(server_wait_log(&srv, "mtastsd: ends.test: certificate degraded (expired)",
	                              from, WATCH_WAIT_MS) >= 0,
	              "ends.test not degraded at its expiry");
	assert_refused("ends.test");
	assert_served("stays.test");
}
END_TEST

int main(void)
{
	const char *const tools[] = {"curl", "certtool"};
	Suite *s = suite_create("degraded");
	TCase *tc = tcase_create("certificates");

	if (!h_have_tools(tools, 2))
		return 77;
	if (!h_executable(MTASTSD_BIN))
		return 1;
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, thousand_domains_ten_broken);
	tcase_add_test(tc, expiry_while_running);
	suite_add_tcase(s, tc);
	return h_run_suite(s);
}
