/* acme: certificates from an ACME CA for the domains that have none: ordered, renewed and
 * picked up in the background, one name per certificate, kept under state_dir/acme */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/crypto.h>

#include "acme.h"
#include "acmeanswer.h"
#include "acmecert.h"
#include "acmeclient.h"
#include "acmestate.h"
#include "buf.h"
#include "hash.h"
#include "log.h"
#include "statefile.h"

#define CERT_FILE_MAX (1024 * 1024)
/* Seconds before a name another replica is ordering is looked at again. */
#define LOCKED_RETRY 5
/* Seconds between looks at a name that is not ACME's now (a certificate appeared in the
 * certs directory), and at a renewal date the CA may move (ARI). */
#define IDLE_RECHECK 3600
#define ARI_RECHECK (6 * 3600)
#define THREADS_MAX 64
#define TIME_MAX ((time_t)(~0ull >> 1))

/* One name kept by ACME. */
struct entry {
	char *host;
	time_t next_at;             /* look at it again then */
	struct tls_file_id seen;    /* the certificate file last seen */
	time_t ari_at, ari_checked; /* the CA's renewal time (ARI), when asked */
	bool busy;                  /* a thread is at it */
	bool idle;                  /* not ACME's when last looked at (certs directory) */
	bool gone;                  /* no longer in the configuration: freed when not busy */
};

/* What the threads work with; replaced (threads stopped first) when it changes. */
struct settings {
	char *key; /* everything below as text, to tell a change */
	char *state_dir;
	bool http01;
	unsigned renew_before, concurrency, burst, interval, retry_min, retry_max, order_timeout;
	struct acme_ca *ca;
	struct acme_answers *answers;
};

struct acme {
	acme_wanted_fn wanted;
	void *owner;

	pthread_mutex_t lock; /* everything below */
	pthread_cond_t wake;
	struct settings *set; /* NULL: off */
	struct entry **entries;
	size_t n_entries;
	struct hash index; /* host -> entry */
	size_t cursor;
	atomic_bool stop;
	pthread_t threads[THREADS_MAX];
	unsigned n_threads;
	unsigned busy;
	double tokens; /* new orders allowed now (token bucket) */
	time_t tokens_at;
	char **changed; /* hosts, for acme_changed */
	size_t n_changed, cap_changed;
	unsigned long long issued, failed;
};

static void settings_free(struct settings *s)
{
	if (s == NULL)
		return;
	acme_ca_destroy(s->ca);
	acme_answers_destroy(s->answers);
	free(s->key);
	free(s->state_dir);
	free(s);
}

static void entry_free(struct entry *e)
{
	free(e->host);
	free(e);
}

/* Lock held. */
static void push_changed(struct acme *a, const char *host)
{
	char *h;

	for (size_t i = 0; i < a->n_changed; i++)
		if (strcmp(a->changed[i], host) == 0)
			return;
	if (a->n_changed == a->cap_changed) {
		size_t cap = a->cap_changed ? a->cap_changed * 2 : 16;
		char **v = realloc(a->changed, cap * sizeof(*v));

		if (v == NULL)
			return;
		a->changed = v;
		a->cap_changed = cap;
	}
	if ((h = strdup(host)) != NULL)
		a->changed[a->n_changed++] = h;
}

static void changed(struct acme *a, const char *host)
{
	pthread_mutex_lock(&a->lock);
	push_changed(a, host);
	pthread_mutex_unlock(&a->lock);
}

struct tls_cert *acme_alpn_cert(struct acme *a, const char *host)
{
	struct tls_cert *cert = NULL;

	pthread_mutex_lock(&a->lock);
	if (a->set != NULL)
		cert = acme_answers_alpn(a->set->answers, host);
	pthread_mutex_unlock(&a->lock);
	return cert;
}

int acme_http_answer(struct acme *a, const char *token, char *out, size_t size)
{
	int ret = -1;

	pthread_mutex_lock(&a->lock);
	if (a->set != NULL)
		ret = acme_answers_http(a->set->answers, token, out, size);
	pthread_mutex_unlock(&a->lock);
	return ret;
}

/* ---- one name ---- */

/* The certificate file of host as it is on disk. */
struct on_disk {
	bool ok;
	struct tls_file_id id;
	time_t not_before, not_after;
	char *pem; /* the chain and key */
	size_t len;
};

static void on_disk_read(const struct settings *s, const char *host, struct on_disk *ret)
{
	char path[4096];
	struct stat st;

	memset(ret, 0, sizeof(*ret));
	if (acmestate_path(path, sizeof(path), s->state_dir, host, "cert.pem") < 0 ||
	    statefile_read(path, CERT_FILE_MAX, &ret->pem, &ret->len) < 0)
		return;
	if (stat(path, &st) == 0) {
		ret->id.dev = st.st_dev;
		ret->id.ino = st.st_ino;
		ret->id.size = (unsigned long long)st.st_size;
		ret->id.mtime_sec = st.st_mtim.tv_sec;
		ret->id.mtime_nsec = st.st_mtim.tv_nsec;
	}
	ret->ok = acmecert_validity(ret->pem, ret->len, &ret->not_before, &ret->not_after) == 0;
}

static void on_disk_finish(struct on_disk *d)
{
	if (d->pem != NULL) {
		gnutls_memset(d->pem, 0, d->len);
		free(d->pem);
	}
}

/* When a certificate is renewed: when the CA suggests (ARI), else renew_before ahead of
 * its end, else at two thirds of its lifetime. */
static time_t renew_at(const struct settings *s, const struct entry *e, const struct on_disk *d)
{
	if (e->ari_at != 0)
		return e->ari_at;
	if (s->renew_before != 0)
		return d->not_after - (time_t)s->renew_before;
	return d->not_before + (d->not_after - d->not_before) / 3 * 2;
}

/* A new order allowed now by the pace (acme_order_burst, acme_order_interval), or the time
 * one will be. Lock held. */
static time_t take_token(struct acme *a, time_t now)
{
	const struct settings *s = a->set;

	if (s->interval == 0)
		return 0;
	if (a->tokens_at == 0) {
		a->tokens = s->burst;
		a->tokens_at = now;
	}
	a->tokens += (double)(now - a->tokens_at) / s->interval;
	if (a->tokens > s->burst)
		a->tokens = s->burst;
	a->tokens_at = now;
	if (a->tokens >= 1) {
		a->tokens -= 1;
		return 0;
	}
	return now + (time_t)((1 - a->tokens) * s->interval) + 1;
}

static bool same_id(const struct tls_file_id *a, const struct tls_file_id *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

/* Installs an issued certificate: written beside, checked as the server will read it,
 * then renamed into place. 0 / -1 with the problem. */
static int install(const struct settings *s, const char *host, const struct buf *pem, time_t now,
                   struct acme_problem *p)
{
	char path[4096], tmp[4096], dir[4096];
	struct tls_problem tp;
	struct tls_cert *c;

	if (acmestate_path(dir, sizeof(dir), s->state_dir, host, NULL) < 0 ||
	    acmestate_path(path, sizeof(path), s->state_dir, host, "cert.pem") < 0 ||
	    acmestate_path(tmp, sizeof(tmp), s->state_dir, host, "cert.pem.new") < 0) {
		acme_problem_set(p, "", "%s: name too long", host);
		return -1;
	}
	if (statefile_mkdirs(dir, 0700) < 0 ||
	    statefile_write(tmp, pem->data, pem->len, 0600) < 0) {
		acme_problem_set(p, "", "%s: cannot write: %s", tmp, strerror(errno));
		return -1;
	}
	if ((c = tls_cert_read(tmp, tmp, &tp)) == NULL ||
	    tls_cert_usable(c, host, now, &tp) != TLS_FAULT_NONE) {
		acme_problem_set(p, "", "the CA issued an unusable certificate: %s", tp.msg);
		tls_cert_unref(c);
		unlink(tmp);
		return -1;
	}
	tls_cert_unref(c);
	if (rename(tmp, path) < 0) {
		acme_problem_set(p, "", "%s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* "type: detail", or the detail alone, cut to fit out. */
static void problem_text(const struct acme_problem *p, char *out, size_t size)
{
	size_t n = 0;

	for (const char *parts[] = {p->type, p->type[0] ? ": " : "", p->detail}, **s = parts;
	     s < parts + 3; s++)
		for (const char *c = *s; *c != '\0' && n + 1 < size; c++)
			out[n++] = *c;
	out[n] = '\0';
}

/* Orders host's certificate: the name's lock held. Returns when to look at it again. */
static time_t order(struct acme *a, struct settings *s, struct entry *e, time_t now)
{
	struct acme_challenger ch = {s->http01 ? "http-01" : "tls-alpn-01", acme_answers_add,
	                             acme_answers_remove, s->answers};
	struct acme_status st;
	struct acme_problem p;
	struct buf pem;
	char when[LOG_TIME_MAX];
	time_t next;
	int rc;

	buf_init(&pem);
	rc = acme_ca_order(s->ca, e->host, &ch, s->order_timeout, &pem, &p);
	if (rc == 0)
		rc = install(s, e->host, &pem, time(NULL), &p);
	if (pem.data != NULL)
		gnutls_memset(pem.data, 0, pem.len);
	buf_finish(&pem);
	if (atomic_load(&a->stop))
		return 0; /* abandoned, not failed: the next start goes on */
	acmestate_status_read(s->state_dir, e->host, &st);
	now = time(NULL);
	if (rc == 0) {
		struct on_disk d;

		memset(&st, 0, sizeof(st));
		on_disk_read(s, e->host, &d);
		e->seen = d.id;
		e->ari_at = e->ari_checked = 0;
		next = d.ok ? renew_at(s, e, &d) : now + s->retry_min;
		log_time(d.not_after, when, sizeof(when));
		log_msg("%s: certificate issued by the ACME CA, valid until %s", e->host, when);
		on_disk_finish(&d);
		pthread_mutex_lock(&a->lock);
		a->issued++;
		pthread_mutex_unlock(&a->lock);
	} else {
		/* Back-off doubles from acme_retry_min to acme_retry_max; a longer wait the
		 * CA asks for (rateLimited) is honoured. */
		unsigned shift = st.failures < 30 ? st.failures : 30;
		unsigned long long wait = (unsigned long long)s->retry_min << shift;

		if (wait > s->retry_max)
			wait = s->retry_max;
		if ((unsigned long long)p.retry_after > wait)
			wait = (unsigned long long)p.retry_after;
		st.failures++;
		st.failed_at = now;
		st.retry_at = next = now + (time_t)wait;
		problem_text(&p, st.problem, sizeof(st.problem));
		log_time(next, when, sizeof(when));
		log_warn("%s: ACME order failed (%u in a row): %s; next attempt at %s", e->host,
		         st.failures, st.problem, when);
		pthread_mutex_lock(&a->lock);
		a->failed++;
		pthread_mutex_unlock(&a->lock);
	}
	if (acmestate_status_write(s->state_dir, e->host, &st) < 0)
		log_err("%s: cannot save the ACME status: %s", e->host, strerror(errno));
	changed(a, e->host);
	return next;
}

/* Looks at one name: its certificate is picked up when another replica renewed it, ordered
 * when missing or due, unless its back-off, the pace or another replica says wait. Returns
 * when to look again. */
static time_t visit(struct acme *a, struct settings *s, struct entry *e, time_t now)
{
	struct on_disk d;
	struct acme_status st;
	char path[4096];
	time_t next, wait;
	int fd = -1;

	e->idle = !a->wanted(a->owner, e->host);
	if (e->idle)
		return now + IDLE_RECHECK;
	on_disk_read(s, e->host, &d);
	if (d.ok && !same_id(&d.id, &e->seen)) {
		/* Issued or renewed by another replica (or found at start): serve it. */
		e->seen = d.id;
		e->ari_at = e->ari_checked = 0;
		changed(a, e->host);
	}
	if (d.ok && now - e->ari_checked >= ARI_RECHECK) {
		time_t at;

		e->ari_checked = now;
		if (acme_ca_renewal_time(s->ca, d.pem, d.len, &at) == 0)
			e->ari_at = at;
	}
	if (d.ok && now < renew_at(s, e, &d) && now < d.not_after) {
		next = renew_at(s, e, &d);
		goto out;
	}
	if (acmestate_status_read(s->state_dir, e->host, &st) == 0 && st.retry_at > now) {
		next = st.retry_at; /* backing off, after a failure here or at a replica */
		goto out;
	}
	/* One replica orders a name; the others wait for its file. */
	if (acmestate_path(path, sizeof(path), s->state_dir, e->host, NULL) < 0) {
		next = now + IDLE_RECHECK;
		goto out;
	}
	statefile_mkdirs(path, 0700);
	if (acmestate_path(path, sizeof(path), s->state_dir, e->host, "lock") < 0 ||
	    (fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) {
		log_err("%s: cannot open its ACME lock %s: %s", e->host, path, strerror(errno));
		next = now + s->retry_min;
		goto out;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		next = now + LOCKED_RETRY;
		goto out;
	}
	/* Under the lock, what a replica may have done meanwhile. */
	on_disk_finish(&d);
	on_disk_read(s, e->host, &d);
	if (d.ok && !same_id(&d.id, &e->seen)) {
		e->seen = d.id;
		changed(a, e->host);
		next = now;
		goto out;
	}
	if (acmestate_status_read(s->state_dir, e->host, &st) == 0 && st.retry_at > now) {
		next = st.retry_at;
		goto out;
	}
	pthread_mutex_lock(&a->lock);
	wait = take_token(a, now);
	pthread_mutex_unlock(&a->lock);
	if (wait != 0) {
		next = wait;
		goto out;
	}
	next = order(a, s, e, now);
out:
	if (fd >= 0)
		close(fd); /* and the lock with it */
	on_disk_finish(&d);
	return next;
}

/* ---- threads ---- */

/* A name due now that no thread has, taken round-robin; NULL with *ret_next the earliest
 * time one will be due. Lock held. */
static struct entry *pick(struct acme *a, time_t now, time_t *ret_next)
{
	time_t next = TIME_MAX;

	for (size_t k = 0; k < a->n_entries; k++) {
		struct entry *e = a->entries[(a->cursor + k) % a->n_entries];

		if (e->busy)
			continue;
		if (e->next_at <= now) {
			a->cursor = (a->cursor + k + 1) % a->n_entries;
			return e;
		}
		if (e->next_at < next)
			next = e->next_at;
	}
	*ret_next = next;
	return NULL;
}

static void *thread_main(void *arg)
{
	struct acme *a = arg;

	pthread_mutex_lock(&a->lock);
	while (!atomic_load(&a->stop)) {
		time_t now = time(NULL), next;
		struct entry *e = pick(a, now, &next);
		struct timespec until;

		if (e == NULL) {
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += next - now < 1 ? 1 : next - now > 60 ? 60 : next - now;
			pthread_cond_timedwait(&a->wake, &a->lock, &until);
			continue;
		}
		e->busy = true;
		a->busy++;
		pthread_mutex_unlock(&a->lock);
		next = visit(a, a->set, e, now);
		pthread_mutex_lock(&a->lock);
		a->busy--;
		e->busy = false;
		e->next_at = next;
		if (e->gone)
			entry_free(e);
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

static void threads_stop(struct acme *a)
{
	pthread_mutex_lock(&a->lock);
	atomic_store(&a->stop, true);
	pthread_cond_broadcast(&a->wake);
	pthread_mutex_unlock(&a->lock);
	for (unsigned i = 0; i < a->n_threads; i++)
		pthread_join(a->threads[i], NULL);
	a->n_threads = 0;
	atomic_store(&a->stop, false);
}

static void threads_start(struct acme *a)
{
	for (unsigned i = 0; i < a->set->concurrency && i < THREADS_MAX; i++) {
		if (pthread_create(&a->threads[i], NULL, thread_main, a) != 0) {
			log_err("acme: cannot start an order thread: %s", strerror(errno));
			break;
		}
		a->n_threads++;
	}
}

struct acme *acme_create(acme_wanted_fn wanted, void *owner)
{
	struct acme *a = calloc(1, sizeof(*a));

	if (a == NULL)
		return NULL;
	if (hash_init(&a->index, 16) < 0) {
		free(a);
		return NULL;
	}
	a->wanted = wanted;
	a->owner = owner;
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->wake, NULL);
	atomic_init(&a->stop, false);
	return a;
}

void acme_destroy(struct acme *a)
{
	if (a == NULL)
		return;
	threads_stop(a);
	for (size_t i = 0; i < a->n_entries; i++)
		entry_free(a->entries[i]);
	free(a->entries);
	hash_finish(&a->index);
	for (size_t i = 0; i < a->n_changed; i++)
		free(a->changed[i]);
	free(a->changed);
	settings_free(a->set);
	pthread_cond_destroy(&a->wake);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

/* The account key's file: one account per CA (directory URL) and state_dir. */
static int account_key_path(char *out, size_t size, const struct config *c)
{
	unsigned char digest[32];
	int n;

	gnutls_hash_fast(GNUTLS_DIG_SHA256, c->acme, strlen(c->acme), digest);
	n = snprintf(out, size, "%s/acme/account-%02x%02x%02x%02x%02x%02x%02x%02x.pem",
	             c->state_dir, digest[0], digest[1], digest[2], digest[3], digest[4], digest[5],
	             digest[6], digest[7]);
	return n > 0 && (size_t)n < size ? 0 : -1;
}

static struct settings *settings_create(const struct config *c, const atomic_bool *stop)
{
	struct settings *s = calloc(1, sizeof(*s));
	char account_key[4096], dir[4096];
	struct buf k;

	if (s == NULL)
		return NULL;
	buf_init(&k);
	buf_printf(&k, "%s\n%s\n%s\n%s\n%s\n%s\n%s\n%d\n%u %u %u %u %u %u %u %u", c->acme,
	           c->state_dir, c->acme_email ? c->acme_email : "", c->acme_ca ? c->acme_ca : "",
	           c->acme_eab_kid ? c->acme_eab_kid : "", c->acme_eab_hmac ? c->acme_eab_hmac : "",
	           c->acme_challenge ? c->acme_challenge : "", c->acme_http01, c->acme_renew_before,
	           c->acme_concurrency, c->acme_order_burst, c->acme_order_interval,
	           c->acme_retry_min, c->acme_retry_max, c->acme_timeout, c->acme_order_timeout);
	s->key = buf_steal(&k, NULL);
	s->state_dir = strdup(c->state_dir);
	s->http01 = c->acme_http01;
	s->renew_before = c->acme_renew_before;
	s->concurrency = c->acme_concurrency;
	s->burst = c->acme_order_burst;
	s->interval = c->acme_order_interval;
	s->retry_min = c->acme_retry_min;
	s->retry_max = c->acme_retry_max;
	s->order_timeout = c->acme_order_timeout;
	if (s->key == NULL || s->state_dir == NULL ||
	    account_key_path(account_key, sizeof(account_key), c) < 0)
		goto fail;
	snprintf(dir, sizeof(dir), "%s/acme", c->state_dir);
	if (statefile_mkdirs(dir, 0700) < 0)
		log_err("acme: cannot create %s: %s", dir, strerror(errno));
	s->ca = acme_ca_create(&(struct acme_ca_opts){
	    .directory = c->acme,
	    .email = c->acme_email,
	    .ca_file = c->acme_ca,
	    .eab_kid = c->acme_eab_kid,
	    .eab_hmac = c->acme_eab_hmac,
	    .account_key = account_key,
	    .timeout = c->acme_timeout,
	    .stop = stop,
	});
	if (s->ca == NULL || (s->answers = acme_answers_create(c->state_dir, s->http01)) == NULL)
		goto fail;
	return s;
fail:
	settings_free(s);
	return NULL;
}

/* The names of c to keep, in config order; entries of names kept are taken over. Lock
 * held. */
static int set_entries(struct acme *a, const struct config *c)
{
	struct entry **v = calloc(c->n_domains ? c->n_domains : 1, sizeof(*v));
	struct hash index;
	size_t n = 0;

	if (v == NULL || hash_init(&index, c->n_domains) < 0) {
		free(v);
		return -1;
	}
	for (size_t i = 0; i < c->n_domains && c->acme != NULL; i++) {
		const char *host = c->domains[i].host;
		struct entry *e;

		if (c->domains[i].cert != NULL)
			continue;
		e = hash_get(&a->index, host, strlen(host));
		if (e != NULL && e->gone)
			continue; /* a duplicate host cannot be: config rejects it */
		if (e == NULL) {
			if ((e = calloc(1, sizeof(*e))) == NULL ||
			    (e->host = strdup(host)) == NULL) {
				free(e);
				continue;
			}
		}
		e->gone = true; /* taken: marked so that the sweep below keeps it */
		/* A new configuration may have made an idle name ACME's again (its pair left
		 * the certs directory); the others keep their schedule. */
		if (e->idle)
			e->next_at = 0;
		if (hash_put(&index, e->host, e, NULL) < 0) {
			entry_free(e);
			continue;
		}
		v[n++] = e;
	}
	/* The old names that are no longer kept go (when no thread has them). */
	for (size_t i = 0; i < a->n_entries; i++) {
		struct entry *e = a->entries[i];

		if (e->gone)
			continue;
		e->gone = true;
		if (!e->busy)
			entry_free(e);
	}
	for (size_t i = 0; i < n; i++)
		v[i]->gone = false;
	free(a->entries);
	hash_finish(&a->index);
	a->entries = v;
	a->n_entries = n;
	a->index = index;
	a->cursor = 0;
	return 0;
}

void acme_configure(struct acme *a, const struct config *c)
{
	struct settings *s = NULL;

	if (c->acme != NULL && (s = settings_create(c, &a->stop)) == NULL) {
		log_err("acme: out of memory: certificates are not ordered");
		return;
	}
	if ((s == NULL) != (a->set == NULL) || (s != NULL && strcmp(s->key, a->set->key) != 0)) {
		threads_stop(a);
		pthread_mutex_lock(&a->lock);
		settings_free(a->set);
		a->set = s;
		s = NULL;
		pthread_mutex_unlock(&a->lock);
		if (a->set != NULL)
			threads_start(a);
	}
	settings_free(s);
	pthread_mutex_lock(&a->lock);
	if (set_entries(a, c) < 0)
		log_err("acme: out of memory: the names kept are not updated");
	pthread_cond_broadcast(&a->wake);
	pthread_mutex_unlock(&a->lock);
}

void acme_changed(struct acme *a, void (*fn)(void *arg, const char *host), void *arg)
{
	char **v;
	size_t n;

	pthread_mutex_lock(&a->lock);
	v = a->changed;
	n = a->n_changed;
	a->changed = NULL;
	a->n_changed = a->cap_changed = 0;
	pthread_mutex_unlock(&a->lock);
	for (size_t i = 0; i < n; i++) {
		fn(arg, v[i]);
		free(v[i]);
	}
	free(v);
}

void acme_count(struct acme *a, struct acme_counts *ret)
{
	pthread_mutex_lock(&a->lock);
	ret->issued = a->issued;
	ret->failed = a->failed;
	ret->names = a->set != NULL ? a->n_entries : 0;
	ret->busy = a->busy;
	pthread_mutex_unlock(&a->lock);
}
