/* test_host: the Host header against the tenant's name */
#include <check.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"

#define EXPECTED "mta-sts.a.test"

static const struct {
	const char *host;
	bool match;
} cases[] = {
    {"mta-sts.a.test", true},
    {"MTA-STS.A.Test", true},
    /* a port of digits, possibly empty (RFC 9110: port = *DIGIT), never range-checked */
    {"mta-sts.a.test:443", true},
    {"mta-sts.a.test:8443", true},
    {"mta-sts.a.test:", true},
    {"mta-sts.a.test:0", true},
    {"mta-sts.a.test:99999999999", true},
    {"mta-sts.a.test:44a", false},
    {"mta-sts.a.test:+443", false},
    {"mta-sts.a.test: 443", false},
    {"mta-sts.a.test:443:443", false},
    {"mta-sts.a.test:https", false},
    /* one trailing dot, not two */
    {"mta-sts.a.test.", true},
    {"MTA-STS.A.TEST.:443", true},
    {"mta-sts.a.test..", false},
    {"mta-sts.a.test..:443", false},
    {"mta-sts.a.test:443.", false},
    /* another name that starts or ends like it */
    {"mta-sts.a.test.evil", false},
    {"mta-sts.a.test.evil:443", false},
    {"xmta-sts.a.test", false},
    {"mta-sts.xa.test", false},
    {"mta-sts.a.tes", false},
    {"mta-sts.a.test2", false},
    {"mta-sts.a", false},
    {"a.test", false},
    {"mta-sts-a.test", false},
    {" mta-sts.a.test", false},
    {"mta-sts.a.test ", false},
    /* addresses */
    {"[::1]", false},
    {"[::1]:443", false},
    {"::1", false},
    {"127.0.0.1:443", false},
    /* nothing */
    {"", false},
    {".", false},
    {":", false},
    {":443", false},
};

START_TEST(test_host_matches)
{
	bool got = host_matches(cases[_i].host, EXPECTED);

	ck_assert_msg(got == cases[_i].match, "host_matches(\"%s\", \"%s\") is %s", cases[_i].host,
	              EXPECTED, got ? "true" : "false");
}
END_TEST

/* The expected name is compared whole too: a host that is a prefix of it is not it. */
START_TEST(test_expected_whole)
{
	ck_assert(host_matches("mta-sts.example.com", "mta-sts.example.com"));
	ck_assert(!host_matches("mta-sts.example", "mta-sts.example.com"));
	ck_assert(!host_matches("mta-sts.example.com", "mta-sts.example"));
	ck_assert(!host_matches("", "mta-sts.example.com"));
}
END_TEST

static const struct {
	const char *host;
	size_t len; /* 0: strlen */
	bool ok;
} formed[] = {
    {"mta-sts.a.test", 0, true},
    {"mta-sts.a.test:443", 0, true},
    {"mta-sts.a.test:", 0, true},
    {"mta-sts.a.test:65535", 0, true},
    {"mta-sts.a.test:1", 0, true},
    {"mta-sts.a.test:0", 0, false},
    {"mta-sts.a.test:65536", 0, false},
    {"mta-sts.a.test:99999999999", 0, false},
    {"mta-sts.a.test:000443", 0, false},
    {"mta-sts.a.test:44a", 0, false},
    {"mta-sts.a.test\0evil", 19, false},
    {"mta-sts.a.test evil", 0, false},
    {"x@mta-sts.a.test", 0, false},
    {"mta-sts.a.test\t", 0, false},
    {"", 0, false},
    {":443", 0, false},
};

START_TEST(test_host_well_formed)
{
	size_t len = formed[_i].len ? formed[_i].len : strlen(formed[_i].host);

	ck_assert_msg(host_well_formed(formed[_i].host, len) == formed[_i].ok,
	              "host_well_formed(\"%s\")", formed[_i].host);
}
END_TEST

static Suite *host_suite(void)
{
	Suite *s = suite_create("host");
	TCase *tc = tcase_create("host_matches");

	tcase_add_loop_test(tc, test_host_matches, 0, sizeof(cases) / sizeof(cases[0]));
	tcase_add_test(tc, test_expected_whole);
	tcase_add_loop_test(tc, test_host_well_formed, 0, sizeof(formed) / sizeof(formed[0]));
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(host_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
