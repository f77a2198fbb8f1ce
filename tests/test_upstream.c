/* test_upstream: provider (proxy) mode end to end: the real mtastsd against a hostile HTTPS
 * upstream and dnsmasq, read back with curl (SPEC.md 1.5, 1.7 and cases 31-37) */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "harness.h"

#ifndef MTASTSD_BIN
#error "MTASTSD_BIN must be defined by the build"
#endif
#ifndef HOSTILE_PY
#error "HOSTILE_PY must be defined by the build"
#endif
#ifndef CERTS_SCRIPT
#error "CERTS_SCRIPT must be defined by the build"
#endif

#define POLICY_PATH "/.well-known/mta-sts.txt"
#define PROVIDER "provider.test"
#define CUSTOMER "customer.test"
#define MANY 500        /* customers of one provider in the fan-in test */
#define FETCH_TIMEOUT 2 /* upstream_timeout, seconds; the drip mode is slower */
#define WAIT_MS 10000   /* default deadline for something to show up */
/* Why a fetch fails when nothing listens on the provider's port (libcurl's message). */
#define DOWN "Couldn't connect to server"

/* What the provider publishes, deliberately not canonical: LF, field order, case, an
 * extension field. POLICY_A_CANON is what must be served, written by hand from SPEC.md's
 * canonical form. */
#define POLICY_A                                                                                   \
	"mode: enforce\nmax_age: 86400\nversion: STSv1\nmx: MX1.Provider.Test\n"                   \
	"mx: *.backup.provider.test\nfoo_bar.x-1: ignored\n"
#define POLICY_A_CANON                                                                             \
	"version: STSv1\r\nmode: enforce\r\nmx: mx1.provider.test\r\n"                             \
	"mx: *.backup.provider.test\r\nmax_age: 86400\r\n"
/* The body every hostile mode carries: valid, so accepting it by mistake shows. */
#define POLICY_B "version: STSv1\nmode: testing\nmx: evil.example\nmax_age: 86400\n"
#define POLICY_B_CANON "version: STSv1\r\nmode: testing\r\nmx: evil.example\r\nmax_age: 86400\r\n"
/* A short-lived policy for the expiry case. */
#define POLICY_SHORT "version: STSv1\nmode: testing\nmx: mx1.provider.test\nmax_age: 3\n"
#define POLICY_SHORT_CANON                                                                         \
	"version: STSv1\r\nmode: testing\r\nmx: mx1.provider.test\r\nmax_age: 3\r\n"

/* Suite-wide, made once in main() before the tests fork; main() removes suite_dir. */
static char *suite_dir;
static char *pki_provider;  /* CA trusted for the upstream, leaves for provider and other */
static char *pki_untrusted; /* another CA, a leaf for provider.test */
static char *pki_customer;  /* our side: CA for curl, leaf for customer.test */
static char *many_dir;      /* certs dir: leaves naming mta-sts.customer1..MANY.test */

/* Per test, made by the fixture in the test's own process. */
static char *work;
static char *conf;
static char *up_dir; /* the hostile upstream's control directory */
static unsigned up_port, dns_port, port;
static pid_t up_pid, dns_pid;
static struct server srv;

/* ---- small tools ---------------------------------------------------------------------- */

static void sleep_ms(long ms)
{
	usleep((useconds_t)ms * 1000);
}

/* Whether something listens on UDP 127.0.0.1:p (we cannot bind it). */
static bool udp_bound(unsigned p)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((uint16_t)p),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int u = socket(AF_INET, SOCK_DGRAM, 0);
	bool bound = bind(u, (struct sockaddr *)&a, sizeof(a)) < 0 && errno == EADDRINUSE;

	close(u);
	return bound;
}

/* The text of a helper's output file for failure messages ("" when there is none); caller
 * frees. */
static char *output_of(const char *path)
{
	char *text = h_read_file(path, NULL);

	return text != NULL ? text : h_strf("%s", "");
}

/* ---- the pieces of a test: dnsmasq, the upstream, mtastsd ------------------------------ */

/* (Re)starts dnsmasq answering the provider's _mta-sts TXT with id and its policy host's A
 * record with 127.0.0.1; nothing else (never the machine's own resolver). Every query is
 * logged to work/dnsmasq.log (see txt_polls). */
static void dns_start(const char *id)
{
	char *port_arg = h_strf("--port=%u", dns_port);
	char *txt = h_strf("--txt-record=_mta-sts." PROVIDER ",v=STSv1; id=%s", id);
	char *pid_arg = h_strf("--pid-file=%s/dnsmasq.pid", work);
	char *out = h_strf("%s/dnsmasq.log", work);
	const char *argv[] = {"dnsmasq",
	                      "--keep-in-foreground",
	                      "--conf-file=/dev/null",
	                      "--no-resolv",
	                      "--no-hosts",
	                      "--local=/test/",
	                      port_arg,
	                      "--listen-address=127.0.0.1",
	                      "--bind-interfaces",
	                      "--log-queries",
	                      "--log-facility=-",
	                      pid_arg,
	                      txt,
	                      "--address=/mta-sts." PROVIDER "/127.0.0.1",
	                      geteuid() == 0 ? "--user=root" : NULL,
	                      NULL};
	long long deadline = h_now_ms() + WAIT_MS;

	h_stop(&dns_pid, SIGTERM);
	dns_pid = h_spawn(argv, out);
	while (!udp_bound(dns_port)) {
		ck_assert_msg(h_now_ms() < deadline, "dnsmasq did not start: %s", output_of(out));
		ck_assert_msg(h_running(&dns_pid), "dnsmasq exited: %s", output_of(out));
		sleep_ms(20);
	}
	free(port_arg);
	free(txt);
	free(pid_arg);
	free(out);
}

/* How many times mtastsd asked dnsmasq for the provider's _mta-sts TXT record so far. */
static unsigned txt_polls(void)
{
	char *path = h_strf("%s/dnsmasq.log", work), *text = h_read_file(path, NULL);
	const char *needle = ": query[TXT] _mta-sts." PROVIDER " from ";
	unsigned n = 0;

	for (const char *p = text ? strstr(text, needle) : NULL; p != NULL;
	     p = strstr(p + 1, needle))
		n++;
	free(text);
	free(path);
	return n;
}

/* Waits for n more polls of the provider's TXT record (upstream_dns_poll = 1 s). mtastsd
 * runs its upstream rounds one at a time (poll the TXT ids, then fetch what is due), so
 * once a poll is seen the round before it has run to its end: after n polls, the rounds of
 * the first n - 1 of them have been fully processed. This, not a sleep, is what proves that
 * something did not happen in those rounds. */
static void wait_polls(unsigned n)
{
	unsigned want = txt_polls() + n;
	long long deadline = h_now_ms() + WAIT_MS + n * 2000LL;

	while (txt_polls() < want) {
		ck_assert_msg(h_now_ms() < deadline, "only %u of %u TXT polls", txt_polls(), want);
		sleep_ms(50);
	}
}

static void up_mode(const char *mode)
{
	char *p = h_strf("%s/mode", up_dir);

	h_write_file(p, mode);
	free(p);
}

static void up_policy(const char *body)
{
	char *p = h_strf("%s/policy", up_dir);

	h_write_file(p, body);
	free(p);
}

/* Starts the hostile upstream, on up_port if set (a restart keeps the port). */
static void up_start(void)
{
	char *cert = h_strf("%s/mta-sts." PROVIDER ".crt", pki_provider);
	char *key = h_strf("%s/mta-sts." PROVIDER ".key", pki_provider);
	char *wcert = h_strf("%s/mta-sts.other.test.crt", pki_provider);
	char *wkey = h_strf("%s/mta-sts.other.test.key", pki_provider);
	char *ucert = h_strf("%s/mta-sts." PROVIDER ".crt", pki_untrusted);
	char *ukey = h_strf("%s/mta-sts." PROVIDER ".key", pki_untrusted);
	char *port_arg = h_strf("%u", up_port);
	char *port_file = h_strf("%s/port", up_dir);
	char *out = h_strf("%s/upstream.log", work);
	const char *argv[] = {"python3",
	                      HOSTILE_PY,
	                      "--dir",
	                      up_dir,
	                      "--port",
	                      port_arg,
	                      "--cert",
	                      cert,
	                      "--key",
	                      key,
	                      "--wrong-cert",
	                      wcert,
	                      "--wrong-key",
	                      wkey,
	                      "--untrusted-cert",
	                      ucert,
	                      "--untrusted-key",
	                      ukey,
	                      NULL};
	long long deadline = h_now_ms() + WAIT_MS;
	char *text;

	unlink(port_file);
	up_pid = h_spawn(argv, out);
	while ((text = h_read_file(port_file, NULL)) == NULL) {
		ck_assert_msg(h_now_ms() < deadline, "upstream did not start: %s", output_of(out));
		ck_assert_msg(h_running(&up_pid), "upstream exited: %s", output_of(out));
		sleep_ms(20);
	}
	up_port = (unsigned)strtoul(text, NULL, 10);
	ck_assert_uint_gt(up_port, 0);
	free(text);
	free(cert);
	free(key);
	free(wcert);
	free(wkey);
	free(ucert);
	free(ukey);
	free(port_arg);
	free(port_file);
	free(out);
}

/* One of the upstream's counters ("connections", "handshakes", "requests", "path:/P"). */
static unsigned up_count(const char *key)
{
	char *p = h_strf("%s/counts", up_dir), *text = h_read_file(p, NULL), *save = NULL;
	unsigned n = 0;

	free(p);
	for (char *l = text ? strtok_r(text, "\n", &save) : NULL; l != NULL;
	     l = strtok_r(NULL, "\n", &save)) {
		char *sp = strrchr(l, ' ');

		if (sp != NULL && (size_t)(sp - l) == strlen(key) &&
		    strncmp(l, key, strlen(key)) == 0)
			n = (unsigned)strtoul(sp + 1, NULL, 10);
	}
	free(text);
	return n;
}

static unsigned policy_requests(void)
{
	return up_count("path:" POLICY_PATH);
}

struct opts {
	unsigned refresh, dns_poll, retry;
	unsigned customers; /* 0: customer.test alone, with its own cert and key */
	bool hook;          /* on_change = work/hook.sh */
};

static void write_config(const struct opts *o)
{
	struct h_lines l = {0};

	h_add_line(&l, "# written by test_upstream");
	h_add_line(&l, "[server]");
	h_add_line(&l, "listen = 127.0.0.1:%u", port);
	if (o->customers != 0)
		h_add_line(&l, "certs = %s", many_dir);
	h_add_line(&l, "access_log = false");
	h_add_line(&l, "state_dir = %s/state", work);
	h_add_line(&l, "upstream_ca = %s/ca.crt", pki_provider);
	h_add_line(&l, "upstream_refresh = %u", o->refresh);
	h_add_line(&l, "upstream_dns_poll = %u", o->dns_poll);
	h_add_line(&l, "upstream_timeout = %u", FETCH_TIMEOUT);
	h_add_line(&l, "upstream_connect_timeout = 1");
	h_add_line(&l, "upstream_retry = %u", o->retry);
	h_add_line(&l, "upstream_port = %u", up_port);
	h_add_line(&l, "dns_server = 127.0.0.1:%u", dns_port);
	if (o->hook)
		h_add_line(&l, "on_change = %s/hook.sh", work);
	if (o->customers == 0) {
		h_add_line(&l, "[domain " CUSTOMER "]");
		h_add_line(&l, "proxy = " PROVIDER);
		h_add_line(&l, "cert = %s/mta-sts." CUSTOMER ".crt", pki_customer);
		h_add_line(&l, "key = %s/mta-sts." CUSTOMER ".key", pki_customer);
	}
	for (unsigned i = 1; i <= o->customers; i++) {
		h_add_line(&l, "[domain customer%u.test]", i);
		h_add_line(&l, "proxy = " PROVIDER);
	}
	{
		char *state = h_strf("%s/state", work);

		mkdir(state, 0700);
		free(state);
	}
	h_write_file(conf, l.text);
	free(l.text);
	if (o->hook) {
		char *path = h_strf("%s/hook.sh", work);
		char *script = h_strf("#!/bin/sh\necho \"$1 $2\" >> %s/hook.out\n", work);

		h_write_file(path, script);
		ck_assert_int_eq(chmod(path, 0755), 0);
		free(path);
		free(script);
	}
}

static size_t log_size(void)
{
	return server_log_size(&srv);
}

/* The first log line at or after byte from that contains needle, or NULL (caller frees). */
static char *log_line(const char *needle, size_t from)
{
	return server_log_line(&srv, needle, from);
}

/* Waits for a log line containing needle (after byte from) and returns it; a failure with
 * the log when it does not come in time or the server died. */
static char *expect_log(const char *needle, size_t from, unsigned timeout_ms)
{
	server_expect_log(&srv, needle, from, timeout_ms);
	return log_line(needle, from);
}

/* Starts mtastsd on conf (its log truncated) and waits for "ready". */
static void srv_start(void)
{
	server_start_ready(&srv, MTASTSD_BIN, conf, work);
}

/* ---- reading what mtastsd serves, with curl -------------------------------------------- */

static void get(const char *domain, struct http *h)
{
	char *host = h_strf("mta-sts.%s", domain);
	char *ca = h_strf("%s/ca.crt", pki_customer);

	http_curl_tls(h, work, ca, host, port, POLICY_PATH, NULL);
	free(host);
	free(ca);
}

/* Asserts that domain is served exactly body (byte for byte) as text/plain. */
static void expect_served(const char *domain, const char *body)
{
	struct http h;
	char *ct;
	int n;

	get(domain, &h);
	ck_assert_msg(h.code == 200, "%s: status %d, expected 200 (curl %d: %s)", domain, h.code,
	              h.curl_rc, h.err);
	ck_assert_msg(h.body_len == strlen(body) && memcmp(h.body, body, h.body_len) == 0,
	              "%s: served\n%s\nexpected\n%s", domain, h.body, body);
	ct = h_header(h.headers, "Content-Type", &n);
	ck_assert_msg(ct != NULL && strcmp(ct, "text/plain; charset=utf-8") == 0 && n == 1,
	              "%s: headers\n%s", domain, h.headers);
	free(ct);
	http_finish(&h);
}

/* Asserts a 503 that carries no policy. */
static void expect_unavailable(const char *domain)
{
	struct http h;

	get(domain, &h);
	ck_assert_msg(h.code == 503, "%s: status %d, expected 503 (body %s)", domain, h.code,
	              h.body);
	ck_assert_msg(!h_contains(h.body, "STSv1"), "%s: a 503 with a policy: %s", domain, h.body);
	http_finish(&h);
}

/* Polls until domain answers with status (deadline in ms); returns the ms it took. */
static long long wait_status(const char *domain, int status, unsigned timeout_ms)
{
	long long start = h_now_ms();
	struct http h;

	for (;;) {
		int code;

		get(domain, &h);
		code = h.code;
		http_finish(&h);
		if (code == status)
			return h_now_ms() - start;
		if (h_now_ms() - start > timeout_ms) {
			char *text = h_read_file(srv.log, NULL);

			ck_abort_msg("%s: no status %d within %u ms (last %d); log:\n%s", domain,
			             status, timeout_ms, code, text);
		}
		sleep_ms(100);
	}
}

static char *url_of_provider(void)
{
	return h_strf("https://mta-sts." PROVIDER ":%u" POLICY_PATH, up_port);
}

/* Lines the on_change hook wrote ("DOMAIN ID"), or "" when it never ran. Caller frees. */
static char *hook_output(void)
{
	char *p = h_strf("%s/hook.out", work), *text = output_of(p);

	free(p);
	return text;
}

/* ---- fixture ---------------------------------------------------------------------------- */

static void setup(void)
{
	work = h_test_dir(suite_dir);
	conf = h_strf("%s/mtastsd.ini", work);
	up_dir = h_strf("%s/upstream", work);
	ck_assert_int_eq(mkdir(up_dir, 0700), 0);
	memset(&srv, 0, sizeof(srv));
	up_pid = dns_pid = 0;
	up_port = 0;
	port = h_free_port();
	do
		dns_port = h_free_port();
	while (dns_port == port);
	up_mode("ok");
	up_policy(POLICY_A);
	{
		char *alt = h_strf("%s/alt", up_dir);

		h_write_file(alt, POLICY_B);
		free(alt);
	}
	dns_start("aaaa1111");
	up_start();
	/* A proxy that does not exist: mtastsd must ignore the environment (curl is told to
	 * with --noproxy). Only this test's process and its children see it. */
	ck_assert_int_eq(setenv("https_proxy", "http://127.0.0.1:9", 1), 0);
	ck_assert_int_eq(setenv("HTTPS_PROXY", "http://127.0.0.1:9", 1), 0);
	ck_assert_int_eq(setenv("ALL_PROXY", "http://127.0.0.1:9", 1), 0);
}

/* The server must have survived the test, then exit 0 on SIGTERM without a sanitizer
 * report. */
static void teardown(void)
{
	server_end(&srv, false);
	h_stop(&up_pid, SIGTERM);
	h_stop(&dns_pid, SIGTERM);
	h_test_cleanup(&srv, &work, &conf);
	free(up_dir);
	up_dir = NULL;
}

/* ---- the cases ------------------------------------------------------------------------- */

/* SPEC case 31 and 37: a good answer is served re-rendered canonically under the
 * customer's own name and certificate, announced (log, hook), persisted, listed by
 * records; asking again within the refresh time does not touch the upstream. */
START_TEST(ok_served_canonically)
{
	struct opts o = {.refresh = 3600, .dns_poll = 1, .retry = 1, .hook = true};
	char *id = h_expected_id(POLICY_A_CANON), *needle, *line, *text, *path;
	const char *argv[] = {MTASTSD_BIN, "records", "-c", conf, NULL};
	struct run r;

	write_config(&o);
	srv_start();
	needle = h_strf("provider " PROVIDER ": policy changed, new id %s", id);
	free(expect_log(needle, 0, WAIT_MS));
	free(needle);
	expect_served(CUSTOMER, POLICY_A_CANON);

	needle = h_strf(CUSTOMER ": id changed to %s; publish: _mta-sts." CUSTOMER
	                         ". 3600 IN TXT \"v=STSv1; id=%s\"",
	                id, id);
	free(expect_log(needle, 0, WAIT_MS));
	free(needle);

	/* The hook runs once with DOMAIN and ID. */
	for (long long deadline = h_now_ms() + WAIT_MS; h_now_ms() < deadline; sleep_ms(50)) {
		text = hook_output();
		if (text[0] != 0)
			break;
		free(text);
	}
	needle = h_strf(CUSTOMER " %s\n", id);
	ck_assert_str_eq(text, needle);
	free(text);
	free(needle);

	/* Several requests and a few DNS polls with the same TXT id: still one fetch. */
	for (int i = 0; i < 5; i++)
		expect_served(CUSTOMER, POLICY_A_CANON);
	wait_polls(3);
	ck_assert_uint_eq(policy_requests(), 1);
	ck_assert_uint_eq(up_count("connections"), 1);

	/* The last good copy is on disk, as served. */
	path = h_strf("%s/state/" PROVIDER ".policy", work);
	text = h_read_file(path, NULL);
	ck_assert_ptr_nonnull(text);
	ck_assert_ptr_nonnull(strstr(text, "\n\n" POLICY_A_CANON));
	free(text);
	free(path);

	/* records: the CNAME to the provider and, commented, our own id. */
	h_run(&r, NULL, 0, argv);
	ck_assert_msg(r.status == 0, "records: exit %d: %s", r.status, r.err);
	ck_assert_msg(!h_sanitizer_report(r.err), "records:\n%s", r.err);
	ck_assert_msg(
	    h_contains(r.out, "_mta-sts." CUSTOMER ". 3600 IN CNAME _mta-sts." PROVIDER ".\n"),
	    "records:\n%s", r.out);
	needle = h_strf("; _mta-sts." CUSTOMER ". 3600 IN TXT \"v=STSv1; id=%s\"\n", id);
	ck_assert_msg(h_contains(r.out, needle), "records:\n%s", r.out);
	free(needle);
	run_finish(&r);

	/* Nothing failed on the way. */
	line = log_line("failed", 0);
	ck_assert_msg(line == NULL, "unexpected: %s", line);
	free(id);
}
END_TEST

/* Every way an upstream can misbehave (SPEC cases 32-35): how mtastsd names it in the log
 * ("fetch of URL failed: REASON"), and whether the request reaches the HTTP layer. */
static const struct hostile {
	const char *mode;
	const char *reason;
	bool tls; /* fails in the handshake: no request is ever sent */
} hostile[] = {
    {"redirect", "HTTP status 302 (only 200 is accepted; redirects are not followed)", false},
    {"404", "HTTP status 404 (only 200 is accepted)", false},
    {"500", "HTTP status 500 (only 200 is accepted)", false},
    {"drip", "Timeout was reached", false},
    {"big-cl", "body larger than 65536 bytes", false},
    {"big-chunked", "body larger than 65536 bytes", false},
    {"big-close", "body larger than 65536 bytes", false},
    {"html", "Content-Type \"text/html; charset=utf-8\" is not text/plain", false},
    {"no-ct", "Content-Type missing is not text/plain", false},
    {"latin1", "Content-Type \"text/plain; charset=latin1\" is not text/plain", false},
    {"bad-maxage", "invalid policy", false},
    {"blank-line", "invalid policy", false},
    {"wrong-name", "SSL peer certificate or SSH remote key was not OK", true},
    {"untrusted", "SSL peer certificate or SSH remote key was not OK", true},
    {"tls10", "SSL connect error", true},
};
#define N_HOSTILE (sizeof(hostile) / sizeof(hostile[0]))

/* The upstream really completes a TLS 1.0 handshake in mode tls10 (else that mode would
 * prove nothing); main() made sure that this Python can. */
static void assert_tls10_offered(void)
{
	char *port_arg = h_strf("%u", up_port);
	const char *argv[] = {"python3", HOSTILE_PY, "--probe-tls10", port_arg, NULL};
	struct run r;

	up_mode("tls10");
	h_run(&r, NULL, 0, argv);
	ck_assert_msg(r.status == 0, "the upstream does not offer TLS 1.0 in mode tls10: %s%s",
	              r.out, r.err);
	run_finish(&r);
	up_mode("ok");
	free(port_arg);
}

/* Switches the upstream to h->mode and waits for the failure to be logged. Returns the
 * log line. */
static char *provoke(const struct hostile *h, size_t from)
{
	char *url = url_of_provider();
	char *needle = h_strf("provider " PROVIDER ": fetch of %s failed: %s", url, h->reason);
	char *line;

	up_mode(h->mode);
	line = expect_log(needle, from, WAIT_MS + FETCH_TIMEOUT * 1000);
	free(needle);
	free(url);
	return line;
}

/* SPEC cases 32-35 with a good copy: none of it is served, the good copy is, byte for byte,
 * and the log says why. The boundary (exactly 64 KiB) is accepted. */
START_TEST(hostile_after_good_copy)
{
	struct opts o = {.refresh = 1, .dns_poll = 1, .retry = 1};
	char *id_b = h_expected_id(POLICY_B_CANON), *needle;

	assert_tls10_offered();

	write_config(&o);
	srv_start();
	free(expect_log("policy changed, new id", 0, WAIT_MS));
	expect_served(CUSTOMER, POLICY_A_CANON);

	for (size_t i = 0; i < N_HOSTILE; i++) {
		const struct hostile *h = &hostile[i];
		unsigned conns = up_count("connections"), reqs = policy_requests();
		char *line;

		line = provoke(h, log_size());
		ck_assert_msg(strstr(line, "; keeping the last good copy") != NULL, "%s: %s",
		              h->mode, line);
		expect_served(CUSTOMER, POLICY_A_CANON);
		ck_assert_uint_gt(up_count("connections"), conns);
		if (h->tls)
			ck_assert_msg(policy_requests() == reqs, "%s: a request went through",
			              h->mode);
		else
			ck_assert_uint_gt(policy_requests(), reqs);
		free(line);
	}
	/* The redirect target was never asked for. */
	ck_assert_uint_eq(up_count("path:/elsewhere"), 0);
	ck_assert_ptr_null(log_line(id_b, 0));

	/* Exactly 64 KiB is within the cap: accepted, and served canonically. */
	up_mode("exact-64k");
	needle = h_strf("provider " PROVIDER ": policy changed, new id %s", id_b);
	free(expect_log(needle, 0, WAIT_MS));
	expect_served(CUSTOMER, POLICY_B_CANON);
	free(needle);
	free(id_b);
}
END_TEST

/* SPEC cases 32-35 without any good copy: 503 every time, and the warning at start and in
 * check. */
START_TEST(hostile_without_good_copy)
{
	struct opts o = {.refresh = 1, .dns_poll = 1, .retry = 1};
	const char *argv[] = {MTASTSD_BIN, "check", "-c", conf, NULL};
	const char *warning = CUSTOMER ": no valid copy of the policy of " PROVIDER " yet";
	struct run r;

	assert_tls10_offered();
	up_mode(hostile[0].mode);
	write_config(&o);
	h_run(&r, NULL, 0, argv);
	ck_assert_msg(r.status == 0, "check: exit %d: %s", r.status, r.err);
	ck_assert_msg(h_contains(r.err, warning), "check said: %s", r.err);
	ck_assert_msg(!h_sanitizer_report(r.err), "check:\n%s", r.err);
	ck_assert_str_eq(r.out, "configuration OK\n");
	run_finish(&r);

	srv_start();
	free(expect_log(warning, 0, 1));
	for (size_t i = 0; i < N_HOSTILE; i++) {
		const struct hostile *h = &hostile[i];
		char *line;

		line = provoke(h, log_size());
		ck_assert_msg(strstr(line, "; no policy to serve (503)") != NULL, "%s: %s", h->mode,
		              line);
		expect_unavailable(CUSTOMER);
		free(line);
	}
	ck_assert_ptr_null(log_line("policy changed", 0));
}
END_TEST

/* SPEC case 36: the refetch is driven by the provider's _mta-sts id, and the new body is
 * announced with its new id (case 37), to the log and the hook. */
/* Writes the configuration of o, starts mtastsd and waits until it serves the provider's
 * policy A, whose id is id_a. */
static void start_serving(const struct opts *o, const char *id_a)
{
	char *needle = h_strf("policy changed, new id %s", id_a);

	write_config(o);
	srv_start();
	free(expect_log(needle, 0, WAIT_MS));
	free(needle);
	expect_served(CUSTOMER, POLICY_A_CANON);
}

START_TEST(txt_id_change_refetches)
{
	struct opts o = {.refresh = 3600, .dns_poll = 1, .retry = 1, .hook = true};
	char *id_a = h_expected_id(POLICY_A_CANON), *id_b = h_expected_id(POLICY_B_CANON);
	char *needle, *text;
	size_t from;

	start_serving(&o, id_a);
	ck_assert_uint_eq(policy_requests(), 1);

	/* A new body without a new id is not looked at (the refresh is an hour away). */
	up_policy(POLICY_B);
	wait_polls(3);
	ck_assert_uint_eq(policy_requests(), 1);
	expect_served(CUSTOMER, POLICY_A_CANON);

	from = log_size();
	dns_start("bbbb2222");
	free(expect_log("provider " PROVIDER ": _mta-sts id changed aaaa1111 -> bbbb2222", from,
	                WAIT_MS));
	needle = h_strf("provider " PROVIDER ": policy changed, new id %s", id_b);
	free(expect_log(needle, from, WAIT_MS));
	free(needle);
	needle = h_strf(CUSTOMER ": id changed to %s; publish: _mta-sts." CUSTOMER
	                         ". 3600 IN TXT \"v=STSv1; id=%s\"",
	                id_b, id_b);
	free(expect_log(needle, from, WAIT_MS));
	free(needle);
	ck_assert_uint_eq(policy_requests(), 2);
	expect_served(CUSTOMER, POLICY_B_CANON);

	for (long long deadline = h_now_ms() + WAIT_MS; h_now_ms() < deadline; sleep_ms(50)) {
		text = hook_output();
		if (strchr(text, '\n') != NULL && strchr(text, '\n')[1] != 0)
			break;
		free(text);
	}
	needle = h_strf(CUSTOMER " %s\n" CUSTOMER " %s\n", id_a, id_b);
	ck_assert_str_eq(text, needle);
	free(needle);
	free(text);
	free(id_a);
	free(id_b);
}
END_TEST

/* conf with the line starting with key replaced by line. */
static void replace_line(const char *key, const char *line)
{
	char *text = h_read_file(conf, NULL), *at = strstr(text, key), *eol, *out;

	ck_assert_msg(at != NULL && (at == text || at[-1] == '\n'), "no %s line in:\n%s", key,
	              text);
	eol = strchr(at, '\n');
	ck_assert_ptr_nonnull(eol);
	out = h_strf("%.*s%s%s", (int)(at - text), text, line, eol);
	h_write_file(conf, out);
	free(out);
	free(text);
}

/* A reload that fails on a configuration error changes nothing at all, the upstream
 * settings included: provider port, CA, DNS server and state_dir stay those of the
 * running configuration. (They are applied only when a configuration is put in service;
 * they used to be applied before the certificates were loaded, so a reload that then
 * failed on one still switched them. Certificates no longer fail a reload at all.) */
START_TEST(failed_reload_changes_nothing)
{
	struct opts o = {.refresh = 3600, .dns_poll = 1, .retry = 1};
	char *id_a = h_expected_id(POLICY_A_CANON), *id_b = h_expected_id(POLICY_B_CANON);
	char *line, *needle;
	size_t from;

	start_serving(&o, id_a);

	/* every upstream setting pointed elsewhere, and one error further down */
	line = h_strf("upstream_port = %u", h_free_port());
	replace_line("upstream_port = ", line);
	free(line);
	line = h_strf("dns_server = 127.0.0.1:%u", h_free_port());
	replace_line("dns_server = ", line);
	free(line);
	line = h_strf("upstream_ca = %s/ca.crt", pki_untrusted);
	replace_line("upstream_ca = ", line);
	free(line);
	line = h_strf("state_dir = %s", work);
	replace_line("state_dir = ", line);
	free(line);
	replace_line("proxy = ", "proxy = " PROVIDER "\nmode = enforcing");
	from = log_size();
	ck_assert_int_eq(kill(srv.pid, SIGHUP), 0);
	free(expect_log("mtastsd: reload failed, still serving the previous configuration", from,
	                WAIT_MS));
	line = log_line("\"mode\" cannot be used with proxy", from);
	ck_assert_msg(line != NULL, "the error is not named");
	free(line);

	/* The provider publishes a new policy under a new id: found through the running
	 * DNS server, fetched from the running port, verified with the running CA. */
	up_policy(POLICY_B);
	dns_start("bbbb2222");
	needle = h_strf("provider " PROVIDER ": policy changed, new id %s", id_b);
	free(expect_log(needle, from, WAIT_MS));
	free(needle);
	expect_served(CUSTOMER, POLICY_B_CANON);
	ck_assert_ptr_null(log_line("fetch of", from));
	free(id_a);
	free(id_b);
}
END_TEST

/* Failed fetches are retried no faster than upstream_retry (SPEC 1.7, rate limit), also
 * while the provider's new _mta-sts id keeps differing from the one last fetched. */
START_TEST(retry_interval_kept_after_id_change)
{
	struct opts o = {.refresh = 3600, .dns_poll = 1, .retry = 30};
	char *url = url_of_provider(), *needle;
	size_t from;

	write_config(&o);
	srv_start();
	free(expect_log("policy changed, new id", 0, WAIT_MS));
	ck_assert_uint_eq(policy_requests(), 1);

	up_mode("500");
	from = log_size();
	dns_start("bbbb2222");
	needle = h_strf("provider " PROVIDER ": fetch of %s failed: HTTP status 500", url);
	free(expect_log(needle, from, WAIT_MS));
	ck_assert_uint_eq(policy_requests(), 2);
	/* Five DNS polls see the same new id: no new attempt before 30 s. */
	wait_polls(6);
	ck_assert_msg(policy_requests() == 2,
	              "%u fetches in the 5 rounds after a failure with upstream_retry = 30",
	              policy_requests());
	expect_served(CUSTOMER, POLICY_A_CANON);
	free(needle);
	free(url);
}
END_TEST

/* One fetch per provider however many customers delegate to it (SPEC 1.7, rate limit). */
START_TEST(many_customers_one_fetch)
{
	struct opts o = {.refresh = 2, .dns_poll = 1, .retry = 1, .customers = MANY};
	char *id = h_expected_id(POLICY_A_CANON), *needle;
	long long first;
	unsigned n;

	write_config(&o);
	srv_start();
	needle = h_strf("provider " PROVIDER ": policy changed, new id %s", id);
	free(expect_log(needle, 0, WAIT_MS));
	first = h_now_ms();
	free(needle);
	ck_assert_uint_eq(policy_requests(), 1);
	needle = h_strf("customer%u.test: id changed to %s", MANY, id);
	free(expect_log(needle, 0, WAIT_MS));
	free(needle);

	expect_served("customer1.test", POLICY_A_CANON);
	expect_served("customer250.test", POLICY_A_CANON);
	expect_served("customer500.test", POLICY_A_CANON);

	/* A few refresh periods: one more fetch per period, not per customer. */
	while ((n = policy_requests()) < 3) {
		ck_assert_msg(h_now_ms() - first < 15000, "only %u fetches in 15 s", n);
		sleep_ms(100);
	}
	/* two more rounds processed, in which no fetch per customer may have happened */
	wait_polls(3);
	n = policy_requests();
	ck_assert_msg(n <= 2 + (unsigned)((h_now_ms() - first) / 1000 / o.refresh),
	              "%u fetches in %lld ms with upstream_refresh = %u", n, h_now_ms() - first,
	              o.refresh);
	/* One connection per fetch, read just after a fetch: the provider counts a connection
	 * when it is accepted and a fetch when its request is read, so a fetch starting
	 * between the two reads would count one and not yet the other. */
	first = h_now_ms();
	while (policy_requests() == n) {
		ck_assert_msg(h_now_ms() - first < 15000, "no fetch in 15 s");
		sleep_ms(20);
	}
	sleep_ms(300);
	n = policy_requests();
	ck_assert_uint_eq(up_count("connections"), n);
	free(id);
}
END_TEST

/* A restart with the provider down serves the persisted copy at once, and quietly (no new
 * announcement: the bytes did not change). */
START_TEST(restart_with_provider_down)
{
	struct opts o = {.refresh = 1, .dns_poll = 1, .retry = 1, .hook = true};
	char *url = url_of_provider(), *needle, *line, *text;
	size_t from;
	long long t;

	write_config(&o);
	srv_start();
	free(expect_log("policy changed, new id", 0, WAIT_MS));
	expect_served(CUSTOMER, POLICY_A_CANON);
	server_stop_clean(&srv);
	server_finish(&srv);
	h_stop(&up_pid, SIGKILL);

	t = h_now_ms();
	srv_start(); /* a new log: everything in it is from the restart on */
	from = 0;
	expect_served(CUSTOMER, POLICY_A_CANON);
	ck_assert_msg(h_now_ms() - t < 3000, "took %lld ms", h_now_ms() - t);
	line = log_line("no valid copy", from);
	ck_assert_msg(line == NULL, "%s", line);

	/* The provider is down (nothing listens on its port): the fetch fails and the copy
	 * stays. */
	needle = h_strf(
	    "provider " PROVIDER ": fetch of %s failed: " DOWN "; keeping the last good copy", url);
	line = expect_log(needle, from, WAIT_MS);
	expect_served(CUSTOMER, POLICY_A_CANON);
	ck_assert_ptr_null(log_line("policy changed", from));
	text = hook_output();
	ck_assert_uint_eq(strchr(text, '\n') ? strlen(strchr(text, '\n') + 1) : 99, 0);
	free(text);
	free(line);
	free(needle);
	free(url);
}
END_TEST

/* A damaged cache file is not served: 503 until a fetch works. */
START_TEST(damaged_cache_ignored)
{
	struct opts o = {.refresh = 1, .dns_poll = 1, .retry = 1};
	char *path = h_strf("%s/state/" PROVIDER ".policy", work);

	write_config(&o);
	h_write_file(path, "mtastsd-upstream-cache 1\nfetched 1\n\nversion: STSv1\nmode: bogus\n");
	up_mode("500");
	srv_start();
	free(expect_log("damaged cache file ignored", 0, 1));
	expect_unavailable(CUSTOMER);
	up_mode("ok");
	wait_status(CUSTOMER, 200, WAIT_MS);
	expect_served(CUSTOMER, POLICY_A_CANON);
	free(path);
}
END_TEST

/* The last good copy is served only until its own max_age since it was fetched; then
 * 503 (SPEC case 33). */
START_TEST(expiry_after_max_age)
{
	struct opts o = {.refresh = 3600, .dns_poll = 1, .retry = 1};
	char *id = h_expected_id(POLICY_SHORT_CANON), *url = url_of_provider(), *needle, *line;
	long long t;

	up_policy(POLICY_SHORT);
	write_config(&o);
	srv_start();
	needle = h_strf("policy changed, new id %s", id);
	free(expect_log(needle, 0, WAIT_MS));
	free(needle);
	expect_served(CUSTOMER, POLICY_SHORT_CANON);

	h_stop(&up_pid, SIGKILL);
	t = h_now_ms();
	expect_served(CUSTOMER, POLICY_SHORT_CANON);
	/* Refetched every max_age/2 = 1 s, so the copy is at most ~1 s old when the upstream
	 * dies: 503 between 1 and 5 s later, never a policy afterwards. */
	wait_status(CUSTOMER, 503, 8000);
	ck_assert_msg(h_now_ms() - t >= 1000, "expired after %lld ms only", h_now_ms() - t);
	ck_assert_msg(h_now_ms() - t <= 5500, "expired after %lld ms", h_now_ms() - t);
	expect_unavailable(CUSTOMER);
	/* The next failed refetch after that was processed, and the log no longer claims to
	 * keep the copy; still no policy afterwards. */
	needle = h_strf("provider " PROVIDER ": fetch of %s failed: " DOWN
	                "; the last good copy is past its max_age (503)",
	                url);
	line = expect_log(needle, log_size(), WAIT_MS);
	expect_unavailable(CUSTOMER);
	free(line);
	free(needle);
	free(url);
	free(id);
}
END_TEST

/* ---- suite ------------------------------------------------------------------------------ */

/* Leaves naming mta-sts.customer1..MANY.test, PER_LEAF names each (certtool takes at
 * most 128 per template), signed by our intermediate: the certs directory of the fan-in
 * test. make-certs.sh makes one name per leaf; MANY of those would test certtool's speed,
 * not the proxy. */
#define PER_LEAF 100

static int make_many_leaf(unsigned first)
{
	char *key = h_strf("%s/many%u.key", many_dir, first);
	char *tmpl = h_strf("%s/many.tmpl", suite_dir), *leaf = h_strf("%s/many.leaf", suite_dir);
	char *crt = h_strf("%s/many%u.crt", many_dir, first);
	char *ica = h_strf("%s/intermediate.crt", pki_customer);
	char *ikey = h_strf("%s/intermediate.key", pki_customer);
	const char *genkey[] = {"certtool",
	                        "--generate-privkey",
	                        "--key-type=ecdsa",
	                        "--curve=secp256r1",
	                        "--no-text",
	                        "--outfile",
	                        key,
	                        NULL};
	const char *gencrt[] = {"certtool",
	                        "--generate-certificate",
	                        "--load-privkey",
	                        key,
	                        "--load-ca-certificate",
	                        ica,
	                        "--load-ca-privkey",
	                        ikey,
	                        "--template",
	                        tmpl,
	                        "--no-text",
	                        "--outfile",
	                        leaf,
	                        NULL};
	char *chain = NULL, *inter = NULL, *both;
	FILE *f;
	int ret = -1;

	if (h_make_certs(genkey) != 0 || chmod(key, 0600) < 0 || (f = fopen(tmpl, "w")) == NULL)
		goto out;
	fprintf(f,
	        "cn = \"mta-sts.customer%u.test\"\nexpiration_days = 30\n"
	        "tls_www_server\nsigning_key\nencryption_key\n",
	        first);
	for (unsigned i = first; i < first + PER_LEAF && i <= MANY; i++)
		fprintf(f, "dns_name = \"mta-sts.customer%u.test\"\n", i);
	if (fclose(f) != 0 || h_make_certs(gencrt) != 0)
		goto out;
	chain = h_read_file(leaf, NULL);
	inter = h_read_file(ica, NULL);
	if (chain == NULL || inter == NULL)
		goto out;
	both = h_strf("%s%s", chain, inter);
	h_write_file(crt, both);
	free(both);
	ret = 0;
out:
	free(chain);
	free(inter);
	free(key);
	free(tmpl);
	free(leaf);
	free(crt);
	free(ica);
	free(ikey);
	return ret;
}

static int make_certs(void)
{
	const char *p[] = {"sh", CERTS_SCRIPT, "-o", pki_provider, PROVIDER, "other.test", NULL};
	const char *u[] = {"sh", CERTS_SCRIPT, "-o", pki_untrusted, PROVIDER, NULL};
	const char *c[] = {"sh", CERTS_SCRIPT, "-o", pki_customer, CUSTOMER, NULL};

	if (h_make_certs(p) != 0 || h_make_certs(u) != 0 || h_make_certs(c) != 0 ||
	    mkdir(many_dir, 0700) < 0)
		return -1;
	for (unsigned first = 1; first <= MANY; first += PER_LEAF)
		if (make_many_leaf(first) < 0)
			return -1;
	return 0;
}

/* Whether this Python's OpenSSL completes a TLS 1.0 handshake at all (mode tls10 needs
 * it). */
static bool tls10_available(void)
{
	char *cert = h_strf("%s/mta-sts." PROVIDER ".crt", pki_provider);
	char *key = h_strf("%s/mta-sts." PROVIDER ".key", pki_provider);
	const char *argv[] = {"python3", HOSTILE_PY, "--self-probe-tls10", "--cert", cert, "--key",
	                      key,       NULL};
	struct run r;
	bool ok = run_cmd(&r, NULL, 0, false, 30000, argv) == 0 && r.status == 0;

	if (!ok)
		fprintf(stderr, "%s%s", r.out ? r.out : "", r.err ? r.err : "");
	run_finish(&r);
	free(cert);
	free(key);
	return ok;
}

static TCase *tcase(Suite *s, const char *name)
{
	TCase *t = tcase_create(name);

	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 90);
	suite_add_tcase(s, t);
	return t;
}

/* Cases by concern, so that CK_RUN_CASE=hostile (for example) runs one group. */
static Suite *suite(void)
{
	Suite *s = suite_create("upstream");
	TCase *t = tcase(s, "serve");

	tcase_add_test(t, ok_served_canonically);
	tcase_add_test(t, many_customers_one_fetch);
	t = tcase(s, "hostile");
	tcase_add_test(t, hostile_after_good_copy);
	tcase_add_test(t, hostile_without_good_copy);
	t = tcase(s, "refresh");
	tcase_add_test(t, txt_id_change_refetches);
	tcase_add_test(t, failed_reload_changes_nothing);
	tcase_add_test(t, retry_interval_kept_after_id_change);
	t = tcase(s, "persistence");
	tcase_add_test(t, restart_with_provider_down);
	tcase_add_test(t, damaged_cache_ignored);
	tcase_add_test(t, expiry_after_max_age);
	return s;
}

int main(void)
{
	static const char *const tools[] = {"curl", "dnsmasq", "python3", "certtool", "sha256sum"};
	int rc;

	if (!h_have_tools(tools, sizeof(tools) / sizeof(tools[0])))
		return 77;
	if (!h_executable(MTASTSD_BIN))
		return 1;
	suite_dir = h_mkdtemp("upstream");
	pki_provider = h_strf("%s/pki-provider", suite_dir);
	pki_untrusted = h_strf("%s/pki-untrusted", suite_dir);
	pki_customer = h_strf("%s/pki-customer", suite_dir);
	many_dir = h_strf("%s/many", suite_dir);
	if (make_certs() < 0) {
		h_rm_rf(suite_dir);
		return 1;
	}
	if (!tls10_available()) {
		fprintf(stderr, "SKIP: this Python's OpenSSL cannot complete a TLS 1.0 handshake "
		                "(the hostile upstream's mode tls10 needs one)\n");
		h_rm_rf(suite_dir);
		return 77;
	}

	/* failure messages carry logs; Check's default limit is 4 KiB */
	check_set_max_msg_size(256 * 1024);
	rc = h_run_suite(suite());
	if (rc == 0 || getenv("KEEP_TEST_DIR") == NULL)
		h_rm_rf(suite_dir);
	else
		fprintf(stderr, "kept %s\n", suite_dir);
	free(suite_dir);
	free(pki_provider);
	free(pki_untrusted);
	free(pki_customer);
	free(many_dir);
	return rc;
}
