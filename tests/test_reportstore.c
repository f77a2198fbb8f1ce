/* test_reportstore: the TLS report store, the same cases against SQLite (argument
 * "sqlite", in a temporary state_dir) and PostgreSQL (argument "postgresql": a throwaway
 * cluster started here with initdb and pg_ctl on a unix socket). As root, everything runs
 * as nobody (initdb refuses root, and root would write into a read-only directory). */
#include <check.h>
#include <errno.h>
#include <grp.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "reportstore.h"

#define NOW 1796256000 /* 2026-12-03T00:00:00Z */
#define DAY 86400

static const char *const fixtures[] = {"google.json", "microsoft.json", "other.json"};
#define N_FIXTURES 3
static char *json[N_FIXTURES];
static bool pg;
static char dir[] = "/tmp/test_reportstore.XXXXXX";
static char spec[512];      /* of the current test's store */
static char state_dir[512]; /* sqlite */
static int serial;

static void run(const char *cmd)
{
	ck_assert_msg(system(cmd) == 0, "%s", cmd);
}

static void pg_ctl(const char *action)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd),
	         PG_BIN "/pg_ctl -D %s/pg -l %s/pg.log -w -o \"-k %s -c listen_addresses=''\" %s "
	                ">/dev/null",
	         dir, dir, dir, action);
	run(cmd);
}

/* A fresh store for each test: a new state_dir, or a new database. */
static void setup(void)
{
	static int counter;

	/* each test runs in a child of its own, or all in this process (CK_FORK=no) */
	serial = (int)getpid() % 100000 * 100 + ++counter;
	if (!pg) {
		snprintf(state_dir, sizeof(state_dir), "%s/state%d", dir, serial);
		ck_assert_int_eq(mkdir(state_dir, 0755), 0);
		snprintf(spec, sizeof(spec), "sqlite");
	} else {
		char conninfo[600], sql[64];
		PGconn *c;
		PGresult *res;

		snprintf(conninfo, sizeof(conninfo), "host=%s dbname=postgres user=postgres", dir);
		c = PQconnectdb(conninfo);
		ck_assert_msg(PQstatus(c) == CONNECTION_OK, "%s", PQerrorMessage(c));
		snprintf(sql, sizeof(sql), "CREATE DATABASE t%d", serial);
		res = PQexec(c, sql);
		ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK, "%s", PQerrorMessage(c));
		PQclear(res);
		PQfinish(c);
		snprintf(spec, sizeof(spec), "postgresql://postgres@/t%d?host=%s", serial, dir);
	}
}

static struct reportstore *open_store(void)
{
	char err[REPORTSTORE_ERR_MAX];
	struct reportstore *s = reportstore_open(spec, pg ? NULL : state_dir, err, sizeof(err));

	ck_assert_msg(s != NULL, "%s", err);
	ck_assert_str_eq(reportstore_backend(s), pg ? "postgresql" : "sqlite");
	return s;
}

static struct tlsrpt_report *parse(const char *text)
{
	char err[TLSRPT_ERR_MAX];
	struct tlsrpt_report *r = tlsrpt_parse(text, strlen(text), err, sizeof(err));

	ck_assert_msg(r != NULL, "%s", err);
	return r;
}

static enum reportstore_result store_text(struct reportstore *s, const char *text, unsigned quota)
{
	char err[REPORTSTORE_ERR_MAX] = "";
	struct tlsrpt_report *r = parse(text);
	enum reportstore_result res = reportstore_store(s, r, quota, NOW, err, sizeof(err));

	if (res == REPORTSTORE_TEMPFAIL)
		fprintf(stderr, "temporary failure: %s\n", err);
	tlsrpt_free(r);
	return res;
}

/* What the fixtures say, read with jansson alone: sessions of domain on day. */
struct expect {
	uint64_t reports, ok, failed;
};

static struct expect expected(const char *domain, const char *day, const bool *which)
{
	struct expect e = {0};

	for (size_t i = 0; i < N_FIXTURES; i++) {
		json_t *root, *p;
		size_t k;
		bool counted = false;
		/* the UTC day of each fixture's start, as its date-range says */
		const char *days[] = {"2026-12-01", "2026-12-01", "2026-12-02"};

		if (!which[i] || strcmp(days[i], day) != 0)
			continue;
		ck_assert_ptr_nonnull(root = json_loads(json[i], 0, NULL));
		json_array_foreach(json_object_get(root, "policies"), k, p)
		{
			const char *d = json_string_value(
			    json_object_get(json_object_get(p, "policy"), "policy-domain"));
			json_t *sum = json_object_get(p, "summary");

			if (strncasecmp(d, domain, strlen(domain)) != 0 ||
			    (d[strlen(domain)] != '\0' && strcmp(d + strlen(domain), ".") != 0))
				continue;
			e.ok += (uint64_t)json_integer_value(
			    json_object_get(sum, "total-successful-session-count"));
			e.failed += (uint64_t)json_integer_value(
			    json_object_get(sum, "total-failure-session-count"));
			if (!counted)
				e.reports++;
			counted = true;
		}
		json_decref(root);
	}
	return e;
}

static const struct reportstore_day *find(const struct reportstore_summary *sum, const char *domain,
                                          const char *day)
{
	for (size_t i = 0; i < sum->n_days; i++)
		if (strcmp(sum->days[i].domain, domain) == 0 && strcmp(sum->days[i].day, day) == 0)
			return &sum->days[i];
	return NULL;
}

static uint64_t count_of(const struct reportstore_count *v, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].name, name) == 0)
			return v[i].n;
	return 0;
}

static const char *const domains[] = {"example.com", "example.net"};

/* The summary matches the fixtures' totals, day by day and domain by domain. */
static void check_totals(struct reportstore *s, const bool *which)
{
	const char *const days[] = {"2026-12-01", "2026-12-02"};
	struct reportstore_summary *sum = NULL;
	char err[REPORTSTORE_ERR_MAX];
	size_t n = 0;

	ck_assert_msg(reportstore_summary(s, domains, 2, 30, NOW, &sum, err, sizeof(err)) == 0,
	              "%s", err);
	for (size_t d = 0; d < 2; d++)
		for (size_t k = 0; k < 2; k++) {
			struct expect e = expected(domains[d], days[k], which);
			const struct reportstore_day *got = find(sum, domains[d], days[k]);

			if (e.reports == 0) {
				ck_assert_ptr_null(got);
				continue;
			}
			n++;
			ck_assert_msg(got != NULL, "%s %s", domains[d], days[k]);
			ck_assert_uint_eq(got->reports, e.reports);
			ck_assert_uint_eq(got->successful, e.ok);
			ck_assert_uint_eq(got->failed, e.failed);
		}
	ck_assert_uint_eq(sum->n_days, n);
	reportstore_summary_free(sum);
}

START_TEST(test_store_summary)
{
	struct reportstore *s = open_store();
	const bool all[] = {true, true, true};
	struct reportstore_summary *sum = NULL;
	const struct reportstore_day *d;
	char err[REPORTSTORE_ERR_MAX];
	char testing[80], enforce[80];
	struct tlsrpt_report *g = parse(json[0]), *m = parse(json[1]);

	for (size_t i = 0; i < N_FIXTURES; i++)
		ck_assert_int_eq(store_text(s, json[i], 0), REPORTSTORE_STORED);
	/* a sender retrying: stored once */
	ck_assert_int_eq(store_text(s, json[0], 0), REPORTSTORE_DUPLICATE);
	check_totals(s, all);

	ck_assert_int_eq(reportstore_summary(s, domains, 1, 30, NOW, &sum, err, sizeof(err)), 0);
	ck_assert_uint_eq(sum->n_days, 2);
	d = find(sum, "example.com", "2026-12-01");
	ck_assert_ptr_nonnull(d);
	ck_assert_uint_eq(count_of(d->results, d->n_results, "certificate-expired"), 12);
	ck_assert_uint_eq(count_of(d->results, d->n_results, "validation-failure"), 5);
	ck_assert_uint_eq(count_of(d->results, d->n_results, "starttls-not-supported"), 3);
	ck_assert_uint_eq(d->n_results, 3);
	ck_assert_uint_eq(count_of(d->mx, d->n_mx, "mx2.example.com"), 15);
	ck_assert_uint_eq(count_of(d->mx, d->n_mx, "mx1.example.com"), 5);
	ck_assert_uint_eq(count_of(d->organizations, d->n_organizations, "Google Inc."), 1);
	ck_assert_uint_eq(count_of(d->organizations, d->n_organizations, "Microsoft Corporation"),
	                  1);
	snprintf(testing, sizeof(testing), "sts testing %s", g->policies[0].id);
	snprintf(enforce, sizeof(enforce), "sts enforce %s", m->policies[0].id);
	ck_assert_uint_eq(count_of(d->policies, d->n_policies, testing), 1284 + 17);
	ck_assert_uint_eq(count_of(d->policies, d->n_policies, enforce), 840 + 3);
	d = find(sum, "example.com", "2026-12-02");
	ck_assert_ptr_nonnull(d);
	ck_assert_uint_eq(count_of(d->results, d->n_results, "x-greylisted"), 2);
	ck_assert_uint_eq(count_of(d->mx, d->n_mx, ""), 4); /* no receiving MX reported */
	reportstore_summary_free(sum);

	/* the last day only */
	ck_assert_int_eq(reportstore_summary(s, domains, 2, 1, NOW - 1, &sum, err, sizeof(err)), 0);
	ck_assert_uint_eq(sum->n_days, 2);
	ck_assert_str_eq(sum->days[0].day, "2026-12-02");
	reportstore_summary_free(sum);
	tlsrpt_free(g);
	tlsrpt_free(m);
	reportstore_close(s);
}
END_TEST

static void same_counts(const struct reportstore_count *a, size_t na,
                        const struct reportstore_count *b, size_t nb)
{
	ck_assert_uint_eq(na, nb);
	for (size_t i = 0; i < na; i++)
		ck_assert_uint_eq(count_of(b, nb, a[i].name), a[i].n);
}

/* Many domains are read in one pass per query: the same summary as domain by domain, in
 * the order asked, without the domains not asked for. */
START_TEST(test_summary_many)
{
	struct reportstore *s = open_store();
	const char *many[40];
	char names[40][32];
	const char *two[] = {"example.net", "example.com"};
	struct reportstore_summary *one = NULL, *all = NULL;
	char err[REPORTSTORE_ERR_MAX];

	for (size_t i = 0; i < N_FIXTURES; i++)
		ck_assert_int_eq(store_text(s, json[i], 0), REPORTSTORE_STORED);
	for (size_t i = 0; i < 40; i++) {
		snprintf(names[i], sizeof(names[i]), "filler%zu.example", i);
		many[i] = names[i];
	}
	many[3] = "example.net"; /* the order asked: example.net first */
	many[30] = "example.com";
	ck_assert_int_eq(reportstore_summary(s, two, 2, 30, NOW, &one, err, sizeof(err)), 0);
	ck_assert_msg(reportstore_summary(s, many, 40, 30, NOW, &all, err, sizeof(err)) == 0, "%s",
	              err);
	ck_assert_uint_eq(one->n_days, 4);
	ck_assert_uint_eq(all->n_days, one->n_days);
	for (size_t i = 0; i < one->n_days; i++) {
		const struct reportstore_day *a = &one->days[i], *b = &all->days[i];

		ck_assert_str_eq(b->domain, a->domain);
		ck_assert_str_eq(b->day, a->day);
		ck_assert_uint_eq(b->reports, a->reports);
		ck_assert_uint_eq(b->successful, a->successful);
		ck_assert_uint_eq(b->failed, a->failed);
		same_counts(a->results, a->n_results, b->results, b->n_results);
		same_counts(a->mx, a->n_mx, b->mx, b->n_mx);
		same_counts(a->organizations, a->n_organizations, b->organizations,
		            b->n_organizations);
		same_counts(a->policies, a->n_policies, b->policies, b->n_policies);
	}
	ck_assert_str_eq(all->days[0].domain, "example.net");
	reportstore_summary_free(one);
	reportstore_summary_free(all);
	/* a domain not asked for is left out */
	many[3] = "other.example";
	ck_assert_int_eq(reportstore_summary(s, many, 40, 30, NOW, &all, err, sizeof(err)), 0);
	ck_assert_uint_eq(all->n_days, 2);
	ck_assert_str_eq(all->days[0].domain, "example.com");
	reportstore_summary_free(all);
	reportstore_close(s);
}
END_TEST

/* Every domain at a glance, as /status shows it: the fixtures' sums over both days. */
START_TEST(test_recent)
{
	struct reportstore *s = open_store();
	struct reportstore_recent *v = NULL;
	size_t n = 99;
	char err[REPORTSTORE_ERR_MAX];

	ck_assert_int_eq(reportstore_recent(s, 30, NOW, &v, &n, err, sizeof(err)), 0);
	ck_assert_uint_eq(n, 0);
	reportstore_recent_free(v, n);
	for (size_t i = 0; i < N_FIXTURES; i++)
		ck_assert_int_eq(store_text(s, json[i], 0), REPORTSTORE_STORED);
	ck_assert_msg(reportstore_recent(s, 30, NOW, &v, &n, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(v[0].domain, "example.com");
	ck_assert_uint_eq(v[0].reports, 3);
	ck_assert_uint_eq(v[0].successful, 1284 + 840 + 200);
	ck_assert_uint_eq(v[0].failed, 17 + 3 + 9);
	ck_assert_uint_eq(v[0].sts_reports, 3);
	ck_assert_uint_eq(v[0].organizations, 3);
	ck_assert_uint_eq(v[0].days, 2);
	ck_assert_str_eq(v[0].top_result, "certificate-expired");
	ck_assert_uint_eq(v[0].top_result_failed, 12);
	ck_assert_str_eq(v[0].top_mx, "mx2.example.com");
	ck_assert_uint_eq(v[0].top_mx_failed, 12 + 3 + 2);
	ck_assert_uint_eq(v[0].n_per_day, 2);
	ck_assert_str_eq(v[0].per_day[0].day, "2026-12-01");
	ck_assert_uint_eq(v[0].per_day[0].successful, 1284 + 840);
	ck_assert_uint_eq(v[0].per_day[0].failed, 17 + 3);
	ck_assert_str_eq(v[0].per_day[1].day, "2026-12-02");
	ck_assert_uint_eq(v[0].per_day[1].successful, 200);
	ck_assert_uint_eq(v[0].per_day[1].failed, 9);
	ck_assert_str_eq(v[1].domain, "example.net");
	ck_assert_uint_eq(v[1].reports, 3);
	ck_assert_uint_eq(v[1].successful, 311 + 52 + 77);
	ck_assert_uint_eq(v[1].failed, 1);
	ck_assert_uint_eq(v[1].sts_reports, 0); /* no-policy-found and tlsa only */
	ck_assert_str_eq(v[1].top_result, "tlsa-invalid");
	ck_assert_str_eq(v[1].top_mx, "mx.example.net");
	reportstore_recent_free(v, n);

	/* the last day only: the third report's */
	ck_assert_int_eq(reportstore_recent(s, 1, NOW - 1, &v, &n, err, sizeof(err)), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(v[0].reports, 1);
	ck_assert_uint_eq(v[0].failed, 9);
	ck_assert_str_eq(v[0].top_result, "sts-policy-fetch-error");
	ck_assert_str_eq(v[0].top_mx, ""); /* 4 failures with no receiving MX */
	ck_assert_uint_eq(v[0].days, 1);
	reportstore_recent_free(v, n);
	reportstore_close(s);
}
END_TEST

START_TEST(test_quota)
{
	struct reportstore *s = open_store();
	const bool two[] = {true, true, false};

	ck_assert_int_eq(store_text(s, json[0], 2), REPORTSTORE_STORED);
	ck_assert_int_eq(store_text(s, json[1], 2), REPORTSTORE_STORED);
	/* example.com has 2 reports */
	ck_assert_int_eq(store_text(s, json[2], 2), REPORTSTORE_REFUSED);
	ck_assert_int_eq(store_text(s, json[0], 2), REPORTSTORE_DUPLICATE);
	check_totals(s, two);
	ck_assert_int_eq(store_text(s, json[2], 3), REPORTSTORE_STORED);
	reportstore_close(s);
}
END_TEST

START_TEST(test_prune)
{
	struct reportstore *s = open_store();
	const bool last[] = {false, false, true};
	char err[REPORTSTORE_ERR_MAX];
	uint64_t deleted = 7;

	for (size_t i = 0; i < N_FIXTURES; i++)
		ck_assert_int_eq(store_text(s, json[i], 0), REPORTSTORE_STORED);
	/* cutoff 2026-12-02T12:00Z: the reports of 2026-12-01 go, the one ending on
	 * 2026-12-03T00:59:59Z stays */
	ck_assert_msg(reportstore_prune(s, 1, NOW + DAY / 2, &deleted, err, sizeof(err)) == 0, "%s",
	              err);
	ck_assert_uint_eq(deleted, 2);
	check_totals(s, last);
	/* gone: storable again */
	ck_assert_int_eq(store_text(s, json[0], 0), REPORTSTORE_STORED);
	ck_assert_int_eq(reportstore_prune(s, 30, NOW, &deleted, err, sizeof(err)), 0);
	ck_assert_uint_eq(deleted, 0);
	reportstore_close(s);
}
END_TEST

/* Two processes write at once, with overlapping report ids: one consistent summary. */
START_TEST(test_two_writers)
{
	enum { N = 20 };
	struct reportstore *s;
	struct reportstore_summary *sum = NULL;
	char err[REPORTSTORE_ERR_MAX];
	pid_t pids[2];

	for (int w = 0; w < 2; w++) {
		ck_assert_int_ne(pids[w] = fork(), -1);
		if (pids[w] == 0) {
			struct reportstore *c = open_store();
			int bad = 0;

			/* writer 0 stores ids 0..N-1, writer 1 ids N/2..N/2+N-1 */
			for (int i = 0; i < N; i++) {
				char *text = strdup(json[1]),
				     *at = strstr(text, "134093952000000000");
				enum reportstore_result res;

				snprintf(at, 19, "%018d", w * N / 2 + i);
				at[18] = '+';
				res = store_text(c, text, 0);
				if (res != REPORTSTORE_STORED && res != REPORTSTORE_DUPLICATE) {
					fprintf(stderr, "writer %d: report %d: %d\n", w, i, res);
					bad++;
				}
				free(text);
			}
			reportstore_close(c);
			_exit(bad == 0 ? 0 : 1);
		}
	}
	for (int w = 0; w < 2; w++) {
		int status;

		ck_assert_int_eq(waitpid(pids[w], &status, 0), pids[w]);
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer %d", w);
	}
	s = open_store();
	ck_assert_int_eq(reportstore_summary(s, domains, 2, 30, NOW, &sum, err, sizeof(err)), 0);
	ck_assert_uint_eq(sum->n_days, 2);
	ck_assert_uint_eq(sum->days[0].reports, N + N / 2);
	ck_assert_uint_eq(sum->days[0].successful, 840 * (N + N / 2));
	ck_assert_uint_eq(sum->days[1].successful, 52 * (N + N / 2));
	reportstore_summary_free(sum);
	reportstore_close(s);
}
END_TEST

/* SQLite: state_dir read-only (a disk remounted read-only, permissions taken away): a
 * temporary failure, nothing stored; once writable again the store goes on. */
START_TEST(test_readonly)
{
	struct reportstore *s = open_store();
	const bool first[] = {true, false, false}, two[] = {true, true, false};
	char cmd[1200];

	ck_assert_int_eq(store_text(s, json[0], 0), REPORTSTORE_STORED);
	reportstore_close(s);
	snprintf(cmd, sizeof(cmd), "chmod 0444 %s/* && chmod 0555 %s", state_dir, state_dir);
	run(cmd);
	s = open_store();
	ck_assert_int_eq(store_text(s, json[1], 0), REPORTSTORE_TEMPFAIL);
	ck_assert_int_eq(store_text(s, json[1], 0), REPORTSTORE_TEMPFAIL);
	snprintf(cmd, sizeof(cmd), "chmod 0755 %s && chmod 0644 %s/*", state_dir, state_dir);
	run(cmd);
	check_totals(s, first);
	ck_assert_int_eq(store_text(s, json[1], 0), REPORTSTORE_STORED);
	check_totals(s, two);
	reportstore_close(s);
}
END_TEST

/* A report with n failure details of example.com on 2026-12-02, id "big". */
static char *big_report(int n)
{
	size_t cap = 1024 + (size_t)n * 200, len;
	char *text = malloc(cap);

	ck_assert_ptr_nonnull(text);
	len = (size_t)snprintf(
	    text, cap,
	    "{\"organization-name\":\"Big\",\"date-range\":{\"start-datetime\":"
	    "\"2026-12-02T00:00:00Z\",\"end-datetime\":\"2026-12-02T23:59:59Z\"},"
	    "\"contact-info\":\"c\",\"report-id\":\"big\",\"policies\":[{\"policy\":{"
	    "\"policy-type\":\"no-policy-found\",\"policy-domain\":\"example.com\"},"
	    "\"summary\":{\"total-successful-session-count\":0,"
	    "\"total-failure-session-count\":%d},\"failure-details\":[",
	    n);
	for (int i = 0; i < n; i++)
		len +=
		    (size_t)snprintf(text + len, cap - len,
		                     "%s{\"result-type\":\"validation-failure\",\"sending-mta-ip\":"
		                     "\"198.51.%d.%d\",\"receiving-mx-hostname\":\"mx%d.example."
		                     "com\",\"failed-session-count\":1}",
		                     i ? "," : "", i / 256, i % 256, i);
	ck_assert_uint_lt(len + 4, cap);
	memcpy(text + len, "]}]}", 5);
	return text;
}

/* SQLite: the disk full in the middle of a transaction (a file size limit, which root is
 * subject to too): a temporary failure and nothing of the report kept; with room again, it
 * is stored. In a child of its own: the limit is per process. */
START_TEST(test_disk_full)
{
	struct reportstore *s = open_store();
	const bool first[] = {true, false, false};
	char path[600], *big = big_report(3000);
	struct stat st;
	struct rlimit full;
	pid_t pid;
	int status;

	ck_assert_int_eq(store_text(s, json[0], 0), REPORTSTORE_STORED);
	ck_assert_int_ne(pid = fork(), -1);
	if (pid == 0) {
		bool ok;

		signal(SIGXFSZ, SIG_IGN); /* the write fails with EFBIG instead */
		snprintf(path, sizeof(path), "%s/tlsrpt.sqlite-wal", state_dir);
		full.rlim_cur = full.rlim_max = stat(path, &st) == 0 ? (rlim_t)st.st_size : 0;
		snprintf(path, sizeof(path), "%s/tlsrpt.sqlite", state_dir);
		if (stat(path, &st) == 0 && (rlim_t)st.st_size > full.rlim_cur)
			full.rlim_cur = full.rlim_max = (rlim_t)st.st_size;
		/* a connection of its own: SQLite connections do not cross fork() */
		struct reportstore *c = open_store();

		ok = setrlimit(RLIMIT_FSIZE, &full) == 0 &&
		     store_text(c, big, 0) == REPORTSTORE_TEMPFAIL;
		reportstore_close(c);
		free(big);
		_exit(ok ? 0 : 1);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	check_totals(s, first);
	ck_assert_int_eq(store_text(s, big, 0), REPORTSTORE_STORED);
	free(big);
	reportstore_close(s);
}
END_TEST

/* PostgreSQL: stopped, a temporary failure; started again, the same store reconnects. */
START_TEST(test_pg_down)
{
	struct reportstore *s = open_store();
	const bool two[] = {true, true, false};
	char err[REPORTSTORE_ERR_MAX];
	struct tlsrpt_report *r = parse(json[1]);

	ck_assert_int_eq(store_text(s, json[0], 0), REPORTSTORE_STORED);
	pg_ctl("stop -m fast");
	ck_assert_int_eq(reportstore_store(s, r, 0, NOW, err, sizeof(err)), REPORTSTORE_TEMPFAIL);
	ck_assert_msg(strstr(err, "postgresql: ") == err, "%s", err);
	ck_assert_int_eq(reportstore_store(s, r, 0, NOW, err, sizeof(err)), REPORTSTORE_TEMPFAIL);
	pg_ctl("start");
	ck_assert_int_eq(reportstore_store(s, r, 0, NOW, err, sizeof(err)), REPORTSTORE_STORED);
	check_totals(s, two);
	tlsrpt_free(r);
	reportstore_close(s);
}
END_TEST

START_TEST(test_open_errors)
{
	char err[REPORTSTORE_ERR_MAX];

	ck_assert_ptr_null(reportstore_open("mysql://x", "/tmp", err, sizeof(err)));
	ck_assert_str_eq(err,
	                 "unknown TLS report store (sqlite, or a postgresql:// URI): mysql://x");
	ck_assert_ptr_null(reportstore_open(NULL, NULL, err, sizeof(err)));
	ck_assert_str_eq(err, "the sqlite TLS report store needs state_dir");
	reportstore_close(NULL);
}
END_TEST

static char *load(const char *name)
{
	char path[512], *data;
	FILE *f;
	long len;

	snprintf(path, sizeof(path), "%s/tlsrpt/%s", TESTS_SRCDIR, name);
	if ((f = fopen(path, "rb")) == NULL || fseek(f, 0, SEEK_END) < 0 || (len = ftell(f)) < 0 ||
	    (data = malloc((size_t)len + 1)) == NULL) {
		perror(path);
		exit(1);
	}
	rewind(f);
	if (fread(data, 1, (size_t)len, f) != (size_t)len)
		exit(1);
	data[len] = '\0';
	fclose(f);
	return data;
}

/* As root: nobody from here on (fixtures are read before). */
static void drop_root(void)
{
	struct passwd *pw;

	if (geteuid() != 0)
		return;
	if ((pw = getpwnam("nobody")) == NULL || setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0) {
		perror("dropping root for nobody");
		exit(1);
	}
}

int main(int argc, char **argv)
{
	Suite *suite = suite_create("reportstore");
	TCase *tc = tcase_create(argc > 1 ? argv[1] : "sqlite");
	SRunner *sr;
	char cmd[1024];
	int failed;

	pg = argc > 1 && strcmp(argv[1], "postgresql") == 0;
	for (size_t i = 0; i < N_FIXTURES; i++)
		json[i] = load(fixtures[i]);
	drop_root();
	/* from here on in a directory of our own: nobody may not enter the build directory */
	if (mkdtemp(dir) == NULL || chdir(dir) < 0) {
		perror(dir);
		return 1;
	}
	if (pg) {
		snprintf(cmd, sizeof(cmd),
		         PG_BIN "/initdb -D %s/pg -A trust -U postgres >%s/initdb.log 2>&1", dir,
		         dir);
		if (system(cmd) != 0) {
			fprintf(stderr, "initdb failed, see %s/initdb.log\n", dir);
			return 1;
		}
		snprintf(cmd, sizeof(cmd),
		         PG_BIN
		         "/pg_ctl -D %s/pg -l %s/pg.log -w -o \"-k %s -c listen_addresses=''\" "
		         "start >/dev/null",
		         dir, dir, dir);
		if (system(cmd) != 0) {
			fprintf(stderr, "pg_ctl start failed, see %s/pg.log\n", dir);
			return 1;
		}
	}
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_open_errors);
	tcase_add_test(tc, test_store_summary);
	tcase_add_test(tc, test_recent);
	tcase_add_test(tc, test_summary_many);
	tcase_add_test(tc, test_quota);
	tcase_add_test(tc, test_prune);
	tcase_add_test(tc, test_two_writers);
	if (pg)
		tcase_add_test(tc, test_pg_down);
	else {
		tcase_add_test(tc, test_readonly);
		tcase_add_test(tc, test_disk_full);
	}
	suite_add_tcase(suite, tc);
	sr = srunner_create(suite);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	if (pg) {
		snprintf(cmd, sizeof(cmd), PG_BIN "/pg_ctl -D %s/pg -m immediate stop >/dev/null",
		         dir);
		if (system(cmd) != 0)
			failed++;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		failed++;
	for (size_t i = 0; i < N_FIXTURES; i++)
		free(json[i]);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
