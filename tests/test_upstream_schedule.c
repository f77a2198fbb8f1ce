/* test_upstream_schedule: when a provider's policy is fetched again */
#include <check.h>
#include <limits.h>
#include <stdlib.h>
#include <time.h>

#include "schedule.h"

#define NOW ((time_t)1700000000)

static const struct {
	unsigned refresh;
	unsigned max_age;
	time_t after; /* expected, seconds after NOW */
} fetch_cases[] = {
    {3600, 86400, 3600},        /* upstream_refresh when half the max_age is later */
    {3600, 7200, 3600},         /* half the max_age exactly: still upstream_refresh */
    {3600, 7199, 3599},         /* half the max_age when sooner (rounded down) */
    {3600, 600, 300},           /* a short max_age is renewed at its half */
    {3600, 3, 1},               /* ... */
    {3600, 2, 1},               /* ... */
    {3600, 1, 1},               /* never sooner than 1 second */
    {3600, 0, 1},               /* ... */
    {1, 0, 1},                  /* the smallest upstream_refresh */
    {1, 86400, 1},              /* ... */
    {604800, 31557600, 604800}, /* the largest upstream_refresh and max_age */
    {604800, 86400, 43200},     /* a week's refresh, a day's max_age */
    {3600, UINT_MAX, 3600},     /* any max_age */
};

START_TEST(test_after_fetch)
{
	time_t got = schedule_after_fetch(NOW, fetch_cases[_i].refresh, fetch_cases[_i].max_age);

	ck_assert_msg(got == NOW + fetch_cases[_i].after,
	              "refresh %u, max_age %u: next fetch %lld s later, expected %lld",
	              fetch_cases[_i].refresh, fetch_cases[_i].max_age, (long long)(got - NOW),
	              (long long)fetch_cases[_i].after);
}
END_TEST

START_TEST(test_after_failure)
{
	static const unsigned retries[] = {1, 60, 86400};

	for (size_t i = 0; i < sizeof(retries) / sizeof(retries[0]); i++)
		ck_assert_int_eq(schedule_after_failure(NOW, retries[i]), NOW + retries[i]);
}
END_TEST

#define FAR (NOW + 3600)

static const struct {
	const char *what;
	time_t next_fetch, last_attempt;
	const char *seen, *last_seen, *fetched;
	time_t expected;
} poll_cases[] = {
    {"a new id, not fetched: now", FAR, NOW - 600, "b", "a", "a", NOW},
    {"the first id seen, nothing fetched yet", FAR, 0, "a", "", "", NOW},
    {"a new id right after an attempt: the minimum gap", FAR, NOW, "b", "a", "a",
     NOW + SCHEDULE_MIN_FETCH_GAP},
    {"a new id an attempt's gap ago: now", FAR, NOW - SCHEDULE_MIN_FETCH_GAP, "b", "a", "a", NOW},
    {"a new id, a fetch already due sooner", NOW - 5, NOW - 600, "b", "a", "a", NOW - 5},
    {"a new id, a fetch already due at the gap", NOW + SCHEDULE_MIN_FETCH_GAP, NOW, "b", "a", "a",
     NOW + SCHEDULE_MIN_FETCH_GAP},
    {"the same id again, not fetched: upstream_retry paces", FAR, NOW - 600, "b", "b", "a", FAR},
    {"the same id again, fetched", FAR, NOW - 600, "a", "a", "a", FAR},
    {"a new id already fetched (a restart with a cached copy)", FAR, 0, "a", "", "a", FAR},
    {"back to the id fetched", FAR, NOW - 600, "a", "b", "a", FAR},
    {"ids compare exactly", FAR, NOW - 600, "ABC", "abc", "abc", NOW},
};

START_TEST(test_after_poll)
{
	time_t got = schedule_after_poll(NOW, poll_cases[_i].next_fetch,
	                                 poll_cases[_i].last_attempt, poll_cases[_i].seen,
	                                 poll_cases[_i].last_seen, poll_cases[_i].fetched);

	ck_assert_msg(got == poll_cases[_i].expected, "%s: NOW%+lld, expected NOW%+lld",
	              poll_cases[_i].what, (long long)(got - NOW),
	              (long long)(poll_cases[_i].expected - NOW));
}
END_TEST

/* The three together, as upstream.c applies them to one provider: a new id is fetched
 * at once, a failure waits for upstream_retry however often the id is polled, a success
 * waits for the refresh. */
START_TEST(test_story)
{
	const unsigned retry = 60, refresh = 3600, max_age = 86400, poll = 10;
	time_t t = NOW, next = schedule_after_fetch(t, refresh, max_age), attempt = t;

	ck_assert_int_eq(next, NOW + 3600);
	/* The provider publishes id b: fetched at the next poll. */
	t += poll;
	next = schedule_after_poll(t, next, attempt, "b", "a", "a");
	ck_assert_int_eq(next, t);
	/* That fetch fails. */
	attempt = t;
	next = schedule_after_failure(t, retry);
	ck_assert_int_eq(next, NOW + poll + retry);
	/* Polls keep seeing b: no fetch before the retry. */
	for (t += poll; t < NOW + poll + retry; t += poll)
		ck_assert_int_eq(schedule_after_poll(t, next, attempt, "b", "b", "a"), next);
	/* Then id c: at once again. */
	ck_assert_int_eq(schedule_after_poll(t, next, attempt, "c", "b", "a"), t);
}
END_TEST

static Suite *schedule_suite(void)
{
	Suite *s = suite_create("upstream_schedule");
	TCase *tc = tcase_create("schedule");

	tcase_add_loop_test(tc, test_after_fetch, 0, sizeof(fetch_cases) / sizeof(fetch_cases[0]));
	tcase_add_test(tc, test_after_failure);
	tcase_add_loop_test(tc, test_after_poll, 0, sizeof(poll_cases) / sizeof(poll_cases[0]));
	tcase_add_test(tc, test_story);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(schedule_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
