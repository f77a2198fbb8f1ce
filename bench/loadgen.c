/* loadgen - epoll HTTPS load generator for MTA-STS policy servers (OpenSSL client). */
/*
 * Every request goes to a random domain of the manifest (written by gencerts):
 * SNI and Host are that domain's mta-sts host, the request is
 * GET /.well-known/mta-sts.txt, and the response must be 200 with a text/plain
 * Content-Type and exactly the expected policy body.  The server chain is
 * verified against the bench root CA and the host name is checked.
 *
 * Modes (-M):
 *   full       new TCP + TLS connection per request ("Connection: close"),
 *              TLS 1.3, no session ever offered: every handshake is a full one
 *   full12     the same with TLS 1.2 only (ECDHE-ECDSA)
 *   resume     new connection per request offering a TLS 1.3 ticket obtained
 *              earlier for the same domain (each ticket used once, up to 4 kept
 *              per domain); domains come from a pool of -r domains spread
 *              evenly over the manifest so that tickets get reused.  The
 *              warmup visits every pool domain once (and lasts until it has)
 *   resume12   the same with TLS 1.2 (session ticket / id, reusable)
 *   keepalive  persistent connections (random domain per connection),
 *              sequential requests, no pipelining
 *
 * Handshakes are counted as full or resumed (SSL_session_reused), and in the
 * resume modes split into "offered but rejected" and "nothing to offer".
 *
 * The run has a warmup (-w) and a measured window (-d).  Over the window only,
 * it counts requests, errors, handshakes and latencies, and reads the CPU time
 * (utime + stime + cutime + cstime from /proc/PID/stat, which covers all
 * threads and reaped children) of the server process -P and all its
 * descendants, its own CPU time (getrusage) and the machine's busy time
 * (/proc/stat): "other_load_cores" is the machine's user + system time not
 * spent by the server or loadgen (other work running), "softirq_cores" the
 * interrupt time (mostly loopback TCP, charged to no process).
 *
 * With --idle N it first opens N more TLS connections (full handshakes, random
 * domains), each from a source address of 127.1.0.0/16 (--idle-per-addr per
 * address, so that a per-address limit of the server does not refuse them),
 * and keeps them open and silent for the whole run: the cost of idle
 * connections.  The JSON says how many were established and how many the
 * server had closed by the end of the window.
 *
 * With --hup SEC it sends SIGHUP to the server every SEC seconds during the
 * window (reload under load).  SIGINT or SIGTERM end the window early
 * (bench/run does this to keep the load going until a reload has completed).
 *
 * Output: one JSON object on stdout.  Exit status 0 when the run completed
 * (request errors are in the JSON), 1 on setup failure, 2 on usage errors.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

enum mode { M_FULL, M_FULL12, M_RESUME, M_RESUME12, M_KEEPALIVE };
static const char *const mode_names[] = {"full", "full12", "resume", "resume12", "keepalive"};

enum state { S_IDLE, S_CONNECTING, S_HANDSHAKE, S_WRITING, S_READING };

enum err {
	E_CONNECT, /* connect() failed */
	E_TLS,     /* handshake failed (not a verification error) */
	E_VERIFY,  /* certificate chain or host name rejected */
	E_IO,      /* TLS/socket error after the handshake */
	E_EOF,     /* connection closed before the response was complete */
	E_STATUS,  /* status not 200 */
	E_HEADER,  /* unparsable response, missing/wrong Content-Type */
	E_BODY,    /* body differs from the expected policy */
	E_TIMEOUT, /* no progress for --timeout seconds */
	E_VERSION, /* negotiated TLS version is not the one the mode asks for */
	E_COUNT
};
static const char *const err_names[E_COUNT] = {
    "err_connect", "err_tls",    "err_verify", "err_io",      "err_eof",
    "err_status",  "err_header", "err_body",   "err_timeout", "err_version",
};

#define TICKETS_PER_DOMAIN 4
#define BUF_SIZE 8192

struct domain {
	char *host;
	char *body;
	size_t body_len;
	/* resume modes: sessions obtained for this domain */
	SSL_SESSION *sess[TICKETS_PER_DOMAIN];
	int nsess;
};

struct conn {
	int fd;
	SSL *ssl;
	enum state state;
	uint32_t events;
	struct domain *dom;
	int offered;       /* a session was offered on this connection */
	int nreq;          /* requests completed on this connection */
	uint64_t t_start;  /* connect start (handshake modes) / request start */
	uint64_t t_act;    /* last progress, for the timeout */
	uint64_t retry_at; /* S_IDLE: when to reconnect */
	size_t req_len, req_off;
	char req[384];
	size_t buf_len;
	char buf[BUF_SIZE];
};

struct stats {
	uint64_t requests;
	uint64_t err[E_COUNT];
	uint64_t ka_closed; /* idle keep-alive connection closed by server: retried */
	uint64_t connections;
	uint64_t hs_full, hs_resumed, hs_rejected, hs_none;
	uint64_t tls12, tls13;
};

/* ---- options ---- */
static const char *o_manifest, *o_cafile;
static const char *o_host = "127.0.0.1";
static int o_port = 8443;
static enum mode o_mode = M_FULL;
static int o_conns = 32;
static double o_duration = 5, o_warmup = 1, o_timeout = 10, o_hup;
static long o_pid;
static long o_pool = 1000;
static long o_ka_reqs;
static unsigned long long o_seed;
static long o_idle, o_idle_per_addr = 200;

/* ---- state ---- */
static struct domain *g_dom;
static size_t g_ndom;
static size_t *g_pool;
static size_t g_npool;
static SSL_CTX *g_ctx;
static int g_ep;
static struct conn *g_conns;
static struct stats g_st;
static int g_counting;
static uint32_t *g_lat;
static size_t g_nlat, g_caplat;
static struct sockaddr_in g_addr;
static uint64_t g_rng;
static int g_ex_idx;
static volatile sig_atomic_t g_stop;
static int *g_idle_fd;
static SSL **g_idle_ssl;
static long g_idle_open, g_idle_failed, g_idle_closed;

static void on_stop(int sig)
{
	(void)sig;
	g_stop = 1;
}

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("loadgen: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	ERR_print_errors_fp(stderr);
	exit(1);
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t rnd(void)
{
	/* xorshift64* */
	g_rng ^= g_rng >> 12;
	g_rng ^= g_rng << 25;
	g_rng ^= g_rng >> 27;
	return g_rng * 2685821657736338717ULL;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		die("out of memory");
	return p;
}

/* ---- manifest ---- */

/* unescape \r \n \t \\ in place; returns the new length */
static size_t unescape(char *s)
{
	char *r = s, *w = s;

	while (*r) {
		if (r[0] == '\\' && r[1]) {
			switch (r[1]) {
			case 'r':
				*w++ = '\r';
				break;
			case 'n':
				*w++ = '\n';
				break;
			case 't':
				*w++ = '\t';
				break;
			default:
				*w++ = r[1];
				break;
			}
			r += 2;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
	return (size_t)(w - s);
}

static void load_manifest(const char *path)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0, alloc = 0;
	ssize_t len;

	if (!f)
		die("open %s: %s", path, strerror(errno));
	while ((len = getline(&line, &cap, f)) > 0) {
		char *fld[5], *p = line, *save = NULL;
		int n = 0;

		if (line[len - 1] == '\n')
			line[len - 1] = '\0';
		for (char *t = strtok_r(p, "\t", &save); t && n < 5;
		     t = strtok_r(NULL, "\t", &save))
			fld[n++] = t;
		if (n < 5)
			die("%s: bad line %zu (want domain host cert key body)", path, g_ndom + 1);
		if (g_ndom == alloc) {
			alloc = alloc ? alloc * 2 : 1024;
			g_dom = realloc(g_dom, alloc * sizeof(*g_dom));
			if (!g_dom)
				die("out of memory");
		}
		memset(&g_dom[g_ndom], 0, sizeof(*g_dom));
		g_dom[g_ndom].host = strdup(fld[1]);
		g_dom[g_ndom].body = strdup(fld[4]);
		if (!g_dom[g_ndom].host || !g_dom[g_ndom].body)
			die("out of memory");
		g_dom[g_ndom].body_len = unescape(g_dom[g_ndom].body);
		g_ndom++;
	}
	free(line);
	fclose(f);
	if (g_ndom == 0)
		die("%s: no domains", path);
}

/* ---- /proc sampling ---- */

struct cpu_sample {
	double server_s; /* server process tree, seconds */
	int server_procs;
	double client_s; /* this process */
	double busy_s;   /* whole machine: user + nice + system seconds */
	double irq_s;    /* whole machine: irq + softirq seconds */
	uint64_t t;
};

struct pinfo {
	long pid, ppid;
	unsigned long long ticks;
};

/*
 * parse /proc/PID/stat: ppid and utime+stime+cutime+cstime.  The c* times are
 * those of exited (reaped) children, so a worker replaced during the window
 * (nginx reload) still counts, and nothing is counted twice.
 */
static int read_stat(long pid, struct pinfo *pi)
{
	char path[64], buf[1024], *p;
	unsigned long long ut = 0, st = 0, cut = 0, cst = 0;
	long ppid = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (!p)
		return -1;
	/* after ")": state ppid pgrp session tty tpgid flags minflt cminflt
	 * majflt cmajflt utime stime cutime cstime */
	if (sscanf(p + 1, " %*c %ld %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %llu %llu", &ppid,
	           &ut, &st, &cut, &cst) != 5)
		return -1;
	pi->pid = pid;
	pi->ppid = ppid;
	pi->ticks = ut + st + cut + cst;
	return 0;
}

/* CPU seconds of pid and all its descendants; *nprocs = tree size */
static double tree_cpu(long root, int *nprocs)
{
	struct pinfo *all = NULL;
	size_t n = 0, cap = 0, i;
	long *tree;
	size_t ntree = 0;
	unsigned long long ticks = 0;
	DIR *d;
	struct dirent *de;
	int grew;

	*nprocs = 0;
	if (root <= 0)
		return 0;
	d = opendir("/proc");
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char *end;
		long pid;
		struct pinfo pi;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		errno = 0;
		pid = strtol(de->d_name, &end, 10);
		if (errno || *end || read_stat(pid, &pi) != 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 512;
			all = realloc(all, cap * sizeof(*all));
			if (!all)
				die("out of memory");
		}
		all[n++] = pi;
	}
	closedir(d);
	tree = xmalloc((n + 1) * sizeof(*tree));
	/* the root, then repeatedly every process whose parent is in the tree */
	for (i = 0; i < n; i++)
		if (all[i].pid == root) {
			tree[ntree++] = root;
			ticks += all[i].ticks;
			all[i].pid = -1;
		}
	do {
		grew = 0;
		for (i = 0; i < n; i++) {
			if (all[i].pid < 0)
				continue;
			for (size_t j = 0; j < ntree; j++)
				if (all[i].ppid == tree[j]) {
					tree[ntree++] = all[i].pid;
					ticks += all[i].ticks;
					all[i].pid = -1;
					grew = 1;
					break;
				}
		}
	} while (grew);
	*nprocs = (int)ntree;
	free(tree);
	free(all);
	return (double)ticks / (double)sysconf(_SC_CLK_TCK);
}

/* machine-wide CPU seconds: *task = user+nice+system, *irq = irq+softirq */
static void machine_busy(double *task, double *irq)
{
	FILE *f = fopen("/proc/stat", "r");
	unsigned long long v[8] = {0};
	double hz = (double)sysconf(_SC_CLK_TCK);
	int n;

	*task = *irq = 0;
	if (!f)
		return;
	n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
	           &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	if (n != 8)
		return;
	/* user nice system idle iowait irq softirq steal */
	*task = (double)(v[0] + v[1] + v[2]) / hz;
	/* loopback packet processing runs largely in softirq, charged to no process */
	*irq = (double)(v[5] + v[6]) / hz;
}

static void sample(struct cpu_sample *s)
{
	struct rusage ru;

	s->t = now_us();
	s->server_s = tree_cpu(o_pid, &s->server_procs);
	getrusage(RUSAGE_SELF, &ru);
	s->client_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	              (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	machine_busy(&s->busy_s, &s->irq_s);
}

/* ---- TLS ---- */

static int is_resume_mode(void)
{
	return o_mode == M_RESUME || o_mode == M_RESUME12;
}

static int is_tls12_mode(void)
{
	return o_mode == M_FULL12 || o_mode == M_RESUME12;
}

static void sess_push(struct domain *d, SSL_SESSION *s)
{
	if (d->nsess == TICKETS_PER_DOMAIN) {
		SSL_SESSION_free(d->sess[0]);
		memmove(d->sess, d->sess + 1, (TICKETS_PER_DOMAIN - 1) * sizeof(d->sess[0]));
		d->nsess--;
	}
	d->sess[d->nsess++] = s;
}

/* OpenSSL hands us every new session / TLS 1.3 ticket here */
static int new_session_cb(SSL *ssl, SSL_SESSION *s)
{
	struct conn *c = SSL_get_ex_data(ssl, g_ex_idx);

	if (!c || !c->dom || !is_resume_mode())
		return 0;
	if (o_mode == M_RESUME12) {
		/* TLS 1.2 sessions can be resumed many times: keep the newest */
		while (c->dom->nsess > 0)
			SSL_SESSION_free(c->dom->sess[--c->dom->nsess]);
	}
	sess_push(c->dom, s);
	return 1; /* we keep the reference */
}

static void setup_tls(void)
{
	g_ctx = SSL_CTX_new(TLS_client_method());
	if (!g_ctx)
		die("SSL_CTX_new");
	if (!SSL_CTX_set_min_proto_version(g_ctx,
	                                   is_tls12_mode() ? TLS1_2_VERSION : TLS1_3_VERSION) ||
	    !SSL_CTX_set_max_proto_version(g_ctx,
	                                   is_tls12_mode() ? TLS1_2_VERSION : TLS1_3_VERSION))
		die("protocol version");
	if (o_mode == M_KEEPALIVE) {
		/* keep-alive: whatever the server picks (1.2 or 1.3) */
		if (!SSL_CTX_set_min_proto_version(g_ctx, TLS1_2_VERSION) ||
		    !SSL_CTX_set_max_proto_version(g_ctx, TLS1_3_VERSION))
			die("protocol version");
	}
	if (!SSL_CTX_set_cipher_list(g_ctx, "ECDHE-ECDSA-AES128-GCM-SHA256:"
	                                    "ECDHE-ECDSA-AES256-GCM-SHA384:"
	                                    "ECDHE-ECDSA-CHACHA20-POLY1305"))
		die("cipher list");
	if (!SSL_CTX_set1_groups_list(g_ctx, "X25519:P-256"))
		die("groups");
	if (!SSL_CTX_load_verify_locations(g_ctx, o_cafile, NULL))
		die("load CA %s", o_cafile);
	SSL_CTX_set_verify(g_ctx, SSL_VERIFY_PEER, NULL);
	if (is_resume_mode()) {
		SSL_CTX_set_session_cache_mode(g_ctx, SSL_SESS_CACHE_CLIENT |
		                                          SSL_SESS_CACHE_NO_INTERNAL_STORE);
		SSL_CTX_sess_set_new_cb(g_ctx, new_session_cb);
	} else {
		SSL_CTX_set_session_cache_mode(g_ctx, SSL_SESS_CACHE_OFF);
	}
	g_ex_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	if (g_ex_idx < 0)
		die("ex index");
}

/* ---- connections ---- */

static void set_events(struct conn *c, uint32_t ev)
{
	struct epoll_event e = {.events = ev, .data.ptr = c};

	if (c->events == ev)
		return;
	if (epoll_ctl(g_ep, c->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &e) != 0)
		die("epoll_ctl: %s", strerror(errno));
	c->events = ev;
}

static void conn_close(struct conn *c)
{
	if (c->ssl) {
		/* no close_notify; mark as shut down so the session stays usable */
		SSL_set_shutdown(c->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0) {
		close(c->fd); /* also removes it from the epoll set */
		c->fd = -1;
	}
	c->events = 0;
	c->state = S_IDLE;
}

static void fail(struct conn *c, enum err e)
{
	if (g_counting)
		g_st.err[e]++;
	ERR_clear_error();
	conn_close(c);
	c->retry_at = now_us() + 2000; /* do not spin on a dead server */
}

static size_t g_primed; /* resume modes: pool domains visited in the warmup */

/*
 * Resume modes: during the warmup visit every pool domain once, in order, so
 * that each has tickets; then pick random pool domains, preferring one with an
 * unused ticket (a domain's tickets can all be in flight on other connections).
 */
static struct domain *pick_domain(void)
{
	struct domain *d = NULL;
	int tries;

	if (!is_resume_mode())
		return &g_dom[rnd() % g_ndom];
	if (!g_counting && g_primed < g_npool)
		return &g_dom[g_pool[g_primed++]];
	for (tries = 0; tries < 8; tries++) {
		d = &g_dom[g_pool[rnd() % g_npool]];
		if (d->nsess > 0)
			break;
	}
	return d;
}

static void build_request(struct conn *c)
{
	int n = snprintf(c->req, sizeof(c->req),
	                 "GET /.well-known/mta-sts.txt HTTP/1.1\r\n"
	                 "Host: %s\r\n"
	                 "User-Agent: mtastsd-bench-loadgen\r\n"
	                 "%s\r\n",
	                 c->dom->host, o_mode == M_KEEPALIVE ? "" : "Connection: close\r\n");

	if (n < 0 || (size_t)n >= sizeof(c->req))
		die("host name too long");
	c->req_len = (size_t)n;
	c->req_off = 0;
	c->buf_len = 0;
}

static void conn_start(struct conn *c)
{
	int fd, one = 1;

	c->dom = pick_domain();
	c->nreq = 0;
	c->offered = 0;
	c->t_start = c->t_act = now_us();
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket: %s", strerror(errno));
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
		die("TCP_NODELAY: %s", strerror(errno));
	c->fd = fd;
	c->ssl = SSL_new(g_ctx);
	if (!c->ssl || !SSL_set_fd(c->ssl, fd) || !SSL_set_tlsext_host_name(c->ssl, c->dom->host) ||
	    !SSL_set1_host(c->ssl, c->dom->host) || !SSL_set_ex_data(c->ssl, g_ex_idx, c))
		die("SSL setup");
	if (is_resume_mode() && c->dom->nsess > 0) {
		struct domain *d = c->dom;

		if (!SSL_set_session(c->ssl, d->sess[d->nsess - 1]))
			die("SSL_set_session");
		if (o_mode == M_RESUME) {
			/* TLS 1.3 tickets are single use */
			SSL_SESSION_free(d->sess[--d->nsess]);
		}
		c->offered = 1;
	}
	build_request(c);
	if (g_counting)
		g_st.connections++;
	if (connect(fd, (struct sockaddr *)&g_addr, sizeof(g_addr)) != 0 && errno != EINPROGRESS) {
		fail(c, E_CONNECT);
		return;
	}
	c->state = S_CONNECTING;
	set_events(c, EPOLLOUT);
}

static void record_latency(uint64_t us)
{
	if (!g_counting)
		return;
	if (g_nlat == g_caplat) {
		g_caplat = g_caplat ? g_caplat * 2 : 65536;
		g_lat = realloc(g_lat, g_caplat * sizeof(*g_lat));
		if (!g_lat)
			die("out of memory");
	}
	g_lat[g_nlat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static void handshake_done(struct conn *c)
{
	int reused = SSL_session_reused(c->ssl);
	int ver = SSL_version(c->ssl);

	if (!g_counting)
		return;
	if (reused) {
		g_st.hs_resumed++;
	} else {
		g_st.hs_full++;
		if (is_resume_mode()) {
			if (c->offered)
				g_st.hs_rejected++;
			else
				g_st.hs_none++;
		}
	}
	if (ver == TLS1_3_VERSION)
		g_st.tls13++;
	else if (ver == TLS1_2_VERSION)
		g_st.tls12++;
}

/* find a header value (case-insensitive name) in the header block */
static const char *find_header(const char *hdr, size_t hlen, const char *name, size_t *vlen)
{
	size_t nlen = strlen(name);
	const char *p = hdr, *end = hdr + hlen;

	/* skip the status line */
	p = memchr(p, '\n', hlen);
	while (p && ++p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));

		if (!eol)
			eol = end;
		if ((size_t)(eol - p) > nlen && p[nlen] == ':' && strncasecmp(p, name, nlen) == 0) {
			const char *v = p + nlen + 1;

			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			*vlen = (size_t)(eol - v);
			while (*vlen && (v[*vlen - 1] == '\r' || v[*vlen - 1] == ' '))
				(*vlen)--;
			return v;
		}
		p = eol;
	}
	return NULL;
}

/*
 * Check the buffered response.  Returns 0 while incomplete, 1 when complete
 * and correct (*close_after set if the server will close), -1 after fail().
 */
static int check_response(struct conn *c, int eof, int *close_after)
{
	char *hend = memmem(c->buf, c->buf_len, "\r\n\r\n", 4);
	size_t hlen, vlen, body_have, clen;
	const char *v;
	char num[24];
	int status;

	if (!hend)
		return eof ? (fail(c, c->buf_len ? E_HEADER : E_EOF), -1) : 0;
	hlen = (size_t)(hend - c->buf) + 4;
	body_have = c->buf_len - hlen;
	if (c->buf_len < 12 || memcmp(c->buf, "HTTP/1.", 7) != 0 || c->buf[8] != ' ' ||
	    !isdigit((unsigned char)c->buf[9]) || !isdigit((unsigned char)c->buf[10]) ||
	    !isdigit((unsigned char)c->buf[11])) {
		fail(c, E_HEADER);
		return -1;
	}
	status = (c->buf[9] - '0') * 100 + (c->buf[10] - '0') * 10 + (c->buf[11] - '0');
	v = find_header(c->buf, hlen, "Content-Length", &vlen);
	if (v) {
		char *end;
		unsigned long long l;

		if (vlen == 0 || vlen >= sizeof(num)) {
			fail(c, E_HEADER);
			return -1;
		}
		memcpy(num, v, vlen);
		num[vlen] = '\0';
		errno = 0;
		l = strtoull(num, &end, 10);
		if (errno || *end || l > BUF_SIZE) {
			fail(c, E_HEADER);
			return -1;
		}
		clen = (size_t)l;
		if (body_have < clen)
			return eof ? (fail(c, E_EOF), -1) : 0;
	} else if (find_header(c->buf, hlen, "Transfer-Encoding", &vlen)) {
		fail(c, E_HEADER); /* chunked: not expected for a fixed policy */
		return -1;
	} else {
		/* delimited by close */
		if (!eof)
			return 0;
		clen = body_have;
	}
	*close_after = eof || !v;
	v = find_header(c->buf, hlen, "Connection", &vlen);
	if (v && vlen == 5 && strncasecmp(v, "close", 5) == 0)
		*close_after = 1;
	if (status != 200) {
		fail(c, E_STATUS);
		return -1;
	}
	v = find_header(c->buf, hlen, "Content-Type", &vlen);
	if (!v || vlen < 10 || strncasecmp(v, "text/plain", 10) != 0) {
		fail(c, E_HEADER);
		return -1;
	}
	if (clen != c->dom->body_len || memcmp(c->buf + hlen, c->dom->body, clen) != 0) {
		fail(c, E_BODY);
		return -1;
	}
	return 1;
}

static void response_done(struct conn *c, int close_after)
{
	uint64_t t = now_us();

	if (g_counting)
		g_st.requests++;
	record_latency(t - c->t_start);
	c->nreq++;
	if (o_mode != M_KEEPALIVE || close_after || (o_ka_reqs && c->nreq >= o_ka_reqs)) {
		conn_close(c);
		conn_start(c);
		return;
	}
	build_request(c);
	c->t_start = c->t_act = t;
	c->state = S_WRITING;
}

/* run the connection's state machine until it would block */
static void conn_drive(struct conn *c)
{
	for (;;) {
		int r, e;

		switch (c->state) {
		case S_IDLE:
			return;
		case S_CONNECTING: {
			int err = 0;
			socklen_t l = sizeof(err);

			if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l) != 0 || err) {
				fail(c, E_CONNECT);
				return;
			}
			c->state = S_HANDSHAKE;
			break;
		}
		case S_HANDSHAKE:
			ERR_clear_error();
			r = SSL_connect(c->ssl);
			if (r == 1) {
				int want = is_tls12_mode() ? TLS1_2_VERSION : TLS1_3_VERSION;

				handshake_done(c);
				if (o_mode != M_KEEPALIVE && SSL_version(c->ssl) != want) {
					fail(c, E_VERSION);
					return;
				}
				c->state = S_WRITING;
				break;
			}
			e = SSL_get_error(c->ssl, r);
			if (e == SSL_ERROR_WANT_READ) {
				set_events(c, EPOLLIN);
				return;
			}
			if (e == SSL_ERROR_WANT_WRITE) {
				set_events(c, EPOLLOUT);
				return;
			}
			fail(c, SSL_get_verify_result(c->ssl) != X509_V_OK ? E_VERIFY : E_TLS);
			return;
		case S_WRITING:
			ERR_clear_error();
			r = SSL_write(c->ssl, c->req + c->req_off, (int)(c->req_len - c->req_off));
			if (r > 0) {
				c->req_off += (size_t)r;
				if (c->req_off == c->req_len)
					c->state = S_READING;
				break;
			}
			e = SSL_get_error(c->ssl, r);
			if (e == SSL_ERROR_WANT_READ) {
				set_events(c, EPOLLIN);
				return;
			}
			if (e == SSL_ERROR_WANT_WRITE) {
				set_events(c, EPOLLOUT);
				return;
			}
			if (o_mode == M_KEEPALIVE && c->nreq > 0) {
				/* server closed an idle keep-alive connection: retry */
				if (g_counting)
					g_st.ka_closed++;
				conn_close(c);
				conn_start(c);
				return;
			}
			fail(c, E_IO);
			return;
		case S_READING: {
			int eof = 0, close_after = 0, done;

			if (c->buf_len == sizeof(c->buf)) {
				fail(c, E_HEADER);
				return;
			}
			ERR_clear_error();
			r = SSL_read(c->ssl, c->buf + c->buf_len,
			             (int)(sizeof(c->buf) - c->buf_len));
			if (r > 0) {
				c->buf_len += (size_t)r;
				c->t_act = now_us();
			} else {
				e = SSL_get_error(c->ssl, r);
				if (e == SSL_ERROR_WANT_READ) {
					set_events(c, EPOLLIN);
					return;
				}
				if (e == SSL_ERROR_WANT_WRITE) {
					set_events(c, EPOLLOUT);
					return;
				}
				if (o_mode == M_KEEPALIVE && c->nreq > 0 && c->buf_len == 0) {
					/* closed while idle, before our request was read */
					if (g_counting)
						g_st.ka_closed++;
					conn_close(c);
					conn_start(c);
					return;
				}
				if (e != SSL_ERROR_ZERO_RETURN && e != SSL_ERROR_SYSCALL) {
					fail(c, E_IO);
					return;
				}
				eof = 1;
			}
			done = check_response(c, eof, &close_after);
			if (done < 0)
				return;
			if (done == 0) {
				if (eof) {
					fail(c, E_EOF);
					return;
				}
				break;
			}
			response_done(c, close_after);
			if (c->state == S_CONNECTING)
				return;
			break;
		}
		}
	}
}

/* ---- main ---- */

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static double pct(double p)
{
	size_t i;

	if (g_nlat == 0)
		return 0;
	i = (size_t)(p * (double)(g_nlat - 1) + 0.5);
	return (double)g_lat[i] / 1000.0;
}

/* --idle: N connections from 127.1.0.0/16, handshaken (blocking), then silent. */
static void idle_open(void)
{
	g_idle_fd = xmalloc((size_t)o_idle * sizeof(*g_idle_fd));
	g_idle_ssl = xmalloc((size_t)o_idle * sizeof(*g_idle_ssl));
	for (long i = 0; i < o_idle; i++) {
		long a = i / o_idle_per_addr;
		struct sockaddr_in src = {.sin_family = AF_INET};
		struct timeval tv = {.tv_sec = 10};
		struct domain *d = &g_dom[rnd() % g_ndom];
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		SSL *ssl;

		g_idle_fd[i] = -1;
		g_idle_ssl[i] = NULL;
		if (fd < 0)
			die("socket: %s (raise the open files limit)", strerror(errno));
		src.sin_addr.s_addr = htonl(0x7f010000u | (uint32_t)(a & 0xffff));
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		ssl = SSL_new(g_ctx);
		if (!ssl || bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0 ||
		    connect(fd, (struct sockaddr *)&g_addr, sizeof(g_addr)) != 0 ||
		    !SSL_set_fd(ssl, fd) || !SSL_set_tlsext_host_name(ssl, d->host) ||
		    SSL_connect(ssl) != 1) {
			g_idle_failed++;
			SSL_free(ssl);
			close(fd);
			continue;
		}
		g_idle_fd[i] = fd;
		g_idle_ssl[i] = ssl;
		g_idle_open++;
	}
}

/* How many idle connections the server has closed (EOF or reset seen). */
static void idle_check(void)
{
	g_idle_closed = 0;
	for (long i = 0; i < o_idle; i++) {
		char b[256];
		ssize_t r;

		if (g_idle_fd[i] < 0)
			continue;
		r = recv(g_idle_fd[i], b, sizeof(b), MSG_PEEK | MSG_DONTWAIT);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
			g_idle_closed++;
			continue;
		}
		/* TLS 1.3 session tickets may be waiting: read them, look once more */
		if (r > 0) {
			while (recv(g_idle_fd[i], b, sizeof(b), MSG_DONTWAIT) > 0)
				;
			r = recv(g_idle_fd[i], b, sizeof(b), MSG_PEEK | MSG_DONTWAIT);
			if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
				g_idle_closed++;
		}
	}
}

static void idle_close(void)
{
	for (long i = 0; i < o_idle; i++) {
		SSL_free(g_idle_ssl[i]);
		if (g_idle_fd[i] >= 0)
			close(g_idle_fd[i]);
	}
	free(g_idle_fd);
	free(g_idle_ssl);
}

static void usage(FILE *out)
{
	fputs("usage: loadgen -m MANIFEST [options]\n"
	      "  -m, --manifest FILE   domain list written by gencerts (required)\n"
	      "      --ca FILE         root CA (default: MANIFEST's dir/ca/root.crt)\n"
	      "  -H, --host ADDR       server IPv4 address (127.0.0.1)\n"
	      "  -p, --port PORT       server port (8443)\n"
	      "  -M, --mode MODE       full | full12 | resume | resume12 | keepalive (full)\n"
	      "  -c, --conns N         concurrent connections (32)\n"
	      "  -d, --duration SEC    measured window (5); SIGINT/SIGTERM end it early\n"
	      "  -w, --warmup SEC      warmup before the window (1)\n"
	      "  -P, --pid PID         server pid: CPU of PID + descendants is measured\n"
	      "  -r, --pool N          resume modes: domains in the ticket pool (1000); the\n"
	      "                        warmup lasts until each has been visited once\n"
	      "  -k, --ka-requests N   keepalive: requests per connection, 0 = unlimited (0)\n"
	      "  -t, --timeout SEC     per-connection inactivity timeout (10)\n"
	      "      --idle N          first open N idle TLS connections (from 127.1.0.0/16)\n"
	      "      --idle-per-addr K idle connections per source address (200)\n"
	      "      --hup SEC         send SIGHUP to --pid every SEC s during the window\n"
	      "  -s, --seed N          random seed (default: time)\n"
	      "  -h, --help            this text\n"
	      "Prints one JSON object with the counts, latency percentiles and CPU per\n"
	      "request of the measured window.\n",
	      out);
}

static double parse_double(const char *s, double min, double max)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || v < min || v > max) {
		fprintf(stderr, "loadgen: bad number '%s'\n", s);
		usage(stderr);
		exit(2);
	}
	return v;
}

static long parse_long(const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max) {
		fprintf(stderr, "loadgen: bad number '%s'\n", s);
		usage(stderr);
		exit(2);
	}
	return v;
}

static void parse_args(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"manifest", required_argument, NULL, 'm'},
	    {"ca", required_argument, NULL, 'C'},
	    {"host", required_argument, NULL, 'H'},
	    {"port", required_argument, NULL, 'p'},
	    {"mode", required_argument, NULL, 'M'},
	    {"conns", required_argument, NULL, 'c'},
	    {"duration", required_argument, NULL, 'd'},
	    {"warmup", required_argument, NULL, 'w'},
	    {"pid", required_argument, NULL, 'P'},
	    {"pool", required_argument, NULL, 'r'},
	    {"ka-requests", required_argument, NULL, 'k'},
	    {"timeout", required_argument, NULL, 't'},
	    {"hup", required_argument, NULL, 'U'},
	    {"seed", required_argument, NULL, 's'},
	    {"idle", required_argument, NULL, 'I'},
	    {"idle-per-addr", required_argument, NULL, 'A'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int opt;
	size_t i;

	while ((opt = getopt_long(argc, argv, "m:H:p:M:c:d:w:P:r:k:t:s:h", lo, NULL)) != -1) {
		switch (opt) {
		case 'm':
			o_manifest = optarg;
			break;
		case 'C':
			o_cafile = optarg;
			break;
		case 'H':
			o_host = optarg;
			break;
		case 'p':
			o_port = (int)parse_long(optarg, 1, 65535);
			break;
		case 'M':
			for (i = 0; i < sizeof(mode_names) / sizeof(mode_names[0]); i++)
				if (strcmp(optarg, mode_names[i]) == 0)
					break;
			if (i == sizeof(mode_names) / sizeof(mode_names[0])) {
				fprintf(stderr, "loadgen: unknown mode '%s'\n", optarg);
				exit(2);
			}
			o_mode = (enum mode)i;
			break;
		case 'c':
			o_conns = (int)parse_long(optarg, 1, 10000);
			break;
		case 'd':
			o_duration = parse_double(optarg, 0.1, 86400);
			break;
		case 'w':
			o_warmup = parse_double(optarg, 0, 86400);
			break;
		case 'P':
			o_pid = parse_long(optarg, 0, LONG_MAX);
			break;
		case 'r':
			o_pool = parse_long(optarg, 1, LONG_MAX);
			break;
		case 'k':
			o_ka_reqs = parse_long(optarg, 0, LONG_MAX);
			break;
		case 't':
			o_timeout = parse_double(optarg, 0.01, 86400);
			break;
		case 'U':
			o_hup = parse_double(optarg, 0.01, 86400);
			break;
		case 'I':
			o_idle = parse_long(optarg, 0, 1000000);
			break;
		case 'A':
			o_idle_per_addr = parse_long(optarg, 1, 1000000);
			break;
		case 's':
			o_seed = (unsigned long long)parse_long(optarg, 0, LONG_MAX);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (!o_manifest || optind != argc) {
		usage(stderr);
		exit(2);
	}
	if (o_hup > 0 && o_pid <= 0) {
		fprintf(stderr, "loadgen: --hup needs --pid\n");
		exit(2);
	}
}

static void default_cafile(void)
{
	static char path[PATH_MAX];
	const char *slash = strrchr(o_manifest, '/');
	int n;

	if (o_cafile)
		return;
	if (slash)
		n = snprintf(path, sizeof(path), "%.*s/ca/root.crt", (int)(slash - o_manifest),
		             o_manifest);
	else
		n = snprintf(path, sizeof(path), "ca/root.crt");
	if (n < 0 || (size_t)n >= sizeof(path))
		die("path too long");
	o_cafile = path;
}

static void print_json(const struct cpu_sample *a, const struct cpu_sample *b, int hups)
{
	double secs = (double)(b->t - a->t) / 1e6;
	double req = (double)g_st.requests;
	double srv = b->server_s - a->server_s, cli = b->client_s - a->client_s;
	double busy = b->busy_s - a->busy_s, irq = b->irq_s - a->irq_s;
	uint64_t errors = 0;
	int i;

	for (i = 0; i < E_COUNT; i++)
		errors += g_st.err[i];
	printf("{\"mode\": \"%s\", \"port\": %d, \"domains\": %zu, \"pool\": %zu, "
	       "\"conns\": %d, \"window_s\": %.3f, \"warmup_s\": %.3f, ",
	       mode_names[o_mode], o_port, g_ndom, is_resume_mode() ? g_npool : g_ndom, o_conns,
	       secs, o_warmup);
	printf("\"requests\": %llu, \"rps\": %.1f, \"errors\": %llu, ",
	       (unsigned long long)g_st.requests, secs > 0 ? req / secs : 0,
	       (unsigned long long)errors);
	for (i = 0; i < E_COUNT; i++)
		printf("\"%s\": %llu, ", err_names[i], (unsigned long long)g_st.err[i]);
	printf("\"ka_closed_retried\": %llu, \"connections\": %llu, "
	       "\"hs_full\": %llu, \"hs_resumed\": %llu, \"hs_offered_rejected\": %llu, "
	       "\"hs_nothing_offered\": %llu, \"tls12\": %llu, \"tls13\": %llu, ",
	       (unsigned long long)g_st.ka_closed, (unsigned long long)g_st.connections,
	       (unsigned long long)g_st.hs_full, (unsigned long long)g_st.hs_resumed,
	       (unsigned long long)g_st.hs_rejected, (unsigned long long)g_st.hs_none,
	       (unsigned long long)g_st.tls12, (unsigned long long)g_st.tls13);
	printf("\"lat_p50_ms\": %.3f, \"lat_p99_ms\": %.3f, \"lat_max_ms\": %.3f, ", pct(0.5),
	       pct(0.99), pct(1.0));
	printf("\"server_pid\": %ld, \"server_procs\": %d, \"server_cpu_s\": %.3f, "
	       "\"server_cpu_us_per_req\": %.1f, \"client_cpu_us_per_req\": %.1f, "
	       "\"other_load_cores\": %.3f, \"softirq_cores\": %.3f, \"hups\": %d, "
	       "\"idle\": %ld, \"idle_open\": %ld, \"idle_failed\": %ld, "
	       "\"idle_closed_by_server\": %ld}\n",
	       o_pid, b->server_procs, srv, req > 0 ? srv * 1e6 / req : 0,
	       req > 0 ? cli * 1e6 / req : 0, secs > 0 ? (busy - srv - cli) / secs : 0,
	       secs > 0 ? irq / secs : 0, hups, o_idle, g_idle_open, g_idle_failed, g_idle_closed);
}

int main(int argc, char **argv)
{
	struct epoll_event *evs;
	struct cpu_sample s0 = {0}, s1 = {0};
	uint64_t t_begin, t_win, t_end, next_scan, next_hup = 0;
	int i, hups = 0;

	parse_args(argc, argv);
	default_cafile();
	signal(SIGPIPE, SIG_IGN);
	{
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_stop; /* no SA_RESTART: epoll_wait returns EINTR */
		sigemptyset(&sa.sa_mask);
		if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0)
			die("sigaction: %s", strerror(errno));
	}
	g_rng = o_seed ? o_seed : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	if (!g_rng)
		g_rng = 88172645463325252ULL;
	load_manifest(o_manifest);
	g_npool = (size_t)o_pool < g_ndom ? (size_t)o_pool : g_ndom;
	g_pool = xmalloc(g_npool * sizeof(*g_pool));
	for (size_t j = 0; j < g_npool; j++)
		g_pool[j] = j * g_ndom / g_npool;
	setup_tls();

	memset(&g_addr, 0, sizeof(g_addr));
	g_addr.sin_family = AF_INET;
	g_addr.sin_port = htons((uint16_t)o_port);
	if (inet_pton(AF_INET, o_host, &g_addr.sin_addr) != 1)
		die("bad address %s", o_host);

	g_ep = epoll_create1(EPOLL_CLOEXEC);
	if (g_ep < 0)
		die("epoll_create1: %s", strerror(errno));
	g_conns = calloc((size_t)o_conns, sizeof(*g_conns));
	evs = calloc((size_t)o_conns, sizeof(*evs));
	if (!g_conns || !evs)
		die("out of memory");

	if (o_idle > 0) {
		struct rlimit rl;

		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
		    rl.rlim_cur < (rlim_t)(o_idle + o_conns + 64)) {
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
		idle_open();
	}
	t_begin = now_us();
	t_win = t_begin + (uint64_t)(o_warmup * 1e6);
	t_end = t_win + (uint64_t)(o_duration * 1e6);
	next_scan = t_begin + 10000;
	for (i = 0; i < o_conns; i++) {
		g_conns[i].fd = -1;
		conn_start(&g_conns[i]);
	}
	for (;;) {
		uint64_t t;
		int n = epoll_wait(g_ep, evs, o_conns, 5);

		if (n < 0 && errno != EINTR)
			die("epoll_wait: %s", strerror(errno));
		for (i = 0; i < n; i++)
			conn_drive(evs[i].data.ptr);
		t = now_us();
		if (!g_counting && t >= t_win &&
		    (!is_resume_mode() || g_primed >= g_npool || t >= t_win + 60000000u)) {
			/* the window starts after the warmup (and the ticket priming) */
			t_end = t + (uint64_t)(o_duration * 1e6);
			memset(&g_st, 0, sizeof(g_st));
			g_nlat = 0;
			sample(&s0);
			g_counting = 1;
			if (o_hup > 0)
				next_hup = t + (uint64_t)(o_hup * 1e6);
		}
		if (g_stop && !g_counting) {
			sample(&s0); /* stopped during warmup: empty window */
			g_counting = 1;
		}
		if (g_counting && (t >= t_end || g_stop))
			break;
		if (next_hup && t >= next_hup) {
			if (kill((pid_t)o_pid, SIGHUP) != 0)
				die("SIGHUP %ld: %s", o_pid, strerror(errno));
			hups++;
			next_hup += (uint64_t)(o_hup * 1e6);
		}
		if (t >= next_scan) {
			/* timeouts and reconnects after errors */
			next_scan = t + 10000;
			for (i = 0; i < o_conns; i++) {
				struct conn *c = &g_conns[i];

				if (c->state == S_IDLE) {
					if (t >= c->retry_at) {
						conn_start(c);
						conn_drive(c);
					}
				} else if (t - c->t_act > (uint64_t)(o_timeout * 1e6)) {
					fail(c, E_TIMEOUT);
				}
			}
		}
	}
	sample(&s1);
	g_counting = 0;
	if (o_idle > 0)
		idle_check();
	if (g_nlat > 0)
		qsort(g_lat, g_nlat, sizeof(*g_lat), cmp_u32);
	print_json(&s0, &s1, hups);
	for (i = 0; i < o_conns; i++)
		conn_close(&g_conns[i]);
	if (o_idle > 0)
		idle_close();
	free(g_conns);
	free(evs);
	free(g_lat);
	free(g_pool);
	for (size_t j = 0; j < g_ndom; j++) {
		while (g_dom[j].nsess > 0)
			SSL_SESSION_free(g_dom[j].sess[--g_dom[j].nsess]);
		free(g_dom[j].host);
		free(g_dom[j].body);
	}
	free(g_dom);
	SSL_CTX_free(g_ctx);
	close(g_ep);
	return 0;
}
