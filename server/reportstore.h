/* reportstore: where TLS reports are kept and summed up, behind one small interface with
 * two backends: SQLite in state_dir (the embedded default: WAL, one writer connection, a
 * separate reader so that summaries never wait on a write) and PostgreSQL (libpq) for a
 * fleet of replicas writing to one database. Both keep the same schema: a report row
 * (UNIQUE organization-name + report-id), a row per policy (domain, UTC day of the
 * report's start, mode and id applied, session counts) and a row per failure detail. */
#ifndef MTASTSD_REPORTSTORE_H
#define MTASTSD_REPORTSTORE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "tlsrpt.h"

#define REPORTSTORE_ERR_MAX 256

/* What store() did. Intake answers STORED and DUPLICATE as success (a sender retrying is
 * not an error), REFUSED as a client error and TEMPFAIL with 5xx / EX_TEMPFAIL: nothing of
 * the report was stored, it may be sent again. */
enum reportstore_result {
	REPORTSTORE_STORED,
	REPORTSTORE_DUPLICATE, /* the same organization-name and report-id is already there */
	REPORTSTORE_REFUSED,   /* a policy-domain of the report is at its quota */
	REPORTSTORE_TEMPFAIL,  /* storage unavailable: read-only or full disk, database down */
};

struct reportstore;

/* Opens the store named by spec: NULL or "sqlite": state_dir/tlsrpt.sqlite (state_dir
 * required); "postgresql://..." or "postgres://...": a libpq connection URI (a
 * connect_timeout of 5 s unless the URI sets one). Nothing is connected yet: each
 * operation connects (and creates the schema if missing) when it has no connection, and
 * drops the connection after any error, so a database that comes back is used again.
 * NULL with err set for an unknown spec, a missing state_dir or no memory. Thread-safe
 * once open; reportstore_close(NULL) is a no-op. */
struct reportstore *reportstore_open(const char *spec, const char *state_dir, char *err,
                                     size_t err_size);
void reportstore_close(struct reportstore *s);

/* "sqlite" or "postgresql". */
const char *reportstore_backend(const struct reportstore *s);

/* Stores r in one transaction (all of it or nothing), received at now. quota: the most
 * reports kept per policy-domain (0: no limit); a duplicate is reported as such even for a
 * domain at its quota. Writers are serialised (SQLite: BEGIN IMMEDIATE; PostgreSQL: a
 * table lock taken by writers only), so processes sharing a database agree. On REFUSED
 * and TEMPFAIL err says why (size at least REPORTSTORE_ERR_MAX). A commit whose answer is
 * lost with the connection is a TEMPFAIL too: the sender's retry is then a DUPLICATE. */
enum reportstore_result reportstore_store(struct reportstore *s, const struct tlsrpt_report *r,
                                          unsigned quota, time_t now, char *err, size_t err_size);

/* Deletes the reports that ended more than days days before now, with their rows. 0 and
 * *ret_deleted, or -1 with err. */
int reportstore_prune(struct reportstore *s, unsigned days, time_t now, uint64_t *ret_deleted,
                      char *err, size_t err_size);

/* A name and a number: a result type and its failed sessions, a receiving MX (""; none
 * reported) and its failed sessions, an organisation and its reports, a policy applied
 * ("TYPE", "sts MODE" or "sts MODE ID") and its sessions. */
struct reportstore_count {
	char *name;
	uint64_t n;
};

/* One domain on one UTC day (the day of the reports' start). */
struct reportstore_day {
	char *domain;
	char day[11]; /* YYYY-MM-DD */
	uint64_t reports, successful, failed;
	struct reportstore_count *results, *mx, *organizations, *policies;
	size_t n_results, n_mx, n_organizations, n_policies;
};

struct reportstore_summary {
	struct reportstore_day *days; /* by domain (in the order asked), then day */
	size_t n_days;
};

/* The reports of domains[0..n) (lowercase, no trailing dot) over the last days UTC days
 * up to now, today included, read in one snapshot. 0 and *ret (caller
 * reportstore_summary_free()s it), or -1 with err and *ret untouched. */
int reportstore_summary(struct reportstore *s, const char *const *domains, size_t n, unsigned days,
                        time_t now, struct reportstore_summary **ret, char *err, size_t err_size);
void reportstore_summary_free(struct reportstore_summary *sum);

/* Every domain with reports over the last days UTC days up to now, at a glance (for /status
 * and its testing verdict): one query per figure over all domains, not per domain. */
struct reportstore_recent_day {
	char day[11]; /* YYYY-MM-DD */
	uint64_t successful, failed;
};

struct reportstore_recent {
	char *domain;
	uint64_t reports, successful, failed;
	uint64_t sts_reports;   /* reports in which senders applied an STS policy */
	unsigned organizations; /* distinct reporting organisations */
	unsigned days;          /* distinct days with reports */
	char *top_result;       /* the result type with the most failed sessions, NULL if none */
	uint64_t top_result_failed;
	char *top_mx; /* the receiving MX with the most failed sessions ("" unnamed), or NULL */
	uint64_t top_mx_failed;
	struct reportstore_recent_day *per_day; /* the days with reports, oldest first */
	size_t n_per_day;
};

/* 0 and *ret (sorted by domain; caller reportstore_recent_free()s it) and *ret_n, or -1
 * with err and *ret untouched. */
int reportstore_recent(struct reportstore *s, unsigned days, time_t now,
                       struct reportstore_recent **ret, size_t *ret_n, char *err, size_t err_size);
void reportstore_recent_free(struct reportstore_recent *v, size_t n);
/* The entry of domain in v[0..n) as reportstore_recent() sorts it, or NULL. */
const struct reportstore_recent *reportstore_recent_find(const struct reportstore_recent *v,
                                                         size_t n, const char *domain);

#endif
