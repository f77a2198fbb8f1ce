/* main: the mtastsd command line: serve | check | records | id */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pwd.h>
#include <sys/resource.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "build-config.h"
#include "buf.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "policy.h"
#include "records.h"
#include "snapshot.h"
#include "tls.h"
#include "fetch.h"
#include "upstream.h"
#include "admin.h"
#include "stats.h"
#include "watch.h"
#include "hook.h"

#define DEFAULT_CONFIG "/etc/mtastsd/mtastsd.ini"
/* Above this many domains the start and reload logs summarize instead of listing. */
#define LOG_DOMAINS_MAX 1000
/* Seconds after a reload before freed memory is returned to the system. */
#define TRIM_DELAY 3

static const char usage_text[] =
    "usage: mtastsd COMMAND [OPTIONS]\n"
    "\n"
    "Serves MTA-STS (RFC 8461) policies for many domains over HTTPS, choosing each\n"
    "domain's certificate by SNI, and prints the DNS records to publish.\n"
    "\n"
    "commands:\n"
    "  serve   -c FILE                  run the server in the foreground (log on stderr);\n"
    "                                   SIGHUP reloads, SIGTERM/SIGINT stop\n"
    "  check   -c FILE                  validate config, policies and certificates;\n"
    "                                   prints 'configuration OK' or FILE:LINE errors\n"
    "  records -c FILE [--format zone|json]\n"
    "                                   print the DNS records to publish\n"
    "  id      [FILE]                   validate a policy body (FILE or stdin) and print\n"
    "                                   the id of its canonical form\n"
    "\n"
    "options:\n"
    "  -c, --config FILE   configuration file (default " DEFAULT_CONFIG ")\n"
    "  -f, --format FMT    records output: zone (default) or json\n"
    "  -h, --help          show this help\n"
    "  -V, --version       show the version\n"
    "\n"
    "Run 'mtastsd COMMAND --help' for one command. See README.md for the config format.\n";

static const char *const command_help[][2] = {
    {"serve", "usage: mtastsd serve [-c FILE]\n"
              "Runs the HTTPS policy server in the foreground, logging to stderr.\n"
              "SIGHUP reloads config and certificates (all or nothing); SIGTERM/SIGINT stop.\n"},
    {"check", "usage: mtastsd check [-c FILE]\n"
              "Validates everything 'serve' would load. Prints 'configuration OK' (exit 0)\n"
              "or every error as FILE:LINE: message on stderr (exit 1). Warnings do not fail.\n"},
    {"records", "usage: mtastsd records [-c FILE] [--format zone|json]\n"
                "Prints the _mta-sts and _smtp._tls records to publish for every domain.\n"},
    {"id", "usage: mtastsd id [FILE]\n"
           "Reads a policy body from FILE or stdin, validates it strictly (RFC 8461 3.2)\n"
           "and prints the id of its canonical form. Errors: FILE:LINE: message, exit 1.\n"},
};

static void print_diag(const struct diag *d)
{
	diag_print(d, stderr);
}

/* Logs the records of one domain, rendered by the same function as 'records'. */
static void log_tenant(const struct config *c, const struct tenant *t, const char *what)
{
	struct doc *doc = tenant_doc(t, time(NULL));
	struct records_domain rd = {
	    .domain = t->domain->name,
	    .id = doc != NULL ? doc->id : NULL,
	    .body = doc != NULL ? doc->body : NULL,
	    .body_len = doc != NULL ? doc->len : 0,
	    .mode = doc != NULL ? doc->mode : NULL,
	    .proxy = t->domain->proxy,
	};
	struct records_opts o = {c->sts_ttl, c->tlsrpt_ttl};
	struct buf b;

	buf_init(&b);
	if (records_zone_lines(&b, &rd, &o) == 0 && b.len > 0) {
		char *save = NULL;

		/* One log line per record line, comments left out. */
		for (char *line = strtok_r(b.data, "\n", &save); line != NULL;
		     line = strtok_r(NULL, "\n", &save))
			if (line[0] != ';')
				log_msg("%s: %s %s; publish: %s", t->domain->name, what,
				        doc != NULL ? doc->id : "(none yet)", line);
	}
	buf_finish(&b);
	doc_unref(doc);
}

/* Tells the operator's automation about a new id (proxied domains are announced by the
 * upstream module when the provider's bytes change). */
static void run_on_change(const struct config *c, const struct tenant *t, time_t now)
{
	struct doc *doc;

	if (c->on_change == NULL || (doc = tenant_doc(t, now)) == NULL)
		return;
	hook_run(c->on_change, t->domain->name, doc->id);
	doc_unref(doc);
}

/* Whether two tenants serve the same bytes now. */
static bool same_id(const struct tenant *a, const struct tenant *b, time_t now)
{
	struct doc *x = tenant_doc(a, now), *y = tenant_doc(b, now);
	bool same =
	    (x == NULL && y == NULL) || (x != NULL && y != NULL && strcmp(x->id, y->id) == 0);

	doc_unref(x);
	doc_unref(y);
	return same;
}

/* Loads path into a snapshot. *ups is the provider registry: created from the config
 * when NULL (and left NULL on failure), reconfigured otherwise. */
static struct snapshot *load(const char *path, unsigned flags, struct upstreams **ups,
                             struct diag *d)
{
	struct config *c = config_load(path, d);

	if (c == NULL)
		return NULL;
	if (*ups == NULL)
		*ups = upstreams_create(c);
	else
		upstreams_configure(*ups, c);
	if (*ups == NULL) {
		diag_error(d, path, 0, "out of memory");
		config_destroy(c);
		return NULL;
	}
	return snapshot_create(c, flags, *ups, d);
}

static int cmd_check(const char *path)
{
	struct diag d;
	struct snapshot *s;
	struct upstreams *ups = NULL;

	diag_init(&d);
	s = load(path, SNAPSHOT_TLS | SNAPSHOT_EXPIRY_LINT | SNAPSHOT_EAGER | SNAPSHOT_VALIDATE,
	         &ups, &d);
	print_diag(&d);
	diag_finish(&d);
	snapshot_unref(s);
	upstreams_destroy(ups);
	if (s == NULL)
		return 1;
	puts("configuration OK");
	return 0;
}

static int cmd_records(const char *path, const char *format)
{
	struct diag d;
	struct snapshot *s;
	struct buf out;
	struct upstreams *ups = NULL;
	int ret = 1;

	diag_init(&d);
	s = load(path, 0, &ups, &d);
	print_diag(&d);
	diag_finish(&d);
	buf_init(&out);
	if (s == NULL)
		goto out;
	if (snapshot_records(s, strcmp(format, "json") == 0, &out) < 0) {
		fputs("mtastsd: cannot render the records\n", stderr);
		goto out;
	}
	if (fwrite(out.data, 1, out.len, stdout) != out.len || fflush(stdout) != 0) {
		fprintf(stderr, "mtastsd: cannot write the records: %s\n", strerror(errno));
		goto out;
	}
	ret = 0;
out:
	buf_finish(&out);
	snapshot_unref(s);
	upstreams_destroy(ups);
	return ret;
}

static int cmd_id(const char *file)
{
	FILE *f = stdin;
	const char *name = file != NULL ? file : "<stdin>";
	char *body = malloc(POLICY_BODY_MAX + 2);
	size_t len;
	struct policy p;
	struct diag d;
	int ret = 1;

	if (body == NULL)
		return 1;
	if (file != NULL && strcmp(file, "-") != 0 && (f = fopen(file, "rb")) == NULL) {
		fprintf(stderr, "%s: %s\n", file, strerror(errno));
		free(body);
		return 1;
	}
	len = fread(body, 1, POLICY_BODY_MAX + 1, f);
	if (ferror(f)) {
		fprintf(stderr, "%s: read error\n", name);
		goto out;
	}
	diag_init(&d);
	policy_init(&p);
	if (policy_parse(&p, body, len, &d, name) == 0) {
		size_t n;
		char *canon = policy_render(&p, &n);
		char id[POLICY_ID_MAX + 1];

		if (canon != NULL) {
			policy_id(canon, n, id);
			printf("%s\n", id);
			free(canon);
			ret = 0;
		}
		policy_finish(&p);
	}
	print_diag(&d);
	diag_finish(&d);
out:
	if (f != stdin)
		fclose(f);
	free(body);
	return ret;
}

static int bind_listen(const struct sockaddr_storage *addr, socklen_t len, const char *text)
{
	int one = 1;
	int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0)
		goto fail;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		goto fail;
	if (addr->ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
		goto fail;
	if (bind(fd, (const struct sockaddr *)addr, len) < 0 || listen(fd, 1024) < 0)
		goto fail;
	log_msg("listening on %s", text);
	return fd;
fail:
	log_msg("cannot listen on %s: %s", text, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

/* Binding is the only thing that needs root: give it up before serving anything. */
static int drop_privileges(const char *user)
{
	struct passwd *pw = getpwnam(user);

	if (pw == NULL) {
		log_msg("unknown user %s", user);
		return -1;
	}
	if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0) {
		log_msg("cannot switch to user %s: %s", user, strerror(errno));
		return -1;
	}
	if (pw->pw_uid != 0 && setuid(0) == 0) {
		log_msg("privileges could be regained after switching to %s", user);
		return -1;
	}
	log_msg("running as user %s", user);
	return 0;
}

static void log_snapshot(const struct snapshot *s)
{
	if (s->n_tenants > LOG_DOMAINS_MAX) {
		log_msg("serving %zu domains (mtastsd records lists their ids)", s->n_tenants);
		return;
	}
	for (size_t i = 0; i < s->n_tenants; i++)
		log_tenant(s->config, &s->tenants[i], "id");
}

/* Certificates load in the background after start and reloads (lazy mode), at a lower
 * priority than the threads answering handshakes. */
struct preload {
	pthread_t thread;
	bool running;
};

static void *preload_main(void *arg)
{
	struct snapshot *s = arg;
	struct timespec t0, t1;
	size_t n;

	setpriority(PRIO_PROCESS, (id_t)gettid(), 10);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	n = snapshot_preload(s);
	malloc_trim(0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (n > 0)
		log_msg("preloaded %zu certificates in %.1f s%s", n,
		        (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
		        atomic_load(&s->superseded) ? " (stopped: configuration replaced)" : "");
	snapshot_unref(s);
	return NULL;
}

static void preload_stop(struct preload *p)
{
	if (p->running)
		pthread_join(p->thread, NULL);
	p->running = false;
}

/* Joins the previous run (it stops once its snapshot is superseded) and starts one on
 * the current snapshot. */
static void preload_start(struct preload *p)
{
	struct snapshot *s;

	preload_stop(p);
	s = snapshot_acquire();
	if (s == NULL || !s->lazy) {
		snapshot_unref(s);
		return;
	}
	if (pthread_create(&p->thread, NULL, preload_main, s) != 0) {
		snapshot_unref(s);
		return;
	}
	p->running = true;
}

static bool same_listen(const struct config *a, const struct config *b)
{
	if (a->n_listen != b->n_listen)
		return false;
	for (size_t i = 0; i < a->n_listen; i++)
		if (strcmp(a->listen[i].text, b->listen[i].text) != 0)
			return false;
	return true;
}

static void log_changes(const struct snapshot *old, const struct snapshot *s)
{
	size_t changed = 0, added = 0, removed = 0;
	time_t now = time(NULL);

	for (size_t i = 0; i < s->n_tenants; i++) {
		const struct tenant *t = &s->tenants[i];
		const char *host = t->domain->host;
		const struct tenant *o = snapshot_find(old, host, strlen(host));

		if (o == NULL) {
			added++;
			log_tenant(s->config, t, "added, id");
		} else if (!same_id(o, t, now)) {
			changed++;
			log_tenant(s->config, t, "id changed to");
		} else {
			continue;
		}
		run_on_change(s->config, t, now);
	}
	for (size_t i = 0; i < old->n_tenants; i++) {
		const char *host = old->tenants[i].domain->host;

		if (snapshot_find(s, host, strlen(host)) == NULL) {
			removed++;
			log_msg("%s: removed (keep its policy served until every max_age it "
			        "announced has passed; RFC 8461 8.3)",
			        old->tenants[i].domain->name);
		}
	}
	log_msg("reloaded %s: %zu domains, %zu ids changed, %zu added, %zu removed",
	        s->config->file, s->n_tenants, changed, added, removed);
}

static bool reload(struct http *h, struct upstreams **ups, const char *path)
{
	struct diag d;
	struct snapshot *s, *old;

	diag_init(&d);
	s = load(path, SNAPSHOT_TLS, ups, &d);
	if (s == NULL) {
		log_msg("reload failed, still serving the previous configuration:");
		print_diag(&d);
		diag_finish(&d);
		stats_reload(false);
		return false;
	}
	print_diag(&d);
	diag_finish(&d);
	old = snapshot_publish(s);
	if (!same_listen(old->config, s->config))
		log_msg("listen addresses changed: they take effect on restart");
	http_set_access_log(h, s->config->access_log);
	log_changes(old, s);
	snapshot_unref(old);
	stats_reload(true);
	return true;
}

/* The fingerprint of the certificate files of the running configuration. */
static uint64_t running_fingerprint(void)
{
	struct snapshot *s = snapshot_acquire();
	uint64_t fp = s != NULL ? watch_fingerprint(s->config) : 0;

	snapshot_unref(s);
	return fp;
}

static int cmd_serve(const char *path)
{
	struct diag d;
	struct snapshot *s;
	struct http *h = NULL;
	struct upstreams *ups = NULL;
	struct admin *admin = NULL;
	int fds[16], admin_fd = -1;
	size_t n_fds = 0;
	sigset_t set;
	int sig, ret = 1;
	uint64_t files;
	time_t next_watch, trim_at = 0;
	struct preload preload = {0};

	/* Signals are taken synchronously by this thread only; the server's threads
	 * inherit the mask. */
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	diag_init(&d);
	s = load(path, SNAPSHOT_TLS | SNAPSHOT_EXPIRY_LINT, &ups, &d);
	print_diag(&d);
	diag_finish(&d);
	if (s == NULL)
		goto out;
	for (size_t i = 0; i < s->config->n_listen && n_fds < 16; i++) {
		const struct config_listen *l = &s->config->listen[i];
		int fd = bind_listen(&l->addr, l->addr_len, l->text);

		if (fd < 0)
			goto out;
		fds[n_fds++] = fd;
	}
	if (s->config->admin_listen != NULL &&
	    (admin_fd = bind_listen(&s->config->admin_addr, s->config->admin_addr_len,
	                            s->config->admin_listen)) < 0)
		goto out;
	if (s->config->user != NULL && drop_privileges(s->config->user) < 0)
		goto out;
	snapshot_unref(snapshot_publish(snapshot_ref(s)));
	h = http_start(s->config, fds, n_fds);
	if (h == NULL)
		goto out;
	n_fds = 0; /* owned by the server now */
	if (upstreams_start(ups) < 0)
		goto out;
	if (admin_fd >= 0) {
		admin = admin_start(admin_fd);
		admin_fd = -1;
		if (admin == NULL)
			goto out;
	}
	log_snapshot(s);
	log_msg("ready");
	preload_start(&preload);
	trim_at = time(NULL) + TRIM_DELAY; /* what parsing the config left behind */
	/* After "ready": with a million certificates this stats two million files. */
	files = watch_fingerprint(s->config);
	next_watch = time(NULL) + s->config->cert_watch;
	snapshot_unref(s);
	s = NULL;
	for (;;) {
		struct timespec tick = {1, 0};

		sig = sigtimedwait(&set, NULL, &tick);
		if (sig == SIGHUP) {
			log_msg("SIGHUP: reloading %s", path);
			if (reload(h, &ups, path)) {
				files = running_fingerprint();
				preload_start(&preload);
				trim_at = time(NULL) + TRIM_DELAY;
			}
			continue;
		}
		if (sig == SIGTERM || sig == SIGINT) {
			log_msg("%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
			break;
		}
		/* The replaced snapshot is freed when its last connection closes; then give
		 * its memory back (glibc keeps freed heap otherwise: a reload of a million
		 * domains would leave the process twice its size). */
		if (trim_at != 0 && time(NULL) >= trim_at) {
			malloc_trim(0);
			trim_at = 0;
		}
		/* Renewed certificates are picked up without a signal, through the same
		 * all-or-nothing reload. A failed attempt is retried only when the files
		 * change again (a half-written pair gets completed). */
		if (time(NULL) >= next_watch) {
			struct snapshot *cur = snapshot_acquire();
			unsigned every = cur != NULL ? cur->config->cert_watch : 0;
			uint64_t now_files = cur != NULL ? watch_fingerprint(cur->config) : files;

			snapshot_unref(cur);
			next_watch = time(NULL) + (every ? every : 60);
			if (every != 0 && now_files != files) {
				log_msg("certificate files changed: reloading %s", path);
				files = now_files;
				if (reload(h, &ups, path)) {
					files = running_fingerprint();
					preload_start(&preload);
					trim_at = time(NULL) + TRIM_DELAY;
				}
			}
		}
	}
	ret = 0;
out:
	snapshot_unref(snapshot_publish(NULL)); /* also stops the preload */
	preload_stop(&preload);
	admin_stop(admin);
	if (admin_fd >= 0)
		close(admin_fd);
	http_stop(h);
	for (size_t i = 0; i < n_fds; i++)
		close(fds[i]);
	snapshot_unref(s);
	upstreams_destroy(ups);
	return ret;
}

static const char *find_help(const char *command)
{
	for (size_t i = 0; i < sizeof(command_help) / sizeof(command_help[0]); i++)
		if (strcmp(command_help[i][0], command) == 0)
			return command_help[i][1];
	return NULL;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"format", required_argument, NULL, 'f'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	const char *command, *path = DEFAULT_CONFIG, *format = "zone";
	int opt, ret;

	if (argc < 2) {
		fputs(usage_text, stderr);
		return 2;
	}
	command = argv[1];
	if (strcmp(command, "-h") == 0 || strcmp(command, "--help") == 0 ||
	    strcmp(command, "help") == 0) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (strcmp(command, "-V") == 0 || strcmp(command, "--version") == 0) {
		puts("mtastsd " MTASTSD_VERSION);
		return 0;
	}
	if (find_help(command) == NULL) {
		fprintf(stderr, "mtastsd: unknown command '%s'\n\n%s", command, usage_text);
		return 2;
	}
	optind = 2;
	while ((opt = getopt_long(argc, argv, "c:f:hV", options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 'f':
			format = optarg;
			break;
		case 'h':
			fputs(find_help(command), stdout);
			return 0;
		case 'V':
			puts("mtastsd " MTASTSD_VERSION);
			return 0;
		default:
			fputs(find_help(command), stderr);
			return 2;
		}
	}
	if (strcmp(format, "zone") != 0 && strcmp(format, "json") != 0) {
		fprintf(stderr, "mtastsd: --format must be zone or json\n");
		return 2;
	}
	if (strcmp(command, "id") == 0 ? argc - optind > 1 : optind != argc) {
		fprintf(stderr, "mtastsd: unexpected argument '%s'\n\n%s", argv[argc - 1],
		        find_help(command));
		return 2;
	}
	if (tls_global_init() < 0 || fetch_global_init() < 0 || stats_init() < 0) {
		fputs("mtastsd: cannot initialize GnuTLS or libcurl\n", stderr);
		return 1;
	}
	if (strcmp(command, "id") == 0)
		ret = cmd_id(optind < argc ? argv[optind] : NULL);
	else if (strcmp(command, "check") == 0)
		ret = cmd_check(path);
	else if (strcmp(command, "records") == 0)
		ret = cmd_records(path, format);
	else
		ret = cmd_serve(path);
	stats_finish();
	fetch_global_cleanup();
	gnutls_global_deinit();
	return ret;
}
