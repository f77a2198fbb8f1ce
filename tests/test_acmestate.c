/* test_acmestate: the ACME files under state_dir, and the statefile helpers they use */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "acmestate.h"
#include "scratch.h"
#include "statefile.h"

/* A host name becomes a path component: only plain lowercase names do. */
static const struct {
	const char *host;
	bool ok;
} hosts[] = {
    {"mta-sts.example.com", true},
    {"mta-sts.xn--bcher-kva.example", true},
    {"../etc", false},
    {"mta-sts..example.com", false},
    {".hidden", false},
    {"a/b", false},
    {"MTA-STS.example.com", false},
    {"", false},
    {"mta sts.example", false},
};

START_TEST(test_path)
{
	char out[256];
	int r = acmestate_path(out, sizeof(out), "/var/lib/m", hosts[_i].host, "cert.pem");

	ck_assert_int_eq(r, hosts[_i].ok ? 0 : -1);
	if (hosts[_i].ok) {
		char want[256];

		snprintf(want, sizeof(want), "/var/lib/m/acme/%s/cert.pem", hosts[_i].host);
		ck_assert_str_eq(out, want);
	}
}
END_TEST

START_TEST(test_path_too_long)
{
	char out[32];

	ck_assert_int_eq(
	    acmestate_path(out, sizeof(out), "/var/lib/mtastsd", "mta-sts.example.com", "cert.pem"),
	    -1);
}
END_TEST

START_TEST(test_status_round_trip)
{
	struct acme_status st = {.failures = 3, .retry_at = 1800000000, .failed_at = 1799990000};
	struct acme_status got;
	char path[512];
	struct stat sb;

	snprintf(st.problem, sizeof(st.problem), "urn:x: two\nlines");
	ck_assert_int_eq(acmestate_status_read(scratch_dir, "mta-sts.a.test", &got), -1);
	ck_assert_uint_eq(got.failures, 0);
	ck_assert_int_eq(acmestate_status_write(scratch_dir, "mta-sts.a.test", &st), 0);
	ck_assert_int_eq(acmestate_status_read(scratch_dir, "mta-sts.a.test", &got), 0);
	ck_assert_uint_eq(got.failures, 3);
	ck_assert_int_eq(got.retry_at, 1800000000);
	ck_assert_int_eq(got.failed_at, 1799990000);
	ck_assert_str_eq(got.problem, "urn:x: two lines"); /* one line in the file */
	snprintf(path, sizeof(path), "%s/acme/mta-sts.a.test", scratch_dir);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_uint_eq(sb.st_mode & 0777, 0700);
	snprintf(path, sizeof(path), "%s/acme/mta-sts.a.test/status", scratch_dir);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_uint_eq(sb.st_mode & 0777, 0600);
}
END_TEST

/* A damaged status reads as none: a restart does not keep a bogus back-off. */
START_TEST(test_status_damaged)
{
	static const char *const damaged[] = {
	    "garbage\n",
	    "mtastsd-acme-status 1\nfailures -1\n",
	    "mtastsd-acme-status 1\nretry_at 12x\n",
	    "mtastsd-acme-status 1\nfailures\n",
	};
	struct acme_status st = {.failures = 1}, got;
	char path[512];

	ck_assert_int_eq(acmestate_status_write(scratch_dir, "mta-sts.b.test", &st), 0);
	snprintf(path, sizeof(path), "%s/acme/mta-sts.b.test/status", scratch_dir);
	for (size_t i = 0; i < sizeof(damaged) / sizeof(damaged[0]); i++) {
		ck_assert_int_eq(statefile_write(path, damaged[i], strlen(damaged[i]), 0600), 0);
		got.failures = 99;
		ck_assert_int_eq(acmestate_status_read(scratch_dir, "mta-sts.b.test", &got), -1);
		ck_assert_uint_eq(got.failures, 0);
	}
}
END_TEST

START_TEST(test_statefile_read_limits)
{
	char path[512], *data = (char *)0x1;
	size_t len = 7;

	snprintf(path, sizeof(path), "%s/f", scratch_dir);
	ck_assert_int_eq(statefile_write(path, "12345", 5, 0640), 0);
	ck_assert_int_eq(statefile_read(path, 4, &data, &len), -1);
	ck_assert_int_eq(errno, EFBIG);
	ck_assert_ptr_eq(data, (char *)0x1); /* untouched on failure */
	ck_assert_uint_eq(len, 7);
	ck_assert_int_eq(statefile_read(path, 5, &data, &len), 0);
	ck_assert_str_eq(data, "12345");
	ck_assert_uint_eq(len, 5);
	free(data);
	/* A FIFO is refused at once, never waited on. */
	snprintf(path, sizeof(path), "%s/fifo", scratch_dir);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	data = (char *)0x1;
	ck_assert_int_eq(statefile_read(path, 100, &data, &len), -1);
	ck_assert_int_eq(errno, EINVAL);
	snprintf(path, sizeof(path), "%s/none", scratch_dir);
	ck_assert_int_eq(statefile_read(path, 100, &data, &len), -1);
	ck_assert_int_eq(errno, ENOENT);
}
END_TEST

START_TEST(test_statefile_write_replaces)
{
	char path[512], *data;
	size_t len;
	struct stat sb;

	snprintf(path, sizeof(path), "%s/a/b/c", scratch_dir);
	ck_assert_int_eq(statefile_mkdirs(path, 0700), 0);
	ck_assert_int_eq(statefile_mkdirs(path, 0700), 0); /* existing: fine */
	snprintf(path, sizeof(path), "%s/a/b/c/k", scratch_dir);
	ck_assert_int_eq(statefile_write(path, "old", 3, 0600), 0);
	ck_assert_int_eq(statefile_write(path, "new!", 4, 0600), 0);
	ck_assert_int_eq(statefile_read(path, 100, &data, &len), 0);
	ck_assert_str_eq(data, "new!");
	free(data);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_uint_eq(sb.st_mode & 0777, 0600);
	/* No temp file is left beside it. */
	snprintf(path, sizeof(path), "ls %s/a/b/c | wc -l | grep -qx 1", scratch_dir);
	ck_assert_int_eq(system(path), 0);
	/* A directory that cannot be written: -1, errno set. */
	snprintf(path, sizeof(path), "%s/nodir/x", scratch_dir);
	ck_assert_int_eq(statefile_write(path, "x", 1, 0600), -1);
	ck_assert_int_eq(errno, ENOENT);
}
END_TEST

static Suite *acmestate_suite(void)
{
	Suite *s = suite_create("acmestate");
	TCase *tc = tcase_create("acmestate");

	tcase_add_checked_fixture(tc, scratch_setup, scratch_teardown);
	tcase_add_loop_test(tc, test_path, 0, sizeof(hosts) / sizeof(hosts[0]));
	tcase_add_test(tc, test_path_too_long);
	tcase_add_test(tc, test_status_round_trip);
	tcase_add_test(tc, test_status_damaged);
	tcase_add_test(tc, test_statefile_read_limits);
	tcase_add_test(tc, test_statefile_write_replaces);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(acmestate_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
