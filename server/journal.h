/* journal: what each domain served (id, mode, max_age, first and last time), kept in
 * state_dir/journal across restarts, so that the server can say when the records of a
 * domain in mode none, or of a domain taken out of the configuration, can go: when no
 * sender can still hold a policy that is not none (RFC 8461 §8.3). */
#ifndef MTASTSD_JOURNAL_H
#define MTASTSD_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "policy.h"

/* entries kept per domain, newest last */
#define JOURNAL_KEEP 8
/* seconds between two saves of a running server: what a crash can cost of "last" */
#define JOURNAL_CHECKPOINT 600

struct journal_entry {
	char id[POLICY_ID_MAX + 1];
	enum policy_mode mode;
	uint32_t max_age;
	time_t first; /* first served */
	time_t last;  /* last known to be served (while served: the last checkpoint) */
	bool open;    /* it was being served when last saved, by a server that did not stop
	               * cleanly since: it may have been served up to a checkpoint later */
};

struct journal;

/* The journal of state_dir (NULL: in memory only). A missing file is an empty journal; a
 * damaged one is logged (log true) and read as far as it is valid. NULL when out of
 * memory. */
struct journal *journal_open(const char *state_dir, bool log);

/* Saves (when it has a state_dir and anything changed), then frees j. stopped: the server
 * stops serving, so every domain's current entry is closed at now. NULL is a no-op. */
void journal_close(struct journal *j, bool stopped, time_t now);

/* A new configuration is being put in service: the domains that journal_served() does
 * not name before journal_sync_end() stopped being served at now. Thread-safe. */
void journal_sync_begin(struct journal *j);
void journal_sync_end(struct journal *j, time_t now);

/* domain serves the canonical policy body (mode and max_age are read from it) with id
 * from now on (or still). Thread-safe. */
void journal_served(struct journal *j, const char *domain, const char *id, const char *body,
                    time_t now);

/* Writes the journal when it changed or JOURNAL_CHECKPOINT has passed since the last save,
 * every served domain's last time set to now. Called by the main thread. 0 / -1 (logged). */
int journal_checkpoint(struct journal *j, time_t now);

/* Copies the entries of domain (oldest first) into v; returns how many (0: never served).
 * *ret_live: the domain is served by this process now. Thread-safe. */
size_t journal_history(struct journal *j, const char *domain, struct journal_entry *v,
                       bool *ret_live);

/* Until when a sender may still hold a policy of these entries that is not none: the
 * latest last + max_age (an entry left open by a crash counted a checkpoint later), or 0
 * when there is none. live: the newest entry is still being served (it cannot expire). */
time_t journal_cached_until(const struct journal_entry *v, size_t n, bool live);

/* One sentence on where domain stands (from its n entries, newest last; live as from
 * journal_history): since when its policy is served and, in mode none, from when its
 * records and policy host can be removed. "" when n is 0. */
void journal_summary(const struct journal_entry *v, size_t n, bool live, time_t now, char *out,
                     size_t size);

/* Every domain in the journal, for check: calls fn with its entries (oldest first) and
 * whether it is served now, in no particular order. fn must not call back into j.
 * Thread-safe. */
void journal_each(struct journal *j,
                  void (*fn)(void *arg, const char *domain, const struct journal_entry *v, size_t n,
                             bool live),
                  void *arg);

#endif
