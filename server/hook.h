/* hook: the on_change command, run on one background worker for each new id of a domain */
#ifndef MTASTSD_HOOK_H
#define MTASTSD_HOOK_H

#include <stddef.h>

struct hooks;

/* Starts the worker that runs "cmd DOMAIN ID" for the ids given to hooks_announce(): execve
 * of cmd without a shell (a name without '/' is looked up in PATH), stdin from /dev/null,
 * stdout, stderr and the environment inherited, no other descriptor, an empty signal mask,
 * in a process group of its own. One child at a time; its group is killed after timeout
 * seconds (at least 1). A run that fails is retried after min(30, timeout) seconds, then
 * twice as long each time up to 10 minutes, until it exits 0 or a newer id of its domain
 * replaces it.
 * cmd NULL: ids are remembered as announced and nothing runs.
 * state_dir: the directory where the last id announced for each domain is kept across
 * restarts (the file state_dir/announced, rewritten by the worker whenever its queue
 * drains, and every 5 minutes during a long drain), or NULL to remember them in memory
 * only. A missing or damaged file is logged and counts as empty.
 * cmd and state_dir are copied. Returns NULL on failure (logged); caller hooks_destroy()s. */
struct hooks *hooks_create(const char *cmd, const char *state_dir, unsigned timeout);

/* Stops the worker (a running child is killed and reaped, its id left unannounced), saves
 * the announced ids and frees h. Ids not announced yet are not remembered, so the next
 * start announces them. NULL is a no-op. */
void hooks_destroy(struct hooks *h);

/* Queues "domain id" for the worker and returns: never waits for a child or the disk.
 * Dropped when id is the last one announced for domain; replaces an id of domain that is
 * still waiting (one run per domain, with its latest id). A domain or id that could not be
 * written to the state file (empty, longer than 253 or 32 bytes, spaces, control or
 * non-ASCII bytes) is logged and dropped. domain and id are copied. Thread-safe. */
void hooks_announce(struct hooks *h, const char *domain, const char *id);

/* The ids not announced yet: queued, running or waiting to be retried. Thread-safe. */
size_t hooks_pending(struct hooks *h);

#endif
