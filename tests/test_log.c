/* test_log: the priority prefix follows JOURNAL_STREAM only when it names stderr */
#include <check.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

/* JOURNAL_STREAM = before DEV+dev_add mid INO+ino_add after (DEV left out with no_dev). */
static const struct {
	const char *before;
	bool no_dev;
	int dev_add;
	const char *mid;
	int ino_add;
	const char *after;
	bool journal;
} cases[] = {
    {"", false, 0, ":", 0, "", true},
    {"", false, 0, ":", 1, "", false},
    {"", false, 1, ":", 0, "", false},
    {"", false, 0, ":", 0, " ", false},
    {"", false, 0, ":", 0, ":", false},
    {"", false, 0, ":", 0, "0", false},
    {" ", false, 0, ":", 0, "", false},
    {"+", false, 0, ":", 0, "", false},
    {"", false, 0, ":+", 0, "", false},
    {"", false, 0, ";", 0, "", false},
    {"", false, 0, "::", 0, "", false},
    {"", true, 0, ":", 0, "", false},
    {"184467440737095516160000", true, 0, ":", 0, "", false},
    {"0x", false, 0, ":", 0, "", false},
};

static const char *const plain[] = {
    "mtastsd: an error 1",
    "mtastsd: a warning 2",
    "mtastsd: info 3",
    "path:4: warning: x",
};
static const char levels[] = {'3', '4', '6', '4'};

/* Everything logged while stderr is a fresh file, read back. */
static char *logged(const char *journal_stream, const char *path)
{
	static char out[4096];
	FILE *f;
	size_t n;

	if (journal_stream != NULL)
		ck_assert_int_eq(setenv("JOURNAL_STREAM", journal_stream, 1), 0);
	else
		unsetenv("JOURNAL_STREAM");
	log_init();
	log_err("an error %d", 1);
	log_warn("a warning %d", 2);
	log_msg("info %d\n", 3);
	log_plain(LOG_LEVEL_WARNING, "path:%d: warning: x", 4);
	log_access("192.0.2.1", "mta-sts.a.test", "GET", "/x y", 200, 5);
	ck_assert_ptr_nonnull(f = fopen(path, "r"));
	n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = '\0';
	fclose(f);
	return out;
}

static void expect(const char *got, bool journal)
{
	char want[1024];
	size_t len = 0;

	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
		if (journal)
			len += (size_t)snprintf(want + len, sizeof(want) - len, "<%c>%s\n",
			                        levels[i], plain[i]);
		else
			len += (size_t)snprintf(want + len, sizeof(want) - len, "%s\n", plain[i]);
	ck_assert_msg(strncmp(got, want, len) == 0, "got:\n%s\nwant:\n%s", got, want);
	got += len;
	ck_assert_msg(strncmp(got, journal ? "<6>access: " : "access: ", journal ? 11 : 8) == 0,
	              "access line: %s", got);
	ck_assert_msg(strstr(got, " 192.0.2.1 mta-sts.a.test GET /x?y 200 5\n") != NULL,
	              "access line: %s", got);
}

/* stderr to a fresh file (ret_path), the real one kept in *ret_saved. */
static int redirect(char *ret_path, int *ret_saved)
{
	int fd = mkstemp(ret_path);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_ge(*ret_saved = dup(STDERR_FILENO), 0);
	ck_assert_int_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	return fd;
}

/* Puts the real stderr back (valgrind without fork reports there). */
static void restore(const char *path, int fd, int saved)
{
	ck_assert_int_eq(dup2(saved, STDERR_FILENO), STDERR_FILENO);
	close(saved);
	close(fd);
	unlink(path);
}

START_TEST(test_log_journal_stream)
{
	char path[] = "/tmp/test_log.XXXXXX", env[256];
	int saved, fd = redirect(path, &saved);
	struct stat st;

	ck_assert_int_eq(fstat(fd, &st), 0);
	if (cases[_i].no_dev)
		snprintf(env, sizeof(env), "%s%s%ju%s", cases[_i].before, cases[_i].mid,
		         (uintmax_t)st.st_ino + (uintmax_t)cases[_i].ino_add, cases[_i].after);
	else
		snprintf(env, sizeof(env), "%s%ju%s%ju%s", cases[_i].before,
		         (uintmax_t)st.st_dev + (uintmax_t)cases[_i].dev_add, cases[_i].mid,
		         (uintmax_t)st.st_ino + (uintmax_t)cases[_i].ino_add, cases[_i].after);
	expect(logged(env, path), cases[_i].journal);
	restore(path, fd, saved);
}
END_TEST

START_TEST(test_log_no_journal_stream)
{
	char path[] = "/tmp/test_log.XXXXXX";
	int saved, fd = redirect(path, &saved);

	expect(logged(NULL, path), false);
	restore(path, fd, saved);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("journal");
	SRunner *sr;
	int failed;

	tcase_add_loop_test(tc, test_log_journal_stream, 0, sizeof(cases) / sizeof(cases[0]));
	tcase_add_test(tc, test_log_no_journal_stream);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
