/* serve: the running server: start, reloads, certificate renewals and expiries, stop */
#include <errno.h>
#include <grp.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "build-config.h"

#include "acme.h"
#include "admin.h"
#include "buf.h"
#include "certcache.h"
#include "challenge.h"
#include "config.h"
#include "hook.h"
#include "http.h"
#include "journal.h"
#include "reports.h"
#include "log.h"
#include "notify.h"
#include "records.h"
#include "serve.h"
#include "snapshot.h"
#include "stats.h"
#include "upstream.h"
#include "watch.h"

/* Above this many domains the start and reload logs summarize instead of listing. */
#define LOG_DOMAINS_MAX 1000
/* Seconds after a reload before freed memory is returned to the system. */
#define TRIM_DELAY 3
/* The service manager's STATUS= line. */
#define STATUS_MAX 512

/* Certificates load in the background after start and reloads (lazy mode), at a lower
 * priority than the threads answering handshakes. */
struct preload {
	pthread_t thread;
	bool running;
};

/* Everything the running server owns. The current snapshot is the only state requests
 * read; the rest is the main thread's, apart from the services, which document their
 * own threads: upstreams (the fetch thread), hooks (the hook worker), stats. */
struct server {
	const char *path;
	struct http *http;
	struct admin *admin;
	struct upstreams *ups;
	struct acme *acme;
	struct challenge_listener *challenge; /* acme_http_listen, or NULL */
	struct hooks *hooks;                  /* NULL without on_change */
	struct journal *journal;              /* what each domain served, in state_dir */
	struct reports *reports;              /* TLS reports posted to /tlsrpt */
	struct notify *notify;                /* NULL outside a service manager */
	char *hook_key;                       /* the on_change settings hooks was made with */
	struct preload preload;
	uint64_t files;    /* fingerprint of the certificate files in service */
	bool files_known;  /* files is taken (after a start or reload) */
	time_t next_watch; /* of cert_watch */
	time_t trim_at;    /* 0: nothing to give back */
	time_t started;
};

/* Logs the records of one domain, rendered by the same function as 'records'. */
static void log_tenant(const struct config *c, const struct tenant *t, const char *what)
{
	const struct config_domain *cd = tenant_domain(t);
	struct doc *doc = tenant_doc(t, time(NULL));
	struct records_domain rd = {
	    .domain = cd->name,
	    .id = doc != NULL ? doc->id : NULL,
	    .body = doc != NULL ? doc->body : NULL,
	    .body_len = doc != NULL ? doc->len : 0,
	    .mode = doc != NULL ? doc->mode : NULL,
	    .proxy = cd->proxy,
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
				log_msg("%s: %s %s; publish: %s", cd->name, what,
				        doc != NULL ? doc->id : "(none yet)", line);
	}
	buf_finish(&b);
	doc_unref(doc);
}

/* Tells the operator's automation the id a domain serves now (the hook queue runs the
 * command only for an id it has not announced before). */
static void announce(struct server *sv, const struct tenant *t, time_t now)
{
	struct doc *doc = tenant_doc(t, now);

	if (doc != NULL && sv->hooks != NULL)
		hooks_announce(sv->hooks, tenant_domain(t)->name, doc->id);
	doc_unref(doc);
}

/* What t serves now goes into the journal. */
static void journal_tenant(struct server *sv, const struct tenant *t, time_t now)
{
	struct doc *doc = tenant_doc(t, now);

	if (doc != NULL)
		journal_served(sv->journal, tenant_domain(t)->name, doc->id, doc->body, now);
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

/* The fetch thread says a provider's policy changed: every customer domain that
 * publishes its own TXT needs the new id (the CNAME'd ones follow the provider's). */
static void provider_changed(void *owner, const char *provider, const char *id)
{
	struct server *sv = owner;
	struct snapshot *s = snapshot_acquire();
	const struct config *c;
	struct buf v;
	time_t now = time(NULL);

	if (s == NULL)
		return;
	c = snapshot_config(s);
	buf_init(&v);
	records_sts_value(&v, id);
	for (size_t i = 0; i < snapshot_size(s) && !v.failed; i++) {
		const struct tenant *t = snapshot_tenant(s, i);
		const struct config_domain *cd = tenant_domain(t);

		if (cd->proxy == NULL || strcmp(cd->proxy, provider) != 0)
			continue;
		log_msg("%s: id changed to %s; publish: _mta-sts.%s. %u IN TXT \"%s\" "
		        "(or CNAME _mta-sts.%s.)",
		        cd->name, id, cd->name, c->sts_ttl, v.data, provider);
		announce(sv, t, now);
		journal_tenant(sv, t, now);
	}
	buf_finish(&v);
	snapshot_unref(s);
}

/* Asked by the ACME threads before each order: whether host's certificate is still
 * theirs to get (a certificate put in the certs directory takes over). */
static bool acme_wanted(void *owner, const char *host)
{
	struct snapshot *s = snapshot_acquire();
	const struct tenant *t = s != NULL ? snapshot_find(s, host, strlen(host)) : NULL;
	bool wanted = t != NULL && certcache_acme(snapshot_certs(s), tenant_index(t));

	(void)owner;
	snapshot_unref(s);
	return wanted;
}

/* A name's ACME files changed: its certificate (or its problem) is looked at again. */
static void acme_pick_up(void *arg, const char *host)
{
	struct snapshot *s = arg;
	const struct tenant *t = snapshot_find(s, host, strlen(host));

	if (t != NULL)
		certcache_refresh_domain(snapshot_certs(s), tenant_index(t), time(NULL));
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
	log_err("cannot listen on %s: %s", text, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

/* Binding is the only thing that needs root: give it up before serving anything. */
static int drop_privileges(const char *user)
{
	struct passwd *pw = getpwnam(user);

	if (pw == NULL) {
		log_err("unknown user %s", user);
		return -1;
	}
	if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0) {
		log_err("cannot switch to user %s: %s", user, strerror(errno));
		return -1;
	}
	if (pw->pw_uid != 0 && setuid(0) == 0) {
		log_err("privileges could be regained after switching to %s", user);
		return -1;
	}
	log_msg("running as user %s", user);
	return 0;
}

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
		        snapshot_superseded(s) ? " (stopped: configuration replaced)" : "");
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
	if ((s = snapshot_acquire()) == NULL)
		return;
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

static bool same_string(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Logs what a new snapshot changed against the old one (NULL at start), and announces
 * every new id (every id with announce_all: a new hook queue). */
static void log_changes(struct server *sv, const struct snapshot *old, const struct snapshot *s,
                        bool announce_all)
{
	const struct config *c = snapshot_config(s);
	size_t n = snapshot_size(s), changed = 0, added = 0, removed = 0;
	time_t now = time(NULL);

	for (size_t i = 0; i < n; i++) {
		const struct tenant *t = snapshot_tenant(s, i);
		const char *host = tenant_domain(t)->host;
		const struct tenant *o =
		    old != NULL ? snapshot_find(old, host, strlen(host)) : NULL;

		if (old == NULL) {
			if (n <= LOG_DOMAINS_MAX)
				log_tenant(c, t, "id");
		} else if (o == NULL) {
			added++;
			log_tenant(c, t, "added, id");
		} else if (!same_id(o, t, now)) {
			changed++;
			log_tenant(c, t, "id changed to");
		} else if (!announce_all) {
			continue;
		}
		/* At start, every id: the hook queue knows which ones it announced before
		 * (state_dir), so a restart with a changed policy publishes it too. */
		announce(sv, t, now);
	}
	if (old == NULL) {
		if (n > LOG_DOMAINS_MAX)
			log_msg("serving %zu domains (mtastsd records lists their ids)", n);
		return;
	}
	for (size_t i = 0; i < snapshot_size(old); i++) {
		const struct config_domain *cd = tenant_domain(snapshot_tenant(old, i));

		if (snapshot_find(s, cd->host, strlen(cd->host)) == NULL) {
			removed++;
			log_warn("%s: removed (keep its policy served until every max_age it "
			         "announced has passed; RFC 8461 8.3)",
			         cd->name);
		}
	}
	log_msg("reloaded %s: %zu domains, %zu ids changed, %zu added, %zu removed", c->file, n,
	        changed, added, removed);
}

static void log_diag_line(void *arg, enum diag_level level, const char *line)
{
	(void)arg;
	log_plain(level == DIAG_ERROR ? LOG_LEVEL_ERR : LOG_LEVEL_WARNING, "%s", line);
}

/* The diagnostics of a load as check prints them, each line at its level (the journal
 * tells them apart). */
static void log_diag(const struct diag *d)
{
	diag_lines(d, log_diag_line, NULL);
}

/* Loads the configuration into a new snapshot, certificates taken over from the running
 * one (prev, may be NULL). Nothing is changed: NULL on any configuration error (all in d). */
static struct snapshot *load(struct server *sv, const struct snapshot *prev, struct diag *d)
{
	struct config *c = config_load(sv->path, d);
	struct certcache *certs;

	if (c == NULL)
		return NULL;
	certs = certcache_create(c, prev != NULL ? snapshot_certs(prev) : NULL, 0, time(NULL), d);
	if (certs == NULL) {
		diag_error(d, sv->path, 0, "out of memory");
		config_destroy(c);
		return NULL;
	}
	return snapshot_create(c, certs, sv->ups, &http_doc_renderer, d);
}

/* The hook queue follows on_change, state_dir and on_change_timeout: when they change, a
 * new queue starts (after the old one is stopped) and returns true, so that it is told
 * every id (it runs the command for the ids its state_dir has not seen announced). */
static bool configure_hooks(struct server *sv, const struct config *c)
{
	char *key = NULL;

	if (c->on_change != NULL) {
		struct buf b;

		buf_init(&b);
		buf_printf(&b, "%s\n%s\n%u", c->on_change, c->state_dir ? c->state_dir : "",
		           c->on_change_timeout);
		if ((key = buf_steal(&b, NULL)) == NULL)
			return false;
	}
	if ((key == NULL && sv->hook_key == NULL) ||
	    (key != NULL && sv->hook_key != NULL && strcmp(key, sv->hook_key) == 0)) {
		free(key);
		return false;
	}
	hooks_destroy(sv->hooks);
	sv->hooks = NULL;
	free(sv->hook_key);
	sv->hook_key = key;
	if (key != NULL &&
	    (sv->hooks = hooks_create(c->on_change, c->state_dir, c->on_change_timeout)) == NULL)
		log_err("on_change %s: cannot start its queue: ids will not be announced",
		        c->on_change);
	return sv->hooks != NULL;
}

/* Puts s in service: everything that follows a configuration (upstream settings, the
 * access log, the hook command) switches only now, with the snapshot. */
static void commit(struct server *sv, struct snapshot *s)
{
	const struct config *c = snapshot_config(s);
	struct snapshot *old = snapshot_publish(snapshot_ref(s));

	bool new_hooks;

	upstreams_configure(sv->ups, c);
	acme_configure(sv->acme, c);
	if (sv->reports != NULL)
		reports_configure(sv->reports, c);
	if (sv->http != NULL)
		http_set_access_log(sv->http, c->access_log);
	new_hooks = configure_hooks(sv, c);
	if (old != NULL && !same_listen(snapshot_config(old), c))
		log_warn("listen addresses changed: they take effect on restart");
	if (old != NULL &&
	    !same_string(snapshot_config(old)->acme_http_listen, c->acme_http_listen))
		log_warn("acme_http_listen changed: it takes effect on restart");
	log_changes(sv, old, s, new_hooks);
	if (old != NULL && !same_string(snapshot_config(old)->state_dir, c->state_dir))
		log_warn("state_dir changed: the journal stays in the previous one until restart");
	journal_sync_begin(sv->journal);
	for (size_t i = 0; i < snapshot_size(s); i++)
		journal_tenant(sv, snapshot_tenant(s, i), time(NULL));
	journal_sync_end(sv->journal, time(NULL));
	snapshot_unref(old);
	/* The files' fingerprint is taken by the next housekeeping, after "ready": with a
	 * million certificates it stats two million files. */
	sv->files_known = false;
	sv->trim_at = time(NULL) + TRIM_DELAY;
	preload_start(&sv->preload);
}

struct first_error {
	char *out;
	size_t size;
	bool found;
};

static void first_error_line(void *arg, enum diag_level level, const char *line)
{
	struct first_error *fe = arg;

	if (level != DIAG_ERROR || fe->found)
		return;
	snprintf(fe->out, fe->size, "%s", line);
	fe->found = true;
}

/* The first error of a rejected load, for the service manager's one status line
 * (control characters from file names or values become '?'). */
static void first_error(const struct diag *d, char *out, size_t size)
{
	struct first_error fe = {out, size, false};

	diag_lines(d, first_error_line, &fe);
	if (!fe.found)
		snprintf(out, size, "an error (see the log)");
	for (char *p = out; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
}

/* SIGHUP: the whole configuration, all or nothing. The outcome, in a few words, goes to
 * status. */
static void reload(struct server *sv, char *status, size_t size)
{
	struct snapshot *cur = snapshot_acquire(), *s;
	struct diag d;
	char why[STATUS_MAX - 64];

	diag_init(&d);
	s = load(sv, cur, &d);
	snapshot_unref(cur);
	if (s == NULL) {
		log_err("reload failed, still serving the previous configuration:");
		log_diag(&d);
		first_error(&d, why, sizeof(why));
		snprintf(status, size,
		         "reload rejected: %s, still serving the previous configuration", why);
		diag_finish(&d);
		stats_reload(false);
		return;
	}
	log_diag(&d);
	diag_finish(&d);
	commit(sv, s);
	snprintf(status, size, "reloaded: serving %zu domains", snapshot_size(s));
	snapshot_unref(s);
	stats_reload(true);
}

/* SIGUSR1: one line saying how things stand. */
static void log_status(const struct server *sv)
{
	struct snapshot *s = snapshot_acquire();
	size_t states[CERT_STATES] = {0}, faults[TLS_FAULTS];
	char since[LOG_TIME_MAX];

	if (s == NULL)
		return;
	if (snapshot_certs(s) != NULL)
		certcache_count(snapshot_certs(s), states, faults);
	log_time(sv->started, since, sizeof(since));
	log_msg("SIGUSR1: pid %ld serving %zu domains (%zu with a degraded certificate) from %s "
	        "since %s; %lu reloads, %lu rejected",
	        (long)getpid(), snapshot_size(s), states[CERT_DEGRADED], sv->path, since,
	        stats_reloads(true), stats_reloads(false));
	snapshot_unref(s);
}

/* Every second: certificate files replaced (cert_watch), certificates running out, freed
 * memory to give back. */
static void housekeeping(struct server *sv)
{
	struct snapshot *s = snapshot_acquire();
	struct certcache *cc = s != NULL ? snapshot_certs(s) : NULL;
	const struct config *c = s != NULL ? snapshot_config(s) : NULL;
	time_t now = time(NULL);

	/* The replaced snapshot is freed when its last connection closes; then give its
	 * memory back (glibc keeps freed heap otherwise: a reload of a million domains would
	 * leave the process twice its size). */
	if (sv->trim_at != 0 && now >= sv->trim_at) {
		malloc_trim(0);
		sv->trim_at = 0;
	}
	if (cc == NULL) {
		snapshot_unref(s);
		return;
	}
	/* Renewed or repaired certificates are picked up without a signal, domain by
	 * domain; a half-written pair is looked at again when it changes again. */
	if (c->cert_watch != 0 && !sv->files_known) {
		sv->files = watch_fingerprint(c);
		sv->files_known = true;
		sv->next_watch = now + c->cert_watch;
	} else if (c->cert_watch != 0 && now >= sv->next_watch) {
		uint64_t files = watch_fingerprint(c);

		sv->next_watch = now + c->cert_watch;
		if (files != sv->files) {
			log_msg("certificate files changed: looking at them again");
			sv->files = files;
			certcache_refresh(cc, now);
		}
	}
	certcache_tick(cc, now);
	acme_changed(sv->acme, acme_pick_up, s);
	journal_checkpoint(sv->journal, now);
	snapshot_unref(s);
}

int serve_run(const char *path)
{
	struct server sv = {.path = path, .started = time(NULL)};
	struct snapshot *s = NULL;
	struct diag d;
	int fds[CONFIG_LISTEN_MAX], admin_fd = -1, challenge_fd = -1;
	size_t n_fds = 0;
	sigset_t set;
	int sig, ret = 1;
	const struct config *c;

	/* Signals are taken synchronously by this thread only; the server's threads inherit
	 * the mask. */
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	log_init();
	log_msg("mtastsd %s starting, pid %ld, configuration %s", MTASTSD_VERSION, (long)getpid(),
	        path);
	/* Before the privileges are dropped: the socket may be root's alone. */
	sv.notify = notify_create();

	sv.ups = upstreams_create(&http_doc_renderer, provider_changed, &sv);
	sv.acme = acme_create(acme_wanted, &sv);
	if (sv.ups == NULL || sv.acme == NULL)
		goto out;
	diag_init(&d);
	s = load(&sv, NULL, &d);
	log_diag(&d);
	diag_finish(&d);
	if (s == NULL)
		goto out;
	c = snapshot_config(s);
	for (size_t i = 0; i < c->n_listen; i++) {
		const struct config_listen *l = &c->listen[i];
		int fd = bind_listen(&l->addr, l->addr_len, l->text);

		if (fd < 0)
			goto out;
		fds[n_fds++] = fd;
	}
	if (c->admin_listen != NULL &&
	    (admin_fd = bind_listen(&c->admin_addr.addr, c->admin_addr.len, c->admin_listen)) < 0)
		goto out;
	if (c->acme_http_listen != NULL &&
	    (challenge_fd = bind_listen(&c->acme_http_addr.addr, c->acme_http_addr.len,
	                                c->acme_http_listen)) < 0)
		goto out;
	if (c->user != NULL && drop_privileges(c->user) < 0)
		goto out;
	if ((sv.journal = journal_open(c->state_dir, true)) == NULL)
		goto out;
	if ((sv.reports = reports_start(c)) == NULL)
		goto out;
	commit(&sv, s);
	if ((sv.http = http_start(c, fds, n_fds, sv.acme, sv.reports)) == NULL)
		goto out;
	n_fds = 0; /* owned by the server now */
	if (upstreams_start(sv.ups) < 0)
		goto out;
	if (admin_fd >= 0) {
		sv.admin = admin_start(admin_fd, sv.acme, sv.journal, sv.reports);
		admin_fd = -1;
		if (sv.admin == NULL)
			goto out;
	}
	if (challenge_fd >= 0) {
		sv.challenge = challenge_start(challenge_fd, sv.acme);
		challenge_fd = -1;
		if (sv.challenge == NULL)
			goto out;
	}
	log_msg("ready");
	notify_send(sv.notify, "READY=1\nSTATUS=serving %zu domains\nMAINPID=%ld", snapshot_size(s),
	            (long)getpid());
	housekeeping(&sv); /* the certificate files' fingerprint, now that we serve */
	snapshot_unref(s);
	s = NULL;
	for (;;) {
		struct timespec tick = {1, 0}, mono;
		char status[STATUS_MAX];

		sig = sigtimedwait(&set, NULL, &tick);
		if (sig == SIGHUP) {
			log_msg("SIGHUP: reloading %s", path);
			/* systemd 253 and later want the clock of the reload request with it. */
			clock_gettime(CLOCK_MONOTONIC, &mono);
			notify_send(sv.notify, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading",
			            (unsigned long long)mono.tv_sec * 1000000ULL +
			                (unsigned long long)mono.tv_nsec / 1000ULL);
			reload(&sv, status, sizeof(status));
			notify_send(sv.notify, "READY=1\nSTATUS=%s", status);
		} else if (sig == SIGUSR1) {
			log_status(&sv);
		} else if (sig == SIGTERM || sig == SIGINT) {
			log_msg("%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
			notify_send(sv.notify, "STOPPING=1\nSTATUS=stopping");
			break;
		}
		/* SIGUSR2: taken and ignored, so that a stray one does not kill the server. */
		housekeeping(&sv);
	}
	ret = 0;
out:
	snapshot_unref(snapshot_publish(NULL)); /* also stops the preload */
	preload_stop(&sv.preload);
	admin_stop(sv.admin);
	if (admin_fd >= 0)
		close(admin_fd);
	challenge_stop(sv.challenge);
	if (challenge_fd >= 0)
		close(challenge_fd);
	reports_shutdown(sv.reports); /* resumes the connections waiting for a store */
	http_stop(sv.http);
	reports_free(sv.reports);
	acme_destroy(sv.acme); /* after the listeners that answer its challenges */
	for (size_t i = 0; i < n_fds; i++)
		close(fds[i]);
	snapshot_unref(s);
	upstreams_destroy(sv.ups);
	hooks_destroy(sv.hooks);
	free(sv.hook_key);
	journal_close(sv.journal, true, time(NULL)); /* nothing serves it any more */
	notify_destroy(sv.notify);
	return ret;
}
