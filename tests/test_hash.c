/* test_hash: the host-name hash map, plus the buf and diag helpers it is built with */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "diag.h"
#include "hash.h"

#define MANY 200000

START_TEST(test_put_get_many)
{
	struct hash t;
	ck_assert_int_eq(hash_init(&t, 0), 0);
	char **keys = calloc(MANY, sizeof(*keys));
	ck_assert_ptr_nonnull(keys);
	for (size_t i = 0; i < MANY; i++) {
		char name[64];
		int n = snprintf(name, sizeof(name), "mta-sts.d%zu.example", i);
		ck_assert(n > 0 && (size_t)n < sizeof(name));
		keys[i] = strdup(name);
		ck_assert_ptr_nonnull(keys[i]);
		ck_assert_int_eq(hash_put(&t, keys[i], keys[i], NULL), 0);
	}
	ck_assert_uint_eq(t.n, MANY);
	ck_assert_uint_le(t.n * 2, t.cap);
	ck_assert_uint_lt(t.cap, t.n * 4);
	ck_assert_uint_eq(t.cap & (t.cap - 1), 0);
	for (size_t i = 0; i < MANY; i++)
		ck_assert_ptr_eq(hash_get(&t, keys[i], strlen(keys[i])), keys[i]);
	ck_assert_ptr_null(hash_get(&t, "mta-sts.d200000.example", 23));
	ck_assert_ptr_null(hash_get(&t, "mta-sts.d1.example.", 19));
	/* A prefix of a stored key is a different key. */
	ck_assert_ptr_null(hash_get(&t, keys[12345], strlen(keys[12345]) - 1));
	hash_finish(&t);
	for (size_t i = 0; i < MANY; i++)
		free(keys[i]);
	free(keys);
}
END_TEST

static const struct {
	const char *stored;
	const char *lookup;
	bool found;
} case_cases[] = {
    {"mta-sts.example.com", "MTA-STS.Example.COM", true},
    {"MTA-STS.EXAMPLE.NET", "mta-sts.example.net", true},
    {"mta-sts.example.com", "mta-sts.example.co", false},
    {"mta-sts.example.com", "mta-sts-example.com", false},
    {"a", "A", true},
    {"a", "b", false},
};

START_TEST(test_case_insensitive)
{
	struct hash t;
	ck_assert_int_eq(hash_init(&t, 4), 0);
	int value = 42;
	ck_assert_int_eq(hash_put(&t, case_cases[_i].stored, &value, NULL), 0);
	void *got = hash_get(&t, case_cases[_i].lookup, strlen(case_cases[_i].lookup));
	if (case_cases[_i].found)
		ck_assert_ptr_eq(got, &value);
	else
		ck_assert_ptr_null(got);
	hash_finish(&t);
}
END_TEST

START_TEST(test_duplicate_put)
{
	struct hash t;
	ck_assert_int_eq(hash_init(&t, 1), 0);
	int first = 1, second = 2;
	void *old = &second;
	ck_assert_int_eq(hash_put(&t, "mta-sts.example.com", &first, NULL), 0);
	ck_assert_int_eq(hash_put(&t, "MTA-STS.example.com", &second, &old), 1);
	ck_assert_ptr_eq(old, &first);
	ck_assert_int_eq(hash_put(&t, "mta-sts.example.com", &second, NULL), 1);
	ck_assert_uint_eq(t.n, 1);
	ck_assert_ptr_eq(hash_get(&t, "mta-sts.example.com", 19), &first);
	hash_finish(&t);
}
END_TEST

START_TEST(test_empty_and_finished)
{
	struct hash t;
	ck_assert_int_eq(hash_init(&t, 1000), 0);
	ck_assert_uint_ge(t.cap, 2000);
	ck_assert_ptr_null(hash_get(&t, "x", 1));
	hash_finish(&t);
	ck_assert_ptr_null(t.slots);
	ck_assert_uint_eq(t.cap, 0);
	/* A finished table is empty and can be filled again. */
	ck_assert_ptr_null(hash_get(&t, "x", 1));
	ck_assert_int_eq(hash_put(&t, "x", &t, NULL), 0);
	ck_assert_ptr_eq(hash_get(&t, "X", 1), &t);
	hash_finish(&t);
}
END_TEST

static const struct {
	const char *in;
	size_t len;
	const char *json;
} json_cases[] = {
    {"plain", 5, "\"plain\""},
    {"", 0, "\"\""},
    {"a\"b\\c", 5, "\"a\\\"b\\\\c\""},
    {"l1\r\nl2\t", 7, "\"l1\\u000d\\u000al2\\u0009\""},
    {"nul\0x", 5, "\"nul\\u0000x\""},
    {"\x1f\x7f", 2, "\"\\u001f\\u007f\""},
    {"b\xc3\xbc"
     "cher /<>",
     11,
     "\"b\xc3\xbc"
     "cher /<>\""},
};

START_TEST(test_buf_json_string)
{
	struct buf b;
	buf_init(&b);
	ck_assert_int_eq(buf_json_string(&b, json_cases[_i].in, json_cases[_i].len), 0);
	ck_assert_str_eq(b.data, json_cases[_i].json);
	ck_assert_uint_eq(b.len, strlen(json_cases[_i].json));
	buf_finish(&b);
}
END_TEST

START_TEST(test_buf_printf_grows)
{
	struct buf b;
	buf_init(&b);
	char big[1000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ck_assert_int_eq(buf_puts(&b, "start "), 0);
	ck_assert_int_eq(buf_printf(&b, "%s %d", big, 7), 0);
	ck_assert_uint_eq(b.len, 6 + 999 + 2);
	ck_assert_uint_eq(strlen(b.data), b.len);
	ck_assert_str_eq(b.data + b.len - 2, " 7");
	size_t len = 0;
	char *s = buf_steal(&b, &len);
	ck_assert_uint_eq(len, 6 + 999 + 2);
	ck_assert_ptr_null(b.data);
	ck_assert_uint_eq(b.len, 0);
	free(s);
	/* Nothing appended: still an empty string. */
	s = buf_steal(&b, &len);
	ck_assert_str_eq(s, "");
	ck_assert_uint_eq(len, 0);
	free(s);
}
END_TEST

START_TEST(test_buf_failed_steal)
{
	struct buf b;
	buf_init(&b);
	buf_puts(&b, "x");
	b.failed = true;
	ck_assert_int_eq(buf_puts(&b, "y"), -1);
	size_t len = 99;
	ck_assert_ptr_null(buf_steal(&b, &len));
	ck_assert_uint_eq(len, 99);
	ck_assert_ptr_null(b.data);
}
END_TEST

static const struct {
	const char *file;
	unsigned line;
	enum diag_level level;
	const char *out;
} diag_cases[] = {
    {"a.conf", 3, DIAG_ERROR, "a.conf:3: bad 7\n"},
    {"a.conf", 3, DIAG_WARNING, "a.conf:3: warning: bad 7\n"},
    {"a.conf", 0, DIAG_ERROR, "a.conf: bad 7\n"},
    {"a.conf", 0, DIAG_WARNING, "a.conf: warning: bad 7\n"},
    {NULL, 0, DIAG_ERROR, "bad 7\n"},
    {NULL, 5, DIAG_ERROR, "bad 7\n"},
};

START_TEST(test_diag_print)
{
	struct diag d;
	diag_init(&d);
	diag_add(&d, diag_cases[_i].level, diag_cases[_i].file, diag_cases[_i].line, "bad %d", 7);
	ck_assert_uint_eq(d.n_errors, diag_cases[_i].level == DIAG_ERROR);
	ck_assert_uint_eq(d.n_warnings, diag_cases[_i].level == DIAG_WARNING);
	char *out = NULL;
	size_t out_len = 0;
	FILE *f = open_memstream(&out, &out_len);
	ck_assert_ptr_nonnull(f);
	diag_print(&d, f);
	fclose(f);
	ck_assert_str_eq(out, diag_cases[_i].out);
	free(out);
	diag_finish(&d);
}
END_TEST

/* A million errors keep DIAG_KEEP messages (errors and warnings each), count them all and
 * say so; a merge keeps to the same bound. */
START_TEST(test_diag_capped)
{
	struct diag d, m;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	diag_init(&d);
	diag_warn(&d, "x", 1, "first warning");
	for (unsigned i = 0; i < 1000000; i++)
		diag_error(&d, "x", i + 2, "bad %u", i);
	diag_warn(&d, "x", 3, "second warning");
	ck_assert_uint_eq(d.n_errors, 1000000);
	ck_assert_uint_eq(d.n_warnings, 2);
	ck_assert_uint_eq(d.n, DIAG_KEEP + 2);
	f = open_memstream(&text, &len);
	ck_assert_ptr_nonnull(f);
	diag_print(&d, f);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_ptr_nonnull(strstr(text, "x:2: bad 0\n"));
	ck_assert_ptr_null(strstr(text, "bad 100\n"));
	ck_assert_ptr_nonnull(strstr(text, "x:3: warning: second warning\n"));
	ck_assert_ptr_nonnull(strstr(text, "... 1000000 errors and 2 warnings in all"));
	free(text);

	diag_init(&m);
	diag_merge(&m, &d);
	diag_merge(&m, &d);
	ck_assert_uint_eq(m.n, DIAG_KEEP + 4);
	ck_assert_uint_eq(m.n_errors, 2000000);
	diag_finish(&m);
	diag_finish(&d);
}
END_TEST

START_TEST(test_diag_merge)
{
	struct diag a, b;
	diag_init(&a);
	diag_init(&b);
	diag_error(&a, "x", 1, "one");
	diag_warn(&b, "y", 2, "two");
	diag_error(&b, "y", 3, "three");
	diag_merge(&a, &b);
	ck_assert_uint_eq(a.n, 3);
	ck_assert_uint_eq(a.n_errors, 2);
	ck_assert_uint_eq(a.n_warnings, 1);
	ck_assert_str_eq(a.v[1].msg, "two");
	ck_assert_str_eq(a.v[2].file, "y");
	ck_assert_uint_eq(a.v[2].line, 3);
	diag_finish(&b);
	diag_finish(&a);
}
END_TEST

static Suite *hash_suite(void)
{
	Suite *s = suite_create("hash");
	TCase *tc = tcase_create("hash");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_put_get_many);
	tcase_add_loop_test(tc, test_case_insensitive, 0,
	                    sizeof(case_cases) / sizeof(case_cases[0]));
	tcase_add_test(tc, test_duplicate_put);
	tcase_add_test(tc, test_empty_and_finished);
	suite_add_tcase(s, tc);

	tc = tcase_create("buf");
	tcase_add_loop_test(tc, test_buf_json_string, 0,
	                    sizeof(json_cases) / sizeof(json_cases[0]));
	tcase_add_test(tc, test_buf_printf_grows);
	tcase_add_test(tc, test_buf_failed_steal);
	suite_add_tcase(s, tc);

	tc = tcase_create("diag");
	tcase_add_loop_test(tc, test_diag_print, 0, sizeof(diag_cases) / sizeof(diag_cases[0]));
	tcase_add_test(tc, test_diag_merge);
	tcase_add_test(tc, test_diag_capped);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(hash_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
