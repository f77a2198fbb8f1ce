/* snapshot: one immutable, refcounted view of config + rendered policies + certificates */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "records.h"
#include "snapshot.h"
#include "upstream.h"

struct tenant {
	const struct config_domain *domain; /* borrowed from the snapshot's config */
	size_t index;                       /* config order */
	struct doc *doc;                    /* static policy, NULL when proxied */
	struct upstream *up;                /* proxied: the provider, else NULL */
};

struct snapshot {
	atomic_uint refs;
	atomic_bool superseded; /* another snapshot was published after it */
	struct config *config;
	struct certcache *certs; /* NULL when built without certificates */
	struct tenant *tenants;  /* config order */
	size_t n_tenants;
	struct hash hosts; /* "mta-sts.<domain>" -> tenant */
};

/* Renders t's static policy. Domains whose policies are the same bytes share one doc
 * (and one response): a provider's customers often publish the same MX. docs is the
 * snapshot's table of them, by id. */
static int render_static(struct tenant *t, const struct doc_renderer *render, struct hash *docs,
                         struct diag *d, const char *file)
{
	const struct config_domain *cd = t->domain;
	char id[POLICY_ID_MAX + 1];
	size_t len;
	char *body = policy_render(&cd->policy, &len);

	if (body != NULL && cd->id == NULL) {
		policy_id(body, len, id);
		if ((t->doc = hash_get(docs, id, strlen(id))) != NULL) {
			doc_ref(t->doc);
			free(body);
			return 0;
		}
	}
	/* A fixed id replaces the derived one; config warns that it is then the operator's
	 * job to change it with the policy. */
	if (body != NULL)
		t->doc = doc_create(body, len, policy_mode_name(cd->policy.mode), cd->id, render);
	free(body);
	if (t->doc == NULL) {
		diag_error(d, file, cd->line, "out of memory");
		return -1;
	}
	if (cd->id == NULL && hash_put(docs, t->doc->id, t->doc, NULL) < 0) {
		diag_error(d, file, cd->line, "out of memory");
		return -1;
	}
	return 0;
}

static int link_upstream(struct tenant *t, struct upstreams *ups, const struct config *c,
                         time_t now, struct diag *d)
{
	const struct config_domain *cd = t->domain;
	struct upstream_info info;

	t->up = ups != NULL ? upstreams_use(ups, cd->proxy, c) : NULL;
	if (t->up == NULL) {
		diag_error(d, cd->file, cd->proxy_line, "out of memory");
		return -1;
	}
	upstream_info(t->up, now, &info);
	if (!info.has_policy)
		diag_warn(d, cd->file, cd->proxy_line,
		          "%s: no valid copy of the policy of %s yet: answers 503 until the "
		          "first successful fetch",
		          cd->name, cd->proxy);
	return 0;
}

struct snapshot *snapshot_create(struct config *config, struct certcache *certs,
                                 struct upstreams *ups, const struct doc_renderer *render,
                                 struct diag *d)
{
	struct snapshot *s = calloc(1, sizeof(*s));
	struct hash docs = {0};
	time_t now = time(NULL);
	size_t errors = d->n_errors;

	if (s == NULL) {
		certcache_destroy(certs);
		config_destroy(config);
		diag_error(d, NULL, 0, "out of memory");
		return NULL;
	}
	atomic_init(&s->refs, 1);
	s->config = config;
	s->certs = certs;
	s->tenants = calloc(config->n_domains ? config->n_domains : 1, sizeof(*s->tenants));
	if (s->tenants == NULL || hash_init(&s->hosts, config->n_domains) < 0) {
		diag_error(d, config->file, 0, "out of memory");
		goto fail;
	}
	if (hash_init(&docs, config->n_domains) < 0) {
		diag_error(d, config->file, 0, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < config->n_domains; i++) {
		const struct config_domain *cd = &config->domains[i];
		struct tenant *t = &s->tenants[s->n_tenants++];

		t->domain = cd;
		t->index = i;
		if (cd->proxy == NULL ? render_static(t, render, &docs, d, cd->file) < 0
		                      : link_upstream(t, ups, config, now, d) < 0)
			goto fail;
		if (hash_put(&s->hosts, cd->host, t, NULL) < 0) {
			diag_error(d, cd->file, cd->line, "out of memory");
			goto fail;
		}
	}
	hash_finish(&docs);
	if (d->n_errors == errors)
		return s;
	snapshot_unref(s);
	return NULL;
fail:
	hash_finish(&docs);
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
	}
	free(s->tenants);
	hash_finish(&s->hosts);
	certcache_destroy(s->certs);
	config_destroy(s->config);
	free(s);
}

const struct config *snapshot_config(const struct snapshot *s)
{
	return s->config;
}

struct certcache *snapshot_certs(const struct snapshot *s)
{
	return s->certs;
}

size_t snapshot_size(const struct snapshot *s)
{
	return s->n_tenants;
}

const struct tenant *snapshot_tenant(const struct snapshot *s, size_t i)
{
	return &s->tenants[i];
}

const struct tenant *snapshot_find(const struct snapshot *s, const char *host, size_t len)
{
	return hash_get(&s->hosts, host, len);
}

const struct config_domain *tenant_domain(const struct tenant *t)
{
	return t->domain;
}

size_t tenant_index(const struct tenant *t)
{
	return t->index;
}

struct upstream *tenant_upstream(const struct tenant *t)
{
	return t->up;
}

struct doc *tenant_doc(const struct tenant *t, time_t now)
{
	if (t->doc != NULL)
		return doc_ref(t->doc);
	return t->up != NULL ? upstream_doc(t->up, now) : NULL;
}

struct tls_cert *tenant_cert(const struct snapshot *s, const struct tenant *t, time_t now)
{
	return s->certs != NULL ? certcache_get(s->certs, t->index, now) : NULL;
}

size_t snapshot_preload(struct snapshot *s)
{
	return s->certs != NULL ? certcache_preload(s->certs, &s->superseded) : 0;
}

bool snapshot_superseded(const struct snapshot *s)
{
	return atomic_load(&s->superseded);
}

int snapshot_records(const struct snapshot *s, const struct tenant *const *sel, size_t n_sel,
                     bool json, struct buf *out)
{
	size_t count = sel != NULL ? n_sel : s->n_tenants;
	size_t n = count ? count : 1;
	struct records_domain *v = calloc(n, sizeof(*v));
	struct doc **docs = calloc(n, sizeof(*docs));
	struct records_opts o = {s->config->sts_ttl, s->config->tlsrpt_ttl};
	time_t now = time(NULL);
	int ret = -1;

	if (v == NULL || docs == NULL)
		goto out;
	for (size_t i = 0; i < count; i++) {
		const struct tenant *t = sel != NULL ? sel[i] : &s->tenants[i];

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
	ret = json ? records_json(out, v, count, &o) : records_zone(out, v, count, &o);
	if (out->failed)
		ret = -1;
out:
	for (size_t i = 0; docs != NULL && i < count; i++)
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
