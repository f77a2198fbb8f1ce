/* test_journal: what each domain served, across restarts and crashes, and when the records
 * of a domain can go */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "journal.h"
#include "scratch.h"
#include "statefile.h"

#define ENFORCE "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmax_age: 86400\r\n"
#define TESTING "version: STSv1\r\nmode: testing\r\nmx: mail.example.com\r\nmax_age: 3600\r\n"
#define NONE "version: STSv1\r\nmode: none\r\nmx: mail.example.com\r\nmax_age: 300\r\n"
#define T0 1800000000

static size_t history(struct journal *j, const char *domain, struct journal_entry *v, bool *live)
{
	return journal_history(j, domain, v, live);
}

/* testing, then enforce, then none: each entry with its first and last time; the records can
 * go max_age after the last policy that was not none stopped being served. */
START_TEST(test_lifecycle)
{
	struct journal *j = journal_open(scratch_dir, true);
	struct journal_entry v[JOURNAL_KEEP];
	bool live;
	char text[300];

	ck_assert_ptr_nonnull(j);
	journal_sync_begin(j);
	journal_served(j, "example.com", "aaa", TESTING, T0);
	journal_sync_end(j, T0);
	journal_served(j, "example.com", "aaa", TESTING, T0 + 10); /* the same: no entry */
	journal_served(j, "example.com", "bbb", ENFORCE, T0 + 100);
	journal_served(j, "example.com", "ccc", NONE, T0 + 200);
	ck_assert_uint_eq(history(j, "example.com", v, &live), 3);
	ck_assert(live);
	ck_assert_str_eq(v[0].id, "aaa");
	ck_assert_int_eq(v[0].mode, POLICY_MODE_TESTING);
	ck_assert_uint_eq(v[0].max_age, 3600);
	ck_assert_int_eq(v[0].first, T0);
	ck_assert_int_eq(v[0].last, T0 + 100);
	ck_assert(!v[0].open);
	ck_assert_int_eq(v[1].mode, POLICY_MODE_ENFORCE);
	ck_assert_int_eq(v[1].last, T0 + 200);
	ck_assert_int_eq(v[2].mode, POLICY_MODE_NONE);
	ck_assert(v[2].open);
	/* enforce, max_age 86400, replaced at T0 + 200 */
	ck_assert_int_eq(journal_cached_until(v, 3, true), T0 + 200 + 86400);
	journal_summary(v, 3, true, T0 + 300, text, sizeof(text));
	ck_assert_msg(strstr(text, "senders may hold an earlier policy until 2027-01-16 08:03 UTC: "
	                           "keep the records and the policy host until then") != NULL,
	              "%s", text);
	journal_summary(v, 3, true, T0 + 200 + 86400, text, sizeof(text));
	ck_assert_msg(strstr(text, "can be removed now") != NULL, "%s", text);
	ck_assert_uint_eq(history(j, "other.example", v, &live), 0);
	ck_assert(!live);
	journal_close(j, true, T0 + 400);
}
END_TEST

/* While a policy that is not none is served, no date: it cannot expire. */
START_TEST(test_live_policy_never_expires)
{
	struct journal *j = journal_open(NULL, false);
	struct journal_entry v[JOURNAL_KEEP];
	bool live;
	char text[300];

	journal_served(j, "example.com", "bbb", ENFORCE, T0);
	ck_assert_uint_eq(history(j, "example.com", v, &live), 1);
	ck_assert_int_gt(journal_cached_until(v, 1, live), T0 + 10 * 365 * 86400L);
	journal_summary(v, 1, live, T0 + 3 * 86400, text, sizeof(text));
	ck_assert_str_eq(text, "mode enforce served since 2027-01-15 08:00 UTC (3 days)");
	journal_close(j, false, 0);
}
END_TEST

/* Saved and read back; a clean stop closes the entries at the stop, a crash leaves them
 * open and counts a checkpoint more. */
START_TEST(test_restart_and_crash)
{
	struct journal *j = journal_open(scratch_dir, true);
	struct journal_entry v[JOURNAL_KEEP];
	bool live;

	journal_served(j, "a.example", "aaa", ENFORCE, T0);
	journal_served(j, "b.example", "bbb", TESTING, T0);
	ck_assert_int_eq(journal_checkpoint(j, T0 + 50), 0);
	journal_close(j, true, T0 + 60); /* stopped cleanly */

	j = journal_open(scratch_dir, true);
	ck_assert_uint_eq(history(j, "a.example", v, &live), 1);
	ck_assert(!live);
	ck_assert_int_eq(v[0].first, T0);
	ck_assert_int_eq(v[0].last, T0 + 60);
	ck_assert(!v[0].open);
	ck_assert_int_eq(journal_cached_until(v, 1, live), T0 + 60 + 86400);
	/* Served again after the restart: the same entry goes on. */
	journal_served(j, "a.example", "aaa", ENFORCE, T0 + 100);
	ck_assert_uint_eq(history(j, "a.example", v, &live), 1);
	ck_assert(live);
	ck_assert_int_eq(v[0].first, T0);
	ck_assert_int_eq(journal_checkpoint(j, T0 + 120), 0);
	/* A crash: the journal is never closed; what was saved says "open". */
	char *text = NULL;
	size_t len;
	char path[64];
	snprintf(path, sizeof(path), "%s/journal", scratch_dir);
	ck_assert_int_eq(statefile_read(path, 1 << 20, &text, &len), 0);
	struct journal *after = journal_open(scratch_dir, true);
	ck_assert_uint_eq(history(after, "a.example", v, &live), 1);
	ck_assert(v[0].open);
	ck_assert_int_eq(v[0].last, T0 + 120);
	ck_assert_int_eq(journal_cached_until(v, 1, false), T0 + 120 + JOURNAL_CHECKPOINT + 86400);
	/* b.example was not served after the restart: its entry is what the stop closed. */
	ck_assert_uint_eq(history(after, "b.example", v, &live), 1);
	ck_assert_int_eq(v[0].last, T0 + 60);
	journal_close(after, false, 0);
	free(text);
	journal_close(j, false, 0);
}
END_TEST

/* A domain the new configuration does not serve stops being served at the sync. */
START_TEST(test_sync_retires)
{
	struct journal *j = journal_open(NULL, false);
	struct journal_entry v[JOURNAL_KEEP];
	bool live;

	journal_sync_begin(j);
	journal_served(j, "a.example", "aaa", ENFORCE, T0);
	journal_served(j, "b.example", "bbb", ENFORCE, T0);
	journal_sync_end(j, T0);
	journal_sync_begin(j);
	journal_served(j, "a.example", "aaa", ENFORCE, T0 + 500);
	journal_sync_end(j, T0 + 500);
	ck_assert_uint_eq(history(j, "b.example", v, &live), 1);
	ck_assert(!live);
	ck_assert_int_eq(v[0].last, T0 + 500);
	ck_assert_int_eq(journal_cached_until(v, 1, live), T0 + 500 + 86400);
	ck_assert_uint_eq(history(j, "a.example", v, &live), 1);
	ck_assert(live);
	journal_close(j, false, 0);
}
END_TEST

/* At most JOURNAL_KEEP entries per domain, the oldest dropped. */
START_TEST(test_keep)
{
	struct journal *j = journal_open(NULL, false);
	struct journal_entry v[JOURNAL_KEEP];
	bool live;

	for (int i = 0; i < JOURNAL_KEEP + 3; i++) {
		char id[16];
		snprintf(id, sizeof(id), "id%d", i);
		journal_served(j, "a.example", id, i % 2 ? ENFORCE : TESTING, T0 + i);
	}
	ck_assert_uint_eq(history(j, "a.example", v, &live), JOURNAL_KEEP);
	ck_assert_str_eq(v[0].id, "id3");
	ck_assert_str_eq(v[JOURNAL_KEEP - 1].id, "id10");
	journal_close(j, false, 0);
}
END_TEST

/* A damaged file is read up to the damage; a file of another kind is ignored. */
START_TEST(test_damaged)
{
	char path[64];
	struct journal *j;
	struct journal_entry v[JOURNAL_KEEP];
	bool live;
	static const char text[] = "mtastsd-journal 1\n"
	                           "a.example aaa enforce 86400 1800000000 1800000100 0\n"
	                           "b.example bbb sometimes 86400 1800000000 1800000100 0\n"
	                           "c.example ccc enforce 86400 1800000000 1800000100 0\n";

	snprintf(path, sizeof(path), "%s/journal", scratch_dir);
	ck_assert_int_eq(statefile_write(path, text, strlen(text), 0644), 0);
	j = journal_open(scratch_dir, true);
	ck_assert_uint_eq(history(j, "a.example", v, &live), 1);
	ck_assert_uint_eq(history(j, "b.example", v, &live), 0);
	ck_assert_uint_eq(history(j, "c.example", v, &live), 0);
	journal_close(j, false, 0);

	ck_assert_int_eq(statefile_write(path, "garbage\n", 8, 0644), 0);
	j = journal_open(scratch_dir, true);
	ck_assert_uint_eq(history(j, "a.example", v, &live), 0);
	journal_close(j, false, 0);

	static const char bad_times[] = "mtastsd-journal 1\n"
	                                "a.example aaa enforce 86400 1800000100 1800000000 0\n";
	ck_assert_int_eq(statefile_write(path, bad_times, strlen(bad_times), 0644), 0);
	j = journal_open(scratch_dir, true);
	ck_assert_uint_eq(history(j, "a.example", v, &live), 0);
	journal_close(j, false, 0);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("journal");
	TCase *tc = tcase_create("unit");

	tcase_add_checked_fixture(tc, scratch_setup, scratch_teardown);
	tcase_add_test(tc, test_lifecycle);
	tcase_add_test(tc, test_live_policy_never_expires);
	tcase_add_test(tc, test_restart_and_crash);
	tcase_add_test(tc, test_sync_retires);
	tcase_add_test(tc, test_keep);
	tcase_add_test(tc, test_damaged);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
