/* snapshot: one immutable, refcounted view of config + rendered policies + certificates */
#include <errno.h>
#include <dirent.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "records.h"
#include "snapshot.h"
#include "upstream.h"

#define EXPIRY_WARN_DAYS 14

static void (*response_free)(void *response);

void doc_set_response_free(void (*fn)(void *response))
{
	response_free = fn;
}

struct doc *doc_create(const char *body, size_t len, const char *mode)
{
	/* One allocation: a million domains mean a million docs. */
	struct doc *d = calloc(1, sizeof(*d) + len + 1);

	if (d == NULL)
		return NULL;
	memcpy(d->body, body, len);
	d->body[len] = 0;
	d->len = len;
	d->mode = mode;
	policy_id(body, len, d->id);
	atomic_init(&d->refs, 1);
	atomic_init(&d->response, NULL);
	return d;
}

struct doc *doc_ref(struct doc *d)
{
	atomic_fetch_add_explicit(&d->refs, 1, memory_order_relaxed);
	return d;
}

void doc_unref(struct doc *d)
{
	void *response;

	if (d == NULL || atomic_fetch_sub_explicit(&d->refs, 1, memory_order_acq_rel) != 1)
		return;
	response = atomic_load(&d->response);
	if (response != NULL && response_free != NULL)
		response_free(response);
	free(d);
}

static int render_static(struct tenant *t, const struct config_domain *cd, struct diag *d,
                         const char *file)
{
	size_t len;
	char *body = policy_render(&cd->policy, &len);

	if (body == NULL) {
		diag_error(d, file, cd->line, "out of memory");
		return -1;
	}
	t->doc = doc_create(body, len, policy_mode_name(cd->policy.mode));
	free(body);
	if (t->doc == NULL) {
		diag_error(d, file, cd->line, "out of memory");
		return -1;
	}
	/* A fixed id replaces the derived one; config warns that it is then the operator's
	 * job to change it with the policy. */
	if (cd->id != NULL) {
		size_t n = strlen(cd->id);

		memcpy(t->doc->id, cd->id, n + 1);
	}
	return 0;
}

static int link_upstream(struct tenant *t, struct upstreams *ups, time_t now, struct diag *d,
                         const char *file)
{
	const struct config_domain *cd = t->domain;
	struct upstream_info info;

	t->up = ups != NULL ? upstreams_use(ups, cd->proxy) : NULL;
	if (t->up == NULL) {
		diag_error(d, file, cd->proxy_line, "out of memory");
		return -1;
	}
	upstream_info(t->up, now, &info);
	if (!info.has_policy)
		diag_warn(d, file, cd->proxy_line,
		          "%s: no valid copy of the policy of %s yet: answers 503 until the "
		          "first successful fetch",
		          cd->name, cd->proxy);
	return 0;
}

/* Puts a loaded certificate into t's slot and the cache ring, evicting the oldest when
 * full. Called with cache_lock held; takes a new reference. */
static void cache_put(struct snapshot *s, struct tenant *t, struct tls_cert *c)
{
	if (s->cache_n == s->cache_cap) {
		struct tenant *old = s->cache[s->cache_next];

		tls_cert_unref(atomic_exchange(&old->lazy_cert, NULL));
	} else {
		s->cache_n++;
	}
	s->cache[s->cache_next] = t;
	s->cache_next = (s->cache_next + 1) % s->cache_cap;
	atomic_store(&t->lazy_cert, tls_cert_ref(c));
}

struct tls_cert *tenant_cert_loaded(struct snapshot *s, struct tenant *t)
{
	struct tls_cert *c;

	if (t->cert != NULL)
		return tls_cert_ref(t->cert);
	if (!s->lazy)
		return NULL;
	/* Under the lock: eviction must not free it between the load and the ref. */
	pthread_mutex_lock(&s->cache_lock);
	c = atomic_load_explicit(&t->lazy_cert, memory_order_relaxed);
	if (c != NULL)
		tls_cert_ref(c);
	pthread_mutex_unlock(&s->cache_lock);
	return c;
}

struct tls_cert *tenant_cert(struct snapshot *s, struct tenant *t)
{
	const struct config_domain *cd = t->domain;
	struct tls_cert *c = tenant_cert_loaded(s, t);
	time_t now;
	char err[256];

	if (c != NULL || !s->lazy || cd->cert == NULL)
		return c;
	now = time(NULL);
	if (atomic_load(&t->lazy_failed) > now - 60)
		return NULL;
	/* Two handshakes may load the same pair at once; the second to finish drops its
	 * copy. */
	c = tls_cert_load(cd->cert, cd->key, cd->host, err, sizeof(err));
	if (c == NULL) {
		atomic_store(&t->lazy_failed, now);
		log_msg("%s: cannot load its certificate: %s", cd->name, err);
		return NULL;
	}
	pthread_mutex_lock(&s->cache_lock);
	if (atomic_load_explicit(&t->lazy_cert, memory_order_relaxed) != NULL) {
		struct tls_cert *mine = c;

		c = tls_cert_ref(atomic_load_explicit(&t->lazy_cert, memory_order_relaxed));
		pthread_mutex_unlock(&s->cache_lock);
		tls_cert_unref(mine);
		return c;
	}
	cache_put(s, t, c);
	pthread_mutex_unlock(&s->cache_lock);
	return c;
}

size_t snapshot_preload(struct snapshot *s)
{
	size_t loaded = 0;

	/* Warming up only makes sense when every certificate fits: with more domains than
	 * cache, which ones will be asked for is anybody's guess. */
	if (!s->lazy || s->cache_cap < s->n_with_files)
		return 0;
	for (size_t i = 0; i < s->n_tenants && !atomic_load(&s->superseded); i++) {
		struct tenant *t = &s->tenants[i];
		struct tls_cert *c;

		if (t->domain->cert == NULL || atomic_load(&t->lazy_cert) != NULL)
			continue;
		pthread_mutex_lock(&s->cache_lock);
		bool full = s->cache_n == s->cache_cap;
		pthread_mutex_unlock(&s->cache_lock);
		if (full)
			break;
		if ((c = tenant_cert(s, t)) != NULL)
			loaded++;
		tls_cert_unref(c);
	}
	return loaded;
}

struct doc *tenant_doc(const struct tenant *t, time_t now)
{
	if (t->doc != NULL)
		return doc_ref(t->doc);
	return t->up != NULL ? upstream_doc(t->up, now) : NULL;
}

static void lint_expiry(const struct tls_cert *c, const struct config_domain *cd, time_t now,
                        struct diag *d, const char *file, unsigned line)
{
	if (c->not_after <= now)
		diag_error(d, file, line, "%s: certificate for %s expired", c->cert_file, cd->host);
	else if (c->not_after - now < EXPIRY_WARN_DAYS * 86400)
		diag_warn(d, file, line, "%s: certificate for %s expires in %lld days",
		          c->cert_file, cd->host, (long long)((c->not_after - now) / 86400));
}

/* Lazy mode at load time: the files must at least exist, so that the commonest mistake
 * still fails the reload instead of the first handshake. A directory is listed once
 * (a million access(2) calls in one directory cost seconds; one readdir pass does not). */
struct dir_list {
	char *dir;
	struct hash names;
	char **v;
	size_t n;
};

struct listing {
	struct hash dirs; /* dir -> struct dir_list */
	struct dir_list **v;
	size_t n;
};

static void listing_finish(struct listing *l)
{
	for (size_t i = 0; i < l->n; i++) {
		for (size_t k = 0; k < l->v[i]->n; k++)
			free(l->v[i]->v[k]);
		free(l->v[i]->v);
		hash_finish(&l->v[i]->names);
		free(l->v[i]->dir);
		free(l->v[i]);
	}
	free(l->v);
	hash_finish(&l->dirs);
}

static struct dir_list *list_dir(struct listing *l, const char *dir, size_t len)
{
	struct dir_list *dl = hash_get(&l->dirs, dir, len), **v;
	struct dirent *e;
	size_t cap = 0;
	DIR *dh;

	if (dl != NULL)
		return dl;
	if ((dl = calloc(1, sizeof(*dl))) == NULL || (dl->dir = strndup(dir, len)) == NULL ||
	    hash_init(&dl->names, 64) < 0 || (v = realloc(l->v, (l->n + 1) * sizeof(*v))) == NULL) {
		if (dl != NULL)
			free(dl->dir);
		free(dl);
		return NULL;
	}
	l->v = v;
	l->v[l->n++] = dl;
	hash_put(&l->dirs, dl->dir, dl, NULL);
	if ((dh = opendir(dl->dir)) == NULL)
		return dl;
	while ((e = readdir(dh)) != NULL) {
		if (dl->n == cap) {
			char **nv = realloc(dl->v, (cap = cap ? cap * 2 : 256) * sizeof(*nv));

			if (nv == NULL)
				break;
			dl->v = nv;
		}
		if ((dl->v[dl->n] = strdup(e->d_name)) == NULL)
			break;
		hash_put(&dl->names, dl->v[dl->n], dl, NULL);
		dl->n++;
	}
	closedir(dh);
	return dl;
}

static bool listed(struct listing *l, const char *path)
{
	const char *slash = strrchr(path, '/');
	struct dir_list *dl;

	if (slash == NULL)
		return access(path, F_OK) == 0;
	dl = list_dir(l, path, (size_t)(slash - path));
	if (dl == NULL)
		return access(path, F_OK) == 0;
	return hash_get(&dl->names, slash + 1, strlen(slash + 1)) != NULL;
}

static int check_present(struct listing *l, const struct config_domain *cd, struct diag *d,
                         const char *file)
{
	if (!listed(l, cd->cert)) {
		diag_error(d, file, cd->cert_line, "%s: no such file", cd->cert);
		return -1;
	}
	if (!listed(l, cd->key)) {
		diag_error(d, file, cd->key_line, "%s: no such file", cd->key);
		return -1;
	}
	return 0;
}

static int load_cert(struct snapshot *s, struct tenant *t, unsigned flags, time_t now,
                     struct listing *l, struct diag *d)
{
	const struct config_domain *cd = t->domain;
	const char *file = s->config->file;
	unsigned line = cd->cert != NULL ? cd->cert_line : cd->line;
	struct tls_cert *c;
	int ret = -1;

	if (cd->cert != NULL && s->lazy)
		return check_present(l, cd, d, file);
	if (cd->cert != NULL && (flags & SNAPSHOT_VALIDATE))
		/* check: every pair is parsed and let go, so that a million of them do not
		 * have to fit in memory at once. */
		c = tls_cert_parse(cd->cert, cd->key, d, file, cd->cert_line, cd->key_line);
	else if (cd->cert != NULL)
		c = t->cert =
		    tls_store_load(s->tls, cd->cert, cd->key, d, file, cd->cert_line, cd->key_line);
	else
		c = t->cert = tls_store_find(s->tls, cd->host, strlen(cd->host));
	if (c == NULL) {
		if (cd->cert == NULL)
			diag_error(d, file, cd->line,
			           "no certificate for %s in the certs directory %s", cd->host,
			           s->config->certs_dir ? s->config->certs_dir : "(none)");
		return -1;
	}
	if (cd->cert != NULL && !tls_cert_covers(c, cd->host)) {
		diag_error(d, file, cd->cert_line, "%s: certificate does not cover %s", cd->cert,
		           cd->host);
		goto out;
	}
	if (flags & SNAPSHOT_EXPIRY_LINT)
		lint_expiry(c, cd, now, d, file, line);
	else if (c->not_after <= now)
		diag_error(d, file, line, "%s: certificate for %s expired", c->cert_file, cd->host);
	ret = 0;
out:
	if (c != t->cert)
		tls_cert_unref(c);
	return ret;
}

/* Lazy mode on reload: a certificate the previous snapshot had loaded from the same,
 * unchanged files is taken over instead of being loaded again on the next handshake. */
static void keep_lazy(struct snapshot *s, struct tenant *t, struct snapshot *prev)
{
	const struct config_domain *cd = t->domain;
	struct tenant *pt;
	struct tls_cert *c;

	if (cd->cert == NULL || s->cache_n == s->cache_cap ||
	    (pt = snapshot_find(prev, cd->host, strlen(cd->host))) == NULL ||
	    (c = tenant_cert_loaded(prev, pt)) == NULL)
		return;
	if (tls_cert_unchanged(c, cd->cert, cd->key)) {
		pthread_mutex_lock(&s->cache_lock);
		cache_put(s, t, c);
		pthread_mutex_unlock(&s->cache_lock);
	}
	tls_cert_unref(c);
}

/* Decides between eager and lazy certificate loading (cert_cache) and sets up the cache. */
static int start_lazy(struct snapshot *s, unsigned flags)
{
	const struct config *c = s->config;
	size_t with_files = 0, cap = c->cert_cache;

	if (flags & SNAPSHOT_EAGER)
		return 0;
	for (size_t i = 0; i < c->n_domains; i++)
		with_files += c->domains[i].cert != NULL;
	if (cap == CONFIG_CERT_CACHE_AUTO)
		cap = with_files > CONFIG_EAGER_MAX ? CONFIG_CERT_CACHE_DEFAULT : 0;
	if (cap == 0 || with_files == 0)
		return 0;
	s->lazy = true;
	s->n_with_files = with_files;
	s->cache_cap = cap < with_files ? cap : with_files;
	s->cache = calloc(s->cache_cap, sizeof(*s->cache));
	return s->cache != NULL ? 0 : -1;
}

struct snapshot *snapshot_create(struct config *config, unsigned flags, struct upstreams *ups,
                                 struct diag *d)
{
	struct snapshot *s = calloc(1, sizeof(*s));
	size_t errors = d->n_errors;
	time_t now = time(NULL);
	struct listing listing = {0};
	struct snapshot *prev = NULL;

	if (s == NULL || hash_init(&listing.dirs, 16) < 0) {
		free(s);
		config_destroy(config);
		diag_error(d, NULL, 0, "out of memory");
		return NULL;
	}
	atomic_init(&s->refs, 1);
	pthread_mutex_init(&s->cache_lock, NULL);
	s->config = config;
	s->tenants = calloc(config->n_domains ? config->n_domains : 1, sizeof(*s->tenants));
	if (s->tenants == NULL || hash_init(&s->hosts, config->n_domains) < 0) {
		diag_error(d, config->file, 0, "out of memory");
		goto fail;
	}
	if (flags & SNAPSHOT_TLS) {
		if (start_lazy(s, flags) < 0) {
			diag_error(d, config->file, 0, "out of memory");
			goto fail;
		}
		s->tls = tls_store_create();
		if (s->tls == NULL) {
			diag_error(d, config->file, 0, "out of memory");
			goto fail;
		}
		/* A reload parses only certificates that changed. */
		prev = snapshot_acquire();
		if (prev != NULL)
			s->tls->reuse = prev->tls;
		if (config->certs_dir != NULL)
			tls_store_load_dir(s->tls, config->certs_dir, d, config->file,
			                   config->certs_dir_line);
	}
	for (size_t i = 0; i < config->n_domains; i++) {
		const struct config_domain *cd = &config->domains[i];
		struct tenant *t = &s->tenants[s->n_tenants++];

		t->domain = cd;
		if (cd->proxy == NULL && render_static(t, cd, d, config->file) < 0)
			continue;
		if (cd->proxy != NULL && link_upstream(t, ups, now, d, config->file) < 0)
			continue;
		if (hash_put(&s->hosts, cd->host, t, NULL) < 0) {
			diag_error(d, config->file, cd->line, "out of memory");
			continue;
		}
		if (s->tls != NULL && load_cert(s, t, flags, now, &listing, d) == 0 && s->lazy &&
		    prev != NULL)
			keep_lazy(s, t, prev);
	}
	listing_finish(&listing);
	if (s->tls != NULL)
		s->tls->reuse = NULL;
	snapshot_unref(prev);
	prev = NULL;
	if (d->n_errors > errors)
		goto fail_snapshot;
	return s;
fail:
	listing_finish(&listing);
	if (s->tls != NULL)
		s->tls->reuse = NULL;
	snapshot_unref(prev);
fail_snapshot:
	atomic_store(&s->refs, 1);
	snapshot_unref(s);
	return NULL;
}

struct snapshot *snapshot_ref(struct snapshot *s)
{
	atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
	return s;
}

void snapshot_unref(struct snapshot *s)
{
	if (s == NULL || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (size_t i = 0; i < s->n_tenants; i++) {
		doc_unref(s->tenants[i].doc);
		upstream_release(s->tenants[i].up);
		tls_cert_unref(atomic_load(&s->tenants[i].lazy_cert));
	}
	free(s->cache);
	pthread_mutex_destroy(&s->cache_lock);
	free(s->tenants);
	hash_finish(&s->hosts);
	tls_store_destroy(s->tls);
	config_destroy(s->config);
	free(s);
}

struct tenant *snapshot_find(const struct snapshot *s, const char *host, size_t len)
{
	return hash_get(&s->hosts, host, len);
}

int snapshot_records(const struct snapshot *s, bool json, struct buf *out)
{
	size_t n = s->n_tenants ? s->n_tenants : 1;
	struct records_domain *v = calloc(n, sizeof(*v));
	struct doc **docs = calloc(n, sizeof(*docs));
	struct records_opts o = {s->config->sts_ttl, s->config->tlsrpt_ttl};
	time_t now = time(NULL);
	int ret = -1;

	if (v == NULL || docs == NULL)
		goto out;
	for (size_t i = 0; i < s->n_tenants; i++) {
		const struct tenant *t = &s->tenants[i];

		v[i].domain = t->domain->name;
		v[i].proxy = t->domain->proxy;
		v[i].rua = (const char *const *)t->domain->tlsrpt;
		v[i].n_rua = t->domain->n_tlsrpt;
		docs[i] = tenant_doc(t, now);
		if (docs[i] != NULL) {
			v[i].id = docs[i]->id;
			v[i].body = docs[i]->body;
			v[i].body_len = docs[i]->len;
			v[i].mode = docs[i]->mode;
		}
	}
	ret =
	    json ? records_json(out, v, s->n_tenants, &o) : records_zone(out, v, s->n_tenants, &o);
	if (out->failed)
		ret = -1;
out:
	for (size_t i = 0; docs != NULL && i < s->n_tenants; i++)
		doc_unref(docs[i]);
	free(docs);
	free(v);
	return ret;
}

/* The one piece of shared mutable state. A mutex (not a bare atomic pointer) because
 * taking a reference must not race with the last unref of the snapshot being replaced. */
static pthread_mutex_t current_lock = PTHREAD_MUTEX_INITIALIZER;
static struct snapshot *current;

struct snapshot *snapshot_acquire(void)
{
	struct snapshot *s;

	pthread_mutex_lock(&current_lock);
	s = current;
	if (s != NULL)
		atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
	pthread_mutex_unlock(&current_lock);
	return s;
}

struct snapshot *snapshot_publish(struct snapshot *s)
{
	struct snapshot *old;

	pthread_mutex_lock(&current_lock);
	old = current;
	current = s;
	pthread_mutex_unlock(&current_lock);
	if (old != NULL)
		atomic_store(&old->superseded, true);
	return old;
}
