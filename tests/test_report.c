/* test_report: verify's verdicts by mode and its text and JSON output */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "report.h"

#define CHECKS_MAX 6

static const struct {
	const char *mode;
	const char *checks; /* one letter per check: o ok, w warn, f fail; the 4th is mx-tls */
	bool ok;
	const char *verdict;    /* prefix */
	const char *tls_status; /* of the mx-tls check after judging */
} cases[] = {
    {"testing", "oooow", true, "ready for enforce", "ok"},
    {"testing", "ooowo", true, "ready for enforce", "warn"},
    {"testing", "oofoo", false, "not ready for enforce: mx-coverage", "ok"},
    {"testing", "ooofo", false, "not ready for enforce: mx-tls mx.example.net", "fail"},
    {"testing", "ooo", true, "not ready for enforce: no MX host passed mx-tls", NULL},
    {"enforce", "oooow", true, "ok", "ok"},
    {"enforce", "foofo", false, "problems: sts-txt, mx-tls mx.example.net", "fail"},
    {"none", "ooffo", true, "policy served as none", "warn"},
    {"none", "ofoo", false, "policy not served as none correctly: policy-fetch", "ok"},
    {NULL, "ffoo", false, "problems: sts-txt, policy-fetch", "ok"},
};

static const char *const names[] = {"sts-txt", "policy-fetch", "mx-coverage", "mx-tls",
                                    "tlsrpt-txt"};

static void build(struct report_domain *d, struct report_check *c, size_t i)
{
	memset(d, 0, sizeof(*d));
	d->domain = "example.com";
	d->mode = cases[i].mode;
	d->checks = c;
	for (const char *p = cases[i].checks; *p; p++, d->n_checks++) {
		struct report_check *k = &c[d->n_checks];

		k->name = names[d->n_checks];
		k->host = d->n_checks == 3 ? "mx.example.net" : NULL;
		k->status = *p == 'o' ? REPORT_OK : *p == 'w' ? REPORT_WARN : REPORT_FAIL;
		snprintf(k->detail, sizeof(k->detail), "why");
	}
}

START_TEST(test_judge)
{
	struct report_check c[CHECKS_MAX];
	struct report_domain d;

	build(&d, c, (size_t)_i);
	report_judge(&d);
	ck_assert_msg(d.ok == cases[_i].ok, "%s %s: ok %d", cases[_i].mode, cases[_i].checks, d.ok);
	ck_assert_msg(strncmp(d.verdict, cases[_i].verdict, strlen(cases[_i].verdict)) == 0,
	              "%s %s: %s", cases[_i].mode, cases[_i].checks, d.verdict);
	if (cases[_i].tls_status != NULL) {
		struct buf out;
		json_t *root, *check;
		json_error_t e;

		buf_init(&out);
		ck_assert_int_eq(report_json(&d, 1, &out), 0);
		root = json_loads(out.data, 0, &e);
		ck_assert_ptr_nonnull(root);
		check = json_array_get(
		    json_object_get(json_array_get(json_object_get(root, "domains"), 0), "checks"),
		    3);
		ck_assert_str_eq(json_string_value(json_object_get(check, "check")), "mx-tls");
		ck_assert_str_eq(json_string_value(json_object_get(check, "host")),
		                 "mx.example.net");
		ck_assert_str_eq(json_string_value(json_object_get(check, "status")),
		                 cases[_i].tls_status);
		json_decref(root);
		buf_finish(&out);
	}
}
END_TEST

START_TEST(test_json_shape)
{
	struct report_check c[CHECKS_MAX];
	struct report_domain d[2];
	struct buf out;
	json_t *root, *doms, *first;
	json_error_t e;

	build(&d[0], c, 0);
	report_judge(&d[0]);
	d[1] = d[0];
	d[1].domain = "customer.example";
	d[1].proxy = "provider.example";
	buf_init(&out);
	ck_assert_int_eq(report_json(d, 2, &out), 0);
	root = json_loads(out.data, 0, &e);
	ck_assert_msg(root != NULL, "%s", e.text);
	doms = json_object_get(root, "domains");
	ck_assert_uint_eq(json_array_size(doms), 2);
	first = json_array_get(doms, 0);
	ck_assert_str_eq(json_string_value(json_object_get(first, "domain")), "example.com");
	ck_assert_str_eq(json_string_value(json_object_get(first, "mode")), "testing");
	ck_assert(json_is_true(json_object_get(first, "ok")));
	ck_assert_str_eq(json_string_value(json_object_get(first, "verdict")), "ready for enforce");
	ck_assert_ptr_null(json_object_get(first, "proxy"));
	ck_assert(json_is_null(
	    json_object_get(json_array_get(json_object_get(first, "checks"), 0), "host")));
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(doms, 1), "proxy")),
	                 "provider.example");
	json_decref(root);
	buf_finish(&out);
}
END_TEST

START_TEST(test_text)
{
	struct report_check c[CHECKS_MAX];
	struct report_domain d;
	struct buf out;

	build(&d, c, 3);
	report_judge(&d);
	buf_init(&out);
	ck_assert_int_eq(report_text(&d, 1, &out), 0);
	ck_assert_str_eq(out.data, "example.com (testing):\n"
	                           "  ok   sts-txt: why\n"
	                           "  ok   policy-fetch: why\n"
	                           "  ok   mx-coverage: why\n"
	                           "  fail mx-tls mx.example.net: why\n"
	                           "  ok   tlsrpt-txt: why\n"
	                           "  verdict: not ready for enforce: mx-tls mx.example.net\n");
	buf_finish(&out);
}
END_TEST

START_TEST(test_none_note)
{
	struct report_check c[CHECKS_MAX];
	struct report_domain d;

	build(&d, c, 7);
	d.none_note = "records can be removed from 2026-12-12 10:00 UTC";
	report_judge(&d);
	ck_assert(d.ok);
	ck_assert_str_eq(d.verdict, "policy served as none: senders that refetch drop their "
	                            "cached policy; records can be removed from 2026-12-12 "
	                            "10:00 UTC");
	/* Not served as none correctly: the note is no promise then. */
	build(&d, c, 8);
	d.none_note = "records can be removed from 2026-12-12 10:00 UTC";
	report_judge(&d);
	ck_assert(!d.ok);
	ck_assert_ptr_null(strstr(d.verdict, "removed"));
}
END_TEST

static Suite *report_suite(void)
{
	Suite *s = suite_create("report");
	TCase *tc = tcase_create("report");

	tcase_add_loop_test(tc, test_judge, 0, sizeof(cases) / sizeof(cases[0]));
	tcase_add_test(tc, test_json_shape);
	tcase_add_test(tc, test_text);
	tcase_add_test(tc, test_none_note);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(report_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
