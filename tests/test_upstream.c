/* test_upstream: provider (proxy) mode end to end: the real mtastsd against a hostile HTTPS
 * upstream and dnsmasq, read back with curl (SPEC.md 1.5, 1.7 and cases 31-37) */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#ifndef MTASTSD_BIN
#error "MTASTSD_BIN must be defined by the build"
#endif
#ifndef HOSTILE_PY
#error "HOSTILE_PY must be defined by the build"
#endif
#ifndef CERTS_SCRIPT
#error "CERTS_SCRIPT must be defined by the build"
#endif

#define SKIP 77
#define POLICY_PATH "/.well-known/mta-sts.txt"
#define PROVIDER "provider.test"
#define CUSTOMER "customer.test"
#define MANY 500        /* customers of one provider in the fan-in test */
#define FETCH_TIMEOUT 2 /* upstream_timeout, seconds; the drip mode is slower */
#define WAIT_MS 10000   /* default deadline for something to show up */

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

/* Suite-wide, made once in main() before the tests fork. */
static char *top;           /* private temp dir holding everything below */
static char *pki_provider;  /* CA trusted for the upstream, leaves for provider and other */
static char *pki_untrusted; /* another CA, a leaf for provider.test */
static char *pki_customer;  /* our side: CA for curl, leaf for customer.test */
static char *many_dir;      /* certs dir: leaves naming mta-sts.customer1..MANY.test */

/* Per test, made by the fixture in the test's own process. */
static char *work;
static char *conf;
static char *log_path;
static char *up_dir; /* the hostile upstream's control directory */
static unsigned up_port, dns_port, port;
static pid_t up_pid, dns_pid, srv_pid;

/* ---- small tools ---------------------------------------------------------------------- */

/* For the helpers main() uses too, where Check's assertions cannot report: a broken
 * environment aborts (a test error inside a test). */
#define NEED(cond)                                                                                 \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #cond,              \
			        strerror(errno));                                                  \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static char *strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *strf(const char *fmt, ...)
{
	va_list ap;
	int n;
	char *s;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	NEED(n >= 0);
	s = malloc((size_t)n + 1);
	NEED(s != NULL);
	va_start(ap, fmt);
	NEED(vsnprintf(s, (size_t)n + 1, fmt, ap) == n);
	va_end(ap);
	return s;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* The whole file, NUL-terminated; NULL when it cannot be read. */
static char *read_file(const char *path, size_t *ret_len)
{
	FILE *f = fopen(path, "rb");
	char *data = NULL;
	size_t len = 0, cap = 0, n;

	if (f == NULL)
		return NULL;
	do {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			data = realloc(data, cap + 1);
			NEED(data != NULL);
		}
		n = fread(data + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	fclose(f);
	data[len] = 0;
	if (ret_len != NULL)
		*ret_len = len;
	return data;
}

/* Atomically (temp file + rename), so the upstream never reads half a mode. */
static void write_file(const char *path, const char *data)
{
	char *tmp = strf("%s.tmp", path);
	FILE *f = fopen(tmp, "wb");

	NEED(f != NULL);
	NEED(fwrite(data, 1, strlen(data), f) == strlen(data));
	NEED(fclose(f) == 0);
	NEED(rename(tmp, path) == 0);
	free(tmp);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static void rm_rf(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static bool have_tool(const char *name)
{
	const char *path = getenv("PATH");
	char *copy, *dir, *save = NULL;
	bool found = false;

	if (path == NULL)
		return false;
	copy = strdup(path);
	if (copy == NULL)
		return false;
	for (dir = strtok_r(copy, ":", &save); dir != NULL && !found;
	     dir = strtok_r(NULL, ":", &save)) {
		char *p = strf("%s/%s", dir, name);

		found = access(p, X_OK) == 0;
		free(p);
	}
	free(copy);
	return found;
}

/* A port free on 127.0.0.1 a moment ago, for TCP and UDP alike. */
static unsigned free_port(void)
{
	for (int tries = 0; tries < 50; tries++) {
		struct sockaddr_in a = {.sin_family = AF_INET,
		                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		socklen_t len = sizeof(a);
		int t = socket(AF_INET, SOCK_STREAM, 0), u = socket(AF_INET, SOCK_DGRAM, 0);
		unsigned p = 0;

		ck_assert(t >= 0 && u >= 0);
		if (bind(t, (struct sockaddr *)&a, sizeof(a)) == 0 &&
		    getsockname(t, (struct sockaddr *)&a, &len) == 0 &&
		    bind(u, (struct sockaddr *)&a, sizeof(a)) == 0)
			p = ntohs(a.sin_port);
		close(t);
		close(u);
		if (p != 0)
			return p;
	}
	ck_abort_msg("no free port");
	return 0;
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

/* ---- processes ------------------------------------------------------------------------ */

/* Starts argv with stdout and stderr appended to out. The child gets SIGKILL when this test
 * process dies, so a failed assertion (Check's _exit skips the teardown) leaves nothing
 * running. dnsmasq loses that setting when it changes credentials, so every pid is also
 * listed in top/pids for reap_leftovers(). */
static pid_t spawn(const char *const argv[], const char *out)
{
	pid_t parent = getpid(), pid = fork();
	char *pids = strf("%s/pids", top);
	FILE *f;

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int fd = open(out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		int null = open("/dev/null", O_RDONLY | O_CLOEXEC);

		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent || fd < 0 ||
		    null < 0 || dup2(null, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(127);
		setpgid(0, 0);
		execvp(argv[0], (char *const *)(uintptr_t)argv);
		_exit(127);
	}
	f = fopen(pids, "a");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "%ld\n", (long)pid);
	ck_assert_int_eq(fclose(f), 0);
	free(pids);
	return pid;
}

/* After the run: SIGKILLs every process spawn() started that still runs (its command line
 * names a file under top, so a recycled pid is left alone). */
static void reap_leftovers(void)
{
	char *pids = strf("%s/pids", top), *text = read_file(pids, NULL), *save = NULL;

	for (char *l = text ? strtok_r(text, "\n", &save) : NULL; l != NULL;
	     l = strtok_r(NULL, "\n", &save)) {
		long pid = strtol(l, NULL, 10);
		char *path = strf("/proc/%ld/cmdline", pid), *cmd;
		size_t len;

		if (pid > 1 && (cmd = read_file(path, &len)) != NULL) {
			for (size_t i = 0; i + 1 < len; i++)
				if (cmd[i] == 0)
					cmd[i] = ' ';
			if (strstr(cmd, top) != NULL) {
				kill(-(pid_t)pid, SIGKILL);
				kill((pid_t)pid, SIGKILL);
			}
			free(cmd);
		}
		free(path);
	}
	free(text);
	free(pids);
}

/* Signals *pid's process group, waits up to 5 s, then SIGKILLs; reaps. Returns the exit
 * status as waitpid gives it, or -1 if it was not running. */
static int stop(pid_t *pid, int sig)
{
	int status = -1;

	if (*pid <= 0)
		return -1;
	kill(-*pid, sig);
	kill(*pid, sig);
	for (int i = 0; i < 500; i++) {
		if (waitpid(*pid, &status, WNOHANG) == *pid) {
			*pid = 0;
			return status;
		}
		sleep_ms(10);
	}
	kill(-*pid, SIGKILL);
	kill(*pid, SIGKILL);
	waitpid(*pid, &status, 0);
	*pid = 0;
	return status;
}

/* Runs argv to completion (killed after timeout_ms), stdout to out and stderr to err
 * (either may be NULL: /dev/null). Returns the exit code, 128+signal when killed. */
static int run(const char *const argv[], const char *out, const char *err, unsigned timeout_ms)
{
	pid_t parent = getpid(), pid = fork();
	long long deadline = now_ms() + timeout_ms;
	int status;

	NEED(pid >= 0);
	if (pid == 0) {
		int o =
		    open(out ? out : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		int e =
		    open(err ? err : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		int null = open("/dev/null", O_RDONLY | O_CLOEXEC);

		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent || o < 0 || e < 0 ||
		    null < 0 || dup2(null, 0) < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
			_exit(127);
		execvp(argv[0], (char *const *)(uintptr_t)argv);
		_exit(127);
	}
	while (waitpid(pid, &status, WNOHANG) != pid) {
		if (now_ms() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return 128 + SIGKILL;
		}
		sleep_ms(5);
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* ---- the pieces of a test: dnsmasq, the upstream, mtastsd ------------------------------ */

/* (Re)starts dnsmasq answering the provider's _mta-sts TXT with id and its policy host's A
 * record with 127.0.0.1; nothing else (never the machine's own resolver). */
static void dns_start(const char *id)
{
	char *port_arg = strf("--port=%u", dns_port);
	char *txt = strf("--txt-record=_mta-sts." PROVIDER ",v=STSv1; id=%s", id);
	char *pid_arg = strf("--pid-file=%s/dnsmasq.pid", work);
	char *out = strf("%s/dnsmasq.log", work);
	const char *argv[] = {"dnsmasq",
	                      "--keep-in-foreground",
	                      "--conf-file=/dev/null",
	                      "--no-resolv",
	                      "--no-hosts",
	                      "--local=/test/",
	                      port_arg,
	                      "--listen-address=127.0.0.1",
	                      "--bind-interfaces",
	                      pid_arg,
	                      txt,
	                      "--address=/mta-sts." PROVIDER "/127.0.0.1",
	                      geteuid() == 0 ? "--user=root" : NULL,
	                      NULL};
	long long deadline = now_ms() + WAIT_MS;

	stop(&dns_pid, SIGTERM);
	dns_pid = spawn(argv, out);
	while (!udp_bound(dns_port)) {
		ck_assert_msg(now_ms() < deadline, "dnsmasq did not start: %s",
		              read_file(out, NULL));
		ck_assert_msg(waitpid(dns_pid, NULL, WNOHANG) == 0, "dnsmasq exited: %s",
		              read_file(out, NULL));
		sleep_ms(20);
	}
	free(port_arg);
	free(txt);
	free(pid_arg);
	free(out);
}

static void up_mode(const char *mode)
{
	char *p = strf("%s/mode", up_dir);

	write_file(p, mode);
	free(p);
}

static void up_policy(const char *body)
{
	char *p = strf("%s/policy", up_dir);

	write_file(p, body);
	free(p);
}

/* Starts the hostile upstream, on up_port if set (a restart keeps the port). */
static void up_start(void)
{
	char *cert = strf("%s/mta-sts." PROVIDER ".crt", pki_provider);
	char *key = strf("%s/mta-sts." PROVIDER ".key", pki_provider);
	char *wcert = strf("%s/mta-sts.other.test.crt", pki_provider);
	char *wkey = strf("%s/mta-sts.other.test.key", pki_provider);
	char *ucert = strf("%s/mta-sts." PROVIDER ".crt", pki_untrusted);
	char *ukey = strf("%s/mta-sts." PROVIDER ".key", pki_untrusted);
	char *port_arg = strf("%u", up_port);
	char *port_file = strf("%s/port", up_dir);
	char *out = strf("%s/upstream.log", work);
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
	long long deadline = now_ms() + WAIT_MS;
	char *text;

	unlink(port_file);
	up_pid = spawn(argv, out);
	while ((text = read_file(port_file, NULL)) == NULL) {
		ck_assert_msg(now_ms() < deadline, "upstream did not start: %s",
		              read_file(out, NULL));
		ck_assert_msg(waitpid(up_pid, NULL, WNOHANG) == 0, "upstream exited: %s",
		              read_file(out, NULL));
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
	char *p = strf("%s/counts", up_dir), *text = read_file(p, NULL), *save = NULL;
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
	char *state = strf("%s/state", work);
	char *hook = o->hook ? strf("on_change = %s/hook.sh\n", work) : strf("%s", "");
	char *certs = o->customers ? strf("certs = %s\n", many_dir) : strf("%s", "");
	char *head = strf("# written by test_upstream\n"
	                  "[server]\n"
	                  "listen = 127.0.0.1:%u\n"
	                  "%s"
	                  "access_log = false\n"
	                  "state_dir = %s\n"
	                  "upstream_ca = %s/ca.crt\n"
	                  "upstream_refresh = %u\n"
	                  "upstream_dns_poll = %u\n"
	                  "upstream_timeout = %u\n"
	                  "upstream_connect_timeout = 1\n"
	                  "upstream_retry = %u\n"
	                  "upstream_port = %u\n"
	                  "dns_server = 127.0.0.1:%u\n"
	                  "%s",
	                  port, certs, state, pki_provider, o->refresh, o->dns_poll, FETCH_TIMEOUT,
	                  o->retry, up_port, dns_port, hook);
	FILE *f;

	mkdir(state, 0700);
	f = fopen(conf, "w");
	ck_assert_ptr_nonnull(f);
	fputs(head, f);
	if (o->customers == 0)
		fprintf(f,
		        "\n[domain " CUSTOMER "]\nproxy = " PROVIDER "\n"
		        "cert = %s/mta-sts." CUSTOMER ".crt\nkey = %s/mta-sts." CUSTOMER ".key\n",
		        pki_customer, pki_customer);
	for (unsigned i = 1; i <= o->customers; i++)
		fprintf(f, "\n[domain customer%u.test]\nproxy = " PROVIDER "\n", i);
	ck_assert_int_eq(fclose(f), 0);
	if (o->hook) {
		char *path = strf("%s/hook.sh", work);
		char *script = strf("#!/bin/sh\necho \"$1 $2\" >> %s/hook.out\n", work);

		write_file(path, script);
		ck_assert_int_eq(chmod(path, 0755), 0);
		free(path);
		free(script);
	}
	free(state);
	free(hook);
	free(certs);
	free(head);
}

static size_t log_size(void)
{
	struct stat st;

	return stat(log_path, &st) == 0 ? (size_t)st.st_size : 0;
}

static void dump_log(void)
{
	char *text = read_file(log_path, NULL);

	fprintf(stderr, "----- %s\n%s-----\n", log_path, text ? text : "(none)\n");
	free(text);
}

/* The first log line at or after byte from that contains needle, or NULL (caller frees). */
static char *log_line(const char *needle, size_t from)
{
	size_t len;
	char *text = read_file(log_path, &len), *hit, *line = NULL;

	if (text != NULL && from <= len && (hit = strstr(text + from, needle)) != NULL) {
		char *start = hit, *end = strchr(hit, '\n');

		while (start > text + from && start[-1] != '\n')
			start--;
		line = strf("%.*s", (int)(end ? end - start : (ptrdiff_t)strlen(start)), start);
	}
	free(text);
	return line;
}

/* Waits for a log line containing needle (after byte from) and returns it; a failure with
 * the whole log when it does not come in time or the server died. */
static char *expect_log(const char *needle, size_t from, unsigned timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	char *line;

	while ((line = log_line(needle, from)) == NULL) {
		if (now_ms() > deadline || (srv_pid > 0 && waitpid(srv_pid, NULL, WNOHANG) != 0)) {
			dump_log();
			ck_abort_msg("no log line with \"%s\" within %u ms", needle, timeout_ms);
		}
		sleep_ms(50);
	}
	return line;
}

static void srv_start(void)
{
	const char *argv[] = {MTASTSD_BIN, "serve", "-c", conf, NULL};
	size_t from = log_size();

	srv_pid = spawn(argv, log_path);
	free(expect_log("ready", from, WAIT_MS));
}

/* ---- reading what mtastsd serves, with curl -------------------------------------------- */

struct reply {
	int status; /* HTTP status, 0 when curl failed */
	char *body;
	size_t len;
	char *headers;
};

static void get(const char *domain, struct reply *r)
{
	char *host = strf("mta-sts.%s", domain);
	char *resolve = strf("%s:%u:127.0.0.1", host, port);
	char *url = strf("https://%s:%u" POLICY_PATH, host, port);
	char *ca = strf("%s/ca.crt", pki_customer);
	char *body = strf("%s/curl.body", work), *hdr = strf("%s/curl.headers", work);
	char *out = strf("%s/curl.out", work), *err = strf("%s/curl.err", work);
	const char *argv[] = {
	    "curl",  "-sS",          "--max-time", "5",  "--noproxy", "*",  "--resolve",
	    resolve, "--cacert",     ca,           "-o", body,        "-D", hdr,
	    "-w",    "%{http_code}", url,          NULL};
	char *code;

	unlink(body);
	memset(r, 0, sizeof(*r));
	if (run(argv, out, err, 10000) == 0 && (code = read_file(out, NULL)) != NULL) {
		r->status = (int)strtol(code, NULL, 10);
		free(code);
	}
	r->body = read_file(body, &r->len);
	r->headers = read_file(hdr, NULL);
	if (r->status == 0) {
		char *why = read_file(err, NULL);

		fprintf(stderr, "curl %s failed: %s", url, why ? why : "?\n");
		free(why);
	}
	free(host);
	free(resolve);
	free(url);
	free(ca);
	free(body);
	free(hdr);
	free(out);
	free(err);
}

static void reply_finish(struct reply *r)
{
	free(r->body);
	free(r->headers);
}

/* Asserts that domain is served exactly body (byte for byte) as text/plain. */
static void expect_served(const char *domain, const char *body)
{
	struct reply r;

	get(domain, &r);
	ck_assert_msg(r.status == 200, "%s: status %d, expected 200", domain, r.status);
	ck_assert_ptr_nonnull(r.body);
	ck_assert_msg(r.len == strlen(body) && memcmp(r.body, body, r.len) == 0,
	              "%s: served\n%s\nexpected\n%s", domain, r.body, body);
	ck_assert_msg(strstr(r.headers, "Content-Type: text/plain; charset=utf-8\r\n") != NULL,
	              "%s: headers\n%s", domain, r.headers);
	reply_finish(&r);
}

/* Asserts a 503 that carries no policy. */
static void expect_unavailable(const char *domain)
{
	struct reply r;

	get(domain, &r);
	ck_assert_msg(r.status == 503, "%s: status %d, expected 503 (body %s)", domain, r.status,
	              r.body ? r.body : "");
	ck_assert_msg(r.body == NULL || strstr(r.body, "STSv1") == NULL,
	              "%s: a 503 with a policy: %s", domain, r.body);
	reply_finish(&r);
}

/* Polls until domain answers with status (deadline in ms); returns the ms it took. */
static long long wait_status(const char *domain, int status, unsigned timeout_ms)
{
	long long start = now_ms();
	struct reply r;

	for (;;) {
		get(domain, &r);
		reply_finish(&r);
		if (r.status == status)
			return now_ms() - start;
		if (now_ms() - start > timeout_ms) {
			dump_log();
			ck_abort_msg("%s: no status %d within %u ms (last %d)", domain, status,
			             timeout_ms, r.status);
		}
		sleep_ms(100);
	}
}

/* Our id of a canonical body, computed apart from mtastsd: the first 32 hex digits of its
 * SHA-256 (SPEC.md, "The id"), with the sha256sum tool. Caller frees. */
static char *expected_id(const char *canon)
{
	char *in = strf("%s/id.in", work), *out = strf("%s/id.out", work), *text, *id;
	const char *argv[] = {"sha256sum", in, NULL};

	write_file(in, canon);
	ck_assert_int_eq(run(argv, out, NULL, 5000), 0);
	text = read_file(out, NULL);
	ck_assert_ptr_nonnull(text);
	ck_assert_uint_ge(strlen(text), 64);
	id = strf("%.32s", text);
	free(text);
	free(in);
	free(out);
	return id;
}

static char *url_of_provider(void)
{
	return strf("https://mta-sts." PROVIDER ":%u" POLICY_PATH, up_port);
}

/* Lines the on_change hook wrote ("DOMAIN ID"), or "" when it never ran. Caller frees. */
static char *hook_output(void)
{
	char *p = strf("%s/hook.out", work), *text = read_file(p, NULL);

	free(p);
	return text ? text : strf("%s", "");
}

/* ---- fixture ---------------------------------------------------------------------------- */

static void setup(void)
{
	char tmpl[4096];
	int n = snprintf(tmpl, sizeof(tmpl), "%s/t-XXXXXX", top);

	ck_assert(n > 0 && (size_t)n < sizeof(tmpl));
	ck_assert_ptr_nonnull(mkdtemp(tmpl));
	work = strf("%s", tmpl);
	conf = strf("%s/mtastsd.ini", work);
	log_path = strf("%s/mtastsd.log", work);
	up_dir = strf("%s/upstream", work);
	ck_assert_int_eq(mkdir(up_dir, 0700), 0);
	up_port = 0;
	port = free_port();
	dns_port = free_port();
	up_mode("ok");
	up_policy(POLICY_A);
	{
		char *alt = strf("%s/alt", up_dir);

		write_file(alt, POLICY_B);
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

static void teardown(void)
{
	stop(&srv_pid, SIGTERM);
	stop(&up_pid, SIGTERM);
	stop(&dns_pid, SIGTERM);
	rm_rf(work);
	free(work);
	free(conf);
	free(log_path);
	free(up_dir);
}

/* ---- the cases ------------------------------------------------------------------------- */

/* SPEC case 31 and 37: a good answer is served re-rendered canonically under the
 * customer's own name and certificate, announced (log, hook), persisted, listed by
 * records; asking again within the refresh time does not touch the upstream. */
START_TEST(ok_served_canonically)
{
	struct opts o = {.refresh = 3600, .dns_poll = 1, .retry = 1, .hook = true};
	char *id = expected_id(POLICY_A_CANON), *needle, *line, *text, *path, *out, *err;
	const char *argv[] = {MTASTSD_BIN, "records", "-c", conf, NULL};

	write_config(&o);
	srv_start();
	needle = strf("provider " PROVIDER ": policy changed, new id %s", id);
	free(expect_log(needle, 0, WAIT_MS));
	free(needle);
	expect_served(CUSTOMER, POLICY_A_CANON);

	needle = strf(CUSTOMER ": id changed to %s; publish: _mta-sts." CUSTOMER
	                       ". 3600 IN TXT \"v=STSv1; id=%s\"",
	              id, id);
	free(expect_log(needle, 0, WAIT_MS));
	free(needle);

	/* The hook runs once with DOMAIN and ID. */
	for (long long deadline = now_ms() + WAIT_MS; now_ms() < deadline; sleep_ms(50)) {
		text = hook_output();
		if (text[0] != 0)
			break;
		free(text);
	}
	needle = strf(CUSTOMER " %s\n", id);
	ck_assert_str_eq(text, needle);
	free(text);
	free(needle);

	/* Several requests and a few DNS polls with the same TXT id: still one fetch. */
	for (int i = 0; i < 5; i++)
		expect_served(CUSTOMER, POLICY_A_CANON);
	sleep_ms(2500);
	ck_assert_uint_eq(policy_requests(), 1);
	ck_assert_uint_eq(up_count("connections"), 1);

	/* The last good copy is on disk, as served. */
	path = strf("%s/state/" PROVIDER ".policy", work);
	text = read_file(path, NULL);
	ck_assert_ptr_nonnull(text);
	ck_assert_ptr_nonnull(strstr(text, "\n\n" POLICY_A_CANON));
	free(text);
	free(path);

	/* records: the CNAME to the provider and, commented, our own id. */
	out = strf("%s/records.out", work);
	err = strf("%s/records.err", work);
	ck_assert_int_eq(run(argv, out, err, 10000), 0);
	text = read_file(out, NULL);
	ck_assert_ptr_nonnull(text);
	ck_assert_msg(
	    strstr(text, "_mta-sts." CUSTOMER ". 3600 IN CNAME _mta-sts." PROVIDER ".\n") != NULL,
	    "records:\n%s", text);
	needle = strf("; _mta-sts." CUSTOMER ". 3600 IN TXT \"v=STSv1; id=%s\"\n", id);
	ck_assert_msg(strstr(text, needle) != NULL, "records:\n%s", text);
	free(needle);
	free(text);
	free(out);
	free(err);

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

/* Whether the upstream really completes a TLS 1.0 handshake (else mode tls10 proves
 * nothing and is left out, with a note). */
static bool tls10_offered(void)
{
	char *port_arg = strf("%u", up_port);
	const char *argv[] = {"python3", HOSTILE_PY, "--probe-tls10", port_arg, NULL};
	bool ok;

	up_mode("tls10");
	ok = run(argv, NULL, NULL, 10000) == 0;
	up_mode("ok");
	free(port_arg);
	if (!ok)
		fprintf(stderr,
		        "note: the local OpenSSL cannot offer TLS 1.0; mode tls10 skipped\n");
	return ok;
}

/* Switches the upstream to h->mode and waits for the failure to be logged. Returns the
 * log line. */
static char *provoke(const struct hostile *h, size_t from)
{
	char *url = url_of_provider();
	char *needle = strf("provider " PROVIDER ": fetch of %s failed: %s", url, h->reason);
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
	bool tls10 = tls10_offered();
	char *id_b = expected_id(POLICY_B_CANON), *needle;

	write_config(&o);
	srv_start();
	free(expect_log("policy changed, new id", 0, WAIT_MS));
	expect_served(CUSTOMER, POLICY_A_CANON);

	for (size_t i = 0; i < N_HOSTILE; i++) {
		const struct hostile *h = &hostile[i];
		unsigned conns = up_count("connections"), reqs = policy_requests();
		char *line;

		if (strcmp(h->mode, "tls10") == 0 && !tls10)
			continue;
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
	needle = strf("provider " PROVIDER ": policy changed, new id %s", id_b);
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
	bool tls10 = tls10_offered();
	char *out = strf("%s/check.out", work), *err = strf("%s/check.err", work), *text;

	up_mode(hostile[0].mode);
	write_config(&o);
	ck_assert_int_eq(run(argv, out, err, 10000), 0);
	text = read_file(err, NULL);
	ck_assert_msg(text != NULL && strstr(text, warning) != NULL, "check said: %s", text);
	free(text);
	text = read_file(out, NULL);
	ck_assert_str_eq(text, "configuration OK\n");
	free(text);

	srv_start();
	free(expect_log(warning, 0, 1));
	for (size_t i = 0; i < N_HOSTILE; i++) {
		const struct hostile *h = &hostile[i];
		char *line;

		if (strcmp(h->mode, "tls10") == 0 && !tls10)
			continue;
		line = provoke(h, log_size());
		ck_assert_msg(strstr(line, "; no policy to serve (503)") != NULL, "%s: %s", h->mode,
		              line);
		expect_unavailable(CUSTOMER);
		free(line);
	}
	ck_assert_ptr_null(log_line("policy changed", 0));
	free(out);
	free(err);
}
END_TEST

/* SPEC case 36: the refetch is driven by the provider's _mta-sts id, and the new body is
 * announced with its new id (case 37), to the log and the hook. */
START_TEST(txt_id_change_refetches)
{
	struct opts o = {.refresh = 3600, .dns_poll = 1, .retry = 1, .hook = true};
	char *id_a = expected_id(POLICY_A_CANON), *id_b = expected_id(POLICY_B_CANON);
	char *needle, *text;
	size_t from;

	write_config(&o);
	srv_start();
	needle = strf("policy changed, new id %s", id_a);
	free(expect_log(needle, 0, WAIT_MS));
	free(needle);
	expect_served(CUSTOMER, POLICY_A_CANON);
	ck_assert_uint_eq(policy_requests(), 1);

	/* A new body without a new id is not looked at (the refresh is an hour away). */
	up_policy(POLICY_B);
	sleep_ms(2500);
	ck_assert_uint_eq(policy_requests(), 1);
	expect_served(CUSTOMER, POLICY_A_CANON);

	from = log_size();
	dns_start("bbbb2222");
	free(expect_log("provider " PROVIDER ": _mta-sts id changed aaaa1111 -> bbbb2222", from,
	                WAIT_MS));
	needle = strf("provider " PROVIDER ": policy changed, new id %s", id_b);
	free(expect_log(needle, from, WAIT_MS));
	free(needle);
	needle = strf(CUSTOMER ": id changed to %s; publish: _mta-sts." CUSTOMER
	                       ". 3600 IN TXT \"v=STSv1; id=%s\"",
	              id_b, id_b);
	free(expect_log(needle, from, WAIT_MS));
	free(needle);
	ck_assert_uint_eq(policy_requests(), 2);
	expect_served(CUSTOMER, POLICY_B_CANON);

	for (long long deadline = now_ms() + WAIT_MS; now_ms() < deadline; sleep_ms(50)) {
		text = hook_output();
		if (strchr(text, '\n') != NULL && strchr(text, '\n')[1] != 0)
			break;
		free(text);
	}
	needle = strf(CUSTOMER " %s\n" CUSTOMER " %s\n", id_a, id_b);
	ck_assert_str_eq(text, needle);
	free(needle);
	free(text);
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
	needle = strf("provider " PROVIDER ": fetch of %s failed: HTTP status 500", url);
	free(expect_log(needle, from, WAIT_MS));
	ck_assert_uint_eq(policy_requests(), 2);
	/* Five DNS polls see the same new id: no new attempt before 30 s. */
	sleep_ms(5000);
	ck_assert_msg(policy_requests() == 2,
	              "%u fetches within 5 s of a failure with "
	              "upstream_retry = 30",
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
	char *id = expected_id(POLICY_A_CANON), *needle;
	long long first;
	unsigned n;

	write_config(&o);
	srv_start();
	needle = strf("provider " PROVIDER ": policy changed, new id %s", id);
	free(expect_log(needle, 0, WAIT_MS));
	first = now_ms();
	free(needle);
	ck_assert_uint_eq(policy_requests(), 1);
	needle = strf("customer%u.test: id changed to %s", MANY, id);
	free(expect_log(needle, 0, WAIT_MS));
	free(needle);

	expect_served("customer1.test", POLICY_A_CANON);
	expect_served("customer250.test", POLICY_A_CANON);
	expect_served("customer500.test", POLICY_A_CANON);

	/* A few refresh periods: one more fetch per period, not per customer. */
	while ((n = policy_requests()) < 3) {
		ck_assert_msg(now_ms() - first < 15000, "only %u fetches in 15 s", n);
		sleep_ms(100);
	}
	sleep_ms(1000);
	n = policy_requests();
	ck_assert_msg(n <= 2 + (unsigned)((now_ms() - first) / 1000 / o.refresh),
	              "%u fetches in %lld ms with upstream_refresh = %u", n, now_ms() - first,
	              o.refresh);
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
	ck_assert_int_eq(stop(&srv_pid, SIGTERM), 0);
	stop(&up_pid, SIGKILL);

	from = log_size();
	t = now_ms();
	srv_start();
	expect_served(CUSTOMER, POLICY_A_CANON);
	ck_assert_msg(now_ms() - t < 3000, "took %lld ms", now_ms() - t);
	line = log_line("no valid copy", from);
	ck_assert_msg(line == NULL, "%s", line);

	/* The provider is down: the fetch fails and the copy stays. */
	needle = strf("provider " PROVIDER ": fetch of %s failed: ", url);
	line = expect_log(needle, from, WAIT_MS);
	ck_assert_msg(strstr(line, "; keeping the last good copy") != NULL, "%s", line);
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
	char *path = strf("%s/state/" PROVIDER ".policy", work);

	write_config(&o);
	write_file(path, "mtastsd-upstream-cache 1\nfetched 1\n\nversion: STSv1\nmode: bogus\n");
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
	char *id = expected_id(POLICY_SHORT_CANON), *url = url_of_provider(), *needle, *line;
	long long t;

	up_policy(POLICY_SHORT);
	write_config(&o);
	srv_start();
	needle = strf("policy changed, new id %s", id);
	free(expect_log(needle, 0, WAIT_MS));
	free(needle);
	expect_served(CUSTOMER, POLICY_SHORT_CANON);

	stop(&up_pid, SIGKILL);
	t = now_ms();
	expect_served(CUSTOMER, POLICY_SHORT_CANON);
	/* Refetched every max_age/2 = 1 s, so the copy is at most ~1 s old when the upstream
	 * dies: 503 between 1 and 5 s later, never a policy afterwards. */
	wait_status(CUSTOMER, 503, 8000);
	ck_assert_msg(now_ms() - t >= 1000, "expired after %lld ms only", now_ms() - t);
	ck_assert_msg(now_ms() - t <= 5500, "expired after %lld ms", now_ms() - t);
	expect_unavailable(CUSTOMER);
	sleep_ms(1200);
	expect_unavailable(CUSTOMER);
	/* And the log no longer claims to keep it. */
	needle = strf("provider " PROVIDER ": fetch of %s failed: ", url);
	line = expect_log(needle, log_size(), WAIT_MS);
	ck_assert_msg(strstr(line, "; the last good copy is past its max_age (503)") != NULL, "%s",
	              line);
	free(line);
	free(needle);
	free(url);
	free(id);
}
END_TEST

/* ---- suite ------------------------------------------------------------------------------ */

static int sh(const char *const argv[])
{
	char *out = strf("%s/setup.log", top);
	int r = run(argv, out, out, 120000);

	if (r != 0) {
		char *text = read_file(out, NULL);

		fprintf(stderr, "%s failed (%d):\n%s", argv[0], r, text ? text : "");
		free(text);
	}
	free(out);
	return r;
}

/* Leaves naming mta-sts.customer1..MANY.test, PER_LEAF names each (certtool takes at
 * most 128 per template), signed by our intermediate: the certs directory of the fan-in
 * test. make-certs.sh makes one name per leaf; MANY of those would test certtool's speed,
 * not the proxy. */
#define PER_LEAF 100

static int make_many_leaf(unsigned first)
{
	char *key = strf("%s/many%u.key", many_dir, first), *tmpl = strf("%s/many.tmpl", top);
	char *leaf = strf("%s/many.leaf", top), *crt = strf("%s/many%u.crt", many_dir, first);
	char *ica = strf("%s/intermediate.crt", pki_customer);
	char *ikey = strf("%s/intermediate.key", pki_customer);
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

	if (sh(genkey) != 0 || chmod(key, 0600) < 0 || (f = fopen(tmpl, "w")) == NULL)
		goto out;
	fprintf(f,
	        "cn = \"mta-sts.customer%u.test\"\nexpiration_days = 30\n"
	        "tls_www_server\nsigning_key\nencryption_key\n",
	        first);
	for (unsigned i = first; i < first + PER_LEAF && i <= MANY; i++)
		fprintf(f, "dns_name = \"mta-sts.customer%u.test\"\n", i);
	if (fclose(f) != 0 || sh(gencrt) != 0)
		goto out;
	chain = read_file(leaf, NULL);
	inter = read_file(ica, NULL);
	if (chain == NULL || inter == NULL)
		goto out;
	both = strf("%s%s", chain, inter);
	write_file(crt, both);
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

	if (sh(p) != 0 || sh(u) != 0 || sh(c) != 0 || mkdir(many_dir, 0700) < 0)
		return -1;
	for (unsigned first = 1; first <= MANY; first += PER_LEAF)
		if (make_many_leaf(first) < 0)
			return -1;
	return 0;
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
	const char *tmpdir = getenv("TMPDIR");
	char *base = strf("%s/mtastsd-upstream-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
	SRunner *r;
	int failed;

	for (size_t i = 0; i < sizeof(tools) / sizeof(tools[0]); i++) {
		if (!have_tool(tools[i])) {
			fprintf(stderr, "SKIP: %s not found\n", tools[i]);
			return SKIP;
		}
	}
	if ((top = mkdtemp(base)) == NULL) {
		perror("mkdtemp");
		return EXIT_FAILURE;
	}
	pki_provider = strf("%s/pki-provider", top);
	pki_untrusted = strf("%s/pki-untrusted", top);
	pki_customer = strf("%s/pki-customer", top);
	many_dir = strf("%s/many", top);
	if (make_certs() < 0) {
		rm_rf(top);
		return EXIT_FAILURE;
	}

	r = srunner_create(suite());
	srunner_run_all(r, CK_NORMAL);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	reap_leftovers();
	if (failed == 0 || getenv("KEEP_TEST_DIR") == NULL)
		rm_rf(top);
	else
		fprintf(stderr, "kept %s\n", top);
	free(pki_provider);
	free(pki_untrusted);
	free(pki_customer);
	free(many_dir);
	free(base);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
