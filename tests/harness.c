/* harness: temp files, free ports, processes, curl, a raw TLS client and the fixtures the
 * integration tests share */
#include "harness.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <gnutls/gnutls.h>

extern char **environ;

static void die(const char *what)
{
	fprintf(stderr, "harness: %s: %s\n", what, strerror(errno));
	abort();
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		die("malloc");
	return p;
}

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (q == NULL)
		die("realloc");
	return q;
}

static char *xstrdup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL)
		die("strdup");
	return p;
}

char *h_strf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		die("vasprintf");
	return s;
}

long long h_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool h_contains(const char *hay, const char *needle)
{
	return hay != NULL && strstr(hay, needle) != NULL;
}

bool h_sanitizer_report(const char *text)
{
	return h_contains(text, "Sanitizer") || h_contains(text, "runtime error:");
}

char *h_without_access(const char *text)
{
	char *out = h_strf("%s", ""), *joined;

	for (const char *p = text; p != NULL && *p != '\0';) {
		const char *eol = strchr(p, '\n');
		int len = (int)(eol ? eol - p : (long)strlen(p));

		if (strncmp(p, "access: ", 8) != 0) {
			joined = h_strf("%s%.*s\n", out, len, p);
			free(out);
			out = joined;
		}
		p = eol ? eol + 1 : NULL;
	}
	return out;
}

char *h_header(const char *block, const char *name, int *ret_count)
{
	size_t nlen = strlen(name);
	char *value = NULL;
	int count = 0;

	for (const char *p = block; p != NULL && *p != '\0';) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);

		if (len > nlen && strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
			const char *s = p + nlen + 1, *e = p + len;

			while (s < e && (*s == ' ' || *s == '\t'))
				s++;
			while (e > s && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
				e--;
			free(value);
			value = h_strf("%.*s", (int)(e - s), s);
			count++;
		}
		p = eol ? eol + 1 : NULL;
	}
	if (ret_count != NULL)
		*ret_count = count;
	return value;
}

unsigned h_add_line(struct h_lines *l, const char *fmt, ...)
{
	va_list ap;
	char *line, *joined;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&line, fmt, ap);
	va_end(ap);
	if (n < 0)
		die("vasprintf");
	joined = h_strf("%s%s\n", l->text ? l->text : "", line);
	free(line);
	free(l->text);
	l->text = joined;
	return ++l->n;
}

/* A growable byte string local to this file. */
struct bytes {
	char *p;
	size_t len;
	size_t cap;
};

static void bytes_add(struct bytes *b, const void *data, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;

		while (cap < b->len + n + 1)
			cap *= 2;
		b->p = xrealloc(b->p, cap);
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static char *bytes_steal(struct bytes *b, size_t *ret_len)
{
	char *p;

	if (b->p == NULL)
		bytes_add(b, "", 0);
	p = b->p;
	if (ret_len != NULL)
		*ret_len = b->len;
	b->p = NULL;
	b->len = b->cap = 0;
	return p;
}

char *h_read_file(const char *path, size_t *ret_len)
{
	struct bytes b = {0};
	char chunk[8192];
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			close(fd);
			free(b.p);
			return NULL;
		}
		bytes_add(&b, chunk, (size_t)n);
	}
	close(fd);
	return bytes_steal(&b, ret_len);
}

void h_write_file(const char *path, const char *data)
{
	char *tmp = h_strf("%s.tmp", path);
	size_t len = strlen(data);
	FILE *f;

	f = fopen(tmp, "we");
	if (f == NULL)
		die(tmp);
	if (fwrite(data, 1, len, f) != len || fclose(f) != 0)
		die(tmp);
	if (rename(tmp, path) != 0)
		die(path);
	free(tmp);
}

char *h_mkdtemp(const char *tag)
{
	const char *base = getenv("TMPDIR");
	char *dir;

	if (base == NULL || *base == '\0')
		base = "/tmp";
	dir = h_strf("%s/mtastsd-%s.XXXXXX", base, tag);
	if (mkdtemp(dir) == NULL)
		die("mkdtemp");
	return dir;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

void h_rm_rf(const char *path)
{
	if (path != NULL)
		nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

bool h_have_tool(const char *name)
{
	const char *path = getenv("PATH");
	char *copy, *dir, *save = NULL;
	bool found = false;

	if (path == NULL)
		path = "/usr/bin:/bin";
	copy = xstrdup(path);
	for (dir = strtok_r(copy, ":", &save); dir != NULL && !found;
	     dir = strtok_r(NULL, ":", &save)) {
		char *f = h_strf("%s/%s", dir, name);

		found = access(f, X_OK) == 0;
		free(f);
	}
	free(copy);
	return found;
}

unsigned h_free_port(void)
{
	for (int tries = 0; tries < 50; tries++) {
		struct sockaddr_in sa = {0};
		socklen_t len = sizeof(sa);
		int t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		unsigned port = 0;

		if (t < 0 || u < 0)
			die("socket");
		sa.sin_family = AF_INET;
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		/* the kernel's TCP port, then the same number for UDP */
		if (bind(t, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
		    getsockname(t, (struct sockaddr *)&sa, &len) != 0)
			die("bind 127.0.0.1:0");
		if (bind(u, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			port = ntohs(sa.sin_port);
		close(t);
		close(u);
		if (port != 0)
			return port;
	}
	errno = EADDRINUSE;
	die("no port free for TCP and UDP");
	return 0;
}

/* A heap copy of a const argv for posix_spawn's char *const[] (no casting away const). */
static char **argv_copy(const char *const argv[])
{
	size_t n = 0;
	char **v;

	while (argv[n] != NULL)
		n++;
	v = xmalloc((n + 1) * sizeof(*v));
	for (size_t i = 0; i < n; i++)
		v[i] = xstrdup(argv[i]);
	v[n] = NULL;
	return v;
}

static void argv_free(char **v)
{
	for (size_t i = 0; v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

static int status_code(int wstatus)
{
	if (WIFEXITED(wstatus))
		return WEXITSTATUS(wstatus);
	if (WIFSIGNALED(wstatus))
		return 128 + WTERMSIG(wstatus);
	return -1;
}

int run_cmd(struct run *r, const char *in, size_t in_len, bool keep_stdin_open, unsigned timeout_ms,
            const char *const argv[])
{
	posix_spawn_file_actions_t fa;
	int pin[2], pout[2], perr[2];
	struct bytes out = {0}, err = {0};
	long long deadline = h_now_ms() + timeout_ms;
	size_t in_off = 0;
	bool exited = false;
	int wstatus = 0;
	char **v;
	pid_t pid;
	int rc;

	memset(r, 0, sizeof(*r));
	r->status = -1;
	if (pipe2(pin, O_CLOEXEC) != 0 || pipe2(pout, O_CLOEXEC) != 0 ||
	    pipe2(perr, O_CLOEXEC) != 0)
		die("pipe2");
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pin[0], 0);
	posix_spawn_file_actions_adddup2(&fa, pout[1], 1);
	posix_spawn_file_actions_adddup2(&fa, perr[1], 2);
	v = argv_copy(argv);
	rc = posix_spawnp(&pid, v[0], &fa, NULL, v, environ);
	argv_free(v);
	posix_spawn_file_actions_destroy(&fa);
	close(pin[0]);
	close(pout[1]);
	close(perr[1]);
	if (rc != 0) {
		close(pin[1]);
		close(pout[0]);
		close(perr[0]);
		errno = rc;
		return -1;
	}
	if (in == NULL || in_len == 0) {
		if (!keep_stdin_open) {
			close(pin[1]);
			pin[1] = -1;
		}
	} else {
		fcntl(pin[1], F_SETFL, O_NONBLOCK);
	}

	/* Feed stdin and drain both outputs until the child closes them and exits. */
	while (pout[0] >= 0 || perr[0] >= 0 || !exited) {
		struct pollfd pf[3];
		nfds_t n = 0;
		long long left = deadline - h_now_ms();
		int sin = -1, sout = -1, serr = -1;

		if (left <= 0) {
			r->timed_out = true;
			kill(pid, SIGKILL);
			break;
		}
		if (pin[1] >= 0 && in_off < in_len) {
			pf[n] = (struct pollfd){.fd = pin[1], .events = POLLOUT};
			sin = (int)n++;
		}
		if (pout[0] >= 0) {
			pf[n] = (struct pollfd){.fd = pout[0], .events = POLLIN};
			sout = (int)n++;
		}
		if (perr[0] >= 0) {
			pf[n] = (struct pollfd){.fd = perr[0], .events = POLLIN};
			serr = (int)n++;
		}
		if (poll(pf, n, left < 50 ? (int)left : 50) < 0 && errno != EINTR)
			die("poll");
		if (sin >= 0 && pf[sin].revents != 0) {
			ssize_t w = write(pin[1], in + in_off, in_len - in_off);

			if (w > 0)
				in_off += (size_t)w;
			if ((w < 0 && errno != EAGAIN && errno != EINTR) ||
			    (in_off == in_len && !keep_stdin_open)) {
				close(pin[1]);
				pin[1] = -1;
			}
		}
		for (int k = 0; k < 2; k++) {
			int slot = k == 0 ? sout : serr;
			int *fd = k == 0 ? &pout[0] : &perr[0];
			struct bytes *b = k == 0 ? &out : &err;
			char chunk[16384];
			ssize_t got;

			if (slot < 0 || pf[slot].revents == 0)
				continue;
			got = read(*fd, chunk, sizeof(chunk));
			if (got > 0) {
				bytes_add(b, chunk, (size_t)got);
			} else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
				close(*fd);
				*fd = -1;
			}
		}
		if (!exited && waitpid(pid, &wstatus, WNOHANG) == pid)
			exited = true;
	}
	if (pin[1] >= 0)
		close(pin[1]);
	if (pout[0] >= 0)
		close(pout[0]);
	if (perr[0] >= 0)
		close(perr[0]);
	if (!exited) {
		while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR)
			;
	}
	r->status = status_code(wstatus);
	r->out = bytes_steal(&out, &r->out_len);
	r->err = bytes_steal(&err, &r->err_len);
	return 0;
}

void run_finish(struct run *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

void h_run(struct run *r, const char *in, size_t in_len, const char *const argv[])
{
	ck_assert_msg(run_cmd(r, in, in_len, false, H_RUN_TIMEOUT_MS, argv) == 0, "cannot run %s",
	              argv[0]);
	ck_assert_msg(!r->timed_out, "%s %s timed out", argv[0], argv[1] ? argv[1] : "");
}

char *h_expected_id(const char *body)
{
	const char *const argv[] = {"sha256sum", NULL};
	struct run r;
	char *id;

	h_run(&r, body, strlen(body), argv);
	ck_assert_int_eq(r.status, 0);
	ck_assert_uint_ge(r.out_len, 64);
	for (size_t i = 0; i < 64; i++)
		ck_assert_msg(isxdigit((unsigned char)r.out[i]), "sha256sum: %s", r.out);
	id = h_strf("%.32s", r.out);
	run_finish(&r);
	return id;
}

/* The most extra arguments http_curl takes: 100 headers (-H NAME: VALUE) and a few more. */
#define CURL_MAX_EXTRA (2 * 100 + 8)

void http_curl(struct http *h, const char *dir, const char *url, const char *const extra[])
{
	char *hdrs = h_strf("%s/curl.headers", dir);
	char *body = h_strf("%s/curl.body", dir);
	const char *argv[16 + CURL_MAX_EXTRA + 2];
	size_t n = 0;
	struct run r;

	unlink(hdrs);
	unlink(body);
	argv[n++] = "curl";
	argv[n++] = "-sS";
	argv[n++] = "--noproxy";
	argv[n++] = "*";
	argv[n++] = "--max-time";
	argv[n++] = "15";
	argv[n++] = "-D";
	argv[n++] = hdrs;
	argv[n++] = "-o";
	argv[n++] = body;
	argv[n++] = "-w";
	argv[n++] = "%{http_code} %{time_total}";
	for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
		ck_assert_uint_lt(n, sizeof(argv) / sizeof(argv[0]) - 2);
		argv[n++] = extra[i];
	}
	argv[n++] = url;
	argv[n] = NULL;

	memset(h, 0, sizeof(*h));
	h_run(&r, NULL, 0, argv);
	h->curl_rc = r.status;
	if (sscanf(r.out, "%d %lf", &h->code, &h->seconds) != 2)
		h->code = 0;
	h->headers = h_read_file(hdrs, NULL);
	if (h->headers == NULL)
		h->headers = h_strf("%s", "");
	h->body = h_read_file(body, &h->body_len);
	if (h->body == NULL)
		h->body = h_strf("%s", "");
	h->err = r.err;
	r.err = NULL;
	run_finish(&r);
	free(hdrs);
	free(body);
}

void http_curl_tls(struct http *h, const char *dir, const char *ca, const char *host, unsigned port,
                   const char *path, const char *const extra[])
{
	char *resolve = h_strf("%s:%u:127.0.0.1", host, port);
	char *url = h_strf("https://%s:%u%s", host, port, path);
	const char *args[CURL_MAX_EXTRA + 1] = {"--path-as-is", "--cacert", ca, "--resolve",
	                                        resolve};
	size_t n = 5;

	for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
		ck_assert_uint_lt(n, CURL_MAX_EXTRA);
		args[n++] = extra[i];
	}
	args[n] = NULL;
	http_curl(h, dir, url, args);
	free(resolve);
	free(url);
}

void http_finish(struct http *h)
{
	free(h->headers);
	free(h->body);
	free(h->err);
	memset(h, 0, sizeof(*h));
}

/* Every server and helper started and not yet reaped, for the atexit guard. */
#define MAX_CHILDREN 16
static pid_t live_children[MAX_CHILDREN];
static bool guard_registered;

static void track(pid_t pid, bool add)
{
	if (add && !guard_registered) {
		atexit(server_kill_all);
		guard_registered = true;
	}
	for (size_t i = 0; i < MAX_CHILDREN; i++) {
		if (add && live_children[i] == 0) {
			live_children[i] = pid;
			return;
		}
		if (!add && live_children[i] == pid) {
			live_children[i] = 0;
			return;
		}
	}
	if (add) {
		fprintf(stderr, "harness: more than %d servers and helpers\n", MAX_CHILDREN);
		kill(pid, SIGKILL);
		abort();
	}
}

void server_kill_all(void)
{
	for (size_t i = 0; i < MAX_CHILDREN; i++) {
		if (live_children[i] > 0) {
			kill(live_children[i], SIGKILL);
			waitpid(live_children[i], NULL, 0);
			live_children[i] = 0;
		}
	}
}

int server_start(struct server *s, const char *bin, const char *conf, const char *log)
{
	const char *const argv[] = {bin, "serve", "-c", conf, NULL};
	posix_spawn_file_actions_t fa;
	char **v;
	int rc;

	memset(s, 0, sizeof(*s));
	s->status = -1;
	s->log = xstrdup(log);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	posix_spawn_file_actions_adddup2(&fa, 2, 1);
	v = argv_copy(argv);
	rc = posix_spawn(&s->pid, bin, &fa, NULL, v, environ);
	argv_free(v);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		s->pid = 0;
		errno = rc;
		return -1;
	}
	track(s->pid, true);
	return 0;
}

size_t server_log_size(const struct server *s)
{
	struct stat st;

	return stat(s->log, &st) == 0 ? (size_t)st.st_size : 0;
}

/* Reaps s if it exited; true while it runs. */
static bool server_alive(struct server *s)
{
	int wstatus;

	if (s->pid <= 0)
		return false;
	if (waitpid(s->pid, &wstatus, WNOHANG) != s->pid)
		return true;
	track(s->pid, false);
	s->pid = 0;
	s->status = status_code(wstatus);
	return false;
}

bool server_running(struct server *s)
{
	return server_alive(s);
}

long server_wait_log(struct server *s, const char *needle, size_t from, unsigned timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;

	for (;;) {
		size_t len;
		char *text = h_read_file(s->log, &len);
		bool alive = server_alive(s);

		if (text != NULL && from <= len) {
			char *hit = strstr(text + from, needle);

			if (hit != NULL) {
				long end = (long)(hit - text) + (long)strlen(needle);

				free(text);
				return end;
			}
		}
		free(text);
		if (!alive || h_now_ms() > deadline)
			return -1;
		usleep(20 * 1000);
	}
}

long server_expect_log(struct server *s, const char *needle, size_t from, unsigned timeout_ms)
{
	long off = server_wait_log(s, needle, from, timeout_ms);

	if (off < 0) {
		size_t len;
		char *text = h_read_file(s->log, &len);
		char *tail = h_without_access(text != NULL && from <= len ? text + from : NULL);

		ck_abort_msg("no '%s' in the log within %u ms%s; log since:\n%s", needle,
		             timeout_ms, server_running(s) ? "" : " (mtastsd exited)", tail);
	}
	return off;
}

char *server_log_line(const struct server *s, const char *needle, size_t from)
{
	size_t len;
	char *text = h_read_file(s->log, &len), *hit, *line = NULL;

	if (text != NULL && from <= len && (hit = strstr(text + from, needle)) != NULL) {
		char *start = hit, *end = strchr(hit, '\n');

		while (start > text + from && start[-1] != '\n')
			start--;
		line = h_strf("%.*s", (int)(end ? end - start : (long)strlen(start)), start);
	}
	free(text);
	return line;
}

int server_stop(struct server *s, int sig, unsigned timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;

	if (!server_alive(s))
		return s->status;
	kill(s->pid, sig);
	while (server_alive(s)) {
		if (h_now_ms() > deadline) {
			kill(s->pid, SIGKILL);
			while (server_alive(s))
				usleep(10 * 1000);
			return -1;
		}
		usleep(10 * 1000);
	}
	return s->status;
}

void server_finish(struct server *s)
{
	server_stop(s, SIGTERM, 5000);
	free(s->log);
	s->log = NULL;
}

long server_start_ready(struct server *s, const char *bin, const char *conf, const char *dir)
{
	char *log = h_strf("%s/mtastsd.log", dir);
	long off;

	ck_assert_msg(server_start(s, bin, conf, log) == 0, "cannot start %s", bin);
	off = server_wait_log(s, "mtastsd: ready", 0, H_READY_TIMEOUT_MS);
	if (off < 0) {
		char *text = h_read_file(log, NULL);

		ck_abort_msg("mtastsd did not log ready (exit %d); log:\n%s", s->status,
		             text ? text : "(none)");
	}
	free(log);
	return off;
}

void server_stop_clean(struct server *s)
{
	int status = server_stop(s, SIGTERM, H_STOP_TIMEOUT_MS);
	char *text = h_read_file(s->log, NULL);
	char *log = h_without_access(text);

	ck_assert_msg(status == 0, "exit %d after SIGTERM, want 0%s; log:\n%s", status,
	              status == -1 ? " (killed: no exit within the time limit)" : "", log);
	ck_assert_msg(!h_sanitizer_report(text), "sanitizer report in the log:\n%s", log);
	free(log);
	free(text);
}

void server_end(struct server *s, bool expect_exit)
{
	char *text, *log;

	if (s->log == NULL)
		return; /* no server was started */
	if (server_running(s)) {
		server_stop_clean(s);
		return;
	}
	text = h_read_file(s->log, NULL);
	log = h_without_access(text);
	ck_assert_msg(expect_exit, "mtastsd died during the test (exit %d); log:\n%s", s->status,
	              log);
	ck_assert_msg(!h_sanitizer_report(text), "sanitizer report in the log:\n%s", log);
	free(log);
	free(text);
}

char *h_test_dir(const char *suite_dir)
{
	char *dir = h_strf("%s/test.XXXXXX", suite_dir);

	ck_assert_ptr_nonnull(mkdtemp(dir));
	return dir;
}

void h_test_cleanup(struct server *s, char **dir, char **conf)
{
	server_finish(s);
	h_rm_rf(*dir);
	free(*dir);
	free(*conf);
	*dir = *conf = NULL;
}

pid_t h_spawn(const char *const argv[], const char *out)
{
	pid_t parent = getpid(), pid;

	fflush(NULL);
	pid = fork();
	ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		int fd = open(out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		int null = open("/dev/null", O_RDONLY | O_CLOEXEC);

		/* after PR_SET_PDEATHSIG: the parent may have died just before */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent || fd < 0 ||
		    null < 0 || dup2(null, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(127);
		execvp(argv[0], argv_copy(argv));
		_exit(127);
	}
	track(pid, true);
	return pid;
}

bool h_running(pid_t *pid)
{
	if (*pid <= 0)
		return false;
	if (waitpid(*pid, NULL, WNOHANG) != *pid)
		return true;
	track(*pid, false);
	*pid = 0;
	return false;
}

int h_stop(pid_t *pid, int sig)
{
	long long deadline = h_now_ms() + 5000;
	int wstatus = 0;

	if (*pid <= 0)
		return -1;
	kill(*pid, sig);
	while (waitpid(*pid, &wstatus, WNOHANG) != *pid) {
		if (h_now_ms() > deadline) {
			kill(*pid, SIGKILL);
			while (waitpid(*pid, &wstatus, 0) < 0 && errno == EINTR)
				;
			break;
		}
		usleep(10 * 1000);
	}
	track(*pid, false);
	*pid = 0;
	return status_code(wstatus);
}

/* Waits until fd is readable (or writable) or the deadline passes; false on timeout. */
static bool wait_fd(int fd, short events, long long deadline)
{
	for (;;) {
		struct pollfd pf = {.fd = fd, .events = events};
		long long left = deadline - h_now_ms();
		int n;

		if (left <= 0)
			return false;
		n = poll(&pf, 1, (int)left);
		if (n > 0)
			return true;
		if (n < 0 && errno != EINTR)
			return false;
	}
}

int tls_exchange(struct tls_exchange *x, unsigned port, const char *sni, const char *request,
                 unsigned timeout_ms)
{
	return tls_exchange_n(x, port, sni, request, strlen(request), timeout_ms);
}

int tls_exchange_n(struct tls_exchange *x, unsigned port, const char *sni, const char *request,
                   size_t request_len, unsigned timeout_ms)
{
	gnutls_certificate_credentials_t cred = NULL;
	gnutls_session_t session = NULL;
	struct sockaddr_in sa = {0};
	struct bytes resp = {0};
	long long deadline = h_now_ms() + timeout_ms;
	long long sent_at;
	int fd, rc;

	memset(x, 0, sizeof(*x));
	x->alert = -1;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		die("socket");
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	if (!wait_fd(fd, POLLOUT, deadline)) {
		close(fd);
		return -1;
	}

	if (gnutls_certificate_allocate_credentials(&cred) != 0 ||
	    gnutls_init(&session, GNUTLS_CLIENT | GNUTLS_NONBLOCK) != 0)
		die("gnutls_init");
	gnutls_set_default_priority(session);
	gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, cred);
	if (sni != NULL)
		gnutls_server_name_set(session, GNUTLS_NAME_DNS, sni, strlen(sni));
	gnutls_transport_set_int(session, fd);

	do {
		rc = gnutls_handshake(session);
		if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED) {
			short ev = gnutls_record_get_direction(session) ? POLLOUT : POLLIN;

			if (!wait_fd(fd, ev, deadline))
				break;
		}
	} while (rc < 0 && gnutls_error_is_fatal(rc) == 0);
	if (rc == GNUTLS_E_FATAL_ALERT_RECEIVED || rc == GNUTLS_E_WARNING_ALERT_RECEIVED)
		x->alert = (int)gnutls_alert_get(session);
	x->handshake = rc;
	sent_at = h_now_ms();
	if (rc == 0) {
		size_t off = 0, len = request_len;

		while (off < len) {
			ssize_t w = gnutls_record_send(session, request + off, len - off);

			if (w > 0) {
				off += (size_t)w;
			} else if (w == GNUTLS_E_AGAIN || w == GNUTLS_E_INTERRUPTED) {
				if (!wait_fd(fd, POLLOUT, deadline))
					break;
			} else {
				break;
			}
		}
		sent_at = h_now_ms();
		for (;;) {
			char chunk[16384];
			ssize_t got;

			if (gnutls_record_check_pending(session) == 0 &&
			    !wait_fd(fd, POLLIN, deadline))
				break;
			got = gnutls_record_recv(session, chunk, sizeof(chunk));
			if (got > 0) {
				bytes_add(&resp, chunk, (size_t)got);
			} else if (got == GNUTLS_E_AGAIN || got == GNUTLS_E_INTERRUPTED) {
				continue;
			} else {
				/* 0 is close_notify; an unclean TCP close is a close all the same
				 */
				if (got == GNUTLS_E_FATAL_ALERT_RECEIVED)
					x->alert = (int)gnutls_alert_get(session);
				x->peer_closed = true;
				break;
			}
		}
	}
	x->elapsed_ms = h_now_ms() - sent_at;
	x->response = bytes_steal(&resp, &x->response_len);
	gnutls_deinit(session);
	gnutls_certificate_free_credentials(cred);
	close(fd);
	return 0;
}

void tls_exchange_finish(struct tls_exchange *x)
{
	free(x->response);
	x->response = NULL;
}

bool h_have_tools(const char *const tools[], size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!h_have_tool(tools[i])) {
			fprintf(stderr, "SKIP: %s not found\n", tools[i]);
			return false;
		}
	}
	return true;
}

bool h_executable(const char *bin)
{
	if (access(bin, X_OK) == 0)
		return true;
	fprintf(stderr, "%s: not executable\n", bin);
	return false;
}

int h_make_certs(const char *const argv[])
{
	struct run r;
	int ret = 0;

	if (run_cmd(&r, NULL, 0, false, 120000, argv) != 0 || r.status != 0) {
		fprintf(stderr, "%s %s failed (%d):\n%s%s\n", argv[0], argv[1] ? argv[1] : "",
		        r.status, r.out ? r.out : "", r.err ? r.err : "");
		ret = -1;
	}
	run_finish(&r);
	return ret;
}

int h_run_suite(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
