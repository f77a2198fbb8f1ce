/* test_admin: operations with the real binary on loopback: the admin listener (/healthz,
 * /records, /metrics, /status), certificate renewal by cert_watch, the privilege drop */
#include <check.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "harness.h"

#ifndef MTASTSD_BIN
#error "MTASTSD_BIN must be defined by the build"
#endif
#ifndef CERTS_SCRIPT
#error "CERTS_SCRIPT must be defined by the build"
#endif

#define RELOAD_TIMEOUT_MS 10000
/* cert_watch = 1: the loop looks once a second, so a change is seen within about 2 s. */
#define WATCH_TIMEOUT_MS 5000
#define POLICY_PATH "/.well-known/mta-sts.txt"

/* The served bodies, written by hand from the canonical form (not read from the server). */
#define A_BODY                                                                                     \
	"version: STSv1\r\nmode: enforce\r\nmx: mail.a.test\r\nmx: *.backup.a.test\r\n"            \
	"max_age: 604800\r\n"
#define B_BODY "version: STSv1\r\nmode: testing\r\nmx: mx.b.test\r\nmax_age: 86400\r\n"
#define B_BODY_RELOADED "version: STSv1\r\nmode: testing\r\nmx: mx.b.test\r\nmax_age: 172800\r\n"

/* Suite-wide, made once in main() before the tests fork; main() removes suite_dir (Check's
 * fork mode _exit()s a failing test, so no per-test cleanup is guaranteed). */
static char *suite_dir;
static char *certs; /* CA, intermediate, leaves for a.test b.test p1.test p2.test */
static char *ca;

/* Per test. */
static char *work;
static char *conf;
static unsigned port, admin_port;
static unsigned b_mode_line; /* the line of b.test's mode in the config last written */
static struct server srv;
static pid_t loop_pid; /* the request loop of the renewal test */

/* ---- configuration -------------------------------------------------------------------- */

struct cfg {
	bool admin;          /* admin_listen = 127.0.0.1:admin_port */
	unsigned cert_watch; /* 0: key left out (default) */
	const char *user;
	const char *a_cert; /* default certs/mta-sts.a.test.crt */
	const char *a_key;
	const char *b_max_age; /* default 86400 */
	const char *b_mode;    /* default testing */
	bool providers;        /* p1.test, p2.test proxied to two unreachable providers */
	bool only_a;           /* leave b.test out */
};

static void write_config(const struct cfg *c)
{
	struct h_lines t = {0};

	h_add_line(&t, "# written by test_admin");
	h_add_line(&t, "[server]");
	h_add_line(&t, "listen = 127.0.0.1:%u", port);
	h_add_line(&t, "threads = 2");
	if (c->admin)
		h_add_line(&t, "admin_listen = 127.0.0.1:%u", admin_port);
	if (c->cert_watch != 0)
		h_add_line(&t, "cert_watch = %u", c->cert_watch);
	if (c->user != NULL)
		h_add_line(&t, "user = %s", c->user);
	if (c->providers) {
		/* nothing answers there: every provider fetch fails at once */
		h_add_line(&t, "dns_server = 127.0.0.1:%u", h_free_port());
		h_add_line(&t, "upstream_timeout = 1");
		h_add_line(&t, "upstream_connect_timeout = 1");
	}
	h_add_line(&t, "[domain a.test]");
	h_add_line(&t, "mode = enforce");
	h_add_line(&t, "mx = mail.a.test");
	h_add_line(&t, "mx = *.backup.a.test");
	h_add_line(&t, "max_age = 604800");
	if (c->a_cert != NULL) {
		h_add_line(&t, "cert = %s", c->a_cert);
		h_add_line(&t, "key = %s", c->a_key);
	} else {
		h_add_line(&t, "cert = %s/mta-sts.a.test.crt", certs);
		h_add_line(&t, "key = %s/mta-sts.a.test.key", certs);
	}
	if (!c->only_a) {
		h_add_line(&t, "[domain b.test]");
		b_mode_line = h_add_line(&t, "mode = %s", c->b_mode ? c->b_mode : "testing");
		h_add_line(&t, "mx = mx.b.test");
		h_add_line(&t, "max_age = %s", c->b_max_age ? c->b_max_age : "86400");
		h_add_line(&t, "cert = %s/mta-sts.b.test.crt", certs);
		h_add_line(&t, "key = %s/mta-sts.b.test.key", certs);
		h_add_line(&t, "tlsrpt = mailto:tlsrpt@b.test");
	}
	if (c->providers) {
		for (int i = 1; i <= 2; i++) {
			h_add_line(&t, "[domain p%d.test]", i);
			h_add_line(&t, "proxy = prov%d.test", i);
			h_add_line(&t, "cert = %s/mta-sts.p%d.test.crt", certs, i);
			h_add_line(&t, "key = %s/mta-sts.p%d.test.key", certs, i);
		}
	}
	h_write_file(conf, t.text);
	free(t.text);
}

/* ---- small tools ---------------------------------------------------------------------- */

/* The log from byte from on, access lines left out (caller frees). */
static char *log_since(size_t from)
{
	size_t len;
	char *text = h_read_file(srv.log, &len);
	char *tail;

	ck_assert_ptr_nonnull(text);
	tail = h_without_access(from <= len ? text + from : NULL);
	free(text);
	return tail;
}

static void wait_log(const char *needle, size_t from, unsigned timeout_ms)
{
	server_expect_log(&srv, needle, from, timeout_ms);
}

/* ---- curl ----------------------------------------------------------------------------- */

/* http://127.0.0.1:admin_port/path */
static void admin_get(struct http *h, const char *path, const char *const extra[])
{
	char *url = h_strf("http://127.0.0.1:%u%s", admin_port, path);

	http_curl(h, work, url, extra);
	ck_assert_msg(h->curl_rc == 0, "curl %s: exit %d: %s", url, h->curl_rc, h->err);
	free(url);
}

/* https://mta-sts.<domain>:port/path over TLS, verified against our CA. */
static void policy_get(struct http *h, const char *domain, const char *path,
                       const char *const extra[])
{
	char *host = h_strf("mta-sts.%s", domain);

	http_curl_tls(h, work, ca, host, port, path, extra);
	free(host);
}

/* A policy fetch that must give exactly body. */
static void fetch_policy(const char *domain, const char *body, const char *const extra[])
{
	struct http h;

	policy_get(&h, domain, POLICY_PATH, extra);
	ck_assert_msg(h.curl_rc == 0 && h.code == 200, "GET %s: curl %d, status %d: %s", domain,
	              h.curl_rc, h.code, h.err);
	ck_assert_msg(h.body_len == strlen(body) && memcmp(h.body, body, h.body_len) == 0,
	              "body of %s:\n%s", domain, h.body);
	http_finish(&h);
}

/* ---- Prometheus text format (0.0.4) ----------------------------------------------------- */

/* The value of series (name{labels} exactly as printed) in text; -1 when absent. */
static double metric(const char *text, const char *series)
{
	size_t n = strlen(series);

	for (const char *p = text; p != NULL && *p != '\0';) {
		const char *eol = strchr(p, '\n');

		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
		p = eol ? eol + 1 : NULL;
	}
	return -1;
}

static char *series_of(const char *name, const char *labels)
{
	return h_strf("%s{%s}", name, labels);
}

static double metric_l(const char *text, const char *name, const char *labels)
{
	char *s = series_of(name, labels);
	double v = metric(text, s);

	free(s);
	return v;
}

struct family {
	char *name;
	bool typed, helped, sampled, closed;
};

struct prom {
	struct family fam[64];
	size_t n_fam;
	struct family *current;
	char *series[512];
	size_t n_series;
};

static bool name_start(char c, bool colon)
{
	return isalpha((unsigned char)c) || c == '_' || (colon && c == ':');
}

static bool name_char(char c, bool colon)
{
	return name_start(c, colon) || isdigit((unsigned char)c);
}

/* Length of the metric (colon true) or label name at p, 0 when none. */
static size_t name_len(const char *p, bool colon)
{
	size_t n = 0;

	if (!name_start(p[0], colon))
		return 0;
	while (name_char(p[n], colon))
		n++;
	return n;
}

/* The family called name (len bytes), entered: one group per family, in order. */
static struct family *prom_enter(struct prom *pr, const char *name, size_t len, char **ret_err)
{
	struct family *f = NULL;

	for (size_t i = 0; i < pr->n_fam; i++)
		if (strlen(pr->fam[i].name) == len && strncmp(pr->fam[i].name, name, len) == 0)
			f = &pr->fam[i];
	if (f == NULL) {
		ck_assert_uint_lt(pr->n_fam, sizeof(pr->fam) / sizeof(pr->fam[0]));
		f = &pr->fam[pr->n_fam++];
		f->name = h_strf("%.*s", (int)len, name);
	}
	if (f != pr->current) {
		if (f->closed) {
			*ret_err = h_strf("%s: lines of the metric are not in one group", f->name);
			return NULL;
		}
		if (pr->current != NULL)
			pr->current->closed = true;
		pr->current = f;
	}
	return f;
}

static bool prom_value(const char *s, const char *end)
{
	char *e;

	if ((size_t)(end - s) == 3 && strncmp(s, "NaN", 3) == 0)
		return true;
	if ((size_t)(end - s) == 4 && (strncmp(s, "+Inf", 4) == 0 || strncmp(s, "-Inf", 4) == 0))
		return true;
	if (s == end || isspace((unsigned char)*s))
		return false;
	errno = 0;
	strtod(s, &e);
	return e == end && errno == 0;
}

/* One sample line (no newline). NULL when valid, else a message (caller frees). */
static char *prom_sample(struct prom *pr, const char *line)
{
	size_t n = name_len(line, true);
	const char *p = line + n, *key_end, *val, *sp;
	char *labels[16];
	size_t n_labels = 0;
	struct family *f;
	char *err = NULL, *key;

	if (n == 0)
		return h_strf("bad metric name: %s", line);
	if (*p == '{') {
		p++;
		while (*p != '}') {
			size_t ln = name_len(p, false);

			if (ln == 0 || p[ln] != '=' || p[ln + 1] != '"') {
				err = h_strf("bad label at '%s': %s", p, line);
				goto out;
			}
			for (size_t i = 0; i < n_labels; i++)
				if (strlen(labels[i]) == ln && strncmp(labels[i], p, ln) == 0) {
					err = h_strf("label repeated: %s", line);
					goto out;
				}
			ck_assert_uint_lt(n_labels, 16);
			labels[n_labels++] = h_strf("%.*s", (int)ln, p);
			for (p += ln + 2; *p != '"'; p++) {
				if (*p == '\0') {
					err = h_strf("unterminated label value: %s", line);
					goto out;
				}
				if (*p == '\\' && p[1] != '\\' && p[1] != '"' && p[1] != 'n') {
					err = h_strf("bad escape in label value: %s", line);
					goto out;
				}
				if (*p == '\\')
					p++;
			}
			p++;
			if (*p == ',')
				p++;
			else if (*p != '}') {
				err = h_strf("expected , or } after a label: %s", line);
				goto out;
			}
		}
		p++;
	}
	key_end = p;
	if (*p != ' ') {
		err = h_strf("no space before the value: %s", line);
		goto out;
	}
	val = p + 1;
	sp = strchr(val, ' ');
	if (!prom_value(val, sp ? sp : val + strlen(val))) {
		err = h_strf("bad value: %s", line);
		goto out;
	}
	if (sp != NULL) {
		const char *ts = sp + 1;

		if (*ts == '-')
			ts++;
		if (*ts == '\0' || strspn(ts, "0123456789") != strlen(ts)) {
			err = h_strf("bad timestamp: %s", line);
			goto out;
		}
	}
	f = prom_enter(pr, line, n, &err);
	if (f == NULL)
		goto out;
	if (!f->typed) {
		err = h_strf("%s: no # TYPE line before its samples", f->name);
		goto out;
	}
	f->sampled = true;
	key = h_strf("%.*s", (int)(key_end - line), line);
	for (size_t i = 0; i < pr->n_series; i++)
		if (strcmp(pr->series[i], key) == 0) {
			err = h_strf("series repeated: %s", key);
			free(key);
			goto out;
		}
	ck_assert_uint_lt(pr->n_series, sizeof(pr->series) / sizeof(pr->series[0]));
	pr->series[pr->n_series++] = key;
out:
	for (size_t i = 0; i < n_labels; i++)
		free(labels[i]);
	return err;
}

/* A # HELP or # TYPE line; other comments are free text. */
static char *prom_comment(struct prom *pr, const char *line)
{
	static const char *const types[] = {"counter", "gauge", "histogram", "summary", "untyped"};
	bool type = strncmp(line, "# TYPE ", 7) == 0;
	const char *p = line + 7;
	char *err = NULL;
	struct family *f;
	size_t n;

	if (!type && strncmp(line, "# HELP ", 7) != 0)
		return NULL;
	n = name_len(p, true);
	if (n == 0 || (p[n] != ' ' && (type || p[n] != '\0')))
		return h_strf("bad metric name: %s", line);
	f = prom_enter(pr, p, n, &err);
	if (f == NULL)
		return err;
	if (!type) {
		if (f->helped)
			return h_strf("%s: second # HELP", f->name);
		f->helped = true;
		return NULL;
	}
	if (f->typed)
		return h_strf("%s: second # TYPE", f->name);
	if (f->sampled)
		return h_strf("%s: # TYPE after its samples", f->name);
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(p + n + 1, types[i]) == 0) {
			f->typed = true;
			return NULL;
		}
	return h_strf("unknown type: %s", line);
}

/* Checks a whole exposition: every sample line parses, every metric has a # TYPE line
 * before its samples, each metric's lines form one group, no series twice. NULL when
 * valid, else the first error (caller frees). */
static char *prom_check(const char *text)
{
	struct prom pr = {0};
	char *copy = h_strf("%s", text), *save = NULL, *err = NULL;
	size_t len = strlen(text);

	if (len == 0 || text[len - 1] != '\n')
		err = h_strf("%s", "the text does not end with a newline");
	for (char *line = strtok_r(copy, "\n", &save); line != NULL && err == NULL;
	     line = strtok_r(NULL, "\n", &save))
		err = line[0] == '#' ? prom_comment(&pr, line) : prom_sample(&pr, line);
	for (size_t i = 0; i < pr.n_fam; i++)
		free(pr.fam[i].name);
	for (size_t i = 0; i < pr.n_series; i++)
		free(pr.series[i]);
	free(copy);
	return err;
}

static char *get_metrics(void)
{
	struct http h;
	char *v, *err, *text;

	admin_get(&h, "/metrics", NULL);
	ck_assert_int_eq(h.code, 200);
	v = h_header(h.headers, "Content-Type", NULL);
	ck_assert_msg(v != NULL && strncmp(v, "text/plain; version=0.0.4", 25) == 0,
	              "Content-Type of /metrics: %s", v ? v : "(none)");
	free(v);
	err = prom_check(h.body);
	ck_assert_msg(err == NULL, "/metrics is not valid Prometheus text: %s\n%s", err, h.body);
	text = h.body;
	h.body = NULL;
	http_finish(&h);
	return text;
}

/* ---- processes, sockets, certificates --------------------------------------------------- */

/* The TCP ports pid listens on, from its file descriptors and /proc/PID/net/tcp{,6}. */
static size_t listening_ports(pid_t pid, unsigned *ports, size_t max)
{
	unsigned long inodes[256];
	size_t n_inodes = 0, n = 0;
	char *dir = h_strf("/proc/%d/fd", (int)pid);
	DIR *d = opendir(dir);
	struct dirent *e;

	ck_assert_msg(d != NULL, "%s: %s", dir, strerror(errno));
	while ((e = readdir(d)) != NULL && n_inodes < 256) {
		char *path = h_strf("%s/%s", dir, e->d_name);
		char target[64];
		ssize_t len = readlink(path, target, sizeof(target) - 1);

		free(path);
		if (len <= 0)
			continue;
		target[len] = '\0';
		if (sscanf(target, "socket:[%lu]", &inodes[n_inodes]) == 1)
			n_inodes++;
	}
	closedir(d);
	free(dir);
	for (int v6 = 0; v6 < 2; v6++) {
		char *path = h_strf("/proc/%d/net/tcp%s", (int)pid, v6 ? "6" : "");
		char *text = h_read_file(path, NULL), *save = NULL;

		ck_assert_msg(text != NULL, "cannot read %s", path);
		for (char *line = strtok_r(text, "\n", &save); line != NULL;
		     line = strtok_r(NULL, "\n", &save)) {
			unsigned lport, state;
			unsigned long inode;

			if (sscanf(line, " %*s %*[0-9A-Fa-f]:%x %*s %x %*s %*s %*s %*s %*s %lu",
			           &lport, &state, &inode) != 3 ||
			    state != 0x0A)
				continue;
			for (size_t i = 0; i < n_inodes; i++)
				if (inodes[i] == inode && n < max)
					ports[n++] = lport;
		}
		free(text);
		free(path);
	}
	return n;
}

/* The first PEM certificate in text (caller frees), NULL if none. */
static char *first_pem(const char *text)
{
	const char *b = text ? strstr(text, "-----BEGIN CERTIFICATE-----") : NULL;
	const char *e = b ? strstr(b, "-----END CERTIFICATE-----") : NULL;

	if (e == NULL)
		return NULL;
	return h_strf("%.*s", (int)(e - b), b);
}

static char *file_leaf(const char *path)
{
	char *text = h_read_file(path, NULL);
	char *pem = first_pem(text);

	ck_assert_msg(pem != NULL, "no certificate in %s", path);
	free(text);
	return pem;
}

/* The leaf certificate served for mta-sts.<domain>, verified against our CA (gnutls-cli). */
static char *served_leaf(const char *domain)
{
	char *host = h_strf("mta-sts.%s", domain), *p = h_strf("%u", port), *pem;
	const char *const argv[] = {
	    "gnutls-cli", "--x509cafile",      ca,   "-p",           p,           "--sni-hostname",
	    host,         "--verify-hostname", host, "--print-cert", "127.0.0.1", NULL};
	struct run r;

	h_run(&r, NULL, 0, argv);
	ck_assert_msg(r.status == 0, "gnutls-cli %s: exit %d\n%s%s", host, r.status, r.out, r.err);
	pem = first_pem(r.out);
	ck_assert_msg(pem != NULL, "gnutls-cli printed no certificate:\n%s", r.out);
	run_finish(&r);
	free(host);
	free(p);
	return pem;
}

/* The leaf's notAfter as certtool prints it, in seconds since the epoch. */
static long long not_after(const char *crt)
{
	const char *const argv[] = {"certtool", "-i", "--infile", crt, NULL};
	struct run r;
	const char *p;
	struct tm tm = {0};
	char *end;
	long long t;

	h_run(&r, NULL, 0, argv);
	ck_assert_int_eq(r.status, 0);
	p = strstr(r.out, "Not After: ");
	ck_assert_msg(p != NULL, "no Not After in certtool output:\n%s", r.out);
	end = strptime(p + strlen("Not After: "), "%a %b %d %H:%M:%S UTC %Y", &tm);
	ck_assert_msg(end != NULL, "cannot parse %.40s", p);
	t = (long long)timegm(&tm);
	run_finish(&r);
	return t;
}

/* ---- fixtures ------------------------------------------------------------------------- */

static void stop_request_loop(void)
{
	if (loop_pid > 0) {
		kill(loop_pid, SIGKILL);
		waitpid(loop_pid, NULL, 0);
		loop_pid = 0;
	}
}

static void cleanup_work(void)
{
	stop_request_loop();
	h_test_cleanup(&srv, &work, &conf);
}

static void setup_dir(void)
{
	work = h_test_dir(suite_dir);
	conf = h_strf("%s/mtastsd.conf", work);
	port = h_free_port();
	do
		admin_port = h_free_port();
	while (admin_port == port);
	memset(&srv, 0, sizeof(srv));
	loop_pid = 0;
	/* for CK_FORK=no, where a failure does not end the process */
	atexit(cleanup_work);
}

static long start_server(void)
{
	return server_start_ready(&srv, MTASTSD_BIN, conf, work);
}

static void setup_admin(void)
{
	const struct cfg c = {.admin = true};

	setup_dir();
	write_config(&c);
	start_server();
}

/* The server must have survived the test, stop cleanly on SIGTERM (exit 0) and leave no
 * sanitizer report, including the leak report written at exit. */
static void teardown_server(void)
{
	stop_request_loop();
	server_end(&srv, false);
	cleanup_work();
}

/* ---- the validator itself: each broken exposition is caught ---------------------------- */

static const struct {
	const char *text;
	const char *error; /* part of the message, NULL when valid */
} expositions[] = {
    {"# HELP x_total X.\n# TYPE x_total counter\nx_total{a=\"1\",b=\"q\\\"\"} 3\n"
     "# TYPE y gauge\ny 1.5e3\ny{k=\"v\"} -Inf 1700000000\n",
     NULL},
    {"x_total 1\n", "no # TYPE"},
    {"# TYPE x gauge\nx 1\n# TYPE y gauge\ny 1\nx{a=\"b\"} 2\n", "one group"},
    {"# TYPE x gauge\n# TYPE x counter\nx 1\n", "second # TYPE"},
    {"# TYPE x gauge\nx 1\nx 2\n", "series repeated"},
    {"# TYPE x gauge\nx{a=\"1\"} one\n", "bad value"},
    {"# TYPE x gauge\nx{a=1} 1\n", "bad label"},
    {"# TYPE x gauge\nx{a=\"1\",a=\"2\"} 1\n", "label repeated"},
    {"# TYPE x gauge\nx{a=\"1\" 1\n", "expected , or } after a label"},
    {"# TYPE x gauge\nx 1", "newline"},
    {"# TYPE x meter\nx 1\n", "unknown type"},
    {"# TYPE 9x gauge\n", "bad metric name"},
};

START_TEST(metrics_validator)
{
	char *err = prom_check(expositions[_i].text);

	if (expositions[_i].error == NULL)
		ck_assert_msg(err == NULL, "valid text rejected: %s", err);
	else
		ck_assert_msg(err != NULL && h_contains(err, expositions[_i].error),
		              "case %d: want '%s', got %s", _i, expositions[_i].error,
		              err ? err : "accepted");
	free(err);
}
END_TEST

/* ---- /healthz, /records, errors --------------------------------------------------------- */

START_TEST(healthz_ok)
{
	const char *const head[] = {"-I", NULL};
	struct http h;
	char *v;

	admin_get(&h, "/healthz", NULL);
	ck_assert_int_eq(h.code, 200);
	ck_assert_str_eq(h.body, "ok\n");
	v = h_header(h.headers, "Content-Type", NULL);
	ck_assert_msg(v != NULL && strncmp(v, "text/plain", 10) == 0, "Content-Type %s", v);
	free(v);
	http_finish(&h);

	/* curl -I writes the header block to -o too: anything more would be a body */
	admin_get(&h, "/healthz", head);
	ck_assert_int_eq(h.code, 200);
	ck_assert_msg(strcmp(h.body, h.headers) == 0, "HEAD /healthz sent a body:\n%s", h.body);
	http_finish(&h);
}
END_TEST

/* Prints domain, mode, id, the id computed from the policy and whether the TXT record
 * carries that id, one domain a line. */
static const char json_probe[] =
    "import hashlib, json, sys\n"
    "d = json.load(sys.stdin)\n"
    "assert isinstance(d, list), 'not a list'\n"
    "for e in d:\n"
    "    txt = [r['value'] for r in e['records'] if r['name'] == '_mta-sts.' + e['domain'] + '.']\n"
    "    print(e['domain'], e['mode'], e['id'],\n"
    "          hashlib.sha256(e['policy'].encode()).hexdigest()[:32],\n"
    "          txt == ['v=STSv1; id=' + e['id']])\n";

START_TEST(records_match_command)
{
	const char *const zone_argv[] = {MTASTSD_BIN, "records", "-c", conf, NULL};
	const char *const json_argv[] = {MTASTSD_BIN, "records", "-c", conf,
	                                 "--format",  "json",    NULL};
	const char *const py[] = {"python3", "-c", json_probe, NULL};
	char *ida = h_expected_id(A_BODY), *idb = h_expected_id(B_BODY), *want, *v;
	struct http h;
	struct run r;

	h_run(&r, NULL, 0, zone_argv);
	ck_assert_int_eq(r.status, 0);
	admin_get(&h, "/records", NULL);
	ck_assert_int_eq(h.code, 200);
	ck_assert_msg(h.body_len == r.out_len && memcmp(h.body, r.out, r.out_len) == 0,
	              "/records:\n%s\nmtastsd records:\n%s", h.body, r.out);
	want = h_strf("_mta-sts.a.test. 3600 IN TXT \"v=STSv1; id=%s\"\n", ida);
	ck_assert_msg(h_contains(h.body, want), "no %s in\n%s", want, h.body);
	free(want);
	run_finish(&r);
	http_finish(&h);

	h_run(&r, NULL, 0, json_argv);
	ck_assert_int_eq(r.status, 0);
	admin_get(&h, "/records?format=json", NULL);
	ck_assert_int_eq(h.code, 200);
	v = h_header(h.headers, "Content-Type", NULL);
	ck_assert_msg(v != NULL && strncmp(v, "application/json", 16) == 0, "Content-Type %s", v);
	free(v);
	ck_assert_msg(h.body_len == r.out_len && memcmp(h.body, r.out, r.out_len) == 0,
	              "/records?format=json:\n%s\nmtastsd records --format json:\n%s", h.body,
	              r.out);
	run_finish(&r);

	ck_assert_int_eq(run_cmd(&r, h.body, h.body_len, false, H_RUN_TIMEOUT_MS, py), 0);
	ck_assert_msg(r.status == 0, "python3 json.load: %s", r.err);
	want = h_strf("a.test enforce %s %s True\nb.test testing %s %s True\n", ida, ida, idb, idb);
	ck_assert_str_eq(r.out, want);
	free(want);
	run_finish(&r);
	http_finish(&h);
	free(ida);
	free(idb);
}
END_TEST

static const struct {
	const char *path;
	const char *method; /* NULL: GET */
	const char *data;   /* a request body, or NULL */
	int code;
} admin_errors[] = {
    {"/nope", NULL, NULL, 404},
    {"/metrics/", NULL, NULL, 404},
    {"/.well-known/mta-sts.txt", NULL, NULL, 404},
    {"/status", "POST", "x=1", 405},
    {"/metrics", "POST", NULL, 405},
    {"/healthz", "PUT", "x", 405},
    {"/records", "DELETE", NULL, 405},
};

START_TEST(admin_errors_404_405)
{
	const char *extra[8];
	size_t n = 0;
	struct http h;
	char *allow;

	if (admin_errors[_i].method != NULL) {
		extra[n++] = "-X";
		extra[n++] = admin_errors[_i].method;
	}
	if (admin_errors[_i].data != NULL) {
		extra[n++] = "--data";
		extra[n++] = admin_errors[_i].data;
	}
	extra[n] = NULL;
	admin_get(&h, admin_errors[_i].path, extra);
	ck_assert_msg(h.code == admin_errors[_i].code, "%s %s: %d, want %d",
	              admin_errors[_i].method ? admin_errors[_i].method : "GET",
	              admin_errors[_i].path, h.code, admin_errors[_i].code);
	/* RFC 9110 15.5.6: a 405 names the allowed methods */
	allow = h_header(h.headers, "Allow", NULL);
	if (h.code == 405)
		ck_assert_msg(allow != NULL && h_contains(allow, "GET") &&
		                  h_contains(allow, "HEAD"),
		              "405 without Allow: GET, HEAD:\n%s", h.headers);
	free(allow);
	http_finish(&h);
	/* and the listener keeps answering */
	admin_get(&h, "/healthz", NULL);
	ck_assert_int_eq(h.code, 200);
	http_finish(&h);
}
END_TEST

/* ---- /metrics ------------------------------------------------------------------------- */

#define N_FETCHES 3
#define N_MISSES 2

START_TEST(metrics_count_requests)
{
	const char *const tls12[] = {"--tls-max", "1.2", NULL};
	const char *const missing[N_MISSES] = {"/", "/.well-known/mta-sts.txt.bak"};
	char *ida = h_expected_id(A_BODY), *idb = h_expected_id(B_BODY);
	char *labels, *text, *crt;
	struct http h;

	text = get_metrics();
	ck_assert_msg(
	    metric_l(text, "mtastsd_requests_total", "domain=\"a.test\",status=\"200\"") <= 0,
	    "a.test counted before any request:\n%s", text);
	free(text);

	for (int i = 0; i < N_FETCHES; i++)
		fetch_policy("a.test", A_BODY, i == 0 ? tls12 : NULL);
	for (int i = 0; i < N_MISSES; i++) {
		policy_get(&h, "a.test", missing[i], NULL);
		ck_assert_msg(h.curl_rc == 0 && h.code == 404, "%s: %d", missing[i], h.code);
		http_finish(&h);
	}

	text = get_metrics();
	ck_assert_double_eq(
	    metric_l(text, "mtastsd_requests_total", "domain=\"a.test\",status=\"200\""),
	    N_FETCHES);
	ck_assert_double_eq(
	    metric_l(text, "mtastsd_requests_total", "domain=\"a.test\",status=\"404\""), N_MISSES);
	ck_assert_msg(
	    metric_l(text, "mtastsd_requests_total", "domain=\"b.test\",status=\"200\"") <= 0,
	    "b.test counted a.test's requests:\n%s", text);
	labels = h_strf("domain=\"a.test\",id=\"%s\"", ida);
	ck_assert_msg(metric_l(text, "mtastsd_policy_fetches_total", labels) == N_FETCHES,
	              "no mtastsd_policy_fetches_total{%s} %d in\n%s", labels, N_FETCHES, text);
	free(labels);
	ck_assert_msg(metric_l(text, "mtastsd_handshakes_total", "result=\"full\"") >=
	                  N_FETCHES + N_MISSES,
	              "fewer full handshakes than connections:\n%s", text);
	ck_assert_double_eq(metric(text, "mtastsd_domains"), 2);

	labels = h_strf("domain=\"a.test\",id=\"%s\",mode=\"enforce\"", ida);
	ck_assert_msg(metric_l(text, "mtastsd_policy_info", labels) == 1, "no policy_info{%s} 1",
	              labels);
	free(labels);
	labels = h_strf("domain=\"b.test\",id=\"%s\",mode=\"testing\"", idb);
	ck_assert_msg(metric_l(text, "mtastsd_policy_info", labels) == 1, "no policy_info{%s} 1",
	              labels);
	free(labels);

	crt = h_strf("%s/mta-sts.a.test.crt", certs);
	ck_assert_double_eq(
	    metric_l(text, "mtastsd_certificate_expiry_timestamp_seconds", "domain=\"a.test\""),
	    (double)not_after(crt));
	free(crt);
	crt = h_strf("%s/mta-sts.b.test.crt", certs);
	ck_assert_double_eq(
	    metric_l(text, "mtastsd_certificate_expiry_timestamp_seconds", "domain=\"b.test\""),
	    (double)not_after(crt));
	free(crt);
	free(text);
	free(ida);
	free(idb);
}
END_TEST

/* One handshake with an SNI nobody is configured for: counted once, as unknown_sni. GnuTLS
 * asks the certificate callback again for every cipher suite it considers (3 times for a
 * TLS 1.3 hello, 6 for TLS 1.2 here), so counting calls instead of handshakes shows here. */
START_TEST(metrics_unknown_sni)
{
	const char *const tls12[] = {"--tls-max", "1.2", NULL};
	char *text = get_metrics();
	double fail0 = metric_l(text, "mtastsd_handshake_failures_total", "reason=\"unknown_sni\"");
	double hs0 = metric_l(text, "mtastsd_handshakes_total", "result=\"unknown_sni\"");
	double full0 = metric_l(text, "mtastsd_handshakes_total", "result=\"full\"");
	struct http h;

	free(text);
	ck_assert_double_eq(fail0, 0);
	for (int i = 1; i <= 2; i++) {
		double fail, hs;

		policy_get(&h, "unknown.test", POLICY_PATH, i == 2 ? tls12 : NULL);
		ck_assert_msg(h.curl_rc != 0 && h.code == 0, "unknown SNI answered: %d", h.code);
		http_finish(&h);
		text = get_metrics();
		fail = metric_l(text, "mtastsd_handshake_failures_total", "reason=\"unknown_sni\"");
		hs = metric_l(text, "mtastsd_handshakes_total", "result=\"unknown_sni\"");
		ck_assert_msg(fail == fail0 + i && hs == hs0 + i,
		              "after %d unknown-SNI handshake(s) (TLS 1.%d last): failures %g, "
		              "handshakes %g (want %d)\n%s",
		              i, i == 2 ? 2 : 3, fail - fail0, hs - hs0, i, text);
		ck_assert_double_eq(metric_l(text, "mtastsd_handshakes_total", "result=\"full\""),
		                    full0);
		free(text);
	}
}
END_TEST

START_TEST(metrics_reloads)
{
	const struct cfg changed = {.admin = true, .b_max_age = "172800"};
	const struct cfg broken = {.admin = true, .b_max_age = "172800", .b_mode = "strict"};
	char *idb = h_expected_id(B_BODY_RELOADED), *text, *labels, *tail, *want;
	struct http h;
	size_t from;

	text = get_metrics();
	ck_assert_double_eq(metric_l(text, "mtastsd_reloads_total", "result=\"ok\""), 0);
	ck_assert_double_eq(metric_l(text, "mtastsd_reloads_total", "result=\"error\""), 0);
	free(text);

	write_config(&changed);
	from = server_log_size(&srv);
	ck_assert_int_eq(kill(srv.pid, SIGHUP), 0);
	wait_log("mtastsd: reloaded", from, RELOAD_TIMEOUT_MS);
	text = get_metrics();
	ck_assert_double_eq(metric_l(text, "mtastsd_reloads_total", "result=\"ok\""), 1);
	ck_assert_double_eq(metric_l(text, "mtastsd_reloads_total", "result=\"error\""), 0);
	labels = h_strf("domain=\"b.test\",id=\"%s\",mode=\"testing\"", idb);
	ck_assert_msg(metric_l(text, "mtastsd_policy_info", labels) == 1,
	              "no policy_info{%s} 1 after the reload:\n%s", labels, text);
	free(text);
	fetch_policy("b.test", B_BODY_RELOADED, NULL);

	write_config(&broken);
	from = server_log_size(&srv);
	ck_assert_int_eq(kill(srv.pid, SIGHUP), 0);
	wait_log("mtastsd: reload failed", from, RELOAD_TIMEOUT_MS);
	tail = log_since(from);
	want = h_strf("%s:%u: invalid mode \"strict\"", conf, b_mode_line);
	ck_assert_msg(h_contains(tail, want), "no '%s' after the failed reload:\n%s", want, tail);
	free(want);
	free(tail);
	text = get_metrics();
	ck_assert_double_eq(metric_l(text, "mtastsd_reloads_total", "result=\"ok\""), 1);
	ck_assert_double_eq(metric_l(text, "mtastsd_reloads_total", "result=\"error\""), 1);
	ck_assert_msg(metric_l(text, "mtastsd_policy_info", labels) == 1,
	              "the failed reload changed policy_info:\n%s", text);
	free(text);
	admin_get(&h, "/healthz", NULL);
	ck_assert_int_eq(h.code, 200);
	http_finish(&h);
	fetch_policy("b.test", B_BODY_RELOADED, NULL);
	free(labels);
	free(idb);
}
END_TEST

/* ---- /status -------------------------------------------------------------------------- */

/* The <section> of domain in a status page (caller frees), NULL when absent. */
static char *status_section(const char *html, const char *domain)
{
	char *h2 = h_strf("<h2>%s</h2>", domain);
	const char *at = strstr(html, h2), *start, *end;

	free(h2);
	if (at == NULL)
		return NULL;
	for (start = at; start > html && strncmp(start, "<section", 8) != 0; start--)
		;
	end = strstr(at, "</section>");
	ck_assert_msg(end != NULL && strncmp(start, "<section", 8) == 0,
	              "%s is not inside a <section>", domain);
	return h_strf("%.*s", (int)(end - start), start);
}

static char *get_status(const char *query)
{
	char *path = h_strf("/status%s", query);
	struct http h;
	char *v, *html;

	admin_get(&h, path, NULL);
	ck_assert_msg(h.code == 200, "GET %s: %d", path, h.code);
	v = h_header(h.headers, "Content-Type", NULL);
	ck_assert_msg(v != NULL && strncmp(v, "text/html", 9) == 0, "Content-Type %s", v);
	free(v);
	ck_assert_msg(strncmp(h.body, "<!DOCTYPE html>", 15) == 0 && h_contains(h.body, "</html>"),
	              "not a whole HTML page:\n%s", h.body);
	html = h.body;
	h.body = NULL;
	http_finish(&h);
	free(path);
	return html;
}

START_TEST(status_page)
{
	const char *const tls12[] = {"--tls-max", "1.2", NULL};
	char *ida = h_expected_id(A_BODY), *idb = h_expected_id(B_BODY);
	char *html, *a, *b, *want;

	html = get_status("");
	a = status_section(html, "a.test");
	b = status_section(html, "b.test");
	ck_assert_msg(a != NULL && b != NULL, "a domain is missing:\n%s", html);
	want = h_strf("<dt>mode</dt><dd>enforce</dd><dt>id</dt><dd><code>%s</code>", ida);
	ck_assert_msg(h_contains(a, want), "a.test: no mode/id %s in\n%s", ida, a);
	free(want);
	want = h_strf("<dt>mode</dt><dd>testing</dd><dt>id</dt><dd><code>%s</code>", idb);
	ck_assert_msg(h_contains(b, want), "b.test: no mode/id %s in\n%s", idb, b);
	free(want);
	ck_assert_msg(!h_contains(a, "127.0.0.1"), "a fetcher before any fetch:\n%s", a);
	free(html);
	free(a);
	free(b);

	/* one fetch over TLS 1.3 (the default), one over TLS 1.2 */
	fetch_policy("a.test", A_BODY, NULL);
	fetch_policy("a.test", A_BODY, tls12);
	html = get_status("");
	a = status_section(html, "a.test");
	b = status_section(html, "b.test");
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	want = h_strf("127.0.0.1 TLS 1.3 <code>%s</code>", ida);
	ck_assert_msg(h_contains(a, want), "no fetcher '%s' in\n%s", want, a);
	free(want);
	want = h_strf("127.0.0.1 TLS 1.2 <code>%s</code>", ida);
	ck_assert_msg(h_contains(a, want), "no fetcher '%s' in\n%s", want, a);
	free(want);
	want = h_strf("<code>%s</code>: 2", ida);
	ck_assert_msg(h_contains(a, want), "no fetch count 2 for the id in\n%s", a);
	free(want);
	ck_assert_msg(!h_contains(b, "127.0.0.1"), "b.test shows a.test's fetchers:\n%s", b);
	free(html);
	free(a);
	free(b);

	/* ?domain= shows that domain only, whatever its case */
	for (int i = 0; i < 2; i++) {
		html = get_status(i == 0 ? "?domain=a.test" : "?domain=A.Test");
		a = status_section(html, "a.test");
		ck_assert_msg(a != NULL && h_contains(a, ida), "?domain: no a.test in\n%s", html);
		ck_assert_msg(status_section(html, "b.test") == NULL && !h_contains(html, idb),
		              "?domain=a.test shows b.test:\n%s", html);
		free(a);
		free(html);
	}
	free(ida);
	free(idb);
}
END_TEST

/* ---- which ports the server listens on --------------------------------------------------- */

START_TEST(admin_listener_bound)
{
	unsigned ports[8];
	size_t n = listening_ports(srv.pid, ports, 8);

	ck_assert_msg(n == 2, "mtastsd listens on %zu ports, want 2", n);
	ck_assert_msg((ports[0] == port && ports[1] == admin_port) ||
	                  (ports[1] == port && ports[0] == admin_port),
	              "listening on %u and %u, want %u and %u", ports[0], ports[1], port,
	              admin_port);
}
END_TEST

START_TEST(admin_listener_off_by_default)
{
	const struct cfg c = {0};
	unsigned ports[8];
	size_t n;
	struct http h;

	setup_dir();
	write_config(&c);
	start_server();
	fetch_policy("a.test", A_BODY, NULL);
	n = listening_ports(srv.pid, ports, 8);
	ck_assert_msg(n == 1 && ports[0] == port, "%zu listening ports (first %u), want only %u", n,
	              n ? ports[0] : 0, port);
	/* and the HTTPS port does not answer admin paths either */
	policy_get(&h, "a.test", "/metrics", NULL);
	ck_assert_msg(h.code == 404 && !h_contains(h.body, "mtastsd_"),
	              "/metrics on the policy port: %d\n%s", h.code, h.body);
	http_finish(&h);
}
END_TEST

/* ---- provider metrics: every family typed and grouped ---------------------------------- */

START_TEST(metrics_with_providers)
{
	const struct cfg c = {.admin = true, .providers = true, .only_a = true};
	char *text;

	setup_dir();
	write_config(&c);
	start_server();
	/* each provider's first fetch fails (no DNS server answers): logged, counted as an
	 * error */
	for (int i = 1; i <= 2; i++) {
		char *want =
		    h_strf("provider prov%d.test: fetch of https://mta-sts.prov%d.test"
		           "/.well-known/mta-sts.txt failed: address of mta-sts.prov%d.test: ",
		           i, i, i);
		char *line;

		wait_log(want, 0, RELOAD_TIMEOUT_MS);
		line = server_log_line(&srv, want, 0);
		ck_assert_msg(h_contains(line, "; no policy to serve (503)"), "prov%d.test: %s", i,
		              line);
		free(line);
		free(want);
	}
	text = get_metrics();
	for (int i = 1; i <= 2; i++) {
		char *ok = h_strf("provider=\"prov%d.test\",result=\"ok\"", i);
		char *error = h_strf("provider=\"prov%d.test\",result=\"error\"", i);
		char *prov = h_strf("provider=\"prov%d.test\"", i);

		ck_assert_double_eq(metric_l(text, "mtastsd_upstream_fetches_total", ok), 0);
		ck_assert_msg(metric_l(text, "mtastsd_upstream_fetches_total", error) >= 1,
		              "prov%d.test: no failed fetch counted:\n%s", i, text);
		ck_assert_double_eq(metric_l(text, "mtastsd_upstream_policy_valid", prov), 0);
		free(ok);
		free(error);
		free(prov);
	}
	ck_assert_double_eq(metric(text, "mtastsd_domains"), 3);
	free(text);
}
END_TEST

/* ---- certificate renewal without a signal ---------------------------------------------- */

/* A second leaf for mta-sts.a.test from the same CA, in dir (make-certs.sh keeps a CA that
 * still verifies and makes the leaves missing there). */
static void make_leaf(const char *dir)
{
	const char *const files[] = {"ca.crt", "ca.key", "intermediate.crt", "intermediate.key"};
	const char *const argv[] = {"sh", CERTS_SCRIPT, "-o", dir, "a.test", NULL};
	struct run r;

	ck_assert_int_eq(mkdir(dir, 0700), 0);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char *from = h_strf("%s/%s", certs, files[i]), *to = h_strf("%s/%s", dir, files[i]);
		char *data = h_read_file(from, NULL);

		ck_assert_ptr_nonnull(data);
		h_write_file(to, data);
		free(data);
		free(from);
		free(to);
	}
	h_run(&r, NULL, 0, argv);
	ck_assert_msg(r.status == 0, "make-certs.sh: %s%s", r.out, r.err);
	run_finish(&r);
}

/* Replaces to by a copy of from the way certbot or lego do (new file renamed into place). */
static void install(const char *from, const char *to)
{
	char *data = h_read_file(from, NULL);

	ck_assert_msg(data != NULL, "cannot read %s", from);
	h_write_file(to, data);
	free(data);
}

/* A child that fetches a.test's policy over and over (new connection each time, verified
 * against our CA) until stop exists, writing "CURL_EXIT HTTP_CODE" lines to results. */
static void start_request_loop(const char *results, const char *stop)
{
	char *resolve = h_strf("mta-sts.a.test:%u:127.0.0.1", port);
	char *url = h_strf("https://mta-sts.a.test:%u%s", port, POLICY_PATH);
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		const char *const argv[] = {
		    "curl", "-sS",       "--noproxy", "*",  "--max-time", "5",  "--cacert",
		    ca,     "--resolve", resolve,     "-o", "/dev/null",  "-w", "%{http_code}",
		    url,    NULL};
		int fd = open(results, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		if (fd < 0)
			_exit(2);
		for (int i = 0; i < 10000 && access(stop, F_OK) != 0; i++) {
			struct run r;

			if (run_cmd(&r, NULL, 0, false, 10000, argv) != 0)
				_exit(3);
			dprintf(fd, "%d %s\n", r.status, r.out);
			run_finish(&r);
		}
		_exit(0); /* not exit(): the atexit handlers are the parent's */
	}
	loop_pid = pid;
	free(resolve);
	free(url);
}

/* Stops the loop and checks every request it made succeeded; returns how many it made. */
static int finish_request_loop(const char *results, const char *stop)
{
	long long deadline = h_now_ms() + 15000;
	char *text, *save = NULL;
	int status = -1, n = 0;

	h_write_file(stop, "");
	while (waitpid(loop_pid, &status, WNOHANG) == 0 && h_now_ms() < deadline)
		usleep(20 * 1000);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "request loop: status %d",
	              status);
	loop_pid = 0;
	text = h_read_file(results, NULL);
	ck_assert_ptr_nonnull(text);
	for (char *line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save), n++)
		ck_assert_msg(strcmp(line, "0 200") == 0,
		              "request %d during the renewal failed: curl exit and status '%s'",
		              n + 1, line);
	free(text);
	return n;
}

START_TEST(cert_watch_renewal)
{
	char *live, *gen2, *gen3, *crt, *key, *results, *stop, *from, *tail, *leaf, *want;
	struct cfg c = {.cert_watch = 1};
	long long t0;
	size_t off;
	int n;

	setup_dir();
	live = h_strf("%s/live", work);
	gen2 = h_strf("%s/gen2", work);
	gen3 = h_strf("%s/gen3", work);
	crt = h_strf("%s/a.crt", live);
	key = h_strf("%s/a.key", live);
	results = h_strf("%s/loop.results", work);
	stop = h_strf("%s/loop.stop", work);
	c.a_cert = crt;
	c.a_key = key;

	make_leaf(gen2);
	make_leaf(gen3);
	ck_assert_int_eq(mkdir(live, 0700), 0);
	from = h_strf("%s/mta-sts.a.test.crt", certs);
	install(from, crt);
	free(from);
	from = h_strf("%s/mta-sts.a.test.key", certs);
	install(from, key);
	free(from);
	write_config(&c);
	start_server();

	leaf = served_leaf("a.test");
	want = file_leaf(crt);
	ck_assert_msg(strcmp(leaf, want) == 0, "not the first certificate at start");
	free(leaf);
	free(want);
	start_request_loop(results, stop);

	/* 1. a renewed pair, key first then certificate, as certbot and lego write them */
	off = server_log_size(&srv);
	t0 = h_now_ms();
	from = h_strf("%s/mta-sts.a.test.key", gen2);
	install(from, key);
	free(from);
	from = h_strf("%s/mta-sts.a.test.crt", gen2);
	install(from, crt);
	wait_log("mtastsd: certificate files changed", off, WATCH_TIMEOUT_MS);
	wait_log("mtastsd: a.test: certificate renewed: ", off, WATCH_TIMEOUT_MS);
	leaf = served_leaf("a.test");
	want = file_leaf(from);
	ck_assert_msg(strcmp(leaf, want) == 0, "the renewed certificate is not served");
	ck_assert_msg(h_now_ms() - t0 < WATCH_TIMEOUT_MS, "renewal took %lld ms", h_now_ms() - t0);
	free(from);
	free(leaf);

	/* 2. a new certificate with the old key: rejected, the renewed one stays */
	off = server_log_size(&srv);
	from = h_strf("%s/mta-sts.a.test.crt", gen3);
	install(from, crt);
	free(from);
	wait_log("mtastsd: a.test: certificate degraded (key_mismatch): ", off, WATCH_TIMEOUT_MS);
	tail = log_since(off);
	ck_assert_msg(h_contains(tail, "certificate files changed") &&
	                  h_contains(tail, "private key does not match") &&
	                  h_contains(tail, "keeping the previous certificate"),
	              "log of the mismatched pair:\n%s", tail);
	ck_assert_msg(!h_contains(tail, "certificate renewed"), "a mismatched pair was loaded:\n%s",
	              tail);
	free(tail);
	leaf = served_leaf("a.test");
	ck_assert_msg(strcmp(leaf, want) == 0, "the mismatched certificate is served");
	free(leaf);
	fetch_policy("a.test", A_BODY, NULL);

	/* 3. its key arrives: the pair is complete and served */
	off = server_log_size(&srv);
	from = h_strf("%s/mta-sts.a.test.key", gen3);
	install(from, key);
	free(from);
	wait_log("mtastsd: a.test: certificate recovered: ", off, WATCH_TIMEOUT_MS);
	leaf = served_leaf("a.test");
	free(want);
	from = h_strf("%s/mta-sts.a.test.crt", gen3);
	want = file_leaf(from);
	ck_assert_msg(strcmp(leaf, want) == 0, "the completed pair is not served");
	free(from);
	free(leaf);
	free(want);

	n = finish_request_loop(results, stop);
	ck_assert_msg(n >= 5, "only %d requests during the renewal", n);
	tail = log_since(0);
	ck_assert_msg(!h_contains(tail, "SIGHUP"), "a signal was involved:\n%s", tail);
	free(tail);
	fetch_policy("b.test", B_BODY, NULL);
	free(live);
	free(gen2);
	free(gen3);
	free(crt);
	free(key);
	free(results);
	free(stop);
}
END_TEST

/* ---- privilege drop --------------------------------------------------------------------- */

/* The value of field in a /proc status text, whitespace-normalized (caller frees). */
static char *proc_field(const char *status, const char *field)
{
	char *key = h_strf("\n%s:", field);
	const char *p = strstr(status, key), *e;
	char *v, *w;

	free(key);
	if (p == NULL)
		return NULL;
	p += strlen(field) + 2;
	e = strchr(p, '\n');
	v = h_strf("%.*s", (int)(e ? e - p : (long)strlen(p)), p);
	for (w = v; *w; w++)
		if (*w == '\t')
			*w = ' ';
	for (w = v; *w == ' '; w++)
		;
	memmove(v, w, strlen(w) + 1);
	return v;
}

START_TEST(drop_to_nobody)
{
	struct passwd *pw = getpwnam("nobody");
	char *dir, *crt, *key, *from, *task_dir, *uids, *gids, *tail;
	struct cfg c = {.user = "nobody", .admin = true, .only_a = true};
	size_t n_tasks = 0, off;
	struct dirent *e;
	DIR *d;

	ck_assert_ptr_nonnull(pw);
	setup_dir();
	/* the key is the user's alone; every directory on the way is traversable */
	ck_assert_int_eq(chmod(suite_dir, 0711), 0);
	ck_assert_int_eq(chmod(work, 0711), 0);
	dir = h_strf("%s/keys", work);
	ck_assert_int_eq(mkdir(dir, 0711), 0);
	crt = h_strf("%s/a.crt", dir);
	key = h_strf("%s/a.key", dir);
	from = h_strf("%s/mta-sts.a.test.crt", certs);
	install(from, crt);
	free(from);
	from = h_strf("%s/mta-sts.a.test.key", certs);
	install(from, key);
	free(from);
	ck_assert_int_eq(chmod(crt, 0644), 0);
	ck_assert_int_eq(chmod(key, 0600), 0);
	ck_assert_int_eq(chown(key, pw->pw_uid, pw->pw_gid), 0);
	c.a_cert = crt;
	c.a_key = key;
	write_config(&c);
	ck_assert_int_eq(chmod(conf, 0644), 0);
	start_server();
	ck_assert_msg(server_wait_log(&srv, "mtastsd: running as user nobody", 0, 1000) >= 0,
	              "no 'running as user nobody' in the log");
	fetch_policy("a.test", A_BODY, NULL);

	uids = h_strf("%u %u %u %u", (unsigned)pw->pw_uid, (unsigned)pw->pw_uid,
	              (unsigned)pw->pw_uid, (unsigned)pw->pw_uid);
	gids = h_strf("%u %u %u %u", (unsigned)pw->pw_gid, (unsigned)pw->pw_gid,
	              (unsigned)pw->pw_gid, (unsigned)pw->pw_gid);
	/* every thread, not only the main one */
	task_dir = h_strf("/proc/%d/task", (int)srv.pid);
	d = opendir(task_dir);
	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)) != NULL) {
		char *path, *status, *v;

		if (e->d_name[0] == '.')
			continue;
		path = h_strf("%s/%s/status", task_dir, e->d_name);
		status = h_read_file(path, NULL);
		if (status == NULL) { /* the thread ended meanwhile */
			free(path);
			continue;
		}
		n_tasks++;
		v = proc_field(status, "Uid");
		ck_assert_msg(v != NULL && strcmp(v, uids) == 0, "%s: Uid %s, want %s", path, v,
		              uids);
		free(v);
		v = proc_field(status, "Gid");
		ck_assert_msg(v != NULL && strcmp(v, gids) == 0, "%s: Gid %s, want %s", path, v,
		              gids);
		free(v);
		v = proc_field(status, "Groups");
		ck_assert_ptr_nonnull(v);
		{
			char *save = NULL;

			for (char *g = strtok_r(v, " ", &save); g != NULL;
			     g = strtok_r(NULL, " ", &save))
				ck_assert_msg(strtoul(g, NULL, 10) == pw->pw_gid,
				              "%s: supplementary group %s kept", path, g);
		}
		free(v);
		for (int k = 0; k < 3; k++) {
			const char *caps[] = {"CapEff", "CapPrm", "CapAmb"};

			v = proc_field(status, caps[k]);
			ck_assert_msg(v != NULL && strcmp(v, "0000000000000000") == 0, "%s: %s %s",
			              path, caps[k], v);
			free(v);
		}
		free(status);
		free(path);
	}
	closedir(d);
	ck_assert_uint_ge(n_tasks, 2);

	/* reloads still work: the user can read its key and the config */
	off = server_log_size(&srv);
	ck_assert_int_eq(kill(srv.pid, SIGHUP), 0);
	wait_log("mtastsd: reloaded", off, RELOAD_TIMEOUT_MS);
	tail = log_since(off);
	ck_assert_msg(!h_contains(tail, "reload failed"), "reload as nobody:\n%s", tail);
	free(tail);
	fetch_policy("a.test", A_BODY, NULL);
	free(task_dir);
	free(uids);
	free(gids);
	free(dir);
	free(crt);
	free(key);
}
END_TEST

/* ---- suite ---------------------------------------------------------------------------- */

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Three runs, registered as three meson tests so that they run in parallel: the admin
 * listener (default), "renewal" and "privileges" (root only). */
static Suite *admin_suite(const char *part)
{
	Suite *s = suite_create("integration");
	TCase *tc;

	if (strcmp(part, "admin") == 0) {
		tc = tcase_create("validator");
		tcase_add_loop_test(tc, metrics_validator, 0, N(expositions));
		suite_add_tcase(s, tc);

		tc = tcase_create("admin");
		tcase_add_checked_fixture(tc, setup_admin, teardown_server);
		tcase_set_timeout(tc, 60);
		tcase_add_test(tc, healthz_ok);
		tcase_add_test(tc, records_match_command);
		tcase_add_loop_test(tc, admin_errors_404_405, 0, N(admin_errors));
		tcase_add_test(tc, metrics_count_requests);
		tcase_add_test(tc, metrics_unknown_sni);
		tcase_add_test(tc, metrics_reloads);
		tcase_add_test(tc, status_page);
		tcase_add_test(tc, admin_listener_bound);
		suite_add_tcase(s, tc);

		tc = tcase_create("config");
		tcase_add_checked_fixture(tc, NULL, teardown_server);
		tcase_set_timeout(tc, 60);
		tcase_add_test(tc, admin_listener_off_by_default);
		tcase_add_test(tc, metrics_with_providers);
		suite_add_tcase(s, tc);
	} else if (strcmp(part, "renewal") == 0) {
		tc = tcase_create("renewal");
		tcase_add_checked_fixture(tc, NULL, teardown_server);
		tcase_set_timeout(tc, 90);
		tcase_add_test(tc, cert_watch_renewal);
		suite_add_tcase(s, tc);
	} else {
		tc = tcase_create("privileges");
		tcase_add_checked_fixture(tc, NULL, teardown_server);
		tcase_set_timeout(tc, 60);
		tcase_add_test(tc, drop_to_nobody);
		suite_add_tcase(s, tc);
	}
	return s;
}

static int make_certs(void)
{
	const char *const argv[] = {"sh",     CERTS_SCRIPT, "-o",      certs, "a.test",
	                            "b.test", "p1.test",    "p2.test", NULL};

	return h_make_certs(argv);
}

int main(int argc, char **argv)
{
	const char *const tools[] = {"curl", "gnutls-cli", "certtool", "sha256sum", "python3"};
	const char *part = argc > 1 ? argv[1] : "admin";
	int rc;

	if (strcmp(part, "admin") != 0 && strcmp(part, "renewal") != 0 &&
	    strcmp(part, "privileges") != 0) {
		fprintf(stderr, "usage: %s [admin|renewal|privileges]\n", argv[0]);
		return 2;
	}
	if (!h_have_tools(tools, sizeof(tools) / sizeof(tools[0])))
		return 77;
	if (strcmp(part, "privileges") == 0 && (geteuid() != 0 || getpwnam("nobody") == NULL)) {
		fprintf(stderr, "SKIP: the privilege drop needs root and a user nobody\n");
		return 77;
	}
	if (!h_executable(MTASTSD_BIN))
		return 1;
	suite_dir = h_mkdtemp("admin");
	certs = h_strf("%s/certs", suite_dir);
	ca = h_strf("%s/ca.crt", certs);
	if (make_certs() != 0) {
		h_rm_rf(suite_dir);
		return 1;
	}

	/* failure messages carry logs and pages; Check's default limit is 4 KiB */
	check_set_max_msg_size(256 * 1024);
	rc = h_run_suite(admin_suite(part));
	h_rm_rf(suite_dir);
	free(suite_dir);
	free(certs);
	free(ca);
	return rc;
}
