/* TEMPORARY shim until the hooks worker branch lands */
#ifndef MTASTSD_HOOK_H
#define MTASTSD_HOOK_H
#include <stddef.h>
struct hooks;
struct hooks *hooks_create(const char *cmd, const char *state_dir, unsigned timeout);
void hooks_configure(struct hooks *h, const char *cmd);
void hooks_announce(struct hooks *h, const char *domain, const char *id);
void hooks_destroy(struct hooks *h);
#endif
