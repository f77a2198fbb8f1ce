/* hook: the on_change command, run when the id of a served policy changes */
#ifndef MTASTSD_HOOK_H
#define MTASTSD_HOOK_H

/* Runs cmd as "cmd DOMAIN ID" without a shell (a name without '/' is looked up in PATH),
 * waits for it at most HOOK_TIMEOUT seconds (then kills it) and logs a failure. The
 * environment is inherited; MTASTSD_DOMAIN and MTASTSD_ID are not set: use the
 * arguments. */
void hook_run(const char *cmd, const char *domain, const char *id);

#define HOOK_TIMEOUT 30

#endif
