/* test_reports: the service behind POST /tlsrpt without HTTP: jobs read, checked and stored
 * by the workers (stored, duplicate, another tenant's domain, invalid), the queue closed by
 * shutdown, the rate limit per address, the body budget, and the /status wording of the
 * glance and of the testing verdict. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "diag.h"
#include "reports.h"
#include "scratch.h"

static const char report_com[] =
    "{\"organization-name\":\"Org\",\"date-range\":{\"start-datetime\":"
    "\"2026-12-02T00:00:00Z\",\"end-datetime\":\"2026-12-02T23:59:59Z\"},\"contact-info\":"
    "\"c\",\"report-id\":\"r1\",\"policies\":[{\"policy\":{\"policy-type\":\"no-policy-found\","
    "\"policy-domain\":\"Example.COM.\"},\"summary\":{\"total-successful-session-count\":7,"
    "\"total-failure-session-count\":0}}]}";

static struct config *load_config(int rate)
{
	char path[600];
	FILE *f;
	struct diag d;
	struct config *c;

	snprintf(path, sizeof(path), "%s/m.ini", scratch_dir);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fprintf(f,
	        "[server]\nstate_dir = %s\ncerts = %s\ntlsrpt_rate_limit = %d\n\n"
	        "[domain example.com]\nmode = testing\nmx = mx.example.com\nmax_age = 86400\n"
	        "tlsrpt = self\n",
	        scratch_dir, scratch_dir, rate);
	fclose(f);
	diag_init(&d);
	c = config_load(path, &d);
	if (c == NULL)
		diag_print(&d, stderr);
	diag_finish(&d);
	ck_assert_ptr_nonnull(c);
	ck_assert(c->domains[0].tlsrpt_self);
	ck_assert_str_eq(c->domains[0].tlsrpt[0], "https://mta-sts.example.com/tlsrpt");
	return c;
}

struct waiter {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int done;
};

static struct waiter waiter = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};

static void job_done(struct reports_job *job)
{
	pthread_mutex_lock(&waiter.lock);
	waiter.done++;
	pthread_cond_signal(&waiter.cond);
	pthread_mutex_unlock(&waiter.lock);
}

static enum reports_outcome run_job(struct reports *r, const char *body, const char *domain)
{
	struct reports_job job;
	int want;

	memset(&job, 0, sizeof(job));
	job.body = body;
	job.len = strlen(body);
	job.encoding = TLSRPT_ENCODING_JSON;
	snprintf(job.domain, sizeof(job.domain), "%s", domain);
	job.done = job_done;
	pthread_mutex_lock(&waiter.lock);
	want = waiter.done + 1;
	pthread_mutex_unlock(&waiter.lock);
	ck_assert_int_eq(reports_submit(r, &job), 0);
	pthread_mutex_lock(&waiter.lock);
	while (waiter.done < want)
		pthread_cond_wait(&waiter.cond, &waiter.lock);
	pthread_mutex_unlock(&waiter.lock);
	return job.outcome;
}

START_TEST(test_jobs)
{
	struct config *c = load_config(0);
	struct reports *r = reports_start(c);
	struct reports_job late;
	struct buf m;

	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(run_job(r, report_com, "example.com"), REPORTS_STORED);
	ck_assert_int_eq(run_job(r, report_com, "example.com"), REPORTS_DUPLICATE);
	ck_assert_int_eq(run_job(r, report_com, "example.net"), REPORTS_FOREIGN);
	ck_assert_int_eq(run_job(r, "{\"x\": 1}", "example.com"), REPORTS_INVALID);
	buf_init(&m);
	reports_metrics(r, &m);
	ck_assert_ptr_nonnull(strstr(m.data, "mtastsd_tlsrpt_posts_total{outcome=\"stored\"} 1\n"));
	ck_assert_ptr_nonnull(
	    strstr(m.data, "mtastsd_tlsrpt_posts_total{outcome=\"foreign\"} 1\n"));
	ck_assert_ptr_nonnull(
	    strstr(m.data, "mtastsd_tlsrpt_sessions_total{result=\"success\"} 7\n"));
	buf_finish(&m);
	reports_shutdown(r);
	memset(&late, 0, sizeof(late));
	ck_assert_int_eq(reports_submit(r, &late), -1); /* answered busy by the caller */
	reports_free(r);
	config_destroy(c);
}
END_TEST

static struct sockaddr_in v4(const char *a)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};

	ck_assert_int_eq(inet_pton(AF_INET, a, &sa.sin_addr), 1);
	return sa;
}

static struct sockaddr_in6 v6(const char *a)
{
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6};

	ck_assert_int_eq(inet_pton(AF_INET6, a, &sa.sin6_addr), 1);
	return sa;
}

START_TEST(test_rate_budget)
{
	struct config *c = load_config(3);
	struct reports *r = reports_start(c);
	struct sockaddr_in a = v4("192.0.2.1"), b = v4("192.0.2.2");
	struct sockaddr_in6 x = v6("2001:db8:1:2::1"), y = v6("2001:db8:1:2::99");
	unsigned retry = 0;

	ck_assert_ptr_nonnull(r);
	for (int i = 0; i < 3; i++)
		ck_assert(reports_admit(r, (struct sockaddr *)&a, &retry));
	ck_assert(!reports_admit(r, (struct sockaddr *)&a, &retry));
	ck_assert_uint_ge(retry, 1);
	ck_assert_uint_le(retry, 21); /* 3 a minute: one token every 20 s */
	ck_assert(reports_admit(r, (struct sockaddr *)&b, &retry)); /* another address */
	/* one IPv6 /64 is one client */
	for (int i = 0; i < 3; i++)
		ck_assert(reports_admit(r, (struct sockaddr *)(i % 2 ? &x : &y), &retry));
	ck_assert(!reports_admit(r, (struct sockaddr *)&y, &retry));

	/* the body budget */
	ck_assert(reports_reserve(r, REPORTS_INFLIGHT_MAX - 10));
	ck_assert(!reports_reserve(r, 11));
	ck_assert(reports_reserve(r, 10));
	reports_release(r, REPORTS_INFLIGHT_MAX);
	ck_assert(reports_reserve(r, 1000));
	reports_release(r, 1000);

	/* a reload with no limit */
	config_destroy(c);
	c = load_config(0);
	reports_configure(r, c);
	for (int i = 0; i < 100; i++)
		ck_assert(reports_admit(r, (struct sockaddr *)&a, &retry));
	reports_shutdown(r);
	reports_free(r);
	config_destroy(c);
}
END_TEST

START_TEST(test_wording)
{
	struct reports_glance g;
	char text[512];

	memset(&g, 0, sizeof(g));
	ck_assert(!reports_verdict(&g, text, sizeof(text)));
	ck_assert_str_eq(text, "unknown: the report store was not read yet");
	g.known = true;
	ck_assert(!reports_verdict(&g, text, sizeof(text)));
	ck_assert_ptr_nonnull(strstr(text, "not yet: no TLS reports in the last 7 days"));
	reports_glance_text(&g, text, sizeof(text));
	ck_assert_str_eq(text, "no reports in the last 7 days");

	g.reports = 4;
	g.organizations = 2;
	g.days = 3;
	g.successful = 900;
	g.sts_reports = 0;
	ck_assert(!reports_verdict(&g, text, sizeof(text)));
	ck_assert_ptr_nonnull(strstr(text, "no sender applying the STS policy"));
	g.sts_reports = 4;
	ck_assert(reports_verdict(&g, text, sizeof(text)));
	ck_assert_str_eq(text,
	                 "ready for enforce: no failures reported by 2 organisations over 3 days");
	reports_glance_text(&g, text, sizeof(text));
	ck_assert_str_eq(
	    text, "4 reports from 2 organisations over 3 days: 900 successful, 0 failed sessions");

	g.failed = 5;
	snprintf(g.top_result, sizeof(g.top_result), "certificate-expired");
	g.top_result_failed = 4;
	snprintf(g.top_mx, sizeof(g.top_mx), "mx2.example.com");
	ck_assert(!reports_verdict(&g, text, sizeof(text)));
	ck_assert_str_eq(text, "not ready for enforce: 5 failed sessions reported, mostly "
	                       "certificate-expired at mx2.example.com");
	reports_glance_text(&g, text, sizeof(text));
	ck_assert_str_eq(text, "4 reports from 2 organisations over 3 days: 900 successful, 5 "
	                       "failed sessions; top failure certificate-expired (4) at "
	                       "mx2.example.com");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("reports");
	TCase *tc = tcase_create("reports");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, scratch_setup, scratch_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_jobs);
	tcase_add_test(tc, test_rate_budget);
	tcase_add_test(tc, test_wording);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
