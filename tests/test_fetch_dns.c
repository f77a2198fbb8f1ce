/* test_fetch_dns: the pure parts of the upstream fetcher: the provider's _mta-sts TXT id
 * (RFC 8461 §3.1, SPEC.md 1.1) and the Content-Type rule for policy bodies (SPEC.md 1.2) */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "fetch.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define ID32 "abcdefghijABCDEFGHIJ0123456789xy"
#define ID33 ID32 "z"

/* The TXT records at one name, in answer order; id is NULL when there must be no id, and
 * then why is the reason given. */
#define NO_RECORD "no v=STSv1 record"
#define TWO "more than one v=STSv1 record"
#define NO_ID "v=STSv1 record without a valid id"
static const struct {
	const char *what;
	const char *records[4];
	size_t n;
	const char *id;
	const char *why;
} sts_cases[] = {
    {"one record", {"v=STSv1; id=20160831085700Z;"}, 1, "20160831085700Z", NULL},
    {"no spaces, no final ';'", {"v=STSv1;id=abc"}, 1, "abc", NULL},
    {"id after an extension", {"v=STSv1; ext-1.x=val; id=a1"}, 1, "a1", NULL},
    {"trailing blanks", {"v=STSv1; id=abc  "}, 1, "abc", NULL},
    {"32 characters", {"v=STSv1; id=" ID32}, 1, ID32, NULL},
    {"one character", {"v=STSv1; id=7"}, 1, "7", NULL},
    {"duplicate id: the first wins", {"v=STSv1; id=first; id=second"}, 1, "first", NULL},
    {"other TXT records ignored",
     {"google-site-verification=xyz", "v=STSv1; id=mine", "v=spf1 -all"},
     3,
     "mine",
     NULL},
    {"no record at all", {NULL}, 0, NULL, NO_RECORD},
    {"only other records", {"v=spf1 -all", "hello world"}, 2, NULL, NO_RECORD},
    {"two v=STSv1 records", {"v=STSv1; id=one", "v=STSv1; id=two"}, 2, NULL, TWO},
    {"two v=STSv1 records, same id", {"v=STSv1; id=one", "v=STSv1; id=one"}, 2, NULL, TWO},
    {"two v=STSv1 among others", {"v=STSv1; id=one", "x=y", "v=STSv1; id=two"}, 3, NULL, TWO},
    {"missing id", {"v=STSv1;"}, 1, NULL, NO_ID},
    {"version alone", {"v=STSv1"}, 1, NULL, NO_RECORD},
    {"missing id, an extension only", {"v=STSv1; foo=bar"}, 1, NULL, NO_ID},
    {"empty id", {"v=STSv1; id="}, 1, NULL, NO_ID},
    {"id with '-'", {"v=STSv1; id=2024-06-01"}, 1, NULL, NO_ID},
    {"id with '.'", {"v=STSv1; id=1.2"}, 1, NULL, NO_ID},
    {"id with a space inside", {"v=STSv1; id=ab c"}, 1, NULL, NO_ID},
    {"id of 33 characters", {"v=STSv1; id=" ID33}, 1, NULL, NO_ID},
    {"id of 70 characters", {"v=STSv1; id=" ID32 ID32 "123456"}, 1, NULL, NO_ID},
    {"ID= is not id=", {"v=STSv1; ID=abc"}, 1, NULL, NO_ID},
    {"V=STSv1 is not v=STSv1", {"V=STSv1; id=abc"}, 1, NULL, NO_RECORD},
    {"v=stsv1 is not v=STSv1", {"v=stsv1; id=abc"}, 1, NULL, NO_RECORD},
    {"v=STSv10 is another version", {"v=STSv10; id=abc"}, 1, NULL, NO_RECORD},
    {"leading space: not a v=STSv1 record", {" v=STSv1; id=abc"}, 1, NULL, NO_RECORD},
    {"one valid among a broken v=STSv1", {"v=STSv1; id=ok", "v=STSv1;"}, 2, NULL, TWO},
};

START_TEST(sts_id_table)
{
	char id[POLICY_ID_MAX + 1], err[160];
	int r;

	memcpy(id, "untouched", sizeof("untouched"));
	err[0] = 0;
	r = dns_sts_id(sts_cases[_i].records, sts_cases[_i].n, id, err, sizeof(err));
	if (sts_cases[_i].id != NULL) {
		ck_assert_msg(r == 0, "%s: rejected: %s", sts_cases[_i].what, err);
		ck_assert_str_eq(id, sts_cases[_i].id);
	} else {
		ck_assert_msg(r == -1, "%s: accepted with id %s", sts_cases[_i].what, id);
		/* ret_id is untouched on failure, and the reason is the one expected. */
		ck_assert_str_eq(id, "untouched");
		ck_assert_msg(strcmp(err, sts_cases[_i].why) == 0, "%s: reason '%s', want '%s'",
		              sts_cases[_i].what, err, sts_cases[_i].why);
	}
}
END_TEST

START_TEST(sts_id_reasons)
{
	const char *two[] = {"v=STSv1; id=a", "v=STSv1; id=b"};
	const char *none[] = {"v=spf1 -all"};
	const char *bad[] = {"v=STSv1; id=a-b"};
	char id[POLICY_ID_MAX + 1], err[160];

	ck_assert_int_eq(dns_sts_id(two, 2, id, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "more than one"));
	ck_assert_int_eq(dns_sts_id(none, 1, id, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "no v=STSv1"));
	ck_assert_int_eq(dns_sts_id(bad, 1, id, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "valid id"));
}
END_TEST

static const struct {
	const char *ct; /* NULL: no Content-Type header */
	bool ok;
} ct_cases[] = {
    {"text/plain", true},
    {"TEXT/PLAIN; charset=UTF-8", true},
    {"text/plain; charset=utf-8", true},
    {"text/plain;charset=utf-8", true},
    {"text/plain; charset=\"us-ascii\"", true},
    {"Text/Plain; Charset=US-ASCII", true},
    {"text/plain ; charset=utf-8", true},
    {" text/plain", true},
    {"text/plain; format=flowed", true},
    {"text/plain; format=flowed; charset=utf-8", true},
    {"text/html", false},
    {"text/html; charset=utf-8", false},
    {"text/plain; charset=latin1", false},
    {"text/plain; charset=iso-8859-1", false},
    {"text/plain; charset=utf-16", false},
    {"text/plain; charset=", false},
    {"text/plain; charset=\"utf-8", false},
    {"text/plain; charset=utf-8; charset=latin1", false},
    {NULL, false},
    {"", false},
    {"text/plainx", false},
    {"text/plai", false},
    {"text/plain-x; charset=utf-8", false},
    {"application/octet-stream", false},
    {"xtext/plain", false},
};

START_TEST(content_type_table)
{
	ck_assert_msg(fetch_content_type_ok(ct_cases[_i].ct) == ct_cases[_i].ok, "\"%s\": %s",
	              ct_cases[_i].ct ? ct_cases[_i].ct : "(none)",
	              ct_cases[_i].ok ? "rejected" : "accepted");
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("fetch_dns");
	TCase *t = tcase_create("sts_id");

	tcase_add_loop_test(t, sts_id_table, 0, N(sts_cases));
	tcase_add_test(t, sts_id_reasons);
	suite_add_tcase(s, t);
	t = tcase_create("content_type");
	tcase_add_loop_test(t, content_type_table, 0, N(ct_cases));
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *r = srunner_create(suite());
	int failed;

	srunner_run_all(r, CK_NORMAL);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
