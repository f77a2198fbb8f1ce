/* snapshot: one immutable, refcounted view of config + rendered policies + certificates */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

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
	struct doc *d = calloc(1, sizeof(*d));

	if (d == NULL || (d->body = malloc(len + 1)) == NULL) {
		free(d);
		return NULL;
	}
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
	free(d->body);
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
			  "first successful fetch", cd->name, cd->proxy);
	return 0;
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
		diag_error(d, file, line, "%s: certificate for %s expired", c->cert_file,
			   cd->host);
	else if (c->not_after - now < EXPIRY_WARN_DAYS * 86400)
		diag_warn(d, file, line, "%s: certificate for %s expires in %lld days",
			  c->cert_file, cd->host, (long long)((c->not_after - now) / 86400));
}

static int load_cert(struct snapshot *s, struct tenant *t, unsigned flags, time_t now,
		     struct diag *d)
{
	const struct config_domain *cd = t->domain;
	const char *file = s->config->file;
	unsigned line = cd->cert != NULL ? cd->cert_line : cd->line;

	if (cd->cert != NULL) {
		t->cert = tls_store_load(s->tls, cd->cert, cd->key, d, file, cd->cert_line,
					 cd->key_line);
		if (t->cert == NULL)
			return -1;
		if (!tls_cert_covers(t->cert, cd->host)) {
			diag_error(d, file, cd->cert_line,
				   "%s: certificate does not cover %s", cd->cert, cd->host);
			return -1;
		}
	} else {
		t->cert = tls_store_find(s->tls, cd->host, strlen(cd->host));
		if (t->cert == NULL) {
			diag_error(d, file, cd->line,
				   "no certificate for %s in the certs directory %s", cd->host,
				   s->config->certs_dir ? s->config->certs_dir : "(none)");
			return -1;
		}
	}
	if (flags & SNAPSHOT_EXPIRY_LINT)
		lint_expiry(t->cert, cd, now, d, file, line);
	else if (t->cert->not_after <= now)
		diag_error(d, file, line, "%s: certificate for %s expired", t->cert->cert_file,
			   cd->host);
	return 0;
}

struct snapshot *snapshot_create(struct config *config, unsigned flags, struct upstreams *ups,
				 struct diag *d)
{
	struct snapshot *s = calloc(1, sizeof(*s));
	size_t errors = d->n_errors;
	time_t now = time(NULL);

	if (s == NULL) {
		config_destroy(config);
		diag_error(d, NULL, 0, "out of memory");
		return NULL;
	}
	atomic_init(&s->refs, 1);
	s->config = config;
	s->tenants = calloc(config->n_domains ? config->n_domains : 1, sizeof(*s->tenants));
	if (s->tenants == NULL || hash_init(&s->hosts, config->n_domains) < 0) {
		diag_error(d, config->file, 0, "out of memory");
		goto fail;
	}
	if (flags & SNAPSHOT_TLS) {
		s->tls = tls_store_create();
		if (s->tls == NULL) {
			diag_error(d, config->file, 0, "out of memory");
			goto fail;
		}
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
		if (s->tls != NULL)
			load_cert(s, t, flags, now, d);
	}
	if (d->n_errors > errors)
		goto fail;
	return s;
fail:
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
	}
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
	ret = json ? records_json(out, v, s->n_tenants, &o)
		   : records_zone(out, v, s->n_tenants, &o);
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
	return old;
}
