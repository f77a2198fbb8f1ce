/* TEMPORARY shim */
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "hook.h"
#include "log.h"
extern char **environ;
struct hooks {
	char *cmd;
};
struct hooks *hooks_create(const char *cmd, const char *state_dir, unsigned timeout)
{
	struct hooks *h = calloc(1, sizeof(*h));
	(void)state_dir;
	(void)timeout;
	if (h != NULL && cmd != NULL)
		h->cmd = strdup(cmd);
	return h;
}
void hooks_configure(struct hooks *h, const char *cmd)
{
	free(h->cmd);
	h->cmd = cmd != NULL ? strdup(cmd) : NULL;
}
void hooks_destroy(struct hooks *h)
{
	if (h == NULL)
		return;
	free(h->cmd);
	free(h);
}
void hooks_announce(struct hooks *h, const char *domain, const char *id)
{
	char *argv[] = {h->cmd, (char *)(uintptr_t)domain, (char *)(uintptr_t)id, NULL};
	pid_t pid;
	int status;
	if (h->cmd == NULL)
		return;
	if (posix_spawn(&pid, h->cmd, NULL, NULL, argv, environ) != 0)
		return;
	waitpid(pid, &status, 0);
}
