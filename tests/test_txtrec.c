/* test_txtrec: the strict syntax of _mta-sts and _smtp._tls records */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "txtrec.h"

static const struct {
	const char *rec;
	const char *id;  /* NULL: rejected */
	const char *err; /* part of the reason when rejected */
} sts_cases[] = {
    {"v=STSv1; id=20160831085700Z", "20160831085700Z", NULL},
    {"v=STSv1;id=abc", "abc", NULL},
    {"v=STSv1; id=abc;", "abc", NULL},
    {"v=STSv1 ;\tid=abc ; ", "abc", NULL},
    {"v=STSv1; ext_1.x=va:lue; id=abc", "abc", NULL},
    {"v=STSv1; id=0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef", NULL},
    {"v=STSv1; id=0123456789abcdef0123456789abcdef0", NULL, "longer than 32"},
    {"v=STSv1; id=", NULL, "empty value"},
    {"v=STSv1; id=ab-c", NULL, "other characters"},
    {"v=STSv1; id=a; id=b", NULL, "more than one id"},
    {"v=STSv1", NULL, "no field"},
    {"v=STSv1;", NULL, "no field"},
    {"v=STSv1; x=1", NULL, "no id"},
    {"v=STSv1 id=abc", NULL, "expected ';'"},
    {"v=STSv1; id=abc;; x=1", NULL, "bad field name"},
    {"v=STSv1; id=a=b", NULL, "bad character 0x3d"},
    {"v=STSv1; x=a b; id=abc", NULL, "whitespace"},
    {"v=STSv10; id=abc", NULL, "does not start"},
    {"V=STSv1; id=abc", NULL, "does not start"},
    {"id=abc; v=STSv1", NULL, "does not start"},
};

START_TEST(test_sts)
{
	char id[POLICY_ID_MAX + 1] = "untouched", err[200] = "";
	int r = txtrec_sts(sts_cases[_i].rec, id, err, sizeof(err));

	if (sts_cases[_i].id != NULL) {
		ck_assert_msg(r == 0, "%s: %s", sts_cases[_i].rec, err);
		ck_assert_str_eq(id, sts_cases[_i].id);
	} else {
		ck_assert_msg(r < 0, "%s accepted", sts_cases[_i].rec);
		ck_assert_str_eq(id, "untouched");
		ck_assert_msg(strstr(err, sts_cases[_i].err) != NULL, "%s: %s", sts_cases[_i].rec,
		              err);
	}
}
END_TEST

static const struct {
	const char *rec;
	const char *err; /* NULL: accepted */
} tlsrpt_cases[] = {
    {"v=TLSRPTv1; rua=mailto:reports@example.com", NULL},
    {"v=TLSRPTv1;rua=https://reporting.example.com/v1/tlsrpt", NULL},
    {"v=TLSRPTv1; rua=mailto:a@example.com, https://r.example.com/x;", NULL},
    {"v=TLSRPTv1; rua=mailto:a@example.com,mailto:b%2Cc@example.com; ext=1", NULL},
    {"v=TLSRPTv1; rua=MAILTO:a@example.com", NULL},
    {"v=TLSRPTv1", "no field"},
    {"v=TLSRPTv1; ext=1", "no rua"},
    {"v=TLSRPTv1; rua=ftp://example.com", "neither mailto: nor https:"},
    {"v=TLSRPTv1; rua=http://example.com/r", "neither mailto: nor https:"},
    {"v=TLSRPTv1; rua=mailto:", "neither mailto: nor https:"},
    {"v=TLSRPTv1; rua=mailto:a@example.com,", "ends with ','"},
    {"v=TLSRPTv1; rua=mailto:a@example.com mailto:b@example.com", "whitespace inside"},
    {"v=TLSRPTv1; rua=mailto:a@x; rua=mailto:b@x", "more than one rua"},
    {"v=TLSRPTv1 rua=mailto:a@example.com", "expected ';'"},
    {"v=TLSRPTv2; rua=mailto:a@example.com", "does not start"},
};

START_TEST(test_tlsrpt)
{
	char err[200] = "";
	int r = txtrec_tlsrpt(tlsrpt_cases[_i].rec, err, sizeof(err));

	if (tlsrpt_cases[_i].err == NULL) {
		ck_assert_msg(r == 0, "%s: %s", tlsrpt_cases[_i].rec, err);
	} else {
		ck_assert_msg(r < 0, "%s accepted", tlsrpt_cases[_i].rec);
		ck_assert_msg(strstr(err, tlsrpt_cases[_i].err) != NULL, "%s: %s",
		              tlsrpt_cases[_i].rec, err);
	}
}
END_TEST

START_TEST(test_is)
{
	ck_assert(txtrec_is_sts("v=STSv1; id=a"));
	ck_assert(txtrec_is_sts("v=STSv1"));
	ck_assert(txtrec_is_sts("v=STSv1 id=a"));
	ck_assert(!txtrec_is_sts("v=STSv12; id=a"));
	ck_assert(!txtrec_is_sts("v=spf1 -all"));
	ck_assert(txtrec_is_tlsrpt("v=TLSRPTv1; rua=mailto:a@b"));
	ck_assert(!txtrec_is_tlsrpt("v=TLSRPTv10; rua=mailto:a@b"));
	ck_assert(!txtrec_is_tlsrpt("v=STSv1; id=a"));
}
END_TEST

static Suite *txtrec_suite(void)
{
	Suite *s = suite_create("txtrec");
	TCase *tc = tcase_create("txtrec");

	tcase_add_loop_test(tc, test_sts, 0, sizeof(sts_cases) / sizeof(sts_cases[0]));
	tcase_add_loop_test(tc, test_tlsrpt, 0, sizeof(tlsrpt_cases) / sizeof(tlsrpt_cases[0]));
	tcase_add_test(tc, test_is);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(txtrec_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
