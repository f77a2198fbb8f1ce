/* reports: TLS reports posted over HTTPS, read and stored off the request threads */
#include "reports.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "reportstore.h"

/* Client addresses with a rate bucket of their own (more share one, never unlimited). */
#define BUCKETS 4096
/* The glance is read again this often, and this soon after a report was stored. */
#define GLANCE_EVERY 60
#define GLANCE_AFTER_STORE 2
/* Reports past the retention are deleted this often. */
#define PRUNE_EVERY 3600
/* After the store failed, reports are answered 503 at once for this long (no worker waits
 * on a database that is down while senders' connections wait on the workers). */
#define STORE_DOWN_SECONDS 5
/* "report refused" lines a second at most */
#define LOG_PER_SECOND 10

const char *const reports_outcome_names[REPORTS_OUTCOMES] = {
    [REPORTS_STORED] = "stored",
    [REPORTS_DUPLICATE] = "duplicate",
    [REPORTS_INVALID] = "invalid",
    [REPORTS_FOREIGN] = "foreign",
    [REPORTS_QUOTA] = "quota",
    [REPORTS_TOO_LARGE] = "too_large",
    [REPORTS_MEDIA_TYPE] = "media_type",
    [REPORTS_RATE_LIMITED] = "rate_limited",
    [REPORTS_BUSY] = "busy",
    [REPORTS_TEMPFAIL] = "tempfail",
};

static const unsigned outcome_status[REPORTS_OUTCOMES] = {
    [REPORTS_STORED] = 201,     [REPORTS_DUPLICATE] = 200,    [REPORTS_INVALID] = 400,
    [REPORTS_FOREIGN] = 403,    [REPORTS_QUOTA] = 403,        [REPORTS_TOO_LARGE] = 413,
    [REPORTS_MEDIA_TYPE] = 415, [REPORTS_RATE_LIMITED] = 429, [REPORTS_BUSY] = 503,
    [REPORTS_TEMPFAIL] = 503,
};

/* Sessions counted by result: success, then every RFC 8460 result type (UNKNOWN: "other"). */
#define SESSION_SERIES (TLSRPT_RESULT_UNKNOWN + 2)

struct bucket {
	unsigned char key[16]; /* an IPv4 address, or an IPv6 /64 */
	bool used;
	double tokens;
	int64_t at_ms;
};

struct reports {
	pthread_mutex_t lock; /* the queue, the settings, the keeper's schedule */
	pthread_cond_t work, keep;
	struct reports_job *head, *tail;
	unsigned queued;
	bool stopping;
	atomic_bool closing; /* stopping, read without the lock */
	pthread_t workers[REPORTS_WORKERS], keeper;
	size_t n_workers;
	bool keeper_started;
	bool glance_due;      /* a report was stored: read the glance again soon */
	time_t down_until;    /* the store failed: reports are answered 503 until then */
	time_t glance_stored; /* when the first report since the last glance was stored */
	unsigned quota, retention_days;
	atomic_uint rate; /* per minute per address, 0 = no limit */

	pthread_rwlock_t store_lock; /* taken for writing only to swap the store */
	struct reportstore *store;   /* NULL: no store configured */
	char *store_spec, *store_dir;

	pthread_mutex_t bucket_lock;
	struct bucket buckets[BUCKETS];

	atomic_size_t inflight;
	atomic_ulong outcomes[REPORTS_OUTCOMES];
	atomic_ulong sessions[SESSION_SERIES];

	pthread_mutex_t glance_lock;
	struct reportstore_recent *glance; /* sorted by domain */
	size_t n_glance;
	time_t glance_at; /* 0: never read */
	bool store_ok;    /* the last read of the store worked */

	pthread_mutex_t log_lock;
	time_t log_second;
	unsigned log_count;
};

unsigned reports_status(enum reports_outcome o)
{
	return outcome_status[o];
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Whether a refusal may be logged now (LOG_PER_SECOND a second). */
static bool log_allowed(struct reports *r)
{
	time_t now = time(NULL);
	bool ok;

	pthread_mutex_lock(&r->log_lock);
	if (now != r->log_second) {
		r->log_second = now;
		r->log_count = 0;
	}
	ok = r->log_count++ < LOG_PER_SECOND;
	pthread_mutex_unlock(&r->log_lock);
	return ok;
}

/* ---- the store ---------------------------------------------------------------------- */

static bool same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Whether c wants a store: a domain receives reports, a store is named, or state_dir holds
 * one that tlsrpt-ingest fills. */
static bool store_wanted(const struct config *c)
{
	char path[4096];
	struct stat st;

	if (c->tlsrpt_store != NULL)
		return true;
	for (size_t i = 0; i < c->n_domains; i++)
		if (c->domains[i].tlsrpt_self)
			return true;
	return c->state_dir != NULL &&
	       snprintf(path, sizeof(path), "%s/tlsrpt.sqlite", c->state_dir) < (int)sizeof(path) &&
	       stat(path, &st) == 0;
}

static void configure_store(struct reports *r, const struct config *c)
{
	bool wanted = store_wanted(c);
	struct reportstore *s = NULL, *old;
	char *spec = NULL, *dir = NULL;
	char err[REPORTSTORE_ERR_MAX];

	if (wanted && r->store != NULL && same(r->store_spec, c->tlsrpt_store) &&
	    same(r->store_dir, c->state_dir))
		return; /* the same store */
	if (!wanted && r->store == NULL)
		return;
	if (wanted) {
		s = reportstore_open(c->tlsrpt_store, c->state_dir, err, sizeof(err));
		spec = c->tlsrpt_store != NULL ? strdup(c->tlsrpt_store) : NULL;
		dir = c->state_dir != NULL ? strdup(c->state_dir) : NULL;
		if (s == NULL || (c->tlsrpt_store != NULL && spec == NULL) ||
		    (c->state_dir != NULL && dir == NULL)) {
			log_err("TLS reports: %s", s == NULL ? err : "out of memory");
			reportstore_close(s);
			free(spec);
			free(dir);
			return; /* the previous store stays */
		}
	}
	pthread_rwlock_wrlock(&r->store_lock);
	old = r->store;
	r->store = s;
	free(r->store_spec);
	free(r->store_dir);
	r->store_spec = spec;
	r->store_dir = dir;
	pthread_rwlock_unlock(&r->store_lock);
	reportstore_close(old);
	if (s != NULL)
		log_msg("TLS reports: stored in %s",
		        c->tlsrpt_store != NULL && strcmp(c->tlsrpt_store, "sqlite") != 0
		            ? "PostgreSQL"
		            : "state_dir/tlsrpt.sqlite");
}

/* ---- the workers -------------------------------------------------------------------- */

static void count_sessions(struct reports *r, const struct tlsrpt_report *rep)
{
	for (size_t i = 0; i < rep->n_policies; i++) {
		const struct tlsrpt_policy *p = &rep->policies[i];

		atomic_fetch_add(&r->sessions[0], (unsigned long)p->successful);
		for (size_t k = 0; k < p->n_failures; k++)
			atomic_fetch_add(&r->sessions[1 + p->failures[k].result],
			                 (unsigned long)p->failures[k].failed_session_count);
	}
}

/* Reads, checks and stores one report: job's outcome and reason. */
static void process(struct reports *r, struct reports_job *job)
{
	struct tlsrpt_report *rep;
	enum reportstore_result res = REPORTSTORE_TEMPFAIL;
	char err[REPORTSTORE_ERR_MAX] = "no report store";
	unsigned quota;
	bool down;

	job->reason[0] = '\0';
	rep = tlsrpt_read(job->body, job->len, job->encoding, job->reason, sizeof(job->reason));
	if (rep == NULL) {
		job->outcome = REPORTS_INVALID;
		return;
	}
	for (size_t i = 0; i < rep->n_policies; i++)
		if (strcmp(rep->policies[i].domain, job->domain) != 0) {
			/* a report for another tenant never lands in its data from here */
			snprintf(job->reason, sizeof(job->reason),
			         "policy-domain %.100s is not %.100s", rep->policies[i].domain,
			         job->domain);
			job->outcome = REPORTS_FOREIGN;
			tlsrpt_free(rep);
			return;
		}
	pthread_mutex_lock(&r->lock);
	quota = r->quota;
	down = time(NULL) < r->down_until;
	pthread_mutex_unlock(&r->lock);
	if (down) {
		/* it failed a moment ago: answer at once rather than wait for it again */
		job->outcome = REPORTS_TEMPFAIL;
		snprintf(job->reason, sizeof(job->reason), "the report store is unavailable");
		tlsrpt_free(rep);
		return;
	}
	pthread_rwlock_rdlock(&r->store_lock);
	if (r->store != NULL)
		res = reportstore_store(r->store, rep, quota, time(NULL), err, sizeof(err));
	pthread_rwlock_unlock(&r->store_lock);
	switch (res) {
	case REPORTSTORE_STORED:
		job->outcome = REPORTS_STORED;
		count_sessions(r, rep);
		log_msg("TLS report stored: %s, %s, from %s", job->domain, rep->report_id,
		        rep->organization);
		pthread_mutex_lock(&r->lock);
		if (!r->glance_due) {
			r->glance_due = true;
			r->glance_stored = time(NULL);
		}
		pthread_mutex_unlock(&r->lock);
		break;
	case REPORTSTORE_DUPLICATE:
		job->outcome = REPORTS_DUPLICATE;
		snprintf(job->reason, sizeof(job->reason), "already stored");
		break;
	case REPORTSTORE_REFUSED:
		job->outcome = REPORTS_QUOTA;
		snprintf(job->reason, sizeof(job->reason), "%s", err);
		break;
	case REPORTSTORE_TEMPFAIL:
		job->outcome = REPORTS_TEMPFAIL;
		snprintf(job->reason, sizeof(job->reason), "the report store is unavailable");
		log_err("TLS report for %s not stored, the sender will retry (and reports are "
		        "answered 503 for %d s): %s",
		        job->domain, STORE_DOWN_SECONDS, err);
		pthread_mutex_lock(&r->lock);
		r->down_until = time(NULL) + STORE_DOWN_SECONDS;
		pthread_mutex_unlock(&r->lock);
		break;
	}
	tlsrpt_free(rep);
}

static void *worker_main(void *arg)
{
	struct reports *r = arg;

	for (;;) {
		struct reports_job *job;

		pthread_mutex_lock(&r->lock);
		while (r->head == NULL && !r->stopping)
			pthread_cond_wait(&r->work, &r->lock);
		job = r->head;
		if (job != NULL) {
			r->head = job->next;
			if (r->head == NULL)
				r->tail = NULL;
			r->queued--;
		}
		pthread_mutex_unlock(&r->lock);
		if (job == NULL)
			return NULL; /* stopping, and the queue is empty */
		if (atomic_load(&r->closing)) {
			/* stopping: what waits is answered, not stored (the sender retries) */
			job->outcome = REPORTS_BUSY;
			snprintf(job->reason, sizeof(job->reason), "the server is stopping");
		} else {
			process(r, job);
		}
		reports_count(r, job->outcome);
		if (job->outcome != REPORTS_STORED && job->outcome != REPORTS_DUPLICATE &&
		    job->outcome != REPORTS_TEMPFAIL && log_allowed(r))
			log_warn("TLS report for %s refused (%s): %s", job->domain,
			         reports_outcome_names[job->outcome], job->reason);
		job->done(job);
	}
}

int reports_submit(struct reports *r, struct reports_job *job)
{
	int ret = -1;

	job->next = NULL;
	pthread_mutex_lock(&r->lock);
	if (!r->stopping && r->queued < REPORTS_QUEUE_MAX) {
		if (r->tail != NULL)
			r->tail->next = job;
		else
			r->head = job;
		r->tail = job;
		r->queued++;
		pthread_cond_signal(&r->work);
		ret = 0;
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

void reports_count(struct reports *r, enum reports_outcome o)
{
	atomic_fetch_add(&r->outcomes[o], 1);
}

/* ---- the keeper: the glance and the retention ----------------------------------------- */

static void read_glance(struct reports *r, time_t now)
{
	struct reportstore_recent *v = NULL, *old = NULL;
	size_t n = 0, n_old = 0;
	char err[REPORTSTORE_ERR_MAX];
	int rc = -1;
	bool have;

	pthread_rwlock_rdlock(&r->store_lock);
	have = r->store != NULL;
	if (have)
		rc = reportstore_recent(r->store, REPORTS_GLANCE_DAYS, now, &v, &n, err,
		                        sizeof(err));
	pthread_rwlock_unlock(&r->store_lock);
	if (have && rc < 0)
		log_warn("TLS reports: cannot read the store for /status: %s", err);
	pthread_mutex_lock(&r->glance_lock);
	if (rc == 0 || !have) {
		old = r->glance;
		n_old = r->n_glance;
		r->glance = v;
		r->n_glance = n;
		r->glance_at = have ? now : 0;
	}
	r->store_ok = rc == 0;
	pthread_mutex_unlock(&r->glance_lock);
	reportstore_recent_free(old, n_old);
}

static void prune(struct reports *r, unsigned days, time_t now)
{
	uint64_t deleted = 0;
	char err[REPORTSTORE_ERR_MAX];
	int rc = 0;

	pthread_rwlock_rdlock(&r->store_lock);
	if (r->store != NULL)
		rc = reportstore_prune(r->store, days, now, &deleted, err, sizeof(err));
	pthread_rwlock_unlock(&r->store_lock);
	if (rc < 0)
		log_warn("TLS reports: cannot delete old reports: %s", err);
	else if (deleted != 0)
		log_msg("TLS reports: %" PRIu64 " reports older than %u days deleted", deleted,
		        days);
}

static void *keeper_main(void *arg)
{
	struct reports *r = arg;
	time_t glanced = 0, pruned = 0;

	pthread_mutex_lock(&r->lock);
	while (!r->stopping) {
		time_t now = time(NULL);
		bool glance = now - glanced >= GLANCE_EVERY ||
		              (r->glance_due && now - r->glance_stored >= GLANCE_AFTER_STORE);
		bool do_prune = now - pruned >= PRUNE_EVERY;
		unsigned days = r->retention_days;
		struct timespec until;

		if (glance || do_prune) {
			if (glance)
				r->glance_due = false;
			pthread_mutex_unlock(&r->lock);
			if (do_prune)
				prune(r, days, now);
			if (glance)
				read_glance(r, now);
			pthread_mutex_lock(&r->lock);
			glanced = glance ? now : glanced;
			pruned = do_prune ? now : pruned;
			continue;
		}
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		pthread_cond_timedwait(&r->keep, &r->lock, &until);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/* ---- the rate limit and the body budget --------------------------------------------- */

static void address_key(const struct sockaddr *sa, unsigned char key[16])
{
	memset(key, 0, 16);
	if (sa != NULL && sa->sa_family == AF_INET)
		memcpy(key, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
	else if (sa != NULL && sa->sa_family == AF_INET6) {
		const unsigned char *a =
		    ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;

		/* an IPv4-mapped address is that IPv4 address; any other, its /64 */
		if (IN6_IS_ADDR_V4MAPPED(
		        &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr))
			memcpy(key, a + 12, 4);
		else {
			memcpy(key, a, 8);
			key[15] = 6;
		}
	}
}

bool reports_admit(struct reports *r, const struct sockaddr *sa, unsigned *ret_retry)
{
	unsigned rate = atomic_load(&r->rate);
	unsigned char key[16];
	uint32_t h = 2166136261u;
	struct bucket *b;
	int64_t now = now_ms();
	bool ok;

	if (rate == 0)
		return true;
	address_key(sa, key);
	for (int i = 0; i < 16; i++)
		h = (h ^ key[i]) * 16777619u;
	pthread_mutex_lock(&r->bucket_lock);
	b = &r->buckets[h % BUCKETS];
	if (b->used)
		b->tokens += (double)(now - b->at_ms) * rate / 60000.0;
	if (!b->used || b->tokens >= rate) {
		/* a new address, or one quiet long enough: a full bucket (another address
		 * whose bucket is full again gives the slot up: nothing of its limit is lost) */
		memcpy(b->key, key, 16);
		b->used = true;
		b->tokens = rate;
	}
	b->at_ms = now;
	ok = b->tokens >= 1;
	if (ok)
		b->tokens -= 1;
	else
		*ret_retry = (unsigned)((1 - b->tokens) * 60 / rate) + 1;
	pthread_mutex_unlock(&r->bucket_lock);
	return ok;
}

bool reports_reserve(struct reports *r, size_t n)
{
	size_t cur = atomic_load(&r->inflight);

	do {
		if (n > REPORTS_INFLIGHT_MAX || cur > REPORTS_INFLIGHT_MAX - n)
			return false;
	} while (!atomic_compare_exchange_weak(&r->inflight, &cur, cur + n));
	return true;
}

void reports_release(struct reports *r, size_t n)
{
	atomic_fetch_sub(&r->inflight, n);
}

/* ---- start, reload, stop --------------------------------------------------------------- */

static void settings(struct reports *r, const struct config *c)
{
	pthread_mutex_lock(&r->lock);
	r->quota = c->tlsrpt_quota;
	r->retention_days = c->tlsrpt_retention_days;
	r->glance_due = true; /* a domain may have come or gone */
	r->glance_stored = 0;
	pthread_cond_signal(&r->keep);
	pthread_mutex_unlock(&r->lock);
	atomic_store(&r->rate, c->tlsrpt_rate_limit);
}

struct reports *reports_start(const struct config *c)
{
	struct reports *r = calloc(1, sizeof(*r));

	if (r == NULL) {
		log_err("out of memory");
		return NULL;
	}
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->work, NULL);
	pthread_cond_init(&r->keep, NULL);
	pthread_rwlock_init(&r->store_lock, NULL);
	pthread_mutex_init(&r->bucket_lock, NULL);
	pthread_mutex_init(&r->glance_lock, NULL);
	pthread_mutex_init(&r->log_lock, NULL);
	configure_store(r, c);
	settings(r, c);
	for (size_t i = 0; i < REPORTS_WORKERS; i++) {
		if (pthread_create(&r->workers[i], NULL, worker_main, r) != 0)
			break;
		r->n_workers++;
	}
	r->keeper_started = pthread_create(&r->keeper, NULL, keeper_main, r) == 0;
	if (r->n_workers != REPORTS_WORKERS || !r->keeper_started) {
		log_err("cannot start the TLS report threads");
		reports_shutdown(r);
		reports_free(r);
		return NULL;
	}
	return r;
}

void reports_configure(struct reports *r, const struct config *c)
{
	configure_store(r, c);
	settings(r, c);
}

void reports_shutdown(struct reports *r)
{
	if (r == NULL)
		return;
	atomic_store(&r->closing, true);
	pthread_mutex_lock(&r->lock);
	r->stopping = true;
	pthread_cond_broadcast(&r->work);
	pthread_cond_broadcast(&r->keep);
	pthread_mutex_unlock(&r->lock);
	for (size_t i = 0; i < r->n_workers; i++)
		pthread_join(r->workers[i], NULL);
	r->n_workers = 0;
	if (r->keeper_started)
		pthread_join(r->keeper, NULL);
	r->keeper_started = false;
}

void reports_free(struct reports *r)
{
	if (r == NULL)
		return;
	reportstore_close(r->store);
	free(r->store_spec);
	free(r->store_dir);
	reportstore_recent_free(r->glance, r->n_glance);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->work);
	pthread_cond_destroy(&r->keep);
	pthread_rwlock_destroy(&r->store_lock);
	pthread_mutex_destroy(&r->bucket_lock);
	pthread_mutex_destroy(&r->glance_lock);
	pthread_mutex_destroy(&r->log_lock);
	free(r);
}

/* ---- reading ------------------------------------------------------------------------- */

bool reports_glance(struct reports *r, const char *domain, struct reports_glance *out)
{
	const struct reportstore_recent *e;
	bool have;

	memset(out, 0, sizeof(*out));
	pthread_rwlock_rdlock(&r->store_lock);
	have = r->store != NULL;
	pthread_rwlock_unlock(&r->store_lock);
	if (!have)
		return false;
	pthread_mutex_lock(&r->glance_lock);
	out->known = r->glance_at != 0;
	out->read_at = r->glance_at;
	e = reportstore_recent_find(r->glance, r->n_glance, domain);
	if (e != NULL) {
		out->reports = e->reports;
		out->successful = e->successful;
		out->failed = e->failed;
		out->sts_reports = e->sts_reports;
		out->organizations = e->organizations;
		out->days = e->days;
		snprintf(out->top_result, sizeof(out->top_result), "%s",
		         e->top_result != NULL ? e->top_result : "");
		out->top_result_failed = e->top_result_failed;
		snprintf(out->top_mx, sizeof(out->top_mx), "%s",
		         e->top_mx != NULL ? e->top_mx : "");
		for (size_t i = 0; i < e->n_per_day && out->n_per_day < REPORTS_GLANCE_DAYS + 1;
		     i++, out->n_per_day++) {
			memcpy(out->per_day[out->n_per_day].day, e->per_day[i].day, 11);
			out->per_day[out->n_per_day].successful = e->per_day[i].successful;
			out->per_day[out->n_per_day].failed = e->per_day[i].failed;
		}
	}
	pthread_mutex_unlock(&r->glance_lock);
	return true;
}

void reports_glance_text(const struct reports_glance *g, char *out, size_t size)
{
	int n;

	if (!g->known) {
		snprintf(out, size, "the report store was not read yet");
		return;
	}
	if (g->reports == 0) {
		snprintf(out, size, "no reports in the last %d days", REPORTS_GLANCE_DAYS);
		return;
	}
	n = snprintf(out, size,
	             "%" PRIu64 " report%s from %u organisation%s over %u day%s: %" PRIu64
	             " successful, %" PRIu64 " failed sessions",
	             g->reports, g->reports == 1 ? "" : "s", g->organizations,
	             g->organizations == 1 ? "" : "s", g->days, g->days == 1 ? "" : "s",
	             g->successful, g->failed);
	if (g->failed != 0 && g->top_result[0] != '\0' && n > 0 && (size_t)n < size)
		snprintf(out + n, size - (size_t)n, "; top failure %s (%" PRIu64 ")%s%s",
		         g->top_result, g->top_result_failed, g->top_mx[0] != '\0' ? " at " : "",
		         g->top_mx);
}

bool reports_verdict(const struct reports_glance *g, char *out, size_t size)
{
	if (!g->known) {
		snprintf(out, size, "unknown: the report store was not read yet");
		return false;
	}
	if (g->reports == 0) {
		snprintf(out, size,
		         "not yet: no TLS reports in the last %d days (senders report daily; wait "
		         "for some)",
		         REPORTS_GLANCE_DAYS);
		return false;
	}
	if (g->failed != 0) {
		snprintf(out, size,
		         "not ready for enforce: %" PRIu64
		         " failed sessions reported, mostly %s%s%s",
		         g->failed, g->top_result[0] != '\0' ? g->top_result : "unknown",
		         g->top_mx[0] != '\0' ? " at " : "", g->top_mx);
		return false;
	}
	if (g->sts_reports == 0) {
		snprintf(out, size,
		         "not yet: the reports show no sender applying the STS policy (only "
		         "no-policy-found or TLSA)");
		return false;
	}
	snprintf(
	    out, size, "ready for enforce: no failures reported by %u organisation%s over %u day%s",
	    g->organizations, g->organizations == 1 ? "" : "s", g->days, g->days == 1 ? "" : "s");
	return true;
}

void reports_metrics(struct reports *r, struct buf *b)
{
	size_t reporting = 0, failing = 0;
	bool ok, known;

	buf_puts(b, "# HELP mtastsd_tlsrpt_posts_total TLS reports posted to /tlsrpt, by outcome.\n"
	            "# TYPE mtastsd_tlsrpt_posts_total counter\n");
	for (int i = 0; i < REPORTS_OUTCOMES; i++)
		buf_printf(b, "mtastsd_tlsrpt_posts_total{outcome=\"%s\"} %lu\n",
		           reports_outcome_names[i], atomic_load(&r->outcomes[i]));
	buf_puts(b, "# HELP mtastsd_tlsrpt_sessions_total Sessions in the TLS reports stored from "
	            "posts: successful, and failed by RFC 8460 result type (other: any other).\n"
	            "# TYPE mtastsd_tlsrpt_sessions_total counter\n");
	for (int i = 0; i < SESSION_SERIES; i++)
		buf_printf(b, "mtastsd_tlsrpt_sessions_total{result=\"%s\"} %lu\n",
		           i == 0                           ? "success"
		           : i - 1 == TLSRPT_RESULT_UNKNOWN ? "other"
		                                            : tlsrpt_result_name(i - 1),
		           atomic_load(&r->sessions[i]));
	buf_printf(b,
	           "# HELP mtastsd_tlsrpt_inflight_bytes Report bodies being received.\n"
	           "# TYPE mtastsd_tlsrpt_inflight_bytes gauge\n"
	           "mtastsd_tlsrpt_inflight_bytes %zu\n",
	           atomic_load(&r->inflight));
	pthread_mutex_lock(&r->glance_lock);
	for (size_t i = 0; i < r->n_glance; i++) {
		reporting++;
		failing += r->glance[i].failed != 0;
	}
	ok = r->store_ok;
	known = r->glance_at != 0;
	pthread_mutex_unlock(&r->glance_lock);
	if (!known && !ok)
		return; /* no store, or not read yet */
	buf_printf(b,
	           "# HELP mtastsd_tlsrpt_store_up Whether the last read of the report store "
	           "worked.\n# TYPE mtastsd_tlsrpt_store_up gauge\nmtastsd_tlsrpt_store_up %d\n"
	           "# HELP mtastsd_tlsrpt_domains Domains with TLS reports over the last %d days, "
	           "and those with failed sessions.\n# TYPE mtastsd_tlsrpt_domains gauge\n"
	           "mtastsd_tlsrpt_domains{state=\"reporting\"} %zu\n"
	           "mtastsd_tlsrpt_domains{state=\"failing\"} %zu\n",
	           ok ? 1 : 0, REPORTS_GLANCE_DAYS, reporting, failing);
}
