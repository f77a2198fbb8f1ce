/* reportstore: TLS reports stored and summed up, the SQL written once for both backends */
#include "reportstore.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "reportstore_backend.h"

#define NUM_MAX 24

struct reportstore {
	const struct reportstore_backend *be;
	char *target;
	/* One writer connection and one reader connection, each used by one thread at a time:
	 * a summary reads a WAL snapshot while a report is written. */
	pthread_mutex_t write_lock, read_lock;
	struct reportstore_conn *writer, *reader;
};

static void set_err(char *err, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (vsnprintf(err, size, fmt, ap) < 0 && size > 0)
		err[0] = '\0';
	va_end(ap);
}

struct reportstore *reportstore_open(const char *spec, const char *state_dir, char *err,
                                     size_t err_size)
{
	struct reportstore *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		set_err(err, err_size, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&s->write_lock, NULL);
	pthread_mutex_init(&s->read_lock, NULL);
	if (spec == NULL || strcmp(spec, "sqlite") == 0) {
		s->be = &reportstore_sqlite;
		if (state_dir == NULL) {
			set_err(err, err_size, "the sqlite TLS report store needs state_dir");
			goto fail;
		}
		if (asprintf(&s->target, "%s/tlsrpt.sqlite", state_dir) < 0) {
			s->target = NULL;
			set_err(err, err_size, "out of memory");
			goto fail;
		}
	} else if (strncmp(spec, "postgresql://", 13) == 0 ||
	           strncmp(spec, "postgres://", 11) == 0) {
		s->be = &reportstore_pg;
		if ((s->target = strdup(spec)) == NULL) {
			set_err(err, err_size, "out of memory");
			goto fail;
		}
	} else {
		set_err(err, err_size,
		        "unknown TLS report store (sqlite, or a postgresql:// URI): %.64s", spec);
		goto fail;
	}
	return s;
fail:
	reportstore_close(s);
	return NULL;
}

void reportstore_close(struct reportstore *s)
{
	if (s == NULL)
		return;
	if (s->writer != NULL)
		s->be->disconnect(s->writer);
	if (s->reader != NULL)
		s->be->disconnect(s->reader);
	pthread_mutex_destroy(&s->write_lock);
	pthread_mutex_destroy(&s->read_lock);
	free(s->target);
	free(s);
}

const char *reportstore_backend(const struct reportstore *s)
{
	return s->be->name;
}

/* *c, connected if it was not. 0 / -1 with err. */
static int connect_if(struct reportstore *s, struct reportstore_conn **c, char *err,
                      size_t err_size)
{
	if (*c == NULL)
		*c = s->be->connect(s->target, err, err_size);
	return *c != NULL ? 0 : -1;
}

/* After an error the connection is dropped: whatever state it was in (a failed
 * transaction, a server gone, a file gone read-only), the next operation starts anew. */
static void drop(struct reportstore *s, struct reportstore_conn **c)
{
	if (*c != NULL)
		s->be->disconnect(*c);
	*c = NULL;
}

/* Opens a transaction on *c (the writer with the backend's begin_write statements, or the
 * reader with begin_read), connecting first if needed. A connection kept from an earlier
 * operation that fails at once (the database restarted meanwhile) is replaced, once:
 * nothing was sent of the operation yet. 0, or -1 with err and *c dropped. */
static int begin(struct reportstore *s, struct reportstore_conn **c, bool write, char *err,
                 size_t err_size)
{
	const char *const read[] = {s->be->begin_read, NULL};

	for (int attempt = 0; attempt < 2; attempt++) {
		bool kept = *c != NULL;
		const char *const *b = write ? s->be->begin_write : read;

		if (connect_if(s, c, err, err_size) < 0)
			return -1;
		while (*b != NULL && s->be->exec(*c, *b, NULL, 0, NULL, NULL, err, err_size) == 0)
			b++;
		if (*b == NULL)
			return 0;
		drop(s, c);
		if (!kept)
			return -1;
	}
	return -1;
}

static void row_first(void *arg, const char *const *cols, int n)
{
	char *out = arg;

	if (n > 0 && cols[0] != NULL)
		snprintf(out, NUM_MAX, "%s", cols[0]);
}

static uint64_t num(const char *s)
{
	char *end;
	unsigned long long v;

	if (s == NULL)
		return 0;
	errno = 0;
	v = strtoull(s, &end, 10);
	return errno != 0 || end == s ? 0 : (uint64_t)v;
}

static void fmt_num(char out[NUM_MAX], long long v)
{
	snprintf(out, NUM_MAX, "%lld", v);
}

static int exec(struct reportstore *s, struct reportstore_conn *c, const char *sql,
                const char *const *params, int n, reportstore_row_fn fn, void *arg, char *err,
                size_t err_size)
{
	return s->be->exec(c, sql, params, n, fn, arg, err, err_size);
}

/* Inserts r's rows in the open transaction. 0 / -1 with err. */
static int insert_rows(struct reportstore *s, struct reportstore_conn *c,
                       const struct tlsrpt_report *r, const char *id, const char *day, char *err,
                       size_t err_size)
{
	for (size_t i = 0; i < r->n_policies; i++) {
		const struct tlsrpt_policy *p = &r->policies[i];
		char idx[NUM_MAX], ok[NUM_MAX], failed[NUM_MAX];
		const char *pp[] = {
		    id,      idx,   p->domain, day,   tlsrpt_policy_type_name(p->type),
		    p->mode, p->id, ok,        failed};

		fmt_num(idx, (long long)i);
		fmt_num(ok, (long long)p->successful);
		fmt_num(failed, (long long)p->failed);
		if (exec(s, c,
		         "INSERT INTO tlsrpt_policy (report, idx, domain, day, type, mode, "
		         "policy_id, "
		         "successful, failed) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
		         pp, 9, NULL, NULL, err, err_size) < 0)
			return -1;
		for (size_t k = 0; k < p->n_failures; k++) {
			const struct tlsrpt_failure *f = &p->failures[k];
			char count[NUM_MAX];
			const char *fp[] = {id,
			                    idx,
			                    f->result_type,
			                    f->sending_mta_ip,
			                    f->receiving_mx_hostname,
			                    f->receiving_mx_helo,
			                    f->receiving_ip,
			                    count,
			                    f->additional_information,
			                    f->failure_reason_code};

			fmt_num(count, (long long)f->failed_session_count);
			if (exec(s, c,
			         "INSERT INTO tlsrpt_failure (report, policy, result_type, "
			         "sending_ip, "
			         "receiving_mx, receiving_helo, receiving_ip, count, additional, "
			         "reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
			         fp, 10, NULL, NULL, err, err_size) < 0)
				return -1;
		}
	}
	return 0;
}

/* In the open transaction: REFUSED when a domain of r has quota reports, else STORED. */
static int check_quota(struct reportstore *s, struct reportstore_conn *c,
                       const struct tlsrpt_report *r, unsigned quota, bool *ret_over, char *err,
                       size_t err_size)
{
	*ret_over = false;
	if (quota == 0)
		return 0;
	for (size_t i = 0; i < r->n_policies; i++) {
		char n[NUM_MAX] = "0";
		const char *p[] = {r->policies[i].domain};

		if (exec(s, c, "SELECT count(DISTINCT report) FROM tlsrpt_policy WHERE domain = $1",
		         p, 1, row_first, n, err, err_size) < 0)
			return -1;
		if (num(n) >= quota) {
			set_err(err, err_size, "%s: quota of %u reports reached",
			        r->policies[i].domain, quota);
			*ret_over = true;
			return 0;
		}
	}
	return 0;
}

enum reportstore_result reportstore_store(struct reportstore *s, const struct tlsrpt_report *r,
                                          unsigned quota, time_t now, char *err, size_t err_size)
{
	enum reportstore_result result = REPORTSTORE_TEMPFAIL;
	char id[NUM_MAX] = "", start[NUM_MAX], end[NUM_MAX], received[NUM_MAX], day[11];
	const char *key[] = {r->organization, r->report_id};
	const char *row[] = {r->organization, r->report_id, r->contact, start, end, day, received};
	bool over;

	fmt_num(start, (long long)r->start);
	fmt_num(end, (long long)r->end);
	fmt_num(received, (long long)now);
	tlsrpt_day(r->start, day);

	pthread_mutex_lock(&s->write_lock);
	if (begin(s, &s->writer, true, err, err_size) < 0)
		goto out;
	if (exec(s, s->writer,
	         "SELECT id FROM tlsrpt_report WHERE organization = $1 AND report_id = $2", key, 2,
	         row_first, id, err, err_size) < 0)
		goto fail;
	if (id[0] != '\0') {
		result = REPORTSTORE_DUPLICATE;
		goto rollback;
	}
	if (check_quota(s, s->writer, r, quota, &over, err, err_size) < 0)
		goto fail;
	if (over) {
		result = REPORTSTORE_REFUSED;
		goto rollback;
	}
	if (exec(s, s->writer,
	         "INSERT INTO tlsrpt_report (organization, report_id, contact, start_time, "
	         "end_time, day, received) VALUES ($1, $2, $3, $4, $5, $6, $7) "
	         "ON CONFLICT (organization, report_id) DO NOTHING RETURNING id",
	         row, 7, row_first, id, err, err_size) < 0)
		goto fail;
	if (id[0] == '\0') {
		result = REPORTSTORE_DUPLICATE;
		goto rollback;
	}
	if (insert_rows(s, s->writer, r, id, day, err, err_size) < 0 ||
	    exec(s, s->writer, "COMMIT", NULL, 0, NULL, NULL, err, err_size) < 0)
		goto fail;
	result = REPORTSTORE_STORED;
	goto out;
rollback:
	if (exec(s, s->writer, "ROLLBACK", NULL, 0, NULL, NULL, err, err_size) == 0)
		goto out;
	result = REPORTSTORE_TEMPFAIL;
fail:
	/* the transaction dies with the connection: nothing of r is kept */
	drop(s, &s->writer);
out:
	pthread_mutex_unlock(&s->write_lock);
	return result;
}

static void row_count(void *arg, const char *const *cols, int n)
{
	(*(uint64_t *)arg)++;
}

int reportstore_prune(struct reportstore *s, unsigned days, time_t now, uint64_t *ret_deleted,
                      char *err, size_t err_size)
{
	char cutoff[NUM_MAX];
	const char *p[] = {cutoff};
	uint64_t deleted = 0;
	int ret = -1;

	fmt_num(cutoff, (long long)now - (long long)days * 86400);
	pthread_mutex_lock(&s->write_lock);
	if (begin(s, &s->writer, true, err, err_size) < 0)
		goto out;
	/* children first: no reliance on the backend's cascades */
	if (exec(s, s->writer,
	         "DELETE FROM tlsrpt_failure WHERE report IN (SELECT id FROM tlsrpt_report WHERE "
	         "end_time < $1)",
	         p, 1, NULL, NULL, err, err_size) < 0 ||
	    exec(s, s->writer,
	         "DELETE FROM tlsrpt_policy WHERE report IN (SELECT id FROM tlsrpt_report WHERE "
	         "end_time < $1)",
	         p, 1, NULL, NULL, err, err_size) < 0 ||
	    exec(s, s->writer, "DELETE FROM tlsrpt_report WHERE end_time < $1 RETURNING id", p, 1,
	         row_count, &deleted, err, err_size) < 0 ||
	    exec(s, s->writer, "COMMIT", NULL, 0, NULL, NULL, err, err_size) < 0)
		goto fail;
	*ret_deleted = deleted;
	ret = 0;
	goto out;
fail:
	drop(s, &s->writer);
out:
	pthread_mutex_unlock(&s->write_lock);
	return ret;
}

/* Above this many domains a summary reads every domain's rows in one pass per query (and
 * keeps those asked for) instead of five queries per domain. */
#define SUMMARY_PER_DOMAIN_MAX 16

/* The summary being read. One domain at a time: its rows are appended after first. All at
 * once (all): every row names its domain, kept when in want (domain -> its place in the
 * request + 1), its day found by days ("domain day" -> index + 1, keys in keys). */
struct reading {
	struct reportstore_summary *sum;
	size_t first; /* the first day of the current domain */
	const char *domain;
	bool failed; /* out of memory */
	bool all;
	struct hash want, days;
	char **keys;
	size_t n_keys;
};

static struct reportstore_day *find_day(struct reading *rd, const char *day)
{
	char key[TLSRPT_DOMAIN_MAX + 16];
	void *v;

	if (rd->all) {
		int len = snprintf(key, sizeof(key), "%s %s", rd->domain, day);

		v = len > 0 && (size_t)len < sizeof(key) ? hash_get(&rd->days, key, (size_t)len)
		                                         : NULL;
		return v != NULL ? &rd->sum->days[(uintptr_t)v - 1] : NULL;
	}
	for (size_t i = rd->first; i < rd->sum->n_days; i++)
		if (strcmp(rd->sum->days[i].day, day) == 0)
			return &rd->sum->days[i];
	return NULL;
}

/* All at once: the day just appended can be found by find_day(). */
static void index_day(struct reading *rd)
{
	const struct reportstore_day *d = &rd->sum->days[rd->sum->n_days - 1];
	char **keys = reallocarray(rd->keys, rd->n_keys + 1, sizeof(*keys));
	char *key = NULL;

	if (keys != NULL)
		rd->keys = keys;
	if (keys == NULL || asprintf(&key, "%s %s", d->domain, d->day) < 0) {
		rd->failed = true;
		return;
	}
	rd->keys[rd->n_keys++] = key;
	if (hash_put(&rd->days, key, (void *)(uintptr_t)rd->sum->n_days, NULL) < 0)
		rd->failed = true;
}

static void row_day(void *arg, const char *const *cols, int n)
{
	struct reading *rd = arg;
	struct reportstore_day *d, *v;

	if (n != 4 || cols[0] == NULL || strlen(cols[0]) != 10 || rd->failed)
		return;
	v = reallocarray(rd->sum->days, rd->sum->n_days + 1, sizeof(*v));
	if (v == NULL) {
		rd->failed = true;
		return;
	}
	rd->sum->days = v;
	d = &v[rd->sum->n_days];
	memset(d, 0, sizeof(*d));
	if ((d->domain = strdup(rd->domain)) == NULL) {
		rd->failed = true;
		return;
	}
	rd->sum->n_days++;
	memcpy(d->day, cols[0], 11);
	d->reports = num(cols[1]);
	d->successful = num(cols[2]);
	d->failed = num(cols[3]);
	if (rd->all)
		index_day(rd);
}

/* All at once: a row whose first column is its domain goes to fn without it, when that
 * domain was asked for. */
static void row_of_domain(struct reading *rd, const char *const *cols, int n, reportstore_row_fn fn,
                          void *arg)
{
	if (n < 1 || cols[0] == NULL || rd->failed ||
	    hash_get(&rd->want, cols[0], strlen(cols[0])) == NULL)
		return;
	rd->domain = cols[0];
	fn(arg, cols + 1, n - 1);
}

/* Adds (name, n) to one of the lists of a day; which: 0 results, 1 mx, 2 organizations,
 * 3 policies. */
static void add_count(struct reading *rd, const char *day, int which, const char *name, uint64_t n)
{
	struct reportstore_day *d = find_day(rd, day);
	struct reportstore_count **list, *v;
	size_t *len;

	if (d == NULL || rd->failed)
		return;
	list = which == 0   ? &d->results
	       : which == 1 ? &d->mx
	       : which == 2 ? &d->organizations
	                    : &d->policies;
	len = which == 0   ? &d->n_results
	      : which == 1 ? &d->n_mx
	      : which == 2 ? &d->n_organizations
	                   : &d->n_policies;
	if ((v = reallocarray(*list, *len + 1, sizeof(*v))) == NULL) {
		rd->failed = true;
		return;
	}
	*list = v;
	if ((v[*len].name = strdup(name != NULL ? name : "")) == NULL) {
		rd->failed = true;
		return;
	}
	v[(*len)++].n = n;
}

struct list_reading {
	struct reading *rd;
	int which;
};

static void row_list(void *arg, const char *const *cols, int n)
{
	struct list_reading *lr = arg;

	if (n == 3 && cols[0] != NULL)
		add_count(lr->rd, cols[0], lr->which, cols[1], num(cols[2]));
}

static void row_policy(void *arg, const char *const *cols, int n)
{
	struct reading *rd = arg;
	char name[128];
	const char *type = cols[1] ? cols[1] : "", *mode = cols[2] ? cols[2] : "",
	           *id = cols[3] ? cols[3] : "";

	if (n != 5 || cols[0] == NULL)
		return;
	if (snprintf(name, sizeof(name), "%s%s%s%s%s", type, mode[0] ? " " : "", mode,
	             id[0] ? " " : "", id) >= (int)sizeof(name))
		return;
	add_count(rd, cols[0], 3, name, num(cols[4]));
}

static const char *const list_sql[] = {
    "SELECT p.day, f.result_type, sum(f.count) FROM tlsrpt_failure f JOIN tlsrpt_policy p "
    "ON p.report = f.report AND p.idx = f.policy WHERE p.domain = $1 AND p.day >= $2 "
    "GROUP BY p.day, f.result_type ORDER BY 1, 2",
    "SELECT p.day, COALESCE(f.receiving_mx, ''), sum(f.count) FROM tlsrpt_failure f JOIN "
    "tlsrpt_policy p ON p.report = f.report AND p.idx = f.policy WHERE p.domain = $1 AND "
    "p.day >= $2 GROUP BY p.day, COALESCE(f.receiving_mx, '') ORDER BY 1, 2",
    "SELECT p.day, r.organization, count(DISTINCT r.id) FROM tlsrpt_report r JOIN "
    "tlsrpt_policy p ON p.report = r.id WHERE p.domain = $1 AND p.day >= $2 "
    "GROUP BY p.day, r.organization ORDER BY 1, 2",
};

static void row_day_all(void *arg, const char *const *cols, int n)
{
	row_of_domain(arg, cols, n, row_day, arg);
}

static void row_list_all(void *arg, const char *const *cols, int n)
{
	struct list_reading *lr = arg;

	row_of_domain(lr->rd, cols, n, row_list, lr);
}

static void row_policy_all(void *arg, const char *const *cols, int n)
{
	row_of_domain(arg, cols, n, row_policy, arg);
}

/* The queries of list_sql and the two others over every domain, the domain first. */
static const char *const all_sql[] = {
    "SELECT domain, day, count(DISTINCT report), sum(successful), sum(failed) FROM "
    "tlsrpt_policy WHERE day >= $1 GROUP BY domain, day",
    "SELECT p.domain, p.day, f.result_type, sum(f.count) FROM tlsrpt_failure f JOIN "
    "tlsrpt_policy p ON p.report = f.report AND p.idx = f.policy WHERE p.day >= $1 "
    "GROUP BY p.domain, p.day, f.result_type ORDER BY 1, 2, 3",
    "SELECT p.domain, p.day, COALESCE(f.receiving_mx, ''), sum(f.count) FROM tlsrpt_failure "
    "f JOIN tlsrpt_policy p ON p.report = f.report AND p.idx = f.policy WHERE p.day >= $1 "
    "GROUP BY p.domain, p.day, COALESCE(f.receiving_mx, '') ORDER BY 1, 2, 3",
    "SELECT p.domain, p.day, r.organization, count(DISTINCT r.id) FROM tlsrpt_report r JOIN "
    "tlsrpt_policy p ON p.report = r.id WHERE p.day >= $1 GROUP BY p.domain, p.day, "
    "r.organization ORDER BY 1, 2, 3",
    "SELECT domain, day, type, mode, policy_id, sum(successful + failed) FROM tlsrpt_policy "
    "WHERE day >= $1 GROUP BY domain, day, type, mode, policy_id ORDER BY 1, 2, 3, 4, 5",
};

/* Days in the order of the request, then by date. */
static int day_order(const void *a, const void *b, void *arg)
{
	const struct reportstore_day *x = a, *y = b;
	const struct hash *want = arg;
	uintptr_t i = (uintptr_t)hash_get(want, x->domain, strlen(x->domain)),
	          j = (uintptr_t)hash_get(want, y->domain, strlen(y->domain));

	return i != j ? (i < j ? -1 : 1) : strcmp(x->day, y->day);
}

/* Every domain's rows in one pass per query, those of domains[0..n) kept. */
static int summary_all(struct reportstore *s, struct reading *rd, const char *const *domains,
                       size_t n, const char *first, char *err, size_t err_size)
{
	const char *p[] = {first};

	rd->all = true;
	if (hash_init(&rd->want, n) < 0 || hash_init(&rd->days, n) < 0) {
		rd->failed = true;
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		if (hash_put(&rd->want, domains[i], (void *)(uintptr_t)(i + 1), NULL) < 0)
			rd->failed = true;
	if (exec(s, s->reader, all_sql[0], p, 1, row_day_all, rd, err, err_size) < 0)
		return -1;
	for (int w = 0; w < 3; w++) {
		struct list_reading lr = {rd, w};

		if (exec(s, s->reader, all_sql[1 + w], p, 1, row_list_all, &lr, err, err_size) < 0)
			return -1;
	}
	if (exec(s, s->reader, all_sql[4], p, 1, row_policy_all, rd, err, err_size) < 0)
		return -1;
	if (!rd->failed && rd->sum->n_days > 1)
		qsort_r(rd->sum->days, rd->sum->n_days, sizeof(*rd->sum->days), day_order,
		        &rd->want);
	return 0;
}

static void reading_finish(struct reading *rd)
{
	if (!rd->all)
		return;
	hash_finish(&rd->want);
	hash_finish(&rd->days);
	for (size_t i = 0; i < rd->n_keys; i++)
		free(rd->keys[i]);
	free(rd->keys);
}

int reportstore_summary(struct reportstore *s, const char *const *domains, size_t n, unsigned days,
                        time_t now, struct reportstore_summary **ret, char *err, size_t err_size)
{
	struct reportstore_summary *sum = calloc(1, sizeof(*sum));
	struct reading rd = {.sum = sum};
	char first[11];
	int ret_code = -1;

	if (sum == NULL) {
		set_err(err, err_size, "out of memory");
		return -1;
	}
	tlsrpt_day(now - (time_t)(days > 0 ? days - 1 : 0) * 86400, first);
	pthread_mutex_lock(&s->read_lock);
	if (begin(s, &s->reader, false, err, err_size) < 0)
		goto out;
	if (n > SUMMARY_PER_DOMAIN_MAX && summary_all(s, &rd, domains, n, first, err, err_size) < 0)
		goto fail;
	for (size_t i = 0; n <= SUMMARY_PER_DOMAIN_MAX && i < n; i++) {
		const char *p[] = {domains[i], first};

		rd.domain = domains[i];
		rd.first = sum->n_days;
		if (exec(s, s->reader,
		         "SELECT day, count(DISTINCT report), sum(successful), sum(failed) FROM "
		         "tlsrpt_policy WHERE domain = $1 AND day >= $2 GROUP BY day ORDER BY day",
		         p, 2, row_day, &rd, err, err_size) < 0)
			goto fail;
		for (int w = 0; w < 3; w++) {
			struct list_reading lr = {&rd, w};

			if (exec(s, s->reader, list_sql[w], p, 2, row_list, &lr, err, err_size) < 0)
				goto fail;
		}
		if (exec(s, s->reader,
		         "SELECT day, type, mode, policy_id, sum(successful + failed) FROM "
		         "tlsrpt_policy WHERE domain = $1 AND day >= $2 GROUP BY day, type, mode, "
		         "policy_id ORDER BY 1, 2, 3, 4",
		         p, 2, row_policy, &rd, err, err_size) < 0)
			goto fail;
	}
	if (exec(s, s->reader, "COMMIT", NULL, 0, NULL, NULL, err, err_size) < 0)
		goto fail;
	if (rd.failed) {
		set_err(err, err_size, "out of memory");
		goto out;
	}
	*ret = sum;
	sum = NULL;
	ret_code = 0;
	goto out;
fail:
	drop(s, &s->reader);
out:
	pthread_mutex_unlock(&s->read_lock);
	reading_finish(&rd);
	reportstore_summary_free(sum);
	return ret_code;
}

static void free_counts(struct reportstore_count *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].name);
	free(v);
}

void reportstore_summary_free(struct reportstore_summary *sum)
{
	if (sum == NULL)
		return;
	for (size_t i = 0; i < sum->n_days; i++) {
		struct reportstore_day *d = &sum->days[i];

		free(d->domain);
		free_counts(d->results, d->n_results);
		free_counts(d->mx, d->n_mx);
		free_counts(d->organizations, d->n_organizations);
		free_counts(d->policies, d->n_policies);
	}
	free(sum->days);
	free(sum);
}

struct recent_reading {
	struct reportstore_recent *v;
	size_t n;
	bool failed;
};

const struct reportstore_recent *reportstore_recent_find(const struct reportstore_recent *v,
                                                         size_t n, const char *domain)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(v[mid].domain, domain);

		if (c == 0)
			return &v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int recent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct reportstore_recent *)a)->domain,
	              ((const struct reportstore_recent *)b)->domain);
}

/* In strcmp() order for reportstore_recent_find(): SQL's order of text depends on collations.
 * Always true (the && chain of reportstore_recent() goes on). */
static bool recent_sort(struct recent_reading *rr)
{
	if (rr->n > 1)
		qsort(rr->v, rr->n, sizeof(*rr->v), recent_cmp);
	return true;
}

static void row_recent(void *arg, const char *const *cols, int n)
{
	struct recent_reading *rr = arg;
	struct reportstore_recent *v, *e;

	if (n != 7 || cols[0] == NULL || rr->failed)
		return;
	if ((v = reallocarray(rr->v, rr->n + 1, sizeof(*v))) == NULL) {
		rr->failed = true;
		return;
	}
	rr->v = v;
	e = &v[rr->n];
	memset(e, 0, sizeof(*e));
	if ((e->domain = strdup(cols[0])) == NULL) {
		rr->failed = true;
		return;
	}
	rr->n++;
	e->reports = num(cols[1]);
	e->successful = num(cols[2]);
	e->failed = num(cols[3]);
	e->sts_reports = num(cols[4]);
	e->organizations = (unsigned)num(cols[5]);
	e->days = (unsigned)num(cols[6]);
}

/* Rows (domain, name, failed) ordered by domain, then failed descending: the first row of
 * each domain is its top one. */
static void row_top(void *arg, const char *const *cols, int n, bool mx)
{
	struct recent_reading *rr = arg;
	const struct reportstore_recent *found;
	struct reportstore_recent *e;
	char **name;

	if (n != 3 || cols[0] == NULL || rr->failed ||
	    (found = reportstore_recent_find(rr->v, rr->n, cols[0])) == NULL)
		return;
	e = &rr->v[found - rr->v];
	name = mx ? &e->top_mx : &e->top_result;
	if (*name != NULL)
		return;
	if ((*name = strdup(cols[1] != NULL ? cols[1] : "")) == NULL) {
		rr->failed = true;
		return;
	}
	*(mx ? &e->top_mx_failed : &e->top_result_failed) = num(cols[2]);
}

/* Rows (domain, day, successful, failed), by domain and day. */
static void row_recent_day(void *arg, const char *const *cols, int n)
{
	struct recent_reading *rr = arg;
	const struct reportstore_recent *found;
	struct reportstore_recent *e;
	struct reportstore_recent_day *v;

	if (n != 4 || cols[0] == NULL || cols[1] == NULL || strlen(cols[1]) != 10 || rr->failed ||
	    (found = reportstore_recent_find(rr->v, rr->n, cols[0])) == NULL)
		return;
	e = &rr->v[found - rr->v];
	if ((v = reallocarray(e->per_day, e->n_per_day + 1, sizeof(*v))) == NULL) {
		rr->failed = true;
		return;
	}
	e->per_day = v;
	v += e->n_per_day++;
	memcpy(v->day, cols[1], 11);
	v->successful = num(cols[2]);
	v->failed = num(cols[3]);
}

static void row_top_result(void *arg, const char *const *cols, int n)
{
	row_top(arg, cols, n, false);
}

static void row_top_mx(void *arg, const char *const *cols, int n)
{
	row_top(arg, cols, n, true);
}

int reportstore_recent(struct reportstore *s, unsigned days, time_t now,
                       struct reportstore_recent **ret, size_t *ret_n, char *err, size_t err_size)
{
	struct recent_reading rr = {NULL, 0, false};
	char first[11];
	const char *p[] = {first};
	int ret_code = -1;

	tlsrpt_day(now - (time_t)(days > 0 ? days - 1 : 0) * 86400, first);
	pthread_mutex_lock(&s->read_lock);
	if (begin(s, &s->reader, false, err, err_size) < 0)
		goto out;
	if (exec(s, s->reader,
	         "SELECT p.domain, count(DISTINCT p.report), sum(p.successful), sum(p.failed), "
	         "count(DISTINCT CASE WHEN p.type = 'sts' THEN p.report END), "
	         "count(DISTINCT r.organization), count(DISTINCT p.day) FROM tlsrpt_policy p "
	         "JOIN tlsrpt_report r ON r.id = p.report WHERE p.day >= $1 GROUP BY p.domain",
	         p, 1, row_recent, &rr, err, err_size) < 0 ||
	    !recent_sort(&rr) ||
	    exec(s, s->reader,
	         "SELECT p.domain, f.result_type, sum(f.count) FROM tlsrpt_failure f JOIN "
	         "tlsrpt_policy p ON p.report = f.report AND p.idx = f.policy WHERE p.day >= $1 "
	         "GROUP BY p.domain, f.result_type ORDER BY 1, 3 DESC, 2",
	         p, 1, row_top_result, &rr, err, err_size) < 0 ||
	    exec(s, s->reader,
	         "SELECT p.domain, COALESCE(f.receiving_mx, ''), sum(f.count) FROM tlsrpt_failure "
	         "f JOIN tlsrpt_policy p ON p.report = f.report AND p.idx = f.policy WHERE p.day "
	         ">= $1 GROUP BY p.domain, COALESCE(f.receiving_mx, '') ORDER BY 1, 3 DESC, 2",
	         p, 1, row_top_mx, &rr, err, err_size) < 0 ||
	    exec(s, s->reader,
	         "SELECT domain, day, sum(successful), sum(failed) FROM tlsrpt_policy WHERE day >= "
	         "$1 GROUP BY domain, day ORDER BY 1, 2",
	         p, 1, row_recent_day, &rr, err, err_size) < 0 ||
	    exec(s, s->reader, "COMMIT", NULL, 0, NULL, NULL, err, err_size) < 0) {
		drop(s, &s->reader);
		goto out;
	}
	if (rr.failed) {
		set_err(err, err_size, "out of memory");
		goto out;
	}
	*ret = rr.v;
	*ret_n = rr.n;
	rr.v = NULL;
	rr.n = 0;
	ret_code = 0;
out:
	pthread_mutex_unlock(&s->read_lock);
	reportstore_recent_free(rr.v, rr.n);
	return ret_code;
}

void reportstore_recent_free(struct reportstore_recent *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].domain);
		free(v[i].top_result);
		free(v[i].top_mx);
		free(v[i].per_day);
	}
	free(v);
}
