/* schedule: when to fetch a provider's policy again (pure: no clock, no I/O) */
#include <string.h>

#include "schedule.h"

time_t schedule_after_fetch(time_t now, unsigned refresh, unsigned max_age)
{
	unsigned next = refresh;

	if (max_age / 2 < next)
		next = max_age / 2 > 0 ? max_age / 2 : 1;
	return now + next;
}

time_t schedule_after_failure(time_t now, unsigned retry)
{
	return now + retry;
}

time_t schedule_after_poll(time_t now, time_t next_fetch, time_t last_attempt, const char *seen,
                           const char *last_seen, const char *fetched)
{
	time_t at = last_attempt + SCHEDULE_MIN_FETCH_GAP;

	if (strcmp(seen, last_seen) == 0 || strcmp(seen, fetched) == 0)
		return next_fetch;
	if (at < now)
		at = now;
	return next_fetch > at ? at : next_fetch;
}
