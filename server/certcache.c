/* certcache: per-domain certificate state: loaded, lazy, degraded, renewed */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "acmestate.h"
#include "certcache.h"
#include "hash.h"
#include "listing.h"
#include "log.h"

#define EXPIRY_WARN_DAYS 14
/* Seconds before a pair that failed to load lazily is tried again. */
#define LAZY_RETRY 60

const char *const cert_state_names[CERT_STATES] = {"ok", "lazy", "degraded"};

/* One domain; 40 bytes, because a provider has a million of them. */
struct slot {
	struct tls_cert *cert; /* presented while valid; degraded: the last good one */
	char *detail;          /* degraded: the problem */
	time_t since;          /* of the state */
	time_t retry_at;       /* look at the files again then (pending certificate, failed
	                        * lazy load); 0: no need */
	unsigned char state;   /* enum cert_state */
	unsigned char fault;   /* enum tls_fault */
	bool lazy;             /* its pair is loaded on the first handshake */
	bool ringed;           /* in the lazy cache ring */
	bool acme;             /* its certificate comes from ACME (state_dir/acme) */
};

struct certcache {
	const struct config *config;
	struct slot *slots; /* config order */
	size_t n;
	unsigned flags;
	/* The certs directory as last read, and why it could not be (fault NONE: it could).
	 * Only the thread that creates, refreshes and ticks the cache touches them. */
	struct tls_store *dir;
	struct tls_problem dir_problem;
	time_t next_event; /* of certcache_tick */

	pthread_mutex_t lock; /* the slots and the ring */
	/* Lazy mode: the domains whose certificate is loaded, oldest first out when there
	 * are ring_cap of them. Degraded domains keep theirs outside the ring. */
	bool lazy;
	size_t n_lazy;
	size_t *ring;
	size_t ring_cap;
	size_t ring_next;
	size_t ring_n;
};

/* The outcome of looking at one domain's files, applied to its slot under the lock. */
struct outcome {
	struct tls_cert *cert; /* new reference, or NULL */
	enum cert_state state;
	struct tls_problem problem;
	time_t retry_at;
	bool acme; /* the certificate comes from ACME */
};

/* One pass over the domains: what it read, so that a pair named by several domains is
 * read once, and what it listed. */
struct pass {
	struct listing listing;
	struct hash files; /* cert path -> certificate in read */
	struct tls_cert **read;
	size_t n_read;
	size_t cap_read;
};

/* Whether c may be presented for host now; the problem in *p when not. */
static bool usable(const struct tls_cert *c, const char *host, time_t now, struct tls_problem *p)
{
	return tls_cert_usable(c, host, now, p) == TLS_FAULT_NONE;
}

static int pass_init(struct pass *p)
{
	memset(p, 0, sizeof(*p));
	if (listing_init(&p->listing) < 0)
		return -1;
	if (hash_init(&p->files, 16) < 0) {
		listing_finish(&p->listing);
		return -1;
	}
	return 0;
}

static void pass_finish(struct pass *p)
{
	for (size_t i = 0; i < p->n_read; i++)
		tls_cert_unref(p->read[i]);
	free(p->read);
	hash_finish(&p->files);
	listing_finish(&p->listing);
}

/* Reads a pair once per pass: a new reference, or NULL with the problem in *ret. */
static struct tls_cert *pass_read(struct pass *p, const char *cert_file, const char *key_file,
                                  struct tls_problem *ret)
{
	struct tls_cert *c = hash_get(&p->files, cert_file, strlen(cert_file));

	if (c != NULL && strcmp(c->key_file, key_file) == 0)
		return tls_cert_ref(c);
	if ((c = tls_cert_read(cert_file, key_file, ret)) == NULL)
		return NULL;
	if (p->n_read == p->cap_read) {
		size_t cap = p->cap_read ? p->cap_read * 2 : 16;
		struct tls_cert **v = realloc(p->read, cap * sizeof(*v));

		if (v == NULL)
			return c;
		p->read = v;
		p->cap_read = cap;
	}
	/* The table borrows the path of a certificate the pass holds a reference to. */
	if (hash_put(&p->files, c->cert_file, c, NULL) == 0)
		p->read[p->n_read++] = tls_cert_ref(c);
	return c;
}

/* The certificate ACME keeps for cd (state_dir/acme/<host>/cert.pem: chain and key in one
 * file), or NULL with the problem: not issued yet, or the last order's failure. */
static struct tls_cert *acme_read(struct certcache *cc, const struct config_domain *cd,
                                  struct tls_cert *old, struct pass *pass, struct tls_problem *p)
{
	const char *dir = cc->config->state_dir;
	struct acme_status st;
	char path[4096], when[LOG_TIME_MAX];
	struct tls_cert *c;

	if (acmestate_path(path, sizeof(path), dir, cd->host, "cert.pem") < 0) {
		tls_problem_set(p, TLS_FAULT_MISSING, false, "%s: no ACME path for it", cd->host);
		return NULL;
	}
	if (old != NULL && tls_cert_unchanged(old, path, path))
		return tls_cert_ref(old);
	if ((c = pass_read(pass, path, path, p)) != NULL || p->fault != TLS_FAULT_MISSING)
		return c;
	if (acmestate_status_read(dir, cd->host, &st) == 0 && st.failures > 0) {
		log_time(st.retry_at, when, sizeof(when));
		tls_problem_set(p, TLS_FAULT_ACME_FAILED, false,
		                "%s: ACME order failed %u times, last: %s; next attempt at %s",
		                cd->host, st.failures, st.problem, when);
	} else {
		tls_problem_set(p, TLS_FAULT_ACME_PENDING, false,
		                "%s: waiting for its certificate from the ACME CA", cd->host);
	}
	return NULL;
}

/* Looks at domain i's files. old is the certificate presented until now (borrowed, may
 * be NULL), old_state its state. */
static void examine(struct certcache *cc, size_t i, struct tls_cert *old, enum cert_state old_state,
                    time_t now, struct pass *pass, struct outcome *o)
{
	const struct config_domain *cd = &cc->config->domains[i];
	struct tls_cert *c = NULL;

	memset(o, 0, sizeof(*o));
	if (cd->cert != NULL) {
		if (old != NULL && tls_cert_unchanged(old, cd->cert, cd->key)) {
			c = tls_cert_ref(old);
		} else if (cc->lazy && old == NULL && old_state != CERT_DEGRADED) {
			/* Lazy: loaded on the first handshake; here only whether it can be. */
			bool cert = listing_has(&pass->listing, cd->cert);

			if (cert && listing_has(&pass->listing, cd->key)) {
				o->state = CERT_LAZY;
				return;
			}
			tls_problem_set(&o->problem, TLS_FAULT_MISSING, cert,
			                "%s: No such file or directory", cert ? cd->key : cd->cert);
			o->state = CERT_DEGRADED;
			return;
		} else {
			c = pass_read(pass, cd->cert, cd->key, &o->problem);
		}
	} else if (cc->dir != NULL &&
	           (c = tls_store_find(cc->dir, cd->host, strlen(cd->host))) != NULL) {
		c = tls_cert_ref(c);
	} else if (cc->dir != NULL && tls_store_problem(cc->dir, cd->host) != NULL) {
		o->problem = *tls_store_problem(cc->dir, cd->host);
	} else if (cc->config->acme != NULL) {
		o->acme = true;
		c = acme_read(cc, cd, old, pass, &o->problem);
	} else if (cc->dir == NULL) {
		o->problem = cc->dir_problem;
		if (o->problem.fault == TLS_FAULT_NONE) {
			tls_problem_set(&o->problem, TLS_FAULT_MISSING, false,
			                "no certificate for %s (no certs directory)", cd->host);
		}
	} else {
		tls_problem_set(&o->problem, TLS_FAULT_MISSING, false,
		                "no certificate for %s in the certs directory %s", cd->host,
		                cc->config->certs_dir);
	}
	if (c != NULL && usable(c, cd->host, now, &o->problem)) {
		o->cert = c;
		o->state = CERT_OK;
		return;
	}
	if (c != NULL && o->problem.fault == TLS_FAULT_NOT_YET_VALID)
		o->retry_at = c->not_before;
	tls_cert_unref(c);
	o->state = CERT_DEGRADED;
	/* Degraded: the last good certificate stays while it is good. */
	if (old != NULL && tls_cert_valid_at(old, now) && tls_cert_covers(old, cd->host))
		o->cert = tls_cert_ref(old);
}

/* Puts a loaded certificate into slot i and the ring, evicting the oldest when full.
 * Called with the lock held; takes over the caller's reference. */
static void ring_put(struct certcache *cc, size_t i, struct tls_cert *c)
{
	struct slot *s = &cc->slots[i];

	while (cc->ring_n == cc->ring_cap) {
		struct slot *old = &cc->slots[cc->ring[cc->ring_next]];

		old->ringed = false;
		cc->ring_n--;
		cc->ring_next = (cc->ring_next + 1) % cc->ring_cap;
		/* A degraded domain keeps its last good certificate out of the ring. */
		if (old->state != CERT_DEGRADED) {
			tls_cert_unref(old->cert);
			old->cert = NULL;
			old->state = CERT_LAZY;
		}
	}
	cc->ring[(cc->ring_next + cc->ring_n) % cc->ring_cap] = i;
	cc->ring_n++;
	s->ringed = true;
	tls_cert_unref(s->cert);
	s->cert = c;
}

static void log_transition(const struct certcache *cc, size_t i, const struct outcome *o,
                           enum cert_state old_state, enum tls_fault old_fault,
                           const struct tls_cert *old)
{
	const struct config_domain *cd = &cc->config->domains[i];
	char when[LOG_TIME_MAX];

	if (o->state == CERT_DEGRADED) {
		if (old_state == CERT_DEGRADED && old_fault == o->problem.fault) {
			if (old != NULL && o->cert == NULL)
				log_msg(
				    "%s: its previous certificate is no longer valid either: no "
				    "handshake for %s until it is fixed",
				    cd->name, cd->host);
			return;
		}
		if (o->cert != NULL) {
			log_time(o->cert->not_after, when, sizeof(when));
			log_msg(
			    "%s: certificate degraded (%s): %s; keeping the previous certificate "
			    "(valid until %s)",
			    cd->name, tls_fault_names[o->problem.fault], o->problem.msg, when);
		} else {
			log_msg("%s: certificate degraded (%s): %s; no handshake for %s until it "
			        "is fixed",
			        cd->name, tls_fault_names[o->problem.fault], o->problem.msg,
			        cd->host);
		}
		return;
	}
	if (o->cert == NULL)
		return;
	log_time(o->cert->not_after, when, sizeof(when));
	if (old_state == CERT_DEGRADED)
		log_msg("%s: certificate recovered: %s, valid until %s", cd->name,
		        o->cert->cert_file, when);
	else if (old != NULL && old != o->cert)
		log_msg("%s: certificate renewed: %s, valid until %s", cd->name, o->cert->cert_file,
		        when);
}

/* Applies an outcome to slot i (lock held). Takes over o->cert. */
static void apply(struct certcache *cc, size_t i, struct outcome *o, time_t since)
{
	struct slot *s = &cc->slots[i];

	s->since = since;
	s->state = (unsigned char)o->state;
	s->fault = (unsigned char)(o->state == CERT_DEGRADED ? o->problem.fault : TLS_FAULT_NONE);
	s->retry_at = o->retry_at;
	s->acme = o->acme;
	free(s->detail);
	s->detail = o->state == CERT_DEGRADED ? strdup(o->problem.msg) : NULL;
	if (o->cert != NULL && o->cert == s->cert) {
		tls_cert_unref(o->cert);
	} else if (o->cert != NULL && s->lazy && o->state == CERT_OK && !s->ringed) {
		ring_put(cc, i, o->cert);
	} else {
		tls_cert_unref(s->cert);
		s->cert = o->cert;
	}
	o->cert = NULL;
}

/* Every problem of domain i at its config line: errors for 'check' (errors set), else
 * only the warnings (expiring soon, key readable by others). */
static void report(const struct certcache *cc, size_t i, const struct outcome *o, time_t now,
                   bool errors, struct diag *d)
{
	const struct config_domain *cd = &cc->config->domains[i];
	const struct tls_cert *c = o->cert;
	const char *file = cd->file;
	unsigned line = cd->cert != NULL ? cd->cert_line : cd->line;
	unsigned key_line = cd->cert != NULL ? cd->key_line : cd->line;

	if (o->state == CERT_DEGRADED) {
		/* A certificate ACME has yet to get is the server's job, not a config error. */
		if (o->acme && !o->problem.key &&
		    (o->problem.fault == TLS_FAULT_ACME_PENDING ||
		     o->problem.fault == TLS_FAULT_ACME_FAILED)) {
			if (errors)
				diag_warn(d, file, line, "%s", o->problem.msg);
		} else if (errors) {
			diag_error(d, file, o->problem.key ? key_line : line, "%s", o->problem.msg);
		}
		return;
	}
	if (c == NULL)
		return;
	if (c->not_after - now < EXPIRY_WARN_DAYS * 86400)
		diag_warn(d, file, line, "%s: certificate for %s expires in %lld days",
		          c->cert_file, cd->host, (long long)((c->not_after - now) / 86400));
	if (c->key_exposed)
		diag_warn(d, file, key_line,
		          "%s: private key is accessible by others (chmod o-rwx)", c->key_file);
}

/* Reads the certs directory, reusing what the previous read (reuse) has unchanged. With
 * d, the directory's problem is an error and pairs no domain is named after are warnings;
 * without, the directory's problem is logged when it is new. */
static void read_dir(struct certcache *cc, const struct tls_store *reuse, struct diag *d)
{
	const struct config *c = cc->config;
	struct tls_problem before = cc->dir_problem;
	struct tls_store *dir;

	cc->dir_problem.fault = TLS_FAULT_NONE;
	if (c->certs_dir == NULL || (dir = tls_store_create()) == NULL)
		return;
	if (tls_store_load_dir(dir, c->certs_dir, reuse, &cc->dir_problem) < 0) {
		tls_store_destroy(dir);
		dir = NULL;
		if ((cc->flags & CERTCACHE_VALIDATE) && d != NULL)
			diag_error(d, c->file, c->certs_dir_line, "%s", cc->dir_problem.msg);
		else if (strcmp(before.msg, cc->dir_problem.msg) != 0)
			log_msg("certs directory %s", cc->dir_problem.msg);
	}
	if (cc->dir != reuse)
		tls_store_destroy(cc->dir);
	cc->dir = dir;
	if (dir == NULL || !(cc->flags & CERTCACHE_VALIDATE) || d == NULL)
		return;
	/* A broken pair named after no domain is nobody's problem, but worth a word. */
	for (size_t k = 0; k < dir->n_broken; k++) {
		const struct tls_broken *b = &dir->broken[k];
		bool named = false;

		for (size_t i = 0; i < c->n_domains && !named; i++)
			named = c->domains[i].cert == NULL &&
			        strcasecmp(c->domains[i].host, b->stem) == 0;
		if (!named && b->problem.fault != TLS_FAULT_MISSING)
			diag_warn(d, c->file, c->certs_dir_line, "%s (no domain is named after it)",
			          b->problem.msg);
	}
}

/* Decides between eager and lazy certificate loading (cert_cache) and sets up the ring. */
static int start_lazy(struct certcache *cc)
{
	const struct config *c = cc->config;
	size_t with_files = 0, cap = c->cert_cache;

	if (cc->flags & (CERTCACHE_EAGER | CERTCACHE_VALIDATE))
		return 0;
	for (size_t i = 0; i < c->n_domains; i++)
		with_files += c->domains[i].cert != NULL;
	if (cap == CONFIG_CERT_CACHE_AUTO)
		cap = with_files > CONFIG_EAGER_MAX ? CONFIG_CERT_CACHE_DEFAULT : 0;
	if (cap == 0 || with_files == 0)
		return 0;
	cc->lazy = true;
	cc->n_lazy = with_files;
	cc->ring_cap = cap < with_files ? cap : with_files;
	cc->ring = calloc(cc->ring_cap, sizeof(*cc->ring));
	for (size_t i = 0; i < c->n_domains; i++)
		cc->slots[i].lazy = c->domains[i].cert != NULL;
	return cc->ring != NULL ? 0 : -1;
}

#define TIME_MAX ((time_t)(~0ull >> 1))

/* The earliest time at which a presented certificate expires or a pending one becomes
 * valid: certcache_tick has nothing to do before. Lock held. */
static time_t next_event(const struct certcache *cc)
{
	time_t next = TIME_MAX;

	for (size_t i = 0; i < cc->n; i++) {
		const struct slot *s = &cc->slots[i];

		if (s->cert != NULL && s->cert->not_after < next)
			next = s->cert->not_after;
		if (s->retry_at != 0 && s->retry_at < next)
			next = s->retry_at;
	}
	return next;
}

/* Whether slot s has something to look at again at now: its certificate ran out, or a
 * pending one became valid. */
static bool due(const struct slot *s, time_t now)
{
	return (s->cert != NULL && s->cert->not_after <= now) ||
	       (s->retry_at != 0 && s->retry_at <= now);
}

/* Looks at every domain (only_due: those due at now) and applies the outcome. prev is
 * where the old certificates and states come from: another cache (a reload), cc itself
 * (a refresh), or NULL (a start). */
static int examine_all(struct certcache *cc, struct certcache *prev, time_t now, bool only_due,
                       struct diag *d)
{
	struct pass pass;
	struct hash hosts;
	bool by_host = prev != NULL && prev != cc;

	if (pass_init(&pass) < 0)
		return -1;
	if (by_host && hash_init(&hosts, prev->n) < 0) {
		pass_finish(&pass);
		return -1;
	}
	for (size_t k = 0; by_host && k < prev->n; k++)
		hash_put(&hosts, prev->config->domains[k].host, &prev->slots[k], NULL);
	for (size_t i = 0; i < cc->n; i++) {
		const char *host = cc->config->domains[i].host;
		const struct slot *ps = NULL;
		enum cert_state old_state = CERT_LAZY;
		enum tls_fault old_fault = TLS_FAULT_NONE;
		struct tls_cert *old = NULL;
		time_t since = now;
		struct outcome o;

		if (prev == cc)
			ps = &cc->slots[i];
		else if (by_host)
			ps = hash_get(&hosts, host, strlen(host));
		if (ps != NULL) {
			pthread_mutex_lock(&prev->lock);
			if (only_due && !due(ps, now)) {
				pthread_mutex_unlock(&prev->lock);
				continue;
			}
			old = ps->cert != NULL ? tls_cert_ref(ps->cert) : NULL;
			old_state = (enum cert_state)ps->state;
			old_fault = (enum tls_fault)ps->fault;
			since = ps->since;
			pthread_mutex_unlock(&prev->lock);
		}
		examine(cc, i, old, old_state, now, &pass, &o);
		if (d != NULL)
			report(cc, i, &o, now, (cc->flags & CERTCACHE_VALIDATE) != 0, d);
		if (cc->flags & CERTCACHE_VALIDATE) {
			tls_cert_unref(o.cert);
			o.cert = NULL;
		} else {
			log_transition(cc, i, &o, old_state, old_fault, old);
		}
		if (o.state != old_state || o.problem.fault != old_fault || ps == NULL)
			since = now;
		pthread_mutex_lock(&cc->lock);
		apply(cc, i, &o, since);
		pthread_mutex_unlock(&cc->lock);
		tls_cert_unref(old);
	}
	pthread_mutex_lock(&cc->lock);
	cc->next_event = next_event(cc);
	pthread_mutex_unlock(&cc->lock);
	if (by_host)
		hash_finish(&hosts);
	pass_finish(&pass);
	return 0;
}

struct certcache *certcache_create(const struct config *config, struct certcache *prev,
                                   unsigned flags, time_t now, struct diag *d)
{
	struct certcache *cc = calloc(1, sizeof(*cc));

	if (cc == NULL)
		return NULL;
	pthread_mutex_init(&cc->lock, NULL);
	cc->config = config;
	cc->flags = flags;
	cc->n = config->n_domains;
	cc->slots = calloc(cc->n ? cc->n : 1, sizeof(*cc->slots));
	if (cc->slots == NULL || start_lazy(cc) < 0)
		goto fail;
	for (size_t i = 0; i < cc->n; i++)
		cc->slots[i].state = CERT_LAZY;
	read_dir(cc, prev != NULL ? prev->dir : NULL, d);
	if (examine_all(cc, prev, now, false, d) < 0)
		goto fail;
	return cc;
fail:
	certcache_destroy(cc);
	return NULL;
}

void certcache_destroy(struct certcache *cc)
{
	if (cc == NULL)
		return;
	for (size_t i = 0; cc->slots != NULL && i < cc->n; i++) {
		tls_cert_unref(cc->slots[i].cert);
		free(cc->slots[i].detail);
	}
	free(cc->slots);
	free(cc->ring);
	tls_store_destroy(cc->dir);
	pthread_mutex_destroy(&cc->lock);
	free(cc);
}

/* A lazy domain's pair, read on a handshake; the outcome is applied unless another
 * thread got there first. Returns a new reference or NULL. */
static struct tls_cert *load_lazy(struct certcache *cc, size_t i, time_t now)
{
	const struct config_domain *cd = &cc->config->domains[i];
	struct slot *s = &cc->slots[i];
	struct outcome o = {0};
	enum cert_state old_state;
	enum tls_fault old_fault;
	struct tls_cert *c;

	/* Two handshakes may load the same pair at once; the second to finish drops its
	 * copy. */
	c = tls_cert_read(cd->cert, cd->key, &o.problem);
	if (c != NULL && usable(c, cd->host, now, &o.problem)) {
		o.cert = c;
		o.state = CERT_OK;
	} else {
		if (c != NULL && o.problem.fault == TLS_FAULT_NOT_YET_VALID)
			o.retry_at = c->not_before;
		tls_cert_unref(c);
		o.state = CERT_DEGRADED;
	}
	pthread_mutex_lock(&cc->lock);
	old_state = (enum cert_state)s->state;
	old_fault = (enum tls_fault)s->fault;
	if (s->cert != NULL) {
		/* Loaded meanwhile by another handshake. */
		c = tls_cert_valid_at(s->cert, now) ? tls_cert_ref(s->cert) : NULL;
		pthread_mutex_unlock(&cc->lock);
		tls_cert_unref(o.cert);
		return c;
	}
	if (o.state == CERT_DEGRADED && o.retry_at < now + LAZY_RETRY)
		o.retry_at = now + LAZY_RETRY;
	c = o.cert != NULL ? tls_cert_ref(o.cert) : NULL;
	/* certcache_tick looks at the domain again when the retry is due or the certificate
	 * it now presents runs out. */
	if (o.retry_at != 0 && o.retry_at < cc->next_event)
		cc->next_event = o.retry_at;
	if (c != NULL && c->not_after < cc->next_event)
		cc->next_event = c->not_after;
	apply(cc, i, &o, old_state == o.state && old_fault == o.problem.fault ? s->since : now);
	pthread_mutex_unlock(&cc->lock);
	log_transition(cc, i, &o, old_state, old_fault, NULL);
	return c;
}

struct tls_cert *certcache_get(struct certcache *cc, size_t i, time_t now)
{
	struct slot *s = &cc->slots[i];
	struct tls_cert *c = NULL;
	bool load;

	pthread_mutex_lock(&cc->lock);
	if (s->cert != NULL && tls_cert_valid_at(s->cert, now))
		c = tls_cert_ref(s->cert);
	load = c == NULL && s->cert == NULL && s->lazy &&
	       (s->state == CERT_LAZY || now >= s->retry_at);
	if (load && s->state == CERT_DEGRADED)
		s->retry_at = now + LAZY_RETRY; /* one retry at a time */
	pthread_mutex_unlock(&cc->lock);
	return load ? load_lazy(cc, i, now) : c;
}

void certcache_info(struct certcache *cc, size_t i, time_t now, struct cert_info *ret)
{
	const struct slot *s = &cc->slots[i];

	memset(ret, 0, sizeof(*ret));
	pthread_mutex_lock(&cc->lock);
	ret->state = (enum cert_state)s->state;
	ret->fault = (enum tls_fault)s->fault;
	ret->since = s->since;
	if (s->cert != NULL && tls_cert_valid_at(s->cert, now))
		ret->not_after = s->cert->not_after;
	if (s->detail != NULL)
		snprintf(ret->detail, sizeof(ret->detail), "%s", s->detail);
	pthread_mutex_unlock(&cc->lock);
}

void certcache_count(struct certcache *cc, size_t ret_states[CERT_STATES],
                     size_t ret_faults[TLS_FAULTS])
{
	memset(ret_states, 0, CERT_STATES * sizeof(*ret_states));
	memset(ret_faults, 0, TLS_FAULTS * sizeof(*ret_faults));
	pthread_mutex_lock(&cc->lock);
	for (size_t i = 0; i < cc->n; i++) {
		ret_states[cc->slots[i].state]++;
		if (cc->slots[i].state == CERT_DEGRADED)
			ret_faults[cc->slots[i].fault]++;
	}
	pthread_mutex_unlock(&cc->lock);
}

void certcache_refresh(struct certcache *cc, time_t now)
{
	struct tls_store *old = cc->dir;

	read_dir(cc, old, NULL);
	if (cc->dir != old)
		tls_store_destroy(old);
	examine_all(cc, cc, now, false, NULL);
}

void certcache_refresh_domain(struct certcache *cc, size_t i, time_t now)
{
	struct pass pass;
	struct outcome o;
	struct tls_cert *old;
	enum cert_state old_state;
	enum tls_fault old_fault;
	time_t since;

	if (i >= cc->n || pass_init(&pass) < 0)
		return;
	pthread_mutex_lock(&cc->lock);
	old = cc->slots[i].cert != NULL ? tls_cert_ref(cc->slots[i].cert) : NULL;
	old_state = (enum cert_state)cc->slots[i].state;
	old_fault = (enum tls_fault)cc->slots[i].fault;
	since = cc->slots[i].since;
	pthread_mutex_unlock(&cc->lock);
	examine(cc, i, old, old_state, now, &pass, &o);
	log_transition(cc, i, &o, old_state, old_fault, old);
	pthread_mutex_lock(&cc->lock);
	apply(cc, i, &o, o.state != old_state || o.problem.fault != old_fault ? now : since);
	if (cc->slots[i].cert != NULL && cc->slots[i].cert->not_after < cc->next_event)
		cc->next_event = cc->slots[i].cert->not_after;
	if (cc->slots[i].retry_at != 0 && cc->slots[i].retry_at < cc->next_event)
		cc->next_event = cc->slots[i].retry_at;
	pthread_mutex_unlock(&cc->lock);
	tls_cert_unref(old);
	pass_finish(&pass);
}

bool certcache_acme(struct certcache *cc, size_t i)
{
	bool acme;

	pthread_mutex_lock(&cc->lock);
	acme = i < cc->n && cc->slots[i].acme;
	pthread_mutex_unlock(&cc->lock);
	return acme;
}

void certcache_tick(struct certcache *cc, time_t now)
{
	bool due;

	pthread_mutex_lock(&cc->lock);
	due = now >= cc->next_event;
	pthread_mutex_unlock(&cc->lock);
	if (!due)
		return;
	/* Rare: a certificate's end, or a pending one's start. */
	examine_all(cc, cc, now, true, NULL);
}

size_t certcache_preload(struct certcache *cc, const atomic_bool *stop)
{
	size_t loaded = 0;
	time_t now = time(NULL);

	/* Warming up only makes sense when every certificate fits: with more domains than
	 * cache, which ones will be asked for is anybody's guess. */
	if (!cc->lazy || cc->ring_cap < cc->n_lazy)
		return 0;
	for (size_t i = 0; i < cc->n && !atomic_load(stop); i++) {
		struct tls_cert *c;
		bool skip, full;

		pthread_mutex_lock(&cc->lock);
		skip = !cc->slots[i].lazy || cc->slots[i].state != CERT_LAZY;
		full = cc->ring_n == cc->ring_cap;
		pthread_mutex_unlock(&cc->lock);
		if (full)
			break;
		if (skip)
			continue;
		if ((c = certcache_get(cc, i, now)) != NULL)
			loaded++;
		tls_cert_unref(c);
	}
	return loaded;
}
