/* schedule: when to fetch a provider's policy again (pure: no clock, no I/O) */
#ifndef MTASTSD_SCHEDULE_H
#define MTASTSD_SCHEDULE_H

#include <time.h>

/* Seconds between two fetches of one provider. */
#define SCHEDULE_MIN_FETCH_GAP 1

/* After a successful fetch at now of a policy with max_age: refresh (upstream_refresh)
 * seconds later, or half the max_age later when that is sooner, so that the copy is
 * renewed well before it expires; never sooner than 1 second later. */
time_t schedule_after_fetch(time_t now, unsigned refresh, unsigned max_age);

/* After a failed fetch at now: retry (upstream_retry) seconds later. */
time_t schedule_after_failure(time_t now, unsigned retry);

/* The provider's _mta-sts id polled at now is seen; last_seen is the id seen by the
 * previous poll and fetched the one seen when the served copy was fetched ("" when
 * none). A new id (not last_seen) that the copy was not fetched under (not fetched) is
 * worth one fetch right away: next_fetch moves forward to now, but to no sooner than
 * SCHEDULE_MIN_FETCH_GAP after last_attempt. Otherwise next_fetch is returned as is:
 * however many polls see an id not fetched yet, upstream_retry paces the retries. */
time_t schedule_after_poll(time_t now, time_t next_fetch, time_t last_attempt, const char *seen,
                           const char *last_seen, const char *fetched);

#endif
