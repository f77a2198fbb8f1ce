/* upstream: provider policies (RFC 8461 §8.2): shared fetches, cache, persistence, refresh */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "dns.h"
#include "fetch.h"
#include "hash.h"
#include "log.h"
#include "doc.h"
#include "schedule.h"
#include "statefile.h"
#include "upstream.h"

#define CACHE_MAGIC "mtastsd-upstream-cache 1"

struct settings {
	char *state_dir;
	char *ca_file;
	char *dns_server;
	unsigned refresh;
	unsigned dns_poll;
	unsigned timeout;
	unsigned connect_timeout;
	unsigned retry;
	unsigned port;
};

struct upstream {
	struct upstreams *reg;
	char *provider;
	char host[300];    /* mta-sts.<provider> */
	atomic_uint users; /* snapshots that reference it */

	pthread_mutex_t lock; /* everything below */
	struct doc *doc;      /* last good copy, canonical */
	time_t fetched_at;
	unsigned max_age;
	char fetched_txt_id[POLICY_ID_MAX + 1]; /* provider id seen when fetched */
	char txt_id[POLICY_ID_MAX + 1];         /* provider id last seen */
	time_t next_dns;
	time_t next_fetch;
	time_t last_attempt;
	unsigned failures;
	unsigned long fetches_ok;
	unsigned long fetches_failed;
	char last_error[FETCH_ERROR_MAX];
};

struct upstreams {
	pthread_mutex_t lock; /* list, index, settings */
	struct upstream **v;
	size_t n;
	size_t cap;
	struct hash index; /* provider -> upstream */
	struct settings set;
	const struct doc_renderer *render;
	upstream_changed_fn *changed;
	void *owner;

	pthread_cond_t wake;
	bool stop;
	bool running;
	pthread_t thread;
};

static void settings_finish(struct settings *s)
{
	free(s->state_dir);
	free(s->ca_file);
	free(s->dns_server);
	memset(s, 0, sizeof(*s));
}

static char *dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

static void settings_copy(struct settings *dst, const struct settings *src)
{
	*dst = *src;
	dst->state_dir = dup_or_null(src->state_dir);
	dst->ca_file = dup_or_null(src->ca_file);
	dst->dns_server = dup_or_null(src->dns_server);
}

void upstreams_configure(struct upstreams *u, const struct config *c)
{
	struct settings s = {
	    .state_dir = dup_or_null(c->state_dir),
	    .ca_file = dup_or_null(c->upstream_ca),
	    .dns_server = dup_or_null(c->dns_server),
	    .refresh = c->upstream_refresh,
	    .dns_poll = c->upstream_dns_poll,
	    .timeout = c->upstream_timeout,
	    .connect_timeout = c->upstream_connect_timeout,
	    .retry = c->upstream_retry,
	    .port = c->upstream_port ? c->upstream_port : 443,
	};

	pthread_mutex_lock(&u->lock);
	settings_finish(&u->set);
	u->set = s;
	pthread_mutex_unlock(&u->lock);
}

struct upstreams *upstreams_create(const struct doc_renderer *render, upstream_changed_fn *changed,
                                   void *owner)
{
	struct upstreams *u = calloc(1, sizeof(*u));

	if (u == NULL)
		return NULL;
	if (hash_init(&u->index, 16) < 0) {
		free(u);
		return NULL;
	}
	pthread_mutex_init(&u->lock, NULL);
	pthread_cond_init(&u->wake, NULL);
	u->render = render;
	u->changed = changed;
	u->owner = owner;
	return u;
}

void upstreams_destroy(struct upstreams *u)
{
	if (u == NULL)
		return;
	if (u->running) {
		pthread_mutex_lock(&u->lock);
		u->stop = true;
		pthread_cond_signal(&u->wake);
		pthread_mutex_unlock(&u->lock);
		pthread_join(u->thread, NULL);
	}
	for (size_t i = 0; i < u->n; i++) {
		doc_unref(u->v[i]->doc);
		pthread_mutex_destroy(&u->v[i]->lock);
		free(u->v[i]->provider);
		free(u->v[i]);
	}
	free(u->v);
	hash_finish(&u->index);
	settings_finish(&u->set);
	pthread_cond_destroy(&u->wake);
	pthread_mutex_destroy(&u->lock);
	free(u);
}

static int cache_path(char *out, size_t n, const char *dir, const char *provider)
{
	int r = snprintf(out, n, "%s/%s.policy", dir, provider);

	return (r < 0 || (size_t)r >= n) ? -1 : 0;
}

/* The policy URL of up with the port of s. 0 / -1 (too long). */
static int policy_url(const struct upstream *up, unsigned port, char *out, size_t size)
{
	int r = port == 443
	            ? snprintf(out, size, "https://%s/.well-known/mta-sts.txt", up->host)
	            : snprintf(out, size, "https://%s:%u/.well-known/mta-sts.txt", up->host, port);

	return r < 0 || (size_t)r >= size ? -1 : 0;
}

/* Installs a validated body as the copy to serve. Returns true when the served bytes
 * changed. Called with up->lock held. */
static bool install(struct upstream *up, const struct policy *p, time_t fetched_at,
                    const char *txt_id)
{
	size_t len;
	char *body = policy_render(p, &len);
	struct doc *d =
	    body ? doc_create(body, len, policy_mode_name(p->mode), NULL, up->reg->render) : NULL;
	bool changed;

	free(body);
	if (d == NULL)
		return false;
	changed = up->doc == NULL || strcmp(up->doc->id, d->id) != 0;
	if (changed) {
		doc_unref(up->doc);
		up->doc = d;
	} else {
		doc_unref(d);
	}
	up->fetched_at = fetched_at;
	up->max_age = p->max_age;
	snprintf(up->fetched_txt_id, sizeof(up->fetched_txt_id), "%s", txt_id);
	return changed;
}

/* Reads the last good copy written by persist(); a damaged file is ignored (logged). */
static void load_cache(struct upstream *up, const char *dir)
{
	char path[4096], *data = NULL, *body, *line, *save = NULL;
	long long fetched = -1;
	char txt_id[POLICY_ID_MAX + 1] = "";
	struct policy p;
	struct diag d;
	size_t len;
	FILE *f;

	if (dir == NULL || cache_path(path, sizeof(path), dir, up->provider) < 0)
		return;
	if ((f = fopen(path, "rb")) == NULL)
		return;
	data = malloc(POLICY_BODY_MAX + 1024);
	len = data ? fread(data, 1, POLICY_BODY_MAX + 1023, f) : 0;
	fclose(f);
	if (data == NULL)
		return;
	data[len] = 0;
	body = strstr(data, "\n\n");
	if (body == NULL || strncmp(data, CACHE_MAGIC "\n", strlen(CACHE_MAGIC) + 1) != 0)
		goto bad;
	*body = 0;
	body += 2;
	for (line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *end;

		if (strncmp(line, "fetched ", 8) == 0) {
			errno = 0;
			fetched = strtoll(line + 8, &end, 10);
			if (errno != 0 || *end != 0 || fetched < 0)
				goto bad;
		} else if (strncmp(line, "txt-id ", 7) == 0 && policy_id_valid(line + 7)) {
			snprintf(txt_id, sizeof(txt_id), "%s", line + 7);
		}
	}
	if (fetched < 0)
		goto bad;
	diag_init(&d);
	policy_init(&p);
	if (policy_parse(&p, body, strlen(body), &d, path) < 0) {
		diag_finish(&d);
		goto bad;
	}
	diag_finish(&d);
	install(up, &p, (time_t)fetched, txt_id);
	policy_finish(&p);
	free(data);
	return;
bad:
	log_warn("%s: damaged cache file ignored", path);
	free(data);
}

/* Writes the copy being served, whole or not at all (statefile). */
static void persist(const struct upstream *up, const char *dir, const char *url,
                    const struct doc *d, time_t fetched_at, const char *txt_id)
{
	char path[4096];
	struct buf b;

	if (dir == NULL || cache_path(path, sizeof(path), dir, up->provider) < 0)
		return;
	buf_init(&b);
	buf_printf(&b, CACHE_MAGIC "\nprovider %s\nurl %s\nfetched %lld\ntxt-id %s\n\n",
	           up->provider, url, (long long)fetched_at, txt_id[0] ? txt_id : "-");
	buf_append(&b, d->body, d->len);
	if (b.failed)
		errno = ENOMEM;
	if (b.failed || statefile_write(path, b.data, b.len, 0644) < 0)
		log_err("%s: cannot save the provider policy: %s", path, strerror(errno));
	buf_finish(&b);
}

struct upstream *upstreams_use(struct upstreams *u, const char *provider,
                               const struct config *config)
{
	struct upstream *up;
	int r;

	pthread_mutex_lock(&u->lock);
	up = hash_get(&u->index, provider, strlen(provider));
	if (up != NULL) {
		atomic_fetch_add(&up->users, 1);
		pthread_mutex_unlock(&u->lock);
		return up;
	}
	if (u->n == u->cap) {
		size_t cap = u->cap ? u->cap * 2 : 8;
		struct upstream **v = realloc(u->v, cap * sizeof(*v));

		if (v == NULL)
			goto fail;
		u->v = v;
		u->cap = cap;
	}
	if ((up = calloc(1, sizeof(*up))) == NULL || (up->provider = strdup(provider)) == NULL)
		goto fail;
	r = snprintf(up->host, sizeof(up->host), "mta-sts.%s", provider);
	if (r < 0 || (size_t)r >= sizeof(up->host))
		goto fail;
	if (hash_put(&u->index, up->provider, up, NULL) < 0)
		goto fail;
	up->reg = u;
	pthread_mutex_init(&up->lock, NULL);
	atomic_init(&up->users, 1);
	load_cache(up, config->state_dir);
	/* The same schedule as after a fetch: a copy kept across a restart must be renewed
	 * before its max_age runs out, even if upstream_refresh is longer. */
	up->next_fetch =
	    up->doc != NULL
	        ? schedule_after_fetch(up->fetched_at, config->upstream_refresh, up->max_age)
	        : 0;
	u->v[u->n++] = up;
	pthread_mutex_unlock(&u->lock);
	return up;
fail:
	if (up != NULL)
		free(up->provider);
	free(up);
	pthread_mutex_unlock(&u->lock);
	return NULL;
}

void upstream_release(struct upstream *up)
{
	/* Entries stay in the registry (their cache is worth keeping across reloads); an
	 * entry no snapshot uses is simply not refreshed. */
	if (up != NULL)
		atomic_fetch_sub(&up->users, 1);
}

static bool fresh(const struct upstream *up, time_t now)
{
	return up->doc != NULL && now < up->fetched_at + (time_t)up->max_age;
}

struct doc *upstream_doc(struct upstream *up, time_t now)
{
	struct doc *d = NULL;

	pthread_mutex_lock(&up->lock);
	if (fresh(up, now))
		d = doc_ref(up->doc);
	pthread_mutex_unlock(&up->lock);
	return d;
}

void upstream_info(struct upstream *up, time_t now, struct upstream_info *ret)
{
	memset(ret, 0, sizeof(*ret));
	ret->provider = up->provider;
	pthread_mutex_lock(&up->lock);
	ret->has_policy = fresh(up, now);
	if (up->doc != NULL) {
		ret->fetched_at = up->fetched_at;
		ret->expires_at = up->fetched_at + (time_t)up->max_age;
		snprintf(ret->id, sizeof(ret->id), "%s", up->doc->id);
	}
	snprintf(ret->txt_id, sizeof(ret->txt_id), "%s", up->txt_id);
	ret->failures = up->failures;
	ret->fetches_ok = up->fetches_ok;
	ret->fetches_failed = up->fetches_failed;
	snprintf(ret->last_error, sizeof(ret->last_error), "%s", up->last_error);
	pthread_mutex_unlock(&up->lock);
}

static void fetch_failed(struct upstream *up, const char *url, time_t now, const char *why,
                         unsigned retry)
{
	const char *outcome;

	pthread_mutex_lock(&up->lock);
	up->failures++;
	up->fetches_failed++;
	up->next_fetch = schedule_after_failure(now, retry);
	snprintf(up->last_error, sizeof(up->last_error), "%s", why);
	/* Decided under the lock: the fetch thread is not the only one touching doc. */
	outcome = fresh(up, now)    ? "keeping the last good copy"
	          : up->doc != NULL ? "the last good copy is past its max_age (503)"
	                            : "no policy to serve (503)";
	pthread_mutex_unlock(&up->lock);
	log_warn("provider %s: fetch of %s failed: %s; %s", up->provider, url, why, outcome);
}

static void fetch_done(struct upstream *up, struct fetch_job *job, time_t now,
                       const struct settings *s)
{
	struct policy p;
	struct diag d;
	struct doc *doc;
	bool changed;
	char id[POLICY_ID_MAX + 1], txt_id[POLICY_ID_MAX + 1];

	if (!job->ok) {
		fetch_failed(up, job->url, now, job->error, s->retry);
		return;
	}
	diag_init(&d);
	policy_init(&p);
	if (policy_parse(&p, job->body, job->len, &d, job->url) < 0) {
		char why[FETCH_ERROR_MAX];

		snprintf(why, sizeof(why), "invalid policy (%zu errors, first: line %u: %s)",
		         d.n_errors, d.n ? d.v[0].line : 0, d.n ? d.v[0].msg : "?");
		diag_finish(&d);
		fetch_failed(up, job->url, now, why, s->retry);
		return;
	}
	diag_finish(&d);
	pthread_mutex_lock(&up->lock);
	snprintf(txt_id, sizeof(txt_id), "%s", up->txt_id);
	changed = install(up, &p, now, txt_id);
	up->failures = 0;
	up->fetches_ok++;
	up->last_error[0] = 0;
	up->next_fetch = schedule_after_fetch(now, s->refresh, p.max_age);
	snprintf(id, sizeof(id), "%s", up->doc->id);
	doc = doc_ref(up->doc);
	pthread_mutex_unlock(&up->lock);
	policy_finish(&p);
	/* Off the lock that requests take. */
	persist(up, s->state_dir, job->url, doc, now, txt_id);
	doc_unref(doc);
	if (changed) {
		log_msg("provider %s: policy changed, new id %s", up->provider, id);
		if (up->reg->changed != NULL)
			up->reg->changed(up->reg->owner, up->provider, id);
	}
}

/* Scratch space of one round, per provider. */
struct round_item {
	size_t who;  /* index of the provider queried */
	size_t fwho; /* index of the provider fetched */
	char name[310];
	char resolve[DNS_ADDRS_MAX + 320];
	char url[400];
};

/* One round: poll due TXT ids, then fetch every provider that is due, all at once. */
static void run_round(struct upstreams *u)
{
	struct settings s;
	struct upstream **v;
	struct dns_query *q = NULL;
	struct fetch_job *jobs = NULL;
	struct round_item *it = NULL;
	struct dns *dns;
	size_t n, nq = 0, nf = 0;
	time_t now = time(NULL);
	char err[200];

	pthread_mutex_lock(&u->lock);
	settings_copy(&s, &u->set);
	n = u->n;
	v = malloc((n ? n : 1) * sizeof(*v));
	if (v != NULL && n > 0)
		memcpy(v, u->v, n * sizeof(*v));
	pthread_mutex_unlock(&u->lock);
	if (v == NULL || (q = calloc(n ? n : 1, sizeof(*q))) == NULL ||
	    (jobs = calloc(n ? n : 1, sizeof(*jobs))) == NULL ||
	    (it = calloc(n ? n : 1, sizeof(*it))) == NULL)
		goto out;
	dns = dns_create(s.dns_server, s.timeout, err, sizeof(err));
	if (dns == NULL) {
		log_err("%s", err);
		goto out;
	}

	/* 1. The provider's _mta-sts id: a change means a new policy is published. */
	for (size_t i = 0; i < n; i++) {
		if (atomic_load(&v[i]->users) == 0 || now < v[i]->next_dns)
			continue;
		snprintf(it[nq].name, sizeof(it[nq].name), "_mta-sts.%s", v[i]->provider);
		q[nq].kind = DNS_STS_ID;
		q[nq].name = it[nq].name;
		it[nq++].who = i;
	}
	dns_run(dns, q, nq);
	for (size_t k = 0; k < nq; k++) {
		struct upstream *up = v[it[k].who];

		pthread_mutex_lock(&up->lock);
		up->next_dns = now + s.dns_poll;
		if (q[k].result == DNS_OK) {
			/* A new id is worth one fetch right away; upstream_retry paces the
			 * next ones if that fails. */
			up->next_fetch =
			    schedule_after_poll(now, up->next_fetch, up->last_attempt, q[k].id,
			                        up->txt_id, up->fetched_txt_id);
			if (up->txt_id[0] != 0 && strcmp(q[k].id, up->txt_id) != 0)
				log_msg("provider %s: _mta-sts id changed %s -> %s, refetching",
				        up->provider, up->txt_id, q[k].id);
			snprintf(up->txt_id, sizeof(up->txt_id), "%s", q[k].id);
		}
		pthread_mutex_unlock(&up->lock);
	}

	/* 2. Addresses of the due policy hosts, then every due fetch concurrently. */
	nq = 0;
	for (size_t i = 0; i < n; i++) {
		if (atomic_load(&v[i]->users) == 0 || now < v[i]->next_fetch)
			continue;
		q[nq].kind = DNS_ADDRS;
		q[nq].name = v[i]->host;
		it[nq++].who = i;
	}
	dns_run(dns, q, nq);
	dns_destroy(dns);
	for (size_t k = 0; k < nq; k++) {
		struct upstream *up = v[it[k].who];

		pthread_mutex_lock(&up->lock);
		up->last_attempt = now;
		pthread_mutex_unlock(&up->lock);
		if (policy_url(up, s.port, it[nf].url, sizeof(it[nf].url)) < 0)
			continue; /* cannot happen: config bounds the names */
		if (q[k].result != DNS_OK) {
			fetch_failed(up, it[nf].url, now, q[k].error, s.retry);
			continue;
		}
		snprintf(it[nf].resolve, sizeof(it[nf].resolve), "%s:%u:%s", up->host, s.port,
		         q[k].addrs);
		jobs[nf].url = it[nf].url;
		jobs[nf].resolve = it[nf].resolve;
		it[nf++].fwho = it[k].who;
	}
	if (nf > 0) {
		struct fetch_opts fo = {s.ca_file, s.connect_timeout, s.timeout};

		fetch_run(jobs, nf, &fo);
		for (size_t k = 0; k < nf; k++) {
			fetch_done(v[it[k].fwho], &jobs[k], time(NULL), &s);
			free(jobs[k].body);
		}
	}
out:
	free(it);
	free(jobs);
	free(q);
	free(v);
	settings_finish(&s);
}

static void *thread_main(void *arg)
{
	struct upstreams *u = arg;

	pthread_mutex_lock(&u->lock);
	while (!u->stop) {
		struct timespec ts;

		pthread_mutex_unlock(&u->lock);
		run_round(u);
		pthread_mutex_lock(&u->lock);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		if (!u->stop)
			pthread_cond_timedwait(&u->wake, &u->lock, &ts);
	}
	pthread_mutex_unlock(&u->lock);
	return NULL;
}

int upstreams_start(struct upstreams *u)
{
	int r = pthread_create(&u->thread, NULL, thread_main, u);

	if (r != 0) {
		log_err("cannot start the upstream thread: %s", strerror(r));
		return -1;
	}
	u->running = true;
	return 0;
}
